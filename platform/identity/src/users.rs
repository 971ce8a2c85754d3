//! People of a tenant: the stored row, the API shape, validation and SQL.

use crate::password::NewPassword;
use poem_openapi::{types::MaybeUndefined, Object};
use serde::Deserialize;
use time::OffsetDateTime;
use trainflow_kernel::{
    auth::Role,
    db::{unique_violation_field, TenantTx},
    domain::{bounded, like_pattern, optional, EmailAddress, PhoneNumber},
    envelope::Page,
    sql, ApiError, ApiResult, FieldErrors, UserId,
};
use uuid::Uuid;

/// Columns selected for a user, joined with the department name.
pub const USER_COLUMNS: &str =
    "u.id, u.email, u.username, u.first_name, u.last_name, u.phone, u.address,
    u.employee_number, u.department_id, d.name as department_name, u.position, u.gender, u.role,
    u.is_active, u.email_verified_at, u.last_active_at, u.last_login_at, u.failed_login_attempts,
    u.external_id, u.pin_hash is not null as has_pin, u.pin_locked_at is not null as pin_locked,
    u.profile_incomplete, u.bio,
    exists (select 1 from user_avatars a where a.tenant_id = u.tenant_id and a.user_id = u.id) as has_avatar,
    u.created_at, u.updated_at, u.deleted_at";

/// `from` clause matching [`USER_COLUMNS`].
pub const USER_FROM: &str =
    "users u left join departments d on d.tenant_id = u.tenant_id and d.id = u.department_id";

/// A user as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: Option<String>,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub employee_number: Option<String>,
    pub department_id: Option<Uuid>,
    pub department_name: Option<String>,
    pub position: Option<String>,
    pub gender: Option<String>,
    pub role: String,
    pub is_active: bool,
    pub email_verified_at: Option<OffsetDateTime>,
    pub last_active_at: Option<OffsetDateTime>,
    pub last_login_at: Option<OffsetDateTime>,
    pub failed_login_attempts: i32,
    pub external_id: Option<String>,
    pub has_pin: bool,
    pub pin_locked: bool,
    pub profile_incomplete: bool,
    pub bio: Option<String>,
    pub has_avatar: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

/// A person of the tenant (User Management System fields plus TrainFlow's).
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct User {
    pub id: Uuid,
    /// Sign-in email, lower case, unique in the tenant. Absent for people without email
    /// (frontline staff), who sign in with their employee number.
    pub email: Option<String>,
    /// Unique in the tenant.
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// E.164, e.g. `+447700900123`.
    pub phone: Option<String>,
    pub address: Option<String>,
    /// Unique in the tenant; with the organisation, it signs in a person without email.
    pub employee_number: Option<String>,
    pub department_id: Option<Uuid>,
    pub department_name: Option<String>,
    pub position: Option<String>,
    pub gender: Option<String>,
    pub role: Role,
    pub is_active: bool,
    /// Whether the person has a sign-in PIN (set by an administrator or their foreman).
    pub has_pin: bool,
    /// Whether their PIN is locked after 10 consecutive failures (until a new one is set).
    pub pin_locked: bool,
    /// True for people an import added without a name: their name was derived from the
    /// import's mapping (job role and employee number) until someone completes the profile.
    pub profile_incomplete: bool,
    /// A few words the person writes about themselves.
    pub bio: Option<String>,
    /// Whether the person has a picture (`GET /users/{id}/avatar`).
    pub has_avatar: bool,
    /// False for people invited (e.g. by an HR sync) who have not set a password yet.
    pub email_verified: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_active_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    pub failed_login_attempts: i32,
    /// Id in the HR system that synced this person.
    pub external_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Set when soft-deleted; an administrator can restore.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            username: r.username,
            first_name: r.first_name,
            last_name: r.last_name,
            phone: r.phone,
            address: r.address,
            employee_number: r.employee_number,
            department_id: r.department_id,
            department_name: r.department_name,
            position: r.position,
            gender: r.gender,
            role: r.role.parse().unwrap_or(Role::Employee),
            is_active: r.is_active,
            email_verified: r.email_verified_at.is_some(),
            last_active_at: r.last_active_at,
            last_login_at: r.last_login_at,
            failed_login_attempts: r.failed_login_attempts,
            external_id: r.external_id,
            has_pin: r.has_pin,
            pin_locked: r.pin_locked,
            profile_incomplete: r.profile_incomplete,
            bio: r.bio,
            has_avatar: r.has_avatar,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
        }
    }
}

