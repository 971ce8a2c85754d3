//! `trainflow`: the TrainFlow server and its administration commands.
#![forbid(unsafe_code)]

use std::{io::Read, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use poem::listener::{Listener, TcpListener};
use trainflow_identity::{password, users::CreateUser};
use trainflow_kernel::{auth::Role, db::Db, TenantId};
use trainflow_server::config::Settings;
use trainflow_tenancy::{
    manifest::{self, anyhow_api},
    tenants::{self, NewTenant, Operator},
};

#[derive(Parser)]
#[command(
    name = "trainflow",
    version,
    about = "TrainFlow: training compliance for organisations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the portal and the scheduled jobs.
    Serve {
        /// Apply the demo tenant manifest (idempotent) before serving.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations (as the schema owner).
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage people of a tenant.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage platform operators.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Scheduled jobs.
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Background work items (the durable queue).
    Work {
        #[command(subcommand)]
        command: WorkCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Make a Web Push (VAPID) key pair: set the private key as `TRAINFLOW_VAPID_PRIVATE_KEY`.
    VapidKeys,
    /// A tenant's integrations: the catalogue, installations and runs.
    Integrations {
        #[command(subcommand)]
        command: IntegrationsCommand,
    },
    /// Tools for connector authors.
    Connector {
        #[command(subcommand)]
        command: ConnectorCommand,
    },
    /// The timetabling solver on its own.
    Timetable {
        #[command(subcommand)]
        command: TimetableCommand,
    },
}

#[derive(Subcommand)]
enum TimetableCommand {
    /// Solve an ITC-2007 curriculum-based instance (`.ctt`): prints the solution (`course room
    /// day period` lines) and, on standard error, its feasibility and UD2 penalty.
    Solve {
        /// The instance.
        file: std::path::PathBuf,
        /// The time budget.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// The random seed (the same seed and budget reproduce a run on the same machine).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Solves a `.ctt` instance: needs neither a database nor configuration.
fn timetable_command(command: TimetableCommand) -> anyhow::Result<()> {
    use trainflow_timetabling::{cost::evaluate, itc, solve, SolveOptions, Weights};
    let TimetableCommand::Solve {
        file,
        seconds,
        seed,
    } = command;
    anyhow::ensure!(
        seconds.is_finite() && seconds > 0.0,
        "--seconds must be more than 0"
    );
    let text =
        std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let problem = itc::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let options = SolveOptions {
        budget: std::time::Duration::from_secs_f64(seconds),
        seed,
        weights: Weights::UD2,
    };
    let timetable = solve(&problem, options, |_| true);
    let cost = evaluate(&problem, &timetable, Weights::UD2);
    print!("{}", itc::write_solution(&problem, &timetable));
    eprintln!(
        "{}: {} — penalty {} (capacity {}, minimum working days {}, compactness {}, room stability {}); seed {seed}, {seconds} s",
        problem.name,
        if cost.feasible() { "feasible" } else { "INFEASIBLE" },
        cost.penalty(),
        cost.capacity,
        cost.min_days,
        cost.compactness,
        cost.stability,
    );
    anyhow::ensure!(cost.feasible(), "no feasible timetable was found: {cost:?}");
    Ok(())
}

#[derive(Subcommand)]
enum IntegrationsCommand {
    /// The catalogue and the installations of a tenant.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Install a connector for a tenant, on behalf of one of its administrators (who is named
    /// in the audit trail). Prints the installation as JSON.
    Install {
        #[arg(long)]
        tenant: String,
        /// The email of an administrator of the tenant.
        #[arg(long = "as")]
        administrator: String,
        /// A catalogue connector id, e.g. `com.trainflow.csv`.
        #[arg(long)]
        connector: String,
        /// The installation's name (default: the connector id).
        #[arg(long)]
        name: Option<String>,
        /// A JSON file with the configuration (validated against the connector's schema).
        #[arg(long)]
        config: PathBuf,
        /// A JSON file with the credentials, `{"name": "secret", …}`; stored encrypted.
        /// Read from a file so that secrets stay out of the shell history and process list.
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// Cron schedule, `minute hour day month weekday` in UTC.
        #[arg(long)]
        schedule: Option<String>,
        /// `incremental` (default) or `full_refresh`.
        #[arg(long, value_parser = ["incremental", "full_refresh"])]
        mode: Option<String>,
    },
    /// Run an installation now (optionally importing a file) and print how it ended.
    Run {
        #[arg(long)]
        tenant: String,
        /// The installation's id.
        installation: uuid::Uuid,
        /// A file to upload for this run.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Run dry: report what the run would create, update and deactivate, and write nothing
        /// but that report. Apply it from the portal or with `POST /connectors/runs/{id}/apply`.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ConnectorCommand {
    /// Run a connector component through the same host a run uses and print what it produced:
    /// pages, entities, record errors, logs, instructions executed, peak memory and time.
    Test {
        /// The component (`.wasm`).
        path: PathBuf,
        /// The configuration, a JSON file.
        #[arg(long)]
        config: PathBuf,
        /// The file to offer as the run's upload.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Records per page (1–10000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        max_records: u32,
        /// Answer outbound HTTP from recorded exchanges in this directory (one JSON file each:
        /// method, url, status, headers, body); nothing reaches the network.
        #[arg(long)]
        http_cassette: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Apply a tenant manifest directory (containing tenant.toml).
    Apply { dir: PathBuf },
    /// List tenants.
    List,
    /// Suspend a tenant by slug.
    Suspend { slug: String },
    /// Reactivate a tenant by slug.
    Reactivate { slug: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a person; the password is read from standard input.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create (or reset) a platform operator; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum JobCommand {
    /// List jobs and their recent runs.
    List,
    /// Run a job now.
    Run { name: String },
}

#[derive(Subcommand)]
enum WorkCommand {
    /// List work items, newest first (up to 100).
    List {
        /// Only items in this status: queued, running, succeeded, failed or canceled.
        #[arg(long, value_parser = parse_work_status)]
        status: Option<trainflow_jobs::queue::WorkStatus>,
        /// Only items of this kind.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Cancel an item: a queued one at once, a running one at its handler's next progress
    /// report.
    Cancel { id: uuid::Uuid },
    /// Queue a failed item again, with a fresh set of attempts.
    Retry { id: uuid::Uuid },
}

/// mimalloc returns freed memory to the system promptly; with the glibc allocator each
/// 19 MiB argon2id hash left its arena holding the memory for good.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ctrl-C, or SIGTERM (what container runtimes, Kubernetes and systemd send).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_work_status(s: &str) -> Result<trainflow_jobs::queue::WorkStatus, String> {
    s.parse()
}

fn read_password(enabled: bool) -> anyhow::Result<Option<String>> {
    if !enabled {
        return Ok(None);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")?;
    let p = s.lines().next().unwrap_or("").to_string();
    password::check_policy(&p).map_err(|e| anyhow::anyhow!("password {e}"))?;
    Ok(Some(p))
}

fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,poem=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_format == "pretty" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Connector { command } = cli.command {
        // Needs neither a database nor configuration.
        return connector_command(command).await;
    }
    if let Command::Timetable { command } = cli.command {
        return timetable_command(command);
    }
    let settings = Settings::load()?;
    init_tracing(&settings);
    match cli.command {
        Command::Serve { demo } => {
            let bind = settings.bind.clone();
            let demo_dir = settings.demo_manifest.clone();
            let instance = trainflow_server::prepare(settings).await?;
            if demo {
                let m = match demo_dir {
                    Some(dir) => manifest::load(std::path::Path::new(&dir))?,
                    None => manifest::parse(trainflow_server::DEMO_MANIFEST)?,
                };
                let applied = instance.apply_manifest(&m).await?;
                tracing::info!(
                    tenant = %m.tenant.slug, users_created = applied.users_created,
                    "demo tenant ready: sign in at http://{bind}/portal"
                );
            }
            let acceptor = TcpListener::bind(bind.clone())
                .into_acceptor()
                .await
                .with_context(|| format!("binding {bind}"))?;
            tracing::info!(%bind, "TrainFlow listening; API docs at /docs");
            trainflow_server::serve(instance, acceptor, async {
                shutdown_signal().await;
            })
            .await
        }
        Command::Migrate => {
            Db::migrate(settings.migrate_url()).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Openapi => {
            // The document depends on the types only: no database is opened.
            println!(
                "{}",
                trainflow_server::app::openapi_document(&settings.public_url)
            );
            Ok(())
        }
        Command::VapidKeys => {
            let (private, public) = trainflow_notifications::push::Vapid::generate();
            println!("TRAINFLOW_VAPID_PRIVATE_KEY={private}\n# public key (browsers subscribe with it): {public}");
            Ok(())
        }
        Command::Tenant { command } => tenant_command(settings, command).await,
        Command::User { command } => user_command(settings, command).await,
        Command::Operator {
            command:
                OperatorCommand::Create {
                    email,
                    password_stdin,
                },
        } => {
            let password =
                read_password(password_stdin)?.context("--password-stdin is required")?;
            let instance = trainflow_server::prepare(settings).await?;
            let email = trainflow_kernel::domain::EmailAddress::parse(&email)
                .map_err(|e| anyhow::anyhow!("email {e}"))?;
            let hash = instance.deps.hasher.hash(password).await?;
            let id = tenants::create_operator(&instance.db, email.as_str(), &hash)
                .await
                .map_err(anyhow_api)?;
            println!("operator {email} ({id})");
            Ok(())
        }
        Command::Connector { .. } | Command::Timetable { .. } => {
            unreachable!("handled before configuration is loaded")
        }
        Command::Integrations { command } => integrations_command(settings, command).await,
        Command::Job { command } => {
            let instance = trainflow_server::prepare(settings).await?;
            match command {
                JobCommand::List => println!(
                    "{}",
                    serde_json::to_string_pretty(&instance.runner.status().await?)?
                ),
                JobCommand::Run { name } => println!("{:?}", instance.runner.run_now(&name).await?),
            }
            Ok(())
        }
        Command::Work { command } => work_command(settings, command).await,
    }
}

async fn integrations_command(
    settings: Settings,
    command: IntegrationsCommand,
) -> anyhow::Result<()> {
    let instance = trainflow_server::prepare(settings).await?;
    let svc = &instance.integrations;
    let tenant_of = |slug: String| {
        let db = instance.db.clone();
        async move {
            tenants::by_slug(&db, &slug)
                .await
                .map_err(anyhow_api)?
                .map(|t| trainflow_kernel::TenantId(t.id))
                .with_context(|| format!("no tenant {slug}"))
        }
    };
    match command {
        IntegrationsCommand::List { tenant } => {
            let (catalogue, installations) = svc
                .overview(tenant_of(tenant).await?)
                .await
                .map_err(anyhow_api)?;
            for e in catalogue {
                println!(
                    "connector    {} {} ({}) — {}",
                    e.connector_id, e.version, e.publisher, e.name
                );
            }
            for i in installations {
                println!(
                    "installation {} {} [{}] schedule: {}",
                    i.id,
                    i.name,
                    i.connector_id,
                    i.schedule.as_deref().unwrap_or("on demand")
                );
            }
        }
        IntegrationsCommand::Install {
            tenant,
            administrator,
            connector,
            name,
            config,
            credentials,
            schedule,
            mode,
        } => {
            let read_json = |path: &PathBuf| -> anyhow::Result<serde_json::Value> {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not valid JSON", path.display()))
            };
            let credentials = match &credentials {
                Some(path) => Some(
                    serde_json::from_value(read_json(path)?)
                        .context("credentials must be an object of strings")?,
                ),
                None => None,
            };
            let tenant_id = tenant_of(tenant).await?;
            let ctx = administrator_ctx(&instance.db, tenant_id, &administrator).await?;
            let body = trainflow_integrations::installations::CreateInstallation {
                name: name.unwrap_or_else(|| connector.clone()),
                connector_id: connector,
                package_id: None,
                config: read_json(&config)?,
                credentials,
                http_hosts: None,
                schedule,
                sync_mode: mode
                    .as_deref()
                    .map(trainflow_integrations::installations::SyncMode::parse),
            };
            let installation = svc.install(&ctx, body).await.map_err(anyhow_api)?;
            println!("{}", serde_json::to_string_pretty(&installation)?);
        }
        IntegrationsCommand::Run {
            tenant,
            installation,
            file,
            dry_run,
        } => {
            let file = match file {
                Some(path) => {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "upload".into());
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Some((name, bytes))
                }
                None => None,
            };
            let run = svc
                .run_as_system(tenant_of(tenant).await?, installation, file, dry_run)
                .await
                .map_err(anyhow_api)?;
            println!("{}", serde_json::to_string_pretty(&run)?);
            match run.status.as_str() {
                "failed" => anyhow::bail!(
                    "the run failed: {}",
                    run.error.as_deref().unwrap_or("see the run above")
                ),
                "succeeded_with_errors" => eprintln!(
                    "the run succeeded, but {} of its records were refused (see `errors`)",
                    run.record_errors
                ),
                _ => {}
            }
            if run.dry_run {
                eprintln!(
                    "dry run: nothing was written; a run would create {}, update {} and deactivate {}{}",
                    run.created,
                    run.updated,
                    run.deactivated,
                    if run.pending_deletions > 0 {
                        format!(
                            " (and hold back {} deactivations of people for confirmation)",
                            run.pending_deletions
                        )
                    } else {
                        String::new()
                    }
                );
            }
            if run.record_warnings > 0 {
                eprintln!(
                    "{} records were imported with a caveat (see `warnings`)",
                    run.record_warnings
                );
            }
        }
    }
    Ok(())
}

/// The context of a tenant's administrator, for commands that act on their behalf.
async fn administrator_ctx(
    db: &Db,
    tenant: TenantId,
    email: &str,
) -> anyhow::Result<trainflow_kernel::auth::TenantCtx> {
    let mut tx = trainflow_kernel::db::TenantTx::begin_system(db, tenant)
        .await
        .map_err(anyhow_api)?;
    let login = trainflow_identity::users::Login::Email(email.to_lowercase());
    let found = trainflow_identity::users::find_for_sign_in(&mut tx, &login)
        .await
        .map_err(anyhow_api)?
        .map(|c| c.user);
    tx.commit().await.map_err(anyhow_api)?;
    match found {
        Some(user) if user.role == Role::Administrator && user.is_active => {
            Ok(trainflow_kernel::auth::TenantCtx {
                tenant_id: tenant,
                user_id: trainflow_kernel::UserId(user.id),
                role: user.role,
                ip: None,
            })
        }
        Some(_) => anyhow::bail!("{email} is not an active administrator of the tenant"),
        None => anyhow::bail!("no person {email} in the tenant"),
    }
}

async fn work_command(settings: Settings, command: WorkCommand) -> anyhow::Result<()> {
    use trainflow_jobs::queue::{self, CancelOutcome, WorkFilter};

    let instance = trainflow_server::prepare(settings).await?;
    let now = trainflow_kernel::now();
    let mut tx = instance.db.platform_tx().await.map_err(anyhow_api)?;
    match command {
        WorkCommand::List { status, kind } => {
            let filter = WorkFilter {
                status,
                kind,
                tenant: None,
            };
            let page =
                trainflow_kernel::envelope::Page::parse(Some(1), Some(100)).map_err(anyhow_api)?;
            let (items, total) = queue::list(&mut tx, &filter, page)
                .await
                .map_err(anyhow_api)?;
            for w in items {
                let progress = match (w.progress_done, w.progress_total) {
                    (Some(done), Some(total)) => format!("{done}/{total}"),
                    _ => "-".into(),
                };
                println!(
                    "{}\t{}\t{}\t{}\tattempts {}/{}\tprogress {}\t{}\t{}",
                    w.id,
                    w.status,
                    w.kind,
                    w.tenant_id
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "platform".into()),
                    w.attempts,
                    w.max_attempts,
                    progress,
                    w.created_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    w.last_error.as_deref().unwrap_or("")
                );
            }
            println!("{total} items");
        }
        WorkCommand::Cancel { id } => {
            match queue::cancel(&mut tx, id, None, now)
                .await
                .map_err(anyhow_api)?
            {
                CancelOutcome::Canceled => println!("work item {id} canceled"),
                CancelOutcome::Requested => println!(
                    "work item {id} is running: cancellation requested; it stops at its next progress report"
                ),
            }
        }
        WorkCommand::Retry { id } => {
            queue::retry(&mut tx, id, now).await.map_err(anyhow_api)?;
            println!("work item {id} queued again");
        }
    }
    tx.commit().await.map_err(anyhow_api)?;
    Ok(())
}

async fn tenant_command(settings: Settings, command: TenantCommand) -> anyhow::Result<()> {
    let instance = trainflow_server::prepare(settings).await?;
    let db = &instance.db;
    match command {
        TenantCommand::Create {
            slug,
            name,
            domain,
            time_zone,
        } => {
            let fields = NewTenant {
                slug,
                name,
                domain,
                time_zone,
                locale: None,
            }
            .parse()
            .map_err(anyhow_api)?;
            let t = tenants::create(db, fields, &Operator::Cli)
                .await
                .map_err(anyhow_api)?;
            println!("tenant {} ({})", t.slug, t.id);
        }
        TenantCommand::Apply { dir } => {
            let m = manifest::load(&dir)?;
            let applied = instance.apply_manifest(&m).await?;
            println!(
                "tenant {}: {} created, {} departments and {} users added",
                m.tenant.slug,
                if applied.tenant_created {
                    "was"
                } else {
                    "was not"
                },
                applied.departments_created,
                applied.users_created
            );
            for (kind, n) in &applied.parts_created {
                println!("  {n} {kind} added");
            }
        }
        TenantCommand::List => {
            let page =
                trainflow_kernel::envelope::Page::parse(Some(1), Some(100)).map_err(anyhow_api)?;
            let (rows, total) = tenants::list(db, None, page).await.map_err(anyhow_api)?;
            for t in rows {
                println!("{}\t{}\t{}\t{}", t.slug, t.status, t.id, t.name);
            }
            println!("{total} tenants");
        }
        TenantCommand::Suspend { slug } => {
            let t = tenants::by_slug(db, &slug)
                .await
                .map_err(anyhow_api)?
                .context("no such tenant")?;
            tenants::set_status(db, TenantId(t.id), "suspended", &Operator::Cli)
                .await
                .map_err(anyhow_api)?;
            println!("tenant {slug} suspended");
        }
        TenantCommand::Reactivate { slug } => {
            let t = tenants::by_slug(db, &slug)
                .await
                .map_err(anyhow_api)?
                .context("no such tenant")?;
            tenants::set_status(db, TenantId(t.id), "active", &Operator::Cli)
                .await
                .map_err(anyhow_api)?;
            println!("tenant {slug} reactivated");
        }
    }
    Ok(())
}

async fn user_command(settings: Settings, command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Create {
        tenant,
        email,
        role,
        first_name,
        last_name,
        password_stdin,
    } = command;
    let password = read_password(password_stdin)?;
    let instance = trainflow_server::prepare(settings).await?;
    let db = &instance.db;
    let t = tenants::by_slug(db, &tenant)
        .await
        .map_err(anyhow_api)?
        .with_context(|| format!("no tenant {tenant}"))?;
    let body = CreateUser {
        email: Some(email),
        username: None,
        first_name,
        last_name,
        phone: None,
        address: None,
        employee_number: None,
        department_id: None,
        position: None,
        gender: None,
        role: Some(role),
        is_active: Some(true),
        password: password.map(Into::into),
    };
    let user = trainflow_identity::service::create_user_as_system(
        db,
        &instance.deps.hasher,
        TenantId(t.id),
        body,
    )
    .await
    .map_err(anyhow_api)?;
    println!("user {} ({}) in {tenant}", user.login(), user.id);
    Ok(())
}

async fn connector_command(command: ConnectorCommand) -> anyhow::Result<()> {
    use std::{collections::BTreeMap, sync::Arc};

    use trainflow_connectors::{
        Cassette, ConnectorHost, Entity, Grants, HttpGrant, Limits, PageRequest,
    };

    let ConnectorCommand::Test {
        path,
        config,
        file,
        max_records,
        http_cassette,
    } = command;
    // Without a cassette no request leaves the sandbox; with one, the recorded hosts answer.
    let http = match &http_cassette {
        Some(dir) => {
            let cassette = Cassette::load(dir)
                .with_context(|| format!("reading the cassette {}", dir.display()))?;
            let allowed_hosts = cassette
                .exchanges
                .iter()
                .filter_map(|e| e.url.parse::<poem::http::Uri>().ok())
                .filter_map(|u| u.host().map(str::to_string))
                .collect();
            println!(
                "cassette    {} recorded exchanges",
                cassette.exchanges.len()
            );
            HttpGrant {
                allowed_hosts,
                allow_loopback: false,
                cassette: Some(Arc::new(cassette)),
            }
        }
        None => HttpGrant::default(),
    };
    let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let config = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    serde_json::from_str::<serde_json::Value>(&config).context("the configuration is not JSON")?;
    let upload = match &file {
        Some(f) => Some(Arc::new(
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        )),
        None => None,
    };
    let host = ConnectorHost::new()?;
    let digest = host.load(&wasm)?;
    let limits = Limits {
        max_records,
        ..Limits::default()
    };
    let mut session = host
        .session(
            &digest,
            Grants {
                file: upload,
                http,
                ..Grants::default()
            },
            limits,
        )
        .await?;
    let info = session.describe().await?;
    println!("connector   {} {} — {}", info.id, info.version, info.name);
    println!("sha256      {digest}");
    println!(
        "instantiate {:.1} µs",
        session.instantiated_in.as_secs_f64() * 1e6
    );
    session.check(&config).await?;
    println!("check       ok");
    let mut failed = false;
    for stream in session.discover(&config).await? {
        println!("stream      {} ({:?})", stream.name, stream.entity);
        let (mut cursor, mut pages, mut kinds, mut errors) =
            (None, 0usize, BTreeMap::<&str, usize>::new(), Vec::new());
        loop {
            let request = PageRequest {
                stream: stream.name.clone(),
                cursor: cursor.clone(),
                max_records,
            };
            let page = match session.read_page(&config, &request).await {
                Ok(p) => p,
                Err(e) => {
                    println!("  page {}: failed: {e}", pages + 1);
                    failed = true;
                    break;
                }
            };
            pages += 1;
            for e in &page.entities {
                let kind = match e {
                    Entity::Employee(_) => "employee",
                    Entity::OrgUnit(_) => "org_unit",
                    Entity::Course(_) => "course",
                    Entity::Completion(_) => "completion",
                    Entity::Certification(_) => "certification",
                    Entity::Deletion(_) => "deletion",
                };
                *kinds.entry(kind).or_default() += 1;
            }
            println!(
                "  page {pages}: {} entities, {} record errors, next cursor {}",
                page.entities.len(),
                page.errors.len(),
                page.next_cursor.as_deref().unwrap_or("(end)")
            );
            errors.extend(page.errors);
            if page.next_cursor.is_some() && page.next_cursor == cursor {
                println!("  the connector returned the same cursor again; stopping");
                failed = true;
                break;
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        let total: usize = kinds.values().sum();
        println!(
            "  total: {total} entities {kinds:?}, {} record errors",
            errors.len()
        );
        for e in errors.iter().take(20) {
            println!("    {}: {}", e.reference, e.reason);
        }
        if errors.len() > 20 {
            println!("    … and {} more", errors.len() - 20);
        }
    }
    let (logs, dropped) = session.logs();
    for line in logs {
        println!("log         [{:?}] {}", line.level, line.message);
    }
    if dropped > 0 {
        println!("log         {dropped} lines over the cap were dropped");
    }
    for refusal in session.http_refusals() {
        println!(
            "http        refused {} {}: {}",
            refusal.method, refusal.url, refusal.reason
        );
    }
    println!("instructions {} (fuel)", session.total.fuel);
    println!(
        "peak memory {:.1} MiB",
        session.peak_memory() as f64 / (1024.0 * 1024.0)
    );
    println!(
        "time        {:.1} ms",
        session.total.elapsed.as_secs_f64() * 1000.0
    );
    if failed {
        anyhow::bail!("the connector failed");
    }
    Ok(())
}
