;; The floor: an http-wasm guest that does nothing. No imports, no start
;; function, one page of memory; `handle_request` returns next=1 with
;; ctx=0 and `handle_response` returns at once. What it costs in a host
;; (Traefik, or the harness) is the host's own per-request price of running
;; a wasm middleware, which no guest can go below.
;;
;; Compiled by `cargo run --release -p cohort-harness --example bench_guests`
;; (the `wat` crate); the benchmarks include it with `include_str!`.
(module
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    i64.const 1)
  (func (export "handle_response") (param i32 i32)))
