//! A small reverse proxy that runs a guest in front of a real HTTP upstream,
//! the way a Traefik router with the middleware and one service would.
//!
//! * HTTP/1.1 with keep-alive on both sides: a `tiny_http` server whose
//!   requests a pool of worker threads serve, and one `ureq` agent (its own
//!   connection pool) towards the upstream.
//! * Each request goes through [`Guest::handle`]; when the guest calls next,
//!   the request *as the guest left it* is forwarded (hop-by-hop headers
//!   removed, `X-Forwarded-For` appended as Traefik's proxy does), and the
//!   upstream's answer becomes next's response. The host merges the headers
//!   the guest set before next with the upstream's (the guest's first,
//!   every upstream `Set-Cookie` kept).
//! * The guest's source address is the client's `ip:port` (with
//!   [`ProxyOptions::trust_forwarded_for`], the first address of the
//!   client's `X-Forwarded-For`, for a load generator or an outer proxy).
//! * Like Traefik's entrypoint, the proxy sets `X-Forwarded-Proto`,
//!   `X-Forwarded-Host`, `X-Forwarded-Port` and `X-Real-Ip` before the guest
//!   runs, after removing any the client sent (unless trusted).
//! * A guest trap is a `500` whose body is the error text; an unreachable
//!   upstream is a `502`.
//! * It listens on loopback only unless [`ProxyOptions::allow_public`].
//!
//! ```
//! use cohort_harness::proxy::{Proxy, ProxyOptions};
//! use cohort_harness::whoami::{Pod, Reply};
//! use cohort_harness::{Guest, HostOptions};
//!
//! let wasm = std::fs::read(cohort_harness::artifacts::PLUGIN_WASM)?;
//! let config = serde_json::json!({"seed": "docs", "variants": [
//!     {"name": "v1", "default": true}, {"name": "v2", "weight": 10, "state": "active"}]});
//! let guest = Guest::load(&wasm, HostOptions::traefik().config_json(config))?;
//! let upstream = Pod::start("canary-v1", "v1-0")?;
//! let proxy = Proxy::start(guest, ProxyOptions::new(upstream.url()))?;
//! // Loopback only: no HTTP_PROXY of the environment.
//! let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
//! let mut response = agent
//!     .get(&format!("{}/", proxy.url()))
//!     .header("Cookie", "canary=v2")
//!     .call()?;
//! let reply = Reply::parse(&response.body_mut().read_to_string()?)?;
//! let cohort = reply.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-canary"));
//! assert_eq!(cohort.map(|(_, v)| v.as_str()), Some("v2"), "{reply:?}");
//! // `proxy.wait()` would serve until the process ends; dropping stops it.
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::io::{Cursor, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use ureq::SendBody;
use ureq::config::AutoHeaderValue;

use crate::host::Guest;
use crate::model::{Backend, BackendError, Headers, Request, Response};

/// How the proxy listens and forwards.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Where to listen (default `127.0.0.1:0`: a free port).
    pub listen: SocketAddr,
    /// `http://host:port`, optionally with a path prefix.
    pub upstream: String,
    /// Listen on a non-loopback address too.
    pub allow_public: bool,
    /// Worker threads serving requests (default 4).
    pub workers: usize,
    /// Largest request or upstream response body accepted, in bytes
    /// (default 16 MiB); a larger request gets `413`.
    pub max_body: u64,
    /// Time allowed for one upstream exchange (default 30 s).
    pub upstream_timeout: Duration,
    /// Take the guest's source address from the client's
    /// `X-Forwarded-For` (first entry) instead of the TCP peer, and keep
    /// the client's `X-Forwarded-*` headers.
    pub trust_forwarded_for: bool,
}

impl ProxyOptions {
    /// Defaults, forwarding to `upstream`.
    pub fn new(upstream: impl Into<String>) -> Self {
        ProxyOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            upstream: upstream.into(),
            allow_public: false,
            workers: 4,
            max_body: 16 << 20,
            upstream_timeout: Duration::from_secs(30),
            trust_forwarded_for: false,
        }
    }

    /// Listen on `addr`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Set the number of worker threads (at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }
}

