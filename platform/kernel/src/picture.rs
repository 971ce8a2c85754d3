//! Pictures people upload (profile pictures, an organisation's logo). An upload is checked
//! (PNG or JPEG, at most [`MAX_UPLOAD_BYTES`], at most [`MAX_SIDE`] pixels a side, decoded under
//! memory limits) and re-encoded by the server: it never stores or serves the bytes it was
//! sent. Each stored picture carries an `ETag`, so browsers revalidate cheaply.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::ApiError;

/// The largest upload.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// The largest width or height an upload may have.
pub const MAX_SIDE: u32 = 8_000;

/// A picture as the server stores and serves it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Picture {
    pub content_type: String,
    pub image: Vec<u8>,
    pub etag: String,
}

/// Decodes an upload, refusing at the field `file` what is not a PNG or JPEG within the limits
/// (CPU work: call it off the runtime).
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ApiError> {
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
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ApiError::field(
            "file",
            format!("must be at most {MAX_SIDE} × {MAX_SIDE} pixels"),
        ),
        _ => not_an_image(),
    })
}

/// `picture` encoded as JPEG (photographs: no transparency).
pub fn jpeg(picture: &DynamicImage) -> Result<Picture, ApiError> {
    encode(
        &DynamicImage::ImageRgb8(picture.to_rgb8()),
        ImageFormat::Jpeg,
    )
}

/// `picture` encoded as PNG, transparency kept (logos).
pub fn png(picture: &DynamicImage) -> Result<Picture, ApiError> {
    encode(
        &DynamicImage::ImageRgba8(picture.to_rgba8()),
        ImageFormat::Png,
    )
}

fn encode(picture: &DynamicImage, format: ImageFormat) -> Result<Picture, ApiError> {
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, format)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding a picture: {e}")))?;
    let image = out.into_inner();
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&image))[..32]);
    Ok(Picture {
        content_type: format.to_mime_type().into(),
        image,
        etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(width: u32, height: u32) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(width, height, |x, _| image::Rgb([(x % 256) as u8, 90, 160]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn what_is_not_an_image_is_refused_at_the_field() {
        for bytes in [
            b"%PDF-1.7 not a picture".to_vec(),
            png_of(10, 10)[..40].to_vec(),
        ] {
            match decode(&bytes) {
                Err(ApiError::Validation(f)) => assert!(f.0.contains_key("file"), "{f:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn pictures_are_re_encoded_with_their_type_and_a_stable_etag() {
        let decoded = decode(&png_of(30, 20)).unwrap();
        let a = png(&decoded).unwrap();
        assert_eq!(a.content_type, "image/png");
        assert_eq!(a.etag, png(&decoded).unwrap().etag);
        assert_eq!(jpeg(&decoded).unwrap().content_type, "image/jpeg");
    }
}
