//! Large Cookie headers through a real Traefik 3.7.15 with Cohort
//! (multi-layer recipe): 0 B to 64 KB, as browsers with many analytics and
//! consent cookies send them.
//!
//! On some CPUs Traefik 3.7.15's wasm runtime traps any guest
//! `memory.copy`/`memory.fill` of about 2 KiB or more (the request then gets
//! a 500 whose body is the `wasm error`; Traefik's log says nothing), so this
//! is where an unlowered plugin fails; on others it does not
//! (notes/bulk-memory-trap.md). The control below asks the bulk-memory probe
//! which kind of machine this is. The entry point's limit is Go's default
//! `maxHeaderBytes` of 1 MiB (checked in Traefik's logged static config), far
//! above 64 KB, so no limit is raised.

use anyhow::{Context, Result, ensure};

use crate::support::client::agent;
use crate::support::crowd::{Step, step, visitor};
use crate::support::guests::bulk_memory_trap;
use crate::support::recipes::{Backends, canary, cohort_config, predicted};
use crate::support::traefik::{Options, Traefik, skip_without_multi_layer};

const SIZES: [usize; 8] = [
    0,
    1 << 10,
    2 << 10,
    4 << 10,
    8 << 10,
    16 << 10,
    32 << 10,
    64 << 10,
];

/// Cookie pairs `fNNNN=xxx…` joined by `; `, exactly `len` bytes long.
fn filler(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        let sep = if out.is_empty() { "" } else { "; " };
        let room = len - out.len();
        let name = format!("{sep}f{i:04}=");
        if room < name.len() + 1 {
            // Too short for another pair: lengthen the last value.
            out.push_str(&"x".repeat(room));
            break;
        }
        let value = (room - name.len()).min(90);
        out.push_str(&name);
        out.push_str(&"x".repeat(value));
        i += 1;
    }
    out
}

#[test]
fn filler_has_the_exact_length() {
    for len in [1, 2, 7, 8, 9, 100, 1024, 65536] {
        assert_eq!(filler(len).len(), len, "{len}");
    }
}

#[test]
fn traefik_large_cookie_headers_pass_with_the_right_cohort() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let backends = Backends::start()?;
    let config = backends.recipe("file/multi-layer.yml", &[canary("50")])?;
    let cohort = cohort_config(&config, "cohort")?;
    let traefik = Traefik::start(&config)?;
    let log = traefik.log();
    ensure!(
        log.contains("\"maxHeaderBytes\":1048576"),
        "the entry point's header limit is not Go's 1 MiB default"
    );
    let user_in = |c: &str| {
        (1..)
            .map(|i| format!("user-{i}"))
            .find(|id| predicted(&cohort, id) == c)
            .context("no such user")
    };
    let (v1_user, v2_user) = (user_in("v1")?, user_in("v2")?);
    let agent = agent();
    let url = traefik.url();
    let send = |cookie: &str, user: &str| -> Result<Step> {
        let mut v = visitor(&url, &agent);
        let mut headers = vec![("X-User-Id", user)];
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie));
        }
        step(&mut v, "/", &headers)
    };

    for size in SIZES {
        let filler = filler(size);
        let join = |pair: &str| {
            if filler.is_empty() {
                pair.to_owned()
            } else {
                format!("{filler}; {pair}")
            }
        };

        // A new visitor: assigned by its id, the filler kept byte for byte.
        let new = send(&filler, &v2_user).with_context(|| format!("{size} B, new visitor"))?;
        assert_eq!(new.version, "v2", "{size} B");
        assert_eq!(new.set("canary"), Some("v2"), "{size} B");
        assert_eq!(new.cookies_seen, [join("canary=v2")], "{size} B");

        // A holder whose cohort cookie comes after all the others: honoured,
        // the header passed on untouched.
        let holder_cookie = join("canary=v2");
        let holder = send(&holder_cookie, &v1_user).with_context(|| format!("{size} B, holder"))?;
        assert_eq!(holder.version, "v2", "{size} B");
        assert_eq!(holder.set("canary"), None, "{size} B");
        assert_eq!(holder.cookies_seen, [holder_cookie], "{size} B");

        // An unknown cohort at the end: re-bucketed, that pair rewritten.
        let stale =
            send(&join("canary=v9"), &v1_user).with_context(|| format!("{size} B, stale"))?;
        assert_eq!(stale.version, "v1", "{size} B");
        assert_eq!(stale.set("canary"), Some("v1"), "{size} B");
        assert_eq!(stale.cookies_seen, [join("canary=v1")], "{size} B");
        eprintln!("Cookie header of {size} B (+ the cohort pair): 200 x 3, right cohort each time");
    }
    // A trap would have shown above: `step` insists on a 200 from a whoami
    // pod, and a trap is a 500 with the `wasm error` as body (Traefik 3.7
    // does not log it).
    assert!(traefik.errors().is_empty(), "{:#?}", traefik.errors());
    Ok(())
}

#[test]
fn traefik_large_cookie_headers_trap_an_unlowered_guest() -> Result<()> {
    // The control for the test above: where this machine's Traefik has the
    // bulk-memory trap (the probe says), the same plugin before the build
    // lowered its bulk-memory instructions answers 500 once the Cookie
    // header is a few KB, so the test above does detect the trap. The
    // request holds a stale cohort (`canary=v9`) after the filler, so that
    // Cohort rewrites the line and copies the filler whole: a new
    // visitor's line is extended where the host wrote it, which copies
    // nothing large, and answered 200 at every size even where the probe
    // traps (a Sapphire Rapids-class Xeon VM, avx512f erms fsrm). Where it
    // has not, the unlowered plugin answers 200 at every size, and the
    // proof that Cohort is safe on the other machines is CPU-independent:
    // the shipped plugin.wasm has no bulk-memory instruction
    // (shipped::shipped_guest_has_no_bulk_memory_instructions) and the harness's
    // Traefik-faithful mode refuses any.
    if skip_without_multi_layer() {
        return Ok(());
    }
    let probe = bulk_memory_trap()?;
    eprintln!("{}", probe.line);
    let backends = Backends::start()?;
    let options = Options {
        wasm: cohort_harness::artifacts::PLUGIN_WASM_UNLOWERED.into(),
        ..Options::default()
    };
    let traefik = Traefik::start_with(
        &options,
        &backends.recipe("file/multi-layer.yml", &[canary("50")])?,
    )?;
    let agent = agent();
    let mut statuses = Vec::new();
    for size in SIZES {
        let filler = filler(size);
        let mut v = visitor(&traefik.url(), &agent);
        let cookie = if filler.is_empty() {
            "canary=v9".to_owned()
        } else {
            format!("{filler}; canary=v9")
        };
        let response = v.get_with("/", &[("Cookie", cookie.as_str())])?;
        if response.status == 500 {
            ensure!(
                response.body.contains("wasm error"),
                "a 500 that is no trap at {size} B: {}",
                response.body
            );
        }
        statuses.push((size, response.status));
    }
    eprintln!("unlowered guest: (Cookie bytes, status) {statuses:?}");
    assert_eq!(statuses[0].1, 200, "{statuses:?}");
    if probe.traps {
        assert_eq!(statuses.last().map(|s| s.1), Some(500), "{statuses:?}");
    } else {
        assert!(statuses.iter().all(|s| s.1 == 200), "{statuses:?}");
        eprintln!(
            "this machine's Traefik does not trap bulk memory: the unlowered plugin answered 200 \
             at every size; the shipped plugin's safety rests on it having no bulk-memory \
             instruction (shipped.rs) and on the harness refusing any"
        );
    }
    Ok(())
}
