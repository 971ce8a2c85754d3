//! Wiring: the API, the portal, health and metrics behind one edge middleware.

use std::{any::Any, collections::HashMap, sync::Arc, time::Instant};

use poem::{
    endpoint::make_sync,
    error::NotFoundError,
    get, handler,
    http::{header, HeaderValue, Method, StatusCode},
    middleware::{CatchPanic, Cors, PanicHandler},
    web::{Data, Html},
    Endpoint, EndpointExt, IntoResponse, PathPattern, Request, Response, Route,
};
use poem_openapi::{OpenApi, OpenApiService};
use trainflow_identity::{account_links::AccountLinksApi, api::IdentityApi, signin::AuthDeps};
use trainflow_integrations::{api::ConnectorsApi, Integrations};
use trainflow_jobs::Runner;
use trainflow_kernel::{
    auth::{ClientIp, JwtKeys, VerifiedAccess},
    db::Db,
    error::from_poem_error,
    ApiError,
};
use trainflow_learning::{
    api::LearningApi, assessments_api::AssessmentsApi, skills_api::SkillsApi, Learning,
};
use trainflow_notifications::{api::NotificationsApi, Deliverer};
use trainflow_renewals::{api::RenewalsApi, Renewals};
use trainflow_tenancy::api::TenancyApi;
use trainflow_web::Shell;

use crate::{
    config::Settings,
    limited::BodyGuard,
    metrics::{Family, Metrics},
    ratelimit::RateLimiter,
};

/// Shared state of the edge middleware and the operational endpoints.
pub struct Edge {
    pub settings: Settings,
    pub keys: Arc<JwtKeys>,
    pub metrics: Arc<Metrics>,
    pub per_ip: Arc<RateLimiter>,
    pub per_tenant: Arc<RateLimiter>,
    pub db: Db,
    pub runner: Runner,
    pub integrations: Arc<Integrations>,
    pub deliverer: Deliverer,
    pub renewals: Renewals,
    pub learning: Learning,
}

/// The operations of every bounded context.
pub type Apis = (
    IdentityApi,
    AccountLinksApi,
    TenancyApi,
    ConnectorsApi,
    NotificationsApi,
    RenewalsApi,
    LearningApi,
    AssessmentsApi,
    SkillsApi,
);

/// What the edge middleware needs of the instance: settings, the token keys, the metrics, the
/// rate limits and the route templates that label the metrics.
pub struct Gate {
    pub settings: Settings,
    pub keys: Arc<JwtKeys>,
    pub metrics: Arc<Metrics>,
    pub per_ip: Arc<RateLimiter>,
    pub per_tenant: Arc<RateLimiter>,
    pub templates: Templates,
}

impl Gate {
    /// The gate of `edge`, labelling the API's operations by their OpenAPI path templates.
    pub fn of(edge: &Edge) -> Self {
        Gate {
            settings: edge.settings.clone(),
            keys: edge.keys.clone(),
            metrics: edge.metrics.clone(),
            per_ip: edge.per_ip.clone(),
            per_tenant: edge.per_tenant.clone(),
            templates: Templates::of::<Apis>(),
        }
    }
}

/// Route patterns as poem matches them (`/api/v1/users/:param0`: poem-openapi numbers path
/// parameters) → the operation's OpenAPI path template (`/api/v1/users/{id}`) and the methods
/// the OpenAPI document declares for it (the `Allow` header of a 405).
#[derive(Debug, Default, Clone)]
pub struct Templates(HashMap<String, (String, Vec<String>)>);

impl Templates {
    /// The templates of the operations of `T`.
    pub fn of<T: OpenApi>() -> Self {
        let mut out: HashMap<String, (String, Vec<String>)> = HashMap::new();
        for api in T::meta() {
            for path in api.paths {
                let mut n = 0;
                let pattern: Vec<String> = path
                    .path
                    .split('/')
                    .map(|seg| {
                        if seg.starts_with('{') && seg.ends_with('}') {
                            n += 1;
                            format!(":param{}", n - 1)
                        } else {
                            seg.to_string()
                        }
                    })
                    .collect();
                let entry = out
                    .entry(pattern.join("/"))
                    .or_insert_with(|| (path.path.clone(), Vec::new()));
                for op in &path.operations {
                    let method = op.method.as_str().to_string();
                    if !entry.1.contains(&method) {
                        entry.1.push(method);
                    }
                }
            }
        }
        for (_, methods) in out.values_mut() {
            methods.sort_by_key(|m| method_order(m));
        }
        Templates(out)
    }

