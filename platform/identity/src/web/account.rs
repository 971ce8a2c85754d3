//! The pages behind the account links in emails: choosing a new password and verifying an
//! email address. No session: the link's token is the credential. GET shows a form; only the
//! POST redeems the token (mail scanners follow GET links).

use std::sync::Arc;

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Form, Query},
    Request,
};
use serde::Deserialize;
use trainflow_kernel::{auth::client_ip, ApiError};
use trainflow_web::{render, Nav, PageResult};

use super::IdentityPages;
use crate::account_links;

#[derive(Template)]
#[template(path = "account_link.html")]
struct AccountLinkPage {
    nav: Option<Nav>,
    title: &'static str,
    /// `reset`, `verify` or empty (a message only).
    form: &'static str,
    token: String,
    error: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub(super) struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

fn page(
    title: &'static str,
    form: &'static str,
    token: String,
    error: Option<String>,
    message: Option<String>,
    status: StatusCode,
) -> PageResult {
    render(
        &AccountLinkPage {
            nav: None,
            title,
            form,
            token,
            error,
            message,
        },
        status,
    )
}

fn explain(e: ApiError) -> (String, StatusCode) {
    match e {
        ApiError::Validation(f) => (
            f.0.into_values().flatten().collect::<Vec<_>>().join("; "),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ApiError::Unauthorized(m) => (m.to_string(), StatusCode::UNAUTHORIZED),
        other => (other.to_string(), StatusCode::BAD_REQUEST),
    }
}

/// The new-password form of a reset link.
#[handler]
pub(super) async fn reset_form(q: Query<TokenQuery>) -> PageResult {
    page(
        "Choose a new password",
        "reset",
        q.0.token,
        None,
        None,
        StatusCode::OK,
    )
}

/// Sets the new password.
#[handler]
pub(super) async fn reset(
    req: &Request,
    pages: Data<&Arc<IdentityPages>>,
    Form(form): Form<ResetForm>,
) -> PageResult {
    match account_links::reset_password(
        &pages.deps,
        &form.token,
        &form.new_password,
        client_ip(req),
    )
    .await
    {
        Ok(()) => page(
            "Password changed",
            "",
            String::new(),
            None,
            Some("Your password was changed, and every other sign-in ended.".into()),
            StatusCode::OK,
        ),
        Err(ApiError::Internal(e)) => Err(ApiError::Internal(e).into()),
        Err(e) => {
            let (text, status) = explain(e);
            let form_kind = if status == StatusCode::UNPROCESSABLE_ENTITY {
                "reset"
            } else {
                ""
            };
            page(
                "Choose a new password",
                form_kind,
                form.token,
                Some(text),
                None,
                status,
            )
        }
    }
}

/// The confirmation button of a verification link.
#[handler]
pub(super) async fn verify_form(q: Query<TokenQuery>) -> PageResult {
    page(
        "Verify your email address",
        "verify",
        q.0.token,
        None,
        None,
        StatusCode::OK,
    )
}

/// Verifies the address.
#[handler]
pub(super) async fn verify(
    req: &Request,
    pages: Data<&Arc<IdentityPages>>,
    Form(form): Form<TokenQuery>,
) -> PageResult {
    match account_links::verify_email(&pages.deps, &form.token, client_ip(req)).await {
        Ok(()) => page(
            "Email address verified",
            "",
            String::new(),
            None,
            Some("Thank you: your email address is verified.".into()),
            StatusCode::OK,
        ),
        Err(ApiError::Internal(e)) => Err(ApiError::Internal(e).into()),
        Err(e) => {
            let (text, status) = explain(e);
            page(
                "Verify your email address",
                "",
                String::new(),
                Some(text),
                None,
                status,
            )
        }
    }
}
