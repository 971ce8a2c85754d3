//! The pages of certifications and renewals: one's certifications and renewal requests, a
//! request's page with its decision and resubmission forms, the approvals queue, the compliance
//! dashboard, and the certification types with their timeline preview. Each handler parses the
//! form, calls a use case of [`crate::service`] and renders; the session and CSRF checks are in
//! the extractors ([`SignedIn`](trainflow_web::SignedIn),
//! [`Submitted`](trainflow_web::Submitted)).

mod certifications;
mod compliance;
mod requests;
mod types;

use poem::{get, post, EndpointExt, Route};
use serde::Deserialize;
use trainflow_kernel::{auth::Permission, now, ApiError, ApiResult};
use trainflow_web::{BoxFuture, Card, CardSource, NavEntry, Session};

use crate::{service, Renewals};

/// The context's entries in the navigation bar.
pub fn nav() -> Vec<NavEntry> {
    vec![
        NavEntry {
            key: "certifications",
            label: "Certifications",
            href: "/portal/certifications",
            order: 20,
            permission: None,
        },
        NavEntry {
            key: "approvals",
            label: "Approvals",
            href: "/portal/approvals",
            order: 30,
            permission: None,
        },
        NavEntry {
            key: "certification_types",
            label: "Certification types",
            href: "/portal/certification-types",
            order: 40,
            permission: Some(Permission::CertificationsManage),
        },
        NavEntry {
            key: "compliance",
            label: "Compliance",
            href: "/portal/compliance",
            order: 50,
            permission: Some(Permission::ComplianceRead),
        },
    ]
}

/// Mounts the context's pages on `route` (the portal's, nested under `/portal`).
pub fn mount(route: Route, svc: Renewals) -> Route {
    route
        .at(
            "/certifications",
            get(certifications::my_certifications).data(svc.clone()),
        )
        .at(
            "/certifications/:id/renew",
            post(certifications::request_renewal).data(svc.clone()),
        )
        .at(
            "/certification-types",
            get(types::certification_types)
                .post(types::save_certification_type)
                .data(svc.clone()),
        )
        .at(
            "/renewals/:id",
            get(requests::renewal_view).data(svc.clone()),
        )
        .at(
            "/renewals/:id/decision",
            post(requests::decide).data(svc.clone()),
        )
        .at(
            "/approvals",
            get(requests::approvals_queue).data(svc.clone()),
        )
        .at(
            "/compliance",
            get(compliance::compliance_dashboard).data(svc),
        )
}

/// The flash notices of the context's redirects.
const NOTICES: &[(&str, &str)] = &[
    (
        "submitted",
        "Your renewal request was sent to its first approver.",
    ),
    ("approve", "You approved the request."),
    ("reject", "You rejected the request."),
    ("return", "You returned the request for changes."),
    ("resubmitted", "The request was sent back to its approver."),
    ("type_saved", "The certification type was saved."),
];

#[derive(Deserialize)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
    /// The page of the list the page shows.
    page: Option<u32>,
}

impl NoticeQuery {
    fn text(&self) -> Option<&'static str> {
        trainflow_web::notice(self.notice.as_deref(), NOTICES)
    }
}

/// A form's optional comment: trimmed, empty as none, at most 2,000 characters.
fn comment_of(raw: &str) -> Result<Option<String>, ApiError> {
    let c = raw.trim();
    if c.chars().count() > 2000 {
        return Err(ApiError::field(
            "comment",
            "must be at most 2000 characters",
        ));
    }
    Ok(Some(c.to_string()).filter(|c| !c.is_empty()))
}

/// The context's part of the profile page: one's qualifications (current certifications). For a
/// trainer they are what they may teach, once courses name the certifications they need.
pub struct ProfileParts(pub Renewals);

impl CardSource for ProfileParts {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            let query = service::CertQuery {
                user_id: Some(session.ctx.user_id.0),
                type_id: None,
                status: None,
                history: false,
            };
            let (held, _) =
                service::list_certifications(&self.0, &session.ctx, query, None, now()).await?;
            let text = match (session.role, held.is_empty()) {
                (_, true) => "No certifications are recorded for you yet.",
                (trainflow_kernel::auth::Role::Trainer, false) => {
                    "Your qualifications to teach: the certifications you hold, and until when."
                }
                _ => "The certifications you hold, and until when.",
            };
            Ok(vec![Card {
                order: 30,
                title: "Qualifications".into(),
                text: text.into(),
                columns: if held.is_empty() {
                    Vec::new()
                } else {
                    vec!["Certification", "Number", "Valid until", "Status"]
                },
                rows: held
                    .iter()
                    .map(|c| {
                        vec![
                            c.type_name.clone(),
                            c.certificate_number.clone().unwrap_or_default(),
                            c.expires_on
                                .map_or_else(|| "No expiry".to_string(), |d| d.to_string()),
                            c.status.as_str().to_string(),
                        ]
                    })
                    .collect(),
                link: Some((
                    "/portal/certifications".into(),
                    "See my certifications".into(),
                )),
                ..Card::default()
            }])
        })
    }
}

/// The context's dashboard cards: one's certifications to renew, the approvals waiting for one,
/// and (for those who may read it) the tenant's compliance.
pub struct Cards(pub Renewals);

impl CardSource for Cards {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            let summary = service::summary(&self.0, &session.ctx, now()).await?;
            let mut cards = vec![
                Card {
                    order: 20,
                    title: "Certifications to renew".into(),
                    value: Some(summary.needing_renewal.to_string()),
                    text: format!(
                        "Of your {} current certifications, those expiring or expired.",
                        summary.certifications
                    ),
                    link: Some((
                        "/portal/certifications".into(),
                        "See my certifications".into(),
                    )),
                    ..Card::default()
                },
                Card {
                    order: 30,
                    title: "Approvals waiting".into(),
                    value: Some(summary.awaiting_decision.to_string()),
                    text: "Renewal requests waiting for your decision.".into(),
                    link: Some(("/portal/approvals".into(), "Open my approvals".into())),
                    ..Card::default()
                },
            ];
            if let Some(g) = summary.compliance {
                let (value, text) = if g.people == 0 {
                    (None, "No certifications are recorded yet.".to_string())
                } else {
                    (
                        Some(format!("{}%", g.compliant * 100 / g.people)),
                        format!(
                            "{} of {} people hold only valid certifications.",
                            g.compliant, g.people
                        ),
                    )
                };
                cards.push(Card {
                    order: 50,
                    title: "Compliance".into(),
                    value,
                    text,
                    link: Some(("/portal/compliance".into(), "See compliance".into())),
                    ..Card::default()
                });
            }
            Ok(cards)
        })
    }
}
