//! Use cases of the tenancy context behind the API: each opens the transaction it needs, checks,
//! changes data, audits in the same transaction, and commits — all or nothing.

use time::OffsetDateTime;
use trainflow_identity::{signin::AuthDeps, throttle};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::{Db, TenantTx},
    domain::bounded,
    picture::{self, Picture},
    ApiError, ApiResult, FieldErrors,
};

use crate::{
    api::{OperatorToken, UpdateTenant},
    logos,
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

/// Sets the organisation's logo (administrators): the permission is checked before the upload
/// is read (up to [`picture::MAX_UPLOAD_BYTES`], 413 past it), then the picture is decoded,
/// shrunk and re-encoded off the runtime, stored, and `settings.logo_url` points at it;
/// audited as `tenant.logo_set`.
pub async fn set_logo(
    db: &Db,
    ctx: &TenantCtx,
    file: &mut trainflow_kernel::body::File,
    now: OffsetDateTime,
) -> ApiResult<Tenant> {
    TenantTx::begin(db, ctx, Permission::TenantSettings)
        .await?
        .0
        .commit()
        .await?;
    let bytes = file.read(picture::MAX_UPLOAD_BYTES).await?;
    let logo = tokio::task::spawn_blocking(move || logos::normalise(&bytes))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    let before = tenants::current(&mut tx).await?;
    logos::put(&mut tx, &logo, now).await?;
    set_logo_url(
        &mut tx,
        &before,
        Some(logos::path(before.id, &logo.etag)),
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "tenant.logo_set")
            .object("tenant", before.id)
            .detail(serde_json::json!({"bytes": logo.image.len(), "etag": logo.etag})),
        now,
    )
    .await?;
    let after = tenants::current(&mut tx).await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes the organisation's uploaded logo (administrators; idempotent): `settings.logo_url`
/// is cleared when it pointed at it. Audited as `tenant.logo_removed` when there was one.
pub async fn remove_logo(db: &Db, ctx: &TenantCtx, now: OffsetDateTime) -> ApiResult<Tenant> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::TenantSettings).await?;
    let before = tenants::current(&mut tx).await?;
    if logos::delete(&mut tx).await? {
        let uploaded = before
            .settings
            .logo_url
            .as_deref()
            .is_some_and(|u| logos::is_uploaded(before.id, u));
        if uploaded {
            set_logo_url(&mut tx, &before, None, now).await?;
        }
        audit::record(
            &mut tx,
            Entry::by(&ctx, "tenant.logo_removed").object("tenant", before.id),
            now,
        )
        .await?;
    }
    let after = tenants::current(&mut tx).await?;
    tx.commit().await?;
    Ok(after)
}

/// Points `settings.logo_url` of `tenant` at `url`, the rest as it is.
async fn set_logo_url(
    tx: &mut TenantTx,
    tenant: &Tenant,
    url: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let mut settings = tenant.settings.clone();
    settings.logo_url = url;
    let t = tenant;
    tenants::update_settings(tx, &t.name, &t.time_zone, &t.locale, &settings, now).await
}

/// The logo of tenant `id`, for anyone (emails show it to people who are not signed in): 404
/// when the tenant has none or is not active.
pub async fn public_logo(db: &Db, id: uuid::Uuid) -> ApiResult<Picture> {
    let mut tx = TenantTx::begin_system_read(db, trainflow_kernel::TenantId(id)).await?;
    let active = tenants::current(&mut tx)
        .await
        .ok()
        .is_some_and(|t| t.status == "active");
    let logo = if active {
        logos::get(&mut tx).await?
    } else {
        None
    };
    tx.commit().await?;
    logo.ok_or(ApiError::NotFound)
}
