//! Web Push: the fourth channel. A browser (or an installed portal on a phone) subscribes with
//! the server's VAPID public key and hands the portal a push-service endpoint with two keys; a
//! message is then encrypted for that browser alone (RFC 8291: ECDH on P-256, HKDF-SHA-256, the
//! `aes128gcm` content coding of RFC 8188) and posted to the endpoint with a VAPID token
//! (RFC 8292: an ES256 JWT signed with the server's key), so the push service only ever relays
//! ciphertext and can tell which server sent it.
//!
//! The `web-push` crate does this through the `ece` crate, whose only backend is OpenSSL; the
//! steps are a page of code over the RustCrypto primitives (`p256`, `hkdf`, `aes-gcm`) and
//! `jsonwebtoken`, and the unit tests hold them to the RFC's worked example.
//!
//! Endpoints are URLs a browser chose, so the server only posts to push services it knows
//! ([`PushEndpoints`]): the big four by default, others by configuration. Redirects are not
//! followed. A push service that answers 404 or 410 has dropped the subscription; the outbox
//! then removes it ([`PushError::Gone`]).

use std::{sync::Arc, time::Duration};

use aes_gcm::{
    aead::{Aead, KeyInit},
    Aes128Gcm, Nonce,
};
use base64::{
    alphabet,
    engine::{
        general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD},
        DecodePaddingMode,
    },
    Engine,
};
use hkdf::Hkdf;
use p256::{
    ecdh::diffie_hellman, elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey, PublicKey,
    SecretKey,
};
use sha2::Sha256;

use crate::transport::SendError;

/// The record size written in the header: one record holds any payload we send.
const RECORD_SIZE: u32 = 4096;
/// Header of an `aes128gcm` body: salt (16), record size (4), key id length (1), key id (65).
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// The largest payload: push services accept bodies up to 4,096 octets, and the body is the
/// header, the payload, a delimiter octet and the 16-octet authentication tag.
pub const MAX_PAYLOAD: usize = 4096 - HEADER_LEN - 1 - 16;

/// Why a payload could not be encrypted for a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// `p256dh` is not an uncompressed P-256 public key.
    P256dh,
    /// `auth` is not 16 octets.
    Auth,
    /// The payload is larger than [`MAX_PAYLOAD`].
    TooLarge,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyError::P256dh => "is not an uncompressed P-256 public key (65 octets, base64url)",
            KeyError::Auth => "is not a 16-octet authentication secret (base64url)",
            KeyError::TooLarge => "the payload is larger than one push message",
        })
    }
}

/// base64url as subscriptions carry it: padded or not, and the unused low bits of the last
/// character ignored (the schema's patterns admit any character there).
const LENIENT_B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes base64url with or without padding.
pub fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    LENIENT_B64URL.decode(s).ok()
}

/// Checks a subscription's keys (base64url, as browsers give them) and decodes them.
pub fn decode_keys(p256dh: &str, auth: &str) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let public = decode_b64url(p256dh)
        .filter(|k| k.len() == 65 && k[0] == 4 && PublicKey::from_sec1_bytes(k).is_ok())
        .ok_or(KeyError::P256dh)?;
    let auth = decode_b64url(auth)
        .filter(|a| a.len() == 16)
        .ok_or(KeyError::Auth)?;
    Ok((public, auth))
}

/// Encrypts `payload` for the browser holding the private half of `ua_public`, with a fresh
/// key pair and salt (both must never be reused).
pub fn encrypt(payload: &[u8], ua_public: &[u8], auth: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut rng = rand::rngs::OsRng;
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rng, &mut salt);
    encrypt_with(payload, ua_public, auth, &SecretKey::random(&mut rng), salt)
}

