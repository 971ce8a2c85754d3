//! The durable work queue: long-running background work (reports, computations, generated
//! sessions) as rows of `work_items`, claimed by [`Worker`]s in any instance.
//!
//! An item is `queued` until it is due (`run_after`) and claimed. The claim makes it `running`
//! under a lease (`locked_by`, `locked_until`) that the worker renews while the handler runs;
//! the handler's outcome makes it `succeeded`, or `queued` again after an exponential back-off,
//! or `failed` once `max_attempts` attempts have failed. A worker that dies stops renewing: when
//! its lease lapses the next claim takes the item again (the lapsed attempt counts). Every
//! report from a worker is fenced by the lease it claimed with, so a worker that lost its lease
//! cannot overwrite the attempt that followed. Delivery is therefore at least once: handlers
//! must tolerate running again after a crash.
//!
//! Cancellation ends a queued item at once; a running one is marked, and its handler stops at
//! its next [`WorkCtx::progress`] call.
//!
//! On PostgreSQL claims use `for update skip locked`, so concurrent workers never wait for or
//! take the same item; on SQLite the write lock (`BEGIN IMMEDIATE`) serialises them. The table
//! spans tenants: row-level security lets a tenant's transaction see only its own items, and
//! every function that takes a [`QueueTx`] also scopes its statements to the transaction's
//! tenant, which is what isolates tenants on SQLite.

mod worker;

use std::time::Duration;

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use sqlx::{
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgArgumentBuffer, PgTypeInfo},
    sqlite::{SqliteArgumentValue, SqliteTypeInfo},
    types::Json,
    Postgres, Sqlite,
};
use time::{format_description::BorrowedFormatItem, OffsetDateTime, UtcOffset};
use tokio::sync::Notify;
use trainflow_kernel::{
    db::{Conn, Db, TenantTx, Tx},
    envelope::Page,
    sql, ApiError, ApiResult, TenantId, UserId,
};
use uuid::Uuid;

pub use worker::{
    handler_fn, Canceled, LeaseLost, Permanent, WorkCtx, WorkFuture, WorkHandler, Worker,
    WorkerConfig, WorkerHandle,
};

/// Attempts of an item whose enqueuer does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The most attempts an item may have.
pub const MAX_ATTEMPTS: u32 = 100;
/// The largest payload, serialised.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// The longest error and progress message kept (longer ones are cut).
const MAX_MESSAGE_CHARS: usize = 2000;
/// Finished items deleted per statement by [`prune`].
const PRUNE_BATCH: i64 = 1000;

/// Wakes this process's idle workers; [`enqueue`] calls it after committing.
static WAKE: Notify = Notify::const_new();

/// Wakes this instance's idle workers so they claim at once instead of at their next poll.
/// Call it after committing a transaction that [`enqueue_in`] wrote to (or after [`retry`]).
pub fn wake() {
    WAKE.notify_waiters();
}

fn wake_signal() -> &'static Notify {
    &WAKE
}

// ---------------------------------------------------------------------------------------------
// Types

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum WorkStatus {
    /// Waiting to be claimed (possibly not yet due).
    Queued,
    /// Claimed by a worker.
    Running,
    /// The handler finished; `result` holds its answer.
    Succeeded,
    /// Every attempt failed (or the handler reported a permanent failure).
    Failed,
    /// Canceled before or while it ran.
    Canceled,
}

impl WorkStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [WorkStatus; 5] = [
        WorkStatus::Queued,
        WorkStatus::Running,
        WorkStatus::Succeeded,
        WorkStatus::Failed,
        WorkStatus::Canceled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkStatus::Queued => "queued",
            WorkStatus::Running => "running",
            WorkStatus::Succeeded => "succeeded",
            WorkStatus::Failed => "failed",
            WorkStatus::Canceled => "canceled",
        }
    }

    /// True for `succeeded`, `failed` and `canceled`.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            WorkStatus::Succeeded | WorkStatus::Failed | WorkStatus::Canceled
        )
    }
}

impl std::str::FromStr for WorkStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?} (queued, running, succeeded, failed, canceled)")
            })
    }
}

impl std::fmt::Display for WorkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An item to enqueue. `NewWork::new(kind, payload)` and the builder methods fill the rest.
#[derive(Debug, Clone)]
pub struct NewWork {
    /// What to do: the name a handler is registered under, e.g. `reports.generate`.
    pub kind: String,
    /// The tenant the work is for; `None` for platform work. Inside a tenant's transaction
    /// (see [`enqueue_in`]) `None` means that tenant.
    pub tenant: Option<TenantId>,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Higher runs first among due items (default 0).
    pub priority: i32,
    /// Attempts before the item is `failed` (1–100, default 3).
    pub max_attempts: u32,
    /// Not before this time (default: now).
    pub run_after: Option<OffsetDateTime>,
    /// While an unfinished item of the same kind and tenant has this key, enqueueing another
    /// returns the existing one instead.
    pub dedupe_key: Option<String>,
    /// The person who asked for it.
    pub created_by: Option<UserId>,
}

