//! The `trainflow` server: configuration, wiring and launch. `main` only parses the command
//! line, binds and calls into here; tests start the same server on port 0.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
mod limited;
pub mod metrics;
pub mod ratelimit;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use poem::{listener::Acceptor, Server};
use trainflow_identity::{password::Hasher, signin::AuthDeps};
use trainflow_integrations::{CredentialsKey, Integrations, RunSettings};
use trainflow_jobs::{JobSpec, Runner};
use trainflow_kernel::{
    auth::JwtKeys,
    db::{Db, DbOptions},
};
use trainflow_learning::Learning;
use trainflow_notifications::{
    outbox::RetryPolicy,
    push::{PushEndpoints, Vapid},
    Deliverer, EmailTransport, PushTransport, SmsTransport,
};
use trainflow_renewals::Renewals;

use crate::{app::Edge, config::Settings, metrics::Metrics, ratelimit::RateLimiter};

/// Everything a running instance holds.
pub struct Instance {
    pub settings: Settings,
    pub db: Db,
    pub deps: AuthDeps,
    pub runner: Runner,
    pub edge: Arc<Edge>,
    pub integrations: Arc<Integrations>,
    pub deliverer: Deliverer,
    pub renewals: Renewals,
    pub learning: Learning,
    /// The background worker; contexts register their work handlers on it here.
    pub worker: trainflow_jobs::queue::Worker,
}

impl Instance {
    /// The contexts' parts of a tenant manifest, in the order they apply (after the tenancy
    /// context's own tenant, departments and people).
    pub fn manifest_parts(&self) -> Vec<Box<dyn trainflow_kernel::manifest::ManifestPart>> {
        vec![
            Box::new(trainflow_renewals::demo::DemoPart(self.renewals.clone())),
            Box::new(trainflow_learning::demo::DemoPart(
                self.learning.clone(),
                self.renewals.clone(),
            )),
            Box::new(trainflow_integrations::demo::DemoPart(
                self.integrations.clone(),
            )),
        ]
    }

    /// Applies a tenant manifest with every context's part.
    pub async fn apply_manifest(
        &self,
        m: &trainflow_tenancy::manifest::Manifest,
    ) -> anyhow::Result<trainflow_tenancy::manifest::Applied> {
        let parts = self.manifest_parts();
        let parts: Vec<&dyn trainflow_kernel::manifest::ManifestPart> =
            parts.iter().map(|p| p.as_ref()).collect();
        trainflow_tenancy::manifest::apply(&self.db, &self.deps.hasher, m, &parts).await
    }
}

/// The demo tenant's manifest, built into the binary: `serve --demo` works from any directory
/// and in the container image. `TRAINFLOW_DEMO_MANIFEST` names a directory to use instead.
pub const DEMO_MANIFEST: &str = include_str!("../../../tenants/demo/tenant.toml");

/// Connects (migrating first when configured) and assembles the services.
pub async fn prepare(settings: Settings) -> anyhow::Result<Instance> {
    prepare_with(settings, RunSettings::default()).await
}