/// [`encrypt`] with the application server's key pair and the salt given (the RFC's example).
fn encrypt_with(
    payload: &[u8],
    ua_public: &[u8],
    auth: &[u8],
    as_secret: &SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, KeyError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(KeyError::TooLarge);
    }
    let ua = PublicKey::from_sec1_bytes(ua_public).map_err(|_| KeyError::P256dh)?;
    if auth.len() != 16 {
        return Err(KeyError::Auth);
    }
    let ua_point = ua.to_encoded_point(false);
    let as_point = as_secret.public_key().to_encoded_point(false);
    let shared = diffie_hellman(as_secret.to_nonzero_scalar(), ua.as_affine());

    // IKM = HKDF(salt = auth, ikm = ECDH, info = "WebPush: info" 0x00 ua_public as_public, 32).
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(ua_point.as_bytes());
    info.extend_from_slice(as_point.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|_| KeyError::TooLarge)?;

    // The content encryption key and nonce of RFC 8188, from the salt.
    let prk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .and_then(|()| prk.expand(b"Content-Encoding: nonce\0", &mut nonce))
        .map_err(|_| KeyError::TooLarge)?;

    // One record, the last: the payload and the delimiter 0x02, no padding.
    let mut record = Vec::with_capacity(payload.len() + 1);
    record.extend_from_slice(payload);
    record.push(2);
    let sealed = Aes128Gcm::new(&cek.into())
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| KeyError::TooLarge)?;

    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_point.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The server's VAPID identity: its P-256 key and a contact (`mailto:` or `https:`).
pub struct Vapid {
    /// The private key as PKCS#8 DER, which `jsonwebtoken` signs with.
    der: Vec<u8>,
    /// The public key, base64url of the uncompressed point: the browser's
    /// `applicationServerKey` and the token's `k`.
    public: String,
    subject: String,
}

impl Vapid {
    /// From the private key as base64url of its 32-octet scalar (what `trainflow vapid-keys`
    /// and the usual web-push tools print).
    pub fn from_base64(private: &str, subject: &str) -> anyhow::Result<Self> {
        let bytes = decode_b64url(private.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| anyhow::anyhow!("vapid_private_key: not base64url of 32 octets"))?;
        let key = SecretKey::from_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("vapid_private_key: not a P-256 private key"))?;
        Self::from_key(&key, subject)
    }

    /// A new random key (development: subscriptions made with it stop working when the server
    /// restarts with another).
    pub fn random(subject: &str) -> anyhow::Result<Self> {
        Self::from_key(&SecretKey::random(&mut rand::rngs::OsRng), subject)
    }

    /// A new key pair as base64url: (private, public).
    pub fn generate() -> (String, String) {
        let key = SecretKey::random(&mut rand::rngs::OsRng);
        (
            URL_SAFE_NO_PAD.encode(key.to_bytes()),
            URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes()),
        )
    }

    fn from_key(key: &SecretKey, subject: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            subject.starts_with("mailto:") || subject.starts_with("https://"),
            "push_subject must be a mailto: or https: URL"
        );
        let der = key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("vapid key: {e}"))?
            .as_bytes()
            .to_vec();
        Ok(Vapid {
            der,
            public: URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes()),
            subject: subject.to_string(),
        })
    }

    /// The public key browsers subscribe with.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for a message to `endpoint`: `vapid t=<JWT>, k=<key>`, the
    /// token naming the push service's origin and expiring in 12 hours.
    pub fn authorization(&self, endpoint: &url::Url, now: i64) -> Result<String, String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: i64,
            sub: &'a str,
        }
        let claims = Claims {
            aud: endpoint.origin().ascii_serialization(),
            exp: now + 12 * 3600,
            sub: &self.subject,
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.der),
        )
        .map_err(|e| format!("vapid token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

/// The push services the server posts to.
#[derive(Debug, Clone)]
pub struct PushEndpoints {
    /// Host names; `*.example.com` matches any subdomain.
    hosts: Vec<String>,
    /// Also accept `http://` and `https://` endpoints on loopback (development and tests).
    allow_loopback: bool,
}

impl PushEndpoints {
    /// The push services of Chrome and Edge (FCM), Firefox (Mozilla), Safari (Apple) and Windows.
    pub const KNOWN: [&'static str; 5] = [
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "web.push.apple.com",
        "*.push.apple.com",
        "*.notify.windows.com",
    ];

    pub fn new(hosts: &[String], allow_loopback: bool) -> Self {
        PushEndpoints {
            hosts: hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            allow_loopback,
        }
    }

    /// The endpoint as a URL when the server may post to it; otherwise why not.
    pub fn check(&self, endpoint: &str) -> Result<url::Url, &'static str> {
        let url = url::Url::parse(endpoint).map_err(|_| "is not a URL")?;
        let host = url.host_str().ok_or("has no host")?.to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials");
        }
        let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
        if self.allow_loopback && loopback && matches!(url.scheme(), "http" | "https") {
            return Ok(url);
        }
        if url.scheme() != "https" {
            return Err("must be an https URL");
        }
        let known = self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => *h == host,
        });
        if known {
            Ok(url)
        } else {
            Err("is not a push service this server posts to")
        }
    }
}

