//! Cohort's real `plugin.wasm`, end to end through the http-wasm ABI, in
//! Traefik-faithful mode (config stringified as Traefik does, the WASI
//! random source a PRNG seeded with 42 and a fake monotonic clock in every
//! instance): one test per behaviour of the plugin's issue.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};

use cohort_harness::{
    Backend, BackendError, EchoBackend, Error, Features, Guest, HostOptions, Import, Request,
    Response,
};
use serde_json::{Value, json};

use crate::cohort::{
    Visit, cohort, cohort_with, default_set_cookie, is_visitor_id, load, load_error,
    load_error_with, send, visit,
};

/// `v1` stable and `v2` canary at `canary` percent (a string, as Traefik
/// hands it over anyway), with the debug header on so tests see reasons.
fn canary(canary: &str) -> Value {
    json!({
        "debugHeader": "X-Cohort-Debug",
        "variants": [{"name": "v1"}, {"name": "v2", "weight": canary}],
    })
}

/// Everyone new goes to the canary: outcomes do not depend on the bucket.
fn all_canary() -> Value {
    canary("100")
}

/// `config` keeping generated visitor ids in `cohort_id` (the default only
/// under `stickiness: reevaluate`).
fn with_ids(mut config: Value) -> Value {
    config["visitorCookie"] = json!("cohort_id");
    config
}

// ---------------------------------------------------------------------------
// New and returning visitors.

#[test]
fn a_new_visitor_gets_a_cohort_cookie_and_the_cohort_header() {
    let guest = cohort(all_canary());
    let v = visit(&guest, "");

    assert_eq!(v.reason(), "assigned");
    assert_eq!(v.cohort(), "v2");
    // The request already carries the cohort, so a router matching
    // `canary=v2` or `X-Canary: v2` after Cohort sees it.
    assert_eq!(v.backend_cookie(), "canary=v2");
    // Under `keep` the cohort cookie is all a visitor needs: no visitor id.
    assert_eq!(v.set_cookies(), vec![default_set_cookie("canary", "v2")]);
    // Host calls: read Cookie; set Cookie, X-Canary and the debug header;
    // add the one Set-Cookie.
    assert_eq!(
        v.ex.host_calls.to_string(),
        "get_header_values=1 set_header_value=3 add_header_value=1"
    );
    // Cohort never asks for buffering (the response streams through).
    assert_eq!(guest.features(), Features::NONE);
    assert_eq!(v.ex.features, Features::NONE);
}

#[test]
fn a_new_visitor_gets_a_visitor_id_when_ids_are_kept() {
    for config in [with_ids(all_canary()), {
        let mut config = all_canary();
        config["stickiness"] = json!("reevaluate");
        config
    }] {
        let guest = cohort(config);
        let v = visit(&guest, "");
        assert_eq!((v.reason(), v.cohort()), ("assigned", "v2"));
        // Set-Cookie: the cohort, then the generated visitor id.
        let id = v.new_visitor_id().expect("a visitor id");
        assert!(is_visitor_id(id), "{id}");
        assert_eq!(
            v.set_cookies(),
            vec![
                default_set_cookie("canary", "v2"),
                default_set_cookie("cohort_id", id),
            ]
        );
        // The id's entropy is the clock and the instance's state: no read of
        // the client's address.
        assert_eq!(
            v.ex.host_calls.to_string(),
            "get_header_values=1 set_header_value=3 add_header_value=2"
        );
    }
}

#[test]
fn a_new_visitors_other_cookies_are_kept_and_the_cohort_appended() {
    let guest = cohort(all_canary());
    // Kept byte for byte (a parser that splits at `;` reads the same
    // pairs), trailing separators aside.
    let v = visit(&guest, "session=abc;theme=\"dark\"; ");
    assert_eq!(v.backend_cookie(), "session=abc;theme=\"dark\"; canary=v2");
}

#[test]
fn a_returning_visitor_costs_one_cookie_read_and_one_header_write() {
    let guest = cohort(canary("50"));
    let cookies = "session=abc; canary=v2; theme=dark";
    let v = visit(&guest, cookies);

    assert_eq!(v.reason(), "cookie");
    assert_eq!(v.cohort(), "v2");
    assert_eq!(v.set_cookies(), Vec::<&str>::new());
    // The Cookie header is left exactly as it came.
    assert_eq!(v.backend_cookie(), cookies);
    // Exactly the host calls the job needs: read Cookie, set X-Canary, set
    // the debug header this configuration asked for.
    let calls = v.ex.host_calls;
    assert_eq!(calls.get(Import::GetHeaderValues), 1, "{calls}");
    assert_eq!(calls.get(Import::SetHeaderValue), 2, "{calls}");
    assert_eq!(calls.total(), 3, "{calls}");

    // Without the debug header: two host calls in all.
    let plain = cohort(json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 50}]}));
    let v = visit(&plain, cookies);
    let calls = v.ex.host_calls;
    assert_eq!(calls.to_string(), "get_header_values=1 set_header_value=1");
    println!("returning visitor: {calls} ({} fuel)", v.ex.fuel);
}

