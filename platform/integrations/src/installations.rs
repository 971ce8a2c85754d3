//! Packages, installations and uploaded files: the tenant-scoped rows, and the use cases that
//! validate and write them (each in one tenant transaction, audited).

use std::{collections::BTreeMap, sync::Arc};

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::OffsetDateTime;
use trainflow_connectors::{CallError, ConnectorError, Grants};
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, TenantCtx},
    body::File,
    db::{unique_violation_field, TenantTx},
    domain::bounded,
    envelope::Page,
    sql, ApiError, ApiResult, FieldErrors,
};
use uuid::Uuid;

use crate::{
    catalogue::{CatalogueEntry, FIRST_PARTY_PREFIX},
    manifest::{host_within, Manifest, MAX_COMPONENT_BYTES},
    schema::validate_config,
    Integrations,
};

/// How a run treats records the source no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Upsert what the source sends; delete only what it reports deleted.
    Incremental,
    /// The source sends everything: what it no longer has is soft-deleted at the end of a run.
    FullRefresh,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Incremental => "incremental",
            SyncMode::FullRefresh => "full_refresh",
        }
    }

    pub fn parse(s: &str) -> SyncMode {
        if s == "full_refresh" {
            SyncMode::FullRefresh
        } else {
            SyncMode::Incremental
        }
    }
}

/// An installed connector.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Installation {
    pub id: Uuid,
    pub connector_id: String,
    /// The uploaded package it runs (none for first-party connectors).
    pub package_id: Option<Uuid>,
    pub name: String,
    /// Its configuration (validated against the connector's schema).
    pub config: serde_json::Value,
    /// Names of the stored credentials; their values are never returned.
    pub credential_names: Vec<String>,
    /// Hosts this installation may call (a subset of what the connector declares).
    pub http_hosts: Vec<String>,
    /// Cron schedule (`minute hour day month weekday`, UTC), if it runs on one.
    pub schedule: Option<String>,
    pub sync_mode: SyncMode,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
pub(crate) struct InstallationRow {
    id: Uuid,
    connector_id: String,
    package_id: Option<Uuid>,
    name: String,
    config: Json<serde_json::Value>,
    credential_names: Json<Vec<String>>,
    pub(crate) credentials: Option<Vec<u8>>,
    http_hosts: Json<Vec<String>>,
    schedule: Option<String>,
    sync_mode: String,
    enabled: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<InstallationRow> for Installation {
    fn from(r: InstallationRow) -> Self {
        Self {
            id: r.id,
            connector_id: r.connector_id,
            package_id: r.package_id,
            name: r.name,
            config: r.config.0,
            credential_names: r.credential_names.0,
            http_hosts: r.http_hosts.0,
            schedule: r.schedule,
            sync_mode: SyncMode::parse(&r.sync_mode),
            enabled: r.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const INSTALLATION_COLUMNS: &str = "id, connector_id, package_id, name, config, credential_names, \
     credentials, http_hosts, schedule, sync_mode, enabled, created_at, updated_at";

/// Body of `POST /connectors/installations`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct CreateInstallation {
    /// A catalogue connector id (`GET /connectors`).
    #[oai(validator(
        max_length = 64,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub connector_id: String,
    /// A specific uploaded package of that connector (default: the first-party connector, else
    /// the newest package).
    #[oai(nullable)]
    pub package_id: Option<Uuid>,
    /// Unique among the tenant's installations.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
    /// Configuration; validated against the connector's `config_schema` (in the catalogue) and
    /// by the connector itself.
    pub config: serde_json::Value,
    /// Secret values (1–4096 characters) by name; only names the connector declares. Stored
    /// encrypted.
    #[oai(nullable, validator(min_length = 1, max_length = 4096))]
    pub credentials: Option<BTreeMap<String, String>>,
    /// Hosts it may call: a subset of what the connector declares (default: all of them).
    #[oai(nullable)]
    pub http_hosts: Option<Vec<String>>,
    /// Cron schedule, five fields `minute hour day month weekday` in UTC (e.g. `0 2 * * *`);
    /// blank: none.
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^ *(?:(?:[!-~]+ +){4}[!-~]+ *)?$")
    )]
    pub schedule: Option<String>,
    /// Default `incremental`.
    #[oai(nullable)]
    pub sync_mode: Option<SyncMode>,
}

/// An uploaded file.
#[derive(Debug, Clone, Object, Serialize, sqlx::FromRow)]
pub struct UploadedFile {
    pub id: Uuid,
    pub installation_id: Uuid,
    pub filename: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Integrations {
    /// The catalogue as tenant `tx` sees it: first-party connectors, then its packages.
    pub async fn catalogue(&self, tx: &mut TenantTx) -> ApiResult<Vec<CatalogueEntry>> {
        let tenant = tx.tenant();
        let rows: Vec<(Uuid, Json<Manifest>)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id, manifest from connector_packages where tenant_id = $1
              order by connector_id, created_at desc")
            .bind(tenant).fetch_all(&mut *c).await)?;
        let mut out: Vec<CatalogueEntry> = self
            .first_party_catalogue()
            .await?
            .iter()
            .map(|f| f.entry.clone())
            .collect();
        out.extend(
            rows.into_iter()
                .map(|(id, m)| CatalogueEntry::from_manifest(&m.0, id)),
        );
        Ok(out)
    }

