//! The web portal: server-rendered pages from the same binary, plain forms with
//! POST-redirect-GET, a CSRF token on every form, no JavaScript build step.
//!
//! Pages call the same use cases as the API (`trainflow_identity::service`), so a rule holds
//! in one place whichever door a person comes through.
#![forbid(unsafe_code)]

// `pages` first: its `session_or_return!` serves the modules after it.
#[macro_use]
mod pages;
mod account;
mod integrations;
mod renewals;

use std::sync::Arc;

use poem::{
    endpoint::make_sync,
    get, post,
    web::cookie::{Cookie, CookieJar, SameSite},
    EndpointExt, Request, Route,
};
use trainflow_identity::signin::{self, AuthDeps, PortalSession};
use trainflow_integrations::Integrations;
use trainflow_kernel::{auth::client_ip, ApiResult};

/// Portal dependencies.
pub struct Portal {
    pub deps: AuthDeps,
    pub cookie_secure: bool,
    /// Connectors (absent in deployments that do not offer them).
    pub integrations: Option<Arc<Integrations>>,
    /// Certifications, renewals and notifications.
    pub renewals: Option<trainflow_renewals::Renewals>,
}

impl Portal {
    /// The session cookie's name: `__Host-` prefixed when cookies are `Secure`.
    pub fn session_cookie(&self) -> &'static str {
        if self.cookie_secure {
            "__Host-tf_session"
        } else {
            "tf_session"
        }
    }

    /// The pre-sign-in CSRF cookie (double-submit) for the login form.
    pub fn login_csrf_cookie(&self) -> &'static str {
        if self.cookie_secure {
            "__Host-tf_login_csrf"
        } else {
            "tf_login_csrf"
        }
    }

    /// A cookie with the portal's attributes: HttpOnly, SameSite=Lax, Path=/, Secure when set.
    pub fn cookie(&self, name: &str, value: String, max_age: Option<time::Duration>) -> Cookie {
        let mut c = Cookie::new_with_str(name, value);
        c.set_http_only(true);
        c.set_secure(self.cookie_secure);
        c.set_same_site(SameSite::Lax);
        c.set_path("/");
        if let Some(age) = max_age {
            c.set_max_age(std::time::Duration::from_secs(
                age.whole_seconds().max(0) as u64
            ));
        }
        c
    }

    /// A cookie that deletes `name`: same attributes (a `__Host-` cookie is only replaced by
    /// one with `Secure` and `Path=/`), empty value, expired.
    pub fn expired(&self, name: &str) -> Cookie {
        self.cookie(name, String::new(), Some(time::Duration::ZERO))
    }

    /// The signed-in session of this request, if any.
    pub async fn session(
        &self,
        req: &Request,
        jar: &CookieJar,
    ) -> ApiResult<Option<PortalSession>> {
        match jar.get(self.session_cookie()) {
            Some(c) => signin::resolve_session(&self.deps.db, c.value_str(), client_ip(req)).await,
            None => Ok(None),
        }
    }
}

/// The portal's routes, to be nested under `/portal`.
pub fn routes(
    deps: AuthDeps,
    cookie_secure: bool,
    integrations: Option<Arc<Integrations>>,
    renewals: Option<trainflow_renewals::Renewals>,
) -> impl poem::Endpoint {
    let portal = Arc::new(Portal {
        deps,
        cookie_secure,
        integrations,
        renewals,
    });
    Route::new()
        .at("/", get(pages::dashboard))
        .at("/login", get(pages::login_form).post(pages::login))
        .at("/logout", post(pages::logout))
        .at("/profile", get(pages::profile).post(pages::save_profile))
        .at("/users", get(pages::users_page).post(pages::create_user))
        .at("/users/new", get(pages::new_user))
        .at("/users/:id/edit", get(pages::edit_user))
        .at("/users/:id", post(pages::update_user))
        .at("/users/:id/delete", post(pages::delete_user))
        .at("/users/:id/restore", post(pages::restore_user))
        .at("/integrations", get(integrations::index))
        .at("/integrations/packages", post(integrations::upload_package))
        .at(
            "/integrations/install",
            get(integrations::install_form).post(integrations::install),
        )
        .at(
            "/integrations/installations/:id",
            get(integrations::installation_view),
        )
        .at(
            "/integrations/installations/:id/files",
            post(integrations::upload_file),
        )
        .at(
            "/integrations/installations/:id/runs",
            post(integrations::run_now),
        )
        .at("/integrations/runs/:id", get(integrations::run_view))
        .at(
            "/integrations/runs/:id/confirm",
            post(integrations::confirm),
        )
        .at(
            "/reset-password",
            get(account::reset_form).post(account::reset),
        )
        .at(
            "/verify-email",
            get(account::verify_form).post(account::verify),
        )
        .at("/certifications", get(renewals::my_certifications))
        .at(
            "/certification-types",
            get(renewals::certification_types).post(renewals::save_certification_type),
        )
        .at("/certifications/:id/renew", post(renewals::request_renewal))
        .at("/renewals/:id", get(renewals::renewal_view))
        .at("/renewals/:id/decision", post(renewals::decide))
        .at("/approvals", get(renewals::approvals_queue))
        .at("/compliance", get(renewals::compliance_dashboard))
        .at("/notifications", get(renewals::notification_centre))
        .at(
            "/notifications/preferences",
            post(renewals::save_preferences),
        )
        .at(
            "/notifications/:id/:action",
            post(renewals::notification_action),
        )
        .at(
            "/static/app.css",
            make_sync(|_| {
                poem::Response::builder()
                    .content_type("text/css; charset=utf-8")
                    .header("cache-control", "public, max-age=3600")
                    .body(include_str!("../static/app.css"))
            }),
        )
        .data(portal)
        .with(poem::middleware::CookieJarManager::new())
}

/// HTML-escapes text for the few places that build markup by hand.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
