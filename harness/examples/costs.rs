//! What Cohort costs per request and per instance, next to a no-op guest
//! and the calls-only guests (`benches/calls-*.wat`, which make Cohort's
//! host calls for one shape and nothing else): host calls, guest
//! instructions (wasmtime fuel) and memory, for every request shape of the
//! benchmarks (`harness/test-support/src/shapes.rs`), in the Traefik-faithful
//! host.
//!
//! ```text
//! cargo run --release -p cohort-harness --example costs
//! ```
//!
//! `COHORT_WASM=path/to/cohort-plugin.wasm` measures another build of the
//! guest instead (bulk memory is lowered first, as the build does), to
//! compare variants.
//!
//! `COSTS_DETAIL=CONFIG/SHAPE` (e.g. `testdata/browser-returning`) also
//! lists what Cohort touched on that row: each line's address and each
//! function, by name when the build kept its `name` section (build the
//! plugin with `--config 'profile.wasm.strip=false'` and pass it as
//! `COHORT_WASM`).
//!
//! Fuel is deterministic (one unit per wasm instruction, roughly), so this
//! table does not depend on the machine's load; the timings of the same
//! shapes are in `cargo bench -p cohort-harness --bench guest`.

use std::collections::BTreeMap;

use cohort_harness::check::CheckPolicy;
use cohort_harness::lower::touch::{
    LINE_BYTES, Touched, data_extent, function_bodies, function_names, trace_touches,
};
use cohort_harness::{Guest, HostOptions, Import, artifacts};
use cohort_test_support::bench as shapes;

type BoxError = Box<dyn std::error::Error>;

struct Row {
    guest: &'static str,
    config: &'static str,
    shape: &'static str,
    status: u16,
    calls: u64,
    detail: String,
    fuel: u64,
    memory: usize,
    touched: Touched,
    /// The guest's data segments, `[start, end)`: lines below are its
    /// shadow stack (stack first), lines above its heap.
    data: Option<(u32, u32)>,
    writes: String,
}

