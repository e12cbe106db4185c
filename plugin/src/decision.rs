//! The decision: from a request to a cohort and what to write.
//!
//! Precedence, first match wins:
//! 1. **excluded** request (path, method or user agent): the cookie's cohort
//!    if valid, else the default; never a `Set-Cookie`.
//! 2. **override** (header or query parameter, optionally only from
//!    `allowFrom` ranges): a variant name, `always` (the first non-default
//!    variant) or `never` (the default); a query override also sets the cookie.
//! 3. **cookie**: a known variant is honoured (drained ones too); a disabled
//!    one sends its holder to the default (`rollback`); with
//!    `stickiness: reevaluate` an active one is re-bucketed, and so is a
//!    disabled one's holder when a stable key is present (`rollback` to
//!    their bucket, where their next request would take them anyway).
//! 4. **bucket**: weighted rendezvous over the active variants, keyed by the
//!    first configured key source present, else the visitor-id cookie, else
//!    a freshly generated visitor id when ids are kept (`visitorCookie`);
//!    without one, a one-off weighted draw.
//!
//! [`decide`] is that list: one function per rule (`excluded`,
//! `overridden`, `cookie_holder`, `bucketed`), tried in order, after one
//! shortcut that changes no outcome (`kept_holder`). The request is read
//! through [`RequestView`] so that the adapter reads from the host only what
//! a decision needs, each value once: a returning visitor without an
//! override configured costs one header read. [`Decision::writes`] is
//! every write that follows, so the adapter only performs them.

use std::cell::RefCell;
use std::fmt;

use crate::bucket::{self, AssignmentHash, Candidate, Draw, IdGenerator};
use crate::config::{Config, KeySource, State, Stickiness};
use crate::cookie::{self, Lookup};
use crate::net;
use crate::scan::{find_byte, same_bytes};

pub mod quick;

/// The request as the decision reads it. Each call may be a host call, so
/// the decision calls each at most once and only when it needs it.
pub trait RequestView {
    /// A value read. `Into<Vec<u8>>` gives its buffer up: a new visitor's
    /// Cookie line is extended where it was read rather than copied.
    type Bytes: AsRef<[u8]> + Into<Vec<u8>>;
    /// All values of a header (names are case-insensitive).
    fn header_values(&mut self, name: &str) -> Values<Self::Bytes>;
    /// [`header_values`](Self::header_values) for a name held as bytes (the
    /// quick path keeps its names inline as bytes; they are always ASCII).
    fn header_values_named(&mut self, name: &[u8]) -> Values<Self::Bytes> {
        match std::str::from_utf8(name) {
            Ok(name) => self.header_values(name),
            Err(_) => Values::None,
        }
    }
    /// The `Cookie` lines and, when this view has searched its one line
    /// for the cohort cookie already, what it found there.
    fn cookie_lines(&mut self) -> (Values<Self::Bytes>, Option<cookie::Found>) {
        (self.header_values("Cookie"), None)
    }
    fn method(&mut self) -> Self::Bytes;
    /// The request target: path and query, as the client sent it.
    fn uri(&mut self) -> Self::Bytes;
    /// The client's address, `ip:port`.
    fn source_addr(&mut self) -> Self::Bytes;
}

/// The values of one header. Usually there is one (Go's HTTP/2 server joins
/// `cookie` fields into one line too), and then no list is allocated; a
/// header that is absent (an override header, on most requests) has none,
/// and dropping it costs no call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values<B> {
    None,
    One(B),
    List(Vec<B>),
}

impl<B> Values<B> {
    pub fn as_slice(&self) -> &[B] {
        match self {
            Values::None => &[],
            Values::One(value) => std::slice::from_ref(value),
            Values::List(values) => values,
        }
    }
}

impl<B> From<Vec<B>> for Values<B> {
    fn from(mut values: Vec<B>) -> Self {
        if values.is_empty() {
            return Values::None;
        }
        if values.len() == 1
            && let Some(only) = values.pop()
        {
            return Values::One(only);
        }
        Values::List(values)
    }
}

impl<B> std::ops::Deref for Values<B> {
    type Target = [B];
    fn deref(&self) -> &[B] {
        self.as_slice()
    }
}

