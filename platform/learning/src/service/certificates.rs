//! The use cases of certificates: one's own (and one's team's, and for those who manage courses
//! everyone's), the PDF, revoking and restoring, and the public check of a verification code.

use poem_openapi::Object;
use serde::Serialize;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::TenantTx,
    envelope::Page,
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

use super::{in_team, manages, team_of, today, Whose};
use crate::{
    certificates::{self, Certificate, CertificateFilter, CertificateStatus},
    Learning,
};

/// Which certificates to list.
#[derive(Debug, Clone)]
pub struct CertificateQuery {
    pub whose: Whose,
    pub user_id: Option<Uuid>,
    pub course_id: Option<Uuid>,
}

/// Certificates, newest first: the caller's, their team's, or everyone's (those who manage
/// courses); `user_id` narrows to one person the caller may see.
pub async fn list_certificates(
    svc: &Learning,
    ctx: &TenantCtx,
    q: CertificateQuery,
    page: Page,
    now: OffsetDateTime,
) -> ApiResult<(Vec<Certificate>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let me = ctx.user_id.0;
    let mut people = match q.whose {
        Whose::Mine => Some(vec![me]),
        Whose::Team => Some(team_of(&mut tx, &ctx).await?),
        Whose::All if manages(&ctx) => None,
        Whose::All => return Err(ApiError::Forbidden),
    };
    if let Some(u) = q.user_id {
        if !(u == me || manages(&ctx) || in_team(&mut tx, &ctx, u).await?) {
            return Err(ApiError::Forbidden);
        }
        people = Some(match people {
            Some(p) if !p.contains(&u) => Vec::new(),
            _ => vec![u],
        });
    }
    let filter = CertificateFilter {
        people,
        course_id: q.course_id,
    };
    let on = today(&mut tx, now).await?;
    let rows = certificates::list(&mut tx, &filter, page, on).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A certificate the caller may see: theirs, their team's, or (managing courses) anyone's.
async fn visible(
    tx: &mut TenantTx,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Certificate> {
    let on = today(tx, now).await?;
    let cert = certificates::get(tx, id, on).await?;
    if cert.user_id == ctx.user_id.0 || manages(ctx) || in_team(tx, ctx, cert.user_id).await? {
        Ok(cert)
    } else {
        Err(ApiError::NotFound)
    }
}

/// One certificate.
pub async fn certificate(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Certificate> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let cert = visible(&mut tx, &ctx, id, now).await?;
    tx.commit().await?;
    Ok(cert)
}

/// A certificate as a PDF, with its file name.
pub async fn certificate_pdf(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<(String, Vec<u8>)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let cert = visible(&mut tx, &ctx, id, now).await?;
    let tenant = tx.tenant();
    let (name, settings): (String, sqlx::types::Json<serde_json::Value>) = sql!(tx.conn() => |c| sqlx::query_as(
        "select name, settings from directory_tenants where id = $1")
        .bind(tenant).fetch_one(&mut *c).await)?;
    tx.commit().await?;
    let colour = trainflow_notifications::templates::brand_colour(&settings.0);
    let channel =
        |i: usize| u8::from_str_radix(&colour[i..i + 2], 16).map_or(0.2, |v| f32::from(v) / 255.0);
    let bytes = certificates::pdf(
        &cert,
        &name,
        &format!("{}{}", svc.public_url, verify_path(&cert.code)),
        (channel(1), channel(3), channel(5)),
    );
    Ok((format!("certificate-{}.pdf", cert.code), bytes))
}

/// The public page that checks `code` (the API's is `/api/v1/verifications/{code}`).
pub fn verify_path(code: &str) -> String {
    format!("/portal/verify/{code}")
}

/// Revokes a certificate with a reason (`Some`), or restores it (`None`).
pub async fn set_certificate_revoked(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    reason: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<Certificate> {
    let reason = match reason.map(|r| r.trim().to_string()) {
        Some(r) if r.is_empty() || r.chars().count() > 500 => {
            return Err(ApiError::field("reason", "must be 1–500 characters"))
        }
        other => other,
    };
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let on = today(&mut tx, now).await?;
    let before = certificates::get(&mut tx, id, on).await?;
    let revoked = before.status == CertificateStatus::Revoked;
    if reason.is_some() == revoked {
        return Err(ApiError::Conflict {
            field: "status".into(),
            message: if revoked {
                "the certificate is revoked already".into()
            } else {
                "the certificate is not revoked".into()
            },
        });
    }
    certificates::set_revoked(&mut tx, id, reason.as_deref(), now).await?;
    let action = if reason.is_some() {
        "certificate.revoke"
    } else {
        "certificate.restore"
    };
    audit::record(
        &mut tx,
        Entry::by(&ctx, action)
            .object("certificate", id)
            .detail(serde_json::json!({"reason": reason})),
        now,
    )
    .await?;
    let after = certificates::get(&mut tx, id, on).await?;
    tx.commit().await?;
    Ok(after)
}

/// What the public check of a code shows: only what the certificate states.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Verification {
    /// The code as checked, `XXXX-XXXX-XXXX-XXXX`.
    pub code: String,
    /// `valid` only while neither revoked nor past its validity.
    pub status: CertificateStatus,
    /// The organisation that issued it.
    pub issuer: String,
    pub holder_name: String,
    pub course_title: String,
    pub issued_on: Date,
    pub valid_until: Option<Date>,
}

/// Checks a verification code, without signing in: what the certificate states, or 404 when
/// no certificate has the code.
pub async fn verify(svc: &Learning, raw: &str, now: OffsetDateTime) -> ApiResult<Verification> {
    // What cannot be a code is no certificate's either.
    let code = certificates::normalise_code(raw).ok_or(ApiError::NotFound)?;
    let tenant = certificates::issuer(&svc.db, &code)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut tx = TenantTx::begin_system_read(&svc.db, tenant).await?;
    let issuer: Option<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select name from directory_tenants where id = $1 and status = 'active'")
        .bind(tenant).fetch_optional(&mut *c).await)?;
    let issuer = issuer.ok_or(ApiError::NotFound)?;
    let on = today(&mut tx, now).await?;
    let cert = certificates::by_code(&mut tx, &code, on)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Verification {
        code: cert.code,
        status: cert.status,
        issuer,
        holder_name: cert.holder_name,
        course_title: cert.course_title,
        issued_on: cert.issued_on,
        valid_until: cert.valid_until,
    })
}
