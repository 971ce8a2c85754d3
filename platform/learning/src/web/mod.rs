//! The portal's learning pages: the catalogue with search and filters, a course's page (its
//! modules and lessons, the prerequisite tree, enrolling, and for those who build the catalogue
//! its administration and assignment), my learning (one's enrolments, and one's team's), and
//! an enrolment's page where lessons are marked done. Each handler parses the form, calls a use
//! case of [`crate::service`] and renders.

mod assessments;
mod calendar;
mod catalogue;
mod editing;
mod learning;
mod materials;
mod registration;
mod skills;

use poem::{get, post, EndpointExt, Route};
use serde::Deserialize;
use trainflow_kernel::{auth::Permission, now, ApiResult};
use trainflow_web::{BoxFuture, Card, CardSource, NavEntry, Session};

use crate::{service, Learning};

/// The context's entries in the navigation bar.
pub fn nav() -> Vec<NavEntry> {
    vec![
        NavEntry {
            key: "learning",
            label: "My learning",
            href: "/portal/learning",
            order: 10,
            permission: None,
        },
        NavEntry {
            key: "courses",
            label: "Courses",
            href: "/portal/courses",
            order: 12,
            permission: None,
        },
        NavEntry {
            key: "certificates",
            label: "Certificates",
            href: "/portal/certificates",
            order: 13,
            permission: None,
        },
        NavEntry {
            key: "skills",
            label: "Skills",
            href: "/portal/skills",
            order: 15,
            permission: None,
        },
        NavEntry {
            key: "calendar",
            label: "My calendar",
            href: "/portal/calendar",
            order: 14,
            permission: None,
        },
    ]
}

