//! HTTP API of learning: the catalogue, enrolments and progress.

use poem_openapi::{
    param::{Path, Query},
    payload::{Attachment, AttachmentType, Json},
    ApiResponse, Object, OpenApi, Tags,
};
use serde::Deserialize;
use trainflow_kernel::{
    auth::{Role, TenantAuth},
    body::{Body, File},
    domain::ApiDate,
    envelope::{created, ok, Created, List, NoContent, Ok200, Page},
    now, ApiError, ApiResult,
};
use uuid::Uuid;

use crate::{
    catalogue::{
        Course, CourseChange, CourseFilter, CourseRef, CourseStatus, Difficulty, Lesson,
        LessonChange, LessonKind, Module, ModuleChange, TreeEntry,
    },
    enrolments::{Enrolment, EnrolmentStatus},
    materials::Material,
    service::{
        self, Assignees, Assignment, AssignmentResult, CourseDetail, EnrolmentDetail,
        EnrolmentQuery, FeedAddress, MyCalendar, ProgressReport, RegistrationReport, Whose,
    },
    topics::{Topic, TopicChange},
    Learning,
};

/// An Excel workbook.
#[derive(ApiResponse)]
pub enum Workbook {
    /// The workbook.
    #[oai(
        status = 200,
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )]
    Xlsx(Attachment<Vec<u8>>),
}

/// A lesson's file.
#[derive(ApiResponse)]
pub enum MaterialFile {
    /// The file.
    #[oai(status = 200, content_type = "application/octet-stream")]
    File(Attachment<Vec<u8>>),
}

#[derive(Tags)]
enum Tag {
    /// Courses, their modules, lessons and prerequisites.
    Courses,
    /// Enrolments in courses and progress through them.
    Enrolments,
    /// One's calendar and its feed.
    Calendar,
}

/// The learning API.
pub struct LearningApi {
    pub svc: Learning,
}

/// Body of `POST /courses`: `code` and `title` are required; the other fields may be left out
/// or `null` (their defaults).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateCourse {
    /// Unique among the tenant's courses.
    #[oai(validator(
        max_length = 50,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub code: String,
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub title: String,
    /// Blank: none.
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub category: Option<String>,
    /// Default `beginner`.
    #[oai(nullable)]
    pub difficulty: Option<Difficulty>,
    /// More than 0 and at most 10,000.
    #[oai(
        nullable,
        validator(minimum(value = "0", exclusive), maximum(value = "10000"))
    )]
    pub duration_hours: Option<f64>,
    /// Blank: none.
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    /// A department of the tenant.
    #[oai(nullable)]
    pub department_id: Option<Uuid>,
    /// An active person of the tenant who answers for the course.
    #[oai(nullable)]
    pub owner_id: Option<Uuid>,
    /// Default `draft`.
    #[oai(nullable)]
    pub status: Option<CourseStatus>,
    /// Default true.
    #[oai(nullable)]
    pub self_enrol: Option<bool>,
    /// Months the certificate of completion is valid, 1–240 (default: it does not expire).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "240")))]
    pub certificate_months: Option<i32>,
}

/// Turns blank optional text into "none".
fn text(v: Option<String>) -> Option<Option<String>> {
    v.map(|s| Some(s).filter(|s| !s.trim().is_empty()))
}

impl From<CreateCourse> for CourseChange {
    fn from(b: CreateCourse) -> Self {
        CourseChange {
            code: Some(b.code),
            title: Some(b.title),
            category: text(b.category),
            difficulty: b.difficulty,
            duration_hours: b.duration_hours.map(Some),
            description: text(b.description),
            department_id: b.department_id.map(Some),
            owner_id: b.owner_id.map(Some),
            status: b.status,
            self_enrol: b.self_enrol,
            certificate_months: b.certificate_months.map(Some),
        }
    }
}

