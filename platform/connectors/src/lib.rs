//! The connector host: runs `trainflow:connector` components in a wasmtime sandbox.
//!
//! * Components are compiled once (Cranelift) and kept as `InstancePre` keyed by their SHA-256,
//!   so a run instantiates from the pooling allocator in microseconds.
//! * Every call has a deadline and a fuel budget (fuel also counts the instructions a run
//!   executed). The guest yields to the async executor at every 10 ms epoch tick, so a busy
//!   connector never holds a worker thread, and the host drops a call at its deadline. Every
//!   instance has a memory cap; pages, logs and the key-value store are capped.
//! * WASI is linked because Rust's standard library expects it, but with nothing granted: no
//!   preopened directories, no environment, no arguments, no stdin, no socket addresses.
//! * `wasi:http/outgoing-handler` is linked behind a policy ([`HttpGrant`]): allowed host names
//!   only, never private addresses, every refusal recorded.
//! * The host owns identity: the store knows the installation's file, secrets and key-value
//!   data; no WIT function takes a tenant.
#![forbid(unsafe_code)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::{
    component::{Component, HasSelf, Linker, ResourceTable},
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

mod http;
pub use http::{forbidden_address, host_matches, Cassette, Exchange, HttpGrant, HttpRefusal};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/connector",
        world: "trainflow-connector",
        exports: { default: async },
    });
}

pub use bindings::trainflow::connector::host::Level;
pub use bindings::trainflow::connector::types::{
    Certification, Completion, ConnectorError, ConnectorInfo, Course, Deletion, Employee, Entity,
    EntityKind, OrgUnit, Page, PageRequest, RecordError, StreamInfo,
};
use bindings::{TrainflowConnector, TrainflowConnectorPre};

/// The most bytes one `file-read` returns.
pub const MAX_FILE_READ: u32 = 16 * 1024 * 1024;

/// How often the epoch ticks; deadlines are whole ticks.
const TICK: Duration = Duration::from_millis(10);

/// Resource limits of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call.
    pub call_deadline: Duration,
    /// Fuel (≈ instructions) budget of one call.
    pub call_fuel: u64,
    /// Largest page, in records (entities plus record errors).
    pub max_records: u32,
    /// Log bytes kept per run.
    pub max_log_bytes: usize,
    /// Key-value bytes per installation.
    pub max_kv_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            call_deadline: Duration::from_secs(30),
            call_fuel: 20_000_000_000,
            max_records: 1000,
            max_log_bytes: 256 * 1024,
            max_kv_bytes: 1024 * 1024,
        }
    }
}

/// What a run may see: its uploaded file, declared secrets, its key-value store and the hosts it
/// may call.
#[derive(Default, Clone)]
pub struct Grants {
    pub file: Option<Arc<Vec<u8>>>,
    pub secrets: HashMap<String, String>,
    pub kv: HashMap<String, Vec<u8>>,
    pub http: HttpGrant,
}

/// A log line written by a connector.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
}

/// The state of one instance.
pub struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    http_ctx: WasiHttpCtx,
    http_policy: http::Policy,
    limits: Limiter,
    grants: Grants,
    kv_bytes: usize,
    logs: Vec<LogLine>,
    log_bytes: usize,
    logs_dropped: usize,
    max_log_bytes: usize,
    max_kv_bytes: usize,
    /// The guest's stderr (where a Rust panic prints its message), capped.
    stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.http_policy,
            table: &mut self.table,
            ctx: &mut self.http_ctx,
        }
    }
}

impl bindings::trainflow::connector::types::Host for RunState {}

impl bindings::trainflow::connector::host::Host for RunState {
    fn log(&mut self, level: Level, message: String) {
        // Each line costs its text plus a fixed overhead, so empty lines cannot grow the log
        // without bound.
        let cost = message.len() + 64;
        if self.log_bytes + cost > self.max_log_bytes {
            self.logs_dropped += 1;
            return;
        }
        self.log_bytes += cost;
        self.logs.push(LogLine { level, message });
    }

    fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.grants.kv.get(&key).cloned()
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        if key.len() > 128 || value.len() > 64 * 1024 {
            return Err("keys hold up to 128 bytes and values up to 64 KiB".into());
        }
        let old = self
            .grants
            .kv
            .get(&key)
            .map(|v| key.len() + v.len())
            .unwrap_or(0);
        let new_total = self.kv_bytes - old + key.len() + value.len();
        if new_total > self.max_kv_bytes {
            return Err(format!(
                "the key-value store is limited to {} bytes",
                self.max_kv_bytes
            ));
        }
        self.kv_bytes = new_total;
        self.grants.kv.insert(key, value);
        Ok(())
    }

    fn file_size(&mut self) -> Option<u64> {
        self.grants.file.as_ref().map(|f| f.len() as u64)
    }

    fn file_read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        let file = self
            .grants
            .file
            .as_ref()
            .ok_or("no file was uploaded for this run")?;
        let start = usize::try_from(offset)
            .map_err(|_| "offset out of range")?
            .min(file.len());
        let end = start
            .saturating_add(len.min(MAX_FILE_READ) as usize)
            .min(file.len());
        Ok(file[start..end].to_vec())
    }

    fn secret(&mut self, name: String) -> Option<String> {
        self.grants.secrets.get(&name).cloned()
    }

    fn now(&mut self) -> String {
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}

/// Caps linear memory and records the peak an instance reached.
struct Limiter {
    memory_cap: usize,
    peak_memory: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap || maximum.is_some_and(|m| desired > m) {
            return Err(wasmtime::Error::msg(format!(
                "memory cap: growing to {desired} bytes exceeds the {} byte limit",
                self.memory_cap
            )));
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000 && maximum.is_none_or(|m| desired <= m))
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// Why a call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connector answered with an error of its own.
    #[error("connector error: {0:?}")]
    Connector(ConnectorError),
    /// The sandbox stopped it: deadline, fuel, memory cap, or a panic (the trap's message).
    #[error("stopped by the sandbox: {0}")]
    Trapped(String),
    /// It answered, but the answer breaks a host rule (e.g. an oversized page).
    #[error("rejected: {0}")]
    Rejected(String),
}

/// Measurements of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallStats {
    /// Fuel consumed (≈ WebAssembly instructions executed).
    pub fuel: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// The wasmtime engine, linker and compiled-component cache.
pub struct ConnectorHost {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Mutex<HashMap<String, TrainflowConnectorPre<RunState>>>,
    _ticker: std::thread::JoinHandle<()>,
}

impl ConnectorHost {
    /// An engine with the pooling allocator, epoch interruption and fuel.
    pub fn new() -> anyhow::Result<Self> {
        Self::with_pooling(true)
    }

