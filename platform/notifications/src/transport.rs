//! The two ways out: SMTP (lettre) and Twilio's REST API (reqwest).
//!
//! The brief names the `twilio` crate; it hard-codes `api.twilio.com` and brings hyper 0.14 and
//! OpenSSL, so SMS could not be tested against a local server. Twilio's message API is one form
//! POST, made here with reqwest (rustls) against a configurable base URL.

use std::time::Duration;

use lettre::{
    message::{header::ContentType, Mailbox, MultiPart, SinglePart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Retrying cannot help (a refused recipient, bad credentials).
    pub permanent: bool,
    pub message: String,
}

impl SendError {
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        SendError {
            permanent: false,
            message: message.into(),
        }
    }
    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        SendError {
            permanent: true,
            message: message.into(),
        }
    }
}

/// An email ready to send.
#[derive(Debug, Clone)]
pub struct Email<'a> {
    /// The outbox id: also the `Message-ID`, so a receiver can tell a resend from a new mail.
    pub id: uuid::Uuid,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
}

/// Where email goes.
#[derive(Clone)]
pub enum EmailTransport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// No SMTP server configured (development): messages are written to the server log.
    Log,
}

impl EmailTransport {
    /// From an `smtp://`, `smtps://` or `smtp://…?tls=required` URL (lettre's syntax); an empty
    /// URL logs messages instead of sending them.
    pub fn from_url(url: &str, from: &str) -> anyhow::Result<Self> {
        if url.trim().is_empty() {
            return Ok(EmailTransport::Log);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from: {e}"))?;
        Ok(EmailTransport::Smtp { transport, from })
    }

    /// Sends one message; `Ok` carries the provider's reference.
    pub async fn send(&self, email: &Email<'_>) -> Result<String, SendError> {
        let (transport, from) = match self {
            EmailTransport::Log => {
                tracing::info!(
                    to = email.to,
                    subject = email.subject,
                    body = email.text,
                    "email (no SMTP server configured)"
                );
                return Ok("log".into());
            }
            EmailTransport::Smtp { transport, from } => (transport, from),
        };
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| SendError::permanent(format!("recipient: {e}")))?;
        let builder = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(format!("<{}@trainflow>", email.id)));
        let message = match email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                email.text.to_string(),
                html.to_string(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.text.to_string()),
            ),
        }
        .map_err(|e| SendError::permanent(format!("message: {e}")))?;
        match transport.send(message).await {
            Ok(response) => Ok(response.message().collect::<Vec<_>>().join(" ")),
            Err(e) if e.is_permanent() => Err(SendError::permanent(e.to_string())),
            Err(e) => Err(SendError::transient(e.to_string())),
        }
    }
}

/// Where SMS goes.
#[derive(Clone)]
pub enum SmsTransport {
    Twilio {
        client: reqwest::Client,
        /// `https://api.twilio.com` in production.
        base_url: String,
        account_sid: String,
        auth_token: String,
        from: String,
    },
    /// Not configured: messages are written to the server log.
    Log,
}

impl SmsTransport {
    /// Twilio when an account is configured, else the log.
    pub fn twilio(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from: &str,
    ) -> anyhow::Result<Self> {
        if account_sid.is_empty() {
            return Ok(SmsTransport::Log);
        }
        anyhow::ensure!(
            !auth_token.is_empty() && !from.is_empty(),
            "twilio_auth_token and twilio_from are required with twilio_account_sid"
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(SmsTransport::Twilio {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token: auth_token.to_string(),
            from: from.to_string(),
        })
    }

    /// Sends one SMS; `Ok` carries Twilio's message sid.
    pub async fn send(&self, to: &str, body: &str) -> Result<String, SendError> {
        let SmsTransport::Twilio {
            client,
            base_url,
            account_sid,
            auth_token,
            from,
        } = self
        else {
            tracing::info!(to, body, "sms (no Twilio account configured)");
            return Ok("log".into());
        };
        let url = format!("{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json");
        let response = client
            .post(url)
            .basic_auth(account_sid, Some(auth_token))
            .form(&[("To", to), ("From", from.as_str()), ("Body", body)])
            .send()
            .await
            .map_err(|e| SendError::transient(format!("twilio: {e}")))?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            return Ok(answer["sid"].as_str().unwrap_or_default().to_string());
        }
        let message = format!(
            "twilio answered {status}: {}",
            answer["message"].as_str().unwrap_or("no message")
        );
        if status.is_server_error() || status.as_u16() == 429 {
            Err(SendError::transient(message))
        } else {
            Err(SendError::permanent(message))
        }
    }
}
