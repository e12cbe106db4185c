//! Pieces of Traefik-faithful mode: what Traefik 3.7 does that a naive host
//! would not.
//!
//! * [`stringify_config`] / [`config_bytes`]: the exact bytes `get_config`
//!   returns in Traefik for a given plugin configuration.
//! * [`FakeRandom`]: WASI `random_get` is a PRNG seeded with 42 in every
//!   instance (wazero's default), so every instance yields the same bytes.
//! * [`FakeMonotonicClock`]: the monotonic clock starts at 0 and advances
//!   1 ms per read (wazero's default). The wall clock is real.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// What Traefik 3.7 hands a wasm plugin for this configuration, as a value.
///
/// `config` is the plugin's section of the dynamic configuration (what the
/// YAML/TOML/JSON file holds under `plugin.<name>`), as JSON. Traefik's file
/// provider (paerser's raw-map decoding) turns it into a Go
/// `map[string]any` in which:
///
/// * every scalar is a string: `10` → `"10"`, `true` → `"true"`, floats with
///   six decimals, `0.25` → `"0.250000"`, whole floats without: `10.0` → `"10"`;
/// * a list of scalars keeps its element type when all elements are
///   numbers or all are booleans (`[1, 2]` stays `[1, 2]`; floats keep six
///   decimals of precision), and becomes strings when any element is a
///   string (`[1, "two"]` → `["1", "two"]`);
/// * a list holding objects keeps only its objects;
/// * an empty list or empty object becomes `""`; `null` entries vanish;
/// * keys keep their case and are sorted when marshalled.
///
/// Mixing booleans and numbers in one list, nesting lists, or `null` inside
/// a list makes Traefik reject the configuration; so does this function.
///
/// ```
/// use serde_json::json;
/// let given = json!({"percent": 10, "on": true, "ratio": 0.25, "list": [1, "two"]});
/// let bytes = http_wasm_host::traefik::config_bytes(&given).unwrap();
/// assert_eq!(
///     String::from_utf8(bytes).unwrap(),
///     r#"{"list":["1","two"],"on":"true","percent":"10","ratio":"0.250000"}"#
/// );
/// ```
pub fn stringify_config(config: &Value) -> Result<Value> {
    match config {
        Value::Null => Ok(Value::Null),
        Value::Object(map) => stringify_map(map, ""),
        other => Err(Error::Config(format!(
            "Traefik hands a plugin a map, not {}",
            kind_name(other)
        ))),
    }
}

/// The bytes `get_config` returns in Traefik: Go's `json.Marshal` of
/// [`stringify_config`]'s result.
pub fn config_bytes(config: &Value) -> Result<Vec<u8>> {
    Ok(go_json_marshal(&stringify_config(config)?).into_bytes())
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn stringify_map(map: &Map<String, Value>, path: &str) -> Result<Value> {
    if map.is_empty() && !path.is_empty() {
        return Ok(Value::String(String::new()));
    }
    let mut out = Map::new();
    for (key, value) in map {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let converted = match value {
            Value::Null => continue,
            Value::Object(inner) => stringify_map(inner, &here)?,
            Value::Array(items) => stringify_list(items, &here)?,
            scalar => Value::String(simple_value(scalar, &here)?),
        };
        out.insert(key.clone(), converted);
    }
    Ok(Value::Object(out))
}

/// paerser's `getSimpleValue`: a scalar as Traefik's string.
fn simple_value(value: &Value, path: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => go_float_6(f),
            (None, None, None) => n.to_string(),
        }),
        other => Err(Error::Config(format!(
            "field {path}: unsupported simple value type: {}",
            kind_name(other)
        ))),
    }
}

/// `strings.TrimSuffix(strconv.FormatFloat(f, 'f', 6, 64), ".000000")`.
fn go_float_6(f: f64) -> String {
    let s = format!("{f:.6}");
    match s.strip_suffix(".000000") {
        Some(whole) => whole.to_owned(),
        None => s,
    }
}

/// The element kinds paerser tells apart, ordered like Go's `reflect.Kind`
/// (it keeps the largest one seen as the list's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    String,
}

fn stringify_list(items: &[Value], path: &str) -> Result<Value> {
    if items.is_empty() {
        return Ok(Value::String(String::new()));
    }
    if items.iter().any(Value::is_object) {
        // Only the maps become child nodes; paerser drops the scalars.
        let mut maps = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Value::Object(map) = item {
                maps.push(stringify_map(map, &format!("{path}[{i}]"))?);
            }
        }
        return Ok(Value::Array(maps));
    }
    let mut kind = Kind::Bool;
    let mut strings = Vec::with_capacity(items.len());
    for item in items {
        let item_kind = match item {
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() => Kind::Int,
            Value::Number(n) if n.is_u64() => Kind::Uint,
            Value::Number(_) => Kind::Float,
            Value::String(_) => Kind::String,
            other => {
                return Err(Error::Config(format!(
                    "field {path}: unsupported simple value type: {}",
                    kind_name(other)
                )));
            }
        };
        kind = kind.max(item_kind);
        strings.push(simple_value(item, path)?);
    }
    let bad = |what: &str, s: &str| Error::Config(format!("field {path}: parse {what}: {s}"));
    strings
        .iter()
        .map(|s| {
            Ok(match kind {
                Kind::String => Value::String(s.clone()),
                Kind::Bool => Value::Bool(s.parse::<bool>().map_err(|_| bad("bool", s))?),
                Kind::Int => Value::Number(s.parse::<i64>().map_err(|_| bad("int", s))?.into()),
                Kind::Uint => Value::Number(s.parse::<u64>().map_err(|_| bad("uint", s))?.into()),
                Kind::Float => {
                    let f = s.parse::<f64>().map_err(|_| bad("float64", s))?;
                    Value::Number(Number::from_f64(f).ok_or_else(|| bad("float64", s))?)
                }
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Value::Array)
}

/// Go's `json.Marshal` of a decoded JSON value: map keys sorted, HTML
/// characters escaped (`<` → `\u003c`), floats in Go's shortest form.
pub fn go_json_marshal(value: &Value) -> String {
    let mut out = String::new();
    marshal_into(value, &mut out);
    out
}

fn marshal_into(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => out.push_str(&go_float_json(f)),
            (None, None, None) => out.push_str(&n.to_string()),
        },
        Value::String(s) => go_quote(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                marshal_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_quote(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    marshal_into(v, out);
                }
            }
            out.push('}');
        }
    }
}

