//! The seed scenario "Canary Routing with Sticky Sessions" in a real Traefik:
//! first its setup exactly as its users wrote it, checked against its own
//! Verify section; then the same routers with Cohort assigning the cohort.
//!
//! Configs: `testdata/traefik/seed-canary-sticky.yml` (the seed as written)
//! and the recipes `recipes/file/flat-routers.yml` and
//! `recipes/file/multi-layer.yml` (with Cohort), at 50 % canary. Backends:
//! two whoami pods per version (`Name: canary-v1|canary-v2`).

use anyhow::{Context, Result, ensure};
use cohort_harness::whoami::Reply;

use crate::support::client::{Response, Visitor};
use crate::support::recipes::{Backends, HOST, POD_STICKY as STICKY, canary};
use crate::support::traefik::{Traefik, skip_without_multi_layer, weighted_sticky_hash};
use crate::support::{sticky_value, testdata};

/// The seed's routers as its users wrote them.
fn seed_as_written(backends: &Backends) -> Result<String> {
    backends.render(&testdata("traefik/seed-canary-sticky.yml")?)
}

/// The seed's routers with Cohort on both (`recipes/file/flat-routers.yml`).
fn seed_with_cohort(backends: &Backends) -> Result<String> {
    backends.recipe("file/flat-routers.yml", &[canary("50")])
}

/// The seed's versions behind multi-layer routing
/// (`recipes/file/multi-layer.yml`).
fn seed_with_cohort_multilayer(backends: &Backends) -> Result<String> {
    backends.recipe("file/multi-layer.yml", &[canary("50")])
}

fn visitor(traefik: &Traefik) -> Visitor {
    Visitor::new(&traefik.url()).with_host(HOST)
}

/// `GET /`, which must be answered by a whoami pod.
fn get(visitor: &mut Visitor) -> Result<(Response, Reply)> {
    let response = visitor.get("/")?;
    ensure!(
        response.status == 200,
        "status {}: {}",
        response.status,
        response.body
    );
    let reply = response.whoami()?;
    Ok((response, reply))
}

/// The response carries the seed's sticky cookie for the pod that answered,
/// with the seed's attributes.
fn assert_sticky_cookie_for(backends: &Backends, response: &Response, reply: &Reply) -> Result<()> {
    let cookie = response
        .set_cookie(STICKY)?
        .with_context(|| format!("no {STICKY} Set-Cookie in {:?}", response.headers))?;
    // From 3.3.4 on, the value is SHA-256 of the server URL (checked); an
    // older Traefik hashes a server name of its own (FNV), not checked here:
    // that the cookie pins one pod is (traefik_seed_sticky_cookie_pins_one_pod).
    if weighted_sticky_hash() == "sha256" {
        assert_eq!(cookie.value, sticky_value(&backends.url_of(reply)?));
    }
    assert_eq!(cookie.max_age, Some(3600), "{}", cookie.raw);
    assert_eq!(cookie.path.as_deref(), Some("/"), "{}", cookie.raw);
    assert!(cookie.secure, "not Secure: {}", cookie.raw);
    assert!(cookie.http_only, "not HttpOnly: {}", cookie.raw);
    assert_eq!(cookie.same_site.as_deref(), Some("None"), "{}", cookie.raw);
    Ok(())
}

// --- The seed as written: its Verify section -------------------------------

#[test]
pub fn traefik_seed_default_traffic_reaches_v1_with_a_sticky_cookie() -> Result<()> {
    let backends = Backends::start()?;
    let traefik = Traefik::start(&seed_as_written(&backends)?)?;

    let (response, reply) = get(&mut visitor(&traefik))?;
    assert_eq!(reply.name, "canary-v1");
    assert_sticky_cookie_for(&backends, &response, &reply)?;
    assert_eq!(reply.header("Host"), Some(HOST));
    Ok(())
}

#[test]
pub fn traefik_seed_canary_cookie_reaches_v2_with_its_own_sticky_cookie() -> Result<()> {
    let backends = Backends::start()?;
    let traefik = Traefik::start(&seed_as_written(&backends)?)?;

    let mut tester = visitor(&traefik);
    tester.set_cookie("canary", "v2");
    let (response, reply) = get(&mut tester)?;
    assert_eq!(reply.name, "canary-v2");
    assert_sticky_cookie_for(&backends, &response, &reply)?;
    Ok(())
}

