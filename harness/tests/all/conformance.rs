//! Conformance of the host to the http-wasm handler ABI, one tiny `.wat`
//! guest per host function and per violation, compiled at test time.
//!
//! Every guest gets the same prelude: all `http_handler` imports, three WASI
//! imports, two pages of exported memory, and helpers:
//!
//! * `$respond(ptr, len)`: append bytes to the response body;
//! * `$respond_packed(i64)`: append a packed result as 8 little-endian bytes;
//! * `$fetch(which, limit)`: call a `get_*` function (0 config, 1 method,
//!   2 uri, 3 protocol, 4 source addr) into offset 4096 with `limit`, and
//!   retry with the full length when it did not fit (the `buf_limit` path).
//!
//! A guest that does not export `handle_response` gets a no-op one.

use std::sync::{Arc, Mutex};

use cohort_harness::abi::{pack_count_len, pack_eof_len};
use cohort_harness::{
    Backend, BackendError, CheckPolicy, EchoBackend, Error, Exchange, Features, Guest, HostOptions,
    Import, LogLevel, Request, Response,
};
use serde_json::json;

const PRELUDE: &str = r#"
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "log_enabled" (func $log_enabled (param i32) (result i32)))
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (import "http_handler" "get_method" (func $get_method (param i32 i32) (result i32)))
  (import "http_handler" "set_method" (func $set_method (param i32 i32)))
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_uri" (func $set_uri (param i32 i32)))
  (import "http_handler" "get_protocol_version" (func $get_protocol_version (param i32 i32) (result i32)))
  (import "http_handler" "get_source_addr" (func $get_source_addr (param i32 i32) (result i32)))
  (import "http_handler" "get_header_names" (func $get_header_names (param i32 i32 i32) (result i64)))
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "add_header_value" (func $add_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "remove_header" (func $remove_header (param i32 i32 i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "get_status_code" (func $get_status_code (result i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (type $getter (func (param i32 i32) (result i32)))
  (table 5 funcref)
  (elem (i32.const 0) $get_config $get_method $get_uri $get_protocol_version $get_source_addr)
  (func $respond (param $ptr i32) (param $len i32)
    (call $write_body (i32.const 1) (local.get $ptr) (local.get $len)))
  (func $respond_packed (param $v i64)
    (i64.store (i32.const 65000) (local.get $v))
    (call $write_body (i32.const 1) (i32.const 65000) (i32.const 8)))
  (func $fetch (param $which i32) (param $limit i32) (result i32)
    (local $len i32)
    (local.set $len
      (call_indirect (type $getter) (i32.const 4096) (local.get $limit) (local.get $which)))
    (if (i32.gt_u (local.get $len) (local.get $limit))
      (then (drop (call_indirect (type $getter)
        (i32.const 4096) (local.get $len) (local.get $which)))))
    (local.get $len))
"#;

/// A complete guest module around `body`.
fn wat(body: &str) -> Vec<u8> {
    let response = if body.contains(r#"(export "handle_response")"#) {
        ""
    } else {
        r#"(func (export "handle_response") (param i32 i32))"#
    };
    let text = format!("(module {PRELUDE} {body} {response})");
    wat::parse_str(&text).unwrap_or_else(|e| panic!("bad test guest: {e}\n{text}"))
}

/// A guest whose `handle_request` is `code` (which must leave an i64).
fn on_request(code: &str) -> String {
    format!(r#"(func (export "handle_request") (result i64) {code})"#)
}

fn load_with(body: &str, options: HostOptions) -> Guest {
    Guest::load(&wat(body), options).expect("guest loads")
}

fn load(body: &str) -> Guest {
    load_with(body, HostOptions::default())
}

fn load_err(body: &str, options: HostOptions) -> Error {
    Guest::load(&wat(body), options).expect_err("guest is refused")
}

fn serve_with(guest: &Guest, request: Request, backend: &EchoBackend) -> Exchange {
    guest.handle(request, backend).expect("the harness serves")
}

fn serve(guest: &Guest, request: Request) -> Exchange {
    serve_with(guest, request, &EchoBackend::new())
}

/// Split a body made by `$respond_packed` + data into (packed, data).
fn packed(body: &[u8]) -> (u64, &[u8]) {
    let (head, rest) = body.split_at(8);
    (u64::from_le_bytes(head.try_into().unwrap()), rest)
}

// ---------------------------------------------------------------------------
// One import at a time.

#[test]
fn get_method_and_the_buf_limit_rule() {
    let guest = load(&on_request(
        "(call $respond (i32.const 4096) (call $fetch (i32.const 1) (i32.const 2))) (i64.const 0)",
    ));
    let ex = serve(&guest, Request::new("PATCH", "/"));
    assert_eq!(ex.response.body, b"PATCH");
    // 5 bytes do not fit in 2: one call learns the length, one reads.
    assert_eq!(ex.host_calls.get(Import::GetMethod), 2);
    assert_eq!(ex.response.status, 200);
    assert!(!ex.next_called());
}

#[test]
fn a_value_that_does_not_fit_is_not_written() {
    let guest = load(&format!(
        r#"(data (i32.const 4096) "XXXX") {}"#,
        on_request(
            "(call $respond_packed (i64.extend_i32_u (call $get_uri (i32.const 4096) (i32.const 4))))
             (call $respond (i32.const 4096) (i32.const 4)) (i64.const 0)"
        )
    ));
    let ex = serve(&guest, Request::get("/abcdef"));
    let (len, data) = packed(&ex.response.body);
    assert_eq!(len, 7);
    assert_eq!(data, b"XXXX");
}

#[test]
fn get_uri_over_2048_bytes_takes_the_retry_path() {
    let guest = load(&on_request(
        "(call $respond (i32.const 4096) (call $fetch (i32.const 2) (i32.const 2048))) (i64.const 0)",
    ));
    let uri = format!("/{}", "u".repeat(3000));
    let ex = serve(&guest, Request::get(uri.clone()));
    assert_eq!(ex.response.body, uri.as_bytes());
    assert_eq!(ex.host_calls.get(Import::GetUri), 2);
    let short = serve(&guest, Request::get("/short"));
    assert_eq!(short.response.body, b"/short");
    assert_eq!(short.host_calls.get(Import::GetUri), 1);
}

#[test]
fn get_protocol_version_and_source_addr() {
    let guest = load(&on_request(
        "(call $respond (i32.const 4096) (call $fetch (i32.const 3) (i32.const 64)))
         (call $respond (i32.const 4096) (call $fetch (i32.const 4) (i32.const 64)))
         (i64.const 0)",
    ));
    let ex = serve(
        &guest,
        Request::get("/")
            .protocol("HTTP/2.0")
            .source_addr("[fe80::1]:5555"),
    );
    assert_eq!(ex.response.body_text(), "HTTP/2.0[fe80::1]:5555");
}

#[test]
fn set_method_and_set_uri_reach_next() {
    let guest = load(&format!(
        r#"(data (i32.const 100) "PUT") (data (i32.const 200) "/new path?x=1") {}"#,
        on_request(
            "(call $set_method (i32.const 100) (i32.const 3))
             (call $set_uri (i32.const 200) (i32.const 13)) (i64.const 1)"
        )
    ));
    let backend = EchoBackend::new();
    let ex = serve_with(&guest, Request::get("/old"), &backend);
    let sent = backend.last().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.uri.as_str()),
        ("PUT", "/new%20path?x=1")
    );
    assert_eq!(ex.backend_request.as_ref(), Some(&sent));
    assert_eq!(ex.response.body_text(), "PUT /new%20path?x=1 HTTP/1.1\n\n");
}

#[test]
fn set_uri_empty_means_root() {
    let guest = load(&on_request(
        "(call $set_uri (i32.const 0) (i32.const 0)) (i64.const 1)",
    ));
    let backend = EchoBackend::new();
    serve_with(&guest, Request::get("/somewhere?q"), &backend);
    assert_eq!(backend.last().unwrap().uri, "/");
}

#[test]
fn get_header_names_lists_sorted_lowercase_distinct_names() {
    let guest = load(&on_request(
        "(local $r i64)
         (local.set $r (call $get_header_names (i32.const 0) (i32.const 4096) (i32.const 60000)))
         (call $respond_packed (local.get $r))
         (call $respond (i32.const 4096) (i32.wrap_i64 (local.get $r)))
         (i64.const 0)",
    ));
    let request = Request::get("/")
        .header("X-Zeta", "1")
        .header("accept", "*/*")
        .header("Host", "example.com")
        .header("x-zeta", "2");
    let ex = serve(&guest, request);
    let (count_len, names) = packed(&ex.response.body);
    assert_eq!(names, b"accept\0host\0x-zeta\0");
    assert_eq!(count_len, pack_count_len(3, 19));
}

/// A guest answering with the packed result of `get_header_values` for the
/// six-byte header `name` (limit 60000), then the values.
fn header_values_guest(name: &str) -> Guest {
    assert_eq!(name.len(), 6);
    load(&format!(
        r#"(data (i32.const 100) "{name}") {}"#,
        on_request(
            "(local $r i64)
             (local.set $r (call $get_header_values (i32.const 0) (i32.const 100) (i32.const 6)
                                                    (i32.const 4096) (i32.const 60000)))
             (call $respond_packed (local.get $r))
             (call $respond (i32.const 4096) (i32.wrap_i64 (local.get $r)))
             (i64.const 0)"
        )
    ))
}

#[test]
fn get_header_values_returns_every_value_nul_separated() {
    // Names are case-insensitive: the guest asks for `COOKIE`.
    let guest = header_values_guest("COOKIE");
    let ex = serve(
        &guest,
        Request::get("/")
            .header("Cookie", "a=1")
            .header("X", "y")
            .header("cookie", "b=2"),
    );
    let (count_len, values) = packed(&ex.response.body);
    assert_eq!(values, b"a=1\0b=2\0");
    assert_eq!(count_len, pack_count_len(2, 8));
    let none = serve(&guest, Request::get("/"));
    assert_eq!(packed(&none.response.body), (0, &b""[..]));
}

#[test]
fn large_header_values_come_back_whole() {
    // A cookie over 2 KiB: the first call (limit 2048) only learns the size.
    let guest = load(&format!(
        r#"(data (i32.const 100) "Cookie") {}"#,
        on_request(
            "(local $r i64)
             (local.set $r (call $get_header_values (i32.const 0) (i32.const 100) (i32.const 6)
                                                    (i32.const 4096) (i32.const 2048)))
             (if (i64.gt_u (i64.and (local.get $r) (i64.const 0xffffffff)) (i64.const 2048))
               (then (local.set $r (call $get_header_values (i32.const 0) (i32.const 100) (i32.const 6)
                      (i32.const 4096) (i32.wrap_i64 (local.get $r))))))
             (call $respond (i32.const 4096) (i32.wrap_i64 (local.get $r)))
             (i64.const 0)"
        )
    ));
    let cookie = format!("big={}", "c".repeat(5000));
    let ex = serve(&guest, Request::get("/").header("Cookie", cookie.clone()));
    assert_eq!(ex.response.body, format!("{cookie}\0").as_bytes());
    assert_eq!(ex.host_calls.get(Import::GetHeaderValues), 2);
}

/// Bytes that are not UTF-8, with a NUL-free control byte and a quote in them.
const NOT_UTF8: &[u8] = b"a=\xff\xfe\x01; b=\"\x80\xc3\x28\"";

#[test]
fn non_utf8_header_values_reach_the_guest_byte_for_byte() {
    let guest = header_values_guest("Cookie");
    let ex = serve(
        &guest,
        Request::get("/")
            .header_bytes("Cookie", NOT_UTF8)
            .header("Cookie", "plain=1"),
    );
    let (count_len, values) = packed(&ex.response.body);
    let mut want = NOT_UTF8.to_vec();
    want.extend_from_slice(b"\0plain=1\0");
    assert_eq!(values, want.as_slice());
    assert_eq!(count_len, pack_count_len(2, want.len() as u32));
}

#[test]
fn non_utf8_header_values_round_trip_through_the_guest_exactly() {
    // The guest copies every X-In value to X-Out (request) and to a
    // response header, then calls next: bytes in == bytes out, both ways.
    let guest = load(&format!(
        r#"(data (i32.const 100) "X-In") (data (i32.const 110) "X-Out") (data (i32.const 120) "X-Echo") {}"#,
        on_request(
            "(local $r i64) (local $len i32)
             (local.set $r (call $get_header_values (i32.const 0) (i32.const 100) (i32.const 4)
                                                    (i32.const 4096) (i32.const 60000)))
             ;; one value: drop its NUL
             (local.set $len (i32.sub (i32.wrap_i64 (local.get $r)) (i32.const 1)))
             (call $set_header_value (i32.const 0) (i32.const 110) (i32.const 5) (i32.const 4096) (local.get $len))
             (call $add_header_value (i32.const 1) (i32.const 120) (i32.const 6) (i32.const 4096) (local.get $len))
             (i64.const 1)"
        )
    ));
    let backend = EchoBackend::new();
    let ex = serve_with(
        &guest,
        Request::get("/").header_bytes("X-In", NOT_UTF8),
        &backend,
    );
    let sent = backend.last().unwrap();
    assert_eq!(sent.headers.get_bytes("x-out"), Some(NOT_UTF8));
    assert_eq!(sent.headers.get_bytes("x-in"), Some(NOT_UTF8));
    assert_eq!(ex.response.headers.get_bytes("x-echo"), Some(NOT_UTF8));
    // The echo body (what a backend received, as text on the wire) is exact too.
    let line = [b"X-Out: ", NOT_UTF8, b"\n"].concat();
    assert!(
        ex.response
            .body
            .windows(line.len())
            .any(|w| w == line.as_slice()),
        "{:?}",
        ex.response.body.escape_ascii().to_string()
    );
}

#[test]
fn guest_written_non_utf8_bytes_are_stored_exactly() {
    // Bytes written from a data segment, not copied from the request.
    let guest = load(&format!(
        r#"(data (i32.const 100) "X-Raw") (data (i32.const 110) "\ff\80\01\7f") {}"#,
        on_request(
            "(call $set_header_value (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 110) (i32.const 4))
             (call $add_header_value (i32.const 1) (i32.const 100) (i32.const 5) (i32.const 110) (i32.const 4))
             (i64.const 1)"
        )
    ));
    let backend = EchoBackend::new();
    let ex = serve_with(&guest, Request::get("/"), &backend);
    let raw: &[u8] = b"\xff\x80\x01\x7f";
    assert_eq!(
        backend.last().unwrap().headers.get_bytes("X-Raw"),
        Some(raw)
    );
    assert_eq!(ex.response.headers.get_all_bytes("x-raw"), vec![raw]);
    // The text view is lossy, and says so.
    assert_eq!(
        ex.response.headers.get("x-raw"),
        Some("\u{fffd}\u{fffd}\u{1}\u{7f}")
    );
}

#[test]
fn backend_non_utf8_response_headers_reach_the_client_exactly() {
    let guest = load(&on_request("(i64.const 1)"));
    let backend = EchoBackend::new()
        .response_header_bytes("Set-Cookie", NOT_UTF8)
        .response_header("Set-Cookie", "ok=1");
    let ex = serve_with(&guest, Request::get("/"), &backend);
    assert_eq!(
        ex.response.headers.get_all_bytes("set-cookie"),
        vec![NOT_UTF8, b"ok=1"]
    );
}

#[test]
fn set_add_remove_request_headers_reach_next_in_order() {
    let guest = load(&format!(
        r#"(data (i32.const 100) "x-set") (data (i32.const 110) "one")
           (data (i32.const 120) "Accept") (data (i32.const 130) "X-Add") (data (i32.const 140) "two")
           (data (i32.const 150) "x-drop") {}"#,
        on_request(
            "(call $set_header_value (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 110) (i32.const 3))
             (call $set_header_value (i32.const 0) (i32.const 120) (i32.const 6) (i32.const 140) (i32.const 3))
             (call $add_header_value (i32.const 0) (i32.const 130) (i32.const 5) (i32.const 110) (i32.const 3))
             (call $add_header_value (i32.const 0) (i32.const 130) (i32.const 5) (i32.const 140) (i32.const 3))
             (call $remove_header (i32.const 0) (i32.const 150) (i32.const 6))
             (i64.const 1)"
        )
    ));
    let backend = EchoBackend::new();
    let request = Request::get("/")
        .header("accept", "a")
        .header("X-Drop", "gone")
        .header("ACCEPT", "b");
    serve_with(&guest, request, &backend);
    let sent = backend.last().unwrap();
    assert_eq!(
        sent.headers.iter().collect::<Vec<_>>(),
        vec![
            ("Accept", "two"),
            ("x-set", "one"),
            ("X-Add", "one"),
            ("X-Add", "two")
        ]
    );
}

#[test]
fn response_headers_set_before_next_come_before_the_backends() {
    let guest = load(&format!(
        r#"(data (i32.const 100) "Set-Cookie") (data (i32.const 120) "guest=1") {}"#,
        on_request(
            "(call $add_header_value (i32.const 1) (i32.const 100) (i32.const 10) (i32.const 120) (i32.const 7))
             (i64.const 1)"
        )
    ));
    let backend = EchoBackend::new()
        .response_header("Set-Cookie", "backend=2")
        .response_header("Content-Type", "text/plain");
    let ex = serve_with(&guest, Request::get("/"), &backend);
    assert_eq!(
        ex.response.headers.get_all("set-cookie"),
        vec!["guest=1", "backend=2"]
    );
    assert_eq!(ex.response.headers.get("content-type"), Some("text/plain"));
}

#[test]
fn status_fixes_the_headers_sent_like_go_writeheader() {
    // Without buffer_response, set_status_code is WriteHeader: headers set
    // after it are not sent (a Location after a 302 is lost in Traefik).
    let guest = load(&format!(
        r#"(data (i32.const 100) "Location") (data (i32.const 120) "/x") {}"#,
        on_request(
            "(call $set_status_code (i32.const 302))
             (call $set_header_value (i32.const 1) (i32.const 100) (i32.const 8) (i32.const 120) (i32.const 2))
             (i64.const 0)"
        )
    ));
    let ex = serve(&guest, Request::get("/"));
    assert_eq!(ex.response.status, 302);
    assert_eq!(ex.response.headers.get("location"), None);
}

#[test]
fn read_body_over_several_reads_sets_eof_on_the_last() {
    let guest = load(&on_request(
        "(local $r i64) (local $off i32) (local $i i32)
         (local.set $off (i32.const 4096))
         (block $done (loop $more
           (local.set $r (call $read_body (i32.const 0) (local.get $off) (i32.const 7)))
           ;; keep every packed result at 60000 + 8*i
           (i64.store (i32.add (i32.const 60000) (i32.mul (local.get $i) (i32.const 8))) (local.get $r))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (local.set $off (i32.add (local.get $off) (i32.wrap_i64 (local.get $r))))
           (br_if $done (i64.ne (i64.shr_u (local.get $r) (i64.const 32)) (i64.const 0)))
           (br $more)))
         (call $respond (i32.const 60000) (i32.mul (local.get $i) (i32.const 8)))
         (call $respond (i32.const 4096) (i32.sub (local.get $off) (i32.const 4096)))
         (i64.const 0)",
    ));
    let ex = serve(&guest, Request::post("/").body("abcdefghijklmnopqrst"));
    let body = &ex.response.body;
    let results: Vec<u64> = (0..3)
        .map(|i| u64::from_le_bytes(body[i * 8..i * 8 + 8].try_into().unwrap()))
        .collect();
    assert_eq!(
        results,
        vec![
            pack_eof_len(false, 7),
            pack_eof_len(false, 7),
            pack_eof_len(true, 6)
        ]
    );
    assert_eq!(&body[24..], b"abcdefghijklmnopqrst");
    assert_eq!(ex.host_calls.get(Import::ReadBody), 3);
}

/// Reads the request body in 7-byte chunks to EOF, then calls next.
fn read_all_then_next(features: u32) -> String {
    on_request(&format!(
        "(local $r i64)
         (drop (call $enable_features (i32.const {features})))
         (block $done (loop $more
           (local.set $r (call $read_body (i32.const 0) (i32.const 4096) (i32.const 7)))
           (br_if $done (i64.ne (i64.shr_u (local.get $r) (i64.const 32)) (i64.const 0)))
           (br $more)))
         (i64.const 1)"
    ))
}

#[test]
fn reading_the_request_body_without_buffering_consumes_it() {
    let guest = load(&on_request(
        "(drop (call $read_body (i32.const 0) (i32.const 4096) (i32.const 7))) (i64.const 1)",
    ));
    let backend = EchoBackend::new();
    serve_with(
        &guest,
        Request::post("/").body("abcdefghijklmnopqrst"),
        &backend,
    );
    assert_eq!(backend.last().unwrap().body, b"hijklmnopqrst");
}

#[test]
fn buffer_request_keeps_only_the_last_chunk_in_traefik_and_all_of_it_natively() {
    let body = "abcdefghijklmnopqrst";
    let faithful = EchoBackend::new();
    serve_with(
        &load(&read_all_then_next(1)),
        Request::post("/").body(body),
        &faithful,
    );
    // http-wasm-host-go's bufferingRequestBody keeps only reads that
    // returned data together with EOF.
    assert_eq!(faithful.last().unwrap().body, b"opqrst");

    let native = EchoBackend::new();
    let guest = load_with(&read_all_then_next(1), HostOptions::native());
    serve_with(&guest, Request::post("/").body(body), &native);
    assert_eq!(native.last().unwrap().body, body.as_bytes());

    // Read in one go (the common case), Traefik forwards it whole.
    let whole = EchoBackend::new();
    let guest = load(&on_request(
        "(drop (call $enable_features (i32.const 1)))
         (drop (call $read_body (i32.const 0) (i32.const 4096) (i32.const 1000))) (i64.const 1)",
    ));
    serve_with(&guest, Request::post("/").body(body), &whole);
    assert_eq!(whole.last().unwrap().body, body.as_bytes());
}

#[test]
fn write_body_replaces_the_request_body_for_next() {
    let guest = load(&format!(
        r#"(data (i32.const 100) "new ") (data (i32.const 110) "body") {}"#,
        on_request(
            "(call $write_body (i32.const 0) (i32.const 100) (i32.const 4))
             (call $write_body (i32.const 0) (i32.const 110) (i32.const 4)) (i64.const 1)"
        )
    ));
    let backend = EchoBackend::new();
    serve_with(&guest, Request::post("/").body("old body"), &backend);
    assert_eq!(backend.last().unwrap().body, b"new body");
}

#[test]
fn write_body_and_status_answer_without_next() {
    let guest = load(&format!(
        r#"(data (i32.const 100) "denied") {}"#,
        on_request(
            "(call $set_status_code (i32.const 403))
             (call $respond (i32.const 100) (i32.const 6)) (i64.const 0)"
        )
    ));
    let backend = EchoBackend::new();
    let ex = serve_with(&guest, Request::get("/"), &backend);
    assert_eq!(
        (ex.response.status, ex.response.body_text().as_ref()),
        (403, "denied")
    );
    assert_eq!(backend.count(), 0);
}

#[test]
fn buffer_response_lets_handle_response_read_and_rewrite() {
    let guest = load(&format!(
        r#"(data (i32.const 100) "seen:") {}
           (func (export "handle_response") (param $ctx i32) (param $is_error i32)
             (local $r i64)
             (call $set_status_code (i32.add (call $get_status_code) (local.get $ctx)))
             (local.set $r (call $read_body (i32.const 1) (i32.const 4096) (i32.const 60000)))
             (call $respond (i32.const 100) (i32.const 5))
             (call $respond (i32.const 4096) (i32.wrap_i64 (local.get $r))))"#,
        on_request("(drop (call $enable_features (i32.const 2))) (i64.const 0x700000001)")
    ));
    let ex = serve(&guest, Request::get("/x"));
    assert_eq!(ex.ctx, 7);
    assert_eq!(ex.response.status, 207);
    assert_eq!(ex.response.body_text(), "seen:GET /x HTTP/1.1\n\n");
    assert!(ex.features.contains(Features::BUFFER_RESPONSE));
}

#[test]
fn handle_response_learns_that_next_failed() {
    struct Failing;
    impl Backend for Failing {
        fn serve(&self, _: &Request) -> Result<Response, BackendError> {
            Err(BackendError("next panicked".into()))
        }
    }
    let guest = load(&format!(
        r#"(func (export "handle_response") (param $ctx i32) (param $is_error i32)
             (call $set_status_code (i32.add (i32.const 500) (local.get $is_error)))) {}"#,
        on_request("(drop (call $enable_features (i32.const 2))) (i64.const 1)")
    ));
    let ex = guest.handle(Request::get("/"), &Failing).unwrap();
    assert!(ex.next_failed);
    assert_eq!(ex.response.status, 501);
}

#[test]
fn handle_response_runs_only_after_next() {
    let guest = load(&format!(
        r#"(func (export "handle_response") (param i32 i32) unreachable) {}"#,
        on_request("(i64.const 0x500000000)")
    ));
    let ex = serve(&guest, Request::get("/"));
    assert!(ex.error.is_none());
    assert_eq!(ex.response.status, 200);
}

#[test]
fn features_enabled_at_start_up_apply_to_every_request() {
    let guest = load(&format!(
        r#"(func (export "_start") (drop (call $enable_features (i32.const 2))))
           (func (export "handle_response") (param i32 i32) (call $set_status_code (i32.const 299)))
           {}"#,
        on_request("(i64.const 1)")
    ));
    assert_eq!(guest.features(), Features::BUFFER_RESPONSE);
    let ex = serve(&guest, Request::get("/"));
    assert_eq!(ex.response.status, 299);
    assert!(ex.error.is_none());
}

/// Adds response trailer X-T twice (1 then 2), reads request trailer X-T.
fn trailer_guest() -> String {
    format!(
        r#"(data (i32.const 100) "X-T") (data (i32.const 110) "1") (data (i32.const 111) "2") {}"#,
        on_request(
            "(local $r i64)
             (call $add_header_value (i32.const 3) (i32.const 100) (i32.const 3) (i32.const 110) (i32.const 1))
             (call $add_header_value (i32.const 3) (i32.const 100) (i32.const 3) (i32.const 111) (i32.const 1))
             (local.set $r (call $get_header_values (i32.const 2) (i32.const 100) (i32.const 3)
                                                    (i32.const 4096) (i32.const 100)))
             (call $respond (i32.const 4096) (i32.wrap_i64 (local.get $r)))
             (i64.const 0)"
        )
    )
}

#[test]
fn trailers_natively_and_with_traefiks_quirks() {
    let request = Request::post("/").trailer("X-T", "from-client");
    let native = serve(
        &load_with(&trailer_guest(), HostOptions::native()),
        request.clone(),
    );
    assert_eq!(native.response.body, b"from-client\0");
    assert_eq!(native.response.trailers.get_all("x-t"), vec!["1", "2"]);

    // http-wasm-host-go keeps request trailers in the response header map,
    // and its add on trailers replaces.
    let faithful = serve(&load(&trailer_guest()), request);
    assert_eq!(faithful.response.body, b"2\0");
    assert_eq!(faithful.response.trailers.get_all("x-t"), vec!["2"]);
}

const CONFIG_GUEST: &str = r#"(func (export "handle_request") (result i64)
    (call $respond (i32.const 4096) (call $fetch (i32.const 0) (i32.const 4))) (i64.const 0))"#;

#[test]
fn get_config_in_faithful_and_native_mode() {
    let config =
        json!({"percent": 10, "on": true, "ratio": 0.25, "list": [1, "two"], "ids": [1, 2]});
    let faithful = load_with(
        CONFIG_GUEST,
        HostOptions::default().config_json(config.clone()),
    );
    assert_eq!(
        serve(&faithful, Request::get("/")).response.body_text(),
        r#"{"ids":[1,2],"list":["1","two"],"on":"true","percent":"10","ratio":"0.250000"}"#
    );
    // Natively the JSON arrives as given, types intact.
    let native = load_with(
        CONFIG_GUEST,
        HostOptions::native().config_json(config.clone()),
    );
    let delivered: serde_json::Value =
        serde_json::from_slice(&serve(&native, Request::get("/")).response.body).unwrap();
    assert_eq!(delivered, config);
    let raw = load_with(
        CONFIG_GUEST,
        HostOptions::default().config_raw("percent=10"),
    );
    assert_eq!(
        serve(&raw, Request::get("/")).response.body_text(),
        "percent=10"
    );
    let none = load(CONFIG_GUEST);
    assert_eq!(serve(&none, Request::get("/")).response.body, b"");
}

const LOG_GUEST: &str = r#"(data (i32.const 100) "hello")
  (func (export "handle_request") (result i64)
    (call $log (i32.const 0) (i32.const 100) (i32.const 5))
    (call $log (i32.const -1) (i32.const 100) (i32.const 4))
    (call $respond_packed (i64.extend_i32_u (call $log_enabled (i32.const -1))))
    (i64.const 0))"#;

#[test]
fn log_and_log_enabled() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let faithful = load_with(
        LOG_GUEST,
        HostOptions::default().log_sink(move |line| sink.lock().unwrap().push(line.to_string())),
    );
    let ex = serve(&faithful, Request::get("/"));
    // Traefik's logger answers 1 for every level.
    assert_eq!(packed(&ex.response.body).0, 1);
    let lines: Vec<String> = ex.logs.iter().map(ToString::to_string).collect();
    assert_eq!(lines, vec!["[info] hello", "[debug] hell"]);
    assert_eq!(*seen.lock().unwrap(), lines);

    let native = load_with(LOG_GUEST, HostOptions::native().log_level(LogLevel::Info));
    let ex = serve(&native, Request::get("/"));
    assert_eq!(packed(&ex.response.body).0, 0);
    assert_eq!(ex.logs.len(), 1);
    assert_eq!(ex.host_calls.get(Import::Log), 2);
}

// ---------------------------------------------------------------------------
// WASI in faithful mode.

const RANDOM_TO_NEXT: &str = r#"(func (export "handle_request") (result i64)
    (drop (call $random_get (i32.const 4096) (i32.const 16)))
    (call $write_body (i32.const 0) (i32.const 4096) (i32.const 16))
    (i64.const 1))"#;

