//! `Body<T>`: the JSON request extractor of every operation.
//!
//! poem-openapi's own `Json<T>` reports type errors without the field's name. `Body<T>`
//! deserialises with serde (so `#[serde(deny_unknown_fields)]` applies) and reports the exact
//! path of the first offending field, while the schema in the OpenAPI document still comes from
//! the type's `Object` derive.

use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Largest JSON body any operation accepts (a global body limit also applies).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON request body of type `T`.
pub struct Body<T>(pub T);

impl<'a, T> ApiExtractor<'a> for Body<T>
where
    T: Type + ParseFromJSON + DeserializeOwned + Send + 'static,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: schema_ref::<T>(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let is_json = request
            .content_type()
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::BadRequest {
                message: "expected a JSON body with content-type application/json".into(),
                field: None,
            }
            .into());
        }
        let bytes =
            body.take()?
                .into_bytes_limit(MAX_JSON_BODY)
                .await
                .map_err(|err| match err {
                    poem::error::ReadBodyError::PayloadTooLarge => ApiError::PayloadTooLarge,
                    other => ApiError::BadRequest {
                        message: other.to_string(),
                        field: None,
                    },
                })?;
        let value = parse_json(&bytes)?;
        check_limits::<T>(&bytes)?;
        Ok(Body(value))
    }
}

/// Enforces the schema of the OpenAPI document on the body serde accepted, naming every field
/// it refuses: the body is validated against `T`'s schema as the document states it (types,
/// `nullable`, lengths, ranges, patterns, enumerations, item counts), then poem-openapi parses
/// it as `T` (unknown and read-only members). serde stays the authority on values and defaults
/// and names a type, missing or unknown field first; this refuses whatever the document does
/// not admit, so a body the document calls invalid is never accepted.
fn check_limits<T: Type + ParseFromJSON + 'static>(bytes: &[u8]) -> Result<(), ApiError> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    let mut errors = crate::FieldErrors::new();
    for error in validator::<T>().iter_errors(&json) {
        errors.add(field_name(&error.instance_path), limit_message(&error.kind));
    }
    errors.into_result()?;
    let Err(err) = T::parse_from_json(Some(json)) else {
        return Ok(());
    };
    let message = err.message();
    let quoted = |prefix: &str| {
        message
            .rsplit_once(prefix)
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(name, _)| name.to_string())
    };
    let field = quoted("field `")
        .or_else(|| quoted("properties `"))
        .unwrap_or_else(|| "body".to_string());
    let reason = match message.rsplit_once("verification failed. ") {
        Some((_, limit)) => format!("is outside its limit: {limit}"),
        None if message.contains("is read only") => "is read-only".to_string(),
        None => format!("does not match the schema: {message}"),
    };
    Err(ApiError::field(field, reason))
}

/// The JSON Schema validator of `T`'s schema, built once per type: the schema and every one it
/// refers to, as poem-openapi registers them, with OpenAPI 3.0's `nullable` written the JSON
/// Schema way. Patterns are ECMA-262 (the password policy's look-aheads included); formats are
/// left to serde.
fn validator<T: Type + 'static>() -> std::sync::Arc<jsonschema::Validator> {
    use std::{
        any::TypeId,
        collections::HashMap,
        sync::{Arc, Mutex, OnceLock},
    };
    static CACHE: OnceLock<Mutex<HashMap<TypeId, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache
        .lock()
        .expect("validator cache")
        .get(&TypeId::of::<T>())
    {
        return v.clone();
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let mut root = serde_json::to_value(T::schema_ref()).expect("a schema serialises");
    let components =
        serde_json::to_value(&registry.schemas).expect("the registered schemas serialise");
    if let Some(obj) = root.as_object_mut() {
        obj.insert(
            "components".into(),
            serde_json::json!({ "schemas": components }),
        );
    }
    json_schema_for_requests(&mut root);
    let built = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(false)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema of {} is valid: {e}", T::name()));
    let built = Arc::new(built);
    cache
        .lock()
        .expect("validator cache")
        .insert(TypeId::of::<T>(), built.clone());
    built
}

