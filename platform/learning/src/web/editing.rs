//! The course page's editing forms for those who build the catalogue: change the course's
//! fields, change or remove a module or a lesson, and delete or restore the course.

use poem::{
    handler,
    web::{Data, Path, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::{now, ApiError, FieldErrors};
use trainflow_web::{blank, PageResult, Submitted};
use uuid::Uuid;

use super::catalogue::{after, number, once_checked, CourseForm};
use crate::{
    catalogue::{CourseChange, Difficulty, LessonChange, LessonKind, ModuleChange},
    service, Learning,
};

/// Changes the course's fields (blank hours, category, description or months clear them).
#[handler]
pub(super) async fn edit_course(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<CourseForm>,
) -> PageResult {
    let mut e = FieldErrors::new();
    let hours = number(&mut e, "duration_hours", &form.duration_hours);
    let months = number(&mut e, "certificate_months", &form.certificate_months);
    let difficulty = Difficulty::parse(form.difficulty.trim());
    if difficulty.is_none() {
        e.add("difficulty", "must be beginner, intermediate or advanced");
    }
    let r = once_checked(e, || async {
        let change = CourseChange {
            code: Some(form.code),
            title: Some(form.title),
            category: Some(blank(&form.category)),
            difficulty,
            duration_hours: Some(hours),
            description: Some(blank(&form.description)),
            self_enrol: Some(form.self_enrol.is_some()),
            certificate_months: Some(months),
            ..CourseChange::default()
        };
        service::update_course(&svc, me.ctx(), id.0, change, now()).await
    })
    .await;
    after(&svc, &me, id.0, r, "course_changed").await
}

/// Deletes the course (refused while people are enrolled), back to the catalogue.
#[handler]
pub(super) async fn delete_course(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    match service::delete_course(&svc, me.ctx(), id.0, now()).await {
        Ok(_) => Ok(Redirect::see_other("/portal/courses?notice=course_deleted").into_response()),
        Err(e) => after(&svc, &me, id.0, Err(e), "").await,
    }
}

/// Restores a deleted course, to its page.
#[handler]
pub(super) async fn restore_course(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    service::restore_course(&svc, me.ctx(), id.0, now()).await?;
    Ok(
        Redirect::see_other(format!("/portal/courses/{}?notice=course_restored", id.0))
            .into_response(),
    )
}

/// The course a module's or lesson's form came from (its page shows the errors).
fn course_of(raw: &str) -> Result<Uuid, ApiError> {
    raw.trim().parse().map_err(|_| ApiError::NotFound)
}

#[derive(Deserialize, Default)]
pub(super) struct EditModuleForm {
    #[serde(default)]
    course_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    duration_hours: String,
}

/// Changes a module's title and hours.
#[handler]
pub(super) async fn edit_module(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<EditModuleForm>,
) -> PageResult {
    let course = course_of(&form.course_id)?;
    let mut e = FieldErrors::new();
    let hours = number(&mut e, "duration_hours", &form.duration_hours);
    let r = once_checked(e, || async {
        let change = ModuleChange {
            title: Some(form.title),
            duration_hours: Some(hours.unwrap_or(0.0)),
            ..ModuleChange::default()
        };
        service::update_module(&svc, me.ctx(), id.0, change, now()).await
    })
    .await;
    after(&svc, &me, course, r, "module_changed").await
}

#[derive(Deserialize, Default)]
pub(super) struct RemoveForm {
    #[serde(default)]
    course_id: String,
}

/// Removes a module (its lessons go with it).
#[handler]
pub(super) async fn delete_module(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<RemoveForm>,
) -> PageResult {
    let course = course_of(&form.course_id)?;
    let r = service::set_module_deleted(&svc, me.ctx(), id.0, true, now())
        .await
        .map(drop);
    after(&svc, &me, course, r, "module_removed").await
}

#[derive(Deserialize, Default)]
pub(super) struct EditLessonForm {
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
    #[serde(default)]
    required: Option<String>,
}

/// Changes a lesson.
#[handler]
pub(super) async fn edit_lesson(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<EditLessonForm>,
) -> PageResult {
    let course = course_of(&form.course_id)?;
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
            duration_minutes: Some(minutes.unwrap_or(0)),
            required: Some(form.required.is_some()),
            ..LessonChange::default()
        };
        service::update_lesson(&svc, me.ctx(), id.0, change, now()).await
    })
    .await;
    after(&svc, &me, course, r, "lesson_changed").await
}

/// Removes a lesson.
#[handler]
pub(super) async fn delete_lesson(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<RemoveForm>,
) -> PageResult {
    let course = course_of(&form.course_id)?;
    let r = service::set_lesson_deleted(&svc, me.ctx(), id.0, true, now())
        .await
        .map(drop);
    after(&svc, &me, course, r, "lesson_removed").await
}
