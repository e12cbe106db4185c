//! The decision core, natively: what one request costs Cohort's own logic,
//! without wasm and without host calls.
//!
//! `cargo bench -p cohort-plugin --bench decision`
//!
//! Request shapes (`cohort_test_support::shapes`, which
//! `harness/benches/guest.rs` and
//! `cargo run --release -p cohort-harness --example costs` run through the
//! real guest):
//!
//! | id                    | config     | request                                                  |
//! |-----------------------|------------|----------------------------------------------------------|
//! | `browser-returning`   | recipe, testdata | Chrome: its User-Agent, 30 analytics cookies and `canary=v1`, `/products/42?ref=mail` |
//! | `browser-new`         | recipe, testdata | the same without `canary`, with `X-User-Id: u123` (the first key) |
//! | `best-case-returning` | recipe, testdata, full | `canary=v1` alone, a short User-Agent, `/`  |
//! | `best-case-new`       | recipe     | no cookie, no key header: bucketed once, no id kept      |
//! | `30-cookies`          | recipe     | 30 unrelated cookies, then `canary=v1`                   |
//! | `new-30-cookies`      | recipe     | 30 unrelated cookies and no cohort: a new visitor        |
//! | `4kb-cookie`          | recipe     | a 4 KB analytics cookie, then `canary=v1`                |
//! | `override`            | full       | `X-Cohort: v2` override header, cookie `canary=v1`       |
//! | `excluded`            | full       | `GET /healthz`, no cookie                                |
//! | `best-case-new`       | reevaluate | as above, and a generated visitor id is kept             |
//! | `best-case-returning` | reevaluate | `canary=v1; cohort_id=<id>`: re-bucketed by the kept id  |
//!
//! "recipe" is the configuration of `recipes/file/flat-routers.yml`;
//! "testdata" is `.traefik.yml`'s `testData`; "full" adds an override
//! header and query parameter and excluded paths to the recipe;
//! "reevaluate" is the recipe with `stickiness: reevaluate`
//! (`benches/configs/*.json`).
//!
//! Each host read is modelled as an owned copy, as the guest gets it.

use std::cell::RefCell;
use std::hint::black_box;

use cohort::bucket::IdGenerator;
use cohort::{Config, RequestView, Values, decide};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};

use cohort_test_support::shapes;
use shapes::{HOST, SOURCE_ADDR, Shape, config_json};

/// A request as the adapter sees it: every read returns an owned copy.
#[derive(Clone)]
struct Native {
    method: &'static [u8],
    uri: String,
    addr: &'static [u8],
    headers: Vec<(&'static str, Vec<u8>)>,
}

impl Shape for Native {
    fn get(uri: &str) -> Self {
        Native {
            method: b"GET",
            uri: uri.into(),
            addr: SOURCE_ADDR.as_bytes(),
            headers: vec![("Host", HOST.as_bytes().to_vec())],
        }
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value.into_bytes()));
        self
    }
}

impl RequestView for Native {
    type Bytes = Vec<u8>;
    fn header_values(&mut self, name: &str) -> Values<Vec<u8>> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            .into()
    }
    fn method(&mut self) -> Vec<u8> {
        self.method.to_vec()
    }
    fn uri(&mut self) -> Vec<u8> {
        self.uri.as_bytes().to_vec()
    }
    fn source_addr(&mut self) -> Vec<u8> {
        self.addr.to_vec()
    }
}

fn config(name: &str) -> Config {
    Config::from_json(config_json(name).as_bytes()).expect("the benchmark configuration is valid")
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for (config_name, shape, request) in shapes::shapes::<Native>() {
        let config = config(config_name);
        let ids = RefCell::new(IdGenerator::new(b"boot"));
        group.bench_with_input(
            BenchmarkId::new(config_name, shape),
            &request,
            |b, request| {
                b.iter_batched_ref(
                    || request.clone(),
                    |request| {
                        black_box(decide(&config, request, &ids, || 1_700_000_000_000_000_000))
                    },
                    BatchSize::SmallInput,
                );
            },
        );
    }
    group.finish();
}

fn bench_config(c: &mut Criterion) {
    let mut group = c.benchmark_group("config");
    for name in ["recipe", "testdata"] {
        let json = config_json(name);
        group.bench_with_input(BenchmarkId::new("parse", name), json, |b, json| {
            b.iter(|| black_box(Config::from_json(black_box(json.as_bytes()))));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide, bench_config);
criterion_main!(benches);
