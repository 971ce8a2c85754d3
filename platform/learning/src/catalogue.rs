//! The catalogue: courses, their ordered modules and lessons, and prerequisites between courses.
//!
//! A course's code is unique among the tenant's live courses; a module's position is unique in
//! its course and a lesson's in its module (among live ones); the modules' hours never exceed
//! the course's declared duration. A prerequisite that would close a cycle is refused with the
//! cycle named.

use std::collections::{HashMap, HashSet, VecDeque};

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use trainflow_kernel::{
    db::TenantTx,
    domain::{bounded, like_pattern, optional},
    envelope::Page,
    sql, ApiError, ApiResult, FieldErrors,
};
use uuid::Uuid;

use crate::text_enum;

text_enum! {
    /// Where a course is in its life: only published courses are open to people.
    CourseStatus {
        Draft = "draft",
        Published = "published",
        Archived = "archived",
    }
}

text_enum! {
    /// How demanding a course is.
    Difficulty {
        Beginner = "beginner",
        Intermediate = "intermediate",
        Advanced = "advanced",
    }
}

text_enum! {
    /// What a lesson is: text to read, a file, a link, or an assessment (a quiz).
    LessonKind {
        Text = "text",
        File = "file",
        Link = "link",
        Assessment = "assessment",
    }
}

/// The longest validity of a course's certificate, in months.
pub const MAX_CERTIFICATE_MONTHS: i32 = 240;

/// The longest declared duration of a course, in hours.
pub const MAX_COURSE_HOURS: f64 = 10_000.0;

/// A course of the catalogue.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Course {
    pub id: Uuid,
    /// Unique among the tenant's courses (courses imported without one have none).
    pub code: Option<String>,
    pub title: String,
    pub category: Option<String>,
    #[sqlx(try_from = "String")]
    pub difficulty: Difficulty,
    /// Declared duration; the modules' hours never exceed it.
    pub duration_hours: Option<f64>,
    pub description: Option<String>,
    pub department_id: Option<Uuid>,
    pub department_name: Option<String>,
    /// The person who answers for the course.
    pub owner_id: Option<Uuid>,
    #[sqlx(try_from = "String")]
    pub status: CourseStatus,
    /// Whether people may enrol themselves (else only by assignment).
    pub self_enrol: bool,
    /// Months the certificate of completion is valid (none: it does not expire).
    pub certificate_months: Option<i32>,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Set while the course is deleted (only those who manage courses see it then).
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

const COURSE_COLUMNS: &str = "c.id, c.code, c.title, c.category, c.difficulty, c.duration_hours, \
     c.description, c.department_id, d.name as department_name, c.owner_id, c.status, \
     c.self_enrol, c.certificate_months, c.created_by, c.created_at, c.updated_at, c.deleted_at";

const COURSE_FROM: &str = "from courses c left join directory_departments d \
     on d.tenant_id = c.tenant_id and d.id = c.department_id";

/// What a course is made of, as a use case changes it: a create gives every field, a change
/// only those it changes (`None` keeps the value; the `clear_*` flags empty an optional one).
#[derive(Debug, Clone, Default)]
pub struct CourseChange {
    pub code: Option<String>,
    pub title: Option<String>,
    pub category: Option<Option<String>>,
    pub difficulty: Option<Difficulty>,
    pub duration_hours: Option<Option<f64>>,
    pub description: Option<Option<String>>,
    pub department_id: Option<Option<Uuid>>,
    pub owner_id: Option<Option<Uuid>>,
    pub status: Option<CourseStatus>,
    pub self_enrol: Option<bool>,
    pub certificate_months: Option<Option<i32>>,
}

/// Which courses to list.
#[derive(Debug, Clone, Default)]
pub struct CourseFilter {
    /// Words in the title, code, category or description.
    pub search: Option<String>,
    pub category: Option<String>,
    pub status: Option<CourseStatus>,
    pub department_id: Option<Uuid>,
    /// Only published courses (what people who do not manage courses see).
    pub published_only: bool,
    /// Deleted courses instead of live ones.
    pub deleted: bool,
}

