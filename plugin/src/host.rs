//! The http-wasm host functions Cohort calls, and the two exports the host
//! calls: a thin, allocation-lean layer over the ABI
//! (<https://http-wasm.io/http-handler-abi/>).
//!
//! It replaces the `http-wasm-guest` crate on the hot path, which reads
//! every value through a fixed 2 KiB buffer (a second host call for longer
//! values, after zeroing a buffer of their size), then scans it byte by
//! byte for NULs: about 15 wasm instructions per byte of `Cookie` header,
//! more than the decision itself. Here the buffer grows to the largest value
//! met (one call from then on) and the NULs are found eight bytes at a time.
//!
//! The only `unsafe` of the plugin is here: the ABI's imports and exports.

#![allow(unsafe_code)]

use std::cell::RefCell;

use cohort::cookie::find_byte;

#[link(wasm_import_module = "http_handler")]
unsafe extern "C" {
    fn log(level: i32, message: *const u8, message_len: u32);
    fn log_enabled(level: i32) -> u32;
    fn get_config(buf: *mut u8, buf_limit: u32) -> u32;
    fn get_method(buf: *mut u8, buf_limit: u32) -> u32;
    fn get_uri(buf: *mut u8, buf_limit: u32) -> u32;
    fn get_source_addr(buf: *mut u8, buf_limit: u32) -> u32;
    fn get_header_values(
        kind: u32,
        name: *const u8,
        name_len: u32,
        buf: *mut u8,
        buf_limit: u32,
    ) -> u64;
    fn set_header_value(
        kind: u32,
        name: *const u8,
        name_len: u32,
        value: *const u8,
        value_len: u32,
    );
    fn add_header_value(
        kind: u32,
        name: *const u8,
        name_len: u32,
        value: *const u8,
        value_len: u32,
    );
}

/// `header_kind` of the ABI.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Request = 0,
    Response = 1,
}

/// Levels of `log` and `log_enabled`.
pub const LOG_DEBUG: i32 = -1;
pub const LOG_ERROR: i32 = 2;

thread_local! {
    /// Where the host writes what the guest reads: 2 KiB at first, then as
    /// large as the largest value met, so an instance pays a second call
    /// only the first time it meets a longer value, and zeroes it only then.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 2048]);
}

/// Calls `call(buf, limit)` (a host function that writes at most `limit`
/// bytes at `buf` and returns the full length, with `extra` in the upper
/// 32 bits for `get_header_values`) on the scratch buffer, again after
/// growing it when the first call did not fit, and hands `f` the bytes
/// written and `extra`.
fn read<T>(mut call: impl FnMut(*mut u8, u32) -> u64, f: impl FnOnce(&[u8], u32) -> T) -> T {
    SCRATCH.with_borrow_mut(|buf| {
        loop {
            let limit = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            let result = call(buf.as_mut_ptr(), limit);
            let len = (result & 0xffff_ffff) as usize;
            if len <= buf.len() {
                return f(&buf[..len], (result >> 32) as u32);
            }
            // Too long: the host wrote nothing. Ask again with room for it.
            buf.resize(len, 0);
        }
    })
}

fn read_string(f: unsafe extern "C" fn(*mut u8, u32) -> u32) -> Vec<u8> {
    // SAFETY: `read` passes a writable buffer of `limit` bytes.
    read(
        |buf, limit| u64::from(unsafe { f(buf, limit) }),
        |bytes, _| bytes.to_vec(),
    )
}

/// `get_config`.
pub fn config() -> Vec<u8> {
    read_string(get_config)
}

/// `get_method`.
pub fn method() -> Vec<u8> {
    read_string(get_method)
}

/// `get_uri`.
pub fn uri() -> Vec<u8> {
    read_string(get_uri)
}

/// `get_source_addr`.
pub fn source_addr() -> Vec<u8> {
    read_string(get_source_addr)
}

/// `get_header_values`: every value of header `name`, in order.
pub fn header_values(kind: Kind, name: &[u8]) -> Vec<Vec<u8>> {
    let call = |buf, limit| {
        // SAFETY: `name` is a live slice; `read` passes a writable buffer of
        // `limit` bytes.
        unsafe { get_header_values(kind as u32, name.as_ptr(), len32(name), buf, limit) }
    };
    // The values are NUL-terminated, one after the other; bytes after the
    // last NUL are not a value. A NUL inside a value splits it, as every
    // reader of this ABI must (http-wasm-guest did the same).
    read(call, |mut rest, count| {
        let mut values = Vec::with_capacity(count as usize);
        while let Some(end) = find_byte(rest, 0) {
            values.push(rest[..end].to_vec());
            rest = &rest[end + 1..];
        }
        values
    })
}

/// `set_header_value`: replaces every value of header `name`.
pub fn set_header(kind: Kind, name: &[u8], value: &[u8]) {
    // SAFETY: both are live slices the host only reads.
    unsafe {
        set_header_value(
            kind as u32,
            name.as_ptr(),
            len32(name),
            value.as_ptr(),
            len32(value),
        );
    }
}

/// `add_header_value`: appends a value to header `name`.
pub fn add_header(kind: Kind, name: &[u8], value: &[u8]) {
    // SAFETY: both are live slices the host only reads.
    unsafe {
        add_header_value(
            kind as u32,
            name.as_ptr(),
            len32(name),
            value.as_ptr(),
            len32(value),
        );
    }
}

/// `log`.
pub fn write_log(level: i32, message: &[u8]) {
    // SAFETY: a live slice the host only reads.
    unsafe { log(level, message.as_ptr(), len32(message)) }
}

/// `log_enabled`.
pub fn log_is_enabled(level: i32) -> bool {
    // SAFETY: no memory is passed.
    unsafe { log_enabled(level) != 0 }
}

fn len32(bytes: &[u8]) -> u32 {
    // wasm32: a slice is never longer than u32::MAX.
    bytes.len() as u32
}

/// The export the host calls first for every request. The low bit of the
/// result is `next` (1: call the next handler), the upper 32 bits the
/// `reqCtx` handed to `handle_response`.
#[unsafe(export_name = "handle_request")]
extern "C" fn handle_request() -> i64 {
    i64::from(crate::adapter::handle_request())
}

/// The export the host calls after the next handler. Cohort has nothing to
/// do there (response headers are written before next), but the ABI needs
/// it exported.
#[unsafe(export_name = "handle_response")]
extern "C" fn handle_response(_req_ctx: i32, _is_error: i32) {}
