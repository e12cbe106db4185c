//! Running a [`FuzzRequest`] through the real `plugin.wasm` in the harness,
//! and checking the exchange from the outside: no trap, no host error, the
//! request forwarded with a valid cohort in `X-Canary`, cookies that name
//! exactly that cohort, and well-formed `Set-Cookie` values.
//!
//! Feature `host`: it runs the guest in [`http_wasm_host`]. The fuzz
//! crate's `wasm_request` target and `harness/tests/all/fuzz.rs` (which
//! replays the corpus) both use it.

use http_wasm_host::{EchoBackend, Guest, HostOptions, Request};

use super::checks;
use super::configs::{COHORT_HEADER, CONFIGS, FuzzConfig};
use super::input::FuzzRequest;

/// One loaded guest per entry of [`CONFIGS`], in Traefik-faithful mode
/// (the configuration stringified as Traefik hands it over).
pub fn load_guests(wasm: &[u8]) -> Vec<Guest> {
    CONFIGS
        .iter()
        .enumerate()
        .map(|(i, cfg)| {
            let json: serde_json::Value = serde_json::from_str(cfg.json)
                .unwrap_or_else(|e| panic!("CONFIGS[{i}] is not JSON: {e}"));
            Guest::load(wasm, HostOptions::traefik().config_json(json))
                .unwrap_or_else(|e| panic!("CONFIGS[{i}] does not load: {e}"))
        })
        .collect()
}

/// The request as the harness carries it: method, URI, source address and
/// header names are strings there (lossily decoded), header values exact
/// bytes, except that a value holding NUL bytes becomes one field per
/// NUL-separated piece. http-wasm hands a guest a header's values as one
/// NUL-separated list, so that is what a guest would read anyway (and Go's
/// server answers 400 to a header value with a NUL, so Traefik never passes
/// one on); splitting it here lets the backend receive what the guest saw.
pub fn to_request(r: &FuzzRequest) -> Request {
    let seen = as_seen_by_guest(r);
    let mut request = Request::new(
        String::from_utf8_lossy(&seen.method),
        String::from_utf8_lossy(&seen.uri),
    )
    .source_addr(String::from_utf8_lossy(&seen.source));
    for (name, value) in seen.headers {
        request = request.header_bytes(String::from_utf8_lossy(&name), value);
    }
    request
}

/// `r` as the guest sees it through [`to_request`]: strings lossily
/// decoded, header values split at NUL.
pub fn as_seen_by_guest(r: &FuzzRequest) -> FuzzRequest {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned().into_bytes();
    FuzzRequest {
        config: r.config,
        method: lossy(&r.method),
        uri: lossy(&r.uri),
        source: lossy(&r.source),
        headers: r
            .headers
            .iter()
            .flat_map(|(n, v)| {
                let name = lossy(n);
                v.split(|&b| b == 0)
                    .map(move |piece| (name.clone(), piece.to_vec()))
            })
            .collect(),
    }
}

/// What one exchange came to, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The variant in the backend's `X-Canary`.
    pub cohort: Vec<u8>,
    /// The debug header's reason, when the configuration has one.
    pub reason: Option<String>,
    /// A `Set-Cookie` for the cohort cookie was sent.
    pub set_cohort: bool,
    /// The visitor id a `Set-Cookie` handed out, if any.
    pub visitor: Option<Vec<u8>>,
    /// The `Cookie` lines the backend received.
    pub cookie_lines: Vec<Vec<u8>>,
}