/// One page of courses by title, and the total.
pub async fn list(
    tx: &mut TenantTx,
    filter: &CourseFilter,
    page: Page,
) -> ApiResult<(Vec<Course>, i64)> {
    let tenant = tx.tenant();
    // One filter for the page and the count, written out once for both backends.
    macro_rules! filtered {
        ($select:expr) => {{
            let mut qb =
                QueryBuilder::new(format!("{} {COURSE_FROM} where c.tenant_id = ", $select));
            qb.push_bind(tenant);
            qb.push(if filter.deleted {
                " and c.deleted_at is not null"
            } else {
                " and c.deleted_at is null"
            });
            if filter.published_only {
                qb.push(" and c.status = 'published'");
            } else if let Some(s) = filter.status {
                qb.push(" and c.status = ").push_bind(s.as_str());
            }
            if let Some(cat) = &filter.category {
                // A NUL (which PostgreSQL refuses in text) is in no category.
                qb.push(" and lower(c.category) = ")
                    .push_bind(cat.to_lowercase().replace('\0', "\u{fffd}"));
            }
            if let Some(d) = filter.department_id {
                qb.push(" and c.department_id = ").push_bind(d);
            }
            for word in filter
                .search
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .take(8)
            {
                let p = like_pattern(word);
                qb.push(" and (lower(c.title) like ")
                    .push_bind(p.clone())
                    .push(" escape '\\' or lower(coalesce(c.code, '')) like ")
                    .push_bind(p.clone())
                    .push(" escape '\\' or lower(coalesce(c.category, '')) like ")
                    .push_bind(p.clone())
                    .push(" escape '\\' or lower(coalesce(c.description, '')) like ")
                    .push_bind(p)
                    .push(" escape '\\')");
            }
            qb
        }};
    }
    let rows: Vec<Course> = sql!(tx.conn() => |c| {
        let mut qb = filtered!(format!("select {COURSE_COLUMNS}"));
        qb.push(" order by lower(c.title), c.id limit ").push_bind(page.limit())
            .push(" offset ").push_bind(page.offset());
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let total: i64 = sql!(tx.conn() => |c| {
        let mut qb = filtered!("select count(*)");
        qb.build_query_scalar().fetch_one(&mut *c).await
    })?;
    Ok((rows, total))
}

/// The tenant's course categories in use, for the catalogue's filter.
pub async fn categories(tx: &mut TenantTx, published_only: bool) -> ApiResult<Vec<String>> {
    let tenant = tx.tenant();
    let rows: Vec<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select distinct category from courses
          where tenant_id = $1 and deleted_at is null and category is not null
            and ($2 = false or status = 'published')
          order by category limit 200")
        .bind(tenant).bind(published_only).fetch_all(&mut *c).await)?;
    Ok(rows)
}

/// A course, live or (`deleted`) deleted.
pub async fn get(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Course> {
    let tenant = tx.tenant();
    let row: Option<Course> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COURSE_COLUMNS} {COURSE_FROM}
          where c.tenant_id = $1 and c.id = $2 and (c.deleted_at is not null) = $3"))
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// The live course with `code`, if any.
pub async fn by_code(tx: &mut TenantTx, code: &str) -> ApiResult<Option<Course>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COURSE_COLUMNS} {COURSE_FROM}
          where c.tenant_id = $1 and c.code = $2 and c.deleted_at is null"))
        .bind(tenant).bind(code).fetch_optional(&mut *c).await)?)
}

/// The tenant's live departments by name, lower-cased.
pub async fn departments_by_name(tx: &mut TenantTx) -> ApiResult<HashMap<String, Uuid>> {
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, String)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, name from directory_departments where tenant_id = $1 and deleted_at is null")
        .bind(tenant).fetch_all(&mut *c).await)?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| (name.trim().to_lowercase(), id))
        .collect())
}

/// Several live courses by id (those that exist).
pub async fn get_many(tx: &mut TenantTx, ids: &[Uuid]) -> ApiResult<Vec<Course>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(format!("select {COURSE_COLUMNS} {COURSE_FROM} where c.tenant_id = "));
        qb.push_bind(tenant).push(" and c.deleted_at is null and c.id in (");
        let mut list = qb.separated(", ");
        for id in ids { list.push_bind(*id); }
        qb.push(") order by lower(c.title), c.id");
        qb.build_query_as().fetch_all(&mut *c).await
    })?)
}

fn text_field(e: &mut FieldErrors, field: &str, raw: &str, max: usize) -> Option<String> {
    e.check(field, bounded(raw, 1, max))
}

fn optional_field(
    e: &mut FieldErrors,
    field: &str,
    raw: Option<String>,
    max: usize,
) -> Option<String> {
    e.check(field, optional(raw.as_deref(), max)).flatten()
}

