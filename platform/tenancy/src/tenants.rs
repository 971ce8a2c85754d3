//! Tenant records and their lifecycle: active → suspended → active, or deleted (soft).

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    db::{unique_violation_field, Db, TenantTx},
    domain::{bounded, optional, Slug},
    envelope::Page,
    sql, ApiError, ApiResult, FieldErrors, TenantId,
};
use uuid::Uuid;

/// Per-tenant settings kept as JSON (FEATURES T4).
#[derive(Debug, Clone, Serialize, Deserialize, Object, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct TenantSettings {
    /// Brand colour, `#rrggbb` (default `#1f4e79`).
    #[serde(deserialize_with = "colour_or_default")]
    #[oai(
        nullable,
        default = "default_colour",
        validator(pattern = r"^#[0-9A-Fa-f]{6}$")
    )]
    pub primary_colour: String,
    /// Logo URL shown in the portal header: `https://…` or a path on this site.
    #[oai(nullable, validator(max_length = 500, pattern = r"^(?:https://|/)"))]
    pub logo_url: Option<String>,
    /// People inactive for this many days are deactivated by the nightly cleanup (0 = never;
    /// absent = the platform default).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "3650")))]
    pub inactive_after_days: Option<u32>,
    /// Channels notifications may use (in-app is always on; SMS costs money, so it is opt-in;
    /// default `in_app`, `email`).
    #[serde(deserialize_with = "channels_or_default")]
    #[oai(
        nullable,
        default = "default_channels",
        validator(max_items = 4, pattern = r"^(?:in_app|email|sms|push)$")
    )]
    pub notification_channels: Vec<String>,
    /// Days before a certification expires at which its holder is reminded (absent: 90, 60,
    /// 30 and 7).
    #[oai(
        nullable,
        validator(
            min_items = 1,
            max_items = 10,
            minimum(value = "0"),
            maximum(value = "3650")
        )
    )]
    pub reminder_offsets_days: Option<Vec<u32>>,
}

fn default_colour() -> String {
    TenantSettings::default().primary_colour
}

fn default_channels() -> Vec<String> {
    TenantSettings::default().notification_channels
}

/// `null` reads as the default, like a colour left out.
fn colour_or_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(default_colour))
}

/// `null` reads as the default, like channels left out.
fn channels_or_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_else(default_channels))
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            primary_colour: "#1f4e79".into(),
            logo_url: None,
            inactive_after_days: None,
            notification_channels: vec!["in_app".into(), "email".into()],
            reminder_offsets_days: None,
        }
    }
}

impl TenantSettings {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut errors = FieldErrors::new();
        let c = &self.primary_colour;
        if !(c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit()))
        {
            errors.add("settings.primary_colour", "must be #rrggbb");
        }
        if let Some(url) = &self.logo_url {
            if !(url.starts_with("https://") || url.starts_with('/')) || url.chars().count() > 500 {
                errors.add(
                    "settings.logo_url",
                    "must be an https URL or a path, at most 500 characters",
                );
            }
        }
        if self.inactive_after_days.is_some_and(|d| d > 3650) {
            errors.add("settings.inactive_after_days", "must be at most 3650");
        }
        for ch in &self.notification_channels {
            if !["in_app", "email", "sms", "push"].contains(&ch.as_str()) {
                errors.add(
                    "settings.notification_channels",
                    format!("unknown channel `{ch}`"),
                );
            }
        }
        if let Some(offsets) = &self.reminder_offsets_days {
            if offsets.is_empty() || offsets.len() > 10 || offsets.iter().any(|d| *d > 3650) {
                errors.add(
                    "settings.reminder_offsets_days",
                    "1 to 10 offsets, each at most 3650 days",
                );
            }
        }
        errors.into_result()
    }
}

/// A tenant organisation.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// Host name that selects this tenant in the portal.
    pub domain: Option<String>,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    /// IANA time zone, e.g. `Europe/London`.
    pub time_zone: String,
    pub locale: String,
    pub settings: TenantSettings,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub suspended_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: Uuid,
    slug: String,
    name: String,
    domain: Option<String>,
    status: String,
    time_zone: String,
    locale: String,
    settings: sqlx::types::Json<serde_json::Value>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    suspended_at: Option<OffsetDateTime>,
    deleted_at: Option<OffsetDateTime>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Self {
            id: r.id,
            slug: r.slug,
            name: r.name,
            domain: r.domain,
            status: r.status,
            time_zone: r.time_zone,
            locale: r.locale,
            settings: serde_json::from_value(r.settings.0).unwrap_or_default(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            suspended_at: r.suspended_at,
            deleted_at: r.deleted_at,
        }
    }
}

