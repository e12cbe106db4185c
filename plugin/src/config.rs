//! Configuration in two stages: the JSON Traefik hands the guest (every
//! scalar a string, `"10"`, `"true"`, `"12.500000"`) or plain JSON types, walked
//! field by field into a validated, immutable [`Config`]. Every problem is a
//! [`ConfigError`] naming the field; nothing falls back to a default when a
//! value is present but does not parse.

use std::fmt;

use serde_json::{Map, Value};

use crate::bucket::{self, AssignmentHash, FULL_WEIGHT, StickyHash};
use crate::cookie::{self, Attributes, SameSite};
use crate::net::Cidr;
use crate::pattern::Pattern;
use crate::scan::same_bytes;

/// A configuration problem: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid Cohort configuration: {}: {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

fn error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// What happens to a variant's cookie holders and new visitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Takes new visitors by weight and keeps its holders.
    Active,
    /// Takes no new visitors; its cookie holders stay.
    Drained,
    /// Takes nobody: holders go to the default variant, cookie rewritten.
    Disabled,
}

/// `repr(C)`, what a returning visitor's request reads first (the name, the
/// state, the weighted child's sticky value): they share a line.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Variant {
    pub name: String,
    /// Traefik's weighted sticky-cookie value selecting this variant's child:
    /// `stickyValue`, or `service` under `weightedSticky.hash`.
    pub sticky_value: Option<String>,
    pub state: State,
    /// Basis points (10 000 = 100 %).
    pub weight: u32,
    /// The weighted child's name as configured (`variants[].service`).
    pub service: Option<String>,
    /// The full `Set-Cookie` value that assigns this variant, built at load.
    pub set_cookie: Vec<u8>,
    /// This variant's key under `assignmentHash: siphash`, made at load
    /// (zero under `sha256`, which does not use it).
    pub sip_key: [u64; 2],
}

/// Where a stable assignment key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Header(String),
    Cookie(String),
    /// The client address (IP only; the port changes per connection).
    ClientIp,
}

/// What cookie holders get when weights change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stickiness {
    /// A valid cookie is honoured: nobody moves mid-session.
    Keep,
    /// Holders of an active variant are re-bucketed by the current weights
    /// (monotonic: a ramp moves only the users it must).
    Reevaluate,
}

#[derive(Debug, Clone, Default)]
pub struct Override {
    pub header: Option<String>,
    pub query: Option<String>,
    /// Empty means anyone may override.
    pub allow_from: Vec<Cidr>,
}

#[derive(Debug, Clone, Default)]
pub struct Exclude {
    pub paths: Vec<Pattern>,
    /// Upper-case method names.
    pub methods: Vec<String>,
    pub user_agents: Vec<Pattern>,
}

impl Exclude {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.methods.is_empty() && self.user_agents.is_empty()
    }
}

/// The validated configuration, built once per instance.
///
/// `repr(C)`, the fields a returning visitor's request reads first: every
/// request meets its instance cold in the CPU's caches (Traefik pools
/// instances per connection), and these then share a line or two.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Config {
    pub variants: Vec<Variant>,
    pub cookie_name: String,
    pub overrides: Override,
    pub header: Option<String>,
    pub debug_header: Option<String>,
    /// Name of the weighted TraefikService's sticky cookie.
    pub weighted_sticky_cookie: Option<String>,
    pub default: usize,
    pub stickiness: Stickiness,
    /// Log every decision at debug level. Off by default: Traefik's host
    /// answers "enabled" for every level, so the guest cannot ask.
    pub log_decisions: bool,
    /// The formula behind every keyed assignment (`assignmentHash`).
    pub assignment_hash: AssignmentHash,
    pub seed: String,
    pub attributes: Attributes,
    /// `attributes` rendered as a `Set-Cookie` suffix.
    pub cookie_suffix: String,
    pub keys: Vec<KeySource>,
    /// The cookie keeping a generated visitor id; `None`: ids are not kept.
    pub visitor_cookie: Option<String>,
    /// How the Traefik in front writes weighted sticky values.
    pub sticky_hash: StickyHash,
    pub exclude: Exclude,
}