/// Why a request got its cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Excluded,
    Override,
    Cookie,
    Reevaluated,
    Rollback,
    /// A new visitor, bucketed.
    Assigned,
    /// The cookie named no variant (unknown, removed or malformed): bucketed.
    Reassigned,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Excluded => "excluded",
            Reason::Override => "override",
            Reason::Cookie => "cookie",
            Reason::Reevaluated => "reevaluated",
            Reason::Rollback => "rollback",
            Reason::Assigned => "assigned",
            Reason::Reassigned => "reassigned",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which key a bucketed decision used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    None,
    /// `keys[i]` of the configuration.
    Configured(usize),
    VisitorId,
    NewVisitorId,
    /// A new visitor with no key kept (no `visitorCookie`): a one-off draw.
    OneOff,
}

/// The outcome: the cohort and every write it calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub variant: usize,
    pub reason: Reason,
    pub key: KeyUsed,
    /// The new `Cookie` request header, when the request's cookies do not
    /// already say exactly this cohort (and sticky child).
    pub cookie_header: Option<Vec<u8>>,
    /// Whether to add the cohort's `Set-Cookie` to the response.
    pub set_cohort_cookie: bool,
    /// `Set-Cookie` for a newly generated visitor id.
    pub visitor_set_cookie: Option<Vec<u8>>,
}

/// Every write a decision calls for, in the order the adapter makes them:
/// the request's headers before next (so routers and services after
/// Cohort see them), then the response's (written before next too: they
/// go straight to Traefik's response writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writes<'d> {
    /// The request's new `Cookie` header (`set`: it replaces every line).
    pub request_cookie: Option<&'d [u8]>,
    /// The cohort request header and its value (`set`: a client's copy
    /// never survives).
    pub cohort_header: Option<(&'d str, &'d str)>,
    /// `Set-Cookie` values to add (never set: Traefik's own sticky
    /// `Set-Cookie` shares the header), in order: the cohort, the visitor id.
    pub set_cookies: [Option<&'d [u8]>; 2],
    /// The debug response header and its value, `v2; reason=cookie`.
    pub debug_header: Option<(&'d str, String)>,
}

impl Decision {
    /// What to write for this decision under `config`.
    #[inline]
    pub fn writes<'d>(&'d self, config: &'d Config) -> Writes<'d> {
        let variant = &config.variants[self.variant];
        Writes {
            request_cookie: self.cookie_header.as_deref(),
            cohort_header: config
                .header
                .as_deref()
                .map(|header| (header, variant.name.as_str())),
            set_cookies: [
                self.set_cohort_cookie
                    .then_some(variant.set_cookie.as_slice()),
                self.visitor_set_cookie.as_deref(),
            ],
            debug_header: config
                .debug_header
                .as_deref()
                .map(|header| (header, format!("{}; reason={}", variant.name, self.reason))),
        }
    }

    /// One line for the debug log.
    pub fn describe(&self, config: &Config) -> String {
        let key = match self.key {
            KeyUsed::None => String::new(),
            KeyUsed::Configured(i) => format!(" key=keys[{i}]"),
            KeyUsed::VisitorId => " key=visitor-id".into(),
            KeyUsed::NewVisitorId => " key=visitor-id(new)".into(),
            KeyUsed::OneOff => " key=one-off".into(),
        };
        format!(
            "cohort={} reason={}{key}{}",
            config.variants[self.variant].name,
            self.reason,
            if self.set_cohort_cookie {
                " set-cookie"
            } else {
                ""
            }
        )
    }
}

/// The request as one decision reads it: the address and the URI, which
/// several rules may ask for, are read from the host once.
struct Reads<'r, R: RequestView> {
    request: &'r mut R,
    uri: Option<R::Bytes>,
    source_addr: Option<R::Bytes>,
    /// The override, once asked: the shortcut and rule 2 both ask.
    forced: Option<Option<(usize, bool)>>,
}

