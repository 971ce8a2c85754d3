//! The authorization matrix (every operation × every kind of caller) and the tenant-isolation
//! matrix (tenant B's administrator on tenant A's objects), both driven by one table that must
//! cover every operation of the OpenAPI document and agree with the endpoint table of
//! `docs/api.md`.
//!
//! Every row names its fixture (`Target`: a real object made through the API for each call) and
//! who may call it. An allowed caller must get exactly the operation's documented success
//! status (the single 2xx response of the operation in the OpenAPI document), a caller whose
//! role lacks the permission exactly `403`, a caller without a tenant token exactly `401`; rows
//! whose outcome depends on the object name the status of each role.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::{sync::Semaphore, task::JoinSet};
use trainflow_kernel::auth::{Permission, Role};
use trainflow_tests::{
    csv_installation, email_of, push_subscription, short_unique, Options, TestApp, Which, PASSWORD,
};
use uuid::Uuid;

/// What a caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The operation's documented success status.
    Success,
    /// This refusal.
    Refused(u16),
}

use Outcome::{Refused, Success};

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Access {
    /// Anyone: the operation authenticates by its body (credentials, a refresh token, a link's
    /// token), so every caller with a valid body succeeds. `forged` is the answer to a body
    /// that names tenant A without A's secrets (an unknown email, a made-up token).
    Public { forged: u16 },
    /// A signed-in person of the tenant whose role grants the permission; anyone else in the
    /// tenant gets 403.
    Tenant(Permission),
    /// A platform operator; anyone else gets 401.
    Platform,
    /// A signed-in person of the tenant (the permission is the operation's), and the object
    /// decides: the status of each role on the row's fixture.
    Object(Permission, fn(Role) -> Outcome),
}

impl Access {
    /// The permission `docs/api.md` names for the operation (`None` for anyone and operators).
    fn permission(self) -> Option<Permission> {
        match self {
            Access::Tenant(p) | Access::Object(p, _) => Some(p),
            Access::Public { .. } | Access::Platform => None,
        }
    }
}

/// The fixture a row's call needs: `{id}` (and `{scope}`) in the path, or the value its body
/// carries. Made fresh for every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    None,
    /// A new person of tenant A.
    User,
    /// A new person of tenant A, soft-deleted.
    DeletedUser,
    /// Tenant A's employee, whose foreman is tenant A's foreman.
    Employee,
    /// A new person of tenant A with a picture.
    Avatar,
    /// A tenant with an uploaded logo (tenant B in the authorization matrix, whose calls remove
    /// tenant A's logo concurrently; tenant A in the isolation matrix).
    Logo,
    /// A new (active) tenant.
    Tenant,
    /// A new tenant, suspended.
    SuspendedTenant,
    /// A new CSV installation of tenant A.
    Installation,
    /// A new CSV installation of tenant A with a file to import.
    InstallationWithFile,
    /// A finished run of a new installation of tenant A.
    Run,
    /// A full-refresh run of tenant A waiting for its deletions to be confirmed.
    ConfirmableRun,
    /// A finished dry run of tenant A, not applied yet.
    DryRun,
    /// A new certification type of tenant A (the body's `type_id`, or the path's `{scope}`).
    CertType,
    /// A certification of tenant A's employee.
    Certification,
    /// A certification of the caller.
    OwnCertification,
    /// A pending renewal request of tenant A's employee, asked for by the employee; the manager
    /// approves its first step.
    Renewal,
    /// [`Target::Renewal`] with an evidence file (`{evidence_id}`).
    RenewalEvidence,
    /// [`Target::Renewal`], returned for changes by the manager.
    ReturnedRenewal,
    /// A notification of tenant A's employee.
    Notification,
    /// A notification of the caller.
    OwnNotification,
    /// A push subscription of tenant A's employee.
    PushDevice,
    /// A push subscription of the caller.
    OwnPushDevice,
    /// A new published course of tenant A (with a module and a lesson).
    Course,
    /// A new course of tenant A, soft-deleted.
    DeletedCourse,
    /// Two new courses of tenant A: `{id}` and, in `evidence`, another it may require.
    CoursePair,
    /// A course of tenant A (`{id}`) requiring another (`{required_id}`).
    Prerequisite,
    /// A module of a new course of tenant A.
    Module,
    /// A module of tenant A, soft-deleted.
    DeletedModule,
    /// A topic of a new course of tenant A.
    Topic,
    /// A file of a lesson of a new published course of tenant A.
    Material,
    /// A file of a lesson of tenant A, soft-deleted.
    DeletedMaterial,
    /// A topic of tenant A, soft-deleted.
    DeletedTopic,
    /// A lesson of a new course of tenant A.
    Lesson,
    /// A lesson of tenant A, soft-deleted.
    DeletedLesson,
    /// The self-enrolment of tenant A's employee in a new course (its lesson in `evidence`); the
    /// employee's foreman and manager are on their reporting lines.
    Enrolment,
    /// A question bank (with one question) of a new course of tenant A.
    Bank,
    /// A question bank of tenant A, soft-deleted.
    DeletedBank,
    /// A question of a new bank of tenant A.
    Question,
    /// A question of tenant A, soft-deleted.
    DeletedQuestion,
    /// An assessment lesson of tenant A with a quiz (its bank in `evidence`).
    Quiz,
    /// [`Target::Quiz`] in a course the caller is enrolled in.
    OwnQuiz,
    /// An attempt in progress of tenant A's employee (whose foreman and manager are on their
    /// reporting lines).
    Attempt,
    /// The certificate of tenant A's employee for a new course they completed.
    Certificate,
    /// [`Target::Certificate`], revoked.
    RevokedCertificate,
    /// The verification code of [`Target::Certificate`] (`{code}`).
    CertificateCode,
    /// A skill of tenant A's catalogue.
    Skill,
    /// A skill of tenant A's catalogue, soft-deleted.
    DeletedSkill,
    /// Tenant A's employee, with a skill of the catalogue in `evidence`.
    EmployeeSkill,
    /// A delegation of tenant A's manager.
    Delegation,
    /// A delegation of the caller.
    OwnDelegation,
    /// Tenant A's department (in the body).
    Department,
    /// A person of tenant A other than the caller (in the body).
    Delegate,
    /// The sign-in of tenant A's employee (in the body).
    Credentials,
    /// The platform operator's sign-in (in the body).
    OperatorCredentials,
    /// A refresh token of a new person of tenant A (in the body).
    RefreshToken,
    /// A password-reset link's token of a new person of tenant A (in the body).
    ResetToken,
    /// An email-verification link's token of a new person of tenant A (in the body).
    VerifyToken,
}

impl Target {
    /// Whether the fixture is named by the path (else by the body).
    fn in_path(self, path: &str) -> bool {
        self != Target::None
            && (path.contains("{id}") || path.contains("{scope}") || path.contains("{code}"))
    }
}

struct Op {
    method: Method,
    path: &'static str,
    access: Access,
    target: Target,
    body: fn(&Ctx) -> Option<Value>,
}

