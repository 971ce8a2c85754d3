//! Wiring: the API, the portal, health and metrics behind one edge middleware.

use std::{sync::Arc, time::Instant};

use poem::{
    endpoint::make_sync,
    get, handler,
    http::{header, HeaderValue, StatusCode},
    middleware::Cors,
    web::Data,
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route,
};
use poem_openapi::OpenApiService;
use trainflow_identity::{account_links::AccountLinksApi, api::IdentityApi, signin::AuthDeps};
use trainflow_integrations::{api::ConnectorsApi, Integrations};
use trainflow_jobs::Runner;
use trainflow_kernel::{
    auth::{ClientIp, JwtKeys, VerifiedAccess},
    db::Db,
    error::from_poem_error,
    ApiError,
};
use trainflow_notifications::{api::NotificationsApi, Deliverer};
use trainflow_renewals::{api::RenewalsApi, Renewals};
use trainflow_tenancy::api::TenancyApi;
use trainflow_web::Shell;

use crate::{config::Settings, metrics::Metrics, ratelimit::RateLimiter};

/// Shared state of the edge middleware and the operational endpoints.
pub struct Edge {
    pub settings: Settings,
    pub keys: Arc<JwtKeys>,
    pub metrics: Metrics,
    pub per_ip: RateLimiter,
    pub per_tenant: RateLimiter,
    pub db: Db,
    pub runner: Runner,
    pub integrations: Arc<Integrations>,
    pub deliverer: Deliverer,
    pub renewals: Renewals,
}

/// The OpenAPI service of every bounded context.
pub fn api_service(
    deps: &AuthDeps,
    integrations: &Arc<Integrations>,
    renewals: &Renewals,
    public_url: &str,
) -> OpenApiService<
    (
        IdentityApi,
        AccountLinksApi,
        TenancyApi,
        ConnectorsApi,
        NotificationsApi,
        RenewalsApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            IdentityApi { deps: deps.clone() },
            AccountLinksApi {
                deps: deps.clone(),
                public_url: public_url.trim_end_matches('/').to_string(),
            },
            TenancyApi { deps: deps.clone() },
            ConnectorsApi {
                svc: integrations.clone(),
            },
            NotificationsApi {
                db: deps.db.clone(),
                public_url: public_url.trim_end_matches('/').to_string(),
            },
            RenewalsApi {
                svc: renewals.clone(),
            },
        ),
        "TrainFlow API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Training compliance for multi-tenant organisations. Every answer is `{\"data\": …, \"meta\": …}` \
         or `{\"error\": {\"code\", \"message\", \"fields\", \"request_id\"}}`. Lists take `page` and \
         `per_page` (default 10, max 100). Objects of another tenant answer 404.",
    )
    .server(public_url.trim_end_matches('/').to_string())
}

