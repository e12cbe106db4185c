//! Cookie handling over raw bytes: reading `Cookie` request headers,
//! rewriting them, and building `Set-Cookie` values.
//!
//! Everything works on bytes, never on `str`: browsers and hostile clients
//! send non-UTF-8 and control bytes, and other cookies must pass through
//! byte for byte.

use crate::scan::{find_byte, same_bytes};

/// One `name=value` pair of a `Cookie` header, read as Go's `net/http` (and
/// so Traefik) reads it: the pair and the name are trimmed of whitespace,
/// the value is not (`a= b` has the value ` b`). A pair without `=` has an
/// empty value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The whole pair as it stood in the header (trimmed).
    pub raw: &'a [u8],
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// Iterates the pairs of one `Cookie` header line, skipping empty segments
/// (`;;`, trailing `;`).
pub fn pairs(line: &[u8]) -> Pairs<'_> {
    Pairs {
        line,
        spans: spans(line).take(line.len()),
    }
}

/// The iterator [`pairs`] returns.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    line: &'a [u8],
    /// At most one span per byte, so that no bug in [`spans`] can loop.
    spans: std::iter::Take<Spans<'a>>,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Pair<'a>;

    fn next(&mut self) -> Option<Pair<'a>> {
        let (start, end) = self.spans.next()?;
        let raw = &self.line[start..end];
        let (name, value) = match raw.iter().position(|&b| b == b'=') {
            // Not trimming the value keeps Cohort's reading equal to Go's:
            // a pair Cohort finds already right (`wrr=<child>`) is one
            // Traefik's weighted service reads the same way, and `wrr= <child>`
            // (which Traefik reads as ` <child>`, matching no child) is
            // rewritten rather than left for Traefik to ignore.
            Some(eq) => (trim_ows_end(&raw[..eq]), &raw[eq + 1..]),
            None => (raw, &raw[raw.len()..]),
        };
        Some(Pair { raw, name, value })
    }
}

/// Where the pairs of one line stand: `(start, end)` of every non-empty
/// segment between `;`s, trimmed of whitespace.
///
/// This loop runs over every byte of every `Cookie` header on every request
/// (browsers send kilobytes of them), in wasm, on Traefik's hot path: it
/// looks at the bytes of a value eight at a time and never finds a value's
/// `=` or trims it unless someone asks.
fn spans(line: &[u8]) -> Spans<'_> {
    Spans { rest: line, at: 0 }
}

#[derive(Debug, Clone)]
struct Spans<'a> {
    /// The line from `at` on.
    rest: &'a [u8],
    at: usize,
}

impl Iterator for Spans<'_> {
    type Item = (usize, usize);

    // Inlined into the loops over a header (`opt-level = "s"` would not):
    // a call per pair costs more than the pair's bytes.
    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize)> {
        // Separators and the whitespace around pairs: what is left starts
        // the next non-empty segment, already trimmed on the left.
        let Some(skip) = self
            .rest
            .iter()
            .position(|&b| !matches!(b, b';' | b' ' | b'\t'))
        else {
            self.rest = &[];
            return None;
        };
        let segment = &self.rest[skip..];
        let len = find_byte(segment, b';').unwrap_or(segment.len());
        let start = self.at + skip;
        self.rest = &segment[len..];
        self.at = start + len;
        Some((start, start + trim_ows_end(&segment[..len]).len()))
    }
}

/// A name [`named`] can match by its prefix: not empty, no `=` or `;`, no
/// whitespace at either end. Every cookie name Cohort uses is a token, so
/// the general way is only there to keep the functions total.
fn is_plain(name: &[u8]) -> bool {
    !name.is_empty()
        && !name.contains(&b'=')
        && !name.contains(&b';')
        && !matches!(name.first(), Some(b' ' | b'\t'))
        && !matches!(name.last(), Some(b' ' | b'\t'))
}

