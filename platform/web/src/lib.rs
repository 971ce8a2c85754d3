//! The small web layer every bounded context's pages share.
//!
//! * [`Shell`]: the portal's shared state — cookie policy, the session store, the navigation
//!   entries and dashboard cards each context contributes.
//! * [`SignedIn`], [`Submitted`] and [`SubmittedMultipart`]: extractors. A page handler that
//!   takes `SignedIn` cannot be reached without a session; one that takes `Submitted<F>` cannot
//!   act without a valid CSRF token. State-changing handlers take one of the `Submitted` kinds.
//! * [`Nav`] and [`NavEntry`]: the navigation bar, filtered by the caller's role.
//! * [`render`], [`escape`], [`Errors`], [`notice`]: rendering, escaping, form errors and
//!   flash notices.
//!
//! The crate knows no context: contexts depend on it, the server mounts their routes into one
//! [`Route`] and hands it to [`portal`].
#![forbid(unsafe_code)]

mod dashboard;
mod extract;
mod nav;
mod render;

use std::{future::Future, pin::Pin, sync::Arc};

use poem::{
    endpoint::make_sync,
    get,
    web::cookie::{Cookie, SameSite},
    EndpointExt, Route,
};
use trainflow_kernel::{auth::Role, auth::TenantCtx, ApiResult};
use uuid::Uuid;

pub use dashboard::{Card, CardRow, CardSource};
pub use extract::{NoFields, SignedIn, Submitted, SubmittedMultipart};
pub use nav::{Nav, NavEntry};
pub use render::{
    blank, escape, field_errors, notice, portal_page, render, url_encode, Errors, PageResult,
    Pager, CSRF_FIELD,
};

/// Times as the tenant's people read them, in its time zone.
#[derive(Debug, Clone)]
pub struct LocalTimes(pub String);

/// An instant, however many references a template puts around it.
pub trait Instant {
    fn instant(&self) -> time::OffsetDateTime;
}

impl Instant for time::OffsetDateTime {
    fn instant(&self) -> time::OffsetDateTime {
        *self
    }
}

impl<T: Instant + ?Sized> Instant for &T {
    fn instant(&self) -> time::OffsetDateTime {
        (**self).instant()
    }
}

impl LocalTimes {
    /// "2 Dec 2026, 14:05".
    pub fn at(&self, at: impl Instant) -> String {
        trainflow_kernel::local_time(&self.0, at.instant())
    }

    /// "2 Dec 2026".
    pub fn day(&self, at: impl Instant) -> String {
        let at = at.instant();
        let format =
            time::macros::format_description!("[day padding:none] [month repr:short] [year]");
        at.to_offset(trainflow_kernel::zone_offset(&self.0, at))
            .format(&format)
            .unwrap_or_default()
    }
}

/// A boxed future, for the object-safe traits contexts implement.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A signed-in portal session, as the pages need it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The caller, for use cases.
    pub ctx: TenantCtx,
    /// The token every state-changing form must carry.
    pub csrf_token: String,
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub department_id: Option<Uuid>,
    pub tenant_name: String,
    /// The tenant's IANA time zone: times are shown in it.
    pub time_zone: String,
    /// The tenant's brand colour (`#rrggbb`), which the portal's header carries.
    pub brand_colour: String,
    /// The tenant's logo (`https://…` or a path on this site), shown in the header.
    pub logo_url: Option<String>,
}

impl Session {
    /// `at` as the person reads it: "2 Dec 2026, 14:05" in the tenant's time zone.
    pub fn local_time(&self, at: time::OffsetDateTime) -> String {
        trainflow_kernel::local_time(&self.time_zone, at)
    }

    /// The tenant's clock, for templates (`{{ times.at(r.created_at) }}`).
    pub fn times(&self) -> LocalTimes {
        LocalTimes(self.time_zone.clone())
    }

    /// "First Last", or the email when the person has no name.
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name);
        let name = name.trim();
        if name.is_empty() {
            self.email.clone()
        } else {
            name.to_string()
        }
    }

    /// How the dashboard greets the person.
    pub fn greeting_name(&self) -> &str {
        if self.first_name.is_empty() {
            &self.email
        } else {
            &self.first_name
        }
    }
}

/// Resolves a session cookie (implemented by the identity context, wired by the server).
pub trait SessionStore: Send + Sync {
    /// The session of `cookie`, if it is live and its tenant and person are active.
    fn resolve<'a>(
        &'a self,
        cookie: &'a str,
        ip: Option<String>,
    ) -> BoxFuture<'a, ApiResult<Option<Session>>>;
}

