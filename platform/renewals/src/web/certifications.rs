//! One's certifications, and asking for their renewal.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::now;
use trainflow_web::{
    field_errors, render, Errors, LocalTimes, Nav, PageResult, SignedIn, Submitted,
};
use uuid::Uuid;

use super::{comment_of, NoticeQuery};
use crate::{certs::Certification, service, workflow::RenewalRequest, Renewals};

#[derive(Template)]
#[template(path = "certifications.html")]
struct CertificationsPage {
    nav: Option<Nav>,
    csrf: String,
    certifications: Vec<Certification>,
    requests: Vec<RenewalRequest>,
    times: LocalTimes,
    notice: Option<&'static str>,
    errors: Errors,
}

async fn page(
    svc: &Renewals,
    me: &SignedIn,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let mine = service::my_certifications(svc, me.ctx(), now()).await?;
    render(
        &CertificationsPage {
            nav: me.nav("certifications"),
            csrf: me.csrf().to_string(),
            certifications: mine.certifications,
            requests: mine.requests,
            times: me.session.times(),
            notice,
            errors,
        },
        status,
    )
}

/// The signed-in person's certifications and renewal requests.
#[handler]
pub(super) async fn my_certifications(
    me: SignedIn,
    svc: Data<&Renewals>,
    q: Query<NoticeQuery>,
) -> PageResult {
    page(&svc, &me, q.text(), Errors::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct RenewForm {
    #[serde(default)]
    comment: String,
}

/// Asks for the renewal of one of one's certifications.
#[handler]
pub(super) async fn request_renewal(
    svc: Data<&Renewals>,
    Path(id): Path<Uuid>,
    Submitted(me, form): Submitted<RenewForm>,
) -> PageResult {
    let submitted = match comment_of(&form.comment) {
        Ok(comment) => service::submit_renewal(&svc, me.ctx(), id, comment, now()).await,
        Err(e) => Err(e),
    };
    match submitted {
        Ok(r) => Ok(
            Redirect::see_other(format!("/portal/renewals/{}?notice=submitted", r.id))
                .into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            page(&svc, &me, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}
