//! Renewal requests and their approval chains.
//!
//! A request snapshots its tenant's chain (for its certification type, else the default) as
//! ordered steps. One step is pending at a time; its approver is resolved when it becomes
//! pending — by relation to the employee (foreman, manager, a training officer) or from named
//! people — then handed to a delegate when the approver is out of office. Whoever resolves
//! nothing falls back to the tenant's training officers and then administrators, so no request
//! is ever left without an approver. Each pending step gets an approval link by email and SMS.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use trainflow_kernel::{
    db::TenantTx,
    envelope::Page,
    secret::{link_token, sha256_hex},
    sql, ApiError, ApiResult,
};
use trainflow_notifications::{notify, Channel, Kind, Notice, Priority};
use uuid::Uuid;

use crate::{
    certs::{self, RecordCertification},
    Renewals,
};

// ---------------------------------------------------------------------------------------------
// Chains

/// One step of an approval chain.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize, Deserialize)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ChainStep {
    /// `foreman`, `manager`, `training_officer` or `named`.
    #[oai(validator(pattern = r"^(?:foreman|manager|training_officer|named)$"))]
    pub relation: String,
    /// With `named` (required there, 1 to 20): the people of the tenant who may approve, first
    /// available first.
    #[oai(nullable, default, validator(max_items = 20))]
    #[serde(default, deserialize_with = "trainflow_kernel::body::null_as_default")]
    pub user_ids: Vec<Uuid>,
    /// Hours the approver has before a reminder (1–720); as long again before escalation.
    #[oai(validator(minimum(value = "1"), maximum(value = "720")))]
    pub sla_hours: i32,
}

/// The chain used when a tenant has configured none.
pub fn default_chain() -> Vec<ChainStep> {
    vec![
        ChainStep {
            relation: "manager".into(),
            user_ids: vec![],
            sla_hours: 48,
        },
        ChainStep {
            relation: "training_officer".into(),
            user_ids: vec![],
            sla_hours: 48,
        },
    ]
}

const RELATIONS: [&str; 4] = ["foreman", "manager", "training_officer", "named"];

/// Checks a chain; errors name `steps[i].field`.
pub async fn validate_chain(tx: &mut TenantTx, steps: &[ChainStep]) -> ApiResult<()> {
    let mut e = trainflow_kernel::FieldErrors::new();
    if steps.is_empty() || steps.len() > 10 {
        e.add("steps", "must have 1 to 10 steps");
    }
    let tenant = tx.tenant();
    for (i, s) in steps.iter().enumerate() {
        if !RELATIONS.contains(&s.relation.as_str()) {
            e.add(
                format!("steps[{i}].relation"),
                "must be one of: foreman, manager, training_officer, named",
            );
        }
        if !(1..=720).contains(&s.sla_hours) {
            e.add(format!("steps[{i}].sla_hours"), "must be between 1 and 720");
        }
        if s.relation == "named" && (s.user_ids.is_empty() || s.user_ids.len() > 20) {
            e.add(
                format!("steps[{i}].user_ids"),
                "a named step needs 1 to 20 people",
            );
        }
        for id in &s.user_ids {
            let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select id from directory_people where tenant_id = $1 and id = $2 and deleted_at is null")
                .bind(tenant).bind(*id).fetch_optional(&mut *c).await)?;
            if found.is_none() {
                e.add(format!("steps[{i}].user_ids"), format!("no person {id}"));
            }
        }
    }
    e.into_result()
}

/// The chain for `scope` (`default` or a certification type id), and whether it was configured.
pub async fn chain(tx: &mut TenantTx, scope: &str) -> ApiResult<(Vec<ChainStep>, bool)> {
    let tenant = tx.tenant();
    let row: Option<sqlx::types::Json<Vec<ChainStep>>> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select steps from approval_chains where tenant_id = $1 and scope = $2")
        .bind(tenant).bind(scope).fetch_optional(&mut *c).await)?;
    Ok(match row {
        Some(steps) => (steps.0, true),
        None if scope != "default" => {
            let (steps, _) = Box::pin(chain(tx, "default")).await?;
            (steps, false)
        }
        None => (default_chain(), false),
    })
}

pub async fn save_chain(
    tx: &mut TenantTx,
    scope: &str,
    steps: &[ChainStep],
    by: Uuid,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let json = sqlx::types::Json(steps);
    sql!(tx.conn() => |c| sqlx::query(
        "insert into approval_chains (tenant_id, scope, steps, updated_by, updated_at) values ($1, $2, $3, $4, $5)
         on conflict (tenant_id, scope) do update set steps = excluded.steps, updated_by = excluded.updated_by,
             updated_at = excluded.updated_at")
        .bind(tenant).bind(scope).bind(json).bind(by).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Approver resolution

#[derive(sqlx::FromRow)]
struct Person {
    id: Uuid,
    department_id: Option<Uuid>,
    supervisor_id: Option<Uuid>,
    manager_id: Option<Uuid>,
}

async fn active(tx: &mut TenantTx, id: Uuid) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from directory_people where tenant_id = $1 and id = $2 and is_active = true and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    Ok(found.is_some())
}

/// The first active person of `role`, preferring the department, never `not`.
async fn by_role(
    tx: &mut TenantTx,
    role: &str,
    department: Option<Uuid>,
    not: Uuid,
) -> ApiResult<Option<Uuid>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from directory_people where tenant_id = $1 and role = $2 and is_active = true and deleted_at is null
            and id <> $4
          order by case when department_id = $3 then 0 else 1 end, created_at, id limit 1")
        .bind(tenant).bind(role).bind(department).bind(not).fetch_optional(&mut *c).await)?)
}

