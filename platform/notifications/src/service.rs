//! Use cases of notifications, shared by the API and the portal's pages. Each opens the tenant
//! transaction with the permission it needs, checks, changes data through [`inbox`] and
//! [`templates`], audits what it must, and commits — all or nothing.

use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, Role, TenantCtx},
    db::{Db, TenantTx},
    domain::{bounded, optional},
    sql, ApiError, ApiResult, FieldErrors,
};
use uuid::Uuid;

use crate::{
    api::{CreateBroadcast, EmailTemplate},
    devices::{self, PushDevice},
    inbox::{self, Audience, Notice, Notification, Preference},
    push::{decode_keys, KeyError, PushTransport},
    templates::{self, Template},
    Channel, Kind, Priority,
};

/// A page of the caller's notifications (newest first) and how many there are.
pub async fn list(
    db: &Db,
    ctx: &TenantCtx,
    unread_only: bool,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<Notification>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let page = inbox::list(&mut tx, ctx.user_id.0, unread_only, limit, offset).await?;
    tx.commit().await?;
    Ok(page)
}

/// How many of the caller's notifications are unread.
pub async fn unread_count(db: &Db, ctx: &TenantCtx) -> ApiResult<i64> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let unread = inbox::unread_count(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    Ok(unread)
}

/// Marks one of the caller's notifications read or unread (404 for anyone else's).
pub async fn mark(
    db: &Db,
    ctx: &TenantCtx,
    id: Uuid,
    read: bool,
    now: OffsetDateTime,
) -> ApiResult<Notification> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let n = inbox::mark(&mut tx, ctx.user_id.0, id, read, now).await?;
    tx.commit().await?;
    Ok(n)
}

/// Marks every notification of the caller read; how many were unread.
pub async fn mark_all_read(db: &Db, ctx: &TenantCtx, now: OffsetDateTime) -> ApiResult<u64> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let updated = inbox::mark_all_read(&mut tx, ctx.user_id.0, now).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes one of the caller's notifications (404 for anyone else's).
pub async fn delete(db: &Db, ctx: &TenantCtx, id: Uuid, now: OffsetDateTime) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    inbox::delete(&mut tx, ctx.user_id.0, id, now).await?;
    tx.commit().await
}

/// The caller's preferences: every type × channel, chosen or defaulted.
pub async fn preferences(db: &Db, ctx: &TenantCtx) -> ApiResult<Vec<Preference>> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let prefs = inbox::preferences(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    Ok(prefs)
}

