;; Mirrors http-wasm-host-go's examples/log.wat (written afresh from its
;; behaviour). Each request: trap if the host says debug logging is enabled,
;; otherwise log "hello world" at info and go on to the next handler.
;;
;; host-go's Example_log runs it with a console logger (info on, debug off)
;; and expects the line `hello world` in the output.
(module $log
  (import "http_handler" "log_enabled"
    (func $log_enabled (param i32) (result i32)))
  (import "http_handler" "log"
    (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "hello world")

  (func (export "handle_request") (result i64)
    ;; level -1 is debug: this guest insists it is off
    (if (call $log_enabled (i32.const -1))
      (then unreachable))
    (call $log (i32.const 0) (i32.const 0) (i32.const 11)) ;; level 0 is info
    (i64.const 1))

  (func (export "handle_response") (param i32 i32)))