/// What one instance's first `random_get` of 16 bytes yields, and what a
/// second instance (started while the first is busy) yields.
fn random_from_two_instances(options: HostOptions) -> (Vec<u8>, Vec<u8>) {
    let guest = load_with(RANDOM_TO_NEXT, options);
    let inner = Mutex::new(None);
    let backend = |request: &Request| {
        // The first instance is busy inside next: this takes a second one.
        let nested = guest
            .handle(Request::get("/"), &EchoBackend::new())
            .unwrap();
        assert_eq!(nested.instance.id, 2);
        *inner.lock().unwrap() = nested.backend_request.map(|r| r.body);
        Response::ok(request.body.clone())
    };
    let outer = guest.handle(Request::get("/"), &backend).unwrap();
    assert_eq!(outer.instance.id, 1);
    (outer.response.body, inner.into_inner().unwrap().unwrap())
}

#[test]
fn fake_random_repeats_across_instances() {
    let (first, second) = random_from_two_instances(HostOptions::default());
    assert_eq!(first.len(), 16);
    assert_eq!(first, second);
    let (first, second) = random_from_two_instances(HostOptions::native());
    assert_ne!(first, second);
}

#[test]
fn fake_monotonic_clock_starts_at_zero_and_steps_one_millisecond() {
    let guest = load(&on_request(
        "(drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 4096)))
         (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 4104)))
         (drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 4112)))
         (call $respond (i32.const 4096) (i32.const 24)) (i64.const 0)",
    ));
    let body = serve(&guest, Request::get("/")).response.body;
    let at = |i: usize| u64::from_le_bytes(body[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!((at(0), at(1)), (0, 1_000_000));
    // The wall clock is real: some time after 2024-01-01.
    assert!(at(2) > 1_704_067_200_000_000_000);
}

#[test]
fn proc_exit_in_start() {
    let exiting = |code: u32| {
        format!(
            r#"(func (export "_start") (call $proc_exit (i32.const {code}))) {}"#,
            on_request("(i64.const 1)")
        )
    };
    let err = load_err(&exiting(3), HostOptions::default());
    assert_eq!(
        err,
        Error::Exit {
            function: "_start".into(),
            code: 3
        }
    );
    assert_eq!(err.to_string(), "wasm: _start exited with code 3");
    let guest = load(&exiting(0));
    assert_eq!(serve(&guest, Request::get("/")).response.status, 200);
}

#[test]
fn start_then_initialize_run_once_per_instance() {
    // _start stores 1, _initialize adds 10; each request adds 100.
    let guest = load(&format!(
        r#"(global $n (mut i32) (i32.const 0))
           (func (export "_start") (global.set $n (i32.const 1)))
           (func (export "_initialize") (global.set $n (i32.add (global.get $n) (i32.const 10))))
           {}"#,
        on_request(
            "(global.set $n (i32.add (global.get $n) (i32.const 100)))
             (call $respond_packed (i64.extend_i32_u (global.get $n))) (i64.const 0)"
        )
    ));
    assert_eq!(
        packed(&serve(&guest, Request::get("/")).response.body).0,
        111
    );
    assert_eq!(
        packed(&serve(&guest, Request::get("/")).response.body).0,
        211
    );
    assert_eq!(guest.instances_created(), 1);
}

// ---------------------------------------------------------------------------
// Load-time refusals.

fn raw_module(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

#[test]
fn missing_and_mistyped_exports_are_named_exactly() {
    let cases = [
        (
            r#"(module (memory (export "memory") 1) (func (export "handle_response") (param i32 i32)))"#,
            "wasm: guest doesn't export func[handle_request]",
        ),
        (
            r#"(module (memory (export "memory") 1)
                 (func (export "handle_request") (result i32) i32.const 1)
                 (func (export "handle_response") (param i32 i32)))"#,
            "wasm: guest exports the wrong signature for func[handle_request]: should be () -> (i64), found () -> (i32)",
        ),
        (
            r#"(module (memory (export "memory") 1)
                 (func (export "handle_request") (result i64) i64.const 1))"#,
            "wasm: guest doesn't export func[handle_response]",
        ),
        (
            r#"(module (memory (export "memory") 1)
                 (func (export "handle_request") (result i64) i64.const 1)
                 (func (export "handle_response") (param i64 i32)))"#,
            "wasm: guest exports the wrong signature for func[handle_response]: should be (i32, i32) -> (), found (i64, i32) -> ()",
        ),
        (
            r#"(module (memory 1)
                 (func (export "handle_request") (result i64) i64.const 1)
                 (func (export "handle_response") (param i32 i32)))"#,
            "wasm: guest doesn't export memory[memory]",
        ),
        (
            r#"(module (memory 1) (global (export "memory") i32 (i32.const 0))
                 (func (export "handle_request") (result i64) i64.const 1)
                 (func (export "handle_response") (param i32 i32)))"#,
            "wasm: guest exports the wrong signature for memory[memory]: should be a memory, found a global",
        ),
        (
            r#"(module (import "env" "now" (func (result i64))) (memory (export "memory") 1)
                 (func (export "handle_request") (result i64) i64.const 1)
                 (func (export "handle_response") (param i32 i32)))"#,
            "wasm: guest imports env.now, which the host does not provide (hosts provide only the http_handler and wasi_snapshot_preview1 modules)",
        ),
        (
            r#"(module (import "http_handler" "get_uri" (func (param i32) (result i32)))
                 (memory (export "memory") 1)
                 (func (export "handle_request") (result i64) i64.const 1)
                 (func (export "handle_response") (param i32 i32)))"#,
            "wasm: guest imports http_handler.get_uri with the wrong signature: should be (i32, i32) -> (i32), found (i32) -> (i32)",
        ),
        (
            r#"(module (import "http_handler" "get_cookie" (func (param i32 i32) (result i32)))
                 (memory (export "memory") 1)
                 (func (export "handle_request") (result i64) i64.const 1)
                 (func (export "handle_response") (param i32 i32)))"#,
            "wasm: guest imports http_handler.get_cookie, which the host does not provide (no such function in the http-wasm ABI)",
        ),
    ];
    for (module, message) in cases {
        let err = Guest::load(&raw_module(module), HostOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), message, "for {module}");
    }
}

