//! The user recipes under `recipes/`, as the end-to-end tests run them: the
//! very files users copy, with the placeholder server URLs replaced by the
//! test's own whoami pods, and Cohort's configuration read back from them so
//! that a test can predict every cohort natively.

use std::collections::BTreeMap;

use ::cohort::Config;
use anyhow::{Context, Result, ensure};
use cohort_harness::whoami::{Deployment, Reply};
use serde_json::Value;

use super::traefik::repo_root;
use super::{render, yaml};

/// The host every recipe routes (the seed's).
pub const HOST: &str = "my-app-canary-sticky-prod.apps.example.com";

/// Traefik's per-pod sticky cookie in every recipe (the seed's).
pub const POD_STICKY: &str = "my-sticky-cookie";

/// The weighted service's sticky cookie in `weighted-sticky.yml`.
pub const WEIGHTED_STICKY: &str = "flagger-traefik-sticky";

/// The placeholder server URLs of the recipes: two pods per version.
pub const PLACEHOLDERS: [[&str; 2]; 2] = [
    ["http://v1-pod-0:8080", "http://v1-pod-1:8080"],
    ["http://v2-pod-0:8080", "http://v2-pod-1:8080"],
];

/// The text of `recipes/<path>`.
pub fn recipe(path: &str) -> Result<String> {
    let full = repo_root().join("recipes").join(path);
    std::fs::read_to_string(&full).with_context(|| format!("reading {}", full.display()))
}

/// Two whoami pods per version, like the seed's `replicas: 2`:
/// `canary-v1-0`, `canary-v1-1`, `canary-v2-0`, `canary-v2-1`.
pub struct Backends {
    pub v1: Deployment,
    pub v2: Deployment,
}

impl Backends {
    pub fn start() -> Result<Self> {
        Ok(Self {
            v1: Deployment::start("canary-v1", 2)?,
            v2: Deployment::start("canary-v2", 2)?,
        })
    }

    /// `config` (a recipe or a testdata file) with these pods' URLs in place
    /// of the placeholders.
    pub fn render(&self, config: &str) -> Result<String> {
        let mut substitutions = Vec::new();
        for (deployment, placeholders) in [&self.v1, &self.v2].into_iter().zip(PLACEHOLDERS) {
            for (pod, placeholder) in deployment.pods().iter().zip(placeholders) {
                substitutions.push((placeholder, pod.url()));
            }
        }
        render(config, &substitutions)
    }

    /// `recipes/<path>` with `edits` applied (each `from` must occur; see
    /// [`canary`], [`state`], [`stickiness`], [`wrr`]), then these pods' URLs.
    pub fn recipe(&self, path: &str, edits: &[(&str, String)]) -> Result<String> {
        self.render(&render(&recipe(path)?, edits)?)
    }

    /// The URL of the pod that wrote `reply`.
    pub fn url_of(&self, reply: &Reply) -> Result<String> {
        self.v1
            .pod(&reply.hostname)
            .or_else(|| self.v2.pod(&reply.hostname))
            .map(|pod| pod.url())
            .with_context(|| format!("no pod named {:?}", reply.hostname))
    }
}

/// Edit: v2's Cohort weight (10 in the recipes) to `percent`.
pub fn canary(percent: &str) -> (&'static str, String) {
    (
        "weight: 10             # percent",
        format!("weight: {percent}             # percent"),
    )
}

/// Edit: v2's state (`active` in the recipes) to `state`.
pub fn state(state: &str) -> (&'static str, String) {
    ("state: active", format!("state: {state}"))
}

/// Edit: `stickiness` (`keep` in the recipes) to `stickiness`.
pub fn stickiness(stickiness: &str) -> (&'static str, String) {
    ("stickiness: keep", format!("stickiness: {stickiness}"))
}

/// Edit: keep generated visitor ids in `cohort_id` under `keep` too (the
/// recipes leave `visitorCookie` unset, so only `reevaluate` keeps them).
pub fn visitor_ids() -> (&'static str, String) {
    (
        "stickiness: keep",
        "visitorCookie: cohort_id\n          stickiness: keep".to_owned(),
    )
}

