//! Outbound HTTP for connectors (`wasi:http/outgoing-handler`), behind a policy.
//!
//! A request leaves the sandbox only when:
//! * its host is named (an IP-literal URL is refused) and matches one of the session's allowed
//!   host patterns (the intersection of the connector's manifest and the tenant's installation);
//! * every address the name resolves to is public: loopback, private, link-local, unique-local,
//!   carrier-grade NAT, unspecified, multicast and documentation ranges are refused
//!   (`allow_loopback` admits loopback, for development and tests only).
//!
//! Every refusal is recorded for the caller to audit. With a cassette, requests are answered from
//! recorded exchanges and nothing touches the network.
//!
//! Known limit: the name is resolved for the check and again by the connection, so a DNS answer
//! that changes between the two (rebinding) is not caught.

use std::{
    future::Future,
    net::IpAddr,
    path::Path,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// What a session may reach over HTTP.
#[derive(Clone, Default)]
pub struct HttpGrant {
    /// Host patterns: `api.example.com` or `*.example.com`.
    pub allowed_hosts: Vec<String>,
    /// Admit names that resolve to loopback (development and tests only).
    pub allow_loopback: bool,
    /// Answer from recorded exchanges instead of the network.
    pub cassette: Option<Arc<Cassette>>,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRefusal {
    pub method: String,
    pub url: String,
    pub reason: String,
}

/// Whether `host` matches `pattern` (`*.example.com` matches `a.example.com`, not `example.com`).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => host == pattern,
    }
}

/// Why an address may not be reached, if it may not.
pub fn forbidden_address(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    if ip.is_loopback() {
        return (!allow_loopback).then_some("a loopback address");
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Some("not a unicast address");
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a carrier-grade NAT address")
            } else if v4.is_broadcast() || v4.is_documentation() || a == 0 || a >= 240 {
                Some("a reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_address(IpAddr::V4(v4), allow_loopback);
            }
            let first = v6.segments()[0];
            if first & 0xfe00 == 0xfc00 {
                Some("a unique-local address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else {
                None
            }
        }
    }
}

/// One recorded exchange.
#[derive(Debug, Clone, Deserialize)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub status: u16,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

/// Recorded exchanges (one JSON file each in a directory).
#[derive(Debug, Clone, Default)]
pub struct Cassette {
    pub exchanges: Vec<Exchange>,
}

impl Cassette {
    /// Reads every `*.json` file of `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Cassette> {
        let mut exchanges = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)?;
            let exchange: Exchange = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            exchanges.push(exchange);
        }
        Ok(Cassette { exchanges })
    }

    fn find(&self, method: &str, url: &str) -> Option<&Exchange> {
        self.exchanges
            .iter()
            .find(|e| e.method.eq_ignore_ascii_case(method) && e.url == url)
    }
}

/// The hooks the store hands to `wasi:http`: every request passes [`Policy::admit`].
pub(crate) struct Policy {
    pub grant: HttpGrant,
    pub refusals: Arc<Mutex<Vec<HttpRefusal>>>,
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl Policy {
    /// Checks a request against the grant; `Err(reason)` refuses it.
    async fn admit(grant: &HttpGrant, uri: &http::Uri) -> Result<(), String> {
        let host = uri.host().ok_or("the URL has no host")?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return Err("IP addresses are not allowed; the connector must name the host".into());
        }
        if !grant.allowed_hosts.iter().any(|p| host_matches(p, host)) {
            return Err(format!(
                "{host} is not among the hosts this installation allows"
            ));
        }
        if grant.cassette.is_some() {
            return Ok(());
        }
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addresses: Vec<_> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("{host} could not be resolved: {e}"))?
            .collect();
        if addresses.is_empty() {
            return Err(format!("{host} has no address"));
        }
        for a in addresses {
            if let Some(why) = forbidden_address(a.ip(), grant.allow_loopback) {
                return Err(format!("{host} resolves to {}, {why}", a.ip()));
            }
        }
        Ok(())
    }
}

impl WasiHttpHooks for Policy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        drop(fut);
        let grant = self.grant.clone();
        let refusals = self.refusals.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let method = request.method().to_string();
            if let Err(reason) = Policy::admit(&grant, &uri).await {
                if let Ok(mut r) = refusals.lock() {
                    r.push(HttpRefusal {
                        method,
                        url: uri.to_string(),
                        reason,
                    });
                }
                return Err(Error::HttpRequestDenied);
            }
            if let Some(cassette) = &grant.cassette {
                let Some(exchange) = cassette.find(&method, &uri.to_string()) else {
                    if let Ok(mut r) = refusals.lock() {
                        r.push(HttpRefusal {
                            method,
                            url: uri.to_string(),
                            reason: "no recorded response in the cassette".into(),
                        });
                    }
                    return Err(Error::HttpRequestDenied);
                };
                let mut response = http::Response::builder().status(exchange.status);
                for (name, value) in &exchange.headers {
                    response = response.header(name, value);
                }
                let body = Full::new(Bytes::from(exchange.body.clone()))
                    .map_err(|never| match never {})
                    .boxed_unsync();
                let response = response.body(body).map_err(|_| Error::HttpProtocolError)?;
                let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                    Box::new(async { Ok(()) });
                return Ok((response, done));
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), done))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(forbidden_address(ip, false).is_some(), "{ip}");
        }
        assert!(forbidden_address("127.0.0.1".parse().unwrap(), true).is_none());
        assert!(forbidden_address("93.184.216.34".parse().unwrap(), false).is_none());
        assert!(forbidden_address("2606:4700::1".parse().unwrap(), false).is_none());
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "evil-example.com"));
        assert!(host_matches("api.example.com", "API.example.com"));
    }
}
