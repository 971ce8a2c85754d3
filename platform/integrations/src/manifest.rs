//! The package manifest a partner uploads with a component, and its validation.
//!
//! ```json
//! {"id": "acme.workday", "name": "Workday", "version": "1.2.0", "description": "…",
//!  "capabilities": {"file": false, "http_hosts": ["api.workday.example"], "secrets": ["api_token"]},
//!  "config_schema": {"type": "object", …},
//!  "sha256": "<hex digest of the component>"}
//! ```

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use trainflow_kernel::{ApiError, ApiResult, FieldErrors};

/// The largest component a package may carry.
pub const MAX_COMPONENT_BYTES: usize = 20 * 1024 * 1024;

/// What a connector asks to be allowed to do. Shown to administrators before they install it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Object)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Reads a file the tenant uploads.
    #[serde(default)]
    #[oai(default)]
    pub file: bool,
    /// Host names it may call over HTTPS (`api.example.com` or `*.example.com`).
    #[serde(default)]
    #[oai(default)]
    pub http_hosts: Vec<String>,
    /// Names of the credentials it reads (stored encrypted, given only to this connector).
    #[serde(default)]
    #[oai(default)]
    pub secrets: Vec<String>,
}

/// A package manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub capabilities: Capabilities,
    pub config_schema: serde_json::Value,
    pub sha256: String,
}

impl Manifest {
    /// Parses manifest JSON, naming the field that is wrong.
    pub fn parse(raw: &[u8]) -> ApiResult<Manifest> {
        let mut de = serde_json::Deserializer::from_slice(raw);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "manifest".to_string()
            } else {
                format!("manifest.{path}")
            };
            ApiError::field(field, e.into_inner().to_string())
        })
    }

    /// Checks every field, and that `component` is the one the manifest describes.
    pub fn validate(&self, component: &[u8], reserved_prefix: &str) -> ApiResult<()> {
        let mut errors = FieldErrors::new();
        if let Err(e) = connector_id(&self.id) {
            errors.add("manifest.id", e);
        } else if self.id.starts_with(reserved_prefix) {
            errors.add(
                "manifest.id",
                format!(
                    "ids starting with `{reserved_prefix}` are reserved for first-party connectors"
                ),
            );
        }
        if self.name.trim().is_empty() || self.name.len() > 100 {
            errors.add("manifest.name", "must be 1 to 100 characters");
        }
        if self.description.len() > 2000 {
            errors.add("manifest.description", "must be at most 2000 characters");
        }
        if let Err(e) = version(&self.version) {
            errors.add("manifest.version", e);
        }
        for (i, host) in self.capabilities.http_hosts.iter().enumerate() {
            if let Err(e) = host_pattern(host) {
                errors.add(format!("manifest.capabilities.http_hosts[{i}]"), e);
            }
        }
        for (i, name) in self.capabilities.secrets.iter().enumerate() {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                errors.add(
                    format!("manifest.capabilities.secrets[{i}]"),
                    "must be 1 to 64 letters, digits, `_` or `-`",
                );
            }
        }
        if let Err(e) = crate::schema::check_schema(&self.config_schema) {
            errors.add("manifest.config_schema", e);
        }
        let digest = trainflow_kernel::secret::sha256_hex(component);
        if !self.sha256.eq_ignore_ascii_case(&digest) {
            errors.add(
                "manifest.sha256",
                format!("does not match the component (its SHA-256 is {digest})"),
            );
        }
        errors.into_result()
    }
}

/// `acme.workday`: lower-case letters, digits, `.`, `_` and `-`, 3 to 64, starting with a letter.
pub fn connector_id(id: &str) -> Result<(), String> {
    let ok = (3..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(
            "must be 3 to 64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter"
                .into(),
        )
    }
}

/// `MAJOR.MINOR.PATCH` with an optional `-prerelease`.
pub fn version(v: &str) -> Result<(), String> {
    let core = v.split_once('-').map_or(v, |(c, _)| c);
    let parts: Vec<&str> = core.split('.').collect();
    let ok = v.len() <= 64
        && parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err("must be a semantic version such as 1.2.0".into())
    }
}

/// A host name, or `*.` followed by one; never an IP address. `localhost` is accepted for
/// development: the server refuses loopback addresses unless configured to allow them.
pub fn host_pattern(host: &str) -> Result<(), String> {
    if host == "localhost" {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return Err("IP addresses are not allowed; name the host".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    let ok = name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err("must be a lower-case host name such as api.example.com or *.example.com".into())
    }
}

pub use trainflow_connectors::host_matches;

/// Whether `host` (a name or a `*.` pattern an installation asks for) is within what a manifest
/// declares: the same pattern, or a name one of its patterns matches.
pub fn host_within(declared: &[String], host: &str) -> bool {
    declared
        .iter()
        .any(|p| p == host || (!host.starts_with("*.") && host_matches(p, host)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let declared = ["*.example.com".to_string(), "api.other.com".to_string()];
        assert!(host_within(&declared, "api.example.com"));
        assert!(host_within(&declared, "*.example.com"));
        assert!(!host_within(&declared, "*.other.com"));
        assert!(!host_within(&declared, "example.com"));
        assert!(host_pattern("10.0.0.1").is_err());
        assert!(host_pattern("localhost").is_ok());
        assert!(host_pattern("intranet").is_err());
        assert!(host_pattern("*.example.com").is_ok());
    }

    #[test]
    fn versions_and_ids() {
        assert!(version("1.2.0").is_ok());
        assert!(version("1.2.0-rc.1").is_ok());
        assert!(version("1.2").is_err());
        assert!(connector_id("acme.workday").is_ok());
        assert!(connector_id("Acme").is_err());
    }
}
