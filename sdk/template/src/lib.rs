//! An example TrainFlow connector: imports the sites listed in its configuration as org units.
//!
//! Copy this project to start your own. A real connector reads another system instead of its
//! configuration: call an API with `trainflow_connector_sdk::http` (declare the hosts in
//! `manifest.json`), read the tenant's upload with `trainflow_connector_sdk::file::UploadedFile`,
//! or read credentials with `trainflow_connector_sdk::host::secret`. The shape stays the same:
//!
//! * [`Connector::describe`] says who the connector is and which configuration it takes;
//! * [`Connector::check`] rejects a configuration before anything is installed or run;
//! * [`Connector::discover`] lists the streams (here, one: `sites`);
//! * [`Connector::read_page`] returns one page of a stream and an opaque cursor for the next.
//!
//! Configuration (see `config.schema.json`):
//!
//! ```json
//! {"page_size": 100,
//!  "sites": [{"id": "HQ", "name": "Head office", "code": "HQ"},
//!            {"id": "LDN", "name": "London depot", "parent": "HQ"}]}
//! ```
//!
//! An entry that is well-formed but unusable (an id that appeared earlier in the list, a parent
//! that is not in the list) is reported as a record error and skipped; the other sites are
//! imported. A malformed configuration is a configuration error and stops the run.

use std::collections::HashMap;

use serde::Deserialize;
use trainflow_connector_sdk::{
    export_connector, host, serde_json, Connector, ConnectorError, ConnectorInfo, Entity,
    EntityKind, OrgUnit, Page, PageRequest, RecordError, StreamInfo,
};

/// The connector's id. It must equal `id` in `manifest.json`, and must not start with
/// `com.trainflow.` (reserved for first-party connectors).
const ID: &str = "example.sites";

/// The one stream this connector offers.
const STREAM: &str = "sites";

struct Sites;

/// The configuration, as `config.schema.json` describes it. The server validates a configuration
/// against the schema when it is installed; the connector parses it again because the local
/// harness does not apply the schema and every call receives the configuration as JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    sites: Vec<Site>,
    #[serde(default = "default_page_size")]
    page_size: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Site {
    id: String,
    name: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    parent: Option<String>,
}

fn default_page_size() -> u32 {
    100
}

/// Parses and checks the configuration. Every failure is a `Configuration` error: retrying will
/// not help, the administrator has to change it.
fn parse_config(value: &serde_json::Value) -> Result<Config, ConnectorError> {
    let config: Config = serde_json::from_value(value.clone())
        .map_err(|e| ConnectorError::Configuration(format!("the configuration is invalid: {e}")))?;
    if config.sites.is_empty() {
        return Err(ConnectorError::Configuration(
            "sites must list at least one site".into(),
        ));
    }
    if !(1..=1000).contains(&config.page_size) {
        return Err(ConnectorError::Configuration(
            "page_size must be between 1 and 1000".into(),
        ));
    }
    for (i, site) in config.sites.iter().enumerate() {
        if site.id.trim().is_empty() {
            return Err(ConnectorError::Configuration(format!(
                "sites[{i}].id must not be empty"
            )));
        }
        if site.name.trim().is_empty() {
            return Err(ConnectorError::Configuration(format!(
                "sites[{i}].name must not be empty"
            )));
        }
    }
    Ok(config)
}

/// The cursor is opaque to the host: it stores it with each committed page and hands it back to
/// resume. Keep it small and self-contained. Here it is the index of the next site, with a
/// version prefix so a later build can still read cursors an older build committed.
fn encode_cursor(next: usize) -> String {
    format!("v1:{next}")
}

fn decode_cursor(cursor: Option<&str>) -> Result<usize, ConnectorError> {
    let Some(cursor) = cursor else {
        return Ok(0); // no cursor: start from the beginning
    };
    cursor
        .strip_prefix("v1:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ConnectorError::Internal(format!("unreadable cursor `{cursor}`")))
}

/// Why the site at `index` cannot be imported, if it cannot. `first` maps each id to the index
/// of its first occurrence.
fn problem(sites: &[Site], first: &HashMap<&str, usize>, index: usize) -> Option<String> {
    let site = &sites[index];
    if let Some(&earlier) = first.get(site.id.as_str()) {
        if earlier != index {
            return Some(format!(
                "id `{}` already appears at sites[{earlier}]",
                site.id
            ));
        }
    }
    match site.parent.as_deref() {
        Some(parent) if parent == site.id => Some("a site cannot be its own parent".into()),
        Some(parent) if !first.contains_key(parent) => {
            Some(format!("parent `{parent}` is not the id of any site"))
        }
        _ => None,
    }
}

impl Connector for Sites {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: ID.into(),
            name: "Example sites".into(),
            // The crate version; it must equal `version` in manifest.json.
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Imports the sites listed in its configuration as org units. \
                          A starting point for partner connectors."
                .into(),
            // The same schema goes inline into manifest.json as `config_schema`.
            config_schema: include_str!("../config.schema.json").into(),
        }
    }

    fn check(config: &serde_json::Value) -> Result<(), ConnectorError> {
        let config = parse_config(config)?;
        // A connector that calls an API would also try its credentials here, e.g. fetch one
        // record with `http::get` and map a 401 to `ConnectorError::Authentication`.
        host::log(
            host::Level::Info,
            &format!("configuration lists {} sites", config.sites.len()),
        );
        Ok(())
    }

    fn discover(config: &serde_json::Value) -> Result<Vec<StreamInfo>, ConnectorError> {
        parse_config(config)?;
        Ok(vec![StreamInfo {
            name: STREAM.into(),
            entity: EntityKind::OrgUnit,
            // Each run reads the whole list; a connector whose source can list changes since a
            // point in time (a timestamp, a change token) would say true and keep that point in
            // its cursor.
            supports_incremental: false,
        }])
    }

    fn read_page(config: &serde_json::Value, request: PageRequest) -> Result<Page, ConnectorError> {
        let config = parse_config(config)?;
        if request.stream != STREAM {
            return Err(ConnectorError::Configuration(format!(
                "unknown stream `{}`",
                request.stream
            )));
        }
        let sites = &config.sites;
        // The configuration may have changed since the cursor was committed: never index past
        // the end.
        let start = decode_cursor(request.cursor.as_deref())?.min(sites.len());
        // Never return more than the host asked for: a larger page is rejected.
        let per_page = config.page_size.min(request.max_records).max(1) as usize;
        let end = (start + per_page).min(sites.len());
        host::log(
            host::Level::Debug,
            &format!("reading sites {start}..{end} of {}", sites.len()),
        );

        let mut first = HashMap::new();
        for (i, site) in sites.iter().enumerate() {
            first.entry(site.id.as_str()).or_insert(i);
        }

        let mut entities = Vec::new();
        let mut errors = Vec::new();
        for index in start..end {
            let site = &sites[index];
            if let Some(reason) = problem(sites, &first, index) {
                host::log(
                    host::Level::Warn,
                    &format!("skipping sites[{index}]: {reason}"),
                );
                errors.push(RecordError {
                    reference: format!("sites[{index}]"),
                    reason,
                });
                continue;
            }
            entities.push(Entity::OrgUnit(OrgUnit {
                external_id: site.id.clone(),
                name: site.name.clone(),
                code: site.code.clone(),
                parent_external_id: site.parent.clone(),
            }));
        }

        Ok(Page {
            entities,
            errors,
            // `None` tells the host the stream is done.
            next_cursor: (end < sites.len()).then(|| encode_cursor(end)),
        })
    }
}

export_connector!(Sites);
