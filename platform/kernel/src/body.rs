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
    T: Type + ParseFromJSON + DeserializeOwned + Send,
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

/// Enforces the limits the schema states (lengths, ranges, patterns, item counts): serde has
/// parsed the types, poem-openapi's validators check the `#[oai(validator(...))]` limits. Only
/// a validator's refusal counts; serde stays the authority on types and defaults.
fn check_limits<T: ParseFromJSON>(bytes: &[u8]) -> Result<(), ApiError> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match T::parse_from_json(Some(json)) {
        Err(err) if err.message().contains("verification failed") => {
            let message = err.message();
            let field = message
                .rsplit_once("field `")
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(name, _)| name.to_string())
                .unwrap_or_else(|| "body".to_string());
            let limit = message
                .rsplit_once("verification failed. ")
                .map(|(_, limit)| limit.to_string())
                .unwrap_or_default();
            Err(ApiError::field(
                field,
                format!("is outside its limit: {limit}"),
            ))
        }
        _ => Ok(()),
    }
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
