//! The audit log: append-only and hash-chained per tenant.
//!
//! Each entry is written in the same transaction as the change it records. The per-tenant head
//! row (`audit_heads`) is updated first, which serialises writers of one tenant, so the chain has
//! no forks: `hash = sha256(prev_hash || canonical entry)`.
//!
//! A batch of changes (an imported page) is one entry listing every object it changed
//! ([`record_objects`], [`record_batch`]); each listed object also gets a row in
//! `audit_objects` (tenant, object type, object id, the entry's seq), so an object's history
//! finds the batch entries that changed it.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    auth::TenantCtx,
    db::{Conn, TenantTx},
    sql, ApiResult,
};

/// One audit entry before it is chained.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `user`, `operator`, `system`, `connector` or `anonymous`.
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

/// Appends `entry` to the tenant's chain inside `tx`, dated `at`: the caller's clock, the
/// same `now` the change it records was made with (so a job run for a given time, or a test
/// with a fixed clock, dates its entries by that time).
pub async fn record(tx: &mut TenantTx, entry: Entry, at: OffsetDateTime) -> ApiResult<()> {
    append(tx, &entry, &[], at).await.map(drop)
}

/// What happened to one object of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Deactivated,
    Deleted,
}

impl Change {
    /// The stored name: `created`, `updated`, `deactivated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Deactivated => "deactivated",
            Change::Deleted => "deleted",
        }
    }
}

/// One object a batch entry changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// e.g. `user`, `certification`.
    pub object_type: &'static str,
    pub object_id: Uuid,
    pub change: Change,
    /// The fields an update or deactivation changed.
    pub fields: Vec<&'static str>,
}

impl ObjectChange {
    pub fn new(object_type: &'static str, object_id: Uuid, change: Change) -> Self {
        Self {
            object_type,
            object_id,
            change,
            fields: Vec::new(),
        }
    }

    /// With the names of the fields that changed.
    pub fn fields(mut self, fields: Vec<&'static str>) -> Self {
        self.fields = fields;
        self
    }

    fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("type".into(), self.object_type.into());
        o.insert("id".into(), self.object_id.to_string().into());
        o.insert("change".into(), self.change.as_str().into());
        if !self.fields.is_empty() {
            o.insert("fields".into(), self.fields.clone().into());
        }
        Value::Object(o)
    }
}

/// Who makes a batch of changes, for the entries that record it: the actor, the object the
/// entries are about (e.g. the connector run) and detail every entry carries (e.g. the
/// installation and the run).
#[derive(Debug, Clone)]
pub struct BatchSource {
    pub actor_kind: &'static str,
    pub actor_id: Option<Uuid>,
    pub object: Option<(&'static str, Uuid)>,
    pub detail: serde_json::Map<String, Value>,
}

impl BatchSource {
    /// A source acting as `actor_kind` (`connector`, `system`, …).
    pub fn new(actor_kind: &'static str, actor_id: Option<Uuid>) -> Self {
        Self {
            actor_kind,
            actor_id,
            object: None,
            detail: serde_json::Map::new(),
        }
    }

    /// The object the entries are about.
    pub fn object(mut self, object_type: &'static str, id: Uuid) -> Self {
        self.object = Some((object_type, id));
        self
    }

