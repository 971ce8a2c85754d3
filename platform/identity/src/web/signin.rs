//! Signing in and out of the portal.

use std::sync::Arc;

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Redirect},
    IntoResponse, Request,
};
use serde::Deserialize;
use trainflow_kernel::{auth::client_ip, secret::constant_time_eq, secret::random_token, ApiError};
use trainflow_web::{render, Nav, NoFields, PageResult, Shell, Submitted};

use super::IdentityPages;
use crate::signin::{self, TenantRef};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    organisation: String,
    tenant_name: Option<String>,
    email: String,
    error: Option<&'static str>,
}

/// The tenant selected by the request's host name, if one is configured for it.
async fn tenant_for_host(pages: &IdentityPages, req: &Request) -> poem::Result<Option<TenantRef>> {
    let host = req.uri().host().map(str::to_string).or_else(|| {
        req.headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(':').next().unwrap_or("").to_string())
    });
    match host.filter(|h| h.contains('.') && h.parse::<std::net::IpAddr>().is_err()) {
        Some(h) => Ok(signin::find_tenant(&pages.deps.db, &h).await?),
        None => Ok(None),
    }
}

#[handler]
pub(super) async fn login_form(
    req: &Request,
    jar: &CookieJar,
    pages: Data<&Arc<IdentityPages>>,
    shell: Data<&Arc<Shell>>,
) -> PageResult {
    if let Some(c) = jar.get(shell.session_cookie()) {
        if let Ok(Some(_)) = shell.sessions.resolve(c.value_str(), client_ip(req)).await {
            return Ok(Redirect::see_other("/portal").into_response());
        }
    }
    let csrf = random_token();
    jar.add(shell.cookie(
        shell.login_csrf_cookie(),
        csrf.clone(),
        Some(time::Duration::hours(1)),
    ));
    let tenant = tenant_for_host(&pages, req).await?;
    render(
        &LoginPage {
            nav: None,
            csrf,
            organisation: tenant.as_ref().map(|t| t.slug.clone()).unwrap_or_default(),
            tenant_name: tenant.map(|t| t.name),
            email: String::new(),
            error: None,
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    organisation: String,
    email: String,
    password: String,
}

/// Signs in (double-submit CSRF: the form's token must match the pre-sign-in cookie).
#[handler]
pub(super) async fn login(
    req: &Request,
    jar: &CookieJar,
    pages: Data<&Arc<IdentityPages>>,
    shell: Data<&Arc<Shell>>,
    Form(f): Form<LoginForm>,
) -> PageResult {
    let expected = jar
        .get(shell.login_csrf_cookie())
        .map(|c| c.value_str().to_string())
        .unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return Err(ApiError::Forbidden.into());
    }
    let tenant = tenant_for_host(&pages, req).await?;
    let organisation = tenant
        .as_ref()
        .map(|t| t.slug.clone())
        .unwrap_or_else(|| f.organisation.trim().to_string());
    let too_long = organisation.len() > 253 || f.email.len() > 254 || f.password.len() > 128;
    let outcome = if too_long {
        Err(ApiError::Unauthorized(
            "invalid organisation, email or employee number, or password or PIN",
        ))
    } else {
        signin::sign_in(
            &pages.deps,
            &organisation,
            crate::users::Login::parse(&f.email),
            f.password,
            client_ip(req),
        )
        .await
    };
    match outcome {
        Ok((tenant_id, user)) => {
            let cookie = signin::create_session(&pages.deps, tenant_id, &user).await?;
            jar.add(shell.cookie(shell.session_cookie(), cookie, Some(pages.deps.session_ttl)));
            jar.add(shell.expired(shell.login_csrf_cookie()));
            Ok(Redirect::see_other("/portal").into_response())
        }
        Err(err @ (ApiError::Unauthorized(_) | ApiError::TooManyRequests { .. })) => {
            let (message, status) = match err {
                ApiError::TooManyRequests { .. } => (
                    "Too many attempts. Wait a moment and try again.",
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                ApiError::Unauthorized(m) if m == signin::PIN_LOCKED => (
                    "Your PIN is locked after 10 failed attempts. Ask your administrator or foreman to set a new one.",
                    StatusCode::UNAUTHORIZED,
                ),
                _ => (
                    "That organisation, email or employee number, and password or PIN do not match an active account.",
                    StatusCode::UNAUTHORIZED,
                ),
            };
            render(
                &LoginPage {
                    nav: None,
                    csrf: f.csrf,
                    organisation,
                    tenant_name: tenant.map(|t| t.name),
                    email: f.email,
                    error: Some(message),
                },
                status,
            )
        }
        Err(other) => Err(other.into()),
    }
}

/// Signs out: ends the session and deletes its cookie.
#[handler]
pub(super) async fn logout(
    req: &Request,
    jar: &CookieJar,
    pages: Data<&Arc<IdentityPages>>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    let shell = me.shell();
    if let Some(c) = jar.get(shell.session_cookie()) {
        signin::end_session(&pages.deps.db, c.value_str(), client_ip(req)).await?;
    }
    jar.add(shell.expired(shell.session_cookie()));
    Ok(Redirect::see_other("/portal/login").into_response())
}
