//! What Cohort costs per request and per instance, next to a no-op guest:
//! host calls, guest instructions (wasmtime fuel) and memory, for every
//! request shape of the benchmarks, in the Traefik-faithful host.
//!
//! ```text
//! cargo run --release -p cohort-harness --example costs
//! ```
//!
//! `COHORT_WASM=path/to/cohort-plugin.wasm` measures another build of the
//! guest instead (bulk memory is lowered first, as the build does), to
//! compare variants.
//!
//! Fuel is deterministic (one unit per wasm instruction, roughly), so this
//! table does not depend on the machine's load; the timings of the same
//! shapes are in `cargo bench -p cohort-harness --bench guest`.

#[path = "../benches/common/shapes.rs"]
mod shapes;

use std::collections::BTreeMap;

use cohort_harness::{Guest, HostOptions, Import, artifacts};

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
    writes: String,
}

fn main() -> Result<(), BoxError> {
    let cohort = match std::env::var_os("COHORT_WASM") {
        Some(path) => cohort_harness::lower::lower_bulk_memory(&std::fs::read(path)?)?,
        None => std::fs::read(artifacts::PLUGIN_WASM)?,
    };
    let noop = shapes::noop_wasm();
    let backend = shapes::ok_backend();

    let mut guests: BTreeMap<&str, Guest> = BTreeMap::new();
    for config in shapes::CONFIGS {
        let options = HostOptions::traefik().config_json(shapes::config(config));
        guests.insert(config, Guest::load(&cohort, options)?);
    }
    let noop_guest = Guest::load(&noop, HostOptions::traefik())?;

    let mut rows = Vec::new();
    for (config, shape, request) in shapes::shapes() {
        for (name, guest) in [("cohort", &guests[config]), ("no-op", &noop_guest)] {
            if name == "no-op" && config != "seed" {
                continue; // the no-op guest has no configuration
            }
            // Warm: the second request on an instance is the steady state.
            guest.handle(request.clone(), &backend)?;
            let exchange = guest.handle(request.clone(), &backend)?;
            if let Some(error) = &exchange.error {
                return Err(format!("{name} {config}/{shape}: {error}").into());
            }
            let calls = exchange.host_calls;
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
                config,
                shape,
                status: exchange.response.status,
                calls: calls.total(),
                detail,
                fuel: exchange.fuel,
                memory: exchange.memory_bytes,
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
        "| guest | config | request shape | status | host calls | which | fuel | memory | result |"
    );
    println!("|---|---|---|---:|---:|---|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} KiB | {} |",
            r.guest,
            r.config,
            r.shape,
            r.status,
            r.calls,
            if r.detail.is_empty() { "-" } else { &r.detail },
            group(r.fuel),
            r.memory / 1024,
            r.writes,
        );
    }

    println!("\n## Per instance start (`_start`: config parse and validation)\n");
    println!("| guest | config | start-up fuel | module size |");
    println!("|---|---|---:|---:|");
    for (config, guest) in &guests {
        println!(
            "| cohort | {config} | {} | {} bytes |",
            group(guest.start_fuel()),
            group(cohort.len() as u64)
        );
    }
    println!(
        "| no-op | - | {} | {} bytes |",
        group(noop_guest.start_fuel()),
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
