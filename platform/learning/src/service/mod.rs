//! The use cases of learning, shared by the API and the portal. Each opens the tenant
//! transaction with the permission it needs, checks, changes data through [`catalogue`] and
//! [`enrolments`], audits, and commits — all or nothing. Who may do what is in
//! `docs/learning.md`.

use std::collections::HashSet;

use poem_openapi::Object;
use serde::Serialize;
use sqlx::QueryBuilder;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, Role, TenantCtx},
    db::TenantTx,
    envelope::Page,
    sql, ApiError, ApiResult,
};
use trainflow_notifications::{notify_many, Kind, Notice, Priority};
use uuid::Uuid;

mod assessments;
mod certificates;
mod materials;
mod registration;
mod skills;
mod topics;

pub use assessments::*;
pub use certificates::*;
pub use materials::*;
pub use registration::*;
pub use skills::*;
pub use topics::*;

use crate::{
    calendar::{self, CalendarItem},
    catalogue::{
        self, Course, CourseChange, CourseFilter, CourseRef, CourseStatus, Lesson, LessonChange,
        LessonKind, Module, ModuleChange, TreeEntry,
    },
    enrolments::{
        self, Enrolment, EnrolmentEvent, EnrolmentFilter, EnrolmentSource, EnrolmentStatus,
        LessonProgress, ModuleProgress, NewEnrolment,
    },
    live::{Live, ProgressChange},
    Learning,
};

fn manages(ctx: &TenantCtx) -> bool {
    ctx.role.grants(Permission::CoursesManage)
}

fn json<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// The tenant's today, in its time zone.
pub async fn today(tx: &mut TenantTx, now: OffsetDateTime) -> ApiResult<Date> {
    Ok(now.to_offset(tenant_offset(tx, now).await?).date())
}

/// The tenant's offset from UTC at `now`, in its time zone.
async fn tenant_offset(tx: &mut TenantTx, now: OffsetDateTime) -> ApiResult<time::UtcOffset> {
    let tenant = tx.tenant();
    let tz: String = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select time_zone from directory_tenants where id = $1")
        .bind(tenant).fetch_one(&mut *c).await)?;
    Ok(trainflow_kernel::zone_offset(&tz, now))
}

/// Whether the caller's role leads a team: foremen and managers (a reporting line that still
/// points at someone who no longer holds such a role gives them no team).
fn leads_a_team(ctx: &TenantCtx) -> bool {
    matches!(ctx.role, Role::Foreman | Role::Manager)
}

/// The caller's team: the active people who report to them (they are their foreman or line
/// manager), for foremen and managers; nobody for the other roles.
pub async fn team_of(tx: &mut TenantTx, ctx: &TenantCtx) -> ApiResult<Vec<Uuid>> {
    if !leads_a_team(ctx) {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let me = ctx.user_id.0;
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from directory_people
          where tenant_id = $1 and (supervisor_id = $2 or manager_id = $2)
            and is_active = true and deleted_at is null order by id")
        .bind(tenant).bind(me).fetch_all(&mut *c).await)?)
}

/// [`team_of`] with each person's name, by name.
pub async fn team_named(tx: &mut TenantTx, ctx: &TenantCtx) -> ApiResult<Vec<(Uuid, String)>> {
    if !leads_a_team(ctx) {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let me = ctx.user_id.0;
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select id, trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) from directory_people
          where tenant_id = $1 and (supervisor_id = $2 or manager_id = $2)
            and is_active = true and deleted_at is null
          order by lower(first_name), lower(last_name), id")
        .bind(tenant).bind(me).fetch_all(&mut *c).await)?)
}

/// Whether `person` is of the caller's team.
async fn in_team(tx: &mut TenantTx, ctx: &TenantCtx, person: Uuid) -> ApiResult<bool> {
    if !leads_a_team(ctx) {
        return Ok(false);
    }
    let tenant = tx.tenant();
    let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from directory_people where tenant_id = $1 and id = $2
            and (supervisor_id = $3 or manager_id = $3) and is_active = true and deleted_at is null")
        .bind(tenant).bind(person).bind(ctx.user_id.0).fetch_optional(&mut *c).await)?;
    Ok(found.is_some())
}

