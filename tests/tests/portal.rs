//! The web portal: sign-in with CSRF protection, session cookies, people administration, and a
//! real headless Chromium run through the pages.

use reqwest::{Method, StatusCode};
use trainflow_kernel::auth::Role;
use trainflow_tests::{email_of, webdriver::Browser, Options, TestApp, PASSWORD};

/// Pulls `name="csrf" value="…"` out of a page.
fn csrf_of(html: &str) -> String {
    let start =
        html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn portal_sign_in(app: &TestApp, client: &reqwest::Client, role: Role) -> reqwest::Response {
    let login = client
        .get(format!("{}/portal/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&login);
    client
        .post(format!("{}/portal/login", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("organisation", &app.a.slug),
            ("email", &email_of(&app.a.slug, role)),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_in_sets_a_hardened_session_cookie() {
    let app = TestApp::spawn_with(Options {
        cookie_secure: true,
        ..Options::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("{}/portal/login", app.base))
        .send()
        .await
        .unwrap();
    let pre = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let html = login.text().await.unwrap();
    let csrf = csrf_of(&html);
    let resp = client
        .post(format!("{}/portal/login", app.base))
        .header("cookie", pre.split(';').next().unwrap())
        .form(&[
            ("csrf", csrf.as_str()),
            ("organisation", &app.a.slug),
            ("email", &email_of(&app.a.slug, Role::Manager)),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-tf_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session} lacks {attr}");
    }
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let client = browser_client();
    // Sign-in itself needs the token of the form it came from.
    let resp = client
        .post(format!("{}/portal/login", app.base))
        .form(&[
            ("csrf", "forged"),
            ("organisation", app.a.slug.as_str()),
            ("email", &email_of(&app.a.slug, Role::Administrator)),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    assert_eq!(
        portal_sign_in(&app, &client, Role::Administrator)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let before = app.fingerprint(app.a.id).await;
    let resp = client
        .post(format!("{}/portal/users", app.base))
        .form(&[
            ("csrf", "wrong"),
            ("email", "forged@example.com"),
            ("role", "employee"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.fingerprint(app.a.id).await, before);
}

#[tokio::test]
async fn an_administrator_creates_edits_deactivates_and_restores_a_person_in_the_portal() {
    let app = TestApp::spawn().await;
    let client = browser_client();
    assert_eq!(
        portal_sign_in(&app, &client, Role::Administrator)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let dash = client
        .get(format!("{}/portal", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dash.contains("Active people"), "{dash}");
    let new = client
        .get(format!("{}/portal/users/new", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&new);

    // A bad phone re-renders the form with the error and the input kept.
    let resp = client
        .post(format!("{}/portal/users", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "zoe@example.com"),
            ("first_name", "Zoe"),
            ("phone", "12345"),
            ("role", "employee"),
            ("department_id", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Phone must be") && page.contains("value=\"zoe@example.com\""));

    let dept = app.a.department.to_string();
    let resp = client
        .post(format!("{}/portal/users", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "zoe@example.com"),
            ("first_name", "Zoe"),
            ("last_name", "Quinn"),
            ("phone", "+447700900999"),
            ("role", "foreman"),
            ("department_id", dept.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{}",
        resp.text().await.unwrap()
    );
    let list = client
        .get(format!("{}/portal/users?q=zoe", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("Zoe Quinn") && list.contains("Foreman"));
    let id = list
        .split("/portal/users/")
        .filter_map(|rest| rest.split_once("/edit").map(|(id, _)| id.to_string()))
        .next()
        .expect("an edit link");

    let resp = client
        .post(format!("{}/portal/users/{id}", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "zoe@example.com"),
            ("first_name", "Zoe"),
            ("last_name", "Quinn-Hart"),
            ("role", "manager"),
            ("department_id", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = client
        .post(format!("{}/portal/users/{id}/delete", app.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let deleted = client
        .get(format!("{}/portal/users?status=deleted", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(deleted.contains("Zoe Quinn-Hart") && deleted.contains("Deleted"));
    let resp = client
        .post(format!("{}/portal/users/{id}/restore", app.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    // The portal wrote through the same audited use cases as the API.
    let admin = app
        .token(trainflow_tests::Which::A, Role::Administrator)
        .await;
    let (_, audit) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?object_id={id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit["meta"]["total"], 4, "{audit}");
}

#[tokio::test]
async fn people_without_the_permission_do_not_see_the_people_pages() {
    let app = TestApp::spawn().await;
    let client = browser_client();
    assert_eq!(
        portal_sign_in(&app, &client, Role::Employee).await.status(),
        StatusCode::SEE_OTHER
    );
    let dash = client
        .get(format!("{}/portal", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!dash.contains("href=\"/portal/users\""));
    let resp = client
        .get(format!("{}/portal/users", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Signing out ends the session on the server.
    let csrf = csrf_of(&dash);
    let resp = client
        .post(format!("{}/portal/logout", app.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cleared.starts_with("tf_session=;")
            && cleared.contains("Max-Age=0")
            && cleared.contains("Path=/"),
        "{cleared}"
    );
    let resp = client
        .get(format!("{}/portal", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/portal/login");
}

#[tokio::test]
async fn a_person_edits_their_profile_in_the_portal() {
    let app = TestApp::spawn().await;
    let client = browser_client();
    portal_sign_in(&app, &client, Role::Trainer).await;
    let page = client
        .get(format!("{}/portal/profile", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let resp = client
        .post(format!("{}/portal/profile", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("first_name", "Trina"),
            ("last_name", "Trainer"),
            ("phone", "+33612345678"),
            ("address", ""),
            ("gender", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page = client
        .get(format!("{}/portal/profile?saved=1", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"+33612345678\"") && page.contains("Your profile was saved"));
}

#[tokio::test]
async fn in_a_real_browser_an_administrator_signs_in_creates_a_person_and_finds_them() {
    let app = TestApp::spawn_with(Options {
        cookie_secure: true,
        ..Options::default()
    })
    .await;
    let browser = Browser::start(1280, 900).await;
    // Browsers treat loopback as a secure context, so `Secure` cookies work as in production.
    let base = app.base.clone();
    browser.goto(&format!("{base}/portal")).await;
    assert!(browser.url().await.ends_with("/portal/login"));
    browser.fill("#organisation", &app.a.slug).await;
    browser
        .fill("#email", &email_of(&app.a.slug, Role::Administrator))
        .await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    assert!(
        browser.wait_for_text("Welcome,").await,
        "dashboard after sign-in at {}: {}",
        browser.url().await,
        browser.source().await
    );

    browser.goto(&format!("{base}/portal/users/new")).await;
    browser.fill("#email", "browser.made@example.com").await;
    browser.fill("#first_name", "Brow").await;
    browser.fill("#last_name", "Ser").await;
    browser.select("#role", "trainer").await;
    browser.click("form.card button[type=submit]").await;
    assert!(
        browser.wait_for_text("The person was created.").await,
        "{}",
        browser.source().await
    );

    browser.fill("#q", "browser.made").await;
    browser.click(".filters button[type=submit]").await;
    // The unfiltered list already shows the new person; wait for the filtered page itself.
    assert!(
        browser.wait_for_text("1 person<").await,
        "{}",
        browser.source().await
    );
    let html = browser.source().await;
    assert!(
        html.contains("Brow Ser") && html.contains("Trainer") && html.contains("1 person"),
        "{html}"
    );
    if let Ok(dir) = std::env::var("TRAINFLOW_SCREENSHOTS") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("portal-users.png"))
            .await;
    }
}

#[tokio::test]
async fn an_administrator_installs_a_connector_uploads_a_file_and_runs_it_in_the_portal() {
    let app = TestApp::spawn().await;
    let client = browser_client();
    portal_sign_in(&app, &client, Role::Administrator).await;
    let get = |path: String| {
        let client = client.clone();
        let base = app.base.clone();
        async move {
            let resp = client.get(format!("{base}{path}")).send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (s, page) = get("/portal/integrations".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("CSV file") && page.contains("read a file you upload"),
        "{page}"
    );
    let (s, form) = get("/portal/integrations/install?connector=com.trainflow.csv".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(form.contains("What this connector may do"), "{form}");
    let csrf = csrf_of(&form);

    // A configuration the schema refuses comes back with the field named, nothing installed.
    let bad = client
        .post(format!("{}/portal/integrations/install", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("connector_id", "com.trainflow.csv"),
            ("name", "People file"),
            ("config", r#"{"entity": "employee"}"#),
            ("sync_mode", "incremental"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("config"));
    assert_eq!(app.count("connector_installations", app.a.id).await, 0);

    let config = r#"{"entity": "employee", "columns": {"external_id": "Id", "first_name": "First", "last_name": "Last", "email": "Email"}}"#;
    let created = client
        .post(format!("{}/portal/integrations/install", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("connector_id", "com.trainflow.csv"),
            ("name", "People file"),
            ("config", config),
            ("sync_mode", "incremental"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let form = reqwest::multipart::Form::new().text("csrf", csrf.clone()).part(
        "file",
        reqwest::multipart::Part::bytes(
            b"Id,First,Last,Email\nP1,Portal,Person,portal.person@example.com\n,Nameless,Person,x@example.com\n"
                .to_vec(),
        )
        .file_name("people.csv"),
    );
    let uploaded = client
        .post(format!("{}{location}/files", app.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::SEE_OTHER);
    let ran = client
        .post(format!("{}{location}/runs", app.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ran.status(), StatusCode::SEE_OTHER);
    let run_page = ran.headers()["location"].to_str().unwrap().to_string();
    let mut html = String::new();
    for _ in 0..100 {
        html = get(run_page.clone()).await.1;
        if !html.contains("Running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(html.contains("Succeeded"), "{html}");
    assert!(
        html.contains("row 3") && html.contains("external_id"),
        "the rejected row is listed: {html}"
    );
    let (_, history) = get(location.clone()).await;
    assert!(
        history.contains("Succeeded") && history.contains("people.csv"),
        "{history}"
    );
    let (_, people) = get("/portal/users?q=portal.person".into()).await;
    assert!(people.contains("portal.person@example.com"), "{people}");

    // Other roles neither see the pages nor reach them.
    let officer = browser_client();
    portal_sign_in(&app, &officer, Role::TrainingOfficer).await;
    let resp = officer
        .get(format!("{}/portal/integrations", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let dashboard = officer
        .get(format!("{}/portal", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!dashboard.contains("/portal/integrations"));
}

async fn page(client: &reqwest::Client, url: String) -> (StatusCode, String) {
    let resp = client.get(url).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_renewal_is_requested_approved_and_followed_in_the_portal() {
    use serde_json::json;
    use trainflow_tests::Which;
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let employee_id = app.a.people[&Role::Employee];
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{employee_id}/reporting-lines"),
            Some(&admin),
            Some(json!({"manager_id": app.a.people[&Role::Manager]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, t) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(json!({"code": "RIG", "name": "Rigging", "validity_months": 12})),
        )
        .await;
    let expires = time::OffsetDateTime::now_utc().date() + time::Duration::days(-3);
    let (s, c) = app
        .call(
            Method::POST,
            "/api/v1/certifications",
            Some(&admin),
            Some(json!({"user_id": employee_id, "type_id": t["data"]["id"], "issued_on": "2025-01-01", "expires_on": expires.to_string()})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let cert = c["data"]["id"].as_str().unwrap().to_string();

    // The employee sees it expired and asks for its renewal.
    let employee = browser_client();
    portal_sign_in(&app, &employee, Role::Employee).await;
    let (s, html) = page(&employee, format!("{}/portal/certifications", app.base)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Rigging") && html.contains("Expired") && html.contains("3 days ago"),
        "{html}"
    );
    let resp = employee
        .post(format!("{}/portal/certifications/{cert}/renew", app.base))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("comment", "Refresher done"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = page(&employee, format!("{}{location}", app.base)).await;
    assert!(
        html.contains("sent to its first approver") && html.contains("Refresher done"),
        "{html}"
    );
    assert!(
        !html.contains("Your decision"),
        "the employee does not decide: {html}"
    );
    // Asking twice is refused with the reason.
    let resp = employee
        .post(format!("{}/portal/certifications/{cert}/renew", app.base))
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("already open"));

    // The manager finds it in their queue and approves.
    let manager = browser_client();
    portal_sign_in(&app, &manager, Role::Manager).await;
    let (_, queue) = page(&manager, format!("{}/portal/approvals", app.base)).await;
    assert!(queue.contains("Rigging"), "{queue}");
    let (_, html) = page(
        &manager,
        format!("{}{}", app.base, location.split('?').next().unwrap()),
    )
    .await;
    assert!(html.contains("Your decision"), "{html}");
    let resp = manager
        .post(format!(
            "{}{}/decision",
            app.base,
            location.split('?').next().unwrap()
        ))
        .form(&[("csrf", csrf_of(&html).as_str()), ("decision", "reject")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a rejection needs a reason"
    );
    let resp = manager
        .post(format!(
            "{}{}/decision",
            app.base,
            location.split('?').next().unwrap()
        ))
        .form(&[("csrf", csrf_of(&html).as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    // The manager sees the compliance dashboard; the employee may not.
    let (s, html) = page(
        &manager,
        format!("{}/portal/compliance?group_by=role", app.base),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("class=\"bar\"")
            && html.contains("employee: 0 compliant, 0 expiring, 1 expired")
            && html.contains("width=\"100.00\" height=\"10\" class=\"bad\""),
        "{html}"
    );
    let (s, _) = page(&employee, format!("{}/portal/compliance", app.base)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The manager's notification centre lists the request; preferences save.
    let (_, html) = page(&manager, format!("{}/portal/notifications", app.base)).await;
    assert!(html.contains("Renewal to approve: Rigging"), "{html}");
    let resp = manager
        .post(format!("{}/portal/notifications/preferences", app.base))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("renewal.in_app", "on"),
            ("renewal.email", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(
        &manager,
        format!("{}/portal/notifications?notice=saved", app.base),
    )
    .await;
    assert!(html.contains("Your preferences were saved"));
    assert!(
        html.contains("name=\"renewal.email\" aria-label=\"renewal by email\" checked"),
        "{html}"
    );
    assert!(
        html.contains("name=\"system.email\" aria-label=\"system by email\" >"),
        "{html}"
    );
    let manager_token = app.token(Which::A, Role::Manager).await;
    let (_, prefs) = app
        .call(
            Method::GET,
            "/api/v1/notifications/preferences",
            Some(&manager_token),
            None,
        )
        .await;
    let sms = prefs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "renewal" && p["channel"] == "sms")
        .unwrap()
        .clone();
    assert_eq!(
        sms["enabled"], false,
        "an unchecked box turns a channel off"
    );
}

#[tokio::test]
async fn a_training_officer_previews_a_certification_types_timeline_then_saves_it() {
    let app = TestApp::spawn().await;
    let officer = browser_client();
    portal_sign_in(&app, &officer, Role::TrainingOfficer).await;
    let (s, html) = page(&officer, format!("{}/portal/certification-types", app.base)).await;
    assert_eq!(s, StatusCode::OK);
    let csrf = csrf_of(&html);
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
        form.extend(fields.into_iter().map(|(k, v)| (k, v.to_string())));
        officer
            .post(format!("{}/portal/certification-types", app.base))
            .form(&form)
            .send()
    };
    let resp = post(vec![
        ("action", "preview"),
        ("code", "CRANE"),
        ("name", "Crane operation"),
        ("validity_months", "twelve"),
        ("renewal_window_days", "60"),
        ("start_date", "2027-01-01"),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("must be a whole number"));
    let resp = post(vec![
        ("action", "preview"),
        ("code", "CRANE"),
        ("name", "Crane operation"),
        ("validity_months", "12"),
        ("renewal_window_days", "60"),
        ("start_date", "2027-01-01"),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Timeline preview")
            && html.contains("2027-12-31")
            && html.contains("2027-11-01")
            && html.contains("2027-10-02, 2027-11-01, 2027-12-01, 2027-12-24"),
        "{html}"
    );
    assert!(
        !html.contains("<code>CRANE</code>"),
        "a preview saves nothing"
    );
    let resp = post(vec![
        ("action", "save"),
        ("code", "CRANE"),
        ("name", "Crane operation"),
        ("validity_months", "12"),
        ("renewal_window_days", "60"),
        ("start_date", "2027-01-01"),
        ("evidence_required", "on"),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(
        &officer,
        format!("{}/portal/certification-types?notice=type_saved", app.base),
    )
    .await;
    assert!(
        html.contains("<code>CRANE</code>") && html.contains("required"),
        "{html}"
    );
    let employee = browser_client();
    portal_sign_in(&app, &employee, Role::Employee).await;
    let (s, _) = page(
        &employee,
        format!("{}/portal/certification-types", app.base),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_administrator_reads_the_audit_log_filters_it_and_verifies_its_chain() {
    let app = TestApp::spawn().await;
    let admin = app
        .portal_client(trainflow_tests::Which::A, Role::Administrator)
        .await;
    // A change made through the API, by a named person.
    let token = app
        .token(trainflow_tests::Which::A, Role::Administrator)
        .await;
    let (s, made) = app
        .call(
            Method::POST,
            "/api/v1/departments",
            Some(&token),
            Some(serde_json::json!({"name": "Audited works"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let dept = made["data"]["id"].as_str().unwrap().to_string();

    let (s, page) = app
        .portal_get(&admin, "/portal/audit?action=department.create")
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("<code>department.create</code>"), "{page}");
    assert!(
        page.contains(&format!("/portal/audit?object_id={dept}")),
        "{page}"
    );
    // Who acted is named, not "user".
    let (_, me) = app
        .call(Method::GET, "/api/v1/users/me", Some(&token), None)
        .await;
    let name = format!(
        "{} {}",
        me["data"]["first_name"].as_str().unwrap(),
        me["data"]["last_name"].as_str().unwrap()
    );
    assert!(page.contains(name.trim()), "{name} in {page}");
    let (_, by_object) = app
        .portal_get(&admin, &format!("/portal/audit?object_id={dept}"))
        .await;
    assert!(by_object.contains("1 entry"), "{by_object}");
    let (_, nothing) = app
        .portal_get(&admin, "/portal/audit?action=no.such.action")
        .await;
    assert!(nothing.contains("No entry matches"), "{nothing}");
    // A malformed id is named, not a 500.
    let (s, bad) = app.portal_get(&admin, "/portal/audit?actor_id=nope").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        bad.contains("aria-invalid=\"true\"") && bad.contains("must be an id"),
        "{bad}"
    );
    let (_, verified) = app.portal_get(&admin, "/portal/audit?verify=1").await;
    assert!(verified.contains("The chain is intact"), "{verified}");
    // Only administrators read it.
    let manager = app
        .portal_client(trainflow_tests::Which::A, Role::Manager)
        .await;
    let (s, _) = app.portal_get(&manager, "/portal/audit").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_administrator_changes_the_organisations_settings_in_the_portal() {
    let app = TestApp::spawn().await;
    let admin = app
        .portal_client(trainflow_tests::Which::A, Role::Administrator)
        .await;
    let (s, page) = app.portal_get(&admin, "/portal/settings").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let csrf = trainflow_tests::csrf_of(&page);
    // Malformed values: refused at their fields, nothing saved.
    let base = [
        ("csrf", csrf.as_str()),
        ("name", "Renamed works"),
        ("locale", "en-GB"),
        ("primary_colour", "#1f4e79"),
    ];
    for (bad, marker) in [
        (
            ("reminder_offsets_days", "30, soon"),
            "id=\"reminder_offsets_days\"",
        ),
        (("time_zone", "not a zone"), "time_zone-error"),
    ] {
        let mut form = base.to_vec();
        form.push(bad);
        if bad.0 != "time_zone" {
            form.push(("time_zone", "Europe/London"));
        }
        let (s, refused) = app.portal_post(&admin, "/portal/settings", &form).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(
            refused.contains(marker) && refused.contains("aria-invalid=\"true\""),
            "{refused}"
        );
    }
    let token = app
        .token(trainflow_tests::Which::A, Role::Administrator)
        .await;
    let (_, before) = app
        .call(Method::GET, "/api/v1/tenant", Some(&token), None)
        .await;
    assert_ne!(before["data"]["name"], "Renamed works");

    // Valid: saved, and the API reads the same.
    let (s, to) = app
        .portal_post(
            &admin,
            "/portal/settings",
            &[
                ("csrf", &csrf),
                ("name", "Renamed works"),
                ("time_zone", "Asia/Tokyo"),
                ("locale", "en-GB"),
                ("primary_colour", "#0b6e4f"),
                ("email", "on"),
                ("sms", "on"),
                ("reminder_offsets_days", "30, 7"),
                ("inactive_after_days", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{to}");
    assert_eq!(to, "/portal/settings?notice=saved");
    let (_, after) = app
        .call(Method::GET, "/api/v1/tenant", Some(&token), None)
        .await;
    let t = &after["data"];
    assert_eq!(t["name"], "Renamed works", "{t}");
    assert_eq!(t["time_zone"], "Asia/Tokyo", "{t}");
    assert_eq!(t["settings"]["primary_colour"], "#0b6e4f", "{t}");
    assert_eq!(
        t["settings"]["reminder_offsets_days"],
        serde_json::json!([30, 7]),
        "{t}"
    );
    assert_eq!(
        t["settings"]["notification_channels"],
        serde_json::json!(["in_app", "email", "sms"]),
        "{t}"
    );
    let (_, shown) = app
        .portal_get(&admin, "/portal/settings?notice=saved")
        .await;
    assert!(
        shown.contains("Settings saved.") && shown.contains("value=\"30, 7\""),
        "{shown}"
    );
    // Audited as the API's change is.
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=tenant.update_settings",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(audit["meta"]["total"], 1, "{audit}");
    // Others may not.
    let officer = app
        .portal_client(trainflow_tests::Which::A, Role::TrainingOfficer)
        .await;
    let (s, _) = app.portal_get(&officer, "/portal/settings").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// A foreman's team page lists the people who report to them, with a PIN form for each; a PIN
/// of 2 digits is refused at its field on the same page, a good one is set and the person can
/// sign in with it.
#[tokio::test]
async fn a_foreman_sets_a_pin_for_someone_in_their_team_from_the_team_page() {
    let app = TestApp::spawn().await;
    let number = format!("T{}", trainflow_tests::short_unique());
    let person = app
        .ok_as(
            trainflow_tests::Which::A,
            Role::Administrator,
            Method::POST,
            "/api/v1/users",
            Some(serde_json::json!({"employee_number": number, "first_name": "Team", "last_name": "Member"})),
        )
        .await;
    let id: uuid::Uuid = person["id"].as_str().unwrap().parse().unwrap();
    app.set_reporting_lines(
        trainflow_tests::Which::A,
        id,
        Some(app.a.people[&Role::Foreman]),
        None,
    )
    .await;
    let client = app
        .portal_client(trainflow_tests::Which::A, Role::Foreman)
        .await;
    let (s, html) = app.portal_get(&client, "/portal/team").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Team Member") && html.contains(&number),
        "{html}"
    );
    let csrf = trainflow_tests::csrf_of(&html);
    let path = format!("/portal/users/{id}/pin");
    let (s, html) = app
        .portal_post(&client, &path, &[("csrf", &csrf), ("pin", "12")])
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("aria-invalid=\"true\"") && html.contains("PIN must be 6 to 10 digits"),
        "{html}"
    );
    let (s, location) = app
        .portal_post(&client, &path, &[("csrf", &csrf), ("pin", "4451298")])
        .await;
    assert_eq!(
        (s, location.as_str()),
        (StatusCode::SEE_OTHER, "/portal/team?notice=pin")
    );
    let signed = app.sign_in(&app.a.slug, &number, "4451298").await;
    assert!(signed["data"]["access_token"].is_string(), "{signed}");
}

/// The profile page shows each person their role's part: where they work and whom they report
/// to, their team (foremen and managers), and their qualifications (a trainer's are what they
/// may teach).
#[tokio::test]
async fn the_profile_page_shows_each_role_its_place_team_and_qualifications() {
    let app = TestApp::spawn().await;
    let a = trainflow_tests::Which::A;
    let employee = app.a.people[&Role::Employee];
    app.set_reporting_lines(
        a,
        employee,
        Some(app.a.people[&Role::Foreman]),
        Some(app.a.people[&Role::Manager]),
    )
    .await;
    app.fresh_certification(a, employee).await;
    app.fresh_certification(a, app.a.people[&Role::Trainer])
        .await;
    let profile = |role: Role| {
        let app = app.clone();
        async move {
            let client = app.portal_client(a, role).await;
            let (status, page) = app.portal_get(&client, "/portal/profile").await;
            assert_eq!(status, StatusCode::OK, "{role:?}: {page}");
            page
        }
    };

    let page = profile(Role::Employee).await;
    for shown in [
        "Where I work",
        "Foreman: Foreman Person",
        "Line manager: Manager Person",
        "Qualifications",
        "Fixture type",
    ] {
        assert!(
            page.contains(shown),
            "the employee's profile lacks {shown:?}: {page}"
        );
    }
    assert!(!page.contains("My team"), "{page}");

    let page = profile(Role::Manager).await;
    assert!(
        page.contains("My team") && page.contains(r#"<div class="stat">1</div>"#),
        "the manager's team of one: {page}"
    );
    assert!(
        page.contains("No certifications are recorded for you yet."),
        "{page}"
    );

    let page = profile(Role::Trainer).await;
    assert!(
        page.contains("Your qualifications to teach") && page.contains("Fixture type"),
        "{page}"
    );
}

/// The portal takes a picture up to the 5 MB limit and refuses one past it (reading stops
/// there), storing nothing.
#[tokio::test]
async fn a_picture_past_5_mb_is_refused_from_the_portal_and_a_real_one_is_taken() {
    let app = TestApp::spawn().await;
    let client = app
        .portal_client(trainflow_tests::Which::A, Role::Employee)
        .await;
    let (_, page) = app.portal_get(&client, "/portal/profile").await;
    let csrf = csrf_of(&page);
    let send = |bytes: Vec<u8>| {
        let (client, csrf, url) = (
            client.clone(),
            csrf.clone(),
            format!("{}/portal/profile/avatar", app.base),
        );
        async move {
            let form = reqwest::multipart::Form::new().text("csrf", csrf).part(
                "file",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name("me.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
            client
                .post(url)
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let mut past = trainflow_tests::png(8, 8);
    past.resize(5 * 1024 * 1024 + 10 * 1024, 0);
    assert_eq!(send(past).await, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("user_avatars", app.a.id).await, 0);
    assert_eq!(
        send(trainflow_tests::png(64, 64)).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.count("user_avatars", app.a.id).await, 1);
}
