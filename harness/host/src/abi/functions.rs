//! The host side of every `http_handler` function, one function each, over
//! guest memory (`&mut [u8]`) and the instance's [`HostState`].

use super::memory::{
    Fault, guest_slice, guest_slice_mut, len_u32, read_bytes, read_string, write_if_under_limit,
    write_nul_terminated,
};
use super::state::{HostState, RequestState};
use super::table::{BodyKind, Features, HeaderKind, pack_eof_len};
use super::uri::request_uri;
use crate::log::{LogLevel, LogLine};
use crate::model::{Headers, canonical_header_name};

pub(super) fn enable_features(state: &mut HostState, features: u32) -> u32 {
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

pub(super) fn get_config(
    memory: &mut [u8],
    state: &HostState,
    buf: u32,
    limit: u32,
) -> Result<u32, Fault> {
    write_if_under_limit(memory, buf, limit, &state.shared.config, "config")
}

pub(super) fn log_enabled(state: &HostState, level: i32) -> u32 {
    // Traefik's WasmLogger says yes to every level.
    u32::from(state.faithful() || state.shared.logs(LogLevel::from_raw(level)))
}

pub(super) fn log(
    memory: &[u8],
    state: &mut HostState,
    level: i32,
    ptr: u32,
    len: u32,
) -> Result<(), Fault> {
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

pub(super) fn get_method(
    memory: &mut [u8],
    state: &mut HostState,
    buf: u32,
    limit: u32,
) -> Result<u32, Fault> {
    let method = state.request()?.request.method.as_bytes();
    write_if_under_limit(memory, buf, limit, method, "method")
}

pub(super) fn set_method(
    memory: &[u8],
    state: &mut HostState,
    ptr: u32,
    len: u32,
) -> Result<(), Fault> {
    let request = state.request()?;
    request.before_next("set", "method")?;
    if len == 0 {
        return Err(Fault::from("HTTP method cannot be empty"));
    }
    request.request.method = read_string(memory, ptr, len, "method")?;
    Ok(())
}

pub(super) fn get_uri(
    memory: &mut [u8],
    state: &mut HostState,
    buf: u32,
    limit: u32,
) -> Result<u32, Fault> {
    let uri = state.request()?.request.uri.as_bytes();
    write_if_under_limit(memory, buf, limit, uri, "uri")
}

pub(super) fn set_uri(
    memory: &[u8],
    state: &mut HostState,
    ptr: u32,
    len: u32,
) -> Result<(), Fault> {
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

pub(super) fn get_protocol_version(
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

pub(super) fn get_source_addr(
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

pub(super) fn get_header_names(
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

pub(super) fn get_header_values(
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
pub(super) enum HeaderOp {
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

pub(super) fn change_header(
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

pub(super) fn read_body(
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

pub(super) fn write_body(
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

pub(super) fn get_status_code(state: &mut HostState) -> Result<u32, Fault> {
    let request = state.request()?;
    match &request.buffer {
        Some(buffer) => Ok(u32::from(buffer.status.unwrap_or(200))),
        // Go type-asserts a bufferingResponseWriter here and panics.
        None => Err(Fault::from(
            "can't get status code unless buffer_response is enabled",
        )),
    }
}

pub(super) fn set_status_code(state: &mut HostState, code: u32) -> Result<(), Fault> {
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
