;; A guest that traps deterministically, on every CPU, where an unlowered
;; Cohort traps on some: when the request's Cookie header values are longer
;; than 2048 bytes, `handle_request` executes `unreachable` (Traefik answers
;; 500 with the `wasm error` as body); otherwise it lets the request through
;; unchanged (next=1, ctx=0).
;;
;; The soak's "sees a guest that traps" control loads it, so the soak's
;; detectors (500s with `wasm error` bodies, 5xx in Traefik's access log)
;; are proven whether or not this machine's Traefik has the bulk-memory trap
;; (notes/bulk-memory-trap.md). No bulk-memory instruction: the harness's
;; Traefik-faithful mode accepts it.
(module
  ;; http-wasm: get_header_values(kind, name, name_len, buf, buf_limit)
  ;; -> count << 32 | len; kind 0 is the request's headers. With buf_limit 0
  ;; nothing is written and len is the bytes the values need.
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Cookie")
  (func (export "handle_request") (result i64)
    (i64.gt_u
      (i64.and
        (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 64) (i32.const 0))
        (i64.const 0xffffffff))
      (i64.const 2048))
    (if (then unreachable))
    i64.const 1)
  (func (export "handle_response") (param i32 i32)))
