//! One page of connector entities, applied to the tenant's data inside the page's transaction.
//!
//! Every record is keyed by (tenant, installation, stream, external id) through
//! `connector_links`, so applying a page twice changes nothing the second time, and a run that
//! resumes after its last committed page neither duplicates nor loses records.
//!
//! The contexts that own the data apply it, a page at a time and under their own rules, and
//! record what the page changed in the audit log, attributed to the run:
//!
//! * Employees and org units become people and departments through identity's batch functions
//!   ([`trainflow_identity::batch`]): people matched by link, then by email (adopting a person
//!   created by hand), invited when new; departments matched by link, then code, then name.
//!   Connectors never change a role and never deactivate an administrator.
//! * Certifications, and their types (created by code when first seen), go through renewals'
//!   ([`trainflow_renewals::batch`]): an expiry defaults from the type's validity, and a newer
//!   cycle closes the previous one of the same person and type.
//! * Courses and completions go through learning's ([`trainflow_learning::batch`]): a course
//!   matched by link, then by code (adopting one made in the portal); a completion completes
//!   the person's open enrolment in the course.
//!
//! This module parses the connector's entities into those records, resolves what they refer to
//! through the links, and writes the links. A record that cannot be applied is reported with its
//! external id and the reason; the rest of the page is applied. Every step is set-based, so a
//! page of 1,000 costs a handful of round trips.

use std::collections::{HashMap, HashSet};

use sqlx::QueryBuilder;
use time::{Date, OffsetDateTime};
use trainflow_connectors::{
    Certification, Completion, Course, Deletion, Employee, Entity, EntityKind, OrgUnit,
};
use trainflow_identity::batch::{
    self as identity, DepartmentRecord, DepartmentRef, PeoplePage, PersonRecord,
};
use trainflow_kernel::{
    audit::BatchSource,
    db::{Conn, TenantTx},
    domain::{EmailAddress, PhoneNumber},
    sql, ApiResult,
};
use trainflow_learning::batch::{self as learning, CompletionRecord, CourseRecord};
use trainflow_renewals::batch::{self as renewals, CertificationRecord};
use uuid::Uuid;

/// Where a page belongs.
#[derive(Debug, Clone)]
pub struct PageContext {
    pub installation: Uuid,
    /// The run applying the page (named in the audit entries of what it changes).
    pub run: Uuid,
    pub stream: String,
    /// The pass this page belongs to: links seen in it carry this id, so a full refresh knows
    /// what the source no longer has.
    pub generation: Uuid,
    pub now: OffsetDateTime,
    /// The portal's URL, for the welcome messages of the people the page adds.
    pub public_url: String,
    /// A dry run's page: applied to be rolled back, so nobody is welcomed.
    pub dry_run: bool,
}

impl PageContext {
    /// Who the audit entries of this page name.
    fn source(&self) -> BatchSource {
        run_source(self.installation, self.run).with("stream", self.stream.clone())
    }
}

/// The actor of a run's changes in the audit log: the connector installation, about the run.
pub fn run_source(installation: Uuid, run: Uuid) -> BatchSource {
    BatchSource::new("connector", Some(installation))
        .object("connector_run", run)
        .with("installation_id", installation.to_string())
        .with("run_id", run.to_string())
}

/// Changes of each action a page keeps as a sample (all of them are counted).
pub const CHANGE_SAMPLE: usize = 20;

/// What a page did to one record: created, updated (which fields) or deactivated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Create,
    Update,
    Deactivate,
}

impl ChangeAction {
    pub const ALL: [ChangeAction; 3] = [Self::Create, Self::Update, Self::Deactivate];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Deactivate => "deactivate",
        }
    }
}

/// One change of a page's sample.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: ChangeAction,
    /// The record's external id.
    pub reference: String,
    /// The fields an update changed (empty when not known).
    pub fields: Vec<&'static str>,
}

/// What applying a page did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub created: u32,
    pub updated: u32,
    pub deactivated: u32,
    /// Records that were accepted and already up to date.
    pub unchanged: u32,
    /// (reference, reason) of each record that was not applied.
    pub errors: Vec<(String, String)>,
    /// (reference, caveat) of records applied with a caveat ("imported without a department").
    pub warnings: Vec<(String, String)>,
    /// The first [`CHANGE_SAMPLE`] changes of each action.
    pub changes: Vec<Change>,
    sampled: [usize; 3],
}

impl Applied {
    fn reject(&mut self, reference: &str, reason: impl Into<String>) {
        self.errors.push((reference.to_string(), reason.into()));
    }