impl NewWork {
    /// Platform work of `kind` with `payload` and the defaults.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            tenant: None,
            payload,
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_after: None,
            dedupe_key: None,
            created_by: None,
        }
    }

    /// For `tenant`.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// With priority `priority` (higher first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// With at most `n` attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Not before `at`.
    pub fn run_after(mut self, at: OffsetDateTime) -> Self {
        self.run_after = Some(at);
        self
    }

    /// Deduplicated by `key` among unfinished items of the kind and tenant.
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Asked for by `user`.
    pub fn created_by(mut self, user: UserId) -> Self {
        self.created_by = Some(user);
        self
    }

    fn validate(&self) -> ApiResult<()> {
        let kind_ok = !self.kind.is_empty()
            && self.kind.len() <= 100
            && self
                .kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !kind_ok {
            return Err(ApiError::field(
                "kind",
                "must be 1–100 characters of a–z, 0–9, '.', '_' or '-'",
            ));
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(ApiError::field(
                "max_attempts",
                format!("must be between 1 and {MAX_ATTEMPTS}"),
            ));
        }
        if let Some(key) = &self.dedupe_key {
            if key.is_empty() || key.len() > 200 {
                return Err(ApiError::field("dedupe_key", "must be 1–200 characters"));
            }
        }
        let size = serde_json::to_vec(&self.payload)
            .map_err(|e| ApiError::Internal(e.into()))?
            .len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(ApiError::field(
                "payload",
                format!("must be at most {MAX_PAYLOAD_BYTES} bytes as JSON"),
            ));
        }
        Ok(())
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new item.
    Created(Uuid),
    /// An unfinished item with the same dedupe key already exists; nothing was added.
    Duplicate(Uuid),
}

impl Enqueued {
    /// The new or the existing item.
    pub fn id(self) -> Uuid {
        match self {
            Enqueued::Created(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// A worker's hold on a claimed item. Progress and outcomes are accepted only with the lease of
/// the current attempt.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The item.
    pub item: Uuid,
    /// The instance holding it.
    pub instance: String,
    /// This attempt, from 1.
    pub attempt: u32,
    /// The item's attempt limit.
    pub max_attempts: u32,
    /// How long each renewal extends the lease.
    pub duration: Duration,
    token: Uuid,
}

/// A claimed item, handed to its handler.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub tenant: Option<TenantId>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    /// The hold on it; pass it to [`progress`], [`complete`] and [`fail`].
    pub lease: Lease,
}

impl Claimed {
    /// This attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.lease.attempt
    }
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Still held; carry on.
    Held,
    /// Still held, but someone asked to cancel the item: stop and report [`Canceled`].
    CancelRequested,
    /// No longer held (it lapsed and another attempt began, or the item was finished).
    Lost,
}

/// Exponential back-off between attempts: `base`, then doubling, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// How [`fail`] left the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again, due at `at`.
    Retrying { at: OffsetDateTime },
    /// No attempts left (or a permanent failure): `failed`.
    Failed,
    /// Cancellation had been requested: `canceled`.
    Canceled,
    /// The lease was no longer held; nothing was recorded.
    LeaseLost,
}

/// What [`cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was queued and is now `canceled`.
    Canceled,
    /// It is running: its handler is asked to stop at its next progress report.
    Requested,
}

/// One item, for history, the command line and pages.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct WorkItem {
    pub id: Uuid,
    /// Absent for platform work (`null` in the command line's JSON).
    pub tenant_id: Option<Uuid>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: WorkStatus,
    pub priority: i32,
    /// Attempts begun so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not claimed before this time.
    #[serde(with = "time::serde::rfc3339")]
    pub run_after: OffsetDateTime,
    /// The instance running it, or the last one that did.
    pub locked_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub heartbeat_at: Option<OffsetDateTime>,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    /// `progress_done` of `progress_total`, 0–100.
    pub progress_percent: Option<u8>,
    pub progress_message: Option<String>,
    /// The handler's answer, once succeeded.
    pub result: Option<serde_json::Value>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancel_requested_at: Option<OffsetDateTime>,
    pub canceled_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the latest attempt began.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub created_by: Option<Uuid>,
    pub dedupe_key: Option<String>,
}

