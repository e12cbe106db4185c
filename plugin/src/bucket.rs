//! Deterministic assignment of a stable key to a variant, and generated
//! visitor ids.
//!
//! Assignment is weighted rendezvous hashing: every candidate variant `v`
//! draws `u_v = H_v(key)` uniform in (0, 1], scores `-ln(u_v) / weight_v`,
//! and the lowest score wins. The winner is `v` with probability
//! `weight_v / Σ weights`, and the assignment is monotonic for any number
//! of variants: raising one weight only moves visitors *into* that
//! variant, lowering it only moves *its* visitors out, and the others never
//! shuffle. Same seed, key and weights give the same variant on every
//! replica, with no shared state.
//!
//! `H_v` is one of two formulas ([`AssignmentHash`]); both make a 64-bit
//! integer `h`, and `u = ((h >> 11) + 1) / 2^53`.
//! - `sha256` (the default, and Cohort's only formula before
//!   `assignmentHash`): SHA-256 over length-prefixed fields (so no field
//!   can bleed into the next), `u32be(len(seed)) seed u32be(len(v)) v key`,
//!   `h` its first 8 bytes, big-endian.
//! - `siphash`: SipHash-2-4 of the key under the 128-bit key
//!   `K_v = SHA-256(u32be(len(seed)) seed u32be(len(v)) v)[..16]`, made
//!   once per variant at load, so a request hashes only its key; `h` is
//!   SipHash's 64-bit output. SipHash is a pseudo-random function, so the
//!   variants' draws are as independent as SHA-256's, for some 700 guest
//!   instructions a draw instead of some 6,400 (a short key, measured).

use sha2::{Digest, Sha256};

/// Weights are basis points: 10 000 is 100 %.
pub const FULL_WEIGHT: u32 = 10_000;

/// Which hash draws `u_v`. Every assignment depends on it, so it changes
/// only where the configuration says (`assignmentHash`): switching moves
/// about half of the visitors bucketed by a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssignmentHash {
    /// SHA-256 of seed, variant and key, one per variant and request.
    #[default]
    Sha256,
    /// SipHash-2-4 of the key under a per-variant key derived at load.
    SipHash,
}

impl AssignmentHash {
    pub const ALL: [AssignmentHash; 2] = [AssignmentHash::Sha256, AssignmentHash::SipHash];

    /// The configuration spelling, `sha256` or `siphash`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentHash::Sha256 => "sha256",
            AssignmentHash::SipHash => "siphash",
        }
    }
}

/// How one variant draws its `u` for a key.
#[derive(Debug, Clone, Copy)]
pub enum Draw<'a> {
    /// `sha256`: the seed and the variant's name go into every hash.
    Sha256 { seed: &'a [u8], variant: &'a str },
    /// `siphash`: the variant's SipHash key, from [`sip_key`].
    SipHash([u64; 2]),
}

impl Draw<'_> {
    /// The uniform draw `u` in (0, 1] for `key`.
    pub fn of(&self, key: &[u8]) -> f64 {
        match *self {
            Draw::Sha256 { seed, variant } => draw(seed, variant, key),
            Draw::SipHash(k) => unit(siphash24(k, key)),
        }
    }
}

/// One variant taking part in the draw.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub index: usize,
    /// Basis points; zero never wins.
    pub weight: u32,
    pub draw: Draw<'a>,
}

/// The `sha256` draw `u` in (0, 1] for a (seed, variant, key).
pub fn draw(seed: &[u8], variant: &str, key: &[u8]) -> f64 {
    let mut hasher = Sha256::new();
    feed_prefix(&mut hasher, seed, variant);
    hasher.update(key);
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    unit(u64::from_be_bytes(first))
}

/// Feeds `u32be(len(seed)) seed u32be(len(variant)) variant`, the prefix
/// both formulas hash: the length prefixes keep a field from bleeding into
/// the next. In place and inlined: returning the hasher by value, or
/// calling this, cost each new visitor's `sha256` draws 436 or 82 fuel.
#[inline(always)]
fn feed_prefix(hasher: &mut Sha256, seed: &[u8], variant: &str) {
    hasher.update((seed.len() as u32).to_be_bytes());
    hasher.update(seed);
    hasher.update((variant.len() as u32).to_be_bytes());
    hasher.update(variant.as_bytes());
}

/// `((h >> 11) + 1) / 2^53`: the top 53 bits, never 0.
fn unit(h: u64) -> f64 {
    ((h >> 11) + 1) as f64 / (1u64 << 53) as f64
}

