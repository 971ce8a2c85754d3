//! The OpenAPI document is the contract. Its rendering is compared with the committed snapshot
//! `docs/openapi.json` (pretty-printed, keys in alphabetical order), so every change to the
//! contract is a reviewable diff; and the document is checked for the conventions of
//! `docs/api.md`: every operation documents its error answers with the envelope, every optional
//! request field is nullable, and every text pattern is one the kernel defines.
//!
//! After an intended change to the contract, update the snapshot with
//! `TRAINFLOW_UPDATE_SNAPSHOTS=1 cargo test -p trainflow-tests --test openapi` and commit it.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use trainflow_tests::TestApp;

/// The public URL the snapshot is rendered for (the default `TRAINFLOW_PUBLIC_URL`).
const PUBLIC_URL: &str = "http://127.0.0.1:8080";

const UPDATE: &str = "TRAINFLOW_UPDATE_SNAPSHOTS=1 cargo test -p trainflow-tests --test openapi";

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// The document as the snapshot keeps it: pretty-printed, keys sorted, a final newline.
fn canonical(doc: &Value) -> String {
    // serde_json's map is ordered by key (no `preserve_order`), so this sorts every object.
    let mut text = serde_json::to_string_pretty(doc).expect("a JSON value serialises");
    text.push('\n');
    text
}

fn rendered() -> Value {
    serde_json::from_str(&trainflow_server::app::openapi_document(PUBLIC_URL))
        .expect("the document is JSON")
}

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let text = canonical(&rendered());
    let path = snapshot_path();
    if std::env::var("TRAINFLOW_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&path, &text).expect("write the snapshot");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == text {
        return;
    }
    let (line, (want, got)) = committed
        .lines()
        .chain(std::iter::repeat(""))
        .zip(text.lines().chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, pair)| (i + 1, pair))
        .unwrap_or((0, ("", "")));
    panic!(
        "the OpenAPI document differs from its snapshot {} (first at line {line}):\n  \
         snapshot: {want}\n  rendered: {got}\n\
         If the contract change is intended, update the snapshot with\n  {UPDATE}\n\
         and commit docs/openapi.json with the change.",
        path.display()
    );
}

/// What the server serves at `/api/v1/openapi.json` is the document the snapshot keeps.
#[tokio::test]
async fn the_served_document_is_the_rendered_one() {
    let app = TestApp::spawn().await;
    let (status, served) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        served == rendered(),
        "the served document is not `openapi_document` for {PUBLIC_URL}"
    );
    // Swagger UI at /docs embeds the same document (its 429 answers carry `Retry-After`, which
    // poem-openapi's own document does not say).
    let page = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let embedded = page
        .split_once("let spec = ")
        .and_then(|(_, rest)| rest.split_once(";\n"))
        .map(|(json, _)| json)
        .expect("Swagger UI embeds a document");
    let embedded: Value = serde_json::from_str(embedded).expect("the embedded document is JSON");
    assert!(embedded == rendered(), "Swagger UI shows another document");
}

/// The schema `s` with `$ref`s followed, also the one poem-openapi wraps in `allOf` to add a
/// description.
fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = s["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            s = &doc["components"]["schemas"][name];
            assert!(s.is_object(), "unknown schema {r}");
        } else if let Some(inner) = s["allOf"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x.get("$ref").is_some()))
        {
            s = inner;
        } else {
            return s;
        }
    }
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), op));
        }
    }
    out
}

#[test]
fn every_operation_documents_its_errors_with_the_envelope() {
    let doc = rendered();
    let mut missing = Vec::new();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        let statuses: Vec<&String> = responses.keys().collect();
        assert!(
            statuses.iter().any(|s| s.starts_with('2')),
            "{method} {path} documents no success"
        );
        for status in [
            "400", "401", "403", "404", "409", "413", "422", "429", "500",
        ] {
            let schema = &responses
                .get(status)
                .map(|r| &r["content"]["application/json; charset=utf-8"]["schema"]);
            match schema {
                Some(s) if s["$ref"] == "#/components/schemas/ErrorEnvelope" => {}
                _ => missing.push(format!("{method} {path} {status}")),
            }
        }
        assert_eq!(
            responses["429"]["headers"]["Retry-After"]["required"], true,
            "{method} {path}: 429 documents Retry-After"
        );
        assert_eq!(
            responses["401"]["headers"]["WWW-Authenticate"]["required"], true,
            "{method} {path}: 401 documents WWW-Authenticate"
        );
    }
    assert!(
        missing.is_empty(),
        "error answers without the envelope:\n{}",
        missing.join("\n")
    );
    let envelope = &doc["components"]["schemas"]["ErrorEnvelope"];
    assert_eq!(envelope["required"], serde_json::json!(["error"]));
    let body = resolve(&doc, &envelope["properties"]["error"]);
    assert_eq!(
        body["required"],
        serde_json::json!(["code", "message", "fields", "request_id"])
    );
}

