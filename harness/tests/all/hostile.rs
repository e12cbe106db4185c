//! The hostile input matrix, through Cohort's real `plugin.wasm` in
//! Traefik-faithful mode: huge, odd, duplicated, non-UTF-8 and injected
//! cookies, odd header names, override values that are not variants, odd
//! source addresses, and a configuration with every field wrong in turn.
//!
//! Every request case gets a defined outcome (the cohort, the reason, which
//! `Set-Cookie`s, whether the `Cookie` header is untouched or rewritten),
//! and every request is also checked for what must always hold:
//!
//! * no trap, no ABI error, no 500, next called ([`send`]);
//! * exactly one `X-Canary`, naming a variant;
//! * the backend's `Cookie` carries exactly one `canary` pair, naming that
//!   cohort, and every other pair byte for byte and in order;
//! * every `Set-Cookie` is `canary=<variant>` or `cohort_id=<32 hex>` with
//!   Cohort's attributes and nothing else, at most one of each.
//!
//! Each test also renders its rows into `testdata/hostile-cases.md`
//! (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`) and fails when
//! the file differs; `BLESS=1` rewrites those sections. The rest of that
//! file (notes, fuel) is written by hand.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use cohort_harness::artifacts::PLUGIN_WASM_UNLOWERED;
use cohort_harness::{CheckPolicy, Error, Guest, HostOptions, Request};
use serde_json::{Value, json};

use crate::cohort::{
    DEFAULT_ATTRIBUTES, Visit, cohort, is_visitor_id, load_error, load_error_with, send,
};

const VARIANTS: [&str; 2] = ["v1", "v2"];

/// The configuration of the request cases: `v1`/`v2` at 50 %, overrides
/// by header and query from private ranges, the debug header for reasons.
fn base(keys: &[&str]) -> Value {
    json!({
        "debugHeader": "X-Cohort-Debug",
        "keys": keys,
        "override": {
            "header": "X-Canary-Force",
            "query": "force",
            "allowFrom": ["10.0.0.0/8", "fe80::/10", "2001:db8::/32"],
        },
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 50}],
    })
}

/// A request from inside the override ranges.
fn get(uri: &str) -> Request {
    Request::get(uri).source_addr("10.0.0.5:40000")
}

fn with_cookie(cookie: impl Into<Vec<u8>>) -> Request {
    get("/").header_bytes("Cookie", cookie)
}

/// A `canary=v1` holder requesting `uri`.
fn v1_holder_at(uri: &str) -> Request {
    get(uri).header("Cookie", "canary=v1")
}

// ---------------------------------------------------------------------------
// Expected outcomes.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cohort {
    /// This variant.
    Is(&'static str),
    /// Any variant (a new visitor's bucket).
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CookieOut {
    /// The backend gets the `Cookie` lines exactly as sent.
    Untouched,
    /// One line: the other pairs byte for byte, `canary=<cohort>` once.
    Rewritten,
}

#[derive(Debug, Clone, Copy)]
struct Expect {
    cohort: Cohort,
    reason: &'static str,
    /// The names of the `Set-Cookie`s, in order.
    set: &'static [&'static str],
    cookie: CookieOut,
}

/// A returning holder of `v`: honoured, nothing written.
const fn holder(v: &'static str) -> Expect {
    Expect {
        cohort: Cohort::Is(v),
        reason: "cookie",
        set: &[],
        cookie: CookieOut::Untouched,
    }
}

/// A holder of `v` whose cookies are normalised (duplicates dropped).
const fn normalised(v: &'static str) -> Expect {
    Expect {
        cookie: CookieOut::Rewritten,
        ..holder(v)
    }
}

/// A new visitor: bucketed once (`keep` keeps no visitor id).
const NEW: Expect = Expect {
    cohort: Cohort::Any,
    reason: "assigned",
    set: &["canary"],
    cookie: CookieOut::Rewritten,
};

/// A cookie naming no variant: bucketed again, cookie replaced.
const REASSIGNED: Expect = Expect {
    reason: "reassigned",
    ..NEW
};

/// Forced for this one request by the header.
const fn forced(v: &'static str) -> Expect {
    Expect {
        cohort: Cohort::Is(v),
        reason: "override",
        set: &[],
        cookie: CookieOut::Rewritten,
    }
}

impl Expect {
    fn describe(&self) -> String {
        let cohort = match self.cohort {
            Cohort::Is(v) => format!("`{v}`"),
            Cohort::Any => "by bucket".to_owned(),
        };
        let set = if self.set.is_empty() {
            "no Set-Cookie".to_owned()
        } else {
            format!("Set-Cookie {}", self.set.join(" + "))
        };
        let cookie = match self.cookie {
            CookieOut::Untouched => "Cookie untouched",
            CookieOut::Rewritten => "Cookie rewritten, other pairs kept",
        };
        format!("{cohort} ({}); {set}; {cookie}", self.reason)
    }
}

