//! One page of connector entities, applied to the tenant's data inside the page's transaction.
//!
//! Every record is keyed by (tenant, installation, stream, external id) through
//! `connector_links`, so applying a page twice changes nothing the second time, and a run that
//! resumes after its last committed page neither duplicates nor loses records.
//!
//! * Employees become people of the tenant (role employee, invited: no password), matched first
//!   by link, then by email (adopting a person created by hand). Connectors never change a role
//!   and never deactivate an administrator.
//! * Org units become departments (matched by link, then code, then name).
//! * Courses, completions and certifications are stored for the learning and compliance
//!   features; certification types are created by code when first seen.
//! * A record that cannot be applied is reported with its external id and the reason; the rest
//!   of the page is applied.
//!
//! Statements are set-based where volume is expected (employees: one lookup per kind of key and
//! one multi-row insert per page), so a page of 1,000 costs a handful of round trips.

use std::collections::{HashMap, HashSet};

use sqlx::QueryBuilder;
use time::{Date, OffsetDateTime};
use trainflow_connectors::{
    Certification, Completion, Course, Deletion, Employee, Entity, EntityKind, OrgUnit,
};
use trainflow_identity::users::revoke_credentials;
use trainflow_kernel::{
    db::{Conn, TenantTx},
    domain::{EmailAddress, PhoneNumber},
    sql, ApiResult,
};
use uuid::Uuid;

/// Where a page belongs.
#[derive(Debug, Clone)]
pub struct PageContext {
    pub installation: Uuid,
    pub stream: String,
    /// The pass this page belongs to: links seen in it carry this id, so a full refresh knows
    /// what the source no longer has.
    pub generation: Uuid,
    pub now: OffsetDateTime,
}

/// What applying a page did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub created: u32,
    pub updated: u32,
    pub deactivated: u32,
    /// (reference, reason) of each record that was not applied.
    pub errors: Vec<(String, String)>,
}

impl Applied {
    fn reject(&mut self, reference: &str, reason: impl Into<String>) {
        self.errors.push((reference.to_string(), reason.into()));
    }
}

/// The stored name of an entity kind.
pub fn kind_name(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Employee => "employee",
        EntityKind::OrgUnit => "org_unit",
        EntityKind::Course => "course",
        EntityKind::Completion => "completion",
        EntityKind::Certification => "certification",
    }
}