#[test]
fn the_second_request_of_a_new_visitor_is_a_returning_one() {
    let guest = cohort(with_ids(canary("50")));
    let first = visit(&guest, "");
    let cohort_name = first.cohort().to_owned();
    let id = first.new_visitor_id().expect("id").to_owned();
    // The browser sends back both cookies.
    let second = visit(&guest, &format!("canary={cohort_name}; cohort_id={id}"));
    assert_eq!(second.reason(), "cookie");
    assert_eq!(second.cohort(), cohort_name);
    assert!(second.set_cookies().is_empty());
}

#[test]
fn a_lost_cohort_cookie_is_restored_from_the_visitor_id() {
    let guest = cohort(with_ids(canary("50")));
    let first = visit(&guest, "");
    let id = first.new_visitor_id().expect("id").to_owned();
    // Only the visitor id survived (the cohort cookie was deleted).
    let again = visit(&guest, &format!("cohort_id={id}"));
    assert_eq!(again.reason(), "assigned");
    assert_eq!(again.cohort(), first.cohort());
    assert_eq!(again.new_visitor_id(), None, "the id is kept, not renewed");
    assert_eq!(
        again.set_cookies(),
        vec![default_set_cookie("canary", first.cohort())]
    );
}

#[test]
fn a_spoofed_cohort_header_is_replaced() {
    let guest = cohort(canary("50"));
    let request = Request::get("/")
        .header("X-Canary", "v2")
        .header("Cookie", "canary=v1")
        .header("x-canary", "v3");
    let v = send(&guest, request);
    assert_eq!(v.backend_header("X-Canary"), vec!["v1"]);
    // Also for a new visitor: the header says what Cohort decided.
    let v = send(&guest, Request::get("/").header("X-CANARY", "v2-spoofed"));
    assert_eq!(v.backend_header("x-canary"), vec![v.cohort()]);
    assert_ne!(v.cohort(), "v2-spoofed");
}

#[test]
fn an_unknown_or_malformed_cohort_cookie_is_reassigned_and_rewritten() {
    let guest = cohort(all_canary());
    for held in [
        "canary=v9",
        "canary=",
        "canary",
        "canary=V2",
        "canary=\"v2\"",
    ] {
        let v = visit(&guest, &format!("a=1; {held}; b=2"));
        assert_eq!(v.reason(), "reassigned", "{held}");
        assert_eq!(v.cohort(), "v2", "{held}");
        // Replaced in place, everything else kept.
        assert_eq!(v.backend_cookie(), "a=1; canary=v2; b=2", "{held}");
        assert_eq!(v.set_cookie_value("canary"), Some("v2"), "{held}");
    }
}

// ---------------------------------------------------------------------------
// Ramp, drain, roll back.

#[test]
fn a_disabled_variant_rolls_its_holders_back_with_a_rewritten_cookie() {
    let guest = cohort(json!({
        "debugHeader": "X-Cohort-Debug",
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 0, "state": "disabled"}],
    }));
    let v = visit(&guest, "session=s; canary=v2");
    assert_eq!(v.reason(), "rollback");
    assert_eq!(v.cohort(), "v1");
    assert_eq!(v.backend_cookie(), "session=s; canary=v1");
    assert_eq!(v.set_cookies(), vec![default_set_cookie("canary", "v1")]);
    // Once rolled back, the holder is an ordinary v1 visitor.
    let again = visit(&guest, "session=s; canary=v1");
    assert_eq!(again.reason(), "cookie");
    assert!(again.set_cookies().is_empty());
}

#[test]
fn a_drained_variant_keeps_its_holders_and_takes_nobody_new() {
    let guest = cohort(json!({
        "debugHeader": "X-Cohort-Debug",
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 50, "state": "drained"}],
    }));
    let holder = visit(&guest, "canary=v2");
    assert_eq!((holder.cohort(), holder.reason()), ("v2", "cookie"));
    assert!(holder.set_cookies().is_empty());
    for _ in 0..50 {
        let new = visit(&guest, "");
        assert_eq!((new.cohort(), new.reason()), ("v1", "assigned"));
    }
}

/// The cohort of user `user` (a stable key from an auth middleware's header)
/// under `config`.
fn cohort_of_user(guest: &Guest, user: u32) -> String {
    let v = send(
        guest,
        Request::get("/").header("X-User-Id", format!("user-{user}")),
    );
    assert_eq!(v.new_visitor_id(), None, "a configured key needs no id");
    v.cohort().to_owned()
}

fn keyed(canary_percent: u32) -> Value {
    json!({
        "seed": "ramp",
        "keys": ["header:X-User-Id"],
        "variants": [{"name": "v1"}, {"name": "v2", "weight": canary_percent}],
    })
}

