//! Lesson materials: files the catalogue's builders attach to a lesson, kept in the database
//! with the type the server recognised in their bytes, and served only to people who may see
//! the course.

use poem_openapi::Object;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, ApiError, ApiResult};
use uuid::Uuid;

use crate::catalogue::Lesson;

/// The largest material, in bytes (20 MiB).
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// The most materials a lesson holds.
pub const MAX_PER_LESSON: i64 = 20;
/// The longest file name.
pub const MAX_NAME: usize = 200;

/// A lesson's material, without its content.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Material {
    pub id: Uuid,
    pub course_id: Uuid,
    pub lesson_id: Uuid,
    pub file_name: String,
    /// The type the server recognised in the file.
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

const COLUMNS: &str =
    "id, course_id, lesson_id, file_name, content_type, size_bytes, sha256, created_at, deleted_at";

/// What lessons accept: (extensions, content type, what its bytes look like).
const KINDS: &[(&[&str], &str, Signature)] = &[
    (&["pdf"], "application/pdf", Signature::Prefix(b"%PDF-")),
    (
        &["png"],
        "image/png",
        Signature::Prefix(b"\x89PNG\r\n\x1a\n"),
    ),
    (
        &["jpg", "jpeg"],
        "image/jpeg",
        Signature::Prefix(b"\xFF\xD8\xFF"),
    ),
    (&["mp4", "m4v"], "video/mp4", Signature::Mp4),
    (
        &["docx"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Signature::OfficeOpenXml,
    ),
    (
        &["xlsx"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Signature::OfficeOpenXml,
    ),
    (
        &["pptx"],
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Signature::OfficeOpenXml,
    ),
    (&["txt", "md"], "text/plain; charset=utf-8", Signature::Text),
    (&["csv"], "text/csv; charset=utf-8", Signature::Text),
];

/// The file types lessons accept, as the refusal and the API's description name them.
pub const ACCEPTED: &str = "PDF, PNG, JPEG, MP4, Word, Excel or PowerPoint (.docx, .xlsx, \
     .pptx), or UTF-8 text (.txt, .md, .csv)";

#[derive(Debug, Clone, Copy)]
enum Signature {
    Prefix(&'static [u8]),
    /// An ISO base media file: a `ftyp` box first.
    Mp4,
    /// A ZIP archive holding `[Content_Types].xml`, as Office Open XML files are.
    OfficeOpenXml,
    /// UTF-8 without NUL bytes.
    Text,
}

impl Signature {
    fn matches(self, bytes: &[u8]) -> bool {
        match self {
            Signature::Prefix(p) => bytes.starts_with(p),
            Signature::Mp4 => bytes.get(4..8) == Some(b"ftyp"),
            Signature::OfficeOpenXml => {
                bytes.starts_with(b"PK\x03\x04")
                    && bytes
                        .windows(b"[Content_Types].xml".len())
                        .any(|w| w == b"[Content_Types].xml")
            }
            Signature::Text => !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok(),
        }
    }
}

/// The content type of a file named `name` holding `bytes`: its extension must be one lessons
/// accept and its bytes must be what the extension says (a 422 on `body` otherwise).
pub fn recognise(name: &str, bytes: &[u8]) -> ApiResult<&'static str> {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let Some((_, content_type, signature)) = KINDS
        .iter()
        .find(|(exts, _, _)| exts.contains(&ext.as_str()))
    else {
        return Err(ApiError::field(
            "filename",
            format!("must end in the extension of a file lessons accept: {ACCEPTED}"),
        ));
    };
    if !signature.matches(bytes) {
        return Err(ApiError::field(
            "body",
            format!("is not a .{ext} file: its content does not match its name"),
        ));
    }
    Ok(content_type)
}

/// The file name to keep of `raw`: tabs and line breaks become spaces, and what is left is
/// 1–[`MAX_NAME`] characters with no path (`/`, `\\`) and no other control character (a 422 on
/// `filename` otherwise, as the API's schema states).
pub fn clean_name(raw: &str) -> ApiResult<String> {
    let name: String = raw
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::field(
            "filename",
            format!("must be 1–{MAX_NAME} characters"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\'))
    {
        return Err(ApiError::field(
            "filename",
            "must be a plain file name: no path and no control characters",
        ));
    }
    Ok(name.to_string())
}

/// The live materials of a course's lessons, by lesson and upload.
pub async fn of_course(tx: &mut TenantTx, course: Uuid) -> ApiResult<Vec<Material>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS} from lesson_materials
          where tenant_id = $1 and course_id = $2 and deleted_at is null
          order by lesson_id, created_at, id"))
        .bind(tenant).bind(course).fetch_all(&mut *c).await)?)
}

