//! In-app notifications and preferences, and [`notify`]: the one call events make.

use std::collections::HashMap;

use poem_openapi::Object;
use serde::Serialize;
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, ApiError, ApiResult};
use uuid::Uuid;

use crate::{
    devices,
    outbox::{enqueue_many, Message},
    templates, Channel, Kind, Priority,
};

/// Something to tell one person.
#[derive(Debug, Clone)]
pub struct Notice {
    pub user_id: Uuid,
    pub kind: Kind,
    pub priority: Priority,
    pub title: String,
    pub body: String,
    /// Where the related object is (a portal path or a full URL).
    pub link: Option<String>,
    /// The email template and its values (default: the generic `notification` template).
    pub email_template: Option<(&'static str, Vec<(&'static str, String)>)>,
    /// The SMS text (default: the title and the link).
    pub sms: Option<String>,
    /// Send on these channels whatever the preferences say (a link a person must receive to
    /// act, such as an approval request). In-app is always kept.
    pub required_channels: Vec<Channel>,
    /// Set on the copy a foreman or manager gets for a person who has neither email nor a
    /// phone (so a relayed notice is never relayed again).
    pub relayed_for: Option<Uuid>,
}

impl Notice {
    pub fn new(
        user_id: Uuid,
        kind: Kind,
        priority: Priority,
        title: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Notice {
            user_id,
            kind,
            priority,
            title: title.into(),
            body: body.into(),
            link: None,
            email_template: None,
            sms: None,
            required_channels: Vec::new(),
            relayed_for: None,
        }
    }
}

/// A notification's recipient.
#[derive(sqlx::FromRow)]
struct Recipient {
    id: Uuid,
    email: Option<String>,
    phone: Option<String>,
    first_name: String,
    last_name: String,
    /// Their foreman, else their line manager: who is told when the person cannot be reached.
    relay: Option<Uuid>,
    organisation: String,
    active: bool,
    settings: sqlx::types::Json<serde_json::Value>,
}

/// What [`notify`] wrote.
#[derive(Debug, Default, Clone)]
pub struct Notified {
    pub notification: Option<Uuid>,
    pub email: Option<Uuid>,
    pub sms: Option<Uuid>,
    /// One push message per device of the person.
    pub push: Vec<Uuid>,
}

/// What [`notify_many`] wrote: one [`Notified`] per notice, in their order, and the number of
/// statements it took.
#[derive(Debug, Default, Clone)]
pub struct NotifiedMany {
    pub notified: Vec<Notified>,
    pub statements: u64,
}

/// Records `notice` inside the caller's transaction: the in-app notification, and an outbox
/// message per channel the person wants (and can be reached on). Nothing is sent before the
/// transaction commits, and nothing is lost if it does.
pub async fn notify(
    tx: &mut TenantTx,
    notice: &Notice,
    public_url: &str,
    now: OffsetDateTime,
) -> ApiResult<Notified> {
    let mut many = notify_many(tx, std::slice::from_ref(notice), public_url, now).await?;
    Ok(many.notified.pop().unwrap_or_default())
}

/// Notices per page of [`notify_many`]: its `in (…)` lists and multi-row inserts stay well
/// under both backends' limits on bound parameters.
const NOTICES_PER_PAGE: usize = 500;