/// Filters of [`list`]; unset fields match everything.
#[derive(Debug, Clone, Default)]
pub struct WorkFilter {
    pub status: Option<WorkStatus>,
    pub kind: Option<String>,
    /// Only this tenant's items (in the platform scope; a tenant's transaction sees only its own).
    pub tenant: Option<TenantId>,
}

/// The queue at a glance, for `/health/jobs`.
#[derive(Debug, Clone, Default, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct QueueStats {
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub canceled: i64,
    /// Queued items that are due now (the rest wait for their time or back-off).
    pub due: i64,
    /// How long the longest-waiting due item has been due, in seconds.
    pub oldest_queued_secs: Option<i64>,
    /// Running items whose lease has lapsed (their worker stopped renewing); the next claim
    /// of their kind takes them again.
    pub stalled: i64,
}

/// A transaction the queue's functions can run in: the platform scope ([`Tx`], every item) or a
/// tenant's ([`TenantTx`], that tenant's items only).
pub trait QueueTx: Send {
    /// The connection to run statements on.
    fn conn(&mut self) -> Conn<'_>;
    /// The tenant the transaction is bound to, if any.
    fn scope(&self) -> Option<TenantId>;
}

impl QueueTx for Tx {
    fn conn(&mut self) -> Conn<'_> {
        Tx::conn(self)
    }
    fn scope(&self) -> Option<TenantId> {
        None
    }
}

impl QueueTx for TenantTx {
    fn conn(&mut self) -> Conn<'_> {
        TenantTx::conn(self)
    }
    fn scope(&self) -> Option<TenantId> {
        Some(self.tenant())
    }
}

// ---------------------------------------------------------------------------------------------
// Time as stored

/// A time bound into `work_items`: `timestamptz` on PostgreSQL; on SQLite RFC 3339 text with a
/// fixed six-digit fraction in UTC, so that comparing or ordering the text compares the times
/// (sqlx's default text drops a zero fraction and trims trailing zeros, which misorders times
/// within one second).
#[derive(Debug, Clone, Copy)]
struct At(OffsetDateTime);

const SQLITE_TIME: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

