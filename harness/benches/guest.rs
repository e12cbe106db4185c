//! Cohort through the harness (wasmtime, Traefik-faithful host), next to a
//! no-op guest: one request per request shape on a warm instance, and one
//! instance start.
//!
//! `cargo bench -p cohort-harness --bench guest`
//!
//! The absolute times are wasmtime's, not Traefik's (wazero); what carries
//! over is the difference to the no-op guest, which is what Cohort itself
//! adds. Fuel and host-call counts of the same shapes:
//! `cargo run --release -p cohort-harness --example costs`.

#[path = "common/shapes.rs"]
mod shapes;

use std::hint::black_box;

use cohort_harness::{Guest, HostOptions, artifacts};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};

fn load(wasm: &[u8], options: HostOptions) -> Guest {
    Guest::load(wasm, options).expect("the guest loads")
}

fn cohort_wasm() -> Vec<u8> {
    std::fs::read(artifacts::PLUGIN_WASM).expect("plugin.wasm is built")
}

fn bench_requests(c: &mut Criterion) {
    let cohort = cohort_wasm();
    let noop = shapes::noop_wasm();
    let backend = shapes::ok_backend();
    let cohorts: std::collections::BTreeMap<&str, Guest> = shapes::CONFIGS
        .into_iter()
        .map(|config| {
            let options = HostOptions::traefik().config_json(shapes::config(config));
            (config, load(&cohort, options))
        })
        .collect();
    let noop_guest = load(&noop, HostOptions::traefik());

    let mut group = c.benchmark_group("request");
    for (config, shape, request) in shapes::shapes() {
        let guests = [("cohort", &cohorts[config]), ("no-op", &noop_guest)];
        for (name, guest) in guests {
            if name == "no-op" && config != "seed" {
                continue; // same as seed for a guest without configuration
            }
            // Warm the instance before measuring.
            let warm = guest
                .handle(request.clone(), &backend)
                .expect("the harness serves the request");
            assert!(
                warm.error.is_none(),
                "{name} {config}/{shape}: {:?}",
                warm.error
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/{config}"), shape),
                &request,
                |b, request| {
                    b.iter_batched(
                        || request.clone(),
                        |request| black_box(guest.handle(request, &backend)),
                        BatchSize::SmallInput,
                    );
                },
            );
        }
    }
    group.finish();
}

/// One instance start: `_start` (Cohort parses and validates its
/// configuration there) plus the instantiation itself. A guest that keeps
/// no idle instance starts a fresh one for every request, so this measures
/// start + one request; the warm request above is the part to subtract.
fn bench_start(c: &mut Criterion) {
    let cohort = cohort_wasm();
    let noop = shapes::noop_wasm();
    let backend = shapes::ok_backend();
    let request = shapes::shapes()
        .into_iter()
        .find(|(config, shape, _)| *config == "seed" && *shape == "returning")
        .map(|(_, _, r)| r)
        .expect("the returning shape");

    let mut group = c.benchmark_group("start");
    let guests = [
        ("cohort", "seed", cohort.as_slice()),
        ("cohort", "full", cohort.as_slice()),
        ("no-op", "-", noop.as_slice()),
    ];
    for (name, config, wasm) in guests {
        let mut options = HostOptions::traefik();
        if name == "cohort" {
            options = options.config_json(shapes::config(config));
        }
        options.max_idle = 0;
        let guest = load(wasm, options);
        group.bench_function(
            BenchmarkId::new(format!("{name}/{config}"), "start+request"),
            |b| {
                b.iter_batched(
                    || request.clone(),
                    |request| black_box(guest.handle(request, &backend)),
                    BatchSize::SmallInput,
                );
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_requests, bench_start);
criterion_main!(benches);