    /// The methods an API route pattern has, in a fixed order (`GET, POST, PUT, PATCH, DELETE`);
    /// `None` for a pattern that is not an operation's path.
    pub fn methods(&self, pattern: &str) -> Option<&[String]> {
        self.0.get(pattern).map(|(_, methods)| methods.as_slice())
    }

    /// The template of a matched poem route pattern: the operation's OpenAPI path, else the
    /// pattern with `:name` written `{name}` (a regex constraint dropped, `*rest` as
    /// `{*rest}`). Patterns come from the code, never from the request, so labels stay few.
    pub fn template(&self, pattern: &str) -> String {
        if let Some((t, _)) = self.0.get(pattern) {
            return t.clone();
        }
        let segments: Vec<String> = pattern
            .split('/')
            .map(|seg| {
                if let Some(name) = seg.strip_prefix(':') {
                    format!("{{{}}}", name.split('<').next().unwrap_or(name))
                } else if let Some(name) = seg.strip_prefix('*') {
                    format!("{{*{name}}}")
                } else {
                    seg.to_string()
                }
            })
            .collect();
        let joined = segments.join("/");
        if joined.is_empty() {
            "/".into()
        } else {
            joined
        }
    }
}

/// The OpenAPI service of every bounded context.
pub fn api_service(
    deps: &AuthDeps,
    integrations: &Arc<Integrations>,
    renewals: &Renewals,
    learning: &Learning,
    push: &trainflow_notifications::PushTransport,
    public_url: &str,
) -> OpenApiService<Apis, ()> {
    let service = OpenApiService::new(
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
                push: push.clone(),
            },
            RenewalsApi {
                svc: renewals.clone(),
            },
            LearningApi {
                svc: learning.clone(),
            },
            AssessmentsApi {
                svc: learning.clone(),
            },
            SkillsApi {
                svc: learning.clone(),
            },
        ),
        TITLE,
        env!("CARGO_PKG_VERSION"),
    );
    describe(service, public_url)
}

const TITLE: &str = "TrainFlow API";

/// The title, description and server of the document.
fn describe<T: OpenApi>(service: OpenApiService<T, ()>, public_url: &str) -> OpenApiService<T, ()> {
    service
        .description(
            "Training compliance for multi-tenant organisations. Every answer is `{\"data\": …, \"meta\": …}` \
             or `{\"error\": {\"code\", \"message\", \"fields\", \"request_id\"}}`. Lists take `page` and \
             `per_page` (default 10, max 100). Objects of another tenant answer 404. Optional request \
             fields may be left out or sent as `null` (the same, except where an operation says \
             otherwise); answers leave out optional fields that have no value.",
        )
        .server(public_url.trim_end_matches('/').to_string())
}

/// The OpenAPI document (`GET /api/v1/openapi.json`, `trainflow openapi`) for `public_url`. It
/// depends on the operations' types only, so it needs no database or instance.
pub fn openapi_document(public_url: &str) -> String {
    let spec = describe(
        OpenApiService::new(Contract, TITLE, env!("CARGO_PKG_VERSION")),
        public_url,
    )
    .spec();
    let mut doc: serde_json::Value =
        serde_json::from_str(&spec).expect("poem-openapi renders JSON");
    close_request_objects(&mut doc);
    serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
}

