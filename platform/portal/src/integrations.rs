//! The integrations pages: the catalogue, partner package upload, installing a connector (with
//! what it may do shown first), uploads, runs and their history. Administrators only; every
//! action goes through the same `Integrations` use cases as the API.

use std::{collections::BTreeMap, sync::Arc};

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Multipart, Path, Query, Redirect},
    IntoResponse, Request,
};
use serde::Deserialize;
use trainflow_integrations::{
    installations::{CreateInstallation, Installation, SyncMode, UploadedFile},
    runs::{Run, StartRun},
    CatalogueEntry, Integrations,
};
use trainflow_kernel::{auth::Permission, db::TenantTx, ApiError};
use uuid::Uuid;

use crate::{
    pages::{check_csrf, field_errors, render, require, Errors, Nav, PageResult},
    Portal,
};

macro_rules! admin_or_return {
    ($portal:expr, $req:expr, $jar:expr) => {{
        let s = match require($portal, $req, $jar).await {
            Ok(s) => s,
            Err(resp) => return Ok(resp),
        };
        if !s.user.role.grants(Permission::Integrations) {
            return Err(ApiError::Forbidden.into());
        }
        s
    }};
}

fn svc(portal: &Portal) -> poem::Result<&Arc<Integrations>> {
    portal
        .integrations
        .as_ref()
        .ok_or_else(|| ApiError::NotFound.into())
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    nav: Option<Nav>,
    csrf: String,
    catalogue: Vec<CatalogueEntry>,
    installations: Vec<Installation>,
    notice: Option<String>,
    errors: Errors,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// The catalogue and this organisation's installations.
#[handler]
pub async fn index(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    index_page(&portal, &s, q.0.notice, Errors::default(), StatusCode::OK).await
}

async fn index_page(
    portal: &Portal,
    s: &trainflow_identity::signin::PortalSession,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let svc = svc(portal)?;
    let (mut tx, _) = TenantTx::begin(&svc.db, &s.ctx, Permission::Integrations).await?;
    let catalogue = svc.catalogue(&mut tx).await?;
    tx.commit().await?;
    let installations = svc.installations(&s.ctx).await?;
    let notice = notice.map(|n| match n.as_str() {
        "package" => "Package uploaded; it is now in the catalogue.".to_string(),
        _ => "Done.".to_string(),
    });
    render(
        &IntegrationsPage {
            nav: Some(Nav::new(s, "integrations")),
            csrf: s.csrf_token.clone(),
            catalogue,
            installations,
            notice,
            errors,
        },
        status,
    )
}

/// Reads a multipart form into text fields and (name, bytes) files.
async fn read_multipart(
    mut form: Multipart,
) -> poem::Result<(
    BTreeMap<String, String>,
    BTreeMap<String, (String, Vec<u8>)>,
)> {
    let (mut fields, mut files) = (BTreeMap::new(), BTreeMap::new());
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(file_name) => {
                let bytes = field.bytes().await?;
                files.insert(name, (file_name, bytes));
            }
            None => {
                fields.insert(name, field.text().await?);
            }
        }
    }
    Ok((fields, files))
}

