//! Cohort through the harness (wasmtime, Traefik-faithful host), next to a
//! no-op guest and the calls-only guests (`calls-*.wat`: Cohort's host calls
//! for one shape, nothing else): one request per request shape on a warm
//! instance, and one instance start. The shapes that matter are the
//! browser's through the minimal recipe and `testData` configurations
//! (`cohort/recipe/browser-returning`, `cohort/testdata/browser-new`, …).
//!
//! `cargo bench -p cohort-harness --bench guest`
//!
//! The absolute times are wasmtime's, not Traefik's (wazero); what carries
//! over is the difference to the no-op guest, which is what Cohort itself
//! adds. Fuel and host-call counts of the same shapes:
//! `cargo run --release -p cohort-harness --example costs`.

use std::collections::BTreeMap;
use std::hint::black_box;

use cohort_harness::{Guest, HostOptions, artifacts};
use cohort_test_support::bench as shapes;
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
    let cohorts: BTreeMap<&str, Guest> = shapes::configs()
        .map(|config| {
            let options = HostOptions::traefik().config_json(shapes::config(config));
            (config, load(&cohort, options))
        })
        .collect();
    let noop_guest = load(&noop, HostOptions::traefik());
    let calls_only: BTreeMap<&str, Guest> = shapes::CALLS_ONLY
        .into_iter()
        .map(|(name, ..)| {
            (
                name,
                load(&shapes::calls_only_wasm(name), HostOptions::traefik()),
            )
        })
        .collect();

    let mut group = c.benchmark_group("request");
    for (config, shape, request) in shapes::shapes() {
        let mut guests = vec![("cohort", &cohorts[config])];
        // A guest without configuration: once per browser shape.
        if config == "recipe" && shape.starts_with("browser-") {
            guests.push(("no-op", &noop_guest));
        }
        if let Some(name) = shapes::calls_only_for(config, shape) {
            guests.push((name, &calls_only[name]));
        }
        for (name, guest) in guests {
            // Warm the instance before measuring.
            let warm = guest
                .handle(request.clone(), &backend)
                .expect("the harness serves the request");
            assert!(
                warm.error.is_none(),
                "{name} {config}/{shape}: {:?}",
                warm.error
            );
            let id = if name == "cohort" {
                format!("{name}/{config}")
            } else {
                name.to_owned()
            };
            group.bench_with_input(BenchmarkId::new(id, shape), &request, |b, request| {
                b.iter_batched(
                    || request.clone(),
                    |request| black_box(guest.handle(request, &backend)),
                    BatchSize::SmallInput,
                );
            });
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
    let request = shapes::shape("recipe", "browser-returning");

    let mut group = c.benchmark_group("start");
    let guests = [
        ("cohort", "recipe", cohort.as_slice()),
        ("cohort", "testdata", cohort.as_slice()),
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