/// One hostile request and its defined outcome.
struct Case {
    /// What the request is, for the table.
    what: String,
    request: Request,
    expect: Expect,
}

fn case(what: impl Into<String>, request: Request, expect: Expect) -> Case {
    Case {
        what: what.into(),
        request,
        expect,
    }
}

// ---------------------------------------------------------------------------
// The checks.

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// One pair as Go reads it: `name` trimmed, `value` not; `raw` the whole
/// trimmed pair.
struct Pair<'a> {
    name: &'a [u8],
    value: &'a [u8],
    raw: &'a [u8],
}

/// Every pair, as the guest sees the lines (each value the host counts is
/// one line, a NUL inside it included) and as Go reads pairs (split at `;`,
/// the pair and the name trimmed).
fn pairs<'a>(lines: &[&'a [u8]]) -> Vec<Pair<'a>> {
    lines
        .iter()
        .flat_map(|line| line.split(|&b| b == b';'))
        .map(trim_ows)
        .filter(|raw| !raw.is_empty())
        .map(|raw| match raw.iter().position(|&b| b == b'=') {
            Some(eq) => Pair {
                name: trim_ows(&raw[..eq]),
                value: &raw[eq + 1..],
                raw,
            },
            None => Pair {
                name: raw,
                value: b"",
                raw,
            },
        })
        .collect()
}

/// What must hold for every request; returns the cohort.
fn check_invariants(sent: &Request, v: &Visit) -> String {
    let cohort = v.cohort().to_owned();
    assert!(VARIANTS.contains(&cohort.as_str()), "X-Canary {cohort:?}");

    let before = sent.headers.get_all_bytes("Cookie");
    let after = v.backend().headers.get_all_bytes("Cookie");
    let after_pairs = pairs(&after);
    let cohort_values: Vec<&[u8]> = after_pairs
        .iter()
        .filter(|p| p.name == b"canary")
        .map(|p| p.value)
        .collect();
    assert_eq!(
        cohort_values,
        vec![cohort.as_bytes()],
        "one canary pair naming the cohort"
    );
    let others = |p: Vec<Pair>| -> Vec<Vec<u8>> {
        p.into_iter()
            .filter(|p| p.name != b"canary")
            .map(|p| p.raw.to_vec())
            .collect()
    };
    assert!(
        others(pairs(&before)) == others(after_pairs),
        "other pairs kept byte for byte and in order"
    );

    let mut names = Vec::new();
    for set in v.set_cookies() {
        let (pair, attributes) = set.split_at(set.find(';').unwrap_or(set.len()));
        assert_eq!(attributes, DEFAULT_ATTRIBUTES, "{set}");
        let (name, value) = pair.split_once('=').unwrap_or_else(|| panic!("{set}"));
        match name {
            "canary" => assert_eq!(value, cohort, "{set}"),
            "cohort_id" => assert!(is_visitor_id(value), "{set}"),
            other => panic!("Cohort set a cookie {other:?}: {set}"),
        }
        assert!(!names.contains(&name), "two Set-Cookie for {name}");
        names.push(name);
    }
    cohort
}

fn check(guest: &Guest, case: &Case) -> Visit {
    let v = send(guest, case.request.clone());
    let what = &case.what;
    let cohort = check_invariants(&case.request, &v);
    let e = case.expect;
    if let Cohort::Is(want) = e.cohort {
        assert_eq!(cohort, want, "{what}");
    }
    assert_eq!(v.reason(), e.reason, "{what}");
    let names: Vec<&str> = v
        .set_cookies()
        .iter()
        .map(|c| c.split('=').next().unwrap_or_default())
        .collect();
    assert_eq!(names, e.set, "{what}");
    let before = case.request.headers.get_all_bytes("Cookie");
    let after = v.backend().headers.get_all_bytes("Cookie");
    match e.cookie {
        CookieOut::Untouched => assert!(before == after, "{what}: Cookie changed"),
        CookieOut::Rewritten => {
            assert_eq!(after.len(), 1, "{what}: one Cookie line");
            assert!(before != after, "{what}: Cookie not rewritten");
        }
    }
    v
}

/// Runs the cases, and renders them as table rows.
fn run(config: Value, cases: &[Case]) -> (Vec<Visit>, String) {
    let guest = cohort(config);
    let mut table = String::from("| request | outcome |\n| --- | --- |\n");
    let visits = cases
        .iter()
        .map(|c| {
            let v = check(&guest, c);
            let _ = writeln!(table, "| {} | {} |", c.what, c.expect.describe());
            v
        })
        .collect();
    (visits, table)
}

// ---------------------------------------------------------------------------
// testdata/hostile-cases.md

fn cases_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/hostile-cases.md")
}