/// Applies `entities` in order of dependency: org units, employees, courses, then the records
/// that refer to them, then deletions.
pub async fn apply_page(
    tx: &mut TenantTx,
    ctx: &PageContext,
    entities: Vec<Entity>,
) -> ApiResult<Applied> {
    let mut out = Applied::default();
    let (mut units, mut people, mut courses, mut completions, mut certs, mut deletions) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for e in entities {
        match e {
            Entity::OrgUnit(u) => units.push(u),
            Entity::Employee(p) => people.push(p),
            Entity::Course(c) => courses.push(c),
            Entity::Completion(c) => completions.push(c),
            Entity::Certification(c) => certs.push(c),
            Entity::Deletion(d) => deletions.push(d),
        }
    }
    if !units.is_empty() {
        org_units(tx, ctx, units, &mut out).await?;
    }
    if !people.is_empty() {
        employees(tx, ctx, people, &mut out).await?;
    }
    if !courses.is_empty() {
        upsert_courses(tx, ctx, courses, &mut out).await?;
    }
    if !completions.is_empty() {
        upsert_completions(tx, ctx, completions, &mut out).await?;
    }
    if !certs.is_empty() {
        upsert_certifications(tx, ctx, certs, &mut out).await?;
    }
    for d in deletions {
        delete_one(tx, ctx, &d, &mut out).await?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Links

/// External id → TrainFlow id, for the links of this stream.
async fn stream_links(
    tx: &mut TenantTx,
    ctx: &PageContext,
    external_ids: &[&str],
) -> ApiResult<HashMap<String, Uuid>> {
    find_links(tx, ctx.installation, "stream", &ctx.stream, external_ids).await
}

/// External id → TrainFlow id for links of `kind` in any stream of the installation (how
/// records refer to each other: a certification names its employee's external id).
async fn kind_links(
    tx: &mut TenantTx,
    ctx: &PageContext,
    kind: EntityKind,
    external_ids: &[&str],
) -> ApiResult<HashMap<String, Uuid>> {
    find_links(
        tx,
        ctx.installation,
        "entity_kind",
        kind_name(kind),
        external_ids,
    )
    .await
}

/// The links of one installation whose `column` (`stream` or `entity_kind`) is `value`.
async fn find_links(
    tx: &mut TenantTx,
    installation: Uuid,
    column: &'static str,
    value: &str,
    external_ids: &[&str],
) -> ApiResult<HashMap<String, Uuid>> {
    if external_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let tenant = tx.tenant();
    let rows: Vec<(String, Uuid)> = match tx.conn() {
        // One array parameter: a small statement whatever the page size.
        Conn::Postgres(c) => {
            let ids: Vec<&str> = external_ids.to_vec();
            sqlx::query_as(&format!(
                "select external_id, entity_id from connector_links
                  where tenant_id = $1 and installation_id = $2 and {column} = $3
                    and external_id = any($4)"
            ))
            .bind(tenant)
            .bind(installation)
            .bind(value)
            .bind(ids)
            .fetch_all(&mut *c)
            .await?
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(
                "select external_id, entity_id from connector_links where tenant_id = ",
            );
            qb.push_bind(tenant)
                .push(" and installation_id = ")
                .push_bind(installation)
                .push(format!(" and {column} = "))
                .push_bind(value)
                .push(" and external_id in (");
            let mut list = qb.separated(", ");
            for id in external_ids {
                list.push_bind(*id);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await?
        }
    };
    Ok(rows.into_iter().collect())
}

/// The people records refer to: linked by this installation; else by any installation of the
/// tenant (a certifications file usually comes from another installation than the people
/// file); else a person whose external id, employee number or email is the reference.
async fn resolve_people(
    tx: &mut TenantTx,
    ctx: &PageContext,
    refs: &[&str],
) -> ApiResult<HashMap<String, Uuid>> {
    let mut found = kind_links(tx, ctx, EntityKind::Employee, refs).await?;
    let missing: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|r| !found.contains_key(*r))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if missing.is_empty() {
        return Ok(found);
    }
    let tenant = tx.tenant();
    let linked: Vec<(String, Uuid)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select external_id, entity_id from connector_links where tenant_id = ");
        qb.push_bind(tenant).push(" and entity_kind = 'employee' and external_id in (");
        let mut list = qb.separated(", ");
        for r in &missing { list.push_bind(*r); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    found.extend(linked);
    let missing: Vec<&str> = missing
        .into_iter()
        .filter(|r| !found.contains_key(*r))
        .collect();
    if missing.is_empty() {
        return Ok(found);
    }
    let people: Vec<(Uuid, Option<String>, Option<String>, String)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select id, external_id, employee_number, email from users where deleted_at is null and tenant_id = ");
        qb.push_bind(tenant).push(" and (external_id in (");
        let mut list = qb.separated(", ");
        for r in &missing { list.push_bind(*r); }
        qb.push(") or employee_number in (");
        let mut list = qb.separated(", ");
        for r in &missing { list.push_bind(*r); }
        qb.push(") or email in (");
        let mut list = qb.separated(", ");
        for r in &missing { list.push_bind(r.to_lowercase()); }
        qb.push("))");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    for r in missing {
        let hit = people.iter().find(|(_, ext, number, email)| {
            ext.as_deref() == Some(r)
                || number.as_deref() == Some(r)
                || email.eq_ignore_ascii_case(r)
        });
        if let Some((id, ..)) = hit {
            found.insert(r.to_string(), *id);
        }
    }
    Ok(found)
}

/// Records (or refreshes) the links of this page: external id → TrainFlow id, seen in this pass.
async fn save_links(
    tx: &mut TenantTx,
    ctx: &PageContext,
    kind: EntityKind,
    links: &[(String, Uuid)],
) -> ApiResult<()> {
    if links.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    let kind = kind_name(kind);
    let on_conflict = " on conflict (tenant_id, installation_id, stream, external_id) do update
          set entity_id = excluded.entity_id, seen_run = excluded.seen_run,
              updated_at = excluded.updated_at";
    match tx.conn() {
        Conn::Postgres(c) => {
            let (external, ids): (Vec<&str>, Vec<Uuid>) =
                links.iter().map(|(e, id)| (e.as_str(), *id)).unzip();
            sqlx::query(&format!(
                "insert into connector_links (tenant_id, installation_id, stream, external_id,
                        entity_kind, entity_id, seen_run, updated_at)
                 select $1, $2, $3, l.external_id, $4, l.entity_id, $5, $6
                   from unnest($7::text[], $8::uuid[]) as l(external_id, entity_id){on_conflict}"
            ))
            .bind(tenant)
            .bind(ctx.installation)
            .bind(&ctx.stream)
            .bind(kind)
            .bind(ctx.generation)
            .bind(ctx.now)
            .bind(external)
            .bind(ids)
            .execute(&mut *c)
            .await?;
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(
                "insert into connector_links (tenant_id, installation_id, stream, external_id,
                        entity_kind, entity_id, seen_run, updated_at) ",
            );
            qb.push_values(links, |mut row, (external_id, id)| {
                row.push_bind(tenant)
                    .push_bind(ctx.installation)
                    .push_bind(&ctx.stream)
                    .push_bind(external_id)
                    .push_bind(kind)
                    .push_bind(*id)
                    .push_bind(ctx.generation)
                    .push_bind(ctx.now);
            });
            qb.push(on_conflict);
            qb.build().execute(&mut *c).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Employees

struct Person {
    external_id: String,
    email: Option<EmailAddress>,
    first_name: String,
    last_name: String,
    phone: Option<String>,
    employee_number: Option<String>,
    org_unit: Option<String>,
    position: Option<String>,
    active: bool,
}

fn parse_person(e: Employee) -> Result<Person, String> {
    let first_name = e.first_name.trim().to_string();
    let last_name = e.last_name.trim().to_string();
    if first_name.is_empty() || first_name.len() > 100 {
        return Err("first name must be 1 to 100 characters".into());
    }
    if last_name.len() > 100 {
        return Err("last name must be at most 100 characters".into());
    }
    let email = match e.email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Some(EmailAddress::parse(raw).map_err(|m| format!("email {m}"))?),
        None => None,
    };
    let phone = match e.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Some(
            PhoneNumber::parse(raw)
                .map_err(|m| format!("phone {m}"))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let clip = |v: Option<String>, max: usize, what: &str| -> Result<Option<String>, String> {
        match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(s) if s.len() > max => Err(format!("{what} must be at most {max} characters")),
            other => Ok(other),
        }
    };
    Ok(Person {
        email,
        phone,
        employee_number: clip(e.employee_number, 50, "employee number")?,
        org_unit: clip(e.org_unit_external_id, 200, "org unit")?,
        position: clip(e.position, 100, "position")?,
        external_id: e.external_id,
        first_name,
        last_name,
        active: e.active,
    })
}

#[derive(sqlx::FromRow)]
struct Existing {
    id: Uuid,
    email: String,
    first_name: String,
    last_name: String,
    phone: Option<String>,
    employee_number: Option<String>,
    department_id: Option<Uuid>,
    position: Option<String>,
    role: String,
    is_active: bool,
    deleted: bool,
}

const EXISTING_COLUMNS: &str = "id, email, first_name, last_name, phone, employee_number, \
     department_id, position, role, is_active, deleted_at is not null as deleted";

async fn employees(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Employee>,
    out: &mut Applied,
) -> ApiResult<()> {
    // Parse; the last record of an external id in a page wins.
    let mut people: Vec<Person> = Vec::with_capacity(items.len());
    let mut position_of: HashMap<String, usize> = HashMap::new();
    for e in items {
        let reference = e.external_id.clone();
        if reference.is_empty() || reference.len() > 200 {
            out.reject(&reference, "external id must be 1 to 200 characters");
            continue;
        }
        match parse_person(e) {
            Ok(p) => match position_of.get(&p.external_id) {
                Some(&i) => people[i] = p,
                None => {
                    position_of.insert(p.external_id.clone(), people.len());
                    people.push(p);
                }
            },
            Err(reason) => out.reject(&reference, reason),
        }
    }
    if people.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    let ext: Vec<&str> = people.iter().map(|p| p.external_id.as_str()).collect();
    let linked = stream_links(tx, ctx, &ext).await?;

    // Departments named by org unit: link first, then code or name.
    let orgs: Vec<&str> = people
        .iter()
        .filter_map(|p| p.org_unit.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut departments = kind_links(tx, ctx, EntityKind::OrgUnit, &orgs).await?;
    let unresolved: Vec<&str> = orgs
        .iter()
        .copied()
        .filter(|o| !departments.contains_key(*o))
        .collect();
    if !unresolved.is_empty() {
        let rows: Vec<(Uuid, String, Option<String>)> = sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new("select id, name, code from departments where tenant_id = ");
            qb.push_bind(tenant).push(" and deleted_at is null and (code in (");
            let mut list = qb.separated(", ");
            for o in &unresolved { list.push_bind(*o); }
            qb.push(") or name in (");
            let mut list = qb.separated(", ");
            for o in &unresolved { list.push_bind(*o); }
            qb.push("))");
            qb.build_query_as().fetch_all(&mut *c).await
        })?;
        for (id, name, code) in rows {
            if let Some(code) = code {
                departments.entry(code).or_insert(id);
            }
            departments.entry(name).or_insert(id);
        }
    }

    // Everyone this page could touch or collide with: linked people, and anyone holding one of
    // the page's emails or employee numbers.
    let linked_ids: Vec<Uuid> = linked.values().copied().collect();
    let emails: Vec<&str> = people
        .iter()
        .filter_map(|p| p.email.as_ref().map(EmailAddress::as_str))
        .collect();
    let numbers: Vec<&str> = people
        .iter()
        .filter_map(|p| p.employee_number.as_deref())
        .collect();
    let mut existing: Vec<Existing> = Vec::new();
    let ids: Vec<String> = linked_ids.iter().map(Uuid::to_string).collect();
    for (column, values) in [
        ("id", ids),
        ("email", owned(&emails)),
        ("employee_number", owned(&numbers)),
    ] {
        for u in users_where_in(tx, column, &values).await? {
            if !existing.iter().any(|e| e.id == u.id) {
                existing.push(u);
            }
        }
    }
    let by_id: HashMap<Uuid, &Existing> = existing.iter().map(|u| (u.id, u)).collect();
    let mut email_owner: HashMap<String, Uuid> =
        existing.iter().map(|u| (u.email.clone(), u.id)).collect();
    let mut number_owner: HashMap<String, Uuid> = existing
        .iter()
        .filter_map(|u| u.employee_number.clone().map(|n| (n, u.id)))
        .collect();

    // People adopted by email must not already stand for another record of this source.
    let candidates: Vec<Uuid> = people
        .iter()
        .filter(|p| !linked.contains_key(&p.external_id))
        .filter_map(|p| p.email.as_ref().and_then(|e| email_owner.get(e.as_str())))
        .copied()
        .collect();
    let taken: HashSet<Uuid> = if candidates.is_empty() {
        HashSet::new()
    } else {
        let rows: Vec<(Uuid,)> = sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new("select entity_id from connector_links where tenant_id = ");
            qb.push_bind(tenant).push(" and installation_id = ").push_bind(ctx.installation)
                .push(" and stream = ").push_bind(&ctx.stream).push(" and entity_id in (");
            let mut list = qb.separated(", ");
            for id in &candidates { list.push_bind(*id); }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await
        })?;
        rows.into_iter().map(|r| r.0).collect()
    };

    let mut inserts: Vec<(Uuid, &Person, Option<Uuid>)> = Vec::new();
    let mut links: Vec<(String, Uuid)> = Vec::with_capacity(people.len());
    for p in &people {
        let department = p
            .org_unit
            .as_deref()
            .and_then(|o| departments.get(o))
            .copied();
        if let (Some(org), None) = (&p.org_unit, department) {
            out.reject(
                &p.external_id,
                format!("unknown org unit `{org}`: imported without a department"),
            );
        }
        let target = linked.get(&p.external_id).copied().or_else(|| {
            p.email
                .as_ref()
                .and_then(|e| email_owner.get(e.as_str()))
                .copied()
                .filter(|id| !taken.contains(id))
        });
        // Another person may already hold this email or employee number.
        if let Some(e) = &p.email {
            if email_owner
                .get(e.as_str())
                .is_some_and(|o| Some(*o) != target)
            {
                out.reject(
                    &p.external_id,
                    format!("email {e} belongs to another person"),
                );
                continue;
            }
        }
        if let Some(n) = &p.employee_number {
            if number_owner.get(n).is_some_and(|o| Some(*o) != target) {
                out.reject(
                    &p.external_id,
                    format!("employee number {n} belongs to another person"),
                );
                continue;
            }
        }
        match target.and_then(|id| by_id.get(&id)) {
            Some(current) => {
                if let Some(reason) = update_person(tx, ctx, current, p, department, out).await? {
                    out.reject(&p.external_id, reason);
                    continue;
                }
                links.push((p.external_id.clone(), current.id));
            }
            None => {
                let Some(email) = &p.email else {
                    out.reject(
                        &p.external_id,
                        "an email address is required to add a person",
                    );
                    continue;
                };
                let id = Uuid::now_v7();
                email_owner.insert(email.as_str().to_string(), id);
                if let Some(n) = &p.employee_number {
                    number_owner.insert(n.clone(), id);
                }
                inserts.push((id, p, department));
                links.push((p.external_id.clone(), id));
            }
        }
    }
    if !inserts.is_empty() {
        insert_people(tx, &inserts, ctx.now).await?;
        out.created += inserts.len() as u32;
    }
    save_links(tx, ctx, EntityKind::Employee, &links).await
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// People of the tenant whose `column` is one of `values` (an index lookup per key).
async fn users_where_in(
    tx: &mut TenantTx,
    column: &'static str,
    values: &[String],
) -> ApiResult<Vec<Existing>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    Ok(match tx.conn() {
        Conn::Postgres(c) => {
            // Ids travel as text and are compared as uuids.
            let cast = if column == "id" {
                "::uuid[]"
            } else {
                "::text[]"
            };
            sqlx::query_as(&format!(
                "select {EXISTING_COLUMNS} from users where tenant_id = $1 and {column} = any($2{cast})"
            ))
            .bind(tenant)
            .bind(values)
            .fetch_all(&mut *c)
            .await?
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(format!(
                "select {EXISTING_COLUMNS} from users where tenant_id = "
            ));
            qb.push_bind(tenant).push(format!(" and {column} in ("));
            let mut list = qb.separated(", ");
            for v in values {
                if column == "id" {
                    list.push_bind(v.parse::<Uuid>().unwrap_or_default());
                } else {
                    list.push_bind(v.as_str());
                }
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await?
        }
    })
}

/// Adds new people (role employee, invited: no password) in one statement.
async fn insert_people(
    tx: &mut TenantTx,
    people: &[(Uuid, &Person, Option<Uuid>)],
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    match tx.conn() {
        Conn::Postgres(c) => {
            // Column arrays: a fixed, small statement instead of 15 parameters per person.
            let mut cols = PersonColumns::default();
            for (id, p, department) in people {
                cols.push(*id, p, *department);
            }
            sqlx::query(
                "insert into users (tenant_id, id, email, username, first_name, last_name, phone,
                        employee_number, department_id, position, role, is_active, external_id,
                        created_at, updated_at)
                 select $1, u.id, u.email, u.email, u.first_name, u.last_name, u.phone,
                        u.employee_number, u.department_id, u.position, 'employee', u.is_active,
                        u.external_id, $2, $2
                   from unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                               $8::text[], $9::uuid[], $10::text[], $11::bool[], $12::text[])
                     as u(id, email, first_name, last_name, phone, employee_number, department_id,
                          position, is_active, external_id)",
            )
            .bind(tenant)
            .bind(now)
            .bind(cols.id)
            .bind(cols.email)
            .bind(cols.first_name)
            .bind(cols.last_name)
            .bind(cols.phone)
            .bind(cols.employee_number)
            .bind(cols.department_id)
            .bind(cols.position)
            .bind(cols.is_active)
            .bind(cols.external_id)
            .execute(&mut *c)
            .await?;
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(
                "insert into users (tenant_id, id, email, username, first_name, last_name, phone,
                        employee_number, department_id, position, role, is_active, external_id,
                        created_at, updated_at) ",
            );
            qb.push_values(people, |mut row, (id, p, department)| {
                let email = p.email.as_ref().map(EmailAddress::as_str);
                row.push_bind(tenant)
                    .push_bind(*id)
                    .push_bind(email)
                    .push_bind(email)
                    .push_bind(&p.first_name)
                    .push_bind(&p.last_name)
                    .push_bind(&p.phone)
                    .push_bind(&p.employee_number)
                    .push_bind(*department)
                    .push_bind(&p.position)
                    .push_bind("employee")
                    .push_bind(p.active)
                    .push_bind(&p.external_id)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.build().execute(&mut *c).await?;
        }
    }
    Ok(())
}