/// [`notify`] for many notices (an expiry scan's reminders, a broadcast) with a fixed number
/// of statements per page of [`NOTICES_PER_PAGE`] notices, whatever their number: the
/// recipients, their preferences, each email template used (once per call), then one
/// multi-row insert each for the notifications, the outbox messages and their queue entries.
/// A notice for someone who is not a person of the tenant fails the whole call (404).
pub async fn notify_many(
    tx: &mut TenantTx,
    notices: &[Notice],
    public_url: &str,
    now: OffsetDateTime,
) -> ApiResult<NotifiedMany> {
    let mut out = NotifiedMany {
        notified: Vec::with_capacity(notices.len()),
        statements: 0,
    };
    let mut cache = HashMap::new();
    let mut relays = Vec::new();
    for page in notices.chunks(NOTICES_PER_PAGE) {
        notify_page(tx, page, public_url, now, &mut cache, &mut out, &mut relays).await?;
    }
    // People without email or phone: their foreman or manager is told instead (once; a
    // relayed notice is not relayed again).
    let mut relayed = NotifiedMany::default();
    let mut unused = Vec::new();
    for page in relays.chunks(NOTICES_PER_PAGE) {
        notify_page(
            tx,
            page,
            public_url,
            now,
            &mut cache,
            &mut relayed,
            &mut unused,
        )
        .await?;
    }
    out.statements += relayed.statements;
    Ok(out)
}

async fn notify_page(
    tx: &mut TenantTx,
    notices: &[Notice],
    public_url: &str,
    now: OffsetDateTime,
    cache: &mut HashMap<&'static str, templates::Template>,
    out: &mut NotifiedMany,
    relays: &mut Vec<Notice>,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let mut ids: Vec<Uuid> = notices.iter().map(|n| n.user_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<Recipient> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select u.id, u.email, u.phone, u.first_name, u.last_name,
                    coalesce(u.supervisor_id, u.manager_id) as relay, t.name as organisation,
                    u.is_active and u.deleted_at is null as active, t.settings
               from directory_people u join directory_tenants t on t.id = u.tenant_id
              where u.tenant_id = ");
        qb.push_bind(tenant).push(" and u.id in (");
        let mut list = qb.separated(", ");
        for id in &ids { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    out.statements += 1;
    let people: HashMap<Uuid, Recipient> = rows.into_iter().map(|r| (r.id, r)).collect();
    if people.len() != ids.len() {
        return Err(ApiError::NotFound);
    }
    let active: Vec<Uuid> = ids.iter().copied().filter(|id| people[id].active).collect();
    let wants = preferences_of_many(tx, &active).await?;
    out.statements += u64::from(!active.is_empty());
    // The devices people turned push on for, when the tenant offers push at all.
    let push_offered = people
        .values()
        .next()
        .is_some_and(|p| offers(&p.settings.0, Channel::Push));
    let devices = if push_offered && !active.is_empty() {
        out.statements += 1;
        devices::of_many(tx, &active).await?
    } else {
        HashMap::new()
    };

    let mut notifications: Vec<(Uuid, &Notice)> = Vec::with_capacity(notices.len());
    let mut messages: Vec<(Uuid, Message)> = Vec::new();
    for notice in notices {
        let person = &people[&notice.user_id];
        let (email, phone, organisation, settings) = (
            &person.email,
            &person.phone,
            &person.organisation,
            &person.settings,
        );
        if !person.active {
            out.notified.push(Notified::default());
            continue;
        }
        let offered = |channel: Channel| offers(&settings.0, channel);
        let wanted = |channel: Channel| {
            offered(channel)
                && (notice.required_channels.contains(&channel)
                    || wants
                        .get(&(notice.user_id, notice.kind, channel))
                        .copied()
                        .unwrap_or_else(|| channel.default_for(notice.kind)))
        };
        let link = notice.link.as_ref().map(|l| absolute(public_url, l));
        let id = Uuid::now_v7();
        notifications.push((id, notice));
        let mut notified = Notified {
            notification: Some(id),
            ..Notified::default()
        };
        let their_devices: &[Uuid] = match wanted(Channel::Push) {
            true => devices.get(&notice.user_id).map_or(&[], Vec::as_slice),
            false => &[],
        };
        // Someone without email gets by SMS what would have gone by email, when they have a
        // phone; otherwise, unless push reaches them, their foreman (or manager) is told.
        let unreachable_by_email = email.is_none() && wanted(Channel::Email);
        let sms_instead = unreachable_by_email && phone.is_some() && offered(Channel::Sms);
        if unreachable_by_email
            && !sms_instead
            && their_devices.is_empty()
            && notice.relayed_for.is_none()
        {
            if let Some(to) = person.relay {
                let name = format!("{} {}", person.first_name, person.last_name);
                let name = name.trim();
                let mut relay = Notice::new(
                    to,
                    notice.kind,
                    notice.priority,
                    format!("For {name}: {}", notice.title),
                    format!(
                        "{name} has no email address or mobile number in TrainFlow, so please pass this on. {}",
                        notice.body
                    ),
                );
                relay.link = notice.link.clone();
                relay.relayed_for = Some(notice.user_id);
                relays.push(relay);
            }
        }
        if let Some(email) = email.as_ref().filter(|_| wanted(Channel::Email)) {
            let (name, mut vars) = notice
                .email_template
                .clone()
                .unwrap_or(("notification", Vec::new()));
            vars.extend([
                ("title", notice.title.clone()),
                ("body", notice.body.clone()),
                ("link", link.clone().unwrap_or_default()),
            ]);
            vars.extend(templates::tenant_values(
                organisation,
                &settings.0,
                public_url,
            ));
            if !cache.contains_key(name) {
                let template = templates::load(tx, name).await?.ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("no email template {name}"))
                })?;
                out.statements += 1;
                cache.insert(name, template);
            }
            let r = templates::render(&cache[name], &vars);
            let id = Uuid::now_v7();
            notified.email = Some(id);
            messages.push((
                id,
                Message::Email {
                    to: email.clone(),
                    subject: r.subject,
                    text: r.text,
                    html: Some(r.html),
                },
            ));
        }
        if let Some(phone) = phone
            .as_ref()
            .filter(|_| wanted(Channel::Sms) || sms_instead)
        {
            let text = notice.sms.clone().unwrap_or_else(|| match &link {
                Some(l) => format!("{}: {} {l}", organisation, notice.title),
                None => format!("{}: {}", organisation, notice.title),
            });
            let id = Uuid::now_v7();
            notified.sms = Some(id);
            messages.push((
                id,
                Message::Sms {
                    to: phone.clone(),
                    text,
                },
            ));
        }
        if !their_devices.is_empty() {
            let payload = push_payload(notice, id, link.as_deref());
            for device in their_devices {
                let message = Uuid::now_v7();
                notified.push.push(message);
                messages.push((
                    message,
                    Message::Push {
                        subscription: *device,
                        title: notice.title.clone(),
                        payload: payload.clone(),
                    },
                ));
            }
        }
        out.notified.push(notified);
    }
    if !notifications.is_empty() {
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "insert into notifications (tenant_id, id, user_id, kind, priority, title, body, link, created_at) ");
            qb.push_values(&notifications, |mut row, (id, n)| {
                row.push_bind(tenant).push_bind(*id).push_bind(n.user_id).push_bind(n.kind.as_str())
                    .push_bind(n.priority.as_str()).push_bind(&n.title).push_bind(&n.body)
                    .push_bind(&n.link).push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
        out.statements += 1;
    }
    out.statements += enqueue_many(tx, &messages, now).await?;
    Ok(())
}