/// The value of the trimmed pair `raw` if its name is the plain `name`:
/// `raw` is `name` alone, or `name`, optional whitespace, `=` and the value.
#[inline(always)]
fn named<'a>(raw: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    // Most pairs differ in their first byte: no call to compare them.
    if raw.first() != name.first() {
        return None;
    }
    let after = raw
        .split_at_checked(name.len())
        .filter(|(head, _)| same_bytes(head, name))?
        .1;
    match after.iter().position(|&b| b != b' ' && b != b'\t') {
        None => Some(&after[after.len()..]),
        Some(eq) if after[eq] == b'=' => Some(&after[eq + 1..]),
        Some(_) => None,
    }
}

/// Iterates the pairs of several `Cookie` header lines in order (HTTP/1.1
/// clients may send more than one line).
pub fn pairs_of<'a, L: AsRef<[u8]>>(lines: &'a [L]) -> impl Iterator<Item = Pair<'a>> {
    lines.iter().flat_map(|line| pairs(line.as_ref()))
}

/// What the request's cookies say about one cookie name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookup<'a> {
    /// No pair of that name.
    #[default]
    Missing,
    /// Exactly one pair of that name.
    One(&'a [u8]),
    /// Several pairs of that name; the first value is what Go's
    /// `Request.Cookie` (and so Traefik's sticky logic) would read.
    Duplicate(&'a [u8]),
}

impl<'a> Lookup<'a> {
    /// The value Go would read, if any.
    pub fn first(self) -> Option<&'a [u8]> {
        match self {
            Lookup::Missing => None,
            Lookup::One(v) | Lookup::Duplicate(v) => Some(v),
        }
    }

    /// What it says once one more pair of that name, with `value`, is found.
    fn and(self, value: &'a [u8]) -> Lookup<'a> {
        match self {
            Lookup::Missing => Lookup::One(value),
            Lookup::One(first) | Lookup::Duplicate(first) => Lookup::Duplicate(first),
        }
    }

    /// True when the request carries exactly one pair of that name, with
    /// exactly this value: nothing needs rewriting.
    pub fn is_exactly(self, value: &[u8]) -> bool {
        matches!(self, Lookup::One(v) if same_bytes(v, value))
    }
}

/// A [`Lookup`] in one line, as byte offsets: what a reader that has
/// looked already hands on with the line, so it is not searched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Missing,
    One(usize, usize),
    Duplicate(usize, usize),
}

impl Found {
    /// Where `lookup`'s value lies in `line`, the line it was found in.
    pub fn of(lookup: Lookup<'_>, line: &[u8]) -> Found {
        let span = |value: &[u8]| {
            let start = (value.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
            (start, start + value.len())
        };
        match lookup {
            Lookup::Missing => Found::Missing,
            Lookup::One(v) => {
                let (start, end) = span(v);
                Found::One(start, end)
            }
            Lookup::Duplicate(v) => {
                let (start, end) = span(v);
                Found::Duplicate(start, end)
            }
        }
    }

    /// The lookup again, in the same line; `None` if the offsets do not
    /// fit it (another line).
    pub fn within(self, line: &[u8]) -> Option<Lookup<'_>> {
        Some(match self {
            Found::Missing => Lookup::Missing,
            Found::One(start, end) => Lookup::One(line.get(start..end)?),
            Found::Duplicate(start, end) => Lookup::Duplicate(line.get(start..end)?),
        })
    }
}

/// Finds a cookie by exact (case-sensitive) name across all lines.
pub fn lookup<'a, L: AsRef<[u8]>>(lines: &'a [L], name: &[u8]) -> Lookup<'a> {
    if !is_plain(name) {
        return lookup_pairs(lines, name);
    }
    lookup_token(lines, name)
}

