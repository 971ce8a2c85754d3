//! Profile pictures. An upload is checked (PNG or JPEG, at most [`MAX_UPLOAD_BYTES`], at most
//! [`MAX_SIDE`] pixels a side, decoded under memory limits), cropped to a square, resized to
//! [`SIDE`] pixels and re-encoded as JPEG: the server never stores or serves the bytes it was
//! sent. Served with an `ETag` so browsers revalidate cheaply.

use std::io::Cursor;

use image::{imageops::FilterType, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, ApiError, ApiResult};
use uuid::Uuid;

/// The largest upload.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// The largest width or height an upload may have.
pub const MAX_SIDE: u32 = 8_000;
/// The stored picture's width and height.
pub const SIDE: u32 = 256;

/// A stored picture.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Avatar {
    pub content_type: String,
    pub image: Vec<u8>,
    pub etag: String,
}

/// Decodes, squares, resizes and re-encodes an upload (CPU work: call it off the runtime).
pub fn normalise(bytes: &[u8]) -> Result<Avatar, ApiError> {
    let not_an_image = || ApiError::field("file", "must be a PNG or JPEG image");
    let format = image::guess_format(bytes).map_err(|_| not_an_image())?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(not_an_image());
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ApiError::field(
            "file",
            format!("must be at most {MAX_SIDE} × {MAX_SIDE} pixels"),
        ),
        _ => not_an_image(),
    })?;
    let square = decoded.resize_to_fill(SIDE, SIDE, FilterType::Triangle);
    let mut out = Cursor::new(Vec::new());
    square
        .to_rgb8()
        .write_to(&mut out, ImageFormat::Jpeg)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding an avatar: {e}")))?;
    let image = out.into_inner();
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&image))[..32]);
    Ok(Avatar {
        content_type: "image/jpeg".into(),
        image,
        etag,
    })
}

/// Stores (or replaces) `user`'s picture.
pub async fn put(tx: &mut TenantTx, user: Uuid, a: &Avatar, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into user_avatars (tenant_id, user_id, content_type, image, etag, updated_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (tenant_id, user_id) do update
            set content_type = excluded.content_type, image = excluded.image,
                etag = excluded.etag, updated_at = excluded.updated_at")
        .bind(tenant).bind(user).bind(&a.content_type).bind(&a.image).bind(&a.etag).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Removes `user`'s picture; whether there was one.
pub async fn delete(tx: &mut TenantTx, user: Uuid) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "delete from user_avatars where tenant_id = $1 and user_id = $2")
        .bind(tenant).bind(user).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// `user`'s picture, if they have one (and are a person of the tenant who is not deleted).
pub async fn get(tx: &mut TenantTx, user: Uuid) -> ApiResult<Option<Avatar>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select a.content_type, a.image, a.etag from user_avatars a
           join users u on u.tenant_id = a.tenant_id and u.id = a.user_id and u.deleted_at is null
          where a.tenant_id = $1 and a.user_id = $2")
        .bind(tenant).bind(user).fetch_optional(&mut *c).await)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(width, height, |x, _| image::Rgb([(x % 256) as u8, 90, 160]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn an_upload_becomes_a_square_jpeg_of_the_stored_size() {
        let a = normalise(&png(640, 480)).unwrap();
        assert_eq!(a.content_type, "image/jpeg");
        let back = image::load_from_memory(&a.image).unwrap();
        assert_eq!((back.width(), back.height()), (SIDE, SIDE));
        assert_eq!(image::guess_format(&a.image).unwrap(), ImageFormat::Jpeg);
    }

    #[test]
    fn what_is_not_an_image_is_refused_at_the_field() {
        for bytes in [
            b"%PDF-1.7 not a picture".to_vec(),
            png(10, 10)[..40].to_vec(),
        ] {
            match normalise(&bytes) {
                Err(ApiError::Validation(f)) => assert!(f.0.contains_key("file"), "{f:?}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
