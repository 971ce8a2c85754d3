//! HTTP API: platform operators manage tenants; tenant administrators manage their settings.

use poem_openapi::{
    param::{Header, Path, Query},
    payload::{Binary, Json},
    ApiResponse, Enum, Object, OpenApi, Tags,
};
use serde::Deserialize;
use trainflow_identity::signin::AuthDeps;
use trainflow_kernel::{
    auth::{client_ip, PlatformAuth, TenantAuth},
    body::{Body, File},
    envelope::{created, ok, Created, List, NoContent, Ok200, Page},
    ApiResult, TenantId,
};
use uuid::Uuid;

use crate::{
    service,
    tenants::{self, NewTenant, Operator, Tenant, TenantSettings},
};

#[derive(Tags)]
enum Tag {
    /// Platform operators: tenants above all tenants.
    Platform,
    /// The caller's own tenant.
    Tenant,
}

/// Body of `POST /platform/auth/token`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct OperatorTokenRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(max_length = 128))]
    pub password: String,
}

/// A tenant's lifecycle status (the `status` filter of `GET /platform/tenants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
    Deleted,
}

impl TenantStatus {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleted",
        }
    }
}

/// An operator token.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OperatorToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// Body of `PUT /tenant`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct UpdateTenant {
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
    /// An IANA time zone (`Europe/London`) or `UTC`.
    #[oai(validator(
        max_length = 64,
        pattern = r"^(?:UTC|[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)+)$"
    ))]
    pub time_zone: String,
    #[oai(validator(
        max_length = 10,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub locale: String,
    pub settings: TenantSettings,
}

/// The tenancy API.
pub struct TenancyApi {
    pub deps: AuthDeps,
}

#[OpenApi(prefix_path = "/api/v1")]
impl TenancyApi {
    /// Sign in as a platform operator.
    #[oai(path = "/platform/auth/token", method = "post", tag = "Tag::Platform")]
    async fn operator_token(
        &self,
        req: &poem::Request,
        body: Body<OperatorTokenRequest>,
    ) -> ApiResult<Ok200<OperatorToken>> {
        let token = service::operator_sign_in(
            &self.deps,
            &body.0.email,
            body.0.password,
            client_ip(req),
            trainflow_kernel::now(),
        )
        .await?;
        Ok(ok(token))
    }

