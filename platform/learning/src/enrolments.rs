//! Enrolments, their history and progress.
//!
//! An enrolment is `scheduled` until its first progress, then `in_progress`, and `completed`
//! once every required lesson is; it may be `cancelled`, or `expired` by the job when its due
//! date passes. Every change of status is an event with who, when and why. A person has at most
//! one open (scheduled or in progress) enrolment per course. Completing a course records its
//! completion, which counts exactly like one imported from an HR or learning system.

use std::collections::HashMap;

use poem_openapi::Object;
use serde::Serialize;
use sqlx::QueryBuilder;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{db::TenantTx, envelope::Page, sql, ApiError, ApiResult};
use uuid::Uuid;

use crate::{
    catalogue::{Lesson, LessonKind},
    text_enum,
};

text_enum! {
    /// Where an enrolment is.
    EnrolmentStatus {
        Scheduled = "scheduled",
        InProgress = "in_progress",
        Completed = "completed",
        Cancelled = "cancelled",
        Expired = "expired",
    }
}

impl EnrolmentStatus {
    /// Scheduled or in progress: it can still be worked on, cancelled or expire.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            EnrolmentStatus::Scheduled | EnrolmentStatus::InProgress
        )
    }
}

text_enum! {
    /// How a person came to be enrolled.
    EnrolmentSource {
        /// They enrolled themselves.
        #[oai(rename = "self")]
        #[serde(rename = "self")]
        SelfEnrolled = "self",
        /// A manager or training officer assigned the course.
        Assigned = "assigned",
        /// An import recorded the completion.
        Import = "import",
    }
}

/// A person's enrolment in a course.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Enrolment {
    pub id: Uuid,
    pub course_id: Uuid,
    pub course_title: String,
    pub course_code: Option<String>,
    pub user_id: Uuid,
    pub person_name: String,
    #[sqlx(try_from = "String")]
    pub status: EnrolmentStatus,
    #[sqlx(try_from = "String")]
    pub source: EnrolmentSource,
    pub assigned_by: Option<Uuid>,
    pub due_on: Option<Date>,
    /// Why an administrator enrolled the person without the course's prerequisites.
    pub override_reason: Option<String>,
    /// Required lessons completed, 0–100.
    pub progress_percent: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const ENROLMENT_COLUMNS: &str = "e.id, e.course_id, c.title as course_title, c.code as course_code, \
     e.user_id, trim(coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')) as person_name, \
     e.status, e.source, e.assigned_by, e.due_on, e.override_reason, e.progress_percent, \
     e.started_at, e.completed_at, e.created_at, e.updated_at";

const ENROLMENT_FROM: &str = "from enrolments e \
     join courses c on c.tenant_id = e.tenant_id and c.id = e.course_id \
     join directory_people u on u.tenant_id = e.tenant_id and u.id = e.user_id";

/// A change of an enrolment's status.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct EnrolmentEvent {
    /// None for the first event.
    pub from_status: Option<EnrolmentStatus>,
    pub to_status: EnrolmentStatus,
    pub actor_id: Option<Uuid>,
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    from_status: Option<String>,
    #[sqlx(try_from = "String")]
    to_status: EnrolmentStatus,
    actor_id: Option<Uuid>,
    reason: Option<String>,
    at: OffsetDateTime,
}

/// A lesson with the enrolled person's progress on it.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct LessonProgress {
    pub lesson_id: Uuid,
    pub module_id: Uuid,
    pub title: String,
    pub kind: LessonKind,
    pub required: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub seconds_spent: i32,
}

/// A module's share of its required lessons completed.
#[derive(Debug, Clone, Object, Serialize)]
pub struct ModuleProgress {
    pub module_id: Uuid,
    /// 0–100: its required lessons done (all its lessons when none is required).
    pub percent: i32,
}

/// Which enrolments to list.
#[derive(Debug, Clone, Default)]
pub struct EnrolmentFilter {
    /// These people only (`None`: everyone).
    pub people: Option<Vec<Uuid>>,
    pub course_id: Option<Uuid>,
    pub status: Option<EnrolmentStatus>,
}

