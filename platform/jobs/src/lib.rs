//! The job runner: cron ticks fire in every instance (tokio-cron-scheduler); an occurrence
//! becomes work only for the instance that claims it in the database (a unique
//! `(job, scheduled_for)` row in `job_runs`), so each occurrence runs once across instances.
//!
//! Jobs are plain async functions `fn(db, now) -> Result<detail>`; the scheduler only calls
//! them, and tests call them directly. Occurrences are keyed to the minute, so schedules are
//! minute-granular.
//!
//! Long-running background work (reports, computations) goes through the durable queue in
//! [`queue`] instead: enqueued items, claimed by workers under renewed leases and retried with
//! back-off.
#![forbid(unsafe_code)]

pub mod queue;
pub mod service;
pub mod web;

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use poem_openapi::Object;
use time::OffsetDateTime;
use tokio_cron_scheduler::{Job, JobScheduler};
use trainflow_kernel::{db::Db, sql};
use uuid::Uuid;

/// The future a job returns: a JSON summary of what it did.
pub type JobFuture = Pin<Box<dyn Future<Output = anyhow::Result<serde_json::Value>> + Send>>;

/// A job body.
pub type JobFn = Arc<dyn Fn(Db, OffsetDateTime) -> JobFuture + Send + Sync>;

/// A named job and its cron schedule (six fields: sec min hour day month weekday).
#[derive(Clone)]
pub struct JobSpec {
    /// Stable name, e.g. `identity.cleanup_inactive_users`.
    pub name: &'static str,
    /// Cron expression.
    pub schedule: String,
    /// What it does.
    pub description: &'static str,
    /// The body.
    pub run: JobFn,
}

/// How one occurrence ended for this instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Occurrence {
    /// This instance claimed and ran it.
    Ran {
        succeeded: bool,
        detail: serde_json::Value,
    },
    /// Another instance (or an earlier tick) already claimed it.
    AlreadyClaimed,
}

/// The registered jobs and this instance's name.
#[derive(Clone)]
pub struct Runner {
    db: Db,
    instance: String,
    jobs: Vec<JobSpec>,
    stats: Arc<Mutex<BTreeMap<&'static str, JobStats>>>,
}

/// What this instance did with one job's occurrences since it started, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct JobStats {
    /// Occurrences this instance claimed and ran, by outcome.
    pub succeeded: u64,
    pub failed: u64,
    /// Occurrences another instance (or an earlier tick) had claimed.
    pub claimed_elsewhere: u64,
    /// Wall time of the runs, in total and of the latest.
    pub seconds: f64,
    pub last_seconds: f64,
}

impl Runner {
    /// A runner for `jobs`.
    pub fn new(db: Db, instance: String, jobs: Vec<JobSpec>) -> Self {
        let stats = jobs.iter().map(|j| (j.name, JobStats::default())).collect();
        Self {
            db,
            instance,
            jobs,
            stats: Arc::new(Mutex::new(stats)),
        }
    }

    /// Each job's [`JobStats`], by name.
    pub fn stats(&self) -> Vec<(&'static str, JobStats)> {
        self.stats
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }

    fn count(&self, name: &'static str, f: impl FnOnce(&mut JobStats)) {
        if let Ok(mut m) = self.stats.lock() {
            f(m.entry(name).or_default());
        }
    }

    /// This instance's name, as recorded in job history.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The database the runner records occurrences in.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The registered jobs.
    pub fn jobs(&self) -> &[JobSpec] {
        &self.jobs
    }

    /// Starts the cron scheduler. Keep the returned handle alive; `shutdown` it on exit.
    pub async fn start(&self) -> anyhow::Result<JobScheduler> {
        let sched = JobScheduler::new()
            .await
            .context("creating the job scheduler")?;
        for spec in &self.jobs {
            let runner = self.clone();
            let name = spec.name;
            let job = Job::new_async(spec.schedule.as_str(), move |_id, _sched| {
                let runner = runner.clone();
                Box::pin(async move {
                    let now = trainflow_kernel::now();
                    if let Err(err) = runner.run_occurrence(name, minute_of(now), now).await {
                        tracing::error!(job = name, error = ?err, "job occurrence failed to record");
                    }
                })
            })
            .with_context(|| format!("invalid schedule for job {name}"))?;
            sched
                .add(job)
                .await
                .with_context(|| format!("scheduling job {name}"))?;
        }
        sched.start().await.context("starting the job scheduler")?;
        Ok(sched)
    }

