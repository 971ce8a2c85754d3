//! Skills and achievements: the tenant's skills catalogue, each skill with the criteria of its
//! levels (level 1 first); the skills a course teaches (completing it raises the person to that
//! level, never lowers them) and requires; people's skills with their level and where it came
//! from; and achievements, awarded once each by rules checked when progress is recorded.

use std::collections::{HashMap, HashSet};

use poem_openapi::Object;
use serde::Serialize;
use sqlx::{types::Json, QueryBuilder};
use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    db::TenantTx, domain::like_pattern, envelope::Page, sql, ApiError, ApiResult,
};
use uuid::Uuid;

use crate::text_enum;

text_enum! {
    /// Where a person's level of a skill came from.
    SkillSource {
        Course = "course",
        Assessment = "assessment",
        Manager = "manager",
        Import = "import",
    }
}

text_enum! {
    /// How a course relates to a skill: it raises it, or it expects it.
    CourseSkillKind {
        Teaches = "teaches",
        Requires = "requires",
    }
}

text_enum! {
    /// The rules that award achievements.
    AchievementRule {
        /// A first course completed.
        FirstCourse = "first_course",
        /// Five courses completed.
        FiveCourses = "five_courses",
        /// Every published course of the person's department completed.
        DepartmentCourses = "department_courses",
        /// Lessons completed on five days in a row.
        FiveDayStreak = "five_day_streak",
    }
}

/// The most levels a skill has.
pub const MAX_LEVELS: usize = 10;
/// The longest criterion of a level.
pub const MAX_CRITERION: usize = 500;
/// Days in a row a streak needs.
pub const STREAK_DAYS: i64 = 5;

/// A skill of the catalogue.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Skill {
    pub id: Uuid,
    pub name: String,
    pub category: Option<String>,
    pub description: Option<String>,
    /// The criteria of each level, level 1 first.
    #[sqlx(json)]
    pub levels: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

const SKILL_COLUMNS: &str = "id, name, category, description, levels, deleted_at";

/// A skill as its builder gives it, checked by [`check_skill`].
#[derive(Debug, Clone, Default)]
pub struct SkillInput {
    pub name: String,
    pub category: Option<String>,
    pub description: Option<String>,
    pub levels: Vec<String>,
}

fn text(raw: Option<String>) -> Option<String> {
    raw.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The skill `input` describes, trimmed, or what is wrong with it.
pub fn check_skill(input: SkillInput) -> ApiResult<SkillInput> {
    let mut e = trainflow_kernel::FieldErrors::new();
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        e.add("name", "must be 1–200 characters");
    }
    let category = text(input.category);
    if category.as_ref().is_some_and(|c| c.chars().count() > 100) {
        e.add("category", "must be at most 100 characters");
    }
    let description = text(input.description);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 2000)
    {
        e.add("description", "must be at most 2000 characters");
    }
    let levels: Vec<String> = input.levels.iter().map(|l| l.trim().to_string()).collect();
    if levels.is_empty() || levels.len() > MAX_LEVELS {
        e.add("levels", format!("give 1–{MAX_LEVELS} levels"));
    } else if levels
        .iter()
        .any(|l| l.is_empty() || l.chars().count() > MAX_CRITERION)
    {
        e.add(
            "levels",
            format!("each level's criteria are 1–{MAX_CRITERION} characters"),
        );
    }
    e.into_result()?;
    Ok(SkillInput {
        name,
        category,
        description,
        levels,
    })
}

/// Skills by name: live ones (deleted ones with `deleted`), matching `search` in the name or
/// category; one page and the total.
pub async fn list(
    tx: &mut TenantTx,
    search: Option<&str>,
    deleted: bool,
    page: Page,
) -> ApiResult<(Vec<Skill>, i64)> {
    let tenant = tx.tenant();
    let pattern = search.map(like_pattern).unwrap_or_else(|| "%".into());
    let cond = "tenant_id = $1 and (deleted_at is not null) = $2
          and (lower(name) like lower($3) escape '\\' or lower(coalesce(category, '')) like lower($3) escape '\\')";
    let rows: Vec<Skill> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {SKILL_COLUMNS} from skills where {cond} order by lower(name), id limit $4 offset $5"))
        .bind(tenant).bind(deleted).bind(&pattern).bind(page.limit()).bind(page.offset())
        .fetch_all(&mut *c).await)?;
    let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(&format!(
        "select count(*) from skills where {cond}"))
        .bind(tenant).bind(deleted).bind(&pattern).fetch_one(&mut *c).await)?;
    Ok((rows, total))
}

