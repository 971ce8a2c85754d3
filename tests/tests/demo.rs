//! The demo tenant tells the product's story to every role: the manifest built into the binary,
//! applied with every context's part, leaves certifications valid, expiring and expired,
//! renewals waiting in the approvers' queues and reminders in the holders' notification centres,
//! a frontline employee without email, and an HR export with a finished run.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainflow_tests::{Options, TestApp};

const PASSWORD: &str = "TrainFlow-demo-2026";

async fn token(app: &TestApp, who: &str) -> String {
    let body = app
        .sign_in("demo", &format!("{who}@demo.trainflow.test"), PASSWORD)
        .await;
    body["data"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{who} signs in: {body}"))
        .to_string()
}

async fn get(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, body) = app.call(Method::GET, path, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["data"].clone()
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|r| r[field].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn the_demo_tells_the_story_to_every_role() {
    let app = TestApp::spawn_with(Options {
        demo: true,
        ..Options::default()
    })
    .await;

    // An employee: an expiring certification, a renewal asked for, a reminder waiting.
    let alice = token(&app, "alice.brown").await;
    let mine = get(&app, "/api/v1/certifications", &alice).await;
    let pts = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type_code"] == "PTS")
        .expect("Alice holds PTS");
    assert_eq!(pts["status"], "expiring", "{pts}");
    // Her learning: track safety completed, the inspection course her manager assigned under
    // way; the catalogue shows her the published courses, not the draft.
    let learning = get(&app, "/api/v1/enrolments", &alice).await;
    let by_course: Vec<(String, String)> = learning
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["course_code"].as_str().unwrap_or_default().to_string(),
                e["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        by_course.contains(&("TRK-101".into(), "completed".into())),
        "{learning}"
    );
    assert!(
        by_course.contains(&("TRK-201".into(), "in_progress".into())),
        "{learning}"
    );
    // The course she completed has its syllabus: two topics of two subtopics each.
    let track_safety = learning
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["course_code"] == "TRK-101")
        .expect("TRK-101");
    let course = get(
        &app,
        &format!(
            "/api/v1/courses/{}",
            track_safety["course_id"].as_str().unwrap()
        ),
        &alice,
    )
    .await;
    let syllabus = course["topics"].as_array().expect("topics");
    assert_eq!(syllabus.len(), 2, "{course}");
    assert_eq!(
        syllabus[0]["subtopics"].as_array().map(Vec::len),
        Some(2),
        "{course}"
    );
    // She passed the track safety quiz, so the course issued her a certificate anyone can check.
    let certificates = get(&app, "/api/v1/certificates", &alice).await;
    let cert = certificates
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["course_title"] == "Track safety essentials")
        .unwrap_or_else(|| panic!("Alice's certificate: {certificates}"));
    assert_eq!(cert["status"], "valid", "{cert}");
    let code = cert["code"].as_str().unwrap();
    let (s, checked) = app
        .call(
            Method::GET,
            &format!("/api/v1/verifications/{code}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{checked}");
    assert_eq!(checked["data"]["holder_name"], "Alice Brown", "{checked}");
    // Her skills: track safety from the course, then assessed by her manager; her first
    // course is an achievement.
    let me = get(&app, "/api/v1/users/me", &alice).await;
    let (_, skills) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{}/skills", me["id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    let track = skills["data"]["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skill_name"] == "Track safety")
        .unwrap_or_else(|| panic!("Alice's track safety: {skills}"));
    assert_eq!(
        (&track["level"], &track["source"]),
        (&json!(2), &json!("manager")),
        "{track}"
    );
    assert_eq!(
        skills["data"]["achievements"][0]["rule"], "first_course",
        "{skills}"
    );
    let catalogue = get(&app, "/api/v1/courses?per_page=100", &alice).await;
    // Signalling Safety Awareness is renewed by completing the signalling course.
    let sig = catalogue
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "SIG-101")
        .expect("SIG-101")["id"]
        .clone();
    let types = get(&app, "/api/v1/certification-types", &alice).await;
    let ssa = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "SSA")
        .expect("SSA");
    assert_eq!(ssa["required_courses"], json!([sig]), "{ssa}");
    let codes = names(&catalogue, "code");
    assert!(
        codes.contains(&"SIG-101".to_string()) && !codes.contains(&"TRK-301".to_string()),
        "{codes:?}"
    );
    let maya = token(&app, "manager").await;
    let team = get(&app, "/api/v1/enrolments?whose=team", &maya).await;
    assert!(team.as_array().unwrap().len() >= 3, "{team}");
    let asked = get(&app, "/api/v1/renewals", &alice).await;
    assert_eq!(asked.as_array().unwrap().len(), 1, "{asked}");
    assert_eq!(asked[0]["status"], "pending");
    let inbox = get(&app, "/api/v1/notifications", &alice).await;
    assert!(
        names(&inbox, "title")
            .iter()
            .any(|t| t.contains("Personal Track Safety")),
        "{inbox}"
    );

    // The manager approves first: Alice's request waits for her.
    let maya = token(&app, "manager").await;
    let queue = get(&app, "/api/v1/approvals", &maya).await;
    assert!(
        names(&queue, "user_name")
            .iter()
            .any(|n| n == "Alice Brown"),
        "{queue}"
    );
    // Dev's was approved by the manager and waits for the training officer.
    let tara = token(&app, "training").await;
    let queue = get(&app, "/api/v1/approvals", &tara).await;
    assert!(
        names(&queue, "user_name").iter().any(|n| n == "Dev Patel"),
        "{queue}"
    );

    // The administrator's compliance view is not a page of zeros.
    let admin = token(&app, "admin").await;
    let all = get(&app, "/api/v1/compliance", &admin).await;
    let tenant = &all[0];
    assert!(tenant["compliant"].as_i64().unwrap() > 0, "{all}");
    assert!(tenant["expiring"].as_i64().unwrap() > 0, "{all}");
    assert!(tenant["expired"].as_i64().unwrap() > 0, "{all}");
    let everyone = get(&app, "/api/v1/certifications?per_page=100", &admin).await;
    // The current cycles: Ben's approved renewal started the one that replaced his expired one.
    assert_eq!(everyone.as_array().unwrap().len(), 17, "{everyone}");
    assert!(
        everyone
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["user_name"] == "Ben Carter" && c["source"] == "renewal"),
        "{everyone}"
    );

    // Created through the use cases, as the people the manifest names: audited like any other.
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=renewal.submit&per_page=100",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit["meta"]["total"], 4, "{audit}");

    // Ben's request was decided: approved at both steps, with its history.
    let ben = token(&app, "ben.carter").await;
    let mine = get(&app, "/api/v1/renewals", &ben).await;
    assert_eq!(mine[0]["status"], "approved", "{mine}");
    let id = mine[0]["id"].as_str().unwrap();
    let request = get(&app, &format!("/api/v1/renewals/{id}"), &ben).await;
    let steps = request["steps"].as_array().unwrap();
    assert!(
        steps.len() == 2 && steps.iter().all(|s| s["status"] == "approved"),
        "{request}"
    );
    assert!(
        request["history"].as_array().unwrap().len() >= 3,
        "{request}"
    );

    // A frontline employee without email signs in with her employee number and PIN; her
    // foreman is on her record.
    let mia = app.sign_in("demo", "E1007", "246810").await;
    let mia = mia["data"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("Mia signs in with her PIN: {mia}"))
        .to_string();
    let me = get(&app, "/api/v1/users/me", &mia).await;
    assert!(me.get("email").is_none(), "{me}");
    assert_eq!(me["has_pin"], true, "{me}");

    // The depot's HR export: a CSV installation whose first run imported five frontline
    // people without names or email, shown by job role and number, flagged incomplete; the
    // next export was run dry.
    let admin = token(&app, "admin").await;
    let installations = get(&app, "/api/v1/connectors/installations", &admin).await;
    assert_eq!(
        names(&installations, "name"),
        ["Depot HR export (CSV)"],
        "{installations}"
    );
    let id = installations[0]["id"].as_str().unwrap();
    let runs = get(
        &app,
        &format!("/api/v1/connectors/installations/{id}/runs"),
        &admin,
    )
    .await;
    assert_eq!(runs[1]["status"], "succeeded", "{runs}");
    assert_eq!(runs[1]["created"], 5, "{runs}");
    // This week's export waits as a dry run: two starters and a promotion, nothing written.
    let dry = &runs[0];
    assert_eq!(
        (
            &dry["dry_run"],
            &dry["status"],
            &dry["created"],
            &dry["updated"]
        ),
        (&json!(true), &json!("succeeded"), &json!(2), &json!(1)),
        "{runs}"
    );
    let starter = get(&app, "/api/v1/users?search=E3006", &admin).await;
    assert_eq!(starter.as_array().map(Vec::len), Some(0), "{starter}");
    let imported = get(&app, "/api/v1/users?search=E3004", &admin).await;
    assert_eq!(
        imported[0]["first_name"], "Signalling Technician",
        "{imported}"
    );
    assert_eq!(imported[0]["profile_incomplete"], true, "{imported}");
}
