//! The guests, configurations and request shapes, as host values, that
//! the harness benchmarks (`harness/benches/guest.rs`), the cost report
//! (`harness/examples/costs.rs`) and the guests `scripts/bench-traefik.sh`
//! loads (`harness/examples/bench_guests.rs`) share (feature `host`). The
//! configurations and shapes themselves are [`crate::shapes`], which
//! `plugin/benches/decision.rs` runs natively.
//!
//! Besides Cohort there are WAT guests that price the host alone:
//! `guests/noop.wat` (no host call at all) and the calls-only guests, which make
//! exactly the `http_handler` calls Cohort makes for one request shape and
//! nothing else (`guests/calls-returning.wat`, `guests/calls-new.wat`). Cohort minus a
//! calls-only guest is Cohort's own work; the calls-only guest minus the
//! no-op guest is what those host calls cost.

use http_wasm_host::{Backend, Request, Response};
use serde_json::Value;

/// The no-op guest's source (`guests/noop.wat`).
pub const NOOP_WAT: &str = include_str!("../guests/noop.wat");

/// The no-op guest, compiled.
pub fn noop_wasm() -> Vec<u8> {
    wat::parse_str(NOOP_WAT).expect("guests/noop.wat is valid WAT")
}

/// The calls-only guests: `(name, config, shape, WAT)`: a guest making
/// Cohort's host calls for request `shape` under configuration `config`.
pub const CALLS_ONLY: [(&str, &str, &str, &str); 2] = [
    (
        "calls-returning",
        "testdata",
        "browser-returning",
        include_str!("../guests/calls-returning.wat"),
    ),
    (
        "calls-new",
        "testdata",
        "browser-new",
        include_str!("../guests/calls-new.wat"),
    ),
];

/// Calls-only guest `name`, compiled.
pub fn calls_only_wasm(name: &str) -> Vec<u8> {
    let (_, _, _, source) = CALLS_ONLY
        .iter()
        .find(|(n, ..)| *n == name)
        .expect("a calls-only guest of that name");
    wat::parse_str(source).expect("guests/calls-*.wat are valid WAT")
}

/// The calls-only guest for `(config, shape)`, if there is one.
pub fn calls_only_for(config: &str, shape: &str) -> Option<&'static str> {
    CALLS_ONLY
        .iter()
        .find(|(_, c, s, _)| *c == config && *s == shape)
        .map(|(name, ..)| *name)
}

/// The configurations' names ([`crate::shapes`]).
pub fn configs() -> impl Iterator<Item = &'static str> {
    shared::CONFIGS.iter().map(|(name, _)| *name)
}

/// Cohort's configuration `name`, as JSON with native types; the
/// Traefik-faithful host stringifies its scalars as Traefik does.
pub fn config(name: &str) -> Value {
    serde_json::from_str(shared::config_json(name)).expect("configs/*.json are valid JSON")
}

use crate::shapes as shared;

impl shared::Shape for Request {
    fn get(uri: &str) -> Self {
        Request::get(uri)
            .header("Host", shared::HOST)
            .source_addr(shared::SOURCE_ADDR)
    }

    fn header(self, name: &'static str, value: String) -> Self {
        Request::header(self, name, value)
    }
}

/// `(config, shape, request)` for every request shape
/// ([`crate::shapes`]).
pub fn shapes() -> Vec<(&'static str, &'static str, Request)> {
    shared::shapes()
}

/// The request of `(config, shape)`.
pub fn shape(config: &str, shape: &str) -> Request {
    shapes()
        .into_iter()
        .find(|(c, s, _)| *c == config && *s == shape)
        .map(|(_, _, request)| request)
        .expect("a request shape of that configuration and name")
}

/// The cheapest backend: `200`, no body, nothing recorded.
pub fn ok_backend() -> impl Backend {
    |_: &Request| Response::new(200)
}