/// Checks (or with `BLESS=1` writes) one generated section of the table.
fn document(section: &str, body: &str) {
    static FILE: Mutex<()> = Mutex::new(());
    let _lock = FILE.lock().unwrap_or_else(|p| p.into_inner());
    let path = cases_md();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (begin, end) = (
        format!("<!-- {section}:begin -->\n"),
        format!("<!-- {section}:end -->"),
    );
    let current = text
        .split_once(&begin)
        .and_then(|(head, rest)| rest.split_once(&end).map(|(body, tail)| (head, body, tail)));
    let bless = std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0");
    match current {
        Some((_, old, _)) if old == body => {}
        Some((head, _, tail)) if bless => {
            std::fs::write(&path, format!("{head}{begin}{body}{end}{tail}")).unwrap();
        }
        None if bless => {
            let text = format!("{}\n{begin}{body}{end}\n", text.trim_end());
            std::fs::write(&path, text).unwrap();
        }
        Some((_, old, _)) => panic!(
            "testdata/hostile-cases.md section {section} is out of date (BLESS=1 rewrites it):\n\
             --- file\n{old}--- now\n{body}"
        ),
        None => panic!("testdata/hostile-cases.md has no section {section} (BLESS=1 adds it)"),
    }
}

// ---------------------------------------------------------------------------
// Sizes.

/// A `Cookie` header of exactly `len` bytes: pairs `pNNNNN=xxx…` of 32
/// bytes joined by `; `, ending with `; canary=v2` when `holder`.
fn cookie_of_size(len: usize, holder: bool) -> String {
    let tail = if holder { "; canary=v2" } else { "" };
    let mut out = String::new();
    if len > 0 {
        let body = len - tail.len();
        for i in 0.. {
            let name = format!("p{i:05}=");
            let left = body - out.len();
            out.push_str(&name);
            if left < 2 * 34 {
                out.push_str(&"x".repeat(left - name.len()));
                break;
            }
            out.push_str(&"x".repeat(25));
            out.push_str("; ");
        }
    }
    out.push_str(tail);
    out
}

const SIZES: [(usize, &str); 7] = [
    (0, "0 B"),
    (1024, "1 KB"),
    (2048, "2 KB"),
    (4096, "4 KB"),
    (8192, "8 KB"),
    (16384, "16 KB"),
    (65536, "64 KB"),
];

#[test]
fn cookie_headers_from_0_bytes_to_64_kb() {
    let mut cases = Vec::new();
    for (len, label) in SIZES {
        let new = cookie_of_size(len, false);
        assert_eq!(new.len(), len);
        cases.push(case(
            format!("{label} Cookie, no cohort (new visitor)"),
            with_cookie(new),
            NEW,
        ));
        if len > 0 {
            let held = cookie_of_size(len, true);
            assert_eq!(held.len(), len, "{held}");
            assert!(held.ends_with("; canary=v2"));
            cases.push(case(
                format!("{label} Cookie, `canary=v2` last"),
                with_cookie(held),
                holder("v2"),
            ));
        }
    }
    let one_value = format!("big={}; canary=v2", "v".repeat(65536 - 15));
    assert_eq!(one_value.len(), 65536);
    cases.push(case(
        "64 KB Cookie in one value, then `canary=v2`",
        with_cookie(one_value),
        holder("v2"),
    ));
    let (visits, table) = run(base(&[]), &cases);
    for (c, v) in cases.iter().zip(&visits) {
        println!("{:<45} {:>9} fuel  {}", c.what, v.ex.fuel, v.ex.host_calls);
    }
    document("sizes", &table);
}

