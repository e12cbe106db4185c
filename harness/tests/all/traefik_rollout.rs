//! Ramp, drain and rollback live: the dynamic config file is rewritten while
//! Traefik runs (the file provider reloads it; `update_dynamic` returns once
//! the new config answers) and the same browsers keep visiting.
//!
//! The multi-layer recipe (`recipes/file/multi-layer.yml`) is used, so a
//! change takes effect on the very next request; the flat-router recipe
//! needs one request more, shown by the last test. Visitors are anonymous:
//! under `reevaluate` their key is the visitor id Cohort keeps, and every
//! cohort is also predicted natively from the config Traefik runs; under
//! `keep` they draw once and the cohort cookie alone keeps them.
//!
//! Under `reevaluate` each user's cohort before and after a 10 → 30 % ramp
//! is predicted from their visitor id by the formula, written out
//! independently of the plugin (`support::formula`, checked against
//! Python's answers): every move is checked one by one. The share moved,
//! (30 − 10) / (100 − 10) = 2/9 of the stable users (monotonic rendezvous
//! hashing), is then a check on the formula: Binomial(stable users, 2/9)
//! within 4.5 sd.

use anyhow::Result;

use crate::support::crowd::{Browser, Step, assert_unchanged, sign_up, sign_up_split, visit_all};
use crate::support::recipes::{
    Backends, assert_binomial, canary, cohort_config, predicted, state, stickiness,
};
use crate::support::traefik::{Traefik, skip_without_multi_layer};

fn count(steps: &[Step], version: &str) -> usize {
    steps.iter().filter(|s| s.version == version).count()
}

#[test]
pub fn traefik_rollout_ramp_with_keep_moves_nobody() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    let mut traefik = Traefik::start(&backends.recipe("file/multi-layer.yml", &[])?)?;
    let (browsers, firsts) = sign_up_split(&traefik.url(), 400)?;

    let ramped = backends.recipe("file/multi-layer.yml", &[canary("30")])?;
    traefik.update_dynamic(&ramped)?;
    let after = visit_all(&browsers)?;
    let mut moved = 0;
    for (before, now) in firsts.iter().zip(&after) {
        if now.version != before.version {
            moved += 1;
        }
        assert_eq!(now.set("canary"), None, "cookie rewritten: {now:?}");
    }

    // New visitors follow the new weight, each served by the cohort it was
    // given on its first request, and no visitor id is kept under `keep`.
    let newcomers = sign_up(&traefik.url(), 400)?;
    for (b, s) in &newcomers {
        assert_eq!(s.set("canary"), Some(s.version.as_str()), "{s:?}");
        assert_eq!(b.cookie("cohort_id"), None);
    }
    let new_v2 = newcomers.iter().filter(|(_, s)| s.version == "v2").count();
    eprintln!(
        "ramp 10 -> 30 % with keep: {} of 400 held v2 before, {moved} moved; newcomers {new_v2} of 400 on v2",
        count(&firsts, "v2")
    );
    assert_eq!(moved, 0);
    assert_binomial("newcomers on v2", new_v2, 400, 0.30, 4.5)?;
    Ok(())
}

#[test]
pub fn traefik_rollout_ramp_with_reevaluate_moves_only_stable_users() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    let at_10 = backends.recipe("file/multi-layer.yml", &[stickiness("reevaluate")])?;
    let mut traefik = Traefik::start(&at_10)?;
    let n = 600;
    let (browsers, firsts) = sign_up_split(&traefik.url(), n)?;

    let at_30 = backends.recipe(
        "file/multi-layer.yml",
        &[stickiness("reevaluate"), canary("30")],
    )?;
    let (cohort_10, cohort) = (
        cohort_config(&at_10, "cohort")?,
        cohort_config(&at_30, "cohort")?,
    );
    traefik.update_dynamic(&at_30)?;
    let after = visit_all(&browsers)?;

    // Each user's cohort before and after, predicted from their visitor id
    // by the formula (support::formula, pinned by Python's answers): exactly
    // who moves is known, so a plugin that re-drew stable users, or moved
    // any but these, fails however the count comes out.
    let (mut stable, mut moved_up, mut moved_down, mut mispredicted) = (0, 0, 0, 0);
    let mut predicted_moves = 0;
    for ((browser, before), now) in browsers.iter().zip(&firsts).zip(&after) {
        let id = browser.id()?;
        let (was, will) = (predicted(&cohort_10, &id), predicted(&cohort, &id));
        if was != before.version || will != now.version {
            mispredicted += 1;
        }
        predicted_moves += usize::from(was != will);
        match (before.version.as_str(), now.version.as_str()) {
            ("v1", "v2") => {
                moved_up += 1;
                // Moved on this very request, with its cookie rewritten and
                // a pod of the new version.
                assert_eq!(now.set("canary"), Some("v2"));
                assert!(now.set("my-sticky-cookie").is_some());
            }
            ("v2", "v1") => moved_down += 1,
            (was, _) => {
                if was == "v1" {
                    stable += 1;
                }
                assert_eq!(now.set("canary"), None, "{now:?}");
            }
        }
    }
    let stable_before = count(&firsts, "v1");
    eprintln!(
        "ramp 10 -> 30 % with reevaluate: {stable_before} stable and {} canary users before; \
         {moved_up} stable users moved to v2 ({:.1} %, expected 22.2 %), {moved_down} canary users moved back, \
         {mispredicted} mispredicted",
        n - stable_before,
        100.0 * moved_up as f64 / stable_before as f64
    );
    assert_eq!(stable + moved_up, stable_before);
    assert_eq!((moved_down, mispredicted), (0, 0));
    assert_eq!(moved_up, predicted_moves);
    assert_binomial(
        "stable users moved",
        moved_up,
        stable_before,
        2.0 / 9.0,
        4.5,
    )?;

    // And then they stay.
    let again = visit_all(&browsers)?;
    assert_unchanged(&after, &again);
    Ok(())
}

