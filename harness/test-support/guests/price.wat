;; The price guests' template: `calls-returning.wat`'s host calls (Cohort's
;; for a returning browser under `testData`) in a memory of Cohort's size,
;; four pages, and then one kind of guest work in place of `;; WORK` (with
;; any data or functions it needs in place of `;; DATA`)
;; (`harness/test-support/src/bench.rs`, `PRICES`). Each one less `base`
;; (the template with no work) is what that work costs a host, per request:
;; `scripts/bench-traefik.sh` runs them as chains, so that Cohort's own work
;; (Cohort less calls-returning) can be read against instructions, cold
;; memory lines and pages priced on the same machine, in the same run.
;;
;; The accumulator is a global and the touched words are stored back, so
;; that no compiler may drop the work.
(module
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "get_uri"
    (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 4)
  (global $acc (mut i32) (i32.const 0))
  (data (i32.const 0) "Cookie")
  (data (i32.const 16) "X-Canary-Force")
  (data (i32.const 32) "X-Canary")
  (data (i32.const 48) "v1")
  ;; DATA
  (func (export "handle_request") (result i64)
    (local $i i32) (local $x i32)
    (drop (call $get_header_values
      (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 4096) (i32.const 4096)))
    (drop (call $get_header_values
      (i32.const 0) (i32.const 16) (i32.const 14) (i32.const 8192) (i32.const 4096)))
    (drop (call $get_uri (i32.const 12288) (i32.const 4096)))
    (call $set_header_value
      (i32.const 0) (i32.const 32) (i32.const 8) (i32.const 48) (i32.const 2))
    ;; WORK
    i64.const 1)
  (func (export "handle_response") (param i32 i32)))