#[test]
fn the_same_key_gets_the_same_cohort_on_every_replica() {
    // Two replicas: two separate loads (not `cohort`, which shares one
    // `Guest` per configuration), each booted at its own instant.
    let replica = || cohort_with(keyed(30), HostOptions::traefik());
    let (a, b) = (replica(), replica());
    let mut canaries = 0;
    for user in 0..300 {
        let ca = cohort_of_user(&a, user);
        assert_eq!(ca, cohort_of_user(&b, user), "user {user}");
        canaries += usize::from(ca == "v2");
    }
    // 300 users at 30 %: sd ≈ 7.9, so 90 ± 40 is over 5 sd.
    assert!((50..=130).contains(&canaries), "{canaries}");
}

#[test]
fn a_ramp_moves_only_stable_users_into_the_canary() {
    let (at10, at30) = (cohort(keyed(10)), cohort(keyed(30)));
    let mut moved = 0;
    for user in 0..500 {
        let (before, after) = (cohort_of_user(&at10, user), cohort_of_user(&at30, user));
        if before == "v2" {
            assert_eq!(after, "v2", "user {user} left the canary on a ramp up");
        }
        moved += usize::from(before != after);
    }
    // About 20 % of 500 move (sd ≈ 8.9): nobody else.
    assert!((55..=145).contains(&moved), "{moved}");
}

#[test]
fn with_reevaluate_cookie_holders_follow_a_ramp_down() {
    let config = |w: u32| {
        json!({
            "debugHeader": "X-Cohort-Debug",
            "stickiness": "reevaluate",
            "keys": ["header:X-User-Id"],
            "variants": [{"name": "v1"}, {"name": "v2", "weight": w}],
        })
    };
    let (at50, at0) = (cohort(config(50)), cohort(config(0)));
    let user = |guest: &Guest, id: &str, cookie: &str| {
        send(
            guest,
            Request::get("/")
                .header("X-User-Id", id)
                .header("Cookie", cookie),
        )
    };
    // Users assigned at 50 %, then back after the ramp down to 0 % holding
    // the cookie they were given: both kinds of holder, several of each.
    let (mut canary_holders, mut stable_holders) = (0, 0);
    for i in 0..12 {
        let id = format!("user-{i}");
        let first = user(&at50, &id, "");
        let held = first.cohort().to_owned();
        assert_eq!(first.set_cookie_value("canary"), Some(held.as_str()));
        let v = user(&at0, &id, &format!("canary={held}"));
        assert_eq!((v.cohort(), v.reason()), ("v1", "reevaluated"), "{id}");
        assert_eq!(v.backend_cookie(), "canary=v1", "{id}");
        if held == "v2" {
            // A canary holder moves back, and is told so.
            assert_eq!(
                v.set_cookies(),
                [default_set_cookie("canary", "v1")],
                "{id}"
            );
            canary_holders += 1;
        } else {
            // A stable holder is where it belongs: nothing written.
            assert_eq!(held, "v1");
            assert!(v.set_cookies().is_empty(), "{id}");
            stable_holders += 1;
        }
    }
    // Both kinds, as the formula says (computed as in
    // testdata/assignment-kat.py, seed `cohort`): user-2, -8, -9, -10 and
    // -11 on v2 at 50 %, the other seven on v1.
    assert_eq!((canary_holders, stable_holders), (5, 7));
    // `keep` (the default) would not have moved them.
    let keep = cohort(keyed(0));
    let v = user(&keep, "user-7", "canary=v2");
    assert_eq!(v.cohort(), "v2");
}

// ---------------------------------------------------------------------------
// Overrides and exclusions.

fn with_override(extra: Value) -> Value {
    let mut config = json!({
        "debugHeader": "X-Cohort-Debug",
        "override": {"header": "X-Canary-Force", "query": "canary"},
        "variants": [
            {"name": "v1"},
            {"name": "v2", "weight": 0},
            {"name": "v3", "weight": 0},
            {"name": "v4", "weight": 0, "state": "disabled"},
        ],
    });
    if let (Some(o), Value::Object(extra)) = (config["override"].as_object_mut(), extra) {
        o.extend(extra);
    }
    config
}

fn forced(guest: &Guest, value: &str, cookies: &str) -> Visit {
    send(
        guest,
        Request::get("/")
            .header("X-Canary-Force", value)
            .header("Cookie", cookies),
    )
}

#[test]
fn a_header_override_forces_always_never_or_a_name_for_one_request() {
    let guest = cohort(with_override(json!({})));
    for (value, want) in [
        ("always", "v2"),
        ("ALWAYS", "v2"),
        ("never", "v1"),
        ("v3", "v3"),
    ] {
        let v = forced(&guest, value, "canary=v1; a=b");
        assert_eq!((v.cohort(), v.reason()), (want, "override"), "{value}");
        // The request is routed as forced...
        assert_eq!(v.backend_cookie(), format!("canary={want}; a=b"));
        // ...but the client's cookie is not touched: it lasts one request.
        assert!(v.set_cookies().is_empty(), "{value}");
    }
    // Not a variant, or a disabled one: ignored, the cookie decides.
    for value in ["v4", "nope", "", "v2; Domain=evil"] {
        let v = forced(&guest, value, "canary=v1");
        assert_eq!((v.cohort(), v.reason()), ("v1", "cookie"), "{value:?}");
    }
}

