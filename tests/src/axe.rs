//! axe-core, the accessibility rules engine the portal's pages are audited with in the browser
//! tests. It comes from the npm registry: `tests/run.sh` installs the pinned version into the
//! cache, and a test run without it installs it the same way.

use std::{path::PathBuf, process::Command, sync::OnceLock};

/// The version the audits are run with.
pub const VERSION: &str = "4.10.3";

fn cache_dir() -> PathBuf {
    std::env::var_os("TRAINFLOW_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
            PathBuf::from(home).join(".cache/trainflow/node")
        })
}

/// The source of `axe.min.js`, installed with npm into the cache on first use.
pub fn source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let dir = cache_dir();
        let file = dir.join("node_modules/axe-core/axe.min.js");
        let installed = dir.join("node_modules/axe-core/package.json");
        let current = std::fs::read_to_string(&installed)
            .is_ok_and(|p| p.contains(&format!("\"version\": \"{VERSION}\"")));
        if !current {
            std::fs::create_dir_all(&dir).expect("the node cache directory");
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&dir)
                .arg(format!("axe-core@{VERSION}"))
                .status()
                .expect("npm is needed to install axe-core (Node.js and npm)");
            assert!(status.success(), "npm install axe-core@{VERSION} failed");
        }
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    })
}

/// The script that runs axe on the page and answers its serious and critical violations
/// (WCAG 2.1 A and AA, and best practices) as `[{id, impact, help, nodes}]`.
pub const AUDIT: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {
  runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
  resultTypes: ['violations'],
}).then(r => done(r.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + n.html.slice(0, 120))}))))
  .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"#;
