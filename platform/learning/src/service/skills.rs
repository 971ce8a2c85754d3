//! The use cases of skills and achievements: the skills catalogue (those who manage courses),
//! the skills a course teaches and requires, people's skills — raised by completing courses,
//! set by a manager for their team — and achievements, awarded as progress is recorded.

use poem_openapi::Object;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::TenantTx,
    envelope::Page,
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

use super::{conflict_on, in_team, json, manages};
use crate::{
    catalogue,
    skills::{
        self, Achievement, AchievementRule, CourseSkill, CourseSkillKind, PersonSkill, Skill,
        SkillInput, SkillSource, STREAK_DAYS,
    },
    Learning,
};

const TAKEN: &str = "the catalogue has a skill of this name";

/// Skills by name, for everyone signed in (deleted ones, with `deleted`, for those who manage
/// courses).
pub async fn list_skills(
    svc: &Learning,
    ctx: &TenantCtx,
    search: Option<&str>,
    deleted: bool,
    page: Page,
) -> ApiResult<(Vec<Skill>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    if deleted && !manages(&ctx) {
        return Err(ApiError::Forbidden);
    }
    let rows = skills::list(&mut tx, search, deleted, page).await?;
    tx.commit().await?;
    Ok(rows)
}

/// One live skill.
pub async fn skill(svc: &Learning, ctx: &TenantCtx, id: Uuid) -> ApiResult<Skill> {
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let s = skills::get(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(s)
}

/// What a skill change gives (`None` keeps the value; every field but the optional ones for a
/// new skill).
#[derive(Debug, Clone, Default)]
pub struct SkillChange {
    pub name: Option<String>,
    pub category: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub levels: Option<Vec<String>>,
}

impl SkillChange {
    fn apply(self, current: Option<&Skill>) -> ApiResult<SkillInput> {
        let name = self
            .name
            .or(current.map(|c| c.name.clone()))
            .ok_or_else(|| ApiError::field("name", "is required"))?;
        let levels = self
            .levels
            .or(current.map(|c| c.levels.clone()))
            .ok_or_else(|| ApiError::field("levels", "is required"))?;
        skills::check_skill(SkillInput {
            name,
            category: self
                .category
                .unwrap_or_else(|| current.and_then(|c| c.category.clone())),
            description: self
                .description
                .unwrap_or_else(|| current.and_then(|c| c.description.clone())),
            levels,
        })
    }
}

/// Adds a skill to the catalogue.
pub async fn create_skill(
    svc: &Learning,
    ctx: &TenantCtx,
    change: SkillChange,
    now: OffsetDateTime,
) -> ApiResult<Skill> {
    let input = change.apply(None)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let id = skills::save(&mut tx, None, &input, now)
        .await
        .map_err(|e| conflict_on(e, "name", TAKEN))?;
    let s = skills::get(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "skill.create")
            .object("skill", id)
            .change(None, json(&s)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// Changes a skill (people keep their levels; a level above the new number of levels stays as
/// it was recorded).
pub async fn update_skill(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    change: SkillChange,
    now: OffsetDateTime,
) -> ApiResult<Skill> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let before = skills::get(&mut tx, id, false).await?;
    let input = change.apply(Some(&before))?;
    skills::save(&mut tx, Some(id), &input, now)
        .await
        .map_err(|e| conflict_on(e, "name", TAKEN))?;
    let after = skills::get(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "skill.update")
            .object("skill", id)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes (`deleted`) or restores a skill; a deleted skill drops out of courses' and
/// people's lists until it is restored.
pub async fn set_skill_deleted(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Skill> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    skills::get(&mut tx, id, !deleted).await?;
    skills::set_deleted(&mut tx, id, deleted, now)
        .await
        .map_err(|e| conflict_on(e, "name", TAKEN))?;
    let action = if deleted {
        "skill.delete"
    } else {
        "skill.restore"
    };
    audit::record(&mut tx, Entry::by(&ctx, action).object("skill", id), now).await?;
    let after = skills::get(&mut tx, id, deleted).await?;
    tx.commit().await?;
    Ok(after)
}

/// The skills a course teaches and requires, to anyone who may see the course.
pub async fn course_skills(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
) -> ApiResult<Vec<CourseSkill>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    super::visible_course(&mut tx, &ctx, course).await?;
    let rows = skills::of_course(&mut tx, course).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Replaces the skills a course teaches and requires: each a live skill, once per kind, at one
/// of its levels.
pub async fn set_course_skills(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    wanted: Vec<(Uuid, CourseSkillKind, i32)>,
    now: OffsetDateTime,
) -> ApiResult<Vec<CourseSkill>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    catalogue::get(&mut tx, course, false).await?;
    let mut e = trainflow_kernel::FieldErrors::new();
    for (i, (skill, kind, level)) in wanted.iter().enumerate() {
        if wanted[..i].iter().any(|(s, k, _)| s == skill && k == kind) {
            e.add(
                format!("skills[{i}].skill_id"),
                "is named twice for this kind",
            );
            continue;
        }
        match skills::get(&mut tx, *skill, false).await {
            Ok(s) if *level < 1 || *level as usize > s.levels.len() => e.add(
                format!("skills[{i}].level"),
                format!("{} has levels 1–{}", s.name, s.levels.len()),
            ),
            Ok(_) => {}
            Err(ApiError::NotFound) => e.add(
                format!("skills[{i}].skill_id"),
                "is not a skill of the catalogue",
            ),
            Err(other) => return Err(other),
        }
    }
    e.into_result()?;
    let before = skills::of_course(&mut tx, course).await?;
    skills::set_of_course(&mut tx, course, &wanted).await?;
    let after = skills::of_course(&mut tx, course).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "course.skills")
            .object("course", course)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Whether the caller may see `user`'s skills and achievements: their own, their team's, or
/// anyone's for those who manage courses; 404 otherwise.
async fn may_see(tx: &mut TenantTx, ctx: &TenantCtx, user: Uuid) -> ApiResult<()> {
    if user == ctx.user_id.0 || manages(ctx) || in_team(tx, ctx, user).await? {
        let tenant = tx.tenant();
        let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from directory_people where tenant_id = $1 and id = $2 and deleted_at is null")
            .bind(tenant).bind(user).fetch_optional(&mut *c).await)?;
        if found.is_some() {
            return Ok(());
        }
    }
    Err(ApiError::NotFound)
}

/// A person's skills and achievements.
#[derive(Debug, Clone, Object, Serialize)]
pub struct PersonSkills {
    pub user_id: Uuid,
    pub skills: Vec<PersonSkill>,
    /// Newest first.
    pub achievements: Vec<Achievement>,
}

/// A person's skills with their levels and sources, and their achievements.
pub async fn person_skills(svc: &Learning, ctx: &TenantCtx, user: Uuid) -> ApiResult<PersonSkills> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    may_see(&mut tx, &ctx, user).await?;
    let out = PersonSkills {
        user_id: user,
        skills: skills::of_person(&mut tx, user).await?,
        achievements: skills::achievements(&mut tx, user).await?,
    };
    tx.commit().await?;
    Ok(out)
}

