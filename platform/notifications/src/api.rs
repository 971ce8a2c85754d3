//! HTTP API of notifications: the inbox, preferences, broadcasts and email templates.

use poem_openapi::{param::Path, param::Query, payload::Json, Enum, Object, OpenApi, Tags};
use serde::Deserialize;
use trainflow_kernel::{
    auth::TenantAuth,
    body::Body,
    db::Db,
    envelope::{ok, List, NoContent, Ok200, Page},
    now, ApiResult,
};
use uuid::Uuid;

use crate::{
    inbox::{Notification, Preference},
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
    ApprovalRequest,
    PasswordReset,
    EmailVerification,
    CertificationExpiring,
}

impl TemplateName {
    /// Every template, in the order of [`crate::templates::BUILT_IN`].
    pub const ALL: [TemplateName; 5] = [
        TemplateName::Notification,
        TemplateName::ApprovalRequest,
        TemplateName::PasswordReset,
        TemplateName::EmailVerification,
        TemplateName::CertificationExpiring,
    ];

    /// The template's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateName::Notification => "notification",
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
