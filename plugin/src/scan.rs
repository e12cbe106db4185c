//! Byte search for the guest: wasm has no `memchr`, and a byte-by-byte
//! loop costs Traefik about ten instructions a byte, over headers that are
//! mostly cookies and user agents.

/// The index of the first `needle` in `haystack`, 32 bytes at a time:
/// values are most of a `Cookie` header, and wasm has no `memchr`, so a
/// byte-by-byte loop costs Traefik about ten instructions per byte.
///
/// Each round tests four words with the cheap `(x - 0x01…01) & 0x80…80`,
/// which flags every byte equal to `needle` (where `x` is zero) and also
/// bytes of `x` from 0x81 up (never the case for ASCII text and an ASCII
/// needle); only a flagged round pays for the exact test, and a round of
/// false alarms goes on.
pub fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let word = |bytes: &[u8; 8]| u64::from_le_bytes(*bytes) ^ pattern;
    let rough = |x: u64| x.wrapping_sub(ONES) & HIGHS;
    // A high bit for every zero byte of `x` (and possibly for bytes above
    // one, which the lowest set bit never is).
    let exact = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let (rounds, _) = haystack.as_chunks::<32>();
    let mut done = 0;
    for round in rounds {
        let (ab, cd) = round.split_at(16);
        let ((a, b), (c, d)) = (ab.split_at(8), cd.split_at(8));
        let (Some(a), Some(b), Some(c), Some(d)) = (
            a.first_chunk::<8>(),
            b.first_chunk::<8>(),
            c.first_chunk::<8>(),
            d.first_chunk::<8>(),
        ) else {
            break;
        };
        let (a, b, c, d) = (word(a), word(b), word(c), word(d));
        if rough(a) | rough(b) | rough(c) | rough(d) != 0 {
            let (offset, bits) = if exact(a) != 0 {
                (0, exact(a))
            } else if exact(b) != 0 {
                (8, exact(b))
            } else if exact(c) != 0 {
                (16, exact(c))
            } else {
                (24, exact(d))
            };
            if bits != 0 {
                return Some(done + offset + (bits.trailing_zeros() / 8) as usize);
            }
        }
        done += 32;
    }
    let (words, tail) = haystack[done..].as_chunks::<8>();
    for bytes in words {
        let bits = exact(word(bytes));
        if bits != 0 {
            return Some(done + (bits.trailing_zeros() / 8) as usize);
        }
        done += 8;
    }
    tail.iter().position(|&b| b == needle).map(|p| done + p)
}

/// The index of the first byte equal to `needle` ignoring ASCII case
/// (`needle` is an ASCII letter or anything else, then compared exactly):
/// [`find_byte`] over the text folded to lower case a word at a time.
/// Folding sets bit 0x20 of every byte, so `@` also looks like `` ` `` to
/// the word test; the byte found is checked exactly.
pub fn find_byte_ignore_case(haystack: &[u8], needle: u8) -> Option<usize> {
    if !needle.is_ascii_alphabetic() {
        return find_byte(haystack, needle);
    }
    let lower = needle.to_ascii_lowercase();
    let mut at = 0;
    while at < haystack.len() {
        let rest = &haystack[at..];
        let found = find_folded(rest, lower)?;
        if rest[found].eq_ignore_ascii_case(&lower) {
            return Some(at + found);
        }
        at += found + 1;
    }
    None
}

/// The first byte whose value with bit 0x20 set is `lower`.
fn find_folded(haystack: &[u8], lower: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const CASE: u64 = 0x2020_2020_2020_2020;
    let pattern = ONES * u64::from(lower);
    let exact = |bytes: &[u8; 8]| {
        let x = (u64::from_le_bytes(*bytes) | CASE) ^ pattern;
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let (words, tail) = haystack.as_chunks::<8>();
    let mut done = 0;
    for bytes in words {
        let bits = exact(bytes);
        if bits != 0 {
            return Some(done + (bits.trailing_zeros() / 8) as usize);
        }
        done += 8;
    }
    tail.iter()
        .position(|&b| b | 0x20 == lower)
        .map(|p| done + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn find_byte_matches_position(hay in proptest::collection::vec(
            prop_oneof![Just(b';'), Just(b';' ^ 0x80), Just(b':'), Just(b'<'), Just(0u8), any::<u8>()],
            0..100,
        )) {
            prop_assert_eq!(find_byte(&hay, b';'), hay.iter().position(|&b| b == b';'));
            prop_assert_eq!(find_byte(&hay, 0), hay.iter().position(|&b| b == 0));
        }

        #[test]
        fn find_byte_ignore_case_matches_position(
            hay in proptest::collection::vec(
                prop_oneof![Just(b'b'), Just(b'B'), Just(b'"'), Just(b'@'), Just(b'`'), Just(0xc2u8), any::<u8>()],
                0..100,
            ),
            needle in prop_oneof![Just(b'b'), Just(b'B'), Just(b'@'), Just(b'`'), Just(b'2')],
        ) {
            prop_assert_eq!(
                find_byte_ignore_case(&hay, needle),
                hay.iter().position(|b| b.eq_ignore_ascii_case(&needle))
            );
        }
    }
}