impl<R: RequestView> Reads<'_, R> {
    fn header_values(&mut self, name: &str) -> Values<R::Bytes> {
        self.request.header_values(name)
    }
    fn method(&mut self) -> R::Bytes {
        self.request.method()
    }
    fn uri(&mut self) -> &[u8] {
        let request = &mut *self.request;
        let uri: &R::Bytes = self.uri.get_or_insert_with(|| request.uri());
        uri.as_ref()
    }
    fn source_addr(&mut self) -> &[u8] {
        let request = &mut *self.request;
        let addr: &R::Bytes = self
            .source_addr
            .get_or_insert_with(|| request.source_addr());
        addr.as_ref()
    }
    /// The forced variant and whether to persist it ([`override_choice`]),
    /// read from the request once.
    fn forced(&mut self, config: &Config) -> Option<(usize, bool)> {
        if let Some(forced) = self.forced {
            return forced;
        }
        let forced = override_choice(config, self);
        self.forced = Some(forced);
        forced
    }
}

/// How much of each `Cookie` line goes into a new visitor id: with one line
/// the id's input then fits two SHA-256 blocks.
const ID_COOKIE_BYTES: usize = 32;

/// What the request's `Cookie` lines say, read once per decision.
struct Cookies<'a, B> {
    lines: &'a [B],
    /// The cohort cookie's pairs.
    held: Lookup<'a>,
    /// The variant the first cohort pair names, if it names one.
    variant: Option<usize>,
}

/// The cohort one rule decided, and the `Set-Cookie`s it calls for.
struct Outcome {
    variant: usize,
    reason: Reason,
    key: KeyUsed,
    set_cohort_cookie: bool,
    visitor_set_cookie: Option<Vec<u8>>,
}

impl Outcome {
    /// A cohort with no key and no `Set-Cookie`.
    fn plain(variant: usize, reason: Reason) -> Outcome {
        Outcome {
            variant,
            reason,
            key: KeyUsed::None,
            set_cohort_cookie: false,
            visitor_set_cookie: None,
        }
    }
}

/// Decides the cohort of one request: the first rule that applies, in the
/// precedence of the module's documentation. `ids` is borrowed only to
/// generate a visitor id or draw: a returning visitor's request leaves it
/// alone (and its line of the instance's memory cold).
pub fn decide<R: RequestView>(
    config: &Config,
    request: &mut R,
    ids: &RefCell<IdGenerator>,
    now_nanos: impl FnOnce() -> u128,
) -> Decision {
    let request = &mut Reads {
        request,
        uri: None,
        source_addr: None,
        forced: None,
    };
    let (lines, found) = request.request.cookie_lines();
    let held = match (found, &lines) {
        (Some(found), Values::One(line)) => found.within(line.as_ref()),
        _ => None,
    }
    .unwrap_or_else(|| cookie::lookup_token(&lines, config.cookie_name.as_bytes()));
    let cookies = Cookies {
        lines: &lines,
        held,
        variant: held.first().and_then(|v| config.variant_named(v)),
    };

    let outcome = kept_holder(config, request, &cookies)
        .or_else(|| excluded(config, request, &cookies))
        .or_else(|| overridden(config, request, &cookies))
        .or_else(|| cookie_holder(config, request, &cookies))
        .unwrap_or_else(|| bucketed(config, request, &cookies, ids, now_nanos));

    let cookie_header =
        cookie_plan(config, outcome.variant, cookies.lines, cookies.held).map(|p| p.apply(lines));
    Decision {
        variant: outcome.variant,
        reason: outcome.reason,
        key: outcome.key,
        cookie_header,
        set_cohort_cookie: outcome.set_cohort_cookie,
        visitor_set_cookie: outcome.visitor_set_cookie,
    }
}

/// Not a rule but a shortcut that changes no outcome: a holder who keeps
/// their cohort gets it whether or not the request is excluded (exclusion
/// only suppresses writes and overrides, and a kept cohort writes nothing),
/// so only an override can change it. The exclusion rules are then read
/// only when an override is present, or when the reason itself is shown.
fn kept_holder<R: RequestView, B>(
    config: &Config,
    request: &mut Reads<'_, R>,
    cookies: &Cookies<'_, B>,
) -> Option<Outcome> {
    let i = cookies.variant.filter(|&i| keeps_cohort(config, i))?;
    if config.reports_reason() || request.forced(config).is_some() {
        return None;
    }
    Some(Outcome::plain(i, Reason::Cookie))
}

