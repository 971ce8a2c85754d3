//! HTTP API of assessments and certificates: question banks and questions, a lesson's quiz,
//! attempts, certificates with their PDF, and the public check of a verification code.

use poem_openapi::{
    param::{Path, Query},
    payload::{Attachment, AttachmentType, Json},
    ApiResponse, Object, OpenApi, Tags,
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
    assessments::{Bank, GivenAnswer, Question, QuestionKind, Quiz, Selection},
    certificates::Certificate,
    service::{
        self, AttemptView, BankDetail, CertificateQuery, QuestionChange, QuizSettings, QuizView,
        Verification, Whose,
    },
    Learning,
};

#[derive(Tags)]
enum Tag {
    /// Question banks, quizzes and attempts.
    Assessments,
    /// Certificates of completion and their public check.
    Certificates,
}

/// The assessments and certificates API.
pub struct AssessmentsApi {
    pub svc: Learning,
}

/// Body of `POST /courses/{id}/question-banks` and `PATCH /question-banks/{id}`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct BankBody {
    /// Unique among the course's banks.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
}

/// Body of `POST /question-banks/{id}/questions`: `kind` and `prompt` are required. A choice
/// question has 2–10 `options` and names the right ones in `correct_options` (one for
/// `single_choice`); a `true_false` question has the options `True`, `False` (left out or
/// given so) and `correct_options` `[0]` or `[1]`; a `short_answer` question has 1–20
/// `accepted_answers` and no options.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateQuestion {
    pub kind: QuestionKind,
    #[oai(validator(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub prompt: String,
    /// Each 1–500 characters, distinct.
    #[oai(
        nullable,
        validator(
            max_items = 10,
            max_length = 500,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub options: Option<Vec<String>>,
    /// Indexes into `options`, from 0, each once.
    #[oai(
        nullable,
        validator(max_items = 10, minimum(value = "0"), maximum(value = "9"))
    )]
    pub correct_options: Option<Vec<i32>>,
    /// Compared without regard to case, spacing or surrounding punctuation.
    #[oai(
        nullable,
        validator(
            max_items = 20,
            max_length = 500,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub accepted_answers: Option<Vec<String>>,
    /// 1–100 (default 1).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "100")))]
    pub points: Option<i32>,
}

/// Body of `PATCH /questions/{id}`: a field left out or `null` keeps its value, except that a
/// question changing `kind` starts its options and answers afresh.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PatchQuestion {
    #[oai(nullable)]
    pub kind: Option<QuestionKind>,
    #[oai(
        nullable,
        validator(
            max_length = 2000,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub prompt: Option<String>,
    #[oai(
        nullable,
        validator(
            max_items = 10,
            max_length = 500,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub options: Option<Vec<String>>,
    #[oai(
        nullable,
        validator(max_items = 10, minimum(value = "0"), maximum(value = "9"))
    )]
    pub correct_options: Option<Vec<i32>>,
    #[oai(
        nullable,
        validator(
            max_items = 20,
            max_length = 500,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub accepted_answers: Option<Vec<String>>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "100")))]
    pub points: Option<i32>,
}

impl From<CreateQuestion> for QuestionChange {
    fn from(b: CreateQuestion) -> Self {
        QuestionChange {
            kind: Some(b.kind),
            prompt: Some(b.prompt),
            options: b.options,
            correct_options: b.correct_options,
            accepted_answers: b.accepted_answers,
            points: b.points,
        }
    }
}

impl From<PatchQuestion> for QuestionChange {
    fn from(b: PatchQuestion) -> Self {
        QuestionChange {
            kind: b.kind,
            prompt: b.prompt,
            options: b.options,
            correct_options: b.correct_options,
            accepted_answers: b.accepted_answers,
            points: b.points,
        }
    }
}