/// Request bodies refuse members their schema does not declare (`Body<T>` reads them with
/// `deny_unknown_fields`), which poem-openapi does not write into the document: every object
/// schema a JSON request body reaches gets `additionalProperties: false`.
fn close_request_objects(doc: &mut serde_json::Value) {
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v.as_str()) {
                        ("$ref", Some(r)) => {
                            out.push(r.trim_start_matches("#/components/schemas/").to_string())
                        }
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(list) => list.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    fn close(schema: &mut serde_json::Value) {
        if let Some(obj) = schema.as_object_mut() {
            if obj.get("type").and_then(|t| t.as_str()) == Some("object")
                && obj.contains_key("properties")
                && !obj.contains_key("additionalProperties")
            {
                obj.insert(
                    "additionalProperties".into(),
                    serde_json::Value::Bool(false),
                );
            }
        }
    }
    let mut queue = Vec::new();
    let paths = doc["paths"].as_object_mut().into_iter().flatten();
    for op in paths.flat_map(|(_, item)| item.as_object_mut().into_iter().flatten()) {
        let content =
            op.1.get_mut("requestBody")
                .and_then(|body| body.get_mut("content"))
                .and_then(|content| content.as_object_mut());
        let Some(content) = content else {
            continue;
        };
        for (media_type, media) in content.iter_mut() {
            // JSON bodies (`Body<T>`) and multipart forms (`deny_unknown_fields`) alike.
            if media_type.starts_with("application/json") || media_type == "multipart/form-data" {
                refs(&media["schema"], &mut queue);
                close(&mut media["schema"]);
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let schema = &mut doc["components"]["schemas"][name.as_str()];
        refs(schema, &mut queue);
        close(schema);
    }
}

/// The operations of [`Apis`] without their handlers: what the document is made of.
struct Contract;

impl OpenApi for Contract {
    fn meta() -> Vec<poem_openapi::registry::MetaApi> {
        Apis::meta()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        Apis::register(registry)
    }

    fn add_routes(
        self,
        _: &mut HashMap<String, HashMap<Method, poem::endpoint::BoxEndpoint<'static>>>,
    ) {
    }
}

/// The whole HTTP application.
pub fn build(edge: Arc<Edge>, deps: AuthDeps) -> impl Endpoint {
    let api = api_service(
        &deps,
        &edge.integrations,
        &edge.renewals,
        &edge.learning,
        &edge.deliverer.push,
        &edge.settings.public_url,
    );
    // The document with the contract's additions (`openapi_document`), not poem-openapi's own.
    let document = openapi_document(&edge.settings.public_url);
    // Swagger UI shows the same document: poem-openapi's page embeds its own, replaced here.
    let docs_html = api.swagger_ui_html().replacen(&api.spec(), &document, 1);
    let spec = make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(document.clone())
    });
    let docs = make_sync(move |_| Html(docs_html.clone()));
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
    self::edge(Arc::new(Gate::of(&edge)), app)
}

/// The edge middleware over `app`: the request id, client address and verified bearer token,
/// rate limits and body limits, security headers, metrics labelled by route template, and a
/// panic anywhere below answered as the 500 envelope (counted and logged with its cause).
pub fn edge<E>(gate: Arc<Gate>, app: E) -> impl Endpoint<Output = Response>
where
    E: Endpoint<Output = Response> + 'static,
{
    let app = app.with(CatchPanic::new().with_handler(OnPanic(gate.metrics.clone())));
    app.around(move |ep, req| {
        let gate = gate.clone();
        async move { Ok(handle(gate, ep, req).await) }
    })
}

/// Marks the answer to a request whose handler panicked.
#[derive(Debug, Clone, Copy)]
struct Panicked;

/// The answer to a panic: logged with its cause and the request id, counted, and answered with
/// the internal-error envelope (the edge turns it into the error page for the portal).
#[derive(Clone)]
struct OnPanic(Arc<Metrics>);

impl PanicHandler for OnPanic {
    type Response = Response;

    fn get_response(&self, cause: Box<dyn Any + Send + 'static>) -> Response {
        panicked(&self.0, cause.as_ref())
    }
}

fn panicked(counters: &Metrics, cause: &(dyn Any + Send)) -> Response {
    let message = cause
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| cause.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    counters.panicked();
    tracing::error!(
        request_id = %trainflow_kernel::request::current_id(),
        panic = %message,
        "a request handler panicked"
    );
    let mut resp =
        ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response();
    resp.set_data(Panicked);
    resp
}