const BULK_GUEST: &str = r#"(func (export "handle_request") (result i64)
    (memory.copy (i32.const 8192) (i32.const 4096) (i32.const 4096))
    (memory.fill (i32.const 4096) (i32.const 0) (i32.const 16))
    (i64.const 1))"#;

#[test]
fn bulk_memory_is_refused_when_faithful_and_a_warning_otherwise() {
    let err = load_err(BULK_GUEST, HostOptions::default());
    let text = err.to_string();
    assert!(matches!(err, Error::Incompatible(_)), "{err:?}");
    assert!(
        text.contains("2 memory.copy/memory.fill instruction(s)"),
        "{text}"
    );
    assert!(text.contains("wazero issue #2375"), "{text}");
    assert!(text.contains("--llvm-memory-copy-fill-lowering"), "{text}");

    let warnings = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&warnings);
    let guest = load_with(
        BULK_GUEST,
        HostOptions::native().log_sink(move |line| sink.lock().unwrap().push(line.clone())),
    );
    assert_eq!(guest.report().bulk_memory, 2);
    let warnings = warnings.lock().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].level, LogLevel::Warn);
    assert!(warnings[0].message.contains("memory.copy"));
    assert_eq!(serve(&guest, Request::get("/")).response.status, 200);

    // The policy can be set explicitly either way.
    let forced = load_with(BULK_GUEST, HostOptions::default().check(CheckPolicy::Warn));
    assert_eq!(forced.report().bulk_memory, 2);
    load_err(BULK_GUEST, HostOptions::native().check(CheckPolicy::Refuse));
}

