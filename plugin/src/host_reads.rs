//! The request reads on Cohort's per-request path, straight from the
//! `http_handler` imports into a buffer Cohort owns. http-wasm-guest 1.2
//! copies every read through a 2 KiB buffer and splits it at NULs byte by
//! byte (about 17 guest instructions a byte, and a second, zero-filled
//! buffer and host call past 2 KiB); here the host writes into a buffer of
//! the right size, a single value is that buffer, and several are split a
//! word at a time ([`cohort::values`]). The buffers go back to a small pool
//! when the decision drops them, so a warm instance allocates nothing to
//! read a request. Registration, configuration, logging and the writes stay
//! on http-wasm-guest.
//!
//! This is the one module with `unsafe`: the four foreign calls.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::mem::ManuallyDrop;

use cohort::decision::Values;
use cohort::values::{one_value, values};

/// `header_kind` of the request's headers.
const REQUEST: i32 = 0;

/// Every pooled buffer's size: a `Cookie` line of a browser with many
/// analytics and consent cookies fits, so a read is one host call. A larger
/// value takes two (the host says how much it needs), and its buffer is
/// freed after the request rather than kept.
const FIRST_GUESS: usize = 8 << 10;

/// Spare buffers kept for the next reads: a decision holds at most a few
/// values at once.
const SPARES: usize = 8;

/// The pool, among the statics: a list on the heap was a line on a page of
/// its own. Buffers sit at `bufs[free..]`, so that a request taking a few
/// from a full pool touches one line, the one with `free`. `Cell`s, not a
/// `RefCell`: its flag would be one more word to keep on that line.
#[repr(C, align(64))]
struct Pool {
    free: Cell<usize>,
    bufs: [Cell<Vec<u8>>; SPARES],
}

thread_local! {
    static POOL: Pool = const {
        Pool {
            free: Cell::new(SPARES),
            bufs: [const { Cell::new(Vec::new()) }; SPARES],
        }
    };
}

/// A value read from the host, in a buffer that returns to the pool. The
/// buffer is `ManuallyDrop`: [`Drop`] gives it back and leaves an empty
/// `Vec` that owns nothing, so dropping a value calls no destructor beyond
/// its own.
pub struct HostBytes(ManuallyDrop<Vec<u8>>);

impl HostBytes {
    fn new(buf: Vec<u8>) -> HostBytes {
        HostBytes(ManuallyDrop::new(buf))
    }
}

impl AsRef<[u8]> for HostBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The buffer itself, for a value the decision extends (a new visitor's
/// Cookie line); [`give_back`] takes it back after the write.
impl From<HostBytes> for Vec<u8> {
    fn from(mut bytes: HostBytes) -> Vec<u8> {
        std::mem::take(&mut *bytes.0)
    }
}

impl Drop for HostBytes {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut *self.0));
    }
}

/// Returns a buffer of [`FIRST_GUESS`] to the pool; any other is freed. The
/// pool holds only those, so every read fits one host call up to that size,
/// and an instance's memory stays what its first requests made it whatever
/// sizes come later (a pool of grown buffers crept up a page at a time as
/// big values met small buffers; a pool of small ones, split off several
/// values, would cost reads a second call). The adapter hands back the
/// buffer a decision extended, once it is written.
pub fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() != FIRST_GUESS {
        return;
    }
    buf.clear();
    POOL.with(|pool| {
        let free = pool.free.get();
        if let Some(slot) = free.checked_sub(1) {
            pool.free.set(slot);
            // The slot's `Vec` was taken: empty, it owns nothing to free,
            // and forgetting it spares the call to its destructor.
            std::mem::forget(pool.bufs[slot].replace(buf));
        }
    });
}

/// Fills the pool at start-up, so the buffers sit at the bottom of the heap
/// and no request allocates one among its other allocations: an instance's
/// memory then stays what start-up and its first requests made it.
pub fn prewarm() {
    while POOL.with(|pool| pool.free.get()) > 0 {
        give_back(Vec::with_capacity(FIRST_GUESS));
    }
}

