//! Certifications and certification types changed a page at a time, for imports.
//!
//! The rules are those of [`certs::record`](crate::certs::record): a cycle the source gives no
//! expiry gets the type's validity, and a newer cycle closes the open cycle of the same person
//! and type it follows (`renewed_at`), whether that one was recorded by hand or imported. Of the
//! open cycles of a person and type the newest (by issue date) stays open, so an older cycle
//! imported after a newer one is closed at once. Types are found by code and created, named
//! after the code, when first seen.
//!
//! A page costs a handful of statements whatever its size, and one audit entry of the source
//! listing every certification (and type) it changed. Callers keep their own keys: a record
//! says which cycle it was applied to before, and its outcome names the cycle now.

use std::collections::{HashMap, HashSet};

use sqlx::QueryBuilder;
use time::{Date, OffsetDateTime};
use trainflow_kernel::{
    audit::{self, BatchSource, Change, ObjectChange},
    db::TenantTx,
    sql, ApiResult,
};
use uuid::Uuid;

use crate::certs::{certificate_number, cycle_expiry, CycleDates};

/// One certification cycle as the source has it.
#[derive(Debug, Clone)]
pub struct CertificationRecord {
    /// The cycle this record was applied to before, if any.
    pub linked: Option<Uuid>,
    pub user_id: Uuid,
    /// The certification type's code.
    pub type_code: String,
    pub issued_on: Date,
    /// `None`: the type's validity decides.
    pub expires_on: Option<Date>,
    pub certificate_number: Option<String>,
}

/// What applying one record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created(Uuid),
    /// Changed these fields.
    Updated(Uuid, Vec<&'static str>),
    /// Already as the record says.
    Unchanged(Uuid),
    /// Not applied, and why.
    Rejected(String),
}

impl Outcome {
    /// The cycle the record was applied to.
    pub fn id(&self) -> Option<Uuid> {
        match self {
            Outcome::Created(id) | Outcome::Updated(id, _) | Outcome::Unchanged(id) => Some(*id),
            Outcome::Rejected(_) => None,
        }
    }
}

/// A certification type as a page needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRef {
    pub id: Uuid,
    pub validity_months: Option<i32>,
}

/// The longest type code an import may create.
const MAX_CODE: usize = 100;
/// The longest certificate number.
const MAX_NUMBER: usize = 100;

/// The certification types with these codes, creating (named after their code) those not
/// seen before, recorded in one `certification_type.import` entry of `source`.
pub async fn certification_types(
    tx: &mut TenantTx,
    codes: &[&str],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<HashMap<String, TypeRef>> {
    let (types, created) = find_or_create_types(tx, codes, now).await?;
    let objects: Vec<ObjectChange> = created
        .iter()
        .map(|id| ObjectChange::new("certification_type", *id, Change::Created))
        .collect();
    audit::record_batch(tx, source, "certification_type.import", &objects, now).await?;
    Ok(types)
}

/// Types by code (any, deleted or not: codes stay unique), creating the missing ones in one
/// statement. Returns them and the ids of those it created.
async fn find_or_create_types(
    tx: &mut TenantTx,
    codes: &[&str],
    now: OffsetDateTime,
) -> ApiResult<(HashMap<String, TypeRef>, Vec<Uuid>)> {
    let codes: Vec<&str> = codes
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut types = types_with_codes(tx, &codes).await?;
    let missing: Vec<(Uuid, &str)> = codes
        .iter()
        .filter(|c| !types.contains_key(**c))
        .map(|c| (Uuid::now_v7(), *c))
        .collect();
    if missing.is_empty() {
        return Ok((types, Vec::new()));
    }
    let tenant = tx.tenant();
    // A type created meanwhile by someone else is taken as found.
    let created: Vec<(Uuid,)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "insert into certification_types (tenant_id, id, code, name, created_at, updated_at) ");
        qb.push_values(&missing, |mut row, (id, code)| {
            row.push_bind(tenant).push_bind(*id).push_bind(*code).push_bind(*code)
                .push_bind(now).push_bind(now);
        });
        qb.push(" on conflict (tenant_id, code) do nothing returning id");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let created: Vec<Uuid> = created.into_iter().map(|r| r.0).collect();
    if created.len() == missing.len() {
        for (id, code) in missing {
            types.insert(
                code.to_string(),
                TypeRef {
                    id,
                    validity_months: None,
                },
            );
        }
    } else {
        let codes: Vec<&str> = missing.iter().map(|(_, c)| *c).collect();
        types.extend(types_with_codes(tx, &codes).await?);
    }
    Ok((types, created))
}

