//! The http-wasm handler ABI: its table of host functions, its bit-packing,
//! and the host side of every function, one helper per rule.
//!
//! The reference is http-wasm-host-go (`api/handler/wasm.go`,
//! `handler/middleware.go`, `handler/nethttp/host.go`), which is what
//! Traefik 3.7 embeds. Where that host behaves unlike a naive one, this one
//! does what it does; each such place says so.
//!
//! # Bit-packing
//!
//! The ABI predates multi-value returns, so pairs of `u32` travel as one
//! `i64`, high half first:
//!
//! | value      | high 32 bits              | low 32 bits                  |
//! |------------|---------------------------|------------------------------|
//! | `ctx_next` | request context for `handle_response` | non-zero: call next |
//! | `count_len`| how many NUL-terminated strings       | their byte length, NULs included |
//! | `eof_len`  | 1 when the body is exhausted          | bytes written this call      |
//!
//! Worked examples (see [`pack_ctx_next`], [`pack_count_len`], [`pack_eof_len`]):
//!
//! * `handle_request` returning `1` = `0<<32 | 1`: call next, ctx 0.
//! * returning `68719476737` = `16<<32 | 1`: call next, then
//!   `handle_response(16, is_error)`.
//! * returning `68719476736` = `16<<32 | 0`: don't call next; 16 is ignored.
//! * `get_header_names` over `Accept` and `Content-Type` returns
//!   `2<<32 | 20` = `8589934612` (`"accept\0content-type\0"` is 20 bytes).
//! * `read_body` returning `4294967296` = `1<<32 | 0`: EOF, nothing read;
//!   `16` = `0<<32 | 16`: 16 bytes read, maybe more to come.
//!
//! # The `buf_limit` rule
//!
//! Every `get_*` function takes `(buf, buf_limit)`. The host always returns
//! the full length of the value; it writes the value at `buf` only when that
//! length is `<= buf_limit`. A guest whose buffer was too small retries with
//! a bigger one. One helper implements it: [`write_if_under_limit`].
//!
//! # Guest memory
//!
//! Every access to guest memory goes through [`guest_slice`] /
//! [`guest_slice_mut`]: one `.get(ptr..ptr + len)` and an ABI error when the
//! region is outside memory, never a panic.

use std::fmt;
use std::sync::Arc;

use wasmtime::{Caller, Extern, Linker, Memory};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::host::{LogLine, Shared};
use crate::model::{Headers, Request, Response, canonical_header_name};

/// The import module every http-wasm host function lives in.
pub const MODULE: &str = "http_handler";

/// A WebAssembly value type, as far as this ABI needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// Any other type (floats, vectors, references): never valid here.
    Other(&'static str),
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValType::I32 => f.write_str("i32"),
            ValType::I64 => f.write_str("i64"),
            ValType::Other(name) => f.write_str(name),
        }
    }
}

/// A function signature: `(params) -> (results)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}

impl Signature {
    fn of(params: &[ValType], results: &[ValType]) -> Self {
        Signature {
            params: params.to_vec(),
            results: results.to_vec(),
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "({}) -> ({})", list(&self.params), list(&self.results))
    }
}

/// One host function of the `http_handler` module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Import {
    EnableFeatures,
    GetConfig,
    Log,
    LogEnabled,
    GetMethod,
    SetMethod,
    GetUri,
    SetUri,
    GetProtocolVersion,
    GetSourceAddr,
    GetHeaderNames,
    GetHeaderValues,
    SetHeaderValue,
    AddHeaderValue,
    RemoveHeader,
    ReadBody,
    WriteBody,
    GetStatusCode,
    SetStatusCode,
}

impl Import {
    /// Every host function, in a fixed order (the index of [`HostCalls`]).
    pub const ALL: [Import; 19] = [
        Import::EnableFeatures,
        Import::GetConfig,
        Import::Log,
        Import::LogEnabled,
        Import::GetMethod,
        Import::SetMethod,
        Import::GetUri,
        Import::SetUri,
        Import::GetProtocolVersion,
        Import::GetSourceAddr,
        Import::GetHeaderNames,
        Import::GetHeaderValues,
        Import::SetHeaderValue,
        Import::AddHeaderValue,
        Import::RemoveHeader,
        Import::ReadBody,
        Import::WriteBody,
        Import::GetStatusCode,
        Import::SetStatusCode,
    ];

