//! Profile pictures. An upload is checked as every picture is ([`trainflow_kernel::picture`]:
//! PNG or JPEG, at most [`MAX_UPLOAD_BYTES`] and [`MAX_SIDE`] pixels a side), cropped to a
//! square, resized to [`SIDE`] pixels and re-encoded as JPEG. Served with an `ETag` so browsers
//! revalidate cheaply.

use image::imageops::FilterType;
use time::OffsetDateTime;
use trainflow_kernel::{
    db::TenantTx,
    picture::{self, Picture},
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

pub use trainflow_kernel::picture::{MAX_SIDE, MAX_UPLOAD_BYTES};
/// The stored picture's width and height.
pub const SIDE: u32 = 256;

/// A stored profile picture.
pub type Avatar = Picture;

/// Decodes, squares, resizes and re-encodes an upload (CPU work: call it off the runtime).
pub fn normalise(bytes: &[u8]) -> Result<Avatar, ApiError> {
    let decoded = picture::decode(bytes)?;
    picture::jpeg(&decoded.resize_to_fill(SIDE, SIDE, FilterType::Triangle))
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
    use std::io::Cursor;

    use image::ImageFormat;

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
}
