//! The worker: claims items of the kinds it has handlers for, runs each handler in its own task
//! while renewing the lease, and records the outcome.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    sync::{watch, OwnedSemaphorePermit, Semaphore},
    task::{JoinError, JoinHandle, JoinSet},
    time::{Instant, MissedTickBehavior},
};
use trainflow_kernel::db::{Backend, Db};

use super::{Backoff, Claimed, FailOutcome, Lease, LeaseState};

/// The future a handler returns: the item's result, stored as JSON.
pub type WorkFuture<'a> =
    Pin<Box<dyn Future<Output = anyhow::Result<serde_json::Value>> + Send + 'a>>;

/// Runs the items of one kind.
///
/// Return the result to store, or an error: [`Permanent`] fails the item at once, [`Canceled`]
/// (what [`WorkCtx::progress`] returns after a cancellation request) ends it as canceled, any
/// other error fails the attempt and the item is retried after its back-off. A panic fails the
/// attempt like an error. Items run at least once: a handler may run again after its worker
/// died mid-attempt.
pub trait WorkHandler: Send + Sync + 'static {
    /// Runs one attempt of `item`.
    fn run<'a>(&'a self, item: &'a Claimed, ctx: &'a WorkCtx) -> WorkFuture<'a>;
}

struct FnHandler<F>(F);

impl<F, Fut> WorkHandler for FnHandler<F>
where
    F: Fn(Claimed, WorkCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<serde_json::Value>> + Send + 'static,
{
    fn run<'a>(&'a self, item: &'a Claimed, ctx: &'a WorkCtx) -> WorkFuture<'a> {
        Box::pin((self.0)(item.clone(), ctx.clone()))
    }
}

/// A handler from an async closure taking the item and the context by value.
pub fn handler_fn<F, Fut>(f: F) -> impl WorkHandler
where
    F: Fn(Claimed, WorkCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<serde_json::Value>> + Send + 'static,
{
    FnHandler(f)
}

/// The handler stopped because the item was canceled.
#[derive(Debug, Clone, Copy)]
pub struct Canceled;

impl std::fmt::Display for Canceled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the work item was canceled")
    }
}

impl std::error::Error for Canceled {}

/// The worker no longer holds the item's lease; another attempt may be running.
#[derive(Debug, Clone, Copy)]
pub struct LeaseLost;

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the lease on the work item was lost")
    }
}

impl std::error::Error for LeaseLost {}

/// A failure retrying cannot mend (an invalid payload, a missing object): no further attempts.
#[derive(Debug, Clone)]
pub struct Permanent(pub String);

impl std::fmt::Display for Permanent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Permanent {}

/// What a handler gets beside its item: the database and its lease.
#[derive(Clone)]
pub struct WorkCtx {
    db: Db,
    lease: Lease,
    cancel: Arc<AtomicBool>,
}