/// Like [`prepare`], with explicit connector run settings (tests shorten back-offs).
pub async fn prepare_with(settings: Settings, mut runs: RunSettings) -> anyhow::Result<Instance> {
    runs.allow_loopback_http |= settings.connector_allow_loopback;
    runs.max_file_bytes = settings.max_upload_bytes;
    runs.public_url = settings.public_url.trim_end_matches('/').to_string();
    if settings.auto_migrate {
        Db::migrate(settings.migrate_url()).await?;
    }
    let db = Db::connect(&DbOptions {
        url: settings.database_url.clone(),
        max_connections: settings.db_max_connections,
    })
    .await?;
    let secret = if settings.jwt_secret.is_empty() {
        tracing::warn!(
            "TRAINFLOW_JWT_SECRET is not set: using a random secret, so tokens end at restart and \
             instances cannot share them. Set it in production."
        );
        trainflow_kernel::secret::random_token().into_bytes()
    } else {
        settings.jwt_secret.expose().as_bytes().to_vec()
    };
    let keys = Arc::new(JwtKeys::new(
        &secret,
        "trainflow".into(),
        settings.access_token_ttl_secs,
    )?);
    let deps = AuthDeps {
        db: db.clone(),
        hasher: Hasher::new(settings.password_hash_concurrency),
        keys: keys.clone(),
        refresh_ttl: time::Duration::days(settings.refresh_token_ttl_days),
        session_ttl: time::Duration::hours(settings.session_ttl_hours),
        public_url: settings.public_url.trim_end_matches('/').to_string(),
    };
    let instance = if settings.instance_name.is_empty() {
        format!("{}-{}", hostname(), std::process::id())
    } else {
        settings.instance_name.clone()
    };
    let key = if settings.credentials_key.is_empty() {
        tracing::warn!(
            "TRAINFLOW_CREDENTIALS_KEY is not set: using a random key, so connector credentials \
             stored now cannot be read after a restart. Set it in production."
        );
        CredentialsKey::random()
    } else {
        CredentialsKey::from_base64(settings.credentials_key.expose())?
    };
    let integrations = Integrations::new(db.clone(), key, runs, instance.clone()).await?;
    let vapid = if settings.vapid_private_key.is_empty() {
        tracing::warn!(
            "TRAINFLOW_VAPID_PRIVATE_KEY is not set: using a random key, so browsers subscribed \
             to push now stop receiving it after a restart. Set it in production \
             (`trainflow vapid-keys` makes one)."
        );
        Vapid::random(&settings.push_subject)?
    } else {
        Vapid::from_base64(settings.vapid_private_key.expose(), &settings.push_subject)?
    };
    let push = PushTransport::new(
        vapid,
        PushEndpoints::new(&settings.push_services, settings.push_allow_loopback),
    )?;
    let deliverer = Deliverer {
        db: db.clone(),
        email: EmailTransport::from_url(settings.smtp_url.expose(), &settings.mail_from)?,
        sms: SmsTransport::twilio(
            &settings.twilio_base_url,
            &settings.twilio_account_sid,
            settings.twilio_auth_token.expose(),
            &settings.twilio_from,
        )?,
        push,
        retry: RetryPolicy {
            backoff: Duration::from_secs(settings.delivery_backoff_secs.max(1)),
            claim_for: Duration::from_secs(settings.delivery_claim_secs.max(10)),
            ..RetryPolicy::default()
        },
    };
    anyhow::ensure!(
        (1..=24 * 30).contains(&settings.approval_link_hours),
        "approval_link_hours must be between 1 and 720"
    );
    let renewals = Renewals::new(
        db.clone(),
        &settings.public_url,
        time::Duration::hours(settings.approval_link_hours),
    );
    let learning = Learning::new(db.clone(), &settings.public_url);
    let worker = trainflow_jobs::queue::Worker::new(
        db.clone(),
        instance.clone(),
        settings.worker_config(db.backend()),
    );
    let runner = Runner::new(
        db.clone(),
        instance,
        jobs(&settings, &integrations, &deliverer, &renewals, &learning),
    );
    let edge = Arc::new(Edge {
        keys,
        metrics: Arc::new(Metrics::default()),
        per_ip: Arc::new(RateLimiter::new(settings.rate_limit_per_ip)),
        per_tenant: Arc::new(RateLimiter::new(settings.rate_limit_per_tenant)),
        db: db.clone(),
        runner: runner.clone(),
        settings: settings.clone(),
        integrations: integrations.clone(),
        deliverer: deliverer.clone(),
        renewals: renewals.clone(),
        learning: learning.clone(),
    });
    Ok(Instance {
        settings,
        db,
        deps,
        runner,
        edge,
        integrations,
        deliverer,
        renewals,
        learning,
        worker,
    })
}

