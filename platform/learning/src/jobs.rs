//! The enrolment expiry: a plain function the scheduler calls (claimed once per occurrence
//! across instances) and tests call directly; each tenant is one transaction.

use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, BatchSource, Change, ObjectChange},
    db::TenantTx,
    sql, ApiResult, TenantId,
};
use trainflow_notifications::{notify_many, Kind, Notice, Priority};
use uuid::Uuid;

use crate::{
    enrolments::{self, EnrolmentStatus},
    service, Learning,
};

/// What one expiry run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpiryOutcome {
    pub tenants: u64,
    /// Enrolments expired.
    pub expired: u64,
    /// Notifications written (the person, and their manager or foreman).
    pub notified: u64,
}

impl Learning {
    /// Expires every open enrolment whose due date has passed in its tenant's time zone,
    /// recording the event, and tells the person and their line manager (else foreman).
    /// Running it twice expires nothing the second time.
    pub async fn expire_enrolments(&self, now: OffsetDateTime) -> ApiResult<ExpiryOutcome> {
        let tenants: Vec<Uuid> = {
            let mut tx = self.db.platform_tx().await?;
            let ids = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select id from directory_tenants where status = 'active' order by id")
                .fetch_all(&mut *c).await)?;
            tx.commit().await?;
            ids
        };
        let mut out = ExpiryOutcome::default();
        for tenant in tenants {
            let mut tx = TenantTx::begin_system(&self.db, TenantId(tenant)).await?;
            let today = service::today(&mut tx, now).await?;
            // Pages of overdue enrolments until none is left (each page leaves them expired).
            let mut due = Vec::new();
            loop {
                let page = enrolments::overdue(&mut tx, today, due.len()).await?;
                if page.is_empty() {
                    break;
                }
                due.extend(page);
            }
            let mut notices = Vec::new();
            let mut objects = Vec::new();
            for (id, user, title, status) in due {
                let reason = "the due date passed";
                if !enrolments::transition(
                    &mut tx,
                    id,
                    status,
                    EnrolmentStatus::Expired,
                    None,
                    Some(reason),
                    now,
                )
                .await?
                {
                    continue;
                }
                out.expired += 1;
                objects.push(ObjectChange::new("enrolment", id, Change::Updated));
                let mut notice = Notice::new(
                    user,
                    Kind::System,
                    Priority::High,
                    format!("Course overdue: {title}"),
                    format!("Your enrolment in {title} expired: its due date passed."),
                );
                notice.link = Some("/portal/learning".into());
                notices.push(notice);
                let lead: Option<(Option<Uuid>, Option<Uuid>, String)> = sql!(tx.conn() => |c| sqlx::query_as(
                    "select manager_id, supervisor_id, trim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))
                       from directory_people where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(user).fetch_optional(&mut *c).await)?;
                if let Some((manager, foreman, name)) = lead {
                    if let Some(lead) = manager.or(foreman) {
                        let mut notice = Notice::new(
                            lead,
                            Kind::System,
                            Priority::Medium,
                            format!("Overdue course: {name}"),
                            format!("{name}'s enrolment in {title} expired: its due date passed."),
                        );
                        notice.link = Some("/portal/learning".into());
                        notices.push(notice);
                    }
                }
            }
            out.notified += notices.len() as u64;
            notify_many(&mut tx, &notices, &self.public_url, now).await?;
            let source = BatchSource::new("system", None);
            audit::record_batch(&mut tx, &source, "enrolment.expire", &objects, now).await?;
            tx.commit().await?;
            out.tenants += 1;
        }
        Ok(out)
    }
}