/// The portal: every context's pages on the shared web layer, with each context's navigation
/// entries and dashboard cards.
fn portal(edge: &Arc<Edge>, deps: &AuthDeps) -> impl Endpoint {
    let pages = Route::new();
    let pages = trainflow_identity::web::mount(pages, deps.clone());
    let pages = trainflow_renewals::web::mount(pages, edge.renewals.clone());
    let pages = trainflow_learning::web::mount(pages, edge.learning.clone());
    let pages = trainflow_notifications::web::mount(
        pages,
        deps.db.clone(),
        edge.deliverer.push.clone(),
        &edge.settings.public_url,
    );
    let pages = trainflow_integrations::web::mount(pages, edge.integrations.clone());
    let pages = trainflow_jobs::web::mount(pages, edge.runner.clone());
    let pages = trainflow_tenancy::web::mount(pages, deps.db.clone());
    let shell = Shell::new(
        edge.settings.cookie_secure,
        Arc::new(trainflow_identity::web::Sessions(deps.db.clone())),
    )
    .with_nav(trainflow_identity::web::nav())
    .with_nav(trainflow_renewals::web::nav())
    .with_nav(trainflow_learning::web::nav())
    .with_nav(trainflow_notifications::web::nav())
    .with_nav(trainflow_integrations::web::nav())
    .with_nav(trainflow_jobs::web::nav())
    .with_nav(trainflow_tenancy::web::nav())
    .with_cards(Arc::new(trainflow_identity::web::PeopleCards(
        deps.db.clone(),
    )))
    .with_cards(Arc::new(trainflow_renewals::web::Cards(
        edge.renewals.clone(),
    )))
    .with_cards(Arc::new(trainflow_learning::web::Cards(
        edge.learning.clone(),
    )))
    .with_cards(Arc::new(trainflow_notifications::web::Cards(
        deps.db.clone(),
    )))
    .with_cards(Arc::new(trainflow_integrations::web::Cards(
        edge.integrations.clone(),
    )))
    .with_profile_parts(Arc::new(trainflow_learning::web::ProfileCards(
        edge.learning.clone(),
    )))
    .with_profile_parts(Arc::new(trainflow_identity::web::ProfileParts(
        deps.db.clone(),
    )))
    .with_profile_parts(Arc::new(trainflow_renewals::web::ProfileParts(
        edge.renewals.clone(),
    )));
    trainflow_web::portal(pages, shell)
}

/// The metric label of requests refused before routing (rate limits, body limits).
const REFUSED: &str = "refused";
/// The metric label of requests no route matched.
const UNMATCHED: &str = "unmatched";