/// A unique-key violation as a 409 on `field`: two requests raced for the same code, position
/// or open enrolment and the database let one through. Any other error is passed on.
fn conflict_on(e: ApiError, field: &str, message: &str) -> ApiError {
    let unique = match &e {
        ApiError::Internal(inner) => inner.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .and_then(|s| s.as_database_error())
                .is_some_and(|d| d.is_unique_violation())
        }),
        _ => false,
    };
    if unique {
        ApiError::Conflict {
            field: field.into(),
            message: message.into(),
        }
    } else {
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Catalogue

/// A course the caller may see: live, and published unless they manage courses.
async fn visible_course(tx: &mut TenantTx, ctx: &TenantCtx, id: Uuid) -> ApiResult<Course> {
    let course = catalogue::get(tx, id, false).await?;
    if course.status != CourseStatus::Published && !manages(ctx) {
        return Err(ApiError::NotFound);
    }
    Ok(course)
}

/// Courses by title: published ones, or (for those who manage courses) any status, or the
/// deleted ones.
pub async fn list_courses(
    svc: &Learning,
    ctx: &TenantCtx,
    mut filter: CourseFilter,
    page: Page,
) -> ApiResult<(Vec<Course>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    if !manages(&ctx) {
        if filter.deleted || filter.status.is_some_and(|s| s != CourseStatus::Published) {
            return Err(ApiError::Forbidden);
        }
        filter.published_only = true;
    }
    let rows = catalogue::list(&mut tx, &filter, page).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The categories of the courses the caller may see.
pub async fn categories(svc: &Learning, ctx: &TenantCtx) -> ApiResult<Vec<String>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let rows = catalogue::categories(&mut tx, !manages(&ctx)).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A module with its lessons.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ModuleDetail {
    pub module: Module,
    pub lessons: Vec<Lesson>,
}

/// A course with everything its page shows.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct CourseDetail {
    pub course: Course,
    /// In order, each with its lessons in order.
    pub modules: Vec<ModuleDetail>,
    /// The syllabus: topics in order, each with its subtopics in order.
    pub topics: Vec<crate::topics::TopicDetail>,
    /// The files attached to the lessons, by lesson (`lesson_id`) and upload.
    pub materials: Vec<crate::materials::Material>,
    /// The courses this one requires directly.
    pub prerequisites: Vec<CourseRef>,
    /// Of those, the ones the caller has not completed.
    pub missing_prerequisites: Vec<CourseRef>,
    /// The caller's open enrolment in the course, if any.
    pub enrolment: Option<Enrolment>,
}

async fn detail_of(tx: &mut TenantTx, ctx: &TenantCtx, course: Course) -> ApiResult<CourseDetail> {
    let modules = catalogue::modules(tx, course.id).await?;
    let mut lessons = catalogue::lessons(tx, course.id).await?;
    let modules = modules
        .into_iter()
        .map(|m| {
            let (mine, rest): (Vec<Lesson>, Vec<Lesson>) =
                lessons.drain(..).partition(|l| l.module_id == m.id);
            lessons = rest;
            ModuleDetail {
                module: m,
                lessons: mine,
            }
        })
        .collect();
    let topics = crate::topics::syllabus(tx, course.id).await?;
    let materials = crate::materials::of_course(tx, course.id).await?;
    let prerequisites = catalogue::prerequisites(tx, course.id, !manages(ctx)).await?;
    let ids: Vec<Uuid> = prerequisites.iter().map(|p| p.id).collect();
    let missing = enrolments::missing_completions(tx, ctx.user_id.0, &ids).await?;
    let enrolment = enrolments::open_of(tx, ctx.user_id.0, course.id).await?;
    Ok(CourseDetail {
        missing_prerequisites: prerequisites
            .iter()
            .filter(|p| missing.contains(&p.id))
            .cloned()
            .collect(),
        prerequisites,
        course,
        modules,
        topics,
        materials,
        enrolment,
    })
}

/// A course with its modules, lessons, prerequisites and the caller's enrolment.
pub async fn course_detail(svc: &Learning, ctx: &TenantCtx, id: Uuid) -> ApiResult<CourseDetail> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let course = visible_course(&mut tx, &ctx, id).await?;
    let detail = detail_of(&mut tx, &ctx, course).await?;
    tx.commit().await?;
    Ok(detail)
}

