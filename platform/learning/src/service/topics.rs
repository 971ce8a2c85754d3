//! The use cases of a course's syllabus: topics and subtopics, kept by those who manage courses
//! and shown to everyone who may see the course.

use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::TenantTx,
    ApiError, ApiResult,
};
use uuid::Uuid;

use super::{conflict_on, json};
use crate::{
    catalogue,
    topics::{self, Topic, TopicChange},
    Learning,
};

const MOVED: &str = "another topic took this position meanwhile";

/// Adds a topic to a course, or (with `parent`, a live topic of the course) a subtopic to one
/// of its topics.
pub async fn add_topic(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    parent: Option<Uuid>,
    change: TopicChange,
    now: OffsetDateTime,
) -> ApiResult<Topic> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let course = catalogue::get(&mut tx, course, false).await?;
    let parent = match parent {
        Some(p) => {
            let found = topics::get(&mut tx, p, false).await.ok();
            match found {
                Some(t) if t.course_id == course.id && t.parent_id.is_none() => Some(t),
                _ => {
                    return Err(ApiError::field(
                        "parent_id",
                        "is not a topic of this course (a subtopic has no subtopics)",
                    ))
                }
            }
        }
        None => None,
    };
    let topic = topics::save(&mut tx, &course, parent.as_ref(), None, change, now)
        .await
        .map_err(|e| conflict_on(e, "position", MOVED))?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course_topic.create")
            .object("course_topic", topic.id)
            .change(None, json(&topic)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(topic)
}

/// The topic a subtopic belongs to, which must be live for it to change.
async fn parent_of(tx: &mut TenantTx, topic: &Topic) -> ApiResult<Option<Topic>> {
    match topic.parent_id {
        Some(p) => Ok(Some(topics::get(tx, p, false).await?)),
        None => Ok(None),
    }
}

/// Changes a topic or subtopic.
pub async fn update_topic(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    change: TopicChange,
    now: OffsetDateTime,
) -> ApiResult<Topic> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let before = topics::get(&mut tx, id, false).await?;
    let course = catalogue::get(&mut tx, before.course_id, false).await?;
    let parent = parent_of(&mut tx, &before).await?;
    let after = topics::save(
        &mut tx,
        &course,
        parent.as_ref(),
        Some(&before),
        change,
        now,
    )
    .await
    .map_err(|e| conflict_on(e, "position", MOVED))?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course_topic.update")
            .object("course_topic", id)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes (`deleted`; its subtopics go with it) or restores a topic or subtopic.
pub async fn set_topic_deleted(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Topic> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let topic = topics::get(&mut tx, id, !deleted).await?;
    let course = catalogue::get(&mut tx, topic.course_id, false).await?;
    let topic = topics::set_deleted(&mut tx, &course, &topic, deleted, now)
        .await
        .map_err(|e| conflict_on(e, "position", MOVED))?;
    let action = if deleted {
        "course_topic.delete"
    } else {
        "course_topic.restore"
    };
    audit::record(
        &mut tx,
        Entry::by(&ctx, action).object("course_topic", id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(topic)
}