impl User {
    /// The audit-log form (no secrets are ever part of `User`).
    pub fn audit_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// "First Last", else the email, else the employee number.
    pub fn display_name(&self) -> String {
        name_of(
            &self.first_name,
            &self.last_name,
            self.email.as_deref(),
            self.employee_number.as_deref(),
        )
    }

    /// What the person signs in with: their email, else their employee number.
    pub fn login(&self) -> &str {
        self.email
            .as_deref()
            .or(self.employee_number.as_deref())
            .unwrap_or(&self.username)
    }
}

/// "First Last", else the email, else the employee number (a person has one of the two).
pub fn name_of(first: &str, last: &str, email: Option<&str>, number: Option<&str>) -> String {
    let name = format!("{first} {last}").trim().to_string();
    if !name.is_empty() {
        return name;
    }
    email
        .or(number)
        .map_or_else(|| "(no name)".to_string(), str::to_string)
}

/// Body of `POST /users`. Optional fields may be left out or `null` (the same).
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateUser {
    /// Sign-in email. A person without one needs an `employee_number`, which they sign in
    /// with.
    #[oai(
        nullable,
        validator(
            max_length = 254,
            pattern = r"^[\t\n\r ]*(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,31}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,21}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}){2}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,16}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,15}){3}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,8}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,7}){4,7})@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+[\t\n\r ]*$"
        )
    )]
    #[serde(default)]
    pub email: Option<String>,
    /// Defaults to the email, else the employee number.
    #[oai(
        nullable,
        validator(
            max_length = 100,
            pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
        )
    )]
    pub username: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    #[serde(default)]
    pub first_name: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    #[serde(default)]
    pub last_name: Option<String>,
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
        validator(max_length = 50, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub employee_number: Option<String>,
    #[oai(nullable)]
    pub department_id: Option<Uuid>,
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub position: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 30, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub gender: Option<String>,
    /// Defaults to `employee`.
    #[oai(nullable)]
    pub role: Option<Role>,
    /// Defaults to true.
    #[oai(nullable)]
    pub is_active: Option<bool>,
    /// Optional initial password (the policy in the schema). Without one the person is
    /// invited and sets a password through a reset link.
    #[oai(nullable)]
    pub password: Option<NewPassword>,
}

/// Body of `PUT /users/{id}`: the whole editable record. Optional fields may be left out or
/// `null` (the same: cleared).
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ReplaceUser {
    /// A person without email needs an `employee_number`.
    #[oai(
        nullable,
        validator(
            max_length = 254,
            pattern = r"^[\t\n\r ]*(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,31}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,21}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}){2}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,16}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,15}){3}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,8}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,7}){4,7})@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+[\t\n\r ]*$"
        )
    )]
    #[serde(default)]
    pub email: Option<String>,
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub username: String,
    #[oai(validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"))]
    pub first_name: String,
    #[oai(validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"))]
    pub last_name: String,
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
        validator(max_length = 50, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub employee_number: Option<String>,
    #[oai(nullable)]
    pub department_id: Option<Uuid>,
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub position: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 30, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub gender: Option<String>,
    pub role: Role,
    pub is_active: bool,
}