/// [`lookup`] for a name known to be a cookie token, as every name in a
/// validated configuration is: it skips checking that on every request.
pub fn lookup_token<'a, L: AsRef<[u8]>>(lines: &'a [L], name: &[u8]) -> Lookup<'a> {
    debug_assert!(is_plain(name), "{name:?} is not a token");
    let mut found = Lookup::Missing;
    for line in lines {
        let line = line.as_ref();
        // Jump from one occurrence of the name's first byte to the next
        // rather than from pair to pair: most pairs never contain it, and
        // a step per pair costs more than the pair's bytes.
        let mut from = 0;
        // Each round moves `from` on by at least a byte: a bound, not a
        // limit, so that no bug here can loop.
        for _ in 0..=line.len() {
            let Some(offset) = find_byte(&line[from..], name[0]) else {
                break;
            };
            let start = from + offset;
            if !starts_pair(line, start) {
                from = start + 1;
                continue;
            }
            let end = find_byte(&line[start..], b';').map_or(line.len(), |e| start + e);
            if let Some(value) = named(trim_ows_end(&line[start..end]), name) {
                found = found.and(value);
            }
            if end >= line.len() {
                break;
            }
            from = end;
        }
    }
    found
}

/// Whether a pair (a segment of [`spans`]) starts at `at`: between it and
/// the line's start or the last `;` before it stand only `;`, spaces and
/// tabs, which [`spans`] skips.
#[inline(always)]
fn starts_pair(line: &[u8], at: usize) -> bool {
    for &b in line[..at].iter().rev() {
        match b {
            b';' => return true,
            b' ' | b'\t' => {}
            _ => return false,
        }
    }
    true
}

/// [`lookup`] by its definition, for any name.
fn lookup_pairs<'a, L: AsRef<[u8]>>(lines: &'a [L], name: &[u8]) -> Lookup<'a> {
    let mut found = Lookup::Missing;
    for pair in pairs_of(lines) {
        if pair.name == name {
            found = found.and(pair.value);
        }
    }
    found
}

/// Rewrites cookie lines into one `Cookie` header value in which each
/// `(name, Some(value))` of `replacements` appears exactly once: the first
/// pair of that name is replaced in place, later ones are dropped, and a
/// missing one is appended. `(name, None)` drops every pair of that name.
/// Every other pair is kept byte for byte and in order; lines are joined
/// with `"; "` as HTTP/2 requires and Go does.
///
/// At most 64 replacements (Cohort passes one or two).
pub fn rewrite<L: AsRef<[u8]>>(lines: &[L], replacements: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
    debug_assert!(
        replacements.len() <= 64,
        "rewrite takes at most 64 replacements"
    );
    if !replacements.iter().all(|(name, _)| is_plain(name)) {
        return rewrite_pairs(lines, replacements);
    }
    let mut out = Vec::with_capacity(rewrite_capacity(lines, replacements));
    let mut written = Written::default();
    for line in lines {
        let line = line.as_ref();
        // Kept pairs that stand `; `-separated in the line are copied as
        // one run: the output is the same, pair by pair, in a few copies.
        let mut run: Option<(usize, usize)> = None;
        for (start, end) in spans(line).take(line.len()) {
            let raw = &line[start..end];
            match replacements
                .iter()
                .position(|(name, _)| named(raw, name).is_some())
            {
                None => {
                    run = match run {
                        Some((from, to)) if &line[to..start] == b"; " => Some((from, end)),
                        Some((from, to)) => {
                            separate(&mut out);
                            out.extend_from_slice(&line[from..to]);
                            Some((start, end))
                        }
                        None => Some((start, end)),
                    };
                }
                Some(i) => {
                    if let Some((from, to)) = run.take() {
                        separate(&mut out);
                        out.extend_from_slice(&line[from..to]);
                    }
                    if written.first(i)
                        && let (name, Some(value)) = replacements[i]
                    {
                        push_pair(&mut out, name, value);
                    }
                }
            }
        }
        if let Some((from, to)) = run {
            separate(&mut out);
            out.extend_from_slice(&line[from..to]);
        }
    }
    written.append_missing(&mut out, replacements);
    out
}

