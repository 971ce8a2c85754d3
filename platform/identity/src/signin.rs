//! Signing in, refresh-token rotation with reuse detection, and portal sessions.

use time::{Duration, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Role, TenantCtx},
    db::{Db, TenantTx},
    secret::{random_token, token_digest},
    sql, ApiError, ApiResult, TenantId, UserId,
};
use uuid::Uuid;

use trainflow_web::Session;

use crate::{password::Hasher, throttle, users, users::User};

/// Everything sign-in needs.
#[derive(Clone)]
pub struct AuthDeps {
    pub db: Db,
    pub hasher: Hasher,
    pub keys: std::sync::Arc<trainflow_kernel::auth::JwtKeys>,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// Portal session lifetime.
    pub session_ttl: Duration,
    /// The portal's URL, for the links in the messages people get (a welcome, a reset).
    pub public_url: String,
}

/// An active tenant found by slug or host name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
}

/// Looks up a tenant by slug or by its configured host name.
pub async fn find_tenant(db: &Db, slug_or_domain: &str) -> ApiResult<Option<TenantRef>> {
    let mut tx = db.platform_tx().await?;
    let key = slug_or_domain.trim().to_lowercase();
    let t: Option<TenantRef> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, slug, name, status from directory_tenants where (slug = $1 or domain = $1) and status <> 'deleted'")
        .bind(&key).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(t)
}

const INVALID: &str = "invalid organisation, email or employee number, or password or PIN";
/// The answer to a PIN attempt once the PIN is locked.
pub const PIN_LOCKED: &str = "this PIN is locked after 10 failed attempts: ask your administrator or foreman to set a new one";

/// Whether `secret` has the shape of a PIN (6–10 digits). Passwords are at least 12
/// characters, so the two never overlap.
pub fn is_pin(secret: &str) -> bool {
    (6..=10).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_digit())
}

/// Checks credentials with back-off and records the outcome (audit, counters). `login` is an
/// email or, for people without email, an employee number; `secret` is a password or, for a
/// person with a PIN, the PIN. Ten consecutive wrong PINs lock the PIN (the person is told)
/// until an administrator or their foreman sets a new one. Returns the signed-in user and
/// their tenant.
pub async fn sign_in(
    deps: &AuthDeps,
    tenant_key: &str,
    login: users::Login,
    secret: String,
    ip: Option<String>,
) -> ApiResult<(TenantId, User)> {
    let now = trainflow_kernel::now();
    let keys = throttle::Keys::new(tenant_key, &login.key(), ip.as_deref());
    throttle::check(&deps.db, &keys, now).await?;

    let tenant = find_tenant(&deps.db, tenant_key)
        .await?
        .filter(|t| t.status == "active");
    let found = match &tenant {
        Some(t) => {
            let mut tx = TenantTx::begin_system(&deps.db, TenantId(t.id)).await?;
            let found = users::find_for_sign_in(&mut tx, &login).await?;
            tx.commit().await?;
            found
        }
        None => None,
    };
    let by_pin = found
        .as_ref()
        .is_some_and(|c| c.pin_hash.is_some() && is_pin(&secret));
    let locked = by_pin && found.as_ref().is_some_and(|c| c.user.pin_locked);
    let hash = found.as_ref().and_then(|c| {
        if by_pin {
            c.pin_hash.clone()
        } else {
            c.password_hash.clone()
        }
    });
    // Always verify (against a dummy hash when there is no user) so timing reveals nothing.
    let ok = deps.hasher.verify(secret, hash).await?
        && !locked
        && found.as_ref().is_some_and(|c| c.user.is_active);

    match (tenant, found.map(|c| c.user), ok) {
        (Some(t), Some(user), true) => {
            throttle::record_success(&deps.db, &keys).await?;
            let tenant = TenantId(t.id);
            let mut tx = TenantTx::begin_system(&deps.db, tenant).await?;
            sql!(tx.conn() => |c| sqlx::query(
                "update users set last_login_at = $3, last_active_at = $3, failed_login_attempts = 0,
                        pin_failed_attempts = case when $4 then 0 else pin_failed_attempts end
                  where tenant_id = $1 and id = $2")
                .bind(tenant).bind(user.id).bind(now).bind(by_pin).execute(&mut *c).await.map(drop))?;
            audit::record(
                &mut tx,
                Entry::as_actor("user", Some(user.id), "auth.sign_in", ip).object("user", user.id),
                now,
            )
            .await?;
            tx.commit().await?;
            Ok((tenant, user))
        }
        (tenant, user, _) => {
            throttle::record_failure(&deps.db, &keys, now).await?;
            let mut now_locked = locked;
            if let (Some(t), Some(user)) = (tenant, user) {
                let mut tx = TenantTx::begin_system(&deps.db, TenantId(t.id)).await?;
                sql!(tx.conn() => |c| sqlx::query(
                    "update users set failed_login_attempts = failed_login_attempts + 1 where tenant_id = $1 and id = $2")
                    .bind(TenantId(t.id)).bind(user.id).execute(&mut *c).await.map(drop))?;
                if by_pin && !locked {
                    now_locked = users::pin_failed(&mut tx, user.id, now).await?;
                    if now_locked {
                        audit::record(
                            &mut tx,
                            Entry::as_actor("system", None, "auth.pin_locked", ip.clone())
                                .object("user", user.id),
                            now,
                        )
                        .await?;
                    }
                }
                audit::record(
                    &mut tx,
                    Entry::as_actor("anonymous", None, "auth.sign_in_failed", ip)
                        .object("user", user.id),
                    now,
                )
                .await?;
                tx.commit().await?;
            }
            Err(ApiError::Unauthorized(if now_locked {
                PIN_LOCKED
            } else {
                INVALID
            }))
        }
    }
}

/// A fresh access + refresh token pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// An access token for `user` beside the refresh token just stored.
fn pair(
    deps: &AuthDeps,
    tenant: TenantId,
    user: &User,
    refresh: String,
    now: OffsetDateTime,
) -> ApiResult<TokenPair> {
    let access =
        deps.keys
            .issue_access(tenant, UserId(user.id), user.role, now.unix_timestamp())?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: refresh,
        expires_in: deps.keys.access_ttl_secs,
    })
}