/// Runs `r` through `guest` (loaded with `cfg`) and checks the exchange.
/// `Err` describes the first thing wrong.
pub fn run(guest: &Guest, cfg: &FuzzConfig, r: &FuzzRequest) -> Result<Outcome, String> {
    let backend = EchoBackend::new();
    let exchange = guest
        .handle(to_request(r), &backend)
        .map_err(|e| format!("host error: {e}"))?;
    if let Some(error) = &exchange.error {
        return Err(format!("the guest failed: {error}"));
    }
    if exchange.response.status != 200 {
        return Err(format!(
            "status {} (want the backend's 200): {}",
            exchange.response.status,
            exchange.response.body_text()
        ));
    }
    let forwarded = exchange
        .backend_request
        .as_ref()
        .ok_or("the request never reached the backend")?;

    let cohorts = forwarded.headers.get_all_bytes(COHORT_HEADER);
    let cohort = match cohorts.as_slice() {
        [one] if cfg.is_variant(one) => one.to_vec(),
        _ => {
            return Err(format!(
                "{COHORT_HEADER} must be exactly one variant, got {:?}",
                cohorts
                    .iter()
                    .map(|v| String::from_utf8_lossy(v))
                    .collect::<Vec<_>>()
            ));
        }
    };

    let cookie_lines = forwarded.headers.get_all_bytes("Cookie");
    checks::check_forwarded_cookies(cfg, &cookie_lines, &cohort)?;

    let set_cookies = exchange.response.headers.get_all_bytes("Set-Cookie");
    let (set_cohort, visitor) = checks::check_set_cookies(cfg, &set_cookies, &cohort)?;

    let reason = match cfg.debug_header {
        None => None,
        Some(name) => match exchange.response.headers.get_all_bytes(name).as_slice() {
            [one] => Some(checks::check_debug_header(one, &cohort)?.to_owned()),
            other => return Err(format!("{name} must appear once, got {}", other.len())),
        },
    };
    if reason.as_deref() == Some("excluded") && !set_cookies.is_empty() {
        return Err("an excluded request got a Set-Cookie".into());
    }

    Ok(Outcome {
        cohort,
        reason,
        set_cohort,
        visitor: visitor.map(<[u8]>::to_vec),
        cookie_lines: cookie_lines.iter().map(|l| l.to_vec()).collect(),
    })
}

/// The same client's next request after `outcome`, as a browser sends it:
/// each cookie the response set (the cohort, a new visitor id) replaces
/// every pair of that name, the other pairs kept in order in one `Cookie`
/// line; everything else unchanged. Built from the pairs the checks split
/// (`checks::cookie_pairs`), not from the plugin's cookie code.
pub fn next_request(cfg: &FuzzConfig, r: &FuzzRequest, outcome: &Outcome) -> FuzzRequest {
    let seen = as_seen_by_guest(r);
    let mut set: Vec<(&[u8], &[u8])> = Vec::new();
    if outcome.set_cohort {
        set.push((cfg.cookie.as_bytes(), &outcome.cohort));
    }
    if let (Some(name), Some(id)) = (cfg.visitor, &outcome.visitor) {
        set.push((name.as_bytes(), id));
    }
    if set.is_empty() {
        return seen;
    }
    let lines = seen.header_values(b"Cookie");
    let kept = checks::cookie_pairs(&lines)
        .into_iter()
        .filter(|(n, _)| !set.iter().any(|(s, _)| s == n));
    let mut line = Vec::new();
    for (name, value) in kept.chain(set.iter().copied()) {
        if !line.is_empty() {
            line.extend_from_slice(b"; ");
        }
        line.extend_from_slice(name);
        line.push(b'=');
        line.extend_from_slice(value);
    }
    let mut next = seen;
    next.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(b"Cookie"));
    next.headers.push((b"Cookie".to_vec(), line));
    next
}

/// [`run`], then the same client's [`next_request`]: the returning visitor
/// must keep the cohort and be sent no cookie again. A single request can
/// never show a bug of two (a holder moved on one request and again on the
/// next: `fuzz/corpus/*/reevaluate-rollback-moved-twice`).
pub fn run_returning(
    guest: &Guest,
    cfg: &FuzzConfig,
    r: &FuzzRequest,
) -> Result<(Outcome, Outcome), String> {
    let first = run(guest, cfg, r)?;
    let next = next_request(cfg, r, &first);
    let second = run(guest, cfg, &next).map_err(|e| format!("the next request: {e}"))?;
    if second.cohort != first.cohort {
        return Err(format!(
            "the next request moved from {:?} ({:?}) to {:?} ({:?})",
            String::from_utf8_lossy(&first.cohort),
            first.reason,
            String::from_utf8_lossy(&second.cohort),
            second.reason
        ));
    }
    if second.set_cohort || second.visitor.is_some() {
        return Err(format!(
            "the next request is sent a cookie again ({:?}, after {:?})",
            second.reason, first.reason
        ));
    }
    Ok((first, second))
}
