//! Connectors end to end through the API: the catalogue, partner packages, installations,
//! uploads, runs of the first-party CSV connector and of purpose-built misbehaving components,
//! resumption, full refresh with its guard, schedules — on SQLite and PostgreSQL.

use std::{sync::Arc, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainflow_integrations::{runs::RunRequest, Integrations, RunSettings};
use trainflow_kernel::{auth::Role, db::TenantTx, TenantId};
use trainflow_tests::{package_form, plugin, testing_manifest, TestApp, Which};
use uuid::Uuid;

fn people_mapping() -> Value {
    json!({"entity": "employee", "columns": {
        "external_id": "Employee ID", "first_name": "First name", "last_name": "Surname",
        "email": "Email", "org_unit": "Department", "employee_number": "Number"}})
}

fn people_csv(range: std::ops::Range<u32>) -> Vec<u8> {
    let mut out = String::from("Employee ID,First name,Surname,Email,Department,Number\n");
    for i in range {
        out.push_str(&format!(
            "E{i},Worker{i},Line,worker{i}@example.com,OPS,N{i:04}\n"
        ));
    }
    out.into_bytes()
}

async fn csv_installation(app: &TestApp, token: &str, name: &str, mode: &str) -> Uuid {
    app.install(
        token,
        json!({"connector_id": "com.trainflow.csv", "name": name, "config": people_mapping(), "sync_mode": mode}),
    )
    .await
}

async fn users_with_external_ids(app: &TestApp, tenant: Uuid) -> Vec<(String, bool, bool)> {
    app.owner_rows(
        "select external_id, password_hash is null, is_active and deleted_at is null from users
          where tenant_id = $1 and external_id is not null order by external_id",
        tenant,
    )
    .await
}

#[tokio::test]
async fn the_catalogue_shows_the_first_party_connectors_and_what_they_may_do() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, body) = app
        .call(Method::GET, "/api/v1/connectors", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["connector_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"com.trainflow.csv") && ids.contains(&"com.trainflow.excel"),
        "{ids:?}"
    );
    let csv = &body["data"][0];
    assert_eq!(csv["publisher"], "trainflow");
    assert_eq!(csv["capabilities"]["file"], true);
    assert_eq!(csv["capabilities"]["http_hosts"], json!([]));
    assert_eq!(csv["config_schema"]["type"], "object");
    // Not for other roles.
    let officer = app.token(Which::A, Role::TrainingOfficer).await;
    let (s, _) = app
        .call(Method::GET, "/api/v1/connectors", Some(&officer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_csv_import_creates_invited_people_reports_bad_rows_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = csv_installation(&app, &admin, "HR export", "incremental").await;
    let mut csv = people_csv(0..5);
    csv.extend_from_slice(b",Worker5,Line,worker5@example.com,OPS,N0005\n");
    csv.extend_from_slice(b"E6,Worker6,Line,not-an-email,OPS,N0006\n");
    csv.extend_from_slice(b"E7,Worker7,Line,worker7@example.com,NOWHERE,N0007\n");
    app.upload(&admin, inst, "people.csv", csv.clone()).await;
    let run = app.run_to_end(&admin, inst).await;
    // Two rows refused; the one with an unknown department is imported, with a caveat.
    assert_eq!(run["status"], "succeeded_with_errors", "{run}");
    assert_eq!(run["created"], 6, "{run}");
    assert_eq!(run["record_errors"], 2, "{run}");
    assert_eq!(run["record_warnings"], 1, "{run}");
    let errors = run["errors"].to_string();
    assert!(
        errors.contains("row 7"),
        "the CSV connector names the row: {errors}"
    );
    assert!(
        errors.contains("not-an-email") || errors.contains("email"),
        "{errors}"
    );
    let warnings = run["warnings"].to_string();
    assert!(!errors.contains("NOWHERE"), "{errors}");
    assert!(
        warnings.contains("NOWHERE") && warnings.contains("without a department"),
        "{warnings}"
    );
    assert!(run["instructions"].as_i64().unwrap() > 0);
    assert!(run["peak_memory_bytes"].as_i64().unwrap() > 0);
    assert!(run["duration_ms"].as_i64().is_some());

    let people = users_with_external_ids(&app, app.a.id).await;
    assert_eq!(people.len(), 6);
    assert!(people
        .iter()
        .all(|(_, invited, active)| *invited && *active));
    // Each person the run added is welcomed by email, once.
    let welcomes = || async {
        let n: Vec<(i64,)> = app
            .owner_rows(
                "select count(*) from outbox where tenant_id = $1 and channel = 'email'
                   and subject like 'Welcome to %' and text_body like '%/portal/reset-password?token=%'",
                app.a.id,
            )
            .await;
        n[0].0
    };
    assert_eq!(welcomes().await, 6);
    // They are people of the tenant, in the department their org unit names.
    let (_, list) = app
        .call(
            Method::GET,
            "/api/v1/users?search=worker3",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        list["data"][0]["department_id"],
        app.a.department.to_string()
    );

    // The same file again: nothing new, nothing changed.
    app.upload(&admin, inst, "people.csv", csv).await;
    let again = app.run_to_end(&admin, inst).await;
    assert_eq!(again["status"], "succeeded_with_errors", "{again}");
    assert_eq!(
        (again["created"].as_i64(), again["updated"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(welcomes().await, 6, "nobody is welcomed twice");
    // A file whose every row is refused: the run failed, and says why.
    app.upload(&admin, inst, "people.csv", b"Employee ID,First name,Surname,Email,Department,Number\nX1,Some,Line,x1@,OPS,X0001\nX2,Nobody,Line,nope,OPS,X0002\n".to_vec()).await;
    let refused = app.run_to_end(&admin, inst).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["record_errors"], 2, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("every record was refused"),
        "{refused}"
    );
    assert_eq!(users_with_external_ids(&app, app.a.id).await.len(), 6);

    // A change in the source updates the person.
    app.upload(&admin, inst, "people.csv", b"Employee ID,First name,Surname,Email,Department,Number\nE1,Renamed,Line,worker1@example.com,OPS,N0001\n".to_vec()).await;
    let third = app.run_to_end(&admin, inst).await;
    assert_eq!(third["updated"], 1, "{third}");
    let (_, list) = app
        .call(
            Method::GET,
            "/api/v1/users?search=Renamed",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(list["meta"]["total"], 1);

    // Tenant B sees none of it.
    let b_admin = app.token(Which::B, Role::Administrator).await;
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/connectors/runs/{}", run["id"].as_str().unwrap()),
            Some(&b_admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, b_inst) = app
        .call(
            Method::GET,
            "/api/v1/connectors/installations",
            Some(&b_admin),
            None,
        )
        .await;
    assert_eq!(b_inst["data"], json!([]));
}

#[tokio::test]
async fn org_units_certifications_and_completions_land_in_their_tables() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let units = app
        .install(&admin, json!({"connector_id": "com.trainflow.csv", "name": "Units", "config":
            {"entity": "org_unit", "columns": {"external_id": "Id", "name": "Name", "code": "Code"}}}))
        .await;
    app.upload(
        &admin,
        units,
        "units.csv",
        b"Id,Name,Code\nU1,Signalling,SIG\nU2,Track,TRK\n".to_vec(),
    )
    .await;
    let run = app.run_to_end(&admin, units).await;
    assert_eq!(
        (run["status"].as_str(), run["created"].as_i64()),
        (Some("succeeded"), Some(2)),
        "{run}"
    );

    let people = csv_installation(&app, &admin, "People", "incremental").await;
    app.upload(&admin, people, "p.csv", b"Employee ID,First name,Surname,Email,Department,Number\nE1,Ana,Lee,ana@example.com,SIG,N1\n".to_vec()).await;
    assert_eq!(app.run_to_end(&admin, people).await["created"], 1);

    let certs = app
        .install(&admin, json!({"connector_id": "com.trainflow.csv", "name": "Certs", "config":
            {"entity": "certification", "columns": {"external_id": "Id", "employee": "Employee", "certification_type": "Type", "issued_on": "Issued", "expires_on": "Expires"}}}))
        .await;
    app.upload(&admin, certs, "c.csv", b"Id,Employee,Type,Issued,Expires\nC1,E1,FIRST-AID,2026-01-10,2028-01-10\nC2,E9,FIRST-AID,2026-01-10,2028-01-10\nC3,E1,WELDING,2026-13-01,\n".to_vec()).await;
    let run = app.run_to_end(&admin, certs).await;
    assert_eq!(run["created"], 1, "{run}");
    assert_eq!(run["record_errors"], 2, "{run}");
    assert_eq!(app.count("certifications", app.a.id).await, 1);
    assert_eq!(app.count("certification_types", app.a.id).await, 1);
    assert_eq!(app.count("departments", app.a.id).await, 3);

    let done = app
        .install(&admin, json!({"connector_id": "com.trainflow.csv", "name": "Completions", "config":
            {"entity": "completion", "columns": {"external_id": "Id", "employee": "Employee", "course": "Course", "completed_on": "Date", "score": "Score"}}}))
        .await;
    app.upload(
        &admin,
        done,
        "d.csv",
        b"Id,Employee,Course,Date,Score\nK1,E1,SAFETY-101,2026-03-01,92\n".to_vec(),
    )
    .await;
    let run = app.run_to_end(&admin, done).await;
    assert_eq!(run["created"], 1, "{run}");
    assert_eq!(app.count("course_completions", app.a.id).await, 1);
    assert_eq!(app.count("courses", app.a.id).await, 1);

    // Once the imported course teaches a skill, an imported completion raises it too.
    let (_, found) = app
        .call(
            Method::GET,
            "/api/v1/courses?q=SAFETY-101",
            Some(&admin),
            None,
        )
        .await;
    let course = found["data"][0]["id"]
        .as_str()
        .expect("the imported course")
        .to_string();
    let (s, skill) = app
        .call(
            Method::POST,
            "/api/v1/skills",
            Some(&admin),
            Some(json!({"name": "First aid", "levels": ["Knows", "Does"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{skill}");
    let (s, set) = app
        .call(
            Method::PUT,
            &format!("/api/v1/courses/{course}/skills"),
            Some(&admin),
            Some(json!({"skills": [{"skill_id": skill["data"]["id"], "kind": "teaches", "level": 2}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{set}");
    assert_eq!(app.count("person_skills", app.a.id).await, 0);
    app.upload(
        &admin,
        done,
        "d2.csv",
        b"Id,Employee,Course,Date,Score\nK2,E1,SAFETY-101,2026-04-01,95\n".to_vec(),
    )
    .await;
    let run = app.run_to_end(&admin, done).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(app.count("person_skills", app.a.id).await, 1);
}

#[tokio::test]
async fn a_run_killed_midway_resumes_from_its_last_committed_page_without_duplicates() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = csv_installation(&app, &admin, "Big export", "incremental").await;
    app.upload(&admin, inst, "people.csv", people_csv(0..10))
        .await;

    // A service that dies after two pages of three records: its run stays `running`.
    let dying = app.integrations.with_settings(
        "doomed",
        RunSettings {
            page_size: 3,
            stop_after_pages: Some(2),
            stale_after: Duration::ZERO,
            ..RunSettings::default()
        },
    );
    let tenant = TenantId(app.a.id);
    let claim = |svc: Arc<Integrations>| async move {
        let mut tx = TenantTx::begin_system(&svc.db, tenant).await.unwrap();
        let run = svc
            .claim(&mut tx, inst, RunRequest::manual(None, None))
            .await
            .unwrap()
            .expect("claimed");
        tx.commit().await.unwrap();
        run
    };
    let run = claim(dying.clone()).await;
    dying.clone().execute(tenant, run.id).await;
    assert_eq!(users_with_external_ids(&app, app.a.id).await.len(), 6);

    // While it looks alive, another run is refused.
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/installations/{inst}/runs"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    // The refusal says which run holds the installation, where, and what can be done.
    let why = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        why.contains(&run.id.to_string())
            && why.contains("`doomed`")
            && why.contains("takes over from")
            && why.contains("/abandon"),
        "{why}"
    );

    // Once its heartbeat is stale, the next run takes over and resumes after row 6.
    let resumed = claim(dying.clone()).await;
    let finisher = app.integrations.with_settings(
        "survivor",
        RunSettings {
            page_size: 3,
            ..RunSettings::default()
        },
    );
    finisher.clone().execute(tenant, resumed.id).await;
    let done = app.wait_for_run(&admin, &resumed.id.to_string()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["created"], 4,
        "only the rows after the last committed page: {done}"
    );
    let people = users_with_external_ids(&app, app.a.id).await;
    assert_eq!(people.len(), 10, "nothing lost, nothing doubled");
    let first = app.wait_for_run(&admin, &run.id.to_string()).await;
    assert_eq!(first["status"], "abandoned", "{first}");
}

#[tokio::test]
async fn a_full_refresh_removes_what_the_source_dropped_but_asks_before_a_mass_deactivation() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = csv_installation(&app, &admin, "Nightly", "full_refresh").await;
    app.upload(&admin, inst, "all.csv", people_csv(0..10)).await;
    assert_eq!(app.run_to_end(&admin, inst).await["created"], 10);

    // 3 of 16 active people (19%): under the guard, applied.
    app.upload(&admin, inst, "all.csv", people_csv(0..7)).await;
    let run = app.run_to_end(&admin, inst).await;
    assert_eq!(
        (run["status"].as_str(), run["deactivated"].as_i64()),
        (Some("succeeded"), Some(3)),
        "{run}"
    );
    let active = users_with_external_ids(&app, app.a.id)
        .await
        .iter()
        .filter(|p| p.2)
        .count();
    assert_eq!(active, 7);

    // 5 of 13 (38%): held until an administrator confirms.
    app.upload(&admin, inst, "all.csv", people_csv(0..2)).await;
    let run = app.run_to_end(&admin, inst).await;
    assert_eq!(run["status"], "needs_confirmation", "{run}");
    assert_eq!(run["pending_deletions"], 5, "{run}");
    let active = users_with_external_ids(&app, app.a.id)
        .await
        .iter()
        .filter(|p| p.2)
        .count();
    assert_eq!(active, 7, "nothing deactivated before confirmation");
    let id = run["id"].as_str().unwrap();
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/runs/{id}/confirm"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "succeeded");
    let active = users_with_external_ids(&app, app.a.id)
        .await
        .iter()
        .filter(|p| p.2)
        .count();
    assert_eq!(active, 2);
    // Confirming twice is a conflict, not a second sweep.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/runs/{id}/confirm"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // People who come back in the source come back in TrainFlow.
    app.upload(&admin, inst, "all.csv", people_csv(0..3)).await;
    let run = app.run_to_end(&admin, inst).await;
    assert_eq!(run["updated"], 1, "{run}");
}

async fn upload_testing_package(app: &TestApp, token: &str) -> Value {
    let wasm = plugin("testing");
    let manifest = testing_manifest(&wasm);
    let (s, body) = app
        .call_multipart(
            "/api/v1/connectors/packages",
            Some(token),
            package_form(&manifest, wasm),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn packages_are_validated_before_they_are_accepted() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let wasm = plugin("testing");
    let good = testing_manifest(&wasm);
    let cases: Vec<(Value, Vec<u8>, &str)> = vec![
        (
            {
                let mut m = good.clone();
                m["sha256"] = json!("00".repeat(32));
                m
            },
            wasm.clone(),
            "manifest.sha256",
        ),
        (
            {
                let mut m = good.clone();
                m["id"] = json!("com.trainflow.fake");
                m
            },
            wasm.clone(),
            "manifest.id",
        ),
        (
            {
                let mut m = good.clone();
                m["version"] = json!("one");
                m
            },
            wasm.clone(),
            "manifest.version",
        ),
        (
            {
                let mut m = good.clone();
                m["config_schema"] = json!({"type": "no-such-type"});
                m
            },
            wasm.clone(),
            "manifest.config_schema",
        ),
        (
            {
                let mut m = good.clone();
                m["capabilities"]["http_hosts"] = json!(["10.0.0.1"]);
                m
            },
            wasm.clone(),
            "manifest.capabilities.http_hosts[0]",
        ),
        (
            {
                let mut m = good.clone();
                m["id"] = json!("example.other");
                m
            },
            wasm.clone(),
            "manifest.id",
        ),
        (
            {
                let mut m = good.clone();
                m["sha256"] = json!(trainflow_kernel::secret::sha256_hex(b"not wasm"));
                m
            },
            b"not wasm".to_vec(),
            "component",
        ),
    ];
    for (manifest, component, field) in cases {
        let (s, body) = app
            .call_multipart(
                "/api/v1/connectors/packages",
                Some(&admin),
                package_form(&manifest, component),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {body}");
        assert!(body["error"]["fields"][field].is_array(), "{field}: {body}");
    }
    let (s, body) = app
        .call_multipart(
            "/api/v1/connectors/packages",
            Some(&admin),
            reqwest::multipart::Form::new().text("manifest", "{not json"),
        )
        .await;
    assert!(s.is_client_error(), "{s} {body}");
    // Larger than 20 MiB: refused before anything is read into a package.
    let big = vec![0u8; 21 * 1024 * 1024];
    let mut m = good.clone();
    m["sha256"] = json!(trainflow_kernel::secret::sha256_hex(&big));
    let (s, _) = app
        .call_multipart(
            "/api/v1/connectors/packages",
            Some(&admin),
            package_form(&m, big),
        )
        .await;
    assert!(
        s == StatusCode::PAYLOAD_TOO_LARGE || s == StatusCode::UNPROCESSABLE_ENTITY,
        "{s}"
    );
    assert_eq!(app.count("connector_packages", app.a.id).await, 0);

    let entry = upload_testing_package(&app, &admin).await;
    assert_eq!(entry["publisher"], "tenant");
    assert_eq!(entry["capabilities"]["secrets"], json!(["api_token"]));
    let (s, _) = app
        .call_multipart(
            "/api/v1/connectors/packages",
            Some(&admin),
            package_form(&good, wasm),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "the same version twice");
    // Only this tenant sees it.
    let b_admin = app.token(Which::B, Role::Administrator).await;
    let (_, b) = app
        .call(Method::GET, "/api/v1/connectors", Some(&b_admin), None)
        .await;
    assert!(!b.to_string().contains("example.misbehaving"));
}

#[tokio::test]
async fn installations_validate_config_credentials_hosts_and_schedule_and_never_return_secrets() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    upload_testing_package(&app, &admin).await;
    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"connector_id": "acme.nothing", "name": "x", "config": {}}),
            "connector_id",
        ),
        (
            json!({"connector_id": "com.trainflow.csv", "name": "x", "config": {"entity": "employee"}}),
            "config",
        ),
        (
            json!({"connector_id": "com.trainflow.csv", "name": "x", "config": {"entity": "employee", "columns": {"first_name": "F"}}}),
            "config",
        ),
        (
            json!({"connector_id": "com.trainflow.csv", "name": "x", "config": {"entity": "robot", "columns": {}}}),
            "config.entity",
        ),
        (
            json!({"connector_id": "example.misbehaving", "name": "x", "config": {}, "credentials": {"password": "p"}}),
            "credentials.password",
        ),
        (
            json!({"connector_id": "example.misbehaving", "name": "x", "config": {}, "http_hosts": ["evil.example.net"]}),
            "http_hosts[0]",
        ),
        (
            json!({"connector_id": "example.misbehaving", "name": "x", "config": {}, "schedule": "every day"}),
            "schedule",
        ),
        (
            json!({"connector_id": "example.misbehaving", "name": "", "config": {}}),
            "name",
        ),
    ];
    for (body, field) in bad {
        let (s, resp) = app
            .call(
                Method::POST,
                "/api/v1/connectors/installations",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {resp}");
        assert!(resp["error"]["fields"][field].is_array(), "{field}: {resp}");
    }
    assert_eq!(app.count("connector_installations", app.a.id).await, 0);
    let id = app
        .install(&admin, json!({"connector_id": "example.misbehaving", "name": "Vendor", "config": {"mode": "well"},
            "credentials": {"api_token": "tok-very-secret-123"}, "schedule": "0 2 * * *"}))
        .await;
    let (s, dup) = app
        .call(
            Method::POST,
            "/api/v1/connectors/installations",
            Some(&admin),
            Some(json!({"connector_id": "example.misbehaving", "name": "Vendor", "config": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    let (_, got) = app
        .call(
            Method::GET,
            &format!("/api/v1/connectors/installations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(got["data"]["credential_names"], json!(["api_token"]));
    assert_eq!(
        got["data"]["http_hosts"],
        json!(["api.example.com", "localhost"])
    );
    assert!(!got.to_string().contains("tok-very-secret-123"));
    // Stored encrypted: the plaintext is nowhere in the row.
    let (stored,): (Vec<u8>,) = app
        .owner_rows(
            "select credentials from connector_installations where id = $1",
            id,
        )
        .await
        .remove(0);
    assert!(!String::from_utf8_lossy(&stored).contains("tok-very-secret"));
    assert_eq!(
        app.integrations.key.open(app.a.id, id, &stored).unwrap()["api_token"],
        "tok-very-secret-123"
    );
    assert!(app.integrations.key.open(app.b.id, id, &stored).is_err());
}

#[tokio::test]
async fn misbehaving_connectors_fail_their_runs_while_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let b_user = app.token(Which::B, Role::Employee).await;
    upload_testing_package(&app, &admin).await;
    let cases = [
        ("loop", "failed", "ran "),
        ("allocate", "failed", "memory"),
        ("panic", "failed", "cannot handle"),
        ("oversized", "failed", "at most"),
        ("sleep", "failed", "deadline"),
        ("flaky", "succeeded", ""),
        ("throttled", "succeeded", ""),
    ];
    for (mode, status, says) in cases {
        let inst = app
            .install(&admin, json!({"connector_id": "example.misbehaving", "name": mode, "config": {"mode": mode}}))
            .await;
        let (s, started) = app
            .call(
                Method::POST,
                &format!("/api/v1/connectors/installations/{inst}/runs"),
                Some(&admin),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{started}");
        // Another tenant is served while the run misbehaves.
        let t = std::time::Instant::now();
        let (s, _) = app
            .call(Method::GET, "/api/v1/users/me", Some(&b_user), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{mode}: {:?}",
            t.elapsed()
        );
        let run = app
            .wait_for_run(&admin, started["data"]["id"].as_str().unwrap())
            .await;
        assert_eq!(run["status"], status, "{mode}: {run}");
        assert!(
            run["error"].as_str().unwrap_or("").contains(says),
            "{mode}: {run}"
        );
        if mode == "flaky" {
            assert_eq!(run["retries"], 2, "{run}");
        }
        if mode == "throttled" {
            assert_eq!(run["retries"], 1, "{run}");
        }
    }
    let (s, _) = app
        .call(Method::GET, "/api/v1/users/me", Some(&b_user), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Each run's end is in the audit log.
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=connector.run_finish",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit["meta"]["total"], 7, "{audit}");
}

#[tokio::test]
async fn each_scheduled_occurrence_runs_once_even_when_dispatched_twice() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    upload_testing_package(&app, &admin).await;
    let inst = app
        .install(&admin, json!({"connector_id": "example.misbehaving", "name": "Hourly", "config": {"mode": "well"}, "schedule": "30 * * * *"}))
        .await;
    let due = time::macros::datetime!(2026-11-22 05:30 UTC);
    let not_due = time::macros::datetime!(2026-11-22 05:31 UTC);
    let (one, two) = tokio::join!(
        app.integrations.dispatch(due),
        app.integrations.dispatch(due)
    );
    let started = one.unwrap().started + two.unwrap().started;
    assert_eq!(
        started, 1,
        "two instances ticking the same minute start one run"
    );
    assert_eq!(app.integrations.dispatch(not_due).await.unwrap().started, 0);
    let (_, runs) = app
        .call(
            Method::GET,
            &format!("/api/v1/connectors/installations/{inst}/runs"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs["data"][0]["trigger"], "schedule");
    let run = app
        .wait_for_run(&admin, runs["data"][0]["id"].as_str().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // The dispatcher is a job the health endpoint reports.
    let (_, jobs) = app.call(Method::GET, "/health/jobs", None, None).await;
    assert!(jobs.to_string().contains("connectors.dispatch"), "{jobs}");
}

/// A local HTTP server answering `GET /units` with a unit name.
async fn source_api() -> u16 {
    use poem::{
        listener::{Acceptor, Listener, TcpListener},
        Route,
    };
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    let app = Route::new().at("/units", poem::endpoint::make_sync(|_| "Signalling"));
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    port
}

#[tokio::test]
async fn outbound_http_reaches_allowed_hosts_only_and_every_refusal_is_audited() {
    let mut opts = trainflow_tests::Options::default();
    opts.runs.allow_loopback_http = true;
    let app = TestApp::spawn_with(opts).await;
    let admin = app.token(Which::A, Role::Administrator).await;
    upload_testing_package(&app, &admin).await;
    let port = source_api().await;
    let fetch = |name: &str, url: String| json!({"connector_id": "example.misbehaving", "name": name, "config": {"mode": "http", "url": url}});
    // Allowed by the manifest and the installation, and loopback is allowed here.
    let ok = app
        .install(
            &admin,
            fetch("allowed", format!("http://localhost:{port}/units")),
        )
        .await;
    let run = app.run_to_end(&admin, ok).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, units) = app
        .call(Method::GET, "/api/v1/departments", Some(&admin), None)
        .await;
    assert!(units.to_string().contains("Signalling"), "{units}");

    let refused = [
        (
            format!("http://127.0.0.1:{port}/units"),
            "IP addresses are not allowed",
        ),
        (
            "https://evil.example.net/units".to_string(),
            "not among the hosts",
        ),
    ];
    for (i, (url, why)) in refused.iter().enumerate() {
        let inst = app
            .install(&admin, fetch(&format!("refused {i}"), url.clone()))
            .await;
        let run = app.run_to_end(&admin, inst).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert!(run["error"].as_str().unwrap().contains("refused"), "{run}");
        let (_, audit) = app
            .call(
                Method::GET,
                "/api/v1/audit?action=connector.http_refused",
                Some(&admin),
                None,
            )
            .await;
        assert!(audit.to_string().contains(why), "{why}: {audit}");
    }
    // An installation may narrow the hosts: without `localhost` the same request is refused.
    let narrowed = app
        .install(
            &admin,
            json!({"connector_id": "example.misbehaving", "name": "narrow",
            "config": {"mode": "http", "url": format!("http://localhost:{port}/units")},
            "http_hosts": ["api.example.com"]}),
        )
        .await;
    assert_eq!(app.run_to_end(&admin, narrowed).await["status"], "failed");
}

#[tokio::test]
async fn names_that_resolve_to_private_addresses_are_refused_after_resolution() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    upload_testing_package(&app, &admin).await;
    let port = source_api().await;
    let inst = app
        .install(
            &admin,
            json!({"connector_id": "example.misbehaving", "name": "loopback",
            "config": {"mode": "http", "url": format!("http://localhost:{port}/units")}}),
        )
        .await;
    let run = app.run_to_end(&admin, inst).await;
    assert_eq!(run["status"], "failed", "{run}");
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=connector.http_refused",
            Some(&admin),
            None,
        )
        .await;
    assert!(audit.to_string().contains("a loopback address"), "{audit}");
    let (_, units) = app
        .call(Method::GET, "/api/v1/departments", Some(&admin), None)
        .await;
    assert!(!units.to_string().contains("Signalling"));
}

/// A person's certification cycles as the API lists them, oldest first:
/// (issued on, expires on, closed as renewed).
async fn cycles(app: &TestApp, token: &str, user: &str) -> Vec<(String, String, bool)> {
    let (s, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/certifications?user_id={user}&history=true"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut out: Vec<(String, String, bool)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["issued_on"].as_str().unwrap().to_string(),
                c["expires_on"].as_str().unwrap_or("").to_string(),
                !c["renewed_at"].is_null(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn imported_certifications_follow_the_rules_of_recorded_ones() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, t) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(json!({"code": "FIRST-AID", "name": "First aid", "validity_months": 24})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let type_id = t["data"]["id"].as_str().unwrap().to_string();

    // One person imported, one added by hand: the first gets imported cycles, the second the
    // same cycles recorded through the API.
    let people = csv_installation(&app, &admin, "People", "incremental").await;
    app.upload(&admin, people, "p.csv", b"Employee ID,First name,Surname,Email,Department,Number\nE1,Ana,Lee,ana@example.com,OPS,N1\n".to_vec()).await;
    assert_eq!(app.run_to_end(&admin, people).await["created"], 1);
    let (_, ana) = app
        .call(Method::GET, "/api/v1/users?search=ana@", Some(&admin), None)
        .await;
    let ana = ana["data"][0]["id"].as_str().unwrap().to_string();
    let (s, bo) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"email": "bo@example.com", "first_name": "Bo"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bo}");
    let bo = bo["data"]["id"].as_str().unwrap().to_string();
    let record = |issued: &'static str| {
        let (app, admin, bo, type_id) = (&app, &admin, &bo, &type_id);
        async move {
            let (s, body) = app
                .call(
                    Method::POST,
                    "/api/v1/certifications",
                    Some(admin),
                    Some(json!({"user_id": bo, "type_id": type_id, "issued_on": issued})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{body}");
        }
    };

    let certs = app
        .install(&admin, json!({"connector_id": "com.trainflow.csv", "name": "Certs", "config":
            {"entity": "certification", "columns": {"external_id": "Id", "employee": "Employee", "certification_type": "Type", "issued_on": "Issued", "expires_on": "Expires"}}}))
        .await;
    // No expiry in the source: the type's validity gives it, as for a recorded cycle.
    let first = b"Id,Employee,Type,Issued,Expires\nC1,E1,FIRST-AID,2024-03-01,\n".to_vec();
    app.upload(&admin, certs, "c.csv", first).await;
    let run = app.run_to_end(&admin, certs).await;
    assert_eq!(
        (run["created"].as_i64(), run["record_errors"].as_i64()),
        (Some(1), Some(0)),
        "{run}"
    );
    record("2024-03-01").await;
    let imported = cycles(&app, &admin, &ana).await;
    assert_eq!(
        imported,
        vec![("2024-03-01".into(), "2026-02-28".into(), false)]
    );
    assert_eq!(imported, cycles(&app, &admin, &bo).await);

    // A newer cycle closes the previous one, as recording it does.
    let second = b"Id,Employee,Type,Issued,Expires\nC1,E1,FIRST-AID,2024-03-01,\nC2,E1,FIRST-AID,2026-03-01,\n".to_vec();
    app.upload(&admin, certs, "c.csv", second.clone()).await;
    let run = app.run_to_end(&admin, certs).await;
    assert_eq!(
        (run["created"].as_i64(), run["updated"].as_i64()),
        (Some(1), Some(0)),
        "{run}"
    );
    record("2026-03-01").await;
    let imported = cycles(&app, &admin, &ana).await;
    assert_eq!(
        imported,
        vec![
            ("2024-03-01".into(), "2026-02-28".into(), true),
            ("2026-03-01".into(), "2028-02-29".into(), false),
        ]
    );
    assert_eq!(imported, cycles(&app, &admin, &bo).await);
    // Only the open cycle counts as the person's certification.
    let (_, open) = app
        .call(
            Method::GET,
            &format!("/api/v1/certifications?user_id={ana}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(open["data"].as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open["data"][0]["issued_on"], "2026-03-01");
    assert_eq!(open["data"][0]["source"], "connector");

    // The same file again changes nothing.
    app.upload(&admin, certs, "c.csv", second).await;
    let run = app.run_to_end(&admin, certs).await;
    assert_eq!(
        (run["created"].as_i64(), run["updated"].as_i64()),
        (Some(0), Some(0)),
        "{run}"
    );
    assert_eq!(cycles(&app, &admin, &ana).await, imported);

    // The closing is in the audit trail of the closed cycle.
    let (_, history) = app
        .call(
            Method::GET,
            &format!("/api/v1/certifications?user_id={ana}&history=true"),
            Some(&admin),
            None,
        )
        .await;
    let old = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["issued_on"] == "2024-03-01")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, audit) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?object_id={old}"),
            Some(&admin),
            None,
        )
        .await;
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "created, then closed: {audit}");
    assert!(entries
        .iter()
        .all(|e| e["action"] == "certification.import"));
    let closed = entries[0]["after"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == old.as_str())
        .unwrap();
    assert_eq!(closed["change"], "updated", "{closed}");
    assert_eq!(closed["fields"], json!(["renewed_at"]), "{closed}");
}

/// The entries of the audit trail filtered by `object_id`, newest first.
async fn audit_of(app: &TestApp, token: &str, object: &str) -> Vec<Value> {
    let (s, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?object_id={object}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// What an import entry says of one object.
fn listed<'a>(entry: &'a Value, object: &str) -> &'a Value {
    entry["after"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == object)
        .unwrap_or_else(|| panic!("{object} is not listed in {entry}"))
}

#[tokio::test]
async fn the_audit_trail_of_a_person_shows_each_import_that_changed_them_and_its_run() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = csv_installation(&app, &admin, "Nightly", "full_refresh").await;
    app.upload(&admin, inst, "all.csv", people_csv(0..3)).await;
    let first = app.run_to_end(&admin, inst).await;
    assert_eq!(first["created"], 3, "{first}");
    let person = |search: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let (_, list) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/users?search={search}&include_deleted=true"),
                    Some(admin),
                    None,
                )
                .await;
            list["data"][0]["id"].as_str().unwrap().to_string()
        }
    };
    let (one, two) = (person("worker1@").await, person("worker2@").await);

    let trail = audit_of(&app, &admin, &one).await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    let created = &trail[0];
    assert_eq!(created["action"], "person.import");
    assert_eq!(created["actor_kind"], "connector");
    assert_eq!(created["actor_id"], inst.to_string());
    assert_eq!(created["object_type"], "connector_run");
    assert_eq!(created["object_id"], first["id"]);
    assert_eq!(created["after"]["run_id"], first["id"]);
    assert_eq!(created["after"]["installation_id"], inst.to_string());
    assert_eq!(listed(created, &one)["change"], "created");
    assert_eq!(
        created["after"]["objects"].as_array().unwrap().len(),
        3,
        "one entry for the page, listing everyone it added: {created}"
    );

    // The next pass renames worker 1 and no longer has worker 2.
    let mut csv = people_csv(0..1);
    csv.extend_from_slice(b"E1,Renamed,Line,worker1@example.com,OPS,N0001\n");
    app.upload(&admin, inst, "all.csv", csv).await;
    let second = app.run_to_end(&admin, inst).await;
    assert_eq!(
        (
            second["status"].as_str(),
            second["updated"].as_i64(),
            second["deactivated"].as_i64()
        ),
        (Some("succeeded"), Some(1), Some(1)),
        "{second}"
    );
    let trail = audit_of(&app, &admin, &one).await;
    assert_eq!(trail.len(), 2, "{trail:?}");
    let updated = &trail[0];
    assert_eq!(updated["action"], "person.import");
    assert_eq!(updated["object_id"], second["id"]);
    assert_eq!(listed(updated, &one)["change"], "updated");
    assert_eq!(listed(updated, &one)["fields"], json!(["first_name"]));
    assert_eq!(
        updated["after"]["objects"].as_array().unwrap().len(),
        1,
        "unchanged people are not listed: {updated}"
    );
    let trail = audit_of(&app, &admin, &two).await;
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(trail[0]["object_id"], second["id"]);
    assert_eq!(trail[0]["after"]["full_refresh"], true);
    assert_eq!(listed(&trail[0], &two)["change"], "deleted");

    // Batch entries are links of the same chain.
    let (_, v) = app
        .call(Method::GET, "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["data"]["intact"], true, "{v}");
}

#[tokio::test]
async fn an_administrator_abandons_a_run_whose_server_stopped_and_the_next_run_resumes() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = csv_installation(&app, &admin, "Stuck export", "incremental").await;
    app.upload(&admin, inst, "people.csv", people_csv(0..10))
        .await;
    // A server that stops after two pages of three records; its run stays `running`, and
    // (stale only after five minutes) holds the installation.
    let dying = app.integrations.with_settings(
        "stopped-server",
        RunSettings {
            page_size: 3,
            stop_after_pages: Some(2),
            ..RunSettings::default()
        },
    );
    let tenant = TenantId(app.a.id);
    let mut tx = TenantTx::begin_system(&dying.db, tenant).await.unwrap();
    let run = dying
        .claim(&mut tx, inst, RunRequest::manual(None, None))
        .await
        .unwrap()
        .expect("claimed");
    tx.commit().await.unwrap();
    dying.clone().execute(tenant, run.id).await;
    let start = format!("/api/v1/connectors/installations/{inst}/runs");
    let (s, body) = app
        .call(Method::POST, &start, Some(&admin), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");

    // Only administrators abandon; then it is over, with why, and audited.
    let abandon = format!("/api/v1/connectors/runs/{}/abandon", run.id);
    let officer = app.token(Which::A, Role::TrainingOfficer).await;
    let (s, _) = app.call(Method::POST, &abandon, Some(&officer), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = app.call(Method::POST, &abandon, Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "abandoned", "{body}");
    assert!(body["data"]["error"]
        .as_str()
        .unwrap()
        .contains("abandoned by an administrator"));
    let (_, audit) = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/audit?action=connector.run_abandon&object_id={}",
                run.id
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit["meta"]["total"], 1, "{audit}");
    // A run that has ended cannot be abandoned again.
    let (s, body) = app.call(Method::POST, &abandon, Some(&admin), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");

    // The next run is accepted and resumes after the committed pages: ten people, once each.
    let (s, body) = app
        .call(Method::POST, &start, Some(&admin), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let next = app
        .wait_for_run(&admin, body["data"]["id"].as_str().unwrap())
        .await;
    assert_eq!(next["status"], "succeeded", "{next}");
    assert_eq!(next["created"], 4, "{next}");
    assert_eq!(users_with_external_ids(&app, app.a.id).await.len(), 10);
}

/// A frontline HR export: department, job role and employee number, no names and no email
/// addresses (common in rail, manufacturing or care). Everyone is imported, shown by job role
/// and employee number and flagged "profile incomplete"; an unknown department is a caveat,
/// not a refusal; a later export with a name completes the profile, and one without never
/// wipes a name someone typed.
#[tokio::test]
async fn a_frontline_export_without_names_or_email_imports_everyone_flagged_incomplete() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = app
        .install(
            &admin,
            json!({"connector_id": "com.trainflow.csv", "name": "Depot export", "sync_mode": "incremental",
                   "config": {"entity": "employee", "columns": {
                       "external_id": "Staff ID", "employee_number": "Employee No",
                       "org_unit": "Department", "position": "Job role"}}}),
        )
        .await;
    let rows = 300u32;
    let mut csv = String::from("Staff ID,Employee No,Department,Job role\n");
    for i in 0..rows {
        let department = if i % 50 == 49 { "Depot 7" } else { "OPS" };
        let role = if i % 3 == 0 {
            "Track Operative"
        } else {
            "Welder"
        };
        csv.push_str(&format!("S{i},{},{department},{role}\n", 70000 + i));
    }
    app.upload(&admin, inst, "frontline.csv", csv.into_bytes())
        .await;
    let run = app.run_to_end(&admin, inst).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["created"], rows, "{run}");
    assert_eq!(run["record_errors"], 0, "{run}");
    assert_eq!(run["record_warnings"], 6, "the unknown department: {run}");
    // Nobody here has an email address or a phone: no welcome, and no relay of one.
    let queued: Vec<(i64,)> = app
        .owner_rows("select count(*) from outbox where tenant_id = $1", app.a.id)
        .await;
    assert_eq!(queued[0].0, 0);

    let (_, list) = app
        .call(
            Method::GET,
            "/api/v1/users?search=70003",
            Some(&admin),
            None,
        )
        .await;
    let person = &list["data"][0];
    assert_eq!(list["meta"]["total"], 1, "{list}");
    assert_eq!(person["first_name"], "Track Operative", "{person}");
    assert_eq!(person["last_name"], "70003");
    assert_eq!(person["employee_number"], "70003");
    assert_eq!(person["profile_incomplete"], true);
    assert!(person.get("email").is_none(), "no email: {person}");
    assert_eq!(person["department_id"], app.a.department.to_string());
    let id = person["id"].as_str().unwrap().to_string();

    // The portal's people list says so.
    let portal = app.portal_client(Which::A, Role::Administrator).await;
    let (s, html) = app.portal_get(&portal, "/portal/users?q=70003").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Profile incomplete") && html.contains("Track Operative 70003"),
        "{html}"
    );

    // An administrator completes one profile; the next export (still without names) keeps it.
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(json!({"first_name": "Rosa", "last_name": "Diaz"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["profile_incomplete"], false, "{b}");
    app.upload(
        &admin,
        inst,
        "frontline.csv",
        b"Staff ID,Employee No,Department,Job role\nS3,70003,OPS,Track Operative\n".to_vec(),
    )
    .await;
    let again = app.run_to_end(&admin, inst).await;
    assert_eq!(again["updated"], 0, "{again}");
    let (_, b) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (
            b["data"]["first_name"].as_str(),
            b["data"]["last_name"].as_str()
        ),
        (Some("Rosa"), Some("Diaz"))
    );
    assert_eq!(b["data"]["profile_incomplete"], false);
}

/// What an import could have written: people, their links, audit entries and queued messages.
async fn footprint(app: &TestApp, tenant: Uuid) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for table in [
        "users",
        "connector_links",
        "connector_cursors",
        "audit_log",
        "outbox",
        "account_links",
    ] {
        let n: Vec<(i64,)> = app
            .owner_rows(
                &format!("select count(*) from {table} where tenant_id = $1"),
                tenant,
            )
            .await;
        out.push((table.to_string(), n[0].0));
    }
    out
}

#[tokio::test]
async fn a_dry_run_reports_what_an_import_would_change_writes_nothing_and_is_applied_as_is() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = csv_installation(&app, &admin, "Nightly", "full_refresh").await;
    app.upload(&admin, inst, "all.csv", people_csv(0..10)).await;
    assert_eq!(app.run_to_end(&admin, inst).await["created"], 10);

    // The next export: E0 and E1 left, E2 changed surname, E10 and E11 joined.
    let mut next = String::from_utf8(people_csv(3..10)).unwrap();
    next.push_str("E2,Worker2,Married,worker2@example.com,OPS,N0002\n");
    next.push_str(
        std::str::from_utf8(&people_csv(10..12))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .as_str(),
    );
    app.upload(&admin, inst, "all.csv", next.into_bytes()).await;
    let before = footprint(&app, app.a.id).await;

    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/installations/{inst}/runs"),
            Some(&admin),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["dry_run"], true);
    let dry = app
        .wait_for_run(&admin, body["data"]["id"].as_str().unwrap())
        .await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(
        (&dry["created"], &dry["updated"], &dry["deactivated"]),
        (&json!(2), &json!(1), &json!(2)),
        "{dry}"
    );
    let sample = |run: &Value, action: &str| -> Vec<String> {
        let mut refs: Vec<String> = run["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == action)
            .map(|c| c["reference"].as_str().unwrap().to_string())
            .collect();
        refs.sort();
        refs
    };
    assert_eq!(sample(&dry, "create"), ["E10", "E11"], "{dry}");
    assert_eq!(sample(&dry, "update"), ["E2"], "{dry}");
    assert_eq!(sample(&dry, "deactivate"), ["E0", "E1"], "{dry}");
    let update = dry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "update")
        .unwrap();
    assert_eq!(update["fields"], json!(["last_name"]), "{dry}");

    // Nothing but the report: the run's own start and finish are the only audit entries.
    let after = footprint(&app, app.a.id).await;
    let expected: Vec<(String, i64)> = before
        .iter()
        .map(|(t, n)| (t.clone(), if t == "audit_log" { n + 2 } else { *n }))
        .collect();
    assert_eq!(after, expected);
    let active = users_with_external_ids(&app, app.a.id).await;
    assert!(
        active.iter().any(|p| p.0 == "E0" && p.2),
        "E0 is still active"
    );

    // Only a dry run can be applied.
    let runs = app
        .call(
            Method::GET,
            &format!("/api/v1/connectors/installations/{inst}/runs"),
            Some(&admin),
            None,
        )
        .await
        .1;
    let real = runs["data"][1]["id"].as_str().unwrap().to_string();
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/runs/{real}/apply"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");

    // Applied as is: the real run does what the dry run said.
    let dry_id = dry["id"].as_str().unwrap();
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/runs/{dry_id}/apply"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["applies_dry_run"], dry_id);
    assert_eq!(body["data"]["dry_run"], false);
    let applied = app
        .wait_for_run(&admin, body["data"]["id"].as_str().unwrap())
        .await;
    for field in [
        "status",
        "created",
        "updated",
        "deactivated",
        "record_errors",
    ] {
        assert_eq!(applied[field], dry[field], "{field}: {applied}");
    }
    assert_eq!(sample(&applied, "create"), ["E10", "E11"], "{applied}");
    assert_eq!(sample(&applied, "deactivate"), ["E0", "E1"], "{applied}");
    let active = users_with_external_ids(&app, app.a.id).await;
    assert!(active.iter().any(|p| p.0 == "E0" && !p.2), "E0 has left");
    assert!(active.iter().any(|p| p.0 == "E11" && p.2), "E11 has joined");
    let (_, dry_now) = app
        .call(
            Method::GET,
            &format!("/api/v1/connectors/runs/{dry_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(dry_now["data"]["applied_by"], applied["id"]);
    // Once only.
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/runs/{dry_id}/apply"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already applied"),
        "{body}"
    );

    // A dry run that would trip the mass-deactivation guard says so, and still lists who.
    app.upload(&admin, inst, "few.csv", people_csv(3..5)).await;
    let (_, body) = app
        .call(
            Method::POST,
            &format!("/api/v1/connectors/installations/{inst}/runs"),
            Some(&admin),
            Some(json!({"dry_run": true})),
        )
        .await;
    let dry = app
        .wait_for_run(&admin, body["data"]["id"].as_str().unwrap())
        .await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["deactivated"], 8, "{dry}");
    assert_eq!(dry["pending_deletions"], 8, "{dry}");
    // A run after it makes it stale.
    let newer = app.run_to_end(&admin, inst).await;
    assert_eq!(newer["status"], "needs_confirmation", "{newer}");
    let (s, body) = app
        .call(
            Method::POST,
            &format!(
                "/api/v1/connectors/runs/{}/apply",
                dry["id"].as_str().unwrap()
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("run it dry again"),
        "{body}"
    );
}

#[tokio::test]
async fn an_administrator_runs_an_import_dry_in_the_portal_reads_the_report_and_applies_it() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = csv_installation(&app, &admin, "Weekly", "incremental").await;
    app.upload(&admin, inst, "week.csv", people_csv(0..3)).await;
    let client = app.portal_client(Which::A, Role::Administrator).await;
    let page = format!("/portal/integrations/installations/{inst}");
    let (s, html) = app.portal_get(&client, &page).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Dry run"), "{html}");
    let csrf = trainflow_tests::csrf_of(&html);

    // The Dry run button: nothing is imported, the report lists who would be created.
    let (s, location) = app
        .portal_post(
            &client,
            &format!("{page}/runs"),
            &[("csrf", csrf.as_str()), ("dry_run", "1")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{location}");
    let dry_id = location.rsplit('/').next().unwrap().to_string();
    let dry = app.wait_for_run(&admin, &dry_id).await;
    assert_eq!(
        (&dry["dry_run"], &dry["created"]),
        (&json!(true), &json!(3))
    );
    assert!(users_with_external_ids(&app, app.a.id).await.is_empty());
    let (_, report) = app.portal_get(&client, &location).await;
    for expected in [
        "Dry run of",
        "Nothing was written",
        "Would be created",
        "E2",
        "Apply this import",
    ] {
        assert!(report.contains(expected), "{expected}: {report}");
    }

    // Applied from its page: the people arrive, and the report says by which run.
    let (s, applied) = app
        .portal_post(
            &client,
            &format!("/portal/integrations/runs/{dry_id}/apply"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{applied}");
    let run = app
        .wait_for_run(&admin, applied.rsplit('/').next().unwrap())
        .await;
    assert_eq!(run["created"], 3, "{run}");
    assert_eq!(users_with_external_ids(&app, app.a.id).await.len(), 3);
    let (_, report) = app.portal_get(&client, &location).await;
    assert!(report.contains("Applied by"), "{report}");
    assert!(!report.contains("Apply this import"), "{report}");

    // Applying it again re-renders the report with why not.
    let (s, page) = app
        .portal_post(
            &client,
            &format!("/portal/integrations/runs/{dry_id}/apply"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(page.contains("already applied"), "{page}");
}