impl Config {
    /// Parses the bytes `get_config` returned. Empty input means `{}`.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
            return Config::from_value(&Value::Object(Map::new()));
        }
        let value: Value = serde_json::from_slice(trimmed)
            .map_err(|e| error("(root)", format!("not valid JSON: {e}")))?;
        Config::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Config, ConfigError> {
        let mut root = Obj::new("", value)?;
        let seed = match root.get("seed") {
            Some(v) => string("seed", v)?,
            None => "cohort".to_owned(),
        };
        let assignment_hash = match root.get("assignmentHash") {
            None => AssignmentHash::default(),
            Some(v) => parse_assignment_hash(v)?,
        };

        let mut cookie = match root.get("cookie") {
            Some(v) => Obj::new("cookie", v)?,
            None => Obj::empty("cookie"),
        };
        let cookie_name = cookie.token("name")?.unwrap_or_else(|| "canary".into());
        let attributes = parse_attributes(&mut cookie, &cookie_name)?;
        cookie.finish()?;
        let cookie_suffix = attributes.suffix();

        let variants_value = root.get("variants");
        let (mut variants, default) = parse_variants(variants_value)?;
        for v in &mut variants {
            v.set_cookie = cookie::set_cookie(&cookie_name, v.name.as_bytes(), &cookie_suffix);
            // One SHA-256 per variant at start-up, for `siphash` only.
            if assignment_hash == AssignmentHash::SipHash {
                v.sip_key = bucket::sip_key(seed.as_bytes(), &v.name);
            }
        }

        let header = root.header_name("header", Some("X-Canary"))?;
        let keys = match root.get("keys") {
            Some(v) => list("keys", v)?
                .iter()
                .enumerate()
                .map(|(i, s)| parse_key(&format!("keys[{i}]"), s))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let stickiness = match root.get("stickiness") {
            None => Stickiness::Keep,
            Some(v) => match string("stickiness", v)?.to_ascii_lowercase().as_str() {
                "keep" => Stickiness::Keep,
                "reevaluate" => Stickiness::Reevaluate,
                other => {
                    return Err(error(
                        "stickiness",
                        format!("{other:?} is not one of keep, reevaluate"),
                    ));
                }
            },
        };

        // Only `reevaluate` reads a generated visitor id back (to re-bucket a
        // holder); under `keep` the cohort cookie alone keeps a visitor, so
        // writing the id would cost every new visitor a second Set-Cookie.
        let defaulted = root.get("visitorCookie").is_none();
        let visitor_cookie = if defaulted {
            (stickiness == Stickiness::Reevaluate).then(|| "cohort_id".to_owned())
        } else {
            root.token("visitorCookie")?
        };
        // A clash with a name the user never wrote must say where it came from.
        let default_note = if defaulted && visitor_cookie.is_some() {
            " (visitorCookie defaults to cohort_id under stickiness: reevaluate; set it to another name)"
        } else {
            ""
        };
        if visitor_cookie.as_deref() == Some(cookie_name.as_str()) {
            return Err(error(
                "visitorCookie",
                format!("must differ from cookie.name ({cookie_name:?}){default_note}"),
            ));
        }
        if stickiness == Stickiness::Reevaluate && visitor_cookie.is_none() && keys.is_empty() {
            return Err(error(
                "stickiness",
                "reevaluate re-buckets cookie holders by a stable key, and none is left: \
                 set keys, or do not turn visitorCookie off",
            ));
        }
        let (weighted_sticky_cookie, sticky_hash) = match root.get("weightedSticky") {
            None => (None, StickyHash::default()),
            Some(v) => {
                let mut obj = Obj::new("weightedSticky", v)?;
                let name = obj.token("cookie")?;
                let hash = match obj.get("hash") {
                    None => StickyHash::default(),
                    Some(v) => parse_sticky_hash(v)?,
                };
                obj.finish()?;
                (name, hash)
            }
        };
        for v in &mut variants {
            if let Some(service) = &v.service {
                v.sticky_value = Some(sticky_hash.value(service));
            }
        }
        if let Some(name) = &weighted_sticky_cookie {
            if *name == cookie_name || Some(name) == visitor_cookie.as_ref() {
                return Err(error(
                    "weightedSticky.cookie",
                    format!("must differ from cookie.name and visitorCookie{default_note}"),
                ));
            }
            if variants.iter().all(|v| v.sticky_value.is_none()) {
                return Err(error(
                    "weightedSticky.cookie",
                    "is set but no variant names its weighted child (variants[].service)",
                ));
            }
        } else if let Some(i) = variants.iter().position(|v| v.sticky_value.is_some()) {
            return Err(error(
                format!("variants[{i}].service"),
                "needs weightedSticky.cookie: the name of the weighted service's sticky cookie",
            ));
        }

        let overrides = match root.get("override") {
            None => Override::default(),
            Some(v) => parse_override(v)?,
        };
        let exclude = match root.get("exclude") {
            None => Exclude::default(),
            Some(v) => parse_exclude(v)?,
        };
        let debug_header = root.header_name("debugHeader", None)?;
        let log_decisions = match root.get("logDecisions") {
            Some(v) => boolean("logDecisions", v)?,
            None => false,
        };
        root.finish()?;

        Ok(Config {
            seed,
            assignment_hash,
            variants,
            default,
            cookie_name,
            attributes,
            cookie_suffix,
            header,
            keys,
            visitor_cookie,
            stickiness,
            weighted_sticky_cookie,
            sticky_hash,
            overrides,
            exclude,
            debug_header,
            log_decisions,
        })
    }

    /// Whether a decision's reason is shown (debug header) or logged.
    pub fn reports_reason(&self) -> bool {
        self.debug_header.is_some() || self.log_decisions
    }

    /// The variant a cookie value names, by exact match.
    pub fn variant_named(&self, value: &[u8]) -> Option<usize> {
        self.variants
            .iter()
            .position(|v| same_bytes(v.name.as_bytes(), value))
    }
}

fn parse_assignment_hash(v: &Value) -> Result<AssignmentHash, ConfigError> {
    choice(
        "assignmentHash",
        v,
        &AssignmentHash::ALL,
        AssignmentHash::as_str,
        "sha256 (the default, and the formula of every Cohort before this field), \
         siphash (a new deployment's choice: switching a running one moves about half \
         its keyed visitors)",
    )
}

fn parse_sticky_hash(v: &Value) -> Result<StickyHash, ConfigError> {
    choice(
        "weightedSticky.hash",
        v,
        &StickyHash::ALL,
        StickyHash::as_str,
        "sha256 (Traefik 3.3.4 and later), fnv (Traefik before 3.3.4)",
    )
}

/// The one of `all` whose spelling is `v`'s string in any case, or an error
/// naming `field` and listing `choices`.
fn choice<T: Copy>(
    field: &str,
    v: &Value,
    all: &[T],
    spelling: fn(T) -> &'static str,
    choices: &str,
) -> Result<T, ConfigError> {
    let given = string(field, v)?;
    all.iter()
        .copied()
        .find(|&c| given.eq_ignore_ascii_case(spelling(c)))
        .ok_or_else(|| error(field, format!("{given:?} is not one of {choices}")))
}