#[test]
pub fn traefik_seed_sticky_cookie_pins_one_pod() -> Result<()> {
    let backends = Backends::start()?;
    let traefik = Traefik::start(&seed_as_written(&backends)?)?;

    for canary in [None, Some("v2")] {
        // Without the sticky cookie, visitors are spread over both pods…
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let mut fresh = visitor(&traefik);
            if let Some(v) = canary {
                fresh.set_cookie("canary", v);
            }
            seen.insert(get(&mut fresh)?.1.hostname);
        }
        assert_eq!(seen.len(), 2, "new visitors all went to {seen:?}");

        // …and with it, one visitor sees one pod, and no new sticky cookie.
        let mut user = visitor(&traefik);
        if let Some(v) = canary {
            user.set_cookie("canary", v);
        }
        let (_, first) = get(&mut user)?;
        assert!(user.cookie(STICKY).is_some());
        for _ in 0..10 {
            let (response, reply) = get(&mut user)?;
            assert_eq!(reply.hostname, first.hostname);
            assert_eq!(response.set_cookie(STICKY)?, None);
        }
    }
    Ok(())
}

#[test]
pub fn traefik_seed_switching_version_gives_a_new_sticky_cookie() -> Result<()> {
    let backends = Backends::start()?;
    let traefik = Traefik::start(&seed_as_written(&backends)?)?;

    let mut tester = visitor(&traefik);
    let (_, on_v1) = get(&mut tester)?;
    assert_eq!(on_v1.name, "canary-v1");
    let v1_sticky = tester
        .cookie(STICKY)
        .context("no sticky cookie")?
        .to_owned();

    tester.set_cookie("canary", "v2");
    let (response, on_v2) = get(&mut tester)?;
    assert_eq!(on_v2.name, "canary-v2");
    assert_sticky_cookie_for(&backends, &response, &on_v2)?;
    let v2_sticky = tester
        .cookie(STICKY)
        .context("no sticky cookie")?
        .to_owned();
    assert_ne!(v1_sticky, v2_sticky);

    // The v2 pin holds from then on.
    let (response, again) = get(&mut tester)?;
    assert_eq!(again.hostname, on_v2.hostname);
    assert_eq!(response.set_cookie(STICKY)?, None);
    Ok(())
}

// --- The same routers with Cohort ------------------------------------------

/// A visitor identified by `X-User-Id`, or anonymous.
struct User {
    visitor: Visitor,
    id: Option<String>,
}

impl User {
    fn get(&mut self) -> Result<(Response, Reply)> {
        let response = match &self.id {
            Some(id) => self.visitor.get_with("/", &[("X-User-Id", id)])?,
            None => self.visitor.get("/")?,
        };
        ensure!(
            response.status == 200,
            "status {}: {}",
            response.status,
            response.body
        );
        let reply = response.whoami()?;
        Ok((response, reply))
    }
}

/// Signs `users` up and follows each for a few requests: the first answer
/// assigns a cohort by cookie; every later request reaches that cohort's
/// version, on one pod, without a new cohort cookie. Returns the cohorts.
fn follow_new_visitors(
    traefik: &Traefik,
    users: impl IntoIterator<Item = Option<String>>,
    first_request_routed: bool,
) -> Result<Vec<String>> {
    let mut cohorts = Vec::new();
    for id in users {
        let mut user = User {
            visitor: visitor(traefik),
            id,
        };
        let (response, first) = user.get()?;
        let assigned = response.set_cookie("canary")?.with_context(|| {
            format!("no canary cookie for {:?}: {:?}", user.id, response.headers)
        })?;
        let cohort = assigned.value.clone();
        ensure!(
            cohort == "v1" || cohort == "v2",
            "cohort {cohort:?} for {:?}",
            user.id
        );
        // Cohort hands the cohort to the backend in the same request.
        assert_eq!(first.header("X-Canary"), Some(cohort.as_str()));
        assert!(
            first
                .headers("Cookie")
                .any(|c| c.split("; ").any(|pair| pair == format!("canary={cohort}"))),
            "backend did not see canary={cohort}: {:?}",
            first.headers
        );
        if first_request_routed {
            assert_eq!(first.name, format!("canary-{cohort}"), "first request");
        } else {
            // Flat routers: the router was chosen before Cohort ran.
            assert_eq!(first.name, "canary-v1", "first request");
        }

        let (response, second) = user.get()?;
        assert_eq!(
            second.name,
            format!("canary-{cohort}"),
            "user {:?}",
            user.id
        );
        assert_eq!(
            response.set_cookie("canary")?,
            None,
            "cohort cookie re-sent"
        );
        for _ in 0..3 {
            let (response, reply) = user.get()?;
            assert_eq!(reply.name, second.name);
            assert_eq!(
                reply.hostname, second.hostname,
                "user {:?} moved pod",
                user.id
            );
            assert_eq!(response.set_cookie("canary")?, None);
            assert_eq!(response.set_cookie(STICKY)?, None);
        }
        assert_eq!(user.visitor.cookie("canary"), Some(cohort.as_str()));
        cohorts.push(cohort);
    }
    Ok(cohorts)
}

