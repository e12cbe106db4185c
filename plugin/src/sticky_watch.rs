//! Traefik's own weighted sticky `Set-Cookie` in a response: the one sign
//! that it ignored the sticky value Cohort wrote into the request and chose
//! a child by its own weights. That happens when the value names no child
//! Traefik knows: a `variants[].service` not spelled as Traefik names the
//! child, or a `weightedSticky.hash` that is not this Traefik's. The split
//! is then Traefik's, not Cohort's, and nothing else says so.

use std::fmt;

use crate::bucket::StickyHash;
use crate::config::Config;

/// A response in which Traefik overruled Cohort's sticky value.
#[derive(Debug, Clone)]
pub struct Overruled<'c> {
    config: &'c Config,
    /// The variant Cohort chose (it has a sticky value).
    variant: usize,
    /// The value Traefik set instead.
    chosen: String,
}

/// Whether the response's `Set-Cookie` values show Traefik choosing a
/// weighted child itself, although Cohort wrote `variant`'s sticky value.
pub fn overruled<'c, L: AsRef<[u8]>>(
    config: &'c Config,
    variant: usize,
    set_cookies: &[L],
) -> Option<Overruled<'c>> {
    let cookie = config.weighted_sticky_cookie.as_deref()?;
    config.variants.get(variant)?.sticky_value.as_ref()?;
    let chosen = set_cookies
        .iter()
        .find_map(|line| set_cookie_value(line.as_ref(), cookie.as_bytes()))?;
    Some(Overruled {
        config,
        variant,
        chosen: String::from_utf8_lossy(chosen).into_owned(),
    })
}

/// The value of a `Set-Cookie` line for cookie `name`.
fn set_cookie_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let pair = line.split(|&b| b == b';').next()?;
    let eq = pair.iter().position(|&b| b == b'=')?;
    let (n, v) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
    let v = v
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v);
    (n == name).then_some(v)
}

/// What Traefik's value matches among the configured children.
enum Match<'c> {
    /// `variants[index]`'s child under another hash than the configured one.
    OtherHash(usize, StickyHash),
    /// Another variant's child, under the configured hash.
    OtherChild(usize),
    /// `variants[index].service` without its `@provider` suffix.
    WithoutProvider(usize, &'c str, StickyHash),
    Nothing,
}

impl<'c> Overruled<'c> {
    fn matched(&self) -> Match<'c> {
        let config = self.config;
        let chosen = self.chosen.as_str();
        let services = || {
            config
                .variants
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.service.as_deref().map(|s| (i, s)))
        };
        for (i, service) in services() {
            for hash in StickyHash::ALL {
                if hash != config.sticky_hash && hash.value(service) == chosen {
                    return Match::OtherHash(i, hash);
                }
            }
        }
        if let Some(i) = config
            .variants
            .iter()
            .enumerate()
            .position(|(i, v)| i != self.variant && v.sticky_value.as_deref() == Some(chosen))
        {
            return Match::OtherChild(i);
        }
        for (i, service) in services() {
            let Some((bare, _provider)) = service.rsplit_once('@') else {
                continue;
            };
            for hash in StickyHash::ALL {
                if hash.value(bare) == chosen {
                    return Match::WithoutProvider(i, bare, hash);
                }
            }
        }
        Match::Nothing
    }
}

