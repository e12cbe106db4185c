//! Per-guest, per-instance and per-request state: what every instance
//! shares, the `T` of each `Store`, and the Go `ResponseWriter` emulation
//! (`Wire`, `Buffer`, `RequestState`) that the host functions change.

use std::sync::{Arc, OnceLock};

use wasmtime::Memory;
use wasmtime_wasi::p1::WasiP1Ctx;

use super::memory::Fault;
use super::table::{Features, HostCalls};
use crate::log::{LogLevel, LogLine, LogSink};
use crate::model::{Headers, Request, Response};

/// What every instance of one guest shares.
pub(crate) struct Shared {
    pub faithful: bool,
    pub config: Vec<u8>,
    pub log_level: LogLevel,
    pub sink: Option<LogSink>,
    pub middleware_features: OnceLock<Features>,
}

impl Shared {
    /// Features enabled by the first instance's start-up (the middleware's).
    pub fn middleware_features(&self) -> Features {
        self.middleware_features.get().copied().unwrap_or_default()
    }

    /// Whether lines at `level` are recorded.
    pub fn logs(&self, level: LogLevel) -> bool {
        level >= self.log_level && level != LogLevel::None
    }

    pub fn emit(&self, line: &LogLine) {
        if let Some(sink) = &self.sink {
            sink(line);
        }
    }
}

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
    pub fn request(&mut self) -> Result<&mut RequestState, Fault> {
        self.request
            .as_mut()
            .ok_or_else(|| Fault::from("called outside a request (during start-up)"))
    }

    pub fn faithful(&self) -> bool {
        self.shared.faithful
    }
}

/// What the client will receive, modelled on Go's `http.ResponseWriter`: a
/// live header map, and a status line that is fixed by the first
/// `WriteHeader` (or body write), which also fixes the headers sent.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    pub status: Option<u16>,
    pub sent_headers: Option<Headers>,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

impl Wire {
    /// `WriteHeader`: only the first call counts ("superfluous" after).
    pub fn write_header(&mut self, status: u16) {
        if self.status.is_none() {
            self.status = Some(status);
            self.sent_headers = Some(self.headers.clone());
        }
    }

    /// `Write`: sends the header (200) first if it was not yet sent.
    pub fn write(&mut self, bytes: &[u8]) {
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
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

/// Everything one request's host calls read and change.
#[derive(Debug)]
pub(crate) struct RequestState {
    pub request: Request,
    /// How much of `request.body` the guest has read.
    pub read_pos: usize,
    /// The body the guest wrote (replaces the original for next).
    pub body_written: Option<Vec<u8>>,
    /// Faithful `buffer_request`: what Go's `bufferingRequestBody` kept.
    pub tee: Vec<u8>,
    pub features: Features,
    pub after_next: bool,
    pub wire: Wire,
    pub buffer: Option<Buffer>,
    /// Whether `buffer` existed when `handle_request` returned (Go defers
    /// `release` only then).
    release_registered: bool,
    pub response_writer_open: bool,
    pub response_reader: Option<(Vec<u8>, usize)>,
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

    pub fn enable(&mut self, features: Features) -> Features {
        self.features = self.features.union(features);
        if self.features.contains(Features::BUFFER_RESPONSE) && self.buffer.is_none() {
            self.buffer = Some(Buffer::default());
        }
        self.features
    }

    /// Go's `mustBeforeNext`.
    pub fn before_next(&self, op: &str, what: &str) -> Result<(), Fault> {
        if self.after_next {
            return Err(Fault(format!("can't {op} {what} after next handler")));
        }
        Ok(())
    }

    /// Go's `mustBeforeNextOrFeature`.
    pub fn before_next_or(&self, feature: Features, op: &str, what: &str) -> Result<(), Fault> {
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
