//! Every page of the portal, for every role and signed out, passes an automated accessibility
//! audit (axe-core in headless Chromium) with no serious or critical violation, and each
//! role's dashboard shows what that role acts on. The demo tenant
//! supplies real content: certifications in every state, renewals with history, a connector
//! installation with a run.

use std::collections::BTreeSet;

use serde_json::Value;
use trainflow_tests::{axe, webdriver::Browser, Options, TestApp};

const PASSWORD: &str = "TrainFlow-demo-2026";

/// The pages every signed-in visit starts from; the links they show lead to the rest.
const START: &[&str] = &[
    "/portal",
    "/portal/profile",
    "/portal/users",
    "/portal/users/new",
    "/portal/team",
    "/portal/courses",
    "/portal/learning",
    "/portal/certificates",
    "/portal/verify",
    "/portal/skills",
    "/portal/certifications",
    "/portal/certification-types",
    "/portal/approvals",
    "/portal/compliance",
    "/portal/notifications",
    "/portal/notifications/preferences",
    "/portal/integrations",
    "/portal/jobs",
];

/// `path` with ids and query strings replaced, so each kind of page is audited once per role.
fn shape(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/')
        .map(|seg| {
            if seg.parse::<uuid::Uuid>().is_ok() {
                ":id"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Audits the page at `path`; answers its problems as lines.
async fn audit(browser: &Browser, base: &str, path: &str, who: &str) -> Vec<String> {
    browser.goto(&format!("{base}{path}")).await;
    audit_shown(browser, path, who).await
}

/// Audits the page the browser shows (`path` names it in the problems).
async fn audit_shown(browser: &Browser, path: &str, who: &str) -> Vec<String> {
    let loaded = browser
        .script(&format!("{}\nreturn typeof axe;", axe::source()))
        .await;
    assert_eq!(loaded, "object", "axe-core did not load on {path}");
    let violations = browser.script_async(axe::AUDIT).await;
    violations
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            format!(
                "{who} {path}: {} ({}) {} — {}",
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or_default(),
                v["help"].as_str().unwrap_or_default(),
                v["nodes"]
                    .as_array()
                    .map(|n| n
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" | "))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Signs `browser` in to the demo tenant as `who` (the part before `@demo.trainflow.test`).
async fn sign_in(browser: &Browser, base: &str, who: &str) {
    browser.goto(&format!("{base}/portal/login")).await;
    browser.fill("#organisation", "demo").await;
    browser
        .fill("#email", &format!("{who}@demo.trainflow.test"))
        .await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    assert!(
        browser.wait_for_text("Welcome,").await,
        "{who} signs in: {}",
        browser.source().await
    );
}

/// The portal links on the page shown.
async fn links(browser: &Browser) -> Vec<String> {
    let v = browser
        .script(
            "return Array.from(document.querySelectorAll('a[href^=\"/portal\"]'))\
             .map(a => a.getAttribute('href'));",
        )
        .await;
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|h| h.as_str().map(str::to_string))
        .filter(|h| !h.starts_with("/portal/static/"))
        .collect()
}

/// One demo tenant for the three checks: on PostgreSQL the tests of a binary share a database,
/// and the demo is one tenant.
#[tokio::test]
async fn the_portal_is_accessible_to_every_role_on_every_page_and_on_a_phone() {
    let app = TestApp::spawn_with(Options {
        demo: true,
        ..Options::default()
    })
    .await;
    every_page_passes_an_accessibility_audit_for_every_role(&app.base).await;
    on_a_phone_the_navigation_folds_behind_a_menu_button(&app.base).await;
    a_refused_form_ties_each_error_to_its_field(&app.base).await;
}

async fn every_page_passes_an_accessibility_audit_for_every_role(base: &str) {
    let base = base.to_string();
    let browser = Browser::start(1280, 900).await;
    let mut problems = Vec::new();
    let mut audited = 0;

    for path in ["/portal/login", "/portal/reset-password"] {
        problems.extend(audit(&browser, &base, path, "signed out").await);
        audited += 1;
    }
    // The audit can fail: an image without a text alternative and an unlabelled field, put
    // into the page shown, are found.
    browser
        .script(
            "const f = document.querySelector('form');\
             f.insertAdjacentHTML('beforeend', '<img src=\"/portal/static/app.css\"><input type=\"text\">');",
        )
        .await;
    let found = browser.script_async(axe::AUDIT).await.to_string();
    assert!(
        found.contains("image-alt") && found.contains("label"),
        "axe did not find the planted violations: {found}"
    );

    for who in [
        "admin",
        "manager",
        "foreman",
        "training",
        "trainer",
        "alice.brown",
    ] {
        browser.clear_cookies().await;
        sign_in(&browser, &base, who).await;
        problems.extend(dashboard_shows_what_the_role_acts_on(&browser, who).await);
        let mut seen = BTreeSet::new();
        let mut queue: Vec<String> = START.iter().map(|s| s.to_string()).collect();
        while let Some(path) = queue.pop() {
            if path.contains("logout") || !seen.insert(shape(&path)) {
                continue;
            }
            problems.extend(audit(&browser, &base, &path, who).await);
            audited += 1;
            queue.extend(links(&browser).await);
        }
    }
    eprintln!("audited {audited} pages");
    assert!(audited > 40, "only {audited} pages were audited");
    assert!(
        problems.is_empty(),
        "{} accessibility problems in {audited} pages:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The cards each demo role's dashboard must show, and those it must not.
fn dashboard_of(who: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match who {
        "admin" => (
            &[
                "Active people",
                "Compliance",
                "Imports",
                "Depot HR export (CSV)",
                "succeeded: 5 created",
                "Recent activity",
                "Approvals waiting",
                "A connector (import)",
            ],
            // Who acted is a name or a kind of actor, never a guess.
            &["A former person"],
        ),
        "manager" => (
            &[
                "Approvals waiting",
                "My team",
                "Compliance",
                "My department",
            ],
            &["Imports", "Recent activity"],
        ),
        "foreman" => (
            &["Approvals waiting", "My team", "Compliance"],
            &["Imports", "Recent activity"],
        ),
        "training" => (
            &[
                "Compliance",
                "Active people",
                "Approvals waiting",
                "Imports",
                "Depot HR export (CSV)",
                "Recent activity",
                "Renewal requested",
            ],
            &["My team", "Open integrations", "A former person"],
        ),
        // Alice is half-way through the course her manager assigned.
        "alice.brown" => (
            &[
                "Certifications to renew",
                "Unread notifications",
                "My profile",
                "My courses",
                "Track inspection",
            ],
            &["Compliance", "Imports", "Recent activity", "Active people"],
        ),
        _ => (
            &[
                "Certifications to renew",
                "Unread notifications",
                "My profile",
                "My courses",
            ],
            &["Compliance", "Imports", "Recent activity", "Active people"],
        ),
    }
}

/// The dashboard the browser shows after signing in holds what `who`'s role acts on, with
/// times in a human format (never a raw timestamp); answers what is wrong as lines.
async fn dashboard_shows_what_the_role_acts_on(browser: &Browser, who: &str) -> Vec<String> {
    let text = browser
        .script("return document.querySelector('main').innerText;")
        .await;
    let text = text.as_str().unwrap_or_default();
    let (shown, hidden) = dashboard_of(who);
    let mut problems: Vec<String> = shown
        .iter()
        .filter(|t| !text.contains(**t))
        .map(|t| format!("{who}'s dashboard lacks {t:?}"))
        .collect();
    problems.extend(
        hidden
            .iter()
            .filter(|t| text.contains(**t))
            .map(|t| format!("{who}'s dashboard shows {t:?}")),
    );
    let raw_time = text.as_bytes().windows(13).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b'-'
            && w[7] == b'-'
            && w[10] == b'T'
            && w[11..].iter().all(u8::is_ascii_digit)
    });
    if raw_time {
        problems.push(format!("{who}'s dashboard shows a raw timestamp"));
    }
    if !problems.is_empty() {
        problems.push(format!("{who}'s dashboard reads:\n{text}"));
    }
    problems
}

async fn on_a_phone_the_navigation_folds_behind_a_menu_button(base: &str) {
    let browser = Browser::start_phone(390, 844).await;
    sign_in(&browser, base, "admin").await;
    let state = || async {
        browser
            .script(
                "const nav = document.getElementById('main-nav');\
                 const header = document.querySelector('header.top');\
                 return {nav: getComputedStyle(nav).display,\
                         header: header.getBoundingClientRect().height,\
                         expanded: document.querySelector('.menu-toggle').getAttribute('aria-expanded')};",
            )
            .await
    };
    let folded = state().await;
    assert_eq!(folded["nav"], "none", "{folded}");
    assert_eq!(folded["expanded"], "false", "{folded}");
    // Folded, the header is a bar, not a quarter of the screen.
    assert!(folded["header"].as_f64().unwrap() < 844.0 / 4.0, "{folded}");
    browser.click(".menu-toggle").await;
    let open = state().await;
    assert_eq!(open["nav"], "flex", "{open}");
    assert_eq!(open["expanded"], "true", "{open}");
    browser
        .click("#main-nav a[href='/portal/certifications']")
        .await;
    assert!(browser.url().await.ends_with("/portal/certifications"));

    // On a wide screen there is no button: the navigation is shown.
    let wide = Browser::start(1280, 900).await;
    sign_in(&wide, base, "admin").await;
    let shown = wide
        .script(
            "return [getComputedStyle(document.getElementById('main-nav')).display,\
                     getComputedStyle(document.querySelector('.menu-toggle')).display];",
        )
        .await;
    assert_eq!(shown, serde_json::json!(["flex", "none"]));
}

async fn a_refused_form_ties_each_error_to_its_field(base: &str) {
    let browser = Browser::start(1280, 900).await;
    sign_in(&browser, base, "admin").await;
    // Someone else's email: the server refuses it, naming the field.
    browser.goto(&format!("{base}/portal/users/new")).await;
    browser.fill("#email", "manager@demo.trainflow.test").await;
    browser.fill("#first_name", "Second").await;
    browser.click("form.card button[type=submit]").await;
    assert!(
        browser.wait_for_text("aria-invalid").await,
        "{}",
        browser.source().await
    );
    let tied = browser
        .script(
            "const input = document.getElementById('email');\
             const described = document.getElementById(input.getAttribute('aria-describedby'));\
             return [input.getAttribute('aria-invalid'), described ? described.textContent : null];",
        )
        .await;
    assert_eq!(tied[0], "true", "{tied}");
    assert!(
        tied[1].as_str().is_some_and(|t| t.contains("Email")),
        "{tied}"
    );
    let problems = audit_shown(&browser, "/portal/users (refused)", "admin").await;
    assert!(problems.is_empty(), "{problems:?}");
}
