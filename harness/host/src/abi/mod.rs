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
//! a bigger one. One helper implements it: [`memory::write_if_under_limit`].
//!
//! # Guest memory
//!
//! Every access to guest memory goes through [`memory::guest_slice`] /
//! [`memory::guest_slice_mut`]: one `.get(ptr..ptr + len)` and an ABI error when the
//! region is outside memory, never a panic.
//!
//! # Where things are
//!
//! * `table`: the imports, signatures, feature bits, kinds, packing, call counts;
//! * `memory`: guest-memory access and the `buf_limit` rule;
//! * `state`: what instances share, each `Store`'s state, the Go
//!   `ResponseWriter` emulation;
//! * `uri`: Go's `ParseRequestURI`;
//! * `functions`: the host side of each import;
//! * `linker`: the table that binds each import to its function.

mod functions;
mod linker;
mod memory;
mod state;
mod table;
mod uri;

pub use crate::log::LogLevel;
pub use table::{
    BodyKind, Features, HeaderKind, HostCalls, Import, MODULE, Signature, ValType, pack_count_len,
    pack_ctx_next, pack_eof_len, unpack_ctx_next,
};

pub(crate) use linker::add_to_linker;
pub(crate) use memory::AbiTrap;
pub(crate) use state::{HostState, RequestState, Shared};
