//! People and departments changed a page at a time, for imports from other systems.
//!
//! A page of records (an HR export, a connector's page) is applied in a handful of statements
//! whatever its size: one lookup per kind of key, one multi-row insert, one multi-row update,
//! and one audit entry listing every person or department the page changed. The rules:
//!
//! * A record is applied to the person it is linked to, else to the person holding its email
//!   (adopting someone created by hand), else to the person holding its employee number when
//!   it has no email, else it adds an invited person (role employee, no password). People
//!   without email are identified by their employee number (or, failing that, the source's
//!   id); a record without a name gets one derived by the caller and is flagged "profile
//!   incomplete", and a later record without a name never overwrites a name someone typed.
//! * An email or employee number another person holds is refused; so is a second record of the
//!   same page for the same person.
//! * Imports never change a role and never deactivate or delete an administrator.
//! * Deactivated and deleted people lose their sessions and refresh tokens.
//! * A department is matched by link, then code, then name; a name another department holds is
//!   refused.
//!
//! Callers keep their own keys (which source record is which person): a record says whom it was
//! applied to before, and its outcome names whom it was applied to now.

use std::collections::{HashMap, HashSet};

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, BatchSource, Change, ObjectChange},
    db::{Conn, TenantTx},
    domain::{EmailAddress, PhoneNumber},
    sql, ApiResult,
};
use uuid::Uuid;

/// What applying one record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created(Uuid),
    /// Changed these fields.
    Updated(Uuid, Vec<&'static str>),
    /// Deactivated the person, changing these fields.
    Deactivated(Uuid, Vec<&'static str>),
    /// Soft-deleted (and deactivated).
    Deleted(Uuid),
    /// Already as the record says.
    Unchanged(Uuid),
    /// Not applied, and why.
    Rejected(String),
}

impl Outcome {
    /// The person or department the record was applied to.
    pub fn id(&self) -> Option<Uuid> {
        match self {
            Outcome::Created(id)
            | Outcome::Updated(id, _)
            | Outcome::Deactivated(id, _)
            | Outcome::Deleted(id)
            | Outcome::Unchanged(id) => Some(*id),
            Outcome::Rejected(_) => None,
        }
    }
}

/// The outcome of one record, and what of it could not be applied when the rest was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub outcome: Outcome,
    pub warning: Option<String>,
}

const ADMINISTRATORS_STAY: &str =
    "administrators are not deactivated by connectors; change them in TrainFlow";

// ---------------------------------------------------------------------------------------------
// People

/// How a record names a person's department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepartmentRef {
    /// A department the caller resolved.
    Id(Uuid),
    /// A department's code or name.
    Key(String),
}

