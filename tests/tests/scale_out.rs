//! Scale-out, end to end: two real `trainflow serve` processes on one PostgreSQL database, as
//! the Kubernetes deployment runs them, each on its own loopback port with the same JWT secret,
//! email through an SMTP sink and SMS through a Twilio fake.
//!
//! * An access token, a refresh token and a portal session issued by one instance work on the
//!   other, and what one instance revokes the other refuses.
//! * Every job occurrence runs once across the two: no `(job, scheduled_for)` has two runs, each
//!   instance ran a job's body only for the occurrences it claimed (its log against the
//!   history), every minute of the every-second schedules has exactly one run, and each
//!   connector dispatch started exactly the runs it recorded.
//! * A broadcast to everyone of a tenant reaches each person once, by email and by SMS.
//! * The instance delivering another broadcast is killed (SIGKILL) in the worst place: the SMTP
//!   server has taken a message and its acceptance is held back, so the instance never records
//!   it as sent. Once the dead instance's claims have lapsed, the other instance delivers the
//!   rest: nothing is lost, and the one message the dead instance had handed over goes out a
//!   second time with the same `Message-ID` (the outbox id) — delivery is at least once, and a
//!   resend is recognisable as the same mail.
//!
//! Occurrences are keyed to the minute, so the survivor's next delivery occurrence comes 60 s
//! after the one the dead instance held: the test takes a little over a minute.
//!
//! PostgreSQL only: SQLite serves one instance (see docs/operations.md), so on the SQLite pass
//! the test says so and returns.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};
use trainflow_identity::password::Hasher;
use trainflow_kernel::{
    auth::Role,
    db::{Db, DbOptions},
};
use trainflow_tenancy::manifest::{Manifest, TenantSpec, UserSpec};
use trainflow_tests::{
    backend, call_url, csrf_of, package_form, plugin,
    sinks::{Mail, SmtpSink, TwilioFake, TWILIO_SID, TWILIO_TOKEN},
    testing_manifest, Backend, TempDir, PASSWORD,
};
use uuid::Uuid;

const JWT_SECRET: &str = "scale-out-secret-scale-out-secret-0123456789";

/// Employees of the tenant whose broadcast is delivered normally (email and SMS each).
const C_EMPLOYEES: usize = 8;
/// Employees of the tenant whose broadcast is being delivered when an instance dies.
const D_EMPLOYEES: usize = 40;
/// Mails of tenant D the SMTP server accepts at least before it holds one back (it also waits
/// until every mail of tenant C has arrived, so C's broadcast is not the one interrupted).
const D_BEFORE_HOLD: usize = 5;

