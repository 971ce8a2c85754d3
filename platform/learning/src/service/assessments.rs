//! The use cases of assessments: question banks and their questions (those who manage courses),
//! a lesson's quiz, and attempts — started, answered and reviewed by the person enrolled,
//! reviewed by their foreman or manager and by the catalogue's builders.

use poem_openapi::Object;
use serde::Serialize;
use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    db::TenantTx,
    ApiError, ApiResult,
};
use uuid::Uuid;

use super::{advance, conflict_on, json, standing, visible_course};
use crate::{
    assessments::{
        self, Attempt, AttemptStatus, Bank, GivenAnswer, Question, QuestionInput, QuestionKind,
        Quiz, Selection, MAX_ATTEMPTS, MAX_QUIZ_QUESTIONS, MAX_TIME_LIMIT,
    },
    catalogue::{self, LessonKind},
    enrolments::{self, Enrolment},
    live::Live,
    Learning,
};

// ---------------------------------------------------------------------------------------------
// Banks and questions

/// A bank with its questions and their answers.
#[derive(Debug, Clone, Object, Serialize)]
pub struct BankDetail {
    pub bank: Bank,
    pub questions: Vec<Question>,
    /// Its deleted questions, which can be restored.
    pub deleted_questions: Vec<Question>,
}

/// A bank's name as given: trimmed, 1–200 characters.
fn bank_name(raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", "must be 1–200 characters"));
    }
    Ok(name.to_string())
}

/// The question banks of a course (its deleted ones with `deleted`).
pub async fn list_banks(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    deleted: bool,
) -> ApiResult<Vec<Bank>> {
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    catalogue::get(&mut tx, course, false).await?;
    let banks = assessments::banks(&mut tx, course, deleted).await?;
    tx.commit().await?;
    Ok(banks)
}

