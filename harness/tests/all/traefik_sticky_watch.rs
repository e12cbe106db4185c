//! A weighted sticky configuration that Traefik silently overrules is
//! told in Traefik's own log: with child names Traefik does not hash
//! (`my-app-v2-prod@file` for a child written `my-app-v2-prod`), or with a
//! sticky hash that is not this Traefik's, Traefik ignores Cohort's sticky
//! value, splits by its WRR weights and answers its own `Set-Cookie`; Cohort
//! sees that `Set-Cookie` after next and warns, naming the fix. With the
//! recipe as written, nothing is logged.

use anyhow::Result;

use crate::support::crowd::{in_parallel, step, visitor};
use crate::support::recipes::{Backends, canary, weighted_for_this_traefik, wrr};
use crate::support::traefik::{Traefik, weighted_sticky_hash};

/// Cohort's warnings in Traefik's log.
fn cohort_warnings(traefik: &Traefik) -> Vec<String> {
    traefik
        .log()
        .lines()
        .filter(|l| l.contains("Cohort: weightedSticky.cookie"))
        .map(str::to_owned)
        .collect()
}

/// 40 new visitors through the weighted recipe with `edits`, at WRR 50/50
/// and Cohort 20 %; Cohort's warnings.
fn warnings_for(edits: Vec<(&'static str, String)>) -> Result<Vec<String>> {
    let backends = Backends::start()?;
    let mut edits = edits;
    edits.push(canary("20"));
    edits.extend(wrr(50, 50));
    let traefik = Traefik::start(&backends.recipe("file/weighted-sticky.yml", &edits)?)?;
    let url = traefik.url();
    in_parallel(40, 4, |_, agent| step(&mut visitor(&url, agent), "/", &[]))?;
    let warnings = cohort_warnings(&traefik);
    eprintln!(
        "{} Cohort warnings, e.g. {:?}",
        warnings.len(),
        warnings.first()
    );
    assert!(traefik.errors().is_empty(), "{:#?}", traefik.errors());
    Ok(warnings)
}

#[test]
pub fn traefik_overruling_wrong_child_names_is_a_warning_in_traefiks_log() -> Result<()> {
    let mut edits = vec![
        (
            "service: my-app-v1-prod\n",
            "service: my-app-v1-prod@file\n".to_owned(),
        ),
        (
            "service: my-app-v2-prod\n",
            "service: my-app-v2-prod@file\n".to_owned(),
        ),
    ];
    edits.extend(weighted_for_this_traefik());
    let warnings = warnings_for(edits)?;
    assert!(!warnings.is_empty(), "no warning for wrong child names");
    // Warn level, once per instance: a handful, not one per request.
    assert!(warnings.len() <= 20, "{warnings:#?}");
    for w in &warnings {
        assert!(w.contains("level=warn") || w.contains(" WRN "), "{w}");
        assert!(
            w.contains("set variants[0].service: my-app-v1-prod")
                || w.contains("set variants[1].service: my-app-v2-prod"),
            "{w}"
        );
    }
    Ok(())
}

#[test]
pub fn traefik_overruling_the_wrong_hash_is_a_warning_in_traefiks_log() -> Result<()> {
    // The other hash than this Traefik's.
    // (Traefik 3.3.4+ routes an FNV value as a legacy one and rewrites
    // it; older Traefik ignores a SHA-256 one.)
    let (wrong, fix) = if weighted_sticky_hash() == "fnv" {
        ("sha256", "set weightedsticky.hash: fnv")
    } else {
        ("fnv", "set weightedsticky.hash: sha256")
    };
    // The recipe for this Traefik, then the other hash than its own.
    let mut edits: Vec<(&'static str, String)> = weighted_for_this_traefik()
        .into_iter()
        .filter(|(from, _)| !from.starts_with("weightedSticky:"))
        .collect();
    edits.push((
        "weightedSticky:\n            cookie: flagger-traefik-sticky\n",
        format!(
            "weightedSticky:\n            cookie: flagger-traefik-sticky\n            hash: {wrong}\n"
        ),
    ));
    let warnings = warnings_for(edits)?;
    assert!(!warnings.is_empty(), "no warning for hash: {wrong}");
    for w in &warnings {
        assert!(w.to_lowercase().contains(fix), "{w}");
    }
    Ok(())
}

#[test]
pub fn traefik_honouring_the_recipe_logs_no_warning() -> Result<()> {
    let warnings = warnings_for(weighted_for_this_traefik())?;
    assert!(warnings.is_empty(), "{warnings:#?}");
    Ok(())
}
