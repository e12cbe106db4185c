use super::*;
use crate::config::Config;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::cell::RefCell;

/// An in-memory request that counts what the decision reads.
#[derive(Default, Clone)]
struct FakeRequest {
    method: Vec<u8>,
    uri: Vec<u8>,
    addr: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    reads: Vec<String>,
}

impl FakeRequest {
    fn get(uri: &str) -> Self {
        FakeRequest {
            method: b"GET".to_vec(),
            uri: uri.as_bytes().to_vec(),
            addr: b"192.0.2.10:40000".to_vec(),
            ..Default::default()
        }
    }
    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }
    fn cookie(self, value: impl AsRef<[u8]>) -> Self {
        self.header("Cookie", value)
    }
    fn from(mut self, addr: &str) -> Self {
        self.addr = addr.as_bytes().to_vec();
        self
    }
    fn method(mut self, method: &str) -> Self {
        self.method = method.as_bytes().to_vec();
        self
    }
}

impl RequestView for FakeRequest {
    type Bytes = Vec<u8>;
    fn header_values(&mut self, name: &str) -> Values<Vec<u8>> {
        self.reads
            .push(format!("header:{}", name.to_ascii_lowercase()));
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            .into()
    }
    fn method(&mut self) -> Vec<u8> {
        self.reads.push("method".into());
        self.method.clone()
    }
    fn uri(&mut self) -> Vec<u8> {
        self.reads.push("uri".into());
        self.uri.clone()
    }
    fn source_addr(&mut self) -> Vec<u8> {
        self.reads.push("source_addr".into());
        self.addr.clone()
    }
}

fn config(v: Value) -> Config {
    Config::from_value(&v).unwrap_or_else(|e| panic!("{e}"))
}

fn canary(percent: u32) -> Config {
    config(json!({
        "seed": "test",
        "variants": [{"name": "v1"}, {"name": "v2", "weight": percent.to_string()}],
    }))
}

/// `canary(percent)` keeping generated visitor ids in `cohort_id`.
fn canary_with_ids(percent: u32) -> Config {
    let mut c = canary(percent);
    c.visitor_cookie = Some("cohort_id".into());
    c
}

fn run(config: &Config, request: &mut FakeRequest) -> Decision {
    let ids = RefCell::new(IdGenerator::new(b"boot"));
    decide(config, request, &ids, || 1_700_000_000_000_000_000)
}

/// `n` new visitors (no cookie) under `config`, through one generator that
/// advances from visitor to visitor, keyed three ways: by a one-off draw, by
/// a configured key (`X-Id`, different for each) and by a generated visitor
/// id. How many landed on each variant, and their reasons.
///
/// [`run`] starts a fresh generator each time, so without keys it makes the
/// same one-off draw on every call: a loop of `run` is one trial repeated.
fn newcomers(config: &Config, n: usize) -> (Vec<usize>, Vec<Reason>) {
    let ids = RefCell::new(IdGenerator::new(b"newcomers"));
    let mut keyed = config.clone();
    keyed.keys = vec![KeySource::Header("X-Id".into())];
    let mut with_ids = config.clone();
    with_ids.visitor_cookie = Some("cohort_id".into());
    let mut counts = vec![0; config.variants.len()];
    let mut reasons = Vec::new();
    for i in 0..n {
        for (c, want) in [
            (config, KeyUsed::OneOff),
            (&keyed, KeyUsed::Configured(0)),
            (&with_ids, KeyUsed::NewVisitorId),
        ] {
            let mut req = FakeRequest::get("/").header("X-Id", format!("user-{i}"));
            let d = decide(c, &mut req, &ids, || i as u128);
            assert_eq!(d.key, want);
            counts[d.variant] += 1;
            reasons.push(d.reason);
        }
    }
    (counts, reasons)
}

/// `config` with every variant active, weights unchanged: where `newcomers`
/// would land if the states were ignored.
fn all_active(config: &Config) -> Config {
    let mut c = config.clone();
    for v in &mut c.variants {
        v.state = State::Active;
    }
    c
}

fn name(config: &Config, d: &Decision) -> String {
    config.variants[d.variant].name.clone()
}

/// `cohort_id=<id>`, the pair of the visitor id a decision set.
fn visitor_pair(d: &Decision) -> String {
    let set = String::from_utf8(d.visitor_set_cookie.clone().expect("a new visitor id")).unwrap();
    set.split(';').next().unwrap().to_owned()
}

fn cookie_header(d: &Decision) -> String {
    String::from_utf8_lossy(d.cookie_header.as_deref().unwrap_or_default()).into_owned()
}

#[test]
fn a_new_visitor_under_keep_gets_one_cookie_and_one_header_read() {
    let c = canary(50);
    let mut req = FakeRequest::get("/").cookie("session=abc");
    let d = run(&c, &mut req);
    assert_eq!(d.reason, Reason::Assigned);
    assert_eq!(d.key, KeyUsed::OneOff);
    assert!(d.set_cohort_cookie);
    assert_eq!(d.visitor_set_cookie, None);
    assert_eq!(
        cookie_header(&d),
        format!("session=abc; canary={}", name(&c, &d))
    );
    // No address, no visitor-id cookie: the Cookie header is all it reads.
    assert_eq!(req.reads, vec!["header:cookie"]);
}

#[test]
fn visitor_ids_are_kept_by_default_only_under_reevaluate() {
    let keep = canary(50);
    assert_eq!(keep.visitor_cookie, None);
    let reevaluate = config(json!({"stickiness": "reevaluate"}));
    assert_eq!(reevaluate.visitor_cookie.as_deref(), Some("cohort_id"));
    let named = config(json!({"visitorCookie": "vid"}));
    assert_eq!(named.visitor_cookie.as_deref(), Some("vid"));
    let off = config(json!({"stickiness": "reevaluate", "visitorCookie": "", "keys": ["ip"]}));
    assert_eq!(off.visitor_cookie, None);
}