/// Uploads a partner package (manifest file + component file).
#[handler]
pub async fn upload_package(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    form: Multipart,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    let (fields, files) = read_multipart(form).await?;
    check_csrf(&s, fields.get("csrf").map(String::as_str).unwrap_or(""))?;
    let manifest = files
        .get("manifest")
        .map(|f| f.1.clone())
        .unwrap_or_default();
    let component = files
        .get("component")
        .map(|f| f.1.clone())
        .unwrap_or_default();
    match svc(&portal)?
        .upload_package(&s.ctx, &manifest, component)
        .await
    {
        Ok(_) => Ok(Redirect::see_other("/portal/integrations?notice=package").into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            index_page(&portal, &s, None, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

#[derive(Template)]
#[template(path = "install_form.html")]
struct InstallPage {
    nav: Option<Nav>,
    csrf: String,
    entry: CatalogueEntry,
    schema: String,
    form: InstallForm,
    errors: Errors,
}

#[derive(Deserialize, Default, Clone)]
pub struct InstallForm {
    #[serde(default)]
    csrf: String,
    connector_id: String,
    #[serde(default)]
    package_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: String,
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    sync_mode: String,
    /// `secret.<name>` fields.
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub struct InstallQuery {
    connector: String,
    package: Option<Uuid>,
}

async fn entry_for(
    portal: &Portal,
    s: &trainflow_identity::signin::PortalSession,
    connector: &str,
    package: Option<Uuid>,
) -> poem::Result<CatalogueEntry> {
    let svc = svc(portal)?;
    let (mut tx, _) = TenantTx::begin(&svc.db, &s.ctx, Permission::Integrations).await?;
    let catalogue = svc.catalogue(&mut tx).await?;
    tx.commit().await?;
    catalogue
        .into_iter()
        .find(|e| e.connector_id == connector && (package.is_none() || e.package_id == package))
        .ok_or_else(|| ApiError::NotFound.into())
}

fn install_page(
    s: &trainflow_identity::signin::PortalSession,
    entry: CatalogueEntry,
    form: InstallForm,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let schema = serde_json::to_string_pretty(&entry.config_schema).unwrap_or_default();
    render(
        &InstallPage {
            nav: Some(Nav::new(s, "integrations")),
            csrf: s.csrf_token.clone(),
            entry,
            schema,
            form,
            errors,
        },
        status,
    )
}

/// The install form, with what the connector may do.
#[handler]
pub async fn install_form(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    q: Query<InstallQuery>,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    let entry = entry_for(&portal, &s, &q.connector, q.package).await?;
    let form = InstallForm {
        connector_id: entry.connector_id.clone(),
        package_id: entry.package_id.map(|p| p.to_string()).unwrap_or_default(),
        name: entry.name.clone(),
        config: "{}".into(),
        sync_mode: "incremental".into(),
        ..InstallForm::default()
    };
    install_page(&s, entry, form, Errors::default(), StatusCode::OK)
}

/// Installs a connector.
#[handler]
pub async fn install(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    form: Form<InstallForm>,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    let f = form.0;
    check_csrf(&s, &f.csrf)?;
    let package = f.package_id.parse::<Uuid>().ok();
    let entry = entry_for(&portal, &s, &f.connector_id, package).await?;
    let result = match serde_json::from_str::<serde_json::Value>(&f.config) {
        Err(e) => Err(ApiError::field("config", format!("is not JSON: {e}"))),
        Ok(config) => {
            let credentials: BTreeMap<String, String> = f
                .rest
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("secret.")
                        .filter(|_| !v.is_empty())
                        .map(|name| (name.to_string(), v.clone()))
                })
                .collect();
            let body = CreateInstallation {
                connector_id: f.connector_id.clone(),
                package_id: package,
                name: f.name.clone(),
                config,
                credentials: (!credentials.is_empty()).then_some(credentials),
                http_hosts: None,
                schedule: (!f.schedule.trim().is_empty()).then(|| f.schedule.clone()),
                sync_mode: Some(if f.sync_mode == "full_refresh" {
                    SyncMode::FullRefresh
                } else {
                    SyncMode::Incremental
                }),
            };
            svc(&portal)?.install(&s.ctx, body).await
        }
    };
    match result {
        Ok(inst) => Ok(Redirect::see_other(format!(
            "/portal/integrations/installations/{}",
            inst.id
        ))
        .into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            let f = InstallForm {
                rest: BTreeMap::new(),
                ..f
            };
            install_page(&s, entry, f, errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

#[derive(Template)]
#[template(path = "installation.html")]
struct InstallationPage {
    nav: Option<Nav>,
    csrf: String,
    inst: Installation,
    reads_file: bool,
    files: Vec<UploadedFile>,
    runs: Vec<Run>,
    config: String,
    notice: Option<String>,
    errors: Errors,
}

/// One installation: configuration, uploads, run now, history.
#[handler]
pub async fn installation_view(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    let notice = q.0.notice.map(|n| match n.as_str() {
        "uploaded" => "File uploaded. Run the import when you are ready.".to_string(),
        _ => "Done.".to_string(),
    });
    installation_page(&portal, &s, id.0, notice, Errors::default(), StatusCode::OK).await
}

async fn installation_page(
    portal: &Portal,
    s: &trainflow_identity::signin::PortalSession,
    id: Uuid,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let svc = svc(portal)?;
    let inst = svc.installation(&s.ctx, id).await?;
    let entry = entry_for(portal, s, &inst.connector_id, inst.package_id).await?;
    let files = svc.files(&s.ctx, id).await?;
    let runs = svc.runs(&s.ctx, id).await?;
    let config = serde_json::to_string_pretty(&inst.config).unwrap_or_default();
    render(
        &InstallationPage {
            nav: Some(Nav::new(s, "integrations")),
            csrf: s.csrf_token.clone(),
            reads_file: entry.capabilities.file,
            inst,
            files,
            runs,
            config,
            notice,
            errors,
        },
        status,
    )
}

/// Uploads a file for an installation.
#[handler]
pub async fn upload_file(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
    form: Multipart,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    let (fields, files) = read_multipart(form).await?;
    check_csrf(&s, fields.get("csrf").map(String::as_str).unwrap_or(""))?;
    let (name, bytes) = files.get("file").cloned().unwrap_or_default();
    match svc(&portal)?.upload_file(&s.ctx, id.0, &name, bytes).await {
        Ok(_) => Ok(Redirect::see_other(format!(
            "/portal/integrations/installations/{}?notice=uploaded",
            id.0
        ))
        .into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            installation_page(
                &portal,
                &s,
                id.0,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Starts a run now.
#[handler]
pub async fn run_now(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
    form: Form<CsrfForm>,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    check_csrf(&s, &form.csrf)?;
    match svc(&portal)?
        .run_now(&s.ctx, id.0, StartRun::default())
        .await
    {
        Ok(run) => Ok(
            Redirect::see_other(format!("/portal/integrations/runs/{}", run.id)).into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            installation_page(
                &portal,
                &s,
                id.0,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: Option<Nav>,
    csrf: String,
    run: Run,
    installation: Installation,
}

/// One run: status, counts, record errors and logs. Refreshes itself while it runs.
#[handler]
pub async fn run_view(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    let svc = svc(&portal)?;
    let run = svc.run(&s.ctx, id.0).await?;
    let installation = svc.installation(&s.ctx, run.installation_id).await?;
    render(
        &RunPage {
            nav: Some(Nav::new(&s, "integrations")),
            csrf: s.csrf_token.clone(),
            run,
            installation,
        },
        StatusCode::OK,
    )
}

/// Confirms the deletions a full refresh held back.
#[handler]
pub async fn confirm(
    req: &Request,
    jar: &CookieJar,
    portal: Data<&Arc<Portal>>,
    id: Path<Uuid>,
    form: Form<CsrfForm>,
) -> PageResult {
    let s = admin_or_return!(&portal, req, jar);
    check_csrf(&s, &form.csrf)?;
    svc(&portal)?.confirm(&s.ctx, id.0).await?;
    Ok(Redirect::see_other(format!("/portal/integrations/runs/{}", id.0)).into_response())
}
