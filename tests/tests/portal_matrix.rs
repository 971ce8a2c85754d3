//! The portal matrix: every route of the portal's router (the table below is checked against
//! the routes the contexts mount) × signed-out visitors, each role, and another tenant's
//! administrator; and every form without its CSRF token or with a wrong one.
//!
//! * A page answers a signed-out visitor with a redirect to the sign-in page, each role with
//!   the page or `403` (the permission table of `docs/security.md`), and another tenant's
//!   administrator asking for one of tenant A's objects with `404`.
//! * A form refuses a missing or wrong token with `403` before it changes anything (tenant A's
//!   fingerprint, every row of every tenant table, is unchanged); a signed-out visitor is sent
//!   to sign in, and nothing changes either. With the right token, each role gets the form's
//!   success or its refusal, and a refusal changes nothing but the audit log.

use std::{collections::BTreeSet, path::Path, sync::Arc};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;
use trainflow_jobs::queue::{self, NewWork};
use trainflow_kernel::{
    auth::{Permission, Role},
    TenantId,
};
use trainflow_tests::{
    csrf_of, email_of, push_subscription, short_unique, Options, TestApp, Which, PASSWORD,
};
use uuid::Uuid;

/// What a caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The route's success status.
    Success,
    Refused(u16),
}

use Outcome::{Refused, Success};

/// Who may use a route.
#[derive(Clone, Copy)]
enum Who {
    /// Anyone, signed in or not (the stylesheet; the account-link pages, whose link token is
    /// the credential).
    Public,
    /// The sign-in page: for those signed out. Signed in, the page sends them to the portal, and
    /// the form (which needs the page's token) is refused.
    SignedOut,
    /// A signed-in person whose role grants the permission; others get 403.
    Granted(Permission),
    /// A signed-in person; the object decides (the status of each role on the fixture).
    Object(fn(Role) -> Outcome),
}

/// How a form proves it came from the portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Csrf {
    /// A page (GET): no token.
    None,
    /// The session's token in the `csrf` field (`Submitted<F>`).
    Session,
    /// The session's token as the first field of a multipart upload (`SubmittedMultipart`).
    Multipart,
    /// Sign-in: the form's token equal to the pre-sign-in cookie (double submit).
    Login,
    /// An emailed link's form: the link's single-use token is the credential (no session, no
    /// CSRF token: a forged request cannot know the token).
    Link,
}

/// The object a route's `:id` names (made fresh for each call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    None,
    /// A new person of tenant A.
    User,
    /// A new person of tenant A, soft-deleted.
    DeletedUser,
    /// Tenant A's employee (whose foreman is tenant A's foreman).
    Employee,
    /// A new person of tenant A with a picture.
    Avatar,
    /// A certification of the caller (tenant A's employee for another tenant's caller).
    OwnCertification,
    /// A pending renewal request of tenant A's employee (foreman and manager on its reporting
    /// lines; the manager decides its first step).
    Renewal,
    /// A notification of the caller (of tenant A's employee for another tenant's caller).
    OwnNotification,
    /// A push subscription of the caller.
    OwnPushDevice,
    /// A CSV installation of tenant A.
    Installation,
    /// A CSV installation of tenant A with a file to import.
    InstallationWithFile,
    /// A finished run of tenant A.
    Run,
    /// A full-refresh run of tenant A waiting for confirmation.
    ConfirmableRun,
    /// A finished dry run of tenant A, not applied yet.
    DryRun,
    /// A new published course of tenant A (its module and lesson in `Fx::extra`… see `fixture`).
    Course,
    /// A new course of tenant A, with another it may require in `Fx::extra`.
    CoursePair,
    /// A module of a new course of tenant A (the course in `Fx::extra`).
    Module,
    /// A topic of a new course of tenant A.
    Topic,
    /// A new course of tenant A, soft-deleted.
    DeletedCourse,
    /// The lesson of a new published course of tenant A (the course in `Fx::extra`).
    Lesson,
    /// A file of a lesson of a new published course of tenant A.
    Material,
    /// The self-enrolment of tenant A's employee in a new course (its lesson in `Fx::extra`).
    Enrolment,
    /// The calendar feed address of tenant A's employee (`:token`).
    CalendarFeed,
    /// A question bank of a new course of tenant A.
    Bank,
    /// The assessment lesson of a new course of tenant A with a quiz (its bank in `extra`, its
    /// course in `third`).
    Quiz,
    /// The assessment lesson of a quiz in a course the caller is enrolled in.
    OwnQuiz,
    /// An attempt in progress of tenant A's employee.
    Attempt,
    /// An attempt in progress of the caller.
    OwnAttempt,
    /// A certificate of tenant A's employee.
    Certificate,
    /// The verification code of a certificate of tenant A's employee (`:code`).
    CertificateCode,
    /// A skill of tenant A's catalogue (in the form; tenant A's employee is the person).
    EmployeeSkill,
    /// A new course of tenant A, with a skill of the catalogue in `extra`.
    CourseSkill,
    /// A skill of tenant A's catalogue, soft-deleted.
    DeletedSkill,
    /// A queued work item of tenant A.
    QueuedWork,
    /// A failed work item of tenant A.
    FailedWork,
    /// A password-reset link's token (in the form).
    ResetToken,
    /// An email-verification link's token (in the form).
    VerifyToken,
}

struct PortalRoute {
    method: Method,
    /// As mounted (`/portal` + the context's pattern).
    pattern: &'static str,
    who: Who,
    csrf: Csrf,
    target: Target,
    /// The query a GET needs (`?…`).
    query: &'static str,
    /// The fields of a valid form (without the CSRF token).
    form: fn(&Fx) -> Vec<(String, String)>,
    /// The status of a success.
    ok: u16,
    /// The status another tenant's administrator gets for tenant A's object (`:id`).
    foreign: u16,
}

