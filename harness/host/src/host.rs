//! Loading a guest and serving requests with it.
//!
//! [`Guest::load`] compiles the module once (`Engine`, `Module`,
//! `Linker::instantiate_pre`), checks it, and starts one instance eagerly
//! (as http-wasm-host-go does, to fail fast); the features that instance
//! enables while starting become the middleware's. [`Guest::handle`] takes
//! an idle instance from the pool, or starts a new one, and runs one request
//! through it from `handle_request` to `handle_response`. Each instance
//! lives in its own `Store`, so a [`Guest`] is `Send + Sync` and serves
//! concurrent requests on as many instances.
//!
//! Every request is accounted: fuel burned, memory size after it, host
//! calls per import, log lines.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use http_wasm_lower::touch::{TOUCH_MEMORY, Touched};
use wasmtime::{Config, Engine, InstancePre, Linker, Memory, Module, Store, Trap, TypedFunc};
use wasmtime_wasi::WasiCtxBuilder;

use crate::abi::{self, AbiTrap, Features, HostCalls, HostState, RequestState, Shared};
use crate::check::{self, CheckPolicy, CompatReport, Severity};
use crate::error::{Error, Result};
use crate::model::{Backend, Request, Response};
use crate::traefik;

use crate::log::LogLevel;
pub use crate::log::{LogLine, LogSink};

/// The configuration `get_config` returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum GuestConfig {
    /// No configuration: `get_config` returns length 0.
    #[default]
    None,
    /// A plugin configuration as JSON. Faithful mode delivers what Traefik
    /// would ([`traefik::config_bytes`]: every scalar a string); otherwise
    /// it is delivered as compact JSON, types intact.
    Json(serde_json::Value),
    /// These exact bytes, in either mode.
    Raw(Vec<u8>),
}

/// Where the guest's WASI stdout/stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdio {
    /// Discarded, as in Traefik (wazero's default).
    #[default]
    Discard,
    /// The harness process's own stdout/stderr (handy for guest panics).
    Inherit,
}

/// How a [`Guest`] behaves. `HostOptions::default()` is Traefik-faithful.
#[derive(Clone)]
pub struct HostOptions {
    /// Behave like Traefik 3.7 where it differs from a naive host (default
    /// `true`): config stringified, WASI random a PRNG seeded with 42, fake
    /// monotonic clock, `log_enabled` always 1, bulk memory refused, trailer
    /// and `buffer_request` quirks of http-wasm-host-go, and an instance
    /// that trapped fails every later request it serves, as in Traefik.
    /// `false`: config as given, real randomness and clocks, warnings
    /// instead of refusals, an instance reused after a trap.
    pub faithful: bool,
    /// What `get_config` returns.
    pub config: GuestConfig,
    /// Lines below this level are not recorded; when not faithful,
    /// `log_enabled` answers by it too.
    pub log_level: LogLevel,
    /// Receives every recorded line as it is logged, from any instance.
    pub log_sink: Option<LogSink>,
    /// Fuel one call of `_start`/`_initialize`, or one request, may burn;
    /// beyond it the guest traps ([`Error::OutOfFuel`]).
    pub fuel_limit: u64,
    /// At most this many instances at once; a request waits for a free one
    /// beyond it. `None`: unbounded (like Traefik's `sync.Pool`).
    pub max_instances: Option<usize>,
    /// At most this many idle instances are kept; more are dropped.
    pub max_idle: usize,
    /// What to do with modules that run here but not in Traefik.
    pub check: CheckPolicy,
    /// Where WASI stdout/stderr go.
    pub stdio: Stdio,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            faithful: true,
            config: GuestConfig::None,
            log_level: LogLevel::Debug,
            log_sink: None,
            fuel_limit: 10_000_000_000,
            max_instances: None,
            max_idle: 64,
            check: CheckPolicy::Auto,
            stdio: Stdio::Discard,
        }
    }
}