    /// The import name, e.g. `get_header_values`.
    pub fn name(self) -> &'static str {
        match self {
            Import::EnableFeatures => "enable_features",
            Import::GetConfig => "get_config",
            Import::Log => "log",
            Import::LogEnabled => "log_enabled",
            Import::GetMethod => "get_method",
            Import::SetMethod => "set_method",
            Import::GetUri => "get_uri",
            Import::SetUri => "set_uri",
            Import::GetProtocolVersion => "get_protocol_version",
            Import::GetSourceAddr => "get_source_addr",
            Import::GetHeaderNames => "get_header_names",
            Import::GetHeaderValues => "get_header_values",
            Import::SetHeaderValue => "set_header_value",
            Import::AddHeaderValue => "add_header_value",
            Import::RemoveHeader => "remove_header",
            Import::ReadBody => "read_body",
            Import::WriteBody => "write_body",
            Import::GetStatusCode => "get_status_code",
            Import::SetStatusCode => "set_status_code",
        }
    }

    /// Look an import up by name.
    pub fn from_name(name: &str) -> Option<Import> {
        Import::ALL.into_iter().find(|i| i.name() == name)
    }

    /// The signature the ABI defines for it.
    pub fn signature(self) -> Signature {
        use ValType::{I32, I64};
        match self {
            Import::EnableFeatures | Import::LogEnabled => Signature::of(&[I32], &[I32]),
            Import::GetConfig
            | Import::GetMethod
            | Import::GetUri
            | Import::GetProtocolVersion
            | Import::GetSourceAddr => Signature::of(&[I32, I32], &[I32]),
            Import::SetMethod | Import::SetUri => Signature::of(&[I32, I32], &[]),
            Import::Log | Import::RemoveHeader | Import::WriteBody => {
                Signature::of(&[I32, I32, I32], &[])
            }
            Import::GetHeaderNames | Import::ReadBody => Signature::of(&[I32, I32, I32], &[I64]),
            Import::GetHeaderValues => Signature::of(&[I32, I32, I32, I32, I32], &[I64]),
            Import::SetHeaderValue | Import::AddHeaderValue => {
                Signature::of(&[I32, I32, I32, I32, I32], &[])
            }
            Import::GetStatusCode => Signature::of(&[], &[I32]),
            Import::SetStatusCode => Signature::of(&[I32], &[]),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Import {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Feature bits a guest asks for with `enable_features`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Features(pub u32);

impl Features {
    /// No features.
    pub const NONE: Features = Features(0);
    /// `buffer_request` (1): the request body can be read and still reach next.
    pub const BUFFER_REQUEST: Features = Features(1);
    /// `buffer_response` (2): the response from next can be read and changed.
    pub const BUFFER_RESPONSE: Features = Features(2);
    /// `trailers` (4): the guest wants trailers.
    pub const TRAILERS: Features = Features(4);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Both sets together.
    #[must_use]
    pub fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }
}

impl fmt::Display for Features {
    /// `buffer_request|buffer_response|trailers`, like Go's `Features.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (Features::BUFFER_REQUEST, "buffer_request"),
            (Features::BUFFER_RESPONSE, "buffer_response"),
            (Features::TRAILERS, "trailers"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.contains(*bit))
        .map(|(_, name)| name)
        .collect();
        f.write_str(&names.join("|"))
    }
}

/// Which header map a header function works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// 0: request headers.
    Request,
    /// 1: response headers.
    Response,
    /// 2: request trailers.
    RequestTrailers,
    /// 3: response trailers.
    ResponseTrailers,
}

impl HeaderKind {
    /// Decode the ABI's number; `None` for an unknown kind.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(HeaderKind::Request),
            1 => Some(HeaderKind::Response),
            2 => Some(HeaderKind::RequestTrailers),
            3 => Some(HeaderKind::ResponseTrailers),
            _ => None,
        }
    }
}

/// Which body a body function works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// 0: the request body.
    Request,
    /// 1: the response body.
    Response,
}

impl BodyKind {
    /// Decode the ABI's number; `None` for an unknown kind.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(BodyKind::Request),
            1 => Some(BodyKind::Response),
            _ => None,
        }
    }
}

/// Log levels of `log` / `log_enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// -1
    #[default]
    Debug,
    /// 0
    Info,
    /// 1
    Warn,
    /// 2
    Error,
    /// 3: nothing is logged at this level.
    None,
}

impl LogLevel {
    /// Decode the ABI's number; values past either end clamp to it.
    pub fn from_raw(raw: i32) -> LogLevel {
        match raw {
            i32::MIN..=-1 => LogLevel::Debug,
            0 => LogLevel::Info,
            1 => LogLevel::Warn,
            2 => LogLevel::Error,
            _ => LogLevel::None,
        }
    }

    /// The ABI's number.
    pub fn raw(self) -> i32 {
        match self {
            LogLevel::Debug => -1,
            LogLevel::Info => 0,
            LogLevel::Warn => 1,
            LogLevel::Error => 2,
            LogLevel::None => 3,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::None => "none",
        })
    }
}

/// `ctx << 32 | next`, what `handle_request` returns.
///
/// `pack_ctx_next(16, true) == 68719476737` (`16<<32 | 1`).
pub fn pack_ctx_next(ctx: u32, next: bool) -> u64 {
    (u64::from(ctx) << 32) | u64::from(next)
}

/// Split `handle_request`'s result into `(ctx, next)`.
///
/// Like Go, any non-zero low half means "call next":
/// `unpack_ctx_next(68719476737) == (16, true)`,
/// `unpack_ctx_next(68719476736) == (16, false)`.
pub fn unpack_ctx_next(ctx_next: u64) -> (u32, bool) {
    ((ctx_next >> 32) as u32, ctx_next as u32 != 0)
}

/// `count << 32 | len`, what `get_header_names`/`get_header_values` return.
///
/// `"Accept\0"` is `pack_count_len(1, 7) == 4294967303`;
/// `"Content-Type\0Content-Length\0"` is `pack_count_len(2, 28)`.
pub fn pack_count_len(count: u32, len: u32) -> u64 {
    (u64::from(count) << 32) | u64::from(len)
}

/// `eof << 32 | len`, what `read_body` returns.
///
/// `pack_eof_len(true, 0) == 4294967296`; `pack_eof_len(false, 16) == 16`.
pub fn pack_eof_len(eof: bool, len: u32) -> u64 {
    (u64::from(eof) << 32) | u64::from(len)
}

/// How many times the guest called each host function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCalls(pub(crate) [u64; 19]);

impl HostCalls {
    /// Calls to `import`.
    pub fn get(&self, import: Import) -> u64 {
        self.0[import.index()]
    }

    /// Calls to the import named `name` (0 for an unknown name).
    pub fn by_name(&self, name: &str) -> u64 {
        Import::from_name(name).map_or(0, |i| self.get(i))
    }

    /// All host calls together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(import, calls)` for every import called at least once.
    pub fn iter(&self) -> impl Iterator<Item = (Import, u64)> + '_ {
        Import::ALL
            .into_iter()
            .map(|i| (i, self.get(i)))
            .filter(|(_, n)| *n > 0)
    }
}

