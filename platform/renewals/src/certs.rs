//! Certification types, certification cycles and compliance.

use std::collections::BTreeMap;

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    db::{Backend, TenantTx},
    envelope::Page,
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

use crate::dates::{self, Status};

/// The reminder offsets when a tenant has not chosen its own.
pub const DEFAULT_OFFSETS: [i32; 4] = [90, 60, 30, 7];

/// What renewals need to know about the tenant: its today and its reminder offsets.
#[derive(Debug, Clone)]
pub struct TenantClock {
    pub today: Date,
    pub offsets: Vec<i32>,
    pub name: String,
}

/// The tenant's clock at `now`: its time zone's date, and its reminder offsets
/// (`settings.reminder_offsets_days`, default 90/60/30/7).
pub async fn clock(tx: &mut TenantTx, now: OffsetDateTime) -> ApiResult<TenantClock> {
    let tenant = tx.tenant();
    let (tz, settings, name): (String, sqlx::types::Json<serde_json::Value>, String) = sql!(tx.conn() => |c| sqlx::query_as(
        "select time_zone, settings, name from directory_tenants where id = $1")
        .bind(tenant).fetch_one(&mut *c).await)?;
    let offsets = settings
        .0
        .get("reminder_offsets_days")
        .and_then(|v| serde_json::from_value::<Vec<i32>>(v.clone()).ok())
        .filter(|v| !v.is_empty() && v.iter().all(|d| (0..=3650).contains(d)))
        .unwrap_or_else(|| DEFAULT_OFFSETS.to_vec());
    Ok(TenantClock {
        today: dates::local_today(&tz, now),
        offsets: dates::normalise_offsets(offsets),
        name,
    })
}

// ---------------------------------------------------------------------------------------------
// Types

/// A kind of certification the tenant tracks.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct CertificationType {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// Months a cycle is valid; none for certifications that do not expire.
    pub validity_months: Option<i32>,
    /// Days before expiry during which renewal is due (status `expiring`).
    pub renewal_window_days: i32,
    /// A renewal request must carry evidence before it can be approved.
    pub evidence_required: bool,
    /// Course ids whose completion renewal requires.
    #[sqlx(json)]
    pub required_courses: Vec<Uuid>,
}

const TYPE_COLUMNS: &str = "id, code, name, description, validity_months, renewal_window_days, \
     evidence_required, required_courses";

/// Body of `PATCH /certification-types/{id}` (and, with `code` and `name`, what a new type is
/// made of): a field left out or `null` keeps its value.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct TypeInput {
    /// Unique in the tenant.
    #[oai(
        nullable,
        validator(
            max_length = 50,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub code: Option<String>,
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: Option<String>,
    /// Blank clears it.
    #[oai(nullable, validator(max_length = 2000))]
    pub description: Option<String>,
    /// 1–240.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "240")))]
    pub validity_months: Option<i32>,
    /// 0–3650.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "3650")))]
    pub renewal_window_days: Option<i32>,
    #[oai(nullable)]
    pub evidence_required: Option<bool>,
    /// At most 50.
    #[oai(nullable, validator(max_items = 50))]
    pub required_courses: Option<Vec<Uuid>>,
}

/// The tenant's types by name: one `page` and the total, or all of them.
pub async fn types(
    tx: &mut TenantTx,
    page: Option<Page>,
) -> ApiResult<(Vec<CertificationType>, i64)> {
    let tenant = tx.tenant();
    let (limit, offset) = page.map_or((i64::MAX, 0), |p| (p.limit(), p.offset()));
    let rows: Vec<CertificationType> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {TYPE_COLUMNS} from certification_types where tenant_id = $1 and deleted_at is null
          order by name, id limit $2 offset $3"))
        .bind(tenant).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
    let total = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from certification_types where tenant_id = $1 and deleted_at is null")
        .bind(tenant).fetch_one(&mut *c).await)?;
    Ok((rows, total))
}

