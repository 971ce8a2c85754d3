//! Benchmark: authenticated `GET /api/v1/users?per_page=50` with 100 tenants × 10,000 people,
//! on PostgreSQL and on SQLite (the embedded default), each beside the same SQL issued directly
//! through the database driver (the ceiling) in the same run.
//!
//! ```text
//! cargo build --release -p trainflow-server -p trainflow-tests
//! target/release/bench-users            # or: cargo run --release -p trainflow-tests --bin bench-users
//! ```
//! Options (environment): `BENCH_BACKENDS` (`postgres,sqlite`),
//! `BENCH_PG_URL` (default postgres://postgres@127.0.0.1:5432/postgres),
//! `BENCH_TENANTS` (100), `BENCH_USERS` (10000 per tenant), `BENCH_SECONDS` (10 per phase),
//! `BENCH_CONCURRENCY` (32), `BENCH_KEEP=1` to keep the database.
//!
//! Prints: saturation throughput of the API and of the ceiling, their ratio, p50/p99 latency
//! of the API at half its saturation rate, the portal's people page (`/portal/users`, signed in
//! with a session cookie): its saturation throughput, then its latency beside the API's in one
//! phase where requests alternate between the two, and the server's resident memory idle and
//! loaded.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sqlx::{
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Connection, Executor, PgConnection, PgPool, QueryBuilder, SqliteConnection, SqlitePool,
};
use uuid::Uuid;

#[path = "common.rs"]
mod common;

use common::{binary, env_or, fresh_pg_database, migrate, password_hash, percentile, PASSWORD};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let backends: String = env_or("BENCH_BACKENDS", "postgres,sqlite".to_string());
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        match backend {
            "postgres" => run_postgres().await?,
            "sqlite" => run_sqlite().await?,
            other => anyhow::bail!("unknown backend {other} (postgres, sqlite)"),
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Sizes {
    tenants: usize,
    users: usize,
    seconds: u64,
    concurrency: usize,
}

impl Sizes {
    fn from_env() -> Self {
        Sizes {
            tenants: env_or("BENCH_TENANTS", 100),
            users: env_or("BENCH_USERS", 10_000),
            seconds: env_or("BENCH_SECONDS", 10),
            concurrency: env_or("BENCH_CONCURRENCY", 32),
        }
    }
}

async fn run_postgres() -> anyhow::Result<()> {
    let sizes = Sizes::from_env();
    let Sizes { tenants, users, .. } = sizes;

    // A fresh database, migrated by the real binary.
    let (mut admin, name, db_url) = fresh_pg_database().await?;
    let binary = binary()?;
    migrate(&db_url)?;

    println!("seeding {tenants} tenants × {users} people on PostgreSQL …");
    let seed_started = Instant::now();
    let hash = password_hash()?;
    let mut owner = PgConnection::connect(&db_url).await?;
    let mut slugs = Vec::new();
    for t in 0..tenants {
        let slug = format!("bench-{t}");
        let tenant = Uuid::now_v7();
        let mut tx = owner.begin().await?;
        sqlx::query("insert into tenants (id, slug, name, created_at, updated_at) values ($1, $2, $2, now(), now())")
            .bind(tenant).bind(&slug).execute(&mut *tx).await?;
        sqlx::query(
            "insert into users (tenant_id, id, email, username, first_name, last_name, role, password_hash,
                                is_active, created_at, updated_at)
             select $1, gen_random_uuid(), 'user' || g || '@' || $2 || '.test', 'user' || g, 'First' || g, 'Last' || g,
                    case when g = 1 then 'administrator' else 'employee' end,
                    case when g = 1 then $3 else null end, true,
                    now() - (g || ' seconds')::interval, now()
               from generate_series(1, $4) g",
        )
        .bind(tenant).bind(&slug).bind(&hash).bind(users as i32).execute(&mut *tx).await?;
        tx.commit().await?;
        slugs.push((tenant, slug));
    }
    // Steady state: autovacuum would have set the visibility map by now.
    owner.execute("vacuum analyze").await?;
    println!("seeded in {:.1} s", seed_started.elapsed().as_secs_f64());

    let pool: PgPool = PgPoolOptions::new()
        .max_connections(sizes.concurrency as u32)
        .after_connect(|c, _| {
            Box::pin(async move { c.execute("set role trainflow_app").await.map(drop) })
        })
        .connect_lazy(&db_url)?;
    let ceiling = Ceiling::Postgres(pool.clone());
    measure("PostgreSQL", &binary, &db_url, &sizes, &slugs, ceiling).await?;
    pool.close().await;
    if std::env::var("BENCH_KEEP").is_err() {
        drop(owner);
        admin
            .execute(format!("drop database {name} with (force)").as_str())
            .await?;
    } else {
        println!("kept database {db_url}");
    }
    Ok(())
}

