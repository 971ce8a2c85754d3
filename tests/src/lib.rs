//! The end-to-end test harness: starts the real server on a random port against a fresh
//! SQLite file or a PostgreSQL database on the local server, with two seeded tenants (A and B),
//! one person per role in each, and a platform operator.
//!
//! The backend comes from `TRAINFLOW_TEST_BACKEND` (`sqlite`, the default, or `postgres`);
//! `TRAINFLOW_TEST_PG_URL` points at the server (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! With `postgres` selected and no server reachable the tests fail; they never skip.

pub mod axe;
pub mod itc_validator;
pub mod sinks;
pub mod webdriver;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
};

use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::{Mutex, OnceCell};
use trainflow_integrations::{Integrations, RunSettings};
use trainflow_kernel::{auth::Role, db::Db};
use trainflow_server::config::{Secret, Settings};
use trainflow_tenancy::manifest::{DepartmentSpec, Manifest, TenantSpec, UserSpec};
use uuid::Uuid;

/// The password of every seeded person.
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// Which database the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend selected for this run.
pub fn backend() -> Backend {
    match std::env::var("TRAINFLOW_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("postgresql") | Ok("pg") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("TRAINFLOW_TEST_BACKEND must be sqlite or postgres, not {other}"),
    }
}

fn pg_server_url() -> String {
    std::env::var("TRAINFLOW_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// One fresh PostgreSQL database per test process (created and migrated once), shared by all
/// tests of the process: every test seeds its own tenants, which is itself isolation at work.
async fn pg_database() -> String {
    static DB: OnceCell<String> = OnceCell::const_new();
    DB.get_or_init(|| async {
        let server = pg_server_url();
        let mut conn = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for TRAINFLOW_TEST_BACKEND=postgres ({server}): {e}")
        });
        // Named after the test run (`tests/run.sh` drops its own databases when it ends, and
        // those of any run started more than a day ago).
        let run = std::env::var("TRAINFLOW_TEST_RUN").unwrap_or_else(|_| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("{secs}_{}", std::process::id())
        });
        let id = Uuid::new_v4().simple().to_string();
        let name = format!("trainflow_test_{run}_{}", &id[..16]);
        conn.execute(format!("create database {name}").as_str())
            .await
            .expect("create test database");
        let url = match server.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("TRAINFLOW_TEST_PG_URL needs a database path"),
        };
        Db::migrate(&url).await.expect("migrate test database");
        url
    })
    .await
    .clone()
}

/// A seeded tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    /// The person seeded for each role.
    pub people: HashMap<Role, Uuid>,
    /// The seeded department.
    pub department: Uuid,
}

/// Options for [`TestApp::spawn_with`].
pub struct Options {
    pub rate_limit_per_ip: u32,
    pub cookie_secure: bool,
    pub cors_origins: Vec<String>,
    /// Connector runs: short back-offs and deadlines so failures show quickly.
    pub runs: RunSettings,
    /// Also apply the demo tenant's manifest (slug `demo`), with every context's part.
    pub demo: bool,
}

impl Default for Options {
    fn default() -> Self {
        let mut runs = RunSettings {
            backoff: std::time::Duration::from_millis(20),
            ..RunSettings::default()
        };
        runs.limits.call_deadline = std::time::Duration::from_secs(2);
        Self {
            rate_limit_per_ip: 100_000,
            cookie_secure: false,
            cors_origins: vec!["https://app.example.com".into()],
            runs,
            demo: false,
        }
    }
}

/// A running server with two tenants.
pub struct TestApp {
    pub base: String,
    pub backend: Backend,
    /// The application's pool (as the application role on PostgreSQL).
    pub db: Db,
    /// The owner's URL (migrations, test inspection).
    pub owner_url: String,
    pub client: reqwest::Client,
    pub a: Tenant,
    pub b: Tenant,
    pub operator_email: String,
    pub runner: trainflow_jobs::Runner,
    pub integrations: Arc<Integrations>,
    /// The outbox deliverer (email and SMS go to the server log unless a test builds its own).
    pub deliverer: trainflow_notifications::Deliverer,
    pub renewals: trainflow_renewals::Renewals,
    pub learning: trainflow_learning::Learning,
    tokens: Mutex<HashMap<(String, Role), String>>,
    _dir: Option<TempDir>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which seeded tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    A,
    B,
}

impl TestApp {
    /// Starts a server with default test options.
    pub async fn spawn() -> Arc<TestApp> {
        Self::spawn_with(Options::default()).await
    }