/// Body of `PUT /lessons/{id}/quiz`: `bank_id` is required; the rest may be left out or `null`
/// (their defaults).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct QuizBody {
    /// A live bank of the lesson's course.
    pub bank_id: Uuid,
    /// Default `fixed`.
    #[oai(nullable)]
    pub selection: Option<Selection>,
    /// 1–200 (default: all of the bank's questions).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "200")))]
    pub question_count: Option<i32>,
    /// Default true.
    #[oai(nullable)]
    pub shuffle_options: Option<bool>,
    /// 1–600 (default: no limit).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "600")))]
    pub time_limit_minutes: Option<i32>,
    /// 1–100 (default: no limit).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "100")))]
    pub max_attempts: Option<i32>,
    /// 0–100 (default 70).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "100")))]
    pub pass_percent: Option<i32>,
    /// Whether completing the course needs the quiz passed (default true).
    #[oai(nullable)]
    pub required: Option<bool>,
}

/// One answer of `POST /quiz-attempts/{id}/submit`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct AnswerBody {
    /// A question of the attempt.
    pub question_id: Uuid,
    /// The options chosen, by their index as shown (a choice or true/false question).
    #[oai(
        nullable,
        validator(max_items = 10, minimum(value = "0"), maximum(value = "9"))
    )]
    pub choices: Option<Vec<i32>>,
    /// The answer of a short-answer question.
    #[oai(
        nullable,
        validator(max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub text: Option<String>,
}

/// Body of `POST /quiz-attempts/{id}/submit`: the answers (questions left out are wrong).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct SubmitBody {
    #[oai(validator(max_items = 200))]
    pub answers: Vec<AnswerBody>,
}

/// Body of `POST /certificates/{id}/revoke`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct RevokeBody {
    /// Why; shown to those who may see the certificate, not on the public check.
    #[oai(validator(
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub reason: String,
}

/// A course's question banks.
#[derive(Debug, Object)]
pub struct Banks {
    pub banks: Vec<Bank>,
}

/// A certificate as a PDF.
#[derive(ApiResponse)]
pub enum CertificatePdf {
    /// The PDF.
    #[oai(status = 200, content_type = "application/pdf")]
    Pdf(Attachment<Vec<u8>>),
}

