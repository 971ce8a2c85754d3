//! Learning's part of a tenant manifest: a catalogue (courses with modules, lessons and
//! prerequisites) and enrolments in several states, with lessons done. Everything goes through
//! this context's use cases, as the people the manifest names, so the demo's audit trail and
//! notifications are the product's own. Applying again leaves what exists as it is.

use std::{collections::BTreeMap, future::Future, pin::Pin};

use anyhow::Context;
use serde::Deserialize;
use time::Duration;
use trainflow_kernel::{
    auth::{Permission, Role, TenantCtx},
    envelope::Page,
    manifest::{anyhow_api, Created, ManifestPart, ManifestScope},
};

use crate::{
    catalogue::{
        CourseChange, CourseFilter, CourseStatus, Difficulty, LessonChange, LessonKind,
        ModuleChange,
    },
    service::{self, Assignees, Assignment, EnrolmentQuery, ProgressReport, Whose},
    Learning,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonSpec {
    title: String,
    kind: Option<String>,
    body: Option<String>,
    url: Option<String>,
    #[serde(default)]
    minutes: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleSpec {
    title: String,
    #[serde(default)]
    duration_hours: f64,
    #[serde(default)]
    lessons: Vec<LessonSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CourseSpec {
    code: String,
    title: String,
    category: Option<String>,
    difficulty: Option<String>,
    duration_hours: Option<f64>,
    description: Option<String>,
    /// Default `published`.
    status: Option<String>,
    #[serde(default = "yes")]
    self_enrol: bool,
    /// Codes of the courses to complete first.
    #[serde(default)]
    prerequisites: Vec<String>,
    #[serde(default)]
    modules: Vec<ModuleSpec>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolmentSpec {
    /// The person's email.
    person: String,
    /// The course's code.
    course: String,
    /// Who assigned it (an email); none: the person enrolled themselves.
    assigned_by: Option<String>,
    /// Days after the day of applying (0 or more).
    due_in_days: Option<i64>,
    /// How many of the course's lessons, in order, the person has done.
    #[serde(default)]
    lessons_done: usize,
}

/// The part the server registers.
pub struct DemoPart(pub Learning);

const SECTIONS: &[&str] = &["courses", "enrolments"];

fn section<T: for<'de> Deserialize<'de>>(
    sections: &BTreeMap<String, serde_json::Value>,
    key: &str,
) -> anyhow::Result<Vec<T>> {
    match sections.get(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).with_context(|| format!("section `{key}`")),
    }
}

impl ManifestPart for DemoPart {
    fn sections(&self) -> &'static [&'static str] {
        SECTIONS
    }

    fn apply<'a>(
        &'a self,
        scope: &'a ManifestScope<'a>,
        sections: &'a BTreeMap<String, serde_json::Value>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Created>> + Send + 'a>> {
        Box::pin(self.apply_sections(scope, sections))
    }
}

impl DemoPart {
    async fn apply_sections(
        &self,
        scope: &ManifestScope<'_>,
        sections: &BTreeMap<String, serde_json::Value>,
    ) -> anyhow::Result<Created> {
        let courses: Vec<CourseSpec> = section(sections, "courses")?;
        let enrolments: Vec<EnrolmentSpec> = section(sections, "enrolments")?;
        if courses.is_empty() && enrolments.is_empty() {
            return Ok(Vec::new());
        }
        let svc = &self.0;
        let now = scope.now;
        // Who builds the catalogue: a training officer, else an administrator.
        let officer: &TenantCtx = scope
            .people
            .values()
            .filter(|c| c.role.grants(Permission::CoursesManage))
            .min_by_key(|c| (c.role != Role::TrainingOfficer, c.user_id.0))
            .context("the manifest has nobody who may manage courses")?;
        let all = Page::parse(Some(1), Some(100)).map_err(anyhow_api)?;
        let existing = service::list_courses(svc, officer, CourseFilter::default(), all)
            .await
            .map_err(anyhow_api)?
            .0;
        let mut made = 0;
        for c in &courses {
            if existing
                .iter()
                .any(|e| e.code.as_deref() == Some(c.code.as_str()))
            {
                continue;
            }
            let parse = |s: &Option<String>, field: &str| -> anyhow::Result<Option<Difficulty>> {
                s.as_deref()
                    .map(|d| Difficulty::parse(d).with_context(|| format!("{field}: {d}")))
                    .transpose()
            };
            let change = CourseChange {
                code: Some(c.code.clone()),
                title: Some(c.title.clone()),
                category: Some(c.category.clone()),
                difficulty: parse(&c.difficulty, "courses.difficulty")?,
                duration_hours: Some(c.duration_hours),
                description: Some(c.description.clone()),
                status: Some(CourseStatus::Draft),
                self_enrol: Some(c.self_enrol),
                ..CourseChange::default()
            };
            let course = service::create_course(svc, officer, change, now)
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("course {}", c.code))?;
            for m in &c.modules {
                let module = service::add_module(
                    svc,
                    officer,
                    course.id,
                    ModuleChange {
                        title: Some(m.title.clone()),
                        duration_hours: Some(m.duration_hours),
                        ..ModuleChange::default()
                    },
                    now,
                )
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("module {} of {}", m.title, c.code))?;
                for l in &m.lessons {
                    let kind = match l.kind.as_deref() {
                        None => LessonKind::Text,
                        Some(k) => {
                            LessonKind::parse(k).with_context(|| format!("lesson kind {k}"))?
                        }
                    };
                    service::add_lesson(
                        svc,
                        officer,
                        module.id,
                        LessonChange {
                            title: Some(l.title.clone()),
                            kind: Some(kind),
                            body: Some(l.body.clone()),
                            url: Some(l.url.clone()),
                            duration_minutes: Some(l.minutes),
                            ..LessonChange::default()
                        },
                        now,
                    )
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("lesson {} of {}", l.title, c.code))?;
                }
            }
            made += 1;
        }
        // Prerequisites and publication, once every course exists.
        let catalogue = service::list_courses(svc, officer, CourseFilter::default(), all)
            .await
            .map_err(anyhow_api)?
            .0;
        let id_of = |code: &str| {
            catalogue
                .iter()
                .find(|c| c.code.as_deref() == Some(code))
                .map(|c| c.id)
                .with_context(|| format!("unknown course {code}"))
        };
        for c in &courses {
            let id = id_of(&c.code)?;
            for p in &c.prerequisites {
                service::add_prerequisite(svc, officer, id, id_of(p)?, now)
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("prerequisite {p} of {}", c.code))?;
            }
            let wanted = match c.status.as_deref() {
                None => CourseStatus::Published,
                Some(s) => {
                    CourseStatus::parse(s).with_context(|| format!("courses.status: {s}"))?
                }
            };
            if catalogue.iter().any(|x| x.id == id && x.status != wanted) {
                let change = CourseChange {
                    status: Some(wanted),
                    ..CourseChange::default()
                };
                service::update_course(svc, officer, id, change, now)
                    .await
                    .map_err(anyhow_api)?;
            }
        }

        let mut enrolled = 0;
        for e in &enrolments {
            let person = scope.person("enrolments.person", &e.person)?;
            let course = id_of(&e.course)?;
            let mine = EnrolmentQuery {
                whose: Whose::Mine,
                user_id: None,
                course_id: Some(course),
                status: None,
            };
            let (had, _) = service::list_enrolments(svc, person, mine, all)
                .await
                .map_err(anyhow_api)?;
            if !had.is_empty() {
                continue;
            }
            let enrolment =
                match &e.assigned_by {
                    None => service::enrol_self(svc, person, course, now)
                        .await
                        .map_err(anyhow_api)
                        .with_context(|| format!("{} enrolling in {}", e.person, e.course))?,
                    Some(by) => {
                        let by = scope.person("enrolments.assigned_by", by)?;
                        let due = e
                            .due_in_days
                            .map(|d| (now + Duration::days(d.max(0))).date());
                        let result = service::assign(
                            svc,
                            by,
                            course,
                            Assignment {
                                to: Assignees::People(vec![person.user_id.0]),
                                due_on: due,
                                override_reason: None,
                            },
                            now,
                        )
                        .await
                        .map_err(anyhow_api)
                        .with_context(|| format!("assigning {} to {}", e.course, e.person))?;
                        result.enrolled.into_iter().next().with_context(|| {
                            format!("{} was not enrolled in {}", e.person, e.course)
                        })?
                    }
                };
            let detail = service::course_detail(svc, person, course)
                .await
                .map_err(anyhow_api)?;
            let lessons = detail.modules.iter().flat_map(|m| m.lessons.iter());
            for lesson in lessons.take(e.lessons_done) {
                service::record_progress(
                    svc,
                    person,
                    enrolment.id,
                    ProgressReport {
                        lesson_id: lesson.id,
                        completed: true,
                        seconds_spent: lesson.duration_minutes.max(1) * 60,
                    },
                    now,
                )
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("progress of {} in {}", e.person, e.course))?;
            }
            enrolled += 1;
        }
        Ok(vec![("courses", made), ("enrolments", enrolled)])
    }
}
