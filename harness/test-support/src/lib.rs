//! What Cohort's tests, fuzz targets and benchmarks share, so that none of
//! them reaches into another crate's files.
//!
//! * [`fuzz`]: the fuzz targets' request format, configurations and
//!   checks (`fuzz/` runs them under libFuzzer, `harness/tests/all/fuzz.rs`
//!   replays the corpora), and with feature `host` the request through a
//!   guest.
//! * [`shapes`]: the configurations and request shapes every benchmark runs
//!   (`plugin/benches/decision.rs` natively); with feature `host`,
//!   [`bench`](crate#features) has them as host values, with the WAT guests
//!   that price the host alone.
//! * [`jar`]: one browser cookie jar, for the simulator, the test client
//!   and the soak.
//! * [`host_go`]: WAT guests behaving as http-wasm-host-go's example and
//!   error guests, which the CLI tests run.
//!
//! # Features
//!
//! `host` adds `fuzz::wasm` and `bench`, which run guests in
//! `http-wasm-host` and so link wasmtime; without it the crate uses only
//! `std` and `cookie`.
//!
//! ```
//! use cohort_test_support::{jar::Jar, shapes};
//!
//! // A returning browser carries the analytics cookies and its cohort.
//! let mut jar = Jar::new();
//! jar.store("canary=v1; Path=/; Max-Age=2592000");
//! assert!(shapes::analytics().starts_with("_ga_00="));
//! assert_eq!(jar.header().as_deref(), Some("canary=v1"));
//! assert!(shapes::config_json("recipe").contains("\"default\""));
//! ```

// Test code: a broken fixture is a panic with a message, as in the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "host")]
pub mod bench;
pub mod fuzz;
pub mod host_go;
pub mod jar;
pub mod shapes;
