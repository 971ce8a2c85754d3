//! Approving by SMS reply: Twilio posts each incoming message to `/webhooks/twilio/sms`.
//!
//! The request is accepted only with a valid `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed
//! with the account's auth token, over the webhook's public URL followed by every form
//! parameter's name and value in name order. The body `YES 123456` approves and
//! `NO 123456 [reason]` rejects the step whose approval SMS carried that code, when it comes
//! from the approver's own number. The link behind the code is redeemed exactly as a tap on it
//! would be (once, atomically, in the decision's transaction). The answer is TwiML, so the
//! approver gets a reply saying what happened.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use poem::{
    handler,
    http::{HeaderMap, StatusCode},
    web::{Data, Form},
    EndpointExt, IntoEndpoint, Response, Route,
};
use sha1::Sha1;
use trainflow_kernel::{now, secret::constant_time_eq, ApiError};

use crate::{
    service::{self, SmsAnswer},
    workflow::Decision,
    Renewals,
};

/// The path Twilio is configured to call.
pub const PATH: &str = "/webhooks/twilio/sms";

/// What the webhook needs.
#[derive(Clone)]
pub struct SmsWebhook {
    pub renewals: Renewals,
    /// The Twilio auth token; the webhook answers 404 while it is empty.
    pub auth_token: String,
}

/// The route to mount at [`PATH`].
pub fn routes(webhook: SmsWebhook) -> impl IntoEndpoint {
    Route::new().at("/", poem::post(incoming)).data(webhook)
}

/// Twilio's request signature for `url` and the form `params`.
pub fn signature(auth_token: &str, url: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A reply: YES or NO, the code, and for NO an optional reason.
fn parse(body: &str) -> Option<(Decision, String, Option<String>)> {
    let mut words = body.split_whitespace();
    let decision = match words.next()?.to_ascii_uppercase().as_str() {
        "YES" | "Y" | "APPROVE" => Decision::Approve,
        "NO" | "N" | "REJECT" => Decision::Reject,
        _ => return None,
    };
    let code = words.next()?;
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = words.collect::<Vec<_>>().join(" ");
    Some((
        decision,
        code.to_string(),
        Some(rest).filter(|r| !r.is_empty()),
    ))
}

#[handler]
async fn incoming(
    headers: &HeaderMap,
    Data(hook): Data<&SmsWebhook>,
    Form(params): Form<BTreeMap<String, String>>,
) -> Response {
    if hook.auth_token.is_empty() {
        return Response::builder().status(StatusCode::NOT_FOUND).finish();
    }
    let url = format!("{}{PATH}", hook.renewals.public_url);
    let expected = signature(&hook.auth_token, &url, &params);
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        tracing::warn!("an SMS webhook call with a bad signature was refused");
        return Response::builder()
            .status(StatusCode::FORBIDDEN)
            .body("bad signature");
    }
    let from = params.get("From").cloned().unwrap_or_default();
    let Some((decision, code, reason)) = parse(params.get("Body").map_or("", String::as_str))
    else {
        return twiml("Reply YES or NO followed by the 6-digit code from the approval message, e.g. YES 123456.");
    };
    match answer(&hook.renewals, &from, &code, decision, reason).await {
        Ok(text) => twiml(&text),
        Err(e) => {
            tracing::error!(error = %e, "an SMS reply failed");
            twiml("Your answer could not be recorded. Please use the link in the message instead.")
        }
    }
}

async fn answer(
    svc: &Renewals,
    from: &str,
    code: &str,
    decision: Decision,
    reason: Option<String>,
) -> Result<String, ApiError> {
    Ok(
        match service::decide_by_sms(svc, from, code, decision, reason, now()).await? {
            SmsAnswer::Done {
                certification,
                user_name,
            } => {
                let verb = if decision == Decision::Approve {
                    "approved"
                } else {
                    "rejected"
                };
                format!("You {verb} the renewal of {certification} for {user_name}. Thank you.")
            }
            SmsAnswer::UnknownCode => {
                "That code is not valid or has expired. Open TrainFlow to answer from your \
                 approvals."
                    .into()
            }
            SmsAnswer::AlreadyUsed => "That request was already answered with this code.".into(),
            SmsAnswer::NoLongerValid => {
                "That code no longer works: the request moved on. Open TrainFlow to see it.".into()
            }
            SmsAnswer::NotRecorded(message) => format!("Not recorded: {message}"),
            SmsAnswer::Ambiguous => {
                "That code is open in more than one organisation, so nothing was recorded. \
                 Please use the link in the message instead."
                    .into()
            }
        },
    )
}

fn twiml(message: &str) -> Response {
    let escaped = trainflow_notifications::templates::escape(message);
    Response::builder()
        .content_type("text/xml; charset=utf-8")
        .body(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{escaped}</Message></Response>"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_with_their_code_and_reason() {
        assert_eq!(
            parse("yes 123456"),
            Some((Decision::Approve, "123456".into(), None))
        );
        assert_eq!(
            parse(" NO 000042 expired course "),
            Some((
                Decision::Reject,
                "000042".into(),
                Some("expired course".into())
            ))
        );
        assert_eq!(parse("YES 12345"), None);
        assert_eq!(parse("maybe 123456"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn the_signature_covers_the_url_and_every_parameter_in_name_order() {
        let params: BTreeMap<String, String> = [("To", "+1"), ("Body", "YES 1"), ("From", "+2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let a = signature("token", "https://x.test/webhooks/twilio/sms", &params);
        assert_eq!(a.len(), 28, "base64 of 20 bytes");
        assert_ne!(
            a,
            signature("other", "https://x.test/webhooks/twilio/sms", &params)
        );
        assert_ne!(
            a,
            signature("token", "https://y.test/webhooks/twilio/sms", &params)
        );
        let mut changed = params.clone();
        changed.insert("Body".into(), "NO 1".into());
        assert_ne!(
            a,
            signature("token", "https://x.test/webhooks/twilio/sms", &changed)
        );
    }
}