pub async fn get_type(tx: &mut TenantTx, id: Uuid) -> ApiResult<CertificationType> {
    let tenant = tx.tenant();
    let row: Option<CertificationType> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {TYPE_COLUMNS} from certification_types where tenant_id = $1 and id = $2 and deleted_at is null"))
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// Checks `input` merged over `current` (create: no current) and returns the complete type.
pub fn validate_type(
    current: Option<&CertificationType>,
    input: TypeInput,
) -> ApiResult<CertificationType> {
    let mut e = trainflow_kernel::FieldErrors::new();
    let pick = |new: Option<String>, old: Option<&String>| new.or_else(|| old.cloned());
    let code = pick(input.code, current.map(|c| &c.code)).unwrap_or_default();
    let code = e.check("code", trainflow_kernel::domain::bounded(&code, 1, 50));
    let name = pick(input.name, current.map(|c| &c.name)).unwrap_or_default();
    let name = e.check("name", trainflow_kernel::domain::bounded(&name, 1, 200));
    let description = input
        .description
        .or_else(|| current.and_then(|c| c.description.clone()))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let validity = input
        .validity_months
        .or_else(|| current.and_then(|c| c.validity_months));
    if validity.is_some_and(|m| !(1..=240).contains(&m)) {
        e.add("validity_months", "must be between 1 and 240");
    }
    let window = input
        .renewal_window_days
        .or(current.map(|c| c.renewal_window_days))
        .unwrap_or(90);
    if !(0..=3650).contains(&window) {
        e.add("renewal_window_days", "must be between 0 and 3650");
    }
    let courses = input
        .required_courses
        .or_else(|| current.map(|c| c.required_courses.clone()))
        .unwrap_or_default();
    if courses.len() > 50 {
        e.add("required_courses", "at most 50 courses");
    }
    e.into_result()?;
    Ok(CertificationType {
        id: current.map_or_else(Uuid::now_v7, |c| c.id),
        code: code.expect("checked"),
        name: name.expect("checked"),
        description,
        validity_months: validity,
        renewal_window_days: window,
        evidence_required: input
            .evidence_required
            .or(current.map(|c| c.evidence_required))
            .unwrap_or(false),
        required_courses: courses,
    })
}

/// Inserts or updates `t`; a duplicate code is a 409 on `code`.
pub async fn save_type(
    tx: &mut TenantTx,
    t: &CertificationType,
    create: bool,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let taken: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from certification_types where tenant_id = $1 and code = $2 and id <> $3")
        .bind(tenant).bind(&t.code).bind(t.id).fetch_optional(&mut *c).await)?;
    if taken.is_some() {
        return Err(ApiError::Conflict {
            field: "code".into(),
            message: "another certification type has this code".into(),
        });
    }
    let courses = sqlx::types::Json(&t.required_courses);
    if create {
        sql!(tx.conn() => |c| sqlx::query(
            "insert into certification_types (tenant_id, id, code, name, description, validity_months,
                    renewal_window_days, evidence_required, required_courses, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)")
            .bind(tenant).bind(t.id).bind(&t.code).bind(&t.name).bind(&t.description)
            .bind(t.validity_months).bind(t.renewal_window_days).bind(t.evidence_required)
            .bind(courses).bind(now).execute(&mut *c).await.map(drop))?;
    } else {
        sql!(tx.conn() => |c| sqlx::query(
            "update certification_types set code = $3, name = $4, description = $5, validity_months = $6,
                    renewal_window_days = $7, evidence_required = $8, required_courses = $9, updated_at = $10
              where tenant_id = $1 and id = $2")
            .bind(tenant).bind(t.id).bind(&t.code).bind(&t.name).bind(&t.description)
            .bind(t.validity_months).bind(t.renewal_window_days).bind(t.evidence_required)
            .bind(courses).bind(now).execute(&mut *c).await.map(drop))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Certifications

/// One cycle of a person's certification.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Certification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_name: String,
    pub type_id: Uuid,
    pub type_code: String,
    pub type_name: String,
    pub issued_on: Date,
    pub expires_on: Option<Date>,
    pub certificate_number: Option<String>,
    /// `manual`, `renewal`, or the connector that imported it.
    pub source: String,
    /// Computed from the dates in the tenant's time zone.
    pub status: Status,
    /// Days until expiry (negative once expired).
    pub days_left: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub renewed_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct CertRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub type_id: Uuid,
    pub code: String,
    pub name: String,
    pub renewal_window_days: i32,
    pub issued_on: Date,
    pub expires_on: Option<Date>,
    pub certificate_number: Option<String>,
    pub source: String,
    pub renewed_at: Option<OffsetDateTime>,
}

/// The tables a certification is read from, restricted to the tenant's live rows (`$1`).
macro_rules! cert_from {
    () => {
        "from certifications c
   join directory_people u on u.tenant_id = c.tenant_id and u.id = c.user_id
   join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
  where c.tenant_id = $1 and c.deleted_at is null"
    };
}

pub(crate) const CERT_SELECT: &str = concat!(
    "select c.id, c.user_id, u.first_name, u.last_name, c.type_id, t.code, t.name,
        t.renewal_window_days, c.issued_on, c.expires_on, c.certificate_number, c.source, c.renewed_at
   ",
    cert_from!()
);

impl CertRow {
    pub(crate) fn into_view(self, today: Date) -> Certification {
        let status = dates::status(
            today,
            self.expires_on,
            self.renewal_window_days,
            self.renewed_at.is_some(),
        );
        Certification {
            id: self.id,
            user_id: self.user_id,
            user_name: format!("{} {}", self.first_name, self.last_name)
                .trim()
                .to_string(),
            type_id: self.type_id,
            type_code: self.code,
            type_name: self.name,
            issued_on: self.issued_on,
            expires_on: self.expires_on,
            certificate_number: self.certificate_number,
            source: self.source,
            status,
            days_left: self.expires_on.map(|e| (e - today).whole_days()),
            renewed_at: self.renewed_at,
        }
    }
}

/// Which certifications to list.
#[derive(Debug, Default, Clone)]
pub struct CertFilter {
    pub user_id: Option<Uuid>,
    pub type_id: Option<Uuid>,
    pub status: Option<Status>,
    /// Include replaced cycles (history).
    pub all_cycles: bool,
}

/// The conditions of `filter` after [`cert_from!`]: `$2` the person, `$3` the type (either
/// may be null), `$4` today when a status is asked for. The status is the one
/// [`dates::status`] computes, in SQL, so a page holds only matching rows.
fn cert_conditions(filter: &CertFilter, backend: Backend) -> String {
    let mut sql =
        String::from(" and ($2 is null or c.user_id = $2) and ($3 is null or c.type_id = $3)");
    if !filter.all_cycles {
        sql.push_str(" and c.renewed_at is null");
    }
    // The last day of a renewal window that opens today: today plus the type's window.
    let window_end = match backend {
        Backend::Postgres => "($4::date + t.renewal_window_days)",
        Backend::Sqlite => "date($4, '+' || t.renewal_window_days || ' days')",
    };
    match filter.status {
        None => {}
        Some(Status::Renewed) => sql.push_str(" and c.renewed_at is not null"),
        Some(Status::Expired) => sql.push_str(" and c.renewed_at is null and c.expires_on < $4"),
        Some(Status::Expiring) => sql.push_str(&format!(
            " and c.renewed_at is null and c.expires_on >= $4 and c.expires_on <= {window_end}"
        )),
        Some(Status::Valid) => sql.push_str(&format!(
            " and c.renewed_at is null and (c.expires_on is null or c.expires_on > {window_end})"
        )),
    }
    sql
}

/// Certifications matching `filter`, soonest expiry first: all of them (one person's), or
/// one `page` and the number matching over all pages.
pub async fn list(
    tx: &mut TenantTx,
    today: Date,
    filter: &CertFilter,
    page: Option<Page>,
) -> ApiResult<(Vec<Certification>, i64)> {
    let tenant = tx.tenant();
    let conditions = cert_conditions(filter, tx.backend());
    let mut query = format!(
        "{CERT_SELECT}{conditions} order by c.expires_on is null, c.expires_on, c.issued_on desc, c.id"
    );
    if let Some(p) = page {
        query.push_str(&format!(" limit {} offset {}", p.limit(), p.offset()));
    }
    let status = filter.status.is_some();
    let rows: Vec<CertRow> = sql!(tx.conn() => |c| {
        let mut q = sqlx::query_as(&query).bind(tenant).bind(filter.user_id).bind(filter.type_id);
        if status { q = q.bind(today); }
        q.fetch_all(&mut *c).await
    })?;
    let total = match page {
        Some(p) if rows.len() as i64 == p.limit() || p.page > 1 => {
            let count = format!(concat!("select count(*) ", cert_from!(), "{}"), conditions);
            sql!(tx.conn() => |c| {
                let mut q = sqlx::query_scalar(&count).bind(tenant).bind(filter.user_id).bind(filter.type_id);
                if status { q = q.bind(today); }
                q.fetch_one(&mut *c).await
            })?
        }
        _ => rows.len() as i64,
    };
    Ok((
        rows.into_iter().map(|r| r.into_view(today)).collect(),
        total,
    ))
}

/// One cycle, with every cycle of the same person and type (newest first).
pub async fn get(
    tx: &mut TenantTx,
    today: Date,
    id: Uuid,
) -> ApiResult<(Certification, Vec<Certification>)> {
    let tenant = tx.tenant();
    let row: Option<CertRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!("{CERT_SELECT} and c.id = $2"))
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    let cert = row.ok_or(ApiError::NotFound)?.into_view(today);
    let rows: Vec<CertRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "{CERT_SELECT} and c.user_id = $2 and c.type_id = $3 order by c.issued_on desc, c.id desc"))
        .bind(tenant).bind(cert.user_id).bind(cert.type_id).fetch_all(&mut *c).await)?;
    Ok((cert, rows.into_iter().map(|r| r.into_view(today)).collect()))
}

