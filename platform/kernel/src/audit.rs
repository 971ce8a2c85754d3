//! The audit log: append-only and hash-chained per tenant.
//!
//! Each entry is written in the same transaction as the change it records. The per-tenant head
//! row (`audit_heads`) is updated first, which serialises writers of one tenant, so the chain has
//! no forks: `hash = sha256(prev_hash || canonical entry)`.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{auth::TenantCtx, db::TenantTx, sql, ApiResult};

/// One audit entry before it is chained.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `user`, `operator`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The acting user or operator.
    pub actor_id: Option<Uuid>,
    /// e.g. `user.create`, `auth.sign_in_failed`.
    pub action: String,
    /// e.g. `user`.
    pub object_type: Option<String>,
    /// The changed object.
    pub object_id: Option<Uuid>,
    /// State before the change.
    pub before: Option<Value>,
    /// State after the change.
    pub after: Option<Value>,
    /// Client address.
    pub ip: Option<String>,
}

impl Entry {
    /// An entry for a change made by the signed-in user of `ctx`.
    pub fn by(ctx: &TenantCtx, action: &str) -> Self {
        Self {
            actor_kind: "user".into(),
            actor_id: Some(ctx.user_id.0),
            action: action.into(),
            object_type: None,
            object_id: None,
            before: None,
            after: None,
            ip: ctx.ip.clone(),
        }
    }

    /// A security event (sign-in, token reuse, permission denied) of `ctx`'s user.
    pub fn security(action: &str, ctx: &TenantCtx) -> Self {
        Self::by(ctx, action)
    }

    /// An entry with an explicit actor kind (`system`, `operator`, `anonymous`).
    pub fn as_actor(
        actor_kind: &'static str,
        actor_id: Option<Uuid>,
        action: &str,
        ip: Option<String>,
    ) -> Self {
        Self {
            actor_kind: actor_kind.into(),
            actor_id,
            action: action.into(),
            object_type: None,
            object_id: None,
            before: None,
            after: None,
            ip,
        }
    }

    /// Names the object.
    pub fn object(mut self, object_type: &'static str, id: Uuid) -> Self {
        self.object_type = Some(object_type.into());
        self.object_id = Some(id);
        self
    }

    /// Sets before/after.
    pub fn change(mut self, before: Option<Value>, after: Option<Value>) -> Self {
        self.before = before;
        self.after = after;
        self
    }

    /// Free-form detail, stored as `after`.
    pub fn detail(mut self, detail: Value) -> Self {
        self.after = Some(detail);
        self
    }
}

/// Appends `entry` to the tenant's chain inside `tx`.
pub async fn record(tx: &mut TenantTx, entry: Entry) -> ApiResult<()> {
    let tenant = tx.tenant();
    let now = crate::now();
    let request_id = crate::request::current_id();
    // Take the head (creating it on first use); this row lock orders the tenant's writers.
    let (seq, prev_hash): (i64, String) = sql!(tx.conn() => |c| sqlx::query_as(
        "insert into audit_heads (tenant_id, seq, hash) values ($1, 1, '')
         on conflict (tenant_id) do update set seq = audit_heads.seq + 1
         returning seq, hash")
        .bind(tenant).fetch_one(&mut *c).await)?;
    let id = Uuid::now_v7();
    let canonical = canonical(tenant.0, seq, id, now, &entry, &request_id);
    let hash = chain_hash(&prev_hash, &canonical);
    sql!(tx.conn() => |c| sqlx::query(
        "insert into audit_log (tenant_id, seq, id, occurred_at, actor_kind, actor_id, action,
                                object_type, object_id, before_state, after_state, request_id, ip,
                                prev_hash, hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)")
        .bind(tenant).bind(seq).bind(id).bind(now).bind(&entry.actor_kind).bind(entry.actor_id)
        .bind(&entry.action).bind(&entry.object_type).bind(entry.object_id)
        .bind(entry.before.as_ref().map(sqlx::types::Json)).bind(entry.after.as_ref().map(sqlx::types::Json))
        .bind(&request_id).bind(&entry.ip).bind(&prev_hash).bind(&hash)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    sql!(tx.conn() => |c| sqlx::query("update audit_heads set hash = $2 where tenant_id = $1")
        .bind(tenant).bind(&hash).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The canonical text hashed for an entry. Stable field order; timestamps as Unix nanoseconds.
pub fn canonical(
    tenant: Uuid,
    seq: i64,
    id: Uuid,
    at: OffsetDateTime,
    e: &Entry,
    request_id: &str,
) -> String {
    json!([
        tenant,
        seq,
        id,
        at.unix_timestamp_nanos().to_string(),
        e.actor_kind,
        e.actor_id,
        e.action,
        e.object_type,
        e.object_id,
        e.before,
        e.after,
        request_id,
        e.ip
    ])
    .to_string()
}

/// `sha256(prev_hash || canonical)`, hex.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// A stored entry, as read back for verification.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredEntry {
    /// Position in the chain.
    pub seq: i64,
    /// Entry id.
    pub id: Uuid,
    /// When.
    pub occurred_at: OffsetDateTime,
    /// Actor kind.
    pub actor_kind: String,
    /// Actor.
    pub actor_id: Option<Uuid>,
    /// Action.
    pub action: String,
    /// Object type.
    pub object_type: Option<String>,
    /// Object id.
    pub object_id: Option<Uuid>,
    /// Before.
    pub before_state: Option<sqlx::types::Json<Value>>,
    /// After.
    pub after_state: Option<sqlx::types::Json<Value>>,
    /// Request id.
    pub request_id: String,
    /// Client address.
    pub ip: Option<String>,
    /// Previous hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Walks the tenant's whole chain; returns the first sequence number whose hash does not match,
/// or `None` when the chain is intact.
pub async fn verify_chain(tx: &mut TenantTx) -> ApiResult<Option<i64>> {
    let tenant = tx.tenant();
    let rows: Vec<StoredEntry> = sql!(tx.conn() => |c| sqlx::query_as(
        "select seq, id, occurred_at, actor_kind, actor_id, action, object_type, object_id,
                before_state, after_state, request_id, ip, prev_hash, hash
           from audit_log where tenant_id = $1 order by seq")
        .bind(tenant).fetch_all(&mut *c).await)?;
    let mut prev = String::new();
    let mut last_seq = 0;
    for r in rows {
        let entry = Entry {
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            action: r.action,
            object_type: r.object_type,
            object_id: r.object_id,
            before: r.before_state.map(|j| j.0),
            after: r.after_state.map(|j| j.0),
            ip: r.ip,
        };
        let expected = chain_hash(
            &prev,
            &canonical(tenant.0, r.seq, r.id, r.occurred_at, &entry, &r.request_id),
        );
        if r.prev_hash != prev || r.hash != expected {
            return Ok(Some(r.seq));
        }
        prev = r.hash;
        last_seq = r.seq;
    }
    // The head must point at the last entry, so removing the newest entries shows too.
    let head: Option<(i64, String)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select seq, hash from audit_heads where tenant_id = $1")
        .bind(tenant).fetch_optional(&mut *c).await)?;
    match head {
        Some((seq, hash)) if seq != last_seq || hash != prev => Ok(Some(last_seq + 1)),
        None if last_seq != 0 => Ok(Some(last_seq)),
        _ => Ok(None),
    }
}
