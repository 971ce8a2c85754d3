//! The portal's lesson materials: the upload form of a lesson on the course page (for those who
//! build the catalogue), removing a file, and downloading one.

use poem::{handler, http::StatusCode, web::Data, web::Path, IntoResponse, Response};
use tokio::io::AsyncReadExt;
use trainflow_kernel::{body::File, now, ApiError};
use trainflow_web::{field_errors, Errors, PageResult, SignedIn, Submitted, SubmittedMultipart};
use uuid::Uuid;

use super::catalogue::{after_course_form, course_with_errors};
use crate::{service, Learning};

/// Attaches the uploaded file (field `file`, after the field `course_id`) to a lesson; a
/// refusal shows the course page again with the error at `file`.
#[handler]
pub(super) async fn upload(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    mut upload: SubmittedMultipart,
) -> PageResult {
    let mut course = String::new();
    let mut found = None;
    while let Some(field) = upload.1.next_field().await? {
        match field.name() {
            Some("course_id") => {
                field
                    .into_async_read()
                    .take(64)
                    .read_to_string(&mut course)
                    .await
                    .map_err(|_| ApiError::field("course_id", "could not be read"))?;
            }
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_string();
                found = Some((name, File::from_reader(field.into_async_read())));
                break;
            }
            _ => {}
        }
    }
    let me = upload.0;
    let course: Uuid = course.trim().parse().map_err(|_| ApiError::NotFound)?;
    let r = match found {
        Some((name, mut file)) => {
            service::upload_material(&svc, me.ctx(), id.0, &name, &mut file, now()).await
        }
        None => Err(ApiError::field("body", "the file is empty")),
    };
    match r {
        Ok(_) => after_course_form(course, "material"),
        Err(e) => {
            let mut errors = Errors::default();
            for (_, message) in field_errors(e)?.all() {
                // The form has one field: the file (its name and content alike).
                errors.add("file", message);
            }
            course_with_errors(&svc, &me, course, errors).await
        }
    }
}

/// Removes a file from its lesson.
#[handler]
pub(super) async fn delete(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    let m = service::set_material_deleted(&svc, me.ctx(), id.0, true, now()).await?;
    after_course_form(m.course_id, "material_removed")
}

/// A lesson's file, to download under its name with the type recognised in it.
#[handler]
pub(super) async fn download(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
) -> poem::Result<Response> {
    let (m, bytes) = service::material_file(&svc, me.ctx(), id.0).await?;
    let name = m.file_name.replace('"', "'");
    Ok(Response::builder()
        .status(StatusCode::OK)
        .content_type(m.content_type)
        .header(
            "content-disposition",
            format!(
                "attachment; filename=\"{}\"; filename*=UTF-8''{}",
                name.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), "_"),
                percent(&m.file_name)
            ),
        )
        .header("cache-control", "private, no-store")
        .body(bytes)
        .into_response())
}

/// `s` percent-encoded as RFC 5987 asks of a header's extended value.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
