//! Mass registration of courses from an Excel workbook: the template the portal and the API
//! offer (sheets `Courses`, `Modules` and `Topics`, with an `Instructions` sheet), and reading
//! a filled-in workbook into rows, each with the sheet and row number a report names.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{DataValidation, Format, Workbook};
use trainflow_kernel::{ApiError, ApiResult};

/// The largest workbook, in bytes (5 MiB).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// The most rows a sheet may hold below its heading.
pub const MAX_ROWS: usize = 2000;
/// The most a workbook's parts may inflate to, all together (a guard against ZIP bombs).
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// The columns of each sheet, in the template's order; `*` marks the required ones.
pub const COURSES: &[&str] = &[
    "code*",
    "title*",
    "category",
    "difficulty",
    "duration_hours",
    "description",
    "department",
    "status",
    "self_enrol",
    "certificate_months",
];
pub const MODULES: &[&str] = &["course_code*", "title*", "duration_hours", "description"];
pub const TOPICS: &[&str] = &[
    "course_code*",
    "topic*",
    "subtopic",
    "duration_hours",
    "description",
];

/// The template: the three sheets with their headings, drop-down lists where a column takes
/// one of a few values, and the instructions.
pub fn template() -> ApiResult<Vec<u8>> {
    build_template().map_err(|e| ApiError::Internal(anyhow::anyhow!("the template: {e}")))
}

fn build_template() -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = Workbook::new();
    let heading = Format::new().set_bold().set_background_color("#DDEBF7");
    let lists: [(&str, &[&str]); 3] = [
        ("difficulty", &["beginner", "intermediate", "advanced"]),
        ("status", &["draft", "published"]),
        ("self_enrol", &["yes", "no"]),
    ];
    for (name, columns) in [
        ("Courses", COURSES),
        ("Modules", MODULES),
        ("Topics", TOPICS),
    ] {
        let sheet = book.add_worksheet().set_name(name)?;
        for (i, column) in columns.iter().enumerate() {
            let col = i as u16;
            sheet.write_string_with_format(0, col, *column, &heading)?;
            sheet.set_column_width(
                col,
                if column.contains("description") {
                    48
                } else {
                    18
                },
            )?;
            if let Some((_, values)) = lists.iter().find(|(c, _)| c == column) {
                let v = DataValidation::new().allow_list_strings(values)?;
                sheet.add_data_validation(1, col, MAX_ROWS as u32, col, &v)?;
            }
        }
        sheet.set_freeze_panes(1, 0)?;
    }
    let notes = book.add_worksheet().set_name("Instructions")?;
    let lines = [
        "Register courses in bulk: one row per course, module, topic or subtopic. Leave the headings as they are.",
        "Columns marked * are required. A workbook holds at most 2,000 rows per sheet and 5 MiB.",
        "Courses: code (unique in the organisation), title; difficulty beginner, intermediate or advanced (default beginner);",
        "  duration_hours more than 0 and at most 10,000; department: a department's name; status draft (default) or published;",
        "  self_enrol yes (default) or no; certificate_months 1-240 (blank: the certificate does not expire).",
        "Modules: course_code of a course above or already in the catalogue; modules are placed in the order of their rows,",
        "  and a course's modules together stay within its duration_hours.",
        "Topics: a row without subtopic is a topic of the course; a row with subtopic is a subtopic of the topic it names",
        "  (a topic above, or already in the course). Topics stay within the course's hours, subtopics within their topic's.",
        "Every row is checked on its own: the report lists each refused row with its sheet, row number and reason,",
        "  and the rest are registered. Check a workbook without registering anything first with \"Check only\".",
    ];
    for (i, line) in lines.iter().enumerate() {
        notes.write_string(i as u32, 0, *line)?;
    }
    notes.set_column_width(0, 120)?;
    book.save_to_buffer()
}

/// A row of a sheet: its Excel row number and its cells by column name (without the `*`).
#[derive(Debug, Clone)]
pub struct Row {
    pub sheet: &'static str,
    pub number: usize,
    cells: HashMap<String, String>,
}