/// [`rewrite`] when the caller knows that none of the replacements' names
/// occurs in `lines` (a new visitor's cookies, looked up already): one line
/// is kept byte for byte, trailing separators aside, with the pairs
/// appended. It reads as the same pairs as [`rewrite`]'s output to anyone
/// who splits at `;` and trims (Go, browsers, every cookie parser) without
/// a look at its pairs: a new visitor's 1 KB of analytics cookies is one
/// copy, not a check of every `;` (and no copy at all through
/// [`append_absent`], which the decision uses for a line it owns).
pub fn rewrite_absent<L: AsRef<[u8]>>(
    lines: &[L],
    replacements: &[(&[u8], Option<&[u8]>)],
) -> Vec<u8> {
    if let [line] = lines {
        let mut out = Vec::with_capacity(rewrite_capacity(lines, replacements));
        out.extend_from_slice(line.as_ref());
        return append_absent(out, replacements);
    }
    debug_assert!(
        replacements
            .iter()
            .all(|(name, _)| lookup(lines, name) == Lookup::Missing)
    );
    rewrite(lines, replacements)
}

/// [`rewrite_absent`] of the one line `line`, in `line`'s own buffer: the
/// host read's buffer has room, so a new visitor's Cookie line is not
/// copied at all, only the pairs appended.
pub fn append_absent(mut line: Vec<u8>, replacements: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
    debug_assert!(
        replacements
            .iter()
            .all(|(name, _)| lookup(&[&line], name) == Lookup::Missing)
    );
    if !replacements.iter().all(|(name, _)| is_plain(name)) {
        return rewrite(&[&line], replacements);
    }
    while let [.., b';' | b' ' | b'\t'] = line.as_slice() {
        line.pop();
    }
    Written::default().append_missing(&mut line, replacements);
    line
}

fn rewrite_capacity<L: AsRef<[u8]>>(lines: &[L], replacements: &[(&[u8], Option<&[u8]>)]) -> usize {
    lines.iter().map(|l| l.as_ref().len() + 2).sum::<usize>()
        + replacements
            .iter()
            .map(|(n, v)| n.len() + v.map_or(0, <[u8]>::len) + 3)
            .sum::<usize>()
}

/// [`rewrite`] by its definition, pair by pair, for any names.
fn rewrite_pairs<L: AsRef<[u8]>>(lines: &[L], replacements: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rewrite_capacity(lines, replacements));
    let mut written = Written::default();
    for pair in pairs_of(lines) {
        match replacements.iter().position(|(name, _)| *name == pair.name) {
            Some(i) => {
                if written.first(i)
                    && let (name, Some(value)) = replacements[i]
                {
                    push_pair(&mut out, name, value);
                }
            }
            None => {
                separate(&mut out);
                out.extend_from_slice(pair.raw);
            }
        }
    }
    written.append_missing(&mut out, replacements);
    out
}

/// Which of [`rewrite`]'s (at most 64) replacements it has written, as
/// bits: no allocation per rewrite.
#[derive(Default)]
struct Written(u64);

impl Written {
    /// Marks replacement `i` written; whether this is its first time.
    fn first(&mut self, i: usize) -> bool {
        let bit = 1u64 << (i % 64);
        let first = self.0 & bit == 0;
        self.0 |= bit;
        first
    }

    /// Appends every replacement with a value that was not written yet.
    fn append_missing(&self, out: &mut Vec<u8>, replacements: &[(&[u8], Option<&[u8]>)]) {
        for (i, (name, value)) in replacements.iter().enumerate() {
            if let (true, Some(value)) = (self.0 & (1u64 << (i % 64)) == 0, value) {
                push_pair(out, name, value);
            }
        }
    }
}

fn push_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    separate(out);
    out.extend_from_slice(name);
    out.push(b'=');
    out.extend_from_slice(value);
}

fn separate(out: &mut Vec<u8>) {
    if !out.is_empty() {
        out.extend_from_slice(b"; ");
    }
}

