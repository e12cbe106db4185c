//! The price guests (`harness/test-support/guests/price.wat`) must do what
//! `scripts/bench-traefik.sh` divides their cost by: calls-returning's host
//! calls and nothing else in `base`, and on top of them exactly the
//! instructions, lines and pages each one claims. A guest whose work
//! drifted would price the wrong thing without any benchmark noticing.

use cohort_harness::lower::touch::TouchCounts;
use cohort_harness::{Guest, HostOptions};
use cohort_test_support::bench::{
    PRICE_FUNCTIONS, PRICE_INSTRUCTIONS, PRICE_LINES, PRICES, calls_only_wasm, ok_backend,
    price_wasm, shape, touched,
};

/// What `wasm` costs on its second browser-returning request: fuel, host
/// calls, and what it touched (from a traced copy).
fn costs(wasm: &[u8]) -> (u64, String, TouchCounts) {
    let request = shape("testdata", "browser-returning");
    let backend = ok_backend();
    let guest = Guest::load(wasm, HostOptions::traefik()).expect("loads in a Traefik host");
    guest.handle(request.clone(), &backend).unwrap();
    let exchange = guest.handle(request.clone(), &backend).unwrap();
    assert!(exchange.error.is_none(), "{:?}", exchange.error);
    let touched = touched(wasm, HostOptions::traefik(), &request).unwrap();
    (exchange.fuel, exchange.host_calls.to_string(), touched)
}

#[test]
fn each_price_guest_does_exactly_the_work_it_prices() {
    let (_, calls_returning, _) = costs(&calls_only_wasm("calls-returning"));
    let (base_fuel, base_calls, base_touched) = costs(&price_wasm("base"));
    let base_functions = base_touched.functions;
    assert_eq!(
        base_calls, calls_returning,
        "base makes calls-returning's calls"
    );
    assert_eq!(base_touched.lines, 0, "base touches no memory itself");
    for price in &PRICES {
        let (fuel, calls, touched) = costs(&price_wasm(price.name));
        assert_eq!(calls, calls_returning, "{}: other host calls", price.name);
        let extra = fuel - base_fuel;
        let lines = touched.lines as u32;
        let functions = touched.functions;
        match price.name {
            "base" => assert_eq!(extra, 0),
            // The loop's counter set-up and the accumulator's store are
            // a handful more.
            "loop" | "code" => {
                assert!(
                    (PRICE_INSTRUCTIONS..PRICE_INSTRUCTIONS + 8).contains(&extra),
                    "{}: {extra} instructions over base",
                    price.name
                );
                assert_eq!(lines, 0, "{}: touches memory", price.name);
            }
            "far" => {
                // The call, its four instructions and its end.
                assert_eq!(extra, u64::from(PRICE_FUNCTIONS) * 6, "far");
                assert_eq!(lines, 0, "far: touches memory");
                assert_eq!(functions - base_functions, PRICE_FUNCTIONS as usize);
            }
            "lines" | "chase" => {
                assert_eq!(lines, PRICE_LINES, "{}", price.name);
                assert_eq!(touched.pages, 1, "{}: all on one page", price.name);
            }
            "pages" => {
                assert_eq!(lines, PRICE_LINES);
                assert_eq!(touched.pages as u32, PRICE_LINES, "pages: a page each");
            }
            other => panic!("a price guest this test does not know: {other}"),
        }
        // Units as the report divides by them.
        let units = match price.unit {
            "1,000 instructions" => f64::from(u32::try_from(extra).unwrap()) / 1000.0,
            "line" => f64::from(lines),
            "page" => f64::from(lines - 1),
            "function" => (functions - base_functions) as f64,
            _ => 0.0,
        };
        assert!(
            (units - price.units).abs() < 0.01,
            "{}: {units} units done, {} claimed",
            price.name,
            price.units
        );
    }
}