/// Adds a course (a draft unless `status` says otherwise).
pub async fn create_course(
    svc: &Learning,
    ctx: &TenantCtx,
    change: CourseChange,
    now: OffsetDateTime,
) -> ApiResult<Course> {
    let course = catalogue::merge_course(None, change, ctx.user_id.0, now)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    catalogue::check_course(&mut tx, &course).await?;
    catalogue::save_course(&mut tx, &course, true)
        .await
        .map_err(|e| conflict_on(e, "code", "another course has this code"))?;
    let course = catalogue::get(&mut tx, course.id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course.create")
            .object("course", course.id)
            .change(None, json(&course)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(course)
}

/// Changes the fields `change` gives of a course.
pub async fn update_course(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    change: CourseChange,
    now: OffsetDateTime,
) -> ApiResult<Course> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let before = catalogue::get(&mut tx, id, false).await?;
    let after = catalogue::merge_course(Some(&before), change, ctx.user_id.0, now)?;
    catalogue::check_course(&mut tx, &after).await?;
    catalogue::save_course(&mut tx, &after, false)
        .await
        .map_err(|e| conflict_on(e, "code", "another course has this code"))?;
    let after = catalogue::get(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course.update")
            .object("course", id)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes a course nobody is enrolled in (open enrolments: 409; archive it instead).
pub async fn delete_course(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Course> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let course = catalogue::get(&mut tx, id, false).await?;
    let open = enrolments::open_count(&mut tx, id).await?;
    if open > 0 {
        return Err(ApiError::Conflict {
            field: "id".into(),
            message: format!(
                "{open} people are enrolled in this course: archive it, or cancel their enrolments first"
            ),
        });
    }
    catalogue::set_course_deleted(&mut tx, &course, true, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course.delete").object("course", id),
        now,
    )
    .await?;
    let course = catalogue::get(&mut tx, id, true).await?;
    tx.commit().await?;
    Ok(course)
}

/// Restores a deleted course.
pub async fn restore_course(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Course> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let course = catalogue::get(&mut tx, id, true).await?;
    catalogue::set_course_deleted(&mut tx, &course, false, now)
        .await
        .map_err(|e| conflict_on(e, "code", "another course has this code"))?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course.restore").object("course", id),
        now,
    )
    .await?;
    let course = catalogue::get(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(course)
}

/// Adds a module to a course.
pub async fn add_module(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    change: ModuleChange,
    now: OffsetDateTime,
) -> ApiResult<Module> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let course = catalogue::get(&mut tx, course, false).await?;
    let module = catalogue::save_module(&mut tx, &course, None, change, now)
        .await
        .map_err(|e| {
            conflict_on(
                e,
                "position",
                "another module or lesson took this position meanwhile",
            )
        })?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course_module.create")
            .object("course_module", module.id)
            .change(None, json(&module)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(module)
}

/// Changes a module.
pub async fn update_module(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    change: ModuleChange,
    now: OffsetDateTime,
) -> ApiResult<Module> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let before = catalogue::get_module(&mut tx, id, false).await?;
    let course = catalogue::get(&mut tx, before.course_id, false).await?;
    let after = catalogue::save_module(&mut tx, &course, Some(&before), change, now)
        .await
        .map_err(|e| {
            conflict_on(
                e,
                "position",
                "another module or lesson took this position meanwhile",
            )
        })?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course_module.update")
            .object("course_module", id)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes (`deleted`) or restores a module.
pub async fn set_module_deleted(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Module> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let module = catalogue::get_module(&mut tx, id, !deleted).await?;
    let course = catalogue::get(&mut tx, module.course_id, false).await?;
    let module = catalogue::set_module_deleted(&mut tx, &course, &module, deleted, now)
        .await
        .map_err(|e| {
            conflict_on(
                e,
                "position",
                "another module or lesson took this position meanwhile",
            )
        })?;
    let action = if deleted {
        "course_module.delete"
    } else {
        "course_module.restore"
    };
    audit::record(
        &mut tx,
        Entry::by(&ctx, action).object("course_module", id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(module)
}

/// Adds a lesson to a module.
pub async fn add_lesson(
    svc: &Learning,
    ctx: &TenantCtx,
    module: Uuid,
    change: LessonChange,
    now: OffsetDateTime,
) -> ApiResult<Lesson> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let module = catalogue::get_module(&mut tx, module, false).await?;
    catalogue::get(&mut tx, module.course_id, false).await?;
    let lesson = catalogue::save_lesson(&mut tx, &module, None, change, now)
        .await
        .map_err(|e| {
            conflict_on(
                e,
                "position",
                "another module or lesson took this position meanwhile",
            )
        })?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course_lesson.create")
            .object("course_lesson", lesson.id)
            .change(None, json(&lesson)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(lesson)
}

/// Changes a lesson.
pub async fn update_lesson(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    change: LessonChange,
    now: OffsetDateTime,
) -> ApiResult<Lesson> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let before = catalogue::get_lesson(&mut tx, id, false).await?;
    let module = catalogue::get_module(&mut tx, before.module_id, false).await?;
    let after = catalogue::save_lesson(&mut tx, &module, Some(&before), change, now)
        .await
        .map_err(|e| {
            conflict_on(
                e,
                "position",
                "another module or lesson took this position meanwhile",
            )
        })?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course_lesson.update")
            .object("course_lesson", id)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes (`deleted`) or restores a lesson.
pub async fn set_lesson_deleted(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Lesson> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let lesson = catalogue::get_lesson(&mut tx, id, !deleted).await?;
    let module = catalogue::get_module(&mut tx, lesson.module_id, false).await?;
    let lesson = catalogue::set_lesson_deleted(&mut tx, &module, &lesson, deleted, now)
        .await
        .map_err(|e| {
            conflict_on(
                e,
                "position",
                "another module or lesson took this position meanwhile",
            )
        })?;
    let action = if deleted {
        "course_lesson.delete"
    } else {
        "course_lesson.restore"
    };
    audit::record(
        &mut tx,
        Entry::by(&ctx, action).object("course_lesson", id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(lesson)
}

/// Makes `required` a prerequisite of `course` (422 on `required_course_id` when it is not a
/// course, or closes a cycle). Returns the course's prerequisites.
pub async fn add_prerequisite(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    required: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Vec<CourseRef>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let course = catalogue::get(&mut tx, course, false).await?;
    let requires = catalogue::get(&mut tx, required, false)
        .await
        .map_err(|e| match e {
            ApiError::NotFound => {
                ApiError::field("required_course_id", "is not a course of the catalogue")
            }
            other => other,
        })?;
    if catalogue::add_prerequisite(&mut tx, &course, &requires, now).await? {
        audit::record(
            &mut tx,
            Entry::by(&ctx, "course.prerequisite_add")
                .object("course", course.id)
                .detail(serde_json::json!({"required_course_id": requires.id})),
            now,
        )
        .await?;
    }
    let list = catalogue::prerequisites(&mut tx, course.id, false).await?;
    tx.commit().await?;
    Ok(list)
}

/// Removes a prerequisite (404 when `course` did not require `required`).
pub async fn remove_prerequisite(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    required: Uuid,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    catalogue::get(&mut tx, course, false).await?;
    catalogue::remove_prerequisite(&mut tx, course, required).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course.prerequisite_remove")
            .object("course", course)
            .detail(serde_json::json!({"required_course_id": required})),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Everything a course requires, as a tree.
pub async fn prerequisite_tree(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
) -> ApiResult<Vec<TreeEntry>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    visible_course(&mut tx, &ctx, course).await?;
    let tree = catalogue::tree(&mut tx, course, !manages(&ctx)).await?;
    tx.commit().await?;
    Ok(tree)
}

// ---------------------------------------------------------------------------------------------
// Enrolments

/// The courses of `missing` by name, for a refusal.
async fn missing_names(tx: &mut TenantTx, missing: &[Uuid]) -> ApiResult<String> {
    let courses = catalogue::get_many(tx, missing).await?;
    Ok(courses
        .iter()
        .map(|c| match &c.code {
            Some(code) => format!("{} ({code})", c.title),
            None => c.title.clone(),
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// The caller enrols in a published course open to self-enrolment, having completed its
/// prerequisites.
pub async fn enrol_self(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Enrolment> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let course = visible_course(&mut tx, &ctx, course).await?;
    if course.status != CourseStatus::Published {
        return Err(ApiError::Conflict {
            field: "status".into(),
            message: "only a published course can be enrolled in".into(),
        });
    }
    if !course.self_enrol {
        return Err(ApiError::Conflict {
            field: "self_enrol".into(),
            message: "this course is assigned by a manager or training officer; it is not open to self-enrolment".into(),
        });
    }
    let me = ctx.user_id.0;
    if enrolments::open_of(&mut tx, me, course.id).await?.is_some() {
        return Err(ApiError::Conflict {
            field: "course_id".into(),
            message: "you are already enrolled in this course".into(),
        });
    }
    let required: Vec<Uuid> = catalogue::prerequisites(&mut tx, course.id, true)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let missing = enrolments::missing_completions(&mut tx, me, &required).await?;
    if !missing.is_empty() {
        return Err(ApiError::Conflict {
            field: "prerequisites".into(),
            message: format!(
                "complete these courses first: {}",
                missing_names(&mut tx, &missing).await?
            ),
        });
    }
    let ids = enrolments::insert_many(
        &mut tx,
        &[NewEnrolment {
            course_id: course.id,
            user_id: me,
            source: EnrolmentSource::SelfEnrolled,
            assigned_by: None,
            due_on: None,
            override_reason: None,
        }],
        Some(me),
        now,
    )
    .await
    .map_err(|e| conflict_on(e, "course_id", "you are already enrolled in this course"))?;
    let enrolment = enrolments::get(&mut tx, ids[0]).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "enrolment.create")
            .object("enrolment", enrolment.id)
            .change(None, json(&enrolment)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(enrolment)
}

/// Whom a course is assigned to.
#[derive(Debug, Clone)]
pub enum Assignees {
    People(Vec<Uuid>),
    Department(Uuid),
    Role(Role),
}

/// An assignment of a course.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub to: Assignees,
    pub due_on: Option<Date>,
    /// Enrol people who lack the prerequisites, and why (administrators only).
    pub override_reason: Option<String>,
}

/// A person an assignment left out, and why.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Skipped {
    pub user_id: Uuid,
    pub reason: String,
}

/// What an assignment did.
#[derive(Debug, Clone, Object, Serialize)]
pub struct AssignmentResult {
    /// How many people were enrolled.
    pub enrolled_count: i64,
    /// The enrolments made (the first 100).
    pub enrolled: Vec<Enrolment>,
    /// People already enrolled, or missing the course's prerequisites.
    pub skipped: Vec<Skipped>,
}

/// The largest number of people one assignment reaches.
pub const MAX_ASSIGNEES: usize = 5000;

/// Active people of the tenant among `ids` (for people), in a department, or with a role.
async fn resolve_assignees(tx: &mut TenantTx, to: &Assignees) -> ApiResult<Vec<Uuid>> {
    let tenant = tx.tenant();
    let rows: Vec<Uuid> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("select id from directory_people where tenant_id = ");
        qb.push_bind(tenant).push(" and is_active = true and deleted_at is null");
        match to {
            Assignees::People(ids) => {
                qb.push(" and id in (");
                let mut list = qb.separated(", ");
                for id in ids { list.push_bind(*id); }
                qb.push(")");
            }
            Assignees::Department(d) => { qb.push(" and department_id = ").push_bind(*d); }
            Assignees::Role(r) => { qb.push(" and role = ").push_bind(r.as_str()); }
        }
        qb.push(" order by id limit ").push_bind(MAX_ASSIGNEES as i64 + 1);
        qb.build_query_scalar().fetch_all(&mut *c).await
    })?;
    Ok(rows)
}

/// Assigns a published course: a manager to people who report to them, a training officer or
/// administrator to anyone, a department or a role. People already enrolled are skipped, as are
/// those missing the prerequisites unless an administrator overrides with a reason. Each person
/// enrolled is told.
pub async fn assign(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    assignment: Assignment,
    now: OffsetDateTime,
) -> ApiResult<AssignmentResult> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::EnrolmentsAssign).await?;
    let course = visible_course(&mut tx, &ctx, course).await?;
    if assignment.override_reason.is_some() && ctx.role != Role::Administrator {
        return Err(ApiError::Forbidden);
    }
    let assignment = Assignment {
        override_reason: trainflow_kernel::domain::optional(
            assignment.override_reason.as_deref(),
            2000,
        )
        .map_err(|m| ApiError::field("override_reason", m))?,
        ..assignment
    };
    if !manages(&ctx) && !matches!(assignment.to, Assignees::People(_)) {
        return Err(ApiError::Forbidden);
    }
    if course.status != CourseStatus::Published {
        return Err(ApiError::Conflict {
            field: "status".into(),
            message: "only a published course can be assigned".into(),
        });
    }
    if let Some(due) = assignment.due_on {
        if due < today(&mut tx, now).await? {
            return Err(ApiError::field("due_on", "must not be in the past"));
        }
    }
    let people = resolve_assignees(&mut tx, &assignment.to).await?;
    match &assignment.to {
        Assignees::People(ids) => {
            let found: HashSet<Uuid> = people.iter().copied().collect();
            if let Some(unknown) = ids.iter().find(|id| !found.contains(id)) {
                return Err(ApiError::field(
                    "user_ids",
                    format!("{unknown} is not an active person of the organisation"),
                ));
            }
            if !manages(&ctx) {
                let team: HashSet<Uuid> = team_of(&mut tx, &ctx).await?.into_iter().collect();
                if ids.iter().any(|id| !team.contains(id)) {
                    return Err(ApiError::Forbidden);
                }
            }
        }
        Assignees::Department(_) | Assignees::Role(_) if people.len() > MAX_ASSIGNEES => {
            let field = match assignment.to {
                Assignees::Role(_) => "role",
                _ => "department_id",
            };
            return Err(ApiError::field(
                field,
                format!("reaches more than {MAX_ASSIGNEES} people: assign it in parts"),
            ));
        }
        Assignees::Department(d) => {
            let tenant = tx.tenant();
            let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select id from directory_departments where tenant_id = $1 and id = $2 and deleted_at is null")
                .bind(tenant).bind(*d).fetch_optional(&mut *c).await)?;
            if found.is_none() {
                return Err(ApiError::field(
                    "department_id",
                    "is not a department of the organisation",
                ));
            }
        }
        Assignees::Role(_) => {}
    }
    let already: HashSet<Uuid> = enrolments::already_open(&mut tx, course.id, &people)
        .await?
        .into_iter()
        .collect();
    let required: Vec<Uuid> = catalogue::prerequisites(&mut tx, course.id, true)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let missing = if assignment.override_reason.is_some() {
        Default::default()
    } else {
        enrolments::missing_completions_of(&mut tx, &people, &required).await?
    };
    let mut skipped = Vec::new();
    let mut new = Vec::new();
    for person in people {
        if already.contains(&person) {
            skipped.push(Skipped {
                user_id: person,
                reason: "already enrolled".into(),
            });
        } else if let Some(m) = missing.get(&person) {
            skipped.push(Skipped {
                user_id: person,
                reason: format!(
                    "has not completed the prerequisites: {}",
                    missing_names(&mut tx, m).await?
                ),
            });
        } else {
            new.push(NewEnrolment {
                course_id: course.id,
                user_id: person,
                source: EnrolmentSource::Assigned,
                assigned_by: Some(ctx.user_id.0),
                due_on: assignment.due_on,
                override_reason: assignment.override_reason.clone(),
            });
        }
    }
    let ids = enrolments::insert_many(&mut tx, &new, Some(ctx.user_id.0), now)
        .await
        .map_err(|e| {
            conflict_on(
                e,
                "user_ids",
                "someone of them was enrolled in the course meanwhile: assign again",
            )
        })?;
    let enrolled_count = new.len() as i64;
    let (enrolled, _) = enrolments::list(
        &mut tx,
        &EnrolmentFilter {
            people: Some(new.iter().map(|n| n.user_id).collect()),
            course_id: Some(course.id),
            status: Some(EnrolmentStatus::Scheduled),
        },
        Page::parse(Some(1), Some(100))?,
    )
    .await?;
    let due = assignment
        .due_on
        .map(|d| format!(" by {d}"))
        .unwrap_or_default();
    let notices: Vec<Notice> = new
        .iter()
        .map(|n| {
            let mut notice = Notice::new(
                n.user_id,
                Kind::System,
                Priority::Medium,
                format!("New course: {}", course.title),
                format!("You were enrolled in {}; complete it{due}.", course.title),
            );
            notice.link = Some(format!("/portal/courses/{}", course.id));
            notice
        })
        .collect();
    notify_many(&mut tx, &notices, &svc.public_url, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "enrolment.assign")
            .object("course", course.id)
            .detail(serde_json::json!({
                "enrolments": ids,
                "due_on": assignment.due_on.map(|d| d.to_string()),
                "override_reason": assignment.override_reason,
                "skipped": skipped.len(),
            })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(AssignmentResult {
        enrolled_count,
        enrolled,
        skipped,
    })
}

/// Whose enrolments a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum Whose {
    /// The caller's.
    Mine,
    /// The people who report to the caller.
    Team,
    /// Everyone's (those who manage courses).
    All,
}

/// Which enrolments to list.
#[derive(Debug, Clone)]
pub struct EnrolmentQuery {
    pub whose: Whose,
    /// One person (the caller, someone of their team, or anyone for those who manage courses).
    pub user_id: Option<Uuid>,
    pub course_id: Option<Uuid>,
    pub status: Option<EnrolmentStatus>,
}

/// Enrolments, newest first.
pub async fn list_enrolments(
    svc: &Learning,
    ctx: &TenantCtx,
    q: EnrolmentQuery,
    page: Page,
) -> ApiResult<(Vec<Enrolment>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let me = ctx.user_id.0;
    let mut people = match q.whose {
        Whose::Mine => Some(vec![me]),
        Whose::Team => Some(team_of(&mut tx, &ctx).await?),
        Whose::All if manages(&ctx) => None,
        Whose::All => return Err(ApiError::Forbidden),
    };
    if let Some(u) = q.user_id {
        let allowed = u == me || manages(&ctx) || in_team(&mut tx, &ctx, u).await?;
        if !allowed {
            return Err(ApiError::Forbidden);
        }
        people = Some(match people {
            Some(p) if !p.contains(&u) => Vec::new(),
            _ => vec![u],
        });
    }
    let filter = EnrolmentFilter {
        people,
        course_id: q.course_id,
        status: q.status,
    };
    let rows = enrolments::list(&mut tx, &filter, page).await?;
    tx.commit().await?;
    Ok(rows)
}

/// An enrolment with the person's progress and its history.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct EnrolmentDetail {
    pub enrolment: Enrolment,
    /// Every live lesson of the course, in order, with the person's progress.
    pub lessons: Vec<LessonProgress>,
    pub modules: Vec<ModuleProgress>,
    /// Oldest first.
    pub events: Vec<EnrolmentEvent>,
}

/// How the caller stands to an enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Own,
    Team,
    Manager,
}

/// The enrolment and the caller's standing: their own, of someone who reports to them, or any
/// for those who manage courses; anyone else gets 404.
async fn standing(
    tx: &mut TenantTx,
    ctx: &TenantCtx,
    id: Uuid,
) -> ApiResult<(Enrolment, Standing)> {
    let e = enrolments::get(tx, id).await?;
    // Those who manage courses first: their own enrolments are theirs to manage too.
    let s = if manages(ctx) {
        Standing::Manager
    } else if e.user_id == ctx.user_id.0 {
        Standing::Own
    } else if in_team(tx, ctx, e.user_id).await? {
        Standing::Team
    } else {
        return Err(ApiError::NotFound);
    };
    Ok((e, s))
}

async fn enrolment_detail_of(tx: &mut TenantTx, e: Enrolment) -> ApiResult<EnrolmentDetail> {
    let lessons = catalogue::lessons(tx, e.course_id).await?;
    let progress = enrolments::progress(tx, e.id, &lessons).await?;
    let events = enrolments::events(tx, e.id).await?;
    Ok(EnrolmentDetail {
        modules: enrolments::module_percents(&progress),
        lessons: progress,
        events,
        enrolment: e,
    })
}

/// One enrolment with progress and history.
pub async fn enrolment_detail(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
) -> ApiResult<EnrolmentDetail> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let (e, _) = standing(&mut tx, &ctx, id).await?;
    let detail = enrolment_detail_of(&mut tx, e).await?;
    tx.commit().await?;
    Ok(detail)
}

/// One lesson of an enrolment's course, with the enrolment: what the lesson player shows.
pub async fn enrolment_lesson(
    svc: &Learning,
    ctx: &TenantCtx,
    enrolment: Uuid,
    lesson: Uuid,
) -> ApiResult<(EnrolmentDetail, Lesson)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let (e, _) = standing(&mut tx, &ctx, enrolment).await?;
    let l = catalogue::get_lesson(&mut tx, lesson, false).await?;
    if l.course_id != e.course_id {
        return Err(ApiError::NotFound);
    }
    let detail = enrolment_detail_of(&mut tx, e).await?;
    tx.commit().await?;
    Ok((detail, l))
}

