//! The CSV connector: imports people, org units, certifications and completions from an
//! uploaded CSV file, with a column mapping the tenant configures. Every rejected row is
//! reported with its row number and the reason; the rest are imported.
//!
//! Configuration:
//! ```json
//! {"entity": "employee", "delimiter": ",",
//!  "columns": {"external_id": "Employee ID", "first_name": "First name", "last_name": "Surname",
//!              "email": "Email", "org_unit": "Department"}}
//! ```
//! The cursor is `<byte offset>:<row number>`, so a run resumes exactly after the last committed
//! row.

use std::collections::HashMap;

use serde::Deserialize;
use trainflow_connector_sdk::{
    csv::next_record,
    export_connector,
    file::UploadedFile,
    serde_json,
    tabular::{parse_row, Kind, Layout, Mapping},
    Connector, ConnectorError, ConnectorInfo, Page, PageRequest, RecordError, StreamInfo,
};

struct Csv;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    entity: Kind,
    #[serde(default = "comma")]
    delimiter: String,
    columns: HashMap<String, String>,
}

fn comma() -> String {
    ",".into()
}

fn config(value: &serde_json::Value) -> Result<Config, ConnectorError> {
    let c: Config = serde_json::from_value(value.clone())
        .map_err(|e| ConnectorError::Configuration(e.to_string()))?;
    if c.delimiter.len() != 1 || matches!(c.delimiter.as_str(), "\"" | "\n" | "\r") {
        return Err(ConnectorError::Configuration(
            "delimiter must be one character other than a quote or a line break".into(),
        ));
    }
    Mapping {
        entity: c.entity,
        columns: c.columns.clone(),
    }
    .validate()?;
    Ok(c)
}

impl Config {
    fn mapping(&self) -> Mapping {
        Mapping {
            entity: self.entity,
            columns: self.columns.clone(),
        }
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<(u64, u64)>, ConnectorError> {
    let Some(c) = cursor else { return Ok(None) };
    let (offset, row) = c
        .split_once(':')
        .ok_or_else(|| ConnectorError::Internal(format!("bad cursor `{c}`")))?;
    match (offset.parse(), row.parse()) {
        (Ok(o), Ok(r)) => Ok(Some((o, r))),
        _ => Err(ConnectorError::Internal(format!("bad cursor `{c}`"))),
    }
}

const CHUNK: u32 = 256 * 1024;

/// What one read yields: the records, a problem per record (if it could not be parsed), the
/// offset after the last complete record, and whether the file ended there.
type Records = (Vec<Vec<String>>, Vec<Option<String>>, u64, bool);

/// Reads and parses complete records from `offset`, at most `max`, growing the read as needed.
fn records(
    file: &UploadedFile,
    offset: u64,
    max: usize,
    delimiter: u8,
) -> Result<Records, ConnectorError> {
    let io = |e: String| ConnectorError::Transient(format!("reading the upload: {e}"));
    let mut len = CHUNK;
    loop {
        let buf = file.read_at(offset, len).map_err(io)?;
        let at_eof = offset + buf.len() as u64 >= file.size();
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut pos = 0;
        let mut complete = true;
        while rows.len() < max {
            match next_record(&buf, pos, delimiter, at_eof) {
                None if pos < buf.len() && !at_eof => {
                    complete = false;
                    break;
                }
                None => break,
                Some(Ok(r)) => {
                    let blank = r.fields.iter().all(String::is_empty);
                    let not_utf8 = r.fields.iter().any(|f| f.contains('\u{FFFD}'));
                    pos = r.end;
                    rows.push(r.fields);
                    problems.push(if blank {
                        Some("blank row".to_string())
                    } else if not_utf8 {
                        Some("the row is not valid UTF-8 (save the file as CSV UTF-8)".to_string())
                    } else {
                        None
                    });
                }
                Some(Err(e)) => {
                    rows.push(Vec::new());
                    problems.push(Some(e));
                    pos = buf.len();
                    break;
                }
            }
        }
        if !complete && rows.is_empty() {
            // The host returns at most 16 MiB per read.
            if len >= 16 * 1024 * 1024 {
                return Err(ConnectorError::Configuration(format!(
                    "the row starting at byte {offset} is longer than 16 MiB"
                )));
            }
            len *= 2;
            continue;
        }
        let next = offset + pos as u64;
        let done = at_eof && pos >= buf.len();
        return Ok((rows, problems, next, done));
    }
}

impl Connector for Csv {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "com.trainflow.csv".into(),
            name: "CSV file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Imports people, org units, certifications or completions from an uploaded CSV file. \
                          Map your column headings to TrainFlow fields; rejected rows are listed with their row number."
                .into(),
            config_schema: include_str!("../config.schema.json").into(),
        }
    }

    fn discover(config_value: &serde_json::Value) -> Result<Vec<StreamInfo>, ConnectorError> {
        let c = config(config_value)?;
        Ok(vec![StreamInfo {
            name: c.entity.stream().into(),
            entity: c.entity.entity(),
            supports_incremental: false,
        }])
    }

    fn read_page(
        config_value: &serde_json::Value,
        request: PageRequest,
    ) -> Result<Page, ConnectorError> {
        let c = config(config_value)?;
        if request.stream != c.entity.stream() {
            return Err(ConnectorError::Configuration(format!(
                "unknown stream `{}`",
                request.stream
            )));
        }
        let file = UploadedFile::open()
            .ok_or_else(|| ConnectorError::Configuration("no file was uploaded".into()))?;
        let delimiter = c.delimiter.as_bytes()[0];
        let (header, header_end) = {
            // Excel's "CSV UTF-8" starts with a byte-order mark; the headings start after it.
            let start = if file.read_at(0, 3).map_err(ConnectorError::Transient)? == b"\xEF\xBB\xBF"
            {
                3
            } else {
                0
            };
            let (rows, _, end, _) = records(&file, start, 1, delimiter)?;
            let header = rows
                .into_iter()
                .next()
                .ok_or_else(|| ConnectorError::Configuration("the file is empty".into()))?;
            (header, end)
        };
        let layout = Layout::new(&c.mapping(), &header)?;
        let (offset, row) = parse_cursor(request.cursor.as_deref())?.unwrap_or((header_end, 1));
        let max = request.max_records.max(1) as usize;
        let (rows, problems, next, done) = records(&file, offset, max, delimiter)?;
        let mut entities = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        for (i, (fields, problem)) in rows.iter().zip(problems).enumerate() {
            let number = row + 1 + i as u64;
            match problem {
                Some(p) if p == "blank row" => continue,
                Some(p) => errors.push(RecordError {
                    reference: format!("row {number}"),
                    reason: p,
                }),
                None => match parse_row(c.entity, &layout, fields) {
                    Ok(e) => entities.push(e),
                    Err(reason) => errors.push(RecordError {
                        reference: format!("row {number}"),
                        reason,
                    }),
                },
            }
        }
        let next_cursor = (!done).then(|| format!("{next}:{}", row + rows.len() as u64));
        Ok(Page {
            entities,
            errors,
            next_cursor,
        })
    }
}

export_connector!(Csv);
