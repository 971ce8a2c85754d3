//! Benchmark: end-to-end import of 1,000,000 employee rows from a CSV file — upload, parsing
//! inside the sandboxed CSV connector, upserts of people and their links page by page — on
//! PostgreSQL and on SQLite, beside the same rows loaded into the same `users` table by the
//! fastest plain path of each database in the same run: `COPY` on PostgreSQL, batched
//! multi-row inserts in one transaction on SQLite.
//!
//! ```text
//! cargo build --release -p trainflow-server -p trainflow-tests
//! target/release/bench-import            # or: cargo run --release -p trainflow-tests --bin bench-import
//! ```
//! Options (environment): `BENCH_ROWS` (1000000), `BENCH_BACKENDS` (`postgres,sqlite`),
//! `BENCH_PG_URL` (default postgres://postgres@127.0.0.1:5432/postgres), `BENCH_KEEP=1` to keep
//! the databases, `BENCH_SERVER_LOG=info` to see the server's log of the run.
//!
//! Prints, per backend: rows/s of the import (upload + run), of the baseline, and their ratio.
//! The import writes more than the baseline: besides each person it records the link from the
//! source's external id (`connector_links`), the cursor, the run's counters and an audit entry
//! per page, all in the page's transaction.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sqlx::{Connection, Executor, PgConnection, QueryBuilder, SqliteConnection};
use uuid::Uuid;

#[path = "common.rs"]
mod common;

use common::{binary, env_or, fresh_pg_database, migrate, password_hash, PASSWORD};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn csv(rows: usize) -> Vec<u8> {
    let mut out = String::with_capacity(rows * 70);
    out.push_str("Employee ID,First name,Surname,Email,Number\n");
    for i in 0..rows {
        out.push_str(&format!(
            "E{i:07},First{i},Last{i},person{i}@import.example.com,N{i:07}\n"
        ));
    }
    out.into_bytes()
}

/// The statements that create the benchmark's two tenants, each with an administrator.
const SEED: &[&str] = &[
    "insert into tenants (id, slug, name, created_at, updated_at) values ($1, $2, $2, $4, $4)",
    "insert into users (tenant_id, id, email, username, first_name, last_name, role, password_hash,
                        is_active, created_at, updated_at)
     values ($1, $5, 'admin@' || $2 || '.test', 'admin', 'Ada', 'Admin', 'administrator', $3, true, $4, $4)",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = env_or("BENCH_ROWS", 1_000_000);
    let backends: String = env_or("BENCH_BACKENDS", "postgres,sqlite".to_string());
    let file = csv(rows);
    println!(
        "{rows} rows, {:.1} MiB of CSV",
        file.len() as f64 / (1024.0 * 1024.0)
    );
    let hash = password_hash()?;
    for backend in backends.split(',').map(str::trim) {
        match backend {
            "postgres" => postgres(rows, &file, &hash).await?,
            "sqlite" => sqlite(rows, &file, &hash).await?,
            other => anyhow::bail!("unknown backend {other}"),
        }
    }
    Ok(())
}

async fn postgres(rows: usize, file: &[u8], hash: &str) -> anyhow::Result<()> {
    let (mut admin, name, url) = fresh_pg_database().await?;
    migrate(&url)?;
    let mut owner = PgConnection::connect(&url).await?;
    let (import_tenant, copy_tenant) = (Uuid::now_v7(), Uuid::now_v7());
    for (tenant, slug) in [(import_tenant, "import"), (copy_tenant, "copy")] {
        for statement in SEED {
            sqlx::query(statement)
                .bind(tenant)
                .bind(slug)
                .bind(hash)
                .bind(trainflow_kernel::now())
                .bind(Uuid::now_v7())
                .execute(&mut owner)
                .await?;
        }
    }

    // Baseline: COPY the same people into the same table.
    let started = Instant::now();
    let now = "2026-11-22 00:00:00+00";
    let mut data = String::with_capacity(rows * 160);
    for i in 0..rows {
        data.push_str(&format!(
            "{copy_tenant}\t{}\tperson{i}@import.example.com\tperson{i}@import.example.com\tFirst{i}\tLast{i}\tN{i:07}\temployee\tt\tE{i:07}\t{now}\t{now}\n",
            Uuid::now_v7()
        ));
    }
    let mut copy = owner
        .copy_in_raw(
            "copy users (tenant_id, id, email, username, first_name, last_name, employee_number,
                         role, is_active, external_id, created_at, updated_at) from stdin",
        )
        .await?;
    copy.send(data.into_bytes()).await?;
    copy.finish().await?;
    let copy_secs = started.elapsed().as_secs_f64();
    owner.execute("analyze").await?;

    let import_secs = import_through_api(&url, "import", file, rows).await?;
    report("PostgreSQL", rows, import_secs, "COPY", copy_secs);
    if std::env::var("BENCH_KEEP").is_err() {
        drop(owner);
        admin
            .execute(format!("drop database {name} with (force)").as_str())
            .await?;
    }
    Ok(())
}

