//! HTTP API of certifications and renewals.

use poem_openapi::{
    param::{Path, Query},
    payload::Binary,
    Object, OpenApi, Tags,
};
use serde::Deserialize;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantAuth, TenantCtx},
    body::Body,
    db::TenantTx,
    envelope::{created, ok, Created, NoContent, Ok200},
    now,
    secret::sha256_hex,
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

use crate::{
    certs::{
        self, CertFilter, Certification, CertificationType, ComplianceGroup, RecordCertification,
        TypeInput,
    },
    dates::{self, Cycle, Status},
    workflow::{self, ChainStep, Decision, RenewalRequest},
    Renewals,
};

#[derive(Tags)]
enum Tag {
    /// Certification types, approval chains and the renewal timeline preview.
    CertificationTypes,
    /// People's certifications and their cycles.
    Certifications,
    /// Renewal requests, decisions and the approvals queue.
    Renewals,
    /// Who is compliant, expiring or expired.
    Compliance,
}

/// The renewals API.
pub struct RenewalsApi {
    pub svc: Renewals,
}

/// Largest evidence file.
pub const MAX_EVIDENCE_BYTES: usize = 10 * 1024 * 1024;

/// Body of `POST /certification-types/preview`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
pub struct PreviewRequest {
    pub validity_months: i32,
    pub renewal_window_days: i32,
    /// The first cycle's issue date.
    pub start_date: Date,
    /// Default: the tenant's offsets.
    pub reminder_offsets_days: Option<Vec<i32>>,
    /// Cycles to show (1–10, default 3).
    pub cycles: Option<u32>,
}

/// A certification with every cycle of the same person and type.
#[derive(Debug, Object)]
pub struct CertificationDetail {
    pub certification: Certification,
    /// Newest first, including this one.
    pub cycles: Vec<Certification>,
}

/// An approval chain.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
pub struct Chain {
    pub steps: Vec<ChainStep>,
    /// False while the built-in (or, for a type, the default) chain applies.
    #[oai(read_only)]
    #[serde(default)]
    pub configured: bool,
}

/// Body of `POST /renewals`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
pub struct CreateRenewal {
    pub certification_id: Uuid,
    #[oai(validator(max_length = 2000))]
    pub comment: Option<String>,
}

/// Body of `POST /renewals/{id}/decision`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: Decision,
    /// Required to reject or return.
    #[oai(validator(max_length = 2000))]
    pub comment: Option<String>,
}

/// Body of `POST /renewals/{id}/resubmit`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
pub struct CommentBody {
    #[oai(validator(max_length = 2000))]
    pub comment: Option<String>,
}

/// An out-of-office delegation.
#[derive(Debug, Object, serde::Serialize, sqlx::FromRow)]
pub struct Delegation {
    pub id: Uuid,
    pub delegate_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
}

/// Body of `POST /delegations`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
pub struct CreateDelegation {
    pub delegate_id: Uuid,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// RFC 3339; after `starts_at`.
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
}

/// Body of `PUT /users/{id}/reporting-lines`.
#[derive(Debug, Object, Deserialize, serde::Serialize)]
#[oai(deny_unknown_fields)]
pub struct ReportingLines {
    /// The person's foreman (direct supervisor).
    pub supervisor_id: Option<Uuid>,
    /// The person's line manager.
    pub manager_id: Option<Uuid>,
}

fn can(ctx: &TenantCtx, p: Permission) -> bool {
    ctx.role.grants(p)
}