/// The jobs whose schedule the test sets to every second.
const EVERY_SECOND: [&str; 3] = [
    "identity.cleanup_inactive_users",
    "renewals.expiry_reminders",
    "renewals.escalations",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_jobs_and_delivery_and_survive_a_kill() {
    if backend() != Backend::Postgres {
        println!(
            "scale_out: skipped on SQLite, which serves one instance only (docs/operations.md); \
             this test runs on the PostgreSQL pass (TRAINFLOW_TEST_BACKEND=postgres)"
        );
        return;
    }
    let clock = Instant::now();
    let binary = server_binary();
    let url = fresh_database().await;
    let mut owner = PgConnection::connect(&url).await.expect("owner connection");

    // Two tenants, seeded in-process (no server involved): C with phones, D with email only.
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let (c, d) = {
        let db = Db::connect(&DbOptions {
            url: url.clone(),
            max_connections: 4,
        })
        .await
        .expect("seed connection");
        let hasher = Hasher::new(2);
        let c = seed(
            &db,
            &hasher,
            &mut owner,
            &format!("c-{suffix}"),
            C_EMPLOYEES,
            true,
        )
        .await;
        let d = seed(
            &db,
            &hasher,
            &mut owner,
            &format!("d-{suffix}"),
            D_EMPLOYEES,
            false,
        )
        .await;
        (c, d)
    };

    // Transports: the SMTP sink behind a relay that can hold one acceptance back, and Twilio.
    let sink = SmtpSink::start().await;
    let twilio = TwilioFake::start().await;
    let relay = {
        let mails = sink.mails.clone();
        let (c_domain, c_count) = (c.domain(), c.people.len());
        Relay::start(
            sink.addr,
            HoldRule {
                domain: d.domain(),
                after: D_BEFORE_HOLD,
                accepted: 0,
                ready: Box::new(move || {
                    let mails = mails.lock().expect("mails");
                    mails.iter().filter(|m| to_domain(m, &c_domain)).count() >= c_count
                }),
                held: None,
            },
        )
        .await
    };

    // Delivery runs once a minute at second `delivery_second`, a few seconds from now, so both
    // broadcasts below are queued before its first occurrence. The other configurable
    // schedules tick every second: each instance tries every occurrence sixty times a minute.
    let spawned_at = OffsetDateTime::now_utc();
    let delivery_second = (spawned_at.second() + 12) % 60;
    let first_delivery_tick = next_second(spawned_at, delivery_second);
    let dir = TempDir(std::env::temp_dir().join(format!("trainflow-scale-out-{suffix}")));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let config = ServerConfig {
        binary: binary.clone(),
        dir: dir.0.clone(),
        database_url: url.clone(),
        smtp_url: format!("smtp://{}", relay.addr),
        twilio_base_url: twilio.base_url.clone(),
        delivery_schedule: format!("{delivery_second} * * * * *"),
    };
    let mut servers = [config.spawn("scale-a"), config.spawn("scale-b")];
    for s in &mut servers {
        s.wait_ready().await;
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let (a, b) = (servers[0].base.clone(), servers[1].base.clone());
    for base in [&a, &b] {
        let (s, jobs) = call_url(
            &http,
            Method::GET,
            &format!("{base}/health/jobs"),
            None,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{jobs}");
        assert_eq!(jobs["scheduler"], "running", "{jobs}");
    }
    println!(
        "scale_out: two instances up on {a} and {b} after {:.1} s; delivery at second {delivery_second}",
        clock.elapsed().as_secs_f64()
    );

    // (a) Credentials issued by one instance are honoured, and revoked, by the other.
    credentials_cross_instances(&http, &a, &b, &c).await;

    // Tenant C offers SMS; both broadcasts go out through different instances.
    let c_admin = sign_in(&http, &b, &c.slug, &c.admin).await.0;
    let d_admin = sign_in(&http, &a, &d.slug, &d.admin).await.0;
    let (s, tenant) = call_url(
        &http,
        Method::GET,
        &format!("{a}/api/v1/tenant"),
        Some(&c_admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{tenant}");
    let mut settings = tenant["data"]["settings"].clone();
    settings["notification_channels"] = json!(["in_app", "email", "sms"]);
    let (s, body) = call_url(
        &http,
        Method::PUT,
        &format!("{b}/api/v1/tenant"),
        Some(&c_admin),
        Some(
            json!({"name": tenant["data"]["name"], "time_zone": tenant["data"]["time_zone"],
                    "locale": tenant["data"]["locale"], "settings": settings}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = call_url(
        &http,
        Method::POST,
        &format!("{a}/api/v1/notifications/broadcasts"),
        Some(&c_admin),
        Some(broadcast("Scale-out C", "renewal")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["recipients"], c.people.len(), "{body}");
    let (s, body) = call_url(
        &http,
        Method::POST,
        &format!("{b}/api/v1/notifications/broadcasts"),
        Some(&d_admin),
        Some(broadcast("Scale-out D", "system")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["recipients"], d.people.len(), "{body}");
    let margin = first_delivery_tick - OffsetDateTime::now_utc();
    println!(
        "scale_out: broadcasts queued {:.1} s before the first delivery occurrence",
        margin.as_seconds_f64()
    );
    if margin.is_negative() {
        println!("scale_out: set-up overran it; the next occurrence, a minute later, delivers");
    }

    // A connector installation due every minute, uploaded through A and installed through B:
    // each dispatch occurrence starts its run once.
    let wasm = plugin("testing");
    let resp = http
        .post(format!("{a}/api/v1/connectors/packages"))
        .bearer_auth(&c_admin)
        .multipart(package_form(&testing_manifest(&wasm), wasm))
        .send()
        .await
        .expect("upload");
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let (s, inst) = call_url(
        &http,
        Method::POST,
        &format!("{b}/api/v1/connectors/installations"),
        Some(&c_admin),
        Some(
            json!({"connector_id": "example.misbehaving", "name": "Every minute",
                    "config": {"mode": "well"}, "schedule": "* * * * *"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{inst}");
    let installation: Uuid = inst["data"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");

    // (d) The instance that claims the delivery occurrence is killed while the SMTP server holds
    // back its acceptance of one of D's mails.
    tokio::time::timeout(Duration::from_secs(150), relay.state.held.notified())
        .await
        .expect("no delivery reached the held mail within 150 s");
    let held_to = relay.held().expect("held");
    let running: Vec<(String, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "select instance, scheduled_for, started_at from job_runs
          where job = 'notifications.deliver' and status = 'running'",
    )
    .fetch_all(&mut owner)
    .await
    .expect("running deliveries");
    assert_eq!(running.len(), 1, "one instance delivers: {running:?}");
    let (victim, killed_minute, killed_started) = running[0].clone();
    let (dead, survivor) = if victim == servers[0].name {
        (0, 1)
    } else {
        (1, 0)
    };
    servers[dead].kill();
    let killed_at = Instant::now();
    let sent_before_kill = sink.received().len();
    println!(
        "scale_out: {victim} claimed the delivery of {killed_minute} and was killed (SIGKILL) with \
         the mail to {held_to} handed over but not acknowledged; {sent_before_kill} mails and {} SMS \
         had arrived",
        twilio.sent().len()
    );
    // What the dead instance still holds stays claimed until its claim lapses
    // (`TRAINFLOW_DELIVERY_CLAIM_SECS`, 20 s here), before the survivor's next occurrence.
    let claimed: i64 =
        sqlx::query_scalar("select count(*) from delivery_queue where claimed_until > now()")
            .fetch_one(&mut owner)
            .await
            .expect("claims");
    assert!(
        claimed >= 1,
        "the held message is among the dead instance's claims"
    );
    println!(
        "scale_out: {claimed} messages are still claimed by {victim}; their claims lapse in 20 s"
    );

    // The survivor's next occurrence delivers the rest (and records that it finished).
    let deadline = Instant::now() + Duration::from_secs(100);
    loop {
        let (queued, finished): (i64, i64) = sqlx::query_as(
            "select (select count(*) from delivery_queue),
                    (select count(*) from job_runs where job = 'notifications.deliver'
                        and scheduled_for > $1 and status = 'succeeded'
                        and detail->>'sent' <> '0')",
        )
        .bind(killed_minute)
        .fetch_one(&mut owner)
        .await
        .expect("queue");
        if queued == 0 && finished > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{queued} messages still queued 100 s after the kill"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "scale_out: {} finished delivering {:.1} s after the kill",
        servers[survivor].name,
        killed_at.elapsed().as_secs_f64()
    );
    // Everything the history records is settled; stop the survivor too before reading its log.
    servers[survivor].kill();

    // (c) and (d): each person of C got one email and one SMS; each person of D one mail, but
    // for the one handed over when its sender died, which came twice with one Message-ID.
    let mails = sink.received();
    let outbox: Vec<OutboxRow> = sqlx::query_as(
        "select id, channel, recipient, status, sent_at from outbox
          where tenant_id = $1 or tenant_id = $2",
    )
    .bind(c.id)
    .bind(d.id)
    .fetch_all(&mut owner)
    .await
    .expect("outbox");
    assert!(
        outbox.iter().all(|o| o.status == "sent"),
        "every message is recorded sent: {outbox:?}"
    );
    let ids: BTreeMap<(String, String), Uuid> = outbox
        .iter()
        .map(|o| ((o.channel.clone(), o.recipient.clone()), o.id))
        .collect();
    assert_eq!(
        ids.len(),
        outbox.len(),
        "one message per person and channel"
    );
    let by_person = |tenant: &Seeded| {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in mails.iter().filter(|m| to_domain(m, &tenant.domain())) {
            assert_eq!(m.to.len(), 1, "one recipient per mail");
            out.entry(m.to[0].clone()).or_default().push(message_id(m));
        }
        out
    };
    let c_mails = by_person(&c);
    assert_eq!(
        c_mails.len(),
        c.people.len(),
        "every person of C got the mail"
    );
    for (to, got) in &c_mails {
        let id = ids[&("email".to_string(), to.clone())];
        assert_eq!(
            got,
            &vec![format!("<{id}@trainflow>")],
            "{to}: exactly one mail"
        );
    }
    let mut texts: BTreeMap<String, usize> = BTreeMap::new();
    for sms in twilio.sent() {
        *texts.entry(sms.to).or_default() += 1;
    }
    let phones: BTreeSet<String> = c.people.iter().filter_map(|p| p.phone.clone()).collect();
    assert_eq!(
        texts.keys().cloned().collect::<BTreeSet<_>>(),
        phones,
        "every phone of C"
    );
    assert!(
        texts.values().all(|n| *n == 1),
        "exactly one SMS each: {texts:?}"
    );
    let d_mails = by_person(&d);
    assert_eq!(
        d_mails.len(),
        d.people.len(),
        "nothing lost: every person of D got the mail"
    );
    let mut resent = Vec::new();
    for (to, got) in &d_mails {
        let id = format!("<{}@trainflow>", ids[&("email".to_string(), to.clone())]);
        assert!(
            got.iter().all(|g| *g == id),
            "{to}: every copy is the outbox message {id}: {got:?}"
        );
        if got.len() > 1 {
            resent.push((to.clone(), got.len()));
        }
    }
    assert_eq!(
        resent,
        vec![(held_to.clone(), 2)],
        "only the mail in flight at the kill came twice"
    );
    let emails = outbox.iter().filter(|o| o.channel == "email").count();
    assert_eq!(
        mails.len(),
        emails + 1,
        "the outbox's mails, one of them twice, and nothing else"
    );
    println!(
        "scale_out: {} mails and {} SMS for {} people; one resend, to {held_to}, with its \
         original Message-ID",
        mails.len(),
        twilio.sent().len(),
        c.people.len() + d.people.len()
    );
    for t in [&c, &d] {
        let (n,): (i64,) =
            sqlx::query_as("select count(*) from notifications where tenant_id = $1")
                .bind(t.id)
                .fetch_one(&mut owner)
                .await
                .expect("notifications");
        assert_eq!(n as usize, t.people.len(), "one in-app notification each");
    }

    // (b) Each occurrence ran once across the two instances.
    let runs: Vec<JobRun> = sqlx::query_as(
        "select job, scheduled_for, instance, status, started_at, detail from job_runs
          order by job, scheduled_for",
    )
    .fetch_all(&mut owner)
    .await
    .expect("job runs");
    let mut per_occurrence: BTreeMap<(String, OffsetDateTime), usize> = BTreeMap::new();
    for r in &runs {
        *per_occurrence
            .entry((r.job.clone(), r.scheduled_for))
            .or_default() += 1;
        assert!(
            servers.iter().any(|s| s.name == r.instance),
            "run by one of the two: {r:?}"
        );
    }
    assert!(
        per_occurrence.values().all(|n| *n == 1),
        "no occurrence has two runs: {per_occurrence:?}"
    );
    let failed: Vec<&JobRun> = runs.iter().filter(|r| r.status == "failed").collect();
    assert!(failed.is_empty(), "no run failed: {failed:?}");
    for job in EVERY_SECOND {
        let minutes: Vec<OffsetDateTime> = runs
            .iter()
            .filter(|r| r.job == job)
            .map(|r| r.scheduled_for)
            .collect();
        assert!(minutes.len() >= 2, "{job} ran in every minute: {minutes:?}");
        for pair in minutes.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                time::Duration::minutes(1),
                "{job}: one run in each minute, none skipped: {minutes:?}"
            );
        }
    }
    let deliveries: Vec<&JobRun> = runs
        .iter()
        .filter(|r| r.job == "notifications.deliver")
        .collect();
    let dead_run = deliveries
        .iter()
        .find(|r| r.scheduled_for == killed_minute)
        .expect("the killed occurrence");
    assert_eq!(
        dead_run.status, "running",
        "the dead instance never finished it"
    );
    let recorded_by_dead = outbox
        .iter()
        .filter(|o| o.sent_at == Some(killed_started))
        .count();
    let sent_by_survivors: u64 = deliveries
        .iter()
        .filter(|r| r.status == "succeeded")
        .map(|r| {
            r.detail
                .as_ref()
                .and_then(|d| d.0["sent"].as_u64())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        recorded_by_dead as u64 + sent_by_survivors,
        outbox.len() as u64,
        "each message recorded sent by exactly one delivery run: {deliveries:?}"
    );
    let dispatches: Vec<&JobRun> = runs
        .iter()
        .filter(|r| r.job == "connectors.dispatch")
        .collect();
    assert!(
        !dispatches.is_empty(),
        "a minute boundary passed during the test"
    );
    let scheduled: Vec<(OffsetDateTime,)> = sqlx::query_as(
        "select scheduled_for from connector_runs
          where tenant_id = $1 and installation_id = $2 and trigger = 'schedule'",
    )
    .bind(c.id)
    .bind(installation)
    .fetch_all(&mut owner)
    .await
    .expect("connector runs");
    for r in &dispatches {
        let here = scheduled.iter().filter(|s| s.0 == r.scheduled_for).count();
        if r.status == "succeeded" {
            let started = r.detail.as_ref().and_then(|d| d.0["started"].as_u64());
            assert_eq!(
                Some(here as u64),
                started,
                "dispatch {r:?} started what it recorded"
            );
        }
        assert!(here <= 1, "one connector run per minute: {scheduled:?}");
    }
    assert!(
        !scheduled.is_empty(),
        "a dispatch started the installation's run"
    );

    // Each instance ran a job's body only for the occurrences it claimed: its log's `job
    // finished` and `job failed` lines against the runs recorded under its name.
    for server in &servers {
        let logged = server.job_log_lines();
        for job in runs.iter().map(|r| r.job.as_str()).collect::<BTreeSet<_>>() {
            let mine = runs
                .iter()
                .filter(|r| r.job == job && r.instance == server.name);
            let finished = mine.clone().filter(|r| r.status != "running").count();
            let unfinished = mine.filter(|r| r.status == "running").count();
            let lines = logged.get(job).copied().unwrap_or(0);
            assert!(
                finished <= lines && lines <= finished + unfinished,
                "{}: {lines} log lines for {job}, {finished} finished runs ({unfinished} unfinished)",
                server.name
            );
        }
    }
    let by_instance = |name: &str| runs.iter().filter(|r| r.instance == name).count();
    println!(
        "scale_out: {} occurrences, each run once ({}: {}, {}: {}); {} connector dispatches; {:.1} s",
        runs.len(),
        servers[0].name,
        by_instance(servers[0].name),
        servers[1].name,
        by_instance(servers[1].name),
        dispatches.len(),
        clock.elapsed().as_secs_f64()
    );
}

/// An access token and a refresh token from one instance used on the other, and a portal
/// session opened on one instance, used and ended on the other.
async fn credentials_cross_instances(http: &reqwest::Client, a: &str, b: &str, c: &Seeded) {
    let (access, refresh) = sign_in(http, a, &c.slug, &c.admin).await;
    let (s, me) = call_url(
        http,
        Method::GET,
        &format!("{b}/api/v1/users/me"),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "A's access token on B: {me}");
    assert_eq!(me["data"]["email"], c.admin.as_str(), "{me}");
    let (s, rotated) = refresh_at(http, b, &refresh).await;
    assert_eq!(s, StatusCode::OK, "A's refresh token on B: {rotated}");
    let rotated = rotated["data"]["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_string();
    // A knows B used it: replaying it there revokes the whole sign-in, B's new token included.
    let (s, body) = refresh_at(http, a, &refresh).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a used token replayed on A: {body}"
    );
    let (s, body) = refresh_at(http, b, &rotated).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the family A revoked, on B: {body}"
    );

    let session = portal_sign_in(http, a, &c.slug, &c.admin).await;
    let page = |base: &str, cookie: Option<&str>| {
        let mut req = http.get(format!("{base}/portal/profile"));
        if let Some(v) = cookie {
            req = req.header("cookie", format!("tf_session={v}"));
        }
        async move {
            let resp = req.send().await.expect("page");
            let status = resp.status();
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (status, location, resp.text().await.expect("html"))
        }
    };
    let (s, _, html) = page(b, Some(session.as_str())).await;
    assert_eq!(s, StatusCode::OK, "A's session on B");
    assert!(html.contains(&c.admin), "B shows the person signed in on A");
    let (s, location, _) = page(b, None).await;
    assert!(
        s.is_redirection() && location.starts_with("/portal/login"),
        "{s} {location}"
    );
    // Signed out on B (with the session's CSRF token as B rendered it), refused on A.
    let resp = http
        .post(format!("{b}/portal/logout"))
        .header("cookie", format!("tf_session={session}"))
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "signed out on B");
    let (s, location, _) = page(a, Some(session.as_str())).await;
    assert!(
        s.is_redirection() && location.starts_with("/portal/login"),
        "the session B ended is refused on A: {s} {location}"
    );
    println!("scale_out: tokens and a portal session from A honoured on B, and revocations shared");
}

/// A seeded tenant: its administrator (with a password) and everyone in it.
struct Seeded {
    id: Uuid,
    slug: String,
    admin: String,
    people: Vec<Person>,
}

struct Person {
    phone: Option<String>,
}

impl Seeded {
    fn domain(&self) -> String {
        format!("@{}.test", self.slug)
    }
}

async fn seed(
    db: &Db,
    hasher: &Hasher,
    owner: &mut PgConnection,
    slug: &str,
    employees: usize,
    phones: bool,
) -> Seeded {
    let admin = format!("admin@{slug}.test");
    let person = |email: String, role: Role, n: usize, password: Option<String>| UserSpec {
        email: Some(email),
        first_name: format!("Person{n}"),
        last_name: "Scale".into(),
        role,
        department: None,
        position: None,
        phone: phones.then(|| format!("+4477009{n:05}")),
        employee_number: None,
        password,
        pin: None,
        foreman: None,
        manager: None,
    };
    let mut users = vec![person(
        admin.clone(),
        Role::Administrator,
        0,
        Some(PASSWORD.into()),
    )];
    users.extend(
        (1..=employees).map(|n| person(format!("person{n}@{slug}.test"), Role::Employee, n, None)),
    );
    let manifest = Manifest {
        tenant: TenantSpec {
            slug: slug.into(),
            name: format!("Scale-out {slug}"),
            domain: None,
            time_zone: None,
            locale: None,
            notification_channels: None,
        },
        departments: Vec::new(),
        users,
        parts: Default::default(),
    };
    trainflow_tenancy::manifest::apply(db, hasher, &manifest, &[])
        .await
        .expect("seed tenant");
    let (id,): (Uuid,) = sqlx::query_as("select id from tenants where slug = $1")
        .bind(slug)
        .fetch_one(&mut *owner)
        .await
        .expect("tenant");
    let people: Vec<(Option<String>,)> =
        sqlx::query_as("select phone from users where tenant_id = $1")
            .bind(id)
            .fetch_all(&mut *owner)
            .await
            .expect("people");
    assert_eq!(people.len(), employees + 1);
    Seeded {
        id,
        slug: slug.into(),
        admin,
        people: people
            .into_iter()
            .map(|(phone,)| Person { phone })
            .collect(),
    }
}

#[derive(Debug, sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    channel: String,
    recipient: String,
    status: String,
    sent_at: Option<OffsetDateTime>,
}

#[derive(Debug, sqlx::FromRow)]
struct JobRun {
    job: String,
    scheduled_for: OffsetDateTime,
    instance: String,
    status: String,
    #[allow(dead_code)] // shown when an assertion prints the run
    started_at: OffsetDateTime,
    detail: Option<sqlx::types::Json<Value>>,
}

/// A new database on the test server, migrated, named like the harness's own
/// (`trainflow_test_<run>_<id>`), so `tests/run.sh` drops it with its run's others.
async fn fresh_database() -> String {
    let server = std::env::var("TRAINFLOW_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = PgConnection::connect(&server).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for TRAINFLOW_TEST_BACKEND=postgres ({server}): {e}")
    });
    let run = std::env::var("TRAINFLOW_TEST_RUN").unwrap_or_else(|_| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("{secs}_{}", std::process::id())
    });
    let id = Uuid::new_v4().simple().to_string();
    let name = format!("trainflow_test_{run}_{}", &id[..16]);
    sqlx::Executor::execute(&mut conn, format!("create database {name}").as_str())
        .await
        .expect("create the test database");
    let (base, _) = server
        .rsplit_once('/')
        .expect("TRAINFLOW_TEST_PG_URL needs a database path");
    let url = format!("{base}/{name}");
    Db::migrate(&url).await.expect("migrate the test database");
    url
}

/// The `trainflow` binary of this build (`target/<profile>/trainflow`, beside `deps/`).
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("trainflow"))
        .expect("target directory");
    assert!(
        binary.exists(),
        "{} is missing: build the server first (cargo build -p trainflow-server)",
        binary.display()
    );
    binary
}

/// What both instances share.
struct ServerConfig {
    binary: PathBuf,
    dir: PathBuf,
    database_url: String,
    smtp_url: String,
    twilio_base_url: String,
    delivery_schedule: String,
}

impl ServerConfig {
    /// Starts `trainflow serve` on a free loopback port, its log in `dir/<name>.log`.
    fn spawn(&self, name: &'static str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = self.dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let credentials_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let every_second = "* * * * * *";
        let child = Command::new(&self.binary)
            .arg("serve")
            .current_dir(&self.dir)
            .env_clear()
            .env("RUST_LOG", "info,sqlx=warn,poem=warn")
            .env("RUST_BACKTRACE", "1")
            .env("TRAINFLOW_CONFIG", self.dir.join("none.toml"))
            .env("TRAINFLOW_DATABASE_URL", &self.database_url)
            .env("TRAINFLOW_AUTO_MIGRATE", "false")
            .env("TRAINFLOW_BIND", format!("127.0.0.1:{port}"))
            .env("TRAINFLOW_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("TRAINFLOW_INSTANCE_NAME", name)
            .env("TRAINFLOW_JWT_SECRET", JWT_SECRET)
            .env("TRAINFLOW_CREDENTIALS_KEY", credentials_key)
            .env("TRAINFLOW_COOKIE_SECURE", "false")
            .env("TRAINFLOW_RATE_LIMIT_PER_IP", "100000")
            .env("TRAINFLOW_RATE_LIMIT_PER_TENANT", "100000")
            .env("TRAINFLOW_DB_MAX_CONNECTIONS", "8")
            .env("TRAINFLOW_PASSWORD_HASH_CONCURRENCY", "2")
            .env("TRAINFLOW_SMTP_URL", &self.smtp_url)
            .env("TRAINFLOW_TWILIO_BASE_URL", &self.twilio_base_url)
            .env("TRAINFLOW_TWILIO_ACCOUNT_SID", TWILIO_SID)
            .env("TRAINFLOW_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
            .env("TRAINFLOW_TWILIO_FROM", "+15005550006")
            .env("TRAINFLOW_DELIVERY_SCHEDULE", &self.delivery_schedule)
            .env("TRAINFLOW_DELIVERY_CLAIM_SECS", "20")
            .env("TRAINFLOW_CLEANUP_SCHEDULE", every_second)
            .env("TRAINFLOW_REMINDER_SCHEDULE", every_second)
            .env("TRAINFLOW_ESCALATION_SCHEDULE", every_second)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start trainflow serve");
        Server {
            name,
            base: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            log,
        }
    }
}

/// A server process, killed when dropped (so a failing test leaves none behind).
struct Server {
    name: &'static str,
    base: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// Waits until the server answers `/health/db`.
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/health/db", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{} exited with {status}:\n{}", self.name, self.log_text());
            }
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown, no clean-up; what the process held in memory is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many `job finished` and `job failed` lines the log has, per job.
    fn job_log_lines(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for line in self.log_text().lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if matches!(v["message"].as_str(), Some("job finished" | "job failed")) {
                if let Some(job) = v["job"].as_str() {
                    *out.entry(job.to_string()).or_default() += 1;
                }
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- the last lines of {}'s log:\n{}",
                self.name,
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

/// Which mail the relay holds back: the first to `domain` once `after` of them were accepted
/// and `ready` is true.
struct HoldRule {
    domain: String,
    after: usize,
    accepted: usize,
    ready: Box<dyn Fn() -> bool + Send>,
    /// The recipient of the held mail.
    held: Option<String>,
}

struct RelayState {
    rule: Mutex<HoldRule>,
    /// Signalled when a mail's acceptance is held.
    held: Notify,
}

impl RelayState {
    /// Whether to hold the acceptance of a mail to `to`, which the SMTP server has just taken.
    fn hold(&self, to: &str) -> bool {
        let mut rule = self.rule.lock().expect("rule");
        if rule.held.is_some() || !to.ends_with(rule.domain.as_str()) {
            return false;
        }
        if rule.accepted >= rule.after && (rule.ready)() {
            rule.held = Some(to.to_string());
            return true;
        }
        rule.accepted += 1;
        false
    }
}

/// A loopback relay in front of the SMTP sink. It passes SMTP through line by line, and holds
/// back the sink's `250` to the end of one chosen message: the sink has the mail, the sender
/// never learns it, until the sender's connection ends.
struct Relay {
    addr: SocketAddr,
    state: Arc<RelayState>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(sink: SocketAddr, rule: HoldRule) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(RelayState {
            rule: Mutex::new(rule),
            held: Notify::new(),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                sessions.spawn(relay_session(client, sink, shared.clone()));
            }
        });
        Relay { addr, state, task }
    }

    fn held(&self) -> Option<String> {
        self.state.rule.lock().expect("rule").held.clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay_session(client: TcpStream, sink: SocketAddr, state: Arc<RelayState>) {
    let Ok(server) = TcpStream::connect(sink).await else {
        return;
    };
    let (client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let recipient = Arc::new(Mutex::new(String::new()));
    let seen = recipient.clone();
    let up = async move {
        let mut lines = BufReader::new(client_read);
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line.to_ascii_uppercase().starts_with("RCPT TO:") {
                *seen.lock().expect("recipient") =
                    line[8..].trim().trim_matches(['<', '>']).to_string();
            }
            if server_write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut lines = BufReader::new(server_read);
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line.starts_with("250 OK queued") {
                let to = recipient.lock().expect("recipient").clone();
                if state.hold(&to) {
                    state.held.notify_one();
                    // Never answered: the session ends when the sender's connection does.
                    std::future::pending::<()>().await;
                }
            }
            if client_write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Whether the mail's (single) recipient is in `domain` (`@slug.test`).
fn to_domain(mail: &Mail, domain: &str) -> bool {
    mail.to.iter().any(|t| t.ends_with(domain))
}

/// The mail's `Message-ID` header.
fn message_id(mail: &Mail) -> String {
    mail.data
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default()
}

/// The first instant after `from` whose second is `second`.
fn next_second(from: OffsetDateTime, second: u8) -> OffsetDateTime {
    let base = from.replace_nanosecond(0).expect("valid");
    let wait = (i64::from(second) - i64::from(base.second())).rem_euclid(60);
    let wait = if wait == 0 { 60 } else { wait };
    base + time::Duration::seconds(wait)
}

/// Signs in through the API of `base`: (access token, refresh token).
async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    email: &str,
) -> (String, String) {
    let (s, body) = call_url(
        http,
        Method::POST,
        &format!("{base}/api/v1/auth/token"),
        None,
        Some(json!({"tenant": tenant, "email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "sign-in: {body}");
    let token = |k: &str| body["data"][k].as_str().expect("token").to_string();
    (token("access_token"), token("refresh_token"))
}

/// A broadcast to everyone of the sender's tenant.
fn broadcast(title: &str, kind: &str) -> Value {
    json!({"audience": "all", "title": title, "body": "Read me once.", "kind": kind})
}

/// Exchanges a refresh token at `base`.
async fn refresh_at(http: &reqwest::Client, base: &str, token: &str) -> (StatusCode, Value) {
    call_url(
        http,
        Method::POST,
        &format!("{base}/api/v1/auth/refresh"),
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

/// Signs in to the portal of `base` and returns the session cookie's value.
async fn portal_sign_in(http: &reqwest::Client, base: &str, tenant: &str, email: &str) -> String {
    let resp = http
        .get(format!("{base}/portal/login"))
        .send()
        .await
        .expect("login page");
    let login_csrf = cookie(&resp, "tf_login_csrf");
    let csrf = csrf_of(&resp.text().await.expect("html"));
    let resp = http
        .post(format!("{base}/portal/login"))
        .header("cookie", format!("tf_login_csrf={login_csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("organisation", tenant),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "portal sign-in");
    cookie(&resp, "tf_session")
}

/// The value of the cookie `name` the response sets.
fn cookie(resp: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.trim().strip_prefix(prefix.as_str()))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no {name} cookie set"))
}
