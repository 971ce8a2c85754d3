//! The integrations pages: the catalogue, partner package upload, installing a connector (with
//! what it may do shown first), uploads, runs and their history. Administrators only; every
//! action goes through the same `Integrations` use cases as the API.

use poem::{get, post, EndpointExt, Route};
use trainflow_kernel::ApiResult;
use trainflow_web::{BoxFuture, Card, CardSource, NavEntry, Session};

/// The integrations entry of the navigation bar (administrators).
pub fn nav() -> Vec<NavEntry> {
    vec![NavEntry {
        key: "integrations",
        label: "Integrations",
        href: "/portal/integrations",
        order: 80,
        permission: Some(Permission::Integrations),
    }]
}

/// The dashboard card of those who answer for imports (administrators and training
/// officers): installations and their newest runs; the link to manage them for administrators.
pub struct Cards(pub Arc<Integrations>);

impl CardSource for Cards {
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>> {
        Box::pin(async move {
            if !session.role.grants(Permission::ImportsRead) {
                return Ok(Vec::new());
            }
            let summary = self.0.imports_summary(&session.ctx, 5).await?;
            Ok(vec![Card {
                order: 40,
                title: "Imports".into(),
                value: Some(summary.installations.to_string()),
                text: if summary.recent.is_empty() {
                    "Connector installations. No import has run yet.".into()
                } else {
                    "Connector installations, and their newest runs.".into()
                },
                columns: if summary.recent.is_empty() {
                    Vec::new()
                } else {
                    vec!["Started", "Installation", "Outcome"]
                },
                rows: summary
                    .recent
                    .iter()
                    .map(|r| {
                        vec![
                            session.local_time(r.started_at),
                            r.installation.clone(),
                            r.outcome(),
                        ]
                    })
                    .collect(),
                link: session
                    .role
                    .grants(Permission::Integrations)
                    .then(|| ("/portal/integrations".into(), "Open integrations".into())),
            }])
        })
    }
}

/// Mounts the integrations pages on `route` (the portal's, nested under `/portal`).
pub fn mount(route: Route, svc: Arc<Integrations>) -> Route {
    route
        .at("/integrations", get(index).data(svc.clone()))
        .at(
            "/integrations/packages",
            post(upload_package).data(svc.clone()),
        )
        .at(
            "/integrations/install",
            get(install_form).post(install).data(svc.clone()),
        )
        .at(
            "/integrations/installations/:id",
            get(installation_view).data(svc.clone()),
        )
        .at(
            "/integrations/installations/:id/files",
            post(upload_file).data(svc.clone()),
        )
        .at(
            "/integrations/installations/:id/runs",
            post(run_now).data(svc.clone()),
        )
        .at("/integrations/runs/:id", get(run_view).data(svc.clone()))
        .at(
            "/integrations/runs/:id/confirm",
            post(confirm).data(svc.clone()),
        )
        .at(
            "/integrations/runs/:id/abandon",
            post(abandon).data(svc.clone()),
        )
        .at(
            "/integrations/runs/:id/apply",
            post(apply_dry_run).data(svc),
        )
}

use std::{collections::BTreeMap, sync::Arc};

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Multipart, Path, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::{auth::Permission, envelope::Page, ApiError};
use trainflow_web::{
    field_errors, notice, portal_page, render, Errors, LocalTimes, Nav, NoFields, PageResult,
    Pager, SignedIn, Submitted, SubmittedMultipart,
};
use uuid::Uuid;

use crate::{
    installations::{CreateInstallation, Installation, SyncMode, UploadedFile},
    runs::{Run, RunChange, StartRun},
    CatalogueEntry, Integrations,
};

/// The pages are for those who manage integrations; the use cases check again.
fn admin(me: &SignedIn) -> Result<(), ApiError> {
    if me.session.role.grants(Permission::Integrations) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    nav: Option<Nav>,
    csrf: String,
    catalogue: Vec<CatalogueEntry>,
    installations: Vec<Installation>,
    pager: Pager,
    notice: Option<&'static str>,
    errors: Errors,
}

#[derive(Deserialize)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
    /// The page of the list the page shows.
    page: Option<u32>,
}

/// Installations a page of the index shows.
const INSTALLATIONS_PER_PAGE: u32 = 50;
/// Files and runs the installation page shows (the newest; the API pages through all).
const LATEST: Page = Page {
    page: 1,
    per_page: 20,
};

/// The catalogue and this organisation's installations.
#[handler]
async fn index(me: SignedIn, svc: Data<&Arc<Integrations>>, q: Query<NoticeQuery>) -> PageResult {
    admin(&me)?;
    let notice = notice(
        q.0.notice.as_deref(),
        &[("package", "Package uploaded; it is now in the catalogue.")],
    );
    index_page(
        &svc,
        &me,
        q.0.page,
        notice,
        Errors::default(),
        StatusCode::OK,
    )
    .await
}

