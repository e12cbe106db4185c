//! The configurations and request shapes every Cohort benchmark runs, in
//! one place: natively (`plugin/benches/decision.rs`) and through the guest
//! ([`crate::bench`] with feature `host`, for `harness/benches/guest.rs`,
//! `harness/examples/costs.rs` and `scripts/bench-traefik.sh`). It uses only
//! `std`; each side implements [`Shape`] for its own request type and parses
//! [`CONFIGS`] with its own JSON reader.
//!
//! The shapes that matter are the browser's ("browser-returning",
//! "browser-new": what Chrome sends for a product page, see [`browser`])
//! through the two configurations users copy, the minimal recipe and
//! `.traefik.yml`'s `testData`. The others are older, narrower shapes kept
//! because published figures refer to them; "best-case-…" ones send no
//! other cookie, no real User-Agent and no query, which no browser does.

/// A request type the shapes can be built in.
pub trait Shape: Sized {
    /// `GET uri` from [`SOURCE_ADDR`], with `Host: HOST` and no other
    /// header.
    fn get(uri: &str) -> Self;
    /// One more header value.
    fn header(self, name: &'static str, value: String) -> Self;
}

pub const HOST: &str = "my-app.example.com";
pub const SOURCE_ADDR: &str = "192.0.2.10:40000";

/// Chrome 131 on Linux, as a browser sends it.
pub const BROWSER_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// The truncated user agent of the older shapes.
pub const SHORT_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64)";
/// The browser's page: a path with a query.
pub const BROWSER_PATH: &str = "/products/42?ref=mail";
/// The logged-in user a new browser visitor carries (`header:X-User-Id`,
/// the first key of both configurations).
pub const USER_ID: &str = "u123";

/// A visitor id as Cohort generates them (32 hex digits).
pub const VISITOR: &str = "0123456789abcdef0123456789abcdef";

/// Cohort's configurations, by name, as JSON with native types (numbers,
/// booleans), what a YAML file says; Traefik hands them over with every
/// scalar a string, which both sides' readers accept:
///
/// - "recipe": `recipes/file/flat-routers.yml` (v1 default, v2 10 %,
///   `keep`, key `header:X-User-Id`, request header `X-Canary`);
/// - "testdata": `.traefik.yml`'s `testData` (90/10, three keys, override
///   header and query, a path and a user-agent exclusion);
/// - "full": the recipe plus an override header (`X-Cohort`) and query
///   parameter (`cohort`), and excluded paths;
/// - "reevaluate": the recipe with `stickiness: reevaluate`, which keeps a
///   generated visitor id in `cohort_id` (a second `Set-Cookie`).
///
/// `harness/tests/all/recipe_files.rs` checks the first two against the
/// YAML they copy and the last two against the recipe.
pub const CONFIGS: [(&str, &str); 4] = [
    ("recipe", include_str!("../configs/recipe.json")),
    ("testdata", include_str!("../configs/testdata.json")),
    ("full", include_str!("../configs/full.json")),
    ("reevaluate", include_str!("../configs/reevaluate.json")),
];

/// The JSON of configuration `name` (one of [`CONFIGS`]).
pub fn config_json(name: &str) -> &'static str {
    CONFIGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, json)| *json)
        .expect("a benchmark configuration of that name")
}

/// 30 analytics cookies of about 33 bytes each (988 bytes with the
/// separators), as a browser with a few trackers sends them.
pub fn analytics() -> String {
    (0..30)
        .map(|i| format!("_ga_{i:02}=GA1.2.{}.1700000000", 1_000_000 + i))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Chrome asking for [`BROWSER_PATH`]: its User-Agent and Accept headers,
/// and [`analytics`] cookies followed by `cohort_cookie` when there is one.
pub fn browser<R: Shape>(cohort_cookie: Option<&str>) -> R {
    let cookie = match cohort_cookie {
        Some(cohort) => format!("{}; {cohort}", analytics()),
        None => analytics(),
    };
    R::get(BROWSER_PATH)
        .header("User-Agent", BROWSER_USER_AGENT.into())
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".into(),
        )
        .header("Accept-Language", "en-GB,en;q=0.9".into())
        .header("Cookie", cookie)
}

/// A returning browser visitor: the analytics cookies and `canary=v1`.
pub fn browser_returning<R: Shape>() -> R {
    browser(Some("canary=v1"))
}

/// A new browser visitor: the analytics cookies, no cohort cookie, and a
/// logged-in user id (`X-User-Id`, the configured key).
pub fn browser_new<R: Shape>() -> R {
    browser::<R>(None).header("X-User-Id", USER_ID.into())
}

/// `GET uri` with the older shapes' short User-Agent.
fn bare<R: Shape>(uri: &str) -> R {
    R::get(uri).header("User-Agent", SHORT_USER_AGENT.into())
}

/// A returning visitor with nothing but the cohort cookie (`keep` keeps no
/// visitor id).
fn returning<R: Shape>() -> R {
    bare::<R>("/").header("Cookie", "canary=v1".into())
}

/// A returning visitor under `reevaluate`: the cohort and the kept id.
fn returning_with_id<R: Shape>() -> R {
    bare::<R>("/").header("Cookie", format!("canary=v1; cohort_id={VISITOR}"))
}

/// `(config, shape, request)` for every request shape, the browser's first.
pub fn shapes<R: Shape>() -> Vec<(&'static str, &'static str, R)> {
    let thirty = analytics();
    let big = format!("_analytics={}; canary=v1", "x".repeat(4096 - 60));
    vec![
        ("recipe", "browser-returning", browser_returning()),
        ("recipe", "browser-new", browser_new()),
        ("testdata", "browser-returning", browser_returning()),
        ("testdata", "browser-new", browser_new()),
        ("testdata", "best-case-returning", returning()),
        ("recipe", "best-case-returning", returning()),
        ("recipe", "best-case-new", bare("/")),
        (
            "recipe",
            "30-cookies",
            bare::<R>("/").header("Cookie", format!("{thirty}; canary=v1")),
        ),
        (
            "recipe",
            "new-30-cookies",
            bare::<R>("/").header("Cookie", thirty.clone()),
        ),
        ("recipe", "4kb-cookie", bare::<R>("/").header("Cookie", big)),
        ("reevaluate", "best-case-new", bare("/")),
        ("reevaluate", "best-case-returning", returning_with_id()),
        ("full", "best-case-returning", returning()),
        (
            "full",
            "override",
            returning::<R>().header("X-Cohort", "v2".into()),
        ),
        ("full", "excluded", bare("/healthz")),
    ]
}
