//! Certification types, with the timeline preview of a type being defined.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use time::Date;
use trainflow_kernel::{auth::Permission, now, ApiError, FieldErrors};
use trainflow_web::{
    field_errors, portal_page, render, Errors, Nav, PageResult, Pager, Session, SignedIn, Submitted,
};

use super::NoticeQuery;
use crate::{
    certs::{CertificationType, TypeInput},
    dates::Cycle,
    service, Renewals,
};

/// The new-type form as typed (numbers stay text so a bad value can be shown back).
#[derive(Deserialize, Default)]
pub(super) struct TypeForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    validity_months: String,
    #[serde(default)]
    renewal_window_days: String,
    #[serde(default)]
    start_date: String,
    #[serde(default)]
    evidence_required: Option<String>,
}

#[derive(Template)]
#[template(path = "certification_types.html")]
struct TypesPage {
    nav: Option<Nav>,
    csrf: String,
    types: Vec<CertificationType>,
    pager: Pager,
    form: TypeFormView,
    timeline: Vec<Cycle>,
    notice: Option<&'static str>,
    errors: Errors,
}

struct TypeFormView {
    code: String,
    name: String,
    validity_months: String,
    renewal_window_days: String,
    start_date: String,
    evidence_required: bool,
}

impl TypeFormView {
    fn blank(today: Date) -> Self {
        TypeFormView {
            code: String::new(),
            name: String::new(),
            validity_months: "12".into(),
            renewal_window_days: "90".into(),
            start_date: today.to_string(),
            evidence_required: false,
        }
    }
}

/// Types a page of the list shows.
const TYPES_PER_PAGE: u32 = 50;

#[allow(clippy::too_many_arguments)]
async fn page(
    svc: &Renewals,
    me: &SignedIn,
    list_page: Option<u32>,
    form: TypeFormView,
    timeline: Vec<Cycle>,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let list_page = portal_page(list_page, TYPES_PER_PAGE)?;
    let (types, total) = service::list_types(svc, me.ctx(), Some(list_page)).await?;
    render(
        &TypesPage {
            nav: me.nav("certification_types"),
            csrf: me.csrf().to_string(),
            types,
            pager: Pager::new(list_page, total, |n| {
                format!("/portal/certification-types?page={n}")
            }),
            form,
            timeline,
            notice,
            errors,
        },
        status,
    )
}

/// The pages are for those who may define types; the use cases check again.
fn may_manage(s: &Session) -> Result<(), ApiError> {
    if s.role.grants(Permission::CertificationsManage) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The tenant's certification types and the form to add one (training officers and
/// administrators).
#[handler]
pub(super) async fn certification_types(
    me: SignedIn,
    svc: Data<&Renewals>,
    q: Query<NoticeQuery>,
) -> PageResult {
    may_manage(&me.session)?;
    let today = time::OffsetDateTime::now_utc().date();
    page(
        &svc,
        &me,
        q.page,
        TypeFormView::blank(today),
        Vec::new(),
        q.text(),
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

/// Previews the timeline of the type being defined (`action=preview`) or saves it.
#[handler]
pub(super) async fn save_certification_type(
    svc: Data<&Renewals>,
    Submitted(me, form): Submitted<TypeForm>,
) -> PageResult {
    may_manage(&me.session)?;
    let mut errors = FieldErrors::new();
    let number = |errors: &mut FieldErrors, field: &str, raw: &str| {
        raw.trim()
            .parse::<i32>()
            .map_err(|_| errors.add(field, "must be a whole number"))
            .ok()
    };
    let validity = number(&mut errors, "validity_months", &form.validity_months);
    let window = number(
        &mut errors,
        "renewal_window_days",
        &form.renewal_window_days,
    );
    let preview = form.action == "preview";
    let start = time::Date::parse(
        form.start_date.trim(),
        &time::format_description::well_known::Iso8601::DATE,
    )
    .map_err(|_| "must be a date (YYYY-MM-DD)")
    .and_then(|d| crate::dates::in_range(d).map_err(|_| crate::dates::RANGE_MESSAGE));
    if let (true, Err(message)) = (preview, start) {
        errors.add("start_date", message);
    }
    let view = TypeFormView {
        code: form.code.clone(),
        name: form.name.clone(),
        validity_months: form.validity_months.clone(),
        renewal_window_days: form.renewal_window_days.clone(),
        start_date: form.start_date.clone(),
        evidence_required: form.evidence_required.is_some(),
    };
    let input = TypeInput {
        code: Some(form.code.trim().to_string()),
        name: Some(form.name.trim().to_string()),
        description: None,
        validity_months: validity,
        renewal_window_days: window,
        evidence_required: Some(form.evidence_required.is_some()),
        required_courses: None,
    };
    let result = if !errors.0.is_empty() {
        Err(ApiError::Validation(errors))
    } else if let (true, Ok(start)) = (preview, start) {
        service::preview_type(&svc, me.ctx(), input, start, now())
            .await
            .map(Some)
    } else {
        service::create_type(&svc, me.ctx(), input, now())
            .await
            .map(|_| None)
    };
    match result {
        Ok(Some(timeline)) => {
            page(
                &svc,
                &me,
                None,
                view,
                timeline,
                None,
                Errors::default(),
                StatusCode::OK,
            )
            .await
        }
        Ok(None) => Ok(
            Redirect::see_other("/portal/certification-types?notice=type_saved").into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            page(
                &svc,
                &me,
                None,
                view,
                Vec::new(),
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
