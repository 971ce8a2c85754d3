//! Assessments: question banks per course, the quiz of an assessment lesson drawn from one of
//! them, and attempts. An attempt keeps the paper it was given (the questions drawn, options in
//! the order shown, and their answers), so editing the bank later changes neither what was
//! asked nor how it was scored; the answers leave the server only after submission. Scoring is
//! all or nothing per question: the one right option, exactly the right set of options, or a
//! short answer matching an accepted one (case, spacing and surrounding punctuation aside).

use std::collections::{HashMap, HashSet};

use poem_openapi::Object;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, ApiError, ApiResult, FieldErrors};
use uuid::Uuid;

use crate::text_enum;

text_enum! {
    /// How a question is answered: one option, several options, true or false, or a short text.
    QuestionKind {
        SingleChoice = "single_choice",
        MultipleChoice = "multiple_choice",
        TrueFalse = "true_false",
        ShortAnswer = "short_answer",
    }
}

text_enum! {
    /// Which questions an attempt gets: the bank's, in the bank's order (`fixed`), or drawn at
    /// random for each attempt (`random`).
    Selection {
        Fixed = "fixed",
        Random = "random",
    }
}

text_enum! {
    /// Where an attempt is: being answered, submitted (and scored), or past its time limit.
    AttemptStatus {
        InProgress = "in_progress",
        Submitted = "submitted",
        TimedOut = "timed_out",
    }
}

/// The longest prompt.
pub const MAX_PROMPT: usize = 2000;
/// The most options of a choice question.
pub const MAX_OPTIONS: usize = 10;
/// The longest option or accepted answer.
pub const MAX_OPTION: usize = 500;
/// The most accepted answers of a short-answer question.
pub const MAX_ACCEPTED: usize = 20;
/// The most points a question is worth.
pub const MAX_POINTS: i32 = 100;
/// The most questions of a quiz.
pub const MAX_QUIZ_QUESTIONS: i32 = 200;
/// The longest time limit, in minutes.
pub const MAX_TIME_LIMIT: i32 = 600;
/// The most attempts a quiz may allow.
pub const MAX_ATTEMPTS: i32 = 100;
/// How late a submission may arrive after the time limit and still count (network delay).
pub const GRACE_SECONDS: i64 = 30;
/// The options of a true/false question.
pub const TRUE_FALSE: [&str; 2] = ["True", "False"];

/// A question bank of a course.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Bank {
    pub id: Uuid,
    pub course_id: Uuid,
    /// Unique among the course's live banks.
    pub name: String,
    /// Its live questions.
    pub question_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

