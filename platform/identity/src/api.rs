//! HTTP API of the identity context: tokens, users, departments and the audit log.

use poem_openapi::{
    param::{Header, Path, Query},
    payload::{Binary, Json},
    ApiResponse, Object, OpenApi, Tags,
};
use serde::Deserialize;
use time::OffsetDateTime;
use trainflow_kernel::{
    auth::{client_ip, Role, TenantAuth},
    body::{Body, File},
    db::{unique_violation_field, TenantTx},
    domain::bounded,
    envelope::{created, ok, parse_sort, Created, List, NoContent, Ok200, Page},
    sql, ApiError, ApiResult,
};
use uuid::Uuid;

use crate::{
    password::NewPassword,
    service::{self, SelfEdit},
    signin::{self, AuthDeps, TokenPair},
    users::{CreateUser, Deleted, Login, PatchUser, ReplaceUser, User, UserFilter, USER_SORTS},
};

#[derive(Tags)]
enum Tag {
    /// Tokens for API clients.
    Auth,
    /// People of the tenant.
    Users,
    /// Departments of the tenant.
    Departments,
    /// The tenant's audit log.
    Audit,
}

/// Body of `POST /auth/token`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct TokenRequest {
    /// The organisation's slug (or host name).
    #[oai(validator(
        max_length = 253,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub tenant: String,
    /// The person's email or, for people without email, their employee number (an entry
    /// with an `@` is an email).
    #[oai(validator(
        max_length = 254,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub email: String,
    /// The password, or the PIN (6–10 digits) of a person who has one.
    #[oai(validator(
        max_length = 128,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub password: String,
}

/// Body of `PUT /users/{id}/pin`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct SetPin {
    /// 6 to 10 digits.
    #[oai(validator(min_length = 6, max_length = 10, pattern = r"^[0-9]{6,10}$"))]
    pub pin: String,
}

/// Body of `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct RefreshRequest {
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub refresh_token: String,
}

impl RefreshRequest {
    fn check(&self) -> ApiResult<()> {
        bounded(&self.refresh_token, 1, 200)
            .map(drop)
            .map_err(|e| ApiError::field("refresh_token", e))
    }
}

/// Issued tokens.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenResponse {
    /// JWT for the `Authorization: Bearer` header.
    pub access_token: String,
    /// Opaque; exchange at `/auth/refresh`. Single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
        }
    }
}

/// Body of `PUT /users/me`: what a person may change about themselves. Optional fields left
/// out or `null` are cleared.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct UpdateMe {
    #[oai(validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"))]
    pub first_name: String,
    #[oai(validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"))]
    pub last_name: String,
    /// E.164.
    #[oai(
        nullable,
        validator(
            max_length = 20,
            pattern = r"^(?: *|[ ().-]*\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}[ ().-]*)$"
        )
    )]
    pub phone: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub address: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 30, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub gender: Option<String>,
    /// A few words about oneself (at most 1,000 characters).
    #[oai(
        nullable,
        validator(max_length = 1000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    #[serde(default)]
    pub bio: Option<String>,
}

/// How long a browser may keep a picture before revalidating it.
pub const AVATAR_CACHE: &str = "private, max-age=300";

/// A person's picture.
#[derive(ApiResponse)]
pub enum AvatarResponse {
    /// The picture.
    #[oai(status = 200, content_type = "image/jpeg")]
    Image(
        Binary<Vec<u8>>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// The copy named in `If-None-Match` is current.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

/// Body of `POST /users/me/password`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ChangePassword {
    #[oai(validator(
        max_length = 128,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub current_password: String,
    pub new_password: NewPassword,
}

/// Body of `PUT /users/{id}/reporting-lines`, and its answer. Left out or `null`: none.
#[derive(Debug, Object, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ReportingLines {
    /// The person's foreman (direct supervisor): another active person of the tenant.
    #[oai(nullable)]
    pub supervisor_id: Option<Uuid>,
    /// The person's line manager: another active person of the tenant.
    #[oai(nullable)]
    pub manager_id: Option<Uuid>,
}

/// `{"active_count": N}`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ActiveCount {
    pub active_count: i64,
}

/// A department.
#[derive(Debug, Object, sqlx::FromRow, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Department {
    pub id: Uuid,
    pub name: String,
    pub code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Body of `POST /departments`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateDepartment {
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
    #[oai(
        nullable,
        validator(max_length = 30, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub code: Option<String>,
}

/// An audit-log entry.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEntry {
    pub seq: i64,
    pub id: Uuid,
    pub occurred_at: OffsetDateTime,
    /// `user`, `operator`, `system` or `anonymous`.
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<Uuid>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: String,
    pub ip: Option<String>,
    /// sha256(prev_hash || entry).
    pub hash: String,
}