async fn sqlite(rows: usize, file: &[u8], hash: &str) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("trainflow-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    migrate(&url)?;
    let mut owner = SqliteConnection::connect(&url).await?;
    owner.execute("pragma journal_mode = wal").await?;
    owner.execute("pragma synchronous = normal").await?;
    let (import_tenant, batch_tenant) = (Uuid::now_v7(), Uuid::now_v7());
    for (tenant, slug) in [(import_tenant, "import"), (batch_tenant, "batch")] {
        for statement in SEED {
            sqlx::query(statement)
                .bind(tenant)
                .bind(slug)
                .bind(hash)
                .bind(trainflow_kernel::now())
                .bind(Uuid::now_v7())
                .execute(&mut owner)
                .await?;
        }
    }

    // Baseline: multi-row inserts of 1,000 in one transaction, into the same table.
    let started = Instant::now();
    let now = trainflow_kernel::now();
    let mut tx = owner.begin().await?;
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
        let mut qb = QueryBuilder::new(
            "insert into users (tenant_id, id, email, username, first_name, last_name, employee_number,
                                role, is_active, external_id, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut row, i| {
            let email = format!("person{i}@import.example.com");
            row.push_bind(batch_tenant)
                .push_bind(Uuid::now_v7())
                .push_bind(email.clone())
                .push_bind(email)
                .push_bind(format!("First{i}"))
                .push_bind(format!("Last{i}"))
                .push_bind(format!("N{i:07}"))
                .push_bind("employee")
                .push_bind(true)
                .push_bind(format!("E{i:07}"))
                .push_bind(now)
                .push_bind(now);
        });
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let batch_secs = started.elapsed().as_secs_f64();
    drop(owner);

    let import_secs = import_through_api(&url, "import", file, rows).await?;
    report("SQLite", rows, import_secs, "batched inserts", batch_secs);
    if std::env::var("BENCH_KEEP").is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn report(backend: &str, rows: usize, import_secs: f64, baseline: &str, baseline_secs: f64) {
    let import = rows as f64 / import_secs;
    let base = rows as f64 / baseline_secs;
    println!(
        "{backend:<10} import {import:>9.0} rows/s ({import_secs:.1} s) | {baseline} {base:>9.0} rows/s ({baseline_secs:.1} s) | ratio {:.2}",
        import / base
    );
}

/// Starts the server on `url`, signs in, installs the CSV connector, uploads the file and runs
/// it to the end; returns the seconds from the start of the upload to the end of the run.
async fn import_through_api(
    url: &str,
    slug: &str,
    file: &[u8],
    rows: usize,
) -> anyhow::Result<f64> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary()?)
        .arg("serve")
        .env("TRAINFLOW_DATABASE_URL", url)
        .env("TRAINFLOW_BIND", format!("127.0.0.1:{port}"))
        .env(
            "TRAINFLOW_JWT_SECRET",
            "benchmark-secret-benchmark-secret-0123",
        )
        .env("TRAINFLOW_RATE_LIMIT_PER_IP", "1000000000")
        .env("TRAINFLOW_JOBS_ENABLED", "false")
        .env("TRAINFLOW_AUTO_MIGRATE", "false")
        // BENCH_SERVER_LOG=info shows the server's own account of the run.
        .env("RUST_LOG", env_or("BENCH_SERVER_LOG", "warn".to_string()))
        .env("TRAINFLOW_LOG_FORMAT", "pretty")
        .stdout(Stdio::null())
        .stderr(if std::env::var("BENCH_SERVER_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()?;
    let _server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/token"))
        .json(&serde_json::json!({"tenant": slug, "email": format!("admin@{slug}.test"), "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = body["data"]["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("sign-in failed: {body}"))?
        .to_string();
    let body: serde_json::Value = http
        .post(format!("{base}/api/v1/connectors/installations"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"connector_id": "com.trainflow.csv", "name": "Benchmark", "config":
            {"entity": "employee", "columns": {"external_id": "Employee ID", "first_name": "First name",
             "last_name": "Surname", "email": "Email", "employee_number": "Number"}}}))
        .send()
        .await?
        .json()
        .await?;
    let installation = body["data"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("install failed: {body}"))?
        .to_string();

    let started = Instant::now();
    let resp = http
        .post(format!(
            "{base}/api/v1/connectors/installations/{installation}/files?filename=people.csv"
        ))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(file.to_vec())
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "upload failed: {}",
        resp.text().await?
    );
    let body: serde_json::Value = http
        .post(format!(
            "{base}/api/v1/connectors/installations/{installation}/runs"
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await?
        .json()
        .await?;
    let run = body["data"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("run failed to start: {body}"))?
        .to_string();
    let finished = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body: serde_json::Value = http
            .get(format!("{base}/api/v1/connectors/runs/{run}"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        if body["data"]["status"] != "running" {
            break body["data"].clone();
        }
    };
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        finished["status"] == "succeeded" && finished["created"].as_u64() == Some(rows as u64),
        "the import did not create every row: {finished}"
    );
    println!(
        "  run: {} pages, {} instructions, peak connector memory {:.1} MiB, run {:.1} s",
        finished["pages"],
        finished["instructions"],
        finished["peak_memory_bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0),
        finished["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
    );
    Ok(secs)
}
