;; Cohort's host calls for a new browser visitor under `.traefik.yml`'s
;; `testData` (30 analytics cookies, no cohort cookie, `X-User-Id: u123`),
;; and nothing else: read the Cookie header, the URI, the User-Agent (the
;; exclusions decide whether the visitor may be written), the override
;; header `X-Canary-Force` and the key header `X-User-Id`; set the request's
;; Cookie to the one read plus `; canary=v1` and `X-Canary: v1`; add the
;; response's `Set-Cookie`; return next=1 with ctx=0. Each read goes into a
;; 4 KiB buffer. See `calls-returning.wat` for what it prices.
(module
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "get_uri"
    (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "add_header_value"
    (func $add_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Cookie")
  (data (i32.const 16) "X-Canary-Force")
  (data (i32.const 32) "X-Canary")
  (data (i32.const 48) "v1")
  (data (i32.const 64) "User-Agent")
  (data (i32.const 80) "X-User-Id")
  (data (i32.const 96) "Set-Cookie")
  (data (i32.const 112) "; canary=v1")
  (data (i32.const 128) "canary=v1; Path=/; Max-Age=2592000; Secure; HttpOnly; SameSite=Lax")
  (func (export "handle_request") (result i64)
    (local $len i32)
    ;; The Cookie header (request headers are kind 0): its length without
    ;; the NUL the host ends it with.
    (local.set $len (i32.wrap_i64 (call $get_header_values
      (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 4096) (i32.const 4096))))
    (local.set $len
      (select (i32.sub (local.get $len) (i32.const 1)) (i32.const 0) (local.get $len)))
    (drop (call $get_uri (i32.const 8192) (i32.const 4096)))
    (drop (call $get_header_values
      (i32.const 0) (i32.const 64) (i32.const 10) (i32.const 12288) (i32.const 4096)))
    (drop (call $get_header_values
      (i32.const 0) (i32.const 16) (i32.const 14) (i32.const 16384) (i32.const 4096)))
    (drop (call $get_header_values
      (i32.const 0) (i32.const 80) (i32.const 9) (i32.const 20480) (i32.const 4096)))
    ;; Cookie: the line read, then `; canary=v1` (11 bytes: 8 + 4, the last
    ;; one past the value).
    (i64.store (i32.add (i32.const 4096) (local.get $len)) (i64.load (i32.const 112)))
    (i32.store (i32.add (i32.const 4104) (local.get $len)) (i32.load (i32.const 120)))
    (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 6)
      (i32.const 4096) (i32.add (local.get $len) (i32.const 11)))
    (call $set_header_value
      (i32.const 0) (i32.const 32) (i32.const 8) (i32.const 48) (i32.const 2))
    ;; Response headers are kind 1.
    (call $add_header_value
      (i32.const 1) (i32.const 96) (i32.const 10) (i32.const 128) (i32.const 66))
    i64.const 1)
  (func (export "handle_response") (param i32 i32)))
