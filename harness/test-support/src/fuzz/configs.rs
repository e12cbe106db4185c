//! The configurations the `decision` and `wasm_request` targets run requests
//! under, with what each one must produce written out by hand, so that the
//! checks do not trust the code they check. `tests::metadata_matches_config`
//! (in the fuzz crate's `lib.rs`) holds the two together.
//!
//! Scalars are strings, as Traefik hands them to the guest. Every
//! configuration keeps the cohort header at its default, `X-Canary`.
//!
//! Std only, so the native fuzz targets use it without wasmtime.

/// The request header carrying the cohort to the backend.
pub const COHORT_HEADER: &str = "X-Canary";

/// One configuration and its expected shape.
#[derive(Debug, Clone, Copy)]
pub struct FuzzConfig {
    pub json: &'static str,
    /// The cohort cookie's name.
    pub cookie: &'static str,
    /// The visitor-id cookie's name, when ids are kept.
    pub visitor: Option<&'static str>,
    /// `(name, weighted sticky value)` of every variant, in order.
    pub variants: &'static [(&'static str, Option<&'static str>)],
    /// The weighted service's sticky cookie, if configured.
    pub sticky_cookie: Option<&'static str>,
    /// What follows `name=value` in every `Set-Cookie` the plugin writes.
    pub suffix: &'static str,
    /// The response header reporting `variant; reason=...`, if configured.
    pub debug_header: Option<&'static str>,
}

impl FuzzConfig {
    pub fn is_variant(&self, name: &[u8]) -> bool {
        self.variants.iter().any(|(v, _)| v.as_bytes() == name)
    }

    /// The weighted sticky value the named variant must carry.
    pub fn sticky_value_of(&self, name: &[u8]) -> Option<&'static str> {
        self.variants
            .iter()
            .find(|(v, _)| v.as_bytes() == name)
            .and_then(|(_, sticky)| *sticky)
    }
}

/// Why a request got its cohort, as the debug header spells it.
pub const REASONS: &[&str] = &[
    "excluded",
    "override",
    "cookie",
    "reevaluated",
    "rollback",
    "assigned",
    "reassigned",
];

pub const CONFIGS: &[FuzzConfig] = &[
    // 0. Nothing configured: everyone on v1, v2 by override only (none set).
    FuzzConfig {
        json: "{}",
        cookie: "canary",
        visitor: None,
        variants: &[("v1", None), ("v2", None)],
        sticky_cookie: None,
        suffix: "; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax",
        debug_header: None,
    },
    // 1. Everything at once: weighted sticky children, key sources, a
    //    guarded override, exclusions, every cookie attribute.
    FuzzConfig {
        json: r#"{
            "seed": "fuzz-1",
            "cookie": {"name": "canary", "maxAge": "3600", "path": "/", "domain": "example.com",
                       "secure": "true", "httpOnly": "true", "sameSite": "Strict"},
            "variants": [
                {"name": "stable", "default": "true", "service": "app-v1@file"},
                {"name": "canary-v2", "weight": "10", "service": "app-v2@file"}
            ],
            "weightedSticky": {"cookie": "lb_sticky"},
            "keys": ["header:X-User", "cookie:uid", "ip"],
            "override": {"header": "X-Cohort", "query": "cohort", "allowFrom": ["10.0.0.0/8", "::1/128"]},
            "exclude": {"paths": ["^/health", "\\.css$"], "methods": ["OPTIONS"], "userAgents": ["(?i)bot"]},
            "debugHeader": "X-Cohort-Debug"
        }"#,
        cookie: "canary",
        visitor: None,
        variants: &[
            ("stable", Some("1bc4b4fe4f78c77f")),
            ("canary-v2", Some("a83a62e10322415a")),
        ],
        sticky_cookie: Some("lb_sticky"),
        suffix: "; Path=/; Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=Strict",
        debug_header: Some("X-Cohort-Debug"),
    },
    // 2. Four variants (drained, default in second place, disabled),
    //    re-evaluated stickiness, an open override, a session cookie.
    FuzzConfig {
        json: r#"{
            "seed": "fuzz-2",
            "variants": [
                {"name": "a", "weight": "25.5", "state": "drained"},
                {"name": "b", "default": "true"},
                {"name": "c", "weight": "30", "state": "disabled"},
                {"name": "d", "weight": "12.25"}
            ],
            "stickiness": "reevaluate",
            "override": {"header": "X-Cohort", "query": "cohort"},
            "keys": ["cookie:uid"],
            "visitorCookie": "vid",
            "debugHeader": "X-Debug",
            "cookie": {"name": "ab", "maxAge": "0", "sameSite": "", "httpOnly": "false"}
        }"#,
        cookie: "ab",
        visitor: Some("vid"),
        variants: &[("a", None), ("b", None), ("c", None), ("d", None)],
        sticky_cookie: None,
        suffix: "; Path=/",
        debug_header: Some("X-Debug"),
    },
    // 3. __Host- cookies, a 50/50 A/B test, a query override from private
    //    ranges written as one comma-separated string, method exclusions.
    FuzzConfig {
        json: r#"{
            "cookie": {"name": "__Host-cohort", "secure": "true", "sameSite": "None"},
            "visitorCookie": "__Host-vid",
            "variants": [{"name": "control", "weight": "50"}, {"name": "treatment", "weight": "50"}],
            "override": {"query": "ab", "allowFrom": "192.168.0.0/16, 2001:db8::/32"},
            "exclude": {"methods": "HEAD, OPTIONS", "paths": ["^/static/"]}
        }"#,
        cookie: "__Host-cohort",
        visitor: Some("__Host-vid"),
        variants: &[("control", None), ("treatment", None)],
        sticky_cookie: None,
        suffix: "; Path=/; Max-Age=2592000; Secure; HttpOnly; SameSite=None",
        debug_header: None,
    },
    // 4. A sticky value on one variant only (the other's sticky pair must
    //    go), the cohort header doubling as the override header, a path and
    //    a domain.
    FuzzConfig {
        json: r#"{
            "seed": "fuzz-4",
            "variants": [
                {"name": "v1", "weight": "90", "stickyValue": "abc123"},
                {"name": "v2", "weight": "10"}
            ],
            "weightedSticky": {"cookie": "_sticky"},
            "stickiness": "reevaluate",
            "keys": ["header:Authorization"],
            "cookie": {"path": "/app", "domain": ".example.org"},
            "override": {"header": "X-Canary"},
            "debugHeader": "X-Canary-Debug"
        }"#,
        cookie: "canary",
        visitor: Some("cohort_id"),
        variants: &[("v1", Some("abc123")), ("v2", None)],
        sticky_cookie: Some("_sticky"),
        suffix: "; Path=/app; Domain=.example.org; Max-Age=2592000; HttpOnly; SameSite=Lax",
        debug_header: Some("X-Canary-Debug"),
    },
];
