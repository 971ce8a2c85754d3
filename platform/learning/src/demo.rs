//! Learning's part of a tenant manifest: a catalogue (courses with modules, lessons and
//! prerequisites) and enrolments in several states, with lessons done. Everything goes through
//! this context's use cases, as the people the manifest names, so the demo's audit trail and
//! notifications are the product's own. Applying again leaves what exists as it is.

use std::{collections::BTreeMap, future::Future, pin::Pin};

use anyhow::Context;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use trainflow_kernel::{
    auth::{Permission, Role, TenantCtx},
    envelope::Page,
    manifest::{anyhow_api, Created, ManifestPart, ManifestScope},
};
use trainflow_renewals::{certs::TypeInput, service as renewal_service, Renewals};
use uuid::Uuid;

use crate::{
    assessments::{GivenAnswer, QuestionKind, TRUE_FALSE},
    catalogue::{
        CourseChange, CourseFilter, CourseStatus, Difficulty, LessonChange, LessonKind,
        ModuleChange,
    },
    service::{
        self, Assignees, Assignment, EnrolmentQuery, ProgressReport, QuestionChange, QuizSettings,
        Whose,
    },
    skills::CourseSkillKind,
    topics::TopicChange,
    Learning,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonSpec {
    title: String,
    kind: Option<String>,
    body: Option<String>,
    url: Option<String>,
    #[serde(default)]
    minutes: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleSpec {
    title: String,
    #[serde(default)]
    duration_hours: f64,
    #[serde(default)]
    lessons: Vec<LessonSpec>,
}

/// A topic of a course's syllabus, with its subtopics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicSpec {
    title: String,
    #[serde(default)]
    duration_hours: f64,
    #[serde(default)]
    subtopics: Vec<SubtopicSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubtopicSpec {
    title: String,
    #[serde(default)]
    duration_hours: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CourseSpec {
    code: String,
    title: String,
    category: Option<String>,
    difficulty: Option<String>,
    duration_hours: Option<f64>,
    description: Option<String>,
    /// Default `published`.
    status: Option<String>,
    #[serde(default = "yes")]
    self_enrol: bool,
    /// Codes of the courses to complete first.
    #[serde(default)]
    prerequisites: Vec<String>,
    #[serde(default)]
    modules: Vec<ModuleSpec>,
    /// The syllabus.
    #[serde(default)]
    topics: Vec<TopicSpec>,
    /// Months a certificate of the course is valid (none: it does not expire).
    certificate_months: Option<i32>,
    /// Codes of the certification types that require this course (completing it renews them).
    #[serde(default)]
    required_by: Vec<String>,
}

/// The quiz of an assessment lesson, with the questions of its bank.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuizSpec {
    /// The course's code.
    course: String,
    /// The assessment lesson's title.
    lesson: String,
    /// The bank's name (default: the lesson's title).
    bank: Option<String>,
    pass_percent: Option<i32>,
    time_limit_minutes: Option<i32>,
    max_attempts: Option<i32>,
    #[serde(default)]
    questions: Vec<QuestionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionSpec {
    prompt: String,
    /// `single_choice`, `multiple_choice`, `true_false` or `short_answer`.
    kind: String,
    #[serde(default)]
    options: Vec<String>,
    /// The right options by their text (`True` or `False` for a true/false question), or the
    /// accepted answers of a short-answer one.
    #[serde(default)]
    right: Vec<String>,
    points: Option<i32>,
}

impl QuestionSpec {
    fn kind(&self) -> anyhow::Result<QuestionKind> {
        QuestionKind::parse(&self.kind).with_context(|| format!("question kind {}", self.kind))
    }

    /// The options as the bank keeps them.
    fn options(&self) -> anyhow::Result<Vec<String>> {
        Ok(match self.kind()? {
            QuestionKind::TrueFalse => TRUE_FALSE.iter().map(|s| s.to_string()).collect(),
            QuestionKind::ShortAnswer => Vec::new(),
            _ => self.options.clone(),
        })
    }

    /// The indices of `shown` that are right.
    fn right_of(&self, shown: &[String]) -> Vec<i32> {
        (0..shown.len() as i32)
            .filter(|&i| self.right.contains(&shown[i as usize]))
            .collect()
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolmentSpec {
    /// The person's email.
    person: String,
    /// The course's code.
    course: String,
    /// Who assigned it (an email); none: the person enrolled themselves.
    assigned_by: Option<String>,
    /// Days after the day of applying (0 or more).
    due_in_days: Option<i64>,
    /// How many of the course's lessons, in order, the person has done.
    #[serde(default)]
    lessons_done: usize,
    /// Whether the person then passes the course's quizzes (answering every question right).
    #[serde(default)]
    quiz_passed: bool,
}

/// The part the server registers: learning's own use cases, and the renewals context's to
/// name the courses a certification type requires.
pub struct DemoPart(pub Learning, pub Renewals);

const SECTIONS: &[&str] = &["courses", "quizzes", "skills", "enrolments"];

/// A skill of the catalogue, the courses that teach it, and managers' assessments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SkillSpec {
    name: String,
    category: Option<String>,
    description: Option<String>,
    /// The criteria of each level, level 1 first.
    levels: Vec<String>,
    #[serde(default)]
    taught_by: Vec<CourseLevel>,
    #[serde(default)]
    required_by: Vec<CourseLevel>,
    #[serde(default)]
    assessed: Vec<Assessment>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CourseLevel {
    /// The course's code.
    course: String,
    level: i32,
}

/// A manager's assessment of a person's level (applied after the enrolments).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Assessment {
    person: String,
    by: String,
    level: i32,
    note: Option<String>,
}

fn section<T: for<'de> Deserialize<'de>>(
    sections: &BTreeMap<String, serde_json::Value>,
    key: &str,
) -> anyhow::Result<Vec<T>> {
    match sections.get(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).with_context(|| format!("section `{key}`")),
    }
}

impl ManifestPart for DemoPart {
    fn sections(&self) -> &'static [&'static str] {
        SECTIONS
    }

    fn apply<'a>(
        &'a self,
        scope: &'a ManifestScope<'a>,
        sections: &'a BTreeMap<String, serde_json::Value>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Created>> + Send + 'a>> {
        Box::pin(self.apply_sections(scope, sections))
    }
}

impl DemoPart {
    async fn apply_sections(
        &self,
        scope: &ManifestScope<'_>,
        sections: &BTreeMap<String, serde_json::Value>,
    ) -> anyhow::Result<Created> {
        let courses: Vec<CourseSpec> = section(sections, "courses")?;
        let enrolments: Vec<EnrolmentSpec> = section(sections, "enrolments")?;
        let quizzes: Vec<QuizSpec> = section(sections, "quizzes")?;
        let skill_specs: Vec<SkillSpec> = section(sections, "skills")?;
        if courses.is_empty() && enrolments.is_empty() {
            return Ok(Vec::new());
        }
        let svc = &self.0;
        let now = scope.now;
        // Who builds the catalogue: a training officer, else an administrator.
        let officer: &TenantCtx = scope.acting(Permission::CoursesManage, Role::TrainingOfficer)?;
        let all = Page::parse(Some(1), Some(100)).map_err(anyhow_api)?;
        let existing = service::list_courses(svc, officer, CourseFilter::default(), all)
            .await
            .map_err(anyhow_api)?
            .0;
        let mut made = 0;
        let mut new_courses = Vec::new();
        for c in &courses {
            if existing
                .iter()
                .any(|e| e.code.as_deref() == Some(c.code.as_str()))
            {
                continue;
            }
            let parse = |s: &Option<String>, field: &str| -> anyhow::Result<Option<Difficulty>> {
                s.as_deref()
                    .map(|d| Difficulty::parse(d).with_context(|| format!("{field}: {d}")))
                    .transpose()
            };
            let change = CourseChange {
                code: Some(c.code.clone()),
                title: Some(c.title.clone()),
                category: Some(c.category.clone()),
                difficulty: parse(&c.difficulty, "courses.difficulty")?,
                duration_hours: Some(c.duration_hours),
                description: Some(c.description.clone()),
                status: Some(CourseStatus::Draft),
                self_enrol: Some(c.self_enrol),
                certificate_months: Some(c.certificate_months),
                ..CourseChange::default()
            };
            let course = service::create_course(svc, officer, change, now)
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("course {}", c.code))?;
            for m in &c.modules {
                let module = service::add_module(
                    svc,
                    officer,
                    course.id,
                    ModuleChange {
                        title: Some(m.title.clone()),
                        duration_hours: Some(m.duration_hours),
                        ..ModuleChange::default()
                    },
                    now,
                )
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("module {} of {}", m.title, c.code))?;
                for l in &m.lessons {
                    let kind = match l.kind.as_deref() {
                        None => LessonKind::Text,
                        Some(k) => {
                            LessonKind::parse(k).with_context(|| format!("lesson kind {k}"))?
                        }
                    };
                    service::add_lesson(
                        svc,
                        officer,
                        module.id,
                        LessonChange {
                            title: Some(l.title.clone()),
                            kind: Some(kind),
                            body: Some(l.body.clone()),
                            url: Some(l.url.clone()),
                            duration_minutes: Some(l.minutes),
                            ..LessonChange::default()
                        },
                        now,
                    )
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("lesson {} of {}", l.title, c.code))?;
                }
            }
            for t in &c.topics {
                let topic = |title: &String, hours: f64| TopicChange {
                    title: Some(title.clone()),
                    duration_hours: Some(hours),
                    ..TopicChange::default()
                };
                let parent = service::add_topic(
                    svc,
                    officer,
                    course.id,
                    None,
                    topic(&t.title, t.duration_hours),
                    now,
                )
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("topic {} of {}", t.title, c.code))?;
                for st in &t.subtopics {
                    service::add_topic(
                        svc,
                        officer,
                        course.id,
                        Some(parent.id),
                        topic(&st.title, st.duration_hours),
                        now,
                    )
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("subtopic {} of {}", st.title, c.code))?;
                }
            }
            made += 1;
            new_courses.push(c.code.clone());
        }
        // Prerequisites and publication, once every course exists.
        let catalogue = service::list_courses(svc, officer, CourseFilter::default(), all)
            .await
            .map_err(anyhow_api)?
            .0;
        let id_of = |code: &str| {
            catalogue
                .iter()
                .find(|c| c.code.as_deref() == Some(code))
                .map(|c| c.id)
                .with_context(|| format!("unknown course {code}"))
        };
        let mut made_quizzes = 0;
        for q in quizzes.iter().filter(|q| new_courses.contains(&q.course)) {
            self.quiz(officer, id_of(&q.course)?, q, now)
                .await
                .with_context(|| format!("quiz {} of {}", q.lesson, q.course))?;
            made_quizzes += 1;
        }
        // Skills, with the new courses that teach and require them.
        let (known, _) = service::list_skills(svc, officer, None, false, all)
            .await
            .map_err(anyhow_api)?;
        let mut skill_ids = Vec::new();
        let mut made_skills = 0;
        for sk in &skill_specs {
            let id = match known.iter().find(|k| k.name.eq_ignore_ascii_case(&sk.name)) {
                Some(k) => k.id,
                None => {
                    made_skills += 1;
                    let change = service::SkillChange {
                        name: Some(sk.name.clone()),
                        category: Some(sk.category.clone()),
                        description: Some(sk.description.clone()),
                        levels: Some(sk.levels.clone()),
                    };
                    service::create_skill(svc, officer, change, now)
                        .await
                        .map_err(anyhow_api)
                        .with_context(|| format!("skill {}", sk.name))?
                        .id
                }
            };
            skill_ids.push(id);
        }
        for c in courses.iter().filter(|c| new_courses.contains(&c.code)) {
            let mut wanted = Vec::new();
            for (sk, id) in skill_specs.iter().zip(&skill_ids) {
                let kinds = [
                    (&sk.taught_by, CourseSkillKind::Teaches),
                    (&sk.required_by, CourseSkillKind::Requires),
                ];
                for (list, kind) in kinds {
                    for cl in list.iter().filter(|cl| cl.course == c.code) {
                        wanted.push((*id, kind, cl.level));
                    }
                }
            }
            if !wanted.is_empty() {
                service::set_course_skills(svc, officer, id_of(&c.code)?, wanted, now)
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("skills of {}", c.code))?;
            }
        }
        for c in courses.iter().filter(|c| new_courses.contains(&c.code)) {
            self.required_by(scope, id_of(&c.code)?, &c.required_by, now)
                .await
                .with_context(|| format!("certification types requiring {}", c.code))?;
        }
        for c in &courses {
            let id = id_of(&c.code)?;
            for p in &c.prerequisites {
                service::add_prerequisite(svc, officer, id, id_of(p)?, now)
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("prerequisite {p} of {}", c.code))?;
            }
            let wanted = match c.status.as_deref() {
                None => CourseStatus::Published,
                Some(s) => {
                    CourseStatus::parse(s).with_context(|| format!("courses.status: {s}"))?
                }
            };
            if catalogue.iter().any(|x| x.id == id && x.status != wanted) {
                let change = CourseChange {
                    status: Some(wanted),
                    ..CourseChange::default()
                };
                service::update_course(svc, officer, id, change, now)
                    .await
                    .map_err(anyhow_api)?;
            }
        }

        let mut enrolled = 0;
        for e in &enrolments {
            let person = scope.person("enrolments.person", &e.person)?;
            let course = id_of(&e.course)?;
            let mine = EnrolmentQuery {
                whose: Whose::Mine,
                user_id: None,
                course_id: Some(course),
                status: None,
            };
            let (had, _) = service::list_enrolments(svc, person, mine, all)
                .await
                .map_err(anyhow_api)?;
            if !had.is_empty() {
                continue;
            }
            let enrolment =
                match &e.assigned_by {
                    None => service::enrol_self(svc, person, course, now)
                        .await
                        .map_err(anyhow_api)
                        .with_context(|| format!("{} enrolling in {}", e.person, e.course))?,
                    Some(by) => {
                        let by = scope.person("enrolments.assigned_by", by)?;
                        let due = e
                            .due_in_days
                            .map(|d| (now + Duration::days(d.max(0))).date());
                        let result = service::assign(
                            svc,
                            by,
                            course,
                            Assignment {
                                to: Assignees::People(vec![person.user_id.0]),
                                due_on: due,
                                override_reason: None,
                            },
                            now,
                        )
                        .await
                        .map_err(anyhow_api)
                        .with_context(|| format!("assigning {} to {}", e.course, e.person))?;
                        result.enrolled.into_iter().next().with_context(|| {
                            format!("{} was not enrolled in {}", e.person, e.course)
                        })?
                    }
                };
            let detail = service::course_detail(svc, person, course)
                .await
                .map_err(anyhow_api)?;
            let lessons = detail.modules.iter().flat_map(|m| m.lessons.iter());
            for lesson in lessons.take(e.lessons_done) {
                service::record_progress(
                    svc,
                    person,
                    enrolment.id,
                    ProgressReport {
                        lesson_id: lesson.id,
                        completed: true,
                        seconds_spent: lesson.duration_minutes.max(1) * 60,
                    },
                    now,
                )
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("progress of {} in {}", e.person, e.course))?;
            }
            if e.quiz_passed {
                let course_quizzes: Vec<&QuizSpec> =
                    quizzes.iter().filter(|q| q.course == e.course).collect();
                for lesson in detail.modules.iter().flat_map(|m| m.lessons.iter()) {
                    if let Some(q) = course_quizzes.iter().find(|q| q.lesson == lesson.title) {
                        self.pass(person, lesson.id, q, now)
                            .await
                            .with_context(|| format!("{} passing {}", e.person, q.lesson))?;
                    }
                }
            }
            enrolled += 1;
        }
        if made_skills > 0 {
            for (sk, id) in skill_specs.iter().zip(&skill_ids) {
                for a in &sk.assessed {
                    let person = scope.person("skills.assessed.person", &a.person)?;
                    let by = scope.person("skills.assessed.by", &a.by)?;
                    service::assess_skill(
                        svc,
                        by,
                        person.user_id.0,
                        *id,
                        a.level,
                        a.note.clone(),
                        now,
                    )
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("{} assessing {} in {}", a.by, a.person, sk.name))?;
                }
            }
        }
        Ok(vec![
            ("courses", made),
            ("skills", made_skills),
            ("quizzes", made_quizzes),
            ("enrolments", enrolled),
        ])
    }

    /// Makes the bank of `q` in `course` and sets it as its lesson's quiz.
    async fn quiz(
        &self,
        officer: &TenantCtx,
        course: Uuid,
        q: &QuizSpec,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let svc = &self.0;
        let detail = service::course_detail(svc, officer, course)
            .await
            .map_err(anyhow_api)?;
        let lesson = detail
            .modules
            .iter()
            .flat_map(|m| m.lessons.iter())
            .find(|l| l.title == q.lesson)
            .context("no lesson of this title")?;
        let name = q.bank.clone().unwrap_or_else(|| q.lesson.clone());
        let bank = service::create_bank(svc, officer, course, &name, now)
            .await
            .map_err(anyhow_api)?;
        for question in &q.questions {
            let kind = question.kind()?;
            let options = question.options()?;
            let short = kind == QuestionKind::ShortAnswer;
            let change = QuestionChange {
                kind: Some(kind),
                prompt: Some(question.prompt.clone()),
                correct_options: (!short).then(|| question.right_of(&options)),
                options: (!short).then_some(options),
                accepted_answers: short.then(|| question.right.clone()),
                points: question.points,
            };
            service::add_question(svc, officer, bank.id, change, now)
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("question {}", question.prompt))?;
        }
        let settings = QuizSettings {
            bank_id: bank.id,
            selection: None,
            question_count: None,
            shuffle_options: Some(true),
            time_limit_minutes: q.time_limit_minutes,
            max_attempts: q.max_attempts,
            pass_percent: q.pass_percent,
            required: None,
        };
        service::set_quiz(svc, officer, lesson.id, settings, now)
            .await
            .map_err(anyhow_api)?;
        Ok(())
    }

    /// `person` takes the quiz of `lesson` and answers every question right.
    async fn pass(
        &self,
        person: &TenantCtx,
        lesson: Uuid,
        q: &QuizSpec,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let svc = &self.0;
        let attempt = service::start_attempt(svc, person, lesson, now)
            .await
            .map_err(anyhow_api)?;
        let answers = attempt
            .questions
            .iter()
            .filter_map(|asked| {
                let spec = q.questions.iter().find(|s| s.prompt == asked.prompt)?;
                Some(if asked.kind == QuestionKind::ShortAnswer {
                    GivenAnswer {
                        question_id: asked.question_id,
                        choices: Vec::new(),
                        text: spec.right.first().cloned(),
                    }
                } else {
                    GivenAnswer {
                        question_id: asked.question_id,
                        choices: spec.right_of(&asked.options),
                        text: None,
                    }
                })
            })
            .collect();
        let after = service::submit_attempt(svc, person, attempt.attempt.id, answers, now)
            .await
            .map_err(anyhow_api)?;
        anyhow::ensure!(
            after.attempt.passed == Some(true),
            "the answers did not pass"
        );
        Ok(())
    }

    /// Adds `course` to the courses each certification type of `codes` requires.
    async fn required_by(
        &self,
        scope: &ManifestScope<'_>,
        course: Uuid,
        codes: &[String],
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        if codes.is_empty() {
            return Ok(());
        }
        let renewals = &self.1;
        let officer = scope.acting(Permission::CertificationsManage, Role::Administrator)?;
        let (types, _) = renewal_service::list_types(renewals, officer, None)
            .await
            .map_err(anyhow_api)?;
        for code in codes {
            let t = types
                .iter()
                .find(|t| &t.code == code)
                .with_context(|| format!("unknown certification type {code}"))?;
            let mut required = t.required_courses.clone();
            if required.contains(&course) {
                continue;
            }
            required.push(course);
            let input = TypeInput {
                required_courses: Some(required),
                ..TypeInput::default()
            };
            renewal_service::update_type(renewals, officer, t.id, input, now)
                .await
                .map_err(anyhow_api)?;
        }
        Ok(())
    }
}