/// Whether the tenant offers `channel` to its people (`settings.notification_channels`;
/// default in-app and email).
pub(crate) fn offers(settings: &serde_json::Value, channel: Channel) -> bool {
    match settings.get("notification_channels") {
        Some(serde_json::Value::Array(list)) => list.iter().any(|c| c == channel.as_str()),
        _ => matches!(channel, Channel::InApp | Channel::Email),
    }
}

/// Characters of a notification's body a push message carries (a push message holds about
/// 4 KB; the notification centre has the rest).
const PUSH_BODY_CHARS: usize = 500;

/// What the portal's service worker shows: the title, the start of the body, where a tap
/// leads, and the notification's id as the tag (a resend replaces, never duplicates).
fn push_payload(notice: &Notice, notification: Uuid, link: Option<&str>) -> String {
    let mut chars = PUSH_BODY_CHARS;
    loop {
        let mut body: String = notice.body.chars().take(chars).collect();
        if notice.body.chars().count() > chars {
            body.push('…');
        }
        let payload = serde_json::json!({
            "title": notice.title.chars().take(200).collect::<String>(),
            "body": body,
            "url": link.filter(|_| chars > 0),
            "tag": notification,
            "kind": notice.kind.as_str(),
            "priority": notice.priority.as_str(),
        })
        .to_string();
        // Escaped control characters can swell the JSON; shorten until it fits one message.
        if payload.len() <= crate::push::MAX_PAYLOAD || chars == 0 {
            return payload;
        }
        chars /= 2;
    }
}

