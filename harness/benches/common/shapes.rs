//! The request shapes and guest configurations the harness benchmarks
//! (`benches/guest.rs`) and the cost report (`examples/costs.rs`) share.
//! `plugin/benches/decision.rs` runs the same shapes natively.
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

/// A visitor id as Cohort generates them (32 hex digits).
pub const VISITOR: &str = "0123456789abcdef0123456789abcdef";

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

fn get(uri: &str) -> Request {
    Request::get(uri)
        .header("Host", "my-app.example.com")
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .source_addr("192.0.2.10:40000")
}

/// A returning visitor: the cohort cookie (`keep` keeps no visitor id).
fn returning() -> Request {
    get("/").header("Cookie", "canary=v1")
}

/// A returning visitor under `reevaluate`: the cohort and the kept id.
fn returning_with_id() -> Request {
    get("/").header("Cookie", format!("canary=v1; cohort_id={VISITOR}"))
}

/// `(config, shape, request)` for every request shape.
pub fn shapes() -> Vec<(&'static str, &'static str, Request)> {
    let thirty = (0..30)
        .map(|i| format!("_ga_{i:02}=GA1.2.{}.1700000000", 1_000_000 + i))
        .collect::<Vec<_>>()
        .join("; ");
    let big = format!("_analytics={}; canary=v1", "x".repeat(4096 - 60));
    vec![
        ("seed", "new-visitor", get("/")),
        ("seed", "returning", returning()),
        (
            "seed",
            "30-cookies",
            get("/").header("Cookie", format!("{thirty}; canary=v1")),
        ),
        (
            "seed",
            "new-30-cookies",
            get("/").header("Cookie", thirty.clone()),
        ),
        ("seed", "4kb-cookie", get("/").header("Cookie", big)),
        ("reevaluate", "new-visitor", get("/")),
        ("reevaluate", "returning", returning_with_id()),
        ("full", "returning", returning()),
        ("full", "override", returning().header("X-Cohort", "v2")),
        ("full", "excluded", get("/healthz")),
    ]
}

/// The cheapest backend: `200`, no body, nothing recorded.
pub fn ok_backend() -> impl Backend {
    |_: &Request| Response::new(200)
}
