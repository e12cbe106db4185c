//! The benchmark's report scripts (`scripts/pprof-breakdown.py`,
//! `scripts/bench_stats.py`) against their own tests, so that a figure in
//! BENCHMARKS.md never comes from an untested split or interval.

use std::process::Command;

use crate::support::traefik::repo_root;

#[test]
fn bench_report_scripts_pass_their_tests() {
    let scripts = repo_root().join("scripts");
    let out = Command::new("python3")
        .args(["-W", "error", "-m", "unittest", "discover", "-s"])
        .arg(&scripts)
        .args(["-p", "test_*.py"])
        .output()
        .expect("python3 runs (scripts/setup.sh needs it for Traefik too)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // unittest reports "Ran N tests" on stderr: none found would pass too.
    assert!(
        stderr.contains("Ran ") && !stderr.contains("Ran 0 tests"),
        "{stderr}"
    );
}
