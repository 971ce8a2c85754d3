//! The audit log for administrators: every recorded change and security event, newest first,
//! filtered by action, by who acted or by the object changed, and the hash chain's verification.

use std::sync::Arc;

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Query},
};
use serde::Deserialize;
use trainflow_kernel::{auth::Permission, ApiError};
use trainflow_web::{
    blank, portal_page, render, url_encode, Errors, Nav, PageResult, Pager, SignedIn,
};
use uuid::Uuid;

use super::IdentityPages;
use crate::{service, users::actor_label};

/// Entries a page shows.
const PER_PAGE: u32 = 50;

/// One entry as the page shows it.
struct Row {
    when: String,
    action: String,
    who: String,
    actor_id: Option<Uuid>,
    object_kind: String,
    object_id: Option<Uuid>,
    ip: String,
    request_id: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    rows: Vec<Row>,
    total: i64,
    pager: Pager,
    action: String,
    actor_id: String,
    object_id: String,
    /// The chain's verification, when asked for: `None` intact, `Some(seq)` broken there.
    verified: Option<Option<i64>>,
    errors: Errors,
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor_id: String,
    #[serde(default)]
    object_id: String,
    page: Option<u32>,
    #[serde(default)]
    verify: String,
}

/// `raw` as an id filter; a wrong one is reported on `field` and ignored.
fn id_filter(raw: &str, field: &'static str, errors: &mut Errors) -> Option<Uuid> {
    match blank(raw)?.parse() {
        Ok(id) => Some(id),
        Err(_) => {
            errors.add(field, "must be an id, as the log shows them");
            None
        }
    }
}

/// The audit log (administrators).
#[handler]
pub(super) async fn audit_log(
    me: SignedIn,
    pages: Data<&Arc<IdentityPages>>,
    q: Query<AuditQuery>,
) -> PageResult {
    if !me.session.role.grants(Permission::AuditRead) {
        return Err(ApiError::Forbidden.into());
    }
    let q = q.0;
    let mut errors = Errors::default();
    let action: Option<String> = blank(&q.action).map(|a| a.chars().take(100).collect());
    let actor = id_filter(&q.actor_id, "actor_id", &mut errors);
    let object = id_filter(&q.object_id, "object_id", &mut errors);
    let page = portal_page(q.page, PER_PAGE)?;
    let db = &pages.deps.db;
    let (entries, total, names) =
        service::audit_log_named(db, me.ctx(), action.as_deref(), actor, object, page).await?;
    let verified = if q.verify.is_empty() {
        None
    } else {
        Some(service::verify_audit(db, me.ctx()).await?)
    };
    let rows = entries
        .into_iter()
        .map(|e| Row {
            when: me.session.local_time(e.occurred_at),
            who: e
                .actor_id
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or_else(|| actor_label(&e.actor_kind).to_string()),
            actor_id: e.actor_id,
            object_kind: e.object_type.unwrap_or_default(),
            object_id: e.object_id,
            action: e.action,
            ip: e.ip.unwrap_or_default(),
            request_id: e.request_id,
        })
        .collect();
    let link = |n: u32| {
        format!(
            "/portal/audit?action={}&actor_id={}&object_id={}&page={n}",
            url_encode(&q.action),
            url_encode(&q.actor_id),
            url_encode(&q.object_id)
        )
    };
    render(
        &AuditPage {
            nav: me.nav("audit"),
            rows,
            total,
            pager: Pager::new(page, total, link),
            action: q.action.clone(),
            actor_id: q.actor_id.clone(),
            object_id: q.object_id.clone(),
            verified,
            errors,
        },
        StatusCode::OK,
    )
}
