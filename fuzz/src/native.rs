//! Running a [`FuzzRequest`] through the native decision core, and the
//! checks the `decision` and `wasm_request` targets make on it.

use std::cell::RefCell;
use std::sync::OnceLock;

use cohort::bucket::IdGenerator;
use cohort::config::{State, Stickiness};
use cohort::cookie;
use cohort::decision::{KeyUsed, Values};
use cohort::{Config, Decision, Reason, RequestView, decide};

use crate::checks::{self, SetCookie};
use crate::configs::{COHORT_HEADER, CONFIGS, FuzzConfig};
use crate::input::FuzzRequest;

/// [`CONFIGS`] parsed, each checked against its written-out shape.
pub fn configs() -> &'static [Config] {
    static PARSED: OnceLock<Vec<Config>> = OnceLock::new();
    PARSED.get_or_init(|| {
        CONFIGS
            .iter()
            .enumerate()
            .map(|(i, cfg)| {
                let config = Config::from_json(cfg.json.as_bytes())
                    .unwrap_or_else(|e| panic!("CONFIGS[{i}] is invalid: {e}"));
                check_metadata(cfg, &config).unwrap_or_else(|e| panic!("CONFIGS[{i}]: {e}"));
                config
            })
            .collect()
    })
}

/// The hand-written shape of a configuration agrees with what the plugin
/// made of it.
pub fn check_metadata(cfg: &FuzzConfig, config: &Config) -> Result<(), String> {
    let variants: Vec<(&str, Option<&str>)> = config
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.sticky_value.as_deref()))
        .collect();
    let checks = [
        (config.cookie_name == cfg.cookie, "cookie name"),
        (
            config.visitor_cookie.as_deref() == cfg.visitor,
            "visitor cookie",
        ),
        (variants == cfg.variants, "variants"),
        (
            config.weighted_sticky_cookie.as_deref() == cfg.sticky_cookie,
            "sticky cookie",
        ),
        (config.cookie_suffix == cfg.suffix, "cookie suffix"),
        (
            config.debug_header.as_deref() == cfg.debug_header,
            "debug header",
        ),
        (config.header.as_deref() == Some(COHORT_HEADER), "header"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("the written-out {what} is wrong: {config:?}")),
        None => Ok(()),
    }
}

/// How often the decision asked for each part of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    pub method: u32,
    pub uri: u32,
    pub source_addr: u32,
    /// Header names asked for, in order.
    pub headers: Vec<String>,
}

/// A [`RequestView`] over a [`FuzzRequest`] that counts its calls.
pub struct View<'a> {
    request: &'a FuzzRequest,
    pub calls: Calls,
}

impl<'a> View<'a> {
    pub fn new(request: &'a FuzzRequest) -> Self {
        View {
            request,
            calls: Calls::default(),
        }
    }
}

impl RequestView for View<'_> {
    type Bytes = Vec<u8>;
    fn header_values(&mut self, name: &str) -> Values<Vec<u8>> {
        self.calls.headers.push(name.to_owned());
        self.request
            .header_values(name.as_bytes())
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
            .into()
    }
    fn method(&mut self) -> Vec<u8> {
        self.calls.method += 1;
        self.request.method.clone()
    }
    fn uri(&mut self) -> Vec<u8> {
        self.calls.uri += 1;
        self.request.uri.clone()
    }
    fn source_addr(&mut self) -> Vec<u8> {
        self.calls.source_addr += 1;
        self.request.source.clone()
    }
}

/// Decides `request` with a generator and clock fixed by `tick`.
pub fn decide_fixed(config: &Config, request: &FuzzRequest, tick: u8) -> (Decision, Calls) {
    let ids = RefCell::new(IdGenerator::new(&[tick]));
    let mut view = View::new(request);
    let decision = decide(config, &mut view, &ids, || u128::from(tick));
    (decision, view.calls)
}

/// The `Cookie` lines the backend would receive.
pub fn forwarded_lines<'a>(request: &'a FuzzRequest, decision: &'a Decision) -> Vec<&'a [u8]> {
    match &decision.cookie_header {
        Some(line) => vec![line.as_slice()],
        None => request.header_values(b"Cookie"),
    }
}

