//! The renewal jobs: expiry reminders, and escalation with re-routing. Plain functions the
//! scheduler calls (claimed once per occurrence) and tests call directly; each tenant is one
//! transaction, so a failure in one tenant leaves the others done.

use std::collections::HashSet;

use sqlx::QueryBuilder;
use time::{Duration, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, BatchSource, Change, Entry, ObjectChange},
    db::{Db, TenantTx},
    sql, ApiResult, TenantId,
};
use trainflow_notifications::{notify_many, Kind, Notice, Priority};
use uuid::Uuid;

use crate::{
    certs,
    workflow::{self, ChainStep, Step},
    Renewals,
};

/// What the expiry scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReminderOutcome {
    pub tenants: u64,
    /// Certifications looked at (inside the largest reminder offset).
    pub scanned: u64,
    pub reminded: u64,
    /// Database statements the scan issued: per tenant its transaction (begin with the tenant
    /// setting, commit), the tenant's clock and the due certifications; per page of
    /// [`REMINDERS_PER_PAGE`] due certifications that reached an offset, the reminders' insert,
    /// their notifications (recipients, preferences, the email template, then one insert each
    /// for notifications, outbox messages and queue entries) and the audit entry.
    pub queries: u64,
}

/// Active tenants, in a stable order.
async fn tenants(db: &Db) -> ApiResult<Vec<Uuid>> {
    let mut tx = db.platform_tx().await?;
    let ids = sql!(tx.conn() => |c| sqlx::query_scalar("select id from directory_tenants where status = 'active' order by id")
        .fetch_all(&mut *c).await)?;
    tx.commit().await?;
    Ok(ids)
}

/// Due certifications handled per page of statements.
pub const REMINDERS_PER_PAGE: usize = 500;

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    user_id: Uuid,
    name: String,
    expires_on: time::Date,
    /// The nearest offset already reminded of in this cycle.
    last_offset: Option<i32>,
}

impl Renewals {
    /// Sends each certification's reminder at the tenant's offsets (days before expiry, in the
    /// tenant's time zone). The offset reached is recorded with the reminder in one
    /// transaction, under a unique key, so a reminder goes once per offset however many times
    /// or instances run the scan. When a scan was missed and several offsets were passed, only
    /// the nearest is sent.
    pub async fn expiry_reminders(&self, now: OffsetDateTime) -> ApiResult<ReminderOutcome> {
        let mut out = self
            .expiry_reminders_in(&tenants(&self.db).await?, now)
            .await?;
        out.queries += 1;
        Ok(out)
    }