#[test]
fn a_query_override_persists_in_the_cookie() {
    let guest = cohort(with_override(json!({})));
    let v = send(&guest, Request::get("/landing?utm=x&canary=v3"));
    assert_eq!((v.cohort(), v.reason()), ("v3", "override"));
    assert_eq!(v.set_cookie_value("canary"), Some("v3"));
    assert_eq!(v.backend_cookie(), "canary=v3");
    // The shared link's cookie then holds on its own.
    let next = visit(&guest, "canary=v3");
    assert_eq!((next.cohort(), next.reason()), ("v3", "cookie"));
    // Following the link again changes nothing.
    let again = send(
        &guest,
        Request::get("/?canary=v3").header("Cookie", "canary=v3"),
    );
    assert!(again.set_cookies().is_empty());
}

#[test]
fn overrides_are_refused_from_outside_allow_from_and_allowed_inside() {
    let guest = cohort(with_override(
        json!({"allowFrom": ["10.0.0.0/8", "2001:db8::/32"]}),
    ));
    let from = |addr: &str| {
        send(
            &guest,
            Request::get("/?canary=v3")
                .source_addr(addr)
                .header("X-Canary-Force", "always")
                .header("Cookie", "canary=v1"),
        )
    };
    for inside in [
        "10.1.2.3:40000",
        "[2001:db8::7]:443",
        "[::ffff:10.9.9.9]:1",
        "10.0.0.1",
    ] {
        let v = from(inside);
        assert_eq!((v.cohort(), v.reason()), ("v2", "override"), "{inside}");
    }
    for outside in [
        "192.0.2.1:40000",
        "[2001:db9::1]:443",
        "[::1]:80",
        "11.0.0.1:1",
        "garbage",
        "",
    ] {
        let v = from(outside);
        assert_eq!((v.cohort(), v.reason()), ("v1", "cookie"), "{outside:?}");
        assert!(v.set_cookies().is_empty(), "{outside:?}");
    }
}

#[test]
fn excluded_requests_get_no_cookie_and_keep_a_holders_cohort() {
    let guest = cohort(json!({
        "debugHeader": "X-Cohort-Debug",
        "exclude": {"paths": ["^/healthz$"], "methods": "OPTIONS", "userAgents": ["(?i)bot"]},
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 100}],
    }));
    let excluded = [
        Request::get("/healthz"),
        Request::new("OPTIONS", "/"),
        Request::get("/").header("User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1)"),
    ];
    for request in excluded {
        let shown = format!("{} {}", request.method, request.uri);
        let v = send(&guest, request);
        // The default, never a Set-Cookie, and routed like a v1 request.
        assert_eq!((v.cohort(), v.reason()), ("v1", "excluded"), "{shown}");
        assert!(v.set_cookies().is_empty(), "{shown}");
        assert_eq!(v.backend_cookie(), "canary=v1", "{shown}");
    }
    // A holder's health check does not flicker to v1.
    let v = send(
        &guest,
        Request::get("/healthz").header("Cookie", "canary=v2"),
    );
    assert_eq!((v.cohort(), v.reason()), ("v2", "excluded"));
    assert!(v.set_cookies().is_empty());
    // Not excluded: a look-alike path.
    assert_eq!(send(&guest, Request::get("/healthzz")).reason(), "assigned");
}

// ---------------------------------------------------------------------------
// Traefik's weighted sticky cookie.

fn weighted(v2_state: &str, v2_weight: u32) -> Value {
    json!({
        "weightedSticky": {"cookie": "wrr"},
        "variants": [
            {"name": "v1", "service": "v1@file"},
            {"name": "v2", "weight": v2_weight, "state": v2_state, "service": "v2@file"},
        ],
    })
}

/// `sha256("v1@file")` and `sha256("v2@file")`, first 16 hex digits
/// (checked with `sha256sum`): what Traefik's weighted service expects.
const V1_STICKY: &str = "4a20cab0948e1631";
const V2_STICKY: &str = "9c8fc8fb5822431c";