    /// The catalogue, for a caller who may manage integrations.
    pub async fn catalogue_for(&self, ctx: &TenantCtx) -> ApiResult<Vec<CatalogueEntry>> {
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let entries = self.catalogue(&mut tx).await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// One catalogue entry: a first-party connector, or a package (the newest of a connector
    /// when `package` is not given).
    pub async fn catalogue_entry(
        &self,
        ctx: &TenantCtx,
        connector: &str,
        package: Option<Uuid>,
    ) -> ApiResult<CatalogueEntry> {
        self.catalogue_for(ctx)
            .await?
            .into_iter()
            .find(|e| e.connector_id == connector && (package.is_none() || e.package_id == package))
            .ok_or(ApiError::NotFound)
    }

    /// Checks that the caller may manage integrations, before any costly validation.
    async fn authorize(&self, ctx: &TenantCtx) -> ApiResult<TenantCtx> {
        let (tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        tx.commit().await?;
        Ok(ctx)
    }

    /// The catalogue entry of a connector for tenant `tx`: a named package, the first-party
    /// connector, or the tenant's newest package with that id. Reads the manifest only.
    pub(crate) async fn entry(
        &self,
        tx: &mut TenantTx,
        connector_id: &str,
        package_id: Option<Uuid>,
    ) -> ApiResult<CatalogueEntry> {
        if package_id.is_none() {
            if let Some(fp) = self.first_party(connector_id).await? {
                return Ok(fp.entry.clone());
            }
        }
        let tenant = tx.tenant();
        let row: Option<(Uuid, Json<Manifest>)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id, manifest from connector_packages
              where tenant_id = $1 and connector_id = $2 and ($3 is null or id = $3)
              order by created_at desc limit 1")
            .bind(tenant).bind(connector_id).bind(package_id).fetch_optional(&mut *c).await)?;
        let (id, manifest) = row.ok_or_else(|| {
            ApiError::field(
                if package_id.is_some() {
                    "package_id"
                } else {
                    "connector_id"
                },
                "no such connector in this organisation's catalogue",
            )
        })?;
        Ok(CatalogueEntry::from_manifest(&manifest.0, id))
    }

    /// The component of a catalogue entry: from memory for first-party connectors, else the
    /// uploaded package's bytes.
    pub(crate) async fn component(
        &self,
        tx: &mut TenantTx,
        entry: &CatalogueEntry,
    ) -> ApiResult<Arc<[u8]>> {
        let Some(package) = entry.package_id else {
            return self
                .first_party(&entry.connector_id)
                .await?
                .map(|fp| fp.component.clone())
                .ok_or(ApiError::NotFound);
        };
        let tenant = tx.tenant();
        let bytes: Vec<u8> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select component from connector_packages where tenant_id = $1 and id = $2")
            .bind(tenant).bind(package).fetch_one(&mut *c).await)?;
        Ok(Arc::from(bytes))
    }