/// One browser's subscription, decoded.
pub struct Subscription<'a> {
    pub endpoint: &'a str,
    pub p256dh: &'a [u8],
    pub auth: &'a [u8],
}

/// Why a push message was not delivered.
#[derive(Debug)]
pub enum PushError {
    /// The push service no longer knows the subscription (404/410), or the server may no
    /// longer post to it: remove it.
    Gone(String),
    /// Any other failure, to retry or give up on.
    Failed(SendError),
}

/// Where push messages go.
#[derive(Clone)]
pub struct PushTransport {
    client: reqwest::Client,
    vapid: Arc<Vapid>,
    endpoints: PushEndpoints,
}

impl PushTransport {
    pub fn new(vapid: Vapid, endpoints: PushEndpoints) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(PushTransport {
            client,
            vapid: Arc::new(vapid),
            endpoints,
        })
    }

    /// The VAPID public key browsers subscribe with.
    pub fn public_key(&self) -> &str {
        self.vapid.public_key()
    }

    /// The push services subscriptions may point at.
    pub fn endpoints(&self) -> &PushEndpoints {
        &self.endpoints
    }

    /// Encrypts `payload` for `to` and posts it; `Ok` carries the message's URL at the push
    /// service (its `Location`).
    pub async fn send(
        &self,
        to: &Subscription<'_>,
        payload: &[u8],
        urgency: &str,
        now: i64,
    ) -> Result<String, PushError> {
        let url = self
            .endpoints
            .check(to.endpoint)
            .map_err(|why| PushError::Gone(format!("the endpoint {why}")))?;
        let body = encrypt(payload, to.p256dh, to.auth)
            .map_err(|e| PushError::Gone(format!("the subscription's key {e}")))?;
        let authorization = self
            .vapid
            .authorization(&url, now)
            .map_err(|e| PushError::Failed(SendError::permanent(e)))?;
        let response = self
            .client
            .post(url)
            .header("authorization", authorization)
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("ttl", "86400")
            .header("urgency", urgency)
            .body(body)
            .send()
            .await
            .map_err(|e| PushError::Failed(SendError::transient(format!("push: {e}"))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or("push")
                .to_string());
        }
        let text = response.text().await.unwrap_or_default();
        let message = format!(
            "the push service answered {status}: {}",
            text.chars().take(200).collect::<String>()
        );
        Err(match status.as_u16() {
            404 | 410 => PushError::Gone(message),
            429 => PushError::Failed(SendError::transient(message)),
            s if s >= 500 => PushError::Failed(SendError::transient(message)),
            _ => PushError::Failed(SendError::permanent(message)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        decode_b64url(s).expect("base64url")
    }

    /// RFC 8291, appendix A: the worked example, octet for octet.
    #[test]
    fn encryption_matches_the_rfc_example() {
        let as_secret =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(as_secret.public_key().to_encoded_point(false).as_bytes()),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let ua_public = b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt_with(
            b"When I grow up, I want to be a watermelon",
            &ua_public,
            &auth,
            &as_secret,
            salt,
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn a_payload_over_one_message_is_refused() {
        let ua = SecretKey::random(&mut rand::rngs::OsRng).public_key();
        let ua = ua.to_encoded_point(false);
        assert!(encrypt(&[b'x'; MAX_PAYLOAD], ua.as_bytes(), &[7; 16]).is_ok());
        assert_eq!(
            encrypt(&[b'x'; MAX_PAYLOAD + 1], ua.as_bytes(), &[7; 16]),
            Err(KeyError::TooLarge)
        );
        let body = encrypt(&[b'x'; MAX_PAYLOAD], ua.as_bytes(), &[7; 16]).unwrap();
        assert_eq!(body.len(), 4096);
    }

    #[test]
    fn keys_are_checked() {
        let ua = SecretKey::random(&mut rand::rngs::OsRng).public_key();
        let p256dh = URL_SAFE_NO_PAD.encode(ua.to_encoded_point(false).as_bytes());
        let auth = URL_SAFE_NO_PAD.encode([1u8; 16]);
        assert!(decode_keys(&p256dh, &auth).is_ok());
        assert!(decode_keys(&format!("{p256dh}="), &format!("{auth}==")).is_ok());
        // Unused low bits in the last character are ignored, as the schema admits them.
        assert_eq!(
            decode_keys(&p256dh, "AAAAAAAAAAAAAAAAAAAAAB").unwrap().1,
            [0; 16]
        );
        // 65 octets that are not a point of the curve.
        let not_a_point = URL_SAFE_NO_PAD.encode([4u8; 65]);
        assert_eq!(decode_keys(&not_a_point, &auth), Err(KeyError::P256dh));
        assert_eq!(
            decode_keys(&p256dh, &URL_SAFE_NO_PAD.encode([1u8; 15])),
            Err(KeyError::Auth)
        );
    }

    #[test]
    fn only_known_push_services_are_posted_to() {
        let known: Vec<String> = PushEndpoints::KNOWN.iter().map(|h| h.to_string()).collect();
        let e = PushEndpoints::new(&known, false);
        assert!(e.check("https://fcm.googleapis.com/fcm/send/abc").is_ok());
        assert!(e
            .check("https://wns2-db5p.notify.windows.com/w/?token=x")
            .is_ok());
        assert!(e
            .check("https://notify.windows.com.evil.example/x")
            .is_err());
        assert!(e.check("https://evilnotify.windows.com/x").is_err());
        assert!(e.check("http://fcm.googleapis.com/fcm/send/abc").is_err());
        assert!(e.check("https://user:pw@fcm.googleapis.com/x").is_err());
        assert!(e.check("http://127.0.0.1:9/push").is_err());
        let dev = PushEndpoints::new(&known, true);
        assert!(dev.check("http://127.0.0.1:9/push").is_ok());
        assert!(dev.check("http://10.0.0.1/push").is_err());
    }

    #[test]
    fn the_vapid_token_names_the_push_service_and_verifies_with_the_public_key() {
        let (private, public) = Vapid::generate();
        let vapid = Vapid::from_base64(&private, "mailto:ops@example.com").unwrap();
        assert_eq!(vapid.public_key(), public);
        let url = url::Url::parse("https://fcm.googleapis.com/fcm/send/abc").unwrap();
        let header = vapid.authorization(&url, 1_700_000_000).unwrap();
        let (t, k) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(k, public);
        let point = b64(k);
        let key = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_audience(&["https://fcm.googleapis.com"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(t, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert_eq!(claims["exp"], 1_700_000_000 + 12 * 3600);
    }
}