#[test]
fn the_weighted_sticky_cookie_is_written_with_traefiks_hash() {
    let guest = cohort(weighted("active", 100));
    let v = visit(&guest, "a=1");
    assert_eq!(v.cohort(), "v2");
    assert_eq!(
        v.backend_cookie(),
        format!("a=1; canary=v2; wrr={V2_STICKY}")
    );
    // Traefik sets its own sticky Set-Cookie; Cohort only writes the request.
    assert_eq!(v.set_cookie("wrr"), None);
    // A request that already says it all is left alone.
    let done = format!("canary=v2; wrr={V2_STICKY}");
    let v = visit(&guest, &done);
    assert_eq!(v.backend_cookie(), done);
    // Read Cookie, set X-Canary; after next, read Set-Cookie: an
    // instance's first responses are checked for Traefik overruling it.
    assert_eq!(
        v.ex.host_calls.to_string(),
        "get_header_values=2 set_header_value=1"
    );
}

/// The one Cohort instance, so that its response budget is predictable.
fn one_instance(config: Value) -> Guest {
    cohort_with(config, HostOptions::traefik().max_instances(1))
}

/// A backend answering as Traefik's weighted service does when it ignored
/// the request's sticky value: its own `Set-Cookie` for the sticky cookie.
fn traefik_chose(value: &str) -> EchoBackend {
    EchoBackend::new()
        .response_header("Set-Cookie", "_pod=1; Path=/")
        .response_header("Set-Cookie", format!("wrr={value}; Path=/; HttpOnly"))
}

fn warnings(ex: &cohort_harness::Exchange) -> Vec<&str> {
    ex.logs
        .iter()
        .filter(|l| l.level == cohort_harness::LogLevel::Warn)
        .map(|l| l.message.as_str())
        .collect()
}

#[test]
fn traefik_overruling_the_sticky_value_is_a_warning_naming_the_fix() {
    // The children are written `v1`/`v2` under weighted.services, but the
    // config says `v1@file`/`v2@file`: Traefik ignores Cohort's value.
    let guest = one_instance(weighted("active", 100));
    let v2_bare = cohort::bucket::traefik_sticky_value("v2");
    let ex = guest
        .handle(Request::get("/"), &traefik_chose(&v2_bare))
        .expect("served");
    let warned = warnings(&ex);
    assert_eq!(warned.len(), 1, "{:?}", ex.logs);
    let w = warned[0];
    assert!(
        w.starts_with("Cohort: weightedSticky.cookie \"wrr\""),
        "{w}"
    );
    assert!(w.contains(&format!("set its own, \"{v2_bare}\"")), "{w}");
    assert!(w.contains("set variants[1].service: v2"), "{w}");
    // Once per instance: the next overruled response costs nothing.
    let again = guest
        .handle(Request::get("/"), &traefik_chose(&v2_bare))
        .expect("served");
    assert!(warnings(&again).is_empty(), "{:?}", again.logs);
    assert_eq!(again.host_calls.get(Import::GetHeaderValues), 1);
}

#[test]
fn an_old_traefiks_fnv_value_is_a_warning_to_set_the_hash() {
    let guest = one_instance(weighted("active", 100));
    // Traefik 3.3.3's value for `v2@file`.
    let fnv = cohort::bucket::StickyHash::Fnv.value("v2@file");
    let ex = guest
        .handle(Request::get("/"), &traefik_chose(&fnv))
        .expect("served");
    let warned = warnings(&ex);
    assert_eq!(warned.len(), 1, "{:?}", ex.logs);
    assert!(
        warned[0].contains("set weightedSticky.hash: fnv"),
        "{}",
        warned[0]
    );
}

#[test]
fn a_traefik_that_honours_the_value_gets_no_warning_and_few_looks() {
    let guest = one_instance(weighted("active", 100));
    let done = format!("canary=v2; wrr={V2_STICKY}");
    let budget = cohort::sticky_watch::Budget::FIRST;
    for i in 1..=budget + 1 {
        // Traefik honoured the value: no sticky Set-Cookie; then, after the
        // budget, an overruled response is not looked at.
        let backend = if i <= budget {
            EchoBackend::new()
        } else {
            traefik_chose("0123456789abcdef")
        };
        let ex = guest
            .handle(Request::get("/").header("Cookie", &done), &backend)
            .expect("served");
        assert!(warnings(&ex).is_empty(), "response {i}: {:?}", ex.logs);
        let reads = if i <= budget { 2 } else { 1 };
        assert_eq!(
            ex.host_calls.get(Import::GetHeaderValues),
            reads,
            "response {i}"
        );
    }
}

#[test]
fn a_forged_weighted_sticky_cookie_is_replaced() {
    // v2 is drained: a forged sticky value for it must not reach it.
    let guest = cohort(weighted("drained", 0));
    let v = visit(&guest, &format!("wrr={V2_STICKY}; a=1"));
    assert_eq!(v.cohort(), "v1");
    assert_eq!(
        v.backend_cookie(),
        format!("wrr={V1_STICKY}; a=1; canary=v1")
    );
    // Duplicates of the sticky cookie are reduced to the right one.
    let v = visit(
        &guest,
        &format!("canary=v1; wrr={V2_STICKY}; wrr={V1_STICKY}"),
    );
    assert_eq!(v.backend_cookie(), format!("canary=v1; wrr={V1_STICKY}"));
    // A drained variant's holder keeps its child.
    let v = visit(&guest, &format!("canary=v2; wrr={V1_STICKY}"));
    assert_eq!(v.backend_cookie(), format!("canary=v2; wrr={V2_STICKY}"));
}