/// The `siphash` key of a variant: the first 16 bytes of
/// `SHA-256(u32be(len(seed)) seed u32be(len(variant)) variant)`, as
/// SipHash's `k0` and `k1` (each little-endian, as SipHash reads its key).
pub fn sip_key(seed: &[u8], variant: &str) -> [u64; 2] {
    let mut hasher = Sha256::new();
    feed_prefix(&mut hasher, seed, variant);
    let digest = hasher.finalize();
    let mut k = [[0u8; 8]; 2];
    k[0].copy_from_slice(&digest[..8]);
    k[1].copy_from_slice(&digest[8..16]);
    [u64::from_le_bytes(k[0]), u64::from_le_bytes(k[1])]
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `message` under `key`.
pub fn siphash24(key: [u64; 2], message: &[u8]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let mut words = message.chunks_exact(8);
    for word in &mut words {
        let mut m = [0u8; 8];
        m.copy_from_slice(word);
        compress(&mut v, u64::from_le_bytes(m), 2);
    }
    // The last word: the remaining bytes, and the length's low byte on top.
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = message.len() as u8;
    compress(&mut v, u64::from_le_bytes(last), 2);
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn compress(v: &mut [u64; 4], m: u64, rounds: usize) {
    v[3] ^= m;
    for _ in 0..rounds {
        sip_round(v);
    }
    v[0] ^= m;
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// The winning candidate's `index`, or `None` when no candidate has weight.
pub fn assign<'a>(
    key: &[u8],
    candidates: impl IntoIterator<Item = Candidate<'a>>,
) -> Option<usize> {
    let mut best: Option<(f64, usize)> = None;
    for c in candidates {
        if c.weight == 0 {
            continue;
        }
        let score = -c.draw.of(key).ln() / f64::from(c.weight);
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, c.index));
        }
    }
    best.map(|(_, index)| index)
}

/// A one-off weighted choice from a uniform 64-bit `draw`: the candidate's
/// `index` with probability `weight / Σ weights` (the modulo bias is under
/// `Σ weights / 2^64`), or `None` when no candidate has weight. For visitors
/// nobody keeps a key for, where rendezvous hashing's consistency buys
/// nothing and its SHA-256 per variant costs the guest most of a request.
pub fn pick<'a, I>(draw: u64, candidates: I) -> Option<usize>
where
    I: IntoIterator<Item = Candidate<'a>>,
    I::IntoIter: Clone,
{
    let candidates = candidates.into_iter();
    let total: u64 = candidates.clone().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut rest = draw % total;
    for c in candidates {
        let weight = u64::from(c.weight);
        if rest < weight {
            return Some(c.index);
        }
        rest -= weight;
    }
    None
}

/// Generates visitor ids and one-off draws without the guest's
/// random source, which in Traefik is a PRNG seeded with 42 and so identical
/// in every instance. The state starts from the real wall clock at the
/// instance's start-up, so instances diverge from their first key.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    state: [u8; 32],
    counter: u64,
}

impl IdGenerator {
    /// `boot` is whatever the instance knows at start-up (the wall clock).
    pub fn new(boot: &[u8]) -> Self {
        IdGenerator {
            state: Sha256::digest(boot).into(),
            counter: 0,
        }
    }

    /// A new 128-bit visitor id, to be kept in a cookie, as 32 lowercase hex
    /// digits: a SHA-256 chain over the state, a counter, the real wall
    /// clock and request data, so ids from instances that started in the
    /// same instant still differ and one id says nothing about the next.
    pub fn next_id(&mut self, now_nanos: u128, request_data: &[&[u8]]) -> String {
        self.counter += 1;
        let mut hasher = Sha256::new();
        hasher.update(self.state);
        hasher.update(self.counter.to_be_bytes());
        hasher.update(now_nanos.to_be_bytes());
        for data in request_data {
            hasher.update((data.len() as u32).to_be_bytes());
            hasher.update(data);
        }
        self.state = hasher.finalize().into();
        hex(&self.state[..16])
    }

    /// A uniform 64-bit draw for [`pick`], for a visitor nobody keeps a key
    /// for: SplitMix64 over the state and the counter. Its mix is a
    /// bijection, so an instance never repeats a draw, and instances whose
    /// start-up clocks differ draw from different streams.
    pub fn next_draw(&mut self) -> u64 {
        self.counter += 1;
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&self.state[..8]);
        let mut z =
            u64::from_be_bytes(seed).wrapping_add(self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Traefik's sticky-cookie value for a weighted child or a server: the
/// first 16 hex digits of SHA-256 of its name exactly as configured.
pub fn traefik_sticky_value(service: &str) -> String {
    StickyHash::Sha256.value(service)
}

/// How a Traefik version writes its sticky-cookie values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StickyHash {
    /// Traefik 3.3.4 and later: the first 16 hex digits of SHA-256.
    #[default]
    Sha256,
    /// Traefik before 3.3.4: FNV-1 (not 1a) 64-bit, lower-case hex without
    /// leading zeros (Go's `%x`).
    Fnv,
}

impl StickyHash {
    pub const ALL: [StickyHash; 2] = [StickyHash::Sha256, StickyHash::Fnv];

