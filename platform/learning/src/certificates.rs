//! Certificates of completion: what completing a course issues. Each carries what it states
//! (the holder's name and the course's title as they were, the date, its validity) and a
//! verification code that anyone may check without signing in; the code's registry names only
//! the tenant that issued it. A certificate is revoked (soft-deleted) and restored by those
//! who manage courses. The PDF is drawn by the server with one of the PDF standard fonts.

use poem_openapi::Object;
use rand::Rng;
use serde::Serialize;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{db::TenantTx, envelope::Page, sql, ApiError, ApiResult, TenantId};
use uuid::Uuid;

use crate::{enrolments::Enrolment, text_enum};

text_enum! {
    /// What a certificate's check says: valid, past its validity, or revoked.
    CertificateStatus {
        Valid = "valid",
        Expired = "expired",
        Revoked = "revoked",
    }
}

/// A certificate of completion.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Certificate {
    pub id: Uuid,
    /// The verification code, `XXXX-XXXX-XXXX-XXXX`.
    pub code: String,
    pub user_id: Uuid,
    pub course_id: Uuid,
    /// The enrolment whose completion issued it.
    pub enrolment_id: Option<Uuid>,
    /// The holder's name as it was when issued.
    pub holder_name: String,
    /// The course's title as it was when issued.
    pub course_title: String,
    pub issued_on: Date,
    /// None: it does not expire.
    pub valid_until: Option<Date>,
    pub status: CertificateStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revoke_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    code: String,
    user_id: Uuid,
    course_id: Uuid,
    enrolment_id: Option<Uuid>,
    holder_name: String,
    course_title: String,
    issued_on: Date,
    valid_until: Option<Date>,
    revoked_at: Option<OffsetDateTime>,
    revoke_reason: Option<String>,
}

impl Row {
    fn at(self, today: Date) -> Certificate {
        let status = if self.revoked_at.is_some() {
            CertificateStatus::Revoked
        } else if self.valid_until.is_some_and(|d| d < today) {
            CertificateStatus::Expired
        } else {
            CertificateStatus::Valid
        };
        Certificate {
            id: self.id,
            code: self.code,
            user_id: self.user_id,
            course_id: self.course_id,
            enrolment_id: self.enrolment_id,
            holder_name: self.holder_name,
            course_title: self.course_title,
            issued_on: self.issued_on,
            valid_until: self.valid_until,
            status,
            revoked_at: self.revoked_at,
            revoke_reason: self.revoke_reason,
        }
    }
}

const COLUMNS: &str = "id, code, user_id, course_id, enrolment_id, holder_name, course_title, \
     issued_on, valid_until, revoked_at, revoke_reason";

/// The letters of a code: Crockford's base 32 (no I, L, O or U to misread).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh code of 16 letters (80 random bits) in groups of four.
pub fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let letters: Vec<char> = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..32)] as char)
        .collect();
    letters
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed: case, spaces and dashes do not matter, and the letters people confuse
/// with digits read as those digits. `None` when it cannot be a code.
pub fn normalise_code(raw: &str) -> Option<String> {
    let letters: Vec<char> = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if letters.len() != 16 || !letters.iter().all(|c| ALPHABET.contains(&(*c as u8))) {
        return None;
    }
    Some(
        letters
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-"),
    )
}

/// Issues the certificate of a completed enrolment, dated `on`; valid for the course's
/// `certificate_months` when it has them. Its id.
pub async fn issue(
    tx: &mut TenantTx,
    e: &Enrolment,
    on: Date,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let (title, months): (String, Option<i32>) = sql!(tx.conn() => |c| sqlx::query_as(
        "select title, certificate_months from courses where tenant_id = $1 and id = $2")
        .bind(tenant).bind(e.course_id).fetch_one(&mut *c).await)?;
    let valid_until = months.and_then(|m| add_months(on, m));
    let holder = if e.person_name.trim().is_empty() {
        "Unnamed person".to_string()
    } else {
        e.person_name.trim().to_string()
    };
    let id = Uuid::now_v7();
    let code = new_code();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into certificate_codes (code, tenant_id) values ($1, $2)")
        .bind(&code).bind(tenant).execute(&mut *c).await.map(drop))?;
    sql!(tx.conn() => |c| sqlx::query(
        "insert into course_certificates (tenant_id, id, code, user_id, course_id, enrolment_id,
                holder_name, course_title, issued_on, valid_until, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(tenant).bind(id).bind(&code).bind(e.user_id).bind(e.course_id).bind(e.id)
        .bind(&holder).bind(&title).bind(on).bind(valid_until).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(id)
}

/// `on` plus `months`, on the same day of the month or the month's last.
fn add_months(on: Date, months: i32) -> Option<Date> {
    let total = on.year() * 12 + i32::from(u8::from(on.month())) - 1 + months;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).ok()?;
    let day = on.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

/// Which certificates to list.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    /// Only these people's (none: everyone's).
    pub people: Option<Vec<Uuid>>,
    pub course_id: Option<Uuid>,
}