/// Body of `PATCH /users/{id}`: only the fields present change; `null` clears an optional one
/// (the fields declared nullable; `null` for `username`, `role` or `is_active` is 422). A
/// person keeps an email or an employee number.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PatchUser {
    #[serde(default)]
    #[oai(
        nullable,
        validator(
            max_length = 254,
            pattern = r"^[\t\n\r ]*(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,31}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,21}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}){2}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,16}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,15}){3}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,8}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,7}){4,7})@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+[\t\n\r ]*$"
        )
    )]
    pub email: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    ))]
    pub username: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub first_name: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub last_name: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(
        nullable,
        validator(
            max_length = 20,
            pattern = r"^(?: *|[ ().-]*\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}[ ().-]*)$"
        )
    )]
    pub phone: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(
        nullable,
        validator(max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub address: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(
        nullable,
        validator(max_length = 50, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub employee_number: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(nullable)]
    pub department_id: MaybeUndefined<Uuid>,
    #[serde(default)]
    #[oai(
        nullable,
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub position: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(
        nullable,
        validator(max_length = 30, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")
    )]
    pub gender: MaybeUndefined<String>,
    #[serde(default)]
    pub role: MaybeUndefined<Role>,
    #[serde(default)]
    pub is_active: MaybeUndefined<bool>,
}

/// Validated, normalised user fields: what is written.
#[derive(Debug, Clone)]
pub struct UserFields {
    pub email: Option<EmailAddress>,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<PhoneNumber>,
    pub address: Option<String>,
    pub employee_number: Option<String>,
    pub department_id: Option<Uuid>,
    pub position: Option<String>,
    pub gender: Option<String>,
    pub role: Role,
    pub is_active: bool,
}

impl ReplaceUser {
    /// Validates every field, collecting all errors.
    pub fn parse(self) -> Result<UserFields, ApiError> {
        let mut errors = FieldErrors::new();
        let email = errors.check(
            "email",
            match self
                .email
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                Some(e) => EmailAddress::parse(e).map(Some),
                None => Ok(None),
            },
        );
        let username = errors.check("username", bounded(&self.username, 1, 100));
        let first_name = errors.check("first_name", bounded(&self.first_name, 0, 100));
        let last_name = errors.check("last_name", bounded(&self.last_name, 0, 100));
        let phone = errors.check(
            "phone",
            match self
                .phone
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                Some(p) => PhoneNumber::parse(p).map(Some),
                None => Ok(None),
            },
        );
        let address = errors.check("address", optional(self.address.as_deref(), 500));
        let employee_number = errors.check(
            "employee_number",
            optional(self.employee_number.as_deref(), 50),
        );
        let position = errors.check("position", optional(self.position.as_deref(), 100));
        let gender = errors.check("gender", optional(self.gender.as_deref(), 30));
        if matches!(email, Some(None)) && matches!(employee_number, Some(None)) {
            errors.add(
                "email",
                "an email address or an employee number is required (people without email sign in with their employee number)",
            );
        }
        errors.into_result()?;
        Ok(UserFields {
            email: email.expect("checked"),
            username: username.expect("checked"),
            first_name: first_name.expect("checked"),
            last_name: last_name.expect("checked"),
            phone: phone.expect("checked"),
            address: address.expect("checked"),
            employee_number: employee_number.expect("checked"),
            department_id: self.department_id,
            position: position.expect("checked"),
            gender: gender.expect("checked"),
            role: self.role,
            is_active: self.is_active,
        })
    }
}

impl CreateUser {
    /// Validates, filling defaults; returns the fields and the optional initial password.
    pub fn parse(self) -> Result<(UserFields, Option<String>), ApiError> {
        let password = self.password.clone().map(String::from);
        let replace = ReplaceUser {
            username: self.username.clone().unwrap_or_else(|| {
                self.email
                    .as_deref()
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .or(self.employee_number.as_deref().map(str::trim))
                    .unwrap_or_default()
                    .to_lowercase()
            }),
            email: self.email,
            first_name: self.first_name.unwrap_or_default(),
            last_name: self.last_name.unwrap_or_default(),
            phone: self.phone,
            address: self.address,
            employee_number: self.employee_number,
            department_id: self.department_id,
            position: self.position,
            gender: self.gender,
            role: self.role.unwrap_or(Role::Employee),
            is_active: self.is_active.unwrap_or(true),
        };
        let fields = replace.parse();
        let password_error = password
            .as_deref()
            .and_then(|p| crate::password::check_policy(p).err());
        match (fields, password_error) {
            (Ok(f), None) => Ok((f, password)),
            (Ok(_), Some(e)) => Err(ApiError::field("password", e)),
            (Err(ApiError::Validation(mut errs)), Some(e)) => {
                errs.add("password", e);
                Err(ApiError::Validation(errs))
            }
            (Err(e), _) => Err(e),
        }
    }
}

impl PatchUser {
    /// Applies the patch on top of `current` and validates the result as a whole record.
    pub fn apply(self, current: &User) -> Result<UserFields, ApiError> {
        fn pick<T: Clone>(patch: MaybeUndefined<T>, current: Option<T>) -> Option<T> {
            match patch {
                MaybeUndefined::Undefined => current,
                MaybeUndefined::Null => None,
                MaybeUndefined::Value(v) => Some(v),
            }
        }
        let mut errors = FieldErrors::new();
        for (name, is_null) in [
            ("username", self.username.is_null()),
            ("role", self.role.is_null()),
            ("is_active", self.is_active.is_null()),
        ] {
            if is_null {
                errors.add(name, "cannot be null");
            }
        }
        errors.into_result()?;
        ReplaceUser {
            email: pick(self.email, current.email.clone()),
            username: pick(self.username, Some(current.username.clone())).unwrap_or_default(),
            first_name: pick(self.first_name, Some(current.first_name.clone())).unwrap_or_default(),
            last_name: pick(self.last_name, Some(current.last_name.clone())).unwrap_or_default(),
            phone: pick(self.phone, current.phone.clone()),
            address: pick(self.address, current.address.clone()),
            employee_number: pick(self.employee_number, current.employee_number.clone()),
            department_id: pick(self.department_id, current.department_id),
            position: pick(self.position, current.position.clone()),
            gender: pick(self.gender, current.gender.clone()),
            role: pick(self.role, Some(current.role)).unwrap_or(current.role),
            is_active: pick(self.is_active, Some(current.is_active)).unwrap_or(current.is_active),
        }
        .parse()
    }
}

