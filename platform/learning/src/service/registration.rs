//! The use case of mass registration: a workbook of courses, their modules and their syllabus
//! (the template of [`crate::registration`]) checked row by row, the rows that pass registered
//! and the others reported with their reasons — or, as a check only, nothing registered.

use std::collections::HashMap;

use poem_openapi::Object;
use serde::Serialize;
use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    body::File,
    db::TenantTx,
    ApiError, ApiResult,
};
use uuid::Uuid;

use super::json;
use crate::{
    catalogue::{self, Course, CourseChange, CourseStatus, Difficulty, ModuleChange},
    registration::{self, Row, MAX_BYTES},
    topics::{self, Topic, TopicChange},
    Learning,
};

/// A row the registration refused.
#[derive(Debug, Clone, Object, Serialize)]
pub struct RejectedRow {
    /// `Courses`, `Modules` or `Topics`.
    pub sheet: String,
    /// The row's number in the sheet, as Excel shows it.
    pub row: u32,
    /// The column (or field) at fault.
    pub field: String,
    pub reason: String,
}

/// What a registration did, or (`dry_run`) would do.
#[derive(Debug, Clone, Object, Serialize)]
pub struct RegistrationReport {
    /// Nothing was registered: the workbook was only checked.
    pub dry_run: bool,
    pub courses: u32,
    pub modules: u32,
    /// Topics and subtopics.
    pub topics: u32,
    /// In sheet and row order.
    pub rejected: Vec<RejectedRow>,
}

/// The template to fill in (for those who manage courses).
pub async fn registration_template(svc: &Learning, ctx: &TenantCtx) -> ApiResult<Vec<u8>> {
    TenantTx::begin(&svc.db, ctx, Permission::CoursesManage)
        .await?
        .0
        .commit()
        .await?;
    registration::template()
}

