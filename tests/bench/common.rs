//! What the benchmark programs share: options from the environment, the server binary beside
//! them, fresh databases, and the figures they print.
#![allow(dead_code)] // each benchmark uses its own subset

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// The password every benchmark administrator signs in with.
pub const PASSWORD: &str = "benchmark-password-2026";

/// The value of environment variable `name`, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `trainflow` binary in the same directory as the running benchmark.
pub fn binary() -> anyhow::Result<PathBuf> {
    let binary = std::env::current_exe()?
        .parent()
        .map(|p| p.join("trainflow"))
        .unwrap_or_else(|| PathBuf::from("trainflow"));
    anyhow::ensure!(
        binary.exists(),
        "build the server first: cargo build --release -p trainflow-server"
    );
    Ok(binary)
}

/// Migrates `url` with the real binary.
pub fn migrate(url: &str) -> anyhow::Result<()> {
    let status = Command::new(binary()?)
        .arg("migrate")
        .env("TRAINFLOW_DATABASE_URL", url)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "migrate failed");
    Ok(())
}

/// The PostgreSQL server from `BENCH_PG_URL` (default: the local one, as `postgres`).
pub fn pg_server_url() -> String {
    env_or(
        "BENCH_PG_URL",
        "postgres://postgres@127.0.0.1:5432/postgres".to_string(),
    )
}

/// A new, empty database on the PostgreSQL server: (a connection to the server for dropping it
/// afterwards, its name, its URL).
pub async fn fresh_pg_database() -> anyhow::Result<(PgConnection, String, String)> {
    let server_url = pg_server_url();
    let name = format!("trainflow_bench_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server_url).await?;
    admin
        .execute(format!("create database {name}").as_str())
        .await?;
    let (base, _) = server_url.rsplit_once('/').expect("URL with a database");
    let url = format!("{base}/{name}");
    Ok((admin, name, url))
}

/// An Argon2id hash of [`PASSWORD`] with the server's parameters.
pub fn password_hash() -> anyhow::Result<String> {
    use argon2::{
        password_hash::{rand_core::OsRng, PasswordHasher, SaltString},
        Algorithm, Argon2, Params, Version,
    };
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("params"),
    )
    .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .to_string())
}

/// The `p` quantile (0–1) of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
