//! A Cohort configuration with a mistake, in a real Traefik: the plugin
//! refuses to start, Traefik's log names the field, and the router using it
//! is not served at all — clients get Traefik's `404 page not found` — so
//! nobody is silently sent to a version by a half-understood config. Other
//! routers keep working.

use anyhow::{Context, Result};

use crate::support::client::{Visitor, agent};
use crate::support::crowd::{assert_unchanged, in_parallel, sign_up_split, visit_all};
use crate::support::recipes::{Backends, canary};
use crate::support::traefik::{Traefik, skip_without_multi_layer};

/// `(Cohort config as one-line YAML, the field the error must name)`.
const MISTAKES: &[(&str, &str)] = &[
    (
        "{variants: [{name: v1}, {name: v2, weight: ten}]}",
        "variants[1].weight",
    ),
    (
        "{variants: [{name: v1, weight: 50}, {name: v2, weight: 40}]}",
        "variants",
    ),
    ("{percent: 10}", "percent"),
    ("{cookie: {sameSite: none}}", "cookie.sameSite"),
    ("{stickiness: sometimes}", "stickiness"),
    (
        "{weightedSticky: {cookie: flagger-traefik-sticky}}",
        "weightedSticky.cookie",
    ),
    (
        "{override: {header: X-Canary-Force, allowFrom: [10.0.0.0/99]}}",
        "override.allowFrom[0]",
    ),
    ("{keys: [\"body:user\"]}", "keys[0]"),
];

/// A router per mistake (`Host(bad-<i>.example.com)`) and a control router
/// with a valid config (`Host(good.example.com)`), all to v1.
fn config(backends: &Backends) -> Result<String> {
    let mut middlewares = String::new();
    let mut routers = String::new();
    let cases = MISTAKES
        .iter()
        .map(|(yaml, _)| *yaml)
        .chain(["{variants: [{name: v1}, {name: v2, weight: 10}]}"]);
    for (i, yaml) in cases.enumerate() {
        let name = if i < MISTAKES.len() {
            format!("bad-{i}")
        } else {
            "good".to_owned()
        };
        middlewares.push_str(&format!(
            "    {name}:\n      plugin:\n        cohort: {yaml}\n"
        ));
        routers.push_str(&format!(
            "    {name}:\n      entryPoints: [web]\n      rule: \"Host(`{name}.example.com`)\"\n      \
             middlewares: [{name}]\n      service: v1\n"
        ));
    }
    backends.render(&format!(
        "http:\n  middlewares:\n{middlewares}  routers:\n{routers}  services:\n    v1:\n      \
         loadBalancer:\n        servers:\n          - url: \"http://v1-pod-0:8080\"\n          \
         - url: \"http://v1-pod-1:8080\"\n    v2:\n      loadBalancer:\n        servers:\n          \
         - url: \"http://v2-pod-0:8080\"\n          - url: \"http://v2-pod-1:8080\"\n"
    ))
}

#[test]
fn traefik_bad_config_names_the_field_and_the_router_is_not_served() -> Result<()> {
    let backends = Backends::start()?;
    let traefik = Traefik::start(&config(&backends)?)?;
    let agent = agent();

    for (i, (yaml, field)) in MISTAKES.iter().enumerate() {
        let router = format!("bad-{i}");
        let response = Visitor::with_agent(&traefik.url(), agent.clone())
            .with_host(&format!("{router}.example.com"))
            .get("/")?;
        assert_eq!(
            (response.status, response.body.trim()),
            (404, "404 page not found"),
            "{yaml}"
        );
        let errors = traefik.errors();
        let line = errors
            .iter()
            .find(|l| l.contains(&format!("routerName={router}@file")) && l.contains("Cohort"))
            .with_context(|| format!("no error logged for {router} ({yaml}): {errors:#?}"))?;
        assert!(
            line.contains(&format!("invalid Cohort configuration: {field}: ")),
            "{yaml}: the log does not name {field}: {line}"
        );
        eprintln!(
            "{yaml} -> 404; {}",
            line.split(" > ").nth(1).unwrap_or(line)
        );
    }
    // The router with a valid config next to them works.
    let good = Visitor::with_agent(&traefik.url(), agent)
        .with_host("good.example.com")
        .get("/")?;
    assert_eq!(good.status, 200);
    assert!(good.set_cookie("canary")?.is_some());
    Ok(())
}

#[test]
fn traefik_bad_config_reload_stops_the_router_and_a_fix_restores_it() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    // A good config, visitors with cohorts; then a typo in the weight is
    // deployed (`3O`, a letter O): the host is no longer served (404)
    // rather than served with some default split; the fix brings everyone
    // back, each on their own cohort.
    let backends = Backends::start()?;
    let good = backends.recipe("file/multi-layer.yml", &[canary("30")])?;
    let mut traefik = Traefik::start(&good)?;
    let (browsers, firsts) = sign_up_split(&traefik.url(), 100)?;

    traefik.update_dynamic(&backends.recipe("file/multi-layer.yml", &[canary("3O")])?)?;
    let statuses = in_parallel(browsers.len(), 4, |i, _| Ok(browsers[i].get()?.status))?;
    assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    let errors = traefik.errors();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("invalid Cohort configuration: variants[1].weight: \"3O\"")),
        "{errors:#?}"
    );

    traefik.update_dynamic(&good)?;
    let back = visit_all(&browsers)?;
    assert_unchanged(&firsts, &back);
    eprintln!(
        "bad reload: {} of {} requests answered 404, none reached a backend; after the fix all {} back on their cohort and pod",
        statuses.iter().filter(|s| **s == 404).count(),
        statuses.len(),
        back.len()
    );
    Ok(())
}
