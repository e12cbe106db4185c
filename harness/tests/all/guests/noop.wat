;; The smallest http-wasm guest Traefik accepts: it imports nothing, lets
;; every request through to the next handler unchanged (`handle_request`
;; returns next=1, ctx=0) and does nothing with the response.
;;
;; The soak compares Traefik's memory under dynamic-config reloads with Cohort
;; against this guest: what grows with both is Traefik's (its per-reload wasm
;; runtime leak, traefik/traefik#13235), what grows only with Cohort would be
;; Cohort's. Compiled at run time with the `wat` crate; no binary committed.
(module
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    i64.const 1)
  (func (export "handle_response") (param i32 i32)))
