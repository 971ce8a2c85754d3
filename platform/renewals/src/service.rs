//! Use cases of certifications and renewals, shared by the API, the portal's pages, the approval
//! link page and the SMS webhook. Each opens the tenant transaction with the permission it needs,
//! checks, changes data through the domain modules, audits, and commits — all or nothing.

use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    body::File,
    db::TenantTx,
    envelope::Page,
    sql, ApiError, ApiResult, FieldErrors, TenantId,
};
use uuid::Uuid;

use crate::{
    api::{CreateDelegation, PreviewRequest, MAX_EVIDENCE_BYTES},
    certs::{
        self, CertFilter, Certification, CertificationType, ComplianceGroup, RecordCertification,
        TypeInput,
    },
    dates::{self, Cycle, Status},
    workflow::{self, ChainStep, Decision, Delegation, LinkProblem, RenewalRequest},
    Renewals,
};

fn can(ctx: &TenantCtx, p: Permission) -> bool {
    ctx.role.grants(p)
}

// ---------------------------------------------------------------------------------------------
// Certification types and approval chains

/// The tenant's certification types.
/// The tenant's certification types by name: one `page` and the total, or (`None`) all of
/// them for the tenant's own set-up code.
pub async fn list_types(
    svc: &Renewals,
    ctx: &TenantCtx,
    page: Option<Page>,
) -> ApiResult<(Vec<CertificationType>, i64)> {
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let rows = certs::types(&mut tx, page).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Defines a certification type.
pub async fn create_type(
    svc: &Renewals,
    ctx: &TenantCtx,
    input: TypeInput,
    now: OffsetDateTime,
) -> ApiResult<CertificationType> {
    let t = certs::validate_type(None, input)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CertificationsManage).await?;
    certs::save_type(&mut tx, &t, true, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "certification_type.create")
            .object("certification_type", t.id)
            .change(None, serde_json::to_value(&t).ok()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(t)
}

/// One certification type.
pub async fn get_type(svc: &Renewals, ctx: &TenantCtx, id: Uuid) -> ApiResult<CertificationType> {
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let t = certs::get_type(&mut tx, id).await?;
    tx.commit().await?;
    Ok(t)
}

/// Changes the fields `input` gives of a certification type.
pub async fn update_type(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    input: TypeInput,
    now: OffsetDateTime,
) -> ApiResult<CertificationType> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CertificationsManage).await?;
    let before = certs::get_type(&mut tx, id).await?;
    let after = certs::validate_type(Some(&before), input)?;
    certs::save_type(&mut tx, &after, false, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "certification_type.update")
            .object("certification_type", after.id)
            .change(
                serde_json::to_value(&before).ok(),
                serde_json::to_value(&after).ok(),
            ),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The next cycles of a validity, renewal window and start date: issue, renewal window,
/// reminders (the tenant's offsets unless given) and expiry.
pub async fn preview_timeline(
    svc: &Renewals,
    ctx: &TenantCtx,
    input: PreviewRequest,
    now: OffsetDateTime,
) -> ApiResult<Vec<Cycle>> {
    let mut e = FieldErrors::new();
    if !(1..=240).contains(&input.validity_months) {
        e.add("validity_months", "must be between 1 and 240");
    }
    if !(0..=3650).contains(&input.renewal_window_days) {
        e.add("renewal_window_days", "must be between 0 and 3650");
    }
    let cycles = input.cycles.unwrap_or(3);
    if !(1..=10).contains(&cycles) {
        e.add("cycles", "must be between 1 and 10");
    }
    if let Some(o) = &input.reminder_offsets_days {
        if o.len() > 10 || o.iter().any(|d| !(0..=3650).contains(d)) {
            e.add(
                "reminder_offsets_days",
                "at most 10 offsets, each 0 to 3650 days",
            );
        }
    }
    e.into_result()?;
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let clock = certs::clock(&mut tx, now).await?;
    tx.commit().await?;
    let offsets = input.reminder_offsets_days.unwrap_or(clock.offsets);
    dates::timeline(
        input.start_date.0,
        input.validity_months,
        input.renewal_window_days,
        &offsets,
        cycles,
    )
    .map_err(|_| timeline_out_of_range(input.start_date.0))
}