    /// Validates and stores a partner package. The component must be the manifest's (SHA-256),
    /// compile, implement `trainflow:connector`, and describe itself with the manifest's id and
    /// version.
    pub async fn upload_package(
        &self,
        ctx: &TenantCtx,
        manifest_json: &[u8],
        component: Vec<u8>,
    ) -> ApiResult<CatalogueEntry> {
        // Who may upload is settled before anything is parsed or compiled.
        self.authorize(ctx).await?;
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(ApiError::field(
                "component",
                format!(
                    "is {} bytes; a component may be at most 20 MiB",
                    component.len()
                ),
            ));
        }
        if component.is_empty() {
            return Err(ApiError::field("component", "is required"));
        }
        let manifest = Manifest::parse(manifest_json)?;
        manifest.validate(&component, FIRST_PARTY_PREFIX)?;
        // Compiling takes a while for a large component: off the async workers.
        let host = self.host.clone();
        let bytes = Arc::<[u8]>::from(component);
        let wasm = bytes.clone();
        let digest = tokio::task::spawn_blocking(move || host.load(&wasm))
            .await
            .map_err(|e| anyhow::anyhow!("compiling the component: {e}"))?
            .map_err(|e| ApiError::field("component", format!("{e:#}")))?;
        let mut session = self
            .host
            .session(&digest, Grants::default(), self.settings.limits.clone())
            .await?;
        let info = session
            .describe()
            .await
            .map_err(|e| ApiError::field("component", format!("describe failed: {e}")))?;
        let mut errors = FieldErrors::new();
        if info.id != manifest.id {
            errors.add(
                "manifest.id",
                format!("the component describes itself as `{}`", info.id),
            );
        }
        if info.version != manifest.version {
            errors.add(
                "manifest.version",
                format!("the component describes itself as version {}", info.version),
            );
        }
        errors.into_result()?;