/// encoding/json's float64 format: shortest round-trip digits, plain
/// between 1e-6 and 1e21, otherwise `1e+21` / `1e-7`.
fn go_float_json(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        format!("{f}")
    } else {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    }
}

/// encoding/json's string quoting with HTML escaping on (its default).
fn go_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The WASI random source of Traefik-faithful mode: deterministic, seeded
/// with 42, restarted for every instance.
///
/// wazero (and so Traefik) uses Go's `math/rand` seeded with 42; this is
/// SplitMix64 seeded with 42. The bytes differ from wazero's, the property
/// that matters does not: every instance yields the same sequence, so
/// "random" choices made in a guest repeat across instances.
#[derive(Debug, Clone)]
pub struct FakeRandom {
    state: u64,
}

impl FakeRandom {
    /// The seed wazero uses.
    pub const SEED: u64 = 42;

    /// A generator at the start of the seed-42 sequence.
    pub fn new() -> Self {
        FakeRandom { state: Self::SEED }
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fill `dest` with the next bytes of the sequence.
    pub fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

impl Default for FakeRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl rand_core::TryRng for FakeRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.next_u64() as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dest);
        Ok(())
    }
}

/// wazero's default monotonic clock: the first read is 0 ns, each read
/// after it 1 ms later. One per instance.
#[derive(Debug, Default)]
pub struct FakeMonotonicClock {
    next: AtomicU64,
}

impl FakeMonotonicClock {
    /// The step between two reads: 1 ms.
    pub const STEP_NANOS: u64 = 1_000_000;

    /// A clock whose first read is 0.
    pub fn new() -> Self {
        Self::default()
    }
}

impl wasmtime_wasi::HostMonotonicClock for FakeMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.next.fetch_add(Self::STEP_NANOS, Ordering::Relaxed)
    }
}

/// The real wall clock (Traefik passes `WithSysWalltime`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealWallClock;

impl wasmtime_wasi::HostWallClock for RealWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(v: Value) -> String {
        config_bytes(&v).map_or_else(
            |e| format!("error: {e}"),
            |b| String::from_utf8_lossy(&b).into_owned(),
        )
    }

    #[test]
    fn the_notes_example() {
        assert_eq!(
            bytes(json!({"percent": 10, "on": true, "ratio": 0.25, "list": [1, "two"]})),
            r#"{"list":["1","two"],"on":"true","percent":"10","ratio":"0.250000"}"#
        );
    }

    #[test]
    fn typed_lists_keep_their_type() {
        assert_eq!(bytes(json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
        assert_eq!(bytes(json!({"a": [true, false]})), r#"{"a":[true,false]}"#);
        assert_eq!(bytes(json!({"a": [1, 2.5]})), r#"{"a":[1,2.5]}"#);
        assert_eq!(bytes(json!({"a": [0.1234567]})), r#"{"a":[0.123457]}"#);
        assert_eq!(bytes(json!({"a": [1, "b"]})), r#"{"a":["1","b"]}"#);
        assert!(bytes(json!({"a": [1, true]})).starts_with("error"));
        assert!(bytes(json!({"a": [[1]]})).starts_with("error"));
    }

    #[test]
    fn floats_nesting_and_empties() {
        assert_eq!(
            bytes(json!({"f": 12.5, "g": 10.0})),
            r#"{"f":"12.500000","g":"10"}"#
        );
        assert_eq!(
            bytes(json!({"Outer": {"b": 1, "a": {"x": false}}, "n": null, "e": [], "m": {}})),
            r#"{"Outer":{"a":{"x":"false"},"b":"1"},"e":"","m":""}"#
        );
        assert_eq!(
            bytes(json!({"l": [{"k": 1}, "dropped", {"k": 2}]})),
            r#"{"l":[{"k":"1"},{"k":"2"}]}"#
        );
    }

    #[test]
    fn go_escaping() {
        assert_eq!(
            bytes(json!({"h": "<a&b>\u{1}\n"})),
            r#"{"h":"\u003ca\u0026b\u003e\u0001\n"}"#
        );
        assert_eq!(go_float_json(1e21), "1e+21");
        assert_eq!(go_float_json(1e-7), "1e-7");
        assert_eq!(go_float_json(2.0), "2");
    }

    #[test]
    fn fake_random_repeats_per_instance() {
        let (mut a, mut b) = (FakeRandom::new(), FakeRandom::new());
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
    }
}