impl fmt::Display for Overruled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.config;
        let cookie = config.weighted_sticky_cookie.as_deref().unwrap_or_default();
        let ours = &config.variants[self.variant];
        write!(
            f,
            "weightedSticky.cookie {cookie:?}: Traefik did not take the value Cohort wrote for \
             variants[{}] ({}, {:?}) and set its own, {:?}. ",
            self.variant,
            ours.name,
            ours.sticky_value.as_deref().unwrap_or_default(),
            self.chosen,
        )?;
        const SPLIT: &str = "Visitors are split by Traefik's weights, not Cohort's. ";
        match self.matched() {
            // Traefik 3.3.4+ still routes an FNV value (a legacy one) to its
            // child, then rewrites it: right child, a Set-Cookie every time.
            Match::OtherHash(i, hash) if i == self.variant && hash == StickyHash::Sha256 => write!(
                f,
                "It is the same child's SHA-256 value: Traefik accepted Cohort's FNV value as a \
                 legacy one and rewrites it in every response. Set weightedSticky.hash: sha256 \
                 ({})",
                hash.traefik_versions(),
            ),
            Match::OtherHash(i, hash) => write!(
                f,
                "{SPLIT}That value is variants[{i}].service {:?} hashed with {}, as {} writes it: \
                 set weightedSticky.hash: {}",
                config.variants[i].service.as_deref().unwrap_or_default(),
                hash.as_str(),
                hash.traefik_versions(),
                hash.as_str(),
            ),
            Match::OtherChild(i) => write!(
                f,
                "{SPLIT}That value is variants[{i}]'s child ({}): Traefik did not accept variants[{}]'s \
                 child; check that it is listed under the weighted service and healthy, and that \
                 variants[].service are not swapped",
                config.variants[i].name, self.variant,
            ),
            Match::WithoutProvider(i, bare, hash) => write!(
                f,
                "{SPLIT}That value is {bare:?} hashed with {}: Traefik names this child as it is written \
                 under weighted.services, without the provider suffix: set variants[{i}].service: \
                 {bare}",
                hash.as_str(),
            ),
            Match::Nothing => write!(
                f,
                "{SPLIT}That value matches no variants[].service under sha256 or fnv: set each \
                 variants[].service to the child's name exactly as Traefik hashes it, as written \
                 under weighted.services (file provider: no @file unless written so), or \
                 <namespace>-<service>-<port> for a Kubernetes TraefikService; \
                 `cohort-harness sticky-value NAME` prints the values (weightedSticky.hash is {})",
                config.sticky_hash.as_str(),
            ),
        }
    }
}

/// How often an instance looks at a response for Traefik's sticky cookie:
/// every one of its first [`FIRST`](Budget::FIRST) responses, then one in
/// [`EVERY`](Budget::EVERY), and it warns once. Each look is a host call,
/// so a well-configured Traefik pays for it only at an instance's start.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    responses: u64,
    warned: bool,
}

impl Budget {
    pub const FIRST: u64 = 64;
    pub const EVERY: u64 = 1024;

    /// Whether to look at the next response.
    pub fn look(&mut self) -> bool {
        if self.warned {
            return false;
        }
        self.responses += 1;
        self.responses <= Self::FIRST || self.responses.is_multiple_of(Self::EVERY)
    }