    fn warn(&mut self, reference: &str, caveat: impl Into<String>) {
        self.warnings.push((reference.to_string(), caveat.into()));
    }

    /// Counts a change and keeps it in the sample while there is room for its action.
    pub fn note(&mut self, action: ChangeAction, reference: &str, fields: &[&'static str]) {
        match action {
            ChangeAction::Create => self.created += 1,
            ChangeAction::Update => self.updated += 1,
            ChangeAction::Deactivate => self.deactivated += 1,
        }
        let sampled = &mut self.sampled[action as usize];
        if *sampled < CHANGE_SAMPLE {
            *sampled += 1;
            self.changes.push(Change {
                action,
                reference: reference.to_string(),
                fields: fields.to_vec(),
            });
        }
    }

    /// Records the page accepted: created, updated, deactivated or already up to date.
    pub fn accepted(&self) -> u32 {
        self.created + self.updated + self.deactivated + self.unchanged
    }

    /// Counts an identity outcome; the id to link, when the record was applied.
    fn count_identity(&mut self, reference: &str, outcome: identity::Outcome) -> Option<Uuid> {
        let id = outcome.id();
        match outcome {
            identity::Outcome::Created(_) => self.note(ChangeAction::Create, reference, &[]),
            identity::Outcome::Updated(_, fields) => {
                self.note(ChangeAction::Update, reference, &fields)
            }
            identity::Outcome::Deactivated(_, fields) => {
                self.note(ChangeAction::Deactivate, reference, &fields)
            }
            identity::Outcome::Deleted(_) => self.note(ChangeAction::Deactivate, reference, &[]),
            identity::Outcome::Unchanged(_) => self.unchanged += 1,
            identity::Outcome::Rejected(reason) => self.reject(reference, reason),
        }
        id
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
        certifications(tx, ctx, certs, &mut out).await?;
    }
    if !deletions.is_empty() {
        delete_entities(tx, ctx, deletions, &mut out).await?;
    }
    Ok(out)
}

/// The last record of each key, in the order the keys first appear.
fn last_per_key<T>(items: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<T> {
    let mut position_of: HashMap<String, usize> = HashMap::new();
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        match position_of.get(key(&item)) {
            Some(&i) => kept[i] = item,
            None => {
                position_of.insert(key(&item).to_string(), kept.len());
                kept.push(item);
            }
        }
    }
    kept
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
    found.extend(identity::people_by_reference(tx, &missing).await?);
    Ok(found)
}

/// Which of these TrainFlow ids the links of this installation's stream already stand for.
async fn linked_in_stream(
    tx: &mut TenantTx,
    ctx: &PageContext,
    ids: &[Uuid],
) -> ApiResult<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant();
    let rows: Vec<(Uuid,)> = sql!(tx.conn() => |c| {
        let mut qb = QueryBuilder::new("select entity_id from connector_links where tenant_id = ");
        qb.push_bind(tenant).push(" and installation_id = ").push_bind(ctx.installation)
            .push(" and stream = ").push_bind(&ctx.stream).push(" and entity_id in (");
        let mut list = qb.separated(", ");
        for id in ids { list.push_bind(*id); }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await
    })?;
    Ok(rows.into_iter().map(|r| r.0).collect())
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

fn parse_person(e: Employee) -> Result<PersonRecord, String> {
    let first_name = e.first_name.trim().to_string();
    let last_name = e.last_name.trim().to_string();
    if first_name.chars().count() > 100 {
        return Err("first name must be at most 100 characters".into());
    }
    if last_name.chars().count() > 100 {
        return Err("last name must be at most 100 characters".into());
    }
    let email = match e.email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Some(EmailAddress::parse(raw).map_err(|m| format!("email {m}"))?),
        None => None,
    };
    let phone = match e.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Some(PhoneNumber::parse(raw).map_err(|m| format!("phone {m}"))?),
        None => None,
    };
    let clip = |v: Option<String>, max: usize, what: &str| -> Result<Option<String>, String> {
        match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(s) if s.len() > max => Err(format!("{what} must be at most {max} characters")),
            other => Ok(other),
        }
    };
    let employee_number = clip(e.employee_number, 50, "employee number")?;
    let position = clip(e.position, 100, "position")?;
    // Frontline exports often carry no names: the person is shown by job role and employee
    // number ("Track Operative 10234") and flagged "profile incomplete" until someone adds one.
    let derived_name = first_name.is_empty() && last_name.is_empty();
    let (first_name, last_name) = if derived_name {
        (
            position.clone().unwrap_or_else(|| "Employee".into()),
            employee_number
                .clone()
                .unwrap_or_else(|| e.external_id.chars().take(100).collect()),
        )
    } else {
        (first_name, last_name)
    };
    Ok(PersonRecord {
        email,
        phone,
        employee_number,
        department: clip(e.org_unit_external_id, 200, "org unit")?.map(DepartmentRef::Key),
        position,
        external_id: e.external_id,
        linked: None,
        first_name,
        last_name,
        active: e.active,
        derived_name,
    })
}

