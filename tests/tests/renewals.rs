//! Certifications, renewals, approval links, reminders, escalation, notifications and the
//! outbox, end to end through the API — on SQLite and PostgreSQL.

use std::{sync::Arc, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::OffsetDateTime;
use trainflow_kernel::auth::Role;
use trainflow_notifications::{outbox::RetryPolicy, Deliverer, EmailTransport, SmsTransport};
use trainflow_tests::{
    csrf_of, email_of,
    sinks::{PushServiceFake, SmtpSink, TwilioFake, TWILIO_SID, TWILIO_TOKEN},
    webdriver::Browser,
    TestApp, Which,
};
use uuid::Uuid;

fn id(v: &Value) -> Uuid {
    v["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .parse()
        .unwrap()
}

/// The fields an error names, sorted.
fn fields(v: &Value) -> Vec<String> {
    let mut f: Vec<String> = v["error"]["fields"]
        .as_object()
        .unwrap_or_else(|| panic!("no fields in {v}"))
        .keys()
        .cloned()
        .collect();
    f.sort();
    f
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// A certification type and one cycle of it for A's employee, expiring in `days` days.
async fn certified(app: &TestApp, code: &str, days: i64, evidence: bool) -> (Uuid, Uuid) {
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, t) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(
                json!({"code": code, "name": format!("{code} certificate"), "validity_months": 12,
                        "renewal_window_days": 60, "evidence_required": evidence}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let employee = app.a.people[&Role::Employee];
    let expires = today() + time::Duration::days(days);
    let (s, c) = app
        .call(
            Method::POST,
            "/api/v1/certifications",
            Some(&admin),
            Some(json!({"user_id": employee, "type_id": id(&t),
                        "issued_on": (expires - time::Duration::days(364)).to_string(),
                        "expires_on": expires.to_string(), "certificate_number": "C-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    (id(&t), id(&c))
}

/// Changes tenant A's settings through its administrator (`patch` is merged into them).
async fn tenant_settings(app: &TestApp, patch: Value) {
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, t) = app
        .call(Method::GET, "/api/v1/tenant", Some(&admin), None)
        .await;
    let mut settings = t["data"]["settings"].clone();
    for (k, v) in patch.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let (s, body) = app
        .call(
            Method::PUT,
            "/api/v1/tenant",
            Some(&admin),
            Some(
                json!({"name": t["data"]["name"], "time_zone": t["data"]["time_zone"],
                        "locale": t["data"]["locale"], "settings": settings}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

/// Tenant A offers SMS (it is opt-in per tenant).
async fn enable_sms(app: &TestApp) {
    tenant_settings(
        app,
        json!({"notification_channels": ["in_app", "email", "sms"]}),
    )
    .await;
}

/// The employee asks for the renewal of `cert`.
async fn request_renewal(app: &TestApp, employee: &str, cert: Uuid) -> Value {
    let (s, r) = app
        .call(
            Method::POST,
            "/api/v1/renewals",
            Some(employee),
            Some(json!({"certification_id": cert})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r
}

/// The employee's manager is A's seeded manager.
async fn reporting_lines(app: &TestApp) {
    let admin = app.token(Which::A, Role::Administrator).await;
    let employee = app.a.people[&Role::Employee];
    let (s, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{employee}/reporting-lines"),
            Some(&admin),
            Some(json!({"supervisor_id": app.a.people[&Role::Foreman], "manager_id": app.a.people[&Role::Manager]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

/// The approval links emailed to `role` of tenant A, oldest first.
async fn links_for(app: &TestApp, role: Role) -> Vec<String> {
    let email = email_of(&app.a.slug, role);
    let rows: Vec<(String,)> = app
        .owner_rows(
            &format!(
                "select text_body from outbox where tenant_id = $1 and channel = 'email' and recipient = '{email}'
                  order by created_at, id"
            ),
            app.a.id,
        )
        .await;
    rows.into_iter()
        .filter_map(|(text,)| {
            let at = text.find("/a/")?;
            let token: String = text[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
                .collect();
            Some(token)
        })
        .collect()
}

async fn form(app: &TestApp, token: &str, body: &str) -> (StatusCode, String) {
    let (s, v) = app
        .call_raw(
            Method::POST,
            &format!("/a/{token}"),
            None,
            "application/x-www-form-urlencoded",
            body.as_bytes().to_vec(),
        )
        .await;
    (
        s,
        v.as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string()),
    )
}

async fn page(app: &TestApp, token: &str) -> (StatusCode, String) {
    let resp = app
        .client
        .get(format!("{}/a/{token}", app.base))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Every certification of tenant A, as `GET /certifications` pages them with `query`.
async fn all_pages(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let (s, body) = app
            .call(
                Method::GET,
                &format!("/api/v1/certifications?{query}&per_page=2&page={page}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let rows = body["data"].as_array().unwrap().clone();
        let total = body["meta"]["total"].as_i64().unwrap();
        assert!(rows.len() <= 2, "{body}");
        out.extend(rows);
        if page >= body["meta"]["total_pages"].as_i64().unwrap() {
            assert_eq!(
                out.len() as i64,
                total,
                "{query}: the pages hold every row once"
            );
            break;
        }
    }
    out
}

#[tokio::test]
async fn certifications_are_paged_and_filtered_by_the_status_their_dates_give() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let mut type_ids = Vec::new();
    for (code, validity) in [("PAGED", json!(12)), ("FOREVER", Value::Null)] {
        let (s, t) = app
            .call(
                Method::POST,
                "/api/v1/certification-types",
                Some(&admin),
                Some(
                    json!({"code": code, "name": code, "validity_months": validity,
                            "renewal_window_days": 60}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        type_ids.push(id(&t));
    }
    // Expired, expiring today, expiring at the window's last day, valid the day after it, one
    // that never expires, and a cycle replaced by a newer one (renewed).
    let mut people: Vec<Uuid> = Role::ALL.iter().map(|r| app.a.people[r]).collect();
    people.sort();
    let record = |user: Uuid, type_id: Uuid, expires: Option<i64>| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let mut body = json!({"user_id": user, "type_id": type_id,
                                  "issued_on": (today() - time::Duration::days(300)).to_string()});
            if let Some(d) = expires {
                body["expires_on"] = json!((today() + time::Duration::days(d)).to_string());
            }
            let (s, c) = app
                .call(
                    Method::POST,
                    "/api/v1/certifications",
                    Some(&admin),
                    Some(body),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{c}");
            c["data"]["status"].as_str().unwrap().to_string()
        }
    };
    let (paged, forever) = (type_ids[0], type_ids[1]);
    assert_eq!(record(people[0], paged, Some(-1)).await, "expired");
    assert_eq!(record(people[1], paged, Some(0)).await, "expiring");
    assert_eq!(record(people[2], paged, Some(60)).await, "expiring");
    assert_eq!(record(people[3], paged, Some(61)).await, "valid");
    assert_eq!(record(people[4], forever, None).await, "valid");
    record(people[5], paged, Some(-30)).await;
    assert_eq!(record(people[5], paged, Some(200)).await, "valid");

    let everything = all_pages(&app, &admin, "history=true").await;
    assert_eq!(everything.len(), 7);
    for status in ["valid", "expiring", "expired", "renewed"] {
        let expected: Vec<&Value> = everything
            .iter()
            .filter(|c| c["status"] == status)
            .collect();
        let query = if status == "renewed" {
            format!("status={status}")
        } else {
            format!("status={status}&history=true")
        };
        let got = all_pages(&app, &admin, &query).await;
        let ids = |rows: &[&Value]| {
            let mut v: Vec<String> = rows.iter().map(|c| c["id"].to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(
            ids(&got.iter().collect::<Vec<_>>()),
            ids(&expected),
            "status={status}: the page filter computes what each row says"
        );
        assert!(got.iter().all(|c| c["status"] == status), "{got:?}");
    }
    // Current cycles only by default; soonest expiry first, the one that never expires last.
    let current = all_pages(&app, &admin, "history=false").await;
    assert_eq!(current.len(), 6, "{current:?}");
    assert_eq!(current.last().unwrap()["type_id"], json!(forever));
    let (s, body) = app
        .call(
            Method::GET,
            "/api/v1/certifications?per_page=101",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["per_page"]);
}

#[tokio::test]
async fn certification_types_are_validated_and_their_timeline_previewed() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(json!({"code": "", "name": "Forklift", "validity_months": 0, "renewal_window_days": -1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        fields(&body),
        ["code", "renewal_window_days", "validity_months"],
        "{body}"
    );

    let employee = app.token(Which::A, Role::Employee).await;
    let good = json!({"code": "FORK", "name": "Forklift", "validity_months": 24, "renewal_window_days": 90});
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&employee),
            Some(good.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, t) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(good.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (s, dup) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(good),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    assert_eq!(fields(&dup), ["code"], "{dup}");
    let (s, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/certification-types/{}", id(&t)),
            Some(&admin),
            Some(json!({"renewal_window_days": 30})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["data"]["validity_months"], 24);
    assert_eq!(patched["data"]["renewal_window_days"], 30);
    // Tenant B does not see A's type.
    let b_admin = app.token(Which::B, Role::Administrator).await;
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/certification-types/{}", id(&t)),
            Some(&b_admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, preview) = app
        .call(
            Method::POST,
            "/api/v1/certification-types/preview",
            Some(&employee),
            Some(json!({"validity_months": 12, "renewal_window_days": 60, "start_date": "2027-01-01", "cycles": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    let first = &preview["data"][0];
    assert_eq!(first["expires_on"], "2027-12-31", "{preview}");
    assert_eq!(first["window_opens_on"], "2027-11-01", "{preview}");
    assert_eq!(
        first["reminders"],
        json!(["2027-10-02", "2027-11-01", "2027-12-01", "2027-12-24"]),
        "{preview}"
    );
    assert_eq!(preview["data"][1]["issued_on"], "2028-01-01");
    let (s, bad) = app
        .call(
            Method::POST,
            "/api/v1/certification-types/preview",
            Some(&employee),
            Some(json!({"validity_months": 12, "renewal_window_days": 60, "start_date": "2027-01-01", "cycles": 50})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(fields(&bad), ["cycles"]);
}

#[tokio::test]
async fn a_renewal_is_approved_by_email_link_then_in_the_api_and_starts_a_new_cycle() {
    let app = TestApp::spawn().await;
    reporting_lines(&app).await;
    let (_, cert) = certified(&app, "FA", 20, true).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let (s, listed) = app
        .call(Method::GET, "/api/v1/certifications", Some(&employee), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"][0]["status"], "expiring", "{listed}");
    assert_eq!(listed["data"][0]["days_left"], 20, "{listed}");

    let (s, r) = app
        .call(
            Method::POST,
            "/api/v1/renewals",
            Some(&employee),
            Some(json!({"certification_id": cert, "comment": "Course booked"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let request = id(&r);
    assert_eq!(
        r["data"]["steps"][0]["approver_id"],
        json!(app.a.people[&Role::Manager])
    );
    assert_eq!(r["data"]["steps"][0]["status"], "pending");
    assert_eq!(r["data"]["steps"][1]["status"], "waiting");
    // A second request for the same cycle is refused.
    let (s, again) = app
        .call(
            Method::POST,
            "/api/v1/renewals",
            Some(&employee),
            Some(json!({"certification_id": cert})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{again}");

    let links = links_for(&app, Role::Manager).await;
    assert_eq!(links.len(), 1, "{links:?}");
    let link = &links[0];
    let (s, html) = page(&app, link).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("FA certificate") && html.contains("Approve"),
        "{html}"
    );
    // Opening the page changes nothing; a rejection without a reason is refused and keeps the
    // link usable; evidence is required before approval.
    let (s, html) = form(&app, link, "decision=reject").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let (s, html) = form(&app, link, "decision=approve").await;
    assert_eq!(s, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("requires evidence"), "{html}");
    let (s, with_file) = app
        .call_raw(
            Method::POST,
            &format!("/api/v1/renewals/{request}/evidence?filename=course.pdf"),
            Some(&employee),
            "application/pdf",
            b"%PDF-1.4 certificate".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{with_file}");
    assert_eq!(with_file["data"]["evidence"][0]["filename"], "course.pdf");
    let (s, html) = form(&app, link, "decision=approve&comment=Fine").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("You approved"), "{html}");
    let (s, html) = form(&app, link, "decision=approve").await;
    assert_eq!(s, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("already used"), "{html}");
    let (s, html) = page(&app, link).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(html.contains("already used"), "{html}");

    // Step two: the training officer, through the API (the manager may no longer act).
    let manager = app.token(Which::A, Role::Manager).await;
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/renewals/{request}/decision"),
            Some(&manager),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let officer = app.token(Which::A, Role::TrainingOfficer).await;
    let (s, queue) = app
        .call(Method::GET, "/api/v1/approvals", Some(&officer), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(queue["data"][0]["id"], json!(request), "{queue}");
    let (s, done) = app
        .call(
            Method::POST,
            &format!("/api/v1/renewals/{request}/decision"),
            Some(&officer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["data"]["status"], "approved");
    let actions: Vec<&str> = done["data"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "submitted",
            "evidence_added",
            "approved",
            "approved",
            "renewed"
        ],
        "{done}"
    );

    let (s, detail) = app
        .call(
            Method::GET,
            &format!("/api/v1/certifications/{cert}"),
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    assert_eq!(detail["data"]["certification"]["status"], "renewed");
    let cycles = detail["data"]["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 2, "{detail}");
    assert_eq!(cycles[0]["status"], "valid", "{detail}");
    assert_eq!(cycles[0]["source"], "renewal");
    // Renewed before expiry: the new cycle starts the day after the old one ends.
    let old_end: time::Date = time::Date::parse(
        cycles[1]["expires_on"].as_str().unwrap(),
        &time::format_description::well_known::Iso8601::DATE,
    )
    .unwrap();
    assert_eq!(
        cycles[0]["issued_on"],
        (old_end + time::Duration::days(1)).to_string()
    );

    // The employee was told; another tenant and an uninvolved colleague see nothing.
    let (_, inbox) = app
        .call(Method::GET, "/api/v1/notifications", Some(&employee), None)
        .await;
    assert!(
        inbox["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["title"].as_str().unwrap().contains("approved")),
        "{inbox}"
    );
    let b_admin = app.token(Which::B, Role::Administrator).await;
    for path in [
        format!("/api/v1/renewals/{request}"),
        format!("/api/v1/certifications/{cert}"),
    ] {
        let (s, _) = app.call(Method::GET, &path, Some(&b_admin), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    let trainer = app.token(Which::A, Role::Trainer).await;
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/renewals/{request}"),
            Some(&trainer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn of_a_hundred_concurrent_redemptions_of_one_link_exactly_one_succeeds() {
    let app = TestApp::spawn().await;
    reporting_lines(&app).await;
    let (_, cert) = certified(&app, "WAH", 10, false).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let r = request_renewal(&app, &employee, cert).await;
    let link = links_for(&app, Role::Manager).await.pop().expect("a link");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (app, link) = (Arc::clone(&app), link.clone());
        set.spawn(async move { form(&app, &link, "decision=approve").await.0 });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let (_, after) = app
        .call(
            Method::GET,
            &format!("/api/v1/renewals/{}", id(&r)),
            Some(&employee),
            None,
        )
        .await;
    let approvals = after["data"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "approved")
        .count();
    assert_eq!(approvals, 1, "{after}");
}

#[tokio::test]
async fn expiry_reminders_go_once_per_offset_whatever_the_number_of_scans() {
    let app = TestApp::spawn().await;
    let (_, cert) = certified(&app, "GAS", 30, false).await;
    let now = OffsetDateTime::now_utc();
    let first = app
        .renewals
        .expiry_reminders_in(&[app.a.id], now)
        .await
        .unwrap();
    assert_eq!(first.reminded, 1, "{first:?}");
    // The same day again, twice at once (as two instances would): nothing more.
    let only_a = [app.a.id];
    let (x, y) = tokio::join!(
        app.renewals.expiry_reminders_in(&only_a, now),
        app.renewals.expiry_reminders_in(&only_a, now)
    );
    assert_eq!(x.unwrap().reminded + y.unwrap().reminded, 0);
    let offsets: Vec<(i32,)> = app
        .owner_rows(
            "select offset_days from certification_reminders where certification_id = $1",
            cert,
        )
        .await;
    assert_eq!(offsets, vec![(30,)]);
    // 23 days later, 7 days are left: the 7-day reminder, once.
    let later = now + time::Duration::days(23);
    assert_eq!(
        app.renewals
            .expiry_reminders_in(&[app.a.id], later)
            .await
            .unwrap()
            .reminded,
        1
    );
    assert_eq!(
        app.renewals
            .expiry_reminders_in(&[app.a.id], later)
            .await
            .unwrap()
            .reminded,
        0
    );
    let employee = app.token(Which::A, Role::Employee).await;
    let (_, inbox) = app
        .call(Method::GET, "/api/v1/notifications", Some(&employee), None)
        .await;
    let titles: Vec<&str> = inbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "GAS certificate expires in 7 days",
            "GAS certificate expires in 30 days"
        ]
    );
    // An email went out with the reminder template.
    let mails: Vec<(String,)> = app
        .owner_rows(
            "select subject from outbox where tenant_id = $1 and channel = 'email' order by created_at",
            app.a.id,
        )
        .await;
    assert!(
        mails
            .iter()
            .any(|(s,)| s == "GAS certificate expires in 30 days"),
        "{mails:?}"
    );
}

#[tokio::test]
async fn idle_approvers_are_reminded_then_escalated_and_a_leaver_is_rerouted() {
    let app = TestApp::spawn().await;
    reporting_lines(&app).await;
    let (_, cert) = certified(&app, "HV", 15, false).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let r = request_renewal(&app, &employee, cert).await;
    let request = id(&r);
    let now = OffsetDateTime::now_utc();
    let step = |v: &Value| v["data"]["steps"][0].clone();
    let early = app
        .renewals
        .escalations_in(&[app.a.id], now + time::Duration::hours(47))
        .await
        .unwrap();
    assert_eq!((early.reminded, early.escalated, early.rerouted), (0, 0, 0));
    let at_sla = app
        .renewals
        .escalations_in(&[app.a.id], now + time::Duration::hours(49))
        .await
        .unwrap();
    assert_eq!(at_sla.reminded, 1, "{at_sla:?}");
    assert_eq!(
        links_for(&app, Role::Manager).await.len(),
        2,
        "a reminder carries a fresh link"
    );
    let after = app
        .renewals
        .escalations_in(&[app.a.id], now + time::Duration::hours(97))
        .await
        .unwrap();
    assert_eq!(after.escalated, 1, "{after:?}");
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/renewals/{request}"),
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(
        step(&v)["approver_id"],
        json!(app.a.people[&Role::TrainingOfficer]),
        "{v}"
    );
    assert_eq!(
        step(&v)["assigned_from"],
        json!(app.a.people[&Role::Manager]),
        "{v}"
    );
    // The manager's old link no longer works; the training officer's does.
    let old = links_for(&app, Role::Manager).await.pop().unwrap();
    let (s, _) = page(&app, &old).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // The training officer leaves: the step goes back to someone who can act.
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{}", app.a.people[&Role::TrainingOfficer]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let moved = app
        .renewals
        .escalations_in(&[app.a.id], now + time::Duration::hours(98))
        .await
        .unwrap();
    assert_eq!(moved.rerouted, 1, "{moved:?}");
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/renewals/{request}"),
            Some(&employee),
            None,
        )
        .await;
    let approver = step(&v)["approver_id"].clone();
    assert_ne!(approver, json!(app.a.people[&Role::TrainingOfficer]), "{v}");
    assert!(!approver.is_null(), "{v}");
    let actions: Vec<&str> = v["data"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["submitted", "reminded", "escalated", "rerouted"],
        "{v}"
    );
    // Each of the job's changes is audited on the request, attributed to the job and dated by
    // the job's clock (the simulated hours above), and the chain still verifies.
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, log) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?object_id={request}&per_page=100"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let by_job: Vec<(String, String)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_kind"] == "system")
        .map(|e| {
            assert_eq!(e["after"]["job"], "renewal_escalations", "{e}");
            (
                e["action"].as_str().unwrap().to_string(),
                e["occurred_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let actions: Vec<&str> = by_job.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "renewal.step_rerouted",
            "renewal.step_escalated",
            "renewal.approver_reminded"
        ],
        "{log}"
    );
    let dated = |at: &str| {
        OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let rerouted_at = dated(&by_job[0].1);
    assert!(
        (rerouted_at - (now + time::Duration::hours(98))).abs() < time::Duration::seconds(1),
        "{log}"
    );
    let (_, verified) = app
        .call(Method::GET, "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(verified["data"]["intact"], true, "{verified}");
}

#[tokio::test]
async fn the_expiry_scan_writes_a_page_of_reminders_with_a_fixed_number_of_statements() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    // Three types, and a cycle of each for every person of tenant A, all inside the horizon.
    let mut certifications = Vec::new();
    for code in ["BA1", "BA2", "BA3"] {
        let (s, t) = app
            .call(
                Method::POST,
                "/api/v1/certification-types",
                Some(&admin),
                Some(json!({"code": code, "name": format!("{code} certificate"), "validity_months": 12,
                            "renewal_window_days": 60})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        for person in app.a.people.values() {
            let expires = today() + time::Duration::days(20);
            let (s, c) = app
                .call(
                    Method::POST,
                    "/api/v1/certifications",
                    Some(&admin),
                    Some(json!({"user_id": person, "type_id": id(&t),
                                "issued_on": (expires - time::Duration::days(364)).to_string(),
                                "expires_on": expires.to_string()})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{c}");
            certifications.push(id(&c));
        }
    }
    let due = certifications.len() as u64;
    assert!(due >= 12, "{due}");
    let now = OffsetDateTime::now_utc();
    let first = app
        .renewals
        .expiry_reminders_in(&[app.a.id], now)
        .await
        .unwrap();
    assert_eq!(first.reminded, due, "{first:?}");
    // Whatever the number of reminders: the tenant's four, the reminders' insert, the
    // notifications' six (recipients, preferences, template, notifications, outbox, queue) and
    // the audit entry's (2 on PostgreSQL, 4 on SQLite).
    assert!(first.queries <= 4 + 1 + 6 + 4, "{first:?}");
    assert_eq!(
        app.count("certification_reminders", app.a.id).await,
        due as i64
    );
    let notified: Vec<(i64,)> = app
        .owner_rows(
            "select count(*) from notifications where tenant_id = $1 and kind = 'renewal'",
            app.a.id,
        )
        .await;
    assert_eq!(notified[0].0, due as i64);
    let mailed: Vec<(i64,)> = app
        .owner_rows(
            "select count(*) from outbox o join delivery_queue q on q.id = o.id
              where o.tenant_id = $1 and o.channel = 'email'",
            app.a.id,
        )
        .await;
    assert_eq!(mailed[0].0, due as i64);
    // One audit entry, by the job, listing every certification reminded.
    let (_, log) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=certification.reminder_sent",
            Some(&admin),
            None,
        )
        .await;
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["actor_kind"], "system");
    assert_eq!(entries[0]["after"]["job"], "expiry_reminders");
    let listed: std::collections::BTreeSet<Uuid> = entries[0]["after"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, certifications.iter().copied().collect());
    // Filtering the log by one of them finds the entry.
    let (_, one) = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/audit?object_id={}&action=certification.reminder_sent",
                certifications[0]
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1, "{one}");
    // Nothing more the same day.
    let again = app
        .renewals
        .expiry_reminders_in(&[app.a.id], now)
        .await
        .unwrap();
    assert_eq!((again.reminded, again.queries), (0, 4), "{again:?}");
}

#[tokio::test]
async fn approvals_go_to_a_delegate_while_the_approver_is_out_of_office() {
    let app = TestApp::spawn().await;
    reporting_lines(&app).await;
    let manager = app.token(Which::A, Role::Manager).await;
    let now = OffsetDateTime::now_utc();
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (s, bad) = app
        .call(
            Method::POST,
            "/api/v1/delegations",
            Some(&manager),
            Some(json!({"delegate_id": app.a.people[&Role::Foreman], "starts_at": fmt(now), "ends_at": fmt(now - time::Duration::hours(1))})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(fields(&bad), ["ends_at"]);
    let (s, d) = app
        .call(
            Method::POST,
            "/api/v1/delegations",
            Some(&manager),
            Some(json!({"delegate_id": app.a.people[&Role::Foreman], "starts_at": fmt(now - time::Duration::minutes(1)), "ends_at": fmt(now + time::Duration::days(7))})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let (_, cert) = certified(&app, "CONF", 40, false).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let r = request_renewal(&app, &employee, cert).await;
    assert_eq!(
        r["data"]["steps"][0]["approver_id"],
        json!(app.a.people[&Role::Foreman]),
        "{r}"
    );
    assert_eq!(
        r["data"]["steps"][0]["assigned_from"],
        json!(app.a.people[&Role::Manager]),
        "{r}"
    );
    assert_eq!(links_for(&app, Role::Foreman).await.len(), 1);
}

/// What differs by nature between two audit entries of the same action: ids, times, request
/// ids, the object's id and the chain's hash.
const VARYING: [&str; 6] = [
    "seq",
    "id",
    "occurred_at",
    "request_id",
    "object_id",
    "hash",
];

/// The audit entries of `object`, oldest first, without their [`VARYING`] fields.
async fn audit_shape(app: &TestApp, object: Uuid) -> Vec<Value> {
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, body) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?object_id={object}&per_page=100"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            let mut e = e.as_object().unwrap().clone();
            for k in VARYING {
                e.remove(k);
            }
            Value::Object(e)
        })
        .collect()
}

#[tokio::test]
async fn a_request_submitted_returned_and_resubmitted_is_audited_alike_through_the_api_and_the_portal(
) {
    let app = TestApp::spawn().await;
    reporting_lines(&app).await;
    let (_, by_api) = certified(&app, "DOOR1", -3, false).await;
    let (_, by_portal) = certified(&app, "DOOR2", -3, false).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let manager = app.token(Which::A, Role::Manager).await;
    let employee_web = app.portal_client(Which::A, Role::Employee).await;
    let manager_web = app.portal_client(Which::A, Role::Manager).await;

    // Submitted: through the API, and through the form on the certifications page.
    let (s, r) = app
        .call(
            Method::POST,
            "/api/v1/renewals",
            Some(&employee),
            Some(json!({"certification_id": by_api, "comment": "Refresher done"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let api_request = id(&r);
    let (_, html) = app
        .portal_get(&employee_web, "/portal/certifications")
        .await;
    let (s, location) = app
        .portal_post(
            &employee_web,
            &format!("/portal/certifications/{by_portal}/renew"),
            &[
                ("csrf", csrf_of(&html).as_str()),
                ("comment", "Refresher done"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{location}");
    let portal_request: Uuid = location
        .trim_start_matches("/portal/renewals/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no request in {location}"));

    // Returned by the manager, each way.
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/api/v1/renewals/{api_request}/decision"),
            Some(&manager),
            Some(json!({"decision": "return", "comment": "Attach the certificate"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let page = format!("/portal/renewals/{portal_request}");
    let (_, html) = app.portal_get(&manager_web, &page).await;
    let (s, location) = app
        .portal_post(
            &manager_web,
            &format!("{page}/decision"),
            &[
                ("csrf", csrf_of(&html).as_str()),
                ("decision", "return"),
                ("comment", "Attach the certificate"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{location}");

    // Resubmitted by the employee, each way.
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/api/v1/renewals/{api_request}/resubmit"),
            Some(&employee),
            Some(json!({"comment": "Attached"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, html) = app.portal_get(&employee_web, &page).await;
    assert!(html.contains("Send it back"), "{html}");
    let (s, location) = app
        .portal_post(
            &employee_web,
            &format!("{page}/decision"),
            &[
                ("csrf", csrf_of(&html).as_str()),
                ("decision", "resubmit"),
                ("comment", "Attached"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{location}");
    assert!(location.ends_with("notice=resubmitted"), "{location}");

    // One door or the other, the same entries.
    let through_api = audit_shape(&app, api_request).await;
    let through_portal = audit_shape(&app, portal_request).await;
    let actions: Vec<&str> = through_api
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["renewal.submit", "renewal.decide", "renewal.resubmit"],
        "{through_api:?}"
    );
    assert_eq!(through_api[1]["after"], json!({"decision": "return"}));
    assert_eq!(
        through_api[2]["actor_id"],
        json!(app.a.people[&Role::Employee])
    );
    assert_eq!(through_api, through_portal);
}

#[tokio::test]
async fn the_inbox_preferences_and_broadcasts_work_per_person() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let (s, bad) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "role", "title": "", "body": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    // The schema's limits first (a blank title), then the rules across fields (a role for
    // `audience = role`).
    assert_eq!(fields(&bad), ["title"], "{bad}");
    let (s, bad) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "role", "title": "Hello", "body": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(fields(&bad), ["role"], "{bad}");
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&employee),
            Some(json!({"audience": "all", "title": "Hi", "body": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, sent) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "role", "role": "employee", "title": "Fire drill", "body": "At 10:00", "priority": "high"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sent}");
    assert_eq!(sent["data"]["recipients"], 1);
    let (_, count) = app
        .call(
            Method::GET,
            "/api/v1/notifications/unread_count",
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(count["data"]["unread"], 1);
    let (_, list) = app
        .call(
            Method::GET,
            "/api/v1/notifications?unread=true",
            Some(&employee),
            None,
        )
        .await;
    let n = list["data"][0].clone();
    assert_eq!(
        (
            n["title"].as_str(),
            n["priority"].as_str(),
            n["read"].as_bool()
        ),
        (Some("Fire drill"), Some("high"), Some(false))
    );
    let nid = n["id"].as_str().unwrap();
    // Someone else's notification answers 404, in this tenant and the other.
    let manager = app.token(Which::A, Role::Manager).await;
    let b_employee = app.token(Which::B, Role::Employee).await;
    for token in [&manager, &b_employee] {
        let (s, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/notifications/{nid}/read"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, read) = app
        .call(
            Method::POST,
            &format!("/api/v1/notifications/{nid}/read"),
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(
        (s, read["data"]["read"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (_, count) = app
        .call(
            Method::GET,
            "/api/v1/notifications/unread_count",
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(count["data"]["unread"], 0);
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/notifications/{nid}/unread"),
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/notifications/{nid}"),
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = app
        .call(Method::GET, "/api/v1/notifications", Some(&employee), None)
        .await;
    assert_eq!(list["meta"]["total"], 0);

    // Preferences: no email for system notices.
    let (s, prefs) = app
        .call(
            Method::GET,
            "/api/v1/notifications/preferences",
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(prefs["data"].as_array().unwrap().len(), 24);
    let (s, bad) = app
        .call(
            Method::PUT,
            "/api/v1/notifications/preferences",
            Some(&employee),
            Some(json!({"preferences": [{"kind": "system", "channel": "fax", "enabled": false}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(fields(&bad), ["preferences[0].channel"], "{bad}");
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/v1/notifications/preferences",
            Some(&employee),
            Some(
                json!({"preferences": [{"kind": "system", "channel": "email", "enabled": false}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let emails_before = app.count("outbox", app.a.id).await;
    let (_, sent) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "department", "department_id": app.a.department, "title": "Canteen closed", "body": "Today"})),
        )
        .await;
    let reached = sent["data"]["recipients"].as_u64().unwrap();
    assert!(reached >= 1, "{sent}");
    // Everyone in the department got an email except the employee, who turned them off.
    let employee_in_dept: Vec<(i64,)> = app
        .owner_rows(
            "select count(*) from users where department_id = $1 and role = 'employee' and deleted_at is null",
            app.a.department,
        )
        .await;
    let emails = app.count("outbox", app.a.id).await - emails_before;
    assert_eq!(emails as u64, reached - employee_in_dept[0].0 as u64);
    assert_eq!(
        employee_in_dept[0].0, 1,
        "the seeded employee is in the seeded department"
    );
}

#[tokio::test]
async fn mail_waits_while_the_smtp_server_is_down_and_is_delivered_once_when_it_is_back() {
    let app = TestApp::spawn().await;
    enable_sms(&app).await;
    let mut smtp = SmtpSink::start().await;
    let twilio = TwilioFake::start().await;
    let deliverer = Deliverer {
        db: app.db.clone(),
        email: EmailTransport::from_url(&smtp.url(), "TrainFlow <no-reply@trainflow.test>")
            .unwrap(),
        sms: SmsTransport::twilio(&twilio.base_url, TWILIO_SID, TWILIO_TOKEN, "+15005550006")
            .unwrap(),
        push: app.deliverer.push.clone(),
        retry: RetryPolicy {
            backoff: Duration::from_secs(30),
            ..RetryPolicy::default()
        },
    };
    let admin = app.token(Which::A, Role::Administrator).await;
    let manager = app.a.people[&Role::Manager];
    let (s, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{manager}"),
            Some(&admin),
            Some(json!({"phone": "+447700900123"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    smtp.stop().await;
    let (s, sent) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "all", "title": "Audit on Monday", "body": "Bring your cards", "kind": "renewal"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sent}");
    let people = sent["data"]["recipients"].as_u64().unwrap() as usize;
    let now = OffsetDateTime::now_utc();
    let first = deliverer
        .deliver_due_for(Some(trainflow_kernel::TenantId(app.a.id)), now)
        .await
        .unwrap();
    assert_eq!(first.retrying as usize, people, "{first:?}");
    assert_eq!(first.sent, 1, "the SMS goes through Twilio: {first:?}");
    assert!(smtp.received().is_empty());
    // Not due yet: nothing is tried.
    assert_eq!(
        deliverer
            .deliver_due_for(
                Some(trainflow_kernel::TenantId(app.a.id)),
                now + time::Duration::seconds(10)
            )
            .await
            .unwrap(),
        Default::default()
    );
    smtp.restart().await;
    let second = deliverer
        .deliver_due_for(
            Some(trainflow_kernel::TenantId(app.a.id)),
            now + time::Duration::seconds(31),
        )
        .await
        .unwrap();
    assert_eq!(second.sent as usize, people, "{second:?}");
    assert_eq!(
        deliverer
            .deliver_due_for(
                Some(trainflow_kernel::TenantId(app.a.id)),
                now + time::Duration::hours(2)
            )
            .await
            .unwrap(),
        Default::default()
    );
    let mails = smtp.received();
    assert_eq!(mails.len(), people);
    let mut ids: Vec<String> = mails
        .iter()
        .map(|m| {
            m.data
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), people, "each message once");
    let mail = mails
        .iter()
        .find(|m| m.to == vec![email_of(&app.a.slug, Role::Manager)])
        .expect("the manager's mail");
    assert!(
        mail.data.contains("Audit on Monday") && mail.data.contains("text/html"),
        "{}",
        mail.data
    );
    let sms = twilio.sent();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].to, "+447700900123");
    assert!(sms[0].body.contains("Audit on Monday"), "{sms:?}");
    let statuses: Vec<(String, i32)> = app
        .owner_rows(
            "select status, attempts from outbox where tenant_id = $1 and channel = 'email'",
            app.a.id,
        )
        .await;
    assert!(
        statuses.iter().all(|(s, a)| s == "sent" && *a == 2),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn on_a_phone_a_manager_approves_from_the_link_in_the_email_they_received() {
    let app = TestApp::spawn().await;
    let mut smtp = SmtpSink::start().await;
    let deliverer = Deliverer {
        db: app.db.clone(),
        email: EmailTransport::from_url(&smtp.url(), "TrainFlow <no-reply@trainflow.test>")
            .unwrap(),
        sms: SmsTransport::Log,
        push: app.deliverer.push.clone(),
        retry: RetryPolicy::default(),
    };
    reporting_lines(&app).await;
    let (_, cert) = certified(&app, "PHONE", 25, false).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let r = request_renewal(&app, &employee, cert).await;
    let request = id(&r);
    let tenant = Some(trainflow_kernel::TenantId(app.a.id));
    deliverer
        .deliver_due_for(tenant, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let manager = email_of(&app.a.slug, Role::Manager);
    let mail = smtp
        .received()
        .into_iter()
        .find(|m| m.to == vec![manager.clone()])
        .expect("the manager's email");
    // Undo quoted-printable soft line breaks, then take the link's path (the mail names the
    // configured public URL; the test server listens on a random port).
    let text = mail.data.replace("=\r\n", "").replace("=3D", "=");
    let start = text.find("/a/").expect("a link in the mail");
    let path: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    let link = format!("{}{path}", app.base);
    smtp.stop().await;

    let browser = Browser::start_phone(390, 844).await;
    browser.goto(&link).await;
    assert!(
        browser.wait_for_text("Renewal to approve").await,
        "{}",
        browser.source().await
    );
    let layout = browser
        .script(
            "const b = document.querySelector('button.approve').getBoundingClientRect();
             return [window.innerWidth, document.documentElement.scrollWidth, b.height, b.width];",
        )
        .await;
    let px = |i: usize| layout[i].as_f64().unwrap();
    assert!(px(0) <= 420.0, "a phone-sized viewport: {layout}");
    assert!(px(1) <= px(0), "nothing wider than the screen: {layout}");
    assert!(
        px(2) >= 44.0 && px(3) >= px(0) * 0.8,
        "a thumb-sized button: {layout}"
    );
    browser.click("button.approve").await;
    assert!(
        browser.wait_for_text("You approved").await,
        "{}",
        browser.source().await
    );
    // The link is spent; the request moved to its second step.
    browser.goto(&link).await;
    assert!(
        browser.wait_for_text("already used").await,
        "{}",
        browser.source().await
    );
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/renewals/{request}"),
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(v["data"]["steps"][0]["status"], "approved", "{v}");
    assert_eq!(v["data"]["steps"][1]["status"], "pending", "{v}");
}

#[tokio::test]
async fn an_approver_answers_yes_by_sms_through_the_signed_twilio_webhook() {
    let app = TestApp::spawn().await;
    enable_sms(&app).await;
    reporting_lines(&app).await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let manager = app.a.people[&Role::Manager];
    let phone = "+447700900456";
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{manager}"),
            Some(&admin),
            Some(json!({"phone": phone})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, cert) = certified(&app, "SMS", 12, false).await;
    let employee = app.token(Which::A, Role::Employee).await;
    let request = id(&request_renewal(&app, &employee, cert).await);
    let texts: Vec<(String,)> = app
        .owner_rows(
            &format!("select text_body from outbox where tenant_id = $1 and channel = 'sms' and recipient = '{phone}'"),
            app.a.id,
        )
        .await;
    let text = &texts.last().expect("an approval SMS").0;
    let at = text.find("reply YES ").expect("a reply code") + "reply YES ".len();
    let code = text[at..at + 6].to_string();

    let send = |from: &str, body: String, sign: bool| {
        let params: std::collections::BTreeMap<String, String> = [
            ("From", from.to_string()),
            ("To", "+15005550006".to_string()),
            ("Body", body),
            ("MessageSid", "SM0123".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // The server checks against its public URL, which is what Twilio calls.
        let signature = trainflow_renewals::sms::signature(
            if sign { TWILIO_TOKEN } else { "not-the-token" },
            "http://127.0.0.1:8080/webhooks/twilio/sms",
            &params,
        );
        let req = app
            .client
            .post(format!("{}/webhooks/twilio/sms", app.base))
            .header("x-twilio-signature", signature)
            .form(&params);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (s, _) = send(phone, format!("YES {code}"), false).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an unsigned call changes nothing");
    let (s, body) = send("+447700900999", format!("YES {code}"), true).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("not valid"),
        "another number cannot use the code: {body}"
    );
    let (s, body) = send(phone, format!("yes {code}"), true).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("<Response><Message>You approved the renewal of SMS certificate"),
        "{body}"
    );
    let (_, body) = send(phone, format!("YES {code}"), true).await;
    assert!(body.contains("already answered"), "{body}");
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/renewals/{request}"),
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(v["data"]["steps"][0]["status"], "approved", "{v}");
    assert_eq!(v["data"]["steps"][0]["decided_by"], json!(manager), "{v}");
}

/// In tenant `which`: SMS offered, the employee's manager the seeded manager with `phone`, and
/// a certification of the employee for each of `codes` (its type's code), expiring in 12 days.
async fn sms_approvals_in(app: &TestApp, which: Which, phone: &str, codes: &[&str]) -> Vec<Uuid> {
    let t = app.tenant(which).clone();
    let admin = app.token(which, Role::Administrator).await;
    let (_, tenant) = app
        .call(Method::GET, "/api/v1/tenant", Some(&admin), None)
        .await;
    let mut settings = tenant["data"]["settings"].clone();
    settings["notification_channels"] = json!(["in_app", "email", "sms"]);
    let (s, body) = app
        .call(
            Method::PUT,
            "/api/v1/tenant",
            Some(&admin),
            Some(
                json!({"name": tenant["data"]["name"], "time_zone": tenant["data"]["time_zone"],
                        "locale": tenant["data"]["locale"], "settings": settings}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let employee = t.people[&Role::Employee];
    let manager = t.people[&Role::Manager];
    let (s, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{employee}/reporting-lines"),
            Some(&admin),
            Some(json!({"supervisor_id": t.people[&Role::Foreman], "manager_id": manager})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{manager}"),
            Some(&admin),
            Some(json!({"phone": phone})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut certs = Vec::new();
    for code in codes {
        let (s, ty) = app
            .call(
                Method::POST,
                "/api/v1/certification-types",
                Some(&admin),
                Some(json!({"code": code, "name": format!("{code} certificate"),
                            "validity_months": 12, "renewal_window_days": 60})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{ty}");
        let expires = today() + time::Duration::days(12);
        let (s, c) = app
            .call(
                Method::POST,
                "/api/v1/certifications",
                Some(&admin),
                Some(json!({"user_id": employee, "type_id": id(&ty),
                            "issued_on": (expires - time::Duration::days(364)).to_string(),
                            "expires_on": expires.to_string()})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        certs.push(id(&c));
    }
    certs
}

/// The reply codes of the approval SMS sent to `phone` in `tenant`, oldest first.
async fn sms_codes_sent(app: &TestApp, tenant: Uuid, phone: &str) -> Vec<String> {
    let rows: Vec<(String,)> = app
        .owner_rows(
            &format!(
                "select text_body from outbox where tenant_id = $1 and channel = 'sms' and recipient = '{phone}'
                  order by created_at, id"
            ),
            tenant,
        )
        .await;
    rows.into_iter()
        .filter_map(|(text,)| {
            let at = text.find("reply YES ")? + "reply YES ".len();
            text.get(at..at + 6).map(str::to_string)
        })
        .collect()
}

/// Posts a signed Twilio SMS from `from` with `body` to the webhook; the TwiML answer.
async fn sms_reply(app: &TestApp, from: &str, body: &str) -> String {
    let params: std::collections::BTreeMap<String, String> = [
        ("From", from),
        ("To", "+15005550006"),
        ("Body", body),
        ("MessageSid", "SM0456"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signature = trainflow_renewals::sms::signature(
        TWILIO_TOKEN,
        "http://127.0.0.1:8080/webhooks/twilio/sms",
        &params,
    );
    let resp = app
        .client
        .post(format!("{}/webhooks/twilio/sms", app.base))
        .header("x-twilio-signature", signature)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn sms_codes_are_unique_among_a_numbers_open_links_and_a_reply_never_acts_on_another_tenants_request(
) {
    let app = TestApp::spawn().await;
    let phone = "+447700900777";
    let a_certs = sms_approvals_in(&app, Which::A, phone, &["SMSA1", "SMSA2"]).await;
    let b_certs = sms_approvals_in(&app, Which::B, phone, &["SMSB1"]).await;
    // Every draw says 111111 until it is taken: A's second link draws again and gets 222222;
    // in B the number's only open code is its own, so B's link gets 111111 as well.
    app.renewals
        .sms_codes
        .force(&["111111", "111111", "222222", "111111"]);
    let a_employee = app.token(Which::A, Role::Employee).await;
    let b_employee = app.token(Which::B, Role::Employee).await;
    let a1 = id(&request_renewal(&app, &a_employee, a_certs[0]).await);
    let a2 = id(&request_renewal(&app, &a_employee, a_certs[1]).await);
    let b1 = id(&request_renewal(&app, &b_employee, b_certs[0]).await);
    assert_eq!(
        sms_codes_sent(&app, app.a.id, phone).await,
        vec!["111111", "222222"],
        "two open links of one number never share a code"
    );
    assert_eq!(sms_codes_sent(&app, app.b.id, phone).await, vec!["111111"]);
    let index: Vec<(String,)> = app
        .owner_rows(
            &format!("select code from approval_sms_codes where tenant_id = $1 and phone = '{phone}' order by code"),
            app.a.id,
        )
        .await;
    assert_eq!(
        index,
        vec![("111111".into(),), ("222222".into(),)],
        "both links stay indexed"
    );

    let step_status = |token: String, request: Uuid| {
        let app = &app;
        async move {
            let (_, v) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/renewals/{request}"),
                    Some(&token),
                    None,
                )
                .await;
            v["data"]["steps"][0]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    // The code only A has answers A's second request.
    let body = sms_reply(&app, phone, "YES 222222").await;
    assert!(
        body.contains("You approved the renewal of SMSA2 certificate"),
        "{body}"
    );
    assert_eq!(step_status(a_employee.clone(), a2).await, "approved");
    assert_eq!(step_status(a_employee.clone(), a1).await, "pending");
    // 111111 is open in both tenants: the reply acts on neither.
    let body = sms_reply(&app, phone, "YES 111111").await;
    assert!(body.contains("more than one organisation"), "{body}");
    assert_eq!(step_status(a_employee.clone(), a1).await, "pending");
    assert_eq!(step_status(b_employee.clone(), b1).await, "pending");
    // Once B's step is decided in TrainFlow, B's code is closed and 111111 means A's request.
    let b_manager = app.token(Which::B, Role::Manager).await;
    let (s, v) = app
        .call(
            Method::POST,
            &format!("/api/v1/renewals/{b1}/decision"),
            Some(&b_manager),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let body = sms_reply(&app, phone, "NO 111111 wrong course").await;
    assert!(
        body.contains("You rejected the renewal of SMSA1 certificate"),
        "{body}"
    );
    assert_eq!(step_status(a_employee.clone(), a1).await, "rejected");
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/renewals/{b1}"),
            Some(&b_employee),
            None,
        )
        .await;
    assert_eq!(
        v["data"]["steps"][0]["decided_by"],
        json!(app.b.people[&Role::Manager]),
        "{v}"
    );
}

/// The token in the last email to `email` whose subject is `subject`.
async fn emailed_token(app: &TestApp, email: &str, subject: &str) -> String {
    let rows: Vec<(String,)> = app
        .owner_rows(
            &format!(
                "select text_body from outbox where tenant_id = $1 and recipient = '{email}' and subject = '{subject}'
                  order by created_at desc, id desc"
            ),
            app.a.id,
        )
        .await;
    let text = &rows
        .first()
        .unwrap_or_else(|| panic!("no email '{subject}'"))
        .0;
    let at = text.find("token=").expect("a token") + "token=".len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn a_password_is_reset_and_an_email_verified_by_single_use_links() {
    let app = TestApp::spawn().await;
    let email = email_of(&app.a.slug, Role::Employee);
    for who in [email.as_str(), "nobody@nowhere.test"] {
        let (s, body) = app
            .call(
                Method::POST,
                "/api/v1/auth/password-reset",
                None,
                Some(json!({"tenant": app.a.slug, "email": who})),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::NO_CONTENT,
            "the same answer for everyone: {body}"
        );
    }
    let token = emailed_token(&app, &email, "Choose a new password").await;
    // The in-app notice does not carry the token.
    let leaked: Vec<(i64,)> = app
        .owner_rows(
            &format!(
                "select count(*) from notifications where tenant_id = $1 and body like '%{token}%'"
            ),
            app.a.id,
        )
        .await;
    assert_eq!(leaked[0].0, 0);
    let confirm = |password: &str| {
        let body = json!({"token": token, "new_password": password});
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/auth/password-reset/confirm",
                None,
                Some(body),
            )
            .await
        }
    };
    let (s, weak) = confirm("short").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
    assert_eq!(fields(&weak), ["new_password"]);
    let (s, _) = confirm("a brand new passphrase 2026").await;
    assert_eq!(
        s,
        StatusCode::NO_CONTENT,
        "a refused password leaves the link usable"
    );
    let (s, _) = confirm("another brand new passphrase").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the link works once");
    // The emailed link opens a form in the portal (GET changes nothing).
    let resp = app
        .client
        .get(format!("{}/portal/reset-password?token={token}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("name=\"new_password\""));
    let signed = app
        .sign_in(&app.a.slug, &email, "a brand new passphrase 2026")
        .await;
    assert!(signed["data"]["access_token"].is_string(), "{signed}");
    let old = app
        .sign_in(&app.a.slug, &email, trainflow_tests::PASSWORD)
        .await;
    assert!(old["data"]["access_token"].is_null(), "{old}");

    // Email verification.
    let token = signed["data"]["access_token"].as_str().unwrap().to_string();
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/users/me/verify-email",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let link = emailed_token(&app, &email, "Verify your email address").await;
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"token": link})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"token": link})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let verified: Vec<(bool,)> = app
        .owner_rows(
            "select email_verified_at is not null from users where id = $1",
            app.a.people[&Role::Employee],
        )
        .await;
    assert!(verified[0].0);
}

#[tokio::test]
async fn people_added_without_a_password_are_welcomed_by_email_or_sms_with_a_link_to_choose_one() {
    let app = TestApp::spawn().await;
    enable_sms(&app).await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let (s, b) = app
                .call(Method::POST, "/api/v1/users", Some(admin), Some(body))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            b
        }
    };
    create(json!({"email": "nia.osei@example.com", "first_name": "Nia", "last_name": "Osei"}))
        .await;
    create(
        json!({"employee_number": "W-1", "first_name": "Wes", "last_name": "Hale",
                  "phone": "+44 7700 900 321"}),
    )
    .await;
    // Nobody to reach, or someone who can already sign in: no welcome.
    create(json!({"employee_number": "W-2", "first_name": "Ola", "last_name": "Berg"})).await;
    create(
        json!({"email": "has.password@example.com", "first_name": "Has", "last_name": "One",
                  "password": "a long enough passphrase 1"}),
    )
    .await;

    let subject = format!("Welcome to Tenant {} on TrainFlow", app.a.slug);
    let token = emailed_token(&app, "nia.osei@example.com", &subject).await;
    let html: Vec<(String,)> = app
        .owner_rows(
            "select html_body from outbox where tenant_id = $1 and recipient = 'nia.osei@example.com'",
            app.a.id,
        )
        .await;
    assert!(
        html[0].0.contains("Choose your password") && html[0].0.contains("/portal/login"),
        "{}",
        html[0].0
    );
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "new_password": "welcome aboard passphrase"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let signed = app
        .sign_in(
            &app.a.slug,
            "nia.osei@example.com",
            "welcome aboard passphrase",
        )
        .await;
    assert!(signed["data"]["access_token"].is_string(), "{signed}");

    // Without email, the link goes by SMS; the in-app notice never carries it.
    let sms: Vec<(String,)> = app
        .owner_rows(
            "select text_body from outbox where tenant_id = $1 and channel = 'sms' and recipient = '+447700900321'",
            app.a.id,
        )
        .await;
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(
        sms[0].0.contains("/portal/reset-password?token="),
        "{sms:?}"
    );
    let leaked: Vec<(i64,)> = app
        .owner_rows(
            "select count(*) from notifications where tenant_id = $1 and body like '%token=%'",
            app.a.id,
        )
        .await;
    assert_eq!(leaked[0].0, 0);
    let welcomed: Vec<(i64,)> = app
        .owner_rows(
            "select count(*) from notifications where tenant_id = $1 and title = 'Welcome to TrainFlow'",
            app.a.id,
        )
        .await;
    assert_eq!(welcomed[0].0, 2, "one each for Nia and Wes");
}

#[tokio::test]
async fn a_tenant_chooses_its_reminder_offsets_and_whether_sms_is_offered() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, t) = app
        .call(Method::GET, "/api/v1/tenant", Some(&admin), None)
        .await;
    let mut bad = t["data"].clone();
    bad["settings"]["reminder_offsets_days"] = json!([]);
    let (s, body) = app.call(Method::PUT, "/api/v1/tenant", Some(&admin), Some(json!({
        "name": bad["name"], "time_zone": bad["time_zone"], "locale": bad["locale"], "settings": bad["settings"]}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["settings.reminder_offsets_days"]);
    tenant_settings(&app, json!({"reminder_offsets_days": [45, 5]})).await;
    let (_, cert) = certified(&app, "OFF", 40, false).await;
    let now = OffsetDateTime::now_utc();
    let sent = app
        .renewals
        .expiry_reminders_in(&[app.a.id], now)
        .await
        .unwrap();
    assert_eq!(sent.reminded, 1, "{sent:?}");
    let offsets: Vec<(i32,)> = app
        .owner_rows(
            "select offset_days from certification_reminders where certification_id = $1",
            cert,
        )
        .await;
    assert_eq!(offsets, vec![(45,)]);

    // SMS is opt-in per tenant: without it, an approver with a phone gets email only.
    reporting_lines(&app).await;
    let manager = app.a.people[&Role::Manager];
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{manager}"),
            Some(&admin),
            Some(json!({"phone": "+447700900777"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let employee = app.token(Which::A, Role::Employee).await;
    request_renewal(&app, &employee, cert).await;
    assert_eq!(
        app.count("outbox", app.a.id).await,
        2,
        "the reminder email and the approval email"
    );
    let sms: Vec<(i64,)> = app
        .owner_rows(
            "select count(*) from outbox where tenant_id = $1 and channel = 'sms'",
            app.a.id,
        )
        .await;
    assert_eq!(sms[0].0, 0);
}

/// A person without email gets by SMS what would have gone by email when they have a mobile
/// number; a person with neither is not forgotten: their foreman is told, in the portal and by
/// email, with the person's name.
#[tokio::test]
async fn a_reminder_for_someone_without_email_goes_by_sms_or_else_to_their_foreman() {
    let app = TestApp::spawn().await;
    enable_sms(&app).await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let foreman = app.a.people[&Role::Foreman];
    let mut people = Vec::new();
    for (number, first, phone) in [
        ("R1001", "Phoebe", Some("+447700900777")),
        ("R1002", "Lone", None),
    ] {
        let (s, p) = app
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({"employee_number": format!("{number}-{}", trainflow_tests::short_unique()),
                            "first_name": first, "last_name": "Worker", "phone": phone})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let person = id(&p);
        app.set_reporting_lines(Which::A, person, Some(foreman), None)
            .await;
        people.push(person);
    }
    let (s, t) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(
                json!({"code": "TRK", "name": "Track safety", "validity_months": 12,
                        "renewal_window_days": 60}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let expires = today() + time::Duration::days(30);
    for person in &people {
        let (s, c) = app
            .call(
                Method::POST,
                "/api/v1/certifications",
                Some(&admin),
                Some(json!({"user_id": person, "type_id": id(&t),
                            "issued_on": (expires - time::Duration::days(364)).to_string(),
                            "expires_on": expires.to_string()})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
    }
    let scan = app
        .renewals
        .expiry_reminders_in(&[app.a.id], OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(scan.reminded, 2, "{scan:?}");

    // Phoebe was welcomed by SMS when she was added; Lone, who has no phone, was not (and
    // nobody was told instead: her foreman sets her a PIN).
    let welcomes: Vec<(String,)> = app
        .owner_rows(
            "select recipient from outbox where tenant_id = $1 and text_body like 'Welcome to TrainFlow%'",
            app.a.id,
        )
        .await;
    assert_eq!(welcomes, [("+447700900777".to_string(),)]);
    let outbox: Vec<(String, String)> = app
        .owner_rows(
            "select channel, recipient from outbox where tenant_id = $1
               and text_body not like 'Welcome to TrainFlow%' order by created_at",
            app.a.id,
        )
        .await;
    assert!(
        outbox.contains(&("sms".into(), "+447700900777".into())),
        "Phoebe gets an SMS instead: {outbox:?}"
    );
    let foreman_email = trainflow_tests::email_of(&app.a.slug, Role::Foreman);
    assert!(
        outbox.contains(&("email".into(), foreman_email)),
        "the foreman is emailed about Lone: {outbox:?}"
    );
    assert_eq!(outbox.len(), 2, "nothing else is sent: {outbox:?}");
    let foreman_token = app.token(Which::A, Role::Foreman).await;
    let (_, inbox) = app
        .call(
            Method::GET,
            "/api/v1/notifications",
            Some(&foreman_token),
            None,
        )
        .await;
    let titles: Vec<&str> = inbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["For Lone Worker: Track safety expires in 30 days"],
        "{inbox}"
    );
}

#[tokio::test]
async fn push_reaches_a_subscribed_browser_signed_and_encrypted_and_a_dropped_subscription_is_removed(
) {
    let app = TestApp::spawn().await;
    let service = PushServiceFake::start().await;
    let employee = app.token(Which::A, Role::Employee).await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let subscribe = |body: Value| {
        let app = app.clone();
        let employee = employee.clone();
        async move {
            app.call(
                Method::POST,
                "/api/v1/notifications/push/subscriptions",
                Some(&employee),
                Some(body),
            )
            .await
        }
    };
    let deliver = || {
        let app = app.clone();
        async move {
            app.deliverer
                .deliver_due_for(
                    Some(trainflow_kernel::TenantId(app.a.id)),
                    OffsetDateTime::now_utc(),
                )
                .await
                .unwrap()
        }
    };

    // Until the tenant offers push, the setup says so (a device may still be subscribed).
    let (s, setup) = app
        .call(
            Method::GET,
            "/api/v1/notifications/push",
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{setup}");
    assert_eq!(setup["data"]["offered"], false);
    tenant_settings(
        &app,
        json!({"notification_channels": ["in_app", "email", "push"]}),
    )
    .await;
    let (_, setup) = app
        .call(
            Method::GET,
            "/api/v1/notifications/push",
            Some(&employee),
            None,
        )
        .await;
    assert_eq!(setup["data"]["offered"], true);
    assert_eq!(setup["data"]["devices"], json!([]));
    let public_key = setup["data"]["public_key"].as_str().unwrap().to_string();
    assert_eq!(public_key.len(), 87, "base64url of a 65-octet point");

    // Bad subscriptions are refused, naming the field; nothing is stored.
    let mut unknown_service = service.subscription("phone");
    unknown_service["endpoint"] = json!("https://push.example.com/push/phone");
    let (s, e) = subscribe(unknown_service).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(fields(&e), ["endpoint"]);
    let mut private_address = service.subscription("phone");
    private_address["endpoint"] = json!("http://10.1.2.3/push/phone");
    let (s, e) = subscribe(private_address).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(fields(&e), ["endpoint"]);
    let mut not_a_key = service.subscription("phone");
    not_a_key["keys"]["p256dh"] = json!("B".repeat(87));
    let (s, e) = subscribe(not_a_key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(fields(&e), ["keys.p256dh"]);
    assert_eq!(app.count("push_subscriptions", app.a.id).await, 0);

    // The browser subscribes; subscribing again replaces, never duplicates.
    let mut phone = service.subscription("phone");
    phone["user_agent"] = json!("Mozilla/5.0 (Android 15; Mobile)");
    let (s, device) = subscribe(phone.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{device}");
    assert_eq!(device["data"]["push_service"], "127.0.0.1");
    let (s, again) = subscribe(phone).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(id(&again), id(&device));
    assert_eq!(app.count("push_subscriptions", app.a.id).await, 1);

    // The notification centre offers the button with the key and lists the device.
    let portal = app.portal_client(Which::A, Role::Employee).await;
    let (s, page) = app.portal_get(&portal, "/portal/notifications").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains(&format!("data-key=\"{public_key}\"")),
        "{page}"
    );
    assert!(page.contains("Mozilla/5.0 (Android 15; Mobile)"), "{page}");

    // Another tenant's person cannot remove it: 404, and it stays.
    let other = app.token(Which::B, Role::Employee).await;
    let path = format!("/api/v1/notifications/push/subscriptions/{}", id(&device));
    let (s, _) = app.call(Method::DELETE, &path, Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.count("push_subscriptions", app.a.id).await, 1);

    // A broadcast reaches the phone: signed with the server's key, encrypted for the browser.
    let broadcast = |title: &'static str| {
        let app = app.clone();
        let admin = admin.clone();
        async move {
            let (s, b) = app
                .call(
                    Method::POST,
                    "/api/v1/notifications/broadcasts",
                    Some(&admin),
                    Some(
                        json!({"audience": "role", "role": "employee", "title": title,
                                "body": "Line 2 is closed between Ashby and Barrow until 14:00.",
                                "priority": "high", "link": "/portal/notifications"}),
                    ),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
    };
    broadcast("Track closed").await;
    let outcome = deliver().await;
    assert_eq!(outcome.failed, 0, "{outcome:?}");
    assert_eq!(service.refusals(), Vec::<String>::new());
    let received = service.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let m = &received[0];
    assert_eq!(m.token, "phone");
    assert_eq!(m.vapid_key, public_key);
    assert_eq!(m.urgency, "high");
    assert_eq!(m.payload["title"], "Track closed");
    assert_eq!(
        m.payload["body"],
        "Line 2 is closed between Ashby and Barrow until 14:00."
    );
    assert!(
        m.payload["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/portal/notifications")),
        "{}",
        m.payload
    );
    let (_, setup) = app
        .call(
            Method::GET,
            "/api/v1/notifications/push",
            Some(&employee),
            None,
        )
        .await;
    assert!(
        setup["data"]["devices"][0]["last_sent_at"].is_string(),
        "{setup}"
    );

    // The browser unsubscribes at its push service: the next message meets 410 Gone, is
    // given up and the subscription is removed.
    service.drop_subscription("phone");
    broadcast("Track reopened").await;
    let outcome = deliver().await;
    assert_eq!(outcome.failed, 1, "{outcome:?}");
    assert_eq!(service.received().len(), 1);
    assert_eq!(app.count("push_subscriptions", app.a.id).await, 0);
    let statuses: Vec<(String,)> = app
        .owner_rows(
            "select status from outbox where tenant_id = $1 and channel = 'push' order by created_at",
            app.a.id,
        )
        .await;
    assert_eq!(
        statuses.into_iter().map(|(s,)| s).collect::<Vec<_>>(),
        ["sent", "failed"]
    );

    // Unsubscribing through the API: 204, then 404.
    let (_, laptop) = subscribe(service.subscription("laptop")).await;
    let path = format!("/api/v1/notifications/push/subscriptions/{}", id(&laptop));
    let (s, _) = app.call(Method::DELETE, &path, Some(&employee), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.call(Method::DELETE, &path, Some(&employee), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_administrator_previews_saves_and_resets_an_email_template_through_the_api_and_the_portal(
) {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let organisation = format!("Tenant {}", app.a.slug);
    let customised = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["customised"] == true)
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let templates = || {
        let app = app.clone();
        let admin = admin.clone();
        async move {
            let (s, list) = app
                .call(
                    Method::GET,
                    "/api/v1/notifications/templates",
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{list}");
            list
        }
    };
    let list = templates().await;
    assert_eq!(list["data"].as_array().unwrap().len(), 7, "{list}");
    assert!(customised(&list).is_empty(), "{list}");

    // A preview fills the draft with example values (escaped in HTML) and saves nothing.
    let draft = json!({"subject": "Notice: {{title}}",
                       "text_body": "From {{organisation}}: {{body}}",
                       "html_body": "<p>{{employee}} & {{organisation}}</p>"});
    let (s, p) = app
        .call(
            Method::POST,
            "/api/v1/notifications/templates/notification/preview",
            Some(&admin),
            Some(draft.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        p["data"]["subject"],
        "Notice: Personal Track Safety expires in 30 days"
    );
    assert!(
        p["data"]["text_body"]
            .as_str()
            .unwrap()
            .starts_with(&format!("From {organisation}: Your Personal Track Safety")),
        "{p}"
    );
    assert_eq!(
        p["data"]["html_body"],
        format!("<p>Alice Brown & {organisation}</p>")
    );
    let (s, e) = app
        .call(
            Method::POST,
            "/api/v1/notifications/templates/notification/preview",
            Some(&admin),
            Some(json!({"subject": "   ", "text_body": "x", "html_body": "x"})),
        )
        .await;
    assert!(s.is_client_error(), "{e}");
    let list = templates().await;
    assert!(
        customised(&list).is_empty(),
        "a preview saves nothing: {list}"
    );

    // Saved, it is what people receive.
    let (s, saved) = app
        .call(
            Method::PUT,
            "/api/v1/notifications/templates/notification",
            Some(&admin),
            Some(draft.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{saved}");
    let list = templates().await;
    assert_eq!(customised(&list), ["notification"]);
    // Broadcasts go out with the `bulk` template.
    let (s, saved) = app
        .call(
            Method::PUT,
            "/api/v1/notifications/templates/bulk",
            Some(&admin),
            Some(draft.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{saved}");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "role", "role": "employee", "title": "Depot closed", "body": "Use the north gate."})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let subjects: Vec<(Option<String>,)> = app
        .owner_rows(
            "select subject from outbox where tenant_id = $1 and channel = 'email'",
            app.a.id,
        )
        .await;
    assert!(
        subjects
            .iter()
            .any(|(s,)| s.as_deref() == Some("Notice: Depot closed")),
        "{subjects:?}"
    );
    assert_eq!(customised(&templates().await), ["notification", "bulk"]);
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/v1/notifications/templates/bulk",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(customised(&templates().await), ["notification"]);

    // In the portal: the preview shows the example values; reset brings the built-in one back.
    let portal = app.portal_client(Which::A, Role::Administrator).await;
    let (s, page) = app
        .portal_get(&portal, "/portal/email-templates/notification")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Notice: {{title}}"), "{page}");
    let csrf = csrf_of(&page);
    let (s, page) = app
        .portal_post(
            &portal,
            "/portal/email-templates/notification",
            &[
                ("csrf", &csrf),
                ("subject", "Heads up: {{title}}"),
                ("text_body", "{{body}}"),
                ("html_body", "<p>{{body}}</p>"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("Preview with example values")
            && page.contains("Heads up: Personal Track Safety expires in 30 days"),
        "{page}"
    );
    let list = templates().await;
    assert_eq!(list["data"][0]["subject"], "Notice: {{title}}", "{list}");
    let (s, to) = app
        .portal_post(
            &portal,
            "/portal/email-templates/notification/reset",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        (s, to.as_str()),
        (
            StatusCode::SEE_OTHER,
            "/portal/email-templates/notification?notice=reset"
        )
    );
    let list = templates().await;
    assert!(customised(&list).is_empty(), "{list}");
    assert_eq!(list["data"][0]["subject"], "{{title}}", "{list}");
    // The built-in layout carries the organisation's name in its colour.
    tenant_settings(&app, json!({"primary_colour": "#aa3300"})).await;
    let (_, built_in) = app
        .call(
            Method::GET,
            "/api/v1/notifications/templates/notification",
            Some(&admin),
            None,
        )
        .await;
    let (s, p) = app
        .call(
            Method::POST,
            "/api/v1/notifications/templates/notification/preview",
            Some(&admin),
            Some(built_in["data"].clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let html = p["data"]["html_body"].as_str().unwrap();
    assert!(
        html.contains("border-top:4px solid #aa3300") && html.contains(&organisation),
        "{html}"
    );
    // Everyone else is refused.
    let manager = app.token(Which::A, Role::Manager).await;
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/v1/notifications/templates/notification",
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