/// Filters of the user list.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Substring of name, email or username (case-insensitive).
    pub search: Option<String>,
    pub role: Option<Role>,
    pub department_id: Option<Uuid>,
    pub is_active: Option<bool>,
    pub deleted: Deleted,
}

/// Which soft-deleted people a list shows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// Only people who are not deleted (the default).
    #[default]
    Exclude,
    /// Everyone.
    Include,
    /// Only deleted people.
    Only,
}

/// Sortable fields of the user list: API name → column.
pub const USER_SORTS: [(&str, &str); 6] = [
    ("created_at", "u.created_at"),
    ("email", "u.email"),
    ("last_name", "u.last_name"),
    ("first_name", "u.first_name"),
    ("last_active_at", "u.last_active_at"),
    ("employee_number", "u.employee_number"),
];

/// A bind value of a statement assembled at run time.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Uuid(Uuid),
    Bool(bool),
}

/// The `where` clause of a user list, assembled from fixed fragments for the filters actually
/// given, with numbered placeholders; values are only ever bound, never spliced.
///
/// One statement per filter combination (instead of `($2 is null or …)` for every filter)
/// lets PostgreSQL keep one cheap generic plan per statement and use the partial index of
/// live people for counts; with the catch-all form it re-planned every request.
#[derive(Debug, Clone)]
pub struct UserWhere {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl UserWhere {
    /// The clause for `tenant` and `filter`.
    pub fn new(tenant: Uuid, filter: &UserFilter) -> Self {
        let mut w = UserWhere {
            sql: "u.tenant_id = $1".into(),
            args: vec![Arg::Uuid(tenant)],
        };
        if let Some(pattern) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(like_pattern)
        {
            let n = w.args.len() + 1;
            w.sql.push_str(&format!(
                " and (lower(u.email) like ${n} escape '\\' or lower(u.username) like ${n} escape '\\'
                       or lower(u.employee_number) like ${n} escape '\\'
                       or lower(u.first_name || ' ' || u.last_name) like ${n} escape '\\')"
            ));
            w.args.push(Arg::Text(pattern));
        }
        if let Some(role) = filter.role {
            w.push("u.role", Arg::Text(role.as_str().into()));
        }
        if let Some(department) = filter.department_id {
            w.push("u.department_id", Arg::Uuid(department));
        }
        if let Some(active) = filter.is_active {
            w.push("u.is_active", Arg::Bool(active));
        }
        w.sql.push_str(match filter.deleted {
            Deleted::Exclude => " and u.deleted_at is null",
            Deleted::Only => " and u.deleted_at is not null",
            Deleted::Include => "",
        });
        w
    }

    fn push(&mut self, column: &str, arg: Arg) {
        self.args.push(arg);
        self.sql
            .push_str(&format!(" and {column} = ${}", self.args.len()));
    }

    /// The page statement: `$n+1` is the limit, `$n+2` the offset.
    pub fn page_sql(&self, sort: (&'static str, bool)) -> String {
        let n = self.args.len();
        format!(
            "select {USER_COLUMNS} from {USER_FROM} where {} order by {} {}, u.id limit ${} offset ${}",
            self.sql,
            sort.0,
            if sort.1 { "desc" } else { "asc" },
            n + 1,
            n + 2
        )
    }

    /// The count statement.
    pub fn count_sql(&self) -> String {
        format!("select count(*) from users u where {}", self.sql)
    }
}

/// Binds [`Arg`]s in order to a query of either backend (used inside [`sql!`]).
#[macro_export]
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::users::Arg::Text(s) => q.bind(s.as_str()),
                $crate::users::Arg::Uuid(u) => q.bind(*u),
                $crate::users::Arg::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}