#[test]
pub fn traefik_rollout_drain_then_rollback() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    let mut traefik = Traefik::start(&backends.recipe("file/multi-layer.yml", &[canary("30")])?)?;
    let (browsers, firsts) = sign_up_split(&traefik.url(), 300)?;
    let holders = count(&firsts, "v2");

    // Drain: no new canary users; holders stay (no cookie rewritten).
    traefik.update_dynamic(
        &backends.recipe("file/multi-layer.yml", &[canary("30"), state("drained")])?,
    )?;
    let drained = visit_all(&browsers)?;
    for (before, now) in firsts.iter().zip(&drained) {
        assert_eq!((&now.version, &now.pod), (&before.version, &before.pod));
        assert_eq!(now.set("canary"), None);
    }
    let newcomers = sign_up(&traefik.url(), 200)?;
    let new_on_v2 = newcomers.iter().filter(|(_, s)| s.version == "v2").count();

    // Rollback: everyone on v1 from this request on; the canary holders'
    // cookie is rewritten (in the request for the routers, by Set-Cookie for
    // the browser), nobody else gets a cookie.
    traefik.update_dynamic(
        &backends.recipe("file/multi-layer.yml", &[canary("30"), state("disabled")])?,
    )?;
    let rolled = visit_all(&browsers)?;
    let mut rewritten = 0;
    for (before, now) in firsts.iter().zip(&rolled) {
        assert_eq!(now.version, "v1");
        assert_eq!(now.x_canary, ["v1"]);
        assert!(now.backend_saw_only("canary", "v1"), "{now:?}");
        if before.version == "v2" {
            assert_eq!(now.set("canary"), Some("v1"), "{now:?}");
            rewritten += 1;
        } else {
            assert_eq!(now.set("canary"), None);
            assert_eq!(now.pod, before.pod);
        }
    }
    let settled = visit_all(&browsers)?;
    assert_unchanged(&rolled, &settled);
    let late = sign_up(&traefik.url(), 100)?;
    let late_on_v2 = late.iter().filter(|(_, s)| s.version == "v2").count();
    eprintln!(
        "drain: {holders} of 300 canary holders stayed on v2, {new_on_v2} of 200 newcomers on v2; \
         rollback: {rewritten} canary cookies rewritten to v1, all 300 on v1, {late_on_v2} of 100 newcomers on v2"
    );
    assert_eq!((new_on_v2, late_on_v2), (0, 0));
    assert_eq!(rewritten, holders);
    assert!(holders > 0);
    Ok(())
}

#[test]
pub fn traefik_rollout_rollback_on_flat_routers_takes_one_request() -> Result<()> {
    // With flat routers the router is chosen before Cohort runs: a canary
    // holder's first request after the rollback still reaches v2 (with its
    // cookie rewritten to v1 by Cohort on the v2 router); the next one
    // reaches v1. Multi-layer routing (above) has no such request.
    let backends = Backends::start()?;
    let mut traefik = Traefik::start(&backends.recipe("file/flat-routers.yml", &[canary("50")])?)?;
    let signed = sign_up(&traefik.url(), 40)?;
    let browsers: Vec<Browser> = signed.into_iter().map(|(b, _)| b).collect();
    let before = visit_all(&browsers)?;
    let holders = count(&before, "v2");

    traefik.update_dynamic(
        &backends.recipe("file/flat-routers.yml", &[canary("50"), state("disabled")])?,
    )?;
    let first = visit_all(&browsers)?;
    let second = visit_all(&browsers)?;
    let mut lagged = 0;
    for ((was, now), next) in before.iter().zip(&first).zip(&second) {
        if was.version == "v2" {
            assert_eq!(now.version, "v2", "the v2 router matched the old cookie");
            assert_eq!(now.x_canary, ["v1"], "Cohort decided v1 all the same");
            assert_eq!(now.set("canary"), Some("v1"));
            lagged += 1;
        }
        assert_eq!(next.version, "v1");
        assert!(next.set("canary").is_none());
    }
    eprintln!(
        "flat rollback: {holders} of 40 canary holders, {lagged} served once more by v2 with canary=v1 set, all on v1 after"
    );
    assert_eq!(lagged, holders);
    assert!(holders > 0);
    Ok(())
}
