//! A connector that misbehaves on purpose, chosen by `{"mode": …}` in its configuration:
//! `loop` spins forever, `allocate` grows memory without bound, `panic` panics, `oversized`
//! returns more records than asked for, `sleep` blocks in a WASI sleep, `logflood` writes 100,000 empty log lines, `kv`
//! exercises the key-value store, `well` behaves.

use trainflow_connector_sdk::{
    export_connector, host, serde_json, Connector, ConnectorError, ConnectorInfo, Entity,
    EntityKind, OrgUnit, Page, PageRequest, StreamInfo,
};

struct Testing;

fn mode(config: &serde_json::Value) -> String {
    config
        .get("mode")
        .and_then(|m| m.as_str())
        .unwrap_or("well")
        .to_string()
}

fn unit(i: u32) -> Entity {
    Entity::OrgUnit(OrgUnit {
        external_id: format!("u{i}"),
        name: format!("Unit {i}"),
        code: None,
        parent_external_id: None,
    })
}

impl Connector for Testing {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "com.trainflow.testing".into(),
            name: "Sandbox test connector".into(),
            version: "0.1.0".into(),
            description: "Misbehaves on request.".into(),
            config_schema: "{}".into(),
        }
    }

    fn discover(_: &serde_json::Value) -> Result<Vec<StreamInfo>, ConnectorError> {
        Ok(vec![StreamInfo {
            name: "units".into(),
            entity: EntityKind::OrgUnit,
            supports_incremental: false,
        }])
    }

    fn read_page(config: &serde_json::Value, request: PageRequest) -> Result<Page, ConnectorError> {
        match mode(config).as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "allocate" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1024 * 1024]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("the source sent something this connector cannot handle"),
            "sleep" => {
                // Blocks in a WASI poll, where no WebAssembly runs for the epoch to interrupt.
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(Page {
                    entities: vec![],
                    errors: vec![],
                    next_cursor: None,
                })
            }
            "logflood" => {
                for _ in 0..100_000 {
                    host::log(host::Level::Debug, "");
                }
                Ok(Page {
                    entities: vec![unit(1)],
                    errors: vec![],
                    next_cursor: None,
                })
            }
            "oversized" => Ok(Page {
                entities: (0..request.max_records + 5).map(unit).collect(),
                errors: vec![],
                next_cursor: None,
            }),
            "kv" => {
                let runs = host::kv_get("runs").map(|v| v[0]).unwrap_or(0) + 1;
                host::kv_set("runs", &[runs]).map_err(ConnectorError::Internal)?;
                host::info(&format!("run number {runs}"));
                Ok(Page {
                    entities: vec![unit(u32::from(runs))],
                    errors: vec![],
                    next_cursor: None,
                })
            }
            _ => Ok(Page {
                entities: vec![unit(1)],
                errors: vec![],
                next_cursor: None,
            }),
        }
    }
}

export_connector!(Testing);
