//! Renewals' part of a tenant manifest: certification types, certifications dated relative to
//! the day the manifest is applied (so the demo always has some valid, some expiring and some
//! expired), and renewal requests part-way through their approval chain. Everything is created
//! through this context's use cases, as the people the manifest names, so the demo's audit
//! trail and notifications are those the product itself writes. The expiry scan then runs once
//! for the tenant, so reminders are waiting in the holders' notification centres.

use std::{collections::BTreeMap, future::Future, pin::Pin};

use anyhow::Context;
use serde::Deserialize;
use time::Duration;
use trainflow_kernel::{
    auth::{Permission, Role, TenantCtx},
    manifest::{anyhow_api, Created, ManifestPart, ManifestScope},
};

use crate::{
    certs::{RecordCertification, TypeInput},
    service::{self, CertQuery},
    workflow::Decision,
    Renewals,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeSpec {
    code: String,
    name: String,
    description: Option<String>,
    validity_months: Option<i32>,
    renewal_window_days: Option<i32>,
    #[serde(default)]
    evidence_required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificationSpec {
    /// The holder's email.
    holder: String,
    /// The certification type's code.
    #[serde(rename = "type")]
    type_code: String,
    /// Days before the day of applying.
    issued_days_ago: i64,
    /// Overrides the type's validity (negative: already expired).
    expires_in_days: Option<i64>,
    certificate_number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewalSpec {
    /// The holder's email; the holder asks for the renewal of their open cycle of `type`.
    holder: String,
    #[serde(rename = "type")]
    type_code: String,
    comment: Option<String>,
    /// Approvers (emails) who have already approved, in the chain's order.
    #[serde(default)]
    approved_by: Vec<String>,
}

/// The part the server registers.
pub struct DemoPart(pub Renewals);

const SECTIONS: &[&str] = &["certification_types", "certifications", "renewals"];

fn section<T: for<'de> Deserialize<'de>>(
    sections: &BTreeMap<String, serde_json::Value>,
    key: &str,
) -> anyhow::Result<Vec<T>> {
    match sections.get(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).with_context(|| format!("section `{key}`")),
    }
}

impl ManifestPart for DemoPart {
    fn sections(&self) -> &'static [&'static str] {
        SECTIONS
    }

    fn apply<'a>(
        &'a self,
        scope: &'a ManifestScope<'a>,
        sections: &'a BTreeMap<String, serde_json::Value>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Created>> + Send + 'a>> {
        Box::pin(self.apply_sections(scope, sections))
    }
}

/// Every cycle of `holder`'s certifications of one type.
async fn held(
    svc: &Renewals,
    officer: &TenantCtx,
    holder: &TenantCtx,
    type_id: uuid::Uuid,
    now: time::OffsetDateTime,
) -> anyhow::Result<Vec<crate::certs::Certification>> {
    let query = CertQuery {
        user_id: Some(holder.user_id.0),
        type_id: Some(type_id),
        status: None,
        history: true,
    };
    service::list_certifications(svc, officer, query, None, now)
        .await
        .map(|(rows, _)| rows)
        .map_err(anyhow_api)
}

impl DemoPart {
    async fn apply_sections(
        &self,
        scope: &ManifestScope<'_>,
        sections: &BTreeMap<String, serde_json::Value>,
    ) -> anyhow::Result<Created> {
        let types: Vec<TypeSpec> = section(sections, "certification_types")?;
        let certifications: Vec<CertificationSpec> = section(sections, "certifications")?;
        let renewals: Vec<RenewalSpec> = section(sections, "renewals")?;
        if types.is_empty() && certifications.is_empty() && renewals.is_empty() {
            return Ok(Vec::new());
        }
        let svc = &self.0;
        let now = scope.now;
        // The person who records: an administrator, else anyone who may manage certifications.
        let officer = scope.acting(Permission::CertificationsManage, Role::Administrator)?;

        let mut created_types = 0;
        let existing = service::list_types(svc, officer, None)
            .await
            .map_err(anyhow_api)?
            .0;
        for t in &types {
            if existing.iter().any(|e| e.code == t.code) {
                continue;
            }
            let input = TypeInput {
                code: Some(t.code.clone()),
                name: Some(t.name.clone()),
                description: t.description.clone(),
                validity_months: t.validity_months,
                renewal_window_days: t.renewal_window_days,
                evidence_required: Some(t.evidence_required),
                required_courses: None,
            };
            service::create_type(svc, officer, input, now)
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("certification type {}", t.code))?;
            created_types += 1;
        }
        let types_now = service::list_types(svc, officer, None)
            .await
            .map_err(anyhow_api)?
            .0;
        let type_id = |code: &str| {
            types_now
                .iter()
                .find(|t| t.code == code)
                .map(|t| t.id)
                .with_context(|| format!("unknown certification type {code}"))
        };
        let today = now.date();

        let mut created_certs = 0;
        for c in &certifications {
            let holder = scope.person("certifications.holder", &c.holder)?;
            let type_id = type_id(&c.type_code)?;
            let held = held(svc, officer, holder, type_id, now).await?;
            if !held.is_empty() {
                continue;
            }
            let input = RecordCertification {
                user_id: holder.user_id.0,
                type_id,
                issued_on: today - Duration::days(c.issued_days_ago),
                expires_on: c.expires_in_days.map(|d| today + Duration::days(d)),
                certificate_number: c.certificate_number.clone(),
            };
            service::record_certification(svc, officer, input, now)
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("certification {} of {}", c.type_code, c.holder))?;
            created_certs += 1;
        }

        let mut created_renewals = 0;
        for r in &renewals {
            let holder: &TenantCtx = scope.person("renewals.holder", &r.holder)?;
            let type_id = type_id(&r.type_code)?;
            let held = held(svc, officer, holder, type_id, now).await?;
            // A demo holder has a handful of requests: the first page is all of them.
            let first = trainflow_kernel::envelope::Page {
                page: 1,
                per_page: 100,
            };
            let asked = service::my_renewals(svc, holder, first)
                .await
                .map_err(anyhow_api)?
                .0;
            if asked
                .iter()
                .any(|x| held.iter().any(|c| c.id == x.certification_id))
            {
                continue;
            }
            let open = held
                .iter()
                .find(|c| c.renewed_at.is_none())
                .with_context(|| format!("renewal: {} holds no open {}", r.holder, r.type_code))?;
            let request = service::submit_renewal(svc, holder, open.id, r.comment.clone(), now)
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("renewal of {} for {}", r.type_code, r.holder))?;
            for approver in &r.approved_by {
                let approver = scope.person("renewals.approved_by", approver)?;
                service::decide(svc, approver, request.id, Decision::Approve, None, now)
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("approving the renewal of {}", r.holder))?;
            }
            created_renewals += 1;
        }

        // Reminders for what is now inside its renewal window.
        svc.expiry_reminders_in(&[scope.tenant.0], now)
            .await
            .map_err(anyhow_api)?;
        Ok(vec![
            ("certification types", created_types),
            ("certifications", created_certs),
            ("renewal requests", created_renewals),
        ])
    }
}
