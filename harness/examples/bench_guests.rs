//! Writes the guests `scripts/bench-traefik.sh` loads into Traefik:
//! `DIR/cohort.wasm` (the shipped `plugin.wasm` this build made),
//! `DIR/noop.wasm` (`benches/noop.wat`) and the calls-only guests
//! `DIR/calls-returning.wasm` and `DIR/calls-new.wasm`
//! (`benches/calls-*.wat`: Cohort's host calls for one request shape and
//! nothing else), compiled.
//!
//! ```text
//! cargo run --release -p cohort-harness --example bench_guests -- DIR [NAME=PATH ...]
//! ```
//!
//! The price guests (`guests/price.wat`, [`shapes::PRICES`]) go to
//! `DIR/price-NAME.wasm`, with `DIR/prices.tsv` saying what each prices
//! (name, baseline, units, unit, work), and `DIR/counts.tsv` gives what
//! Cohort and the calls-only guests do on each calls-only shape in the
//! harness (guest, config, shape, fuel, lines, pages, functions), so that
//! the report can set Cohort's own work against the prices.
//!
//! Each `NAME=PATH` (another build of the plugin, to compare) is written
//! to `DIR/NAME.wasm` with bulk memory lowered, as the build lowers the
//! shipped one.
//!
//! Each calls-only guest is run next to Cohort on its request shape in the
//! Traefik-faithful harness; when their host calls differ it says so on
//! stderr (the benchmark then prices other calls than Cohort's).

use std::path::PathBuf;

use cohort_harness::lower::touch::TouchCounts;
use cohort_harness::{Guest, HostOptions, artifacts, check};
use cohort_test_support::bench as shapes;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: bench_guests DIR [NAME=PATH ...]")?,
    );
    std::fs::create_dir_all(&dir)?;
    let cohort = std::fs::read(artifacts::PLUGIN_WASM)?;
    // Each must pass the harness's Traefik compatibility check and start.
    let mut guests = vec![
        ("cohort".to_owned(), cohort.clone()),
        ("noop".to_owned(), shapes::noop_wasm()),
    ];
    for (name, ..) in shapes::CALLS_ONLY {
        guests.push((name.to_owned(), shapes::calls_only_wasm(name)));
    }
    let mut prices = String::new();
    for price in &shapes::PRICES {
        guests.push((
            format!("price-{}", price.name),
            shapes::price_wasm(price.name),
        ));
        prices.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            price.name, price.baseline, price.units, price.unit, price.work
        ));
    }
    std::fs::write(dir.join("prices.tsv"), prices)?;
    for extra in args {
        let (name, path) = extra.split_once('=').ok_or("extra guests are NAME=PATH")?;
        let wasm = cohort_harness::lower::lower_bulk_memory(&std::fs::read(path)?)?;
        guests.push((name.to_owned(), wasm));
    }
    for (name, wasm) in &guests {
        let report = check::inspect(wasm)?;
        let configured =
            name != "noop" && !name.starts_with("calls-") && !name.starts_with("price-");
        let options = if configured {
            HostOptions::traefik().config_json(shapes::config("recipe"))
        } else {
            HostOptions::traefik()
        };
        Guest::load(wasm, options).map_err(|e| format!("{name}: {e}\n{report}"))?;
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, wasm)?;
        println!("{} ({} bytes)", path.display(), wasm.len());
    }
    let mut counts = String::new();
    for (name, config, shape, _) in shapes::CALLS_ONLY {
        compare_calls(&cohort, name, config, shape)?;
        for (guest, wasm, configured) in [
            ("cohort", cohort.clone(), true),
            (name, shapes::calls_only_wasm(name), false),
        ] {
            let (fuel, touched) = touched(&wasm, configured, config, shape)?;
            counts.push_str(&format!(
                "{guest}\t{config}\t{shape}\t{fuel}\t{}\t{}\t{}\n",
                touched.lines, touched.pages, touched.functions
            ));
        }
    }
    std::fs::write(dir.join("counts.tsv"), counts)?;
    Ok(())
}

/// The fuel and the touch counts of `wasm` on its second request of
/// `shape` (one of `config`'s), configured with `config` when `configured`
/// (the calls-only guests take no configuration).
fn touched(
    wasm: &[u8],
    configured: bool,
    config: &str,
    shape: &str,
) -> Result<(u64, TouchCounts), BoxError> {
    let options = if configured {
        HostOptions::traefik().config_json(shapes::config(config))
    } else {
        HostOptions::traefik()
    };
    let request = shapes::shape(config, shape);
    let backend = shapes::ok_backend();
    let plain = Guest::load(wasm, options.clone())?;
    plain.handle(request.clone(), &backend)?;
    let fuel = plain.handle(request.clone(), &backend)?.fuel;
    let counts = shapes::touched(wasm, options, &request)?;
    Ok((fuel, counts))
}

/// Runs Cohort (under `config`) and calls-only guest `name` on request
/// `shape`, warm, and reports whether they make the same host calls.
fn compare_calls(cohort: &[u8], name: &str, config: &str, shape: &str) -> Result<(), BoxError> {
    let request = shapes::shape(config, shape);
    let backend = shapes::ok_backend();
    let cohort = Guest::load(
        cohort,
        HostOptions::traefik().config_json(shapes::config(config)),
    )?;
    let calls_only = Guest::load(&shapes::calls_only_wasm(name), HostOptions::traefik())?;
    let mut calls = Vec::new();
    for guest in [&cohort, &calls_only] {
        guest.handle(request.clone(), &backend)?;
        let exchange = guest.handle(request.clone(), &backend)?;
        if let Some(error) = &exchange.error {
            return Err(format!("{name} check, {config}/{shape}: {error}").into());
        }
        calls.push(exchange.host_calls);
    }
    if calls[0] == calls[1] {
        eprintln!(
            "{name}: the host calls of Cohort for {config}/{shape} ({})",
            calls[0]
        );
    } else {
        eprintln!(
            "warning: {name} makes other host calls than Cohort for {config}/{shape}: \
             Cohort {}, {name} {}; update harness/benches/{name}.wat",
            calls[0], calls[1]
        );
    }
    Ok(())
}
