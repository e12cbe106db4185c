//! An HTTP client for the end-to-end tests: one [`Visitor`] is one browser,
//! with its own cookie jar. Plain HTTP to loopback only, no redirects
//! followed, every `Set-Cookie` kept for the test to look at.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use cohort_harness::whoami;

/// One visitor: a cookie jar and the headers it sends on every request.
pub struct Visitor {
    agent: ureq::Agent,
    base: String,
    host: Option<String>,
    jar: Vec<(String, String)>,
}

/// The HTTP agent visitors use: no redirects, no proxy, statuses as
/// responses, a 30 s bound per request. Clones share one connection pool
/// (keep-alive), so many visitors can share one agent.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        // Loopback only: never route through an HTTP_PROXY of the environment.
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

impl Visitor {
    /// A visitor with an empty jar that talks to `base`
    /// (e.g. `http://127.0.0.1:41235`).
    pub fn new(base: &str) -> Self {
        Self::with_agent(base, agent())
    }

    /// Like [`Visitor::new`], over `agent`'s connections: visitors that
    /// share an agent share its keep-alive pool (never its cookies).
    pub fn with_agent(base: &str, agent: ureq::Agent) -> Self {
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            host: None,
            jar: Vec::new(),
        }
    }

    /// Sends `Host: host` instead of the address's host (Traefik `Host()` rules).
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    /// Puts `name=value` into the jar, replacing a cookie of that name
    /// (what `curl -b name=value` or `document.cookie = ...` does).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        match self.jar.iter_mut().find(|(n, _)| n == name) {
            Some(pair) => pair.1 = value.to_owned(),
            None => self.jar.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Removes cookie `name` from the jar.
    pub fn forget_cookie(&mut self, name: &str) {
        self.jar.retain(|(n, _)| n != name);
    }

    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Cookie` header this visitor sends now, or `None` with an empty jar.
    pub fn cookie_header(&self) -> Option<String> {
        if self.jar.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
        Some(pairs.join("; "))
    }

    /// `GET path` with the jar's cookies; the response's cookies go into the jar.
    pub fn get(&mut self, path: &str) -> Result<Response> {
        self.get_with(path, &[])
    }

    /// `GET path` with extra request headers.
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.agent.get(&url);
        if let Some(host) = &self.host {
            request = request.header("Host", host);
        }
        if let Some(cookie) = self.cookie_header() {
            request = request.header("Cookie", &cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.call().with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the body of GET {url}"))?;
        let response = Response {
            status,
            headers,
            body,
        };
        for set_cookie in response.set_cookies()? {
            if set_cookie.expires_now() {
                self.forget_cookie(&set_cookie.name);
            } else {
                self.set_cookie(&set_cookie.name, &set_cookie.value);
            }
        }
        Ok(response)
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Response headers in order, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// Every `Set-Cookie`, parsed, in order.
    pub fn set_cookies(&self) -> Result<Vec<SetCookie>> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| SetCookie::parse(v))
            .collect()
    }

    /// The `Set-Cookie` for cookie `name`, if the response has exactly one.
    pub fn set_cookie(&self, name: &str) -> Result<Option<SetCookie>> {
        let mut found: Vec<SetCookie> = self
            .set_cookies()?
            .into_iter()
            .filter(|c| c.name == name)
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => bail!("{n} Set-Cookie headers for {name}: {:?}", self.headers),
        }
    }

    /// The body read as a whoami reply (fails with the status and body if not).
    pub fn whoami(&self) -> Result<whoami::Reply> {
        whoami::Reply::parse(&self.body).with_context(|| {
            format!(
                "expected a whoami body, got status {} with {:?}",
                self.status, self.body
            )
        })
    }
}

/// One `Set-Cookie` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub max_age: Option<i64>,
    pub secure: bool,
    pub http_only: bool,
    /// As written, e.g. `None`, `Lax`.
    pub same_site: Option<String>,
    /// The header value as received.
    pub raw: String,
}

impl SetCookie {
    pub fn parse(raw: &str) -> Result<Self> {
        let mut parts = raw.split(';');
        let pair = parts.next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else {
            bail!("Set-Cookie without name=value: {raw:?}");
        };
        let mut cookie = Self {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            path: None,
            domain: None,
            max_age: None,
            secure: false,
            http_only: false,
            same_site: None,
            raw: raw.to_owned(),
        };
        for attribute in parts {
            let (key, val) = match attribute.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (attribute.trim(), None),
            };
            match (key.to_ascii_lowercase().as_str(), val) {
                ("path", Some(v)) => cookie.path = Some(v.to_owned()),
                ("domain", Some(v)) => cookie.domain = Some(v.to_owned()),
                ("max-age", Some(v)) => {
                    cookie.max_age =
                        Some(v.parse().with_context(|| format!("Max-Age in {raw:?}"))?);
                }
                ("secure", None) => cookie.secure = true,
                ("httponly", None) => cookie.http_only = true,
                ("samesite", Some(v)) => cookie.same_site = Some(v.to_owned()),
                _ => {}
            }
        }
        Ok(cookie)
    }

    /// `Max-Age` of zero or less: the browser deletes the cookie.
    pub fn expires_now(&self) -> bool {
        self.max_age.is_some_and(|age| age <= 0)
    }
}

#[test]
fn set_cookie_parses_traefik_sticky_cookie() {
    let c = SetCookie::parse(
        "my-sticky-cookie=438607722a20eca0; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=None",
    )
    .unwrap();
    assert_eq!(c.name, "my-sticky-cookie");
    assert_eq!(c.value, "438607722a20eca0");
    assert_eq!(c.path.as_deref(), Some("/"));
    assert_eq!(c.max_age, Some(3600));
    assert!(c.secure && c.http_only);
    assert_eq!(c.same_site.as_deref(), Some("None"));
    assert!(!c.expires_now());
    assert!(
        SetCookie::parse("canary=; Max-Age=0")
            .unwrap()
            .expires_now()
    );
    assert!(SetCookie::parse("garbage").is_err());
}
