//! Portal page handlers.

use std::{collections::BTreeMap, sync::Arc};

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Html, Path, Query, Redirect},
    IntoResponse, Request, Response,
};
use serde::Deserialize;
use trainflow_identity::{
    api::{departments, Department},
    service::{self, SelfEdit},
    signin::{self, PortalSession},
    users::{self, CreateUser, Deleted, ReplaceUser, User, UserFilter},
};
use trainflow_kernel::{
    auth::{client_ip, Permission, Role},
    db::TenantTx,
    envelope::Page,
    secret::{constant_time_eq, random_token},
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

use crate::Portal;

pub(crate) type PageResult = poem::Result<Response>;

/// Field → messages, for re-rendered forms.
#[derive(Default)]
pub struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    pub(crate) fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every message, with its field, for forms whose fields are free-form (JSON configs).
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .flat_map(|(f, ms)| ms.iter().map(move |m| (f.clone(), m.clone())))
            .collect()
    }
}

/// The navigation bar of a signed-in page.
pub struct Nav {
    pub(crate) current: &'static str,
    pub(crate) user_name: String,
    pub(crate) role_label: &'static str,
    pub(crate) tenant_name: String,
    pub(crate) csrf: String,
    pub(crate) can_see_users: bool,
    pub(crate) can_manage_integrations: bool,
    pub(crate) can_see_compliance: bool,
    pub(crate) can_manage_certifications: bool,
}

impl Nav {
    pub(crate) fn new(s: &PortalSession, current: &'static str) -> Self {
        Self {
            current,
            user_name: s.user.display_name(),
            role_label: s.user.role.label(),
            tenant_name: s.tenant_name.clone(),
            csrf: s.csrf_token.clone(),
            can_see_users: s.user.role.grants(Permission::UsersRead),
            can_manage_integrations: s.user.role.grants(Permission::Integrations),
            can_see_compliance: s.user.role.grants(Permission::ComplianceRead),
            can_manage_certifications: s.user.role.grants(Permission::CertificationsManage),
        }
    }
}

pub(crate) fn render(t: &impl Template, status: StatusCode) -> PageResult {
    let html = t
        .render()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(Html(html).with_status(status).into_response())
}

fn to_login() -> Response {
    Redirect::see_other("/portal/login").into_response()
}

/// The session, or a redirect to sign in.
pub(crate) async fn require(
    portal: &Portal,
    req: &Request,
    jar: &CookieJar,
) -> Result<PortalSession, Response> {
    match portal.session(req, jar).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(to_login()),
        Err(e) => Err(poem::Error::from(e).into_response()),
    }
}

macro_rules! session_or_return {
    ($portal:expr, $req:expr, $jar:expr) => {
        match require($portal, $req, $jar).await {
            Ok(s) => s,
            Err(resp) => return Ok(resp),
        }
    };
}

