//! A wasmtime host for [http-wasm] guests that behaves like Traefik's.
//!
//! Traefik 3.7 runs wasm middleware through http-wasm-host-go on wazero
//! 1.8. This crate runs the same guests on wasmtime, as a library for
//! tests, benchmarks, CLIs and proxies, and reproduces Traefik's host where
//! it differs from a naive one (see [`HostOptions::faithful`]). It knows
//! nothing of any particular guest.
//!
//! ```
//! use http_wasm_host::{EchoBackend, Guest, HostOptions, Request};
//!
//! // A guest that adds a header and calls next.
//! let wasm = wat::parse_str(r#"
//!   (module
//!     (import "http_handler" "set_header_value"
//!       (func $set (param i32 i32 i32 i32 i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 0) "X-Seen" "yes")
//!     (func (export "handle_request") (result i64)
//!       (call $set (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 6) (i32.const 3))
//!       (i64.const 1))
//!     (func (export "handle_response") (param i32 i32)))
//! "#)?;
//! let guest = Guest::load(&wasm, HostOptions::default())?;
//! let backend = EchoBackend::new();
//! let exchange = guest.handle(Request::get("/").header("Cookie", "a=b"), &backend)?;
//! let seen = exchange.backend_request.expect("next was called");
//! assert_eq!(seen.headers.get("x-seen"), Some("yes"));
//! assert_eq!(exchange.response.status, 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`model`]: [`Request`], [`Response`], [`Headers`], the [`Backend`]
//!   that "next" calls and the recording [`EchoBackend`].
//! * [`host`]: [`Guest`] (load, instance pool, [`Guest::handle`]) and
//!   [`Exchange`] (the response plus what it cost).
//! * [`abi`]: the host functions, split by concern: the ABI table and its
//!   bit-packing, guest memory, request/response state, Go URL parsing, the
//!   linker table.
//! * [`check`]: the load-time compatibility check ([`check::inspect`]).
//! * [`traefik`]: Traefik-faithful pieces (config stringification, fake
//!   random, fake monotonic clock).
//! * [`lower`]: the bulk-memory lowering ([`http_wasm_lower`]), re-exported.
//! * [`Error`]: the one error type.
//!
//! [http-wasm]: https://http-wasm.io

pub mod abi;
pub mod check;
pub mod error;
pub mod host;
pub mod log;
pub mod model;
pub mod traefik;

pub use http_wasm_lower as lower;

pub use abi::{BodyKind, Features, HeaderKind, HostCalls, Import};
pub use check::{CheckPolicy, CompatReport};
pub use error::{Error, Result};
pub use host::{Exchange, Guest, GuestConfig, HostOptions, InstanceInfo, Stdio};
pub use log::{LogLevel, LogLine, LogSink};
pub use model::{Backend, BackendError, EchoBackend, Headers, Request, Response};