/// 1. An excluded request keeps a valid cookie's cohort, else gets the
///    default, and never a `Set-Cookie`.
fn excluded<R: RequestView, B>(
    config: &Config,
    request: &mut Reads<'_, R>,
    cookies: &Cookies<'_, B>,
) -> Option<Outcome> {
    if !is_excluded(config, request) {
        return None;
    }
    let variant = match cookies.variant {
        Some(i) if config.variants[i].state != State::Disabled => i,
        _ => config.default,
    };
    Some(Outcome::plain(variant, Reason::Excluded))
}

/// 2. A valid override from an allowed address; a query override also
///    sets the cookie.
fn overridden<R: RequestView, B: AsRef<[u8]>>(
    config: &Config,
    request: &mut Reads<'_, R>,
    cookies: &Cookies<'_, B>,
) -> Option<Outcome> {
    let (variant, persist) = request.forced(config)?;
    let name = config.variants[variant].name.as_bytes();
    let held = cookies.held;
    Some(Outcome {
        set_cohort_cookie: persist && held.first() != Some(name),
        ..Outcome::plain(variant, Reason::Override)
    })
}

/// 3. A cookie naming a variant: honoured (drained ones too); a disabled
///    one's holder goes to the default; with `reevaluate` an active (or
///    disabled) one's holder with a stable key follows their bucket.
fn cookie_holder<R: RequestView, B: AsRef<[u8]>>(
    config: &Config,
    request: &mut Reads<'_, R>,
    cookies: &Cookies<'_, B>,
) -> Option<Outcome> {
    let i = cookies.variant?;
    let disabled = config.variants[i].state == State::Disabled;
    // With `reevaluate`, holders of an active variant follow their bucket,
    // and so do a disabled one's (straight there: the default first would
    // move them twice).
    let rebucket =
        config.stickiness == Stickiness::Reevaluate && config.variants[i].state != State::Drained;
    let Some((k, used)) = rebucket
        .then(|| stable_key(config, request, cookies.lines))
        .flatten()
    else {
        return Some(if disabled {
            Outcome {
                set_cohort_cookie: true,
                ..Outcome::plain(config.default, Reason::Rollback)
            }
        } else {
            Outcome::plain(i, Reason::Cookie)
        });
    };
    let b = bucket_of(config, &k);
    let reason = if disabled {
        Reason::Rollback
    } else {
        Reason::Reevaluated
    };
    let held = cookies.held;
    // A disabled `i` is never a bucket: always `b != i`.
    let write = b != i || !held.is_exactly(config.variants[b].name.as_bytes());
    Some(Outcome {
        key: used,
        set_cohort_cookie: write,
        ..Outcome::plain(b, reason)
    })
}

/// 4. Everyone else: bucketed (`assigned`, or `reassigned` when the cookie
///    named no variant).
fn bucketed<R: RequestView, B: AsRef<[u8]>>(
    config: &Config,
    request: &mut Reads<'_, R>,
    cookies: &Cookies<'_, B>,
    ids: &RefCell<IdGenerator>,
    now_nanos: impl FnOnce() -> u128,
) -> Outcome {
    let (variant, key, visitor_set_cookie) =
        bucket_new_visitor(config, request, cookies.lines, ids, now_nanos);
    let reason = if cookies.held == Lookup::Missing {
        Reason::Assigned
    } else {
        Reason::Reassigned
    };
    Outcome {
        key,
        set_cohort_cookie: true,
        visitor_set_cookie,
        ..Outcome::plain(variant, reason)
    }
}

/// Whether a holder of variant `i` keeps it, absent an override: a drained
/// or active variant's holder under `keep`, or a drained one's under
/// `reevaluate` (active holders are re-bucketed there, disabled ones move).
fn keeps_cohort(config: &Config, i: usize) -> bool {
    match config.variants[i].state {
        State::Disabled => false,
        State::Drained => true,
        State::Active => config.stickiness == Stickiness::Keep,
    }
}

/// The active variants, as the draw sees them.
fn active(config: &Config) -> impl Iterator<Item = Candidate<'_>> + Clone {
    config
        .variants
        .iter()
        .enumerate()
        .filter(|(_, v)| v.state == State::Active)
        .map(|(index, v)| Candidate {
            index,
            weight: v.weight,
            draw: match config.assignment_hash {
                AssignmentHash::Sha256 => Draw::Sha256 {
                    seed: config.seed.as_bytes(),
                    variant: &v.name,
                },
                AssignmentHash::SipHash => Draw::SipHash(v.sip_key),
            },
        })
}