fn take_buffer() -> Vec<u8> {
    POOL.with(|pool| {
        let free = pool.free.get();
        let buf = pool.bufs.get(free)?.take();
        pool.free.set(free + 1);
        Some(buf)
    })
    .unwrap_or_else(|| Vec::with_capacity(FIRST_GUESS))
}

/// The largest read the guest accepts (the host's answer is a length in an
/// `i32`; Traefik's headers are limited to 1 MiB anyway).
const MAX_READ: usize = 16 << 20;

#[link(wasm_import_module = "http_handler")]
unsafe extern "C" {
    fn get_method(buf: *mut u8, buf_limit: i32) -> i32;
    fn get_uri(buf: *mut u8, buf_limit: i32) -> i32;
    fn get_source_addr(buf: *mut u8, buf_limit: i32) -> i32;
    fn get_header_values(
        kind: i32,
        name: *const u8,
        name_len: i32,
        buf: *mut u8,
        buf_limit: i32,
    ) -> i64;
}

/// Calls `read(buf, limit)` until the buffer holds the whole answer: the
/// host writes nothing and reports the length it needs when the buffer is
/// too small. `read` returns `(length, extra)`; the buffer is truncated to
/// the length.
fn read_into<T: Default>(read: impl Fn(*mut u8, i32) -> (usize, T)) -> (Vec<u8>, T) {
    let mut buf = take_buffer();
    loop {
        let limit = i32::try_from(buf.capacity()).unwrap_or(i32::MAX);
        let (len, extra) = read(buf.as_mut_ptr(), limit);
        if len <= buf.capacity() {
            // SAFETY: the host wrote `len` bytes at `buf.as_mut_ptr()`, and
            // `len` is within the capacity it was given: those bytes are
            // initialised, and `u8` has no invalid values.
            unsafe { buf.set_len(len) };
            return (buf, extra);
        }
        if len > MAX_READ {
            buf.clear();
            return (buf, T::default());
        }
        // Too big for a pooled buffer: that one goes straight back, and the
        // value gets a buffer of its own, freed after the request.
        if buf.capacity() == FIRST_GUESS {
            give_back(std::mem::replace(&mut buf, Vec::with_capacity(len)));
        } else {
            buf.reserve_exact(len);
        }
    }
}

/// A non-negative `i32` from the host as a length; a negative one as 0.
fn length(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// All values of request header `name`.
pub fn header_values(name: &[u8]) -> Values<HostBytes> {
    let name_len = i32::try_from(name.len()).unwrap_or(0);
    let (mut buf, count) = read_into(|buf, limit| {
        // SAFETY: `name` is valid for `name_len` bytes and `buf` for
        // `limit` bytes of writing (its capacity), for the whole call; the
        // host writes at most `limit` bytes and keeps neither pointer.
        let packed = unsafe { get_header_values(REQUEST, name.as_ptr(), name_len, buf, limit) };
        // `count << 32 | length`.
        (length(packed as i32), length((packed >> 32) as i32))
    });
    match count {
        0 => {
            give_back(buf);
            Values::None
        }
        1 => {
            let len = one_value(&buf).len();
            buf.truncate(len);
            Values::One(HostBytes::new(buf))
        }
        _ => {
            let split = values(&buf).map(|v| HostBytes::new(v.to_vec())).collect();
            give_back(buf);
            Values::List(split)
        }
    }
}

/// Reads a single value with one of the `(buf, buf_limit) -> len` imports.
fn single(import: unsafe extern "C" fn(*mut u8, i32) -> i32) -> HostBytes {
    HostBytes::new(
        read_into(|buf, limit| {
            // SAFETY: `buf` is valid for `limit` bytes of writing (its
            // capacity) for the whole call; the host writes at most `limit`
            // bytes and keeps no pointer.
            (length(unsafe { import(buf, limit) }), ())
        })
        .0,
    )
}

pub fn method() -> HostBytes {
    single(get_method)
}

pub fn uri() -> HostBytes {
    single(get_uri)
}

pub fn source_addr() -> HostBytes {
    single(get_source_addr)
}
