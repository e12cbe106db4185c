//! The request/response model the host hands to a guest and to a backend.
//!
//! Plain owned data: a [`Request`] as the client sent it, a [`Response`] as
//! the client receives it, and [`Headers`], an ordered multimap whose names
//! compare case-insensitively but keep the case they were written with.
//!
//! ```
//! use http_wasm_host::{Request, Response};
//!
//! let req = Request::get("/path?q=1")
//!     .header("Host", "example.com")
//!     .header("Cookie", "a=b");
//! assert_eq!(req.headers.get("cookie"), Some("a=b"));
//!
//! let resp = Response::new(302).header("Location", "/login");
//! assert_eq!(resp.status, 302);
//! ```

use std::borrow::Cow;
use std::fmt;

/// An ordered multimap of HTTP header fields.
///
/// * Names compare ASCII-case-insensitively and keep their original case.
/// * Insertion order is kept, including between different names.
/// * A name may carry several values ([`append`](Headers::append)).
/// * Values are stored as the exact bytes given: Go's `net/http` (and so
///   Traefik) passes header bytes that are not UTF-8 through untouched, and
///   so does this host. The `_bytes` methods ([`append_bytes`],
///   [`set_bytes`], [`get_bytes`], [`get_all_bytes`], [`iter_bytes`]) see
///   them exactly. The text methods ([`get`], [`get_all`], [`iter`]) return
///   UTF-8 values as they are and a non-UTF-8 value *lossily decoded*
///   (each invalid sequence becomes U+FFFD), which is only for display.
///
/// [`append_bytes`]: Headers::append_bytes
/// [`set_bytes`]: Headers::set_bytes
/// [`get_bytes`]: Headers::get_bytes
/// [`get_all_bytes`]: Headers::get_all_bytes
/// [`iter_bytes`]: Headers::iter_bytes
/// [`get`]: Headers::get
/// [`get_all`]: Headers::get_all
/// [`iter`]: Headers::iter
///
/// ```
/// use http_wasm_host::Headers;
///
/// let mut h = Headers::new();
/// h.append_bytes("Cookie", b"a=\xff\x01".to_vec());
/// assert_eq!(h.get_bytes("cookie"), Some(&b"a=\xff\x01"[..]));
/// assert_eq!(h.get("cookie"), Some("a=\u{fffd}\u{1}"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Value)>,
}

/// One header value: its exact bytes, and a lossy decoding kept only when
/// the bytes are not UTF-8 (so the text accessors can hand out `&str`).
#[derive(Clone, PartialEq, Eq)]
struct Value {
    bytes: Vec<u8>,
    /// `Some` exactly when `bytes` is not valid UTF-8.
    lossy: Option<String>,
}

impl Value {
    fn new(bytes: Vec<u8>) -> Self {
        let lossy = match std::str::from_utf8(&bytes) {
            Ok(_) => None,
            Err(_) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        };
        Value { bytes, lossy }
    }

    fn text(value: String) -> Self {
        Value {
            bytes: value.into_bytes(),
            lossy: None,
        }
    }

    fn as_str(&self) -> &str {
        match &self.lossy {
            Some(lossy) => lossy,
            // `lossy` is None only when the bytes are UTF-8.
            None => std::str::from_utf8(&self.bytes).unwrap_or_default(),
        }
    }
}

impl Headers {
    /// An empty header map.
    pub fn new() -> Self {
        Self::default()
    }

    fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Value> + use<'a, 'n> {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of `name`, if any (lossily decoded if it is not
    /// UTF-8; see [`get_bytes`](Headers::get_bytes)).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values(name).next().map(Value::as_str)
    }

    /// The first value of `name`, exactly as stored.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next().map(|v| v.bytes.as_slice())
    }