        let (mut tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let tenant = tx.tenant();
        let id = Uuid::now_v7();
        let now = trainflow_kernel::now();
        sql!(tx.conn() => |c| sqlx::query(
            "insert into connector_packages (tenant_id, id, connector_id, version, name, description,
                    manifest, sha256, size_bytes, component, uploaded_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(tenant).bind(id).bind(&manifest.id).bind(&manifest.version).bind(&manifest.name)
            .bind(&manifest.description).bind(Json(&manifest)).bind(&digest)
            .bind(bytes.len() as i64).bind(&bytes[..]).bind(ctx.user_id.0).bind(now)
            .execute(&mut *c).await.map(drop))
        .map_err(|e| match unique_violation_field(&e, "connector_packages") {
            Some(_) => ApiError::Conflict {
                field: "manifest.version".into(),
                message: format!("version {} of {} is already uploaded", manifest.version, manifest.id),
            },
            None => e.into(),
        })?;
        let entry = CatalogueEntry::from_manifest(&manifest, id);
        audit::record(
            &mut tx,
            Entry::by(&ctx, "connector.package_upload")
                .object("connector_package", id)
                .change(None, Some(serde_json::to_value(&entry).unwrap_or_default())),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Installs a connector for the caller's tenant.
    pub async fn install(
        &self,
        ctx: &TenantCtx,
        body: CreateInstallation,
    ) -> ApiResult<Installation> {
        let (mut tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let entry = &self
            .entry(&mut tx, &body.connector_id, body.package_id)
            .await?;
        let mut errors = FieldErrors::new();
        let name = errors.check("name", bounded(&body.name, 1, 100));
        let schedule = match body.schedule.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => errors.check("schedule", crate::schedule::parse(s).map(|_| s.to_string())),
        };
        let credentials = body.credentials.unwrap_or_default();
        for (key, value) in &credentials {
            if !entry.capabilities.secrets.contains(key) {
                errors.add(
                    format!("credentials.{key}"),
                    "the connector does not declare this credential",
                );
            } else if value.is_empty() || value.chars().count() > 4096 {
                errors.add(format!("credentials.{key}"), "must be 1 to 4096 characters");
            }
        }
        let http_hosts = body
            .http_hosts
            .unwrap_or_else(|| entry.capabilities.http_hosts.clone());
        for (i, host) in http_hosts.iter().enumerate() {
            if !host_within(&entry.capabilities.http_hosts, host) {
                errors.add(
                    format!("http_hosts[{i}]"),
                    "the connector does not declare this host",
                );
            }
        }
        errors.into_result()?;
        validate_config(&entry.config_schema, &body.config)?;
        let component = self.component(&mut tx, entry).await?;
        self.check_config(&component, &body.config).await?;

        let tenant = tx.tenant();
        let id = Uuid::now_v7();
        let now = trainflow_kernel::now();
        let sealed = if credentials.is_empty() {
            None
        } else {
            Some(self.key.seal(tenant.0, id, &credentials)?)
        };
        let names: Vec<String> = credentials.keys().cloned().collect();
        let sync_mode = body.sync_mode.unwrap_or(SyncMode::Incremental);
        sql!(tx.conn() => |c| sqlx::query(
            "insert into connector_installations (tenant_id, id, connector_id, package_id, name, config,
                    credential_names, credentials, http_hosts, schedule, sync_mode, enabled, created_by,
                    created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, true, $12, $13, $13)")
            .bind(tenant).bind(id).bind(&entry.connector_id).bind(entry.package_id)
            .bind(name.as_deref()).bind(Json(&body.config)).bind(Json(&names)).bind(sealed)
            .bind(Json(&http_hosts)).bind(&schedule).bind(sync_mode.as_str()).bind(ctx.user_id.0)
            .bind(now).execute(&mut *c).await.map(drop))
        .map_err(|e| match unique_violation_field(&e, "connector_installations") {
            Some(_) => ApiError::Conflict {
                field: "name".into(),
                message: "another installation has this name".into(),
            },
            None => e.into(),
        })?;
        let installation = get_installation(&mut tx, id).await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "connector.install")
                .object("connector_installation", id)
                .change(
                    None,
                    Some(serde_json::to_value(&installation).unwrap_or_default()),
                ),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(installation)
    }

    /// Asks the connector itself whether a configuration is usable.
    async fn check_config(&self, component: &[u8], config: &serde_json::Value) -> ApiResult<()> {
        let digest = self.host.load(component)?;
        let mut session = self
            .host
            .session(&digest, Grants::default(), self.settings.limits.clone())
            .await?;
        match session.check(&config.to_string()).await {
            Ok(()) => Ok(()),
            Err(CallError::Connector(ConnectorError::Configuration(message))) => {
                Err(ApiError::field("config", message))
            }
            Err(other) => Err(ApiError::field(
                "config",
                format!("the connector could not check it: {other}"),
            )),
        }
    }

    /// Stores a file for an installation whose connector reads one.
    pub async fn upload_file(
        &self,
        ctx: &TenantCtx,
        installation: Uuid,
        filename: &str,
        file: &mut File,
    ) -> ApiResult<UploadedFile> {
        let filename = bounded(filename, 1, 255).map_err(|e| ApiError::field("filename", e))?;
        // Who may upload, and to what, is settled before a byte of the file is read, in a
        // transaction that ends before the client sends it (no lock is held meanwhile).
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        self.file_target(&mut tx, installation).await?;
        tx.commit().await?;
        let content = file.read(self.settings.max_file_bytes).await?;
        let now = trainflow_kernel::now();
        let (mut tx, ctx) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let file = self
            .store_file(
                &mut tx,
                installation,
                filename,
                content,
                Some(ctx.user_id.0),
            )
            .await?;
        audit::record(
            &mut tx,
            Entry::by(&ctx, "connector.file_upload")
                .object("connector_installation", installation)
                .detail(serde_json::to_value(&file).unwrap_or_default()),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(file)
    }

    /// The installation `installation`, when its connector reads files.
    async fn file_target(&self, tx: &mut TenantTx, installation: Uuid) -> ApiResult<Installation> {
        let inst = get_installation(tx, installation).await?;
        let entry = self.entry(tx, &inst.connector_id, inst.package_id).await?;
        if !entry.capabilities.file {
            return Err(ApiError::field(
                "file",
                "this connector does not read files",
            ));
        }
        Ok(inst)
    }

    /// Stores a file in `tx` for an installation whose connector reads files.
    pub(crate) async fn store_file(
        &self,
        tx: &mut TenantTx,
        installation: Uuid,
        filename: String,
        content: Vec<u8>,
        uploaded_by: Option<Uuid>,
    ) -> ApiResult<UploadedFile> {
        self.file_target(tx, installation).await?;
        let tenant = tx.tenant();
        let id = Uuid::now_v7();
        let now = trainflow_kernel::now();
        let sha256 = trainflow_kernel::secret::sha256_hex(&content);
        sql!(tx.conn() => |c| sqlx::query(
            "insert into connector_files (tenant_id, id, installation_id, filename, size_bytes, sha256,
                    content, uploaded_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(tenant).bind(id).bind(installation).bind(&filename).bind(content.len() as i64)
            .bind(&sha256).bind(&content).bind(uploaded_by).bind(now)
            .execute(&mut *c).await.map(drop))?;
        Ok(UploadedFile {
            id,
            installation_id: installation,
            filename,
            size_bytes: content.len() as i64,
            sha256,
            created_at: now,
        })
    }

    /// The catalogue and installations of a tenant, for the command line.
    pub async fn overview(
        &self,
        tenant: trainflow_kernel::TenantId,
    ) -> ApiResult<(Vec<CatalogueEntry>, Vec<Installation>)> {
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        let catalogue = self.catalogue(&mut tx).await?;
        let rows: Vec<InstallationRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
            "select {INSTALLATION_COLUMNS} from connector_installations
              where tenant_id = $1 and deleted_at is null order by name"))
            .bind(tenant).fetch_all(&mut *c).await)?;
        tx.commit().await?;
        Ok((catalogue, rows.into_iter().map(Into::into).collect()))
    }

    /// The caller's tenant's installations.
    pub async fn installations(
        &self,
        ctx: &TenantCtx,
        page: Page,
    ) -> ApiResult<(Vec<Installation>, i64)> {
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let tenant = tx.tenant();
        let (limit, offset) = (page.limit(), page.offset());
        let rows: Vec<InstallationRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
            "select {INSTALLATION_COLUMNS} from connector_installations
              where tenant_id = $1 and deleted_at is null order by name, id limit $2 offset $3"))
            .bind(tenant).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
        let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select count(*) from connector_installations where tenant_id = $1 and deleted_at is null")
            .bind(tenant).fetch_one(&mut *c).await)?;
        tx.commit().await?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }

    /// One installation of the caller's tenant.
    pub async fn installation(&self, ctx: &TenantCtx, id: Uuid) -> ApiResult<Installation> {
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        let inst = get_installation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(inst)
    }

    /// The files uploaded for an installation, newest first: one `page` and their number.
    pub async fn files(
        &self,
        ctx: &TenantCtx,
        installation: Uuid,
        page: Page,
    ) -> ApiResult<(Vec<UploadedFile>, i64)> {
        let (mut tx, _) = TenantTx::begin(&self.db, ctx, Permission::Integrations).await?;
        get_installation(&mut tx, installation).await?;
        let tenant = tx.tenant();
        let (limit, offset) = (page.limit(), page.offset());
        let files: Vec<UploadedFile> = sql!(tx.conn() => |c| sqlx::query_as(
            "select id, installation_id, filename, size_bytes, sha256, created_at from connector_files
              where tenant_id = $1 and installation_id = $2 order by created_at desc, id desc limit $3 offset $4")
            .bind(tenant).bind(installation).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
        let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select count(*) from connector_files where tenant_id = $1 and installation_id = $2")
            .bind(tenant).bind(installation).fetch_one(&mut *c).await)?;
        tx.commit().await?;
        Ok((files, total))
    }
}

/// One installation, by id, in `tx`'s tenant.
pub async fn get_installation(tx: &mut TenantTx, id: Uuid) -> ApiResult<Installation> {
    Ok(installation_row(tx, id).await?.into())
}

pub(crate) async fn installation_row(tx: &mut TenantTx, id: Uuid) -> ApiResult<InstallationRow> {
    let tenant = tx.tenant();
    let row: Option<InstallationRow> = sql!(tx.conn() => |c| sqlx::query_as(&format!(
        "select {INSTALLATION_COLUMNS} from connector_installations
          where tenant_id = $1 and id = $2 and deleted_at is null"))
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

impl InstallationRow {
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    pub(crate) fn connector_id(&self) -> &str {
        &self.connector_id
    }

    pub(crate) fn package_id(&self) -> Option<Uuid> {
        self.package_id
    }

    pub(crate) fn sync_mode(&self) -> &str {
        &self.sync_mode
    }

    pub(crate) fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    pub(crate) fn http_hosts(&self) -> &[String] {
        &self.http_hosts.0
    }

    pub(crate) fn config_json(&self) -> String {
        self.config.0.to_string()
    }
}
