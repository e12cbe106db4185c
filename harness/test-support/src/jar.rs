//! One browser's cookie jar for one site, on the [`cookie`] crate.
//!
//! What a visitor of one host and path `/` needs of RFC 6265: a
//! `Set-Cookie` stores its pair by name, replacing a cookie of that name in
//! place (the old cookie's creation time, hence its place in `Cookie`, is
//! kept: RFC 6265 5.3, step 11.3), and removes it instead when it has
//! expired (`Max-Age` of zero or less, or an `Expires` in the past). A
//! `Set-Cookie` a browser would ignore (no `name=value`, an empty name) is
//! ignored. `Cookie` lists the pairs in the order they were first stored.
//!
//! ```
//! use cohort_test_support::jar::Jar;
//!
//! let mut jar = Jar::new();
//! jar.store("canary=v1; Path=/; Max-Age=2592000; HttpOnly");
//! jar.store("cohort_id=abc; Path=/");
//! jar.store("canary=v2; Path=/");
//! assert_eq!(jar.header().as_deref(), Some("canary=v2; cohort_id=abc"));
//! jar.store("cohort_id=; Path=/; Max-Age=0");
//! assert_eq!(jar.header().as_deref(), Some("canary=v2"));
//! jar.store("garbage");
//! assert_eq!(jar.get("canary"), Some("v2"));
//! ```

use cookie::Cookie;
use cookie::time::OffsetDateTime;

pub use cookie::ParseError;

/// Parses one `Set-Cookie` value (name and value trimmed, attributes
/// parsed; an unknown attribute is ignored, as browsers do).
pub fn parse_set_cookie(raw: &str) -> Result<Cookie<'static>, ParseError> {
    Cookie::parse(raw.to_owned())
}

/// Whether a browser deletes the cookie `set_cookie` sets on receipt:
/// `Max-Age` of zero or less, or an `Expires` already past.
pub fn expires_now(set_cookie: &Cookie<'_>) -> bool {
    if let Some(age) = set_cookie.max_age() {
        return age.is_zero() || age.is_negative();
    }
    set_cookie
        .expires_datetime()
        .is_some_and(|at| at <= OffsetDateTime::now_utc())
}

/// A browser's cookies for one site, in the order they were first stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jar {
    cookies: Vec<(String, String)>,
}

impl Jar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// No cookie at all.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// The value of cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every `(name, value)`, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.cookies.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Puts `name=value` in the jar, in place of a cookie of that name.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.cookies.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => value.clone_into(v),
            None => self.cookies.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Takes cookie `name` out of the jar.
    pub fn remove(&mut self, name: &str) {
        self.cookies.retain(|(n, _)| n != name);
    }

    /// Applies one `Set-Cookie` value as a browser would (see the module
    /// docs); one it would ignore changes nothing.
    pub fn store(&mut self, set_cookie: &str) {
        if let Ok(cookie) = parse_set_cookie(set_cookie) {
            self.apply(&cookie);
        }
    }

    /// Applies one parsed `Set-Cookie`.
    pub fn apply(&mut self, set_cookie: &Cookie<'_>) {
        if set_cookie.name().is_empty() {
            return;
        }
        if expires_now(set_cookie) {
            self.remove(set_cookie.name());
        } else {
            self.set(set_cookie.name(), set_cookie.value());
        }
    }

    /// The pairs as a `Cookie` header value, `a=b; c=d`, in order.
    pub fn header_value(&self) -> String {
        self.header_where(|_| true)
    }

    /// The `Cookie` header to send, or `None` with an empty jar.
    pub fn header(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.header_value())
    }

    /// The pairs whose name passes `keep`, as a `Cookie` header value.
    pub fn header_where(&self, keep: impl Fn(&str) -> bool) -> String {
        self.cookies
            .iter()
            .filter(|(n, _)| keep(n))
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_max_age_then_expires() {
        let expired = |raw: &str| expires_now(&parse_set_cookie(raw).expect("parses"));
        assert!(expired("a=; Max-Age=0"));
        assert!(expired("a=; Max-Age=-1"));
        assert!(!expired("a=b; Max-Age=1"));
        assert!(expired("a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"));
        assert!(!expired("a=b; Expires=Fri, 01 Jan 2100 00:00:00 GMT"));
        // Max-Age wins over Expires (RFC 6265 5.3 step 3).
        assert!(!expired(
            "a=b; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        ));
        assert!(!expired("a=b"));
    }

    /// The simulator's jar test, from before the jar was shared: the one
    /// change is that a replaced cookie now keeps its place.
    #[test]
    fn jar_stores_replaces_and_deletes() {
        let mut v = Jar::new();
        v.store("canary=v1; Path=/; Max-Age=2592000; HttpOnly");
        v.store("cohort_id=abc; Path=/");
        assert_eq!(v.header().as_deref(), Some("canary=v1; cohort_id=abc"));
        v.store("canary=v2; Path=/");
        assert_eq!(v.header().as_deref(), Some("canary=v2; cohort_id=abc"));
        v.store("cohort_id=; Path=/; Max-Age=0");
        assert_eq!(v.header().as_deref(), Some("canary=v2"));
        v.store("garbage");
        assert_eq!(v.header().as_deref(), Some("canary=v2"));
    }

    #[test]
    fn a_replaced_cookie_keeps_its_place_and_ignored_ones_change_nothing() {
        let mut jar = Jar::new();
        jar.store("a=1");
        jar.store("b=2");
        jar.store("a=3");
        assert_eq!(jar.header_value(), "a=3; b=2");
        jar.store("=4");
        jar.store("no pair");
        assert_eq!(jar.header_value(), "a=3; b=2");
        assert_eq!(jar.header_where(|n| n != "a"), "b=2");
        jar.remove("a");
        jar.remove("b");
        assert_eq!(jar.header(), None);
    }
}