/// Body of `PATCH /courses/{id}`: a field left out or `null` keeps its value; blank text clears
/// `category` and `description`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PatchCourse {
    #[oai(
        nullable,
        validator(
            max_length = 50,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub code: Option<String>,
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub title: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub category: Option<String>,
    #[oai(nullable)]
    pub difficulty: Option<Difficulty>,
    /// More than 0 and at most 10,000, and at least the modules' hours.
    #[oai(
        nullable,
        validator(minimum(value = "0", exclusive), maximum(value = "10000"))
    )]
    pub duration_hours: Option<f64>,
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    #[oai(nullable)]
    pub department_id: Option<Uuid>,
    #[oai(nullable)]
    pub owner_id: Option<Uuid>,
    /// `published` opens the course to people; `archived` closes it to new enrolments.
    #[oai(nullable)]
    pub status: Option<CourseStatus>,
    #[oai(nullable)]
    pub self_enrol: Option<bool>,
    /// Months the certificate of completion is valid, 1–240; 0 makes it not expire.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "240")))]
    pub certificate_months: Option<i32>,
}

impl From<PatchCourse> for CourseChange {
    fn from(b: PatchCourse) -> Self {
        CourseChange {
            code: b.code,
            title: b.title,
            category: text(b.category),
            difficulty: b.difficulty,
            duration_hours: b.duration_hours.map(Some),
            description: text(b.description),
            department_id: b.department_id.map(Some),
            owner_id: b.owner_id.map(Some),
            status: b.status,
            self_enrol: b.self_enrol,
            certificate_months: b.certificate_months.map(|m| Some(m).filter(|&m| m > 0)),
        }
    }
}

/// Body of `POST /courses/{id}/modules`: `title` is required; the other fields may be left
/// out or `null` (their defaults).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateModule {
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub title: String,
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    /// 0–10,000 (default 0); the course's modules together stay within its duration.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "10000")))]
    pub duration_hours: Option<f64>,
    /// 1–1000, unique in the course (default: after the last).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000")))]
    pub position: Option<i32>,
}

impl From<CreateModule> for ModuleChange {
    fn from(b: CreateModule) -> Self {
        ModuleChange {
            title: Some(b.title),
            description: text(b.description),
            duration_hours: b.duration_hours,
            position: b.position,
        }
    }
}

/// Body of `PATCH /modules/{id}`: a field left out or `null` keeps its value; blank text clears
/// `description`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ModuleBody {
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub title: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    /// 0–10,000; the course's modules together stay within its duration.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "10000")))]
    pub duration_hours: Option<f64>,
    /// 1–1000, unique in the course.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000")))]
    pub position: Option<i32>,
}

impl From<ModuleBody> for ModuleChange {
    fn from(b: ModuleBody) -> Self {
        ModuleChange {
            title: b.title,
            description: text(b.description),
            duration_hours: b.duration_hours,
            position: b.position,
        }
    }
}

/// Body of `POST /courses/{id}/topics`: `title` is required; the other fields may be left out
/// or `null` (their defaults).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateTopic {
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub title: String,
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    /// 0–10,000 (default 0): a course's topics together stay within its duration, a topic's
    /// subtopics within the topic's hours.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "10000")))]
    pub duration_hours: Option<f64>,
    /// 1–1000, unique among its siblings (default: after the last).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000")))]
    pub position: Option<i32>,
    /// A topic of the course: the new one is its subtopic (default: a topic of the course).
    #[oai(nullable)]
    pub parent_id: Option<Uuid>,
}

/// Body of `PATCH /topics/{id}`: a field left out or `null` keeps its value; blank text clears
/// `description`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct TopicBody {
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub title: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub description: Option<String>,
    /// 0–10,000, within the course's duration (a topic) or the topic's hours (a subtopic), and
    /// for a topic at least its subtopics' hours.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "10000")))]
    pub duration_hours: Option<f64>,
    /// 1–1000, unique among its siblings.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000")))]
    pub position: Option<i32>,
}

