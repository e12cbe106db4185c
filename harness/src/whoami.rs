//! A whoami-like HTTP backend: every request is answered `200` with a text
//! body that names the version and the pod, and echoes the request line and
//! every request header as received (the shape of `traefik/whoami` with
//! `WHOAMI_NAME` set):
//!
//! ```text
//! Name: canary-v1
//! Hostname: canary-v1-0
//! IP: 127.0.0.1
//! RemoteAddr: 127.0.0.1:53412
//! GET /cart HTTP/1.1
//! Host: shop.example.com
//! Cookie: canary=v1
//! ```
//!
//! A [`Pod`] is one server on its own port; a [`Deployment`] is several pods
//! of one version. Both stop when dropped. The end-to-end tests put them
//! behind a real Traefik, and the CLI offers them as a demo backend. Use
//! [`Reply::parse`] to read a body back.
//!
//! ```
//! use cohort_harness::whoami::Deployment;
//!
//! let v1 = Deployment::start("canary-v1", 2)?;
//! assert_eq!(v1.pods().len(), 2);
//! for pod in v1.pods() {
//!     println!("{} at {}", pod.hostname(), pod.url());
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};

/// One whoami server, listening until dropped.
pub struct Pod {
    name: String,
    hostname: String,
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

/// Threads answering one pod. With a single one, a second keep-alive
/// connection could wait for a minute behind the first (seen under the soak).
const WORKERS: usize = 8;

impl Pod {
    /// Starts a pod on `127.0.0.1` and a free port.
    ///
    /// `name` is the version it answers as (`Name:`), `hostname` the pod
    /// (`Hostname:`).
    pub fn start(name: &str, hostname: &str) -> Result<Self> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), name, hostname)
    }

    /// Starts a pod on `addr` (port 0 picks a free one).
    pub fn bind(addr: SocketAddr, name: &str, hostname: &str) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .map_err(|source| anyhow!("whoami: cannot listen on {addr}: {source}"))?;
        let addr = listener
            .local_addr()
            .map_err(|source| anyhow!("whoami: cannot listen on {addr}: {source}"))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| anyhow!("whoami: cannot serve on {addr}: {e}"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(WORKERS);
        for i in 0..WORKERS {
            let (worker_server, worker_stop) = (Arc::clone(&server), Arc::clone(&stop));
            let (name, hostname) = (name.to_owned(), hostname.to_owned());
            let spawned = std::thread::Builder::new()
                .name(format!("whoami-{hostname}-{i}"))
                .spawn(move || serve(&worker_server, &worker_stop, &name, &hostname));
            match spawned {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    for _ in &workers {
                        server.unblock();
                    }
                    return Err(anyhow!("whoami: cannot start the serving thread: {e}"));
                }
            }
        }
        Ok(Self {
            name: name.to_owned(),
            hostname: hostname.to_owned(),
            addr,
            server,
            stop,
            workers,
        })
    }

    /// The version this pod answers as.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pod's host name, unique per pod.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the form a Traefik server `url` takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl std::fmt::Debug for Pod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pod")
            .field("name", &self.name)
            .field("hostname", &self.hostname)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // `unblock` wakes one waiting `recv` at a time.
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            // A panic in a worker has already been reported on stderr.
            let _ = worker.join();
        }
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, name: &str, hostname: &str) {
    let content_type =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/plain; charset=utf-8"[..]).ok();
    loop {
        match server.recv() {
            Ok(request) => {
                let mut response =
                    tiny_http::Response::from_string(render(&request, name, hostname));
                if let Some(header) = &content_type {
                    response.add_header(header.clone());
                }
                // The client may have gone away; nothing to do about it.
                let _ = request.respond(response);
            }
            Err(_) if stop.load(Ordering::SeqCst) => return,
            // An accept error (e.g. a connection reset during the
            // handshake) does not stop the pod.
            Err(_) => {}
        }
    }
}

fn render(request: &tiny_http::Request, name: &str, hostname: &str) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "Name: {name}");
    let _ = writeln!(body, "Hostname: {hostname}");
    if let Some(remote) = request.remote_addr() {
        let _ = writeln!(body, "IP: {}", remote.ip());
        let _ = writeln!(body, "RemoteAddr: {remote}");
    }
    let _ = writeln!(
        body,
        "{} {} HTTP/{}",
        request.method(),
        request.url(),
        request.http_version()
    );
    for header in request.headers() {
        let _ = writeln!(body, "{}: {}", header.field, header.value);
    }
    body
}

/// Several pods of one version: `<name>-0`, `<name>-1`, ….
#[derive(Debug)]
pub struct Deployment {
    name: String,
    pods: Vec<Pod>,
}

impl Deployment {
    /// Starts `replicas` pods on `127.0.0.1`, each on a free port.
    pub fn start(name: &str, replicas: usize) -> Result<Self> {
        let pods = (0..replicas)
            .map(|i| Pod::start(name, &format!("{name}-{i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            name: name.to_owned(),
            pods,
        })
    }

    /// The version the pods answer as.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pods, in start order.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// The pod whose `Hostname:` is `hostname`.
    pub fn pod(&self, hostname: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.hostname == hostname)
    }
}

