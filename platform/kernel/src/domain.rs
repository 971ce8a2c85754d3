//! Value types parsed once at the boundary. Nothing downstream re-validates them.

use std::fmt;

/// A syntactically valid email address, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and lower-cases an address such as `Jane.Doe@Example.com`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err("is required".into());
        }
        if s.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let (local, domain) = s.split_once('@').ok_or("must contain @")?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(s))
        } else {
            Err("is not a valid email address".into())
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form: `+` then 8 to 15 digits, the first not zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `+44 20 7946 0958` or `+442079460958`; spaces, dashes and parentheses are dropped.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        let digits = compact
            .strip_prefix('+')
            .ok_or("must be in international E.164 form, starting with +")?;
        if !(8..=15).contains(&digits.len())
            || !digits.chars().all(|c| c.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err("must be + followed by 8 to 15 digits (E.164)".into());
        }
        Ok(Self(compact))
    }

    /// The E.164 string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant slug: 2–40 lower-case letters, digits and inner dashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug such as `acme-rail`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let ok = (2..=40).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err("must be 2-40 lower-case letters, digits or inner dashes".into())
        }
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Trims `raw` and checks it is between `min` and `max` characters.
pub fn bounded(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let s = raw.trim();
    let n = s.chars().count();
    if n < min {
        return Err(if min == 1 {
            "is required".into()
        } else {
            format!("must be at least {min} characters")
        });
    }
    if n > max {
        return Err(format!("must be at most {max} characters"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_string())
}

/// Like [`bounded`] for optional text: empty becomes `None`.
pub fn optional(raw: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => bounded(s, 1, max).map(Some),
    }
}

/// `search` lower-cased with `%`, `_` and `\` escaped, between `%`s: a pattern for
/// `lower(column) like $n escape '\'` that finds it anywhere in the column.
pub fn like_pattern(search: &str) -> String {
    let escaped: String = search
        .to_lowercase()
        .chars()
        // No stored text holds a NUL (PostgreSQL refuses one in text): it is dropped.
        .filter(|&c| c != '\0')
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// Request dates (and the dates of request times) must lie between these.
pub const MIN_REQUEST_YEAR: i32 = 1900;
/// See [`MIN_REQUEST_YEAR`].
pub const MAX_REQUEST_YEAR: i32 = 2999;
/// What a request date outside them is told.
pub const REQUEST_DATE_RANGE: &str = "must be between 1900-01-01 and 2999-12-31";

fn year_in_range(year: i32) -> bool {
    (MIN_REQUEST_YEAR..=MAX_REQUEST_YEAR).contains(&year)
}

/// A date of a request body, `YYYY-MM-DD` between 1900-01-01 and 2999-12-31; its schema states
/// the range as a pattern ([`patterns::YEAR_1900_2999`]), and reading it refuses a date outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiDate(pub time::Date);

/// A time of a request body, RFC 3339, whose date (in its own offset) lies between 1900-01-01
/// and 2999-12-31; the schema states the range as a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiDateTime(pub time::OffsetDateTime);

impl<'de> serde::Deserialize<'de> for ApiDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let date = <time::Date as serde::Deserialize>::deserialize(d)?;
        if year_in_range(date.year()) {
            Ok(Self(date))
        } else {
            Err(serde::de::Error::custom(REQUEST_DATE_RANGE))
        }
    }
}

impl<'de> serde::Deserialize<'de> for ApiDateTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let at = time::serde::rfc3339::deserialize(d)?;
        if year_in_range(at.year()) {
            Ok(Self(at))
        } else {
            Err(serde::de::Error::custom(REQUEST_DATE_RANGE))
        }
    }
}

macro_rules! request_time_type {
    ($ty:ident, $inner:ty, $name:literal, $format:literal) => {
        impl poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                poem_openapi::registry::MetaSchemaRef::Inline(Box::new(
                    poem_openapi::registry::MetaSchema {
                        pattern: Some(patterns::YEAR_1900_2999.to_string()),
                        ..poem_openapi::registry::MetaSchema::new_with_format("string", $format)
                    },
                ))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl poem_openapi::types::ParseFromJSON for $ty {
            fn parse_from_json(
                value: Option<serde_json::Value>,
            ) -> poem_openapi::types::ParseResult<Self> {
                let inner = <$inner as poem_openapi::types::ParseFromJSON>::parse_from_json(value)
                    .map_err(poem_openapi::types::ParseError::propagate)?;
                if year_in_range(inner.year()) {
                    Ok(Self(inner))
                } else {
                    Err(poem_openapi::types::ParseError::custom(REQUEST_DATE_RANGE))
                }
            }
        }

        impl poem_openapi::types::ToJSON for $ty {
            fn to_json(&self) -> Option<serde_json::Value> {
                poem_openapi::types::ToJSON::to_json(&self.0)
            }
        }

        impl std::ops::Deref for $ty {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }
    };
}

request_time_type!(ApiDate, time::Date, "string(date)", "date");
request_time_type!(
    ApiDateTime,
    time::OffsetDateTime,
    "string(date-time)",
    "date-time"
);