/// The portal's shared state.
pub struct Shell {
    /// `Secure` cookies (and the `__Host-` prefix).
    pub cookie_secure: bool,
    pub sessions: Arc<dyn SessionStore>,
    /// Every context's navigation entries, in display order.
    pub nav: Vec<NavEntry>,
    /// Every context's dashboard cards.
    pub cards: Vec<Arc<dyn CardSource>>,
    /// Every context's parts of the profile page (what the person is, by role: their place and
    /// team, their qualifications).
    pub profile_parts: Vec<Arc<dyn CardSource>>,
}

impl Shell {
    pub fn new(cookie_secure: bool, sessions: Arc<dyn SessionStore>) -> Self {
        Shell {
            cookie_secure,
            sessions,
            nav: vec![NavEntry {
                key: "dashboard",
                label: "Dashboard",
                href: "/portal",
                order: 0,
                permission: None,
            }],
            cards: Vec::new(),
            profile_parts: Vec::new(),
        }
    }

    /// Adds a context's navigation entries (kept sorted by their `order`).
    pub fn with_nav(mut self, entries: impl IntoIterator<Item = NavEntry>) -> Self {
        self.nav.extend(entries);
        self.nav.sort_by_key(|e| e.order);
        self
    }

    /// Adds a context's dashboard cards.
    pub fn with_cards(mut self, source: Arc<dyn CardSource>) -> Self {
        self.cards.push(source);
        self
    }

    /// Adds a context's parts of the profile page.
    pub fn with_profile_parts(mut self, source: Arc<dyn CardSource>) -> Self {
        self.profile_parts.push(source);
        self
    }

    /// The session cookie's name: `__Host-` prefixed when cookies are `Secure`.
    pub fn session_cookie(&self) -> &'static str {
        if self.cookie_secure {
            "__Host-tf_session"
        } else {
            "tf_session"
        }
    }

    /// The pre-sign-in CSRF cookie (double-submit) of the sign-in form.
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
}

/// The stylesheet that gives the header the tenant's colour (`c=rrggbb` in the query; anything
/// else keeps TrainFlow's), with text that stays readable on it: white on a dark colour, near
/// black on a light one (whichever contrasts more, WCAG's relative luminance). A stylesheet
/// rather than an inline style, which the portal's content security policy refuses.
pub fn brand_css(query: &str) -> String {
    let hex = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("c="))
        .filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or("1f4e79");
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    // Contrast with white is 1.05 / (L + 0.05); with #1b1f24 (L ≈ 0.014) it is (L + 0.05) / 0.064.
    let on = if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.064 {
        "#ffffff"
    } else {
        "#1b1f24"
    };
    format!(
        "header.top {{ background: #{hex}; color: {on}; }} header.top a, header.top button.link {{ color: {on}; }}\n"
    )
}

/// The portal: every context's pages (`pages`, mounted by the server), the dashboard, the
/// stylesheet and the menu script, with the shell and the cookie jar. Nest it under `/portal`.
pub fn portal(pages: Route, shell: Shell) -> impl poem::Endpoint {
    pages
        .at("/", get(dashboard::dashboard))
        .at(
            "/static/app.css",
            make_sync(|_| {
                poem::Response::builder()
                    .content_type("text/css; charset=utf-8")
                    .header("cache-control", "public, max-age=3600")
                    .body(include_str!("../static/app.css"))
            }),
        )
        .at(
            "/static/brand.css",
            make_sync(|req| {
                poem::Response::builder()
                    .content_type("text/css; charset=utf-8")
                    .header("cache-control", "public, max-age=86400")
                    .body(brand_css(req.uri().query().unwrap_or_default()))
            }),
        )
        .at(
            "/static/app.js",
            make_sync(|_| {
                poem::Response::builder()
                    .content_type("text/javascript; charset=utf-8")
                    .header("cache-control", "public, max-age=3600")
                    .body(include_str!("../static/app.js"))
            }),
        )
        .data(Arc::new(shell))
        .with(poem::middleware::CookieJarManager::new())
}

#[cfg(test)]
mod brand_tests {
    use super::brand_css;

    #[test]
    fn the_header_text_contrasts_with_the_brand_colour() {
        assert!(brand_css("c=1f4e79").contains("color: #ffffff"));
        assert!(brand_css("c=ffd700").contains("color: #1b1f24"));
        assert!(brand_css("c=ffd700").contains("background: #ffd700"));
        // Anything else is TrainFlow's colour, never text of the request.
        assert!(brand_css("c=</style>").contains("#1f4e79"));
        assert!(brand_css("").contains("#1f4e79"));
    }
}