/// One page of the tenant's users and the total matching the filter.
pub async fn list(
    tx: &mut TenantTx,
    filter: &UserFilter,
    sort: (&'static str, bool),
    page: Page,
) -> ApiResult<(Vec<User>, i64)> {
    let tenant = tx.tenant();
    // Two statements rather than `count(*) over ()`: the page then comes straight off the
    // (tenant_id, created_at, id) index instead of materialising every matching row.
    let w = UserWhere::new(tenant.0, filter);
    let (page_sql, count_sql) = (w.page_sql(sort), w.count_sql());
    let rows: Vec<UserRow> = sql!(tx.conn() => |c| crate::bind_args!(sqlx::query_as(&page_sql), &w.args)
        .bind(page.limit()).bind(page.offset()).fetch_all(&mut *c).await)?;
    let total: i64 = sql!(tx.conn() => |c| crate::bind_args!(sqlx::query_scalar(&count_sql), &w.args)
        .fetch_one(&mut *c).await)?;
    Ok((rows.into_iter().map(User::from).collect(), total))
}

/// A user by id; deleted users only when `include_deleted`.
pub async fn get(tx: &mut TenantTx, id: Uuid, include_deleted: bool) -> ApiResult<User> {
    let tenant = tx.tenant();
    let query = format!(
        "select {USER_COLUMNS} from {USER_FROM} where u.tenant_id = $1 and u.id = $2 and ($3 or u.deleted_at is null)"
    );
    let row: Option<UserRow> = sql!(tx.conn() => |c| sqlx::query_as(&query)
        .bind(tenant).bind(id).bind(include_deleted).fetch_optional(&mut *c).await)?;
    row.map(User::from).ok_or(ApiError::NotFound)
}

/// How a person names themselves at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Their email (lower case).
    Email(String),
    /// Their employee number, for people without email.
    EmployeeNumber(String),
}

impl Login {
    /// An entry with an `@` is an email; anything else is an employee number.
    pub fn parse(raw: &str) -> Login {
        let raw = raw.trim();
        if raw.contains('@') {
            Login::Email(raw.to_lowercase())
        } else {
            Login::EmployeeNumber(raw.to_string())
        }
    }

    /// The key the sign-in throttle counts failures under.
    pub fn key(&self) -> String {
        match self {
            Login::Email(e) => e.clone(),
            Login::EmployeeNumber(n) => format!("#{n}"),
        }
    }
}

/// What sign-in needs of a person: their record and secrets' hashes.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
    pub pin_hash: Option<String>,
}

/// A person by email or employee number, with their secrets' hashes (sign-in only).
pub async fn find_for_sign_in(tx: &mut TenantTx, login: &Login) -> ApiResult<Option<Credentials>> {
    let tenant = tx.tenant();
    let (column, value) = match login {
        Login::Email(e) => ("email", e.as_str()),
        Login::EmployeeNumber(n) => ("employee_number", n.as_str()),
    };
    let query = format!(
        "select {USER_COLUMNS}, u.password_hash, u.pin_hash from {USER_FROM}
          where u.tenant_id = $1 and u.{column} = $2 and u.deleted_at is null"
    );
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: Option<String>,
        pin_hash: Option<String>,
    }
    let row: Option<Row> = sql!(tx.conn() => |c| sqlx::query_as(&query)
        .bind(tenant).bind(value).fetch_optional(&mut *c).await)?;
    Ok(row.map(|r| Credentials {
        user: r.user.into(),
        password_hash: r.password_hash,
        pin_hash: r.pin_hash,
    }))
}

/// Consecutive failed PINs after which a PIN locks.
pub const PIN_ATTEMPTS: i32 = 10;

/// Counts a failed PIN; returns whether the PIN is now locked.
pub async fn pin_failed(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let locked: Option<OffsetDateTime> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "update users set pin_failed_attempts = pin_failed_attempts + 1,
                pin_locked_at = case when pin_failed_attempts + 1 >= $3 then coalesce(pin_locked_at, $4)
                                     else pin_locked_at end
          where tenant_id = $1 and id = $2 returning pin_locked_at")
        .bind(tenant).bind(id).bind(PIN_ATTEMPTS).bind(now).fetch_one(&mut *c).await)?;
    Ok(locked.is_some())
}

/// Sets (or, with `None`, removes) a person's PIN hash, unlocking it.
pub async fn set_pin(
    tx: &mut TenantTx,
    id: Uuid,
    hash: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<User> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update users set pin_hash = $3, pin_failed_attempts = 0, pin_locked_at = null, updated_at = $4
          where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).bind(hash).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    get(tx, id, false).await
}