/// `change` merged over `current` (create: none), checked; the course to save.
pub fn merge_course(
    current: Option<&Course>,
    change: CourseChange,
    actor: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Course> {
    let mut e = FieldErrors::new();
    let code = match (change.code, current) {
        (Some(c), _) => text_field(&mut e, "code", &c, 50),
        (None, Some(cur)) => cur.code.clone(),
        (None, None) => {
            e.add("code", "is required");
            None
        }
    };
    let title = merged_title(&mut e, change.title, current.map(|c| &c.title));
    let category = match change.category {
        Some(c) => optional_field(&mut e, "category", c, 100),
        None => current.and_then(|c| c.category.clone()),
    };
    let description = match change.description {
        Some(d) => optional_field(&mut e, "description", d, 5000),
        None => current.and_then(|c| c.description.clone()),
    };
    let duration = match change.duration_hours {
        Some(h) => h,
        None => current.and_then(|c| c.duration_hours),
    };
    if duration.is_some_and(|h| !(h.is_finite() && h > 0.0 && h <= MAX_COURSE_HOURS)) {
        e.add(
            "duration_hours",
            format!("must be more than 0 and at most {MAX_COURSE_HOURS}"),
        );
    }
    let certificate_months = match change.certificate_months {
        Some(m) => m,
        None => current.and_then(|c| c.certificate_months),
    };
    if certificate_months.is_some_and(|m| !(1..=MAX_CERTIFICATE_MONTHS).contains(&m)) {
        e.add(
            "certificate_months",
            format!("must be between 1 and {MAX_CERTIFICATE_MONTHS}"),
        );
    }
    e.into_result()?;
    Ok(Course {
        id: current.map_or_else(Uuid::now_v7, |c| c.id),
        code,
        title: title.expect("checked"),
        category,
        difficulty: change
            .difficulty
            .or(current.map(|c| c.difficulty))
            .unwrap_or(Difficulty::Beginner),
        duration_hours: duration,
        description,
        department_id: match change.department_id {
            Some(d) => d,
            None => current.and_then(|c| c.department_id),
        },
        department_name: current.and_then(|c| c.department_name.clone()),
        owner_id: match change.owner_id {
            Some(o) => o,
            None => current.and_then(|c| c.owner_id),
        },
        status: change
            .status
            .or(current.map(|c| c.status))
            .unwrap_or(CourseStatus::Draft),
        self_enrol: change
            .self_enrol
            .or(current.map(|c| c.self_enrol))
            .unwrap_or(true),
        certificate_months,
        created_by: current.map_or(Some(actor), |c| c.created_by),
        created_at: current.map_or(now, |c| c.created_at),
        updated_at: now,
        deleted_at: None,
    })
}

/// Checks what a course refers to: its department and owner exist, its code is free, and its
/// duration holds its modules.
pub async fn check_course(tx: &mut TenantTx, course: &Course) -> ApiResult<()> {
    let tenant = tx.tenant();
    let mut e = FieldErrors::new();
    if let Some(d) = course.department_id {
        let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from directory_departments where tenant_id = $1 and id = $2 and deleted_at is null")
            .bind(tenant).bind(d).fetch_optional(&mut *c).await)?;
        if found.is_none() {
            e.add("department_id", "is not a department of the organisation");
        }
    }
    if let Some(o) = course.owner_id {
        let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from directory_people where tenant_id = $1 and id = $2 and deleted_at is null and is_active = true")
            .bind(tenant).bind(o).fetch_optional(&mut *c).await)?;
        if found.is_none() {
            e.add("owner_id", "is not an active person of the organisation");
        }
    }
    e.into_result()?;
    if let Some(code) = &course.code {
        let taken: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from courses where tenant_id = $1 and code = $2 and id <> $3 and deleted_at is null")
            .bind(tenant).bind(code).bind(course.id).fetch_optional(&mut *c).await)?;
        if taken.is_some() {
            return Err(ApiError::Conflict {
                field: "code".into(),
                message: format!("another course has the code `{code}`"),
            });
        }
    }
    if let Some(hours) = course.duration_hours {
        let planned = module_hours(tx, course.id, None).await?;
        if planned > hours + 1e-6 {
            return Err(ApiError::field(
                "duration_hours",
                format!("the modules already take {planned} hours"),
            ));
        }
        let topics =
            crate::topics::hours_within(tx, Slot::Topic { course: course.id }, None).await?;
        if topics > hours + 1e-6 {
            return Err(ApiError::field(
                "duration_hours",
                format!("the topics already take {topics} hours"),
            ));
        }
    }
    Ok(())
}

/// Inserts (`create`) or updates a checked course.
pub async fn save_course(tx: &mut TenantTx, course: &Course, create: bool) -> ApiResult<()> {
    let tenant = tx.tenant();
    let c = course;
    if create {
        sql!(tx.conn() => |conn| sqlx::query(
            "insert into courses (tenant_id, id, code, title, category, difficulty, duration_hours,
                    description, department_id, owner_id, status, self_enrol, created_by, created_at, updated_at,
                    certificate_months)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)")
            .bind(tenant).bind(c.id).bind(&c.code).bind(&c.title).bind(&c.category)
            .bind(c.difficulty.as_str()).bind(c.duration_hours).bind(&c.description)
            .bind(c.department_id).bind(c.owner_id).bind(c.status.as_str()).bind(c.self_enrol)
            .bind(c.created_by).bind(c.created_at).bind(c.certificate_months)
            .execute(&mut *conn).await.map(drop))?;
    } else {
        sql!(tx.conn() => |conn| sqlx::query(
            "update courses set code = $3, title = $4, category = $5, difficulty = $6,
                    duration_hours = $7, description = $8, department_id = $9, owner_id = $10,
                    status = $11, self_enrol = $12, updated_at = $13, certificate_months = $14
              where tenant_id = $1 and id = $2")
            .bind(tenant).bind(c.id).bind(&c.code).bind(&c.title).bind(&c.category)
            .bind(c.difficulty.as_str()).bind(c.duration_hours).bind(&c.description)
            .bind(c.department_id).bind(c.owner_id).bind(c.status.as_str()).bind(c.self_enrol)
            .bind(c.updated_at).bind(c.certificate_months).execute(&mut *conn).await.map(drop))?;
    }
    Ok(())
}