#[test]
fn the_report_renders_as_text() {
    let report = cohort_harness::check::inspect(&wat(&format!(
        r#"(func (export "_start") (drop (call $enable_features (i32.const 3)))) {}"#,
        on_request("(i64.const 1)")
    )))
    .unwrap();
    let text = report.render(CheckPolicy::Refuse);
    assert!(text.contains("handle_request   () -> (i64)"), "{text}");
    assert!(text.contains("start-up:        _start"), "{text}");
    assert!(
        text.contains("features requested: buffer_request|buffer_response"),
        "{text}"
    );
    assert!(text.contains("bulk memory: 0"), "{text}");
    assert!(text.contains("verdict: loads"), "{text}");
    assert_eq!(report.requested_features, Features(3));
}

// ---------------------------------------------------------------------------
// ABI violations and traps: each ends the request as a 500 carrying the
// error text, and reports the error.

struct Violation {
    name: &'static str,
    /// `handle_request` body (leaves an i64).
    request: &'static str,
    /// `handle_response` body (after next), empty for none.
    response: &'static str,
    error: &'static str,
}

const VIOLATIONS: &[Violation] = &[
    Violation {
        name: "request header after next",
        request: "(i64.const 1)",
        response: "(call $set_header_value (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 100) (i32.const 1))",
        error: "http_handler.set_header_value: can't set request header after next handler",
    },
    Violation {
        name: "response header after next without buffer_response",
        request: "(i64.const 1)",
        response: "(call $add_header_value (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 100) (i32.const 1))",
        error: "http_handler.add_header_value: can't add response header after next handler unless buffer_response is enabled",
    },
    Violation {
        name: "status after next without buffer_response",
        request: "(i64.const 1)",
        response: "(call $set_status_code (i32.const 201))",
        error: "http_handler.set_status_code: can't set status code after next handler unless buffer_response is enabled",
    },
    Violation {
        name: "response body after next without buffer_response",
        request: "(i64.const 1)",
        response: "(call $write_body (i32.const 1) (i32.const 100) (i32.const 1))",
        error: "http_handler.write_body: can't write response body after next handler unless buffer_response is enabled",
    },
    Violation {
        name: "request body read after next without buffer_request",
        request: "(i64.const 1)",
        response: "(drop (call $read_body (i32.const 0) (i32.const 4096) (i32.const 10)))",
        error: "http_handler.read_body: can't read request body after next handler unless buffer_request is enabled",
    },
    Violation {
        name: "method after next",
        request: "(i64.const 1)",
        response: "(call $set_method (i32.const 100) (i32.const 3))",
        error: "http_handler.set_method: can't set method after next handler",
    },
    Violation {
        name: "uri after next",
        request: "(i64.const 1)",
        response: "(call $set_uri (i32.const 100) (i32.const 1))",
        error: "http_handler.set_uri: can't set uri after next handler",
    },
    Violation {
        name: "get_status_code without buffer_response",
        request: "(drop (call $get_status_code)) (i64.const 0)",
        response: "",
        error: "http_handler.get_status_code: can't get status code unless buffer_response is enabled",
    },
    Violation {
        name: "response body read without buffer_response",
        request: "(drop (call $read_body (i32.const 1) (i32.const 4096) (i32.const 10))) (i64.const 0)",
        response: "",
        error: "http_handler.read_body: can't read response body unless buffer_response is enabled",
    },
    Violation {
        name: "empty header name",
        request: "(drop (call $get_header_values (i32.const 0) (i32.const 100) (i32.const 0) (i32.const 4096) (i32.const 10))) (i64.const 0)",
        response: "",
        error: "http_handler.get_header_values: HTTP header name cannot be empty",
    },
    Violation {
        name: "empty header name on add",
        request: "(call $add_header_value (i32.const 1) (i32.const 100) (i32.const 0) (i32.const 100) (i32.const 1)) (i64.const 0)",
        response: "",
        error: "http_handler.add_header_value: HTTP header name cannot be empty",
    },
    Violation {
        name: "write past the end of memory",
        request: "(drop (call $get_method (i32.const 131070) (i32.const 100))) (i64.const 0)",
        response: "",
        error: "http_handler.get_method: out of memory writing method",
    },
    Violation {
        name: "read past the end of memory",
        request: "(call $set_header_value (i32.const 0) (i32.const 100) (i32.const 1) (i32.const -16) (i32.const 32)) (i64.const 0)",
        response: "",
        error: "http_handler.set_header_value: out of memory reading value",
    },
    Violation {
        name: "log message past the end of memory",
        request: "(call $log (i32.const 2) (i32.const 131000) (i32.const 100)) (i64.const 0)",
        response: "",
        error: "http_handler.log: out of memory reading message",
    },
    Violation {
        name: "unknown header kind",
        request: "(drop (call $get_header_names (i32.const 9) (i32.const 4096) (i32.const 10))) (i64.const 0)",
        response: "",
        error: "http_handler.get_header_names: unsupported header kind: 9",
    },
    Violation {
        name: "unknown body kind",
        request: "(drop (call $read_body (i32.const 2) (i32.const 4096) (i32.const 10))) (i64.const 0)",
        response: "",
        error: "http_handler.read_body: unsupported body kind: 2",
    },
    Violation {
        name: "read_body with buf_limit 0",
        request: "(drop (call $read_body (i32.const 0) (i32.const 4096) (i32.const 0))) (i64.const 0)",
        response: "",
        error: "http_handler.read_body: buf_limit==0 reading body",
    },
    Violation {
        name: "empty method",
        request: "(call $set_method (i32.const 100) (i32.const 0)) (i64.const 0)",
        response: "",
        error: "http_handler.set_method: HTTP method cannot be empty",
    },
    Violation {
        name: "invalid status code",
        request: "(call $set_status_code (i32.const 42)) (i64.const 0)",
        response: "",
        error: "http_handler.set_status_code: invalid WriteHeader code 42",
    },
    Violation {
        name: "unparsable uri",
        request: "(call $set_uri (i32.const 100) (i32.const 3)) (i64.const 0)",
        response: "",
        error: "http_handler.set_uri: parse \"abc\": invalid URI for request",
    },
];

