//! Tenant manifests, part by part. `tenants/<slug>/tenant.toml` describes a tenant; the tenancy
//! context applies its own sections (the tenant, departments, people) and hands every other
//! top-level section to the context that owns it through [`ManifestPart`]. The server lists the
//! parts, in the order they apply; no context depends on another to seed its data.

use std::{collections::BTreeMap, future::Future, pin::Pin};

use time::OffsetDateTime;

use crate::{auth::TenantCtx, db::Db, TenantId};

/// What a part sees while it applies: the tenant, its people by email (each as a signed-in
/// caller, so the part acts through its own use cases and leaves the audit trail a person
/// would), and the clock.
pub struct ManifestScope<'a> {
    pub db: &'a Db,
    pub tenant: TenantId,
    pub people: &'a BTreeMap<String, TenantCtx>,
    pub now: OffsetDateTime,
}

impl ManifestScope<'_> {
    /// The person with `email` (case-insensitive), or an error naming the manifest field.
    pub fn person(&self, field: &str, email: &str) -> anyhow::Result<&TenantCtx> {
        self.people
            .get(&email.trim().to_lowercase())
            .ok_or_else(|| anyhow::anyhow!("{field}: nobody in the manifest has the email {email}"))
    }

    /// Who acts for a part: someone whose role grants `permission`, a `preferred` one first
    /// (the first by id among equals, so applying again picks the same person).
    pub fn acting(
        &self,
        permission: crate::auth::Permission,
        preferred: crate::auth::Role,
    ) -> anyhow::Result<&TenantCtx> {
        self.people
            .values()
            .filter(|c| c.role.grants(permission))
            .min_by_key(|c| (c.role != preferred, c.user_id.0))
            .ok_or_else(|| anyhow::anyhow!("the manifest has nobody who may {permission:?}"))
    }
}

/// How many objects of each kind a part created.
pub type Created = Vec<(&'static str, usize)>;

/// A context's sections of a tenant manifest. Applying is idempotent: what exists is left as it
/// is, what is missing is created.
pub trait ManifestPart: Send + Sync {
    /// The top-level keys of `tenant.toml` this part reads.
    fn sections(&self) -> &'static [&'static str];

    /// Applies this part's sections (each as JSON, absent ones as `null`).
    fn apply<'a>(
        &'a self,
        scope: &'a ManifestScope<'a>,
        sections: &'a BTreeMap<String, serde_json::Value>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Created>> + Send + 'a>>;
}

/// Turns an API error into a readable error for the command line and for manifest parts.
pub fn anyhow_api(e: crate::ApiError) -> anyhow::Error {
    match e {
        crate::ApiError::Internal(inner) => inner,
        other => {
            let body = other.body();
            anyhow::anyhow!(
                "{}: {} {:?}",
                body.error.code,
                body.error.message,
                body.error.fields
            )
        }
    }
}
