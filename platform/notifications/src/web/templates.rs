//! The email templates pages (administrators): the list, and each template's form with a
//! preview filled with example values, save, and reset to the built-in version.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::{db::Db, now, ApiError};
use trainflow_web::{
    field_errors, notice, render, Errors, Nav, NoFields, PageResult, SignedIn, Submitted,
};

use crate::{
    api::{EmailTemplate, TemplateName},
    service::{self, TemplateSummary},
    templates::Rendered,
};

/// The portal's URL, for the links in previews.
#[derive(Clone)]
pub(super) struct PublicUrl(pub String);

#[derive(Template)]
#[template(path = "email_templates.html")]
struct ListPage {
    nav: Option<Nav>,
    templates: Vec<TemplateSummary>,
}

#[derive(Template)]
#[template(path = "email_template.html")]
struct FormPage {
    nav: Option<Nav>,
    csrf: String,
    name: &'static str,
    form: TemplateForm,
    errors: Errors,
    preview: Option<Rendered>,
    notice: Option<&'static str>,
}

/// The template form: its three parts, and which button was pressed (`preview` or `save`).
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct TemplateForm {
    subject: String,
    text_body: String,
    html_body: String,
    #[serde(default)]
    action: String,
}

impl TemplateForm {
    fn template(&self) -> EmailTemplate {
        EmailTemplate {
            subject: self.subject.clone(),
            text_body: self.text_body.clone(),
            html_body: self.html_body.clone(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct NoticeQuery {
    notice: Option<String>,
}

fn template_name(raw: &str) -> Result<TemplateName, ApiError> {
    TemplateName::parse(raw).ok_or(ApiError::NotFound)
}

/// The built-in templates, each with the subject the tenant sends and whether it is its own.
#[handler]
pub(super) async fn list(me: SignedIn, db: Data<&Db>) -> PageResult {
    let templates = service::templates_overview(&db, me.ctx()).await?;
    render(
        &ListPage {
            nav: me.nav("email_templates"),
            templates,
        },
        StatusCode::OK,
    )
}

/// One template's form, with the version the tenant sends.
#[handler]
pub(super) async fn edit(
    me: SignedIn,
    db: Data<&Db>,
    Path(name): Path<String>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let name = template_name(&name)?;
    let t = service::template(&db, me.ctx(), name.as_str()).await?;
    render(
        &FormPage {
            nav: me.nav("email_templates"),
            csrf: me.csrf().to_string(),
            name: name.as_str(),
            form: TemplateForm {
                subject: t.subject,
                text_body: t.text,
                html_body: t.html,
                action: String::new(),
            },
            errors: Errors::default(),
            preview: None,
            notice: notice(
                q.0.notice.as_deref(),
                &[
                    (
                        "saved",
                        "The template was saved: emails use it from now on.",
                    ),
                    ("reset", "The template is the built-in one again."),
                ],
            ),
        },
        StatusCode::OK,
    )
}

/// Previews the draft (nothing is saved) or saves it.
#[handler]
pub(super) async fn submit(
    db: Data<&Db>,
    url: Data<&PublicUrl>,
    Path(name): Path<String>,
    Submitted(me, form): Submitted<TemplateForm>,
) -> PageResult {
    let name = template_name(&name)?;
    let draft = form.template();
    let outcome = if form.action == "preview" {
        service::preview_template(&db, me.ctx(), name.as_str(), &draft, &url.0 .0)
            .await
            .map(Some)
    } else {
        service::set_template(&db, me.ctx(), name.as_str(), draft, now())
            .await
            .map(|_| None)
    };
    let (preview, errors, status) = match outcome {
        Ok(None) => {
            return Ok(Redirect::see_other(format!(
                "/portal/email-templates/{}?notice=saved",
                name.as_str()
            ))
            .into_response())
        }
        Ok(Some(preview)) => (Some(preview), Errors::default(), StatusCode::OK),
        Err(e) => (None, field_errors(e)?, StatusCode::UNPROCESSABLE_ENTITY),
    };
    render(
        &FormPage {
            nav: me.nav("email_templates"),
            csrf: me.csrf().to_string(),
            name: name.as_str(),
            form,
            errors,
            preview,
            notice: None,
        },
        status,
    )
}

/// Goes back to the built-in version.
#[handler]
pub(super) async fn reset(
    db: Data<&Db>,
    Path(name): Path<String>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    let name = template_name(&name)?;
    service::reset_template(&db, me.ctx(), name.as_str(), now()).await?;
    Ok(Redirect::see_other(format!(
        "/portal/email-templates/{}?notice=reset",
        name.as_str()
    ))
    .into_response())
}