/// The variant a key falls into among the active variants; the default
/// when no active variant has weight.
pub fn bucket_of(config: &Config, key: &[u8]) -> usize {
    bucket::assign(key, active(config)).unwrap_or(config.default)
}

/// A visitor without a cohort: bucketed by a stable key if the request has
/// one, else by a new visitor id kept in a cookie (with the `Set-Cookie`),
/// else, when no id is kept, by a one-off draw.
fn bucket_new_visitor<R: RequestView, L: AsRef<[u8]>>(
    config: &Config,
    request: &mut Reads<'_, R>,
    lines: &[L],
    ids: &RefCell<IdGenerator>,
    now_nanos: impl FnOnce() -> u128,
) -> (usize, KeyUsed, Option<Vec<u8>>) {
    if let Some((key, used)) = stable_key(config, request, lines) {
        return (bucket_of(config, &key), used, None);
    }
    let Some(visitor_cookie) = &config.visitor_cookie else {
        // Nobody will read a key back: no hashing, no cookie.
        let variant =
            bucket::pick(ids.borrow_mut().next_draw(), active(config)).unwrap_or(config.default);
        return (variant, KeyUsed::OneOff, None);
    };
    // The start of each Cookie line, not all of it: the id's inputs only
    // need to differ between requests (the clock and the chained state
    // already do), and SHA-256 costs the guest some 70 instructions a byte.
    let data: Vec<&[u8]> = lines
        .iter()
        .map(|line| {
            let line = line.as_ref();
            &line[..line.len().min(ID_COOKIE_BYTES)]
        })
        .collect();
    let id = ids.borrow_mut().next_id(now_nanos(), &data);
    let set_cookie = cookie::set_cookie(visitor_cookie, id.as_bytes(), &config.cookie_suffix);
    (
        bucket_of(config, id.as_bytes()),
        KeyUsed::NewVisitorId,
        Some(set_cookie),
    )
}

/// How the request's `Cookie` header is to be rewritten to name exactly
/// this cohort (and its weighted sticky child): the pairs to put in, and
/// whether none of their names is there yet.
struct CookiePlan<'c> {
    /// A fixed pair of slots, not a Vec: every request passes here, and a
    /// returning visitor should allocate nothing.
    replacements: [(&'c [u8], Option<&'c [u8]>); 2],
    used: usize,
    absent: bool,
}

impl CookiePlan<'_> {
    /// The new header value. A single line whose pairs all stay is
    /// extended in its own buffer ([`cookie::append_absent`]).
    fn apply<B: AsRef<[u8]> + Into<Vec<u8>>>(&self, lines: Values<B>) -> Vec<u8> {
        let replacements = &self.replacements[..self.used];
        match (self.absent, lines) {
            (true, Values::One(line)) => cookie::append_absent(line.into(), replacements),
            (true, lines) => cookie::rewrite_absent(&lines, replacements),
            (false, lines) => cookie::rewrite(&lines, replacements),
        }
    }
}

/// The rewrite the request's `Cookie` header needs to name exactly this
/// cohort (and its weighted sticky child), or `None` when it already does.
fn cookie_plan<'c, L: AsRef<[u8]>>(
    config: &'c Config,
    variant: usize,
    lines: &[L],
    held: Lookup,
) -> Option<CookiePlan<'c>> {
    let name = config.variants[variant].name.as_bytes();
    let cohort_pair = (config.cookie_name.as_bytes(), Some(name));
    let mut dirty = !held.is_exactly(name);
    // Whether no pair to replace is there (a new visitor's usual cookies).
    let mut absent = held == Lookup::Missing;
    let (replacements, used) = match &config.weighted_sticky_cookie {
        None => ([cohort_pair, cohort_pair], 1),
        Some(sticky) => {
            let wanted = config.variants[variant]
                .sticky_value
                .as_deref()
                .map(str::as_bytes);
            let found = cookie::lookup_token(lines, sticky.as_bytes());
            absent &= found == Lookup::Missing;
            dirty |= match wanted {
                Some(value) => !found.is_exactly(value),
                // A variant without a weighted child: drop any (forged) sticky pair.
                None => found != Lookup::Missing,
            };
            ([cohort_pair, (sticky.as_bytes(), wanted)], 2)
        }
    };
    dirty.then_some(CookiePlan {
        replacements,
        used,
        absent,
    })
}

