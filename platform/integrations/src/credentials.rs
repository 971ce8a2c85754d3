//! Installation credentials, encrypted with AES-256-GCM.
//!
//! The associated data binds a ciphertext to its tenant and installation: a row copied to
//! another installation (or tenant) does not decrypt. Stored as `nonce (12 bytes) || ciphertext`.
//! Plain values exist only in memory, on their way into the connector's sandbox.

use std::collections::BTreeMap;

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Key, Nonce,
};
use base64::Engine;
use rand::RngCore;
use uuid::Uuid;

/// The key credentials are encrypted with.
#[derive(Clone)]
pub struct CredentialsKey(Key<Aes256Gcm>);

impl std::fmt::Debug for CredentialsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsKey(redacted)")
    }
}

impl CredentialsKey {
    /// A key from 32 bytes encoded in standard base64.
    pub fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| anyhow::anyhow!("the credentials key must be base64"))?;
        anyhow::ensure!(
            bytes.len() == 32,
            "the credentials key must be 32 bytes (base64 of 32 random bytes)"
        );
        Ok(Self(*Key::<Aes256Gcm>::from_slice(&bytes)))
    }

    /// A random key (development only: what it encrypts is unreadable after a restart).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(*Key::<Aes256Gcm>::from_slice(&bytes))
    }

    /// Encrypts the credentials of one installation.
    pub fn seal(
        &self,
        tenant: Uuid,
        installation: Uuid,
        values: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<u8>> {
        let plain = serde_json::to_vec(values)?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(tenant, installation);
        let sealed = Aes256Gcm::new(&self.0)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting credentials failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`CredentialsKey::seal`] wrote for the same tenant and installation.
    pub fn open(
        &self,
        tenant: Uuid,
        installation: Uuid,
        stored: &[u8],
    ) -> anyhow::Result<BTreeMap<String, String>> {
        anyhow::ensure!(stored.len() > 12, "stored credentials are truncated");
        let (nonce, sealed) = stored.split_at(12);
        let aad = associated_data(tenant, installation);
        let plain = Aes256Gcm::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "the installation's credentials cannot be decrypted (the key changed, or they \
                     belong to another installation); enter them again"
                )
            })?;
        Ok(serde_json::from_slice(&plain)?)
    }
}

fn associated_data(tenant: Uuid, installation: Uuid) -> Vec<u8> {
    let mut aad = b"trainflow.credentials.v1".to_vec();
    aad.extend_from_slice(tenant.as_bytes());
    aad.extend_from_slice(installation.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_bound_to_tenant_and_installation() {
        let key = CredentialsKey::random();
        let (t, i) = (Uuid::new_v4(), Uuid::new_v4());
        let values = BTreeMap::from([("api_token".to_string(), "s3cret".to_string())]);
        let sealed = key.seal(t, i, &values).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("s3cret"));
        assert_eq!(key.open(t, i, &sealed).unwrap(), values);
        assert!(key.open(t, Uuid::new_v4(), &sealed).is_err());
        assert!(key.open(Uuid::new_v4(), i, &sealed).is_err());
        assert!(CredentialsKey::random().open(t, i, &sealed).is_err());
    }
}
