//! A wasmtime host for [http-wasm] guests that behaves like Traefik's.
//!
//! Traefik 3.7 runs wasm middleware through http-wasm-host-go on wazero
//! 1.8. This crate runs the same guests on wasmtime, as a library for
//! tests, benchmarks, a CLI and a reverse proxy, and reproduces Traefik's
//! host where it differs from a naive one (see [`HostOptions::faithful`]).
//!
//! ```no_run
//! use cohort_harness::{EchoBackend, Guest, HostOptions, Request};
//!
//! # fn main() -> cohort_harness::Result<()> {
//! let wasm = std::fs::read("plugin.wasm").expect("a guest");
//! let guest = Guest::load(&wasm, HostOptions::default().config_json(serde_json::json!({"percent": 10})))?;
//! let backend = EchoBackend::new();
//! let exchange = guest.handle(Request::get("/").header("Cookie", "a=b"), &backend)?;
//! println!("{} after {} fuel", exchange.response.status, exchange.fuel);
//! # Ok(())
//! # }
//! ```
//!
//! * [`model`]: [`Request`], [`Response`], [`Headers`], the [`Backend`]
//!   that "next" calls and the recording [`EchoBackend`].
//! * [`host`]: [`Guest`] (load, pool, [`Guest::handle`]) and [`Exchange`]
//!   (the response plus what it cost).
//! * [`abi`]: the host functions, the ABI table and its bit-packing.
//! * [`check`]: the load-time compatibility check ([`check::inspect`]).
//! * [`traefik`]: Traefik-faithful pieces (config stringification, fake
//!   random, fake monotonic clock).
//! * [`run`], [`proxy`], [`simulate`], [`package`], [`report`]: what the
//!   `cohort-harness` CLI does (one request, a reverse proxy, synthetic
//!   traffic, the plugin-catalog zip and ConfigMap, a report on Traefik's
//!   access log), as library code.
//!
//! [http-wasm]: https://http-wasm.io

pub use http_wasm_host::{abi, check, error, host, lower, model, traefik};

/// Paths and sizes of the guest `build.rs` built: [`artifacts::PLUGIN_WASM`]
/// is the shipped `plugin.wasm` (bulk memory lowered),
/// [`artifacts::PLUGIN_WASM_UNLOWERED`] the compiler's output.
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}

pub mod package;
pub mod proxy;
pub mod report;
pub mod run;
pub mod simulate;
pub mod whoami;

pub use http_wasm_host::{
    Backend, BackendError, BodyKind, CheckPolicy, CompatReport, EchoBackend, Error, Exchange,
    Features, Guest, GuestConfig, HeaderKind, Headers, HostCalls, HostOptions, Import,
    InstanceInfo, LogLevel, LogLine, LogSink, Request, Response, Result, Stdio,
};
