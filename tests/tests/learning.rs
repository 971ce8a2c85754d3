//! Learning end to end through the API: the catalogue's rules (unique codes, ordered modules
//! within the course's duration, prerequisites without cycles), enrolment by oneself and by
//! assignment with the prerequisite check and the administrator's override, progress to
//! completion, cancelling, the expiry job, and imported completions counting as earned ones.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainflow_kernel::auth::Role;
use trainflow_tests::{
    csrf_of, email_of, id_of, short_unique, webdriver::Browser, TestApp, Which, PASSWORD,
};
use uuid::Uuid;

const A: Which = Which::A;

async fn course(app: &TestApp, code: &str, hours: Option<f64>) -> Uuid {
    let d = app
        .ok_as(
            A,
            Role::TrainingOfficer,
            Method::POST,
            "/api/v1/courses",
            Some(
                json!({"code": code, "title": format!("Course {code}"), "duration_hours": hours,
                        "category": "Safety", "status": "published"}),
            ),
        )
        .await;
    id_of(&d)
}

async fn call(
    app: &TestApp,
    role: Role,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = app.token(A, role).await;
    app.call(method, path, Some(&token), body).await
}

#[tokio::test]
async fn the_catalogue_keeps_codes_unique_modules_within_the_duration_and_drafts_hidden() {
    let app = TestApp::spawn().await;
    let code = format!("SAF-{}", short_unique());
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        "/api/v1/courses",
        Some(json!({"code": code, "title": "Working at height", "duration_hours": 3})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["data"]["status"], "draft");
    let id = id_of(&b["data"]);
    // A draft is the catalogue builders' only.
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = call(
        &app,
        Role::Employee,
        Method::GET,
        "/api/v1/courses?q=height",
        None,
    )
    .await;
    assert_eq!(list["meta"]["total"], 0, "{list}");
    // The same code again is a conflict on `code`.
    let (s, b) = call(
        &app,
        Role::Administrator,
        Method::POST,
        "/api/v1/courses",
        Some(json!({"code": code, "title": "Another"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        b["error"]["fields"]["code"].as_array().map(Vec::len),
        Some(1),
        "{b}"
    );
    // Modules: ordered, a position taken is a conflict, hours stay within the course's.
    let modules = format!("/api/v1/courses/{id}/modules");
    let (s, m1) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &modules,
        Some(json!({"title": "Harnesses", "duration_hours": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m1}");
    assert_eq!(m1["data"]["position"], 1);
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &modules,
        Some(json!({"title": "Ladders", "duration_hours": 1.5})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["fields"]["duration_hours"][0]
            .as_str()
            .unwrap()
            .contains("at most 1 left"),
        "{b}"
    );
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &modules,
        Some(json!({"title": "Ladders", "duration_hours": 1, "position": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(b["error"]["fields"]["position"].is_array(), "{b}");
    let (s, m2) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &modules,
        Some(json!({"title": "Ladders", "duration_hours": 1})),
    )
    .await;
    assert_eq!(
        (s, m2["data"]["position"].as_i64()),
        (StatusCode::CREATED, Some(2)),
        "{m2}"
    );
    // The course cannot shrink below its modules.
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::PATCH,
        &format!("/api/v1/courses/{id}"),
        Some(json!({"duration_hours": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // Lessons: a link lesson needs its address; a bad one names the field.
    let module = id_of(&m1["data"]);
    let lessons = format!("/api/v1/modules/{module}/lessons");
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &lessons,
        Some(json!({"title": "Video", "kind": "link"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["url"].is_array(), "{b}");
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &lessons,
        Some(json!({"title": "Video", "kind": "link", "url": "ftp://x"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, l) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &lessons,
        Some(json!({"title": "Video", "kind": "link", "url": "https://example.com/harness"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    // Nothing half-applied: the refused calls left one lesson and two modules.
    let (_, detail) = call(
        &app,
        Role::TrainingOfficer,
        Method::GET,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    assert_eq!(
        detail["data"]["modules"].as_array().unwrap().len(),
        2,
        "{detail}"
    );
    assert_eq!(
        detail["data"]["modules"][0]["lessons"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Published, people find it by a word of its title, any case.
    call(
        &app,
        Role::TrainingOfficer,
        Method::PATCH,
        &format!("/api/v1/courses/{id}"),
        Some(json!({"status": "published"})),
    )
    .await;
    let (_, list) = call(
        &app,
        Role::Employee,
        Method::GET,
        "/api/v1/courses?q=HEIGHT",
        None,
    )
    .await;
    assert_eq!(list["meta"]["total"], 1, "{list}");
    let (_, list) = call(
        &app,
        Role::Employee,
        Method::GET,
        "/api/v1/courses?q=height%25",
        None,
    )
    .await;
    assert_eq!(list["meta"]["total"], 0, "a % is taken literally: {list}");
    // Soft delete and restore.
    let (s, _) = call(
        &app,
        Role::TrainingOfficer,
        Method::DELETE,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &app,
        Role::TrainingOfficer,
        Method::GET,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, deleted) = call(
        &app,
        Role::TrainingOfficer,
        Method::GET,
        "/api/v1/courses?deleted=true",
        None,
    )
    .await;
    assert_eq!(deleted["meta"]["total"], 1, "{deleted}");
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &format!("/api/v1/courses/{id}/restore"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["title"], "Working at height");
}

#[tokio::test]
async fn a_prerequisite_that_would_close_a_cycle_is_refused_naming_it_and_the_tree_shows_the_rest()
{
    let app = TestApp::spawn().await;
    let u = short_unique();
    let (a, b, c) = (
        course(&app, &format!("A-{u}"), None).await,
        course(&app, &format!("B-{u}"), None).await,
        course(&app, &format!("C-{u}"), None).await,
    );
    let add = |course: Uuid, requires: Uuid| {
        let app = &app;
        async move {
            call(
                app,
                Role::TrainingOfficer,
                Method::POST,
                &format!("/api/v1/courses/{course}/prerequisites"),
                Some(json!({"required_course_id": requires})),
            )
            .await
        }
    };
    assert_eq!(add(a, b).await.0, StatusCode::OK);
    assert_eq!(add(b, c).await.0, StatusCode::OK);
    let (s, body) = add(c, a).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["fields"]["required_course_id"][0]
        .as_str()
        .unwrap();
    assert!(
        message.contains(&format!("C-{u} → A-{u} → B-{u} → C-{u}")),
        "{message}"
    );
    let (s, body) = add(a, a).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = add(a, Uuid::new_v4()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The tree: B at depth 1, C under it.
    let (_, tree) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{a}/prerequisites"),
        None,
    )
    .await;
    let lines: Vec<(String, i64)> = tree["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["course"]["code"].as_str().unwrap().to_string(),
                t["depth"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines, vec![(format!("B-{u}"), 1), (format!("C-{u}"), 2)]);
    // Removing an edge that is not there is a 404; removing B → C opens C → A.
    let (s, _) = call(
        &app,
        Role::TrainingOfficer,
        Method::DELETE,
        &format!("/api/v1/courses/{c}/prerequisites/{a}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        Role::TrainingOfficer,
        Method::DELETE,
        &format!("/api/v1/courses/{b}/prerequisites/{c}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(add(c, a).await.0, StatusCode::OK);
}

#[tokio::test]
async fn people_enrol_learn_and_complete_and_assignments_respect_prerequisites() {
    let app = TestApp::spawn().await;
    let employee = app.a.people[&Role::Employee];
    app.set_reporting_lines(
        A,
        employee,
        Some(app.a.people[&Role::Foreman]),
        Some(app.a.people[&Role::Manager]),
    )
    .await;
    let u = short_unique();
    let basics = course(&app, &format!("BAS-{u}"), None).await;
    let advanced = course(&app, &format!("ADV-{u}"), None).await;
    call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &format!("/api/v1/courses/{advanced}/prerequisites"),
        Some(json!({"required_course_id": basics})),
    )
    .await;
    let module = id_of(
        &call(
            &app,
            Role::TrainingOfficer,
            Method::POST,
            &format!("/api/v1/courses/{basics}/modules"),
            Some(json!({"title": "Only module"})),
        )
        .await
        .1["data"],
    );
    let mut lessons = Vec::new();
    for (title, required) in [("One", true), ("Two", true), ("Extra", false)] {
        let (_, l) = call(
            &app,
            Role::TrainingOfficer,
            Method::POST,
            &format!("/api/v1/modules/{module}/lessons"),
            Some(json!({"title": title, "body": "Text", "required": required})),
        )
        .await;
        lessons.push(id_of(&l["data"]));
    }
    // The advanced course needs the basics first.
    let (s, b) = call(
        &app,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/courses/{advanced}/enrol"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        b["error"]["fields"]["prerequisites"][0]
            .as_str()
            .unwrap()
            .contains(&format!("BAS-{u}")),
        "{b}"
    );
    // A manager's assignment skips the employee for the same reason; only an administrator
    // overrides, and the override is kept.
    let assign = format!("/api/v1/courses/{advanced}/assignments");
    let (s, b) = call(
        &app,
        Role::Manager,
        Method::POST,
        &assign,
        Some(json!({"user_ids": [employee]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["enrolled"].as_array().unwrap().len(), 0);
    assert!(
        b["data"]["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("prerequisites"),
        "{b}"
    );
    let (s, _) = call(
        &app,
        Role::Manager,
        Method::POST,
        &assign,
        Some(json!({"user_ids": [employee], "override_reason": "Experienced"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A manager may not reach beyond their team, or a whole role.
    let outsider = app.fresh_user(A).await;
    let (s, _) = call(
        &app,
        Role::Manager,
        Method::POST,
        &assign,
        Some(json!({"user_ids": [outsider]})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        Role::Manager,
        Method::POST,
        &assign,
        Some(json!({"role": "employee"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(&app, Role::Manager, Method::POST, &assign, Some(json!({}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["user_ids"].is_array(), "{b}");
    let (s, b) = call(
        &app,
        Role::Manager,
        Method::POST,
        &assign,
        Some(json!({"user_ids": [employee], "due_on": "2001-01-01"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["due_on"].is_array(), "{b}");

    // The basics: enrol, learn, complete.
    let (s, e) = call(
        &app,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/courses/{basics}/enrol"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    assert_eq!(e["data"]["status"], "scheduled");
    let enrolment = id_of(&e["data"]);
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/courses/{basics}/enrol"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "enrolled once");
    let progress = format!("/api/v1/enrolments/{enrolment}/progress");
    let (s, d) = call(
        &app,
        Role::Employee,
        Method::POST,
        &progress,
        Some(json!({"lesson_id": lessons[0], "completed": true, "seconds_spent": 120})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(
        (
            d["data"]["enrolment"]["status"].as_str(),
            d["data"]["enrolment"]["progress_percent"].as_i64()
        ),
        (Some("in_progress"), Some(50)),
        "{d}"
    );
    // The foreman watches but does not record; a lesson of another course is refused.
    let (s, _) = call(
        &app,
        Role::Foreman,
        Method::POST,
        &progress,
        Some(json!({"lesson_id": lessons[1], "completed": true})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(
        &app,
        Role::Employee,
        Method::POST,
        &progress,
        Some(json!({"lesson_id": Uuid::new_v4()})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["lesson_id"].is_array());
    let (s, d) = call(
        &app,
        Role::Employee,
        Method::POST,
        &progress,
        Some(json!({"lesson_id": lessons[1], "completed": true, "seconds_spent": 60})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["data"]["enrolment"]["status"], "completed", "{d}");
    assert_eq!(d["data"]["enrolment"]["progress_percent"], 100);
    let events: Vec<&str> = d["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["scheduled", "in_progress", "completed"]);
    // Completed: no more progress, no cancelling.
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::POST,
        &progress,
        Some(json!({"lesson_id": lessons[2], "completed": true})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The manager sees it in the team's list.
    let (_, team) = call(
        &app,
        Role::Manager,
        Method::GET,
        "/api/v1/enrolments?whose=team",
        None,
    )
    .await;
    assert_eq!(team["meta"]["total"], 1, "{team}");
    let (s, _) = call(
        &app,
        Role::Manager,
        Method::GET,
        "/api/v1/enrolments?whose=all",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Now the assignment goes through, with its due date, and the person is told.
    let (s, b) = call(
        &app,
        Role::Manager,
        Method::POST,
        &assign,
        Some(json!({"user_ids": [employee], "due_on": "2999-06-30"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let assigned = &b["data"]["enrolled"][0];
    assert_eq!(
        (assigned["source"].as_str(), assigned["due_on"].as_str()),
        (Some("assigned"), Some("2999-06-30")),
        "{b}"
    );
    let (_, inbox) = call(
        &app,
        Role::Employee,
        Method::GET,
        "/api/v1/notifications",
        None,
    )
    .await;
    assert!(inbox.to_string().contains("New course"), "{inbox}");
    // An assigned course is not the person's to cancel; their manager cancels it.
    let id = id_of(assigned);
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/enrolments/{id}/cancel"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, c) = call(
        &app,
        Role::Manager,
        Method::POST,
        &format!("/api/v1/enrolments/{id}/cancel"),
        Some(json!({"reason": "Rescheduled"})),
    )
    .await;
    assert_eq!(
        (s, c["data"]["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{c}"
    );
    // Courses people are enrolled in cannot be deleted; archive them instead.
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/courses/{advanced}/enrol"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::DELETE,
        &format!("/api/v1/courses/{advanced}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
}

#[tokio::test]
async fn the_expiry_job_expires_overdue_enrolments_once_and_tells_the_person_and_their_manager() {
    let app = TestApp::spawn().await;
    let employee = app.a.people[&Role::Employee];
    app.set_reporting_lines(A, employee, None, Some(app.a.people[&Role::Manager]))
        .await;
    let (course, _, _) = app.fresh_course(A).await;
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &format!("/api/v1/courses/{course}/assignments"),
        Some(json!({"user_ids": [employee], "due_on": "2999-01-01"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = id_of(&b["data"]["enrolled"][0]);
    // The day before the due date nothing happens; the day after, it expires — once.
    let before = time::macros::datetime!(2998-12-31 12:00 UTC);
    let after = time::macros::datetime!(2999-01-02 12:00 UTC);
    assert_eq!(
        app.learning
            .expire_enrolments(before)
            .await
            .unwrap()
            .expired,
        0
    );
    let first = app.learning.expire_enrolments(after).await.unwrap();
    assert_eq!((first.expired, first.notified), (1, 2), "{first:?}");
    assert_eq!(
        app.learning.expire_enrolments(after).await.unwrap().expired,
        0
    );
    let (_, d) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/enrolments/{id}"),
        None,
    )
    .await;
    assert_eq!(d["data"]["enrolment"]["status"], "expired", "{d}");
    assert_eq!(d["data"]["events"][1]["reason"], "the due date passed");
    let (_, inbox) = call(
        &app,
        Role::Manager,
        Method::GET,
        "/api/v1/notifications",
        None,
    )
    .await;
    assert!(inbox.to_string().contains("Overdue course"), "{inbox}");
}

/// Reads server-sent events from `resp` until one of type `progress` arrives (its data), or
/// `wait` passes (none).
async fn next_progress(resp: &mut reqwest::Response, wait: std::time::Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buffer = String::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .ok()?
            .ok()??;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let kind = event.lines().find_map(|l| l.strip_prefix("event: "));
            let data = event.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some("progress"), Some(data)) = (kind, data) {
                return serde_json::from_str(data).ok();
            }
        }
    }
}

#[tokio::test]
async fn progress_reaches_the_open_pages_of_those_who_may_see_it_and_no_one_else() {
    let app = TestApp::spawn().await;
    let employee = app.a.people[&Role::Employee];
    app.set_reporting_lines(A, employee, None, Some(app.a.people[&Role::Manager]))
        .await;
    let (enrolment, lesson) = app.fresh_enrolment(A, Role::Employee).await;
    // The manager's page and the trainer's (who may not see it) and tenant B's administrator's
    // are open before the progress is recorded.
    let open = |which: Which, role: Role| {
        let app = &app;
        async move {
            let client = app.portal_client(which, role).await;
            let resp = client
                .get(format!("{}/portal/learning/live", app.base))
                .send()
                .await
                .expect("stream");
            assert_eq!(resp.status(), StatusCode::OK);
            assert!(resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream"));
            resp
        }
    };
    let mut manager = open(A, Role::Manager).await;
    let mut trainer = open(A, Role::Trainer).await;
    let mut other_tenant = open(Which::B, Role::Administrator).await;
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/enrolments/{enrolment}/progress"),
        Some(json!({"lesson_id": lesson, "completed": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let seen = next_progress(&mut manager, std::time::Duration::from_secs(10))
        .await
        .expect("the manager's page hears of the progress");
    assert_eq!(seen["enrolment"], enrolment.to_string());
    assert_eq!(
        (seen["percent"].as_i64(), seen["status"].as_str()),
        (Some(100), Some("completed")),
        "{seen}"
    );
    let quiet = std::time::Duration::from_millis(500);
    assert!(
        next_progress(&mut trainer, quiet).await.is_none(),
        "the trainer does not see it"
    );
    assert!(
        next_progress(&mut other_tenant, quiet).await.is_none(),
        "nor does another tenant"
    );
    // Signed out, there is no stream.
    let (s, _) = app.portal_get(&app.client, "/portal/learning/live").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_calendar_shows_due_dates_renewals_and_expiries_and_its_feed_is_rfc_5545() {
    let app = TestApp::spawn().await;
    let employee = app.a.people[&Role::Employee];
    let (course, _, _) = app.fresh_course(A).await;
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &format!("/api/v1/courses/{course}/assignments"),
        Some(json!({"user_ids": [employee], "due_on": "2999-03-01"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A 12-month certification issued 2026-06-01 (valid to 2027-05-31): renewal due 90 days
    // before it expires.
    app.fresh_certification(A, employee).await;
    let (_, cal) = call(&app, Role::Employee, Method::GET, "/api/v1/calendar", None).await;
    let items = cal["data"]["items"].as_array().unwrap().clone();
    let dated: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["date"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        dated.contains(&("renewal_due".into(), "2027-03-02".into())),
        "{dated:?}"
    );
    assert!(
        dated.contains(&("certification_expires".into(), "2027-05-31".into())),
        "{dated:?}"
    );
    assert!(
        dated.contains(&("enrolment_due".into(), "2999-03-01".into())),
        "{dated:?}"
    );
    assert!(cal["data"].get("feed_issued_at").is_none());

    // The feed: a secret address, opened without a session, parsed as RFC 5545.
    let (s, f) = call(
        &app,
        Role::Employee,
        Method::PUT,
        "/api/v1/calendar/feed",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let url = f["data"]["url"].as_str().unwrap().to_string();
    // The address is on the public URL; the path is what this server answers.
    let path = url[url.find("/portal/calendar/feed/").expect("a feed path")..].to_string();
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/calendar"));
    let text = resp.text().await.unwrap();
    assert!(text.contains("DTSTART;VALUE=DATE:29990301"), "{text}");
    let parsed: icalendar::Calendar = text.parse().expect("the feed parses as iCalendar");
    let summaries: Vec<String> = parsed
        .components
        .iter()
        .filter_map(|c| match c {
            icalendar::CalendarComponent::Event(e) => {
                use icalendar::Component;
                e.get_summary().map(str::to_string)
            }
            _ => None,
        })
        .collect();
    assert_eq!(summaries.len(), items.len(), "{text}");
    assert!(
        summaries.contains(&"Due: Fixture course".to_string()),
        "{summaries:?}"
    );
    // A new address revokes the old one; revoking leaves none; a forged one is not found.
    let (_, again) = call(
        &app,
        Role::Employee,
        Method::PUT,
        "/api/v1/calendar/feed",
        None,
    )
    .await;
    let again = again["data"]["url"].as_str().unwrap();
    let new_path = again[again.find("/portal/calendar/feed/").unwrap()..].to_string();
    let status = |p: String| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}{p}", app.base))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(path.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(status(new_path.clone()).await, StatusCode::OK);
    let forged = new_path.replace(
        &app.a.id.simple().to_string(),
        &app.b.id.simple().to_string(),
    );
    assert_eq!(status(forged).await, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::DELETE,
        "/api/v1/calendar/feed",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(status(new_path).await, StatusCode::NOT_FOUND);
    let (_, cal) = call(&app, Role::Employee, Method::GET, "/api/v1/calendar", None).await;
    assert!(cal["data"].get("feed_issued_at").is_none(), "{cal}");
}

#[tokio::test]
async fn teams_follow_roles_drafts_stay_hidden_and_assessments_do_not_hold_completion_back() {
    let app = TestApp::spawn().await;
    let u = short_unique();
    // An employee on whom a reporting line still points sees no team of theirs.
    let employee = app.a.people[&Role::Employee];
    let trainer = app.a.people[&Role::Trainer];
    app.set_reporting_lines(A, trainer, Some(employee), None)
        .await;
    let (_, enrolment) = {
        let (course, _, _) = app.fresh_course(A).await;
        let (s, b) = call(
            &app,
            Role::Trainer,
            Method::POST,
            &format!("/api/v1/courses/{course}/enrol"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        (course, id_of(&b["data"]))
    };
    let (_, team) = call(
        &app,
        Role::Employee,
        Method::GET,
        "/api/v1/enrolments?whose=team",
        None,
    )
    .await;
    assert_eq!(team["meta"]["total"], 0, "{team}");
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/enrolments/{enrolment}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A training officer cancels even an enrolment assigned to themselves.
    let (course, _, _) = app.fresh_course(A).await;
    let officer = app.a.people[&Role::TrainingOfficer];
    let (_, b) = call(
        &app,
        Role::Administrator,
        Method::POST,
        &format!("/api/v1/courses/{course}/assignments"),
        Some(json!({"user_ids": [officer]})),
    )
    .await;
    let assigned = id_of(&b["data"]["enrolled"][0]);
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &format!("/api/v1/enrolments/{assigned}/cancel"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A draft prerequisite is not shown to, nor asked of, people who could not take it.
    let published = course;
    let draft = id_of(
        &call(
            &app,
            Role::TrainingOfficer,
            Method::POST,
            "/api/v1/courses",
            Some(json!({"code": format!("DRAFT-{u}"), "title": "Secret draft"})),
        )
        .await
        .1["data"],
    );
    call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &format!("/api/v1/courses/{published}/prerequisites"),
        Some(json!({"required_course_id": draft})),
    )
    .await;
    let (_, tree) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{published}/prerequisites"),
        None,
    )
    .await;
    assert_eq!(tree["data"].as_array().unwrap().len(), 0, "{tree}");
    let (_, detail) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{published}"),
        None,
    )
    .await;
    assert!(!detail.to_string().contains("Secret draft"), "{detail}");
    let (s, b) = call(
        &app,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/courses/{published}/enrol"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, tree) = call(
        &app,
        Role::TrainingOfficer,
        Method::GET,
        &format!("/api/v1/courses/{published}/prerequisites"),
        None,
    )
    .await;
    assert_eq!(tree["data"].as_array().unwrap().len(), 1, "{tree}");
    // An assessment lesson is optional until quizzes can be taken.
    let (_, module, _) = app.fresh_course(A).await;
    let lessons = format!("/api/v1/modules/{module}/lessons");
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &lessons,
        Some(json!({"title": "Quiz", "kind": "assessment", "required": true})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["required"].is_array(), "{b}");
    let (s, b) = call(
        &app,
        Role::TrainingOfficer,
        Method::POST,
        &lessons,
        Some(json!({"title": "Quiz", "kind": "assessment"})),
    )
    .await;
    assert_eq!(
        (s, b["data"]["required"].as_bool()),
        (StatusCode::CREATED, Some(false)),
        "{b}"
    );
    // The portal's pages carry a plain title.
    let client = app.portal_client(A, Role::Employee).await;
    let (_, page) = app.portal_get(&client, "/portal/learning").await;
    assert!(
        page.contains("<title>My learning · TrainFlow</title>"),
        "{}",
        &page[..400.min(page.len())]
    );
}

/// The answers to `attempt`'s questions: right ones for every question (the prompts say which
/// option is right: `right`, `also right`, or the accepted text), or wrong ones.
fn answers(attempt: &Value, right: bool) -> Value {
    let qs = attempt["questions"].as_array().expect("questions");
    let out: Vec<Value> = qs
        .iter()
        .map(|q| {
            let options: Vec<&str> = q["options"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap())
                .collect();
            let pick = |pred: &dyn Fn(&str) -> bool| -> Vec<usize> {
                options
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| pred(o))
                    .map(|(i, _)| i)
                    .collect()
            };
            let id = q["question_id"].clone();
            match (q["kind"].as_str().unwrap(), right) {
                ("short_answer", true) => json!({"question_id": id, "text": " LOCK out, tag OUT. "}),
                ("short_answer", false) => json!({"question_id": id, "text": "ask someone"}),
                ("true_false", r) => {
                    json!({"question_id": id, "choices": pick(&|o| (o == "True") != r)})
                }
                (_, true) => json!({"question_id": id, "choices": pick(&|o| o.contains("right"))}),
                (_, false) => json!({"question_id": id, "choices": pick(&|o| o.starts_with("wrong"))[..1].to_vec()}),
            }
        })
        .collect();
    json!({ "answers": out })
}

#[tokio::test]
async fn a_quiz_hides_its_answers_until_submitted_and_passing_it_issues_a_verifiable_certificate_that_renews(
) {
    let app = TestApp::spawn().await;
    let to = Role::TrainingOfficer;
    let code = format!("Q{}", short_unique());
    let c = app
        .ok_as(
            A,
            to,
            Method::POST,
            "/api/v1/courses",
            Some(
                json!({"code": code, "title": "Lockout and tagout", "status": "published",
                        "certificate_months": 12}),
            ),
        )
        .await;
    let course = id_of(&c);
    assert_eq!(c["certificate_months"], 12);
    let m = app
        .ok_as(
            A,
            to,
            Method::POST,
            &format!("/api/v1/courses/{course}/modules"),
            Some(json!({"title": "Basics"})),
        )
        .await;
    let module = id_of(&m);
    let reading = id_of(
        &app.ok_as(
            A,
            to,
            Method::POST,
            &format!("/api/v1/modules/{module}/lessons"),
            Some(json!({"title": "Read the procedure", "kind": "text", "body": "Isolate, lock, tag, test."})),
        )
        .await,
    );
    let quiz_lesson = id_of(
        &app.ok_as(
            A,
            to,
            Method::POST,
            &format!("/api/v1/modules/{module}/lessons"),
            Some(json!({"title": "Check yourself", "kind": "assessment"})),
        )
        .await,
    );

    // A bank of four kinds of question; a question that does not hold together names its field.
    let bank = id_of(
        &app.ok_as(
            A,
            to,
            Method::POST,
            &format!("/api/v1/courses/{course}/question-banks"),
            Some(json!({"name": "Lockout"})),
        )
        .await,
    );
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &format!("/api/v1/courses/{course}/question-banks"),
        Some(json!({"name": "Lockout"})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["name"].is_array()),
        (StatusCode::CONFLICT, true),
        "{b}"
    );
    let questions = [
        json!({"kind": "single_choice", "prompt": "First step?", "points": 2,
               "options": ["wrong: test", "right: isolate", "wrong: tag"], "correct_options": [1]}),
        json!({"kind": "multiple_choice", "prompt": "Which are needed?",
               "options": ["right: lock", "wrong: hope", "also right: tag"], "correct_options": [0, 2]}),
        json!({"kind": "true_false", "prompt": "A tag alone is enough.", "correct_options": [1]}),
        json!({"kind": "short_answer", "prompt": "Name the procedure.",
               "accepted_answers": ["Lock out, tag out", "LOTO"]}),
    ];
    for q in questions {
        app.ok_as(
            A,
            to,
            Method::POST,
            &format!("/api/v1/question-banks/{bank}/questions"),
            Some(q),
        )
        .await;
    }
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &format!("/api/v1/question-banks/{bank}/questions"),
        Some(
            json!({"kind": "single_choice", "prompt": "Two right?", "options": ["a", "b"],
                    "correct_options": [0, 1]}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["correct_options"].is_array(), "{b}");
    let detail = app
        .ok_as(
            A,
            to,
            Method::GET,
            &format!("/api/v1/question-banks/{bank}"),
            None,
        )
        .await;
    assert_eq!(detail["questions"].as_array().unwrap().len(), 4);
    assert_eq!(detail["bank"]["question_count"], 4);

    // Only an assessment lesson has a quiz; setting it makes the lesson count.
    let quiz =
        json!({"bank_id": bank, "max_attempts": 3, "pass_percent": 75, "time_limit_minutes": 30});
    let (s, b) = call(
        &app,
        to,
        Method::PUT,
        &format!("/api/v1/lessons/{reading}/quiz"),
        Some(quiz.clone()),
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["kind"].is_array()),
        (StatusCode::CONFLICT, true),
        "{b}"
    );
    app.ok_as(
        A,
        to,
        Method::PUT,
        &format!("/api/v1/lessons/{quiz_lesson}/quiz"),
        Some(quiz),
    )
    .await;
    let (s, b) = call(
        &app,
        to,
        Method::DELETE,
        &format!("/api/v1/question-banks/{bank}"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["bank_id"].is_array()),
        (StatusCode::CONFLICT, true),
        "{b}"
    );

    // A certification type that requires the course.
    let cert_type = id_of(
        &app.ok_as(
            A,
            Role::Administrator,
            Method::POST,
            "/api/v1/certification-types",
            Some(
                json!({"code": format!("LOTO{}", short_unique()), "name": "Lockout authorisation",
                        "validity_months": 24, "required_courses": [course]}),
            ),
        )
        .await,
    );

    // The employee needs an enrolment to start.
    let me = Role::Employee;
    let (s, b) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/v1/lessons/{quiz_lesson}/attempts"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["enrolment"].is_array()),
        (StatusCode::CONFLICT, true),
        "{b}"
    );
    let enrolment = id_of(
        &app.ok_as(
            A,
            me,
            Method::POST,
            &format!("/api/v1/courses/{course}/enrol"),
            None,
        )
        .await,
    );
    let view = app
        .ok_as(
            A,
            me,
            Method::GET,
            &format!("/api/v1/lessons/{quiz_lesson}/quiz"),
            None,
        )
        .await;
    assert_eq!(
        (
            view["attempts_left"].clone(),
            view["questions_per_attempt"].clone()
        ),
        (json!(3), json!(4))
    );

    // The paper carries no answers; starting again hands back the same attempt.
    let (s, first) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/v1/lessons/{quiz_lesson}/attempts"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let first = first["data"].clone();
    let text = first.to_string();
    for secret in ["correct_options", "accepted_answers", "LOTO", "right\":"] {
        assert!(!text.contains(secret), "the paper shows {secret}: {text}");
    }
    assert!(first["deadline_at"].is_string());
    let again = app
        .ok_as(
            A,
            me,
            Method::POST,
            &format!("/api/v1/lessons/{quiz_lesson}/attempts"),
            None,
        )
        .await;
    assert_eq!(again["id"], first["id"]);
    let attempt = first["id"].as_str().unwrap().to_string();

    // Answers that are not the paper's name their field; wrong answers fail; the review shows
    // what was right; a second submission changes nothing.
    let stranger = json!({"answers": [{"question_id": Uuid::now_v7(), "choices": [0]}]});
    let (s, b) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/v1/quiz-attempts/{attempt}/submit"),
        Some(stranger),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["fields"]["answers[0].question_id"].is_array(),
        "{b}"
    );
    let (s, b) = call(
        &app,
        Role::Manager,
        Method::POST,
        &format!("/api/v1/quiz-attempts/{attempt}/submit"),
        Some(answers(&first, true)),
    )
    .await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "{s} {b}"
    );
    let failed = app
        .ok_as(
            A,
            me,
            Method::POST,
            &format!("/api/v1/quiz-attempts/{attempt}/submit"),
            Some(answers(&first, false)),
        )
        .await;
    assert_eq!(
        (
            failed["status"].clone(),
            failed["passed"].clone(),
            failed["score"].clone()
        ),
        (json!("submitted"), json!(false), json!(0)),
        "{failed}"
    );
    assert!(
        failed["questions"][0]["correct_options"].is_array(),
        "{failed}"
    );
    let (s, b) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/v1/quiz-attempts/{attempt}/submit"),
        Some(answers(&first, true)),
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["status"].is_array()),
        (StatusCode::CONFLICT, true),
        "{b}"
    );
    let review = app
        .ok_as(
            A,
            me,
            Method::GET,
            &format!("/api/v1/quiz-attempts/{attempt}"),
            None,
        )
        .await;
    assert_eq!(
        (review["score"].clone(), review["passed"].clone()),
        (json!(0), json!(false))
    );

    // The second attempt passes; the course is not complete until the reading is done too.
    let second = app
        .ok_as(
            A,
            me,
            Method::POST,
            &format!("/api/v1/lessons/{quiz_lesson}/attempts"),
            None,
        )
        .await;
    assert_eq!(second["number"], 2);
    let passed = app
        .ok_as(
            A,
            me,
            Method::POST,
            &format!(
                "/api/v1/quiz-attempts/{}/submit",
                second["id"].as_str().unwrap()
            ),
            Some(answers(&second, true)),
        )
        .await;
    assert_eq!(
        (
            passed["passed"].clone(),
            passed["percent"].clone(),
            passed["score"].clone()
        ),
        (json!(true), json!(100), json!(5)),
        "{passed}"
    );
    let (s, b) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/v1/lessons/{quiz_lesson}/attempts"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["passed"].is_array()),
        (StatusCode::CONFLICT, true),
        "{b}"
    );
    let e = app
        .ok_as(
            A,
            me,
            Method::GET,
            &format!("/api/v1/enrolments/{enrolment}"),
            None,
        )
        .await;
    assert_eq!(
        (
            e["enrolment"]["status"].clone(),
            e["enrolment"]["progress_percent"].clone()
        ),
        (json!("in_progress"), json!(50)),
        "{e}"
    );
    let (s, b) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/v1/enrolments/{enrolment}/progress"),
        Some(json!({"lesson_id": quiz_lesson, "completed": true})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["completed"].is_array()),
        (StatusCode::UNPROCESSABLE_ENTITY, true),
        "{b}"
    );
    let done = app
        .ok_as(
            A,
            me,
            Method::POST,
            &format!("/api/v1/enrolments/{enrolment}/progress"),
            Some(json!({"lesson_id": reading, "completed": true, "seconds_spent": 60})),
        )
        .await;
    assert_eq!(done["enrolment"]["status"], "completed", "{done}");

    // The certificate: valid for the course's twelve months, a PDF, and a public check.
    let list = app
        .ok_as(A, me, Method::GET, "/api/v1/certificates", None)
        .await;
    let cert = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["course_id"] == json!(course))
        .expect("a certificate")
        .clone();
    assert_eq!(cert["status"], "valid");
    let issued: time::Date = serde_json::from_value(cert["issued_on"].clone()).unwrap();
    let until: time::Date = serde_json::from_value(cert["valid_until"].clone()).unwrap();
    assert!(
        (until - issued).whole_days() >= 365 && (until - issued).whole_days() <= 366,
        "{cert}"
    );
    let token = app.token(A, me).await;
    let pdf = app
        .client
        .get(format!(
            "{}/api/v1/certificates/{}/pdf",
            app.base,
            cert["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"%PDF-") && bytes.len() > 1000,
        "{} bytes",
        bytes.len()
    );
    let code = cert["code"].as_str().unwrap().to_string();
    let (s, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/verifications/{}", code.to_lowercase()),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["data"]["status"].clone(),
            v["data"]["course_title"].clone()
        ),
        (json!("valid"), json!("Lockout and tagout"))
    );
    assert!(
        v["data"].get("user_id").is_none() && v["data"].get("id").is_none(),
        "{v}"
    );
    let (s, _) = app
        .call(
            Method::GET,
            "/api/v1/verifications/0000-0000-0000-0000",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(Method::GET, "/api/v1/verifications/abc", None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Tenant B's administrator does not see it; the public check does not need a tenant.
    let (s, _) = {
        let b_admin = app.token(Which::B, Role::Administrator).await;
        app.call(
            Method::GET,
            &format!("/api/v1/certificates/{}", cert["id"].as_str().unwrap()),
            Some(&b_admin),
            None,
        )
        .await
    };
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Completing the required course renewed the certification: a cycle from today.
    let employee = app.a.people[&Role::Employee];
    let certs = app
        .ok_as(
            A,
            Role::Administrator,
            Method::GET,
            &format!("/api/v1/certifications?user_id={employee}&type_id={cert_type}"),
            None,
        )
        .await;
    let cycles = certs.as_array().unwrap();
    assert_eq!(cycles.len(), 1, "{certs}");
    assert_eq!(cycles[0]["issued_on"], cert["issued_on"]);

    // Revoked, the check says so; restored, valid again.
    let id = cert["id"].as_str().unwrap();
    app.ok_as(
        A,
        to,
        Method::POST,
        &format!("/api/v1/certificates/{id}/revoke"),
        Some(json!({"reason": "Issued in error"})),
    )
    .await;
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/verifications/{code}"),
            None,
            None,
        )
        .await;
    assert_eq!(v["data"]["status"], "revoked");
    assert!(!v.to_string().contains("Issued in error"));
    let (s, _) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/v1/certificates/{id}/revoke"),
        Some(json!({"reason": "mine"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.ok_as(
        A,
        to,
        Method::POST,
        &format!("/api/v1/certificates/{id}/restore"),
        None,
    )
    .await;
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/verifications/{code}"),
            None,
            None,
        )
        .await;
    assert_eq!(v["data"]["status"], "valid");
}

/// What the training officer of tenant A creates by posting `body` to `path`: its id.
async fn built(app: &TestApp, path: String, body: Value) -> Uuid {
    id_of(
        &app.ok_as(A, Role::TrainingOfficer, Method::POST, &path, Some(body))
            .await,
    )
}

/// Signs `browser` in as `role` of tenant A.
async fn browser_sign_in(app: &TestApp, browser: &Browser, role: Role) {
    browser.goto(&format!("{}/portal/login", app.base)).await;
    browser.fill("#organisation", &app.a.slug).await;
    browser.fill("#email", &email_of(&app.a.slug, role)).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    assert!(
        browser.wait_for_text("Welcome,").await,
        "signed in: {}",
        browser.source().await
    );
}

/// Waits (up to 10 s) until `script` (a function body) returns true in `browser`'s page.
async fn wait_until(browser: &Browser, script: &str) -> bool {
    for _ in 0..100 {
        if browser.script(script).await == Value::Bool(true) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn in_a_browser_a_person_enrols_learns_passes_the_quiz_and_downloads_a_certificate_anyone_can_check_while_their_manager_watches_live(
) {
    let app = TestApp::spawn().await;
    let employee = app.a.people[&Role::Employee];
    app.set_reporting_lines(A, employee, None, Some(app.a.people[&Role::Manager]))
        .await;
    // The course, built through the API: a reading and a quiz of two questions.
    let title = format!("Confined spaces {}", short_unique());
    let course = built(
        &app,
        "/api/v1/courses".into(),
        json!({"code": short_unique(), "title": title, "status": "published",
               "certificate_months": 6}),
    )
    .await;
    let module = built(
        &app,
        format!("/api/v1/courses/{course}/modules"),
        json!({"title": "Entering safely"}),
    )
    .await;
    let lessons = format!("/api/v1/modules/{module}/lessons");
    let reading = built(
        &app,
        lessons.clone(),
        json!({"title": "Before you enter", "kind": "text",
               "body": "Test the air.\n\nPost a standby person."}),
    )
    .await;
    let quiz = built(
        &app,
        lessons,
        json!({"title": "Entry check", "kind": "assessment"}),
    )
    .await;
    let bank = built(
        &app,
        format!("/api/v1/courses/{course}/question-banks"),
        json!({"name": "Entry"}),
    )
    .await;
    for q in [
        json!({"kind": "single_choice", "prompt": "What comes first?",
               "options": ["wrong: climb in", "right: test the air", "wrong: call later"],
               "correct_options": [1]}),
        json!({"kind": "true_false", "prompt": "You may enter alone.", "correct_options": [1]}),
    ] {
        built(&app, format!("/api/v1/question-banks/{bank}/questions"), q).await;
    }
    app.ok_as(
        A,
        Role::TrainingOfficer,
        Method::PUT,
        &format!("/api/v1/lessons/{quiz}/quiz"),
        Some(json!({"bank_id": bank, "pass_percent": 100})),
    )
    .await;

    // The person finds the course in the catalogue and enrols.
    let learner = Browser::start(1280, 900).await;
    browser_sign_in(&app, &learner, Role::Employee).await;
    learner.goto(&format!("{}/portal/courses", app.base)).await;
    learner.fill("#q", &title).await;
    learner.click("form[role=search] button[type=submit]").await;
    let link = format!("a[href=\"/portal/courses/{course}\"]");
    assert!(
        wait_until(
            &learner,
            &format!(
                "return location.search.indexOf('q=') >= 0
                     && document.readyState === 'complete'
                     && document.querySelector('{link}') !== null;"
            )
        )
        .await,
        "{}",
        learner.source().await
    );
    learner.click(&link).await;
    assert!(learner.wait_for_text("Modules and lessons").await);
    learner
        .click(&format!(
            "form[action=\"/portal/courses/{course}/enrol\"] button"
        ))
        .await;
    assert!(
        learner.wait_for_text("You are enrolled").await,
        "{}",
        learner.source().await
    );
    learner.click("a[href^=\"/portal/enrolments/\"]").await;
    assert!(learner.wait_for_text("data-enrolment").await);
    let enrolment = learner
        .script("return document.querySelector('[data-enrolment]').getAttribute('data-enrolment');")
        .await
        .as_str()
        .expect("the enrolment's page")
        .to_string();

    // Their manager opens the enrolment and follows it live.
    let watcher = Browser::start(1280, 900).await;
    browser_sign_in(&app, &watcher, Role::Manager).await;
    watcher
        .goto(&format!("{}/portal/enrolments/{enrolment}", app.base))
        .await;
    assert!(
        watcher.wait_for_text("data-live-state=\"open\"").await,
        "the page follows the stream: {}",
        watcher.source().await
    );
    let percent = "return document.querySelector('[data-live=percent]').textContent.trim();";
    assert_eq!(watcher.script(percent).await, "0%");

    // The lesson player: the reading, marked done.
    learner
        .click(&format!(
            "a[href=\"/portal/enrolments/{enrolment}/lessons/{reading}\"]"
        ))
        .await;
    assert!(
        learner.wait_for_text("Post a standby person.").await,
        "{}",
        learner.source().await
    );
    learner
        .click("form[action$=\"/progress\"] button[type=submit]")
        .await;
    assert!(learner.wait_for_text("Your progress was saved.").await);
    assert!(
        wait_until(
            &watcher,
            "return document.querySelector('[data-live=percent]').textContent.trim() === '50%';"
        )
        .await,
        "the manager's page changed without a reload: {}",
        watcher.source().await
    );

    // The quiz: started, answered right, passed; the course completes.
    learner
        .click(&format!("a[href=\"/portal/lessons/{quiz}/quiz\"]"))
        .await;
    assert!(learner.wait_for_text("About the quiz").await);
    learner
        .click(&format!(
            "form[action=\"/portal/lessons/{quiz}/attempts\"] button"
        ))
        .await;
    assert!(
        learner.wait_for_text("Submit the answers").await,
        "{}",
        learner.source().await
    );
    let html = learner.source().await;
    assert!(
        !html.contains("Review") && !html.contains("badge ok"),
        "no answers before submission"
    );
    learner
        .script(
            "document.querySelectorAll('form.quiz label').forEach(function (l) {
               var t = l.textContent.trim();
               if (t.indexOf('right:') === 0 || t === 'False') { l.querySelector('input').click(); }
             });
             return true;",
        )
        .await;
    learner.click("form.quiz button[type=submit]").await;
    assert!(
        learner.wait_for_text("Passed").await,
        "{}",
        learner.source().await
    );
    assert!(learner.source().await.contains("2 of 2 points"));
    assert!(
        wait_until(
            &watcher,
            "return document.querySelector('[data-live=percent]').textContent.trim() === '100%'
                 && document.querySelector('[data-live=status]').textContent.trim() === 'completed';"
        )
        .await,
        "{}",
        watcher.source().await
    );

    // The certificate: listed, downloaded as a PDF, and checked on the public page.
    learner
        .goto(&format!("{}/portal/certificates", app.base))
        .await;
    assert!(learner.wait_for_text(&title).await);
    let pdf = learner
        .script_async(
            "var done = arguments[arguments.length - 1];
             var a = document.querySelector('a[href$=\"/pdf\"]');
             fetch(a.getAttribute('href')).then(function (r) {
               return r.arrayBuffer().then(function (b) {
                 var head = String.fromCharCode.apply(null, new Uint8Array(b.slice(0, 5)));
                 done([r.status, r.headers.get('content-type'), head, b.byteLength]);
               });
             });",
        )
        .await;
    assert_eq!(
        (&pdf[0], &pdf[1], &pdf[2]),
        (&json!(200), &json!("application/pdf"), &json!("%PDF-")),
        "{pdf}"
    );
    let code = learner
        .script("return document.querySelector('a[href^=\"/portal/verify/\"] code').textContent;")
        .await
        .as_str()
        .expect("a code")
        .to_string();
    // Anyone, signed out, checks it.
    let stranger = Browser::start(1280, 900).await;
    stranger.goto(&format!("{}/portal/verify", app.base)).await;
    stranger.fill("#code", &code.to_lowercase()).await;
    stranger.click("form button[type=submit]").await;
    assert!(
        stranger.wait_for_text("A valid certificate").await,
        "{}",
        stranger.source().await
    );
    let shown = stranger.source().await;
    assert!(shown.contains(&title) && shown.contains(&code), "{shown}");
    stranger
        .goto(&format!("{}/portal/verify/AAAA-BBBB-CCCC-DDDD", app.base))
        .await;
    assert!(
        stranger
            .wait_for_text("No certificate has this code.")
            .await
    );
}

#[tokio::test]
async fn completing_a_course_raises_the_skills_it_teaches_awards_achievements_and_managers_assess_their_team(
) {
    let app = TestApp::spawn().await;
    let employee = app.a.people[&Role::Employee];
    let manager = app.a.people[&Role::Manager];
    app.set_reporting_lines(A, employee, None, Some(manager))
        .await;
    let to = Role::TrainingOfficer;
    let name = format!("Rail welding {}", short_unique());
    let welding = built(
        &app,
        "/api/v1/skills".into(),
        json!({"name": name, "category": "Track",
               "levels": ["Assists a welder", "Welds under supervision", "Welds alone"]}),
    )
    .await;
    // Names are unique whatever their case.
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        "/api/v1/skills",
        Some(json!({"name": name.to_uppercase(), "levels": ["One"]})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["fields"]["name"].is_array()),
        (StatusCode::CONFLICT, true),
        "{b}"
    );
    let reading = built(
        &app,
        "/api/v1/skills".into(),
        json!({"name": format!("Reading drawings {}", short_unique()), "levels": ["Reads them"]}),
    )
    .await;
    let (course, _, lesson) = app.fresh_course(A).await;
    // A level the skill lacks, and a skill named twice for one kind, name their fields.
    let (s, b) = call(
        &app,
        to,
        Method::PUT,
        &format!("/api/v1/courses/{course}/skills"),
        Some(json!({"skills": [
            {"skill_id": welding, "kind": "teaches", "level": 4},
            {"skill_id": reading, "kind": "requires", "level": 1},
            {"skill_id": reading, "kind": "requires", "level": 1},
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let mut named = fields_of(&b);
    named.sort();
    assert_eq!(named, ["skills[0].level", "skills[2].skill_id"], "{b}");
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::PUT,
        &format!("/api/v1/courses/{course}/skills"),
        Some(json!({"skills": []})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let d = app
        .ok_as(
            A,
            to,
            Method::PUT,
            &format!("/api/v1/courses/{course}/skills"),
            Some(json!({"skills": [
                {"skill_id": welding, "kind": "teaches", "level": 2},
                {"skill_id": reading, "kind": "requires", "level": 1},
            ]})),
        )
        .await;
    assert_eq!(d["skills"].as_array().unwrap().len(), 2, "{d}");

    // The employee completes the course: welding rises to level 2, from the course, and their
    // first course is an achievement.
    let enrolment = id_of(
        &app.ok_as(
            A,
            Role::Employee,
            Method::POST,
            &format!("/api/v1/courses/{course}/enrol"),
            None,
        )
        .await,
    );
    app.ok_as(
        A,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/enrolments/{enrolment}/progress"),
        Some(json!({"lesson_id": lesson, "completed": true})),
    )
    .await;
    let mine = app
        .ok_as(
            A,
            Role::Employee,
            Method::GET,
            &format!("/api/v1/users/{employee}/skills"),
            None,
        )
        .await;
    let skill = &mine["skills"][0];
    assert_eq!(
        (
            &skill["skill_id"],
            &skill["level"],
            &skill["source"],
            &skill["criteria"]
        ),
        (
            &json!(welding),
            &json!(2),
            &json!("course"),
            &json!("Welds under supervision")
        ),
        "{mine}"
    );
    assert_eq!(skill["course_id"], json!(course));
    assert_eq!(
        mine["skills"].as_array().unwrap().len(),
        1,
        "only what it teaches"
    );
    assert_eq!(mine["achievements"][0]["rule"], "first_course", "{mine}");

    // Their manager assesses them; they cannot assess themselves, nor may the trainer look.
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::PUT,
        &format!("/api/v1/users/{employee}/skills"),
        Some(json!({"skill_id": welding, "level": 3})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(
        &app,
        Role::Manager,
        Method::PUT,
        &format!("/api/v1/users/{manager}/skills"),
        Some(json!({"skill_id": welding, "level": 3})),
    )
    .await;
    assert_eq!(
        (s, fields_of(&b)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["user_id".to_string()]
        )
    );
    let (s, b) = call(
        &app,
        Role::Manager,
        Method::PUT,
        &format!("/api/v1/users/{employee}/skills"),
        Some(json!({"skill_id": welding, "level": 9})),
    )
    .await;
    assert_eq!(
        (s, fields_of(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["level".to_string()])
    );
    let assessed = app
        .ok_as(
            A,
            Role::Manager,
            Method::PUT,
            &format!("/api/v1/users/{employee}/skills"),
            Some(json!({"skill_id": welding, "level": 3, "note": "Seen on the night shift"})),
        )
        .await;
    assert_eq!(
        (
            &assessed["skills"][0]["level"],
            &assessed["skills"][0]["source"]
        ),
        (&json!(3), &json!("manager")),
        "{assessed}"
    );
    let (s, _) = call(
        &app,
        Role::Trainer,
        Method::GET,
        &format!("/api/v1/users/{employee}/skills"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A deleted skill drops out of people's lists until it is restored.
    app.ok_as(
        A,
        to,
        Method::DELETE,
        &format!("/api/v1/skills/{welding}"),
        None,
    )
    .await;
    let gone = app
        .ok_as(
            A,
            Role::Employee,
            Method::GET,
            &format!("/api/v1/users/{employee}/skills"),
            None,
        )
        .await;
    assert!(gone["skills"].as_array().unwrap().is_empty(), "{gone}");
    app.ok_as(
        A,
        to,
        Method::POST,
        &format!("/api/v1/skills/{welding}/restore"),
        None,
    )
    .await;

    // In the portal: the training officer says the course requires welding at level 1 (a
    // level the skill lacks names its field), and the manager assesses from their team's page.
    let officer = app.portal_client(A, to).await;
    let (_, page) = app
        .portal_get(&officer, &format!("/portal/courses/{course}"))
        .await;
    let csrf = csrf_of(&page);
    let form_path = format!("/portal/courses/{course}/skills");
    let welding_id = welding.to_string();
    let (s, html) = app
        .portal_post(
            &officer,
            &form_path,
            &[
                ("csrf", &csrf),
                ("skill_id", &welding_id),
                ("kind", "requires"),
                ("level", "7"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("<code>level</code>") && !html.contains("skills["),
        "{html}"
    );
    let (s, _) = app
        .portal_post(
            &officer,
            &form_path,
            &[
                ("csrf", &csrf),
                ("skill_id", &welding_id),
                ("kind", "requires"),
                ("level", "1"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let d = app
        .ok_as(
            A,
            Role::Employee,
            Method::GET,
            &format!("/api/v1/courses/{course}/skills"),
            None,
        )
        .await;
    assert_eq!(d["skills"].as_array().unwrap().len(), 3, "{d}");
    let boss = app.portal_client(A, Role::Manager).await;
    let (s, page) = app.portal_get(&boss, "/portal/skills/team").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains(&name) && page.contains("Assess a skill"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let employee_id = employee.to_string();
    let (s, _) = app
        .portal_post(
            &boss,
            "/portal/skills/assess",
            &[
                ("csrf", &csrf),
                ("user_id", &employee_id),
                ("skill_id", &welding_id),
                ("level", "1"),
                ("note", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let now = app
        .ok_as(
            A,
            Role::Employee,
            Method::GET,
            &format!("/api/v1/users/{employee}/skills"),
            None,
        )
        .await;
    assert_eq!(now["skills"][0]["level"], 1, "{now}");

    // The profile shows them.
    let client = app.portal_client(A, Role::Employee).await;
    let (s, html) = app.portal_get(&client, "/portal/profile").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("My skills")
            && html.contains(&name)
            && html.contains("Completed a first course"),
        "{html}"
    );
}

/// The fields an error names.
fn fields_of(v: &Value) -> Vec<String> {
    v["error"]["fields"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_attempt_past_its_time_limit_counts_as_timed_out_and_scores_nothing() {
    use trainflow_kernel::{auth::TenantCtx, TenantId, UserId};
    use trainflow_learning::{assessments::GivenAnswer, service};

    let app = TestApp::spawn().await;
    let (course, lesson, bank) = app.quiz_fixture(A).await;
    app.ok_as(
        A,
        Role::TrainingOfficer,
        Method::PUT,
        &format!("/api/v1/lessons/{lesson}/quiz"),
        Some(json!({"bank_id": bank, "time_limit_minutes": 10, "max_attempts": 3})),
    )
    .await;
    app.ok_as(
        A,
        Role::Employee,
        Method::POST,
        &format!("/api/v1/courses/{course}/enrol"),
        None,
    )
    .await;
    let ctx = TenantCtx {
        tenant_id: TenantId(app.a.id),
        user_id: UserId(app.a.people[&Role::Employee]),
        role: Role::Employee,
        ip: None,
    };
    let start = trainflow_kernel::now();
    let first = service::start_attempt(&app.learning, &ctx, lesson, start)
        .await
        .expect("an attempt");
    let deadline = first.attempt.deadline_at.expect("a deadline");
    assert_eq!(deadline, start + time::Duration::minutes(10));
    // The right answer (the fixture's "Yes"), wherever the paper shows it.
    let right = |paper: &service::AttemptView| -> Vec<GivenAnswer> {
        paper
            .questions
            .iter()
            .map(|q| GivenAnswer {
                question_id: q.question_id,
                choices: (0..q.options.len() as i32)
                    .filter(|&i| q.options[i as usize] == "Yes")
                    .collect(),
                text: None,
            })
            .collect()
    };

    // Submitted an hour late: timed out, nothing scored, the lesson not done.
    let late = service::submit_attempt(
        &app.learning,
        &ctx,
        first.attempt.id,
        right(&first),
        deadline + time::Duration::hours(1),
    )
    .await
    .expect("a late submission is recorded");
    assert_eq!(
        (
            late.attempt.status.as_str(),
            late.attempt.score,
            late.attempt.passed
        ),
        ("timed_out", Some(0), Some(false))
    );
    // A second attempt left open past its limit is closed as timed out when the next starts.
    let second = service::start_attempt(&app.learning, &ctx, lesson, start)
        .await
        .expect("a second attempt");
    assert_eq!(second.attempt.number, 2);
    let third = service::start_attempt(
        &app.learning,
        &ctx,
        lesson,
        start + time::Duration::minutes(30),
    )
    .await
    .expect("a third attempt");
    assert_eq!(third.attempt.number, 3);
    let view = service::attempt_view(&app.learning, &ctx, second.attempt.id)
        .await
        .unwrap();
    assert_eq!(view.attempt.status.as_str(), "timed_out");
    // Within the grace period after the limit, the answers still count.
    let in_grace = third.attempt.deadline_at.unwrap() + time::Duration::seconds(20);
    let passed = service::submit_attempt(
        &app.learning,
        &ctx,
        third.attempt.id,
        right(&third),
        in_grace,
    )
    .await
    .expect("submitted in time");
    assert_eq!(
        (passed.attempt.status.as_str(), passed.attempt.passed),
        ("submitted", Some(true)),
        "{:?}",
        passed.attempt
    );
}

/// The first message of the `422`/`409` on `field`.
fn refusal(b: &Value, field: &str) -> String {
    b["error"]["fields"][field][0]
        .as_str()
        .unwrap_or_else(|| panic!("no refusal on {field}: {b}"))
        .to_string()
}

#[tokio::test]
async fn a_syllabus_of_topics_and_subtopics_keeps_its_order_and_stays_within_the_hours() {
    let app = TestApp::spawn().await;
    let id = course(&app, &format!("SYL-{}", short_unique()), Some(10.0)).await;
    let to = Role::TrainingOfficer;
    let topics = format!("/api/v1/courses/{id}/topics");
    let rails = built(
        &app,
        topics.clone(),
        json!({"title": "Rails", "duration_hours": 6}),
    )
    .await;
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &topics,
        Some(json!({"title": "Sleepers", "duration_hours": 4})),
    )
    .await;
    assert_eq!(
        (s, b["data"]["position"].as_i64()),
        (StatusCode::CREATED, Some(2)),
        "{b}"
    );
    // The course's ten hours are spent: a third topic of an hour is refused, saying so.
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &topics,
        Some(json!({"title": "Ballast", "duration_hours": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        refusal(&b, "duration_hours").contains("at most 0 left"),
        "{b}"
    );
    // A position taken among the topics is a conflict.
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &topics,
        Some(json!({"title": "Ballast", "position": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    refusal(&b, "position");
    // Subtopics stay within their topic's hours, and a subtopic has none of its own.
    let sub = |title: &str, hours: f64, parent: Uuid| json!({"title": title, "duration_hours": hours, "parent_id": parent});
    let gauge = built(&app, topics.clone(), sub("Gauge", 4.0, rails)).await;
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &topics,
        Some(sub("Welds", 2.5, rails)),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        refusal(&b, "duration_hours").contains("at most 2 left"),
        "{b}"
    );
    let (s, welds) = call(
        &app,
        to,
        Method::POST,
        &topics,
        Some(sub("Welds", 2.0, rails)),
    )
    .await;
    assert_eq!(
        (s, welds["data"]["position"].as_i64()),
        (StatusCode::CREATED, Some(2)),
        "{welds}"
    );
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &topics,
        Some(sub("Deeper", 0.0, gauge)),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    refusal(&b, "parent_id");
    // A topic of another course is no parent either.
    let other = course(&app, &format!("SYL-{}", short_unique()), None).await;
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &format!("/api/v1/courses/{other}/topics"),
        Some(sub("Stray", 0.0, rails)),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    refusal(&b, "parent_id");
    // A topic cannot shrink below its subtopics, nor the course below its topics.
    let (s, b) = call(
        &app,
        to,
        Method::PATCH,
        &format!("/api/v1/topics/{rails}"),
        Some(json!({"duration_hours": 5})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        refusal(&b, "duration_hours").contains("subtopics take 6"),
        "{b}"
    );
    let (s, b) = call(
        &app,
        to,
        Method::PATCH,
        &format!("/api/v1/courses/{id}"),
        Some(json!({"duration_hours": 9})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        refusal(&b, "duration_hours").contains("topics already take 10"),
        "{b}"
    );
    // Everyone who sees the course sees its syllabus, in order.
    let (_, d) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    let titles: Vec<&str> = d["data"]["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Rails", "Sleepers"], "{d}");
    let subs: Vec<&str> = d["data"]["topics"][0]["subtopics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["Gauge", "Welds"], "{d}");
    // People cannot change it.
    let (s, _) = call(
        &app,
        Role::Employee,
        Method::POST,
        &topics,
        Some(json!({"title": "Mine"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Deleting a topic hides its subtopics; a subtopic comes back only under a live topic.
    let welds = id_of(&welds["data"]);
    app.ok_as(
        A,
        to,
        Method::DELETE,
        &format!("/api/v1/topics/{welds}"),
        None,
    )
    .await;
    app.ok_as(
        A,
        to,
        Method::DELETE,
        &format!("/api/v1/topics/{rails}"),
        None,
    )
    .await;
    let (_, d) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    assert_eq!(d["data"]["topics"].as_array().map(Vec::len), Some(1), "{d}");
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &format!("/api/v1/topics/{welds}/restore"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    refusal(&b, "parent_id");
    // The hours freed by the deleted topic are free again, until it is restored.
    let ballast = built(
        &app,
        topics.clone(),
        json!({"title": "Ballast", "duration_hours": 5}),
    )
    .await;
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &format!("/api/v1/topics/{rails}/restore"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    refusal(&b, "duration_hours");
    app.ok_as(
        A,
        to,
        Method::DELETE,
        &format!("/api/v1/topics/{ballast}"),
        None,
    )
    .await;
    let (s, b) = call(
        &app,
        to,
        Method::POST,
        &format!("/api/v1/topics/{rails}/restore"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["data"]["position"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{b}"
    );
    let (s, _) = call(
        &app,
        to,
        Method::POST,
        &format!("/api/v1/topics/{welds}/restore"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, d) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    assert_eq!(
        d["data"]["topics"][0]["subtopics"].as_array().map(Vec::len),
        Some(2),
        "{d}"
    );
}

/// Uploads `bytes` as `name` to `lesson` as `role`.
async fn upload(
    app: &TestApp,
    role: Role,
    lesson: Uuid,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let token = app.token(A, role).await;
    app.call_raw(
        Method::POST,
        &format!("/api/v1/lessons/{lesson}/materials?filename={name}"),
        Some(&token),
        "application/octet-stream",
        bytes,
    )
    .await
}

/// The bytes a signed-in `role` downloads from `path`.
async fn download(app: &TestApp, role: Role, path: &str) -> (StatusCode, Vec<u8>) {
    let token = app.token(A, role).await;
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn lesson_files_are_checked_for_what_they_are_and_served_only_to_those_who_see_the_course() {
    let app = TestApp::spawn().await;
    let id = course(&app, &format!("MAT-{}", short_unique()), None).await;
    let module = built(
        &app,
        format!("/api/v1/courses/{id}/modules"),
        json!({"title": "Files"}),
    )
    .await;
    let lesson = built(
        &app,
        format!("/api/v1/modules/{module}/lessons"),
        json!({"title": "The handout", "kind": "file"}),
    )
    .await;
    let pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let to = Role::TrainingOfficer;
    let (s, m) = upload(&app, to, lesson, "Handout%201.pdf", pdf.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["data"]["file_name"], "Handout 1.pdf");
    assert_eq!(m["data"]["content_type"], "application/pdf");
    assert_eq!(m["data"]["size_bytes"], pdf.len());
    let material = id_of(&m["data"]);
    // What the name says and what the bytes are must agree, and be a type lessons accept.
    let (s, b) = upload(&app, to, lesson, "tool.pdf", b"MZ\x90\0\x03".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    refusal(&b, "body");
    let (s, b) = upload(&app, to, lesson, "tool.exe", b"MZ\x90\0\x03".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    refusal(&b, "filename");
    let (s, _) = upload(
        &app,
        to,
        lesson,
        "big.txt",
        vec![b'a'; 20 * 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // People may not attach files; they see and download those of a published course.
    let (s, _) = upload(&app, Role::Employee, lesson, "mine.txt", b"hello".to_vec()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, list) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/lessons/{lesson}/materials"),
        None,
    )
    .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    let (s, bytes) = download(
        &app,
        Role::Employee,
        &format!("/api/v1/materials/{material}"),
    )
    .await;
    assert_eq!((s, bytes), (StatusCode::OK, pdf.clone()));
    let (_, d) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{id}"),
        None,
    )
    .await;
    assert_eq!(
        d["data"]["materials"][0]["lesson_id"],
        lesson.to_string(),
        "{d}"
    );
    // Back to draft, the course and its files are its builders' only.
    app.ok_as(
        A,
        to,
        Method::PATCH,
        &format!("/api/v1/courses/{id}"),
        Some(json!({"status": "draft"})),
    )
    .await;
    let (s, _) = download(
        &app,
        Role::Employee,
        &format!("/api/v1/materials/{material}"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = download(&app, to, &format!("/api/v1/materials/{material}")).await;
    assert_eq!(s, StatusCode::OK);
    // Deleted, it is gone until restored.
    app.ok_as(
        A,
        to,
        Method::DELETE,
        &format!("/api/v1/materials/{material}"),
        None,
    )
    .await;
    let (s, _) = download(&app, to, &format!("/api/v1/materials/{material}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.ok_as(
        A,
        to,
        Method::POST,
        &format!("/api/v1/materials/{material}/restore"),
        None,
    )
    .await;
    let (s, bytes) = download(&app, to, &format!("/api/v1/materials/{material}")).await;
    assert_eq!((s, bytes), (StatusCode::OK, pdf));
}

/// Rows of a sheet, cell by cell (`None`: a blank cell).
type Cells<'a> = &'a [&'a [Option<&'a str>]];

/// A workbook of the registration template: each sheet's name, headings and rows.
fn workbook(sheets: &[(&str, &[&str], Cells)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, heading, rows) in sheets {
        let sheet = book.add_worksheet().set_name(*name).unwrap();
        for (c, h) in heading.iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if let Some(v) = cell {
                    let (r, c) = (r as u32 + 1, c as u16);
                    match v.parse::<f64>() {
                        Ok(n) => sheet.write_number(r, c, n).unwrap(),
                        Err(_) => sheet.write_string(r, c, *v).unwrap(),
                    };
                }
            }
        }
    }
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn courses_registered_from_the_excel_template_are_checked_row_by_row_and_the_refusals_reported(
) {
    use trainflow_learning::registration::{COURSES, MODULES, TOPICS};
    let app = TestApp::spawn().await;
    let to = Role::TrainingOfficer;
    // The template downloads as a workbook.
    let (s, template) = download(&app, to, "/api/v1/courses/registration-template").await;
    assert_eq!(s, StatusCode::OK);
    assert!(template.starts_with(b"PK\x03\x04"));
    let (s, _) = download(
        &app,
        Role::Employee,
        "/api/v1/courses/registration-template",
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let u = short_unique();
    let (one, two, three) = (
        format!("REG-{u}-1"),
        format!("REG-{u}-2"),
        format!("REG-{u}-3"),
    );
    let (one, two, three) = (one.as_str(), two.as_str(), three.as_str());
    let courses: Cells = &[
        &[
            Some(one),
            Some("Registered course"),
            Some("Safety"),
            Some("beginner"),
            Some("10"),
            None,
            None,
            Some("published"),
        ],
        &[Some(two), Some("Badly levelled"), None, Some("expert")],
        &[Some(one), Some("The same code again")],
        &[Some(three), None],
        &[
            Some("REG-X"),
            Some("Nowhere course"),
            None,
            None,
            None,
            None,
            Some("Nowhere"),
        ],
    ];
    let modules: Cells = &[
        &[Some(one), Some("Introduction"), Some("4")],
        &[Some(one), Some("Too long"), Some("7")],
        &[Some(two), Some("Of a refused course")],
        &[Some("NOPE-1"), Some("Of no course")],
    ];
    let topics: Cells = &[
        &[Some(one), Some("Basics"), None, Some("6")],
        &[Some(one), Some("Basics"), Some("Part A"), Some("2")],
        &[Some(one), Some("Missing"), Some("Part B"), Some("1")],
        &[Some(one), Some("Extra"), None, Some("5")],
    ];
    let book = workbook(&[
        ("Courses", COURSES, courses),
        ("Modules", MODULES, modules),
        ("Topics", TOPICS, topics),
    ]);
    let token = app.token(A, to).await;
    let send = |dry: bool, bytes: Vec<u8>, token: String| {
        let app = &app;
        async move {
            app.call_raw(
                Method::POST,
                &format!("/api/v1/courses/registrations?dry_run={dry}"),
                Some(&token),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                bytes,
            )
            .await
        }
    };
    let refused = |r: &Value| -> Vec<(String, u64, String)> {
        r["data"]["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["sheet"].as_str().unwrap().to_string(),
                    x["row"].as_u64().unwrap(),
                    x["field"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let expected: Vec<(String, u64, String)> = [
        ("Courses", 3, "difficulty"),
        ("Courses", 4, "code"),
        ("Courses", 5, "title"),
        ("Courses", 6, "department"),
        ("Modules", 3, "duration_hours"),
        ("Modules", 4, "course_code"),
        ("Modules", 5, "course_code"),
        ("Topics", 4, "topic"),
        ("Topics", 5, "duration_hours"),
    ]
    .iter()
    .map(|(s, r, f)| (s.to_string(), *r, f.to_string()))
    .collect();
    // Checked only: the report is the same, and nothing is registered.
    let (s, checked) = send(true, book.clone(), token.clone()).await;
    assert_eq!(s, StatusCode::OK, "{checked}");
    assert_eq!(refused(&checked), expected, "{checked}");
    assert_eq!(
        (
            checked["data"]["courses"].as_u64(),
            checked["data"]["modules"].as_u64(),
            checked["data"]["topics"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{checked}"
    );
    let (_, found) = call(
        &app,
        to,
        Method::GET,
        &format!("/api/v1/courses?q={one}"),
        None,
    )
    .await;
    assert_eq!(found["meta"]["total"], 0, "{found}");
    // Registered: the course with its module and its syllabus, published as the row said.
    let (s, done) = send(false, book, token.clone()).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(refused(&done), expected, "{done}");
    let (_, found) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses?q={one}"),
        None,
    )
    .await;
    assert_eq!(found["meta"]["total"], 1, "{found}");
    let (_, d) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!(
            "/api/v1/courses/{}",
            found["data"][0]["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(
        d["data"]["modules"][0]["module"]["title"], "Introduction",
        "{d}"
    );
    assert_eq!(d["data"]["topics"][0]["topic"]["title"], "Basics", "{d}");
    assert_eq!(
        d["data"]["topics"][0]["subtopics"][0]["title"], "Part A",
        "{d}"
    );
    // A second workbook adds to a course of the catalogue; what is not a workbook is refused.
    let more: Cells = &[&[Some(one), Some("Basics"), Some("Part C"), Some("1")]];
    let (s, added) = send(
        false,
        workbook(&[("Courses", COURSES, &[]), ("Topics", TOPICS, more)]),
        token.clone(),
    )
    .await;
    assert_eq!(
        (s, added["data"]["topics"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{added}"
    );
    let (s, b) = send(false, b"code,title\n".to_vec(), token.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    refusal(&b, "body");
    let employee = app.token(A, Role::Employee).await;
    let (s, _) = send(false, template, employee).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn in_the_portal_builders_add_topics_attach_files_and_register_a_workbook_and_people_download_the_files(
) {
    let app = TestApp::spawn().await;
    let (course, _, lesson) = app.fresh_course(A).await;
    let officer = app.portal_client(A, Role::TrainingOfficer).await;
    let (_, page) = app
        .portal_get(&officer, &format!("/portal/courses/{course}"))
        .await;
    let csrf = csrf_of(&page);
    // A topic, then a subtopic under it.
    let (s, to) = app
        .portal_post(
            &officer,
            &format!("/portal/courses/{course}/topics"),
            &[
                ("csrf", csrf.as_str()),
                ("title", "Hand signals"),
                ("duration_hours", "0"),
                ("parent_id", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{to}");
    let (_, d) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/courses/{course}"),
        None,
    )
    .await;
    let topic = d["data"]["topics"][0]["topic"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = app
        .portal_post(
            &officer,
            &format!("/portal/courses/{course}/topics"),
            &[
                ("csrf", csrf.as_str()),
                ("title", "Stop and proceed"),
                ("duration_hours", ""),
                ("parent_id", topic.as_str()),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    // A refused topic shows the course page again with the field named.
    let (s, page) = app
        .portal_post(
            &officer,
            &format!("/portal/courses/{course}/topics"),
            &[
                ("csrf", csrf.as_str()),
                ("title", "Odd"),
                ("duration_hours", "many"),
                ("parent_id", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("<code>duration_hours</code>"), "{page}");
    // A file attached through the course page's form.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("course_id", course.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"Flag signals, one per line.".to_vec())
                .file_name("signals.txt"),
        );
    let resp = officer
        .post(format!("{}/portal/lessons/{lesson}/materials", app.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, page) = app
        .portal_get(&officer, &format!("/portal/courses/{course}"))
        .await;
    assert!(
        page.contains("Hand signals")
            && page.contains("Stop and proceed")
            && page.contains("signals.txt"),
        "{page}"
    );
    // A file of a refused type is named at the form's field.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("course_id", course.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"MZ\x90\0".to_vec()).file_name("tool.exe"),
        );
    let resp = officer
        .post(format!("{}/portal/lessons/{lesson}/materials", app.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("<code>file</code>"));
    // An employee downloads it from the portal with its recognised type.
    let (_, files) = call(
        &app,
        Role::Employee,
        Method::GET,
        &format!("/api/v1/lessons/{lesson}/materials"),
        None,
    )
    .await;
    let file = files["data"][0]["id"].as_str().unwrap().to_string();
    let employee = app.portal_client(A, Role::Employee).await;
    let resp = employee
        .get(format!("{}/portal/materials/{file}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"signals.txt\""));
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        b"Flag signals, one per line."
    );
    // The course's fields change through its page; a refusal names the field.
    let (s, _) = app
        .portal_post(
            &officer,
            &format!("/portal/courses/{course}/edit"),
            &[
                ("csrf", csrf.as_str()),
                ("code", &format!("ED-{}", short_unique())),
                ("title", "Renamed in the portal"),
                ("category", ""),
                ("difficulty", "advanced"),
                ("duration_hours", ""),
                ("description", "Now described."),
                ("certificate_months", "12"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, d) = call(
        &app,
        Role::TrainingOfficer,
        Method::GET,
        &format!("/api/v1/courses/{course}"),
        None,
    )
    .await;
    assert_eq!(
        (
            d["data"]["course"]["title"].as_str(),
            d["data"]["course"]["self_enrol"].as_bool()
        ),
        (Some("Renamed in the portal"), Some(false)),
        "{d}"
    );
    let (s, page) = app
        .portal_post(
            &officer,
            &format!("/portal/courses/{course}/edit"),
            &[
                ("csrf", csrf.as_str()),
                ("code", ""),
                ("title", "x"),
                ("difficulty", "advanced"),
                ("certificate_months", "999"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("<code>certificate_months</code>") || page.contains("<code>code</code>"),
        "{page}"
    );
    // The catalogue offers the template, and a workbook's report lists its refused rows.
    let (_, catalogue) = app.portal_get(&officer, "/portal/courses").await;
    assert!(
        catalogue.contains("/portal/courses/registration-template"),
        "{catalogue}"
    );
    let resp = officer
        .get(format!("{}/portal/courses/registration-template", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let code = format!("PRT-{}", short_unique());
    let rows: Cells = &[
        &[Some(code.as_str()), Some("Portal registered")],
        &[Some(code.as_str()), None],
    ];
    let book = workbook(&[("Courses", trainflow_learning::registration::COURSES, rows)]);
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(book).file_name("courses.xlsx"),
        );
    let resp = officer
        .post(format!("{}/portal/courses/registrations", app.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let report = resp.text().await.unwrap();
    assert!(
        report.contains("<h2 id=\"outcome\">Registered</h2>")
            && report.contains("<td>Courses</td><td>3</td>"),
        "{report}"
    );
    let (_, found) = call(
        &app,
        Role::TrainingOfficer,
        Method::GET,
        &format!("/api/v1/courses?q={code}"),
        None,
    )
    .await;
    assert_eq!(found["meta"]["total"], 1, "{found}");
}

#[tokio::test]
async fn five_courses_a_whole_department_and_five_days_in_a_row_each_earn_their_achievement() {
    use trainflow_kernel::{auth::TenantCtx, TenantId, UserId};
    use trainflow_learning::service::{self, ProgressReport};

    let app = TestApp::spawn().await;
    // A person of the seeded department, and the department's five published courses.
    let (person, _) = app.fresh_person(A, Role::Employee, None).await;
    let ctx = TenantCtx {
        tenant_id: TenantId(app.a.id),
        user_id: UserId(person),
        role: Role::Employee,
        ip: None,
    };
    let mut courses = Vec::new();
    for n in 0..5 {
        let course = built(
            &app,
            "/api/v1/courses".into(),
            json!({"code": format!("ACH-{}-{n}", short_unique()), "title": format!("Achievement course {n}"),
                   "status": "published", "department_id": app.a.department}),
        )
        .await;
        let module = built(
            &app,
            format!("/api/v1/courses/{course}/modules"),
            json!({"title": "Only"}),
        )
        .await;
        let lesson = built(
            &app,
            format!("/api/v1/modules/{module}/lessons"),
            json!({"title": "Only lesson", "body": "Read this."}),
        )
        .await;
        courses.push((course, lesson));
    }
    // One course completed a day, five days running (at noon in the tenant's zone, UTC).
    let start =
        trainflow_kernel::now().replace_time(time::macros::time!(12:00)) - time::Duration::days(10);
    let mut earned = Vec::new();
    for (day, (course, lesson)) in courses.iter().enumerate() {
        let now = start + time::Duration::days(day as i64);
        let e = service::enrol_self(&app.learning, &ctx, *course, now)
            .await
            .expect("enrolled");
        let report = ProgressReport {
            lesson_id: *lesson,
            completed: true,
            seconds_spent: 60,
        };
        service::record_progress(&app.learning, &ctx, e.id, report, now)
            .await
            .expect("progress");
        let mine = service::person_skills(&app.learning, &ctx, person)
            .await
            .expect("achievements");
        let mut rules: Vec<String> = mine
            .achievements
            .iter()
            .map(|a| a.rule.as_str().to_string())
            .collect();
        rules.sort();
        earned.push(rules);
    }
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(earned[0], strs(&["first_course"]));
    assert_eq!(
        earned[3],
        strs(&["first_course"]),
        "four days and four courses earn nothing more"
    );
    assert_eq!(
        earned[4],
        strs(&[
            "department_courses",
            "first_course",
            "five_courses",
            "five_day_streak"
        ]),
        "{earned:?}"
    );
    // Each is awarded once.
    let again = service::person_skills(&app.learning, &ctx, person)
        .await
        .unwrap();
    assert_eq!(again.achievements.len(), 4);
    let detail = again
        .achievements
        .iter()
        .find(|a| a.rule.as_str() == "department_courses")
        .unwrap();
    assert!(
        detail.detail.starts_with("Completed every course of "),
        "{}",
        detail.detail
    );
}