/// Body of `POST /certifications`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct RecordCertification {
    /// A person of the tenant.
    pub user_id: Uuid,
    /// One of the tenant's certification types.
    pub type_id: Uuid,
    /// Between 1900-01-01 and 2999-12-31.
    #[serde(deserialize_with = "dates::request_date")]
    pub issued_on: Date,
    /// Default: issued on + the type's validity. Between 1900-01-01 and 2999-12-31 and not
    /// before `issued_on`, as is the expiry computed from the validity.
    #[serde(default, deserialize_with = "dates::request_date_opt")]
    #[oai(nullable)]
    pub expires_on: Option<Date>,
    /// Blank: none.
    #[oai(nullable, validator(max_length = 100))]
    pub certificate_number: Option<String>,
}

/// Why a cycle's dates are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleDates {
    /// The issue date is outside 1900–2999.
    IssuedOutOfRange,
    /// The expiry given is outside 1900–2999.
    ExpiresOutOfRange,
    /// The issue date plus the type's validity ends after 2999.
    ExpiryOutOfRange,
    /// The expiry given is before the issue date.
    ExpiresBeforeIssue,
}

impl CycleDates {
    /// The field to name.
    pub fn field(self) -> &'static str {
        match self {
            CycleDates::IssuedOutOfRange | CycleDates::ExpiryOutOfRange => "issued_on",
            CycleDates::ExpiresOutOfRange | CycleDates::ExpiresBeforeIssue => "expires_on",
        }
    }

    /// What is wrong with it.
    pub fn message(self) -> &'static str {
        match self {
            CycleDates::IssuedOutOfRange | CycleDates::ExpiresOutOfRange => dates::RANGE_MESSAGE,
            CycleDates::ExpiryOutOfRange => {
                "with the type's validity the expiry would fall after 2999-12-31"
            }
            CycleDates::ExpiresBeforeIssue => "must not be before issued_on",
        }
    }

    /// The 422 naming the field.
    pub fn into_error(self) -> ApiError {
        ApiError::field(self.field(), self.message())
    }
}

