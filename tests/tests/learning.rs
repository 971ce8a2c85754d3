//! Learning end to end through the API: the catalogue's rules (unique codes, ordered modules
//! within the course's duration, prerequisites without cycles), enrolment by oneself and by
//! assignment with the prerequisite check and the administrator's override, progress to
//! completion, cancelling, the expiry job, and imported completions counting as earned ones.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainflow_kernel::auth::Role;
use trainflow_tests::{id_of, short_unique, TestApp, Which};
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
