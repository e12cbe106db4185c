//! The two patterns that make a new visitor's first request land on its
//! cohort, in a real Traefik, with the recipes users copy:
//!
//! - multi-layer routing (`recipes/file/multi-layer.yml`): a parent router
//!   runs Cohort, children match the cohort header (or the exact cookie);
//! - a weighted service with a sticky cookie, Flagger's shape
//!   (`recipes/file/weighted-sticky.yml`): Cohort writes the weighted
//!   service's sticky cookie, so Traefik's WRR never chooses.
//!
//! Every user's cohort is also predicted natively from the recipe's own
//! Cohort configuration (`bucket_of(seed, key)`), so each is checked
//! exactly, not only in aggregate. Anonymous visitors draw once (the
//! recipes' `stickiness: keep` keeps no visitor id): they are checked for
//! landing on the cohort they were given, and in aggregate.

use anyhow::{Context, Result, ensure};

use crate::support::crowd::{Step, changes, in_parallel, step, visitor};
use crate::support::recipes::{
    Backends, POD_STICKY, WEIGHTED_STICKY, assert_binomial, canary, cohort_config, predicted,
    tally, weighted_for_this_traefik, wrr,
};
use crate::support::traefik::{Traefik, skip_without_multi_layer, weighted_sticky_hash};
use crate::support::{sticky_value, weighted_sticky_value};

/// What one visitor saw over `requests` requests.
struct Trace {
    /// A user id sent as `X-User-Id`, or `None` for an anonymous visitor.
    user: Option<String>,
    /// A generated visitor id Cohort set, if the configuration keeps them.
    visitor_id: Option<String>,
    steps: Vec<Step>,
}

impl Trace {
    /// The cohort Cohort assigned on the first request.
    fn assigned(&self) -> Result<&str> {
        self.steps[0]
            .set("canary")
            .with_context(|| format!("no canary cookie for {:?}", self.user))
    }

    /// The stable key Cohort bucketed on, if any: a one-off draw has none.
    fn key(&self) -> Option<&str> {
        self.user.as_deref().or(self.visitor_id.as_deref())
    }
}

fn follow(base: &str, agent: &ureq::Agent, user: Option<String>, requests: usize) -> Result<Trace> {
    let mut v = visitor(base, agent);
    let mut steps = Vec::with_capacity(requests);
    for _ in 0..requests {
        let headers: Vec<(&str, &str)> = user.iter().map(|u| ("X-User-Id", u.as_str())).collect();
        steps.push(step(&mut v, "/", &headers)?);
    }
    Ok(Trace {
        user,
        visitor_id: v.cookie("cohort_id").map(str::to_owned),
        steps,
    })
}

/// The checks every visitor of a first-request-right pattern passes: the
/// first request already reaches the assigned cohort, which is the
/// predicted one; later requests stay on that version and on one pod; no
/// cookie is re-sent.
fn assert_first_request_right(trace: &Trace, config: &::cohort::Config) -> Result<()> {
    let cohort = trace.assigned()?;
    if let Some(key) = trace.key() {
        assert_eq!(cohort, predicted(config, key), "{:?}", trace.user);
    }
    let first = &trace.steps[0];
    assert_eq!(first.version, cohort, "first request of {:?}", trace.user);
    assert_eq!(first.x_canary, [cohort], "cohort header at the backend");
    assert!(first.backend_saw_only("canary", cohort), "{:?}", first);
    assert!(first.set(POD_STICKY).is_some(), "no pod sticky cookie");
    for later in &trace.steps[1..] {
        assert_eq!(later.version, cohort, "{:?} changed version", trace.user);
        assert_eq!(later.pod, first.pod, "{:?} changed pod", trace.user);
        assert_eq!(later.set("canary"), None, "cohort cookie re-sent");
        assert_eq!(later.set("cohort_id"), None, "visitor id re-sent");
        assert_eq!(later.set(POD_STICKY), None, "pod sticky cookie re-sent");
    }
    Ok(())
}