#[test]
fn a_new_visitor_is_assigned_and_gets_both_cookies() {
    let c = canary_with_ids(50);
    let mut req = FakeRequest::get("/").cookie("session=abc");
    let d = run(&c, &mut req);
    assert_eq!(d.reason, Reason::Assigned);
    assert_eq!(d.key, KeyUsed::NewVisitorId);
    assert!(d.set_cohort_cookie);
    let visitor = String::from_utf8(d.visitor_set_cookie.clone().expect("visitor id")).unwrap();
    assert!(visitor.starts_with("cohort_id="), "{visitor}");
    assert!(visitor.ends_with("; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"));
    assert_eq!(
        cookie_header(&d),
        format!("session=abc; canary={}", name(&c, &d))
    );
}

#[test]
fn a_returning_visitor_costs_one_header_read_and_writes_nothing() {
    let c = canary(50);
    let mut req = FakeRequest::get("/").cookie("a=1; canary=v2; b=2");
    let d = run(&c, &mut req);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Cookie));
    assert!(!d.set_cohort_cookie);
    assert_eq!(d.visitor_set_cookie, None);
    assert_eq!(d.cookie_header, None);
    assert_eq!(req.reads, vec!["header:cookie"]);
}

#[test]
fn the_visitor_id_cookie_keeps_the_assignment_across_lost_cohort_cookies() {
    let c = canary_with_ids(30);
    let mut first = FakeRequest::get("/");
    let d = run(&c, &mut first);
    let pair = visitor_pair(&d);
    // The cohort cookie is lost (or forged away); the id brings the same bucket.
    let again = run(&c, &mut FakeRequest::get("/").cookie(&pair));
    assert_eq!(again.key, KeyUsed::VisitorId);
    assert_eq!(again.variant, d.variant);
    assert_eq!(again.visitor_set_cookie, None);
}

#[test]
fn forged_visitor_ids_are_ignored() {
    let c = canary_with_ids(30);
    let d = run(&c, &mut FakeRequest::get("/").cookie("cohort_id=not-an-id"));
    assert_eq!(d.key, KeyUsed::NewVisitorId);
}

#[test]
fn unknown_and_malformed_cookie_values_are_reassigned() {
    let c = canary(50);
    for bad in [
        "canary=v3",
        "canary=",
        "canary=\"v2\"",
        "canary=V2",
        "canary=v2;canary",
    ] {
        let d = run(&c, &mut FakeRequest::get("/").cookie(bad));
        // `canary=v2;canary`: Go reads the first (v2), but a second pair
        // exists, so the request is normalised even though v2 is kept.
        if bad == "canary=v2;canary" {
            assert_eq!((d.reason, name(&c, &d).as_str()), (Reason::Cookie, "v2"));
            assert_eq!(cookie_header(&d), "canary=v2");
            continue;
        }
        assert_eq!(d.reason, Reason::Reassigned, "{bad}");
        assert!(d.set_cohort_cookie, "{bad}");
        assert_eq!(
            cookie_header(&d),
            format!("canary={}", name(&c, &d)),
            "{bad}"
        );
    }
}

#[test]
fn duplicate_cohort_cookies_are_normalised_to_the_one_go_reads() {
    let c = canary(50);
    let mut req = FakeRequest::get("/")
        .cookie("canary=v1; x=1")
        .cookie("canary=v2");
    let d = run(&c, &mut req);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Cookie));
    assert_eq!(cookie_header(&d), "canary=v1; x=1");
    assert!(!d.set_cohort_cookie);
}

#[test]
fn a_disabled_variant_rolls_its_holders_back_to_the_default() {
    let c = config(
        json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 20, "state": "disabled"}]}),
    );
    let d = run(&c, &mut FakeRequest::get("/").cookie("canary=v2"));
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Rollback));
    assert!(d.set_cohort_cookie);
    assert_eq!(cookie_header(&d), "canary=v1");
    // And nobody new lands there: 3 x 300 different draws, of which some
    // 180 would land on v2 were it left in the draw (the control).
    let (counts, reasons) = newcomers(&c, 300);
    assert_eq!(counts, [900, 0], "a newcomer on the disabled variant");
    assert!(reasons.iter().all(|r| *r == Reason::Assigned));
    let (control, _) = newcomers(&all_active(&c), 300);
    assert!(control[1] > 100, "{control:?}");
}

/// Found by the `decision` fuzz target: with `reevaluate`, a rolled-back
/// holder went to the default, and their very next request (now holding an
/// active variant) was re-bucketed elsewhere: two moves and two cookie
/// rewrites in two requests. They now go straight to their bucket.
#[test]
fn with_reevaluate_a_rollback_goes_straight_to_the_bucket_and_stays() {
    let c = config(json!({
        "seed": "s",
        "stickiness": "reevaluate",
        "keys": ["header:X-Id"],
        "variants": [
            {"name": "v1"},
            {"name": "v2", "weight": 30, "state": "disabled"},
            {"name": "v3", "weight": 50},
        ],
    }));
    let mut seen = [0; 3];
    for i in 0..200 {
        let id = format!("{i}");
        let first = run(
            &c,
            &mut FakeRequest::get("/")
                .header("X-Id", &id)
                .cookie("canary=v2"),
        );
        assert_eq!(first.reason, Reason::Rollback);
        assert!(first.set_cohort_cookie);
        assert_ne!(first.variant, 1);
        let held = format!("canary={}", name(&c, &first));
        let next = run(
            &c,
            &mut FakeRequest::get("/").header("X-Id", &id).cookie(held),
        );
        assert_eq!(next.variant, first.variant, "X-Id {id} moved again");
        assert!(!next.set_cohort_cookie && next.cookie_header.is_none());
        seen[first.variant] += 1;
    }
    assert!(seen[0] > 0 && seen[2] > 0, "{seen:?}");
    // Without a stable key the holder goes to the default, and stays.
    let d = run(&c, &mut FakeRequest::get("/").cookie("canary=v2"));
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Rollback));
    assert!(d.visitor_set_cookie.is_none());
}

#[test]
fn a_drained_variant_keeps_its_holders_and_takes_nobody_new() {
    let c = config(
        json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 50, "state": "drained"}]}),
    );
    let d = run(&c, &mut FakeRequest::get("/").cookie("canary=v2"));
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Cookie));
    assert!(!d.set_cohort_cookie);
    // 3 x 300 different draws, of which some 450 would land on v2 were it
    // left in the draw (the control).
    let (counts, _) = newcomers(&c, 300);
    assert_eq!(counts, [900, 0], "a newcomer on the drained variant");
    let (control, _) = newcomers(&all_active(&c), 300);
    assert!(control[1] > 300, "{control:?}");
}