/// Changes some of the caller's preferences (at most 100); the others keep their values.
/// Answers the whole set.
pub async fn set_preferences(
    db: &Db,
    ctx: &TenantCtx,
    prefs: Vec<Preference>,
) -> ApiResult<Vec<Preference>> {
    if prefs.len() > 100 {
        return Err(ApiError::field(
            "preferences",
            "at most 100 preferences at once",
        ));
    }
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    inbox::set_preferences(&mut tx, ctx.user_id.0, &prefs).await?;
    let prefs = inbox::preferences(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    Ok(prefs)
}

/// The notification centre: the newest notifications, their total, and the preferences.
#[derive(Debug, Clone)]
pub struct Centre {
    pub notifications: Vec<Notification>,
    pub total: i64,
    pub preferences: Vec<Preference>,
}

/// The caller's newest `limit` notifications, how many there are, and their preferences.
pub async fn centre(db: &Db, ctx: &TenantCtx, limit: i64) -> ApiResult<Centre> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let (notifications, total) = inbox::list(&mut tx, ctx.user_id.0, false, limit, 0).await?;
    let preferences = inbox::preferences(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    Ok(Centre {
        notifications,
        total,
        preferences,
    })
}

/// Sends a notification to everyone, a role or a department (in-app, and by email and SMS as
/// each person prefers); how many people it reached.
pub async fn broadcast(
    db: &Db,
    ctx: &TenantCtx,
    public_url: &str,
    input: CreateBroadcast,
    now: OffsetDateTime,
) -> ApiResult<u64> {
    let b = input;
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
    let (title, text, link) = (
        title.expect("checked"),
        text.expect("checked"),
        link.expect("checked"),
    );
    let audience = audience.expect("checked");
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::Broadcast).await?;
    // Whom the message is to, as its email says.
    let to = match &audience {
        Audience::All => "everyone".to_string(),
        Audience::Role(r) => format!("every {}", r.replace('_', " ")),
        Audience::Department(d) => match inbox::department_name(&mut tx, *d).await? {
            Some(name) => format!("everyone in {name}"),
            None => return Err(ApiError::field("department_id", "no such department")),
        },
    };
    let people = inbox::audience(&mut tx, &audience).await?;
    let notices: Vec<Notice> = people
        .iter()
        .map(|person| {
            let mut notice = Notice::new(
                *person,
                b.kind.unwrap_or(Kind::System),
                b.priority.unwrap_or(Priority::Medium),
                title.clone(),
                text.clone(),
            );
            notice.link = link.clone();
            notice.email_template = Some(("bulk", vec![("audience", to.clone())]));
            notice
        })
        .collect();
    inbox::notify_many(&mut tx, &notices, public_url, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "notification.broadcast").detail(serde_json::json!({
            "audience": b.audience, "role": b.role, "department_id": b.department_id,
            "title": b.title, "recipients": people.len(),
        })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(people.len() as u64)
}

/// An email template as the tenant sends it (its own version, else the built-in one).
pub async fn template(db: &Db, ctx: &TenantCtx, name: &str) -> ApiResult<Template> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    let t = templates::load(&mut tx, name)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(t)
}

/// Replaces a built-in template with the tenant's own version.
pub async fn set_template(
    db: &Db,
    ctx: &TenantCtx,
    name: &str,
    input: EmailTemplate,
    now: OffsetDateTime,
) -> ApiResult<EmailTemplate> {
    if templates::built_in(name).is_none() {
        return Err(ApiError::NotFound);
    }
    check_template(&input)?;
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    let t = Template {
        subject: input.subject,
        text: input.text_body,
        html: input.html_body,
    };
    templates::save(&mut tx, name, &t, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "notification.template_update").detail(serde_json::json!({ "name": name })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(EmailTemplate {
        subject: t.subject,
        text_body: t.text,
        html_body: t.html,
    })
}

/// A template as the portal and API list it.
#[derive(Debug, Clone)]
pub struct TemplateSummary {
    pub name: &'static str,
    pub subject: String,
    /// The tenant has its own version.
    pub customised: bool,
}

/// Every email template with the subject the tenant sends, and whether it is its own.
pub async fn templates_overview(db: &Db, ctx: &TenantCtx) -> ApiResult<Vec<TemplateSummary>> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    let own = templates::customised(&mut tx).await?;
    tx.commit().await?;
    Ok(templates::BUILT_IN
        .iter()
        .map(|(name, subject, ..)| {
            let mine = own.iter().find(|(n, _)| n == name);
            TemplateSummary {
                name,
                subject: mine.map_or_else(|| subject.to_string(), |(_, s)| s.clone()),
                customised: mine.is_some(),
            }
        })
        .collect())
}

/// Goes back to the built-in version of a template (a template that is already built in stays
/// so).
pub async fn reset_template(
    db: &Db,
    ctx: &TenantCtx,
    name: &str,
    now: OffsetDateTime,
) -> ApiResult<()> {
    if templates::built_in(name).is_none() {
        return Err(ApiError::NotFound);
    }
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    if templates::reset(&mut tx, name).await? {
        audit::record(
            &mut tx,
            Entry::by(&ctx, "notification.template_reset")
                .detail(serde_json::json!({ "name": name })),
            now,
        )
        .await?;
    }
    tx.commit().await
}

