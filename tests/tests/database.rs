//! What the database itself guarantees: row-level security on PostgreSQL, cross-tenant
//! references refused by keys, the audit log append-only and tamper-evident, and jobs that run
//! once per occurrence.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use trainflow_jobs::Occurrence;
use trainflow_kernel::auth::Role;
use trainflow_tests::{Backend, TestApp, Which};
use uuid::Uuid;

#[tokio::test]
async fn on_postgres_a_query_that_forgets_its_tenant_filter_still_sees_only_its_tenant() {
    let app = TestApp::spawn().await;
    if app.backend != Backend::Postgres {
        eprintln!("row-level security is a PostgreSQL feature; on SQLite isolation rests on TenantTx (tested by the matrices)");
        return;
    }
    let mut c = PgConnection::connect(&app.owner_url).await.unwrap();
    c.execute("set role trainflow_app").await.unwrap();
    // The application role can neither bypass RLS nor owns anything.
    let (bypass, superuser): (bool, bool) = sqlx::query_as(
        "select rolbypassrls, rolsuper from pg_roles where rolname = 'trainflow_app'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(!bypass && !superuser);

    let mut tx = c.begin().await.unwrap();
    sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(app.a.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let ids: Vec<Uuid> = sqlx::query_scalar("select distinct tenant_id from users")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        ids,
        vec![app.a.id],
        "no tenant filter in the query, yet only tenant A's rows"
    );
    let audit: Vec<Uuid> = sqlx::query_scalar("select distinct tenant_id from audit_log")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(audit, vec![app.a.id]);
    // Writing a row for another tenant is refused by the policy's WITH CHECK.
    let err = sqlx::query(
        "insert into departments (tenant_id, id, name, created_at, updated_at) values ($1, $2, 'Sneaky', now(), now())",
    )
    .bind(app.b.id)
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // With no tenant bound, tenant tables are empty.
    let n: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // Every table with a tenant_id has RLS enabled and forced.
    let mut owner = PgConnection::connect(&app.owner_url).await.unwrap();
    let unprotected: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind = 'r'
            and exists (select 1 from information_schema.columns k where k.table_name = c.relname and k.column_name = 'tenant_id')
            and not (c.relrowsecurity and c.relforcerowsecurity)",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert!(
        unprotected.is_empty(),
        "tables without forced RLS: {unprotected:?}"
    );
    let owned: i64 =
        sqlx::query_scalar("select count(*) from pg_tables where tableowner = 'trainflow_app'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(owned, 0);
}

#[tokio::test]
async fn the_directory_views_keep_tenant_isolation_and_are_read_only() {
    let app = TestApp::spawn().await;
    let views = [
        "directory_people",
        "directory_departments",
        "directory_tenants",
    ];
    match app.backend {
        Backend::Sqlite => {
            // SQLite views are read-only; isolation rests on TenantTx as for the tables.
            let err = owner_exec(
                &app,
                "update directory_people set first_name = 'X' where tenant_id = $1",
                &[app.a.id],
            )
            .await
            .expect("a view is not writable");
            assert!(err.contains("view"), "{err}");
        }
        Backend::Postgres => {
            let mut owner = PgConnection::connect(&app.owner_url).await.unwrap();
            for view in views {
                let options: Option<Vec<String>> = sqlx::query_scalar(
                    "select c.reloptions::text[] from pg_class c join pg_namespace n on n.oid = c.relnamespace
                      where n.nspname = 'public' and c.relkind = 'v' and c.relname = $1",
                )
                .bind(view)
                .fetch_one(&mut owner)
                .await
                .unwrap();
                assert!(
                    options
                        .unwrap_or_default()
                        .iter()
                        .any(|o| o == "security_invoker=true"),
                    "{view} must check row-level security for the caller"
                );
            }
            let mut c = PgConnection::connect(&app.owner_url).await.unwrap();
            c.execute("set role trainflow_app").await.unwrap();
            let mut tx = c.begin().await.unwrap();
            sqlx::query("select set_config('app.tenant_id', $1, true)")
                .bind(app.a.id.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            for view in ["directory_people", "directory_departments"] {
                let ids: Vec<Uuid> =
                    sqlx::query_scalar(&format!("select distinct tenant_id from {view}"))
                        .fetch_all(&mut *tx)
                        .await
                        .unwrap();
                assert_eq!(ids, vec![app.a.id], "{view}: only tenant A's rows");
            }
            tx.rollback().await.unwrap();
            // With no tenant bound, the people behind the view are invisible, as in the table.
            let n: i64 = sqlx::query_scalar("select count(*) from directory_people")
                .fetch_one(&mut c)
                .await
                .unwrap();
            assert_eq!(n, 0);
            // The application role cannot write through a view.
            for (view, sql) in [
                (
                    "directory_people",
                    "update directory_people set first_name = 'X'",
                ),
                ("directory_departments", "delete from directory_departments"),
                (
                    "directory_tenants",
                    "update directory_tenants set name = 'X'",
                ),
            ] {
                let err = c.execute(sql).await.expect_err(view).to_string();
                assert!(err.contains("permission denied"), "{view}: {err}");
            }
        }
    }
}

/// Runs `sql` as the schema owner on either backend; returns the error text, if any.
async fn owner_exec(app: &TestApp, sql: &str, binds: &[Uuid]) -> Option<String> {
    match app.backend {
        Backend::Sqlite => {
            let mut c = SqliteConnection::connect(&app.owner_url).await.unwrap();
            c.execute("pragma foreign_keys = on").await.unwrap();
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(&mut c).await.err().map(|e| e.to_string())
        }
        Backend::Postgres => {
            let mut c = PgConnection::connect(&app.owner_url).await.unwrap();
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(&mut c).await.err().map(|e| e.to_string())
        }
    }
}

#[tokio::test]
async fn keys_refuse_a_reference_to_another_tenants_row() {
    let app = TestApp::spawn().await;
    let err = owner_exec(
        &app,
        "insert into users (tenant_id, id, email, username, role, department_id, created_at, updated_at)
         values ($1, $2, 'x@y.test', 'x', 'employee', $3, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        &[app.a.id, Uuid::now_v7(), app.b.department],
    )
    .await;
    let err = err.expect("a user of A pointing at B's department is refused");
    assert!(err.to_lowercase().contains("foreign key"), "{err}");
}

#[tokio::test]
async fn the_audit_log_is_append_only_and_tampering_is_detected() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"email": "audited@example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let err = owner_exec(
        &app,
        "update audit_log set action = 'nothing' where tenant_id = $1",
        &[app.a.id],
    )
    .await;
    assert!(err.expect("updates are refused").contains("append-only"));
    let err = owner_exec(
        &app,
        "delete from audit_log where tenant_id = $1",
        &[app.a.id],
    )
    .await;
    assert!(err.expect("deletes are refused").contains("append-only"));
    if app.backend == Backend::Postgres {
        // The application role has no UPDATE privilege at all.
        let mut c = PgConnection::connect(&app.owner_url).await.unwrap();
        c.execute("set role trainflow_app").await.unwrap();
        let e = sqlx::query("update audit_log set action = 'x'")
            .execute(&mut c)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{e}");
    }
    let (_, v) = app
        .call(Method::GET, "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["data"]["intact"], true);

    // Someone with the owner's keys bypasses the trigger and edits history: the chain shows it.
    let tamper = "update audit_log set action = 'user.nothing' where tenant_id = $1 and action = 'user.create'
                  and after_state like '%audited@example.com%'";
    bypassing_audit_guards(&app, tamper, app.a.id).await;
    let (_, v) = app
        .call(Method::GET, "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["data"]["intact"], false, "{v}");
    assert!(v["data"]["first_broken_seq"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn concurrent_writes_keep_one_unbroken_audit_chain() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = app.clone();
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            app.call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({"email": format!("c{i}@example.com")})),
            )
            .await
            .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let (_, v) = app
        .call(Method::GET, "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["data"]["intact"], true, "{v}");
}

#[tokio::test]
async fn the_inactive_user_cleanup_deactivates_long_idle_people_but_not_administrators() {
    let app = TestApp::spawn().await;
    let idle = app.a.people[&Role::Trainer];
    let idle_admin = app.a.people[&Role::Administrator];
    let long_ago = "2020-01-01T00:00:00Z";
    for id in [idle, idle_admin] {
        let sql = format!("update users set last_active_at = '{long_ago}', created_at = '{long_ago}' where id = $1");
        assert_eq!(owner_exec(&app, &sql, &[id]).await, None);
    }
    let now = trainflow_kernel::now();
    let outcome =
        trainflow_identity::jobs::cleanup_inactive_users(&app.db, now, time::Duration::days(365))
            .await
            .unwrap();
    assert!(outcome.deactivated >= 1);
    let admin = app.token(Which::A, Role::Administrator).await;
    let (_, trainer) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{idle}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(trainer["data"]["is_active"], false);
    let (_, boss) = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{idle_admin}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        boss["data"]["is_active"], true,
        "administrators are never deactivated by the cleanup"
    );
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=user.deactivate_inactive",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit["data"][0]["object_id"], idle.to_string());
    assert_eq!(audit["data"][0]["actor_kind"], "system");
    // Running it again changes nothing more for this tenant.
    let again =
        trainflow_identity::jobs::cleanup_inactive_users(&app.db, now, time::Duration::days(365))
            .await
            .unwrap();
    let (_, audit2) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=user.deactivate_inactive",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit2["meta"]["total"], audit["meta"]["total"], "{again:?}");
}

#[tokio::test]
async fn each_job_occurrence_runs_once_however_many_instances_tick() {
    let app = TestApp::spawn().await;
    let scheduled_for = trainflow_jobs::minute_of(trainflow_kernel::now())
        + time::Duration::days(3650)
        + time::Duration::minutes(rand_minutes());
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let runner = app.runner.clone();
        tasks.push(tokio::spawn(async move {
            runner
                .run_occurrence(
                    "identity.cleanup_inactive_users",
                    scheduled_for,
                    trainflow_kernel::now(),
                )
                .await
                .unwrap()
        }));
    }
    let mut ran = 0;
    for t in tasks {
        if let Occurrence::Ran { succeeded, .. } = t.await.unwrap() {
            assert!(succeeded);
            ran += 1;
        }
    }
    assert_eq!(ran, 1, "exactly one instance claims an occurrence");
    let (s, jobs) = app.call(Method::GET, "/health/jobs", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let runs = jobs["jobs"][0]["recent_runs"].as_array().unwrap();
    assert!(runs.iter().any(|r| r["status"] == "succeeded"), "{jobs}");
}

fn rand_minutes() -> i64 {
    (Uuid::new_v4().as_u128() % 100_000) as i64
}

#[tokio::test]
async fn removing_the_newest_audit_entries_is_detected_too() {
    let app = TestApp::spawn().await;
    let admin = app.token(Which::A, Role::Administrator).await;
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"email": "last@example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let newest = "delete from audit_log where tenant_id = $1 and seq = (select max(seq) from audit_log where tenant_id = $1)";
    bypassing_audit_guards(&app, newest, app.a.id).await;
    let (_, v) = app
        .call(Method::GET, "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(
        v["data"]["intact"], false,
        "a chain whose head points past its last entry is broken: {v}"
    );
}

/// Runs `sql` (binding `tenant` as $1) as the owner with the audit log's triggers out of the way,
/// as someone holding the owner's keys could.
async fn bypassing_audit_guards(app: &TestApp, sql: &str, tenant: Uuid) {
    match app.backend {
        Backend::Sqlite => {
            let mut c = SqliteConnection::connect(&app.owner_url).await.unwrap();
            c.execute("drop trigger if exists audit_log_no_update")
                .await
                .unwrap();
            c.execute("drop trigger if exists audit_log_no_delete")
                .await
                .unwrap();
            sqlx::query(sql).bind(tenant).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = PgConnection::connect(&app.owner_url).await.unwrap();
            c.execute("set session_replication_role = replica")
                .await
                .unwrap();
            let sql = sql.replace("after_state like", "after_state::text like");
            sqlx::query(&sql)
                .bind(tenant)
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}