const COLUMNS: &str =
    "id, slug, name, domain, status, time_zone, locale, settings, created_at, updated_at, suspended_at, deleted_at";

/// Body of `POST /platform/tenants`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct NewTenant {
    /// 2–40 lower-case letters, digits and inner dashes.
    #[oai(validator(max_length = 40, pattern = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$"))]
    pub slug: String,
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
    /// A host name for the portal (left out, `null` or blank: none).
    #[oai(
        nullable,
        validator(
            max_length = 253,
            pattern = r"^(?: *|[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*)$"
        )
    )]
    pub domain: Option<String>,
    /// An IANA time zone (`Europe/London`) or `UTC` (default).
    #[oai(
        nullable,
        validator(
            max_length = 64,
            pattern = r"^(?:UTC|[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)+)$"
        )
    )]
    pub time_zone: Option<String>,
    /// Default `en`.
    #[oai(
        nullable,
        validator(
            max_length = 10,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub locale: Option<String>,
}

/// Validated tenant fields.
pub struct TenantFields {
    pub slug: Slug,
    pub name: String,
    pub domain: Option<String>,
    pub time_zone: String,
    pub locale: String,
}

/// `Area/City`, `Area/Sub/City` or `UTC`.
pub fn parse_time_zone(raw: &str) -> Result<String, String> {
    let ok = raw == "UTC"
        || (raw.contains('/')
            && raw.len() <= 64
            && raw.split('/').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
            }));
    if ok {
        Ok(raw.to_string())
    } else {
        Err("must be an IANA time zone such as Europe/London, or UTC".into())
    }
}

fn parse_domain(raw: Option<&str>) -> Result<Option<String>, String> {
    match optional(raw, 253)? {
        None => Ok(None),
        Some(d) => {
            let d = d.to_lowercase();
            let ok = d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
            });
            if ok {
                Ok(Some(d))
            } else {
                Err("must be a host name such as acme.trainflow.example".into())
            }
        }
    }
}

impl NewTenant {
    /// Validates every field.
    pub fn parse(self) -> Result<TenantFields, ApiError> {
        let mut e = FieldErrors::new();
        let slug = e.check("slug", Slug::parse(&self.slug));
        let name = e.check("name", bounded(&self.name, 1, 200));
        let domain = e.check("domain", parse_domain(self.domain.as_deref()));
        let time_zone = e.check(
            "time_zone",
            parse_time_zone(self.time_zone.as_deref().unwrap_or("UTC")),
        );
        let locale = e.check(
            "locale",
            bounded(self.locale.as_deref().unwrap_or("en"), 2, 10),
        );
        e.into_result()?;
        Ok(TenantFields {
            slug: slug.expect("checked"),
            name: name.expect("checked"),
            domain: domain.expect("checked"),
            time_zone: time_zone.expect("checked"),
            locale: locale.expect("checked"),
        })
    }
}

/// Who is acting on a tenant: an operator, or the command line.
#[derive(Debug, Clone)]
pub enum Operator {
    /// A platform operator through the API.
    Api { id: Uuid, ip: Option<String> },
    /// The `trainflow` command line.
    Cli,
}

impl Operator {
    fn entry(&self, action: &str) -> Entry {
        match self {
            Operator::Api { id, ip } => Entry::as_actor("operator", Some(*id), action, ip.clone()),
            Operator::Cli => Entry::as_actor("system", None, action, None),
        }
    }
}

/// Creates a tenant and opens its audit chain.
pub async fn create(db: &Db, f: TenantFields, by: &Operator) -> ApiResult<Tenant> {
    let now = trainflow_kernel::now();
    let id = TenantId::new();
    // The new tenant's own transaction: the row, its audit chain's first link, one commit.
    let mut tx = TenantTx::begin_system(db, id).await?;
    sql!(tx.conn() => |c| sqlx::query(
        "insert into tenants (id, slug, name, domain, time_zone, locale, settings, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8)")
        .bind(id).bind(f.slug.as_str()).bind(&f.name).bind(&f.domain).bind(&f.time_zone).bind(&f.locale)
        .bind(sqlx::types::Json(serde_json::to_value(TenantSettings::default()).unwrap_or_default()))
        .bind(now).execute(&mut *c).await.map(drop))
    .map_err(|e| match unique_violation_field(&e, "tenants") {
        Some(field) => ApiError::Conflict { message: format!("another tenant already has this {field}"), field },
        None => e.into(),
    })?;
    audit::record(
        &mut tx,
        by.entry("tenant.create")
            .object("tenant", id.0)
            .detail(serde_json::json!({"slug": f.slug.as_str()})),
        now,
    )
    .await?;
    let tenant = current(&mut tx).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// A tenant by id (deleted ones included).
pub async fn get(db: &Db, id: TenantId) -> ApiResult<Tenant> {
    let mut tx = db.platform_tx().await?;
    let row: Option<TenantRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!("select {COLUMNS} from tenants where id = $1"))
        .bind(id).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    row.map(Tenant::from).ok_or(ApiError::NotFound)
}