/// Counters since start.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    guest_errors: AtomicU64,
    upstream_errors: AtomicU64,
}

impl Stats {
    /// Requests answered.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Requests a guest trap or ABI violation ended (answered `500`).
    pub fn guest_errors(&self) -> u64 {
        self.guest_errors.load(Ordering::Relaxed)
    }
    /// Upstream exchanges that failed (answered `502`).
    pub fn upstream_errors(&self) -> u64 {
        self.upstream_errors.load(Ordering::Relaxed)
    }
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

/// What every worker shares.
struct Shared {
    guest: Guest,
    agent: ureq::Agent,
    /// The upstream URL without a trailing `/`.
    base: String,
    options: ProxyOptions,
    stats: Arc<Stats>,
}

impl Proxy {
    /// Starts listening and serving.
    pub fn start(guest: Guest, options: ProxyOptions) -> Result<Proxy> {
        if !options.listen.ip().is_loopback() && !options.allow_public {
            bail!(
                "refusing to listen on {}: not a loopback address \
                 (use 127.0.0.1, or allow it explicitly with --allow-public)",
                options.listen
            );
        }
        let base = check_upstream(&options.upstream)?;
        let listener = TcpListener::bind(options.listen)
            .map_err(|source| anyhow!("cannot listen on {}: {source}", options.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|source| anyhow!("cannot listen on {}: {source}", options.listen))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| anyhow!("cannot serve on {addr}: {e}"))?;
        let server = Arc::new(server);
        let mut options = options;
        options.listen = addr;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            // Never route loopback traffic through an HTTP_PROXY.
            .proxy(None)
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .accept_encoding(AutoHeaderValue::None)
            .allow_non_standard_methods(true)
            .timeout_global(Some(options.upstream_timeout))
            .max_idle_connections_per_host(options.workers.max(1) * 2)
            .build()
            .into();
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            guest,
            agent,
            base,
            options: options.clone(),
            stats: Arc::clone(&stats),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut proxy = Proxy {
            addr,
            server,
            stop,
            workers: Vec::new(),
            stats,
        };
        for i in 0..options.workers.max(1) {
            let server = Arc::clone(&proxy.server);
            let stop = Arc::clone(&proxy.stop);
            let shared = Arc::clone(&shared);
            let worker = std::thread::Builder::new()
                .name(format!("proxy-{i}"))
                .spawn(move || work(&server, &stop, &shared))
                .map_err(|e| anyhow!("cannot start a worker thread: {e}"))?;
            proxy.workers.push(worker);
        }
        Ok(proxy)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Each call unblocks one worker waiting in `recv`.
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            // A panic in a worker has already been reported on stderr.
            let _ = worker.join();
        }
    }
}

