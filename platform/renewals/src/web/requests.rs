//! A renewal request's page with the approver's decision and the employee's resubmission, and
//! the approvals queue.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::{now, ApiError};
use trainflow_web::{
    field_errors, portal_page, render, Errors, LocalTimes, Nav, PageResult, Pager, SignedIn,
    Submitted,
};
use uuid::Uuid;

use super::{comment_of, NoticeQuery};
use crate::{
    service,
    workflow::{Decision, RenewalRequest},
    Renewals,
};

#[derive(Template)]
#[template(path = "renewal.html")]
struct RenewalPage {
    nav: Option<Nav>,
    csrf: String,
    r: RenewalRequest,
    times: LocalTimes,
    /// The caller is the approver of the pending step.
    my_turn: bool,
    /// The caller may resubmit it (it was returned).
    can_resubmit: bool,
    notice: Option<&'static str>,
    errors: Errors,
}

async fn page(
    svc: &Renewals,
    me: &SignedIn,
    id: Uuid,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let view = service::view_renewal(svc, me.ctx(), id).await?;
    render(
        &RenewalPage {
            nav: me.nav("approvals"),
            csrf: me.csrf().to_string(),
            r: view.request,
            times: me.session.times(),
            my_turn: view.my_turn,
            can_resubmit: view.can_resubmit,
            notice,
            errors,
        },
        status,
    )
}

/// A renewal request: steps, history, evidence, and the decision form for its approver.
#[handler]
pub(super) async fn renewal_view(
    me: SignedIn,
    svc: Data<&Renewals>,
    Path(id): Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    page(&svc, &me, id, q.text(), Errors::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    decision: String,
    #[serde(default)]
    comment: String,
}

/// The notice key of a decision's redirect.
fn decided(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
        Decision::Return => "return",
    }
}

/// Approve, reject, return — or, for the employee's side, resubmit (`decision=resubmit`).
#[handler]
pub(super) async fn decide(
    svc: Data<&Renewals>,
    Path(id): Path<Uuid>,
    Submitted(me, form): Submitted<DecisionForm>,
) -> PageResult {
    let outcome = match comment_of(&form.comment) {
        Err(e) => Err(e),
        Ok(comment) if form.decision == "resubmit" => {
            service::resubmit(&svc, me.ctx(), id, comment, now())
                .await
                .map(|_| "resubmitted")
        }
        Ok(comment) => match Decision::parse(&form.decision) {
            Some(decision) => service::decide(&svc, me.ctx(), id, decision, comment, now())
                .await
                .map(|_| decided(decision)),
            None => Err(ApiError::field(
                "decision",
                "must be approve, reject or return",
            )),
        },
    };
    match outcome {
        Ok(key) => {
            Ok(Redirect::see_other(format!("/portal/renewals/{id}?notice={key}")).into_response())
        }
        Err(e) => {
            let errors = field_errors(e)?;
            page(
                &svc,
                &me,
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
    pager: Pager,
    times: LocalTimes,
}

/// Requests waiting for the signed-in person, 50 a page.
#[handler]
pub(super) async fn approvals_queue(
    me: SignedIn,
    svc: Data<&Renewals>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let page = portal_page(q.page, 50)?;
    let (requests, total) = service::approvals(&svc, me.ctx(), page).await?;
    render(
        &ApprovalsPage {
            nav: me.nav("approvals"),
            requests,
            pager: Pager::new(page, total, |n| format!("/portal/approvals?page={n}")),
            times: me.session.times(),
        },
        StatusCode::OK,
    )
}