    /// Every value of `name`, in order (non-UTF-8 ones lossily decoded;
    /// see [`get_all_bytes`](Headers::get_all_bytes)).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.values(name).map(Value::as_str).collect()
    }

    /// Every value of `name`, in order, exactly as stored.
    pub fn get_all_bytes(&self, name: &str) -> Vec<&[u8]> {
        self.values(name).map(|v| v.bytes.as_slice()).collect()
    }

    /// Every value of exactly `name` (case-sensitive), in order, as stored.
    pub(crate) fn get_all_exact_bytes(&self, name: &str) -> Vec<&[u8]> {
        self.entries
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.bytes.as_slice())
            .collect()
    }

    /// Whether `name` has at least one value.
    pub fn contains(&self, name: &str) -> bool {
        self.values(name).next().is_some()
    }

    /// Add a value after all existing ones (like Go's `Header.Add`).
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), Value::text(value.into())));
    }

    /// Add a value given as bytes (any bytes, UTF-8 or not) after all
    /// existing ones.
    pub fn append_bytes(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.entries.push((name.into(), Value::new(value.into())));
    }

    /// Replace every value of `name` with `value` (like Go's `Header.Set`).
    ///
    /// The new value takes the place of the first old one, so a replaced
    /// header keeps its position; a new name goes at the end.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.set_value(name.into(), Value::text(value.into()));
    }

    /// Like [`set`](Headers::set), with the value given as bytes.
    pub fn set_bytes(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.set_value(name.into(), Value::new(value.into()));
    }

    fn set_value(&mut self, name: String, value: Value) {
        match self
            .entries
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(first) => {
                let mut index = 0;
                self.entries.retain(|(n, _)| {
                    let keep = index <= first || !n.eq_ignore_ascii_case(&name);
                    index += 1;
                    keep
                });
                self.entries[first] = (name, value);
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Like [`set_bytes`](Headers::set_bytes) but matching `name` exactly
    /// (case-sensitive); the value goes at the end.
    pub(crate) fn set_exact_bytes(&mut self, name: &str, value: &[u8]) {
        self.entries.retain(|(n, _)| n != name);
        self.entries
            .push((name.to_owned(), Value::new(value.to_vec())));
    }

    /// Move every entry of `other` after the existing ones, as they are.
    pub(crate) fn append_all(&mut self, other: Headers) {
        self.entries.extend(other.entries);
    }

    /// Remove every value of `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.entries.len()
    }

    /// Remove every value of exactly `name` (case-sensitive).
    pub(crate) fn remove_exact(&mut self, name: &str) {
        self.entries.retain(|(n, _)| n != name);
    }

    /// The distinct names, in order of first appearance, as first written.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (n, _) in &self.entries {
            if !names.iter().any(|seen| seen.eq_ignore_ascii_case(n)) {
                names.push(n);
            }
        }
        names
    }

    /// Every `(name, value)` pair in order (non-UTF-8 values lossily
    /// decoded; see [`iter_bytes`](Headers::iter_bytes)).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Every `(name, value)` pair in order, values exactly as stored.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_str(), v.bytes.as_slice()))
    }

    /// Number of `(name, value)` pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Non-UTF-8 values show as byte strings so a test failure shows
        // the exact bytes.
        let mut list = f.debug_list();
        for (n, v) in &self.entries {
            match &v.lossy {
                None => list.entry(&(n.as_str(), v.as_str())),
                Some(_) => list.entry(&(n.as_str(), v.bytes.escape_ascii().to_string())),
            };
        }
        list.finish()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers {
            entries: iter
                .into_iter()
                .map(|(n, v)| (n.into(), Value::text(v.into())))
                .collect(),
        }
    }
}