/// Who approves `step` for `employee` at `now`: (approver, the person it was delegated from).
pub async fn resolve(
    tx: &mut TenantTx,
    step: &ChainStep,
    employee: Uuid,
    now: OffsetDateTime,
) -> ApiResult<(Uuid, Option<Uuid>)> {
    let tenant = tx.tenant();
    let person: Person = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, department_id, supervisor_id, manager_id from directory_people where tenant_id = $1 and id = $2")
        .bind(tenant).bind(employee).fetch_one(&mut *c).await)?;
    let mut candidates: Vec<Option<Uuid>> = Vec::new();
    match step.relation.as_str() {
        "foreman" => {
            candidates.push(person.supervisor_id);
            candidates.push(by_role(tx, "foreman", person.department_id, person.id).await?);
        }
        "manager" => {
            candidates.push(person.manager_id);
            candidates.push(by_role(tx, "manager", person.department_id, person.id).await?);
        }
        "named" => candidates.extend(step.user_ids.iter().map(|u| Some(*u))),
        _ => {}
    }
    // Nobody by relation: a training officer, then an administrator.
    candidates.push(by_role(tx, "training_officer", person.department_id, person.id).await?);
    candidates.push(by_role(tx, "administrator", person.department_id, person.id).await?);
    for candidate in candidates.into_iter().flatten() {
        if candidate != employee && active(tx, candidate).await? {
            return Ok(match delegate_of(tx, candidate, now).await? {
                Some(d) if d != employee => (d, Some(candidate)),
                _ => (candidate, None),
            });
        }
    }
    Err(ApiError::Conflict {
        field: "approver".into(),
        message: "nobody can approve this request: the tenant has no active administrator".into(),
    })
}

/// The active delegate of `user` at `now`, if they are out of office.
pub async fn delegate_of(
    tx: &mut TenantTx,
    user: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Option<Uuid>> {
    let tenant = tx.tenant();
    let d: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select d.delegate_id from approval_delegations d
           join directory_people u on u.tenant_id = d.tenant_id and u.id = d.delegate_id
          where d.tenant_id = $1 and d.user_id = $2 and d.starts_at <= $3 and d.ends_at > $3
            and u.is_active = true and u.deleted_at is null
          order by d.created_at desc limit 1")
        .bind(tenant).bind(user).bind(now).fetch_optional(&mut *c).await)?;
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A renewal request with its steps and history.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RenewalRequest {
    pub id: Uuid,
    pub certification_id: Uuid,
    pub certification: String,
    pub user_id: Uuid,
    pub user_name: String,
    pub requested_by: Uuid,
    /// `pending`, `approved`, `rejected`, `returned` or `cancelled`.
    pub status: String,
    pub comment: Option<String>,
    pub current_step: i32,
    pub steps: Vec<Step>,
    pub history: Vec<Event>,
    pub evidence: Vec<Evidence>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
}

/// One approval step.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Step {
    pub id: Uuid,
    pub position: i32,
    pub relation: String,
    pub approver_id: Option<Uuid>,
    /// The approver this step was delegated, escalated or re-routed from.
    pub assigned_from: Option<Uuid>,
    /// `waiting`, `pending`, `approved`, `rejected`, `returned` or `cancelled`.
    pub status: String,
    pub sla_hours: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub reminded_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub escalated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    pub decided_by: Option<Uuid>,
    pub comment: Option<String>,
    #[oai(skip)]
    #[serde(skip)]
    #[sqlx(json)]
    pub named: Vec<Uuid>,
}

const STEP_COLUMNS: &str =
    "id, position, relation, approver_id, assigned_from, status, sla_hours, due_at, \
     reminded_at, escalated_at, decided_at, decided_by, comment, named";

/// Something that happened to a request.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Event {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor_id: Option<Uuid>,
    /// `submitted`, `approved`, `rejected`, `returned`, `resubmitted`, `cancelled`, `reminded`,
    /// `escalated`, `rerouted`, `delegated`, `evidence_added`, `renewed`.
    pub action: String,
    pub comment: Option<String>,
}

/// An evidence file (metadata).
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Evidence {
    pub id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: Uuid,
    certification_id: Uuid,
    user_id: Uuid,
    requested_by: Uuid,
    status: String,
    comment: Option<String>,
    current_step: i32,
    created_at: OffsetDateTime,
    decided_at: Option<OffsetDateTime>,
    type_name: String,
    first_name: String,
    last_name: String,
}

