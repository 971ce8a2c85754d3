//! Database access: one code path over SQLite and PostgreSQL, and the tenant-scoped
//! transaction through which all tenant data is reached.
//!
//! Queries are written once in the portable subset of SQL both backends accept and dispatched
//! with the [`sql!`](crate::sql) macro, which expands the same expression once per backend.
//!
//! On PostgreSQL every tenant transaction also sets `app.tenant_id` (transaction-local) so
//! row-level security filters every statement, even one that forgets its `tenant_id` clause.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Connection, Executor, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool,
    Transaction,
};

use crate::{
    auth::{Permission, Role, TenantCtx},
    ApiError, ApiResult, TenantId, UserId,
};

/// The PostgreSQL role the application runs as: owns nothing, cannot bypass row-level security.
pub const APP_ROLE: &str = "trainflow_app";

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: the zero-setup default, one instance.
    Sqlite,
    /// PostgreSQL: production, any number of instances.
    Postgres,
}

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite pool.
    Sqlite(SqlitePool),
    /// PostgreSQL pool (connected as [`APP_ROLE`]).
    Postgres(PgPool),
}

/// A borrowed connection of either backend; matched by [`sql!`](crate::sql).
pub enum Conn<'c> {
    /// SQLite connection.
    Sqlite(&'c mut SqliteConnection),
    /// PostgreSQL connection.
    Postgres(&'c mut PgConnection),
}

/// Runs the same sqlx expression on whichever backend `$conn` is.
///
/// ```ignore
/// let n: i64 = sql!(tx.conn() => |c| sqlx::query_scalar("select count(*) from users where tenant_id = $1")
///     .bind(tenant).fetch_one(&mut *c).await)?;
/// ```
#[macro_export]
macro_rules! sql {
    ($conn:expr => |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite($c) => $body,
            $crate::db::Conn::Postgres($c) => $body,
        }
    };
}

/// Connection settings for [`Db::connect`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite://file.db` or `postgres://user@host/db`.
    pub url: String,
    /// Maximum pool size.
    pub max_connections: u32,
}

impl Db {
    /// Opens a pool. On PostgreSQL every connection switches to [`APP_ROLE`], so row-level
    /// security applies even when the login role is the schema owner.
    pub async fn connect(opts: &DbOptions) -> anyhow::Result<Db> {
        if is_postgres(&opts.url) {
            let connect =
                PgConnectOptions::from_str(&opts.url).context("invalid PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(format!("SET ROLE {APP_ROLE}").as_str())
                            .await?;
                        Ok(())
                    })
                })
                .connect_with(connect)
                .await
                .context("connecting to PostgreSQL as the application role")?;
            Ok(Db::Postgres(pool))
        } else {
            let connect = sqlite_options(&opts.url)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await
                .context("opening the SQLite database")?;
            Ok(Db::Sqlite(pool))
        }
    }

    /// Applies the migrations of the backend at `url`, connected as the schema owner.
    pub async fn migrate(url: &str) -> anyhow::Result<()> {
        if is_postgres(url) {
            let mut conn = PgConnection::connect(url)
                .await
                .context("connecting to PostgreSQL as owner")?;
            sqlx::migrate!("../../migrations/postgres")
                .run(&mut conn)
                .await
                .context("applying PostgreSQL migrations")?;
            grant_app_role(&mut conn).await?;
        } else {
            // Foreign keys are not enforced while migrating, as SQLite prescribes for rebuilding
            // a table others refer to (the pragma is a no-op inside the transaction each
            // migration runs in); every reference is checked once they are applied.
            let mut conn =
                SqliteConnection::connect_with(&sqlite_options(url)?.foreign_keys(false))
                    .await
                    .context("opening SQLite")?;
            sqlx::migrate!("../../migrations/sqlite")
                .run(&mut conn)
                .await
                .context("applying SQLite migrations")?;
            let broken: Vec<(String, Option<i64>, String)> =
                sqlx::query_as("select \"table\", rowid, parent from pragma_foreign_key_check")
                    .fetch_all(&mut conn)
                    .await
                    .context("checking foreign keys after the migrations")?;
            if let Some((table, rowid, parent)) = broken.first() {
                anyhow::bail!(
                    "after the migrations, {} rows refer to missing rows (first: {table} row {rowid:?} → {parent})",
                    broken.len()
                );
            }
        }
        Ok(())
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// A transaction on the platform-wide tables (tenants, operators, job runs, throttles).
    /// Tenant tables are invisible through it on PostgreSQL.
    pub async fn platform_tx(&self) -> ApiResult<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Refreshes the planner's statistics of the tables an import grows (PostgreSQL; SQLite
    /// picks indexes without statistics). Autovacuum's thresholds lag behind a long import, and
    /// a plan made for a near-empty table applies key lookups as a filtered scan. The refresh
    /// runs as the schema owner through a function the migrations define.
    pub async fn refresh_import_statistics(&self) -> anyhow::Result<()> {
        if let Db::Postgres(p) = self {
            p.execute("select refresh_import_statistics()").await?;
        }
        Ok(())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(p) => p.execute("select 1").await.map(drop)?,
            Db::Postgres(p) => p.execute("select 1").await.map(drop)?,
        }
        Ok(())
    }

    /// Pool statistics for `/metrics`: (open connections, idle ones, the maximum).
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        match self {
            Db::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Db::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        }
    }

    async fn begin_for(&self, tenant: TenantId, write: bool) -> ApiResult<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(
                p.begin_with(if write { "BEGIN IMMEDIATE" } else { "BEGIN" })
                    .await?,
            ),
            // One round trip: open the transaction and bind the tenant for row-level security.
            // The id is a typed UUID, so formatting it into the statement is injection-safe.
            Db::Postgres(p) => Tx::Postgres(
                p.begin_with(format!(
                    "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
                    tenant.0
                ))
                .await?,
            ),
        })
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn sqlite_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)
        .context("invalid SQLite URL")?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10)))
}