impl fmt::Debug for HostOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostOptions")
            .field("faithful", &self.faithful)
            .field("config", &self.config)
            .field("log_level", &self.log_level)
            .field("log_sink", &self.log_sink.as_ref().map(|_| "<fn>"))
            .field("fuel_limit", &self.fuel_limit)
            .field("max_instances", &self.max_instances)
            .field("max_idle", &self.max_idle)
            .field("check", &self.check)
            .field("stdio", &self.stdio)
            .finish()
    }
}

impl HostOptions {
    /// Traefik-faithful options (the default).
    pub fn traefik() -> Self {
        Self::default()
    }

    /// A plain host: config as given, real randomness and clocks, warnings
    /// instead of Traefik refusals.
    pub fn native() -> Self {
        HostOptions {
            faithful: false,
            ..Self::default()
        }
    }

    /// Set `faithful`.
    pub fn faithful(mut self, faithful: bool) -> Self {
        self.faithful = faithful;
        self
    }

    /// Deliver this JSON configuration.
    pub fn config_json(mut self, config: serde_json::Value) -> Self {
        self.config = GuestConfig::Json(config);
        self
    }

    /// Deliver these exact configuration bytes.
    pub fn config_raw(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.config = GuestConfig::Raw(config.into());
        self
    }

    /// Send log lines to `sink`.
    pub fn log_sink(mut self, sink: impl Fn(&LogLine) + Send + Sync + 'static) -> Self {
        self.log_sink = Some(Arc::new(sink));
        self
    }

    /// Record only lines at `level` or above.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// Set the fuel limit per call.
    pub fn fuel_limit(mut self, fuel: u64) -> Self {
        self.fuel_limit = fuel;
        self
    }

    /// Bound the number of instances.
    pub fn max_instances(mut self, max: usize) -> Self {
        self.max_instances = Some(max.max(1));
        self
    }

    /// Set the check policy.
    pub fn check(mut self, policy: CheckPolicy) -> Self {
        self.check = policy;
        self
    }

    /// Set where WASI stdio goes.
    pub fn stdio(mut self, stdio: Stdio) -> Self {
        self.stdio = stdio;
        self
    }
}

/// One guest instance: its store and typed entry points.
struct Instance {
    id: u64,
    store: Store<HostState>,
    memory: Memory,
    handle_request: TypedFunc<(), i64>,
    handle_response: TypedFunc<(i32, i32), ()>,
    start_fuel: u64,
    instantiated_memory_bytes: usize,
    /// The touch memory of a guest traced with
    /// `http_wasm_lower::touch::trace_touches`.
    touched: Option<Memory>,
    served: u64,
    /// Faithful mode: the guest fault that left this instance mid-request.
    /// Traefik keeps such an instance in its pool, and every later request
    /// it serves fails (notes/soak.md, finding 2).
    poisoned: Option<Error>,
}

/// Which instance served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Instances are numbered from 1 in order of creation.
    pub id: u64,
    /// Started for this request (its start-up ran first).
    pub fresh: bool,
    /// Fuel its `_start`/`_initialize` burned.
    pub start_fuel: u64,
    /// Its memory as instantiated (the module's declared minimum), before
    /// start-up ran: [`Exchange::memory_bytes`] above it means the guest
    /// grew its memory. Traefik's wazero grows by allocating a larger Go
    /// slice and copying, on every new instance that does.
    pub instantiated_memory_bytes: usize,
    /// Requests it served before this one.
    pub served_before: u64,
}

