;; Mirrors http-wasm-host-go's internal/test/testdata/error/panic_on_start.wat
;; (written afresh from its behaviour): a WASI command whose `_start` prints
;; "panic!" to stdout and then traps, as a TinyGo panic does.
;;
;; host-go's TestNewMiddleware expects creating the middleware to fail:
;; "error instantiating guest: ... function[_start] failed: wasm error:
;; unreachable".
(module $panic_on_start
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 16) "panic!")

  (func (export "_start")
    ;; one iovec at 0: {16, 6}; the byte count is written to 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable)

  (func (export "handle_request") (result i64) (i64.const 0))
  (func (export "handle_response") (param i32 i32)))
