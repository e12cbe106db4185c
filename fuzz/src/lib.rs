//! Shared pieces of Cohort's fuzz targets (`fuzz_targets/`).
//!
//! * [`input`]: the text request format of `decision` and `wasm_request`.
//! * [`configs`]: the configurations requests run under, with their
//!   expected shape written out.
//! * [`checks`]: checks on cookies and `Set-Cookie` values, independent of
//!   the plugin's own cookie code.
//! * [`native`]: the request through the native decision core.
//! * [`wasm`] (feature `wasm`): the request through the real `plugin.wasm`
//!   in the host.
//!
//! `input`, `configs`, `checks` and `wasm` use nothing of the plugin: they
//! live in `cohort-test-support` (`harness/test-support/src/fuzz/`), which
//! the harness's test suite also uses to replay the corpora as an ordinary
//! test (`harness/tests/all/fuzz.rs`).

pub use cohort_test_support::fuzz::{checks, configs, input};
pub mod native;
#[cfg(feature = "wasm")]
pub use cohort_test_support::fuzz::wasm;

#[cfg(test)]
mod tests {
    use super::configs::CONFIGS;

    #[test]
    fn metadata_matches_config() {
        assert_eq!(super::native::configs().len(), CONFIGS.len());
    }
}
