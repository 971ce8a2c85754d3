//! API behaviour end to end: sign-in and tokens, people, tenants, audit, errors and the edge.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainflow_kernel::auth::Role;
use trainflow_tests::{email_of, Options, TestApp, Which, PASSWORD};

fn data(v: &Value) -> &Value {
    &v["data"]
}

#[tokio::test]
async fn a_person_signs_in_and_reads_their_own_profile() {
    let app = TestApp::spawn().await;
    let body = app
        .sign_in(&app.a.slug, &email_of(&app.a.slug, Role::Manager), PASSWORD)
        .await;
    let d = data(&body);
    assert_eq!(d["token_type"], "Bearer");
    assert!(d["expires_in"].as_i64().unwrap() <= 900);
    assert!(d["refresh_token"].as_str().unwrap().len() > 40);
    let token = d["access_token"].as_str().unwrap();
    let (status, me) = app
        .call(Method::GET, "/api/v1/users/me", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["data"]["email"], email_of(&app.a.slug, Role::Manager));
    assert_eq!(me["data"]["role"], "manager");
    assert!(me["data"].get("password_hash").is_none());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_account_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let (s1, b1) = app
        .call(Method::POST, "/api/v1/auth/token", None, Some(json!({"tenant": app.a.slug, "email": email_of(&app.a.slug, Role::Employee), "password": "not-the-password"})))
        .await;
    let (s2, b2) = app
        .call(Method::POST, "/api/v1/auth/token", None, Some(json!({"tenant": app.a.slug, "email": "nobody@nowhere.test", "password": "not-the-password"})))
        .await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!(s2, StatusCode::UNAUTHORIZED);
    assert_eq!(b1["error"]["message"], b2["error"]["message"]);
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=auth.sign_in_failed",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        audit["meta"]["total"], 1,
        "the failure against a real account is audited: {audit}"
    );
}