/// Cancels an open enrolment: one's own self-enrolment, an assignment by those who assign (a
/// manager for their team), or any by those who manage courses.
pub async fn cancel_enrolment(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    reason: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<Enrolment> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let (e, standing) = standing(&mut tx, &ctx, id).await?;
    let may = match standing {
        Standing::Manager => true,
        Standing::Team => ctx.role.grants(Permission::EnrolmentsAssign),
        Standing::Own => e.source == EnrolmentSource::SelfEnrolled,
    };
    if !may {
        return Err(ApiError::Forbidden);
    }
    let closed = |e: &Enrolment| ApiError::Conflict {
        field: "status".into(),
        message: format!("the enrolment is {}", e.status.as_str().replace('_', " ")),
    };
    if !enrolments::lock_open(&mut tx, id, now).await? {
        return Err(closed(&e));
    }
    // As it is now that it is ours.
    let e = enrolments::get(&mut tx, id).await?;
    let reason = trainflow_kernel::domain::optional(reason.as_deref(), 2000)
        .map_err(|m| ApiError::field("reason", m))?;
    let moved = enrolments::transition(
        &mut tx,
        id,
        e.status,
        EnrolmentStatus::Cancelled,
        Some(ctx.user_id.0),
        reason.as_deref(),
        now,
    )
    .await?;
    if !moved {
        return Err(closed(&e));
    }
    let after = enrolments::get(&mut tx, id).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "enrolment.cancel")
            .object("enrolment", id)
            .change(json(&e), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Progress on one lesson.
#[derive(Debug, Clone)]
pub struct ProgressReport {
    pub lesson_id: Uuid,
    pub completed: bool,
    /// Time spent since the last report, added to the lesson's total.
    pub seconds_spent: i32,
}

/// The longest time one report adds.
pub const MAX_REPORT_SECONDS: i32 = 86_400;

/// Records progress on a lesson of an open enrolment (the person's own, or by those who manage
/// courses). The first report starts the enrolment; completing the last required lesson
/// completes it and records the course's completion.
pub async fn record_progress(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    report: ProgressReport,
    now: OffsetDateTime,
) -> ApiResult<EnrolmentDetail> {
    if !(0..=MAX_REPORT_SECONDS).contains(&report.seconds_spent) {
        return Err(ApiError::field(
            "seconds_spent",
            format!("must be between 0 and {MAX_REPORT_SECONDS}"),
        ));
    }
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let (e, standing) = standing(&mut tx, &ctx, id).await?;
    if standing == Standing::Team {
        return Err(ApiError::Forbidden);
    }
    // Reports of one enrolment follow one another: each sees the lessons the last one recorded.
    let e = if enrolments::lock_open(&mut tx, e.id, now).await? {
        enrolments::get(&mut tx, e.id).await?
    } else {
        e
    };
    if !e.status.is_open() {
        return Err(ApiError::Conflict {
            field: "status".into(),
            message: format!(
                "the enrolment is {}: progress is no longer recorded",
                e.status.as_str().replace('_', " ")
            ),
        });
    }
    let lessons = catalogue::lessons(&mut tx, e.course_id).await?;
    let Some(lesson) = lessons.iter().find(|l| l.id == report.lesson_id) else {
        return Err(ApiError::field(
            "lesson_id",
            "is not a lesson of the enrolment's course",
        ));
    };
    if report.completed && lesson.kind == LessonKind::Assessment {
        return Err(ApiError::field(
            "completed",
            "an assessment lesson is completed by passing its quiz",
        ));
    }
    let lesson = lesson.id;
    let (after, change) = advance(
        &mut tx,
        &ctx,
        &e,
        &lessons,
        lesson,
        report.completed,
        report.seconds_spent,
        now,
    )
    .await?;
    let detail = enrolment_detail_of(&mut tx, after).await?;
    let pending = Live::announce(&mut tx, change).await?;
    tx.commit().await?;
    svc.live.published(pending);
    Ok(detail)
}

/// Records a report on `lesson` of the open, locked enrolment `e` (of a course with `lessons`):
/// stores it, recomputes the percentage, starts a scheduled enrolment, and completes it when
/// every required lesson is done — recording the course's completion and issuing its
/// certificate. The enrolment as it is now, and the change to announce.
#[allow(clippy::too_many_arguments)] // one per part of the report
pub(crate) async fn advance(
    tx: &mut TenantTx,
    ctx: &TenantCtx,
    e: &Enrolment,
    lessons: &[Lesson],
    lesson: Uuid,
    completed: bool,
    seconds_spent: i32,
    now: OffsetDateTime,
) -> ApiResult<(Enrolment, ProgressChange)> {
    enrolments::record(tx, e.id, lesson, completed, seconds_spent, now).await?;
    let progress = enrolments::progress(tx, e.id, lessons).await?;
    let percent = enrolments::percent(&progress);
    enrolments::set_percent(tx, e.id, percent, now).await?;
    let actor = Some(ctx.user_id.0);
    if e.status == EnrolmentStatus::Scheduled {
        enrolments::transition(
            tx,
            e.id,
            e.status,
            EnrolmentStatus::InProgress,
            actor,
            None,
            now,
        )
        .await?;
    }
    // The enrolment is locked: its status is as the transition left it.
    let status = enrolments::get(tx, e.id).await?.status;
    let mut finished = None;
    if percent == 100
        && enrolments::transition(
            tx,
            e.id,
            status,
            EnrolmentStatus::Completed,
            actor,
            None,
            now,
        )
        .await?
    {
        let on = today(tx, now).await?;
        let completion = enrolments::record_completion(tx, e, on, now).await?;
        let certificate = crate::certificates::issue(tx, e, on, now).await?;
        let completed = enrolments::latest_completions(tx, e.user_id).await?;
        let renewed = trainflow_renewals::certs::renew_on_completion(
            tx,
            e.user_id,
            e.course_id,
            on,
            &completed,
            now,
        )
        .await?;
        audit::record(
            tx,
            Entry::by(ctx, "enrolment.complete")
                .object("enrolment", e.id)
                .detail(serde_json::json!({
                    "course_id": e.course_id,
                    "completion_id": completion,
                    "certificate_id": certificate,
                    "certifications_renewed": renewed,
                })),
            now,
        )
        .await?;
        let by_quiz = lessons
            .iter()
            .any(|l| l.id == lesson && l.kind == LessonKind::Assessment);
        let source = if by_quiz {
            crate::skills::SkillSource::Assessment
        } else {
            crate::skills::SkillSource::Course
        };
        finished = Some((e.course_id, source));
    }
    if completed || finished.is_some() {
        let awarded = skills::after_progress(tx, e.user_id, finished, now).await?;
        if !awarded.is_empty() {
            let rules: Vec<&str> = awarded.iter().map(|r| r.as_str()).collect();
            audit::record(
                tx,
                Entry::by(ctx, "achievement.award")
                    .object("user", e.user_id)
                    .detail(serde_json::json!({ "rules": rules })),
                now,
            )
            .await?;
        }
    }
    let after = enrolments::get(tx, e.id).await?;
    let change = ProgressChange {
        tenant: tx.tenant().0,
        enrolment: e.id,
        user: e.user_id,
        course: e.course_id,
        percent: after.progress_percent,
        status: after.status,
        lesson,
        lesson_done: completed
            || progress
                .iter()
                .any(|p| p.lesson_id == lesson && p.completed_at.is_some()),
    };
    Ok((after, change))
}

/// Whose progress changes a viewer receives: their own, their team's, or (for those who manage
/// courses) everyone's in their tenant.
#[derive(Debug, Clone)]
pub struct LiveScope {
    pub tenant: Uuid,
    pub everyone: bool,
    pub people: HashSet<Uuid>,
}

impl LiveScope {
    /// Whether the viewer may see `change`.
    pub fn admits(&self, change: &ProgressChange) -> bool {
        change.tenant == self.tenant && (self.everyone || self.people.contains(&change.user))
    }
}

/// The caller's scope of live progress.
pub async fn live_scope(svc: &Learning, ctx: &TenantCtx) -> ApiResult<LiveScope> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let mut people: HashSet<Uuid> = team_of(&mut tx, &ctx).await?.into_iter().collect();
    people.insert(ctx.user_id.0);
    tx.commit().await?;
    Ok(LiveScope {
        tenant: ctx.tenant_id.0,
        everyone: manages(&ctx),
        people,
    })
}