fn parse_attributes(obj: &mut Obj, name: &str) -> Result<Attributes, ConfigError> {
    let mut a = Attributes::default();
    if let Some(v) = obj.get("maxAge") {
        let secs = integer("cookie.maxAge", v)?;
        a.max_age = (secs > 0).then_some(secs);
    }
    if let Some(v) = obj.get("path") {
        let path = string("cookie.path", v)?;
        if !path.starts_with('/') || !attribute_safe(&path) {
            return Err(error(
                "cookie.path",
                format!(
                    "{path:?} must start with '/' and contain no ';', spaces or control characters"
                ),
            ));
        }
        a.path = path;
    }
    if let Some(v) = obj.get("domain") {
        let domain = string("cookie.domain", v)?;
        if !domain.is_empty() {
            if !attribute_safe(&domain) || domain.contains('/') {
                return Err(error(
                    "cookie.domain",
                    format!("{domain:?} is not a domain"),
                ));
            }
            a.domain = Some(domain);
        }
    }
    if let Some(v) = obj.get("secure") {
        a.secure = boolean("cookie.secure", v)?;
    }
    if let Some(v) = obj.get("httpOnly") {
        a.http_only = boolean("cookie.httpOnly", v)?;
    }
    if let Some(v) = obj.get("sameSite") {
        a.same_site = match string("cookie.sameSite", v)?.to_ascii_lowercase().as_str() {
            "" => None,
            "strict" => Some(SameSite::Strict),
            "lax" => Some(SameSite::Lax),
            "none" => Some(SameSite::None),
            other => {
                return Err(error(
                    "cookie.sameSite",
                    format!("{other:?} is not one of strict, lax, none"),
                ));
            }
        };
    }
    if a.same_site == Some(SameSite::None) && !a.secure {
        return Err(error(
            "cookie.sameSite",
            "SameSite=None requires cookie.secure: true (browsers reject it otherwise)",
        ));
    }
    if name.starts_with("__Secure-") && !a.secure {
        return Err(error(
            "cookie.name",
            "the __Secure- prefix requires cookie.secure: true",
        ));
    }
    if name.starts_with("__Host-") && (!a.secure || a.path != "/" || a.domain.is_some()) {
        return Err(error(
            "cookie.name",
            "the __Host- prefix requires secure: true, path: / and no domain",
        ));
    }
    Ok(a)
}

fn attribute_safe(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

fn parse_variants(value: Option<&Value>) -> Result<(Vec<Variant>, usize), ConfigError> {
    let Some(value) = value else {
        // No variants: everyone on v1; v2 reachable by override only.
        let variants = vec![plain_variant("v1", FULL_WEIGHT), plain_variant("v2", 0)];
        return Ok((variants, 0));
    };
    let items = match value {
        Value::Array(items) => items.as_slice(),
        // Traefik hands an empty YAML list over as "".
        Value::String(s) if s.is_empty() => &[],
        _ => return Err(error("variants", "must be a list of {name, weight, ...}")),
    };
    if items.len() < 2 {
        return Err(error("variants", "needs at least two variants"));
    }
    let mut variants = Vec::with_capacity(items.len());
    let mut weights: Vec<Option<u32>> = Vec::with_capacity(items.len());
    let mut marked_default = None;
    for (i, item) in items.iter().enumerate() {
        let path = format!("variants[{i}]");
        let mut obj = Obj::new(&path, item)?;
        let name = match obj.get("name") {
            Some(v) => string(&format!("{path}.name"), v)?,
            None => return Err(error(format!("{path}.name"), "is required")),
        };
        if name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(error(
                format!("{path}.name"),
                format!("{name:?} must be 1-64 characters of A-Z a-z 0-9 - _ ."),
            ));
        }
        if name.is_empty() {
            return Err(error(format!("{path}.name"), "must not be empty"));
        }
        if variants.iter().any(|v: &Variant| v.name == name) {
            return Err(error(
                format!("{path}.name"),
                format!("{name:?} is used twice"),
            ));
        }
        let weight = match obj.get("weight") {
            Some(v) => Some(weight(&format!("{path}.weight"), v)?),
            None => None,
        };
        if let Some(v) = obj.get("default")
            && boolean(&format!("{path}.default"), v)?
        {
            if let Some(other) = marked_default {
                return Err(error(
                    format!("{path}.default"),
                    format!("variants[{other}] is already the default"),
                ));
            }
            marked_default = Some(i);
        }
        let state = match obj.get("state") {
            None => State::Active,
            Some(v) => match string(&format!("{path}.state"), v)?
                .to_ascii_lowercase()
                .as_str()
            {
                "active" => State::Active,
                "drained" => State::Drained,
                "disabled" => State::Disabled,
                other => {
                    return Err(error(
                        format!("{path}.state"),
                        format!("{other:?} is not one of active, drained, disabled"),
                    ));
                }
            },
        };
        let service = obj
            .get("service")
            .map(|v| string(&format!("{path}.service"), v))
            .transpose()?;
        let raw_sticky = obj
            .get("stickyValue")
            .map(|v| string(&format!("{path}.stickyValue"), v))
            .transpose()?;
        let service = service.filter(|s| !s.is_empty());
        let sticky_value = match (&service, raw_sticky) {
            (Some(_), Some(_)) => {
                return Err(error(
                    format!("{path}.stickyValue"),
                    "give either service or stickyValue, not both",
                ));
            }
            // Hashed once `weightedSticky.hash` is known.
            (Some(_), None) => None,
            (None, Some(v)) if v.is_empty() => None,
            (None, Some(v)) if cookie::is_cookie_value(&v) => Some(v),
            (None, Some(v)) => {
                return Err(error(
                    format!("{path}.stickyValue"),
                    format!("{v:?} is not a valid cookie value"),
                ));
            }
            (None, None) => None,
        };
        obj.finish()?;
        weights.push(weight);
        variants.push(Variant {
            name,
            weight: 0,
            state,
            service,
            sticky_value,
            set_cookie: Vec::new(),
            sip_key: [0; 2],
        });
    }

    let default = marked_default.unwrap_or(0);
    if variants[default].state != State::Active {
        return Err(error(
            format!("variants[{default}].state"),
            "the default variant must be active (it receives everyone the others do not)",
        ));
    }
    let mut others = 0u32;
    for (i, w) in weights.iter().enumerate() {
        if i == default {
            continue;
        }
        match w {
            Some(w) => others += w,
            None => {
                return Err(error(
                    format!("variants[{i}].weight"),
                    "is required (only the default variant may omit it and take the rest)",
                ));
            }
        }
    }
    let default_weight = match weights[default] {
        Some(w) if w + others != FULL_WEIGHT => {
            return Err(error(
                "variants",
                format!(
                    "weights add up to {}%, not 100% (omit the default variant's weight to give it the rest)",
                    percent(w + others)
                ),
            ));
        }
        Some(w) => w,
        None if others > FULL_WEIGHT => {
            return Err(error(
                "variants",
                format!(
                    "the non-default weights add up to {}%, over 100%",
                    percent(others)
                ),
            ));
        }
        None => FULL_WEIGHT - others,
    };
    for (i, (variant, w)) in variants.iter_mut().zip(&weights).enumerate() {
        variant.weight = if i == default {
            default_weight
        } else {
            w.unwrap_or(0)
        };
    }
    Ok((variants, default))
}

