//! Cohort's decision core: sticky canary and A/B cohort assignment, as plain
//! Rust over plain types with no host calls, so that all of it is tested
//! natively. The http-wasm adapter (`main.rs`) reads the request through
//! [`decision::RequestView`], calls [`decision::decide`] and writes what the
//! [`decision::Decision`] says.
//!
//! - [`config`]: Traefik's string-typed JSON → a validated [`config::Config`].
//! - [`cookie`]: `Cookie` header parsing and rewriting, `Set-Cookie` values.
//! - [`bucket`]: weighted rendezvous hashing, visitor ids, Traefik sticky values.
//! - [`net`]: client addresses and CIDR ranges.
//! - [`pattern`]: exclusion patterns, literal where they can be.
//! - [`scan`]: byte search a word at a time.
//! - [`decision`]: the precedence of exclusion, override, cookie and bucket.
//! - [`sticky_watch`]: spotting Traefik overruling the weighted sticky value.
//! - [`values`]: splitting the host's NUL-separated value lists.

pub mod bucket;
pub mod config;
pub mod cookie;
pub mod decision;
pub mod net;
pub mod pattern;
pub mod scan;
pub mod sticky_watch;
pub mod values;

pub use config::{Config, ConfigError};
pub use decision::{Decision, Reason, RequestView, Values, decide};
