//! A person's calendar: their enrolments' due dates, their certifications' renewal dates and
//! expiries (from the renewals context), and (once timetables exist) their sessions — in the
//! portal and as an iCalendar (RFC 5545) feed at a secret address a calendar application
//! subscribes to. Only the address's digest is kept; issuing a new address replaces the old
//! one, and deleting it revokes it.

use icalendar::{Calendar, Component, Event, EventLike};
use poem_openapi::{Enum, Object};
use serde::Serialize;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{db::TenantTx, sql, ApiResult, TenantId};
use uuid::Uuid;

/// What a calendar item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// An enrolment's due date.
    EnrolmentDue,
    /// A certification's renewal window opens.
    RenewalDue,
    /// A certification expires.
    CertificationExpires,
}

/// A dated item of a person's calendar (an all-day event).
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct CalendarItem {
    pub date: Date,
    pub kind: ItemKind,
    pub title: String,
    /// The portal page of the item.
    pub link: String,
    /// The object the item is about (an enrolment or a certification).
    pub object_id: Uuid,
}

/// How far back the calendar reaches.
const PAST_DAYS: i64 = 90;

/// The person's items from `PAST_DAYS` before `today` on, by date.
pub async fn items(tx: &mut TenantTx, user: Uuid, today: Date) -> ApiResult<Vec<CalendarItem>> {
    let tenant = tx.tenant();
    let from = today
        .checked_sub(time::Duration::days(PAST_DAYS))
        .unwrap_or(Date::MIN);
    let due: Vec<(Uuid, String, Date)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select e.id, c.title, e.due_on from enrolments e
           join courses c on c.tenant_id = e.tenant_id and c.id = e.course_id
          where e.tenant_id = $1 and e.user_id = $2 and e.due_on is not null and e.due_on >= $3
            and e.status in ('scheduled', 'in_progress')
          order by e.due_on, e.id limit 500")
        .bind(tenant).bind(user).bind(from).fetch_all(&mut *c).await)?;
    let mut out: Vec<CalendarItem> = due
        .into_iter()
        .map(|(id, title, date)| CalendarItem {
            date,
            kind: ItemKind::EnrolmentDue,
            title: format!("Due: {title}"),
            link: format!("/portal/enrolments/{id}"),
            object_id: id,
        })
        .collect();
    for c in trainflow_renewals::certs::dated_certifications(tx, user).await? {
        if let Some(d) = c.renewal_due_on.filter(|d| *d >= from) {
            out.push(CalendarItem {
                date: d,
                kind: ItemKind::RenewalDue,
                title: format!("Renewal due: {}", c.type_name),
                link: "/portal/certifications".into(),
                object_id: c.certification_id,
            });
        }
        if c.expires_on >= from {
            out.push(CalendarItem {
                date: c.expires_on,
                kind: ItemKind::CertificationExpires,
                title: format!("{} expires", c.type_name),
                link: "/portal/certifications".into(),
                object_id: c.certification_id,
            });
        }
    }
    out.sort_by(|a, b| (a.date, &a.title).cmp(&(b.date, &b.title)));
    Ok(out)
}

/// The items as an iCalendar feed: one all-day event each, with a stable UID (so an update
/// replaces the event in the subscriber's calendar) and the portal address of the item.
pub fn ics(
    items: &[CalendarItem],
    calendar_name: &str,
    public_url: &str,
    now: OffsetDateTime,
) -> String {
    let stamp = chrono::DateTime::from_timestamp(now.unix_timestamp(), 0).unwrap_or_default();
    let mut calendar = Calendar::new();
    calendar.name(calendar_name);
    for item in items {
        let Some(day) = chrono::NaiveDate::from_ymd_opt(
            item.date.year(),
            u32::from(u8::from(item.date.month())),
            u32::from(item.date.day()),
        ) else {
            continue;
        };
        let kind = match item.kind {
            ItemKind::EnrolmentDue => "enrolment-due",
            ItemKind::RenewalDue => "renewal-due",
            ItemKind::CertificationExpires => "certification-expires",
        };
        calendar.push(
            Event::new()
                .uid(&format!("{kind}-{}@trainflow", item.object_id))
                .timestamp(stamp)
                .all_day(day)
                .summary(&item.title)
                .url(&format!("{public_url}{}", item.link))
                .done(),
        );
    }
    calendar.done().to_string()
}

/// Issues a new feed address for `user`, replacing any earlier one: the token (shown once).
pub async fn issue(tx: &mut TenantTx, user: Uuid, now: OffsetDateTime) -> ApiResult<String> {
    let tenant = tx.tenant();
    let (token, digest) = trainflow_kernel::secret::link_token(tenant);
    sql!(tx.conn() => |c| sqlx::query(
        "insert into calendar_feeds (tenant_id, user_id, token_hash, created_at) values ($1, $2, $3, $4)
         on conflict (tenant_id, user_id) do update set token_hash = excluded.token_hash, created_at = excluded.created_at")
        .bind(tenant).bind(user).bind(&digest).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(token)
}

/// Revokes `user`'s feed address; whether there was one.
pub async fn revoke(tx: &mut TenantTx, user: Uuid) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "delete from calendar_feeds where tenant_id = $1 and user_id = $2")
        .bind(tenant).bind(user).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// When `user`'s current feed address was issued, if they have one.
pub async fn issued_at(tx: &mut TenantTx, user: Uuid) -> ApiResult<Option<OffsetDateTime>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select created_at from calendar_feeds where tenant_id = $1 and user_id = $2")
        .bind(tenant).bind(user).fetch_optional(&mut *c).await)?)
}

/// The active person whose feed address has `digest`, if any.
pub async fn owner(tx: &mut TenantTx, digest: &str) -> ApiResult<Option<Uuid>> {
    let tenant: TenantId = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select f.user_id from calendar_feeds f
           join directory_people u on u.tenant_id = f.tenant_id and u.id = f.user_id
          where f.tenant_id = $1 and f.token_hash = $2 and u.is_active = true and u.deleted_at is null")
        .bind(tenant).bind(digest).fetch_optional(&mut *c).await)?)
}