fn users(n: usize) -> impl Iterator<Item = Option<String>> {
    (1..=n).map(|i| Some(format!("user-{i}")))
}

// --- Multi-layer routing ---------------------------------------------------

#[test]
pub fn traefik_multilayer_first_request_lands_on_the_assigned_version() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    // The recipe's header rule, and the exact cookie rule its comment offers.
    let header_rule = "\"Header(`X-Canary`, `v2`)\"";
    let cookie_rule = "\"HeaderRegexp(`Cookie`, `(^|;\\\\s*)canary=v2(;|$)`)\"";
    for rule in [header_rule, cookie_rule] {
        let config = backends.recipe(
            "file/multi-layer.yml",
            &[canary("30"), (header_rule, rule.to_owned())],
        )?;
        let cohort = cohort_config(&config, "cohort")?;
        let traefik = Traefik::start(&config)?;
        let url = traefik.url();

        // 60 users with an id, 60 anonymous visitors, 5 requests each.
        let who: Vec<Option<String>> = users(60).chain((0..60).map(|_| None)).collect();
        let traces = in_parallel(who.len(), 4, |i, agent| {
            follow(&url, agent, who[i].clone(), 5)
        })?;
        for trace in &traces {
            assert_first_request_right(trace, &cohort)?;
        }
        let cohorts = tally(traces.iter().map(|t| t.assigned().unwrap_or("?")));
        let pods = tally(traces.iter().map(|t| t.steps[0].pod.as_str()));
        eprintln!("multi-layer, child rule {rule}: cohorts {cohorts:?}, pods {pods:?}");
        // Both versions and all four pods are in use.
        assert_eq!(pods.len(), 4, "{pods:?}");
        assert!(traefik.errors().is_empty(), "{:#?}", traefik.errors());
    }
    Ok(())
}

#[test]
pub fn traefik_multilayer_version_switch_gives_a_pod_of_the_new_version() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    // A tester forcing the canary by hand (`canary=v2`) keeps v1's pod
    // cookie in the jar: the v2 service does not know that pod and pins a
    // v2 pod instead, and from then on that one.
    let backends = Backends::start()?;
    let config = backends.recipe("file/multi-layer.yml", &[])?;
    let cohort = cohort_config(&config, "cohort")?;
    let traefik = Traefik::start(&config)?;
    let agent = crate::support::client::agent();
    let mut tester = visitor(&traefik.url(), &agent);
    // A user id whose cohort is v1.
    let id = (1..)
        .map(|i| format!("tester-{i}"))
        .find(|id| predicted(&cohort, id) == "v1")
        .context("no v1 tester")?;
    let id = id.as_str();
    let on_v1 = step(&mut tester, "/", &[("X-User-Id", id)])?;
    ensure!(on_v1.version == "v1", "tester started on {}", on_v1.version);
    let v1_pod_cookie = tester
        .cookie(POD_STICKY)
        .context("no pod cookie")?
        .to_owned();

    tester.set_cookie("canary", "v2");
    let on_v2 = step(&mut tester, "/", &[("X-User-Id", id)])?;
    assert_eq!(on_v2.version, "v2");
    assert_eq!(on_v2.set("canary"), None, "a valid cohort cookie is kept");
    let v2_pod_cookie = on_v2.set(POD_STICKY).context("no new pod cookie")?;
    assert_ne!(v2_pod_cookie, v1_pod_cookie);
    let pod = backends
        .v2
        .pod(&on_v2.pod)
        .context("answered by a v2 pod")?;
    assert_eq!(v2_pod_cookie, sticky_value(&pod.url()));
    for _ in 0..3 {
        let again = step(&mut tester, "/", &[("X-User-Id", id)])?;
        assert_eq!(
            (again.version.as_str(), again.pod.as_str()),
            ("v2", on_v2.pod.as_str())
        );
    }
    Ok(())
}