#[test]
fn configured_keys_are_used_in_order_and_agree_across_replicas() {
    let c = config(json!({
        "seed": "s",
        "keys": ["header:X-User-Id", "cookie:session", "ip"],
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 50}],
    }));
    let mut a = FakeRequest::get("/")
        .header("X-User-Id", "alice")
        .cookie("session=zzz");
    let d = run(&c, &mut a);
    assert_eq!(d.key, KeyUsed::Configured(0));
    assert_eq!(d.variant, bucket_of(&c, b"alice"));
    assert_eq!(d.visitor_set_cookie, None);
    // Another replica: other boot entropy, same answer.
    let ids = RefCell::new(IdGenerator::new(b"another replica"));
    let mut b = FakeRequest::get("/").header("X-User-Id", "alice");
    assert_eq!(decide(&c, &mut b, &ids, || 42).variant, d.variant);

    let d = run(&c, &mut FakeRequest::get("/").cookie("session=zzz"));
    assert_eq!(d.key, KeyUsed::Configured(1));
    assert_eq!(d.variant, bucket_of(&c, b"zzz"));

    // The client IP without its port: a new connection keeps the cohort.
    let d1 = run(&c, &mut FakeRequest::get("/").from("203.0.113.7:1111"));
    let d2 = run(&c, &mut FakeRequest::get("/").from("203.0.113.7:2222"));
    assert_eq!(d1.key, KeyUsed::Configured(2));
    assert_eq!(d1.variant, d2.variant);
    assert_eq!(d1.variant, bucket_of(&c, b"203.0.113.7"));
}

#[test]
fn generated_ids_differ_between_instances_and_never_repeat() {
    // Two instances booted at different instants, fed identical requests at
    // identical clock readings (the worst case once booted).
    let c = canary_with_ids(50);
    let ids_a = RefCell::new(IdGenerator::new(b"boot 1"));
    let ids_b = RefCell::new(IdGenerator::new(b"boot 2"));
    let mut cohorts = [0usize; 2];
    let mut seen = std::collections::HashSet::new();
    for _ in 0..400u32 {
        let now = 1_700_000_000_000_000_000;
        let da = decide(&c, &mut FakeRequest::get("/"), &ids_a, || now);
        let db = decide(&c, &mut FakeRequest::get("/"), &ids_b, || now);
        for d in [da, db] {
            cohorts[d.variant] += 1;
            assert!(seen.insert(d.visitor_set_cookie.expect("new id")));
        }
    }
    // 800 visitors at 50 %: both cohorts well populated (sd ≈ 14).
    assert!(cohorts[0] > 300 && cohorts[1] > 300, "{cohorts:?}");
}

#[test]
fn header_overrides_follow_always_never_and_names() {
    let c = config(json!({
        "override": {"header": "X-Canary-Force"},
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 0}, {"name": "v3", "weight": 0, "state": "disabled"}],
    }));
    let cases = [
        ("always", Some("v2")),
        ("never", Some("v1")),
        ("v2", Some("v2")),
        ("ALWAYS", Some("v2")),
        ("v3", None),
        ("nope", None),
        ("", None),
    ];
    for (value, want) in cases {
        let mut req = FakeRequest::get("/")
            .header("X-Canary-Force", value)
            .cookie("canary=v1");
        let d = run(&c, &mut req);
        match want {
            Some(v) => {
                assert_eq!(
                    (name(&c, &d).as_str(), d.reason),
                    (v, Reason::Override),
                    "{value}"
                );
                // A header override lasts one request: no cookie.
                assert!(!d.set_cohort_cookie);
            }
            None => assert_eq!(
                (name(&c, &d).as_str(), d.reason),
                ("v1", Reason::Cookie),
                "{value}"
            ),
        }
    }
}

#[test]
fn query_overrides_persist_in_the_cookie() {
    let c = config(json!({
        "override": {"query": "cohort"},
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 0}],
    }));
    let d = run(&c, &mut FakeRequest::get("/page?x=1&cohort=v2#top"));
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Override));
    assert!(d.set_cohort_cookie);
    let d = run(
        &c,
        &mut FakeRequest::get("/page?cohort=v2").cookie("canary=v2"),
    );
    assert!(!d.set_cohort_cookie, "already held");
    let d = run(
        &c,
        &mut FakeRequest::get("/page?xcohort=v2").cookie("canary=v1"),
    );
    assert_eq!(d.reason, Reason::Cookie);
}

#[test]
fn overrides_from_outside_allowed_ranges_are_refused() {
    let c = config(json!({
        "override": {"header": "X-Canary-Force", "allowFrom": ["10.0.0.0/8", "::1"]},
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 0}],
    }));
    let allowed = ["10.1.2.3:5555", "[::1]:80"];
    let refused = ["192.0.2.1:5555", "[::2]:80", "garbage", ""];
    for addr in allowed {
        let d = run(
            &c,
            &mut FakeRequest::get("/")
                .from(addr)
                .header("X-Canary-Force", "always"),
        );
        assert_eq!(d.reason, Reason::Override, "{addr}");
    }
    for addr in refused {
        let d = run(
            &c,
            &mut FakeRequest::get("/")
                .from(addr)
                .header("X-Canary-Force", "always"),
        );
        assert_ne!(d.reason, Reason::Override, "{addr}");
        assert_eq!(name(&c, &d), "v1");
    }
}

