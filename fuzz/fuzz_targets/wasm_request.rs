//! Arbitrary requests (see `cohort_fuzz::input`) through the real
//! `plugin.wasm` in the harness, under each of `cohort_fuzz::configs`, in
//! Traefik-faithful mode (a header value holding NUL bytes goes as one field
//! per piece: see `cohort_fuzz::wasm::to_request`):
//!
//! * no trap, no host error, the backend's 200;
//! * exactly one valid cohort in `X-Canary` (a client's copy never
//!   survives), cookies to the backend naming exactly that cohort;
//! * well-formed `Set-Cookie` values and a well-formed debug header;
//! * and the same outcome as the native decision on the same bytes
//!   (cohort, reason, cookies set, `Cookie` header forwarded) unless the
//!   cohort hangs on a freshly generated visitor id. The native run is also
//!   what gives libFuzzer coverage of the decision: the guest's own
//!   branches are invisible to it.
#![no_main]

use std::sync::OnceLock;

use cohort::decision::KeyUsed;
use cohort_fuzz::configs::CONFIGS;
use cohort_fuzz::input::FuzzRequest;
use cohort_fuzz::{native, wasm};
use cohort_harness::Guest;
use cohort_harness::artifacts::PLUGIN_WASM;
use libfuzzer_sys::fuzz_target;

fn guests() -> &'static [Guest] {
    static GUESTS: OnceLock<Vec<Guest>> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let bytes =
            std::fs::read(PLUGIN_WASM).unwrap_or_else(|e| panic!("reading {PLUGIN_WASM}: {e}"));
        wasm::load_guests(&bytes)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = FuzzRequest::parse(data) else {
        return;
    };
    let index = request.config_index(CONFIGS.len());
    let cfg = &CONFIGS[index];
    let outcome = wasm::run(&guests()[index], cfg, &request)
        .unwrap_or_else(|e| panic!("{e}\nconfig {index}\nrequest {request:?}"));

    // The native decision on what the guest saw.
    let seen = wasm::as_seen_by_guest(&request);
    let config = &native::configs()[index];
    let (decision, _) = native::decide_fixed(config, &seen, 1);
    native::check_decision(cfg, config, &seen, &decision)
        .unwrap_or_else(|e| panic!("native: {e}\nconfig {index}\nrequest {request:?}"));
    // A fresh visitor id or one-off key is random: nothing to compare with.
    if matches!(decision.key, KeyUsed::NewVisitorId | KeyUsed::OneOff) {
        return;
    }
    let native_lines: Vec<Vec<u8>> = native::forwarded_lines(&seen, &decision)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let native = wasm::Outcome {
        cohort: config.variants[decision.variant].name.clone().into_bytes(),
        reason: cfg
            .debug_header
            .map(|_| decision.reason.as_str().to_owned()),
        set_cohort: decision.set_cohort_cookie,
        visitor: None,
        cookie_lines: native_lines,
    };
    assert_eq!(
        outcome, native,
        "the guest and the native decision disagree\nconfig {index}\nrequest {request:?}"
    );
});
