//! The shape of the code, checked: every table has one owner (the table in
//! `docs/architecture.md`), a crate writes only the tables it owns, and it reads another
//! context's tables only through the views the owner's migrations define. Other contexts change
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

/// Every table the migrations leave (PostgreSQL and SQLite leave the same ones): those they
/// create, in order, less those they drop, with renames followed (SQLite rebuilds a table as a
/// new one renamed into place).
fn tables() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in ["migrations/postgres", "migrations/sqlite"] {
        let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
            .expect("migrations")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        let mut tables = BTreeSet::new();
        for file in files {
            let text = fs::read_to_string(file).expect("migration");
            let words = words(&text);
            for (i, w) in words.iter().enumerate() {
                let next = |k: usize| words.get(i + k).map(String::as_str);
                if w == "create" && next(1) == Some("table") {
                    // `create table [if not exists] name`
                    let at = if next(2) == Some("if") { 5 } else { 2 };
                    if let Some(name) = next(at) {
                        tables.insert(name.to_string());
                    }
                } else if w == "drop" && next(1) == Some("table") {
                    let at = if next(2) == Some("if") { 4 } else { 2 };
                    if let Some(name) = next(at) {
                        tables.remove(name);
                    }
                } else if w == "alter"
                    && next(1) == Some("table")
                    && next(3) == Some("rename")
                    && next(4) == Some("to")
                {
                    if let (Some(from), Some(to)) = (next(2), next(5)) {
                        if tables.remove(from) {
                            tables.insert(to.to_string());
                        }
                    }
                }
            }
        }
        out.extend(tables);
    }
    out
}

/// Every view the migrations create (`create view name`), with the tables it selects from.
fn views() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for dir in ["migrations/postgres", "migrations/sqlite"] {
        for entry in fs::read_dir(root().join(dir)).expect("migrations") {
            let text = fs::read_to_string(entry.expect("entry").path()).expect("migration");
            let code: Vec<&str> = text
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect();
            // One statement at a time, so a view's `from` is not confused with the next one's.
            for statement in code.join("\n").split(';') {
                let words = words(statement);
                let Some(at) = words
                    .windows(2)
                    .position(|w| w[0] == "create" && w[1] == "view")
                else {
                    continue;
                };
                let Some(name) = words.get(at + 2) else {
                    continue;
                };
                let over = out.entry(name.clone()).or_default();
                for w in words.windows(2) {
                    if w[0] == "from" || w[0] == "join" {
                        over.insert(w[1].clone());
                    }
                }
            }
        }
    }
    out
}

/// The rows (first cell → the cells after it) of the table under `heading` in the architecture
/// guide; a first cell may list several names separated by commas.
fn doc_table(heading: &str) -> BTreeMap<String, Vec<String>> {
    let doc = fs::read_to_string(root().join("docs/architecture.md")).expect("architecture.md");
    let section = doc
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/architecture.md has a `{heading}` section"));
    let mut out = BTreeMap::new();
    let mut rows = section.lines().skip_while(|l| !l.starts_with('|'));
    let _header = rows.next();
    for line in rows {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<String> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_string())
            .collect();
        if cells.len() < 3 || cells[1].starts_with("---") {
            continue;
        }
        let mut rest: Vec<String> = cells[2..].to_vec();
        if rest.last().is_some_and(String::is_empty) {
            rest.pop();
        }
        for name in cells[1].split(',') {
            out.insert(name.trim().trim_matches('`').to_string(), rest.clone());
        }
    }
    out
}

/// The owner map: the rows of the table under "### Table owners" in the architecture guide.
fn owners() -> BTreeMap<String, String> {
    doc_table("### Table owners")
        .into_iter()
        .map(|(table, rest)| (table, rest.first().cloned().unwrap_or_default()))
        .collect()
}

