//! The organisation's logo. An upload is checked as every picture is
//! ([`trainflow_kernel::picture`]), shrunk to fit [`MAX_WIDTH`] × [`MAX_HEIGHT`] (never
//! enlarged, proportions kept) and re-encoded as PNG, transparency kept. While it is set, the
//! tenant's `settings.logo_url` is its public address ([`path`]), which the portal's header and
//! the emails' layout show; the address changes with the picture, so it may be cached long.

use image::imageops::FilterType;
use time::OffsetDateTime;
use trainflow_kernel::{
    db::TenantTx,
    picture::{self, Picture},
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

/// The widest a stored logo is.
pub const MAX_WIDTH: u32 = 480;
/// The tallest a stored logo is.
pub const MAX_HEIGHT: u32 = 160;

/// Decodes, shrinks to fit and re-encodes an upload (CPU work: call it off the runtime).
pub fn normalise(bytes: &[u8]) -> Result<Picture, ApiError> {
    let decoded = picture::decode(bytes)?;
    let fitted = if decoded.width() > MAX_WIDTH || decoded.height() > MAX_HEIGHT {
        decoded.resize(MAX_WIDTH, MAX_HEIGHT, FilterType::Lanczos3)
    } else {
        decoded
    };
    picture::png(&fitted)
}

/// The public address of `tenant`'s logo whose `ETag` is `etag` (a path on this site).
pub fn path(tenant: Uuid, etag: &str) -> String {
    format!(
        "/api/v1/branding/{tenant}/logo?v={}",
        etag.trim_matches('"')
    )
}

/// Whether `url` is an address [`path`] made for `tenant` (an uploaded logo, not one elsewhere).
pub fn is_uploaded(tenant: Uuid, url: &str) -> bool {
    url.starts_with(&format!("/api/v1/branding/{tenant}/logo"))
}

/// Stores (or replaces) the tenant's logo.
pub async fn put(tx: &mut TenantTx, logo: &Picture, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into tenant_logos (tenant_id, content_type, image, etag, updated_at)
         values ($1, $2, $3, $4, $5)
         on conflict (tenant_id) do update
            set content_type = excluded.content_type, image = excluded.image,
                etag = excluded.etag, updated_at = excluded.updated_at")
        .bind(tenant).bind(&logo.content_type).bind(&logo.image).bind(&logo.etag).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Removes the tenant's logo; whether there was one.
pub async fn delete(tx: &mut TenantTx) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query("delete from tenant_logos where tenant_id = $1")
        .bind(tenant).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// The tenant's logo, if it has one.
pub async fn get(tx: &mut TenantTx) -> ApiResult<Option<Picture>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select content_type, image, etag from tenant_logos where tenant_id = $1")
        .bind(tenant).fetch_optional(&mut *c).await)?)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::ImageFormat;

    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(width, height, |x, _| {
            image::Rgba([(x % 256) as u8, 90, 160, 128])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_large_logo_shrinks_to_fit_keeping_its_proportions_and_transparency() {
        let logo = normalise(&png(1200, 300)).unwrap();
        assert_eq!(logo.content_type, "image/png");
        let back = image::load_from_memory(&logo.image).unwrap();
        assert_eq!((back.width(), back.height()), (480, 120));
        assert_eq!(back.to_rgba8().get_pixel(0, 0)[3], 128);
    }

    #[test]
    fn a_small_logo_is_not_enlarged() {
        let back = image::load_from_memory(&normalise(&png(100, 40)).unwrap().image).unwrap();
        assert_eq!((back.width(), back.height()), (100, 40));
    }

    #[test]
    fn the_address_changes_with_the_picture() {
        let t = Uuid::nil();
        let p = path(t, "\"abc\"");
        assert_eq!(p, format!("/api/v1/branding/{t}/logo?v=abc"));
        assert!(is_uploaded(t, &p));
        assert!(!is_uploaded(t, "https://cdn.example.com/logo.png"));
    }
}
