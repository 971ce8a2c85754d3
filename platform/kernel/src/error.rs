//! The one error type of the API. Every failure maps to a stable snake_case code and a status;
//! internal errors are logged with their whole cause chain and answered with a generic message.

use std::collections::BTreeMap;

use poem::{error::ResponseError, http::StatusCode, IntoResponse, Response};
use poem_openapi::{
    registry::{
        MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
    },
    types::Type,
    ApiResponse, Object,
};

/// Field name → messages, the `fields` member of an error body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A single error on one field.
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// Records `message` against `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// Keeps the value of `result`, or records its error against `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else a validation error.
    pub fn into_result(self) -> ApiResult<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self))
        }
    }
}

/// Every way an API call can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request was understood but one or more fields are invalid (422).
    #[error("validation failed")]
    Validation(FieldErrors),
    /// The body is not JSON, or not the JSON this operation takes (400).
    #[error("{message}")]
    BadRequest {
        /// Human-readable reason.
        message: String,
        /// The field, when one can be named.
        field: Option<String>,
    },
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but the role may not do this (403).
    #[error("permission denied")]
    Forbidden,
    /// The object does not exist — or belongs to another tenant (404).
    #[error("not found")]
    NotFound,
    /// A uniqueness or state conflict on a named field (409).
    #[error("{message}")]
    Conflict {
        /// The conflicting field.
        field: String,
        /// Why.
        message: String,
    },
    /// Too many attempts; retry after the given number of seconds (429).
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The body is larger than this operation accepts (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The path exists but has no operation for this HTTP method (405). `allow` lists the
    /// methods the path has (sent as the `Allow` header; left out when not known).
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The path's methods, e.g. `["GET", "POST"]`.
        allow: Vec<String>,
    },
    /// Anything else: logged in full, answered with a generic message (500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => ApiError::NotFound,
            other => ApiError::Internal(anyhow::Error::new(other).context("database error")),
        }
    }
}

impl ApiError {
    /// Shorthand for a one-field validation error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(FieldErrors::one(field, message))
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The body this error is answered with.
    pub fn body(&self) -> ErrorEnvelope {
        let fields = match self {
            ApiError::Validation(f) => f.0.clone(),
            ApiError::BadRequest {
                field: Some(field),
                message,
            } => FieldErrors::one(field.clone(), message.clone()).0,
            ApiError::Conflict { field, message } => {
                FieldErrors::one(field.clone(), message.clone()).0
            }
            _ => BTreeMap::new(),
        };
        let message = match self {
            ApiError::Internal(_) => {
                "internal error; quote the request id when reporting it".to_string()
            }
            ApiError::Validation(f) => {
                let names: Vec<&str> = f.0.keys().map(String::as_str).collect();
                format!("invalid fields: {}", names.join(", "))
            }
            ApiError::MethodNotAllowed { allow } if !allow.is_empty() => {
                format!("method not allowed; the path allows {}", allow.join(", "))
            }
            other => other.to_string(),
        };
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code().to_string(),
                message,
                fields,
                request_id: crate::request::current_id(),
            },
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ErrorBody,
}

/// What went wrong, with a stable code and the offending fields.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. `validation_failed`, `not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Field name → messages, for validation failures and conflicts.
    pub fields: BTreeMap<String, Vec<String>>,
    /// The request id, also sent as the `x-request-id` header.
    pub request_id: String,
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        if let ApiError::Internal(err) = self {
            tracing::error!(error = ?err, request_id = %crate::request::current_id(), "internal error");
        }
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = Response::builder()
            .status(self.status())
            .content_type("application/json; charset=utf-8")
            .body(body);
        if let ApiError::TooManyRequests { retry_after } = self {
            resp.headers_mut().insert(
                "retry-after",
                retry_after
                    .to_string()
                    .parse()
                    .expect("digits are a valid header"),
            );
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            if let (false, Ok(value)) = (
                allow.is_empty(),
                allow.join(", ").parse::<poem::http::HeaderValue>(),
            ) {
                resp.headers_mut().insert("allow", value);
            }
        }
        if let ApiError::Unauthorized(_) = self {
            resp.headers_mut()
                .insert("www-authenticate", "Bearer".parse().expect("static header"));
        }
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let statuses: [(u16, &'static str); 9] = [
            (400, "Malformed request"),
            (401, "Missing or invalid credentials"),
            (403, "The role may not do this"),
            (404, "Not found (also for another tenant's objects)"),
            (409, "Conflict with existing data"),
            (413, "Body too large"),
            (422, "Validation failed; `fields` names each invalid field"),
            (429, "Too many requests; see Retry-After"),
            (500, "Internal error"),
        ];
        MetaResponses {
            responses: statuses
                .into_iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorEnvelope::schema_ref(),
                    }],
                    headers: error_headers(status),
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }
}

/// The headers an error answer of `status` always carries.
fn error_headers(status: u16) -> Vec<MetaHeader> {
    let header = |name: &str, description: &str, schema: MetaSchema| MetaHeader {
        name: name.to_string(),
        description: Some(description.to_string()),
        required: true,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(schema)),
    };
    match status {
        401 => vec![header(
            "WWW-Authenticate",
            "`Bearer`.",
            MetaSchema::new("string"),
        )],
        429 => vec![header(
            "Retry-After",
            "Whole seconds to wait before retrying (at least 1).",
            MetaSchema {
                minimum: Some(1.0),
                ..MetaSchema::new_with_format("integer", "int64")
            },
        )],
        _ => vec![],
    }
}

/// Converts any error that escaped a handler (poem's own parse errors included) into the
/// envelope, naming the parameter where poem-openapi knows it.
pub fn from_poem_error(err: poem::Error) -> ApiError {
    if err.is::<ApiError>() {
        return err
            .downcast::<ApiError>()
            .unwrap_or_else(|_| ApiError::NotFound);
    }
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        return ApiError::field(path_param_name(e.name), friendly_reason(&e.reason));
    }
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParsePathError>() {
        return ApiError::field(path_param_name(e.name), friendly_reason(&e.reason));
    }
    if err.is::<poem_openapi::error::AuthorizationError>() {
        return ApiError::Unauthorized("missing or invalid credentials");
    }
    let status = err.status();
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        // The edge fills in the path's methods; here they are not known.
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed { allow: Vec::new() },
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized("missing or invalid credentials"),
        StatusCode::FORBIDDEN => ApiError::Forbidden,
        s if s.is_client_error() => ApiError::BadRequest {
            message: err.to_string(),
            field: None,
        },
        _ => ApiError::Internal(anyhow::anyhow!("{err}")),
    }
}

/// poem-openapi routes path parameters under generated names (`param0`, …); every path
/// parameter of this API is an object id, so that is the name clients see.
fn path_param_name(name: &str) -> String {
    match name.strip_prefix("param") {
        Some(n) if n.chars().all(|c| c.is_ascii_digit()) => "id".to_string(),
        _ => name.to_string(),
    }
}

fn friendly_reason(reason: &str) -> String {
    if reason.contains("\"string_uuid\"") {
        "must be a UUID".to_string()
    } else if reason.contains("\"integer_") {
        "must be a whole number in range".to_string()
    } else if reason.contains("\"boolean\"") {
        "must be true or false".to_string()
    } else {
        reason.to_string()
    }
}