impl sqlx::Type<Sqlite> for At {
    fn type_info() -> SqliteTypeInfo {
        <String as sqlx::Type<Sqlite>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, Sqlite> for At {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        let text = self.0.to_offset(UtcOffset::UTC).format(SQLITE_TIME)?;
        <String as sqlx::Encode<'q, Sqlite>>::encode(text, buf)
    }
}

impl sqlx::Type<Postgres> for At {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, Postgres> for At {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as sqlx::Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

fn at(t: OffsetDateTime) -> At {
    At(t)
}

fn cut(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

fn tenant_uuid(t: Option<TenantId>) -> Option<Uuid> {
    t.map(|t| t.0)
}

// ---------------------------------------------------------------------------------------------
// Enqueue

/// Enqueues `new` in its own transaction and wakes this instance's workers.
pub async fn enqueue(db: &Db, new: NewWork, now: OffsetDateTime) -> ApiResult<Enqueued> {
    let mut tx = db.platform_tx().await?;
    let out = enqueue_in(&mut tx, new, now).await?;
    tx.commit().await?;
    wake();
    Ok(out)
}

/// Enqueues `new` in the caller's transaction, so the item exists only if the use case commits.
/// In a tenant's transaction the item belongs to that tenant (a different `new.tenant` is
/// refused). Call [`wake`] after committing for the item to be claimed at once.
pub async fn enqueue_in(
    tx: &mut (impl QueueTx + ?Sized),
    new: NewWork,
    now: OffsetDateTime,
) -> ApiResult<Enqueued> {
    let tenant = match (tx.scope(), new.tenant) {
        (Some(scope), Some(t)) if t != scope => {
            return Err(ApiError::field(
                "tenant",
                "must be the tenant of the transaction",
            ))
        }
        (Some(scope), _) => Some(scope),
        (None, t) => t,
    };
    new.validate()?;
    let id = Uuid::now_v7();
    let run_after = new.run_after.unwrap_or(now);
    let max_attempts = new.max_attempts as i32;
    // A conflicting item can finish between the refused insert and the lookup; then try again.
    for _ in 0..3 {
        let inserted = sql!(tx.conn() => |c| sqlx::query(
            "insert into work_items (id, tenant_id, kind, payload, status, priority, attempts,
                                     max_attempts, run_after, created_at, created_by, dedupe_key)
             values ($1, $2, $3, $4, 'queued', $5, 0, $6, $7, $8, $9, $10)
             on conflict do nothing")
            .bind(id).bind(tenant_uuid(tenant)).bind(&new.kind).bind(Json(&new.payload))
            .bind(new.priority).bind(max_attempts).bind(at(run_after)).bind(at(now))
            .bind(new.created_by.map(|u| u.0)).bind(new.dedupe_key.as_deref())
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        if inserted == 1 {
            return Ok(Enqueued::Created(id));
        }
        let Some(key) = new.dedupe_key.as_deref() else {
            break;
        };
        if let Some(existing) = unfinished_duplicate(tx, tenant, &new.kind, key).await? {
            return Ok(Enqueued::Duplicate(existing));
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "enqueueing {} conflicted without a duplicate to return",
        new.kind
    )))
}

async fn unfinished_duplicate(
    tx: &mut (impl QueueTx + ?Sized),
    tenant: Option<TenantId>,
    kind: &str,
    key: &str,
) -> ApiResult<Option<Uuid>> {
    let tenant = tenant_uuid(tenant);
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from work_items
          where kind = $1 and dedupe_key = $2 and status in ('queued', 'running')
            and (tenant_id = $3 or (tenant_id is null and $3 is null))")
        .bind(kind).bind(key).bind(tenant).fetch_optional(&mut *c).await)?)
}

// ---------------------------------------------------------------------------------------------
// Worker side: claim, renew, report

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    kind: String,
    payload: Json<serde_json::Value>,
    attempts: i32,
    max_attempts: i32,
    created_by: Option<Uuid>,
    created_at: OffsetDateTime,
}

/// Running items of these kinds whose lease lapsed before `$1` go back to the queue (due at
/// once), or end as `failed` when that was their last attempt (a handler that kills its worker
/// must not loop) or `canceled` when cancellation was asked for.
const EXPIRE: &str = "
    update work_items
       set status = case when cancel_requested_at is not null then 'canceled'
                         when attempts >= max_attempts then 'failed'
                         else 'queued' end,
           finished_at = case when cancel_requested_at is not null or attempts >= max_attempts
                              then $1 end,
           last_error = 'the lease of ' || coalesce(locked_by, 'a worker')
                        || ' lapsed before the attempt finished',
           locked_until = null, lease_id = null
     where id in (select id from work_items
                   where status = 'running' and locked_until < $1 and %KINDS%
                   %LOCK%)";

/// Takes the most urgent due item of these kinds.
const CLAIM: &str = "
    update work_items
       set status = 'running', attempts = attempts + 1, locked_by = $1, lease_id = $2,
           locked_until = $3, heartbeat_at = $4, started_at = $4,
           progress_done = null, progress_total = null, progress_message = null
     where id = (select id from work_items
                  where status = 'queued' and run_after <= $4 and %KINDS%
                  order by priority desc, run_after, id
                  limit 1
                  %LOCK%)
    returning id, tenant_id, kind, payload, attempts, max_attempts, created_by, created_at";

fn claim_sql(template: &str, kinds_param: &str, postgres: bool) -> String {
    let kinds = if postgres {
        format!("kind = any({kinds_param})")
    } else {
        format!("kind in (select value from json_each({kinds_param}))")
    };
    template.replace("%KINDS%", &kinds).replace(
        "%LOCK%",
        if postgres {
            "for update skip locked"
        } else {
            ""
        },
    )
}

/// Claims the most urgent due item of one of `kinds` for `instance`, under a lease of `lease`.
/// First returns the items of these kinds whose lease lapsed to the queue (or ends them, after
/// their last attempt). `None` when nothing is due.
pub async fn claim(
    db: &Db,
    instance: &str,
    kinds: &[String],
    lease: Duration,
    now: OffsetDateTime,
) -> ApiResult<Option<Claimed>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let token = Uuid::new_v4();
    let until = now + lease;
    let mut tx = db.platform_tx().await?;
    let row: Option<ClaimRow> = match tx.conn() {
        Conn::Postgres(c) => {
            sqlx::query(&claim_sql(EXPIRE, "$2", true))
                .bind(at(now))
                .bind(kinds)
                .execute(&mut *c)
                .await?;
            sqlx::query_as(&claim_sql(CLAIM, "$5", true))
                .bind(instance)
                .bind(token)
                .bind(at(until))
                .bind(at(now))
                .bind(kinds)
                .fetch_optional(&mut *c)
                .await?
        }
        Conn::Sqlite(c) => {
            let kinds = serde_json::to_string(kinds).map_err(|e| ApiError::Internal(e.into()))?;
            sqlx::query(&claim_sql(EXPIRE, "$2", false))
                .bind(at(now))
                .bind(&kinds)
                .execute(&mut *c)
                .await?;
            sqlx::query_as(&claim_sql(CLAIM, "$5", false))
                .bind(instance)
                .bind(token)
                .bind(at(until))
                .bind(at(now))
                .bind(&kinds)
                .fetch_optional(&mut *c)
                .await?
        }
    };
    tx.commit().await?;
    Ok(row.map(|r| Claimed {
        id: r.id,
        tenant: r.tenant_id.map(TenantId),
        kind: r.kind,
        payload: r.payload.0,
        created_by: r.created_by.map(UserId),
        created_at: r.created_at,
        lease: Lease {
            item: r.id,
            instance: instance.to_string(),
            attempt: r.attempts.max(0) as u32,
            max_attempts: r.max_attempts.max(1) as u32,
            duration: lease,
            token,
        },
    }))
}

