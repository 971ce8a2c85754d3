//! The shape of the code, checked: every table has one owner (the table in
//! `docs/architecture.md`), and a crate writes only the tables it owns. Other contexts change
//! them through the owner's public functions.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// Every table the migrations create (PostgreSQL and SQLite create the same ones).
fn tables() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in ["migrations/postgres", "migrations/sqlite"] {
        for entry in fs::read_dir(root().join(dir)).expect("migrations") {
            let text = fs::read_to_string(entry.expect("entry").path()).expect("migration");
            let words = words(&text);
            for (i, w) in words.iter().enumerate() {
                if w == "create" && words.get(i + 1).is_some_and(|n| n == "table") {
                    // `create table [if not exists] name`
                    let at = if words.get(i + 2).is_some_and(|n| n == "if") {
                        i + 5
                    } else {
                        i + 2
                    };
                    if let Some(name) = words.get(at) {
                        out.insert(name.clone());
                    }
                }
            }
        }
    }
    out
}

/// The owner map: the rows of the table under "### Table owners" in the architecture guide.
fn owners() -> BTreeMap<String, String> {
    let doc = fs::read_to_string(root().join("docs/architecture.md")).expect("architecture.md");
    let section = doc
        .split("### Table owners")
        .nth(1)
        .expect("docs/architecture.md has a `### Table owners` section");
    let mut out = BTreeMap::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 3 || cells[1] == "table" || cells[1].starts_with("---") {
            continue;
        }
        let owner = cells[2].trim_matches('`').to_string();
        for table in cells[1].split(',') {
            out.insert(table.trim().trim_matches('`').to_string(), owner.clone());
        }
    }
    out
}

/// Lower-case words (identifiers) of `text`, SQL comments and Rust comments removed.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("--").next().unwrap_or("");
        let trimmed = code.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match code.find("// ") {
            Some(i) => &code[..i],
            None => code,
        };
        out.extend(
            code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .map(str::to_ascii_lowercase),
        );
    }
    out
}

/// (crate directory name, table) of every `insert into`, `update` and `delete from` in the
/// crate's sources whose target is a table of the schema.
fn writes(crate_dir: &Path, tables: &BTreeSet<String>) -> BTreeSet<(String, PathBuf)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![crate_dir.join("src")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = fs::read_to_string(&path).expect("source");
            let w = words(&text);
            for i in 0..w.len() {
                let target = match w[i].as_str() {
                    "insert" | "delete"
                        if w.get(i + 1).is_some_and(|n| n == "into" || n == "from") =>
                    {
                        w.get(i + 2)
                    }
                    "update" => w.get(i + 1),
                    _ => None,
                };
                if let Some(t) = target.filter(|t| tables.contains(*t)) {
                    out.insert((t.clone(), path.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn every_table_has_exactly_one_documented_owner() {
    let tables = tables();
    let owners = owners();
    let missing: Vec<&String> = tables.iter().filter(|t| !owners.contains_key(*t)).collect();
    assert!(
        missing.is_empty(),
        "tables without an owner in docs/architecture.md (### Table owners): {missing:?}"
    );
    let unknown: Vec<&String> = owners.keys().filter(|t| !tables.contains(*t)).collect();
    assert!(
        unknown.is_empty(),
        "docs/architecture.md names tables the migrations do not create: {unknown:?}"
    );
    let crates: BTreeSet<String> = fs::read_dir(root().join("platform"))
        .expect("platform")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for (table, owner) in &owners {
        assert!(
            crates.contains(owner),
            "the owner of `{table}` is `{owner}`, which is not a crate under platform/"
        );
    }
}

#[test]
fn a_crate_writes_only_the_tables_it_owns() {
    let tables = tables();
    let owners = owners();
    let mut violations = Vec::new();
    for entry in fs::read_dir(root().join("platform")).expect("platform") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for (table, file) in writes(&dir, &tables) {
            if owners.get(&table) != Some(&name) {
                violations.push(format!(
                    "{} writes `{table}`, owned by `{}`",
                    file.strip_prefix(root()).unwrap_or(&file).display(),
                    owners.get(&table).map(String::as_str).unwrap_or("nobody")
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "cross-context writes (call the owner's public function instead):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_writes() {
    // The checks above are only as good as the scan: it must find the owners' own writes.
    let tables = tables();
    let found = writes(&root().join("platform/identity"), &tables);
    assert!(found.iter().any(|(t, _)| t == "users"));
    assert!(found.iter().any(|(t, _)| t == "sessions"));
    let found = writes(&root().join("platform/kernel"), &tables);
    assert!(found.iter().any(|(t, _)| t == "audit_log"));
}
