//! # Writing a TrainFlow connector
//!
//! A connector is a WebAssembly component that reads records out of another system and hands
//! them to TrainFlow a page at a time. Implement [`Connector`] and export it:
//!
//! ```ignore
//! use trainflow_connector_sdk::{export_connector, Connector, ConnectorError, ConnectorInfo,
//!                               Page, PageRequest, StreamInfo};
//!
//! struct Hello;
//!
//! impl Connector for Hello {
//!     fn describe() -> ConnectorInfo { /* id, name, version, description, config schema */ }
//!     fn discover(config: &serde_json::Value) -> Result<Vec<StreamInfo>, ConnectorError> { … }
//!     fn read_page(config: &serde_json::Value, request: PageRequest) -> Result<Page, ConnectorError> { … }
//! }
//!
//! export_connector!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm` file is the
//! component. The host calls `read_page` until `next_cursor` is `None` and commits each page with
//! its cursor, so keep cursors small and self-contained (an offset, a timestamp, a page token).
//!
//! What a connector may touch is what the host offers in [`host`]: its log, a small key-value
//! store, the uploaded file, declared secrets and the clock — and, through [`http`], the hosts
//! its manifest declares and the tenant allows. There is no filesystem, socket or environment.
#![deny(missing_docs)]

#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/connector",
        world: "trainflow-connector",
        pub_export_macro: true,
        export_macro_name: "__export_trainflow_connector",
        default_bindings_module: "trainflow_connector_sdk::bindings",
    });
}

pub mod csv;
pub mod dates;
pub mod file;
pub mod host;
pub mod http;
pub mod tabular;

pub use bindings::trainflow::connector::types::{
    Certification, Completion, ConnectorError, ConnectorInfo, Course, Deletion, Employee, Entity,
    EntityKind, OrgUnit, Page, PageRequest, RecordError, StreamInfo,
};
pub use serde_json;

/// What a connector does. Only `describe`, `discover` and `read_page` are required.
pub trait Connector {
    /// Identity, description and the JSON Schema of the configuration.
    fn describe() -> ConnectorInfo;

    /// Validates a configuration; remote connectors also try their credentials here.
    fn check(config: &serde_json::Value) -> Result<(), ConnectorError> {
        Self::discover(config).map(drop)
    }

    /// The streams this configuration offers.
    fn discover(config: &serde_json::Value) -> Result<Vec<StreamInfo>, ConnectorError>;

    /// One page of `request.stream`, starting at `request.cursor`.
    fn read_page(config: &serde_json::Value, request: PageRequest) -> Result<Page, ConnectorError>;
}

fn parse_config(config: &str) -> Result<serde_json::Value, ConnectorError> {
    serde_json::from_str(config)
        .map_err(|e| ConnectorError::Configuration(format!("configuration is not JSON: {e}")))
}

impl<T: Connector> bindings::exports::trainflow::connector::connector::Guest for T {
    fn describe() -> ConnectorInfo {
        T::describe()
    }

    fn check(config: String) -> Result<(), ConnectorError> {
        T::check(&parse_config(&config)?)
    }

    fn discover(config: String) -> Result<Vec<StreamInfo>, ConnectorError> {
        T::discover(&parse_config(&config)?)
    }

    fn read_page(config: String, request: PageRequest) -> Result<Page, ConnectorError> {
        T::read_page(&parse_config(&config)?, request)
    }
}

/// Exports a [`Connector`] implementation as the component's `connector` interface.
#[macro_export]
macro_rules! export_connector {
    ($connector:ident) => {
        $crate::bindings::__export_trainflow_connector!($connector with_types_in $crate::bindings);
    };
}