/// Request fields that are optional but not nullable, on purpose (`docs/api.md`): in
/// `PATCH /users/{id}` `null` clears a field, and these four cannot be cleared.
const NOT_NULLABLE: [(&str, &str); 4] = [
    ("PatchUser", "email"),
    ("PatchUser", "username"),
    ("PatchUser", "role"),
    ("PatchUser", "is_active"),
];

/// One convention for optional request fields: left out or `null`, the same. So every member
/// of a request body that is not required is nullable (read-only members are never sent).
#[test]
fn every_optional_request_field_is_nullable() {
    let doc = rendered();
    let mut bodies = std::collections::BTreeSet::new();
    for (_, _, op) in operations(&doc) {
        if let Some(content) = op["requestBody"]["content"].as_object() {
            for media in content.values() {
                if let Some(name) = media["schema"]["$ref"].as_str() {
                    bodies.insert(name.trim_start_matches("#/components/schemas/").to_string());
                }
            }
        }
    }
    // Objects nested in request bodies are request objects too.
    let mut queue: Vec<String> = bodies.iter().cloned().collect();
    while let Some(name) = queue.pop() {
        let schema = &doc["components"]["schemas"][name.as_str()];
        let Some(props) = schema["properties"].as_object() else {
            continue;
        };
        for prop in props.values() {
            for candidate in [prop, &prop["items"]] {
                let refs = std::iter::once(candidate).chain(
                    candidate["allOf"]
                        .as_array()
                        .map(|a| a.iter().collect::<Vec<_>>())
                        .unwrap_or_default(),
                );
                for r in refs.filter_map(|s| s["$ref"].as_str()) {
                    let nested = r.trim_start_matches("#/components/schemas/").to_string();
                    let is_object =
                        doc["components"]["schemas"][nested.as_str()]["type"] == "object";
                    if is_object && bodies.insert(nested.clone()) {
                        queue.push(nested);
                    }
                }
            }
        }
    }
    assert!(bodies.contains("CreateUser") && bodies.contains("TenantSettings"));
    let mut wrong = Vec::new();
    for name in &bodies {
        let schema = &doc["components"]["schemas"][name.as_str()];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (field, prop) in schema["properties"].as_object().into_iter().flatten() {
            let optional = !required.contains(&field.as_str()) && prop["readOnly"] != true;
            if optional
                && prop["nullable"] != true
                && !NOT_NULLABLE.contains(&(name.as_str(), field.as_str()))
            {
                wrong.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "optional request fields not declared nullable: {}",
        wrong.join(", ")
    );
}

/// Patterns that belong to one field (an enumeration spelt as a pattern, a shape of its own).
const FIELD_PATTERNS: [&str; 9] = [
    r"^(?:-?(?:created_at|email|last_name|first_name|last_active_at|employee_number))?$",
    r"^(?:in_app|email|sms|push)$",
    r"^(?:all|role|department)$",
    r"^(?:employee|foreman|manager|training_officer|trainer|administrator)$",
    r"^(?:foreman|manager|training_officer|named)$",
    r"^ *(?:(?:[!-~]+ +){4}[!-~]+ *)?$",
    // A push subscription: its endpoint, and its keys in base64url.
    r"^https?://[^\s]+$",
    r"^[A-Za-z0-9_-]{87}=?$",
    r"^[A-Za-z0-9_-]{22}(?:==)?$",
];

fn patterns<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("pattern", Value::String(p)) => out.push((at.clone(), p.as_str())),
                    _ => patterns(v, format!("{at}/{key}"), out),
                }
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                patterns(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every pattern of the document is one the kernel defines (and tests against the server's own
/// checks), the password policy, or one of the field patterns above.
#[test]
fn every_pattern_is_a_known_one() {
    let doc = rendered();
    let mut found = Vec::new();
    patterns(&doc, String::new(), &mut found);
    assert!(found.len() > 20, "{found:?}");
    let unknown: Vec<String> = found
        .iter()
        .filter(|(_, p)| {
            !trainflow_kernel::domain::patterns::ALL.contains(p)
                && *p != trainflow_identity::password::POLICY_PATTERN
                && !FIELD_PATTERNS.contains(p)
        })
        .map(|(at, p)| format!("{at}: {p}"))
        .collect();
    assert!(
        unknown.is_empty(),
        "patterns the kernel does not define:\n{}",
        unknown.join("\n")
    );
}

/// Every parameter the server bounds states its bounds.
#[test]
fn paging_parameters_state_their_ranges() {
    let doc = rendered();
    let mut seen = 0;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let (min, max) = match p["name"].as_str() {
                Some("page") => (1, 1_000_000),
                Some("per_page") => (1, 100),
                _ => continue,
            };
            seen += 1;
            let bounds = (
                p["schema"]["minimum"].as_f64(),
                p["schema"]["maximum"].as_f64(),
            );
            assert_eq!(
                bounds,
                (Some(f64::from(min)), Some(f64::from(max))),
                "{method} {path} {}",
                p["name"]
            );
        }
    }
    assert!(seen >= 8, "{seen} paging parameters");
}