/// The upstream URL without a trailing `/`, checked.
fn check_upstream(url: &str) -> Result<String> {
    let bad = |problem: &str| anyhow!("upstream {url:?}: {problem}");
    let rest = match url.strip_prefix("http://") {
        Some(rest) => rest,
        None if url.starts_with("https://") => {
            return Err(bad("https upstreams are not supported (plain http only)"));
        }
        None => return Err(bad("must start with http://")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn work(server: &tiny_http::Server, stop: &AtomicBool, shared: &Shared) {
    loop {
        match server.recv() {
            Ok(request) => serve_one(request, shared),
            Err(_) if stop.load(Ordering::SeqCst) => return,
            // An accept error (a reset during the handshake) does not stop
            // the proxy.
            Err(_) => {}
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 7.6.1),
/// plus the framing headers the proxy recomputes.
const HOP_BY_HOP: &[&str] = &[
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Content-Length",
];

/// `headers` without hop-by-hop fields and those `Connection` names.
fn end_to_end(headers: &Headers) -> Headers {
    let named: Vec<String> = headers
        .get_all("Connection")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    headers
        .iter()
        .filter(|(n, _)| {
            !HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(n))
                && !named.iter().any(|t| t.eq_ignore_ascii_case(n))
        })
        .collect()
}

const FORWARDED: &[&str] = &[
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Real-Ip",
];

fn serve_one(mut incoming: tiny_http::Request, shared: &Shared) {
    let response = match read_request(&mut incoming, shared) {
        Ok((request, peer)) => {
            let backend = Upstream {
                shared,
                peer,
                client_xff: request.headers.get_all("X-Forwarded-For").join(", "),
            };
            match shared.guest.handle(request, &backend) {
                Ok(exchange) => {
                    if let Some(error) = &exchange.error {
                        shared.stats.guest_errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("guest error: {error}");
                    }
                    exchange.response
                }
                Err(error) => {
                    eprintln!("harness error: {error}");
                    Response::new(500).body(error.to_string())
                }
            }
        }
        Err(response) => response,
    };
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    // The client may have gone away; nothing to do about it.
    let _ = incoming.respond(to_tiny(&response));
}

/// The guest's request and the client's IP, or the error response.
fn read_request(
    incoming: &mut tiny_http::Request,
    shared: &Shared,
) -> Result<(Request, Option<IpAddr>), Response> {
    let peer = incoming.remote_addr().copied();
    let mut body = Vec::new();
    let limit = shared.options.max_body;
    if let Err(e) = incoming
        .as_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
    {
        return Err(Response::new(400).body(format!("reading the request body: {e}")));
    }
    if body.len() as u64 > limit {
        return Err(Response::new(413).body(format!("request body over {limit} bytes")));
    }
    let version = incoming.http_version();
    let mut request = Request::new(incoming.method().as_str(), incoming.url())
        .protocol(format!("HTTP/{}.{}", version.0, version.1))
        .body(body);
    for header in incoming.headers() {
        request
            .headers
            .append(header.field.as_str().as_str(), header.value.as_str());
    }

    let trusted = shared.options.trust_forwarded_for;
    let forwarded_client = trusted
        .then(|| first_forwarded_ip(&request.headers))
        .flatten();
    let client_ip = forwarded_client.or(peer.map(|p| p.ip()));
    let port = peer.map_or(0, |p| p.port());
    request.source_addr = match client_ip {
        Some(ip) => SocketAddr::new(ip, port).to_string(),
        None => String::new(),
    };
    if !trusted {
        for name in FORWARDED {
            request.headers.remove(name);
        }
    }
    let host = request.headers.get("Host").unwrap_or_default().to_owned();
    let local_port = shared.options.listen.port();
    set_if_missing(&mut request.headers, "X-Forwarded-Proto", "http".to_owned());
    if !host.is_empty() {
        set_if_missing(&mut request.headers, "X-Forwarded-Host", host.clone());
    }
    let forwarded_port = host
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(if local_port == 0 { 80 } else { local_port });
    set_if_missing(
        &mut request.headers,
        "X-Forwarded-Port",
        forwarded_port.to_string(),
    );
    if let Some(ip) = client_ip {
        set_if_missing(&mut request.headers, "X-Real-Ip", ip.to_string());
    }
    Ok((request, peer.map(|p| p.ip())))
}

fn set_if_missing(headers: &mut Headers, name: &str, value: String) {
    if !headers.contains(name) {
        headers.append(name, value);
    }
}

fn first_forwarded_ip(headers: &Headers) -> Option<IpAddr> {
    let first = headers.get("X-Forwarded-For")?.split(',').next()?.trim();
    first
        .parse::<IpAddr>()
        .ok()
        .or_else(|| first.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

fn to_tiny(response: &Response) -> tiny_http::Response<Cursor<Vec<u8>>> {
    let headers: Vec<tiny_http::Header> = end_to_end(&response.headers)
        .iter()
        // A value tiny_http cannot carry (not ASCII) is dropped.
        .filter_map(|(n, v)| tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).ok())
        .collect();
    let len = response.body.len();
    tiny_http::Response::new(
        tiny_http::StatusCode(response.status),
        headers,
        Cursor::new(response.body.clone()),
        Some(len),
        None,
    )
}

/// The backend next calls: the upstream over HTTP.
struct Upstream<'a> {
    shared: &'a Shared,
    /// The TCP peer, appended to `X-Forwarded-For`.
    peer: Option<IpAddr>,
    /// The client's own `X-Forwarded-For` (kept only when trusted).
    client_xff: String,
}

impl Upstream<'_> {
    fn forward(&self, request: &Request) -> Result<Response, String> {
        let url = format!("{}{}", self.shared.base, request.uri);
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(&url);
        for (n, v) in end_to_end(&request.headers).iter() {
            if n.eq_ignore_ascii_case("X-Forwarded-For") {
                continue;
            }
            builder = builder.header(n, v);
        }
        // Go's ReverseProxy: the client's list (when kept), then the peer.
        let mut xff: Vec<String> = Vec::new();
        if self.shared.options.trust_forwarded_for && !self.client_xff.is_empty() {
            xff.push(self.client_xff.clone());
        }
        if let Some(peer) = self.peer {
            xff.push(peer.to_string());
        }
        if !xff.is_empty() {
            builder = builder.header("X-Forwarded-For", xff.join(", "));
        }
        let needs_length =
            !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH");
        if needs_length {
            builder = builder.header("Content-Length", request.body.len().to_string());
        }
        // No body at all (not an empty one, which ureq would announce as
        // `Content-Length: 0`) for a bodiless GET, HEAD, DELETE, ...
        let agent = &self.shared.agent;
        let built = if needs_length {
            builder.body(&request.body[..]).map(|r| agent.run(r))
        } else {
            builder.body(SendBody::none()).map(|r| agent.run(r))
        };
        let mut answer = built
            .map_err(|e| format!("building the upstream request: {e}"))?
            .map_err(|e| format!("{url}: {e}"))?;
        let mut response = Response::new(answer.status().as_u16());
        for (n, v) in answer.headers() {
            response
                .headers
                .append(canonical(n.as_str()), String::from_utf8_lossy(v.as_bytes()));
        }
        response.body = answer
            .body_mut()
            .with_config()
            .limit(self.shared.options.max_body)
            .read_to_vec()
            .map_err(|e| format!("{url}: reading the body: {e}"))?;
        Ok(response)
    }
}

/// `set-cookie` → `Set-Cookie` (the `http` crate lower-cases names).
fn canonical(name: &str) -> String {
    crate::model::canonical_header_name(name).into_owned()
}

impl Backend for Upstream<'_> {
    fn serve(&self, request: &Request) -> Result<Response, BackendError> {
        match self.forward(request) {
            Ok(response) => Ok(response),
            Err(message) => {
                // Traefik's proxy answers an unreachable upstream itself.
                self.shared
                    .stats
                    .upstream_errors
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!("upstream error: {message}");
                Ok(Response::new(502)
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .body(format!("Bad Gateway: {message}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_must_be_plain_http() {
        assert_eq!(
            check_upstream("http://127.0.0.1:8080/").expect("ok"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_upstream("http://backend/base").expect("ok"),
            "http://backend/base"
        );
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://x/?q",
            "127.0.0.1:80",
        ] {
            assert!(check_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_with_those_connection_names() {
        let headers = Headers::from([
            ("Host", "a"),
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let kept = end_to_end(&headers);
        assert_eq!(
            kept.iter().collect::<Vec<_>>(),
            [("Host", "a"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")]
        );
    }

    #[test]
    fn refuses_a_public_address_unless_allowed() {
        let wasm = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "handle_request") (result i64) (i64.const 1))
                 (func (export "handle_response") (param i32 i32)))"#,
        )
        .expect("wat");
        let guest = Guest::load(&wasm, crate::HostOptions::native()).expect("load");
        let options = ProxyOptions::new("http://127.0.0.1:9")
            .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let err = Proxy::start(guest, options).expect_err("refused");
        assert!(err.to_string().contains("not a loopback address"), "{err}");
        assert!(err.to_string().contains("--allow-public"));
    }
}