/// A question with its answers (what the bank's builders see).
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Question {
    pub id: Uuid,
    pub bank_id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: QuestionKind,
    pub prompt: String,
    /// The options of a choice question (`True`, `False` for a true/false one).
    #[sqlx(json)]
    pub options: Vec<String>,
    /// The right options, by index from 0.
    #[sqlx(json)]
    pub correct_options: Vec<i32>,
    /// The answers a short-answer question accepts.
    #[sqlx(json)]
    pub accepted_answers: Vec<String>,
    pub points: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

const QUESTION_COLUMNS: &str = "id, bank_id, kind, prompt, options, correct as correct_options, \
     accepted as accepted_answers, points, deleted_at";

/// A question as its builder writes it; [`check_question`] says what is wrong with it.
#[derive(Debug, Clone)]
pub struct QuestionInput {
    pub kind: QuestionKind,
    pub prompt: String,
    pub options: Vec<String>,
    pub correct_options: Vec<i32>,
    pub accepted_answers: Vec<String>,
    pub points: i32,
}

impl From<&Question> for QuestionInput {
    fn from(q: &Question) -> Self {
        QuestionInput {
            kind: q.kind,
            prompt: q.prompt.clone(),
            options: q.options.clone(),
            correct_options: q.correct_options.clone(),
            accepted_answers: q.accepted_answers.clone(),
            points: q.points,
        }
    }
}

/// `q` made consistent (trimmed; a true/false question's options are `True`, `False`), or the
/// fields that are wrong.
pub fn check_question(mut q: QuestionInput) -> ApiResult<QuestionInput> {
    let mut e = FieldErrors::new();
    q.prompt = q.prompt.trim().to_string();
    if q.prompt.is_empty() || q.prompt.chars().count() > MAX_PROMPT {
        e.add("prompt", format!("must be 1–{MAX_PROMPT} characters"));
    }
    if !(1..=MAX_POINTS).contains(&q.points) {
        e.add("points", format!("must be between 1 and {MAX_POINTS}"));
    }
    q.options = q.options.iter().map(|o| o.trim().to_string()).collect();
    q.accepted_answers = q
        .accepted_answers
        .iter()
        .map(|a| a.trim().to_string())
        .collect();
    match q.kind {
        QuestionKind::TrueFalse => {
            if !q.options.is_empty() && q.options != TRUE_FALSE {
                e.add(
                    "options",
                    "a true/false question has the options True and False",
                );
            }
            q.options = TRUE_FALSE.iter().map(|s| s.to_string()).collect();
            if q.correct_options.len() != 1 || !(0..=1).contains(&q.correct_options[0]) {
                e.add("correct_options", "must be [0] (true) or [1] (false)");
            }
            if !q.accepted_answers.is_empty() {
                e.add("accepted_answers", "only a short-answer question has them");
            }
        }
        QuestionKind::SingleChoice | QuestionKind::MultipleChoice => {
            let n = q.options.len();
            if !(2..=MAX_OPTIONS).contains(&n) {
                e.add(
                    "options",
                    format!("a choice question has 2–{MAX_OPTIONS} options"),
                );
            } else if q
                .options
                .iter()
                .any(|o| o.is_empty() || o.chars().count() > MAX_OPTION)
            {
                e.add(
                    "options",
                    format!("each option is 1–{MAX_OPTION} characters"),
                );
            } else if q.options.iter().collect::<HashSet<_>>().len() != n {
                e.add("options", "options must differ from one another");
            }
            let distinct: HashSet<i32> = q.correct_options.iter().copied().collect();
            if distinct.len() != q.correct_options.len()
                || q.correct_options.iter().any(|&i| i < 0 || i as usize >= n)
            {
                e.add("correct_options", "must name options by index, each once");
            } else if q.kind == QuestionKind::SingleChoice && q.correct_options.len() != 1 {
                e.add(
                    "correct_options",
                    "a single-choice question has one right option",
                );
            } else if q.correct_options.is_empty() {
                e.add("correct_options", "at least one option is right");
            }
            q.correct_options.sort_unstable();
            if !q.accepted_answers.is_empty() {
                e.add("accepted_answers", "only a short-answer question has them");
            }
        }
        QuestionKind::ShortAnswer => {
            if !q.options.is_empty() {
                e.add("options", "a short-answer question has no options");
            }
            if !q.correct_options.is_empty() {
                e.add("correct_options", "a short-answer question has no options");
            }
            let n = q.accepted_answers.len();
            if !(1..=MAX_ACCEPTED).contains(&n) {
                e.add(
                    "accepted_answers",
                    format!("1–{MAX_ACCEPTED} accepted answers"),
                );
            } else if q
                .accepted_answers
                .iter()
                .any(|a| normalise_text(a).is_empty() || a.chars().count() > MAX_OPTION)
            {
                e.add(
                    "accepted_answers",
                    format!("each accepted answer is 1–{MAX_OPTION} characters of text"),
                );
            }
        }
    }
    e.into_result()?;
    Ok(q)
}

/// A short answer as compared: lower case, inner spaces collapsed, punctuation around it gone.
pub fn normalise_text(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches(|c: char| c.is_ascii_punctuation())
        .trim()
        .to_lowercase()
}

/// A quiz: how an assessment lesson's attempts are drawn and passed.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
#[oai(skip_serializing_if_is_none)]
pub struct Quiz {
    pub lesson_id: Uuid,
    pub course_id: Uuid,
    pub bank_id: Uuid,
    #[sqlx(try_from = "String")]
    pub selection: Selection,
    /// Questions per attempt (none: all of the bank's).
    pub question_count: Option<i32>,
    /// Whether each attempt shows a choice question's options in its own order.
    pub shuffle_options: bool,
    /// Minutes an attempt has (none: no limit).
    pub time_limit_minutes: Option<i32>,
    /// Attempts a person may make (none: no limit).
    pub max_attempts: Option<i32>,
    /// The score, in percent of the points, that passes.
    pub pass_percent: i32,
}

const QUIZ_COLUMNS: &str = "lesson_id, course_id, bank_id, selection, question_count, \
     shuffle_options, time_limit_minutes, max_attempts, pass_percent";

/// One question of an attempt's paper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaperItem {
    pub question_id: Uuid,
    pub kind: QuestionKind,
    pub prompt: String,
    /// In the order shown.
    pub options: Vec<String>,
    /// The right options, by their index as shown.
    pub correct: Vec<i32>,
    pub accepted: Vec<String>,
    pub points: i32,
}