/// Sets a person's bio.
pub async fn set_bio(
    tx: &mut TenantTx,
    id: Uuid,
    bio: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update users set bio = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(bio).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// One page of the people who report to `me` (as their foreman or line manager), by name, and
/// their number.
pub async fn reports_of(tx: &mut TenantTx, me: Uuid, page: Page) -> ApiResult<(Vec<User>, i64)> {
    let tenant = tx.tenant();
    let query = format!(
        "select {USER_COLUMNS} from {USER_FROM}
          where u.tenant_id = $1 and (u.supervisor_id = $2 or u.manager_id = $2) and u.deleted_at is null
          order by u.last_name, u.first_name, u.id limit $3 offset $4"
    );
    let rows: Vec<UserRow> = sql!(tx.conn() => |c| sqlx::query_as(&query)
        .bind(tenant).bind(me).bind(page.limit()).bind(page.offset()).fetch_all(&mut *c).await)?;
    let total: i64 = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from users
          where tenant_id = $1 and (supervisor_id = $2 or manager_id = $2) and deleted_at is null")
        .bind(tenant).bind(me).fetch_one(&mut *c).await)?;
    Ok((rows.into_iter().map(User::from).collect(), total))
}

/// A person's foreman and line manager (`supervisor_id`, `manager_id`).
pub async fn reporting_lines_of(
    tx: &mut TenantTx,
    id: Uuid,
) -> ApiResult<(Option<Uuid>, Option<Uuid>)> {
    let tenant = tx.tenant();
    let row: Option<(Option<Uuid>, Option<Uuid>)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select supervisor_id, manager_id from users where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

/// A person's foreman (`supervisor_id`).
pub async fn supervisor_of(tx: &mut TenantTx, id: Uuid) -> ApiResult<Option<Uuid>> {
    let tenant = tx.tenant();
    let row: Option<Option<Uuid>> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select supervisor_id from users where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    row.ok_or(ApiError::NotFound)
}

async fn check_department(tx: &mut TenantTx, department_id: Option<Uuid>) -> ApiResult<()> {
    let Some(id) = department_id else {
        return Ok(());
    };
    let tenant = tx.tenant();
    let found: Option<i32> = sql!(tx.conn() => |c| sqlx::query_scalar(
        "select 1 from departments where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
    found
        .map(drop)
        .ok_or_else(|| ApiError::field("department_id", "no such department"))
}

/// Refuses a record whose email, username or employee number another user holds, naming the
/// field (email first); the constraint mapping in [`map_unique`] remains the guard against a
/// concurrent insert.
async fn check_unique(tx: &mut TenantTx, f: &UserFields, except: Option<Uuid>) -> ApiResult<()> {
    let tenant = tx.tenant();
    let email = f.email.as_ref().map(EmailAddress::as_str);
    let rows: Vec<(Option<String>, String, Option<String>)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select email, username, employee_number from users
          where tenant_id = $1 and (email = $2 or username = $3 or employee_number = $4) and ($5 is null or id <> $5)")
        .bind(tenant).bind(email).bind(&f.username).bind(&f.employee_number).bind(except)
        .fetch_all(&mut *c).await)?;
    let mut errors = FieldErrors::new();
    if email.is_some() && rows.iter().any(|r| r.0.as_deref() == email) {
        errors.add("email", "another user already has this email");
    }
    if rows.iter().any(|r| r.1 == f.username) {
        errors.add("username", "another user already has this username");
    }
    if f.employee_number.is_some() && rows.iter().any(|r| r.2 == f.employee_number) {
        errors.add(
            "employee_number",
            "another user already has this employee number",
        );
    }
    match errors.0.keys().next().cloned() {
        None => Ok(()),
        Some(first) => {
            let message = errors.0[&first].join("; ");
            Err(ApiError::Conflict {
                field: first,
                message,
            })
        }
    }
}

fn map_unique(err: sqlx::Error) -> ApiError {
    match unique_violation_field(&err, "users") {
        Some(field) => ApiError::Conflict {
            message: format!("another user already has this {field}"),
            field,
        },
        None => err.into(),
    }
}

/// Inserts a user; `password_hash` is `None` for an invited person.
pub async fn insert(
    tx: &mut TenantTx,
    f: &UserFields,
    password_hash: Option<String>,
    external_id: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<User> {
    check_department(tx, f.department_id).await?;
    check_unique(tx, f, None).await?;
    let tenant = tx.tenant();
    let id = UserId::new().0;
    let verified = password_hash.as_ref().map(|_| now);
    sql!(tx.conn() => |c| sqlx::query(
        "insert into users (tenant_id, id, email, username, first_name, last_name, phone, address,
                            employee_number, department_id, position, gender, role, password_hash,
                            is_active, email_verified_at, external_id, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)")
        .bind(tenant).bind(id).bind(f.email.as_ref().map(EmailAddress::as_str)).bind(&f.username).bind(&f.first_name)
        .bind(&f.last_name).bind(f.phone.as_ref().map(PhoneNumber::as_str)).bind(&f.address)
        .bind(&f.employee_number).bind(f.department_id).bind(&f.position).bind(&f.gender)
        .bind(f.role.as_str()).bind(&password_hash).bind(f.is_active).bind(verified).bind(external_id).bind(now)
        .execute(&mut *c).await.map(drop)).map_err(map_unique)?;
    get(tx, id, false).await
}

/// Writes all editable fields of user `id`.
pub async fn update(
    tx: &mut TenantTx,
    id: Uuid,
    f: &UserFields,
    now: OffsetDateTime,
) -> ApiResult<User> {
    check_department(tx, f.department_id).await?;
    check_unique(tx, f, Some(id)).await?;
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update users set email = $3, username = $4, first_name = $5, last_name = $6, phone = $7,
                address = $8, employee_number = $9, department_id = $10, position = $11, gender = $12,
                role = $13, is_active = $14, updated_at = $15,
                profile_incomplete = profile_incomplete and first_name = $5 and last_name = $6
          where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).bind(f.email.as_ref().map(EmailAddress::as_str)).bind(&f.username).bind(&f.first_name)
        .bind(&f.last_name).bind(f.phone.as_ref().map(PhoneNumber::as_str)).bind(&f.address)
        .bind(&f.employee_number).bind(f.department_id).bind(&f.position).bind(&f.gender)
        .bind(f.role.as_str()).bind(f.is_active).bind(now)
        .execute(&mut *c).await.map(|r| r.rows_affected())).map_err(map_unique)?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    if !f.is_active {
        revoke_credentials(tx, id, now).await?;
    }
    get(tx, id, false).await
}

/// Soft-deletes (and deactivates) user `id`, ending their sessions and refresh tokens.
pub async fn soft_delete(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update users set deleted_at = $3, is_active = false, updated_at = $3
          where tenant_id = $1 and id = $2 and deleted_at is null")
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    revoke_credentials(tx, id, now).await
}

/// Restores a soft-deleted user as active.
pub async fn restore(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> ApiResult<User> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "update users set deleted_at = null, is_active = true, updated_at = $3
          where tenant_id = $1 and id = $2 and deleted_at is not null")
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        // Either no such user, or not deleted: both answer 404 so the outcome leaks nothing.
        return Err(ApiError::NotFound);
    }
    get(tx, id, false).await
}