/// A timeline that would leave 1900–2999: a 422 on `start_date`.
fn timeline_out_of_range(start: Date) -> ApiError {
    if dates::in_range(start).is_err() {
        ApiError::field("start_date", dates::RANGE_MESSAGE)
    } else {
        ApiError::field(
            "start_date",
            "the cycles from this date would end after 2999-12-31",
        )
    }
}

/// The first three cycles of a type being defined, from `start`, at the tenant's reminder
/// offsets; nothing is saved.
pub async fn preview_type(
    svc: &Renewals,
    ctx: &TenantCtx,
    input: TypeInput,
    start: Date,
    now: OffsetDateTime,
) -> ApiResult<Vec<Cycle>> {
    let t = certs::validate_type(None, input)?;
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::CertificationsManage).await?;
    let offsets = certs::clock(&mut tx, now).await?.offsets;
    tx.commit().await?;
    dates::timeline(
        start,
        t.validity_months.unwrap_or(12),
        t.renewal_window_days,
        &offsets,
        3,
    )
    .map_err(|_| timeline_out_of_range(start))
}

/// `default`, or the id of one of the tenant's types (404 otherwise).
async fn chain_scope(tx: &mut TenantTx, raw: &str) -> ApiResult<String> {
    if raw == "default" {
        return Ok(raw.into());
    }
    let id: Uuid = raw.parse().map_err(|_| ApiError::NotFound)?;
    certs::get_type(tx, id).await?;
    Ok(id.to_string())
}

/// The approval chain of `scope` (`default` or a certification type id), and whether it was
/// configured.
pub async fn chain(
    svc: &Renewals,
    ctx: &TenantCtx,
    scope: &str,
) -> ApiResult<(Vec<ChainStep>, bool)> {
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::CertificationsManage).await?;
    let scope = chain_scope(&mut tx, scope).await?;
    let chain = workflow::chain(&mut tx, &scope).await?;
    tx.commit().await?;
    Ok(chain)
}

/// Replaces the approval chain of `scope` (requests already open keep theirs).
pub async fn replace_chain(
    svc: &Renewals,
    ctx: &TenantCtx,
    scope: &str,
    steps: Vec<ChainStep>,
    now: OffsetDateTime,
) -> ApiResult<Vec<ChainStep>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CertificationsManage).await?;
    let scope = chain_scope(&mut tx, scope).await?;
    workflow::validate_chain(&mut tx, &steps).await?;
    workflow::save_chain(&mut tx, &scope, &steps, ctx.user_id.0, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "approval_chain.update")
            .detail(serde_json::json!({"scope": scope, "steps": steps})),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(steps)
}

// ---------------------------------------------------------------------------------------------
// Certifications

/// Which certifications to list.
#[derive(Debug, Clone, Default)]
pub struct CertQuery {
    /// Default: everyone's for those who may read compliance, else the caller's.
    pub user_id: Option<Uuid>,
    pub type_id: Option<Uuid>,
    pub status: Option<Status>,
    /// Include replaced cycles.
    pub history: bool,
}