/// Mounts the context's pages on `route` (the portal's, nested under `/portal`).
pub fn mount(route: Route, svc: Learning) -> Route {
    route
        .at(
            "/courses",
            get(catalogue::catalogue)
                .post(catalogue::create_course)
                .data(svc.clone()),
        )
        .at(
            "/courses/registration-template",
            get(registration::template).data(svc.clone()),
        )
        .at(
            "/courses/registrations",
            post(registration::upload).data(svc.clone()),
        )
        .at(
            "/courses/:id",
            get(catalogue::course_page).data(svc.clone()),
        )
        .at(
            "/courses/:id/edit",
            post(editing::edit_course).data(svc.clone()),
        )
        .at(
            "/courses/:id/delete",
            post(editing::delete_course).data(svc.clone()),
        )
        .at(
            "/courses/:id/restore",
            post(editing::restore_course).data(svc.clone()),
        )
        .at("/modules/:id", post(editing::edit_module).data(svc.clone()))
        .at(
            "/modules/:id/delete",
            post(editing::delete_module).data(svc.clone()),
        )
        .at(
            "/lessons/:id/edit",
            post(editing::edit_lesson).data(svc.clone()),
        )
        .at(
            "/lessons/:id/delete",
            post(editing::delete_lesson).data(svc.clone()),
        )
        .at(
            "/courses/:id/enrol",
            post(catalogue::enrol).data(svc.clone()),
        )
        .at(
            "/courses/:id/status",
            post(catalogue::set_status).data(svc.clone()),
        )
        .at(
            "/courses/:id/modules",
            post(catalogue::add_module).data(svc.clone()),
        )
        .at(
            "/courses/:id/prerequisites",
            post(catalogue::add_prerequisite).data(svc.clone()),
        )
        .at(
            "/courses/:id/assign",
            post(catalogue::assign).data(svc.clone()),
        )
        .at(
            "/courses/:id/topics",
            post(catalogue::add_topic).data(svc.clone()),
        )
        .at(
            "/topics/:id/delete",
            post(catalogue::delete_topic).data(svc.clone()),
        )
        .at(
            "/lessons/:id/materials",
            post(materials::upload).data(svc.clone()),
        )
        .at("/materials/:id", get(materials::download).data(svc.clone()))
        .at(
            "/materials/:id/delete",
            post(materials::delete).data(svc.clone()),
        )
        .at(
            "/modules/:id/lessons",
            post(catalogue::add_lesson).data(svc.clone()),
        )
        .at(
            "/courses/:id/question-banks",
            post(assessments::create_bank).data(svc.clone()),
        )
        .at(
            "/question-banks/:id",
            get(assessments::bank_page).data(svc.clone()),
        )
        .at(
            "/question-banks/:id/questions",
            post(assessments::add_question).data(svc.clone()),
        )
        .at(
            "/lessons/:id/quiz",
            get(assessments::quiz_page)
                .post(assessments::set_quiz)
                .data(svc.clone()),
        )
        .at(
            "/lessons/:id/attempts",
            post(assessments::start_attempt).data(svc.clone()),
        )
        .at(
            "/quiz-attempts/:id",
            get(assessments::attempt_page).data(svc.clone()),
        )
        .at(
            "/quiz-attempts/:id/submit",
            post(assessments::submit_attempt).data(svc.clone()),
        )
        .at(
            "/certificates",
            get(assessments::certificates).data(svc.clone()),
        )
        .at(
            "/certificates/:id/pdf",
            get(assessments::certificate_pdf).data(svc.clone()),
        )
        .at(
            "/skills",
            get(skills::skills_page)
                .post(skills::create_skill)
                .data(svc.clone()),
        )
        .at("/skills/team", get(skills::team_page).data(svc.clone()))
        .at("/skills/assess", post(skills::assess).data(svc.clone()))
        .at(
            "/skills/:id",
            get(skills::skill_page)
                .post(skills::update_skill)
                .data(svc.clone()),
        )
        .at(
            "/skills/:id/delete",
            post(skills::delete_skill).data(svc.clone()),
        )
        .at(
            "/skills/:id/restore",
            post(skills::restore_skill).data(svc.clone()),
        )
        .at(
            "/courses/:id/skills",
            post(skills::set_course_skill).data(svc.clone()),
        )
        .at("/verify", get(assessments::verify_form).data(svc.clone()))
        .at(
            "/verify/:code",
            get(assessments::verify_code).data(svc.clone()),
        )
        .at(
            "/enrolments/:id/lessons/:lesson",
            get(learning::lesson_page).data(svc.clone()),
        )
        .at("/learning", get(learning::my_learning).data(svc.clone()))
        .at("/learning/live", get(learning::live).data(svc.clone()))
        .at("/learning/live.js", get(learning::live_script))
        .at(
            "/enrolments/:id",
            get(learning::enrolment_page).data(svc.clone()),
        )
        .at(
            "/enrolments/:id/progress",
            post(learning::record_progress).data(svc.clone()),
        )
        .at(
            "/enrolments/:id/cancel",
            post(learning::cancel).data(svc.clone()),
        )
        .at("/calendar", get(calendar::my_calendar).data(svc.clone()))
        .at(
            "/calendar/feed",
            post(calendar::issue_feed).data(svc.clone()),
        )
        .at(
            "/calendar/feed/delete",
            post(calendar::revoke_feed).data(svc.clone()),
        )
        .at("/calendar/feed/:token", get(calendar::feed).data(svc))
}

/// The flash notices of the context's redirects.
const NOTICES: &[(&str, &str)] = &[
    (
        "course_saved",
        "The course was saved as a draft. Add its modules and lessons, then publish it.",
    ),
    ("enrolled", "You are enrolled. Start with the first lesson."),
    ("status", "The course's status was changed."),
    ("module", "The module was added."),
    ("lesson", "The lesson was added."),
    ("topic", "The topic was added to the syllabus."),
    ("course_changed", "The course was saved."),
    (
        "course_deleted",
        "The course was deleted. Restore it from the list of deleted courses.",
    ),
    ("course_restored", "The course was restored."),
    ("module_changed", "The module was saved."),
    ("module_removed", "The module was removed with its lessons."),
    ("lesson_changed", "The lesson was saved."),
    ("lesson_removed", "The lesson was removed."),
    ("topic_removed", "The topic was removed from the syllabus."),
    ("material", "The file was attached to the lesson."),
    ("material_removed", "The file was removed from the lesson."),
    ("prerequisite", "The prerequisite was added."),
    ("assigned", "The course was assigned."),
    ("progress", "Your progress was saved."),
    ("cancelled", "The enrolment was cancelled."),
    ("bank", "The question bank was added. Add its questions."),
    ("question", "The question was added."),
    ("quiz", "The quiz was saved."),
    ("skill", "The skill was added to the catalogue."),
    ("skill_saved", "The skill was saved."),
    ("skill_deleted", "The skill was deleted. Restore it below."),
    ("skill_restored", "The skill was restored."),
    ("assessed", "The assessment was recorded."),
    ("skills", "The course's skills were saved."),
    (
        "submitted",
        "Your answers were submitted. Here is how you did.",
    ),
];

