//! Courses and completions changed a page at a time, for imports.
//!
//! A course record is applied to the course it was applied to before, else to the live course
//! with its code (adopting a course made in the portal), else a new one, published (an HR or
//! learning system's course is one people already take). A code another course holds is
//! refused. A completion counts exactly like one earned in the portal: the person's open
//! enrolment in the course is completed with it. Callers keep their own keys: a record says
//! which object it was applied to before, and its outcome names the object now.

use std::collections::HashMap;

use sqlx::QueryBuilder;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, BatchSource, Change, ObjectChange},
    db::TenantTx,
    sql, ApiResult,
};
use uuid::Uuid;

use crate::enrolments::EnrolmentStatus;

/// What applying one record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created(Uuid),
    Updated(Uuid),
    /// Not applied, and why.
    Rejected(String),
}

/// One course as the source has it.
#[derive(Debug, Clone)]
pub struct CourseRecord {
    /// The course this record was applied to before, if any.
    pub linked: Option<Uuid>,
    pub code: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub duration_hours: Option<f32>,
}

/// The live course with `code`, if any.
async fn by_code(tx: &mut TenantTx, code: &str) -> ApiResult<Option<Uuid>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from courses where tenant_id = $1 and code = $2 and deleted_at is null")
        .bind(tenant).bind(code).fetch_optional(&mut *c).await)?)
}

async fn insert(
    tx: &mut TenantTx,
    code: Option<&str>,
    title: &str,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let id = Uuid::now_v7();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into courses (tenant_id, id, code, title, status, created_at, updated_at)
         values ($1, $2, $3, $4, 'published', $5, $5)")
        .bind(tenant).bind(id).bind(code).bind(title).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(id)
}

/// Applies course records in order; one `course.import` entry of `source` lists the courses
/// changed.
pub async fn apply_courses(
    tx: &mut TenantTx,
    records: &[CourseRecord],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Outcome>> {
    let tenant = tx.tenant();
    let mut out = Vec::with_capacity(records.len());
    let mut objects = Vec::new();
    for r in records {
        let title = r.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            out.push(Outcome::Rejected(
                "title must be 1 to 200 characters".into(),
            ));
            continue;
        }
        let code = r.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if code.is_some_and(|c| c.chars().count() > 50) {
            out.push(Outcome::Rejected(
                "code must be at most 50 characters".into(),
            ));
            continue;
        }
        let hours = r
            .duration_hours
            .map(f64::from)
            .filter(|h| h.is_finite() && *h > 0.0 && *h <= crate::catalogue::MAX_COURSE_HOURS);
        let holder = match code {
            Some(c) => by_code(tx, c).await?,
            None => None,
        };
        let (id, created) = match (r.linked, holder) {
            (Some(linked), Some(h)) if h != linked => {
                out.push(Outcome::Rejected(format!(
                    "the code `{}` belongs to another course",
                    code.unwrap_or_default()
                )));
                continue;
            }
            (Some(linked), _) if code.is_none() && undeleting_a_taken_code(tx, linked).await? => {
                out.push(Outcome::Rejected(
                    "the course was deleted in the portal and another course took its code".into(),
                ));
                continue;
            }
            (Some(linked), _) => (linked, false),
            (None, Some(h)) => (h, false),
            (None, None) => (insert(tx, code, title, now).await?, true),
        };
        // A duration shorter than the course's modules is not taken (the modules would no
        // longer fit); the course keeps its own.
        sql!(tx.conn() => |c| sqlx::query(
            "update courses set code = coalesce($3, code), title = $4, description = $5,
                    duration_hours = case
                        when $6 is null or $6 >= (select coalesce(sum(m.duration_hours), 0) from course_modules m
                                                   where m.tenant_id = $1 and m.course_id = $2 and m.deleted_at is null)
                        then $6 else duration_hours end,
                    deleted_at = null, updated_at = $7
              where tenant_id = $1 and id = $2")
            .bind(tenant).bind(id).bind(code).bind(title).bind(&r.description)
            .bind(hours).bind(now).execute(&mut *c).await.map(drop))?;
        let change = if created {
            Change::Created
        } else {
            Change::Updated
        };
        objects.push(ObjectChange::new("course", id, change));
        out.push(if created {
            Outcome::Created(id)
        } else {
            Outcome::Updated(id)
        });
    }
    audit::record_batch(tx, source, "course.import", &objects, now).await?;
    Ok(out)
}

/// Whether `course` is deleted and another live course holds its code (restoring it would
/// break the code's uniqueness).
async fn undeleting_a_taken_code(tx: &mut TenantTx, course: Uuid) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let row: Option<(Option<String>, bool)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select code, deleted_at is not null from courses where tenant_id = $1 and id = $2")
        .bind(tenant).bind(course).fetch_optional(&mut *c).await)?;
    match row {
        Some((Some(code), true)) => Ok(by_code(tx, &code).await?.is_some_and(|h| h != course)),
        _ => Ok(false),
    }
}

/// The course a completion names by `reference` when no link knows it: the live course with
/// that code, else a new one (published, titled with the reference).
pub async fn course_for_reference(
    tx: &mut TenantTx,
    reference: &str,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    match by_code(tx, reference).await? {
        Some(id) => Ok(id),
        None => insert(tx, Some(reference), reference, now).await,
    }
}

