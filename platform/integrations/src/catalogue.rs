//! The connectors a tenant can install: the first-party ones embedded in the server, and the
//! packages the tenant uploaded.

use std::sync::Arc;

use poem_openapi::Object;
use trainflow_connectors::{ConnectorHost, Grants, Limits};
use uuid::Uuid;

use crate::manifest::{Capabilities, Manifest};

/// First-party components, built from `plugins/` by this crate's build script.
const FIRST_PARTY: &[(&[u8], bool)] = &[
    (
        include_bytes!(concat!(
            env!("TRAINFLOW_PLUGINS_DIR"),
            "/trainflow_connector_csv.wasm"
        )),
        true,
    ),
    (
        include_bytes!(concat!(
            env!("TRAINFLOW_PLUGINS_DIR"),
            "/trainflow_connector_excel.wasm"
        )),
        true,
    ),
];

/// Where the build put the components of `plugins/` (the test components included).
pub const BUILT_PLUGINS_DIR: &str = env!("TRAINFLOW_PLUGINS_DIR");

/// The id prefix reserved for first-party connectors.
pub const FIRST_PARTY_PREFIX: &str = "com.trainflow.";

/// One connector as the catalogue shows it.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct CatalogueEntry {
    /// Stable connector id, e.g. `trainflow.csv`.
    pub connector_id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    /// `trainflow` for first-party connectors, `tenant` for uploaded packages.
    pub publisher: String,
    /// The uploaded package, for tenant connectors.
    pub package_id: Option<Uuid>,
    /// What it may do once installed.
    pub capabilities: Capabilities,
    /// JSON Schema of its configuration.
    pub config_schema: serde_json::Value,
    /// SHA-256 of the component.
    pub sha256: String,
}

/// A first-party connector: its entry and its component.
#[derive(Clone)]
pub struct FirstParty {
    pub entry: CatalogueEntry,
    pub component: Arc<[u8]>,
}

/// Loads (compiles, off the async workers) the first-party components and asks each to
/// describe itself.
pub async fn first_party(host: Arc<ConnectorHost>) -> anyhow::Result<Vec<FirstParty>> {
    let mut out = Vec::new();
    for (wasm, reads_file) in FIRST_PARTY {
        let compiling = host.clone();
        let digest = tokio::task::spawn_blocking(move || compiling.load(wasm)).await??;
        let mut session = host
            .session(&digest, Grants::default(), Limits::default())
            .await?;
        let info = session
            .describe()
            .await
            .map_err(|e| anyhow::anyhow!("describing a first-party connector: {e}"))?;
        let config_schema: serde_json::Value = serde_json::from_str(&info.config_schema)?;
        out.push(FirstParty {
            entry: CatalogueEntry {
                connector_id: info.id,
                name: info.name,
                version: info.version,
                description: info.description,
                publisher: "trainflow".into(),
                package_id: None,
                capabilities: Capabilities {
                    file: *reads_file,
                    http_hosts: Vec::new(),
                    secrets: Vec::new(),
                },
                config_schema,
                sha256: digest,
            },
            component: Arc::from(*wasm),
        });
    }
    Ok(out)
}

impl CatalogueEntry {
    /// The entry of an uploaded package.
    pub fn from_manifest(manifest: &Manifest, package_id: Uuid) -> Self {
        Self {
            connector_id: manifest.id.clone(),
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            description: manifest.description.clone(),
            publisher: "tenant".into(),
            package_id: Some(package_id),
            capabilities: manifest.capabilities.clone(),
            config_schema: manifest.config_schema.clone(),
            sha256: manifest.sha256.to_ascii_lowercase(),
        }
    }
}