/// An answer to one question of a paper: the options chosen (by index as shown) or the text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GivenAnswer {
    pub question_id: Uuid,
    pub choices: Vec<i32>,
    pub text: Option<String>,
}

/// The paper of a new attempt of `quiz` from the bank's live `questions` (in the bank's
/// order): all of them or the first `question_count` (fixed), or that many drawn at random;
/// options shuffled when the quiz says so.
pub fn draw(quiz: &Quiz, questions: &[Question]) -> Vec<PaperItem> {
    let mut rng = rand::thread_rng();
    let count = quiz.question_count.map_or(questions.len(), |n| {
        (n.max(0) as usize).min(questions.len())
    });
    let chosen: Vec<&Question> = match quiz.selection {
        Selection::Fixed => questions.iter().take(count).collect(),
        Selection::Random => {
            let mut all: Vec<&Question> = questions.iter().collect();
            all.shuffle(&mut rng);
            all.truncate(count);
            all
        }
    };
    chosen
        .into_iter()
        .map(|q| {
            let mut order: Vec<usize> = (0..q.options.len()).collect();
            if quiz.shuffle_options && q.kind != QuestionKind::TrueFalse {
                order.shuffle(&mut rng);
            }
            let options = order.iter().map(|&i| q.options[i].clone()).collect();
            let mut correct: Vec<i32> = order
                .iter()
                .enumerate()
                .filter(|(_, &was)| q.correct_options.contains(&(was as i32)))
                .map(|(shown, _)| shown as i32)
                .collect();
            correct.sort_unstable();
            PaperItem {
                question_id: q.id,
                kind: q.kind,
                prompt: q.prompt.clone(),
                options,
                correct,
                accepted: q.accepted_answers.clone(),
                points: q.points,
            }
        })
        .collect()
}

/// Whether `answer` is right for `item`.
pub fn is_right(item: &PaperItem, answer: Option<&GivenAnswer>) -> bool {
    let Some(a) = answer else { return false };
    match item.kind {
        QuestionKind::ShortAnswer => a.text.as_deref().is_some_and(|t| {
            let t = normalise_text(t);
            !t.is_empty() && item.accepted.iter().any(|ok| normalise_text(ok) == t)
        }),
        _ => {
            let mut chosen = a.choices.clone();
            chosen.sort_unstable();
            chosen.dedup();
            chosen == item.correct
        }
    }
}

/// The points `answers` earn on `paper`.
pub fn score(paper: &[PaperItem], answers: &[GivenAnswer]) -> i32 {
    let by_question: HashMap<Uuid, &GivenAnswer> =
        answers.iter().map(|a| (a.question_id, a)).collect();
    paper
        .iter()
        .filter(|item| is_right(item, by_question.get(&item.question_id).copied()))
        .map(|item| item.points)
        .sum()
}

/// What is wrong with `answers` for `paper`: a question not on it, a question answered twice,
/// an option that is not one, several options for a one-option question, or text for a choice.
pub fn check_answers(paper: &[PaperItem], answers: &[GivenAnswer]) -> ApiResult<()> {
    let items: HashMap<Uuid, &PaperItem> = paper.iter().map(|p| (p.question_id, p)).collect();
    let mut seen = HashSet::new();
    let mut e = FieldErrors::new();
    for (i, a) in answers.iter().enumerate() {
        let field = format!("answers[{i}]");
        let Some(item) = items.get(&a.question_id) else {
            e.add(
                format!("{field}.question_id"),
                "is not a question of this attempt",
            );
            continue;
        };
        if !seen.insert(a.question_id) {
            e.add(format!("{field}.question_id"), "is answered twice");
        }
        let n = item.options.len() as i32;
        match item.kind {
            QuestionKind::ShortAnswer if !a.choices.is_empty() => {
                e.add(
                    format!("{field}.choices"),
                    "a short-answer question is answered in text",
                );
            }
            QuestionKind::ShortAnswer => {}
            _ if a.text.is_some() => {
                e.add(
                    format!("{field}.text"),
                    "a choice question is answered by its options",
                );
            }
            _ if a.choices.iter().any(|&c| c < 0 || c >= n) => {
                e.add(
                    format!("{field}.choices"),
                    format!("options are numbered 0–{}", n - 1),
                );
            }
            QuestionKind::MultipleChoice => {}
            _ if a.choices.len() > 1 => {
                e.add(format!("{field}.choices"), "this question takes one option");
            }
            _ => {}
        }
    }
    e.into_result()
}

