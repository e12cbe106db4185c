//! Guest memory and ABI faults: the one bounds check for reads and writes,
//! and the `buf_limit` rule.

use super::table::{Import, pack_count_len};

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

pub(crate) fn len_u32(len: usize, what: &str) -> Result<u32, Fault> {
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

pub(crate) fn read_string(memory: &[u8], ptr: u32, len: u32, field: &str) -> Result<String, Fault> {
    Ok(String::from_utf8_lossy(guest_slice(memory, ptr, len, field)?).into_owned())
}

/// The exact bytes of a guest region (header values: Go keeps them as is).
pub(crate) fn read_bytes(memory: &[u8], ptr: u32, len: u32, field: &str) -> Result<Vec<u8>, Fault> {
    Ok(guest_slice(memory, ptr, len, field)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
