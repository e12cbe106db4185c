//! The host's value lists. `get_header_values` writes every value of a
//! header followed by a NUL and returns their count and total length; the
//! adapter reads them straight into one buffer (`host_reads.rs`), and this
//! splits it. One value (the usual case: one `Cookie` line, which Go's
//! HTTP/2 server also joins into one) is the buffer itself, never copied or
//! scanned; several are found a word at a time.

use crate::scan::find_byte;

/// The one value in `buf`, without its terminating NUL (a host that
/// forgot it loses nothing; an interior byte is kept as it is).
pub fn one_value(buf: &[u8]) -> &[u8] {
    buf.strip_suffix(b"\0").unwrap_or(buf)
}

/// The values in `buf`, each followed by a NUL; bytes after the last NUL
/// are a last value (a host that forgot the terminator).
pub fn values(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(buf).filter(|b| !b.is_empty());
    // At most one value per byte, so that no bug here can loop.
    let most = buf.len();
    std::iter::from_fn(move || {
        let current = rest?;
        match find_nul(current) {
            Some(end) => {
                let next = &current[end + 1..];
                rest = (!next.is_empty()).then_some(next);
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
    .take(most)
}

/// The first NUL in `bytes`, a word at a time.
pub fn find_nul(bytes: &[u8]) -> Option<usize> {
    find_byte(bytes, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn joined(values: &[&[u8]]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|v| v.iter().copied().chain([0]))
            .collect()
    }

    fn split(buf: &[u8]) -> Vec<&[u8]> {
        values(buf).collect()
    }

    #[test]
    fn one_value_is_the_buffer_without_its_terminator() {
        assert_eq!(one_value(b"a=1; b=2\0"), b"a=1; b=2");
        assert_eq!(one_value(b"\0"), b"");
        // A host that forgot the NUL.
        assert_eq!(one_value(b"a=1"), b"a=1");
    }

    #[test]
    fn no_values_is_empty() {
        assert!(split(b"").is_empty());
    }

    #[test]
    fn several_values_split_at_each_nul() {
        let buf = joined(&[b"one", b"", b"a longer value than a word"]);
        assert_eq!(
            split(&buf),
            [b"one".as_slice(), b"", b"a longer value than a word"]
        );
        assert_eq!(split(b"a\0b"), [b"a", b"b"]);
    }

    #[test]
    fn find_nul_finds_the_first_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut bytes = vec![0x80u8; len];
                bytes[at] = 0;
                if at + 3 < len {
                    bytes[at + 3] = 0;
                }
                assert_eq!(find_nul(&bytes), Some(at), "{len} {at}");
            }
            // High bytes and 0x01 next to each other: no false positive.
            let bytes: Vec<u8> = (0..len).map(|i| [0x01, 0x80, 0xff][i % 3]).collect();
            assert_eq!(find_nul(&bytes), None, "{len}");
        }
    }

    proptest! {
        #[test]
        fn splitting_gives_back_what_was_joined(
            values in proptest::collection::vec(
                proptest::collection::vec(1u8..=255, 0..40), 2..6)
        ) {
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let buf = joined(&refs);
            prop_assert_eq!(split(&buf), refs);
        }

        #[test]
        fn find_nul_agrees_with_a_byte_scan(bytes in proptest::collection::vec(0u8..4, 0..64)) {
            prop_assert_eq!(find_nul(&bytes), bytes.iter().position(|&b| b == 0));
        }
    }
}
