//! Password reset, email verification and welcome messages by link.
//!
//! A link's token is `<tenant id>.<256 random bits>`; only its SHA-256 is stored, bound to one
//! person and one purpose. A reset link lasts an hour and a verification link a week. Each is
//! redeemed once, atomically (`update … where used_at is null and expires_at > now`), in the
//! same transaction as what it does. Asking for a reset answers the same whether or not the
//! account exists, so the endpoint tells nobody who has one. The link travels by email only:
//! the in-app notification that goes with it never carries the token.

use poem_openapi::{Object, OpenApi, Tags};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{client_ip, Permission, TenantAuth, TenantCtx},
    body::Body,
    db::TenantTx,
    envelope::NoContent,
    now,
    secret::{link_token, parse_link_token},
    sql, ApiError, ApiResult, TenantId,
};
use trainflow_notifications::{notify, notify_many, Channel, Kind, Notice, Priority};
use uuid::Uuid;

use crate::{password::check_policy, signin::AuthDeps, users};

const RESET_TTL: Duration = Duration::hours(1);
const VERIFY_TTL: Duration = Duration::days(7);
/// How long the link of a welcome message works.
const WELCOME_TTL: Duration = Duration::days(7);
/// People per statement of [`welcome`].
const WELCOME_PAGE: usize = 500;

#[derive(Tags)]
enum Tag {
    /// Tokens for API clients.
    Auth,
}

/// The account-link API.
pub struct AccountLinksApi {
    pub deps: AuthDeps,
    /// The portal's URL, for the links in emails.
    pub public_url: String,
}

/// Body of `POST /auth/password-reset`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ResetRequest {
    /// The organisation's slug (or host name).
    #[oai(validator(max_length = 253))]
    pub tenant: String,
    #[oai(validator(max_length = 254))]
    pub email: String,
}

/// Body of `POST /auth/password-reset/confirm`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ResetConfirm {
    /// The token from the emailed link.
    #[oai(validator(max_length = 200))]
    pub token: String,
    pub new_password: crate::password::NewPassword,
}

/// Body of `POST /auth/verify-email`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct VerifyConfirm {
    #[oai(validator(max_length = 200))]
    pub token: String,
}

async fn issue(
    tx: &mut TenantTx,
    user: Uuid,
    purpose: &str,
    ttl: Duration,
    at: OffsetDateTime,
) -> ApiResult<String> {
    let tenant = tx.tenant();
    let (token, digest) = link_token(tenant);
    sql!(tx.conn() => |c| sqlx::query(
        "insert into account_links (tenant_id, id, token_hash, user_id, purpose, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)")
        .bind(tenant).bind(Uuid::now_v7()).bind(&digest).bind(user).bind(purpose)
        .bind(at + ttl).bind(at).execute(&mut *c).await.map(drop))?;
    Ok(token)
}

/// Redeems a link of `purpose`: the person it was for, or 401 when it is unknown, used or
/// expired (one answer for all three: the token is the credential).
async fn redeem(
    tx: &mut TenantTx,
    digest: &str,
    purpose: &str,
    at: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let user: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "update account_links set used_at = $4
          where tenant_id = $1 and token_hash = $2 and purpose = $3 and used_at is null and expires_at > $4
          returning user_id")
        .bind(tenant).bind(digest).bind(purpose).bind(at).fetch_optional(&mut *c).await)?;
    user.ok_or(ApiError::Unauthorized(
        "this link is invalid, already used or expired; ask for a new one",
    ))
}

fn tenant_tx_for(token: &str) -> ApiResult<(TenantId, String)> {
    parse_link_token(token).ok_or(ApiError::Unauthorized(
        "this link is invalid, already used or expired; ask for a new one",
    ))
}

#[OpenApi(prefix_path = "/api/v1")]
impl AccountLinksApi {
    /// Ask for a password reset link by email. Always 204, whether or not the account exists.
    #[oai(path = "/auth/password-reset", method = "post", tag = "Tag::Auth")]
    async fn request_reset(
        &self,
        req: &poem::Request,
        body: Body<ResetRequest>,
    ) -> ApiResult<NoContent> {
        request_password_reset(
            &self.deps,
            &body.0.tenant,
            &body.0.email,
            client_ip(req),
            &self.public_url,
            now(),
        )
        .await?;
        Ok(NoContent::NoContent)
    }

