//! What the CLI's `run` (and its other subcommands) share: naming a guest
//! (`cohort` is the built-in plugin), reading a configuration given as JSON
//! or `@file`, loading a guest while keeping what it logged (a guest that
//! refuses its configuration says why in its log, not in its exit code),
//! building a request from curl-like arguments, and printing a request or a
//! response the way `curl -v` / `curl -i` do.
//!
//! ```
//! use cohort_harness::run::{self, RequestSpec};
//! use cohort_harness::{EchoBackend, HostOptions};
//!
//! let wasm = run::read_guest("cohort")?;
//! let config = run::parse_config_arg(
//!     r#"{"seed":"docs","variants":[{"name":"v1","default":true},{"name":"v2","weight":10,"state":"active"}]}"#,
//! )?;
//! let guest = run::load_guest(&wasm, HostOptions::traefik().config_json(config))?;
//! let request = RequestSpec::default().build()?;
//! let exchange = guest.handle(request, &EchoBackend::new())?;
//! assert!(run::render_response(&exchange.response).starts_with("HTTP/1.1 200 OK"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};
use serde_json::Value;

use crate::host::{Guest, HostOptions, LogLine};
use crate::model::{Request, Response};

/// The name that stands for the built-in plugin wherever a guest is named.
pub const BUILTIN: &str = "cohort";

fn render_logs(logs: &[LogLine]) -> String {
    let mut out = String::new();
    for line in logs {
        let _ = write!(out, "\nguest log: {line}");
    }
    out
}

/// The bytes of a guest: `cohort` is the built-in plugin
/// ([`crate::artifacts::PLUGIN_WASM`]), anything else a path (`./cohort`
/// for a file of that name).
pub fn read_guest(arg: &str) -> Result<Vec<u8>> {
    let path = if arg == BUILTIN {
        PathBuf::from(crate::artifacts::PLUGIN_WASM)
    } else {
        PathBuf::from(arg)
    };
    std::fs::read(&path).map_err(|source| anyhow!("cannot read {}: {source}", path.display()))
}

/// A configuration given on the command line: JSON text, or `@path` for a
/// file holding JSON.
pub fn parse_config_arg(arg: &str) -> Result<Value> {
    let (text, origin) = match arg.strip_prefix('@') {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| anyhow!("cannot read {path}: {source}"))?;
            (text, format!("in {path}"))
        }
        None => (arg.to_owned(), "given".to_owned()),
    };
    serde_json::from_str(&text)
        .map_err(|source| anyhow!("the configuration {origin} is not valid JSON: {source}"))
}

/// [`Guest::load`], keeping the lines the guest logs while it starts so that
/// a refusal says why (Cohort logs the offending field, then exits 1).
/// Lines also still go to a sink already set in `options`.
pub fn load_guest(wasm: &[u8], options: HostOptions) -> Result<Guest> {
    let seen: Arc<Mutex<Vec<LogLine>>> = Arc::default();
    let previous = options.log_sink.clone();
    let recorder = Arc::clone(&seen);
    let options = options.log_sink(move |line| {
        if let Ok(mut lines) = recorder.lock() {
            lines.push(line.clone());
        }
        if let Some(sink) = &previous {
            sink(line);
        }
    });
    Guest::load(wasm, options).map_err(|error| {
        let logs = seen.lock().map(|l| l.clone()).unwrap_or_default();
        anyhow!("{error}{}", render_logs(&logs))
    })
}

/// A request described as curl's arguments describe one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// `-X`; `GET`, or `POST` when there is a body.
    pub method: Option<String>,
    /// A path (`/cart?x=1`) or a URL (`http://shop.example.com/cart`),
    /// whose authority becomes the `Host` header.
    pub uri: String,
    /// `-H 'Name: value'`, in order.
    pub headers: Vec<String>,
    /// `--data`; `@file` reads a file.
    pub data: Option<String>,
    /// `--from IP:PORT`, the client address the guest sees.
    pub from: Option<String>,
}

impl Default for RequestSpec {
    fn default() -> Self {
        RequestSpec {
            method: None,
            uri: "/".to_owned(),
            headers: Vec::new(),
            data: None,
            from: None,
        }
    }
}