/// A skill (a deleted one with `deleted`); 404 otherwise.
pub async fn get(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Skill> {
    let tenant = tx.tenant();
    let row: Option<Skill> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {SKILL_COLUMNS} from skills
          where tenant_id = $1 and id = $2 and (deleted_at is not null) = $3"))
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// Saves a skill: a new one (`id` none) or the live one `id`. Returns its id.
pub async fn save(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    s: &SkillInput,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let levels = Json(&s.levels);
    match id {
        None => {
            let id = Uuid::now_v7();
            sql!(tx.conn() => |c| sqlx::query(
                "insert into skills (tenant_id, id, name, category, description, levels, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $7)")
                .bind(tenant).bind(id).bind(&s.name).bind(&s.category).bind(&s.description)
                .bind(levels).bind(now).execute(&mut *c).await.map(drop))?;
            Ok(id)
        }
        Some(id) => {
            sql!(tx.conn() => |c| sqlx::query(
                "update skills set name = $3, category = $4, description = $5, levels = $6, updated_at = $7
                  where tenant_id = $1 and id = $2 and deleted_at is null")
                .bind(tenant).bind(id).bind(&s.name).bind(&s.category).bind(&s.description)
                .bind(levels).bind(now).execute(&mut *c).await.map(drop))?;
            Ok(id)
        }
    }
}

/// Soft-deletes (`deleted`) or restores a skill.
pub async fn set_deleted(
    tx: &mut TenantTx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let at = deleted.then_some(now);
    sql!(tx.conn() => |c| sqlx::query(
        "update skills set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// A skill a course teaches or requires.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
pub struct CourseSkill {
    pub skill_id: Uuid,
    pub skill_name: String,
    #[sqlx(try_from = "String")]
    pub kind: CourseSkillKind,
    /// 1 to the skill's number of levels.
    pub level: i32,
}

/// The live skills a course teaches and requires, by kind and name.
pub async fn of_course(tx: &mut TenantTx, course: Uuid) -> ApiResult<Vec<CourseSkill>> {
    let tenant = tx.tenant();
    let rows: Vec<CourseSkill> = sql!(tx.conn() => |c| sqlx::query_as(
        "select cs.skill_id, s.name as skill_name, cs.kind, cs.level
           from course_skills cs join skills s on s.tenant_id = cs.tenant_id and s.id = cs.skill_id
          where cs.tenant_id = $1 and cs.course_id = $2 and s.deleted_at is null
          order by cs.kind desc, lower(s.name)")
        .bind(tenant).bind(course).fetch_all(&mut *c).await)?;
    Ok(rows)
}

/// Replaces the skills of a course.
pub async fn set_of_course(
    tx: &mut TenantTx,
    course: Uuid,
    skills: &[(Uuid, CourseSkillKind, i32)],
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "delete from course_skills where tenant_id = $1 and course_id = $2")
        .bind(tenant).bind(course).execute(&mut *c).await.map(drop))?;
    for (skill, kind, level) in skills {
        sql!(tx.conn() => |c| sqlx::query(
            "insert into course_skills (tenant_id, course_id, skill_id, kind, level)
             values ($1, $2, $3, $4, $5)")
            .bind(tenant).bind(course).bind(skill).bind(kind.as_str()).bind(level)
            .execute(&mut *c).await.map(drop))?;
    }
    Ok(())
}

/// A person's level of a skill.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct PersonSkill {
    pub skill_id: Uuid,
    pub skill_name: String,
    pub category: Option<String>,
    pub level: i32,
    /// The skill's number of levels.
    pub max_level: i32,
    /// What the level means.
    pub criteria: String,
    #[sqlx(try_from = "String")]
    pub source: SkillSource,
    /// The course whose completion raised it.
    pub course_id: Option<Uuid>,
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct PersonSkillRow {
    user_id: Uuid,
    skill_id: Uuid,
    skill_name: String,
    category: Option<String>,
    level: i32,
    levels: Json<Vec<String>>,
    source: String,
    course_id: Option<Uuid>,
    note: Option<String>,
    updated_at: OffsetDateTime,
}

/// A person's skills (of live skills), by name.
pub async fn of_person(tx: &mut TenantTx, user: Uuid) -> ApiResult<Vec<PersonSkill>> {
    Ok(of_people(tx, &[user])
        .await?
        .remove(&user)
        .unwrap_or_default())
}

/// The skills (of live skills) of each of `users`, by name: one query a few hundred people.
pub async fn of_people(
    tx: &mut TenantTx,
    users: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<PersonSkill>>> {
    let tenant = tx.tenant();
    let mut out: HashMap<Uuid, Vec<PersonSkill>> = HashMap::new();
    for chunk in users.chunks(500) {
        let rows: Vec<PersonSkillRow> = sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "select ps.user_id, ps.skill_id, s.name as skill_name, s.category, ps.level, s.levels,
                        ps.source, ps.course_id, ps.note, ps.updated_at
                   from person_skills ps join skills s on s.tenant_id = ps.tenant_id and s.id = ps.skill_id
                  where s.deleted_at is null and ps.tenant_id = ");
            qb.push_bind(tenant).push(" and ps.user_id in (");
            let mut ids = qb.separated(", ");
            for u in chunk {
                ids.push_bind(*u);
            }
            qb.push(") order by lower(s.name)");
            qb.build_query_as().fetch_all(&mut *c).await
        })?;
        for r in rows {
            let user = r.user_id;
            out.entry(user).or_default().push(person_skill(r)?);
        }
    }
    Ok(out)
}

fn person_skill(r: PersonSkillRow) -> ApiResult<PersonSkill> {
    let levels = r.levels.0;
    Ok(PersonSkill {
        criteria: levels
            .get((r.level.max(1) - 1) as usize)
            .cloned()
            .unwrap_or_default(),
        max_level: levels.len() as i32,
        source: SkillSource::parse(&r.source)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("skill source {}", r.source)))?,
        skill_id: r.skill_id,
        skill_name: r.skill_name,
        category: r.category,
        level: r.level,
        course_id: r.course_id,
        note: r.note,
        updated_at: r.updated_at,
    })
}

/// Sets a person's level of a skill (from a manager's assessment).
#[allow(clippy::too_many_arguments)]
pub async fn set_level(
    tx: &mut TenantTx,
    user: Uuid,
    skill: Uuid,
    level: i32,
    source: SkillSource,
    course: Option<Uuid>,
    note: Option<&str>,
    by: Option<Uuid>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into person_skills (tenant_id, user_id, skill_id, level, source, course_id, note, updated_by, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (tenant_id, user_id, skill_id) do update set level = excluded.level,
             source = excluded.source, course_id = excluded.course_id, note = excluded.note,
             updated_by = excluded.updated_by, updated_at = excluded.updated_at")
        .bind(tenant).bind(user).bind(skill).bind(level).bind(source.as_str()).bind(course)
        .bind(note).bind(by).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Raises `user` to the levels `course` teaches (never lowering one), from `source`. Returns
/// the skills raised.
pub async fn raise_from_course(
    tx: &mut TenantTx,
    user: Uuid,
    course: Uuid,
    source: SkillSource,
    now: OffsetDateTime,
) -> ApiResult<Vec<(Uuid, i32)>> {
    let tenant = tx.tenant();
    let raised: Vec<(Uuid, i32)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select cs.skill_id, cs.level
           from course_skills cs join skills s on s.tenant_id = cs.tenant_id and s.id = cs.skill_id
           left join person_skills ps on ps.tenant_id = cs.tenant_id and ps.skill_id = cs.skill_id
                and ps.user_id = $3
          where cs.tenant_id = $1 and cs.course_id = $2 and cs.kind = 'teaches'
            and s.deleted_at is null and (ps.level is null or ps.level < cs.level)")
        .bind(tenant).bind(course).bind(user).fetch_all(&mut *c).await)?;
    for (skill, level) in &raised {
        set_level(
            tx,
            user,
            *skill,
            *level,
            source,
            Some(course),
            None,
            None,
            now,
        )
        .await?;
    }
    Ok(raised)
}

/// Raises the skills the courses of imported completions teach, with the source `import`: one
/// query finds the courses that teach any; people are raised only for those.
pub async fn raise_from_imports(
    tx: &mut TenantTx,
    pairs: &[(Uuid, Uuid)],
    now: OffsetDateTime,
) -> ApiResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    let courses: Vec<Uuid> = pairs
        .iter()
        .map(|p| p.1)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut teaching: Vec<Uuid> = Vec::new();
    for chunk in courses.chunks(1000) {
        let found: Vec<Uuid> = sql!(tx.conn() => |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "select distinct course_id from course_skills where kind = 'teaches' and tenant_id = ");
            qb.push_bind(tenant).push(" and course_id in (");
            let mut list = qb.separated(", ");
            for id in chunk { list.push_bind(*id); }
            qb.push(")");
            qb.build_query_scalar().fetch_all(&mut *c).await
        })?;
        teaching.extend(found);
    }
    for (user, course) in pairs.iter().filter(|p| teaching.contains(&p.1)) {
        raise_from_course(tx, *user, *course, SkillSource::Import, now).await?;
    }
    Ok(())
}

/// An achievement a person was awarded.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
pub struct Achievement {
    pub id: Uuid,
    pub user_id: Uuid,
    #[sqlx(try_from = "String")]
    pub rule: AchievementRule,
    /// What it says, as awarded.
    pub detail: String,
    #[serde(with = "time::serde::rfc3339")]
    pub awarded_at: OffsetDateTime,
}

/// A person's achievements, newest first.
pub async fn achievements(tx: &mut TenantTx, user: Uuid) -> ApiResult<Vec<Achievement>> {
    let tenant = tx.tenant();
    let rows: Vec<Achievement> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, user_id, rule, detail, awarded_at from achievements
          where tenant_id = $1 and user_id = $2 order by awarded_at desc, id desc")
        .bind(tenant).bind(user).fetch_all(&mut *c).await)?;
    Ok(rows)
}