impl fmt::Display for HostCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.iter().map(|(i, n)| format!("{i}={n}")).collect();
        f.write_str(&parts.join(" "))
    }
}

// ---------------------------------------------------------------------------
// Faults and guest memory.

/// An ABI violation found by a host function, before it is tagged with the
/// function's name.
#[derive(Debug)]
pub(crate) struct Fault(pub String);

impl<T: Into<String>> From<T> for Fault {
    fn from(message: T) -> Self {
        Fault(message.into())
    }
}

/// An ABI violation as it travels through wasmtime (`wasmtime::Error`) back
/// to the host, where it becomes [`crate::Error::Abi`].
#[derive(Debug, thiserror::Error)]
#[error("http_handler.{import}: {message}")]
pub(crate) struct AbiTrap {
    pub import: Import,
    pub message: String,
}

/// The guest memory region `[ptr, ptr + len)`, or an ABI error naming `field`.
///
/// The one bounds check for reads.
pub(crate) fn guest_slice<'m>(
    memory: &'m [u8],
    ptr: u32,
    len: u32,
    field: &str,
) -> Result<&'m [u8], Fault> {
    let start = ptr as usize;
    memory
        .get(start..start + len as usize)
        .ok_or_else(|| Fault(format!("out of memory reading {field}")))
}

/// The writable guest memory region `[ptr, ptr + len)`.
///
/// The one bounds check for writes.
pub(crate) fn guest_slice_mut<'m>(
    memory: &'m mut [u8],
    ptr: u32,
    len: u32,
    field: &str,
) -> Result<&'m mut [u8], Fault> {
    let start = ptr as usize;
    memory
        .get_mut(start..start + len as usize)
        .ok_or_else(|| Fault(format!("out of memory writing {field}")))
}

fn len_u32(len: usize, what: &str) -> Result<u32, Fault> {
    u32::try_from(len).map_err(|_| Fault(format!("{what} is longer than 4 GiB")))
}

/// The `buf_limit` rule: return `value`'s length, and write it at `buf` only
/// if it fits in `buf_limit` bytes (Go's `writeIfUnderLimit`).
///
/// `write_if_under_limit(mem, 16, 2, b"GET")` writes nothing and returns 3;
/// the guest retries with `buf_limit >= 3`.
pub(crate) fn write_if_under_limit(
    memory: &mut [u8],
    buf: u32,
    buf_limit: u32,
    value: &[u8],
    field: &str,
) -> Result<u32, Fault> {
    let len = len_u32(value.len(), field)?;
    if len > buf_limit || len == 0 {
        return Ok(len);
    }
    guest_slice_mut(memory, buf, len, field)?.copy_from_slice(value);
    Ok(len)
}

/// The `buf_limit` rule for a list of strings: each is written followed by
/// a NUL; returns `count << 32 | len` whether or not it was written (Go's
/// `writeNULTerminated`). An empty list is `0`.
pub(crate) fn write_nul_terminated<S: AsRef<[u8]>>(
    memory: &mut [u8],
    buf: u32,
    buf_limit: u32,
    items: &[S],
    field: &str,
) -> Result<u64, Fault> {
    if items.is_empty() {
        return Ok(0);
    }
    let count = len_u32(items.len(), field)?;
    let bytes: usize = items.iter().map(|s| s.as_ref().len() + 1).sum();
    let len = len_u32(bytes, field)?;
    let packed = pack_count_len(count, len);
    if len > buf_limit {
        return Ok(packed);
    }
    let out = guest_slice_mut(memory, buf, len, field)?;
    let mut at = 0;
    for item in items {
        let item = item.as_ref();
        out[at..at + item.len()].copy_from_slice(item);
        at += item.len();
        out[at] = 0;
        at += 1;
    }
    Ok(packed)
}

fn read_string(memory: &[u8], ptr: u32, len: u32, field: &str) -> Result<String, Fault> {
    Ok(String::from_utf8_lossy(guest_slice(memory, ptr, len, field)?).into_owned())
}

/// The exact bytes of a guest region (header values: Go keeps them as is).
fn read_bytes(memory: &[u8], ptr: u32, len: u32, field: &str) -> Result<Vec<u8>, Fault> {
    Ok(guest_slice(memory, ptr, len, field)?.to_vec())
}

// ---------------------------------------------------------------------------
// Per-instance and per-request state.

/// The `T` of every guest `Store`.
pub(crate) struct HostState {
    pub wasi: WasiP1Ctx,
    pub memory: Option<Memory>,
    pub shared: Arc<Shared>,
    /// Features enabled while no request was running (start-up).
    pub init_features: Features,
    pub request: Option<RequestState>,
    pub calls: HostCalls,
    pub logs: Vec<LogLine>,
}

impl HostState {
    fn request(&mut self) -> Result<&mut RequestState, Fault> {
        self.request
            .as_mut()
            .ok_or_else(|| Fault::from("called outside a request (during start-up)"))
    }

    fn faithful(&self) -> bool {
        self.shared.faithful
    }
}

/// What the client will receive, modelled on Go's `http.ResponseWriter`: a
/// live header map, and a status line that is fixed by the first
/// `WriteHeader` (or body write), which also fixes the headers sent.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    status: Option<u16>,
    sent_headers: Option<Headers>,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

impl Wire {
    /// `WriteHeader`: only the first call counts ("superfluous" after).
    fn write_header(&mut self, status: u16) {
        if self.status.is_none() {
            self.status = Some(status);
            self.sent_headers = Some(self.headers.clone());
        }
    }

    /// `Write`: sends the header (200) first if it was not yet sent.
    fn write(&mut self, bytes: &[u8]) {
        self.write_header(200);
        self.body.extend_from_slice(bytes);
    }