#[test]
fn thousands_of_pairs() {
    let pairs = |n: usize, canary_at: Option<usize>| -> String {
        (0..n)
            .map(|i| {
                if Some(i) == canary_at {
                    "canary=v2".to_owned()
                } else {
                    format!("k{i}=v{i}")
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let cases = [
        case(
            "3,000 pairs, `canary=v2` at 1,500",
            with_cookie(pairs(3_000, Some(1_500))),
            holder("v2"),
        ),
        case(
            "10,000 pairs, `canary=v2` at 5,000",
            with_cookie(pairs(10_000, Some(5_000))),
            holder("v2"),
        ),
        case(
            "10,000 pairs, no cohort",
            with_cookie(pairs(10_000, None)),
            NEW,
        ),
        case(
            "10,000 empty pairs (`;` × 10,000) then `canary=v1`",
            with_cookie(format!("{}canary=v1", ";".repeat(10_000))),
            holder("v1"),
        ),
    ];
    let (visits, table) = run(base(&[]), &cases);
    for (c, v) in cases.iter().zip(&visits) {
        println!("{:<45} {:>9} fuel", c.what, v.ex.fuel);
    }
    document("pairs", &table);
}

#[test]
fn duplicate_cohort_cookies_with_conflicting_values() {
    let alternating: String = (0..100)
        .map(|i| format!("canary=v{}", 1 + i % 2))
        .collect::<Vec<_>>()
        .join("; ");
    let cases = [
        case(
            "`canary=v2; a=1; canary=v1`",
            with_cookie("canary=v2; a=1; canary=v1"),
            normalised("v2"),
        ),
        case(
            "two lines: `canary=v1` then `canary=v2`",
            get("/")
                .header("Cookie", "canary=v1")
                .header("Cookie", "canary=v2"),
            normalised("v1"),
        ),
        case(
            "`canary=v1; canary=v1`",
            with_cookie("canary=v1; canary=v1"),
            normalised("v1"),
        ),
        case(
            "`canary=bogus; canary=v2` (the first is what Go reads)",
            with_cookie("canary=bogus; canary=v2"),
            REASSIGNED,
        ),
        case(
            "100 pairs `canary=v1; canary=v2; …`",
            with_cookie(alternating),
            normalised("v1"),
        ),
    ];
    let (_, table) = run(base(&[]), &cases);
    document("duplicates", &table);
}

#[test]
fn non_utf8_control_bytes_quotes_and_empty_pairs() {
    let cases = [
        case(
            "non-UTF-8 other cookies `a=\\xff\\xfe; canary=v2; b=\\x80`",
            with_cookie(&b"a=\xff\xfe; canary=v2; b=\x80"[..]),
            holder("v2"),
        ),
        case(
            "non-UTF-8 other cookies, no cohort `a=\\xff\\xfe; b=\\xc3\\x28`",
            with_cookie(&b"a=\xff\xfe; b=\xc3\x28"[..]),
            NEW,
        ),
        case(
            "non-UTF-8 cohort value `canary=v2\\xff`",
            with_cookie(&b"canary=v2\xff; a=1"[..]),
            REASSIGNED,
        ),
        case(
            "control bytes `a=\\x01\\x02\\x7f; canary=v2`",
            with_cookie(&b"a=\x01\x02\x7f; canary=v2"[..]),
            holder("v2"),
        ),
        case(
            "tabs `a=1;\\tcanary=v2\\t; b=2`",
            with_cookie("a=1;\tcanary=v2\t; b=2"),
            holder("v2"),
        ),
        case(
            "a NUL byte `a=1\\x00canary=v2` (one value, as the host counts it)",
            with_cookie(&b"a=1\x00canary=v2"[..]),
            NEW,
        ),
        case(
            "quoted cohort `canary=\"v2\"`",
            with_cookie("canary=\"v2\""),
            REASSIGNED,
        ),
        case(
            "quoted other cookie `q=\"a b\"; canary=v2`",
            with_cookie("q=\"a b\"; canary=v2"),
            holder("v2"),
        ),
        case("`;;;` only", with_cookie(";;;"), NEW),
        case(
            "`;;; canary=v2 ;;;`",
            with_cookie(";;; canary=v2 ;;;"),
            holder("v2"),
        ),
        case("empty name `=v2`, no cohort", with_cookie("=v2"), NEW),
        case(
            "`canary` without `=`",
            with_cookie("canary; a=1"),
            REASSIGNED,
        ),
        case(
            "space after `=`: `canary= v2` (Go reads ` v2`)",
            with_cookie("canary= v2"),
            REASSIGNED,
        ),
        case(
            "space before `=`: `canary =v2` (Go trims names)",
            with_cookie("canary =v2"),
            holder("v2"),
        ),
        case(
            "a 10 KB cohort value",
            with_cookie(format!("canary=v2{}", "2".repeat(10_000))),
            REASSIGNED,
        ),
    ];
    let (_, table) = run(base(&[]), &cases);
    document("bytes", &table);
}

#[test]
fn values_that_try_to_inject_attributes() {
    let cases = [
        case(
            "Cookie `canary=v2; Domain=evil` (two pairs)",
            with_cookie("canary=v2; Domain=evil"),
            holder("v2"),
        ),
        case(
            "Cookie `canary=\"v2; Domain=evil\"`",
            with_cookie("canary=\"v2; Domain=evil\""),
            REASSIGNED,
        ),
        case(
            "Cookie `canary=v2%3B%20Domain%3Devil`",
            with_cookie("canary=v2%3B%20Domain%3Devil"),
            REASSIGNED,
        ),
        case(
            "override header `v2; Domain=evil`",
            with_cookie("canary=v1").header("X-Canary-Force", "v2; Domain=evil"),
            holder("v1"),
        ),
        case(
            "override query `?force=v2;%20Domain=evil`",
            v1_holder_at("/?force=v2;%20Domain=evil"),
            holder("v1"),
        ),
        case(
            "override query `?force=v2%3B%20Domain%3Devil`",
            v1_holder_at("/?force=v2%3B%20Domain%3Devil"),
            holder("v1"),
        ),
    ];
    let (visits, table) = run(base(&[]), &cases);
    for v in &visits {
        for set in v.set_cookies() {
            assert!(!set.contains("evil") && !set.contains("Domain"), "{set}");
        }
    }
    document("injection", &table);
}

#[test]
fn odd_header_names_and_several_cookie_lines() {
    let fifty = (0..50).fold(get("/"), |r, i| {
        let pair = if i == 25 {
            "canary=v2".to_owned()
        } else {
            format!("c{i}=x")
        };
        r.header("Cookie", pair)
    });
    let cases = [
        case(
            "`cOoKiE: canary=v2`",
            get("/").header("cOoKiE", "canary=v2"),
            holder("v2"),
        ),
        case(
            "`COOKIE: a=1` and `cookie: canary=v2`",
            get("/")
                .header("COOKIE", "a=1")
                .header("cookie", "canary=v2"),
            holder("v2"),
        ),
        case(
            "three lines `a=1`, `b=2`, `c=3`, no cohort",
            get("/")
                .header("Cookie", "a=1")
                .header("Cookie", "b=2")
                .header("Cookie", "c=3"),
            NEW,
        ),
        case("50 lines, `canary=v2` on line 26", fifty, holder("v2")),
        case(
            "`Canary=v2` (cookie names are case-sensitive)",
            with_cookie("Canary=v2"),
            NEW,
        ),
        case(
            "spoofed `x-CANARY: v2` twice, `canary=v1`",
            with_cookie("canary=v1")
                .header("x-CANARY", "v2")
                .header("X-Canary", "v2"),
            holder("v1"),
        ),
        case(
            "`x-canary-FORCE: v2` (header names are not)",
            with_cookie("canary=v1").header("x-canary-FORCE", "v2"),
            forced("v2"),
        ),
    ];
    let (_, table) = run(base(&[]), &cases);
    document("names", &table);
}

#[test]
fn override_values_that_are_not_variants() {
    let force = |value: &[u8]| with_cookie("canary=v1").header_bytes("X-Canary-Force", value);
    let query_persisted = Expect {
        set: &["canary"],
        ..forced("v2")
    };
    let cases = [
        case("header `v9`", force(b"v9"), holder("v1")),
        case("header empty", force(b""), holder("v1")),
        case("header `V2` (names are exact)", force(b"V2"), holder("v1")),
        case("header ` v2 ` (trimmed)", force(b" v2 "), forced("v2")),
        case("header `v2, v1`", force(b"v2, v1"), holder("v1")),
        case(
            "header `always,never`",
            force(b"always,never"),
            holder("v1"),
        ),
        case("header `\\xff\\xfe`", force(b"\xff\xfe"), holder("v1")),
        case("header of 10 KB", force(&[b'x'; 10_240]), holder("v1")),
        case(
            "two header lines `v9` then `v2` (the first counts)",
            force(b"v9").header("X-Canary-Force", "v2"),
            holder("v1"),
        ),
        case(
            "query `?force=v9`",
            v1_holder_at("/?force=v9"),
            holder("v1"),
        ),
        case(
            "query `?force=` (empty)",
            v1_holder_at("/?force="),
            holder("v1"),
        ),
        case(
            "query `?force=%76%32` (not decoded)",
            v1_holder_at("/?force=%76%32"),
            holder("v1"),
        ),
        case(
            "query `?FORCE=v2` (parameter names are exact)",
            v1_holder_at("/?FORCE=v2"),
            holder("v1"),
        ),
        case(
            "query `?force=v2&force=v1` (the first counts)",
            v1_holder_at("/?force=v2&force=v1"),
            query_persisted,
        ),
    ];
    let (_, table) = run(base(&[]), &cases);
    document("overrides", &table);
}

#[test]
fn ipv6_mapped_zone_and_garbage_source_addresses() {
    // Keyed by client IP, overrides from 10/8, fe80::/10, 2001:db8::/32.
    let config = base(&["ip"]);
    let from = |addr: &str| {
        Request::get("/")
            .source_addr(addr)
            .header("X-Canary-Force", "v2")
    };
    let by_ip = Expect {
        reason: "assigned",
        set: &["canary"],
        ..NEW
    };
    let cases = [
        case(
            "`[2001:db8::1]:443` (allowed)",
            from("[2001:db8::1]:443"),
            forced("v2"),
        ),
        case(
            "`2001:db8::1` without port (allowed)",
            from("2001:db8::1"),
            forced("v2"),
        ),
        case(
            "IPv4-mapped `[::ffff:10.1.2.3]:5000` (allowed)",
            from("[::ffff:10.1.2.3]:5000"),
            forced("v2"),
        ),
        case(
            "zone id `[fe80::1%eth0]:443` (allowed)",
            from("[fe80::1%eth0]:443"),
            forced("v2"),
        ),
        case(
            "`192.0.2.1:5000` (refused, keyed by IP)",
            from("192.0.2.1:5000"),
            by_ip,
        ),
        case(
            "`[2001:db9::1]:443` (refused, keyed by IP)",
            from("[2001:db9::1]:443"),
            by_ip,
        ),
        case(
            "IPv4-mapped `[::ffff:192.0.2.1]:1` (refused, keyed by IP)",
            from("[::ffff:192.0.2.1]:1"),
            by_ip,
        ),
        case(
            "`garbage` (refused, no IP: one-off draw)",
            from("garbage"),
            NEW,
        ),
        case("empty (refused, no IP: one-off draw)", from(""), NEW),
        case(
            "`1.2.3.4:99999` (refused, no IP: one-off draw)",
            from("1.2.3.4:99999"),
            NEW,
        ),
        case("`[::1` (refused, no IP: one-off draw)", from("[::1"), NEW),
        case(
            "`10.0.0.1:1:2` (refused, no IP: one-off draw)",
            from("10.0.0.1:1:2"),
            NEW,
        ),
    ];
    let (_, table) = run(config.clone(), &cases);
    document("addresses", &table);

    // The IP key ignores the port, and a mapped address is its IPv4 one.
    let guest = cohort(config);
    let cohort_from = |addr: &str| {
        send(&guest, Request::get("/").source_addr(addr))
            .cohort()
            .to_owned()
    };
    for ip in ["192.0.2.1", "198.51.100.77", "203.0.113.9"] {
        let plain = cohort_from(&format!("{ip}:1000"));
        assert_eq!(cohort_from(&format!("{ip}:2000")), plain, "{ip}");
        assert_eq!(cohort_from(&format!("[::ffff:{ip}]:3000")), plain, "{ip}");
    }
    let v6 = cohort_from("[2001:db9::5]:1");
    assert_eq!(cohort_from("[2001:db9::5]:2"), v6);
    assert_eq!(cohort_from("[2001:db9::5%eth0]:3"), v6);
}

// ---------------------------------------------------------------------------
// Configuration with every field wrong in turn.

/// `(configuration, the field the error names)`.
fn wrong_configs_variants() -> Vec<(Value, &'static str)> {
    let v = |second: Value| json!({"variants": [{"name": "v1"}, second]});
    vec![
        (json!({"variants": "v1,v2"}), "variants"),
        (json!({"variants": {"name": "v1"}}), "variants"),
        (json!({"variants": [{"name": "v1"}]}), "variants"),
        (json!({"variants": [{"name": "v1"}, "v2"]}), "variants"),
        (v(json!({"weight": 10})), "variants[1].name"),
        (v(json!({"name": "v 2", "weight": 10})), "variants[1].name"),
        (
            v(json!({"name": "v2;Domain=evil", "weight": 10})),
            "variants[1].name",
        ),
        (
            v(json!({"name": "x".repeat(65), "weight": 10})),
            "variants[1].name",
        ),
        (v(json!({"name": "v1", "weight": 10})), "variants[1].name"),
        (v(json!({"name": "v2"})), "variants[1].weight"),
        (
            v(json!({"name": "v2", "weight": "ten"})),
            "variants[1].weight",
        ),
        (v(json!({"name": "v2", "weight": -1})), "variants[1].weight"),
        (
            v(json!({"name": "v2", "weight": 100.01})),
            "variants[1].weight",
        ),
        (
            v(json!({"name": "v2", "weight": 12.345})),
            "variants[1].weight",
        ),
        (
            json!({"variants": [{"name": "v1", "weight": 50}, {"name": "v2", "weight": 40}]}),
            "variants",
        ),
        (
            v(json!({"name": "v2", "weight": 10, "default": "maybe"})),
            "variants[1].default",
        ),
        (
            json!({"variants": [{"name": "v1", "default": true}, {"name": "v2", "weight": 10, "default": true}]}),
            "variants[1].default",
        ),
        (
            v(json!({"name": "v2", "weight": 10, "state": "paused"})),
            "variants[1].state",
        ),
        (
            json!({"variants": [{"name": "v1", "state": "drained"}, {"name": "v2", "weight": 10}]}),
            "variants[0].state",
        ),
        (
            json!({"weightedSticky": {"cookie": "wrr"},
                   "variants": [{"name": "v1"}, {"name": "v2", "weight": 10, "service": "a@file", "stickyValue": "b"}]}),
            "variants[1].stickyValue",
        ),
        (
            json!({"weightedSticky": {"cookie": "wrr"},
                   "variants": [{"name": "v1"}, {"name": "v2", "weight": 10, "stickyValue": "a;b"}]}),
            "variants[1].stickyValue",
        ),
        (
            v(json!({"name": "v2", "weight": 10, "service": "v2@file"})),
            "variants[1].service",
        ),
        (
            v(json!({"name": "v2", "weight": 10, "colour": "blue"})),
            "variants[1].colour",
        ),
    ]
}

fn wrong_configs_cookie() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"cookie": "canary"}), "cookie"),
        (json!({"cookie": {"name": "can ary"}}), "cookie.name"),
        (json!({"cookie": {"name": "__Secure-c"}}), "cookie.name"),
        (
            json!({"cookie": {"name": "__Host-c", "secure": true, "path": "/app"}}),
            "cookie.name",
        ),
        (json!({"cookie": {"maxAge": -1}}), "cookie.maxAge"),
        (json!({"cookie": {"maxAge": "soon"}}), "cookie.maxAge"),
        (json!({"cookie": {"path": "app"}}), "cookie.path"),
        (json!({"cookie": {"path": "/a;b"}}), "cookie.path"),
        (json!({"cookie": {"domain": "a/b"}}), "cookie.domain"),
        (
            json!({"cookie": {"domain": "evil; Secure"}}),
            "cookie.domain",
        ),
        (json!({"cookie": {"secure": "yes"}}), "cookie.secure"),
        (json!({"cookie": {"httpOnly": "nope"}}), "cookie.httpOnly"),
        (
            json!({"cookie": {"sameSite": "sideways"}}),
            "cookie.sameSite",
        ),
        (json!({"cookie": {"sameSite": "none"}}), "cookie.sameSite"),
        (json!({"cookie": {"expires": "never"}}), "cookie.expires"),
    ]
}

