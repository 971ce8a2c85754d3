//! Configuration: defaults, then a TOML file (`trainflow.toml`, or the path in
//! `TRAINFLOW_CONFIG`), then `.env`, then `TRAINFLOW_*` environment variables. Secrets are
//! never printed: `Debug` masks them and the database password.

use std::{fmt, path::Path, str::FromStr};

use anyhow::Context;
use serde::Deserialize;

/// A value that must not appear in logs.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when unset.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Every setting of the server.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://trainflow.db` (default) or `postgres://…`: the application's connection.
    pub database_url: String,
    /// The schema owner's connection for migrations; defaults to `database_url`.
    pub migrate_database_url: Option<String>,
    /// Address to listen on.
    pub bind: String,
    /// The URL people reach the portal at (used in links in emails).
    pub public_url: String,
    /// HS256 signing secret, at least 32 bytes. Unset: a random one per start (development).
    pub jwt_secret: Secret,
    /// Access-token lifetime (60–900 s).
    pub access_token_ttl_secs: i64,
    /// Refresh-token lifetime in days.
    pub refresh_token_ttl_days: i64,
    /// Portal session lifetime in hours.
    pub session_ttl_hours: i64,
    /// Mark cookies `Secure` (browsers accept them on http://localhost too).
    pub cookie_secure: bool,
    /// Origins allowed to call the API from a browser (CORS); empty = none.
    pub cors_origins: Vec<String>,
    /// Requests per minute per client address.
    pub rate_limit_per_ip: u32,
    /// Requests per minute per tenant.
    pub rate_limit_per_tenant: u32,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Database pool size.
    pub db_max_connections: u32,
    /// Apply migrations when `serve` starts.
    pub auto_migrate: bool,
    /// Run scheduled jobs in this instance.
    pub jobs_enabled: bool,
    /// Trust the first `X-Forwarded-For` hop (only behind a proxy that sets it).
    pub trust_proxy: bool,
    /// Concurrent password hashes (each takes 19 MiB for ~50 ms).
    pub password_hash_concurrency: usize,
    /// `json` (default) or `pretty`.
    pub log_format: String,
    /// A directory whose `tenant.toml` `serve --demo` applies instead of the demo manifest
    /// built into the binary.
    pub demo_manifest: Option<String>,
    /// Days of inactivity before the nightly cleanup deactivates a person (tenants may override).
    pub inactive_after_days: i64,
    /// Cron schedule of the inactive-user cleanup.
    pub cleanup_schedule: String,
    /// This instance's name in job history (default: host name and process id).
    pub instance_name: String,
    /// AES-256 key for connector credentials: base64 of 32 random bytes. Unset: a random key
    /// per start (development; stored credentials are then unreadable after a restart).
    pub credentials_key: Secret,
    /// Largest file an installation accepts for import, in bytes.
    pub max_upload_bytes: usize,
    /// Let connectors call host names that resolve to loopback (development and tests only).
    pub connector_allow_loopback: bool,
    /// SMTP server for email: `smtp://user:pass@host:587?tls=required`, `smtps://host:465`, or
    /// `smtp://localhost:2525` (no TLS; local relays and tests). Empty: email goes to the log.
    pub smtp_url: Secret,
    /// The sender of email, e.g. `TrainFlow <no-reply@example.com>`.
    pub mail_from: String,
    /// Twilio's API base URL (a local server in tests).
    pub twilio_base_url: String,
    /// Twilio account; empty: SMS goes to the log.
    pub twilio_account_sid: String,
    pub twilio_auth_token: Secret,
    /// The number (E.164) or messaging service SMS are sent from.
    pub twilio_from: String,
    /// Web Push VAPID private key: base64url of the 32-octet P-256 scalar (`trainflow
    /// vapid-keys` makes a pair). Unset: a random key per start (development; browsers
    /// subscribed before a restart then stop receiving push).
    pub vapid_private_key: Secret,
    /// The contact push services see in VAPID tokens: `mailto:…` or `https://…`.
    pub push_subject: String,
    /// Push services the server posts to (`*.domain` for subdomains); default the push
    /// services of Chrome/Edge, Firefox, Safari and Windows.
    pub push_services: Vec<String>,
    /// Accept push endpoints on loopback over http (development and tests only).
    pub push_allow_loopback: bool,
    /// Cron schedule (with seconds) of outbox delivery.
    pub delivery_schedule: String,
    /// Seconds before a failed delivery is retried (doubling each attempt, at most an hour).
    pub delivery_backoff_secs: u64,
    /// Seconds a delivery pass's claim holds a message before another instance may take it
    /// (what a message whose instance died waits; at least 10).
    pub delivery_claim_secs: u64,
    /// Hours an approval link stays usable.
    pub approval_link_hours: i64,
    /// Cron schedule of the daily expiry reminder scan.
    pub reminder_schedule: String,
    /// Cron schedule of approval reminders, escalation and re-routing.
    pub escalation_schedule: String,
    /// Cron schedule of the expiry of overdue enrolments.
    pub enrolment_expiry_schedule: String,
    /// Background work items run at once in this instance; unset: 1 on SQLite, 2 on
    /// PostgreSQL; 0: this instance runs no background work.
    pub workers: Option<usize>,
    /// Milliseconds between an idle worker's looks for due work.
    pub work_poll_ms: u64,
    /// Seconds a worker's claim holds an item without renewal (renewed every third of it).
    pub work_lease_secs: u64,
    /// Seconds before a failed attempt is retried (doubling each attempt).
    pub work_backoff_secs: u64,
    /// The longest wait between attempts, in seconds.
    pub work_max_backoff_secs: u64,
    /// Days finished work items are kept.
    pub work_retention_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://trainflow.db".into(),
            migrate_database_url: None,
            bind: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            jwt_secret: Secret::default(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_days: 30,
            session_ttl_hours: 12,
            cookie_secure: true,
            cors_origins: Vec::new(),
            rate_limit_per_ip: 1200,
            rate_limit_per_tenant: 12000,
            max_body_bytes: 1024 * 1024,
            db_max_connections: 16,
            auto_migrate: true,
            jobs_enabled: true,
            trust_proxy: false,
            password_hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            log_format: "json".into(),
            demo_manifest: None,
            inactive_after_days: 365,
            cleanup_schedule: "0 15 3 * * *".into(),
            instance_name: String::new(),
            credentials_key: Secret::default(),
            max_upload_bytes: 256 * 1024 * 1024,
            connector_allow_loopback: false,
            smtp_url: Secret::default(),
            mail_from: "TrainFlow <no-reply@trainflow.localhost>".into(),
            twilio_base_url: "https://api.twilio.com".into(),
            twilio_account_sid: String::new(),
            twilio_auth_token: Secret::default(),
            twilio_from: String::new(),
            vapid_private_key: Secret::default(),
            push_subject: "mailto:no-reply@trainflow.localhost".into(),
            push_services: trainflow_notifications::push::PushEndpoints::KNOWN
                .iter()
                .map(|h| h.to_string())
                .collect(),
            push_allow_loopback: false,
            delivery_schedule: "*/10 * * * * *".into(),
            delivery_backoff_secs: 30,
            delivery_claim_secs: 300,
            approval_link_hours: 72,
            reminder_schedule: "0 0 6 * * *".into(),
            escalation_schedule: "0 */5 * * * *".into(),
            enrolment_expiry_schedule: "0 15 0 * * *".into(),
            workers: None,
            work_poll_ms: 1000,
            work_lease_secs: 60,
            work_backoff_secs: 10,
            work_max_backoff_secs: 3600,
            work_retention_days: 30,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "migrate_database_url",
                &self.migrate_database_url.as_deref().map(redact_url),
            )
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("jwt_secret", &self.jwt_secret)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("cookie_secure", &self.cookie_secure)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit_per_ip", &self.rate_limit_per_ip)
            .field("rate_limit_per_tenant", &self.rate_limit_per_tenant)
            .field("db_max_connections", &self.db_max_connections)
            .field("jobs_enabled", &self.jobs_enabled)
            .field("credentials_key", &self.credentials_key)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("smtp_url", &self.smtp_url)
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &self.twilio_auth_token)
            .field("vapid_private_key", &self.vapid_private_key)
            .field("push_services", &self.push_services)
            .finish_non_exhaustive()
    }
}

