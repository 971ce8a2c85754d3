//! The durable work queue on the real database: claims that never collide, retries after
//! back-off, lapsed leases, cancellation, panicking handlers, progress, deduplication, tenant
//! scoping (row-level security on PostgreSQL), shutdown, pruning and `/health/jobs`.
//!
//! Tests of one process share a PostgreSQL database, so each uses its own kinds: a claim only
//! ever takes (and only expires leases of) the kinds it asks for.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use reqwest::{Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use trainflow_jobs::queue::{
    self, handler_fn, Backoff, CancelOutcome, Enqueued, FailOutcome, LeaseState, NewWork,
    Permanent, WorkFilter, WorkItem, WorkStatus, Worker, WorkerConfig,
};
use trainflow_kernel::{auth::Role, db::TenantTx, envelope::Page, sql, ApiError, TenantId, UserId};
use trainflow_tests::{Backend, TestApp};
use uuid::Uuid;

fn kind(name: &str) -> String {
    format!("test.{name}.{}", &Uuid::new_v4().simple().to_string()[..12])
}

fn now() -> OffsetDateTime {
    trainflow_kernel::now()
}

fn secs(n: f64) -> time::Duration {
    time::Duration::seconds_f64(n)
}

async fn item(app: &TestApp, id: Uuid) -> WorkItem {
    let mut tx = app.db.platform_tx().await.unwrap();
    let found = queue::get(&mut tx, id).await.unwrap();
    tx.commit().await.unwrap();
    found.unwrap_or_else(|| panic!("no work item {id}"))
}