#[OpenApi(prefix_path = "/api/v1")]
impl RenewalsApi {
    /// The tenant's certification types.
    #[oai(
        path = "/certification-types",
        method = "get",
        tag = "Tag::CertificationTypes"
    )]
    async fn list_types(&self, auth: TenantAuth) -> ApiResult<Ok200<Vec<CertificationType>>> {
        let (mut tx, _) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let rows = certs::types(&mut tx).await?;
        tx.commit().await?;
        Ok(ok(rows))
    }

    /// Define a certification type.
    #[oai(
        path = "/certification-types",
        method = "post",
        tag = "Tag::CertificationTypes"
    )]
    async fn create_type(
        &self,
        auth: TenantAuth,
        body: Body<TypeInput>,
    ) -> ApiResult<Created<CertificationType>> {
        let t = certs::validate_type(None, body.0)?;
        let (mut tx, ctx) =
            TenantTx::begin(&self.svc.db, &auth.0, Permission::CertificationsManage).await?;
        certs::save_type(&mut tx, &t, true, now()).await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "certification_type.create")
                .object("certification_type", t.id)
                .change(None, serde_json::to_value(&t).ok()),
        )
        .await?;
        tx.commit().await?;
        Ok(created(t))
    }

    /// One certification type.
    #[oai(
        path = "/certification-types/:id",
        method = "get",
        tag = "Tag::CertificationTypes"
    )]
    async fn get_type(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<CertificationType>> {
        let (mut tx, _) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let t = certs::get_type(&mut tx, id.0).await?;
        tx.commit().await?;
        Ok(ok(t))
    }

    /// Change a certification type (only the fields given). Existing cycles keep their dates.
    #[oai(
        path = "/certification-types/:id",
        method = "patch",
        tag = "Tag::CertificationTypes"
    )]
    async fn patch_type(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<TypeInput>,
    ) -> ApiResult<Ok200<CertificationType>> {
        let (mut tx, ctx) =
            TenantTx::begin(&self.svc.db, &auth.0, Permission::CertificationsManage).await?;
        let before = certs::get_type(&mut tx, id.0).await?;
        let after = certs::validate_type(Some(&before), body.0)?;
        certs::save_type(&mut tx, &after, false, now()).await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "certification_type.update")
                .object("certification_type", after.id)
                .change(
                    serde_json::to_value(&before).ok(),
                    serde_json::to_value(&after).ok(),
                ),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(after))
    }

    /// The next cycles of a certification type before it is saved: issue, renewal window,
    /// reminders and expiry.
    #[oai(
        path = "/certification-types/preview",
        method = "post",
        tag = "Tag::CertificationTypes"
    )]
    async fn preview(
        &self,
        auth: TenantAuth,
        body: Body<PreviewRequest>,
    ) -> ApiResult<Ok200<Vec<Cycle>>> {
        let b = body.0;
        let mut e = trainflow_kernel::FieldErrors::new();
        if !(1..=240).contains(&b.validity_months) {
            e.add("validity_months", "must be between 1 and 240");
        }
        if !(0..=3650).contains(&b.renewal_window_days) {
            e.add("renewal_window_days", "must be between 0 and 3650");
        }
        let cycles = b.cycles.unwrap_or(3);
        if !(1..=10).contains(&cycles) {
            e.add("cycles", "must be between 1 and 10");
        }
        if let Some(o) = &b.reminder_offsets_days {
            if o.len() > 10 || o.iter().any(|d| !(0..=3650).contains(d)) {
                e.add(
                    "reminder_offsets_days",
                    "at most 10 offsets, each 0 to 3650 days",
                );
            }
        }
        e.into_result()?;
        let (mut tx, _) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let clock = certs::clock(&mut tx, now()).await?;
        tx.commit().await?;
        let offsets = b.reminder_offsets_days.unwrap_or(clock.offsets);
        Ok(ok(dates::timeline(
            b.start_date,
            b.validity_months,
            b.renewal_window_days,
            &offsets,
            cycles,
        )))
    }

    /// The approval chain of `scope`: `default`, or a certification type id.
    #[oai(
        path = "/approval-chains/:scope",
        method = "get",
        tag = "Tag::CertificationTypes"
    )]
    async fn get_chain(&self, auth: TenantAuth, scope: Path<String>) -> ApiResult<Ok200<Chain>> {
        let (mut tx, _) =
            TenantTx::begin(&self.svc.db, &auth.0, Permission::CertificationsManage).await?;
        let scope = self.scope(&mut tx, &scope.0).await?;
        let (steps, configured) = workflow::chain(&mut tx, &scope).await?;
        tx.commit().await?;
        Ok(ok(Chain { steps, configured }))
    }

    /// Replace the approval chain of `scope` (requests already open keep theirs).
    #[oai(
        path = "/approval-chains/:scope",
        method = "put",
        tag = "Tag::CertificationTypes"
    )]
    async fn put_chain(
        &self,
        auth: TenantAuth,
        scope: Path<String>,
        body: Body<Chain>,
    ) -> ApiResult<Ok200<Chain>> {
        let (mut tx, ctx) =
            TenantTx::begin(&self.svc.db, &auth.0, Permission::CertificationsManage).await?;
        let scope = self.scope(&mut tx, &scope.0).await?;
        workflow::validate_chain(&mut tx, &body.0.steps).await?;
        workflow::save_chain(&mut tx, &scope, &body.0.steps, ctx.user_id.0, now()).await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "approval_chain.update")
                .detail(serde_json::json!({"scope": scope, "steps": body.0.steps})),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(Chain {
            steps: body.0.steps,
            configured: true,
        }))
    }

    /// Certifications: the caller's own, or (with the compliance permission) anyone's. Current
    /// cycles only unless `history=true`.
    #[oai(path = "/certifications", method = "get", tag = "Tag::Certifications")]
    async fn list_certifications(
        &self,
        auth: TenantAuth,
        user_id: Query<Option<Uuid>>,
        type_id: Query<Option<Uuid>>,
        /// `valid`, `expiring`, `expired` or `renewed`.
        status: Query<Option<Status>>,
        history: Query<Option<bool>>,
    ) -> ApiResult<Ok200<Vec<Certification>>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let everyone = can(&ctx, Permission::ComplianceRead);
        let user = match user_id.0 {
            Some(u) if u != ctx.user_id.0 && !everyone => return Err(ApiError::Forbidden),
            Some(u) => Some(u),
            None if everyone => None,
            None => Some(ctx.user_id.0),
        };
        let today = certs::clock(&mut tx, now()).await?.today;
        let rows = certs::list(
            &mut tx,
            today,
            &CertFilter {
                user_id: user,
                type_id: type_id.0,
                status: status.0,
                all_cycles: history.0.unwrap_or(false) || status.0 == Some(Status::Renewed),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ok(rows))
    }

    /// Record a certification (a new cycle; the open one of the same type is closed as renewed).
    #[oai(path = "/certifications", method = "post", tag = "Tag::Certifications")]
    async fn record_certification(
        &self,
        auth: TenantAuth,
        body: Body<RecordCertification>,
    ) -> ApiResult<Created<Certification>> {
        let (mut tx, ctx) =
            TenantTx::begin(&self.svc.db, &auth.0, Permission::CertificationsManage).await?;
        let at = now();
        let id = certs::record(&mut tx, &body.0, "manual", None, at).await?;
        let today = certs::clock(&mut tx, at).await?.today;
        let (cert, _) = certs::get(&mut tx, today, id).await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "certification.record")
                .object("certification", id)
                .change(None, serde_json::to_value(&cert).ok()),
        )
        .await?;
        tx.commit().await?;
        Ok(created(cert))
    }

    /// One certification with its cycle history.
    #[oai(
        path = "/certifications/:id",
        method = "get",
        tag = "Tag::Certifications"
    )]
    async fn get_certification(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<CertificationDetail>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let today = certs::clock(&mut tx, now()).await?.today;
        let (certification, cycles) = certs::get(&mut tx, today, id.0).await?;
        if certification.user_id != ctx.user_id.0 && !can(&ctx, Permission::ComplianceRead) {
            return Err(ApiError::NotFound);
        }
        tx.commit().await?;
        Ok(ok(CertificationDetail {
            certification,
            cycles,
        }))
    }

    /// Ask for a certification's renewal (one's own, or on behalf of someone one supervises or
    /// manages, or anyone's with the certifications permission). Starts the approval chain.
    #[oai(path = "/renewals", method = "post", tag = "Tag::Renewals")]
    async fn create_renewal(
        &self,
        auth: TenantAuth,
        body: Body<CreateRenewal>,
    ) -> ApiResult<Created<RenewalRequest>> {
        let comment = body
            .0
            .comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let manage = can(&ctx, Permission::CertificationsManage);
        let id = self
            .svc
            .submit(
                &mut tx,
                ctx.user_id.0,
                manage,
                body.0.certification_id,
                comment,
                now(),
            )
            .await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "renewal.submit").object("renewal_request", id),
        )
        .await?;
        let r = workflow::get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(created(r))
    }

    /// The caller's renewal requests (as employee or requester), newest first.
    #[oai(path = "/renewals", method = "get", tag = "Tag::Renewals")]
    async fn my_renewals(&self, auth: TenantAuth) -> ApiResult<Ok200<Vec<RenewalRequest>>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let rows = workflow::mine(&mut tx, ctx.user_id.0).await?;
        tx.commit().await?;
        Ok(ok(rows))
    }

    /// Requests waiting for the caller's decision, oldest due first.
    #[oai(path = "/approvals", method = "get", tag = "Tag::Renewals")]
    async fn approvals(&self, auth: TenantAuth) -> ApiResult<Ok200<Vec<RenewalRequest>>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let rows = workflow::queue(&mut tx, ctx.user_id.0).await?;
        tx.commit().await?;
        Ok(ok(rows))
    }

    /// One request with its steps, history and evidence.
    #[oai(path = "/renewals/:id", method = "get", tag = "Tag::Renewals")]
    async fn get_renewal(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<RenewalRequest>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let r = visible(&mut tx, &ctx, id.0).await?;
        tx.commit().await?;
        Ok(ok(r))
    }

    /// Attach an evidence file (the request body; at most 10 MiB) to an open request.
    #[oai(
        path = "/renewals/:id/evidence",
        method = "post",
        tag = "Tag::Renewals"
    )]
    async fn add_evidence(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// The file's name.
        filename: Query<String>,
        body: Binary<Vec<u8>>,
    ) -> ApiResult<Created<RenewalRequest>> {
        let name = filename.0.trim().to_string();
        if name.is_empty() || name.len() > 200 || name.contains(['/', '\\']) {
            return Err(ApiError::field(
                "filename",
                "must be 1 to 200 characters without slashes",
            ));
        }
        if body.0.is_empty() {
            return Err(ApiError::field("body", "the file is empty"));
        }
        if body.0.len() > MAX_EVIDENCE_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let r = visible(&mut tx, &ctx, id.0).await?;
        let manage = can(&ctx, Permission::CertificationsManage);
        if !workflow::may_request_for(&mut tx, ctx.user_id.0, manage, r.user_id).await? {
            return Err(ApiError::Forbidden);
        }
        if !matches!(r.status.as_str(), "pending" | "returned") {
            return Err(ApiError::Conflict {
                field: "status".into(),
                message: format!(
                    "evidence can only be added to an open request; this one is {}",
                    r.status
                ),
            });
        }
        let tenant = tx.tenant();
        let at = now();
        let evidence = Uuid::now_v7();
        let content_type = guess_type(&name);
        sql!(tx.conn() => |c| sqlx::query(
            "insert into renewal_evidence (tenant_id, id, request_id, filename, content_type, size_bytes, sha256,
                    content, uploaded_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(tenant).bind(evidence).bind(id.0).bind(&name).bind(content_type).bind(body.0.len() as i64)
            .bind(sha256_hex(&body.0)).bind(&body.0).bind(ctx.user_id.0).bind(at)
            .execute(&mut *c).await.map(drop))?;
        sql!(tx.conn() => |c| sqlx::query(
            "insert into renewal_events (tenant_id, id, request_id, at, actor_id, action, comment)
             values ($1, $2, $3, $4, $5, 'evidence_added', $6)")
            .bind(tenant).bind(Uuid::now_v7()).bind(id.0).bind(at).bind(ctx.user_id.0).bind(&name)
            .execute(&mut *c).await.map(drop))?;
        let r = workflow::get(&mut tx, id.0).await?;
        tx.commit().await?;
        Ok(created(r))
    }

    /// Download an evidence file.
    #[oai(
        path = "/renewals/:id/evidence/:evidence_id",
        method = "get",
        tag = "Tag::Renewals"
    )]
    async fn get_evidence(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        evidence_id: Path<Uuid>,
    ) -> ApiResult<Binary<Vec<u8>>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        visible(&mut tx, &ctx, id.0).await?;
        let tenant = tx.tenant();
        let content: Option<Vec<u8>> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select content from renewal_evidence where tenant_id = $1 and request_id = $2 and id = $3")
            .bind(tenant).bind(id.0).bind(evidence_id.0).fetch_optional(&mut *c).await)?;
        tx.commit().await?;
        content.map(Binary).ok_or(ApiError::NotFound)
    }

    /// Approve, reject or return the step waiting for the caller.
    #[oai(
        path = "/renewals/:id/decision",
        method = "post",
        tag = "Tag::Renewals"
    )]
    async fn decide(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<DecisionBody>,
    ) -> ApiResult<Ok200<RenewalRequest>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        visible(&mut tx, &ctx, id.0).await?;
        let r = self
            .svc
            .decide(
                &mut tx,
                id.0,
                ctx.user_id.0,
                body.0.decision,
                body.0.comment,
                now(),
            )
            .await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "renewal.decide")
                .object("renewal_request", id.0)
                .detail(serde_json::json!({"decision": body.0.decision})),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(r))
    }

    /// Send a returned request back to its approver.
    #[oai(
        path = "/renewals/:id/resubmit",
        method = "post",
        tag = "Tag::Renewals"
    )]
    async fn resubmit(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<CommentBody>,
    ) -> ApiResult<Ok200<RenewalRequest>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let r = visible(&mut tx, &ctx, id.0).await?;
        let manage = can(&ctx, Permission::CertificationsManage);
        if !workflow::may_request_for(&mut tx, ctx.user_id.0, manage, r.user_id).await? {
            return Err(ApiError::Forbidden);
        }
        let r = self
            .svc
            .resubmit(&mut tx, id.0, ctx.user_id.0, body.0.comment, now())
            .await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "renewal.resubmit").object("renewal_request", id.0),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(r))
    }

    /// Withdraw an open request.
    #[oai(path = "/renewals/:id/cancel", method = "post", tag = "Tag::Renewals")]
    async fn cancel(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<RenewalRequest>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let r = visible(&mut tx, &ctx, id.0).await?;
        let manage = can(&ctx, Permission::CertificationsManage);
        if !workflow::may_request_for(&mut tx, ctx.user_id.0, manage, r.user_id).await? {
            return Err(ApiError::Forbidden);
        }
        let r = self.svc.cancel(&mut tx, id.0, ctx.user_id.0, now()).await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "renewal.cancel").object("renewal_request", id.0),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(r))
    }

    /// The caller's out-of-office delegations (current and future).
    #[oai(path = "/delegations", method = "get", tag = "Tag::Renewals")]
    async fn delegations(&self, auth: TenantAuth) -> ApiResult<Ok200<Vec<Delegation>>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let tenant = tx.tenant();
        let rows: Vec<Delegation> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id, delegate_id, starts_at, ends_at from approval_delegations
              where tenant_id = $1 and user_id = $2 and ends_at > $3 order by starts_at, id")
            .bind(tenant).bind(ctx.user_id.0).bind(now()).fetch_all(&mut *c).await)?;
        tx.commit().await?;
        Ok(ok(rows))
    }

    /// Hand the caller's approvals to a delegate for a period (out of office). Steps already
    /// pending move to the delegate when the escalation job next runs.
    #[oai(path = "/delegations", method = "post", tag = "Tag::Renewals")]
    async fn delegate(
        &self,
        auth: TenantAuth,
        body: Body<CreateDelegation>,
    ) -> ApiResult<Created<Delegation>> {
        let b = body.0;
        if b.ends_at <= b.starts_at {
            return Err(ApiError::field("ends_at", "must be after starts_at"));
        }
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        if b.delegate_id == ctx.user_id.0 {
            return Err(ApiError::field("delegate_id", "must be someone else"));
        }
        let tenant = tx.tenant();
        let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from users where tenant_id = $1 and id = $2 and is_active = true and deleted_at is null")
            .bind(tenant).bind(b.delegate_id).fetch_optional(&mut *c).await)?;
        if found.is_none() {
            return Err(ApiError::field("delegate_id", "no such active person"));
        }
        let d = Delegation {
            id: Uuid::now_v7(),
            delegate_id: b.delegate_id,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
        };
        sql!(tx.conn() => |c| sqlx::query(
            "insert into approval_delegations (tenant_id, id, user_id, delegate_id, starts_at, ends_at, created_at)
             values ($1, $2, $3, $4, $5, $6, $7)")
            .bind(tenant).bind(d.id).bind(ctx.user_id.0).bind(d.delegate_id).bind(d.starts_at).bind(d.ends_at).bind(now())
            .execute(&mut *c).await.map(drop))?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "approval.delegate").object("delegation", d.id),
        )
        .await?;
        tx.commit().await?;
        Ok(created(d))
    }

    /// End a delegation.
    #[oai(path = "/delegations/:id", method = "delete", tag = "Tag::Renewals")]
    async fn end_delegation(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<NoContent> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::SelfService).await?;
        let tenant = tx.tenant();
        let n = sql!(tx.conn() => |c| sqlx::query(
            "update approval_delegations set ends_at = $4 where tenant_id = $1 and user_id = $2 and id = $3 and ends_at > $4")
            .bind(tenant).bind(ctx.user_id.0).bind(id.0).bind(now()).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        if n == 0 {
            return Err(ApiError::NotFound);
        }
        tx.commit().await?;
        Ok(NoContent::NoContent)
    }

    /// Set a person's foreman and line manager (who approval steps by relation resolve to).
    /// Their pending approval steps follow at the next escalation run.
    #[oai(
        path = "/users/:id/reporting-lines",
        method = "put",
        tag = "Tag::Renewals"
    )]
    async fn reporting_lines(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<ReportingLines>,
    ) -> ApiResult<Ok200<ReportingLines>> {
        let (mut tx, ctx) = TenantTx::begin(&self.svc.db, &auth.0, Permission::UsersWrite).await?;
        let tenant = tx.tenant();
        let exists: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from users where tenant_id = $1 and id = $2 and deleted_at is null")
            .bind(tenant).bind(id.0).fetch_optional(&mut *c).await)?;
        if exists.is_none() {
            return Err(ApiError::NotFound);
        }
        for (field, value) in [
            ("supervisor_id", body.0.supervisor_id),
            ("manager_id", body.0.manager_id),
        ] {
            let Some(v) = value else { continue };
            if v == id.0 {
                return Err(ApiError::field(
                    field,
                    "a person cannot report to themselves",
                ));
            }
            let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select id from users where tenant_id = $1 and id = $2 and deleted_at is null")
                .bind(tenant).bind(v).fetch_optional(&mut *c).await)?;
            if found.is_none() {
                return Err(ApiError::field(field, "no such person"));
            }
        }
        sql!(tx.conn() => |c| sqlx::query(
            "update users set supervisor_id = $3, manager_id = $4, updated_at = $5 where tenant_id = $1 and id = $2")
            .bind(tenant).bind(id.0).bind(body.0.supervisor_id).bind(body.0.manager_id).bind(now())
            .execute(&mut *c).await.map(drop))?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "user.reporting_lines")
                .object("user", id.0)
                .detail(serde_json::to_value(&body.0).unwrap_or_default()),
        )
        .await?;
        tx.commit().await?;
        Ok(ok(body.0))
    }

    /// Who is compliant, expiring or expired: `group_by` `department`, `role` or `all`.
    #[oai(path = "/compliance", method = "get", tag = "Tag::Compliance")]
    async fn compliance(
        &self,
        auth: TenantAuth,
        group_by: Query<Option<String>>,
        type_id: Query<Option<Uuid>>,
    ) -> ApiResult<Ok200<Vec<ComplianceGroup>>> {
        let group = group_by.0.unwrap_or_else(|| "department".into());
        if !["department", "role", "all"].contains(&group.as_str()) {
            return Err(ApiError::field(
                "group_by",
                "must be one of: department, role, all",
            ));
        }
        let (mut tx, _) =
            TenantTx::begin(&self.svc.db, &auth.0, Permission::ComplianceRead).await?;
        let today = certs::clock(&mut tx, now()).await?.today;
        let rows = certs::compliance(&mut tx, today, &group, type_id.0).await?;
        tx.commit().await?;
        Ok(ok(rows))
    }
}

impl RenewalsApi {
    /// `default`, or the id of one of the tenant's types (404 otherwise).
    async fn scope(&self, tx: &mut TenantTx, raw: &str) -> ApiResult<String> {
        if raw == "default" {
            return Ok(raw.into());
        }
        let id: Uuid = raw.parse().map_err(|_| ApiError::NotFound)?;
        certs::get_type(tx, id).await?;
        Ok(id.to_string())
    }
}

/// The request, if the caller may see it: the employee, the requester, an approver of one of
/// its steps, the employee's foreman or manager, or anyone with the certifications permission.
/// Everyone else gets 404.
pub async fn visible(tx: &mut TenantTx, ctx: &TenantCtx, id: Uuid) -> ApiResult<RenewalRequest> {
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