/// One person of a team with their skills.
#[derive(Debug, Clone)]
pub struct TeamMemberSkills {
    pub user_id: Uuid,
    pub name: String,
    pub skills: Vec<PersonSkill>,
}

/// The skills of the people who report to the caller (foremen and managers), by name.
pub async fn team_skills(svc: &Learning, ctx: &TenantCtx) -> ApiResult<Vec<TeamMemberSkills>> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let team = super::team_named(&mut tx, &ctx).await?;
    let ids: Vec<Uuid> = team.iter().map(|(id, _)| *id).collect();
    let mut held = skills::of_people(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(team
        .into_iter()
        .map(|(user_id, name)| TeamMemberSkills {
            skills: held.remove(&user_id).unwrap_or_default(),
            user_id,
            name,
        })
        .collect())
}

/// Sets a person's level of a skill from a manager's assessment: a manager for their team, a
/// training officer or administrator for anyone; not for oneself.
pub async fn assess_skill(
    svc: &Learning,
    ctx: &TenantCtx,
    user: Uuid,
    skill: Uuid,
    level: i32,
    note: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<PersonSkills> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::EnrolmentsAssign).await?;
    may_see(&mut tx, &ctx, user).await?;
    if user == ctx.user_id.0 {
        return Err(ApiError::field(
            "user_id",
            "someone else assesses your skills",
        ));
    }
    let s = match skills::get(&mut tx, skill, false).await {
        Err(ApiError::NotFound) => {
            return Err(ApiError::field(
                "skill_id",
                "is not a skill of the catalogue",
            ))
        }
        other => other?,
    };
    if level < 1 || level as usize > s.levels.len() {
        return Err(ApiError::field(
            "level",
            format!("{} has levels 1–{}", s.name, s.levels.len()),
        ));
    }
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    skills::set_level(
        &mut tx,
        user,
        skill,
        level,
        SkillSource::Manager,
        None,
        note.as_deref(),
        Some(ctx.user_id.0),
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "person_skill.assess")
            .object("user", user)
            .detail(serde_json::json!({"skill_id": skill, "level": level})),
        now,
    )
    .await?;
    let out = PersonSkills {
        user_id: user,
        skills: skills::of_person(&mut tx, user).await?,
        achievements: skills::achievements(&mut tx, user).await?,
    };
    tx.commit().await?;
    Ok(out)
}

