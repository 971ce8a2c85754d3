//! Use cases shared by the API and the portal: each opens the tenant transaction with the
//! permission it needs, changes data, audits, and commits — all or nothing.

use time::OffsetDateTime;
use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, Role, TenantCtx},
    db::{Db, TenantTx},
    envelope::Page,
    ApiError, ApiResult, TenantId,
};
use uuid::Uuid;

use crate::{
    api::Department,
    avatars,
    password::Hasher,
    users::{self, CreateUser, ReplaceUser, User, UserFields, UserFilter},
};

/// Creates a person (hashing the optional initial password first, outside the transaction).
pub async fn create_user(
    deps: &crate::signin::AuthDeps,
    ctx: &TenantCtx,
    body: CreateUser,
) -> ApiResult<User> {
    let (fields, hash) = parse_and_hash(&deps.hasher, body).await?;
    let (mut tx, ctx) = TenantTx::begin(&deps.db, ctx, Permission::UsersWrite).await?;
    let user = insert_audited(&mut tx, &fields, hash, Entry::by(&ctx, "user.create")).await?;
    // Someone added without a password is welcomed with a link to choose one.
    crate::account_links::welcome(
        &mut tx,
        &[user.id],
        &deps.public_url,
        trainflow_kernel::now(),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Creates a person on the platform's behalf (command line, tenant manifests): audited with the
/// `system` actor.
pub async fn create_user_as_system(
    db: &Db,
    hasher: &Hasher,
    tenant: TenantId,
    body: CreateUser,
) -> ApiResult<User> {
    let (fields, hash) = parse_and_hash(hasher, body).await?;
    let mut tx = TenantTx::begin_system(db, tenant).await?;
    let entry = Entry::as_actor("system", None, "user.create", None);
    let user = insert_audited(&mut tx, &fields, hash, entry).await?;
    tx.commit().await?;
    Ok(user)
}

/// Validates a new person and hashes their initial password, if any (outside any transaction:
/// hashing takes tens of milliseconds).
async fn parse_and_hash(
    hasher: &Hasher,
    body: CreateUser,
) -> ApiResult<(UserFields, Option<String>)> {
    let (fields, password) = body.parse()?;
    let hash = match password {
        Some(p) => Some(hasher.hash(p).await?),
        None => None,
    };
    Ok((fields, hash))
}

async fn insert_audited(
    tx: &mut TenantTx,
    fields: &UserFields,
    hash: Option<String>,
    entry: Entry,
) -> ApiResult<User> {
    let now = trainflow_kernel::now();
    let user = users::insert(tx, fields, hash, None, now).await?;
    audit::record(
        tx,
        entry
            .object("user", user.id)
            .change(None, Some(user.audit_json())),
        now,
    )
    .await?;
    Ok(user)
}

/// Sets (`Some`) or removes (`None`) the sign-in PIN of person `id`, unlocking it. An
/// administrator may for anyone; a foreman only for the people who report to them.
pub async fn set_pin(
    db: &Db,
    hasher: &Hasher,
    ctx: &TenantCtx,
    id: Uuid,
    pin: Option<String>,
) -> ApiResult<User> {
    if let Some(p) = &pin {
        if !crate::signin::is_pin(p) {
            return Err(ApiError::field("pin", "must be 6 to 10 digits"));
        }
    }
    // Check before hashing (tens of milliseconds): the permission and the person.
    {
        let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::PinSet).await?;
        may_set_pin(&mut tx, &ctx, id).await?;
        tx.commit().await?;
    }
    let hash = match pin {
        Some(p) => Some(hasher.hash(p).await?),
        None => None,
    };
    let now = trainflow_kernel::now();
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::PinSet).await?;
    may_set_pin(&mut tx, &ctx, id).await?;
    let before = users::get(&mut tx, id, false).await?;
    let user = users::set_pin(&mut tx, id, hash.as_deref(), now).await?;
    let action = if hash.is_some() {
        "user.pin_set"
    } else {
        "user.pin_removed"
    };
    audit::record(
        &mut tx,
        Entry::by(&ctx, action).object("user", id).change(
            Some(serde_json::json!({"has_pin": before.has_pin, "pin_locked": before.pin_locked})),
            Some(serde_json::json!({"has_pin": user.has_pin, "pin_locked": user.pin_locked})),
        ),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

async fn may_set_pin(tx: &mut TenantTx, ctx: &TenantCtx, id: Uuid) -> ApiResult<()> {
    let supervisor = users::supervisor_of(tx, id).await?;
    if ctx.role == Role::Administrator || supervisor == Some(ctx.user_id.0) {
        Ok(())
    } else {
        // Only an administrator or the person's foreman may.
        Err(ApiError::Forbidden)
    }
}

/// Sets one's own picture from an upload: checked first (no lock is held while the client
/// sends), then read up to [`avatars::MAX_UPLOAD_BYTES`] (413 past it), decoded, squared,
/// resized and re-encoded off the runtime, then stored and audited.
pub async fn set_avatar(
    db: &Db,
    ctx: &TenantCtx,
    file: &mut trainflow_kernel::body::File,
) -> ApiResult<User> {
    {
        let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
        users::get(&mut tx, ctx.user_id.0, false).await?;
        tx.commit().await?;
    }
    let bytes = file.read(avatars::MAX_UPLOAD_BYTES).await?;
    let avatar = tokio::task::spawn_blocking(move || avatars::normalise(&bytes))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let now = trainflow_kernel::now();
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let me = ctx.user_id.0;
    avatars::put(&mut tx, me, &avatar, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.avatar_set")
            .object("user", me)
            .detail(serde_json::json!({"bytes": avatar.image.len(), "etag": avatar.etag})),
        now,
    )
    .await?;
    let user = users::get(&mut tx, me, false).await?;
    tx.commit().await?;
    Ok(user)
}

/// Removes one's own picture (idempotent: no picture is already the outcome asked for).
pub async fn remove_avatar(db: &Db, ctx: &TenantCtx) -> ApiResult<()> {
    let now = trainflow_kernel::now();
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let me = ctx.user_id.0;
    if avatars::delete(&mut tx, me).await? {
        audit::record(
            &mut tx,
            Entry::by(&ctx, "user.avatar_removed").object("user", me),
            now,
        )
        .await?;
    }
    tx.commit().await
}

/// A person's picture, for anyone of the tenant (404 when they have none).
pub async fn avatar(db: &Db, ctx: &TenantCtx, user: Uuid) -> ApiResult<avatars::Avatar> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let found = avatars::get(&mut tx, user).await?;
    tx.commit().await?;
    found.ok_or(ApiError::NotFound)
}

/// Whether `email` (any case) or `employee_number` belongs to someone in the tenant, deleted
/// people included.
pub async fn login_taken(
    db: &Db,
    tenant: TenantId,
    email: Option<&str>,
    employee_number: Option<&str>,
) -> ApiResult<bool> {
    let mut tx = TenantTx::begin_system(db, tenant).await?;
    let email = email.map(|e| e.trim().to_lowercase());
    let number = employee_number.map(str::trim);
    let found: Option<i32> = trainflow_kernel::sql!(tx.conn() => |c| sqlx::query_scalar(
        "select 1 from users where tenant_id = $1 and (email = $2 or employee_number = $3)")
        .bind(tenant).bind(&email).bind(number).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(found.is_some())
}

/// Sets a PIN on the platform's behalf (tenant manifests), audited with the `system` actor.
pub async fn set_pin_as_system(
    db: &Db,
    hasher: &Hasher,
    tenant: TenantId,
    id: Uuid,
    pin: &str,
) -> ApiResult<User> {
    if !crate::signin::is_pin(pin) {
        return Err(ApiError::field("pin", "must be 6 to 10 digits"));
    }
    let hash = hasher.hash(pin.to_string()).await?;
    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system(db, tenant).await?;
    let user = users::set_pin(&mut tx, id, Some(&hash), now).await?;
    audit::record(
        &mut tx,
        Entry::as_actor("system", None, "user.pin_set", None).object("user", id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Every active person of `tenant` as (email, id, role): the callers a tenant manifest's
/// parts act as.
pub async fn people_by_email(db: &Db, tenant: TenantId) -> ApiResult<Vec<(String, Uuid, Role)>> {
    let mut tx = TenantTx::begin_system_read(db, tenant).await?;
    let rows: Vec<(String, Uuid, String)> = trainflow_kernel::sql!(tx.conn() => |c| sqlx::query_as(
        "select email, id, role from users
          where tenant_id = $1 and is_active = true and deleted_at is null and email is not null")
        .bind(tenant).fetch_all(&mut *c).await)?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|(email, id, role)| Some((email, id, role.parse().ok()?)))
        .collect())
}

/// Rewrites a person's record from the fields `f` computes from the current record.
/// Administrators cannot demote or deactivate themselves.
pub async fn write_user(
    db: &Db,
    ctx: &TenantCtx,
    id: Uuid,
    f: impl FnOnce(&User) -> Result<UserFields, ApiError>,
) -> ApiResult<User> {
    let now = trainflow_kernel::now();
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    let before = users::get(&mut tx, id, false).await?;
    let fields = f(&before)?;
    if before.id == ctx.user_id.0 && (fields.role != Role::Administrator || !fields.is_active) {
        return Err(ApiError::Conflict {
            field: if fields.is_active {
                "role".into()
            } else {
                "is_active".into()
            },
            message: "you cannot demote or deactivate yourself".into(),
        });
    }
    let after = users::update(&mut tx, id, &fields, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.update")
            .object("user", id)
            .change(Some(before.audit_json()), Some(after.audit_json())),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes a person (not oneself).
pub async fn delete_user(db: &Db, ctx: &TenantCtx, id: Uuid) -> ApiResult<()> {
    let now = trainflow_kernel::now();
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    let before = users::get(&mut tx, id, false).await?;
    if before.id == ctx.user_id.0 {
        return Err(ApiError::Conflict {
            field: "id".into(),
            message: "you cannot delete yourself".into(),
        });
    }
    users::soft_delete(&mut tx, id, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.delete")
            .object("user", id)
            .change(Some(before.audit_json()), None),
        now,
    )
    .await?;
    tx.commit().await
}

/// Restores a soft-deleted person.
pub async fn restore_user(db: &Db, ctx: &TenantCtx, id: Uuid) -> ApiResult<User> {
    let now = trainflow_kernel::now();
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    let user = users::restore(&mut tx, id, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.restore")
            .object("user", user.id)
            .change(None, Some(user.audit_json())),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// What a person may change about themselves.
#[derive(Debug, Clone)]
pub struct SelfEdit {
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub gender: Option<String>,
    pub bio: Option<String>,
}

/// Updates one's own profile.
pub async fn update_me(db: &Db, ctx: &TenantCtx, edit: SelfEdit) -> ApiResult<User> {
    let now = trainflow_kernel::now();
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let before = users::get(&mut tx, ctx.user_id.0, false).await?;
    let fields = ReplaceUser {
        email: before.email.clone(),
        username: before.username.clone(),
        first_name: edit.first_name,
        last_name: edit.last_name,
        phone: edit.phone,
        address: edit.address,
        employee_number: before.employee_number.clone(),
        department_id: before.department_id,
        position: before.position.clone(),
        gender: edit.gender,
        role: before.role,
        is_active: before.is_active,
    }
    .parse()?;
    let bio = trainflow_kernel::domain::optional(edit.bio.as_deref(), 1000)
        .map_err(|m| ApiError::field("bio", m))?;
    users::update(&mut tx, before.id, &fields, now).await?;
    users::set_bio(&mut tx, before.id, bio.as_deref(), now).await?;
    let after = users::get(&mut tx, before.id, false).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.update_self")
            .object("user", after.id)
            .change(Some(before.audit_json()), Some(after.audit_json())),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// One page of people.
pub async fn list_users(
    db: &Db,
    ctx: &TenantCtx,
    mut filter: UserFilter,
    sort: (&'static str, bool),
    page: Page,
) -> ApiResult<(Vec<User>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersRead).await?;
    if ctx.role != Role::Administrator {
        filter.deleted = users::Deleted::Exclude;
    }
    let out = users::list(&mut tx, &filter, sort, page).await?;
    tx.commit().await?;
    Ok(out)
}

/// One person (deleted ones only for administrators asking for them).
pub async fn get_user(
    db: &Db,
    ctx: &TenantCtx,
    id: Uuid,
    include_deleted: bool,
) -> ApiResult<User> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersRead).await?;
    let user = users::get(
        &mut tx,
        id,
        include_deleted && ctx.role == Role::Administrator,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// The signed-in person (and a note of their activity).
pub async fn me(db: &Db, ctx: &TenantCtx, now: OffsetDateTime) -> ApiResult<User> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let user = users::get(&mut tx, ctx.user_id.0, false).await?;
    users::touch_last_active(&mut tx, ctx.user_id.0, now).await?;
    tx.commit().await?;
    Ok(user)
}

/// The tenant's departments by name: one `page` and their number, or (`None`) all of them (the
/// portal's department choice).
pub async fn list_departments(
    db: &Db,
    ctx: &TenantCtx,
    page: Option<Page>,
) -> ApiResult<(Vec<Department>, i64)> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let rows = crate::api::departments_page(&mut tx, page).await?;
    tx.commit().await?;
    Ok(rows)
}

/// What the dashboard shows of people, by role: active people (those who may read people),
/// the caller's department (foremen and managers), departments (administrators) and recent
/// activity (administrators: everything; training officers: certifications, renewals and
/// approvals, the records they answer for).
#[derive(Debug, Default)]
pub struct PeopleSummary {
    pub active: Option<i64>,
    pub department_active: Option<i64>,
    pub departments: Option<usize>,
    /// (when, action, who).
    pub recent: Vec<(OffsetDateTime, String, String)>,
}

/// The audit subjects of a training officer's recent activity.
const TRAINING_SUBJECTS: &[&str] = &[
    "certification",
    "certification_type",
    "renewal",
    "approval",
    "approval_chain",
];

/// The dashboard's people figures for the caller.
pub async fn people_summary(db: &Db, ctx: &TenantCtx) -> ApiResult<PeopleSummary> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let mut out = PeopleSummary::default();
    if ctx.role.grants(Permission::UsersRead) {
        out.active = Some(users::active_count(&mut tx).await?);
    }
    if matches!(ctx.role, Role::Manager | Role::Foreman) {
        let me = users::get(&mut tx, ctx.user_id.0, false).await?;
        if let Some(dept) = me.department_id {
            out.department_active = Some(users::active_in_department(&mut tx, dept).await?);
        }
    }
    if ctx.role == Role::Administrator {
        out.departments = Some(crate::api::departments(&mut tx).await?.len());
        out.recent = users::recent_activity(&mut tx, &[], 8).await?;
    } else if ctx.role == Role::TrainingOfficer {
        out.recent = users::recent_activity(&mut tx, TRAINING_SUBJECTS, 8).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Changes one's own password after checking the current one. Every refresh token and portal
/// session of the person ends; access tokens run out within their lifetime.
pub async fn change_password(
    deps: &crate::signin::AuthDeps,
    ctx: &TenantCtx,
    body: crate::api::ChangePassword,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let mut errors = trainflow_kernel::FieldErrors::new();
    errors.check(
        "new_password",
        crate::password::check_policy(&body.new_password),
    );
    errors.check(
        "current_password",
        trainflow_kernel::domain::bounded(&body.current_password, 1, 128).map(drop),
    );
    errors.into_result()?;
    let current = {
        let (mut tx, ctx) = TenantTx::begin(&deps.db, ctx, Permission::SelfService).await?;
        let hash = users::password_hash(&mut tx, ctx.user_id.0).await?;
        tx.commit().await?;
        hash
    };
    // Hashing takes tens of milliseconds: outside any transaction.
    if !deps.hasher.verify(body.current_password, current).await? {
        return Err(ApiError::field(
            "current_password",
            "is not your current password",
        ));
    }
    let hash = deps.hasher.hash(body.new_password.into()).await?;
    let (mut tx, ctx) = TenantTx::begin(&deps.db, ctx, Permission::SelfService).await?;
    users::set_password(&mut tx, ctx.user_id.0, &hash, now).await?;
    users::revoke_credentials(&mut tx, ctx.user_id.0, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "auth.password_changed").object("user", ctx.user_id.0),
        now,
    )
    .await?;
    tx.commit().await
}

/// Active people in the tenant.
pub async fn active_count(db: &Db, ctx: &TenantCtx) -> ApiResult<i64> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::UsersRead).await?;
    let n = users::active_count(&mut tx).await?;
    tx.commit().await?;
    Ok(n)
}

/// Creates a department; a duplicate name is a 409 on `name`.
pub async fn create_department(
    db: &Db,
    ctx: &TenantCtx,
    body: crate::api::CreateDepartment,
    now: OffsetDateTime,
) -> ApiResult<Department> {
    let mut errors = trainflow_kernel::FieldErrors::new();
    let name = errors.check(
        "name",
        trainflow_kernel::domain::bounded(&body.name, 1, 100),
    );
    let code = errors.check(
        "code",
        trainflow_kernel::domain::optional(body.code.as_deref(), 30),
    );
    errors.into_result()?;
    let (Some(name), Some(code)) = (name, code) else {
        return Err(ApiError::field("name", "is required"));
    };
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    let dept = crate::api::insert_department(&mut tx, &name, code, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "department.create")
            .object("department", dept.id)
            .change(None, serde_json::to_value(&dept).ok()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(dept)
}

/// Sets a person's foreman and line manager (who approval steps by relation resolve to; pending
/// steps follow at the next escalation run).
pub async fn set_reporting_lines(
    db: &Db,
    ctx: &TenantCtx,
    user: Uuid,
    lines: crate::api::ReportingLines,
    now: OffsetDateTime,
) -> ApiResult<crate::api::ReportingLines> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    users::get(&mut tx, user, false).await?;
    for (field, value) in [
        ("supervisor_id", lines.supervisor_id),
        ("manager_id", lines.manager_id),
    ] {
        let Some(v) = value else { continue };
        if v == user {
            return Err(ApiError::field(
                field,
                "a person cannot report to themselves",
            ));
        }
        if users::get(&mut tx, v, false).await.is_err() {
            return Err(ApiError::field(field, "no such person"));
        }
    }
    users::set_reporting_lines(&mut tx, user, lines.supervisor_id, lines.manager_id, now).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.reporting_lines")
            .object("user", user)
            .detail(serde_json::to_value(&lines).unwrap_or_default()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(lines)
}

/// One page of the people who report to the caller (as their foreman or line manager).
pub async fn my_team(db: &Db, ctx: &TenantCtx, page: Page) -> ApiResult<(Vec<User>, i64)> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersRead).await?;
    let team = users::reports_of(&mut tx, ctx.user_id.0, page).await?;
    tx.commit().await?;
    Ok(team)
}

/// Where the caller stands in the organisation: the profile page's role-specific part.
#[derive(Debug, Clone)]
pub struct Workplace {
    pub department: Option<String>,
    pub position: Option<String>,
    pub employee_number: Option<String>,
    /// The names of their foreman and line manager.
    pub foreman: Option<String>,
    pub manager: Option<String>,
    /// How many people report to them (foremen and managers).
    pub team: Option<i64>,
    pub profile_incomplete: bool,
}

/// The caller's place in the organisation.
pub async fn workplace(db: &Db, ctx: &TenantCtx) -> ApiResult<Workplace> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::SelfService).await?;
    let me = users::get(&mut tx, ctx.user_id.0, false).await?;
    let (foreman, manager) = users::reporting_lines_of(&mut tx, me.id).await?;
    let ids: Vec<Uuid> = [foreman, manager].into_iter().flatten().collect();
    let names = users::display_names(&mut tx, &ids).await?;
    let team = match ctx.role {
        Role::Foreman | Role::Manager => {
            let one = Page::parse(Some(1), Some(1))?;
            Some(users::reports_of(&mut tx, me.id, one).await?.1)
        }
        _ => None,
    };
    tx.commit().await?;
    Ok(Workplace {
        department: me.department_name,
        position: me.position,
        employee_number: me.employee_number,
        foreman: foreman.and_then(|id| names.get(&id).cloned()),
        manager: manager.and_then(|id| names.get(&id).cloned()),
        team,
        profile_incomplete: me.profile_incomplete,
    })
}

/// Sets a person's foreman and line manager on the platform's behalf (tenant manifests).
pub async fn set_reporting_lines_as_system(
    db: &Db,
    tenant: TenantId,
    user: Uuid,
    foreman: Option<Uuid>,
    manager: Option<Uuid>,
) -> ApiResult<()> {
    let now = trainflow_kernel::now();
    let mut tx = TenantTx::begin_system(db, tenant).await?;
    users::set_reporting_lines(&mut tx, user, foreman, manager, now).await?;
    audit::record(
        &mut tx,
        Entry::as_actor("system", None, "user.reporting_lines", None)
            .object("user", user)
            .detail(serde_json::json!({"supervisor_id": foreman, "manager_id": manager})),
        now,
    )
    .await?;
    tx.commit().await
}

/// A person's recorded activity (sign-ins and changes they made), newest first.
pub async fn user_activity(
    db: &Db,
    ctx: &TenantCtx,
    id: Uuid,
    page: Page,
) -> ApiResult<(Vec<crate::api::AuditEntry>, i64)> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::UsersRead).await?;
    users::get(&mut tx, id, true).await?;
    let out = crate::api::audit_page(&mut tx, None, Some(id), None, page).await?;
    tx.commit().await?;
    Ok(out)
}

