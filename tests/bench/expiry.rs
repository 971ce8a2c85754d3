//! Benchmark: the daily certification expiry scan over 1,000,000 certifications across 1,000
//! tenants on PostgreSQL, beside the raw SQL scan of the same rows in the same run.
//!
//! ```text
//! cargo build --release -p trainflow-tests --bin bench-expiry
//! target/release/bench-expiry
//! ```
//! Options (environment): `BENCH_TENANTS` (1000), `BENCH_PER_TENANT` (1000 certifications),
//! `BENCH_PG_URL` (default postgres://postgres@127.0.0.1:5432/postgres), `BENCH_KEEP=1` to keep
//! the database.
//!
//! Seeds each tenant with 100 people, 10 certification types and its certifications, with
//! expiry dates spread evenly over the next two years (so about one in eight falls inside the
//! 90-day reminder horizon). Then it runs, through the application role and row-level security:
//!
//! 1. the first scan of the day (sends every due reminder: a reminder row, an in-app
//!    notification and an outbox email per certification, each tenant in one transaction);
//! 2. the same scan again (nothing is due any more: the steady cost of a daily run);
//!
//! and, as the owner, the raw SQL that selects the same due certifications of every tenant in
//! one statement. It prints the time per 100,000 certifications and the number of statements
//! of each, and the ratios.

use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection};
use trainflow_kernel::db::{Db, DbOptions};
use trainflow_renewals::Renewals;
use uuid::Uuid;

#[path = "common.rs"]
mod common;

use common::{env_or, fresh_pg_database};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tenants: i64 = env_or("BENCH_TENANTS", 1000);
    let per_tenant: i64 = env_or("BENCH_PER_TENANT", 1000);
    let total = tenants * per_tenant;
    let (mut admin, name, url) = fresh_pg_database().await?;
    Db::migrate(&url).await?;
    let mut owner = PgConnection::connect(&url).await?;

    let seeding = Instant::now();
    // Set-based seeding as the owner: tenants, people, types, certifications.
    owner
        .execute(
            format!(
                "insert into tenants (id, slug, name, created_at, updated_at)
                 select gen_random_uuid(), 'bench-' || g, 'Bench ' || g, now(), now()
                   from generate_series(1, {tenants}) g;
                 insert into users (tenant_id, id, email, username, first_name, last_name, role, is_active, created_at, updated_at)
                 select t.id, gen_random_uuid(), 'p' || g || '@' || t.slug || '.test', 'p' || g || '@' || t.slug || '.test',
                        'Person', g::text, 'employee', true, now(), now()
                   from tenants t cross join generate_series(1, 100) g;
                 insert into certification_types (tenant_id, id, code, name, validity_months, renewal_window_days, created_at, updated_at)
                 select t.id, gen_random_uuid(), 'T' || g, 'Type ' || g, 24, 90, now(), now()
                   from tenants t cross join generate_series(1, 10) g;
                 insert into certifications (tenant_id, id, user_id, type_id, issued_on, expires_on, source, created_at, updated_at)
                 select u.tenant_id, gen_random_uuid(), u.id, ct.id,
                        current_date - 365, current_date + ((row_number() over (partition by u.tenant_id order by u.id, ct.id)) * 730 / {per_tenant})::int,
                        'manual', now(), now()
                   from users u
                   join lateral (select id from certification_types c where c.tenant_id = u.tenant_id
                                  order by code limit greatest(1, {per_tenant} / 100)) ct on true;
                 analyze;"
            )
            .as_str(),
        )
        .await?;
    let seeded: i64 = sqlx::query_scalar("select count(*) from certifications")
        .fetch_one(&mut owner)
        .await?;
    println!(
        "{tenants} tenants, {seeded} certifications seeded in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    // The raw SQL baseline: every due certification of every tenant, in one statement.
    let raw = Instant::now();
    let due: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "select c.tenant_id, c.id, c.user_id
           from certifications c
           join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
           join users u on u.tenant_id = c.tenant_id and u.id = c.user_id
          where c.deleted_at is null and c.renewed_at is null
            and c.expires_on >= current_date and c.expires_on <= current_date + 90
            and u.is_active and u.deleted_at is null",
    )
    .fetch_all(&mut owner)
    .await?;
    let raw_time = raw.elapsed();

    let db = Db::connect(&DbOptions {
        url: url.clone(),
        max_connections: 4,
    })
    .await?;
    let renewals = Renewals::new(db, "https://trainflow.example", time::Duration::hours(72));
    let now = time::OffsetDateTime::now_utc();
    let first = Instant::now();
    let sent = renewals
        .expiry_reminders(now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let first_time = first.elapsed();
    let again = Instant::now();
    let steady = renewals
        .expiry_reminders(now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let again_time = again.elapsed();

    let per_100k = |d: std::time::Duration| d.as_secs_f64() * 100_000.0 / total as f64;
    println!(
        "raw SQL scan        {:>8.3} s per 100k certifications, 1 statement, {} due",
        per_100k(raw_time),
        due.len()
    );
    println!(
        "first daily scan    {:>8.3} s per 100k certifications, {} statements, {} reminders sent ({:.1}x the raw scan)",
        per_100k(first_time),
        sent.queries,
        sent.reminded,
        first_time.as_secs_f64() / raw_time.as_secs_f64()
    );
    println!(
        "repeat scan         {:>8.3} s per 100k certifications, {} statements, {} reminders sent ({:.1}x the raw scan)",
        per_100k(again_time),
        steady.queries,
        steady.reminded,
        again_time.as_secs_f64() / raw_time.as_secs_f64()
    );
    anyhow::ensure!(
        sent.reminded as usize == due.len(),
        "the scan sent {} reminders for {} due certifications",
        sent.reminded,
        due.len()
    );
    anyhow::ensure!(steady.reminded == 0, "a repeat scan sent reminders again");

    drop(owner);
    if std::env::var("BENCH_KEEP").is_err() {
        admin
            .execute(format!("drop database {name} with (force)").as_str())
            .await?;
    } else {
        println!("kept database {name}");
    }
    Ok(())
}