/// One request's trip through the guest, and what it cost.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What the client receives.
    pub response: Response,
    /// What next received, if the guest called it.
    pub backend_request: Option<Request>,
    /// The trap or ABI violation that ended the request, if any. The
    /// response is then a `500` whose body is this error's text.
    pub error: Option<Error>,
    /// The error happened after next, when Traefik would abort the
    /// connection (headers already sent) instead of sending a `500`.
    pub aborted: bool,
    /// `ctx` from `handle_request`'s result (passed to `handle_response`).
    pub ctx: u32,
    /// Whether `handle_response` was called with `is_error = 1`.
    pub next_failed: bool,
    /// Features in effect at the end of the request.
    pub features: Features,
    /// Fuel burned by `handle_request` + `handle_response`.
    pub fuel: u64,
    /// Guest memory size after the request, in bytes.
    pub memory_bytes: usize,
    /// Host calls made during the request, per import.
    pub host_calls: HostCalls,
    /// What the request touched, for a guest traced with
    /// `http_wasm_lower::touch::trace_touches` (both guest calls).
    pub touched: Option<Touched>,
    /// Lines the guest logged during the request.
    pub logs: Vec<LogLine>,
    /// The instance that served it.
    pub instance: InstanceInfo,
}

impl Exchange {
    /// Whether next was called.
    pub fn next_called(&self) -> bool {
        self.backend_request.is_some()
    }
}

/// The idle instances and the count of live ones.
struct Pool {
    idle: Mutex<Vec<Instance>>,
    freed: Condvar,
    live: AtomicUsize,
    created: AtomicU64,
}

struct Inner {
    engine: Engine,
    pre: InstancePre<HostState>,
    shared: Arc<Shared>,
    options: HostOptions,
    report: CompatReport,
    pool: Pool,
    first_start_fuel: u64,
}

/// A loaded http-wasm guest and its pool of instances. Cheap to clone;
/// `Send + Sync`.
#[derive(Clone)]
pub struct Guest {
    inner: Arc<Inner>,
}

impl fmt::Debug for Guest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guest")
            .field("faithful", &self.inner.options.faithful)
            .field("features", &self.features())
            .field("instances", &self.instances())
            .finish()
    }
}

/// One engine for the process: every guest shares its compiled code cache.
fn engine() -> Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).map_err(Error::host)?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// Compiled guests and what [`check::inspect`] found in them, by the
/// SHA-256 of their bytes: tests and the simulator load the same guest again
/// and again with other configs, and both the compile (0.3–1.2 s) and the
/// inspection (three passes over the module) depend on the bytes alone.
struct ModuleCache;

impl ModuleCache {
    /// Enough for every guest a test run or a simulation loads.
    const CAPACITY: usize = 32;

    fn entries() -> &'static Mutex<Vec<([u8; 32], CompatReport, Module)>> {
        static ENTRIES: Mutex<Vec<([u8; 32], CompatReport, Module)>> = Mutex::new(Vec::new());
        &ENTRIES
    }

    fn digest(wasm: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(wasm).into()
    }

    fn get(digest: &[u8; 32]) -> Option<(CompatReport, Module)> {
        let entries = Self::entries().lock().ok()?;
        let (_, report, module) = entries.iter().find(|(d, _, _)| d == digest)?;
        Some((report.clone(), module.clone()))
    }

    fn put(digest: [u8; 32], report: CompatReport, module: Module) {
        if let Ok(mut entries) = Self::entries().lock() {
            if entries.len() >= Self::CAPACITY {
                entries.remove(0);
            }
            entries.push((digest, report, module));
        }
    }
}