/// One page of certificates, newest first, and the total.
pub async fn list(
    tx: &mut TenantTx,
    filter: &CertificateFilter,
    page: Page,
    today: Date,
) -> ApiResult<(Vec<Certificate>, i64)> {
    let tenant = tx.tenant();
    let people = filter.people.clone();
    if people.as_ref().is_some_and(Vec::is_empty) {
        return Ok((Vec::new(), 0));
    }
    // One filter for the page and the count, written out once for both backends.
    macro_rules! filtered {
        ($select:expr) => {{
            let mut q = sqlx::QueryBuilder::new(format!(
                "select {} from course_certificates where tenant_id = ",
                $select
            ));
            q.push_bind(tenant);
            if let Some(people) = &people {
                q.push(" and user_id in (");
                let mut s = q.separated(", ");
                for p in people {
                    s.push_bind(*p);
                }
                q.push(")");
            }
            if let Some(course) = filter.course_id {
                q.push(" and course_id = ").push_bind(course);
            }
            q
        }};
    }
    let rows: Vec<Row> = sql!(tx.conn() => |c| {
        let mut q = filtered!(COLUMNS);
        q.push(" order by issued_on desc, id desc limit ").push_bind(page.limit())
            .push(" offset ").push_bind(page.offset());
        q.build_query_as().fetch_all(&mut *c).await
    })?;
    let total: i64 = sql!(tx.conn() => |c| {
        let mut q = filtered!("count(*)");
        q.build_query_scalar().fetch_one(&mut *c).await
    })?;
    Ok((rows.into_iter().map(|r| r.at(today)).collect(), total))
}

/// A certificate by id.
pub async fn get(tx: &mut TenantTx, id: Uuid, today: Date) -> ApiResult<Certificate> {
    let tenant = tx.tenant();
    let row: Option<Row> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS} from course_certificates where tenant_id = $1 and id = $2"))
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    Ok(row.ok_or(ApiError::NotFound)?.at(today))
}

/// A certificate by its (normalised) code.
pub async fn by_code(tx: &mut TenantTx, code: &str, today: Date) -> ApiResult<Option<Certificate>> {
    let tenant = tx.tenant();
    let row: Option<Row> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS} from course_certificates where tenant_id = $1 and code = $2"))
        .bind(tenant).bind(code).fetch_optional(&mut *c).await)?;
    Ok(row.map(|r| r.at(today)))
}

/// The tenant that issued `code`, if any issued it.
pub async fn issuer(db: &trainflow_kernel::db::Db, code: &str) -> ApiResult<Option<TenantId>> {
    let mut tx = db.platform_tx().await?;
    let tenant: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select tenant_id from certificate_codes where code = $1")
        .bind(code).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(tenant.map(TenantId))
}

/// Revokes a certificate with a reason, or (`reason` none) restores it.
pub async fn set_revoked(
    tx: &mut TenantTx,
    id: Uuid,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let at = reason.map(|_| now);
    sql!(tx.conn() => |c| sqlx::query(
        "update course_certificates set revoked_at = $3, revoke_reason = $4
          where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(at).bind(reason).execute(&mut *c).await.map(drop))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The PDF

/// Text in the PDF's WinAnsi encoding: Latin-1 as it is, a few typographic marks at their
/// places, anything else as `?` (the standard fonts have no other glyphs).
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            '—' => 0x97,
            'Œ' => 0x8c,
            'œ' => 0x9c,
            'Š' => 0x8a,
            'š' => 0x9a,
            'Ž' => 0x8e,
            'ž' => 0x9e,
            _ => b'?',
        })
        .collect()
}