fn is_excluded<R: RequestView>(config: &Config, request: &mut Reads<'_, R>) -> bool {
    let ex = &config.exclude;
    if ex.is_empty() {
        return false;
    }
    if !ex.methods.is_empty() {
        let method = request.method();
        let method = String::from_utf8_lossy(method.as_ref());
        if ex.methods.iter().any(|m| m.eq_ignore_ascii_case(&method)) {
            return true;
        }
    }
    if !ex.paths.is_empty() {
        let path = path_of(request.uri());
        if ex.paths.iter().any(|p| p.is_match(path)) {
            return true;
        }
    }
    if !ex.user_agents.is_empty() {
        for agent in request.header_values("User-Agent").iter() {
            if ex.user_agents.iter().any(|p| p.is_match(agent.as_ref())) {
                return true;
            }
        }
    }
    false
}

/// The forced variant and whether to persist it, if the request carries a
/// valid override from an allowed address.
fn override_choice<R: RequestView>(
    config: &Config,
    request: &mut Reads<'_, R>,
) -> Option<(usize, bool)> {
    let o = &config.overrides;
    let mut wanted: Option<(Vec<u8>, bool)> = None;
    if let Some(header) = &o.header {
        wanted = request
            .header_values(header)
            .first()
            .map(|v| (v.as_ref().trim_ascii().to_vec(), false));
    }
    if wanted.is_none()
        && let Some(param) = &o.query
    {
        let uri = request.uri();
        wanted = query_param(uri, param.as_bytes()).map(|v| (v.to_vec(), true));
    }
    let (value, persist) = wanted?;
    let variant = resolve_override(config, &value)?;
    if !o.allow_from.is_empty() {
        let addr = request.source_addr();
        let ip = net::source_ip(addr)?;
        if !o.allow_from.iter().any(|range| range.contains(ip)) {
            return None;
        }
    }
    Some((variant, persist))
}

fn resolve_override(config: &Config, value: &[u8]) -> Option<usize> {
    let variant = if value.eq_ignore_ascii_case(b"always") {
        config
            .variants
            .iter()
            .enumerate()
            .position(|(i, v)| i != config.default && v.state != State::Disabled)?
    } else if value.eq_ignore_ascii_case(b"never") {
        config.default
    } else {
        config.variant_named(value)?
    };
    (config.variants[variant].state != State::Disabled).then_some(variant)
}

/// The first configured key source present in the request, else the
/// visitor-id cookie. Never generates.
fn stable_key<R: RequestView, L: AsRef<[u8]>>(
    config: &Config,
    request: &mut Reads<'_, R>,
    lines: &[L],
) -> Option<(Vec<u8>, KeyUsed)> {
    for (i, source) in config.keys.iter().enumerate() {
        let key = match source {
            KeySource::Header(name) => request.header_values(name).iter().find_map(|v| {
                let v = v.as_ref().trim_ascii();
                (!v.is_empty()).then(|| v.to_vec())
            }),
            KeySource::Cookie(name) => cookie::lookup_token(lines, name.as_bytes())
                .first()
                .filter(|v| !v.is_empty())
                .map(<[u8]>::to_vec),
            KeySource::ClientIp => {
                let addr = request.source_addr();
                net::source_ip(addr).map(|ip| ip.to_string().into_bytes())
            }
        };
        if let Some(key) = key {
            return Some((key, KeyUsed::Configured(i)));
        }
    }
    let visitor_cookie = config.visitor_cookie.as_ref()?;
    cookie::lookup_token(lines, visitor_cookie.as_bytes())
        .first()
        .filter(|v| is_visitor_id(v))
        .map(|v| (v.to_vec(), KeyUsed::VisitorId))
}

/// Visitor ids are 32 hex digits; anything else is treated as absent so a
/// forged value cannot choose its bucket.
fn is_visitor_id(v: &[u8]) -> bool {
    v.len() == 32 && v.iter().all(u8::is_ascii_hexdigit)
}