#[test]
fn every_abi_violation_is_a_500_with_the_error_text() {
    for case in VIOLATIONS {
        let response = if case.response.is_empty() {
            String::new()
        } else {
            format!(
                r#"(func (export "handle_response") (param i32 i32) {})"#,
                case.response
            )
        };
        let guest = load(&format!(
            r#"(data (i32.const 100) "abc") {response} {}"#,
            on_request(case.request)
        ));
        let ex = serve(&guest, Request::get("/").body("request body"));
        let error = ex
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no error", case.name));
        assert!(
            matches!(error, Error::Abi { .. }),
            "{}: {error:?}",
            case.name
        );
        assert_eq!(error.to_string(), case.error, "{}", case.name);
        assert_eq!(ex.response.status, 500, "{}", case.name);
        assert_eq!(ex.response.body_text(), case.error, "{}", case.name);
        // After next, Traefik has already sent the backend's headers.
        assert_eq!(ex.aborted, !case.response.is_empty(), "{}", case.name);
    }
}

#[test]
fn request_functions_are_errors_during_start_up() {
    let err = load_err(
        &format!(
            r#"(func (export "_start") (drop (call $get_method (i32.const 0) (i32.const 8)))) {}"#,
            on_request("(i64.const 1)")
        ),
        HostOptions::default(),
    );
    assert_eq!(
        err.to_string(),
        "http_handler.get_method: called outside a request (during start-up)"
    );
}