/// `text` broken into lines of at most `width` characters, at spaces where it can be.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The certificate as a one-page PDF (A4, landscape): the organisation, the holder, the
/// course, the dates, and where to check the code.
pub fn pdf(
    cert: &Certificate,
    organisation: &str,
    verify_url: &str,
    brand: (f32, f32, f32),
) -> Vec<u8> {
    use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

    let (catalog, tree, page, regular, bold, contents, info) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
        Ref::new(7),
    );
    let (w, h) = (842.0_f32, 595.0_f32);
    let mut doc = Pdf::new();
    doc.catalog(catalog).pages(tree);
    doc.pages(tree).kids([page]).count(1);
    let mut p = doc.page(page);
    p.parent(tree)
        .media_box(Rect::new(0.0, 0.0, w, h))
        .contents(contents);
    p.resources()
        .fonts()
        .pair(Name(b"F1"), regular)
        .pair(Name(b"F2"), bold);
    drop(p);
    doc.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    doc.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));

    let mut c = Content::new();
    // A frame in the brand's colour.
    c.set_stroke_rgb(brand.0, brand.1, brand.2)
        .set_line_width(6.0)
        .rect(28.0, 28.0, w - 56.0, h - 56.0)
        .stroke();
    c.set_line_width(1.0)
        .rect(40.0, 40.0, w - 80.0, h - 80.0)
        .stroke();
    let left = 80.0;
    let mut y = h - 110.0;
    let line = |c: &mut Content, font: &[u8], size: f32, text: &str, y: f32| {
        c.begin_text()
            .set_font(Name(font), size)
            .next_line(left, y)
            .show(Str(&win_ansi(text)))
            .end_text();
    };
    c.set_fill_rgb(brand.0, brand.1, brand.2);
    line(&mut c, b"F2", 16.0, organisation, y);
    c.set_fill_rgb(0.1, 0.1, 0.1);
    y -= 56.0;
    line(&mut c, b"F2", 34.0, "Certificate of completion", y);
    y -= 44.0;
    line(&mut c, b"F1", 14.0, "This certifies that", y);
    y -= 38.0;
    for l in wrap(&cert.holder_name, 40) {
        line(&mut c, b"F2", 28.0, &l, y);
        y -= 34.0;
    }
    y -= 4.0;
    line(&mut c, b"F1", 14.0, "has completed the course", y);
    y -= 32.0;
    for l in wrap(&cert.course_title, 52).into_iter().take(3) {
        line(&mut c, b"F2", 22.0, &l, y);
        y -= 28.0;
    }
    y -= 10.0;
    line(
        &mut c,
        b"F1",
        13.0,
        &format!("Completed on {}", cert.issued_on),
        y,
    );
    y -= 20.0;
    let validity = match cert.valid_until {
        Some(d) => format!("Valid until {d}"),
        None => "Does not expire".into(),
    };
    line(&mut c, b"F1", 13.0, &validity, y);
    line(
        &mut c,
        b"F2",
        12.0,
        &format!("Verification code: {}", cert.code),
        86.0,
    );
    line(
        &mut c,
        b"F1",
        10.0,
        &format!("Check it at {verify_url}"),
        70.0,
    );
    let data = c.finish();
    doc.stream(contents, &data);
    doc.document_info(info)
        .title(TextStr(&format!("Certificate: {}", cert.course_title)))
        .producer(TextStr("TrainFlow"));
    doc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sixteen_letters_in_groups_and_read_back_as_typed() {
        let code = new_code();
        assert_eq!(code.len(), 19);
        assert_eq!(
            normalise_code(&code.to_lowercase().replace('-', " ")),
            Some(code.clone())
        );
        assert_eq!(
            normalise_code("oooo-iiii-llll-0000"),
            Some("0000-1111-1111-0000".into())
        );
        assert_eq!(normalise_code("ABCD"), None);
        assert_eq!(normalise_code("UUUU-UUUU-UUUU-UUUU"), None);
    }

    #[test]
    fn months_are_added_to_the_end_of_short_months() {
        let d =
            |y, m, d| Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
        assert_eq!(add_months(d(2026, 1, 31), 1), Some(d(2026, 2, 28)));
        assert_eq!(add_months(d(2026, 11, 15), 14), Some(d(2028, 1, 15)));
    }

    #[test]
    fn text_is_wrapped_at_spaces_and_long_words_cut() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(
            win_ansi("Zoë – €"),
            vec![b'Z', b'o', 0xeb, b' ', 0x96, b' ', 0x80]
        );
    }
}
