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
//!
//! The price guests ([`PRICES`], `guests/price.wat`) make calls-returning's
//! host calls in a memory of Cohort's size and then one kind of guest work
//! each: a tight loop, straight-line code, cold memory lines, lines on
//! pages of their own. Against their `base` they price, on the machine and
//! in the host at hand, what Cohort's own work is made of.

use http_wasm_host::lower::touch::{TouchCounts, trace_touches};
use http_wasm_host::{Backend, CheckPolicy, Guest, HostOptions, Request, Response};
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

/// The price guests' template (`guests/price.wat`): `;; WORK` stands where
/// each guest's work goes, `;; DATA` where its data segments and
/// functions go.
pub const PRICE_WAT: &str = include_str!("../guests/price.wat");

/// Memory lines the `lines`, `chase` and `pages` price guests reach, each
/// request.
pub const PRICE_LINES: u32 = 40;

/// Functions the `far` price guest calls each request, each with code of
/// its own far from the others'.
pub const PRICE_FUNCTIONS: u32 = 16;

/// Guest instructions the `loop` and `code` price guests run beyond
/// `base`, each request (wasmtime fuel; asserted by the harness's tests).
pub const PRICE_INSTRUCTIONS: u64 = 3_472;

/// One price guest: what it does beyond `baseline`, and in what units its
/// cost is read.
pub struct Price {
    pub name: &'static str,
    pub work: &'static str,
    /// The price guest it is compared with.
    pub baseline: &'static str,
    /// How many `unit`s of work it does beyond `baseline`.
    pub units: f64,
    pub unit: &'static str,
}

/// The price guests; `base` is the others' baseline.
pub const PRICES: [Price; 7] = [
    Price {
        name: "base",
        work: "none: calls-returning's host calls in four pages of memory",
        baseline: "base",
        units: 0.0,
        unit: "-",
    },
    Price {
        name: "loop",
        work: "3,472 instructions of a 14-instruction loop, no memory",
        baseline: "base",
        units: PRICE_INSTRUCTIONS as f64 / 1000.0,
        unit: "1,000 instructions",
    },
    Price {
        name: "code",
        work: "3,472 instructions of straight-line code (868 global adds)",
        baseline: "base",
        units: PRICE_INSTRUCTIONS as f64 / 1000.0,
        unit: "1,000 instructions",
    },
    Price {
        name: "far",
        work: "16 calls, each to a function of its own, a never-called 4,000-instruction function between each two",
        baseline: "base",
        units: PRICE_FUNCTIONS as f64,
        unit: "function",
    },
    Price {
        name: "lines",
        work: "a load and a store on each of 40 adjacent 64-byte lines, on one page",
        baseline: "base",
        units: PRICE_LINES as f64,
        unit: "line",
    },
    Price {
        name: "chase",
        work: "a load on each of 40 adjacent lines, each line's address read from the one before",
        baseline: "base",
        units: PRICE_LINES as f64,
        unit: "line",
    },
    Price {
        name: "pages",
        work: "the same on 40 lines 6 KiB apart, each on a page of its own",
        baseline: "lines",
        units: (PRICE_LINES - 1) as f64,
        unit: "page",
    },
];

/// Price guest `name` ([`PRICES`]), compiled.
pub fn price_wasm(name: &str) -> Vec<u8> {
    // Each guest's work: WAT in place of `;; WORK`.
    let touch = |stride: u32| {
        format!(
            "(loop $l
      (local.set $x (i32.add (i32.const 16384) (i32.mul (local.get $i) (i32.const {stride}))))
      (i32.store (local.get $x) (i32.add (i32.load (local.get $x)) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {PRICE_LINES}))))"
        )
    };
    let work = match name {
        "base" => String::new(),
        "loop" => format!(
            "(loop $l
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 31)) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {}))))
    (global.set $acc (local.get $x))",
            PRICE_INSTRUCTIONS / 14
        ),
        "code" => (0..PRICE_INSTRUCTIONS / 4)
            .map(|k| format!("(global.set $acc (i32.add (global.get $acc) (i32.const {k})))"))
            .collect::<Vec<_>>()
            .join("\n    "),
        "far" => (0..PRICE_FUNCTIONS)
            .map(|k| format!("(call $far{k})"))
            .collect::<Vec<_>>()
            .join("\n    "),
        "lines" => touch(64),
        // Each load waits for the one before: no two misses overlap.
        "chase" => "(local.set $x (i32.const 16384))
    (loop $l
      (local.set $x (i32.load (local.get $x)))
      (br_if $l (local.get $x)))
    (global.set $acc (local.get $x))"
            .to_owned(),
        "pages" => touch(6 << 10),
        other => panic!("no price guest {other:?}"),
    };
    let data = match name {
        "chase" => chase_list(),
        "far" => far_functions(),
        _ => String::new(),
    };
    // The markers' own lines, not their mentions in the header comment.
    let source = PRICE_WAT
        .replace("\n    ;; WORK\n", &format!("\n    {work}\n"))
        .replace("\n  ;; DATA\n", &format!("\n  {data}\n"));
    wat::parse_str(source).expect("the price guests are valid WAT")
}

/// `chase`'s list: line k holds the address of line k + 1 (the last, 0).
fn chase_list() -> String {
    (0..PRICE_LINES)
        .map(|k| {
            let next = if k + 1 < PRICE_LINES {
                16384 + (k + 1) * 64
            } else {
                0
            };
            let bytes: String = next
                .to_le_bytes()
                .iter()
                .map(|b| format!("\\{b:02x}"))
                .collect();
            format!("(data (i32.const {}) \"{bytes}\")", 16384 + k * 64)
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// `far`'s functions: each adds to the accumulator, and a function of
/// straight-line code nobody calls stands between each two, so that each
/// lies on code pages of its own once compiled.
fn far_functions() -> String {
    (0..PRICE_FUNCTIONS)
        .map(|k| {
            let padding: String = (0..1000)
                .map(|j| format!("(global.set $acc (i32.add (global.get $acc) (i32.const {j})))"))
                .collect();
            format!(
                "(func $far{k} (global.set $acc (i32.add (global.get $acc) (i32.const {k}))))
  (func $pad{k} {padding})"
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// What `wasm` touches on its second run of `request` under `options`
/// (`http_wasm_lower::touch`): a traced copy, loaded with the compatibility
/// check off, since the trace's second memory is not for Traefik's wazero.
pub fn touched(
    wasm: &[u8],
    options: HostOptions,
    request: &Request,
) -> Result<TouchCounts, Box<dyn std::error::Error>> {
    let traced = Guest::load(&trace_touches(wasm)?, options.check(CheckPolicy::Off))?;
    let backend = ok_backend();
    traced.handle(request.clone(), &backend)?;
    let touched = traced.handle(request.clone(), &backend)?.touched;
    Ok(touched
        .ok_or("the traced guest exports no touch memory")?
        .counts())
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
