//! The request shapes every Cohort benchmark runs, in one place: natively
//! (`plugin/benches/decision.rs`) and through the guest
//! (`harness/benches/common/shapes.rs`, for `harness/benches/guest.rs` and
//! `harness/examples/costs.rs`), each including this file by path. It uses
//! only `std`; each side implements [`Shape`] for its own request type.

#![allow(dead_code)]

/// A request type the shapes can be built in.
pub trait Shape: Sized {
    /// `GET uri` from [`SOURCE_ADDR`], with `Host: HOST` and
    /// `User-Agent: USER_AGENT`.
    fn get(uri: &str) -> Self;
    /// One more header value.
    fn header(self, name: &'static str, value: String) -> Self;
}

pub const HOST: &str = "my-app.example.com";
pub const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64)";
pub const SOURCE_ADDR: &str = "192.0.2.10:40000";

/// A visitor id as Cohort generates them (32 hex digits).
pub const VISITOR: &str = "0123456789abcdef0123456789abcdef";

/// A returning visitor: the cohort cookie (`keep` keeps no visitor id).
fn returning<R: Shape>() -> R {
    R::get("/").header("Cookie", "canary=v1".into())
}

/// A returning visitor under `reevaluate`: the cohort and the kept id.
fn returning_with_id<R: Shape>() -> R {
    R::get("/").header("Cookie", format!("canary=v1; cohort_id={VISITOR}"))
}

/// `(config, shape, request)` for every request shape; the configurations
/// are "seed" (`recipes/file/flat-routers.yml` at 50/50), "full" (the seed
/// with an override header and query parameter and excluded paths) and
/// "reevaluate" (the seed with `stickiness: reevaluate`).
pub fn shapes<R: Shape>() -> Vec<(&'static str, &'static str, R)> {
    let thirty = (0..30)
        .map(|i| format!("_ga_{i:02}=GA1.2.{}.1700000000", 1_000_000 + i))
        .collect::<Vec<_>>()
        .join("; ");
    let big = format!("_analytics={}; canary=v1", "x".repeat(4096 - 60));
    vec![
        ("seed", "new-visitor", R::get("/")),
        ("seed", "returning", returning()),
        (
            "seed",
            "30-cookies",
            R::get("/").header("Cookie", format!("{thirty}; canary=v1")),
        ),
        (
            "seed",
            "new-30-cookies",
            R::get("/").header("Cookie", thirty.clone()),
        ),
        ("seed", "4kb-cookie", R::get("/").header("Cookie", big)),
        ("reevaluate", "new-visitor", R::get("/")),
        ("reevaluate", "returning", returning_with_id()),
        ("full", "returning", returning()),
        (
            "full",
            "override",
            returning::<R>().header("X-Cohort", "v2".into()),
        ),
        ("full", "excluded", R::get("/healthz")),
    ]
}