#[test]
fn excluded_requests_never_get_a_cookie_and_never_flicker() {
    let c = config(json!({
        "exclude": {"paths": ["^/healthz$", "^/static/"], "methods": ["OPTIONS"], "userAgents": ["(?i)bot"]},
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 100}],
    }));
    let excluded = [
        FakeRequest::get("/healthz"),
        FakeRequest::get("/static/app.js?v=3"),
        FakeRequest::get("/").method("options"),
        FakeRequest::get("/").header("User-Agent", "Googlebot/2.1"),
        FakeRequest::get("http://example.com/healthz"),
    ];
    for mut req in excluded {
        let d = run(&c, &mut req);
        assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Excluded));
        assert!(!d.set_cohort_cookie && d.visitor_set_cookie.is_none());
    }
    // A cookie holder keeps its cohort on excluded paths too. Whether the
    // request was excluded changes nothing for them, so it is not asked
    // unless the reason is shown.
    let holder = || FakeRequest::get("/healthz").cookie("canary=v2");
    let d = run(&c, &mut holder());
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Cookie));
    assert!(!d.set_cohort_cookie && d.cookie_header.is_none());
    let mut shown = c.clone();
    shown.debug_header = Some("X-Cohort-Debug".into());
    let d = run(&shown, &mut holder());
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Excluded));
    assert!(!d.set_cohort_cookie && d.cookie_header.is_none());
    // An excluded holder's override is still ignored.
    let mut forced = holder().header("X-Canary-Force", "v1");
    let mut with_override = c.clone();
    with_override.overrides.header = Some("X-Canary-Force".into());
    let d = run(&with_override, &mut forced);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Excluded));
    let mut on_a_page = FakeRequest::get("/")
        .cookie("canary=v2")
        .header("X-Canary-Force", "v1");
    let d = run(&with_override, &mut on_a_page);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Override));
    // Not excluded: `/healthzz`, a path that merely contains `/static/`.
    for uri in ["/healthzz", "/a/static/x"] {
        assert_eq!(
            run(&c, &mut FakeRequest::get(uri)).reason,
            Reason::Assigned,
            "{uri}"
        );
    }
}

#[test]
fn weighted_sticky_cookie_selects_the_child_and_replaces_forgeries() {
    let c = config(json!({
        "weightedSticky": {"cookie": "wrr"},
        "variants": [
            {"name": "v1", "service": "app-v1@file"},
            {"name": "v2", "weight": 0, "state": "drained", "service": "app-v2@file"},
        ],
    }));
    let v1 = crate::bucket::traefik_sticky_value("app-v1@file");
    let v2 = crate::bucket::traefik_sticky_value("app-v2@file");
    // A forged sticky value for the drained child, without its cohort cookie.
    let d = run(
        &c,
        &mut FakeRequest::get("/").cookie(format!("wrr={v2}; a=b")),
    );
    assert_eq!(name(&c, &d), "v1");
    assert_eq!(cookie_header(&d), format!("wrr={v1}; a=b; canary=v1"));
    // A correct request is left alone.
    let d = run(
        &c,
        &mut FakeRequest::get("/").cookie(format!("canary=v1; wrr={v1}")),
    );
    assert_eq!(d.cookie_header, None);
    // A drained holder keeps its child.
    let d = run(&c, &mut FakeRequest::get("/").cookie("canary=v2"));
    assert_eq!(cookie_header(&d), format!("canary=v2; wrr={v2}"));
}

#[test]
fn pairs_go_reads_differently_are_rewritten() {
    // Traefik reads `wrr= <v1>` as " <v1>", which selects no child: Cohort
    // must not leave it in place as if it were right.
    let c = config(json!({
        "weightedSticky": {"cookie": "wrr"},
        "variants": [{"name": "v1", "service": "app-v1@file"}, {"name": "v2", "weight": 0}],
    }));
    let v1 = crate::bucket::traefik_sticky_value("app-v1@file");
    let d = run(
        &c,
        &mut FakeRequest::get("/").cookie(format!("canary=v1; wrr= {v1}")),
    );
    assert_eq!(cookie_header(&d), format!("canary=v1; wrr={v1}"));
    // `canary= v1` is no variant to Go either: reassigned and rewritten.
    let d = run(&c, &mut FakeRequest::get("/").cookie("canary= v1"));
    assert_eq!(d.reason, Reason::Reassigned);
    assert!(d.set_cohort_cookie);
    assert_eq!(cookie_header(&d), format!("canary=v1; wrr={v1}"));
}

#[test]
fn variants_without_a_child_drop_forged_sticky_pairs() {
    let c = config(json!({
        "weightedSticky": {"cookie": "wrr"},
        "variants": [{"name": "v1", "service": "app-v1@file"}, {"name": "v2", "weight": 100}],
    }));
    let d = run(&c, &mut FakeRequest::get("/").cookie("wrr=abc; canary=v2"));
    assert_eq!(cookie_header(&d), "canary=v2");
}

/// Visitors with cohort cookies and visitor ids, moved through a ramp.
fn population(c: &Config, n: usize) -> Vec<(usize, String)> {
    let ids = RefCell::new(IdGenerator::new(b"pop"));
    (0..n)
        .map(|i| {
            let mut req = FakeRequest::get("/").from(&format!("10.0.{}.{}:1", i / 250, i % 250));
            let d = decide(c, &mut req, &ids, || i as u128);
            (d.variant, visitor_pair(&d))
        })
        .collect()
}

#[test]
fn keep_never_moves_cookie_holders_when_weights_change() {
    let before = canary_with_ids(10);
    let after = canary(30);
    for (variant, id) in population(&before, 2_000) {
        let cookie = format!("canary={}; {id}", before.variants[variant].name);
        let d = run(&after, &mut FakeRequest::get("/").cookie(cookie));
        assert_eq!(d.variant, variant);
    }
}

#[test]
fn reevaluate_ramps_move_only_the_users_they_must() {
    let ramp = |from: u32, to: u32| {
        let before = canary_with_ids(from);
        let mut after = canary_with_ids(to);
        after.stickiness = Stickiness::Reevaluate;
        let (mut moved_in, mut moved_out) = (0, 0);
        let people = population(&before, 4_000);
        for (variant, id) in &people {
            let cookie = format!("canary={}; {id}", before.variants[*variant].name);
            let d = run(&after, &mut FakeRequest::get("/").cookie(cookie));
            match (*variant, d.variant) {
                (0, 1) => moved_in += 1,
                (1, 0) => moved_out += 1,
                _ => {}
            }
            assert_eq!(d.set_cohort_cookie, d.variant != *variant);
        }
        (moved_in, moved_out)
    };
    let (moved_in, moved_out) = ramp(10, 30);
    assert_eq!(moved_out, 0, "ramp up moved canary users out");
    // ~20 % of 4 000 = 800 (sd ≈ 25).
    assert!((650..950).contains(&moved_in), "{moved_in}");
    let (moved_in, moved_out) = ramp(30, 10);
    assert_eq!(moved_in, 0, "ramp down moved stable users in");
    assert!((650..950).contains(&moved_out), "{moved_out}");
}

