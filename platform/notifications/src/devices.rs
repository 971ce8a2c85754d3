//! Push subscriptions: the browsers and phones a person turned push notifications on for.
//! A person keeps at most [`MAX_PER_PERSON`]; registering another drops the oldest.

use std::collections::HashMap;

use poem_openapi::Object;
use serde::Serialize;
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, ApiError, ApiResult};
use uuid::Uuid;

/// The devices one person may have subscribed at once.
pub const MAX_PER_PERSON: i64 = 20;

/// A device that receives push notifications.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PushDevice {
    pub id: Uuid,
    /// The push service the device is reached through (the endpoint's host).
    pub push_service: String,
    /// What the browser said it is, when it said.
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a notification last reached the push service for it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sent_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: Uuid,
    endpoint: String,
    user_agent: Option<String>,
    created_at: OffsetDateTime,
    last_sent_at: Option<OffsetDateTime>,
}

impl From<DeviceRow> for PushDevice {
    fn from(r: DeviceRow) -> Self {
        PushDevice {
            id: r.id,
            push_service: url::Url::parse(&r.endpoint)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default(),
            user_agent: r.user_agent,
            created_at: r.created_at,
            last_sent_at: r.last_sent_at,
        }
    }
}

/// A subscription as the outbox needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub id: Uuid,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// `user`'s devices, newest first.
pub async fn of(tx: &mut TenantTx, user: Uuid) -> ApiResult<Vec<PushDevice>> {
    let tenant = tx.tenant();
    let rows: Vec<DeviceRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, endpoint, user_agent, created_at, last_sent_at from push_subscriptions
          where tenant_id = $1 and user_id = $2 order by created_at desc, id desc")
        .bind(tenant).bind(user).fetch_all(&mut *c).await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Registers a device for `user`, or takes the endpoint over when the browser had subscribed
/// for someone else of the tenant (one browser, the person signed in last), and drops the
/// person's oldest devices beyond [`MAX_PER_PERSON`].
pub async fn register(
    tx: &mut TenantTx,
    user: Uuid,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    user_agent: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<PushDevice> {
    let tenant = tx.tenant();
    let id = Uuid::now_v7();
    let row: DeviceRow = sql!(tx.conn() => |c| sqlx::query_as(
        "insert into push_subscriptions (tenant_id, id, user_id, endpoint, p256dh, auth, user_agent, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (tenant_id, endpoint) do update
            set user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth,
                user_agent = excluded.user_agent, created_at = excluded.created_at, last_sent_at = null
         returning id, endpoint, user_agent, created_at, last_sent_at")
        .bind(tenant).bind(id).bind(user).bind(endpoint).bind(p256dh).bind(auth).bind(user_agent).bind(now)
        .fetch_one(&mut *c).await)?;
    sql!(tx.conn() => |c| sqlx::query(
        "delete from push_subscriptions where tenant_id = $1 and user_id = $2 and id not in
           (select id from push_subscriptions where tenant_id = $1 and user_id = $2
             order by created_at desc, id desc limit $3)")
        .bind(tenant).bind(user).bind(MAX_PER_PERSON).execute(&mut *c).await.map(drop))?;
    Ok(row.into())
}

/// Removes one of `user`'s devices; 404 for anyone else's.
pub async fn remove(tx: &mut TenantTx, user: Uuid, id: Uuid) -> ApiResult<()> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "delete from push_subscriptions where tenant_id = $1 and user_id = $2 and id = $3")
        .bind(tenant).bind(user).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

/// The devices of each of `users`, in one statement.
pub async fn of_many(tx: &mut TenantTx, users: &[Uuid]) -> ApiResult<HashMap<Uuid, Vec<Uuid>>> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, Uuid)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("select user_id, id from push_subscriptions where tenant_id = ");
        qb.push_bind(tenant).push(" and user_id in (");
        let mut list = qb.separated(", ");
        for id in users { list.push_bind(*id); }
        qb.push(") order by created_at");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let mut devices: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (user, id) in rows {
        devices.entry(user).or_default().push(id);
    }
    Ok(devices)
}

/// One subscription, for delivery.
pub async fn find(tx: &mut TenantTx, id: Uuid) -> ApiResult<Option<Stored>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select id, endpoint, p256dh, auth from push_subscriptions where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?)
}

/// Drops a subscription its push service no longer knows.
pub async fn forget(tx: &mut TenantTx, id: Uuid) -> ApiResult<()> {
    let tenant = tx.tenant();
    Ok(
        sql!(tx.conn() => |c| sqlx::query("delete from push_subscriptions where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).execute(&mut *c).await.map(drop))?,
    )
}

/// Notes that a message for the subscription reached its push service.
pub async fn sent(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query(
        "update push_subscriptions set last_sent_at = $3 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(drop))?)
}