async fn types_with_codes(
    tx: &mut TenantTx,
    codes: &[&str],
) -> ApiResult<HashMap<String, TypeRef>> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, String, Option<i32>)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select id, code, validity_months from certification_types where tenant_id = ");
        qb.push_bind(tenant).push(" and code in (");
        let mut list = qb.separated(", ");
        for code in codes { list.push_bind(*code); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, code, validity_months)| {
            (
                code,
                TypeRef {
                    id,
                    validity_months,
                },
            )
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct Stored {
    id: Uuid,
    user_id: Uuid,
    type_id: Uuid,
    issued_on: Date,
    expires_on: Option<Date>,
    certificate_number: Option<String>,
    deleted: bool,
}

/// A cycle as it is written.
struct Cycle<'a> {
    id: Uuid,
    user_id: Uuid,
    type_id: Uuid,
    issued_on: Date,
    expires_on: Option<Date>,
    certificate_number: Option<&'a str>,
}

/// Applies a page of certification cycles (`origin` is stored as their source, e.g.
/// `connector`), closes the cycles the page's newer ones follow, and records one
/// `certification.import` entry of `source`. One outcome per record, in order.
pub async fn apply_certifications(
    tx: &mut TenantTx,
    records: &[CertificationRecord],
    origin: &str,
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Outcome>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];
    let mut reject = |i: usize, reason: &str| outcomes[i] = Some(Outcome::Rejected(reason.into()));

    // What can be checked on the record alone.
    let mut codes: Vec<&str> = Vec::with_capacity(records.len());
    let mut numbers: Vec<Option<&str>> = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let code = r.type_code.trim();
        let number = certificate_number(r.certificate_number.as_deref());
        codes.push(code);
        numbers.push(number);
        if code.is_empty() || code.len() > MAX_CODE {
            reject(i, "certification type must be 1 to 100 characters");
        } else if number.is_some_and(|n| n.len() > MAX_NUMBER) {
            reject(i, "certificate number must be at most 100 characters");
        } else if r.expires_on.is_some_and(|e| e < r.issued_on) {
            reject(i, "expires before it was issued");
        }
    }
    // The people must be in TrainFlow.
    let people: Vec<Uuid> = records
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_none())
        .map(|(r, _)| r.user_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let live = live_people(tx, &people).await?;
    for (i, r) in records.iter().enumerate() {
        if outcomes[i].is_none() && !live.contains(&r.user_id) {
            outcomes[i] = Some(Outcome::Rejected(
                "no such person (not in TrainFlow, or deleted)".into(),
            ));
        }
    }

    let wanted: Vec<&str> = (0..records.len())
        .filter(|i| outcomes[*i].is_none())
        .map(|i| codes[i])
        .collect();
    let (types, created_types) = find_or_create_types(tx, &wanted, now).await?;
    let linked: Vec<Uuid> = (0..records.len())
        .filter(|i| outcomes[*i].is_none())
        .filter_map(|i| records[i].linked)
        .collect();
    let stored: HashMap<Uuid, Stored> = stored_cycles(tx, &linked)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();

    let mut inserts: Vec<Cycle> = Vec::new();
    let mut updates: Vec<Cycle> = Vec::new();
    let mut claimed: HashSet<Uuid> = HashSet::new();
    for (i, r) in records.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        let Some(t) = types.get(codes[i]) else {
            outcomes[i] = Some(Outcome::Rejected("unknown certification type".into()));
            continue;
        };
        let expires_on = match cycle_expiry(r.issued_on, r.expires_on, t.validity_months) {
            Ok(e) => e,
            Err(CycleDates::ExpiresBeforeIssue) => {
                outcomes[i] = Some(Outcome::Rejected("expires before it was issued".into()));
                continue;
            }
            Err(problem) => {
                outcomes[i] = Some(Outcome::Rejected(format!(
                    "{} {}",
                    problem.field(),
                    problem.message()
                )));
                continue;
            }
        };
        let current = r.linked.and_then(|id| stored.get(&id));
        let id = current.map_or_else(Uuid::now_v7, |s| s.id);
        if !claimed.insert(id) {
            outcomes[i] = Some(Outcome::Rejected(format!(
                "another record of this page was applied to the same certification ({id})"
            )));
            continue;
        }
        let cycle = Cycle {
            id,
            user_id: r.user_id,
            type_id: t.id,
            issued_on: r.issued_on,
            expires_on,
            certificate_number: numbers[i],
        };
        let Some(s) = current else {
            inserts.push(cycle);
            outcomes[i] = Some(Outcome::Created(id));
            continue;
        };
        let mut fields = Vec::new();
        for (field, differs) in [
            ("user_id", s.user_id != cycle.user_id),
            ("type_id", s.type_id != cycle.type_id),
            ("issued_on", s.issued_on != cycle.issued_on),
            ("expires_on", s.expires_on != cycle.expires_on),
            (
                "certificate_number",
                s.certificate_number.as_deref() != cycle.certificate_number,
            ),
            ("deleted_at", s.deleted),
        ] {
            if differs {
                fields.push(field);
            }
        }
        outcomes[i] = Some(if fields.is_empty() {
            Outcome::Unchanged(id)
        } else {
            updates.push(cycle);
            Outcome::Updated(id, fields)
        });
    }
    insert_cycles(tx, &inserts, origin, now).await?;
    update_cycles(tx, &updates, now).await?;
    let pairs: HashSet<(Uuid, Uuid)> = inserts
        .iter()
        .chain(&updates)
        .map(|c| (c.user_id, c.type_id))
        .collect();
    let closed = close_followed_cycles(tx, &pairs, now).await?;

    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.expect("every record decided"))
        .collect();
    let mut objects: Vec<ObjectChange> = created_types
        .iter()
        .map(|id| ObjectChange::new("certification_type", *id, Change::Created))
        .collect();
    let created: HashSet<Uuid> = inserts.iter().map(|c| c.id).collect();
    let mut closed_left: HashSet<Uuid> = closed.into_iter().collect();
    for o in &outcomes {
        match o {
            Outcome::Created(id) => {
                // A cycle created already followed by a newer one is created closed.
                closed_left.remove(id);
                objects.push(ObjectChange::new("certification", *id, Change::Created));
            }
            Outcome::Updated(id, fields) => {
                let mut fields = fields.clone();
                if closed_left.remove(id) {
                    fields.push("renewed_at");
                }
                objects
                    .push(ObjectChange::new("certification", *id, Change::Updated).fields(fields));
            }
            Outcome::Unchanged(_) | Outcome::Rejected(_) => {}
        }
    }
    let mut closed_left: Vec<Uuid> = closed_left
        .into_iter()
        .filter(|id| !created.contains(id))
        .collect();
    closed_left.sort();
    objects.extend(closed_left.into_iter().map(|id| {
        ObjectChange::new("certification", id, Change::Updated).fields(vec!["renewed_at"])
    }));
    audit::record_batch(tx, source, "certification.import", &objects, now).await?;
    Ok(outcomes)
}

