//! One door, one audit: a change made through the API and the same change made through a portal
//! form run one use case, so each leaves exactly one audit entry, and the two entries agree on
//! the action, the actor, the object and the shape of the before/after states. And a portal form
//! whose CSRF token is missing or wrong is refused before it changes anything.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainflow_kernel::auth::Role;
use trainflow_tests::{csrf_of, TestApp, Which};
use uuid::Uuid;

const CSV: &str = "com.trainflow.csv";

fn csv_config() -> Value {
    json!({
        "entity": "employee",
        "columns": {"external_id": "Id", "first_name": "First", "last_name": "Last", "email": "Email"}
    })
}

/// Entries of the tenant's audit log, newest first (at most 100), optionally of one action.
async fn audit(app: &TestApp, action: Option<&str>) -> (Vec<Value>, i64) {
    let admin = app.token(Which::A, Role::Administrator).await;
    let path = match action {
        Some(a) => format!("/api/v1/audit?per_page=100&action={a}"),
        None => "/api/v1/audit?per_page=100".to_string(),
    };
    let (status, body) = app.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let total = body["meta"]["total"].as_i64().expect("total");
    (body["data"].as_array().expect("entries").clone(), total)
}

async fn audit_total(app: &TestApp) -> i64 {
    audit(app, None).await.1
}

/// Ids and timestamps differ between any two changes.
fn incidental(key: &str) -> bool {
    key == "id" || key.ends_with("_at")
}

/// `api` and `portal` (a before or an after state) have the same keys, and the same values but
/// for ids, timestamps and the keys in `by_input`.
fn assert_same_state(what: &str, api: &Value, portal: &Value, by_input: &[&str]) {
    match (api, portal) {
        (Value::Null, Value::Null) => {}
        (Value::Object(a), Value::Object(p)) => {
            let keys = |m: &serde_json::Map<String, Value>| {
                m.keys().cloned().collect::<std::collections::BTreeSet<_>>()
            };
            assert_eq!(keys(a), keys(p), "{what}: the keys differ");
            for (key, value) in a {
                if incidental(key) || by_input.contains(&key.as_str()) {
                    continue;
                }
                assert_eq!(value, &p[key], "{what}.{key}: {api} vs {portal}");
            }
        }
        _ => panic!("{what}: {api} vs {portal}"),
    }
}

/// The two doors' entries agree on everything but what differs by input.
fn assert_same_entry(api: &Value, portal: &Value, by_input: &[&str]) {
    for key in ["action", "actor_kind", "actor_id", "object_type"] {
        assert_eq!(api[key], portal[key], "{key}: {api} vs {portal}");
    }
    assert_same_state("before", &api["before"], &portal["before"], by_input);
    assert_same_state("after", &api["after"], &portal["after"], by_input);
}

/// The only entry `door` added to the log, which must be one of `action`.
async fn one_entry_of<F, Fut>(app: &TestApp, action: &str, door: F) -> Value
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = audit_total(app).await;
    door().await;
    let (entries, total) = audit(app, None).await;
    assert_eq!(total, before + 1, "one door, one entry: {:#?}", entries);
    assert_eq!(entries[0]["action"], action, "{}", entries[0]);
    entries[0].clone()
}