    /// The sticky value Traefik writes for `name` under this hash.
    pub fn value(self, name: &str) -> String {
        match self {
            StickyHash::Sha256 => hex(&Sha256::digest(name.as_bytes())[..8]),
            StickyHash::Fnv => format!("{:x}", fnv1_64(name.as_bytes())),
        }
    }

    /// The configuration spelling, `sha256` or `fnv`.
    pub fn as_str(self) -> &'static str {
        match self {
            StickyHash::Sha256 => "sha256",
            StickyHash::Fnv => "fnv",
        }
    }

    /// The Traefik versions that write this hash.
    pub fn traefik_versions(self) -> &'static str {
        match self {
            StickyHash::Sha256 => "Traefik 3.3.4 and later",
            StickyHash::Fnv => "Traefik before 3.3.4",
        }
    }
}

/// FNV-1 64-bit: multiply by the prime, then xor the byte.
fn fnv1_64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| h.wrapping_mul(PRIME) ^ u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use AssignmentHash::{Sha256 as SHA, SipHash as SIP};

    fn candidate(
        hash: AssignmentHash,
        seed: &'static [u8],
        index: usize,
        name: &'static str,
        weight: u32,
    ) -> Candidate<'static> {
        let draw = match hash {
            SHA => Draw::Sha256 {
                seed,
                variant: name,
            },
            SIP => Draw::SipHash(sip_key(seed, name)),
        };
        Candidate {
            index,
            weight,
            draw,
        }
    }

    fn two_with(
        hash: AssignmentHash,
        seed: &'static [u8],
        canary_bp: u32,
    ) -> [Candidate<'static>; 2] {
        [
            candidate(hash, seed, 0, "v1", FULL_WEIGHT - canary_bp),
            candidate(hash, seed, 1, "v2", canary_bp),
        ]
    }

    /// v1 and v2 under `sha256` and seed `s`, for the one-off picks.
    fn two(canary_bp: u32) -> [Candidate<'static>; 2] {
        two_with(SHA, b"s", canary_bp)
    }

    /// Three candidates weighted 50/30/20 %, at these indices.
    fn fifty_thirty_twenty(hash: AssignmentHash, index: [usize; 3]) -> [Candidate<'static>; 3] {
        [
            candidate(hash, b"seed", index[0], "a", 5_000),
            candidate(hash, b"seed", index[1], "b", 3_000),
            candidate(hash, b"seed", index[2], "c", 2_000),
        ]
    }

    fn share(candidates: &[Candidate], n: u32) -> Vec<u32> {
        let mut counts = vec![0u32; candidates.len()];
        for i in 0..n {
            let key = format!("visitor-{i}");
            if let Some(idx) = assign(key.as_bytes(), candidates.iter().copied()) {
                counts[idx] += 1;
            }
        }
        counts
    }

    #[test]
    fn split_follows_weights_within_tolerance() {
        for hash in AssignmentHash::ALL {
            // 100k keys at 10 %: sd = sqrt(n p (1-p)) ≈ 95, so ±500 is > 5 sd.
            let counts = share(&two_with(hash, b"seed", 1_000), 100_000);
            assert!(
                (counts[1] as i64 - 10_000).abs() < 500,
                "{hash:?} {counts:?}"
            );
            // Three-way 50/30/20.
            let counts = share(&fifty_thirty_twenty(hash, [0, 1, 2]), 100_000);
            for (got, want) in counts.iter().zip([50_000i64, 30_000, 20_000]) {
                assert!((*got as i64 - want).abs() < 800, "{hash:?} {counts:?}");
            }
        }
    }

    #[test]
    fn the_variants_draws_are_independent() {
        // Under `siphash` both draws come from one key through per-variant
        // keys: a shared weakness would show as correlated draws. At 50/50,
        // P(u_v1 < 1/2 and u_v2 < 1/2) is 1/4; 100k keys, within 5 sd (≈ 137).
        for hash in AssignmentHash::ALL {
            let [a, b] = two_with(hash, b"seed", 5_000);
            let both = (0..100_000)
                .filter(|i| {
                    let key = format!("visitor-{i}");
                    a.draw.of(key.as_bytes()) < 0.5 && b.draw.of(key.as_bytes()) < 0.5
                })
                .count() as i64;
            assert!((both - 25_000).abs() < 700, "{hash:?} {both}");
        }
    }

    #[test]
    fn zero_weight_never_wins_and_no_weight_gives_none() {
        for hash in AssignmentHash::ALL {
            assert_eq!(share(&two_with(hash, b"s", 0), 2_000)[1], 0);
            assert_eq!(share(&two_with(hash, b"s", FULL_WEIGHT), 2_000)[0], 0);
            let none = [candidate(hash, b"s", 0, "a", 0)];
            assert_eq!(assign(b"k", none), None);
        }
    }

    #[test]
    fn a_tie_goes_to_the_earlier_candidate() {
        // Found by mutation testing (`<` -> `<=` survived): two candidates
        // with the same name and weight score exactly alike, so only the
        // order decides, and it is the first that wins.
        for hash in AssignmentHash::ALL {
            let twin = |index| candidate(hash, b"s", index, "same", 5_000);
            for key in [&b"a"[..], b"b", b"c"] {
                assert_eq!(assign(key, [twin(7), twin(3)]), Some(7));
                assert_eq!(assign(key, [twin(3), twin(7)]), Some(3));
            }
        }
    }

    #[test]
    fn seed_and_hash_change_the_assignment() {
        let run = |hash, seed| -> Vec<_> {
            (0..200)
                .map(|i| assign(format!("k{i}").as_bytes(), two_with(hash, seed, 5_000)))
                .collect()
        };
        assert_ne!(run(SHA, b"one"), run(SHA, b"two"));
        assert_ne!(run(SIP, b"one"), run(SIP, b"two"));
        assert_ne!(run(SHA, b"one"), run(SIP, b"one"));
    }

    #[test]
    fn siphash_gives_the_reference_vectors() {
        // The SipHash paper's test key 00 01 .. 0f, and messages 00 01 ..
        // of each length: vectors 0, 7, 8 and 15 of its reference code,
        // read as little-endian u64 (the paper, appendix A, gives 15).
        let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        let message: Vec<u8> = (0..64).collect();
        assert_eq!(siphash24(key, &message[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(key, &message[..7]), 0xab02_00f5_8b01_d137);
        assert_eq!(siphash24(key, &message[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(key, &message[..15]), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn siphash_agrees_with_the_standard_library() {
        // std's deprecated SipHasher is SipHash-2-4: an implementation that
        // shares nothing with this one, over every length up to 64.
        #[allow(deprecated)]
        fn std_siphash(key: [u64; 2], message: &[u8]) -> u64 {
            use std::hash::Hasher;
            let mut h = std::hash::SipHasher::new_with_keys(key[0], key[1]);
            h.write(message);
            h.finish()
        }
        let message: Vec<u8> = (0..=64u8).map(|b| b.wrapping_mul(151)).collect();
        for (i, key) in [[0, 0], [u64::MAX, 1], sip_key(b"seed", "v2")]
            .into_iter()
            .enumerate()
        {
            for len in 0..=message.len() {
                assert_eq!(
                    siphash24(key, &message[..len]),
                    std_siphash(key, &message[..len]),
                    "key {i}, length {len}"
                );
            }
        }
    }

    #[test]
    fn sticky_value_matches_traefik() {
        // sha256("v2@file") begins with these 16 hex digits (checked with sha256sum).
        assert_eq!(traefik_sticky_value("v2@file").len(), 16);
        assert_eq!(traefik_sticky_value("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn fnv_sticky_values_match_traefik_before_3_3_4() {
        // Seen in Traefik 3.0.4, 3.2.3 and 3.3.3 for children `v1`/`v2`.
        assert_eq!(StickyHash::Fnv.value("v1"), "8325207b4eb141a");
        assert_eq!(StickyHash::Fnv.value("v2"), "8325207b4eb1419");
        // FNV-1, not 1a: 1a of "a" is af63dc4c8601ec8c.
        assert_eq!(StickyHash::Fnv.value("a"), "af63bd4c8601b7be");
        // The offset basis itself for the empty name.
        assert_eq!(StickyHash::Fnv.value(""), "cbf29ce484222325");
        // Go's `%x`: no leading zeros (the hash is 0x038f6a57633e45ec).
        assert_eq!(StickyHash::Fnv.value("s196000"), "38f6a57633e45ec");
        assert_eq!(StickyHash::Sha256.value("abc"), traefik_sticky_value("abc"));
    }

    #[test]
    fn ids_differ_between_generators_booted_alike_once_requests_differ() {
        let mut a = IdGenerator::new(b"same boot");
        let mut b = IdGenerator::new(b"same boot");
        let ida = a.next_id(1_000, &[b"127.0.0.1:50000"]);
        let idb = b.next_id(1_000, &[b"127.0.0.1:50001"]);
        assert_ne!(ida, idb);
        assert_eq!(ida.len(), 32);
        assert!(ida.bytes().all(|c| c.is_ascii_hexdigit()));
        // The same generator never repeats, even with identical inputs.
        assert_ne!(a.next_id(1_000, &[b"x"]), a.next_id(1_000, &[b"x"]));
    }

    #[test]
    fn one_off_draws_never_repeat_and_differ_between_boots() {
        let mut a = IdGenerator::new(b"boot 1");
        let mut b = IdGenerator::new(b"boot 2");
        let draws: std::collections::HashSet<u64> = (0..10_000).map(|_| a.next_draw()).collect();
        assert_eq!(draws.len(), 10_000);
        let other: std::collections::HashSet<u64> = (0..10_000).map(|_| b.next_draw()).collect();
        assert!(draws.is_disjoint(&other));
    }

    #[test]
    fn one_off_picks_split_by_the_weights() {
        // 100k consecutive draws at 10 %: within 5 sd (sd ≈ 95) of 10,000;
        // three ways 50/30/20 within 5 sd too (sd ≤ 158).
        let mut ids = IdGenerator::new(b"boot");
        let mut canary = 0i64;
        for _ in 0..100_000 {
            if pick(ids.next_draw(), two(1_000)) == Some(1) {
                canary += 1;
            }
        }
        assert!((canary - 10_000).abs() < 500, "{canary}");
        let three = fifty_thirty_twenty(SHA, [0, 2, 5]);
        let mut counts = [0i64; 6];
        for _ in 0..100_000 {
            counts[pick(ids.next_draw(), three).expect("weighted")] += 1;
        }
        for (got, want) in [
            (counts[0], 50_000),
            (counts[2], 30_000),
            (counts[5], 20_000),
        ] {
            assert!((got - want).abs() < 800, "{counts:?}");
        }
        // Consecutive draws are not correlated: the canary follows itself
        // as often as chance says (10 % of 10 %), within 5 sd.
        let mut both = 0i64;
        let mut last = false;
        for _ in 0..100_000 {
            let now = pick(ids.next_draw(), two(1_000)) == Some(1);
            both += i64::from(last && now);
            last = now;
        }
        assert!((both - 1_000).abs() < 160, "{both}");
    }

    #[test]
    fn pick_never_chooses_a_weightless_candidate() {
        assert_eq!(pick(u64::MAX, two(0)), Some(0));
        assert_eq!(pick(0, two(FULL_WEIGHT)), Some(1));
        let none = [candidate(SHA, b"s", 0, "a", 0)];
        assert_eq!(pick(7, none), None);
        for draw in [0, 1, 9_999, 10_000, u64::MAX] {
            assert_eq!(pick(draw, two(0)), Some(0), "{draw}");
        }
    }

    proptest! {
        #[test]
        fn deterministic(key in proptest::collection::vec(any::<u8>(), 0..64), bp in 0u32..=FULL_WEIGHT, sip: bool) {
            let hash = if sip { SIP } else { SHA };
            prop_assert_eq!(assign(&key, two_with(hash, b"s", bp)), assign(&key, two_with(hash, b"s", bp)));
        }

        /// Ramping the canary up only moves stable users in; down only moves canary users out.
        #[test]
        fn ramp_is_monotonic(key in proptest::collection::vec(any::<u8>(), 0..64), lo in 0u32..=FULL_WEIGHT, hi in 0u32..=FULL_WEIGHT, sip: bool) {
            let hash = if sip { SIP } else { SHA };
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let before = assign(&key, two_with(hash, b"s", lo));
            let after = assign(&key, two_with(hash, b"s", hi));
            if before == Some(1) { prop_assert_eq!(after, Some(1)); }
            if after == Some(0) { prop_assert_eq!(before, Some(0)); }
        }

        /// With three variants, changing one weight never moves users between the other two.
        #[test]
        fn others_never_shuffle(key in proptest::collection::vec(any::<u8>(), 0..32), wb in 0u32..5_000, wc in 0u32..5_000, sip: bool) {
            let hash = if sip { SIP } else { SHA };
            let make = |b: u32| [
                candidate(hash, b"s", 0, "a", 5_000),
                candidate(hash, b"s", 1, "b", b),
                candidate(hash, b"s", 2, "c", wc),
            ];
            let before = assign(&key, make(wb));
            let after = assign(&key, make(wb / 2));
            if before != Some(1) { prop_assert_eq!(before, after); }
        }
    }
}