    /// All tenants.
    #[oai(path = "/platform/tenants", method = "get", tag = "Tag::Platform")]
    async fn list_tenants(
        &self,
        _auth: PlatformAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
        status: Query<Option<TenantStatus>>,
    ) -> ApiResult<Json<List<Tenant>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let status = status.0.map(TenantStatus::as_str);
        let (rows, total) = tenants::list(&self.deps.db, status, page).await?;
        Ok(page.list(rows, total))
    }

    /// Create a tenant.
    #[oai(path = "/platform/tenants", method = "post", tag = "Tag::Platform")]
    async fn create_tenant(
        &self,
        auth: PlatformAuth,
        body: Body<NewTenant>,
    ) -> ApiResult<Created<Tenant>> {
        let fields = body.0.parse()?;
        let t = tenants::create(&self.deps.db, fields, &operator(&auth)).await?;
        Ok(created(t))
    }

    /// One tenant.
    #[oai(path = "/platform/tenants/:id", method = "get", tag = "Tag::Platform")]
    async fn get_tenant(&self, _auth: PlatformAuth, id: Path<Uuid>) -> ApiResult<Ok200<Tenant>> {
        Ok(ok(tenants::get(&self.deps.db, TenantId(id.0)).await?))
    }

    /// Suspend a tenant: its tokens and sessions stop working on their next request.
    #[oai(
        path = "/platform/tenants/:id/suspend",
        method = "post",
        tag = "Tag::Platform"
    )]
    async fn suspend(&self, auth: PlatformAuth, id: Path<Uuid>) -> ApiResult<Ok200<Tenant>> {
        Ok(ok(tenants::set_status(
            &self.deps.db,
            TenantId(id.0),
            "suspended",
            &operator(&auth),
        )
        .await?))
    }

    /// Reactivate a suspended tenant.
    #[oai(
        path = "/platform/tenants/:id/reactivate",
        method = "post",
        tag = "Tag::Platform"
    )]
    async fn reactivate(&self, auth: PlatformAuth, id: Path<Uuid>) -> ApiResult<Ok200<Tenant>> {
        Ok(ok(tenants::set_status(
            &self.deps.db,
            TenantId(id.0),
            "active",
            &operator(&auth),
        )
        .await?))
    }

    /// Soft-delete a tenant (its data stays, nobody can sign in).
    #[oai(
        path = "/platform/tenants/:id",
        method = "delete",
        tag = "Tag::Platform"
    )]
    async fn delete_tenant(&self, auth: PlatformAuth, id: Path<Uuid>) -> ApiResult<Ok200<Tenant>> {
        Ok(ok(tenants::set_status(
            &self.deps.db,
            TenantId(id.0),
            "deleted",
            &operator(&auth),
        )
        .await?))
    }

    /// The caller's tenant and its settings.
    #[oai(path = "/tenant", method = "get", tag = "Tag::Tenant")]
    async fn my_tenant(&self, auth: TenantAuth) -> ApiResult<Ok200<Tenant>> {
        Ok(ok(service::my_tenant(&self.deps.db, &auth.0).await?))
    }

    /// Change the caller's tenant name, time zone, locale and settings (administrators).
    #[oai(path = "/tenant", method = "put", tag = "Tag::Tenant")]
    async fn update_tenant(
        &self,
        auth: TenantAuth,
        body: Body<UpdateTenant>,
    ) -> ApiResult<Ok200<Tenant>> {
        let tenant =
            service::update_tenant(&self.deps.db, &auth.0, body.0, trainflow_kernel::now()).await?;
        Ok(ok(tenant))
    }

    /// Set the organisation's logo (administrators): a PNG or JPEG as the request body, at most
    /// 5 MiB and 8,000 pixels a side. The server shrinks it to fit 480 × 160 (never enlarging
    /// it), re-encodes it as PNG and points `settings.logo_url` at it; the portal's header and
    /// the emails show it.
    #[oai(path = "/tenant/logo", method = "put", tag = "Tag::Tenant")]
    async fn set_logo(&self, auth: TenantAuth, mut body: File) -> ApiResult<Ok200<Tenant>> {
        let tenant =
            service::set_logo(&self.deps.db, &auth.0, &mut body, trainflow_kernel::now()).await?;
        Ok(ok(tenant))
    }

    /// Remove the uploaded logo (administrators; `204` also when there was none).
    /// `settings.logo_url` is cleared when it pointed at it.
    #[oai(path = "/tenant/logo", method = "delete", tag = "Tag::Tenant")]
    async fn remove_logo(&self, auth: TenantAuth) -> ApiResult<NoContent> {
        service::remove_logo(&self.deps.db, &auth.0, trainflow_kernel::now()).await?;
        Ok(NoContent::NoContent)
    }

    /// An organisation's uploaded logo (PNG), for anyone: emails show it to people who are not
    /// signed in. Its address (`settings.logo_url`) changes with the picture; send the `ETag`
    /// back in `If-None-Match` for a `304`.
    #[oai(path = "/branding/:id/logo", method = "get", tag = "Tag::Tenant")]
    async fn logo(
        &self,
        /// The tenant's id.
        id: Path<Uuid>,
        /// The picture's version, as `settings.logo_url` names it (ignored: any version
        /// answers the current picture).
        #[oai(validator(max_length = 64))]
        v: Query<Option<String>>,
        /// The `ETag` of the copy one has.
        #[oai(name = "If-None-Match", validator(max_length = 200))]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<LogoResponse> {
        let _ = v;
        let logo = service::public_logo(&self.deps.db, id.0).await?;
        Ok(if if_none_match.0.as_deref() == Some(logo.etag.as_str()) {
            LogoResponse::NotModified(logo.etag)
        } else {
            LogoResponse::Image(Binary(logo.image), logo.etag, LOGO_CACHE.into())
        })
    }
}

/// How long browsers and mail clients keep a logo (its address changes with it).
pub const LOGO_CACHE: &str = "public, max-age=86400";

/// An organisation's logo.
#[derive(ApiResponse)]
pub enum LogoResponse {
    /// The logo.
    #[oai(status = 200, content_type = "image/png")]
    Image(
        Binary<Vec<u8>>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// The copy named in `If-None-Match` is current.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

fn operator(auth: &PlatformAuth) -> Operator {
    Operator::Api {
        id: auth.0.operator_id,
        ip: auth.0.ip.clone(),
    }
}