/// An attempt as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub id: Uuid,
    pub lesson_id: Uuid,
    pub enrolment_id: Uuid,
    pub user_id: Uuid,
    pub number: i32,
    #[sqlx(try_from = "String")]
    pub status: AttemptStatus,
    #[sqlx(json)]
    pub paper: Vec<PaperItem>,
    pub answers: Option<Json<Vec<GivenAnswer>>>,
    pub score: Option<i32>,
    pub max_score: i32,
    pub percent: Option<i32>,
    pub passed: Option<bool>,
    pub started_at: OffsetDateTime,
    pub deadline_at: Option<OffsetDateTime>,
    pub submitted_at: Option<OffsetDateTime>,
}

const ATTEMPT_COLUMNS: &str = "id, lesson_id, enrolment_id, user_id, number, status, paper, \
     answers, score, max_score, percent, passed, started_at, deadline_at, submitted_at";

impl Attempt {
    /// Whether its time ran out at `now` (with the grace for a submission on its way).
    pub fn is_late(&self, now: OffsetDateTime) -> bool {
        self.deadline_at
            .is_some_and(|d| now > d + time::Duration::seconds(GRACE_SECONDS))
    }
}

// ---------------------------------------------------------------------------------------------
// Store

/// The banks of a course (live, or `deleted`), by name.
pub async fn banks(tx: &mut TenantTx, course: Uuid, deleted: bool) -> ApiResult<Vec<Bank>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select b.id, b.course_id, b.name, b.created_at, b.deleted_at,
                (select count(*) from questions q where q.tenant_id = b.tenant_id
                    and q.bank_id = b.id and q.deleted_at is null) as question_count
           from question_banks b
          where b.tenant_id = $1 and b.course_id = $2 and (b.deleted_at is not null) = $3
          order by b.name, b.id")
        .bind(tenant).bind(course).bind(deleted).fetch_all(&mut *c).await)?)
}