// ---------------------------------------------------------------------------
// The response: Cohort adds, never sets.

#[test]
fn a_backend_set_cookie_survives_next_to_cohorts() {
    let guest = cohort(all_canary());
    let backend = EchoBackend::new()
        .response_header("Set-Cookie", "session=xyz; Path=/; HttpOnly")
        .response_header("Set-Cookie", "_sticky_pod=a1b2");
    let ex = guest
        .handle(Request::get("/"), &backend)
        .expect("the harness serves");
    let set = ex.response.headers.get_all("Set-Cookie");
    assert_eq!(set.len(), 3, "{set:?}");
    assert_eq!(set[0], default_set_cookie("canary", "v2"));
    assert_eq!(
        &set[1..],
        ["session=xyz; Path=/; HttpOnly", "_sticky_pod=a1b2"]
    );
}

#[test]
fn cookie_attributes_follow_the_configuration() {
    let guest = cohort(json!({
        "cookie": {
            "name": "__Secure-cohort", "maxAge": 0, "path": "/app", "domain": "example.com",
            "secure": true, "httpOnly": false, "sameSite": "none",
        },
        "visitorCookie": "vid",
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 100}],
    }));
    let v = visit(&guest, "");
    let attrs = "; Path=/app; Domain=example.com; Secure; SameSite=None";
    assert_eq!(
        v.set_cookie("__Secure-cohort"),
        Some(&*format!("__Secure-cohort=v2{attrs}"))
    );
    let id = v.set_cookie_value("vid").expect("visitor id");
    assert_eq!(v.set_cookie("vid"), Some(&*format!("vid={id}{attrs}")));
    assert_eq!(v.backend_cookie(), "__Secure-cohort=v2");
}

// ---------------------------------------------------------------------------
// Observability.

#[test]
fn decisions_are_logged_at_debug_level_when_asked() {
    let mut config = all_canary();
    config["logDecisions"] = json!(true);
    let guest = cohort(config);
    let v = visit(&guest, "");
    let lines: Vec<String> = v.ex.logs.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec!["[debug] cohort=v2 reason=assigned key=one-off set-cookie"]
    );
    assert_eq!(v.debug(), Some("v2; reason=assigned"));
    // Off by default: Traefik's host says every level is enabled, so the
    // guest cannot ask; it logs nothing per request unless told to.
    let quiet = cohort(all_canary());
    assert!(visit(&quiet, "").ex.logs.is_empty());
    assert_eq!(visit(&quiet, "").ex.host_calls.get(Import::Log), 0);
}

// ---------------------------------------------------------------------------
// Configuration.

/// Each bad configuration and the field the error must name.
fn bad_configs() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": "ten"}]}),
            "variants[1].weight",
        ),
        (
            json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 12.345}]}),
            "variants[1].weight",
        ),
        (
            json!({"variants": [{"name": "v1"}, {"name": "v 2", "weight": 5}]}),
            "variants[1].name",
        ),
        (json!({"cookie": {"sameSite": "none"}}), "cookie.sameSite"),
        (json!({"cookie": {"secure": "yes"}}), "cookie.secure"),
        (json!({"percent": 10}), "percent"),
        (json!({"stickiness": "sometimes"}), "stickiness"),
        (
            json!({"override": {"allowFrom": ["10.0.0.0/99"]}}),
            "override.allowFrom[0]",
        ),
    ]
}

#[test]
fn a_bad_configuration_fails_loading_with_an_error_naming_the_field() {
    for (config, field) in bad_configs() {
        let (error, logged) = load_error(config.clone());
        // The guest exits from `_start`: the middleware never serves.
        assert!(
            matches!(error, Error::Exit { code: 1, .. }),
            "{config}: {error}"
        );
        // What Traefik prints is the guest's error log line.
        assert!(
            logged.starts_with(&format!("[error] invalid Cohort configuration: {field}: ")),
            "{config}: {logged}"
        );
    }
    // As Traefik stringifies it: `"weight": "ten"` names the field and value.
    let (_, logged) = load_error(bad_configs()[0].0.clone());
    assert!(logged.contains("\"ten\""), "{logged}");
}

#[test]
fn a_bad_configuration_fails_the_same_when_given_as_plain_json() {
    for (config, field) in bad_configs() {
        let raw = serde_json::to_vec(&config).unwrap();
        let (_, logged) = load_error_with(HostOptions::traefik().config_raw(raw));
        assert!(
            logged.contains(&format!("invalid Cohort configuration: {field}: ")),
            "{config}: {logged}"
        );
    }
    let (_, logged) = load_error_with(HostOptions::traefik().config_raw("{\"seed\": "));
    assert!(
        logged.contains("configuration: (root): not valid JSON"),
        "{logged}"
    );
}