fn lease_state(row: Option<Option<OffsetDateTime>>) -> LeaseState {
    match row {
        None => LeaseState::Lost,
        Some(None) => LeaseState::Held,
        Some(Some(_)) => LeaseState::CancelRequested,
    }
}

/// Records progress (`done` of `total`, and what is happening) and renews the lease. Answers
/// whether the item was asked to cancel, or that the lease is lost.
pub async fn progress(
    db: &Db,
    lease: &Lease,
    done: u64,
    total: u64,
    message: &str,
    now: OffsetDateTime,
) -> ApiResult<LeaseState> {
    let done = i64::try_from(done).unwrap_or(i64::MAX);
    let total = i64::try_from(total).unwrap_or(i64::MAX);
    let mut tx = db.platform_tx().await?;
    let row: Option<Option<OffsetDateTime>> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "update work_items
            set progress_done = $3, progress_total = $4, progress_message = $5,
                heartbeat_at = $6, locked_until = $7
          where id = $1 and lease_id = $2 and status = 'running'
         returning cancel_requested_at")
        .bind(lease.item).bind(lease.token).bind(done).bind(total).bind(cut(message))
        .bind(at(now)).bind(at(now + lease.duration))
        .fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(lease_state(row))
}

/// Renews the lease and the heartbeat without touching the progress.
pub async fn heartbeat(db: &Db, lease: &Lease, now: OffsetDateTime) -> ApiResult<LeaseState> {
    let mut tx = db.platform_tx().await?;
    let row: Option<Option<OffsetDateTime>> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "update work_items set heartbeat_at = $3, locked_until = $4
          where id = $1 and lease_id = $2 and status = 'running'
         returning cancel_requested_at")
        .bind(lease.item).bind(lease.token).bind(at(now)).bind(at(now + lease.duration))
        .fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(lease_state(row))
}