/// One page of enrolments, newest first, and the total.
pub async fn list(
    tx: &mut TenantTx,
    filter: &EnrolmentFilter,
    page: Page,
) -> ApiResult<(Vec<Enrolment>, i64)> {
    if filter.people.as_ref().is_some_and(Vec::is_empty) {
        return Ok((Vec::new(), 0));
    }
    let tenant = tx.tenant();
    // One filter for the page and the count, written out once for both backends.
    macro_rules! filtered {
        ($select:expr) => {{
            let mut qb =
                QueryBuilder::new(format!("{} {ENROLMENT_FROM} where e.tenant_id = ", $select));
            qb.push_bind(tenant);
            if let Some(people) = &filter.people {
                qb.push(" and e.user_id in (");
                let mut list = qb.separated(", ");
                for p in people.iter().take(1000) {
                    list.push_bind(*p);
                }
                qb.push(")");
            }
            if let Some(c) = filter.course_id {
                qb.push(" and e.course_id = ").push_bind(c);
            }
            if let Some(s) = filter.status {
                qb.push(" and e.status = ").push_bind(s.as_str());
            }
            qb
        }};
    }
    let rows: Vec<Enrolment> = sql!(tx.conn() => |c| {
        let mut qb = filtered!(format!("select {ENROLMENT_COLUMNS}"));
        qb.push(" order by e.created_at desc, e.id desc limit ").push_bind(page.limit())
            .push(" offset ").push_bind(page.offset());
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let total: i64 = sql!(tx.conn() => |c| {
        let mut qb = filtered!("select count(*)");
        qb.build_query_scalar().fetch_one(&mut *c).await
    })?;
    Ok((rows, total))
}

/// One enrolment.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> ApiResult<Enrolment> {
    let tenant = tx.tenant();
    let row: Option<Enrolment> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {ENROLMENT_COLUMNS} {ENROLMENT_FROM} where e.tenant_id = $1 and e.id = $2"))
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// The open enrolment of `user` in `course`, if any.
pub async fn open_of(tx: &mut TenantTx, user: Uuid, course: Uuid) -> ApiResult<Option<Enrolment>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {ENROLMENT_COLUMNS} {ENROLMENT_FROM}
          where e.tenant_id = $1 and e.user_id = $2 and e.course_id = $3
            and e.status in ('scheduled', 'in_progress')"))
        .bind(tenant).bind(user).bind(course).fetch_optional(&mut *c).await)?)
}

/// The events of an enrolment, oldest first.
pub async fn events(tx: &mut TenantTx, id: Uuid) -> ApiResult<Vec<EnrolmentEvent>> {
    let tenant = tx.tenant();
    let rows: Vec<EventRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select from_status, to_status, actor_id, reason, at from enrolment_events
          where tenant_id = $1 and enrolment_id = $2 order by at, id")
        .bind(tenant).bind(id).fetch_all(&mut *c).await)?;
    Ok(rows
        .into_iter()
        .map(|r| EnrolmentEvent {
            from_status: r.from_status.as_deref().and_then(EnrolmentStatus::parse),
            to_status: r.to_status,
            actor_id: r.actor_id,
            reason: r.reason,
            at: r.at,
        })
        .collect())
}

/// A new enrolment to make.
#[derive(Debug, Clone)]
pub struct NewEnrolment {
    pub course_id: Uuid,
    pub user_id: Uuid,
    pub source: EnrolmentSource,
    pub assigned_by: Option<Uuid>,
    pub due_on: Option<Date>,
    pub override_reason: Option<String>,
}