fn wrong_configs_rest() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"seed": {"a": 1}}), "seed"),
        (json!({"assignmentHash": "md5"}), "assignmentHash"),
        (json!({"header": "X Canary"}), "header"),
        (json!({"keys": ["header:"]}), "keys[0]"),
        (json!({"keys": ["ip", "body:x"]}), "keys[1]"),
        (json!({"visitorCookie": "a b"}), "visitorCookie"),
        (json!({"visitorCookie": "canary"}), "visitorCookie"),
        (json!({"stickiness": "sometimes"}), "stickiness"),
        (json!({"weightedSticky": "wrr"}), "weightedSticky"),
        (
            json!({"weightedSticky": {"cookie": "w r r"}}),
            "weightedSticky.cookie",
        ),
        (
            json!({"weightedSticky": {"cookie": "wrr"}}),
            "weightedSticky.cookie",
        ),
        (json!({"override": "X-Force"}), "override"),
        (
            json!({"override": {"header": "X Force"}}),
            "override.header",
        ),
        (json!({"override": {"query": "a&b"}}), "override.query"),
        (
            json!({"override": {"allowFrom": ["10.0.0.0/33"]}}),
            "override.allowFrom[0]",
        ),
        (
            json!({"override": {"allowFrom": "10.0.0.0/8, everyone"}}),
            "override.allowFrom[1]",
        ),
        (json!({"exclude": {"paths": ["("]}}), "exclude.paths[0]"),
        (
            json!({"exclude": {"methods": ["GE T"]}}),
            "exclude.methods[0]",
        ),
        (
            json!({"exclude": {"userAgents": ["["]}}),
            "exclude.userAgents[0]",
        ),
        (json!({"exclude": {"hosts": ["a"]}}), "exclude.hosts"),
        (json!({"debugHeader": "X Debug"}), "debugHeader"),
        (json!({"logDecisions": "sometimes"}), "logDecisions"),
        (json!({"percent": 10}), "percent"),
    ]
}

