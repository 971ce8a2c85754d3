//! Password hashing with argon2id at the OWASP baseline (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on the blocking pool behind a
//! semaphore: a burst of sign-ins queues instead of exhausting memory.

use std::sync::{Arc, OnceLock};

use argon2::{
    password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
    },
    Algorithm, Argon2, Params, Version,
};
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use std::borrow::Cow;
use tokio::sync::Semaphore;

/// Bounded-concurrency argon2id hasher.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP baseline parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password, verified against when the account does not exist so that an
/// unknown email takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        argon2()
            .hash_password(
                trainflow_kernel::secret::random_token().as_bytes(),
                &SaltString::generate(&mut OsRng),
            )
            .expect("hashing a random password succeeds")
            .to_string()
    })
}

impl Hasher {
    /// A hasher running at most `max_concurrent` hashes at once.
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Hashes `password` (PHC string).
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || {
            argon2()
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await?
    }

    /// Checks `password` against `hash`; with no hash, spends the same time and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || {
            let stored = hash.as_deref().unwrap_or_else(|| dummy_hash());
            let parsed = PasswordHash::new(stored)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            Ok(hash.is_some()
                && argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
        })
        .await?
    }
}

/// The [`check_policy`] rules as an ECMA-262 pattern, for the OpenAPI document (case-insensitive
/// prefixes spelt out, since JSON Schema patterns take no flags). The server does not evaluate
/// it (Rust's `regex` has no look-around); it runs [`check_policy`], which says the same.
pub const POLICY_PATTERN: &str = concat!(
    r"^(?![pP][aA][sS][sS][wW][oO][rR][dD]1234|123456789012|[qQ][wW][eE][rR][tT][yY][uU][iI][oO][pP][aA][sS]",
    r"|[pP][aA][sS][sS][wW][oO][rR][dD][pP][aA][sS][sS][wW][oO][rR][dD]|[lL][eE][tT][mM][eE][iI][nN]12345",
    r"|[iI][lL][oO][vV][eE][yY][oO][uU]1234|[tT][rR][aA][iI][nN][fF][lL][oO][wW]123",
    r"|[aA][dD][mM][iI][nN][iI][sS][tT][rR][aA][tT][oO][rR])(?!([\s\S])\1*$)",
);

/// A password being chosen (a new account's, a change, a reset): a string whose schema states
/// the policy (12–128 characters, [`POLICY_PATTERN`]). Parsing accepts any string; the
/// operation checks [`check_policy`] and names the field.
#[derive(Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct NewPassword(pub String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

impl std::ops::Deref for NewPassword {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for NewPassword {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<NewPassword> for String {
    fn from(p: NewPassword) -> Self {
        p.0
    }
}

impl Type for NewPassword {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string(password)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            format: Some("password"),
            min_length: Some(12),
            max_length: Some(128),
            pattern: Some(POLICY_PATTERN.to_string()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for NewPassword {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        String::parse_from_json(value)
            .map(Self)
            .map_err(ParseError::propagate)
    }
}

impl ToJSON for NewPassword {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String("***".into()))
    }
}

/// The password policy: 12 to 128 characters, not a well-known password, not only one
/// repeated character. (Length over composition rules, as NIST SP 800-63B advises.)
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 12 {
        return Err("must be at least 12 characters".into());
    }
    if n > 128 {
        return Err("must be at most 128 characters".into());
    }
    let lower = password.to_lowercase();
    const COMMON: [&str; 8] = [
        "password1234",
        "123456789012",
        "qwertyuiopas",
        "passwordpassword",
        "letmein12345",
        "iloveyou1234",
        "trainflow123",
        "administrator",
    ];
    if COMMON.iter().any(|c| lower.starts_with(c)) {
        return Err("is too common".into());
    }
    let first = password.chars().next().unwrap_or_default();
    if password.chars().all(|c| c == first) {
        return Err("must not be one repeated character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let h = Hasher::new(2);
        let hash = h.hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h
            .verify("correct horse battery".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!h
            .verify("wrong horse battery".into(), Some(hash))
            .await
            .unwrap());
        assert!(!h.verify("anything at all".into(), None).await.unwrap());
    }

    #[test]
    fn short_and_common_passwords_are_refused() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("password12345").is_err());
        assert!(check_policy("aaaaaaaaaaaaaa").is_err());
        assert!(check_policy("a long enough passphrase").is_ok());
    }
}
