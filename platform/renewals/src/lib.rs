//! Certifications and renewals.
//!
//! * [`dates`]: a tenant's today, a cycle's status (valid / expiring / expired / renewed), and
//!   the timeline of future cycles.
//! * [`certs`]: certification types, cycles (each renewal adds one and closes the previous),
//!   and compliance by department and role.
//! * [`workflow`]: renewal requests, approval chains per tenant and type, approver resolution
//!   with delegation and fallbacks, decisions, and approval links.
//! * [`jobs`]: expiry reminders at the tenant's offsets; reminders, escalation and re-routing
//!   of pending steps.
//! * [`service`]: the use cases — each one transaction with its permission check and audit
//!   entry — that every door calls.
//! * [`api`] and [`links`]: the HTTP API, and the phone page behind an approval link.
//! * [`sms`]: approving by SMS reply through Twilio's signed webhook.
//! * [`web`]: the portal's pages of certifications, renewals, approvals and compliance.

pub mod api;
pub mod batch;
pub mod certs;
pub mod dates;
pub mod demo;
pub mod jobs;
pub mod links;
pub mod service;
pub mod sms;
pub mod web;
pub mod workflow;

use trainflow_kernel::db::Db;

/// The renewals service.
#[derive(Clone)]
pub struct Renewals {
    pub db: Db,
    /// The portal's URL, for links in emails and SMS.
    pub public_url: String,
    /// How long an approval link stays usable.
    pub link_ttl: time::Duration,
    /// Where SMS reply codes come from (shared by clones, so tests can force codes).
    pub sms_codes: workflow::SmsCodes,
}

impl Renewals {
    pub fn new(db: Db, public_url: &str, link_ttl: time::Duration) -> Self {
        Renewals {
            db,
            public_url: public_url.trim_end_matches('/').to_string(),
            link_ttl,
            sms_codes: workflow::SmsCodes::default(),
        }
    }
}
