//! The harness's one error type.
//!
//! Every failure the library reports is an [`Error`]: loading a guest
//! (compile, export/import checks, the compatibility check, start-up) and
//! serving a request (a trap in the guest, an ABI violation, `proc_exit`,
//! running out of fuel). Variants carry owned text only, so an error can be
//! cloned into an [`Exchange`](crate::Exchange) and compared in tests.

use std::fmt;

/// `Result` with the harness's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong loading or running an http-wasm guest.
///
/// Messages follow http-wasm-host-go's wording where it has one (that is
/// what Traefik prints), with the detail Go leaves out (what was found).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid WebAssembly module, or wasmtime refused it.
    #[error("wasm: error compiling guest: {0}")]
    Compile(String),

    /// A required export is absent (`memory`, `handle_request`, `handle_response`).
    #[error("wasm: guest doesn't export {kind}[{name}]")]
    MissingExport {
        /// `func` or `memory`.
        kind: &'static str,
        /// The export's name.
        name: &'static str,
    },

    /// A required export exists with the wrong type.
    #[error(
        "wasm: guest exports the wrong signature for {kind}[{name}]: should be {expected}, found {found}"
    )]
    WrongExport {
        /// `func` or `memory`.
        kind: &'static str,
        /// The export's name.
        name: &'static str,
        /// What the ABI requires, e.g. `() -> (i64)`.
        expected: String,
        /// What the guest exports, e.g. `() -> (i32)` or `a global`.
        found: String,
    },

    /// The guest imports something no http-wasm host provides.
    #[error("wasm: guest imports {module}.{name}, which the host does not provide ({detail})")]
    UnknownImport {
        /// Import module, e.g. `http_handler` or `env`.
        module: String,
        /// Import name.
        name: String,
        /// Why it is unknown.
        detail: String,
    },

    /// The guest imports a host function with the wrong signature.
    #[error(
        "wasm: guest imports {module}.{name} with the wrong signature: should be {expected}, found {found}"
    )]
    WrongImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// The ABI's signature.
        expected: String,
        /// The guest's signature.
        found: String,
    },

    /// The load-time compatibility check refused the guest (see [`crate::check`]).
    #[error("wasm: guest refused by the compatibility check: {0}")]
    Incompatible(String),

    /// The guest's configuration cannot be delivered the way Traefik would.
    #[error("config: {0}")]
    Config(String),

    /// wasmtime failed to link or instantiate the guest.
    #[error("wasm: error instantiating guest: {0}")]
    Instantiate(String),

    /// The guest trapped (an `unreachable`, an out-of-bounds access, ...).
    #[error("wasm error in {function}: {message}")]
    Trap {
        /// The export that was running: `_start`, `handle_request`, ...
        function: String,
        /// wasmtime's trap text, with the wasm backtrace when available.
        message: String,
    },

    /// The guest broke an http-wasm ABI rule in a host call.
    #[error("http_handler.{import}: {message}")]
    Abi {
        /// The host function the guest called.
        import: &'static str,
        /// The rule it broke, in http-wasm-host-go's words.
        message: String,
    },

    /// The guest called WASI `proc_exit` with a non-zero code.
    #[error("wasm: {function} exited with code {code}")]
    Exit {
        /// The export that was running.
        function: String,
        /// The exit code.
        code: i32,
    },

    /// The guest used up the fuel allowed for one call.
    #[error("wasm: {function} ran out of fuel after {fuel} units")]
    OutOfFuel {
        /// The export that was running.
        function: String,
        /// The budget it used up.
        fuel: u64,
    },

    /// The harness itself failed (a poisoned lock, a wasmtime API error).
    #[error("harness: {0}")]
    Host(String),
}

impl Error {
    /// True for errors raised by the guest while it ran (trap, ABI
    /// violation, exit, fuel), as opposed to load-time refusals.
    pub fn is_guest_fault(&self) -> bool {
        matches!(
            self,
            Error::Trap { .. } | Error::Abi { .. } | Error::Exit { .. } | Error::OutOfFuel { .. }
        )
    }

    pub(crate) fn host(err: impl fmt::Display) -> Self {
        Error::Host(err.to_string())
    }
}