    pub fn header_sent(&self) -> bool {
        self.status.is_some()
    }
}

/// http-wasm-host-go's `bufferingResponseWriter` (feature `buffer_response`):
/// status and body are held back; headers are the wire's.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    status: Option<u16>,
    body: Vec<u8>,
}

/// Everything one request's host calls read and change.
#[derive(Debug)]
pub(crate) struct RequestState {
    pub request: Request,
    /// How much of `request.body` the guest has read.
    read_pos: usize,
    /// The body the guest wrote (replaces the original for next).
    body_written: Option<Vec<u8>>,
    /// Faithful `buffer_request`: what Go's `bufferingRequestBody` kept.
    tee: Vec<u8>,
    pub features: Features,
    pub after_next: bool,
    pub wire: Wire,
    buffer: Option<Buffer>,
    /// Whether `buffer` existed when `handle_request` returned (Go defers
    /// `release` only then).
    release_registered: bool,
    response_writer_open: bool,
    response_reader: Option<(Vec<u8>, usize)>,
}

impl RequestState {
    pub fn new(request: Request, features: Features) -> Self {
        let mut state = RequestState {
            request,
            read_pos: 0,
            body_written: None,
            tee: Vec::new(),
            features: Features::NONE,
            after_next: false,
            wire: Wire::default(),
            buffer: None,
            release_registered: false,
            response_writer_open: false,
            response_reader: None,
        };
        state.enable(features);
        state
    }

    fn enable(&mut self, features: Features) -> Features {
        self.features = self.features.union(features);
        if self.features.contains(Features::BUFFER_RESPONSE) && self.buffer.is_none() {
            self.buffer = Some(Buffer::default());
        }
        self.features
    }

    /// Go's `mustBeforeNext`.
    fn before_next(&self, op: &str, what: &str) -> Result<(), Fault> {
        if self.after_next {
            return Err(Fault(format!("can't {op} {what} after next handler")));
        }
        Ok(())
    }

    /// Go's `mustBeforeNextOrFeature`.
    fn before_next_or(&self, feature: Features, op: &str, what: &str) -> Result<(), Fault> {
        if self.after_next && !self.features.contains(feature) {
            return Err(Fault(format!(
                "can't {op} {what} after next handler unless {feature} is enabled"
            )));
        }
        Ok(())
    }

    /// The request as next receives it (the guest's edits applied).
    pub fn request_for_next(&self, faithful: bool) -> Request {
        let original = &self.request.body;
        let body = if let Some(written) = &self.body_written {
            written.clone()
        } else if self.features.contains(Features::BUFFER_REQUEST) {
            if faithful && !self.tee.is_empty() {
                // Go's bufferingRequestBody keeps only reads that returned
                // data together with EOF, and next gets only that.
                self.tee.clone()
            } else if faithful {
                original.get(self.read_pos..).unwrap_or_default().to_vec()
            } else {
                original.clone()
            }
        } else {
            // Without buffering, what the guest read is consumed.
            original.get(self.read_pos..).unwrap_or_default().to_vec()
        };
        Request {
            body,
            ..self.request.clone()
        }
    }

    /// Next's response goes through `s.w` (the buffer if there is one), the
    /// way Go's reverse proxy writes it: headers added after the guest's,
    /// then `WriteHeader`, then the body, then trailers.
    pub fn write_backend_response(&mut self, response: Response) {
        self.wire.headers.append_all(response.headers);
        match &mut self.buffer {
            Some(buffer) => {
                buffer.status = Some(response.status);
                buffer.body.extend_from_slice(&response.body);
            }
            None => {
                self.wire.write_header(response.status);
                if !response.body.is_empty() {
                    self.wire.write(&response.body);
                }
            }
        }
        self.wire.trailers.append_all(response.trailers);
    }

    /// Go's `handleErr`: `500` and the error text, written to the real
    /// writer (not the buffer).
    pub fn write_error(&mut self, text: &str) {
        self.wire.write_header(500);
        self.wire.write(text.as_bytes());
    }

    /// Mark the end of `handle_request` (Go registers `release` here).
    pub fn handle_request_returned(&mut self) {
        self.release_registered = self.buffer.is_some();
    }

    /// What the client receives: the buffer released (if Go would), then
    /// the wire as sent.
    pub fn finish(mut self) -> Response {
        if self.release_registered
            && let Some(buffer) = self.buffer.take()
        {
            if let Some(status) = buffer.status {
                self.wire.write_header(status);
            }
            if !buffer.body.is_empty() {
                self.wire.write(&buffer.body);
            }
        }
        let wire = self.wire;
        Response {
            status: wire.status.unwrap_or(200),
            headers: wire.sent_headers.unwrap_or(wire.headers),
            body: wire.body,
            trailers: wire.trailers,
        }
    }
}

// ---------------------------------------------------------------------------
// The host functions.

/// Run one host function: count the call, split memory from state, and
/// turn a [`Fault`] into a trap that names the function.
fn host_call<R>(
    caller: &mut Caller<'_, HostState>,
    import: Import,
    f: impl FnOnce(&mut [u8], &mut HostState) -> Result<R, Fault>,
) -> wasmtime::Result<R> {
    let memory = match caller.data().memory {
        Some(memory) => Some(memory),
        None => caller.get_export("memory").and_then(Extern::into_memory),
    };
    let result = match memory {
        Some(memory) => {
            let (bytes, state) = memory.data_and_store_mut(&mut *caller);
            state.calls.0[import.index()] += 1;
            f(bytes, state)
        }
        None => {
            let state = caller.data_mut();
            state.calls.0[import.index()] += 1;
            f(&mut [], state)
        }
    };
    result.map_err(|Fault(message)| wasmtime::Error::new(AbiTrap { import, message }))
}

