//! Connector configuration schemas (JSON Schema, validated with the `jsonschema` crate).

use trainflow_kernel::{ApiError, ApiResult, FieldErrors};

/// Checks that `schema` is a JSON Schema describing an object.
pub fn check_schema(schema: &serde_json::Value) -> Result<(), String> {
    if !schema.is_object() {
        return Err("must be a JSON Schema object".into());
    }
    jsonschema::meta::validate(schema).map_err(|e| format!("is not a valid JSON Schema: {e}"))?;
    jsonschema::validator_for(schema).map_err(|e| format!("cannot be compiled: {e}"))?;
    Ok(())
}

/// Validates `config` against `schema`; each failure names its place as `config.<path>`.
pub fn validate_config(schema: &serde_json::Value, config: &serde_json::Value) -> ApiResult<()> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| anyhow::anyhow!("stored schema no longer compiles: {e}"))?;
    let mut errors = FieldErrors::new();
    for error in validator.iter_errors(config).take(20) {
        let pointer = error.instance_path.to_string();
        let field = if pointer.is_empty() {
            "config".to_string()
        } else {
            format!("config{}", pointer.replace('/', "."))
        };
        errors.add(field, error.to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}