    /// [`Renewals::expiry_reminders`] for some tenants only.
    pub async fn expiry_reminders_in(
        &self,
        tenants: &[Uuid],
        now: OffsetDateTime,
    ) -> ApiResult<ReminderOutcome> {
        let mut out = ReminderOutcome::default();
        for &tenant in tenants {
            let mut tx = TenantTx::begin_system(&self.db, TenantId(tenant)).await?;
            let clock = certs::clock(&mut tx, now).await?;
            // begin, clock (and, below, the due certifications and the commit).
            out.queries += 4;
            let Some(&largest) = clock.offsets.first() else {
                tx.commit().await?;
                continue;
            };
            let horizon = clock
                .today
                .checked_add(Duration::days(i64::from(largest)))
                .unwrap_or(time::Date::MAX);
            let due: Vec<Due> = sql!(tx.conn() => |c| sqlx::query_as(
                "select c.id, c.user_id, t.name, c.expires_on,
                        (select min(r.offset_days) from certification_reminders r
                          where r.tenant_id = c.tenant_id and r.certification_id = c.id) as last_offset
                   from certifications c
                   join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
                   join directory_people u on u.tenant_id = c.tenant_id and u.id = c.user_id
                  where c.tenant_id = $1 and c.deleted_at is null and c.renewed_at is null
                    and c.expires_on >= $2 and c.expires_on <= $3
                    and u.is_active = true and u.deleted_at is null")
                .bind(tenant).bind(clock.today).bind(horizon)
                .fetch_all(&mut *c).await)?;
            out.scanned += due.len() as u64;
            for page in due.chunks(REMINDERS_PER_PAGE) {
                self.remind_page(&mut tx, &clock, page, now, &mut out)
                    .await?;
            }
            tx.commit().await?;
            out.tenants += 1;
        }
        Ok(out)
    }

    /// Sends the reminders one page of due certifications has reached, with a fixed number of
    /// statements: the reminders (one multi-row insert; those another run already recorded
    /// are skipped), their notifications ([`notify_many`]) and the audit entry listing the
    /// certifications reminded, attributed to the job.
    async fn remind_page(
        &self,
        tx: &mut TenantTx,
        clock: &certs::TenantClock,
        page: &[Due],
        now: OffsetDateTime,
        out: &mut ReminderOutcome,
    ) -> ApiResult<()> {
        let tenant = tx.tenant();
        // Each certification's nearest offset reached (the smallest at or above the days
        // left), unless this cycle was already reminded at it or nearer.
        let reached: Vec<(&Due, i32, i64)> = page
            .iter()
            .filter_map(|d| {
                let days_left = (d.expires_on - clock.today).whole_days();
                let offset = clock
                    .offsets
                    .iter()
                    .copied()
                    .filter(|o| i64::from(*o) >= days_left)
                    .min()?;
                let reminded = d.last_offset.is_some_and(|last| last <= offset);
                (!reminded).then_some((d, offset, days_left))
            })
            .collect();
        if reached.is_empty() {
            return Ok(());
        }
        let inserted: Vec<(Uuid,)> = sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "insert into certification_reminders (tenant_id, certification_id, offset_days, sent_at) ");
            qb.push_values(&reached, |mut row, (d, offset, _)| {
                row.push_bind(tenant).push_bind(d.id).push_bind(*offset).push_bind(now);
            });
            qb.push(" on conflict do nothing returning certification_id");
            qb.build_query_as().fetch_all(&mut *c).await
        })?;
        out.queries += 1;
        let inserted: HashSet<Uuid> = inserted.into_iter().map(|r| r.0).collect();
        // Those another run recorded first are left to it.
        let (notices, objects): (Vec<Notice>, Vec<ObjectChange>) = reached
            .iter()
            .filter(|(d, ..)| inserted.contains(&d.id))
            .map(|(d, _, days_left)| {
                (
                    reminder_notice(d, *days_left),
                    ObjectChange::new("certification", d.id, Change::Updated)
                        .fields(vec!["reminded"]),
                )
            })
            .unzip();
        if notices.is_empty() {
            return Ok(());
        }
        let sent = notify_many(tx, &notices, &self.public_url, now).await?;
        out.queries += sent.statements;
        out.reminded += notices.len() as u64;
        let source = BatchSource::new("system", None).with("job", "expiry_reminders");
        audit::record_batch(tx, &source, "certification.reminder_sent", &objects, now).await?;
        out.queries += audit::batch_statements(tx, objects.len());
        Ok(())
    }

    /// Looks after pending steps: re-routes those whose approver left or whose relation now
    /// resolves to someone else (a manager changed); reminds approvers at the step's SLA; and
    /// escalates after twice the SLA — to the approver's delegate, else their own manager, else
    /// the fallback (a training officer, an administrator).
    pub async fn escalations(&self, now: OffsetDateTime) -> ApiResult<EscalationOutcome> {
        self.escalations_in(&tenants(&self.db).await?, now).await
    }

    /// [`Renewals::escalations`] for some tenants only.
    pub async fn escalations_in(
        &self,
        tenants: &[Uuid],
        now: OffsetDateTime,
    ) -> ApiResult<EscalationOutcome> {
        let mut out = EscalationOutcome::default();
        for &tenant in tenants {
            let mut tx = TenantTx::begin_system(&self.db, TenantId(tenant)).await?;
            let pending: Vec<(Uuid, Uuid, i32)> = sql!(tx.conn() => |c| sqlx::query_as(
                "select s.request_id, r.user_id, s.position from renewal_steps s
                   join renewal_requests r on r.tenant_id = s.tenant_id and r.id = s.request_id
                  where s.tenant_id = $1 and s.status = 'pending' and r.status = 'pending'
                  order by s.due_at, s.id")
                .bind(tenant).fetch_all(&mut *c).await)?;
            for (request, employee, position) in pending {
                let r = workflow::get(&mut tx, request).await?;
                let Some(step) = r.steps.iter().find(|s| s.position == position).cloned() else {
                    continue;
                };
                self.look_after(&mut tx, request, employee, &step, now, &mut out)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(out)
    }

    async fn look_after(
        &self,
        tx: &mut TenantTx,
        request: Uuid,
        employee: Uuid,
        step: &Step,
        now: OffsetDateTime,
        out: &mut EscalationOutcome,
    ) -> ApiResult<()> {
        let tenant = tx.tenant();
        let approver = step.approver_id;
        let approver_active = match approver {
            Some(a) => {
                let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                    "select id from directory_people where tenant_id = $1 and id = $2 and is_active = true and deleted_at is null")
                    .bind(tenant).bind(a).fetch_optional(&mut *c).await)?;
                found.is_some()
            }
            None => false,
        };
        // Re-route: the approver left, or (for steps still on their first assignment) the
        // relation now names someone else.
        let spec = ChainStep {
            relation: step.relation.clone(),
            user_ids: step.named.clone(),
            sla_hours: step.sla_hours,
        };
        let untouched = step.escalated_at.is_none() && step.assigned_from.is_none();
        if !approver_active || untouched {
            let (resolved, _) = workflow::resolve(tx, &spec, employee, now).await?;
            if Some(resolved) != approver {
                self.reassign(tx, request, step, resolved, "rerouted", now)
                    .await?;
                audit_step(
                    tx,
                    "renewal.step_rerouted",
                    request,
                    step,
                    Some(resolved),
                    now,
                )
                .await?;
                out.rerouted += 1;
                return Ok(());
            }
        }
        let Some(approver) = approver else {
            return Ok(());
        };
        let Some(due) = step.due_at else {
            return Ok(());
        };
        let sla = Duration::hours(i64::from(step.sla_hours));
        if now >= due + sla && step.escalated_at.is_none() {
            let manager: Option<Option<Uuid>> = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select manager_id from directory_people where tenant_id = $1 and id = $2")
                .bind(tenant).bind(approver).fetch_optional(&mut *c).await)?;
            let mut target = workflow::delegate_of(tx, approver, now).await?;
            if target.is_none() {
                if let Some(m) = manager.flatten() {
                    let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                        "select id from directory_people where tenant_id = $1 and id = $2 and is_active = true and deleted_at is null")
                        .bind(tenant).bind(m).fetch_optional(&mut *c).await)?;
                    target = found;
                }
            }
            if target.is_none() {
                let fallback = ChainStep {
                    relation: "training_officer".into(),
                    user_ids: vec![],
                    sla_hours: step.sla_hours,
                };
                target = Some(workflow::resolve(tx, &fallback, employee, now).await?.0);
            }
            let target = target.filter(|t| *t != employee && *t != approver);
            match target {
                Some(t) => {
                    self.reassign(tx, request, step, t, "escalated", now)
                        .await?;
                    audit_step(tx, "renewal.step_escalated", request, step, Some(t), now).await?;
                    out.escalated += 1;
                }
                None => {
                    // Nobody above: mark it escalated so it is not retried, and remind again.
                    sql!(tx.conn() => |c| sqlx::query(
                        "update renewal_steps set escalated_at = $3 where tenant_id = $1 and id = $2")
                        .bind(tenant).bind(step.id).bind(now).execute(&mut *c).await.map(drop))?;
                    self.send_link(tx, request, step.id, approver, true, now)
                        .await?;
                    audit_step(
                        tx,
                        "renewal.step_escalation_exhausted",
                        request,
                        step,
                        None,
                        now,
                    )
                    .await?;
                    out.reminded += 1;
                }
            }
        } else if now >= due && step.reminded_at.is_none() {
            sql!(tx.conn() => |c| sqlx::query(
                "update renewal_steps set reminded_at = $3 where tenant_id = $1 and id = $2")
                .bind(tenant).bind(step.id).bind(now).execute(&mut *c).await.map(drop))?;
            sql!(tx.conn() => |c| sqlx::query(
                "insert into renewal_events (tenant_id, id, request_id, at, action) values ($1, $2, $3, $4, 'reminded')")
                .bind(tenant).bind(Uuid::now_v7()).bind(request).bind(now).execute(&mut *c).await.map(drop))?;
            self.send_link(tx, request, step.id, approver, true, now)
                .await?;
            audit_step(tx, "renewal.approver_reminded", request, step, None, now).await?;
            out.reminded += 1;
        }
        Ok(())
    }
}

