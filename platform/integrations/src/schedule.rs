//! Cron-scheduled installations. A job ticks every minute (claimed once across instances by the
//! job runner); for each tenant it starts the runs whose schedule matches the minute. Each
//! (installation, minute) is claimed in `connector_runs`, and an installation with a run in
//! progress is skipped, so an occurrence never runs twice nor overlaps the previous one.

use std::{str::FromStr, sync::Arc};

use croner::Cron;
use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, TenantId};
use uuid::Uuid;

use crate::{runs::RunRequest, Integrations};

/// The dispatcher's own schedule: every minute, at second 0.
pub const DISPATCH_SCHEDULE: &str = "0 * * * * *";

/// Parses an installation schedule: five fields, `minute hour day month weekday`, in UTC.
pub fn parse(expr: &str) -> Result<Cron, String> {
    if expr.split_whitespace().count() != 5 {
        return Err("must have five fields: minute hour day-of-month month day-of-week".into());
    }
    Cron::from_str(expr).map_err(|e| format!("is not a valid cron expression: {e}"))
}

/// Whether `expr` has an occurrence at `minute` (UTC).
pub fn is_due(expr: &str, minute: OffsetDateTime) -> bool {
    let Ok(cron) = parse(expr) else { return false };
    let Some(at) = chrono::DateTime::from_timestamp(minute.unix_timestamp(), 0) else {
        return false;
    };
    cron.is_time_matching(&at).unwrap_or(false)
}

/// What one dispatch did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Dispatched {
    pub started: u32,
    pub skipped: u32,
}

impl Integrations {
    /// Starts the runs due at `minute`, across all active tenants.
    pub async fn dispatch(self: &Arc<Self>, minute: OffsetDateTime) -> anyhow::Result<Dispatched> {
        let mut out = Dispatched::default();
        let tenants: Vec<(Uuid,)> = {
            let mut tx = self.db.platform_tx().await.map_err(api)?;
            let rows = sql!(tx.conn() => |c| sqlx::query_as(
                "select id from directory_tenants where status = 'active'").fetch_all(&mut *c).await)?;
            tx.commit().await.map_err(api)?;
            rows
        };
        for (tenant,) in tenants {
            let tenant = TenantId(tenant);
            let mut tx = TenantTx::begin_system(&self.db, tenant)
                .await
                .map_err(api)?;
            let scheduled: Vec<(Uuid, String)> = sql!(tx.conn() => |c| sqlx::query_as(
                "select id, schedule from connector_installations
                  where tenant_id = $1 and schedule is not null and enabled = true and deleted_at is null")
                .bind(tenant).fetch_all(&mut *c).await)?;
            tx.commit().await.map_err(api)?;
            for (installation, schedule) in scheduled {
                if !is_due(&schedule, minute) {
                    continue;
                }
                // One transaction per claim: a lost race must not spoil the others.
                let mut tx = TenantTx::begin_system(&self.db, tenant)
                    .await
                    .map_err(api)?;
                match self
                    .claim(&mut tx, installation, RunRequest::scheduled(minute))
                    .await
                {
                    Ok(Some(run)) => {
                        tx.commit().await.map_err(api)?;
                        self.spawn(tenant, run.id);
                        out.started += 1;
                    }
                    Ok(None) => out.skipped += 1,
                    Err(e) => {
                        // E.g. no file uploaded yet: nothing to run this time.
                        tracing::info!(%installation, error = %e, "scheduled run not started");
                        out.skipped += 1;
                    }
                }
            }
        }
        Ok(out)
    }
}

fn api(e: trainflow_kernel::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_five_field_utc_cron() {
        assert!(parse("0 2 * * *").is_ok());
        assert!(parse("0 0 2 * * *").is_err());
        assert!(parse("61 * * * *").is_err());
        let at = time::macros::datetime!(2026-11-22 02:00 UTC);
        assert!(is_due("0 2 * * *", at));
        assert!(!is_due("0 3 * * *", at));
        assert!(is_due(
            "*/15 * * * *",
            time::macros::datetime!(2026-11-22 05:45 UTC)
        ));
    }
}