/// Rewrites OpenAPI 3.0 as JSON Schema for a request: `nullable: true` lets `null` join the
/// type (and the enumeration), or, next to `allOf`/`$ref`, an `anyOf` admits it; a read-only
/// member is never required of a request (poem-openapi refuses it when sent).
fn json_schema_for_requests(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                json_schema_for_requests(v);
            }
            let read_only: Vec<String> = map
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .filter(|(_, p)| p.get("readOnly") == Some(&Value::Bool(true)))
                        .map(|(name, _)| name.clone())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Array(required)) = map.get_mut("required") {
                required.retain(|r| !r.as_str().is_some_and(|r| read_only.iter().any(|n| n == r)));
            }
            if map.remove("nullable") != Some(Value::Bool(true)) {
                return;
            }
            match map.get("type").cloned() {
                Some(Value::String(ty)) => {
                    map.insert("type".into(), serde_json::json!([ty, "null"]));
                    if let Some(Value::Array(options)) = map.get_mut("enum") {
                        options.push(Value::Null);
                    }
                }
                _ => {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), serde_json::json!([inner, {"type": "null"}]));
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(json_schema_for_requests),
        _ => {}
    }
}

/// `/settings/primary_colour` → `settings.primary_colour`, `/steps/0/relation` →
/// `steps[0].relation`, the root → `body`.
fn field_name(path: &jsonschema::paths::Location) -> String {
    let mut out = String::new();
    let mut segments: Vec<_> = path.into_iter().collect();
    // An item of a list of values is named by its list (`settings.notification_channels`); an
    // item of a list of objects by its index (`steps[0].relation`).
    if matches!(
        segments.last(),
        Some(jsonschema::paths::LocationSegment::Index(_))
    ) {
        segments.pop();
    }
    for segment in segments {
        match segment {
            jsonschema::paths::LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
            jsonschema::paths::LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        "body".into()
    } else {
        out
    }
}

fn limit_message(kind: &jsonschema::error::ValidationErrorKind) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match kind {
        K::MaxLength { limit } => format!("must be at most {limit} characters"),
        K::MinLength { limit: 1 } => "must not be empty".into(),
        K::MinLength { limit } => format!("must be at least {limit} characters"),
        K::Maximum { limit } => format!("must be at most {limit}"),
        K::Minimum { limit } => format!("must be at least {limit}"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::Pattern { .. } => "is not in the form the schema states (its `pattern`)".into(),
        K::Enum { options } => format!("must be one of {options}"),
        K::Type { .. } | K::AnyOf { .. } => "has the wrong type or form".into(),
        K::Required { property } => format!("{property} is required"),
        other => format!("does not match the schema ({other:?})"),
    }
}

/// A file sent as the raw request body (`application/octet-stream`; any content type is read
/// as bytes). The schema states that it is not empty (`minLength: 1`).
///
/// Nothing of the body is read when the operation starts: the use case checks who may send it
/// and what it is for first, then [`File::read`]s it, up to its own limit. A body left unread
/// (the request was refused) is drained by the server's edge, so the client gets the answer.
pub struct File {
    body: Option<poem::Body>,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("read", &self.body.is_none())
            .finish()
    }
}