/// Issues tokens for a signed-in user, starting a new refresh family.
pub async fn issue_tokens(deps: &AuthDeps, tenant: TenantId, user: &User) -> ApiResult<TokenPair> {
    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system(&deps.db, tenant).await?;
    let refresh = insert_refresh(
        &mut tx,
        UserId(user.id),
        Uuid::now_v7(),
        now,
        deps.refresh_ttl,
    )
    .await?;
    tx.commit().await?;
    pair(deps, tenant, user, refresh, now)
}

async fn insert_refresh(
    tx: &mut TenantTx,
    user: UserId,
    family: Uuid,
    now: OffsetDateTime,
    ttl: Duration,
) -> ApiResult<String> {
    let tenant = tx.tenant();
    let secret = random_token();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into refresh_tokens (tenant_id, id, user_id, family_id, token_hash, issued_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7)")
        .bind(tenant).bind(Uuid::now_v7()).bind(user).bind(family).bind(token_digest(&secret))
        .bind(now).bind(now + ttl).execute(&mut *c).await.map(drop))?;
    // The tenant travels in the token so the refresh can open the right tenant transaction.
    Ok(format!("{}.{}", tenant.0.simple(), secret))
}

/// Splits `tenant.secret`.
fn split_token(token: &str) -> Option<(TenantId, &str)> {
    let (tenant, secret) = token.split_once('.')?;
    Some((TenantId(Uuid::parse_str(tenant).ok()?), secret))
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

/// Rotates a refresh token. Replaying a used or revoked token revokes its whole family.
pub async fn refresh(deps: &AuthDeps, token: &str, ip: Option<String>) -> ApiResult<TokenPair> {
    const BAD: ApiError = ApiError::Unauthorized("invalid or expired refresh token");
    let now = trainflow_kernel::now();
    let (tenant, secret) = split_token(token).ok_or(BAD)?;
    let active = find_tenant_by_id(&deps.db, tenant).await?;
    if !active {
        return Err(BAD);
    }
    let mut tx = TenantTx::begin_system(&deps.db, tenant).await?;
    let row: Option<RefreshRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, user_id, family_id, expires_at, used_at, revoked_at from refresh_tokens
          where tenant_id = $1 and token_hash = $2")
        .bind(tenant).bind(token_digest(secret)).fetch_optional(&mut *c).await)?;
    let Some(row) = row else { return Err(BAD) };
    if row.used_at.is_some() || row.revoked_at.is_some() {
        return reuse_detected(tx, row, ip, now).await;
    }
    if row.expires_at <= now {
        return Err(BAD);
    }
    // Claim the token atomically: of two concurrent uses exactly one passes.
    let claimed = sql!(tx.conn() => |c| sqlx::query(
        "update refresh_tokens set used_at = $3 where tenant_id = $1 and id = $2 and used_at is null and revoked_at is null")
        .bind(tenant).bind(row.id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if claimed != 1 {
        return reuse_detected(tx, row, ip, now).await;
    }
    let user = match users::get(&mut tx, row.user_id, false).await {
        Ok(u) if u.is_active => u,
        _ => return Err(BAD),
    };
    let refresh = insert_refresh(
        &mut tx,
        UserId(user.id),
        row.family_id,
        now,
        deps.refresh_ttl,
    )
    .await?;
    tx.commit().await?;
    pair(deps, tenant, &user, refresh, now)
}

async fn reuse_detected(
    mut tx: TenantTx,
    row: RefreshRow,
    ip: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<TokenPair> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update refresh_tokens set revoked_at = $3 where tenant_id = $1 and family_id = $2 and revoked_at is null")
        .bind(tenant).bind(row.family_id).bind(now).execute(&mut *c).await.map(drop))?;
    audit::record(
        &mut tx,
        Entry::as_actor("anonymous", None, "auth.refresh_token_reuse", ip)
            .object("user", row.user_id)
            .detail(serde_json::json!({"family_id": row.family_id})),
        now,
    )
    .await?;
    tx.commit().await?;
    Err(ApiError::Unauthorized(
        "refresh token already used; all tokens of this sign-in are revoked",
    ))
}

/// Revokes the family of a refresh token (sign-out). Unknown tokens are ignored.
pub async fn logout(deps: &AuthDeps, token: &str, ip: Option<String>) -> ApiResult<()> {
    let Some((tenant, secret)) = split_token(token) else {
        return Ok(());
    };
    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system(&deps.db, tenant).await?;
    let row: Option<(Uuid, Uuid)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select family_id, user_id from refresh_tokens where tenant_id = $1 and token_hash = $2")
        .bind(tenant).bind(token_digest(secret)).fetch_optional(&mut *c).await)?;
    if let Some((family, user)) = row {
        sql!(tx.conn() => |c| sqlx::query(
            "update refresh_tokens set revoked_at = $3 where tenant_id = $1 and family_id = $2 and revoked_at is null")
            .bind(tenant).bind(family).bind(now).execute(&mut *c).await.map(drop))?;
        audit::record(
            &mut tx,
            Entry::as_actor("user", Some(user), "auth.sign_out", ip).object("user", user),
            now,
        )
        .await?;
    }
    tx.commit().await
}