/// The whole HTTP application.
pub fn build(edge: Arc<Edge>, deps: AuthDeps) -> impl Endpoint {
    let api = api_service(
        &deps,
        &edge.integrations,
        &edge.renewals,
        &edge.settings.public_url,
    );
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    // CORS applies to the API only: the portal is same-origin and protected by CSRF tokens,
    // and a CORS layer would refuse its own form posts (browsers send `Origin` on POST).
    let api = if edge.settings.cors_origins.is_empty() {
        api.boxed()
    } else {
        let cors = Cors::new()
            .allow_origins(edge.settings.cors_origins.iter().map(String::as_str))
            .allow_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
            .allow_headers(["authorization", "content-type", "x-request-id"])
            .expose_headers(["x-request-id", "retry-after"])
            .max_age(600);
        api.with(cors).boxed()
    };
    let app = Route::new()
        .nest("/api/v1/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .at("/health", get(health))
        .at("/health/db", get(health_db))
        .at("/health/jobs", get(health_jobs))
        .at("/metrics", get(metrics))
        .nest(
            "/a",
            trainflow_renewals::links::routes(edge.renewals.clone()),
        )
        .nest(
            trainflow_renewals::sms::PATH,
            trainflow_renewals::sms::routes(trainflow_renewals::sms::SmsWebhook {
                renewals: edge.renewals.clone(),
                auth_token: edge.settings.twilio_auth_token.expose().to_string(),
            }),
        )
        .nest("/portal", portal(&edge, &deps))
        .at(
            "/",
            make_sync(|_| poem::web::Redirect::see_other("/portal")),
        )
        .data(edge.keys.clone())
        .data(edge.clone())
        .boxed();
    let edge2 = edge.clone();
    app.around(move |ep, req| {
        let edge = edge2.clone();
        async move { Ok(handle(edge, ep, req).await) }
    })
}

/// The portal: every context's pages on the shared web layer, with each context's navigation
/// entries and dashboard cards.
fn portal(edge: &Arc<Edge>, deps: &AuthDeps) -> impl Endpoint {
    let pages = Route::new();
    let pages = trainflow_identity::web::mount(pages, deps.clone());
    let pages = trainflow_renewals::web::mount(pages, edge.renewals.clone());
    let pages = trainflow_notifications::web::mount(pages, deps.db.clone());
    let pages = trainflow_integrations::web::mount(pages, edge.integrations.clone());
    let pages = trainflow_jobs::web::mount(pages, edge.runner.clone());
    let shell = Shell::new(
        edge.settings.cookie_secure,
        Arc::new(trainflow_identity::web::Sessions(deps.db.clone())),
    )
    .with_nav(trainflow_identity::web::nav())
    .with_nav(trainflow_renewals::web::nav())
    .with_nav(trainflow_notifications::web::nav())
    .with_nav(trainflow_integrations::web::nav())
    .with_nav(trainflow_jobs::web::nav())
    .with_cards(Arc::new(trainflow_identity::web::PeopleCards(
        deps.db.clone(),
    )))
    .with_cards(Arc::new(trainflow_renewals::web::Cards(
        edge.renewals.clone(),
    )))
    .with_cards(Arc::new(trainflow_notifications::web::Cards(
        deps.db.clone(),
    )));
    trainflow_web::portal(pages, shell)
}

async fn handle<E: Endpoint<Output = Response>>(
    edge: Arc<Edge>,
    ep: Arc<E>,
    mut req: Request,
) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let ip = client_ip(&edge.settings, &req);
    req.extensions_mut().insert(ClientIp(ip.clone()));
    if let Some(verified) = verify_bearer(&edge.keys, &req) {
        req.extensions_mut().insert(verified);
    }
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let is_api = path.starts_with("/api/");

    let outcome = trainflow_kernel::request::scope(request_id.clone(), async {
        if let Some(refusal) = admit(&edge, &req, &ip, &path) {
            return refusal;
        }
        // A body without a declared length (chunked) is read here, up to the limit.
        if !req.headers().contains_key(header::CONTENT_LENGTH)
            && req.headers().contains_key(header::TRANSFER_ENCODING)
        {
            match req
                .take_body()
                .into_bytes_limit(body_limit(&edge.settings, &path))
                .await
            {
                Ok(bytes) => req.set_body(bytes),
                Err(poem::error::ReadBodyError::PayloadTooLarge) => {
                    return error_response(ApiError::PayloadTooLarge, is_api)
                }
                Err(other) => {
                    return error_response(
                        ApiError::BadRequest {
                            message: other.to_string(),
                            field: None,
                        },
                        is_api,
                    )
                }
            }
        }
        match ep.call(req).await {
            Ok(resp) => resp,
            // An extractor's own answer (the portal's redirect to sign in) goes out as it is.
            Err(err) if err.is_from_response() => err.into_response(),
            Err(err) => error_response(from_poem_error(err), is_api),
        }
    })
    .await;
    let mut resp = outcome;
    let status = resp.status();
    // 404s are labelled `unmatched` so arbitrary paths cannot grow the label set.
    let operation = if status == StatusCode::NOT_FOUND {
        "unmatched".to_string()
    } else {
        operation_label(&method, &path)
    };
    edge.metrics
        .observe(&operation, status.as_u16(), started.elapsed().as_secs_f64());
    tracing::info!(
        request_id = %request_id, method = %method, path = %path, status = status.as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "request"
    );
    secure_headers(&mut resp, &path, &request_id);
    resp
}

fn error_response(err: ApiError, is_api: bool) -> Response {
    if is_api {
        return err.into_response();
    }
    let status = poem::error::ResponseError::status(&err);
    let body = err.body();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>\
         <link rel=\"stylesheet\" href=\"/portal/static/app.css\"></head><body><main class=\"narrow\">\
         <h1>{0}</h1><p>{1}</p><p><a href=\"/portal\">Back to TrainFlow</a></p>\
         <p class=\"muted\">Request id {2}</p></main></body></html>",
        status.canonical_reason().unwrap_or("Error"),
        trainflow_web::escape(&body.error.message),
        trainflow_web::escape(&body.error.request_id)
    );
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(html)
}

