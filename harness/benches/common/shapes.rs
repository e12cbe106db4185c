//! The guest configurations, and the request shapes as harness requests,
//! that the harness benchmarks (`benches/guest.rs`) and the cost report
//! (`examples/costs.rs`) share. The shapes themselves are
//! `plugin/benches/common/shapes.rs`, which `plugin/benches/decision.rs`
//! runs natively.
//!
//! - "seed": Cohort configured as in
//!   `recipes/file/flat-routers.yml` (50/50, key
//!   `header:X-User-Id`, request header `X-Canary`, cookie `canary`).
//! - "full": the seed plus an override header (`X-Cohort`) and query
//!   parameter (`cohort`), and excluded paths.
//! - "reevaluate": the seed with `stickiness: reevaluate`, which keeps a
//!   generated visitor id in `cohort_id` (a second `Set-Cookie`).

#![allow(dead_code)]

use cohort_harness::{Backend, Request, Response};
use serde_json::{Value, json};

/// The no-op guest's source (`benches/noop.wat`).
pub const NOOP_WAT: &str = include_str!("../noop.wat");

/// The no-op guest, compiled.
pub fn noop_wasm() -> Vec<u8> {
    wat::parse_str(NOOP_WAT).expect("benches/noop.wat is valid WAT")
}

/// The configurations below, by name.
pub const CONFIGS: [&str; 3] = ["seed", "full", "reevaluate"];

/// Cohort's configuration `name` (one of [`CONFIGS`]).
pub fn config(name: &str) -> Value {
    let mut config = json!({
        "seed": "my-app-canary-2026",
        "variants": [{"name": "v1", "weight": 50}, {"name": "v2", "weight": 50}],
        "cookie": {
            "name": "canary", "maxAge": 2592000, "path": "/",
            "secure": true, "httpOnly": true, "sameSite": "lax"
        },
        "header": "X-Canary",
        "keys": ["header:X-User-Id"],
    });
    match name {
        "full" => {
            config["override"] = json!({"header": "X-Cohort", "query": "cohort"});
            config["exclude"] = json!({"paths": ["^/(healthz|metrics)$", "^/static/"]});
        }
        "reevaluate" => config["stickiness"] = json!("reevaluate"),
        _ => {}
    }
    config
}

#[path = "../../../plugin/benches/common/shapes.rs"]
mod shared;

impl shared::Shape for Request {
    fn get(uri: &str) -> Self {
        Request::get(uri)
            .header("Host", shared::HOST)
            .header("User-Agent", shared::USER_AGENT)
            .source_addr(shared::SOURCE_ADDR)
    }

    fn header(self, name: &'static str, value: String) -> Self {
        Request::header(self, name, value)
    }
}

/// `(config, shape, request)` for every request shape
/// (`plugin/benches/common/shapes.rs`).
pub fn shapes() -> Vec<(&'static str, &'static str, Request)> {
    shared::shapes()
}

/// The cheapest backend: `200`, no body, nothing recorded.
pub fn ok_backend() -> impl Backend {
    |_: &Request| Response::new(200)
}
