//! Rendering, escaping, form errors and flash notices.

use std::collections::BTreeMap;

use askama::Template;
use poem::{http::StatusCode, web::Html, IntoResponse, Response};
use trainflow_kernel::{envelope::Page, ApiError};

/// What a page handler returns.
pub type PageResult = poem::Result<Response>;

/// The name of the CSRF field every state-changing form carries.
pub const CSRF_FIELD: &str = "csrf";

/// Renders `t` with `status`.
pub fn render(t: &impl Template, status: StatusCode) -> PageResult {
    let html = t
        .render()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(Html(html).with_status(status).into_response())
}

/// HTML-escapes text for the few places that build markup by hand (templates escape on their
/// own).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A form field: trimmed, empty as none.
pub fn blank(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The flash notice of a redirect (`?notice=key`): the text `messages` gives the key, or a
/// generic confirmation. Unknown keys never echo user input.
pub fn notice(key: Option<&str>, messages: &[(&str, &'static str)]) -> Option<&'static str> {
    let key = key?;
    Some(
        messages
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, m)| *m)
            .unwrap_or("Done."),
    )
}

/// Field → messages, for re-rendered forms.
#[derive(Debug, Default)]
pub struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    /// The messages of `field`.
    pub fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `message` to `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    /// Every message, with its field, for forms whose fields are free-form (JSON configs).
    pub fn all(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .flat_map(|(f, ms)| ms.iter().map(move |m| (f.clone(), m.clone())))
            .collect()
    }
}

/// The field errors of a validation failure or conflict, to re-render a form; any other error
/// is passed on.
pub fn field_errors(err: ApiError) -> Result<Errors, ApiError> {
    match err {
        ApiError::Validation(f) => Ok(Errors(f.0)),
        ApiError::Conflict { field, message } => {
            Ok(Errors(BTreeMap::from([(field, vec![message])])))
        }
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn unknown_notice_keys_do_not_echo() {
        let m = [("saved", "Saved.")];
        assert_eq!(notice(Some("saved"), &m), Some("Saved."));
        assert_eq!(notice(Some("<script>"), &m), Some("Done."));
        assert_eq!(notice(None, &m), None);
    }
}

/// The "Previous / Page n of m / Next" links under a paged list (`pager.html`).
#[derive(Debug, Clone, Default)]
pub struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
    pub page: u32,
    pub pages: i64,
}

impl Pager {
    /// The pager of `page` of a list of `total` objects, linking to `link(page)`.
    pub fn new(page: Page, total: i64, link: impl Fn(u32) -> String) -> Self {
        let pages = ((total + i64::from(page.per_page) - 1) / i64::from(page.per_page)).max(1);
        Pager {
            prev: (page.page > 1).then(|| link(page.page - 1)),
            next: (i64::from(page.page) < pages).then(|| link(page.page + 1)),
            page: page.page,
            pages,
        }
    }

    /// Whether there is more than one page (the template shows the links only then).
    pub fn is_paged(&self) -> bool {
        self.pages > 1
    }
}

/// The page a portal list shows: `?page=` (1 when absent or 0), `per_page` objects a page.
pub fn portal_page(page: Option<u32>, per_page: u32) -> Result<Page, ApiError> {
    Page::parse(Some(page.unwrap_or(1).max(1)), Some(per_page))
}