/// Rate limits and the body-size limit; `Some(response)` refuses the request.
fn admit(edge: &Edge, req: &Request, ip: &str, path: &str) -> Option<Response> {
    if path.starts_with("/health") || path == "/metrics" {
        return None;
    }
    let now = Instant::now();
    if let Err(wait) = edge.per_ip.check(ip, now) {
        edge.metrics.rate_limited("ip");
        return Some(
            ApiError::TooManyRequests {
                retry_after: wait.as_secs().max(1),
            }
            .into_response(),
        );
    }
    if let Some(tenant) = req
        .extensions()
        .get::<VerifiedAccess>()
        .and_then(|v| v.claims.tid)
    {
        let tenant = tenant.to_string();
        if let Err(wait) = edge.per_tenant.check(&tenant, now) {
            edge.metrics.rate_limited("tenant");
            return Some(
                ApiError::TooManyRequests {
                    retry_after: wait.as_secs().max(1),
                }
                .into_response(),
            );
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > body_limit(&edge.settings, path)) {
        return Some(ApiError::PayloadTooLarge.into_response());
    }
    None
}

/// The tenant of a valid bearer token, for the per-tenant limit.
/// The largest body a path accepts: uploads of packages and import files are larger than
/// everything else.
fn body_limit(settings: &Settings, path: &str) -> usize {
    let upload = (path.starts_with("/api/v1/connectors/installations/")
        || path.starts_with("/portal/integrations/"))
        && path.ends_with("/files");
    let evidence = path.starts_with("/api/v1/renewals/") && path.ends_with("/evidence");
    if evidence {
        (trainflow_renewals::api::MAX_EVIDENCE_BYTES + 64 * 1024).max(settings.max_body_bytes)
    } else if upload {
        settings.max_upload_bytes.max(settings.max_body_bytes)
    } else if path == "/api/v1/connectors/packages" || path == "/portal/integrations/packages" {
        (trainflow_integrations::manifest::MAX_COMPONENT_BYTES + 256 * 1024)
            .max(settings.max_body_bytes)
    } else {
        settings.max_body_bytes
    }
}

/// Verifies a bearer access token once, at the edge; the security scheme reuses the result.
fn verify_bearer(keys: &JwtKeys, req: &Request) -> Option<VerifiedAccess> {
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?;
    let claims = keys.verify(token, "access").ok()?;
    Some(VerifiedAccess {
        token: token.to_string(),
        claims,
    })
}

fn client_ip(settings: &Settings, req: &Request) -> String {
    if settings.trust_proxy {
        if let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            // The rightmost entry is the one our proxy appended; anything left of it is
            // whatever the client claimed.
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
        {
            return first.to_string();
        }
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `GET /api/v1/users/0192…` → `GET /api/v1/users/:id`: bounded label cardinality.
fn operation_label(method: &str, path: &str) -> String {
    let normalised: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if uuid::Uuid::parse_str(seg).is_ok() || seg.parse::<u64>().is_ok() {
                ":id"
            } else {
                seg
            }
        })
        .collect();
    let mut label = format!("{method} {}", normalised.join("/"));
    if label.len() > 120 {
        label.truncate(120);
    }
    label.replace('"', "")
}

fn secure_headers(resp: &mut Response, path: &str, request_id: &str) {
    let h = resp.headers_mut();
    let csp = if path.starts_with("/docs") {
        // Swagger UI ships inline script and style.
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    } else {
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    };
    let pairs: [(&str, &str); 6] = [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        ("content-security-policy", csp),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (
            "permissions-policy",
            "camera=(self), geolocation=(self), microphone=()",
        ),
    ];
    for (name, value) in pairs {
        h.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    if path.starts_with("/api/") || path.starts_with("/portal") {
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
}

#[handler]
fn health() -> poem::web::Json<serde_json::Value> {
    poem::web::Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

#[handler]
async fn health_db(edge: Data<&Arc<Edge>>) -> Response {
    match edge.db.ping().await {
        Ok(()) => poem::web::Json(
            serde_json::json!({"status": "ok", "backend": format!("{:?}", edge.db.backend())}),
        )
        .into_response(),
        Err(err) => {
            tracing::error!(error = ?err, "database health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                poem::web::Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

#[handler]
async fn health_jobs(edge: Data<&Arc<Edge>>) -> Response {
    let jobs = edge.runner.status().await;
    let work = trainflow_jobs::queue::stats(&edge.db, trainflow_kernel::now())
        .await
        .map_err(anyhow::Error::from);
    match jobs.and_then(|jobs| work.map(|work| (jobs, work))) {
        Ok((jobs, work)) => {
            let healthy = jobs.iter().all(|j| j.healthy);
            let body = serde_json::json!({
                "status": if healthy { "ok" } else { "degraded" },
                "scheduler": if edge.settings.jobs_enabled { "running" } else { "disabled" },
                "jobs": jobs,
                "work": work,
            });
            (
                if healthy {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                poem::web::Json(body),
            )
                .into_response()
        }
        Err(err) => {
            tracing::error!(error = ?err, "job status failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                poem::web::Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

#[handler]
async fn metrics(edge: Data<&Arc<Edge>>) -> Response {
    let (size, idle) = edge.db.pool_stats();
    let mut gauges = vec![
        (
            "trainflow_db_pool_connections",
            "Open database connections.",
            f64::from(size),
        ),
        (
            "trainflow_db_pool_idle",
            "Idle database connections.",
            idle as f64,
        ),
    ];
    if let Ok(jobs) = edge.runner.status().await {
        let failing = jobs.iter().filter(|j| !j.healthy).count();
        gauges.push((
            "trainflow_jobs_failing",
            "Jobs whose latest run failed.",
            failing as f64,
        ));
    }
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(edge.metrics.render(&gauges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_do_not_become_labels() {
        assert_eq!(
            operation_label("GET", "/api/v1/users/0192f0c1-7a6e-7c3e-9d7b-0a1b2c3d4e5f"),
            "GET /api/v1/users/:id"
        );
    }
}
