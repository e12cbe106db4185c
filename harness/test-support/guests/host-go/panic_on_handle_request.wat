;; Mirrors http-wasm-host-go's
;; internal/test/testdata/error/panic_on_handle_request.wat (written afresh
;; from its behaviour): `handle_request` prints "panic!" to stdout and then
;; traps, as a TinyGo panic does.
;;
;; host-go's TestMiddlewareHandleRequest_Error expects HandleRequest to fail
;; with "wasm error: unreachable" (its net/http handler then answers 500).
(module $panic_on_handle_request
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 16) "panic!")

  (func (export "handle_request") (result i64)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable)

  (func (export "handle_response") (param i32 i32)))