    /// Choose a new password with the emailed link's token. Every session and refresh token of
    /// the account ends; the email counts as verified.
    #[oai(
        path = "/auth/password-reset/confirm",
        method = "post",
        tag = "Tag::Auth"
    )]
    async fn confirm_reset(
        &self,
        req: &poem::Request,
        body: Body<ResetConfirm>,
    ) -> ApiResult<NoContent> {
        reset_password(
            &self.deps,
            &body.0.token,
            &body.0.new_password,
            client_ip(req),
        )
        .await?;
        Ok(NoContent::NoContent)
    }

    /// Send the signed-in person a link that verifies their email address.
    #[oai(path = "/users/me/verify-email", method = "post", tag = "Tag::Auth")]
    async fn request_verification(&self, auth: TenantAuth) -> ApiResult<NoContent> {
        request_email_verification(&self.deps, &auth.0, &self.public_url, now()).await?;
        Ok(NoContent::NoContent)
    }

    /// Verify an email address with the emailed link's token.
    #[oai(path = "/auth/verify-email", method = "post", tag = "Tag::Auth")]
    async fn confirm_verification(
        &self,
        req: &poem::Request,
        body: Body<VerifyConfirm>,
    ) -> ApiResult<NoContent> {
        verify_email(&self.deps, &body.0.token, client_ip(req)).await?;
        Ok(NoContent::NoContent)
    }
}

/// Sends a password reset link to `email` of the organisation `tenant_key` (slug or host name).
/// An unknown or inactive organisation or account gets nothing, and the caller is told nothing
/// either way; a link sent is audited as `password.reset_requested` by an anonymous actor.
pub async fn request_password_reset(
    deps: &AuthDeps,
    tenant_key: &str,
    email: &str,
    ip: Option<String>,
    public_url: &str,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let Some(tenant) = crate::signin::find_tenant(&deps.db, tenant_key).await? else {
        return Ok(());
    };
    if tenant.status != "active" {
        return Ok(());
    }
    let mut tx = TenantTx::begin_system(&deps.db, TenantId(tenant.id)).await?;
    let login = users::Login::Email(email.trim().to_lowercase());
    let found = users::find_for_sign_in(&mut tx, &login).await?;
    if let Some(user) = found.map(|c| c.user).filter(|u| u.is_active) {
        let token = issue(&mut tx, user.id, "password_reset", RESET_TTL, now).await?;
        let url = format!(
            "{}/portal/reset-password?token={token}",
            public_url.trim_end_matches('/')
        );
        let mut notice = Notice::new(
            user.id,
            Kind::Account,
            Priority::High,
            "Password reset requested",
            "A link to choose a new password was sent to your email address. If you did \
             not ask for it, ignore it: your password stays as it is.",
        );
        notice.email_template = Some(("password_reset", vec![("reset_link", url)]));
        notice.required_channels = vec![Channel::Email];
        notice.sms = None;
        notify(&mut tx, &notice, public_url, now).await?;
        audit::record(
            &mut tx,
            Entry::as_actor("anonymous", None, "password.reset_requested", ip)
                .object("user", user.id),
            now,
        )
        .await?;
    }
    tx.commit().await
}

/// A person just added who may get a welcome.
#[derive(sqlx::FromRow)]
struct Newcomer {
    id: Uuid,
    email: Option<String>,
    employee_number: Option<String>,
}