/// Records success with the handler's `result`. False when the lease was no longer held (the
/// result is then discarded).
pub async fn complete(
    db: &Db,
    lease: &Lease,
    result: &serde_json::Value,
    now: OffsetDateTime,
) -> ApiResult<bool> {
    let mut tx = db.platform_tx().await?;
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update work_items
            set status = 'succeeded', result = $3, finished_at = $4, heartbeat_at = $4,
                locked_until = null, lease_id = null
          where id = $1 and lease_id = $2 and status = 'running'")
        .bind(lease.item).bind(lease.token).bind(Json(result)).bind(at(now))
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Records a failed attempt: queued again after `backoff` when attempts remain, otherwise
/// `failed` (and `canceled` when cancellation was requested meanwhile).
pub async fn fail(
    db: &Db,
    lease: &Lease,
    error: &str,
    backoff: &Backoff,
    now: OffsetDateTime,
) -> ApiResult<FailOutcome> {
    let give_up = lease.attempt >= lease.max_attempts;
    record_failure(
        db,
        lease,
        error,
        give_up,
        now + backoff.delay(lease.attempt),
        now,
    )
    .await
}

/// Records a failure that retrying cannot mend (an invalid payload, say): `failed` at once.
pub async fn fail_permanently(
    db: &Db,
    lease: &Lease,
    error: &str,
    now: OffsetDateTime,
) -> ApiResult<FailOutcome> {
    record_failure(db, lease, error, true, now, now).await
}

async fn record_failure(
    db: &Db,
    lease: &Lease,
    error: &str,
    give_up: bool,
    retry_at: OffsetDateTime,
    now: OffsetDateTime,
) -> ApiResult<FailOutcome> {
    let mut tx = db.platform_tx().await?;
    let status: Option<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "update work_items
            set status = case when cancel_requested_at is not null then 'canceled'
                              when $3 then 'failed' else 'queued' end,
                finished_at = case when cancel_requested_at is not null or $3 then $4 end,
                run_after = case when cancel_requested_at is not null or $3 then run_after
                                 else $5 end,
                last_error = $6, heartbeat_at = $4, locked_until = null, lease_id = null
          where id = $1 and lease_id = $2 and status = 'running'
         returning status")
        .bind(lease.item).bind(lease.token).bind(give_up).bind(at(now)).bind(at(retry_at))
        .bind(cut(error))
        .fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(match status.as_deref() {
        None => FailOutcome::LeaseLost,
        Some("queued") => FailOutcome::Retrying { at: retry_at },
        Some("canceled") => FailOutcome::Canceled,
        Some(_) => FailOutcome::Failed,
    })
}

/// Records that the handler stopped because the item was canceled. False when the lease was no
/// longer held.
pub async fn acknowledge_cancel(db: &Db, lease: &Lease, now: OffsetDateTime) -> ApiResult<bool> {
    let mut tx = db.platform_tx().await?;
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update work_items
            set status = 'canceled', finished_at = $3, heartbeat_at = $3,
                cancel_requested_at = coalesce(cancel_requested_at, $3),
                locked_until = null, lease_id = null
          where id = $1 and lease_id = $2 and status = 'running'")
        .bind(lease.item).bind(lease.token).bind(at(now))
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Gives the item back unfinished (the worker is shutting down): queued and due at once, the
/// interrupted attempt not counted. A canceled item ends as `canceled` instead.
pub async fn release(db: &Db, lease: &Lease, now: OffsetDateTime) -> ApiResult<bool> {
    let mut tx = db.platform_tx().await?;
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update work_items
            set status = case when cancel_requested_at is not null then 'canceled'
                              else 'queued' end,
                finished_at = case when cancel_requested_at is not null then $3 end,
                attempts = case when cancel_requested_at is not null then attempts
                                else attempts - 1 end,
                run_after = $3, locked_until = null, lease_id = null
          where id = $1 and lease_id = $2 and status = 'running'")
        .bind(lease.item).bind(lease.token).bind(at(now))
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// Administration: cancel, retry, history

/// Cancels an item: a queued one ends now; a running one is marked, and its handler stops at
/// its next progress report. `by` is recorded. A finished item is a conflict; an item the
/// transaction cannot see is not found.
pub async fn cancel(
    tx: &mut (impl QueueTx + ?Sized),
    id: Uuid,
    by: Option<UserId>,
    now: OffsetDateTime,
) -> ApiResult<CancelOutcome> {
    let scope = tenant_uuid(tx.scope());
    let status: Option<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "update work_items
            set status = case when status = 'queued' then 'canceled' else status end,
                finished_at = case when status = 'queued' then $3 else finished_at end,
                cancel_requested_at = coalesce(cancel_requested_at, $3),
                canceled_by = coalesce(canceled_by, $4)
          where id = $1 and status in ('queued', 'running') and ($2 is null or tenant_id = $2)
         returning status")
        .bind(id).bind(scope).bind(at(now)).bind(by.map(|u| u.0))
        .fetch_optional(&mut *c).await)?;
    match status.as_deref() {
        Some("canceled") => Ok(CancelOutcome::Canceled),
        Some(_) => Ok(CancelOutcome::Requested),
        None => match get(tx, id).await? {
            None => Err(ApiError::NotFound),
            Some(item) => Err(ApiError::Conflict {
                field: "status".into(),
                message: format!("the item has already {}", finished_phrase(item.status)),
            }),
        },
    }
}

fn finished_phrase(status: WorkStatus) -> &'static str {
    match status {
        WorkStatus::Succeeded => "succeeded",
        WorkStatus::Failed => "failed",
        WorkStatus::Canceled => "been canceled",
        WorkStatus::Queued | WorkStatus::Running => "changed",
    }
}

/// Queues a failed item again with a fresh set of attempts, due at `now`. Refused (conflict)
/// for an item that has not failed, or while another unfinished item has its dedupe key.
/// Call [`wake`] after committing for it to be claimed at once.
pub async fn retry(
    tx: &mut (impl QueueTx + ?Sized),
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let item = get(tx, id).await?.ok_or(ApiError::NotFound)?;
    if item.status != WorkStatus::Failed {
        return Err(ApiError::Conflict {
            field: "status".into(),
            message: format!(
                "only failed items can be retried; this one is {}",
                item.status
            ),
        });
    }
    if let Some(key) = item.dedupe_key.as_deref() {
        let tenant = item.tenant_id.map(TenantId);
        if unfinished_duplicate(tx, tenant, &item.kind, key)
            .await?
            .is_some()
        {
            return Err(ApiError::Conflict {
                field: "dedupe_key".into(),
                message: "another unfinished item has the same dedupe key".into(),
            });
        }
    }
    let scope = tenant_uuid(tx.scope());
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update work_items
            set status = 'queued', attempts = 0, run_after = $3, finished_at = null,
                result = null, cancel_requested_at = null, canceled_by = null,
                progress_done = null, progress_total = null, progress_message = null,
                locked_until = null, lease_id = null
          where id = $1 and status = 'failed' and ($2 is null or tenant_id = $2)")
        .bind(id).bind(scope).bind(at(now))
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(ApiError::Conflict {
            field: "status".into(),
            message: "the item changed meanwhile".into(),
        });
    }
    Ok(())
}