/// Soft-deletes (`deleted`) or restores a course; a restored course whose code another live
/// course took since is refused.
pub async fn set_course_deleted(
    tx: &mut TenantTx,
    course: &Course,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    if !deleted {
        if let Some(code) = &course.code {
            let taken: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select id from courses where tenant_id = $1 and code = $2 and id <> $3 and deleted_at is null")
                .bind(tenant).bind(code).bind(course.id).fetch_optional(&mut *c).await)?;
            if taken.is_some() {
                return Err(ApiError::Conflict {
                    field: "code".into(),
                    message: format!(
                        "another course took the code `{code}`; change its code first"
                    ),
                });
            }
        }
    }
    let at = deleted.then_some(now);
    sql!(tx.conn() => |c| sqlx::query(
        "update courses set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(course.id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Modules and lessons

/// A module of a course.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Module {
    pub id: Uuid,
    pub course_id: Uuid,
    /// 1-based, unique in the course.
    pub position: i32,
    pub title: String,
    pub description: Option<String>,
    pub duration_hours: f64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

const MODULE_COLUMNS: &str =
    "id, course_id, position, title, description, duration_hours, deleted_at";

/// A lesson of a module.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Lesson {
    pub id: Uuid,
    pub course_id: Uuid,
    pub module_id: Uuid,
    /// 1-based, unique in the module.
    pub position: i32,
    pub title: String,
    #[sqlx(try_from = "String")]
    pub kind: LessonKind,
    /// The text of a `text` lesson.
    pub body: Option<String>,
    /// The address of a `link` lesson.
    pub url: Option<String>,
    pub duration_minutes: i32,
    /// Whether completing the course needs this lesson.
    pub required: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

const LESSON_COLUMNS: &str = "id, course_id, module_id, position, title, kind, body, url, \
     duration_minutes, required, deleted_at";

/// Sets whether completing the course needs a lesson.
pub async fn set_lesson_required(
    tx: &mut TenantTx,
    id: Uuid,
    required: bool,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update course_lessons set required = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(required).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// The live modules of a course, in order.
pub async fn modules(tx: &mut TenantTx, course: Uuid) -> ApiResult<Vec<Module>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {MODULE_COLUMNS} from course_modules
          where tenant_id = $1 and course_id = $2 and deleted_at is null order by position"))
        .bind(tenant).bind(course).fetch_all(&mut *c).await)?)
}

/// The live lessons of a course's live modules, by module and position.
pub async fn lessons(tx: &mut TenantTx, course: Uuid) -> ApiResult<Vec<Lesson>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select l.id, l.course_id, l.module_id, l.position, l.title, l.kind, l.body, l.url,
                l.duration_minutes, l.required, l.deleted_at
           from course_lessons l
           join course_modules m on m.tenant_id = l.tenant_id and m.id = l.module_id
          where l.tenant_id = $1 and l.course_id = $2 and l.deleted_at is null and m.deleted_at is null
          order by m.position, l.position")
        .bind(tenant).bind(course).fetch_all(&mut *c).await)?)
}

