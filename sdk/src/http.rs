//! Outbound HTTP through `wasi:http`, for connectors that call an API.
//!
//! The host lets a request through only to hosts that both the connector's manifest and the
//! tenant's installation allow, and never to private or loopback addresses; anything else fails
//! with [`HttpError::Refused`]. Under the local harness, responses come from recorded cassettes.
//!
//! ```ignore
//! let resp = http::get("https://api.example.com/v1/people?page=1", &[("authorization", &token)])?;
//! let people: serde_json::Value = resp.json()?;
//! ```
//!
//! [`Pages`] follows `next` links for APIs that paginate that way.

use wasip2::http::{
    outgoing_handler,
    types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme},
};

use crate::ConnectorError;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Body(e.to_string()))
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The URL is not `http(s)://host/path`.
    BadUrl(String),
    /// The host refused the request (host not allowed, IP address, private network).
    Refused(String),
    /// The connection or the exchange failed.
    Transport(String),
    /// The body could not be read or parsed.
    Body(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::BadUrl(m) => write!(f, "bad URL: {m}"),
            HttpError::Refused(m) => write!(f, "request refused: {m}"),
            HttpError::Transport(m) => write!(f, "request failed: {m}"),
            HttpError::Body(m) => write!(f, "bad response body: {m}"),
        }
    }
}

impl From<HttpError> for ConnectorError {
    /// Refusals are access errors; transport failures are worth a retry.
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Refused(_) => ConnectorError::AccessDenied(e.to_string()),
            HttpError::Transport(_) => ConnectorError::Transient(e.to_string()),
            HttpError::BadUrl(_) => ConnectorError::Configuration(e.to_string()),
            HttpError::Body(_) => ConnectorError::Internal(e.to_string()),
        }
    }
}

/// Sends a GET request and reads the whole response.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    send(Method::Get, url, headers)
}

fn send(method: Method, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(HttpError::BadUrl(format!(
            "`{url}` must start with https://"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(HttpError::BadUrl(format!("`{url}` has no host")));
    }
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| HttpError::BadUrl(format!("header {name}: {e:?}")))?;
    }
    let request = OutgoingRequest::new(fields);
    let bad = |what: &str| HttpError::BadUrl(format!("invalid {what} in `{url}`"));
    request.set_method(&method).map_err(|_| bad("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|_| bad("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|_| bad("host"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|_| bad("path"))?;
    let pending = outgoing_handler::handle(request, None).map_err(describe)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or_else(|| HttpError::Transport("no response".into()))?
        .map_err(|_| HttpError::Transport("the response was already taken".into()))?
        .map_err(describe)?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let body = response
        .consume()
        .map_err(|_| HttpError::Body("the body was already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|_| HttpError::Body("the body stream was already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(wasip2::io::streams::StreamError::Closed) => break,
            Err(e) => return Err(HttpError::Body(format!("{e:?}"))),
        }
    }
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

fn describe(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable => HttpError::Refused(format!("{e:?}")),
        other => HttpError::Transport(format!("{other:?}")),
    }
}

/// Follows pages of an API that answers JSON with the next page's URL in a field (e.g.
/// `{"items": […], "next": "https://…"}`): each call to [`Pages::next_page`] fetches one page.
/// Store [`Pages::cursor`] as the connector's cursor to resume.
pub struct Pages<'h> {
    next: Option<String>,
    next_field: &'h str,
    headers: &'h [(&'h str, &'h str)],
}

impl<'h> Pages<'h> {
    /// Starts at `url` (the first page, or a stored cursor).
    pub fn new(url: &str, next_field: &'h str, headers: &'h [(&'h str, &'h str)]) -> Self {
        Self {
            next: Some(url.to_string()),
            next_field,
            headers,
        }
    }

    /// The URL of the page not yet fetched, if any: the cursor to store.
    pub fn cursor(&self) -> Option<&str> {
        self.next.as_deref()
    }

    /// Fetches the next page's JSON, or `None` at the end.
    pub fn next_page(&mut self) -> Result<Option<serde_json::Value>, HttpError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let resp = get(&url, self.headers)?;
        if !(200..300).contains(&resp.status) {
            return Err(HttpError::Transport(format!(
                "{url} answered {}",
                resp.status
            )));
        }
        let json = resp.json()?;
        self.next = json
            .get(self.next_field)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(Some(json))
    }
}
