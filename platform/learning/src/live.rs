//! Live progress: every progress report reaches the portal pages that show it, on every
//! instance, without a reload.
//!
//! A report's use case announces the change inside its transaction. On PostgreSQL that is a
//! `pg_notify` on [`CHANNEL`], which the database delivers to every instance's listener only if
//! and when the transaction commits; each instance's [`Live::relay`] passes what it hears to
//! its local hub. On SQLite (one instance) the use case hands the change to the hub after
//! committing. Subscribers (the portal's server-sent event streams) read the hub and keep only
//! what their viewer may see.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use trainflow_kernel::{db::Db, db::TenantTx, sql, ApiResult};
use uuid::Uuid;

use crate::enrolments::EnrolmentStatus;

/// The PostgreSQL notification channel of progress changes.
pub const CHANNEL: &str = "trainflow_learning_progress";

/// Changes a slow subscriber may fall behind by before it misses some (it then reloads).
const BUFFER: usize = 4096;

/// A change of an enrolment's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressChange {
    pub tenant: Uuid,
    pub enrolment: Uuid,
    /// The enrolled person.
    pub user: Uuid,
    pub course: Uuid,
    pub percent: i32,
    pub status: EnrolmentStatus,
    /// The lesson reported on, and whether it is done.
    pub lesson: Uuid,
    pub lesson_done: bool,
}

/// The instance's hub of progress changes.
#[derive(Clone)]
pub struct Live {
    changes: broadcast::Sender<Arc<ProgressChange>>,
    closed: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            changes: broadcast::channel(BUFFER).0,
            closed: watch::channel(false).0,
        }
    }
}

/// What a use case hands the hub once its transaction has committed (SQLite); nothing on
/// PostgreSQL, where the database delivers the notification at commit.
#[must_use]
pub struct Pending(Option<ProgressChange>);

impl Live {
    /// Announces `change` inside `tx`: a notification delivered at commit (PostgreSQL), or the
    /// change to publish after committing (SQLite).
    pub async fn announce(tx: &mut TenantTx, change: ProgressChange) -> ApiResult<Pending> {
        match tx.backend() {
            trainflow_kernel::db::Backend::Postgres => {
                let payload = serde_json::to_string(&change)
                    .map_err(|e| trainflow_kernel::ApiError::Internal(e.into()))?;
                sql!(tx.conn() => |c| sqlx::query("select pg_notify($1, $2)")
                    .bind(CHANNEL).bind(payload).execute(&mut *c).await.map(drop))?;
                Ok(Pending(None))
            }
            trainflow_kernel::db::Backend::Sqlite => Ok(Pending(Some(change))),
        }
    }

    /// Publishes what [`Live::announce`] left for after the commit.
    pub fn published(&self, pending: Pending) {
        if let Some(change) = pending.0 {
            self.publish(change);
        }
    }

    /// Hands a change to every local subscriber.
    pub fn publish(&self, change: ProgressChange) {
        // No subscriber is no error.
        let _ = self.changes.send(Arc::new(change));
    }

    /// A new subscription to the changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ProgressChange>> {
        self.changes.subscribe()
    }

    /// Resolves when the instance is shutting down (streams end then).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Ends every stream (the server is shutting down).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// On PostgreSQL, listens on [`CHANNEL`] and publishes what it hears until the hub closes,
    /// reconnecting after a lost connection; on SQLite there is nothing to relay.
    pub async fn relay(self, db: Db) {
        let Db::Postgres(pool) = db else { return };
        let closed = self.closed();
        tokio::pin!(closed);
        loop {
            let listening = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                loop {
                    let note = listener.recv().await?;
                    match serde_json::from_str::<ProgressChange>(note.payload()) {
                        Ok(change) => self.publish(change),
                        Err(e) => tracing::warn!(error = %e, "an unreadable progress notification"),
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                _ = &mut closed => return,
                result = listening => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "the progress listener lost its connection; reconnecting");
                    }
                }
            }
            tokio::select! {
                _ = &mut closed => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }
}