/// Faithful mode poisons the instance instead (see
/// `a_trap_poisons_the_instance_in_faithful_mode_only`).
#[test]
fn a_trap_is_a_500_and_a_native_instance_serves_again() {
    let guest = load_with(
        &on_request(
            "(if (i32.eq (call $get_method (i32.const 0) (i32.const 0)) (i32.const 4))
           (then unreachable)) (i64.const 1)",
        ),
        HostOptions::native(),
    );
    let ex = serve(&guest, Request::post("/"));
    let Some(Error::Trap { function, message }) = &ex.error else {
        panic!("expected a trap, got {:?}", ex.error);
    };
    assert_eq!(function, "handle_request");
    assert!(message.contains("unreachable"), "{message}");
    assert_eq!(ex.response.status, 500);
    assert!(
        ex.response
            .body_text()
            .starts_with("wasm error in handle_request: ")
    );
    let again = serve(&guest, Request::get("/"));
    assert!(again.error.is_none());
    assert_eq!(again.instance.id, ex.instance.id);
}

#[test]
fn a_trap_after_a_committed_response_keeps_its_status_like_go() {
    // Go's handleErr writes 500 + text to a writer whose header is sent.
    let guest = load(&format!(
        r#"(data (i32.const 100) "partial;") {}"#,
        on_request("(call $respond (i32.const 100) (i32.const 8)) unreachable")
    ));
    let ex = serve(&guest, Request::get("/"));
    assert_eq!(ex.response.status, 200);
    assert!(
        ex.response
            .body_text()
            .starts_with("partial;wasm error in handle_request")
    );
}