#[test]
fn split_over_many_new_visitors_follows_the_weights() {
    let c = canary_with_ids(20);
    let people = population(&c, 20_000);
    let canaries = people.iter().filter(|(v, _)| *v == 1).count();
    // 20 000 at 20 %: sd ≈ 57; ±300 is over 5 sd.
    assert!((3_700..4_300).contains(&canaries), "{canaries}");
}

#[test]
fn describe_names_cohort_reason_and_key() {
    let c = canary(0);
    let d = run(&c, &mut FakeRequest::get("/"));
    assert_eq!(
        d.describe(&c),
        "cohort=v1 reason=assigned key=one-off set-cookie"
    );
    let c = canary_with_ids(0);
    let d = run(&c, &mut FakeRequest::get("/"));
    assert_eq!(
        d.describe(&c),
        "cohort=v1 reason=assigned key=visitor-id(new) set-cookie"
    );
}

#[test]
fn path_and_query_helpers() {
    assert_eq!(path_of(b"/a/b?c=d"), b"/a/b");
    assert_eq!(path_of(b"https://h:8443/x#f"), b"/x");
    assert_eq!(path_of(b"http://h"), b"/");
    assert_eq!(path_of(b""), b"");
    assert_eq!(query_param(b"/?a=1&b=2&a=3", b"a"), Some(&b"1"[..]));
    assert_eq!(query_param(b"/?flag&b", b"flag"), Some(&b""[..]));
    assert_eq!(query_param(b"/path", b"a"), None);
    // An origin-form target is not searched for a scheme: a URL in the
    // query is not where the path starts.
    assert_eq!(path_of(b"/login?next=https://x.example/healthz"), b"/login");
    assert_eq!(path_of(b"/a://b/c"), b"/a://b/c");
    assert_eq!(path_of(b"/x#f?y"), b"/x");
    assert_eq!(path_of(b"*"), b"*");
    // An absolute-form target's authority ends at `?` or `#` too.
    assert_eq!(path_of(b"http://h?next=/healthz"), b"/");
    assert_eq!(path_of(b"http://h#/healthz"), b"/");
    assert_eq!(path_of(b"http://h/healthz?x=/y"), b"/healthz");
    assert_eq!(query_param(b"/?a=1&", b"a"), Some(&b"1"[..]));
    assert_eq!(query_param(b"/?b=1&&a=2#a=3", b"a"), Some(&b"2"[..]));
    assert_eq!(query_param(b"/?b=1#&a=3", b"a"), None);
    assert_eq!(query_param(b"/?", b"a"), None);
}

proptest! {
    /// The query and path scans against their definitions by splitting.
    #[test]
    fn query_param_and_path_match_their_definitions(
        uri in proptest::collection::vec(
            prop_oneof![Just(b'/'), Just(b'?'), Just(b'&'), Just(b'='), Just(b'#'), Just(b'a'), Just(b'b')],
            0..40,
        ),
    ) {
        for name in [&b"a"[..], b"ab"] {
            let expected = uri.iter().position(|&b| b == b'?').and_then(|q| {
                let query = &uri[q + 1..];
                let query = &query[..query.iter().position(|&b| b == b'#').unwrap_or(query.len())];
                query.split(|&b| b == b'&').find_map(|pair| match pair.iter().position(|&b| b == b'=') {
                    Some(eq) => (&pair[..eq] == name).then_some(&pair[eq + 1..]),
                    None => (pair == name).then_some(&pair[pair.len()..]),
                })
            });
            prop_assert_eq!(query_param(&uri, name), expected);
        }
        if uri.first() == Some(&b'/') {
            let end = uri.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(uri.len());
            prop_assert_eq!(path_of(&uri), &uri[..end]);
        }
    }
}

fn any_config() -> impl Strategy<Value = Config> {
    (0u32..=100, any::<bool>(), any::<bool>()).prop_map(|(pct, reevaluate, sticky)| {
        let mut v = json!({
            "override": {"header": "X-Force", "query": "cohort"},
            "exclude": {"paths": ["^/health"]},
            "keys": ["header:X-User", "ip"],
            "stickiness": if reevaluate { "reevaluate" } else { "keep" },
            "variants": [{"name": "v1", "service": "a"}, {"name": "v2", "weight": pct.to_string(), "service": "b"}],
        });
        if sticky {
            v["weightedSticky"] = json!({"cookie": "wrr"});
        } else {
            v["variants"] = json!([{"name": "v1"}, {"name": "v2", "weight": pct.to_string()}]);
        }
        config(v)
    })
}

proptest! {
    /// Arbitrary bytes in every input: no panic, a valid variant, and every
    /// Set-Cookie is a well-formed `name=value; attributes` with a safe value.
    #[test]
    fn hostile_requests_never_panic(
        c in any_config(),
        cookies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4),
        uri in proptest::collection::vec(any::<u8>(), 0..100),
        addr in proptest::collection::vec(any::<u8>(), 0..40),
        force in proptest::collection::vec(any::<u8>(), 0..12),
        user in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
    ) {
        let mut req = FakeRequest { method: b"GET".to_vec(), uri, addr, ..Default::default() };
        for line in cookies { req = req.cookie(line); }
        req = req.header("X-Force", force);
        if let Some(user) = user { req = req.header("X-User", user); }
        let d = run(&c, &mut req);
        prop_assert!(d.variant < c.variants.len());
        let mut set_cookies = Vec::new();
        if d.set_cohort_cookie { set_cookies.push(c.variants[d.variant].set_cookie.clone()); }
        set_cookies.extend(d.visitor_set_cookie.clone());
        for sc in set_cookies {
            let sc = String::from_utf8(sc).expect("ascii");
            let value = sc.split(';').next().unwrap().split_once('=').unwrap().1;
            prop_assert!(crate::cookie::is_cookie_value(value), "{}", sc);
        }
        if let Some(header) = &d.cookie_header {
            let lines = [header];
            let found = crate::cookie::lookup(&lines, c.cookie_name.as_bytes());
            prop_assert!(found.is_exactly(c.variants[d.variant].name.as_bytes()));
        }
    }
}