fn enable_features(state: &mut HostState, features: u32) -> u32 {
    let features = Features(features);
    match &mut state.request {
        Some(request) => request.enable(features).0,
        None => {
            state.init_features = state.init_features.union(features);
            state
                .shared
                .middleware_features()
                .union(state.init_features)
                .0
        }
    }
}

fn get_config(memory: &mut [u8], state: &HostState, buf: u32, limit: u32) -> Result<u32, Fault> {
    write_if_under_limit(memory, buf, limit, &state.shared.config, "config")
}

fn log_enabled(state: &HostState, level: i32) -> u32 {
    // Traefik's WasmLogger says yes to every level.
    u32::from(state.faithful() || state.shared.logs(LogLevel::from_raw(level)))
}

fn log(memory: &[u8], state: &mut HostState, level: i32, ptr: u32, len: u32) -> Result<(), Fault> {
    let level = LogLevel::from_raw(level);
    if !state.faithful() && !state.shared.logs(level) {
        return Ok(()); // Go returns before reading the message.
    }
    let message = read_string(memory, ptr, len, "message")?;
    let line = LogLine { level, message };
    if state.shared.logs(level) {
        state.shared.emit(&line);
        state.logs.push(line);
    }
    Ok(())
}

fn get_method(
    memory: &mut [u8],
    state: &mut HostState,
    buf: u32,
    limit: u32,
) -> Result<u32, Fault> {
    let method = state.request()?.request.method.as_bytes();
    write_if_under_limit(memory, buf, limit, method, "method")
}

fn set_method(memory: &[u8], state: &mut HostState, ptr: u32, len: u32) -> Result<(), Fault> {
    let request = state.request()?;
    request.before_next("set", "method")?;
    if len == 0 {
        return Err(Fault::from("HTTP method cannot be empty"));
    }
    request.request.method = read_string(memory, ptr, len, "method")?;
    Ok(())
}

fn get_uri(memory: &mut [u8], state: &mut HostState, buf: u32, limit: u32) -> Result<u32, Fault> {
    let uri = state.request()?.request.uri.as_bytes();
    write_if_under_limit(memory, buf, limit, uri, "uri")
}

fn set_uri(memory: &[u8], state: &mut HostState, ptr: u32, len: u32) -> Result<(), Fault> {
    let request = state.request()?;
    request.before_next("set", "uri")?;
    let uri = if len == 0 {
        String::new() // overwriting with empty is allowed: it becomes "/"
    } else {
        read_string(memory, ptr, len, "uri")?
    };
    request.request.uri = request_uri(&uri)?;
    Ok(())
}

/// What Go's `SetURI` then `GetURI` make of `uri`: `url.ParseRequestURI`,
/// then escaped path plus query. Empty means `/`.
pub(crate) fn request_uri(uri: &str) -> Result<String, Fault> {
    if uri.is_empty() {
        return Ok("/".to_owned());
    }
    if uri == "*" {
        return Ok("*".to_owned()); // OPTIONS *
    }
    let fail = |why: &str| Fault(format!("parse {uri:?}: {why}"));
    if uri.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(fail("net/url: invalid control character in URL"));
    }
    let rest = if uri.starts_with('/') {
        uri
    } else {
        let (_, after) = uri
            .split_once(':')
            .filter(|(scheme, _)| {
                scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            })
            .ok_or_else(|| fail("invalid URI for request"))?;
        match after.strip_prefix("//") {
            // Authority dropped: the request keeps its own host.
            Some(authority_and_path) => authority_and_path
                .find(['/', '?'])
                .and_then(|i| authority_and_path.get(i..))
                .unwrap_or(""),
            None => after.find('?').and_then(|q| after.get(q..)).unwrap_or(""),
        }
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let mut escaped = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            match hex {
                Some(h) => {
                    escaped.push('%');
                    escaped.push_str(&String::from_utf8_lossy(h));
                    i += 3;
                    continue;
                }
                None => {
                    let end = (i + 3).min(bytes.len());
                    let bad = String::from_utf8_lossy(&bytes[i..end]);
                    return Err(fail(&format!("invalid URL escape {bad:?}")));
                }
            }
        }
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/[]".contains(&b) {
            escaped.push(char::from(b));
        } else {
            escaped.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
    if escaped.is_empty() {
        escaped.push('/');
    }
    if let Some(query) = query {
        escaped.push('?');
        escaped.push_str(query);
    }
    Ok(escaped)
}

fn get_protocol_version(
    memory: &mut [u8],
    state: &mut HostState,
    buf: u32,
    limit: u32,
) -> Result<u32, Fault> {
    let protocol = state.request()?.request.protocol.as_bytes();
    if protocol.is_empty() {
        return Err(Fault::from("HTTP protocol version cannot be empty"));
    }
    write_if_under_limit(memory, buf, limit, protocol, "protocol version")
}

fn get_source_addr(
    memory: &mut [u8],
    state: &mut HostState,
    buf: u32,
    limit: u32,
) -> Result<u32, Fault> {
    let addr = state.request()?.request.source_addr.as_bytes();
    write_if_under_limit(memory, buf, limit, addr, "source address")
}

fn header_kind(raw: u32) -> Result<HeaderKind, Fault> {
    HeaderKind::from_raw(raw).ok_or_else(|| Fault(format!("unsupported header kind: {raw}")))
}

/// Header names the way Go lists them: each distinct (canonical) name once,
/// sorted, then lower-cased. Trailers are stored under their exact names.
fn go_header_names(headers: &Headers, canonicalize: bool) -> Vec<String> {
    let names: std::collections::BTreeSet<String> = headers
        .iter()
        .map(|(n, _)| {
            if canonicalize {
                canonical_header_name(n).into_owned()
            } else {
                n.to_owned()
            }
        })
        .collect();
    names.into_iter().map(|n| n.to_ascii_lowercase()).collect()
}

