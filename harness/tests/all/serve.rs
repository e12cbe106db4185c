//! The reverse proxy (`cohort_harness::proxy`) over real loopback HTTP, with
//! Cohort's shipped plugin as the guest and whoami pods as the upstream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use cohort_harness::artifacts::PLUGIN_WASM;
use cohort_harness::proxy::{Proxy, ProxyOptions};
use cohort_harness::whoami::{Pod, Reply};
use cohort_harness::{Guest, HostOptions};
use serde_json::json;

use crate::support::client::Visitor;

/// Cohort with v2 at 50 %, loaded once for every test here.
fn cohort() -> Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST
        .get_or_init(|| {
            let wasm = std::fs::read(PLUGIN_WASM).unwrap();
            let config = json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 50}]});
            Guest::load(&wasm, HostOptions::traefik().config_json(config)).unwrap()
        })
        .clone()
}

fn start(guest: Guest, upstream: &str) -> Proxy {
    Proxy::start(guest, ProxyOptions::new(upstream).workers(2)).unwrap()
}

#[test]
fn a_new_visitor_gets_its_cookie_and_the_backend_sees_x_canary() {
    let pod = Pod::start("app", "app-0").unwrap();
    let proxy = start(cohort(), &pod.url());
    let mut visitor = Visitor::new(&proxy.url()).with_host("shop.example.com");

    let first = visitor.get("/cart?x=1").unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    let cohort = first
        .set_cookie("canary")
        .unwrap()
        .expect("a Set-Cookie for canary")
        .value;
    assert!(cohort == "v1" || cohort == "v2", "{cohort}");
    assert!(
        first.set_cookie("cohort_id").unwrap().is_none(),
        "keep keeps no id"
    );
    let reply = first.whoami().unwrap();
    assert_eq!(reply.request_line, "GET /cart?x=1 HTTP/1.1");
    assert_eq!(reply.header("X-Canary"), Some(cohort.as_str()));
    assert_eq!(reply.header("Host"), Some("shop.example.com"));
    // The guest's Cookie rewrite reached the upstream too.
    assert!(
        reply
            .header("Cookie")
            .is_some_and(|c| c.contains(&format!("canary={cohort}"))),
        "{reply:?}"
    );
    assert_eq!(reply.header("X-Forwarded-For"), Some("127.0.0.1"));
    // A bodiless GET stays bodiless (no `Content-Length: 0` invented).
    assert_eq!(reply.header("Content-Length"), None);

    // A returning visitor keeps its cohort and gets no new cookie.
    for _ in 0..3 {
        let again = visitor.get("/").unwrap();
        assert_eq!(again.set_cookie("canary").unwrap(), None);
        assert_eq!(
            again.whoami().unwrap().header("X-Canary"),
            Some(cohort.as_str())
        );
    }
    assert_eq!(proxy.stats().guest_errors(), 0);
}

/// Sends `GET path` on `stream` and reads one response (by Content-Length).
fn exchange(
    stream: &mut BufReader<TcpStream>,
    path: &str,
    extra: &str,
) -> (String, Vec<String>, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: shop.example.com\r\n{extra}\r\n");
    stream.get_mut().write_all(request.as_bytes()).unwrap();
    let mut status = String::new();
    stream.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
        headers.push(line);
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    (
        status.trim_end().to_owned(),
        headers,
        String::from_utf8(body).unwrap(),
    )
}

#[test]
fn one_keep_alive_connection_serves_several_requests() {
    let pod = Pod::start("app", "app-0").unwrap();
    let proxy = start(cohort(), &pod.url());
    let stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut stream = BufReader::new(stream);

    let mut cohorts = Vec::new();
    let mut upstream_peers = Vec::new();
    for i in 0..4 {
        // The same cookie every time: the first response's assignment.
        let cookie = cohorts
            .first()
            .map(|c: &String| format!("Cookie: canary={c}\r\n"))
            .unwrap_or_default();
        let (status, headers, body) = exchange(&mut stream, &format!("/page/{i}"), &cookie);
        assert_eq!(status, "HTTP/1.1 200 OK", "{headers:?}");
        assert!(
            !headers
                .iter()
                .any(|h| h.to_ascii_lowercase().starts_with("connection: close")),
            "{headers:?}"
        );
        let reply = Reply::parse(&body).unwrap();
        assert_eq!(reply.request_line, format!("GET /page/{i} HTTP/1.1"));
        cohorts.push(reply.header("X-Canary").unwrap().to_owned());
        upstream_peers.push(
            body.lines()
                .find_map(|l| l.strip_prefix("RemoteAddr: "))
                .unwrap()
                .to_owned(),
        );
    }
    assert!(cohorts.iter().all(|c| *c == cohorts[0]), "{cohorts:?}");
    // The upstream side kept its connection too: one client port throughout.
    assert!(
        upstream_peers.iter().all(|p| *p == upstream_peers[0]),
        "{upstream_peers:?}"
    );
    assert_eq!(proxy.stats().requests(), 4);
}

