//! Identity jobs: plain functions the scheduler calls and tests call directly.

use time::{Duration, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    db::{Db, TenantTx},
    sql, ApiResult, TenantId,
};
use uuid::Uuid;

/// What the inactive-user cleanup did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CleanupOutcome {
    /// Tenants visited.
    pub tenants: u64,
    /// People deactivated.
    pub deactivated: u64,
}

/// Deactivates people who have not been active for `after` (from the User Management System's
/// `cleanup_inactive_users`). A person never active counts from their creation. Administrators
/// are left alone so no tenant can lose its last administrator this way. Each deactivation ends
/// the person's sessions and is audited; one tenant transaction per tenant.
///
/// `default_after` applies unless the tenant's settings carry `inactive_after_days` (0 = never).
pub async fn cleanup_inactive_users(
    db: &Db,
    now: OffsetDateTime,
    default_after: Duration,
) -> ApiResult<CleanupOutcome> {
    let tenants: Vec<(Uuid, sqlx::types::Json<serde_json::Value>)> = {
        let mut tx = db.platform_tx().await?;
        let rows = sql!(tx.conn() => |c| sqlx::query_as("select id, settings from directory_tenants where status = 'active' order by id")
            .fetch_all(&mut *c).await)?;
        tx.commit().await?;
        rows
    };
    let mut outcome = CleanupOutcome::default();
    for (tenant, settings) in tenants {
        let after = match settings
            .0
            .get("inactive_after_days")
            .and_then(serde_json::Value::as_i64)
        {
            Some(0) => continue,
            Some(days) => Duration::days(days),
            None => default_after,
        };
        let cutoff = now - after;
        let tenant = TenantId(tenant);
        let mut tx = TenantTx::begin_system(db, tenant).await?;
        let ids: Vec<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "update users set is_active = false, updated_at = $2
              where tenant_id = $1 and is_active = true and deleted_at is null and role <> 'administrator'
                and coalesce(last_active_at, created_at) < $3
              returning id")
            .bind(tenant).bind(now).bind(cutoff).fetch_all(&mut *c).await)?;
        for id in &ids {
            crate::users::revoke_credentials(&mut tx, *id, now).await?;
            audit::record(
                &mut tx,
                Entry::as_actor("system", None, "user.deactivate_inactive", None)
                    .object("user", *id)
                    .detail(serde_json::json!({"inactive_since_before": cutoff.to_string()})),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        outcome.tenants += 1;
        outcome.deactivated += ids.len() as u64;
    }
    Ok(outcome)
}