#[OpenApi(prefix_path = "/api/v1")]
impl AssessmentsApi {
    /// A course's question banks (its deleted ones with `deleted=true`).
    #[oai(
        path = "/courses/:id/question-banks",
        method = "get",
        tag = "Tag::Assessments"
    )]
    async fn list_banks(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        deleted: Query<Option<bool>>,
    ) -> ApiResult<Ok200<Banks>> {
        let banks =
            service::list_banks(&self.svc, &auth.0, id.0, deleted.0.unwrap_or(false)).await?;
        Ok(ok(Banks { banks }))
    }

    /// Add a question bank to a course (`409` on `name` when the course has one so named).
    #[oai(
        path = "/courses/:id/question-banks",
        method = "post",
        tag = "Tag::Assessments"
    )]
    async fn create_bank(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<BankBody>,
    ) -> ApiResult<Created<Bank>> {
        Ok(created(
            service::create_bank(&self.svc, &auth.0, id.0, &body.0.name, now()).await?,
        ))
    }

    /// A question bank with its questions and their answers.
    #[oai(path = "/question-banks/:id", method = "get", tag = "Tag::Assessments")]
    async fn get_bank(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<BankDetail>> {
        Ok(ok(service::bank_detail(&self.svc, &auth.0, id.0).await?))
    }

    /// Rename a question bank.
    #[oai(
        path = "/question-banks/:id",
        method = "patch",
        tag = "Tag::Assessments"
    )]
    async fn rename_bank(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<BankBody>,
    ) -> ApiResult<Ok200<Bank>> {
        Ok(ok(service::rename_bank(
            &self.svc,
            &auth.0,
            id.0,
            &body.0.name,
            now(),
        )
        .await?))
    }

    /// Soft-delete a question bank (`409` on `bank_id` while a quiz draws from it).
    #[oai(
        path = "/question-banks/:id",
        method = "delete",
        tag = "Tag::Assessments"
    )]
    async fn delete_bank(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Bank>> {
        Ok(ok(service::set_bank_deleted(
            &self.svc,
            &auth.0,
            id.0,
            true,
            now(),
        )
        .await?))
    }

    /// Restore a deleted question bank (`409` on `name` when another bank took its name).
    #[oai(
        path = "/question-banks/:id/restore",
        method = "post",
        tag = "Tag::Assessments"
    )]
    async fn restore_bank(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Bank>> {
        Ok(ok(service::set_bank_deleted(
            &self.svc,
            &auth.0,
            id.0,
            false,
            now(),
        )
        .await?))
    }

    /// Add a question to a bank.
    #[oai(
        path = "/question-banks/:id/questions",
        method = "post",
        tag = "Tag::Assessments"
    )]
    async fn add_question(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<CreateQuestion>,
    ) -> ApiResult<Created<Question>> {
        Ok(created(
            service::add_question(&self.svc, &auth.0, id.0, body.0.into(), now()).await?,
        ))
    }

    /// Change a question (attempts already started keep the paper they were given).
    #[oai(path = "/questions/:id", method = "patch", tag = "Tag::Assessments")]
    async fn patch_question(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<PatchQuestion>,
    ) -> ApiResult<Ok200<Question>> {
        Ok(ok(service::update_question(
            &self.svc,
            &auth.0,
            id.0,
            body.0.into(),
            now(),
        )
        .await?))
    }

    /// Soft-delete a question.
    #[oai(path = "/questions/:id", method = "delete", tag = "Tag::Assessments")]
    async fn delete_question(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Question>> {
        Ok(ok(service::set_question_deleted(
            &self.svc,
            &auth.0,
            id.0,
            true,
            now(),
        )
        .await?))
    }

    /// Restore a deleted question.
    #[oai(
        path = "/questions/:id/restore",
        method = "post",
        tag = "Tag::Assessments"
    )]
    async fn restore_question(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Question>> {
        Ok(ok(service::set_question_deleted(
            &self.svc,
            &auth.0,
            id.0,
            false,
            now(),
        )
        .await?))
    }

    /// An assessment lesson's quiz, with the caller's attempts and how many are left.
    #[oai(path = "/lessons/:id/quiz", method = "get", tag = "Tag::Assessments")]
    async fn get_quiz(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<QuizView>> {
        Ok(ok(service::quiz_view(&self.svc, &auth.0, id.0).await?))
    }

    /// Set an assessment lesson's quiz (`409` on `kind` for a lesson of another kind). The
    /// lesson then counts towards the course's completion unless `required` is false.
    #[oai(path = "/lessons/:id/quiz", method = "put", tag = "Tag::Assessments")]
    async fn put_quiz(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<QuizBody>,
    ) -> ApiResult<Ok200<Quiz>> {
        let b = body.0;
        let settings = QuizSettings {
            bank_id: b.bank_id,
            selection: b.selection,
            question_count: b.question_count,
            shuffle_options: b.shuffle_options,
            time_limit_minutes: b.time_limit_minutes,
            max_attempts: b.max_attempts,
            pass_percent: b.pass_percent,
            required: b.required,
        };
        Ok(ok(service::set_quiz(
            &self.svc,
            &auth.0,
            id.0,
            settings,
            now(),
        )
        .await?))
    }

    /// Start an attempt at a lesson's quiz, or get back the one in progress: its questions,
    /// without their answers. `409` names what stands in the way: `enrolment` (enrol first),
    /// `passed`, `max_attempts` or `questions` (the bank is empty).
    #[oai(
        path = "/lessons/:id/attempts",
        method = "post",
        tag = "Tag::Assessments"
    )]
    async fn start_attempt(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<AttemptView>> {
        Ok(ok(
            service::start_attempt(&self.svc, &auth.0, id.0, now()).await?
        ))
    }

    /// An attempt: its questions, and once it is closed the answers given, the right ones and
    /// the score.
    #[oai(path = "/quiz-attempts/:id", method = "get", tag = "Tag::Assessments")]
    async fn get_attempt(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<AttemptView>> {
        Ok(ok(service::attempt_view(&self.svc, &auth.0, id.0).await?))
    }

    /// Submit one's answers: the attempt is scored and closed; passing completes the lesson
    /// (and maybe the course, which issues its certificate). After the time limit the attempt
    /// closes as `timed_out` with nothing scored. A second submission is refused (`409` on
    /// `status`) and changes nothing.
    #[oai(
        path = "/quiz-attempts/:id/submit",
        method = "post",
        tag = "Tag::Assessments"
    )]
    async fn submit_attempt(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<SubmitBody>,
    ) -> ApiResult<Ok200<AttemptView>> {
        let answers = body
            .0
            .answers
            .into_iter()
            .map(|a| GivenAnswer {
                question_id: a.question_id,
                choices: a.choices.unwrap_or_default(),
                text: a.text,
            })
            .collect();
        Ok(ok(service::submit_attempt(
            &self.svc,
            &auth.0,
            id.0,
            answers,
            now(),
        )
        .await?))
    }

    /// Certificates, newest first: the caller's (`whose=mine`, the default), their team's
    /// (`team`), or everyone's (`all`, with `courses_manage`).
    #[oai(path = "/certificates", method = "get", tag = "Tag::Certificates")]
    async fn list_certificates(
        &self,
        auth: TenantAuth,
        whose: Query<Option<Whose>>,
        user_id: Query<Option<Uuid>>,
        course_id: Query<Option<Uuid>>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Certificate>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let q = CertificateQuery {
            whose: whose.0.unwrap_or(Whose::Mine),
            user_id: user_id.0,
            course_id: course_id.0,
        };
        let (rows, total) = service::list_certificates(&self.svc, &auth.0, q, page, now()).await?;
        Ok(page.list(rows, total))
    }

    /// A certificate: the holder's, their foreman's and manager's, and those who manage courses.
    #[oai(path = "/certificates/:id", method = "get", tag = "Tag::Certificates")]
    async fn get_certificate(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Certificate>> {
        Ok(ok(
            service::certificate(&self.svc, &auth.0, id.0, now()).await?
        ))
    }

    /// A certificate as a PDF.
    #[oai(
        path = "/certificates/:id/pdf",
        method = "get",
        tag = "Tag::Certificates"
    )]
    async fn certificate_pdf(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<CertificatePdf> {
        let (name, bytes) = service::certificate_pdf(&self.svc, &auth.0, id.0, now()).await?;
        Ok(CertificatePdf::Pdf(
            Attachment::new(bytes)
                .attachment_type(AttachmentType::Attachment)
                .filename(name),
        ))
    }

    /// Revoke a certificate (`409` on `status` when it is revoked already): its check then
    /// says `revoked`.
    #[oai(
        path = "/certificates/:id/revoke",
        method = "post",
        tag = "Tag::Certificates"
    )]
    async fn revoke_certificate(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<RevokeBody>,
    ) -> ApiResult<Ok200<Certificate>> {
        Ok(ok(service::set_certificate_revoked(
            &self.svc,
            &auth.0,
            id.0,
            Some(body.0.reason),
            now(),
        )
        .await?))
    }

    /// Restore a revoked certificate (`409` on `status` when it is not revoked).
    #[oai(
        path = "/certificates/:id/restore",
        method = "post",
        tag = "Tag::Certificates"
    )]
    async fn restore_certificate(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Certificate>> {
        Ok(ok(service::set_certificate_revoked(
            &self.svc,
            &auth.0,
            id.0,
            None,
            now(),
        )
        .await?))
    }

    /// Check a certificate's verification code, without signing in: what the certificate
    /// states and whether it is valid, expired or revoked; `404` when no certificate has the
    /// code. Case, spaces and dashes do not matter.
    #[oai(
        path = "/verifications/:code",
        method = "get",
        tag = "Tag::Certificates"
    )]
    async fn verify(
        &self,
        #[oai(validator(max_length = 40))] code: Path<String>,
    ) -> ApiResult<Ok200<Verification>> {
        Ok(ok(service::verify(&self.svc, &code.0, now()).await?))
    }
}