/// A module, live or (`deleted`) deleted.
pub async fn get_module(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Module> {
    let tenant = tx.tenant();
    let row: Option<Module> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {MODULE_COLUMNS} from course_modules
          where tenant_id = $1 and id = $2 and (deleted_at is not null) = $3"))
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// A lesson, live or (`deleted`) deleted.
pub async fn get_lesson(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Lesson> {
    let tenant = tx.tenant();
    let row: Option<Lesson> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {LESSON_COLUMNS} from course_lessons
          where tenant_id = $1 and id = $2 and (deleted_at is not null) = $3"))
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// The hours of a course's live modules, less the module `except`.
async fn module_hours(tx: &mut TenantTx, course: Uuid, except: Option<Uuid>) -> ApiResult<f64> {
    let tenant = tx.tenant();
    let hours: Vec<f64> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select duration_hours from course_modules
          where tenant_id = $1 and course_id = $2 and deleted_at is null and id <> $3")
        .bind(tenant).bind(course).bind(except.unwrap_or(Uuid::nil())).fetch_all(&mut *c).await)?;
    Ok(hours.into_iter().sum())
}

/// Where an ordered part of a course is placed: among a course's modules, a module's lessons,
/// a course's topics or a topic's subtopics.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    Module { course: Uuid },
    Lesson { module: Uuid },
    Topic { course: Uuid },
    Subtopic { topic: Uuid },
}

impl Slot {
    /// (table, the condition on `$2` that selects the siblings, `$2`, what it holds, what holds
    /// it).
    fn parts(self) -> (&'static str, &'static str, Uuid, &'static str, &'static str) {
        match self {
            Slot::Module { course } => (
                "course_modules",
                "course_id = $2",
                course,
                "module",
                "course",
            ),
            Slot::Lesson { module } => (
                "course_lessons",
                "module_id = $2",
                module,
                "lesson",
                "module",
            ),
            Slot::Topic { course } => (
                "course_topics",
                "course_id = $2 and parent_id is null",
                course,
                "topic",
                "course",
            ),
            Slot::Subtopic { topic } => (
                "course_topics",
                "parent_id = $2",
                topic,
                "subtopic",
                "topic",
            ),
        }
    }
}

/// The position `id` takes in `slot`: `wanted`, else where it is (`current`), else after the
/// last live one. A position another live one holds, or none left, is a 409 on `position`.
pub(crate) async fn place(
    tx: &mut TenantTx,
    slot: Slot,
    id: Uuid,
    wanted: Option<i32>,
    current: Option<i32>,
) -> ApiResult<i32> {
    let tenant = tx.tenant();
    let (table, siblings, parent, item, holder) = slot.parts();
    let position = match wanted.or(current) {
        Some(p) => p,
        None => {
            let top: Option<i32> = sql!(tx.conn() => |c| sqlx::query_scalar(&format!(
                "select max(position) from {table} where tenant_id = $1 and {siblings} and deleted_at is null"))
                .bind(tenant).bind(parent).fetch_one(&mut *c).await)?;
            top.unwrap_or(0) + 1
        }
    };
    if position > MAX_POSITION {
        return Err(ApiError::Conflict {
            field: "position".into(),
            message: format!(
                "the last {item} of the {holder} is at position {MAX_POSITION}: give a free position"
            ),
        });
    }
    let taken: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(&format!(
        "select id from {table} where tenant_id = $1 and {siblings} and position = $3
            and id <> $4 and deleted_at is null"))
        .bind(tenant).bind(parent).bind(position).bind(id).fetch_optional(&mut *c).await)?;
    if taken.is_some() {
        return Err(ApiError::Conflict {
            field: "position".into(),
            message: format!("another {item} of the {holder} is at position {position}"),
        });
    }
    Ok(position)
}

/// A required title: the new one checked, else the current one; a 422 when neither.
fn merged_title(
    e: &mut FieldErrors,
    new: Option<String>,
    current: Option<&String>,
) -> Option<String> {
    match (new, current) {
        (Some(t), _) => text_field(e, "title", &t, 200),
        (None, Some(t)) => Some(t.clone()),
        (None, None) => {
            e.add("title", "is required");
            None
        }
    }
}

/// A position given must lie in 1–[`MAX_POSITION`].
fn check_position(e: &mut FieldErrors, position: Option<i32>) {
    if position.is_some_and(|p| !(1..=MAX_POSITION).contains(&p)) {
        e.add("position", format!("must be between 1 and {MAX_POSITION}"));
    }
}

/// A module's (or a topic's, [`crate::topics::TopicChange`]) fields as a use case changes them
/// (`None` keeps the value).
#[derive(Debug, Clone, Default)]
pub struct ModuleChange {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub duration_hours: Option<f64>,
    pub position: Option<i32>,
}

/// The largest position of a module or lesson.
pub const MAX_POSITION: i32 = 1000;

/// The fields a module and a topic share, `change` over `current` (title, description, hours),
/// checked with the position asked for: a 422 naming each field at fault.
pub(crate) fn part_fields(
    change: &ModuleChange,
    current: Option<(&String, &Option<String>, f64)>,
) -> ApiResult<(String, Option<String>, f64)> {
    let mut e = FieldErrors::new();
    let title = merged_title(&mut e, change.title.clone(), current.map(|c| c.0));
    let description = match &change.description {
        Some(d) => optional_field(&mut e, "description", d.clone(), 5000),
        None => current.and_then(|c| c.1.clone()),
    };
    let hours = change
        .duration_hours
        .or(current.map(|c| c.2))
        .unwrap_or(0.0);
    if !(hours.is_finite() && (0.0..=MAX_COURSE_HOURS).contains(&hours)) {
        e.add(
            "duration_hours",
            format!("must be between 0 and {MAX_COURSE_HOURS}"),
        );
    }
    check_position(&mut e, change.position);
    e.into_result()?;
    Ok((title.expect("checked"), description, hours))
}

/// `change` over `current` (create: none, in `course`), checked against the course: position
/// free (409), the modules' hours within the course's duration (422). Saves it.
pub async fn save_module(
    tx: &mut TenantTx,
    course: &Course,
    current: Option<&Module>,
    change: ModuleChange,
    now: OffsetDateTime,
) -> ApiResult<Module> {
    let (title, description, hours) = part_fields(
        &change,
        current.map(|m| (&m.title, &m.description, m.duration_hours)),
    )?;
    let tenant = tx.tenant();
    let id = current.map_or_else(Uuid::now_v7, |m| m.id);
    if let Some(limit) = course.duration_hours {
        let others = module_hours(tx, course.id, Some(id)).await?;
        if others + hours > limit + 1e-6 {
            return Err(ApiError::field(
                "duration_hours",
                format!(
                    "the course lasts {limit} hours and its other modules take {others}: at most {} left",
                    (limit - others).max(0.0)
                ),
            ));
        }
    }
    let slot = Slot::Module { course: course.id };
    let position = place(tx, slot, id, change.position, current.map(|m| m.position)).await?;
    let module = Module {
        id,
        course_id: course.id,
        position,
        title,
        description,
        duration_hours: hours,
        deleted_at: None,
    };
    let m = &module;
    if current.is_none() {
        sql!(tx.conn() => |c| sqlx::query(
            "insert into course_modules (tenant_id, id, course_id, position, title, description,
                    duration_hours, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8)")
            .bind(tenant).bind(m.id).bind(m.course_id).bind(m.position).bind(&m.title)
            .bind(&m.description).bind(m.duration_hours).bind(now).execute(&mut *c).await.map(drop))?;
    } else {
        sql!(tx.conn() => |c| sqlx::query(
            "update course_modules set position = $3, title = $4, description = $5, duration_hours = $6,
                    updated_at = $7 where tenant_id = $1 and id = $2")
            .bind(tenant).bind(m.id).bind(m.position).bind(&m.title).bind(&m.description)
            .bind(m.duration_hours).bind(now).execute(&mut *c).await.map(drop))?;
    }
    Ok(module)
}

/// Soft-deletes or restores a module (a restore checks its position and hours again).
pub async fn set_module_deleted(
    tx: &mut TenantTx,
    course: &Course,
    module: &Module,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Module> {
    let tenant = tx.tenant();
    if !deleted {
        // Checked as if saved again.
        let live = Module {
            deleted_at: None,
            ..module.clone()
        };
        save_module(tx, course, Some(&live), ModuleChange::default(), now).await?;
    }
    let at = deleted.then_some(now);
    sql!(tx.conn() => |c| sqlx::query(
        "update course_modules set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(module.id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(Module {
        deleted_at: at,
        ..module.clone()
    })
}

/// A lesson's fields as a use case changes them (`None` keeps the value).
#[derive(Debug, Clone, Default)]
pub struct LessonChange {
    pub title: Option<String>,
    pub kind: Option<LessonKind>,
    pub body: Option<Option<String>>,
    pub url: Option<Option<String>>,
    pub duration_minutes: Option<i32>,
    pub required: Option<bool>,
    pub position: Option<i32>,
}

/// The longest lesson, in minutes.
pub const MAX_LESSON_MINUTES: i32 = 10_000;

/// `change` over `current` (create: none, in `module`), checked: a text lesson has its text, a
/// link lesson an `http(s)` address, the position is free in the module (409). Saves it.
pub async fn save_lesson(
    tx: &mut TenantTx,
    module: &Module,
    current: Option<&Lesson>,
    change: LessonChange,
    now: OffsetDateTime,
) -> ApiResult<Lesson> {
    let mut e = FieldErrors::new();
    let title = merged_title(&mut e, change.title, current.map(|l| &l.title));
    let kind = change
        .kind
        .or(current.map(|l| l.kind))
        .unwrap_or(LessonKind::Text);
    let body = match change.body {
        Some(b) => optional_field(&mut e, "body", b, 100_000),
        None => current.and_then(|l| l.body.clone()),
    };
    let url = match change.url {
        Some(u) => optional_field(&mut e, "url", u, 2000),
        None => current.and_then(|l| l.url.clone()),
    };
    if let Some(u) = &url {
        if !(u.starts_with("https://") || u.starts_with("http://"))
            || u.contains(char::is_whitespace)
        {
            e.add("url", "must be an http:// or https:// address");
        }
    }
    match kind {
        LessonKind::Text if body.is_none() => e.add("body", "a text lesson needs its text"),
        LessonKind::Link if url.is_none() && !e.0.contains_key("url") => {
            e.add("url", "a link lesson needs its address")
        }
        _ => {}
    }
    let minutes = change
        .duration_minutes
        .or(current.map(|l| l.duration_minutes))
        .unwrap_or(0);
    if !(0..=MAX_LESSON_MINUTES).contains(&minutes) {
        e.add(
            "duration_minutes",
            format!("must be between 0 and {MAX_LESSON_MINUTES}"),
        );
    }
    check_position(&mut e, change.position);
    // An assessment lesson holds a course's completion back only once its quiz is set (setting
    // the quiz makes it required); a lesson that becomes an assessment becomes optional.
    let has_quiz = match current {
        Some(l) => crate::assessments::quiz(tx, l.id).await?.is_some(),
        None => false,
    };
    let required = match (change.required, kind) {
        (Some(r), _) => r,
        (None, LessonKind::Assessment) => {
            has_quiz && current.is_some_and(|l| l.required && l.kind == LessonKind::Assessment)
        }
        (None, _) => current.is_none_or(|l| l.required),
    };
    if required && kind == LessonKind::Assessment && !has_quiz {
        e.add(
            "required",
            "an assessment lesson is optional until its quiz is set",
        );
    }
    e.into_result()?;
    let tenant = tx.tenant();
    let id = current.map_or_else(Uuid::now_v7, |l| l.id);
    let slot = Slot::Lesson { module: module.id };
    let position = place(tx, slot, id, change.position, current.map(|l| l.position)).await?;
    let lesson = Lesson {
        id,
        course_id: module.course_id,
        module_id: module.id,
        position,
        title: title.expect("checked"),
        kind,
        body,
        url,
        duration_minutes: minutes,
        required,
        deleted_at: None,
    };
    let l = &lesson;
    if current.is_none() {
        sql!(tx.conn() => |c| sqlx::query(
            "insert into course_lessons (tenant_id, id, course_id, module_id, position, title, kind,
                    body, url, duration_minutes, required, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)")
            .bind(tenant).bind(l.id).bind(l.course_id).bind(l.module_id).bind(l.position)
            .bind(&l.title).bind(l.kind.as_str()).bind(&l.body).bind(&l.url)
            .bind(l.duration_minutes).bind(l.required).bind(now).execute(&mut *c).await.map(drop))?;
    } else {
        sql!(tx.conn() => |c| sqlx::query(
            "update course_lessons set position = $3, title = $4, kind = $5, body = $6, url = $7,
                    duration_minutes = $8, required = $9, updated_at = $10
              where tenant_id = $1 and id = $2")
            .bind(tenant).bind(l.id).bind(l.position).bind(&l.title).bind(l.kind.as_str())
            .bind(&l.body).bind(&l.url).bind(l.duration_minutes).bind(l.required).bind(now)
            .execute(&mut *c).await.map(drop))?;
    }
    Ok(lesson)
}

/// Soft-deletes or restores a lesson (a restore checks its position again).
pub async fn set_lesson_deleted(
    tx: &mut TenantTx,
    module: &Module,
    lesson: &Lesson,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Lesson> {
    let tenant = tx.tenant();
    if !deleted {
        let live = Lesson {
            deleted_at: None,
            ..lesson.clone()
        };
        save_lesson(tx, module, Some(&live), LessonChange::default(), now).await?;
    }
    let at = deleted.then_some(now);
    sql!(tx.conn() => |c| sqlx::query(
        "update course_lessons set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(lesson.id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(Lesson {
        deleted_at: at,
        ..lesson.clone()
    })
}

// ---------------------------------------------------------------------------------------------
// Prerequisites

/// A course another requires, as the course page lists it.
#[derive(Debug, Clone, Object, Serialize, Deserialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct CourseRef {
    pub id: Uuid,
    pub code: Option<String>,
    pub title: String,
}

/// The tenant's prerequisite edges, course → the courses it requires: between live courses
/// only (`live`), or all of them, deleted courses' too (a course restored brings its edges back,
/// so a cycle is looked for through them as well).
async fn edges(tx: &mut TenantTx, live: bool) -> ApiResult<HashMap<Uuid, Vec<Uuid>>> {
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, Uuid)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select p.course_id, p.requires_id from course_prerequisites p
           join courses a on a.tenant_id = p.tenant_id and a.id = p.course_id
           join courses b on b.tenant_id = p.tenant_id and b.id = p.requires_id
          where p.tenant_id = $1 and ($2 = false or (a.deleted_at is null and b.deleted_at is null))
          order by p.course_id, p.requires_id")
        .bind(tenant).bind(live).fetch_all(&mut *c).await)?;
    let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (course, requires) in rows {
        out.entry(course).or_default().push(requires);
    }
    Ok(out)
}

/// The path `from` → … → `to` along the edges, if there is one (breadth first: the shortest).
fn path(edges: &HashMap<Uuid, Vec<Uuid>>, from: Uuid, to: Uuid) -> Option<Vec<Uuid>> {
    let mut came_from: HashMap<Uuid, Uuid> = HashMap::new();
    let mut seen = HashSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut out = vec![to];
            let mut cur = to;
            while let Some(prev) = came_from.get(&cur) {
                out.push(*prev);
                cur = *prev;
            }
            out.reverse();
            return Some(out);
        }
        for next in edges.get(&at).into_iter().flatten() {
            if seen.insert(*next) {
                came_from.insert(*next, at);
                queue.push_back(*next);
            }
        }
    }
    None
}

/// How a course is named in messages: its code, else its title.
fn label(c: &Course) -> String {
    c.code.clone().unwrap_or_else(|| c.title.clone())
}

/// Makes `requires` a prerequisite of `course`; one that would close a cycle is a 422 on
/// `required_course_id` naming the cycle. Returns whether it was new.
pub async fn add_prerequisite(
    tx: &mut TenantTx,
    course: &Course,
    requires: &Course,
    now: OffsetDateTime,
) -> ApiResult<bool> {
    if course.id == requires.id {
        return Err(ApiError::field(
            "required_course_id",
            "a course cannot require itself",
        ));
    }
    // One change of the tenant's graph at a time, so two opposite edges added at once cannot
    // both pass the check (SQLite's writers are one at a time already).
    if tx.backend() == trainflow_kernel::db::Backend::Postgres {
        let key = format!("course_prerequisites:{}", tx.tenant().0);
        sql!(tx.conn() => |c| sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key).execute(&mut *c).await.map(drop))?;
    }
    let graph = edges(tx, false).await?;
    if graph
        .get(&course.id)
        .is_some_and(|r| r.contains(&requires.id))
    {
        return Ok(false);
    }
    // The new edge course → requires closes a cycle when course is reachable from requires.
    if let Some(cycle) = path(&graph, requires.id, course.id) {
        let courses = get_many(tx, &cycle).await?;
        let names: HashMap<Uuid, String> = courses.iter().map(|c| (c.id, label(c))).collect();
        let mut chain: Vec<String> = vec![label(course)];
        chain.extend(
            cycle
                .iter()
                .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string())),
        );
        return Err(ApiError::field(
            "required_course_id",
            format!(
                "would close the cycle {} (each requires the next)",
                chain.join(" → ")
            ),
        ));
    }
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into course_prerequisites (tenant_id, course_id, requires_id, created_at)
         values ($1, $2, $3, $4) on conflict do nothing")
        .bind(tenant).bind(course.id).bind(requires.id).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(true)
}