/// Adds a question bank to a course.
pub async fn create_bank(
    svc: &Learning,
    ctx: &TenantCtx,
    course: Uuid,
    name: &str,
    now: OffsetDateTime,
) -> ApiResult<Bank> {
    let name = bank_name(name)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    catalogue::get(&mut tx, course, false).await?;
    let id = assessments::save_bank(&mut tx, course, None, &name, now)
        .await
        .map_err(|e| conflict_on(e, "name", "the course has a question bank of this name"))?;
    let bank = assessments::get_bank(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "question_bank.create")
            .object("question_bank", id)
            .change(None, json(&bank)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(bank)
}

/// A bank with its questions.
pub async fn bank_detail(svc: &Learning, ctx: &TenantCtx, id: Uuid) -> ApiResult<BankDetail> {
    let (mut tx, _) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let bank = assessments::get_bank(&mut tx, id, false).await?;
    let questions = assessments::questions(&mut tx, id, false).await?;
    let deleted_questions = assessments::questions(&mut tx, id, true).await?;
    tx.commit().await?;
    Ok(BankDetail {
        bank,
        questions,
        deleted_questions,
    })
}

/// Renames a bank.
pub async fn rename_bank(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    name: &str,
    now: OffsetDateTime,
) -> ApiResult<Bank> {
    let name = bank_name(name)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let before = assessments::get_bank(&mut tx, id, false).await?;
    assessments::save_bank(&mut tx, before.course_id, Some(id), &name, now)
        .await
        .map_err(|e| conflict_on(e, "name", "the course has a question bank of this name"))?;
    let after = assessments::get_bank(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "question_bank.update")
            .object("question_bank", id)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes (`deleted`) or restores a bank. A bank a quiz draws from is not deleted.
pub async fn set_bank_deleted(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Bank> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let bank = assessments::get_bank(&mut tx, id, !deleted).await?;
    if deleted && assessments::bank_in_use(&mut tx, id).await? {
        return Err(ApiError::Conflict {
            field: "bank_id".into(),
            message: "a quiz draws from this bank: give the quiz another bank first".into(),
        });
    }
    assessments::set_bank_deleted(&mut tx, &bank, deleted, now)
        .await
        .map_err(|e| conflict_on(e, "name", "the course has a question bank of this name"))?;
    let action = if deleted {
        "question_bank.delete"
    } else {
        "question_bank.restore"
    };
    audit::record(
        &mut tx,
        Entry::by(&ctx, action).object("question_bank", id),
        now,
    )
    .await?;
    let after = assessments::get_bank(&mut tx, id, deleted).await?;
    tx.commit().await?;
    Ok(after)
}

/// What a question change gives: every field for a new question, only those it changes for an
/// edit (`None` keeps the value).
#[derive(Debug, Clone, Default)]
pub struct QuestionChange {
    pub kind: Option<QuestionKind>,
    pub prompt: Option<String>,
    pub options: Option<Vec<String>>,
    pub correct_options: Option<Vec<i32>>,
    pub accepted_answers: Option<Vec<String>>,
    pub points: Option<i32>,
}

impl QuestionChange {
    /// The question this change makes of `current` (or of nothing).
    fn apply(self, current: Option<&Question>) -> ApiResult<QuestionInput> {
        let base = current.map(QuestionInput::from);
        let kind = self
            .kind
            .or(base.as_ref().map(|b| b.kind))
            .ok_or_else(|| ApiError::field("kind", "is required"))?;
        // A question that changes kind starts its options and answers afresh.
        let keep = base.filter(|b| b.kind == kind);
        Ok(QuestionInput {
            kind,
            prompt: self
                .prompt
                .or(keep.as_ref().map(|b| b.prompt.clone()))
                .or(current.map(|q| q.prompt.clone()))
                .unwrap_or_default(),
            options: self
                .options
                .or(keep.as_ref().map(|b| b.options.clone()))
                .unwrap_or_default(),
            correct_options: self
                .correct_options
                .or(keep.as_ref().map(|b| b.correct_options.clone()))
                .unwrap_or_default(),
            accepted_answers: self
                .accepted_answers
                .or(keep.as_ref().map(|b| b.accepted_answers.clone()))
                .unwrap_or_default(),
            points: self.points.or(current.map(|q| q.points)).unwrap_or(1),
        })
    }
}

/// Adds a question to a bank.
pub async fn add_question(
    svc: &Learning,
    ctx: &TenantCtx,
    bank: Uuid,
    change: QuestionChange,
    now: OffsetDateTime,
) -> ApiResult<Question> {
    let input = assessments::check_question(change.apply(None)?)?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    assessments::get_bank(&mut tx, bank, false).await?;
    let id = assessments::save_question(&mut tx, bank, None, &input, now).await?;
    let question = assessments::get_question(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "question.create")
            .object("question", id)
            .change(None, json(&question)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(question)
}

/// Changes a question (attempts already started keep the paper they were given).
pub async fn update_question(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    change: QuestionChange,
    now: OffsetDateTime,
) -> ApiResult<Question> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let before = assessments::get_question(&mut tx, id, false).await?;
    let input = assessments::check_question(change.apply(Some(&before))?)?;
    assessments::save_question(&mut tx, before.bank_id, Some(id), &input, now).await?;
    let after = assessments::get_question(&mut tx, id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "question.update")
            .object("question", id)
            .change(json(&before), json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes (`deleted`) or restores a question.
pub async fn set_question_deleted(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<Question> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let q = assessments::get_question(&mut tx, id, !deleted).await?;
    assessments::get_bank(&mut tx, q.bank_id, false).await?;
    assessments::set_question_deleted(&mut tx, id, deleted, now).await?;
    let action = if deleted {
        "question.delete"
    } else {
        "question.restore"
    };
    audit::record(&mut tx, Entry::by(&ctx, action).object("question", id), now).await?;
    let after = assessments::get_question(&mut tx, id, deleted).await?;
    tx.commit().await?;
    Ok(after)
}

// ---------------------------------------------------------------------------------------------
// Quizzes

/// How a lesson's quiz is set: `bank_id` is required, the rest have defaults.
#[derive(Debug, Clone)]
pub struct QuizSettings {
    pub bank_id: Uuid,
    pub selection: Option<Selection>,
    pub question_count: Option<i32>,
    pub shuffle_options: Option<bool>,
    pub time_limit_minutes: Option<i32>,
    pub max_attempts: Option<i32>,
    pub pass_percent: Option<i32>,
    /// Whether completing the course needs the quiz passed (default true).
    pub required: Option<bool>,
}

/// The default pass mark.
pub const DEFAULT_PASS_PERCENT: i32 = 70;

/// Sets (or replaces) the quiz of an assessment lesson, which then counts towards the course's
/// completion unless `required` is false.
pub async fn set_quiz(
    svc: &Learning,
    ctx: &TenantCtx,
    lesson: Uuid,
    s: QuizSettings,
    now: OffsetDateTime,
) -> ApiResult<Quiz> {
    let mut e = trainflow_kernel::FieldErrors::new();
    if s.question_count
        .is_some_and(|n| !(1..=MAX_QUIZ_QUESTIONS).contains(&n))
    {
        e.add(
            "question_count",
            format!("must be between 1 and {MAX_QUIZ_QUESTIONS}"),
        );
    }
    if s.time_limit_minutes
        .is_some_and(|n| !(1..=MAX_TIME_LIMIT).contains(&n))
    {
        e.add(
            "time_limit_minutes",
            format!("must be between 1 and {MAX_TIME_LIMIT}"),
        );
    }
    if s.max_attempts
        .is_some_and(|n| !(1..=MAX_ATTEMPTS).contains(&n))
    {
        e.add(
            "max_attempts",
            format!("must be between 1 and {MAX_ATTEMPTS}"),
        );
    }
    if s.pass_percent.is_some_and(|n| !(0..=100).contains(&n)) {
        e.add("pass_percent", "must be between 0 and 100");
    }
    e.into_result()?;
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::CoursesManage).await?;
    let l = catalogue::get_lesson(&mut tx, lesson, false).await?;
    if l.kind != LessonKind::Assessment {
        return Err(ApiError::Conflict {
            field: "kind".into(),
            message: format!(
                "the lesson is a {} lesson: only an assessment has a quiz",
                l.kind.as_str()
            ),
        });
    }
    let bank = assessments::get_bank(&mut tx, s.bank_id, false)
        .await
        .ok()
        .filter(|b| b.course_id == l.course_id)
        .ok_or_else(|| {
            ApiError::field("bank_id", "is not a question bank of the lesson's course")
        })?;
    let before = assessments::quiz(&mut tx, lesson).await?;
    let quiz = Quiz {
        lesson_id: lesson,
        course_id: l.course_id,
        bank_id: bank.id,
        selection: s.selection.unwrap_or(Selection::Fixed),
        question_count: s.question_count,
        shuffle_options: s.shuffle_options.unwrap_or(true),
        time_limit_minutes: s.time_limit_minutes,
        max_attempts: s.max_attempts,
        pass_percent: s.pass_percent.unwrap_or(DEFAULT_PASS_PERCENT),
    };
    assessments::save_quiz(&mut tx, &quiz, now).await?;
    catalogue::set_lesson_required(&mut tx, lesson, s.required.unwrap_or(true), now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "quiz.set")
            .object("course_lesson", lesson)
            .change(before.as_ref().and_then(json), json(&quiz)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(quiz)
}

/// One attempt in a list.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AttemptSummary {
    pub id: Uuid,
    pub number: i32,
    pub status: AttemptStatus,
    pub score: Option<i32>,
    pub max_score: i32,
    pub percent: Option<i32>,
    pub passed: Option<bool>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deadline_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub submitted_at: Option<OffsetDateTime>,
}

impl From<&Attempt> for AttemptSummary {
    fn from(a: &Attempt) -> Self {
        AttemptSummary {
            id: a.id,
            number: a.number,
            status: a.status,
            score: a.score,
            max_score: a.max_score,
            percent: a.percent,
            passed: a.passed,
            started_at: a.started_at,
            deadline_at: a.deadline_at,
            submitted_at: a.submitted_at,
        }
    }
}

/// A lesson's quiz as the person about to take it sees it.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct QuizView {
    pub quiz: Quiz,
    pub lesson_title: String,
    /// Questions an attempt gets now.
    pub questions_per_attempt: i32,
    /// The caller's open enrolment in the course, if any (attempts need one).
    pub enrolment_id: Option<Uuid>,
    /// The caller's attempts, by number.
    pub attempts: Vec<AttemptSummary>,
    /// Attempts the caller has left (none: no limit).
    pub attempts_left: Option<i32>,
    /// Whether the caller passed it.
    pub passed: bool,
}

/// A lesson's quiz and the caller's attempts at it.
pub async fn quiz_view(svc: &Learning, ctx: &TenantCtx, lesson: Uuid) -> ApiResult<QuizView> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let l = catalogue::get_lesson(&mut tx, lesson, false).await?;
    visible_course(&mut tx, &ctx, l.course_id).await?;
    let quiz = live_quiz(&mut tx, &l).await?;
    let available = assessments::questions(&mut tx, quiz.bank_id, false)
        .await?
        .len() as i32;
    let enrolment = enrolments::open_of(&mut tx, ctx.user_id.0, l.course_id).await?;
    let mine = match &enrolment {
        Some(e) => assessments::attempts(&mut tx, e.id, lesson).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    Ok(QuizView {
        questions_per_attempt: quiz.question_count.map_or(available, |n| n.min(available)),
        lesson_title: l.title,
        enrolment_id: enrolment.map(|e| e.id),
        passed: mine.iter().any(|a| a.passed == Some(true)),
        attempts_left: quiz.max_attempts.map(|m| (m - mine.len() as i32).max(0)),
        attempts: mine.iter().map(AttemptSummary::from).collect(),
        quiz,
    })
}

/// The quiz of a live assessment lesson; 404 when it has none.
async fn live_quiz(tx: &mut TenantTx, l: &catalogue::Lesson) -> ApiResult<Quiz> {
    if l.kind != LessonKind::Assessment {
        return Err(ApiError::NotFound);
    }
    assessments::quiz(tx, l.id).await?.ok_or(ApiError::NotFound)
}

// ---------------------------------------------------------------------------------------------
// Attempts

/// One question of an attempt: before submission only what is asked; after it also what was
/// answered, what was right, and the points earned.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AttemptQuestion {
    pub question_id: Uuid,
    pub kind: QuestionKind,
    pub prompt: String,
    /// In the order shown; answers name them by index from 0.
    pub options: Vec<String>,
    pub points: i32,
    /// Options chosen (after submission).
    pub chosen: Option<Vec<i32>>,
    /// The text answered (after submission).
    pub text: Option<String>,
    /// The right options (after submission).
    pub correct_options: Option<Vec<i32>>,
    /// The answers accepted (after submission).
    pub accepted_answers: Option<Vec<String>>,
    /// Whether the answer was right (after submission).
    pub right: Option<bool>,
}

/// An attempt with its questions.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AttemptView {
    #[oai(flatten)]
    #[serde(flatten)]
    pub attempt: AttemptSummary,
    pub lesson_id: Uuid,
    pub enrolment_id: Uuid,
    pub user_id: Uuid,
    pub pass_percent: i32,
    pub questions: Vec<AttemptQuestion>,
}

