//! Learning: what people learn and how far they are.
//!
//! * [`catalogue`]: courses (code unique in the tenant, category, difficulty, duration, status
//!   draft / published / archived), their ordered modules and lessons, and prerequisites
//!   between courses with cycle detection and the prerequisite tree.
//! * [`enrolments`]: people enrolled in courses (by themselves, assigned, or from an import),
//!   every change of status kept; progress per lesson and the course's percentage; completion.
//! * [`batch`]: courses and completions changed a page at a time, for imports.
//! * [`service`]: the use cases — each one transaction with its permission check and audit
//!   entry — that the API and the portal call.
//! * [`assessments`]: question banks, the quizzes of assessment lessons, and attempts with
//!   their papers and scores.
//! * [`certificates`]: what completing a course issues — the PDF and the public check of its
//!   verification code.
//! * [`calendar`]: a person's dated items (due dates, renewals, expiries) and their iCalendar
//!   feed at a secret, revocable address.
//! * [`jobs`]: the expiry of overdue enrolments.
//! * [`live`]: progress changes delivered to the portal's open pages on every instance.
//! * [`api`] and [`web`]: the HTTP API and the portal's pages.
//!
//! Who may do what is in `docs/learning.md`.

pub mod api;
pub mod assessments;
pub mod assessments_api;
pub mod batch;
pub mod calendar;
pub mod catalogue;
pub mod certificates;
pub mod demo;
pub mod enrolments;
pub mod jobs;
pub mod live;
pub mod materials;
pub mod registration;
pub mod service;
pub mod skills;
pub mod skills_api;
pub mod topics;
pub mod web;

use trainflow_kernel::db::Db;

/// The learning service.
#[derive(Clone)]
pub struct Learning {
    pub db: Db,
    /// The portal's URL, for links in notifications.
    pub public_url: String,
    /// This instance's hub of progress changes.
    pub live: live::Live,
}

impl Learning {
    pub fn new(db: Db, public_url: &str) -> Self {
        Learning {
            db,
            public_url: public_url.trim_end_matches('/').to_string(),
            live: live::Live::default(),
        }
    }
}

/// A stored value that is not one of its enumeration's (a row written by something else).
#[derive(Debug)]
pub struct UnknownValue(pub String);

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown stored value `{}`", self.0)
    }
}

impl std::error::Error for UnknownValue {}

/// An enumeration stored as text: the API's enum (snake_case), its stored name, and reading it
/// back from a row (`#[sqlx(try_from = "String")]`).
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, poem_openapi::Enum, serde::Serialize, serde::Deserialize)]
        #[oai(rename_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and API) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value named `s`.
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::UnknownValue;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s).ok_or($crate::UnknownValue(s))
            }
        }
    };
}
pub(crate) use text_enum;
