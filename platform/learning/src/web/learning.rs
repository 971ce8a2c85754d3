//! My learning, and an enrolment's page where lessons are marked done.

use std::time::Duration;

use askama::Template;
use futures_util::{stream, StreamExt};
use poem::{
    handler,
    http::StatusCode,
    web::{
        sse::{Event, SSE},
        Data, Path, Query, Redirect,
    },
    IntoResponse, Response,
};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use trainflow_kernel::{now, ApiError};
use trainflow_web::{
    blank, field_errors, portal_page, render, Errors, LocalTimes, Nav, PageResult, Pager, SignedIn,
    Submitted,
};
use uuid::Uuid;

use super::{manages, NoticeQuery};
use crate::{
    catalogue::Lesson,
    enrolments::Enrolment,
    materials::Material,
    service::{self, EnrolmentDetail, EnrolmentQuery, ProgressReport, Whose},
    Learning,
};

#[derive(Template)]
#[template(path = "learning.html")]
struct LearningPage {
    nav: Option<Nav>,
    mine: Vec<Enrolment>,
    pager: Pager,
    team: Vec<Enrolment>,
    team_total: i64,
    manages: bool,
    notice: Option<&'static str>,
}

/// One's enrolments (newest first), and those of the people who report to one.
#[handler]
pub(super) async fn my_learning(
    me: SignedIn,
    svc: Data<&Learning>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let page = portal_page(q.page, 25)?;
    let query = |whose| EnrolmentQuery {
        whose,
        user_id: None,
        course_id: None,
        status: None,
    };
    let (mine, total) = service::list_enrolments(&svc, me.ctx(), query(Whose::Mine), page).await?;
    let first = portal_page(Some(1), 50)?;
    let (team, team_total) =
        service::list_enrolments(&svc, me.ctx(), query(Whose::Team), first).await?;
    render(
        &LearningPage {
            nav: me.nav("learning"),
            mine,
            pager: Pager::new(page, total, |n| format!("/portal/learning?page={n}")),
            team,
            team_total,
            manages: manages(&me.session),
            notice: q.text(),
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "enrolment.html")]
struct EnrolmentPage {
    nav: Option<Nav>,
    csrf: String,
    d: EnrolmentDetail,
    /// The person's own: they mark lessons done.
    own: bool,
    times: LocalTimes,
    notice: Option<&'static str>,
    errors: Errors,
}

async fn enrolment_view(
    svc: &Learning,
    me: &SignedIn,
    id: Uuid,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let d = service::enrolment_detail(svc, me.ctx(), id).await?;
    render(
        &EnrolmentPage {
            nav: me.nav("learning"),
            csrf: me.csrf().to_string(),
            own: d.enrolment.user_id == me.session.user_id || manages(&me.session),
            d,
            times: me.session.times(),
            notice,
            errors,
        },
        status,
    )
}

/// An enrolment: its lessons with progress, and its history.
#[handler]
pub(super) async fn enrolment_page(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    enrolment_view(&svc, &me, id.0, q.text(), Errors::default(), StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "lesson.html")]
struct LessonPage {
    nav: Option<Nav>,
    csrf: String,
    d: EnrolmentDetail,
    lesson: Lesson,
    /// Its files.
    materials: Vec<Material>,
    /// The paragraphs of a text lesson.
    paragraphs: Vec<String>,
    done: Option<String>,
    previous: Option<Uuid>,
    next: Option<Uuid>,
    own: bool,
}

#[derive(Deserialize)]
pub(super) struct LessonPath {
    id: Uuid,
    lesson: Uuid,
}

/// The lesson player: one lesson of an enrolment's course, with marking it done and the way
/// to the lessons before and after it.
#[handler]
pub(super) async fn lesson_page(
    me: SignedIn,
    svc: Data<&Learning>,
    path: Path<LessonPath>,
) -> PageResult {
    let (d, lesson) = service::enrolment_lesson(&svc, me.ctx(), path.id, path.lesson).await?;
    // A course archived since one enrolled keeps its lessons, not its files.
    let materials = match service::lesson_materials(&svc, me.ctx(), lesson.id).await {
        Err(ApiError::NotFound) => Vec::new(),
        other => other?,
    };
    let at = d.lessons.iter().position(|l| l.lesson_id == lesson.id);
    let neighbour = |i: Option<usize>| i.and_then(|i| d.lessons.get(i)).map(|l| l.lesson_id);
    let previous = neighbour(at.and_then(|i| i.checked_sub(1)));
    let next = neighbour(at.map(|i| i + 1));
    let times = me.session.times();
    let done = at
        .and_then(|i| d.lessons[i].completed_at)
        .map(|t| times.day(t));
    render(
        &LessonPage {
            nav: me.nav("learning"),
            csrf: me.csrf().to_string(),
            own: d.enrolment.user_id == me.session.user_id || manages(&me.session),
            paragraphs: lesson
                .body
                .as_deref()
                .unwrap_or_default()
                .split("\n\n")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
            d,
            lesson,
            materials,
            done,
            previous,
            next,
        },
        StatusCode::OK,
    )
}

async fn after(
    svc: &Learning,
    me: &SignedIn,
    id: Uuid,
    result: Result<(), ApiError>,
    notice: &str,
) -> PageResult {
    match result {
        Ok(()) => Ok(
            Redirect::see_other(format!("/portal/enrolments/{id}?notice={notice}")).into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            enrolment_view(svc, me, id, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ProgressForm {
    #[serde(default)]
    lesson_id: String,
    /// Minutes spent, as typed.
    #[serde(default)]
    minutes: String,
}

/// Marks a lesson done (with the minutes spent on it).
#[handler]
pub(super) async fn record_progress(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<ProgressForm>,
) -> PageResult {
    let lesson = form.lesson_id.trim().parse::<Uuid>();
    let minutes = match form.minutes.trim() {
        "" => Ok(0),
        m => m.parse::<i32>().map_err(|_| ()),
    };
    let r = match (lesson, minutes) {
        (Err(_), _) => Err(ApiError::field("lesson_id", "choose a lesson")),
        (_, Err(())) => Err(ApiError::field("minutes", "must be a whole number")),
        (_, Ok(m)) if !(0..=1440).contains(&m) => {
            Err(ApiError::field("minutes", "must be between 0 and 1440"))
        }
        (Ok(lesson_id), Ok(m)) => service::record_progress(
            &svc,
            me.ctx(),
            id.0,
            ProgressReport {
                lesson_id,
                completed: true,
                seconds_spent: m * 60,
            },
            now(),
        )
        .await
        .map(drop),
    };
    after(&svc, &me, id.0, r, "progress").await
}

#[derive(Deserialize)]
pub(super) struct CancelForm {
    #[serde(default)]
    reason: String,
}

/// Cancels the enrolment.
#[handler]
pub(super) async fn cancel(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<CancelForm>,
) -> PageResult {
    let r = service::cancel_enrolment(&svc, me.ctx(), id.0, blank(&form.reason), now())
        .await
        .map(drop);
    after(&svc, &me, id.0, r, "cancelled").await
}

/// The progress changes the signed-in person may see, as server-sent events (`progress`, the
/// change as JSON), until they leave or the server shuts down. A subscriber that falls behind
/// is told to reload (`reload`).
#[handler]
pub(super) async fn live(me: SignedIn, svc: Data<&Learning>) -> poem::Result<SSE> {
    let scope = service::live_scope(&svc, me.ctx()).await?;
    let changes = svc.live.subscribe();
    let events = stream::unfold((changes, scope), |(mut changes, scope)| async move {
        loop {
            match changes.recv().await {
                Ok(change) if scope.admits(&change) => {
                    let data = serde_json::to_string(&*change).unwrap_or_default();
                    return Some((
                        Event::message(data).event_type("progress"),
                        (changes, scope),
                    ));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {
                    return Some((Event::message("{}").event_type("reload"), (changes, scope)))
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .take_until(svc.live.closed());
    Ok(SSE::new(events).keep_alive(Duration::from_secs(15)))
}

/// The few lines that follow the stream on the page.
#[handler]
pub(super) fn live_script() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header("cache-control", "public, max-age=3600")
        .body(include_str!("../../static/live.js"))
}
