//! `cookie::pairs`, `lookup` and `rewrite` on arbitrary `Cookie` lines.
//!
//! * `pairs` agrees with an independent parser, and every pair is trimmed
//!   (its name too, not the start of its value, as Go reads it), non-empty
//!   and free of `;`;
//! * `lookup` agrees with a count of the pairs of that name;
//! * `rewrite` leaves each replacement exactly once (or not at all for a
//!   removal), in place of the first pair of its name, and every other pair
//!   byte for byte and in order.
#![no_main]

use arbitrary::Arbitrary;
use cohort::cookie::{self, Lookup};
use cohort_fuzz::checks;
use libfuzzer_sys::fuzz_target;

/// Names the pieces draw from, so that they collide with the replacements;
/// the last ones are near misses.
const NAMES: &[&str] = &[
    "canary",
    "lb_sticky",
    "cohort_id",
    "a",
    "Canary",
    "canary ",
    "",
];
/// Replacement names: tokens, as the configuration guarantees.
const TOKENS: &[&str] = &["canary", "lb_sticky", "cohort_id", "a", "Canary"];

#[derive(Arbitrary, Debug)]
enum Piece {
    Raw(Vec<u8>),
    Pair(u8, Vec<u8>),
    Semicolon,
    Space,
    Tab,
    Equals,
}

#[derive(Arbitrary, Debug)]
struct Input {
    lines: Vec<Vec<Piece>>,
    replacements: Vec<(u8, Option<Vec<u8>>)>,
    text: String,
}

fn render(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Raw(bytes) => out.extend_from_slice(bytes),
            Piece::Pair(name, value) => {
                out.extend_from_slice(NAMES[usize::from(*name) % NAMES.len()].as_bytes());
                out.push(b'=');
                out.extend_from_slice(value);
            }
            Piece::Semicolon => out.push(b';'),
            Piece::Space => out.push(b' '),
            Piece::Tab => out.push(b'\t'),
            Piece::Equals => out.push(b'='),
        }
    }
    out
}

fn cookie_octets(raw: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| checks::is_cookie_value(&[b]))
        .collect();
    if v.is_empty() {
        v.push(b'v');
    }
    v
}

fn is_ows(b: &u8) -> bool {
    matches!(b, b' ' | b'\t')
}

fuzz_target!(|input: Input| {
    let lines: Vec<Vec<u8>> = input.lines.iter().map(|l| render(l)).collect();
    let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();

    // pairs: against the independent parser, and well-formed.
    let ours: Vec<cookie::Pair> = cookie::pairs_of(&lines).collect();
    let theirs = checks::cookie_pairs(&lines);
    assert_eq!(
        ours.iter().map(|p| (p.name, p.value)).collect::<Vec<_>>(),
        theirs
    );
    for p in &ours {
        assert!(!p.raw.is_empty() && !p.raw.contains(&b';'));
        for part in [p.raw, p.name] {
            assert!(!part.first().is_some_and(is_ows) && !part.last().is_some_and(is_ows));
        }
        // The value is kept as Go reads it: only the pair's end is trimmed.
        assert!(!p.value.last().is_some_and(is_ows));
        assert!(!p.name.contains(&b'='));
        assert!(p.raw.starts_with(p.name) && p.raw.ends_with(p.value));
    }

    // lookup: by exact name, first value of duplicates.
    for name in NAMES {
        let values = checks::values_named(&lines, name);
        let want = match values.as_slice() {
            [] => Lookup::Missing,
            [one] => Lookup::One(one),
            [first, ..] => Lookup::Duplicate(first),
        };
        assert_eq!(cookie::lookup(&lines, name.as_bytes()), want, "{name:?}");
    }

    // rewrite: distinct token names, cookie-octet values.
    let mut replacements: Vec<(&[u8], Option<Vec<u8>>)> = Vec::new();
    for (name, value) in &input.replacements {
        let name = TOKENS[usize::from(*name) % TOKENS.len()].as_bytes();
        if replacements.iter().all(|(n, _)| *n != name) {
            replacements.push((name, value.as_deref().map(cookie_octets)));
        }
    }
    let borrowed: Vec<(&[u8], Option<&[u8]>)> = replacements
        .iter()
        .map(|(n, v)| (*n, v.as_deref()))
        .collect();
    let out = cookie::rewrite(&lines, &borrowed);
    let out_lines = [out.as_slice()];
    let replaced = |name: &[u8]| borrowed.iter().any(|(n, _)| *n == name);

    let others = |pairs: Vec<cookie::Pair>| -> Vec<Vec<u8>> {
        pairs
            .into_iter()
            .filter(|p| !replaced(p.name))
            .map(|p| p.raw.to_vec())
            .collect()
    };
    let out_pairs: Vec<cookie::Pair> = cookie::pairs(&out).collect();
    assert_eq!(
        others(ours.clone()),
        others(out_pairs.clone()),
        "other pairs changed"
    );
    // Joined with "; ", no empty segment, nothing around.
    assert_eq!(out.split(|&b| b == b';').count(), out_pairs.len().max(1));
    assert!(!out.starts_with(b" ") && !out.ends_with(b" ") && !out.ends_with(b";"));

    for (name, value) in &borrowed {
        let found = checks::values_named(&out_lines, std::str::from_utf8(name).unwrap_or(""));
        match value {
            None => assert!(found.is_empty(), "{name:?} not removed"),
            Some(value) => {
                assert_eq!(found, [*value], "{name:?} not exactly once");
                // In place of the first pair of that name, else at the end.
                let others_before = |pairs: &[cookie::Pair]| {
                    pairs
                        .iter()
                        .position(|p| p.name == *name)
                        .map(|at| pairs[..at].iter().filter(|p| !replaced(p.name)).count())
                };
                let want = others_before(&ours).unwrap_or(others(ours.clone()).len());
                assert_eq!(others_before(&out_pairs), Some(want), "{name:?} moved");
            }
        }
    }

    // The validators match RFC 6265's classes.
    let s = input.text.as_str();
    assert_eq!(
        cookie::is_cookie_value(s),
        checks::is_cookie_value(s.as_bytes())
    );
    let token = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    assert_eq!(cookie::is_token(s), token);
});
