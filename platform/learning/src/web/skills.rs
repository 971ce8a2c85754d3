//! The skills catalogue: search it, and (for those who build the catalogue) add a skill with
//! the criteria of its levels.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::now;
use trainflow_web::{
    blank, field_errors, portal_page, render, url_encode, Errors, Nav, PageResult, Pager, SignedIn,
    Submitted,
};

use super::manages;
use crate::{
    service::{self, SkillChange},
    skills::Skill,
    Learning,
};

#[derive(Deserialize, Default)]
pub(super) struct SkillsQuery {
    #[serde(default)]
    q: String,
    page: Option<u32>,
    notice: Option<String>,
}

/// The new-skill form as typed: the levels' criteria one per line.
#[derive(Deserialize, Default, Clone)]
pub(super) struct SkillForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    levels: String,
}

#[derive(Template)]
#[template(path = "skills.html")]
struct SkillsPage {
    nav: Option<Nav>,
    csrf: String,
    skills: Vec<Skill>,
    total: i64,
    pager: Pager,
    q: String,
    manages: bool,
    form: SkillForm,
    notice: Option<&'static str>,
    errors: Errors,
}

async fn skills_view(
    svc: &Learning,
    me: &SignedIn,
    q: &SkillsQuery,
    form: SkillForm,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let page = portal_page(q.page, 25)?;
    let search: Option<String> = blank(&q.q).map(|s| s.chars().take(200).collect());
    let (skills, total) =
        service::list_skills(svc, me.ctx(), search.as_deref(), false, page).await?;
    let link = {
        let q = url_encode(&q.q);
        move |n: u32| format!("/portal/skills?q={q}&page={n}")
    };
    render(
        &SkillsPage {
            nav: me.nav("skills"),
            csrf: me.csrf().to_string(),
            skills,
            total,
            pager: Pager::new(page, total, link),
            q: q.q.clone(),
            manages: manages(&me.session),
            form,
            notice: trainflow_web::notice(q.notice.as_deref(), super::NOTICES),
            errors,
        },
        status,
    )
}

/// The skills catalogue.
#[handler]
pub(super) async fn skills_page(
    me: SignedIn,
    svc: Data<&Learning>,
    q: Query<SkillsQuery>,
) -> PageResult {
    skills_view(
        &svc,
        &me,
        &q,
        SkillForm::default(),
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

/// Adds a skill.
#[handler]
pub(super) async fn create_skill(
    svc: Data<&Learning>,
    Submitted(me, form): Submitted<SkillForm>,
) -> PageResult {
    let change = SkillChange {
        name: Some(form.name.clone()),
        category: Some(blank(&form.category)),
        description: Some(blank(&form.description)),
        levels: Some(
            form.levels
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        ),
    };
    match service::create_skill(&svc, me.ctx(), change, now()).await {
        Ok(_) => Ok(Redirect::see_other("/portal/skills?notice=skill").into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            skills_view(
                &svc,
                &me,
                &SkillsQuery::default(),
                form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
