//! Exclusion patterns: regular expressions (regex-lite syntax), compiled at
//! load into a literal matcher wherever the pattern is a literal, so the
//! common exclusions (`^/healthz$`, `(?i)bot`) cost a byte comparison or a
//! scan instead of a regex search per request.
//!
//! A pattern is literal when it is, in this order: an optional `(?i)`
//! flag, an optional `^`, any number of plain characters or escaped ASCII
//! punctuation (`\.`, `\/`, `\-`), and an optional `$`; and every character
//! is ASCII. Those match exactly as regex-lite would (its `(?i)` folds ASCII
//! only, and `$` is the end of the text); anything else goes to regex-lite.
//!
//! | pattern | matcher | cost per request |
//! | --- | --- | --- |
//! | `^/healthz$` | exact | one comparison |
//! | `^/internal/` | prefix | one comparison of the pattern's length |
//! | `\.css$` | suffix | one comparison of the pattern's length |
//! | `bot`, `(?i)bot` | substring (ASCII case-folded with `(?i)`) | a scan of the text |
//! | `^/api/v[0-9]+/`, `bot\|spider` | regex-lite | a regex search |

use std::fmt;

use regex_lite::Regex;

use crate::scan::{find_byte, find_byte_ignore_case};

/// A compiled exclusion pattern.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    matcher: Matcher,
}

#[derive(Clone)]
enum Matcher {
    Literal {
        literal: Vec<u8>,
        anchor: Anchor,
        /// ASCII case-insensitive; `literal` is then lower-case.
        fold: bool,
    },
    Regex(Regex),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Exact,
    Prefix,
    Suffix,
    Anywhere,
}

/// What a pattern compiled to, for documentation and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exact,
    Prefix,
    Suffix,
    Substring,
    /// A substring ignoring ASCII case.
    SubstringIgnoreCase,
    /// Anchored and ignoring ASCII case.
    AnchoredIgnoreCase,
    Regex,
}

impl Pattern {
    /// Compiles `source`; the error is regex-lite's.
    pub fn new(source: &str) -> Result<Pattern, regex_lite::Error> {
        let matcher = match literal(source) {
            Some((literal, anchor, fold)) => Matcher::Literal {
                literal,
                anchor,
                fold,
            },
            None => Matcher::Regex(Regex::new(source)?),
        };
        Ok(Pattern {
            source: source.to_owned(),
            matcher,
        })
    }

    /// The pattern as configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn kind(&self) -> Kind {
        match &self.matcher {
            Matcher::Regex(_) => Kind::Regex,
            Matcher::Literal {
                anchor, fold: true, ..
            } => match anchor {
                Anchor::Anywhere => Kind::SubstringIgnoreCase,
                _ => Kind::AnchoredIgnoreCase,
            },
            Matcher::Literal { anchor, .. } => match anchor {
                Anchor::Exact => Kind::Exact,
                Anchor::Prefix => Kind::Prefix,
                Anchor::Suffix => Kind::Suffix,
                Anchor::Anywhere => Kind::Substring,
            },
        }
    }

    /// Whether `text` matches, as regex-lite would match its lossy UTF-8
    /// decoding (literal matchers are ASCII, which the decoding keeps).
    pub fn is_match(&self, text: &[u8]) -> bool {
        match &self.matcher {
            Matcher::Regex(re) => re.is_match(&String::from_utf8_lossy(text)),
            Matcher::Literal {
                literal,
                anchor,
                fold,
            } => {
                let eq = |a: &[u8]| {
                    if *fold {
                        a.eq_ignore_ascii_case(literal)
                    } else {
                        a == literal.as_slice()
                    }
                };
                match anchor {
                    Anchor::Exact => eq(text),
                    Anchor::Prefix => text.get(..literal.len()).is_some_and(eq),
                    Anchor::Suffix => text
                        .len()
                        .checked_sub(literal.len())
                        .is_some_and(|start| eq(&text[start..])),
                    Anchor::Anywhere => contains(text, literal, *fold),
                }
            }
        }
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.source, self.kind())
    }
}