/// Loads each configuration, which must fail in `_start` (exit code 1)
/// with Cohort's error naming the field; renders the table.
fn refuse_all(configs: &[(Value, &str)]) -> String {
    let mut table =
        String::from("| given | error Cohort logs (and Traefik prints) |\n| --- | --- |\n");
    for (config, field) in configs {
        let (error, logged) = load_error(config.clone());
        assert!(
            matches!(error, Error::Exit { code: 1, .. }),
            "{config}: {error}"
        );
        let message = logged
            .strip_prefix("[error] ")
            .unwrap_or_else(|| panic!("{config}: {logged:?}"));
        let prefix = format!("invalid Cohort configuration: {field}: ");
        assert!(message.starts_with(&prefix), "{config}: {message}");
        let _ = writeln!(
            table,
            "| `{}` | {} |",
            config.to_string().replace('|', "\\|"),
            message.replace('|', "\\|")
        );
    }
    table
}

#[test]
fn config_with_each_variant_field_wrong_fails_at_load() {
    document("config-variants", &refuse_all(&wrong_configs_variants()));
}

#[test]
fn config_with_each_cookie_field_wrong_fails_at_load() {
    document("config-cookie", &refuse_all(&wrong_configs_cookie()));
}

#[test]
fn config_with_each_other_field_wrong_fails_at_load() {
    let mut table = refuse_all(&wrong_configs_rest());
    // Bytes that are not a JSON object at all (Traefik always sends one;
    // another host might not).
    for (raw, field) in [(&b"[1, 2]"[..], "(root)"), (b"{\"seed\": ", "(root)")] {
        let (_, logged) = load_error_with(HostOptions::traefik().config_raw(raw));
        let message = logged.strip_prefix("[error] ").unwrap_or(&logged);
        assert!(
            message.starts_with(&format!("invalid Cohort configuration: {field}: ")),
            "{message}"
        );
        let _ = writeln!(
            table,
            "| raw `{}` | {message} |",
            String::from_utf8_lossy(raw)
        );
    }
    document("config-rest", &table);
}