/// A cycle's expiry: the date given, else the issue date plus the type's validity (none for a
/// type that does not expire). Dates outside 1900–2999, and an expiry before the issue date,
/// are refused.
pub fn cycle_expiry(
    issued_on: Date,
    given: Option<Date>,
    validity_months: Option<i32>,
) -> Result<Option<Date>, CycleDates> {
    dates::in_range(issued_on).map_err(|_| CycleDates::IssuedOutOfRange)?;
    let expires_on = match given {
        Some(e) => Some(dates::in_range(e).map_err(|_| CycleDates::ExpiresOutOfRange)?),
        None => {
            dates::expiry(issued_on, validity_months).map_err(|_| CycleDates::ExpiryOutOfRange)?
        }
    };
    if expires_on.is_some_and(|e| e < issued_on) {
        return Err(CycleDates::ExpiresBeforeIssue);
    }
    Ok(expires_on)
}

/// A certificate number as stored: trimmed, none when blank.
pub fn certificate_number(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

/// Records a cycle. An earlier open cycle of the same person and type is closed as renewed.
pub async fn record(
    tx: &mut TenantTx,
    input: &RecordCertification,
    source: &str,
    renewal: Option<Uuid>,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let t = get_type(tx, input.type_id)
        .await
        .map_err(|_| ApiError::field("type_id", "no such certification type"))?;
    let person: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from directory_people where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(input.user_id).fetch_optional(&mut *c).await)?;
    if person.is_none() {
        return Err(ApiError::field("user_id", "no such person"));
    }
    let expires_on = cycle_expiry(input.issued_on, input.expires_on, t.validity_months)
        .map_err(CycleDates::into_error)?;
    let number = certificate_number(input.certificate_number.as_deref());
    sql!(tx.conn() => |c| sqlx::query(
        "update certifications set renewed_at = $4, renewed_by_request = $5, updated_at = $4
          where tenant_id = $1 and user_id = $2 and type_id = $3 and renewed_at is null and deleted_at is null")
        .bind(tenant).bind(input.user_id).bind(input.type_id).bind(now).bind(renewal)
        .execute(&mut *c).await.map(drop))?;
    let id = Uuid::now_v7();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into certifications (tenant_id, id, user_id, type_id, issued_on, expires_on,
                certificate_number, source, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)")
        .bind(tenant).bind(id).bind(input.user_id).bind(input.type_id).bind(input.issued_on)
        .bind(expires_on).bind(number).bind(source).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Compliance

/// Counts for one group (a department, a role, or everyone).
#[derive(Debug, Clone, Default, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ComplianceGroup {
    /// The department's or role's name; `All` for the tenant.
    pub group: String,
    pub group_id: Option<String>,
    /// People whose every current certification is valid.
    pub compliant: i64,
    /// People with at least one certification in its renewal window, none expired.
    pub expiring: i64,
    /// People with at least one expired certification.
    pub expired: i64,
    pub people: i64,
}

/// (person, department id, department name, role, expires on, renewal window days).
type ComplianceRow = (
    Uuid,
    Option<Uuid>,
    Option<String>,
    String,
    Option<Date>,
    i32,
);

/// Who is compliant, expiring or expired, grouped by `department` or `role` (people without
/// certifications are not counted).
pub async fn compliance(
    tx: &mut TenantTx,
    today: Date,
    group_by: &str,
    type_id: Option<Uuid>,
) -> ApiResult<Vec<ComplianceGroup>> {
    let tenant = tx.tenant();
    let rows: Vec<ComplianceRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select u.id, u.department_id, d.name, u.role, c.expires_on, t.renewal_window_days
           from certifications c
           join directory_people u on u.tenant_id = c.tenant_id and u.id = c.user_id
           join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
           left join directory_departments d on d.tenant_id = u.tenant_id and d.id = u.department_id
          where c.tenant_id = $1 and c.deleted_at is null and c.renewed_at is null
            and u.deleted_at is null and u.is_active = true and t.deleted_at is null
            and ($2 is null or c.type_id = $2)")
        .bind(tenant).bind(type_id).fetch_all(&mut *c).await)?;
    // The worst status of each person.
    let mut people: BTreeMap<Uuid, (String, Option<String>, Status)> = BTreeMap::new();
    for (user, dept_id, dept_name, role, expires, window) in rows {
        let s = dates::status(today, expires, window, false);
        let (group, id) = match group_by {
            "role" => (role.clone(), Some(role)),
            "department" => (
                dept_name.unwrap_or_else(|| "No department".into()),
                dept_id.map(|d| d.to_string()),
            ),
            _ => ("All".to_string(), None),
        };
        let entry = people.entry(user).or_insert((group, id, Status::Valid));
        entry.2 = worst(entry.2, s);
    }
    let mut groups: BTreeMap<(String, Option<String>), ComplianceGroup> = BTreeMap::new();
    for (_, (group, id, status)) in people {
        let g = groups
            .entry((group.clone(), id.clone()))
            .or_insert_with(|| ComplianceGroup {
                group,
                group_id: id,
                ..Default::default()
            });
        g.people += 1;
        match status {
            Status::Expired => g.expired += 1,
            Status::Expiring => g.expiring += 1,
            _ => g.compliant += 1,
        }
    }
    Ok(groups.into_values().collect())
}

