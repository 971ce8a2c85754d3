//! Benchmark: instantiating a connector component from its `InstancePre` with the pooling
//! allocator (what every run does), beside on-demand allocation in the same run.
//!
//! ```text
//! (cd plugins && cargo build --release --target wasm32-wasip2)
//! cargo run --release -p trainflow-tests --bin bench-connectors -- plugins/target/wasm32-wasip2/release/trainflow_connector_testing.wasm
//! ```
//! `BENCH_ITERATIONS` (default 5000) sets the number of instantiations per allocator.

use std::time::{Duration, Instant};

use trainflow_connectors::{ConnectorHost, Grants, Limits};

#[path = "common.rs"]
mod common;

use common::percentile;

async fn measure(pooling: bool, wasm: &[u8], iterations: usize) -> anyhow::Result<Vec<Duration>> {
    let host = ConnectorHost::with_pooling(pooling)?;
    let digest = host.load(wasm)?;
    // Warm up.
    for _ in 0..100 {
        host.session(&digest, Grants::default(), Limits::default())
            .await?;
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let session = host
            .session(&digest, Grants::default(), Limits::default())
            .await?;
        times.push(started.elapsed());
        drop(session);
    }
    times.sort();
    Ok(times)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bench-connectors COMPONENT.wasm"))?;
    let wasm = std::fs::read(&path)?;
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let pooled = measure(true, &wasm, iterations).await?;
    let on_demand = measure(false, &wasm, iterations).await?;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("instantiation of {path} ({} KiB), {iterations} per allocator, store + WASI context + instance:", wasm.len() / 1024);
    println!(
        "  pooling    p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(percentile(&pooled, 0.5)),
        us(percentile(&pooled, 0.99))
    );
    println!(
        "  on demand  p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(percentile(&on_demand, 0.5)),
        us(percentile(&on_demand, 0.99))
    );
    println!(
        "  pooling / on demand (p50)  {:.2}",
        us(percentile(&pooled, 0.5)) / us(percentile(&on_demand, 0.5))
    );
    Ok(())
}
