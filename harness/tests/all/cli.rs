//! The `cohort-harness` binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

use cohort_harness::artifacts::PLUGIN_WASM;
use cohort_harness::package;
use serde_json::Value;

const CANARY_10: &str = r#"{"variants":[{"name":"v1"},{"name":"v2","weight":10}]}"#;

pub(crate) fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort-harness"))
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A directory of this test's own, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cohort-harness-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn run_shows_what_the_backend_received_and_the_cookie_for_a_new_visitor() {
    let out = harness(&["run", "cohort", "--config", CANARY_10, "-v", "/cart"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.starts_with("> GET /cart HTTP/1.1\n> Host: localhost\n"),
        "{text}"
    );
    let cohort = text
        .lines()
        .find_map(|l| l.strip_prefix("> X-Canary: "))
        .unwrap_or_else(|| panic!("no X-Canary sent to the backend:\n{text}"));
    assert!(cohort == "v1" || cohort == "v2", "{cohort}");
    assert!(text.contains("\nHTTP/1.1 200 OK\n"), "{text}");
    assert!(
        text.contains(&format!("\nSet-Cookie: canary={cohort};")),
        "{text}"
    );
    // `keep` (the default) keeps no visitor id: one Set-Cookie.
    assert!(!text.contains("\nSet-Cookie: cohort_id="), "{text}");
    let err = stderr(&out);
    assert!(err.contains("* fuel: "), "{err}");
    assert!(err.contains("* host calls: "), "{err}");
    assert!(err.contains("* memory: "), "{err}");
}

#[test]
fn run_honours_a_cookie_and_refuses_a_bad_config_by_field() {
    let out = harness(&[
        "run",
        "cohort",
        "--config",
        CANARY_10,
        "-H",
        "Cookie: canary=v2",
        "http://shop.example.com/",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("> Host: shop.example.com\n"), "{text}");
    assert!(text.contains("> X-Canary: v2\n"), "{text}");
    assert!(!text.contains("Set-Cookie: canary="), "{text}");

    let bad = r#"{"variants":[{"name":"v1"},{"name":"v2","weight":"lots"}]}"#;
    let out = harness(&["run", "cohort", "--config", bad]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("variants[1].weight"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn run_exits_non_zero_with_the_trap_message() {
    let dir = TempDir::new("trap");
    let path = dir.0.join("trap.wasm");
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "handle_request") (result i64) unreachable)
             (func (export "handle_response") (param i32 i32)))"#,
    )
    .unwrap();
    std::fs::write(&path, wasm).unwrap();
    let out = harness(&["run", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("HTTP/1.1 500 "), "{}", stdout(&out));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
}

#[test]
fn check_passes_cohort_and_fails_a_bulk_memory_guest_in_faithful_mode() {
    let out = harness(&["check", "cohort"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("verdict: loads"), "{}", stdout(&out));

    let dir = TempDir::new("check");
    let path = dir.0.join("copy.wasm");
    let wasm = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "handle_request") (result i64)
               (memory.copy (i32.const 0) (i32.const 4096) (i32.const 4096))
               (i64.const 1))
             (func (export "handle_response") (param i32 i32)))"#,
    )
    .unwrap();
    std::fs::write(&path, wasm).unwrap();
    let path = path.to_str().unwrap();
    let out = harness(&["check", path]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("memory.copy"), "{text}");
    assert!(text.contains("verdict: refused"), "{text}");

    // A plain host only warns.
    let out = harness(&["check", path, "--native"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("verdict: loads"));
}