fn plain_variant(name: &str, weight: u32) -> Variant {
    Variant {
        name: name.into(),
        weight,
        state: State::Active,
        service: None,
        sticky_value: None,
        set_cookie: Vec::new(),
        sip_key: [0; 2],
    }
}

fn percent(bp: u32) -> String {
    if bp.is_multiple_of(100) {
        format!("{}", bp / 100)
    } else {
        format!("{}.{:02}", bp / 100, bp % 100)
    }
}

fn parse_key(path: &str, s: &str) -> Result<KeySource, ConfigError> {
    let bad = || {
        error(
            path,
            format!("{s:?} is not one of header:<Name>, cookie:<name>, ip"),
        )
    };
    if s.eq_ignore_ascii_case("ip") {
        return Ok(KeySource::ClientIp);
    }
    let (kind, name) = s.split_once(':').ok_or_else(bad)?;
    if !cookie::is_token(name) {
        return Err(bad());
    }
    match kind.to_ascii_lowercase().as_str() {
        "header" => Ok(KeySource::Header(canonical_header_name(name))),
        "cookie" => Ok(KeySource::Cookie(name.into())),
        _ => Err(bad()),
    }
}

/// `name` as Go's `textproto.CanonicalMIMEHeaderKey` spells it (`x-user-id`
/// is `X-User-Id`). Traefik's host canonicalises every header name the guest
/// passes, which allocates a new string on each call when it is not already
/// canonical; spelled so once at load, no request pays it. Header names are
/// case-insensitive, so nothing else changes. `name` is a token.
fn canonical_header_name(name: &str) -> String {
    let mut spelled = String::with_capacity(name.len());
    let mut word_start = true;
    for c in name.chars() {
        spelled.push(if word_start {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        word_start = c == '-';
    }
    spelled
}

fn parse_override(value: &Value) -> Result<Override, ConfigError> {
    let mut obj = Obj::new("override", value)?;
    let header = obj.header_name("header", None)?;
    let query = match obj.get("query") {
        None => None,
        Some(v) => {
            let q = string("override.query", v)?;
            if q.is_empty() {
                None
            } else if q
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                Some(q)
            } else {
                return Err(error(
                    "override.query",
                    format!("{q:?} must be a plain parameter name (A-Z a-z 0-9 - _ .)"),
                ));
            }
        }
    };
    let allow_from = match obj.get("allowFrom") {
        None => Vec::new(),
        Some(v) => list("override.allowFrom", v)?
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Cidr::parse(s).ok_or_else(|| {
                    error(
                        format!("override.allowFrom[{i}]"),
                        format!("{s:?} is not an address range such as 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    obj.finish()?;
    Ok(Override {
        header,
        query,
        allow_from,
    })
}

fn parse_exclude(value: &Value) -> Result<Exclude, ConfigError> {
    let mut obj = Obj::new("exclude", value)?;
    let regexes = |obj: &mut Obj, key: &'static str| -> Result<Vec<Pattern>, ConfigError> {
        let Some(v) = obj.get(key) else {
            return Ok(Vec::new());
        };
        list(&format!("exclude.{key}"), v)?
            .iter()
            .enumerate()
            .map(|(i, pattern)| {
                Pattern::new(pattern).map_err(|e| {
                    error(
                        format!("exclude.{key}[{i}]"),
                        format!("{pattern:?} is not a valid regular expression: {e}"),
                    )
                })
            })
            .collect()
    };
    let paths = regexes(&mut obj, "paths")?;
    let user_agents = regexes(&mut obj, "userAgents")?;
    let methods = match obj.get("methods") {
        None => Vec::new(),
        Some(v) => list("exclude.methods", v)?
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                if cookie::is_token(&m) {
                    Ok(m.to_ascii_uppercase())
                } else {
                    Err(error(
                        format!("exclude.methods[{i}]"),
                        format!("{m:?} is not a method"),
                    ))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    obj.finish()?;
    Ok(Exclude {
        paths,
        methods,
        user_agents,
    })
}

/// A JSON object being read: remembers which keys were used so that
/// [`Obj::finish`] can reject the rest by name.
struct Obj<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
    used: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(path: &str, value: &'a Value) -> Result<Obj<'a>, ConfigError> {
        match value {
            Value::Object(map) => Ok(Obj {
                path: path.to_owned(),
                map: Some(map),
                used: Vec::new(),
            }),
            // YAML `cookie:` with nothing under it.
            Value::Null => Ok(Obj::empty(path)),
            Value::String(s) if s.is_empty() => Ok(Obj::empty(path)),
            _ => Err(error(display_path(path), "must be an object")),
        }
    }

    fn empty(path: &str) -> Obj<'a> {
        Obj {
            path: path.to_owned(),
            map: None,
            used: Vec::new(),
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`; absent and `null` are the same.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.map?.get(key).filter(|v| !v.is_null())
    }

    /// An optional token (cookie name); `""` is absent.
    fn token(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        self.optional_token(key, None, "cookie name")
    }

    /// An optional header name with a default; `""` switches it off.
    fn header_name(
        &mut self,
        key: &'static str,
        default: Option<&str>,
    ) -> Result<Option<String>, ConfigError> {
        let name = self.optional_token(key, default, "header name")?;
        Ok(name.as_deref().map(canonical_header_name))
    }

    /// An RFC 7230 token (a cookie or header name) at `key`: `default` when
    /// absent, none when `""`, an error naming `what` otherwise.
    fn optional_token(
        &mut self,
        key: &'static str,
        default: Option<&str>,
        what: &str,
    ) -> Result<Option<String>, ConfigError> {
        let field = self.field(key);
        let Some(v) = self.get(key) else {
            return Ok(default.map(str::to_owned));
        };
        let s = string(&field, v)?;
        if s.is_empty() {
            Ok(None)
        } else if cookie::is_token(&s) {
            Ok(Some(s))
        } else {
            Err(error(field, format!("{s:?} is not a valid {what}")))
        }
    }

    fn finish(self) -> Result<(), ConfigError> {
        let Some(map) = self.map else {
            return Ok(());
        };
        for key in map.keys() {
            if !self.used.contains(&key.as_str()) {
                let mut known = self.used.clone();
                known.sort_unstable();
                // A field read twice (`visitorCookie`) is listed once.
                known.dedup();
                // An empty key must still be named: `""`, not nothing.
                let shown = if key.is_empty() { "\"\"" } else { key };
                return Err(error(
                    self.field(shown),
                    format!("unknown field (known here: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

/// A string, or a number or boolean written where a string was meant.
fn string(field: &str, v: &Value) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(error(field, "must be a string")),
    }
}

/// `true`/`false` as JSON or as the strings Traefik sends (Go's
/// `strconv.ParseBool` spellings).
fn boolean(field: &str, v: &Value) -> Result<bool, ConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" | "t" | "T" | "1" => Ok(true),
            "false" | "False" | "FALSE" | "f" | "F" | "0" => Ok(false),
            _ => Err(error(field, format!("{s:?} is not true or false"))),
        },
        _ => Err(error(field, "must be true or false")),
    }
}

/// A non-negative whole number; `"3600"`, `3600` and Traefik's float form
/// `"3600.000000"` are all accepted.
fn integer(field: &str, v: &Value) -> Result<u64, ConfigError> {
    let text = string(field, v)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if !fraction.bytes().all(|b| b == b'0') {
        return Err(error(field, format!("{text:?} is not a whole number")));
    }
    whole.parse::<u64>().map_err(|_| {
        error(
            field,
            format!("{text:?} is not a non-negative whole number"),
        )
    })
}

/// A percentage with at most two decimals, as basis points: `"12.5"`,
/// `12.5` and `"12.500000"` are all 1250.
fn weight(field: &str, v: &Value) -> Result<u32, ConfigError> {
    let text = string(field, v)?;
    let bad = || {
        error(
            field,
            format!("{text:?} is not a percentage from 0 to 100 with at most two decimals"),
        )
    };
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let fraction = fraction.trim_end_matches('0');
    if whole.is_empty()
        || whole.len() > 3
        || fraction.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let mut hundredths: u32 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    if fraction.len() == 1 {
        hundredths *= 10;
    }
    let bp = whole * 100 + hundredths;
    if bp > FULL_WEIGHT {
        return Err(bad());
    }
    Ok(bp)
}

/// A list of strings: a JSON array (Traefik keeps a list of numbers
/// numeric, so numbers are accepted too), or one comma-separated string as
/// Docker labels write lists.
fn list(field: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string(&format!("{field}[{i}]"), item))
            .collect(),
        Value::String(s) if s.trim().is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(s.split(',').map(|p| p.trim().to_owned()).collect()),
        _ => Err(error(field, "must be a list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket;
    use serde_json::json;

    fn parse(v: Value) -> Result<Config, ConfigError> {
        Config::from_value(&v)
    }

    fn err(v: Value) -> ConfigError {
        match parse(v) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_config_has_safe_defaults() {
        let c = Config::from_json(b"").expect("valid");
        assert_eq!(c.cookie_name, "canary");
        assert_eq!(c.variants.len(), 2);
        assert_eq!((c.variants[0].weight, c.variants[1].weight), (10_000, 0));
        assert_eq!(c.header.as_deref(), Some("X-Canary"));
        assert_eq!(c.stickiness, Stickiness::Keep);
        assert_eq!(
            c.variants[1].set_cookie,
            b"canary=v2; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"
        );
        assert!(Config::from_json(b"{}").is_ok());
        assert!(Config::from_json(b"null").is_ok());
    }

    #[test]
    fn accepts_traefiks_all_strings_encoding_and_plain_json_alike() {
        let traefik = json!({
            "cookie": {"httpOnly": "true", "maxAge": "3600", "name": "canary", "sameSite": "none", "secure": "true"},
            "seed": "2026",
            "variants": [{"name": "v1", "weight": "87.500000"}, {"name": "v2", "weight": "12.500000"}],
        });
        let plain = json!({
            "cookie": {"httpOnly": true, "maxAge": 3600, "name": "canary", "sameSite": "none", "secure": true},
            "seed": 2026,
            "variants": [{"name": "v1", "weight": 87.5}, {"name": "v2", "weight": 12.5}],
        });
        for v in [traefik, plain] {
            let c = parse(v).expect("valid");
            assert_eq!(c.seed, "2026");
            assert_eq!((c.variants[0].weight, c.variants[1].weight), (8_750, 1_250));
            assert_eq!(c.attributes.max_age, Some(3600));
            assert!(c.attributes.secure);
        }
    }

    #[test]
    fn canary_percent_100_is_not_misread() {
        let c = parse(json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": "100"}]}))
            .expect("valid");
        assert_eq!((c.variants[0].weight, c.variants[1].weight), (0, 10_000));
    }

    #[test]
    fn default_variant_takes_the_rest() {
        let c = parse(json!({"variants": [
            {"name": "a", "weight": "30"}, {"name": "b", "default": "true"}, {"name": "c", "weight": "20"}
        ]}))
        .expect("valid");
        assert_eq!(c.default, 1);
        assert_eq!(c.variants[1].weight, 5_000);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": "ten"}]}),
                "variants[1].weight",
            ),
            (
                json!({"variants": [{"name": "v1", "weight": 50}, {"name": "v2", "weight": 40}]}),
                "variants",
            ),
            (
                json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 101}]}),
                "variants[1].weight",
            ),
            (
                json!({"variants": [{"name": "v1"}, {"name": "v1", "weight": 1}]}),
                "variants[1].name",
            ),
            (
                json!({"variants": [{"name": "v1"}, {"name": "v 2", "weight": 1}]}),
                "variants[1].name",
            ),
            (
                json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 1, "colour": "red"}]}),
                "variants[1].colour",
            ),
            (
                json!({"variants": [{"name": "v1", "state": "disabled"}, {"name": "v2", "weight": 1}]}),
                "variants[0].state",
            ),
            (json!({"variants": [{"name": "v1"}]}), "variants"),
            (json!({"variants": "v1,v2"}), "variants"),
            (json!({"variants": ""}), "variants"),
            (json!({"cookie": {"sameSite": "none"}}), "cookie.sameSite"),
            (
                json!({"cookie": {"sameSite": "sideways"}}),
                "cookie.sameSite",
            ),
            (json!({"cookie": {"maxAge": "-1"}}), "cookie.maxAge"),
            (json!({"cookie": {"secure": "yes"}}), "cookie.secure"),
            (json!({"cookie": {"name": "can ary"}}), "cookie.name"),
            (
                json!({"cookie": {"name": "__Host-canary", "secure": true, "domain": "x.com"}}),
                "cookie.name",
            ),
            (
                json!({"cookie": {"name": "__Secure-canary"}}),
                "cookie.name",
            ),
            (json!({"cookie": {"path": "/a;b"}}), "cookie.path"),
            (json!({"stickiness": "sometimes"}), "stickiness"),
            (json!({"keys": ["header:"]}), "keys[0]"),
            (json!({"keys": ["body:x"]}), "keys[0]"),
            (
                json!({"override": {"allowFrom": ["10.0.0.0/99"]}}),
                "override.allowFrom[0]",
            ),
            (json!({"exclude": {"paths": ["("]}}), "exclude.paths[0]"),
            (
                json!({"weightedSticky": {"cookie": "sticky"}}),
                "weightedSticky.cookie",
            ),
            (
                json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 5, "service": "v2@file"}]}),
                "variants[1].service",
            ),
            (json!({"visitorCookie": "canary"}), "visitorCookie"),
            (json!({"percent": 10}), "percent"),
            (json!({"header": "X Canary"}), "header"),
            (json!([1, 2]), "(root)"),
        ];
        for (value, field) in cases {
            let e = err(value.clone());
            assert_eq!(e.field, field, "{value}: {e}");
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn a_defaulted_visitor_cookie_clash_says_where_the_name_came_from() {
        let e = err(json!({"stickiness": "reevaluate", "cookie": {"name": "cohort_id"}}));
        assert_eq!(e.field, "visitorCookie");
        assert!(
            e.to_string()
                .contains("defaults to cohort_id under stickiness: reevaluate"),
            "{e}"
        );
        let e = err(json!({
            "stickiness": "reevaluate",
            "weightedSticky": {"cookie": "cohort_id"},
            "variants": [{"name": "v1", "service": "a@file"}, {"name": "v2", "weight": 5}],
        }));
        assert_eq!(e.field, "weightedSticky.cookie");
        assert!(e.to_string().contains("defaults to cohort_id"), "{e}");
        // Under `keep` nothing is defaulted, so the same names are fine.
        assert!(Config::from_value(&json!({"cookie": {"name": "cohort_id"}})).is_ok());
        // A name the user wrote gets the plain message.
        let e = err(json!({"visitorCookie": "canary"}));
        assert!(!e.to_string().contains("defaults to"), "{e}");
    }

    #[test]
    fn reevaluate_needs_a_key_to_re_bucket_by() {
        let e = err(json!({"stickiness": "reevaluate", "visitorCookie": ""}));
        assert_eq!(e.field, "stickiness");
        assert!(e.to_string().contains("stable key"), "{e}");
        for ok in [
            json!({"stickiness": "reevaluate"}),
            json!({"stickiness": "reevaluate", "visitorCookie": "", "keys": ["ip"]}),
            json!({"visitorCookie": ""}),
        ] {
            assert!(Config::from_value(&ok).is_ok(), "{ok}");
        }
    }

    /// Found by the `config` fuzz target: an unknown empty key gave an
    /// error whose field was empty.
    #[test]
    fn an_unknown_empty_key_is_named() {
        for (value, field) in [
            (json!({"": 1}), "\"\""),
            (json!({"cookie": {"": "x"}}), "cookie.\"\""),
            (
                json!({"variants": [{"name": "v1", "": 1}, {"name": "v2", "weight": 1}]}),
                "variants[0].\"\"",
            ),
        ] {
            let e = err(value.clone());
            assert_eq!(e.field, field, "{value}: {e}");
            assert!(
                e.to_string().contains(&format!("{field}: unknown field")),
                "{e}"
            );
        }
    }

    #[test]
    fn invalid_json_is_an_error() {
        let e = Config::from_json(b"{\"seed\": ").expect_err("invalid");
        assert_eq!(e.field, "(root)");
    }

    #[test]
    fn weighted_sticky_values_are_traefik_hashes() {
        let c = parse(json!({
            "weightedSticky": {"cookie": "flagger-traefik-sticky"},
            "variants": [
                {"name": "v1", "service": "app-primary@file"},
                {"name": "v2", "weight": 10, "stickyValue": "raw-value"},
            ],
        }))
        .expect("valid");
        assert_eq!(
            c.weighted_sticky_cookie.as_deref(),
            Some("flagger-traefik-sticky")
        );
        assert_eq!(
            c.variants[0].sticky_value.as_deref(),
            Some(bucket::traefik_sticky_value("app-primary@file").as_str())
        );
        assert_eq!(c.variants[1].sticky_value.as_deref(), Some("raw-value"));
        assert_eq!(c.sticky_hash, StickyHash::Sha256);
    }

    #[test]
    fn assignment_hash_defaults_to_sha256_and_siphash_keys_every_variant() {
        let c = parse(json!({"seed": "s"})).expect("valid");
        assert_eq!(c.assignment_hash, AssignmentHash::Sha256);
        for spelling in ["siphash", "SipHash"] {
            let c = parse(json!({"seed": "s", "assignmentHash": spelling})).expect("valid");
            assert_eq!(c.assignment_hash, AssignmentHash::SipHash);
            for v in &c.variants {
                assert_eq!(v.sip_key, bucket::sip_key(b"s", &v.name));
                assert_ne!(v.sip_key, [0; 2]);
            }
        }
        let c = parse(json!({"assignmentHash": "sha256"})).expect("valid");
        assert_eq!(c.assignment_hash, AssignmentHash::Sha256);
        refused(
            json!({"assignmentHash": "md5"}),
            "assignmentHash",
            "\"md5\" is not one of sha256",
        );
        refused(
            json!({"assignmentHash": ""}),
            "assignmentHash",
            "is not one of sha256",
        );
        refused(
            json!({"assignmentHash": ["siphash"]}),
            "assignmentHash",
            "must be a string",
        );
    }

    #[test]
    fn weighted_sticky_hash_fnv_is_for_traefik_before_3_3_4() {
        let config = |hash: &str| {
            parse(json!({
                "weightedSticky": {"cookie": "sticky", "hash": hash},
                "variants": [
                    {"name": "v1", "service": "v1"},
                    {"name": "v2", "weight": "10", "service": "v2", "state": "drained"},
                    {"name": "v3", "weight": "5", "stickyValue": "raw"},
                ],
            }))
        };
        let c = config("FNV").expect("valid");
        assert_eq!(c.sticky_hash, StickyHash::Fnv);
        assert_eq!(
            c.variants[0].sticky_value.as_deref(),
            Some("8325207b4eb141a")
        );
        assert_eq!(
            c.variants[1].sticky_value.as_deref(),
            Some("8325207b4eb1419")
        );
        assert_eq!(c.variants[1].service.as_deref(), Some("v2"));
        // A raw value is written as given, whatever the hash.
        assert_eq!(c.variants[2].sticky_value.as_deref(), Some("raw"));
        let c = config("sha256").expect("valid");
        assert_eq!(
            c.variants[0].sticky_value.as_deref(),
            Some(bucket::traefik_sticky_value("v1").as_str())
        );
        let e = config("fnv1a").expect_err("unknown hash");
        assert_eq!(e.field, "weightedSticky.hash");
        assert!(e.problem.contains("fnv (Traefik before 3.3.4)"), "{e}");
    }

    #[test]
    fn lists_accept_comma_separated_strings() {
        let c =
            parse(json!({"keys": "header:X-User-Id, ip", "exclude": {"methods": "options,head"}}))
                .expect("valid");
        assert_eq!(
            c.keys,
            vec![KeySource::Header("X-User-Id".into()), KeySource::ClientIp]
        );
        assert_eq!(c.exclude.methods, vec!["OPTIONS", "HEAD"]);
    }

    #[test]
    fn header_names_are_kept_as_the_host_canonicalises_them() {
        let c = parse(json!({
            "header": "x-CANARY",
            "debugHeader": "x-cohort-debug",
            "keys": ["header:x-user-id", "Header:X_FORWARDED-user"],
            "override": {"header": "x-canary-force"},
        }))
        .expect("valid");
        assert_eq!(c.header.as_deref(), Some("X-Canary"));
        assert_eq!(c.debug_header.as_deref(), Some("X-Cohort-Debug"));
        assert_eq!(c.overrides.header.as_deref(), Some("X-Canary-Force"));
        assert_eq!(
            c.keys,
            vec![
                KeySource::Header("X-User-Id".into()),
                // Only a `-` starts a word, as in Go's textproto.
                KeySource::Header("X_forwarded-User".into()),
            ]
        );
        for (name, canonical) in [("dnt", "Dnt"), ("a--b", "A--B"), ("-x", "-X"), ("9a", "9a")] {
            assert_eq!(canonical_header_name(name), canonical);
        }
    }

    #[test]
    fn weights_parse_exactly() {
        for (text, bp) in [
            ("0", 0),
            ("100", 10_000),
            ("12.5", 1_250),
            ("0.01", 1),
            ("33.330000", 3_333),
        ] {
            assert_eq!(weight("w", &json!(text)), Ok(bp), "{text}");
        }
        for bad in ["", "-1", "100.01", "1e2", "12.345", "1000", ".5", "ten"] {
            assert!(weight("w", &json!(bad)).is_err(), "{bad}");
        }
    }

    // -----------------------------------------------------------------------
    // Found by mutation testing (cargo mutants -f plugin/src/config.rs).

    /// The error for `v`, which must be about `field`, with `problem` in it.
    #[track_caller]
    fn refused(v: Value, field: &str, problem: &str) {
        let e = err(v.clone());
        assert_eq!(e.field, field, "{v}: {e}");
        assert!(e.problem.contains(problem), "{v}: {e}");
    }

    #[test]
    fn exclude_is_empty_only_when_every_list_is() {
        assert!(Exclude::default().is_empty());
        for only in [
            json!({"paths": ["^/healthz$"]}),
            json!({"methods": ["OPTIONS"]}),
            json!({"userAgents": ["bot"]}),
        ] {
            let c = parse(json!({"exclude": only.clone()})).expect("valid");
            assert!(!c.exclude.is_empty(), "{only}");
        }
    }

    #[test]
    fn max_age_zero_means_a_session_cookie() {
        // Max-Age=0 would delete the cookie at once: 0 writes no Max-Age.
        let c = parse(json!({"cookie": {"maxAge": "0"}})).expect("valid");
        assert_eq!(c.attributes.max_age, None);
        assert!(!String::from_utf8_lossy(&c.variants[0].set_cookie).contains("Max-Age"));
        let c = parse(json!({"cookie": {"maxAge": "1"}})).expect("valid");
        assert_eq!(c.attributes.max_age, Some(1));
        // Traefik's float spelling of a whole number; a fraction is refused.
        let c = parse(json!({"cookie": {"maxAge": "3600.000000"}})).expect("valid");
        assert_eq!(c.attributes.max_age, Some(3600));
        refused(
            json!({"cookie": {"maxAge": "3600.5"}}),
            "cookie.maxAge",
            "whole number",
        );
        refused(
            json!({"cookie": {"maxAge": "3600.05"}}),
            "cookie.maxAge",
            "whole number",
        );
    }

    #[test]
    fn a_domain_is_one_safe_token_without_a_slash() {
        let c = parse(json!({"cookie": {"domain": "example.com"}})).expect("valid");
        assert_eq!(c.attributes.domain.as_deref(), Some("example.com"));
        for bad in ["example.com/x", "/", "exa mple.com", "a;b"] {
            refused(
                json!({"cookie": {"domain": bad}}),
                "cookie.domain",
                "not a domain",
            );
        }
    }

    #[test]
    fn the_host_prefix_needs_secure_root_path_and_no_domain() {
        let ok = json!({"cookie": {"name": "__Host-canary", "secure": "true", "path": "/"}});
        parse(ok).expect("__Host- with secure, / and no domain");
        parse(json!({"cookie": {"name": "__Host-canary", "secure": "true"}}))
            .expect("the path defaults to /");
        for cookie in [
            json!({"name": "__Host-canary"}),
            json!({"name": "__Host-canary", "secure": "false"}),
            json!({"name": "__Host-canary", "secure": "true", "path": "/app"}),
            json!({"name": "__Host-canary", "secure": "true", "domain": "example.com"}),
        ] {
            refused(json!({"cookie": cookie}), "cookie.name", "__Host-");
        }
    }

    #[test]
    fn variants_must_be_a_list_but_traefik_s_empty_list_is_too_short() {
        // Traefik hands an empty YAML list over as "": too few variants,
        // not the wrong type.
        refused(json!({"variants": ""}), "variants", "at least two");
        refused(json!({"variants": "v1,v2"}), "variants", "must be a list");
        refused(json!({"variants": 7}), "variants", "must be a list");
    }

    #[test]
    fn variant_names_are_at_most_64_characters() {
        let name = |len| "v".repeat(len);
        for len in [1, 63, 64] {
            let c = parse(json!({"variants": [{"name": "a"}, {"name": name(len), "weight": 1}]}))
                .unwrap_or_else(|e| panic!("{len}: {e}"));
            assert_eq!(c.variants[1].name.len(), len);
        }
        refused(
            json!({"variants": [{"name": "a"}, {"name": name(65), "weight": 1}]}),
            "variants[1].name",
            "1-64 characters",
        );
    }

    #[test]
    fn sticky_values_are_cookie_values_and_empty_means_none() {
        let c = parse(json!({"weightedSticky": {"cookie": "wrr"}, "variants": [
            {"name": "v1", "stickyValue": ""},
            {"name": "v2", "weight": 10, "stickyValue": "abc123"},
        ]}))
        .expect("valid");
        assert_eq!(c.variants[0].sticky_value, None);
        assert_eq!(c.variants[1].sticky_value.as_deref(), Some("abc123"));
        for bad in ["a;b", "a b", "a,b", "\"quoted\""] {
            refused(
                json!({"weightedSticky": {"cookie": "wrr"},
                       "variants": [{"name": "v1"}, {"name": "v2", "weight": 10, "stickyValue": bad}]}),
                "variants[1].stickyValue",
                "not a valid cookie value",
            );
        }
    }

    #[test]
    fn weights_over_100_percent_are_refused_and_say_how_much() {
        // The default's weight omitted: the others alone over 100 %.
        refused(
            json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 60}, {"name": "v3", "weight": "50.5"}]}),
            "variants",
            "the non-default weights add up to 110.50%, over 100%",
        );
        // Every weight given: the sum must be exactly 100 %.
        refused(
            json!({"variants": [{"name": "v1", "weight": 50}, {"name": "v2", "weight": 60}]}),
            "variants",
            "weights add up to 110%, not 100%",
        );
        // Exactly 100 % without the default: it takes nothing.
        let c = parse(json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 60}, {"name": "v3", "weight": 40}]}))
            .expect("valid");
        assert_eq!(c.variants[0].weight, 0);
    }

    #[test]
    fn booleans_accept_go_s_spellings_of_true_and_false() {
        for (text, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("t", true),
            ("T", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("FALSE", false),
            ("f", false),
            ("F", false),
            ("0", false),
        ] {
            let c = parse(json!({"cookie": {"httpOnly": text}}))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(c.attributes.http_only, want, "{text}");
        }
        assert!(
            !parse(json!({"cookie": {"httpOnly": false}}))
                .expect("valid")
                .attributes
                .http_only
        );
    }

    #[test]
    fn a_number_or_boolean_is_read_as_its_text_where_a_string_is_meant() {
        assert_eq!(parse(json!({"seed": true})).expect("valid").seed, "true");
        assert_eq!(parse(json!({"seed": 42})).expect("valid").seed, "42");
        refused(json!({"seed": ["a"]}), "seed", "must be a string");
    }

    #[test]
    fn weights_are_plain_digits() {
        for bad in ["+12", "12.+5", "0100", "0050", "1.-5"] {
            assert!(weight("w", &json!(bad)).is_err(), "{bad}");
        }
        assert_eq!(weight("w", &json!(" 12.50 ")), Ok(1_250));
    }

    #[test]
    fn a_blank_list_string_is_an_empty_list() {
        let c =
            parse(json!({"keys": "  ", "exclude": {"paths": " ", "methods": ""}})).expect("valid");
        assert!(c.keys.is_empty());
        assert!(c.exclude.is_empty());
    }
}
