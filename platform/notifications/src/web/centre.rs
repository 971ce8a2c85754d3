//! The notification centre and the preferences grid.

use std::collections::HashSet;

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::{db::Db, now, ApiError};
use trainflow_web::{notice, render, Nav, NoFields, PageResult, SignedIn, Submitted};
use uuid::Uuid;

use crate::{
    devices::PushDevice,
    inbox::{Notification, Preference},
    push::PushTransport,
    service, Channel, Kind,
};

/// How many notifications the centre shows.
const SHOWN: i64 = 50;

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    nav: Option<Nav>,
    csrf: String,
    notifications: Vec<Notification>,
    total: i64,
    kinds: Vec<Kind>,
    channels: Vec<Channel>,
    preferences: Vec<Preference>,
    push_offered: bool,
    push_key: String,
    devices: Vec<PushDevice>,
    notice: Option<&'static str>,
}

impl NotificationsPage {
    fn enabled(&self, kind: &Kind, channel: &Channel) -> bool {
        self.preferences
            .iter()
            .any(|p| p.kind == *kind && p.channel == *channel && p.enabled)
    }
}

#[derive(Deserialize)]
pub(super) struct NoticeQuery {
    notice: Option<String>,
}

/// The notification centre and the preferences grid.
#[handler]
pub(super) async fn notification_centre(
    me: SignedIn,
    db: Data<&Db>,
    push: Data<&PushTransport>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let centre = service::centre(&db, me.ctx(), SHOWN).await?;
    let setup = service::push_setup(&db, me.ctx(), &push).await?;
    render(
        &NotificationsPage {
            nav: me.nav("notifications"),
            csrf: me.csrf().to_string(),
            notifications: centre.notifications,
            total: centre.total,
            kinds: Kind::ALL.to_vec(),
            channels: Channel::ALL.to_vec(),
            preferences: centre.preferences,
            push_offered: setup.offered,
            push_key: setup.public_key,
            devices: setup.devices,
            notice: notice(
                q.0.notice.as_deref(),
                &[
                    ("saved", "Your preferences were saved."),
                    ("push_on", "Push notifications are on for this device."),
                    (
                        "push_off",
                        "The device no longer receives push notifications.",
                    ),
                ],
            ),
        },
        StatusCode::OK,
    )
}

/// Mark one notification read (`read`), unread (`unread`) or delete it (`delete`); or mark all
/// read (`/notifications/all/read`).
#[handler]
pub(super) async fn notification_action(
    db: Data<&Db>,
    Path((id, action)): Path<(String, String)>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    let at = now();
    match (id.as_str(), action.as_str()) {
        ("all", "read") => drop(service::mark_all_read(&db, me.ctx(), at).await?),
        (id, action) => {
            let id: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
            match action {
                "read" => drop(service::mark(&db, me.ctx(), id, true, at).await?),
                "unread" => drop(service::mark(&db, me.ctx(), id, false, at).await?),
                "delete" => service::delete(&db, me.ctx(), id, at).await?,
                _ => return Err(ApiError::NotFound.into()),
            }
        }
    }
    Ok(Redirect::see_other("/portal/notifications").into_response())
}

/// Saves the preferences grid: a checked box is `kind.channel=on`, an unchecked one is absent.
#[handler]
pub(super) async fn save_preferences(
    db: Data<&Db>,
    Submitted(me, form): Submitted<Vec<(String, String)>>,
) -> PageResult {
    let checked: HashSet<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    let prefs: Vec<Preference> = Kind::ALL
        .into_iter()
        .flat_map(|kind| Channel::ALL.into_iter().map(move |channel| (kind, channel)))
        .map(|(kind, channel)| Preference {
            kind,
            channel,
            enabled: checked.contains(format!("{}.{}", kind.as_str(), channel.as_str()).as_str()),
        })
        .collect();
    service::set_preferences(&db, me.ctx(), prefs).await?;
    Ok(Redirect::see_other("/portal/notifications?notice=saved").into_response())
}

/// The subscription the portal's script sends: the fields of the browser's `PushSubscription`.
#[derive(Deserialize)]
pub(super) struct PushForm {
    endpoint: String,
    p256dh: String,
    auth: String,
    user_agent: Option<String>,
}

/// Subscribes this browser to push notifications (posted by the portal's script).
#[handler]
pub(super) async fn subscribe_push(
    db: Data<&Db>,
    push: Data<&PushTransport>,
    Submitted(me, form): Submitted<PushForm>,
) -> PageResult {
    service::subscribe_push(
        &db,
        me.ctx(),
        &push,
        service::NewDevice {
            endpoint: form.endpoint,
            p256dh: form.p256dh,
            auth: form.auth,
            user_agent: form.user_agent,
        },
        now(),
    )
    .await?;
    Ok(Redirect::see_other("/portal/notifications?notice=push_on").into_response())
}

/// Stops push notifications to one of one's devices.
#[handler]
pub(super) async fn unsubscribe_push(
    db: Data<&Db>,
    Path(id): Path<String>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    service::unsubscribe_push(&db, me.ctx(), id, now()).await?;
    Ok(Redirect::see_other("/portal/notifications?notice=push_off").into_response())
}

/// The service worker: shows a push message as a system notification and opens its link when
/// it is tapped. Served from `/portal/` so its scope is the portal.
#[handler]
pub(super) fn service_worker() -> poem::Response {
    poem::Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(include_str!("../../static/sw.js"))
}
