//! My calendar, its feed address, and the feed itself (opened by calendar applications, with
//! no session: the secret address is the credential).

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path},
    IntoResponse, Response,
};
use trainflow_kernel::now;
use trainflow_web::{render, LocalTimes, Nav, NoFields, PageResult, SignedIn, Submitted};

use crate::{calendar::CalendarItem, service, Learning};

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage {
    nav: Option<Nav>,
    csrf: String,
    items: Vec<CalendarItem>,
    feed_issued_at: Option<time::OffsetDateTime>,
    /// The address just issued (shown once).
    new_address: Option<String>,
    times: LocalTimes,
    notice: Option<&'static str>,
}

async fn page(
    svc: &Learning,
    me: &SignedIn,
    new_address: Option<String>,
    notice: Option<&'static str>,
) -> PageResult {
    let mine = service::my_calendar(svc, me.ctx(), now()).await?;
    render(
        &CalendarPage {
            nav: me.nav("calendar"),
            csrf: me.csrf().to_string(),
            items: mine.items,
            feed_issued_at: mine.feed_issued_at,
            new_address,
            times: me.session.times(),
            notice,
        },
        StatusCode::OK,
    )
}

/// My calendar.
#[handler]
pub(super) async fn my_calendar(me: SignedIn, svc: Data<&Learning>) -> PageResult {
    page(&svc, &me, None, None).await
}

/// Issues a new feed address and shows it (once).
#[handler]
pub(super) async fn issue_feed(
    svc: Data<&Learning>,
    Submitted(me, _): Submitted<NoFields>,
) -> PageResult {
    let address = service::issue_feed(&svc, me.ctx(), now()).await?;
    page(
        &svc,
        &me,
        Some(address.url),
        Some("Your calendar address is below. Copy it now: it is not shown again."),
    )
    .await
}

/// Revokes the feed address.
#[handler]
pub(super) async fn revoke_feed(
    svc: Data<&Learning>,
    Submitted(me, _): Submitted<NoFields>,
) -> PageResult {
    service::revoke_feed(&svc, me.ctx(), now()).await?;
    page(
        &svc,
        &me,
        None,
        Some("Your calendar address was revoked: calendars subscribed to it no longer update."),
    )
    .await
}

/// The feed, as `text/calendar`.
#[handler]
pub(super) async fn feed(svc: Data<&Learning>, token: Path<String>) -> poem::Result<Response> {
    let body = service::feed(&svc, &token.0, now()).await?;
    Ok(Response::builder()
        .content_type("text/calendar; charset=utf-8")
        .header("cache-control", "private, max-age=300")
        .body(body)
        .into_response())
}
