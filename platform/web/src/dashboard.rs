//! The dashboard: cards contributed by each context through [`CardSource`], for the caller.

use std::sync::Arc;

use askama::Template;
use poem::{handler, http::StatusCode, web::Data};
use trainflow_kernel::ApiResult;

use crate::{render, BoxFuture, Nav, PageResult, Session, Shell, SignedIn};

/// One row of a card's table.
pub type CardRow = Vec<String>;

/// A dashboard card.
#[derive(Debug, Clone, Default)]
pub struct Card {
    /// Position on the dashboard (lower first).
    pub order: u16,
    pub title: String,
    /// A headline figure.
    pub value: Option<String>,
    pub text: String,
    /// (href, link text).
    pub link: Option<(String, String)>,
    /// Column headings of an optional table (a card with a table spans the page).
    pub columns: Vec<&'static str>,
    pub rows: Vec<CardRow>,
}

/// A context's contribution to the dashboard.
pub trait CardSource: Send + Sync {
    /// The cards `session` sees (none is fine).
    fn cards<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, ApiResult<Vec<Card>>>;
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    nav: Option<Nav>,
    first_name: &'a str,
    cards: Vec<Card>,
    wide: Vec<Card>,
}

/// The cards of `sources` for `session`, in order, split into the small ones and those with a
/// table (which span the page).
pub async fn gather(
    sources: &[Arc<dyn CardSource>],
    session: &Session,
) -> ApiResult<(Vec<Card>, Vec<Card>)> {
    let mut cards = Vec::new();
    for source in sources {
        cards.extend(source.cards(session).await?);
    }
    cards.sort_by_key(|c| c.order);
    let (wide, cards) = cards.into_iter().partition(|c| !c.columns.is_empty());
    Ok((cards, wide))
}

#[handler]
pub(crate) async fn dashboard(me: SignedIn, shell: Data<&Arc<Shell>>) -> PageResult {
    let (cards, wide) = gather(&shell.cards, &me.session).await?;
    render(
        &DashboardPage {
            nav: me.nav("dashboard"),
            first_name: me.session.greeting_name(),
            cards,
            wide,
        },
        StatusCode::OK,
    )
}