/// The path of a request target, for `origin-form` (`/a?b`) and
/// `absolute-form` (`http://host/a?b`) alike. Only a target that does not
/// start with `/` is looked at for a scheme: `/login?next=https://x/` is
/// origin-form, whatever its query holds.
fn path_of(uri: &[u8]) -> &[u8] {
    let mut rest = uri;
    if rest.first() != Some(&b'/')
        && let Some(scheme_end) = find(rest, b"://")
    {
        rest = &rest[scheme_end + 3..];
        // The authority ends at the first `/`, `?` or `#`.
        let authority = rest
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        rest = match rest.get(authority) {
            Some(b'/') => &rest[authority..],
            _ => b"/",
        };
    }
    // Nor a `#fragment`: Go's server never passes one on, but a target is
    // the client's.
    until(until(rest, b'?'), b'#')
}

/// `s` up to the first `byte`, or all of it.
#[inline]
fn until(s: &[u8], byte: u8) -> &[u8] {
    find_byte(s, byte).map_or(s, |end| &s[..end])
}

/// The raw value of the first query parameter named `name` (a plain
/// parameter name: no `=`, `&` or `#`, as the configuration requires),
/// from pair to pair: a pair is looked at only where it starts, and the
/// next `&` is found a word at a time.
pub(crate) fn query_param<'a>(uri: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let start = find_byte(uri, b'?')? + 1;
    let mut rest = until(&uri[start..], b'#');
    // Each round drops a pair and its `&`: a bound, not a limit.
    for _ in 0..=rest.len() {
        let end = find_byte(rest, b'&');
        let pair = end.map_or(rest, |e| &rest[..e]);
        // Compared here, not by `strip_prefix`: its `memcmp` call costs
        // more than these few bytes.
        if let Some(after) = pair
            .get(..name.len())
            .filter(|key| same_bytes(key, name))
            .and_then(|_| pair.get(name.len()..))
        {
            // The key ends at the pair's first `=`, which `name` never holds.
            match after.split_first() {
                None => return Some(after),
                Some((b'=', value)) => return Some(value),
                Some(_) => {}
            }
        }
        rest = &rest[end? + 1..];
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod write_tests {
    use super::*;
    use serde_json::json;

    fn config(value: serde_json::Value) -> Config {
        Config::from_value(&value).expect("valid")
    }

    fn decision(variant: usize, reason: Reason) -> Decision {
        Decision {
            variant,
            reason,
            key: KeyUsed::None,
            cookie_header: None,
            set_cohort_cookie: false,
            visitor_set_cookie: None,
        }
    }

    #[test]
    fn a_returning_visitor_writes_only_the_cohort_header() {
        let c = config(json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 10}]}));
        let d = decision(1, Reason::Cookie);
        assert_eq!(
            d.writes(&c),
            Writes {
                request_cookie: None,
                cohort_header: Some(("X-Canary", "v2")),
                set_cookies: [None, None],
                debug_header: None,
            }
        );
        // `header: ""` turns the cohort header off.
        let quiet = config(json!({
            "header": "",
            "variants": [{"name": "v1"}, {"name": "v2", "weight": 10}],
        }));
        assert_eq!(d.writes(&quiet).cohort_header, None);
    }

    #[test]
    fn a_new_visitor_writes_the_cookie_the_set_cookies_and_the_debug_header() {
        let c = config(json!({
            "header": "X-Cohort",
            "debugHeader": "X-Cohort-Debug",
            "variants": [{"name": "stable"}, {"name": "canary", "weight": 10}],
        }));
        let d = Decision {
            cookie_header: Some(b"a=1; canary=canary".to_vec()),
            set_cohort_cookie: true,
            visitor_set_cookie: Some(b"cohort_id=0123".to_vec()),
            ..decision(1, Reason::Assigned)
        };
        let w = d.writes(&c);
        assert_eq!(w.request_cookie, Some(b"a=1; canary=canary".as_slice()));
        assert_eq!(w.cohort_header, Some(("X-Cohort", "canary")));
        assert_eq!(
            w.set_cookies,
            [
                Some(c.variants[1].set_cookie.as_slice()),
                Some(b"cohort_id=0123".as_slice())
            ]
        );
        assert!(String::from_utf8_lossy(&c.variants[1].set_cookie).starts_with("canary=canary;"));
        assert_eq!(
            w.debug_header,
            Some(("X-Cohort-Debug", "canary; reason=assigned".to_owned()))
        );
    }
}