/// Grants the application role what it needs and nothing more. Runs after every migration,
/// as the owner, so tables added later are covered.
async fn grant_app_role(conn: &mut PgConnection) -> anyhow::Result<()> {
    let statements = [
        format!(
            "DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS NOSUPERUSER; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
        format!("GRANT USAGE ON SCHEMA public TO {APP_ROLE}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}"
        ),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}"),
        // Views (the owners' read models for other contexts, e.g. `directory_people`) are
        // read-only: `ALL TABLES` above includes them, and a simple view is updatable.
        format!(
            "DO $$ DECLARE v text; BEGIN \
               FOR v IN SELECT viewname FROM pg_views WHERE schemaname = 'public' LOOP \
                 EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %I FROM {APP_ROLE}', v); \
               END LOOP; END $$"
        ),
        // The audit log is append-only for the application.
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE}"),
        format!("REVOKE ALL ON _sqlx_migrations FROM {APP_ROLE}"),
    ];
    for statement in statements {
        conn.execute(statement.as_str())
            .await
            .with_context(|| format!("running `{statement}`"))?;
    }
    Ok(())
}

/// A transaction of either backend.
pub enum Tx {
    /// SQLite transaction.
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL transaction.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// The connection to run statements on (see [`sql!`](crate::sql)).
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Postgres(t) => Conn::Postgres(t),
        }
    }

    /// Commits.
    pub async fn commit(self) -> ApiResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Rolls back.
    pub async fn rollback(self) -> ApiResult<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// The only way to reach tenant data: a transaction bound to one tenant.
///
/// Obtained from an authenticated [`TenantCtx`] through [`TenantTx::begin`] (which also checks
/// that the tenant is active, the user still active, and the user's *current* role holds the
/// permission), or — for work with no signed-in user — through the loudly named
/// [`TenantTx::begin_system`].
pub struct TenantTx {
    tenant: TenantId,
    actor: Option<UserId>,
    tx: Tx,
    /// A rehearsal is always rolled back (see [`TenantTx::begin_rehearsal`]).
    rehearsal: bool,
}

