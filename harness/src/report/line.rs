//! One line of Traefik's JSON access log, read into the few fields a report
//! needs. Everything else is skipped without being built (serde's
//! `IgnoredAny`), and a line that is not an access-log entry becomes a
//! [`Hostile`] kind, never an error.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hostile {
    /// Longer than [`super::MAX_LINE`]; not even parsed.
    TooLong,
    /// JSON that ends before the object does (a line cut off by a crash,
    /// a full disk or a rotation mid-write).
    Truncated,
    /// Not JSON at all (or JSON followed by something else).
    NotJson,
    /// JSON, but not an object.
    NotAnObject,
    /// An object without a numeric `DownstreamStatus`: Traefik's own log,
    /// or another program's.
    NotAccessLog,
}

impl Hostile {
    /// Every kind, in report order.
    pub const ALL: [Hostile; 5] = [
        Hostile::TooLong,
        Hostile::Truncated,
        Hostile::NotJson,
        Hostile::NotAnObject,
        Hostile::NotAccessLog,
    ];

    /// How the text report names it.
    pub fn describe(self) -> &'static str {
        match self {
            Hostile::TooLong => "too long",
            Hostile::Truncated => "truncated",
            Hostile::NotJson => "not JSON",
            Hostile::NotAnObject => "not a JSON object",
            Hostile::NotAccessLog => "not an access-log entry",
        }
    }
}

impl fmt::Display for Hostile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Which header fields to pick out of a line: `request_<name>` and
/// `downstream_<name>`, names compared ASCII case-insensitively (Traefik
/// writes Go's canonical form, `X-User-Id`).
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// The cohort request header (`X-Canary`).
    pub cohort: Option<String>,
    /// The debug response header (`X-Cohort-Debug`), `v2; reason=cookie`.
    pub debug: Option<String>,
    /// A request header keying visitors (`X-User-Id`).
    pub key_header: Option<String>,
    /// Whether `request_User-Agent` is wanted.
    pub user_agent: bool,
    /// Whether `request_Cookie` is wanted.
    pub cookie: bool,
}

/// The fields of one access-log entry a report reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// `DownstreamStatus`: what the client got.
    pub status: u16,
    /// `StartUTC`, else `StartLocal`, else `time` (RFC 3339 text).
    pub start: Option<String>,
    /// `RouterName` (`my-app@file -> my-app-v2@file` for a child router).
    pub router: Option<String>,
    /// `ServiceName` (the load balancer that served it).
    pub service: Option<String>,
    /// `ClientHost` (the `X-Forwarded-For` Traefik trusted, else the peer).
    pub client_host: Option<String>,
    /// `entryPointName` (`web`).
    pub entry_point: Option<String>,
    /// `request_<cohort header>`.
    pub cohort: Option<String>,
    /// `downstream_<debug header>`, else `origin_<debug header>`.
    pub debug: Option<String>,
    /// `request_<key header>`.
    pub key_header: Option<String>,
    /// `request_User-Agent`.
    pub user_agent: Option<String>,
    /// `request_Cookie` (`REDACTED` in the recipe).
    pub cookie: Option<String>,
}

/// Reads `line` (no newline) as an access-log entry.
pub fn parse(line: &[u8], wanted: &Wanted) -> Result<Entry, Hostile> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let parsed = EntrySeed { wanted }.deserialize(&mut de).and_then(|e| {
        de.end()?;
        Ok(e)
    });
    match parsed {
        Ok(Some(entry)) => Ok(entry),
        Ok(None) => Err(Hostile::NotAccessLog),
        Err(e) => Err(match e.classify() {
            serde_json::error::Category::Eof => Hostile::Truncated,
            // A type error comes before the rest is read: `2026-12-01T10:00:00Z
            // INF ...` (Traefik's own log) starts like a number.
            serde_json::error::Category::Data => match serde_json::from_slice::<IgnoredAny>(line) {
                Ok(_) => Hostile::NotAnObject,
                Err(e) if e.classify() == serde_json::error::Category::Eof => Hostile::Truncated,
                Err(_) => Hostile::NotJson,
            },
            _ => Hostile::NotJson,
        }),
    }
}

