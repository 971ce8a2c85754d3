//! A connector that misbehaves on purpose, chosen by `{"mode": …}` in its configuration:
//! `loop` spins forever, `allocate` grows memory without bound, `panic` panics, `oversized`
//! returns more records than asked for, `sleep` blocks in a WASI sleep, `logflood` writes 100,000 empty log lines, `kv`
//! exercises the key-value store, `flaky` fails with a transient error `failures` times before
//! answering, `throttled` asks to be retried after a second once, `people` emits `count`
//! employees `per_page` at a time, `http` fetches `url` and names a unit after the answer,
//! `well` behaves.

use trainflow_connector_sdk::{
    export_connector, host, http, serde_json, Connector, ConnectorError, ConnectorInfo, Employee,
    Entity, EntityKind, OrgUnit, Page, PageRequest, StreamInfo,
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

fn number(config: &serde_json::Value, key: &str, default: u32) -> u32 {
    config
        .get(key)
        .and_then(|v| v.as_u64())
        .map_or(default, |v| v as u32)
}

fn person(i: u32) -> Entity {
    Entity::Employee(Employee {
        external_id: format!("p{i}"),
        email: Some(format!("person{i}@source.example")),
        first_name: format!("Person{i}"),
        last_name: "Synced".into(),
        phone: None,
        employee_number: Some(format!("S{i:05}")),
        org_unit_external_id: None,
        position: None,
        active: true,
    })
}

impl Connector for Testing {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "example.misbehaving".into(),
            name: "Sandbox test connector".into(),
            version: "0.1.0".into(),
            description: "Misbehaves on request.".into(),
            config_schema: "{}".into(),
        }
    }

    fn discover(config: &serde_json::Value) -> Result<Vec<StreamInfo>, ConnectorError> {
        if mode(config) == "people" {
            return Ok(vec![StreamInfo {
                name: "employees".into(),
                entity: EntityKind::Employee,
                supports_incremental: false,
            }]);
        }
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
            "flaky" => {
                let failures = number(config, "failures", 2);
                let attempts = host::kv_get("attempts").map(|v| v[0]).unwrap_or(0);
                if u32::from(attempts) < failures {
                    host::kv_set("attempts", &[attempts + 1]).map_err(ConnectorError::Internal)?;
                    return Err(ConnectorError::Transient("the source timed out".into()));
                }
                Ok(Page {
                    entities: vec![unit(1)],
                    errors: vec![],
                    next_cursor: None,
                })
            }
            "throttled" => {
                if host::kv_get("throttled").is_none() {
                    host::kv_set("throttled", &[1]).map_err(ConnectorError::Internal)?;
                    return Err(ConnectorError::RateLimited(1));
                }
                Ok(Page {
                    entities: vec![unit(1)],
                    errors: vec![],
                    next_cursor: None,
                })
            }
            "http" => {
                let url = config
                    .get("url")
                    .and_then(|u| u.as_str())
                    .unwrap_or_default();
                let resp = http::get(url, &[("accept", "text/plain")])?;
                let name: String = String::from_utf8_lossy(&resp.body)
                    .trim()
                    .chars()
                    .take(100)
                    .collect();
                host::info(&format!("{url} answered {}", resp.status));
                Ok(Page {
                    entities: vec![Entity::OrgUnit(OrgUnit {
                        external_id: "fetched".into(),
                        name,
                        code: None,
                        parent_external_id: None,
                    })],
                    errors: vec![],
                    next_cursor: None,
                })
            }
            "people" => {
                let count = number(config, "count", 10);
                let per_page = number(config, "per_page", 4).min(request.max_records);
                let start: u32 = request
                    .cursor
                    .as_deref()
                    .map(|c| {
                        c.parse()
                            .map_err(|_| ConnectorError::Internal("bad cursor".into()))
                    })
                    .transpose()?
                    .unwrap_or(0);
                let end = (start + per_page).min(count);
                Ok(Page {
                    entities: (start..end).map(person).collect(),
                    errors: vec![],
                    next_cursor: (end < count).then(|| end.to_string()),
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