/// What a form draws on.
#[derive(Clone, Debug, Default)]
struct Fx {
    id: String,
    unique: String,
    department: String,
    /// Tenant A's employee.
    employee: String,
    /// A second object the form names (see the target).
    extra: String,
    /// A third (see the target).
    third: String,
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn visible_to_all_but_the_trainer(r: Role) -> Outcome {
    if r == Role::Trainer {
        Refused(404)
    } else {
        Success
    }
}

const CSV_CONFIG: &str = r#"{"entity": "employee", "columns": {"external_id": "Id", "first_name": "First", "last_name": "Last", "email": "Email"}}"#;

fn routes() -> Vec<PortalRoute> {
    use Permission::*;
    use Who::*;
    let page = |pattern: &'static str, who: Who, target: Target, query: &'static str| PortalRoute {
        method: Method::GET,
        pattern,
        who,
        csrf: Csrf::None,
        target,
        query,
        form: |_| Vec::new(),
        ok: 200,
        foreign: 404,
    };
    let form = |pattern: &'static str,
                who: Who,
                csrf: Csrf,
                target: Target,
                form: fn(&Fx) -> Vec<(String, String)>,
                ok: u16| PortalRoute {
        method: Method::POST,
        pattern,
        who,
        csrf,
        target,
        query: "",
        form,
        ok,
        foreign: 404,
    };
    let nothing: fn(&Fx) -> Vec<(String, String)> = |_| Vec::new();
    vec![
        // The shell.
        page("/portal/", Granted(SelfService), Target::None, ""),
        page("/portal/static/app.css", Public, Target::None, ""),
        page("/portal/static/app.js", Public, Target::None, ""),
        page("/portal/static/brand.css", Public, Target::None, ""),
        // Identity.
        page("/portal/login", SignedOut, Target::None, ""),
        form(
            "/portal/login",
            SignedOut,
            Csrf::Login,
            Target::None,
            // The organisation and email are filled per caller (see `login_form`).
            nothing,
            303,
        ),
        form(
            "/portal/logout",
            Granted(SelfService),
            Csrf::Session,
            Target::None,
            nothing,
            303,
        ),
        page(
            "/portal/reset-password",
            Public,
            Target::None,
            "?token=forged",
        ),
        form(
            "/portal/reset-password",
            Public,
            Csrf::Link,
            Target::ResetToken,
            |f| {
                fields(&[
                    ("token", f.id.as_str()),
                    ("new_password", "a long enough new password"),
                ])
            },
            200,
        ),
        page(
            "/portal/verify-email",
            Public,
            Target::None,
            "?token=forged",
        ),
        form(
            "/portal/verify-email",
            Public,
            Csrf::Link,
            Target::VerifyToken,
            |f| fields(&[("token", f.id.as_str())]),
            200,
        ),
        page("/portal/profile", Granted(SelfService), Target::None, ""),
        form(
            "/portal/profile",
            Granted(SelfService),
            Csrf::Session,
            Target::None,
            |_| {
                fields(&[
                    ("first_name", "Same"),
                    ("last_name", "Person"),
                    ("phone", ""),
                    ("address", ""),
                    ("gender", ""),
                ])
            },
            303,
        ),
        page("/portal/users", Granted(UsersRead), Target::None, ""),
        page("/portal/audit", Granted(AuditRead), Target::None, ""),
        form(
            "/portal/users",
            Granted(UsersWrite),
            Csrf::Session,
            Target::None,
            |f| {
                fields(&[
                    ("email", format!("{}@portal.test", f.unique).as_str()),
                    ("first_name", "Portal"),
                    ("last_name", "Person"),
                    ("role", "employee"),
                    ("department_id", f.department.as_str()),
                ])
            },
            303,
        ),
        page("/portal/users/new", Granted(UsersWrite), Target::None, ""),
        page(
            "/portal/users/:id/edit",
            Granted(UsersWrite),
            Target::User,
            "",
        ),
        form(
            "/portal/users/:id",
            Granted(UsersWrite),
            Csrf::Session,
            Target::User,
            |f| {
                fields(&[
                    ("email", format!("{}@portal.test", f.unique).as_str()),
                    ("first_name", "Edited"),
                    ("last_name", "Person"),
                    ("role", "employee"),
                    ("department_id", ""),
                ])
            },
            303,
        ),
        form(
            "/portal/users/:id/delete",
            Granted(UsersWrite),
            Csrf::Session,
            Target::User,
            nothing,
            303,
        ),
        form(
            "/portal/users/:id/restore",
            Granted(UsersWrite),
            Csrf::Session,
            Target::DeletedUser,
            nothing,
            303,
        ),
        page("/portal/team", Granted(UsersRead), Target::None, ""),
        page(
            "/portal/users/:id/avatar",
            Granted(SelfService),
            Target::Avatar,
            "",
        ),
        form(
            "/portal/profile/avatar",
            Granted(SelfService),
            Csrf::Multipart,
            Target::None,
            // A picture (see `multipart`).
            nothing,
            303,
        ),
        form(
            "/portal/profile/avatar/delete",
            Granted(SelfService),
            Csrf::Session,
            Target::None,
            nothing,
            303,
        ),
        form(
            "/portal/users/:id/pin",
            Granted(PinSet),
            Csrf::Session,
            Target::Employee,
            |_| fields(&[("pin", "482915")]),
            303,
        ),
        // Renewals.
        page(
            "/portal/certifications",
            Granted(SelfService),
            Target::None,
            "",
        ),
        PortalRoute {
            // Another tenant's certification is refused as an unknown one: the page again,
            // with the error on the certification (422), as for an id that matches nothing.
            foreign: 422,
            ..form(
                "/portal/certifications/:id/renew",
                Granted(SelfService),
                Csrf::Session,
                Target::OwnCertification,
                |_| fields(&[("comment", "Please renew")]),
                303,
            )
        },
        page(
            "/portal/certification-types",
            Granted(CertificationsManage),
            Target::None,
            "",
        ),
        form(
            "/portal/certification-types",
            Granted(CertificationsManage),
            Csrf::Session,
            Target::None,
            |f| {
                fields(&[
                    ("action", "save"),
                    ("code", f.unique.as_str()),
                    ("name", "Portal type"),
                    ("validity_months", "12"),
                    ("renewal_window_days", "30"),
                    ("start_date", "2027-01-01"),
                ])
            },
            303,
        ),
        page(
            "/portal/renewals/:id",
            Object(visible_to_all_but_the_trainer),
            Target::Renewal,
            "",
        ),
        form(
            "/portal/renewals/:id/decision",
            // Only the approver of the pending step decides; others who see it are refused,
            // the trainer does not see it.
            Object(|r| match r {
                Role::Manager => Success,
                Role::Trainer => Refused(404),
                _ => Refused(403),
            }),
            Csrf::Session,
            Target::Renewal,
            |_| fields(&[("decision", "approve"), ("comment", "")]),
            303,
        ),
        page("/portal/approvals", Granted(SelfService), Target::None, ""),
        page(
            "/portal/compliance",
            Granted(ComplianceRead),
            Target::None,
            "",
        ),
        // Learning.
        page("/portal/courses", Granted(SelfService), Target::None, ""),
        form(
            "/portal/courses",
            Granted(CoursesManage),
            Csrf::Session,
            Target::None,
            |f| {
                fields(&[
                    ("code", f.unique.as_str()),
                    ("title", "Portal course"),
                    ("difficulty", "beginner"),
                ])
            },
            303,
        ),
        page(
            "/portal/courses/:id",
            Granted(SelfService),
            Target::Course,
            "",
        ),
        form(
            "/portal/courses/:id/enrol",
            Granted(SelfService),
            Csrf::Session,
            Target::Course,
            nothing,
            303,
        ),
        form(
            "/portal/courses/:id/status",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Course,
            |_| fields(&[("status", "archived")]),
            303,
        ),
        form(
            "/portal/courses/:id/modules",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Course,
            |_| fields(&[("title", "Portal module"), ("duration_hours", "")]),
            303,
        ),
        page(
            "/portal/courses/registration-template",
            Granted(CoursesManage),
            Target::None,
            "",
        ),
        form(
            "/portal/courses/registrations",
            Granted(CoursesManage),
            Csrf::Multipart,
            Target::None,
            // The template, checked only (see `multipart`).
            |_| fields(&[("dry_run", "on")]),
            200,
        ),
        form(
            "/portal/lessons/:id/materials",
            Granted(CoursesManage),
            Csrf::Multipart,
            Target::Lesson,
            // A text file after the course (see `multipart`).
            |f| fields(&[("course_id", f.extra.as_str())]),
            303,
        ),
        page(
            "/portal/materials/:id",
            Granted(SelfService),
            Target::Material,
            "",
        ),
        form(
            "/portal/materials/:id/delete",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Material,
            nothing,
            303,
        ),
        form(
            "/portal/courses/:id/edit",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Course,
            |f| {
                fields(&[
                    ("code", f.unique.as_str()),
                    ("title", "Edited in the portal"),
                    ("category", "Safety"),
                    ("difficulty", "advanced"),
                    ("duration_hours", ""),
                    ("description", ""),
                    ("self_enrol", "on"),
                    ("certificate_months", "12"),
                ])
            },
            303,
        ),
        form(
            "/portal/courses/:id/delete",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Course,
            nothing,
            303,
        ),
        form(
            "/portal/courses/:id/restore",
            Granted(CoursesManage),
            Csrf::Session,
            Target::DeletedCourse,
            nothing,
            303,
        ),
        form(
            "/portal/modules/:id",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Module,
            |f| {
                fields(&[
                    ("course_id", f.extra.as_str()),
                    ("title", "Edited module"),
                    ("duration_hours", "1"),
                ])
            },
            303,
        ),
        form(
            "/portal/modules/:id/delete",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Module,
            |f| fields(&[("course_id", f.extra.as_str())]),
            303,
        ),
        form(
            "/portal/lessons/:id/edit",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Lesson,
            |f| {
                fields(&[
                    ("course_id", f.extra.as_str()),
                    ("title", "Edited lesson"),
                    ("kind", "text"),
                    ("body", "Read this again."),
                    ("url", ""),
                    ("duration_minutes", "5"),
                    ("required", "on"),
                ])
            },
            303,
        ),
        form(
            "/portal/lessons/:id/delete",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Lesson,
            |f| fields(&[("course_id", f.extra.as_str())]),
            303,
        ),
        form(
            "/portal/courses/:id/topics",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Course,
            |_| {
                fields(&[
                    ("title", "Portal topic"),
                    ("duration_hours", "1"),
                    ("parent_id", ""),
                ])
            },
            303,
        ),
        form(
            "/portal/topics/:id/delete",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Topic,
            |_| fields(&[]),
            303,
        ),
        form(
            "/portal/courses/:id/prerequisites",
            Granted(CoursesManage),
            Csrf::Session,
            Target::CoursePair,
            |f| fields(&[("required_course_id", f.extra.as_str())]),
            303,
        ),
        form(
            "/portal/courses/:id/assign",
            Granted(EnrolmentsAssign),
            Csrf::Session,
            Target::Course,
            |f| {
                fields(&[
                    ("to", "people"),
                    ("user_ids", f.employee.as_str()),
                    ("due_on", ""),
                ])
            },
            303,
        ),
        form(
            "/portal/modules/:id/lessons",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Module,
            |f| {
                fields(&[
                    ("course_id", f.extra.as_str()),
                    ("title", "Portal lesson"),
                    ("kind", "text"),
                    ("body", "Read this."),
                    ("url", ""),
                    ("duration_minutes", "5"),
                ])
            },
            303,
        ),
        form(
            "/portal/courses/:id/question-banks",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Course,
            |f| fields(&[("name", f.unique.as_str())]),
            303,
        ),
        page(
            "/portal/question-banks/:id",
            Granted(CoursesManage),
            Target::Bank,
            "",
        ),
        form(
            "/portal/question-banks/:id/questions",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Bank,
            |_| {
                fields(&[
                    ("kind", "single_choice"),
                    ("prompt", "Portal question?"),
                    ("options", "Yes\nNo"),
                    ("correct", "1"),
                    ("accepted", ""),
                    ("points", "1"),
                ])
            },
            303,
        ),
        page(
            "/portal/lessons/:id/quiz",
            Granted(SelfService),
            Target::Quiz,
            "",
        ),
        form(
            "/portal/lessons/:id/quiz",
            Granted(CoursesManage),
            Csrf::Session,
            Target::Quiz,
            |f| {
                fields(&[
                    ("course_id", f.third.as_str()),
                    ("bank_id", f.extra.as_str()),
                    ("selection", "fixed"),
                    ("question_count", ""),
                    ("pass_percent", "60"),
                    ("time_limit_minutes", ""),
                    ("max_attempts", "3"),
                ])
            },
            303,
        ),
        form(
            "/portal/lessons/:id/attempts",
            Granted(SelfService),
            Csrf::Session,
            Target::OwnQuiz,
            nothing,
            303,
        ),
        page(
            "/portal/quiz-attempts/:id",
            Object(visible_to_all_but_the_trainer),
            Target::Attempt,
            "",
        ),
        form(
            "/portal/quiz-attempts/:id/submit",
            Granted(SelfService),
            Csrf::Session,
            Target::OwnAttempt,
            nothing,
            303,
        ),
        page(
            "/portal/certificates",
            Granted(SelfService),
            Target::None,
            "",
        ),
        page(
            "/portal/certificates/:id/pdf",
            Object(visible_to_all_but_the_trainer),
            Target::Certificate,
            "",
        ),
        page("/portal/skills", Granted(SelfService), Target::None, ""),
        form(
            "/portal/skills",
            Granted(CoursesManage),
            Csrf::Session,
            Target::None,
            |f| {
                fields(&[
                    ("name", f.unique.as_str()),
                    ("category", ""),
                    ("description", ""),
                    ("levels", "Knows\nDoes"),
                ])
            },
            303,
        ),
        page(
            "/portal/skills/:id",
            Granted(SelfService),
            Target::EmployeeSkill,
            "",
        ),
        form(
            "/portal/skills/:id",
            Granted(CoursesManage),
            Csrf::Session,
            Target::EmployeeSkill,
            |f| {
                fields(&[
                    ("name", f.unique.as_str()),
                    ("category", "Renamed"),
                    ("description", ""),
                    ("levels", "Knows\nDoes\nTeaches"),
                ])
            },
            303,
        ),
        form(
            "/portal/skills/:id/delete",
            Granted(CoursesManage),
            Csrf::Session,
            Target::EmployeeSkill,
            nothing,
            303,
        ),
        form(
            "/portal/skills/:id/restore",
            Granted(CoursesManage),
            Csrf::Session,
            Target::DeletedSkill,
            nothing,
            303,
        ),
        page(
            "/portal/skills/team",
            Granted(SelfService),
            Target::None,
            "",
        ),
        form(
            "/portal/skills/assess",
            Granted(EnrolmentsAssign),
            Csrf::Session,
            Target::EmployeeSkill,
            |f| {
                fields(&[
                    ("user_id", f.employee.as_str()),
                    ("skill_id", f.id.as_str()),
                    ("level", "2"),
                    ("note", ""),
                ])
            },
            303,
        ),
        form(
            "/portal/courses/:id/skills",
            Granted(CoursesManage),
            Csrf::Session,
            Target::CourseSkill,
            |f| {
                fields(&[
                    ("skill_id", f.extra.as_str()),
                    ("kind", "teaches"),
                    ("level", "1"),
                ])
            },
            303,
        ),
        // Anyone checks a certificate: its code is what they know.
        page("/portal/verify", Public, Target::None, ""),
        page("/portal/verify/:code", Public, Target::CertificateCode, ""),
        page(
            "/portal/enrolments/:id/lessons/:lesson",
            Object(visible_to_all_but_the_trainer),
            Target::Enrolment,
            "",
        ),
        page("/portal/learning", Granted(SelfService), Target::None, ""),
        page(
            "/portal/learning/live",
            Granted(SelfService),
            Target::None,
            "",
        ),
        page("/portal/learning/live.js", Public, Target::None, ""),
        page("/portal/calendar", Granted(SelfService), Target::None, ""),
        form(
            "/portal/calendar/feed",
            Granted(SelfService),
            Csrf::Session,
            Target::None,
            nothing,
            200,
        ),
        form(
            "/portal/calendar/feed/delete",
            Granted(SelfService),
            Csrf::Session,
            Target::None,
            nothing,
            200,
        ),
        // A calendar application opens the feed without a session: its address is the
        // credential.
        page(
            "/portal/calendar/feed/:token",
            Public,
            Target::CalendarFeed,
            "",
        ),
        page(
            "/portal/enrolments/:id",
            Object(visible_to_all_but_the_trainer),
            Target::Enrolment,
            "",
        ),
        form(
            "/portal/enrolments/:id/progress",
            Object(|r| match r {
                Role::Trainer => Refused(404),
                Role::Foreman | Role::Manager => Refused(403),
                _ => Success,
            }),
            Csrf::Session,
            Target::Enrolment,
            |f| fields(&[("lesson_id", f.extra.as_str()), ("minutes", "3")]),
            303,
        ),
        form(
            "/portal/enrolments/:id/cancel",
            Object(|r| match r {
                Role::Trainer => Refused(404),
                Role::Foreman => Refused(403),
                _ => Success,
            }),
            Csrf::Session,
            Target::Enrolment,
            |_| fields(&[("reason", "")]),
            303,
        ),
        // Notifications.
        page(
            "/portal/notifications",
            Granted(SelfService),
            Target::None,
            "",
        ),
        form(
            "/portal/notifications/preferences",
            Granted(SelfService),
            Csrf::Session,
            Target::None,
            |_| fields(&[("renewal.email", "on")]),
            303,
        ),
        form(
            "/portal/notifications/push",
            Granted(SelfService),
            Csrf::Session,
            Target::None,
            |_| {
                let b = push_subscription();
                fields(&[
                    ("endpoint", b["endpoint"].as_str().unwrap()),
                    ("p256dh", b["keys"]["p256dh"].as_str().unwrap()),
                    ("auth", b["keys"]["auth"].as_str().unwrap()),
                    ("user_agent", "Matrix browser"),
                ])
            },
            303,
        ),
        form(
            "/portal/notifications/push/:id/delete",
            Granted(SelfService),
            Csrf::Session,
            Target::OwnPushDevice,
            nothing,
            303,
        ),
        page("/portal/sw.js", Public, Target::None, ""),
        page(
            "/portal/email-templates",
            Granted(TenantSettings),
            Target::None,
            "",
        ),
        page(
            "/portal/email-templates/:name",
            Granted(TenantSettings),
            Target::None,
            "",
        ),
        form(
            "/portal/email-templates/:name",
            Granted(TenantSettings),
            Csrf::Session,
            Target::None,
            |_| {
                fields(&[
                    ("subject", "{{title}}"),
                    ("text_body", "{{body}}"),
                    ("html_body", "<p>{{body}}</p>"),
                    ("action", "save"),
                ])
            },
            303,
        ),
        form(
            "/portal/email-templates/:name/reset",
            Granted(TenantSettings),
            Csrf::Session,
            Target::None,
            nothing,
            303,
        ),
        form(
            "/portal/notifications/:id/:action",
            Granted(SelfService),
            Csrf::Session,
            Target::OwnNotification,
            nothing,
            303,
        ),
        // Integrations.
        page(
            "/portal/integrations",
            Granted(Integrations),
            Target::None,
            "",
        ),
        form(
            "/portal/integrations/packages",
            Granted(Integrations),
            Csrf::Multipart,
            Target::None,
            // The test component's package (see `multipart`).
            nothing,
            303,
        ),
        page(
            "/portal/integrations/install",
            Granted(Integrations),
            Target::None,
            "?connector=com.trainflow.csv",
        ),
        form(
            "/portal/integrations/install",
            Granted(Integrations),
            Csrf::Session,
            Target::None,
            |f| {
                fields(&[
                    ("connector_id", "com.trainflow.csv"),
                    ("package_id", ""),
                    ("name", format!("Portal {}", f.unique).as_str()),
                    ("config", CSV_CONFIG),
                    ("schedule", ""),
                    ("sync_mode", "incremental"),
                ])
            },
            303,
        ),
        page(
            "/portal/integrations/installations/:id",
            Granted(Integrations),
            Target::Installation,
            "",
        ),
        form(
            "/portal/integrations/installations/:id/files",
            Granted(Integrations),
            Csrf::Multipart,
            Target::Installation,
            // A CSV file (see `multipart`).
            nothing,
            303,
        ),
        form(
            "/portal/integrations/installations/:id/runs",
            Granted(Integrations),
            Csrf::Session,
            Target::InstallationWithFile,
            nothing,
            303,
        ),
        page(
            "/portal/integrations/runs/:id",
            Granted(Integrations),
            Target::Run,
            "",
        ),
        form(
            "/portal/integrations/runs/:id/confirm",
            Granted(Integrations),
            Csrf::Session,
            Target::ConfirmableRun,
            nothing,
            303,
        ),
        form(
            "/portal/integrations/runs/:id/apply",
            Granted(Integrations),
            Csrf::Session,
            Target::DryRun,
            nothing,
            303,
        ),
        form(
            "/portal/integrations/runs/:id/abandon",
            Granted(Integrations),
            Csrf::Session,
            Target::ConfirmableRun,
            nothing,
            303,
        ),
        // Jobs.
        page("/portal/jobs", Granted(TenantSettings), Target::None, ""),
        page(
            "/portal/settings",
            Granted(TenantSettings),
            Target::None,
            "",
        ),
        form(
            "/portal/settings",
            Granted(TenantSettings),
            Csrf::Session,
            Target::None,
            |_| {
                fields(&[
                    ("name", "Same name"),
                    ("time_zone", "Europe/London"),
                    ("locale", "en-GB"),
                    ("primary_colour", "#1f4e79"),
                    ("email", "on"),
                ])
            },
            303,
        ),
        form(
            "/portal/settings/logo",
            Granted(TenantSettings),
            Csrf::Multipart,
            Target::None,
            // A picture (see `multipart`).
            nothing,
            303,
        ),
        form(
            "/portal/settings/logo/delete",
            Granted(TenantSettings),
            Csrf::Session,
            Target::None,
            nothing,
            303,
        ),
        form(
            "/portal/jobs/work/:id/cancel",
            Granted(TenantSettings),
            Csrf::Session,
            Target::QueuedWork,
            nothing,
            303,
        ),
        form(
            "/portal/jobs/work/:id/retry",
            Granted(TenantSettings),
            Csrf::Session,
            Target::FailedWork,
            nothing,
            303,
        ),
    ]
}

/// Who holds each permission — written out independently of the code's table.
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

/// The status a signed-in `role` of tenant A gets from `route` (with a valid form).
fn for_role(route: &PortalRoute, role: Role) -> u16 {
    let outcome = match route.who {
        Who::Public => Success,
        // Signed in, the sign-in page redirects to the portal (and sets no form token, so the
        // form is refused).
        Who::SignedOut => Refused(if route.method == Method::GET {
            303
        } else {
            403
        }),
        Who::Granted(p) => {
            if allowed_roles(p).contains(&role) {
                Success
            } else {
                Refused(403)
            }
        }
        Who::Object(outcome) => outcome(role),
    };
    match outcome {
        Success => route.ok,
        Refused(s) => s,
    }
}

/// The status a signed-out visitor gets from `route` (with a valid form for public ones).
fn for_anonymous(route: &PortalRoute) -> u16 {
    match route.who {
        Who::Public | Who::SignedOut => route.ok,
        Who::Granted(_) | Who::Object(_) => 303,
    }
}

/// Whether `:id` names one of tenant A's objects (so another tenant gets 404).
fn names_an_object(route: &PortalRoute) -> bool {
    route.pattern.contains(":id")
}

/// `pattern` filled with the fixture (`:action` is `read`).
fn fill(route: &PortalRoute, fx: &Fx) -> String {
    let id = fx.id.as_str();
    let path = route
        .pattern
        .replace(":id", id)
        .replace(":token", id)
        .replace(":code", id)
        .replace(":lesson", &fx.extra)
        .replace(":action", "read")
        .replace(":name", "notification");
    let path = if path == "/portal/" {
        "/portal".to_string()
    } else {
        path
    };
    format!("{path}{}", route.query)
}

/// A fixture for `route` as seen by `role` (the caller's own objects are `role`'s).
async fn fixture(app: &TestApp, route: &PortalRoute, role: Role) -> Fx {
    let a = Which::A;
    let person = app.a.people[&role];
    let mut extra = String::new();
    let mut third = String::new();
    let id = match route.target {
        Target::None => String::new(),
        Target::User => app.fresh_user(a).await.to_string(),
        Target::DeletedUser => app.deleted_user(a).await.to_string(),
        Target::Employee => app.a.people[&Role::Employee].to_string(),
        Target::Avatar => app.fresh_avatar(a).await.to_string(),
        Target::OwnCertification => app.fresh_certification(a, person).await.to_string(),
        Target::Renewal => app.fresh_renewal(a).await.to_string(),
        Target::OwnNotification => app.fresh_notification(a, person).await.to_string(),
        Target::OwnPushDevice => app.fresh_push_device(a, person).await.to_string(),
        Target::Installation => app.fresh_installation(a, "incremental").await.to_string(),
        Target::InstallationWithFile => app.installation_with_file(a).await.to_string(),
        Target::Run => app.fresh_run(a).await.to_string(),
        Target::ConfirmableRun => app.confirmable_run(a).await.to_string(),
        Target::DryRun => app.dry_run(a).await.to_string(),
        Target::Course => app.fresh_course(a).await.0.to_string(),
        Target::DeletedCourse => app.deleted_course(a).await.to_string(),
        Target::CoursePair => {
            extra = app.fresh_course(a).await.0.to_string();
            app.fresh_course(a).await.0.to_string()
        }
        Target::Topic => app.fresh_topic(a).await.to_string(),
        Target::Lesson => {
            let (course, _, lesson) = app.fresh_course(a).await;
            extra = course.to_string();
            lesson.to_string()
        }
        Target::Material => app.fresh_material(a).await.to_string(),
        Target::Module => {
            let (course, module, _) = app.fresh_course(a).await;
            extra = course.to_string();
            module.to_string()
        }
        Target::Enrolment => {
            let (enrolment, lesson) = app.fresh_enrolment(a, Role::Employee).await;
            extra = lesson.to_string();
            enrolment.to_string()
        }
        Target::CalendarFeed => calendar_token(app).await,
        Target::Bank => app.fresh_bank(a).await.1.to_string(),
        Target::Quiz => {
            let (course, lesson, bank) = app.quiz_fixture(a).await;
            extra = bank.to_string();
            third = course.to_string();
            lesson.to_string()
        }
        Target::OwnQuiz => app.enrolled_quiz(a, role).await.to_string(),
        Target::Attempt => app.fresh_attempt(a, Role::Employee).await.to_string(),
        Target::OwnAttempt => app.fresh_attempt(a, role).await.to_string(),
        Target::Certificate => app.fresh_certificate(a, Role::Employee).await.0.to_string(),
        Target::CertificateCode => app.fresh_certificate(a, Role::Employee).await.1,
        Target::EmployeeSkill => app.fresh_skill(a).await.to_string(),
        Target::DeletedSkill => app.deleted_skill(a).await.to_string(),
        Target::CourseSkill => {
            extra = app.fresh_skill(a).await.to_string();
            app.fresh_course(a).await.0.to_string()
        }
        Target::QueuedWork => queued_work(app).await.to_string(),
        Target::FailedWork => failed_work(app).await.to_string(),
        Target::ResetToken => app.reset_token(a).await,
        Target::VerifyToken => app.verification_token(a).await,
    };
    Fx {
        id,
        unique: short_unique(),
        department: app.a.department.to_string(),
        employee: app.a.people[&Role::Employee].to_string(),
        extra,
        third,
    }
}

/// The token of the calendar feed address of tenant A's employee, issued once per server (a
/// new one would revoke the address other calls are opening at the same time).
async fn calendar_token(app: &TestApp) -> String {
    static FEEDS: std::sync::LazyLock<
        tokio::sync::Mutex<std::collections::HashMap<String, String>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut feeds = FEEDS.lock().await;
    if let Some(token) = feeds.get(&app.base) {
        return token.clone();
    }
    let d = app
        .ok_as(
            Which::A,
            Role::Employee,
            Method::PUT,
            "/api/v1/calendar/feed",
            None,
        )
        .await;
    let url = d["url"].as_str().expect("a feed address").to_string();
    let token = url.rsplit('/').next().expect("a token").to_string();
    feeds.insert(app.base.clone(), token.clone());
    token
}

/// A queued work item of tenant A, of a kind no worker handles (so it stays queued).
async fn queued_work(app: &TestApp) -> Uuid {
    let kind = format!("test.portal.{}", short_unique());
    queue::enqueue(
        &app.db,
        NewWork::new(&kind, json!({})).tenant(TenantId(app.a.id)),
        trainflow_kernel::now(),
    )
    .await
    .expect("enqueue")
    .id()
}

/// A failed work item of tenant A: claimed once and failed for good.
async fn failed_work(app: &TestApp) -> Uuid {
    let kind = format!("test.portal.{}", short_unique());
    let now = trainflow_kernel::now();
    let id = queue::enqueue(
        &app.db,
        NewWork::new(&kind, json!({}))
            .tenant(TenantId(app.a.id))
            .max_attempts(1),
        now,
    )
    .await
    .expect("enqueue")
    .id();
    let claimed = queue::claim(
        &app.db,
        "portal-matrix",
        &[kind],
        std::time::Duration::from_secs(60),
        now,
    )
    .await
    .expect("claim")
    .expect("the item");
    assert_eq!(claimed.id, id);
    queue::fail_permanently(&app.db, &claimed.lease, "fixture", now)
        .await
        .expect("fail");
    id
}

/// The portal matrices' server: a full refresh's deletions always wait for confirmation.
async fn spawn() -> Arc<TestApp> {
    let mut opts = Options::default();
    opts.runs.deletion_guard = 0.0;
    TestApp::spawn_with(opts).await
}

fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A signed-in client and the token its forms carry.
async fn signed_in(app: &TestApp, which: Which, role: Role) -> (reqwest::Client, String) {
    let client = app.portal_client(which, role).await;
    let (s, page) = app.portal_get(&client, "/portal/profile").await;
    assert_eq!(s, StatusCode::OK);
    (client, csrf_of(&page))
}

/// A request's answer: status and `Location` (or the start of the page).
struct Answer {
    status: StatusCode,
    text: String,
}

/// How to present a form's CSRF token.
#[derive(Clone, Debug)]
enum Token {
    /// Left out.
    Missing,
    /// This value.
    Value(String),
}

/// Submits `route`'s form (`fields` and the token as `token` says) with `client`; `accepted`:
/// whether it is expected to go through (see [`multipart`]).
async fn submit(
    app: &TestApp,
    client: &reqwest::Client,
    route: &PortalRoute,
    path: &str,
    fields: &[(String, String)],
    token: &Token,
    accepted: bool,
) -> Answer {
    let url = format!("{}{path}", app.base);
    let req = if route.csrf == Csrf::Multipart {
        client
            .post(url)
            .multipart(multipart(route, fields, token, accepted))
    } else {
        let mut form: Vec<(String, String)> = Vec::new();
        if let Token::Value(t) = token {
            form.push(("csrf".into(), t.clone()));
        }
        form.extend(fields.iter().cloned());
        client.post(url).form(&form)
    };
    answer(req.send().await.expect("request")).await
}

/// The multipart body of an upload route: the token first, as the portal's forms send it. A
/// refused upload is answered before its body is read, so only one expected to go through
/// carries the real component (a large body the server stops reading would end in a broken
/// pipe on the client's side before the answer is read).
fn multipart(
    route: &PortalRoute,
    fields: &[(String, String)],
    token: &Token,
    accepted: bool,
) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    if let Token::Value(t) = token {
        form = form.text("csrf", t.clone());
    }
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    if route.pattern.ends_with("/materials") {
        form.part(
            "file",
            reqwest::multipart::Part::bytes(b"Read me.".to_vec()).file_name("notes.txt"),
        )
    } else if route.pattern.ends_with("/registrations") {
        let template = trainflow_learning::registration::template().expect("the template");
        form.part(
            "file",
            reqwest::multipart::Part::bytes(template).file_name("courses.xlsx"),
        )
    } else if route.pattern.ends_with("/packages") {
        let wasm = if accepted {
            trainflow_tests::plugin("testing")
        } else {
            b"\0asm\x01\0\0\0".to_vec()
        };
        let manifest = trainflow_tests::testing_manifest(&wasm);
        form.part(
            "manifest",
            reqwest::multipart::Part::bytes(manifest.to_string().into_bytes())
                .file_name("manifest.json"),
        )
        .part(
            "component",
            reqwest::multipart::Part::bytes(wasm).file_name("connector.wasm"),
        )
    } else if route.pattern.ends_with("/avatar") || route.pattern.ends_with("/logo") {
        form.part(
            "file",
            reqwest::multipart::Part::bytes(trainflow_tests::png(20, 20)).file_name("me.png"),
        )
    } else {
        let csv = format!(
            "Id,First,Last,Email\nP{u},Pat,Lee,pat.{u}@example.com\n",
            u = short_unique()
        );
        form.part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("people.csv"),
        )
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let stream = resp
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
    let text = match resp.headers().get("location") {
        Some(l) => format!("-> {}", l.to_str().expect("location")),
        // An event stream stays open: its headers are the answer.
        None if stream => "(an event stream)".to_string(),
        None => resp.text().await.expect("body").chars().take(300).collect(),
    };
    Answer { status, text }
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> Answer {
    answer(
        client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("request"),
    )
    .await
}

/// The valid sign-in form of `role` of tenant A, with a fresh client holding its cookie.
async fn login_form(app: &TestApp, role: Role) -> (reqwest::Client, Vec<(String, String)>) {
    let client = anonymous();
    let (_, page) = app.portal_get(&client, "/portal/login").await;
    let token = csrf_of(&page);
    let form = fields(&[
        ("csrf", token.as_str()),
        ("organisation", app.a.slug.as_str()),
        ("email", email_of(&app.a.slug, role).as_str()),
        ("password", PASSWORD),
    ]);
    (client, form)
}

// ---------------------------------------------------------------------------------------------
// The route table is the router's.

/// The text of the block that opens after `signature` in `source`.
fn block_after<'a>(source: &'a str, signature: &str) -> &'a str {
    let start = source
        .find(signature)
        .unwrap_or_else(|| panic!("no `{signature}`"));
    let open = start + source[start..].find('{').expect("a body");
    let mut depth = 0;
    for (i, ch) in source[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &source[open..open + i + 1];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced `{signature}`")
}