/// An entry, or `None` for an object without a `DownstreamStatus`.
type Parsed = Option<Entry>;

struct EntrySeed<'w> {
    wanted: &'w Wanted,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Parsed;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Parsed, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// Where a field of the line goes.
enum Slot {
    Status,
    StartUtc,
    StartLocal,
    Time,
    Router,
    Service,
    ClientHost,
    EntryPoint,
    Cohort,
    Debug,
    Origin,
    KeyHeader,
    UserAgent,
    Cookie,
    Skip,
}

fn header_is(field: &str, prefix: &str, name: Option<&str>) -> bool {
    name.is_some_and(|name| {
        field
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(name))
    })
}

impl EntrySeed<'_> {
    fn slot(&self, field: &str) -> Slot {
        let w = self.wanted;
        match field {
            "DownstreamStatus" => Slot::Status,
            "StartUTC" => Slot::StartUtc,
            "StartLocal" => Slot::StartLocal,
            "time" => Slot::Time,
            "RouterName" => Slot::Router,
            "ServiceName" => Slot::Service,
            "ClientHost" => Slot::ClientHost,
            "entryPointName" => Slot::EntryPoint,
            _ if header_is(field, "request_", w.cohort.as_deref()) => Slot::Cohort,
            _ if header_is(field, "downstream_", w.debug.as_deref()) => Slot::Debug,
            _ if header_is(field, "origin_", w.debug.as_deref()) => Slot::Origin,
            _ if header_is(field, "request_", w.key_header.as_deref()) => Slot::KeyHeader,
            _ if w.user_agent && header_is(field, "request_", Some("User-Agent")) => {
                Slot::UserAgent
            }
            _ if w.cookie && header_is(field, "request_", Some("Cookie")) => Slot::Cookie,
            _ => Slot::Skip,
        }
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (one access-log entry)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut entry = Entry::default();
        let mut status = None;
        let mut origin = None;
        let mut start_local = None;
        let mut time = None;
        while let Some(field) = map.next_key::<Key<'de>>()? {
            let text = |map: &mut A| -> Result<Option<String>, A::Error> {
                Ok(map.next_value::<Scalar>()?.into_text())
            };
            match self.slot(&field.0) {
                Slot::Status => {
                    status = match map.next_value::<Scalar>()? {
                        Scalar::Number(n) if (100.0..=999.0).contains(&n) && n.fract() == 0.0 => {
                            Some(n as u16)
                        }
                        _ => None,
                    };
                }
                Slot::StartUtc => entry.start = text(&mut map)?,
                Slot::StartLocal => start_local = text(&mut map)?,
                Slot::Time => time = text(&mut map)?,
                Slot::Router => entry.router = text(&mut map)?,
                Slot::Service => entry.service = text(&mut map)?,
                Slot::ClientHost => entry.client_host = text(&mut map)?,
                Slot::EntryPoint => entry.entry_point = text(&mut map)?,
                Slot::Cohort => entry.cohort = text(&mut map)?,
                Slot::Debug => entry.debug = text(&mut map)?,
                Slot::Origin => origin = text(&mut map)?,
                Slot::KeyHeader => entry.key_header = text(&mut map)?,
                Slot::UserAgent => entry.user_agent = text(&mut map)?,
                Slot::Cookie => entry.cookie = text(&mut map)?,
                Slot::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(status) = status else {
            return Ok(None);
        };
        entry.status = status;
        entry.start = entry.start.or(start_local).or(time);
        entry.debug = entry.debug.or(origin);
        Ok(Some(entry))
    }
}

/// A field name, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A field's value, kept only when it is a string or a number; anything
/// else (a nested array or object, `null`, a boolean) reads as absent.
enum Scalar {
    Text(String),
    Number(f64),
    Other,
}

