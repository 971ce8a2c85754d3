//! The portal's mass registration: the template to download and the upload that registers a
//! workbook's courses (or only checks it) and shows the report.

use askama::Template;
use poem::{handler, http::StatusCode, web::Data, IntoResponse, Response};
use tokio::io::AsyncReadExt;
use trainflow_kernel::{body::File, now, ApiError};
use trainflow_web::{field_errors, render, Errors, Nav, PageResult, SignedIn, SubmittedMultipart};

use crate::{
    service::{self, RegistrationReport},
    Learning,
};

#[derive(Template)]
#[template(path = "registration.html")]
struct RegistrationPage {
    nav: Option<Nav>,
    csrf: String,
    report: Option<RegistrationReport>,
    errors: Errors,
}

/// The template, to download.
#[handler]
pub(super) async fn template(me: SignedIn, svc: Data<&Learning>) -> poem::Result<Response> {
    let bytes = service::registration_template(&svc, me.ctx()).await?;
    Ok(Response::builder()
        .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .header(
            "content-disposition",
            "attachment; filename=\"course-registration.xlsx\"",
        )
        .header("cache-control", "private, no-store")
        .body(bytes)
        .into_response())
}

/// Registers (or, with `dry_run`, checks) the uploaded workbook (fields `dry_run`, then
/// `file`) and shows the report; a workbook refused whole shows the error at `file`.
#[handler]
pub(super) async fn upload(svc: Data<&Learning>, mut upload: SubmittedMultipart) -> PageResult {
    let mut dry_run = false;
    let mut file = None;
    while let Some(field) = upload.1.next_field().await? {
        match field.name() {
            Some("dry_run") => {
                let mut v = String::new();
                field
                    .into_async_read()
                    .take(16)
                    .read_to_string(&mut v)
                    .await
                    .map_err(|_| ApiError::field("dry_run", "could not be read"))?;
                dry_run = !v.trim().is_empty();
            }
            Some("file") => {
                file = Some(File::from_reader(field.into_async_read()));
                break;
            }
            _ => {}
        }
    }
    let me = upload.0;
    let mut file = file.unwrap_or_else(|| File::from_bytes(Vec::new()));
    let (report, errors, status) =
        match service::register_courses(&svc, me.ctx(), &mut file, dry_run, now()).await {
            Ok(r) => (Some(r), Errors::default(), StatusCode::OK),
            Err(e) => {
                let mut errors = Errors::default();
                for (_, message) in field_errors(e)?.all() {
                    errors.add("file", message);
                }
                (None, errors, StatusCode::UNPROCESSABLE_ENTITY)
            }
        };
    render(
        &RegistrationPage {
            nav: me.nav("courses"),
            csrf: me.csrf().to_string(),
            report,
            errors,
        },
        status,
    )
}
