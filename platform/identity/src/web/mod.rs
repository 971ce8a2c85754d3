//! Identity's pages: sign-in and sign-out, the account-link pages (new password, email
//! verification), one's profile, the people administration and the audit log. Each handler
//! parses the form, calls a use case of [`crate::service`] (or [`crate::signin`]) and renders;
//! the checks are in the extractors ([`SignedIn`](trainflow_web::SignedIn), [`Submitted`](trainflow_web::Submitted))
//! and the use cases.

mod account;
mod audit;
mod people;
mod profile;
mod signin;

use std::sync::Arc;

use poem::{get, post, EndpointExt, Route};
use trainflow_kernel::{
    auth::{Permission, Role},
    db::Db,
    ApiResult,
};
use trainflow_web::{BoxFuture, Card, CardSource, NavEntry, Session, SessionStore};

use crate::signin::AuthDeps;

/// What identity's pages need.
pub struct IdentityPages {
    pub deps: AuthDeps,
}

/// Identity's entries in the navigation bar.
pub fn nav() -> Vec<NavEntry> {
    vec![
        NavEntry {
            key: "users",
            label: "People",
            href: "/portal/users",
            order: 70,
            permission: Some(Permission::UsersRead),
        },
        NavEntry {
            key: "team",
            label: "My team",
            href: "/portal/team",
            order: 65,
            permission: Some(Permission::UsersRead),
        },
        NavEntry {
            key: "audit",
            label: "Audit log",
            href: "/portal/audit",
            order: 85,
            permission: Some(Permission::AuditRead),
        },
        NavEntry {
            key: "profile",
            label: "My profile",
            href: "/portal/profile",
            order: 90,
            permission: None,
        },
    ]
}

/// Mounts identity's pages on `route` (the portal's, nested under `/portal`).
pub fn mount(route: Route, deps: AuthDeps) -> Route {
    let pages = Arc::new(IdentityPages { deps });
    route
        .at(
            "/login",
            get(signin::login_form)
                .post(signin::login)
                .data(pages.clone()),
        )
        .at("/logout", post(signin::logout).data(pages.clone()))
        .at(
            "/reset-password",
            get(account::reset_form)
                .post(account::reset)
                .data(pages.clone()),
        )
        .at(
            "/verify-email",
            get(account::verify_form)
                .post(account::verify)
                .data(pages.clone()),
        )
        .at(
            "/profile",
            get(profile::profile)
                .post(profile::save_profile)
                .data(pages.clone()),
        )
        .at(
            "/users",
            get(people::users_page)
                .post(people::create_user)
                .data(pages.clone()),
        )
        .at("/users/new", get(people::new_user).data(pages.clone()))
        .at("/team", get(people::team_page).data(pages.clone()))
        .at("/audit", get(audit::audit_log).data(pages.clone()))
        .at(
            "/users/:id/edit",
            get(people::edit_user).data(pages.clone()),
        )
        .at("/users/:id", post(people::update_user).data(pages.clone()))
        .at(
            "/users/:id/delete",
            post(people::delete_user).data(pages.clone()),
        )
        .at(
            "/users/:id/restore",
            post(people::restore_user).data(pages.clone()),
        )
        .at("/users/:id/pin", post(people::set_pin).data(pages.clone()))
        .at(
            "/users/:id/avatar",
            get(profile::avatar).data(pages.clone()),
        )
        .at(
            "/profile/avatar",
            post(profile::upload_avatar).data(pages.clone()),
        )
        .at(
            "/profile/avatar/delete",
            post(profile::remove_avatar).data(pages),
        )
}

/// Portal sessions, for the web layer's extractors.
pub struct Sessions(pub Db);

impl SessionStore for Sessions {
    fn resolve<'a>(
        &'a self,
        cookie: &'a str,
        ip: Option<String>,
    ) -> BoxFuture<'a, ApiResult<Option<Session>>> {
        Box::pin(crate::signin::resolve_session(&self.0, cookie, ip))
    }
}