/// Inserts scheduled enrolments with their first events, in two statements per 200.
pub async fn insert_many(
    tx: &mut TenantTx,
    new: &[NewEnrolment],
    actor: Option<Uuid>,
    now: OffsetDateTime,
) -> ApiResult<Vec<Uuid>> {
    let tenant = tx.tenant();
    let ids: Vec<Uuid> = new.iter().map(|_| Uuid::now_v7()).collect();
    for (chunk, chunk_ids) in new.chunks(200).zip(ids.chunks(200)) {
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "insert into enrolments (tenant_id, id, course_id, user_id, status, source, assigned_by,
                        due_on, override_reason, created_at, updated_at) ");
            qb.push_values(chunk.iter().zip(chunk_ids), |mut b, (n, id)| {
                b.push_bind(tenant).push_bind(*id).push_bind(n.course_id).push_bind(n.user_id)
                    .push_bind("scheduled").push_bind(n.source.as_str()).push_bind(n.assigned_by)
                    .push_bind(n.due_on).push_bind(n.override_reason.clone()).push_bind(now).push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "insert into enrolment_events (tenant_id, id, enrolment_id, from_status, to_status,
                        actor_id, reason, at) ");
            qb.push_values(chunk.iter().zip(chunk_ids), |mut b, (n, id)| {
                b.push_bind(tenant).push_bind(Uuid::now_v7()).push_bind(*id)
                    .push_bind(None::<String>).push_bind("scheduled").push_bind(actor)
                    .push_bind(n.override_reason.clone()).push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
    }
    Ok(ids)
}

/// Takes the enrolment for this transaction if it is still open (scheduled or in progress): on
/// PostgreSQL the row stays locked until the transaction ends, so reports and cancellations of
/// one enrolment follow one another and each sees what the one before it committed (SQLite's
/// writers are one at a time already). `false` when it is no longer open.
pub async fn lock_open(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update enrolments set updated_at = $3
          where tenant_id = $1 and id = $2 and status in ('scheduled', 'in_progress')")
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Moves an enrolment from `from` to `to`, recording the event; `false` when it was no longer
/// in `from` (someone else moved it first).
pub async fn transition(
    tx: &mut TenantTx,
    id: Uuid,
    from: EnrolmentStatus,
    to: EnrolmentStatus,
    actor: Option<Uuid>,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let started = (to == EnrolmentStatus::InProgress).then_some(now);
    let completed = (to == EnrolmentStatus::Completed).then_some(now);
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update enrolments set status = $4, updated_at = $5,
                started_at = coalesce(started_at, $6), completed_at = coalesce($7, completed_at)
          where tenant_id = $1 and id = $2 and status = $3")
        .bind(tenant).bind(id).bind(from.as_str()).bind(to.as_str()).bind(now)
        .bind(started).bind(completed).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Ok(false);
    }
    sql!(tx.conn() => |c| sqlx::query(
        "insert into enrolment_events (tenant_id, id, enrolment_id, from_status, to_status, actor_id, reason, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(tenant).bind(Uuid::now_v7()).bind(id).bind(from.as_str()).bind(to.as_str())
        .bind(actor).bind(reason).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(true)
}

#[derive(sqlx::FromRow)]
struct ProgressRow {
    lesson_id: Uuid,
    started_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
    seconds_spent: i32,
}

/// The person's progress on each of `lessons` (the course's live lessons, in order).
pub async fn progress(
    tx: &mut TenantTx,
    enrolment: Uuid,
    lessons: &[Lesson],
) -> ApiResult<Vec<LessonProgress>> {
    let tenant = tx.tenant();
    let rows: Vec<ProgressRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select lesson_id, started_at, completed_at, seconds_spent from lesson_progress
          where tenant_id = $1 and enrolment_id = $2")
        .bind(tenant).bind(enrolment).fetch_all(&mut *c).await)?;
    let by_lesson: HashMap<Uuid, ProgressRow> =
        rows.into_iter().map(|r| (r.lesson_id, r)).collect();
    Ok(lessons
        .iter()
        .map(|l| {
            let p = by_lesson.get(&l.id);
            LessonProgress {
                lesson_id: l.id,
                module_id: l.module_id,
                title: l.title.clone(),
                kind: l.kind,
                required: l.required,
                started_at: p.map(|p| p.started_at),
                completed_at: p.and_then(|p| p.completed_at),
                seconds_spent: p.map_or(0, |p| p.seconds_spent),
            }
        })
        .collect())
}

/// The course's percentage: required lessons completed of all required ones (all lessons when
/// none is required); 0 for a course without lessons.
pub fn percent(progress: &[LessonProgress]) -> i32 {
    let required: Vec<&LessonProgress> = if progress.iter().any(|p| p.required) {
        progress.iter().filter(|p| p.required).collect()
    } else {
        progress.iter().collect()
    };
    if required.is_empty() {
        return 0;
    }
    let done = required.iter().filter(|p| p.completed_at.is_some()).count();
    (done * 100 / required.len()) as i32
}

/// Each module's percentage, in the lessons' order of modules.
pub fn module_percents(progress: &[LessonProgress]) -> Vec<ModuleProgress> {
    let mut order: Vec<Uuid> = Vec::new();
    let mut by_module: HashMap<Uuid, Vec<LessonProgress>> = HashMap::new();
    for p in progress {
        if !by_module.contains_key(&p.module_id) {
            order.push(p.module_id);
        }
        by_module.entry(p.module_id).or_default().push(p.clone());
    }
    order
        .into_iter()
        .map(|m| ModuleProgress {
            module_id: m,
            percent: percent(&by_module[&m]),
        })
        .collect()
}

/// Records time spent on a lesson and, with `completed`, its completion (a lesson stays
/// completed once it is).
pub async fn record(
    tx: &mut TenantTx,
    enrolment: Uuid,
    lesson: Uuid,
    completed: bool,
    seconds: i32,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let done = completed.then_some(now);
    sql!(tx.conn() => |c| sqlx::query(
        "insert into lesson_progress (tenant_id, enrolment_id, lesson_id, started_at, completed_at,
                seconds_spent, updated_at)
         values ($1, $2, $3, $4, $5, $6, $4)
         on conflict (tenant_id, enrolment_id, lesson_id) do update
            set completed_at = coalesce(lesson_progress.completed_at, excluded.completed_at),
                seconds_spent = case when lesson_progress.seconds_spent > 2000000000 - excluded.seconds_spent
                                 then 2000000000 else lesson_progress.seconds_spent + excluded.seconds_spent end,
                updated_at = excluded.updated_at")
        .bind(tenant).bind(enrolment).bind(lesson).bind(now).bind(done).bind(seconds)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Stores the course's percentage on the enrolment.
pub async fn set_percent(
    tx: &mut TenantTx,
    id: Uuid,
    percent: i32,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update enrolments set progress_percent = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(percent).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Records a completion earned in the portal (its enrolment names it).
pub async fn record_completion(
    tx: &mut TenantTx,
    enrolment: &Enrolment,
    on: Date,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let id = Uuid::now_v7();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into course_completions (tenant_id, id, user_id, course_id, completed_on, source,
                enrolment_id, created_at, updated_at) values ($1, $2, $3, $4, $5, 'portal', $6, $7, $7)")
        .bind(tenant).bind(id).bind(enrolment.user_id).bind(enrolment.course_id).bind(on)
        .bind(enrolment.id).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(id)
}

/// The date of `user`'s latest live completion of each course they completed.
pub async fn latest_completions(tx: &mut TenantTx, user: Uuid) -> ApiResult<HashMap<Uuid, Date>> {
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, Date)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select course_id, max(completed_on) from course_completions
          where tenant_id = $1 and user_id = $2 and deleted_at is null group by course_id")
        .bind(tenant).bind(user).fetch_all(&mut *c).await)?;
    Ok(rows.into_iter().collect())
}

/// Of `required` courses, those `user` has no live completion of.
pub async fn missing_completions(
    tx: &mut TenantTx,
    user: Uuid,
    required: &[Uuid],
) -> ApiResult<Vec<Uuid>> {
    if required.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let done: Vec<Uuid> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("select distinct course_id from course_completions where tenant_id = ");
        qb.push_bind(tenant).push(" and deleted_at is null and user_id = ").push_bind(user)
            .push(" and course_id in (");
        let mut list = qb.separated(", ");
        for id in required { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_scalar().fetch_all(&mut *c).await
    })?;
    Ok(required
        .iter()
        .filter(|id| !done.contains(id))
        .copied()
        .collect())
}

/// For many people at once: person → the `required` courses they have not completed.
pub async fn missing_completions_of(
    tx: &mut TenantTx,
    people: &[Uuid],
    required: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<Uuid>>> {
    if required.is_empty() || people.is_empty() {
        return Ok(HashMap::new());
    }
    let tenant = tx.tenant();
    let mut done: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for chunk in people.chunks(500) {
        let rows: Vec<(Uuid, Uuid)> = sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new("select distinct user_id, course_id from course_completions where tenant_id = ");
            qb.push_bind(tenant).push(" and deleted_at is null and course_id in (");
            let mut list = qb.separated(", ");
            for id in required { list.push_bind(*id); }
            qb.push(") and user_id in (");
            let mut list = qb.separated(", ");
            for id in chunk { list.push_bind(*id); }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await
        })?;
        for (user, course) in rows {
            done.entry(user).or_default().push(course);
        }
    }
    Ok(people
        .iter()
        .filter_map(|p| {
            let has = done.get(p);
            let missing: Vec<Uuid> = required
                .iter()
                .filter(|r| !has.is_some_and(|h| h.contains(r)))
                .copied()
                .collect();
            (!missing.is_empty()).then_some((*p, missing))
        })
        .collect())
}

/// Of `people`, those with an open enrolment in `course`.
pub async fn already_open(
    tx: &mut TenantTx,
    course: Uuid,
    people: &[Uuid],
) -> ApiResult<Vec<Uuid>> {
    let tenant = tx.tenant();
    let mut out = Vec::new();
    for chunk in people.chunks(500) {
        let rows: Vec<Uuid> = sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new("select user_id from enrolments where tenant_id = ");
            qb.push_bind(tenant).push(" and course_id = ").push_bind(course)
                .push(" and status in ('scheduled', 'in_progress') and user_id in (");
            let mut list = qb.separated(", ");
            for id in chunk { list.push_bind(*id); }
            qb.push(")");
            qb.build_query_scalar().fetch_all(&mut *c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// How many open enrolments a course has.
pub async fn open_count(tx: &mut TenantTx, course: Uuid) -> ApiResult<i64> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from enrolments where tenant_id = $1 and course_id = $2
            and status in ('scheduled', 'in_progress')")
        .bind(tenant).bind(course).fetch_one(&mut *c).await)?)
}

/// Open enrolments whose due date is before `today`, 5,000 at a time after the first `skip`:
/// (id, person, course title, status).
pub async fn overdue(
    tx: &mut TenantTx,
    today: Date,
    skip: usize,
) -> ApiResult<Vec<(Uuid, Uuid, String, EnrolmentStatus)>> {
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, Uuid, String, String)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select e.id, e.user_id, c.title, e.status from enrolments e
           join courses c on c.tenant_id = e.tenant_id and c.id = e.course_id
          where e.tenant_id = $1 and e.status in ('scheduled', 'in_progress')
            and e.due_on is not null and e.due_on < $2
          order by e.due_on, e.id limit 5000 offset $3")
        .bind(tenant).bind(today).bind(skip as i64).fetch_all(&mut *c).await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, user, title, status)| {
            EnrolmentStatus::parse(&status).map(|s| (id, user, title, s))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson(module: u128, required: bool, done: bool) -> LessonProgress {
        LessonProgress {
            lesson_id: Uuid::now_v7(),
            module_id: Uuid::from_u128(module),
            title: String::new(),
            kind: LessonKind::Text,
            required,
            started_at: None,
            completed_at: done.then(OffsetDateTime::now_utc),
            seconds_spent: 0,
        }
    }

    #[test]
    fn the_percentage_counts_required_lessons_only() {
        let p = [
            lesson(1, true, true),
            lesson(1, true, false),
            lesson(2, false, true),
        ];
        assert_eq!(percent(&p), 50);
        assert_eq!(percent(&[]), 0);
        assert_eq!(
            percent(&[lesson(1, false, true), lesson(1, false, false)]),
            50
        );
        let modules = module_percents(&p);
        assert_eq!(modules.len(), 2);
        assert_eq!((modules[0].percent, modules[1].percent), (50, 100));
    }
}