// ---------------------------------------------------------------------------
// Fuel of the large cases, and how much of it the bulk-memory lowering adds.

#[test]
fn fuel_of_large_cookies_shipped_and_unlowered() {
    let shipped = cohort(base(&[]));
    // The compiler's output, with `memory.copy`/`memory.fill` intact (refused
    // in faithful mode by default: Traefik would trap on it).
    let unlowered = std::fs::read(PLUGIN_WASM_UNLOWERED).unwrap();
    let unlowered = Guest::load(
        &unlowered,
        HostOptions::traefik()
            .check(CheckPolicy::Off)
            .config_json(base(&[])),
    )
    .unwrap();
    println!("{:<32} {:>10} {:>10}", "case", "shipped", "unlowered");
    for (len, label) in SIZES {
        for holder_case in [true, false] {
            if len == 0 && holder_case {
                continue;
            }
            let cookie = cookie_of_size(len, holder_case);
            let run = |guest: &Guest| {
                let request = if len == 0 && !holder_case {
                    get("/")
                } else {
                    with_cookie(cookie.clone())
                };
                send(guest, request).ex.fuel
            };
            let (a, b) = (run(&shipped), run(&unlowered));
            let shape = if holder_case { "holder" } else { "new" };
            println!("{:<32} {a:>10} {b:>10}", format!("{label} {shape}"));
            assert!(a > 0 && b > 0);
        }
    }

    // Where a new visitor's cost goes, at 4 KB of other cookies: the
    // holder only looks the cookie up; a new visitor keyed by a header also
    // rewrites the header; one without a key draws once (no id is kept
    // under `keep`).
    let keyed = cohort(base(&["header:X-User-Id"]));
    let filler = cookie_of_size(4096, false);
    let shapes = [
        (
            "4 KB holder",
            &shipped,
            with_cookie(cookie_of_size(4096, true)),
        ),
        (
            "4 KB new, keyed",
            &keyed,
            with_cookie(filler.clone()).header("X-User-Id", "u1"),
        ),
        ("4 KB new, one-off draw", &shipped, with_cookie(filler)),
    ];
    for (name, guest, request) in shapes {
        println!("{name:<32} {:>10}", send(guest, request).ex.fuel);
    }
}