/// Identity's part of the profile page: where the person works and who they report to, their
/// team (foremen and managers), and a prompt when an import left their profile incomplete.
pub struct ProfileParts(pub Db);

impl CardSource for ProfileParts {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            let w = crate::service::workplace(&self.0, &session.ctx).await?;
            let mut cards = Vec::new();
            if w.profile_incomplete {
                cards.push(Card {
                    order: 1,
                    title: "Profile incomplete".into(),
                    text: "Your record came from an import without your name: please add your \
                           first and last name below."
                        .into(),
                    ..Card::default()
                });
            }
            let place: Vec<String> = [
                w.department.map(|d| format!("Department: {d}")),
                w.position.map(|p| format!("Position: {p}")),
                w.employee_number.map(|n| format!("Employee number: {n}")),
                w.foreman.map(|f| format!("Foreman: {f}")),
                w.manager.map(|m| format!("Line manager: {m}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            cards.push(Card {
                order: 10,
                title: "Where I work".into(),
                text: if place.is_empty() {
                    "No department or reporting lines are recorded for you yet.".into()
                } else {
                    format!("{}.", place.join(". "))
                },
                ..Card::default()
            });
            if let Some(n) = w.team {
                cards.push(team_card(session.role, n, 20));
            }
            Ok(cards)
        })
    }
}

/// The "My team" card of a foreman or manager with `n` people reporting to them.
fn team_card(role: Role, n: i64, order: u16) -> Card {
    Card {
        order,
        title: "My team".into(),
        value: Some(n.to_string()),
        text: if role == Role::Foreman {
            "People who report to you. Set PINs for those without email.".into()
        } else {
            "People who report to you as their line manager.".into()
        },
        link: Some(("/portal/team".into(), "Open my team".into())),
        ..Card::default()
    }
}

/// Identity's dashboard cards: people, the caller's department, departments, recent activity.
pub struct PeopleCards(pub Db);

impl CardSource for PeopleCards {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            let summary = crate::service::people_summary(&self.0, &session.ctx).await?;
            let mut cards = Vec::new();
            if let Some(n) = summary.active {
                cards.push(Card {
                    order: 10,
                    title: "Active people".into(),
                    value: Some(n.to_string()),
                    text: "People who can sign in today.".into(),
                    link: Some(("/portal/users".into(), "See everyone".into())),
                    ..Card::default()
                });
            }
            if let Some(n) = summary.department_active {
                cards.push(Card {
                    order: 11,
                    title: "My department".into(),
                    value: Some(n.to_string()),
                    text: "Active people in your department.".into(),
                    link: Some(("/portal/users".into(), "See the team".into())),
                    ..Card::default()
                });
            }
            if matches!(session.role, Role::Foreman | Role::Manager) {
                let one = trainflow_kernel::envelope::Page::parse(Some(1), Some(1))?;
                let (_, n) = crate::service::my_team(&self.0, &session.ctx, one).await?;
                cards.push(team_card(session.role, n, 11));
            }
            if let Some(n) = summary.departments {
                cards.push(Card {
                    order: 12,
                    title: "Departments".into(),
                    value: Some(n.to_string()),
                    text: "Organisational units people belong to.".into(),
                    ..Card::default()
                });
            }
            cards.push(Card {
                order: 90,
                title: "My profile".into(),
                text: "Keep your phone number current: renewal approvals and reminders reach \
                       you by SMS."
                    .into(),
                link: Some(("/portal/profile".into(), "Edit my profile".into())),
                ..Card::default()
            });
            if !summary.recent.is_empty() {
                cards.push(Card {
                    order: 100,
                    title: "Recent activity".into(),
                    text: if session.role == Role::Administrator {
                        "The newest entries of the audit log.".into()
                    } else {
                        "The newest changes to certifications, renewals and approvals.".into()
                    },
                    columns: vec!["When", "Action", "By"],
                    rows: summary
                        .recent
                        .into_iter()
                        .map(|(at, action, who)| vec![session.local_time(at), action, who])
                        .collect(),
                    ..Card::default()
                });
            }
            Ok(cards)
        })
    }
}