#[test]
fn running_out_of_fuel_is_an_error() {
    let guest = load_with(
        &on_request("(loop $forever (br $forever)) (i64.const 1)"),
        HostOptions::default().fuel_limit(100_000),
    );
    let ex = serve(&guest, Request::get("/"));
    assert_eq!(
        ex.error,
        Some(Error::OutOfFuel {
            function: "handle_request".into(),
            fuel: 100_000
        })
    );
    assert_eq!(ex.response.status, 500);
}

// ---------------------------------------------------------------------------
// Accounting and the pool.

#[test]
fn fuel_host_calls_and_memory_are_reported() {
    let noop = load(&on_request("(i64.const 1)"));
    let ex = serve(&noop, Request::get("/"));
    eprintln!("no-op guest: {} fuel per request", ex.fuel);
    assert!(ex.fuel > 0 && ex.fuel < 20, "{}", ex.fuel);
    assert_eq!(ex.host_calls.total(), 0);
    assert_eq!(ex.memory_bytes, 2 * 65536);
    assert_eq!(noop.start_fuel(), 0);

    let busy = load(&on_request(
        "(drop (call $get_method (i32.const 0) (i32.const 0)))
         (drop (call $get_method (i32.const 0) (i32.const 0)))
         (drop (call $get_uri (i32.const 0) (i32.const 0)))
         (drop (memory.grow (i32.const 1)))
         (i64.const 0)",
    ));
    let ex = serve(&busy, Request::get("/"));
    assert_eq!(ex.host_calls.get(Import::GetMethod), 2);
    assert_eq!(ex.host_calls.by_name("get_uri"), 1);
    assert_eq!(ex.host_calls.total(), 3);
    assert_eq!(ex.host_calls.to_string(), "get_method=2 get_uri=1");
    assert_eq!(ex.memory_bytes, 3 * 65536);
    assert!(ex.fuel > 3);
}

