//! HTTP API of skills and achievements: the skills catalogue, the skills a course teaches and
//! requires, and a person's skills (with a manager's assessment) and achievements.

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    Object, OpenApi, Tags,
};
use serde::Deserialize;
use trainflow_kernel::{
    auth::TenantAuth,
    body::Body,
    envelope::{created, ok, Created, List, Ok200, Page},
    now, ApiResult,
};
use uuid::Uuid;

use crate::{
    service::{self, PersonSkills, SkillChange},
    skills::{CourseSkill, CourseSkillKind, Skill},
    Learning,
};

#[derive(Tags)]
enum Tag {
    /// The skills catalogue, the skills of courses, and people's skills and achievements.
    Skills,
}

/// The skills API.
pub struct SkillsApi {
    pub svc: Learning,
}

/// Body of `POST /skills`: `name` and `levels` are required.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateSkill {
    /// Unique in the tenant (case aside).
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub category: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 2000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    /// The criteria of each level, level 1 first: 1–10 of 1–500 characters.
    #[oai(validator(
        min_items = 1,
        max_items = 10,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub levels: Vec<String>,
}

/// Body of `PATCH /skills/{id}`: a field left out or `null` keeps its value; a blank
/// `category` or `description` clears it.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PatchSkill {
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub category: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 2000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    #[oai(
        nullable,
        validator(
            min_items = 1,
            max_items = 10,
            max_length = 500,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub levels: Option<Vec<String>>,
}

/// One skill of `PUT /courses/{id}/skills`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct CourseSkillBody {
    /// A live skill of the catalogue.
    pub skill_id: Uuid,
    pub kind: CourseSkillKind,
    /// 1 to the skill's number of levels.
    #[oai(validator(minimum(value = "1"), maximum(value = "10")))]
    pub level: i32,
}

/// Body of `PUT /courses/{id}/skills`: every skill the course teaches and requires (each once
/// per kind); the list replaces the course's.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct CourseSkillsBody {
    #[oai(validator(max_items = 50))]
    pub skills: Vec<CourseSkillBody>,
}

/// A course's skills.
#[derive(Debug, Object)]
pub struct CourseSkills {
    pub skills: Vec<CourseSkill>,
}

/// Body of `PUT /users/{id}/skills`: a manager's assessment of one skill.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct AssessSkillBody {
    /// A live skill of the catalogue.
    pub skill_id: Uuid,
    /// 1 to the skill's number of levels.
    #[oai(validator(minimum(value = "1"), maximum(value = "10")))]
    pub level: i32,
    #[oai(
        nullable,
        validator(max_length = 1000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub note: Option<String>,
}

/// A blank text clears the field; `None` keeps it.
fn clearing(v: Option<String>) -> Option<Option<String>> {
    v.map(|s| Some(s).filter(|s| !s.trim().is_empty()))
}

#[OpenApi(prefix_path = "/api/v1")]
impl SkillsApi {
    /// The skills catalogue by name; `q` searches names and categories (deleted skills with
    /// `deleted=true`, for those who manage courses).
    #[oai(path = "/skills", method = "get", tag = "Tag::Skills")]
    async fn list_skills(
        &self,
        auth: TenantAuth,
        #[oai(validator(max_length = 200))] q: Query<Option<String>>,
        deleted: Query<Option<bool>>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Skill>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let search = q.0.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let (rows, total) =
            service::list_skills(&self.svc, &auth.0, search, deleted.0.unwrap_or(false), page)
                .await?;
        Ok(page.list(rows, total))
    }

    /// Add a skill to the catalogue (`409` on `name` when one has the name).
    #[oai(path = "/skills", method = "post", tag = "Tag::Skills")]
    async fn create_skill(
        &self,
        auth: TenantAuth,
        body: Body<CreateSkill>,
    ) -> ApiResult<Created<Skill>> {
        let b = body.0;
        let change = SkillChange {
            name: Some(b.name),
            category: Some(b.category),
            description: Some(b.description),
            levels: Some(b.levels),
        };
        Ok(created(
            service::create_skill(&self.svc, &auth.0, change, now()).await?,
        ))
    }

    /// A skill.
    #[oai(path = "/skills/:id", method = "get", tag = "Tag::Skills")]
    async fn get_skill(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Skill>> {
        Ok(ok(service::skill(&self.svc, &auth.0, id.0).await?))
    }

    /// Change a skill (`409` on `name` when another has the name).
    #[oai(path = "/skills/:id", method = "patch", tag = "Tag::Skills")]
    async fn patch_skill(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<PatchSkill>,
    ) -> ApiResult<Ok200<Skill>> {
        let b = body.0;
        let change = SkillChange {
            name: b.name,
            category: clearing(b.category),
            description: clearing(b.description),
            levels: b.levels,
        };
        Ok(ok(service::update_skill(
            &self.svc,
            &auth.0,
            id.0,
            change,
            now(),
        )
        .await?))
    }

    /// Soft-delete a skill.
    #[oai(path = "/skills/:id", method = "delete", tag = "Tag::Skills")]
    async fn delete_skill(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Skill>> {
        Ok(ok(service::set_skill_deleted(
            &self.svc,
            &auth.0,
            id.0,
            true,
            now(),
        )
        .await?))
    }

    /// Restore a deleted skill (`409` on `name` when another took its name).
    #[oai(path = "/skills/:id/restore", method = "post", tag = "Tag::Skills")]
    async fn restore_skill(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Skill>> {
        Ok(ok(service::set_skill_deleted(
            &self.svc,
            &auth.0,
            id.0,
            false,
            now(),
        )
        .await?))
    }

    /// The skills a course teaches and requires.
    #[oai(path = "/courses/:id/skills", method = "get", tag = "Tag::Skills")]
    async fn course_skills(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<CourseSkills>> {
        let skills = service::course_skills(&self.svc, &auth.0, id.0).await?;
        Ok(ok(CourseSkills { skills }))
    }

    /// Replace the skills a course teaches and requires (`422` naming `skills[i].…` for an
    /// unknown skill, a level it lacks, or a skill named twice for one kind).
    #[oai(path = "/courses/:id/skills", method = "put", tag = "Tag::Skills")]
    async fn set_course_skills(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<CourseSkillsBody>,
    ) -> ApiResult<Ok200<CourseSkills>> {
        let wanted = body
            .0
            .skills
            .into_iter()
            .map(|s| (s.skill_id, s.kind, s.level))
            .collect();
        let skills = service::set_course_skills(&self.svc, &auth.0, id.0, wanted, now()).await?;
        Ok(ok(CourseSkills { skills }))
    }

    /// A person's skills (level, what it means, where it came from) and achievements: one's
    /// own, one's team's, or anyone's for those who manage courses.
    #[oai(path = "/users/:id/skills", method = "get", tag = "Tag::Skills")]
    async fn person_skills(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<PersonSkills>> {
        Ok(ok(service::person_skills(&self.svc, &auth.0, id.0).await?))
    }

    /// Assess a person's level of a skill: a manager for their team, training officers and
    /// administrators for anyone; nobody for themselves (`422` on `user_id`).
    #[oai(path = "/users/:id/skills", method = "put", tag = "Tag::Skills")]
    async fn assess_skill(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<AssessSkillBody>,
    ) -> ApiResult<Ok200<PersonSkills>> {
        let b = body.0;
        Ok(ok(service::assess_skill(
            &self.svc,
            &auth.0,
            id.0,
            b.skill_id,
            b.level,
            b.note,
            now(),
        )
        .await?))
    }
}