fn trim_ows_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 6265 `cookie-name` (an RFC 7230 token).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 6265 `cookie-octet`s, non-empty: no whitespace, quotes, commas,
/// semicolons, backslashes or control bytes, so a value can never inject
/// attributes or another pair.
pub fn is_cookie_value(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

/// `SameSite` attribute values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// The attributes shared by every cookie Cohort sets, validated at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `None` writes a session cookie.
    pub max_age: Option<u64>,
    pub path: String,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: Option<SameSite>,
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes {
            max_age: Some(30 * 24 * 3600),
            path: "/".into(),
            domain: None,
            secure: false,
            http_only: true,
            same_site: Some(SameSite::Lax),
        }
    }
}

impl Attributes {
    /// The `; Path=/; Max-Age=…` tail of a `Set-Cookie` value. Computed once
    /// at load so a request only concatenates.
    pub fn suffix(&self) -> String {
        let mut s = format!("; Path={}", self.path);
        if let Some(domain) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(domain);
        }
        if let Some(max_age) = self.max_age {
            s.push_str(&format!("; Max-Age={max_age}"));
        }
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        match self.same_site {
            Some(SameSite::Strict) => s.push_str("; SameSite=Strict"),
            Some(SameSite::Lax) => s.push_str("; SameSite=Lax"),
            Some(SameSite::None) => s.push_str("; SameSite=None"),
            None => {}
        }
        s
    }
}