    /// Like [`ConnectorHost::new`]; `pooling = false` allocates each instance on demand
    /// (the baseline the instantiation benchmark compares against).
    pub fn with_pooling(pooling: bool) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(256)
            .total_core_instances(512)
            .total_memories(256)
            .total_tables(512)
            .max_memory_size(256 * 1024 * 1024);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(true)
            .allocation_strategy(if pooling {
                InstanceAllocationStrategy::Pooling(pool)
            } else {
                InstanceAllocationStrategy::OnDemand
            });
        let engine = wt(Engine::new(&config), "creating the wasmtime engine")?;
        let mut linker = Linker::new(&engine);
        wt(
            wasmtime_wasi::p2::add_to_linker_async(&mut linker),
            "linking WASI",
        )?;
        wt(
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker),
            "linking wasi:http",
        )?;
        wt(
            TrainflowConnector::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s),
            "linking the host interface",
        )?;
        let ticking = engine.clone();
        let ticker = std::thread::Builder::new()
            .name("connector-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(TICK);
                ticking.increment_epoch();
            })?;
        Ok(Self {
            engine,
            linker,
            cache: Mutex::new(HashMap::new()),
            _ticker: ticker,
        })
    }

    /// Compiles (or finds in the cache) a component; returns its SHA-256.
    pub fn load(&self, wasm: &[u8]) -> anyhow::Result<String> {
        let digest = hex::encode(Sha256::digest(wasm));
        if self
            .cache
            .lock()
            .map_err(|_| anyhow::anyhow!("cache poisoned"))?
            .contains_key(&digest)
        {
            return Ok(digest);
        }
        let component = wt(
            Component::new(&self.engine, wasm),
            "not a valid WebAssembly component",
        )?;
        let pre = wt(
            self.linker.instantiate_pre(&component),
            "the component needs imports the host does not offer",
        )?;
        let pre = wt(
            TrainflowConnectorPre::new(pre),
            "the component is not a trainflow:connector",
        )?;
        self.cache
            .lock()
            .map_err(|_| anyhow::anyhow!("cache poisoned"))?
            .insert(digest.clone(), pre);
        Ok(digest)
    }

    /// Starts a session on a loaded component: one instance, used for a run's calls.
    pub async fn session(
        &self,
        digest: &str,
        grants: Grants,
        limits: Limits,
    ) -> anyhow::Result<Session> {
        let pre = self
            .cache
            .lock()
            .map_err(|_| anyhow::anyhow!("cache poisoned"))?
            .get(digest)
            .cloned()
            .with_context(|| format!("component {digest} is not loaded"))?;
        let kv_bytes = grants.kv.iter().map(|(k, v)| k.len() + v.len()).sum();
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(8 * 1024);
        let state = RunState {
            http_ctx: WasiHttpCtx::new(),
            http_policy: http::Policy {
                grant: grants.http.clone(),
                refusals: Arc::default(),
            },
            wasi: WasiCtxBuilder::new().stderr(stderr.clone()).build(),
            stderr,
            table: {
                // WASI handles live in the host's memory: cap how many an instance may hold.
                let mut table = ResourceTable::new();
                table.set_max_capacity(1024);
                table
            },
            limits: Limiter {
                memory_cap: limits.memory_bytes,
                peak_memory: 0,
            },
            grants,
            kv_bytes,
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            max_log_bytes: limits.max_log_bytes,
            max_kv_bytes: limits.max_kv_bytes,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        wt(store.set_fuel(limits.call_fuel), "setting fuel")?;
        // Every epoch tick the guest yields to the executor, so a busy connector shares the
        // async workers with everything else; the host-side timeout of each call ends it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let started = Instant::now();
        let bindings = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("instantiation failed: {e:#}"))?;
        Ok(Session {
            store,
            bindings,
            limits,
            instantiated_in: started.elapsed(),
            total: CallStats::default(),
            poisoned: false,
        })
    }
}

/// wasmtime's `Error` is its own type: convert with the whole chain as text.
fn wt<T>(r: wasmtime::Result<T>, what: &str) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("{what}: {e:#}"))
}

/// One instance of a component, with its limits and the measurements so far.
pub struct Session {
    store: Store<RunState>,
    bindings: TrainflowConnector,
    limits: Limits,
    /// How long instantiation took.
    pub instantiated_in: Duration,
    /// Fuel and time of all calls so far.
    pub total: CallStats,
    /// Set once a call trapped or timed out: the instance is not used again.
    poisoned: bool,
}

impl Session {
    fn begin_call(&mut self) -> Result<Instant, CallError> {
        if self.poisoned {
            return Err(CallError::Trapped(
                "the instance was stopped by an earlier call; start a new session".into(),
            ));
        }
        self.store
            .set_fuel(self.limits.call_fuel)
            .map_err(|e| CallError::Trapped(e.to_string()))?;
        self.store.set_epoch_deadline(1);
        Ok(Instant::now())
    }

    /// The deadline of a call, enforced on the host side: the guest yields at every epoch tick
    /// (and in WASI sleeps and polls), and the call's future is dropped when time is up.
    fn host_deadline(&self) -> Duration {
        self.limits.call_deadline
    }

