//! Helpers shared by the integration tests: a real Traefik ([`traefik`]),
//! a visitor with a cookie jar ([`client`]), the user recipes under
//! `recipes/` ([`recipes`], read with [`yaml`]) and the test-only configs
//! under `testdata/traefik/`.

pub mod client;
pub mod crowd;
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