/// Polls the item until `done` holds (or fails after 20 s with the last state).
async fn wait_for(app: &TestApp, id: Uuid, done: impl Fn(&WorkItem) -> bool) -> WorkItem {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let w = item(app, id).await;
        if done(&w) {
            return w;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting; the item is {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn finished(w: &WorkItem) -> bool {
    w.status.is_finished()
}

/// A worker with short waits: a quick poll, a short back-off and grace.
fn worker(app: &TestApp, instance: &str) -> Worker {
    let mut config = WorkerConfig::for_backend(app.db.backend());
    config.poll_interval = Duration::from_millis(100);
    config.lease = Duration::from_secs(3);
    config.backoff = Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    config.shutdown_grace = Duration::from_millis(300);
    Worker::new(app.db.clone(), instance, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_take_the_same_item_and_every_item_runs_once() {
    let app = TestApp::spawn().await;
    let kind = kind("claims");
    let t0 = now();
    for n in 0..200 {
        queue::enqueue(
            &app.db,
            NewWork::new(&kind, json!({ "n": n })).tenant(TenantId(app.a.id)),
            t0,
        )
        .await
        .unwrap();
    }
    let runs: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
    let mut loops = Vec::new();
    for w in 0..4 {
        let (db, kinds, runs) = (app.db.clone(), vec![kind.clone()], runs.clone());
        loops.push(tokio::spawn(async move {
            let instance = format!("claimer-{w}");
            let mut mine = 0;
            while let Some(c) = queue::claim(&db, &instance, &kinds, Duration::from_secs(60), now())
                .await
                .unwrap()
            {
                *runs.lock().unwrap().entry(c.id).or_default() += 1;
                assert!(queue::complete(&db, &c.lease, &json!({ "by": w }), now())
                    .await
                    .unwrap());
                mine += 1;
            }
            mine
        }));
    }
    let mut total = 0;
    for l in loops {
        total += l.await.unwrap();
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(total, 200, "claims over all loops");
    assert_eq!(runs.len(), 200, "every item was claimed");
    assert!(
        runs.values().all(|&n| n == 1),
        "an item ran twice: {runs:?}"
    );

    let mut tx = app.db.platform_tx().await.unwrap();
    let filter = WorkFilter {
        kind: Some(kind.clone()),
        ..WorkFilter::default()
    };
    let (page, matching) = queue::list(&mut tx, &filter, Page::parse(Some(1), Some(100)).unwrap())
        .await
        .unwrap();
    let succeeded = WorkFilter {
        status: Some(WorkStatus::Succeeded),
        ..filter
    };
    let (_, done) = queue::list(&mut tx, &succeeded, Page::parse(None, None).unwrap())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((matching, done), (200, 200));
    assert!(page.iter().all(|w| w.attempts == 1 && w.result.is_some()));
}

#[tokio::test]
async fn a_failed_attempt_is_retried_after_its_back_off_and_not_before_until_attempts_run_out() {
    let app = TestApp::spawn().await;
    let kind = kind("backoff");
    let kinds = vec![kind.clone()];
    let lease = Duration::from_secs(60);
    let backoff = Backoff {
        base: Duration::from_secs(10),
        max: Duration::from_secs(3600),
    };
    let t0 = now();
    let id = queue::enqueue(&app.db, NewWork::new(&kind, json!({})).max_attempts(3), t0)
        .await
        .unwrap()
        .id();

    let first = queue::claim(&app.db, "w", &kinds, lease, t0)
        .await
        .unwrap()
        .expect("due at once");
    assert_eq!((first.id, first.attempt()), (id, 1));
    let out = queue::fail(&app.db, &first.lease, "boom 1", &backoff, t0)
        .await
        .unwrap();
    assert_eq!(
        out,
        FailOutcome::Retrying {
            at: t0 + secs(10.0)
        }
    );
    let w = item(&app, id).await;
    assert_eq!(
        (w.status, w.attempts, w.last_error.as_deref()),
        (WorkStatus::Queued, 1, Some("boom 1"))
    );
    assert!(
        queue::claim(&app.db, "w", &kinds, lease, t0 + secs(9.999))
            .await
            .unwrap()
            .is_none(),
        "claimed before the back-off ended"
    );

    let t1 = t0 + secs(10.0);
    let second = queue::claim(&app.db, "w", &kinds, lease, t1)
        .await
        .unwrap()
        .expect("due after the back-off");
    assert_eq!(second.attempt(), 2);
    let out = queue::fail(&app.db, &second.lease, "boom 2", &backoff, t1)
        .await
        .unwrap();
    assert_eq!(
        out,
        FailOutcome::Retrying {
            at: t1 + secs(20.0)
        },
        "the back-off doubles"
    );
    assert!(queue::claim(&app.db, "w", &kinds, lease, t1 + secs(19.9))
        .await
        .unwrap()
        .is_none());

    let t2 = t1 + secs(20.0);
    let third = queue::claim(&app.db, "w", &kinds, lease, t2)
        .await
        .unwrap()
        .expect("due after the second back-off");
    assert_eq!(third.attempt(), 3);
    let out = queue::fail(&app.db, &third.lease, "boom 3", &backoff, t2)
        .await
        .unwrap();
    assert_eq!(out, FailOutcome::Failed);
    let w = item(&app, id).await;
    assert_eq!(w.status, WorkStatus::Failed);
    assert_eq!((w.attempts, w.max_attempts), (3, 3));
    assert_eq!(w.last_error.as_deref(), Some("boom 3"));
    assert_eq!(w.finished_at, Some(t2));
    assert!(
        queue::claim(&app.db, "w", &kinds, lease, t2 + secs(86_400.0))
            .await
            .unwrap()
            .is_none(),
        "a failed item is never claimed again by itself"
    );

    // A retry gives it a fresh set of attempts; only failed items can be retried.
    let mut tx = app.db.platform_tx().await.unwrap();
    queue::retry(&mut tx, id, t2).await.unwrap();
    tx.commit().await.unwrap();
    let w = item(&app, id).await;
    assert_eq!(
        (w.status, w.attempts, w.finished_at),
        (WorkStatus::Queued, 0, None)
    );
    let again = queue::claim(&app.db, "w", &kinds, lease, t2)
        .await
        .unwrap()
        .expect("due after the retry");
    assert_eq!(again.attempt(), 1);
    let mut tx = app.db.platform_tx().await.unwrap();
    let refused = queue::retry(&mut tx, id, t2).await.unwrap_err();
    assert!(matches!(refused, ApiError::Conflict { .. }), "{refused:?}");
}

#[tokio::test]
async fn a_lapsed_lease_is_reclaimed_and_the_old_holder_can_no_longer_report() {
    let app = TestApp::spawn().await;
    let kind = kind("lease");
    let kinds = vec![kind.clone()];
    let lease = Duration::from_secs(5);
    let t0 = now();
    let id = queue::enqueue(&app.db, NewWork::new(&kind, json!({})).max_attempts(2), t0)
        .await
        .unwrap()
        .id();
    let doomed = queue::claim(&app.db, "doomed", &kinds, lease, t0)
        .await
        .unwrap()
        .unwrap();
    assert!(
        queue::claim(&app.db, "rescuer", &kinds, lease, t0 + secs(4.0))
            .await
            .unwrap()
            .is_none(),
        "taken while the lease held"
    );
    let rescued = queue::claim(&app.db, "rescuer", &kinds, lease, t0 + secs(6.0))
        .await
        .unwrap()
        .expect("the lapsed item is claimed again");
    assert_eq!((rescued.id, rescued.attempt()), (id, 2));
    let w = item(&app, id).await;
    assert_eq!(w.status, WorkStatus::Running);
    assert_eq!(w.locked_by.as_deref(), Some("rescuer"));
    assert!(w.last_error.as_deref().unwrap().contains("doomed"), "{w:?}");

    // The first holder is fenced out.
    let late = t0 + secs(6.5);
    assert_eq!(
        queue::progress(&app.db, &doomed.lease, 1, 2, "still here", late)
            .await
            .unwrap(),
        LeaseState::Lost
    );
    assert!(
        !queue::complete(&app.db, &doomed.lease, &json!("stale"), late)
            .await
            .unwrap()
    );
    let backoff = Backoff::default();
    assert_eq!(
        queue::fail(&app.db, &doomed.lease, "stale", &backoff, late)
            .await
            .unwrap(),
        FailOutcome::LeaseLost
    );
    assert!(
        queue::complete(&app.db, &rescued.lease, &json!("fresh"), late)
            .await
            .unwrap()
    );
    let w = item(&app, id).await;
    assert_eq!(
        (w.status, w.result),
        (WorkStatus::Succeeded, Some(json!("fresh")))
    );

    // A lease that lapses on the last attempt ends the item instead of looping.
    let id = queue::enqueue(&app.db, NewWork::new(&kind, json!({})).max_attempts(1), t0)
        .await
        .unwrap()
        .id();
    queue::claim(&app.db, "doomed", &kinds, lease, t0)
        .await
        .unwrap()
        .unwrap();
    assert!(
        queue::claim(&app.db, "rescuer", &kinds, lease, t0 + secs(6.0))
            .await
            .unwrap()
            .is_none()
    );
    let w = item(&app, id).await;
    assert_eq!(w.status, WorkStatus::Failed);
    assert!(w.last_error.unwrap().contains("lapsed"));
}

#[tokio::test]
async fn canceling_a_queued_item_ends_it_at_once() {
    let app = TestApp::spawn().await;
    let kind = kind("cancel-queued");
    let admin = UserId(app.a.people[&Role::Administrator]);
    let id = queue::enqueue(
        &app.db,
        NewWork::new(&kind, json!({})).tenant(TenantId(app.a.id)),
        now(),
    )
    .await
    .unwrap()
    .id();
    let mut tx = TenantTx::begin_system(&app.db, TenantId(app.a.id))
        .await
        .unwrap();
    let out = queue::cancel(&mut tx, id, Some(admin), now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(out, CancelOutcome::Canceled);
    let w = item(&app, id).await;
    assert_eq!(w.status, WorkStatus::Canceled);
    assert_eq!(w.canceled_by, Some(admin.0));
    assert!(w.finished_at.is_some() && w.cancel_requested_at.is_some());
    assert!(
        queue::claim(&app.db, "w", &[kind], Duration::from_secs(5), now())
            .await
            .unwrap()
            .is_none()
    );
    let mut tx = app.db.platform_tx().await.unwrap();
    let again = queue::cancel(&mut tx, id, None, now()).await.unwrap_err();
    assert!(matches!(again, ApiError::Conflict { .. }), "{again:?}");
    let missing = queue::cancel(&mut tx, Uuid::now_v7(), None, now())
        .await
        .unwrap_err();
    assert!(matches!(missing, ApiError::NotFound), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_running_item_stops_its_handler_at_its_next_progress_report() {
    let app = TestApp::spawn().await;
    let kind = kind("cancel-running");
    let steps = Arc::new(AtomicU64::new(0));
    let counted = steps.clone();
    let handle = worker(&app, "canceler")
        .handle(
            &kind,
            handler_fn(move |_item, ctx| {
                let steps = counted.clone();
                async move {
                    for i in 0..10_000u64 {
                        ctx.progress(i, 10_000, "working").await?;
                        steps.store(i + 1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Ok(json!({ "finished": true }))
                }
            }),
        )
        .start();
    let id = queue::enqueue(&app.db, NewWork::new(&kind, json!({})), now())
        .await
        .unwrap()
        .id();
    wait_for(&app, id, |w| w.progress_done.unwrap_or(0) >= 3).await;
    let mut tx = app.db.platform_tx().await.unwrap();
    let out = queue::cancel(&mut tx, id, None, now()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(out, CancelOutcome::Requested);

    let w = wait_for(&app, id, finished).await;
    assert_eq!(w.status, WorkStatus::Canceled, "{w:?}");
    assert!(w.result.is_none() && w.finished_at.is_some());
    let at_stop = steps.load(Ordering::SeqCst);
    assert!(at_stop < 10_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        steps.load(Ordering::SeqCst),
        at_stop,
        "the handler kept going after it was canceled"
    );
    assert!(handle.is_running());
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_or_failing_handler_fails_its_attempt_and_the_worker_keeps_working() {
    let app = TestApp::spawn().await;
    let panics = kind("panics");
    let flaky = kind("flaky");
    let hopeless = kind("hopeless");
    let handle = worker(&app, "survivor")
        .handle(
            &panics,
            handler_fn(|item, _ctx| async move {
                if item.payload["panic"] == true {
                    panic!("kaboom {}", item.payload["n"]);
                }
                Ok(json!({ "n": item.payload["n"] }))
            }),
        )
        .handle(
            &flaky,
            handler_fn(|item, _ctx| async move {
                if item.attempt() == 1 {
                    anyhow::bail!("the first attempt always fails");
                }
                Ok(json!({ "attempt": item.attempt() }))
            }),
        )
        .handle(
            &hopeless,
            handler_fn(|_item, _ctx| async move {
                Err(Permanent("the payload names no report".into()).into())
            }),
        )
        .start();
    let t = now();
    let bad = queue::enqueue(
        &app.db,
        NewWork::new(&panics, json!({ "panic": true, "n": 0 })).max_attempts(2),
        t,
    )
    .await
    .unwrap()
    .id();
    let mut good = Vec::new();
    for n in 1..=3 {
        good.push(
            queue::enqueue(&app.db, NewWork::new(&panics, json!({ "n": n })), t)
                .await
                .unwrap()
                .id(),
        );
    }
    let retried = queue::enqueue(&app.db, NewWork::new(&flaky, json!({})), t)
        .await
        .unwrap()
        .id();
    let permanent = queue::enqueue(
        &app.db,
        NewWork::new(&hopeless, json!({})).max_attempts(5),
        t,
    )
    .await
    .unwrap()
    .id();

    let w = wait_for(&app, bad, finished).await;
    assert_eq!((w.status, w.attempts), (WorkStatus::Failed, 2), "{w:?}");
    let error = w.last_error.unwrap();
    assert!(
        error.contains("panicked") && error.contains("kaboom 0"),
        "{error}"
    );
    for (n, id) in good.into_iter().enumerate() {
        let w = wait_for(&app, id, finished).await;
        assert_eq!(w.status, WorkStatus::Succeeded, "{w:?}");
        assert_eq!(w.result, Some(json!({ "n": n + 1 })));
    }
    let w = wait_for(&app, retried, finished).await;
    assert_eq!(
        (w.status, w.attempts, w.result),
        (WorkStatus::Succeeded, 2, Some(json!({ "attempt": 2 })))
    );
    assert_eq!(
        w.last_error.as_deref(),
        Some("the first attempt always fails")
    );
    let w = wait_for(&app, permanent, finished).await;
    assert_eq!((w.status, w.attempts), (WorkStatus::Failed, 1), "{w:?}");
    assert!(handle.is_running(), "the worker survived its handlers");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_visible_while_the_item_runs() {
    let app = TestApp::spawn().await;
    let kind = kind("progress");
    let go = Arc::new(tokio::sync::Notify::new());
    let gate = go.clone();
    let handle = worker(&app, "reporter")
        .handle(
            &kind,
            handler_fn(move |item, ctx| {
                let gate = gate.clone();
                async move {
                    ctx.progress(3, 10, "three of ten").await?;
                    gate.notified().await;
                    Ok(json!({ "rows": item.payload["rows"] }))
                }
            }),
        )
        .start();
    let id = queue::enqueue(&app.db, NewWork::new(&kind, json!({ "rows": 10 })), now())
        .await
        .unwrap()
        .id();
    let w = wait_for(&app, id, |w| w.progress_done == Some(3)).await;
    assert_eq!(w.status, WorkStatus::Running);
    assert_eq!(
        (
            w.progress_total,
            w.progress_percent,
            w.progress_message.as_deref()
        ),
        (Some(10), Some(30), Some("three of ten"))
    );
    assert_eq!(w.locked_by.as_deref(), Some("reporter"));
    assert!(w.heartbeat_at.is_some() && w.started_at.is_some());
    assert!(w.locked_until.unwrap() > now());
    go.notify_one();
    let w = wait_for(&app, id, finished).await;
    assert_eq!(
        (w.status, w.result),
        (WorkStatus::Succeeded, Some(json!({ "rows": 10 })))
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn a_dedupe_key_refuses_a_second_unfinished_item() {
    let app = TestApp::spawn().await;
    let kind = kind("dedupe");
    let (a, b) = (TenantId(app.a.id), TenantId(app.b.id));
    let t = now();
    let new = |tenant: TenantId| {
        NewWork::new(&kind, json!({}))
            .tenant(tenant)
            .dedupe_key("2026-03")
    };
    let first = queue::enqueue(&app.db, new(a), t).await.unwrap();
    let Enqueued::Created(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        queue::enqueue(&app.db, new(a), t).await.unwrap(),
        Enqueued::Duplicate(id)
    );
    // Within the tenant's own transaction too.
    let mut tx = TenantTx::begin_system(&app.db, a).await.unwrap();
    assert_eq!(
        queue::enqueue_in(&mut tx, new(a), t).await.unwrap(),
        Enqueued::Duplicate(id)
    );
    tx.commit().await.unwrap();
    // Another tenant, and platform work, have their own keys.
    assert!(matches!(
        queue::enqueue(&app.db, new(b), t).await.unwrap(),
        Enqueued::Created(_)
    ));
    let platform = || NewWork::new(&kind, json!({})).dedupe_key("2026-03");
    let p = queue::enqueue(&app.db, platform(), t).await.unwrap();
    assert!(matches!(p, Enqueued::Created(_)));
    assert_eq!(
        queue::enqueue(&app.db, platform(), t).await.unwrap(),
        Enqueued::Duplicate(p.id())
    );

    // Still refused while it runs; accepted once it finished.
    let kinds = vec![kind.clone()];
    let mut claimed = Vec::new();
    while let Some(c) = queue::claim(&app.db, "w", &kinds, Duration::from_secs(60), t)
        .await
        .unwrap()
    {
        claimed.push(c);
    }
    assert_eq!(claimed.len(), 3);
    assert_eq!(
        queue::enqueue(&app.db, new(a), t).await.unwrap(),
        Enqueued::Duplicate(id)
    );
    let mine = claimed.iter().find(|c| c.id == id).unwrap();
    assert!(queue::complete(&app.db, &mine.lease, &json!({}), t)
        .await
        .unwrap());
    let next = queue::enqueue(&app.db, new(a), t).await.unwrap();
    assert!(matches!(next, Enqueued::Created(n) if n != id), "{next:?}");
}

#[tokio::test]
async fn a_tenant_transaction_sees_and_touches_only_its_own_items() {
    let app = TestApp::spawn().await;
    let kind = kind("scope");
    let (a, b) = (TenantId(app.a.id), TenantId(app.b.id));
    let t = now();
    let of_a = queue::enqueue(&app.db, NewWork::new(&kind, json!({})).tenant(a), t)
        .await
        .unwrap()
        .id();
    let of_b = queue::enqueue(&app.db, NewWork::new(&kind, json!({})).tenant(b), t)
        .await
        .unwrap()
        .id();
    let platform = queue::enqueue(&app.db, NewWork::new(&kind, json!({})), t)
        .await
        .unwrap()
        .id();
    let filter = WorkFilter {
        kind: Some(kind.clone()),
        ..WorkFilter::default()
    };
    let page = Page::parse(None, None).unwrap();

    let mut tx = TenantTx::begin_system(&app.db, a).await.unwrap();
    let (items, total) = queue::list(&mut tx, &filter, page).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(items.iter().map(|w| w.id).collect::<Vec<_>>(), vec![of_a]);
    // Naming another tenant in the filter does not widen the scope.
    let theirs = WorkFilter {
        tenant: Some(b),
        ..filter.clone()
    };
    assert_eq!(queue::list(&mut tx, &theirs, page).await.unwrap().1, 0);
    assert!(queue::get(&mut tx, of_b).await.unwrap().is_none());
    assert!(queue::get(&mut tx, platform).await.unwrap().is_none());
    let refused = queue::cancel(&mut tx, of_b, None, t).await.unwrap_err();
    assert!(matches!(refused, ApiError::NotFound), "{refused:?}");
    let refused = queue::enqueue_in(&mut tx, NewWork::new(&kind, json!({})).tenant(b), t)
        .await
        .unwrap_err();
    assert!(matches!(refused, ApiError::Validation(_)), "{refused:?}");

    if app.backend == Backend::Postgres {
        // Row-level security: a statement with no tenant clause still sees only tenant A.
        let seen: Vec<Option<Uuid>> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select tenant_id from work_items where kind = $1")
            .bind(&kind).fetch_all(&mut *c).await)
        .unwrap();
        assert_eq!(seen, vec![Some(a.0)]);
        let sneaky = sql!(tx.conn() => |c| sqlx::query(
            "insert into work_items (id, tenant_id, kind, payload, status, max_attempts, run_after, created_at)
             values ($1, $2, $3, '{}', 'queued', 1, $4, $4)")
            .bind(Uuid::now_v7()).bind(b.0).bind(&kind).bind(t)
            .execute(&mut *c).await.map(drop))
        .unwrap_err();
        assert!(
            sneaky.to_string().contains("row-level security"),
            "{sneaky}"
        );
    }
    drop(tx);

    // The platform scope sees every tenant's items and platform work.
    let mut tx = app.db.platform_tx().await.unwrap();
    let (_, total) = queue::list(&mut tx, &filter, page).await.unwrap();
    let (_, only_b) = queue::list(&mut tx, &theirs, page).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((total, only_b), (3, 1));
}

#[tokio::test]
async fn enqueue_in_commits_or_rolls_back_with_the_use_case() {
    let app = TestApp::spawn().await;
    let kind = kind("unit-of-work");
    let a = TenantId(app.a.id);
    let mut tx = TenantTx::begin_system(&app.db, a).await.unwrap();
    let dropped = queue::enqueue_in(&mut tx, NewWork::new(&kind, json!({})), now())
        .await
        .unwrap()
        .id();
    drop(tx);
    let mut tx = app.db.platform_tx().await.unwrap();
    assert!(queue::get(&mut tx, dropped).await.unwrap().is_none());
    tx.commit().await.unwrap();

    let mut tx = TenantTx::begin_system(&app.db, a).await.unwrap();
    let kept = queue::enqueue_in(&mut tx, NewWork::new(&kind, json!({})), now())
        .await
        .unwrap()
        .id();
    tx.commit().await.unwrap();
    queue::wake();
    let w = item(&app, kept).await;
    assert_eq!(
        (w.status, w.tenant_id),
        (WorkStatus::Queued, Some(a.0)),
        "an item enqueued in a tenant's transaction belongs to the tenant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueueing_wakes_an_idle_worker_before_its_next_poll() {
    let app = TestApp::spawn().await;
    let kind = kind("wake");
    let mut config = worker(&app, "sleeper").config().clone();
    config.poll_interval = Duration::from_secs(3600);
    let handle = Worker::new(app.db.clone(), "sleeper", config)
        .handle(
            &kind,
            handler_fn(|_item, _ctx| async { Ok(json!("awake")) }),
        )
        .start();
    // Let its first look find nothing, so it waits for the poll or a wake-up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let id = queue::enqueue(&app.db, NewWork::new(&kind, json!({})), now())
        .await
        .unwrap()
        .id();
    let w = wait_for(&app, id, finished).await;
    assert_eq!(w.status, WorkStatus::Succeeded);
    assert!(started.elapsed() < Duration::from_secs(10));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_an_unfinished_item_back_to_the_queue() {
    let app = TestApp::spawn().await;
    let kind = kind("shutdown");
    let handle = worker(&app, "leaving")
        .handle(
            &kind,
            handler_fn(|_item, ctx| async move {
                ctx.progress(1, 2, "halfway").await?;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(json!({}))
            }),
        )
        .start();
    let id = queue::enqueue(&app.db, NewWork::new(&kind, json!({})), now())
        .await
        .unwrap()
        .id();
    wait_for(&app, id, |w| w.progress_done == Some(1)).await;
    let started = std::time::Instant::now();
    handle.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited past its grace"
    );
    let w = item(&app, id).await;
    assert_eq!(w.status, WorkStatus::Queued, "{w:?}");
    assert_eq!(w.attempts, 0, "the interrupted attempt does not count");
    assert!(w.locked_until.is_none());
    let again = queue::claim(&app.db, "next", &[kind], Duration::from_secs(5), now())
        .await
        .unwrap()
        .expect("due again at once");
    assert_eq!(again.attempt(), 1);
}

#[tokio::test]
async fn prune_removes_only_finished_items_past_their_retention() {
    let app = TestApp::spawn().await;
    let kind = kind("prune");
    let kinds = vec![kind.clone()];
    let t = now();
    let old = t - time::Duration::days(40);
    let finished_long_ago = queue::enqueue(&app.db, NewWork::new(&kind, json!({})), old)
        .await
        .unwrap()
        .id();
    let c = queue::claim(&app.db, "w", &kinds, Duration::from_secs(60), old)
        .await
        .unwrap()
        .unwrap();
    assert!(queue::complete(&app.db, &c.lease, &json!({}), old)
        .await
        .unwrap());
    let waiting_long = queue::enqueue(
        &app.db,
        NewWork::new(&kind, json!({})).run_after(t + time::Duration::days(1)),
        old,
    )
    .await
    .unwrap()
    .id();
    let recent = queue::enqueue(&app.db, NewWork::new(&kind, json!({})), t)
        .await
        .unwrap()
        .id();
    let c = queue::claim(&app.db, "w", &kinds, Duration::from_secs(60), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.id, recent);
    assert!(queue::complete(&app.db, &c.lease, &json!({}), t)
        .await
        .unwrap());

    let deleted = queue::prune(&app.db, time::Duration::days(30), t)
        .await
        .unwrap();
    assert!(deleted >= 1);
    let mut tx = app.db.platform_tx().await.unwrap();
    assert!(queue::get(&mut tx, finished_long_ago)
        .await
        .unwrap()
        .is_none());
    assert!(queue::get(&mut tx, waiting_long).await.unwrap().is_some());
    assert!(queue::get(&mut tx, recent).await.unwrap().is_some());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn health_jobs_reports_the_queue_depth_and_the_longest_wait() {
    let app = TestApp::spawn().await;
    let kind = kind("health");
    let t = now();
    for _ in 0..2 {
        queue::enqueue(
            &app.db,
            NewWork::new(&kind, json!({})).run_after(t - time::Duration::minutes(5)),
            t,
        )
        .await
        .unwrap();
    }
    let (s, body) = app.call(Method::GET, "/health/jobs", None, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let work = &body["work"];
    assert!(work["queued"].as_i64().unwrap() >= 2, "{body}");
    assert!(work["due"].as_i64().unwrap() >= 2, "{body}");
    assert!(
        work["oldest_queued_secs"].as_i64().unwrap() >= 300,
        "{body}"
    );
    for field in ["running", "succeeded", "failed", "canceled", "stalled"] {
        assert!(work[field].is_i64(), "{field} missing: {body}");
    }
    assert!(
        body["jobs"].to_string().contains("work.prune"),
        "the prune job is scheduled: {body}"
    );
}
