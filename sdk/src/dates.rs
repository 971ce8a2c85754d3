//! Date parsing for files exported from spreadsheets and HR systems.

/// Parses `2026-03-31`, `2026/03/31`, `31/03/2026`, `31.03.2026` or `2026-03-31T…` into ISO
/// `2026-03-31`. Day-first is assumed for slash and dot forms, as most HR exports outside the
/// United States use it.
pub fn parse_date(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let s = s.split(['T', ' ']).next().unwrap_or(s);
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let (y, m, d) = match parts.as_slice() {
        [a, b, c] if a.len() == 4 => (*a, *b, *c),
        [a, b, c] if c.len() == 4 => (*c, *b, *a),
        _ => return Err(format!("`{raw}` is not a date (use YYYY-MM-DD)")),
    };
    let (y, m, d): (u32, u32, u32) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return Err(format!("`{raw}` is not a date (use YYYY-MM-DD)")),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("`{raw}` has no month {m}")),
    };
    if !(1900..=2200).contains(&y) || d == 0 || d > days {
        return Err(format!("`{raw}` is not a valid date"));
    }
    Ok(format!("{y:04}-{m:02}-{d:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms_become_iso() {
        assert_eq!(parse_date("2026-03-31").unwrap(), "2026-03-31");
        assert_eq!(parse_date("31/03/2026").unwrap(), "2026-03-31");
        assert_eq!(parse_date("2026-03-31T10:00:00Z").unwrap(), "2026-03-31");
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("2025-02-29").is_err());
        assert!(parse_date("next tuesday").is_err());
    }
}