/// One person as the source has them, validated and normalised.
#[derive(Debug, Clone)]
pub struct PersonRecord {
    /// The person's id in the source (stored on the people a page adds).
    pub external_id: String,
    /// The person this record was applied to before, if any.
    pub linked: Option<Uuid>,
    pub email: Option<EmailAddress>,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<PhoneNumber>,
    pub employee_number: Option<String>,
    /// `None`: the source names no department, so the person has none.
    pub department: Option<DepartmentRef>,
    pub position: Option<String>,
    pub active: bool,
    /// True when the source had no name and `first_name`/`last_name` were derived (from the
    /// job role and employee number): the person is flagged "profile incomplete", and an
    /// existing person keeps the name they have.
    pub derived_name: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct Existing {
    id: Uuid,
    email: Option<String>,
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

/// A page of people and everyone it could touch or collide with, looked up once: the linked
/// people, anyone holding one of the page's emails or employee numbers, and the departments
/// its records name by code or name.
pub struct PeoplePage {
    records: Vec<PersonRecord>,
    existing: HashMap<Uuid, Existing>,
    email_owner: HashMap<String, Uuid>,
    number_owner: HashMap<String, Uuid>,
    departments: HashMap<String, Uuid>,
    not_adoptable: HashSet<Uuid>,
}

impl PeoplePage {
    /// Looks up what `records` refer to (one statement per kind of key).
    pub async fn load(tx: &mut TenantTx, records: Vec<PersonRecord>) -> ApiResult<Self> {
        let keys: Vec<&str> = records
            .iter()
            .filter_map(|r| match &r.department {
                Some(DepartmentRef::Key(k)) => Some(k.as_str()),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let departments = departments_by_key(tx, &keys).await?;
        let linked: Vec<Uuid> = records.iter().filter_map(|r| r.linked).collect();
        let emails: Vec<&str> = records
            .iter()
            .filter_map(|r| r.email.as_ref().map(EmailAddress::as_str))
            .collect();
        let numbers: Vec<&str> = records
            .iter()
            .filter_map(|r| r.employee_number.as_deref())
            .collect();
        let mut existing: HashMap<Uuid, Existing> = HashMap::new();
        for u in people_with_ids(tx, &linked).await? {
            existing.entry(u.id).or_insert(u);
        }
        for (column, values) in [("email", &emails), ("employee_number", &numbers)] {
            for u in people_where_in(tx, column, values).await? {
                existing.entry(u.id).or_insert(u);
            }
        }
        let email_owner = existing
            .values()
            .filter_map(|u| u.email.clone().map(|e| (e, u.id)))
            .collect();
        let number_owner = existing
            .values()
            .filter_map(|u| u.employee_number.clone().map(|n| (n, u.id)))
            .collect();
        Ok(PeoplePage {
            records,
            existing,
            email_owner,
            number_owner,
            departments,
            not_adoptable: HashSet::new(),
        })
    }

    /// The people that records without a link would adopt by their email (or, for records
    /// without email, their employee number).
    pub fn adoptions(&self) -> Vec<Uuid> {
        self.records
            .iter()
            .filter(|r| r.linked.is_none())
            .filter_map(|r| self.owner(r))
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect()
    }

    /// Whom a record without a link names: the holder of its email, else (when it has no
    /// email) of its employee number.
    fn owner(&self, r: &PersonRecord) -> Option<&Uuid> {
        match &r.email {
            Some(e) => self.email_owner.get(e.as_str()),
            None => r
                .employee_number
                .as_ref()
                .and_then(|n| self.number_owner.get(n)),
        }
    }

    /// Forbids adopting these people (the caller's source already stands for them through
    /// other records).
    pub fn refuse_adoption(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        self.not_adoptable.extend(ids);
    }

    /// Applies the page: adds, updates, deactivates; revokes the credentials of the people it
    /// deactivates; records one `person.import` entry of `source` listing whom it changed.
    /// Returns one result per record, in order.
    pub async fn apply(
        mut self,
        tx: &mut TenantTx,
        now: OffsetDateTime,
        source: &BatchSource,
    ) -> ApiResult<Vec<RecordResult>> {
        let records = std::mem::take(&mut self.records);
        let mut results = Vec::with_capacity(records.len());
        let mut inserts: Vec<(Uuid, &PersonRecord, Option<Uuid>)> = Vec::new();
        let mut updates: Vec<(Uuid, &PersonRecord, Update)> = Vec::new();
        let mut claimed: HashSet<Uuid> = HashSet::new();
        for p in &records {
            let (result, change) = self.decide(p, &mut claimed);
            match change {
                Some(Write::Insert(id, department)) => inserts.push((id, p, department)),
                Some(Write::Update(id, update)) => updates.push((id, p, update)),
                None => {}
            }
            results.push(result);
        }
        insert_people(tx, &inserts, now).await?;
        update_people(tx, &updates, now).await?;
        let deactivated: Vec<Uuid> = results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Deactivated(id, _) => Some(*id),
                _ => None,
            })
            .collect();
        revoke_credentials(tx, &deactivated, now).await?;
        let objects: Vec<ObjectChange> = results
            .iter()
            .filter_map(|r| object_change("user", &r.outcome))
            .collect();
        audit::record_batch(tx, source, "person.import", &objects, now).await?;
        Ok(results)
    }

    /// What one record does, given the records before it in the page.
    fn decide(
        &mut self,
        p: &PersonRecord,
        claimed: &mut HashSet<Uuid>,
    ) -> (RecordResult, Option<Write>) {
        let (department, warning) = match &p.department {
            None => (None, None),
            Some(DepartmentRef::Id(id)) => (Some(*id), None),
            Some(DepartmentRef::Key(key)) => match self.departments.get(key) {
                Some(id) => (Some(*id), None),
                None => (
                    None,
                    Some(format!(
                        "unknown org unit `{key}`: imported without a department"
                    )),
                ),
            },
        };
        let target = p.linked.or_else(|| {
            self.owner(p)
                .copied()
                .filter(|id| !self.not_adoptable.contains(id))
        });
        // Another person may already hold this email or employee number.
        if let Some(e) = &p.email {
            if self
                .email_owner
                .get(e.as_str())
                .is_some_and(|o| Some(*o) != target)
            {
                return rejected(format!("email {e} belongs to another person"), warning);
            }
        }
        if let Some(n) = &p.employee_number {
            if self.number_owner.get(n).is_some_and(|o| Some(*o) != target) {
                return rejected(
                    format!("employee number {n} belongs to another person"),
                    warning,
                );
            }
        }
        if let Some(id) = target.filter(|id| claimed.contains(id)) {
            return rejected(
                format!("another record of this page was applied to the same person ({id})"),
                warning,
            );
        }
        let Some(current) = target.and_then(|id| self.existing.get(&id)) else {
            let id = Uuid::now_v7();
            if let Some(email) = &p.email {
                self.email_owner.insert(email.as_str().to_string(), id);
            }
            if let Some(n) = &p.employee_number {
                self.number_owner.insert(n.clone(), id);
            }
            claimed.insert(id);
            return (
                RecordResult {
                    outcome: Outcome::Created(id),
                    warning,
                },
                Some(Write::Insert(id, department)),
            );
        };
        claimed.insert(current.id);
        let email = p
            .email
            .as_ref()
            .map(|e| e.as_str().to_string())
            .or_else(|| current.email.clone());
        // A record without a name leaves the name the person has.
        let (first_name, last_name) = if p.derived_name {
            (current.first_name.clone(), current.last_name.clone())
        } else {
            (p.first_name.clone(), p.last_name.clone())
        };
        // A department the source names but TrainFlow does not know leaves the current one.
        let department = department.or(if p.department.is_none() {
            None
        } else {
            current.department_id
        });
        let phone = p.phone.as_ref().map(|n| n.as_str().to_string());
        let mut fields = Vec::new();
        for (field, differs) in [
            ("email", email != current.email),
            ("first_name", first_name != current.first_name),
            ("last_name", last_name != current.last_name),
            ("phone", phone != current.phone),
            (
                "employee_number",
                p.employee_number != current.employee_number,
            ),
            ("department_id", department != current.department_id),
            ("position", p.position != current.position),
            ("is_active", p.active != current.is_active),
            ("deleted_at", current.deleted),
        ] {
            if differs {
                fields.push(field);
            }
        }
        let id = current.id;
        if fields.is_empty() {
            return (
                RecordResult {
                    outcome: Outcome::Unchanged(id),
                    warning,
                },
                None,
            );
        }
        let deactivating = current.is_active && !p.active;
        if (deactivating || (current.deleted && !p.active)) && current.role == "administrator" {
            return rejected(ADMINISTRATORS_STAY.into(), warning);
        }
        let outcome = if deactivating {
            Outcome::Deactivated(id, fields)
        } else {
            Outcome::Updated(id, fields)
        };
        (
            RecordResult { outcome, warning },
            Some(Write::Update(
                id,
                Update {
                    email,
                    first_name,
                    last_name,
                    department,
                },
            )),
        )
    }
}

fn rejected(reason: String, warning: Option<String>) -> (RecordResult, Option<Write>) {
    (
        RecordResult {
            outcome: Outcome::Rejected(reason),
            warning,
        },
        None,
    )
}

/// The write one record needs: the person's id and department (and, for updates, what the
/// record leaves as it is).
enum Write {
    Insert(Uuid, Option<Uuid>),
    Update(Uuid, Update),
}

/// The values of an update that are not simply the record's.
struct Update {
    email: Option<String>,
    first_name: String,
    last_name: String,
    department: Option<Uuid>,
}

/// The audit form of an outcome (`None` when nothing changed).
fn object_change(object_type: &'static str, outcome: &Outcome) -> Option<ObjectChange> {
    Some(match outcome {
        Outcome::Created(id) => ObjectChange::new(object_type, *id, Change::Created),
        Outcome::Updated(id, fields) => {
            ObjectChange::new(object_type, *id, Change::Updated).fields(fields.clone())
        }
        Outcome::Deactivated(id, fields) => {
            ObjectChange::new(object_type, *id, Change::Deactivated).fields(fields.clone())
        }
        Outcome::Deleted(id) => ObjectChange::new(object_type, *id, Change::Deleted),
        Outcome::Unchanged(_) | Outcome::Rejected(_) => return None,
    })
}

/// People with these ids, deleted or not.
async fn people_with_ids(tx: &mut TenantTx, ids: &[Uuid]) -> ApiResult<Vec<Existing>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    Ok(match tx.conn() {
        Conn::Postgres(c) => {
            sqlx::query_as(&format!(
                "select {EXISTING_COLUMNS} from users where tenant_id = $1 and id = any($2)"
            ))
            .bind(tenant)
            .bind(ids)
            .fetch_all(&mut *c)
            .await?
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(format!(
                "select {EXISTING_COLUMNS} from users where tenant_id = "
            ));
            qb.push_bind(tenant).push(" and id in (");
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await?
        }
    })
}

/// People whose `column` is one of `values`, deleted or not (an index lookup per key).
async fn people_where_in(
    tx: &mut TenantTx,
    column: &'static str,
    values: &[&str],
) -> ApiResult<Vec<Existing>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    Ok(match tx.conn() {
        // One array parameter: a small statement whatever the page size.
        Conn::Postgres(c) => {
            sqlx::query_as(&format!(
                "select {EXISTING_COLUMNS} from users where tenant_id = $1 and {column} = any($2)"
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
                list.push_bind(*v);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *c).await?
        }
    })
}

/// Live departments by code or name (a code wins over another department's name).
async fn departments_by_key(tx: &mut TenantTx, keys: &[&str]) -> ApiResult<HashMap<String, Uuid>> {
    let mut found = HashMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let tenant = tx.tenant();
    let rows: Vec<(Uuid, String, Option<String>)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("select id, name, code from departments where tenant_id = ");
        qb.push_bind(tenant).push(" and deleted_at is null and (code in (");
        let mut list = qb.separated(", ");
        for k in keys { list.push_bind(*k); }
        qb.push(") or name in (");
        let mut list = qb.separated(", ");
        for k in keys { list.push_bind(*k); }
        qb.push(")) order by id");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    for (id, _, code) in &rows {
        if let Some(code) = code {
            found.entry(code.clone()).or_insert(*id);
        }
    }
    for (id, name, _) in rows {
        found.entry(name).or_insert(id);
    }
    Ok(found)
}

/// Adds new people (role employee, invited: no password) in one statement.
async fn insert_people(
    tx: &mut TenantTx,
    people: &[(Uuid, &PersonRecord, Option<Uuid>)],
    now: OffsetDateTime,
) -> ApiResult<()> {
    if people.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    match tx.conn() {
        Conn::Postgres(c) => {
            // Column arrays: a fixed, small statement instead of 15 parameters per person.
            let mut cols = PersonColumns::default();
            for (id, p, department) in people {
                let email = p.email.as_ref().map(|e| e.as_str().to_string());
                cols.push(*id, email, &p.first_name, &p.last_name, p, *department);
                cols.external_id.push(p.external_id.clone());
                cols.username.push(import_username(p));
            }
            sqlx::query(
                "insert into users (tenant_id, id, email, username, first_name, last_name, phone,
                        employee_number, department_id, position, role, is_active, external_id,
                        profile_incomplete, created_at, updated_at)
                 select $1, u.id, u.email, u.username, u.first_name, u.last_name, u.phone,
                        u.employee_number, u.department_id, u.position, 'employee', u.is_active,
                        u.external_id, u.derived, $2, $2
                   from unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                               $8::text[], $9::uuid[], $10::text[], $11::bool[], $12::text[],
                               $13::bool[], $14::text[])
                     as u(id, email, first_name, last_name, phone, employee_number, department_id,
                          position, is_active, external_id, derived, username)",
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
            .bind(cols.derived)
            .bind(cols.username)
            .execute(&mut *c)
            .await?;
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(
                "insert into users (tenant_id, id, email, username, first_name, last_name, phone,
                        employee_number, department_id, position, role, is_active, external_id,
                        profile_incomplete, created_at, updated_at) ",
            );
            qb.push_values(people, |mut row, (id, p, department)| {
                let email = p.email.as_ref().map(EmailAddress::as_str);
                row.push_bind(tenant)
                    .push_bind(*id)
                    .push_bind(email)
                    .push_bind(import_username(p))
                    .push_bind(&p.first_name)
                    .push_bind(&p.last_name)
                    .push_bind(p.phone.as_ref().map(PhoneNumber::as_str))
                    .push_bind(&p.employee_number)
                    .push_bind(*department)
                    .push_bind(&p.position)
                    .push_bind("employee")
                    .push_bind(p.active)
                    .push_bind(&p.external_id)
                    .push_bind(p.derived_name)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.build().execute(&mut *c).await?;
        }
    }
    Ok(())
}

/// Brings people in line with their records in one statement (restoring the deleted ones).
/// Never touches a role, a password or an external id.
async fn update_people(
    tx: &mut TenantTx,
    people: &[(Uuid, &PersonRecord, Update)],
    now: OffsetDateTime,
) -> ApiResult<()> {
    if people.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    match tx.conn() {
        Conn::Postgres(c) => {
            let mut cols = PersonColumns::default();
            for (id, p, u) in people {
                cols.push(
                    *id,
                    u.email.clone(),
                    &u.first_name,
                    &u.last_name,
                    p,
                    u.department,
                );
            }
            sqlx::query(
                "update users u
                    set email = v.email, first_name = v.first_name, last_name = v.last_name,
                        phone = v.phone, employee_number = v.employee_number,
                        department_id = v.department_id, position = v.position,
                        is_active = v.is_active, deleted_at = null, updated_at = $2,
                        profile_incomplete = u.profile_incomplete and v.derived
                   from unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                               $8::text[], $9::uuid[], $10::text[], $11::bool[], $12::bool[])
                     as v(id, email, first_name, last_name, phone, employee_number, department_id,
                          position, is_active, derived)
                  where u.tenant_id = $1 and u.id = v.id",
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
            .bind(cols.derived)
            .execute(&mut *c)
            .await?;
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(
                "with v (id, email, first_name, last_name, phone, employee_number, department_id,
                         position, is_active, derived) as (",
            );
            qb.push_values(people, |mut row, (id, p, u)| {
                row.push_bind(*id)
                    .push_bind(u.email.as_deref())
                    .push_bind(&u.first_name)
                    .push_bind(&u.last_name)
                    .push_bind(p.phone.as_ref().map(PhoneNumber::as_str))
                    .push_bind(&p.employee_number)
                    .push_bind(u.department)
                    .push_bind(&p.position)
                    .push_bind(p.active)
                    .push_bind(p.derived_name);
            });
            qb.push(
                ") update users
                    set email = v.email, first_name = v.first_name, last_name = v.last_name,
                        phone = v.phone, employee_number = v.employee_number,
                        department_id = v.department_id, position = v.position,
                        is_active = v.is_active, deleted_at = null,
                        profile_incomplete = users.profile_incomplete and v.derived, updated_at = ",
            )
            .push_bind(now)
            .push(" from v where users.tenant_id = ")
            .push_bind(tenant)
            .push(" and users.id = v.id");
            qb.build().execute(&mut *c).await?;
        }
    }
    Ok(())
}

/// The username of a person an import adds: their email, else their employee number, else the
/// source's id, each prefixed so the three never collide.
fn import_username(p: &PersonRecord) -> String {
    match (&p.email, &p.employee_number) {
        (Some(e), _) => e.as_str().to_string(),
        (None, Some(n)) => format!("employee:{n}"),
        (None, None) => format!("external:{}", p.external_id),
    }
}

/// People as column arrays, for PostgreSQL's `unnest`.
#[derive(Default)]
struct PersonColumns {
    id: Vec<Uuid>,
    email: Vec<Option<String>>,
    username: Vec<String>,
    derived: Vec<bool>,
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
    fn push(
        &mut self,
        id: Uuid,
        email: Option<String>,
        first_name: &str,
        last_name: &str,
        p: &PersonRecord,
        department: Option<Uuid>,
    ) {
        self.id.push(id);
        self.email.push(email);
        self.derived.push(p.derived_name);
        self.first_name.push(first_name.to_string());
        self.last_name.push(last_name.to_string());
        self.phone
            .push(p.phone.as_ref().map(|n| n.as_str().to_string()));
        self.employee_number.push(p.employee_number.clone());
        self.department_id.push(department);
        self.position.push(p.position.clone());
        self.is_active.push(p.active);
    }
}

/// Ends every session and refresh token of these people (two statements).
async fn revoke_credentials(tx: &mut TenantTx, ids: &[Uuid], now: OffsetDateTime) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    for table in ["refresh_tokens", "sessions"] {
        match tx.conn() {
            Conn::Postgres(c) => {
                sqlx::query(&format!(
                    "update {table} set revoked_at = $2
                      where tenant_id = $1 and user_id = any($3) and revoked_at is null"
                ))
                .bind(tenant)
                .bind(now)
                .bind(ids)
                .execute(&mut *c)
                .await?;
            }
            Conn::Sqlite(c) => {
                let mut qb = QueryBuilder::new(format!("update {table} set revoked_at = "));
                qb.push_bind(now)
                    .push(" where tenant_id = ")
                    .push_bind(tenant)
                    .push(" and revoked_at is null and user_id in (");
                let mut list = qb.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(&mut *c).await?;
            }
        }
    }
    Ok(())
}