/// The literal, its anchoring and case folding, if `source` is literal.
fn literal(source: &str) -> Option<(Vec<u8>, Anchor, bool)> {
    if !source.is_ascii() {
        return None;
    }
    let (fold, rest) = match source.strip_prefix("(?i)") {
        Some(rest) => (true, rest),
        None => (false, source),
    };
    let (start, rest) = match rest.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let mut literal = Vec::with_capacity(rest.len());
    let mut end = false;
    let mut bytes = rest.bytes();
    while let Some(b) = bytes.next() {
        if end {
            // Something after `$`.
            return None;
        }
        match b {
            b'\\' => match bytes.next() {
                // regex-lite: `\` before ASCII punctuation other than `<>`
                // is that character (`\<`, `\>` are word boundaries).
                Some(c) if c.is_ascii_punctuation() && c != b'<' && c != b'>' => literal.push(c),
                _ => return None,
            },
            b'$' => end = true,
            b'.' | b'+' | b'*' | b'?' | b'(' | b')' | b'|' | b'[' | b']' | b'{' | b'}' | b'^' => {
                return None;
            }
            // Whitespace and `#` are plain without the `x` flag; control
            // characters are rare enough to leave to regex-lite.
            c if c.is_ascii_control() => return None,
            c => literal.push(c),
        }
    }
    let anchor = match (start, end) {
        (true, true) => Anchor::Exact,
        (true, false) => Anchor::Prefix,
        (false, true) => Anchor::Suffix,
        (false, false) => Anchor::Anywhere,
    };
    if fold {
        literal.make_ascii_lowercase();
    }
    Some((literal, anchor, fold))
}