impl<N: Into<String>, V: Into<String>, const K: usize> From<[(N, V); K]> for Headers {
    fn from(pairs: [(N, V); K]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
///
/// A name holding a byte that is not an HTTP token character is returned
/// unchanged, as Go does.
pub fn canonical_header_name(name: &str) -> Cow<'_, str> {
    fn token(c: u8) -> bool {
        c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
    }
    if !name.bytes().all(token) {
        return Cow::Borrowed(name);
    }
    let mut upper = true;
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    if out == name {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(out)
    }
}

/// An HTTP request as the host sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query as sent, e.g. `/v1/hi?name=panda` (what `get_uri` returns).
    pub uri: String,
    /// `HTTP/1.1` by default (what `get_protocol_version` returns).
    pub protocol: String,
    /// The client's `ip:port` (what `get_source_addr` returns).
    pub source_addr: String,
    /// Request header fields. No `Host` is added for you.
    pub headers: Headers,
    /// The request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Headers,
}

impl Request {
    /// A request with the given method and URI and nothing else.
    pub fn new(method: impl Into<String>, uri: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".to_owned(),
            source_addr: "127.0.0.1:40000".to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
            trailers: Headers::new(),
        }
    }

    /// `GET uri`.
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new("GET", uri)
    }

    /// `POST uri`.
    pub fn post(uri: impl Into<String>) -> Self {
        Self::new("POST", uri)
    }

    /// Append a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Append a header field whose value is these exact bytes (UTF-8 or not).
    pub fn header_bytes(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append_bytes(name, value);
        self
    }

    /// Append a trailer field.
    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.trailers.append(name, value);
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set the protocol version, e.g. `HTTP/2.0`.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = protocol.into();
        self
    }

    /// Set the client address, e.g. `10.0.0.1:5555`.
    pub fn source_addr(mut self, addr: impl Into<String>) -> Self {
        self.source_addr = addr.into();
        self
    }

    /// The body as text (lossy UTF-8).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("protocol", &self.protocol)
            .field("source_addr", &self.source_addr)
            .field("headers", &self.headers)
            .field("body", &self.body_text())
            .field("trailers", &self.trailers)
            .finish()
    }
}

/// An HTTP response as the client receives it.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code; 200 unless someone wrote another.
    pub status: u16,
    /// Response header fields.
    pub headers: Headers,
    /// The response body.
    pub body: Vec<u8>,
    /// Response trailers.
    pub trailers: Headers,
}

impl Default for Response {
    fn default() -> Self {
        Response::new(200)
    }
}

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Headers::new(),
            body: Vec::new(),
            trailers: Headers::new(),
        }
    }

    /// `200` with this body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Response::new(200).body(body)
    }

    /// Append a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Append a header field whose value is these exact bytes (UTF-8 or not).
    pub fn header_bytes(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append_bytes(name, value);
        self
    }

    /// Append a trailer field.
    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.trailers.append(name, value);
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The body as text (lossy UTF-8).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body_text())
            .field("trailers", &self.trailers)
            .finish()
    }
}

/// The next handler failed instead of answering (is_error=1 for the guest).
///
/// In Traefik this only happens when the next handler panics: an unreachable
/// or failing backend is answered by Traefik's proxy itself (a `502`), which
/// a [`Backend`] expresses as `Ok(Response::new(502))`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// What "next" calls: the service behind the middleware.
///
/// It receives the request as the guest left it and answers it. Closures
/// `Fn(&Request) -> Response` are backends too.
pub trait Backend {
    /// Answer `request`.
    fn serve(&self, request: &Request) -> Result<Response, BackendError>;
}

impl<F: Fn(&Request) -> Response> Backend for F {
    fn serve(&self, request: &Request) -> Result<Response, BackendError> {
        Ok(self(request))
    }
}

/// A backend that answers what it received, and remembers it.
///
/// The answer is `200` (or [`status`](EchoBackend::status)) whose body is
///
/// ```text
/// GET /path HTTP/1.1
/// Name: value        (one line per header field, in order)
///
/// <request body>
/// ```
///
/// plus any headers/trailers configured with the builder methods.
#[derive(Debug, Default)]
pub struct EchoBackend {
    received: std::sync::Mutex<Vec<Request>>,
    status: Option<u16>,
    headers: Headers,
    trailers: Headers,
}

