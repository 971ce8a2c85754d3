//! The Excel connector: imports people, org units, certifications and completions from the
//! first (or a named) worksheet of an uploaded `.xlsx` workbook, with the same column mapping
//! as the CSV connector. The first row holds the headings; every rejected row is reported with
//! its row number (as Excel shows it) and the reason. The cursor is the index of the next row.

use std::collections::HashMap;

use calamine::{Data, Reader, Xlsx};
use serde::Deserialize;
use trainflow_connector_sdk::{
    export_connector,
    file::UploadedFile,
    serde_json,
    tabular::{parse_row, Kind, Layout, Mapping},
    Connector, ConnectorError, ConnectorInfo, Page, PageRequest, RecordError, StreamInfo,
};

struct Excel;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    entity: Kind,
    sheet: Option<String>,
    columns: HashMap<String, String>,
}

impl Config {
    fn parse(value: &serde_json::Value) -> Result<Self, ConnectorError> {
        let c: Config = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Configuration(e.to_string()))?;
        c.mapping().validate()?;
        Ok(c)
    }

    fn mapping(&self) -> Mapping {
        Mapping {
            entity: self.entity,
            columns: self.columns.clone(),
        }
    }
}

/// The whole upload, read through the host in 4 MiB pieces.
fn read_upload() -> Result<Vec<u8>, ConnectorError> {
    let file = UploadedFile::open()
        .ok_or_else(|| ConnectorError::Configuration("no file was uploaded".into()))?;
    let mut bytes = Vec::with_capacity(file.size() as usize);
    while (bytes.len() as u64) < file.size() {
        let part = file
            .read_at(bytes.len() as u64, 4 * 1024 * 1024)
            .map_err(|e| ConnectorError::Transient(format!("reading the upload: {e}")))?;
        if part.is_empty() {
            break;
        }
        bytes.extend_from_slice(&part);
    }
    Ok(bytes)
}

/// A cell as the text a person would type: dates as ISO, whole numbers without `.0`.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Data::DateTime(dt) => {
            // Handles both the 1900 and the 1904 (Mac) date systems.
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            format!("{y:04}-{m:02}-{d:02}")
        }
    }
}

/// The rows of the sheet and the Excel row number of the first of them (the used range may
/// start below row 1).
fn sheet_rows(
    bytes: Vec<u8>,
    sheet: Option<&str>,
) -> Result<(usize, Vec<Vec<String>>), ConnectorError> {
    let mut book = Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| {
        ConnectorError::Configuration(format!("the upload is not an .xlsx workbook: {e}"))
    })?;
    let names = book.sheet_names().to_vec();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(s))
            .cloned()
            .ok_or_else(|| {
                ConnectorError::Configuration(format!(
                    "the workbook has no sheet `{s}` (it has {names:?})"
                ))
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| ConnectorError::Configuration("the workbook has no sheets".into()))?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| ConnectorError::Configuration(format!("reading sheet `{name}`: {e}")))?;
    let first = range.start().map(|(row, _)| row as usize + 1).unwrap_or(1);
    Ok((
        first,
        range
            .rows()
            .map(|r| r.iter().map(cell_text).collect())
            .collect(),
    ))
}

impl Connector for Excel {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "com.trainflow.excel".into(),
            name: "Excel workbook".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Imports people, org units, certifications or completions from a worksheet of an uploaded \
                          .xlsx workbook. Map your column headings to TrainFlow fields; rejected rows are listed with \
                          their row number."
                .into(),
            config_schema: include_str!("../config.schema.json").into(),
        }
    }

    fn discover(config: &serde_json::Value) -> Result<Vec<StreamInfo>, ConnectorError> {
        Ok(Config::parse(config)?.mapping().streams())
    }

    fn read_page(config: &serde_json::Value, request: PageRequest) -> Result<Page, ConnectorError> {
        let c = Config::parse(config)?;
        if request.stream != c.entity.stream() {
            return Err(ConnectorError::Configuration(format!(
                "unknown stream `{}`",
                request.stream
            )));
        }
        let (first, rows) = sheet_rows(read_upload()?, c.sheet.as_deref())?;
        let header = rows
            .first()
            .ok_or_else(|| ConnectorError::Configuration("the sheet is empty".into()))?;
        let layout = Layout::new(&c.mapping(), header)?;
        // The cursor is an index into `rows`; the headings are index 0. References use the row
        // number Excel shows, `first + index`.
        let start: usize = match request.cursor.as_deref() {
            None => 1,
            Some(s) => match s.parse::<usize>() {
                Ok(i) if i >= 1 => i,
                _ => return Err(ConnectorError::Internal(format!("bad cursor `{s}`"))),
            },
        };
        let max = request.max_records.max(1) as usize;
        let (mut entities, mut errors) = (Vec::new(), Vec::new());
        let mut index = start;
        while index < rows.len() && entities.len() + errors.len() < max {
            let row = &rows[index];
            if !row.iter().all(String::is_empty) {
                match parse_row(c.entity, &layout, row) {
                    Ok(e) => entities.push(e),
                    Err(reason) => errors.push(RecordError {
                        reference: format!("row {}", first + index),
                        reason,
                    }),
                }
            }
            index += 1;
        }
        let next_cursor = (index < rows.len()).then(|| index.to_string());
        Ok(Page {
            entities,
            errors,
            next_cursor,
        })
    }
}

export_connector!(Excel);
