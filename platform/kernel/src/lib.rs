//! The TrainFlow kernel: the small set of types every bounded context shares.
//!
//! * [`ids`] — typed identifiers (`TenantId`, `UserId`).
//! * [`error`] — the one API error type with stable snake_case codes.
//! * [`body`] — the JSON request extractor that names the failing field.
//! * [`db`] — the database handle and the tenant-scoped transaction [`db::TenantTx`].
//! * [`envelope`] — the `{data, meta}` response envelope and pagination.
//! * [`auth`] — roles, permissions, the authenticated [`auth::TenantCtx`] and JWT keys.
//! * [`audit`] — the append-only, hash-chained audit log.
//! * [`domain`] — parse-don't-validate value types (email, E.164 phone, slug).
//! * [`secret`] — random tokens and their SHA-256 digests.
//! * [`manifest`] — the trait through which each context applies its part of a tenant manifest.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod body;
pub mod db;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod manifest;
pub mod picture;
pub mod request;
pub mod secret;

pub use error::{ApiError, ApiResult, FieldErrors};
pub use ids::{TenantId, UserId};

/// The application clock. Every rule that depends on time takes `now` as an argument;
/// only the edges (handlers, job ticks) call this.
/// Truncated to microseconds, the precision PostgreSQL keeps, so a value read back equals the
/// value written on both backends.
/// The UTC offset of the IANA time zone `tz` at the instant `at` (UTC when the zone is unknown).
pub fn zone_offset(tz: &str, at: time::OffsetDateTime) -> time::UtcOffset {
    tz.parse::<chrono_tz::Tz>()
        .ok()
        .and_then(|zone| {
            use chrono::{Offset, TimeZone};
            let utc = chrono::DateTime::from_timestamp(at.unix_timestamp(), 0)?;
            let seconds = zone
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc();
            time::UtcOffset::from_whole_seconds(seconds).ok()
        })
        .unwrap_or(time::UtcOffset::UTC)
}

/// `at` in the IANA time zone `tz`, for people: "2 Dec 2026, 14:05".
pub fn local_time(tz: &str, at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute]"
    );
    at.to_offset(zone_offset(tz, at))
        .format(&format)
        .unwrap_or_default()
}

pub fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_microsecond(t.microsecond())
        .expect("microsecond from a valid time is valid")
}
