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
//! * [`demo`] — `[[connector_installations]]` of a tenant manifest (installed, run once).
#![forbid(unsafe_code)]

pub mod api;
pub mod apply;
pub mod catalogue;
pub mod credentials;
pub mod demo;
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
    /// Largest file an installation accepts for import, in bytes.
    pub max_file_bytes: usize,
    /// The portal's URL, for the links in the welcome messages of the people runs add.
    pub public_url: String,
    /// Most records a dry run reads (it holds them all in memory before rehearsing them).
    pub dry_run_max_records: usize,
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
            max_file_bytes: 256 * 1024 * 1024,
            public_url: "http://localhost:8080".into(),
            dry_run_max_records: 500_000,
        }
    }
}

/// The integrations service: shared by the API, the portal, the scheduler and the CLI.
pub struct Integrations {
    pub db: Db,
    pub host: Arc<ConnectorHost>,
    /// The first-party connectors, compiled and described on first use (see
    /// [`Integrations::first_party_catalogue`]): a server that never shows the catalogue or
    /// runs a connector never pays for Cranelift.
    first_party: Arc<tokio::sync::OnceCell<Vec<FirstParty>>>,
    pub key: CredentialsKey,
    pub settings: RunSettings,
    /// This instance's name, recorded on the runs it executes.
    pub instance: String,
    /// What the runs this instance executed measured, for `/metrics`.
    pub run_metrics: RunMetrics,
}

/// Totals of the connector runs this instance executed (since it started), by how they
/// ended: count, wall time, fuel (WebAssembly instructions) and the largest linear memory a
/// run reached.
#[derive(Debug, Default)]
pub struct RunMetrics(std::sync::Mutex<std::collections::BTreeMap<String, RunTotals>>);

/// The totals of one run status.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RunTotals {
    pub runs: u64,
    pub seconds: f64,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
}

impl RunMetrics {
    /// Adds a finished run.
    pub fn observe(&self, status: &str, seconds: f64, fuel: u64, peak_memory: u64) {
        if let Ok(mut m) = self.0.lock() {
            let t = m.entry(status.to_string()).or_default();
            t.runs += 1;
            t.seconds += seconds.max(0.0);
            t.fuel += fuel;
            t.peak_memory_bytes = t.peak_memory_bytes.max(peak_memory);
        }
    }

    /// The totals by status.
    pub fn snapshot(&self) -> Vec<(String, RunTotals)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

impl Integrations {
    /// Starts the connector host. The first-party catalogue is loaded on first use.
    pub async fn new(
        db: Db,
        key: CredentialsKey,
        settings: RunSettings,
        instance: String,
    ) -> anyhow::Result<Arc<Self>> {
        let host = Arc::new(ConnectorHost::new()?);
        Ok(Arc::new(Self {
            db,
            host,
            first_party: Arc::default(),
            key,
            settings,
            instance,
            run_metrics: RunMetrics::default(),
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
            run_metrics: RunMetrics::default(),
        })
    }

    /// The first-party connectors. The first call compiles and describes them (about a second
    /// of Cranelift on a blocking thread); later calls return them at once.
    pub async fn first_party_catalogue(&self) -> anyhow::Result<&[FirstParty]> {
        let host = &self.host;
        self.first_party
            .get_or_try_init(|| catalogue::first_party(host.clone()))
            .await
            .map(Vec::as_slice)
    }

    /// The first-party connector with this id.
    pub async fn first_party(&self, connector_id: &str) -> anyhow::Result<Option<&FirstParty>> {
        Ok(self
            .first_party_catalogue()
            .await?
            .iter()
            .find(|f| f.entry.connector_id == connector_id))
    }
}