/// Welcomes people just added who cannot sign in yet, inside the caller's transaction: each
/// gets the `welcome` email (or, without an email address, the welcome by SMS) with a link to
/// choose their password that works once, for a week, through the outbox. People who already
/// have a password or a PIN, who are inactive, or who have neither an email address nor a mobile number
/// (their foreman or administrator sets them a PIN) get nothing. A fixed number of statements
/// per 500 people, whatever their number. Returns how many were welcomed.
pub async fn welcome(
    tx: &mut TenantTx,
    people: &[Uuid],
    public_url: &str,
    now: OffsetDateTime,
) -> ApiResult<usize> {
    let tenant = tx.tenant();
    let base = public_url.trim_end_matches('/');
    let mut welcomed = 0;
    for page in people.chunks(WELCOME_PAGE) {
        let newcomers: Vec<Newcomer> = sql!(tx.conn() => |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "select id, email, employee_number from users
                  where tenant_id = ");
            qb.push_bind(tenant).push(
                " and is_active and deleted_at is null and password_hash is null and pin_hash is null
                  and (email is not null or phone is not null) and id in (");
            let mut list = qb.separated(", ");
            for id in page { list.push_bind(*id); }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await
        })?;
        if newcomers.is_empty() {
            continue;
        }
        let tokens: Vec<(Uuid, String, String)> = newcomers
            .iter()
            .map(|n| {
                let (token, digest) = link_token(tenant);
                (n.id, token, digest)
            })
            .collect();
        sql!(tx.conn() => |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "insert into account_links (tenant_id, id, token_hash, user_id, purpose, expires_at, created_at) ");
            qb.push_values(&tokens, |mut row, (user, _, digest)| {
                row.push_bind(tenant).push_bind(Uuid::now_v7()).push_bind(digest).push_bind(*user)
                    .push_bind("password_reset").push_bind(now + WELCOME_TTL).push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
        let notices: Vec<Notice> = newcomers
            .iter()
            .zip(&tokens)
            .map(|(n, (_, token, _))| {
                let link = format!("{base}/portal/reset-password?token={token}");
                let sign_in_as = match (&n.email, &n.employee_number) {
                    (Some(e), _) => e.clone(),
                    (None, Some(number)) => format!("employee number {number}"),
                    (None, None) => "the link above".into(),
                };
                let mut notice = Notice::new(
                    n.id,
                    Kind::Account,
                    Priority::Medium,
                    "Welcome to TrainFlow",
                    format!("Your account is ready: sign in as {sign_in_as}."),
                );
                notice.email_template = Some((
                    "welcome",
                    vec![
                        ("set_password_link", link.clone()),
                        ("sign_in_as", sign_in_as),
                        ("sign_in_link", format!("{base}/portal/login")),
                    ],
                ));
                notice.required_channels = vec![Channel::Email];
                // The link travels by SMS only to someone without email (who gets the email's
                // part by SMS); the in-app notice never carries it.
                notice.sms = n.email.is_none().then(|| {
                    format!(
                        "Welcome to TrainFlow. Choose your password (the link works once, for a week): {link}"
                    )
                });
                notice
            })
            .collect();
        notify_many(tx, &notices, public_url, now).await?;
        welcomed += notices.len();
    }
    Ok(welcomed)
}

/// Sends the signed-in person of `ctx` a link that verifies their email address.
pub async fn request_email_verification(
    deps: &AuthDeps,
    ctx: &TenantCtx,
    public_url: &str,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(&deps.db, ctx, Permission::SelfService).await?;
    let token = issue(
        &mut tx,
        ctx.user_id.0,
        "email_verification",
        VERIFY_TTL,
        now,
    )
    .await?;
    let url = format!(
        "{}/portal/verify-email?token={token}",
        public_url.trim_end_matches('/')
    );
    let mut notice = Notice::new(
        ctx.user_id.0,
        Kind::Account,
        Priority::Medium,
        "Verify your email address",
        "A verification link was sent to your email address.",
    );
    notice.email_template = Some(("email_verification", vec![("verify_link", url)]));
    notice.required_channels = vec![Channel::Email];
    notify(&mut tx, &notice, public_url, now).await?;
    tx.commit().await
}

/// Sets a new password with a reset link's token (the API and the portal both call this).
pub async fn reset_password(
    deps: &AuthDeps,
    token: &str,
    new_password: &str,
    ip: Option<String>,
) -> ApiResult<()> {
    check_policy(new_password).map_err(|m| ApiError::field("new_password", m))?;
    let (tenant, digest) = tenant_tx_for(token)?;
    let hash = deps
        .hasher
        .hash(new_password.to_string())
        .await
        .map_err(ApiError::Internal)?;
    let at = now();
    let mut tx = TenantTx::begin_system(&deps.db, tenant).await?;
    let user = redeem(&mut tx, &digest, "password_reset", at).await?;
    users::set_password(&mut tx, user, &hash, at).await?;
    users::revoke_credentials(&mut tx, user, at).await?;
    let t = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update users set email_verified_at = coalesce(email_verified_at, $3), failed_login_attempts = 0
          where tenant_id = $1 and id = $2")
        .bind(t).bind(user).bind(at).execute(&mut *c).await.map(drop))?;
    // Other reset links of the account stop working too.
    sql!(tx.conn() => |c| sqlx::query(
        "update account_links set used_at = $3
          where tenant_id = $1 and user_id = $2 and purpose = 'password_reset' and used_at is null")
        .bind(t).bind(user).bind(at).execute(&mut *c).await.map(drop))?;
    audit::record(
        &mut tx,
        Entry::as_actor("user", Some(user), "password.reset", ip).object("user", user),
        at,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Verifies an email address with a verification link's token.
pub async fn verify_email(deps: &AuthDeps, token: &str, ip: Option<String>) -> ApiResult<()> {
    let (tenant, digest) = tenant_tx_for(token)?;
    let at = now();
    let mut tx = TenantTx::begin_system(&deps.db, tenant).await?;
    let user = redeem(&mut tx, &digest, "email_verification", at).await?;
    let t = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update users set email_verified_at = coalesce(email_verified_at, $3) where tenant_id = $1 and id = $2")
        .bind(t).bind(user).bind(at).execute(&mut *c).await.map(drop))?;
    audit::record(
        &mut tx,
        Entry::as_actor("user", Some(user), "email.verified", ip).object("user", user),
        at,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
