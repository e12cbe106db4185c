//! The soak and reload-safety driver: Cohort in a real Traefik in front of
//! whoami pods, under mixed keep-alive traffic from several threads, with
//! every response checked; plus the same traffic through the harness to
//! watch the guest's memory per instance.
//!
//! * [`soak`]: warm-up, then N requests; Traefik's RSS at start, after the
//!   warm-up and at the end.
//! * [`reloads`]: warm-up, then dynamic-config reloads (canary weight, seed
//!   and cookie max-age change every time) while traffic keeps flowing,
//!   with Cohort or with a no-op guest ([`GuestKind::Noop`]), so that the
//!   RSS growth of the two can be compared: Traefik leaks per reload on its
//!   own (traefik/traefik#13235).
//! * [`guest_memory`]: the same mix through `Guest::handle`, reading
//!   `memory_bytes` of every instance.
//!
//! The traffic ([`Visitors`]) is one thread's crowd: new visitors, returning
//! visitors with cookie jars, logged-in visitors (`X-User-Id`), an excluded
//! path, and hostile requests (Cookie headers up to 24 KB, thousands of
//! pairs, non-UTF-8 and control bytes, duplicate and invalid cohort cookies,
//! several Cookie lines, spoofed `X-Canary`, forged overrides from outside
//! `allowFrom`, odd methods, HEAD, long URIs). Requests are written on raw
//! keep-alive TCP connections so that any byte can be sent.
//!
//! Every response is checked ([`Visitors::verify`]): a `2xx` (control bytes:
//! the `400` Go's HTTP server answers before any middleware runs), the pod
//! that answered is the version in `X-Canary` as the backend received it
//! (exactly one value), the backend's Cookie header carries exactly one
//! `canary` pair with that value, a `Set-Cookie: canary=` agrees with it,
//! and the cohort is the one the visitor's cookie names where the decision
//! rules say so.
//!
//! Traefik 3.7.15 does not write a guest trap to its log (the request gets
//! a `500` whose body is the `wasm error`): the soak counts those bodies on
//! the client, and every non-2xx in Traefik's access log (filtered to
//! non-2xx) on the server, and greps the log anyway.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use cohort_harness::whoami::{Deployment, Reply};
use cohort_harness::{Guest, HostOptions, Request};
use cohort_test_support::jar;
use serde_json::json;

use super::traefik::{ALIAS, Options, Traefik};

mod config;
mod guest_memory;
mod raw_client;
mod reencode;
mod reloads;
mod rng;
mod rss;
mod stats;
mod steady;
mod traffic;

pub use config::*;
pub use guest_memory::*;
use raw_client::*;
pub use reencode::*;
pub use reloads::*;
use rng::*;
pub use rss::*;
pub use stats::*;
pub use steady::*;
pub use traffic::*;

/// The variants; `v1` is the default.
pub const VARIANTS: [&str; 2] = ["v1", "v2"];
/// The cohort cookie.
pub const COOKIE: &str = "canary";
/// The cohort request header.
pub const HEADER: &str = "X-Canary";
/// The override header, allowed only from `10.0.0.0/8`: every soak client
/// is on loopback, so every override is forged and must be ignored.
pub const OVERRIDE_HEADER: &str = "X-Canary-Force";
/// The override query parameter (same rule).
pub const OVERRIDE_QUERY: &str = "canary";
/// The path Cohort excludes.
pub const EXCLUDED_PATH: &str = "/healthz";
/// The `Host` every request carries.
pub const HOST: &str = "soak.test";
/// Traefik's per-pod sticky cookie on both services.
pub const POD_COOKIE: &str = "pod";

/// Sizes of the padding cookie in [`Kind::BigCookie`], cycled.
pub(super) const BIG_COOKIE_SIZES: [usize; 4] = [3_000, 8_192, 16_500, 24_000];
/// Numbers of pairs in [`Kind::ManyPairs`], cycled.
pub(super) const PAIR_COUNTS: [usize; 3] = [500, 1_500, 3_000];
/// Returning visitors kept per thread.
pub(super) const JARS_PER_THREAD: usize = 256;
/// Failure descriptions kept (the counts are always complete).
pub(super) const KEEP_FAILURES: usize = 20;

/// Static config added to the fixture's: an access log of every non-2xx
/// answer, Traefik's own record of what it sent; and the API's debug
/// endpoints (routed on the admin entry point only), for Go's heap after a
/// forced GC.
pub(super) const EXTRA_STATIC: &str = r#"accessLog:
  filePath: access.log
  format: json
  filters:
    statusCodes: ["100-199", "300-599"]
api:
  debug: true
"#;
