//! The authorization matrix (every operation × every kind of caller) and the tenant-isolation
//! matrix (tenant B's administrator on tenant A's objects), both driven by one table that must
//! cover every operation of the OpenAPI document.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainflow_kernel::auth::{Permission, Role};
use trainflow_tests::{TestApp, Which};
use uuid::Uuid;

/// Who may call an operation.
#[derive(Clone, Copy, Debug)]
enum Access {
    /// Anyone; the operation authenticates by its body (sign-in, refresh, logout).
    Public,
    /// A signed-in person of the tenant whose role grants the permission.
    Tenant(Permission),
    /// A platform operator.
    Platform,
    /// Any signed-in person of the tenant; the object decides who may act on it (the
    /// approver of the pending step decides; the employee's side changes the request), so
    /// people it does not involve get 403 from it rather than from the permission table.
    Involved,
}

/// What `{id}` in the path stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    None,
    User,
    Tenant,
    /// A connector installation of tenant A.
    Installation,
    /// A connector run of tenant A.
    Run,
    /// A certification type of tenant A (also the `{scope}` of approval chains).
    CertType,
    /// A certification of tenant A's employee.
    Certification,
    /// A renewal request of tenant A (`{evidence_id}`: an id that matches nothing).
    Renewal,
    /// A notification of tenant A's employee.
    Notification,
    /// A delegation of tenant A's manager.
    Delegation,
}

struct Op {
    method: Method,
    path: &'static str,
    access: Access,
    target: Target,
    body: fn(&Ctx) -> Option<Value>,
}

/// Values the bodies draw on.
struct Ctx {
    unique: String,
    tenant_slug: String,
    department: Uuid,
    /// Tenant A's employee, one of its certification types and a certification.
    employee: Uuid,
    cert_type: Uuid,
    certification: Uuid,
}