/// The `testData` of `.traefik.yml`, the configuration users see first.
fn test_data() -> Config {
    config(json!({
        "seed": "checkout-2026",
        "variants": [{"name": "v1", "weight": "90"}, {"name": "v2", "weight": "10", "state": "active"}],
        "cookie": {"name": "canary", "maxAge": "2592000", "path": "/", "secure": "true",
                   "httpOnly": "true", "sameSite": "lax"},
        "header": "X-Canary",
        "keys": ["header:X-User-Id", "cookie:session", "ip"],
        "stickiness": "keep",
        "override": {"header": "X-Canary-Force", "query": "canary"},
        "exclude": {"paths": ["^/healthz$"], "userAgents": ["(?i)bot"]},
    }))
}

/// A request as Chrome sends it: a real User-Agent, 30 analytics cookies,
/// a path with a query.
fn browser(cookie: &str) -> FakeRequest {
    let analytics: Vec<String> = (0..30)
        .map(|i| format!("_ga_{i:02}=GA1.2.{}.1700000000", 1_000_000 + i))
        .collect();
    let mut cookies = analytics.join("; ");
    if !cookie.is_empty() {
        cookies = format!("{cookies}; {cookie}");
    }
    FakeRequest::get("/products/42?ref=mail")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36",
        )
        .cookie(cookies)
}

#[test]
fn a_returning_visitor_reads_only_what_can_change_its_cohort() {
    let c = test_data();
    // The cookie, then the two override sources: nothing else (not the
    // user agent or the path the exclusions would match, not the keys).
    let mut req = browser("canary=v1").header("X-User-Id", "u123");
    let d = run(&c, &mut req);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Cookie));
    assert_eq!(req.reads, ["header:cookie", "header:x-canary-force", "uri"]);
    assert_eq!(d.cookie_header, None);
    // An override present: now the exclusions decide whether it counts.
    let mut req = browser("canary=v1").header("X-Canary-Force", "v2");
    let d = run(&c, &mut req);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Override));
    assert_eq!(
        req.reads,
        [
            "header:cookie",
            "header:x-canary-force",
            "uri",
            "header:user-agent"
        ]
    );
}

#[test]
fn a_new_visitor_reads_each_source_once() {
    let c = test_data();
    let mut req = browser("").header("X-User-Id", "u123");
    let d = run(&c, &mut req);
    assert_eq!(d.reason, Reason::Assigned);
    assert_eq!(d.key, KeyUsed::Configured(0));
    assert_eq!(
        req.reads,
        [
            "header:cookie",
            "uri",
            "header:user-agent",
            "header:x-canary-force",
            "header:x-user-id"
        ]
    );
}

// ---------------------------------------------------------------------------
// Found by mutation testing (cargo mutants -f plugin/src/decision.rs).

/// The first `user-N` whose bucket under `c` is `variant`.
fn user_in(c: &Config, variant: usize) -> String {
    (0..10_000)
        .map(|i| format!("user-{i}"))
        .find(|k| bucket_of(c, k.as_bytes()) == variant)
        .expect("some user lands there")
}

#[test]
fn an_excluded_request_never_reaches_a_disabled_variant() {
    // A health check or a bot holding `canary=<disabled>`: the default,
    // whatever else it carries, and nothing written.
    let c = config(json!({
        "exclude": {"paths": ["^/healthz$"], "userAgents": ["(?i)bot"]},
        "keys": ["header:X-Id"],
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 20, "state": "disabled"},
                     {"name": "v3", "weight": 30}],
    }));
    for mut req in [
        FakeRequest::get("/healthz").cookie("canary=v2"),
        FakeRequest::get("/")
            .header("User-Agent", "Googlebot")
            .cookie("canary=v2"),
        FakeRequest::get("/healthz")
            .header("X-Id", user_in(&c, 2))
            .cookie("canary=v2"),
    ] {
        let d = run(&c, &mut req);
        assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Excluded));
        assert!(!d.set_cohort_cookie && d.visitor_set_cookie.is_none());
    }
    // An active holder keeps theirs there (by the shortcut: reason cookie).
    let d = run(&c, &mut FakeRequest::get("/healthz").cookie("canary=v3"));
    assert_eq!((name(&c, &d).as_str(), d.set_cohort_cookie), ("v3", false));
}

#[test]
fn under_keep_holders_never_move_to_their_bucket_even_with_keys() {
    // The reason shown (debug header): the holder is not taken by the
    // shortcut but by the cookie rule, which must not re-bucket under keep.
    let mut c = config(json!({
        "keys": ["header:X-Id"],
        "debugHeader": "X-Cohort-Debug",
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 40}, {"name": "v3", "weight": 10, "state": "disabled"}],
    }));
    for shown in [true, false] {
        if !shown {
            c.debug_header = None;
        }
        for (held, bucket) in [(1, 0), (0, 1)] {
            let user = user_in(&c, bucket);
            let cookie = format!("canary={}", c.variants[held].name);
            let d = run(
                &c,
                &mut FakeRequest::get("/").header("X-Id", &user).cookie(cookie),
            );
            assert_eq!((d.variant, d.reason), (held, Reason::Cookie), "{user}");
            assert_eq!((d.key, d.set_cohort_cookie), (KeyUsed::None, false));
        }
        // A disabled holder goes to the default, not to their bucket.
        let user = user_in(&c, 1);
        let d = run(
            &c,
            &mut FakeRequest::get("/")
                .header("X-Id", &user)
                .cookie("canary=v3"),
        );
        assert_eq!((d.variant, d.reason), (0, Reason::Rollback), "{user}");
        assert_eq!(d.key, KeyUsed::None);
    }
}