impl WorkCtx {
    /// A context for running `lease`'s item (the worker makes one per attempt).
    pub fn new(db: Db, lease: Lease) -> Self {
        Self {
            db,
            lease,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The lease of this attempt.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Reports progress (`done` of `total`, e.g. 40 of 100, and what is happening), which also
    /// renews the lease. Fails with [`Canceled`] when the item was asked to cancel — return it
    /// (`?`) to stop — and with [`LeaseLost`] when the attempt is no longer this worker's.
    pub async fn progress(&self, done: u64, total: u64, message: &str) -> anyhow::Result<()> {
        let now = trainflow_kernel::now();
        let state = super::progress(&self.db, &self.lease, done, total, message, now).await?;
        self.check(state)
    }

    /// True once a cancellation request has been seen (by a progress report or the worker's
    /// lease renewal); costs no database access.
    pub fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn check(&self, state: LeaseState) -> anyhow::Result<()> {
        match state {
            LeaseState::Held => Ok(()),
            LeaseState::CancelRequested => {
                self.cancel.store(true, Ordering::Relaxed);
                Err(Canceled.into())
            }
            LeaseState::Lost => Err(LeaseLost.into()),
        }
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Items run at once in this instance (0: the worker does not start).
    pub concurrency: usize,
    /// How often an idle worker looks for due items; enqueueing in this instance wakes it
    /// sooner.
    pub poll_interval: Duration,
    /// How long a claim holds an item without renewal; the worker renews it every third of
    /// this while the handler runs.
    pub lease: Duration,
    /// Waits between attempts.
    pub backoff: Backoff,
    /// At shutdown, how long running items may take to finish before their leases are
    /// released for another instance.
    pub shutdown_grace: Duration,
}

impl WorkerConfig {
    /// The defaults for `backend`: one item at a time on SQLite (one writer), two on
    /// PostgreSQL.
    pub fn for_backend(backend: Backend) -> Self {
        Self {
            concurrency: match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => 2,
            },
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            backoff: Backoff::default(),
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

/// This instance's background worker and its handlers by kind.
#[derive(Clone)]
pub struct Worker {
    db: Db,
    instance: String,
    config: WorkerConfig,
    handlers: HashMap<String, Arc<dyn WorkHandler>>,
}

impl Worker {
    /// A worker with no handlers yet.
    pub fn new(db: Db, instance: impl Into<String>, config: WorkerConfig) -> Self {
        Self {
            db,
            instance: instance.into(),
            config,
            handlers: HashMap::new(),
        }
    }

    /// Runs items of `kind` with `handler` (replacing an earlier handler of the kind).
    pub fn handle(mut self, kind: impl Into<String>, handler: impl WorkHandler) -> Self {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    /// The kinds this worker claims, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    /// The configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Starts claiming in the background. Without handlers, or with a concurrency of 0, nothing
    /// starts. Keep the handle and [`WorkerHandle::shutdown`] it on exit; dropping it stops the
    /// worker the same way, without waiting.
    pub fn start(self) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        let task = if self.handlers.is_empty() || self.config.concurrency == 0 {
            None
        } else {
            Some(tokio::spawn(Arc::new(self).run(stopped)))
        };
        WorkerHandle { stop, task }
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let kinds = self.kinds();
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let mut running = JoinSet::new();
        tracing::info!(
            instance = %self.instance, ?kinds, concurrency = self.config.concurrency,
            "background worker started"
        );
        loop {
            while let Some(ended) = running.try_join_next() {
                log_task_end(ended);
            }
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = stopped(&mut stop) => break,
            };
            if *stop.borrow() {
                break;
            }
            // Registered before the claim, so an enqueue during the claim is not missed.
            let woken = super::wake_signal().notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = trainflow_kernel::now();
            match super::claim(&self.db, &self.instance, &kinds, self.config.lease, now).await {
                Ok(Some(item)) => {
                    running.spawn(self.clone().run_item(item, permit, stop.clone()));
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::error!(error = ?err, "claiming background work failed"),
            }
            drop(permit);
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = stopped(&mut stop) => break,
            }
        }
        while let Some(ended) = running.join_next().await {
            log_task_end(ended);
        }
        tracing::info!(instance = %self.instance, "background worker stopped");
    }

    async fn run_item(
        self: Arc<Self>,
        item: Claimed,
        _permit: OwnedSemaphorePermit,
        mut stop: watch::Receiver<bool>,
    ) {
        let lease = item.lease.clone();
        let Some(handler) = self.handlers.get(&item.kind).cloned() else {
            // Claims only ask for registered kinds; give the item back all the same.
            self.record("release", || super::release(&self.db, &lease, now()))
                .await;
            return;
        };
        let ctx = WorkCtx::new(self.db.clone(), lease.clone());
        let started = std::time::Instant::now();
        tracing::info!(
            work = %item.id, kind = %item.kind, attempt = lease.attempt, "work started"
        );
        let mut attempt = {
            let (item, ctx) = (item.clone(), ctx.clone());
            tokio::spawn(async move { handler.run(&item, &ctx).await })
        };
        let period = (self.config.lease / 3).max(Duration::from_millis(100));
        let mut renew = tokio::time::interval_at(Instant::now() + period, period);
        renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut deadline: Option<Instant> = None;
        let ended = loop {
            tokio::select! {
                ended = &mut attempt => break ended,
                _ = renew.tick() => match super::heartbeat(&self.db, &lease, now()).await {
                    Ok(state) => {
                        if state == LeaseState::CancelRequested {
                            ctx.cancel.store(true, Ordering::Relaxed);
                        }
                        if state == LeaseState::Lost {
                            attempt.abort();
                            tracing::warn!(work = %item.id, kind = %item.kind,
                                "the lease on a running item was lost; its handler was stopped");
                            return;
                        }
                    }
                    Err(err) => tracing::warn!(work = %item.id, error = ?err, "renewing a lease failed"),
                },
                _ = stopped(&mut stop), if deadline.is_none() => {
                    deadline = Some(Instant::now() + self.config.shutdown_grace);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    attempt.abort();
                    let _ = (&mut attempt).await;
                    tracing::info!(work = %item.id, kind = %item.kind,
                        "shutting down: the running item was given back to the queue");
                    self.record("release", || super::release(&self.db, &lease, now())).await;
                    return;
                }
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match ended {
            Ok(Ok(result)) => {
                let held = self
                    .record("complete", || {
                        super::complete(&self.db, &lease, &result, now())
                    })
                    .await;
                if held == Some(false) {
                    tracing::warn!(work = %item.id, kind = %item.kind,
                        "work finished after its lease was lost; the result was discarded");
                } else {
                    tracing::info!(work = %item.id, kind = %item.kind, elapsed_ms, "work succeeded");
                }
            }
            Ok(Err(err)) if err.is::<Canceled>() => {
                self.record("cancel", || {
                    super::acknowledge_cancel(&self.db, &lease, now())
                })
                .await;
                tracing::info!(work = %item.id, kind = %item.kind, elapsed_ms, "work canceled");
            }
            Ok(Err(err)) if err.is::<LeaseLost>() => {
                tracing::warn!(work = %item.id, kind = %item.kind,
                    "the handler stopped: the lease on its item was lost");
            }
            Ok(Err(err)) => {
                let permanent = err.is::<Permanent>();
                self.failed(&item, &format!("{err:#}"), permanent).await;
            }
            Err(join) => self.failed(&item, &describe(join), false).await,
        }
    }

    async fn failed(&self, item: &Claimed, error: &str, permanent: bool) {
        let lease = &item.lease;
        let outcome = self
            .record("fail", || async {
                if permanent {
                    super::fail_permanently(&self.db, lease, error, now()).await
                } else {
                    super::fail(&self.db, lease, error, &self.config.backoff, now()).await
                }
            })
            .await;
        match outcome {
            Some(FailOutcome::Retrying { at }) => tracing::warn!(
                work = %item.id, kind = %item.kind, attempt = lease.attempt, %error, retry_at = %at,
                "work attempt failed; retrying later"
            ),
            Some(FailOutcome::Failed) => tracing::error!(
                work = %item.id, kind = %item.kind, attempt = lease.attempt, %error,
                "work failed"
            ),
            Some(FailOutcome::Canceled) => {
                tracing::info!(work = %item.id, kind = %item.kind, "work canceled")
            }
            Some(FailOutcome::LeaseLost) | None => {}
        }
    }

    /// Runs an outcome write, trying a few times: a write that never lands leaves the item
    /// running until its lease lapses, when it is claimed again.
    async fn record<T, F, Fut>(&self, what: &str, write: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = trainflow_kernel::ApiResult<T>>,
    {
        for pause_ms in [0, 100, 500, 2000] {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            match write().await {
                Ok(v) => return Some(v),
                Err(err) => tracing::warn!(what, error = ?err, "recording a work outcome failed"),
            }
        }
        None
    }
}

/// Stops a started [`Worker`].
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// True while the worker runs.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops claiming, lets running items finish within the grace period, gives the rest back
    /// to the queue, and returns when the worker has stopped.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "the background worker ended abnormally");
            }
        }
    }
}

/// Resolves once a stop is requested (or the handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn now() -> time::OffsetDateTime {
    trainflow_kernel::now()
}

fn describe(join: JoinError) -> String {
    if !join.is_panic() {
        return "the handler was stopped before it finished".into();
    }
    let panic = join.into_panic();
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("the handler panicked: {message}")
}

fn log_task_end(ended: Result<(), JoinError>) {
    if let Err(err) = ended {
        tracing::error!(error = %err, "a background work task ended abnormally");
    }
}