/// New people as column arrays, for PostgreSQL's `unnest`.
#[derive(Default)]
struct PersonColumns {
    id: Vec<Uuid>,
    email: Vec<String>,
    first_name: Vec<String>,
    last_name: Vec<String>,
    phone: Vec<Option<String>>,
    employee_number: Vec<Option<String>>,
    department_id: Vec<Option<Uuid>>,
    position: Vec<Option<String>>,
    is_active: Vec<bool>,
    external_id: Vec<String>,
}

impl PersonColumns {
    fn push(&mut self, id: Uuid, p: &Person, department: Option<Uuid>) {
        self.id.push(id);
        self.email.push(
            p.email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
        );
        self.first_name.push(p.first_name.clone());
        self.last_name.push(p.last_name.clone());
        self.phone.push(p.phone.clone());
        self.employee_number.push(p.employee_number.clone());
        self.department_id.push(department);
        self.position.push(p.position.clone());
        self.is_active.push(p.active);
        self.external_id.push(p.external_id.clone());
    }
}

/// Brings one existing person in line with the source; `Some(reason)` when it may not.
async fn update_person(
    tx: &mut TenantTx,
    ctx: &PageContext,
    current: &Existing,
    p: &Person,
    department: Option<Uuid>,
    out: &mut Applied,
) -> ApiResult<Option<String>> {
    let email = p
        .email
        .as_ref()
        .map_or(current.email.clone(), |e| e.as_str().to_string());
    let department = department.or(if p.org_unit.is_none() {
        None
    } else {
        current.department_id
    });
    let unchanged = email == current.email
        && p.first_name == current.first_name
        && p.last_name == current.last_name
        && p.phone == current.phone
        && p.employee_number == current.employee_number
        && department == current.department_id
        && p.position == current.position
        && p.active == current.is_active
        && !current.deleted;
    if unchanged {
        return Ok(None);
    }
    let deactivating = current.is_active && !p.active;
    if (deactivating || (current.deleted && !p.active)) && current.role == "administrator" {
        return Ok(Some(
            "administrators are not deactivated by connectors; change them in TrainFlow".into(),
        ));
    }
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update users set email = $3, first_name = $4, last_name = $5, phone = $6, employee_number = $7,
                department_id = $8, position = $9, is_active = $10, deleted_at = null, updated_at = $11
          where tenant_id = $1 and id = $2")
        .bind(tenant).bind(current.id).bind(&email).bind(&p.first_name).bind(&p.last_name)
        .bind(&p.phone).bind(&p.employee_number).bind(department).bind(&p.position)
        .bind(p.active).bind(ctx.now).execute(&mut *c).await.map(drop))?;
    if deactivating {
        revoke_credentials(tx, current.id, ctx.now).await?;
        out.deactivated += 1;
    } else {
        out.updated += 1;
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Org units

async fn org_units(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<OrgUnit>,
    out: &mut Applied,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let ext: Vec<&str> = items.iter().map(|u| u.external_id.as_str()).collect();
    let linked = stream_links(tx, ctx, &ext).await?;
    let mut links = Vec::new();
    for u in &items {
        let name = u.name.trim();
        if name.is_empty() || name.len() > 100 || u.external_id.is_empty() {
            out.reject(&u.external_id, "name must be 1 to 100 characters");
            continue;
        }
        let code = u.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
        // The department holding this name, if any: it must be this unit's own.
        let holder: Option<(Uuid, Option<String>)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id, code from departments where tenant_id = $1 and name = $2")
            .bind(tenant).bind(name).fetch_optional(&mut *c).await)?;
        let target = match linked.get(&u.external_id) {
            Some(id) => Some(*id),
            None => {
                // Adopt a department created by hand: by code, else by name.
                let by_code: Option<(Uuid,)> = match code {
                    Some(code) => sql!(tx.conn() => |c| sqlx::query_as(
                        "select id from departments where tenant_id = $1 and code = $2")
                        .bind(tenant).bind(code).fetch_optional(&mut *c).await)?,
                    None => None,
                };
                by_code.map(|r| r.0).or(holder.as_ref().map(|h| h.0))
            }
        };
        match target {
            Some(id) => {
                if holder.as_ref().is_some_and(|h| h.0 != id) {
                    out.reject(
                        &u.external_id,
                        format!("another department is named {name}"),
                    );
                    continue;
                }
                let n = sql!(tx.conn() => |c| sqlx::query(
                    "update departments set name = $3, code = $4, deleted_at = null, updated_at = $5
                      where tenant_id = $1 and id = $2
                        and (name <> $3 or coalesce(code, '') <> coalesce($4, '') or deleted_at is not null)")
                    .bind(tenant).bind(id).bind(name).bind(code).bind(ctx.now)
                    .execute(&mut *c).await.map(|r| r.rows_affected()))?;
                out.updated += n as u32;
                links.push((u.external_id.clone(), id));
            }
            None => {
                let id = Uuid::now_v7();
                sql!(tx.conn() => |c| sqlx::query(
                    "insert into departments (tenant_id, id, name, code, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $5)")
                    .bind(tenant).bind(id).bind(name).bind(code).bind(ctx.now)
                    .execute(&mut *c).await.map(drop))?;
                out.created += 1;
                links.push((u.external_id.clone(), id));
            }
        }
    }
    save_links(tx, ctx, EntityKind::OrgUnit, &links).await
}

// ---------------------------------------------------------------------------------------------
// Courses, completions, certifications

fn parse_date(raw: &str, what: &str) -> Result<Date, String> {
    Date::parse(
        raw.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| format!("{what} `{raw}` is not a date (YYYY-MM-DD)"))
}

async fn upsert_courses(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Course>,
    out: &mut Applied,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let ext: Vec<&str> = items.iter().map(|c| c.external_id.as_str()).collect();
    let linked = stream_links(tx, ctx, &ext).await?;
    let mut links = Vec::new();
    for course in &items {
        let title = course.title.trim();
        if title.is_empty() || title.len() > 200 {
            out.reject(&course.external_id, "title must be 1 to 200 characters");
            continue;
        }
        let hours = course.duration_hours.filter(|h| h.is_finite() && *h >= 0.0);
        let id = match linked.get(&course.external_id) {
            Some(id) => {
                let n = sql!(tx.conn() => |c| sqlx::query(
                    "update courses set code = $3, title = $4, description = $5, duration_hours = $6,
                            deleted_at = null, updated_at = $7
                      where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(*id).bind(&course.code).bind(title).bind(&course.description)
                    .bind(hours).bind(ctx.now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
                out.updated += n as u32;
                *id
            }
            None => {
                let id = insert_course(tx, course.code.as_deref(), title, ctx.now).await?;
                sql!(tx.conn() => |c| sqlx::query(
                    "update courses set description = $3, duration_hours = $4 where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(id).bind(&course.description).bind(hours)
                    .execute(&mut *c).await.map(drop))?;
                out.created += 1;
                id
            }
        };
        links.push((course.external_id.clone(), id));
    }
    save_links(tx, ctx, EntityKind::Course, &links).await
}

async fn insert_course(
    tx: &mut TenantTx,
    code: Option<&str>,
    title: &str,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let id = Uuid::now_v7();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into courses (tenant_id, id, code, title, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)")
        .bind(tenant).bind(id).bind(code).bind(title).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(id)
}

/// The course a completion names: a linked course, else one with that code, else a new one.
async fn course_for(
    tx: &mut TenantTx,
    linked: &HashMap<String, Uuid>,
    reference: &str,
    now: OffsetDateTime,
) -> ApiResult<Uuid> {
    if let Some(id) = linked.get(reference) {
        return Ok(*id);
    }
    let tenant = tx.tenant();
    let found: Option<(Uuid,)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id from courses where tenant_id = $1 and code = $2 and deleted_at is null")
        .bind(tenant).bind(reference).fetch_optional(&mut *c).await)?;
    match found {
        Some((id,)) => Ok(id),
        None => insert_course(tx, Some(reference), reference, now).await,
    }
}

async fn upsert_completions(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Completion>,
    out: &mut Applied,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let ext: Vec<&str> = items.iter().map(|c| c.external_id.as_str()).collect();
    let linked = stream_links(tx, ctx, &ext).await?;
    let people: Vec<&str> = items
        .iter()
        .map(|c| c.employee_external_id.as_str())
        .collect();
    let people = resolve_people(tx, ctx, &people).await?;
    let course_refs: Vec<&str> = items
        .iter()
        .map(|c| c.course_external_id.as_str())
        .collect();
    let courses = kind_links(tx, ctx, EntityKind::Course, &course_refs).await?;
    let mut links = Vec::new();
    for item in &items {
        let Some(user) = people.get(&item.employee_external_id).copied() else {
            out.reject(
                &item.external_id,
                format!("unknown employee `{}`", item.employee_external_id),
            );
            continue;
        };
        let completed_on = match parse_date(&item.completed_on, "completion date") {
            Ok(d) => d,
            Err(reason) => {
                out.reject(&item.external_id, reason);
                continue;
            }
        };
        let score = item.score.filter(|s| s.is_finite());
        let course = course_for(tx, &courses, &item.course_external_id, ctx.now).await?;
        let id = match linked.get(&item.external_id) {
            Some(id) => {
                let n = sql!(tx.conn() => |c| sqlx::query(
                    "update course_completions set user_id = $3, course_id = $4, completed_on = $5,
                            score = $6, deleted_at = null, updated_at = $7
                      where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(*id).bind(user).bind(course).bind(completed_on).bind(score)
                    .bind(ctx.now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
                out.updated += n as u32;
                *id
            }
            None => {
                let id = Uuid::now_v7();
                sql!(tx.conn() => |c| sqlx::query(
                    "insert into course_completions (tenant_id, id, user_id, course_id, completed_on, score,
                            created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $7)")
                    .bind(tenant).bind(id).bind(user).bind(course).bind(completed_on).bind(score)
                    .bind(ctx.now).execute(&mut *c).await.map(drop))?;
                out.created += 1;
                id
            }
        };
        links.push((item.external_id.clone(), id));
    }
    save_links(tx, ctx, EntityKind::Completion, &links).await
}

/// The certification type with this code, created (named after its code) when first seen.
async fn certification_type(tx: &mut TenantTx, code: &str, now: OffsetDateTime) -> ApiResult<Uuid> {
    let tenant = tx.tenant();
    let found: Option<(Uuid,)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select id from certification_types where tenant_id = $1 and code = $2")
        .bind(tenant).bind(code).fetch_optional(&mut *c).await)?;
    if let Some((id,)) = found {
        return Ok(id);
    }
    let id = Uuid::now_v7();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into certification_types (tenant_id, id, code, name, created_at, updated_at)
         values ($1, $2, $3, $3, $4, $4)")
        .bind(tenant).bind(id).bind(code).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(id)
}

async fn upsert_certifications(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Certification>,
    out: &mut Applied,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    let ext: Vec<&str> = items.iter().map(|c| c.external_id.as_str()).collect();
    let linked = stream_links(tx, ctx, &ext).await?;
    let people: Vec<&str> = items
        .iter()
        .map(|c| c.employee_external_id.as_str())
        .collect();
    let people = resolve_people(tx, ctx, &people).await?;
    let mut links = Vec::new();
    for item in &items {
        let Some(user) = people.get(&item.employee_external_id).copied() else {
            out.reject(
                &item.external_id,
                format!("unknown employee `{}`", item.employee_external_id),
            );
            continue;
        };
        let code = item.certification_type.trim();
        if code.is_empty() || code.len() > 100 {
            out.reject(
                &item.external_id,
                "certification type must be 1 to 100 characters",
            );
            continue;
        }
        let dates = parse_date(&item.issued_on, "issue date").and_then(|issued| {
            let expires = item
                .expires_on
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_date(s, "expiry date"))
                .transpose()?;
            match expires {
                Some(e) if e < issued => Err("expires before it was issued".to_string()),
                _ => Ok((issued, expires)),
            }
        });
        let (issued, expires) = match dates {
            Ok(d) => d,
            Err(reason) => {
                out.reject(&item.external_id, reason);
                continue;
            }
        };
        let type_id = certification_type(tx, code, ctx.now).await?;
        let id = match linked.get(&item.external_id) {
            Some(id) => {
                let n = sql!(tx.conn() => |c| sqlx::query(
                    "update certifications set user_id = $3, type_id = $4, issued_on = $5, expires_on = $6,
                            certificate_number = $7, deleted_at = null, updated_at = $8
                      where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(*id).bind(user).bind(type_id).bind(issued).bind(expires)
                    .bind(&item.certificate_number).bind(ctx.now)
                    .execute(&mut *c).await.map(|r| r.rows_affected()))?;
                out.updated += n as u32;
                *id
            }
            None => {
                let id = Uuid::now_v7();
                sql!(tx.conn() => |c| sqlx::query(
                    "insert into certifications (tenant_id, id, user_id, type_id, issued_on, expires_on,
                            certificate_number, source, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, 'connector', $8, $8)")
                    .bind(tenant).bind(id).bind(user).bind(type_id).bind(issued).bind(expires)
                    .bind(&item.certificate_number).bind(ctx.now).execute(&mut *c).await.map(drop))?;
                out.created += 1;
                id
            }
        };
        links.push((item.external_id.clone(), id));
    }
    save_links(tx, ctx, EntityKind::Certification, &links).await
}

// ---------------------------------------------------------------------------------------------
// Deletions

async fn delete_one(
    tx: &mut TenantTx,
    ctx: &PageContext,
    d: &Deletion,
    out: &mut Applied,
) -> ApiResult<()> {
    let found = kind_links(tx, ctx, d.entity, &[d.external_id.as_str()]).await?;
    let Some(id) = found.get(&d.external_id).copied() else {
        // Never imported (or already gone): nothing to do.
        return Ok(());
    };
    if let Err(reason) = soft_delete(tx, d.entity, id, ctx.now, out).await? {
        out.reject(&d.external_id, reason);
    }
    Ok(())
}

/// Soft-deletes one imported object. People are deactivated and signed out; administrators are
/// left alone (`Err(reason)`).
pub async fn soft_delete(
    tx: &mut TenantTx,
    kind: EntityKind,
    id: Uuid,
    now: OffsetDateTime,
    out: &mut Applied,
) -> ApiResult<Result<(), String>> {
    let tenant = tx.tenant();
    let statement = match kind {
        EntityKind::Employee => return delete_person(tx, id, now, out).await,
        EntityKind::OrgUnit => {
            "update departments set deleted_at = $3, updated_at = $3 where tenant_id = $1 and id = $2 and deleted_at is null"
        }
        EntityKind::Course => {
            "update courses set deleted_at = $3, updated_at = $3 where tenant_id = $1 and id = $2 and deleted_at is null"
        }
        EntityKind::Completion => {
            "update course_completions set deleted_at = $3, updated_at = $3 where tenant_id = $1 and id = $2 and deleted_at is null"
        }
        EntityKind::Certification => {
            "update certifications set deleted_at = $3, updated_at = $3 where tenant_id = $1 and id = $2 and deleted_at is null"
        }
    };
    let n = sql!(tx.conn() => |c| sqlx::query(statement)
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    out.deactivated += n as u32;
    Ok(Ok(()))
}

async fn delete_person(
    tx: &mut TenantTx,
    id: Uuid,
    now: OffsetDateTime,
    out: &mut Applied,
) -> ApiResult<Result<(), String>> {
    let tenant = tx.tenant();
    let role: Option<(String,)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select role from users where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    match role {
        None => return Ok(Ok(())),
        Some((role,)) if role == "administrator" => {
            return Ok(Err(
                "administrators are not deactivated by connectors; change them in TrainFlow".into(),
            ))
        }
        Some(_) => {}
    }
    sql!(tx.conn() => |c| sqlx::query(
        "update users set deleted_at = $3, is_active = false, updated_at = $3
          where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(drop))?;
    revoke_credentials(tx, id, now).await?;
    out.deactivated += 1;
    Ok(Ok(()))
}

/// Parses a stored entity kind.
pub fn parse_kind(s: &str) -> Option<EntityKind> {
    Some(match s {
        "employee" => EntityKind::Employee,
        "org_unit" => EntityKind::OrgUnit,
        "course" => EntityKind::Course,
        "completion" => EntityKind::Completion,
        "certification" => EntityKind::Certification,
        _ => return None,
    })
}
