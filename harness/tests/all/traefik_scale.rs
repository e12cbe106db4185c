//! Distribution and stickiness at scale, and replicas, in a real Traefik with
//! the multi-layer recipe (`recipes/file/multi-layer.yml`).
//!
//! Statistics: a fresh anonymous visitor's cohort is a one-off draw (the
//! recipe's `stickiness: keep` keeps no visitor id; the draw hashes the
//! instance's boot state and a counter), so over n visitors the canary
//! count is Binomial(n, p). The
//! tests accept it within 4.5 standard deviations of n·p: a correct plugin
//! fails that about 7 times in a million runs, while a plugin off by a few
//! points fails it every time (at n = 2,000, p = 0.2: sd = 17.9 visitors,
//! the bound is 320–480, i.e. 16–24 %). Independently, every request of
//! every visitor is checked to reach the cohort its first response named.
//! The replica test keeps visitor ids, and predicts each cohort exactly
//! from `bucket_of(seed, id)`.
//!
//! Pods: Traefik's load balancer spreads new visitors over a version's two
//! pods; each version's split over its pods is held to the same binomial
//! bound around one half (a two-sided binomial test at about 7·10⁻⁶). The
//! round-robin makes it much closer than that in practice.

use std::collections::BTreeSet;

use anyhow::{Context, Result};

use crate::support::client::Visitor;
use crate::support::crowd::{Step, changes, in_parallel, step, visitor};
use crate::support::recipes::{
    Backends, POD_STICKY, assert_binomial, canary, cohort_config, predicted, tally, visitor_ids,
};
use crate::support::traefik::{Traefik, skip_without_multi_layer};

/// Fresh visitors in the distribution test, and requests each.
const VISITORS: usize = 2_000;
const REQUESTS: usize = 3;

#[test]
fn traefik_scale_2000_visitors_split_stick_and_spread_over_pods() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    let config = backends.recipe("file/multi-layer.yml", &[canary("20")])?;
    let traefik = Traefik::start(&config)?;
    let url = traefik.url();

    let traces: Vec<(Option<String>, Vec<Step>)> = in_parallel(VISITORS, 4, |_, agent| {
        let mut v = visitor(&url, agent);
        let steps = (0..REQUESTS)
            .map(|_| step(&mut v, "/", &[]))
            .collect::<Result<Vec<_>>>()?;
        Ok((v.cookie("cohort_id").map(str::to_owned), steps))
    })?;

    let mut version_flips = 0;
    let mut pod_flips = 0;
    let mut ids_kept = 0;
    let mut misrouted = 0;
    for (id, steps) in &traces {
        let assigned = steps[0].set("canary").context("no cohort cookie")?;
        if id.is_some() {
            ids_kept += 1; // `keep` keeps no visitor id to predict from
        }
        misrouted += steps.iter().filter(|s| s.version != assigned).count();
        version_flips += changes(steps.iter().map(|s| s.version.as_str()));
        pod_flips += changes(steps.iter().map(|s| s.pod.as_str()));
        assert!(steps[0].set(POD_STICKY).is_some());
        for s in &steps[1..] {
            assert!(s.set_cookies.is_empty(), "cookies re-sent: {s:?}");
        }
    }
    let v2 = traces.iter().filter(|(_, s)| s[0].version == "v2").count();
    let pods = tally(traces.iter().map(|(_, s)| s[0].pod.as_str()));
    eprintln!(
        "scale: {VISITORS} visitors x {REQUESTS} requests at 20 %: v2 {v2} ({:.2} %), \
         version flips {version_flips}, pod flips {pod_flips}, misrouted {misrouted}, \
         visitor ids kept {ids_kept}, pods {pods:?}",
        100.0 * v2 as f64 / VISITORS as f64,
    );
    assert_eq!(
        (version_flips, pod_flips, misrouted, ids_kept),
        (0, 0, 0, 0)
    );
    assert_binomial("canary share", v2, VISITORS, 0.20, 4.5)?;
    for version in ["v1", "v2"] {
        let on_version = traces
            .iter()
            .filter(|(_, s)| s[0].version == version)
            .count();
        let on_pod_0 = pods
            .get(&format!("canary-{version}-0"))
            .copied()
            .unwrap_or(0);
        assert_binomial(
            &format!("{version} visitors on pod 0"),
            on_pod_0,
            on_version,
            0.5,
            4.5,
        )?;
    }
    assert!(traefik.errors().is_empty(), "{:#?}", traefik.errors());
    Ok(())
}