/// A bank, live or (`deleted`) deleted.
pub async fn get_bank(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Bank> {
    let tenant = tx.tenant();
    let row: Option<Bank> = sql!(tx.conn() => |c| sqlx::query_as(
        "select b.id, b.course_id, b.name, b.created_at, b.deleted_at,
                (select count(*) from questions q where q.tenant_id = b.tenant_id
                    and q.bank_id = b.id and q.deleted_at is null) as question_count
           from question_banks b
          where b.tenant_id = $1 and b.id = $2 and (b.deleted_at is not null) = $3")
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// Names a new bank (`id` none) or renames one.
pub async fn save_bank(
    tx: &mut TenantTx,
    course: Uuid,
    id: Option<Uuid>,
    name: &str,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let taken: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select id from question_banks where tenant_id = $1 and course_id = $2 and name = $3
            and deleted_at is null")
        .bind(tenant).bind(course).bind(name).fetch_optional(&mut *c).await)?;
    if taken.is_some_and(|t| Some(t) != id) {
        return Err(ApiError::Conflict {
            field: "name".into(),
            message: "the course has a question bank of this name".into(),
        });
    }
    match id {
        None => {
            let id = Uuid::now_v7();
            sql!(tx.conn() => |c| sqlx::query(
                "insert into question_banks (tenant_id, id, course_id, name, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $5)")
                .bind(tenant).bind(id).bind(course).bind(name).bind(now)
                .execute(&mut *c).await.map(drop))?;
            Ok(id)
        }
        Some(id) => {
            sql!(tx.conn() => |c| sqlx::query(
                "update question_banks set name = $3, updated_at = $4 where tenant_id = $1 and id = $2")
                .bind(tenant).bind(id).bind(name).bind(now).execute(&mut *c).await.map(drop))?;
            Ok(id)
        }
    }
}

/// Soft-deletes or restores a bank (a restored bank's name must still be free).
pub async fn set_bank_deleted(
    tx: &mut TenantTx,
    bank: &Bank,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    if !deleted {
        let taken: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select id from question_banks where tenant_id = $1 and course_id = $2 and name = $3
                and deleted_at is null")
            .bind(tenant).bind(bank.course_id).bind(&bank.name).fetch_optional(&mut *c).await)?;
        if taken.is_some() {
            return Err(ApiError::Conflict {
                field: "name".into(),
                message: "another question bank of the course took this name meanwhile".into(),
            });
        }
    }
    let at = deleted.then_some(now);
    sql!(tx.conn() => |c| sqlx::query(
        "update question_banks set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(bank.id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Whether a quiz draws from `bank`.
pub async fn bank_in_use(tx: &mut TenantTx, bank: Uuid) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let found: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select q.lesson_id from quizzes q
           join course_lessons l on l.tenant_id = q.tenant_id and l.id = q.lesson_id
          where q.tenant_id = $1 and q.bank_id = $2 and l.deleted_at is null limit 1")
        .bind(tenant).bind(bank).fetch_optional(&mut *c).await)?;
    Ok(found.is_some())
}

/// The questions of a bank (live, or `deleted`), in the order they were written.
pub async fn questions(tx: &mut TenantTx, bank: Uuid, deleted: bool) -> ApiResult<Vec<Question>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {QUESTION_COLUMNS} from questions
          where tenant_id = $1 and bank_id = $2 and (deleted_at is not null) = $3
          order by created_at, id"))
        .bind(tenant).bind(bank).bind(deleted).fetch_all(&mut *c).await)?)
}

/// A question, live or (`deleted`) deleted.
pub async fn get_question(tx: &mut TenantTx, id: Uuid, deleted: bool) -> ApiResult<Question> {
    let tenant = tx.tenant();
    let row: Option<Question> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {QUESTION_COLUMNS} from questions
          where tenant_id = $1 and id = $2 and (deleted_at is not null) = $3"))
        .bind(tenant).bind(id).bind(deleted).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// Writes a new question to `bank` (`id` none) or replaces one; its id.
pub async fn save_question(
    tx: &mut TenantTx,
    bank: Uuid,
    id: Option<Uuid>,
    q: &QuestionInput,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let (options, correct, accepted) = (
        Json(&q.options),
        Json(&q.correct_options),
        Json(&q.accepted_answers),
    );
    match id {
        None => {
            let id = Uuid::now_v7();
            sql!(tx.conn() => |c| sqlx::query(
                "insert into questions (tenant_id, id, bank_id, kind, prompt, options, correct,
                        accepted, points, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)")
                .bind(tenant).bind(id).bind(bank).bind(q.kind.as_str()).bind(&q.prompt)
                .bind(options).bind(correct).bind(accepted).bind(q.points).bind(now)
                .execute(&mut *c).await.map(drop))?;
            Ok(id)
        }
        Some(id) => {
            sql!(tx.conn() => |c| sqlx::query(
                "update questions set kind = $3, prompt = $4, options = $5, correct = $6,
                        accepted = $7, points = $8, updated_at = $9
                  where tenant_id = $1 and id = $2")
                .bind(tenant).bind(id).bind(q.kind.as_str()).bind(&q.prompt)
                .bind(options).bind(correct).bind(accepted).bind(q.points).bind(now)
                .execute(&mut *c).await.map(drop))?;
            Ok(id)
        }
    }
}

/// Soft-deletes or restores a question.
pub async fn set_question_deleted(
    tx: &mut TenantTx,
    id: Uuid,
    deleted: bool,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let at = deleted.then_some(now);
    sql!(tx.conn() => |c| sqlx::query(
        "update questions set deleted_at = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(at).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// The quiz of a lesson, if it has one.
pub async fn quiz(tx: &mut TenantTx, lesson: Uuid) -> ApiResult<Option<Quiz>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {QUIZ_COLUMNS} from quizzes where tenant_id = $1 and lesson_id = $2"))
        .bind(tenant).bind(lesson).fetch_optional(&mut *c).await)?)
}

/// The lessons of `course` that have a quiz.
pub async fn quiz_lessons(tx: &mut TenantTx, course: Uuid) -> ApiResult<HashSet<Uuid>> {
    let tenant = tx.tenant();
    let ids: Vec<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select lesson_id from quizzes where tenant_id = $1 and course_id = $2")
        .bind(tenant).bind(course).fetch_all(&mut *c).await)?;
    Ok(ids.into_iter().collect())
}

/// Sets a lesson's quiz.
pub async fn save_quiz(tx: &mut TenantTx, q: &Quiz, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into quizzes (tenant_id, lesson_id, course_id, bank_id, selection, question_count,
                shuffle_options, time_limit_minutes, max_attempts, pass_percent, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         on conflict (tenant_id, lesson_id) do update
            set bank_id = excluded.bank_id, selection = excluded.selection,
                question_count = excluded.question_count, shuffle_options = excluded.shuffle_options,
                time_limit_minutes = excluded.time_limit_minutes, max_attempts = excluded.max_attempts,
                pass_percent = excluded.pass_percent, updated_at = excluded.updated_at")
        .bind(tenant).bind(q.lesson_id).bind(q.course_id).bind(q.bank_id)
        .bind(q.selection.as_str()).bind(q.question_count).bind(q.shuffle_options)
        .bind(q.time_limit_minutes).bind(q.max_attempts).bind(q.pass_percent).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// The attempts of an enrolment at a lesson's quiz, by number.
pub async fn attempts(tx: &mut TenantTx, enrolment: Uuid, lesson: Uuid) -> ApiResult<Vec<Attempt>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {ATTEMPT_COLUMNS} from quiz_attempts
          where tenant_id = $1 and enrolment_id = $2 and lesson_id = $3 order by number"))
        .bind(tenant).bind(enrolment).bind(lesson).fetch_all(&mut *c).await)?)
}