impl Guest {
    /// Compile, check, link, and start the first instance of `wasm`.
    pub fn load(wasm: &[u8], options: HostOptions) -> Result<Guest> {
        let digest = ModuleCache::digest(wasm);
        let cached = ModuleCache::get(&digest);
        let report = match &cached {
            Some((report, _)) => report.clone(),
            None => check::inspect(wasm)?,
        };
        if let Some(first) = report.abi_errors().into_iter().next() {
            return Err(first);
        }
        let policy = options.check.resolve(options.faithful);
        let problems = report.problems(policy);
        if let Some(refusal) = problems.iter().find(|p| p.severity == Severity::Error) {
            return Err(Error::Incompatible(refusal.to_string()));
        }
        let config = match &options.config {
            GuestConfig::None => Vec::new(),
            GuestConfig::Raw(bytes) => bytes.clone(),
            GuestConfig::Json(value) if options.faithful => traefik::config_bytes(value)?,
            GuestConfig::Json(value) => {
                serde_json::to_vec(value).map_err(|e| Error::Config(e.to_string()))?
            }
        };
        let shared = Arc::new(Shared {
            faithful: options.faithful,
            config,
            log_level: options.log_level,
            sink: options.log_sink.clone(),
            middleware_features: OnceLock::new(),
        });
        for warning in problems.iter().filter(|p| p.severity == Severity::Warning) {
            shared.emit(&LogLine {
                level: LogLevel::Warn,
                message: format!("check: {warning}"),
            });
        }

        let engine = engine()?;
        let module = match cached {
            Some((_, module)) => module,
            None => {
                let module =
                    Module::new(&engine, wasm).map_err(|e| Error::Compile(format!("{e:#}")))?;
                ModuleCache::put(digest, report.clone(), module.clone());
                module
            }
        };
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(Error::host)?;
        abi::add_to_linker(&mut linker).map_err(Error::host)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;

        let mut inner = Inner {
            engine,
            pre,
            shared,
            options,
            report,
            pool: Pool {
                idle: Mutex::new(Vec::new()),
                freed: Condvar::new(),
                live: AtomicUsize::new(0),
                created: AtomicU64::new(0),
            },
            first_start_fuel: 0,
        };
        // Start one instance now: it fails fast, and its start-up decides
        // the middleware's features (http-wasm-host-go does the same).
        inner.pool.live.fetch_add(1, Ordering::SeqCst);
        let first = inner.new_instance()?;
        let features = first.store.data().init_features;
        let _ = inner.shared.middleware_features.set(features);
        inner.first_start_fuel = first.start_fuel;
        let guest = Guest {
            inner: Arc::new(inner),
        };
        guest.inner.put(first);
        Ok(guest)
    }

    /// Run `request` through the guest; `backend` is what next calls.
    ///
    /// A trap or ABI violation is not an `Err`: it ends the request with a
    /// `500` whose body is the error text (as Traefik does) and is reported
    /// in [`Exchange::error`]. `Err` means the harness itself failed.
    pub fn handle(&self, request: Request, backend: &dyn Backend) -> Result<Exchange> {
        let inner = &self.inner;
        let (mut instance, fresh) = match inner.take() {
            Ok(taken) => taken,
            Err(error) if error.is_guest_fault() || matches!(error, Error::Instantiate(_)) => {
                // Go's HandleRequest fails before the guest runs: 500.
                let none = InstanceInfo {
                    id: 0,
                    fresh: true,
                    start_fuel: 0,
                    instantiated_memory_bytes: 0,
                    served_before: 0,
                };
                return Ok(inner.failed_before_guest(request, error, none, 0));
            }
            Err(other) => return Err(other),
        };
        let result = inner.run(&mut instance, request, backend, fresh);
        inner.put(instance);
        result
    }

    /// The compatibility report made at load.
    pub fn report(&self) -> &CompatReport {
        &self.inner.report
    }

    /// The options it was loaded with.
    pub fn options(&self) -> &HostOptions {
        &self.inner.options
    }

    /// The bytes `get_config` returns.
    pub fn config_bytes(&self) -> &[u8] {
        &self.inner.shared.config
    }

    /// The middleware's features (enabled by the first instance's start-up).
    pub fn features(&self) -> Features {
        self.inner.shared.middleware_features()
    }

    /// Instances alive now (idle or serving).
    pub fn instances(&self) -> usize {
        self.inner.pool.live.load(Ordering::SeqCst)
    }

    /// Idle instances in the pool now.
    pub fn idle_instances(&self) -> usize {
        self.inner.pool.idle.lock().map_or(0, |idle| idle.len())
    }

