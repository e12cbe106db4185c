//! `Config::from_json` on arbitrary bytes, and `Config::from_value` on
//! structured JSON built from the same bytes with `arbitrary` (known keys
//! and likely values at every level, of every JSON type):
//!
//! * never a panic;
//! * an error names a field: `(root)`, or a path whose every segment is a
//!   known key or a key the input holds, and the message shows it;
//! * the parsed value and its serialised text give the same result (for
//!   values without floats, whose text round trip is inexact);
//! * an accepted configuration is sound: two or more uniquely and safely
//!   named variants, weights adding up to 100 %, an active default, token
//!   cookie and header names, and `Set-Cookie` values with nothing a value
//!   could inject.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use cohort::bucket::FULL_WEIGHT;
use cohort::config::{KeySource, State};
use cohort::{Config, ConfigError, cookie};
use cohort_fuzz::checks;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Every key the configuration knows, at any level.
const KEYS: &[&str] = &[
    "seed",
    "cookie",
    "name",
    "maxAge",
    "path",
    "domain",
    "secure",
    "httpOnly",
    "sameSite",
    "variants",
    "weight",
    "default",
    "state",
    "service",
    "stickyValue",
    "header",
    "keys",
    "visitorCookie",
    "stickiness",
    "weightedSticky",
    "override",
    "query",
    "allowFrom",
    "exclude",
    "paths",
    "methods",
    "userAgents",
    "debugHeader",
    "logDecisions",
];

/// Values the fields take, and near misses.
const WORDS: &[&str] = &[
    "",
    " ",
    "true",
    "false",
    "TRUE",
    "t",
    "0",
    "1",
    "10",
    "12.5",
    "12.500000",
    "33.333",
    "50",
    "100",
    "100.00",
    "100.01",
    "101",
    "-1",
    "1e2",
    " 10",
    "keep",
    "reevaluate",
    "active",
    "drained",
    "disabled",
    "Disabled",
    "lax",
    "strict",
    "none",
    "None",
    "/",
    "/app",
    "/a b",
    "/;",
    "example.com",
    "a/b",
    "canary",
    "cohort_id",
    "__Host-c",
    "__Secure-c",
    "v1",
    "v2",
    "v 1",
    "ip",
    "IP",
    "header:X-User",
    "cookie:uid",
    "header:",
    "query:x",
    "10.0.0.0/8",
    "::1/128",
    "1.2.3.4/33",
    "1.2.3.4",
    "x/8",
    "GET",
    "get",
    "GET, POST",
    "a,b,",
    "(",
    "^/h",
    "[",
    "app@file",
    "abc123",
    "a;b",
    "\"q\"",
    "a\u{0}b",
    "é",
];

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Node {
    Word(u8),
    Text(String),
    Int(u32),
    Decimal(u16, u8),
    Bool(bool),
    Null,
    List(Vec<Node>),
    Object(Vec<(Key, Node)>),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Known(i) => KEYS[usize::from(*i) % KEYS.len()].to_owned(),
            Key::Other(s) => s.clone(),
        }
    }
}

/// The JSON value, and every object key it holds (for checking error
/// paths).
fn to_value(node: &Node, depth: u32, keys: &mut Vec<String>) -> Value {
    if depth > 5 {
        return Value::Null;
    }
    match node {
        Node::Word(i) => Value::String(WORDS[usize::from(*i) % WORDS.len()].to_owned()),
        Node::Text(s) => Value::String(s.clone()),
        Node::Int(n) => Value::from(*n),
        Node::Decimal(whole, frac) => {
            Value::from(f64::from(*whole) / 100.0 + f64::from(*frac) / 10_000.0)
        }
        Node::Bool(b) => Value::Bool(*b),
        Node::Null => Value::Null,
        Node::List(items) => {
            Value::Array(items.iter().map(|n| to_value(n, depth + 1, keys)).collect())
        }
        Node::Object(fields) => object(fields, depth, keys),
    }
}

fn object(fields: &[(Key, Node)], depth: u32, keys: &mut Vec<String>) -> Value {
    let mut map = Map::new();
    for (key, node) in fields {
        let name = key.name();
        keys.push(name.clone());
        let value = to_value(node, depth + 1, keys);
        map.insert(name, value);
    }
    Value::Object(map)
}