/// Ends every session and refresh token of a user.
pub async fn revoke_credentials(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update refresh_tokens set revoked_at = $3 where tenant_id = $1 and user_id = $2 and revoked_at is null")
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(drop))?;
    sql!(tx.conn() => |c| sqlx::query(
        "update sessions set revoked_at = $3 where tenant_id = $1 and user_id = $2 and revoked_at is null")
        .bind(tenant).bind(id).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Active, not deleted users.
pub async fn active_count(tx: &mut TenantTx) -> ApiResult<i64> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from users where tenant_id = $1 and is_active = true and deleted_at is null")
        .bind(tenant).fetch_one(&mut *c).await)?)
}

/// Sets a new password hash.
pub async fn set_password(
    tx: &mut TenantTx,
    id: Uuid,
    hash: &str,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update users set password_hash = $3, updated_at = $4 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).bind(hash).bind(now).execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// The stored password hash of a user.
pub async fn password_hash(tx: &mut TenantTx, id: Uuid) -> ApiResult<Option<String>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select password_hash from users where tenant_id = $1 and id = $2")
        .bind(tenant).bind(id).fetch_one(&mut *c).await)?)
}

/// Sets `user`'s foreman and line manager.
pub async fn set_reporting_lines(
    tx: &mut TenantTx,
    user: Uuid,
    supervisor: Option<Uuid>,
    manager: Option<Uuid>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "update users set supervisor_id = $3, manager_id = $4, updated_at = $5 where tenant_id = $1 and id = $2")
        .bind(tenant).bind(user).bind(supervisor).bind(manager).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Active people of one department.