/// Everything one decision must satisfy.
pub fn check_decision(
    cfg: &FuzzConfig,
    config: &Config,
    request: &FuzzRequest,
    decision: &Decision,
) -> Result<(), String> {
    let variant = config
        .variants
        .get(decision.variant)
        .ok_or_else(|| format!("variant index {} out of range", decision.variant))?;
    let name = variant.name.as_bytes();
    if variant.state == State::Disabled {
        return Err(format!("sent to the disabled variant {:?}", variant.name));
    }
    let bucketed = matches!(
        decision.reason,
        Reason::Assigned | Reason::Reassigned | Reason::Reevaluated | Reason::Rollback
    );
    if bucketed && variant.state != State::Active {
        return Err(format!(
            "{} into the {:?} variant {:?}",
            decision.reason, variant.state, variant.name
        ));
    }
    // A rollback goes to the default, or with `reevaluate` and a stable key
    // to the holder's bucket (active, checked above).
    if decision.reason == Reason::Rollback
        && decision.variant != config.default
        && (config.stickiness != Stickiness::Reevaluate || decision.key == KeyUsed::None)
    {
        return Err("a rollback to neither the default nor a bucket".into());
    }
    if decision.reason == Reason::Excluded
        && (decision.set_cohort_cookie || decision.visitor_set_cookie.is_some())
    {
        return Err("an excluded request sets a cookie".into());
    }
    if decision.visitor_set_cookie.is_some() != (decision.key == KeyUsed::NewVisitorId) {
        return Err(format!(
            "visitor Set-Cookie {:?} with key {:?}",
            decision.visitor_set_cookie, decision.key
        ));
    }
    if let Some(value) = &decision.visitor_set_cookie {
        match checks::check_set_cookie(cfg, value)? {
            SetCookie::Visitor(_) => {}
            SetCookie::Cohort(_) => return Err("the visitor Set-Cookie sets the cohort".into()),
        }
    }
    if checks::check_set_cookie(cfg, &variant.set_cookie)? != SetCookie::Cohort(name) {
        return Err(format!(
            "{:?}'s Set-Cookie names another cohort",
            variant.name
        ));
    }

    let original = request.header_values(b"Cookie");
    let forwarded = forwarded_lines(request, decision);
    checks::check_forwarded_cookies(cfg, &forwarded, name)?;
    if decision.cookie_header.is_some() {
        // The rewrite keeps every other pair, byte for byte and in order.
        let ours = |n: &[u8]| {
            n == cfg.cookie.as_bytes() || cfg.sticky_cookie.is_some_and(|s| n == s.as_bytes())
        };
        let others = |lines: &[&[u8]]| -> Vec<Vec<u8>> {
            cookie::pairs_of(lines)
                .filter(|p| !ours(p.name))
                .map(|p| p.raw.to_vec())
                .collect()
        };
        if others(&original) != others(&forwarded) {
            return Err(format!(
                "the rewrite changed other cookies: {:?} -> {:?}",
                lossy(&original),
                lossy(&forwarded)
            ));
        }
    }
    Ok(())
}

fn lossy(lines: &[&[u8]]) -> Vec<String> {
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// The same client's next request, as a browser would send it after this
/// decision: every cookie the response set replaces the pairs of that name
/// (other pairs kept in order), and everything else is unchanged.
pub fn next_request(
    cfg: &FuzzConfig,
    request: &FuzzRequest,
    decision: &Decision,
    config: &Config,
) -> FuzzRequest {
    let mut set: Vec<(&[u8], &[u8])> = Vec::new();
    if decision.set_cohort_cookie {
        set.push((
            cfg.cookie.as_bytes(),
            config.variants[decision.variant].name.as_bytes(),
        ));
    }
    let visitor = cfg.visitor.unwrap_or_default().as_bytes();
    let visitor_id = decision.visitor_set_cookie.as_ref().and_then(|v| {
        let pair = v.strip_suffix(cfg.suffix.as_bytes())?;
        pair.strip_prefix(visitor)?.strip_prefix(b"=")
    });
    if let Some(id) = visitor_id {
        set.push((visitor, id));
    }
    if set.is_empty() {
        return request.clone();
    }
    let lines = request.header_values(b"Cookie");
    let mut line: Vec<u8> = Vec::new();
    let pairs = cookie::pairs_of(&lines)
        .filter(|p| !set.iter().any(|(n, _)| *n == p.name))
        .map(|p| p.raw.to_vec())
        .chain(set.iter().map(|(n, v)| [*n, b"=", *v].concat()));
    for pair in pairs {
        if !line.is_empty() {
            line.extend_from_slice(b"; ");
        }
        line.extend_from_slice(&pair);
    }
    let mut next = request.clone();
    next.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(b"Cookie"));
    next.headers.push((b"Cookie".to_vec(), line));
    next
}

/// A returning visitor keeps the cohort and is not sent a cookie again.
pub fn check_returning(first: &Decision, second: &Decision) -> Result<(), String> {
    if second.variant != first.variant {
        return Err(format!(
            "the next request moved from variant {} ({}) to {} ({})",
            first.variant, first.reason, second.variant, second.reason
        ));
    }
    if second.set_cohort_cookie || second.visitor_set_cookie.is_some() {
        return Err(format!(
            "the next request is sent a cookie again ({}, after {})",
            second.reason, first.reason
        ));
    }
    Ok(())
}