    /// Records a warning; no more looks after it.
    pub fn warned(&mut self) {
        self.warned = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(hash: &str, v1: &str, v2: &str) -> Config {
        Config::from_value(&json!({
            "weightedSticky": {"cookie": "flagger-sticky", "hash": hash},
            "variants": [
                {"name": "v1", "service": v1},
                {"name": "v2", "weight": "20", "service": v2},
            ],
        }))
        .expect("valid")
    }

    fn warning(config: &Config, variant: usize, set_cookie: &str) -> Option<String> {
        overruled(
            config,
            variant,
            &[b"other=1; Path=/".as_slice(), set_cookie.as_bytes()],
        )
        .map(|o| o.to_string())
    }

    #[test]
    fn no_sticky_set_cookie_no_warning() {
        let c = config("sha256", "v1", "v2");
        assert_eq!(warning(&c, 1, "canary=v2; Path=/"), None);
        // A cookie whose name only ends like the sticky one.
        assert_eq!(warning(&c, 1, "xflagger-sticky=abc"), None);
    }

    #[test]
    fn an_old_traefik_is_told_to_use_fnv() {
        // Traefik 3.3.3 answers with the FNV value of `v2`.
        let c = config("sha256", "v1", "v2");
        let w = warning(&c, 1, "flagger-sticky=8325207b4eb1419; Path=/; HttpOnly").expect("warn");
        assert!(w.contains("\"flagger-sticky\""), "{w}");
        assert!(w.contains("set its own, \"8325207b4eb1419\""), "{w}");
        assert!(w.contains("split by Traefik's weights"), "{w}");
        assert!(
            w.contains("variants[1].service \"v2\" hashed with fnv"),
            "{w}"
        );
        assert!(w.contains("set weightedSticky.hash: fnv"), "{w}");
        assert!(w.contains("Traefik before 3.3.4"), "{w}");
    }

    #[test]
    fn a_new_traefik_is_told_to_use_sha256() {
        // With `fnv` on Traefik >= 3.3.4 the legacy value is honoured and
        // rewritten with the SHA-256 one.
        let c = config("fnv", "v1", "v2");
        let sha = StickyHash::Sha256.value("v1");
        let w = warning(&c, 0, &format!("flagger-sticky={sha}")).expect("warn");
        assert!(
            w.contains("accepted Cohort's FNV value as a legacy one"),
            "{w}"
        );
        assert!(w.contains("Set weightedSticky.hash: sha256"), "{w}");
        // Another child's SHA-256 value: a misroute.
        let w = warning(&c, 1, &format!("flagger-sticky={sha}")).expect("warn");
        assert!(w.contains("split by Traefik's weights"), "{w}");
        assert!(w.contains("set weightedSticky.hash: sha256"), "{w}");
    }

    #[test]
    fn a_provider_suffix_traefik_does_not_use_is_named() {
        // The README once said `app-v2@file`; Traefik hashes `v2` as written.
        let c = config("sha256", "v1@file", "v2@file");
        let v1 = StickyHash::Sha256.value("v1");
        let w = warning(&c, 1, &format!("flagger-sticky=\"{v1}\"")).expect("warn");
        assert!(w.contains("set variants[0].service: v1"), "{w}");
    }

    #[test]
    fn another_configured_child_is_named() {
        let c = config("sha256", "v1", "v2");
        let v1 = StickyHash::Sha256.value("v1");
        let w = warning(&c, 1, &format!("flagger-sticky={v1}")).expect("warn");
        assert!(w.contains("variants[0]'s child (v1)"), "{w}");
    }

    #[test]
    fn an_unknown_value_says_how_traefik_names_children() {
        let c = config("sha256", "apps-v1-80", "apps-v2-80");
        let w = warning(&c, 1, "flagger-sticky=0123456789abcdef").expect("warn");
        assert!(w.contains("matches no variants[].service"), "{w}");
        assert!(w.contains("<namespace>-<service>-<port>"), "{w}");
    }

    #[test]
    fn an_unknown_value_with_provider_suffixes_matches_nothing() {
        // Found by mutation testing: the provider-suffix check must match
        // the value, not merely find a suffix to strip.
        let c = config("sha256", "v1@file", "v2@file");
        let w = warning(&c, 1, "flagger-sticky=0123456789abcdef").expect("warn");
        assert!(w.contains("matches no variants[].service"), "{w}");
        assert!(!w.contains("without the provider suffix"), "{w}");
    }

    #[test]
    fn a_variant_without_a_child_is_not_watched() {
        // Traefik picks for a variant Cohort wrote no sticky value for.
        let c = Config::from_value(&json!({
            "weightedSticky": {"cookie": "s"},
            "variants": [{"name": "v1", "service": "v1"}, {"name": "v2", "weight": "5"}],
        }))
        .expect("valid");
        assert_eq!(warning(&c, 1, "s=8325207b4eb1419"), None);
        assert!(warning(&c, 0, "s=8325207b4eb1419").is_some());
    }

    #[test]
    fn the_budget_looks_at_the_first_responses_then_rarely_and_warns_once() {
        let mut budget = Budget::default();
        let looks: Vec<u64> = (1..=3 * Budget::EVERY).filter(|_| budget.look()).collect();
        assert_eq!(looks.len() as u64, Budget::FIRST + 3);
        assert_eq!(looks[..3], [1, 2, 3]);
        assert_eq!(looks[looks.len() - 3..], [1024, 2048, 3072]);
        budget.warned();
        assert!(!(0..5000).any(|_| budget.look()));
    }
}