/// Removes a prerequisite; 404 when there was none.
pub async fn remove_prerequisite(tx: &mut TenantTx, course: Uuid, requires: Uuid) -> ApiResult<()> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "delete from course_prerequisites where tenant_id = $1 and course_id = $2 and requires_id = $3")
        .bind(tenant).bind(course).bind(requires).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

/// The live courses `course` requires directly, by title; only published ones with
/// `published_only` (a draft or archived prerequisite is not asked of people, who could not take
/// it).
pub async fn prerequisites(
    tx: &mut TenantTx,
    course: Uuid,
    published_only: bool,
) -> ApiResult<Vec<CourseRef>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select b.id, b.code, b.title from course_prerequisites p
           join courses b on b.tenant_id = p.tenant_id and b.id = p.requires_id and b.deleted_at is null
          where p.tenant_id = $1 and p.course_id = $2 and ($3 = false or b.status = 'published')
          order by lower(b.title), b.id")
        .bind(tenant).bind(course).bind(published_only).fetch_all(&mut *c).await)?)
}

/// One line of the prerequisite tree.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TreeEntry {
    pub course: CourseRef,
    pub status: CourseStatus,
    /// 1 for the course's direct prerequisites, 2 for theirs, and so on.
    pub depth: i32,
    /// The course one level up that requires this one.
    pub required_by: Uuid,
}