async fn index_page(
    svc: &Integrations,
    me: &SignedIn,
    list_page: Option<u32>,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let catalogue = svc.catalogue_for(me.ctx()).await?;
    let list_page = portal_page(list_page, INSTALLATIONS_PER_PAGE)?;
    let (installations, total) = svc.installations(me.ctx(), list_page).await?;
    let pager = Pager::new(list_page, total, |n| {
        format!("/portal/integrations?page={n}")
    });
    render(
        &IntegrationsPage {
            nav: me.nav("integrations"),
            csrf: me.csrf().to_string(),
            catalogue,
            installations,
            pager,
            notice,
            errors,
        },
        status,
    )
}

/// Reads the rest of a multipart form (after its CSRF token) into text fields and
/// (name, bytes) files.
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
async fn upload_package(
    svc: Data<&Arc<Integrations>>,
    SubmittedMultipart(me, form): SubmittedMultipart,
) -> PageResult {
    admin(&me)?;
    let (_, mut files) = read_multipart(form).await?;
    let manifest = files.remove("manifest").map(|f| f.1).unwrap_or_default();
    let component = files.remove("component").map(|f| f.1).unwrap_or_default();
    match svc.upload_package(me.ctx(), &manifest, component).await {
        Ok(_) => Ok(Redirect::see_other("/portal/integrations?notice=package").into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            index_page(
                &svc,
                &me,
                None,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
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
pub(crate) struct InstallForm {
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
pub(crate) struct InstallQuery {
    connector: String,
    package: Option<Uuid>,
}

fn install_page(
    me: &SignedIn,
    entry: CatalogueEntry,
    form: InstallForm,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let schema = serde_json::to_string_pretty(&entry.config_schema).unwrap_or_default();
    render(
        &InstallPage {
            nav: me.nav("integrations"),
            csrf: me.csrf().to_string(),
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
async fn install_form(
    me: SignedIn,
    svc: Data<&Arc<Integrations>>,
    q: Query<InstallQuery>,
) -> PageResult {
    admin(&me)?;
    let entry = svc
        .catalogue_entry(me.ctx(), &q.connector, q.package)
        .await?;
    let form = InstallForm {
        connector_id: entry.connector_id.clone(),
        package_id: entry.package_id.map(|p| p.to_string()).unwrap_or_default(),
        name: entry.name.clone(),
        config: "{}".into(),
        sync_mode: "incremental".into(),
        ..InstallForm::default()
    };
    install_page(&me, entry, form, Errors::default(), StatusCode::OK)
}

/// Installs a connector.
#[handler]
async fn install(
    svc: Data<&Arc<Integrations>>,
    Submitted(me, f): Submitted<InstallForm>,
) -> PageResult {
    admin(&me)?;
    let package = f.package_id.parse::<Uuid>().ok();
    let entry = svc
        .catalogue_entry(me.ctx(), &f.connector_id, package)
        .await?;
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
            svc.install(me.ctx(), body).await
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
            install_page(&me, entry, f, errors, StatusCode::UNPROCESSABLE_ENTITY)
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
    files_total: i64,
    runs: Vec<Run>,
    runs_total: i64,
    times: LocalTimes,
    config: String,
    notice: Option<&'static str>,
    errors: Errors,
}

/// One installation: configuration, uploads, run now, history.
#[handler]
async fn installation_view(
    me: SignedIn,
    svc: Data<&Arc<Integrations>>,
    id: Path<Uuid>,
    q: Query<NoticeQuery>,
) -> PageResult {
    admin(&me)?;
    let notice = notice(
        q.0.notice.as_deref(),
        &[(
            "uploaded",
            "File uploaded. Run the import when you are ready.",
        )],
    );
    installation_page(&svc, &me, id.0, notice, Errors::default(), StatusCode::OK).await
}

async fn installation_page(
    svc: &Integrations,
    me: &SignedIn,
    id: Uuid,
    notice: Option<&'static str>,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let inst = svc.installation(me.ctx(), id).await?;
    let entry = svc
        .catalogue_entry(me.ctx(), &inst.connector_id, inst.package_id)
        .await?;
    let (files, files_total) = svc.files(me.ctx(), id, LATEST).await?;
    let (runs, runs_total) = svc.runs(me.ctx(), id, LATEST).await?;
    let config = serde_json::to_string_pretty(&inst.config).unwrap_or_default();
    render(
        &InstallationPage {
            nav: me.nav("integrations"),
            csrf: me.csrf().to_string(),
            reads_file: entry.capabilities.file,
            inst,
            files,
            files_total,
            runs,
            runs_total,
            times: me.session.times(),
            config,
            notice,
            errors,
        },
        status,
    )
}

/// Uploads a file for an installation.
#[handler]
async fn upload_file(
    svc: Data<&Arc<Integrations>>,
    id: Path<Uuid>,
    SubmittedMultipart(me, form): SubmittedMultipart,
) -> PageResult {
    admin(&me)?;
    // The installation must exist before the file is read.
    svc.installation(me.ctx(), id.0).await?;
    let (_, mut files) = read_multipart(form).await?;
    let (name, bytes) = files.remove("file").unwrap_or_default();
    let mut file = trainflow_kernel::body::File::from_bytes(bytes);
    match svc.upload_file(me.ctx(), id.0, &name, &mut file).await {
        Ok(_) => Ok(Redirect::see_other(format!(
            "/portal/integrations/installations/{}?notice=uploaded",
            id.0
        ))
        .into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            installation_page(
                &svc,
                &me,
                id.0,
                None,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// The run-now form: a real run, or a dry run when its `dry_run` button was pressed.
#[derive(Debug, Deserialize)]
struct RunForm {
    #[serde(default)]
    dry_run: Option<String>,
}

/// Starts a run (or a dry run) now.
#[handler]
async fn run_now(
    svc: Data<&Arc<Integrations>>,
    id: Path<Uuid>,
    Submitted(me, form): Submitted<RunForm>,
) -> PageResult {
    admin(&me)?;
    let body = StartRun {
        dry_run: Some(form.dry_run.is_some()),
        ..StartRun::default()
    };
    match svc.run_now(me.ctx(), id.0, body).await {
        Ok(run) => Ok(
            Redirect::see_other(format!("/portal/integrations/runs/{}", run.id)).into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            installation_page(
                &svc,
                &me,
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
    errors: Errors,
}

/// The sample's changes of one action, as the run page lists them.
struct ChangeGroup<'a> {
    heading: &'static str,
    /// Whether the changes name fields (updates do).
    fields: bool,
    changes: Vec<&'a RunChange>,
}

impl RunPage {
    /// The sample of changes by action, leaving out actions with none.
    fn change_groups(&self) -> Vec<ChangeGroup<'_>> {
        let dry = self.run.dry_run;
        [
            ("create", if dry { "Would be created" } else { "Created" }),
            ("update", if dry { "Would be updated" } else { "Updated" }),
            (
                "deactivate",
                if dry {
                    "Would be removed or deactivated"
                } else {
                    "Removed or deactivated"
                },
            ),
        ]
        .into_iter()
        .map(|(action, heading)| ChangeGroup {
            heading,
            fields: action == "update",
            changes: self
                .run
                .changes
                .iter()
                .filter(|c| c.action == action)
                .collect(),
        })
        .filter(|g| !g.changes.is_empty())
        .collect()
    }
}

/// One run: status, counts, the sample of changes, record errors and logs. Refreshes itself
/// while it runs.
#[handler]
async fn run_view(me: SignedIn, svc: Data<&Arc<Integrations>>, id: Path<Uuid>) -> PageResult {
    admin(&me)?;
    run_page(&svc, &me, id.0, Errors::default(), StatusCode::OK).await
}

async fn run_page(
    svc: &Integrations,
    me: &SignedIn,
    id: Uuid,
    errors: Errors,
    status: StatusCode,
) -> PageResult {
    let run = svc.run(me.ctx(), id).await?;
    let installation = svc.installation(me.ctx(), run.installation_id).await?;
    render(
        &RunPage {
            nav: me.nav("integrations"),
            csrf: me.csrf().to_string(),
            run,
            installation,
            errors,
        },
        status,
    )
}

/// Confirms the deletions a full refresh held back.
#[handler]
async fn confirm(
    svc: Data<&Arc<Integrations>>,
    id: Path<Uuid>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    admin(&me)?;
    svc.confirm(me.ctx(), id.0).await?;
    Ok(Redirect::see_other(format!("/portal/integrations/runs/{}", id.0)).into_response())
}

/// Applies a dry run: a real run of the same file.
#[handler]
async fn apply_dry_run(
    svc: Data<&Arc<Integrations>>,
    id: Path<Uuid>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    admin(&me)?;
    match svc.apply_dry_run(me.ctx(), id.0).await {
        Ok(run) => Ok(
            Redirect::see_other(format!("/portal/integrations/runs/{}", run.id)).into_response(),
        ),
        Err(e) => {
            let errors = field_errors(e)?;
            run_page(&svc, &me, id.0, errors, StatusCode::CONFLICT).await
        }
    }
}

/// Abandons a run that is running or waiting for confirmation.
#[handler]
async fn abandon(
    svc: Data<&Arc<Integrations>>,
    id: Path<Uuid>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    admin(&me)?;
    svc.abandon(me.ctx(), id.0).await?;
    Ok(Redirect::see_other(format!("/portal/integrations/runs/{}", id.0)).into_response())
}
