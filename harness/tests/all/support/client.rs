//! An HTTP client for the end-to-end tests: one [`Visitor`] is one browser,
//! with its own cookie jar. Plain HTTP to loopback only, no redirects
//! followed, every `Set-Cookie` kept for the test to look at.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use cohort_harness::whoami;
use cohort_test_support::jar::{self, Jar};

/// One visitor: a cookie jar and the headers it sends on every request.
pub struct Visitor {
    agent: ureq::Agent,
    base: String,
    host: Option<String>,
    jar: Jar,
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
        // Each phase under the global bound, so that a stall names where it
        // happened (connect, send, or Traefik's answer): one request in a
        // rollout test once waited out the whole 30 s.
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_send_request(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(25)))
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
            jar: Jar::new(),
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
        self.jar.set(name, value);
    }

    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name)
    }

    /// The `Cookie` header this visitor sends now, or `None` with an empty jar.
    pub fn cookie_header(&self) -> Option<String> {
        self.jar.header()
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
            self.jar.store(&set_cookie.raw);
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

/// One `Set-Cookie` header value, as [`jar::parse_set_cookie`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub max_age: Option<i64>,
    pub secure: bool,
    pub http_only: bool,
    /// E.g. `None`, `Lax`.
    pub same_site: Option<String>,
    /// The header value as received.
    pub raw: String,
    expired: bool,
}

impl SetCookie {
    pub fn parse(raw: &str) -> Result<Self> {
        let cookie = jar::parse_set_cookie(raw)
            .with_context(|| format!("Set-Cookie without name=value: {raw:?}"))?;
        Ok(Self {
            name: cookie.name().to_owned(),
            value: cookie.value().to_owned(),
            path: cookie.path().map(str::to_owned),
            domain: cookie.domain().map(str::to_owned),
            max_age: cookie.max_age().map(|age| age.whole_seconds()),
            secure: cookie.secure().unwrap_or(false),
            http_only: cookie.http_only().unwrap_or(false),
            same_site: cookie.same_site().map(|s| s.to_string()),
            raw: raw.to_owned(),
            expired: jar::expires_now(&cookie),
        })
    }

    /// Expired on arrival (`Max-Age` ≤ 0, or `Expires` past): the browser
    /// deletes the cookie.
    pub fn expires_now(&self) -> bool {
        self.expired
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