/// The tenant of `tx`, read inside that transaction.
pub async fn current(tx: &mut TenantTx) -> ApiResult<Tenant> {
    let tenant = tx.tenant();
    let row: Option<TenantRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!("select {COLUMNS} from tenants where id = $1"))
        .bind(tenant).fetch_optional(&mut *c).await)?;
    row.map(Tenant::from).ok_or(ApiError::NotFound)
}

/// A tenant by slug.
pub async fn by_slug(db: &Db, slug: &str) -> ApiResult<Option<Tenant>> {
    let mut tx = db.platform_tx().await?;
    let row: Option<TenantRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!("select {COLUMNS} from tenants where slug = $1"))
            .bind(slug).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(row.map(Tenant::from))
}

/// One page of tenants, optionally of one status.
pub async fn list(db: &Db, status: Option<&str>, page: Page) -> ApiResult<(Vec<Tenant>, i64)> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        t: TenantRow,
        total: i64,
    }
    let mut tx = db.platform_tx().await?;
    let rows: Vec<Row> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {COLUMNS}, count(*) over () as total from tenants where ($1 is null or status = $1)
          order by slug limit $2 offset $3"))
        .bind(status).bind(page.limit()).bind(page.offset()).fetch_all(&mut *c).await)?;
    tx.commit().await?;
    let total = rows.first().map(|r| r.total).unwrap_or(0);
    Ok((rows.into_iter().map(|r| r.t.into()).collect(), total))
}

/// Moves a tenant between `active`, `suspended` and `deleted`. Suspension takes effect on the
/// next request of every token and session: each tenant transaction checks the status.
pub async fn set_status(db: &Db, id: TenantId, to: &str, by: &Operator) -> ApiResult<Tenant> {
    let before = get(db, id).await?;
    let allowed = matches!(
        (before.status.as_str(), to),
        ("active", "suspended") | ("suspended", "active") | ("active" | "suspended", "deleted")
    );
    if !allowed {
        return Err(ApiError::Conflict {
            field: "status".into(),
            message: format!("a {} tenant cannot become {to}", before.status),
        });
    }
    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system(db, id).await?;
    sql!(tx.conn() => |c| sqlx::query(
        "update tenants set status = $2, updated_at = $3,
                suspended_at = case when $2 = 'suspended' then $3 else null end,
                deleted_at = case when $2 = 'deleted' then $3 else null end
          where id = $1")
        .bind(id).bind(to).bind(now).execute(&mut *c).await.map(drop))?;
    let action = match to {
        "suspended" => "tenant.suspend",
        "active" => "tenant.reactivate",
        _ => "tenant.delete",
    };
    audit::record(
        &mut tx,
        by.entry(action).object("tenant", id.0).change(
            Some(serde_json::json!({"status": before.status})),
            Some(serde_json::json!({"status": to})),
        ),
        now,
    )
    .await?;
    let after = current(&mut tx).await?;
    tx.commit().await?;
    Ok(after)
}

/// Changes name, time zone, locale and settings (tenant administrators).
pub async fn update_settings(
    tx: &mut TenantTx,
    name: &str,
    time_zone: &str,
    locale: &str,
    settings: &TenantSettings,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update tenants set name = $2, time_zone = $3, locale = $4, settings = $5, updated_at = $6 where id = $1")
        .bind(tenant).bind(name).bind(time_zone).bind(locale)
        .bind(sqlx::types::Json(serde_json::to_value(settings).unwrap_or_default())).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Creates a platform operator (command line only).
pub async fn create_operator(db: &Db, email: &str, password_hash: &str) -> ApiResult<Uuid> {
    let mut tx = db.platform_tx().await?;
    let id: Uuid = sql!(tx.conn() => |c| sqlx::query_scalar(
        "insert into platform_operators (id, email, password_hash, created_at) values ($1, $2, $3, $4)
         on conflict (email) do update set password_hash = excluded.password_hash
         returning id")
        .bind(Uuid::now_v7()).bind(email).bind(password_hash).bind(trainflow_kernel::now()).fetch_one(&mut *c).await)?;
    tx.commit().await?;
    Ok(id)
}

/// An operator's id and password hash by email.
pub async fn find_operator(db: &Db, email: &str) -> ApiResult<Option<(Uuid, String)>> {
    let mut tx = db.platform_tx().await?;
    let row = sql!(tx.conn() => |c| sqlx::query_as("select id, password_hash from platform_operators where email = $1")
        .bind(email).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(row)
}