    fn finish<R>(
        &mut self,
        started: Instant,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, CallError> {
        let fuel = self.limits.call_fuel - self.store.get_fuel().unwrap_or(0);
        self.total.fuel += fuel;
        self.total.elapsed += started.elapsed();
        let result = match outcome {
            Ok(r) => r,
            Err(_) => {
                self.poisoned = true;
                return Err(CallError::Trapped("the call ran past its deadline".into()));
            }
        };
        result.map_err(|e| {
            self.poisoned = true;
            let printed = String::from_utf8_lossy(&self.store.data().stderr.contents())
                .trim()
                .to_string();
            let reason = describe_trap(&e);
            // A Rust panic prints `panicked at src/lib.rs:…:\n<message>` before trapping.
            match printed
                .lines()
                .skip_while(|l| !l.contains("panicked at"))
                .nth(1)
            {
                Some(message) if reason.contains("panicked") => {
                    CallError::Trapped(format!("the connector panicked: {message}"))
                }
                _ => CallError::Trapped(reason),
            }
        })
    }

    /// The connector's description.
    pub async fn describe(&mut self) -> Result<ConnectorInfo, CallError> {
        let (started, deadline) = (self.begin_call()?, self.host_deadline());
        let outcome = tokio::time::timeout(
            deadline,
            self.bindings
                .trainflow_connector_connector()
                .call_describe(&mut self.store),
        )
        .await;
        self.finish(started, outcome)
    }

    /// Validates a configuration.
    pub async fn check(&mut self, config: &str) -> Result<(), CallError> {
        let config = config.to_string();
        let (started, deadline) = (self.begin_call()?, self.host_deadline());
        let outcome = tokio::time::timeout(
            deadline,
            self.bindings
                .trainflow_connector_connector()
                .call_check(&mut self.store, &config),
        )
        .await;
        self.finish(started, outcome)?.map_err(CallError::Connector)
    }

    /// The streams of a configuration.
    pub async fn discover(&mut self, config: &str) -> Result<Vec<StreamInfo>, CallError> {
        let config = config.to_string();
        let (started, deadline) = (self.begin_call()?, self.host_deadline());
        let outcome = tokio::time::timeout(
            deadline,
            self.bindings
                .trainflow_connector_connector()
                .call_discover(&mut self.store, &config),
        )
        .await;
        self.finish(started, outcome)?.map_err(CallError::Connector)
    }

    /// One page; a page larger than the host asked for is rejected. The request's
    /// `max_records` is clamped to the run's limit.
    pub async fn read_page(
        &mut self,
        config: &str,
        request: &PageRequest,
    ) -> Result<Page, CallError> {
        if request.max_records == 0 {
            return Err(CallError::Rejected("max_records must be at least 1".into()));
        }
        let mut request = request.clone();
        request.max_records = request.max_records.min(self.limits.max_records);
        let config = config.to_string();
        let (started, deadline) = (self.begin_call()?, self.host_deadline());
        let outcome = tokio::time::timeout(
            deadline,
            self.bindings
                .trainflow_connector_connector()
                .call_read_page(&mut self.store, &config, &request),
        )
        .await;
        let page = self
            .finish(started, outcome)?
            .map_err(CallError::Connector)?;
        let records = page.entities.len() + page.errors.len();
        if records > request.max_records as usize {
            return Err(CallError::Rejected(format!(
                "the page holds {records} records but at most {} were asked for",
                request.max_records
            )));
        }
        Ok(page)
    }

    /// The log lines written so far, and how many were dropped over the cap.
    pub fn logs(&self) -> (&[LogLine], usize) {
        (&self.store.data().logs, self.store.data().logs_dropped)
    }

    /// The outbound requests refused so far.
    pub fn http_refusals(&self) -> Vec<HttpRefusal> {
        self.store
            .data()
            .http_policy
            .refusals
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The most linear memory the instance grew to, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limits.peak_memory
    }

    /// The installation's key-value data after the run.
    pub fn kv(&self) -> &HashMap<String, Vec<u8>> {
        &self.store.data().grants.kv
    }
}

/// A readable reason for a trap: the wasmtime trap code, the guest's panic message when it
/// printed one, and the root cause.
fn describe_trap(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => "the call ran past its deadline".into(),
            wasmtime::Trap::OutOfFuel => "the call ran out of fuel (instruction budget)".into(),
            wasmtime::Trap::UnreachableCodeReached => {
                "the connector panicked (unreachable code reached)".into()
            }
            other => format!("trap: {other}"),
        };
    }
    let text = format!("{e:#}");
    if text.contains("memory") && (text.contains("limit") || text.contains("grow")) {
        return format!("the connector exceeded its memory cap: {text}");
    }
    text
}