impl File {
    /// A file of `bytes` (tests and callers that hold the content already).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        File {
            body: Some(poem::Body::from(bytes)),
        }
    }

    /// A file read from `reader` only as [`File::read`] asks (a multipart field, whose limit is
    /// then the use case's, not the whole request's).
    pub fn from_reader(reader: impl tokio::io::AsyncRead + Send + 'static) -> Self {
        File {
            body: Some(poem::Body::from_async_read(reader)),
        }
    }

    /// Reads the whole file: a 413 past `max` bytes (reading stops there), a 422 naming `body`
    /// when it is empty. A file is read once.
    pub async fn read(&mut self, max: usize) -> Result<Vec<u8>, ApiError> {
        use tokio::io::AsyncReadExt;
        let body = self
            .body
            .take()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the file was read already")))?;
        let mut content = Vec::new();
        body.into_async_read()
            .take(max as u64 + 1)
            .read_to_end(&mut content)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::FileTooLarge => ApiError::PayloadTooLarge,
                _ => ApiError::BadRequest {
                    message: format!("the file could not be read: {e}"),
                    field: Some("body".into()),
                },
            })?;
        if content.len() > max {
            return Err(ApiError::PayloadTooLarge);
        }
        if content.is_empty() {
            return Err(ApiError::field("body", "the file is empty"));
        }
        Ok(content)
    }
}

impl poem_openapi::payload::Payload for File {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    fn check_content_type(_content_type: &str) -> bool {
        true
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(poem_openapi::registry::MetaSchema {
            format: Some("binary"),
            min_length: Some(1),
            ..poem_openapi::registry::MetaSchema::new("string")
        }))
    }
}

impl poem_openapi::payload::ParsePayload for File {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(File {
            body: Some(body.take()?),
        })
    }
}

impl<'a> ApiExtractor<'a> for File {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as poem_openapi::payload::Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Self as poem_openapi::payload::Payload>::CONTENT_TYPE,
                schema: <Self as poem_openapi::payload::Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        if request.content_type().is_none() {
            return Err(ApiError::BadRequest {
                message: "expected a content-type (the file is the body)".into(),
                field: None,
            }
            .into());
        }
        <Self as poem_openapi::payload::ParsePayload>::from_request(request, body).await
    }
}

/// `#[serde(default, deserialize_with = "trainflow_kernel::body::null_as_default")]`: a member
/// sent as `null` reads as its default, like one left out (the convention for optional request
/// fields; declare the field `nullable` in the schema).
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(d)?.unwrap_or_default())
}

fn schema_ref<T: Type>() -> MetaSchemaRef {
    T::schema_ref()
}

/// Parses `bytes` as `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object; say so plainly instead of naming an array index.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => return Err(ApiError::field("body", "is required")),
        Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
            return Err(ApiError::field("body", "must be a JSON object"))
        }
        Some(_) => {
            return Err(ApiError::BadRequest {
                message: "malformed JSON".into(),
                field: None,
            })
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest {
                message: format!("malformed JSON: {inner}"),
                field: None,
            };
        }
        let message = inner.to_string();
        // serde reports missing and unknown fields at the parent path; name the field itself.
        let field = extract_quoted(&message, "missing field `")
            .or_else(|| extract_quoted(&message, "unknown field `"))
            .map(|name| {
                if path == "." || path == name || path.ends_with(&format!(".{name}")) {
                    if path == "." {
                        name
                    } else {
                        path.clone()
                    }
                } else {
                    format!("{path}.{name}")
                }
            })
            .unwrap_or(if path == "." {
                "body".to_string()
            } else {
                path
            });
        ApiError::field(field, strip_position(&message))
    })
}

fn extract_quoted(message: &str, prefix: &str) -> Option<String> {
    let rest = message.split_once(prefix)?.1;
    Some(rest.split_once('`')?.0.to_string())
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        email: String,
        age: Option<u8>,
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(f) => f.0.keys().cloned().collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let err = parse_json::<Sample>(br#"{"email": 5}"#).unwrap_err();
        assert_eq!(fields(err), vec!["email"]);
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse_json::<Sample>(br#"{"age": 5}"#).unwrap_err();
        assert_eq!(fields(err), vec!["email"]);
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = parse_json::<Sample>(br#"{"email": "a@b.c", "admin": true}"#).unwrap_err();
        assert_eq!(fields(err), vec!["admin"]);
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Sample>(b"{\"email\":"),
            Err(ApiError::BadRequest { .. })
        ));
    }
}
