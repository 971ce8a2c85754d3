//! The catalogue and a course's page, with the forms of those who build the catalogue.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::{auth::Permission, auth::Role, domain::ApiDate, now, ApiError, FieldErrors};
use trainflow_web::{
    blank, field_errors, portal_page, render, url_encode, Errors, Nav, PageResult, Pager, SignedIn,
    Submitted,
};
use uuid::Uuid;

use super::{manages, NoticeQuery};
use crate::{
    assessments::Bank,
    catalogue::{
        Course, CourseChange, CourseFilter, CourseStatus, Difficulty, LessonChange, LessonKind,
        ModuleChange, TreeEntry,
    },
    service::{self, Assignees, Assignment, CourseDetail},
    skills::{CourseSkill, Skill},
    topics::TopicChange,
    Learning,
};

/// Courses a page of the catalogue shows.
const PER_PAGE: u32 = 20;

#[derive(Deserialize, Default)]
pub(super) struct CatalogueQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    status: String,
    page: Option<u32>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "catalogue.html")]
struct CataloguePage {
    nav: Option<Nav>,
    csrf: String,
    courses: Vec<Course>,
    total: i64,
    pager: Pager,
    q: String,
    category_options: Vec<(String, bool)>,
    status_options: Vec<(&'static str, bool)>,
    difficulty_options: Vec<(&'static str, bool)>,
    manages: bool,
    form: CourseForm,
    /// The deleted courses, for those who may restore them.
    deleted: Vec<Course>,
    notice: Option<&'static str>,
    errors: Errors,
}

/// The course form as typed: the new-course form, and the course page's (which also sets the
/// certificate's months).
#[derive(Deserialize, Default, Clone)]
pub(super) struct CourseForm {
    #[serde(default)]
    pub(super) code: String,
    #[serde(default)]
    pub(super) title: String,
    #[serde(default)]
    pub(super) category: String,
    #[serde(default)]
    pub(super) difficulty: String,
    #[serde(default)]
    pub(super) duration_hours: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) self_enrol: Option<String>,
    #[serde(default)]
    pub(super) certificate_months: String,
}

#[allow(clippy::too_many_arguments)]
async fn catalogue_page(
    svc: &Learning,
    me: &SignedIn,
    q: &CatalogueQuery,
    form: CourseForm,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let page = portal_page(q.page, PER_PAGE)?;
    let manages = manages(&me.session);
    let wanted = CourseStatus::parse(q.status.trim()).filter(|_| manages);
    let filter = CourseFilter {
        search: blank(&q.q).map(|s| s.chars().take(200).collect()),
        category: blank(&q.category).map(|s| s.chars().take(100).collect()),
        status: wanted,
        ..CourseFilter::default()
    };
    let (courses, total) = service::list_courses(svc, me.ctx(), filter, page).await?;
    let categories = service::categories(svc, me.ctx()).await?;
    let deleted = if manages {
        let deleted = CourseFilter {
            deleted: true,
            ..CourseFilter::default()
        };
        let first = trainflow_kernel::envelope::Page::parse(Some(1), Some(100))?;
        service::list_courses(svc, me.ctx(), deleted, first)
            .await?
            .0
    } else {
        Vec::new()
    };
    let link = {
        let (q, c, s) = (
            url_encode(&q.q),
            url_encode(&q.category),
            url_encode(&q.status),
        );
        move |n: u32| format!("/portal/courses?q={q}&category={c}&status={s}&page={n}")
    };
    render(
        &CataloguePage {
            nav: me.nav("courses"),
            csrf: me.csrf().to_string(),
            courses,
            total,
            pager: Pager::new(page, total, link),
            q: q.q.clone(),
            category_options: categories
                .into_iter()
                .map(|c| {
                    let on = c == q.category.trim();
                    (c, on)
                })
                .collect(),
            status_options: CourseStatus::ALL
                .iter()
                .map(|s| (s.as_str(), Some(*s) == wanted))
                .collect(),
            difficulty_options: Difficulty::ALL
                .iter()
                .map(|d| (d.as_str(), d.as_str() == form.difficulty.trim()))
                .collect(),
            manages,
            form,
            deleted,
            notice,
            errors,
        },
        status,
    )
}

/// The catalogue: search, filters, and (for those who build it) the new-course form.
#[handler]
pub(super) async fn catalogue(
    me: SignedIn,
    svc: Data<&Learning>,
    q: Query<CatalogueQuery>,
) -> PageResult {
    let notice = trainflow_web::notice(q.notice.as_deref(), super::NOTICES);
    catalogue_page(
        &svc,
        &me,
        &q,
        CourseForm {
            self_enrol: Some("on".into()),
            ..CourseForm::default()
        },
        notice,
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

/// A number typed in a form: blank is none, anything else must parse.
pub(super) fn number<T: std::str::FromStr>(
    e: &mut FieldErrors,
    field: &str,
    raw: &str,
) -> Option<T> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    raw.parse()
        .map_err(|_| e.add(field, "must be a number"))
        .ok()
}

/// Adds a draft course and opens its page.
#[handler]
pub(super) async fn create_course(
    svc: Data<&Learning>,
    Submitted(me, form): Submitted<CourseForm>,
) -> PageResult {
    if !manages(&me.session) {
        return Err(ApiError::Forbidden.into());
    }
    let mut e = FieldErrors::new();
    let hours: Option<f64> = number(&mut e, "duration_hours", &form.duration_hours);
    let difficulty = match form.difficulty.trim() {
        "" => None,
        d => {
            let parsed = Difficulty::parse(d);
            if parsed.is_none() {
                e.add("difficulty", "must be beginner, intermediate or advanced");
            }
            parsed
        }
    };
    let change = CourseChange {
        code: Some(form.code.clone()),
        title: Some(form.title.clone()),
        category: Some(blank(&form.category)),
        difficulty,
        duration_hours: Some(hours),
        description: Some(blank(&form.description)),
        self_enrol: Some(form.self_enrol.is_some()),
        ..CourseChange::default()
    };
    let result = if e.is_empty() {
        service::create_course(&svc, me.ctx(), change, now()).await
    } else {
        Err(ApiError::Validation(e))
    };
    match result {
        Ok(c) => Ok(
            Redirect::see_other(format!("/portal/courses/{}?notice=course_saved", c.id))
                .into_response(),
        ),
        Err(err) => {
            let errors = field_errors(err)?;
            catalogue_page(
                &svc,
                &me,
                &CatalogueQuery::default(),
                form,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "course.html")]
struct CoursePage {
    nav: Option<Nav>,
    csrf: String,
    d: CourseDetail,
    tree: Vec<TreeLine>,
    /// Whom the assignment form offers: the caller's team, and (for those who build the
    /// catalogue) the departments and the other courses a prerequisite may name.
    team: Vec<(Uuid, String)>,
    departments: Vec<(Uuid, String)>,
    courses: Vec<Course>,
    /// The course's question banks (for those who build the catalogue).
    banks: Vec<Bank>,
    /// The skills it teaches and requires.
    skills: Vec<CourseSkill>,
    /// The skills catalogue, for the builders' form.
    catalogue_skills: Vec<Skill>,
    manages: bool,
    assigns: bool,
    /// Administrators may enrol people without the prerequisites.
    overrides: bool,
    notice: Option<&'static str>,
    errors: Errors,
}

/// A line of the prerequisite tree, indented by its depth.
struct TreeLine {
    indent: String,
    entry: TreeEntry,
}

async fn course_view(
    svc: &Learning,
    me: &SignedIn,
    id: Uuid,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let d = service::course_detail(svc, me.ctx(), id).await?;
    let tree = service::prerequisite_tree(svc, me.ctx(), id)
        .await?
        .into_iter()
        .map(|entry| TreeLine {
            indent: "\u{2003}".repeat(entry.depth.max(1) as usize - 1),
            entry,
        })
        .collect();
    let role = me.session.role;
    let options = service::assignment_options(svc, me.ctx()).await?;
    let courses = if manages(&me.session) {
        let all = trainflow_kernel::envelope::Page::parse(Some(1), Some(100))?;
        service::list_courses(svc, me.ctx(), CourseFilter::default(), all)
            .await?
            .0
            .into_iter()
            .filter(|c| c.id != id)
            .collect()
    } else {
        Vec::new()
    };
    let skills = service::course_skills(svc, me.ctx(), id).await?;
    let catalogue_skills = if manages(&me.session) {
        let all = trainflow_kernel::envelope::Page::parse(Some(1), Some(100))?;
        service::list_skills(svc, me.ctx(), None, false, all)
            .await?
            .0
    } else {
        Vec::new()
    };
    let banks = if manages(&me.session) {
        service::list_banks(svc, me.ctx(), id, false).await?
    } else {
        Vec::new()
    };
    render(
        &CoursePage {
            nav: me.nav("courses"),
            csrf: me.csrf().to_string(),
            d,
            tree,
            team: options.team,
            departments: options.departments,
            courses,
            banks,
            skills,
            catalogue_skills,
            manages: manages(&me.session),
            assigns: role.grants(Permission::EnrolmentsAssign),
            overrides: role == Role::Administrator,
            notice,
            errors,
        },
        status,
    )
}

/// A course's page.
#[handler]
pub(super) async fn course_page(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    course_view(&svc, &me, id.0, q.text(), Errors::default(), StatusCode::OK).await
}

/// The course's page again with the errors of a form another page handled.
pub(super) async fn course_with_errors(
    svc: &Learning,
    me: &SignedIn,
    id: Uuid,
    errors: Errors,
) -> PageResult {
    course_view(svc, me, id, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
}

/// The use case `run` once the form's own checks (`e`) have passed, else those errors.
pub(super) async fn once_checked<T, F>(
    e: FieldErrors,
    run: impl FnOnce() -> F,
) -> Result<(), ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    if e.is_empty() {
        run().await.map(drop)
    } else {
        Err(ApiError::Validation(e))
    }
}

/// Back to the course's page with `notice`, after a form that changed it.
pub(super) fn after_course_form(course: Uuid, notice: &str) -> PageResult {
    Ok(Redirect::see_other(format!("/portal/courses/{course}?notice={notice}")).into_response())
}

/// After a course form: back to the course's page with `notice`, or the page again with the
/// form's errors.
pub(super) async fn after(
    svc: &Learning,
    me: &SignedIn,
    id: Uuid,
    result: Result<(), ApiError>,
    notice: &str,
) -> PageResult {
    match result {
        Ok(()) => after_course_form(id, notice),
        Err(e) => {
            let errors = field_errors(e)?;
            course_view(svc, me, id, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// Enrols the signed-in person.
#[handler]
pub(super) async fn enrol(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    let r = service::enrol_self(&svc, me.ctx(), id.0, now()).await;
    after(&svc, &me, id.0, r.map(drop), "enrolled").await
}

#[derive(Deserialize)]
pub(super) struct StatusForm {
    #[serde(default)]
    status: String,
}

/// Publishes, archives or returns a course to draft.
#[handler]
pub(super) async fn set_status(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<StatusForm>,
) -> PageResult {
    let r = match CourseStatus::parse(form.status.trim()) {
        Some(status) => {
            let change = CourseChange {
                status: Some(status),
                ..CourseChange::default()
            };
            service::update_course(&svc, me.ctx(), id.0, change, now())
                .await
                .map(drop)
        }
        None => Err(ApiError::field(
            "status",
            "must be draft, published or archived",
        )),
    };
    after(&svc, &me, id.0, r, "status").await
}

#[derive(Deserialize)]
pub(super) struct ModuleForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    duration_hours: String,
}

/// Adds a module at the end of the course.
#[handler]
pub(super) async fn add_module(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<ModuleForm>,
) -> PageResult {
    let mut e = FieldErrors::new();
    let hours = number(&mut e, "duration_hours", &form.duration_hours);
    let r = once_checked(e, || async {
        let change = ModuleChange {
            title: Some(form.title),
            duration_hours: hours,
            ..ModuleChange::default()
        };
        service::add_module(&svc, me.ctx(), id.0, change, now()).await
    })
    .await;
    after(&svc, &me, id.0, r, "module").await
}

#[derive(Deserialize)]
pub(super) struct LessonForm {
    #[serde(default)]
    course_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    duration_minutes: String,
}

/// Adds a lesson at the end of a module.
#[handler]
pub(super) async fn add_lesson(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<LessonForm>,
) -> PageResult {
    let course: Uuid = form
        .course_id
        .trim()
        .parse()
        .map_err(|_| ApiError::NotFound)?;
    let mut e = FieldErrors::new();
    let minutes = number(&mut e, "duration_minutes", &form.duration_minutes);
    let kind = LessonKind::parse(form.kind.trim());
    if kind.is_none() {
        e.add("kind", "must be text, file, link or assessment");
    }
    let r = once_checked(e, || async {
        let change = LessonChange {
            title: Some(form.title),
            kind,
            body: Some(blank(&form.body)),
            url: Some(blank(&form.url)),
            duration_minutes: minutes,
            ..LessonChange::default()
        };
        service::add_lesson(&svc, me.ctx(), id.0, change, now()).await
    })
    .await;
    after(&svc, &me, course, r, "lesson").await
}

#[derive(Deserialize)]
pub(super) struct TopicForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    duration_hours: String,
    #[serde(default)]
    parent_id: String,
}

/// Adds a topic at the end of the syllabus, or a subtopic at the end of a topic.
#[handler]
pub(super) async fn add_topic(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<TopicForm>,
) -> PageResult {
    let mut e = FieldErrors::new();
    let hours = number(&mut e, "duration_hours", &form.duration_hours);
    let parent = match form.parent_id.trim() {
        "" => None,
        raw => match raw.parse::<Uuid>() {
            Ok(p) => Some(p),
            Err(_) => {
                e.add("parent_id", "choose a topic of the course");
                None
            }
        },
    };
    let r = once_checked(e, || async {
        let change = TopicChange {
            title: Some(form.title),
            duration_hours: hours,
            ..TopicChange::default()
        };
        service::add_topic(&svc, me.ctx(), id.0, parent, change, now()).await
    })
    .await;
    after(&svc, &me, id.0, r, "topic").await
}

/// Removes a topic (with its subtopics) or a subtopic.
#[handler]
pub(super) async fn delete_topic(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    let topic = service::set_topic_deleted(&svc, me.ctx(), id.0, true, now()).await?;
    after(&svc, &me, topic.course_id, Ok(()), "topic_removed").await
}

#[derive(Deserialize)]
pub(super) struct PrerequisiteForm {
    #[serde(default)]
    required_course_id: String,
}

/// Makes another course a prerequisite of this one.
#[handler]
pub(super) async fn add_prerequisite(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<PrerequisiteForm>,
) -> PageResult {
    let r = match form.required_course_id.trim().parse::<Uuid>() {
        Ok(required) => service::add_prerequisite(&svc, me.ctx(), id.0, required, now())
            .await
            .map(drop),
        Err(_) => Err(ApiError::field(
            "required_course_id",
            "choose a course of the catalogue",
        )),
    };
    after(&svc, &me, id.0, r, "prerequisite").await
}

/// Assigns the course.
#[handler]
pub(super) async fn assign(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, pairs): Submitted<Vec<(String, String)>>,
) -> PageResult {
    // The form's fields; `user_ids` repeats (one checkbox per person of the team).
    let one = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let mut e = FieldErrors::new();
    let to = match one("to").as_str() {
        "department" => one("department_id")
            .parse()
            .map(Assignees::Department)
            .map_err(|_| e.add("department_id", "choose a department"))
            .ok(),
        "role" => one("role")
            .parse()
            .map(Assignees::Role)
            .map_err(|m: String| e.add("role", m))
            .ok(),
        _ => {
            let ids: Result<Vec<Uuid>, _> = pairs
                .iter()
                .filter(|(k, v)| k == "user_ids" && !v.trim().is_empty())
                .map(|(_, v)| v.trim().parse())
                .collect();
            match ids {
                Ok(ids) if !ids.is_empty() && ids.len() <= 500 => Some(Assignees::People(ids)),
                Ok(_) => {
                    e.add("user_ids", "choose 1 to 500 people");
                    None
                }
                Err(_) => {
                    e.add("user_ids", "must be ids of people");
                    None
                }
            }
        }
    };
    let due_on = match one("due_on").as_str() {
        "" => None,
        d => serde_json::from_value::<ApiDate>(serde_json::Value::String(d.into()))
            .map(|d| d.0)
            .map_err(|_| {
                e.add(
                    "due_on",
                    "must be a date (YYYY-MM-DD) between 1900 and 2999",
                )
            })
            .ok(),
    };
    let r = match (to, e.is_empty()) {
        (Some(to), true) => service::assign(
            &svc,
            me.ctx(),
            id.0,
            Assignment {
                to,
                due_on,
                override_reason: blank(&one("override_reason")),
            },
            now(),
        )
        .await
        .map(drop),
        _ => Err(ApiError::Validation(e)),
    };
    after(&svc, &me, id.0, r, "assigned").await
}