/// Certifications: the caller's own, or (with the compliance permission) anyone's.
pub async fn list_certifications(
    svc: &Renewals,
    ctx: &TenantCtx,
    query: CertQuery,
    page: Option<Page>,
    now: OffsetDateTime,
) -> ApiResult<(Vec<Certification>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let everyone = can(&ctx, Permission::ComplianceRead);
    let user = match query.user_id {
        Some(u) if u != ctx.user_id.0 && !everyone => return Err(ApiError::Forbidden),
        Some(u) => Some(u),
        None if everyone => None,
        None => Some(ctx.user_id.0),
    };
    let today = certs::clock(&mut tx, now).await?.today;
    let rows = certs::list(
        &mut tx,
        today,
        &CertFilter {
            user_id: user,
            type_id: query.type_id,
            status: query.status,
            all_cycles: query.history || query.status == Some(Status::Renewed),
        },
        page,
    )
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Records a certification (a new cycle; the open one of the same type is closed as renewed).
pub async fn record_certification(
    svc: &Renewals,
    ctx: &TenantCtx,
    input: RecordCertification,
    now: OffsetDateTime,
) -> ApiResult<Certification> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CertificationsManage).await?;
    let id = certs::record(&mut tx, &input, "manual", None, now).await?;
    let today = certs::clock(&mut tx, now).await?.today;
    let (cert, _) = certs::get(&mut tx, today, id).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "certification.record")
            .object("certification", id)
            .change(None, serde_json::to_value(&cert).ok()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(cert)
}

/// One certification with every cycle of the same person and type (newest first); 404 unless
/// it is the caller's or they may read compliance.
pub async fn get_certification(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<(Certification, Vec<Certification>)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let today = certs::clock(&mut tx, now).await?.today;
    let (certification, cycles) = certs::get(&mut tx, today, id).await?;
    if certification.user_id != ctx.user_id.0 && !can(&ctx, Permission::ComplianceRead) {
        return Err(ApiError::NotFound);
    }
    tx.commit().await?;
    Ok((certification, cycles))
}

/// The caller's current certifications and their renewal requests.
#[derive(Debug, Clone)]
pub struct MyCertifications {
    pub certifications: Vec<Certification>,
    pub requests: Vec<RenewalRequest>,
}

