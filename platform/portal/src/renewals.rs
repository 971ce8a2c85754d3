//! The certification, renewal, approval, compliance and notification pages. Each one calls the
//! same use cases as the API (`trainflow_renewals`, `trainflow_notifications`), under the same
//! tenant transaction and permission checks.

use std::sync::Arc;

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Path, Query, Redirect},
    IntoResponse, Request,
};
use serde::Deserialize;
use trainflow_identity::signin::PortalSession;
use trainflow_kernel::{auth::Permission, db::TenantTx, now, ApiError};
use trainflow_notifications::{
    inbox::{self, Notification, Preference},
    Channel, Kind,
};
use trainflow_renewals::{
    api::visible,
    certs::{self, CertFilter, Certification, ComplianceGroup},
    workflow::{self, Decision, RenewalRequest},
    Renewals,
};
use uuid::Uuid;

use crate::{
    pages::{check_csrf, field_errors, render, require, Errors, Nav, PageResult},
    Portal,
};

fn svc(portal: &Portal) -> poem::Result<&Renewals> {
    portal
        .renewals
        .as_ref()
        .ok_or_else(|| ApiError::NotFound.into())
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn notice_text(n: Option<String>) -> Option<String> {
    n.map(|n| {
        match n.as_str() {
            "submitted" => "Your renewal request was sent to its first approver.",
            "approve" => "You approved the request.",
            "reject" => "You rejected the request.",
            "return" => "You returned the request for changes.",
            "resubmitted" => "The request was sent back to its approver.",
            "saved" => "Your preferences were saved.",
            "type_saved" => "The certification type was saved.",
            _ => "Done.",
        }
        .to_string()
    })
}

/// A form's optional comment: trimmed, empty as none, at most 2,000 characters.
fn comment_of(raw: &str) -> Result<Option<String>, ApiError> {
    let c = raw.trim();
    if c.chars().count() > 2000 {
        return Err(ApiError::field(
            "comment",
            "must be at most 2000 characters",
        ));
    }
    Ok(Some(c.to_string()).filter(|c| !c.is_empty()))
}

// ---------------------------------------------------------------------------------------------
// My certifications

#[derive(Template)]
#[template(path = "certifications.html")]
struct CertificationsPage {
    nav: Option<Nav>,
    csrf: String,
    certifications: Vec<Certification>,
    requests: Vec<RenewalRequest>,
    notice: Option<String>,
    errors: Errors,
}

/// The signed-in person's certifications and renewal requests.
#[handler]
pub async fn my_certifications(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    certifications_page(
        &portal,
        &s,
        notice_text(q.0.notice),
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

async fn certifications_page(
    portal: &Portal,
    s: &PortalSession,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let svc = svc(portal)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
    let today = certs::clock(&mut tx, now()).await?.today;
    let certifications = certs::list(
        &mut tx,
        today,
        &CertFilter {
            user_id: Some(ctx.user_id.0),
            ..CertFilter::default()
        },
    )
    .await?;
    let requests = workflow::mine(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    render(
        &CertificationsPage {
            nav: Some(Nav::new(s, "certifications")),
            csrf: s.csrf_token.clone(),
            certifications,
            requests,
            notice,
            errors,
        },
        status,
    )
}

#[derive(Deserialize)]
pub struct RenewForm {
    csrf: String,
    #[serde(default)]
    comment: String,
}

/// Request the renewal of one of one's certifications.
#[handler]
pub async fn request_renewal(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    Path(id): Path<Uuid>,
    Form(form): Form<RenewForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    check_csrf(&s, &form.csrf)?;
    let svc = svc(&portal)?;
    let comment = match comment_of(&form.comment) {
        Ok(c) => c,
        Err(e) => {
            let errors = field_errors(e)?;
            return certifications_page(
                &portal,
                &s,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let submitted = async {
        let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
        let manage = ctx.role.grants(Permission::CertificationsManage);
        let request = svc
            .submit(&mut tx, ctx.user_id.0, manage, id, comment, now())
            .await?;
        trainflow_kernel::audit::record(
            &mut tx,
            trainflow_kernel::audit::Entry::by(&ctx, "renewal.submit")
                .object("renewal_request", request),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, ApiError>(request)
    }
    .await;
    match submitted {
        Ok(request) => Ok(Redirect::see_other(format!(
            "/portal/renewals/{request}?notice=submitted"
        ))
        .into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            certifications_page(&portal, &s, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One request, and the approvals queue

#[derive(Template)]
#[template(path = "renewal.html")]
struct RenewalPage {
    nav: Option<Nav>,
    csrf: String,
    r: RenewalRequest,
    /// The caller is the approver of the pending step.
    my_turn: bool,
    /// The caller may resubmit it (it was returned).
    can_resubmit: bool,
    notice: Option<String>,
    errors: Errors,
}

/// A renewal request: steps, history, evidence, and the decision form for its approver.
#[handler]
pub async fn renewal_view(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    Path(id): Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    renewal_page(
        &portal,
        &s,
        id,
        notice_text(q.0.notice),
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

async fn renewal_page(
    portal: &Portal,
    s: &PortalSession,
    id: Uuid,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let svc = svc(portal)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
    let r = visible(&mut tx, &ctx, id).await?;
    let me = ctx.user_id.0;
    let my_turn = r.status == "pending"
        && r.steps
            .iter()
            .any(|st| st.status == "pending" && st.approver_id == Some(me));
    let can_resubmit = r.status == "returned"
        && workflow::may_request_for(
            &mut tx,
            me,
            ctx.role.grants(Permission::CertificationsManage),
            r.user_id,
        )
        .await?;
    tx.commit().await?;
    render(
        &RenewalPage {
            nav: Some(Nav::new(s, "approvals")),
            csrf: s.csrf_token.clone(),
            r,
            my_turn,
            can_resubmit,
            notice,
            errors,
        },
        status,
    )
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

/// Approve, reject, return — or, for the employee's side, resubmit (`decision=resubmit`).
#[handler]
pub async fn decide(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    Path(id): Path<Uuid>,
    Form(form): Form<DecisionForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    check_csrf(&s, &form.csrf)?;
    let svc = svc(&portal)?;
    let comment = match comment_of(&form.comment) {
        Ok(c) => c,
        Err(e) => {
            let errors = field_errors(e)?;
            return renewal_page(
                &portal,
                &s,
                id,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let outcome = async {
        let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
        let r = visible(&mut tx, &ctx, id).await?;
        let at = now();
        let action = if form.decision == "resubmit" {
            let manage = ctx.role.grants(Permission::CertificationsManage);
            if !workflow::may_request_for(&mut tx, ctx.user_id.0, manage, r.user_id).await? {
                return Err(ApiError::Forbidden);
            }
            svc.resubmit(&mut tx, id, ctx.user_id.0, comment, at)
                .await?;
            "resubmitted"
        } else {
            let decision = Decision::parse(&form.decision)
                .ok_or_else(|| ApiError::field("decision", "must be approve, reject or return"))?;
            svc.decide(&mut tx, id, ctx.user_id.0, decision, comment, at)
                .await?;
            match decision {
                Decision::Approve => "approve",
                Decision::Reject => "reject",
                Decision::Return => "return",
            }
        };
        trainflow_kernel::audit::record(
            &mut tx,
            trainflow_kernel::audit::Entry::by(&ctx, "renewal.decide")
                .object("renewal_request", id)
                .detail(serde_json::json!({"decision": action})),
        )
        .await?;
        tx.commit().await?;
        Ok(action)
    }
    .await;
    match outcome {
        Ok(action) => Ok(
            Redirect::see_other(format!("/portal/renewals/{id}?notice={action}")).into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            renewal_page(
                &portal,
                &s,
                id,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    nav: Option<Nav>,
    requests: Vec<RenewalRequest>,
}

/// Requests waiting for the signed-in person.
#[handler]
pub async fn approvals_queue(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let svc = svc(&portal)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
    let requests = workflow::queue(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    render(
        &ApprovalsPage {
            nav: Some(Nav::new(&s, "approvals")),
            requests,
        },
        StatusCode::OK,
    )
}

// ---------------------------------------------------------------------------------------------
// Compliance

#[derive(Template)]
#[template(path = "compliance.html")]
struct CompliancePage {
    nav: Option<Nav>,
    group_by: String,
    groups: Vec<ComplianceGroup>,
    totals: ComplianceGroup,
}

#[derive(Deserialize)]
pub struct ComplianceQuery {
    group_by: Option<String>,
}

/// Who is compliant, expiring or expired, by department or role, with a bar chart.
#[handler]
pub async fn compliance_dashboard(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<ComplianceQuery>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let svc = svc(&portal)?;
    let group_by = match q.0.group_by.as_deref() {
        Some("role") => "role",
        _ => "department",
    };
    let (mut tx, _) = TenantTx::begin(&svc.db, &s.ctx, Permission::ComplianceRead).await?;
    let today = certs::clock(&mut tx, now()).await?.today;
    let groups = certs::compliance(&mut tx, today, group_by, None).await?;
    tx.commit().await?;
    let mut totals = ComplianceGroup {
        group: "All".into(),
        ..ComplianceGroup::default()
    };
    for g in &groups {
        totals.compliant += g.compliant;
        totals.expiring += g.expiring;
        totals.expired += g.expired;
        totals.people += g.people;
    }
    render(
        &CompliancePage {
            nav: Some(Nav::new(&s, "compliance")),
            group_by: group_by.into(),
            groups,
            totals,
        },
        StatusCode::OK,
    )
}

impl CompliancePage {
    /// The chart's stacked bar of a group: (x, width, class) in percent, as SVG attributes (the
    /// content security policy forbids inline styles).
    fn segments(&self, g: &ComplianceGroup) -> Vec<(String, String, &'static str)> {
        let whole = g.people.max(1) as f64;
        let mut x = 0.0;
        [
            (g.compliant, "ok"),
            (g.expiring, "warn"),
            (g.expired, "bad"),
        ]
        .into_iter()
        .map(|(n, class)| {
            let w = n as f64 * 100.0 / whole;
            let seg = (format!("{x:.2}"), format!("{w:.2}"), class);
            x += w;
            seg
        })
        .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    nav: Option<Nav>,
    csrf: String,
    notifications: Vec<Notification>,
    total: i64,
    kinds: Vec<Kind>,
    channels: Vec<Channel>,
    preferences: Vec<Preference>,
    notice: Option<String>,
}

impl NotificationsPage {
    fn enabled(&self, kind: &Kind, channel: &Channel) -> bool {
        self.preferences
            .iter()
            .any(|p| p.kind == *kind && p.channel == *channel && p.enabled)
    }
}

/// The notification centre and the preferences grid.
#[handler]
pub async fn notification_centre(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let svc = svc(&portal)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
    let (notifications, total) = inbox::list(&mut tx, ctx.user_id.0, false, 50, 0).await?;
    let preferences = inbox::preferences(&mut tx, ctx.user_id.0).await?;
    tx.commit().await?;
    render(
        &NotificationsPage {
            nav: Some(Nav::new(&s, "notifications")),
            csrf: s.csrf_token.clone(),
            notifications,
            total,
            kinds: Kind::ALL.to_vec(),
            channels: Channel::ALL.to_vec(),
            preferences,
            notice: notice_text(q.0.notice),
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Mark one notification read (`read`), unread (`unread`) or delete it (`delete`); or mark all
/// read (`/notifications/all/read`).
#[handler]
pub async fn notification_action(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    check_csrf(&s, &form.csrf)?;
    let svc = svc(&portal)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
    let me = ctx.user_id.0;
    let at = now();
    match (id.as_str(), action.as_str()) {
        ("all", "read") => {
            inbox::mark_all_read(&mut tx, me, at).await?;
        }
        (id, action) => {
            let id: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
            match action {
                "read" => drop(inbox::mark(&mut tx, me, id, true, at).await?),
                "unread" => drop(inbox::mark(&mut tx, me, id, false, at).await?),
                "delete" => inbox::delete(&mut tx, me, id, at).await?,
                _ => return Err(ApiError::NotFound.into()),
            }
        }
    }
    tx.commit().await?;
    Ok(Redirect::see_other("/portal/notifications").into_response())
}

/// Saves the preferences grid: a checked box is `kind.channel=on`.
#[handler]
pub async fn save_preferences(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    check_csrf(&s, csrf)?;
    let checked: std::collections::HashSet<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    let prefs: Vec<Preference> = Kind::ALL
        .into_iter()
        .flat_map(|kind| Channel::ALL.into_iter().map(move |channel| (kind, channel)))
        .map(|(kind, channel)| Preference {
            kind,
            channel,
            enabled: checked.contains(format!("{}.{}", kind.as_str(), channel.as_str()).as_str()),
        })
        .collect();
    let svc = svc(&portal)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, &s.ctx, Permission::SelfService).await?;
    inbox::set_preferences(&mut tx, ctx.user_id.0, &prefs).await?;
    tx.commit().await?;
    Ok(Redirect::see_other("/portal/notifications?notice=saved").into_response())
}

// ---------------------------------------------------------------------------------------------
// Certification types, with the timeline preview

/// The new-type form as typed (numbers stay text so a bad value can be shown back).
#[derive(Deserialize, Default)]
pub struct TypeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    validity_months: String,
    #[serde(default)]
    renewal_window_days: String,
    #[serde(default)]
    start_date: String,
    #[serde(default)]
    evidence_required: Option<String>,
}

#[derive(Template)]
#[template(path = "certification_types.html")]
struct TypesPage {
    nav: Option<Nav>,
    csrf: String,
    types: Vec<trainflow_renewals::certs::CertificationType>,
    form: TypeFormView,
    timeline: Vec<trainflow_renewals::dates::Cycle>,
    notice: Option<String>,
    errors: Errors,
}

struct TypeFormView {
    code: String,
    name: String,
    validity_months: String,
    renewal_window_days: String,
    start_date: String,
    evidence_required: bool,
}

impl TypeFormView {
    fn blank(today: time::Date) -> Self {
        TypeFormView {
            code: String::new(),
            name: String::new(),
            validity_months: "12".into(),
            renewal_window_days: "90".into(),
            start_date: today.to_string(),
            evidence_required: false,
        }
    }
}

async fn types_page(
    portal: &Portal,
    s: &PortalSession,
    form: TypeFormView,
    timeline: Vec<trainflow_renewals::dates::Cycle>,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let svc = svc(portal)?;
    let (mut tx, _) = TenantTx::begin(&svc.db, &s.ctx, Permission::CertificationsManage).await?;
    let types = certs::types(&mut tx).await?;
    tx.commit().await?;
    render(
        &TypesPage {
            nav: Some(Nav::new(s, "certification_types")),
            csrf: s.csrf_token.clone(),
            types,
            form,
            timeline,
            notice,
            errors,
        },
        status,
    )
}

/// The tenant's certification types and the form to add one (training officers and
/// administrators).
#[handler]
pub async fn certification_types(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    if !s.user.role.grants(Permission::CertificationsManage) {
        return Err(ApiError::Forbidden.into());
    }
    let today = time::OffsetDateTime::now_utc().date();
    types_page(
        &portal,
        &s,
        TypeFormView::blank(today),
        Vec::new(),
        notice_text(q.0.notice),
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

/// Previews the timeline of the type being defined (`action=preview`) or saves it.
#[handler]
pub async fn save_certification_type(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    Form(form): Form<TypeForm>,
) -> PageResult {
    let s = session_or_return!(&portal, req, jar);
    check_csrf(&s, &form.csrf)?;
    if !s.user.role.grants(Permission::CertificationsManage) {
        return Err(ApiError::Forbidden.into());
    }
    let svc = svc(&portal)?;
    let mut errors = trainflow_kernel::FieldErrors::new();
    let number = |errors: &mut trainflow_kernel::FieldErrors, field: &str, raw: &str| {
        raw.trim()
            .parse::<i32>()
            .map_err(|_| errors.add(field, "must be a whole number"))
            .ok()
    };
    let validity = number(&mut errors, "validity_months", &form.validity_months);
    let window = number(
        &mut errors,
        "renewal_window_days",
        &form.renewal_window_days,
    );
    let view = TypeFormView {
        code: form.code.clone(),
        name: form.name.clone(),
        validity_months: form.validity_months.clone(),
        renewal_window_days: form.renewal_window_days.clone(),
        start_date: form.start_date.clone(),
        evidence_required: form.evidence_required.is_some(),
    };
    let refuse = |errors: trainflow_kernel::FieldErrors, view| async {
        let errors = field_errors(ApiError::Validation(errors))?;
        types_page(
            &portal,
            &s,
            view,
            Vec::new(),
            None,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await
    };
    if !errors.0.is_empty() {
        return refuse(errors, view).await;
    }
    let input = trainflow_renewals::certs::TypeInput {
        code: Some(form.code.trim().to_string()),
        name: Some(form.name.trim().to_string()),
        description: None,
        validity_months: validity,
        renewal_window_days: window,
        evidence_required: Some(form.evidence_required.is_some()),
        required_courses: None,
    };
    let t = match certs::validate_type(None, input) {
        Ok(t) => t,
        Err(ApiError::Validation(e)) => return refuse(e, view).await,
        Err(e) => return Err(e.into()),
    };
    if form.action == "preview" {
        let start = time::Date::parse(
            form.start_date.trim(),
            &time::format_description::well_known::Iso8601::DATE,
        );
        let Ok(start) = start else {
            let mut e = trainflow_kernel::FieldErrors::new();
            e.add("start_date", "must be a date (YYYY-MM-DD)");
            return refuse(e, view).await;
        };
        let (mut tx, _) =
            TenantTx::begin(&svc.db, &s.ctx, Permission::CertificationsManage).await?;
        let offsets = certs::clock(&mut tx, now()).await?.offsets;
        tx.commit().await?;
        let timeline = trainflow_renewals::dates::timeline(
            start,
            t.validity_months.unwrap_or(12),
            t.renewal_window_days,
            &offsets,
            3,
        );
        return types_page(
            &portal,
            &s,
            view,
            timeline,
            None,
            Errors::default(),
            StatusCode::OK,
        )
        .await;
    }
    let saved = async {
        let (mut tx, ctx) =
            TenantTx::begin(&svc.db, &s.ctx, Permission::CertificationsManage).await?;
        certs::save_type(&mut tx, &t, true, now()).await?;
        trainflow_kernel::audit::record(
            &mut tx,
            trainflow_kernel::audit::Entry::by(&ctx, "certification_type.create")
                .object("certification_type", t.id)
                .change(None, serde_json::to_value(&t).ok()),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => Ok(
            Redirect::see_other("/portal/certification-types?notice=type_saved").into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            types_page(
                &portal,
                &s,
                view,
                Vec::new(),
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
