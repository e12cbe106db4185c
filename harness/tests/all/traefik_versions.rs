//! The pattern scenarios against other Traefik versions, in-process: CI runs
//! them on Traefik 3.3.3 (weighted sticky values are FNV-1, so Cohort runs
//! with `weightedSticky.hash: fnv`) and 3.5.3 (no multi-layer routing), the
//! two `bash scripts/setup.sh --tests` installs side by side (not on PATH)
//! under `${COHORT_TRAEFIK_DIR:-$HOME/.cache/cohort/traefik}/X/traefik`.
//! 3.7.15, on PATH, is what the rest of the suite runs.
//!
//! Each scenario is an ordinary test of another module, run again with the
//! version's binary chosen for this thread (`traefik::with_binary`); a
//! pattern the version lacks is `n/a`. `scripts/traefik-matrix.sh` runs the
//! same lists (checked below) against every Traefik 3.x minor.

use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::support::traefik::{self, Binary, Version, repo_root, with_binary};
use crate::{
    traefik_patterns, traefik_rollout, traefik_seed, traefik_spoofing, traefik_sticky_watch,
};

/// The versions this test runs (CI's, besides 3.7.15 on PATH).
pub const CI_VERSIONS: [&str; 2] = ["3.3.3", "3.5.3"];

type Scenario = (&'static str, fn() -> Result<()>);

macro_rules! scenario {
    ($module:ident :: $test:ident) => {
        (
            concat!(stringify!($module), "::", stringify!($test)),
            $module::$test as fn() -> Result<()>,
        )
    };
}

/// A pattern and the tests that prove it.
pub struct Pattern {
    pub name: &'static str,
    /// The name of its test list in `scripts/traefik-matrix.sh`.
    pub script_list: &'static str,
    /// Whether a Traefik version has what the pattern needs.
    pub supported: fn(Version) -> bool,
    pub scenarios: &'static [Scenario],
}

pub const PATTERNS: &[Pattern] = &[
    Pattern {
        name: "flat routers",
        script_list: "FLAT_TESTS",
        supported: |_| true,
        scenarios: &[
            scenario!(traefik_seed::traefik_seed_default_traffic_reaches_v1_with_a_sticky_cookie),
            scenario!(
                traefik_seed::traefik_seed_canary_cookie_reaches_v2_with_its_own_sticky_cookie
            ),
            scenario!(traefik_seed::traefik_seed_sticky_cookie_pins_one_pod),
            scenario!(traefik_seed::traefik_seed_switching_version_gives_a_new_sticky_cookie),
            scenario!(traefik_seed::traefik_seed_with_cohort_assigns_new_visitors_and_keeps_them),
            scenario!(traefik_seed::traefik_seed_with_cohort_same_user_same_cohort_everywhere),
            scenario!(traefik_seed::traefik_seed_adding_cohort_to_a_running_traefik),
            scenario!(traefik_rollout::traefik_rollout_rollback_on_flat_routers_takes_one_request),
        ],
    },
    Pattern {
        name: "multi-layer",
        script_list: "MULTI_LAYER_TESTS",
        supported: Version::supports_multi_layer,
        scenarios: &[
            scenario!(
                traefik_patterns::traefik_multilayer_first_request_lands_on_the_assigned_version
            ),
            scenario!(
                traefik_patterns::traefik_multilayer_version_switch_gives_a_pod_of_the_new_version
            ),
            scenario!(traefik_seed::traefik_seed_with_cohort_multilayer_routes_the_first_request),
            scenario!(traefik_rollout::traefik_rollout_ramp_with_keep_moves_nobody),
            scenario!(
                traefik_rollout::traefik_rollout_ramp_with_reevaluate_moves_only_stable_users
            ),
            scenario!(traefik_rollout::traefik_rollout_drain_then_rollback),
        ],
    },
    Pattern {
        name: "weighted sticky",
        script_list: "WEIGHTED_TESTS",
        supported: |_| true,
        scenarios: &[
            scenario!(traefik_patterns::traefik_weighted_sticky_follows_cohort_not_the_wrr_weights),
            scenario!(traefik_patterns::traefik_weighted_sticky_without_cohort_is_plain_wrr),
            scenario!(traefik_spoofing::traefik_spoof_forged_weighted_sticky_cookie_never_decides),
            scenario!(
                traefik_sticky_watch::traefik_overruling_wrong_child_names_is_a_warning_in_traefiks_log
            ),
            scenario!(
                traefik_sticky_watch::traefik_overruling_the_wrong_hash_is_a_warning_in_traefiks_log
            ),
            scenario!(traefik_sticky_watch::traefik_honouring_the_recipe_logs_no_warning),
        ],
    },
];

/// One cell of the table.
#[derive(Debug)]
enum Cell {
    Pass,
    NotApplicable,
    /// The scenarios that failed, with why.
    Fail(Vec<(&'static str, String)>),
}

impl Cell {
    fn label(&self) -> &'static str {
        match self {
            Cell::Pass => "pass",
            Cell::NotApplicable => "n/a",
            Cell::Fail(_) => "FAIL",
        }
    }
}

/// Where `scripts/traefik-install.sh` puts Traefik `version`.
pub fn installed(version: &str) -> PathBuf {
    let dir = std::env::var_os("COHORT_TRAEFIK_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/cohort/traefik")
        },
        PathBuf::from,
    );
    dir.join(version).join("traefik")
}