/// The live materials of a lesson, by upload.
pub async fn of_lesson(tx: &mut TenantTx, lesson: Uuid) -> ApiResult<Vec<Material>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS} from lesson_materials
          where tenant_id = $1 and lesson_id = $2 and deleted_at is null order by created_at, id"))
        .bind(tenant).bind(lesson).fetch_all(&mut *c).await)?)
}

/// A material, live or (`deleted`) deleted.
pub async fn get(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Material> {
    let tenant = tx.tenant();
    let row: Option<Material> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS} from lesson_materials
          where tenant_id = $1 and id = $2 and (deleted_at is not null) = $3"))
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// The content of a live material.
pub async fn content(tx: &mut TenantTx, id: Uuid) -> ApiResult<Vec<u8>> {
    let tenant = tx.tenant();
    let row: Option<Vec<u8>> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select content from lesson_materials where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// Refuses a lesson's material past [`MAX_PER_LESSON`] (409 on `lesson_id`).
pub async fn check_room(tx: &mut TenantTx, lesson: Uuid) -> ApiResult<()> {
    let tenant = tx.tenant();
    let n: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from lesson_materials where tenant_id = $1 and lesson_id = $2 and deleted_at is null")
        .bind(tenant).bind(lesson).fetch_one(&mut *c).await)?;
    if n >= MAX_PER_LESSON {
        return Err(ApiError::Conflict {
            field: "lesson_id".into(),
            message: format!("a lesson holds at most {MAX_PER_LESSON} materials: remove one first"),
        });
    }
    Ok(())
}

/// Stores a checked file as a material of `lesson`.
pub async fn insert(
    tx: &mut TenantTx,
    lesson: &Lesson,
    file_name: String,
    content_type: &str,
    bytes: &[u8],
    by: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Material> {
    let m = Material {
        id: Uuid::now_v7(),
        course_id: lesson.course_id,
        lesson_id: lesson.id,
        file_name,
        content_type: content_type.to_string(),
        size_bytes: bytes.len() as i64,
        sha256: hex::encode(Sha256::digest(bytes)),
        created_at: now,
        deleted_at: None,
    };
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into lesson_materials (tenant_id, id, course_id, lesson_id, file_name, content_type,
                size_bytes, sha256, content, uploaded_by, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)")
        .bind(tenant).bind(m.id).bind(m.course_id).bind(m.lesson_id).bind(&m.file_name)
        .bind(&m.content_type).bind(m.size_bytes).bind(&m.sha256).bind(bytes).bind(by).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(m)
}

/// Soft-deletes (`deleted`) or restores a material.
pub async fn set_deleted(
    tx: &mut TenantTx,
    m: &Material,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Material> {
    let at = deleted.then_some(now);
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update lesson_materials set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(m.id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(Material {
        deleted_at: at,
        ..m.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_what_its_bytes_say_and_its_name_agrees() {
        assert_eq!(
            recognise("notes.PDF", b"%PDF-1.7 ...").unwrap(),
            "application/pdf"
        );
        assert!(recognise("notes.pdf", b"MZ\x90\x00").is_err());
        assert!(recognise("setup.exe", b"MZ\x90\x00").is_err());
        assert!(recognise("notes", b"%PDF-1.7").is_err());
        assert_eq!(
            recognise("clip.mp4", b"\0\0\0\x18ftypmp42").unwrap(),
            "video/mp4"
        );
        assert!(recognise("a.txt", b"bin\0ary").is_err());
        assert!(recognise("slides.pptx", b"PK\x03\x04....[Content_Types].xml").is_ok());
        assert!(recognise("slides.pptx", b"PK\x03\x04 plain zip").is_err());
        assert!(clean_name("../etc/passwd").is_err());
        assert!(clean_name("a\u{7}.pdf").is_err());
        assert_eq!(clean_name("  Handout\t1.pdf ").unwrap(), "Handout 1.pdf");
    }
}