/// A whoami body, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `Name:`, the version.
    pub name: String,
    /// `Hostname:`, the pod.
    pub hostname: String,
    /// The request line as the backend received it, e.g. `GET / HTTP/1.1`.
    pub request_line: String,
    /// The request headers as the backend received them, in order.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// Reads a body written by a [`Pod`] (or by `traefik/whoami` with a name).
    pub fn parse(body: &str) -> Result<Self> {
        let mut name = None;
        let mut hostname = None;
        let mut request_line = None;
        let mut headers = Vec::new();
        for line in body.lines() {
            if line.is_empty() {
                // traefik/whoami ends the headers with an empty line.
                if request_line.is_some() {
                    break;
                }
                continue;
            }
            if request_line.is_some() {
                let (field, value) = line.split_once(':').ok_or_else(|| {
                    anyhow!("not a whoami reply: header line without a colon: {line:?}")
                })?;
                headers.push((field.to_owned(), value.trim_start().to_owned()));
            } else if let Some(v) = line.strip_prefix("Name: ") {
                name = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("Hostname: ") {
                hostname = Some(v.to_owned());
            } else if is_request_line(line) {
                request_line = Some(line.to_owned());
            }
        }
        Ok(Self {
            name: name.ok_or_else(|| anyhow!("not a whoami reply: no `Name:` line"))?,
            hostname: hostname.ok_or_else(|| anyhow!("not a whoami reply: no `Hostname:` line"))?,
            request_line: request_line
                .ok_or_else(|| anyhow!("not a whoami reply: no request line"))?,
            headers,
        })
    }

    /// The first value of request header `field` (case-insensitive).
    pub fn header(&self, field: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(field))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of request header `field` (case-insensitive), in order.
    pub fn headers<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(f, _)| f.eq_ignore_ascii_case(field))
            .map(|(_, v)| v.as_str())
    }
}

fn is_request_line(line: &str) -> bool {
    let mut parts = line.split(' ');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(method), Some(_target), Some(version), None)
            if !method.is_empty()
                && method.bytes().all(|b| b.is_ascii_uppercase())
                && version.starts_with("HTTP/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(pod: &Pod, raw: &str) -> String {
        let mut stream = TcpStream::connect(pod.addr()).expect("connect");
        stream.write_all(raw.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    }

    #[test]
    fn echoes_name_pod_request_line_and_headers() {
        let pod = Pod::start("canary-v2", "canary-v2-1").expect("start");
        let response = get(
            &pod,
            "GET /cart?x=1 HTTP/1.1\r\nHost: shop.example.com\r\nCookie: canary=v2\r\n\
             Cookie: other=1\r\nConnection: close\r\n\r\n",
        );
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let reply = Reply::parse(body).expect("parse");
        assert_eq!(reply.name, "canary-v2");
        assert_eq!(reply.hostname, "canary-v2-1");
        assert_eq!(reply.request_line, "GET /cart?x=1 HTTP/1.1");
        assert_eq!(reply.header("host"), Some("shop.example.com"));
        assert_eq!(
            reply.headers("Cookie").collect::<Vec<_>>(),
            ["canary=v2", "other=1"]
        );
        assert!(body.contains("\nIP: 127.0.0.1\n"), "{body}");
    }

    #[test]
    fn a_deployment_has_distinct_pods_and_frees_its_ports_on_drop() {
        let deployment = Deployment::start("canary-v1", 3).expect("start");
        let hostnames: Vec<String> = deployment
            .pods()
            .iter()
            .map(|p| p.hostname().to_owned())
            .collect();
        assert_eq!(hostnames, ["canary-v1-0", "canary-v1-1", "canary-v1-2"]);
        let addrs: Vec<_> = deployment.pods().iter().map(Pod::addr).collect();
        for pod in deployment.pods() {
            let body = get(pod, "GET / HTTP/1.0\r\n\r\n");
            assert!(body.contains(&format!("Hostname: {}\n", pod.hostname())));
        }
        assert!(deployment.pod("canary-v1-2").is_some());
        drop(deployment);
        for (addr, hostname) in addrs.into_iter().zip(hostnames) {
            // The port is free again once the pod is gone. Another test may
            // bind the freed port at once (port 0 hands it out again), so
            // "someone else answers there" counts as freed too: what may
            // not happen is our pod still answering.
            let mut freed = false;
            for _ in 0..200 {
                if released(addr, &hostname) {
                    freed = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(freed, "{addr} still served by {hostname} after drop");
        }
    }

    /// Whether the pod `hostname` no longer holds `addr`: the port binds,
    /// or refuses connections, or whoever answers there is not that pod.
    fn released(addr: SocketAddr, hostname: &str) -> bool {
        if TcpListener::bind(addr).is_ok() {
            return true;
        }
        let timeout = std::time::Duration::from_millis(500);
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
            return true;
        };
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        !response.contains(&format!("Hostname: {hostname}\n"))
    }

    #[test]
    fn parses_traefik_whoami_output() {
        let body = "Name: canary-v1\nHostname: my-app-v1-7d9f-abc\nIP: 10.0.0.7\n\
                    RemoteAddr: 10.0.0.1:4242\nGET / HTTP/1.1\nHost: a.example\n\
                    Accept: */*\n\n";
        let reply = Reply::parse(body).expect("parse");
        assert_eq!(reply.hostname, "my-app-v1-7d9f-abc");
        assert_eq!(reply.headers.len(), 2);
        assert!(
            Reply::parse("Hostname: x\n")
                .is_err_and(|e| e.to_string().starts_with("not a whoami reply: "))
        );
    }
}
