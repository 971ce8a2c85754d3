//! Benchmark: learning through the API beside the same statements issued directly (the ceiling)
//! in the same run, on PostgreSQL and on SQLite:
//!
//! * progress recording — `POST /api/v1/enrolments/{id}/progress` by 32 concurrent people, each
//!   on their own enrolment, beside the upsert of the lesson's progress and the update of the
//!   enrolment issued through sqlx in one transaction each, at the same concurrency;
//! * catalogue search — `GET /api/v1/courses?q=…` over 10,000 courses beside the page and count
//!   queries the catalogue runs, at the same concurrency;
//! * live updates — the time from a progress write to its arrival at each of 1,000 subscribed
//!   portal streams (`/portal/learning/live`, a training officer's), beside a bare fan-out of
//!   the same events through a tokio broadcast channel to 1,000 streams of the same HTTP stack.
//!
//! ```text
//! cargo build --release -p trainflow-server -p trainflow-tests
//! target/release/bench-learning
//! ```
//! Options (environment): `BENCH_BACKENDS` (`postgres,sqlite`), `BENCH_PG_URL`,
//! `BENCH_COURSES` (10000), `BENCH_SECONDS` (10 per phase), `BENCH_CONCURRENCY` (32),
//! `BENCH_STREAMS` (1000), `BENCH_EVENTS` (50, at most 100).

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use sqlx::{
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Connection, Executor, PgConnection, PgPool, SqliteConnection, SqlitePool,
};
use uuid::Uuid;

#[path = "common.rs"]
mod common;
#[path = "live.rs"]
mod live;

use common::{binary, env_or, fresh_pg_database, migrate, password_hash, PASSWORD};

/// Lessons of the course progress is recorded on.
const LESSONS: usize = 100;
/// Words course titles are made of; the search looks for one of them.
const WORDS: [&str; 10] = [
    "safety",
    "track",
    "signal",
    "welding",
    "inspection",
    "lifting",
    "electrical",
    "first-aid",
    "driving",
    "leadership",
];
const SEARCH: &str = "inspection";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let backends: String = env_or("BENCH_BACKENDS", "postgres,sqlite".to_string());
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        match backend {
            "postgres" => {
                let (mut admin, name, url) = fresh_pg_database().await?;
                migrate(&url)?;
                let tenant = seed_people(&url).await?;
                let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
                let pool = PgPoolOptions::new()
                    .max_connections(concurrency as u32)
                    .after_connect(|c, _| {
                        Box::pin(async move { c.execute("set role trainflow_app").await.map(drop) })
                    })
                    .connect_lazy(&url)?;
                run("PostgreSQL", &url, tenant, Pool::Postgres(pool.clone())).await?;
                pool.close().await;
                admin
                    .execute(format!("drop database {name} with (force)").as_str())
                    .await?;
            }
            "sqlite" => {
                let dir = std::env::temp_dir()
                    .join(format!("trainflow-bench-{}", Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir)?;
                let url = format!("sqlite://{}", dir.join("bench.db").display());
                migrate(&url)?;
                let tenant = seed_people(&url).await?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(env_or("BENCH_CONCURRENCY", 32u32))
                    .connect_with(
                        url.parse::<SqliteConnectOptions>()?
                            .journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal)
                            .busy_timeout(Duration::from_secs(10)),
                    )
                    .await?;
                run("SQLite", &url, tenant, Pool::Sqlite(pool.clone())).await?;
                pool.close().await;
                let _ = std::fs::remove_dir_all(&dir);
            }
            other => anyhow::bail!("unknown backend {other} (postgres, sqlite)"),
        }
    }
    Ok(())
}