/// Soft-deletes (and deactivates) these people, ending their sessions and refresh tokens, and
/// records one `person.import` entry of `source`. Administrators are left alone (rejected);
/// people already deleted, or unknown, are unchanged. One outcome per id, in order.
pub async fn delete_people(
    tx: &mut TenantTx,
    ids: &[Uuid],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Outcome>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let live: Vec<(Uuid, String)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("select id, role from users where deleted_at is null and tenant_id = ");
        qb.push_bind(tenant).push(" and id in (");
        let mut list = qb.separated(", ");
        for id in ids { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let role: HashMap<Uuid, String> = live.into_iter().collect();
    let mut seen = HashSet::new();
    let outcomes: Vec<Outcome> = ids
        .iter()
        .map(|id| match role.get(id) {
            Some(role) if role == "administrator" => Outcome::Rejected(ADMINISTRATORS_STAY.into()),
            Some(_) if seen.insert(*id) => Outcome::Deleted(*id),
            _ => Outcome::Unchanged(*id),
        })
        .collect();
    let deleted: Vec<Uuid> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Deleted(id) => Some(*id),
            _ => None,
        })
        .collect();
    if deleted.is_empty() {
        return Ok(outcomes);
    }
    sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("update users set is_active = false, deleted_at = ");
        qb.push_bind(now).push(", updated_at = ").push_bind(now)
            .push(" where deleted_at is null and tenant_id = ").push_bind(tenant).push(" and id in (");
        let mut list = qb.separated(", ");
        for id in &deleted { list.push_bind(*id); }
        qb.push(")");
        qb.build().execute(&mut *c).await.map(drop)
    })?;
    revoke_credentials(tx, &deleted, now).await?;
    let objects: Vec<ObjectChange> = outcomes
        .iter()
        .filter_map(|o| object_change("user", o))
        .collect();
    audit::record_batch(tx, source, "person.import", &objects, now).await?;
    Ok(outcomes)
}