    /// Instances started since load, including dropped ones.
    pub fn instances_created(&self) -> u64 {
        self.inner.pool.created.load(Ordering::SeqCst)
    }

    /// Fuel the first instance's `_start`/`_initialize` burned (every
    /// instance's start-up costs about the same).
    pub fn start_fuel(&self) -> u64 {
        self.inner.first_start_fuel
    }

    /// Start instances until `count` are idle (bounded by `max_instances`).
    pub fn prewarm(&self, count: usize) -> Result<()> {
        let mut started = Vec::new();
        while self.idle_instances() + started.len() < count {
            if let Some(max) = self.inner.options.max_instances
                && self.instances() >= max
            {
                break;
            }
            self.inner.pool.live.fetch_add(1, Ordering::SeqCst);
            started.push(self.inner.new_instance()?);
        }
        for instance in started {
            self.inner.put(instance);
        }
        Ok(())
    }
}

/// Turn an error from a guest call into the harness's error.
fn guest_error(error: wasmtime::Error, function: &str, fuel_limit: u64) -> Error {
    if let Some(abi) = error.downcast_ref::<AbiTrap>() {
        return Error::Abi {
            import: abi.import.name(),
            message: abi.message.clone(),
        };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Error::Exit {
            function: function.to_owned(),
            code: exit.0,
        };
    }
    if let Some(Trap::OutOfFuel) = error.downcast_ref::<Trap>() {
        return Error::OutOfFuel {
            function: function.to_owned(),
            fuel: fuel_limit,
        };
    }
    // The cause first, then where: like wazero's "wasm error: unreachable"
    // followed by its "wasm stack trace".
    let mut message = error.root_cause().to_string();
    if let Some(trace) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        let trace = trace.to_string();
        if !trace.trim().is_empty() {
            message.push('\n');
            message.push_str(trace.trim_end());
        }
    }
    Error::Trap {
        function: function.to_owned(),
        message,
    }
}

impl Inner {
    /// An idle instance, or a new one; waits when `max_instances` are busy.
    fn take(&self) -> Result<(Instance, bool)> {
        let mut idle = self.pool.idle.lock().map_err(Error::host)?;
        loop {
            if let Some(instance) = idle.pop() {
                return Ok((instance, false));
            }
            let live = self.pool.live.load(Ordering::SeqCst);
            if self.options.max_instances.is_none_or(|max| live < max) {
                self.pool.live.fetch_add(1, Ordering::SeqCst);
                break;
            }
            idle = self.pool.freed.wait(idle).map_err(Error::host)?;
        }
        drop(idle);
        self.new_instance().map(|i| (i, true))
    }