fn view_of(a: &Attempt, pass_percent: i32) -> AttemptView {
    let closed = a.status != AttemptStatus::InProgress;
    let answers: Vec<GivenAnswer> = a.answers.as_ref().map(|j| j.0.clone()).unwrap_or_default();
    let questions = a
        .paper
        .iter()
        .map(|item| {
            let given = answers.iter().find(|g| g.question_id == item.question_id);
            AttemptQuestion {
                question_id: item.question_id,
                kind: item.kind,
                prompt: item.prompt.clone(),
                options: item.options.clone(),
                points: item.points,
                chosen: closed.then(|| given.map(|g| g.choices.clone()).unwrap_or_default()),
                text: given.and_then(|g| g.text.clone()).filter(|_| closed),
                correct_options: closed.then(|| item.correct.clone()),
                accepted_answers: (closed && item.kind == QuestionKind::ShortAnswer)
                    .then(|| item.accepted.clone()),
                right: closed.then(|| assessments::is_right(item, given)),
            }
        })
        .collect();
    AttemptView {
        attempt: AttemptSummary::from(a),
        lesson_id: a.lesson_id,
        enrolment_id: a.enrolment_id,
        user_id: a.user_id,
        pass_percent,
        questions,
    }
}

/// The caller's open enrolment in `course`, locked for the attempt's changes.
async fn own_open_enrolment(
    tx: &mut TenantTx,
    ctx: &TenantCtx,
    course: Uuid,
    now: OffsetDateTime,
) -> ApiResult<Enrolment> {
    let e = enrolments::open_of(tx, ctx.user_id.0, course)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            field: "enrolment".into(),
            message: "enrol in the course before taking its quiz".into(),
        })?;
    if !enrolments::lock_open(tx, e.id, now).await? {
        return Err(ApiError::Conflict {
            field: "enrolment".into(),
            message: "the enrolment closed meanwhile".into(),
        });
    }
    enrolments::get(tx, e.id).await
}