/// The live people that references name, by external id, employee number or email (how a
/// source's other records, such as certifications, refer to a person).
pub async fn people_by_reference(
    tx: &mut TenantTx,
    references: &[&str],
) -> ApiResult<HashMap<String, Uuid>> {
    let mut found = HashMap::new();
    if references.is_empty() {
        return Ok(found);
    }
    let tenant = tx.tenant();
    let people: Vec<(Uuid, Option<String>, Option<String>, String)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select id, external_id, employee_number, email from users where deleted_at is null and tenant_id = ");
        qb.push_bind(tenant).push(" and (external_id in (");
        let mut list = qb.separated(", ");
        for r in references { list.push_bind(*r); }
        qb.push(") or employee_number in (");
        let mut list = qb.separated(", ");
        for r in references { list.push_bind(*r); }
        qb.push(") or email in (");
        let mut list = qb.separated(", ");
        for r in references { list.push_bind(r.to_lowercase()); }
        qb.push("))");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    for r in references {
        let hit = people.iter().find(|(_, ext, number, email)| {
            ext.as_deref() == Some(*r)
                || number.as_deref() == Some(*r)
                || email.eq_ignore_ascii_case(r)
        });
        if let Some((id, ..)) = hit {
            found.insert(r.to_string(), *id);
        }
    }
    Ok(found)
}

