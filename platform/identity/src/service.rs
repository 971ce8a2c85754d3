//! Use cases shared by the API and the portal: each opens the tenant transaction with the
//! permission it needs, changes data, audits, and commits — all or nothing.

use trainflow_kernel::{
    audit::{self, Entry},
    auth::{Permission, Role, TenantCtx},
    db::{Db, TenantTx},
    envelope::Page,
    ApiError, ApiResult, TenantId,
};
use uuid::Uuid;

use crate::{
    password::Hasher,
    users::{self, CreateUser, ReplaceUser, User, UserFields, UserFilter},
};

/// Creates a person (hashing the optional initial password first, outside the transaction).
pub async fn create_user(
    db: &Db,
    hasher: &Hasher,
    ctx: &TenantCtx,
    body: CreateUser,
) -> ApiResult<User> {
    let (fields, hash) = parse_and_hash(hasher, body).await?;
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    let user = insert_audited(&mut tx, &fields, hash, Entry::by(&ctx, "user.create")).await?;
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
    let user = users::insert(tx, fields, hash, None, trainflow_kernel::now()).await?;
    audit::record(
        tx,
        entry
            .object("user", user.id)
            .change(None, Some(user.audit_json())),
    )
    .await?;
    Ok(user)
}

/// Whether `email` (any case) belongs to someone in the tenant, deleted people included.
pub async fn email_taken(db: &Db, tenant: TenantId, email: &str) -> ApiResult<bool> {
    let mut tx = TenantTx::begin_system(db, tenant).await?;
    let email = email.trim().to_lowercase();
    let found: Option<i32> = trainflow_kernel::sql!(tx.conn() => |c| sqlx::query_scalar(
        "select 1 from users where tenant_id = $1 and email = $2")
        .bind(tenant).bind(&email).fetch_optional(&mut *c).await)?;
    tx.commit().await?;
    Ok(found.is_some())
}

/// Rewrites a person's record from the fields `f` computes from the current record.
/// Administrators cannot demote or deactivate themselves.
pub async fn write_user(
    db: &Db,
    ctx: &TenantCtx,
    id: Uuid,
    f: impl FnOnce(&User) -> Result<UserFields, ApiError>,
) -> ApiResult<User> {
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
    let after = users::update(&mut tx, id, &fields, trainflow_kernel::now()).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.update")
            .object("user", id)
            .change(Some(before.audit_json()), Some(after.audit_json())),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Soft-deletes a person (not oneself).
pub async fn delete_user(db: &Db, ctx: &TenantCtx, id: Uuid) -> ApiResult<()> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    let before = users::get(&mut tx, id, false).await?;
    if before.id == ctx.user_id.0 {
        return Err(ApiError::Conflict {
            field: "id".into(),
            message: "you cannot delete yourself".into(),
        });
    }
    users::soft_delete(&mut tx, id, trainflow_kernel::now()).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.delete")
            .object("user", id)
            .change(Some(before.audit_json()), None),
    )
    .await?;
    tx.commit().await
}

/// Restores a soft-deleted person.
pub async fn restore_user(db: &Db, ctx: &TenantCtx, id: Uuid) -> ApiResult<User> {
    let (mut tx, ctx) = TenantTx::begin(db, ctx, Permission::UsersWrite).await?;
    let user = users::restore(&mut tx, id, trainflow_kernel::now()).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.restore")
            .object("user", user.id)
            .change(None, Some(user.audit_json())),
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
}

/// Updates one's own profile.
pub async fn update_me(db: &Db, ctx: &TenantCtx, edit: SelfEdit) -> ApiResult<User> {
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
    let after = users::update(&mut tx, before.id, &fields, trainflow_kernel::now()).await?;
    audit::record(
        &mut tx,
        Entry::by(&ctx, "user.update_self")
            .object("user", after.id)
            .change(Some(before.audit_json()), Some(after.audit_json())),
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