/// An attempt.
pub async fn get_attempt(tx: &mut TenantTx, id: Uuid) -> ApiResult<Attempt> {
    let tenant = tx.tenant();
    let row: Option<Attempt> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {ATTEMPT_COLUMNS} from quiz_attempts where tenant_id = $1 and id = $2"))
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// Stores a new attempt.
pub async fn insert_attempt(tx: &mut TenantTx, a: &Attempt) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into quiz_attempts (tenant_id, id, lesson_id, enrolment_id, user_id, number, status,
                paper, max_score, started_at, deadline_at)
         values ($1, $2, $3, $4, $5, $6, 'in_progress', $7, $8, $9, $10)")
        .bind(tenant).bind(a.id).bind(a.lesson_id).bind(a.enrolment_id).bind(a.user_id)
        .bind(a.number).bind(Json(&a.paper)).bind(a.max_score).bind(a.started_at)
        .bind(a.deadline_at).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Closes an attempt still in progress: submitted with its answers and score, or timed out
/// (answers none, score 0). Whether this call closed it (a second submission closes nothing).
#[allow(clippy::too_many_arguments)] // the columns it sets
pub async fn close_attempt(
    tx: &mut TenantTx,
    id: Uuid,
    status: AttemptStatus,
    answers: Option<&[GivenAnswer]>,
    score: i32,
    percent: i32,
    passed: bool,
    now: OffsetDateTime,
) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let answers = answers.map(Json);
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update quiz_attempts set status = $3, answers = $4, score = $5, percent = $6, passed = $7,
                submitted_at = $8
          where tenant_id = $1 and id = $2 and status = 'in_progress'")
        .bind(tenant).bind(id).bind(status.as_str()).bind(answers).bind(score).bind(percent)
        .bind(passed).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: QuestionKind, correct: Vec<i32>, accepted: &[&str]) -> PaperItem {
        PaperItem {
            question_id: Uuid::now_v7(),
            kind,
            prompt: "?".into(),
            options: vec!["a".into(), "b".into(), "c".into()],
            correct,
            accepted: accepted.iter().map(|s| s.to_string()).collect(),
            points: 2,
        }
    }

    fn answer(item: &PaperItem, choices: &[i32], text: Option<&str>) -> GivenAnswer {
        GivenAnswer {
            question_id: item.question_id,
            choices: choices.to_vec(),
            text: text.map(str::to_string),
        }
    }

    #[test]
    fn every_kind_is_scored_all_or_nothing() {
        let single = item(QuestionKind::SingleChoice, vec![1], &[]);
        let multiple = item(QuestionKind::MultipleChoice, vec![0, 2], &[]);
        let short = item(QuestionKind::ShortAnswer, vec![], &["Lock out, tag out"]);
        let paper = vec![single.clone(), multiple.clone(), short.clone()];
        let right = vec![
            answer(&single, &[1], None),
            answer(&multiple, &[2, 0], None),
            answer(&short, &[], Some("  lock out,   TAG OUT. ")),
        ];
        assert_eq!(score(&paper, &right), 6);
        let partly = vec![
            answer(&single, &[0], None),
            answer(&multiple, &[0], None),
            answer(&short, &[], Some("lockout")),
        ];
        assert_eq!(score(&paper, &partly), 0);
        assert_eq!(score(&paper, &[]), 0);
    }

    #[test]
    fn answers_that_do_not_fit_the_paper_name_their_field() {
        let single = item(QuestionKind::SingleChoice, vec![1], &[]);
        let paper = vec![single.clone()];
        let err = check_answers(&paper, &[answer(&single, &[0, 1], None)]).unwrap_err();
        assert!(format!("{err:?}").contains("answers[0].choices"));
        let stranger = GivenAnswer {
            question_id: Uuid::now_v7(),
            ..Default::default()
        };
        let err = check_answers(&paper, &[stranger]).unwrap_err();
        assert!(format!("{err:?}").contains("answers[0].question_id"));
        assert!(check_answers(&paper, &[answer(&single, &[5], None)]).is_err());
    }

    #[test]
    fn questions_are_checked_by_kind() {
        let q = |kind, options: &[&str], correct: Vec<i32>, accepted: &[&str]| QuestionInput {
            kind,
            prompt: " Which? ".into(),
            options: options.iter().map(|s| s.to_string()).collect(),
            correct_options: correct,
            accepted_answers: accepted.iter().map(|s| s.to_string()).collect(),
            points: 1,
        };
        let tf = check_question(q(QuestionKind::TrueFalse, &[], vec![1], &[])).unwrap();
        assert_eq!(tf.options, TRUE_FALSE);
        assert_eq!(tf.prompt, "Which?");
        assert!(
            check_question(q(QuestionKind::SingleChoice, &["a", "b"], vec![0, 1], &[])).is_err()
        );
        assert!(
            check_question(q(QuestionKind::MultipleChoice, &["a", "a"], vec![0], &[])).is_err()
        );
        assert!(
            check_question(q(QuestionKind::MultipleChoice, &["a", "b"], vec![2], &[])).is_err()
        );
        assert!(check_question(q(QuestionKind::ShortAnswer, &[], vec![], &[])).is_err());
        assert!(check_question(q(QuestionKind::ShortAnswer, &[], vec![], &["ok"])).is_ok());
    }

    #[test]
    fn a_drawn_paper_keeps_the_right_options_through_the_shuffle() {
        let q = Question {
            id: Uuid::now_v7(),
            bank_id: Uuid::now_v7(),
            kind: QuestionKind::MultipleChoice,
            prompt: "?".into(),
            options: (0..8).map(|i| format!("o{i}")).collect(),
            correct_options: vec![2, 5],
            accepted_answers: vec![],
            points: 1,
            deleted_at: None,
        };
        let quiz = Quiz {
            lesson_id: Uuid::now_v7(),
            course_id: Uuid::now_v7(),
            bank_id: q.bank_id,
            selection: Selection::Random,
            question_count: Some(5),
            shuffle_options: true,
            time_limit_minutes: None,
            max_attempts: None,
            pass_percent: 50,
        };
        let paper = draw(&quiz, std::slice::from_ref(&q));
        assert_eq!(paper.len(), 1);
        let right: Vec<&String> = paper[0]
            .correct
            .iter()
            .map(|&i| &paper[0].options[i as usize])
            .collect();
        let mut right: Vec<String> = right.into_iter().cloned().collect();
        right.sort();
        assert_eq!(right, vec!["o2", "o5"]);
    }
}