/// How many of these people are active and not deleted.
pub async fn active_among(tx: &mut TenantTx, ids: &[Uuid]) -> ApiResult<i64> {
    let tenant = tx.tenant();
    let mut active = 0;
    for chunk in ids.chunks(500) {
        active += sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "select count(*) from users where is_active = true and deleted_at is null and tenant_id = ");
            qb.push_bind(tenant).push(" and id in (");
            let mut list = qb.separated(", ");
            for id in chunk { list.push_bind(*id); }
            qb.push(")");
            qb.build_query_scalar::<i64>().fetch_one(&mut *c).await
        })?;
    }
    Ok(active)
}

// ---------------------------------------------------------------------------------------------
// Departments

/// One department (org unit) as the source has it, validated.
#[derive(Debug, Clone)]
pub struct DepartmentRecord {
    /// The department this record was applied to before, if any.
    pub linked: Option<Uuid>,
    pub name: String,
    pub code: Option<String>,
}

#[derive(Debug, Clone)]
struct Dept {
    name: String,
    code: Option<String>,
    deleted: bool,
}

/// Applies a page of departments: each record goes to its linked department, else the one with
/// its code, else the one with its name (adopting departments created by hand), else a new one.
/// Records one `department.import` entry of `source`. One outcome per record, in order.
pub async fn apply_departments(
    tx: &mut TenantTx,
    records: &[DepartmentRecord],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Outcome>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let linked: Vec<Uuid> = records.iter().filter_map(|r| r.linked).collect();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    let codes: Vec<&str> = records.iter().filter_map(|r| r.code.as_deref()).collect();
    // Every department the page could match or collide with, deleted or not (names stay unique).
    let rows: Vec<(Uuid, String, Option<String>, bool)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new(
            "select id, name, code, deleted_at is not null from departments where tenant_id = ");
        qb.push_bind(tenant).push(" and (name in (");
        let mut list = qb.separated(", ");
        for n in &names { list.push_bind(*n); }
        qb.push(")");
        if !codes.is_empty() {
            qb.push(" or code in (");
            let mut list = qb.separated(", ");
            for code in &codes { list.push_bind(*code); }
            qb.push(")");
        }
        if !linked.is_empty() {
            qb.push(" or id in (");
            let mut list = qb.separated(", ");
            for id in &linked { list.push_bind(*id); }
            qb.push(")");
        }
        qb.push(") order by id");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    let mut depts: HashMap<Uuid, Dept> = HashMap::new();
    let mut by_name: HashMap<String, Uuid> = HashMap::new();
    let mut by_code: HashMap<String, Uuid> = HashMap::new();
    for (id, name, code, deleted) in rows {
        by_name.insert(name.clone(), id);
        if let Some(code) = &code {
            by_code.entry(code.clone()).or_insert(id);
        }
        depts.insert(
            id,
            Dept {
                name,
                code,
                deleted,
            },
        );
    }
    let start_names: HashMap<Uuid, String> =
        depts.iter().map(|(id, d)| (*id, d.name.clone())).collect();

    let mut outcomes = Vec::with_capacity(records.len());
    let mut inserts: Vec<(Uuid, &DepartmentRecord)> = Vec::new();
    let mut updates: Vec<(Uuid, &DepartmentRecord)> = Vec::new();
    let mut claimed: HashSet<Uuid> = HashSet::new();
    for r in records {
        let holder = by_name.get(&r.name).copied();
        let target = r
            .linked
            .or_else(|| r.code.as_ref().and_then(|c| by_code.get(c)).copied())
            .or(holder)
            .filter(|id| depts.contains_key(id));
        let Some(id) = target else {
            if holder.is_some() {
                outcomes.push(Outcome::Rejected(format!(
                    "another department is named {}",
                    r.name
                )));
                continue;
            }
            let id = Uuid::now_v7();
            by_name.insert(r.name.clone(), id);
            if let Some(code) = &r.code {
                by_code.entry(code.clone()).or_insert(id);
            }
            claimed.insert(id);
            inserts.push((id, r));
            outcomes.push(Outcome::Created(id));
            continue;
        };
        if holder.is_some_and(|h| h != id) {
            outcomes.push(Outcome::Rejected(format!(
                "another department is named {}",
                r.name
            )));
            continue;
        }
        if !claimed.insert(id) {
            outcomes.push(Outcome::Rejected(format!(
                "another record of this page was applied to the same department ({id})"
            )));
            continue;
        }
        let d = depts.get_mut(&id).expect("target is known");
        let mut fields = Vec::new();
        if d.name != r.name {
            fields.push("name");
        }
        if d.code != r.code {
            fields.push("code");
        }
        if d.deleted {
            fields.push("deleted_at");
        }
        if fields.is_empty() {
            outcomes.push(Outcome::Unchanged(id));
            continue;
        }
        if d.name != r.name {
            by_name.remove(&d.name);
            by_name.insert(r.name.clone(), id);
        }
        if let Some(code) = &r.code {
            by_code.entry(code.clone()).or_insert(id);
        }
        *d = Dept {
            name: r.name.clone(),
            code: r.code.clone(),
            deleted: false,
        };
        updates.push((id, r));
        outcomes.push(Outcome::Updated(id, fields));
    }

    // Updates run in one statement unless one takes a name another frees in the same page:
    // names are unique at every row, so those run one by one in the page's order.
    let freed: HashSet<&str> = updates
        .iter()
        .filter_map(|(id, r)| start_names.get(id).filter(|n| **n != r.name))
        .map(String::as_str)
        .collect();
    let chained = updates
        .iter()
        .any(|(id, r)| start_names.get(id) != Some(&r.name) && freed.contains(r.name.as_str()));
    if chained {
        for u in &updates {
            update_departments(tx, std::slice::from_ref(u), now).await?;
        }
    } else {
        update_departments(tx, &updates, now).await?;
    }
    if !inserts.is_empty() {
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "insert into departments (tenant_id, id, name, code, created_at, updated_at) ");
            qb.push_values(&inserts, |mut row, (id, r)| {
                row.push_bind(tenant).push_bind(*id).push_bind(&r.name).push_bind(&r.code)
                    .push_bind(now).push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
    }
    let objects: Vec<ObjectChange> = outcomes
        .iter()
        .filter_map(|o| object_change("department", o))
        .collect();
    audit::record_batch(tx, source, "department.import", &objects, now).await?;
    Ok(outcomes)
}

/// Writes name and code of departments (restoring deleted ones) in one statement.
async fn update_departments(
    tx: &mut TenantTx,
    updates: &[(Uuid, &DepartmentRecord)],
    now: OffsetDateTime,
) -> ApiResult<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("with v (id, name, code) as (");
        qb.push_values(updates, |mut row, (id, r)| {
            row.push_bind(*id).push_bind(&r.name).push_bind(&r.code);
        });
        qb.push(") update departments set name = v.name, code = v.code, deleted_at = null, updated_at = ")
            .push_bind(now)
            .push(" from v where departments.tenant_id = ")
            .push_bind(tenant)
            .push(" and departments.id = v.id");
        qb.build().execute(&mut *c).await.map(drop)
    })?;
    Ok(())
}

/// Soft-deletes these departments and records one `department.import` entry of `source`;
/// returns the ones it deleted (those already deleted, or unknown, are left as they are).
pub async fn delete_departments(
    tx: &mut TenantTx,
    ids: &[Uuid],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<Vec<Uuid>> {
    audit::soft_delete_batch(
        tx,
        "departments",
        "department",
        "department.import",
        ids,
        now,
        source,
    )
    .await
}
