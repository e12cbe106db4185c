//! Fuzzing in the ordinary test suite (`fuzz/`, `scripts/fuzz.sh`).
//!
//! * Every request of the committed `decision` and `wasm_request` corpora
//!   (seeds and crash reproducers alike) goes through the real
//!   `plugin.wasm` under every fuzz configuration, with the same checks as
//!   the `wasm_request` target: no trap, no host error, one valid cohort in
//!   `X-Canary`, cookies to the backend naming exactly that cohort,
//!   well-formed `Set-Cookie` values.
//! * A short bounded fuzzing pass: `scripts/fuzz.sh` on the native targets
//!   for `COHORT_FUZZ_SECONDS` seconds each (default 10; `0` skips it), which
//!   fails on any crash. `scripts/setup.sh --tests` installs cargo-fuzz.
//!
//! The request format, the configurations and the checks are
//! `cohort_test_support::fuzz`, which the fuzz crate uses too, so the replay
//! and the fuzzer cannot drift apart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cohort_harness::Guest;
use cohort_harness::artifacts::PLUGIN_WASM;

use cohort_test_support::fuzz::{checks, configs, input, wasm};

use configs::CONFIGS;
use input::FuzzRequest;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness has a parent directory")
        .to_path_buf()
}

fn guests() -> &'static [Guest] {
    static GUESTS: OnceLock<Vec<Guest>> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let bytes = std::fs::read(PLUGIN_WASM).unwrap_or_else(|e| panic!("{PLUGIN_WASM}: {e}"));
        wasm::load_guests(&bytes)
    })
}

/// The files of `fuzz/corpus/<target>`, sorted.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root().join("fuzz").join("corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = format!("{target}/{}", path.file_name().unwrap().to_string_lossy());
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_request_corpora_replay_cleanly_through_the_wasm_under_every_config() {
    let mut files = corpus("wasm_request");
    files.extend(corpus("decision"));
    assert!(files.len() >= 8, "the seed corpora are missing");
    let mut failures = Vec::new();
    let mut runs = 0;
    for (name, bytes) in &files {
        let Some(request) = FuzzRequest::parse(bytes) else {
            continue;
        };
        for (index, (cfg, guest)) in CONFIGS.iter().zip(guests()).enumerate() {
            runs += 1;
            // The request, then the same client's next one carrying what
            // the response set, as the `decision` target checks natively.
            if let Err(e) = wasm::run_returning(guest, cfg, &request) {
                failures.push(format!("{name} under config {index}: {e}"));
            }
        }
    }
    assert!(runs >= 40, "only {runs} runs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The reproducer of the two-request bug is replayed as the two requests
/// it needs, under the configuration it was found in: a holder of the
/// disabled variant, with a stable key, rolled back on the first request
/// and left where it is (re-evaluated, nothing written) on the second.
#[test]
fn the_moved_twice_reproducer_replays_as_two_requests() {
    let (_, bytes) = corpus("decision")
        .into_iter()
        .find(|(name, _)| name.ends_with("/reevaluate-rollback-moved-twice"))
        .expect("the reproducer is in the corpus");
    let request = FuzzRequest::parse(&bytes).expect("a request");
    let index = request.config_index(CONFIGS.len());
    let cfg = &CONFIGS[index];
    let (first, second) = wasm::run_returning(&guests()[index], cfg, &request)
        .unwrap_or_else(|e| panic!("config {index}: {e}"));
    if cfg.debug_header.is_some() {
        assert_eq!(first.reason.as_deref(), Some("rollback"), "{first:?}");
        assert_eq!(second.reason.as_deref(), Some("reevaluated"), "{second:?}");
    }
    assert!(first.set_cohort, "{first:?}");
}

/// The checks themselves catch what they are for (a guest that forwarded a
/// client's `X-Canary`, or set a cookie with a smuggled attribute, would
/// not pass).
#[test]
fn the_checks_reject_what_they_exist_to_catch() {
    let cfg = &CONFIGS[0];
    let lines: [&[u8]; 2] = [b"canary=v1; a=b", b"canary=v2"];
    assert!(checks::check_forwarded_cookies(cfg, &lines, b"v1").is_err());
    assert!(checks::check_forwarded_cookies(cfg, &[b"a=b; canary=v1"], b"v1").is_ok());
    let suffix = cfg.suffix;
    for bad in [
        format!("canary=v1; Domain=evil{suffix}"),
        format!("canary=v3{suffix}"),
        "canary=v1".to_owned(),
        format!("other=v1{suffix}"),
        format!("cohort_id=XYZ{suffix}"),
    ] {
        assert!(
            checks::check_set_cookie(cfg, bad.as_bytes()).is_err(),
            "{bad}"
        );
    }
    // Config 0 keeps no visitor ids, so a visitor-id cookie is foreign to
    // it; config 4 (`reevaluate`) keeps them in `cohort_id`.
    let good = format!("cohort_id=0123456789abcdef0123456789abcdef{suffix}");
    assert!(checks::check_set_cookie(cfg, good.as_bytes()).is_err());
    let reevaluate = &CONFIGS[4];
    assert_eq!(reevaluate.visitor, Some("cohort_id"));
    let good = format!(
        "cohort_id=0123456789abcdef0123456789abcdef{}",
        reevaluate.suffix
    );
    assert!(checks::check_set_cookie(reevaluate, good.as_bytes()).is_ok());
    assert!(checks::check_debug_header(b"v1; reason=cookie", b"v1").is_ok());
    assert!(checks::check_debug_header(b"v1; reason=guess", b"v1").is_err());
}

/// Seconds per target for the short pass; `0` skips it.
fn budget() -> u64 {
    match std::env::var("COHORT_FUZZ_SECONDS") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("COHORT_FUZZ_SECONDS={s:?} is not a number of seconds")),
        Err(_) => 10,
    }
}

#[test]
fn a_short_fuzzing_pass_finds_no_crash() {
    let seconds = budget();
    if seconds == 0 {
        eprintln!("COHORT_FUZZ_SECONDS=0: the short fuzzing pass is skipped");
        return;
    }
    let has_cargo_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_cargo_fuzz,
        "cargo-fuzz is not installed: run `bash scripts/setup.sh --tests` \
         (or set COHORT_FUZZ_SECONDS=0 to skip the fuzzing pass)"
    );
    let root = root();
    let output = Command::new("bash")
        .arg(root.join("scripts").join("fuzz.sh"))
        .arg(seconds.to_string())
        .args(["cookie", "config", "decision"])
        .current_dir(&root)
        .output()
        .expect("running scripts/fuzz.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "scripts/fuzz.sh {seconds} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for target in ["cookie", "config", "decision"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(target) && l.contains(" ok ")),
            "no result for {target}:\n{stdout}"
        );
    }
}