const ITEM_COLUMNS: &str = "id, tenant_id, kind, payload, status, priority, attempts, \
    max_attempts, run_after, locked_by, locked_until, heartbeat_at, progress_done, \
    progress_total, progress_message, result, last_error, cancel_requested_at, canceled_by, \
    created_at, started_at, finished_at, created_by, dedupe_key";

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    kind: String,
    payload: Json<serde_json::Value>,
    status: String,
    priority: i32,
    attempts: i32,
    max_attempts: i32,
    run_after: OffsetDateTime,
    locked_by: Option<String>,
    locked_until: Option<OffsetDateTime>,
    heartbeat_at: Option<OffsetDateTime>,
    progress_done: Option<i64>,
    progress_total: Option<i64>,
    progress_message: Option<String>,
    result: Option<Json<serde_json::Value>>,
    last_error: Option<String>,
    cancel_requested_at: Option<OffsetDateTime>,
    canceled_by: Option<Uuid>,
    created_at: OffsetDateTime,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    created_by: Option<Uuid>,
    dedupe_key: Option<String>,
}

impl ItemRow {
    fn into_item(self) -> ApiResult<WorkItem> {
        let status = self
            .status
            .parse::<WorkStatus>()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
        let progress_percent = match (self.progress_done, self.progress_total) {
            (Some(done), Some(total)) if total > 0 => {
                Some((done.clamp(0, total) as f64 * 100.0 / total as f64).floor() as u8)
            }
            _ => None,
        };
        Ok(WorkItem {
            id: self.id,
            tenant_id: self.tenant_id,
            kind: self.kind,
            payload: self.payload.0,
            status,
            priority: self.priority,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            run_after: self.run_after,
            locked_by: self.locked_by,
            locked_until: self.locked_until,
            heartbeat_at: self.heartbeat_at,
            progress_done: self.progress_done,
            progress_total: self.progress_total,
            progress_percent,
            progress_message: self.progress_message,
            result: self.result.map(|r| r.0),
            last_error: self.last_error,
            cancel_requested_at: self.cancel_requested_at,
            canceled_by: self.canceled_by,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            created_by: self.created_by,
            dedupe_key: self.dedupe_key,
        })
    }
}

/// One item, if the transaction can see it.
pub async fn get(tx: &mut (impl QueueTx + ?Sized), id: Uuid) -> ApiResult<Option<WorkItem>> {
    let scope = tenant_uuid(tx.scope());
    let query = format!(
        "select {ITEM_COLUMNS} from work_items where id = $1 and ($2 is null or tenant_id = $2)"
    );
    let row: Option<ItemRow> = sql!(tx.conn() => |c| sqlx::query_as(&query)
        .bind(id).bind(scope).fetch_optional(&mut *c).await)?;
    row.map(ItemRow::into_item).transpose()
}

/// A page of items, newest first, and how many match `filter`.
pub async fn list(
    tx: &mut (impl QueueTx + ?Sized),
    filter: &WorkFilter,
    page: Page,
) -> ApiResult<(Vec<WorkItem>, i64)> {
    let scope = tenant_uuid(tx.scope());
    let tenant = tenant_uuid(filter.tenant);
    let status = filter.status.map(WorkStatus::as_str);
    let kind = filter.kind.as_deref();
    const WHERE: &str = "($1 is null or tenant_id = $1) and ($2 is null or tenant_id = $2)
        and ($3 is null or status = $3) and ($4 is null or kind = $4)";
    let query = format!(
        "select {ITEM_COLUMNS} from work_items where {WHERE}
          order by created_at desc, id desc limit $5 offset $6"
    );
    let rows: Vec<ItemRow> = sql!(tx.conn() => |c| sqlx::query_as(&query)
        .bind(scope).bind(tenant).bind(status).bind(kind).bind(page.limit()).bind(page.offset())
        .fetch_all(&mut *c).await)?;
    let count = format!("select count(*) from work_items where {WHERE}");
    let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(&count)
        .bind(scope).bind(tenant).bind(status).bind(kind).fetch_one(&mut *c).await)?;
    let items = rows
        .into_iter()
        .map(ItemRow::into_item)
        .collect::<ApiResult<_>>()?;
    Ok((items, total))
}

