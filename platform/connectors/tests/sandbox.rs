//! The host running real components: the CSV connector, and a purpose-built connector that
//! loops, allocates, panics and floods. Components are built from `plugins/` by this test
//! (`cargo build --release --target wasm32-wasip2`), so it always runs the current source.

use std::{path::PathBuf, process::Command, sync::Arc, sync::OnceLock, time::Duration};

use trainflow_connectors::{CallError, ConnectorHost, Entity, Grants, Limits, PageRequest};

/// Builds the plugins workspace once per test process; returns the directory of `.wasm` files.
fn plugins() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
        let target = std::env::var("TRAINFLOW_PLUGINS_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo for the plugins");
        assert!(
            status.success(),
            "building the plugins failed (is the wasm32-wasip2 target installed?)"
        );
        target.join("wasm32-wasip2/release")
    })
}

fn component(name: &str) -> Vec<u8> {
    std::fs::read(plugins().join(format!("{name}.wasm"))).expect("built component")
}

fn host() -> &'static ConnectorHost {
    static HOST: OnceLock<ConnectorHost> = OnceLock::new();
    HOST.get_or_init(|| ConnectorHost::new().expect("engine"))
}

fn request(max: u32, cursor: Option<String>, stream: &str) -> PageRequest {
    PageRequest {
        stream: stream.into(),
        cursor,
        max_records: max,
    }
}

const PEOPLE: &str = "Employee ID,First name,Surname,Email,Department,Status\n\
E1,Ada,Lovelace,ada@example.com,Engineering,active\n\
E2,\"Grace, Rear Admiral\",Hopper,grace@example.com,Engineering,yes\n\
,Nameless,Nobody,nobody@example.com,Engineering,active\n\
E4,Alan,Turing,alan@example.com,Research,left\n\
E5,Katherine,Johnson,kj@example.com,Research,maybe\n\
E6,Edsger,Dijkstra,ewd@example.com,Research,active";

fn csv_config() -> String {
    serde_json::json!({"entity": "employee", "columns": {
        "external_id": "Employee ID", "first_name": "First name", "last_name": "Surname",
        "email": "Email", "org_unit": "Department", "active": "Status"}})
    .to_string()
}