/// Starts an attempt at a lesson's quiz, or hands back the one in progress. An attempt whose
/// time ran out is closed as timed out first. Refused (409) without an open enrolment, after
/// a pass, when no attempts are left, or when the bank has no questions.
pub async fn start_attempt(
    svc: &Learning,
    ctx: &TenantCtx,
    lesson: Uuid,
    now: OffsetDateTime,
) -> ApiResult<AttemptView> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let l = catalogue::get_lesson(&mut tx, lesson, false).await?;
    visible_course(&mut tx, &ctx, l.course_id).await?;
    let quiz = live_quiz(&mut tx, &l).await?;
    let e = own_open_enrolment(&mut tx, &ctx, l.course_id, now).await?;
    let mut earlier = assessments::attempts(&mut tx, e.id, lesson).await?;
    if let Some(open) = earlier
        .iter_mut()
        .find(|a| a.status == AttemptStatus::InProgress)
    {
        if !open.is_late(now) {
            let view = view_of(open, quiz.pass_percent);
            tx.commit().await?;
            return Ok(view);
        }
        assessments::close_attempt(
            &mut tx,
            open.id,
            AttemptStatus::TimedOut,
            None,
            0,
            0,
            false,
            now,
        )
        .await?;
        open.status = AttemptStatus::TimedOut;
    }
    if earlier.iter().any(|a| a.passed == Some(true)) {
        return Err(ApiError::Conflict {
            field: "passed".into(),
            message: "you passed this quiz already".into(),
        });
    }
    if quiz.max_attempts.is_some_and(|m| earlier.len() as i32 >= m) {
        // The time-out above is kept: it is what happened.
        tx.commit().await?;
        return Err(ApiError::Conflict {
            field: "max_attempts".into(),
            message: format!(
                "all {} attempts at this quiz are used",
                quiz.max_attempts.unwrap_or_default()
            ),
        });
    }
    let questions = assessments::questions(&mut tx, quiz.bank_id, false).await?;
    let paper = assessments::draw(&quiz, &questions);
    if paper.is_empty() {
        return Err(ApiError::Conflict {
            field: "questions".into(),
            message: "the quiz has no questions yet".into(),
        });
    }
    let attempt = Attempt {
        id: Uuid::now_v7(),
        lesson_id: lesson,
        enrolment_id: e.id,
        user_id: e.user_id,
        number: earlier.len() as i32 + 1,
        status: AttemptStatus::InProgress,
        max_score: paper.iter().map(|p| p.points).sum(),
        paper,
        answers: None,
        score: None,
        percent: None,
        passed: None,
        started_at: now,
        deadline_at: quiz
            .time_limit_minutes
            .map(|m| now + time::Duration::minutes(i64::from(m))),
        submitted_at: None,
    };
    assessments::insert_attempt(&mut tx, &attempt)
        .await
        .map_err(|e| conflict_on(e, "attempt", "another attempt was started meanwhile"))?;
    // Starting the quiz starts the lesson (and a scheduled enrolment).
    let lessons = catalogue::lessons(&mut tx, l.course_id).await?;
    let (_, change) = advance(&mut tx, &ctx, &e, &lessons, lesson, false, 0, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "quiz_attempt.start")
            .object("quiz_attempt", attempt.id)
            .detail(serde_json::json!({"lesson_id": lesson, "number": attempt.number})),
        now,
    )
    .await?;
    let pending = Live::announce(&mut tx, change).await?;
    tx.commit().await?;
    svc.live.published(pending);
    Ok(view_of(&attempt, quiz.pass_percent))
}