/// The documented views: view → (owner, the tables it is over), from the table under
/// "### Views other contexts read".
fn view_owners() -> BTreeMap<String, (String, BTreeSet<String>)> {
    doc_table("### Views other contexts read")
        .into_iter()
        .map(|(view, rest)| {
            let over = rest
                .get(1)
                .map(|o| {
                    o.split(',')
                        .map(|t| t.trim().trim_matches('`').to_string())
                        .collect()
                })
                .unwrap_or_default();
            (view, (rest.first().cloned().unwrap_or_default(), over))
        })
        .collect()
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

/// The contents of the string literals of Rust source `text`, in order: plain, byte and raw
/// strings (`"…"`, `b"…"`, `r#"…"#`), with comments, character literals and lifetimes
/// skipped. SQL lives in string literals; Rust code (`String::from(users)`) does not.
fn string_literals(text: &str) -> Vec<String> {
    let s: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            // A whole identifier; `r`, `br` and `cr` followed by `#`s and a quote open a raw
            // string.
            let start = i;
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                i += 1;
            }
            let ident: String = s[start..i].iter().collect();
            if matches!(ident.as_str(), "r" | "br" | "cr") {
                let mut hashes = 0;
                while s.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if s.get(i + hashes) == Some(&'"') {
                    let body = i + hashes + 1;
                    let mut end = body;
                    while end < s.len()
                        && !(s[end] == '"' && (1..=hashes).all(|k| s.get(end + k) == Some(&'#')))
                    {
                        end += 1;
                    }
                    out.push(s[body..end.min(s.len())].iter().collect());
                    i = end + 1 + hashes;
                }
            }
        } else if c == '"' {
            let mut lit = String::new();
            i += 1;
            while i < s.len() && s[i] != '"' {
                if s[i] == '\\' {
                    // An escape (or a line continuation) separates words like a space.
                    lit.push(' ');
                    i += 2;
                } else {
                    lit.push(s[i]);
                    i += 1;
                }
            }
            out.push(lit);
            i += 1;
        } else if c == '\'' {
            // A character literal (`'"'`, `'\''`) is skipped; a lifetime or label is not one.
            if next == Some('\\') {
                i += 3;
                while i < s.len() && s[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if s.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Lower-case words of the SQL in Rust source `text`: the words of its string literals, in
/// order and across literals (a statement may be assembled from several), SQL comments removed.
fn sql_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for literal in string_literals(text) {
        for line in literal.lines() {
            let code = line.split("--").next().unwrap_or("");
            out.extend(
                code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .map(str::to_ascii_lowercase),
            );
        }
    }
    out
}

/// The Rust sources under `crate_dir/src`.
fn sources(crate_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![crate_dir.join("src")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The tables of `tables` that the SQL `words` name after a `from` or a `join`.
fn reads_in(words: &[String], tables: &BTreeSet<String>) -> BTreeSet<String> {
    words
        .windows(2)
        .filter(|w| (w[0] == "from" || w[0] == "join") && tables.contains(&w[1]))
        .map(|w| w[1].clone())
        .collect()
}

/// (table, file) of every `from <table>` and `join <table>` in the SQL of the crate's sources
/// (its string literals) whose table is a table of the schema.
fn reads(crate_dir: &Path, tables: &BTreeSet<String>) -> BTreeSet<(String, PathBuf)> {
    let mut out = BTreeSet::new();
    for path in sources(crate_dir) {
        let text = fs::read_to_string(&path).expect("source");
        for table in reads_in(&sql_words(&text), tables) {
            out.insert((table, path.clone()));
        }
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
                    // The kernel's batch soft delete, given the caller's table by name.
                    "soft_delete_batch" => w.get(i + 2),
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
fn every_view_has_a_documented_owner_that_owns_its_tables() {
    let views = views();
    let documented = view_owners();
    let owners = owners();
    let tables = tables();
    let missing: Vec<&String> = views
        .keys()
        .filter(|v| !documented.contains_key(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "views without an owner in docs/architecture.md (### Views other contexts read): {missing:?}"
    );
    let unknown: Vec<&String> = documented
        .keys()
        .filter(|v| !views.contains_key(*v))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/architecture.md names views the migrations do not create: {unknown:?}"
    );
    for (view, over) in &views {
        assert!(
            !tables.contains(view),
            "`{view}` is created both as a table and as a view"
        );
        let (owner, documented_over) = &documented[view];
        assert_eq!(
            over, documented_over,
            "docs/architecture.md says `{view}` is over {documented_over:?}; the migrations select from {over:?}"
        );
        for table in over {
            assert_eq!(
                owners.get(table),
                Some(owner),
                "`{view}` (owner `{owner}`) reads `{table}`, which its owner does not own"
            );
        }
    }
}

#[test]
fn a_crate_reads_other_contexts_only_through_their_views() {
    let tables = tables();
    let owners = owners();
    let mut violations = Vec::new();
    for entry in fs::read_dir(root().join("platform")).expect("platform") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for (table, file) in reads(&dir, &tables) {
            let owner = owners.get(&table).map(String::as_str);
            // A crate reads its own tables; the kernel's (the audit log) are everyone's.
            if owner == Some(name.as_str()) || owner == Some("kernel") {
                continue;
            }
            violations.push(format!(
                "{} reads `{table}`, owned by `{}`",
                file.strip_prefix(root()).unwrap_or(&file).display(),
                owner.unwrap_or("nobody")
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "cross-context reads (read the owner's view, see ### Views other contexts read, or call its query function):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_reads_in_sql_only() {
    // The owners' own reads are found, multi-line statements included.
    let tables = tables();
    let found = reads(&root().join("platform/identity"), &tables);
    assert!(found.iter().any(|(t, _)| t == "users"));
    assert!(found.iter().any(|(t, _)| t == "sessions"));
    let found = reads(&root().join("platform/renewals"), &tables);
    assert!(found.iter().any(|(t, _)| t == "certifications"));
    // SQL in any kind of literal and across lines counts; Rust code and comments do not.
    let source = r####"
        // select id from tenants
        /* select id from tenants */
        let name = String::from(users);
        let quote = '"'; let tick = '''; fn f<'a>(x: &'a str) {}
        sqlx::query("select id
              from
                departments where tenant_id = $1"); // from sessions
        sqlx::query(r#"select 1 from certifications c join "#);
        sqlx::query("audit_log -- join refresh_tokens
                     where "x"");
    "####;
    let seen = reads_in(&sql_words(source), &tables);
    let expected: BTreeSet<String> = ["departments", "certifications", "audit_log"]
        .map(String::from)
        .into();
    assert_eq!(seen, expected);
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
    // A write through the kernel's batch soft delete counts as the caller's.
    let dir = std::env::temp_dir().join(format!("trainflow-arch-{}", std::process::id()));
    fs::create_dir_all(dir.join("src")).expect("temp crate");
    fs::write(
        dir.join("src/lib.rs"),
        "audit::soft_delete_batch(tx, \"users\", \"user\", \"user.import\", &ids, now, src)",
    )
    .expect("temp source");
    let found = writes(&dir, &tables);
    let _ = fs::remove_dir_all(&dir);
    assert!(found.iter().any(|(t, _)| t == "users"), "{found:?}");
}
