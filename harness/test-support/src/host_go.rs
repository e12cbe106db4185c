//! Our own WAT guests that behave as http-wasm-host-go's example and error
//! guests do (`guests/host-go/*.wat`, each written afresh from the
//! behaviour, its header naming the host-go guest it mirrors and what
//! host-go's tests expect of it). `harness/tests/all/host_go_examples.rs`
//! runs each through `cohort-harness run` and `check`.
//!
//! ```
//! use cohort_test_support::host_go;
//!
//! assert_eq!(host_go::GUESTS.len(), 10);
//! assert!(host_go::source("auth").unwrap().contains("WWW-Authenticate"));
//! assert!(host_go::source("no-such-guest").is_none());
//! ```

/// `(name, WAT source)` of every guest: the six examples (auth, config, log,
/// redact, router, wasi) and the four error guests.
pub const GUESTS: [(&str, &str); 10] = [
    ("auth", include_str!("../guests/host-go/auth.wat")),
    ("config", include_str!("../guests/host-go/config.wat")),
    ("log", include_str!("../guests/host-go/log.wat")),
    ("redact", include_str!("../guests/host-go/redact.wat")),
    ("router", include_str!("../guests/host-go/router.wat")),
    ("wasi", include_str!("../guests/host-go/wasi.wat")),
    (
        "panic_on_start",
        include_str!("../guests/host-go/panic_on_start.wat"),
    ),
    (
        "panic_on_handle_request",
        include_str!("../guests/host-go/panic_on_handle_request.wat"),
    ),
    (
        "panic_on_handle_response",
        include_str!("../guests/host-go/panic_on_handle_response.wat"),
    ),
    (
        "set_request_header_after_next",
        include_str!("../guests/host-go/set_request_header_after_next.wat"),
    ),
];

/// Guest `name`'s WAT source.
pub fn source(name: &str) -> Option<&'static str> {
    GUESTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