async fn employees(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Employee>,
    out: &mut Applied,
) -> ApiResult<()> {
    // Parse; the last record of an external id in a page wins.
    let mut parsed = Vec::with_capacity(items.len());
    for e in items {
        let reference = e.external_id.clone();
        if reference.is_empty() || reference.len() > 200 {
            out.reject(&reference, "external id must be 1 to 200 characters");
            continue;
        }
        match parse_person(e) {
            Ok(p) => parsed.push(p),
            Err(reason) => out.reject(&reference, reason),
        }
    }
    let mut people = last_per_key(parsed, |p| p.external_id.as_str());
    if people.is_empty() {
        return Ok(());
    }
    let linked = {
        let ext: Vec<&str> = people.iter().map(|p| p.external_id.as_str()).collect();
        stream_links(tx, ctx, &ext).await?
    };
    // Org units this installation linked to departments; identity resolves the others by code
    // or name.
    let units = {
        let orgs: Vec<&str> = people
            .iter()
            .filter_map(|p| match &p.department {
                Some(DepartmentRef::Key(k)) => Some(k.as_str()),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        kind_links(tx, ctx, EntityKind::OrgUnit, &orgs).await?
    };
    for p in &mut people {
        p.linked = linked.get(&p.external_id).copied();
        if let Some(DepartmentRef::Key(k)) = &p.department {
            if let Some(id) = units.get(k) {
                p.department = Some(DepartmentRef::Id(*id));
            }
        }
    }
    let references: Vec<String> = people.iter().map(|p| p.external_id.clone()).collect();
    let mut page = PeoplePage::load(tx, people).await?;
    // People adopted by email must not already stand for another record of this source.
    let candidates = page.adoptions();
    let taken = linked_in_stream(tx, ctx, &candidates).await?;
    page.refuse_adoption(taken);
    let results = page.apply(tx, ctx.now, &ctx.source()).await?;
    // The people the page added are welcomed (those who can be reached and sign in).
    let added: Vec<Uuid> = results
        .iter()
        .filter_map(|r| match r.outcome {
            identity::Outcome::Created(id) => Some(id),
            _ => None,
        })
        .collect();
    if !ctx.dry_run {
        trainflow_identity::account_links::welcome(tx, &added, &ctx.public_url, ctx.now).await?;
    }
    let mut links = Vec::with_capacity(results.len());
    for (reference, r) in references.into_iter().zip(results) {
        if let Some(warning) = r.warning {
            out.warn(&reference, warning);
        }
        if let Some(id) = out.count_identity(&reference, r.outcome) {
            links.push((reference, id));
        }
    }
    save_links(tx, ctx, EntityKind::Employee, &links).await
}

// ---------------------------------------------------------------------------------------------
// Org units

async fn org_units(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<OrgUnit>,
    out: &mut Applied,
) -> ApiResult<()> {
    let mut parsed = Vec::with_capacity(items.len());
    for u in last_per_key(items, |u| u.external_id.as_str()) {
        let name = u.name.trim();
        if name.is_empty() || name.len() > 100 || u.external_id.is_empty() {
            out.reject(&u.external_id, "name must be 1 to 100 characters");
            continue;
        }
        let record = DepartmentRecord {
            linked: None,
            name: name.to_string(),
            code: u
                .code
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        };
        parsed.push((u.external_id, record));
    }
    if parsed.is_empty() {
        return Ok(());
    }
    let linked = {
        let ext: Vec<&str> = parsed.iter().map(|(e, _)| e.as_str()).collect();
        stream_links(tx, ctx, &ext).await?
    };
    let (references, records): (Vec<String>, Vec<DepartmentRecord>) = parsed
        .into_iter()
        .map(|(e, mut r)| {
            r.linked = linked.get(&e).copied();
            (e, r)
        })
        .unzip();
    let outcomes = identity::apply_departments(tx, &records, ctx.now, &ctx.source()).await?;
    let mut links = Vec::with_capacity(outcomes.len());
    for (reference, outcome) in references.into_iter().zip(outcomes) {
        if let Some(id) = out.count_identity(&reference, outcome) {
            links.push((reference, id));
        }
    }
    save_links(tx, ctx, EntityKind::OrgUnit, &links).await
}

// ---------------------------------------------------------------------------------------------
// Courses and completions

/// A date of a connector's record, in the range TrainFlow computes with (1900–2999).
fn parse_date(raw: &str, what: &str) -> Result<Date, String> {
    let date = Date::parse(
        raw.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| format!("{what} `{raw}` is not a date (YYYY-MM-DD)"))?;
    trainflow_renewals::dates::in_range(date).map_err(|_| {
        format!(
            "{what} `{raw}` {}",
            trainflow_renewals::dates::RANGE_MESSAGE
        )
    })
}

async fn upsert_courses(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Course>,
    out: &mut Applied,
) -> ApiResult<()> {
    let items = last_per_key(items, |c| c.external_id.as_str());
    let ext: Vec<&str> = items.iter().map(|c| c.external_id.as_str()).collect();
    let linked = stream_links(tx, ctx, &ext).await?;
    let records: Vec<CourseRecord> = items
        .iter()
        .map(|c| CourseRecord {
            linked: linked.get(&c.external_id).copied(),
            code: c.code.clone(),
            title: c.title.clone(),
            description: c.description.clone(),
            duration_hours: c.duration_hours,
        })
        .collect();
    let outcomes = learning::apply_courses(tx, &records, ctx.now, &ctx.source()).await?;
    let mut links = Vec::new();
    for (course, outcome) in items.iter().zip(outcomes) {
        let reference = &course.external_id;
        match outcome {
            learning::Outcome::Created(id) => {
                out.note(ChangeAction::Create, reference, &[]);
                links.push((reference.clone(), id));
            }
            learning::Outcome::Updated(id) => {
                out.note(ChangeAction::Update, reference, &[]);
                links.push((reference.clone(), id));
            }
            learning::Outcome::Rejected(reason) => out.reject(reference, reason),
        }
    }
    save_links(tx, ctx, EntityKind::Course, &links).await
}

async fn upsert_completions(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Completion>,
    out: &mut Applied,
) -> ApiResult<()> {
    let items = last_per_key(items, |c| c.external_id.as_str());
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
    let mut courses = kind_links(tx, ctx, EntityKind::Course, &course_refs).await?;
    let mut references = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    for item in &items {
        let Some(user_id) = people.get(&item.employee_external_id).copied() else {
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
        let course_id = match courses.get(&item.course_external_id) {
            Some(id) => *id,
            None => {
                let id =
                    learning::course_for_reference(tx, &item.course_external_id, ctx.now).await?;
                courses.insert(item.course_external_id.clone(), id);
                id
            }
        };
        records.push(CompletionRecord {
            linked: linked.get(&item.external_id).copied(),
            user_id,
            course_id,
            completed_on,
            score: item.score,
        });
        references.push(item.external_id.clone());
    }
    let outcomes = learning::apply_completions(tx, &records, ctx.now, &ctx.source()).await?;
    let mut links = Vec::new();
    for (reference, outcome) in references.into_iter().zip(outcomes) {
        match outcome {
            learning::Outcome::Created(id) => {
                out.note(ChangeAction::Create, &reference, &[]);
                links.push((reference, id));
            }
            learning::Outcome::Updated(id) => {
                out.note(ChangeAction::Update, &reference, &[]);
                links.push((reference, id));
            }
            learning::Outcome::Rejected(reason) => out.reject(&reference, reason),
        }
    }
    save_links(tx, ctx, EntityKind::Completion, &links).await
}

// ---------------------------------------------------------------------------------------------
// Certifications

async fn certifications(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Certification>,
    out: &mut Applied,
) -> ApiResult<()> {
    let items = last_per_key(items, |c| c.external_id.as_str());
    let linked = {
        let ext: Vec<&str> = items.iter().map(|c| c.external_id.as_str()).collect();
        stream_links(tx, ctx, &ext).await?
    };
    let people = {
        let refs: Vec<&str> = items
            .iter()
            .map(|c| c.employee_external_id.as_str())
            .collect();
        resolve_people(tx, ctx, &refs).await?
    };
    let mut references = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let Some(user_id) = people.get(&item.employee_external_id).copied() else {
            out.reject(
                &item.external_id,
                format!("unknown employee `{}`", item.employee_external_id),
            );
            continue;
        };
        let dates = parse_date(&item.issued_on, "issue date").and_then(|issued| {
            let expires = item
                .expires_on
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_date(s, "expiry date"))
                .transpose()?;
            Ok((issued, expires))
        });
        let (issued_on, expires_on) = match dates {
            Ok(d) => d,
            Err(reason) => {
                out.reject(&item.external_id, reason);
                continue;
            }
        };
        records.push(CertificationRecord {
            linked: linked.get(&item.external_id).copied(),
            user_id,
            type_code: item.certification_type,
            issued_on,
            expires_on,
            certificate_number: item.certificate_number,
        });
        references.push(item.external_id);
    }
    let outcomes =
        renewals::apply_certifications(tx, &records, "connector", ctx.now, &ctx.source()).await?;
    let mut links = Vec::with_capacity(outcomes.len());
    for (reference, outcome) in references.into_iter().zip(outcomes) {
        let id = outcome.id();
        match outcome {
            renewals::Outcome::Created(_) => out.note(ChangeAction::Create, &reference, &[]),
            renewals::Outcome::Updated(_, fields) => {
                out.note(ChangeAction::Update, &reference, &fields)
            }
            renewals::Outcome::Unchanged(_) => out.unchanged += 1,
            renewals::Outcome::Rejected(reason) => out.reject(&reference, reason),
        }
        if let Some(id) = id {
            links.push((reference, id));
        }
    }
    save_links(tx, ctx, EntityKind::Certification, &links).await
}

// ---------------------------------------------------------------------------------------------
// Deletions

const KINDS: [EntityKind; 5] = [
    EntityKind::Employee,
    EntityKind::OrgUnit,
    EntityKind::Course,
    EntityKind::Completion,
    EntityKind::Certification,
];

/// Soft-deletes what the page's deletions name, kind by kind.
async fn delete_entities(
    tx: &mut TenantTx,
    ctx: &PageContext,
    items: Vec<Deletion>,
    out: &mut Applied,
) -> ApiResult<()> {
    let source = ctx.source();
    for kind in KINDS {
        let refs: Vec<&str> = items
            .iter()
            .filter(|d| d.entity == kind)
            .map(|d| d.external_id.as_str())
            .collect();
        if refs.is_empty() {
            continue;
        }
        // Never imported (or already gone): nothing to do.
        let found = kind_links(tx, ctx, kind, &refs).await?;
        let mut reference_of: HashMap<Uuid, &str> = HashMap::new();
        let mut ids = Vec::new();
        for r in refs {
            if let Some(id) = found.get(r) {
                if reference_of.insert(*id, r).is_none() {
                    ids.push(*id);
                }
            }
        }
        let (deleted, refused) = delete_ids(tx, kind, &ids, ctx.now, &source).await?;
        for id in deleted {
            out.note(
                ChangeAction::Deactivate,
                reference_of.get(&id).copied().unwrap_or_default(),
                &[],
            );
        }
        for (id, reason) in refused {
            out.reject(reference_of.get(&id).copied().unwrap_or_default(), reason);
        }
    }
    Ok(())
}

/// Soft-deletes imported objects of one kind through the context that owns them; people are
/// also deactivated and signed out, administrators left alone. Returns the ids deleted and the
/// (id, reason) of those left alone.
pub async fn delete_ids(
    tx: &mut TenantTx,
    kind: EntityKind,
    ids: &[Uuid],
    now: OffsetDateTime,
    source: &BatchSource,
) -> ApiResult<(Vec<Uuid>, Vec<(Uuid, String)>)> {
    if ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let deleted = match kind {
        EntityKind::Employee => {
            let mut deleted = Vec::new();
            let mut refused = Vec::new();
            for (id, outcome) in ids
                .iter()
                .zip(identity::delete_people(tx, ids, now, source).await?)
            {
                match outcome {
                    identity::Outcome::Deleted(_) => deleted.push(*id),
                    identity::Outcome::Rejected(reason) => refused.push((*id, reason)),
                    _ => {}
                }
            }
            return Ok((deleted, refused));
        }
        EntityKind::OrgUnit => identity::delete_departments(tx, ids, now, source).await?,
        EntityKind::Certification => renewals::delete_certifications(tx, ids, now, source).await?,
        EntityKind::Course => learning::delete_courses(tx, ids, now, source).await?,
        EntityKind::Completion => learning::delete_completions(tx, ids, now, source).await?,
    };
    Ok((deleted, Vec::new()))
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
