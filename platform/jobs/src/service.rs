//! The jobs context's use cases for a tenant's administrators: the scheduled jobs with their
//! latest occurrences, and the tenant's background work (list, cancel, retry).

use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::{Db, TenantTx},
    envelope::Page,
    ApiResult,
};
use uuid::Uuid;

use crate::{
    queue::{self, CancelOutcome, WorkFilter, WorkItem},
    JobStatus, Runner,
};

/// Who may see and steer the jobs: those who change the tenant's settings (administrators).
const PERMISSION: Permission = Permission::TenantSettings;

/// The scheduled jobs and their latest occurrences. Jobs span tenants, so a tenant sees when
/// each ran and how it ended, not what it did elsewhere: details are left out.
pub async fn scheduled_jobs(runner: &Runner, ctx: &TenantCtx) -> ApiResult<Vec<JobStatus>> {
    let (tx, _) = TenantTx::begin(runner.db(), ctx, PERMISSION).await?;
    tx.commit().await?;
    let mut jobs = runner
        .status()
        .await
        .map_err(trainflow_kernel::ApiError::Internal)?;
    for job in &mut jobs {
        for run in &mut job.recent_runs {
            run.detail = None;
        }
    }
    Ok(jobs)
}

/// A page of the tenant's background work, newest first.
pub async fn work(
    db: &Db,
    ctx: &TenantCtx,
    filter: WorkFilter,
    page: Page,
) -> ApiResult<(Vec<WorkItem>, i64)> {
    let (mut tx, _) = TenantTx::begin(db, ctx, PERMISSION).await?;
    let out = queue::list(&mut tx, &filter, page).await?;
    tx.commit().await?;
    Ok(out)
}

/// Cancels one of the tenant's items (a running one stops at its next progress report).
pub async fn cancel_work(
    db: &Db,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<CancelOutcome> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, PERMISSION).await?;
    let outcome = queue::cancel(&mut tx, id, Some(ctx.user_id), now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "work.cancel")
            .object("work_item", id)
            .detail(serde_json::json!({ "outcome": format!("{outcome:?}").to_lowercase() })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Queues one of the tenant's failed items again.
pub async fn retry_work(db: &Db, ctx: &TenantCtx, id: Uuid, now: OffsetDateTime) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, PERMISSION).await?;
    queue::retry(&mut tx, id, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "work.retry").object("work_item", id),
        now,
    )
    .await?;
    tx.commit().await?;
    queue::wake();
    Ok(())
}
