//! The navigation bar: entries contributed by each context, filtered by the caller's role.

use trainflow_kernel::auth::Permission;

use crate::Session;

/// A context's entry in the navigation bar.
#[derive(Debug, Clone)]
pub struct NavEntry {
    /// Matched against the page's `current` to mark it `aria-current`.
    pub key: &'static str,
    pub label: &'static str,
    pub href: &'static str,
    /// Position in the bar (lower first).
    pub order: u16,
    /// Shown only to roles that hold it; `None`: everyone signed in.
    pub permission: Option<Permission>,
}

/// One link of a rendered bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// The navigation bar of a signed-in page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub current: &'static str,
    pub user_name: String,
    pub role_label: &'static str,
    pub tenant_name: String,
    /// `#rrggbb`.
    pub brand_colour: String,
    pub logo_url: Option<String>,
    pub csrf: String,
    pub links: Vec<NavLink>,
}

impl Nav {
    /// The brand colour without its `#`, for the header's stylesheet address.
    pub fn brand_hex(&self) -> &str {
        self.brand_colour.trim_start_matches('#')
    }

    /// The bar `session` sees, with `current` marked.
    pub fn new(entries: &[NavEntry], session: &Session, current: &'static str) -> Nav {
        let links = entries
            .iter()
            .filter(|e| e.permission.is_none_or(|p| session.role.grants(p)))
            .map(|e| NavLink {
                label: e.label,
                href: e.href,
                current: e.key == current,
            })
            .collect();
        Nav {
            current,
            user_name: session.display_name(),
            role_label: session.role.label(),
            tenant_name: session.tenant_name.clone(),
            brand_colour: session.brand_colour.clone(),
            logo_url: session.logo_url.clone(),
            csrf: session.csrf_token.clone(),
            links,
        }
    }
}
