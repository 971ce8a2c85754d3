//! The compliance dashboard, with its bar chart.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Query},
};
use serde::Deserialize;
use trainflow_kernel::now;
use trainflow_web::{render, Nav, PageResult, SignedIn};

use crate::{certs::ComplianceGroup, service, Renewals};

#[derive(Template)]
#[template(path = "compliance.html")]
struct CompliancePage {
    nav: Option<Nav>,
    group_by: String,
    groups: Vec<ComplianceGroup>,
    totals: ComplianceGroup,
}

impl CompliancePage {
    /// The chart's stacked bar of a group: (x, width, class) in percent, as SVG attributes (the
    /// content security policy forbids inline styles).
    fn segments(&self, g: &ComplianceGroup) -> Vec<(String, String, &'static str)> {
        let whole = g.people.max(1) as f64;
        let mut x = 0.0;
        [
            (g.compliant, "ok"),
            (g.expiring, "warn"),
            (g.expired, "bad"),
        ]
        .into_iter()
        .map(|(n, class)| {
            let w = n as f64 * 100.0 / whole;
            let seg = (format!("{x:.2}"), format!("{w:.2}"), class);
            x += w;
            seg
        })
        .collect()
    }
}

#[derive(Deserialize)]
pub(super) struct ComplianceQuery {
    group_by: Option<String>,
}

/// Who is compliant, expiring or expired, by department or role, with a bar chart.
#[handler]
pub(super) async fn compliance_dashboard(
    me: SignedIn,
    svc: Data<&Renewals>,
    q: Query<ComplianceQuery>,
) -> PageResult {
    let group_by = match q.0.group_by.as_deref() {
        Some("role") => "role",
        _ => "department",
    };
    let groups = service::compliance(&svc, me.ctx(), Some(group_by.into()), None, now()).await?;
    let mut totals = ComplianceGroup {
        group: "All".into(),
        ..ComplianceGroup::default()
    };
    for g in &groups {
        totals.compliant += g.compliant;
        totals.expiring += g.expiring;
        totals.expired += g.expired;
        totals.people += g.people;
    }
    render(
        &CompliancePage {
            nav: me.nav("compliance"),
            group_by: group_by.into(),
            groups,
            totals,
        },
        StatusCode::OK,
    )
}