/// A page of the audit log, newest first, filtered by action, actor or object (an object
/// matches the entries about it and the import entries that list it).
pub async fn audit_log(
    db: &Db,
    ctx: &TenantCtx,
    action: Option<&str>,
    actor: Option<Uuid>,
    object: Option<Uuid>,
    page: Page,
) -> ApiResult<(Vec<crate::api::AuditEntry>, i64)> {
    let (rows, total, _) = audit_log_named(db, ctx, action, actor, object, page).await?;
    Ok((rows, total))
}

/// A page of the audit log with the names of the people who acted in it, for the portal.
pub async fn audit_log_named(
    db: &Db,
    ctx: &TenantCtx,
    action: Option<&str>,
    actor: Option<Uuid>,
    object: Option<Uuid>,
    page: Page,
) -> ApiResult<(
    Vec<crate::api::AuditEntry>,
    i64,
    std::collections::HashMap<Uuid, String>,
)> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::AuditRead).await?;
    let (rows, total) = crate::api::audit_page(&mut tx, action, actor, object, page).await?;
    let ids: Vec<Uuid> = rows.iter().filter_map(|e| e.actor_id).collect();
    let names = users::display_names(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok((rows, total, names))
}

/// Recomputes the tenant's audit hash chain: the first broken link, if any.
pub async fn verify_audit(db: &Db, ctx: &TenantCtx) -> ApiResult<Option<i64>> {
    let (mut tx, _) = TenantTx::begin(db, ctx, Permission::AuditRead).await?;
    let broken = audit::verify_chain(&mut tx).await?;
    tx.commit().await?;
    Ok(broken)
}