#[test]
fn a_spoofed_x_canary_is_replaced() {
    let pod = Pod::start("app", "app-0").unwrap();
    let proxy = start(cohort(), &pod.url());
    let mut visitor = Visitor::new(&proxy.url());
    visitor.set_cookie("canary", "v1");
    let response = visitor
        .get_with("/", &[("X-Canary", "v2"), ("x-canary", "admin")])
        .unwrap();
    let reply = response.whoami().unwrap();
    assert_eq!(reply.headers("X-Canary").collect::<Vec<_>>(), ["v1"]);
    assert_eq!(response.set_cookie("canary").unwrap(), None);
}

#[test]
fn upstream_set_cookies_are_kept_after_the_guests() {
    // An upstream that sets two cookies of its own.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let upstream = std::thread::spawn(move || {
        if let Ok(Some(request)) = server.recv_timeout(Duration::from_secs(30)) {
            let response = tiny_http::Response::from_string("ok")
                .with_header(tiny_http::Header::from_bytes("Set-Cookie", "session=abc").unwrap())
                .with_header(tiny_http::Header::from_bytes("Set-Cookie", "theme=dark").unwrap());
            request.respond(response).unwrap();
        }
    });
    let proxy = start(cohort(), &url);
    let mut visitor = Visitor::new(&proxy.url());
    let response = visitor.get("/").unwrap();
    upstream.join().unwrap();
    assert_eq!(response.body, "ok");
    let names: Vec<String> = response
        .set_cookies()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["canary", "session", "theme"]);
}

#[test]
fn a_trap_is_a_500_with_the_error_and_a_dead_upstream_a_502() {
    let trapping = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "handle_request") (result i64) unreachable)
             (func (export "handle_response") (param i32 i32)))"#,
    )
    .unwrap();
    let guest = Guest::load(&trapping, HostOptions::traefik()).unwrap();
    let pod = Pod::start("app", "app-0").unwrap();
    let proxy = start(guest, &pod.url());
    let response = Visitor::new(&proxy.url()).get("/").unwrap();
    assert_eq!(response.status, 500);
    assert!(response.body.contains("unreachable"), "{}", response.body);
    assert_eq!(proxy.stats().guest_errors(), 1);
    drop(proxy);

    // A dead upstream: a port we hold for the whole test (so nobody else
    // can take it and answer) whose every connection is dropped unanswered,
    // as by a pod that crashes on each request.
    let dead = DeadUpstream::start();
    let proxy = start(cohort(), &dead.url());
    let response = Visitor::new(&proxy.url()).get("/").unwrap();
    assert_eq!(response.status, 502, "{}", response.body);
    // The guest's own cookie still goes out with Traefik-style 502.
    assert!(response.set_cookie("canary").unwrap().is_some());
    assert_eq!(proxy.stats().upstream_errors(), 1);
    assert!(
        dead.dropped() >= 1,
        "the proxy never reached the dead upstream"
    );
}

/// A listener on a port of its own (bound to port 0, kept until dropped)
/// that closes every connection without a byte of answer.
struct DeadUpstream {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DeadUpstream {
    fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (thread_stop, thread_dropped) = (stop.clone(), dropped.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    // Read what the proxy sent, so closing is a clean EOF
                    // for it rather than a reset racing its write.
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                    let _ = (&stream).read(&mut [0; 4096]);
                    // Count before closing: the proxy answers its 502 the
                    // moment it sees EOF, and the test reads the count then.
                    thread_dropped.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                }
            }
        });
        DeadUpstream {
            addr,
            stop,
            dropped,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for DeadUpstream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop; it sees `stop` and returns.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