fn worst(a: Status, b: Status) -> Status {
    let rank = |s| match s {
        Status::Expired => 2,
        Status::Expiring => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

// ---------------------------------------------------------------------------------------------
// Dates for a person's calendar

/// A dated step of one of a person's current certifications: its renewal window opening, or
/// its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatedCertification {
    pub certification_id: Uuid,
    pub type_name: String,
    /// When renewal is due (the window opens); `None` when the type has no window.
    pub renewal_due_on: Option<Date>,
    pub expires_on: Date,
}

/// The current (not renewed) certifications of `user` that expire, by expiry: what the
/// person's calendar shows of them.
pub async fn dated_certifications(
    tx: &mut TenantTx,
    user: Uuid,
) -> ApiResult<Vec<DatedCertification>> {
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, String, Date, i32)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select c.id, t.name, c.expires_on, t.renewal_window_days
           from certifications c
           join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
          where c.tenant_id = $1 and c.user_id = $2 and c.deleted_at is null
            and c.renewed_at is null and c.expires_on is not null
          order by c.expires_on, c.id limit 500")
        .bind(tenant).bind(user).fetch_all(&mut *c).await)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, expires_on, window)| DatedCertification {
            certification_id: id,
            type_name: name,
            renewal_due_on: (window > 0)
                .then(|| expires_on.checked_sub(time::Duration::days(i64::from(window))))
                .flatten(),
            expires_on,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Renewal by completing courses

/// Renews `user`'s certifications whose type requires `course`, now that they completed it on
/// `on`; `completed` holds the date of their latest completion of each course (learning's,
/// which owns them). A live type listing the course is renewed when the person has completed
/// every course it requires since their current cycle was issued (ever, when they hold none):
/// a new cycle from `on`, with the type's validity, closes the current one as renewed. A
/// current cycle issued on `on` is left as it is. The cycles recorded.
pub async fn renew_on_completion(
    tx: &mut TenantTx,
    user: Uuid,
    course: Uuid,
    on: Date,
    completed: &std::collections::HashMap<Uuid, Date>,
    now: OffsetDateTime,
) -> ApiResult<Vec<Uuid>> {
    let tenant = tx.tenant();
    let (types, _) = types(tx, None).await?;
    let types: Vec<CertificationType> = types
        .into_iter()
        .filter(|t| t.required_courses.contains(&course))
        .collect();
    if types.is_empty() {
        return Ok(Vec::new());
    }
    let latest = completed;
    let mut renewed = Vec::new();
    for t in types {
        let current: Option<Date> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select issued_on from certifications
              where tenant_id = $1 and user_id = $2 and type_id = $3
                and renewed_at is null and deleted_at is null
              order by issued_on desc limit 1")
            .bind(tenant).bind(user).bind(t.id).fetch_optional(&mut *c).await)?;
        if current == Some(on) {
            continue;
        }
        let all_done = t.required_courses.iter().all(|required| {
            latest
                .get(required)
                .is_some_and(|done| current.is_none_or(|issued| *done >= issued))
        });
        if !all_done {
            continue;
        }
        let input = RecordCertification {
            user_id: user,
            type_id: t.id,
            issued_on: on,
            expires_on: None,
            certificate_number: None,
        };
        renewed.push(record(tx, &input, "course", None, now).await?);
    }
    Ok(renewed)
}
