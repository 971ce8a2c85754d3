//! HTTP API of notifications: the inbox, preferences, broadcasts and email templates.

use poem_openapi::{param::Path, param::Query, payload::Json, Enum, Object, OpenApi, Tags};
use serde::Deserialize;
use trainflow_kernel::{
    auth::TenantAuth,
    body::Body,
    db::Db,
    envelope::{created, ok, Created, List, NoContent, Ok200, Page},
    now, ApiResult,
};
use uuid::Uuid;

use crate::{
    devices::PushDevice,
    inbox::{Notification, Preference},
    push::PushTransport,
    service, Channel, Kind, Priority,
};

#[derive(Tags)]
enum Tag {
    /// The signed-in person's notifications and preferences; broadcasts; email templates.
    Notifications,
}

/// The email templates a tenant can read and replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TemplateName {
    Notification,
    Welcome,
    Bulk,
    ApprovalRequest,
    PasswordReset,
    EmailVerification,
    CertificationExpiring,
}

impl TemplateName {
    /// Every template, in the order of [`crate::templates::BUILT_IN`].
    pub const ALL: [TemplateName; 7] = [
        TemplateName::Notification,
        TemplateName::Welcome,
        TemplateName::Bulk,
        TemplateName::ApprovalRequest,
        TemplateName::PasswordReset,
        TemplateName::EmailVerification,
        TemplateName::CertificationExpiring,
    ];

    /// The template called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The template's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateName::Notification => "notification",
            TemplateName::Welcome => "welcome",
            TemplateName::Bulk => "bulk",
            TemplateName::ApprovalRequest => "approval_request",
            TemplateName::PasswordReset => "password_reset",
            TemplateName::EmailVerification => "email_verification",
            TemplateName::CertificationExpiring => "certification_expiring",
        }
    }
}

/// The notifications API.
pub struct NotificationsApi {
    pub db: Db,
    /// The portal's URL, for links in emails and SMS.
    pub public_url: String,
    /// Web Push: the VAPID key and the push services subscriptions may point at.
    pub push: PushTransport,
}

/// Push notifications on the signed-in person's devices.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PushSetup {
    /// Whether the organisation offers push (`settings.notification_channels` holds `push`).
    /// Devices may be subscribed either way; messages go only while it is offered.
    pub offered: bool,
    /// The server's VAPID public key (base64url of the uncompressed P-256 point): the
    /// `applicationServerKey` to subscribe with.
    pub public_key: String,
    /// The person's subscribed devices, newest first (at most 20).
    pub devices: Vec<PushDevice>,
}

/// Body of `POST /notifications/push/subscriptions`: the browser's `PushSubscription`
/// (`endpoint` and `keys` as `PushSubscription.toJSON()` gives them). Optional fields may be
/// left out or `null` (the same).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreatePushSubscription {
    /// The push service's URL for this browser: `https://` on a push service the server posts
    /// to (Chrome and Edge's FCM, Firefox, Safari, Windows, and those the operator adds);
    /// anything else is a 422 on `endpoint`.
    #[oai(validator(max_length = 2048, pattern = r"^https?://[^\s]+$"))]
    pub endpoint: String,
    pub keys: PushKeys,
    /// What the browser is, to tell devices apart in the list.
    #[oai(
        nullable,
        validator(max_length = 300, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub user_agent: Option<String>,
}

/// The keys of a `PushSubscription`, base64url with or without padding.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PushKeys {
    /// The browser's P-256 public key (65 octets, uncompressed); one that is not a point of
    /// the curve is a 422 on `keys.p256dh`.
    #[oai(validator(min_length = 87, max_length = 88, pattern = r"^[A-Za-z0-9_-]{87}=?$"))]
    pub p256dh: String,
    /// The browser's 16-octet authentication secret.
    #[oai(validator(
        min_length = 22,
        max_length = 24,
        pattern = r"^[A-Za-z0-9_-]{22}(?:==)?$"
    ))]
    pub auth: String,
}

/// `{"unread": N}`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UnreadCount {
    pub unread: i64,
}

/// `{"updated": N}`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Updated {
    pub updated: u64,
}

/// Body of `POST /notifications/broadcasts`. Optional fields may be left out or `null` (the
/// same).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateBroadcast {
    /// `all`, `role` or `department`.
    #[oai(validator(max_length = 20, pattern = r"^(?:all|role|department)$"))]
    pub audience: String,
    /// Required with `audience = role`: a role.
    #[oai(
        nullable,
        validator(
            max_length = 30,
            pattern = r"^(?:employee|foreman|manager|training_officer|trainer|administrator)$"
        )
    )]
    pub role: Option<String>,
    /// Required with `audience = department`: one of the tenant's departments.
    #[oai(nullable)]
    pub department_id: Option<Uuid>,
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub title: String,
    #[oai(validator(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub body: String,
    /// Default `medium`.
    #[oai(nullable)]
    pub priority: Option<Priority>,
    /// Default `system`.
    #[oai(nullable)]
    pub kind: Option<Kind>,
    #[oai(
        nullable,
        validator(max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub link: Option<String>,
}

