//! A run: claim, execute in the sandbox page by page, finish.
//!
//! * **Claim.** A run is a row in `connector_runs` with status `running`. A partial unique index
//!   allows one running run per installation; scheduled runs are also unique per
//!   (installation, minute), so an occurrence runs once however many instances tick. A running
//!   run whose heartbeat stopped (its instance died) is marked `abandoned` by the next start.
//! * **Pages.** Each page's upserts, its cursor, the key-value store and the run's counters are
//!   committed in one transaction. A run that starts while the stream's cursor is unfinished for
//!   the same file resumes from it.
//! * **Errors.** Transient connector errors are retried with exponential back-off; rate limits
//!   wait as asked (up to a cap); anything else — and any sandbox trap — fails the run with the
//!   reason.
//! * **Full refresh.** When every stream is complete, what the source no longer sent is
//!   soft-deleted, unless that would deactivate more than the guard's share of the tenant's
//!   active people: then the run waits for an administrator's confirmation.
//! * **Dry runs.** A dry run first reads every page of every stream from the connector (nothing
//!   is held meanwhile), then applies them all, sweep included, in one rehearsal transaction
//!   that is rolled back: later streams see what earlier ones would create, exactly as in a real
//!   run. Only the report is kept: the counts and a sample of the changes per stream. An
//!   administrator then applies it as is: a real run of the same file.

use std::{collections::HashMap, sync::Arc, time::Instant};

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::OffsetDateTime;
use trainflow_connectors::{
    CallError, ConnectorError, Grants, HttpGrant, HttpRefusal, PageRequest, StreamInfo,
};
use trainflow_identity::batch as identity;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::TenantTx,
    envelope::Page,
    sql, ApiError, ApiResult, TenantId,
};
use uuid::Uuid;

use crate::{
    apply::{self, kind_name, parse_kind, Applied, ChangeAction, PageContext, CHANGE_SAMPLE},
    installations::{installation_row, SyncMode},
    manifest::host_within,
    worker::{Report, Worker},
    Integrations,
};

/// Record errors kept per run (all are counted).
const MAX_STORED_ERRORS: usize = 1000;

/// Objects a full refresh soft-deletes per statement (and audit entry).
const SWEEP_BATCH: usize = 1000;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Manual,
    Schedule,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
        }
    }
}

/// A record the connector or the host rejected.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RunRecordError {
    pub stream: String,
    /// Row number or external id.
    pub reference: String,
    pub reason: String,
}

/// One change a run made (or, for a dry run, would make), as its sample shows it.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RunChange {
    pub stream: String,
    /// `create`, `update` or `deactivate`.
    pub action: String,
    /// The record's external id.
    pub reference: String,
    /// The fields an update changes (empty when the connector's records do not say).
    pub fields: Vec<String>,
}

/// A line the connector logged.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RunLogLine {
    pub level: String,
    pub message: String,
}

/// A run and what it did.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Run {
    pub id: Uuid,
    pub installation_id: Uuid,
    /// `manual` or `schedule`.
    pub trigger: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_for: Option<OffsetDateTime>,
    pub file_id: Option<Uuid>,
    pub sync_mode: String,
    /// A dry run wrote nothing but this report: its counts say what a real run would do.
    pub dry_run: bool,
    /// The dry run this run applies.
    pub applies_dry_run: Option<Uuid>,
    /// For a dry run: the run that applied it.
    pub applied_by: Option<Uuid>,
    /// `running`, `succeeded`, `succeeded_with_errors` (some records were refused), `failed`
    /// (the run stopped, or every record was refused), `needs_confirmation` or `abandoned`.
    pub status: String,
    /// The server instance that executed it.
    pub instance: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<i64>,
    pub pages: i32,
    pub created: i32,
    pub updated: i32,
    pub deactivated: i32,
    pub record_errors: i32,
    /// Records applied with a caveat (`warnings` lists the first ones).
    pub record_warnings: i32,
    /// Soft-deletions a full refresh holds back until an administrator confirms.
    pub pending_deletions: i32,
    pub retries: i32,
    /// WebAssembly instructions executed (fuel consumed).
    pub instructions: i64,
    /// The most linear memory the connector used, in bytes.
    pub peak_memory_bytes: i64,
    /// The first record errors (`record_errors` counts them all).
    pub errors: Vec<RunRecordError>,
    /// The first caveats (`record_warnings` counts them all).
    pub warnings: Vec<RunRecordError>,
    /// A sample of the changes: the first 20 of each action (create, update, deactivate) per
    /// stream; the counts above are the totals.
    pub changes: Vec<RunChange>,
    pub logs: Vec<RunLogLine>,
    /// Why the run failed.
    pub error: Option<String>,
}

impl Run {
    /// How the portal names the run's status.
    pub fn status_label(&self) -> &'static str {
        match self.status.as_str() {
            "succeeded" => "Succeeded",
            "succeeded_with_errors" => "Succeeded with refused records",
            "running" => "Running",
            "needs_confirmation" => "Needs confirmation",
            "abandoned" => "Abandoned",
            _ => "Failed",
        }
    }

    /// The badge the portal shows the status in: `ok`, `warn`, `off` or `bad`.
    pub fn status_badge(&self) -> &'static str {
        match self.status.as_str() {
            "succeeded" => "ok",
            "succeeded_with_errors" => "warn",
            "running" | "abandoned" => "off",
            _ => "bad",
        }
    }
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: Uuid,
    installation_id: Uuid,
    trigger: String,
    scheduled_for: Option<OffsetDateTime>,
    file_id: Option<Uuid>,
    sync_mode: String,
    dry_run: bool,
    applies_dry_run: Option<Uuid>,
    applied_by: Option<Uuid>,
    status: String,
    instance: String,
    started_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    pages: i32,
    created: i32,
    updated: i32,
    deactivated: i32,
    record_errors: i32,
    record_warnings: i32,
    pending_deletions: i32,
    retries: i32,
    fuel: i64,
    peak_memory: i64,
    errors: Json<Vec<RunRecordError>>,
    warnings: Json<Vec<RunRecordError>>,
    changes: Json<Vec<RunChange>>,
    logs: Json<Vec<RunLogLine>>,
    error: Option<String>,
}

const RUN_COLUMNS: &str =
    "id, installation_id, trigger, scheduled_for, file_id, sync_mode, dry_run, applies_dry_run, \
     (select a.id from connector_runs a where a.tenant_id = connector_runs.tenant_id \
         and a.applies_dry_run = connector_runs.id limit 1) as applied_by, status, \
     instance, started_at, finished_at, pages, created, updated, deactivated, record_errors, \
     record_warnings, pending_deletions, retries, fuel, peak_memory, errors, warnings, changes, \
     logs, error";

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Self {
            duration_ms: r
                .finished_at
                .map(|f| (f - r.started_at).whole_milliseconds() as i64),
            id: r.id,
            installation_id: r.installation_id,
            trigger: r.trigger,
            scheduled_for: r.scheduled_for,
            file_id: r.file_id,
            sync_mode: r.sync_mode,
            dry_run: r.dry_run,
            applies_dry_run: r.applies_dry_run,
            applied_by: r.applied_by,
            status: r.status,
            instance: r.instance,
            started_at: r.started_at,
            finished_at: r.finished_at,
            pages: r.pages,
            created: r.created,
            updated: r.updated,
            deactivated: r.deactivated,
            record_errors: r.record_errors,
            record_warnings: r.record_warnings,
            pending_deletions: r.pending_deletions,
            retries: r.retries,
            instructions: r.fuel,
            peak_memory_bytes: r.peak_memory,
            errors: r.errors.0,
            warnings: r.warnings.0,
            changes: r.changes.0,
            logs: r.logs.0,
            error: r.error,
        }
    }
}

