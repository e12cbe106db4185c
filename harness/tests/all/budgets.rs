//! What a request may cost Cohort in guest instructions (wasmtime fuel,
//! deterministic) and host calls, for the requests production sends: a
//! browser's (a real User-Agent, 30 analytics cookies, a query string)
//! through the configurations users copy (`.traefik.yml`'s `testData`, and
//! the minimal recipe `recipes/file/flat-routers.yml`), returning and new.
//!
//! The host calls asserted are the minimum the ABI allows for each shape
//! (README, "Host calls per request"): one call per value the outcome
//! depends on, one per write. Fuel budgets are issue #11's targets; a
//! regression past them fails here, not in a benchmark nobody reads.

use cohort_harness::lower::touch::TouchCounts;
use cohort_harness::{EchoBackend, Exchange, Guest, HostOptions, Request};
use cohort_test_support::bench;
use serde_json::Value;

use crate::cohort::{load, wasm};
use crate::support::recipes::{cohort_value, recipe};
use crate::support::traefik::repo_root;
use crate::support::yaml;

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// 30 analytics cookies of about 35 bytes each, as a browser sends them.
fn analytics() -> String {
    (0..30)
        .map(|i| format!("_ga_{i:02}=GA1.2.{}.1700000000", 1_000_000 + i))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Chrome asking for a product page, with `cookie` as its Cookie header.
fn browser(cookie: &str) -> Request {
    let request = Request::get("/products/42?ref=mail")
        .header("Host", "my-app.example.com")
        .header("User-Agent", CHROME)
        .header("Accept", "text/html,application/xhtml+xml")
        .header("Accept-Language", "en-GB,en;q=0.9")
        .source_addr("192.0.2.10:40000");
    if cookie.is_empty() {
        request
    } else {
        request.header("Cookie", cookie)
    }
}

/// `.traefik.yml`'s `testData` (the section from `testData:` on: the
/// manifest's `summary` is a block scalar the tests' YAML reader refuses).
fn test_data() -> Value {
    let manifest = std::fs::read_to_string(repo_root().join(".traefik.yml")).unwrap();
    let (_, section) = manifest
        .split_once("\ntestData:")
        .expect("a testData section");
    yaml::get(
        &yaml::parse(&format!("testData:{section}")).unwrap(),
        "testData",
    )
    .unwrap()
    .clone()
}

/// The Cohort configuration of the minimal recipe.
fn minimal_recipe() -> Value {
    cohort_value(&recipe("file/flat-routers.yml").unwrap(), "cohort").unwrap()
}

/// One instance of Cohort under `config`, as Traefik hands it over.
fn guest(config: Value) -> Guest {
    load(HostOptions::traefik().max_instances(1).config_json(config))
}

/// `request` sent twice to one instance: the second, warm exchange (the
/// first may grow the instance's memory once). Both make the same calls.
fn warm(guest: &Guest, request: &Request) -> Exchange {
    let first = guest.handle(request.clone(), &EchoBackend::new()).unwrap();
    let second = guest.handle(request.clone(), &EchoBackend::new()).unwrap();
    assert!(second.error.is_none(), "{:?}", second.error);
    assert_eq!(second.response.status, 200);
    assert_eq!(
        first.host_calls.to_string(),
        second.host_calls.to_string(),
        "a warm instance makes other calls"
    );
    second
}

/// Asserts the calls and the fuel budget; prints the figures.
fn assert_costs(what: &str, ex: &Exchange, calls: &str, fuel_budget: u64) {
    eprintln!(
        "{what}: {} fuel (budget {fuel_budget}), host calls {}",
        ex.fuel, ex.host_calls
    );
    assert_eq!(ex.host_calls.to_string(), calls, "{what}");
    assert!(
        ex.fuel <= fuel_budget,
        "{what}: {} fuel, over the budget of {fuel_budget}",
        ex.fuel
    );
}

#[test]
fn a_browser_through_the_test_data_config_stays_within_budget() {
    let guest = guest(test_data());
    let cookies = analytics();

    let returning = warm(&guest, &browser(&format!("{cookies}; canary=v1")));
    assert_eq!(returning.response.headers.get("Set-Cookie"), None);
    // Read Cookie and the override header, read the URI for the override
    // query; set X-Canary.
    assert_costs(
        "testData, returning browser",
        &returning,
        "get_uri=1 get_header_values=2 set_header_value=1",
        5_000,
    );

    let new = warm(&guest, &browser(&cookies).header("X-User-Id", "u123"));
    assert!(new.response.headers.get("Set-Cookie").is_some());
    // Read Cookie, the URI (path exclusion and override query), User-Agent
    // (exclusion), the override header and X-User-Id (the first key); set
    // Cookie and X-Canary; add the Set-Cookie.
    //
    assert_costs(
        "testData, new browser",
        &new,
        "get_uri=1 get_header_values=4 set_header_value=2 add_header_value=1",
        15_000,
    );
    // #11's bound is 15,000; this one keeps what was measured (7,549 on
    // 6a33024): the Cookie line extended in the buffer it was read into,
    // no scheme search in the path. Session 12's build took 10,076.
    assert!(
        new.fuel <= 9_000,
        "testData, new browser: {} fuel",
        new.fuel
    );
}

#[test]
fn new_visitors_give_their_cookie_buffer_back() {
    // A new visitor's Cookie line leaves the read pool as the new header
    // and rejoins it after the write: a stream of them neither grows the
    // instance's memory nor costs a read a second host call.
    let guest = guest(test_data());
    let cookies = analytics();
    // Keys of one length, so that every request hashes as many bytes.
    let first = warm(&guest, &browser(&cookies).header("X-User-Id", "u000"));
    for i in 1..200 {
        let new = guest
            .handle(
                browser(&cookies).header("X-User-Id", format!("u{i:03}")),
                &EchoBackend::new(),
            )
            .unwrap();
        assert!(new.response.headers.get("Set-Cookie").is_some());
        assert_eq!(new.host_calls.to_string(), first.host_calls.to_string());
        assert_eq!(new.memory_bytes, first.memory_bytes, "request {i}");
        // A buffer not given back costs the next read an allocation: some
        // 200 fuel more, every request.
        let fuel = new.fuel.abs_diff(first.fuel);
        assert!(
            fuel < 50,
            "request {i}: {} fuel against {}",
            new.fuel,
            first.fuel
        );
    }
}

#[test]
fn a_new_browser_under_the_default_assignment_hash_stays_within_its_budget() {
    // An existing deployment keeps `assignmentHash: sha256` (the default):
    // its two SHA-256 draws (one per variant, ~6,400 fuel each; a scalar
    // SHA-256 block is some 5,000 wasm instructions at best) are what
    // `siphash` saves. This bound catches a regression from what was
    // measured (21,449; 31,114 before the Cookie line was kept as sent).
    let mut config = test_data();
    config["assignmentHash"] = "sha256".into();
    let guest = guest(config);
    let new = warm(&guest, &browser(&analytics()).header("X-User-Id", "u123"));
    assert!(new.response.headers.get("Set-Cookie").is_some());
    assert_costs(
        "testData with assignmentHash: sha256, new browser",
        &new,
        "get_uri=1 get_header_values=4 set_header_value=2 add_header_value=1",
        23_000,
    );
}

#[test]
fn returning_visitors_under_the_minimal_recipe_make_two_host_calls() {
    let guest = guest(minimal_recipe());
    let two_calls = "get_header_values=1 set_header_value=1";
    let alone = warm(&guest, &browser("canary=v1"));
    assert_costs("recipe, canary=v1 alone", &alone, two_calls, 1_500);

    let thirty = warm(&guest, &browser(&format!("{}; canary=v1", analytics())));
    assert_costs("recipe, 30 cookies", &thirty, two_calls, 4_000);

    let big = format!("_analytics={}; canary=v1", "x".repeat(4096 - 22));
    assert_eq!(big.len(), 4096);
    let four_kb = warm(&guest, &browser(&big));
    assert_costs("recipe, 4 KB Cookie", &four_kb, two_calls, 8_000);
}

#[test]
fn odd_requests_leave_every_read_at_one_host_call() {
    // Several Cookie lines (split into values of their own) and a value
    // over the read buffer (8 KiB) must not leave the instance's buffers
    // too small for the next request's reads.
    let guest = guest(minimal_recipe());
    let two_lines = Request::get("/")
        .header("Cookie", "a=1")
        .header("Cookie", "b=2; canary=v1")
        .header("Cookie", "c=3");
    let ex = guest.handle(two_lines, &EchoBackend::new()).unwrap();
    assert_eq!(ex.response.status, 200);
    let huge = format!("big={}; canary=v1", "x".repeat(20_000));
    let ex = guest.handle(browser(&huge), &EchoBackend::new()).unwrap();
    // The host says how much it needs: one more call for that value only.
    assert_eq!(
        ex.host_calls.to_string(),
        "get_header_values=2 set_header_value=1"
    );
    for _ in 0..10 {
        let ex = guest
            .handle(
                browser(&format!("{}; canary=v1", analytics())),
                &EchoBackend::new(),
            )
            .unwrap();
        assert_eq!(
            ex.host_calls.to_string(),
            "get_header_values=1 set_header_value=1"
        );
    }
}

#[test]
fn no_instance_grows_its_memory() {
    // Traefik's wazero grows a guest's memory by allocating a larger Go
    // slice and copying the old one: each new instance that grows pays it
    // again. Cohort's initial memory (plugin/build.rs) holds start-up and
    // every shape here, for both configurations users copy, from the first
    // request of a fresh instance on.
    const DECLARED: usize = 4 * 65_536;
    let cookies = analytics();
    let big = format!("_analytics={}; canary=v1", "x".repeat(4096 - 22));
    let shapes = [
        browser(&format!("{cookies}; canary=v1")),
        browser(&cookies).header("X-User-Id", "u123"),
        browser(&cookies),
        browser(""),
        browser("canary=v1"),
        browser(&big),
        Request::get("/healthz").header("User-Agent", "Googlebot/2.1"),
        Request::get("/?canary=v2").header("X-Canary-Force", "v2"),
    ];
    for (name, config) in [("testData", test_data()), ("recipe", minimal_recipe())] {
        let guest = guest(config);
        for (i, request) in shapes.iter().enumerate() {
            let ex = guest.handle(request.clone(), &EchoBackend::new()).unwrap();
            assert_eq!(ex.response.status, 200, "{name}, shape {i}");
            // The instance the load started: its first request is shape 0.
            assert_eq!(ex.instance.id, 1, "{name}: one instance");
            assert_eq!(ex.instance.served_before, i as u64, "{name}");
            assert_eq!(
                ex.memory_bytes, ex.instance.instantiated_memory_bytes,
                "{name}, shape {i}: start-up or the request grew the memory"
            );
            assert_eq!(
                ex.instance.instantiated_memory_bytes, DECLARED,
                "{name}: the module's initial memory"
            );
        }
    }
}

/// What `request`'s second run touches in a traced copy of Cohort under
/// `config`.
fn touched(config: Value, request: &Request) -> TouchCounts {
    let options = HostOptions::traefik().max_instances(1).config_json(config);
    bench::touched(wasm(), options, request).unwrap()
}

#[test]
fn a_browser_touches_few_lines_and_pages_of_its_instance() {
    // In Traefik a request meets a cold instance, and what Cohort's own
    // work costs there is mostly the memory it touches (notes/performance.md,
    // "Session 16": some 20 ns a cold line and 21 ns a page on the newer
    // Xeon, against 75-84 ns per 1,000 instructions), and a little each
    // function it enters. 9b895a2's plugin touched 38 lines on 6 pages and
    // entered 16 functions 27 times returning, 59 lines on 9 pages and 30
    // functions 63 times new; session 17 put its instance state among the
    // statics and the hot fields first, and dropped calls that did nothing:
    // 32 lines on 5 pages, 12 functions 20 times returning, and 55 lines on
    // 9 pages, 28 functions 56 times new. Session 18 gave the returning
    // visitor a path of its own (`cohort::decision::quick`, its line among
    // the statics, and the read pool there too): 26 lines on 5 pages, 11
    // functions 21 times; a new visitor, who passes that path first, 61
    // lines on 10 pages, 31 functions 64 times. These bounds keep those.
    // The Cookie line alone is 17 lines.
    let cookies = analytics();
    for (what, request, [lines, pages, functions, calls]) in [
        (
            "returning",
            browser(&format!("{cookies}; canary=v1")),
            [26, 5, 11, 21],
        ),
        (
            "new",
            browser(&cookies).header("X-User-Id", "u123"),
            [61, 10, 31, 64],
        ),
    ] {
        let counts = touched(test_data(), &request);
        eprintln!("testData, {what} browser: {counts:?}");
        assert!(
            counts.lines <= lines && counts.pages <= pages,
            "testData, {what} browser: {} lines on {} pages, over {lines} on {pages}",
            counts.lines,
            counts.pages
        );
        assert!(
            counts.functions <= functions && counts.entries <= calls,
            "testData, {what} browser: {} functions entered {} times, over {functions} and {calls}",
            counts.functions,
            counts.entries
        );
    }
}
