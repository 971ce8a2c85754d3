//! Notifications: what people are told, and how it reaches them.
//!
//! * [`inbox`]: in-app notifications (type, priority, read/unread, deleted, a link to the
//!   related object), each person's preferences per type × channel, and broadcasts.
//! * [`templates`]: the email and SMS texts, built in and overridable per tenant.
//! * [`outbox`]: every email and SMS is a row written in the transaction of the event that
//!   caused it; a job delivers due rows with retries and back-off, so a dead SMTP server or
//!   Twilio outage delays messages but loses none, and a delivered message is never sent again.
//! * [`transport`]: SMTP through lettre, and Twilio's REST API through reqwest (with a
//!   configurable base URL, so tests talk to a local server that answers like Twilio).
//! * [`push`] and [`devices`]: Web Push (VAPID, payloads encrypted for each browser) to the
//!   devices people subscribed from the portal.
//! * [`service`]: the use cases the API and the pages share.
//! * [`api`] and [`web`]: the HTTP API, and the portal's notification centre.

use poem_openapi::Enum;
use serde::{Deserialize, Serialize};

pub mod api;
pub mod devices;
pub mod inbox;
pub mod outbox;
pub mod push;
pub mod service;
pub mod templates;
pub mod transport;
pub mod web;

pub use inbox::{notify, notify_many, Notice, Notified, NotifiedMany};
pub use outbox::{Deliverer, DeliveryOutcome};
pub use push::PushTransport;
pub use transport::{EmailTransport, SmsTransport};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Attendance,
    Report,
    Account,
    Session,
    System,
    Renewal,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Attendance,
        Kind::Report,
        Kind::Account,
        Kind::Session,
        Kind::System,
        Kind::Renewal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Attendance => "attendance",
            Kind::Report => "report",
            Kind::Account => "account",
            Kind::Session => "session",
            Kind::System => "system",
            Kind::Renewal => "renewal",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    pub fn parse(s: &str) -> Priority {
        match s {
            "low" => Priority::Low,
            "high" => Priority::High,
            _ => Priority::Medium,
        }
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    InApp,
    Email,
    Sms,
    /// Web Push to the browsers and phones the person turned it on for ([`push`]).
    Push,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::InApp, Channel::Email, Channel::Sms, Channel::Push];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "in_app",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The preference when a person has not chosen: in-app and email for everything, SMS for
    /// renewals (approvals and expiries are what people act on from a phone), push for
    /// everything (it only reaches devices the person turned it on for).
    pub fn default_for(self, kind: Kind) -> bool {
        match self {
            Channel::InApp | Channel::Email | Channel::Push => true,
            Channel::Sms => kind == Kind::Renewal,
        }
    }
}
