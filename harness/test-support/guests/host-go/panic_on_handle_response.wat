;; Mirrors http-wasm-host-go's
;; internal/test/testdata/error/panic_on_handle_response.wat (written afresh
;; from its behaviour): `handle_request` passes the request on;
;; `handle_response` prints "panic!" to stdout and then traps.
;;
;; host-go's TestMiddlewareHandleResponse_Error expects HandleRequest to
;; succeed (ctx_next 1) and HandleResponse to fail with
;; "wasm error: unreachable".
(module $panic_on_handle_response
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 16) "panic!")

  (func (export "handle_request") (result i64) (i64.const 1))

  (func (export "handle_response") (param i32 i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))