/// An attempt: to the person, their foreman and manager, and those who manage courses. The
/// answers are shown only once it is closed.
pub async fn attempt_view(svc: &Learning, ctx: &TenantCtx, id: Uuid) -> ApiResult<AttemptView> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let a = assessments::get_attempt(&mut tx, id).await?;
    standing(&mut tx, &ctx, a.enrolment_id).await?;
    let pass = pass_percent(&mut tx, a.lesson_id).await?;
    tx.commit().await?;
    Ok(view_of(&a, pass))
}

async fn pass_percent(tx: &mut TenantTx, lesson: Uuid) -> ApiResult<i32> {
    Ok(assessments::quiz(tx, lesson)
        .await?
        .map_or(DEFAULT_PASS_PERCENT, |q| q.pass_percent))
}

/// Submits the answers of one's attempt in progress: scored against its paper, passed at the
/// quiz's pass mark, and (passed) the assessment lesson completed — which may complete the
/// course and issue its certificate. After the time limit the attempt closes as timed out with
/// nothing scored. A second submission changes nothing (409).
pub async fn submit_attempt(
    svc: &Learning,
    ctx: &TenantCtx,
    id: Uuid,
    answers: Vec<GivenAnswer>,
    now: OffsetDateTime,
) -> ApiResult<AttemptView> {
    let (mut tx, ctx) = TenantTx::begin(&svc.db, ctx, Permission::SelfService).await?;
    let a = assessments::get_attempt(&mut tx, id).await?;
    standing(&mut tx, &ctx, a.enrolment_id).await?;
    // Only the person answers; those who may see the attempt only review it.
    if a.user_id != ctx.user_id.0 {
        return Err(ApiError::Forbidden);
    }
    if a.status != AttemptStatus::InProgress {
        return Err(already_closed(&a));
    }
    assessments::check_answers(&a.paper, &answers)?;
    let l = catalogue::get_lesson(&mut tx, a.lesson_id, false).await?;
    let e = own_open_enrolment(&mut tx, &ctx, l.course_id, now).await?;
    if e.id != a.enrolment_id {
        return Err(ApiError::Conflict {
            field: "enrolment".into(),
            message: "the enrolment of this attempt is closed".into(),
        });
    }
    let pass = pass_percent(&mut tx, a.lesson_id).await?;
    let late = a.is_late(now);
    let (status, score) = if late {
        (AttemptStatus::TimedOut, 0)
    } else {
        (
            AttemptStatus::Submitted,
            assessments::score(&a.paper, &answers),
        )
    };
    let percent = if a.max_score > 0 {
        score * 100 / a.max_score
    } else {
        0
    };
    let passed = !late && percent >= pass;
    let stored = (!late).then_some(answers.as_slice());
    if !assessments::close_attempt(&mut tx, id, status, stored, score, percent, passed, now).await?
    {
        let current = assessments::get_attempt(&mut tx, id).await?;
        return Err(already_closed(&current));
    }
    let seconds = (now - a.started_at)
        .whole_seconds()
        .clamp(0, i64::from(super::MAX_REPORT_SECONDS)) as i32;
    let lessons = catalogue::lessons(&mut tx, l.course_id).await?;
    let (_, change) = advance(&mut tx, &ctx, &e, &lessons, l.id, passed, seconds, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "quiz_attempt.submit")
            .object("quiz_attempt", id)
            .detail(serde_json::json!({
                "status": status.as_str(), "score": score, "percent": percent, "passed": passed,
            })),
        now,
    )
    .await?;
    let after = assessments::get_attempt(&mut tx, id).await?;
    let pending = Live::announce(&mut tx, change).await?;
    tx.commit().await?;
    svc.live.published(pending);
    Ok(view_of(&after, pass))
}

fn already_closed(a: &Attempt) -> ApiError {
    let when = a
        .submitted_at
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    ApiError::Conflict {
        field: "status".into(),
        message: format!(
            "the attempt was {} at {when}: its answers are final",
            a.status.as_str().replace('_', " ")
        ),
    }
}