impl RequestSpec {
    /// The request. `Host` defaults to the URL's authority, else `localhost`.
    pub fn build(&self) -> Result<Request> {
        let (authority, target) = split_url(&self.uri)?;
        let body = match &self.data {
            None => Vec::new(),
            Some(data) => match data.strip_prefix('@') {
                Some(path) => {
                    std::fs::read(path).map_err(|source| anyhow!("cannot read {path}: {source}"))?
                }
                None => data.clone().into_bytes(),
            },
        };
        let method = match &self.method {
            Some(m) if m.is_empty() || !m.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(anyhow!("{m:?} is not a method"));
            }
            Some(m) => m.clone(),
            None if self.data.is_some() => "POST".to_owned(),
            None => "GET".to_owned(),
        };
        let mut request = Request::new(method, target);
        if let Some(from) = &self.from {
            from.parse::<SocketAddr>().map_err(|_| {
                anyhow!("--from {from:?} is not IP:PORT (e.g. 10.0.0.1:5555 or [::1]:5555)")
            })?;
            request = request.source_addr(from.clone());
        }
        let mut has_host = false;
        for header in &self.headers {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| anyhow!("header {header:?} is not 'Name: value'"))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(anyhow!("header {header:?} has no valid field name"));
            }
            has_host |= name.eq_ignore_ascii_case("host");
            request = request.header(name, value.trim());
        }
        if !has_host {
            let host = authority.unwrap_or_else(|| "localhost".to_owned());
            // Host goes first, where a client writes it.
            let mut headers = crate::model::Headers::new();
            headers.append("Host", host);
            for (n, v) in request.headers.iter() {
                headers.append(n, v);
            }
            request.headers = headers;
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        Ok(request)
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `(authority, path-and-query)` of a path or an `http(s)://` URL.
fn split_url(uri: &str) -> Result<(Option<String>, String)> {
    let rest = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"));
    match rest {
        Some(rest) => {
            let (authority, path) = match rest.find(['/', '?']) {
                Some(i) => rest.split_at(i),
                None => (rest, "/"),
            };
            if authority.is_empty() {
                return Err(anyhow!("{uri:?} has no host"));
            }
            let path = if path.starts_with('?') {
                format!("/{path}")
            } else {
                path.to_owned()
            };
            Ok((Some(authority.to_owned()), path))
        }
        None if uri.starts_with('/') || uri == "*" => Ok((None, uri.to_owned())),
        None => Err(anyhow!(
            "{uri:?} is neither a path (/...) nor an http:// URL"
        )),
    }
}

/// The request as it would go on the wire, each line prefixed `> ` (curl
/// `-v` style), then the body as text.
pub fn render_request(request: &Request) -> String {
    let mut out = format!(
        "> {} {} {}\n",
        request.method, request.uri, request.protocol
    );
    for (n, v) in request.headers.iter() {
        let _ = writeln!(out, "> {n}: {v}");
    }
    out.push_str(">\n");
    if !request.body.is_empty() {
        out.push_str(&request.body_text());
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The response as `curl -i` prints it: status line, headers, empty line,
/// body (and trailers after it, if any).
pub fn render_response(response: &Response) -> String {
    let mut out = format!(
        "HTTP/1.1 {} {}\n",
        response.status,
        reason_phrase(response.status)
    );
    for (n, v) in response.headers.iter() {
        let _ = writeln!(out, "{n}: {v}");
    }
    out.push('\n');
    out.push_str(&response.body_text());
    if !response.trailers.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        for (n, v) in response.trailers.iter() {
            let _ = writeln!(out, "{n}: {v}");
        }
    }
    out
}

/// The standard reason phrase of a status code (empty when unknown).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_request_like_curl() {
        let spec = RequestSpec {
            method: None,
            uri: "http://shop.example.com:8080?x=1".into(),
            headers: vec!["Cookie: canary=v2".into(), "X-Empty:".into()],
            data: Some("hello".into()),
            from: Some("10.1.2.3:4444".into()),
        };
        let request = spec.build().expect("valid");
        assert_eq!(request.method, "POST");
        assert_eq!(request.uri, "/?x=1");
        assert_eq!(request.source_addr, "10.1.2.3:4444");
        assert_eq!(
            request.headers.iter().collect::<Vec<_>>(),
            [
                ("Host", "shop.example.com:8080"),
                ("Cookie", "canary=v2"),
                ("X-Empty", "")
            ]
        );
        assert_eq!(request.body, b"hello");
    }

    #[test]
    fn refuses_malformed_arguments() {
        let bad = |spec: RequestSpec| spec.build().expect_err("invalid").to_string();
        assert!(
            bad(RequestSpec {
                headers: vec!["NoColon".into()],
                ..RequestSpec::default()
            })
            .contains("NoColon")
        );
        assert!(
            bad(RequestSpec {
                from: Some("10.0.0.1".into()),
                ..RequestSpec::default()
            })
            .contains("--from")
        );
        assert!(
            bad(RequestSpec {
                uri: "cart".into(),
                ..RequestSpec::default()
            })
            .contains("cart")
        );
    }

    #[test]
    fn renders_like_curl() {
        let response = Response::new(404).header("Set-Cookie", "a=b").body("gone");
        assert_eq!(
            render_response(&response),
            "HTTP/1.1 404 Not Found\nSet-Cookie: a=b\n\ngone"
        );
        let request = Request::get("/x").header("Host", "h");
        assert_eq!(
            render_request(&request),
            "> GET /x HTTP/1.1\n> Host: h\n>\n"
        );
    }

    #[test]
    fn config_arg_is_json_or_a_file() {
        assert_eq!(
            parse_config_arg(r#"{"seed":"s"}"#).expect("json"),
            serde_json::json!({"seed": "s"})
        );
        let err = parse_config_arg("{seed").expect_err("not json").to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = parse_config_arg("@/nonexistent/cohort.json")
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/cohort.json"), "{err}");
    }
}