#[derive(Deserialize, Default)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
    page: Option<u32>,
}

impl NoticeQuery {
    fn text(&self) -> Option<&'static str> {
        trainflow_web::notice(self.notice.as_deref(), NOTICES)
    }
}

/// Whether the session may build the catalogue (the use cases check again).
fn manages(s: &Session) -> bool {
    s.role.grants(Permission::CoursesManage)
}

/// The context's dashboard card: one's open enrolments, the overdue ones, and what is next.
pub struct Cards(pub Learning);

impl CardSource for Cards {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            let s = service::summary(&self.0, &session.ctx, now()).await?;
            let text = match (s.open, s.overdue) {
                (0, _) => format!(
                    "No courses in progress; {} completed. Browse the catalogue to find one.",
                    s.completed
                ),
                (_, 0) => format!("{} completed so far.", s.completed),
                (_, n) => format!("{n} overdue; {} completed so far.", s.completed),
            };
            Ok(vec![Card {
                order: 10,
                title: "My courses".into(),
                value: Some(s.open.to_string()),
                text,
                columns: if s.next.is_empty() {
                    Vec::new()
                } else {
                    vec!["Course", "Progress", "Due"]
                },
                rows: s
                    .next
                    .iter()
                    .map(|e| {
                        vec![
                            e.course_title.clone(),
                            format!("{}%", e.progress_percent),
                            e.due_on.map(|d| d.to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect(),
                link: Some(("/portal/learning".into(), "Open my learning".into())),
            }])
        })
    }
}

/// The context's parts of the profile page: one's skills and achievements.
pub struct ProfileCards(pub Learning);

impl CardSource for ProfileCards {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            let p = service::person_skills(&self.0, &session.ctx, session.user_id).await?;
            let skills = Card {
                order: 30,
                title: "My skills".into(),
                value: Some(p.skills.len().to_string()),
                text: if p.skills.is_empty() {
                    "Completing courses raises the skills they teach; your manager may assess \
                     others."
                        .into()
                } else {
                    "Your level of each skill, and where it came from.".into()
                },
                columns: if p.skills.is_empty() {
                    Vec::new()
                } else {
                    vec!["Skill", "Level", "Source"]
                },
                rows: p
                    .skills
                    .iter()
                    .map(|s| {
                        vec![
                            s.skill_name.clone(),
                            format!("{} of {}: {}", s.level, s.max_level, s.criteria),
                            s.source.as_str().to_string(),
                        ]
                    })
                    .collect(),
                link: Some(("/portal/skills".into(), "The skills catalogue".into())),
            };
            let achievements = Card {
                order: 31,
                title: "Achievements".into(),
                value: Some(p.achievements.len().to_string()),
                text: if p.achievements.is_empty() {
                    "None yet: complete a first course to earn one.".into()
                } else {
                    "What you have achieved so far.".into()
                },
                columns: if p.achievements.is_empty() {
                    Vec::new()
                } else {
                    vec!["Achievement", "Awarded"]
                },
                rows: p
                    .achievements
                    .iter()
                    .map(|a| vec![a.detail.clone(), a.awarded_at.date().to_string()])
                    .collect(),
                link: None,
            };
            Ok(vec![skills, achievements])
        })
    }
}