/// One completion as the source has it.
#[derive(Debug, Clone)]
pub struct CompletionRecord {
    /// The completion this record was applied to before, if any.
    pub linked: Option<Uuid>,
    pub user_id: Uuid,
    pub course_id: Uuid,
    pub completed_on: Date,
    pub score: Option<f32>,
}

/// Applies completion records; each completes the person's open enrolment in the course, as a
/// completion earned in the portal does. One `course_completion.import` entry of `source` lists
/// the completions changed.
pub async fn apply_completions(
    tx: &mut TenantTx,
    records: &[CompletionRecord],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Outcome>> {
    let tenant = tx.tenant();
    let mut out = Vec::with_capacity(records.len());
    let mut objects = Vec::new();
    for r in records {
        let score = r.score.filter(|s| s.is_finite());
        let updated = match r.linked {
            Some(id) => sql!(tx.conn() => |c| sqlx::query(
                "update course_completions set user_id = $3, course_id = $4, completed_on = $5,
                        score = $6, deleted_at = null, updated_at = $7
                  where tenant_id = $1 and id = $2")
                .bind(tenant).bind(id).bind(r.user_id).bind(r.course_id).bind(r.completed_on)
                .bind(score).bind(now).execute(&mut *c).await.map(|x| x.rows_affected()))?,
            None => 0,
        };
        let outcome = match r.linked {
            Some(id) if updated > 0 => Outcome::Updated(id),
            _ => {
                let id = Uuid::now_v7();
                sql!(tx.conn() => |c| sqlx::query(
                    "insert into course_completions (tenant_id, id, user_id, course_id, completed_on, score,
                            source, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, 'import', $7, $7)")
                    .bind(tenant).bind(id).bind(r.user_id).bind(r.course_id).bind(r.completed_on)
                    .bind(score).bind(now).execute(&mut *c).await.map(drop))?;
                Outcome::Created(id)
            }
        };
        if let Outcome::Created(id) | Outcome::Updated(id) = &outcome {
            let change = if matches!(outcome, Outcome::Created(_)) {
                Change::Created
            } else {
                Change::Updated
            };
            objects.push(ObjectChange::new("course_completion", *id, change));
        }
        out.push(outcome);
    }
    for id in complete_open_enrolments(tx, records, now).await? {
        objects.push(ObjectChange::new("enrolment", id, Change::Updated));
    }
    let pairs: Vec<(Uuid, Uuid)> = records.iter().map(|r| (r.user_id, r.course_id)).collect();
    crate::skills::raise_from_imports(tx, &pairs, now).await?;
    audit::record_batch(tx, source, "course_completion.import", &objects, now).await?;
    Ok(out)
}

/// Completes the open enrolments of the (person, course) pairs of `records`, with their events:
/// three statements per 300 records. Returns the enrolments completed.
async fn complete_open_enrolments(
    tx: &mut TenantTx,
    records: &[CompletionRecord],
    now: OffsetDateTime,
) -> ApiResult<Vec<Uuid>> {
    let tenant = tx.tenant();
    let mut completed = Vec::new();
    for chunk in records.chunks(300) {
        let open: Vec<(Uuid, String)> = sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new("select id, status from enrolments where tenant_id = ");
            qb.push_bind(tenant).push(" and status in ('scheduled', 'in_progress') and (");
            let mut first = true;
            for r in chunk {
                if !first { qb.push(" or "); }
                first = false;
                qb.push("(user_id = ").push_bind(r.user_id).push(" and course_id = ").push_bind(r.course_id).push(")");
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await
        })?;
        if open.is_empty() {
            continue;
        }
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new("update enrolments set status = 'completed', progress_percent = 100, completed_at = ");
            qb.push_bind(now).push(", updated_at = ").push_bind(now)
                .push(", started_at = coalesce(started_at, ").push_bind(now).push(") where tenant_id = ")
                .push_bind(tenant).push(" and id in (");
            let mut list = qb.separated(", ");
            for (id, _) in &open { list.push_bind(*id); }
            qb.push(")");
            qb.build().execute(&mut *c).await.map(drop)
        })?;
        let from: HashMap<Uuid, String> = open.into_iter().collect();
        completed.extend(from.keys().copied());
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "insert into enrolment_events (tenant_id, id, enrolment_id, from_status, to_status, actor_id, reason, at) ");
            qb.push_values(from.iter(), |mut b, (id, status)| {
                b.push_bind(tenant).push_bind(Uuid::now_v7()).push_bind(*id).push_bind(status.clone())
                    .push_bind(EnrolmentStatus::Completed.as_str()).push_bind(None::<Uuid>)
                    .push_bind("completion imported").push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
    }
    Ok(completed)
}

/// Soft-deletes imported courses, recorded as one `course.import_delete` entry of `source`.
pub async fn delete_courses(
    tx: &mut TenantTx,
    ids: &[Uuid],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Uuid>> {
    audit::soft_delete_batch(
        tx,
        "courses",
        "course",
        "course.import_delete",
        ids,
        now,
        source,
    )
    .await
}

/// Soft-deletes imported completions, recorded as one `course_completion.import_delete` entry.
pub async fn delete_completions(
    tx: &mut TenantTx,
    ids: &[Uuid],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Uuid>> {
    audit::soft_delete_batch(
        tx,
        "course_completions",
        "course_completion",
        "course_completion.import_delete",
        ids,
        now,
        source,
    )
    .await
}