    /// Starts a server.
    pub async fn spawn_with(opts: Options) -> Arc<TestApp> {
        let backend = backend();
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir()
                    .join(format!("trainflow-test-{}", Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                (
                    format!("sqlite://{}", dir.join("test.db").display()),
                    Some(TempDir(dir)),
                )
            }
            Backend::Postgres => (pg_database().await, None),
        };
        let settings = Settings {
            database_url: url.clone(),
            bind: "127.0.0.1:0".into(),
            jwt_secret: "test-secret-test-secret-test-secret-42"
                .parse::<Secret>()
                .expect("infallible"),
            cookie_secure: opts.cookie_secure,
            cors_origins: opts.cors_origins,
            rate_limit_per_ip: opts.rate_limit_per_ip,
            rate_limit_per_tenant: 100_000,
            jobs_enabled: false,
            auto_migrate: backend == Backend::Sqlite,
            db_max_connections: 8,
            password_hash_concurrency: 2,
            // Verifies the SMS webhook's signatures; no account, so SMS go to the log.
            twilio_auth_token: sinks::TWILIO_TOKEN.parse::<Secret>().expect("infallible"),
            // Push tests post to a push service on loopback.
            push_allow_loopback: true,
            ..Settings::default()
        };
        let instance = trainflow_server::prepare_with(settings, opts.runs)
            .await
            .expect("prepare server");
        let db = instance.db.clone();
        let runner = instance.runner.clone();
        let integrations = instance.integrations.clone();
        let deliverer = instance.deliverer.clone();
        let renewals = instance.renewals.clone();
        let learning = instance.learning.clone();
        let suffix = &Uuid::new_v4().simple().to_string()[..10];
        let a = seed(&instance, &format!("a-{suffix}")).await;
        let b = seed(&instance, &format!("b-{suffix}")).await;
        if opts.demo {
            let m = trainflow_tenancy::manifest::parse(trainflow_server::DEMO_MANIFEST)
                .expect("the demo manifest parses");
            instance.apply_manifest(&m).await.expect("apply the demo");
        }
        let operator_email = format!("operator-{suffix}@platform.test");
        let hash = instance
            .deps
            .hasher
            .hash(PASSWORD.into())
            .await
            .expect("hash");
        trainflow_tenancy::tenants::create_operator(&db, &operator_email, &hash)
            .await
            .expect("operator");

        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .cloned()
            .expect("socket address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = trainflow_server::serve(instance, acceptor, async {
                let _ = rx.await;
            })
            .await;
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Arc::new(TestApp {
            base: format!("http://{addr}"),
            backend,
            db,
            owner_url: url,
            client,
            a,
            b,
            operator_email,
            runner,
            integrations,
            deliverer,
            renewals,
            learning,
            tokens: Mutex::new(HashMap::new()),
            _dir: dir,
            _shutdown: tx,
        })
    }

    /// The seeded tenant.
    pub fn tenant(&self, which: Which) -> &Tenant {
        match which {
            Which::A => &self.a,
            Which::B => &self.b,
        }
    }

    /// An access token for the seeded person of `role` in `which` (cached).
    pub async fn token(&self, which: Which, role: Role) -> String {
        let slug = self.tenant(which).slug.clone();
        let key = (slug.clone(), role);
        if let Some(t) = self.tokens.lock().await.get(&key) {
            return t.clone();
        }
        let body = self.sign_in(&slug, &email_of(&slug, role), PASSWORD).await;
        let token = body["data"]["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("sign-in failed: {body}"))
            .to_string();
        self.tokens.lock().await.insert(key, token.clone());
        token
    }

    /// Signs in through the API and returns the body.
    pub async fn sign_in(&self, tenant: &str, email: &str, password: &str) -> Value {
        let (_, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(json!({"tenant": tenant, "email": email, "password": password})),
            )
            .await;
        body
    }

    /// A platform operator token.
    pub async fn operator_token(&self) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/platform/auth/token",
                None,
                Some(json!({"email": self.operator_email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Sends a JSON request; returns status and body (`null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call_url(
            &self.client,
            method,
            &format!("{}{}", self.base, path),
            token,
            body,
        )
        .await
    }

    /// Sends raw bytes with a content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Rows of a query with one bound id, run as the owner (outside the API and its tenancy).
    pub async fn owner_rows<T>(&self, query: &str, id: Uuid) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.owner_url)
                    .await
                    .expect("sqlite");
                sqlx::query_as(query)
                    .bind(id)
                    .fetch_all(&mut c)
                    .await
                    .expect("rows")
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.owner_url).await.expect("pg");
                sqlx::query_as(query)
                    .bind(id)
                    .fetch_all(&mut c)
                    .await
                    .expect("rows")
            }
        }
    }

    /// Counts rows of a tenant table for `tenant`, looking as the owner (outside the API).
    pub async fn count(&self, table: &str, tenant: Uuid) -> i64 {
        let q = format!("select count(*) from {table} where tenant_id = $1");
        let rows: Vec<(i64,)> = self.owner_rows(&q, tenant).await;
        rows[0].0
    }

    /// A snapshot of every row tenant `tenant` holds, to prove a request changed nothing: its
    /// `tenants` row and every row of every table with a `tenant_id` column, the tables read
    /// from the schema itself (PostgreSQL: `information_schema`, base tables of `public`;
    /// SQLite: `sqlite_master` and `pragma_table_info`), so a new table is covered without
    /// editing this. Only the columns in [`ACTIVITY_COLUMNS`] are left out.
    pub async fn fingerprint(&self, tenant: Uuid) -> Fingerprint {
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.owner_url)
                    .await
                    .expect("sqlite");
                let columns: Vec<(String, String)> = sqlx::query_as(
                    "select m.name, p.name from sqlite_master m join pragma_table_info(m.name) p
                      where m.type = 'table'
                        and (m.name = 'tenants' or exists (
                              select 1 from pragma_table_info(m.name) k where k.name = 'tenant_id'))
                      order by m.name, p.cid",
                )
                .fetch_all(&mut c)
                .await
                .expect("tenant tables");
                for (table, key, cols) in tenant_tables(columns) {
                    let row = cols
                        .iter()
                        .map(|c| format!("quote(\"{c}\")"))
                        .collect::<Vec<_>>()
                        .join(" || '|' || ");
                    let q = format!("select {row} from \"{table}\" where \"{key}\" = $1");
                    let rows: Vec<(String,)> = sqlx::query_as(&q)
                        .bind(tenant)
                        .fetch_all(&mut c)
                        .await
                        .unwrap_or_else(|e| panic!("{q}: {e}"));
                    tables.insert(table, rows.into_iter().map(|r| r.0).collect());
                }
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.owner_url).await.expect("pg");
                let columns: Vec<(String, String)> = sqlx::query_as(
                    "select c.table_name::text, c.column_name::text from information_schema.columns c
                       join information_schema.tables t
                         on t.table_schema = c.table_schema and t.table_name = c.table_name
                      where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
                        and (c.table_name = 'tenants' or exists (
                              select 1 from information_schema.columns k
                               where k.table_schema = c.table_schema and k.table_name = c.table_name
                                 and k.column_name = 'tenant_id'))
                      order by c.table_name, c.ordinal_position",
                )
                .fetch_all(&mut c)
                .await
                .expect("tenant tables");
                for (table, key, cols) in tenant_tables(columns) {
                    let row = cols
                        .iter()
                        .map(|c| format!("\"{c}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let q =
                        format!("select row({row})::text from \"{table}\" where \"{key}\" = $1");
                    let rows: Vec<(String,)> = sqlx::query_as(&q)
                        .bind(tenant)
                        .fetch_all(&mut c)
                        .await
                        .unwrap_or_else(|e| panic!("{q}: {e}"));
                    tables.insert(table, rows.into_iter().map(|r| r.0).collect());
                }
            }
        }
        assert!(
            tables.len() > 20 && tables.contains_key("users") && tables.contains_key("tenants"),
            "the schema query found too few tenant tables: {:?}",
            tables.keys().collect::<Vec<_>>()
        );
        for rows in tables.values_mut() {
            rows.sort();
        }
        Fingerprint(tables)
    }
}

/// Columns [`TestApp::fingerprint`] leaves out: activity stamps that authenticating a request
/// writes (a portal session's `last_seen_at` and its person's `last_active_at`, at most once a
/// minute, after the answer, whatever the request asked for). A refused form still
/// authenticates its session, so including them would make "changed nothing" depend on the
/// clock.
pub const ACTIVITY_COLUMNS: &[(&str, &str)] =
    &[("sessions", "last_seen_at"), ("users", "last_active_at")];

/// (table, the column naming the tenant, the columns compared) of the schema's tenant tables
/// and `tenants` (keyed by `id`), from (table, column) pairs in column order.
fn tenant_tables(columns: Vec<(String, String)>) -> Vec<(String, String, Vec<String>)> {
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, column) in columns {
        if ACTIVITY_COLUMNS.contains(&(table.as_str(), column.as_str())) {
            continue;
        }
        by_table.entry(table).or_default().push(column);
    }
    by_table
        .into_iter()
        .map(|(table, cols)| {
            let key = if table == "tenants" {
                "id"
            } else {
                "tenant_id"
            };
            (table, key.to_string(), cols)
        })
        .collect()
}

/// Every row a tenant holds, by table (each table's rows as text, sorted). Compare two with
/// `==`; [`Fingerprint::changes`] says what differs.
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint(pub BTreeMap<String, Vec<String>>);

impl Fingerprint {
    /// The same without `tables` (e.g. the audit log, for a refusal that is audited).
    pub fn without(mut self, tables: &[&str]) -> Fingerprint {
        for t in tables {
            self.0.remove(*t);
        }
        self
    }

    /// The rows only in `self` (`-`) or only in `after` (`+`), by table; empty when equal.
    pub fn changes(&self, after: &Fingerprint) -> String {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.0.keys().chain(after.0.keys()).collect();
        let none = Vec::new();
        for name in names {
            let (a, b) = (
                self.0.get(name).unwrap_or(&none),
                after.0.get(name).unwrap_or(&none),
            );
            for row in a.iter().filter(|r| !b.contains(r)) {
                out.push(format!("{name} - {row}"));
            }
            for row in b.iter().filter(|r| !a.contains(r)) {
                out.push(format!("{name} + {row}"));
            }
        }
        out.join("\n")
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (table, rows) in &self.0 {
            let digest = trainflow_kernel::secret::sha256_hex(rows.join("\n").as_bytes());
            m.entry(
                table,
                &format!("{} rows, sha256 {}", rows.len(), &digest[..16]),
            );
        }
        m.finish()
    }
}

/// Connector helpers: packages, installations, uploads and runs through the API.
impl TestApp {
    /// [`TestApp::call_multipart`], answering `None` when the connection failed before an
    /// answer arrived (a refusal sent before the body was read can reset a connection still
    /// sending it).
    pub async fn try_call_multipart(
        &self,
        path: &str,
        token: Option<&str>,
        form: reqwest::multipart::Form,
    ) -> Option<(StatusCode, Value)> {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .multipart(form);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status();
        let text = resp.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Sends a multipart form (package uploads).
    pub async fn call_multipart(
        &self,
        path: &str,
        token: Option<&str>,
        form: reqwest::multipart::Form,
    ) -> (StatusCode, Value) {
        self.try_call_multipart(path, token, form)
            .await
            .unwrap_or_else(|| panic!("{path}: the connection failed before an answer"))
    }

    /// Installs a connector; panics unless it is created.
    pub async fn install(&self, token: &str, body: Value) -> Uuid {
        let (s, b) = self
            .call(
                Method::POST,
                "/api/v1/connectors/installations",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["data"]["id"].as_str().unwrap().parse().unwrap()
    }

    /// Uploads a file for an installation.
    pub async fn upload(
        &self,
        token: &str,
        installation: Uuid,
        name: &str,
        bytes: Vec<u8>,
    ) -> Uuid {
        let (s, b) = self
            .call_raw(
                Method::POST,
                &format!("/api/v1/connectors/installations/{installation}/files?filename={name}"),
                Some(token),
                "application/octet-stream",
                bytes,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["data"]["id"].as_str().unwrap().parse().unwrap()
    }

    /// Starts a run and waits for it to end; returns the run.
    pub async fn run_to_end(&self, token: &str, installation: Uuid) -> Value {
        let (s, b) = self
            .call(
                Method::POST,
                &format!("/api/v1/connectors/installations/{installation}/runs"),
                Some(token),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let id = b["data"]["id"].as_str().unwrap().to_string();
        self.wait_for_run(token, &id).await
    }

    /// Polls a run until it is no longer running (at most a minute).
    pub async fn wait_for_run(&self, token: &str, id: &str) -> Value {
        for _ in 0..600 {
            let (s, b) = self
                .call(
                    Method::GET,
                    &format!("/api/v1/connectors/runs/{id}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            if b["data"]["status"] != "running" {
                return b["data"].clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("run {id} did not finish within a minute");
    }
}

/// Portal helpers: a browser-like client signed in as a seeded person, and its forms.
impl TestApp {
    /// A client that keeps cookies and does not follow redirects, signed in to the portal of
    /// `which` as the seeded person of `role`.
    pub async fn portal_client(&self, which: Which, role: Role) -> reqwest::Client {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let (_, login) = self.portal_get(&client, "/portal/login").await;
        let slug = self.tenant(which).slug.clone();
        let email = email_of(&slug, role);
        let (status, body) = self
            .portal_post(
                &client,
                "/portal/login",
                &[
                    ("csrf", csrf_of(&login).as_str()),
                    ("organisation", slug.as_str()),
                    ("email", email.as_str()),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "portal sign-in failed: {body}"
        );
        client
    }

    /// Fetches a portal page: status and HTML.
    pub async fn portal_get(&self, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
        let resp = client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    /// Submits a URL-encoded form: status, and the redirect target when there is one (else the
    /// page).
    pub async fn portal_post(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let resp = client
            .post(format!("{}{}", self.base, path))
            .form(form)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        match resp.headers().get("location") {
            Some(l) => (status, l.to_str().expect("location").to_string()),
            None => (status, resp.text().await.expect("body")),
        }
    }
}

/// Fixtures: real objects of a seeded tenant made through the API (by its administrator unless
/// said otherwise), for tests whose calls must find what they name. Each call makes new ones,
/// so concurrent callers never share one.
impl TestApp {
    /// Calls the API as the seeded `role` of `which` and returns `data`; panics unless the answer
    /// is a success.
    pub async fn ok_as(
        &self,
        which: Which,
        role: Role,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let token = self.token(which, role).await;
        let (s, b) = self.call(method.clone(), path, Some(&token), body).await;
        assert!(s.is_success(), "fixture {method} {path}: {s} {b}");
        b["data"].clone()
    }

    /// A new person (role employee, invited: no password) of `which`.
    pub async fn fresh_user(&self, which: Which) -> Uuid {
        self.fresh_person(which, Role::Employee, None).await.0
    }

    /// A new person of `which` with `role` and optionally a password: (id, email).
    pub async fn fresh_person(
        &self,
        which: Which,
        role: Role,
        password: Option<&str>,
    ) -> (Uuid, String) {
        let email = format!("{}@fixture.test", short_unique());
        let mut body = json!({"email": email, "first_name": "Fixture", "last_name": "Person",
                              "role": role.as_str(), "department_id": self.tenant(which).department});
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        let d = self
            .ok_as(
                which,
                Role::Administrator,
                Method::POST,
                "/api/v1/users",
                Some(body),
            )
            .await;
        (id_of(&d), email)
    }

    /// A new person of `which` with a picture (uploaded by themselves).
    /// Gives tenant `which` an uploaded logo (through its administrator); the tenant's id.
    pub async fn with_logo(&self, which: Which) -> Uuid {
        let token = self.token(which, Role::Administrator).await;
        let (s, b) = self
            .call_raw(
                Method::PUT,
                "/api/v1/tenant/logo",
                Some(&token),
                "image/png",
                png(64, 24),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        self.tenant(which).id
    }

    pub async fn fresh_avatar(&self, which: Which) -> Uuid {
        let (id, email) = self
            .fresh_person(which, Role::Employee, Some(PASSWORD))
            .await;
        let signed = self
            .sign_in(&self.tenant(which).slug, &email, PASSWORD)
            .await;
        let token = signed["data"]["access_token"].as_str().expect("signed in");
        let (s, b) = self
            .call_raw(
                Method::PUT,
                "/api/v1/users/me/avatar",
                Some(token),
                "image/png",
                png(32, 24),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        id
    }

    /// A new person of `which`, soft-deleted.
    pub async fn deleted_user(&self, which: Which) -> Uuid {
        let id = self.fresh_user(which).await;
        self.ok_as(
            which,
            Role::Administrator,
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            None,
        )
        .await;
        id
    }

    /// Sets `user`'s supervisor and manager.
    pub async fn set_reporting_lines(
        &self,
        which: Which,
        user: Uuid,
        supervisor: Option<Uuid>,
        manager: Option<Uuid>,
    ) {
        self.ok_as(
            which,
            Role::Administrator,
            Method::PUT,
            &format!("/api/v1/users/{user}/reporting-lines"),
            Some(json!({"supervisor_id": supervisor, "manager_id": manager})),
        )
        .await;
    }

    /// A new certification type of `which` (12 months, no evidence required).
    pub async fn fresh_cert_type(&self, which: Which) -> Uuid {
        let d = self
            .ok_as(
                which,
                Role::Administrator,
                Method::POST,
                "/api/v1/certification-types",
                Some(
                    json!({"code": short_unique(), "name": "Fixture type", "validity_months": 12}),
                ),
            )
            .await;
        id_of(&d)
    }

    /// A certification of `user` (of a new type, issued 2026-06-01).
    pub async fn fresh_certification(&self, which: Which, user: Uuid) -> Uuid {
        let type_id = self.fresh_cert_type(which).await;
        let d = self
            .ok_as(
                which,
                Role::Administrator,
                Method::POST,
                "/api/v1/certifications",
                Some(json!({"user_id": user, "type_id": type_id, "issued_on": "2026-06-01"})),
            )
            .await;
        id_of(&d)
    }

    /// A pending renewal request of the seeded employee of `which`, asked for by the employee
    /// for a new certification of theirs.
    pub async fn fresh_renewal(&self, which: Which) -> Uuid {
        let employee = self.tenant(which).people[&Role::Employee];
        let cert = self.fresh_certification(which, employee).await;
        let d = self
            .ok_as(
                which,
                Role::Employee,
                Method::POST,
                "/api/v1/renewals",
                Some(json!({"certification_id": cert})),
            )
            .await;
        id_of(&d)
    }

    /// [`TestApp::fresh_renewal`] with an evidence file: (request, evidence).
    pub async fn fresh_evidence(&self, which: Which) -> (Uuid, Uuid) {
        let id = self.fresh_renewal(which).await;
        let token = self.token(which, Role::Employee).await;
        let (s, b) = self
            .call_raw(
                Method::POST,
                &format!("/api/v1/renewals/{id}/evidence?filename=evidence.pdf"),
                Some(&token),
                "application/pdf",
                b"%PDF-1.4 fixture".to_vec(),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "fixture evidence: {b}");
        (id, id_of(&b["data"]["evidence"][0]))
    }

    /// [`TestApp::fresh_renewal`], returned for changes by its approver (`approver`, the role of
    /// the pending step's approver in the fixture's set-up).
    pub async fn returned_renewal(&self, which: Which, approver: Role) -> Uuid {
        let id = self.fresh_renewal(which).await;
        self.ok_as(
            which,
            approver,
            Method::POST,
            &format!("/api/v1/renewals/{id}/decision"),
            Some(json!({"decision": "return", "comment": "Fixture: please add the certificate"})),
        )
        .await;
        id
    }

    /// A new in-app notification for `user` of `which`.
    pub async fn fresh_notification(&self, which: Which, user: Uuid) -> Uuid {
        let mut tx = trainflow_kernel::db::TenantTx::begin_system(
            &self.db,
            trainflow_kernel::TenantId(self.tenant(which).id),
        )
        .await
        .expect("tx");
        let notice = trainflow_notifications::Notice::new(
            user,
            trainflow_notifications::Kind::System,
            trainflow_notifications::Priority::Low,
            "Fixture",
            "A notification made for a test.",
        );
        let notified = trainflow_notifications::notify(
            &mut tx,
            &notice,
            "http://localhost",
            trainflow_kernel::now(),
        )
        .await
        .expect("notify");
        tx.commit().await.expect("commit");
        notified.notification.expect("an in-app notification")
    }

    /// A new push subscription (a browser on loopback) of `user` of `which`.
    pub async fn fresh_push_device(&self, which: Which, user: Uuid) -> Uuid {
        let mut tx = trainflow_kernel::db::TenantTx::begin_system(
            &self.db,
            trainflow_kernel::TenantId(self.tenant(which).id),
        )
        .await
        .expect("tx");
        let body = push_subscription();
        let device = trainflow_notifications::devices::register(
            &mut tx,
            user,
            body["endpoint"].as_str().expect("endpoint"),
            body["keys"]["p256dh"].as_str().expect("p256dh"),
            body["keys"]["auth"].as_str().expect("auth"),
            Some("Fixture browser"),
            trainflow_kernel::now(),
        )
        .await
        .expect("register");
        tx.commit().await.expect("commit");
        device.id
    }

    /// A new (future) delegation of the seeded `role` of `which` to another seeded person.
    pub async fn fresh_delegation(&self, which: Which, role: Role) -> Uuid {
        let delegate = self.other_person(which, role);
        let d = self
            .ok_as(
                which,
                role,
                Method::POST,
                "/api/v1/delegations",
                Some(
                    json!({"delegate_id": delegate, "starts_at": "2027-01-01T00:00:00Z",
                            "ends_at": "2027-01-08T00:00:00Z"}),
                ),
            )
            .await;
        id_of(&d)
    }

    /// A seeded person of `which` other than the one of `role`.
    pub fn other_person(&self, which: Which, role: Role) -> Uuid {
        let other = if role == Role::Administrator {
            Role::TrainingOfficer
        } else {
            Role::Administrator
        };
        self.tenant(which).people[&other]
    }

    /// A new installation of the CSV connector of `which` (`sync_mode` `incremental` or
    /// `full_refresh`).
    pub async fn fresh_installation(&self, which: Which, sync_mode: &str) -> Uuid {
        let admin = self.token(which, Role::Administrator).await;
        let mut body = csv_installation(&short_unique());
        body["sync_mode"] = json!(sync_mode);
        self.install(&admin, body).await
    }

    /// A new incremental installation of `which` with a file of one new person to import.
    pub async fn installation_with_file(&self, which: Which) -> Uuid {
        let admin = self.token(which, Role::Administrator).await;
        let inst = self.fresh_installation(which, "incremental").await;
        self.upload(&admin, inst, "people.csv", person_csv()).await;
        inst
    }

    /// A finished run of a new installation of `which` (one person imported).
    pub async fn fresh_run(&self, which: Which) -> Uuid {
        let admin = self.token(which, Role::Administrator).await;
        let inst = self.installation_with_file(which).await;
        id_of(&self.run_to_end(&admin, inst).await)
    }

    /// A new published course of `which` (made by its training officer) with one module of one
    /// text lesson: (course, module, lesson).
    pub async fn fresh_course(&self, which: Which) -> (Uuid, Uuid, Uuid) {
        let officer = Role::TrainingOfficer;
        let course = id_of(
            &self
                .ok_as(
                    which,
                    officer,
                    Method::POST,
                    "/api/v1/courses",
                    Some(json!({"code": short_unique(), "title": "Fixture course", "status": "published"})),
                )
                .await,
        );
        let module = id_of(
            &self
                .ok_as(
                    which,
                    officer,
                    Method::POST,
                    &format!("/api/v1/courses/{course}/modules"),
                    Some(json!({"title": "Fixture module", "duration_hours": 1})),
                )
                .await,
        );
        let lesson = id_of(
            &self
                .ok_as(
                    which,
                    officer,
                    Method::POST,
                    &format!("/api/v1/modules/{module}/lessons"),
                    Some(json!({"title": "Fixture lesson", "kind": "text", "body": "Read this."})),
                )
                .await,
        );
        (course, module, lesson)
    }

    /// A new course of `which`, soft-deleted.
    pub async fn deleted_course(&self, which: Which) -> Uuid {
        let (course, _, _) = self.fresh_course(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/courses/{course}"),
            None,
        )
        .await;
        course
    }

    /// A module of a new course of `which`, soft-deleted.
    pub async fn deleted_module(&self, which: Which) -> Uuid {
        let (_, module, _) = self.fresh_course(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/modules/{module}"),
            None,
        )
        .await;
        module
    }

    /// A topic (of 1 hour) of a new course of `which`.
    pub async fn fresh_topic(&self, which: Which) -> Uuid {
        let (course, _, _) = self.fresh_course(which).await;
        id_of(
            &self
                .ok_as(
                    which,
                    Role::TrainingOfficer,
                    Method::POST,
                    &format!("/api/v1/courses/{course}/topics"),
                    Some(json!({"title": "Fixture topic", "duration_hours": 1})),
                )
                .await,
        )
    }

    /// A topic of a new course of `which`, soft-deleted.
    pub async fn deleted_topic(&self, which: Which) -> Uuid {
        let topic = self.fresh_topic(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/topics/{topic}"),
            None,
        )
        .await;
        topic
    }

    /// A text file attached to the lesson of a new published course of `which`.
    pub async fn fresh_material(&self, which: Which) -> Uuid {
        let (_, _, lesson) = self.fresh_course(which).await;
        let token = self.token(which, Role::TrainingOfficer).await;
        let (status, body) = self
            .call_raw(
                Method::POST,
                &format!("/api/v1/lessons/{lesson}/materials?filename=notes.txt"),
                Some(&token),
                "text/plain",
                b"Read me before the lesson.".to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        id_of(&body["data"])
    }

    /// A file of a lesson of `which`, soft-deleted.
    pub async fn deleted_material(&self, which: Which) -> Uuid {
        let material = self.fresh_material(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/materials/{material}"),
            None,
        )
        .await;
        material
    }

    /// A lesson of a new course of `which`, soft-deleted.
    pub async fn deleted_lesson(&self, which: Which) -> Uuid {
        let (_, _, lesson) = self.fresh_course(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/lessons/{lesson}"),
            None,
        )
        .await;
        lesson
    }

    /// Two new courses of `which`, the first requiring the second: (course, required).
    pub async fn prerequisite(&self, which: Which) -> (Uuid, Uuid) {
        let (course, _, _) = self.fresh_course(which).await;
        let (required, _, _) = self.fresh_course(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::POST,
            &format!("/api/v1/courses/{course}/prerequisites"),
            Some(json!({"required_course_id": required})),
        )
        .await;
        (course, required)
    }

    /// The self-enrolment of `role`'s person of `which` in a new course: (enrolment, lesson).
    pub async fn fresh_enrolment(&self, which: Which, role: Role) -> (Uuid, Uuid) {
        let (course, _, lesson) = self.fresh_course(which).await;
        let enrolment = id_of(
            &self
                .ok_as(
                    which,
                    role,
                    Method::POST,
                    &format!("/api/v1/courses/{course}/enrol"),
                    None,
                )
                .await,
        );
        (enrolment, lesson)
    }

    /// A question bank with one question, of a new course of `which`: (course, bank, question).
    pub async fn fresh_bank(&self, which: Which) -> (Uuid, Uuid, Uuid) {
        let (course, _, _) = self.fresh_course(which).await;
        let officer = Role::TrainingOfficer;
        let bank = id_of(
            &self
                .ok_as(
                    which,
                    officer,
                    Method::POST,
                    &format!("/api/v1/courses/{course}/question-banks"),
                    Some(json!({"name": "Fixture bank"})),
                )
                .await,
        );
        let question = id_of(
            &self
                .ok_as(
                    which,
                    officer,
                    Method::POST,
                    &format!("/api/v1/question-banks/{bank}/questions"),
                    Some(
                        json!({"kind": "single_choice", "prompt": "Fixture question?",
                                "options": ["Yes", "No"], "correct_options": [0]}),
                    ),
                )
                .await,
        );
        (course, bank, question)
    }

    /// A question bank of `which`, soft-deleted.
    pub async fn deleted_bank(&self, which: Which) -> Uuid {
        let (_, bank, _) = self.fresh_bank(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/question-banks/{bank}"),
            None,
        )
        .await;
        bank
    }

    /// A question of `which`, soft-deleted.
    pub async fn deleted_question(&self, which: Which) -> Uuid {
        let (_, _, question) = self.fresh_bank(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/questions/{question}"),
            None,
        )
        .await;
        question
    }

    /// An assessment lesson with a quiz of one question, in a new published course of `which`:
    /// (course, lesson, bank).
    pub async fn quiz_fixture(&self, which: Which) -> (Uuid, Uuid, Uuid) {
        let (course, bank, _) = self.fresh_bank(which).await;
        let officer = Role::TrainingOfficer;
        let detail = self
            .ok_as(
                which,
                officer,
                Method::GET,
                &format!("/api/v1/courses/{course}"),
                None,
            )
            .await;
        let module = detail["modules"][0]["module"]["id"]
            .as_str()
            .or(detail["modules"][0]["id"].as_str())
            .expect("the fixture course's module")
            .to_string();
        let lesson = id_of(
            &self
                .ok_as(
                    which,
                    officer,
                    Method::POST,
                    &format!("/api/v1/modules/{module}/lessons"),
                    Some(json!({"title": "Fixture quiz", "kind": "assessment"})),
                )
                .await,
        );
        self.ok_as(
            which,
            officer,
            Method::PUT,
            &format!("/api/v1/lessons/{lesson}/quiz"),
            Some(json!({"bank_id": bank})),
        )
        .await;
        (course, lesson, bank)
    }

    /// A quiz of `which`: (assessment lesson, bank).
    pub async fn fresh_quiz(&self, which: Which) -> (Uuid, Uuid) {
        let (_, lesson, bank) = self.quiz_fixture(which).await;
        (lesson, bank)
    }

    /// A quiz of `which` in a course `role`'s person is enrolled in: its lesson.
    pub async fn enrolled_quiz(&self, which: Which, role: Role) -> Uuid {
        let (course, lesson, _) = self.quiz_fixture(which).await;
        self.ok_as(
            which,
            role,
            Method::POST,
            &format!("/api/v1/courses/{course}/enrol"),
            None,
        )
        .await;
        lesson
    }

    /// An attempt in progress of `role`'s person of `which`.
    pub async fn fresh_attempt(&self, which: Which, role: Role) -> Uuid {
        let lesson = self.enrolled_quiz(which, role).await;
        id_of(
            &self
                .ok_as(
                    which,
                    role,
                    Method::POST,
                    &format!("/api/v1/lessons/{lesson}/attempts"),
                    None,
                )
                .await,
        )
    }

    /// The certificate of `role`'s person of `which` for a new course they completed: (id,
    /// verification code).
    pub async fn fresh_certificate(&self, which: Which, role: Role) -> (Uuid, String) {
        let (enrolment, lesson) = self.fresh_enrolment(which, role).await;
        self.ok_as(
            which,
            role,
            Method::POST,
            &format!("/api/v1/enrolments/{enrolment}/progress"),
            Some(json!({"lesson_id": lesson, "completed": true})),
        )
        .await;
        let list = self
            .ok_as(
                which,
                role,
                Method::GET,
                "/api/v1/certificates?per_page=100",
                None,
            )
            .await;
        let cert = list
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|c| c["enrolment_id"] == json!(enrolment))
                    .cloned()
            })
            .expect("the fixture enrolment's certificate");
        (id_of(&cert), cert["code"].as_str().unwrap().to_string())
    }

    /// A certificate of `which`'s employee, revoked.
    /// A skill of `which`'s catalogue, of two levels.
    pub async fn fresh_skill(&self, which: Which) -> Uuid {
        id_of(
            &self
                .ok_as(
                    which,
                    Role::TrainingOfficer,
                    Method::POST,
                    "/api/v1/skills",
                    Some(json!({"name": format!("Skill {}", short_unique()), "levels": ["Knows", "Does"]})),
                )
                .await,
        )
    }

    /// A skill of `which`'s catalogue, soft-deleted.
    pub async fn deleted_skill(&self, which: Which) -> Uuid {
        let id = self.fresh_skill(which).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::DELETE,
            &format!("/api/v1/skills/{id}"),
            None,
        )
        .await;
        id
    }

    pub async fn revoked_certificate(&self, which: Which) -> Uuid {
        let (id, _) = self.fresh_certificate(which, Role::Employee).await;
        self.ok_as(
            which,
            Role::TrainingOfficer,
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            Some(json!({"reason": "Fixture revocation"})),
        )
        .await;
        id
    }

    /// A finished dry run of a new installation of `which`, not applied yet.
    pub async fn dry_run(&self, which: Which) -> Uuid {
        let admin = self.token(which, Role::Administrator).await;
        let inst = self.installation_with_file(which).await;
        let (s, b) = self
            .call(
                Method::POST,
                &format!("/api/v1/connectors/installations/{inst}/runs"),
                Some(&admin),
                Some(json!({"dry_run": true})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "fixture dry run: {b}");
        let run = self
            .wait_for_run(&admin, b["data"]["id"].as_str().unwrap())
            .await;
        assert_eq!(run["status"], "succeeded", "fixture dry run: {run}");
        id_of(&run)
    }

    /// A full-refresh run of `which` that waits for an administrator to confirm its deletions:
    /// the first run imports one person, the second reads a file without them. Needs a
    /// `deletion_guard` under the share of the tenant's people one person is (the matrices
    /// run with 0).
    pub async fn confirmable_run(&self, which: Which) -> Uuid {
        let admin = self.token(which, Role::Administrator).await;
        let inst = self.fresh_installation(which, "full_refresh").await;
        self.upload(&admin, inst, "people.csv", person_csv()).await;
        let first = self.run_to_end(&admin, inst).await;
        assert_eq!(first["status"], "succeeded", "fixture run: {first}");
        self.upload(
            &admin,
            inst,
            "people.csv",
            b"Id,First,Last,Email\n".to_vec(),
        )
        .await;
        let run = self.run_to_end(&admin, inst).await;
        assert_eq!(run["status"], "needs_confirmation", "fixture run: {run}");
        id_of(&run)
    }

    /// A token of a new password-reset link of a new person of `which`.
    pub async fn reset_token(&self, which: Which) -> String {
        let (_, email) = self.fresh_person(which, Role::Employee, None).await;
        let slug = self.tenant(which).slug.clone();
        let (s, b) = self
            .call(
                Method::POST,
                "/api/v1/auth/password-reset",
                None,
                Some(json!({"tenant": slug, "email": email})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "fixture reset: {b}");
        self.emailed_token(which, &email).await
    }

    /// A token of a new email-verification link of a new person of `which`.
    pub async fn verification_token(&self, which: Which) -> String {
        let (_, email) = self
            .fresh_person(which, Role::Employee, Some(PASSWORD))
            .await;
        let slug = self.tenant(which).slug.clone();
        let signed = self.sign_in(&slug, &email, PASSWORD).await;
        let token = signed["data"]["access_token"].as_str().expect("signed in");
        let (s, b) = self
            .call(
                Method::POST,
                "/api/v1/users/me/verify-email",
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "fixture verification: {b}");
        self.emailed_token(which, &email).await
    }

    /// A new refresh token of a new person of `which`.
    pub async fn refresh_token(&self, which: Which) -> String {
        let (_, email) = self
            .fresh_person(which, Role::Employee, Some(PASSWORD))
            .await;
        let slug = self.tenant(which).slug.clone();
        let signed = self.sign_in(&slug, &email, PASSWORD).await;
        signed["data"]["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("fixture sign-in: {signed}"))
            .to_string()
    }

    /// The link token of the newest email to `email` (links carry `token=`).
    async fn emailed_token(&self, which: Which, email: &str) -> String {
        let q = format!(
            "select text_body from outbox where tenant_id = $1 and recipient = '{email}'
              order by created_at desc, id desc"
        );
        let rows: Vec<(String,)> = self.owner_rows(&q, self.tenant(which).id).await;
        let text = &rows
            .first()
            .unwrap_or_else(|| panic!("no email to {email}"))
            .0;
        let at = text.find("token=").expect("a link token") + "token=".len();
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect()
    }
}

/// A valid installation of the first-party CSV connector (people: Id, First, Last, Email).
pub fn csv_installation(unique: &str) -> Value {
    json!({"connector_id": "com.trainflow.csv", "name": format!("csv {unique}"),
           "config": {"entity": "employee", "columns": {"external_id": "Id", "first_name": "First", "last_name": "Last", "email": "Email"}}})
}

/// A CSV file of one new person for [`csv_installation`].
fn person_csv() -> Vec<u8> {
    let u = short_unique();
    format!("Id,First,Last,Email\nE{u},Ann,Lee,ann.{u}@example.com\n").into_bytes()
}

/// A `width` × `height` PNG.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 160])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode a PNG");
    out.into_inner()
}

/// 12 random hex digits.
/// The body of `POST /notifications/push/subscriptions` for a new browser: a unique endpoint
/// on loopback (which test servers accept) and fresh keys.
pub fn push_subscription() -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    serde_json::json!({
        "endpoint": format!("http://127.0.0.1:9/push/{}", Uuid::new_v4().simple()),
        "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes()),
            "auth": URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes()),
        },
    })
}

pub fn short_unique() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The `id` of an API object.
pub fn id_of(data: &Value) -> Uuid {
    data["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {data}"))
}

/// Sends a JSON request to `url` (any server, not only a [`TestApp`]'s); returns status and
/// body (`null` when empty).
pub async fn call_url(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// The value of the first `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A component built from `plugins/` (`trainflow_connector_<name>.wasm`).
pub fn plugin(name: &str) -> Vec<u8> {
    let path = PathBuf::from(trainflow_integrations::catalogue::BUILT_PLUGINS_DIR)
        .join(format!("trainflow_connector_{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The manifest of the misbehaving test component, as a partner would upload it.
pub fn testing_manifest(component: &[u8]) -> Value {
    json!({
        "id": "example.misbehaving",
        "name": "Sandbox test connector",
        "version": "0.1.0",
        "description": "Misbehaves on request.",
        "capabilities": {"file": false, "http_hosts": ["api.example.com", "localhost"], "secrets": ["api_token"]},
        "config_schema": {
            "type": "object",
            "properties": {"mode": {"type": "string"}, "count": {"type": "integer"}, "per_page": {"type": "integer"}, "failures": {"type": "integer"}, "url": {"type": "string"}},
            "additionalProperties": false
        },
        "sha256": trainflow_kernel::secret::sha256_hex(component),
    })
}

/// A multipart package form.
pub fn package_form(manifest: &Value, component: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("manifest", manifest.to_string())
        .part(
            "component",
            reqwest::multipart::Part::bytes(component)
                .file_name("connector.wasm")
                .mime_str("application/wasm")
                .expect("mime"),
        )
}

/// The seeded email of `role` in tenant `slug`.
pub fn email_of(slug: &str, role: Role) -> String {
    format!("{}@{slug}.test", role.as_str().replace('_', "-"))
}

async fn seed(instance: &trainflow_server::Instance, slug: &str) -> Tenant {
    let manifest = Manifest {
        tenant: TenantSpec {
            slug: slug.into(),
            name: format!("Tenant {slug}"),
            domain: None,
            time_zone: None,
            locale: None,
            notification_channels: None,
        },
        departments: vec![DepartmentSpec {
            name: "Operations".into(),
            code: Some("OPS".into()),
        }],
        users: Role::ALL
            .iter()
            .map(|r| UserSpec {
                email: Some(email_of(slug, *r)),
                first_name: r.label().split(' ').next().unwrap_or("Test").into(),
                last_name: "Person".into(),
                role: *r,
                department: Some("Operations".into()),
                position: None,
                phone: None,
                employee_number: None,
                password: Some(PASSWORD.into()),
                pin: None,
                foreman: None,
                manager: None,
            })
            .collect(),
        parts: Default::default(),
    };
    trainflow_tenancy::manifest::apply(&instance.db, &instance.deps.hasher, &manifest, &[])
        .await
        .expect("seed tenant");
    let t = trainflow_tenancy::tenants::by_slug(&instance.db, slug)
        .await
        .expect("tenant")
        .expect("seeded");
    let mut tx = trainflow_kernel::db::TenantTx::begin_system(
        &instance.db,
        trainflow_kernel::TenantId(t.id),
    )
    .await
    .expect("tx");
    let mut people = HashMap::new();
    for r in Role::ALL {
        let login = trainflow_identity::users::Login::Email(email_of(slug, r));
        let u = trainflow_identity::users::find_for_sign_in(&mut tx, &login)
            .await
            .expect("find")
            .expect("seeded")
            .user;
        people.insert(r, u.id);
    }
    let department = trainflow_identity::api::departments(&mut tx)
        .await
        .expect("departments")[0]
        .id;
    tx.commit().await.expect("commit");
    Tenant {
        id: t.id,
        slug: slug.into(),
        people,
        department,
    }
}