/// Where a header kind lives. In faithful mode both trailer kinds are the
/// response's trailers, matched by exact name, as in http-wasm-host-go's
/// net/http host (it keeps request trailers in the response header map).
enum HeaderMap {
    Request,
    Response,
    RequestTrailers,
    ResponseTrailers { exact: bool },
}

fn header_map(state: &HostState, kind: HeaderKind) -> HeaderMap {
    match (kind, state.faithful()) {
        (HeaderKind::Request, _) => HeaderMap::Request,
        (HeaderKind::Response, _) => HeaderMap::Response,
        (HeaderKind::RequestTrailers, true) | (HeaderKind::ResponseTrailers, true) => {
            HeaderMap::ResponseTrailers { exact: true }
        }
        (HeaderKind::RequestTrailers, false) => HeaderMap::RequestTrailers,
        (HeaderKind::ResponseTrailers, false) => HeaderMap::ResponseTrailers { exact: false },
    }
}

fn headers_of<'a>(request: &'a mut RequestState, map: &HeaderMap) -> &'a mut Headers {
    match map {
        HeaderMap::Request => &mut request.request.headers,
        HeaderMap::Response => &mut request.wire.headers,
        HeaderMap::RequestTrailers => &mut request.request.trailers,
        HeaderMap::ResponseTrailers { .. } => &mut request.wire.trailers,
    }
}

fn get_header_names(
    memory: &mut [u8],
    state: &mut HostState,
    kind: u32,
    buf: u32,
    limit: u32,
) -> Result<u64, Fault> {
    let map = header_map(state, header_kind(kind)?);
    let request = state.request()?;
    let exact = matches!(map, HeaderMap::ResponseTrailers { exact: true });
    let names = go_header_names(headers_of(request, &map), !exact);
    write_nul_terminated(memory, buf, limit, &names, "header names")
}

fn get_header_values(
    memory: &mut [u8],
    state: &mut HostState,
    kind: u32,
    name: (u32, u32),
    buf: u32,
    limit: u32,
) -> Result<u64, Fault> {
    let kind = header_kind(kind)?;
    if name.1 == 0 {
        return Err(Fault::from("HTTP header name cannot be empty"));
    }
    // Borrowed, not copied: the guest's most frequent call.
    let name = String::from_utf8_lossy(guest_slice(memory, name.0, name.1, "name")?);
    let map = header_map(state, kind);
    let request = state.request()?;
    let headers = headers_of(request, &map);
    // Values travel as the exact bytes stored: Go's net/http passes
    // non-UTF-8 header bytes through untouched.
    let values = match map {
        HeaderMap::ResponseTrailers { exact: true } => headers.get_all_exact_bytes(&name),
        _ => headers.get_all_bytes(&name),
    };
    write_nul_terminated(memory, buf, limit, &values, "header values")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HeaderOp {
    Set,
    Add,
    Remove,
}

impl HeaderOp {
    fn verb(self) -> &'static str {
        match self {
            HeaderOp::Set => "set",
            HeaderOp::Add => "add",
            HeaderOp::Remove => "remove",
        }
    }
}

/// Go's `mustHeaderMutable`: request headers/trailers only before next;
/// response headers/trailers before next or with `buffer_response`.
fn header_mutable(request: &RequestState, kind: HeaderKind, op: HeaderOp) -> Result<(), Fault> {
    let verb = op.verb();
    match kind {
        HeaderKind::Request => request.before_next(verb, "request header"),
        HeaderKind::RequestTrailers => request.before_next(verb, "request trailer"),
        HeaderKind::Response => {
            request.before_next_or(Features::BUFFER_RESPONSE, verb, "response header")
        }
        HeaderKind::ResponseTrailers => {
            request.before_next_or(Features::BUFFER_RESPONSE, verb, "response trailer")
        }
    }
}

fn change_header(
    memory: &[u8],
    state: &mut HostState,
    op: HeaderOp,
    kind: u32,
    name: (u32, u32),
    value: (u32, u32),
) -> Result<(), Fault> {
    let kind = header_kind(kind)?;
    if name.1 == 0 {
        return Err(Fault::from("HTTP header name cannot be empty"));
    }
    let map = header_map(state, kind);
    let request = state.request()?;
    header_mutable(request, kind, op)?;
    let name = read_string(memory, name.0, name.1, "name")?;
    let value = match op {
        HeaderOp::Remove => Vec::new(),
        _ => read_bytes(memory, value.0, value.1, "value")?,
    };
    let headers = headers_of(request, &map);
    let exact = matches!(map, HeaderMap::ResponseTrailers { exact: true });
    match (op, exact) {
        // http-wasm-host-go's addTrailer calls Header.Set: add replaces.
        (HeaderOp::Set | HeaderOp::Add, true) => headers.set_exact_bytes(&name, &value),
        (HeaderOp::Remove, true) => headers.remove_exact(&name),
        (HeaderOp::Set, false) => headers.set_bytes(name, value),
        (HeaderOp::Add, false) => headers.append_bytes(name, value),
        (HeaderOp::Remove, false) => {
            headers.remove(&name);
        }
    }
    Ok(())
}

fn body_kind(raw: u32) -> Result<BodyKind, Fault> {
    BodyKind::from_raw(raw).ok_or_else(|| Fault(format!("unsupported body kind: {raw}")))
}

