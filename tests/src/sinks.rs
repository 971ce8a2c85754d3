//! Real local servers for delivery tests: an SMTP sink that speaks enough SMTP for lettre and
//! can be stopped and restarted on the same port, a server that answers like Twilio's
//! message API, and a Web Push service with the browser behind it.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    task::JoinHandle,
};

/// A message the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message (headers and body, dot-unstuffed).
    pub data: String,
}

/// An SMTP server on loopback that keeps what it receives.
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    task: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts on a free port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let addr = listener.local_addr().expect("addr");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let task = Some(tokio::spawn(serve(listener, mails.clone())));
        SmtpSink { addr, mails, task }
    }

    /// `smtp://127.0.0.1:PORT` (no TLS).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Stops listening: connections are refused until [`SmtpSink::restart`].
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind smtp");
        self.task = Some(tokio::spawn(serve(listener, self.mails.clone())));
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<Mail> {
        self.mails.lock().expect("mails").clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn serve(listener: TcpListener, mails: Arc<Mutex<Vec<Mail>>>) {
    let mut sessions = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        sessions.spawn(session(stream, mails.clone()));
    }
}

async fn session(stream: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO")
            || upper.starts_with("RSET")
            || upper.starts_with("NOOP")
        {
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..].trim().to_string();
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(command[8..].trim().trim_matches(['<', '>']).to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            let _ = write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            mails.lock().expect("mails").push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 Bye\r\n").await;
            return;
        } else {
            b"502 Command not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// An SMS Twilio accepted.
#[derive(Debug, Clone)]
pub struct Sms {
    pub to: String,
    pub from: String,
    pub body: String,
}

/// A loopback server answering `POST /2010-04-01/Accounts/{sid}/Messages.json` like Twilio:
/// basic auth with the account sid and token, a form body, `201` with the message's `sid`.
pub struct TwilioFake {
    pub base_url: String,
    pub messages: Arc<Mutex<Vec<Sms>>>,
    _task: JoinHandle<()>,
}

pub const TWILIO_SID: &str = "AC00000000000000000000000000000001";
pub const TWILIO_TOKEN: &str = "twilio-test-token";

impl TwilioFake {
    pub async fn start() -> TwilioFake {
        use poem::{
            handler, http::StatusCode, web::Form, web::Path, EndpointExt, Request, Response, Route,
        };
        let messages: Arc<Mutex<Vec<Sms>>> = Arc::new(Mutex::new(Vec::new()));
        #[handler]
        fn send(
            req: &Request,
            Path(sid): Path<String>,
            Form(form): Form<std::collections::HashMap<String, String>>,
            messages: poem::web::Data<&Arc<Mutex<Vec<Sms>>>>,
        ) -> Response {
            use base64::Engine;
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
            );
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if sid != TWILIO_SID || auth != Some(expected.as_str()) {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .content_type("application/json")
                    .body(r#"{"code": 20003, "message": "Authenticate", "status": 401}"#);
            }
            let (Some(to), Some(body)) = (form.get("To"), form.get("Body")) else {
                return Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .content_type("application/json")
                    .body(r#"{"code": 21604, "message": "A 'To' phone number is required.", "status": 400}"#);
            };
            let mut list = messages.lock().expect("sms");
            list.push(Sms {
                to: to.clone(),
                from: form.get("From").cloned().unwrap_or_default(),
                body: body.clone(),
            });
            Response::builder()
                .status(StatusCode::CREATED)
                .content_type("application/json")
                .body(format!(
                    r#"{{"sid": "SM{:032}", "status": "queued", "to": "{to}"}}"#,
                    list.len()
                ))
        }
        let app = Route::new()
            .at("/2010-04-01/Accounts/:sid/Messages.json", poem::post(send))
            .data(messages.clone());
        let addr = free_address().await;
        let task = serve_http(addr, app).await;
        TwilioFake {
            base_url: format!("http://{addr}"),
            messages,
            _task: task,
        }
    }

    pub fn sent(&self) -> Vec<Sms> {
        self.messages.lock().expect("sms").clone()
    }
}

/// A free loopback address.
async fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// Serves `app` over HTTP on `addr`, once it accepts connections.
async fn serve_http(addr: SocketAddr, app: impl poem::Endpoint + 'static) -> JoinHandle<()> {
    let acceptor = poem::listener::TcpListener::bind(addr.to_string());
    let task = tokio::spawn(async move {
        let _ = poem::Server::new(acceptor).run(app).await;
    });
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    task
}

/// A push message the push service accepted, as the browser decrypted it.
#[derive(Debug, Clone)]
pub struct PushMessage {
    /// The subscription's token (the endpoint's last segment).
    pub token: String,
    pub payload: serde_json::Value,
    pub urgency: String,
    /// The VAPID key (`k`) that signed the request.
    pub vapid_key: String,
}

/// The browser's half of a subscription: its P-256 key and authentication secret.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

#[derive(Default)]
struct PushState {
    received: Vec<PushMessage>,
    /// Why requests were refused (a test asserts there are none).
    refusals: Vec<String>,
    /// Tokens the service has dropped: answered 410 Gone.
    gone: std::collections::HashSet<String>,
}

/// A loopback Web Push service (RFC 8030) with the browser that subscribed to it: it answers
/// `POST /push/{token}` only when the request carries a VAPID token (RFC 8292) that verifies
/// with its `k` and names this origin, and an `aes128gcm` body (RFC 8188) that decrypts with
/// the browser's key (RFC 8291); then `201` with the message's `Location`. This side is
/// written from the RFCs independently of the server's encryption.
pub struct PushServiceFake {
    pub base_url: String,
    state: Arc<Mutex<PushState>>,
    browser: Arc<Browser>,
    _task: JoinHandle<()>,
}

impl PushServiceFake {
    pub async fn start() -> PushServiceFake {
        use poem::{
            handler, http::StatusCode, web::Data, web::Path, EndpointExt, Request, Response, Route,
        };
        let mut auth = [0u8; 16];
        rand_bytes(&mut auth);
        let browser = Arc::new(Browser {
            secret: p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            auth,
        });
        let state: Arc<Mutex<PushState>> = Arc::default();
        #[handler]
        fn receive(
            req: &Request,
            Path(token): Path<String>,
            body: Vec<u8>,
            state: Data<&Arc<Mutex<PushState>>>,
            browser: Data<&Arc<Browser>>,
            origin: Data<&Origin>,
        ) -> Response {
            if state.lock().expect("push").gone.contains(&token) {
                return Response::builder()
                    .status(StatusCode::GONE)
                    .body("subscription expired");
            }
            match accept(req, &body, &browser, &origin.0 .0) {
                Ok((payload, vapid_key)) => {
                    let mut s = state.lock().expect("push");
                    s.received.push(PushMessage {
                        token,
                        payload,
                        urgency: header(req, "urgency").unwrap_or_default(),
                        vapid_key,
                    });
                    Response::builder()
                        .status(StatusCode::CREATED)
                        .header(
                            "location",
                            format!("{}/message/{}", origin.0 .0, s.received.len()),
                        )
                        .finish()
                }
                Err(why) => {
                    state.lock().expect("push").refusals.push(why.clone());
                    Response::builder()
                        .status(StatusCode::BAD_REQUEST)
                        .body(why)
                }
            }
        }
        let addr = free_address().await;
        let base_url = format!("http://{addr}");
        let app = Route::new()
            .at("/push/:token", poem::post(receive))
            .data(state.clone())
            .data(browser.clone())
            .data(Origin(base_url.clone()));
        let task = serve_http(addr, app).await;
        PushServiceFake {
            base_url,
            state,
            browser,
            _task: task,
        }
    }

    /// The body of `POST /notifications/push/subscriptions` for a new subscription `token`, as
    /// the browser's `PushSubscription.toJSON()` gives it (less `expirationTime`).
    pub fn subscription(&self, token: &str) -> serde_json::Value {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let public = self.browser.secret.public_key().to_encoded_point(false);
        serde_json::json!({
            "endpoint": format!("{}/push/{token}", self.base_url),
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.browser.auth),
            },
        })
    }

    /// From now on the service answers 410 Gone for `token` (the browser unsubscribed).
    pub fn drop_subscription(&self, token: &str) {
        self.state
            .lock()
            .expect("push")
            .gone
            .insert(token.to_string());
    }

    pub fn received(&self) -> Vec<PushMessage> {
        self.state.lock().expect("push").received.clone()
    }

    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().expect("push").refusals.clone()
    }
}