/// The guest's stack is 64 KiB (`plugin/build.rs`), and its deepest
/// recursion is in its parsers, each with a nesting limit: serde_json's 128
/// levels (parsing, then dropping, the configuration) and regex-lite's 50
/// (compiling a pattern at load). At those limits Cohort loads and serves;
/// past them it refuses the configuration with an error naming the field.
/// A stack too small for them would trap here instead.
#[test]
fn the_deepest_configuration_the_parsers_accept_fits_the_guests_stack() {
    use crate::cohort::load;

    // Arrays nested inside the root object as deep as serde_json allows
    // (as the harness's own serde_json, the same version, says), then one more.
    let raw = |depth: usize| {
        format!(
            r#"{{"seed": "s", "unknown": {}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let deepest = (1..1_000)
        .take_while(|&d| serde_json::from_str::<Value>(&raw(d)).is_ok())
        .last()
        .expect("some depth parses");
    assert!(deepest >= 100, "{deepest}");
    let (_, logged) = load_error_with(HostOptions::traefik().config_raw(raw(deepest).as_bytes()));
    assert!(logged.contains("unknown: unknown field"), "{logged}");
    let (_, logged) =
        load_error_with(HostOptions::traefik().config_raw(raw(deepest + 1).as_bytes()));
    assert!(
        logged.contains("(root): not valid JSON: recursion limit exceeded"),
        "{logged}"
    );

    // Groups nested as deep as regex-lite allows, then one more.
    let nested = |depth: usize| format!("^{}/a{}$", "(?:".repeat(depth), ")".repeat(depth));
    let config = |depth: usize| {
        json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 50}],
               "debugHeader": "X-Cohort-Debug",
               "exclude": {"paths": [nested(depth)], "userAgents": [nested(depth)]}})
    };
    let guest = load(HostOptions::traefik().config_json(config(50)));
    let visit = send(&guest, Request::get("/a").header("User-Agent", "/a"));
    assert_eq!(
        visit.ex.response.headers.get("X-Cohort-Debug"),
        Some("v1; reason=excluded"),
        "{:?}",
        visit.ex.response.headers
    );
    let (_, logged) = load_error(config(51));
    assert!(logged.contains("exclude.paths[0]"), "{logged}");
}
