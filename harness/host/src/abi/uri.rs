//! Go's `url.ParseRequestURI` as `SetURI` then `GetURI` see it.

use super::memory::Fault;

/// What Go's `SetURI` then `GetURI` make of `uri`: `url.ParseRequestURI`,
/// then escaped path plus query. Empty means `/`.
pub(crate) fn request_uri(uri: &str) -> Result<String, Fault> {
    if uri.is_empty() {
        return Ok("/".to_owned());
    }
    if uri == "*" {
        return Ok("*".to_owned()); // OPTIONS *
    }
    let fail = |why: &str| Fault(format!("parse {uri:?}: {why}"));
    if uri.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(fail("net/url: invalid control character in URL"));
    }
    let rest = if uri.starts_with('/') {
        uri
    } else {
        let (_, after) = uri
            .split_once(':')
            .filter(|(scheme, _)| {
                scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            })
            .ok_or_else(|| fail("invalid URI for request"))?;
        match after.strip_prefix("//") {
            // Authority dropped: the request keeps its own host.
            Some(authority_and_path) => authority_and_path
                .find(['/', '?'])
                .and_then(|i| authority_and_path.get(i..))
                .unwrap_or(""),
            None => after.find('?').and_then(|q| after.get(q..)).unwrap_or(""),
        }
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let mut escaped = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    // The two hex digits of an escape are copied with its `%`: skip them.
    let mut skip = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            match hex {
                Some(h) => {
                    escaped.push('%');
                    escaped.push_str(&String::from_utf8_lossy(h));
                    skip = 2;
                    continue;
                }
                None => {
                    let end = (i + 3).min(bytes.len());
                    let bad = String::from_utf8_lossy(&bytes[i..end]);
                    return Err(fail(&format!("invalid URL escape {bad:?}")));
                }
            }
        }
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/[]".contains(&b) {
            escaped.push(char::from(b));
        } else {
            escaped.push_str(&format!("%{b:02X}"));
        }
    }
    if escaped.is_empty() {
        escaped.push('/');
    }
    if let Some(query) = query {
        escaped.push('?');
        escaped.push_str(query);
    }
    Ok(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_uris_follow_go() {
        let uri = |s: &str| request_uri(s).map_err(|f| f.0);
        assert_eq!(uri("").as_deref(), Ok("/"));
        assert_eq!(uri("/a b?x=1").as_deref(), Ok("/a%20b?x=1"));
        assert_eq!(uri("http://h:80/p?q").as_deref(), Ok("/p?q"));
        assert_eq!(uri("/ok%2F?").as_deref(), Ok("/ok%2F?"));
        assert_eq!(uri("mailto:x?y").as_deref(), Ok("/?y"));
        assert_eq!(uri("*").as_deref(), Ok("*"));
        assert!(uri("?x=1").is_err());
        assert!(uri("relative").is_err());
        // Escapes are kept as sent, and what follows them too.
        assert_eq!(uri("/a%2Fb%20c").as_deref(), Ok("/a%2Fb%20c"));
        // A scheme starts with a letter, and holds only letters, digits
        // and `+-.`.
        assert!(uri("1http://h/p").is_err());
        assert!(uri("h_t://h/p").is_err());
        assert_eq!(
            uri("/bad%zz"),
            Err(r#"parse "/bad%zz": invalid URL escape "%zz""#.to_owned())
        );
        assert_eq!(
            uri("/bad%z"),
            Err(r#"parse "/bad%z": invalid URL escape "%z""#.to_owned())
        );
        // The escape quoted is the `%` and at most two bytes after it.
        assert_eq!(
            uri("/%zzz"),
            Err(r#"parse "/%zzz": invalid URL escape "%zz""#.to_owned())
        );
        assert_eq!(
            uri("/a%zzzz"),
            Err(r#"parse "/a%zzzz": invalid URL escape "%zz""#.to_owned())
        );
        assert!(uri("/nl\n").is_err());
    }
}
