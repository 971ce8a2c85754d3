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
//! 90-day reminder horizon). Then it measures, in one run:
//!
//! 1. the raw SQL that selects the due certifications of every tenant in one statement, as the
//!    owner (the floor);
//! 2. the first scan's baseline: one set-based `insert … select` statement, as the owner, that
//!    writes the same reminder, notification, outbox and queue rows for every tenant (rolled
//!    back afterwards);
//! 3. the first scan of the day, through the application role and row-level security: each
//!    tenant in one transaction, a fixed number of statements per page of due certifications
//!    (reminders, notifications, outbox emails and the audit entry, written set-wise);
//! 4. the same scan again (nothing is due any more: the steady cost of a daily run);
//! 5. the repeat scan's baseline: the per-tenant read statements a scan with nothing to send
//!    needs, issued through sqlx as the application role.
//!
//! It prints each one's time per 100,000 certifications, its statements, and the ratios of the
//! first scan to (2) and of the repeat scan to (5).

use std::time::Instant;

use sqlx::{postgres::PgPoolOptions, Connection, Executor, PgConnection};
use trainflow_kernel::db::{Db, DbOptions, APP_ROLE};
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

    // The first scan's baseline: set-based `insert … select` statements, as the owner, that
    // write the same reminder, notification, outbox and queue rows the scan writes (the email
    // rendered from the same template by `replace`), for every tenant at once; rolled back, so
    // the scan below finds the same state.
    let template = trainflow_notifications::templates::built_in("certification_expiring")
        .ok_or_else(|| anyhow::anyhow!("no built-in template certification_expiring"))?;
    let offsets = trainflow_renewals::certs::DEFAULT_OFFSETS.to_vec();
    let mut baseline_tx = owner.begin().await?;
    let set_based = Instant::now();
    let written = sqlx::query(
        "with due as materialized (
            select c.tenant_id, c.id, c.user_id, t.name, c.expires_on, u.email, tn.name as organisation,
                   (c.expires_on - current_date) as days_left,
                   (select min(o) from unnest($1::int[]) o where o >= c.expires_on - current_date) as offset_days,
                   gen_random_uuid() as notification_id, gen_random_uuid() as message_id,
                   'https://trainflow.example/portal/certifications/' || c.id as link
              from certifications c
              join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
              join users u on u.tenant_id = c.tenant_id and u.id = c.user_id
              join tenants tn on tn.id = c.tenant_id
             where c.deleted_at is null and c.renewed_at is null
               and c.expires_on >= current_date and c.expires_on <= current_date + 90
               and u.is_active and u.deleted_at is null
         ), reminders as (
            insert into certification_reminders (tenant_id, certification_id, offset_days, sent_at)
            select tenant_id, id, offset_days, now() from due
         ), notified as (
            insert into notifications (tenant_id, id, user_id, kind, priority, title, body, link, created_at)
            select tenant_id, notification_id, user_id, 'renewal',
                   case when days_left <= 7 then 'high' else 'medium' end,
                   name || ' expires in ' || days_left || ' days',
                   'Your ' || name || ' expires on ' || expires_on || '. Request its renewal.',
                   '/portal/certifications/' || id, now()
              from due
         ), mailed as (
            insert into outbox (tenant_id, id, channel, recipient, subject, text_body, html_body, status, created_at)
            select tenant_id, message_id, 'email', email,
                   replace(replace($2, '{{certification}}', name), '{{days}}', days_left::text),
                   replace(replace(replace(replace($3, '{{certification}}', name), '{{days}}', days_left::text),
                           '{{expires_on}}', expires_on::text), '{{link}}', link),
                   replace(replace(replace(replace(replace($4, '{{certification}}', name), '{{days}}', days_left::text),
                           '{{expires_on}}', expires_on::text), '{{link}}', link), '{{organisation}}', organisation),
                   'pending', now()
              from due
         )
         insert into delivery_queue (id, tenant_id, next_attempt_at)
         select message_id, tenant_id, now() from due",
    )
    .bind(&offsets)
    .bind(&template.subject)
    .bind(&template.text)
    .bind(&template.html)
    .execute(&mut *baseline_tx)
    .await?
    .rows_affected();
    let set_based_time = set_based.elapsed();
    baseline_tx.rollback().await?;
    owner.execute("vacuum analyze").await?;
    anyhow::ensure!(
        written as usize == due.len(),
        "the set-based baseline wrote {written} messages for {} due certifications",
        due.len()
    );

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

    // The repeat scan's baseline: the statements a scan with nothing to send needs — per
    // tenant its transaction bound to the tenant, the tenant's settings and the due
    // certifications — issued through sqlx as the application role, under row-level security.
    let app = PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(format!("SET ROLE {APP_ROLE}").as_str())
                    .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    let tenant_ids: Vec<Uuid> = sqlx::query_scalar("select id from tenants order by id")
        .fetch_all(&app)
        .await?;
    let reads = Instant::now();
    let mut read_statements = 1u64;
    let mut read_rows = 0usize;
    for tenant in &tenant_ids {
        let mut tx = app
            .begin_with(format!(
                "BEGIN; SELECT set_config('app.tenant_id', '{tenant}', true)"
            ))
            .await?;
        let (_tz, _settings): (String, serde_json::Value) =
            sqlx::query_as("select time_zone, settings from directory_tenants where id = $1")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?;
        let rows: Vec<(Uuid, Uuid, String, time::Date, Option<i32>)> = sqlx::query_as(
            "select c.id, c.user_id, t.name, c.expires_on,
                    (select min(r.offset_days) from certification_reminders r
                      where r.tenant_id = c.tenant_id and r.certification_id = c.id) as last_offset
               from certifications c
               join certification_types t on t.tenant_id = c.tenant_id and t.id = c.type_id
               join directory_people u on u.tenant_id = c.tenant_id and u.id = c.user_id
              where c.tenant_id = $1 and c.deleted_at is null and c.renewed_at is null
                and c.expires_on >= current_date and c.expires_on <= current_date + 90
                and u.is_active = true and u.deleted_at is null",
        )
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        read_rows += rows.len();
        tx.commit().await?;
        read_statements += 4;
    }
    let reads_time = reads.elapsed();

    let per_100k = |d: std::time::Duration| d.as_secs_f64() * 100_000.0 / total as f64;
    let ratio = |a: std::time::Duration, b: std::time::Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "raw SQL scan           {:>8.3} s per 100k certifications, 1 statement, {} due",
        per_100k(raw_time),
        due.len()
    );
    println!(
        "set-based writes       {:>8.3} s per 100k certifications, 1 statement, {written} reminders written",
        per_100k(set_based_time),
    );
    println!(
        "first daily scan       {:>8.3} s per 100k certifications, {} statements, {} reminders sent \
         ({:.2}x the set-based writes, {:.1}x the raw scan)",
        per_100k(first_time),
        sent.queries,
        sent.reminded,
        ratio(first_time, set_based_time),
        ratio(first_time, raw_time)
    );
    println!(
        "per-tenant reads       {:>8.3} s per 100k certifications, {read_statements} statements, {read_rows} rows",
        per_100k(reads_time),
    );
    println!(
        "repeat scan            {:>8.3} s per 100k certifications, {} statements, {} reminders sent \
         ({:.2}x the per-tenant reads, {:.1}x the raw scan)",
        per_100k(again_time),
        steady.queries,
        steady.reminded,
        ratio(again_time, reads_time),
        ratio(again_time, raw_time)
    );
    anyhow::ensure!(
        sent.reminded as usize == due.len(),
        "the scan sent {} reminders for {} due certifications",
        sent.reminded,
        due.len()
    );
    anyhow::ensure!(steady.reminded == 0, "a repeat scan sent reminders again");

    drop(owner);
    app.close().await;
    if std::env::var("BENCH_KEEP").is_err() {
        admin
            .execute(format!("drop database {name} with (force)").as_str())
            .await?;
    } else {
        println!("kept database {name}");
    }
    Ok(())
}
