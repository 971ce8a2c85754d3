//! Real local servers for delivery tests: an SMTP sink that speaks enough SMTP for lettre and
//! can be stopped and restarted on the same port, and a server that answers like Twilio's
//! message API.

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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind twilio");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let acceptor = poem::listener::TcpListener::bind(addr.to_string());
        let task = tokio::spawn(async move {
            let _ = poem::Server::new(acceptor).run(app).await;
        });
        // Wait until it accepts.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
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