#[tokio::test]
async fn repeated_failures_back_off_with_retry_after_then_allow_the_right_password() {
    let app = TestApp::spawn().await;
    let email = email_of(&app.a.slug, Role::Trainer);
    let body = json!({"tenant": app.a.slug, "email": email, "password": "wrong-password-123"});
    // Spelling variants of the same account share one counter.
    let variants = [
        json!({"tenant": app.a.slug, "email": email, "password": "wrong-password-123"}),
        json!({"tenant": app.a.slug.to_uppercase(), "email": email, "password": "wrong-password-123"}),
        json!({"tenant": format!(" {} ", app.a.slug), "email": email.to_uppercase(), "password": "wrong-password-123"}),
        json!({"tenant": app.a.slug, "email": format!(" {email}"), "password": "wrong-password-123"}),
        json!({"tenant": app.a.slug, "email": email, "password": "wrong-password-123"}),
    ];
    for variant in variants {
        let (s, _) = app
            .call(Method::POST, "/api/v1/auth/token", None, Some(variant))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // The sixth failure starts the back-off; the next attempt, even with the right password, waits.
    let (s, _) = app
        .call(Method::POST, "/api/v1/auth/token", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let resp = app
        .client
        .post(format!("{}/api/v1/auth/token", app.base))
        .json(&json!({"tenant": app.a.slug, "email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry));
    tokio::time::sleep(std::time::Duration::from_secs(retry + 1)).await;
    let ok = app.sign_in(&app.a.slug, &email, PASSWORD).await;
    assert!(
        ok["data"]["access_token"].is_string(),
        "no permanent lockout: {ok}"
    );
}

#[tokio::test]
async fn a_refresh_token_rotates_and_its_replay_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let first = app
        .sign_in(
            &app.a.slug,
            &email_of(&app.a.slug, Role::Employee),
            PASSWORD,
        )
        .await;
    let r1 = first["data"]["refresh_token"].as_str().unwrap().to_string();
    let (s, second) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r2 = second["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(r1, r2);
    let access = second["data"]["access_token"].as_str().unwrap();
    assert_eq!(
        app.call(Method::GET, "/api/v1/users/me", Some(access), None)
            .await
            .0,
        StatusCode::OK
    );

    // Replaying the used token is refused and revokes r2 as well.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r2})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=auth.refresh_token_reuse",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        audit["meta"]["total"], 2,
        "both spent tokens were presented: {audit}"
    );
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let first = app
        .sign_in(
            &app.a.slug,
            &email_of(&app.a.slug, Role::Employee),
            PASSWORD,
        )
        .await;
    let r1 = first["data"]["refresh_token"].as_str().unwrap().to_string();
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": r1})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_forged_or_foreign_token_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(Which::A, Role::Administrator).await;
    let mut forged = token.clone();
    forged.pop();
    forged.push('x');
    assert_eq!(
        app.call(Method::GET, "/api/v1/users/me", Some(&forged), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // An unsigned token claiming another algorithm.
    let parts: Vec<&str> = token.split('.').collect();
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert_eq!(
        app.call(Method::GET, "/api/v1/users/me", Some(&unsigned), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // An operator token is not a tenant token.
    let op = app.operator_token().await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/users/me", Some(&op), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_administrator_manages_a_person_through_their_whole_life() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let before = app
        .call(
            Method::GET,
            "/api/v1/users/active_count",
            Some(&admin),
            None,
        )
        .await
        .1["data"]["active_count"]
        .as_i64()
        .unwrap();

    let (s, created) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"email": "  Nia.Osei@Example.COM ", "first_name": "Nia", "last_name": "Osei",
                        "phone": "+44 7700 900 555", "department_id": app.a.department, "role": "foreman",
                        "employee_number": "E-77"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let u = &created["data"];
    assert_eq!(u["email"], "nia.osei@example.com");
    assert_eq!(u["phone"], "+447700900555");
    assert_eq!(u["department_name"], "Operations");
    assert_eq!(
        u["email_verified"], false,
        "created without a password: invited"
    );
    let id = u["id"].as_str().unwrap().to_string();

    // The same email in another case is a conflict on `email`.
    let (s, dup) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"email": "NIA.OSEI@example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(dup["error"]["fields"]["email"].is_array(), "{dup}");

    // Search, filter and sort find them.
    let (_, found) = app
        .call(
            Method::GET,
            "/api/v1/users?search=osei&role=foreman",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(found["meta"]["total"], 1);
    assert_eq!(found["data"][0]["id"], id.as_str());

    // PATCH changes only what it names; null clears.
    let (s, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(json!({"position": "Lead", "phone": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["data"]["position"], "Lead");
    assert_eq!(patched["data"]["phone"], Value::Null);
    assert_eq!(patched["data"]["first_name"], "Nia");

    // PUT replaces the record.
    let (s, put) = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(json!({"email": "nia@example.com", "username": "nia", "first_name": "Nia", "last_name": "Osei-Mensah",
                        "role": "manager", "is_active": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(put["data"]["last_name"], "Osei-Mensah");
    assert_eq!(put["data"]["position"], Value::Null);
    assert_eq!(put["data"]["department_id"], Value::Null);

    assert_eq!(
        app.call(
            Method::GET,
            "/api/v1/users/active_count",
            Some(&admin),
            None
        )
        .await
        .1["data"]["active_count"],
        before + 1
    );

    // Soft delete: gone from reads, visible to administrators on request, restorable.
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (_, deleted) = app
        .call(
            Method::GET,
            "/api/v1/users?include_deleted=true&search=nia@",
            Some(&admin),
            None,
        )
        .await;
    assert!(deleted["data"][0]["deleted_at"].is_string());
    let (s, restored) = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/restore"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(restored["data"]["is_active"], true);

    // Every write is in the audit log with before/after and a request id.
    let (_, audit) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?object_id={id}&per_page=100"),
            Some(&admin),
            None,
        )
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.restore",
            "user.delete",
            "user.update",
            "user.update",
            "user.create"
        ]
    );
    assert!(
        audit["data"][2]["before"]["last_name"] == "Osei"
            && audit["data"][2]["after"]["last_name"] == "Osei-Mensah"
    );
    assert!(!audit["data"][0]["request_id"].as_str().unwrap().is_empty());
    let (_, verify) = app
        .call(Method::GET, "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(verify["data"]["intact"], true);
}

#[tokio::test]
async fn administrators_cannot_lock_themselves_out() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let me = app.a.people[&Role::Administrator];
    let (s, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{me}"),
            Some(&admin),
            Some(json!({"role": "employee"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body["error"]["fields"]["role"].is_array());
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/users/{me}"),
            Some(&admin),
            None
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn lists_paginate_with_a_default_of_ten_and_a_maximum_of_one_hundred() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    for i in 0..9 {
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({"email": format!("p{i}@example.com")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (_, page1) = app
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 10);
    assert_eq!(
        page1["meta"],
        json!({"page": 1, "per_page": 10, "total": 15, "total_pages": 2})
    );
    let (_, page2) = app
        .call(Method::GET, "/api/v1/users?page=2", Some(&admin), None)
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 5);
    let (_, beyond) = app
        .call(Method::GET, "/api/v1/users?page=9", Some(&admin), None)
        .await;
    assert_eq!(beyond["meta"]["total"], 15);
    let (_, sorted) = app
        .call(
            Method::GET,
            "/api/v1/users?sort=-email&per_page=100",
            Some(&admin),
            None,
        )
        .await;
    let emails: Vec<&str> = sorted["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    let mut expected = emails.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(emails, expected);
    let (s, e) = app
        .call(
            Method::GET,
            "/api/v1/users?sort=password_hash",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["sort"].is_array());
    let (s, e) = app
        .call(
            Method::GET,
            "/api/v1/users?per_page=101",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["per_page"].is_array());
    // Wildcards in a search are literal.
    let (_, none) = app
        .call(Method::GET, "/api/v1/users?search=%25", Some(&admin), None)
        .await;
    assert_eq!(none["meta"]["total"], 0);
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let before = app.fingerprint(app.a.id).await;
    let audit_before = app.count("audit_log", app.a.id).await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"email": 42}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({"email": "not-an-email"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({"email": "ok@example.com", "phone": "07700 900123"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "phone",
        ),
        (
            json!({"email": "ok@example.com", "first_name": "x".repeat(101)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "first_name",
        ),
        (
            json!({"email": "ok@example.com", "role": "emperor"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "role",
        ),
        (
            json!({"email": "ok@example.com", "is_admin": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "is_admin",
        ),
        (
            json!({"email": "ok@example.com", "password": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
        ),
        (
            json!({"email": "ok@example.com", "department_id": "not-a-uuid"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "department_id",
        ),
        (
            json!({"email": "ok@example.com", "department_id": uuid::Uuid::new_v4()}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "department_id",
        ),
        (
            json!({"first_name": "No email"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (json!([1, 2, 3]), StatusCode::UNPROCESSABLE_ENTITY, "body"),
    ];
    for (body, status, field) in cases {
        let (s, resp) = app
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, status, "{body} → {resp}");
        assert_eq!(resp["error"]["code"], "validation_failed");
        assert!(
            resp["error"]["fields"][field].is_array(),
            "{body} should name {field}: {resp}"
        );
        assert!(resp["error"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()));
    }
    // Malformed JSON and the wrong content type are 400s.
    let (s, resp) = app
        .call_raw(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            "application/json",
            b"{\"email\":".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["error"]["code"], "bad_request");
    let (s, _) = app
        .call_raw(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            "text/plain",
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A huge body is refused before it is read.
    let huge = format!(
        "{{\"email\":\"{}@example.com\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let (s, resp) = app
        .call_raw(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{resp}");
    // A body over the JSON limit but under the global one is refused too.
    let big = format!("{{\"email\":\"{}@example.com\"}}", "a".repeat(100 * 1024));
    let (s, _) = app
        .call_raw(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            "application/json",
            big.into_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // A bad path id names `id`.
    let (s, resp) = app
        .call(Method::GET, "/api/v1/users/not-a-uuid", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp["error"]["fields"]["id"].is_array(), "{resp}");
    // PATCH removing the email of a person without an employee number names it (a person
    // keeps one of the two).
    let target = app.a.people[&Role::Employee];
    let (s, resp) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{target}"),
            Some(&admin),
            Some(json!({"email": null})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp["error"]["fields"]["email"].is_array(), "{resp}");

    assert_eq!(
        app.fingerprint(app.a.id).await,
        before,
        "nothing was written"
    );
    assert_eq!(app.count("audit_log", app.a.id).await, audit_before);
}

#[tokio::test]
async fn a_person_updates_their_profile_but_not_their_role() {
    let app = TestApp::spawn().await;
    let token = app.token(Which::A, Role::Employee).await;
    let (s, body) = app
        .call(Method::PUT, "/api/v1/users/me", Some(&token), Some(json!({"first_name": "Em", "last_name": "Ploy", "phone": "+15551234567", "role": "administrator"})))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown field role: {body}"
    );
    let (s, body) = app
        .call(
            Method::PUT,
            "/api/v1/users/me",
            Some(&token),
            Some(json!({"first_name": "Em", "last_name": "Ploy", "phone": "+15551234567"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["phone"], "+15551234567");
    assert_eq!(body["data"]["role"], "employee");
}

#[tokio::test]
async fn changing_a_password_ends_other_sign_ins() {
    let app = TestApp::spawn().await;
    let email = email_of(&app.a.slug, Role::Trainer);
    let first = app.sign_in(&app.a.slug, &email, PASSWORD).await;
    let access = first["data"]["access_token"].as_str().unwrap();
    let refresh = first["data"]["refresh_token"].as_str().unwrap();
    let (s, e) = app
        .call(Method::POST, "/api/v1/users/me/password", Some(access), Some(json!({"current_password": "wrong-wrong-wrong", "new_password": "a brand new passphrase"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["current_password"].is_array());
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/users/me/password",
            Some(access),
            Some(json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh}))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert!(app
        .sign_in(&app.a.slug, &email, "a brand new passphrase")
        .await["data"]["access_token"]
        .is_string());
}

#[tokio::test]
async fn suspending_a_tenant_stops_its_tokens_at_once_and_reactivating_restores_them() {
    let app = TestApp::spawn().await;
    let op = app.operator_token().await;
    let token = app.token(Which::A, Role::Employee).await;
    let other = app.token(Which::B, Role::Employee).await;
    let (s, t) = app
        .call(
            Method::POST,
            &format!("/api/v1/platform/tenants/{}/suspend", app.a.id),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["data"]["status"], "suspended");
    assert_eq!(
        app.call(Method::GET, "/api/v1/users/me", Some(&token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/users/me", Some(&other), None)
            .await
            .0,
        StatusCode::OK,
        "other tenants carry on"
    );
    let body = app
        .sign_in(
            &app.a.slug,
            &email_of(&app.a.slug, Role::Employee),
            PASSWORD,
        )
        .await;
    assert_eq!(body["error"]["code"], "unauthorized");
    // Suspending twice is a conflict, not a silent success.
    assert_eq!(
        app.call(
            Method::POST,
            &format!("/api/v1/platform/tenants/{}/suspend", app.a.id),
            Some(&op),
            None
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/platform/tenants/{}/reactivate", app.a.id),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.call(Method::GET, "/api/v1/users/me", Some(&token), None)
            .await
            .0,
        StatusCode::OK
    );
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=tenant.suspend",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit["data"][0]["actor_kind"], "operator");
}

#[tokio::test]
async fn operators_create_and_list_tenants_with_validation() {
    let app = TestApp::spawn().await;
    let op = app.operator_token().await;
    let slug = format!("new-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (s, t) = app
        .call(
            Method::POST,
            "/api/v1/platform/tenants",
            Some(&op),
            Some(json!({"slug": slug, "name": "New Org", "time_zone": "Africa/Lagos"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["data"]["time_zone"], "Africa/Lagos");
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/platform/tenants",
            Some(&op),
            Some(json!({"slug": slug, "name": "Again"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, e) = app
        .call(
            Method::POST,
            "/api/v1/platform/tenants",
            Some(&op),
            Some(json!({"slug": "Bad Slug", "name": "", "time_zone": "Mars"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for f in ["slug", "name", "time_zone"] {
        assert!(e["error"]["fields"][f].is_array(), "{f}: {e}");
    }
    let (_, list) = app
        .call(
            Method::GET,
            "/api/v1/platform/tenants?per_page=100",
            Some(&op),
            None,
        )
        .await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["slug"] == slug.as_str()));
}

#[tokio::test]
async fn tenant_administrators_change_settings_with_validation() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, t) = app
        .call(Method::PUT, "/api/v1/tenant", Some(&admin), Some(json!({"name": "Acme Rail", "time_zone": "Europe/Paris", "locale": "fr",
              "settings": {"primary_colour": "#aa3300", "logo_url": null, "inactive_after_days": 90, "notification_channels": ["email", "sms"]}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["data"]["settings"]["inactive_after_days"], 90);
    let (s, e) = app
        .call(Method::PUT, "/api/v1/tenant", Some(&admin), Some(json!({"name": "Acme", "time_zone": "Europe/Paris", "locale": "fr",
              "settings": {"primary_colour": "red", "logo_url": null, "inactive_after_days": 90, "notification_channels": ["pigeon"]}})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        e["error"]["fields"]["settings.primary_colour"].is_array(),
        "{e}"
    );
    assert!(e["error"]["fields"]["settings.notification_channels"].is_array());
    let (_, mine) = app
        .call(Method::GET, "/api/v1/tenant", Some(&admin), None)
        .await;
    assert_eq!(
        mine["data"]["name"], "Acme Rail",
        "the refused change was not applied"
    );
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let app = TestApp::spawn().await;
    for path in [
        "/health",
        "/api/v1/users",
        "/portal/login",
        "/api/v1/openapi.json",
        "/nowhere",
    ] {
        let resp = app
            .client
            .get(format!("{}{path}", app.base))
            .header("x-request-id", "trace-123")
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        for name in [
            "strict-transport-security",
            "content-security-policy",
            "x-frame-options",
            "x-content-type-options",
            "referrer-policy",
        ] {
            assert!(h.contains_key(name), "{path} lacks {name}");
        }
        assert_eq!(h["x-request-id"], "trace-123");
    }
}

#[tokio::test]
async fn cors_answers_only_allowed_origins() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/api/v1/users", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example.com")
    );
    let bad = preflight("https://evil.example").await.unwrap();
    assert!(bad.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_per_address_rate_limit_answers_429_with_retry_after() {
    let app = TestApp::spawn_with(Options {
        rate_limit_per_ip: 5,
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let resp = app
            .client
            .get(format!("{}/api/v1/openapi.json", app.base))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 5);
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // Health checks are never rate limited.
    assert_eq!(
        app.client
            .get(format!("{}/health", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// The fields an error names.
fn error_fields(v: &Value) -> Vec<String> {
    v["error"]["fields"]
        .as_object()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn far_future_and_far_past_dates_are_a_422_naming_the_field_never_a_panic() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let preview = |body: Value| {
        app.call(
            Method::POST,
            "/api/v1/certification-types/preview",
            Some(&admin),
            Some(body),
        )
    };
    for start in ["9999-01-01", "3000-01-01", "1899-12-31", "0001-01-01"] {
        let (s, v) = preview(json!({"validity_months": 12, "renewal_window_days": 90,
                                    "start_date": start}))
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{start}: {v}");
        assert_eq!(error_fields(&v), vec!["start_date"], "{v}");
        assert_eq!(v["error"]["code"], "validation_failed");
    }
    // In range, but the cycles would run past 2999: named too.
    let (s, v) = preview(json!({"validity_months": 240, "renewal_window_days": 90,
                                "start_date": "2990-01-01", "cycles": 10}))
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_fields(&v), vec!["start_date"], "{v}");
    let (s, v) = preview(json!({"validity_months": 12, "renewal_window_days": 90,
                                "start_date": "2998-01-01", "cycles": 2}))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"][1]["expires_on"], "2999-12-31");

    let (s, t) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(json!({"code": "FAR", "name": "Far future", "validity_months": 24})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let type_id = t["data"]["id"].clone();
    let employee = app.a.people[&Role::Employee];
    let record = |issued: &str, expires: Option<&str>| {
        let mut body = json!({"user_id": employee, "type_id": type_id, "issued_on": issued});
        if let Some(e) = expires {
            body["expires_on"] = json!(e);
        }
        app.call(
            Method::POST,
            "/api/v1/certifications",
            Some(&admin),
            Some(body),
        )
    };
    for (issued, expires, field) in [
        ("9999-12-31", None, "issued_on"),
        ("1066-10-14", None, "issued_on"),
        // The expiry from the type's 24 months would fall in 3000.
        ("2998-06-01", None, "issued_on"),
        ("2026-01-01", Some("9999-12-31"), "expires_on"),
    ] {
        let (s, v) = record(issued, expires).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{issued} {expires:?}: {v}"
        );
        assert_eq!(error_fields(&v), vec![field], "{v}");
    }
    // Out-of-office delegations: RFC 3339 times in the same years.
    let (s, v) = app
        .call(
            Method::POST,
            "/api/v1/delegations",
            Some(&admin),
            Some(json!({"delegate_id": app.a.people[&Role::Manager],
                        "starts_at": "2026-01-01T00:00:00Z", "ends_at": "9999-12-31T23:59:59-23:59"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_fields(&v), vec!["ends_at"], "{v}");
    // Nothing panicked: the server answers, and the metrics count no panic.
    let (s, _) = record("2026-01-01", None).await;
    assert_eq!(s, StatusCode::CREATED);
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("trainflow_panics_total 0"), "{text}");
}

/// `/metrics` of `app`, as text.
async fn metrics_text(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `series` (name and labels exactly as written) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

#[tokio::test]
async fn metrics_report_jobs_the_outbox_connector_runs_and_the_pool() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let before = metrics_text(&app).await;
    assert!(sample(&before, "trainflow_db_pool_max") >= 1.0, "{before}");
    let waiting = sample(&before, "trainflow_outbox_waiting");

    // A job run here counts under its name.
    let job = "renewals.escalations";
    app.runner.run_now(job).await.unwrap();
    // A broadcast to everyone queues an email per person.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "all", "title": "Drill", "body": "At noon."})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let reached = b["data"]["recipients"].as_f64().unwrap_or(0.0);
    assert!(reached >= 1.0, "{b}");
    // A connector run counts with its fuel and memory.
    app.fresh_run(Which::A).await;

    let after = metrics_text(&app).await;
    assert_eq!(
        sample(
            &after,
            &format!("trainflow_job_runs_total{{job=\"{job}\",outcome=\"succeeded\"}}")
        ),
        sample(
            &before,
            &format!("trainflow_job_runs_total{{job=\"{job}\",outcome=\"succeeded\"}}")
        ) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, "trainflow_outbox_waiting") >= waiting + reached,
        "{after}"
    );
    let succeeded = "{status=\"succeeded\"}";
    assert_eq!(
        sample(
            &after,
            &format!("trainflow_connector_runs_total{succeeded}")
        ),
        1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            &format!("trainflow_connector_fuel_total{succeeded}")
        ) > 0.0
    );
    assert!(
        sample(
            &after,
            &format!("trainflow_connector_peak_memory_bytes{succeeded}")
        ) > 0.0
    );
    assert!(
        after.contains("# TYPE trainflow_work_items gauge"),
        "{after}"
    );
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template_so_random_paths_cannot_grow_them() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    for who in [Role::Employee, Role::Manager, Role::Trainer] {
        let (s, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/users/{}", app.a.people[&who]),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for i in 0..40 {
        for path in [
            format!("/nothing-{i}"),
            format!("/api/v1/nothing/{i}"),
            format!("/portal/nothing-{i}"),
        ] {
            let resp = app
                .client
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("trainflow_http_requests_total{"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(labels.contains("GET /api/v1/users/{id}"), "{labels:?}");
    assert!(labels.contains("unmatched"), "{labels:?}");
    assert!(
        labels.iter().all(|l| !l.contains("nothing")),
        "no label from a request's path: {labels:?}"
    );
    assert!(labels.len() < 10, "{labels:?}");
    assert!(
        text.contains(
            "trainflow_http_requests_total{operation=\"GET /api/v1/users/{id}\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "trainflow_http_requests_total{operation=\"GET /api/v1/users/{id}\",status=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("trainflow_http_requests_total{operation=\"unmatched\",status=\"404\"} 120"),
        "{text}"
    );
}

#[tokio::test]
async fn health_and_metrics_report_the_service() {
    let app = TestApp::spawn().await;
    let (s, h) = app.call(Method::GET, "/health", None, None).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, db) = app.call(Method::GET, "/health/db", None, None).await;
    assert_eq!(s, StatusCode::OK, "{db}");
    let (s, jobs) = app.call(Method::GET, "/health/jobs", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(jobs["jobs"][0]["name"], "identity.cleanup_inactive_users");
    let admin = app.token(Which::A, Role::Administrator).await;
    app.call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "trainflow_http_requests_total{operation=\"GET /api/v1/users\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("trainflow_http_request_duration_seconds_bucket"));
    assert!(text.contains("trainflow_db_pool_connections"));
}

#[tokio::test]
async fn the_openapi_document_describes_the_envelope_and_errors() {
    let app = TestApp::spawn().await;
    let (s, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let users_get = &doc["paths"]["/api/v1/users"]["get"];
    let params: Vec<&str> = users_get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "page",
        "per_page",
        "search",
        "role",
        "department_id",
        "is_active",
        "sort",
    ] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
    assert!(users_get["responses"]["422"].is_object());
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    let docs = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("swagger"));
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /portal/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 256 * 1024];
    for _ in 0..8 {
        let _ = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = stream.write_all(&chunk).await;
        let _ = stream.write_all(b"\r\n").await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "{}",
        &text[..text.len().min(200)]
    );
}

/// The schema `s` of the OpenAPI document `doc` with `$ref`s followed.
fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        s = &doc["components"]["schemas"][name];
        assert!(s.is_object(), "unknown schema {r}");
    }
    s
}

/// Records where `value` breaks `schema`: a `null` the schema does not declare nullable, or an
/// object member the schema does not declare.
fn conform(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let nullable = schema["nullable"] == true;
    let schema = resolve(doc, schema);
    if let Some(all) = schema["allOf"].as_array() {
        if value.is_null() && (nullable || schema["nullable"] == true) {
            return;
        }
        for s in all {
            conform(doc, s, value, at, errors);
        }
        return;
    }
    if schema.get("oneOf").is_some() || schema.get("anyOf").is_some() {
        return;
    }
    let declared = schema.as_object().is_some_and(|o| {
        o.contains_key("type") || o.contains_key("properties") || o.contains_key("enum")
    });
    if value.is_null() {
        if declared && !nullable && schema["nullable"] != true {
            errors.push(format!("{at}: null for {schema}"));
        }
        return;
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (key, v) in obj {
            match props.get(key) {
                Some(s) => conform(doc, s, v, &format!("{at}.{key}"), errors),
                None if schema.get("additionalProperties").is_some() => {}
                None => errors.push(format!("{at}.{key}: not declared")),
            }
        }
    } else if let (Some(extra), Some(obj)) = (
        schema["additionalProperties"].as_object(),
        value.as_object(),
    ) {
        let extra = Value::Object(extra.clone());
        for (key, v) in obj {
            conform(doc, &extra, v, &format!("{at}.{key}"), errors);
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            conform(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Every JSON answer of every GET operation of the demo tenant — lists, then each detail path
/// with the id of the list's first object — for an administrator and an employee: optional
/// fields are left out when absent, never `null` where the OpenAPI document does not say so, and
/// nothing is answered that the document does not declare.
#[tokio::test]
async fn get_answers_match_the_openapi_document_and_carry_no_undeclared_nulls() {
    let app = TestApp::spawn_with(Options {
        demo: true,
        ..Options::default()
    })
    .await;
    let (s, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let mut errors = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    for who in ["admin", "alice.brown"] {
        let token = {
            let body = app
                .sign_in(
                    "demo",
                    &format!("{who}@demo.trainflow.test"),
                    "TrainFlow-demo-2026",
                )
                .await;
            body["data"]["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("{who} signs in: {body}"))
                .to_string()
        };
        // The first object id each list answered, by the list's path.
        let mut first_ids: std::collections::HashMap<String, String> = Default::default();
        // Lists first (no path parameter), then paths with one parameter.
        let mut templates: Vec<&String> = paths.keys().collect();
        templates.sort_by_key(|p| (p.matches('{').count(), p.len()));
        for template in templates {
            let op = &paths[template.as_str()]["get"];
            if !op.is_object() || template.matches('{').count() > 1 {
                continue;
            }
            let path = match template.find('{') {
                None => template.clone(),
                Some(start) => {
                    let list = template[..start].trim_end_matches('/');
                    let Some(id) = first_ids.get(list) else {
                        continue;
                    };
                    let end = start + template[start..].find('}').expect("closing brace");
                    format!("{}{id}{}", &template[..start], &template[end + 1..])
                }
            };
            let resp = app
                .client
                .get(format!("{}{path}", app.base))
                .bearer_auth(&token)
                .send()
                .await
                .expect("request");
            let status = resp.status();
            let is_json = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/json"));
            let text = resp.text().await.expect("body");
            assert!(
                !status.is_server_error(),
                "GET {path} as {who}: {status} {text}"
            );
            if status != StatusCode::OK || !is_json {
                continue;
            }
            let body: Value = serde_json::from_str(&text).expect("JSON");
            let content = op["responses"]["200"]["content"]
                .as_object()
                .expect("200 content");
            let schema = content
                .iter()
                .find(|(ct, _)| ct.starts_with("application/json"))
                .map(|(_, c)| &c["schema"])
                .unwrap_or_else(|| panic!("GET {template}: no JSON schema"));
            conform(
                &doc,
                schema,
                &body,
                &format!("GET {template} as {who}"),
                &mut errors,
            );
            if let Some(id) = body["data"]
                .as_array()
                .and_then(|l| l.first())
                .and_then(|o| o["id"].as_str())
            {
                first_ids.insert(template.clone(), id.to_string());
            }
            let non_empty = match &body["data"] {
                Value::Array(l) => !l.is_empty(),
                other => !other.is_null(),
            };
            if non_empty {
                checked.insert(template.clone());
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    for must in [
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/me",
        "/api/v1/audit",
        "/api/v1/notifications",
        "/api/v1/tenant",
        "/api/v1/certifications",
        "/api/v1/certifications/{id}",
    ] {
        assert!(
            checked.contains(must),
            "{must} was not checked: {checked:?}"
        );
    }
}

#[tokio::test]
async fn an_undeclared_method_is_405_with_allow_and_an_unknown_path_is_404() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    for (method, path, template) in [
        (Method::DELETE, "/api/v1/audit".to_string(), "/api/v1/audit"),
        (Method::PUT, "/api/v1/users".to_string(), "/api/v1/users"),
        (
            Method::POST,
            format!("/api/v1/users/{}", app.a.people[&Role::Employee]),
            "/api/v1/users/{id}",
        ),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let allow: Vec<String> = resp
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow"))
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        assert_eq!(body["error"]["request_id"], request_id.as_str());
        // Exactly the methods the OpenAPI document declares for the path.
        let mut declared: Vec<String> = doc["paths"][template]
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        declared.sort();
        let mut sorted = allow.clone();
        sorted.sort();
        assert_eq!(sorted, declared, "{method} {path}");
        assert!(allow.contains(&"GET".to_string()), "{allow:?}");
    }
    for (method, path) in [
        (Method::DELETE, "/api/v1/nowhere"),
        (Method::GET, "/api/v1/audit/nothing/here"),
    ] {
        let (s, body) = app.call(method.clone(), path, Some(&admin), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[tokio::test]
async fn every_limit_the_schema_states_is_enforced_and_names_the_field() {
    let app = TestApp::spawn().await;
    // A body limit the use case does not check itself: the schema's maxLength.
    let long_email = format!("{}@example.com", "a".repeat(300));
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(json!({"tenant": app.a.slug, "email": long_email})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["email"].is_array(), "{body}");

    let employee = app.token(Which::A, Role::Employee).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/renewals",
            Some(&employee),
            Some(json!({"certification_id": uuid::Uuid::nil(), "comment": "x".repeat(2001)})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["comment"].is_array(), "{body}");
    // Nothing was written: the employee has no renewal request.
    let (_, mine) = app
        .call(Method::GET, "/api/v1/renewals", Some(&employee), None)
        .await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(0), "{mine}");
}

/// Sends `bytes` of file to `path` with `token` and returns the answer's status (a connection
/// reset fails the test).
async fn upload(app: &TestApp, path: &str, token: Option<&str>, bytes: usize) -> StatusCode {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/octet-stream")
        .body(vec![b'x'; bytes]);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(resp) => resp.status(),
        Err(e) => panic!("{path}: the answer was lost ({e:?})"),
    }
}

/// The status line the server answers a request for `path` that announces `bytes` of body
/// and waits for `100 Continue` before sending any: a refusal comes without the body.
async fn status_before_body(app: &TestApp, path: &str, token: &str, bytes: usize) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let host = app.base.trim_start_matches("http://");
    let host = host.split('/').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {bytes}\r\n\
         Expect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        BufReader::new(stream).read_line(&mut line),
    )
    .await
    .expect("an answer without the body")
    .unwrap();
    line.trim_end().to_string()
}

#[tokio::test]
async fn a_refused_upload_is_answered_before_its_file_is_read_and_the_client_gets_the_answer() {
    let app = TestApp::spawn().await;
    let employee = app.token(Which::A, Role::Employee).await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let nowhere = uuid::Uuid::now_v7();
    let mib = 1024 * 1024;
    for _ in 0..3 {
        // No token, a role that may not upload, an object that is not there: each answered,
        // with the body the client was still sending drained, never a reset connection.
        let files = format!("/api/v1/connectors/installations/{nowhere}/files?filename=a.csv");
        assert_eq!(
            upload(&app, &files, None, 4 * mib).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            upload(&app, &files, Some(&employee), 4 * mib).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            upload(&app, &files, Some(&admin), 4 * mib).await,
            StatusCode::NOT_FOUND
        );
        let evidence = format!("/api/v1/renewals/{nowhere}/evidence?filename=proof.pdf");
        assert_eq!(
            upload(&app, &evidence, Some(&employee), 8 * mib).await,
            StatusCode::NOT_FOUND
        );
        // A package (multipart) from a role that may not upload one.
        let form = reqwest::multipart::Form::new().text("manifest", "{}").part(
            "component",
            reqwest::multipart::Part::bytes(vec![0u8; 16 * mib]).file_name("c.wasm"),
        );
        let (s, body) = app
            .call_multipart("/api/v1/connectors/packages", Some(&employee), form)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    }
    // Who may send the file, and to what, is settled before the server asks for its body.
    let files = format!("/api/v1/connectors/installations/{nowhere}/files?filename=a.csv");
    let evidence = format!("/api/v1/renewals/{nowhere}/evidence?filename=proof.pdf");
    for (path, token, expected) in [
        (&files, &employee, "HTTP/1.1 403 Forbidden"),
        (&files, &admin, "HTTP/1.1 404 Not Found"),
        (&evidence, &employee, "HTTP/1.1 404 Not Found"),
    ] {
        assert_eq!(
            status_before_body(&app, path, token, 8 * mib).await,
            expected,
            "{path}"
        );
    }
    // The server still answers on the same client.
    let (s, _) = app
        .call(Method::GET, "/api/v1/users/me", Some(&employee), None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

/// Posts to `/auth/token`, waiting out the back-off (429 with Retry-After) first.
async fn token_attempt(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    loop {
        let resp = app
            .client
            .post(format!("{}/api/v1/auth/token", app.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
            continue;
        }
        return (status, resp.json().await.unwrap_or_default());
    }
}

/// Frontline staff without email: an administrator adds them by employee number, their
/// foreman sets a PIN, they sign in with organisation, employee number and PIN; ten wrong PINs
/// in a row lock it (and the answer says so) until the foreman sets a new one.
#[tokio::test]
async fn a_person_without_email_signs_in_with_employee_number_and_pin_which_locks_after_ten_failures(
) {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let number = format!("F{}", trainflow_tests::short_unique());
    // Neither an email nor an employee number: refused, naming the field.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"first_name": "No", "last_name": "Key"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["email"].is_array(), "{b}");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"employee_number": number, "first_name": "Mia", "last_name": "Novak"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(b["data"].get("email").is_none(), "{b}");
    assert_eq!(b["data"]["has_pin"], false);
    let id: uuid::Uuid = b["data"]["id"].as_str().unwrap().parse().unwrap();
    let foreman = app.a.people[&Role::Foreman];
    app.set_reporting_lines(Which::A, id, Some(foreman), None)
        .await;

    // A PIN of 2 digits is refused at the field; a manager may not set PINs; a foreman only
    // for the people who report to them.
    let foreman_token = app.token(Which::A, Role::Foreman).await;
    let pin_path = format!("/api/v1/users/{id}/pin");
    let (s, b) = app
        .call(
            Method::PUT,
            &pin_path,
            Some(&foreman_token),
            Some(json!({"pin": "12"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["pin"].is_array(), "{b}");
    let manager = app.token(Which::A, Role::Manager).await;
    let (s, _) = app
        .call(
            Method::PUT,
            &pin_path,
            Some(&manager),
            Some(json!({"pin": "583920"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let stranger = app.fresh_user(Which::A).await;
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{stranger}/pin"),
            Some(&foreman_token),
            Some(json!({"pin": "583920"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "not the foreman's team");
    let (s, b) = app
        .call(
            Method::PUT,
            &pin_path,
            Some(&foreman_token),
            Some(json!({"pin": "583920"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["has_pin"], true);

    // Organisation, employee number and PIN.
    let signed = app.sign_in(&app.a.slug, &number, "583920").await;
    let token = signed["data"]["access_token"]
        .as_str()
        .expect("signed in")
        .to_string();
    let (_, me) = app
        .call(Method::GET, "/api/v1/users/me", Some(&token), None)
        .await;
    assert_eq!(me["data"]["employee_number"], number.as_str());

    // Ten wrong PINs in a row lock it; the tenth answer and every later one say so.
    let wrong = json!({"tenant": app.a.slug, "email": number, "password": "000000"});
    for attempt in 1..=10 {
        let (s, b) = token_attempt(&app, &wrong).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let locked = b["error"]["message"].as_str().unwrap().contains("locked");
        assert_eq!(locked, attempt == 10, "attempt {attempt}: {b}");
    }
    let right = json!({"tenant": app.a.slug, "email": number, "password": "583920"});
    let (s, b) = token_attempt(&app, &right).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the right PIN is locked too: {b}"
    );
    assert!(
        b["error"]["message"].as_str().unwrap().contains("foreman"),
        "{b}"
    );
    let (_, person) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(person["data"]["pin_locked"], true, "{person}");
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=auth.pin_locked",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit["meta"]["total"], 1, "{audit}");

    // The foreman sets a new PIN: unlocked.
    let (s, b) = app
        .call(
            Method::PUT,
            &pin_path,
            Some(&foreman_token),
            Some(json!({"pin": "7215064"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["pin_locked"], false);
    let (s, b) = token_attempt(
        &app,
        &json!({"tenant": app.a.slug, "email": number, "password": "7215064"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// A picture is checked, squared, resized and re-encoded by the server, served with an ETag
/// (304 when current), visible in the tenant only, and removable; what is not a picture, or
/// too large, is refused at the field and stores nothing.
#[tokio::test]
async fn a_person_sets_a_picture_the_server_resizes_and_serves_with_cache_headers() {
    let app = TestApp::spawn().await;
    let (id, email) = app
        .fresh_person(Which::A, Role::Employee, Some(PASSWORD))
        .await;
    let signed = app.sign_in(&app.a.slug, &email, PASSWORD).await;
    let me = signed["data"]["access_token"].as_str().unwrap().to_string();
    let put = |bytes: Vec<u8>, kind: &'static str| {
        let (app, me) = (app.clone(), me.clone());
        async move {
            app.call_raw(
                Method::PUT,
                "/api/v1/users/me/avatar",
                Some(&me),
                kind,
                bytes,
            )
            .await
        }
    };
    // Not a picture; a truncated one; 6 MB: refused, nothing stored.
    let (s, b) = put(b"%PDF-1.7 a certificate".to_vec(), "application/pdf").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["file"].is_array(), "{b}");
    let (s, b) = put(trainflow_tests::png(50, 50)[..60].to_vec(), "image/png").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let mut huge = trainflow_tests::png(8, 8);
    huge.resize(6 * 1024 * 1024, 0);
    let (s, _) = put(huge, "image/png").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("user_avatars", app.a.id).await, 0);

    // A photo of a few megabytes (noise compresses badly): under the 5 MB limit, accepted.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let noise = image::RgbImage::from_fn(1100, 1000, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
    });
    let mut photo = Vec::new();
    noise
        .write_to(
            &mut std::io::Cursor::new(&mut photo),
            image::ImageFormat::Png,
        )
        .unwrap();
    assert!(photo.len() > 2 * 1024 * 1024, "{} bytes", photo.len());
    let (s, b) = put(photo, "image/png").await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, b) = put(trainflow_tests::png(640, 480), "image/png").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["has_avatar"], true);
    let url = format!("{}/api/v1/users/{id}/avatar", app.base);
    let colleague = app.token(Which::A, Role::Manager).await;
    let resp = app
        .client
        .get(&url)
        .bearer_auth(&colleague)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let picture = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((picture.width(), picture.height()), (256, 256));
    let again = app
        .client
        .get(&url)
        .bearer_auth(&colleague)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    // Another tenant does not see it.
    let other = app.token(Which::B, Role::Administrator).await;
    let resp = app
        .client
        .get(&url)
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // A bio beside it.
    let (s, b) = app
        .call(Method::PUT, "/api/v1/users/me", Some(&me),
              Some(json!({"first_name": "Fixture", "last_name": "Person", "bio": "Welder, 12 years on the line."})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["bio"], "Welder, 12 years on the line.");
    assert_eq!(b["data"]["has_avatar"], true);

    let (s, _) = app
        .call(Method::DELETE, "/api/v1/users/me/avatar", Some(&me), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let resp = app
        .client
        .get(&url)
        .bearer_auth(&colleague)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// An administrator uploads the organisation's logo: the server shrinks and re-encodes it,
/// `settings.logo_url` points at its public address (no credentials: emails are read signed
/// out), the portal's header and the emails show it beside the brand colour, and removing it
/// clears the address. Bad pictures are refused at the field; other roles are refused.
#[tokio::test]
async fn an_administrator_brands_the_portal_and_the_emails_with_a_logo_and_a_colour() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let put = |token: String, bytes: Vec<u8>| {
        let app = app.clone();
        async move {
            app.call_raw(
                Method::PUT,
                "/api/v1/tenant/logo",
                Some(&token),
                "image/png",
                bytes,
            )
            .await
        }
    };
    let (s, b) = put(admin.clone(), b"GIF89a not ours".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["fields"]["file"].is_array(), "{b}");
    let manager = app.token(Which::A, Role::Manager).await;
    let (s, _) = put(manager, trainflow_tests::png(40, 20)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.count("tenant_logos", app.a.id).await, 0);

    let (s, b) = put(admin.clone(), trainflow_tests::png(1200, 400)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let logo_url = b["data"]["settings"]["logo_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        logo_url.starts_with(&format!("/api/v1/branding/{}/logo?v=", app.a.id)),
        "{logo_url}"
    );
    // Anyone may fetch it, with cache headers; it fits 480 × 160, proportions kept.
    let resp = app
        .client
        .get(format!("{}{logo_url}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public"));
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let logo = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((logo.width(), logo.height()), (480, 160));
    let again = app
        .client
        .get(format!("{}{logo_url}", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    // Tenant B has none.
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/branding/{}/logo", app.b.id),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The colour and the logo in the portal's header.
    let (_, t) = app
        .call(Method::GET, "/api/v1/tenant", Some(&admin), None)
        .await;
    let mut body = t["data"].clone();
    body["settings"]["primary_colour"] = json!("#ffd700");
    let update = json!({"name": body["name"], "time_zone": body["time_zone"],
                        "locale": body["locale"], "settings": body["settings"]});
    let (s, b) = app
        .call(Method::PUT, "/api/v1/tenant", Some(&admin), Some(update))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let portal = app.portal_client(Which::A, Role::Employee).await;
    let (_, page) = app.portal_get(&portal, "/portal/").await;
    assert!(
        page.contains(&format!("<img class=\"logo\" src=\"{logo_url}\""))
            && page.contains("/portal/static/brand.css?c=ffd700"),
        "{page}"
    );
    let (s, css) = app
        .portal_get(&portal, "/portal/static/brand.css?c=ffd700")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        css.contains("background: #ffd700") && css.contains("color: #1b1f24"),
        "dark text on a light colour: {css}"
    );

    // And in the emails.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "role", "role": "employee", "title": "Branded", "body": "Hello."})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let html: Vec<(String,)> = app
        .owner_rows(
            "select html_body from outbox where tenant_id = $1 and channel = 'email' and subject = 'Branded'",
            app.a.id,
        )
        .await;
    // An absolute address (the portal's URL and the logo's path): mail clients need one.
    assert!(
        html[0].0.contains("<img src=\"http")
            && html[0].0.contains(&format!("{logo_url}\" alt="))
            && html[0].0.contains("border-top:4px solid #ffd700"),
        "{}",
        html[0].0
    );

    // Removed: the address is cleared and the picture is gone.
    let (s, _) = app
        .call(Method::DELETE, "/api/v1/tenant/logo", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, t) = app
        .call(Method::GET, "/api/v1/tenant", Some(&admin), None)
        .await;
    assert!(t["data"]["settings"].get("logo_url").is_none(), "{t}");
    let resp = app
        .client
        .get(format!("{}{logo_url}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