/// Awards `rule` (for `subject`) unless the person has it; returns whether it was new.
pub async fn award(
    tx: &mut TenantTx,
    user: Uuid,
    rule: AchievementRule,
    subject: &str,
    detail: &str,
    now: OffsetDateTime,
) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let done = sql!(tx.conn() => |c| sqlx::query(
        "insert into achievements (tenant_id, id, user_id, rule, subject, detail, awarded_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (tenant_id, user_id, rule, subject) do nothing")
        .bind(tenant).bind(Uuid::now_v7()).bind(user).bind(rule.as_str()).bind(subject)
        .bind(detail).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// How many courses the person completed (earned or imported, each course once).
pub async fn completed_courses(tx: &mut TenantTx, user: Uuid) -> ApiResult<i64> {
    let tenant = tx.tenant();
    let n: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(distinct course_id) from (
             select course_id from enrolments where tenant_id = $1 and user_id = $2 and status = 'completed'
             union all
             select course_id from course_completions where tenant_id = $1 and user_id = $2
               and deleted_at is null) done")
        .bind(tenant).bind(user).fetch_one(&mut *c).await)?;
    Ok(n)
}

/// The person's department and whether they completed every published course of it (none:
/// no department, or it has no published courses).
pub async fn department_done(tx: &mut TenantTx, user: Uuid) -> ApiResult<Option<(Uuid, String)>> {
    let tenant = tx.tenant();
    let dept: Option<(Uuid, String)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select d.id, d.name from directory_people u
           join directory_departments d on d.tenant_id = u.tenant_id and d.id = u.department_id
          where u.tenant_id = $1 and u.id = $2")
        .bind(tenant).bind(user).fetch_optional(&mut *c).await)?;
    let Some((dept, name)) = dept else {
        return Ok(None);
    };
    let (courses, missing): (i64, i64) = sql!(tx.conn() => |c| sqlx::query_as(
        "select count(*), count(*) filter (where not exists (
                    select 1 from enrolments e where e.tenant_id = c.tenant_id and e.course_id = c.id
                       and e.user_id = $3 and e.status = 'completed')
                and not exists (
                    select 1 from course_completions cc where cc.tenant_id = c.tenant_id
                       and cc.course_id = c.id and cc.user_id = $3 and cc.deleted_at is null))
           from courses c
          where c.tenant_id = $1 and c.department_id = $2 and c.status = 'published'
            and c.deleted_at is null")
        .bind(tenant).bind(dept).bind(user).fetch_one(&mut *c).await)?;
    Ok((courses > 0 && missing == 0).then_some((dept, name)))
}

