//! HTTP API of notifications: the inbox, preferences, broadcasts and email templates.

use poem_openapi::{param::Path, param::Query, payload::Json, Object, OpenApi, Tags};
use serde::Deserialize;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, Role, TenantAuth},
    body::Body,
    db::{Db, TenantTx},
    domain::{bounded, optional},
    envelope::{ok, List, NoContent, Ok200, Page},
    now, sql, ApiError, ApiResult, FieldErrors,
};
use uuid::Uuid;

use crate::{
    inbox::{self, Audience, Notice, Notification, Preference},
    templates, Kind, Priority,
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
pub struct UnreadCount {
    pub unread: i64,
}

/// `{"updated": N}`.
#[derive(Debug, Object)]
pub struct Updated {
    pub updated: u64,
}

/// Body of `POST /notifications/broadcasts`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
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
#[oai(deny_unknown_fields)]
pub struct SetPreferences {
    /// The choices to change (at most 100).
    pub preferences: Vec<Preference>,
}

/// How many people a broadcast reached.
#[derive(Debug, Object)]
pub struct BroadcastResult {
    pub recipients: u64,
}

/// An email template as the tenant sees it.
#[derive(Debug, Object, Deserialize, serde::Serialize)]
#[oai(deny_unknown_fields)]
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
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::SelfService).await?;
        let (rows, total) = inbox::list(
            &mut tx,
            ctx.user_id.0,
            unread.0.unwrap_or(false),
            page.limit(),
            page.offset(),
        )
        .await?;
        tx.commit().await?;
        Ok(page.list(rows, total))
    }

    /// How many notifications are unread.
    #[oai(
        path = "/notifications/unread_count",
        method = "get",
        tag = "Tag::Notifications"
    )]
    async fn unread_count(&self, auth: TenantAuth) -> ApiResult<Ok200<UnreadCount>> {
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::SelfService).await?;
        let unread = inbox::unread_count(&mut tx, ctx.user_id.0).await?;
        tx.commit().await?;
        Ok(ok(UnreadCount { unread }))
    }

    /// Mark a notification read.
    #[oai(
        path = "/notifications/:id/read",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn read(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Notification>> {
        self.mark(auth, id.0, true).await
    }

    /// Mark a notification unread.
    #[oai(
        path = "/notifications/:id/unread",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn unread(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Notification>> {
        self.mark(auth, id.0, false).await
    }

    /// Mark every notification read.
    #[oai(
        path = "/notifications/read_all",
        method = "post",
        tag = "Tag::Notifications"
    )]
    async fn read_all(&self, auth: TenantAuth) -> ApiResult<Ok200<Updated>> {
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::SelfService).await?;
        let updated = inbox::mark_all_read(&mut tx, ctx.user_id.0, now()).await?;
        tx.commit().await?;
        Ok(ok(Updated { updated }))
    }

    /// Delete a notification.
    #[oai(
        path = "/notifications/:id",
        method = "delete",
        tag = "Tag::Notifications"
    )]
    async fn delete(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<NoContent> {
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::SelfService).await?;
        inbox::delete(&mut tx, ctx.user_id.0, id.0, now()).await?;
        tx.commit().await?;
        Ok(NoContent::NoContent)
    }

    /// Preferences: every notification type × channel, chosen or defaulted.
    #[oai(
        path = "/notifications/preferences",
        method = "get",
        tag = "Tag::Notifications"
    )]
    async fn preferences(&self, auth: TenantAuth) -> ApiResult<Ok200<Vec<Preference>>> {
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::SelfService).await?;
        let prefs = inbox::preferences(&mut tx, ctx.user_id.0).await?;
        tx.commit().await?;
        Ok(ok(prefs))
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
        if body.0.preferences.len() > 100 {
            return Err(ApiError::field(
                "preferences",
                "at most 100 preferences at once",
            ));
        }
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::SelfService).await?;
        inbox::set_preferences(&mut tx, ctx.user_id.0, &body.0.preferences).await?;
        let prefs = inbox::preferences(&mut tx, ctx.user_id.0).await?;
        tx.commit().await?;
        Ok(ok(prefs))
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
        let b = body.0;
        let mut errors = FieldErrors::new();
        let title = errors.check("title", bounded(&b.title, 1, 200));
        let text = errors.check("body", bounded(&b.body, 1, 4000));
        let link = errors.check("link", optional(b.link.as_deref(), 500));
        let audience = match b.audience.as_str() {
            "all" => Some(Audience::All),
            "role" => match b.role.as_deref().map(str::parse::<Role>) {
                Some(Ok(r)) => Some(Audience::Role(r.as_str().to_string())),
                Some(Err(e)) => {
                    errors.add("role", e);
                    None
                }
                None => {
                    errors.add("role", "required when audience is role");
                    None
                }
            },
            "department" => match b.department_id {
                Some(d) => Some(Audience::Department(d)),
                None => {
                    errors.add("department_id", "required when audience is department");
                    None
                }
            },
            _ => {
                errors.add("audience", "must be one of: all, role, department");
                None
            }
        };
        errors.into_result()?;
        let audience = audience.expect("checked");
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::Broadcast).await?;
        if let Audience::Department(d) = &audience {
            let tenant = tx.tenant();
            let exists: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select id from departments where tenant_id = $1 and id = $2 and deleted_at is null")
                .bind(tenant).bind(*d).fetch_optional(&mut *c).await)?;
            if exists.is_none() {
                return Err(ApiError::field("department_id", "no such department"));
            }
        }
        let people = inbox::audience(&mut tx, &audience).await?;
        let at = now();
        for person in &people {
            let mut notice = Notice::new(
                *person,
                b.kind.unwrap_or(Kind::System),
                b.priority.unwrap_or(Priority::Medium),
                title.clone().expect("checked"),
                text.clone().expect("checked"),
            );
            notice.link = link.clone().flatten();
            inbox::notify(&mut tx, &notice, &self.public_url, at).await?;
        }
        audit::record(
            &mut tx,
            Entry::by(&ctx, "notification.broadcast").detail(serde_json::json!({
                "audience": b.audience, "role": b.role, "department_id": b.department_id,
                "title": b.title, "recipients": people.len(),
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(BroadcastResult {
            recipients: people.len() as u64,
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
        name: Path<String>,
    ) -> ApiResult<Ok200<EmailTemplate>> {
        let (mut tx, _) = TenantTx::begin(&self.db, &auth.0, Permission::TenantSettings).await?;
        let t = templates::load(&mut tx, &name.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        tx.commit().await?;
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
        if templates::built_in(&name.0).is_none() {
            return Err(ApiError::NotFound);
        }
        let t = body.0;
        let mut errors = FieldErrors::new();
        errors.check("subject", bounded(&t.subject, 1, 200));
        errors.check("text_body", bounded(&t.text_body, 1, 20000));
        errors.check("html_body", bounded(&t.html_body, 1, 50000));
        errors.into_result()?;
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::TenantSettings).await?;
        let tenant = tx.tenant();
        sql!(tx.conn() => |c| sqlx::query(
            "insert into email_templates (tenant_id, name, subject, text_body, html_body, updated_at)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (tenant_id, name) do update set subject = excluded.subject,
                 text_body = excluded.text_body, html_body = excluded.html_body, updated_at = excluded.updated_at")
            .bind(tenant).bind(&name.0).bind(&t.subject).bind(&t.text_body).bind(&t.html_body).bind(now())
            .execute(&mut *c).await.map(drop))?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "notification.template_update")
                .detail(serde_json::json!({"name": name.0})),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(t))
    }
}

impl NotificationsApi {
    async fn mark(&self, auth: TenantAuth, id: Uuid, read: bool) -> ApiResult<Ok200<Notification>> {
        let (mut tx, ctx) = TenantTx::begin(&self.db, &auth.0, Permission::SelfService).await?;
        let n = inbox::mark(&mut tx, ctx.user_id.0, id, read, now()).await?;
        tx.commit().await?;
        Ok(ok(n))
    }
}