/// `a, b,,c` → `["a", "b", "c"]`.
fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl Settings {
    /// Loads the layers. `.env` is read first so its values act as environment variables.
    pub fn load() -> anyhow::Result<Self> {
        let _ = dotenvy::dotenv();
        let path = std::env::var("TRAINFLOW_CONFIG").unwrap_or_else(|_| "trainflow.toml".into());
        let mut settings = if Path::new(&path).exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            toml::from_str(&text).with_context(|| format!("parsing {path}"))?
        } else {
            Settings::default()
        };
        settings.apply_env(|k| std::env::var(k).ok())?;
        Ok(settings)
    }

    /// Overrides settings from `TRAINFLOW_*` variables read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn set<T: FromStr>(
            slot: &mut T,
            name: &str,
            get: &impl Fn(&str) -> Option<String>,
        ) -> anyhow::Result<()>
        where
            T::Err: fmt::Display,
        {
            if let Some(v) = get(name) {
                *slot = v.parse().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            }
            Ok(())
        }
        set(&mut self.database_url, "TRAINFLOW_DATABASE_URL", &get)?;
        if let Some(v) = get("TRAINFLOW_MIGRATE_DATABASE_URL") {
            self.migrate_database_url = Some(v);
        }
        set(&mut self.bind, "TRAINFLOW_BIND", &get)?;
        set(&mut self.public_url, "TRAINFLOW_PUBLIC_URL", &get)?;
        set(&mut self.jwt_secret, "TRAINFLOW_JWT_SECRET", &get)?;
        set(
            &mut self.access_token_ttl_secs,
            "TRAINFLOW_ACCESS_TOKEN_TTL_SECS",
            &get,
        )?;
        set(
            &mut self.refresh_token_ttl_days,
            "TRAINFLOW_REFRESH_TOKEN_TTL_DAYS",
            &get,
        )?;
        set(
            &mut self.session_ttl_hours,
            "TRAINFLOW_SESSION_TTL_HOURS",
            &get,
        )?;
        set(&mut self.cookie_secure, "TRAINFLOW_COOKIE_SECURE", &get)?;
        if let Some(v) = get("TRAINFLOW_CORS_ORIGINS") {
            self.cors_origins = comma_list(&v);
        }
        set(
            &mut self.rate_limit_per_ip,
            "TRAINFLOW_RATE_LIMIT_PER_IP",
            &get,
        )?;
        set(
            &mut self.rate_limit_per_tenant,
            "TRAINFLOW_RATE_LIMIT_PER_TENANT",
            &get,
        )?;
        set(&mut self.max_body_bytes, "TRAINFLOW_MAX_BODY_BYTES", &get)?;
        set(
            &mut self.db_max_connections,
            "TRAINFLOW_DB_MAX_CONNECTIONS",
            &get,
        )?;
        set(&mut self.auto_migrate, "TRAINFLOW_AUTO_MIGRATE", &get)?;
        set(&mut self.jobs_enabled, "TRAINFLOW_JOBS_ENABLED", &get)?;
        set(&mut self.trust_proxy, "TRAINFLOW_TRUST_PROXY", &get)?;
        set(
            &mut self.password_hash_concurrency,
            "TRAINFLOW_PASSWORD_HASH_CONCURRENCY",
            &get,
        )?;
        set(&mut self.log_format, "TRAINFLOW_LOG_FORMAT", &get)?;
        if let Some(v) = get("TRAINFLOW_DEMO_MANIFEST").filter(|v| !v.trim().is_empty()) {
            self.demo_manifest = Some(v);
        }
        set(
            &mut self.inactive_after_days,
            "TRAINFLOW_INACTIVE_AFTER_DAYS",
            &get,
        )?;
        set(
            &mut self.cleanup_schedule,
            "TRAINFLOW_CLEANUP_SCHEDULE",
            &get,
        )?;
        set(&mut self.instance_name, "TRAINFLOW_INSTANCE_NAME", &get)?;
        set(&mut self.credentials_key, "TRAINFLOW_CREDENTIALS_KEY", &get)?;
        set(
            &mut self.max_upload_bytes,
            "TRAINFLOW_MAX_UPLOAD_BYTES",
            &get,
        )?;
        set(
            &mut self.connector_allow_loopback,
            "TRAINFLOW_CONNECTOR_ALLOW_LOOPBACK",
            &get,
        )?;
        set(&mut self.smtp_url, "TRAINFLOW_SMTP_URL", &get)?;
        set(&mut self.mail_from, "TRAINFLOW_MAIL_FROM", &get)?;
        set(&mut self.twilio_base_url, "TRAINFLOW_TWILIO_BASE_URL", &get)?;
        set(
            &mut self.twilio_account_sid,
            "TRAINFLOW_TWILIO_ACCOUNT_SID",
            &get,
        )?;
        set(
            &mut self.twilio_auth_token,
            "TRAINFLOW_TWILIO_AUTH_TOKEN",
            &get,
        )?;
        set(&mut self.twilio_from, "TRAINFLOW_TWILIO_FROM", &get)?;
        set(
            &mut self.vapid_private_key,
            "TRAINFLOW_VAPID_PRIVATE_KEY",
            &get,
        )?;
        set(&mut self.push_subject, "TRAINFLOW_PUSH_SUBJECT", &get)?;
        if let Some(v) = get("TRAINFLOW_PUSH_SERVICES") {
            self.push_services = comma_list(&v);
        }
        set(
            &mut self.push_allow_loopback,
            "TRAINFLOW_PUSH_ALLOW_LOOPBACK",
            &get,
        )?;
        set(
            &mut self.delivery_schedule,
            "TRAINFLOW_DELIVERY_SCHEDULE",
            &get,
        )?;
        set(
            &mut self.delivery_backoff_secs,
            "TRAINFLOW_DELIVERY_BACKOFF_SECS",
            &get,
        )?;
        set(
            &mut self.delivery_claim_secs,
            "TRAINFLOW_DELIVERY_CLAIM_SECS",
            &get,
        )?;
        set(
            &mut self.approval_link_hours,
            "TRAINFLOW_APPROVAL_LINK_HOURS",
            &get,
        )?;
        set(
            &mut self.reminder_schedule,
            "TRAINFLOW_REMINDER_SCHEDULE",
            &get,
        )?;
        set(
            &mut self.escalation_schedule,
            "TRAINFLOW_ESCALATION_SCHEDULE",
            &get,
        )?;
        set(
            &mut self.enrolment_expiry_schedule,
            "TRAINFLOW_ENROLMENT_EXPIRY_SCHEDULE",
            &get,
        )?;
        if let Some(v) = get("TRAINFLOW_WORKERS") {
            self.workers = Some(
                v.parse()
                    .map_err(|e| anyhow::anyhow!("TRAINFLOW_WORKERS: {e}"))?,
            );
        }
        set(&mut self.work_poll_ms, "TRAINFLOW_WORK_POLL_MS", &get)?;
        set(&mut self.work_lease_secs, "TRAINFLOW_WORK_LEASE_SECS", &get)?;
        set(
            &mut self.work_backoff_secs,
            "TRAINFLOW_WORK_BACKOFF_SECS",
            &get,
        )?;
        set(
            &mut self.work_max_backoff_secs,
            "TRAINFLOW_WORK_MAX_BACKOFF_SECS",
            &get,
        )?;
        set(
            &mut self.work_retention_days,
            "TRAINFLOW_WORK_RETENTION_DAYS",
            &get,
        )?;
        Ok(())
    }

    /// The background worker's settings on `backend`.
    pub fn worker_config(
        &self,
        backend: trainflow_kernel::db::Backend,
    ) -> trainflow_jobs::queue::WorkerConfig {
        use std::time::Duration;
        let mut config = trainflow_jobs::queue::WorkerConfig::for_backend(backend);
        if let Some(n) = self.workers {
            config.concurrency = n;
        }
        config.poll_interval = Duration::from_millis(self.work_poll_ms.max(50));
        config.lease = Duration::from_secs(self.work_lease_secs.max(3));
        config.backoff = trainflow_jobs::queue::Backoff {
            base: Duration::from_secs(self.work_backoff_secs.max(1)),
            max: Duration::from_secs(
                self.work_max_backoff_secs
                    .max(self.work_backoff_secs.max(1)),
            ),
        };
        config
    }

    /// The URL migrations run with.
    pub fn migrate_url(&self) -> &str {
        self.migrate_database_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let mut s = Settings::default();
        s.apply_env(|k| match k {
            "TRAINFLOW_BIND" => Some("0.0.0.0:9000".into()),
            "TRAINFLOW_CORS_ORIGINS" => Some("https://a.example, https://b.example".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.cors_origins.len(), 2);
        assert_eq!(s.database_url, "sqlite://trainflow.db");
    }

    #[test]
    fn a_bad_number_names_its_variable() {
        let err = Settings::default()
            .apply_env(|k| (k == "TRAINFLOW_DB_MAX_CONNECTIONS").then(|| "many".into()))
            .unwrap_err();
        assert!(err.to_string().contains("TRAINFLOW_DB_MAX_CONNECTIONS"));
    }

    #[test]
    fn workers_follow_the_backend_unless_set() {
        use trainflow_kernel::db::Backend;
        let s = Settings::default();
        assert_eq!(s.worker_config(Backend::Sqlite).concurrency, 1);
        assert_eq!(s.worker_config(Backend::Postgres).concurrency, 2);
        let mut s = Settings::default();
        s.apply_env(|k| (k == "TRAINFLOW_WORKERS").then(|| "0".into()))
            .unwrap();
        assert_eq!(s.worker_config(Backend::Postgres).concurrency, 0);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = Settings {
            database_url: "postgres://app:hunter2@db/trainflow".into(),
            jwt_secret: Secret("top-secret-value-top-secret-value".into()),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("top-secret"));
    }
}
