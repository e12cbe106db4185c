//! Spoofing in a real Traefik: a client that sends the cohort header, an
//! override from outside `override.allowFrom`, or a forged weighted sticky
//! cookie does not reach the canary (the recipes users copy, plus an
//! `override` section where the test needs one).

use anyhow::Result;

use crate::support::client::agent;
use crate::support::crowd::{in_parallel, step, visitor};
use crate::support::recipes::{
    Backends, WEIGHTED_STICKY, canary, cohort_config, predicted, state, weighted_for_this_traefik,
    wrr,
};
use crate::support::traefik::{Traefik, skip_without_multi_layer};
use crate::support::weighted_sticky_value;

/// User ids whose cohort under `config` is `cohort`.
fn users_in(config: &::cohort::Config, cohort: &str, n: usize) -> Vec<String> {
    (1..)
        .map(|i| format!("user-{i}"))
        .filter(|id| predicted(config, id) == cohort)
        .take(n)
        .collect()
}

#[test]
fn traefik_spoof_cohort_header_does_not_reach_the_canary() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    // Multi-layer children match `X-Canary: v2`; a client's own copy of the
    // header is replaced by Cohort before any child is matched.
    let backends = Backends::start()?;
    let config = backends.recipe("file/multi-layer.yml", &[canary("20")])?;
    let cohort = cohort_config(&config, "cohort")?;
    let traefik = Traefik::start(&config)?;
    let url = traefik.url();
    let stable = users_in(&cohort, "v1", 50);

    let steps = in_parallel(stable.len() + 50, 4, |i, agent| {
        let mut v = visitor(&url, agent);
        let spoof = [("X-Canary", "v2"), ("x-canary", "v2")];
        match stable.get(i) {
            Some(id) => {
                let mut headers = vec![("X-User-Id", id.as_str())];
                headers.extend(spoof);
                step(&mut v, "/", &headers)
            }
            None => step(&mut v, "/", &spoof),
        }
    })?;
    let mut on_v2 = 0;
    for s in &steps[..stable.len()] {
        assert_eq!(s.version, "v1", "{s:?}");
        assert_eq!(
            s.x_canary,
            ["v1"],
            "the client's header reached the backend"
        );
    }
    for s in &steps {
        assert_eq!(s.x_canary.len(), 1, "{s:?}");
        assert_eq!(Some(s.x_canary[0].as_str()), s.set("canary"));
        assert_eq!(s.version, s.x_canary[0]);
        on_v2 += usize::from(s.version == "v2");
    }
    eprintln!(
        "spoofed X-Canary: v2: {} stable users all on v1; {on_v2} of {} requests on v2 (their own cohort)",
        stable.len(),
        steps.len()
    );
    Ok(())
}

#[test]
fn traefik_spoof_override_from_outside_allow_from_is_ignored() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    let with_override = |allow: &str| {
        backends.recipe(
            "file/multi-layer.yml",
            &[
                canary("20"),
                (
                    "stickiness: keep",
                    format!(
                        "override:\n            \
                         header: X-Canary-Force\n            query: canary\n            \
                         allowFrom: [\"{allow}\"]\n          stickiness: keep"
                    ),
                ),
            ],
        )
    };
    let outside = with_override("10.0.0.0/8")?;
    let cohort = cohort_config(&outside, "cohort")?;
    let stable = users_in(&cohort, "v1", 20);
    let mut traefik = Traefik::start(&outside)?;
    let agent = agent();

    // The tests' client is 127.0.0.1: outside 10.0.0.0/8.
    let try_override = |traefik: &Traefik, id: &str| -> Result<(String, String)> {
        let mut by_header = visitor(&traefik.url(), &agent);
        let header = step(
            &mut by_header,
            "/",
            &[("X-User-Id", id), ("X-Canary-Force", "v2")],
        )?;
        let mut by_query = visitor(&traefik.url(), &agent);
        let query = step(&mut by_query, "/?canary=v2", &[("X-User-Id", id)])?;
        let query_cookie = query.set("canary").unwrap_or("none").to_owned();
        Ok((
            header.version,
            format!("{} (cookie {query_cookie})", query.version),
        ))
    };
    for id in &stable {
        let (header, query) = try_override(&traefik, id)?;
        assert_eq!(header, "v1", "{id}: header override from outside allowFrom");
        assert_eq!(query, "v1 (cookie v1)", "{id}: query override from outside");
    }

    // The control: allowed from 127.0.0.1, the same requests do override.
    traefik.update_dynamic(&with_override("127.0.0.1/32")?)?;
    for id in &stable {
        let (header, query) = try_override(&traefik, id)?;
        assert_eq!(header, "v2", "{id}: allowed header override");
        assert_eq!(query, "v2 (cookie v2)", "{id}: allowed query override");
    }
    eprintln!(
        "override: {} stable users x (header, query) from 127.0.0.1: refused with allowFrom 10.0.0.0/8, honoured with 127.0.0.1/32",
        stable.len()
    );
    Ok(())
}