/// `(root)`, or a path of known or present keys with `[n]` indexes.
fn check_error(e: &ConfigError, present: &[String]) {
    assert!(!e.field.is_empty(), "an error names no field: {e:?}");
    assert!(e.to_string().contains(&e.field), "{e}");
    assert!(!e.problem.is_empty(), "{e:?}");
    if e.field == "(root)" {
        return;
    }
    // Known keys never contain '.', so a present key that does is matched
    // whole at the end.
    let mut rest = e.field.as_str();
    loop {
        if present.iter().any(|k| k == rest) {
            return;
        }
        let (segment, tail) = match rest.split_once('.') {
            Some((s, t)) => (s, Some(t)),
            None => (rest, None),
        };
        let name = segment.split('[').next().unwrap_or_default();
        // The plugin shows an empty key as `""`.
        let name = if name == "\"\"" { "" } else { name };
        let segment = segment.strip_prefix("\"\"").unwrap_or(segment);
        let indexes_ok = segment[name.len()..].split_terminator(']').all(|i| {
            i.strip_prefix('[')
                .is_some_and(|n| n.parse::<usize>().is_ok())
        });
        assert!(
            indexes_ok && (KEYS.contains(&name) || present.iter().any(|k| k == name)),
            "the error's field {:?} is not a path of the configuration: {e}",
            e.field
        );
        match tail {
            Some(t) => rest = t,
            None => return,
        }
    }
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.".contains(&b)
}

fn check_config(c: &Config) {
    assert!(c.variants.len() >= 2, "{c:?}");
    let total: u32 = c.variants.iter().map(|v| v.weight).sum();
    assert_eq!(total, FULL_WEIGHT, "{c:?}");
    assert_eq!(c.variants[c.default].state, State::Active, "{c:?}");
    for (i, v) in c.variants.iter().enumerate() {
        assert!(
            (1..=64).contains(&v.name.len()) && v.name.bytes().all(is_name_char),
            "{:?}",
            v.name
        );
        assert_eq!(
            c.variant_named(v.name.as_bytes()),
            Some(i),
            "duplicate {:?}",
            v.name
        );
        assert!(v.weight <= FULL_WEIGHT);
        if let Some(sticky) = &v.sticky_value {
            assert!(checks::is_cookie_value(sticky.as_bytes()), "{sticky:?}");
        }
        // name=value and the attributes: printable, no way to add a pair.
        let expected = [
            c.cookie_name.as_bytes(),
            b"=",
            v.name.as_bytes(),
            c.cookie_suffix.as_bytes(),
        ]
        .concat();
        assert_eq!(v.set_cookie, expected);
    }
    assert!(cookie::is_token(&c.cookie_name));
    if let Some(visitor) = &c.visitor_cookie {
        assert!(cookie::is_token(visitor));
        assert_ne!(&c.cookie_name, visitor);
    }
    assert!(
        c.cookie_suffix.starts_with("; Path=/"),
        "{:?}",
        c.cookie_suffix
    );
    for attribute in c.cookie_suffix.split("; ").skip(1) {
        assert!(
            !attribute.is_empty() && attribute.bytes().all(|b| b.is_ascii_graphic() && b != b';'),
            "attribute {attribute:?} in {:?}",
            c.cookie_suffix
        );
    }
    match &c.weighted_sticky_cookie {
        Some(name) => {
            assert!(cookie::is_token(name));
            assert!(name != &c.cookie_name && Some(name) != c.visitor_cookie.as_ref());
            assert!(c.variants.iter().any(|v| v.sticky_value.is_some()));
        }
        None => assert!(c.variants.iter().all(|v| v.sticky_value.is_none())),
    }
    for header in [&c.header, &c.debug_header, &c.overrides.header] {
        assert!(header.as_deref().is_none_or(cookie::is_token), "{header:?}");
    }
    if let Some(query) = &c.overrides.query {
        assert!(
            !query.is_empty() && query.bytes().all(is_name_char),
            "{query:?}"
        );
    }
    for key in &c.keys {
        if let KeySource::Header(name) | KeySource::Cookie(name) = key {
            assert!(cookie::is_token(name), "{name:?}");
        }
    }
    for method in &c.exclude.methods {
        assert!(cookie::is_token(method) && *method == method.to_ascii_uppercase());
    }
}

fn outcome(r: &Result<Config, ConfigError>) -> Result<String, ConfigError> {
    r.as_ref().map(|c| format!("{c:?}")).map_err(Clone::clone)
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes, as get_config could return them.
    match Config::from_json(data) {
        Ok(c) => check_config(&c),
        Err(e) => check_error(&e, &present_keys(data)),
    }

    // Structured JSON from the same bytes.
    let mut u = Unstructured::new(data);
    let Ok(fields) = Vec::<(Key, Node)>::arbitrary(&mut u) else {
        return;
    };
    let mut keys = Vec::new();
    let value = object(&fields, 0, &mut keys);
    let parsed = Config::from_value(&value);
    match &parsed {
        Ok(c) => check_config(c),
        Err(e) => check_error(e, &keys),
    }
    // serde_json's text round trip of a float is not exact (it parses
    // without `float_roundtrip`), so only float-free values must agree.
    if !has_float(&value) {
        let text = serde_json::to_vec(&value).unwrap_or_default();
        assert_eq!(
            outcome(&parsed),
            outcome(&Config::from_json(&text)),
            "{value} parses differently as text"
        );
    }
});

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

/// Every object key of `data` if it is JSON (else none).
fn present_keys(data: &[u8]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) {
        walk(&v, &mut out);
    }
    out
}