/// Which of these people exist and are not deleted.
async fn live_people(tx: &mut TenantTx, ids: &[Uuid]) -> ApiResult<HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let tenant = tx.tenant();
    let rows: Vec<(Uuid,)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("select id from directory_people where deleted_at is null and tenant_id = ");
        qb.push_bind(tenant).push(" and id in (");
        let mut list = qb.separated(", ");
        for id in ids { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

async fn stored_cycles(tx: &mut TenantTx, ids: &[Uuid]) -> ApiResult<Vec<Stored>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select id, user_id, type_id, issued_on, expires_on, certificate_number,
                    deleted_at is not null as deleted
               from certifications where tenant_id = ");
        qb.push_bind(tenant).push(" and id in (");
        let mut list = qb.separated(", ");
        for id in ids { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?)
}

async fn insert_cycles(
    tx: &mut TenantTx,
    cycles: &[Cycle<'_>],
    origin: &str,
    now: OffsetDateTime,
) -> ApiResult<()> {
    if cycles.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "insert into certifications (tenant_id, id, user_id, type_id, issued_on, expires_on,
                    certificate_number, source, created_at, updated_at) ");
        qb.push_values(cycles, |mut row, x| {
            row.push_bind(tenant).push_bind(x.id).push_bind(x.user_id).push_bind(x.type_id)
                .push_bind(x.issued_on).push_bind(x.expires_on).push_bind(x.certificate_number)
                .push_bind(origin).push_bind(now).push_bind(now);
        });
        qb.build().execute(&mut *c).await.map(drop)
    })?;
    Ok(())
}