/// A request as its viewers see it; 404 when absent.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> ApiResult<RenewalRequest> {
    let tenant = tx.tenant();
    let row: Option<RequestRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select r.id, r.certification_id, r.user_id, r.requested_by, r.status, r.comment, r.current_step,
                r.created_at, r.decided_at, t.name as type_name, u.first_name, u.last_name
           from renewal_requests r
           join certifications c on c.tenant_id = r.tenant_id and c.id = r.certification_id
           join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
           join directory_people u on u.tenant_id = r.tenant_id and u.id = r.user_id
          where r.tenant_id = $1 and r.id = $2")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    let r = row.ok_or(ApiError::NotFound)?;
    let steps: Vec<Step> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {STEP_COLUMNS} from renewal_steps where tenant_id = $1 and request_id = $2 order by position"))
        .bind(tenant).bind(id).fetch_all(&mut *c).await)?;
    let history: Vec<Event> = sql!(tx.conn() => |c| sqlx::query_as(
        "select at, actor_id, action, comment from renewal_events where tenant_id = $1 and request_id = $2 order by at, id")
        .bind(tenant).bind(id).fetch_all(&mut *c).await)?;
    let evidence: Vec<Evidence> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, filename, content_type, size_bytes, sha256, created_at from renewal_evidence
          where tenant_id = $1 and request_id = $2 order by created_at, id")
        .bind(tenant).bind(id).fetch_all(&mut *c).await)?;
    Ok(RenewalRequest {
        id: r.id,
        certification_id: r.certification_id,
        certification: r.type_name,
        user_id: r.user_id,
        user_name: format!("{} {}", r.first_name, r.last_name)
            .trim()
            .to_string(),
        requested_by: r.requested_by,
        status: r.status,
        comment: r.comment,
        current_step: r.current_step,
        steps,
        history,
        evidence,
        created_at: r.created_at,
        decided_at: r.decided_at,
    })
}

/// Requests of `user` (as employee or requester), newest first.
pub async fn mine(
    tx: &mut TenantTx,
    user: Uuid,
    page: Page,
) -> ApiResult<(Vec<RenewalRequest>, i64)> {
    let tenant = tx.tenant();
    let (limit, offset) = (page.limit(), page.offset());
    let ids: Vec<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from renewal_requests where tenant_id = $1 and (user_id = $2 or requested_by = $2)
          order by created_at desc, id desc limit $3 offset $4")
        .bind(tenant).bind(user).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
    let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from renewal_requests where tenant_id = $1 and (user_id = $2 or requested_by = $2)")
        .bind(tenant).bind(user).fetch_one(&mut *c).await)?;
    Ok((requests(tx, ids).await?, total))
}

/// The requests `ids`, in that order.
async fn requests(tx: &mut TenantTx, ids: Vec<Uuid>) -> ApiResult<Vec<RenewalRequest>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(get(tx, id).await?);
    }
    Ok(out)
}

/// Requests waiting for `approver`, oldest due first: one `page` and the total.
pub async fn queue(
    tx: &mut TenantTx,
    approver: Uuid,
    page: Page,
) -> ApiResult<(Vec<RenewalRequest>, i64)> {
    let tenant = tx.tenant();
    let (limit, offset) = (page.limit(), page.offset());
    let ids: Vec<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select s.request_id from renewal_steps s
           join renewal_requests r on r.tenant_id = s.tenant_id and r.id = s.request_id
          where s.tenant_id = $1 and s.approver_id = $2 and s.status = 'pending' and r.status = 'pending'
          order by s.due_at, s.id limit $3 offset $4")
        .bind(tenant).bind(approver).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
    let total = queue_count(tx, approver).await?;
    Ok((requests(tx, ids).await?, total))
}

async fn event(
    tx: &mut TenantTx,
    request: Uuid,
    actor: Option<Uuid>,
    action: &str,
    comment: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into renewal_events (tenant_id, id, request_id, at, actor_id, action, comment)
         values ($1, $2, $3, $4, $5, $6, $7)")
        .bind(tenant).bind(Uuid::now_v7()).bind(request).bind(now).bind(actor).bind(action).bind(comment)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Who may act for an employee: themselves, their foreman or manager, or certification managers.
pub async fn may_request_for(
    tx: &mut TenantTx,
    actor: Uuid,
    can_manage: bool,
    employee: Uuid,
) -> ApiResult<bool> {
    if actor == employee || can_manage {
        return Ok(true);
    }
    let tenant = tx.tenant();
    let lines: Option<(Option<Uuid>, Option<Uuid>)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select supervisor_id, manager_id from directory_people where tenant_id = $1 and id = $2")
        .bind(tenant).bind(employee).fetch_optional(&mut *c).await)?;
    Ok(lines.is_some_and(|(s, m)| s == Some(actor) || m == Some(actor)))
}