#[tokio::test]
async fn updating_ones_profile_through_the_api_and_the_portal_audits_alike() {
    let app = TestApp::spawn().await;
    let me = app.a.people[&Role::Employee];
    let token = app.token(Which::A, Role::Employee).await;
    let client = app.portal_client(Which::A, Role::Employee).await;
    let (status, page) = app.portal_get(&client, "/portal/profile").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&page);

    let api = one_entry_of(&app, "user.update_self", || async {
        let (status, body) = app
            .call(
                Method::PUT,
                "/api/v1/users/me",
                Some(&token),
                Some(json!({
                    "first_name": "Api",
                    "last_name": "Person",
                    "phone": "+447700900111",
                    "address": "1 Api Road",
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    let portal = one_entry_of(&app, "user.update_self", || async {
        let (status, body) = app
            .portal_post(
                &client,
                "/portal/profile",
                &[
                    ("csrf", csrf.as_str()),
                    ("first_name", "Portal"),
                    ("last_name", "Person"),
                    ("phone", "+447700900222"),
                    ("address", "2 Portal Road"),
                    ("gender", ""),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    })
    .await;

    assert_eq!(api["actor_kind"], "user");
    assert_eq!(api["actor_id"], me.to_string());
    assert_eq!(api["object_type"], "user");
    assert_eq!(api["object_id"], me.to_string());
    assert_eq!(portal["object_id"], me.to_string());
    assert_eq!(api["after"]["first_name"], "Api");
    assert_eq!(portal["after"]["first_name"], "Portal");
    assert_eq!(portal["after"]["address"], "2 Portal Road");
    assert_same_entry(&api, &portal, &["first_name", "phone", "address"]);
    let (entries, _) = audit(&app, Some("user.update_self")).await;
    assert_eq!(entries.len(), 2);
}

#[tokio::test]
async fn creating_a_person_through_the_api_and_the_portal_audits_alike() {
    let app = TestApp::spawn().await;
    let admin_id = app.a.people[&Role::Administrator];
    let admin = app.token(Which::A, Role::Administrator).await;
    let client = app.portal_client(Which::A, Role::Administrator).await;
    let (status, page) = app.portal_get(&client, "/portal/users/new").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&page);
    let dept = app.a.department.to_string();

    let api = one_entry_of(&app, "user.create", || async {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({
                    "email": "api.door@example.com",
                    "first_name": "Dora",
                    "last_name": "Door",
                    "phone": "+447700900333",
                    "employee_number": "D-API",
                    "department_id": dept,
                    "position": "Welder",
                    "role": "foreman",
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    })
    .await;
    let portal = one_entry_of(&app, "user.create", || async {
        let (status, body) = app
            .portal_post(
                &client,
                "/portal/users",
                &[
                    ("csrf", csrf.as_str()),
                    ("email", "portal.door@example.com"),
                    ("first_name", "Dora"),
                    ("last_name", "Door"),
                    ("phone", "+447700900333"),
                    ("employee_number", "D-PORTAL"),
                    ("department_id", dept.as_str()),
                    ("position", "Welder"),
                    ("role", "foreman"),
                    ("password", ""),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    })
    .await;

    assert_eq!(api["actor_kind"], "user");
    assert_eq!(api["actor_id"], admin_id.to_string());
    assert_eq!(api["object_type"], "user");
    assert_eq!(api["before"], Value::Null);
    for entry in [&api, &portal] {
        assert_eq!(entry["object_id"], entry["after"]["id"], "{entry}");
    }
    assert_ne!(api["object_id"], portal["object_id"]);
    assert_eq!(portal["after"]["email"], "portal.door@example.com");
    assert_eq!(portal["after"]["role"], "foreman");
    assert_same_entry(&api, &portal, &["email", "username", "employee_number"]);
}

#[tokio::test]
async fn installing_a_connector_through_the_api_and_the_portal_audits_alike() {
    let app = TestApp::spawn().await;
    let admin_id = app.a.people[&Role::Administrator];
    let admin = app.token(Which::A, Role::Administrator).await;
    let client = app.portal_client(Which::A, Role::Administrator).await;
    let (status, page) = app
        .portal_get(
            &client,
            &format!("/portal/integrations/install?connector={CSV}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = csrf_of(&page);

    let api = one_entry_of(&app, "connector.install", || async {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/connectors/installations",
                Some(&admin),
                Some(json!({
                    "connector_id": CSV,
                    "name": "People file (API)",
                    "config": csv_config(),
                    "sync_mode": "incremental",
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    })
    .await;
    let config = csv_config().to_string();
    let portal = one_entry_of(&app, "connector.install", || async {
        let (status, body) = app
            .portal_post(
                &client,
                "/portal/integrations/install",
                &[
                    ("csrf", csrf.as_str()),
                    ("connector_id", CSV),
                    ("package_id", ""),
                    ("name", "People file (portal)"),
                    ("config", config.as_str()),
                    ("schedule", ""),
                    ("sync_mode", "incremental"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    })
    .await;

    assert_eq!(api["actor_kind"], "user");
    assert_eq!(api["actor_id"], admin_id.to_string());
    assert_eq!(api["object_type"], "connector_installation");
    assert_eq!(api["before"], Value::Null);
    for entry in [&api, &portal] {
        assert_eq!(entry["object_id"], entry["after"]["id"], "{entry}");
        assert_eq!(entry["after"]["config"], csv_config(), "{entry}");
    }
    assert_eq!(portal["after"]["name"], "People file (portal)");
    assert_same_entry(&api, &portal, &["name"]);
    assert_eq!(app.count("connector_installations", app.a.id).await, 2);
}

/// A state-changing form of each door, with the CSRF token it would carry.
fn forms(csrf: &str, dept: &str, config: &str) -> Vec<(&'static str, Vec<(String, String)>)> {
    let pairs = |fields: &[(&str, &str)]| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    vec![
        (
            "/portal/profile",
            pairs(&[
                ("csrf", csrf),
                ("first_name", "Forged"),
                ("last_name", "Change"),
                ("phone", "+447700900444"),
                ("address", "Nowhere"),
                ("gender", ""),
            ]),
        ),
        (
            "/portal/users",
            pairs(&[
                ("csrf", csrf),
                ("email", "forged@example.com"),
                ("first_name", "Forged"),
                ("last_name", "Person"),
                ("phone", ""),
                ("employee_number", ""),
                ("department_id", dept),
                ("position", ""),
                ("role", "administrator"),
                ("password", ""),
            ]),
        ),
        (
            "/portal/integrations/install",
            pairs(&[
                ("csrf", csrf),
                ("connector_id", CSV),
                ("package_id", ""),
                ("name", "Forged import"),
                ("config", config),
                ("schedule", ""),
                ("sync_mode", "incremental"),
            ]),
        ),
    ]
}

#[tokio::test]
async fn a_portal_form_without_its_csrf_token_or_with_a_wrong_one_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let client = app.portal_client(Which::A, Role::Administrator).await;
    let (_, page) = app.portal_get(&client, "/portal/profile").await;
    let csrf = csrf_of(&page);
    // Another live session's token is as wrong as a made-up one.
    let other = app.portal_client(Which::A, Role::Administrator).await;
    let (_, other_page) = app.portal_get(&other, "/portal/profile").await;
    let other_csrf = csrf_of(&other_page);
    assert_ne!(csrf, other_csrf);
    let dept = app.a.department.to_string();
    let config = csv_config().to_string();
    // Sign the administrator in to the API now, so reading the log later adds no token.
    audit_total(&app).await;

    let wrong = [
        None,
        Some(String::new()),
        Some("forged".to_string()),
        Some(other_csrf),
        Some(format!("{csrf}x")),
    ];
    for (path, fields) in forms(&csrf, &dept, &config) {
        for token in &wrong {
            let form: Vec<(&str, &str)> = fields
                .iter()
                .filter_map(|(k, v)| match (k.as_str(), token) {
                    ("csrf", None) => None,
                    ("csrf", Some(t)) => Some((k.as_str(), t.as_str())),
                    _ => Some((k.as_str(), v.as_str())),
                })
                .collect();
            let fingerprint = app.fingerprint(app.a.id).await;
            let entries = audit_total(&app).await;
            let (status, body) = app.portal_post(&client, path, &form).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} with csrf {token:?}: {body}"
            );
            assert_eq!(
                app.fingerprint(app.a.id).await,
                fingerprint,
                "{path} with csrf {token:?} changed data"
            );
            assert_eq!(
                audit_total(&app).await,
                entries,
                "{path} with csrf {token:?} was audited"
            );
        }
    }

    // The same forms with the right token go through, so the refusals above were the token's.
    let users = app.count("users", app.a.id).await;
    for (path, fields) in forms(&csrf, &dept, &config) {
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, body) = app.portal_post(&client, path, &form).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}: {body}");
    }
    assert_eq!(app.count("users", app.a.id).await, users + 1);
    assert_eq!(app.count("connector_installations", app.a.id).await, 1);
    let ids: Vec<(Uuid,)> = app
        .owner_rows(
            "select id from users where tenant_id = $1 and first_name = 'Forged'",
            app.a.id,
        )
        .await;
    assert_eq!(ids.len(), 2, "the profile and the new person");
}

/// The jobs page is the administrators': they see the scheduled jobs and the work queue; anyone
/// else is refused, and a signed-out visitor is sent to sign in.
#[tokio::test]
async fn the_jobs_page_is_for_administrators() {
    let app = TestApp::spawn().await;
    let admin = app.portal_client(Which::A, Role::Administrator).await;
    let (status, html) = app.portal_get(&admin, "/portal/jobs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Scheduled jobs"), "{html}");
    assert!(html.contains("identity.cleanup_inactive_users"), "{html}");
    assert!(html.contains("No background work."), "{html}");
    let (status, _) = app.portal_get(&admin, "/portal/jobs?status=failed").await;
    assert_eq!(status, StatusCode::OK);

    let employee = app.portal_client(Which::A, Role::Employee).await;
    let (status, _) = app.portal_get(&employee, "/portal/jobs").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (status, _) = app.portal_get(&anonymous, "/portal/jobs").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