/// Result of verifying the audit chain.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditVerification {
    /// True when every link matches.
    pub intact: bool,
    /// The first broken link, if any.
    pub first_broken_seq: Option<i64>,
}

/// The identity API.
pub struct IdentityApi {
    pub deps: AuthDeps,
}

#[OpenApi(prefix_path = "/api/v1")]
impl IdentityApi {
    /// Exchange credentials for tokens.
    ///
    /// People without email sign in with their employee number and their password or PIN.
    /// Repeated failures for one account or address back off exponentially (429 with
    /// Retry-After). Passwords never lock; a PIN (short by nature) locks after 10 consecutive
    /// failures, the 401 says so, and an administrator or the person's foreman sets a new one.
    #[oai(path = "/auth/token", method = "post", tag = "Tag::Auth")]
    async fn token(
        &self,
        req: &poem::Request,
        body: Body<TokenRequest>,
    ) -> ApiResult<Ok200<TokenResponse>> {
        let b = body.0;
        let mut errors = trainflow_kernel::FieldErrors::new();
        errors.check("tenant", bounded(&b.tenant, 1, 253));
        errors.check("password", bounded(&b.password, 1, 128).map(drop));
        errors.check("email", bounded(&b.email, 1, 254));
        errors.into_result()?;
        let login = Login::parse(&b.email);
        let (tenant, user) =
            signin::sign_in(&self.deps, &b.tenant, login, b.password, client_ip(req)).await?;
        let pair = signin::issue_tokens(&self.deps, tenant, &user).await?;
        Ok(ok(pair.into()))
    }

    /// Rotate a refresh token. A token works once; replaying it revokes the whole sign-in.
    #[oai(path = "/auth/refresh", method = "post", tag = "Tag::Auth")]
    async fn refresh(
        &self,
        req: &poem::Request,
        body: Body<RefreshRequest>,
    ) -> ApiResult<Ok200<TokenResponse>> {
        body.0.check()?;
        let pair = signin::refresh(&self.deps, &body.0.refresh_token, client_ip(req)).await?;
        Ok(ok(pair.into()))
    }

    /// Sign out: revokes the refresh token and every token rotated from the same sign-in.
    #[oai(path = "/auth/logout", method = "post", tag = "Tag::Auth")]
    async fn logout(
        &self,
        req: &poem::Request,
        body: Body<RefreshRequest>,
    ) -> ApiResult<NoContent> {
        body.0.check()?;
        signin::logout(&self.deps, &body.0.refresh_token, client_ip(req)).await?;
        Ok(NoContent::NoContent)
    }

    /// The signed-in user.
    #[oai(path = "/users/me", method = "get", tag = "Tag::Users")]
    async fn me(&self, auth: TenantAuth) -> ApiResult<Ok200<User>> {
        Ok(ok(service::me(
            &self.deps.db,
            &auth.0,
            trainflow_kernel::now(),
        )
        .await?))
    }

    /// Update one's own profile.
    #[oai(path = "/users/me", method = "put", tag = "Tag::Users")]
    async fn update_me(&self, auth: TenantAuth, body: Body<UpdateMe>) -> ApiResult<Ok200<User>> {
        let b = body.0;
        let edit = SelfEdit {
            first_name: b.first_name,
            last_name: b.last_name,
            phone: b.phone,
            address: b.address,
            gender: b.gender,
            bio: b.bio,
        };
        Ok(ok(service::update_me(&self.deps.db, &auth.0, edit).await?))
    }

    /// Set one's picture: a PNG or JPEG (the request body; at most 5 MiB and 8,000 pixels a
    /// side). The server squares it, resizes it to 256 × 256 and re-encodes it as JPEG.
    #[oai(path = "/users/me/avatar", method = "put", tag = "Tag::Users")]
    async fn set_avatar(&self, auth: TenantAuth, mut body: File) -> ApiResult<Ok200<User>> {
        Ok(ok(
            service::set_avatar(&self.deps.db, &auth.0, &mut body).await?
        ))
    }

    /// Remove one's picture (`204` also when there was none).
    #[oai(path = "/users/me/avatar", method = "delete", tag = "Tag::Users")]
    async fn remove_avatar(&self, auth: TenantAuth) -> ApiResult<NoContent> {
        service::remove_avatar(&self.deps.db, &auth.0).await?;
        Ok(NoContent::NoContent)
    }

