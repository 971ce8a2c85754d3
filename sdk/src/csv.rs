//! A small RFC 4180 CSV reader that works on byte buffers and reports where each record ends,
//! so a connector can resume from a byte offset.

/// One parsed record and the byte offset just after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The fields, unquoted.
    pub fields: Vec<String>,
    /// Offset (in the buffer) of the first byte after this record's line end.
    pub end: usize,
}

/// Parses the next record of `buf` starting at `start`. Returns `None` when the buffer ends
/// before the record does (read more and retry) unless `at_eof`, in which case the last
/// record may end without a newline.
pub fn next_record(
    buf: &[u8],
    start: usize,
    delimiter: u8,
    at_eof: bool,
) -> Option<Result<Record, String>> {
    if start >= buf.len() {
        return None;
    }
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut i = start;
    let mut quoted = false;
    let mut field_start = true;
    while i < buf.len() {
        let c = buf[i];
        if quoted {
            if c == b'"' {
                if buf.get(i + 1) == Some(&b'"') {
                    field.push(b'"');
                    i += 2;
                    continue;
                }
                if i + 1 == buf.len() && !at_eof {
                    return None; // cannot tell an escaped quote from a closing one yet
                }
                quoted = false;
                i += 1;
                continue;
            }
            field.push(c);
            i += 1;
            continue;
        }
        match c {
            b'"' if field_start => {
                quoted = true;
                field_start = false;
                i += 1;
            }
            c if c == delimiter => {
                fields.push(finish(&mut field));
                field_start = true;
                i += 1;
            }
            b'\r' | b'\n' => {
                let mut end = i + 1;
                if c == b'\r' {
                    match buf.get(i + 1) {
                        Some(b'\n') => end += 1,
                        None if !at_eof => return None,
                        _ => {}
                    }
                }
                fields.push(finish(&mut field));
                return Some(fields_ok(fields, end));
            }
            c => {
                field.push(c);
                field_start = false;
                i += 1;
            }
        }
    }
    if !at_eof {
        return None;
    }
    if quoted {
        return Some(Err(
            "a quoted field is not closed before the end of the file".into(),
        ));
    }
    fields.push(finish(&mut field));
    Some(fields_ok(fields, buf.len()))
}

fn finish(field: &mut Vec<u8>) -> String {
    // Invalid UTF-8 becomes U+FFFD, which callers can report (see the CSV connector).
    let s = String::from_utf8_lossy(field).trim().to_string();
    field.clear();
    s
}

fn fields_ok(fields: Vec<String>, end: usize) -> Result<Record, String> {
    Ok(Record { fields, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_delimiters_and_quotes() {
        let buf = b"a,\"b, \"\"c\"\"\",d\nnext";
        let r = next_record(buf, 0, b',', false).unwrap().unwrap();
        assert_eq!(r.fields, vec!["a", "b, \"c\"", "d"]);
        assert_eq!(&buf[r.end..], b"next");
    }

    #[test]
    fn an_incomplete_record_asks_for_more() {
        assert_eq!(next_record(b"a,b", 0, b',', false), None);
        assert_eq!(
            next_record(b"a,b", 0, b',', true).unwrap().unwrap().fields,
            vec!["a", "b"]
        );
    }

    #[test]
    fn crlf_line_ends_are_one_break() {
        let r = next_record(b"x;y\r\nz", 0, b';', false).unwrap().unwrap();
        assert_eq!(
            (r.fields, r.end),
            (vec!["x".to_string(), "y".to_string()], 5)
        );
    }
}