fn read_body(
    memory: &mut [u8],
    state: &mut HostState,
    kind: u32,
    buf: u32,
    limit: u32,
) -> Result<u64, Fault> {
    let faithful = state.faithful();
    let kind = body_kind(kind)?;
    let request = state.request()?;
    match kind {
        BodyKind::Request => {
            request.before_next_or(Features::BUFFER_REQUEST, "read", "request body")?
        }
        BodyKind::Response => {
            request.before_next_or(Features::BUFFER_RESPONSE, "read", "response body")?;
            if request.buffer.is_none() {
                // Go type-asserts a bufferingResponseWriter here and panics.
                return Err(Fault::from(
                    "can't read response body unless buffer_response is enabled",
                ));
            }
        }
    }
    if limit == 0 {
        return Err(Fault::from("buf_limit==0 reading body"));
    }
    let out = guest_slice_mut(memory, buf, limit, "body")?;
    match kind {
        BodyKind::Request => {
            let body = &request.request.body;
            let rest = body.get(request.read_pos..).unwrap_or_default();
            let n = rest.len().min(out.len());
            out[..n].copy_from_slice(&rest[..n]);
            request.read_pos += n;
            // A net/http body returns EOF together with its last bytes.
            let eof = request.read_pos >= body.len();
            if eof && n > 0 && faithful && request.features.contains(Features::BUFFER_REQUEST) {
                request.tee.extend_from_slice(&rest[..n]);
            }
            Ok(pack_eof_len(eof, len_u32(n, "body")?))
        }
        BodyKind::Response => {
            let snapshot = match &request.buffer {
                Some(buffer) => buffer.body.clone(),
                None => Vec::new(),
            };
            let (body, pos) = request.response_reader.get_or_insert((snapshot, 0));
            let rest = body.get(*pos..).unwrap_or_default();
            let n = rest.len().min(out.len());
            out[..n].copy_from_slice(&rest[..n]);
            *pos += n;
            // A bytes.Reader reports EOF only on a read after the last byte,
            // which Go's fill loop makes when the buffer was not filled.
            let eof = n < out.len();
            Ok(pack_eof_len(eof, len_u32(n, "body")?))
        }
    }
}

fn write_body(
    memory: &[u8],
    state: &mut HostState,
    kind: u32,
    ptr: u32,
    len: u32,
) -> Result<(), Fault> {
    let kind = body_kind(kind)?;
    let request = state.request()?;
    match kind {
        BodyKind::Request => request.before_next("write", "request body")?,
        BodyKind::Response => {
            request.before_next_or(Features::BUFFER_RESPONSE, "write", "response body")?
        }
    }
    let bytes = guest_slice(memory, ptr, len, "body")?;
    match kind {
        BodyKind::Request => request
            .body_written
            .get_or_insert_with(Vec::new)
            .extend_from_slice(bytes),
        BodyKind::Response => {
            let first = !request.response_writer_open;
            request.response_writer_open = true;
            match &mut request.buffer {
                Some(buffer) => {
                    if first {
                        buffer.body.clear(); // the first write replaces
                    }
                    buffer.body.extend_from_slice(bytes);
                }
                None => request.wire.write(bytes),
            }
        }
    }
    Ok(())
}

fn get_status_code(state: &mut HostState) -> Result<u32, Fault> {
    let request = state.request()?;
    match &request.buffer {
        Some(buffer) => Ok(u32::from(buffer.status.unwrap_or(200))),
        // Go type-asserts a bufferingResponseWriter here and panics.
        None => Err(Fault::from(
            "can't get status code unless buffer_response is enabled",
        )),
    }
}

fn set_status_code(state: &mut HostState, code: u32) -> Result<(), Fault> {
    let request = state.request()?;
    request.before_next_or(Features::BUFFER_RESPONSE, "set", "status code")?;
    let code = u16::try_from(code)
        .ok()
        .filter(|c| (100..=999).contains(c))
        .ok_or_else(|| Fault(format!("invalid WriteHeader code {code}")))?;
    match &mut request.buffer {
        Some(buffer) => buffer.status = Some(code),
        None => request.wire.write_header(code),
    }
    Ok(())
}

