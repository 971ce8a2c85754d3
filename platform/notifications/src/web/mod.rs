//! The notification centre: one's notifications (mark read, mark unread, delete, mark all read),
//! the preferences grid, and push on one's devices (the service worker at `/portal/sw.js`); for
//! administrators, the email templates with preview and reset. Each handler parses the form, calls a use case of
//! [`crate::service`] and renders; the session and CSRF checks are in the extractors
//! ([`SignedIn`](trainflow_web::SignedIn), [`Submitted`](trainflow_web::Submitted)).

mod centre;
mod templates;

use poem::{get, post, EndpointExt, Route};
use trainflow_kernel::{auth::Permission, db::Db, ApiResult};
use trainflow_web::{BoxFuture, Card, CardSource, NavEntry, Session};

use crate::{push::PushTransport, service};

/// The context's entry in the navigation bar.
pub fn nav() -> Vec<NavEntry> {
    vec![
        NavEntry {
            key: "notifications",
            label: "Notifications",
            href: "/portal/notifications",
            order: 60,
            permission: None,
        },
        NavEntry {
            key: "email_templates",
            label: "Email templates",
            href: "/portal/email-templates",
            order: 92,
            permission: Some(Permission::TenantSettings),
        },
    ]
}

/// Mounts the context's pages on `route` (the portal's, nested under `/portal`).
pub fn mount(route: Route, db: Db, push: PushTransport, public_url: &str) -> Route {
    route
        .at("/email-templates", get(templates::list).data(db.clone()))
        .at(
            "/email-templates/:name",
            get(templates::edit)
                .post(templates::submit)
                .data(db.clone())
                .data(templates::PublicUrl(public_url.to_string())),
        )
        .at(
            "/email-templates/:name/reset",
            post(templates::reset).data(db.clone()),
        )
        .at(
            "/notifications",
            get(centre::notification_centre)
                .data(db.clone())
                .data(push.clone()),
        )
        .at(
            "/notifications/push",
            post(centre::subscribe_push).data(db.clone()).data(push),
        )
        .at(
            "/notifications/push/:id/delete",
            post(centre::unsubscribe_push).data(db.clone()),
        )
        .at("/sw.js", get(centre::service_worker))
        .at(
            "/notifications/preferences",
            post(centre::save_preferences).data(db.clone()),
        )
        .at(
            "/notifications/:id/:action",
            post(centre::notification_action).data(db),
        )
}

/// The context's dashboard card: how many notifications are unread.
pub struct Cards(pub Db);

impl CardSource for Cards {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            let unread = service::unread_count(&self.0, &session.ctx).await?;
            Ok(vec![Card {
                order: 60,
                title: "Unread notifications".into(),
                value: Some(unread.to_string()),
                text: "Approvals, reminders and announcements you have not read yet.".into(),
                link: Some((
                    "/portal/notifications".into(),
                    "Open my notifications".into(),
                )),
                ..Card::default()
            }])
        })
    }
}