impl TenantTx {
    /// Opens a transaction for the signed-in user of `ctx`, after checking that the tenant is
    /// active, the user exists and is active, and their current role grants `permission`.
    /// Returns the transaction and the context with the role as stored now.
    pub async fn begin(
        db: &Db,
        ctx: &TenantCtx,
        permission: Permission,
    ) -> ApiResult<(TenantTx, TenantCtx)> {
        let write = permission.is_write();
        let mut tx = TenantTx {
            tenant: ctx.tenant_id,
            actor: Some(ctx.user_id),
            tx: db.begin_for(ctx.tenant_id, write).await?,
            rehearsal: false,
        };
        let row: Option<(String, Option<String>, Option<bool>)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select t.status, u.role, u.is_active and u.deleted_at is null
               from directory_tenants t
               left join directory_people u on u.tenant_id = t.id and u.id = $2
              where t.id = $1")
            .bind(ctx.tenant_id).bind(ctx.user_id).fetch_optional(&mut *c).await)?;
        let (status, role, active) =
            row.ok_or(ApiError::Unauthorized("tenant no longer exists"))?;
        if status != "active" {
            return Err(ApiError::Unauthorized("tenant is not active"));
        }
        if active != Some(true) {
            return Err(ApiError::Unauthorized("user is inactive"));
        }
        let role = role
            .and_then(|r| r.parse::<Role>().ok())
            .ok_or(ApiError::Unauthorized("unknown role"))?;
        let ctx = TenantCtx {
            role,
            ..ctx.clone()
        };
        if !role.grants(permission) {
            // Record the refusal in its own write transaction (the checking one may be
            // read-only), then refuse.
            drop(tx);
            let mut tx = TenantTx {
                tenant: ctx.tenant_id,
                actor: Some(ctx.user_id),
                tx: db.begin_for(ctx.tenant_id, true).await?,
                rehearsal: false,
            };
            crate::audit::record(
                &mut tx,
                crate::audit::Entry::security("permission_denied", &ctx)
                    .detail(serde_json::json!({"permission": permission.as_str()})),
                // A security event is dated when it happens.
                crate::now(),
            )
            .await?;
            tx.commit().await?;
            return Err(ApiError::Forbidden);
        }
        Ok((tx, ctx))
    }

    /// Opens a transaction for `tenant` without a signed-in user: sign-in, scheduled jobs, the
    /// command line and connectors. Every use is a place where the caller vouches for the tenant.
    pub async fn begin_system(db: &Db, tenant: TenantId) -> ApiResult<TenantTx> {
        Ok(TenantTx {
            tenant,
            actor: None,
            tx: db.begin_for(tenant, true).await?,
            rehearsal: false,
        })
    }

    /// A read-only counterpart of [`TenantTx::begin_system`] (on SQLite a deferred `BEGIN`,
    /// which takes no write lock): session lookups and other reads made on the platform's
    /// behalf.
    pub async fn begin_system_read(db: &Db, tenant: TenantId) -> ApiResult<TenantTx> {
        Ok(TenantTx {
            tenant,
            actor: None,
            tx: db.begin_for(tenant, false).await?,
            rehearsal: false,
        })
    }

    /// Opens a system transaction that is only a rehearsal: it applies changes to see what they
    /// would do (a dry run of an import), and is rolled back, never committed. Its audit entries
    /// are skipped, since they would be rolled back too, and appending them takes the tenant's
    /// audit head: every other writer of the tenant would wait for the rehearsal to end.
    pub async fn begin_rehearsal(db: &Db, tenant: TenantId) -> ApiResult<TenantTx> {
        Ok(TenantTx {
            rehearsal: true,
            ..TenantTx::begin_system(db, tenant).await?
        })
    }

    /// Whether this transaction is a rehearsal that will be rolled back.
    pub fn is_rehearsal(&self) -> bool {
        self.rehearsal
    }

    /// Rolls back everything the transaction did.
    pub async fn rollback(self) -> ApiResult<()> {
        self.tx.rollback().await
    }

    /// The tenant every statement must bind.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Which backend the transaction runs on (for the few statements whose SQL differs).
    pub fn backend(&self) -> Backend {
        match self.tx {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    /// The signed-in user, if any.
    pub fn actor(&self) -> Option<UserId> {
        self.actor
    }

    /// The connection to run statements on (see [`sql!`](crate::sql)).
    pub fn conn(&mut self) -> Conn<'_> {
        self.tx.conn()
    }

    /// Commits (a rehearsal is rolled back instead: it never writes).
    pub async fn commit(self) -> ApiResult<()> {
        if self.rehearsal {
            return self.tx.rollback().await;
        }
        self.tx.commit().await
    }
}

/// The field a unique-constraint violation is about, when `err` is one: the constraint name on
/// PostgreSQL (`users_email_key` → `email`), the column list on SQLite.
pub fn unique_violation_field(err: &sqlx::Error, table: &str) -> Option<String> {
    let db_err = err.as_database_error()?;
    if !db_err.is_unique_violation() {
        return None;
    }
    if let Some(constraint) = db_err.constraint() {
        return constraint
            .strip_prefix(&format!("{table}_"))
            .and_then(|s| s.strip_suffix("_key"))
            .map(str::to_string);
    }
    // SQLite: "UNIQUE constraint failed: users.tenant_id, users.email"
    let cols = db_err.message().split_once("failed: ")?.1;
    cols.split(", ")
        .filter_map(|c| c.split_once('.').map(|(_, col)| col))
        .find(|col| *col != "tenant_id")
        .map(str::to_string)
}