#[test]
pub fn traefik_spoof_forged_weighted_sticky_cookie_never_decides() -> Result<()> {
    // WRR 50/50 over v1 and v2, Cohort 20 %. A client forging the weighted
    // service's sticky cookie for v2 reaches v2 only if Cohort itself puts
    // it there: never while v2 is drained or disabled.
    let backends = Backends::start()?;
    let phase = |edits: &[(&str, String)]| {
        let mut all = vec![canary("20")];
        all.extend(wrr(50, 50));
        all.extend(weighted_for_this_traefik());
        all.extend(edits.iter().cloned());
        backends.recipe("file/weighted-sticky.yml", &all)
    };
    let active = phase(&[])?;
    let cohort = cohort_config(&active, "cohort")?;
    let mut traefik = Traefik::start(&active)?;
    let forged = weighted_sticky_value("my-app-v2-prod");
    let n = 200;

    let run = |traefik: &Traefik, with_canary_cookie: bool| {
        let url = traefik.url();
        in_parallel(n, 4, |i, agent| {
            let id = format!("user-{i}");
            let mut v = visitor(&url, agent);
            v.set_cookie(WEIGHTED_STICKY, &forged);
            if with_canary_cookie {
                v.set_cookie("canary", "v2");
            }
            let s = step(&mut v, "/", &[("X-User-Id", &id)])?;
            Ok((id, s))
        })
    };

    // Active: the forged cookie is rewritten to the child of the cohort
    // Cohort chose (20 %, not 100 %).
    let mut on_v2 = [0; 3];
    for (id, s) in run(&traefik, false)? {
        let expected = predicted(&cohort, &id);
        assert_eq!(s.version, expected, "{id}");
        assert!(s.backend_saw_only(
            WEIGHTED_STICKY,
            &weighted_sticky_value(&format!("my-app-{expected}-prod"))
        ));
        assert_eq!(s.set(WEIGHTED_STICKY), None);
        on_v2[0] += usize::from(s.version == "v2");
    }

    // Drained: nobody new reaches v2 with the forged cookie.
    traefik.update_dynamic(&phase(&[state("drained")])?)?;
    for (_, s) in run(&traefik, false)? {
        assert_eq!(s.version, "v1", "{s:?}");
        assert!(s.backend_saw_only(WEIGHTED_STICKY, &weighted_sticky_value("my-app-v1-prod")));
        on_v2[1] += usize::from(s.version == "v2");
    }

    // Disabled: not even with a forged cohort cookie as well, which is
    // rewritten for the browser too.
    traefik.update_dynamic(&phase(&[state("disabled")])?)?;
    for (_, s) in run(&traefik, true)? {
        assert_eq!(s.version, "v1", "{s:?}");
        assert_eq!(s.set("canary"), Some("v1"));
        assert!(s.backend_saw_only("canary", "v1"));
        assert!(s.backend_saw_only(WEIGHTED_STICKY, &weighted_sticky_value("my-app-v1-prod")));
        on_v2[2] += usize::from(s.version == "v2");
    }
    eprintln!(
        "forged {WEIGHTED_STICKY}={forged} (v2) from {n} users: on v2 while active {} (their cohort), drained {}, disabled (with canary=v2 too) {}",
        on_v2[0], on_v2[1], on_v2[2]
    );
    assert_eq!((on_v2[1], on_v2[2]), (0, 0));
    Ok(())
}