impl Renewals {
    /// Opens a renewal request for the current cycle `certification`, and starts its chain.
    pub async fn submit(
        &self,
        tx: &mut TenantTx,
        actor: Uuid,
        can_manage: bool,
        certification: Uuid,
        comment: Option<String>,
        now: OffsetDateTime,
    ) -> ApiResult<Uuid> {
        let tenant = tx.tenant();
        let cert: Option<(Uuid, Uuid, Option<OffsetDateTime>)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select user_id, type_id, renewed_at from certifications where tenant_id = $1 and id = $2 and deleted_at is null")
            .bind(tenant).bind(certification).fetch_optional(&mut *c).await)?;
        let Some((employee, type_id, renewed)) = cert else {
            return Err(ApiError::field("certification_id", "no such certification"));
        };
        if !may_request_for(tx, actor, can_manage, employee).await? {
            // Not theirs to see: the same answer as a certification that does not exist.
            return Err(ApiError::field("certification_id", "no such certification"));
        }
        if renewed.is_some() {
            return Err(ApiError::field(
                "certification_id",
                "this cycle was already renewed; request the renewal of the current one",
            ));
        }
        let open: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from renewal_requests where tenant_id = $1 and certification_id = $2 and status in ('pending', 'returned')")
            .bind(tenant).bind(certification).fetch_optional(&mut *c).await)?;
        if open.is_some() {
            return Err(ApiError::Conflict {
                field: "certification_id".into(),
                message: "a renewal of this certification is already open".into(),
            });
        }
        let (steps, _) = chain(tx, &type_id.to_string()).await?;
        let id = Uuid::now_v7();
        sql!(tx.conn() => |c| sqlx::query(
            "insert into renewal_requests (tenant_id, id, certification_id, user_id, requested_by, status,
                    comment, current_step, created_at, updated_at)
             values ($1, $2, $3, $4, $5, 'pending', $6, 0, $7, $7)")
            .bind(tenant).bind(id).bind(certification).bind(employee).bind(actor).bind(&comment).bind(now)
            .execute(&mut *c).await.map(drop))?;
        for (i, s) in steps.iter().enumerate() {
            let named = sqlx::types::Json(&s.user_ids);
            sql!(tx.conn() => |c| sqlx::query(
                "insert into renewal_steps (tenant_id, id, request_id, position, relation, named, status, sla_hours)
                 values ($1, $2, $3, $4, $5, $6, 'waiting', $7)")
                .bind(tenant).bind(Uuid::now_v7()).bind(id).bind(i as i32).bind(&s.relation).bind(named)
                .bind(s.sla_hours).execute(&mut *c).await.map(drop))?;
        }
        event(tx, id, Some(actor), "submitted", comment.as_deref(), now).await?;
        self.activate(tx, id, 0, now).await?;
        Ok(id)
    }

    /// Makes step `position` of `request` pending: resolves its approver and sends the link.
    async fn activate(
        &self,
        tx: &mut TenantTx,
        request: Uuid,
        position: i32,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let tenant = tx.tenant();
        let step: Step = sql!(tx.conn() => |c| sqlx::query_as(&format!(
            "select {STEP_COLUMNS} from renewal_steps where tenant_id = $1 and request_id = $2 and position = $3"))
            .bind(tenant).bind(request).bind(position).fetch_one(&mut *c).await)?;
        let employee: Uuid = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select user_id from renewal_requests where tenant_id = $1 and id = $2")
            .bind(tenant).bind(request).fetch_one(&mut *c).await)?;
        let spec = ChainStep {
            relation: step.relation.clone(),
            user_ids: step.named.clone(),
            sla_hours: step.sla_hours,
        };
        let (approver, from) = resolve(tx, &spec, employee, now).await?;
        let due = now + Duration::hours(i64::from(step.sla_hours));
        sql!(tx.conn() => |c| sqlx::query(
            "update renewal_steps set status = 'pending', approver_id = $3, assigned_from = $4, due_at = $5,
                    reminded_at = null, escalated_at = null
              where tenant_id = $1 and id = $2")
            .bind(tenant).bind(step.id).bind(approver).bind(from).bind(due)
            .execute(&mut *c).await.map(drop))?;
        sql!(tx.conn() => |c| sqlx::query(
            "update renewal_requests set current_step = $3, updated_at = $4 where tenant_id = $1 and id = $2")
            .bind(tenant).bind(request).bind(position).bind(now).execute(&mut *c).await.map(drop))?;
        if from.is_some() {
            event(tx, request, None, "delegated", None, now).await?;
        }
        self.send_link(tx, request, step.id, approver, false, now)
            .await
    }

    /// Issues a fresh approval link for `step` to `approver` (revoking earlier ones) and sends it
    /// by email and, when they have a phone, SMS.
    pub(crate) async fn send_link(
        &self,
        tx: &mut TenantTx,
        request: Uuid,
        step: Uuid,
        approver: Uuid,
        reminder: bool,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let tenant = tx.tenant();
        sql!(tx.conn() => |c| sqlx::query(
            "update approval_links set revoked_at = $3 where tenant_id = $1 and step_id = $2 and used_at is null and revoked_at is null")
            .bind(tenant).bind(step).bind(now).execute(&mut *c).await.map(drop))?;
        let (token, digest) = link_token(tenant);
        let expires = now + self.link_ttl;
        let link_id = Uuid::now_v7();
        // An SMS reply names only the sender's number and the code: index them to this link,
        // with a code no other open link of this number in the tenant has.
        let phone: Option<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select phone from directory_people where tenant_id = $1 and id = $2")
            .bind(tenant).bind(approver).fetch_one(&mut *c).await)?;
        let code = match &phone {
            Some(phone) => {
                claim_sms_code(tx, &self.sms_codes, phone, link_id, expires, now).await?
            }
            None => self.sms_codes.draw(),
        };
        sql!(tx.conn() => |c| sqlx::query(
            "insert into approval_links (tenant_id, id, token_hash, step_id, approver_id, sms_code, expires_at, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(tenant).bind(link_id).bind(&digest).bind(step).bind(approver).bind(&code)
            .bind(expires).bind(now).execute(&mut *c).await.map(drop))?;
        let r = get(tx, request).await?;
        let position = r
            .steps
            .iter()
            .find(|s| s.id == step)
            .map_or(1, |s| s.position + 1);
        let expires_on: Option<time::Date> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select expires_on from certifications where tenant_id = $1 and id = $2")
            .bind(tenant).bind(r.certification_id).fetch_one(&mut *c).await)?;
        let url = format!("{}/a/{token}", self.public_url.trim_end_matches('/'));
        let title = format!(
            "{}Renewal to approve: {} for {}",
            if reminder { "Reminder — " } else { "" },
            r.certification,
            r.user_name
        );
        let mut notice = Notice::new(
            approver,
            Kind::Renewal,
            Priority::High,
            title,
            format!("{} asks to renew {}.", r.user_name, r.certification),
        );
        notice.link = Some(format!("/portal/approvals/{request}"));
        notice.email_template = Some((
            "approval_request",
            vec![
                ("employee", r.user_name.clone()),
                ("certification", r.certification.clone()),
                (
                    "expires_on",
                    expires_on.map_or_else(|| "never".into(), |d| d.to_string()),
                ),
                ("step", position.to_string()),
                ("approve_link", url.clone()),
                ("link_expires", format_time(expires)),
            ],
        ));
        notice.sms = Some(format!(
            "Approve {}'s {} renewal: {url} or reply YES {code} / NO {code}",
            r.user_name, r.certification
        ));
        notice.required_channels = vec![Channel::Email, Channel::Sms];
        notify(tx, &notice, &self.public_url, now).await?;
        Ok(())
    }

    /// Records `approver`'s decision on the pending step of `request`.
    pub async fn decide(
        &self,
        tx: &mut TenantTx,
        request: Uuid,
        approver: Uuid,
        decision: Decision,
        comment: Option<String>,
        now: OffsetDateTime,
    ) -> ApiResult<RenewalRequest> {
        let tenant = tx.tenant();
        let r = get(tx, request).await?;
        let step = r
            .steps
            .iter()
            .find(|s| s.status == "pending")
            .filter(|_| r.status == "pending")
            .ok_or_else(|| ApiError::Conflict {
                field: "status".into(),
                message: format!("this request is {}, not waiting for a decision", r.status),
            })?;
        if step.approver_id != Some(approver) {
            return Err(ApiError::Forbidden);
        }
        if decision != Decision::Approve && comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
            return Err(ApiError::field(
                "comment",
                "say why when rejecting or returning",
            ));
        }
        let evidence_required: bool = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select t.evidence_required from certifications c join certification_types t
                 on t.tenant_id = c.tenant_id and t.id = c.type_id where c.tenant_id = $1 and c.id = $2")
            .bind(tenant).bind(r.certification_id).fetch_one(&mut *c).await)?;
        if decision == Decision::Approve && evidence_required && r.evidence.is_empty() {
            return Err(ApiError::Conflict {
                field: "evidence".into(),
                message: "this certification type requires evidence before approval".into(),
            });
        }
        let status = decision.step_status();
        sql!(tx.conn() => |c| sqlx::query(
            "update renewal_steps set status = $3, decided_at = $4, decided_by = $5, comment = $6
              where tenant_id = $1 and id = $2")
            .bind(tenant).bind(step.id).bind(status).bind(now).bind(approver).bind(&comment)
            .execute(&mut *c).await.map(drop))?;
        sql!(tx.conn() => |c| sqlx::query(
            "update approval_links set revoked_at = $3 where tenant_id = $1 and step_id = $2 and used_at is null and revoked_at is null")
            .bind(tenant).bind(step.id).bind(now).execute(&mut *c).await.map(drop))?;
        event(tx, request, Some(approver), status, comment.as_deref(), now).await?;
        let next = r.steps.iter().find(|s| s.position == step.position + 1);
        let outcome = match (decision, next) {
            (Decision::Approve, Some(n)) => {
                self.activate(tx, request, n.position, now).await?;
                None
            }
            (Decision::Approve, None) => Some("approved"),
            (Decision::Reject, _) => Some("rejected"),
            (Decision::Return, _) => Some("returned"),
        };
        if let Some(final_status) = outcome {
            sql!(tx.conn() => |c| sqlx::query(
                "update renewal_requests set status = $3, updated_at = $4,
                        decided_at = case when $3 = 'returned' then null else $4 end
                  where tenant_id = $1 and id = $2")
                .bind(tenant).bind(request).bind(final_status).bind(now).execute(&mut *c).await.map(drop))?;
            if final_status == "rejected" {
                sql!(tx.conn() => |c| sqlx::query(
                    "update renewal_steps set status = 'cancelled' where tenant_id = $1 and request_id = $2 and status = 'waiting'")
                    .bind(tenant).bind(request).execute(&mut *c).await.map(drop))?;
            }
            if final_status == "approved" {
                self.renew(tx, &r, now).await?;
            }
            let mut notice = Notice::new(
                r.user_id,
                Kind::Renewal,
                Priority::High,
                format!("Your {} renewal was {final_status}", r.certification),
                comment
                    .clone()
                    .unwrap_or_else(|| format!("The renewal was {final_status}.")),
            );
            notice.link = Some("/portal/certifications".into());
            notify(tx, &notice, &self.public_url, now).await?;
        }
        get(tx, request).await
    }

    /// Starts the next cycle of an approved request's certification.
    async fn renew(
        &self,
        tx: &mut TenantTx,
        r: &RenewalRequest,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let tenant = tx.tenant();
        let (type_id, expires_on): (Uuid, Option<time::Date>) = sql!(tx.conn() => |c| sqlx::query_as(
            "select type_id, expires_on from certifications where tenant_id = $1 and id = $2")
            .bind(tenant).bind(r.certification_id).fetch_one(&mut *c).await)?;
        let today = certs::clock(tx, now).await?.today;
        // A renewal before expiry continues from the old expiry; after it, from today.
        let issued_on = match expires_on {
            Some(e) if e >= today => {
                crate::dates::add_days(e, 1).map_err(|_| ApiError::Conflict {
                    field: "certification_id".into(),
                    message: "the next cycle would start after 2999-12-31".into(),
                })?
            }
            _ => today,
        };
        certs::record(
            tx,
            &RecordCertification {
                user_id: r.user_id,
                type_id,
                issued_on,
                expires_on: None,
                certificate_number: None,
            },
            "renewal",
            Some(r.id),
            now,
        )
        .await?;
        event(tx, r.id, None, "renewed", None, now).await
    }

    /// The employee (or whoever may act for them) sends a returned request back to the step
    /// that returned it.
    pub async fn resubmit(
        &self,
        tx: &mut TenantTx,
        request: Uuid,
        actor: Uuid,
        comment: Option<String>,
        now: OffsetDateTime,
    ) -> ApiResult<RenewalRequest> {
        let tenant = tx.tenant();
        let r = get(tx, request).await?;
        if r.status != "returned" {
            return Err(ApiError::Conflict {
                field: "status".into(),
                message: format!(
                    "only a returned request can be resubmitted; this one is {}",
                    r.status
                ),
            });
        }
        sql!(tx.conn() => |c| sqlx::query(
            "update renewal_requests set status = 'pending', updated_at = $3 where tenant_id = $1 and id = $2")
            .bind(tenant).bind(request).bind(now).execute(&mut *c).await.map(drop))?;
        event(
            tx,
            request,
            Some(actor),
            "resubmitted",
            comment.as_deref(),
            now,
        )
        .await?;
        self.activate(tx, request, r.current_step, now).await?;
        get(tx, request).await
    }

    /// Withdraws an open request.
    pub async fn cancel(
        &self,
        tx: &mut TenantTx,
        request: Uuid,
        actor: Uuid,
        now: OffsetDateTime,
    ) -> ApiResult<RenewalRequest> {
        let tenant = tx.tenant();
        let r = get(tx, request).await?;
        if !matches!(r.status.as_str(), "pending" | "returned") {
            return Err(ApiError::Conflict {
                field: "status".into(),
                message: format!("this request is already {}", r.status),
            });
        }
        sql!(tx.conn() => |c| sqlx::query(
            "update renewal_requests set status = 'cancelled', decided_at = $3, updated_at = $3 where tenant_id = $1 and id = $2")
            .bind(tenant).bind(request).bind(now).execute(&mut *c).await.map(drop))?;
        sql!(tx.conn() => |c| sqlx::query(
            "update renewal_steps set status = 'cancelled' where tenant_id = $1 and request_id = $2 and status in ('waiting', 'pending')")
            .bind(tenant).bind(request).execute(&mut *c).await.map(drop))?;
        sql!(tx.conn() => |c| sqlx::query(
            "update approval_links set revoked_at = $3 where tenant_id = $1 and used_at is null and revoked_at is null
                and step_id in (select id from renewal_steps where tenant_id = $1 and request_id = $2)")
            .bind(tenant).bind(request).bind(now).execute(&mut *c).await.map(drop))?;
        event(tx, request, Some(actor), "cancelled", None, now).await?;
        get(tx, request).await
    }

    /// Reassigns the pending step `step` of `request` to `to` (escalation, delegation or
    /// re-routing), with a fresh link.
    pub(crate) async fn reassign(
        &self,
        tx: &mut TenantTx,
        request: Uuid,
        step: &Step,
        to: Uuid,
        action: &str,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let tenant = tx.tenant();
        let due = now + Duration::hours(i64::from(step.sla_hours));
        let escalated = (action == "escalated").then_some(now);
        sql!(tx.conn() => |c| sqlx::query(
            "update renewal_steps set approver_id = $3, assigned_from = $4, due_at = $5, reminded_at = null,
                    escalated_at = coalesce($6, escalated_at)
              where tenant_id = $1 and id = $2")
            .bind(tenant).bind(step.id).bind(to).bind(step.approver_id).bind(due).bind(escalated)
            .execute(&mut *c).await.map(drop))?;
        event(tx, request, None, action, None, now).await?;
        self.send_link(tx, request, step.id, to, false, now).await
    }
}

/// An approver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
    /// Back to the employee for changes (more evidence, a correction).
    Return,
}

impl Decision {
    fn step_status(self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
            Decision::Return => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "approve" => Some(Decision::Approve),
            "reject" => Some(Decision::Reject),
            "return" => Some(Decision::Return),
            _ => None,
        }
    }
}