/// Body of `POST /connectors/installations/{id}/runs`.
#[derive(Debug, Default, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct StartRun {
    /// One of the installation's uploaded files to read (left out or `null`: the newest one).
    #[oai(nullable)]
    pub file_id: Option<Uuid>,
    /// Run dry: read and apply every page in a transaction that is rolled back, and keep only
    /// the report (left out or `null`: a real run).
    #[oai(nullable)]
    pub dry_run: Option<bool>,
}

/// What a claimed run is to do.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest {
    pub trigger: Trigger,
    /// The occurrence of the schedule it runs for.
    pub scheduled_for: Option<OffsetDateTime>,
    pub requested_by: Option<Uuid>,
    /// The uploaded file to read (`None`: the newest one, for a connector that reads files).
    pub file_id: Option<Uuid>,
    pub dry_run: bool,
    /// The dry run this run applies.
    pub applies_dry_run: Option<Uuid>,
}

impl RunRequest {
    /// A run started by hand.
    pub fn manual(requested_by: Option<Uuid>, file_id: Option<Uuid>) -> Self {
        Self {
            trigger: Trigger::Manual,
            scheduled_for: None,
            requested_by,
            file_id,
            dry_run: false,
            applies_dry_run: None,
        }
    }

    /// The run of one occurrence of the installation's schedule.
    pub fn scheduled(minute: OffsetDateTime) -> Self {
        Self {
            trigger: Trigger::Schedule,
            scheduled_for: Some(minute),
            ..Self::manual(None, None)
        }
    }
}

/// How a run's execution ended.
#[derive(Debug)]
enum Ending {
    Succeeded,
    NeedsConfirmation,
    /// A dry run read and rehearsed every page.
    Rehearsed,
    /// Stopped without finishing (`RunSettings::stop_after_pages`).
    Interrupted,
}