async fn run_sqlite() -> anyhow::Result<()> {
    let sizes = Sizes::from_env();
    let Sizes { tenants, users, .. } = sizes;
    let dir = std::env::temp_dir().join(format!("trainflow-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let db_url = format!("sqlite://{}", dir.join("bench.db").display());
    let binary = binary()?;
    migrate(&db_url)?;

    println!("seeding {tenants} tenants × {users} people on SQLite …");
    let seed_started = Instant::now();
    let hash = password_hash()?;
    let mut owner = SqliteConnection::connect(&db_url).await?;
    owner.execute("pragma journal_mode = wal").await?;
    owner.execute("pragma synchronous = normal").await?;
    let now = trainflow_kernel::now();
    let mut slugs = Vec::new();
    for t in 0..tenants {
        let slug = format!("bench-{t}");
        let tenant = Uuid::now_v7();
        let mut tx = owner.begin().await?;
        sqlx::query("insert into tenants (id, slug, name, created_at, updated_at) values ($1, $2, $2, $3, $3)")
            .bind(tenant).bind(&slug).bind(now).execute(&mut *tx).await?;
        let ids: Vec<usize> = (1..=users).collect();
        for chunk in ids.chunks(1000) {
            let mut qb = QueryBuilder::new(
                "insert into users (tenant_id, id, email, username, first_name, last_name, role,
                                    password_hash, is_active, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut row, &g| {
                row.push_bind(tenant)
                    .push_bind(Uuid::new_v4())
                    .push_bind(format!("user{g}@{slug}.test"))
                    .push_bind(format!("user{g}"))
                    .push_bind(format!("First{g}"))
                    .push_bind(format!("Last{g}"))
                    .push_bind(if g == 1 { "administrator" } else { "employee" })
                    .push_bind((g == 1).then(|| hash.clone()))
                    .push_bind(true)
                    .push_bind(now - Duration::from_secs(g as u64))
                    .push_bind(now);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        slugs.push((tenant, slug));
    }
    owner.execute("analyze").await?;
    drop(owner);
    println!("seeded in {:.1} s", seed_started.elapsed().as_secs_f64());

    let pool = SqlitePoolOptions::new()
        .max_connections(sizes.concurrency as u32)
        .connect_with(
            db_url
                .parse::<SqliteConnectOptions>()?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10)),
        )
        .await?;
    let ceiling = Ceiling::Sqlite(pool.clone());
    measure("SQLite", &binary, &db_url, &sizes, &slugs, ceiling).await?;
    pool.close().await;
    if std::env::var("BENCH_KEEP").is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("kept database {db_url}");
    }
    Ok(())
}

/// The ceiling's connection pool (the application role on PostgreSQL).
#[derive(Clone)]
enum Ceiling {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Starts the server on `db_url`, then measures the API, the portal page and the ceiling.
async fn measure(
    label: &str,
    binary: &PathBuf,
    db_url: &str,
    sizes: &Sizes,
    slugs: &[(Uuid, String)],
    ceiling: Ceiling,
) -> anyhow::Result<()> {
    let Sizes {
        tenants,
        users,
        seconds,
        concurrency,
    } = *sizes;
    // The server, as a separate process so its memory can be read.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary)
        .arg("serve")
        .env("TRAINFLOW_DATABASE_URL", db_url)
        .env("TRAINFLOW_BIND", format!("127.0.0.1:{port}"))
        .env(
            "TRAINFLOW_JWT_SECRET",
            "benchmark-secret-benchmark-secret-0123",
        )
        .env("TRAINFLOW_RATE_LIMIT_PER_IP", "1000000000")
        .env("TRAINFLOW_RATE_LIMIT_PER_TENANT", "1000000000")
        .env("TRAINFLOW_JOBS_ENABLED", "false")
        .env("TRAINFLOW_DB_MAX_CONNECTIONS", concurrency.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let _server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    for _ in 0..200 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tokens = Vec::new();
    for (_, slug) in slugs {
        let body: serde_json::Value = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&serde_json::json!({"tenant": slug, "email": format!("user1@{slug}.test"), "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(
            body["data"]["access_token"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("sign-in failed: {body}"))?
                .to_string(),
        );
    }
    let mut cookies = Vec::new();
    for (_, slug) in slugs {
        cookies.push(portal_sign_in(&http, &base, slug, &format!("user1@{slug}.test")).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = rss_kib(pid);

    // 1. API saturation: closed loop at `concurrency`.
    let tokens = Arc::new(tokens);
    let peak = Arc::new(AtomicU64::new(idle_kib));
    let sampling = Arc::new(AtomicBool::new(true));
    {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let api_rps = closed_loop(seconds, concurrency, {
        let (http, base, tokens) = (http.clone(), base.clone(), tokens.clone());
        move |i| {
            let (http, base, tokens) = (http.clone(), base.clone(), tokens.clone());
            async move {
                match http
                    .get(format!("{base}/api/v1/users?per_page=50"))
                    .bearer_auth(&tokens[i % tokens.len()])
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        }
    })
    .await;

    // 2. API latency at half the saturation rate (open loop; latency from the scheduled time).
    let rate = (api_rps / 2.0).max(1.0);
    let api = {
        let (http, base, tokens) = (http.clone(), base.clone(), tokens.clone());
        move |i: usize| {
            let (http, base, tokens) = (http.clone(), base.clone(), tokens.clone());
            async move {
                let r = http
                    .get(format!("{base}/api/v1/users?per_page=50"))
                    .bearer_auth(&tokens[i % tokens.len()])
                    .send()
                    .await;
                if let Ok(r) = r {
                    let _ = r.bytes().await;
                }
            }
        }
    };
    let mut latencies = open_loop(seconds, rate, api.clone()).await;

    // 3. The same list as a portal page (`/portal/users`, 20 people a page): saturation, then
    //    latency at half the API's saturation rate, so the two p99s compare at the same load.
    let cookies = Arc::new(cookies);
    let page = {
        let (http, base, cookies) = (http.clone(), base.clone(), cookies.clone());
        move |i: usize| {
            let (http, base, cookies) = (http.clone(), base.clone(), cookies.clone());
            async move {
                match http
                    .get(format!("{base}/portal/users"))
                    .header("cookie", &cookies[i % cookies.len()])
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        }
    };
    let page_rps = closed_loop(seconds, concurrency, page.clone()).await;
    // The two compared in one phase: requests alternate between the API and the page at the
    // same total rate as phase 2, so both see the same load and the same moments of the run
    // (a checkpoint or a burst of the load generator lands on both alike).
    let mixed = open_loop(seconds, rate, move |i| {
        let (page, api) = (page.clone(), api.clone());
        async move {
            if i % 2 == 0 {
                api(i / 2).await;
            } else {
                page(i / 2).await;
            }
        }
    })
    .await;
    let (mut mixed_api, mut page_latencies): (Vec<Duration>, Vec<Duration>) = (
        mixed.iter().step_by(2).copied().collect(),
        mixed.iter().skip(1).step_by(2).copied().collect(),
    );
    mixed_api.sort();
    page_latencies.sort();
    sampling.store(false, Ordering::Relaxed);
    let loaded_kib = peak.load(Ordering::Relaxed);
    latencies.sort();

    // 4. The ceiling: the same list SQL through sqlx, as the application role, same concurrency.
    // Exactly the statements the API issues for this request: the page, then the count.
    let filter = trainflow_identity::users::UserFilter::default();
    let sample = trainflow_identity::users::UserWhere::new(Uuid::nil(), &filter);
    let sqls = Arc::new((sample.page_sql(("u.created_at", false)), sample.count_sql()));
    let tenant_ids: Arc<Vec<Uuid>> = Arc::new(slugs.iter().map(|(t, _)| *t).collect());
    let ceiling_rps = closed_loop(seconds, concurrency, {
        let (ceiling, sqls, tenants) = (ceiling.clone(), sqls.clone(), tenant_ids.clone());
        move |i| {
            let (ceiling, sqls, tenants) = (ceiling.clone(), sqls.clone(), tenants.clone());
            async move {
                let tenant = tenants[i % tenants.len()];
                let outcome = match &ceiling {
                    Ceiling::Postgres(pool) => ceiling_pg(pool, &sqls, tenant).await,
                    Ceiling::Sqlite(pool) => ceiling_sqlite(pool, &sqls, tenant).await,
                };
                if let Err(e) = &outcome {
                    static SHOWN: AtomicBool = AtomicBool::new(false);
                    if !SHOWN.swap(true, Ordering::Relaxed) {
                        eprintln!("ceiling query failed: {e}");
                    }
                }
                outcome.is_ok()
            }
        }
    })
    .await;

    println!();
    println!("GET /api/v1/users?per_page=50 on {label}, {tenants} tenants × {users} people, {concurrency} concurrent, {seconds} s phases");
    println!("  API throughput (saturation)        {api_rps:>10.0} req/s");
    println!("  ceiling: same SQL through sqlx      {ceiling_rps:>10.0} req/s");
    println!(
        "  API / ceiling                       {:>10.2}",
        api_rps / ceiling_rps
    );
    println!(
        "  at {rate:.0} req/s (half saturation): p50 {:.2} ms, p99 {:.2} ms ({} requests)",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.len()
    );
    println!("GET /portal/users (the same people as a page, 20 a page), same server, same run");
    println!("  page throughput (saturation)        {page_rps:>10.0} req/s");
    let (api_p99, page_p99) = (
        percentile(&mixed_api, 0.99).as_secs_f64() * 1000.0,
        percentile(&page_latencies, 0.99).as_secs_f64() * 1000.0,
    );
    println!(
        "  API and page alternating at {rate:.0} req/s in all: API p50 {:.2} ms, p99 {api_p99:.2} ms | page p50 {:.2} ms, p99 {page_p99:.2} ms ({} each)",
        percentile(&mixed_api, 0.50).as_secs_f64() * 1000.0,
        percentile(&page_latencies, 0.50).as_secs_f64() * 1000.0,
        page_latencies.len()
    );
    println!(
        "  page p99 / API p99                  {:>10.2}",
        page_p99 / api_p99.max(0.001)
    );
    println!(
        "  server memory: idle {:.1} MiB, loaded (peak) {:.1} MiB",
        idle_kib as f64 / 1024.0,
        loaded_kib as f64 / 1024.0
    );

    drop(_server);
    Ok(())
}

/// The page and the count, as the API issues them, in the open transaction `tx`.
macro_rules! page_and_count {
    ($tx:expr, $sqls:expr, $tenant:expr) => {{
        sqlx::query(&$sqls.0)
            .bind($tenant)
            .bind(50i64)
            .bind(0i64)
            .fetch_all(&mut *$tx)
            .await?;
        let _: i64 = sqlx::query_scalar(&$sqls.1)
            .bind($tenant)
            .fetch_one(&mut *$tx)
            .await?;
    }};
}

async fn ceiling_pg(pool: &PgPool, sqls: &(String, String), tenant: Uuid) -> sqlx::Result<()> {
    let mut tx = pool
        .begin_with(format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{tenant}', true)"
        ))
        .await?;
    page_and_count!(tx, sqls, tenant);
    tx.commit().await
}

async fn ceiling_sqlite(
    pool: &SqlitePool,
    sqls: &(String, String),
    tenant: Uuid,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    page_and_count!(tx, sqls, tenant);
    tx.commit().await
}

/// Signs in through the portal's form (its double-submit CSRF cookie and token) and returns the
/// session cookie as a `Cookie` header value.
async fn portal_sign_in(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    email: &str,
) -> anyhow::Result<String> {
    fn cookie_of(r: &reqwest::Response) -> Option<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| !v.contains("Max-Age=0"))
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
    }
    let form = http.get(format!("{base}/portal/login")).send().await?;
    let login_cookie = cookie_of(&form).ok_or_else(|| anyhow::anyhow!("no sign-in cookie"))?;
    let html = form.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("no CSRF token on the sign-in page"))?
        .to_string();
    let signed = http
        .post(format!("{base}/portal/login"))
        .header("cookie", login_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("organisation", tenant),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        signed.status() == reqwest::StatusCode::SEE_OTHER,
        "portal sign-in answered {}",
        signed.status()
    );
    cookie_of(&signed).ok_or_else(|| anyhow::anyhow!("no session cookie"))
}

/// Runs `f` back to back from `concurrency` workers for `seconds`; returns successes per second.
async fn closed_loop<F, Fut>(seconds: u64, concurrency: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = bool> + Send,
{
    let ok = Arc::new(AtomicU64::new(0));
    // Warm up, then measure.
    let deadline = Instant::now() + Duration::from_secs(1);
    run_workers(
        deadline,
        concurrency,
        f.clone(),
        Arc::new(AtomicU64::new(0)),
    )
    .await;
    let started = Instant::now();
    run_workers(
        started + Duration::from_secs(seconds),
        concurrency,
        f,
        ok.clone(),
    )
    .await;
    ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn run_workers<F, Fut>(deadline: Instant, concurrency: usize, f: F, ok: Arc<AtomicU64>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = bool> + Send,
{
    let mut handles = Vec::new();
    for w in 0..concurrency {
        let (f, ok) = (f.clone(), ok.clone());
        handles.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                if f(i).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                i += concurrency;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// Sends at a fixed `rate` for `seconds`; returns each request's latency measured from the time
/// it was due (so a stalled server is not hidden by a stalled client).
async fn open_loop<F, Fut>(seconds: u64, rate: f64, f: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let total = (rate * seconds as f64) as usize;
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            f(i).await;
            due.elapsed()
        }));
    }
    let mut out = Vec::with_capacity(total);
    for h in handles {
        if let Ok(d) = h.await {
            out.push(d);
        }
    }
    out
}