/// Writes the cycles' fields (restoring deleted ones) in one statement.
async fn update_cycles(
    tx: &mut TenantTx,
    cycles: &[Cycle<'_>],
    now: OffsetDateTime,
) -> ApiResult<()> {
    if cycles.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "with v (id, user_id, type_id, issued_on, expires_on, certificate_number) as (");
        qb.push_values(cycles, |mut row, x| {
            row.push_bind(x.id).push_bind(x.user_id).push_bind(x.type_id).push_bind(x.issued_on)
                .push_bind(x.expires_on).push_bind(x.certificate_number);
        });
        qb.push(
            ") update certifications
                  set user_id = v.user_id, type_id = v.type_id, issued_on = v.issued_on,
                      expires_on = v.expires_on, certificate_number = v.certificate_number,
                      deleted_at = null, updated_at = ")
            .push_bind(now)
            .push(" from v where certifications.tenant_id = ")
            .push_bind(tenant)
            .push(" and certifications.id = v.id");
        qb.build().execute(&mut *c).await.map(drop)
    })?;
    Ok(())
}

/// Of the open cycles of each (person, type) pair, keeps the newest open (latest issue date,
/// then the latest recorded) and closes the others as renewed. Returns the cycles it closed.
async fn close_followed_cycles(
    tx: &mut TenantTx,
    pairs: &HashSet<(Uuid, Uuid)>,
    now: OffsetDateTime,
) -> ApiResult<Vec<Uuid>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let people: Vec<Uuid> = pairs
        .iter()
        .map(|(u, _)| *u)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let open: Vec<(Uuid, Uuid, Uuid, Date)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select id, user_id, type_id, issued_on from certifications
              where renewed_at is null and deleted_at is null and tenant_id = ");
        qb.push_bind(tenant).push(" and user_id in (");
        let mut list = qb.separated(", ");
        for id in &people { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let mut newest: HashMap<(Uuid, Uuid), (Date, Uuid)> = HashMap::new();
    for (id, user, kind, issued) in &open {
        if !pairs.contains(&(*user, *kind)) {
            continue;
        }
        let e = newest.entry((*user, *kind)).or_insert((*issued, *id));
        if (*issued, *id) > *e {
            *e = (*issued, *id);
        }
    }
    let mut closed: Vec<Uuid> = open
        .iter()
        .filter(|(id, user, kind, _)| {
            newest
                .get(&(*user, *kind))
                .is_some_and(|(_, keep)| keep != id)
        })
        .map(|(id, ..)| *id)
        .collect();
    if closed.is_empty() {
        return Ok(closed);
    }
    closed.sort();
    sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("update certifications set renewed_at = ");
        qb.push_bind(now).push(", updated_at = ").push_bind(now)
            .push(" where renewed_at is null and tenant_id = ").push_bind(tenant).push(" and id in (");
        let mut list = qb.separated(", ");
        for id in &closed { list.push_bind(*id); }
        qb.push(")");
        qb.build().execute(&mut *c).await.map(drop)
    })?;
    Ok(closed)
}

/// Soft-deletes these cycles and records one `certification.import` entry of `source`;
/// returns the ones it deleted (those already deleted, or unknown, are left as they are).
pub async fn delete_certifications(
    tx: &mut TenantTx,
    ids: &[Uuid],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Uuid>> {
    audit::soft_delete_batch(
        tx,
        "certifications",
        "certification",
        "certification.import",
        ids,
        now,
        source,
    )
    .await
}