#[test]
fn start_up_fuel_is_measured_per_instance() {
    let guest = load(&format!(
        r#"(func (export "_start") (local $i i32)
             (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
                      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))) {}"#,
        on_request("(i64.const 1)")
    ));
    assert!(guest.start_fuel() > 1000, "{}", guest.start_fuel());
    let ex = serve(&guest, Request::get("/"));
    assert_eq!(ex.instance.start_fuel, guest.start_fuel());
    assert!(!ex.instance.fresh);
}

#[test]
fn the_guest_serves_from_several_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Guest>();
    let guest = load(&on_request(
        "(call $respond (i32.const 4096) (call $fetch (i32.const 2) (i32.const 64))) (i64.const 0)",
    ));
    std::thread::scope(|scope| {
        for t in 0..4 {
            let guest = guest.clone();
            scope.spawn(move || {
                for i in 0..10 {
                    let uri = format!("/t{t}/{i}");
                    let ex = serve(&guest, Request::get(uri.clone()));
                    assert_eq!(ex.response.body_text(), uri);
                }
            });
        }
    });
    assert!(
        (1..=5).contains(&guest.instances()),
        "{}",
        guest.instances()
    );
    assert_eq!(guest.instances() as u64, guest.instances_created());
}

/// A guest that traps on any URI but `/`.
const TRAPS_OFF_ROOT: &str = r#"(module
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    (if (i32.gt_u (call $get_uri (i32.const 0) (i32.const 64)) (i32.const 1))
      (then unreachable))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))"#;

#[test]
fn a_trap_poisons_the_instance_in_faithful_mode_only() {
    let wasm = wat::parse_str(TRAPS_OFF_ROOT).unwrap();
    let backend = EchoBackend::new();
    for faithful in [true, false] {
        let options = HostOptions::default().faithful(faithful).max_instances(1);
        let guest = Guest::load(&wasm, options).unwrap();
        let ok = guest.handle(Request::get("/"), &backend).unwrap();
        assert!(ok.error.is_none() && ok.next_called());
        let trapped = guest.handle(Request::get("/boom"), &backend).unwrap();
        let Some(fault @ Error::Trap { .. }) = &trapped.error else {
            panic!("{:?}", trapped.error);
        };
        let after = guest.handle(Request::get("/"), &backend).unwrap();
        assert_eq!(after.instance.id, trapped.instance.id, "one instance");
        if faithful {
            // As in Traefik: every later request on that instance fails
            // with the fault, without entering the guest.
            assert_eq!(after.error.as_ref(), Some(fault));
            assert_eq!(after.response.status, 500);
            assert_eq!(after.response.body, fault.to_string().into_bytes());
            assert!(!after.next_called());
            assert_eq!(after.host_calls.total(), 0);
            let again = guest.handle(Request::get("/"), &backend).unwrap();
            assert_eq!(again.error.as_ref(), Some(fault), "for good");
        } else {
            assert!(
                after.error.is_none() && after.next_called(),
                "{:?}",
                after.error
            );
        }
    }
}