/// A tenant `bench` with a training officer and `BENCH_CONCURRENCY` employees, all signing in
/// with [`PASSWORD`]: the tenant's id.
async fn seed_people(url: &str) -> anyhow::Result<Uuid> {
    let people: usize = env_or("BENCH_CONCURRENCY", 32);
    let hash = password_hash()?;
    let tenant = Uuid::now_v7();
    let now = trainflow_kernel::now();
    macro_rules! seed {
        ($conn:expr) => {{
            let mut tx = $conn.begin().await?;
            sqlx::query("insert into tenants (id, slug, name, created_at, updated_at) values ($1, 'bench', 'Bench', $2, $2)")
                .bind(tenant).bind(now).execute(&mut *tx).await?;
            for i in 0..=people {
                let role = if i == 0 { "training_officer" } else { "employee" };
                sqlx::query(
                    "insert into users (tenant_id, id, email, username, first_name, last_name, role,
                                        password_hash, is_active, created_at, updated_at)
                     values ($1, $2, $3, $4, 'Bench', $4, $5, $6, true, $7, $7)")
                    .bind(tenant).bind(Uuid::now_v7()).bind(format!("person{i}@bench.test"))
                    .bind(format!("person{i}")).bind(role).bind(&hash).bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }};
    }
    if url.starts_with("postgres") {
        let mut c = PgConnection::connect(url).await?;
        seed!(c);
    } else {
        let mut c = SqliteConnection::connect(url).await?;
        seed!(c);
    }
    Ok(tenant)
}

async fn sign_in(http: &reqwest::Client, base: &str, who: usize) -> anyhow::Result<String> {
    let body: Value = http
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"tenant": "bench", "email": format!("person{who}@bench.test"), "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["data"]["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("sign-in failed: {body}"))?
        .to_string())
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let request = http.post(url).bearer_auth(token);
    let request = if body.is_null() {
        request
    } else {
        request.json(&body)
    };
    let resp = request.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body["data"].clone())
}

