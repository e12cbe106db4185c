//! `decide()` on arbitrary requests (method, URI, source address, header
//! lines: see `cohort_fuzz::input`) under each of `cohort_fuzz::configs`:
//!
//! * a variant that exists and is not disabled, bucketed only into active
//!   ones, and no cookie for an excluded request;
//! * well-formed `Set-Cookie` values (`name=value` and the configured
//!   attributes, nothing else);
//! * the `Cookie` header the backend gets names exactly the cohort (and its
//!   weighted sticky child), with every other pair kept in order;
//! * the method, URI and source address read at most once, `Cookie` once;
//! * the same decision twice from the same state;
//! * the same client's next request, carrying what the response set, keeps
//!   its cohort and is not sent a cookie again.
#![no_main]

use cohort_fuzz::configs::CONFIGS;
use cohort_fuzz::input::FuzzRequest;
use cohort_fuzz::native;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(request) = FuzzRequest::parse(data) else {
        return;
    };
    let index = request.config_index(CONFIGS.len());
    let (cfg, config) = (&CONFIGS[index], &native::configs()[index]);
    let fail =
        |what: &str, e: String| -> ! { panic!("{what}: {e}\nconfig {index}\nrequest {request:?}") };

    let (first, calls) = native::decide_fixed(config, &request, 1);
    native::check_decision(cfg, config, &request, &first).unwrap_or_else(|e| fail("first", e));
    // Each read may be a host call: each part at most once.
    let cookie_reads = calls.headers.iter().filter(|h| *h == "Cookie").count();
    if calls.method > 1 || calls.uri > 1 || calls.source_addr > 1 || cookie_reads != 1 {
        fail("reads", format!("{calls:?}"));
    }
    let (again, calls_again) = native::decide_fixed(config, &request, 1);
    if (&again, &calls_again) != (&first, &calls) {
        fail("determinism", format!("{first:?} then {again:?}"));
    }

    let next = native::next_request(cfg, &request, &first, config);
    let (second, _) = native::decide_fixed(config, &next, 2);
    native::check_decision(cfg, config, &next, &second).unwrap_or_else(|e| fail("next", e));
    native::check_returning(&first, &second)
        .unwrap_or_else(|e| fail("returning", format!("{e}\nnext {next:?}")));
});
