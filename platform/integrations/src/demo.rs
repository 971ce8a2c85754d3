//! The integrations part of a tenant manifest: `[[connector_installations]]`, each installed by
//! a named administrator and, when it is created, run once on an inline file, so a demo tenant
//! shows an installation with a finished run and the people it imported; optionally a newer
//! file is then run dry, so it also shows a dry run waiting to be applied.

use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc};

use anyhow::Context;
use serde::Deserialize;
use trainflow_kernel::{
    auth::Permission,
    db::TenantTx,
    manifest::{anyhow_api, Created, ManifestPart, ManifestScope},
    sql,
};
use uuid::Uuid;

use crate::{installations::CreateInstallation, Integrations};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallationSpec {
    /// Unique among the tenant's installations; an existing one is left as it is.
    name: String,
    /// A catalogue connector id, e.g. `com.trainflow.csv`.
    connector: String,
    /// The email of the administrator who installs it (named in the audit trail).
    installed_by: String,
    config: serde_json::Value,
    /// A file to import once, when the installation is created: its name and content.
    file_name: Option<String>,
    file: Option<String>,
    /// A newer file, run dry after that first run: a dry run waiting to be applied.
    dry_run_file_name: Option<String>,
    dry_run_file: Option<String>,
}

/// The part the server registers.
pub struct DemoPart(pub Arc<Integrations>);

const SECTIONS: &[&str] = &["connector_installations"];

impl ManifestPart for DemoPart {
    fn sections(&self) -> &'static [&'static str] {
        SECTIONS
    }

    fn apply<'a>(
        &'a self,
        scope: &'a ManifestScope<'a>,
        sections: &'a BTreeMap<String, serde_json::Value>,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Created>> + Send + 'a>> {
        Box::pin(self.apply_sections(scope, sections))
    }
}

impl DemoPart {
    async fn apply_sections(
        &self,
        scope: &ManifestScope<'_>,
        sections: &BTreeMap<String, serde_json::Value>,
    ) -> anyhow::Result<Created> {
        let specs: Vec<InstallationSpec> = match sections.get("connector_installations") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v.clone()).context("connector_installations")?,
        };
        let (mut installed, mut runs) = (0, 0);
        for spec in specs {
            let admin = scope.person("connector_installations.installed_by", &spec.installed_by)?;
            anyhow::ensure!(
                admin.role.grants(Permission::Integrations),
                "connector_installations.installed_by: {} may not manage integrations",
                spec.installed_by
            );
            let mut tx = TenantTx::begin_system(scope.db, scope.tenant)
                .await
                .map_err(anyhow_api)?;
            let tenant = tx.tenant();
            let existing: Option<Uuid> = sql!(tx.conn() => |c| sqlx::query_scalar(
                "select id from connector_installations where tenant_id = $1 and name = $2 and deleted_at is null")
                .bind(tenant).bind(&spec.name).fetch_optional(&mut *c).await)
                .map_err(|e| anyhow_api(e.into()))?;
            tx.commit().await.map_err(anyhow_api)?;
            if existing.is_some() {
                continue;
            }
            let installation = self
                .0
                .install(
                    admin,
                    CreateInstallation {
                        connector_id: spec.connector.clone(),
                        package_id: None,
                        name: spec.name.clone(),
                        config: spec.config.clone(),
                        credentials: None,
                        http_hosts: None,
                        schedule: None,
                        sync_mode: None,
                    },
                )
                .await
                .map_err(anyhow_api)
                .with_context(|| format!("installing {}", spec.name))?;
            installed += 1;
            if let Some(content) = spec.file {
                let name = spec.file_name.unwrap_or_else(|| "import.csv".into());
                let run = self
                    .0
                    .run_as_system(
                        scope.tenant,
                        installation.id,
                        Some((name, content.into_bytes())),
                        false,
                    )
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("the first run of {}", spec.name))?;
                anyhow::ensure!(
                    run.status != "failed",
                    "the first run of {} failed: {:?}",
                    spec.name,
                    run.error
                );
                runs += 1;
            }
            if let Some(content) = spec.dry_run_file {
                let name = spec
                    .dry_run_file_name
                    .unwrap_or_else(|| "import.csv".into());
                let run = self
                    .0
                    .run_as_system(
                        scope.tenant,
                        installation.id,
                        Some((name, content.into_bytes())),
                        true,
                    )
                    .await
                    .map_err(anyhow_api)
                    .with_context(|| format!("the dry run of {}", spec.name))?;
                anyhow::ensure!(
                    run.status != "failed",
                    "the dry run of {} failed: {:?}",
                    spec.name,
                    run.error
                );
                runs += 1;
            }
        }
        Ok(vec![
            ("connector installations", installed),
            ("connector runs", runs),
        ])
    }
}