/// Depth per status, due items, the longest wait and lapsed leases, over all tenants.
pub async fn stats(db: &Db, now: OffsetDateTime) -> ApiResult<QueueStats> {
    let mut tx = db.platform_tx().await?;
    let counts: Vec<(String, i64)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select status, count(*) from work_items group by status")
        .fetch_all(&mut *c).await)?;
    let (due, oldest): (i64, Option<OffsetDateTime>) = sql!(tx.conn() => |c| sqlx::query_as(
        "select count(*), min(run_after) from work_items where status = 'queued' and run_after <= $1")
        .bind(at(now)).fetch_one(&mut *c).await)?;
    let stalled: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from work_items where status = 'running' and locked_until < $1")
        .bind(at(now)).fetch_one(&mut *c).await)?;
    tx.commit().await?;
    let mut stats = QueueStats {
        due,
        oldest_queued_secs: oldest.map(|t| (now - t).whole_seconds().max(0)),
        stalled,
        ..QueueStats::default()
    };
    for (status, n) in counts {
        match status.parse::<WorkStatus>() {
            Ok(WorkStatus::Queued) => stats.queued = n,
            Ok(WorkStatus::Running) => stats.running = n,
            Ok(WorkStatus::Succeeded) => stats.succeeded = n,
            Ok(WorkStatus::Failed) => stats.failed = n,
            Ok(WorkStatus::Canceled) => stats.canceled = n,
            Err(_) => {}
        }
    }
    Ok(stats)
}

/// Deletes finished items (succeeded, failed, canceled) that finished more than `keep` before
/// `now`, in batches. Returns how many went.
pub async fn prune(db: &Db, keep: time::Duration, now: OffsetDateTime) -> ApiResult<u64> {
    let before = now - keep;
    let mut deleted = 0;
    loop {
        let mut tx = db.platform_tx().await?;
        let n = sql!(tx.conn() => |c| sqlx::query(
            "delete from work_items
              where id in (select id from work_items
                            where status in ('succeeded', 'failed', 'canceled')
                              and finished_at < $1
                            limit $2)")
            .bind(at(before)).bind(PRUNE_BATCH).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        deleted += n;
        if n < PRUNE_BATCH as u64 {
            return Ok(deleted);
        }
    }
}

/// The scheduled job that prunes finished items older than `keep`.
pub fn prune_job(schedule: impl Into<String>, keep: time::Duration) -> crate::JobSpec {
    crate::JobSpec {
        name: "work.prune",
        schedule: schedule.into(),
        description: "Deletes finished background work past its retention",
        run: std::sync::Arc::new(move |db, now| {
            Box::pin(async move {
                let deleted = prune(&db, keep, now)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(serde_json::json!({ "deleted": deleted }))
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_its_base_and_stops_at_its_cap() {
        let b = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=6).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 60, 60, 60]);
        assert_eq!(b.delay(1000), Duration::from_secs(60));
    }

    #[test]
    fn stored_times_have_a_fixed_width_so_text_order_is_time_order() {
        let whole = time::macros::datetime!(2026-03-01 10:00:05 UTC);
        let later = whole + time::Duration::milliseconds(500);
        let a = whole.format(SQLITE_TIME).unwrap();
        let b = later.format(SQLITE_TIME).unwrap();
        assert_eq!(a, "2026-03-01T10:00:05.000000Z");
        assert!(a < b);
        let back = OffsetDateTime::parse(&b, &time::format_description::well_known::Rfc3339);
        assert_eq!(back.unwrap(), later);
    }

    #[test]
    fn kinds_are_lowercase_names_and_attempts_are_bounded() {
        let ok = NewWork::new("reports.generate", serde_json::json!({}));
        assert!(ok.validate().is_ok());
        assert!(NewWork::new("Reports", serde_json::json!({}))
            .validate()
            .is_err());
        assert!(NewWork::new("x", serde_json::json!({}))
            .max_attempts(0)
            .validate()
            .is_err());
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in WorkStatus::ALL {
            assert_eq!(s.as_str().parse::<WorkStatus>().unwrap(), s);
        }
        assert!("done".parse::<WorkStatus>().is_err());
    }
}