/// The caller's current certifications and renewal requests.
pub async fn my_certifications(
    svc: &Renewals,
    ctx: &TenantCtx,
    now: OffsetDateTime,
) -> ApiResult<MyCertifications> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let today = certs::clock(&mut tx, now).await?.today;
    let certifications = certs::list(
        &mut tx,
        today,
        &CertFilter {
            user_id: Some(ctx.user_id.0),
            ..CertFilter::default()
        },
        None,
    )
    .await?
    .0;
    // The newest hundred; the API pages through all of them.
    let (requests, _) = workflow::mine(
        &mut tx,
        ctx.user_id.0,
        Page {
            page: 1,
            per_page: 100,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(MyCertifications {
        certifications,
        requests,
    })
}

// ---------------------------------------------------------------------------------------------
// Renewal requests

/// The request, if the caller may see it: the employee, the requester, an approver of one of
/// its steps, the employee's foreman or manager, or anyone with the certifications permission.
/// Everyone else gets 404.
async fn visible(tx: &mut TenantTx, ctx: &TenantCtx, id: Uuid) -> ApiResult<RenewalRequest> {
    let r = workflow::get(tx, id).await?;
    let me = ctx.user_id.0;
    let involved = r.user_id == me
        || r.requested_by == me
        || r.steps
            .iter()
            .any(|s| s.approver_id == Some(me) || s.decided_by == Some(me))
        || can(ctx, Permission::CertificationsManage)
        || workflow::may_request_for(tx, me, false, r.user_id).await?;
    if involved {
        Ok(r)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A visible request that the caller may act on for its employee (403 otherwise).
async fn actionable(tx: &mut TenantTx, ctx: &TenantCtx, id: Uuid) -> ApiResult<RenewalRequest> {
    let r = visible(tx, ctx, id).await?;
    let manage = can(ctx, Permission::CertificationsManage);
    if !workflow::may_request_for(tx, ctx.user_id.0, manage, r.user_id).await? {
        return Err(ApiError::Forbidden);
    }
    Ok(r)
}

/// Asks for a certification's renewal (one's own, on behalf of someone one supervises or
/// manages, or anyone's with the certifications permission) and starts its approval chain.
pub async fn submit_renewal(
    svc: &Renewals,
    ctx: &TenantCtx,
    certification: Uuid,
    comment: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<RenewalRequest> {
    let comment = comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let manage = can(&ctx, Permission::CertificationsManage);
    let id = svc
        .submit(&mut tx, ctx.user_id.0, manage, certification, comment, now)
        .await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "renewal.submit").object("renewal_request", id),
        now,
    )
    .await?;
    let r = workflow::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(r)
}

/// The caller's renewal requests (as employee or requester), newest first.
pub async fn my_renewals(
    svc: &Renewals,
    ctx: &TenantCtx,
    page: Page,
) -> ApiResult<(Vec<RenewalRequest>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let rows = workflow::mine(&mut tx, ctx.user_id.0, page).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Requests waiting for the caller's decision, oldest due first.
pub async fn approvals(
    svc: &Renewals,
    ctx: &TenantCtx,
    page: Page,
) -> ApiResult<(Vec<RenewalRequest>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let rows = workflow::queue(&mut tx, ctx.user_id.0, page).await?;
    tx.commit().await?;
    Ok(rows)
}

/// One request with its steps, history and evidence.
pub async fn get_renewal(svc: &Renewals, ctx: &TenantCtx, id: Uuid) -> ApiResult<RenewalRequest> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let r = visible(&mut tx, &ctx, id).await?;
    tx.commit().await?;
    Ok(r)
}

/// A request and what the caller may do with it now.
#[derive(Debug, Clone)]
pub struct RenewalView {
    pub request: RenewalRequest,
    /// The caller is the approver of the pending step.
    pub my_turn: bool,
    /// The request was returned and the caller may resubmit it.
    pub can_resubmit: bool,
}

/// One request, with whether the caller may decide it or resubmit it.
pub async fn view_renewal(svc: &Renewals, ctx: &TenantCtx, id: Uuid) -> ApiResult<RenewalView> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let request = visible(&mut tx, &ctx, id).await?;
    let me = ctx.user_id.0;
    let my_turn = request.status == "pending"
        && request
            .steps
            .iter()
            .any(|st| st.status == "pending" && st.approver_id == Some(me));
    let can_resubmit = request.status == "returned"
        && workflow::may_request_for(
            &mut tx,
            me,
            can(&ctx, Permission::CertificationsManage),
            request.user_id,
        )
        .await?;
    tx.commit().await?;
    Ok(RenewalView {
        request,
        my_turn,
        can_resubmit,
    })
}

fn guess_type(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Attaches an evidence file (at most [`MAX_EVIDENCE_BYTES`]) to an open request.
pub async fn add_evidence(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    filename: &str,
    file: &mut File,
    now: OffsetDateTime,
) -> ApiResult<RenewalRequest> {
    let name = filename.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains(['/', '\\']) {
        return Err(ApiError::field(
            "filename",
            "must be 1 to 200 characters without slashes",
        ));
    }
    /// The caller may add evidence to the request now.
    async fn open_for_evidence(tx: &mut TenantTx, ctx: &TenantCtx, id: Uuid) -> ApiResult<()> {
        let r = actionable(tx, ctx, id).await?;
        if !matches!(r.status.as_str(), "pending" | "returned") {
            return Err(ApiError::Conflict {
                field: "status".into(),
                message: format!(
                    "evidence can only be added to an open request; this one is {}",
                    r.status
                ),
            });
        }
        Ok(())
    }
    // Who may send the file is settled before a byte of it is read, in a transaction that
    // ends before the client sends it (no lock is held meanwhile).
    let (mut tx, checked) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    open_for_evidence(&mut tx, &checked, id).await?;
    tx.commit().await?;
    let content = file.read(MAX_EVIDENCE_BYTES).await?;
    // The request may have changed during the upload: checked again where the file is written.
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    open_for_evidence(&mut tx, &ctx, id).await?;
    let evidence = workflow::add_evidence(
        &mut tx,
        id,
        name,
        guess_type(name),
        &content,
        ctx.user_id.0,
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "renewal.evidence_added")
            .object("renewal_request", id)
            .detail(serde_json::json!({
                "evidence_id": evidence,
                "filename": name,
                "size_bytes": content.len(),
            })),
        now,
    )
    .await?;
    let r = workflow::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(r)
}

/// The content of an evidence file of a request the caller may see.
pub async fn evidence_file(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    evidence: Uuid,
) -> ApiResult<Vec<u8>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    visible(&mut tx, &ctx, id).await?;
    let content = workflow::evidence_content(&mut tx, id, evidence).await?;
    tx.commit().await?;
    content.ok_or(ApiError::NotFound)
}