/// What the dashboard and profile show of one's learning.
#[derive(Debug, Clone, Default)]
pub struct LearningSummary {
    pub open: i64,
    pub overdue: i64,
    pub completed: i64,
    /// The open ones, soonest due first (at most 5).
    pub next: Vec<Enrolment>,
}

/// The caller's learning at a glance.
pub async fn summary(
    svc: &Learning,
    ctx: &TenantCtx,
    now: OffsetDateTime,
) -> ApiResult<LearningSummary> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let today = today(&mut tx, now).await?;
    let me = ctx.user_id.0;
    let all = Page::parse(Some(1), Some(100))?;
    let filter = |status| EnrolmentFilter {
        people: Some(vec![me]),
        course_id: None,
        status: Some(status),
    };
    let (mut open, scheduled) =
        enrolments::list(&mut tx, &filter(EnrolmentStatus::Scheduled), all).await?;
    let (going, in_progress) =
        enrolments::list(&mut tx, &filter(EnrolmentStatus::InProgress), all).await?;
    let completed = enrolments::list(
        &mut tx,
        &filter(EnrolmentStatus::Completed),
        Page::parse(Some(1), Some(1))?,
    )
    .await?
    .1;
    tx.commit().await?;
    open.extend(going);
    open.sort_by_key(|e| (e.due_on.is_none(), e.due_on, e.created_at));
    let overdue = open
        .iter()
        .filter(|e| e.due_on.is_some_and(|d| d < today))
        .count() as i64;
    open.truncate(5);
    Ok(LearningSummary {
        open: scheduled + in_progress,
        overdue,
        completed,
        next: open,
    })
}