/// Records what the escalation job did to `step` of `request` (moved it to `to`, or reminded
/// its approver), attributed to the job, in the job's transaction.
async fn audit_step(
    tx: &mut TenantTx,
    action: &str,
    request: Uuid,
    step: &Step,
    to: Option<Uuid>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let mut detail = serde_json::json!({
        "job": "renewal_escalations",
        "step_id": step.id,
        "position": step.position,
        "approver_id": step.approver_id,
    });
    if let Some(to) = to {
        detail["to"] = to.to_string().into();
    }
    audit::record(
        tx,
        Entry::as_actor("system", None, action, None)
            .object("renewal_request", request)
            .detail(detail),
        now,
    )
    .await
}

/// The reminder of `d`, `days_left` days before it expires.
fn reminder_notice(d: &Due, days_left: i64) -> Notice {
    let mut notice = Notice::new(
        d.user_id,
        Kind::Renewal,
        if days_left <= 7 {
            Priority::High
        } else {
            Priority::Medium
        },
        format!("{} expires in {days_left} days", d.name),
        format!(
            "Your {} expires on {}. Request its renewal.",
            d.name, d.expires_on
        ),
    );
    notice.link = Some(format!("/portal/certifications/{}", d.id));
    notice.email_template = Some((
        "certification_expiring",
        vec![
            ("certification", d.name.clone()),
            ("days", days_left.to_string()),
            ("expires_on", d.expires_on.to_string()),
        ],
    ));
    notice
}

/// What the escalation job did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EscalationOutcome {
    pub reminded: u64,
    pub escalated: u64,
    pub rerouted: u64,
}
