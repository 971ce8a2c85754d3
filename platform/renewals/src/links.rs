//! The page behind an approval link (`/a/{token}`), made for a phone.
//!
//! GET only shows: mail scanners and link previews that follow the URL change nothing. The
//! page's buttons POST to the same URL, which redeems the link (once, atomically) and records
//! the decision in the same transaction; a decision that fails leaves the link unused. A used,
//! expired or replaced link says so and what to do instead.

use poem::{
    handler,
    http::StatusCode,
    web::{Data, Form, Path},
    EndpointExt, IntoEndpoint, Response, Route,
};
use serde::Deserialize;
use trainflow_kernel::{now, secret::parse_link_token, ApiError};
use trainflow_notifications::templates::escape;

use crate::{
    service::{self, LinkAnswer},
    workflow::{Decision, LinkProblem, RenewalRequest},
    Renewals,
};

/// The routes to mount at `/a`.
pub fn routes(svc: Renewals) -> impl IntoEndpoint {
    Route::new()
        .at("/:token", poem::get(show).post(act))
        .data(svc)
}

#[derive(Deserialize)]
struct ActForm {
    decision: String,
    #[serde(default)]
    comment: String,
}

#[handler]
async fn show(Path(token): Path<String>, Data(svc): Data<&Renewals>) -> Response {
    let Some((tenant, digest)) = parse_link_token(&token) else {
        return problem(LinkProblem::Unknown);
    };
    let result = service::link_request(svc, tenant, &digest, now()).await;
    match result {
        Ok(Ok(r)) => page(
            StatusCode::OK,
            "Renewal to approve",
            &request_form(&r, None),
        ),
        Ok(Err(p)) => problem(p),
        Err(e) => failure(e),
    }
}

#[handler]
async fn act(
    Path(token): Path<String>,
    Data(svc): Data<&Renewals>,
    Form(form): Form<ActForm>,
) -> Response {
    let Some((tenant, digest)) = parse_link_token(&token) else {
        return problem(LinkProblem::Unknown);
    };
    let Some(decision) = Decision::parse(&form.decision) else {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose an answer",
            "<p>Choose approve, reject or return.</p>",
        );
    };
    let comment = Some(form.comment.trim().to_string()).filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.len() > 2000) {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Comment too long",
            "<p>Keep the comment under 2,000 characters.</p>",
        );
    }
    let result = service::decide_by_link(svc, tenant, &digest, decision, comment, now()).await;
    match result {
        Ok(LinkAnswer::Done(r)) => {
            let verb = match decision {
                Decision::Approve => "approved",
                Decision::Reject => "rejected",
                Decision::Return => "returned for changes",
            };
            page(
                StatusCode::OK,
                "Thank you",
                &format!(
                    "<p class=\"done\">You {verb} the renewal of <strong>{}</strong> for \
                     <strong>{}</strong>.</p><p>Nothing else is needed; this link no longer \
                     works.</p>",
                    escape(&r.certification),
                    escape(&r.user_name)
                ),
            )
        }
        Ok(LinkAnswer::NeedsComment(Ok(r))) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Renewal to approve",
            &request_form(&r, Some("Say why when you reject or return a request.")),
        ),
        Ok(LinkAnswer::NeedsComment(Err(p))) | Ok(LinkAnswer::Refused(p)) => problem(p),
        Err(ApiError::Conflict { message, .. }) => page(
            StatusCode::CONFLICT,
            "Not recorded",
            &format!(
                "<p>{}</p><p>The link is still usable once this is resolved.</p>",
                escape(&message)
            ),
        ),
        Err(e) => failure(e),
    }
}

fn request_form(r: &RenewalRequest, error: Option<&str>) -> String {
    let step = r
        .steps
        .iter()
        .find(|s| s.status == "pending")
        .map_or(1, |s| s.position + 1);
    let history: String = r
        .history
        .iter()
        .map(|e| {
            format!(
                "<li>{} — {}{}</li>",
                e.at.date(),
                escape(&e.action),
                e.comment
                    .as_deref()
                    .map(|c| format!(": {}", escape(c)))
                    .unwrap_or_default()
            )
        })
        .collect();
    let evidence = if r.evidence.is_empty() {
        "none".to_string()
    } else {
        r.evidence
            .iter()
            .map(|e| escape(&e.filename))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "<dl><dt>Employee</dt><dd>{employee}</dd><dt>Certification</dt><dd>{cert}</dd>\
         <dt>Your step</dt><dd>{step} of {steps}</dd><dt>Evidence</dt><dd>{evidence}</dd>{comment}</dl>\
         <details><summary>History</summary><ul>{history}</ul></details>\
         {error}\
         <form method=\"post\">\
         <label for=\"comment\">Comment (needed to reject or return)</label>\
         <textarea id=\"comment\" name=\"comment\" rows=\"3\" maxlength=\"2000\"></textarea>\
         <button type=\"submit\" name=\"decision\" value=\"approve\" class=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"reject\" class=\"reject\">Reject</button>\
         <button type=\"submit\" name=\"decision\" value=\"return\" class=\"return\">Return for changes</button>\
         </form>",
        employee = escape(&r.user_name),
        cert = escape(&r.certification),
        steps = r.steps.len(),
        comment = r
            .comment
            .as_deref()
            .map(|c| format!("<dt>Their note</dt><dd>{}</dd>", escape(c)))
            .unwrap_or_default(),
        error = error
            .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
            .unwrap_or_default(),
    )
}

fn problem(p: LinkProblem) -> Response {
    let (status, title, text) = match p {
        LinkProblem::Used => (
            StatusCode::CONFLICT,
            "This link was already used",
            "Each approval link works once, and this one has been answered. Sign in to \
             TrainFlow to see the request in your approvals queue.",
        ),
        LinkProblem::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Approval links expire for safety. Sign in to TrainFlow and answer from your \
             approvals queue; a reminder with a fresh link also follows if the request waits.",
        ),
        LinkProblem::Revoked => (
            StatusCode::CONFLICT,
            "This link is no longer needed",
            "The request was answered another way, moved to another approver, withdrawn, or a \
             newer link was sent. Sign in to TrainFlow to see where it stands.",
        ),
        LinkProblem::Unknown => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "Check that the whole link was copied, or sign in to TrainFlow and open your \
             approvals queue.",
        ),
    };
    page(status, title, &format!("<p>{text}</p>"))
}

fn failure(e: ApiError) -> Response {
    tracing::error!(error = %e, "approval link page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Your answer was not recorded and the link still works. Try again in a minute.</p>",
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title} · TrainFlow</title>\
         <link rel=\"stylesheet\" href=\"/portal/static/app.css\"></head>\
         <body class=\"link-page\"><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
    );
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-robots-tag", "noindex")
        .body(html)
}
