//! Golden transcripts: a request and a configuration in, what the backend
//! received and what the client got out, for Cohort's real `plugin.wasm` in
//! Traefik-faithful mode.
//!
//! Each `testdata/transcripts/*.txt` file holds, top to bottom:
//!
//! ```text
//! # comments
//! config: {"variants": [...]}          JSON, may span several lines
//! source: 192.0.2.7:50000              optional client address
//! ---
//! GET /path HTTP/1.1                   the request as the client sent it
//! Cookie: a=b
//!
//! === backend request                  everything from here on is
//! GET /path HTTP/1.1                   written by `BLESS=1`
//! ...
//! === response
//! HTTP/1.1 200
//! Set-Cookie: ...
//! ```
//!
//! Generated visitor ids are normalised to `<visitor-id>` (they hash the
//! real wall clock). Run `BLESS=1 cargo test -p cohort-harness --test all
//! transcripts` to rewrite the expected parts after a deliberate change,
//! then review the diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cohort_harness::{HostOptions, Request, Response};
use serde_json::Value;

use crate::cohort::{is_visitor_id, load, send};

const EXPECTED: &str = "=== backend request";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/transcripts")
}

/// The input part of a transcript: configuration, client address, request.
struct Input {
    /// The file's text up to the expected part, kept verbatim on `BLESS`.
    text: String,
    config: Value,
    request: Request,
}

fn parse(path: &Path, text: &str) -> Input {
    let fail = |why: &str| -> ! { panic!("{}: {why}", path.display()) };
    let input = text.split(EXPECTED).next().unwrap_or_default();
    let (settings, request) = input
        .split_once("\n---\n")
        .unwrap_or_else(|| fail("no `---` line between settings and request"));
    let mut config = String::new();
    let mut source = None;
    let mut in_config = false;
    for line in settings.lines().filter(|l| !l.starts_with('#')) {
        if let Some(json) = line.strip_prefix("config:") {
            in_config = true;
            config.push_str(json);
        } else if let Some(addr) = line.strip_prefix("source:") {
            in_config = false;
            source = Some(addr.trim().to_owned());
        } else if in_config {
            config.push('\n');
            config.push_str(line);
        } else if !line.trim().is_empty() {
            fail(&format!("unknown setting line {line:?}"));
        }
    }
    let config: Value =
        serde_json::from_str(&config).unwrap_or_else(|e| fail(&format!("config: {e}")));
    let mut lines = request.lines().filter(|l| !l.is_empty());
    let start = lines.next().unwrap_or_else(|| fail("no request line"));
    let mut parts = start.split(' ');
    let (Some(method), Some(uri), Some(protocol)) = (parts.next(), parts.next(), parts.next())
    else {
        fail(&format!("bad request line {start:?}"))
    };
    let mut request = Request::new(method, uri).protocol(protocol);
    for line in lines {
        let (name, value) = line
            .split_once(": ")
            .unwrap_or_else(|| fail(&format!("bad header line {line:?}")));
        request = request.header(name, value);
    }
    if let Some(addr) = &source {
        request = request.source_addr(addr.clone());
    }
    Input {
        text: input.trim_end().to_owned(),
        config,
        request,
    }
}

fn render_request(out: &mut String, r: &Request) {
    let _ = writeln!(out, "{} {} {}", r.method, r.uri, r.protocol);
    for (name, value) in r.headers.iter() {
        let _ = writeln!(out, "{name}: {value}");
    }
}

fn render_response(out: &mut String, r: &Response) {
    let _ = writeln!(out, "HTTP/1.1 {}", r.status);
    for (name, value) in r.headers.iter() {
        let _ = writeln!(out, "{name}: {value}");
    }
}

/// Runs the input and renders the whole transcript (input included).
fn run(input: &Input) -> String {
    let guest = load(HostOptions::traefik().config_json(input.config.clone()));
    let v = send(&guest, input.request.clone());
    let mut out = format!("{}\n\n{EXPECTED}\n", input.text);
    render_request(&mut out, v.backend());
    out.push_str("\n=== response\n");
    render_response(&mut out, &v.ex.response);
    // Generated ids are new every run: name them.
    for id in v.set_cookies().iter().filter_map(|c| {
        c.split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, value)| value)
            .filter(|value| is_visitor_id(value))
    }) {
        out = out.replace(id, "<visitor-id>");
    }
    out
}

/// The lines that differ, `-` expected and `+` got, by line number.
fn diff(expected: &str, got: &str) -> String {
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(g.len()) {
        let (a, b) = (e.get(i), g.get(i));
        if a != b {
            let _ = writeln!(out, "line {}:", i + 1);
            if let Some(a) = a {
                let _ = writeln!(out, "-{a}");
            }
            if let Some(b) = b {
                let _ = writeln!(out, "+{b}");
            }
        }
    }
    if out.is_empty() {
        out.push_str("(differ in line endings or a final newline)\n");
    }
    out
}

#[test]
fn transcripts_match() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("testdata/transcripts")
        .map(|entry| entry.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 5,
        "expected the transcripts, found {paths:?}"
    );
    let mut failed = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("readable");
        let got = run(&parse(path, &text));
        if got == text {
            continue;
        }
        if bless {
            std::fs::write(path, &got).expect("writable");
            println!("blessed {}", path.display());
        } else {
            failed.push(format!("{}:\n{}", path.display(), diff(&text, &got)));
        }
    }
    assert!(
        failed.is_empty(),
        "{} transcript(s) differ (BLESS=1 rewrites them):\n{}",
        failed.len(),
        failed.join("\n")
    );
}