#[test]
fn a_reevaluated_holder_reports_its_key_and_normalises_duplicates() {
    let c = config(json!({
        "stickiness": "reevaluate",
        "keys": ["header:X-Id"],
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 50}],
    }));
    let on_v2 = user_in(&c, 1);
    // In its bucket with one clean pair: nothing to write.
    let d = run(
        &c,
        &mut FakeRequest::get("/")
            .header("X-Id", &on_v2)
            .cookie("canary=v2"),
    );
    assert_eq!((d.variant, d.reason), (1, Reason::Reevaluated));
    assert_eq!(d.key, KeyUsed::Configured(0));
    assert!(!d.set_cohort_cookie && d.cookie_header.is_none());
    // In its bucket, but the cookie says it twice: rewritten and set once.
    let d = run(
        &c,
        &mut FakeRequest::get("/")
            .header("X-Id", &on_v2)
            .cookie("canary=v2; canary=v1"),
    );
    assert_eq!((d.variant, d.reason), (1, Reason::Reevaluated));
    assert!(d.set_cohort_cookie);
    assert_eq!(cookie_header(&d), "canary=v2");
    // Keyed by the visitor id when no configured key is present.
    let ids = canary_with_ids(50);
    let mut ids = ids;
    ids.stickiness = Stickiness::Reevaluate;
    let id = "0123456789abcdef0123456789abcdef";
    let d = run(
        &ids,
        &mut FakeRequest::get("/").cookie(format!("canary=v1; cohort_id={id}")),
    );
    assert_eq!((d.reason, d.key), (Reason::Reevaluated, KeyUsed::VisitorId));
    assert_eq!(d.variant, bucket_of(&ids, id.as_bytes()));
}

#[test]
fn only_32_hex_digits_are_a_visitor_id() {
    let c = canary_with_ids(50);
    let hex32 = "0123456789abcdef0123456789ABCDEF";
    let d = run(
        &c,
        &mut FakeRequest::get("/").cookie(format!("cohort_id={hex32}")),
    );
    assert_eq!(d.key, KeyUsed::VisitorId);
    assert_eq!(d.variant, bucket_of(&c, hex32.as_bytes()));
    for forged in [
        "z".repeat(32),                             // the length, not hex
        "0123456789abcdef0123456789abcdeg".into(),  // one non-hex digit
        "0123456789abcdef0123456789abcde".into(),   // 31 hex digits
        "0123456789abcdef0123456789abcdef0".into(), // 33
        String::new(),
    ] {
        let d = run(
            &c,
            &mut FakeRequest::get("/").cookie(format!("cohort_id={forged}")),
        );
        assert_eq!(d.key, KeyUsed::NewVisitorId, "{forged:?}");
        assert!(d.visitor_set_cookie.is_some(), "{forged:?}");
    }
}

/// The quick path's answer for `request`, then (when it has none) the
/// decision on what it read, as the adapter runs them; and the reads made.
fn run_quick(config: &Config, request: FakeRequest) -> (Option<usize>, Decision, Vec<String>) {
    let quick = quick::Quick::new(config);
    let mut reads = quick::Prefetch::new(request);
    let answer = quick.as_ref().and_then(|quick| quick.kept(&mut reads));
    let ids = RefCell::new(IdGenerator::new(b"boot"));
    let decision = match answer {
        Some(variant) => Decision {
            variant,
            reason: Reason::Cookie,
            key: KeyUsed::None,
            cookie_header: None,
            set_cohort_cookie: false,
            visitor_set_cookie: None,
        },
        None => decide(config, &mut reads, &ids, || 1_700_000_000_000_000_000),
    };
    (answer, decision, reads.request.reads)
}

#[test]
fn the_quick_path_answers_a_returning_browser_with_the_same_three_reads() {
    let c = test_data();
    let (answer, d, reads) = run_quick(&c, browser("canary=v2").header("X-User-Id", "u1"));
    assert_eq!(answer, Some(1));
    assert_eq!(
        d,
        run(&c, &mut browser("canary=v2").header("X-User-Id", "u1"))
    );
    assert_eq!(reads, ["header:cookie", "header:x-canary-force", "uri"]);
    let quick = quick::Quick::new(&c).expect("testData takes the quick path");
    assert_eq!(quick.cohort_header(), Some(&b"X-Canary"[..]));
    assert_eq!(quick.variant_name(1), b"v2");
    // A new visitor: the quick path reads the Cookie line only, and the
    // decision reads it no second time.
    let mut new = browser("").header("X-User-Id", "u1");
    let (answer, d, reads) = run_quick(&c, new.clone());
    assert_eq!(answer, None);
    assert_eq!(d, run(&c, &mut new));
    assert_eq!(reads, new.reads);
    // An override, in the header or the query: the decision's, read once.
    for mut req in [
        browser("canary=v1").header("X-Canary-Force", "v2"),
        FakeRequest::get("/?canary=v2").cookie("canary=v1"),
    ] {
        let (answer, d, reads) = run_quick(&c, req.clone());
        assert_eq!(answer, None);
        assert_eq!(d, run(&c, &mut req));
        assert_eq!(d.reason, Reason::Override);
        assert_eq!(reads, req.reads);
    }
}

#[test]
fn the_quick_path_is_off_where_a_request_may_need_more_than_the_cookie() {
    let on = |v: Value| quick::Quick::new(&config(v)).is_some();
    let two = json!([{"name": "v1"}, {"name": "v2", "weight": "10"}]);
    assert!(on(json!({"variants": two})));
    // No cohort header configured: the path answers and writes nothing.
    let quiet = config(json!({"variants": two, "header": ""}));
    let quick = quick::Quick::new(&quiet).expect("on");
    assert_eq!(quick.cohort_header(), None);
    let mut reads = quick::Prefetch::new(FakeRequest::get("/").cookie("canary=v2"));
    assert_eq!(quick.kept(&mut reads), Some(1));
    // The reason reported, a weighted sticky pair to keep, too many
    // variants, names that do not fit inline: every request decides.
    assert!(!on(json!({"variants": two, "debugHeader": "X-Why"})));
    let mut logged = config(json!({"variants": two}));
    logged.log_decisions = true;
    assert!(quick::Quick::new(&logged).is_none());
    assert!(!on(json!({
        "variants": [{"name": "v1", "service": "a"}, {"name": "v2", "weight": "10", "service": "b"}],
        "weightedSticky": {"cookie": "wrr"},
    })));
    let variants = |n: usize| -> Vec<Value> {
        (1..=n)
            .map(|i| match i {
                1 => json!({"name": "v1"}),
                _ => json!({"name": format!("v{i}"), "weight": "10"}),
            })
            .collect()
    };
    let five = variants(5);
    assert!(!on(json!({"variants": five})));
    let four = variants(4);
    assert!(on(json!({"variants": four})));
    let long = "a-name-of-thirty-two-bytes-long.";
    assert!(!on(
        json!({"variants": [{"name": "v1"}, {"name": long, "weight": "10"}]})
    ));
}