#[derive(Clone)]
struct Origin(String);

fn header(req: &poem::Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn rand_bytes(out: &mut [u8]) {
    use p256::elliptic_curve::rand_core::RngCore;
    p256::elliptic_curve::rand_core::OsRng.fill_bytes(out);
}

/// Checks a push request as a push service and a browser would: the VAPID token, then the
/// encrypted body. Answers the decrypted payload and the signing key.
fn accept(
    req: &poem::Request,
    body: &[u8],
    browser: &Browser,
    origin: &str,
) -> Result<(serde_json::Value, String), String> {
    use aes_gcm::{aead::Aead, KeyInit};
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    if header(req, "content-encoding").as_deref() != Some("aes128gcm") {
        return Err("Content-Encoding must be aes128gcm".into());
    }
    if header(req, "ttl")
        .and_then(|t| t.parse::<u64>().ok())
        .is_none()
    {
        return Err("a TTL header is required".into());
    }
    // VAPID (RFC 8292 §3): `vapid t=<JWT>, k=<public key>`.
    let authorization = header(req, "authorization").ok_or("no Authorization")?;
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or("not the vapid scheme")?;
    let (mut t, mut k) = (None, None);
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("k", v)) => k = Some(v.to_string()),
            _ => {}
        }
    }
    let (t, k) = (t.ok_or("no t=")?, k.ok_or("no k=")?);
    let point = URL_SAFE_NO_PAD
        .decode(&k)
        .map_err(|_| "k is not base64url")?;
    if point.len() != 65 || point[0] != 4 {
        return Err("k is not an uncompressed P-256 point".into());
    }
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .map_err(|e| format!("k: {e}"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&t, &key, &validation)
        .map_err(|e| format!("the VAPID token does not verify: {e}"))?
        .claims;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if claims["exp"]
        .as_i64()
        .is_none_or(|exp| exp > now + 24 * 3600)
    {
        return Err("exp is more than 24 hours ahead".into());
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err("sub is not a mailto: or https: contact".into());
    }

    // The aes128gcm header (RFC 8188 §2.1): salt, record size, key id = the sender's key.
    if body.len() < 21 {
        return Err("body too short".into());
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes(body[16..20].try_into().expect("4 octets")) as usize;
    let idlen = body[20] as usize;
    if idlen != 65 || body.len() < 21 + idlen + 17 {
        return Err("the key id must be the sender's 65-octet public key".into());
    }
    let sender = p256::PublicKey::from_sec1_bytes(&body[21..21 + idlen])
        .map_err(|_| "the key id is not a P-256 point")?;
    let ciphertext = &body[21 + idlen..];
    if ciphertext.len() > rs {
        return Err("more than one record".into());
    }
    // RFC 8291 §3.4: the shared secret, then the input keying material.
    let shared = p256::ecdh::diffie_hellman(browser.secret.to_nonzero_scalar(), sender.as_affine());
    let ua_public = browser.secret.public_key().to_encoded_point(false);
    let mut info = Vec::from(&b"WebPush: info\x00"[..]);
    info.extend_from_slice(ua_public.as_bytes());
    info.extend_from_slice(&body[21..21 + idlen]);
    let mut ikm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&browser.auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|_| "hkdf")?;
    let prk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\x00", &mut cek)
        .map_err(|_| "hkdf")?;
    prk.expand(b"Content-Encoding: nonce\x00", &mut nonce)
        .map_err(|_| "hkdf")?;
    let mut plain = aes_gcm::Aes128Gcm::new_from_slice(&cek)
        .map_err(|_| "cek")?
        .decrypt(aes_gcm::Nonce::from_slice(&nonce), ciphertext)
        .map_err(|_| "the body does not decrypt with the browser's key")?;
    // The last record ends with 0x02 after any zero padding.
    while plain.last() == Some(&0) {
        plain.pop();
    }
    if plain.pop() != Some(2) {
        return Err("the record does not end with the last-record delimiter".into());
    }
    let payload = serde_json::from_slice(&plain).map_err(|e| format!("payload: {e}"))?;
    Ok((payload, k))
}