    /// Claims the occurrence `scheduled_for` of job `name` and, if this instance won the claim,
    /// runs it and records the outcome.
    pub async fn run_occurrence(
        &self,
        name: &str,
        scheduled_for: OffsetDateTime,
        now: OffsetDateTime,
    ) -> anyhow::Result<Occurrence> {
        let spec = self
            .jobs
            .iter()
            .find(|j| j.name == name)
            .with_context(|| format!("no job named {name}"))?;
        let run_id = Uuid::now_v7();
        let claimed = {
            let mut tx = self.db.platform_tx().await.map_err(api)?;
            let n = sql!(tx.conn() => |c| sqlx::query(
                "insert into job_runs (id, job, scheduled_for, instance, status, started_at)
                 values ($1, $2, $3, $4, 'running', $5) on conflict (job, scheduled_for) do nothing")
                .bind(run_id).bind(name).bind(scheduled_for).bind(&self.instance).bind(now)
                .execute(&mut *c).await.map(|r| r.rows_affected()))?;
            tx.commit().await.map_err(api)?;
            n == 1
        };
        if !claimed {
            self.count(spec.name, |s| s.claimed_elsewhere += 1);
            return Ok(Occurrence::AlreadyClaimed);
        }
        let started = std::time::Instant::now();
        let result = tokio::spawn((spec.run)(self.db.clone(), now)).await;
        let (status, detail) = match result {
            Ok(Ok(detail)) => ("succeeded", detail),
            Ok(Err(err)) => ("failed", serde_json::json!({"error": format!("{err:#}")})),
            Err(join) => (
                "failed",
                serde_json::json!({"error": format!("job panicked: {join}")}),
            ),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.count(spec.name, |s| {
            if status == "failed" {
                s.failed += 1;
            } else {
                s.succeeded += 1;
            }
            s.seconds += seconds;
            s.last_seconds = seconds;
        });
        if status == "failed" {
            tracing::warn!(job = name, ?detail, "job failed");
        } else {
            tracing::info!(
                job = name,
                ?detail,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "job finished"
            );
        }
        let mut tx = self.db.platform_tx().await.map_err(api)?;
        sql!(tx.conn() => |c| sqlx::query(
            "update job_runs set status = $2, finished_at = $3, detail = $4 where id = $1")
            .bind(run_id).bind(status).bind(trainflow_kernel::now()).bind(sqlx::types::Json(&detail))
            .execute(&mut *c).await.map(drop))?;
        tx.commit().await.map_err(api)?;
        Ok(Occurrence::Ran {
            succeeded: status == "succeeded",
            detail,
        })
    }

    /// Runs a job now, outside its schedule (the command line's `job run`).
    pub async fn run_now(&self, name: &str) -> anyhow::Result<Occurrence> {
        let now = trainflow_kernel::now();
        self.run_occurrence(name, now, now).await
    }

    /// Each job with its last runs, for `/health/jobs` and the portal.
    pub async fn status(&self) -> anyhow::Result<Vec<JobStatus>> {
        let mut out = Vec::new();
        for spec in &self.jobs {
            let mut tx = self.db.platform_tx().await.map_err(api)?;
            let runs: Vec<JobRun> = sql!(tx.conn() => |c| sqlx::query_as(
                "select id, scheduled_for, instance, status, started_at, finished_at, detail from job_runs
                  where job = $1 order by started_at desc limit 5")
                .bind(spec.name).fetch_all(&mut *c).await)?;
            tx.commit().await.map_err(api)?;
            out.push(JobStatus {
                name: spec.name.to_string(),
                schedule: spec.schedule.clone(),
                description: spec.description.to_string(),
                healthy: runs.first().is_none_or(|r| r.status != "failed"),
                recent_runs: runs.into_iter().map(Into::into).collect(),
            });
        }
        Ok(out)
    }
}

fn api(e: trainflow_kernel::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// `now` truncated to the minute: the occurrence key shared by every instance's tick.
pub fn minute_of(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .expect("zero seconds are valid")
}

#[derive(sqlx::FromRow)]
struct JobRun {
    id: Uuid,
    scheduled_for: OffsetDateTime,
    instance: String,
    status: String,
    started_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    detail: Option<sqlx::types::Json<serde_json::Value>>,
}

/// One recorded occurrence.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct JobRunView {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_for: OffsetDateTime,
    /// The instance that claimed it.
    pub instance: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub detail: Option<serde_json::Value>,
}

impl From<JobRun> for JobRunView {
    fn from(r: JobRun) -> Self {
        Self {
            id: r.id,
            scheduled_for: r.scheduled_for,
            instance: r.instance,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
            detail: r.detail.map(|d| d.0),
        }
    }
}

/// A job and its recent history.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct JobStatus {
    pub name: String,
    pub schedule: String,
    pub description: String,
    /// False when the latest run failed.
    pub healthy: bool,
    pub recent_runs: Vec<JobRunView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_are_keyed_to_the_minute() {
        let t = time::macros::datetime!(2026-11-22 03:00:41.123 UTC);
        assert_eq!(
            minute_of(t),
            time::macros::datetime!(2026-11-22 03:00:00 UTC)
        );
    }
}
