//! `/api/v1/connectors`: the catalogue, partner packages, installations, uploads and runs.
//! Administrators only; every object of another tenant answers 404.

use std::sync::Arc;

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    types::multipart::Upload,
    ApiResponse, Multipart, OpenApi, Tags,
};
use trainflow_kernel::{
    auth::{NeedsIntegrations, TenantAuth, TokenGrants},
    body::{Body, File},
    envelope::{created, ok, Created, Data, List, Ok200, Page},
    ApiError, ApiResult,
};
use uuid::Uuid;

use crate::{
    catalogue::CatalogueEntry,
    installations::{CreateInstallation, Installation, UploadedFile},
    manifest::MAX_COMPONENT_BYTES,
    runs::{Run, StartRun},
    Integrations,
};

#[derive(Tags)]
enum Tag {
    /// Connectors: catalogue, packages, installations and runs.
    Connectors,
}

/// A partner package: `manifest` (JSON) and `component` (the `.wasm` file); no other parts.
#[derive(Debug, Multipart)]
#[oai(deny_unknown_fields)]
pub struct PackageUpload {
    /// The manifest, as JSON text.
    pub manifest: String,
    /// The WebAssembly component.
    pub component: Upload,
}

/// 202 Accepted with `{"data": T}`.
#[derive(ApiResponse)]
pub enum Accepted {
    /// Started; poll `GET /connectors/runs/{id}`.
    #[oai(status = 202)]
    Accepted(Json<Data<Run>>),
}

/// The connectors API.
pub struct ConnectorsApi {
    pub svc: Arc<Integrations>,
}

#[OpenApi(prefix_path = "/api/v1/connectors", tag = "Tag::Connectors")]
impl ConnectorsApi {
    /// The catalogue: first-party connectors and this organisation's uploaded packages, with the
    /// capabilities each asks for and its configuration schema.
    #[oai(path = "/", method = "get")]
    async fn catalogue(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<CatalogueEntry>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let all = self.svc.catalogue_for(&auth.0).await?;
        let total = all.len() as i64;
        let rows = all
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.limit() as usize)
            .collect();
        Ok(page.list(rows, total))
    }

    /// Upload a partner package (multipart: `manifest`, `component`). Validated before it is
    /// accepted: manifest fields, SHA-256, a compilable `trainflow:connector` component whose
    /// own description matches; at most 20 MiB.
    #[oai(path = "/packages", method = "post")]
    async fn upload_package(
        &self,
        auth: TenantAuth,
        _may: TokenGrants<NeedsIntegrations>,
        form: PackageUpload,
    ) -> ApiResult<Created<CatalogueEntry>> {
        if form.component.size() > MAX_COMPONENT_BYTES {
            return Err(ApiError::field(
                "component",
                "a component may be at most 20 MiB",
            ));
        }
        let component = form
            .component
            .into_vec()
            .await
            .map_err(|e| ApiError::field("component", e.to_string()))?;
        let entry = self
            .svc
            .upload_package(&auth.0, form.manifest.as_bytes(), component)
            .await?;
        Ok(created(entry))
    }

    /// This organisation's installations.
    #[oai(path = "/installations", method = "get")]
    async fn installations(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Installation>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = self.svc.installations(&auth.0, page).await?;
        Ok(page.list(rows, total))
    }

    /// Install a connector: configuration validated against its schema and by the connector,
    /// credentials encrypted (never returned), an optional cron schedule.
    #[oai(path = "/installations", method = "post")]
    async fn install(
        &self,
        auth: TenantAuth,
        body: Body<CreateInstallation>,
    ) -> ApiResult<Created<Installation>> {
        Ok(created(self.svc.install(&auth.0, body.0).await?))
    }

    /// One installation.
    #[oai(path = "/installations/:id", method = "get")]
    async fn installation(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
    ) -> ApiResult<Ok200<Installation>> {
        Ok(ok(self.svc.installation(&auth.0, id.0).await?))
    }

    /// Upload a file for the installation to import (the request body is the file).
    #[oai(path = "/installations/:id/files", method = "post")]
    async fn upload_file(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// The file's name, for the run history.
        #[oai(validator(
            max_length = 255,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        ))]
        filename: Query<String>,
        mut body: File,
    ) -> ApiResult<Created<UploadedFile>> {
        Ok(created(
            self.svc
                .upload_file(&auth.0, id.0, &filename.0, &mut body)
                .await?,
        ))
    }

    /// The files uploaded for an installation, newest first.
    #[oai(path = "/installations/:id/files", method = "get")]
    async fn files(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<UploadedFile>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = self.svc.files(&auth.0, id.0, page).await?;
        Ok(page.list(rows, total))
    }

    /// Run an installation now (202; the run continues in the background). The body may be
    /// `{}`; `{"dry_run": true}` runs it dry: every page is read and applied in a transaction
    /// that is rolled back, and the run keeps only its report (counts and a sample of the
    /// changes per stream). 409 while another run of it is in progress.
    #[oai(path = "/installations/:id/runs", method = "post")]
    async fn run_now(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<StartRun>,
    ) -> ApiResult<Accepted> {
        let run = self.svc.run_now(&auth.0, id.0, body.0).await?;
        Ok(Accepted::Accepted(Json(Data { data: run })))
    }

    /// The run history of an installation, newest first.
    #[oai(path = "/installations/:id/runs", method = "get")]
    async fn runs(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Run>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = self.svc.runs(&auth.0, id.0, page).await?;
        Ok(page.list(rows, total))
    }

    /// One run: status, counts, record errors, logs, duration, instructions and memory.
    #[oai(path = "/runs/:id", method = "get")]
    async fn run(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Run>> {
        Ok(ok(self.svc.run(&auth.0, id.0).await?))
    }

    /// Confirm the deletions a full-refresh run held back (it would have deactivated more than
    /// 20% of the organisation's active people).
    #[oai(path = "/runs/:id/confirm", method = "post")]
    async fn confirm(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Run>> {
        Ok(ok(self.svc.confirm(&auth.0, id.0).await?))
    }

    /// Apply a dry run as is: starts a real run of the same file (202). 409 unless it is the
    /// installation's newest run, a dry run that read everything, not applied yet, and the
    /// installation has not changed since.
    #[oai(path = "/runs/:id/apply", method = "post")]
    async fn apply(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Accepted> {
        let run = self.svc.apply_dry_run(&auth.0, id.0).await?;
        Ok(Accepted::Accepted(Json(Data { data: run })))
    }

    /// Abandon a run that is running (say its server stopped) or waiting for its deletions to
    /// be confirmed: the next run resumes from its last committed page, and held-back deletions
    /// are not applied. 409 for a run that has ended.
    #[oai(path = "/runs/:id/abandon", method = "post")]
    async fn abandon(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<Run>> {
        Ok(ok(self.svc.abandon(&auth.0, id.0).await?))
    }
}
