//! HTTP API of notifications: the inbox, preferences, broadcasts and email templates.

use poem_openapi::{param::Path, param::Query, payload::Json, Object, OpenApi, Tags};
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
    service, Kind, Priority,
};

#[derive(Tags)]
enum Tag {
    /// The signed-in person's notifications and preferences; broadcasts; email templates.
    Notifications,
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

/// Body of `POST /notifications/broadcasts`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateBroadcast {
    /// `all`, `role` or `department`.
    #[oai(validator(max_length = 20))]
    pub audience: String,
    /// With `audience = role`.
    #[oai(validator(max_length = 30))]
    pub role: Option<String>,
    /// With `audience = department`.
    pub department_id: Option<Uuid>,
    #[oai(validator(max_length = 200))]
    pub title: String,
    #[oai(validator(max_length = 4000))]
    pub body: String,
    /// Default `medium`.
    pub priority: Option<Priority>,
    /// Default `system`.
    pub kind: Option<Kind>,
    #[oai(validator(max_length = 500))]
    pub link: Option<String>,
}

/// Body of `PUT /notifications/preferences`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct SetPreferences {
    /// The choices to change (at most 100).
    pub preferences: Vec<Preference>,
}

/// How many people a broadcast reached.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BroadcastResult {
    pub recipients: u64,
}

/// An email template as the tenant sees it.
#[derive(Debug, Object, Deserialize, serde::Serialize)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct EmailTemplate {
    #[oai(validator(max_length = 200))]
    pub subject: String,
    #[oai(validator(max_length = 20000))]
    pub text_body: String,
    #[oai(validator(max_length = 50000))]
    pub html_body: String,
}

#[OpenApi(prefix_path = "/api/v1")]
impl NotificationsApi {
    /// The signed-in person's notifications, newest first.
    #[oai(path = "/notifications", method = "get", tag = "Tag::Notifications")]
    async fn list(
        &self,
        auth: TenantAuth,
        page: Query<Option<u32>>,
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
            body.0.preferences,
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
        name: Path<String>,
    ) -> ApiResult<Ok200<EmailTemplate>> {
        let t = service::template(&self.db, &auth.0, &name.0).await?;
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
        name: Path<String>,
        body: Body<EmailTemplate>,
    ) -> ApiResult<Ok200<EmailTemplate>> {
        Ok(ok(service::set_template(
            &self.db,
            &auth.0,
            &name.0,
            body.0,
            now(),
        )
        .await?))
    }
}