/// Whether `needle` occurs in `haystack` (ASCII case-folded when `fold`,
/// `needle` then lower-case): jumps a word at a time between occurrences
/// of the needle's first byte.
fn contains(haystack: &[u8], needle: &[u8], fold: bool) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let Some(last_start) = haystack.len().checked_sub(needle.len()) else {
        return false;
    };
    let mut at = 0;
    // Each round moves `at` on by at least a byte: bounded, so that no bug
    // here can loop.
    for _ in 0..=last_start {
        let window = &haystack[at..=last_start];
        let found = if fold {
            find_byte_ignore_case(window, first)
        } else {
            find_byte(window, first)
        };
        let Some(offset) = found else {
            return false;
        };
        let start = at + offset;
        let candidate = &haystack[start + 1..start + needle.len()];
        let same = if fold {
            candidate.eq_ignore_ascii_case(rest)
        } else {
            candidate == rest
        };
        if same {
            return true;
        }
        at = start + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHROME: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    fn kind(p: &str) -> Kind {
        Pattern::new(p).expect("valid").kind()
    }

    #[test]
    fn literal_patterns_compile_to_literal_matchers() {
        assert_eq!(kind("^/healthz$"), Kind::Exact);
        assert_eq!(kind("^/internal/"), Kind::Prefix);
        assert_eq!(kind("\\.css$"), Kind::Suffix);
        assert_eq!(kind("bot"), Kind::Substring);
        assert_eq!(kind("(?i)bot"), Kind::SubstringIgnoreCase);
        assert_eq!(kind("(?i)^/HealthZ$"), Kind::AnchoredIgnoreCase);
        assert_eq!(kind("^/a\\-b\\/c\\.d$"), Kind::Exact);
        assert_eq!(kind(""), Kind::Substring);
        for regex in [
            "^/api/v[0-9]+/",
            "bot|spider",
            "a.b",
            "^/x$/",
            "(?i:bot)",
            "(?x)bot",
            "\\bbot\\b",
            "\\<bot",
            "\\d",
            "caf\u{e9}",
            "a\tb",
            "x?",
        ] {
            assert_eq!(kind(regex), Kind::Regex, "{regex}");
        }
    }

    #[test]
    fn literal_matchers_match_what_they_say() {
        let p = |s: &str| Pattern::new(s).expect("valid");
        assert!(p("^/healthz$").is_match(b"/healthz"));
        assert!(!p("^/healthz$").is_match(b"/healthz/"));
        assert!(!p("^/healthz$").is_match(b"/health"));
        assert!(p("^/internal/").is_match(b"/internal/x"));
        assert!(!p("^/internal/").is_match(b"/internal"));
        assert!(p("\\.css$").is_match(b"/a/b.css"));
        assert!(!p("\\.css$").is_match(b"/a/bxcss"));
        assert!(!p("\\.css$").is_match(b"css"));
        assert!(p("(?i)bot").is_match(b"Googlebot/2.1"));
        assert!(p("(?i)bot").is_match(b"BOT"));
        assert!(!p("(?i)bot").is_match(CHROME));
        assert!(!p("bot").is_match(b"BOT"));
        assert!(p("").is_match(b""));
        assert!(p("^$").is_match(b""));
        assert!(!p("^$").is_match(b"/"));
        assert!(!p("(?i)bot").is_match(b"bo"));
        assert!(p("(?i)b").is_match(b"B"));
        // Overlapping starts: the first `bb` is no match, the second is.
        assert!(p("bbot").is_match(b"bbbot"));
    }

    /// A pattern from pieces the literal compiler may or may not accept.
    fn pattern() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("a".to_owned()),
            Just("B".to_owned()),
            Just("bot".to_owned()),
            Just("/".to_owned()),
            Just("\\.".to_owned()),
            Just("\\-".to_owned()),
            Just(".".to_owned()),
            Just("$".to_owned()),
            Just("^".to_owned()),
            Just(" ".to_owned()),
            Just("#".to_owned()),
            Just("[ab]".to_owned()),
        ];
        (
            proptest::bool::ANY,
            proptest::bool::ANY,
            proptest::collection::vec(piece, 0..5),
        )
            .prop_map(|(fold, start, pieces)| {
                let mut p = String::new();
                if fold {
                    p.push_str("(?i)");
                }
                if start {
                    p.push('^');
                }
                p.push_str(&pieces.concat());
                p
            })
    }

    fn text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'a'),
                Just(b'A'),
                Just(b'b'),
                Just(b'B'),
                Just(b'o'),
                Just(b'O'),
                Just(b't'),
                Just(b'/'),
                Just(b'.'),
                Just(b'-'),
                Just(b' '),
                Just(b'#'),
                Just(0xff),
                Just(0xc3),
            ],
            0..12,
        )
    }

    #[test]
    fn a_pattern_shows_its_source_and_what_it_compiled_to() {
        // Found by mutation testing: nothing read as_str or the Debug form,
        // which error messages and the docs' examples rely on.
        let p = Pattern::new("^/healthz$").expect("valid");
        assert_eq!(p.as_str(), "^/healthz$");
        assert_eq!(format!("{p:?}"), "\"^/healthz$\" (Exact)");
        let p = Pattern::new("(?i)bot|crawl").expect("valid");
        assert_eq!(p.as_str(), "(?i)bot|crawl");
        assert_eq!(format!("{p:?}"), "\"(?i)bot|crawl\" (Regex)");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// Every literal matcher agrees with regex-lite on the lossy text.
        #[test]
        fn literal_matchers_agree_with_regex_lite(p in pattern(), t in text()) {
            let Ok(re) = Regex::new(&p) else { return Ok(()) };
            let compiled = Pattern::new(&p).expect("regex-lite accepts it");
            prop_assert_eq!(
                compiled.is_match(&t),
                re.is_match(&String::from_utf8_lossy(&t)),
                "{:?} on {:?}", compiled, t
            );
        }
    }
}