/// How many codes [`claim_sms_code`] draws before giving up (a phone has a handful of open
/// codes out of a million, so a second draw is already rare).
const SMS_CODE_DRAWS: usize = 16;

/// Where SMS reply codes come from: 6 random digits. Tests can queue codes to be drawn first
/// ([`SmsCodes::force`]), to make two links draw the same one.
#[derive(Clone, Default)]
pub struct SmsCodes(Arc<Mutex<VecDeque<String>>>);

impl SmsCodes {
    /// Queues `codes` (6 digits each) to be drawn before random ones.
    pub fn force(&self, codes: &[&str]) {
        if let Ok(mut q) = self.0.lock() {
            q.extend(codes.iter().map(|c| c.to_string()));
        }
    }

    /// The next code.
    pub fn draw(&self) -> String {
        if let Some(code) = self.0.lock().ok().and_then(|mut q| q.pop_front()) {
            return code;
        }
        // 62 random bits of a v4 UUID, reduced to 6 digits (the bias is far below 10^-12).
        let n = (Uuid::new_v4().as_u128() as u64) % 1_000_000;
        format!("{n:06}")
    }
}

/// Draws a code for `link` that no open (unexpired, unused, unrevoked) link of `phone` in this
/// tenant has, and records it in `approval_sms_codes`, drawing again on a collision (at most
/// [`SMS_CODE_DRAWS`] times). The row's key is (tenant, phone, code): codes of closed links of
/// the phone are removed first, so they are free again; a concurrent claim of the same code
/// waits on the key and draws again.
async fn claim_sms_code(
    tx: &mut TenantTx,
    codes: &SmsCodes,
    phone: &str,
    link: Uuid,
    expires: OffsetDateTime,
    now: OffsetDateTime,
) -> ApiResult<String> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "delete from approval_sms_codes
          where tenant_id = $1 and phone = $2
            and (expires_at <= $3
                 or link_id in (select id from approval_links
                                 where tenant_id = $1 and (used_at is not null or revoked_at is not null)))")
        .bind(tenant).bind(phone).bind(now).execute(&mut *c).await.map(drop))?;
    let open: Vec<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select code from approval_sms_codes where tenant_id = $1 and phone = $2")
        .bind(tenant).bind(phone).fetch_all(&mut *c).await)?;
    let mut taken: HashSet<String> = open.into_iter().collect();
    for _ in 0..SMS_CODE_DRAWS {
        let code = codes.draw();
        if taken.contains(&code) {
            continue;
        }
        let claimed = sql!(tx.conn() => |c| sqlx::query(
            "insert into approval_sms_codes (phone, code, tenant_id, link_id, expires_at) values ($1, $2, $3, $4, $5)
             on conflict (tenant_id, phone, code) do nothing")
            .bind(phone).bind(&code).bind(tenant).bind(link).bind(expires)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        if claimed == 1 {
            return Ok(code);
        }
        taken.insert(code);
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "no free SMS reply code for a phone after {SMS_CODE_DRAWS} draws"
    )))
}