/// The days (in the tenant's calendar, given as `day_of`) on which the person completed a
/// lesson, from `since` on.
pub async fn learning_days(
    tx: &mut TenantTx,
    user: Uuid,
    since: OffsetDateTime,
    day_of: impl Fn(OffsetDateTime) -> Date,
) -> ApiResult<HashSet<Date>> {
    let tenant = tx.tenant();
    let times: Vec<OffsetDateTime> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select p.completed_at from lesson_progress p
           join enrolments e on e.tenant_id = p.tenant_id and e.id = p.enrolment_id
          where p.tenant_id = $1 and e.user_id = $2 and p.completed_at >= $3")
        .bind(tenant).bind(user).bind(since).fetch_all(&mut *c).await)?;
    Ok(times.into_iter().map(day_of).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skill_needs_a_name_and_one_to_ten_levels_of_criteria() {
        let ok = check_skill(SkillInput {
            name: "  Welding ".into(),
            category: Some(" ".into()),
            levels: vec!["Assists".into(), " Works alone ".into()],
            ..SkillInput::default()
        })
        .unwrap();
        assert_eq!(ok.name, "Welding");
        assert_eq!(ok.category, None);
        assert_eq!(ok.levels, ["Assists", "Works alone"]);
        for levels in [vec![], vec![String::new()], vec!["x".to_string(); 11]] {
            let bad = check_skill(SkillInput {
                name: "Welding".into(),
                levels,
                ..SkillInput::default()
            });
            assert!(bad.is_err());
        }
    }
}