pub async fn active_in_department(tx: &mut TenantTx, department: Uuid) -> ApiResult<i64> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_scalar(
        "select count(*) from users
          where tenant_id = $1 and department_id = $2 and is_active = true and deleted_at is null")
        .bind(tenant).bind(department).fetch_one(&mut *c).await)?)
}

/// The newest audit entries of the tenant with the name of who acted: (when, action, who).
pub async fn recent_activity(
    tx: &mut TenantTx,
    subjects: &[&str],
    limit: i64,
) -> ApiResult<Vec<(OffsetDateTime, String, String)>> {
    let entries = trainflow_kernel::audit::recent(tx, subjects, limit).await?;
    let ids: Vec<Uuid> = entries.iter().filter_map(|e| e.actor_id).collect();
    let names = display_names(tx, &ids).await?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let who = e
                .actor_id
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or_else(|| actor_label(&e.actor_kind).to_string());
            (
                e.occurred_at,
                trainflow_kernel::audit::describe(&e.action),
                who,
            )
        })
        .collect())
}

/// How an entry's actor reads when it is not a person of the tenant.
pub fn actor_label(kind: &str) -> &'static str {
    match kind {
        "system" => "TrainFlow (scheduled job or import)",
        "connector" => "A connector (import)",
        "operator" => "Platform operator",
        "anonymous" => "Not signed in",
        _ => "A former person",
    }
}

/// (id, first name, last name, email, employee number).
type NameRow = (Uuid, String, String, Option<String>, Option<String>);

/// The display name ([`name_of`]) of each of `ids` that exists.
pub async fn display_names(
    tx: &mut TenantTx,
    ids: &[Uuid],
) -> ApiResult<std::collections::HashMap<Uuid, String>> {
    let mut out = std::collections::HashMap::new();
    let tenant = tx.tenant();
    for chunk in ids.chunks(100) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let statement = format!(
            "select id, first_name, last_name, email, employee_number from users where tenant_id = $1 and id in ({})",
            placeholders.join(", ")
        );
        let rows: Vec<NameRow> = sql!(tx.conn() => |c| {
            let mut query = sqlx::query_as(&statement).bind(tenant);
            for id in chunk {
                query = query.bind(*id);
            }
            query.fetch_all(&mut *c).await
        })?;
        for (id, first, last, email, number) in rows {
            out.insert(
                id,
                name_of(&first, &last, email.as_deref(), number.as_deref()),
            );
        }
    }
    Ok(out)
}

/// Notes activity (at most once a minute per user, to keep reads cheap).
pub async fn touch_last_active(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> ApiResult<()> {
    let tenant = tx.tenant();
    let cutoff = now - time::Duration::minutes(1);
    sql!(tx.conn() => |c| sqlx::query(
        "update users set last_active_at = $3
          where tenant_id = $1 and id = $2 and (last_active_at is null or last_active_at < $4)")
        .bind(tenant).bind(id).bind(now).bind(cutoff).execute(&mut *c).await.map(drop))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace() -> ReplaceUser {
        ReplaceUser {
            email: Some("A@Example.com".into()),
            username: "a".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            phone: Some("+44 7700 900123".into()),
            address: None,
            employee_number: None,
            department_id: None,
            position: None,
            gender: None,
            role: Role::Employee,
            is_active: true,
        }
    }

    #[test]
    fn a_valid_record_is_normalised() {
        let f = replace().parse().unwrap();
        assert_eq!(f.email.unwrap().as_str(), "a@example.com");
        assert_eq!(f.phone.unwrap().as_str(), "+447700900123");
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let mut r = replace();
        r.email = Some("nope".into());
        r.phone = Some("12345".into());
        match r.parse() {
            Err(ApiError::Validation(f)) => {
                assert!(f.0.contains_key("email"));
                assert!(f.0.contains_key("phone"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_person_needs_an_email_or_an_employee_number() {
        let mut r = replace();
        r.email = None;
        match r.clone().parse() {
            Err(ApiError::Validation(f)) => assert!(f.0.contains_key("email"), "{f:?}"),
            other => panic!("{other:?}"),
        }
        r.employee_number = Some("E1".into());
        assert!(r.parse().unwrap().email.is_none());
    }

    #[test]
    fn an_at_sign_tells_an_email_from_an_employee_number() {
        assert_eq!(Login::parse(" A@B.test "), Login::Email("a@b.test".into()));
        assert_eq!(
            Login::parse(" E1001 "),
            Login::EmployeeNumber("E1001".into())
        );
    }
}
