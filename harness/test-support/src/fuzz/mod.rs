//! The pieces of Cohort's fuzz targets (`fuzz/fuzz_targets/`) that the
//! ordinary test suite shares, so the replay of the corpora
//! (`harness/tests/all/fuzz.rs`) and the fuzzer cannot drift apart.
//!
//! * [`input`]: the text request format of `decision` and `wasm_request`.
//! * [`configs`]: the configurations requests run under, with their
//!   expected shape written out.
//! * [`checks`]: checks on cookies and `Set-Cookie` values, independent of
//!   the plugin's own cookie code.
//! * `wasm` (feature `host`): the request through a guest in the host.
//!
//! None of them uses the plugin: the fuzz crate's `native` module, which
//! runs the plugin's decision core, stays in `fuzz/`.

pub mod checks;
pub mod configs;
pub mod input;
#[cfg(feature = "host")]
pub mod wasm;
