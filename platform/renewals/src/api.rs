//! HTTP API of certifications and renewals.

use poem_openapi::{
    param::{Path, Query},
    payload::{Binary, Json},
    Enum, Object, OpenApi, Tags,
};
use serde::Deserialize;
use trainflow_kernel::{
    auth::TenantAuth,
    body::{Body, File},
    domain::{ApiDate, ApiDateTime},
    envelope::{created, ok, Created, List, NoContent, Ok200, Page},
    now, ApiResult,
};
use uuid::Uuid;

pub use crate::workflow::Delegation;
use crate::{
    certs::{Certification, CertificationType, ComplianceGroup, RecordCertification, TypeInput},
    dates::{Cycle, Status},
    service::{self, CertQuery},
    workflow::{ChainStep, Decision, RenewalRequest},
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
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PreviewRequest {
    /// 1–240.
    #[oai(validator(minimum(value = "1"), maximum(value = "240")))]
    pub validity_months: i32,
    /// 0–3650.
    #[oai(validator(minimum(value = "0"), maximum(value = "3650")))]
    pub renewal_window_days: i32,
    /// The first cycle's issue date, between 1900-01-01 and 2999-12-31; every cycle shown must
    /// also end by 2999-12-31 (`start_date` plus `cycles` × `validity_months`).
    pub start_date: ApiDate,
    /// Default: the tenant's offsets. At most 10, each 0–3650 days.
    #[oai(
        nullable,
        validator(max_items = 10, minimum(value = "0"), maximum(value = "3650"))
    )]
    pub reminder_offsets_days: Option<Vec<i32>>,
    /// Cycles to show (1–10, default 3).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "10")))]
    pub cycles: Option<u32>,
}

/// Body of `POST /certification-types`: `code` and `name` are required; the other fields may
/// be left out or `null` (the same: their defaults).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateType {
    /// Unique in the tenant.
    #[oai(validator(
        max_length = 50,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub code: String,
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
    #[oai(nullable, validator(max_length = 2000))]
    pub description: Option<String>,
    /// 1–240; none: the certification does not expire.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "240")))]
    pub validity_months: Option<i32>,
    /// 0–3650 (default 90).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "3650")))]
    pub renewal_window_days: Option<i32>,
    /// Default false.
    #[oai(nullable)]
    pub evidence_required: Option<bool>,
    /// At most 50.
    #[oai(nullable, validator(max_items = 50))]
    pub required_courses: Option<Vec<Uuid>>,
}

impl From<CreateType> for TypeInput {
    fn from(t: CreateType) -> Self {
        TypeInput {
            code: Some(t.code),
            name: Some(t.name),
            description: t.description,
            validity_months: t.validity_months,
            renewal_window_days: t.renewal_window_days,
            evidence_required: t.evidence_required,
            required_courses: t.required_courses,
        }
    }
}

/// A certification with every cycle of the same person and type.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CertificationDetail {
    pub certification: Certification,
    /// Newest first, including this one.
    pub cycles: Vec<Certification>,
}

/// An approval chain.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct Chain {
    /// 1 to 10 steps, in order.
    #[oai(validator(min_items = 1, max_items = 10))]
    pub steps: Vec<ChainStep>,
    /// False while the built-in (or, for a type, the default) chain applies.
    #[oai(read_only)]
    #[serde(default)]
    pub configured: bool,
}

/// Body of `POST /renewals`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateRenewal {
    /// A certification the caller may act on (their own, or one of someone they supervise or
    /// manage, or anyone's with `certifications_manage`).
    pub certification_id: Uuid,
    #[oai(nullable, validator(max_length = 2000))]
    pub comment: Option<String>,
}

/// Body of `POST /renewals/{id}/decision`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct DecisionBody {
    pub decision: Decision,
    /// Required (not blank) to reject or return.
    #[oai(nullable, validator(max_length = 2000))]
    pub comment: Option<String>,
}

/// Body of `POST /renewals/{id}/resubmit`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CommentBody {
    #[oai(nullable, validator(max_length = 2000))]
    pub comment: Option<String>,
}

/// Body of `POST /delegations`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateDelegation {
    /// Another active person of the tenant.
    pub delegate_id: Uuid,
    /// RFC 3339, in the years 1900–2999.
    pub starts_at: ApiDateTime,
    /// RFC 3339, in the years 1900–2999; after `starts_at`.
    pub ends_at: ApiDateTime,
}

