//! http-wasm-host-go's own example and error guests run through the
//! `cohort-harness` CLI, held to what host-go's tests expect of them
//! (`handler/nethttp/example_test.go`, `handler/nethttp/middleware_test.go`,
//! `handler/middleware_test.go`). The guests are our own WAT with the same
//! behaviour (`cohort_test_support::host_go`,
//! `harness/test-support/guests/host-go/`); each file's header says which
//! host-go guest it mirrors.
//!
//! `run`'s echo backend answers 200 with the request it got as the body, so
//! where host-go's next handler writes a fixed body these tests look at what
//! the backend received (the `> ` lines) and at the echo.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use cohort_harness::whoami::Pod;

use cohort_test_support::host_go;

use super::cli::{TempDir, harness, stderr, stdout};

/// host-go guest `name`, compiled into `dir`; its path.
fn guest(dir: &TempDir, name: &str) -> String {
    let source = host_go::source(name).unwrap_or_else(|| panic!("no host-go guest {name}"));
    let path = dir.0.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(source).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `run` with `args`, which must succeed; its stdout.
fn run_ok(args: &[&str]) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let out = harness(&all);
    assert!(
        out.status.success(),
        "{args:?}:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `run` with `args`, which must fail.
fn run_fails(args: &[&str]) -> Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let out = harness(&all);
    assert!(
        !out.status.success(),
        "{args:?} succeeded:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

const DID_NOT_CALL_NEXT: &str = "* the guest did not call next";

/// Example_auth: no Authorization is a 401 with the challenge, an empty or
/// wrong one a 401 without it, the right one reaches the backend.
#[test]
fn auth_challenges_without_credentials_and_passes_the_right_ones() {
    let dir = TempDir::new("host-go-auth");
    let auth = guest(&dir, "auth");
    let challenge = "\nWWW-Authenticate: Basic realm=\"test\"\n";

    for (header, challenged) in [
        ("NotAuthorization: 1", true),
        ("Authorization:", false),
        ("Authorization: 0", false),
    ] {
        let text = run_ok(&[&auth, "-H", header]);
        assert!(text.starts_with(DID_NOT_CALL_NEXT), "{header}: {text}");
        assert!(
            text.contains("\nHTTP/1.1 401 Unauthorized\n"),
            "{header}: {text}"
        );
        assert_eq!(text.contains(challenge), challenged, "{header}: {text}");
    }

    let right = "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
    let text = run_ok(&[&auth, "-H", right]);
    assert!(text.contains(&format!("\n> {right}\n")), "{text}");
    assert!(text.contains("\nHTTP/1.1 200 OK\n"), "{text}");
    assert!(!text.contains(challenge), "{text}");
}

/// TestConfig: the configuration is eight raw bytes of feature bits; the
/// guest loads for each set host-go tries, and the bodies pass intact. Any
/// other length traps at start-up, which `run` refuses.
#[test]
fn config_gets_the_raw_bytes_and_enables_the_features_they_name() {
    let dir = TempDir::new("host-go-config");
    let config = guest(&dir, "config");
    let body = r#"{"hello": "panda"}"#;
    for features in [0u64, 1, 2, 4, 1 | 2, 1 | 2 | 4] {
        let file = dir.0.join(format!("features-{features}"));
        std::fs::write(&file, features.to_le_bytes()).unwrap();
        let arg = format!("@{}", file.display());
        for mode in [None, Some("--native")] {
            let mut args = vec![config.as_str(), "--config-raw", &arg, "-d", body];
            args.extend(mode);
            let text = run_ok(&args);
            // The backend read the request body, the client the echo.
            assert!(
                text.contains(&format!("\n>\n{body}\nHTTP/1.1 200 OK\n")),
                "{features} {mode:?}: {text}"
            );
            assert!(text.ends_with(&format!("\n\n{body}")), "{features}: {text}");
        }
    }

    let out = run_fails(&[&config, "--config-raw", "abc"]);
    let err = stderr(&out);
    assert!(err.contains("error instantiating guest"), "{err}");
    assert!(err.contains("unreachable"), "{err}");
}

/// Example_log: with info on and debug off the guest logs "hello world" at
/// info, printed by `run`; with debug on it traps, as it insists.
#[test]
fn log_prints_hello_world_at_info_and_the_guest_sees_debug_off() {
    let dir = TempDir::new("host-go-log");
    let log = guest(&dir, "log");

    let out = harness(&["run", &log, "--native", "--log-level", "info"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("* guest log: [info] hello world\n"), "{err}");
    assert!(stdout(&out).contains("\nHTTP/1.1 200 OK\n"));

    // Below info, nothing is printed, and still debug is off.
    let out = harness(&["run", &log, "--native", "--log-level", "warn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hello world"), "{}", stderr(&out));

    let out = run_fails(&[&log, "--native", "--log-level", "debug"]);
    assert!(stdout(&out).contains("HTTP/1.1 500 "), "{}", stdout(&out));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));

    // Traefik's logger says every level is enabled, so there the guest traps.
    let out = run_fails(&[&log, "--log-level", "info"]);
    assert!(stdout(&out).contains("HTTP/1.1 500 "), "{}", stdout(&out));
}

/// Example_redact: the configured secret is hashed out of the request body
/// (what the backend got) and out of the response body.
#[test]
fn redact_hashes_the_secret_out_of_both_bodies() {
    let dir = TempDir::new("host-go-redact");
    let redact = guest(&dir, "redact");
    let secret = "open sesame";
    for (body, redacted) in [
        (secret, "###########"),
        ("hello world", "hello world"),
        ("hello open sesame world", "hello ########### world"),
    ] {
        let text = run_ok(&[&redact, "--config-raw", secret, "-d", body]);
        assert!(
            text.contains(&format!("\n>\n{redacted}\nHTTP/1.1 200 OK\n")),
            "{body}: {text}"
        );
        assert!(text.ends_with(&format!("\n\n{redacted}")), "{body}: {text}");
    }

    // The response's own redaction: the secret in a request header reaches
    // the backend, whose echo of it comes back hashed.
    let text = run_ok(&[
        &redact,
        "--config-raw",
        secret,
        "-H",
        "X-Secret: open sesame",
    ]);
    assert!(text.contains("\n> X-Secret: open sesame\n"), "{text}");
    assert!(text.contains("\nX-Secret: ###########\n"), "{text}");

    // No secret configured: the guest traps at start-up.
    let out = run_fails(&[&redact, "--config-raw", ""]);
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
}

/// Example_router: "/" and "/nothosst" are answered by the guest with
/// "hello world"; "/host/a" reaches the backend as "/a".
#[test]
fn router_serves_hello_world_or_strips_host_and_passes_on() {
    let dir = TempDir::new("host-go-router");
    let router = guest(&dir, "router");
    for path in ["/", "/nothosst"] {
        let text = run_ok(&[&router, path]);
        assert!(text.starts_with(DID_NOT_CALL_NEXT), "{path}: {text}");
        assert!(
            text.ends_with("\nHTTP/1.1 200 OK\nContent-Type: text/plain\n\nhello world"),
            "{path}: {text}"
        );
    }
    let text = run_ok(&[&router, "/host/a"]);
    assert!(text.starts_with("> GET /a HTTP/1.1\n"), "{text}");
    assert!(!text.contains("hello world"), "{text}");
}

/// Example_wasi: with the guest's stdout wired through (`--guest-stdio`),
/// it prints the request and the response; without, Traefik's way, nothing.
#[test]
fn wasi_prints_the_request_and_response_with_guest_stdio() {
    let dir = TempDir::new("host-go-wasi");
    let wasi = guest(&dir, "wasi");
    let body = r#"{"hello": "panda"}"#;
    let request = [
        wasi.as_str(),
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
    ];

    let mut args = request.to_vec();
    args.push("--guest-stdio");
    let text = run_ok(&args);
    // Header names come lower-cased and sorted, as in host-go's output.
    let printed_request =
        format!("POST / HTTP/1.1\ncontent-type: application/json\nhost: localhost\n\n{body}\n");
    assert!(text.starts_with(&printed_request), "{text}");
    // Then a blank line, the response line without the reason, and the
    // echo backend's body (the request it got).
    let printed_response = format!("{printed_request}\nHTTP/1.1 200\n\nPOST / HTTP/1.1\n");
    assert!(text.starts_with(&printed_response), "{text}");
    // And `run`'s own transcript after it.
    assert!(text.contains("\n> POST / HTTP/1.1\n"), "{text}");

    let text = run_ok(&request);
    assert!(text.starts_with("> POST / HTTP/1.1\n"), "{text}");
    assert!(!text.contains("host: localhost"), "{text}");
}

/// TestNewMiddleware "panic on _start": the guest is refused before any
/// request, by `check` and by `run`.
#[test]
fn panic_on_start_is_refused_by_check_and_run() {
    let dir = TempDir::new("host-go-panic-start");
    let guest = guest(&dir, "panic_on_start");

    let out = harness(&["check", &guest]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("start-up: failed: "), "{text}");
    assert!(text.contains("_start"), "{text}");
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.ends_with("verdict: refused\n"), "{text}");

    let out = run_fails(&[&guest, "--guest-stdio"]);
    let err = stderr(&out);
    assert!(err.contains("loading the guest"), "{err}");
    assert!(err.contains("unreachable"), "{err}");
    // What it printed before trapping, and no request.
    assert_eq!(stdout(&out), "panic!");
}

/// TestMiddlewareHandleRequest_Error and TestMiddlewareHandleResponse_Error
/// "panic": the guest loads, and the request fails with the trap, a 500;
/// before the backend when handle_request traps, after it when
/// handle_response does.
#[test]
fn a_panic_in_handle_request_or_handle_response_fails_the_request_with_a_500() {
    let dir = TempDir::new("host-go-panics");
    for (name, export, printed) in [
        (
            "panic_on_handle_request",
            "handle_request",
            "panic!* the guest did not call next",
        ),
        (
            "panic_on_handle_response",
            "handle_response",
            "panic!> GET / HTTP/1.1\n",
        ),
    ] {
        let guest = guest(&dir, name);
        let out = harness(&["check", &guest]);
        assert!(out.status.success(), "{name}: {}", stdout(&out));
        assert!(stdout(&out).ends_with("start-up: ok\nverdict: loads\n"));

        let out = run_fails(&[&guest, "--guest-stdio"]);
        let text = stdout(&out);
        // What the guest printed before trapping, then `run`'s transcript.
        assert!(text.starts_with(printed), "{name}: {text}");
        assert!(text.contains("\nHTTP/1.1 500 "), "{name}: {text}");
        let err = stderr(&out);
        assert!(err.contains(&format!("wasm error in {export}")), "{err}");
        assert!(err.contains("unreachable"), "{err}");
    }
}

/// TestMiddlewareHandleResponse_Error "set_header_value request": setting
/// a request header in handle_response is host-go's error.
#[test]
fn set_request_header_after_next_is_host_gos_error() {
    let dir = TempDir::new("host-go-header-after-next");
    let guest = guest(&dir, "set_request_header_after_next");
    for mode in [None, Some("--native")] {
        let mut args = vec![guest.as_str()];
        args.extend(mode);
        let out = run_fails(&args);
        let text = stdout(&out);
        assert!(text.starts_with("> GET / HTTP/1.1\n"), "{mode:?}: {text}");
        assert!(text.contains("\nHTTP/1.1 500 "), "{mode:?}: {text}");
        let err = stderr(&out);
        assert!(
            err.contains("can't set request header after next handler"),
            "{mode:?}: {err}"
        );
    }
}

/// `cohort-harness serve` in a child process on a free loopback port,
/// killed when dropped; its stderr lines come through a channel.
struct Serve {
    child: Child,
    stderr: Receiver<String>,
    addr: String,
}

impl Serve {
    /// Serves `args` (the guest and its flags) in front of `upstream`, once
    /// it says where it listens.
    fn start(args: &[&str], upstream: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cohort-harness"))
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, stderr) = channel();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let line = stderr.recv_timeout(Duration::from_secs(60)).unwrap();
        let addr = line
            .split(" on http://")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("serve did not say where it listens: {line}"))
            .to_owned();
        Serve {
            child,
            stderr,
            addr,
        }
    }

    /// `GET /` with `headers`; the whole response as text.
    fn get(&self, headers: &str) -> String {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// The next stderr line containing `needle`, within ten seconds.
    fn stderr_line(&self, needle: &str) -> Option<String> {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(10)) {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` runs the host-go guests as `run` does: auth answers 401 with
/// the challenge or passes on to the real upstream; log's line is printed
/// at the level asked for.
#[test]
fn serve_runs_host_go_auth_and_log_in_front_of_a_real_upstream() {
    let dir = TempDir::new("host-go-serve");
    let pod = Pod::start("app", "app-0").unwrap();

    let auth = guest(&dir, "auth");
    let serve = Serve::start(&[&auth], &pod.url());
    let refused = serve.get("");
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
    assert!(
        refused.contains("\r\nWWW-Authenticate: Basic realm=\"test\"\r\n"),
        "{refused}"
    );
    let passed = serve.get("Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n");
    assert!(passed.starts_with("HTTP/1.1 200 "), "{passed}");
    assert!(passed.contains("app-0"), "the upstream answered: {passed}");
    drop(serve);

    let log = guest(&dir, "log");
    let serve = Serve::start(&[&log, "--native", "--log-level", "info"], &pod.url());
    let response = serve.get("");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    assert_eq!(
        serve.stderr_line("hello world").as_deref(),
        Some("guest log: [info] hello world")
    );
}
