//! The use cases of lesson materials: uploaded by those who manage courses, listed and served to
//! everyone who may see the course (a draft's only to its builders).

use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    body::File,
    db::TenantTx,
    ApiResult,
};
use uuid::Uuid;

use super::{json, visible_course};
use crate::{
    catalogue,
    materials::{self, Material, MAX_BYTES},
    Learning,
};

/// Attaches the file `name` to a live lesson of a live course. Who may and where to are checked
/// before the file is read; the file is read up to [`MAX_BYTES`] (413 past it) and must be a
/// type lessons accept, its content matching its name (422).
pub async fn upload_material(
    svc: &Learning,
    ctx: &TenantCtx,
    lesson: Uuid,
    name: &str,
    file: &mut File,
    now: OffsetDateTime,
) -> ApiResult<Material> {
    {
        let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
        let l = catalogue::get_lesson(&mut tx, lesson, false).await?;
        catalogue::get(&mut tx, l.course_id, false).await?;
        materials::check_room(&mut tx, lesson).await?;
        tx.commit().await?;
    }
    let name = materials::clean_name(name)?;
    let bytes = file.read(MAX_BYTES).await?;
    let content_type = materials::recognise(&name, &bytes)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let l = catalogue::get_lesson(&mut tx, lesson, false).await?;
    catalogue::get(&mut tx, l.course_id, false).await?;
    materials::check_room(&mut tx, lesson).await?;
    let m = materials::insert(&mut tx, &l, name, content_type, &bytes, ctx.user_id.0, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "lesson_material.create")
            .object("lesson_material", m.id)
            .change(None, json(&m)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(m)
}

/// The materials of a lesson of a course the caller may see.
pub async fn lesson_materials(
    svc: &Learning,
    ctx: &TenantCtx,
    lesson: Uuid,
) -> ApiResult<Vec<Material>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let l = catalogue::get_lesson(&mut tx, lesson, false).await?;
    visible_course(&mut tx, &ctx, l.course_id).await?;
    let rows = materials::of_lesson(&mut tx, lesson).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A material and its content, for someone who may see its course (404 to anyone else).
pub async fn material_file(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
) -> ApiResult<(Material, Vec<u8>)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let m = materials::get(&mut tx, id, false).await?;
    let l = catalogue::get_lesson(&mut tx, m.lesson_id, false).await?;
    visible_course(&mut tx, &ctx, l.course_id).await?;
    let bytes = materials::content(&mut tx, id).await?;
    tx.commit().await?;
    Ok((m, bytes))
}

/// Soft-deletes (`deleted`) or restores a material (a restore while the lesson is full: 409).
pub async fn set_material_deleted(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Material> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let m = materials::get(&mut tx, id, !deleted).await?;
    catalogue::get_lesson(&mut tx, m.lesson_id, false).await?;
    if !deleted {
        materials::check_room(&mut tx, m.lesson_id).await?;
    }
    let m = materials::set_deleted(&mut tx, &m, deleted, now).await?;
    let action = if deleted {
        "lesson_material.delete"
    } else {
        "lesson_material.restore"
    };
    audit::record(
        &mut tx,
        Entry::by(&ctx, action).object("lesson_material", id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(m)
}
