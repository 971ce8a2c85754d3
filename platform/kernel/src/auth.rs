//! Roles, permissions, the authenticated tenant context and access tokens.
//!
//! The permission table ([`Role::grants`]) is the single place that says who may do what;
//! [`crate::db::TenantTx::begin`] checks it for every operation against the role as stored now.

use std::{str::FromStr, sync::Arc};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poem::Request;
use poem_openapi::{auth::Bearer, Enum, SecurityScheme};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ApiError, TenantId, UserId};

/// A role within a tenant (FEATURES I2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum Role {
    /// Employee or trainee: their own learning, certifications and profile.
    Employee,
    /// Foreman: first-line supervisor of a crew.
    Foreman,
    /// Manager or head of department.
    Manager,
    /// Training officer (DP Academics): runs training and compliance.
    TrainingOfficer,
    /// Trainer: teaches sessions.
    Trainer,
    /// Tenant administrator.
    Administrator,
}

impl Role {
    /// Every role, in order of increasing reach.
    pub const ALL: [Role; 6] = [
        Role::Employee,
        Role::Trainer,
        Role::Foreman,
        Role::Manager,
        Role::TrainingOfficer,
        Role::Administrator,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Employee => "employee",
            Role::Foreman => "foreman",
            Role::Manager => "manager",
            Role::TrainingOfficer => "training_officer",
            Role::Trainer => "trainer",
            Role::Administrator => "administrator",
        }
    }

    /// A label for people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Employee => "Employee",
            Role::Foreman => "Foreman",
            Role::Manager => "Manager",
            Role::TrainingOfficer => "Training officer",
            Role::Trainer => "Trainer",
            Role::Administrator => "Administrator",
        }
    }

    /// The permission table.
    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match permission {
            SelfService => true,
            UsersRead => matches!(self, Foreman | Manager | TrainingOfficer | Administrator),
            UsersWrite | AuditRead | TenantSettings | Integrations => self == Administrator,
            Broadcast => matches!(self, Manager | TrainingOfficer | Administrator),
            CertificationsManage => matches!(self, TrainingOfficer | Administrator),
            ComplianceRead => matches!(self, Foreman | Manager | TrainingOfficer | Administrator),
            PinSet => matches!(self, Foreman | Administrator),
            ImportsRead => matches!(self, TrainingOfficer | Administrator),
            CoursesManage => matches!(self, TrainingOfficer | Administrator),
            EnrolmentsAssign => matches!(self, Manager | TrainingOfficer | Administrator),
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("must be one of: {}", Role::ALL.map(Role::as_str).join(", ")))
    }
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read and change one's own profile, sessions and dashboard.
    SelfService,
    /// See people of the tenant.
    UsersRead,
    /// Create, change, deactivate and restore people.
    UsersWrite,
    /// Read the audit log.
    AuditRead,
    /// Change tenant settings.
    TenantSettings,
    /// See, install and run connectors.
    Integrations,
    /// Send broadcasts to everyone, a role or a department.
    Broadcast,
    /// Define certification types and approval chains; record certifications for anyone.
    CertificationsManage,
    /// See who is compliant, expiring or expired.
    ComplianceRead,
    /// Set or remove a person's sign-in PIN (administrators for anyone; foremen for the
    /// people who report to them).
    PinSet,
    /// See how imports went: connector installations and their newest runs, without changing
    /// them (training officers answer for the records imports feed).
    ImportsRead,
    /// Build the catalogue: create, change, publish, archive, delete and restore courses, their
    /// modules, lessons and prerequisites; see drafts; see and manage everyone's enrolments.
    CoursesManage,
    /// Assign courses: managers to the people who report to them; training officers and
    /// administrators to anyone, a department or a role.
    EnrolmentsAssign,
}