/// A WAT guest written to a file of `dir`, its path returned.
fn wat_guest(dir: &TempDir, name: &str, wat: &str) -> String {
    let path = dir.0.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn check_starts_the_guest_and_refuses_one_whose_start_traps() {
    let out = harness(&["check", "cohort"]);
    assert!(
        stdout(&out).contains("start-up: ok\nverdict: loads"),
        "{}",
        stdout(&out)
    );

    let dir = TempDir::new("check-start");
    let path = wat_guest(
        &dir,
        "start-traps",
        r#"(module (memory (export "memory") 1)
             (func (export "_start") unreachable)
             (func (export "handle_request") (result i64) (i64.const 1))
             (func (export "handle_response") (param i32 i32)))"#,
    );
    let out = harness(&["check", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("start-up: failed: "), "{text}");
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.ends_with("verdict: refused\n"), "{text}");
    // `run` refuses it the same way.
    assert!(!harness(&["run", &path]).status.success());

    // Cohort refusing its configuration fails the check too.
    let out = harness(&["check", "cohort", "--config", r#"{"percent": 10}"#]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("percent: unknown field"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn config_raw_delivers_the_bytes_as_given() {
    let out = harness(&["run", "cohort", "--config-raw", CANARY_10]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("> X-Canary: v"), "{}", stdout(&out));

    // Not JSON at all: Cohort refuses it at start-up and says why.
    let out = harness(&["run", "cohort", "--config-raw", "percent=10"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid Cohort configuration"),
        "{}",
        stderr(&out)
    );

    let dir = TempDir::new("config-raw");
    let file = dir.0.join("config.json");
    std::fs::write(&file, CANARY_10).unwrap();
    let arg = format!("@{}", file.display());
    let out = harness(&["run", "cohort", "--config-raw", &arg]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = harness(&[
        "run",
        "cohort",
        "--config",
        CANARY_10,
        "--config-raw",
        CANARY_10,
    ]);
    assert!(!out.status.success(), "the two are exclusive");
}

#[test]
fn log_level_filters_what_the_guest_logs_and_prints_it() {
    let dir = TempDir::new("log-level");
    let path = wat_guest(
        &dir,
        "logs",
        r#"(module
             (import "http_handler" "log" (func $log (param i32 i32 i32)))
             (import "http_handler" "log_enabled" (func $enabled (param i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0) "debug-line" "info-line" "debug-on")
             (func (export "handle_request") (result i64)
               (call $log (i32.const -1) (i32.const 0) (i32.const 10))
               (call $log (i32.const 0) (i32.const 10) (i32.const 9))
               (if (call $enabled (i32.const -1))
                 (then (call $log (i32.const 2) (i32.const 19) (i32.const 8))))
               (i64.const 1))
             (func (export "handle_response") (param i32 i32)))"#,
    );
    let out = harness(&["run", &path, "--native", "--log-level", "info"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("* guest log: [info] info-line"), "{err}");
    assert!(!err.contains("debug-line"), "{err}");
    assert!(
        !err.contains("debug-on"),
        "a plain host says debug is off: {err}"
    );

    let out = harness(&["run", &path, "--native", "--log-level", "debug"]);
    let err = stderr(&out);
    assert!(err.contains("* guest log: [debug] debug-line"), "{err}");
    assert!(err.contains("* guest log: [error] debug-on"), "{err}");

    // Traefik's logger says yes to every level, whatever is recorded.
    let out = harness(&["run", &path, "--log-level", "error"]);
    let err = stderr(&out);
    assert!(err.contains("* guest log: [error] debug-on"), "{err}");
    assert!(!err.contains("info-line"), "{err}");

    let out = harness(&["run", &path, "--log-level", "loud"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a log level"), "{}", stderr(&out));
}

#[test]
fn guest_stdio_passes_the_guests_output_through() {
    let dir = TempDir::new("guest-stdio");
    let path = wat_guest(
        &dir,
        "prints",
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write"
               (func $write (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 16) "hello from the guest\n")
             (func (export "handle_request") (result i64)
               (i32.store (i32.const 0) (i32.const 16))
               (i32.store (i32.const 4) (i32.const 21))
               (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
               (i64.const 1))
             (func (export "handle_response") (param i32 i32)))"#,
    );
    let quiet = harness(&["run", &path]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert!(
        !stdout(&quiet).contains("hello from the guest"),
        "Traefik discards it"
    );
    let out = harness(&["run", &path, "--guest-stdio"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("hello from the guest"),
        "{}",
        stdout(&out)
    );
}

fn simulate(args: &[&str]) -> Value {
    let mut all = vec!["simulate", "--json"];
    all.extend_from_slice(args);
    let out = harness(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn row<'a>(split: &'a Value, name: &str) -> &'a Value {
    split["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no cohort {name} in {split}"))
}

fn matrix(report: &Value, from: &str, to: &str) -> u64 {
    let m = &report["change"]["matrix"];
    let names: Vec<&str> = m["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let f = names.iter().position(|n| *n == from).unwrap();
    let t = names.iter().position(|n| *n == to).unwrap();
    m["counts"][f][t].as_u64().unwrap()
}

/// Tolerance for every statistical check here: 4.5 binomial standard
/// errors. The bucket is a hash of a random visitor id, so each count is
/// Binomial(n, p); a two-sided 4.5 SE miss has probability 6.8e-6, so the
/// handful of checks below fail spuriously about once in 30 000 runs,
/// while a real bias of 1 percentage point at n = 3 000, p = 10 % (1.8 SE)
/// would still need a wider one. (Tighter checks on the bucketing itself
/// live in the plugin's own tests.)
const TOLERANCE_SE: f64 = 4.5;

#[test]
fn simulate_splits_by_the_weights_and_nobody_changes_cohort() {
    let report = simulate(&["--visitors", "3000", "--canary", "10"]);
    assert_eq!(report["visitors"], 3000);
    assert_eq!(report["requests"], 9000);
    let split = &report["split"];
    assert_eq!(split["total"], 3000);
    let v1 = row(split, "v1");
    let v2 = row(split, "v2");
    assert_eq!(
        v1["count"].as_u64().unwrap() + v2["count"].as_u64().unwrap(),
        3000
    );
    assert_eq!(v2["expected_pct"], 10.0);
    let z = v2["deviation_se"].as_f64().unwrap();
    assert!(z.abs() < TOLERANCE_SE, "v2 is {z} SE off: {split}");
    // Recompute it: the report's arithmetic is the binomial one.
    let n = 3000.0;
    let observed = v2["count"].as_f64().unwrap() / n;
    let recomputed = (observed - 0.1) / (0.1 * 0.9 / n).sqrt();
    assert!((recomputed - z).abs() < 1e-9);
    assert_eq!(report["changed_visitors"], 0);
    assert!(report["change"].is_null());
    assert!(report["instances"].as_u64().unwrap() >= 1);
    let fuel = &report["fuel"];
    assert!(fuel["p50"].as_u64().unwrap() > 0);
    assert!(fuel["p99"].as_u64().unwrap() >= fuel["p50"].as_u64().unwrap());
}

#[test]
fn simulate_ramp_moves_only_v1_to_v2_when_reevaluating_and_nobody_when_keeping() {
    let n = 2000;
    let visitors = n.to_string();
    let ramp = |stickiness| {
        simulate(&[
            "--visitors",
            &visitors,
            "--canary",
            "10",
            "--ramp-to",
            "30",
            "--stickiness",
            stickiness,
        ])
    };
    let reevaluate = ramp("reevaluate");
    let change = &reevaluate["change"];
    assert_eq!(change["after_request"], 1);
    assert_eq!(change["label"], "ramp v2 10% -> 30%");
    assert_eq!(matrix(&reevaluate, "v2", "v1"), 0);
    let moved = matrix(&reevaluate, "v1", "v2");
    assert_eq!(change["moved"], moved);
    // Everyone in v2 stays; v1 -> v2 takes 20 % of all visitors.
    let expected = 0.2 * n as f64;
    let se = (n as f64 * 0.2 * 0.8).sqrt();
    assert!(
        (moved as f64 - expected).abs() < TOLERANCE_SE * se,
        "{moved} moved, {expected} expected"
    );
    // Only at the change, and afterwards the split follows the new weights.
    assert_eq!(reevaluate["changed_within_phase"], 0);
    assert_eq!(reevaluate["changed_visitors"], moved);
    let z = row(&change["split_after"], "v2")["deviation_se"]
        .as_f64()
        .unwrap();
    assert!(z.abs() < TOLERANCE_SE, "after the ramp v2 is {z} SE off");

    let keep = ramp("keep");
    assert_eq!(keep["change"]["moved"], 0);
    assert_eq!(keep["changed_visitors"], 0);
}

#[test]
fn simulate_rollback_sends_every_v2_visitor_home() {
    let report = simulate(&[
        "--visitors",
        "500",
        "--canary",
        "20",
        "--requests",
        "4",
        "--change-after",
        "2",
        "--rollback",
        "--key",
        "ip",
    ]);
    let in_v2 = row(&report["split"], "v2")["count"].as_u64().unwrap();
    assert!(in_v2 > 0);
    assert_eq!(matrix(&report, "v2", "v1"), in_v2);
    assert_eq!(matrix(&report, "v1", "v2"), 0);
    assert_eq!(report["changed_within_phase"], 0);
    assert_eq!(row(&report["change"]["split_after"], "v2")["count"], 0);
}

#[test]
fn simulate_prints_a_table_and_bars() {
    let out = harness(&["simulate", "--visitors", "200", "--canary", "25"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("200 visitors x 3 requests = 600 requests"),
        "{text}"
    );
    assert!(text.contains("expected"), "{text}");
    assert!(text.contains("25.00%"), "{text}");
    assert!(text.contains('█'), "{text}");
    assert!(
        text.contains("stickiness: 0 of 200 visitors changed cohort"),
        "{text}"
    );
    assert!(text.contains("fuel per request: mean "), "{text}");

    let out = harness(&["simulate", "--visitors", "10", "--change-after", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--change-after needs a change"));
}

#[test]
fn package_writes_the_catalog_zip() {
    let dir = TempDir::new("package");
    let out = harness(&["package", "--out", dir.0.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let zip_path = dir.0.join(package::zip_name());
    assert!(
        stdout(&out).contains(&package::zip_name()),
        "{}",
        stdout(&out)
    );
    let entries = package::read_zip(&std::fs::read(&zip_path).unwrap()).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["plugin.wasm", ".traefik.yml"]);
    let shipped = std::fs::read(PLUGIN_WASM).unwrap();
    assert!(entries[0].bytes == shipped, "plugin.wasm differs");
    assert_eq!(entries[1].bytes, package::MANIFEST.as_bytes());
    let loose = std::fs::read(dir.0.join("plugin.wasm")).unwrap();
    assert!(loose == shipped, "the loose plugin.wasm differs");
}

#[test]
fn sticky_value_matches_traefik() {
    let out = harness(&["sticky-value", "v2@file", "v1"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "sha256 (>=3.3.4)  fnv (<3.3.4)      name\n\
         9c8fc8fb5822431c  2b4f6c43a8aabf1d  v2@file\n\
         3bfc269594ef6492  8325207b4eb141a   v1\n"
    );
    // What Traefik 3.3.3 (FNV) and 3.3.6 (SHA-256) write for a child `v2`.
    for (version, value) in [("3.3.3", "8325207b4eb1419"), ("3.3.6", "fb04dcb6970e4c3d")] {
        let out = harness(&["sticky-value", "--traefik", version, "v2"]);
        assert!(out.status.success(), "{version}");
        assert_eq!(stdout(&out), format!("{value}  v2\n"), "{version}");
    }
    assert!(!harness(&["sticky-value"]).status.success());
    assert!(
        !harness(&["sticky-value", "--traefik", "three", "v2"])
            .status
            .success()
    );
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in [
        "run",
        "serve",
        "simulate",
        "check",
        "package",
        "whoami",
        "sticky-value",
        "report",
    ] {
        let out = harness(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        assert!(
            stdout(&out).contains("Examples:"),
            "{sub}: {}",
            stdout(&out)
        );
    }
}