/// The patterns the OpenAPI document states for text fields, each at least as strict as the
/// check the server runs on the field (`Body<T>` enforces the pattern, so a value the pattern
/// refuses is refused, and a value it admits passes the server's own check too).
///
/// `#[oai(validator(pattern = …))]` takes a literal, so the annotations repeat these strings;
/// `tests/tests/openapi.rs` checks that every text pattern of the document is one of them (or
/// a field-specific one listed there). They use only syntax that ECMA-262 (JSON Schema),
/// Rust's `regex` (the server) and Python's `re` (schemathesis) read alike: no `\s`, `\d` or
/// `\w`, no look-around, explicit `\xHH` / `\uHHHH` escapes.
pub mod patterns {
    /// Required text ([`super::bounded`] with a minimum of 1): at least one character that is
    /// not white space, and no control characters other than tab and newline.
    pub const TEXT: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";

    /// Text of at least two characters once trimmed ([`super::bounded`] with a minimum of 2).
    pub const TEXT_2: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";

    /// Optional text ([`super::optional`], or [`super::bounded`] with a minimum of 0): no
    /// control characters other than tab and newline; empty or blank means none.
    pub const OPTIONAL_TEXT: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";

    /// An email address [`super::EmailAddress::parse`] accepts (white space around it is
    /// trimmed): dot-atoms of the permitted
    /// characters before the `@` (at most 64 characters: up to 7 dots, the segments bounded so
    /// that the sum cannot pass 64), then at least two host-name labels of 1–63 letters,
    /// digits and inner dashes. The field's `maxLength` (254) bounds the whole.
    pub const EMAIL: &str = concat!(
        r"^[\t\n\r ]*(?:",
        r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}",
        r"|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,31}",
        r"|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,21}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}){2}",
        r"|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,16}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,15}){3}",
        r"|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,8}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,7}){4,7}",
        r")@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+[\t\n\r ]*$",
    );

    /// An optional phone number [`super::PhoneNumber::parse`] accepts (`+`, then 8–15 digits,
    /// the first not 0, with spaces, dashes, dots and parentheses anywhere), or blank for none.
    pub const PHONE: &str = r"^(?: *|[ ().-]*\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}[ ().-]*)$";

    /// A tenant slug ([`super::Slug::parse`]): 2–40 lower-case letters, digits and inner dashes.
    pub const SLUG: &str = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$";

    /// An IANA time zone name (`Area/City`, `Area/Sub/City`) or `UTC`.
    pub const TIME_ZONE: &str = r"^(?:UTC|[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)+)$";

    /// An optional host name: dot-separated labels of 1–63 letters, digits and dashes, none
    /// starting with a dash; blank for none.
    pub const HOST_NAME: &str =
        r"^(?: *|[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*)$";

    /// A colour `#rrggbb`.
    pub const COLOUR: &str = r"^#[0-9A-Fa-f]{6}$";

    /// A date (`YYYY-MM-DD`) or an RFC 3339 time whose year is 1900–2999 (with `format: date`
    /// or `format: date-time`, which state the rest).
    pub const YEAR_1900_2999: &str = r"^(?:19[0-9]{2}|2[0-9]{3})-";

    /// A logo: an `https://` URL or a path on this site.
    pub const LOGO_URL: &str = r"^(?:https://|/)";

    /// A file name: like [`TEXT`], without slashes or backslashes.
    pub const FILE_NAME: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F/\\]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000/\\][^\x00-\x08\x0B-\x1F\x7F-\x9F/\\]*$";

    /// A sign-in PIN: 6 to 10 digits (passwords are at least 12 characters, so the two never
    /// overlap).
    pub const PIN: &str = r"^[0-9]{6,10}$";

    /// Every pattern above, for the check that the document uses no other text pattern.
    pub const ALL: [&str; 13] = [
        TEXT,
        TEXT_2,
        OPTIONAL_TEXT,
        EMAIL,
        PHONE,
        SLUG,
        TIME_ZONE,
        HOST_NAME,
        COLOUR,
        YEAR_1900_2999,
        LOGO_URL,
        FILE_NAME,
        PIN,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_A"), "%50\\%\\_a%");
    }

    #[test]
    fn emails_are_lower_cased() {
        assert_eq!(
            EmailAddress::parse(" Jane.Doe@Example.COM ")
                .unwrap()
                .as_str(),
            "jane.doe@example.com"
        );
    }

    #[test]
    fn emails_without_a_domain_dot_are_rejected() {
        assert!(EmailAddress::parse("jane@localhost").is_err());
        assert!(EmailAddress::parse("no-at-sign").is_err());
        assert!(EmailAddress::parse("a..b@example.com").is_err());
    }

    #[test]
    fn phones_must_be_e164() {
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert!(PhoneNumber::parse("020 7946 0958").is_err());
        assert!(PhoneNumber::parse("+0123456789").is_err());
        assert!(PhoneNumber::parse("+12345").is_err());
        assert!(PhoneNumber::parse("+1234567890123456").is_err());
    }

    #[test]
    fn slugs_are_lower_case_words() {
        assert!(Slug::parse("acme-rail").is_ok());
        assert!(Slug::parse("Acme").is_err());
        assert!(Slug::parse("-acme").is_err());
    }

    fn matches(pattern: &'static str, value: &str) -> bool {
        use poem_openapi::validation::{Pattern, Validator};
        Validator::<&str>::check(&Pattern::new(pattern), &value)
    }

    /// Strings around every boundary of the checks: a pattern must not admit one its check
    /// refuses (the schema would promise what the server refuses).
    const SAMPLES: [&str; 40] = [
        "",
        " ",
        "  \t ",
        "a",
        " a ",
        "ab",
        "a b",
        "\u{a0}",
        "\u{a0}x\u{3000}",
        "\u{2028}",
        "x\u{85}",
        "x\ry",
        "x\ny",
        "x\ty",
        "x\u{7f}",
        "x\u{1b}y",
        "\u{0}",
        "é",
        "jane.doe@example.com",
        "Jane.Doe@Example.COM",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a@example",
        "a@-example.com",
        "a@example-.com",
        "a@b.c",
        "a b@example.com",
        "+44 20 7946 0958",
        "+(44) 20-7946.0958",
        "+0123456789",
        "+1234567",
        "+123456789012345",
        "+1234567890123456",
        "020 7946 0958",
        "acme-rail",
        "-acme",
        "a",
        "UTC",
        "Europe/London",
    ];

    #[test]
    fn text_patterns_admit_only_what_bounded_and_optional_accept() {
        let long_local = format!("{}@example.com", "x".repeat(65));
        let dotted = "a.b.c.d.e.f.g.h.i@example.com".to_string();
        let mut all: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
        all.extend([
            long_local,
            dotted,
            format!("{}@example.com", "x".repeat(64)),
        ]);
        for s in &all {
            if matches(patterns::TEXT, s) {
                assert!(bounded(s, 1, usize::MAX).is_ok(), "TEXT admits {s:?}");
            }
            if matches(patterns::TEXT_2, s) {
                assert!(bounded(s, 2, usize::MAX).is_ok(), "TEXT_2 admits {s:?}");
            }
            if matches(patterns::OPTIONAL_TEXT, s) {
                assert!(
                    optional(Some(s), usize::MAX).is_ok(),
                    "OPTIONAL_TEXT admits {s:?}"
                );
                assert!(
                    bounded(s, 0, usize::MAX).is_ok(),
                    "OPTIONAL_TEXT admits {s:?}"
                );
            }
            if matches(patterns::EMAIL, s) {
                assert!(EmailAddress::parse(s).is_ok(), "EMAIL admits {s:?}");
            }
            if matches(patterns::PHONE, s) && !s.trim().is_empty() {
                assert!(PhoneNumber::parse(s.trim()).is_ok(), "PHONE admits {s:?}");
            }
            if matches(patterns::SLUG, s) {
                assert!(Slug::parse(s).is_ok(), "SLUG admits {s:?}");
            }
        }
        // And they admit the ordinary values.
        for (pattern, value) in [
            (patterns::TEXT, " Jane "),
            (patterns::TEXT, "line one\nline two"),
            (patterns::TEXT_2, "en"),
            (patterns::OPTIONAL_TEXT, ""),
            (patterns::EMAIL, "jane.doe+rail@example.co.uk"),
            (patterns::EMAIL, "Jane.Doe@Example.COM"),
            (patterns::PHONE, "+44 7700 900123"),
            (patterns::PHONE, ""),
            (patterns::SLUG, "acme-rail"),
            (patterns::TIME_ZONE, "America/Argentina/Buenos_Aires"),
            (patterns::TIME_ZONE, "UTC"),
            (patterns::HOST_NAME, "acme.trainflow.example"),
            (patterns::COLOUR, "#1f4E79"),
            (patterns::YEAR_1900_2999, "2026-05-01"),
            (patterns::FILE_NAME, "certificate (1).pdf"),
            (patterns::PIN, "204861"),
        ] {
            assert!(matches(pattern, value), "{pattern} refuses {value:?}");
        }
        for (pattern, value) in [
            (patterns::EMAIL, "a..b@example.com"),
            (patterns::EMAIL, "jane@localhost"),
            (patterns::PHONE, "020 7946 0958"),
            (patterns::TEXT, "   "),
            (patterns::TEXT_2, " a "),
            (patterns::YEAR_1900_2999, "1899-12-31"),
            (patterns::YEAR_1900_2999, "3000-01-01"),
            (patterns::FILE_NAME, "../x"),
            (patterns::TIME_ZONE, "Europe"),
            (patterns::PIN, "12"),
            (patterns::PIN, "12345678901"),
        ] {
            assert!(!matches(pattern, value), "{pattern} admits {value:?}");
        }
    }

    #[test]
    fn bounded_text_counts_characters_not_bytes() {
        assert!(bounded("ééé", 1, 3).is_ok());
        assert!(bounded("éééé", 1, 3).is_err());
        assert!(bounded("  ", 1, 3).is_err());
    }
}