impl EchoBackend {
    /// A plain echo backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer with this status instead of `200`.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Add this header to every answer.
    pub fn response_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Add this header, as exact bytes, to every answer.
    pub fn response_header_bytes(
        mut self,
        name: impl Into<String>,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        self.headers.append_bytes(name, value);
        self
    }

    /// Add this trailer to every answer.
    pub fn response_trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.trailers.append(name, value);
        self
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Request> {
        self.received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The most recent request received.
    pub fn last(&self) -> Option<Request> {
        self.received().pop()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        self.received().len()
    }

    /// The text an echo answer carries for `request`.
    pub fn describe(request: &Request) -> Vec<u8> {
        let mut out =
            format!("{} {} {}\n", request.method, request.uri, request.protocol).into_bytes();
        for (n, v) in request.headers.iter_bytes() {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&request.body);
        out
    }
}

impl Backend for EchoBackend {
    fn serve(&self, request: &Request) -> Result<Response, BackendError> {
        match self.received.lock() {
            Ok(mut r) => r.push(request.clone()),
            Err(poisoned) => poisoned.into_inner().push(request.clone()),
        }
        Ok(Response {
            status: self.status.unwrap_or(200),
            headers: self.headers.clone(),
            body: Self::describe(request),
            trailers: self.trailers.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place_and_drops_the_rest() {
        let mut h = Headers::from([("A", "1"), ("b", "2"), ("a", "3"), ("C", "4")]);
        h.set("a", "x");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            vec![("a", "x"), ("b", "2"), ("C", "4")]
        );
        h.set("D", "5");
        assert_eq!(h.names(), vec!["a", "b", "C", "D"]);
    }

    #[test]
    fn lookups_ignore_case_and_keep_order() {
        let h = Headers::from([("Set-Cookie", "a=1"), ("set-cookie", "b=2")]);
        assert_eq!(h.get_all("SET-COOKIE"), vec!["a=1", "b=2"]);
        assert_eq!(h.names(), vec!["Set-Cookie"]);
    }

    #[test]
    fn values_are_kept_as_exact_bytes() {
        let mut h = Headers::new();
        h.append("A", "text");
        h.append_bytes("a", b"\xff\x00;\x80".to_vec());
        h.append_bytes("B", "caf\u{e9}");
        assert_eq!(h.get_all_bytes("A"), vec![&b"text"[..], b"\xff\x00;\x80"]);
        // Text accessors: UTF-8 as is, the rest lossily decoded.
        assert_eq!(h.get_all("a"), vec!["text", "\u{fffd}\u{0};\u{fffd}"]);
        assert_eq!(h.get("b"), Some("caf\u{e9}"));
        assert_eq!(
            h.iter_bytes().map(|(_, v)| v.len()).collect::<Vec<_>>(),
            vec![4, 4, 5]
        );
        h.set_bytes("A", b"\xfe".to_vec());
        assert_eq!(h.get_bytes("a"), Some(&b"\xfe"[..]));
        assert_eq!(h.len(), 2);
        // Equality is on bytes: a lossy twin is a different value.
        let mut lossy = Headers::new();
        lossy.append("A", "\u{fffd}");
        lossy.append("B", "caf\u{e9}");
        assert_ne!(h, lossy);
        assert!(format!("{h:?}").contains("\\xfe"), "{h:?}");
    }

    #[test]
    fn echo_describes_exact_bytes() {
        let req = Request::get("/").header_bytes("Cookie", b"a=\xff".to_vec());
        let described = EchoBackend::describe(&req);
        assert_eq!(described, b"GET / HTTP/1.1\nCookie: a=\xff\n\n");
    }

    #[test]
    fn canonical_names_follow_go() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("X-FOO-bar"), "X-Foo-Bar");
        assert_eq!(canonical_header_name("bad name"), "bad name");
    }
}