fn absolute(public_url: &str, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") {
        link.to_string()
    } else {
        format!(
            "{}/{}",
            public_url.trim_end_matches('/'),
            link.trim_start_matches('/')
        )
    }
}

/// A person's explicit choices.
async fn preferences_of(
    tx: &mut TenantTx,
    user: Uuid,
) -> ApiResult<HashMap<(Kind, Channel), bool>> {
    Ok(preferences_of_many(tx, &[user])
        .await?
        .into_iter()
        .map(|((_, kind, channel), enabled)| ((kind, channel), enabled))
        .collect())
}

/// The explicit choices of each of `users`, in one statement.
async fn preferences_of_many(
    tx: &mut TenantTx,
    users: &[Uuid],
) -> ApiResult<HashMap<(Uuid, Kind, Channel), bool>> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, String, String, bool)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select user_id, kind, channel, enabled from notification_preferences where tenant_id = ");
        qb.push_bind(tenant).push(" and user_id in (");
        let mut list = qb.separated(", ");
        for id in users { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(u, k, c, e)| Some(((u, Kind::parse(&k)?, Channel::parse(&c)?), e)))
        .collect())
}

/// One preference.
#[derive(Debug, Clone, Object, Serialize, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Preference {
    pub kind: Kind,
    pub channel: Channel,
    pub enabled: bool,
}

/// Every type × channel for `user`, chosen or defaulted.
pub async fn preferences(tx: &mut TenantTx, user: Uuid) -> ApiResult<Vec<Preference>> {
    let chosen = preferences_of(tx, user).await?;
    Ok(Kind::ALL
        .into_iter()
        .flat_map(|kind| Channel::ALL.into_iter().map(move |channel| (kind, channel)))
        .map(|(kind, channel)| Preference {
            kind,
            channel,
            enabled: chosen
                .get(&(kind, channel))
                .copied()
                .unwrap_or_else(|| channel.default_for(kind)),
        })
        .collect())
}

/// Records `user`'s choices (the others keep their values).
pub async fn set_preferences(tx: &mut TenantTx, user: Uuid, prefs: &[Preference]) -> ApiResult<()> {
    let tenant = tx.tenant();
    for p in prefs {
        sql!(tx.conn() => |c| sqlx::query(
            "insert into notification_preferences (tenant_id, user_id, kind, channel, enabled)
             values ($1, $2, $3, $4, $5)
             on conflict (tenant_id, user_id, kind, channel) do update set enabled = excluded.enabled")
            .bind(tenant).bind(user).bind(p.kind.as_str()).bind(p.channel.as_str()).bind(p.enabled)
            .execute(&mut *c).await.map(drop))?;
    }
    Ok(())
}

/// An in-app notification.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Notification {
    pub id: Uuid,
    pub kind: Kind,
    pub priority: Priority,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: Uuid,
    kind: String,
    priority: String,
    title: String,
    body: String,
    link: Option<String>,
    read_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl From<NotificationRow> for Notification {
    fn from(r: NotificationRow) -> Self {
        Notification {
            id: r.id,
            kind: Kind::parse(&r.kind).unwrap_or(Kind::System),
            priority: Priority::parse(&r.priority),
            title: r.title,
            body: r.body,
            link: r.link,
            read: r.read_at.is_some(),
            read_at: r.read_at,
            created_at: r.created_at,
        }
    }
}

/// A page of `user`'s notifications, newest first, and the total.
pub async fn list(
    tx: &mut TenantTx,
    user: Uuid,
    unread_only: bool,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<Notification>, i64)> {
    let tenant = tx.tenant();
    let filter = if unread_only {
        " and read_at is null"
    } else {
        ""
    };
    let rows: Vec<NotificationRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select id, kind, priority, title, body, link, read_at, created_at from notifications
          where tenant_id = $1 and user_id = $2 and deleted_at is null{filter}
          order by created_at desc, id desc limit $3 offset $4"))
        .bind(tenant).bind(user).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
    let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(&format!(
        "select count(*) from notifications where tenant_id = $1 and user_id = $2 and deleted_at is null{filter}"))
        .bind(tenant).bind(user).fetch_one(&mut *c).await)?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// How many of `user`'s notifications are unread.
pub async fn unread_count(tx: &mut TenantTx, user: Uuid) -> ApiResult<i64> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from notifications where tenant_id = $1 and user_id = $2 and deleted_at is null and read_at is null")
        .bind(tenant).bind(user).fetch_one(&mut *c).await)?)
}