fn any_quick_config() -> impl Strategy<Value = Config> {
    let state = prop_oneof![Just("active"), Just("drained"), Just("disabled")];
    (
        any::<bool>(),
        (state.clone(), state),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(reevaluate, (s1, s2), header, query, allow, exclude)| {
            let mut overrides = json!({});
            if header {
                overrides["header"] = json!("X-Force");
            }
            if query {
                overrides["query"] = json!("cohort");
            }
            if allow {
                overrides["allowFrom"] = json!(["10.0.0.0/8"]);
            }
            let mut v = json!({
                "override": overrides,
                "keys": ["header:X-User"],
                "stickiness": if reevaluate { "reevaluate" } else { "keep" },
                "variants": [
                    {"name": "v1"},
                    {"name": "v2", "weight": "30", "state": s1},
                    {"name": "v3", "weight": "20", "state": s2},
                ],
            });
            if exclude {
                v["exclude"] = json!({"paths": ["^/health"]});
            }
            config(v)
        })
}

proptest! {
    /// The quick path against `decide` alone: where it answers, `decide`
    /// gives that cohort for the cookie with nothing to write; where it
    /// does not, `decide` on what it read gives what `decide` alone does.
    /// Either way no value is read twice, and an answer reads what `decide`
    /// reads.
    #[test]
    fn the_quick_path_decides_as_decide_does(
        c in any_quick_config(),
        lines in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just("canary=v1"), Just("canary=v2"), Just("canary=v3"), Just("canary=v9"),
                    Just("canary="), Just("a=1"), Just("xcanary=v2"), Just("canary=v1 "),
                ],
                0..4,
            ),
            0..3,
        ),
        force in proptest::option::of(prop_oneof![Just("v2"), Just(""), Just("nope"), Just("never")]),
        uri in prop_oneof![
            Just("/"), Just("/health"), Just("/a?cohort=v3"), Just("/a?x=1&cohort"),
            Just("/a?cohorts=1"), Just("/a#?cohort=v2"),
        ],
        user in proptest::option::of(Just("u42")),
    ) {
        let mut req = FakeRequest::get(uri);
        for line in &lines {
            req = req.cookie(line.join("; "));
        }
        if let Some(force) = force {
            req = req.header("X-Force", force);
        }
        if let Some(user) = user {
            req = req.header("X-User", user);
        }
        let mut alone = req.clone();
        let expected = run(&c, &mut alone);
        let (answer, d, reads) = run_quick(&c, req);
        prop_assert_eq!(&d, &expected);
        if answer.is_some() {
            prop_assert_eq!((d.reason, &d.cookie_header, d.set_cohort_cookie), (Reason::Cookie, &None, false));
            prop_assert_eq!(&reads, &alone.reads);
        }
        let mut seen = reads.clone();
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), reads.len(), "a value read twice: {:?}", reads);
    }
}

/// A request whose reader has searched its one Cookie line already, and
/// says where the cohort cookie is.
struct Searched(FakeRequest, cookie::Found);

impl RequestView for Searched {
    type Bytes = Vec<u8>;
    fn header_values(&mut self, name: &str) -> Values<Vec<u8>> {
        self.0.header_values(name)
    }
    fn cookie_lines(&mut self) -> (Values<Vec<u8>>, Option<cookie::Found>) {
        (self.0.header_values("Cookie"), Some(self.1))
    }
    fn method(&mut self) -> Vec<u8> {
        RequestView::method(&mut self.0)
    }
    fn uri(&mut self) -> Vec<u8> {
        self.0.uri()
    }
    fn source_addr(&mut self) -> Vec<u8> {
        self.0.source_addr()
    }
}

#[test]
fn decide_takes_where_the_reader_found_the_cohort_cookie() {
    // The line names v1; the reader says the cohort cookie's value is the
    // `v2` further on. `decide` does not search the line again: it keeps
    // the reader's answer (and so a wrong one would show here).
    let c = canary(50);
    let line = "canary=v1; x=v2";
    let mut req = Searched(
        FakeRequest::get("/").cookie(line),
        cookie::Found::One(13, 15),
    );
    let ids = RefCell::new(IdGenerator::new(b"boot"));
    let d = decide(&c, &mut req, &ids, || 0);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v2", Reason::Cookie));
    // Offsets that do not fit the line are not trusted: it is searched.
    let mut req = Searched(
        FakeRequest::get("/").cookie(line),
        cookie::Found::One(40, 42),
    );
    let d = decide(&c, &mut req, &ids, || 0);
    assert_eq!((name(&c, &d).as_str(), d.reason), ("v1", Reason::Cookie));
}

#[test]
fn what_the_quick_path_read_answers_only_the_same_question_once() {
    let c = test_data();
    let quick = quick::Quick::new(&c).expect("on");
    let req = browser("canary=v1")
        .header("X-Canary-Force", "v2")
        .header("X-User-Id", "u1");
    let mut reads = quick::Prefetch::new(req);
    assert_eq!(quick.kept(&mut reads), None);
    // Another header comes from the request, not from what was read.
    assert_eq!(
        reads.header_values("X-User-Id"),
        Values::One(b"u1".to_vec())
    );
    // The override header is handed on (in any case), then asked again.
    assert_eq!(
        reads.header_values("x-canary-force"),
        Values::One(b"v2".to_vec())
    );
    assert_eq!(
        reads.request.reads,
        ["header:cookie", "header:x-canary-force", "header:x-user-id"]
    );
    assert_eq!(
        reads.header_values("X-Canary-Force"),
        Values::One(b"v2".to_vec())
    );
    assert_eq!(reads.request.reads.len(), 4);
    // The Cookie line and the URI: once each, too.
    let (lines, found) = reads.cookie_lines();
    assert!(found.is_some() && lines.len() == 1);
    assert_eq!(reads.cookie_lines().1, None);
    assert_eq!(reads.request.reads.len(), 5);
}
