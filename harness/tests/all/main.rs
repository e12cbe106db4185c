//! The harness's one integration-test binary: each module is one area.

// Test code may fail loudly: a panic is how a test reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bench_scripts;
mod budgets;
mod cli;
mod cohort;
mod conformance;
mod fuzz;
mod host_go_examples;
mod hostile;
mod plugin;
mod prices;
mod recipe_files;
mod serve;
mod shipped;
mod support;
mod traefik_bad_config;
mod traefik_large_headers;
mod traefik_patterns;
mod traefik_report;
mod traefik_rollout;
mod traefik_scale;
mod traefik_seed;
mod traefik_soak;
mod traefik_spoofing;
mod traefik_sticky_watch;
mod traefik_versions;
mod transcripts;