impl Permission {
    /// Stable name, used in audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SelfService => "self_service",
            Permission::UsersRead => "users_read",
            Permission::UsersWrite => "users_write",
            Permission::AuditRead => "audit_read",
            Permission::TenantSettings => "tenant_settings",
            Permission::Integrations => "integrations",
            Permission::Broadcast => "broadcast",
            Permission::CertificationsManage => "certifications_manage",
            Permission::ComplianceRead => "compliance_read",
            Permission::PinSet => "pin_set",
            Permission::ImportsRead => "imports_read",
            Permission::CoursesManage => "courses_manage",
            Permission::EnrolmentsAssign => "enrolments_assign",
        }
    }

    /// Whether operations under this permission write (SQLite then takes the write lock up front).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Permission::UsersWrite
                | Permission::TenantSettings
                | Permission::SelfService
                | Permission::Integrations
                | Permission::Broadcast
                | Permission::CertificationsManage
                | Permission::PinSet
                | Permission::CoursesManage
                | Permission::EnrolmentsAssign
        )
    }
}

/// The caller, resolved once at the edge from a token or session.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    /// The tenant, from the token — never from a request parameter.
    pub tenant_id: TenantId,
    /// The signed-in user.
    pub user_id: UserId,
    /// The role (refreshed from the database when a transaction begins).
    pub role: Role,
    /// The client address, for audit entries.
    pub ip: Option<String>,
}

/// Token lifetimes and signing keys.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Issuer claim.
    pub issuer: String,
    /// Access-token lifetime in seconds (at most 900).
    pub access_ttl_secs: i64,
}

const AUDIENCE: &str = "trainflow-api";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the user id (or operator id for platform tokens).
    pub sub: Uuid,
    /// Tenant id; absent on platform-operator tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    /// Role at issue time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// `access` or `platform`.
    pub typ: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
}

impl JwtKeys {
    /// Keys from a secret of at least 32 bytes (HS256 is the one accepted algorithm).
    pub fn new(secret: &[u8], issuer: String, access_ttl_secs: i64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= 32,
            "the JWT secret must be at least 32 bytes"
        );
        anyhow::ensure!(
            (60..=900).contains(&access_ttl_secs),
            "access tokens live between 60 and 900 seconds"
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer,
            access_ttl_secs,
        })
    }

    /// Signs a token for a tenant user.
    pub fn issue_access(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
        now: i64,
    ) -> anyhow::Result<String> {
        self.sign(Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: user.0,
            tid: Some(tenant.0),
            role: Some(role),
            typ: "access".into(),
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: Uuid::new_v4(),
        })
    }

    /// Signs a token for a platform operator.
    pub fn issue_platform(&self, operator: Uuid, now: i64) -> anyhow::Result<String> {
        self.sign(Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: operator,
            tid: None,
            role: None,
            typ: "platform".into(),
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: Uuid::new_v4(),
        })
    }

    fn sign(&self, claims: Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature, algorithm, issuer, audience, expiry and type.
    pub fn verify(&self, token: &str, typ: &str) -> Result<Claims, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthorized("invalid or expired token"))?;
        if data.claims.typ != typ {
            return Err(ApiError::Unauthorized("wrong token type"));
        }
        Ok(data.claims)
    }
}

/// The client address as seen by the server (or the first `X-Forwarded-For` hop when the
/// deployment says a proxy is trusted; see the server crate).
pub fn client_ip(req: &Request) -> Option<String> {
    if let Some(ip) = req.extensions().get::<ClientIp>() {
        return Some(ip.0.clone());
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string())
}

/// The resolved client address, put into request extensions by the server's middleware.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// Bearer access token of a tenant user.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_tenant_bearer")]
pub struct TenantAuth(pub TenantCtx);

/// An access token the server's edge already verified (for the per-tenant rate limit), kept in
/// the request's extensions so the token is verified once per request.
#[derive(Debug, Clone)]
pub struct VerifiedAccess {
    /// The token as presented.
    pub token: String,
    /// Its verified claims.
    pub claims: Claims,
}