/// Edits: the weighted service's WRR weights (90/10 in
/// `weighted-sticky.yml`) to `v1`/`v2`.
pub fn wrr(v1: u32, v2: u32) -> [(&'static str, String); 2] {
    [
        ("weight: 90\n", format!("weight: {v1}\n")),
        ("weight: 10\n", format!("weight: {v2}\n")),
    ]
}

/// Edit for `weighted-sticky.yml`: `weightedSticky.hash: fnv` when the
/// current Traefik writes FNV-1 sticky values (before 3.3.4); none from
/// 3.3.4 on, where the recipe's default (`sha256`) is right.
pub fn sticky_hash() -> Option<(&'static str, String)> {
    let hash = super::traefik::weighted_sticky_hash();
    (hash != "sha256").then(|| {
        (
            "weightedSticky:\n            cookie: flagger-traefik-sticky\n",
            format!(
                "weightedSticky:\n            cookie: flagger-traefik-sticky\n            hash: {hash}\n"
            ),
        )
    })
}

/// Edits for `weighted-sticky.yml` on the current Traefik: [`sticky_hash`],
/// and before 3.3.0, which does not know a sticky cookie's `path` (the
/// file is refused as a whole: "field not found, node: path"), no `path`
/// on the weighted service's cookie (its default is `/` anyway).
pub fn weighted_for_this_traefik() -> Vec<(&'static str, String)> {
    let mut edits: Vec<(&'static str, String)> = sticky_hash().into_iter().collect();
    if super::traefik::version() < super::traefik::Version(3, 3, 0) {
        edits.push((
            "name: flagger-traefik-sticky\n            maxAge: 2592000\n            path: /\n",
            "name: flagger-traefik-sticky\n            maxAge: 2592000\n".to_owned(),
        ));
    }
    edits
}

/// The Cohort configuration of middleware `middleware` in a file-provider
/// config, as Traefik hands it to the plugin (every scalar a string),
/// validated by the plugin's own parser.
pub fn cohort_config(dynamic: &str, middleware: &str) -> Result<Config> {
    let value = cohort_value(dynamic, middleware)?;
    Config::from_value(&value).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The raw Cohort configuration of `middleware` in a file-provider config.
pub fn cohort_value(dynamic: &str, middleware: &str) -> Result<Value> {
    let doc = yaml::parse(dynamic)?;
    Ok(yaml::get(
        &doc,
        &format!("http.middlewares.{middleware}.plugin.cohort"),
    )?
    .clone())
}

/// The cohort Cohort gives stable key `key` under `config`, by the
/// documented formula written out in [`super::formula`] (checked against
/// Python's answers), not by the plugin's own `bucket_of`.
pub fn predicted(config: &Config, key: &str) -> String {
    super::formula::cohort_of(config, key.as_bytes())
}

/// `count` of each value, sorted.
pub fn tally<'a>(values: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Asserts `observed` successes out of `n` are within `sds` binomial
/// standard deviations of `n * p`; returns the observed share.
pub fn assert_binomial(what: &str, observed: usize, n: usize, p: f64, sds: f64) -> Result<f64> {
    ensure!(n > 0, "{what}: no trials");
    let n_f = n as f64;
    let expected = n_f * p;
    let sd = (n_f * p * (1.0 - p)).sqrt();
    let deviation = (observed as f64 - expected).abs();
    ensure!(
        deviation <= sds * sd,
        "{what}: {observed} of {n} ({:.2} %), expected {expected:.1} ± {:.1} ({sds} sd of {sd:.2})",
        100.0 * observed as f64 / n_f,
        sds * sd
    );
    Ok(observed as f64 / n_f)
}

#[test]
fn every_recipe_placeholder_occurs_once_per_file_recipe() {
    for file in ["flat-routers.yml", "multi-layer.yml", "weighted-sticky.yml"] {
        let text = recipe(&format!("file/{file}")).unwrap();
        for placeholder in PLACEHOLDERS.iter().flatten() {
            assert_eq!(
                text.matches(placeholder).count(),
                1,
                "{file}: {placeholder}"
            );
        }
    }
}

#[test]
fn binomial_bounds() {
    assert!(assert_binomial("x", 400, 2000, 0.2, 4.5).is_ok());
    assert!(assert_binomial("x", 480, 2000, 0.2, 4.5).is_ok());
    assert!(assert_binomial("x", 490, 2000, 0.2, 4.5).is_err());
    assert!(assert_binomial("x", 1000, 2000, 0.2, 4.5).is_err());
}
