;; Cohort's host calls for a returning browser visitor under `.traefik.yml`'s
;; `testData` (a valid `canary=v1` among 30 analytics cookies, no override),
;; and nothing else: read the Cookie header, read the override header
;; `X-Canary-Force`, read the URI (the override query `canary`), set the
;; request header `X-Canary: v1`, return next=1 with ctx=0. Each read goes
;; into a 4 KiB buffer, as Cohort's do. What it costs in Traefik over the
;; no-op guest (`noop.wat`) is the price of those host calls; what Cohort
;; costs over it is Cohort's own work (parsing, matching, deciding).
;;
;; `cargo run --release -p cohort-harness --example costs` prints its calls
;; next to Cohort's for the same request, and `--example bench_guests`
;; (which compiles it for `scripts/bench-traefik.sh`) warns when they differ.
(module
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "get_uri"
    (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Cookie")
  (data (i32.const 16) "X-Canary-Force")
  (data (i32.const 32) "X-Canary")
  (data (i32.const 48) "v1")
  (func (export "handle_request") (result i64)
    ;; Request headers are kind 0.
    (drop (call $get_header_values
      (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 4096) (i32.const 4096)))
    (drop (call $get_header_values
      (i32.const 0) (i32.const 16) (i32.const 14) (i32.const 8192) (i32.const 4096)))
    (drop (call $get_uri (i32.const 12288) (i32.const 4096)))
    (call $set_header_value
      (i32.const 0) (i32.const 32) (i32.const 8) (i32.const 48) (i32.const 2))
    i64.const 1)
  (func (export "handle_response") (param i32 i32)))