fn format_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| t.to_string())
}

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    Unknown,
    Used,
    Expired,
    /// Superseded: the step was decided another way, re-routed, or the request withdrawn.
    Revoked,
}

/// (step, approver, expires at, used at, revoked at).
type LinkRow = (
    Uuid,
    Uuid,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
);

/// A link's step and approver, if it is usable at `now` (read only: GET).
pub async fn peek_link(
    tx: &mut TenantTx,
    digest: &str,
    now: OffsetDateTime,
) -> ApiResult<Result<(Uuid, Uuid, Uuid), LinkProblem>> {
    let tenant = tx.tenant();
    let row: Option<LinkRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select step_id, approver_id, expires_at, used_at, revoked_at from approval_links where tenant_id = $1 and token_hash = $2")
        .bind(tenant).bind(digest).fetch_optional(&mut *c).await)?;
    let Some((step, approver, expires, used, revoked)) = row else {
        return Ok(Err(LinkProblem::Unknown));
    };
    if used.is_some() {
        return Ok(Err(LinkProblem::Used));
    }
    if revoked.is_some() {
        return Ok(Err(LinkProblem::Revoked));
    }
    if expires <= now {
        return Ok(Err(LinkProblem::Expired));
    }
    let request: Uuid = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select request_id from renewal_steps where tenant_id = $1 and id = $2")
        .bind(tenant).bind(step).fetch_one(&mut *c).await)?;
    Ok(Ok((request, step, approver)))
}