    /// A person's picture (256 × 256 JPEG), with an `ETag`: send it back in `If-None-Match`
    /// for a `304` when it has not changed.
    #[oai(path = "/users/:id/avatar", method = "get", tag = "Tag::Users")]
    async fn avatar(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// The `ETag` of the copy one has.
        #[oai(name = "If-None-Match", validator(max_length = 200))]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<AvatarResponse> {
        let a = service::avatar(&self.deps.db, &auth.0, id.0).await?;
        Ok(if if_none_match.0.as_deref() == Some(a.etag.as_str()) {
            AvatarResponse::NotModified(a.etag)
        } else {
            AvatarResponse::Image(Binary(a.image), a.etag, AVATAR_CACHE.into())
        })
    }

    /// Change one's own password. Every refresh token and portal session of the person ends,
    /// this sign-in's included; access tokens run out within their lifetime.
    #[oai(path = "/users/me/password", method = "post", tag = "Tag::Users")]
    async fn change_password(
        &self,
        auth: TenantAuth,
        body: Body<ChangePassword>,
    ) -> ApiResult<NoContent> {
        service::change_password(&self.deps, &auth.0, body.0, trainflow_kernel::now()).await?;
        Ok(NoContent::NoContent)
    }

    /// List people, with search, filters, sorting and pagination.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/users", method = "get", tag = "Tag::Users")]
    async fn list_users(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
        /// Case-insensitive substring of name, email or username.
        #[oai(validator(max_length = 100))]
        search: Query<Option<String>>,
        role: Query<Option<Role>>,
        department_id: Query<Option<Uuid>>,
        is_active: Query<Option<bool>>,
        /// Include soft-deleted people (administrators).
        include_deleted: Query<Option<bool>>,
        /// `created_at`, `email`, `last_name`, `first_name`, `last_active_at`, `employee_number`;
        /// prefix `-` for descending.
        #[oai(validator(
            pattern = r"^(?:-?(?:created_at|email|last_name|first_name|last_active_at|employee_number))?$"
        ))]
        sort: Query<Option<String>>,
    ) -> ApiResult<Json<List<User>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let sort = parse_sort(sort.0.as_deref(), &USER_SORTS, ("u.created_at", false))?;
        if search.0.as_ref().is_some_and(|s| s.chars().count() > 100) {
            return Err(ApiError::field("search", "must be at most 100 characters"));
        }
        let filter = UserFilter {
            search: search.0,
            role: role.0,
            department_id: department_id.0,
            is_active: is_active.0,
            deleted: if include_deleted.0.unwrap_or(false) {
                Deleted::Include
            } else {
                Deleted::Exclude
            },
        };
        let (data, total) = service::list_users(&self.deps.db, &auth.0, filter, sort, page).await?;
        Ok(page.list(data, total))
    }

    /// Create a person. Without a password (or PIN) they are invited: the `welcome` email (or,
    /// without an email address, an SMS) brings a link to choose one, valid for a week.
    #[oai(path = "/users", method = "post", tag = "Tag::Users")]
    async fn create_user(
        &self,
        auth: TenantAuth,
        body: Body<CreateUser>,
    ) -> ApiResult<Created<User>> {
        let user = service::create_user(&self.deps, &auth.0, body.0).await?;
        Ok(created(user))
    }

    /// Active people in the tenant.
    #[oai(path = "/users/active_count", method = "get", tag = "Tag::Users")]
    async fn active_count(&self, auth: TenantAuth) -> ApiResult<Ok200<ActiveCount>> {
        let n = service::active_count(&self.deps.db, &auth.0).await?;
        Ok(ok(ActiveCount { active_count: n }))
    }

    /// One person.
    #[oai(path = "/users/:id", method = "get", tag = "Tag::Users")]
    async fn get_user(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<User>> {
        Ok(ok(
            service::get_user(&self.deps.db, &auth.0, id.0, false).await?
        ))
    }

    /// Replace a person's record (all editable fields).
    #[oai(path = "/users/:id", method = "put", tag = "Tag::Users")]
    async fn replace_user(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<ReplaceUser>,
    ) -> ApiResult<Ok200<User>> {
        let fields = body.0.parse()?;
        Ok(ok(service::write_user(
            &self.deps.db,
            &auth.0,
            id.0,
            |_| Ok(fields),
        )
        .await?))
    }

    /// Change some fields of a person; `null` clears an optional field.
    #[oai(path = "/users/:id", method = "patch", tag = "Tag::Users")]
    async fn patch_user(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<PatchUser>,
    ) -> ApiResult<Ok200<User>> {
        let patch = body.0;
        Ok(ok(service::write_user(
            &self.deps.db,
            &auth.0,
            id.0,
            move |current| patch.apply(current),
        )
        .await?))
    }

    /// Soft-delete a person: they can no longer sign in; an administrator can restore them.
    #[oai(path = "/users/:id", method = "delete", tag = "Tag::Users")]
    async fn delete_user(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<NoContent> {
        service::delete_user(&self.deps.db, &auth.0, id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Restore a soft-deleted person.
    #[oai(path = "/users/:id/restore", method = "post", tag = "Tag::Users")]
    async fn restore_user(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<User>> {
        Ok(ok(
            service::restore_user(&self.deps.db, &auth.0, id.0).await?
        ))
    }

    /// Set a person's foreman and line manager (who approval steps by relation resolve to).
    /// Their pending approval steps follow at the next escalation run.
    #[oai(
        path = "/users/:id/reporting-lines",
        method = "put",
        tag = "Tag::Users"
    )]
    async fn reporting_lines(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<ReportingLines>,
    ) -> ApiResult<Ok200<ReportingLines>> {
        Ok(ok(service::set_reporting_lines(
            &self.deps.db,
            &auth.0,
            id.0,
            body.0,
            trainflow_kernel::now(),
        )
        .await?))
    }

    /// Set a person's sign-in PIN (6–10 digits), replacing any PIN and unlocking a locked one.
    /// Administrators set anyone's; a foreman sets the PINs of the people who report to them
    /// (anyone else is 403). The PIN is hashed like a password and never shown again.
    #[oai(path = "/users/:id/pin", method = "put", tag = "Tag::Users")]
    async fn set_pin(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        body: Body<SetPin>,
    ) -> ApiResult<Ok200<User>> {
        Ok(ok(service::set_pin(
            &self.deps.db,
            &self.deps.hasher,
            &auth.0,
            id.0,
            Some(body.0.pin),
        )
        .await?))
    }

    /// Remove a person's PIN: they sign in with their password only.
    #[oai(path = "/users/:id/pin", method = "delete", tag = "Tag::Users")]
    async fn remove_pin(&self, auth: TenantAuth, id: Path<Uuid>) -> ApiResult<Ok200<User>> {
        Ok(ok(service::set_pin(
            &self.deps.db,
            &self.deps.hasher,
            &auth.0,
            id.0,
            None,
        )
        .await?))
    }

    /// A person's recorded activity (sign-ins and changes they made), newest first.
    #[oai(path = "/users/:id/activity", method = "get", tag = "Tag::Users")]
    async fn user_activity(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<AuditEntry>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = service::user_activity(&self.deps.db, &auth.0, id.0, page).await?;
        Ok(page.list(rows, total))
    }

    /// Departments of the tenant, by name.
    #[oai(path = "/departments", method = "get", tag = "Tag::Departments")]
    async fn list_departments(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<List<Department>>> {
        let page = Page::parse(page.0, per_page.0)?;
        let (rows, total) = service::list_departments(&self.deps.db, &auth.0, Some(page)).await?;
        Ok(page.list(rows, total))
    }

    /// Create a department.
    #[oai(path = "/departments", method = "post", tag = "Tag::Departments")]
    async fn create_department(
        &self,
        auth: TenantAuth,
        body: Body<CreateDepartment>,
    ) -> ApiResult<Created<Department>> {
        let dept =
            service::create_department(&self.deps.db, &auth.0, body.0, trainflow_kernel::now())
                .await?;
        Ok(created(dept))
    }

    /// The audit log, newest first. Filter by action, actor or object (`object_id` also finds
    /// the batch entries, such as an import page, that list the object among those they changed).
    #[oai(path = "/audit", method = "get", tag = "Tag::Audit")]
    async fn audit_log(
        &self,
        auth: TenantAuth,
        /// 1-based page (default 1).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
        /// Page size, 1–100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        per_page: Query<Option<u32>>,
        /// Exact action, e.g. `user.create`.
        #[oai(validator(max_length = 100))]
        action: Query<Option<String>>,
        actor_id: Query<Option<Uuid>>,
        object_id: Query<Option<Uuid>>,
    ) -> ApiResult<Json<List<AuditEntry>>> {
        let page = Page::parse(page.0, per_page.0)?;
        if action.0.as_ref().is_some_and(|a| a.chars().count() > 100) {
            return Err(ApiError::field("action", "must be at most 100 characters"));
        }
        let (rows, total) = service::audit_log(
            &self.deps.db,
            &auth.0,
            action.0.as_deref(),
            actor_id.0,
            object_id.0,
            page,
        )
        .await?;
        Ok(page.list(rows, total))
    }

    /// Recompute the tenant's audit hash chain and report the first broken link.
    #[oai(path = "/audit/verify", method = "get", tag = "Tag::Audit")]
    async fn audit_verify(&self, auth: TenantAuth) -> ApiResult<Ok200<AuditVerification>> {
        let broken = service::verify_audit(&self.deps.db, &auth.0).await?;
        Ok(ok(AuditVerification {
            intact: broken.is_none(),
            first_broken_seq: broken,
        }))
    }
}

/// The tenant's departments, by name.
pub async fn departments(tx: &mut TenantTx) -> ApiResult<Vec<Department>> {
    Ok(departments_page(tx, None).await?.0)
}

/// One `page` of the tenant's departments by name and their number, or (`None`) all of them.
pub async fn departments_page(
    tx: &mut TenantTx,
    page: Option<Page>,
) -> ApiResult<(Vec<Department>, i64)> {
    let tenant = tx.tenant();
    let (limit, offset) = page.map_or((i64::MAX, 0), |p| (p.limit(), p.offset()));
    let rows = sql!(tx.conn() => |c| sqlx::query_as(
        "select id, name, code, created_at from departments where tenant_id = $1 and deleted_at is null
          order by name, id limit $2 offset $3")
        .bind(tenant).bind(limit).bind(offset).fetch_all(&mut *c).await)?;
    let total = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from departments where tenant_id = $1 and deleted_at is null")
        .bind(tenant).fetch_one(&mut *c).await)?;
    Ok((rows, total))
}

/// Inserts a department; a duplicate name is a 409 on `name`.
pub async fn insert_department(
    tx: &mut TenantTx,
    name: &str,
    code: Option<String>,
    now: OffsetDateTime,
) -> ApiResult<Department> {
    let tenant = tx.tenant();
    let id = Uuid::now_v7();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into departments (tenant_id, id, name, code, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)")
        .bind(tenant).bind(id).bind(name).bind(&code).bind(now).execute(&mut *c).await.map(drop))
    .map_err(|e| match unique_violation_field(&e, "departments") {
        Some(_) => ApiError::Conflict { field: "name".into(), message: "a department with this name exists".into() },
        None => e.into(),
    })?;
    Ok(Department {
        id,
        name: name.to_string(),
        code,
        created_at: now,
    })
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    id: Uuid,
    occurred_at: OffsetDateTime,
    actor_kind: String,
    actor_id: Option<Uuid>,
    action: String,
    object_type: Option<String>,
    object_id: Option<Uuid>,
    before_state: Option<sqlx::types::Json<serde_json::Value>>,
    after_state: Option<sqlx::types::Json<serde_json::Value>>,
    request_id: String,
    ip: Option<String>,
    hash: String,
    total: i64,
}

pub(crate) async fn audit_page(
    tx: &mut TenantTx,
    action: Option<&str>,
    actor: Option<Uuid>,
    object: Option<Uuid>,
    page: Page,
) -> ApiResult<(Vec<AuditEntry>, i64)> {
    let tenant = tx.tenant();
    let rows: Vec<AuditRow> = sql!(tx.conn() => |c| sqlx::query_as(
        "select seq, id, occurred_at, actor_kind, actor_id, action, object_type, object_id, before_state,
                after_state, request_id, ip, hash, count(*) over () as total
           from audit_log
          where tenant_id = $1 and ($2 is null or action = $2) and ($3 is null or actor_id = $3)
            and ($4 is null or object_id = $4
                 or seq in (select seq from audit_objects where tenant_id = $1 and object_id = $4))
          order by seq desc limit $5 offset $6")
        .bind(tenant).bind(action).bind(actor).bind(object).bind(page.limit()).bind(page.offset())
        .fetch_all(&mut *c).await)?;
    let total = rows.first().map(|r| r.total).unwrap_or(0);
    Ok((
        rows.into_iter()
            .map(|r| AuditEntry {
                seq: r.seq,
                id: r.id,
                occurred_at: r.occurred_at,
                actor_kind: r.actor_kind,
                actor_id: r.actor_id,
                action: r.action,
                object_type: r.object_type,
                object_id: r.object_id,
                before: r.before_state.map(|j| j.0),
                after: r.after_state.map(|j| j.0),
                request_id: r.request_id,
                ip: r.ip,
                hash: r.hash,
            })
            .collect(),
        total,
    ))
}