/// The arguments of the call whose `(` is at `open` (string literals skipped).
fn arguments(text: &str, open: usize) -> &str {
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    for (i, ch) in text[open..].char_indices() {
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced call")
}

/// (METHOD, pattern) of every `.at("…", …)` in `body`, under `/portal`: the methods named by
/// `get(…)` / `post(…)`, or GET for a plain endpoint.
fn mounted(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, _) in body.match_indices(".at(") {
        let args = arguments(body, at + ".at".len());
        let path = args
            .trim_start()
            .strip_prefix('"')
            .and_then(|rest| rest.split('"').next())
            .expect("a literal route pattern");
        let mut methods: Vec<&str> = Vec::new();
        for (method, token) in [("GET", "get("), ("POST", "post(")] {
            let named = args.match_indices(token).any(|(i, _)| {
                args[..i]
                    .chars()
                    .last()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            });
            if named {
                methods.push(method);
            }
        }
        if methods.is_empty() {
            methods.push("GET");
        }
        for m in methods {
            out.push((m.to_string(), format!("/portal{path}")));
        }
    }
    out
}

/// The portal's routes as the server mounts them: the contexts' `web::mount` functions named
/// in the server's `portal()`, and the shell's own routes.
fn router_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let app = read(&root.join("platform/server/src/app.rs"));
    let portal = block_after(&app, "fn portal(");
    let mut routes = BTreeSet::new();
    let mut contexts = 0;
    for (i, _) in portal.match_indices("::web::mount(") {
        let name: String = portal[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let krate = name.strip_prefix("trainflow_").expect("a trainflow crate");
        let dir = root.join("platform").join(krate).join("src");
        let file = [dir.join("web/mod.rs"), dir.join("web.rs")]
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no web module in {}", dir.display()));
        routes.extend(mounted(block_after(&read(&file), "pub fn mount(")));
        contexts += 1;
    }
    assert!(
        contexts >= 5,
        "the server mounts {contexts} contexts' pages"
    );
    assert!(portal.contains("trainflow_web::portal("));
    let shell = read(&root.join("platform/web/src/lib.rs"));
    routes.extend(mounted(block_after(&shell, "pub fn portal(")));
    routes
}

