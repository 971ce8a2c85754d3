//! Declarative tenant manifests: `tenants/<slug>/tenant.toml` describes a tenant, its
//! departments and people, and — in sections other contexts own, applied through their
//! [`ManifestPart`]s — their data (certification types, certifications, renewals, …).
//! Applying one is idempotent: what exists is left as it is (passwords included), what is
//! missing is created.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use serde::Deserialize;
use trainflow_identity::{
    api::{departments, insert_department},
    password::Hasher,
    service,
    users::CreateUser,
};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Role, TenantCtx},
    db::{Db, TenantTx},
    manifest::{ManifestPart, ManifestScope},
    TenantId, UserId,
};
use uuid::Uuid;

use crate::tenants::{self, NewTenant, Operator};

/// A tenant manifest.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub tenant: TenantSpec,
    #[serde(default)]
    pub departments: Vec<DepartmentSpec>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Every other top-level section, for the part that claims it (an unclaimed one is an
    /// error when the manifest is applied).
    #[serde(flatten)]
    pub parts: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    pub slug: String,
    pub name: String,
    pub domain: Option<String>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    /// The channels the tenant offers its people, set when the tenant is created (default
    /// in-app and email).
    pub notification_channels: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentSpec {
    pub name: String,
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Absent for people without email, who then need an employee number.
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub department: Option<String>,
    pub position: Option<String>,
    pub phone: Option<String>,
    pub employee_number: Option<String>,
    /// Demo manifests only; real tenants invite people instead.
    pub password: Option<String>,
    /// Demo manifests only: a sign-in PIN (6–10 digits) for a person without email.
    pub pin: Option<String>,
    /// The email of the person's foreman (who is told what a person without email or phone
    /// cannot be told, and may set their PIN).
    pub foreman: Option<String>,
    /// The email of the person's line manager.
    pub manager: Option<String>,
}

impl UserSpec {
    /// How errors name this person.
    fn label(&self) -> String {
        self.email
            .clone()
            .or_else(|| self.employee_number.clone())
            .unwrap_or_else(|| format!("{} {}", self.first_name, self.last_name))
    }
}

/// What applying a manifest did.
#[derive(Debug, Default)]
pub struct Applied {
    pub tenant_created: bool,
    pub departments_created: usize,
    pub users_created: usize,
    /// What the other contexts' parts created, by kind.
    pub parts_created: Vec<(&'static str, usize)>,
}

/// Reads `dir/tenant.toml`.
pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("tenant.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Parses a manifest's text.
pub fn parse(text: &str) -> anyhow::Result<Manifest> {
    Ok(toml::from_str(text)?)
}

/// Applies a manifest: the tenant, its departments and people, then each of `parts` in order.
pub async fn apply(
    db: &Db,
    hasher: &Hasher,
    m: &Manifest,
    parts: &[&dyn ManifestPart],
) -> anyhow::Result<Applied> {
    if let Some(unclaimed) = m
        .parts
        .keys()
        .find(|k| !parts.iter().any(|p| p.sections().contains(&k.as_str())))
    {
        anyhow::bail!("unknown manifest section `{unclaimed}`");
    }
    let mut applied = Applied::default();
    let tenant = match tenants::by_slug(db, &m.tenant.slug)
        .await
        .map_err(anyhow_api)?
    {
        Some(t) => t,
        None => {
            let fields = NewTenant {
                slug: m.tenant.slug.clone(),
                name: m.tenant.name.clone(),
                domain: m.tenant.domain.clone(),
                time_zone: m.tenant.time_zone.clone(),
                locale: m.tenant.locale.clone(),
            }
            .parse()
            .map_err(anyhow_api)?;
            applied.tenant_created = true;
            tenants::create(db, fields, &Operator::Cli)
                .await
                .map_err(anyhow_api)?
        }
    };
    let tenant_id = TenantId(tenant.id);

    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system(db, tenant_id)
        .await
        .map_err(anyhow_api)?;
    if let (true, Some(channels)) = (applied.tenant_created, &m.tenant.notification_channels) {
        let mut settings = tenant.settings.clone();
        settings.notification_channels = channels.clone();
        settings.validate().map_err(anyhow_api)?;
        tenants::update_settings(
            &mut tx,
            &tenant.name,
            &tenant.time_zone,
            &tenant.locale,
            &settings,
            now,
        )
        .await
        .map_err(anyhow_api)?;
    }
    let existing = departments(&mut tx).await.map_err(anyhow_api)?;
    for d in &m.departments {
        trainflow_kernel::domain::bounded(&d.name, 1, 100)
            .map_err(|e| anyhow::anyhow!("department name {e}"))?;
        if !existing.iter().any(|e| e.name == d.name) {
            let dept = insert_department(&mut tx, &d.name, d.code.clone(), now)
                .await
                .map_err(anyhow_api)?;
            audit::record(
                &mut tx,
                Entry::as_actor("system", None, "department.create", None)
                    .object("department", dept.id),
                now,
            )
            .await
            .map_err(anyhow_api)?;
            applied.departments_created += 1;
        }
    }
    let departments = departments(&mut tx).await.map_err(anyhow_api)?;
    tx.commit().await.map_err(anyhow_api)?;

    let mut lines: Vec<(Uuid, Option<&str>, Option<&str>)> = Vec::new();
    for u in &m.users {
        let department_id = match &u.department {
            Some(name) => Some(
                departments
                    .iter()
                    .find(|d| &d.name == name)
                    .map(|d| d.id)
                    .with_context(|| format!("user {}: unknown department {name}", u.label()))?,
            ),
            None => None,
        };
        if service::login_taken(
            db,
            tenant_id,
            u.email.as_deref(),
            u.employee_number.as_deref(),
        )
        .await
        .map_err(anyhow_api)?
        {
            continue;
        }
        let body = CreateUser {
            email: u.email.clone(),
            username: None,
            first_name: Some(u.first_name.clone()),
            last_name: Some(u.last_name.clone()),
            phone: u.phone.clone(),
            address: None,
            employee_number: u.employee_number.clone(),
            department_id,
            position: u.position.clone(),
            gender: None,
            role: Some(u.role),
            is_active: Some(true),
            password: u.password.clone().map(Into::into),
        };
        let user = service::create_user_as_system(db, hasher, tenant_id, body)
            .await
            .map_err(anyhow_api)
            .with_context(|| format!("user {}", u.label()))?;
        if u.foreman.is_some() || u.manager.is_some() {
            lines.push((user.id, u.foreman.as_deref(), u.manager.as_deref()));
        }
        if let Some(pin) = &u.pin {
            service::set_pin_as_system(db, hasher, tenant_id, user.id, pin)
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("user {}: pin", u.label()))?;
        }
        applied.users_created += 1;
    }

    if !lines.is_empty() {
        let people = service::people_by_email(db, tenant_id)
            .await
            .map_err(anyhow_api)?;
        let find = |email: Option<&str>, what: &str| -> anyhow::Result<Option<Uuid>> {
            email
                .map(|email| {
                    people
                        .iter()
                        .find(|(e, _, _)| e.eq_ignore_ascii_case(email))
                        .map(|p| p.1)
                        .with_context(|| format!("unknown {what} {email}"))
                })
                .transpose()
        };
        for (user, foreman, manager) in lines {
            let foreman = find(foreman, "foreman")?;
            let manager = find(manager, "manager")?;
            service::set_reporting_lines_as_system(db, tenant_id, user, foreman, manager)
                .await
                .map_err(anyhow_api)?;
        }
    }

    if !parts.is_empty() {
        let people: BTreeMap<String, TenantCtx> = service::people_by_email(db, tenant_id)
            .await
            .map_err(anyhow_api)?
            .into_iter()
            .map(|(email, id, role)| {
                let ctx = TenantCtx {
                    tenant_id,
                    user_id: UserId(id),
                    role,
                    ip: None,
                };
                (email, ctx)
            })
            .collect();
        let scope = ManifestScope {
            db,
            tenant: tenant_id,
            people: &people,
            now: trainflow_kernel::now(),
        };
        for part in parts {
            let mut sections = BTreeMap::new();
            for key in part.sections() {
                let value = match m.parts.get(*key) {
                    Some(v) => serde_json::to_value(v)?,
                    None => serde_json::Value::Null,
                };
                sections.insert((*key).to_string(), value);
            }
            applied
                .parts_created
                .extend(part.apply(&scope, &sections).await?);
        }
    }
    Ok(applied)
}

pub use trainflow_kernel::manifest::anyhow_api;