/// Marks one of `user`'s notifications read or unread; 404 for anyone else's.
pub async fn mark(
    tx: &mut TenantTx,
    user: Uuid,
    id: Uuid,
    read: bool,
    now: OffsetDateTime,
) -> ApiResult<Notification> {
    let tenant = tx.tenant();
    let read_at = read.then_some(now);
    let row: Option<NotificationRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "update notifications set read_at = case when $4 then coalesce(read_at, $5) else null end
          where tenant_id = $1 and user_id = $2 and id = $3 and deleted_at is null
          returning id, kind, priority, title, body, link, read_at, created_at")
        .bind(tenant).bind(user).bind(id).bind(read).bind(read_at.unwrap_or(now))
        .fetch_optional(&mut *c).await)?;
    row.map(Into::into).ok_or(ApiError::NotFound)
}

/// Marks every unread notification of `user` read; returns how many.
pub async fn mark_all_read(tx: &mut TenantTx, user: Uuid, now: OffsetDateTime) -> ApiResult<u64> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query(
        "update notifications set read_at = $3 where tenant_id = $1 and user_id = $2 and read_at is null and deleted_at is null")
        .bind(tenant).bind(user).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?)
}

/// Deletes (softly) one of `user`'s notifications; 404 for anyone else's.
pub async fn delete(tx: &mut TenantTx, user: Uuid, id: Uuid, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update notifications set deleted_at = $4 where tenant_id = $1 and user_id = $2 and id = $3 and deleted_at is null")
        .bind(tenant).bind(user).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

/// Who a broadcast reaches.
#[derive(Debug, Clone)]
pub enum Audience {
    All,
    Role(String),
    Department(Uuid),
}

/// The active people of `audience`.
pub async fn audience(tx: &mut TenantTx, audience: &Audience) -> ApiResult<Vec<Uuid>> {
    let tenant = tx.tenant();
    let base =
        "select id from directory_people where tenant_id = $1 and is_active = true and deleted_at is null";
    Ok(match audience {
        Audience::All => sql!(tx.conn() => |c| sqlx::query_scalar(base)
            .bind(tenant).fetch_all(&mut *c).await)?,
        Audience::Role(role) => {
            sql!(tx.conn() => |c| sqlx::query_scalar(&format!("{base} and role = $2"))
            .bind(tenant).bind(role).fetch_all(&mut *c).await)?
        }
        Audience::Department(d) => {
            sql!(tx.conn() => |c| sqlx::query_scalar(&format!("{base} and department_id = $2"))
            .bind(tenant).bind(*d).fetch_all(&mut *c).await)?
        }
    })
}

/// The name of department `id`, when it is one of the tenant's.
pub async fn department_name(tx: &mut TenantTx, id: Uuid) -> ApiResult<Option<String>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select name from directory_departments where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?)
}
