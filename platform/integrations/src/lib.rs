//! Integrations: the tenant side of connectors.
//!
//! * [`catalogue`] — first-party connectors (embedded at build time) and uploaded packages.
//! * [`manifest`] and [`schema`] — what a partner package declares, and config validation.
//! * [`credentials`] — AES-256-GCM sealing bound to tenant and installation.
//! * [`installations`] — packages, installations and uploaded files (the tenant-scoped rows).
//! * [`runs`] — a run from start to finish: the sandboxed session, retries, pages, full refresh.
//! * [`apply`] — one page of entities upserted into people, departments and learning records,
//!   keyed by (tenant, installation, stream, external id), committed with the cursor.
//! * [`schedule`] — the per-minute dispatcher of cron-scheduled installations.
//! * `worker` — each run's sandbox session on its own thread, off the server's async workers.
//! * [`api`] — the `/api/v1/connectors` endpoints.
#![forbid(unsafe_code)]

pub mod api;
pub mod apply;
pub mod catalogue;
pub mod credentials;
pub mod installations;
pub mod manifest;
pub mod runs;
pub mod schedule;
pub mod schema;
pub mod web;
mod worker;

use std::{sync::Arc, time::Duration};

use trainflow_connectors::{ConnectorHost, Limits};
use trainflow_kernel::db::Db;

pub use catalogue::{CatalogueEntry, FirstParty};
pub use credentials::CredentialsKey;

/// How runs behave; the defaults suit production.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Sandbox limits of each run.
    pub limits: Limits,
    /// Records asked for per page.
    pub page_size: u32,
    /// Retries of a page after transient errors.
    pub max_retries: u32,
    /// First back-off after a transient error; doubles with each retry.
    pub backoff: Duration,
    /// Longest wait a rate-limited connector may ask for.
    pub max_rate_limit_wait: Duration,
    /// A run whose heartbeat is older than this is considered dead (its instance stopped) and
    /// may be superseded; the next run resumes from its last committed page.
    pub stale_after: Duration,
    /// Share of a tenant's active people a full refresh may deactivate without an
    /// administrator's confirmation.
    pub deletion_guard: f64,
    /// Testing aid: stop a run after this many pages without finishing it, as if its
    /// instance had been killed.
    pub stop_after_pages: Option<u32>,
    /// Let connectors reach host names that resolve to loopback (development and tests only).
    pub allow_loopback_http: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            page_size: 1000,
            max_retries: 5,
            backoff: Duration::from_secs(1),
            max_rate_limit_wait: Duration::from_secs(300),
            stale_after: Duration::from_secs(300),
            deletion_guard: 0.2,
            stop_after_pages: None,
            allow_loopback_http: false,
        }
    }
}

/// The integrations service: shared by the API, the portal, the scheduler and the CLI.
pub struct Integrations {
    pub db: Db,
    pub host: Arc<ConnectorHost>,
    pub first_party: Vec<FirstParty>,
    pub key: CredentialsKey,
    pub settings: RunSettings,
    /// This instance's name, recorded on the runs it executes.
    pub instance: String,
}

impl Integrations {
    /// Starts the connector host and loads the first-party catalogue.
    pub async fn new(
        db: Db,
        key: CredentialsKey,
        settings: RunSettings,
        instance: String,
    ) -> anyhow::Result<Arc<Self>> {
        let host = Arc::new(ConnectorHost::new()?);
        let first_party = catalogue::first_party(&host).await?;
        Ok(Arc::new(Self {
            db,
            host,
            first_party,
            key,
            settings,
            instance,
        }))
    }

    /// A service sharing this one's database, host, catalogue and key, with other run settings
    /// and instance name (tools and tests that run connectors differently).
    pub fn with_settings(&self, instance: &str, settings: RunSettings) -> Arc<Self> {
        Arc::new(Self {
            db: self.db.clone(),
            host: self.host.clone(),
            first_party: self.first_party.clone(),
            key: self.key.clone(),
            settings,
            instance: instance.to_string(),
        })
    }

    /// The first-party connector with this id.
    pub fn first_party(&self, connector_id: &str) -> Option<&FirstParty> {
        self.first_party
            .iter()
            .find(|f| f.entry.connector_id == connector_id)
    }
}