/// Registers the courses, modules and topics of a workbook (at most [`MAX_BYTES`]; 413 past
/// it, 422 on `body` when it is not a workbook of the template). Each row stands alone: a
/// refused course's modules and topics are refused with it, the rest are registered.
pub async fn register_courses(
    svc: &Learning,
    ctx: &TenantCtx,
    file: &mut File,
    dry_run: bool,
    now: OffsetDateTime,
) -> ApiResult<RegistrationReport> {
    TenantTx::begin(&svc.db, ctx, Permission::CoursesManage)
        .await?
        .0
        .commit()
        .await?;
    let bytes = file.read(MAX_BYTES).await?;
    let rows = tokio::task::spawn_blocking(move || registration::read(bytes))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let mut run = Run {
        departments: catalogue::departments_by_name(&mut tx).await?,
        courses: HashMap::new(),
        refused: HashMap::new(),
        topics: HashMap::new(),
        report: RegistrationReport {
            dry_run,
            courses: 0,
            modules: 0,
            topics: 0,
            rejected: Vec::new(),
        },
    };
    for row in &rows.courses {
        run.course(&mut tx, &ctx, row, now).await?;
    }
    for row in &rows.modules {
        run.module(&mut tx, row, now).await?;
    }
    for row in &rows.topics {
        run.topic(&mut tx, row, now).await?;
    }
    let report = run.report;
    if dry_run {
        tx.rollback().await?;
    } else {
        audit::record(
            &mut tx,
            Entry::by(&ctx, "course.registration").detail(serde_json::json!({
                "courses": report.courses,
                "modules": report.modules,
                "topics": report.topics,
                "rejected": report.rejected.len(),
            })),
            now,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// A registration under way.
struct Run {
    departments: HashMap<String, Uuid>,
    /// Courses by code: those registered by this workbook and those of the catalogue it named.
    courses: HashMap<String, Course>,
    /// The codes of the course rows refused, and the row that was.
    refused: HashMap<String, usize>,
    /// The topics of each course by lower-cased title, as subtopic rows name them.
    topics: HashMap<(Uuid, String), Topic>,
    report: RegistrationReport,
}

/// The reasons an error gives, by field (`None` for an error that is not the row's fault).
fn reasons(e: ApiError) -> Result<Vec<(String, String)>, ApiError> {
    match e {
        ApiError::Validation(f) => Ok(f
            .0
            .into_iter()
            .flat_map(|(field, ms)| ms.into_iter().map(move |m| (field.clone(), m)))
            .collect()),
        ApiError::Conflict { field, message } => Ok(vec![(field, message)]),
        other => Err(other),
    }
}

impl Run {
    fn reject(&mut self, row: &Row, field: &str, reason: impl Into<String>) {
        self.report.rejected.push(RejectedRow {
            sheet: row.sheet.to_string(),
            row: row.number as u32,
            field: field.to_string(),
            reason: reason.into(),
        });
    }

    /// Reports `e` against `row` when it is the row's fault, else fails the registration.
    fn refuse(&mut self, row: &Row, e: ApiError) -> ApiResult<()> {
        for (field, reason) in reasons(e)? {
            self.reject(row, &field, reason);
        }
        Ok(())
    }

    async fn course(
        &mut self,
        tx: &mut TenantTx,
        ctx: &TenantCtx,
        row: &Row,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let before = self.report.rejected.len();
        let change = self.course_change(row);
        if self.report.rejected.len() > before {
            self.refused
                .insert(row.get("code").unwrap_or_default().to_string(), row.number);
            return Ok(());
        }
        let saved = async {
            let course = catalogue::merge_course(None, change, ctx.user_id.0, now)?;
            catalogue::check_course(tx, &course).await?;
            catalogue::save_course(tx, &course, true).await?;
            let course = catalogue::get(tx, course.id, false).await?;
            audit::record(
                tx,
                Entry::by(ctx, "course.create")
                    .object("course", course.id)
                    .change(None, json(&course))
                    .detail(serde_json::json!({"registration_row": row.number})),
                now,
            )
            .await?;
            Ok::<_, ApiError>(course)
        }
        .await;
        match saved {
            Ok(course) => {
                self.report.courses += 1;
                self.courses
                    .insert(course.code.clone().unwrap_or_default(), course);
                Ok(())
            }
            Err(e) => {
                self.refused
                    .insert(row.get("code").unwrap_or_default().to_string(), row.number);
                self.refuse(row, e)
            }
        }
    }

    /// The course a row describes; its cells that cannot be read are rejected.
    fn course_change(&mut self, row: &Row) -> CourseChange {
        let difficulty = match row.get("difficulty") {
            None => None,
            Some(d) => {
                let parsed = Difficulty::parse(&d.to_lowercase());
                if parsed.is_none() {
                    self.reject(
                        row,
                        "difficulty",
                        "must be beginner, intermediate or advanced",
                    );
                }
                parsed
            }
        };
        let status = match row.get("status") {
            None => None,
            Some(s) => match s.to_lowercase().as_str() {
                "draft" => Some(CourseStatus::Draft),
                "published" => Some(CourseStatus::Published),
                _ => {
                    self.reject(row, "status", "must be draft or published");
                    None
                }
            },
        };
        let self_enrol = match row.get("self_enrol").map(str::to_lowercase).as_deref() {
            None => None,
            Some("yes" | "true" | "1") => Some(true),
            Some("no" | "false" | "0") => Some(false),
            Some(_) => {
                self.reject(row, "self_enrol", "must be yes or no");
                None
            }
        };
        let department = match row.get("department") {
            None => None,
            Some(name) => {
                let found = self.departments.get(&name.to_lowercase()).copied();
                if found.is_none() {
                    self.reject(
                        row,
                        "department",
                        format!("`{name}` is not a department of the organisation"),
                    );
                }
                found
            }
        };
        let hours = self.number::<f64>(row, "duration_hours");
        let months = self.number::<i32>(row, "certificate_months");
        if hours.is_some_and(|h| h <= 0.0) {
            self.reject(row, "duration_hours", "must be more than 0");
        }
        if months.is_some_and(|m| !(1..=240).contains(&m)) {
            self.reject(row, "certificate_months", "must be between 1 and 240");
        }
        let code = row.get("code").unwrap_or_default().to_string();
        if code.is_empty() {
            self.reject(row, "code", "is required");
        }
        CourseChange {
            code: Some(code),
            title: Some(row.get("title").unwrap_or_default().to_string()),
            category: Some(row.get("category").map(String::from)),
            difficulty,
            duration_hours: Some(hours),
            description: Some(row.get("description").map(String::from)),
            department_id: Some(department),
            owner_id: None,
            status,
            self_enrol,
            certificate_months: Some(months),
        }
    }

    /// A number in `column` (blank: none); text that is not one is rejected.
    fn number<T: std::str::FromStr>(&mut self, row: &Row, column: &str) -> Option<T> {
        let raw = row.get(column)?;
        let parsed = raw.replace(',', ".").parse().ok();
        if parsed.is_none() {
            self.reject(row, column, format!("`{raw}` is not a number"));
        }
        parsed
    }

    /// The course a module or topic row names: one this workbook registered, or a live one of
    /// the catalogue; none (and the row rejected) otherwise.
    async fn course_of(&mut self, tx: &mut TenantTx, row: &Row) -> ApiResult<Option<Course>> {
        let Some(code) = row.get("course_code").map(String::from) else {
            self.reject(row, "course_code", "is required");
            return Ok(None);
        };
        if let Some(c) = self.courses.get(&code) {
            return Ok(Some(c.clone()));
        }
        if let Some(n) = self.refused.get(&code) {
            let n = *n;
            self.reject(
                row,
                "course_code",
                format!("its course (row {n} of `Courses`) was refused"),
            );
            return Ok(None);
        }
        match catalogue::by_code(tx, &code).await? {
            Some(c) => {
                for t in topics::syllabus(tx, c.id).await? {
                    self.topics
                        .insert((c.id, t.topic.title.to_lowercase()), t.topic);
                }
                self.courses.insert(code, c.clone());
                Ok(Some(c))
            }
            None => {
                self.reject(
                    row,
                    "course_code",
                    format!("`{code}` is not a course of this workbook or the catalogue"),
                );
                Ok(None)
            }
        }
    }

    async fn module(&mut self, tx: &mut TenantTx, row: &Row, now: OffsetDateTime) -> ApiResult<()> {
        let before = self.report.rejected.len();
        let hours = self.number::<f64>(row, "duration_hours");
        let Some(course) = self.course_of(tx, row).await? else {
            return Ok(());
        };
        if self.report.rejected.len() > before {
            return Ok(());
        }
        let change = ModuleChange {
            title: Some(row.get("title").unwrap_or_default().to_string()),
            description: Some(row.get("description").map(String::from)),
            duration_hours: hours,
            position: None,
        };
        match catalogue::save_module(tx, &course, None, change, now).await {
            Ok(_) => {
                self.report.modules += 1;
                Ok(())
            }
            Err(e) => self.refuse(row, e),
        }
    }

    async fn topic(&mut self, tx: &mut TenantTx, row: &Row, now: OffsetDateTime) -> ApiResult<()> {
        let before = self.report.rejected.len();
        let hours = self.number::<f64>(row, "duration_hours");
        let Some(course) = self.course_of(tx, row).await? else {
            return Ok(());
        };
        let Some(topic) = row.get("topic").map(String::from) else {
            self.reject(row, "topic", "is required");
            return Ok(());
        };
        if self.report.rejected.len() > before {
            return Ok(());
        }
        let key = (course.id, topic.to_lowercase());
        let (parent, title) = match row.get("subtopic") {
            None => (None, topic.clone()),
            Some(sub) => match self.topics.get(&key) {
                Some(p) => (Some(p.clone()), sub.to_string()),
                None => {
                    self.reject(
                        row,
                        "topic",
                        format!("`{topic}` is not a topic of the course: add its row first"),
                    );
                    return Ok(());
                }
            },
        };
        let change = TopicChange {
            title: Some(title),
            description: Some(row.get("description").map(String::from)),
            duration_hours: hours,
            position: None,
        };
        match topics::save(tx, &course, parent.as_ref(), None, change, now).await {
            Ok(t) => {
                self.report.topics += 1;
                if parent.is_none() {
                    self.topics.insert(key, t);
                }
                Ok(())
            }
            Err(e) => self.refuse(row, e),
        }
    }
}