fn ops() -> Vec<Op> {
    use Access::*;
    use Permission::*;
    vec![
        Op {
            method: Method::POST,
            path: "/api/v1/auth/token",
            access: Public,
            target: Target::None,
            body: |c| {
                Some(
                    json!({"tenant": c.tenant_slug, "email": format!("{}@nowhere.test", c.unique), "password": "not-the-password"}),
                )
            },
        },
        Op {
            method: Method::POST,
            path: "/api/v1/auth/refresh",
            access: Public,
            target: Target::None,
            body: |_| Some(json!({"refresh_token": format!("{}.junk", Uuid::new_v4().simple())})),
        },
        Op {
            method: Method::POST,
            path: "/api/v1/auth/logout",
            access: Public,
            target: Target::None,
            body: |_| Some(json!({"refresh_token": "junk"})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/users/me",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::PUT,
            path: "/api/v1/users/me",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| Some(json!({"first_name": "Same", "last_name": "Person"})),
        },
        Op {
            method: Method::POST,
            path: "/api/v1/users/me/password",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| {
                Some(
                    json!({"current_password": "not-my-password", "new_password": "another long passphrase"}),
                )
            },
        },
        Op {
            method: Method::GET,
            path: "/api/v1/users",
            access: Tenant(UsersRead),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/users",
            access: Tenant(UsersWrite),
            target: Target::None,
            body: |c| {
                Some(
                    json!({"email": format!("{}@example.com", c.unique), "department_id": c.department}),
                )
            },
        },
        Op {
            method: Method::GET,
            path: "/api/v1/users/active_count",
            access: Tenant(UsersRead),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/users/{id}",
            access: Tenant(UsersRead),
            target: Target::User,
            body: |_| None,
        },
        Op {
            method: Method::PUT,
            path: "/api/v1/users/{id}",
            access: Tenant(UsersWrite),
            target: Target::User,
            body: |c| {
                Some(
                    json!({"email": format!("{}@example.com", c.unique), "username": c.unique, "first_name": "Put",
                                   "last_name": "Person", "role": "employee", "is_active": true}),
                )
            },
        },
        Op {
            method: Method::PATCH,
            path: "/api/v1/users/{id}",
            access: Tenant(UsersWrite),
            target: Target::User,
            body: |_| Some(json!({"position": "Patched"})),
        },
        Op {
            method: Method::DELETE,
            path: "/api/v1/users/{id}",
            access: Tenant(UsersWrite),
            target: Target::User,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/users/{id}/restore",
            access: Tenant(UsersWrite),
            target: Target::User,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/users/{id}/activity",
            access: Tenant(UsersRead),
            target: Target::User,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/departments",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/departments",
            access: Tenant(UsersWrite),
            target: Target::None,
            body: |c| Some(json!({"name": format!("Dept {}", c.unique)})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/audit",
            access: Tenant(AuditRead),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/audit/verify",
            access: Tenant(AuditRead),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/tenant",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::PUT,
            path: "/api/v1/tenant",
            access: Tenant(TenantSettings),
            target: Target::None,
            body: |c| {
                Some(
                    json!({"name": format!("Tenant {}", c.unique), "time_zone": "UTC", "locale": "en",
                                   "settings": {"primary_colour": "#123456", "logo_url": null, "inactive_after_days": 365,
                                                "notification_channels": ["email"]}}),
                )
            },
        },
        Op {
            method: Method::POST,
            path: "/api/v1/platform/auth/token",
            access: Public,
            target: Target::None,
            body: |c| {
                Some(
                    json!({"email": format!("{}@nowhere.test", c.unique), "password": "not-the-password"}),
                )
            },
        },
        Op {
            method: Method::GET,
            path: "/api/v1/platform/tenants",
            access: Platform,
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/platform/tenants",
            access: Platform,
            target: Target::None,
            body: |c| Some(json!({"slug": format!("m-{}", &c.unique[..12]), "name": "Matrix"})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/platform/tenants/{id}",
            access: Platform,
            target: Target::Tenant,
            body: |_| None,
        },
        Op {
            method: Method::DELETE,
            path: "/api/v1/platform/tenants/{id}",
            access: Platform,
            target: Target::Tenant,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/platform/tenants/{id}/suspend",
            access: Platform,
            target: Target::Tenant,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/platform/tenants/{id}/reactivate",
            access: Platform,
            target: Target::Tenant,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/connectors",
            access: Tenant(Integrations),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/connectors/packages",
            access: Tenant(Integrations),
            target: Target::None,
            // Sent as multipart (see `send`): a manifest that fails validation.
            body: |_| Some(json!({"id": "acme.incomplete"})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/connectors/installations",
            access: Tenant(Integrations),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/connectors/installations",
            access: Tenant(Integrations),
            target: Target::None,
            body: |c| Some(csv_installation(&c.unique)),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/connectors/installations/{id}",
            access: Tenant(Integrations),
            target: Target::Installation,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/connectors/installations/{id}/files",
            access: Tenant(Integrations),
            target: Target::Installation,
            // Sent as the raw file (see `send`).
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/connectors/installations/{id}/files",
            access: Tenant(Integrations),
            target: Target::Installation,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/connectors/installations/{id}/runs",
            access: Tenant(Integrations),
            target: Target::Installation,
            body: |_| Some(json!({})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/connectors/installations/{id}/runs",
            access: Tenant(Integrations),
            target: Target::Installation,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/connectors/runs/{id}",
            access: Tenant(Integrations),
            target: Target::Run,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/connectors/runs/{id}/confirm",
            access: Tenant(Integrations),
            target: Target::Run,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/auth/password-reset",
            access: Public,
            target: Target::None,
            body: |c| {
                Some(
                    json!({"tenant": c.tenant_slug, "email": format!("{}@nowhere.test", c.unique)}),
                )
            },
        },
        Op {
            method: Method::POST,
            path: "/api/v1/auth/password-reset/confirm",
            access: Public,
            target: Target::None,
            body: |_| {
                Some(
                    json!({"token": format!("{}.{}", Uuid::new_v4().simple(), "x".repeat(43)), "new_password": "a long enough new password"}),
                )
            },
        },
        Op {
            method: Method::POST,
            path: "/api/v1/auth/verify-email",
            access: Public,
            target: Target::None,
            body: |_| Some(json!({"token": "junk"})),
        },
        Op {
            method: Method::POST,
            path: "/api/v1/users/me/verify-email",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/notifications",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/notifications/unread_count",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/notifications/{id}/read",
            access: Tenant(SelfService),
            target: Target::Notification,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/notifications/{id}/unread",
            access: Tenant(SelfService),
            target: Target::Notification,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/notifications/read_all",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::DELETE,
            path: "/api/v1/notifications/{id}",
            access: Tenant(SelfService),
            target: Target::Notification,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/notifications/preferences",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::PUT,
            path: "/api/v1/notifications/preferences",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| {
                Some(
                    json!({"preferences": [{"kind": "report", "channel": "email", "enabled": false}]}),
                )
            },
        },
        Op {
            method: Method::POST,
            path: "/api/v1/notifications/broadcasts",
            access: Tenant(Broadcast),
            target: Target::None,
            body: |c| {
                Some(
                    json!({"audience": "department", "department_id": c.department, "title": "Matrix", "body": "x"}),
                )
            },
        },
        Op {
            method: Method::GET,
            path: "/api/v1/notifications/templates/{name}",
            access: Tenant(TenantSettings),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::PUT,
            path: "/api/v1/notifications/templates/{name}",
            access: Tenant(TenantSettings),
            target: Target::None,
            body: |_| {
                Some(
                    json!({"subject": "{{title}}", "text_body": "{{body}}", "html_body": "<p>{{body}}</p>"}),
                )
            },
        },
        Op {
            method: Method::GET,
            path: "/api/v1/certification-types",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/certification-types",
            access: Tenant(CertificationsManage),
            target: Target::None,
            body: |c| {
                Some(json!({"code": &c.unique[..12], "name": "Matrix type", "validity_months": 12}))
            },
        },
        Op {
            method: Method::POST,
            path: "/api/v1/certification-types/preview",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| {
                Some(
                    json!({"validity_months": 12, "renewal_window_days": 30, "start_date": "2027-01-01"}),
                )
            },
        },
        Op {
            method: Method::GET,
            path: "/api/v1/certification-types/{id}",
            access: Tenant(SelfService),
            target: Target::CertType,
            body: |_| None,
        },
        Op {
            method: Method::PATCH,
            path: "/api/v1/certification-types/{id}",
            access: Tenant(CertificationsManage),
            target: Target::CertType,
            body: |_| Some(json!({"name": "Renamed"})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/approval-chains/{scope}",
            access: Tenant(CertificationsManage),
            target: Target::CertType,
            body: |_| None,
        },
        Op {
            method: Method::PUT,
            path: "/api/v1/approval-chains/{scope}",
            access: Tenant(CertificationsManage),
            target: Target::CertType,
            body: |_| Some(json!({"steps": [{"relation": "manager", "sla_hours": 24}]})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/certifications",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/certifications",
            access: Tenant(CertificationsManage),
            target: Target::None,
            body: |c| {
                Some(
                    json!({"user_id": c.employee, "type_id": c.cert_type, "issued_on": "2026-01-01"}),
                )
            },
        },
        Op {
            method: Method::GET,
            path: "/api/v1/certifications/{id}",
            access: Tenant(SelfService),
            target: Target::Certification,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/renewals",
            access: Tenant(SelfService),
            target: Target::None,
            body: |c| Some(json!({"certification_id": c.certification})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/renewals",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/approvals",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/renewals/{id}",
            access: Tenant(SelfService),
            target: Target::Renewal,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/renewals/{id}/evidence",
            access: Involved,
            target: Target::Renewal,
            // Sent as the raw file (see `send`).
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/renewals/{id}/evidence/{evidence_id}",
            access: Tenant(SelfService),
            target: Target::Renewal,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/renewals/{id}/decision",
            access: Involved,
            target: Target::Renewal,
            body: |_| Some(json!({"decision": "approve"})),
        },
        Op {
            method: Method::POST,
            path: "/api/v1/renewals/{id}/resubmit",
            access: Involved,
            target: Target::Renewal,
            body: |_| Some(json!({})),
        },
        Op {
            method: Method::POST,
            path: "/api/v1/renewals/{id}/cancel",
            access: Involved,
            target: Target::Renewal,
            body: |_| None,
        },
        Op {
            method: Method::GET,
            path: "/api/v1/delegations",
            access: Tenant(SelfService),
            target: Target::None,
            body: |_| None,
        },
        Op {
            method: Method::POST,
            path: "/api/v1/delegations",
            access: Tenant(SelfService),
            target: Target::None,
            body: |c| {
                Some(
                    json!({"delegate_id": c.employee, "starts_at": "2027-01-01T00:00:00Z", "ends_at": "2027-01-08T00:00:00Z"}),
                )
            },
        },
        Op {
            method: Method::DELETE,
            path: "/api/v1/delegations/{id}",
            access: Tenant(SelfService),
            target: Target::Delegation,
            body: |_| None,
        },
        Op {
            method: Method::PUT,
            path: "/api/v1/users/{id}/reporting-lines",
            access: Tenant(UsersWrite),
            target: Target::User,
            body: |_| Some(json!({})),
        },
        Op {
            method: Method::GET,
            path: "/api/v1/compliance",
            access: Tenant(ComplianceRead),
            target: Target::None,
            body: |_| None,
        },
    ]
}

/// Who holds each permission — written out here, independently of the code's table, so a
/// change to either shows up as a failure.
fn allowed_roles(p: Permission) -> &'static [Role] {
    use Role::*;
    match p {
        Permission::SelfService => &Role::ALL,
        Permission::UsersRead => &[Foreman, Manager, TrainingOfficer, Administrator],
        Permission::UsersWrite
        | Permission::AuditRead
        | Permission::TenantSettings
        | Permission::Integrations => &[Administrator],
        Permission::Broadcast => &[Manager, TrainingOfficer, Administrator],
        Permission::CertificationsManage => &[TrainingOfficer, Administrator],
        Permission::ComplianceRead => &[Foreman, Manager, TrainingOfficer, Administrator],
    }
}

#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    Person(Role),
    Operator,
}

fn callers() -> Vec<Caller> {
    let mut c = vec![Caller::Anonymous, Caller::Operator];
    c.extend(Role::ALL.iter().map(|r| Caller::Person(*r)));
    c
}

/// A valid installation of the first-party CSV connector.
fn csv_installation(unique: &str) -> Value {
    json!({"connector_id": "com.trainflow.csv", "name": format!("csv {unique}"),
           "config": {"entity": "employee", "columns": {"external_id": "Id", "first_name": "First", "last_name": "Last", "email": "Email"}}})
}

/// Sends an operation's request: JSON, except package uploads (multipart) and file uploads
/// (the raw file).
async fn send(
    app: &TestApp,
    op: &Op,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    if op.path == "/api/v1/connectors/packages" {
        let form = reqwest::multipart::Form::new()
            .text("manifest", body.unwrap_or_default().to_string())
            .part(
                "component",
                reqwest::multipart::Part::bytes(b"\0asm".to_vec()).file_name("c.wasm"),
            );
        return app.call_multipart(path, token, form).await;
    }
    if op.path.ends_with("/evidence") && op.method == Method::POST {
        let path = format!("{path}?filename=evidence.pdf");
        return app
            .call_raw(
                Method::POST,
                &path,
                token,
                "application/pdf",
                b"%PDF-1.4".to_vec(),
            )
            .await;
    }
    if op.path.ends_with("/files") && op.method == Method::POST {
        let path = format!("{path}?filename=people.csv");
        return app
            .call_raw(
                Method::POST,
                &path,
                token,
                "application/octet-stream",
                b"Id,First,Last,Email\n".to_vec(),
            )
            .await;
    }
    app.call(op.method.clone(), path, token, body).await
}

/// A fresh installation of tenant A.
async fn fresh_installation(app: &TestApp) -> String {
    let admin = app.token(Which::A, Role::Administrator).await;
    app.install(&admin, csv_installation(&unique()))
        .await
        .to_string()
}

/// A fresh (finished) run of tenant A.
async fn fresh_run(app: &TestApp) -> String {
    let admin = app.token(Which::A, Role::Administrator).await;
    let inst = app.install(&admin, csv_installation(&unique())).await;
    let file = b"Id,First,Last,Email\nE1,Ann,Lee,ann@example.com\n".to_vec();
    app.upload(&admin, inst, "people.csv", file).await;
    app.run_to_end(&admin, inst).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Tenant A's fixtures for the certification operations: a type and a certification of its
/// employee (each call makes fresh ones).
async fn fresh_certification(app: &TestApp) -> (String, String) {
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, t) = app
        .call(
            Method::POST,
            "/api/v1/certification-types",
            Some(&admin),
            Some(json!({"code": &unique()[..12], "name": "Fixture", "validity_months": 12})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let type_id = t["data"]["id"].as_str().unwrap().to_string();
    let (s, c) = app
        .call(
            Method::POST,
            "/api/v1/certifications",
            Some(&admin),
            Some(json!({"user_id": app.a.people[&Role::Employee], "type_id": type_id, "issued_on": "2026-06-01"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    (type_id, c["data"]["id"].as_str().unwrap().to_string())
}

/// A renewal request of tenant A (made by its administrator for the employee).
async fn fresh_renewal(app: &TestApp) -> String {
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, cert) = fresh_certification(app).await;
    let (s, r) = app
        .call(
            Method::POST,
            "/api/v1/renewals",
            Some(&admin),
            Some(json!({"certification_id": cert})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["data"]["id"].as_str().unwrap().to_string()
}

/// A notification of tenant A's employee.
async fn fresh_notification(app: &TestApp) -> String {
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Some(&admin),
            Some(json!({"audience": "role", "role": "employee", "title": "Fixture", "body": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let employee = app.token(Which::A, Role::Employee).await;
    let (_, list) = app
        .call(
            Method::GET,
            "/api/v1/notifications?per_page=1",
            Some(&employee),
            None,
        )
        .await;
    list["data"][0]["id"].as_str().unwrap().to_string()
}

/// A delegation of tenant A's manager.
async fn fresh_delegation(app: &TestApp) -> String {
    let manager = app.token(Which::A, Role::Manager).await;
    let (s, d) = app
        .call(
            Method::POST,
            "/api/v1/delegations",
            Some(&manager),
            Some(json!({"delegate_id": app.a.people[&Role::Foreman], "starts_at": "2027-01-01T00:00:00Z", "ends_at": "2027-01-08T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    d["data"]["id"].as_str().unwrap().to_string()
}

/// `path` with its parameters filled for `target` (`id`), plus the fixed ones.
fn fill(path: &str, id: &str) -> String {
    path.replace("{id}", id)
        .replace("{scope}", id)
        .replace("{evidence_id}", &Uuid::new_v4().to_string())
        .replace("{name}", "notification")
}

fn unique() -> String {
    Uuid::new_v4().simple().to_string()
}

async fn fresh_user(app: &TestApp) -> String {
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"email": format!("{}@target.test", unique())})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

async fn fresh_tenant(app: &TestApp, op: &str) -> String {
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/platform/tenants",
            Some(op),
            Some(json!({"slug": format!("t-{}", &unique()[..12]), "name": "Target"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_table_covers_every_operation_of_the_openapi_document() {
    let app = TestApp::spawn().await;
    let (_, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let tabled: BTreeSet<(String, String)> = ops()
        .iter()
        .map(|o| (o.method.to_string(), o.path.to_string()))
        .collect();
    assert_eq!(
        documented, tabled,
        "every operation needs a row in the matrices (and every row an operation)"
    );
}

#[tokio::test]
async fn every_operation_admits_exactly_the_callers_its_permission_names() {
    let app = TestApp::spawn().await;
    let operator = app.operator_token().await;
    let fixture = fresh_certification(&app).await;
    let mut failures = Vec::new();
    for op in ops() {
        for caller in callers() {
            let token = match caller {
                Caller::Anonymous => None,
                Caller::Operator => Some(operator.clone()),
                Caller::Person(r) => Some(app.token(Which::A, r).await),
            };
            let path = match op.target {
                Target::None => fill(op.path, ""),
                Target::User => fill(op.path, &fresh_user(&app).await),
                Target::Installation => fill(op.path, &fresh_installation(&app).await),
                Target::Run => fill(op.path, &fresh_run(&app).await),
                Target::Tenant => fill(op.path, &fresh_tenant(&app, &operator).await),
                Target::CertType => fill(op.path, &fresh_certification(&app).await.0),
                Target::Certification => fill(op.path, &fresh_certification(&app).await.1),
                Target::Renewal => fill(op.path, &fresh_renewal(&app).await),
                Target::Notification => fill(op.path, &fresh_notification(&app).await),
                Target::Delegation => fill(op.path, &fresh_delegation(&app).await),
            };
            let ctx = Ctx {
                unique: unique(),
                tenant_slug: app.a.slug.clone(),
                department: app.a.department,
                employee: app.a.people[&Role::Employee],
                cert_type: fixture.0.parse().unwrap(),
                certification: fixture.1.parse().unwrap(),
            };
            let (status, body) = send(&app, &op, &path, token.as_deref(), (op.body)(&ctx)).await;
            let expected: &[StatusCode] = match (op.access, caller) {
                (Access::Public, _) => &[],
                (Access::Tenant(_) | Access::Involved, Caller::Anonymous | Caller::Operator) => {
                    &[StatusCode::UNAUTHORIZED]
                }
                (Access::Involved, Caller::Person(_)) => &[],
                (Access::Tenant(p), Caller::Person(r)) if !allowed_roles(p).contains(&r) => {
                    &[StatusCode::FORBIDDEN]
                }
                (Access::Tenant(_), Caller::Person(_)) => &[],
                (Access::Platform, Caller::Operator) => &[],
                (Access::Platform, _) => &[StatusCode::UNAUTHORIZED],
            };
            let ok = if expected.is_empty() {
                let public = matches!(op.access, Access::Public);
                let involved = matches!(op.access, Access::Involved);
                (involved || status != StatusCode::FORBIDDEN)
                    && (public || status != StatusCode::UNAUTHORIZED)
                    && !status.is_server_error()
            } else {
                expected.contains(&status)
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {caller:?}: got {status}, expected {expected:?} ({body})",
                    op.method, op.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix:\n{}",
        failures.join("\n")
    );
    // Refusals are security events in the audit log.
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=permission_denied",
            Some(&admin),
            None,
        )
        .await;
    assert!(audit["meta"]["total"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn tenant_b_administrator_cannot_see_or_change_anything_of_tenant_a() {
    let app = TestApp::spawn().await;
    let b_admin = app.token(Which::B, Role::Administrator).await;
    // Give tenant A a little of everything, then fingerprint it.
    let a_user = fresh_user(&app).await;
    let a_admin = app.token(Which::A, Role::Administrator).await;
    let (_, a_dept) = app
        .call(
            Method::POST,
            "/api/v1/departments",
            Some(&a_admin),
            Some(json!({"name": "Only in A"})),
        )
        .await;
    let mut a_ids: Vec<String> = app.a.people.values().map(Uuid::to_string).collect();
    a_ids.extend([
        a_user.clone(),
        app.a.id.to_string(),
        app.a.department.to_string(),
        a_dept["data"]["id"].as_str().unwrap().into(),
    ]);
    let a_installation = fresh_installation(&app).await;
    let a_run = fresh_run(&app).await;
    let (a_type, a_cert) = fresh_certification(&app).await;
    let a_renewal = fresh_renewal(&app).await;
    let a_notification = fresh_notification(&app).await;
    let a_delegation = fresh_delegation(&app).await;
    a_ids.extend([
        a_installation.clone(),
        a_run.clone(),
        a_type.clone(),
        a_cert.clone(),
        a_renewal.clone(),
        a_notification.clone(),
        a_delegation.clone(),
    ]);
    let a_before = app.fingerprint(app.a.id).await;
    let (_, a_tenant_before) = app
        .call(Method::GET, "/api/v1/tenant", Some(&a_admin), None)
        .await;

    let mut failures = Vec::new();
    for op in ops() {
        let path = match op.target {
            Target::None => fill(op.path, ""),
            Target::User => fill(op.path, &a_user),
            Target::Installation => fill(op.path, &a_installation),
            Target::Run => fill(op.path, &a_run),
            Target::Tenant => fill(op.path, &app.a.id.to_string()),
            Target::CertType => fill(op.path, &a_type),
            Target::Certification => fill(op.path, &a_cert),
            Target::Renewal => fill(op.path, &a_renewal),
            Target::Notification => fill(op.path, &a_notification),
            Target::Delegation => fill(op.path, &a_delegation),
        };
        // Bodies point at tenant A wherever they can: its slug, department, people and records.
        let ctx = Ctx {
            unique: unique(),
            tenant_slug: app.a.slug.clone(),
            department: app.a.department,
            employee: app.a.people[&Role::Employee],
            cert_type: a_type.parse().unwrap(),
            certification: a_cert.parse().unwrap(),
        };
        let (status, body) = send(&app, &op, &path, Some(&b_admin), (op.body)(&ctx)).await;
        let text = body.to_string();
        let leaked: Vec<&String> = a_ids
            .iter()
            .filter(|id| text.contains(id.as_str()))
            .collect();
        let acceptable = match (op.access, op.target) {
            (Access::Tenant(_) | Access::Involved, Target::None | Target::Tenant) => {
                !status.is_server_error()
            }
            (Access::Tenant(_) | Access::Involved, _) => status == StatusCode::NOT_FOUND,
            (Access::Platform, _) => status == StatusCode::UNAUTHORIZED,
            (Access::Public, _) => {
                status == StatusCode::UNAUTHORIZED || status == StatusCode::NO_CONTENT
            }
        };
        if !acceptable || !leaked.is_empty() || text.contains(&app.a.slug) {
            failures.push(format!(
                "{} {}: {status} leaked={leaked:?} {text}",
                op.method, op.path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "isolation matrix:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        app.fingerprint(app.a.id).await,
        a_before,
        "tenant A's data is untouched"
    );
    let (_, a_tenant_after) = app
        .call(Method::GET, "/api/v1/tenant", Some(&a_admin), None)
        .await;
    assert_eq!(
        a_tenant_before["data"]["name"],
        a_tenant_after["data"]["name"]
    );
    // A's department id is refused as a reference from tenant B.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&b_admin),
            Some(json!({"email": "x@b.test", "department_id": app.a.department})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["department_id"].is_array());
    // A's people cannot sign in through B's organisation, nor B's through A's.
    let (s, _) = app
        .call(Method::POST, "/api/v1/auth/token", None,
              Some(json!({"tenant": app.b.slug, "email": trainflow_tests::email_of(&app.a.slug, Role::Employee), "password": trainflow_tests::PASSWORD})))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_404_for_another_tenants_object_is_indistinguishable_from_a_missing_one() {
    let app = TestApp::spawn().await;
    let b_admin = app.token(Which::B, Role::Administrator).await;
    let a_user = app.a.people[&Role::Employee];
    let (s1, foreign) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{a_user}"),
            Some(&b_admin),
            None,
        )
        .await;
    let (s2, missing) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{}", Uuid::new_v4()),
            Some(&b_admin),
            None,
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(foreign["error"]["code"], missing["error"]["code"]);
    assert_eq!(foreign["error"]["message"], missing["error"]["message"]);
}