/// The longest tree shown.
pub const TREE_LIMIT: usize = 500;

/// Everything `course` requires, directly and through its prerequisites, depth first in title
/// order (a course required along two paths appears under each); at most [`TREE_LIMIT`] lines.
pub async fn tree(
    tx: &mut TenantTx,
    course: Uuid,
    published_only: bool,
) -> ApiResult<Vec<TreeEntry>> {
    let graph = edges(tx, true).await?;
    let mut ids: HashSet<Uuid> = graph.values().flatten().copied().collect();
    ids.insert(course);
    let ids: Vec<Uuid> = ids.into_iter().collect();
    let courses: HashMap<Uuid, Course> = get_many(tx, &ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let sorted = |of: Uuid| -> Vec<Uuid> {
        let mut next: Vec<Uuid> = graph.get(&of).cloned().unwrap_or_default();
        next.sort_by_key(|id| courses.get(id).map(|c| c.title.to_lowercase()));
        next
    };
    let mut out = Vec::new();
    // (course, depth, required by, the path so far)
    let mut stack: Vec<(Uuid, i32, Uuid)> = sorted(course)
        .into_iter()
        .rev()
        .map(|id| (id, 1, course))
        .collect();
    while let Some((id, depth, parent)) = stack.pop() {
        if out.len() >= TREE_LIMIT {
            break;
        }
        let Some(c) = courses.get(&id) else { continue };
        // Those who do not build the catalogue see only what they could take.
        if published_only && c.status != CourseStatus::Published {
            continue;
        }
        out.push(TreeEntry {
            course: CourseRef {
                id,
                code: c.code.clone(),
                title: c.title.clone(),
            },
            status: c.status,
            depth,
            required_by: parent,
        });
        // The graph has no cycles, so depth is bounded by the number of courses.
        for next in sorted(id).into_iter().rev() {
            stack.push((next, depth + 1, id));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_path_is_found_and_none_when_unreachable() {
        let [a, b, c, d] = [1u128, 2, 3, 4].map(Uuid::from_u128);
        let edges = HashMap::from([(a, vec![b, c]), (b, vec![d]), (c, vec![d])]);
        assert_eq!(path(&edges, a, d), Some(vec![a, b, d]));
        assert_eq!(path(&edges, d, a), None);
        assert_eq!(path(&edges, a, a), Some(vec![a]));
    }
}
