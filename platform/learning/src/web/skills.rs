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

use poem::web::Path;
use trainflow_kernel::{auth::Permission, envelope::Page, ApiError, FieldErrors};
use uuid::Uuid;

use super::{manages, NoticeQuery};
use crate::{
    service::{self, SkillChange, TeamMemberSkills},
    skills::{CourseSkillKind, Skill},
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
    /// Foremen and managers: the link to their team's skills.
    leads: bool,
    form: SkillForm,
    /// The deleted skills, for those who may restore them.
    deleted: Vec<Skill>,
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
    let deleted = if manages(&me.session) {
        service::list_skills(svc, me.ctx(), None, true, Page::parse(Some(1), Some(100))?)
            .await?
            .0
    } else {
        Vec::new()
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
            leads: matches!(
                me.session.role,
                trainflow_kernel::auth::Role::Foreman | trainflow_kernel::auth::Role::Manager
            ),
            form,
            deleted,
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

impl SkillForm {
    /// The skill as typed.
    fn change(&self) -> SkillChange {
        SkillChange {
            name: Some(self.name.clone()),
            category: Some(blank(&self.category)),
            description: Some(blank(&self.description)),
            levels: Some(
                self.levels
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
            ),
        }
    }

    /// The form filled in with `skill`.
    fn of(skill: &Skill) -> Self {
        SkillForm {
            name: skill.name.clone(),
            category: skill.category.clone().unwrap_or_default(),
            description: skill.description.clone().unwrap_or_default(),
            levels: skill.levels.join("\n"),
        }
    }
}

/// Adds a skill.
#[handler]
pub(super) async fn create_skill(
    svc: Data<&Learning>,
    Submitted(me, form): Submitted<SkillForm>,
) -> PageResult {
    match service::create_skill(&svc, me.ctx(), form.change(), now()).await {
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

#[derive(Template)]
#[template(path = "skill.html")]
struct SkillPage {
    nav: Option<Nav>,
    csrf: String,
    skill: Skill,
    manages: bool,
    form: SkillForm,
    notice: Option<&'static str>,
    errors: Errors,
}

/// A skill's levels, and for those who build the catalogue the forms that change and delete it.
#[handler]
pub(super) async fn skill_page(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let skill = service::skill(&svc, me.ctx(), id.0).await?;
    render(
        &SkillPage {
            nav: me.nav("skills"),
            csrf: me.csrf().to_string(),
            form: SkillForm::of(&skill),
            skill,
            manages: manages(&me.session),
            notice: q.text(),
            errors: Errors::default(),
        },
        StatusCode::OK,
    )
}

/// Changes a skill; a refusal shows its page again with the form as typed.
#[handler]
pub(super) async fn update_skill(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<SkillForm>,
) -> PageResult {
    match service::update_skill(&svc, me.ctx(), id.0, form.change(), now()).await {
        Ok(_) => Ok(
            Redirect::see_other(format!("/portal/skills/{}?notice=skill_saved", id.0))
                .into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            let skill = service::skill(&svc, me.ctx(), id.0).await?;
            render(
                &SkillPage {
                    nav: me.nav("skills"),
                    csrf: me.csrf().to_string(),
                    skill,
                    manages: true,
                    form,
                    notice: None,
                    errors,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

/// Deletes (`/delete`) or restores (`/restore`) a skill, back to the catalogue.
async fn set_deleted(svc: &Learning, me: &SignedIn, id: Uuid, deleted: bool) -> PageResult {
    service::set_skill_deleted(svc, me.ctx(), id, deleted, now()).await?;
    let notice = if deleted {
        "skill_deleted"
    } else {
        "skill_restored"
    };
    Ok(Redirect::see_other(format!("/portal/skills?notice={notice}")).into_response())
}

/// Deletes a skill.
#[handler]
pub(super) async fn delete_skill(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    set_deleted(&svc, &me, id.0, true).await
}

/// Restores a deleted skill.
#[handler]
pub(super) async fn restore_skill(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    set_deleted(&svc, &me, id.0, false).await
}

#[derive(Template)]
#[template(path = "team_skills.html")]
struct TeamSkillsPage {
    nav: Option<Nav>,
    csrf: String,
    team: Vec<TeamMemberSkills>,
    /// The catalogue, for the assessment form (those who may assess).
    catalogue: Vec<Skill>,
    assesses: bool,
    notice: Option<&'static str>,
    errors: Errors,
}

async fn team_view(
    svc: &Learning,
    me: &SignedIn,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let team = service::team_skills(svc, me.ctx()).await?;
    let assesses = me.session.role.grants(Permission::EnrolmentsAssign) && !team.is_empty();
    let catalogue = if assesses {
        service::list_skills(svc, me.ctx(), None, false, Page::parse(Some(1), Some(100))?)
            .await?
            .0
    } else {
        Vec::new()
    };
    render(
        &TeamSkillsPage {
            nav: me.nav("skills"),
            csrf: me.csrf().to_string(),
            team,
            catalogue,
            assesses,
            notice,
            errors,
        },
        status,
    )
}

/// The skills of one's team, and (for managers) the form that assesses one.
#[handler]
pub(super) async fn team_page(
    me: SignedIn,
    svc: Data<&Learning>,
    q: Query<NoticeQuery>,
) -> PageResult {
    team_view(&svc, &me, q.text(), Errors::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct AssessForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    skill_id: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    note: String,
}

/// A form field parsed as `T`, or the error `message` on `field`.
fn parsed<T: std::str::FromStr>(
    e: &mut FieldErrors,
    field: &str,
    raw: &str,
    message: &str,
) -> Option<T> {
    raw.trim().parse().map_err(|_| e.add(field, message)).ok()
}

/// Records a manager's assessment of a person's level of a skill.
#[handler]
pub(super) async fn assess(
    svc: Data<&Learning>,
    Submitted(me, form): Submitted<AssessForm>,
) -> PageResult {
    let mut e = FieldErrors::new();
    let user = parsed::<Uuid>(
        &mut e,
        "user_id",
        &form.user_id,
        "choose a person of your team",
    );
    let skill = parsed::<Uuid>(&mut e, "skill_id", &form.skill_id, "choose a skill");
    let level = parsed::<i32>(&mut e, "level", &form.level, "must be a whole number");
    let r = match (user, skill, level) {
        (Some(user), Some(skill), Some(level)) if e.is_empty() => {
            service::assess_skill(&svc, me.ctx(), user, skill, level, blank(&form.note), now())
                .await
                .map(drop)
        }
        _ => Err(ApiError::Validation(e)),
    };
    match r {
        Ok(()) => Ok(Redirect::see_other("/portal/skills/team?notice=assessed").into_response()),
        Err(err) => {
            let errors = field_errors(err)?;
            team_view(&svc, &me, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CourseSkillForm {
    #[serde(default)]
    skill_id: String,
    #[serde(default)]
    kind: String,
    /// Blank removes the skill of that kind from the course.
    #[serde(default)]
    level: String,
}

/// Adds, changes or (blank level) removes one skill a course teaches or requires.
#[handler]
pub(super) async fn set_course_skill(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<CourseSkillForm>,
) -> PageResult {
    let mut e = FieldErrors::new();
    let skill = parsed::<Uuid>(&mut e, "skill_id", &form.skill_id, "choose a skill");
    let kind = CourseSkillKind::parse(form.kind.trim());
    if kind.is_none() {
        e.add("kind", "must be teaches or requires");
    }
    let level = match form.level.trim() {
        "" => None,
        l => l
            .parse::<i32>()
            .map_err(|_| e.add("level", "must be a whole number"))
            .ok(),
    };
    let r = match (skill, kind) {
        (Some(skill), Some(kind)) if e.is_empty() => {
            let mut wanted: Vec<(Uuid, CourseSkillKind, i32)> =
                service::course_skills(&svc, me.ctx(), id.0)
                    .await?
                    .into_iter()
                    .filter(|s| !(s.skill_id == skill && s.kind == kind))
                    .map(|s| (s.skill_id, s.kind, s.level))
                    .collect();
            if let Some(level) = level {
                wanted.push((skill, kind, level));
            }
            service::set_course_skills(&svc, me.ctx(), id.0, wanted, now())
                .await
                .map(drop)
        }
        _ => Err(ApiError::Validation(e)),
    };
    match r {
        Ok(()) => Ok(
            Redirect::see_other(format!("/portal/courses/{}?notice=skills", id.0)).into_response(),
        ),
        Err(err) => {
            // The form edits one skill: `skills[i].level` of the whole list is its `level`.
            let mut errors = Errors::default();
            for (field, message) in field_errors(err)?.all() {
                let own = field.rsplit('.').next().unwrap_or(&field).to_string();
                errors.add(&own, message);
            }
            super::catalogue::course_with_errors(&svc, &me, id.0, errors).await
        }
    }
}