fn user_ids(n: usize) -> impl Iterator<Item = Option<String>> {
    (1..=n).map(|i| Some(format!("user-{i}")))
}

#[test]
pub fn traefik_seed_with_cohort_assigns_new_visitors_and_keeps_them() -> Result<()> {
    let backends = Backends::start()?;
    let traefik = Traefik::start(&seed_with_cohort(&backends)?)?;

    let cohorts = follow_new_visitors(&traefik, user_ids(16), false)?;
    // A 50/50 split of 16 fixed ids puts someone in each cohort (the
    // assignment is a pure function of seed and id: this never flakes).
    assert!(cohorts.iter().any(|c| c == "v1"), "{cohorts:?}");
    assert!(cohorts.iter().any(|c| c == "v2"), "{cohorts:?}");

    // Anonymous visitors are assigned too (by a generated visitor id).
    follow_new_visitors(&traefik, [None, None], false)?;
    assert!(traefik.errors().is_empty(), "{:#?}", traefik.errors());
    Ok(())
}

#[test]
pub fn traefik_seed_with_cohort_same_user_same_cohort_everywhere() -> Result<()> {
    // Two Traefik replicas with the same config put a user in the same
    // cohort without sharing anything: the cohort is hash(seed, user).
    let backends = Backends::start()?;
    let config = seed_with_cohort(&backends)?;
    let a = Traefik::start(&config)?;
    let b = Traefik::start(&config)?;
    let on_a = follow_new_visitors(&a, user_ids(8), false)?;
    let on_b = follow_new_visitors(&b, user_ids(8), false)?;
    assert_eq!(on_a, on_b);
    Ok(())
}

#[test]
pub fn traefik_seed_with_cohort_multilayer_routes_the_first_request() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    let traefik = Traefik::start(&seed_with_cohort_multilayer(&backends)?)?;

    let cohorts = follow_new_visitors(&traefik, user_ids(16), true)?;
    assert!(cohorts.iter().any(|c| c == "v1"), "{cohorts:?}");
    assert!(cohorts.iter().any(|c| c == "v2"), "{cohorts:?}");
    follow_new_visitors(&traefik, [None, None], true)?;

    // The same user ids get the same cohorts as with flat routers: the
    // cohort depends on the seed and the id, not on the routing.
    let flat = Traefik::start(&seed_with_cohort(&backends)?)?;
    assert_eq!(follow_new_visitors(&flat, user_ids(16), false)?, cohorts);
    assert!(traefik.errors().is_empty(), "{:#?}", traefik.errors());
    Ok(())
}

#[test]
pub fn traefik_seed_adding_cohort_to_a_running_traefik() -> Result<()> {
    // The seed runs as written; then its config is replaced by the one with
    // Cohort, on the same Traefik (the file provider reloads it).
    let backends = Backends::start()?;
    let mut traefik = Traefik::start(&seed_as_written(&backends)?)?;

    let mut regular = User {
        visitor: visitor(&traefik),
        id: Some("user-1".to_owned()),
    };
    let (response, before) = regular.get()?;
    assert_eq!(before.name, "canary-v1");
    assert_eq!(response.set_cookie("canary")?, None, "no Cohort yet");
    let mut tester = visitor(&traefik);
    tester.set_cookie("canary", "v2");
    assert_eq!(get(&mut tester)?.1.name, "canary-v2");

    traefik.update_dynamic(&seed_with_cohort(&backends)?)?;

    // The regular visitor now gets a cohort; the tester's hand-set
    // `canary=v2` is a valid cohort cookie and is kept.
    let (response, _) = regular.get()?;
    let cohort = response
        .set_cookie("canary")?
        .context("no canary cookie after the reload")?
        .value;
    let (_, next) = regular.get()?;
    assert_eq!(next.name, format!("canary-{cohort}"));
    for _ in 0..3 {
        let (response, reply) = get(&mut tester)?;
        assert_eq!(reply.name, "canary-v2");
        assert_eq!(response.set_cookie("canary")?, None);
    }
    Ok(())
}
