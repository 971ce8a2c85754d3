//! Quizzes and certificates in the portal: a course's question banks and a lesson's quiz (for
//! those who build the catalogue), taking a quiz and reviewing an attempt, one's certificates
//! with their PDF, and the public page that checks a verification code.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path, Query, Redirect},
    IntoResponse, Response,
};
use serde::Deserialize;
use trainflow_kernel::{envelope::Page, now, ApiError, FieldErrors};
use trainflow_web::{
    blank, field_errors, portal_page, render, Errors, LocalTimes, Nav, PageResult, Pager, SignedIn,
    Submitted,
};
use uuid::Uuid;

use super::{manages, NoticeQuery};
use crate::{
    assessments::{AttemptStatus, GivenAnswer, QuestionKind, Selection},
    certificates::Certificate,
    service::{
        self, AttemptView, BankDetail, CertificateQuery, QuestionChange, QuizSettings, QuizView,
        Verification, Whose,
    },
    Learning,
};

// ---------------------------------------------------------------------------------------------
// Banks

#[derive(Deserialize)]
pub(super) struct BankForm {
    #[serde(default)]
    name: String,
}

/// Adds a question bank to a course and opens it.
#[handler]
pub(super) async fn create_bank(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<BankForm>,
) -> PageResult {
    match service::create_bank(&svc, me.ctx(), id.0, &form.name, now()).await {
        Ok(b) => Ok(
            Redirect::see_other(format!("/portal/question-banks/{}?notice=bank", b.id))
                .into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            super::catalogue::course_with_errors(&svc, &me, id.0, errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "bank.html")]
struct BankPage {
    nav: Option<Nav>,
    csrf: String,
    d: BankDetail,
    questions: Vec<QuestionLine>,
    form: QuestionForm,
    notice: Option<&'static str>,
    errors: Errors,
}

/// A question of a bank as its page lists it.
struct QuestionLine {
    prompt: String,
    kind: &'static str,
    /// Each option and whether it is right.
    options: Vec<(String, bool)>,
    accepted: String,
    points: i32,
}

async fn bank_view(
    svc: &Learning,
    me: &SignedIn,
    id: Uuid,
    form: QuestionForm,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let d = service::bank_detail(svc, me.ctx(), id).await?;
    let questions = d
        .questions
        .iter()
        .map(|q| QuestionLine {
            prompt: q.prompt.clone(),
            kind: q.kind.as_str(),
            options: q
                .options
                .iter()
                .enumerate()
                .map(|(i, o)| (o.clone(), q.correct_options.contains(&(i as i32))))
                .collect(),
            accepted: q.accepted_answers.join(" · "),
            points: q.points,
        })
        .collect();
    render(
        &BankPage {
            nav: me.nav("courses"),
            csrf: me.csrf().to_string(),
            d,
            questions,
            form,
            notice,
            errors,
        },
        status,
    )
}

/// A bank with its questions and the form that adds one.
#[handler]
pub(super) async fn bank_page(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let form = QuestionForm {
        points: "1".into(),
        ..QuestionForm::default()
    };
    bank_view(
        &svc,
        &me,
        id.0,
        form,
        q.text(),
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

/// The new-question form as typed: options and accepted answers one per line, the right
/// options by their numbers from 1.
#[derive(Deserialize, Default, Clone)]
pub(super) struct QuestionForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    options: String,
    #[serde(default)]
    correct: String,
    #[serde(default)]
    accepted: String,
    #[serde(default)]
    points: String,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

impl QuestionForm {
    /// The change the form asks for, or what is wrong with it.
    fn change(&self) -> Result<QuestionChange, ApiError> {
        let mut e = FieldErrors::new();
        let kind = QuestionKind::parse(self.kind.trim());
        if kind.is_none() {
            e.add(
                "kind",
                "must be single_choice, multiple_choice, true_false or short_answer",
            );
        }
        let correct: Result<Vec<i32>, _> = self
            .correct
            .split([',', ' '])
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<i32>().map(|n| n - 1))
            .collect();
        let correct = correct
            .map_err(|_| e.add("correct_options", "must be option numbers, as 1 or 1, 3"))
            .unwrap_or_default();
        let points = match self.points.trim() {
            "" => None,
            p => p
                .parse()
                .map_err(|_| e.add("points", "must be a whole number"))
                .ok(),
        };
        if !e.is_empty() {
            return Err(ApiError::Validation(e));
        }
        let choice = kind != Some(QuestionKind::ShortAnswer);
        Ok(QuestionChange {
            kind,
            prompt: Some(self.prompt.clone()),
            options: (choice && kind != Some(QuestionKind::TrueFalse))
                .then(|| lines(&self.options)),
            correct_options: choice.then_some(correct),
            accepted_answers: (!choice).then(|| lines(&self.accepted)),
            points,
        })
    }
}

/// Adds a question to a bank.
#[handler]
pub(super) async fn add_question(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<QuestionForm>,
) -> PageResult {
    let r = match form.change() {
        Ok(change) => service::add_question(&svc, me.ctx(), id.0, change, now())
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => Ok(Redirect::see_other(format!(
            "/portal/question-banks/{}?notice=question",
            id.0
        ))
        .into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            bank_view(
                &svc,
                &me,
                id.0,
                form,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Quizzes

#[derive(Deserialize)]
pub(super) struct QuizForm {
    #[serde(default)]
    course_id: String,
    #[serde(default)]
    bank_id: String,
    #[serde(default)]
    selection: String,
    #[serde(default)]
    question_count: String,
    #[serde(default)]
    time_limit_minutes: String,
    #[serde(default)]
    max_attempts: String,
    #[serde(default)]
    pass_percent: String,
    shuffle_options: Option<String>,
}

/// Sets a lesson's quiz (the form of the course's page) and opens it.
#[handler]
pub(super) async fn set_quiz(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<QuizForm>,
) -> PageResult {
    let course: Uuid = form
        .course_id
        .trim()
        .parse()
        .map_err(|_| ApiError::NotFound)?;
    let mut e = FieldErrors::new();
    let mut number = |field: &str, raw: &str| -> Option<i32> {
        match raw.trim() {
            "" => None,
            n => n
                .parse()
                .map_err(|_| e.add(field, "must be a whole number"))
                .ok(),
        }
    };
    let question_count = number("question_count", &form.question_count);
    let time_limit_minutes = number("time_limit_minutes", &form.time_limit_minutes);
    let max_attempts = number("max_attempts", &form.max_attempts);
    let pass_percent = number("pass_percent", &form.pass_percent);
    let bank_id = form.bank_id.trim().parse::<Uuid>();
    if bank_id.is_err() {
        e.add("bank_id", "choose a question bank");
    }
    let selection = match form.selection.trim() {
        "" => None,
        s => {
            let parsed = Selection::parse(s);
            if parsed.is_none() {
                e.add("selection", "must be fixed or random");
            }
            parsed
        }
    };
    let r = match bank_id {
        Ok(bank_id) if e.is_empty() => {
            let settings = QuizSettings {
                bank_id,
                selection,
                question_count,
                shuffle_options: Some(form.shuffle_options.is_some()),
                time_limit_minutes,
                max_attempts,
                pass_percent,
                required: None,
            };
            service::set_quiz(&svc, me.ctx(), id.0, settings, now())
                .await
                .map(drop)
        }
        _ => Err(ApiError::Validation(e)),
    };
    match r {
        Ok(()) => Ok(
            Redirect::see_other(format!("/portal/lessons/{}/quiz?notice=quiz", id.0))
                .into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            super::catalogue::course_with_errors(&svc, &me, course, errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "quiz.html")]
struct QuizPage {
    nav: Option<Nav>,
    csrf: String,
    lesson: Uuid,
    v: QuizView,
    /// An attempt is under way (the button continues it).
    in_progress: bool,
    /// A new attempt may start.
    may_start: bool,
    manages: bool,
    times: LocalTimes,
    notice: Option<&'static str>,
    errors: Errors,
}

async fn quiz_view(
    svc: &Learning,
    me: &SignedIn,
    lesson: Uuid,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let v = service::quiz_view(svc, me.ctx(), lesson).await?;
    let in_progress = v
        .attempts
        .iter()
        .any(|a| a.status == AttemptStatus::InProgress);
    render(
        &QuizPage {
            nav: me.nav("learning"),
            csrf: me.csrf().to_string(),
            lesson,
            may_start: v.enrolment_id.is_some()
                && !v.passed
                && (in_progress || v.attempts_left != Some(0)),
            in_progress,
            manages: manages(&me.session),
            v,
            times: me.session.times(),
            notice,
            errors,
        },
        status,
    )
}

/// A lesson's quiz: its rules, one's attempts, and the button that starts one.
#[handler]
pub(super) async fn quiz_page(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    quiz_view(&svc, &me, id.0, q.text(), Errors::default(), StatusCode::OK).await
}

/// Starts an attempt (or continues the one under way) and opens it.
#[handler]
pub(super) async fn start_attempt(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, _): Submitted<trainflow_web::NoFields>,
) -> PageResult {
    match service::start_attempt(&svc, me.ctx(), id.0, now()).await {
        Ok(a) => Ok(
            Redirect::see_other(format!("/portal/quiz-attempts/{}", a.attempt.id)).into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            quiz_view(
                &svc,
                &me,
                id.0,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "attempt.html")]
struct AttemptPage {
    nav: Option<Nav>,
    csrf: String,
    a: AttemptView,
    questions: Vec<AttemptLine>,
    /// In progress and the caller's: the page is the form that answers it.
    answering: bool,
    times: LocalTimes,
    notice: Option<&'static str>,
    errors: Errors,
}

/// A question of an attempt as its page shows it.
struct AttemptLine {
    number: usize,
    /// The form field of its answer.
    name: String,
    /// `radio`, `checkbox` or `text`.
    input: &'static str,
    prompt: String,
    points: i32,
    /// Each option: its index, text, whether it was chosen and whether it is right (review).
    options: Vec<(usize, String, bool, bool)>,
    text: String,
    accepted: String,
    right: Option<bool>,
}

fn attempt_lines(a: &AttemptView) -> Vec<AttemptLine> {
    a.questions
        .iter()
        .enumerate()
        .map(|(n, q)| {
            let chosen = q.chosen.clone().unwrap_or_default();
            let correct = q.correct_options.clone().unwrap_or_default();
            AttemptLine {
                number: n + 1,
                name: format!("q-{}", q.question_id),
                input: match q.kind {
                    QuestionKind::MultipleChoice => "checkbox",
                    QuestionKind::ShortAnswer => "text",
                    QuestionKind::SingleChoice | QuestionKind::TrueFalse => "radio",
                },
                prompt: q.prompt.clone(),
                points: q.points,
                options: q
                    .options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let i32_ = i as i32;
                        (
                            i,
                            o.clone(),
                            chosen.contains(&i32_),
                            correct.contains(&i32_),
                        )
                    })
                    .collect(),
                text: q.text.clone().unwrap_or_default(),
                accepted: q.accepted_answers.clone().unwrap_or_default().join(" · "),
                right: q.right,
            }
        })
        .collect()
}

async fn attempt_view(
    svc: &Learning,
    me: &SignedIn,
    id: Uuid,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let a = service::attempt_view(svc, me.ctx(), id).await?;
    render(
        &AttemptPage {
            nav: me.nav("learning"),
            csrf: me.csrf().to_string(),
            questions: attempt_lines(&a),
            answering: a.attempt.status == AttemptStatus::InProgress
                && a.user_id == me.session.user_id,
            a,
            times: me.session.times(),
            notice,
            errors,
        },
        status,
    )
}

/// An attempt: its questions to answer while it is in progress, its review once closed.
#[handler]
pub(super) async fn attempt_page(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    attempt_view(&svc, &me, id.0, q.text(), Errors::default(), StatusCode::OK).await
}

/// Submits an attempt's answers: each question's field is `q-<question id>`, an option's
/// index (repeated for several options) or the text typed.
#[handler]
pub(super) async fn submit_attempt(
    svc: Data<&Learning>,
    id: Path<Uuid>,
    Submitted(me, pairs): Submitted<Vec<(String, String)>>,
) -> PageResult {
    // The paper says how each question is answered: the options chosen, or the text typed.
    let a = service::attempt_view(&svc, me.ctx(), id.0).await?;
    let mut e = FieldErrors::new();
    let answers: Vec<GivenAnswer> = a
        .questions
        .iter()
        .map(|q| {
            let name = format!("q-{}", q.question_id);
            let mut values = pairs.iter().filter(|(k, _)| *k == name).map(|(_, v)| v);
            let mut answer = GivenAnswer {
                question_id: q.question_id,
                ..GivenAnswer::default()
            };
            if q.kind == QuestionKind::ShortAnswer {
                answer.text = values.next_back().and_then(|v| blank(v));
            } else {
                for v in values {
                    match v.trim().parse::<i32>() {
                        Ok(i) => answer.choices.push(i),
                        Err(_) => e.add(&name, "choose one of the options"),
                    }
                }
            }
            answer
        })
        .collect();
    let r = if e.is_empty() {
        service::submit_attempt(&svc, me.ctx(), id.0, answers, now())
            .await
            .map(drop)
    } else {
        Err(ApiError::Validation(e))
    };
    match r {
        Ok(()) => Ok(Redirect::see_other(format!(
            "/portal/quiz-attempts/{}?notice=submitted",
            id.0
        ))
        .into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            attempt_view(
                &svc,
                &me,
                id.0,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates

#[derive(Deserialize, Default)]
pub(super) struct CertificatesQuery {
    #[serde(default)]
    whose: String,
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct CertificatesPage {
    nav: Option<Nav>,
    certificates: Vec<Certificate>,
    pager: Pager,
    whose: &'static str,
    manages: bool,
}

/// One's certificates (or one's team's, or for those who manage courses everyone's).
#[handler]
pub(super) async fn certificates(
    me: SignedIn,
    svc: Data<&Learning>,
    q: Query<CertificatesQuery>,
) -> PageResult {
    let page: Page = portal_page(q.page, 25)?;
    let manages = manages(&me.session);
    let (whose, key) = match q.whose.as_str() {
        "team" => (Whose::Team, "team"),
        "all" if manages => (Whose::All, "all"),
        _ => (Whose::Mine, "mine"),
    };
    let query = CertificateQuery {
        whose,
        user_id: None,
        course_id: None,
    };
    let (certificates, total) =
        service::list_certificates(&svc, me.ctx(), query, page, now()).await?;
    render(
        &CertificatesPage {
            nav: me.nav("certificates"),
            certificates,
            pager: Pager::new(page, total, |n| {
                format!("/portal/certificates?whose={key}&page={n}")
            }),
            whose: key,
            manages,
        },
        StatusCode::OK,
    )
}

/// A certificate as a PDF, to download.
#[handler]
pub(super) async fn certificate_pdf(
    me: SignedIn,
    svc: Data<&Learning>,
    id: Path<Uuid>,
) -> poem::Result<Response> {
    let (name, bytes) = service::certificate_pdf(&svc, me.ctx(), id.0, now()).await?;
    Ok(Response::builder()
        .content_type("application/pdf")
        .header(
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        )
        .header("cache-control", "private, no-store")
        .body(bytes))
}

#[derive(Deserialize, Default)]
pub(super) struct VerifyQuery {
    #[serde(default)]
    code: String,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    nav: Option<Nav>,
    code: String,
    found: Option<Verification>,
    /// A code was given and no certificate has it.
    unknown: bool,
}

async fn verify_view(svc: &Learning, code: &str) -> PageResult {
    let code = code.trim();
    if code.is_empty() {
        let page = VerifyPage {
            nav: None,
            code: String::new(),
            found: None,
            unknown: false,
        };
        return render(&page, StatusCode::OK);
    }
    let shown: String = code.chars().take(40).collect();
    match service::verify(svc, code, now()).await {
        Ok(v) => render(
            &VerifyPage {
                nav: None,
                code: v.code.clone(),
                found: Some(v),
                unknown: false,
            },
            StatusCode::OK,
        ),
        Err(ApiError::NotFound) => render(
            &VerifyPage {
                nav: None,
                code: shown,
                found: None,
                unknown: true,
            },
            StatusCode::NOT_FOUND,
        ),
        Err(e) => Err(e.into()),
    }
}

/// The public check of a certificate: a form for its code, and what the certificate states.
#[handler]
pub(super) async fn verify_form(svc: Data<&Learning>, q: Query<VerifyQuery>) -> PageResult {
    verify_view(&svc, &q.code).await
}

/// The public check of one code: the address a certificate prints.
#[handler]
pub(super) async fn verify_code(svc: Data<&Learning>, code: Path<String>) -> PageResult {
    verify_view(&svc, &code.0).await
}