/// Whom the caller may assign a course to, for the portal's form.
#[derive(Debug, Clone, Default)]
pub struct AssignmentOptions {
    /// The people who report to the caller, by name.
    pub team: Vec<(Uuid, String)>,
    /// The tenant's departments, for those who manage courses.
    pub departments: Vec<(Uuid, String)>,
}

/// The caller's team and (for those who manage courses) the departments.
pub async fn assignment_options(svc: &Learning, ctx: &TenantCtx) -> ApiResult<AssignmentOptions> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let tenant = tx.tenant();
    let me = ctx.user_id.0;
    let team: Vec<(Uuid, String)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) from directory_people
          where tenant_id = $1 and (supervisor_id = $2 or manager_id = $2)
            and is_active = true and deleted_at is null
          order by lower(first_name), lower(last_name), id limit 500")
        .bind(tenant).bind(me).fetch_all(&mut *c).await)?;
    let departments: Vec<(Uuid, String)> = if manages(&ctx) {
        sql!(tx.conn() => |c| sqlx::query_as(
            "select id, name from directory_departments where tenant_id = $1 and deleted_at is null
              order by lower(name), id limit 500")
            .bind(tenant).fetch_all(&mut *c).await)?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    Ok(AssignmentOptions { team, departments })
}

// ---------------------------------------------------------------------------------------------
// Calendar

/// The caller's calendar, and whether they have a feed address (and since when).
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct MyCalendar {
    /// By date, from 90 days ago on.
    pub items: Vec<CalendarItem>,
    /// When the caller's current feed address was issued; none without one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub feed_issued_at: Option<OffsetDateTime>,
}

/// The caller's calendar items and feed.
pub async fn my_calendar(
    svc: &Learning,
    ctx: &TenantCtx,
    now: OffsetDateTime,
) -> ApiResult<MyCalendar> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let today = today(&mut tx, now).await?;
    let items = calendar::items(&mut tx, ctx.user_id.0, today).await?;
    let feed_issued_at = calendar::issued_at(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    Ok(MyCalendar {
        items,
        feed_issued_at,
    })
}

/// A calendar feed address, shown once.
#[derive(Debug, Clone, Object, Serialize)]
pub struct FeedAddress {
    /// The secret address a calendar application subscribes to; whoever has it reads the
    /// calendar, so it is shown only now. Issuing a new one revokes it.
    pub url: String,
}

/// The path of the feed of `token` on this site.
pub fn feed_path(token: &str) -> String {
    format!("/portal/calendar/feed/{token}")
}

/// Issues the caller a new feed address, revoking any earlier one.
pub async fn issue_feed(
    svc: &Learning,
    ctx: &TenantCtx,
    now: OffsetDateTime,
) -> ApiResult<FeedAddress> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let token = calendar::issue(&mut tx, ctx.user_id.0, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "calendar.feed_issue").object("user", ctx.user_id.0),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(FeedAddress {
        url: format!("{}{}", svc.public_url, feed_path(&token)),
    })
}