#[test]
fn config_as_traefik_stringifies_it_behaves_like_plain_json() {
    let config = json!({
        "seed": "exp-7",
        "keys": ["header:X-User-Id"],
        "debugHeader": "X-Cohort-Debug",
        "cookie": {"maxAge": 3600, "secure": true, "httpOnly": false, "sameSite": "strict"},
        "override": {"header": "X-Canary-Force", "allowFrom": ["10.0.0.0/8"]},
        "exclude": {"paths": [], "methods": ["OPTIONS"]},
        "variants": [
            {"name": "a", "weight": 62.5, "default": true},
            {"name": "b", "weight": 25},
            {"name": "c", "weight": 12.5, "state": "active"},
        ],
    });
    let faithful = cohort(config.clone());
    // What Traefik hands over: every scalar a string, floats with six
    // decimals, the empty list as "".
    let delivered = String::from_utf8(faithful.config_bytes().to_vec()).unwrap();
    for piece in [
        r#""weight":"12.500000""#,
        r#""weight":"25""#,
        r#""maxAge":"3600""#,
        r#""secure":"true""#,
        r#""default":"true""#,
        r#""paths":"""#,
    ] {
        assert!(delivered.contains(piece), "{piece} in {delivered}");
    }
    // The same configuration as plain JSON, types intact.
    let typed = load(HostOptions::traefik().config_raw(serde_json::to_vec(&config).unwrap()));
    let mut split = BTreeMap::new();
    for user in 0..400 {
        let request = || {
            Request::get("/")
                .header("X-User-Id", format!("u{user}"))
                .header("X-Canary-Force", if user % 50 == 0 { "b" } else { "" })
                .source_addr("10.0.0.1:1")
        };
        let (s, t) = (send(&faithful, request()), send(&typed, request()));
        assert_eq!(s.cohort(), t.cohort(), "user {user}");
        assert_eq!(s.debug(), t.debug(), "user {user}");
        assert_eq!(s.set_cookies(), t.set_cookies(), "user {user}");
        *split.entry(s.cohort().to_owned()).or_insert(0) += 1;
    }
    let strict = "; Path=/; Max-Age=3600; Secure; SameSite=Strict";
    let v = send(&faithful, Request::get("/").header("X-User-Id", "u1"));
    assert_eq!(
        v.set_cookie("canary"),
        Some(&*format!("canary={}{strict}", v.cohort()))
    );
    // All three variants get visitors (62.5/25/12.5 % of 400).
    assert_eq!(split.len(), 3, "{split:?}");
}

// ---------------------------------------------------------------------------
// Instances started alike (Traefik's fake random and clock).

/// A backend that holds every request until `n` are inside at once, so
/// `n` requests are in flight on `n` different instances.
struct Rendezvous {
    barrier: Barrier,
}

impl Backend for Rendezvous {
    fn serve(&self, request: &Request) -> Result<Response, BackendError> {
        self.barrier.wait();
        Ok(Response::ok(EchoBackend::describe(request)))
    }
}