/// The scheduled jobs of this release.
pub fn jobs(
    settings: &Settings,
    integrations: &Arc<Integrations>,
    deliverer: &Deliverer,
    renewals: &Renewals,
    learning: &Learning,
) -> Vec<JobSpec> {
    let expiry = learning.clone();
    let after = time::Duration::days(settings.inactive_after_days);
    let connectors = integrations.clone();
    let (outbox, reminders, escalations) = (deliverer.clone(), renewals.clone(), renewals.clone());
    vec![
        JobSpec {
            name: "identity.cleanup_inactive_users",
            schedule: settings.cleanup_schedule.clone(),
            description: "Deactivates people inactive for longer than the tenant allows",
            run: Arc::new(move |db, now| {
                Box::pin(async move {
                    let outcome = trainflow_identity::jobs::cleanup_inactive_users(&db, now, after)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(serde_json::to_value(outcome)?)
                })
            }),
        },
        JobSpec {
            name: "connectors.dispatch",
            schedule: trainflow_integrations::schedule::DISPATCH_SCHEDULE.into(),
            description: "Starts the connector runs whose cron schedule is due this minute",
            run: Arc::new(move |_db, now| {
                let connectors = connectors.clone();
                Box::pin(async move {
                    let minute = trainflow_jobs::minute_of(now);
                    Ok(serde_json::to_value(connectors.dispatch(minute).await?)?)
                })
            }),
        },
        JobSpec {
            name: "notifications.deliver",
            schedule: settings.delivery_schedule.clone(),
            description: "Delivers due email and SMS from the outbox, retrying failures with back-off",
            run: Arc::new(move |_db, now| {
                let outbox = outbox.clone();
                Box::pin(async move {
                    let outcome = outbox.deliver_due(now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(serde_json::to_value(outcome)?)
                })
            }),
        },
        JobSpec {
            name: "renewals.expiry_reminders",
            schedule: settings.reminder_schedule.clone(),
            description: "Reminds people of certifications reaching the tenant's reminder offsets",
            run: Arc::new(move |_db, now| {
                let renewals = reminders.clone();
                Box::pin(async move {
                    let outcome = renewals.expiry_reminders(now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(serde_json::to_value(outcome)?)
                })
            }),
        },
        JobSpec {
            name: "renewals.escalations",
            schedule: settings.escalation_schedule.clone(),
            description: "Reminds idle approvers, escalates overdue steps and re-routes steps whose approver left",
            run: Arc::new(move |_db, now| {
                let renewals = escalations.clone();
                Box::pin(async move {
                    let outcome = renewals.escalations(now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(serde_json::to_value(outcome)?)
                })
            }),
        },
        JobSpec {
            name: "learning.expire_enrolments",
            schedule: settings.enrolment_expiry_schedule.clone(),
            description: "Expires enrolments whose due date has passed and tells the person and their manager",
            run: Arc::new(move |_db, now| {
                let learning = expiry.clone();
                Box::pin(async move {
                    let outcome = learning.expire_enrolments(now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(serde_json::to_value(outcome)?)
                })
            }),
        },
        trainflow_jobs::queue::prune_job(
            "0 45 3 * * *",
            time::Duration::days(settings.work_retention_days.max(1)),
        ),
    ]
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "trainflow".into())
}

/// Serves until `shutdown` resolves, running the job scheduler alongside when enabled.
pub async fn serve<A: Acceptor + 'static>(
    instance: Instance,
    acceptor: A,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut scheduler = if instance.settings.jobs_enabled {
        Some(instance.runner.start().await?)
    } else {
        None
    };
    let worker = instance.worker.clone().start();
    // Progress changes from every instance (PostgreSQL), for the portal's live pages.
    let live = instance.learning.live.clone();
    let relay = tokio::spawn(live.clone().relay(instance.db.clone()));
    let app = app::build(instance.edge.clone(), instance.deps.clone());
    // Open event streams end when shutdown begins, so they do not hold it up.
    let shutdown = async move {
        shutdown.await;
        live.close();
    };
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
        .await
        .context("HTTP server failed");
    relay.abort();
    if let Some(s) = scheduler.as_mut() {
        let _ = s.shutdown().await;
    }
    worker.shutdown().await;
    result
}