    /// Adds a detail every entry carries.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    /// The entry `action` of this source, before its objects are listed.
    pub fn entry(&self, action: &str) -> Entry {
        let mut e = Entry::as_actor(self.actor_kind, self.actor_id, action, None);
        if let Some((object_type, id)) = self.object {
            e = e.object(object_type, id);
        }
        e.detail(Value::Object(self.detail.clone()))
    }
}

/// Soft-deletes the rows of `table` (a table of the calling context, with `tenant_id`, `id`,
/// `deleted_at` and `updated_at`) whose ids are in `ids`, and records one batch entry `action`
/// of `source` listing each as a deleted `kind`. Returns the ids it deleted: those already
/// deleted, or unknown, are left as they are.
pub async fn soft_delete_batch(
    tx: &mut TenantTx,
    table: &'static str,
    kind: &'static str,
    action: &str,
    ids: &[Uuid],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let deleted: Vec<(Uuid,)> = sql!(tx.conn() => |c| {
        let mut qb = sqlx::QueryBuilder::new(format!("update {table} set deleted_at = "));
        qb.push_bind(now).push(", updated_at = ").push_bind(now)
            .push(" where deleted_at is null and tenant_id = ").push_bind(tenant).push(" and id in (");
        let mut list = qb.separated(", ");
        for id in ids { list.push_bind(*id); }
        qb.push(") returning id");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let deleted: Vec<Uuid> = deleted.into_iter().map(|r| r.0).collect();
    let objects: Vec<ObjectChange> = deleted
        .iter()
        .map(|id| ObjectChange::new(kind, *id, Change::Deleted))
        .collect();
    record_batch(tx, source, action, &objects, now).await?;
    Ok(deleted)
}

/// Records the batch `action` of `source` that changed `objects`: one entry listing them, and
/// one `audit_objects` row per object. Writes nothing when nothing changed; returns the entry's
/// seq otherwise.
pub async fn record_batch(
    tx: &mut TenantTx,
    source: &BatchSource,
    action: &str,
    objects: &[ObjectChange],
    at: OffsetDateTime,
) -> ApiResult<Option<i64>> {
    if objects.is_empty() {
        return Ok(None);
    }
    record_objects(tx, source.entry(action), objects, at)
        .await
        .map(Some)
}

/// The statements [`record_batch`] issues for `objects` objects on `tx`'s backend (for the
/// statement counts jobs report): none for none; on PostgreSQL the head and one statement for
/// the entry, its object rows and the new head; on SQLite the head, the entry, a multi-row
/// insert per 1,000 object rows and the new head.
pub fn batch_statements(tx: &mut TenantTx, objects: usize) -> u64 {
    match (objects, tx.conn()) {
        (0, _) => 0,
        (_, Conn::Postgres(_)) => 2,
        (n, Conn::Sqlite(_)) => 3 + n.div_ceil(SQLITE_ROWS_PER_STATEMENT) as u64,
    }
}

/// Appends `entry` listing `objects` (under `objects` in its detail, beside what the detail
/// already holds) and indexes each object in `audit_objects` with one multi-row statement, so
/// filtering the log by any of their ids finds the entry. Returns the entry's seq.
pub async fn record_objects(
    tx: &mut TenantTx,
    mut entry: Entry,
    objects: &[ObjectChange],
    at: OffsetDateTime,
) -> ApiResult<i64> {
    let listed = Value::Array(objects.iter().map(ObjectChange::to_json).collect());
    let mut detail = match entry.after.take() {
        Some(Value::Object(map)) => map,
        Some(Value::Null) | None => serde_json::Map::new(),
        Some(other) => {
            let mut map = serde_json::Map::new();
            map.insert("detail".into(), other);
            map
        }
    };
    detail.insert("objects".into(), listed);
    entry.after = Some(Value::Object(detail));
    // One index row per object, however often it is listed.
    let mut seen = std::collections::HashSet::with_capacity(objects.len());
    let index: Vec<(&'static str, Uuid)> = objects
        .iter()
        .filter(|o| seen.insert(o.object_id))
        .map(|o| (o.object_type, o.object_id))
        .collect();
    append(tx, &entry, &index, at).await
}

/// Entries [`verify_chain`] reads per statement.
const VERIFY_PAGE: i64 = 1000;

/// Multi-row statements on SQLite stay well under its limit of bound parameters.
const SQLITE_ROWS_PER_STATEMENT: usize = 1000;

/// Chains `entry` and writes it, its `audit_objects` rows and the new head. Returns its seq.
async fn append(
    tx: &mut TenantTx,
    entry: &Entry,
    objects: &[(&'static str, Uuid)],
    at: OffsetDateTime,
) -> ApiResult<i64> {
    if tx.is_rehearsal() {
        // Rolled back anyway; taking the head would hold the tenant's writers meanwhile.
        return Ok(0);
    }
    let tenant = tx.tenant();
    // Microseconds, the precision PostgreSQL keeps, so the hash of the stored entry verifies.
    let now = at
        .replace_microsecond(at.microsecond())
        .map_err(|e| crate::ApiError::Internal(e.into()))?;
    let request_id = crate::request::current_id();
    // Take the head (creating it on first use); this row lock orders the tenant's writers.
    let (seq, prev_hash): (i64, String) = sql!(tx.conn() => |c| sqlx::query_as(
        "insert into audit_heads (tenant_id, seq, hash) values ($1, 1, '')
         on conflict (tenant_id) do update set seq = audit_heads.seq + 1
         returning seq, hash")
        .bind(tenant).fetch_one(&mut *c).await)?;
    let id = Uuid::now_v7();
    let canonical = canonical(tenant.0, seq, id, now, entry, &request_id);
    let hash = chain_hash(&prev_hash, &canonical);
    let before = entry.before.as_ref().map(sqlx::types::Json);
    let after = entry.after.as_ref().map(sqlx::types::Json);
    // The entry's fifteen columns, `$1` to `$15`, in the order both statements list them.
    macro_rules! bind_entry {
        ($q:expr) => {
            $q.bind(tenant)
                .bind(seq)
                .bind(id)
                .bind(now)
                .bind(&entry.actor_kind)
                .bind(entry.actor_id)
                .bind(&entry.action)
                .bind(&entry.object_type)
                .bind(entry.object_id)
                .bind(before)
                .bind(after)
                .bind(&request_id)
                .bind(&entry.ip)
                .bind(&prev_hash)
                .bind(&hash)
        };
    }
    match tx.conn() {
        // One statement: the entry, its object rows (column arrays) and the new head.
        Conn::Postgres(c) => {
            let (types, ids): (Vec<&str>, Vec<Uuid>) = objects.iter().copied().unzip();
            let objects_cte = if objects.is_empty() {
                ""
            } else {
                ", indexed as (insert into audit_objects (tenant_id, object_type, object_id, seq)
                     select $1, o.object_type, o.object_id, $2
                       from unnest($16::text[], $17::uuid[]) as o(object_type, object_id))"
            };
            let statement = format!(
                "with entry as (
                    insert into audit_log (tenant_id, seq, id, occurred_at, actor_kind, actor_id,
                                           action, object_type, object_id, before_state,
                                           after_state, request_id, ip, prev_hash, hash)
                    values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)){objects_cte}
                 update audit_heads set hash = $15 where tenant_id = $1"
            );
            let mut q = bind_entry!(sqlx::query(&statement));
            if !objects.is_empty() {
                q = q.bind(types).bind(ids);
            }
            q.execute(&mut *c).await?;
        }
        Conn::Sqlite(c) => {
            bind_entry!(sqlx::query(
                "insert into audit_log (tenant_id, seq, id, occurred_at, actor_kind, actor_id, action,
                                        object_type, object_id, before_state, after_state, request_id,
                                        ip, prev_hash, hash)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            ))
            .execute(&mut *c)
            .await?;
            for chunk in objects.chunks(SQLITE_ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::new(
                    "insert into audit_objects (tenant_id, object_type, object_id, seq) ",
                );
                qb.push_values(chunk, |mut row, (object_type, object_id)| {
                    row.push_bind(tenant)
                        .push_bind(*object_type)
                        .push_bind(*object_id)
                        .push_bind(seq);
                });
                qb.build().execute(&mut *c).await?;
            }
            sqlx::query("update audit_heads set hash = $2 where tenant_id = $1")
                .bind(tenant)
                .bind(&hash)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(seq)
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
    let mut prev = String::new();
    let mut last_seq = 0;
    // The chain is read in pages of `VERIFY_PAGE` entries, so verifying a long log holds one
    // page in memory, not the log.
    loop {
        let rows: Vec<StoredEntry> = sql!(tx.conn() => |c| sqlx::query_as(
            "select seq, id, occurred_at, actor_kind, actor_id, action, object_type, object_id,
                    before_state, after_state, request_id, ip, prev_hash, hash
               from audit_log where tenant_id = $1 and seq > $2 order by seq limit $3")
            .bind(tenant).bind(last_seq).bind(VERIFY_PAGE).fetch_all(&mut *c).await)?;
        let full = rows.len() as i64 == VERIFY_PAGE;
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
        if !full {
            break;
        }
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

/// One of the newest entries, as the dashboard lists them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecentEntry {
    pub occurred_at: OffsetDateTime,
    pub action: String,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
}

/// The tenant's newest `limit` entries about one of `subjects` (the part of an action before
/// its dot: `renewal` for `renewal.decide`), newest first; every entry when `subjects` is empty.
pub async fn recent(
    tx: &mut TenantTx,
    subjects: &[&str],
    limit: i64,
) -> ApiResult<Vec<RecentEntry>> {
    let tenant = tx.tenant();
    let filter = if subjects.is_empty() {
        String::new()
    } else {
        let any: Vec<String> = (0..subjects.len())
            .map(|i| format!("action like ${}", i + 3))
            .collect();
        format!("and ({})", any.join(" or "))
    };
    let statement = format!(
        "select occurred_at, action, actor_kind, actor_id from audit_log
          where tenant_id = $1 {filter} order by seq desc limit $2"
    );
    Ok(sql!(tx.conn() => |c| {
        let mut q = sqlx::query_as(&statement).bind(tenant).bind(limit);
        for subject in subjects {
            q = q.bind(format!("{subject}.%"));
        }
        q.fetch_all(&mut *c).await
    })?)
}

/// How an action reads for people: "Renewal decided" for `renewal.decide`. Actions without a
/// wording of their own read as their subject and verb ("Connector · run start").
pub fn describe(action: &str) -> String {
    let known = match action {
        "approval.delegate" => "Approval delegated",
        "approval_chain.update" => "Approval chain changed",
        "auth.password_changed" => "Password changed",
        "certification.record" => "Certification recorded",
        "certification_type.create" => "Certification type created",
        "certification_type.update" => "Certification type changed",
        "connector.deletions_confirmed" => "Import deletions confirmed",
        "connector.file_upload" => "Import file uploaded",
        "connector.install" => "Connector installed",
        "connector.package_upload" => "Connector package uploaded",
        "connector.run_abandon" => "Import run abandoned",
        "connector.run_start" => "Import run started",
        "department.create" => "Department created",
        "notification.broadcast" => "Broadcast sent",
        "notification.template_reset" => "Email template reset",
        "notification.template_update" => "Email template changed",
        "renewal.cancel" => "Renewal cancelled",
        "renewal.decide" => "Renewal decided",
        "renewal.evidence_added" => "Renewal evidence added",
        "renewal.resubmit" => "Renewal resubmitted",
        "renewal.submit" => "Renewal requested",
        "tenant.update_settings" => "Organisation settings changed",
        "user.create" => "Person added",
        "user.delete" => "Person deactivated",
        "user.restore" => "Person restored",
        "user.update" => "Person changed",
        "user.update_self" => "Profile changed",
        "user.reporting_lines" => "Reporting lines changed",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let (subject, verb) = action.split_once('.').unwrap_or((action, ""));
    let mut out: String = subject.replace('_', " ");
    if let Some(first) = out.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    if !verb.is_empty() {
        out.push_str(" · ");
        out.push_str(&verb.replace('_', " "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn actions_read_as_words() {
        assert_eq!(describe("renewal.decide"), "Renewal decided");
        assert_eq!(describe("connector.run_start"), "Import run started");
        assert_eq!(describe("course_module.reorder"), "Course module · reorder");
        assert_eq!(describe("odd"), "Odd");
        assert_eq!(describe(""), "");
    }
}