/// `INSTANCES` instances seeded alike (same fake random bytes, same fake
/// monotonic clock) serve `ROUNDS` rounds of identical new visitors (same
/// client address and port, no cookies), each round held together so all
/// instances serve their k-th visitor at once. Returns, per visitor, the
/// instance's k, the visitor id handed out (if any) and whether it got v2.
fn new_visitors_on_instances_started_alike(config: Value) -> Vec<(u64, Option<String>, bool)> {
    let guest = cohort_with(
        config,
        HostOptions::traefik().max_instances(ALIKE_INSTANCES),
    );
    let backend = Arc::new(Rendezvous {
        barrier: Barrier::new(ALIKE_INSTANCES),
    });
    let threads: Vec<_> = (0..ALIKE_INSTANCES)
        .map(|_| {
            let (guest, backend) = (guest.clone(), Arc::clone(&backend));
            std::thread::spawn(move || {
                (0..ALIKE_ROUNDS)
                    .map(|_| {
                        let request = Request::get("/").source_addr("192.0.2.7:50000");
                        let ex = guest.handle(request, &*backend).expect("served");
                        assert!(ex.error.is_none(), "{:?}", ex.error);
                        let v = Visit { ex };
                        let id = v.new_visitor_id().map(str::to_owned);
                        (v.ex.instance.served_before, id, v.cohort() == "v2")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let served: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(guest.instances_created(), ALIKE_INSTANCES as u64);
    served
}

const ALIKE_INSTANCES: usize = 8;
const ALIKE_ROUNDS: usize = 250;

/// Cohorts across instances: the split and the pairwise agreement of the
/// instances' k-th visitors.
fn check_independent_cohorts(served: &[(u64, Option<String>, bool)]) {
    let mut by_round: BTreeMap<u64, Vec<bool>> = BTreeMap::new();
    for (k, _, canary) in served {
        by_round.entry(*k).or_default().push(*canary);
    }
    assert_eq!(by_round.len(), ALIKE_ROUNDS);
    assert!(
        by_round
            .values()
            .all(|round| round.len() == ALIKE_INSTANCES)
    );
    // Correlation: how often two instances' k-th visitors share a cohort.
    // Independent 50/50 cohorts agree half the time: the mean over 250
    // rounds of 28 pairs each has sd ≈ 0.006, so 0.5 ± 0.05 is over 8 sd.
    // Instances copying each other would agree every time (1.0).
    let pairs = ALIKE_INSTANCES * (ALIKE_INSTANCES - 1) / 2;
    let agreement: f64 = by_round
        .values()
        .map(|round| {
            let a = round.iter().filter(|c| **c).count();
            let b = ALIKE_INSTANCES - a;
            (a * a.saturating_sub(1) / 2 + b * b.saturating_sub(1) / 2) as f64 / pairs as f64
        })
        .sum::<f64>()
        / ALIKE_ROUNDS as f64;
    // The split itself: 2,000 visitors at 50 %: sd ≈ 22.4, ± 120 is 5.4 sd.
    let canaries = served.iter().filter(|(.., c)| *c).count();
    println!(
        "{} visitors on {ALIKE_INSTANCES} instances: {canaries} on v2, pairwise agreement {agreement:.3}",
        served.len()
    );
    assert!((0.45..=0.55).contains(&agreement), "{agreement}");
    assert!((880..=1120).contains(&canaries), "{canaries}");
}

#[test]
fn instances_started_alike_draw_independent_cohorts() {
    let served = new_visitors_on_instances_started_alike(
        json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 50}]}),
    );
    assert!(
        served.iter().all(|(_, id, _)| id.is_none()),
        "keep keeps no id"
    );
    check_independent_cohorts(&served);
}

#[test]
fn instances_started_alike_hand_out_distinct_ids_and_independent_cohorts() {
    let served = new_visitors_on_instances_started_alike(with_ids(
        json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 50}]}),
    ));
    // No two visitors share an id: not across instances, not within one.
    let ids: HashSet<&str> = served
        .iter()
        .map(|(_, id, _)| id.as_deref().expect("a new visitor id"))
        .collect();
    assert_eq!(ids.len(), ALIKE_INSTANCES * ALIKE_ROUNDS);
    check_independent_cohorts(&served);
}

// ---------------------------------------------------------------------------
// Cost: memory and fuel.

#[test]
fn memory_stays_flat_over_10000_requests() {
    let guest = cohort(json!({
        "keys": ["cookie:session"],
        "variants": [{"name": "v1"}, {"name": "v2", "weight": 10}],
    }));
    // A mix: new visitors, returning ones, keyed ones and a large cookie.
    let big = format!("big={}", "x".repeat(6000));
    let request = |i: usize| -> Request {
        let cookie = match i % 4 {
            0 => String::new(),
            1 => "canary=v2; a=b".to_owned(),
            2 => format!("session=s{i}"),
            _ => format!("canary=v9; {big}"),
        };
        let r = Request::get(format!("/item/{i}")).source_addr(format!("10.0.0.1:{}", i % 60000));
        if cookie.is_empty() {
            r
        } else {
            r.header("Cookie", cookie)
        }
    };
    let mut memory = Vec::new();
    let mut instances = HashSet::new();
    for i in 1..=10_000 {
        let v = send(&guest, request(i));
        instances.insert(v.ex.instance.id);
        if i == 1_000 || i == 10_000 {
            memory.push(v.ex.memory_bytes);
        }
    }
    assert_eq!(instances.len(), 1, "one instance served them all");
    println!(
        "memory after 1,000 requests: {} B, after 10,000: {} B",
        memory[0], memory[1]
    );
    // Wasm memory never shrinks: any leak would show as growth.
    assert_eq!(memory[0], memory[1]);
}

#[test]
fn fuel_per_request_is_reported() {
    let guest = cohort(json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 10}]}));
    let shapes: Vec<(&str, Request)> = vec![
        ("new visitor", Request::get("/")),
        (
            "returning visitor",
            Request::get("/").header(
                "Cookie",
                "canary=v1; cohort_id=0123456789abcdef0123456789abcdef",
            ),
        ),
        (
            "unknown cookie value",
            Request::get("/").header("Cookie", "canary=v9"),
        ),
        (
            "4 KB of other cookies",
            Request::get("/").header("Cookie", format!("canary=v1; pad={}", "p".repeat(4096))),
        ),
    ];
    println!("start-up: {} fuel", guest.start_fuel());
    for (name, request) in shapes {
        let v = send(&guest, request);
        assert!(v.ex.fuel > 0);
        println!("{name}: {} fuel, host calls {}", v.ex.fuel, v.ex.host_calls);
    }
    assert!(guest.start_fuel() > 0);
}