/// Body of `PUT /notifications/preferences`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct SetPreferences {
    /// The choices to change (at most 100).
    #[oai(validator(max_items = 100))]
    pub preferences: Vec<PreferenceChoice>,
}

/// One choice of `PUT /notifications/preferences`: a notification type on a channel, on or off.
#[derive(Debug, Clone, Copy, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PreferenceChoice {
    pub kind: Kind,
    pub channel: Channel,
    pub enabled: bool,
}

impl From<PreferenceChoice> for Preference {
    fn from(c: PreferenceChoice) -> Self {
        Preference {
            kind: c.kind,
            channel: c.channel,
            enabled: c.enabled,
        }
    }
}

/// How many people a broadcast reached.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BroadcastResult {
    pub recipients: u64,
}

/// One of the tenant's email templates in the list.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EmailTemplateSummary {
    pub name: TemplateName,
    /// The subject this tenant sends (its own version's, else the built-in one's).
    pub subject: String,
    /// Whether the tenant has its own version (`DELETE` goes back to the built-in one).
    pub customised: bool,
}

/// A template draft filled with example values: what a recipient would get.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TemplatePreview {
    /// One line, at most 200 characters (a placeholder without a value renders empty).
    pub subject: String,
    pub text_body: String,
    /// Values are HTML-escaped.
    pub html_body: String,
}

/// An email template as the tenant sees it.
#[derive(Debug, Object, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct EmailTemplate {
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub subject: String,
    #[oai(validator(
        max_length = 20000,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub text_body: String,
    #[oai(validator(
        max_length = 50000,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub html_body: String,
}

