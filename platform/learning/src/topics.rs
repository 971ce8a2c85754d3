//! A course's syllabus: topics and their subtopics, ordered, with hours that stay within the
//! course's duration (topics) and their topic's hours (subtopics).

use poem_openapi::Object;
use serde::Serialize;
use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, ApiError, ApiResult};
use uuid::Uuid;

use crate::catalogue::{part_fields, place, Course, Slot};

/// A topic of a course's syllabus, or (with `parent_id`) a subtopic of one.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Topic {
    pub id: Uuid,
    pub course_id: Uuid,
    /// The topic a subtopic belongs to; none for a topic.
    pub parent_id: Option<Uuid>,
    /// 1-based, unique among the course's topics or the topic's subtopics.
    pub position: i32,
    pub title: String,
    pub description: Option<String>,
    pub duration_hours: f64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

const COLUMNS: &str =
    "id, course_id, parent_id, position, title, description, duration_hours, deleted_at";

/// A topic with its subtopics.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TopicDetail {
    pub topic: Topic,
    /// In order.
    pub subtopics: Vec<Topic>,
}

/// The live topics of a course, in order, each with its live subtopics in order.
pub async fn syllabus(tx: &mut TenantTx, course: Uuid) -> ApiResult<Vec<TopicDetail>> {
    let tenant = tx.tenant();
    let rows: Vec<Topic> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS} from course_topics
          where tenant_id = $1 and course_id = $2 and deleted_at is null
          order by parent_id is not null, position"))
        .bind(tenant).bind(course).fetch_all(&mut *c).await)?;
    let (topics, mut subtopics): (Vec<Topic>, Vec<Topic>) =
        rows.into_iter().partition(|t| t.parent_id.is_none());
    Ok(topics
        .into_iter()
        .map(|topic| {
            let (mine, rest) = subtopics
                .drain(..)
                .partition(|s| s.parent_id == Some(topic.id));
            subtopics = rest;
            TopicDetail {
                topic,
                subtopics: mine,
            }
        })
        .collect())
}

/// A topic or subtopic, live or (`deleted`) deleted.
pub async fn get(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Topic> {
    let tenant = tx.tenant();
    let row: Option<Topic> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS} from course_topics
          where tenant_id = $1 and id = $2 and (deleted_at is not null) = $3"))
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// The hours of the live topics of a course or subtopics of a topic (`slot`), less `except`.
pub(crate) async fn hours_within(
    tx: &mut TenantTx,
    slot: Slot,
    except: Option<Uuid>,
) -> ApiResult<f64> {
    let tenant = tx.tenant();
    let (scope, parent) = match slot {
        Slot::Topic { course } => ("course_id = $2 and parent_id is null", course),
        Slot::Subtopic { topic } => ("parent_id = $2", topic),
        Slot::Module { .. } | Slot::Lesson { .. } => unreachable!("topics only"),
    };
    let hours: Vec<f64> = sql!(tx.conn() => |c| sqlx::query_scalar(&format!(
        "select duration_hours from course_topics
          where tenant_id = $1 and {scope} and deleted_at is null and id <> $3"))
        .bind(tenant).bind(parent).bind(except.unwrap_or(Uuid::nil())).fetch_all(&mut *c).await)?;
    Ok(hours.into_iter().sum())
}

/// A topic's fields as a use case changes them (`None` keeps the value): a module's.
pub type TopicChange = crate::catalogue::ModuleChange;

/// `change` over `current` (create: none, in `course` under `parent`, a live topic of the
/// course), checked: its hours with its siblings' within the course's duration or the parent's
/// hours (422 on `duration_hours`), a topic's hours still holding its subtopics (422), the
/// position free (409). Saves it.
pub async fn save(
    tx: &mut TenantTx,
    course: &Course,
    parent: Option<&Topic>,
    current: Option<&Topic>,
    change: TopicChange,
    now: OffsetDateTime,
) -> ApiResult<Topic> {
    let (title, description, hours) = part_fields(
        &change,
        current.map(|t| (&t.title, &t.description, t.duration_hours)),
    )?;
    let id = current.map_or_else(Uuid::now_v7, |t| t.id);
    let (slot, limit, holder) = match parent {
        Some(p) => (
            Slot::Subtopic { topic: p.id },
            Some(p.duration_hours),
            format!("the topic “{}” has", p.title),
        ),
        None => (
            Slot::Topic { course: course.id },
            course.duration_hours,
            "the course lasts".to_string(),
        ),
    };
    if let Some(limit) = limit {
        let others = hours_within(tx, slot, Some(id)).await?;
        if others + hours > limit + 1e-6 {
            let kin = if parent.is_some() {
                "subtopics"
            } else {
                "topics"
            };
            return Err(ApiError::field(
                "duration_hours",
                format!(
                    "{holder} {limit} hours and its other {kin} take {others}: at most {} left",
                    (limit - others).max(0.0)
                ),
            ));
        }
    }
    if parent.is_none() && current.is_some() {
        let inner = hours_within(tx, Slot::Subtopic { topic: id }, None).await?;
        if inner > hours + 1e-6 {
            return Err(ApiError::field(
                "duration_hours",
                format!("its subtopics take {inner} hours"),
            ));
        }
    }
    let position = place(tx, slot, id, change.position, current.map(|t| t.position)).await?;
    let topic = Topic {
        id,
        course_id: course.id,
        parent_id: parent.map(|p| p.id),
        position,
        title,
        description,
        duration_hours: hours,
        deleted_at: None,
    };
    let tenant = tx.tenant();
    let t = &topic;
    if current.is_none() {
        sql!(tx.conn() => |c| sqlx::query(
            "insert into course_topics (tenant_id, id, course_id, parent_id, position, title,
                    description, duration_hours, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)")
            .bind(tenant).bind(t.id).bind(t.course_id).bind(t.parent_id).bind(t.position)
            .bind(&t.title).bind(&t.description).bind(t.duration_hours).bind(now)
            .execute(&mut *c).await.map(drop))?;
    } else {
        sql!(tx.conn() => |c| sqlx::query(
            "update course_topics set position = $3, title = $4, description = $5,
                    duration_hours = $6, updated_at = $7 where tenant_id = $1 and id = $2")
            .bind(tenant).bind(t.id).bind(t.position).bind(&t.title).bind(&t.description)
            .bind(t.duration_hours).bind(now).execute(&mut *c).await.map(drop))?;
    }
    Ok(topic)
}

/// Soft-deletes (its subtopics go with it) or restores a topic; a restore checks its position
/// and hours again, and a subtopic comes back only under a live topic (409 on `parent_id`).
pub async fn set_deleted(
    tx: &mut TenantTx,
    course: &Course,
    topic: &Topic,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Topic> {
    if !deleted {
        let parent = match topic.parent_id {
            Some(p) => Some(get(tx, p, false).await.map_err(|_| ApiError::Conflict {
                field: "parent_id".into(),
                message: "its topic is deleted: restore the topic first".into(),
            })?),
            None => None,
        };
        let live = Topic {
            deleted_at: None,
            ..topic.clone()
        };
        save(
            tx,
            course,
            parent.as_ref(),
            Some(&live),
            TopicChange::default(),
            now,
        )
        .await?;
    }
    let at = deleted.then_some(now);
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update course_topics set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(topic.id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(Topic {
        deleted_at: at,
        ..topic.clone()
    })
}