fn run_scenario(f: fn() -> Result<()>) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned())),
    }
}

/// Every pattern against `binary`, one scenario after the other.
fn column(binary: &Binary) -> Vec<Cell> {
    PATTERNS
        .iter()
        .map(|pattern| {
            if !(pattern.supported)(binary.version) {
                return Cell::NotApplicable;
            }
            let failures: Vec<(&'static str, String)> = pattern
                .scenarios
                .iter()
                .filter_map(|(name, f)| {
                    let started = Instant::now();
                    let result = with_binary(&binary.path, || run_scenario(*f));
                    eprintln!(
                        "Traefik {}: {name} {} in {:.1} s",
                        binary.version,
                        if result.is_ok() { "passed" } else { "FAILED" },
                        started.elapsed().as_secs_f64()
                    );
                    result.err().map(|e| (*name, e))
                })
                .collect();
            if failures.is_empty() {
                Cell::Pass
            } else {
                Cell::Fail(failures)
            }
        })
        .collect()
}

/// A Markdown table, pattern × version.
fn table(versions: &[Version], columns: &[Vec<Cell>]) -> String {
    let mut out = String::from("| pattern |");
    for v in versions {
        let _ = write!(out, " {v} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(versions.len()));
    out.push('\n');
    for (row, pattern) in PATTERNS.iter().enumerate() {
        let _ = write!(out, "| {} |", pattern.name);
        for column in columns {
            let _ = write!(out, " {} |", column[row].label());
        }
        out.push('\n');
    }
    out
}

#[test]
fn traefik_versions_patterns_on_ci_traefiks() -> Result<()> {
    let mut binaries = Vec::new();
    for version in CI_VERSIONS {
        let path = installed(version);
        if !path.exists() {
            bail!(
                "Traefik {version} is not installed at {}: run `bash scripts/setup.sh --tests` \
                 (or `bash scripts/traefik-install.sh {version}`)",
                path.display()
            );
        }
        let binary = Binary::at(&path)?;
        if binary.version.to_string() != version {
            bail!("{} reports Traefik {}", path.display(), binary.version);
        }
        binaries.push(binary);
    }
    let started = Instant::now();
    let columns: Vec<Vec<Cell>> = std::thread::scope(|scope| {
        let handles: Vec<_> = binaries
            .iter()
            .map(|binary| scope.spawn(|| column(binary)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let failed = || Cell::Fail(vec![("the column", "panicked".to_owned())]);
                    PATTERNS.iter().map(|_| failed()).collect()
                })
            })
            .collect()
    });
    let versions: Vec<Version> = binaries.iter().map(|b| b.version).collect();
    let text = format!(
        "pattern scenarios per Traefik version ({:.0} s; 3.7.15 is the rest of the suite):\n{}",
        started.elapsed().as_secs_f64(),
        table(&versions, &columns)
    );
    // Past the test harness's capture: CI's log shows the table.
    let _ = writeln!(std::io::stderr(), "{text}");
    let mut failures = String::new();
    for (binary, column) in binaries.iter().zip(&columns) {
        for (pattern, cell) in PATTERNS.iter().zip(column) {
            if let Cell::Fail(failed) = cell {
                for (name, why) in failed {
                    let _ = writeln!(
                        failures,
                        "Traefik {} {}: {name}: {why}",
                        binary.version, pattern.name
                    );
                }
            }
        }
    }
    if !failures.is_empty() {
        bail!("{text}\n{failures}");
    }
    Ok(())
}

#[test]
fn traefik_versions_without_multi_layer_refuse_parent_refs_at_once() -> Result<()> {
    // Why multi-layer is n/a there: such a Traefik refuses the recipe's
    // whole file ("field not found, node: parentRefs"), and the fixture
    // says so as soon as the log does, not after its 60 s timeout.
    let backends = crate::support::recipes::Backends::start()?;
    let config = backends.recipe("file/multi-layer.yml", &[])?;
    for version in CI_VERSIONS {
        let binary = Binary::at(&installed(version))?;
        if binary.version.supports_multi_layer() {
            continue;
        }
        let started = Instant::now();
        let refused = with_binary(&binary.path, || traefik::Traefik::start(&config));
        let Err(error) = refused else {
            bail!("Traefik {version} served the multi-layer recipe");
        };
        let error = format!("{error:#}");
        assert!(error.contains("refused the dynamic config"), "{error}");
        assert!(error.contains("parentRefs"), "{error}");
        assert!(started.elapsed().as_secs() < 30, "{error}");
    }
    Ok(())
}

/// The test names between `NAME=(` and `)` in the matrix script.
fn script_list(script: &str, name: &str) -> Vec<String> {
    let start = format!("{name}=(");
    script
        .split_once(&start)
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| {
            list.split_whitespace()
                .filter(|w| !w.starts_with('#'))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_matrix_script_runs_the_same_scenarios() {
    let path = repo_root().join("scripts/traefik-matrix.sh");
    let script = std::fs::read_to_string(&path).unwrap();
    for pattern in PATTERNS {
        let names: Vec<&str> = pattern.scenarios.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            script_list(&script, pattern.script_list),
            names,
            "{} in {}",
            pattern.script_list,
            path.display()
        );
    }
    // And the multi-layer column is n/a exactly where Traefik lacks it.
    assert!(script.contains("MULTI_LAYER_SINCE=3.6.0"));
    assert!(!traefik::Version(3, 5, 3).supports_multi_layer());
}
