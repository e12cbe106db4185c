//! The request format of the `decision` and `wasm_request` targets, and of
//! the harness test that replays the `wasm_request` corpus.
//!
//! Plain text, so that seeds and reproducers are readable and libFuzzer's
//! mutations (and the dictionary) map onto HTTP:
//!
//! ```text
//! <c>METHOD SP URI LF         c: one byte choosing the configuration
//! SOURCE-ADDR LF
//! Name: value LF              zero or more header lines
//! ```
//!
//! The first byte picks the configuration (an ASCII digit counts as its
//! value, any other byte as itself, modulo the number of configurations).
//! The first line is split at its first space (no space: the whole line is
//! the method and the URI is `/`). A header line is split at its first
//! `:`, and one space after it is dropped; a line without `:` is a name with
//! an empty value; lines with an empty name are skipped. Values are bytes:
//! anything but LF, including CR, NUL and non-UTF-8 (the wasm target splits
//! a value at NUL, as http-wasm's NUL-separated value lists do).
//!
//! Std only: `harness/tests/all/fuzz.rs` includes this file by path.

/// One request as the fuzz targets read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzRequest {
    /// Which configuration (an index before the modulo).
    pub config: usize,
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    pub source: Vec<u8>,
    /// `(name, value)` in order; names are non-empty.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl FuzzRequest {
    /// Reads an input; `None` when it is empty.
    pub fn parse(data: &[u8]) -> Option<FuzzRequest> {
        let (&selector, rest) = data.split_first()?;
        let config = if selector.is_ascii_digit() {
            usize::from(selector - b'0')
        } else {
            usize::from(selector)
        };
        let mut lines = rest.split(|&b| b == b'\n');
        let first = lines.next().unwrap_or_default();
        let (method, uri) = match first.iter().position(|&b| b == b' ') {
            Some(sp) => (&first[..sp], &first[sp + 1..]),
            None => (first, &b"/"[..]),
        };
        let source = lines.next().unwrap_or_default().to_vec();
        let headers = lines
            .filter_map(|line| {
                let (name, value) = match line.iter().position(|&b| b == b':') {
                    Some(colon) => {
                        let value = &line[colon + 1..];
                        (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                    }
                    None => (line, &b""[..]),
                };
                (!name.is_empty()).then(|| (name.to_vec(), value.to_vec()))
            })
            .collect();
        Some(FuzzRequest {
            config,
            method: method.to_vec(),
            uri: uri.to_vec(),
            source,
            headers,
        })
    }

    /// The configuration this request runs under, out of `count`.
    pub fn config_index(&self, count: usize) -> usize {
        self.config % count
    }

    /// Every value of a header, matching names ASCII-case-insensitively (as
    /// Go's canonical header map does for valid names).
    pub fn header_values(&self, name: &[u8]) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_text_format() {
        let r = FuzzRequest::parse(b"2GET /a?b=c\n10.0.0.1:5\nCookie: a=b\nX-Empty\nUA:  two\n\n")
            .expect("non-empty");
        assert_eq!(r.config, 2);
        assert_eq!(r.method, b"GET");
        assert_eq!(r.uri, b"/a?b=c");
        assert_eq!(r.source, b"10.0.0.1:5");
        assert_eq!(
            r.headers,
            vec![
                (b"Cookie".to_vec(), b"a=b".to_vec()),
                (b"X-Empty".to_vec(), Vec::new()),
                (b"UA".to_vec(), b" two".to_vec()),
            ]
        );
        assert_eq!(r.header_values(b"cookie"), vec![&b"a=b"[..]]);
        assert!(FuzzRequest::parse(b"").is_none());
        let bare = FuzzRequest::parse(b"\xff").expect("non-empty");
        assert_eq!((bare.config, bare.uri.as_slice()), (255, &b"/"[..]));
    }
}