/// `input` (a draft of template `name`) filled with example values, as a recipient of this
/// tenant would get it; nothing is saved.
pub async fn preview_template(
    db: &Db,
    ctx: &TenantCtx,
    name: &str,
    input: &EmailTemplate,
    public_url: &str,
) -> ApiResult<templates::Rendered> {
    if templates::built_in(name).is_none() {
        return Err(ApiError::NotFound);
    }
    check_template(input)?;
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    let tenant = tx.tenant();
    let (organisation, settings): (String, sqlx::types::Json<serde_json::Value>) = sql!(tx.conn() => |c| sqlx::query_as(
        "select name, settings from directory_tenants where id = $1")
        .bind(tenant).fetch_one(&mut *c).await)?;
    tx.commit().await?;
    let draft = Template {
        subject: input.subject.clone(),
        text: input.text_body.clone(),
        html: input.html_body.clone(),
    };
    Ok(templates::render(
        &draft,
        &templates::sample_values(&organisation, &settings.0, public_url),
    ))
}

fn check_template(input: &EmailTemplate) -> ApiResult<()> {
    let mut errors = FieldErrors::new();
    errors.check("subject", bounded(&input.subject, 1, 200));
    errors.check("text_body", bounded(&input.text_body, 1, 20000));
    errors.check("html_body", bounded(&input.html_body, 1, 50000));
    errors.into_result()
}

/// A device to subscribe: what the browser's `PushSubscription` holds.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub user_agent: Option<String>,
}

/// Push on the caller's devices: whether the tenant offers it, the key browsers subscribe with,
/// and the caller's devices.
#[derive(Debug, Clone)]
pub struct PushSetup {
    pub offered: bool,
    pub public_key: String,
    pub devices: Vec<PushDevice>,
}

/// The caller's push setup.
pub async fn push_setup(db: &Db, ctx: &TenantCtx, push: &PushTransport) -> ApiResult<PushSetup> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let offered = push_offered(&mut tx).await?;
    let devices = devices::of(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    Ok(PushSetup {
        offered,
        public_key: push.public_key().to_string(),
        devices,
    })
}

async fn push_offered(tx: &mut TenantTx) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let settings: Option<sqlx::types::Json<serde_json::Value>> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select settings from directory_tenants where id = $1")
        .bind(tenant).fetch_optional(&mut *c).await)?;
    Ok(settings.is_some_and(|s| inbox::offers(&s.0, Channel::Push)))
}

/// Subscribes one of the caller's devices (a browser subscribing again replaces its keys).
/// The endpoint must be a push service the server posts to, and the keys must be a P-256
/// public key and a 16-octet secret; each refusal names its field.
pub async fn subscribe_push(
    db: &Db,
    ctx: &TenantCtx,
    push: &PushTransport,
    device: NewDevice,
    now: OffsetDateTime,
) -> ApiResult<PushDevice> {
    let mut errors = FieldErrors::new();
    if let Err(why) = push.endpoints().check(&device.endpoint) {
        errors.add("endpoint", why);
    }
    if device.endpoint.len() > 2048 {
        errors.add("endpoint", "is longer than 2,048 characters");
    }
    match decode_keys(&device.p256dh, &device.auth) {
        Err(e @ KeyError::P256dh) => errors.add("keys.p256dh", e.to_string()),
        Err(e) => errors.add("keys.auth", e.to_string()),
        Ok(_) => {}
    }
    let user_agent = match device.user_agent.as_deref().map(str::trim) {
        Some(ua) if !ua.is_empty() => errors.check("user_agent", bounded(ua, 1, 300)),
        _ => None,
    };
    errors.into_result()?;
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let saved = devices::register(
        &mut tx,
        ctx.user_id.0,
        &device.endpoint,
        &device.p256dh,
        &device.auth,
        user_agent.as_deref(),
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "notification.push_subscribed")
            .object("push_subscription", saved.id)
            .detail(serde_json::json!({ "push_service": saved.push_service })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// Unsubscribes one of the caller's devices (404 for anyone else's).
pub async fn unsubscribe_push(
    db: &Db,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    devices::remove(&mut tx, ctx.user_id.0, id).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "notification.push_unsubscribed").object("push_subscription", id),
        now,
    )
    .await?;
    tx.commit().await
}
