//! Use cases of the tenancy context behind the API: each opens the transaction it needs, checks,
//! changes data, audits in the same transaction, and commits — all or nothing.

use time::OffsetDateTime;
use trainflow_identity::{signin::AuthDeps, throttle};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::{Db, TenantTx},
    domain::bounded,
    ApiError, ApiResult, FieldErrors,
};

use crate::{
    api::{OperatorToken, UpdateTenant},
    tenants::{self, Tenant},
};

const INVALID: &str = "invalid email or password";

/// Signs a platform operator in: checks the password with the sign-in back-off (per address and
/// per email) and issues an operator access token.
pub async fn operator_sign_in(
    deps: &AuthDeps,
    email: &str,
    password: String,
    ip: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<OperatorToken> {
    let email = email.trim().to_lowercase();
    let keys = throttle::Keys::new("@platform", &email, ip.as_deref());
    throttle::check(&deps.db, &keys, now).await?;
    let found = tenants::find_operator(&deps.db, &email).await?;
    let (id, hash) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    if !deps.hasher.verify(password, hash).await? {
        throttle::record_failure(&deps.db, &keys, now).await?;
        return Err(ApiError::Unauthorized(INVALID));
    }
    throttle::record_success(&deps.db, &keys).await?;
    let id = id.ok_or(ApiError::Unauthorized(INVALID))?;
    let token = deps.keys.issue_platform(id, now.unix_timestamp())?;
    Ok(OperatorToken {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: deps.keys.access_ttl_secs,
    })
}

/// The caller's tenant and its settings.
pub async fn my_tenant(db: &Db, ctx: &TenantCtx) -> ApiResult<Tenant> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let tenant = tenants::current(&mut tx).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// Changes the caller's tenant name, time zone, locale and settings (administrators), audited
/// as `tenant.update_settings` with the settings before and after.
pub async fn update_tenant(
    db: &Db,
    ctx: &TenantCtx,
    body: UpdateTenant,
    now: OffsetDateTime,
) -> ApiResult<Tenant> {
    let mut e = FieldErrors::new();
    let name = e.check("name", bounded(&body.name, 1, 200));
    let tz = e.check("time_zone", tenants::parse_time_zone(&body.time_zone));
    let locale = e.check("locale", bounded(&body.locale, 2, 10));
    if let Err(ApiError::Validation(more)) = body.settings.validate() {
        for (k, v) in more.0 {
            for m in v {
                e.add(k.clone(), m);
            }
        }
    }
    e.into_result()?;
    let (Some(name), Some(tz), Some(locale)) = (name, tz, locale) else {
        return Err(ApiError::field("name", "is required"));
    };
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    let before = tenants::current(&mut tx).await?;
    tenants::update_settings(&mut tx, &name, &tz, &locale, &body.settings, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "tenant.update_settings")
            .object("tenant", ctx.tenant_id.0)
            .change(
                serde_json::to_value(&before.settings).ok(),
                serde_json::to_value(&body.settings).ok(),
            ),
        now,
    )
    .await?;
    let after = tenants::current(&mut tx).await?;
    tx.commit().await?;
    Ok(after)
}
