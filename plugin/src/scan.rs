//! Byte search for the guest: wasm has no `memchr`, and a byte-by-byte
//! loop costs Traefik about ten instructions a byte, over headers that are
//! mostly cookies and user agents.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bytes per round of [`find_byte`]: eight words.
const ROUND: usize = 64;

/// The eight bytes at `at` of a round, as a little-endian word.
#[inline(always)]
fn word_at(round: &[u8; ROUND], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = round[(at + i) % ROUND];
    }
    u64::from_le_bytes(bytes)
}

/// A high bit for every zero byte of `x` (and possibly for bytes above a
/// zero one, which the lowest set bit never is).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The index of the first `needle` in `haystack`, 64 bytes a round: values
/// are most of a `Cookie` header, and wasm has no `memchr`, so a
/// byte-by-byte loop costs Traefik about ten instructions a byte.
///
/// A round subtracts `0x01…01` from each of its eight words (each xor-ed
/// with the needle) and tests the high bits of all of them at once: that
/// flags every byte equal to `needle` (where the xor is zero) and also
/// xor-ed bytes from 0x81 up (never the case for ASCII text and an ASCII
/// needle). Only a flagged round pays for the exact test, word by word, and
/// a round of false alarms goes on. About 1.2 guest instructions a byte.
pub fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let (rounds, _) = haystack.as_chunks::<ROUND>();
    let mut done = 0;
    for round in rounds {
        // Written out: at `opt-level = "s"` a loop here stays a loop.
        let w = |at| (word_at(round, at) ^ pattern).wrapping_sub(ONES);
        let any = w(0) | w(8) | w(16) | w(24) | w(32) | w(40) | w(48) | w(56);
        if any & HIGHS != 0 {
            for at in (0..ROUND).step_by(8) {
                let bits = zero_bytes(word_at(round, at) ^ pattern);
                if bits != 0 {
                    return Some(done + at + (bits.trailing_zeros() / 8) as usize);
                }
            }
        }
        done += ROUND;
    }
    let (words, tail) = haystack[done..].as_chunks::<8>();
    for bytes in words {
        let bits = zero_bytes(u64::from_le_bytes(*bytes) ^ pattern);
        if bits != 0 {
            return Some(done + (bits.trailing_zeros() / 8) as usize);
        }
        done += 8;
    }
    tail.iter().position(|&b| b == needle).map(|p| done + p)
}

/// The index of the first byte equal to `needle` ignoring ASCII case
/// (`needle` is an ASCII letter or anything else, then compared exactly):
/// the text folded to lower case a word at a time. Folding sets bit 0x20
/// of every byte, which for a letter's needle finds exactly that letter in
/// either case (`@` and `` ` `` fold alike too, but they are not letters
/// and take the exact search).
pub fn find_byte_ignore_case(haystack: &[u8], needle: u8) -> Option<usize> {
    if !needle.is_ascii_alphabetic() {
        return find_byte(haystack, needle);
    }
    find_folded(haystack, needle.to_ascii_lowercase())
}

/// The first byte whose value with bit 0x20 set is `lower`.
fn find_folded(haystack: &[u8], lower: u8) -> Option<usize> {
    const CASE: u64 = 0x2020_2020_2020_2020;
    let pattern = ONES * u64::from(lower);
    let exact = |bytes: &[u8; 8]| zero_bytes((u64::from_le_bytes(*bytes) | CASE) ^ pattern);
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

/// Whether `a` and `b` are equal, compared here rather than by a `memcmp`
/// call: the names Cohort compares on every request (a cookie, a variant, a
/// query parameter) are a few bytes, and the call is most of the cost.
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One needle at every position of haystacks up to three rounds long,
    /// in a background of bytes that differ from the needle in one bit
    /// (the word test's near misses) or that raise its false alarms
    /// (bytes from 0x80 up): found mutants of the round pre-filter that
    /// the short random haystacks never reach.
    #[test]
    fn find_byte_finds_a_lone_needle_at_every_position() {
        for needle in [b';', b'=', 0u8, 0xffu8] {
            for background in [b'a', needle ^ 1, needle ^ 0x80, 0x80, 0xff ^ needle] {
                if background == needle {
                    continue;
                }
                for len in [0, 1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 191, 192, 200] {
                    let mut hay = vec![background; len];
                    assert_eq!(
                        find_byte(&hay, needle),
                        None,
                        "{needle} in {background} x {len}"
                    );
                    for at in 0..len {
                        hay[at] = needle;
                        assert_eq!(
                            find_byte(&hay, needle),
                            Some(at),
                            "{needle} at {at} of {len} in {background}"
                        );
                        // A second one later changes nothing: in another
                        // byte of a word, or in the same byte of the next
                        // word (the round's words are or-ed, and an xor
                        // there would cancel the two out).
                        for second in [at + 9, at + 8] {
                            if second < len {
                                hay[second] = needle;
                                assert_eq!(find_byte(&hay, needle), Some(at));
                                hay[second] = background;
                            }
                        }
                        hay[at] = background;
                    }
                }
            }
        }
    }

    proptest! {
        /// Prefixes of each other, equal and unequal bytes, empty slices.
        #[test]
        fn same_bytes_is_slice_equality(
            a in proptest::collection::vec(prop_oneof![Just(b'v'), Just(b'1'), any::<u8>()], 0..6),
            b in proptest::collection::vec(prop_oneof![Just(b'v'), Just(b'1'), any::<u8>()], 0..6),
        ) {
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert!(same_bytes(&a, &a));
            prop_assert_eq!(same_bytes(&a, &a[..a.len().saturating_sub(1)]), a.is_empty());
        }

        /// `find_folded` alone, as documented: the first byte whose value
        /// with bit 0x20 set is `lower`.
        #[test]
        fn find_folded_finds_the_first_folded_byte(
            hay in proptest::collection::vec(
                prop_oneof![Just(b'b'), Just(b'B'), Just(b'"'), Just(b'@'), Just(b'`'), any::<u8>()],
                0..40,
            ),
            lower in prop_oneof![Just(b'b'), Just(b'`'), Just(b'z')],
        ) {
            prop_assert_eq!(find_folded(&hay, lower), hay.iter().position(|&b| b | 0x20 == lower));
        }

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
