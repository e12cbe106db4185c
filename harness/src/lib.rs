//! Cohort's own tools on top of [`http_wasm_host`]: the `cohort-harness`
//! CLI and the test driver of Cohort's suite.
//!
//! The general http-wasm host (ABI, model, instance pool, compatibility
//! check, Traefik profile, lowering) is the `http-wasm-host` crate, which
//! knows nothing of Cohort; this crate re-exports it so that Cohort's tools
//! and tests have one name to import from. What is Cohort's lives here:
//!
//! * [`artifacts`]: the `plugin.wasm` that `build.rs` builds from the
//!   plugin's sources (bulk memory lowered), so `cargo test` always tests
//!   the guest as it is now.
//! * [`run`], [`proxy`], [`simulate`], [`package`], [`report`], [`whoami`]:
//!   what the CLI does (one request, a reverse proxy, synthetic traffic,
//!   the plugin-catalog zip and ConfigMap, a report on Traefik's access
//!   log, whoami backends), as library code with [`anyhow`] errors.
//!
//! Cohort through the host, as Traefik would run it:
//!
//! ```
//! use cohort_harness::{EchoBackend, Guest, HostOptions, Request, artifacts};
//! use serde_json::json;
//!
//! let wasm = std::fs::read(artifacts::PLUGIN_WASM)?;
//! let config = json!({
//!     "seed": "docs",
//!     "variants": [
//!         {"name": "v1", "default": true},
//!         {"name": "v2", "weight": 10, "state": "active"}
//!     ]
//! });
//! let guest = Guest::load(&wasm, HostOptions::traefik().config_json(config))?;
//! let backend = EchoBackend::new();
//! let exchange = guest.handle(Request::get("/").header("Cookie", "canary=v2"), &backend)?;
//! // A returning visitor keeps the cohort its cookie names, and its
//! // backend is told which one that is.
//! let seen = exchange.backend_request.expect("Cohort calls next");
//! assert_eq!(seen.headers.get("X-Canary"), Some("v2"));
//! assert_eq!(exchange.response.status, 200);
//! # Ok::<(), anyhow::Error>(())
//! ```

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
