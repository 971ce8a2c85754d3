//! The people administration: list, search, create, edit, deactivate and restore.

use std::sync::Arc;

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::{
    auth::{Permission, Role},
    envelope::Page,
    ApiError,
};
use trainflow_web::{
    blank, field_errors, notice, portal_page, render, url_encode, Errors, Nav, NoFields,
    PageResult, Pager, Session, SignedIn, Submitted,
};
use uuid::Uuid;

use super::IdentityPages;
use crate::{
    api::Department,
    service,
    users::{CreateUser, Deleted, ReplaceUser, User, UserFilter},
};

fn roles() -> Vec<(&'static str, &'static str)> {
    Role::ALL.iter().map(|r| (r.as_str(), r.label())).collect()
}

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
pub(super) struct UsersQuery {
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
    let enc = url_encode;
    format!(
        "/portal/users?q={}&role={}&status={}&page={page}",
        enc(&q.q),
        enc(&q.role),
        enc(&q.status)
    )
}

#[handler]
pub(super) async fn users_page(
    me: SignedIn,
    pages: Data<&Arc<IdentityPages>>,
    q: Query<UsersQuery>,
) -> PageResult {
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
        &pages.deps.db,
        me.ctx(),
        filter,
        ("u.created_at", true),
        page,
    )
    .await?;
    let pages_total = ((total + 19) / 20).max(1);
    let notice = notice(
        q.notice.as_deref(),
        &[
            ("created", "The person was created."),
            ("saved", "Changes saved."),
            ("deactivated", "The person was deactivated and signed out."),
            ("restored", "The person was restored."),
            (
                "pin",
                "The PIN was set. Tell the person in person; it is not shown again.",
            ),
        ],
    );
    render(
        &UsersPage {
            nav: me.nav("users"),
            csrf: me.csrf().to_string(),
            can_write: me.session.role.grants(Permission::UsersWrite),
            users: list,
            total,
            prev: (page.page > 1).then(|| users_link(&q, page.page - 1)),
            next: (i64::from(page.page) < pages_total).then(|| users_link(&q, page.page + 1)),
            page: page.page,
            pages: pages_total,
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
pub(super) struct UserForm {
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

impl UserForm {
    /// The form showing `u` as stored.
    fn of(u: &User) -> Self {
        UserForm {
            email: u.email.clone().unwrap_or_default(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            phone: u.phone.clone().unwrap_or_default(),
            employee_number: u.employee_number.clone().unwrap_or_default(),
            position: u.position.clone().unwrap_or_default(),
            role: u.role.as_str().into(),
            department_id: u.department_id.map(|d| d.to_string()).unwrap_or_default(),
            password: String::new(),
        }
    }
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
    /// The person's PIN: (has one, locked), when editing.
    pin: Option<(bool, bool)>,
}

async fn form_page(
    pages: &IdentityPages,
    me: &SignedIn,
    user_id: Option<Uuid>,
    form: UserForm,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let action = match user_id {
        Some(id) => format!("/portal/users/{id}"),
        None => "/portal/users".into(),
    };
    let pin = match user_id {
        Some(id) => {
            let u = service::get_user(&pages.deps.db, me.ctx(), id, false).await?;
            Some((u.has_pin, u.pin_locked))
        }
        None => None,
    };
    render(
        &UserFormPage {
            nav: me.nav("users"),
            csrf: me.csrf().to_string(),
            action,
            user_id,
            form,
            errors,
            roles: roles(),
            departments: service::list_departments(&pages.deps.db, me.ctx(), None)
                .await?
                .0,
            pin,
        },
        status,
    )
}

/// The form pages are for those who may change people; the use cases check again on submit.
fn may_write(s: &Session) -> Result<(), ApiError> {
    if s.role.grants(Permission::UsersWrite) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

#[handler]
pub(super) async fn new_user(me: SignedIn, pages: Data<&Arc<IdentityPages>>) -> PageResult {
    may_write(&me.session)?;
    let form = UserForm {
        role: "employee".into(),
        ..Default::default()
    };
    form_page(&pages, &me, None, form, Errors::default(), StatusCode::OK).await
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
pub(super) async fn create_user(
    pages: Data<&Arc<IdentityPages>>,
    Submitted(me, f): Submitted<UserForm>,
) -> PageResult {
    let body = parse_department(&f.department_id).and_then(|department_id| {
        Ok(CreateUser {
            email: blank(&f.email),
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
            password: blank(&f.password).map(Into::into),
        })
    });
    let result = match body {
        Ok(body) => service::create_user(&pages.deps, me.ctx(), body)
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
                &pages,
                &me,
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
pub(super) async fn edit_user(
    me: SignedIn,
    pages: Data<&Arc<IdentityPages>>,
    id: Path<Uuid>,
) -> PageResult {
    may_write(&me.session)?;
    let u = service::get_user(&pages.deps.db, me.ctx(), id.0, false).await?;
    let form = UserForm::of(&u);
    form_page(
        &pages,
        &me,
        Some(u.id),
        form,
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

#[handler]
pub(super) async fn update_user(
    pages: Data<&Arc<IdentityPages>>,
    id: Path<Uuid>,
    Submitted(me, f): Submitted<UserForm>,
) -> PageResult {
    let (department, role) = (parse_department(&f.department_id), parse_role(&f.role));
    let result = match (department, role) {
        (Ok(department_id), Ok(role)) => {
            let form = &f;
            service::write_user(&pages.deps.db, me.ctx(), id.0, move |current: &User| {
                ReplaceUser {
                    email: blank(&form.email),
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
                &pages,
                &me,
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
pub(super) async fn delete_user(
    pages: Data<&Arc<IdentityPages>>,
    id: Path<Uuid>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    service::delete_user(&pages.deps.db, me.ctx(), id.0).await?;
    Ok(Redirect::see_other("/portal/users?notice=deactivated").into_response())
}

#[handler]
pub(super) async fn restore_user(
    pages: Data<&Arc<IdentityPages>>,
    id: Path<Uuid>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    service::restore_user(&pages.deps.db, me.ctx(), id.0).await?;
    Ok(Redirect::see_other("/portal/users?notice=restored").into_response())
}

#[derive(Deserialize)]
pub(super) struct PinForm {
    #[serde(default)]
    pin: String,
}

/// Sets a person's sign-in PIN: from their edit page (administrators) or the team page
/// (foremen), which stays open with the error when the PIN is refused.
#[handler]
pub(super) async fn set_pin(
    pages: Data<&Arc<IdentityPages>>,
    id: Path<Uuid>,
    Submitted(me, f): Submitted<PinForm>,
) -> PageResult {
    let pin = f.pin.trim().to_string();
    // Foremen set PINs from their team page; administrators from the person's edit page.
    let from_team = !me.session.role.grants(Permission::UsersWrite);
    let result = service::set_pin(
        &pages.deps.db,
        &pages.deps.hasher,
        me.ctx(),
        id.0,
        Some(pin),
    );
    match result.await {
        Ok(_) if from_team => Ok(Redirect::see_other("/portal/team?notice=pin").into_response()),
        Ok(_) => Ok(Redirect::see_other("/portal/users?notice=pin").into_response()),
        Err(e) if from_team => {
            let errors = field_errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            team(&pages, &me, 1, None, Some((id.0, errors)), status).await
        }
        Err(e) => {
            let errors = field_errors(e)?;
            let u = service::get_user(&pages.deps.db, me.ctx(), id.0, false).await?;
            let form = UserForm::of(&u);
            form_page(
                &pages,
                &me,
                Some(id.0),
                form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    nav: Option<Nav>,
    csrf: String,
    people: Vec<User>,
    total: i64,
    pager: Pager,
    /// Whether the caller sets PINs here (foremen; administrators use the edit page).
    sets_pins: bool,
    notice: Option<&'static str>,
    /// The person whose PIN was refused, and why.
    refused: Option<(Uuid, Errors)>,
}

impl TeamPage {
    /// The errors of `id`'s PIN form.
    fn errors_of(&self, id: impl std::borrow::Borrow<Uuid>) -> Vec<String> {
        match &self.refused {
            Some((who, errors)) if who == id.borrow() => errors.get("pin").to_vec(),
            _ => Vec::new(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct TeamQuery {
    page: Option<u32>,
    notice: Option<String>,
}

/// The people who report to the caller: their reach (email, phone), PIN and profile, and for
/// a foreman a form to set each one's PIN.
#[handler]
pub(super) async fn team_page(
    me: SignedIn,
    pages: Data<&Arc<IdentityPages>>,
    q: Query<TeamQuery>,
) -> PageResult {
    let notice = notice(
        q.0.notice.as_deref(),
        &[(
            "pin",
            "The PIN was set. Tell the person in person; it is not shown again.",
        )],
    );
    team(
        &pages,
        &me,
        q.0.page.unwrap_or(1),
        notice,
        None,
        StatusCode::OK,
    )
    .await
}

async fn team(
    pages: &IdentityPages,
    me: &SignedIn,
    page: u32,
    notice: Option<&'static str>,
    refused: Option<(Uuid, Errors)>,
    status: StatusCode,
) -> PageResult {
    let page = portal_page(Some(page), 50)?;
    let (people, total) = service::my_team(&pages.deps.db, me.ctx(), page).await?;
    render(
        &TeamPage {
            nav: me.nav("team"),
            csrf: me.csrf().to_string(),
            people,
            total,
            pager: Pager::new(page, total, |n| format!("/portal/team?page={n}")),
            sets_pins: me.session.role == Role::Foreman,
            notice,
            refused,
        },
        status,
    )
}