/// A full `Set-Cookie` value: `name=value` plus the precomputed suffix.
pub fn set_cookie(name: &str, value: &[u8], suffix: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1 + value.len() + suffix.len());
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.extend_from_slice(suffix.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_lookup_found_in_a_line_is_the_same_lookup_there_again() {
        let line: &[u8] = b"a=1; canary=v2; b=2; canary=v1";
        let lines = [line];
        for name in [&b"canary"[..], b"a", b"b", b"missing"] {
            let lookup = lookup_token(&lines, name);
            let found = Found::of(lookup, line);
            assert_eq!(found.within(line), Some(lookup), "{name:?}");
        }
        assert_eq!(
            Found::of(lookup_token(&lines, b"canary"), line),
            Found::Duplicate(12, 14)
        );
        assert_eq!(
            Found::of(lookup_token(&lines, b"b"), line),
            Found::One(18, 19)
        );
        // Offsets past another line's end: not that line's lookup.
        assert_eq!(Found::One(12, 14).within(b"a=1"), None);
    }

    /// The definition [`pairs`] implements in one pass: split on `;`,
    /// trim each segment, skip empty ones, split at the first `=`, trim
    /// the name but not the value.
    fn reference_pairs(line: &[u8]) -> Vec<Pair<'_>> {
        fn trim_ows(mut s: &[u8]) -> &[u8] {
            while let [b' ' | b'\t', rest @ ..] = s {
                s = rest;
            }
            trim_ows_end(s)
        }
        line.split(|&b| b == b';')
            .filter_map(|segment| {
                let raw = trim_ows(segment);
                if raw.is_empty() {
                    return None;
                }
                let (name, value) = match raw.iter().position(|&b| b == b'=') {
                    Some(eq) => (trim_ows(&raw[..eq]), &raw[eq + 1..]),
                    None => (raw, &raw[raw.len()..]),
                };
                Some(Pair { raw, name, value })
            })
            .collect()
    }

    #[test]
    fn names_with_separators_are_looked_up_by_definition() {
        // Not tokens, so never Cohort's own names, but `lookup` stays total.
        let lines: [&[u8]; 2] = [b"a=1;b=2; ;a=3", b"a;b=4"];
        for name in [&b";a"[..], b"a;b", b";", b"a=", b" a", b""] {
            assert_eq!(lookup(&lines, name), lookup_pairs(&lines, name), "{name:?}");
        }
    }

    proptest! {
        #[test]
        fn lookup_matches_its_definition(
            line in proptest::collection::vec(
                prop_oneof![Just(b';'), Just(b'='), Just(b' '), Just(b'\t'), Just(b'a'), Just(b'b'), any::<u8>()],
                0..64,
            ),
            name in prop_oneof![
                Just(b"a".to_vec()), Just(b"ab".to_vec()), Just(b"b".to_vec()),
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b' '), Just(b'=')], 0..4),
            ],
        ) {
            let lines = [&line[..], b"a=1; ab = 2"];
            prop_assert_eq!(lookup(&lines, &name), lookup_pairs(&lines, &name));

            prop_assert_eq!(lookup(&lines[..1], &name), lookup_pairs(&lines[..1], &name));
        }

        #[test]
        fn rewrite_matches_its_definition(
            lines in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b';'), Just(b'='), Just(b' '), Just(b'\t'), Just(b'a'), Just(b'b'), any::<u8>()],
                0..48,
            ), 0..3),
            first in prop_oneof![Just(b"a".to_vec()), Just(b"ab".to_vec()), Just(b" a".to_vec()), Just(b"".to_vec())],
            value in prop_oneof![Just(Some(b"v".to_vec())), Just(None)],
        ) {
            let replacements: Vec<(&[u8], Option<&[u8]>)> =
                vec![(&first, value.as_deref()), (b"b", Some(b"w"))];
            prop_assert_eq!(rewrite(&lines, &replacements), rewrite_pairs(&lines, &replacements));
            prop_assert_eq!(rewrite(&lines, &replacements[1..]), rewrite_pairs(&lines, &replacements[1..]));
        }

        /// `rewrite_absent` reads as `rewrite`'s pairs wherever its promise
        /// holds, and keeps a single line's bytes.
        #[test]
        fn rewrite_absent_matches_the_definition_when_the_names_are_absent(
            pairs in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'c'), Just(b'd'), Just(b'='), Just(b'x'), Just(b' '), Just(b'\t'), Just(b';')], 1..6),
                0..8,
            ),
            joiner in prop_oneof![Just(&b"; "[..]), Just(&b"; "[..]), Just(&b";"[..]), Just(&b" ; "[..]), Just(&b";  "[..])],
            second in proptest::option::of(Just(b"c=1; d=2".to_vec())),
            value in prop_oneof![Just(Some(b"v".to_vec())), Just(None)],
        ) {
            let line = pairs.join(joiner);
            let mut lines = vec![line.clone()];
            lines.extend(second.clone());
            let replacements: Vec<(&[u8], Option<&[u8]>)> = vec![(b"a", value.as_deref()), (b"b", Some(b"w"))];
            let out = rewrite_absent(&lines, &replacements);
            let expected = rewrite_pairs(&lines, &replacements);
            let read = |bytes: &[u8]| pairs_of(&[bytes]).map(|p| (p.raw.to_vec(), p.name.to_vec(), p.value.to_vec())).collect::<Vec<_>>();
            prop_assert_eq!(read(&out), read(&expected));
            if second.is_none() {
                let kept = line.len() - line.iter().rev().take_while(|b| matches!(b, b';' | b' ' | b'\t')).count();
                prop_assert_eq!(&out[..kept], &line[..kept]);
                // In the line's own buffer: the same bytes, with no copy.
                let mut own = Vec::with_capacity(line.len() + 32);
                own.extend_from_slice(&line);
                let at = own.as_ptr();
                let appended = append_absent(own, &replacements);
                prop_assert_eq!(appended.as_ptr(), at);
                prop_assert_eq!(&appended, &out);
            } else {
                prop_assert_eq!(out, expected);
            }
        }

        /// Lines as browsers write them (`; `-joined pairs), sometimes
        /// bent: runs of kept pairs are copied whole only when exact.
        #[test]
        fn rewrite_of_browser_like_lines_matches_its_definition(
            pairs in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'='), Just(b'x'), Just(b' '), Just(b';')], 1..6),
                0..8,
            ),
            joiner in prop_oneof![Just(&b"; "[..]), Just(&b"; "[..]), Just(&b";"[..]), Just(&b" ; "[..]), Just(&b";  "[..])],
            second in proptest::option::of(Just(b"c=1; a=2".to_vec())),
            value in prop_oneof![Just(Some(b"v".to_vec())), Just(None)],
        ) {
            let line = pairs.join(joiner);
            let mut lines = vec![line];
            lines.extend(second);
            let replacements: Vec<(&[u8], Option<&[u8]>)> = vec![(b"a", value.as_deref()), (b"b", Some(b"w"))];
            prop_assert_eq!(rewrite(&lines, &replacements), rewrite_pairs(&lines, &replacements));
            prop_assert_eq!(rewrite(&lines, &replacements[1..]), rewrite_pairs(&lines, &replacements[1..]));
            let other: Vec<(&[u8], Option<&[u8]>)> = vec![(b"canary", Some(b"v2"))];
            prop_assert_eq!(rewrite(&lines, &other), rewrite_pairs(&lines, &other));
        }

        #[test]
        fn pairs_match_the_reference(line in proptest::collection::vec(
            prop_oneof![Just(b';'), Just(b'='), Just(b' '), Just(b'\t'), Just(b'a'), Just(b'b'), any::<u8>()],
            0..64,
        )) {
            prop_assert_eq!(pairs(&line).collect::<Vec<_>>(), reference_pairs(&line));
        }
    }

    fn names(line: &[u8]) -> Vec<&[u8]> {
        pairs(line).map(|p| p.name).collect()
    }

    #[test]
    fn splits_pairs_and_trims_whitespace() {
        let got: Vec<_> = pairs(b" a=1;b =2 ;\tc=;d")
            .map(|p| (p.name, p.value))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], &b"1"[..]),
                (b"b", b"2"),
                (b"c", b""),
                (b"d", b""),
            ]
        );
    }

    #[test]
    fn values_keep_whitespace_after_the_equals_sign_as_go_reads_them() {
        // Go's readCookies trims the pair and the name, never the value:
        // `wrr= abc` is ` abc` to Traefik, which matches no weighted child.
        let got: Vec<_> = pairs(b"wrr= abc; b = 2;c=\t3")
            .map(|p| (p.name, p.value))
            .collect();
        assert_eq!(
            got,
            vec![(&b"wrr"[..], &b" abc"[..]), (b"b", b" 2"), (b"c", b"\t3")]
        );
        let lines = [&b"canary= v2"[..]];
        assert_eq!(lookup(&lines, b"canary"), Lookup::One(b" v2"));
        assert!(!lookup(&lines, b"canary").is_exactly(b"v2"));
        // Rewriting replaces the pair whole.
        assert_eq!(rewrite(&lines, &[(b"canary", Some(b"v2"))]), b"canary=v2");
    }

    #[test]
    fn skips_empty_segments() {
        assert_eq!(names(b";;; a=1;;  ; b=2;"), vec![&b"a"[..], b"b"]);
        assert!(pairs(b"").next().is_none());
        assert!(pairs(b" ; ; ").next().is_none());
    }

    #[test]
    fn lookup_is_exact_and_case_sensitive() {
        let lines = [&b"xcanary=v2; Canary=v2"[..], b"canary=v1"];
        assert_eq!(lookup(&lines, b"canary"), Lookup::One(b"v1"));
        assert_eq!(lookup(&lines, b"nope"), Lookup::Missing);
    }

    #[test]
    fn lookup_reports_duplicates_with_the_first_value() {
        let lines = [&b"canary=v1; a=b"[..], b"canary=v2"];
        let found = lookup(&lines, b"canary");
        assert_eq!(found, Lookup::Duplicate(b"v1"));
        assert_eq!(found.first(), Some(&b"v1"[..]));
        assert!(!found.is_exactly(b"v1"));
    }

    #[test]
    fn rewrite_replaces_in_place_and_keeps_others_byte_for_byte() {
        let lines = [&b"a=1; canary=v1;  z=\xff\x01"[..]];
        let out = rewrite(&lines, &[(b"canary", Some(b"v2"))]);
        assert_eq!(out, b"a=1; canary=v2; z=\xff\x01");
    }

    #[test]
    fn rewrite_drops_duplicates_and_joins_lines() {
        let lines = [&b"canary=v2; a=1"[..], b"canary=v1; b=\"q\""];
        let out = rewrite(&lines, &[(b"canary", Some(b"v1"))]);
        assert_eq!(out, b"canary=v1; a=1; b=\"q\"");
    }

    #[test]
    fn rewrite_appends_missing_pairs_in_order() {
        let out = rewrite(
            &[&b"a=1"[..]],
            &[(b"canary", Some(b"v2")), (b"sticky", Some(b"abc"))],
        );
        assert_eq!(out, b"a=1; canary=v2; sticky=abc");
        let empty: [&[u8]; 0] = [];
        assert_eq!(rewrite(&empty, &[(b"canary", Some(b"v1"))]), b"canary=v1");
    }

    #[test]
    fn rewrite_drops_pairs_replaced_by_none() {
        let lines = [&b"sticky=forged; a=1; sticky=again"[..]];
        let out = rewrite(&lines, &[(b"canary", Some(b"v1")), (b"sticky", None)]);
        assert_eq!(out, b"a=1; canary=v1");
    }

    #[test]
    fn validates_names_and_values() {
        assert!(is_token("canary"));
        assert!(is_token("__Host-canary"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a;b"));
        assert!(is_cookie_value("v2"));
        assert!(!is_cookie_value("v2; Domain=evil"));
        assert!(!is_cookie_value("\"v2\""));
        assert!(!is_cookie_value(""));
    }

    #[test]
    fn builds_set_cookie_with_attributes() {
        let attrs = Attributes {
            max_age: Some(3600),
            path: "/".into(),
            domain: Some("example.com".into()),
            secure: true,
            http_only: true,
            same_site: Some(SameSite::None),
        };
        let v = set_cookie("canary", b"v2", &attrs.suffix());
        assert_eq!(
            v,
            b"canary=v2; Path=/; Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=None"
        );
        let session = Attributes {
            max_age: None,
            same_site: None,
            http_only: false,
            ..Attributes::default()
        };
        assert_eq!(session.suffix(), "; Path=/");
    }

    #[test]
    fn rewrite_absent_keeps_the_line_and_appends() {
        let canary: &[(&[u8], Option<&[u8]>)] = &[(b"canary", Some(b"v1"))];
        for (line, out) in [
            (
                "_ga=GA1.1.1; _gid=GA1.2.2",
                "_ga=GA1.1.1; _gid=GA1.2.2; canary=v1",
            ),
            // Kept as sent: a parser that splits at `;` reads the same pairs.
            ("a=1 ;b=2;;  c", "a=1 ;b=2;;  c; canary=v1"),
            ("; a=1", "; a=1; canary=v1"),
            // Trailing separators go, so the new pair is not after an empty one.
            ("a=1; ", "a=1; canary=v1"),
            ("a=1;\t;", "a=1; canary=v1"),
            ("", "canary=v1"),
            ("; ;", "canary=v1"),
        ] {
            assert_eq!(
                String::from_utf8(rewrite_absent(&[line], canary)).unwrap(),
                out,
                "{line:?}"
            );
        }
        // Several lines are joined as `rewrite` joins them.
        assert_eq!(
            rewrite_absent(&["a=1;", "b=2"], canary),
            b"a=1; b=2; canary=v1"
        );
        // A name to drop that is absent drops nothing.
        assert_eq!(rewrite_absent(&["a=1;"], &[(b"canary", None)]), b"a=1");
        // A name that is no token takes the general way, in place or not.
        let odd: &[(&[u8], Option<&[u8]>)] = &[(b" x", Some(b"1"))];
        assert_eq!(
            append_absent(b"a=1;".to_vec(), odd),
            rewrite(&["a=1;"], odd)
        );
        assert_eq!(rewrite_absent(&["a=1;"], odd), rewrite(&["a=1;"], odd));
    }
}