impl Scalar {
    fn into_text(self) -> Option<String> {
        match self {
            Scalar::Text(t) => Some(t),
            Scalar::Number(n) => Some(n.to_string()),
            Scalar::Other => None,
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The cohort and the reason in a debug header value, `v2; reason=cookie`.
pub fn debug_parts(value: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = value.split(';').map(str::trim);
    let cohort = parts.next().filter(|c| !c.is_empty());
    let reason = parts.find_map(|p| p.strip_prefix("reason="));
    (cohort, reason)
}

/// The value of cookie `name` in a `Cookie` header as Traefik logs it
/// (several header lines joined with `,`); the first pair of that name.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split([';', ','])
        .map(str::trim)
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted {
            cohort: Some("X-Canary".into()),
            debug: Some("X-Cohort-Debug".into()),
            key_header: Some("x-user-id".into()),
            user_agent: true,
            cookie: true,
        }
    }

    #[test]
    fn reads_the_fields_of_a_real_traefik_3_7_line() {
        // A line Traefik 3.7.15 wrote with the recipe (notes/access-log.md).
        let line = br#"{"ClientAddr":"127.0.0.1:36208","ClientHost":"127.0.0.1","ClientPort":"36208","ClientUsername":"-","DownstreamContentSize":463,"DownstreamStatus":200,"Duration":1059753,"OriginContentSize":463,"OriginDuration":660674,"OriginStatus":200,"Overhead":399079,"RequestAddr":"my-app-canary-sticky-prod.apps.example.com","RequestContentSize":0,"RequestCount":1,"RequestHost":"my-app-canary-sticky-prod.apps.example.com","RequestMethod":"GET","RequestPath":"/a","RequestPort":"-","RequestProtocol":"HTTP/1.1","RequestScheme":"http","RetryAttempts":0,"RouterName":"my-app@file -\u003e my-app-v1@file","ServiceAddr":"127.0.0.1:28102","ServiceName":"my-app-v1-prod@file","ServiceURL":"http://127.0.0.1:28102","StartLocal":"2026-12-01T23:02:28.521734118Z","StartUTC":"2026-12-01T23:02:28.521734118Z","downstream_X-Cohort-Debug":"v1; reason=assigned","entryPointName":"web","level":"info","msg":"","origin_X-Cohort-Debug":"v1; reason=assigned","request_Authorization":"REDACTED","request_Cookie":"REDACTED","request_User-Agent":"curl/7.88.1","request_X-Canary":"v1","request_X-User-Id":"alice","time":"2026-12-01T23:02:28Z"}"#;
        let entry = parse(line, &wanted()).expect("an entry");
        assert_eq!(
            entry,
            Entry {
                status: 200,
                start: Some("2026-12-01T23:02:28.521734118Z".into()),
                router: Some("my-app@file -> my-app-v1@file".into()),
                service: Some("my-app-v1-prod@file".into()),
                client_host: Some("127.0.0.1".into()),
                entry_point: Some("web".into()),
                cohort: Some("v1".into()),
                debug: Some("v1; reason=assigned".into()),
                key_header: Some("alice".into()),
                user_agent: Some("curl/7.88.1".into()),
                cookie: Some("REDACTED".into()),
            }
        );
    }

    #[test]
    fn falls_back_to_other_times_and_the_origin_header() {
        let entry = parse(
            br#"{"DownstreamStatus":503,"StartLocal":"2026-12-01T10:00:00+01:00","time":"x","origin_x-cohort-debug":"v2; reason=cookie"}"#,
            &wanted(),
        )
        .expect("entry");
        assert_eq!(entry.status, 503);
        assert_eq!(entry.start.as_deref(), Some("2026-12-01T10:00:00+01:00"));
        assert_eq!(entry.debug.as_deref(), Some("v2; reason=cookie"));
        let entry = parse(br#"{"DownstreamStatus":404,"time":"t"}"#, &wanted()).expect("entry");
        assert_eq!(entry.start.as_deref(), Some("t"));
        assert_eq!(entry.cohort, None);
    }

    #[test]
    fn hostile_lines_are_classified_not_fatal() {
        let w = wanted();
        for (line, kind) in [
            (
                &br#"{"DownstreamStatus":200,"request_X-Canary":"v"#[..],
                Hostile::Truncated,
            ),
            (b"{", Hostile::Truncated),
            (b"", Hostile::Truncated),
            (b"hello", Hostile::NotJson),
            (
                b"2026-12-01T10:00:00Z INF Configuration loaded",
                Hostile::NotJson,
            ),
            (b"[1, {\"a\":", Hostile::Truncated),
            (b"{\"DownstreamStatus\":200} trailing", Hostile::NotJson),
            (b"{\"a\":1}{\"b\":2}", Hostile::NotJson),
            (b"\xff\xfe{}", Hostile::NotJson),
            (b"{\"request_X-Canary\":\"\xff\"}", Hostile::NotJson),
            (b"[1,2]", Hostile::NotAnObject),
            (b"\"text\"", Hostile::NotAnObject),
            (b"42", Hostile::NotAnObject),
            (b"null", Hostile::NotAnObject),
            (b"{}", Hostile::NotAccessLog),
            (
                br#"{"level":"info","msg":"Configuration loaded","time":"2026-12-01T10:00:00Z"}"#,
                Hostile::NotAccessLog,
            ),
            (br#"{"DownstreamStatus":"200"}"#, Hostile::NotAccessLog),
            (br#"{"DownstreamStatus":200.5}"#, Hostile::NotAccessLog),
            (br#"{"DownstreamStatus":99}"#, Hostile::NotAccessLog),
            (br#"{"DownstreamStatus":70000}"#, Hostile::NotAccessLog),
            (br#"{"DownstreamStatus":-1}"#, Hostile::NotAccessLog),
            (br#"{"DownstreamStatus":null}"#, Hostile::NotAccessLog),
        ] {
            assert_eq!(
                parse(line, &w),
                Err(kind),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn odd_values_read_as_absent_or_as_text() {
        let entry = parse(
            br#"{"DownstreamStatus":200,"request_X-Canary":["v2"],"RouterName":{"a":[1,{"b":null}]},"ServiceName":7,"request_X-User-Id":"caf\u00e9 \"q\"","ClientHost":true}"#,
            &wanted(),
        )
        .expect("entry");
        assert_eq!(entry.cohort, None);
        assert_eq!(entry.router, None);
        assert_eq!(entry.service.as_deref(), Some("7"));
        assert_eq!(entry.key_header.as_deref(), Some("café \"q\""));
        assert_eq!(entry.client_host, None);
        // Escaped field names are still recognised; the last duplicate wins.
        let entry = parse(
            br#"{"DownstreamStatus":200,"request_X-\u0043anary":"v1","request_X-Canary":"v2"}"#,
            &wanted(),
        )
        .expect("entry");
        assert_eq!(entry.cohort.as_deref(), Some("v2"));
    }

    #[test]
    fn debug_values_and_cookies() {
        assert_eq!(
            debug_parts("v2; reason=cookie"),
            (Some("v2"), Some("cookie"))
        );
        assert_eq!(debug_parts("v1"), (Some("v1"), None));
        assert_eq!(debug_parts(""), (None, None));
        assert_eq!(debug_parts(";reason=x"), (None, Some("x")));
        let header = "a=1; cohort_id=abc; cohort_id=def,session=s";
        assert_eq!(cookie_value(header, "cohort_id"), Some("abc"));
        assert_eq!(cookie_value(header, "session"), Some("s"));
        assert_eq!(cookie_value(header, "missing"), None);
        assert_eq!(cookie_value("REDACTED", "a"), None);
    }
}