/// Redeems a link atomically: exactly one caller gets `Ok`, whatever the concurrency.
pub async fn redeem_link(
    tx: &mut TenantTx,
    digest: &str,
    action: Decision,
    now: OffsetDateTime,
) -> ApiResult<Result<(Uuid, Uuid), LinkProblem>> {
    let tenant = tx.tenant();
    let won: Option<(Uuid, Uuid)> = sql!(tx.conn() => |c| sqlx::query_as(
        "update approval_links set used_at = $3, used_action = $4
          where tenant_id = $1 and token_hash = $2 and used_at is null and revoked_at is null and expires_at > $3
          returning step_id, approver_id")
        .bind(tenant).bind(digest).bind(now).bind(action.step_status()).fetch_optional(&mut *c).await)?;
    match won {
        Some((step, approver)) => {
            let request: Uuid = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select request_id from renewal_steps where tenant_id = $1 and id = $2")
                .bind(tenant).bind(step).fetch_one(&mut *c).await)?;
            Ok(Ok((request, approver)))
        }
        None => Ok(peek_link(tx, digest, now).await?.map(|(r, _, a)| (r, a))),
    }
}

/// Redeems the link `link` (found through an SMS reply) like [`redeem_link`].
pub async fn redeem_link_by_id(
    tx: &mut TenantTx,
    link: Uuid,
    action: Decision,
    now: OffsetDateTime,
) -> ApiResult<Result<(Uuid, Uuid), LinkProblem>> {
    let tenant = tx.tenant();
    let digest: Option<String> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select token_hash from approval_links where tenant_id = $1 and id = $2")
        .bind(tenant).bind(link).fetch_optional(&mut *c).await)?;
    match digest {
        Some(d) => redeem_link(tx, &d, action, now).await,
        None => Ok(Err(LinkProblem::Unknown)),
    }
}