/// After progress of `user` (a lesson completed, and perhaps the course `completed`, earned
/// through an assessment or not): raises the skills the course teaches and awards the
/// achievements now met. Returns the achievements awarded.
pub(crate) async fn after_progress(
    tx: &mut TenantTx,
    user: Uuid,
    completed: Option<(Uuid, SkillSource)>,
    now: OffsetDateTime,
) -> ApiResult<Vec<AchievementRule>> {
    let mut awarded = Vec::new();
    if let Some((course, source)) = completed {
        skills::raise_from_course(tx, user, course, source, now).await?;
        let done = skills::completed_courses(tx, user).await?;
        if done >= 1
            && skills::award(
                tx,
                user,
                AchievementRule::FirstCourse,
                "",
                "Completed a first course",
                now,
            )
            .await?
        {
            awarded.push(AchievementRule::FirstCourse);
        }
        if done >= 5
            && skills::award(
                tx,
                user,
                AchievementRule::FiveCourses,
                "",
                "Completed five courses",
                now,
            )
            .await?
        {
            awarded.push(AchievementRule::FiveCourses);
        }
        if let Some((dept, name)) = skills::department_done(tx, user).await? {
            let detail = format!("Completed every course of {name}");
            if skills::award(
                tx,
                user,
                AchievementRule::DepartmentCourses,
                &dept.to_string(),
                &detail,
                now,
            )
            .await?
            {
                awarded.push(AchievementRule::DepartmentCourses);
            }
        }
    }
    let offset = super::tenant_offset(tx, now).await?;
    let day = |t: OffsetDateTime| t.to_offset(offset).date();
    let since = now - Duration::days(STREAK_DAYS);
    let days = skills::learning_days(tx, user, since, day).await?;
    let today = day(now);
    let streak = (0..STREAK_DAYS).all(|n| days.contains(&(today - Duration::days(n))));
    if streak
        && skills::award(
            tx,
            user,
            AchievementRule::FiveDayStreak,
            "",
            "Completed lessons on five days in a row",
            now,
        )
        .await?
    {
        awarded.push(AchievementRule::FiveDayStreak);
    }
    Ok(awarded)
}