impl From<TopicBody> for TopicChange {
    fn from(b: TopicBody) -> Self {
        TopicChange {
            title: b.title,
            description: text(b.description),
            duration_hours: b.duration_hours,
            position: b.position,
        }
    }
}

/// Body of `POST /modules/{id}/lessons`: `title` is required; a `text` lesson needs `body`, a
/// `link` lesson `url`; the other fields may be left out or `null` (their defaults).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateLesson {
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub title: String,
    /// Default `text`.
    #[oai(nullable)]
    pub kind: Option<LessonKind>,
    #[oai(
        nullable,
        validator(max_length = 100000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub body: Option<String>,
    /// An `http://` or `https://` address.
    #[oai(
        nullable,
        validator(max_length = 2000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub url: Option<String>,
    /// 0–10,000 (default 0).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "10000")))]
    pub duration_minutes: Option<i32>,
    /// Whether completing the course needs it (default: true, but false for an assessment
    /// lesson, which cannot be required until quizzes can be taken).
    #[oai(nullable)]
    pub required: Option<bool>,
    /// 1–1000, unique in the module (default: after the last).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000")))]
    pub position: Option<i32>,
}

impl From<CreateLesson> for LessonChange {
    fn from(b: CreateLesson) -> Self {
        LessonChange {
            title: Some(b.title),
            kind: b.kind,
            body: text(b.body),
            url: text(b.url),
            duration_minutes: b.duration_minutes,
            required: b.required,
            position: b.position,
        }
    }
}

/// Body of `PATCH /lessons/{id}`: a field left out or `null` keeps its value; blank text clears
/// `body` and `url` (a `text` lesson keeps a `body`, a `link` lesson a `url`).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct LessonBody {
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub title: Option<String>,
    #[oai(nullable)]
    pub kind: Option<LessonKind>,
    #[oai(
        nullable,
        validator(max_length = 100000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub body: Option<String>,
    /// An `http://` or `https://` address.
    #[oai(
        nullable,
        validator(max_length = 2000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub url: Option<String>,
    /// 0–10,000.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "10000")))]
    pub duration_minutes: Option<i32>,
    #[oai(nullable)]
    pub required: Option<bool>,
    /// 1–1000, unique in the module.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "1000")))]
    pub position: Option<i32>,
}

impl From<LessonBody> for LessonChange {
    fn from(b: LessonBody) -> Self {
        LessonChange {
            title: b.title,
            kind: b.kind,
            body: text(b.body),
            url: text(b.url),
            duration_minutes: b.duration_minutes,
            required: b.required,
            position: b.position,
        }
    }
}

/// Body of `POST /courses/{id}/prerequisites`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct AddPrerequisite {
    /// The course that must be completed first.
    pub required_course_id: Uuid,
}

/// Body of `POST /courses/{id}/assignments`: whom to enrol — `user_ids`, else everyone of
/// `department_id`, else everyone with `role` (the first of them given decides; at least one).
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct AssignBody {
    /// 1–500 active people of the tenant (a manager: people who report to them).
    #[oai(nullable, validator(min_items = 1, max_items = 500))]
    pub user_ids: Option<Vec<Uuid>>,
    /// Everyone active in this department (those who manage courses).
    #[oai(nullable)]
    pub department_id: Option<Uuid>,
    /// Everyone active with this role (those who manage courses).
    #[oai(nullable)]
    pub role: Option<Role>,
    /// Not in the past; between 1900-01-01 and 2999-12-31.
    #[serde(default)]
    #[oai(nullable)]
    pub due_on: Option<ApiDate>,
    /// Administrators only: enrol people who have not completed the prerequisites, and why.
    #[oai(
        nullable,
        validator(
            max_length = 2000,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub override_reason: Option<String>,
}

impl TryFrom<AssignBody> for Assignment {
    type Error = ApiError;
    fn try_from(b: AssignBody) -> Result<Self, ApiError> {
        // The most specific audience given decides.
        let to = match (b.user_ids, b.department_id, b.role) {
            (Some(ids), _, _) => Assignees::People(ids),
            (None, Some(d), _) => Assignees::Department(d),
            (None, None, Some(r)) => Assignees::Role(r),
            (None, None, None) => {
                return Err(ApiError::field(
                    "user_ids",
                    "give user_ids, department_id or role",
                ))
            }
        };
        let override_reason = b
            .override_reason
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        Ok(Assignment {
            to,
            due_on: b.due_on.map(|d| d.0),
            override_reason,
        })
    }
}

/// Body of `POST /enrolments/{id}/cancel`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CancelBody {
    #[oai(
        nullable,
        validator(max_length = 2000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub reason: Option<String>,
}

/// Body of `POST /enrolments/{id}/progress`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ProgressBody {
    /// A lesson of the enrolment's course.
    pub lesson_id: Uuid,
    /// The lesson is done (it stays done). Default false. Assessment lessons are completed by
    /// passing their quiz.
    #[oai(nullable)]
    pub completed: Option<bool>,
    /// Seconds spent since the last report (0–86,400, default 0), added to the lesson's total.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "86400")))]
    pub seconds_spent: Option<i32>,
}

/// The course categories in use.
#[derive(Debug, Object)]
pub struct Categories {
    pub categories: Vec<String>,
}

#[OpenApi(prefix_path = "/api/v1")]
impl LearningApi {
    /// The catalogue by title: published courses, or (with `courses_manage`) any status, or the
    /// deleted ones. `q` matches words of the title, code, category and description.
    #[oai(path = "/courses", method = "get", tag = "Tag::Courses")]
    #[allow(clippy::too_many_arguments)] // one per query parameter
    async fn list_courses(
        &self,
        auth: TenantAuth,
        #[oai(validator(max_length = 200))] q: Query<Option<String>>,
        #[oai(validator(max_length = 100))] category: Query<Option<String>>,
        status: Query<Option<CourseStatus>>,
        department_id: Query<Option<Uuid>>,
        /// Deleted courses instead of live ones (`courses_manage`).
        deleted: Query<Option<bool>>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Course>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let filter = CourseFilter {
            search: q.0,
            category: category.0.filter(|c| !c.trim().is_empty()),
            status: status.0,
            department_id: department_id.0,
            published_only: false,
            deleted: deleted.0.unwrap_or(false),
        };
        let (rows, total) = service::list_courses(&self.svc, &auth.0, filter, page).await?;
        Ok(page.list(rows, total))
    }

    /// The categories of the courses the caller may see.
    #[oai(path = "/courses/categories", method = "get", tag = "Tag::Courses")]
    async fn categories(&self, auth: TenantAuth) -> ApiResult<Ok200<Categories>> {
        Ok(ok(Categories {
            categories: service::categories(&self.svc, &auth.0).await?,
        }))
    }

    /// Add a course (a draft unless `status` says otherwise).
    #[oai(path = "/courses", method = "post", tag = "Tag::Courses")]
    async fn create_course(
        &self,
        auth: TenantAuth,
        body: Body<CreateCourse>,
    ) -> ApiResult<Created<Course>> {
        Ok(created(
            service::create_course(&self.svc, &auth.0, body.0.into(), now()).await?,
        ))
    }

    /// The Excel template of mass registration (those who manage courses): sheets `Courses`,
    /// `Modules` and `Topics` with their headings, and the instructions.
    #[oai(
        path = "/courses/registration-template",
        method = "get",
        tag = "Tag::Courses"
    )]
    async fn registration_template(&self, auth: TenantAuth) -> ApiResult<Workbook> {
        let bytes = service::registration_template(&self.svc, &auth.0).await?;
        Ok(Workbook::Xlsx(
            Attachment::new(bytes)
                .attachment_type(AttachmentType::Attachment)
                .filename("course-registration.xlsx"),
        ))
    }

    /// Register courses, their modules and their topics from a filled-in template (the request
    /// body, an `.xlsx` workbook of at most 5 MiB and 2,000 rows a sheet). Every row is checked
    /// on its own: the rows that pass are registered and the report lists the others with their
    /// sheet, row and reason; with `dry_run=true` nothing is registered.
    #[oai(path = "/courses/registrations", method = "post", tag = "Tag::Courses")]
    async fn register_courses(
        &self,
        auth: TenantAuth,
        /// Check the workbook without registering anything (default false).
        dry_run: Query<Option<bool>>,
        mut body: File,
    ) -> ApiResult<Ok200<RegistrationReport>> {
        Ok(ok(service::register_courses(
            &self.svc,
            &auth.0,
            &mut body,
            dry_run.0.unwrap_or(false),
            now(),
        )
        .await?))
    }

    /// A course with its modules and lessons, its prerequisites (and those the caller has not
    /// completed) and the caller's open enrolment. Drafts and archived courses are visible only
    /// with `courses_manage`.
    #[oai(path = "/courses/:id", method = "get", tag = "Tag::Courses")]
    async fn get_course(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<CourseDetail>> {
        Ok(ok(service::course_detail(&self.svc, &auth.0, id.0).await?))
    }

    /// Change a course (only the fields given).
    #[oai(path = "/courses/:id", method = "patch", tag = "Tag::Courses")]
    async fn patch_course(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<PatchCourse>,
    ) -> ApiResult<Ok200<Course>> {
        Ok(ok(service::update_course(
            &self.svc,
            &auth.0,
            id.0,
            body.0.into(),
            now(),
        )
        .await?))
    }

    /// Soft-delete a course nobody is enrolled in (`409` while people are: archive it instead).
    #[oai(path = "/courses/:id", method = "delete", tag = "Tag::Courses")]
    async fn delete_course(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Course>> {
        Ok(ok(
            service::delete_course(&self.svc, &auth.0, id.0, now()).await?
        ))
    }

    /// Restore a deleted course (`409` on `code` when another course took its code).
    #[oai(path = "/courses/:id/restore", method = "post", tag = "Tag::Courses")]
    async fn restore_course(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Course>> {
        Ok(ok(
            service::restore_course(&self.svc, &auth.0, id.0, now()).await?
        ))
    }

    /// Everything the course requires, directly and through its prerequisites, depth first.
    #[oai(
        path = "/courses/:id/prerequisites",
        method = "get",
        tag = "Tag::Courses"
    )]
    async fn prerequisite_tree(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Vec<TreeEntry>>> {
        Ok(ok(
            service::prerequisite_tree(&self.svc, &auth.0, id.0).await?
        ))
    }

    /// Make a course a prerequisite of this one; `422` on `required_course_id` names the cycle
    /// the edge would close. Returns the course's direct prerequisites.
    #[oai(
        path = "/courses/:id/prerequisites",
        method = "post",
        tag = "Tag::Courses"
    )]
    async fn add_prerequisite(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<AddPrerequisite>,
    ) -> ApiResult<Ok200<Vec<CourseRef>>> {
        Ok(ok(service::add_prerequisite(
            &self.svc,
            &auth.0,
            id.0,
            body.0.required_course_id,
            now(),
        )
        .await?))
    }

    /// Remove a prerequisite.
    #[oai(
        path = "/courses/:id/prerequisites/:required_id",
        method = "delete",
        tag = "Tag::Courses"
    )]
    async fn remove_prerequisite(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        required_id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        service::remove_prerequisite(&self.svc, &auth.0, id.0, required_id.0, now()).await?;
        Ok(NoContent::NoContent)
    }

    /// Add a module to a course.
    #[oai(path = "/courses/:id/modules", method = "post", tag = "Tag::Courses")]
    async fn add_module(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<CreateModule>,
    ) -> ApiResult<Created<Module>> {
        Ok(created(
            service::add_module(&self.svc, &auth.0, id.0, body.0.into(), now()).await?,
        ))
    }

    /// Change a module.
    #[oai(path = "/modules/:id", method = "patch", tag = "Tag::Courses")]
    async fn patch_module(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<ModuleBody>,
    ) -> ApiResult<Ok200<Module>> {
        Ok(ok(service::update_module(
            &self.svc,
            &auth.0,
            id.0,
            body.0.into(),
            now(),
        )
        .await?))
    }

    /// Soft-delete a module (its lessons go with it).
    #[oai(path = "/modules/:id", method = "delete", tag = "Tag::Courses")]
    async fn delete_module(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Module>> {
        Ok(ok(service::set_module_deleted(
            &self.svc,
            &auth.0,
            id.0,
            true,
            now(),
        )
        .await?))
    }

    /// Restore a deleted module (`409` on `position` when another module took its place).
    #[oai(path = "/modules/:id/restore", method = "post", tag = "Tag::Courses")]
    async fn restore_module(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Module>> {
        Ok(ok(service::set_module_deleted(
            &self.svc,
            &auth.0,
            id.0,
            false,
            now(),
        )
        .await?))
    }

    /// Add a lesson to a module.
    #[oai(path = "/modules/:id/lessons", method = "post", tag = "Tag::Courses")]
    async fn add_lesson(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<CreateLesson>,
    ) -> ApiResult<Created<Lesson>> {
        Ok(created(
            service::add_lesson(&self.svc, &auth.0, id.0, body.0.into(), now()).await?,
        ))
    }

    /// Change a lesson.
    #[oai(path = "/lessons/:id", method = "patch", tag = "Tag::Courses")]
    async fn patch_lesson(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<LessonBody>,
    ) -> ApiResult<Ok200<Lesson>> {
        Ok(ok(service::update_lesson(
            &self.svc,
            &auth.0,
            id.0,
            body.0.into(),
            now(),
        )
        .await?))
    }

    /// Soft-delete a lesson.
    #[oai(path = "/lessons/:id", method = "delete", tag = "Tag::Courses")]
    async fn delete_lesson(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Lesson>> {
        Ok(ok(service::set_lesson_deleted(
            &self.svc,
            &auth.0,
            id.0,
            true,
            now(),
        )
        .await?))
    }

    /// Restore a deleted lesson (`409` on `position` when another lesson took its place).
    #[oai(path = "/lessons/:id/restore", method = "post", tag = "Tag::Courses")]
    async fn restore_lesson(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Lesson>> {
        Ok(ok(service::set_lesson_deleted(
            &self.svc,
            &auth.0,
            id.0,
            false,
            now(),
        )
        .await?))
    }

    /// Add a topic to a course's syllabus, or (with `parent_id`) a subtopic to one of its
    /// topics (`422` on `duration_hours` when the hours would exceed the course's duration or
    /// the topic's).
    #[oai(path = "/courses/:id/topics", method = "post", tag = "Tag::Courses")]
    async fn add_topic(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<CreateTopic>,
    ) -> ApiResult<Created<Topic>> {
        let b = body.0;
        let change = TopicChange {
            title: Some(b.title),
            description: text(b.description),
            duration_hours: b.duration_hours,
            position: b.position,
        };
        Ok(created(
            service::add_topic(&self.svc, &auth.0, id.0, b.parent_id, change, now()).await?,
        ))
    }

    /// Change a topic or subtopic.
    #[oai(path = "/topics/:id", method = "patch", tag = "Tag::Courses")]
    async fn patch_topic(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<TopicBody>,
    ) -> ApiResult<Ok200<Topic>> {
        Ok(ok(service::update_topic(
            &self.svc,
            &auth.0,
            id.0,
            body.0.into(),
            now(),
        )
        .await?))
    }

    /// Soft-delete a topic (its subtopics go with it) or a subtopic.
    #[oai(path = "/topics/:id", method = "delete", tag = "Tag::Courses")]
    async fn delete_topic(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Topic>> {
        Ok(ok(service::set_topic_deleted(
            &self.svc,
            &auth.0,
            id.0,
            true,
            now(),
        )
        .await?))
    }

    /// Restore a deleted topic or subtopic (`409` on `position` when another took its place,
    /// on `parent_id` while the subtopic's topic is deleted).
    #[oai(path = "/topics/:id/restore", method = "post", tag = "Tag::Courses")]
    async fn restore_topic(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Topic>> {
        Ok(ok(service::set_topic_deleted(
            &self.svc,
            &auth.0,
            id.0,
            false,
            now(),
        )
        .await?))
    }

    /// Attach a file to a lesson (the request body, at most 20 MiB; a lesson holds at most 20).
    /// Lessons accept PDF, PNG, JPEG, MP4, Word, Excel or PowerPoint (`.docx`, `.xlsx`,
    /// `.pptx`) and UTF-8 text (`.txt`, `.md`, `.csv`): the name's extension says which, and the
    /// content must be one (`422` on `filename` or `body`); the type kept is the one recognised.
    #[oai(path = "/lessons/:id/materials", method = "post", tag = "Tag::Courses")]
    async fn upload_material(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// The file's name, without slashes, ending in the extension of its type.
        #[oai(validator(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F/\\]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000/\\][^\x00-\x08\x0B-\x1F\x7F-\x9F/\\]*$"
        ))]
        filename: Query<String>,
        mut body: File,
    ) -> ApiResult<Created<Material>> {
        Ok(created(
            service::upload_material(&self.svc, &auth.0, id.0, &filename.0, &mut body, now())
                .await?,
        ))
    }

    /// The files of a lesson of a course the caller may see.
    #[oai(path = "/lessons/:id/materials", method = "get", tag = "Tag::Courses")]
    async fn lesson_materials(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Vec<Material>>> {
        Ok(ok(
            service::lesson_materials(&self.svc, &auth.0, id.0).await?
        ))
    }

    /// Download a lesson's file (as an attachment under its name; its type is the material's
    /// `content_type`).
    #[oai(path = "/materials/:id", method = "get", tag = "Tag::Courses")]
    async fn download_material(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<MaterialFile> {
        let (m, bytes) = service::material_file(&self.svc, &auth.0, id.0).await?;
        Ok(MaterialFile::File(
            Attachment::new(bytes)
                .attachment_type(AttachmentType::Attachment)
                .filename(m.file_name),
        ))
    }

    /// Soft-delete a lesson's file.
    #[oai(path = "/materials/:id", method = "delete", tag = "Tag::Courses")]
    async fn delete_material(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Material>> {
        Ok(ok(service::set_material_deleted(
            &self.svc,
            &auth.0,
            id.0,
            true,
            now(),
        )
        .await?))
    }

    /// Restore a deleted file (`409` on `lesson_id` when the lesson holds 20 already).
    #[oai(path = "/materials/:id/restore", method = "post", tag = "Tag::Courses")]
    async fn restore_material(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Material>> {
        Ok(ok(service::set_material_deleted(
            &self.svc,
            &auth.0,
            id.0,
            false,
            now(),
        )
        .await?))
    }

    /// Enrol in a published course open to self-enrolment (`409` on `prerequisites` names the
    /// courses to complete first).
    #[oai(path = "/courses/:id/enrol", method = "post", tag = "Tag::Enrolments")]
    async fn enrol(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Created<Enrolment>> {
        Ok(created(
            service::enrol_self(&self.svc, &auth.0, id.0, now()).await?,
        ))
    }

    /// Assign a published course to people, a department or a role, with an optional due date.
    /// People already enrolled or missing the prerequisites are skipped (an administrator may
    /// override the prerequisites with a reason); each person enrolled is told.
    #[oai(
        path = "/courses/:id/assignments",
        method = "post",
        tag = "Tag::Enrolments"
    )]
    async fn assign(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<AssignBody>,
    ) -> ApiResult<Ok200<AssignmentResult>> {
        let assignment = Assignment::try_from(body.0)?;
        Ok(ok(service::assign(
            &self.svc,
            &auth.0,
            id.0,
            assignment,
            now(),
        )
        .await?))
    }

    /// Enrolments, newest first: the caller's (`whose=mine`, the default), their team's
    /// (`team`), or everyone's (`all`, with `courses_manage`).
    #[oai(path = "/enrolments", method = "get", tag = "Tag::Enrolments")]
    #[allow(clippy::too_many_arguments)] // one per query parameter
    async fn list_enrolments(
        &self,
        auth: TenantAuth,
        whose: Query<Option<Whose>>,
        user_id: Query<Option<Uuid>>,
        course_id: Query<Option<Uuid>>,
        status: Query<Option<EnrolmentStatus>>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Enrolment>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let q = EnrolmentQuery {
            whose: whose.0.unwrap_or(Whose::Mine),
            user_id: user_id.0,
            course_id: course_id.0,
            status: status.0,
        };
        let (rows, total) = service::list_enrolments(&self.svc, &auth.0, q, page).await?;
        Ok(page.list(rows, total))
    }

    /// An enrolment with progress per lesson and module, and its history.
    #[oai(path = "/enrolments/:id", method = "get", tag = "Tag::Enrolments")]
    async fn get_enrolment(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<EnrolmentDetail>> {
        Ok(ok(
            service::enrolment_detail(&self.svc, &auth.0, id.0).await?
        ))
    }

    /// Cancel an open enrolment.
    #[oai(
        path = "/enrolments/:id/cancel",
        method = "post",
        tag = "Tag::Enrolments"
    )]
    async fn cancel_enrolment(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<CancelBody>,
    ) -> ApiResult<Ok200<Enrolment>> {
        Ok(ok(service::cancel_enrolment(
            &self.svc,
            &auth.0,
            id.0,
            body.0.reason,
            now(),
        )
        .await?))
    }

    /// Record progress on a lesson: time spent and, with `completed`, its completion. The first
    /// report starts the enrolment; completing the last required lesson completes it.
    #[oai(
        path = "/enrolments/:id/progress",
        method = "post",
        tag = "Tag::Enrolments"
    )]
    async fn record_progress(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<ProgressBody>,
    ) -> ApiResult<Ok200<EnrolmentDetail>> {
        let report = ProgressReport {
            lesson_id: body.0.lesson_id,
            completed: body.0.completed.unwrap_or(false),
            seconds_spent: body.0.seconds_spent.unwrap_or(0),
        };
        Ok(ok(service::record_progress(
            &self.svc,
            &auth.0,
            id.0,
            report,
            now(),
        )
        .await?))
    }

    /// The caller's calendar: their enrolments' due dates, their certifications' renewal dates
    /// and expiries, from 90 days ago on; and whether they have a feed address.
    #[oai(path = "/calendar", method = "get", tag = "Tag::Calendar")]
    async fn my_calendar(&self, auth: TenantAuth) -> ApiResult<Ok200<MyCalendar>> {
        Ok(ok(service::my_calendar(&self.svc, &auth.0, now()).await?))
    }

    /// Issue the caller a secret address of their calendar as an iCalendar feed, for a
    /// calendar application to subscribe to. It is shown only now; issuing again revokes the
    /// earlier address.
    #[oai(path = "/calendar/feed", method = "put", tag = "Tag::Calendar")]
    async fn issue_feed(&self, auth: TenantAuth) -> ApiResult<Ok200<FeedAddress>> {
        Ok(ok(service::issue_feed(&self.svc, &auth.0, now()).await?))
    }

    /// Revoke the caller's calendar feed address.
    #[oai(path = "/calendar/feed", method = "delete", tag = "Tag::Calendar")]
    async fn revoke_feed(&self, auth: TenantAuth) -> ApiResult<NoContent> {
        service::revoke_feed(&self.svc, &auth.0, now()).await?;
        Ok(NoContent::NoContent)
    }
}
