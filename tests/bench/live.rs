//! Live updates, measured: the time from a progress write to its arrival at every one of
//! `BENCH_STREAMS` (1,000) subscribed portal streams, beside a bare fan-out of the same events to
//! as many streams through a tokio broadcast channel and the same HTTP stack (poem's
//! server-sent events, served in this process) in the same run.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{
    get, handler,
    listener::TcpListener,
    web::{
        sse::{Event, SSE},
        Data,
    },
    EndpointExt, Route, Server,
};
use tokio::sync::{broadcast, mpsc};

use super::common::percentile;

/// Per-delivery and per-event ("arrived everywhere") latencies.
pub struct Fanout {
    pub delivery_p50: Duration,
    pub delivery_p99: Duration,
    pub all_p50: Duration,
    pub all_p99: Duration,
}

impl std::fmt::Display for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "each delivery p50 {:.1} ms, p99 {:.1} ms; at all streams p50 {:.1} ms, p99 {:.1} ms",
            ms(self.delivery_p50),
            ms(self.delivery_p99),
            ms(self.all_p50),
            ms(self.all_p99)
        )
    }
}

/// Opens `n` event streams of `url` with `client` and returns once every one has answered:
/// from then on each reports `(the event's marker, when it arrived)` for every event whose data
/// holds `"lesson":"…"`.
pub async fn open_streams(
    client: &reqwest::Client,
    url: &str,
    n: usize,
) -> anyhow::Result<mpsc::UnboundedReceiver<(String, Instant)>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::channel::<anyhow::Result<()>>(n);
    for _ in 0..n {
        let (client, url, tx, ready) = (
            client.clone(),
            url.to_string(),
            tx.clone(),
            ready_tx.clone(),
        );
        tokio::spawn(async move {
            let mut resp = match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = ready.send(Ok(())).await;
                    r
                }
                Ok(r) => {
                    let _ = ready
                        .send(Err(anyhow::anyhow!("{url}: {}", r.status())))
                        .await;
                    return;
                }
                Err(e) => {
                    let _ = ready.send(Err(e.into())).await;
                    return;
                }
            };
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                let at = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if let Some(marker) = marker(&event) {
                        if tx.send((marker, at)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    for _ in 0..n {
        ready_rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("a stream task ended"))??;
    }
    Ok(rx)
}

/// The lesson an event's data names.
fn marker(event: &str) -> Option<String> {
    let data = event.lines().find_map(|l| l.strip_prefix("data:"))?.trim();
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    v["lesson"].as_str().map(String::from)
}

/// Sends `events` events one after another (each once the previous reached every stream) with
/// `send(i)`, which returns the event's marker and starts its clock, and measures.
pub async fn measure<F, Fut>(
    streams: usize,
    events: usize,
    mut arrivals: mpsc::UnboundedReceiver<(String, Instant)>,
    mut send: F,
) -> anyhow::Result<Fanout>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(String, Instant)>>,
{
    let (mut each, mut all) = (Vec::new(), Vec::new());
    for i in 0..events {
        let (wanted, started) = send(i).await?;
        let mut seen = 0;
        let mut last = started;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while seen < streams {
            let (marker, at) = tokio::time::timeout_at(deadline, arrivals.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!("event {i} reached {seen} of {streams} streams in 30 s")
                })?
                .ok_or_else(|| anyhow::anyhow!("the streams ended"))?;
            if marker != wanted {
                continue;
            }
            seen += 1;
            let took = at.saturating_duration_since(started);
            each.push(took);
            last = last.max(at);
        }
        all.push(last.saturating_duration_since(started));
    }
    each.sort();
    all.sort();
    Ok(Fanout {
        delivery_p50: percentile(&each, 0.5),
        delivery_p99: percentile(&each, 0.99),
        all_p50: percentile(&all, 0.5),
        all_p99: percentile(&all, 0.99),
    })
}

#[handler]
fn bare_stream(hub: Data<&broadcast::Sender<Arc<String>>>) -> SSE {
    let rx = hub.subscribe();
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(data) => {
                    return Some((Event::message(data.as_str()).event_type("progress"), rx))
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    SSE::new(events).keep_alive(Duration::from_secs(15))
}

/// The baseline: `events` events of the product's shape sent through a tokio broadcast
/// channel to `streams` streams of a bare poem server-sent-event endpoint on loopback.
pub async fn bare_fanout(streams: usize, events: usize) -> anyhow::Result<Fanout> {
    let (hub, _) = broadcast::channel::<Arc<String>>(4096);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let app = Route::new().at("/live", get(bare_stream)).data(hub.clone());
    let server = tokio::spawn(Server::new(TcpListener::bind(format!("127.0.0.1:{port}"))).run(app));
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/live");
    let mut arrivals = None;
    for _ in 0..100 {
        match open_streams(&client, &url, streams).await {
            Ok(a) => {
                arrivals = Some(a);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let arrivals = arrivals.ok_or_else(|| anyhow::anyhow!("the bare server did not start"))?;
    let result = measure(streams, events, arrivals, |i| {
        let hub = hub.clone();
        async move {
            let lesson = uuid::Uuid::now_v7().to_string();
            let data = serde_json::json!({
                "tenant": uuid::Uuid::nil(), "enrolment": uuid::Uuid::nil(), "user": uuid::Uuid::nil(),
                "course": uuid::Uuid::nil(), "percent": i % 100, "status": "in_progress",
                "lesson": lesson, "lesson_done": true,
            })
            .to_string();
            let started = Instant::now();
            let _ = hub.send(Arc::new(data));
            Ok((lesson, started))
        }
    })
    .await;
    server.abort();
    result
}