// --- Weighted service with a sticky cookie ---------------------------------

#[test]
pub fn traefik_weighted_sticky_follows_cohort_not_the_wrr_weights() -> Result<()> {
    // WRR says 50/50; Cohort says 20 % canary. Cohort wins for every
    // visitor, from the first request, and Traefik never sends a weighted
    // sticky cookie of its own.
    let backends = Backends::start()?;
    let mut edits = vec![canary("20")];
    edits.extend(wrr(50, 50));
    edits.extend(weighted_for_this_traefik());
    let config = backends.recipe("file/weighted-sticky.yml", &edits)?;
    let cohort = cohort_config(&config, "cohort")?;
    let traefik = Traefik::start(&config)?;
    let url = traefik.url();

    let n = 400;
    let traces = in_parallel(n, 4, |_, agent| follow(&url, agent, None, 3))?;
    for trace in &traces {
        assert_first_request_right(trace, &cohort)?;
        let cohort = trace.assigned()?;
        let child = format!("my-app-{cohort}-prod");
        for s in &trace.steps {
            assert_eq!(s.set(WEIGHTED_STICKY), None, "Traefik chose a child: {s:?}");
            // Cohort wrote the child's sticky value into the request.
            assert!(
                s.backend_saw_only(WEIGHTED_STICKY, &weighted_sticky_value(&child)),
                "{s:?}"
            );
        }
    }
    let v2 = traces
        .iter()
        .filter(|t| t.assigned().is_ok_and(|c| c == "v2"))
        .count();
    // 20 % of 400: sd = sqrt(400 * 0.2 * 0.8) = 8; 4.5 sd = ±36 visitors
    // (11-29 %), far from the 50 % WRR would give.
    let share = assert_binomial("canary share", v2, n, 0.20, 4.5)?;
    let flips: usize = traces
        .iter()
        .map(|t| changes(t.steps.iter().map(|s| s.version.as_str())))
        .sum();
    eprintln!(
        "weighted (WRR 50/50, Cohort 20 %, hash {}): {v2} of {n} on v2 ({:.1} %), {flips} version changes, pods {:?}",
        weighted_sticky_hash(),
        100.0 * share,
        tally(traces.iter().map(|t| t.steps[0].pod.as_str()))
    );
    assert_eq!(flips, 0);
    assert!(traefik.errors().is_empty(), "{:#?}", traefik.errors());
    Ok(())
}

#[test]
pub fn traefik_weighted_sticky_without_cohort_is_plain_wrr() -> Result<()> {
    // The control for the test above: the same service without Cohort
    // splits by the WRR weights and Traefik sets its sticky cookie itself.
    let backends = Backends::start()?;
    let mut edits = vec![(
        "middlewares: [cohort]\n      service: my-app-split",
        "service: my-app-split".to_owned(),
    )];
    edits.extend(wrr(50, 50));
    edits.extend(weighted_for_this_traefik());
    let traefik = Traefik::start(&backends.recipe("file/weighted-sticky.yml", &edits)?)?;
    let url = traefik.url();
    let n = 100;
    let steps = in_parallel(n, 4, |_, agent| step(&mut visitor(&url, agent), "/", &[]))?;
    let v2 = steps.iter().filter(|s| s.version == "v2").count();
    eprintln!("weighted without Cohort (WRR 50/50): {v2} of {n} on v2");
    // Traefik's WRR alternates: close to half (binomial bound, generous).
    assert_binomial("WRR v2 share", v2, n, 0.5, 4.5)?;
    for s in &steps {
        let child = format!("my-app-{}-prod", s.version);
        assert_eq!(
            s.set(WEIGHTED_STICKY),
            Some(weighted_sticky_value(&child).as_str()),
            "Traefik {}'s own sticky value for {child}",
            traefik.version()
        );
        assert!(s.x_canary.is_empty());
    }
    Ok(())
}