/// What a call's path and body draw on.
#[derive(Clone, Debug, Default)]
struct Ctx {
    /// The fixture: an id, or the token a body carries.
    id: String,
    /// `{evidence_id}`.
    evidence: String,
    /// Sign-in values.
    tenant: String,
    email: String,
    password: String,
    /// Tenant A's employee.
    employee: Uuid,
    unique: String,
}

/// The status of a caller without a tenant's access token.
const UNAUTHORIZED: u16 = 401;

fn visible_to_all_but_the_trainer(r: Role) -> Outcome {
    // The employee, their foreman (supervisor) and manager, and those who manage
    // certifications; the trainer has nothing to do with the request.
    if r == Role::Trainer {
        Refused(404)
    } else {
        Success
    }
}

fn ops() -> Vec<Op> {
    use Access::*;
    use Permission::*;
    use Target as T;
    let op = |method: Method,
              path: &'static str,
              access: Access,
              target: Target,
              body: fn(&Ctx) -> Option<Value>| Op {
        method,
        path,
        access,
        target,
        body,
    };
    let none: fn(&Ctx) -> Option<Value> = |_| None;
    vec![
        // Identity.
        op(
            Method::POST,
            "/api/v1/auth/token",
            Public { forged: 401 },
            T::Credentials,
            |c| Some(json!({"tenant": c.tenant, "email": c.email, "password": c.password})),
        ),
        op(
            Method::POST,
            "/api/v1/auth/refresh",
            Public { forged: 401 },
            T::RefreshToken,
            |c| Some(json!({"refresh_token": c.id})),
        ),
        op(
            Method::POST,
            "/api/v1/auth/logout",
            Public { forged: 204 },
            T::RefreshToken,
            |c| Some(json!({"refresh_token": c.id})),
        ),
        op(
            Method::POST,
            "/api/v1/auth/password-reset",
            Public { forged: 204 },
            T::Credentials,
            |c| Some(json!({"tenant": c.tenant, "email": c.email})),
        ),
        op(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            Public { forged: 401 },
            T::ResetToken,
            |c| Some(json!({"token": c.id, "new_password": "a long enough new password"})),
        ),
        op(
            Method::POST,
            "/api/v1/auth/verify-email",
            Public { forged: 401 },
            T::VerifyToken,
            |c| Some(json!({"token": c.id})),
        ),
        op(
            Method::POST,
            "/api/v1/users/me/verify-email",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/users/me",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/users/me",
            Tenant(SelfService),
            T::None,
            |_| Some(json!({"first_name": "Same", "last_name": "Person"})),
        ),
        op(
            Method::POST,
            "/api/v1/users/me/password",
            Tenant(SelfService),
            T::None,
            // The same password again: a real change (new hash, other sign-ins ended) that
            // leaves the seeded password working.
            |_| Some(json!({"current_password": PASSWORD, "new_password": PASSWORD})),
        ),
        op(
            Method::GET,
            "/api/v1/users",
            Tenant(UsersRead),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/users",
            Tenant(UsersWrite),
            T::Department,
            |c| Some(json!({"email": format!("{}@example.com", c.unique), "department_id": c.id})),
        ),
        op(
            Method::GET,
            "/api/v1/users/active_count",
            Tenant(UsersRead),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/users/{id}",
            Tenant(UsersRead),
            T::User,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/users/{id}",
            Tenant(UsersWrite),
            T::User,
            |c| {
                Some(
                    json!({"email": format!("{}@example.com", c.unique), "username": c.unique,
                            "first_name": "Put", "last_name": "Person", "role": "employee",
                            "is_active": true}),
                )
            },
        ),
        op(
            Method::PATCH,
            "/api/v1/users/{id}",
            Tenant(UsersWrite),
            T::User,
            |_| Some(json!({"position": "Patched"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/users/{id}",
            Tenant(UsersWrite),
            T::User,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/users/{id}/restore",
            Tenant(UsersWrite),
            T::DeletedUser,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/users/me/avatar",
            Tenant(SelfService),
            T::None,
            // Sent as the raw file (see `send`).
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/users/me/avatar",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/users/{id}/avatar",
            Tenant(SelfService),
            T::Avatar,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/users/{id}/pin",
            Tenant(PinSet),
            T::Employee,
            |_| Some(json!({"pin": "204861"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/users/{id}/pin",
            Tenant(PinSet),
            T::Employee,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/users/{id}/activity",
            Tenant(UsersRead),
            T::User,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/users/{id}/reporting-lines",
            Tenant(UsersWrite),
            T::User,
            |c| Some(json!({"supervisor_id": null, "manager_id": c.employee})),
        ),
        op(
            Method::GET,
            "/api/v1/departments",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/departments",
            Tenant(UsersWrite),
            T::None,
            |c| Some(json!({"name": format!("Dept {}", c.unique)})),
        ),
        op(
            Method::GET,
            "/api/v1/audit",
            Tenant(AuditRead),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/audit/verify",
            Tenant(AuditRead),
            T::None,
            none,
        ),
        // Tenancy.
        op(
            Method::GET,
            "/api/v1/tenant",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/tenant/logo",
            Tenant(TenantSettings),
            T::None,
            // Sent as the raw file (see `send`).
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/tenant/logo",
            Tenant(TenantSettings),
            T::None,
            none,
        ),
        // Emails show the logo to people who are not signed in: anyone may fetch it.
        op(
            Method::GET,
            "/api/v1/branding/{id}/logo",
            Public { forged: 200 },
            T::Logo,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/tenant",
            Tenant(TenantSettings),
            T::None,
            |c| {
                Some(
                    json!({"name": format!("Tenant {}", c.unique), "time_zone": "UTC", "locale": "en",
                            "settings": {"primary_colour": "#123456", "logo_url": null, "inactive_after_days": 365,
                                         "notification_channels": ["in_app", "email"]}}),
                )
            },
        ),
        op(
            Method::POST,
            "/api/v1/platform/auth/token",
            Public { forged: 401 },
            T::OperatorCredentials,
            |c| Some(json!({"email": c.email, "password": c.password})),
        ),
        op(
            Method::GET,
            "/api/v1/platform/tenants",
            Platform,
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/platform/tenants",
            Platform,
            T::None,
            |c| Some(json!({"slug": format!("m-{}", c.unique), "name": "Matrix"})),
        ),
        op(
            Method::GET,
            "/api/v1/platform/tenants/{id}",
            Platform,
            T::Tenant,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/platform/tenants/{id}",
            Platform,
            T::Tenant,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/platform/tenants/{id}/suspend",
            Platform,
            T::Tenant,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/platform/tenants/{id}/reactivate",
            Platform,
            T::SuspendedTenant,
            none,
        ),
        // Integrations.
        op(
            Method::GET,
            "/api/v1/connectors",
            Tenant(Integrations),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/connectors/packages",
            Tenant(Integrations),
            T::None,
            // Sent as multipart (see `send`): the test component's package.
            none,
        ),
        op(
            Method::GET,
            "/api/v1/connectors/installations",
            Tenant(Integrations),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/connectors/installations",
            Tenant(Integrations),
            T::None,
            |c| Some(csv_installation(&c.unique)),
        ),
        op(
            Method::GET,
            "/api/v1/connectors/installations/{id}",
            Tenant(Integrations),
            T::Installation,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/connectors/installations/{id}/files",
            Tenant(Integrations),
            T::Installation,
            // Sent as the raw file (see `send`).
            none,
        ),
        op(
            Method::GET,
            "/api/v1/connectors/installations/{id}/files",
            Tenant(Integrations),
            T::Installation,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/connectors/installations/{id}/runs",
            Tenant(Integrations),
            T::InstallationWithFile,
            |_| Some(json!({})),
        ),
        op(
            Method::GET,
            "/api/v1/connectors/installations/{id}/runs",
            Tenant(Integrations),
            T::Installation,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/connectors/runs/{id}",
            Tenant(Integrations),
            T::Run,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/connectors/runs/{id}/confirm",
            Tenant(Integrations),
            T::ConfirmableRun,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/connectors/runs/{id}/apply",
            Tenant(Integrations),
            T::DryRun,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/connectors/runs/{id}/abandon",
            Tenant(Integrations),
            T::ConfirmableRun,
            none,
        ),
        // Notifications.
        op(
            Method::GET,
            "/api/v1/notifications",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/notifications/unread_count",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/notifications/{id}/read",
            Tenant(SelfService),
            T::OwnNotification,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/notifications/{id}/read",
            Object(SelfService, only_the_employee),
            T::Notification,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/notifications/{id}/unread",
            Tenant(SelfService),
            T::OwnNotification,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/notifications/{id}/unread",
            Object(SelfService, only_the_employee),
            T::Notification,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/notifications/{id}",
            Tenant(SelfService),
            T::OwnNotification,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/notifications/{id}",
            Object(SelfService, only_the_employee),
            T::Notification,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/notifications/read_all",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/notifications/preferences",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/notifications/preferences",
            Tenant(SelfService),
            T::None,
            |_| {
                Some(
                    json!({"preferences": [{"kind": "report", "channel": "email", "enabled": false}]}),
                )
            },
        ),
        op(
            Method::POST,
            "/api/v1/notifications/broadcasts",
            Tenant(Broadcast),
            T::Department,
            |c| {
                Some(
                    json!({"audience": "department", "department_id": c.id, "title": "Matrix", "body": "x"}),
                )
            },
        ),
        op(
            Method::GET,
            "/api/v1/notifications/push",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/notifications/push/subscriptions",
            Tenant(SelfService),
            T::None,
            |_| Some(push_subscription()),
        ),
        op(
            Method::DELETE,
            "/api/v1/notifications/push/subscriptions/{id}",
            Tenant(SelfService),
            T::OwnPushDevice,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/notifications/push/subscriptions/{id}",
            Object(SelfService, only_the_employee),
            T::PushDevice,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/notifications/templates",
            Tenant(TenantSettings),
            T::None,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/notifications/templates/{name}",
            Tenant(TenantSettings),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/notifications/templates/{name}/preview",
            Tenant(TenantSettings),
            T::None,
            |_| {
                Some(
                    json!({"subject": "{{title}}", "text_body": "{{body}}", "html_body": "<p>{{body}}</p>"}),
                )
            },
        ),
        op(
            Method::GET,
            "/api/v1/notifications/templates/{name}",
            Tenant(TenantSettings),
            T::None,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/notifications/templates/{name}",
            Tenant(TenantSettings),
            T::None,
            |_| {
                Some(
                    json!({"subject": "{{title}}", "text_body": "{{body}}", "html_body": "<p>{{body}}</p>"}),
                )
            },
        ),
        // Certifications and renewals.
        op(
            Method::GET,
            "/api/v1/certification-types",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/certification-types",
            Tenant(CertificationsManage),
            T::None,
            |c| Some(json!({"code": c.unique, "name": "Matrix type", "validity_months": 12})),
        ),
        op(
            Method::POST,
            "/api/v1/certification-types/preview",
            Tenant(SelfService),
            T::None,
            |_| {
                Some(
                    json!({"validity_months": 12, "renewal_window_days": 30, "start_date": "2027-01-01"}),
                )
            },
        ),
        op(
            Method::GET,
            "/api/v1/certification-types/{id}",
            Tenant(SelfService),
            T::CertType,
            none,
        ),
        op(
            Method::PATCH,
            "/api/v1/certification-types/{id}",
            Tenant(CertificationsManage),
            T::CertType,
            |_| Some(json!({"name": "Renamed"})),
        ),
        op(
            Method::GET,
            "/api/v1/approval-chains/{scope}",
            Tenant(CertificationsManage),
            T::CertType,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/approval-chains/{scope}",
            Tenant(CertificationsManage),
            T::CertType,
            |_| Some(json!({"steps": [{"relation": "manager", "sla_hours": 24}]})),
        ),
        op(
            Method::GET,
            "/api/v1/certifications",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/certifications",
            Tenant(CertificationsManage),
            T::CertType,
            |c| Some(json!({"user_id": c.employee, "type_id": c.id, "issued_on": "2026-01-01"})),
        ),
        op(
            Method::GET,
            "/api/v1/certifications/{id}",
            Tenant(SelfService),
            T::OwnCertification,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/certifications/{id}",
            // Someone else's: those who see compliance, and nobody else (404, as if missing).
            Object(SelfService, |r| {
                if r == Role::Trainer {
                    Refused(404)
                } else {
                    Success
                }
            }),
            T::Certification,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/renewals",
            Tenant(SelfService),
            T::OwnCertification,
            |c| Some(json!({"certification_id": c.id})),
        ),
        op(
            Method::POST,
            "/api/v1/renewals",
            // The employee's: the employee, their foreman and manager, and those who manage
            // certifications; the trainer may not, and is told it does not exist (422 on the
            // field).
            Object(SelfService, |r| {
                if r == Role::Trainer {
                    Refused(422)
                } else {
                    Success
                }
            }),
            T::Certification,
            |c| Some(json!({"certification_id": c.id})),
        ),
        op(
            Method::GET,
            "/api/v1/renewals",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/approvals",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/renewals/{id}",
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Renewal,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/renewals/{id}/evidence",
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Renewal,
            // Sent as the raw file (see `send`).
            none,
        ),
        op(
            Method::GET,
            "/api/v1/renewals/{id}/evidence/{evidence_id}",
            Object(SelfService, visible_to_all_but_the_trainer),
            T::RenewalEvidence,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/renewals/{id}/decision",
            // Only the approver of the pending step decides; others who see the request are
            // refused, the trainer does not see it.
            Object(SelfService, |r| match r {
                Role::Manager => Success,
                Role::Trainer => Refused(404),
                _ => Refused(403),
            }),
            T::Renewal,
            |_| Some(json!({"decision": "approve"})),
        ),
        op(
            Method::POST,
            "/api/v1/renewals/{id}/resubmit",
            Object(SelfService, visible_to_all_but_the_trainer),
            T::ReturnedRenewal,
            |_| Some(json!({"comment": "Added the certificate"})),
        ),
        op(
            Method::POST,
            "/api/v1/renewals/{id}/cancel",
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Renewal,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/delegations",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/delegations",
            Tenant(SelfService),
            T::Delegate,
            |c| {
                Some(
                    json!({"delegate_id": c.id, "starts_at": "2027-01-01T00:00:00Z", "ends_at": "2027-01-08T00:00:00Z"}),
                )
            },
        ),
        op(
            Method::DELETE,
            "/api/v1/delegations/{id}",
            Tenant(SelfService),
            T::OwnDelegation,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/delegations/{id}",
            // The manager's: only they end it; to anyone else it does not exist.
            Object(SelfService, |r| {
                if r == Role::Manager {
                    Success
                } else {
                    Refused(404)
                }
            }),
            T::Delegation,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/compliance",
            Tenant(ComplianceRead),
            T::None,
            none,
        ),
        // Learning.
        op(
            Method::GET,
            "/api/v1/courses",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/courses/categories",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses",
            Tenant(CoursesManage),
            T::None,
            |c| Some(json!({"code": c.unique, "title": "Matrix course"})),
        ),
        op(
            Method::GET,
            "/api/v1/courses/{id}",
            Tenant(SelfService),
            T::Course,
            none,
        ),
        op(
            Method::PATCH,
            "/api/v1/courses/{id}",
            Tenant(CoursesManage),
            T::Course,
            |_| Some(json!({"title": "Patched course"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/courses/{id}",
            Tenant(CoursesManage),
            T::Course,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedCourse,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/courses/{id}/prerequisites",
            Tenant(SelfService),
            T::Prerequisite,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/{id}/prerequisites",
            Tenant(CoursesManage),
            T::CoursePair,
            |c| Some(json!({"required_course_id": c.evidence})),
        ),
        op(
            Method::DELETE,
            "/api/v1/courses/{id}/prerequisites/{required_id}",
            Tenant(CoursesManage),
            T::Prerequisite,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/{id}/modules",
            Tenant(CoursesManage),
            T::Course,
            |_| Some(json!({"title": "Matrix module"})),
        ),
        op(
            Method::PATCH,
            "/api/v1/modules/{id}",
            Tenant(CoursesManage),
            T::Module,
            |_| Some(json!({"title": "Patched module"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/modules/{id}",
            Tenant(CoursesManage),
            T::Module,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/modules/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedModule,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/lessons/{id}/materials",
            Tenant(CoursesManage),
            T::Lesson,
            // Sent as the raw file (see `send`).
            none,
        ),
        op(
            Method::GET,
            "/api/v1/lessons/{id}/materials",
            Tenant(SelfService),
            T::Lesson,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/materials/{id}",
            Tenant(SelfService),
            T::Material,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/materials/{id}",
            Tenant(CoursesManage),
            T::Material,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/materials/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedMaterial,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/courses/registration-template",
            Tenant(CoursesManage),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/registrations",
            Tenant(CoursesManage),
            T::None,
            // Sent as the raw file (see `send`).
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/{id}/topics",
            Tenant(CoursesManage),
            T::Course,
            |_| Some(json!({"title": "Matrix topic", "duration_hours": 1})),
        ),
        op(
            Method::PATCH,
            "/api/v1/topics/{id}",
            Tenant(CoursesManage),
            T::Topic,
            |_| Some(json!({"title": "Patched topic"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/topics/{id}",
            Tenant(CoursesManage),
            T::Topic,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/topics/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedTopic,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/modules/{id}/lessons",
            Tenant(CoursesManage),
            T::Module,
            |_| {
                Some(
                    json!({"title": "Matrix lesson", "kind": "link", "url": "https://example.com/lesson"}),
                )
            },
        ),
        op(
            Method::PATCH,
            "/api/v1/lessons/{id}",
            Tenant(CoursesManage),
            T::Lesson,
            |_| Some(json!({"title": "Patched lesson"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/lessons/{id}",
            Tenant(CoursesManage),
            T::Lesson,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/lessons/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedLesson,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/{id}/enrol",
            Tenant(SelfService),
            T::Course,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/{id}/assignments",
            // The employee reports to the manager, so the manager may assign them too.
            Tenant(EnrolmentsAssign),
            T::Course,
            |c| Some(json!({"user_ids": [c.employee], "due_on": "2999-01-01"})),
        ),
        op(
            Method::GET,
            "/api/v1/enrolments",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/courses/{id}/question-banks",
            Tenant(CoursesManage),
            T::Course,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/courses/{id}/question-banks",
            Tenant(CoursesManage),
            T::Course,
            |c| Some(json!({"name": format!("Bank {}", c.unique)})),
        ),
        op(
            Method::GET,
            "/api/v1/question-banks/{id}",
            Tenant(CoursesManage),
            T::Bank,
            none,
        ),
        op(
            Method::PATCH,
            "/api/v1/question-banks/{id}",
            Tenant(CoursesManage),
            T::Bank,
            |c| Some(json!({"name": format!("Renamed {}", c.unique)})),
        ),
        op(
            Method::DELETE,
            "/api/v1/question-banks/{id}",
            Tenant(CoursesManage),
            T::Bank,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/question-banks/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedBank,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/question-banks/{id}/questions",
            Tenant(CoursesManage),
            T::Bank,
            |_| Some(json!({"kind": "true_false", "prompt": "Matrix?", "correct_options": [0]})),
        ),
        op(
            Method::PATCH,
            "/api/v1/questions/{id}",
            Tenant(CoursesManage),
            T::Question,
            |_| Some(json!({"prompt": "Patched?"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/questions/{id}",
            Tenant(CoursesManage),
            T::Question,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/questions/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedQuestion,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/lessons/{id}/quiz",
            Tenant(SelfService),
            T::Quiz,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/lessons/{id}/quiz",
            Tenant(CoursesManage),
            T::Quiz,
            |c| Some(json!({"bank_id": c.evidence, "pass_percent": 60})),
        ),
        op(
            Method::POST,
            "/api/v1/lessons/{id}/attempts",
            Tenant(SelfService),
            T::OwnQuiz,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/quiz-attempts/{id}",
            // The employee, their foreman and manager, and the catalogue's builders.
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Attempt,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/quiz-attempts/{id}/submit",
            // Only the person answers; those who see the attempt only review it.
            Object(SelfService, |r| match r {
                Role::Trainer => Refused(404),
                Role::Employee => Success,
                _ => Refused(403),
            }),
            T::Attempt,
            |_| Some(json!({"answers": []})),
        ),
        op(
            Method::GET,
            "/api/v1/certificates",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/certificates/{id}",
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Certificate,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/certificates/{id}/pdf",
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Certificate,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/certificates/{id}/revoke",
            Tenant(CoursesManage),
            T::Certificate,
            |_| Some(json!({"reason": "Matrix revocation"})),
        ),
        op(
            Method::POST,
            "/api/v1/certificates/{id}/restore",
            Tenant(CoursesManage),
            T::RevokedCertificate,
            none,
        ),
        // Skills and achievements.
        op(
            Method::GET,
            "/api/v1/skills",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/skills",
            Tenant(CoursesManage),
            T::None,
            |_| {
                Some(
                    json!({"name": format!("Skill {}", short_unique()), "levels": ["Knows", "Does"]}),
                )
            },
        ),
        op(
            Method::GET,
            "/api/v1/skills/{id}",
            Tenant(SelfService),
            T::Skill,
            none,
        ),
        op(
            Method::PATCH,
            "/api/v1/skills/{id}",
            Tenant(CoursesManage),
            T::Skill,
            |_| Some(json!({"category": "Matrix"})),
        ),
        op(
            Method::DELETE,
            "/api/v1/skills/{id}",
            Tenant(CoursesManage),
            T::Skill,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/skills/{id}/restore",
            Tenant(CoursesManage),
            T::DeletedSkill,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/courses/{id}/skills",
            Tenant(SelfService),
            T::Course,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/courses/{id}/skills",
            Tenant(CoursesManage),
            T::Course,
            |_| Some(json!({"skills": []})),
        ),
        op(
            Method::GET,
            "/api/v1/users/{id}/skills",
            // The person, their foreman and manager, and the catalogue's builders.
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Employee,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/users/{id}/skills",
            // Their manager, and training officers and administrators.
            Tenant(EnrolmentsAssign),
            T::EmployeeSkill,
            |c| Some(json!({"skill_id": c.evidence, "level": 2, "note": "Seen on site"})),
        ),
        // Anyone may check a code (it is printed on the certificate); a made-up one is 404.
        op(
            Method::GET,
            "/api/v1/verifications/{code}",
            Public { forged: 404 },
            T::CertificateCode,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/calendar",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::PUT,
            "/api/v1/calendar/feed",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::DELETE,
            "/api/v1/calendar/feed",
            Tenant(SelfService),
            T::None,
            none,
        ),
        op(
            Method::GET,
            "/api/v1/enrolments/{id}",
            // The employee, their foreman and manager, and the catalogue's builders.
            Object(SelfService, visible_to_all_but_the_trainer),
            T::Enrolment,
            none,
        ),
        op(
            Method::POST,
            "/api/v1/enrolments/{id}/cancel",
            // A foreman sees the enrolment but does not assign courses.
            Object(SelfService, |r| match r {
                Role::Trainer => Refused(404),
                Role::Foreman => Refused(403),
                _ => Success,
            }),
            T::Enrolment,
            |_| Some(json!({"reason": "No longer needed"})),
        ),
        op(
            Method::POST,
            "/api/v1/enrolments/{id}/progress",
            // The person, or the catalogue's builders; their foreman and manager only watch.
            Object(SelfService, |r| match r {
                Role::Trainer => Refused(404),
                Role::Foreman | Role::Manager => Refused(403),
                _ => Success,
            }),
            T::Enrolment,
            |c| Some(json!({"lesson_id": c.evidence, "completed": true, "seconds_spent": 60})),
        ),
    ]
}

/// A notification is its recipient's (tenant A's employee); to anyone else it does not exist.
fn only_the_employee(r: Role) -> Outcome {
    if r == Role::Employee {
        Success
    } else {
        Refused(404)
    }
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
        Permission::PinSet => &[Foreman, Administrator],
        Permission::ImportsRead => &[TrainingOfficer, Administrator],
        Permission::CoursesManage => &[TrainingOfficer, Administrator],
        Permission::EnrolmentsAssign => &[Manager, TrainingOfficer, Administrator],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The OpenAPI document's operations: (METHOD, path) → the operation's single 2xx status.
async fn documented(app: &TestApp) -> BTreeMap<(String, String), u16> {
    let (s, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let successes: Vec<u16> = operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .filter_map(|k| k.parse::<u16>().ok())
                .filter(|s| (200..300).contains(s))
                .collect();
            assert_eq!(
                successes.len(),
                1,
                "{method} {path} documents one success status, not {successes:?}"
            );
            out.insert((method.to_uppercase(), path.clone()), successes[0]);
        }
    }
    out
}

/// The status `caller` must get from `op` (`success`: the documented one).
fn expected(op: &Op, caller: Caller, success: u16) -> u16 {
    let outcome = match (op.access, caller) {
        (Access::Public { .. }, _) => Success,
        (Access::Platform, Caller::Operator) => Success,
        (Access::Platform, _) => Refused(UNAUTHORIZED),
        (Access::Tenant(_) | Access::Object(..), Caller::Anonymous | Caller::Operator) => {
            Refused(UNAUTHORIZED)
        }
        (Access::Tenant(p), Caller::Person(r)) => {
            if allowed_roles(p).contains(&r) {
                Success
            } else {
                Refused(403)
            }
        }
        (Access::Object(p, outcome), Caller::Person(r)) => {
            if allowed_roles(p).contains(&r) {
                outcome(r)
            } else {
                Refused(403)
            }
        }
    };
    match outcome {
        Success => success,
        Refused(s) => s,
    }
}

/// A fresh fixture for `op` called by `caller`, in tenant A.
async fn fixture(app: &TestApp, op: &Op, caller: Caller, operator: &str) -> Ctx {
    let a = Which::A;
    let mut c = Ctx {
        tenant: app.a.slug.clone(),
        employee: app.a.people[&Role::Employee],
        unique: short_unique(),
        ..Ctx::default()
    };
    // Without a tenant token the object never matters: any id will do.
    let person = match caller {
        Caller::Person(r) => Some(r),
        _ => None,
    };
    let needs_object = match op.access {
        Access::Public { .. } => true,
        Access::Platform => caller == Caller::Operator,
        Access::Tenant(_) | Access::Object(..) => person.is_some(),
    };
    if !needs_object {
        c.id = Uuid::new_v4().to_string();
        c.evidence = Uuid::new_v4().to_string();
        return c;
    }
    let mine = person.unwrap_or(Role::Employee);
    let id = match op.target {
        Target::None => String::new(),
        Target::User => app.fresh_user(a).await.to_string(),
        Target::DeletedUser => app.deleted_user(a).await.to_string(),
        Target::Employee => app.a.people[&Role::Employee].to_string(),
        Target::Avatar => app.fresh_avatar(a).await.to_string(),
        // Tenant B's: A's roles remove A's logo (`DELETE /tenant/logo`) at the same time.
        Target::Logo => app.with_logo(Which::B).await.to_string(),
        Target::Tenant => fresh_tenant(app, operator, false).await,
        Target::SuspendedTenant => fresh_tenant(app, operator, true).await,
        Target::Installation => app.fresh_installation(a, "incremental").await.to_string(),
        Target::InstallationWithFile => app.installation_with_file(a).await.to_string(),
        Target::Run => app.fresh_run(a).await.to_string(),
        Target::ConfirmableRun => app.confirmable_run(a).await.to_string(),
        Target::DryRun => app.dry_run(a).await.to_string(),
        Target::CertType => app.fresh_cert_type(a).await.to_string(),
        Target::Certification => app
            .fresh_certification(a, app.a.people[&Role::Employee])
            .await
            .to_string(),
        Target::OwnCertification => app
            .fresh_certification(a, app.a.people[&mine])
            .await
            .to_string(),
        Target::Renewal => app.fresh_renewal(a).await.to_string(),
        Target::RenewalEvidence => {
            let (r, e) = app.fresh_evidence(a).await;
            c.evidence = e.to_string();
            r.to_string()
        }
        Target::ReturnedRenewal => app.returned_renewal(a, Role::Manager).await.to_string(),
        Target::Notification => app
            .fresh_notification(a, app.a.people[&Role::Employee])
            .await
            .to_string(),
        Target::OwnNotification => app
            .fresh_notification(a, app.a.people[&mine])
            .await
            .to_string(),
        Target::PushDevice => app
            .fresh_push_device(a, app.a.people[&Role::Employee])
            .await
            .to_string(),
        Target::OwnPushDevice => app
            .fresh_push_device(a, app.a.people[&mine])
            .await
            .to_string(),
        Target::Course => app.fresh_course(a).await.0.to_string(),
        Target::DeletedCourse => app.deleted_course(a).await.to_string(),
        Target::CoursePair => {
            c.evidence = app.fresh_course(a).await.0.to_string();
            app.fresh_course(a).await.0.to_string()
        }
        Target::Prerequisite => {
            let (course, required) = app.prerequisite(a).await;
            c.evidence = required.to_string();
            course.to_string()
        }
        Target::Module => app.fresh_course(a).await.1.to_string(),
        Target::DeletedModule => app.deleted_module(a).await.to_string(),
        Target::Topic => app.fresh_topic(a).await.to_string(),
        Target::DeletedTopic => app.deleted_topic(a).await.to_string(),
        Target::Material => app.fresh_material(a).await.to_string(),
        Target::DeletedMaterial => app.deleted_material(a).await.to_string(),
        Target::Lesson => app.fresh_course(a).await.2.to_string(),
        Target::DeletedLesson => app.deleted_lesson(a).await.to_string(),
        Target::Enrolment => {
            let (enrolment, lesson) = app.fresh_enrolment(a, Role::Employee).await;
            c.evidence = lesson.to_string();
            enrolment.to_string()
        }
        Target::Bank => app.fresh_bank(a).await.1.to_string(),
        Target::DeletedBank => app.deleted_bank(a).await.to_string(),
        Target::Question => app.fresh_bank(a).await.2.to_string(),
        Target::DeletedQuestion => app.deleted_question(a).await.to_string(),
        Target::Quiz => {
            let (lesson, bank) = app.fresh_quiz(a).await;
            c.evidence = bank.to_string();
            lesson.to_string()
        }
        Target::OwnQuiz => app.enrolled_quiz(a, mine).await.to_string(),
        Target::Attempt => app.fresh_attempt(a, Role::Employee).await.to_string(),
        Target::Certificate => app.fresh_certificate(a, Role::Employee).await.0.to_string(),
        Target::RevokedCertificate => app.revoked_certificate(a).await.to_string(),
        Target::CertificateCode => app.fresh_certificate(a, Role::Employee).await.1,
        Target::Skill => app.fresh_skill(a).await.to_string(),
        Target::DeletedSkill => app.deleted_skill(a).await.to_string(),
        Target::EmployeeSkill => {
            c.evidence = app.fresh_skill(a).await.to_string();
            app.a.people[&Role::Employee].to_string()
        }
        Target::Delegation => app.fresh_delegation(a, Role::Manager).await.to_string(),
        Target::OwnDelegation => app.fresh_delegation(a, mine).await.to_string(),
        Target::Department => app.a.department.to_string(),
        Target::Delegate => app.other_person(a, mine).to_string(),
        Target::Credentials => {
            c.email = email_of(&app.a.slug, Role::Employee);
            c.password = PASSWORD.into();
            String::new()
        }
        Target::OperatorCredentials => {
            c.email = app.operator_email.clone();
            c.password = PASSWORD.into();
            String::new()
        }
        Target::RefreshToken => app.refresh_token(a).await,
        Target::ResetToken => app.reset_token(a).await,
        Target::VerifyToken => app.verification_token(a).await,
    };
    c.id = id;
    c
}

async fn fresh_tenant(app: &TestApp, operator: &str, suspended: bool) -> String {
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/platform/tenants",
            Some(operator),
            Some(json!({"slug": format!("t-{}", short_unique()), "name": "Target"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    if suspended {
        let (s, body) = app
            .call(
                Method::POST,
                &format!("/api/v1/platform/tenants/{id}/suspend"),
                Some(operator),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    id
}

/// `path` with its parameters filled from `c`.
fn fill(path: &str, c: &Ctx) -> String {
    path.replace("{id}", &c.id)
        .replace("{scope}", &c.id)
        .replace("{evidence_id}", &c.evidence)
        .replace("{required_id}", &c.evidence)
        .replace("{code}", &c.id)
        .replace("{name}", "notification")
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
        let wasm = trainflow_tests::plugin("testing");
        let manifest = trainflow_tests::testing_manifest(&wasm);
        // A refused upload is answered before its body is read, and the connection then
        // closes; a client still sending the body may see the reset instead of the answer.
        // Such a request changed nothing, so it is sent again (as browsers do).
        for _ in 0..4 {
            let form = trainflow_tests::package_form(&manifest, wasm.clone());
            if let Some(answer) = app.try_call_multipart(path, token, form).await {
                return answer;
            }
        }
        panic!("{path}: the connection failed on every attempt");
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
    if (op.path.ends_with("/avatar") || op.path.ends_with("/logo")) && op.method == Method::PUT {
        return app
            .call_raw(
                Method::PUT,
                path,
                token,
                "image/png",
                trainflow_tests::png(16, 16),
            )
            .await;
    }
    if op.path.ends_with("/materials") && op.method == Method::POST {
        let path = format!("{path}?filename=notes.txt");
        return app
            .call_raw(
                Method::POST,
                &path,
                token,
                "text/plain",
                b"Read me.".to_vec(),
            )
            .await;
    }
    if op.path == "/api/v1/courses/registrations" {
        let path = format!("{path}?dry_run=true");
        let template = trainflow_learning::registration::template().expect("the template");
        return app
            .call_raw(
                Method::POST,
                &path,
                token,
                "application/octet-stream",
                template,
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

/// The matrices' server: deletions of a full refresh always wait for confirmation (so a
/// confirmable run is one person away).
async fn spawn() -> Arc<TestApp> {
    let mut opts = Options::default();
    opts.runs.deletion_guard = 0.0;
    TestApp::spawn_with(opts).await
}

/// Calls at once (the server's pool and SQLite's one writer bound the useful number).
const CONCURRENCY: usize = 8;

#[tokio::test]
async fn the_table_covers_every_operation_of_the_openapi_document() {
    let app = TestApp::spawn().await;
    let documented: BTreeSet<(String, String)> = documented(&app).await.into_keys().collect();
    let tabled: BTreeSet<(String, String)> = ops()
        .iter()
        .map(|o| (o.method.to_string(), o.path.to_string()))
        .collect();
    assert_eq!(
        documented, tabled,
        "every operation needs a row in the matrices (and every row an operation)"
    );
    // Rows of one operation may differ by fixture only, never by permission.
    let mut permission: BTreeMap<(String, &str), Option<&str>> = BTreeMap::new();
    for o in ops() {
        let p = o.access.permission().map(Permission::as_str);
        let seen = permission
            .entry((o.method.to_string(), o.path))
            .or_insert(p);
        assert_eq!(
            *seen, p,
            "{} {}: one permission per operation",
            o.method, o.path
        );
    }
}

/// The endpoint table of `docs/api.md` lists every operation once, with the caller and the
/// permission the matrix checks.
#[test]
fn the_endpoint_table_of_the_api_docs_matches_the_matrix() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
    let text = std::fs::read_to_string(path).expect("docs/api.md");
    let mut documented: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let [method, path, caller, permission] = cells[..] else {
            continue;
        };
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
            continue;
        }
        let key = (
            method.to_string(),
            format!("/api/v1{}", path.trim_matches('`')),
        );
        let value = (caller.to_string(), permission.trim_matches('`').to_string());
        assert!(
            documented.insert(key.clone(), value).is_none(),
            "{key:?} is in docs/api.md twice"
        );
    }
    let mut expected = BTreeMap::new();
    for o in ops() {
        let value = match o.access {
            Access::Public { .. } => ("anyone".to_string(), "—".to_string()),
            Access::Platform => ("platform operator".to_string(), "—".to_string()),
            Access::Tenant(p) | Access::Object(p, _) => {
                ("tenant user".to_string(), p.as_str().to_string())
            }
        };
        expected.insert((o.method.to_string(), o.path.to_string()), value);
    }
    let documented: BTreeMap<_, _> = documented
        .into_iter()
        .map(|(k, (caller, p))| {
            // "anyone (credentials in body)" and the like: the first words name the caller.
            let caller = ["anyone", "platform operator", "tenant user"]
                .into_iter()
                .find(|c| caller.starts_with(c))
                .unwrap_or(caller.as_str())
                .to_string();
            (k, (caller, p))
        })
        .collect();
    assert_eq!(
        documented, expected,
        "docs/api.md's endpoint table (method | path | caller | permission) and the matrix differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_each_caller_exactly_as_documented() {
    let app = spawn().await;
    let success = Arc::new(documented(&app).await);
    let operator = app.operator_token().await;
    // The employee's foreman and manager, as the renewal rows expect.
    app.set_reporting_lines(
        Which::A,
        app.a.people[&Role::Employee],
        Some(app.a.people[&Role::Foreman]),
        Some(app.a.people[&Role::Manager]),
    )
    .await;
    for r in Role::ALL {
        app.token(Which::A, r).await;
    }
    let ops = Arc::new(ops());
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut calls = JoinSet::new();
    for i in 0..ops.len() {
        for caller in callers() {
            let (app, ops, gate, operator, success) = (
                app.clone(),
                ops.clone(),
                gate.clone(),
                operator.clone(),
                success.clone(),
            );
            calls.spawn(async move {
                let _permit = gate.acquire().await.expect("gate");
                let op = &ops[i];
                let token = match caller {
                    Caller::Anonymous => None,
                    Caller::Operator => Some(operator.clone()),
                    Caller::Person(r) => Some(app.token(Which::A, r).await),
                };
                let ctx = fixture(&app, op, caller, &operator).await;
                let path = fill(op.path, &ctx);
                let (status, body) = send(&app, op, &path, token.as_deref(), (op.body)(&ctx)).await;
                let documented = success[&(op.method.to_string(), op.path.to_string())];
                let want = expected(op, caller, documented);
                (status.as_u16() != want).then(|| {
                    format!(
                        "{} {} ({:?}) as {caller:?}: got {status}, expected {want} ({body})",
                        op.method, op.path, op.target
                    )
                })
            });
        }
    }
    let mut failures = Vec::new();
    let mut count = 0;
    while let Some(result) = calls.join_next().await {
        count += 1;
        if let Some(f) = result.expect("a matrix call panicked") {
            failures.push(f);
        }
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "authorization matrix, {} of {count} calls wrong:\n{}",
        failures.len(),
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

/// Tenant A's objects of every kind, made once for the isolation matrix (B's calls change
/// nothing, so one of each serves every row), and bodies' secrets forged.
async fn tenant_a_objects(app: &TestApp) -> BTreeMap<Target, Ctx> {
    let a = Which::A;
    let employee = app.a.people[&Role::Employee];
    let base = Ctx {
        tenant: app.a.slug.clone(),
        employee,
        // Tenant A's sign-in without its secrets: an unknown email, a wrong password.
        email: format!("{}@nowhere.test", short_unique()),
        password: "not-the-password".into(),
        ..Ctx::default()
    };
    let forged_token = format!("{}.{}", app.a.id.simple(), "x".repeat(43));
    let (renewal, evidence) = app.fresh_evidence(a).await;
    let course_pair = app.prerequisite(a).await;
    let prerequisite = app.prerequisite(a).await;
    let enrolment = app.fresh_enrolment(a, Role::Employee).await;
    let quiz = app.fresh_quiz(a).await;
    let certificate = app.fresh_certificate(a, Role::Employee).await;
    let mut out = BTreeMap::new();
    let targets: Vec<(Target, String)> = vec![
        (Target::None, String::new()),
        (Target::User, app.fresh_user(a).await.to_string()),
        (Target::DeletedUser, app.deleted_user(a).await.to_string()),
        (Target::Employee, employee.to_string()),
        (Target::Avatar, app.fresh_avatar(a).await.to_string()),
        (Target::Logo, app.with_logo(a).await.to_string()),
        (Target::Tenant, app.a.id.to_string()),
        (Target::SuspendedTenant, app.a.id.to_string()),
        (
            Target::Installation,
            app.fresh_installation(a, "incremental").await.to_string(),
        ),
        (
            Target::InstallationWithFile,
            app.installation_with_file(a).await.to_string(),
        ),
        (Target::Run, app.fresh_run(a).await.to_string()),
        (
            Target::ConfirmableRun,
            app.confirmable_run(a).await.to_string(),
        ),
        (Target::DryRun, app.dry_run(a).await.to_string()),
        (Target::CertType, app.fresh_cert_type(a).await.to_string()),
        (
            Target::Certification,
            app.fresh_certification(a, employee).await.to_string(),
        ),
        (
            Target::OwnCertification,
            app.fresh_certification(a, employee).await.to_string(),
        ),
        (Target::Renewal, renewal.to_string()),
        (Target::RenewalEvidence, renewal.to_string()),
        (
            Target::ReturnedRenewal,
            app.returned_renewal(a, Role::Manager).await.to_string(),
        ),
        (
            Target::Notification,
            app.fresh_notification(a, employee).await.to_string(),
        ),
        (
            Target::OwnNotification,
            app.fresh_notification(a, employee).await.to_string(),
        ),
        (
            Target::PushDevice,
            app.fresh_push_device(a, employee).await.to_string(),
        ),
        (
            Target::OwnPushDevice,
            app.fresh_push_device(a, employee).await.to_string(),
        ),
        (Target::Course, app.fresh_course(a).await.0.to_string()),
        (
            Target::DeletedCourse,
            app.deleted_course(a).await.to_string(),
        ),
        (Target::CoursePair, course_pair.0.to_string()),
        (Target::Prerequisite, prerequisite.0.to_string()),
        (Target::Module, app.fresh_course(a).await.1.to_string()),
        (
            Target::DeletedModule,
            app.deleted_module(a).await.to_string(),
        ),
        (Target::Topic, app.fresh_topic(a).await.to_string()),
        (Target::DeletedTopic, app.deleted_topic(a).await.to_string()),
        (Target::Material, app.fresh_material(a).await.to_string()),
        (
            Target::DeletedMaterial,
            app.deleted_material(a).await.to_string(),
        ),
        (Target::Lesson, app.fresh_course(a).await.2.to_string()),
        (
            Target::DeletedLesson,
            app.deleted_lesson(a).await.to_string(),
        ),
        (Target::Enrolment, enrolment.0.to_string()),
        (Target::Bank, app.fresh_bank(a).await.1.to_string()),
        (Target::DeletedBank, app.deleted_bank(a).await.to_string()),
        (Target::Question, app.fresh_bank(a).await.2.to_string()),
        (
            Target::DeletedQuestion,
            app.deleted_question(a).await.to_string(),
        ),
        (Target::Quiz, quiz.0.to_string()),
        (Target::OwnQuiz, quiz.0.to_string()),
        (
            Target::Attempt,
            app.fresh_attempt(a, Role::Employee).await.to_string(),
        ),
        (Target::Certificate, certificate.0.to_string()),
        (
            Target::RevokedCertificate,
            app.revoked_certificate(a).await.to_string(),
        ),
        // A code is public by design: B's administrator checks a made-up one.
        (Target::CertificateCode, "ZZZZ-ZZZZ-ZZZZ-ZZZZ".to_string()),
        (Target::Skill, app.fresh_skill(a).await.to_string()),
        (Target::DeletedSkill, app.deleted_skill(a).await.to_string()),
        (Target::EmployeeSkill, employee.to_string()),
        (
            Target::Delegation,
            app.fresh_delegation(a, Role::Manager).await.to_string(),
        ),
        (
            Target::OwnDelegation,
            app.fresh_delegation(a, Role::Employee).await.to_string(),
        ),
        (Target::Department, app.a.department.to_string()),
        (Target::Delegate, employee.to_string()),
        (Target::Credentials, String::new()),
        (Target::OperatorCredentials, String::new()),
        (Target::RefreshToken, forged_token.clone()),
        (Target::ResetToken, forged_token.clone()),
        (Target::VerifyToken, forged_token),
    ];
    for (target, id) in targets {
        let mut c = base.clone();
        c.id = id;
        c.evidence = evidence.to_string();
        c.unique = short_unique();
        out.insert(target, c);
    }
    out
}

#[tokio::test]
async fn tenant_b_administrator_cannot_see_or_change_anything_of_tenant_a() {
    let app = spawn().await;
    let success = documented(&app).await;
    let b_admin = app.token(Which::B, Role::Administrator).await;
    app.set_reporting_lines(
        Which::A,
        app.a.people[&Role::Employee],
        Some(app.a.people[&Role::Foreman]),
        Some(app.a.people[&Role::Manager]),
    )
    .await;
    // Give tenant A a little of everything, then fingerprint it.
    let objects = tenant_a_objects(&app).await;
    let mut a_ids: BTreeSet<String> = app.a.people.values().map(Uuid::to_string).collect();
    a_ids.insert(app.a.id.to_string());
    a_ids.insert(app.a.department.to_string());
    for c in objects.values() {
        if c.id.parse::<Uuid>().is_ok() {
            a_ids.insert(c.id.clone());
        }
        a_ids.insert(c.evidence.clone());
    }
    let a_before = app.fingerprint(app.a.id).await;
    for table in [
        "users",
        "renewal_requests",
        "renewal_evidence",
        "notifications",
        "approval_delegations",
        "certification_types",
        "certifications",
        "connector_runs",
        "connector_installations",
        "audit_log",
    ] {
        assert!(
            !a_before.0[table].is_empty(),
            "the fixtures leave tenant A's {table} empty"
        );
    }

    let mut failures = Vec::new();
    for op in ops() {
        let ctx = &objects[&op.target];
        let path = fill(op.path, ctx);
        let (status, body) = send(&app, &op, &path, Some(&b_admin), (op.body)(ctx)).await;
        let text = body.to_string();
        let leaked: Vec<&String> = a_ids
            .iter()
            .filter(|id| text.contains(id.as_str()))
            .collect();
        let want = match op.access {
            Access::Platform => UNAUTHORIZED,
            Access::Public { forged } => forged,
            // B's administrator may do anything in B; A's objects are not there.
            Access::Tenant(_) | Access::Object(..) => {
                if op.target.in_path(op.path) {
                    404
                } else if op.target == Target::None {
                    success[&(op.method.to_string(), op.path.to_string())]
                } else {
                    422
                }
            }
        };
        if status.as_u16() != want || !leaked.is_empty() || text.contains(&app.a.slug) {
            failures.push(format!(
                "{} {} ({:?}): {status}, expected {want}; leaked={leaked:?} {text}",
                op.method, op.path, op.target
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "isolation matrix:\n{}",
        failures.join("\n")
    );
    let a_after = app.fingerprint(app.a.id).await;
    assert!(
        a_after == a_before,
        "tenant A's data changed:\n{}",
        a_before.changes(&a_after)
    );
    // The fingerprint is no formality: it covers the schema's tenant tables (also those the
    // API only writes as a side effect), and it sees the smallest change.
    for table in [
        "approval_chains",
        "email_templates",
        "notification_preferences",
        "outbox",
        "renewal_steps",
        "renewal_events",
        "work_items",
        "sessions",
        "refresh_tokens",
    ] {
        assert!(
            a_after.0.contains_key(table),
            "no {table} in the fingerprint"
        );
    }
    let someone = &objects[&Target::User].id;
    app.ok_as(
        Which::A,
        Role::Administrator,
        Method::PATCH,
        &format!("/api/v1/users/{someone}"),
        Some(json!({"position": "Changed"})),
    )
    .await;
    let changed = app.fingerprint(app.a.id).await;
    assert!(changed != a_after, "a change of one field shows");
    assert!(a_after.changes(&changed).contains("users +"));
    // A's people cannot sign in through B's organisation.
    let (s, _) = app
        .call(Method::POST, "/api/v1/auth/token", None,
              Some(json!({"tenant": app.b.slug, "email": email_of(&app.a.slug, Role::Employee), "password": PASSWORD})))
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
