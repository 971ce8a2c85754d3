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
pub mod request;
pub mod secret;

pub use error::{ApiError, ApiResult, FieldErrors};
pub use ids::{TenantId, UserId};

/// The application clock. Every rule that depends on time takes `now` as an argument;
/// only the edges (handlers, job ticks) call this.
/// Truncated to microseconds, the precision PostgreSQL keeps, so a value read back equals the
/// value written on both backends.
pub fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_microsecond(t.microsecond())
        .expect("microsecond from a valid time is valid")
}