pub(crate) fn check_csrf(session: &PortalSession, submitted: &str) -> ApiResult<()> {
    if constant_time_eq(session.csrf_token.as_bytes(), submitted.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

pub(crate) fn field_errors(err: ApiError) -> Result<Errors, ApiError> {
    match err {
        ApiError::Validation(f) => Ok(Errors(f.0)),
        ApiError::Conflict { field, message } => {
            Ok(Errors(BTreeMap::from([(field, vec![message])])))
        }
        other => Err(other),
    }
}

fn roles() -> Vec<(&'static str, &'static str)> {
    Role::ALL.iter().map(|r| (r.as_str(), r.label())).collect()
}

fn blank(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

// ---------------------------------------------------------------- sign-in

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
async fn tenant_for_host(portal: &Portal, req: &Request) -> ApiResult<Option<signin::TenantRef>> {
    let host = req.uri().host().map(str::to_string).or_else(|| {
        req.headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(':').next().unwrap_or("").to_string())
    });
    match host.filter(|h| h.contains('.') && h.parse::<std::net::IpAddr>().is_err()) {
        Some(h) => signin::find_tenant(&portal.deps.db, &h).await,
        None => Ok(None),
    }
}

#[handler]
pub async fn login_form(req: &Request, jar: &CookieJar, portal: Data<&Arc<Portal>>) -> PageResult {
    if let Ok(Some(_)) = portal.session(req, jar).await {
        return Ok(Redirect::see_other("/portal").into_response());
    }
    let csrf = random_token();
    jar.add(portal.cookie(
        portal.login_csrf_cookie(),
        csrf.clone(),
        Some(time::Duration::hours(1)),
    ));
    let tenant = tenant_for_host(&portal, req).await?;
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
pub struct LoginForm {
    csrf: String,
    #[serde(default)]
    organisation: String,
    email: String,
    password: String,
}

#[handler]
pub async fn login(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    form: Form<LoginForm>,
) -> PageResult {
    let f = form.0;
    let expected = jar
        .get(portal.login_csrf_cookie())
        .map(|c| c.value_str().to_string())
        .unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return Err(ApiError::Forbidden.into());
    }
    let tenant = tenant_for_host(&portal, req).await?;
    let organisation = tenant
        .as_ref()
        .map(|t| t.slug.clone())
        .unwrap_or_else(|| f.organisation.trim().to_string());
    let too_long = organisation.len() > 253 || f.email.len() > 254 || f.password.len() > 128;
    let outcome = if too_long {
        Err(ApiError::Unauthorized(
            "invalid organisation, email or password",
        ))
    } else {
        signin::sign_in(
            &portal.deps,
            &organisation,
            &f.email,
            f.password,
            client_ip(req),
        )
        .await
    };
    match outcome {
        Ok((tenant_id, user)) => {
            let cookie = signin::create_session(&portal.deps, tenant_id, &user).await?;
            jar.add(portal.cookie(
                portal.session_cookie(),
                cookie,
                Some(portal.deps.session_ttl),
            ));
            jar.add(portal.expired(portal.login_csrf_cookie()));
            Ok(Redirect::see_other("/portal").into_response())
        }
        Err(err @ (ApiError::Unauthorized(_) | ApiError::TooManyRequests { .. })) => {
            let (message, status) = match err {
                ApiError::TooManyRequests { .. } => (
                    "Too many attempts. Wait a moment and try again.",
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                _ => (
                    "That organisation, email and password do not match an active account.",
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

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

#[handler]
pub async fn logout(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    form: Form<CsrfForm>,
) -> PageResult {
    let session = session_or_return!(&portal, req, jar);
    check_csrf(&session, &form.0.csrf)?;
    if let Some(c) = jar.get(portal.session_cookie()) {
        signin::end_session(&portal.deps.db, c.value_str(), client_ip(req)).await?;
    }
    jar.add(portal.expired(portal.session_cookie()));
    Ok(to_login())
}

// ---------------------------------------------------------------- dashboard

struct Card {
    title: &'static str,
    value: Option<String>,
    text: &'static str,
    href: Option<&'static str>,
    link_text: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    first_name: String,
    cards: Vec<Card>,
    recent: Vec<(String, String, String)>,
}

#[handler]
pub async fn dashboard(req: &Request, jar: &CookieJar, portal: Data<&Arc<Portal>>) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let role = s.user.role;
    let mut cards = Vec::new();
    let mut recent = Vec::new();
    let (mut tx, ctx) = TenantTx::begin(&portal.deps.db, &s.ctx, Permission::SelfService).await?;
    if role.grants(Permission::UsersRead) {
        let active = users::active_count(&mut tx).await?;
        cards.push(Card {
            title: "Active people",
            value: Some(active.to_string()),
            text: "People who can sign in today.",
            href: Some("/portal/users"),
            link_text: "See everyone",
        });
    }
    if let (Role::Manager | Role::Foreman, Some(dept)) = (role, s.user.department_id) {
        let tenant = tx.tenant();
        let team: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select count(*) from users where tenant_id = $1 and department_id = $2 and is_active = true and deleted_at is null")
            .bind(tenant).bind(dept).fetch_one(&mut *c).await).map_err(ApiError::from)?;
        cards.push(Card {
            title: "My department",
            value: Some(team.to_string()),
            text: "Active people in your department.",
            href: Some("/portal/users"),
            link_text: "See the team",
        });
    }
    if role == Role::Administrator {
        let depts = departments(&mut tx).await?;
        cards.push(Card {
            title: "Departments",
            value: Some(depts.len().to_string()),
            text: "Organisational units people belong to.",
            href: None,
            link_text: "",
        });
        let tenant = tx.tenant();
        let rows: Vec<(time::OffsetDateTime, String, String)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select occurred_at, action, actor_kind from audit_log where tenant_id = $1 order by seq desc limit 8")
            .bind(tenant).fetch_all(&mut *c).await).map_err(ApiError::from)?;
        recent = rows
            .into_iter()
            .map(|(at, action, actor)| {
                (
                    at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    action,
                    actor,
                )
            })
            .collect();
    }
    tx.commit().await?;
    let _ = ctx;
    cards.push(Card {
        title: "My profile",
        value: None,
        text: "Keep your phone number current: renewal approvals and reminders reach you by SMS.",
        href: Some("/portal/profile"),
        link_text: "Edit my profile",
    });
    render(
        &DashboardPage {
            nav: Some(Nav::new(&s, "dashboard")),
            first_name: if s.user.first_name.is_empty() {
                s.user.email.clone()
            } else {
                s.user.first_name.clone()
            },
            cards,
            recent,
        },
        StatusCode::OK,
    )
}

// ---------------------------------------------------------------- profile

#[derive(Default, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    gender: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    nav: Option<Nav>,
    csrf: String,
    user: User,
    form: ProfileForm,
    errors: Errors,
    saved: bool,
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

#[handler]
pub async fn profile(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<SavedQuery>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let u = s.user.clone();
    let form = ProfileForm {
        csrf: String::new(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        phone: u.phone.clone().unwrap_or_default(),
        address: u.address.clone().unwrap_or_default(),
        gender: u.gender.clone().unwrap_or_default(),
    };
    render(
        &ProfilePage {
            nav: Some(Nav::new(&s, "profile")),
            csrf: s.csrf_token.clone(),
            user: u,
            form,
            errors: Errors::default(),
            saved: q.0.saved.is_some(),
        },
        StatusCode::OK,
    )
}

#[handler]
pub async fn save_profile(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    form: Form<ProfileForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let f = form.0;
    check_csrf(&s, &f.csrf)?;
    let edit = SelfEdit {
        first_name: f.first_name.clone(),
        last_name: f.last_name.clone(),
        phone: blank(&f.phone),
        address: blank(&f.address),
        gender: blank(&f.gender),
    };
    match service::update_me(&portal.deps.db, &s.ctx, edit).await {
        Ok(_) => Ok(Redirect::see_other("/portal/profile?saved=1").into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            render(
                &ProfilePage {
                    nav: Some(Nav::new(&s, "profile")),
                    csrf: s.csrf_token.clone(),
                    user: s.user.clone(),
                    form: f,
                    errors,
                    saved: false,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

// ---------------------------------------------------------------- people

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<User>,
    total: i64,
    q: String,
    role: String,
    status: String,
    roles: Vec<(&'static str, &'static str)>,
    can_write: bool,
    page: u32,
    pages: i64,
    prev: Option<String>,
    next: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    status: String,
    page: Option<u32>,
    notice: Option<String>,
}

fn users_link(q: &UsersQuery, page: u32) -> String {
    let enc = |s: &str| url_encode(s);
    format!(
        "/portal/users?q={}&role={}&status={}&page={page}",
        enc(&q.q),
        enc(&q.role),
        enc(&q.status)
    )
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[handler]
pub async fn users_page(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<UsersQuery>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let q = q.0;
    let page = Page::parse(Some(q.page.unwrap_or(1).max(1)), Some(20))?;
    let filter = UserFilter {
        search: blank(&q.q).map(|s| s.chars().take(100).collect()),
        role: q.role.parse().ok(),
        department_id: None,
        is_active: match q.status.as_str() {
            "active" => Some(true),
            "inactive" => Some(false),
            _ => None,
        },
        deleted: if q.status == "deleted" {
            Deleted::Only
        } else {
            Deleted::Exclude
        },
    };
    let (list, total) = service::list_users(
        &portal.deps.db,
        &s.ctx,
        filter,
        ("u.created_at", true),
        page,
    )
    .await?;
    let pages = ((total + 19) / 20).max(1);
    let notice = match q.notice.as_deref() {
        Some("created") => Some("The person was created."),
        Some("saved") => Some("Changes saved."),
        Some("deactivated") => Some("The person was deactivated and signed out."),
        Some("restored") => Some("The person was restored."),
        _ => None,
    };
    render(
        &UsersPage {
            nav: Some(Nav::new(&s, "users")),
            csrf: s.csrf_token.clone(),
            can_write: s.user.role.grants(Permission::UsersWrite),
            users: list,
            total,
            prev: (page.page > 1).then(|| users_link(&q, page.page - 1)),
            next: (i64::from(page.page) < pages).then(|| users_link(&q, page.page + 1)),
            page: page.page,
            pages,
            q: q.q.clone(),
            role: q.role.clone(),
            status: q.status.clone(),
            roles: roles(),
            notice,
        },
        StatusCode::OK,
    )
}

#[derive(Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    employee_number: String,
    #[serde(default)]
    position: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    department_id: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "user_form.html")]
struct UserFormPage {
    nav: Option<Nav>,
    csrf: String,
    action: String,
    user_id: Option<Uuid>,
    form: UserForm,
    errors: Errors,
    roles: Vec<(&'static str, &'static str)>,
    departments: Vec<Department>,
}

async fn department_list(portal: &Portal, s: &PortalSession) -> ApiResult<Vec<Department>> {
    let (mut tx, _) = TenantTx::begin(&portal.deps.db, &s.ctx, Permission::UsersRead).await?;
    let d = departments(&mut tx).await?;
    tx.commit().await?;
    Ok(d)
}

async fn form_page(
    portal: &Portal,
    s: &PortalSession,
    user_id: Option<Uuid>,
    form: UserForm,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let action = match user_id {
        Some(id) => format!("/portal/users/{id}"),
        None => "/portal/users".into(),
    };
    render(
        &UserFormPage {
            nav: Some(Nav::new(s, "users")),
            csrf: s.csrf_token.clone(),
            action,
            user_id,
            form,
            errors,
            roles: roles(),
            departments: department_list(portal, s).await?,
        },
        status,
    )
}

#[handler]
pub async fn new_user(req: &Request, jar: &CookieJar, portal: Data<&Arc<Portal>>) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    if !s.user.role.grants(Permission::UsersWrite) {
        return Err(ApiError::Forbidden.into());
    }
    let form = UserForm {
        role: "employee".into(),
        ..Default::default()
    };
    form_page(&portal, &s, None, form, Errors::default(), StatusCode::OK).await
}

/// Parses the department select: empty is none; anything else must be a UUID.
fn parse_department(raw: &str) -> Result<Option<Uuid>, ApiError> {
    match raw.trim() {
        "" => Ok(None),
        s => Uuid::parse_str(s)
            .map(Some)
            .map_err(|_| ApiError::field("department_id", "is not a department")),
    }
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse().map_err(|e: String| ApiError::field("role", e))
}

#[handler]
pub async fn create_user(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    form: Form<UserForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let f = form.0;
    check_csrf(&s, &f.csrf)?;
    let body = parse_department(&f.department_id).and_then(|department_id| {
        Ok(CreateUser {
            email: f.email.clone(),
            username: None,
            first_name: Some(f.first_name.clone()),
            last_name: Some(f.last_name.clone()),
            phone: blank(&f.phone),
            address: None,
            employee_number: blank(&f.employee_number),
            department_id,
            position: blank(&f.position),
            gender: None,
            role: Some(parse_role(&f.role)?),
            is_active: Some(true),
            password: blank(&f.password),
        })
    });
    let result = match body {
        Ok(body) => service::create_user(&portal.deps.db, &portal.deps.hasher, &s.ctx, body)
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(Redirect::see_other("/portal/users?notice=created").into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            let f = UserForm {
                password: String::new(),
                ..f
            };
            form_page(
                &portal,
                &s,
                None,
                f,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[handler]
pub async fn edit_user(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    if !s.user.role.grants(Permission::UsersWrite) {
        return Err(ApiError::Forbidden.into());
    }
    let u = service::get_user(&portal.deps.db, &s.ctx, id.0, false).await?;
    let form = UserForm {
        csrf: String::new(),
        email: u.email.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        phone: u.phone.clone().unwrap_or_default(),
        employee_number: u.employee_number.clone().unwrap_or_default(),
        position: u.position.clone().unwrap_or_default(),
        role: u.role.as_str().into(),
        department_id: u.department_id.map(|d| d.to_string()).unwrap_or_default(),
        password: String::new(),
    };
    form_page(
        &portal,
        &s,
        Some(u.id),
        form,
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

#[handler]
pub async fn update_user(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
    form: Form<UserForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let f = form.0;
    check_csrf(&s, &f.csrf)?;
    let (department, role) = (parse_department(&f.department_id), parse_role(&f.role));
    let result = match (department, role) {
        (Ok(department_id), Ok(role)) => {
            let form = &f;
            service::write_user(&portal.deps.db, &s.ctx, id.0, move |current| {
                ReplaceUser {
                    email: form.email.clone(),
                    username: current.username.clone(),
                    first_name: form.first_name.clone(),
                    last_name: form.last_name.clone(),
                    phone: blank(&form.phone),
                    address: current.address.clone(),
                    employee_number: blank(&form.employee_number),
                    department_id,
                    position: blank(&form.position),
                    gender: current.gender.clone(),
                    role,
                    is_active: current.is_active,
                }
                .parse()
            })
            .await
            .map(drop)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match result {
        Ok(()) => Ok(Redirect::see_other("/portal/users?notice=saved").into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            form_page(
                &portal,
                &s,
                Some(id.0),
                f,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[handler]
pub async fn delete_user(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
    form: Form<CsrfForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    check_csrf(&s, &form.0.csrf)?;
    service::delete_user(&portal.deps.db, &s.ctx, id.0).await?;
    Ok(Redirect::see_other("/portal/users?notice=deactivated").into_response())
}

#[handler]
pub async fn restore_user(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
    form: Form<CsrfForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    check_csrf(&s, &form.0.csrf)?;
    service::restore_user(&portal.deps.db, &s.ctx, id.0).await?;
    Ok(Redirect::see_other("/portal/users?notice=restored").into_response())
}