#[test]
fn the_route_table_lists_every_route_of_the_portal_router() {
    let tabled: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_string(), r.pattern.to_string()))
        .collect();
    assert_eq!(
        tabled.len(),
        routes().len(),
        "a route is in the table twice"
    );
    assert_eq!(
        router_routes(),
        tabled,
        "every route the portal mounts needs a row in the portal matrix (and every row a route)"
    );
}

// ---------------------------------------------------------------------------------------------
// Pages.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_answers_signed_out_visitors_each_role_and_another_tenant_as_documented() {
    let app = spawn().await;
    app.set_reporting_lines(
        Which::A,
        app.a.people[&Role::Employee],
        Some(app.a.people[&Role::Foreman]),
        Some(app.a.people[&Role::Manager]),
    )
    .await;
    let mut clients = Vec::new();
    for role in Role::ALL {
        clients.push((role, signed_in(&app, Which::A, role).await.0));
    }
    let b_admin = signed_in(&app, Which::B, Role::Administrator).await.0;
    let pages: Vec<PortalRoute> = routes()
        .into_iter()
        .filter(|r| r.method == Method::GET)
        .collect();
    let pages = Arc::new(pages);
    let mut calls = JoinSet::new();
    for (i, page) in pages.iter().enumerate() {
        // (who, client, expected status, whose objects)
        let mut who: Vec<(String, reqwest::Client, u16, Role)> = vec![(
            "signed out".into(),
            anonymous(),
            for_anonymous(page),
            Role::Employee,
        )];
        for (role, client) in &clients {
            who.push((
                format!("{role:?}"),
                client.clone(),
                for_role(page, *role),
                *role,
            ));
        }
        if names_an_object(page) {
            who.push((
                "tenant B's administrator".into(),
                b_admin.clone(),
                404,
                Role::Administrator,
            ));
        }
        for (name, client, want, role) in who {
            let (app, pages) = (app.clone(), pages.clone());
            calls.spawn(async move {
                let page = &pages[i];
                let fx = fixture(&app, page, role).await;
                let path = fill(page, &fx);
                let got = get(&app, &client, &path).await;
                let redirect_ok = want != 303
                    || got.text.starts_with(if name == "signed out" {
                        "-> /portal/login"
                    } else {
                        "-> /portal"
                    });
                (got.status.as_u16() != want || !redirect_ok).then(|| {
                    format!(
                        "GET {} as {name}: {} {}, expected {want}",
                        page.pattern, got.status, got.text
                    )
                })
            });
        }
    }
    let (mut failures, mut count) = (Vec::new(), 0);
    while let Some(r) = calls.join_next().await {
        count += 1;
        failures.extend(r.expect("a page call panicked"));
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "portal pages, {} of {count} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Forms.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_refuses_a_missing_or_wrong_token_and_signed_out_visitors_and_changes_nothing() {
    let app = spawn().await;
    let (admin, csrf) = signed_in(&app, Which::A, Role::Administrator).await;
    // Another live session's token is as wrong as a made-up one.
    let (_, other_csrf) = signed_in(&app, Which::A, Role::Administrator).await;
    assert_ne!(csrf, other_csrf);
    let forms: Vec<PortalRoute> = routes()
        .into_iter()
        .filter(|r| r.method == Method::POST)
        .collect();
    let mut fixtures = Vec::new();
    for route in &forms {
        fixtures.push(fixture(&app, route, Role::Administrator).await);
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (route, fx) in forms.iter().zip(&fixtures) {
        let path = fill(route, fx);
        let valid = (route.form)(fx);
        let mut cases: Vec<Case> = Vec::new();
        match route.csrf {
            Csrf::Session | Csrf::Multipart => {
                for (what, token) in [
                    ("without a token", Token::Missing),
                    ("with an empty token", Token::Value(String::new())),
                    ("with a made-up token", Token::Value("forged".into())),
                    (
                        "with another session's token",
                        Token::Value(other_csrf.clone()),
                    ),
                    ("with its token and more", Token::Value(format!("{csrf}x"))),
                ] {
                    cases.push((what.into(), admin.clone(), valid.clone(), token, 403));
                }
                cases.push((
                    "signed out, with the token".into(),
                    anonymous(),
                    valid.clone(),
                    Token::Value(csrf.clone()),
                    303,
                ));
            }
            Csrf::Login => {
                let (client, form) = login_form(&app, Role::Employee).await;
                let without: Vec<(String, String)> =
                    form.iter().filter(|(k, _)| k != "csrf").cloned().collect();
                let token = form[0].1.clone();
                cases.push((
                    "without a token".into(),
                    client.clone(),
                    without.clone(),
                    Token::Missing,
                    403,
                ));
                cases.push((
                    "with a made-up token".into(),
                    client.clone(),
                    without.clone(),
                    Token::Value("forged".into()),
                    403,
                ));
                cases.push((
                    "with the token of another page's cookie".into(),
                    anonymous(),
                    without,
                    Token::Value(token),
                    403,
                ));
            }
            Csrf::Link => {
                // The link's token is the credential: a made-up one is refused.
                let forged: Vec<(String, String)> = valid
                    .iter()
                    .map(|(k, v)| {
                        let v = if k == "token" {
                            format!("{}.{}", app.a.id.simple(), "x".repeat(43))
                        } else {
                            v.clone()
                        };
                        (k.clone(), v)
                    })
                    .collect();
                cases.push((
                    "with a made-up link token".into(),
                    anonymous(),
                    forged,
                    Token::Missing,
                    401,
                ));
            }
            Csrf::None => unreachable!("forms only"),
        }
        let before = app.fingerprint(app.a.id).await;
        for (what, client, fields, token, want) in cases {
            let got = submit(&app, &client, route, &path, &fields, &token, false).await;
            checked += 1;
            let to_login = want != 303 || got.text.starts_with("-> /portal/login");
            if got.status.as_u16() != want || !to_login {
                failures.push(format!(
                    "POST {} {what}: {} {}, expected {want}",
                    route.pattern, got.status, got.text
                ));
            }
        }
        let after = app.fingerprint(app.a.id).await;
        if after != before {
            failures.push(format!(
                "POST {}: a refused submission changed tenant A's data:\n{}",
                route.pattern,
                before.changes(&after)
            ));
        }
    }
    // The refused sign-out left the session working.
    assert_eq!(get(&app, &admin, "/portal").await.status, StatusCode::OK);
    assert!(
        failures.is_empty(),
        "portal forms, {} of {checked} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One refused submission of the CSRF matrix: (what, client, fields, token, expected status).
type Case = (String, reqwest::Client, Vec<(String, String)>, Token, u16);

/// One form submission of the role matrix.
struct Submission {
    route: usize,
    who: String,
    client: reqwest::Client,
    token: Token,
    path: String,
    fields: Vec<(String, String)>,
    want: u16,
}

impl Submission {
    async fn send(&self, app: &TestApp, forms: &[PortalRoute]) -> Option<String> {
        let route = &forms[self.route];
        let accepted = self.want == route.ok;
        let got = submit(
            app,
            &self.client,
            route,
            &self.path,
            &self.fields,
            &self.token,
            accepted,
        )
        .await;
        (got.status.as_u16() != self.want).then(|| {
            format!(
                "POST {} as {}: {} {}, expected {}",
                route.pattern, self.who, got.status, got.text, self.want
            )
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_answers_each_role_and_another_tenant_as_documented() {
    let app = spawn().await;
    app.set_reporting_lines(
        Which::A,
        app.a.people[&Role::Employee],
        Some(app.a.people[&Role::Foreman]),
        Some(app.a.people[&Role::Manager]),
    )
    .await;
    let forms: Arc<Vec<PortalRoute>> = Arc::new(
        routes()
            .into_iter()
            .filter(|r| r.method == Method::POST)
            .collect(),
    );
    let mut sessions = Vec::new();
    for role in Role::ALL {
        sessions.push((role, signed_in(&app, Which::A, role).await));
    }
    let (b_admin, b_csrf) = signed_in(&app, Which::B, Role::Administrator).await;

    // Every submission's fixture first, so the refusals can be shown to change nothing.
    // (route, tenant A's refusals, tenant B's refusal)
    let mut refusals: Vec<(usize, Vec<Submission>, Option<Submission>)> = Vec::new();
    let mut successes = Vec::new();
    for (i, route) in forms.iter().enumerate() {
        let mut refused = Vec::new();
        for (role, (client, token)) in &sessions {
            let fx = fixture(&app, route, *role).await;
            let mut s = Submission {
                route: i,
                who: format!("{role:?}"),
                client: client.clone(),
                token: Token::Value(token.clone()),
                path: fill(route, &fx),
                fields: (route.form)(&fx),
                want: for_role(route, *role),
            };
            match route.csrf {
                // The link's token is the credential; being signed in changes nothing.
                Csrf::Link => s.token = Token::Missing,
                // Signed in, the sign-in page set no form token: tenant A's employee's sign-in
                // with the session's token is refused.
                Csrf::Login => s.fields = login_form(&app, Role::Employee).await.1[1..].to_vec(),
                _ if route.pattern == "/portal/logout" => {
                    // Signing out ends the session: a session of its own.
                    let (c, t) = signed_in(&app, Which::A, *role).await;
                    (s.client, s.token) = (c, Token::Value(t));
                }
                _ => {}
            }
            if s.want == route.ok {
                successes.push(s);
            } else {
                refused.push(s);
            }
        }
        // Public forms signed out, with a valid form.
        match route.csrf {
            Csrf::Login => {
                let (client, form) = login_form(&app, Role::Employee).await;
                successes.push(Submission {
                    route: i,
                    who: "signed out".into(),
                    client,
                    token: Token::Value(form[0].1.clone()),
                    path: route.pattern.to_string(),
                    fields: form[1..].to_vec(),
                    want: for_anonymous(route),
                });
            }
            Csrf::Link => {
                let fx = fixture(&app, route, Role::Employee).await;
                successes.push(Submission {
                    route: i,
                    who: "signed out".into(),
                    client: anonymous(),
                    token: Token::Missing,
                    path: fill(route, &fx),
                    fields: (route.form)(&fx),
                    want: for_anonymous(route),
                });
            }
            _ => {}
        }
        let foreign = if names_an_object(route) {
            let fx = fixture(&app, route, Role::Employee).await;
            Some(Submission {
                route: i,
                who: "tenant B's administrator".into(),
                client: b_admin.clone(),
                token: Token::Value(b_csrf.clone()),
                path: fill(route, &fx),
                fields: (route.form)(&fx),
                want: route.foreign,
            })
        } else {
            None
        };
        refusals.push((i, refused, foreign));
    }

    let mut failures = Vec::new();
    let mut total = successes.len();
    // Refusals, route by route: tenant A's change nothing of A but its audit log (a refusal by
    // the permission table is a security event); tenant B's change nothing of A at all.
    let audited = ["audit_log", "audit_heads", "audit_objects"];
    for (i, refused, foreign) in &refusals {
        let pattern = forms[*i].pattern;
        let before = app.fingerprint(app.a.id).await;
        for s in refused {
            total += 1;
            failures.extend(s.send(&app, &forms).await);
        }
        let after = app.fingerprint(app.a.id).await;
        let (b, a) = (before.without(&audited), after.clone().without(&audited));
        if a != b {
            failures.push(format!(
                "POST {pattern}: a refused submission changed tenant A's data:\n{}",
                b.changes(&a)
            ));
        }
        if let Some(s) = foreign {
            total += 1;
            failures.extend(s.send(&app, &forms).await);
            let last = app.fingerprint(app.a.id).await;
            if last != after {
                failures.push(format!(
                    "POST {pattern} by tenant B's administrator changed tenant A's data:\n{}",
                    after.changes(&last)
                ));
            }
        }
    }
    // Successes, at once.
    let mut calls = JoinSet::new();
    for s in successes {
        let (app, forms) = (app.clone(), forms.clone());
        calls.spawn(async move { s.send(&app, &forms).await });
    }
    while let Some(r) = calls.join_next().await {
        failures.extend(r.expect("a form call panicked"));
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "portal forms by role, {} of {total} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