    /// Give an instance back (after a trap too, as Traefik does).
    fn put(&self, instance: Instance) {
        match self.pool.idle.lock() {
            Ok(mut idle) if idle.len() < self.options.max_idle => idle.push(instance),
            _ => {
                drop(instance);
                self.pool.live.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.pool.freed.notify_one();
    }

    /// Instantiate and run `_start` then `_initialize` (whichever exist).
    /// The caller has already counted it in `live`.
    fn new_instance(&self) -> Result<Instance> {
        let result = self.start_instance();
        if result.is_err() {
            self.pool.live.fetch_sub(1, Ordering::SeqCst);
            self.pool.freed.notify_one();
        }
        result
    }

    fn start_instance(&self) -> Result<Instance> {
        let id = self.pool.created.fetch_add(1, Ordering::SeqCst) + 1;
        let mut wasi = WasiCtxBuilder::new();
        if self.options.stdio == Stdio::Inherit {
            wasi.inherit_stdout().inherit_stderr();
        }
        if self.options.faithful {
            wasi.secure_random(traefik::FakeRandom::new())
                .insecure_random(traefik::FakeRandom::new())
                .monotonic_clock(traefik::FakeMonotonicClock::new())
                .wall_clock(traefik::RealWallClock);
        }
        let state = HostState {
            wasi: wasi.build_p1(),
            memory: None,
            shared: Arc::clone(&self.shared),
            init_features: Features::NONE,
            request: None,
            calls: HostCalls::default(),
            logs: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let limit = self.options.fuel_limit;
        store.set_fuel(limit).map_err(Error::host)?;
        let instance =
            self.pre
                .instantiate(&mut store)
                .map_err(|e| match guest_error(e, "start", limit) {
                    Error::Trap { message, .. } => Error::Instantiate(message),
                    other => other,
                })?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or(Error::MissingExport {
                kind: "memory",
                name: "memory",
            })?;
        store.data_mut().memory = Some(memory);
        let instantiated_memory_bytes = memory.data_size(&store);
        let touched = instance.get_memory(&mut store, TOUCH_MEMORY);
        let handle_request = instance
            .get_typed_func::<(), i64>(&mut store, "handle_request")
            .map_err(|e| Error::Instantiate(e.to_string()))?;
        let handle_response = instance
            .get_typed_func::<(i32, i32), ()>(&mut store, "handle_response")
            .map_err(|e| Error::Instantiate(e.to_string()))?;
        for name in &self.report.start_functions {
            let start = instance
                .get_typed_func::<(), ()>(&mut store, name)
                .map_err(|e| Error::Instantiate(format!("{name}: {e}")))?;
            match start.call(&mut store, ()) {
                Ok(()) => {}
                Err(e) => match guest_error(e, name, limit) {
                    // proc_exit(0) ends start-up successfully.
                    Error::Exit { code: 0, .. } => {}
                    other => return Err(other),
                },
            }
        }
        let start_fuel = limit - store.get_fuel().map_err(Error::host)?;
        let logs = std::mem::take(&mut store.data_mut().logs);
        drop(logs); // already sent to the sink as they were logged
        store.data_mut().calls = HostCalls::default();
        Ok(Instance {
            id,
            store,
            memory,
            handle_request,
            handle_response,
            start_fuel,
            instantiated_memory_bytes,
            touched,
            served: 0,
            poisoned: None,
        })
    }

    /// One request through one instance.
    fn run(
        &self,
        instance: &mut Instance,
        request: Request,
        backend: &dyn Backend,
        fresh: bool,
    ) -> Result<Exchange> {
        if let Some(poison) = &instance.poisoned {
            return Ok(self.poisoned_exchange(instance, request, poison.clone()));
        }
        let limit = self.options.fuel_limit;
        let store = &mut instance.store;
        // A fresh instance's start-up features count for this request too.
        let features = self.shared.middleware_features().union(if fresh {
            store.data().init_features
        } else {
            Features::NONE
        });
        {
            let data = store.data_mut();
            data.request = Some(RequestState::new(request, features));
            data.calls = HostCalls::default();
            data.logs.clear();
        }
        store.set_fuel(limit).map_err(Error::host)?;
        if let Some(touched) = instance.touched {
            touched.data_mut(&mut *store).fill(0);
        }

        let mut error = None;
        let mut aborted = false;
        let mut backend_request = None;
        let mut next_failed = false;
        let mut ctx = 0;
        match instance.handle_request.call(&mut *store, ()) {
            Err(e) => error = Some(guest_error(e, "handle_request", limit)),
            Ok(ctx_next) => {
                let (c, next) = abi::unpack_ctx_next(ctx_next as u64);
                ctx = c;
                if next {
                    let state = request_state(store)?;
                    state.handle_request_returned();
                    let sent = state.request_for_next(self.shared.faithful);
                    let answer = backend.serve(&sent);
                    backend_request = Some(sent);
                    let state = request_state(store)?;
                    match answer {
                        Ok(response) => state.write_backend_response(response),
                        Err(_) => next_failed = true,
                    }
                    state.after_next = true;
                    let call = instance
                        .handle_response
                        .call(&mut *store, (ctx as i32, i32::from(next_failed)));
                    if let Err(e) = call {
                        let e = guest_error(e, "handle_response", limit);
                        let state = request_state(store)?;
                        aborted = state.wire.header_sent();
                        error = Some(e);
                    }
                }
            }
        }
        let fuel = limit.saturating_sub(store.get_fuel().map_err(Error::host)?);
        let data = store.data_mut();
        let mut state = data
            .request
            .take()
            .ok_or_else(|| Error::host("request state lost"))?;
        let features = state.features;
        let response = match &error {
            Some(e) if backend_request.is_some() => {
                // Traefik panics here (its recovery aborts the connection
                // or sends a bare 500); we report the error text like the
                // handle_request path so callers see one shape.
                Response::new(500).body(e.to_string())
            }
            Some(e) => {
                state.handle_request_returned();
                state.write_error(&e.to_string());
                state.finish()
            }
            None => {
                if backend_request.is_none() {
                    state.handle_request_returned();
                }
                state.finish()
            }
        };
        let exchange = Exchange {
            response,
            backend_request,
            error,
            aborted,
            ctx,
            next_failed,
            features,
            fuel,
            memory_bytes: instance.memory.data_size(&*store),
            host_calls: store.data().calls,
            touched: instance
                .touched
                .map(|touched| Touched::of(touched.data(&*store))),
            logs: std::mem::take(&mut store.data_mut().logs),
            instance: InstanceInfo {
                id: instance.id,
                fresh,
                start_fuel: instance.start_fuel,
                instantiated_memory_bytes: instance.instantiated_memory_bytes,
                served_before: instance.served,
            },
        };
        instance.served += 1;
        if self.shared.faithful
            && let Some(fault) = exchange.error.as_ref().filter(|e| poisons(e))
        {
            instance.poisoned = Some(fault.clone());
        }
        Ok(exchange)
    }

    /// A request to a poisoned instance: the guest is not entered, the
    /// client gets the `500` the first fault gave.
    fn poisoned_exchange(
        &self,
        instance: &mut Instance,
        request: Request,
        poison: Error,
    ) -> Exchange {
        let info = InstanceInfo {
            id: instance.id,
            fresh: false,
            start_fuel: instance.start_fuel,
            instantiated_memory_bytes: instance.instantiated_memory_bytes,
            served_before: instance.served,
        };
        let memory_bytes = instance.memory.data_size(&instance.store);
        instance.served += 1;
        self.failed_before_guest(request, poison, info, memory_bytes)
    }

    /// A request that fails before the guest runs: Go's `handleErr`, a
    /// `500` whose body is the error text.
    fn failed_before_guest(
        &self,
        request: Request,
        error: Error,
        instance: InstanceInfo,
        memory_bytes: usize,
    ) -> Exchange {
        let mut state = RequestState::new(request, self.shared.middleware_features());
        state.write_error(&error.to_string());
        Exchange {
            response: state.finish(),
            backend_request: None,
            error: Some(error),
            aborted: false,
            ctx: 0,
            next_failed: false,
            features: Features::NONE,
            fuel: 0,
            memory_bytes,
            host_calls: HostCalls::default(),
            touched: None,
            logs: Vec::new(),
            instance,
        }
    }
}

/// Whether a fault leaves a wazero instance unusable in Traefik: a trap
/// (an ABI violation is one there: the host function panics) or an exit.
/// Running out of fuel is the harness's own limit, unknown to Traefik.
fn poisons(error: &Error) -> bool {
    matches!(
        error,
        Error::Trap { .. } | Error::Abi { .. } | Error::Exit { .. }
    )
}

fn request_state(store: &mut Store<HostState>) -> Result<&mut RequestState> {
    store
        .data_mut()
        .request
        .as_mut()
        .ok_or_else(|| Error::host("request state lost"))
}