async fn find_tenant_by_id(db: &Db, tenant: TenantId) -> ApiResult<bool> {
    let mut tx = db.platform_tx().await?;
    let status: Option<String> = sql!(tx.conn() => |c| sqlx::query_scalar("select status from directory_tenants where id = $1")
        .bind(tenant).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(status.as_deref() == Some("active"))
}

/// Starts a portal session; returns the cookie value.
pub async fn create_session(deps: &AuthDeps, tenant: TenantId, user: &User) -> ApiResult<String> {
    let now = trainflow_kernel::now();
    let secret = random_token();
    let mut tx = TenantTx::begin_system(&deps.db, tenant).await?;
    sql!(tx.conn() => |c| sqlx::query(
        "insert into sessions (tenant_id, id, user_id, token_hash, csrf_token, created_at, expires_at, last_seen_at)
         values ($1, $2, $3, $4, $5, $6, $7, $6)")
        .bind(tenant).bind(Uuid::now_v7()).bind(user.id).bind(token_digest(&secret)).bind(random_token())
        .bind(now).bind(now + deps.session_ttl).execute(&mut *c).await.map(drop))?;
    tx.commit().await?;
    Ok(format!("{}.{}", tenant.0.simple(), secret))
}

/// How often a session's activity is written: a page view within this interval of the last
/// recorded one writes nothing.
pub const ACTIVITY_INTERVAL: time::Duration = time::Duration::minutes(1);

type SessionRow = (
    Uuid,
    String,
    OffsetDateTime,
    String,
    String,
    String,
    String,
    String,
    Option<Uuid>,
    Uuid,
    String,
    sqlx::types::Json<serde_json::Value>,
);

/// Resolves a session cookie to the signed-in person, checking that the session is live and
/// that tenant and person are active — one read, no write lock. Activity (the session's
/// `last_seen_at`, the person's `last_active_at`) is recorded at most once per
/// [`ACTIVITY_INTERVAL`], in a transaction of its own after the answer, so page views never
/// queue behind writers.
pub async fn resolve_session(
    db: &Db,
    cookie: &str,
    ip: Option<String>,
) -> ApiResult<Option<Session>> {
    let Some((tenant, secret)) = split_token(cookie) else {
        return Ok(None);
    };
    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system_read(db, tenant).await?;
    let row: Option<SessionRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select s.id, s.csrf_token, s.last_seen_at, t.name, u.email, u.first_name, u.last_name, u.role,
                u.department_id, u.id, t.time_zone, t.settings
           from sessions s
           join directory_tenants t on t.id = s.tenant_id and t.status = 'active'
           join users u on u.tenant_id = s.tenant_id and u.id = s.user_id
                       and u.is_active = true and u.deleted_at is null
          where s.tenant_id = $1 and s.token_hash = $2 and s.revoked_at is null and s.expires_at > $3")
        .bind(tenant).bind(token_digest(secret)).bind(now).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    let Some((
        session_id,
        csrf_token,
        last_seen,
        tenant_name,
        email,
        first,
        last,
        role,
        dept,
        user,
        time_zone,
        settings,
    )) = row
    else {
        return Ok(None);
    };
    let Ok(role) = role.parse::<Role>() else {
        return Ok(None);
    };
    if now - last_seen >= ACTIVITY_INTERVAL {
        let db = db.clone();
        tokio::spawn(async move {
            if let Err(e) = record_activity(&db, tenant, session_id, user, now).await {
                tracing::warn!(error = %e, "recording session activity failed");
            }
        });
    }
    Ok(Some(Session {
        ctx: TenantCtx {
            tenant_id: tenant,
            user_id: UserId(user),
            role,
            ip,
        },
        csrf_token,
        user_id: user,
        email,
        first_name: first,
        last_name: last,
        role,
        department_id: dept,
        tenant_name,
        time_zone,
        brand_colour: trainflow_notifications::templates::brand_colour(&settings.0),
        logo_url: settings
            .0
            .get("logo_url")
            .and_then(|u| u.as_str())
            .filter(|u| u.starts_with("https://") || u.starts_with('/'))
            .map(str::to_string),
    }))
}

async fn record_activity(
    db: &Db,
    tenant: TenantId,
    session: Uuid,
    user: Uuid,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let mut tx = TenantTx::begin_system(db, tenant).await?;
    let cutoff = now - ACTIVITY_INTERVAL;
    sql!(tx.conn() => |c| sqlx::query(
        "update sessions set last_seen_at = $3 where tenant_id = $1 and id = $2 and last_seen_at <= $4")
        .bind(tenant).bind(session).bind(now).bind(cutoff).execute(&mut *c).await.map(drop))?;
    users::touch_last_active(&mut tx, user, now).await?;
    tx.commit().await
}

/// Ends a portal session.
pub async fn end_session(db: &Db, cookie: &str, ip: Option<String>) -> ApiResult<()> {
    let Some((tenant, secret)) = split_token(cookie) else {
        return Ok(());
    };
    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system(db, tenant).await?;
    let user: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "update sessions set revoked_at = $3 where tenant_id = $1 and token_hash = $2 and revoked_at is null returning user_id")
        .bind(tenant).bind(token_digest(secret)).bind(now).fetch_optional(&mut *c).await)?;
    if let Some(user) = user {
        audit::record(
            &mut tx,
            Entry::as_actor("user", Some(user), "auth.sign_out", ip).object("user", user),
            now,
        )
        .await?;
    }
    tx.commit().await
}