/// Define every `http_handler` function in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use Import as I;
    let m = MODULE;
    linker.func_wrap(
        m,
        I::EnableFeatures.name(),
        |mut c: Caller<'_, HostState>, f: u32| {
            host_call(&mut c, I::EnableFeatures, |_, s| Ok(enable_features(s, f)))
        },
    )?;
    linker.func_wrap(
        m,
        I::GetConfig.name(),
        |mut c: Caller<'_, HostState>, buf: u32, limit: u32| {
            host_call(&mut c, I::GetConfig, |mem, s| {
                get_config(mem, s, buf, limit)
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::LogEnabled.name(),
        |mut c: Caller<'_, HostState>, level: i32| {
            host_call(&mut c, I::LogEnabled, |_, s| Ok(log_enabled(s, level)))
        },
    )?;
    linker.func_wrap(
        m,
        I::Log.name(),
        |mut c: Caller<'_, HostState>, level: i32, ptr: u32, len: u32| {
            host_call(&mut c, I::Log, |mem, s| log(mem, s, level, ptr, len))
        },
    )?;
    linker.func_wrap(
        m,
        I::GetMethod.name(),
        |mut c: Caller<'_, HostState>, buf: u32, limit: u32| {
            host_call(&mut c, I::GetMethod, |mem, s| {
                get_method(mem, s, buf, limit)
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::SetMethod.name(),
        |mut c: Caller<'_, HostState>, ptr: u32, len: u32| {
            host_call(&mut c, I::SetMethod, |mem, s| set_method(mem, s, ptr, len))
        },
    )?;
    linker.func_wrap(
        m,
        I::GetUri.name(),
        |mut c: Caller<'_, HostState>, buf: u32, limit: u32| {
            host_call(&mut c, I::GetUri, |mem, s| get_uri(mem, s, buf, limit))
        },
    )?;
    linker.func_wrap(
        m,
        I::SetUri.name(),
        |mut c: Caller<'_, HostState>, ptr: u32, len: u32| {
            host_call(&mut c, I::SetUri, |mem, s| set_uri(mem, s, ptr, len))
        },
    )?;
    linker.func_wrap(
        m,
        I::GetProtocolVersion.name(),
        |mut c: Caller<'_, HostState>, buf: u32, limit: u32| {
            host_call(&mut c, I::GetProtocolVersion, |mem, s| {
                get_protocol_version(mem, s, buf, limit)
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::GetSourceAddr.name(),
        |mut c: Caller<'_, HostState>, buf: u32, limit: u32| {
            host_call(&mut c, I::GetSourceAddr, |mem, s| {
                get_source_addr(mem, s, buf, limit)
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::GetHeaderNames.name(),
        |mut c: Caller<'_, HostState>, kind: u32, buf: u32, limit: u32| {
            host_call(&mut c, I::GetHeaderNames, |mem, s| {
                get_header_names(mem, s, kind, buf, limit)
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::GetHeaderValues.name(),
        |mut c: Caller<'_, HostState>,
         kind: u32,
         name: u32,
         name_len: u32,
         buf: u32,
         limit: u32| {
            host_call(&mut c, I::GetHeaderValues, |mem, s| {
                get_header_values(mem, s, kind, (name, name_len), buf, limit)
            })
        },
    )?;
    for (import, op) in [
        (I::SetHeaderValue, HeaderOp::Set),
        (I::AddHeaderValue, HeaderOp::Add),
    ] {
        linker.func_wrap(
            m,
            import.name(),
            move |mut c: Caller<'_, HostState>,
                  kind: u32,
                  name: u32,
                  name_len: u32,
                  value: u32,
                  value_len: u32| {
                host_call(&mut c, import, |mem, s| {
                    change_header(mem, s, op, kind, (name, name_len), (value, value_len))
                })
            },
        )?;
    }
    linker.func_wrap(
        m,
        I::RemoveHeader.name(),
        |mut c: Caller<'_, HostState>, kind: u32, name: u32, name_len: u32| {
            host_call(&mut c, I::RemoveHeader, |mem, s| {
                change_header(mem, s, HeaderOp::Remove, kind, (name, name_len), (0, 0))
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::ReadBody.name(),
        |mut c: Caller<'_, HostState>, kind: u32, buf: u32, limit: u32| {
            host_call(&mut c, I::ReadBody, |mem, s| {
                read_body(mem, s, kind, buf, limit)
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::WriteBody.name(),
        |mut c: Caller<'_, HostState>, kind: u32, ptr: u32, len: u32| {
            host_call(&mut c, I::WriteBody, |mem, s| {
                write_body(mem, s, kind, ptr, len)
            })
        },
    )?;
    linker.func_wrap(
        m,
        I::GetStatusCode.name(),
        |mut c: Caller<'_, HostState>| {
            host_call(&mut c, I::GetStatusCode, |_, s| get_status_code(s))
        },
    )?;
    linker.func_wrap(
        m,
        I::SetStatusCode.name(),
        |mut c: Caller<'_, HostState>, code: u32| {
            host_call(&mut c, I::SetStatusCode, |_, s| set_status_code(s, code))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_matches_the_worked_examples() {
        assert_eq!(pack_ctx_next(16, true), 68_719_476_737);
        assert_eq!(unpack_ctx_next(68_719_476_736), (16, false));
        assert_eq!(unpack_ctx_next(1), (0, true));
        assert_eq!(pack_count_len(1, 7), 4_294_967_303);
        assert_eq!(pack_count_len(2, 20), 8_589_934_612);
        assert_eq!(pack_eof_len(true, 0), 4_294_967_296);
        assert_eq!(pack_eof_len(false, 16), 16);
    }

    #[test]
    fn buf_limit_rule_writes_only_what_fits() {
        let mut mem = vec![0u8; 8];
        assert_eq!(
            write_if_under_limit(&mut mem, 0, 2, b"GET", "m").ok(),
            Some(3)
        );
        assert_eq!(mem, [0; 8]);
        assert_eq!(
            write_if_under_limit(&mut mem, 4, 3, b"GET", "m").ok(),
            Some(3)
        );
        assert_eq!(&mem[4..7], b"GET");
        assert!(write_if_under_limit(&mut mem, 6, 3, b"GET", "m").is_err());
    }

    #[test]
    fn nul_terminated_lists_pack_count_and_len() {
        let mut mem = vec![0u8; 32];
        let packed = write_nul_terminated(&mut mem, 0, 32, &["accept", "content-type"], "n");
        assert_eq!(packed.ok(), Some(pack_count_len(2, 20)));
        assert_eq!(&mem[..20], b"accept\0content-type\0");
        assert_eq!(
            write_nul_terminated::<&str>(&mut mem, 0, 32, &[], "n").ok(),
            Some(0)
        );
    }

    #[test]
    fn request_uris_follow_go() {
        let uri = |s: &str| request_uri(s).map_err(|f| f.0);
        assert_eq!(uri("").as_deref(), Ok("/"));
        assert_eq!(uri("/a b?x=1").as_deref(), Ok("/a%20b?x=1"));
        assert_eq!(uri("http://h:80/p?q").as_deref(), Ok("/p?q"));
        assert_eq!(uri("/ok%2F?").as_deref(), Ok("/ok%2F?"));
        assert_eq!(uri("mailto:x?y").as_deref(), Ok("/?y"));
        assert_eq!(uri("*").as_deref(), Ok("*"));
        assert!(uri("?x=1").is_err());
        assert!(uri("relative").is_err());
        assert!(uri("/bad%zz").is_err());
        assert!(uri("/nl\n").is_err());
    }
}