/// Approves, rejects or returns the step waiting for the caller.
pub async fn decide(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    decision: Decision,
    comment: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<RenewalRequest> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    visible(&mut tx, &ctx, id).await?;
    let r = svc
        .decide(&mut tx, id, ctx.user_id.0, decision, comment, now)
        .await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "renewal.decide")
            .object("renewal_request", id)
            .detail(serde_json::json!({ "decision": decision })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

/// Sends a returned request back to the approver who returned it.
pub async fn resubmit(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    comment: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<RenewalRequest> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    actionable(&mut tx, &ctx, id).await?;
    let r = svc
        .resubmit(&mut tx, id, ctx.user_id.0, comment, now)
        .await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "renewal.resubmit").object("renewal_request", id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

/// Withdraws an open request.
pub async fn cancel(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<RenewalRequest> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    actionable(&mut tx, &ctx, id).await?;
    let r = svc.cancel(&mut tx, id, ctx.user_id.0, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "renewal.cancel").object("renewal_request", id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Delegations and reporting lines

/// The caller's delegations, current and future.
pub async fn delegations(
    svc: &Renewals,
    ctx: &TenantCtx,
    page: Page,
    now: OffsetDateTime,
) -> ApiResult<(Vec<Delegation>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let rows = workflow::delegations(&mut tx, ctx.user_id.0, page, now).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Hands the caller's approvals to a delegate for a period (out of office).
pub async fn delegate(
    svc: &Renewals,
    ctx: &TenantCtx,
    input: CreateDelegation,
    now: OffsetDateTime,
) -> ApiResult<Delegation> {
    let mut e = FieldErrors::new();
    let (starts_at, ends_at) = (input.starts_at.0, input.ends_at.0);
    for (field, at) in [("starts_at", starts_at), ("ends_at", ends_at)] {
        // Checked in the time's own offset, before anything converts it (to UTC for storage).
        if dates::in_range(at.date()).is_err() {
            e.add(field, "must be between 1900-01-01 and 2999-12-31");
        }
    }
    e.into_result()?;
    if ends_at <= starts_at {
        return Err(ApiError::field("ends_at", "must be after starts_at"));
    }
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    if input.delegate_id == ctx.user_id.0 {
        return Err(ApiError::field("delegate_id", "must be someone else"));
    }
    if !workflow::is_active_person(&mut tx, input.delegate_id).await? {
        return Err(ApiError::field("delegate_id", "no such active person"));
    }
    let d = Delegation {
        id: Uuid::now_v7(),
        delegate_id: input.delegate_id,
        starts_at,
        ends_at,
    };
    workflow::insert_delegation(&mut tx, ctx.user_id.0, &d, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "approval.delegate").object("delegation", d.id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(d)
}

/// Ends one of the caller's delegations (404 when it is not theirs or already over).
pub async fn end_delegation(
    svc: &Renewals,
    ctx: &TenantCtx,
    id: Uuid,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    if !workflow::end_delegation(&mut tx, ctx.user_id.0, id, now).await? {
        return Err(ApiError::NotFound);
    }
    tx.commit().await
}

// ---------------------------------------------------------------------------------------------
// Compliance and the dashboard

/// Who is compliant, expiring or expired: `group_by` `department` (the default), `role` or
/// `all`, optionally for one type.
pub async fn compliance(
    svc: &Renewals,
    ctx: &TenantCtx,
    group_by: Option<String>,
    type_id: Option<Uuid>,
    now: OffsetDateTime,
) -> ApiResult<Vec<ComplianceGroup>> {
    let group = group_by.unwrap_or_else(|| "department".into());
    if !["department", "role", "all"].contains(&group.as_str()) {
        return Err(ApiError::field(
            "group_by",
            "must be one of: department, role, all",
        ));
    }
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::ComplianceRead).await?;
    let today = certs::clock(&mut tx, now).await?.today;
    let rows = certs::compliance(&mut tx, today, &group, type_id).await?;
    tx.commit().await?;
    Ok(rows)
}

/// What the dashboard shows of renewals for the caller.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The caller's current certifications.
    pub certifications: usize,
    /// Of those, the ones expiring or expired.
    pub needing_renewal: usize,
    /// Requests waiting for the caller's decision.
    pub awaiting_decision: i64,
    /// The tenant's compliance, for those who may read it.
    pub compliance: Option<ComplianceGroup>,
}

/// The dashboard's renewal figures for the caller.
pub async fn summary(svc: &Renewals, ctx: &TenantCtx, now: OffsetDateTime) -> ApiResult<Summary> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let today = certs::clock(&mut tx, now).await?.today;
    let mine = certs::list(
        &mut tx,
        today,
        &CertFilter {
            user_id: Some(ctx.user_id.0),
            ..CertFilter::default()
        },
        None,
    )
    .await?
    .0;
    let awaiting_decision = workflow::queue_count(&mut tx, ctx.user_id.0).await?;
    let compliance = if can(&ctx, Permission::ComplianceRead) {
        let all = certs::compliance(&mut tx, today, "all", None).await?;
        Some(all.into_iter().next().unwrap_or_else(|| ComplianceGroup {
            group: "All".into(),
            ..ComplianceGroup::default()
        }))
    } else {
        None
    };
    tx.commit().await?;
    Ok(Summary {
        certifications: mine.len(),
        needing_renewal: mine
            .iter()
            .filter(|c| matches!(c.status, Status::Expiring | Status::Expired))
            .count(),
        awaiting_decision,
        compliance,
    })
}

// ---------------------------------------------------------------------------------------------
// Approval links and SMS replies: no session, the link or the code is the credential

/// The request behind an approval link, if the link is usable at `now` (changes nothing).
pub async fn link_request(
    svc: &Renewals,
    tenant: TenantId,
    digest: &str,
    now: OffsetDateTime,
) -> ApiResult<Result<RenewalRequest, LinkProblem>> {
    let mut tx = TenantTx::begin_system(&svc.db, tenant).await?;
    let found = match workflow::peek_link(&mut tx, digest, now).await? {
        Ok((request, _, _)) => Ok(workflow::get(&mut tx, request).await?),
        Err(p) => Err(p),
    };
    tx.commit().await?;
    Ok(found)
}

/// What became of an answer given through a link.
#[derive(Debug, Clone)]
pub enum LinkAnswer {
    /// Recorded; the link is spent.
    Done(RenewalRequest),
    /// A rejection or return without a comment: nothing recorded, the link still works (the
    /// request, to show the form again, or why the link is unusable anyway).
    NeedsComment(Result<RenewalRequest, LinkProblem>),
    /// The link cannot be used.
    Refused(LinkProblem),
}

/// Redeems an approval link (once, atomically) and records the approver's decision in the same
/// transaction; a decision that fails leaves the link unused.
pub async fn decide_by_link(
    svc: &Renewals,
    tenant: TenantId,
    digest: &str,
    decision: Decision,
    comment: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<LinkAnswer> {
    let mut tx = TenantTx::begin_system(&svc.db, tenant).await?;
    // Validation that would fail the decision runs first, so a refused answer does not use the
    // link up.
    if decision != Decision::Approve && comment.is_none() {
        let shown = match workflow::peek_link(&mut tx, digest, now).await? {
            Ok((request, _, _)) => Ok(workflow::get(&mut tx, request).await?),
            Err(p) => Err(p),
        };
        return Ok(LinkAnswer::NeedsComment(shown));
    }
    let (request, approver) = match workflow::redeem_link(&mut tx, digest, decision, now).await? {
        Ok(won) => won,
        Err(p) => return Ok(LinkAnswer::Refused(p)),
    };
    let r = svc
        .decide(&mut tx, request, approver, decision, comment, now)
        .await?;
    audit::record(
        &mut tx,
        Entry::as_actor("user", Some(approver), "renewal.decide_by_link", None)
            .object("renewal_request", request)
            .detail(serde_json::json!({ "decision": decision })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(LinkAnswer::Done(r))
}

/// What became of an SMS reply.
#[derive(Debug, Clone)]
pub enum SmsAnswer {
    /// Recorded: the certification and the employee it was for.
    Done {
        certification: String,
        user_name: String,
    },
    /// No open link has this code for this number.
    UnknownCode,
    /// The code was already answered.
    AlreadyUsed,
    /// The link behind the code no longer works (expired, replaced, the request moved on).
    NoLongerValid,
    /// The decision was refused (the link stays usable): why.
    NotRecorded(String),
    /// The number has this code open in more than one organisation: nothing was done.
    Ambiguous,
}

/// Answers the approval behind `code`, sent from the approver's number `from`, as a tap on its
/// link would.
pub async fn decide_by_sms(
    svc: &Renewals,
    from: &str,
    code: &str,
    decision: Decision,
    reason: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<SmsAnswer> {
    let found: Vec<(Uuid, Uuid)> = {
        let mut tx = svc.db.platform_tx().await?;
        let rows = sql!(tx.conn() => |c| sqlx::query_as(
            "select tenant_id, link_id from approval_sms_codes where phone = $1 and code = $2 and expires_at > $3
              order by tenant_id")
            .bind(from).bind(code).bind(now).fetch_all(&mut *c).await)?;
        tx.commit().await?;
        rows
    };
    // Codes are unique among a number's open links within a tenant; a number approving in
    // several tenants may hold the same code in more than one. Only a link still open counts
    // then, and when several are, the reply acts on none of them.
    let (tenant, link) = match found.as_slice() {
        [] => return Ok(SmsAnswer::UnknownCode),
        [only] => *only,
        several => {
            let mut open = Vec::new();
            for &(tenant, link) in several {
                let mut tx = TenantTx::begin_system(&svc.db, TenantId(tenant)).await?;
                if workflow::link_is_open(&mut tx, link, now).await? {
                    open.push((tenant, link));
                }
                tx.commit().await?;
            }
            match open.as_slice() {
                [one] => *one,
                [] => several[0],
                _ => {
                    tracing::warn!(
                        tenants = open.len(),
                        "an SMS reply's code is open in several tenants; nothing was done"
                    );
                    return Ok(SmsAnswer::Ambiguous);
                }
            }
        }
    };
    let mut tx = TenantTx::begin_system(&svc.db, TenantId(tenant)).await?;
    let (request, approver) =
        match workflow::redeem_link_by_id(&mut tx, link, decision, now).await? {
            Ok(won) => won,
            Err(LinkProblem::Used) => return Ok(SmsAnswer::AlreadyUsed),
            Err(_) => return Ok(SmsAnswer::NoLongerValid),
        };
    let comment = match decision {
        Decision::Approve => reason,
        _ => Some(reason.unwrap_or_else(|| "Rejected by SMS reply".into())),
    };
    let r = match svc
        .decide(&mut tx, request, approver, decision, comment, now)
        .await
    {
        Ok(r) => r,
        // The transaction is dropped: the link stays usable.
        Err(ApiError::Conflict { message, .. }) => return Ok(SmsAnswer::NotRecorded(message)),
        Err(e) => return Err(e),
    };
    audit::record(
        &mut tx,
        Entry::as_actor("user", Some(approver), "renewal.decide_by_sms", None)
            .object("renewal_request", request)
            .detail(serde_json::json!({ "decision": decision })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(SmsAnswer::Done {
        certification: r.certification,
        user_name: r.user_name,
    })
}