/// Revokes the caller's feed address (nothing to revoke is fine).
pub async fn revoke_feed(svc: &Learning, ctx: &TenantCtx, now: OffsetDateTime) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    if calendar::revoke(&mut tx, ctx.user_id.0).await? {
        audit::record(
            &mut tx,
            Entry::by(&ctx, "calendar.feed_revoke").object("user", ctx.user_id.0),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The iCalendar feed behind `token` (no session: the address is the credential); 404 for an
/// address that is not, or no longer, issued, or whose person or organisation is inactive.
pub async fn feed(svc: &Learning, token: &str, now: OffsetDateTime) -> ApiResult<String> {
    let token = token.strip_suffix(".ics").unwrap_or(token);
    let (tenant, digest) =
        trainflow_kernel::secret::parse_link_token(token).ok_or(ApiError::NotFound)?;
    let mut tx = TenantTx::begin_system_read(&svc.db, tenant).await?;
    let name: Option<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select name from directory_tenants where id = $1 and status = 'active'")
        .bind(tenant).fetch_optional(&mut *c).await)?;
    let name = name.ok_or(ApiError::NotFound)?;
    let user = calendar::owner(&mut tx, &digest)
        .await?
        .ok_or(ApiError::NotFound)?;
    let today = today(&mut tx, now).await?;
    let items = calendar::items(&mut tx, user, today).await?;
    tx.commit().await?;
    Ok(calendar::ics(
        &items,
        &format!("{name}: my training"),
        &svc.public_url,
        now,
    ))
}
