//! The harness's one integration-test binary: each module is one area.

// Test code may fail loudly: a panic is how a test reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cohort;
mod conformance;
mod plugin;
mod shipped;
mod support;
mod traefik_seed;
mod transcripts;