/// `name=value` pairs of `from`'s jar copied into a new visitor of `base`:
/// the same browser talking to another replica.
fn same_browser(from: &Visitor, base: &str, agent: &ureq::Agent) -> Visitor {
    let mut to = visitor(base, agent);
    for name in ["canary", "cohort_id", POD_STICKY] {
        if let Some(value) = from.cookie(name) {
            to.set_cookie(name, value);
        }
    }
    to
}

#[test]
fn traefik_replicas_agree_on_every_cohort() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    // Two Traefik instances with the same config share nothing, yet give a
    // user id the same cohort (a hash of seed and id), accept each other's
    // cohort and visitor cookies, and even each other's pod cookies (a hash
    // of the server URL). Their generated visitor ids never collide,
    // although Traefik's guest random source is the same in every instance.
    let backends = Backends::start()?;
    let config = backends.recipe("file/multi-layer.yml", &[canary("20"), visitor_ids()])?;
    let cohort = cohort_config(&config, "cohort")?;
    assert_eq!(cohort.visitor_cookie.as_deref(), Some("cohort_id"));
    let a = Traefik::start(&config)?;
    let b = Traefik::start(&config)?;
    let (url_a, url_b) = (a.url(), b.url());

    let users = 300;
    let on_both = in_parallel(users, 4, |i, agent| {
        let id = format!("user-{i}");
        let headers = [("X-User-Id", id.as_str())];
        let on_a = step(&mut visitor(&url_a, agent), "/", &headers)?;
        let on_b = step(&mut visitor(&url_b, agent), "/", &headers)?;
        Ok((predicted(&cohort, &id), on_a, on_b))
    })?;
    let mut disagreements = 0;
    for (expected, on_a, on_b) in &on_both {
        let (ca, cb) = (on_a.set("canary"), on_b.set("canary"));
        if ca != Some(expected.as_str()) || cb != Some(expected.as_str()) {
            disagreements += 1;
        }
        assert_eq!((&on_a.version, &on_b.version), (expected, expected));
    }
    let v2 = on_both.iter().filter(|(e, _, _)| e == "v2").count();
    eprintln!(
        "replicas: {users} user ids, {v2} on v2, {disagreements} disagreements between A, B and the prediction"
    );
    assert_eq!(disagreements, 0);

    // Anonymous browsers signed up on A continue on B (and back).
    let anonymous = 100;
    let moved = in_parallel(anonymous, 4, |_, agent| {
        let mut on_a = visitor(&url_a, agent);
        let first = step(&mut on_a, "/", &[])?;
        let mut on_b = same_browser(&on_a, &url_b, agent);
        let next = step(&mut on_b, "/", &[])?;
        let fresh_b = step(&mut visitor(&url_b, agent), "/", &[])?;
        Ok((first, next, fresh_b))
    })?;
    let mut ids = BTreeSet::new();
    for (first, next, fresh_b) in &moved {
        let cohort = first.set("canary").context("no cohort on A")?;
        assert_eq!(next.version, cohort, "B changed the cohort");
        assert_eq!(next.pod, first.pod, "B changed the pod");
        assert!(next.set_cookies.is_empty(), "B re-set cookies: {next:?}");
        ids.insert(first.set("cohort_id").context("no id from A")?.to_owned());
        ids.insert(fresh_b.set("cohort_id").context("no id from B")?.to_owned());
    }
    eprintln!(
        "replicas: {anonymous} anonymous visitors moved A -> B without a change; {} distinct ids from {} sign-ups on A and B",
        ids.len(),
        2 * anonymous
    );
    assert_eq!(
        ids.len(),
        2 * anonymous,
        "visitor ids collide across replicas"
    );
    assert!(a.errors().is_empty() && b.errors().is_empty());
    Ok(())
}