#[tokio::test]
async fn the_csv_connector_pages_through_a_file_reporting_bad_rows_by_number() {
    let digest = host().load(&component("trainflow_connector_csv")).unwrap();
    let grants = Grants {
        file: Some(Arc::new(PEOPLE.as_bytes().to_vec())),
        ..Grants::default()
    };
    let mut session = host()
        .session(&digest, grants, Limits::default())
        .await
        .unwrap();
    let info = session.describe().await.unwrap();
    assert_eq!(info.id, "com.trainflow.csv");
    assert!(info.config_schema.contains("\"columns\""));
    let streams = session.discover(&csv_config()).await.unwrap();
    assert_eq!(streams[0].name, "employees");

    let (mut people, mut errors, mut cursor, mut pages) = (Vec::new(), Vec::new(), None, 0);
    loop {
        let page = session
            .read_page(&csv_config(), &request(2, cursor.clone(), "employees"))
            .await
            .unwrap();
        pages += 1;
        for e in page.entities {
            if let Entity::Employee(p) = e {
                people.push(p);
            }
        }
        errors.extend(page.errors);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let ids: Vec<&str> = people.iter().map(|p| p.external_id.as_str()).collect();
    assert_eq!(ids, ["E1", "E2", "E4", "E6"]);
    assert_eq!(people[1].first_name, "Grace, Rear Admiral");
    assert!(!people[2].active, "`left` means inactive");
    let refs: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.reference.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert_eq!(refs[0].0, "row 4");
    assert!(refs[0].1.contains("external_id"));
    assert_eq!(refs[1].0, "row 6");
    assert!(refs[1].1.contains("maybe"));
    assert!(session.total.fuel > 0, "instructions are counted");
}

#[tokio::test]
async fn a_run_resumes_from_a_cursor_without_repeating_rows() {
    let digest = host().load(&component("trainflow_connector_csv")).unwrap();
    let grants = Grants {
        file: Some(Arc::new(PEOPLE.as_bytes().to_vec())),
        ..Grants::default()
    };
    let mut first = host()
        .session(&digest, grants.clone(), Limits::default())
        .await
        .unwrap();
    let page = first
        .read_page(&csv_config(), &request(3, None, "employees"))
        .await
        .unwrap();
    let cursor = page.next_cursor.expect("more to read");
    // A new instance (as after a crash) continues from the committed cursor.
    let mut second = host()
        .session(&digest, grants, Limits::default())
        .await
        .unwrap();
    let rest = second
        .read_page(&csv_config(), &request(100, Some(cursor), "employees"))
        .await
        .unwrap();
    let ids: Vec<String> = rest
        .entities
        .iter()
        .filter_map(|e| {
            if let Entity::Employee(p) = e {
                Some(p.external_id.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(ids, ["E4", "E6"]);
    assert!(rest.next_cursor.is_none());
}

#[tokio::test]
async fn a_bad_mapping_is_a_configuration_error_naming_the_column() {
    let digest = host().load(&component("trainflow_connector_csv")).unwrap();
    let grants = Grants {
        file: Some(Arc::new(PEOPLE.as_bytes().to_vec())),
        ..Grants::default()
    };
    let mut session = host()
        .session(&digest, grants, Limits::default())
        .await
        .unwrap();
    let config = serde_json::json!({"entity": "employee", "columns": {
        "external_id": "Staff number", "first_name": "First name", "last_name": "Surname"}})
    .to_string();
    match session
        .read_page(&config, &request(10, None, "employees"))
        .await
    {
        Err(CallError::Connector(trainflow_connectors::ConnectorError::Configuration(m))) => {
            assert!(m.contains("Staff number"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

async fn misbehave(mode: &str, limits: Limits) -> Result<usize, CallError> {
    let digest = host()
        .load(&component("trainflow_connector_testing"))
        .unwrap();
    let mut session = host()
        .session(&digest, Grants::default(), limits)
        .await
        .unwrap();
    let config = serde_json::json!({"mode": mode}).to_string();
    session
        .read_page(&config, &request(10, None, "units"))
        .await
        .map(|p| p.entities.len())
}

#[tokio::test]
async fn a_connector_that_loops_forever_is_stopped_at_its_deadline() {
    let limits = Limits {
        call_deadline: Duration::from_millis(300),
        call_fuel: u64::MAX / 2,
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    match misbehave("loop", limits).await {
        Err(CallError::Trapped(m)) => assert!(m.contains("deadline"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_connector_that_burns_its_instruction_budget_is_stopped() {
    let limits = Limits {
        call_fuel: 50_000_000,
        ..Limits::default()
    };
    match misbehave("loop", limits).await {
        Err(CallError::Trapped(m)) => assert!(m.contains("fuel"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_connector_that_allocates_without_bound_traps_at_its_memory_cap() {
    let limits = Limits {
        memory_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    };
    match misbehave("allocate", limits).await {
        Err(CallError::Trapped(m)) => assert!(m.contains("memory"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_connector_that_panics_fails_with_a_readable_message() {
    match misbehave("panic", Limits::default()).await {
        Err(CallError::Trapped(m)) => {
            assert!(m.contains("the connector panicked: the source sent something this connector cannot handle"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_page_is_rejected() {
    match misbehave("oversized", Limits::default()).await {
        Err(CallError::Rejected(m)) => assert!(m.contains("15 records"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn after_misbehaving_components_the_host_still_runs_others() {
    for mode in ["panic", "oversized"] {
        let _ = misbehave(mode, Limits::default()).await;
    }
    let _ = misbehave(
        "loop",
        Limits {
            call_deadline: Duration::from_millis(100),
            ..Limits::default()
        },
    )
    .await;
    assert_eq!(misbehave("well", Limits::default()).await.unwrap(), 1);
}

#[tokio::test]
async fn the_key_value_store_persists_between_runs_when_the_host_keeps_it() {
    let digest = host()
        .load(&component("trainflow_connector_testing"))
        .unwrap();
    let config = serde_json::json!({"mode": "kv"}).to_string();
    let mut first = host()
        .session(&digest, Grants::default(), Limits::default())
        .await
        .unwrap();
    first
        .read_page(&config, &request(10, None, "units"))
        .await
        .unwrap();
    let kv = first.kv().clone();
    assert_eq!(first.logs().0[0].message, "run number 1");
    let mut second = host()
        .session(
            &digest,
            Grants {
                kv,
                ..Grants::default()
            },
            Limits::default(),
        )
        .await
        .unwrap();
    second
        .read_page(&config, &request(10, None, "units"))
        .await
        .unwrap();
    assert_eq!(second.logs().0[0].message, "run number 2");
}

/// A workbook with a `Staff` sheet: headings, two good rows (one with a real Excel date), a row
/// missing its surname and a row with an impossible date.
fn workbook() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    book.add_worksheet()
        .set_name("Notes")
        .unwrap()
        .write_string(0, 0, "ignore me")
        .unwrap();
    let sheet = book.add_worksheet().set_name("Staff").unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (col, heading) in ["Cert ID", "Employee", "Type", "Issued", "Expires"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, col as u16, *heading).unwrap();
    }
    sheet.write_string(1, 0, "C1").unwrap();
    sheet.write_number(1, 1, 1001).unwrap();
    sheet.write_string(1, 2, "PTS").unwrap();
    sheet
        .write_datetime_with_format(1, 3, ExcelDateTime::from_ymd(2025, 3, 31).unwrap(), &date)
        .unwrap();
    sheet.write_string(1, 4, "31/03/2027").unwrap();
    sheet.write_string(2, 0, "C2").unwrap();
    sheet.write_string(2, 2, "First Aid").unwrap();
    sheet.write_string(2, 3, "2025-01-10").unwrap();
    sheet.write_string(3, 0, "C3").unwrap();
    sheet.write_string(3, 1, "E7").unwrap();
    sheet.write_string(3, 2, "COSS").unwrap();
    sheet.write_string(3, 3, "2025-02-30").unwrap();
    sheet.write_string(4, 0, "C4").unwrap();
    sheet.write_string(4, 1, "E8").unwrap();
    sheet.write_string(4, 2, "PTS").unwrap();
    sheet.write_string(4, 3, "2024-06-01").unwrap();
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn the_excel_connector_reads_a_named_sheet_with_dates_and_reports_bad_rows() {
    let digest = host()
        .load(&component("trainflow_connector_excel"))
        .unwrap();
    let grants = Grants {
        file: Some(Arc::new(workbook())),
        ..Grants::default()
    };
    let mut session = host()
        .session(&digest, grants, Limits::default())
        .await
        .unwrap();
    assert_eq!(session.describe().await.unwrap().id, "com.trainflow.excel");
    let config = serde_json::json!({"entity": "certification", "sheet": "staff", "columns": {
        "external_id": "Cert ID", "employee": "Employee", "certification_type": "Type",
        "issued_on": "Issued", "expires_on": "Expires"}})
    .to_string();
    let first = session
        .read_page(&config, &request(2, None, "certifications"))
        .await
        .unwrap();
    let rest = session
        .read_page(
            &config,
            &request(10, first.next_cursor.clone(), "certifications"),
        )
        .await
        .unwrap();
    assert!(rest.next_cursor.is_none());
    let certs: Vec<_> = first
        .entities
        .iter()
        .chain(&rest.entities)
        .filter_map(|e| {
            if let Entity::Certification(c) = e {
                Some(c.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(certs.len(), 2);
    assert_eq!(
        certs[0].employee_external_id, "1001",
        "whole numbers lose their .0"
    );
    assert_eq!(
        certs[0].issued_on, "2025-03-31",
        "Excel dates become ISO dates"
    );
    assert_eq!(certs[0].expires_on.as_deref(), Some("2027-03-31"));
    assert_eq!(certs[1].external_id, "C4");
    let errors: Vec<_> = first
        .errors
        .iter()
        .chain(&rest.errors)
        .map(|e| (e.reference.clone(), e.reason.clone()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, "row 3");
    assert!(errors[0].1.contains("employee"));
    assert_eq!(errors[1].0, "row 4");
    assert!(errors[1].1.contains("2025-02-30"));
}

#[tokio::test]
async fn a_file_that_is_not_a_workbook_is_a_configuration_error() {
    let digest = host()
        .load(&component("trainflow_connector_excel"))
        .unwrap();
    let grants = Grants {
        file: Some(Arc::new(b"not,a,workbook\n".to_vec())),
        ..Grants::default()
    };
    let mut session = host()
        .session(&digest, grants, Limits::default())
        .await
        .unwrap();
    let config =
        serde_json::json!({"entity": "org_unit", "columns": {"external_id": "Id", "name": "Name"}})
            .to_string();
    match session
        .read_page(&config, &request(10, None, "org_units"))
        .await
    {
        Err(CallError::Connector(trainflow_connectors::ConnectorError::Configuration(m))) => {
            assert!(m.contains(".xlsx"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn empty_log_lines_still_count_against_the_log_cap() {
    let digest = host()
        .load(&component("trainflow_connector_testing"))
        .unwrap();
    let limits = Limits {
        max_log_bytes: 64 * 1024,
        ..Limits::default()
    };
    let mut session = host()
        .session(&digest, Grants::default(), limits)
        .await
        .unwrap();
    let config = serde_json::json!({"mode": "logflood"}).to_string();
    session
        .read_page(&config, &request(10, None, "units"))
        .await
        .unwrap();
    let (kept, dropped) = session.logs();
    assert_eq!(kept.len(), 1024, "64 KiB at 64 bytes a line");
    assert_eq!(dropped, 100_000 - 1024);
}

#[tokio::test]
async fn a_csv_saved_by_excel_with_a_byte_order_mark_reads_its_headings() {
    let digest = host().load(&component("trainflow_connector_csv")).unwrap();
    let mut file = b"\xEF\xBB\xBF".to_vec();
    file.extend_from_slice(PEOPLE.as_bytes());
    file.extend_from_slice(b"\nE9,Z\xF6e,Bad,zoe@example.com,Research,yes\n");
    let grants = Grants {
        file: Some(Arc::new(file)),
        ..Grants::default()
    };
    let mut session = host()
        .session(&digest, grants, Limits::default())
        .await
        .unwrap();
    let page = session
        .read_page(&csv_config(), &request(100, None, "employees"))
        .await
        .unwrap();
    assert_eq!(page.entities.len(), 4);
    let last = page.errors.last().unwrap();
    assert_eq!(last.reference, "row 8");
    assert!(last.reason.contains("UTF-8"), "{last:?}");
}

#[tokio::test]
async fn excel_row_numbers_follow_the_sheet_when_it_starts_below_row_one() {
    use rust_xlsxwriter::Workbook;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    // Headings on row 3, data from row 4; rows 1-2 empty.
    for (col, h) in ["Id", "Name"].iter().enumerate() {
        sheet.write_string(2, col as u16, *h).unwrap();
    }
    sheet.write_string(3, 0, "D1").unwrap();
    sheet.write_string(3, 1, "Depot").unwrap();
    sheet.write_string(4, 0, "D2").unwrap();
    let digest = host()
        .load(&component("trainflow_connector_excel"))
        .unwrap();
    let grants = Grants {
        file: Some(Arc::new(book.save_to_buffer().unwrap())),
        ..Grants::default()
    };
    let mut session = host()
        .session(&digest, grants, Limits::default())
        .await
        .unwrap();
    let config =
        serde_json::json!({"entity": "org_unit", "columns": {"external_id": "Id", "name": "Name"}})
            .to_string();
    let page = session
        .read_page(&config, &request(10, None, "org_units"))
        .await
        .unwrap();
    assert_eq!(page.entities.len(), 1);
    assert_eq!(page.errors[0].reference, "row 5", "{:?}", page.errors);
    // A cursor pointing at the headings is refused, not read as data.
    assert!(session
        .read_page(&config, &request(10, Some("0".into()), "org_units"))
        .await
        .is_err());
}

#[tokio::test]
async fn a_connector_that_sleeps_in_wasi_is_stopped_at_its_deadline() {
    let limits = Limits {
        call_deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    match misbehave("sleep", limits).await {
        Err(CallError::Trapped(m)) => assert!(m.contains("deadline"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}