#[OpenApi(prefix_path = "/api/v1")]
impl NotificationsApi {
    /// The signed-in person's notifications, newest first.
    #[oai(path = "/notifications", method = "get", tag = "Tag::Notifications")]
    async fn list(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
        /// Only unread ones.
        unread: Query<Option<bool>>,
    ) -> ApiResult<Json<List<Notification>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = service::list(
            &self.db,
            &auth.0,
            unread.0.unwrap_or(false),
            page.limit(),
            page.offset(),
        )
        .await?;
        Ok(page.list(rows, total))
    }

    /// How many notifications are unread.
    #[oai(
        path = "/notifications/unread_count",
        method = "get",
        tag = "Tag::Notifications"
    )]
    async fn unread_count(&self, auth: TenantAuth) -> ApiResult<Ok200<UnreadCount>> {
        let unread = service::unread_count(&self.db, &auth.0).await?;
        Ok(ok(UnreadCount { unread }))
    }

    /// Mark a notification read.
    #[oai(
        path = "/notifications/:id/read",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn read(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Notification>> {
        Ok(ok(
            service::mark(&self.db, &auth.0, id.0, true, now()).await?
        ))
    }

    /// Mark a notification unread.
    #[oai(
        path = "/notifications/:id/unread",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn unread(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Notification>> {
        Ok(ok(
            service::mark(&self.db, &auth.0, id.0, false, now()).await?
        ))
    }

    /// Mark every notification read.
    #[oai(
        path = "/notifications/read_all",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn read_all(&self, auth: TenantAuth) -> ApiResult<Ok200<Updated>> {
        let updated = service::mark_all_read(&self.db, &auth.0, now()).await?;
        Ok(ok(Updated { updated }))
    }

    /// Delete a notification.
    #[oai(
        path = "/notifications/:id",
        method = "delete",
        tag = "Tag::Notifications"
    )]
    async fn delete(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<NoContent> {
        service::delete(&self.db, &auth.0, id.0, now()).await?;
        Ok(NoContent::NoContent)
    }

    /// Preferences: every notification type × channel, chosen or defaulted.
    #[oai(
        path = "/notifications/preferences",
        method = "get",
        tag = "Tag::Notifications"
    )]
    async fn preferences(&self, auth: TenantAuth) -> ApiResult<Ok200<Vec<Preference>>> {
        Ok(ok(service::preferences(&self.db, &auth.0).await?))
    }

    /// Change some preferences; the others keep their values. Answers the whole set.
    #[oai(
        path = "/notifications/preferences",
        method = "put",
        tag = "Tag::Notifications"
    )]
    async fn set_preferences(
        &self,
        auth: TenantAuth,
        body: Body<SetPreferences>,
    ) -> ApiResult<Ok200<Vec<Preference>>> {
        Ok(ok(service::set_preferences(
            &self.db,
            &auth.0,
            body.0.preferences.into_iter().map(Into::into).collect(),
        )
        .await?))
    }

    /// Send a notification to everyone, a role or a department (in-app, and by email and SMS
    /// as each person prefers).
    #[oai(
        path = "/notifications/broadcasts",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn broadcast(
        &self,
        auth: TenantAuth,
        body: Body<CreateBroadcast>,
    ) -> ApiResult<Ok200<BroadcastResult>> {
        let recipients =
            service::broadcast(&self.db, &auth.0, &self.public_url, body.0, now()).await?;
        Ok(ok(BroadcastResult { recipients }))
    }

    /// Push notifications on my devices: whether the organisation offers them, the key to
    /// subscribe with, and my subscribed devices.
    #[oai(
        path = "/notifications/push",
        method = "get",
        tag = "Tag::Notifications"
    )]
    async fn push_setup(&self, auth: TenantAuth) -> ApiResult<Ok200<PushSetup>> {
        let setup = service::push_setup(&self.db, &auth.0, &self.push).await?;
        Ok(ok(PushSetup {
            offered: setup.offered,
            public_key: setup.public_key,
            devices: setup.devices,
        }))
    }

    /// Subscribe a device to push notifications. The same endpoint again replaces its keys
    /// (and moves it to me when the browser had subscribed for someone else); beyond 20
    /// devices the oldest is dropped.
    #[oai(
        path = "/notifications/push/subscriptions",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn subscribe_push(
        &self,
        auth: TenantAuth,
        body: Body<CreatePushSubscription>,
    ) -> ApiResult<Created<PushDevice>> {
        let b = body.0;
        let device = service::subscribe_push(
            &self.db,
            &auth.0,
            &self.push,
            service::NewDevice {
                endpoint: b.endpoint,
                p256dh: b.keys.p256dh,
                auth: b.keys.auth,
                user_agent: b.user_agent,
            },
            now(),
        )
        .await?;
        Ok(created(device))
    }

    /// Unsubscribe one of my devices.
    #[oai(
        path = "/notifications/push/subscriptions/:id",
        method = "delete",
        tag = "Tag::Notifications"
    )]
    async fn unsubscribe_push(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<NoContent> {
        service::unsubscribe_push(&self.db, &auth.0, id.0, now()).await?;
        Ok(NoContent::NoContent)
    }

    /// Every email template: the subject this tenant sends and whether it is its own version.
    #[oai(
        path = "/notifications/templates",
        method = "get",
        tag = "Tag::Notifications"
    )]
    async fn templates(&self, auth: TenantAuth) -> ApiResult<Ok200<Vec<EmailTemplateSummary>>> {
        let list = service::templates_overview(&self.db, &auth.0).await?;
        Ok(ok(list
            .into_iter()
            .filter_map(|t| {
                Some(EmailTemplateSummary {
                    name: TemplateName::parse(t.name)?,
                    subject: t.subject,
                    customised: t.customised,
                })
            })
            .collect()))
    }

    /// Go back to the built-in version of a template (idempotent).
    #[oai(
        path = "/notifications/templates/:name",
        method = "delete",
        tag = "Tag::Notifications"
    )]
    async fn reset_template(
        &self,
        auth: TenantAuth,
        name: Path<TemplateName>,
    ) -> ApiResult<NoContent> {
        service::reset_template(&self.db, &auth.0, name.0.as_str(), now()).await?;
        Ok(NoContent::NoContent)
    }

    /// A draft of a template filled with example values, as a recipient of this tenant would
    /// get it. Nothing is saved.
    #[oai(
        path = "/notifications/templates/:name/preview",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn preview_template(
        &self,
        auth: TenantAuth,
        name: Path<TemplateName>,
        body: Body<EmailTemplate>,
    ) -> ApiResult<Ok200<TemplatePreview>> {
        let r = service::preview_template(
            &self.db,
            &auth.0,
            name.0.as_str(),
            &body.0,
            &self.public_url,
        )
        .await?;
        Ok(ok(TemplatePreview {
            subject: r.subject,
            text_body: r.text,
            html_body: r.html,
        }))
    }

    /// An email template as this tenant sends it (its own version, else the built-in one).
    #[oai(
        path = "/notifications/templates/:name",
        method = "get",
        tag = "Tag::Notifications"
    )]
    async fn template(
        &self,
        auth: TenantAuth,
        name: Path<TemplateName>,
    ) -> ApiResult<Ok200<EmailTemplate>> {
        let t = service::template(&self.db, &auth.0, name.0.as_str()).await?;
        Ok(ok(EmailTemplate {
            subject: t.subject,
            text_body: t.text,
            html_body: t.html,
        }))
    }

    /// Replace a template with the tenant's own version (`{{name}}` placeholders).
    #[oai(
        path = "/notifications/templates/:name",
        method = "put",
        tag = "Tag::Notifications"
    )]
    async fn set_template(
        &self,
        auth: TenantAuth,
        name: Path<TemplateName>,
        body: Body<EmailTemplate>,
    ) -> ApiResult<Ok200<EmailTemplate>> {
        Ok(ok(service::set_template(
            &self.db,
            &auth.0,
            name.0.as_str(),
            body.0,
            now(),
        )
        .await?))
    }
}

#[cfg(test)]
mod tests {
    use super::TemplateName;

    #[test]
    fn the_template_names_are_the_built_in_templates() {
        let names: Vec<&str> = TemplateName::ALL.iter().map(|t| t.as_str()).collect();
        let built_in: Vec<&str> = crate::templates::BUILT_IN.iter().map(|t| t.0).collect();
        assert_eq!(names, built_in);
    }
}