fn main() -> Result<(), BoxError> {
    let cohort = match std::env::var_os("COHORT_WASM") {
        Some(path) => cohort_harness::lower::lower_bulk_memory(&std::fs::read(path)?)?,
        None => std::fs::read(artifacts::PLUGIN_WASM)?,
    };
    let noop = shapes::noop_wasm();
    let backend = shapes::ok_backend();

    // Each guest twice: as built, and traced for the memory it touches.
    let traced_cohort = trace_touches(&cohort)?;
    let cohort_data = data_extent(&cohort)?;
    let mut guests: BTreeMap<&str, (Guest, Guest)> = BTreeMap::new();
    for config in shapes::configs() {
        let options = HostOptions::traefik().config_json(shapes::config(config));
        let pair = (
            Guest::load(&cohort, options.clone())?,
            Guest::load(&traced_cohort, options.check(CheckPolicy::Off))?,
        );
        guests.insert(config, pair);
    }
    let both = |wasm: &[u8]| -> Result<(Guest, Guest), BoxError> {
        Ok((
            Guest::load(wasm, HostOptions::traefik())?,
            // The trace's second memory is not for Traefik's wazero.
            Guest::load(
                &trace_touches(wasm)?,
                HostOptions::traefik().check(CheckPolicy::Off),
            )?,
        ))
    };
    let noop_guest = both(&noop)?;
    let mut calls_only: BTreeMap<&str, (Guest, Guest)> = BTreeMap::new();
    for (name, ..) in shapes::CALLS_ONLY {
        calls_only.insert(name, both(&shapes::calls_only_wasm(name))?);
    }

    let mut rows = Vec::new();
    let mut same_calls = Vec::new();
    for (config, shape, request) in shapes::shapes() {
        let mut run: Vec<(&str, &(Guest, Guest))> = vec![("cohort", &guests[config])];
        // The no-op guest has no configuration: once per browser shape.
        if config == "recipe" && shape.starts_with("browser-") {
            run.push(("no-op", &noop_guest));
        }
        if let Some(name) = shapes::calls_only_for(config, shape) {
            run.push((name, &calls_only[name]));
        }
        let mut cohort_calls = None;
        for (name, (guest, traced)) in run {
            // Warm: the second request on an instance is the steady state.
            guest.handle(request.clone(), &backend)?;
            let exchange = guest.handle(request.clone(), &backend)?;
            traced.handle(request.clone(), &backend)?;
            let touched = traced
                .handle(request.clone(), &backend)?
                .touched
                .ok_or("the traced guest exports no touch memory")?;
            // Only Cohort's memory is split (the others touch a line or two).
            let data = (name == "cohort").then_some(cohort_data).flatten();
            if let Some(error) = &exchange.error {
                return Err(format!("{name} {config}/{shape}: {error}").into());
            }
            let calls = exchange.host_calls;
            match cohort_calls {
                None => cohort_calls = Some(calls),
                Some(cohort) if name != "no-op" => {
                    same_calls.push((name, config, shape, cohort, calls));
                }
                Some(_) => {}
            }
            let detail = calls
                .iter()
                .map(|(import, n)| format!("{}{}", short(import), times(n)))
                .collect::<Vec<_>>()
                .join(" ");
            let backend_request = exchange.backend_request.as_ref();
            let cohort_header = backend_request
                .and_then(|r| r.headers.get("X-Canary"))
                .unwrap_or("-");
            let set_cookies = exchange.response.headers.get_all("Set-Cookie").len();
            rows.push(Row {
                guest: name,
                // The no-op guest has no configuration.
                config: if name == "no-op" { "-" } else { config },
                shape,
                status: exchange.response.status,
                calls: calls.total(),
                detail,
                fuel: exchange.fuel,
                memory: exchange.memory_bytes,
                touched,
                data,
                writes: format!("X-Canary={cohort_header}, {set_cookies} Set-Cookie"),
            });
        }
    }

    println!("## Per request (Traefik-faithful harness, second request on a warm instance)\n");
    println!(
        "Every request also costs the host two guest calls (`handle_request`, `handle_response`); \
         \"host calls\" are the guest's calls into the host's `http_handler` imports \
         (WASI calls such as the clock are not counted).\n"
    );
    println!(
        "\"lines\" are the distinct 64-byte lines of its memory the guest loads or stores \
         during the request, \"functions\" the distinct functions it enters and \"calls\" how \
         many times it enters one, \"code lines\" the 64-byte lines of its code that run \
         (a traced copy of the guest, `http_wasm_lower::touch`): in Traefik an instance waits in a pool between \
         requests, so most of what it touches is cold in the CPU's caches. \
         \"pages\" are the distinct 4 KiB pages those lines lie in (each a TLB entry); \
         \"stack/data/heap\" splits Cohort's lines by where they lie (the shadow stack comes \
         first in its memory; the zero-initialised statics and the heap after the data).\n"
    );
    println!(
        "| guest | config | request shape | status | host calls | which | fuel | lines | pages | stack/data/heap | functions | calls | code lines | memory | result |"
    );
    println!("|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} KiB | {} |",
            r.guest,
            r.config,
            r.shape,
            r.status,
            r.calls,
            if r.detail.is_empty() { "-" } else { &r.detail },
            group(r.fuel),
            r.touched.lines.len(),
            r.touched.counts().pages,
            split(&r.touched.lines, r.data),
            r.touched.functions.len(),
            r.touched.entries,
            r.touched.code_lines.len(),
            r.memory / 1024,
            r.writes,
        );
    }

    for (name, config, shape, cohort, calls) in &same_calls {
        if cohort == calls {
            println!("\n{name} makes the host calls Cohort makes for {config}/{shape}: {calls}.");
        } else {
            println!(
                "\n**{name} does not make the host calls Cohort makes for {config}/{shape}**: \
                 Cohort {cohort}, {name} {calls}; `benches/{name}.wat` needs updating."
            );
        }
    }

    if let Ok(detail) = std::env::var("COSTS_DETAIL") {
        let names = function_names(&cohort)?;
        let bodies = function_bodies(&cohort)?;
        for r in rows
            .iter()
            .filter(|r| r.guest == "cohort" && format!("{}/{}", r.config, r.shape) == detail)
        {
            println!("\n## What Cohort touched on {detail}\n");
            let lines: Vec<String> = r
                .touched
                .lines
                .iter()
                .map(|at| format!("{at:#x}"))
                .collect();
            println!(
                "lines ({}): {}\n",
                split(&r.touched.lines, r.data),
                lines.join(" ")
            );
            // The traced copy charges what wasmtime does, split by function:
            // its sum is the request's fuel above.
            let total: u64 = r.touched.fuel.iter().map(|(_, fuel)| fuel).sum();
            println!(
                "{} code lines in {} stretches of adjacent lines\n",
                r.touched.code_lines.len(),
                r.touched.code_stretches()
            );
            println!("fuel by function (sum {}):\n", group(total));
            let mut fuel = r.touched.fuel.clone();
            fuel.sort_by_key(|&(f, fuel)| (std::cmp::Reverse(fuel), f));
            for (f, fuel) in fuel {
                let name = names.get(&f).map_or("?", String::as_str);
                // The code lines that overlap this function's body.
                let code = bodies
                    .iter()
                    .find(|(index, _)| *index == f)
                    .map_or(0, |(_, body)| {
                        let lines = r.touched.code_lines.iter();
                        lines
                            .filter(|&&at| {
                                u64::from(at) < body.end && u64::from(at + LINE_BYTES) > body.start
                            })
                            .count()
                    });
                println!(
                    "- function {f}: {} fuel, {code} code lines, {name}",
                    group(fuel)
                );
            }
        }
    }

    println!("\n## Per instance start (`_start`: config parse and validation)\n");
    println!("| guest | config | start-up fuel | module size |");
    println!("|---|---|---:|---:|");
    for (config, (guest, _)) in &guests {
        println!(
            "| cohort | {config} | {} | {} bytes |",
            group(guest.start_fuel()),
            group(cohort.len() as u64)
        );
    }
    println!(
        "| no-op | - | {} | {} bytes |",
        group(noop_guest.0.start_fuel()),
        group(noop.len() as u64)
    );
    println!(
        "\nplugin.wasm (as built by the harness): {} bytes; {} bytes before bulk-memory lowering",
        group(artifacts::PLUGIN_WASM_LEN as u64),
        group(artifacts::PLUGIN_WASM_UNLOWERED_LEN as u64),
    );
    Ok(())
}

fn short(import: Import) -> &'static str {
    match import {
        Import::GetHeaderValues => "get_header",
        Import::SetHeaderValue => "set_header",
        Import::AddHeaderValue => "add_header",
        other => other.name(),
    }
}

fn times(n: u64) -> String {
    if n == 1 {
        String::new()
    } else {
        format!("×{n}")
    }
}

/// `1234567` → `1 234 567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `stack/data/heap`: how many of `lines` lie below, in and above the data
/// segments' extent; `-` without one.
fn split(lines: &[u32], data: Option<(u32, u32)>) -> String {
    let Some((start, end)) = data else {
        return "-".into();
    };
    let stack = lines.iter().filter(|&&at| at < start).count();
    let heap = lines.iter().filter(|&&at| at >= end).count();
    format!("{stack}/{}/{heap}", lines.len() - stack - heap)
}