async fn handle<E: Endpoint<Output = Response>>(
    edge: Arc<Gate>,
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
    let method = req.method().clone();
    let is_api = path.starts_with("/api/");

    let (outcome, route) = trainflow_kernel::request::scope(request_id.clone(), async {
        let refused = |resp| (resp, Routed::Refused);
        if let Some(refusal) = admit(&edge, &req, &ip, &path) {
            return refused(refusal);
        }
        let limit = body_limit(&edge.settings, &path);
        let chunked = !req.headers().contains_key(header::CONTENT_LENGTH)
            && req.headers().contains_key(header::TRANSFER_ENCODING);
        // A body without a declared length (chunked) is read here, up to the limit — except an
        // upload's, which streams to its operation through the [`BodyGuard`] below.
        if chunked && !is_upload(&path) {
            match req.take_body().into_bytes_limit(limit).await {
                Ok(bytes) => req.set_body(bytes),
                Err(poem::error::ReadBodyError::PayloadTooLarge) => {
                    return refused(error_response(ApiError::PayloadTooLarge, is_api))
                }
                Err(other) => {
                    return refused(error_response(
                        ApiError::BadRequest {
                            message: other.to_string(),
                            field: None,
                        },
                        is_api,
                    ))
                }
            }
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0");
        let guard = (declared || chunked).then(|| BodyGuard::wrap(&mut req, limit));
        // A client waiting for `100 Continue` sends nothing the endpoint did not ask for.
        let expects_continue = req
            .headers()
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let result = ep.call(req).await;
        if let Some(guard) = guard {
            if !(expects_continue && guard.read() == 0) {
                guard.drain().await;
            }
        }
        match result {
            Ok(resp) if resp.data::<Panicked>().is_some() => {
                let resp = if is_api {
                    resp
                } else {
                    error_response(
                        ApiError::Internal(anyhow::anyhow!("handler panicked")),
                        false,
                    )
                };
                (resp, Routed::Panicked)
            }
            Ok(resp) => {
                let route = Routed::of(resp.data::<PathPattern>());
                (resp, route)
            }
            // No route matched: however many such paths, one label.
            Err(err) if err.is::<NotFoundError>() => (
                error_response(from_poem_error(err), is_api),
                Routed::Unmatched,
            ),
            // An extractor's own answer (the portal's redirect to sign in) goes out as it is.
            Err(err) if err.is_from_response() => {
                let route = Routed::of(err.data::<PathPattern>());
                (err.into_response(), route)
            }
            // A path of the API without an operation for this method: 405 with the path's
            // methods as the OpenAPI document declares them.
            Err(err) if err.status() == StatusCode::METHOD_NOT_ALLOWED => {
                let pattern = err.data::<PathPattern>().cloned();
                let allow = pattern
                    .as_ref()
                    .and_then(|p| edge.templates.methods(&p.0))
                    .map(<[String]>::to_vec)
                    .unwrap_or_default();
                let route = Routed::of(pattern.as_ref());
                (
                    error_response(ApiError::MethodNotAllowed { allow }, is_api),
                    route,
                )
            }
            Err(err) => {
                let route = Routed::of(err.data::<PathPattern>());
                (error_response(from_poem_error(err), is_api), route)
            }
        }
    })
    .await;
    let mut resp = outcome;
    let status = resp.status();
    let operation = route.label(&edge.templates, &method);
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

/// Which route answered a request, for its metric label.
enum Routed {
    /// This pattern matched.
    Matched(Arc<str>),
    /// No route matched.
    Unmatched,
    /// Refused at the edge before routing.
    Refused,
    /// The handler panicked.
    Panicked,
}

impl Routed {
    fn of(pattern: Option<&PathPattern>) -> Self {
        pattern.map_or(Routed::Unmatched, |p| Routed::Matched(p.0.clone()))
    }

    /// `GET /api/v1/users/{id}`; `unmatched`, `refused` or `panicked` otherwise. The label set
    /// is bounded by the routes of the code, whatever paths and methods clients send.
    fn label(&self, templates: &Templates, method: &Method) -> String {
        match self {
            Routed::Matched(pattern) => {
                format!("{} {}", method_label(method), templates.template(pattern))
            }
            Routed::Unmatched => UNMATCHED.into(),
            Routed::Refused => REFUSED.into(),
            Routed::Panicked => "panicked".into(),
        }
    }
}

/// The method for a label: the standard ones by name, any other token as `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Where a method goes in an `Allow` header: the usual order, unknown ones last.
fn method_order(method: &str) -> usize {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(usize::MAX)
}

/// A wait in whole seconds, rounded up, at least 1 (for `Retry-After`).
fn whole_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Rate limits and the body-size limit; `Some(response)` refuses the request.
fn admit(edge: &Gate, req: &Request, ip: &str, path: &str) -> Option<Response> {
    if path.starts_with("/health") || path == "/metrics" {
        return None;
    }
    if let Err(wait) = edge.per_ip.check(ip) {
        edge.metrics.rate_limited("ip");
        return Some(
            ApiError::TooManyRequests {
                retry_after: whole_seconds(wait),
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
        if let Err(wait) = edge.per_tenant.check(&tenant) {
            edge.metrics.rate_limited("tenant");
            return Some(
                ApiError::TooManyRequests {
                    retry_after: whole_seconds(wait),
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

/// The paths whose bodies are files, read by their operations as a stream.
fn is_upload(path: &str) -> bool {
    ((path.starts_with("/api/v1/connectors/installations/")
        || path.starts_with("/portal/integrations/"))
        && path.ends_with("/files"))
        || (path.starts_with("/api/v1/renewals/") && path.ends_with("/evidence"))
        || is_material(path)
        || is_registration(path)
        || path == "/api/v1/connectors/packages"
        || path == "/portal/integrations/packages"
}

/// The upload of a lesson's material, through the API or the portal.
fn is_material(path: &str) -> bool {
    (path.starts_with("/api/v1/lessons/") || path.starts_with("/portal/lessons/"))
        && path.ends_with("/materials")
}

/// The upload of a workbook of courses to register, through the API or the portal.
fn is_registration(path: &str) -> bool {
    path == "/api/v1/courses/registrations" || path == "/portal/courses/registrations"
}

/// The largest body a path accepts: uploads of packages, import files, evidence and pictures
/// are larger than everything else.
fn body_limit(settings: &Settings, path: &str) -> usize {
    let upload = (path.starts_with("/api/v1/connectors/installations/")
        || path.starts_with("/portal/integrations/"))
        && path.ends_with("/files");
    let evidence = path.starts_with("/api/v1/renewals/") && path.ends_with("/evidence");
    let avatar = path == "/api/v1/users/me/avatar"
        || path == "/portal/profile/avatar"
        || path == "/api/v1/tenant/logo"
        || path == "/portal/settings/logo";
    if avatar {
        // The picture's own limit, and room for a multipart form's framing.
        (trainflow_kernel::picture::MAX_UPLOAD_BYTES + 64 * 1024).max(settings.max_body_bytes)
    } else if is_registration(path) {
        (trainflow_learning::registration::MAX_BYTES + 64 * 1024).max(settings.max_body_bytes)
    } else if is_material(path) {
        (trainflow_learning::materials::MAX_BYTES + 64 * 1024).max(settings.max_body_bytes)
    } else if evidence {
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

fn secure_headers(resp: &mut Response, path: &str, request_id: &str) {
    let h = resp.headers_mut();
    let csp = if path.starts_with("/docs") {
        // Swagger UI ships inline script and style.
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    } else {
        "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
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
    let now = trainflow_kernel::now();
    let (size, idle, max) = edge.db.pool_stats();
    let mut families = vec![
        Family::gauge(
            "trainflow_db_pool_connections",
            "Open database connections.",
            f64::from(size),
        ),
        Family::gauge(
            "trainflow_db_pool_idle",
            "Idle database connections.",
            idle as f64,
        ),
        Family::gauge(
            "trainflow_db_pool_max",
            "The most database connections the pool opens.",
            f64::from(max),
        ),
    ];
    if let Ok(jobs) = edge.runner.status().await {
        let failing = jobs.iter().filter(|j| !j.healthy).count();
        families.push(Family::gauge(
            "trainflow_jobs_failing",
            "Jobs whose latest run failed (any instance).",
            failing as f64,
        ));
    }
    let stats = edge.runner.stats();
    let per_job = |f: &dyn Fn(&trainflow_jobs::JobStats) -> f64| {
        stats
            .iter()
            .map(|(job, s)| (format!("job=\"{job}\""), f(s)))
            .collect::<Vec<_>>()
    };
    families.push(Family::labelled(
        "trainflow_job_runs_total",
        "Job occurrences by outcome: run here (succeeded, failed) or claimed by another instance.",
        "counter",
        stats
            .iter()
            .flat_map(|(job, s)| {
                [
                    ("succeeded", s.succeeded),
                    ("failed", s.failed),
                    ("claimed_elsewhere", s.claimed_elsewhere),
                ]
                .map(|(outcome, n)| (format!("job=\"{job}\",outcome=\"{outcome}\""), n as f64))
            })
            .collect(),
    ));
    families.push(Family::labelled(
        "trainflow_job_run_seconds_total",
        "Wall time of the job runs this instance executed.",
        "counter",
        per_job(&|s| s.seconds),
    ));
    families.push(Family::labelled(
        "trainflow_job_last_run_seconds",
        "Wall time of each job's latest run on this instance.",
        "gauge",
        per_job(&|s| s.last_seconds),
    ));
    if let Ok(backlog) = edge.deliverer.backlog(now).await {
        families.push(Family::gauge(
            "trainflow_outbox_waiting",
            "Emails and SMS not yet delivered (any instance).",
            backlog.waiting as f64,
        ));
        families.push(Family::gauge(
            "trainflow_outbox_due",
            "Undelivered messages due now.",
            backlog.due as f64,
        ));
        families.push(Family::gauge(
            "trainflow_outbox_oldest_due_seconds",
            "How long the longest-waiting due message has been due.",
            backlog.oldest_due_secs as f64,
        ));
    }
    if let Ok(queue) = trainflow_jobs::queue::stats(&edge.db, now).await {
        families.push(Family::labelled(
            "trainflow_work_items",
            "Background work items by status (any instance).",
            "gauge",
            [
                ("queued", queue.queued),
                ("running", queue.running),
                ("succeeded", queue.succeeded),
                ("failed", queue.failed),
                ("canceled", queue.canceled),
            ]
            .map(|(status, n)| (format!("status=\"{status}\""), n as f64))
            .to_vec(),
        ));
        families.push(Family::gauge(
            "trainflow_work_items_oldest_due_seconds",
            "How long the longest-waiting due work item has been due.",
            queue.oldest_queued_secs.unwrap_or(0) as f64,
        ));
    }
    let runs = edge.integrations.run_metrics.snapshot();
    let per_status = |f: &dyn Fn(&trainflow_integrations::RunTotals) -> f64| {
        runs.iter()
            .map(|(status, t)| (format!("status=\"{status}\""), f(t)))
            .collect::<Vec<_>>()
    };
    families.push(Family::labelled(
        "trainflow_connector_runs_total",
        "Connector runs this instance executed, by how they ended.",
        "counter",
        per_status(&|t| t.runs as f64),
    ));
    families.push(Family::labelled(
        "trainflow_connector_run_seconds_total",
        "Wall time of those runs.",
        "counter",
        per_status(&|t| t.seconds),
    ));
    families.push(Family::labelled(
        "trainflow_connector_fuel_total",
        "WebAssembly instructions (fuel) those runs consumed.",
        "counter",
        per_status(&|t| t.fuel as f64),
    ));
    families.push(Family::labelled(
        "trainflow_connector_peak_memory_bytes",
        "The largest linear memory one of those runs reached.",
        "gauge",
        per_status(&|t| t.peak_memory_bytes as f64),
    ));
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(edge.metrics.render(&families))
}

#[cfg(test)]
mod tests {
    use poem::http::Uri;
    use poem_openapi::{param::Path, payload::PlainText};

    use super::*;

    struct Things;

    #[poem_openapi::OpenApi(prefix_path = "/api/v1")]
    impl Things {
        #[oai(path = "/things/:id", method = "get")]
        async fn thing(&self, id: Path<String>) -> PlainText<String> {
            PlainText(id.0)
        }
    }

    #[handler]
    fn boom() -> &'static str {
        panic!("boom at the edge")
    }

    #[handler]
    fn fine() -> &'static str {
        "fine"
    }

    fn gate() -> Arc<Gate> {
        Arc::new(Gate {
            settings: Settings::default(),
            keys: Arc::new(JwtKeys::new(&[7u8; 32], "trainflow".into(), 900).expect("keys")),
            metrics: Arc::new(Metrics::default()),
            per_ip: Arc::new(RateLimiter::new(10_000)),
            per_tenant: Arc::new(RateLimiter::new(10_000)),
            templates: Templates::of::<Things>(),
        })
    }

    /// The app's shape: the API nested at `/`, fixed routes beside it, the portal nested.
    fn app(gate: &Arc<Gate>) -> impl Endpoint<Output = Response> {
        let routes = Route::new()
            .nest("/", OpenApiService::new(Things, "test", "1"))
            .at("/api/v1/boom", get(boom))
            .at("/health", get(fine))
            .nest(
                "/portal",
                Route::new()
                    .at("/people/:id", get(fine))
                    .at("/boom", get(boom)),
            );
        edge(gate.clone(), routes)
    }

    async fn send(
        ep: &impl Endpoint<Output = Response>,
        method: Method,
        path: &str,
    ) -> (StatusCode, String, Response) {
        let req = Request::builder()
            .method(method)
            .uri(path.parse::<Uri>().expect("uri"))
            .header("x-request-id", "edge-test-1")
            .finish();
        let mut resp = ep.call(req).await.expect("the edge always answers");
        let body = resp.take_body().into_string().await.unwrap_or_default();
        (resp.status(), body, resp)
    }

    #[tokio::test]
    async fn a_panic_is_the_500_envelope_with_the_request_id_and_is_counted() {
        let gate = gate();
        let ep = app(&gate);
        let (status, body, resp) = send(&ep, Method::GET, "/api/v1/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON envelope");
        assert_eq!(json["error"]["code"], "internal_error", "{json}");
        assert_eq!(json["error"]["request_id"], "edge-test-1", "{json}");
        assert!(
            !body.contains("boom at the edge"),
            "the cause stays in the log"
        );
        assert_eq!(resp.headers()["x-request-id"], "edge-test-1");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");

        // The portal's panic is the error page, with the request id.
        let (status, body, _) = send(&ep, Method::GET, "/portal/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("Request id edge-test-1"), "{body}");

        // And the server goes on answering.
        let (status, body, _) = send(&ep, Method::GET, "/api/v1/things/abc").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "abc"));

        let text = gate.metrics.render(&[]);
        assert!(text.contains("trainflow_panics_total 2"), "{text}");
        assert!(
            text.contains("trainflow_http_requests_total{operation=\"panicked\",status=\"500\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn metrics_are_labelled_by_route_template_and_unmatched_paths_share_one_label() {
        let gate = gate();
        let ep = app(&gate);
        for id in ["a", "b", "0192f0c1-7a6e-7c3e-9d7b-0a1b2c3d4e5f"] {
            let (status, _, _) = send(&ep, Method::GET, &format!("/api/v1/things/{id}")).await;
            assert_eq!(status, StatusCode::OK);
            let (status, _, _) = send(&ep, Method::GET, &format!("/portal/people/{id}")).await;
            assert_eq!(status, StatusCode::OK);
        }
        for i in 0..50 {
            for path in [
                format!("/random-{i}"),
                format!("/api/v1/nothing-{i}/{i}"),
                format!("/portal/nothing-{i}"),
            ] {
                let (status, _, _) = send(&ep, Method::GET, &path).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            }
            let brew = Method::from_bytes(format!("BREW{i}").as_bytes()).expect("method");
            send(&ep, brew, "/api/v1/things/x").await;
        }
        send(&ep, Method::GET, "/health").await;
        let text = gate.metrics.render(&[]);
        let labels: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("trainflow_http_requests_total{"))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            vec![
                "GET /api/v1/things/{id}",
                "GET /health",
                "GET /portal/people/{id}",
                "OTHER /api/v1/things/{id}",
                "unmatched",
            ],
            "{text}"
        );
        assert!(text.contains(
            "trainflow_http_requests_total{operation=\"GET /api/v1/things/{id}\",status=\"200\"} 3"
        ));
        assert!(
            text.contains(
                "trainflow_http_requests_total{operation=\"unmatched\",status=\"404\"} 150"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_undeclared_method_is_405_with_the_paths_methods_and_an_unknown_path_404() {
        let gate = gate();
        let ep = app(&gate);
        let (status, body, resp) = send(&ep, Method::DELETE, "/api/v1/things/abc").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
        assert_eq!(resp.headers()["allow"], "GET");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON envelope");
        assert_eq!(json["error"]["code"], "method_not_allowed", "{json}");
        assert_eq!(json["error"]["request_id"], "edge-test-1", "{json}");

        let (status, _, _) = send(&ep, Method::DELETE, "/api/v1/nothing/abc").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            Templates::of::<Things>().methods("/api/v1/things/:param0"),
            Some(&["GET".to_string()][..])
        );
    }

    #[test]
    fn api_templates_map_poems_numbered_parameters_back_to_their_names() {
        let t = Templates::of::<Things>();
        assert_eq!(t.template("/api/v1/things/:param0"), "/api/v1/things/{id}");
        assert_eq!(t.template("/portal/people/:id"), "/portal/people/{id}");
        assert_eq!(t.template("/files/*path"), "/files/{*path}");
        assert_eq!(t.template("/n/:n<\\d+>"), "/n/{n}");
        assert_eq!(t.template(""), "/");
    }

    #[test]
    fn a_wait_is_rounded_up_to_whole_seconds() {
        use std::time::Duration;
        assert_eq!(whole_seconds(Duration::from_millis(10)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }
}