async fn check_tenant_bearer(req: &Request, bearer: Bearer) -> poem::Result<TenantCtx> {
    let claims = match req.extensions().get::<VerifiedAccess>() {
        Some(v) if v.token == bearer.token => v.claims.clone(),
        _ => {
            let keys = req
                .data::<Arc<JwtKeys>>()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("JWT keys missing")))?;
            keys.verify(&bearer.token, "access")?
        }
    };
    let (Some(tid), Some(role)) = (claims.tid, claims.role) else {
        return Err(ApiError::Unauthorized("not a tenant token").into());
    };
    Ok(TenantCtx {
        tenant_id: TenantId(tid),
        user_id: UserId(claims.sub),
        role,
        ip: client_ip(req),
    })
}

/// A permission an operation names as a type, for [`TokenGrants`].
pub trait Needs: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

/// [`Permission::Integrations`], for [`TokenGrants`].
pub struct NeedsIntegrations;

impl Needs for NeedsIntegrations {
    const PERMISSION: Permission = Permission::Integrations;
}

/// Refuses (403), before the request body is read, a caller whose access token's role lacks
/// `N`'s permission. Declared after the security scheme and before a large body (a package
/// upload), so a caller who may not upload never has the body spooled. The use case checks the
/// person's current role again in its transaction.
pub struct TokenGrants<N: Needs>(std::marker::PhantomData<N>);

impl<'a, N: Needs> poem::FromRequest<'a> for TokenGrants<N> {
    async fn from_request(req: &'a Request, _body: &mut poem::RequestBody) -> poem::Result<Self> {
        match req.extensions().get::<VerifiedAccess>() {
            Some(v) if v.claims.role.is_some_and(|r| !r.grants(N::PERMISSION)) => {
                Err(ApiError::Forbidden.into())
            }
            _ => Ok(TokenGrants(std::marker::PhantomData)),
        }
    }
}

/// Bearer token of a platform operator (above tenants).
#[derive(SecurityScheme)]
#[oai(
    ty = "bearer",
    bearer_format = "JWT",
    checker = "check_platform_bearer"
)]
pub struct PlatformAuth(pub OperatorCtx);

/// A signed-in platform operator.
#[derive(Debug, Clone)]
pub struct OperatorCtx {
    /// The operator's id.
    pub operator_id: Uuid,
    /// The client address.
    pub ip: Option<String>,
}

async fn check_platform_bearer(req: &Request, bearer: Bearer) -> poem::Result<OperatorCtx> {
    let keys = req
        .data::<Arc<JwtKeys>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("JWT keys missing")))?;
    let claims = keys.verify(&bearer.token, "platform")?;
    Ok(OperatorCtx {
        operator_id: claims.sub,
        ip: client_ip(req),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32], "trainflow".into(), 900).unwrap()
    }

    #[test]
    fn an_access_token_round_trips() {
        let k = keys();
        let t = k
            .issue_access(
                TenantId::new(),
                UserId::new(),
                Role::Manager,
                crate::now().unix_timestamp(),
            )
            .unwrap();
        let c = k.verify(&t, "access").unwrap();
        assert_eq!(c.role, Some(Role::Manager));
    }

    #[test]
    fn a_platform_token_is_not_an_access_token() {
        let k = keys();
        let t = k
            .issue_platform(Uuid::new_v4(), crate::now().unix_timestamp())
            .unwrap();
        assert!(k.verify(&t, "access").is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let k = keys();
        let t = k
            .issue_access(TenantId::new(), UserId::new(), Role::Employee, 1_000_000)
            .unwrap();
        assert!(k.verify(&t, "access").is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = JwtKeys::new(&[8u8; 32], "trainflow".into(), 900).unwrap();
        let t = other
            .issue_access(
                TenantId::new(),
                UserId::new(),
                Role::Employee,
                crate::now().unix_timestamp(),
            )
            .unwrap();
        assert!(keys().verify(&t, "access").is_err());
    }

    #[test]
    fn only_administrators_write_users() {
        for role in Role::ALL {
            assert_eq!(
                role.grants(Permission::UsersWrite),
                role == Role::Administrator
            );
        }
    }
}