/// Whether `link` can still be used (not used, revoked or expired).
pub async fn link_is_open(tx: &mut TenantTx, link: Uuid, now: OffsetDateTime) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from approval_links
          where tenant_id = $1 and id = $2 and used_at is null and revoked_at is null and expires_at > $3")
        .bind(tenant).bind(link).bind(now).fetch_optional(&mut *c).await)?;
    Ok(found.is_some())
}

/// How many requests wait for `approver`.
pub async fn queue_count(tx: &mut TenantTx, approver: Uuid) -> ApiResult<i64> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from renewal_steps s
           join renewal_requests r on r.tenant_id = s.tenant_id and r.id = s.request_id
          where s.tenant_id = $1 and s.approver_id = $2 and s.status = 'pending' and r.status = 'pending'")
        .bind(tenant).bind(approver).fetch_one(&mut *c).await)?)
}

// ---------------------------------------------------------------------------------------------
// Evidence

/// Stores an evidence file on `request` and notes it in the request's history.
pub async fn add_evidence(
    tx: &mut TenantTx,
    request: Uuid,
    filename: &str,
    content_type: &str,
    content: &[u8],
    by: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let evidence = Uuid::now_v7();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into renewal_evidence (tenant_id, id, request_id, filename, content_type, size_bytes, sha256,
                content, uploaded_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(tenant).bind(evidence).bind(request).bind(filename).bind(content_type).bind(content.len() as i64)
        .bind(sha256_hex(content)).bind(content).bind(by).bind(now)
        .execute(&mut *c).await.map(drop))?;
    event(tx, request, Some(by), "evidence_added", Some(filename), now).await?;
    Ok(evidence)
}

/// The content of evidence file `evidence` of `request`, if there is one.
pub async fn evidence_content(
    tx: &mut TenantTx,
    request: Uuid,
    evidence: Uuid,
) -> ApiResult<Option<Vec<u8>>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select content from renewal_evidence where tenant_id = $1 and request_id = $2 and id = $3")
        .bind(tenant).bind(request).bind(evidence).fetch_optional(&mut *c).await)?)
}

// ---------------------------------------------------------------------------------------------
// Delegations and reporting lines

/// An out-of-office delegation.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Delegation {
    pub id: Uuid,
    pub delegate_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
}

/// `user`'s delegations that have not ended at `now`, soonest first.
pub async fn delegations(
    tx: &mut TenantTx,
    user: Uuid,
    page: Page,
    now: OffsetDateTime,
) -> ApiResult<(Vec<Delegation>, i64)> {
    let tenant = tx.tenant();
    let (limit, offset) = (page.limit(), page.offset());
    let rows = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, delegate_id, starts_at, ends_at from approval_delegations
          where tenant_id = $1 and user_id = $2 and ends_at > $3 order by starts_at, id limit $4 offset $5")
        .bind(tenant).bind(user).bind(now).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
    let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from approval_delegations where tenant_id = $1 and user_id = $2 and ends_at > $3")
        .bind(tenant).bind(user).bind(now).fetch_one(&mut *c).await)?;
    Ok((rows, total))
}

/// Records that `user` hands their approvals to `d.delegate_id` from `d.starts_at` to
/// `d.ends_at`.
pub async fn insert_delegation(
    tx: &mut TenantTx,
    user: Uuid,
    d: &Delegation,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into approval_delegations (tenant_id, id, user_id, delegate_id, starts_at, ends_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)")
        .bind(tenant).bind(d.id).bind(user).bind(d.delegate_id).bind(d.starts_at).bind(d.ends_at).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Ends `user`'s delegation `id` at `now`; false when there is no such running or future one.
pub async fn end_delegation(
    tx: &mut TenantTx,
    user: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update approval_delegations set ends_at = $4 where tenant_id = $1 and user_id = $2 and id = $3 and ends_at > $4")
        .bind(tenant).bind(user).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Whether `id` is an active person of the tenant.
pub async fn is_active_person(tx: &mut TenantTx, id: Uuid) -> ApiResult<bool> {
    active(tx, id).await
}

/// Whether `id` is a person of the tenant (active or not, not deleted).
pub async fn is_person(tx: &mut TenantTx, id: Uuid) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from directory_people where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    Ok(found.is_some())
}
