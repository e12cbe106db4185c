//! The ABI's table: the `http_handler` imports and their signatures, the
//! feature bits, header and body kinds, the bit-packing of results, and the
//! per-import call counts.

use std::fmt;

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

    pub(crate) fn index(self) -> usize {
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
}