impl Integrations {
    /// Starts a run on the caller's request: claims it, then executes it in the background.
    pub async fn run_now(
        self: &Arc<Self>,
        ctx: &TenantCtx,
        installation: Uuid,
        body: StartRun,
    ) -> ApiResult<Run> {
        let now = trainflow_kernel::now();
        let (mut tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let request = RunRequest {
            dry_run: body.dry_run.unwrap_or(false),
            ..RunRequest::manual(Some(ctx.user_id.0), body.file_id)
        };
        let run = self.claim(&mut tx, installation, request).await?;
        let Some(run) = run else {
            return Err(self.busy(&mut tx, installation).await?);
        };
        audit::record(
            &mut tx,
            Entry::by(&ctx, "connector.run_start")
                .object("connector_run", run.id)
                .detail(serde_json::json!({
                    "installation_id": installation,
                    "dry_run": run.dry_run,
                })),
            now,
        )
        .await?;
        tx.commit().await?;
        self.spawn(ctx.tenant_id, run.id);
        Ok(run)
    }

    /// Applies a dry run as is: starts a real run of the same file (a connector without files
    /// reads its source again). Only the installation's newest run can be applied, once, and
    /// only if it read everything and the installation has not changed since: otherwise what
    /// it reported may no longer be what a run would do (409, with what to do instead).
    pub async fn apply_dry_run(self: &Arc<Self>, ctx: &TenantCtx, run_id: Uuid) -> ApiResult<Run> {
        let now = trainflow_kernel::now();
        let (mut tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let dry = get_run_in(&mut tx, run_id).await?;
        let refuse = |message: String| ApiError::Conflict {
            field: "run".into(),
            message,
        };
        if !dry.dry_run {
            return Err(refuse(
                "this run is not a dry run; only a dry run can be applied".into(),
            ));
        }
        if let Some(by) = dry.applied_by {
            return Err(refuse(format!(
                "this dry run was already applied, by run {by}"
            )));
        }
        if !matches!(dry.status.as_str(), "succeeded" | "succeeded_with_errors") {
            return Err(refuse(format!(
                "the dry run is {}; only a dry run that read everything can be applied: run it dry again",
                dry.status
            )));
        }
        let tenant = tx.tenant();
        let newer: Option<(Uuid,)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id from connector_runs where tenant_id = $1 and installation_id = $2
               and id <> $3 and started_at >= $4 order by started_at desc limit 1")
            .bind(tenant).bind(dry.installation_id).bind(dry.id).bind(dry.started_at)
            .fetch_optional(&mut *c).await)?;
        if let Some((newer,)) = newer {
            return Err(refuse(format!(
                "run {newer} started after this dry run, so what it reported may have changed: \
                 run it dry again"
            )));
        }
        let inst = installation_row(&mut tx, dry.installation_id).await?;
        if inst.updated_at() > dry.started_at || inst.sync_mode() != dry.sync_mode {
            return Err(refuse(
                "the installation was changed after this dry run: run it dry again".into(),
            ));
        }
        let request = RunRequest {
            applies_dry_run: Some(dry.id),
            ..RunRequest::manual(Some(ctx.user_id.0), dry.file_id)
        };
        let Some(run) = self.claim(&mut tx, dry.installation_id, request).await? else {
            return Err(self.busy(&mut tx, dry.installation_id).await?);
        };
        audit::record(
            &mut tx,
            Entry::by(&ctx, "connector.run_start")
                .object("connector_run", run.id)
                .detail(serde_json::json!({
                    "installation_id": dry.installation_id,
                    "applies_dry_run": dry.id,
                })),
            now,
        )
        .await?;
        tx.commit().await?;
        self.spawn(ctx.tenant_id, run.id);
        Ok(run)
    }

    /// Runs an installation on the operator's behalf (the command line): optionally uploads a
    /// file first, then executes the run (dry, if asked) in this task and returns how it ended.
    pub async fn run_as_system(
        self: &Arc<Self>,
        tenant: TenantId,
        installation: Uuid,
        file: Option<(String, Vec<u8>)>,
        dry_run: bool,
    ) -> ApiResult<Run> {
        let now = trainflow_kernel::now();
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        let file_id = match file {
            Some((name, content)) => {
                let f = self
                    .store_file(&mut tx, installation, name, content, None)
                    .await?;
                audit::record(
                    &mut tx,
                    Entry::as_actor("system", None, "connector.file_upload", None)
                        .object("connector_installation", installation)
                        .detail(serde_json::to_value(&f).unwrap_or_default()),
                    now,
                )
                .await?;
                Some(f.id)
            }
            None => None,
        };
        let request = RunRequest {
            dry_run,
            ..RunRequest::manual(None, file_id)
        };
        let run = self.claim(&mut tx, installation, request).await?;
        let Some(run) = run else {
            return Err(self.busy(&mut tx, installation).await?);
        };
        tx.commit().await?;
        self.clone().execute(tenant, run.id).await;
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        let run = get_run_in(&mut tx, run.id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// The 409 for a run refused because another holds the installation: which run, on which
    /// instance, since when, and when it is taken over if that instance has stopped.
    async fn busy(&self, tx: &mut TenantTx, installation: Uuid) -> ApiResult<ApiError> {
        let tenant = tx.tenant();
        let holder: Option<(Uuid, String, OffsetDateTime, OffsetDateTime)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id, instance, started_at, heartbeat_at from connector_runs
              where tenant_id = $1 and installation_id = $2 and status = 'running'")
            .bind(tenant).bind(installation).fetch_optional(&mut *c).await)?;
        let message = match holder {
            Some((id, instance, started, heartbeat)) => {
                let stamp = |t: OffsetDateTime| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                };
                let instance = if instance.is_empty() {
                    "an unnamed instance".to_string()
                } else {
                    format!("instance `{instance}`")
                };
                format!(
                    "run {id} of this installation is in progress on {instance} since {}; \
                     its last heartbeat was at {}. If that instance has stopped, the next run \
                     takes over from {}; an administrator may abandon it now \
                     (POST /api/v1/connectors/runs/{id}/abandon)",
                    stamp(started),
                    stamp(heartbeat),
                    stamp(heartbeat + self.settings.stale_after),
                )
            }
            None => "this occurrence of the schedule was already run".into(),
        };
        Ok(ApiError::Conflict {
            field: "installation".into(),
            message,
        })
    }

    /// Abandons a run that is running (its instance may have stopped) or waiting for its
    /// deletions to be confirmed: the next run resumes from the last committed page, and the
    /// held-back deletions are not applied. The instance still executing it, if any, stops at
    /// its next page.
    pub async fn abandon(&self, ctx: &TenantCtx, run_id: Uuid) -> ApiResult<Run> {
        let now = trainflow_kernel::now();
        let (mut tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let run = get_run_in(&mut tx, run_id).await?;
        if !matches!(run.status.as_str(), "running" | "needs_confirmation") {
            return Err(ApiError::Conflict {
                field: "status".into(),
                message: format!(
                    "the run is {}; only a running run or one waiting for confirmation can be abandoned",
                    run.status
                ),
            });
        }
        let tenant = tx.tenant();
        sql!(tx.conn() => |c| sqlx::query(
            "update connector_runs set status = 'abandoned', finished_at = $3, pending_deletions = 0,
                    error = 'abandoned by an administrator; the next run resumes from its last committed page'
              where tenant_id = $1 and id = $2 and status in ('running', 'needs_confirmation')")
            .bind(tenant).bind(run.id).bind(now).execute(&mut *c).await.map(drop))?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "connector.run_abandon")
                .object("connector_run", run.id)
                .detail(serde_json::json!({
                    "installation_id": run.installation_id,
                    "status": run.status,
                    "instance": run.instance,
                    "pending_deletions": run.pending_deletions,
                })),
            now,
        )
        .await?;
        let run = get_run_in(&mut tx, run.id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Executes a claimed run on a background task.
    pub fn spawn(self: &Arc<Self>, tenant: TenantId, run: Uuid) {
        let svc = self.clone();
        tokio::spawn(async move { svc.execute(tenant, run).await });
    }

    /// Claims a run of `installation` in `tx`: `None` when another run holds it (or, for a
    /// scheduled run, when this occurrence was already claimed).
    pub async fn claim(
        &self,
        tx: &mut TenantTx,
        installation: Uuid,
        request: RunRequest,
    ) -> ApiResult<Option<Run>> {
        let RunRequest {
            trigger,
            scheduled_for,
            requested_by,
            file_id,
            dry_run,
            applies_dry_run,
        } = request;
        let inst = installation_row(tx, installation).await?;
        let tenant = tx.tenant();
        let now = trainflow_kernel::now();
        let entry = self
            .entry(tx, inst.connector_id(), inst.package_id())
            .await?;
        let file_id = if entry.capabilities.file {
            let file: Option<(Uuid,)> = sql!(tx.conn() => |c| sqlx::query_as(
                "select id from connector_files where tenant_id = $1 and installation_id = $2
                   and ($3 is null or id = $3) order by created_at desc limit 1")
                .bind(tenant).bind(installation).bind(file_id).fetch_optional(&mut *c).await)?;
            match file {
                Some((id,)) => Some(id),
                None if file_id.is_some() => {
                    return Err(ApiError::field(
                        "file_id",
                        "no such file for this installation",
                    ))
                }
                None => return Err(ApiError::field("file_id", "upload a file to import first")),
            }
        } else {
            None
        };
        // A run whose instance stopped heartbeating is over.
        let stale = now - self.settings.stale_after;
        sql!(tx.conn() => |c| sqlx::query(
            "update connector_runs set status = 'abandoned', finished_at = $3,
                    error = 'the server running it stopped; the next run resumes from its last committed page'
              where tenant_id = $1 and installation_id = $2 and status = 'running' and heartbeat_at < $4")
            .bind(tenant).bind(installation).bind(now).bind(stale).execute(&mut *c).await.map(drop))?;
        let busy: Option<(Uuid,)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id from connector_runs where tenant_id = $1 and installation_id = $2
               and (status = 'running' or ($3 is not null and scheduled_for = $3))")
            .bind(tenant).bind(installation).bind(scheduled_for).fetch_optional(&mut *c).await)?;
        if busy.is_some() {
            return Ok(None);
        }
        let id = Uuid::now_v7();
        let inserted = sql!(tx.conn() => |c| sqlx::query(
            "insert into connector_runs (tenant_id, id, installation_id, trigger, scheduled_for, file_id,
                    sync_mode, status, instance, requested_by, started_at, heartbeat_at, dry_run,
                    applies_dry_run)
             values ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $10, $11, $12)")
            .bind(tenant).bind(id).bind(installation).bind(trigger.as_str()).bind(scheduled_for)
            .bind(file_id).bind(inst.sync_mode()).bind(&self.instance).bind(requested_by).bind(now)
            .bind(dry_run).bind(applies_dry_run)
            .execute(&mut *c).await.map(drop));
        match inserted {
            Ok(()) => Ok(Some(get_run_in(tx, id).await?)),
            // Another instance claimed it between our check and insert.
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Executes a claimed run to its end and records the outcome. Never panics; every failure
    /// becomes the run's `error`.
    pub async fn execute(self: Arc<Self>, tenant: TenantId, run: Uuid) {
        let mut state = RunState::default();
        let result = self.execute_inner(tenant, run, &mut state).await;
        let (status, error) = match &result {
            Ok(Ending::Succeeded | Ending::Rehearsed) => state.outcome(),
            Ok(Ending::NeedsConfirmation) => ("needs_confirmation", None),
            Ok(Ending::Interrupted) => return,
            Err(message) => ("failed", Some(message.clone())),
        };
        if let Err(e) = self.finish(tenant, run, status, error, &state).await {
            tracing::error!(run = %run, error = %e, "recording the end of a connector run failed");
        }
    }

    async fn execute_inner(
        &self,
        tenant: TenantId,
        run_id: Uuid,
        state: &mut RunState,
    ) -> Result<Ending, String> {
        let started = Instant::now();
        let internal = |e: ApiError| fault(run_id, e);
        // Load everything the run needs, then release the connection.
        let mut tx = TenantTx::begin_system(&self.db, tenant)
            .await
            .map_err(internal)?;
        let run = get_run_in(&mut tx, run_id).await.map_err(internal)?;
        let inst = installation_row(&mut tx, run.installation_id)
            .await
            .map_err(internal)?;
        let entry = self
            .entry(&mut tx, inst.connector_id(), inst.package_id())
            .await
            .map_err(internal)?;
        let component = self.component(&mut tx, &entry).await.map_err(internal)?;
        let secrets = match &inst.credentials {
            Some(sealed) => self
                .key
                .open(tenant.0, inst.id(), sealed)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|(k, _)| entry.capabilities.secrets.contains(k))
                .collect(),
            None => HashMap::new(),
        };
        let file = match run.file_id {
            Some(id) => {
                let content: Vec<u8> = sql!(tx.conn() => |c| sqlx::query_scalar(
                    "select content from connector_files where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(id).fetch_one(&mut *c).await)
                .map_err(|e| fault(run_id, e))?;
                Some(Arc::new(content))
            }
            None => None,
        };
        let kv: HashMap<String, Vec<u8>> = sql!(tx.conn() => |c| sqlx::query_as(
            "select key, value from connector_kv where tenant_id = $1 and installation_id = $2")
            .bind(tenant).bind(inst.id()).fetch_all(&mut *c).await)
        .map_err(|e| fault(run_id, e))?
        .into_iter()
        .collect();
        tx.commit().await.map_err(internal)?;
        let config = inst.config_json();
        let mode = SyncMode::parse(&run.sync_mode);

        let host = self.host.clone();
        let digest = tokio::task::spawn_blocking(move || host.load(&component))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e:#}"))?;
        // The hosts both the manifest and the installation allow.
        let allowed_hosts = inst
            .http_hosts()
            .iter()
            .filter(|h| host_within(&entry.capabilities.http_hosts, h))
            .cloned()
            .collect();
        let grants = Grants {
            file,
            secrets,
            kv: kv.clone(),
            http: HttpGrant {
                allowed_hosts,
                allow_loopback: self.settings.allow_loopback_http,
                cassette: None,
            },
        };
        let worker = Worker::start(
            self.host.clone(),
            digest,
            grants,
            self.settings.limits.clone(),
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        state.saved_kv = kv;
        state.dry_run = run.dry_run;

        let result = if run.dry_run {
            self.rehearse(tenant, &run, inst.id(), mode, &config, &worker, state)
                .await
        } else {
            self.drive(tenant, &run, inst.id(), mode, &config, &worker, state)
                .await
        };
        state.capture(worker.finish().await);
        let ending = result?;
        tracing::info!(
            run = %run_id,
            pages = state.pages,
            elapsed_ms = started.elapsed().as_millis() as u64,
            connector_ms = state.connector_time.as_millis() as u64,
            apply_ms = state.apply_time.as_millis() as u64,
            "connector run ended"
        );
        Ok(ending)
    }

    /// Reads every stream to its end, committing page by page; then the full-refresh sweep.
    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        tenant: TenantId,
        run: &Run,
        installation: Uuid,
        mode: SyncMode,
        config: &str,
        worker: &Worker,
        state: &mut RunState,
    ) -> Result<Ending, String> {
        let streams = self.discover(tenant, run, config, worker, state).await?;
        let mut generations: Vec<(String, Uuid)> = Vec::new();
        for stream in streams {
            let (mut cursor, generation) = self
                .resume_point(tenant, installation, &stream.name, run)
                .await
                .map_err(|e| fault(run.id, e))?;
            generations.push((stream.name.clone(), generation));
            let ctx = PageContext {
                installation,
                run: run.id,
                stream: stream.name.clone(),
                generation,
                now: trainflow_kernel::now(),
                public_url: self.settings.public_url.clone(),
                dry_run: false,
            };
            loop {
                if self
                    .settings
                    .stop_after_pages
                    .is_some_and(|n| state.pages >= n)
                {
                    return Ok(Ending::Interrupted);
                }
                let request = PageRequest {
                    stream: stream.name.clone(),
                    cursor: cursor.clone(),
                    max_records: self.settings.page_size,
                };
                let called = Instant::now();
                let (page, kv) = worker.read_page(config, request).await;
                state.connector_time += called.elapsed();
                let applying = Instant::now();
                let page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        self.wait_or_fail(tenant, run.id, e, state).await?;
                        continue;
                    }
                };
                let next = page.next_cursor.clone();
                let ctx = PageContext {
                    now: trainflow_kernel::now(),
                    ..ctx.clone()
                };
                let mut applied = {
                    let mut tx = TenantTx::begin_system(&self.db, tenant)
                        .await
                        .map_err(|e| fault(run.id, e))?;
                    page_settings(&mut tx).await.map_err(|e| fault(run.id, e))?;
                    let mut applied = apply::apply_page(&mut tx, &ctx, page.entities)
                        .await
                        .map_err(|e| fault(run.id, e))?;
                    for e in page.errors {
                        applied.errors.push((e.reference, e.reason));
                    }
                    state.add(&stream.name, &applied);
                    let kv = (kv != state.saved_kv).then_some(kv);
                    self.commit_page(&mut tx, run, &ctx, next.as_deref(), kv, state)
                        .await
                        .map_err(|e| fault(run.id, e))?;
                    tx.commit().await.map_err(|e| fault(run.id, e))?;
                    applied
                };
                applied.errors.clear();
                if state.pages >= state.next_analyze.max(4) {
                    // Statistics after 4, 8, 16, 32, … pages: a handful per import, each one keeping
                    // the lookups of the following pages on their indexes.
                    state.next_analyze = state.pages.max(4) * 2;
                    // In the background: the next pages need not wait for it.
                    let (db, run_id) = (self.db.clone(), run.id);
                    tokio::spawn(async move {
                        if let Err(e) = db.refresh_import_statistics().await {
                            tracing::warn!(run = %run_id, error = %e, "refreshing statistics failed");
                        }
                    });
                }
                state.apply_time += applying.elapsed();
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        if mode == SyncMode::FullRefresh {
            let swept = async {
                let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
                let ending = self
                    .sweep(&mut tx, run.id, installation, &generations, false, state)
                    .await?;
                tx.commit().await?;
                Ok::<_, ApiError>(ending)
            };
            return swept.await.map_err(|e| fault(run.id, e));
        }
        Ok(Ending::Succeeded)
    }

    /// A dry run: reads every page of every stream first, then applies them all, and the
    /// full-refresh sweep, in one rehearsal transaction that is rolled back. Reading first keeps
    /// the transaction (and, on SQLite, the database's write lock) as short as applying is,
    /// however slowly the source answers. At most `dry_run_max_records` records are held.
    #[allow(clippy::too_many_arguments)]
    async fn rehearse(
        &self,
        tenant: TenantId,
        run: &Run,
        installation: Uuid,
        mode: SyncMode,
        config: &str,
        worker: &Worker,
        state: &mut RunState,
    ) -> Result<Ending, String> {
        let streams = self.discover(tenant, run, config, worker, state).await?;
        let mut read = Vec::with_capacity(streams.len());
        let (mut records, mut read_pages) = (0usize, 0i32);
        for stream in streams {
            let mut pages = Vec::new();
            let mut cursor = None;
            loop {
                let request = PageRequest {
                    stream: stream.name.clone(),
                    cursor: cursor.clone(),
                    max_records: self.settings.page_size,
                };
                let called = Instant::now();
                let (page, _kv) = worker.read_page(config, request).await;
                state.connector_time += called.elapsed();
                let page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        self.wait_or_fail(tenant, run.id, e, state).await?;
                        continue;
                    }
                };
                state.consecutive_retries = 0;
                records += page.entities.len();
                if records > self.settings.dry_run_max_records {
                    return Err(format!(
                        "a dry run holds at most {} records and this source has more; run the \
                         import for real (a full refresh still asks before removing many people)",
                        self.settings.dry_run_max_records
                    ));
                }
                cursor = page.next_cursor.clone();
                let done = cursor.is_none();
                pages.push(page);
                read_pages += 1;
                // Alive, and how far it has read; stops early if abandoned meanwhile.
                if !self
                    .heartbeat(tenant, run.id, read_pages)
                    .await
                    .map_err(|e| fault(run.id, e))?
                {
                    return Err("abandoned while it read the source".into());
                }
                if done {
                    break;
                }
            }
            read.push((stream.name, pages));
        }
        let applying = Instant::now();
        let rehearsed = async {
            let mut tx = TenantTx::begin_rehearsal(&self.db, tenant).await?;
            let mut generations = Vec::with_capacity(read.len());
            for (stream, pages) in read {
                // A fresh pass: what it does not see, the sweep would remove.
                let ctx = PageContext {
                    installation,
                    run: run.id,
                    stream: stream.clone(),
                    generation: run.id,
                    now: trainflow_kernel::now(),
                    public_url: self.settings.public_url.clone(),
                    dry_run: true,
                };
                for page in pages {
                    let mut applied = apply::apply_page(&mut tx, &ctx, page.entities).await?;
                    for e in page.errors {
                        applied.errors.push((e.reference, e.reason));
                    }
                    state.add(&stream, &applied);
                    state.pages += 1;
                }
                generations.push((stream, run.id));
            }
            if mode == SyncMode::FullRefresh {
                self.sweep(&mut tx, run.id, installation, &generations, false, state)
                    .await?;
            }
            tx.rollback().await
        };
        rehearsed.await.map_err(|e| fault(run.id, e))?;
        state.apply_time += applying.elapsed();
        Ok(Ending::Rehearsed)
    }

    /// Records that a dry run is alive and has read `pages` pages, in a transaction of its own;
    /// `false` when the run is no longer running (abandoned).
    async fn heartbeat(&self, tenant: TenantId, run: Uuid, pages: i32) -> ApiResult<bool> {
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        let now = trainflow_kernel::now();
        let n = sql!(tx.conn() => |c| sqlx::query(
            "update connector_runs set heartbeat_at = $3, pages = $4
              where tenant_id = $1 and id = $2 and status = 'running'")
            .bind(tenant).bind(run).bind(now).bind(pages)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Where a stream starts: the cursor of an unfinished pass over the same file, or the start.
    async fn resume_point(
        &self,
        tenant: TenantId,
        installation: Uuid,
        stream: &str,
        run: &Run,
    ) -> ApiResult<(Option<String>, Uuid)> {
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        let row: Option<(Option<Uuid>, Option<String>, bool, Uuid)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select file_id, cursor, done, run_id from connector_cursors
              where tenant_id = $1 and installation_id = $2 and stream = $3")
            .bind(tenant).bind(installation).bind(stream).fetch_optional(&mut *c).await)?;
        tx.commit().await?;
        Ok(match row {
            Some((file, cursor, false, generation)) if file == run.file_id => (cursor, generation),
            _ => (None, run.id),
        })
    }

    /// Writes the cursor, the key-value store (when it changed), the run's counters and its
    /// heartbeat, in the page's transaction.
    async fn commit_page(
        &self,
        tx: &mut TenantTx,
        run: &Run,
        ctx: &PageContext,
        next: Option<&str>,
        kv: Option<HashMap<String, Vec<u8>>>,
        state: &mut RunState,
    ) -> ApiResult<()> {
        let tenant = tx.tenant();
        sql!(tx.conn() => |c| sqlx::query(
            "insert into connector_cursors (tenant_id, installation_id, stream, file_id, cursor, done, run_id, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             on conflict (tenant_id, installation_id, stream) do update
                set file_id = excluded.file_id, cursor = excluded.cursor, done = excluded.done,
                    run_id = excluded.run_id, updated_at = excluded.updated_at")
            .bind(tenant).bind(ctx.installation).bind(&ctx.stream).bind(run.file_id).bind(next)
            .bind(next.is_none()).bind(ctx.generation).bind(ctx.now)
            .execute(&mut *c).await.map(drop))?;
        if let Some(kv) = kv {
            sql!(tx.conn() => |c| sqlx::query(
                "delete from connector_kv where tenant_id = $1 and installation_id = $2")
                .bind(tenant).bind(ctx.installation).execute(&mut *c).await.map(drop))?;
            for (key, value) in &kv {
                sql!(tx.conn() => |c| sqlx::query(
                    "insert into connector_kv (tenant_id, installation_id, key, value) values ($1, $2, $3, $4)")
                    .bind(tenant).bind(ctx.installation).bind(key).bind(value)
                    .execute(&mut *c).await.map(drop))?;
            }
            state.saved_kv = kv;
        }
        state.pages += 1;
        let errors = state.errors_changed.then_some(Json(&state.errors));
        let warnings = state.errors_changed.then_some(Json(&state.warnings));
        let changes = state.changes_changed.then_some(Json(&state.changes));
        sql!(tx.conn() => |c| sqlx::query(
            "update connector_runs set pages = $3, created = $4, updated = $5, deactivated = $6,
                    record_errors = $7, retries = $8, heartbeat_at = $9, errors = coalesce($10, errors),
                    record_warnings = $11, warnings = coalesce($12, warnings),
                    changes = coalesce($13, changes)
              where tenant_id = $1 and id = $2 and status = 'running'")
            .bind(tenant).bind(run.id).bind(state.pages as i32).bind(state.created as i32)
            .bind(state.updated as i32).bind(state.deactivated as i32).bind(state.record_errors as i32)
            .bind(state.retries as i32).bind(ctx.now).bind(errors)
            .bind(state.record_warnings as i32).bind(warnings).bind(changes)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?
            .eq(&1)
            .then_some(())
            // Abandoned meanwhile (by an administrator, or taken over): the page is not committed.
            .ok_or_else(|| ApiError::Conflict {
                field: "status".into(),
                message: "the run was abandoned while it ran; this page was not committed".into(),
            })?;
        state.errors_changed = false;
        state.changes_changed = false;
        Ok(())
    }

    /// After a failed call: waits and returns `Ok` to retry, or the run's failure.
    /// The connector's streams, asked again after a transient failure.
    async fn discover(
        &self,
        tenant: TenantId,
        run: &Run,
        config: &str,
        worker: &Worker,
        state: &mut RunState,
    ) -> Result<Vec<StreamInfo>, String> {
        loop {
            match worker.discover(config).await {
                Ok(s) => return Ok(s),
                Err(e) => self.wait_or_fail(tenant, run.id, e, state).await?,
            }
        }
    }

    async fn wait_or_fail(
        &self,
        tenant: TenantId,
        run: Uuid,
        error: CallError,
        state: &mut RunState,
    ) -> Result<(), String> {
        let wait = match &error {
            CallError::Connector(ConnectorError::Transient(_))
                if state.retries < self.settings.max_retries =>
            {
                self.settings.backoff * 2u32.saturating_pow(state.consecutive_retries.min(16))
            }
            CallError::Connector(ConnectorError::RateLimited(seconds))
                if state.retries < self.settings.max_retries =>
            {
                std::time::Duration::from_secs(u64::from(*seconds))
                    .min(self.settings.max_rate_limit_wait)
            }
            _ => return Err(describe(&error)),
        };
        state.retries += 1;
        state.consecutive_retries += 1;
        tracing::info!(run = %run, ?wait, error = %describe(&error), "retrying a connector call");
        // Keep the heartbeat fresh while waiting, so the run is not taken for dead.
        if let Ok(mut tx) = TenantTx::begin_system(&self.db, tenant).await {
            // (A dry run waits before its rehearsal transaction opens: this write never queues
            // behind it.)
            let now = trainflow_kernel::now();
            let _ = sql!(tx.conn() => |c| sqlx::query(
                "update connector_runs set heartbeat_at = $3, retries = $4 where tenant_id = $1 and id = $2")
                .bind(tenant).bind(run).bind(now).bind(state.retries as i32).execute(&mut *c).await.map(drop));
            let _ = tx.commit().await;
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The full-refresh sweep: soft-deletes what the last pass of each stream did not see. Held
    /// back (unless `confirmed`) when it would deactivate more than the guard's share of the
    /// tenant's active people.
    /// Works in the caller's transaction `tx`, which the caller commits: a confirmation's audit
    /// entry and the deletions it confirms commit together.
    async fn sweep(
        &self,
        tx: &mut TenantTx,
        run: Uuid,
        installation: Uuid,
        generations: &[(String, Uuid)],
        confirmed: bool,
        state: &mut RunState,
    ) -> ApiResult<Ending> {
        let tenant = tx.tenant();
        let mut gone: Vec<(String, Uuid)> = Vec::new();
        // The external id of what is gone, for the sample of changes.
        let mut reference_of: HashMap<Uuid, (String, String)> = HashMap::new();
        for (stream, generation) in generations {
            let rows: Vec<(String, Uuid, String)> = sql!(tx.conn() => |c| sqlx::query_as(
                "select entity_kind, entity_id, external_id from connector_links
                  where tenant_id = $1 and installation_id = $2 and stream = $3 and seen_run <> $4")
                .bind(tenant).bind(installation).bind(stream).bind(generation)
                .fetch_all(&mut *c).await)?;
            for (kind, id, external_id) in rows {
                reference_of.insert(id, (stream.clone(), external_id));
                gone.push((kind, id));
            }
        }
        let people: Vec<Uuid> = gone
            .iter()
            .filter(|(k, _)| k == kind_name(trainflow_connectors::EntityKind::Employee))
            .map(|(_, id)| *id)
            .collect();
        let leaving = identity::active_among(tx, &people).await?;
        let active = trainflow_identity::users::active_count(tx).await?;
        let held = !confirmed
            && leaving > 0
            && leaving as f64 > self.settings.deletion_guard * active as f64;
        if held {
            state.pending_deletions = leaving as u32;
            // A rehearsal goes on, to report what confirming would remove.
            if !tx.is_rehearsal() {
                sql!(tx.conn() => |c| sqlx::query(
                    "update connector_runs set pending_deletions = $3 where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(run).bind(leaving as i32).execute(&mut *c).await.map(drop))?;
                return Ok(Ending::NeedsConfirmation);
            }
        }
        let now = trainflow_kernel::now();
        let source = apply::run_source(installation, run).with("full_refresh", true);
        let mut swept: Vec<(String, Applied)> = Vec::new();
        let mut by_kind: Vec<(trainflow_connectors::EntityKind, Vec<Uuid>)> = Vec::new();
        for (kind, id) in &gone {
            let Some(kind) = parse_kind(kind) else {
                continue;
            };
            match by_kind.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, ids)) => ids.push(*id),
                None => by_kind.push((kind, vec![*id])),
            }
        }
        for (kind, ids) in by_kind {
            for chunk in ids.chunks(SWEEP_BATCH) {
                let (deleted, refused) = apply::delete_ids(tx, kind, chunk, now, &source).await?;
                // Counted and sampled under the stream the record came from.
                for id in deleted {
                    let (stream, reference) = reference_of.remove(&id).unwrap_or_default();
                    let at = match swept.iter().position(|(s, _)| *s == stream) {
                        Some(i) => i,
                        None => {
                            swept.push((stream, Applied::default()));
                            swept.len() - 1
                        }
                    };
                    swept[at].1.note(ChangeAction::Deactivate, &reference, &[]);
                }
                if !refused.is_empty() {
                    let mut applied = Applied::default();
                    for (id, reason) in refused {
                        applied.errors.push((id.to_string(), reason));
                    }
                    swept.push(("full_refresh".into(), applied));
                }
            }
        }
        for (stream, applied) in &swept {
            state.add(stream, applied);
        }
        if !held {
            state.pending_deletions = 0;
        }
        if !tx.is_rehearsal() {
            sql!(tx.conn() => |c| sqlx::query(
                "update connector_runs set deactivated = $3, pending_deletions = 0, record_errors = $4,
                        errors = $5, changes = $6 where tenant_id = $1 and id = $2")
                .bind(tenant).bind(run).bind(state.deactivated as i32).bind(state.record_errors as i32)
                .bind(Json(&state.errors)).bind(Json(&state.changes)).execute(&mut *c).await.map(drop))?;
        }
        Ok(Ending::Succeeded)
    }

    /// Confirms the held-back deletions of a full-refresh run.
    pub async fn confirm(&self, ctx: &TenantCtx, run_id: Uuid) -> ApiResult<Run> {
        let now = trainflow_kernel::now();
        let (mut tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let run = get_run_in(&mut tx, run_id).await?;
        if run.status != "needs_confirmation" {
            return Err(ApiError::Conflict {
                field: "status".into(),
                message: format!("the run is {}, not waiting for confirmation", run.status),
            });
        }
        let tenant = tx.tenant();
        let newer: Option<(Uuid,)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id from connector_runs where tenant_id = $1 and installation_id = $2 and started_at > $3 limit 1")
            .bind(tenant).bind(run.installation_id).bind(run.started_at).fetch_optional(&mut *c).await)?;
        if newer.is_some() {
            return Err(ApiError::Conflict {
                field: "status".into(),
                message: "a newer run of this installation exists; confirm that one instead".into(),
            });
        }
        let generations: Vec<(String, Uuid)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select stream, run_id from connector_cursors where tenant_id = $1 and installation_id = $2")
            .bind(tenant).bind(run.installation_id).fetch_all(&mut *c).await)?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "connector.deletions_confirmed")
                .object("connector_run", run.id)
                .detail(serde_json::json!({"pending_deletions": run.pending_deletions})),
            now,
        )
        .await?;
        let mut state = RunState {
            deactivated: run.deactivated as u32,
            record_errors: run.record_errors as u32,
            errors: run.errors.clone(),
            changes: run.changes.clone(),
            ..RunState::default()
        };
        // The confirmation, its audit entry and the deletions it confirms: one transaction.
        self.sweep(
            &mut tx,
            run.id,
            run.installation_id,
            &generations,
            true,
            &mut state,
        )
        .await?;
        let status = if run.record_errors > 0 {
            "succeeded_with_errors"
        } else {
            "succeeded"
        };
        sql!(tx.conn() => |c| sqlx::query(
            "update connector_runs set status = $3 where tenant_id = $1 and id = $2")
            .bind(tenant).bind(run.id).bind(status).execute(&mut *c).await.map(drop))?;
        let run = get_run_in(&mut tx, run.id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Records how a run ended, with its logs and measurements.
    async fn finish(
        &self,
        tenant: TenantId,
        run: Uuid,
        status: &str,
        error: Option<String>,
        state: &RunState,
    ) -> ApiResult<()> {
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        let now = trainflow_kernel::now();
        let finished: Option<(Uuid, OffsetDateTime)> = sql!(tx.conn() => |c| sqlx::query_as(
            "update connector_runs set status = $3, error = $4, finished_at = $5, heartbeat_at = $5,
                    fuel = $6, peak_memory = $7, logs = $8, errors = $9, record_errors = $10,
                    created = $11, updated = $12, deactivated = $13, pages = $14, retries = $15,
                    warnings = $16, record_warnings = $17, changes = $18, pending_deletions = $19
              where tenant_id = $1 and id = $2 and status = 'running' returning installation_id, started_at")
            .bind(tenant).bind(run).bind(status).bind(&error).bind(now).bind(state.fuel as i64)
            .bind(state.peak_memory as i64).bind(Json(&state.logs)).bind(Json(&state.errors))
            .bind(state.record_errors as i32).bind(state.created as i32).bind(state.updated as i32)
            .bind(state.deactivated as i32).bind(state.pages as i32).bind(state.retries as i32)
            .bind(Json(&state.warnings)).bind(state.record_warnings as i32)
            .bind(Json(&state.changes)).bind(state.pending_deletions as i32)
            .fetch_optional(&mut *c).await)?;
        let Some((installation, started_at)) = finished else {
            // Abandoned while it ran: that decision stands.
            return tx.commit().await;
        };
        self.run_metrics.observe(
            status,
            (now - started_at).as_seconds_f64(),
            state.fuel,
            state.peak_memory as u64,
        );
        for refusal in &state.http_refusals {
            tracing::warn!(run = %run, url = %refusal.url, reason = %refusal.reason, "connector HTTP request refused");
            audit::record(
                &mut tx,
                Entry::as_actor("system", None, "connector.http_refused", None)
                    .object("connector_run", run)
                    .detail(serde_json::json!({
                        "installation_id": installation,
                        "method": refusal.method,
                        "url": refusal.url,
                        "reason": refusal.reason,
                    })),
                now,
            )
            .await?;
        }
        audit::record(
            &mut tx,
            Entry::as_actor("system", None, "connector.run_finish", None)
                .object("connector_run", run)
                .detail(serde_json::json!({
                    "installation_id": installation,
                    "status": status,
                    "error": error,
                    "pages": state.pages,
                    "created": state.created,
                    "updated": state.updated,
                    "deactivated": state.deactivated,
                    "record_errors": state.record_errors,
                    "record_warnings": state.record_warnings,
                    "pending_deletions": state.pending_deletions,
                    "dry_run": state.dry_run,
                })),
            now,
        )
        .await?;
        tx.commit().await
    }

    /// One run of the caller's tenant.
    pub async fn run(&self, ctx: &TenantCtx, id: Uuid) -> ApiResult<Run> {
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let run = get_run_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// The runs of an installation, newest first: one `page` and their number.
    pub async fn runs(
        &self,
        ctx: &TenantCtx,
        installation: Uuid,
        page: Page,
    ) -> ApiResult<(Vec<Run>, i64)> {
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        installation_row(&mut tx, installation).await?;
        let tenant = tx.tenant();
        let (limit, offset) = (page.limit(), page.offset());
        let rows: Vec<RunRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
            "select {RUN_COLUMNS} from connector_runs where tenant_id = $1 and installation_id = $2
              order by started_at desc, id desc limit $3 offset $4"))
            .bind(tenant).bind(installation).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
        let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select count(*) from connector_runs where tenant_id = $1 and installation_id = $2")
            .bind(tenant).bind(installation).fetch_one(&mut *c).await)?;
        tx.commit().await?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }
}

/// What the dashboard shows of imports: how many installations there are, and the newest runs.
#[derive(Debug, Clone, Default)]
pub struct ImportsSummary {
    pub installations: i64,
    pub recent: Vec<RecentRun>,
}

/// A run as the dashboard lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecentRun {
    pub id: Uuid,
    pub installation: String,
    pub status: String,
    pub dry_run: bool,
    pub started_at: OffsetDateTime,
    pub created: i32,
    pub updated: i32,
    pub deactivated: i32,
    pub record_errors: i32,
}

impl RecentRun {
    /// "succeeded: 12 created, 3 updated", "failed", "running"; for a dry run "dry run
    /// succeeded: would create 2, update 1".
    pub fn outcome(&self) -> String {
        let counts = [
            (self.created, "created", "create"),
            (self.updated, "updated", "update"),
            (self.deactivated, "deactivated", "deactivate"),
            (self.record_errors, "refused", "refuse"),
        ];
        let counts: Vec<String> = counts
            .into_iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, done, would)| {
                if self.dry_run {
                    format!("{would} {n}")
                } else {
                    format!("{n} {done}")
                }
            })
            .collect();
        let status = self.status.replace('_', " ");
        let status = if self.dry_run {
            format!("dry run {status}")
        } else {
            status
        };
        match (counts.is_empty(), self.dry_run) {
            (true, _) => status,
            (false, true) => format!("{status}: would {}", counts.join(", ")),
            (false, false) => format!("{status}: {}", counts.join(", ")),
        }
    }
}

impl Integrations {
    /// The caller's tenant's imports at a glance: installations and the `limit` newest runs.
    pub async fn imports_summary(&self, ctx: &TenantCtx, limit: i64) -> ApiResult<ImportsSummary> {
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::ImportsRead).await?;
        let tenant = tx.tenant();
        let installations: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select count(*) from connector_installations where tenant_id = $1 and deleted_at is null")
            .bind(tenant).fetch_one(&mut *c).await)?;
        let recent: Vec<RecentRun> = sql!(tx.conn() => |c| sqlx::query_as(
            "select r.id, i.name as installation, r.status, r.dry_run, r.started_at, r.created, r.updated,
                    r.deactivated, r.record_errors
               from connector_runs r
               join connector_installations i on i.tenant_id = r.tenant_id and i.id = r.installation_id
              where r.tenant_id = $1 and i.deleted_at is null
              order by r.started_at desc, r.id desc limit $2")
            .bind(tenant).bind(limit).fetch_all(&mut *c).await)?;
        tx.commit().await?;
        Ok(ImportsSummary {
            installations,
            recent,
        })
    }
}

/// One run, by id, in `tx`'s tenant.
pub async fn get_run_in(tx: &mut TenantTx, id: Uuid) -> ApiResult<Run> {
    let tenant = tx.tenant();
    let row: Option<RunRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {RUN_COLUMNS} from connector_runs where tenant_id = $1 and id = $2"))
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.map(Into::into).ok_or(ApiError::NotFound)
}

/// PostgreSQL settings of a page's transaction: the commit does not wait for the WAL flush. A
/// page and its cursor commit together, so a crash can only forget the last pages whole, cursor
/// included, and the resumed run reads them again: nothing is lost or doubled, and an import
/// stops paying a disk flush per page. (Plans stay cached: statistics refreshed as the import
/// grows invalidate them; forcing per-statement plans would also re-plan every foreign-key
/// check, three times the cost of an insert.)
async fn page_settings(tx: &mut TenantTx) -> ApiResult<()> {
    if let trainflow_kernel::db::Conn::Postgres(c) = tx.conn() {
        sqlx::query("set local synchronous_commit = off")
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// A run's failure as its history shows it: the reason for errors a tenant can act on; for
/// internal ones (database, server) a generic line, with the details in the server log only.
fn fault(run: Uuid, e: impl Into<ApiError>) -> String {
    match e.into() {
        ApiError::Internal(err) => {
            tracing::error!(run = %run, error = ?err, "a connector run failed on an internal error");
            format!("an internal error stopped the run; the server log has the details (run {run})")
        }
        other => other.to_string(),
    }
}

fn describe(error: &CallError) -> String {
    match error {
        CallError::Connector(e) => match e {
            ConnectorError::Configuration(m) => format!("configuration error: {m}"),
            ConnectorError::Authentication(m) => format!("authentication failed: {m}"),
            ConnectorError::RateLimited(s) => {
                format!("the source kept rate-limiting (retry after {s} s)")
            }
            ConnectorError::Transient(m) => format!("the source kept failing: {m}"),
            ConnectorError::AccessDenied(m) => format!("access denied: {m}"),
            ConnectorError::Internal(m) => format!("connector error: {m}"),
        },
        CallError::Trapped(m) => format!("stopped by the sandbox: {m}"),
        CallError::Rejected(m) => format!("rejected by the host: {m}"),
    }
}

/// What a run has done so far.
#[derive(Default)]
struct RunState {
    pages: u32,
    created: u32,
    updated: u32,
    deactivated: u32,
    record_errors: u32,
    record_warnings: u32,
    /// Deletions a full refresh holds back (or, dry, would hold back) for confirmation.
    pending_deletions: u32,
    /// Records accepted (created, updated, deactivated or unchanged).
    accepted: u32,
    retries: u32,
    consecutive_retries: u32,
    errors: Vec<RunRecordError>,
    warnings: Vec<RunRecordError>,
    errors_changed: bool,
    /// The sample of changes, per stream and action.
    changes: Vec<RunChange>,
    changes_changed: bool,
    dry_run: bool,
    logs: Vec<RunLogLine>,
    fuel: u64,
    peak_memory: usize,
    http_refusals: Vec<HttpRefusal>,
    saved_kv: HashMap<String, Vec<u8>>,
    /// The page count at which the tables an import grows get fresh statistics.
    next_analyze: u32,
    /// Time spent waiting for the connector, and applying and committing pages.
    connector_time: std::time::Duration,
    apply_time: std::time::Duration,
}

impl RunState {
    fn add(&mut self, stream: &str, applied: &Applied) {
        self.created += applied.created;
        self.updated += applied.updated;
        self.deactivated += applied.deactivated;
        self.record_errors += applied.errors.len() as u32;
        self.record_warnings += applied.warnings.len() as u32;
        self.accepted += applied.accepted();
        self.consecutive_retries = 0;
        for (kept, found) in [
            (&mut self.errors, &applied.errors),
            (&mut self.warnings, &applied.warnings),
        ] {
            let room = MAX_STORED_ERRORS.saturating_sub(kept.len());
            kept.extend(
                found
                    .iter()
                    .take(room)
                    .map(|(reference, reason)| RunRecordError {
                        stream: stream.to_string(),
                        reference: reference.clone(),
                        reason: reason.clone(),
                    }),
            );
        }
        self.errors_changed |= !applied.errors.is_empty() || !applied.warnings.is_empty();
        for action in ChangeAction::ALL {
            let kept = self
                .changes
                .iter()
                .filter(|c| c.stream == stream && c.action == action.as_str())
                .count();
            let room = CHANGE_SAMPLE.saturating_sub(kept);
            if room == 0 {
                continue;
            }
            let found: Vec<RunChange> = applied
                .changes
                .iter()
                .filter(|c| c.action == action)
                .take(room)
                .map(|c| RunChange {
                    stream: stream.to_string(),
                    action: action.as_str().to_string(),
                    reference: c.reference.clone(),
                    fields: c.fields.iter().map(|f| f.to_string()).collect(),
                })
                .collect();
            self.changes_changed |= !found.is_empty();
            self.changes.extend(found);
        }
    }

    /// How a run that read every page ends: `succeeded`, `succeeded_with_errors` when some
    /// records were refused, `failed` (with why) when every record was.
    fn outcome(&self) -> (&'static str, Option<String>) {
        match (self.record_errors, self.accepted) {
            (0, _) => ("succeeded", None),
            (refused, 0) => (
                "failed",
                Some(format!(
                    "every record was refused ({refused}); the first reasons are in `errors`"
                )),
            ),
            _ => ("succeeded_with_errors", None),
        }
    }

    fn capture(&mut self, report: Report) {
        let (lines, dropped) = (report.logs, report.logs_dropped);
        self.logs = lines
            .iter()
            .map(|l| RunLogLine {
                level: format!("{:?}", l.level).to_lowercase(),
                message: l.message.clone(),
            })
            .collect();
        if dropped > 0 {
            self.logs.push(RunLogLine {
                level: "warn".into(),
                message: format!("{dropped} more lines were dropped over the log cap"),
            });
        }
        self.fuel = report.fuel;
        self.peak_memory = report.peak_memory;
        self.http_refusals = report.http_refusals;
    }
}
