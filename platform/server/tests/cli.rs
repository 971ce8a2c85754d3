//! The `trainflow` command line, run as a real process against a fresh database
//! (SQLite, or PostgreSQL when `TRAINFLOW_TEST_BACKEND=postgres`).

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
};

use sqlx::{Connection, Executor};

const SECRET: &str = "cli-test-secret-cli-test-secret-0123456789";

struct Db {
    url: String,
    _dir: Option<PathBuf>,
}

async fn fresh_database() -> Db {
    if std::env::var("TRAINFLOW_TEST_BACKEND").as_deref() == Ok("postgres") {
        let server = std::env::var("TRAINFLOW_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut c = sqlx::PgConnection::connect(&server)
            .await
            .expect("PostgreSQL is required for the postgres run");
        // Named after the test run (`tests/run.sh` drops its own databases when it ends).
        let run = std::env::var("TRAINFLOW_TEST_RUN").unwrap_or_else(|_| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("{secs}_{}", std::process::id())
        });
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("trainflow_cli_{run}_{}", &id[..16]);
        c.execute(format!("create database {name}").as_str())
            .await
            .expect("create database");
        let (base, _) = server.rsplit_once('/').expect("url with database");
        Db {
            url: format!("{base}/{name}"),
            _dir: None,
        }
    } else {
        let dir =
            std::env::temp_dir().join(format!("trainflow-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Db {
            url: format!("sqlite://{}", dir.join("cli.db").display()),
            _dir: Some(dir),
        }
    }
}

fn run(db: &Db, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trainflow"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("TRAINFLOW_DATABASE_URL", &db.url)
        .env("TRAINFLOW_JWT_SECRET", SECRET)
        .env("TRAINFLOW_CONFIG", "/nonexistent/trainflow.toml")
        .env("TRAINFLOW_LOG_FORMAT", "pretty")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trainflow");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(SECRET), "a secret was printed: {all}");
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn an_operator_sets_up_a_tenant_from_the_command_line() {
    let db = fresh_database().await;
    let o = run(&db, &["migrate"], None);
    assert!(o.status.success(), "{}", text(&o));

    let o = run(
        &db,
        &[
            "tenant",
            "create",
            "--slug",
            "cli-org",
            "--name",
            "CLI Org",
            "--time-zone",
            "Asia/Tokyo",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("tenant cli-org"));

    let o = run(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "cli-org",
            "--email",
            "Boss@CLI.test",
            "--role",
            "administrator",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("boss@cli.test"),
        "emails are normalised: {}",
        text(&o)
    );

    // Refusals say what is wrong and exit non-zero.
    let o = run(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "cli-org",
            "--email",
            "x@cli.test",
            "--role",
            "emperor",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("administrator"),
        "lists the valid roles: {}",
        text(&o)
    );
    let o = run(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "cli-org",
            "--email",
            "y@cli.test",
            "--role",
            "employee",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("at least 12"));
    let o = run(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "cli-org",
            "--email",
            "boss@cli.test",
            "--role",
            "employee",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("email"), "{}", text(&o));

    // The demo manifest applies once; applying again adds nothing.
    let o = run(&db, &["tenant", "apply", "tenants/demo"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("18 users added"), "{}", text(&o));
    // The renewals context's part: types, certifications and renewals part-way through approval.
    assert!(
        text(&o).contains("4 certification types added"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("17 certifications added"), "{}", text(&o));
    assert!(
        text(&o).contains("4 renewal requests added"),
        "{}",
        text(&o)
    );
    // The integrations part: the depot's CSV export, installed and run once, and the next
    // week's export run dry.
    assert!(
        text(&o).contains("1 connector installations added")
            && text(&o).contains("2 connector runs added"),
        "{}",
        text(&o)
    );
    let o = run(&db, &["tenant", "apply", "tenants/demo"], None);
    assert!(
        text(&o).contains("0 departments and 0 users added")
            && text(&o).contains("0 certifications added")
            && text(&o).contains("0 renewal requests added")
            && text(&o).contains("0 connector installations added"),
        "{}",
        text(&o)
    );

    let o = run(&db, &["tenant", "list"], None);
    assert!(
        text(&o).contains("cli-org") && text(&o).contains("demo") && text(&o).contains("2 tenants")
    );

    let o = run(
        &db,
        &[
            "operator",
            "create",
            "--email",
            "ops@platform.test",
            "--password-stdin",
        ],
        Some("operator passphrase 1\n"),
    );
    assert!(o.status.success(), "{}", text(&o));

    let o = run(
        &db,
        &["job", "run", "identity.cleanup_inactive_users"],
        None,
    );
    assert!(
        o.status.success() && text(&o).contains("Ran"),
        "{}",
        text(&o)
    );
    let o = run(&db, &["job", "list"], None);
    assert!(text(&o).contains("succeeded"), "{}", text(&o));

    let o = run(&db, &["openapi"], None);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"openapi\""));
}

/// The connector components the integrations crate's build script compiled.
fn plugins_dir() -> PathBuf {
    PathBuf::from(trainflow_integrations::catalogue::BUILT_PLUGINS_DIR)
}

#[test]
fn a_partner_replays_recorded_http_with_a_cassette() {
    let dir = std::env::temp_dir().join(format!(
        "trainflow-cassette-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let cassette = dir.join("cassette");
    std::fs::create_dir_all(&cassette).unwrap();
    std::fs::write(
        cassette.join("units.json"),
        r#"{"method": "GET", "url": "https://api.example.com/units", "status": 200,
            "headers": {"content-type": "text/plain"}, "body": "Signalling"}"#,
    )
    .unwrap();
    let config = dir.join("config.json");
    let wasm = plugins_dir().join("trainflow_connector_testing.wasm");
    let run = |url: &str| {
        std::fs::write(&config, format!(r#"{{"mode": "http", "url": "{url}"}}"#)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_trainflow"))
            .args(["connector", "test"])
            .arg(&wasm)
            .arg("--config")
            .arg(&config)
            .arg("--http-cassette")
            .arg(&cassette)
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    let (ok, text) = run("https://api.example.com/units");
    assert!(ok, "{text}");
    assert!(text.contains("1 recorded exchanges"), "{text}");
    assert!(text.contains("total: 1 entities"), "{text}");
    assert!(text.contains("answered 200"), "{text}");
    // A request the cassette does not hold fails, and says why.
    let (ok, text) = run("https://api.example.com/people");
    assert!(!ok, "{text}");
    assert!(text.contains("no recorded response"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_partner_tests_a_connector_locally_with_a_file() {
    let dir = std::env::temp_dir().join(format!(
        "trainflow-connector-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("people.csv");
    std::fs::write(
        &csv,
        "Employee ID,First name,Surname,Active\nE1,Ada,Lovelace,yes\nE2,Bo,Nameless,maybe\nE3,Alan,Turing,yes\n",
    )
    .unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"entity": "employee", "columns": {"external_id": "Employee ID", "first_name": "First name", "last_name": "Surname", "active": "Active"}}"#,
    )
    .unwrap();
    let wasm = plugins_dir().join("trainflow_connector_csv.wasm");
    let out = Command::new(env!("CARGO_BIN_EXE_trainflow"))
        .args(["connector", "test"])
        .arg(&wasm)
        .arg("--config")
        .arg(&config)
        .arg("--file")
        .arg(&csv)
        .args(["--max-records", "2"])
        .output()
        .unwrap();
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("com.trainflow.csv"), "{text}");
    assert!(text.contains("page 2:"), "two pages of two: {text}");
    assert!(text.contains("total: 2 entities"), "{text}");
    assert!(
        text.contains("row 3: active `maybe` is not yes or no"),
        "{text}"
    );
    assert!(
        text.contains("instructions") && text.contains("peak memory"),
        "{text}"
    );

    // A configuration naming a missing column fails with the reason and a non-zero status.
    std::fs::write(&config, r#"{"entity": "employee", "columns": {"external_id": "Staff", "first_name": "First name", "last_name": "Surname"}}"#)
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trainflow"))
        .args(["connector", "test"])
        .arg(&wasm)
        .arg("--config")
        .arg(&config)
        .arg("--file")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(crate::text(&out).contains("Staff"), "{}", crate::text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_operator_installs_lists_and_runs_a_tenants_integrations() {
    let db = fresh_database().await;
    let out = run(&db, &["migrate"], None);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &db,
        &[
            "tenant",
            "create",
            "--slug",
            "acme-rail",
            "--name",
            "Acme Rail",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &db,
        &["integrations", "list", "--tenant", "acme-rail"],
        None,
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("com.trainflow.csv") && shown.contains("com.trainflow.excel"),
        "{shown}"
    );
    let out = run(
        &db,
        &[
            "integrations",
            "run",
            "--tenant",
            "acme-rail",
            "0190f0c1-7a6e-7c3e-9d7b-0a1b2c3d4e5f",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("not found"), "{}", text(&out));
    let out = run(&db, &["integrations", "list", "--tenant", "nobody"], None);
    assert!(!out.status.success());

    // Install on behalf of an administrator, from JSON files; run with a file.
    let out = run(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "acme-rail",
            "--email",
            "it@acme.test",
            "--role",
            "administrator",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let dir = std::env::temp_dir().join(format!(
        "trainflow-cli-install-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"entity": "employee", "columns": {"external_id": "id", "first_name": "first", "last_name": "last", "email": "email"}}"#,
    )
    .unwrap();
    let install = |config: &PathBuf, who: &str| {
        run(
            &db,
            &[
                "integrations",
                "install",
                "--tenant",
                "acme-rail",
                "--as",
                who,
                "--connector",
                "com.trainflow.csv",
                "--name",
                "HR export",
                "--config",
                config.to_str().unwrap(),
                "--schedule",
                "0 2 * * *",
            ],
            None,
        )
    };
    let refused = install(&config, "nobody@acme.test");
    assert!(!refused.status.success());
    assert!(text(&refused).contains("no person"), "{}", text(&refused));
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"entity": "starship"}"#).unwrap();
    let refused = install(&bad, "it@acme.test");
    assert!(!refused.status.success());
    assert!(text(&refused).contains("config"), "{}", text(&refused));
    let out = install(&config, "it@acme.test");
    assert!(out.status.success(), "{}", text(&out));
    let installation: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = installation["id"].as_str().unwrap().to_string();
    assert_eq!(installation["schedule"], "0 2 * * *");
    let out = run(
        &db,
        &["integrations", "list", "--tenant", "acme-rail"],
        None,
    );
    assert!(
        text(&out).contains(&format!("installation {id} HR export")),
        "{}",
        text(&out)
    );
    let csv = dir.join("people.csv");
    std::fs::write(
        &csv,
        "id,first,last,email\nE1,Ada,Lovelace,ada@acme.test\nE2,Alan,Turing,alan@acme.test\n",
    )
    .unwrap();
    let out = run(
        &db,
        &[
            "integrations",
            "run",
            "--tenant",
            "acme-rail",
            &id,
            "--file",
            csv.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let finished: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["created"], 2, "{finished}");
    let _ = std::fs::remove_dir_all(&dir);
}