/// Body of `POST /certifications`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(
    rename = "RecordCertification",
    deny_unknown_fields,
    skip_serializing_if_is_none
)]
pub struct RecordCertificationBody {
    /// A person of the tenant.
    pub user_id: Uuid,
    /// One of the tenant's certification types.
    pub type_id: Uuid,
    /// Between 1900-01-01 and 2999-12-31.
    pub issued_on: ApiDate,
    /// Default: issued on + the type's validity. Between 1900-01-01 and 2999-12-31 and not
    /// before `issued_on`, as is the expiry computed from the validity.
    #[serde(default)]
    #[oai(nullable)]
    pub expires_on: Option<ApiDate>,
    /// Blank: none.
    #[oai(nullable, validator(max_length = 100))]
    pub certificate_number: Option<String>,
}

impl From<RecordCertificationBody> for RecordCertification {
    fn from(b: RecordCertificationBody) -> Self {
        RecordCertification {
            user_id: b.user_id,
            type_id: b.type_id,
            issued_on: b.issued_on.0,
            expires_on: b.expires_on.map(|d| d.0),
            certificate_number: b.certificate_number,
        }
    }
}

/// How `GET /compliance` groups people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum GroupBy {
    Department,
    Role,
    All,
}

impl GroupBy {
    /// The parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Department => "department",
            GroupBy::Role => "role",
            GroupBy::All => "all",
        }
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl RenewalsApi {
    /// The tenant's certification types, by name.
    #[oai(
        path = "/certification-types",
        method = "get",
        tag = "Tag::CertificationTypes"
    )]
    async fn list_types(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<CertificationType>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = service::list_types(&self.svc, &auth.0, Some(page)).await?;
        Ok(page.list(rows, total))
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
        body: Body<CreateType>,
    ) -> ApiResult<Created<CertificationType>> {
        Ok(created(
            service::create_type(&self.svc, &auth.0, body.0.into(), now()).await?,
        ))
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
        Ok(ok(service::get_type(&self.svc, &auth.0, id.0).await?))
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
        Ok(ok(service::update_type(
            &self.svc,
            &auth.0,
            id.0,
            body.0,
            now(),
        )
        .await?))
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
        Ok(ok(service::preview_timeline(
            &self.svc,
            &auth.0,
            body.0,
            now(),
        )
        .await?))
    }

    /// The approval chain of `scope`: `default`, or a certification type id.
    #[oai(
        path = "/approval-chains/:scope",
        method = "get",
        tag = "Tag::CertificationTypes"
    )]
    async fn get_chain(&self, auth: TenantAuth, scope: Path<String>) -> ApiResult<Ok200<Chain>> {
        let (steps, configured) = service::chain(&self.svc, &auth.0, &scope.0).await?;
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
        let steps =
            service::replace_chain(&self.svc, &auth.0, &scope.0, body.0.steps, now()).await?;
        Ok(ok(Chain {
            steps,
            configured: true,
        }))
    }

    /// Certifications: the caller's own, or (with the compliance permission) anyone's. Current
    /// cycles only unless `history=true`.
    #[oai(path = "/certifications", method = "get", tag = "Tag::Certifications")]
    #[allow(clippy::too_many_arguments)] // one per query parameter
    async fn list_certifications(
        &self,
        auth: TenantAuth,
        user_id: Query<Option<Uuid>>,
        type_id: Query<Option<Uuid>>,
        /// `valid`, `expiring`, `expired` or `renewed`.
        status: Query<Option<Status>>,
        history: Query<Option<bool>>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Certification>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let query = CertQuery {
            user_id: user_id.0,
            type_id: type_id.0,
            status: status.0,
            history: history.0.unwrap_or(false),
        };
        let (rows, total) =
            service::list_certifications(&self.svc, &auth.0, query, Some(page), now()).await?;
        Ok(page.list(rows, total))
    }

    /// Record a certification (a new cycle; the open one of the same type is closed as renewed).
    #[oai(path = "/certifications", method = "post", tag = "Tag::Certifications")]
    async fn record_certification(
        &self,
        auth: TenantAuth,
        body: Body<RecordCertificationBody>,
    ) -> ApiResult<Created<Certification>> {
        Ok(created(
            service::record_certification(&self.svc, &auth.0, body.0.into(), now()).await?,
        ))
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
        let (certification, cycles) =
            service::get_certification(&self.svc, &auth.0, id.0, now()).await?;
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
        let b = body.0;
        Ok(created(
            service::submit_renewal(&self.svc, &auth.0, b.certification_id, b.comment, now())
                .await?,
        ))
    }

    /// The caller's renewal requests (as employee or requester), newest first.
    #[oai(path = "/renewals", method = "get", tag = "Tag::Renewals")]
    async fn my_renewals(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<RenewalRequest>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = service::my_renewals(&self.svc, &auth.0, page).await?;
        Ok(page.list(rows, total))
    }

    /// Requests waiting for the caller's decision, oldest due first.
    #[oai(path = "/approvals", method = "get", tag = "Tag::Renewals")]
    async fn approvals(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<RenewalRequest>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = service::approvals(&self.svc, &auth.0, page).await?;
        Ok(page.list(rows, total))
    }

    /// One request with its steps, history and evidence.
    #[oai(path = "/renewals/:id", method = "get", tag = "Tag::Renewals")]
    async fn get_renewal(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<RenewalRequest>> {
        Ok(ok(service::get_renewal(&self.svc, &auth.0, id.0).await?))
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
        /// The file's name, without slashes.
        #[oai(validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F/\\]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000/\\][^\x00-\x08\x0B-\x1F\x7F-\x9F/\\]*$"
        ))]
        filename: Query<String>,
        mut body: File,
    ) -> ApiResult<Created<RenewalRequest>> {
        Ok(created(
            service::add_evidence(&self.svc, &auth.0, id.0, &filename.0, &mut body, now()).await?,
        ))
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
        service::evidence_file(&self.svc, &auth.0, id.0, evidence_id.0)
            .await
            .map(Binary)
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
        let b = body.0;
        Ok(ok(service::decide(
            &self.svc,
            &auth.0,
            id.0,
            b.decision,
            b.comment,
            now(),
        )
        .await?))
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
        Ok(ok(service::resubmit(
            &self.svc,
            &auth.0,
            id.0,
            body.0.comment,
            now(),
        )
        .await?))
    }

    /// Withdraw an open request.
    #[oai(path = "/renewals/:id/cancel", method = "post", tag = "Tag::Renewals")]
    async fn cancel(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<RenewalRequest>> {
        Ok(ok(service::cancel(&self.svc, &auth.0, id.0, now()).await?))
    }

    /// The caller's out-of-office delegations (current and future).
    #[oai(path = "/delegations", method = "get", tag = "Tag::Renewals")]
    async fn delegations(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Delegation>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = service::delegations(&self.svc, &auth.0, page, now()).await?;
        Ok(page.list(rows, total))
    }

    /// Hand the caller's approvals to a delegate for a period (out of office). Steps already
    /// pending move to the delegate when the escalation job next runs.
    #[oai(path = "/delegations", method = "post", tag = "Tag::Renewals")]
    async fn delegate(
        &self,
        auth: TenantAuth,
        body: Body<CreateDelegation>,
    ) -> ApiResult<Created<Delegation>> {
        Ok(created(
            service::delegate(&self.svc, &auth.0, body.0, now()).await?,
        ))
    }

    /// End a delegation.
    #[oai(path = "/delegations/:id", method = "delete", tag = "Tag::Renewals")]
    async fn end_delegation(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<NoContent> {
        service::end_delegation(&self.svc, &auth.0, id.0, now()).await?;
        Ok(NoContent::NoContent)
    }

    /// Who is compliant, expiring or expired: `group_by` `department` (default), `role` or
    /// `all`.
    #[oai(path = "/compliance", method = "get", tag = "Tag::Compliance")]
    async fn compliance(
        &self,
        auth: TenantAuth,
        group_by: Query<Option<GroupBy>>,
        type_id: Query<Option<Uuid>>,
    ) -> ApiResult<Ok200<Vec<ComplianceGroup>>> {
        Ok(ok(service::compliance(
            &self.svc,
            &auth.0,
            group_by.0.map(|g| g.as_str().to_string()),
            type_id.0,
            now(),
        )
        .await?))
    }
}