impl Row {
    /// The cell of `column`, trimmed; none when blank.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cells
            .get(column)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// The rows of a filled-in workbook, sheet by sheet (`Modules` and `Topics` may be missing).
#[derive(Debug, Default)]
pub struct Rows {
    pub courses: Vec<Row>,
    pub modules: Vec<Row>,
    pub topics: Vec<Row>,
}

/// Reads a workbook: an `.xlsx` file (422 on `body` otherwise) with a `Courses` sheet whose
/// first row holds the template's headings. Blank rows are skipped.
pub fn read(bytes: Vec<u8>) -> ApiResult<Rows> {
    let not_a_workbook =
        |why: String| ApiError::field("body", format!("is not an .xlsx workbook: {why}"));
    check_inflated(&bytes).map_err(not_a_workbook)?;
    let mut book = Xlsx::new(Cursor::new(bytes)).map_err(|e| not_a_workbook(e.to_string()))?;
    let names = book.sheet_names().to_vec();
    let mut rows = Rows::default();
    for (sheet, columns, into) in [
        ("Courses", COURSES, &mut rows.courses),
        ("Modules", MODULES, &mut rows.modules),
        ("Topics", TOPICS, &mut rows.topics),
    ] {
        let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(sheet)) else {
            if sheet == "Courses" {
                return Err(ApiError::field(
                    "body",
                    "the workbook has no `Courses` sheet: start from the template",
                ));
            }
            continue;
        };
        let range = book
            .worksheet_range(name)
            .map_err(|e| not_a_workbook(format!("sheet `{name}`: {e}")))?;
        let first = range.start().map_or(1, |(row, _)| row as usize + 1);
        let mut lines = range.rows();
        let Some(heading) = lines.next() else {
            continue;
        };
        let heading: Vec<String> = heading
            .iter()
            .map(|c| text(c).trim().trim_end_matches('*').to_ascii_lowercase())
            .collect();
        for column in columns.iter().filter(|c| c.ends_with('*')) {
            let column = column.trim_end_matches('*');
            if !heading.iter().any(|h| h == column) {
                return Err(ApiError::field(
                    "body",
                    format!(
                        "the `{sheet}` sheet has no `{column}` column: start from the template"
                    ),
                ));
            }
        }
        for (i, line) in lines.enumerate() {
            let cells: HashMap<String, String> = heading
                .iter()
                .zip(line.iter())
                .filter(|(h, _)| !h.is_empty())
                .map(|(h, c)| (h.clone(), text(c)))
                .collect();
            if cells.values().all(|v| v.trim().is_empty()) {
                continue;
            }
            if into.len() == MAX_ROWS {
                return Err(ApiError::field(
                    "body",
                    format!(
                        "the `{sheet}` sheet has more than {MAX_ROWS} rows: split the workbook"
                    ),
                ));
            }
            into.push(Row {
                sheet,
                number: first + 1 + i,
                cells,
            });
        }
    }
    Ok(rows)
}

/// Refuses an archive whose parts would inflate past [`MAX_INFLATED`], before any is inflated.
fn check_inflated(bytes: &[u8]) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let part = archive.by_index_raw(i).map_err(|e| e.to_string())?;
        total = total.saturating_add(part.size());
    }
    if total > MAX_INFLATED {
        return Err(format!(
            "its parts inflate to {total} bytes, more than {MAX_INFLATED}"
        ));
    }
    Ok(())
}

/// A cell as the text a person typed: whole numbers without `.0`, dates as ISO.
fn text(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Data::DateTime(dt) => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            format!("{y:04}-{m:02}-{d:02}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_reads_back_with_its_headings_and_no_rows() {
        let rows = read(template().unwrap()).unwrap();
        assert!(rows.courses.is_empty() && rows.modules.is_empty() && rows.topics.is_empty());
    }

    #[test]
    fn a_filled_in_workbook_reads_as_rows_with_their_numbers() {
        let mut book = Workbook::new();
        let s = book.add_worksheet().set_name("Courses").unwrap();
        for (i, h) in COURSES.iter().enumerate() {
            s.write_string(0, i as u16, *h).unwrap();
        }
        s.write_string(1, 0, "SAF-1").unwrap();
        s.write_string(1, 1, "Safety").unwrap();
        s.write_number(1, 4, 12.0).unwrap();
        s.write_string(3, 0, "SAF-2").unwrap();
        let rows = read(book.save_to_buffer().unwrap()).unwrap();
        assert_eq!(rows.courses.len(), 2, "the blank row is skipped");
        assert_eq!(rows.courses[0].number, 2);
        assert_eq!(rows.courses[0].get("duration_hours"), Some("12"));
        assert_eq!(rows.courses[1].number, 4);
        assert_eq!(rows.courses[1].get("title"), None);
    }

    #[test]
    fn what_is_not_a_workbook_of_the_template_is_refused_at_body() {
        for bytes in [b"not a zip".to_vec(), {
            let mut book = Workbook::new();
            book.add_worksheet().set_name("People").unwrap();
            book.save_to_buffer().unwrap()
        }] {
            match read(bytes) {
                Err(ApiError::Validation(e)) => assert!(e.0.contains_key("body")),
                other => panic!("{other:?}"),
            }
        }
    }
}
