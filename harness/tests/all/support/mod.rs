//! Helpers shared by the integration tests: a real Traefik ([`traefik`]),
//! a visitor with a cookie jar ([`client`]), the user recipes under
//! `recipes/` ([`recipes`], read with [`yaml`]) and the test-only configs
//! under `testdata/traefik/`.

pub mod client;
pub mod crowd;
pub mod formula;
pub mod guests;
pub mod recipes;
pub mod soak;
pub mod traefik;
pub mod yaml;

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};

/// The text of `testdata/<path>` in the repository.
pub fn testdata(path: &str) -> Result<String> {
    let full = traefik::repo_root().join("testdata").join(path);
    std::fs::read_to_string(&full).with_context(|| format!("reading {}", full.display()))
}

/// `template` with every `(from, to)` replaced; each `from` must occur, so
/// a config and its test can not drift apart silently.
pub fn render(template: &str, substitutions: &[(&str, String)]) -> Result<String> {
    let mut text = template.to_owned();
    for (from, to) in substitutions {
        ensure!(
            text.contains(from),
            "{from:?} does not occur in the template"
        );
        text = text.replace(from, to);
    }
    Ok(text)
}

/// Traefik's sticky-cookie value for a server URL or a weighted child
/// service name: the first 16 hex digits of its SHA-256.
pub fn sticky_value(target: &str) -> String {
    let digest = Sha256::digest(target.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Traefik < 3.3.4's sticky-cookie value for a weighted child service name:
/// FNV-1 (not 1a) 64-bit of the name, lower-case hex without leading zeros
/// (Go's `%x`). Written here from the algorithm, independently of the plugin.
pub fn fnv_sticky_value(target: &str) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = target
        .bytes()
        .fold(OFFSET_BASIS, |h, b| h.wrapping_mul(PRIME) ^ u64::from(b));
    format!("{hash:x}")
}

/// The current Traefik's sticky value for weighted child `child`
/// ([`fnv_sticky_value`] before 3.3.4, [`sticky_value`] from then on).
pub fn weighted_sticky_value(child: &str) -> String {
    match traefik::weighted_sticky_hash() {
        "fnv" => fnv_sticky_value(child),
        _ => sticky_value(child),
    }
}

#[test]
fn fnv_sticky_value_matches_what_traefik_3_3_3_was_seen_to_send() {
    // Traefik 3.0.4, 3.2.3 and 3.3.3 on loopback (issue 10).
    assert_eq!(fnv_sticky_value("v1"), "8325207b4eb141a");
    assert_eq!(fnv_sticky_value("v2"), "8325207b4eb1419");
    // FNV-1's offset basis for the empty name; FNV-1a would differ for "a".
    assert_eq!(fnv_sticky_value(""), "cbf29ce484222325");
    assert_eq!(fnv_sticky_value("a"), "af63bd4c8601b7be");
}

#[test]
fn sticky_value_matches_what_traefik_was_seen_to_send() {
    // notes/traefik-verified.md
    assert_eq!(sticky_value("http://127.0.0.1:18011"), "438607722a20eca0");
    assert_eq!(sticky_value("v2@file"), "9c8fc8fb5822431c");
    assert_eq!(sticky_value("v2"), "fb04dcb6970e4c3d");
}

#[test]
fn render_refuses_a_missing_placeholder() {
    assert_eq!(render("a b", &[("a", "x".into())]).unwrap(), "x b");
    assert!(render("a b", &[("c", "x".into())]).is_err());
}
