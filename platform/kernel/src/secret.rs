//! Random tokens for links, refresh tokens and sessions. Only their SHA-256 is stored.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh 256-bit random token, URL-safe base64 without padding.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a token: what the database keeps.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hex SHA-256 of arbitrary bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Constant-time comparison of two byte strings.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn digest_is_stable_and_not_the_token() {
        assert_eq!(token_digest("x"), token_digest("x"));
        assert_ne!(token_digest("x"), "x");
        assert_eq!(token_digest("x").len(), 64);
    }
}

/// A link token that names its tenant: `<tenant id>.<256-bit random>`. Links that act (approve,
/// reset a password, verify an email) are opened without a session, and the tenant part lets
/// the server look the token up under that tenant's row-level security. Returns the token and
/// the digest to store.
pub fn link_token(tenant: crate::TenantId) -> (String, String) {
    let token = format!("{}.{}", tenant.0.simple(), random_token());
    let digest = token_digest(&token);
    (token, digest)
}

/// The tenant and stored digest of a link token; `None` when it is not one.
pub fn parse_link_token(token: &str) -> Option<(crate::TenantId, String)> {
    let (tenant, random) = token.split_once('.')?;
    if random.len() != 43
        || !random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let tenant = uuid::Uuid::try_parse(tenant).ok()?;
    Some((crate::TenantId(tenant), token_digest(token)))
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn link_tokens_round_trip_and_reject_tampering() {
        let tenant = crate::TenantId(uuid::Uuid::now_v7());
        let (token, digest) = link_token(tenant);
        assert_eq!(parse_link_token(&token), Some((tenant, digest.clone())));
        assert!(parse_link_token("garbage").is_none());
        assert!(parse_link_token(&token[..token.len() - 1]).is_none());
        let other = format!("{}.{}", uuid::Uuid::now_v7().simple(), &token[33..]);
        assert_ne!(parse_link_token(&other).map(|p| p.1), Some(digest));
    }
}
