//! The administrators' page of scheduled jobs and background work: what ran when, what is
//! queued or running with its progress, and cancel / retry.

use std::sync::Arc;

use askama::Template;
use poem::{
    get, handler,
    http::StatusCode,
    post,
    web::{Data, Path, Query, Redirect},
    EndpointExt, IntoResponse, Route,
};
use serde::Deserialize;
use trainflow_kernel::{auth::Permission, envelope::Page, now};
use trainflow_web::{notice, render, Nav, NavEntry, NoFields, PageResult, SignedIn, Submitted};
use uuid::Uuid;

use crate::{
    queue::{WorkFilter, WorkItem, WorkStatus},
    service, JobStatus, Runner,
};

/// The jobs entry of the navigation bar (administrators).
pub fn nav() -> Vec<NavEntry> {
    vec![NavEntry {
        key: "jobs",
        label: "Jobs",
        href: "/portal/jobs",
        order: 85,
        permission: Some(Permission::TenantSettings),
    }]
}

/// Mounts the jobs page on `route` (the portal's, nested under `/portal`).
pub fn mount(route: Route, runner: Runner) -> Route {
    let runner = Arc::new(runner);
    route
        .at("/jobs", get(jobs_page).data(runner.clone()))
        .at("/jobs/work/:id/cancel", post(cancel).data(runner.clone()))
        .at("/jobs/work/:id/retry", post(retry).data(runner))
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    nav: Option<Nav>,
    csrf: String,
    jobs: Vec<JobStatus>,
    work: Vec<WorkItem>,
    total: i64,
    status: String,
    statuses: Vec<&'static str>,
    page: u32,
    prev: Option<String>,
    next: Option<String>,
    notice: Option<&'static str>,
}

impl JobsPage {
    fn when(&self, at: &time::OffsetDateTime) -> String {
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
        at.format(&format).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct JobsQuery {
    #[serde(default)]
    status: String,
    page: Option<u32>,
    notice: Option<String>,
}

const STATUSES: [&str; 5] = ["queued", "running", "succeeded", "failed", "canceled"];

#[handler]
async fn jobs_page(me: SignedIn, runner: Data<&Arc<Runner>>, q: Query<JobsQuery>) -> PageResult {
    let q = q.0;
    let page = Page::parse(Some(q.page.unwrap_or(1).max(1)), Some(20))?;
    let status: Option<WorkStatus> = q.status.parse().ok();
    let jobs = service::scheduled_jobs(&runner, me.ctx()).await?;
    let filter = WorkFilter {
        status,
        ..WorkFilter::default()
    };
    let (work, total) = service::work(runner.db(), me.ctx(), filter, page).await?;
    let pages = ((total + 19) / 20).max(1);
    let link = |p: u32| {
        format!(
            "/portal/jobs?status={}&page={p}",
            status.map(WorkStatus::as_str).unwrap_or("")
        )
    };
    render(
        &JobsPage {
            nav: me.nav("jobs"),
            csrf: me.csrf().to_string(),
            jobs,
            work,
            total,
            status: status.map(WorkStatus::as_str).unwrap_or("").to_string(),
            statuses: STATUSES.to_vec(),
            page: page.page,
            prev: (page.page > 1).then(|| link(page.page - 1)),
            next: (i64::from(page.page) < pages).then(|| link(page.page + 1)),
            notice: notice(
                q.notice.as_deref(),
                &[
                    ("canceled", "The work was canceled."),
                    (
                        "requested",
                        "Cancellation requested: the work stops at its next step.",
                    ),
                    ("retried", "The work was queued again."),
                ],
            ),
        },
        StatusCode::OK,
    )
}

#[handler]
async fn cancel(
    runner: Data<&Arc<Runner>>,
    id: Path<Uuid>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    let outcome = service::cancel_work(runner.db(), me.ctx(), id.0, now()).await?;
    let notice = match outcome {
        crate::queue::CancelOutcome::Canceled => "canceled",
        crate::queue::CancelOutcome::Requested => "requested",
    };
    Ok(Redirect::see_other(format!("/portal/jobs?notice={notice}")).into_response())
}

#[handler]
async fn retry(
    runner: Data<&Arc<Runner>>,
    id: Path<Uuid>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    service::retry_work(runner.db(), me.ctx(), id.0, now()).await?;
    Ok(Redirect::see_other("/portal/jobs?notice=retried").into_response())
}