async fn run(label: &str, url: &str, tenant: Uuid, pool: Pool) -> anyhow::Result<()> {
    let courses: usize = env_or("BENCH_COURSES", 10_000);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _server = Server(
        Command::new(binary()?)
            .arg("serve")
            .env("TRAINFLOW_DATABASE_URL", url)
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
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()?;
    for _ in 0..200 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let officer = sign_in(&http, &base, 0).await?;

    // The catalogue: `courses` courses through the API, then the one progress is recorded on.
    println!("{label}: adding {courses} courses …");
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut adders = Vec::new();
    for _ in 0..8 {
        let (http, base, officer, next) =
            (http.clone(), base.clone(), officer.clone(), next.clone());
        adders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= courses {
                    return Ok::<(), anyhow::Error>(());
                }
                let title = format!("{} {} {i}", WORDS[i % WORDS.len()], WORDS[(i / 10) % WORDS.len()]);
                post(&http, format!("{base}/api/v1/courses"), &officer,
                     json!({"code": format!("C{i:05}"), "title": title, "category": WORDS[i % 7], "status": "published"}))
                    .await?;
            }
        }));
    }
    for a in adders {
        a.await??;
    }
    println!("  added in {:.1} s", started.elapsed().as_secs_f64());
    let course = post(
        &http,
        format!("{base}/api/v1/courses"),
        &officer,
        json!({"code": "PROGRESS", "title": "Progress course", "status": "published"}),
    )
    .await?;
    let course = course["id"].as_str().unwrap_or_default().to_string();
    let module = post(
        &http,
        format!("{base}/api/v1/courses/{course}/modules"),
        &officer,
        json!({"title": "Module"}),
    )
    .await?;
    let module = module["id"].as_str().unwrap_or_default().to_string();
    let mut lessons = Vec::new();
    for l in 0..LESSONS {
        let lesson = post(
            &http,
            format!("{base}/api/v1/modules/{module}/lessons"),
            &officer,
            json!({"title": format!("Lesson {l}"), "body": "Text"}),
        )
        .await?;
        lessons.push(lesson["id"].as_str().unwrap_or_default().parse::<Uuid>()?);
    }
    let mut people = Vec::new();
    for p in 1..=concurrency {
        let token = sign_in(&http, &base, p).await?;
        let e = post(
            &http,
            format!("{base}/api/v1/courses/{course}/enrol"),
            &token,
            json!(null),
        )
        .await?;
        people.push((token, e["id"].as_str().unwrap_or_default().parse::<Uuid>()?));
    }
    if let Pool::Postgres(p) = &pool {
        p.execute("analyze").await?;
    } else if let Pool::Sqlite(p) = &pool {
        p.execute("analyze").await?;
    }

    // 1. Progress recording.
    let (people, lessons) = (Arc::new(people), Arc::new(lessons));
    let api = closed_loop(seconds, concurrency, {
        let (http, base, people, lessons) =
            (http.clone(), base.clone(), people.clone(), lessons.clone());
        move |worker, i| {
            let (http, base, people, lessons) =
                (http.clone(), base.clone(), people.clone(), lessons.clone());
            async move {
                let (token, enrolment) = &people[worker];
                let body = json!({"lesson_id": lessons[i % LESSONS], "seconds_spent": 5});
                matches!(http.post(format!("{base}/api/v1/enrolments/{enrolment}/progress"))
                    .bearer_auth(token).json(&body).send().await,
                    Ok(r) if r.status().is_success())
            }
        }
    })
    .await;
    let ceiling = closed_loop(seconds, concurrency, {
        let (pool, people, lessons) = (pool.clone(), people.clone(), lessons.clone());
        move |worker, i| {
            let (pool, people, lessons) = (pool.clone(), people.clone(), lessons.clone());
            async move {
                let enrolment = people[worker].1;
                progress_statements(&pool, tenant, enrolment, lessons[i % LESSONS])
                    .await
                    .is_ok()
            }
        }
    })
    .await;
    println!(
        "{label} progress: API {:.0} reports/s, the same statements through sqlx {:.0}/s; ratio {:.2} (target ≥ 0.5)",
        api.rate, ceiling.rate, api.rate / ceiling.rate
    );

    // 2. Catalogue search.
    let reader = people[0].0.clone();
    let api = closed_loop(seconds, concurrency, {
        let (http, base) = (http.clone(), base.clone());
        move |_, _| {
            let (http, base, reader) = (http.clone(), base.clone(), reader.clone());
            async move {
                match http
                    .get(format!("{base}/api/v1/courses?q={SEARCH}&per_page=20"))
                    .bearer_auth(&reader)
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
    let ceiling = closed_loop(seconds, concurrency, {
        let pool = pool.clone();
        move |_, _| {
            let pool = pool.clone();
            async move { search_statements(&pool, tenant).await.is_ok() }
        }
    })
    .await;
    println!(
        "{label} search over {courses} courses: API {:.0}/s (p50 {:.2} ms), the catalogue's queries through sqlx {:.0}/s (p50 {:.2} ms); time ratio {:.2} (target ≤ 1.5)",
        api.rate, api.p50_ms, ceiling.rate, ceiling.p50_ms, ceiling.rate / api.rate
    );

    // 3. Live updates: a training officer's portal streams see everyone's progress.
    let streams: usize = env_or("BENCH_STREAMS", 1000);
    let events: usize = env_or("BENCH_EVENTS", 50usize).min(LESSONS);
    let portal = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    portal_sign_in(&portal, &base, 0).await?;
    let arrivals =
        live::open_streams(&portal, &format!("{base}/portal/learning/live"), streams).await?;
    let (token, enrolment) = people[0].clone();
    let product = live::measure(streams, events, arrivals, |i| {
        let (http, base, token, lesson) = (http.clone(), base.clone(), token.clone(), lessons[i]);
        async move {
            let started = Instant::now();
            post(
                &http,
                format!("{base}/api/v1/enrolments/{enrolment}/progress"),
                &token,
                json!({"lesson_id": lesson, "seconds_spent": 5}),
            )
            .await?;
            Ok((lesson.to_string(), started))
        }
    })
    .await?;
    let bare = live::bare_fanout(streams, events).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label} live updates to {streams} streams, {events} writes: the product {product}\n  \
         bare broadcast fan-out, same HTTP stack: {bare}\n  \
         ratio (all streams) p50 {:.2}, p99 {:.2} (target ≤ 2, and p99 < 250 ms: {:.1} ms)",
        ms(product.all_p50) / ms(bare.all_p50).max(0.001),
        ms(product.all_p99) / ms(bare.all_p99).max(0.001),
        ms(product.all_p99)
    );
    Ok(())
}

/// Signs `client` (which keeps cookies) in to the portal as `person{who}`.
async fn portal_sign_in(client: &reqwest::Client, base: &str, who: usize) -> anyhow::Result<()> {
    let login = client
        .get(format!("{base}/portal/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = trainflow_tests::csrf_of(&login);
    let email = format!("person{who}@bench.test");
    let resp = client
        .post(format!("{base}/portal/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("organisation", "bench"),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        resp.status() == reqwest::StatusCode::SEE_OTHER,
        "portal sign-in: {}",
        resp.status()
    );
    Ok(())
}

/// What the use case writes for one report, as one transaction: the lesson's progress upserted,
/// the enrolment's percentage stored.
async fn progress_statements(
    pool: &Pool,
    tenant: Uuid,
    enrolment: Uuid,
    lesson: Uuid,
) -> sqlx::Result<()> {
    let now = trainflow_kernel::now();
    // The application's transaction: on PostgreSQL it binds the tenant for row-level security.
    macro_rules! run {
        ($p:expr, $bind:expr) => {{
            let mut tx = $p.begin().await?;
            if $bind {
                sqlx::query("select set_config('app.tenant_id', $1, true)")
                    .bind(tenant.to_string()).execute(&mut *tx).await?;
            }
            sqlx::query(
                "insert into lesson_progress (tenant_id, enrolment_id, lesson_id, started_at, completed_at,
                        seconds_spent, updated_at) values ($1, $2, $3, $4, null, 5, $4)
                 on conflict (tenant_id, enrolment_id, lesson_id) do update
                    set seconds_spent = lesson_progress.seconds_spent + excluded.seconds_spent,
                        updated_at = excluded.updated_at")
                .bind(tenant).bind(enrolment).bind(lesson).bind(now).execute(&mut *tx).await?;
            sqlx::query("update enrolments set progress_percent = 0, updated_at = $3 where tenant_id = $1 and id = $2")
                .bind(tenant).bind(enrolment).bind(now).execute(&mut *tx).await?;
            tx.commit().await
        }};
    }
    match pool {
        Pool::Postgres(p) => run!(p, true),
        Pool::Sqlite(p) => run!(p, false),
    }
}

/// The catalogue's page and count queries for the search, as the API's runs them.
async fn search_statements(pool: &Pool, tenant: Uuid) -> sqlx::Result<()> {
    let pattern = format!("%{SEARCH}%");
    let filter = "from courses c left join directory_departments d on d.tenant_id = c.tenant_id and d.id = c.department_id
         where c.tenant_id = $1 and c.deleted_at is null and c.status = 'published'
           and (lower(c.title) like $2 escape '\\' or lower(coalesce(c.code, '')) like $2 escape '\\'
                or lower(coalesce(c.category, '')) like $2 escape '\\' or lower(coalesce(c.description, '')) like $2 escape '\\')";
    let page = format!(
        "select c.id, c.code, c.title, c.category, c.difficulty, c.duration_hours, c.description, c.department_id,
                d.name as department_name, c.owner_id, c.status, c.self_enrol, c.created_by, c.created_at,
                c.updated_at, c.deleted_at {filter} order by lower(c.title), c.id limit 20 offset 0");
    let count = format!("select count(*) {filter}");
    macro_rules! run {
        ($p:expr, $bind:expr) => {{
            let mut tx = $p.begin().await?;
            if $bind {
                sqlx::query("select set_config('app.tenant_id', $1, true)")
                    .bind(tenant.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&page)
                .bind(tenant)
                .bind(&pattern)
                .fetch_all(&mut *tx)
                .await?;
            let _: i64 = sqlx::query_scalar(&count)
                .bind(tenant)
                .bind(&pattern)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await
        }};
    }
    match pool {
        Pool::Postgres(p) => run!(p, true),
        Pool::Sqlite(p) => run!(p, false),
    }
}

struct Measured {
    rate: f64,
    p50_ms: f64,
}

/// `concurrency` workers call `f(worker, i)` for one second of warm-up, then `seconds`: the
/// rate of successes and the median latency.
async fn closed_loop<F, Fut>(seconds: u64, concurrency: usize, f: F) -> Measured
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = bool> + Send,
{
    async fn workers<F, Fut>(until: Instant, concurrency: usize, f: F) -> (u64, Vec<Duration>)
    where
        F: Fn(usize, usize) -> Fut + Send + Sync + 'static + Clone,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let mut handles = Vec::new();
        for w in 0..concurrency {
            let f = f.clone();
            handles.push(tokio::spawn(async move {
                let (mut ok, mut times, mut i) = (0u64, Vec::new(), w);
                while Instant::now() < until {
                    let t = Instant::now();
                    if f(w, i).await {
                        ok += 1;
                        times.push(t.elapsed());
                    }
                    i += concurrency;
                }
                (ok, times)
            }));
        }
        let (mut ok, mut times) = (0, Vec::new());
        for h in handles {
            if let Ok((n, t)) = h.await {
                ok += n;
                times.extend(t);
            }
        }
        (ok, times)
    }
    workers(
        Instant::now() + Duration::from_secs(1),
        concurrency,
        f.clone(),
    )
    .await;
    let started = Instant::now();
    let (ok, mut times) = workers(started + Duration::from_secs(seconds), concurrency, f).await;
    times.sort();
    Measured {
        rate: ok as f64 / started.elapsed().as_secs_f64(),
        p50_ms: common::percentile(&times, 0.5).as_secs_f64() * 1000.0,
    }
}
