;; Mirrors http-wasm-host-go's examples/router.wat (written afresh from its
;; behaviour). A request whose URI starts with "/host" goes on to the next
;; handler with that prefix stripped ("/host/a" arrives as "/a"); any other
;; is answered here: `Content-Type: text/plain` and the body "hello world".
;;
;; host-go's Example_router (next handler writes back the path it got) asks
;; for "/", "/nothosst" and "/host/a" and expects the bodies "hello world",
;; "hello world" and "/a".
(module $router
  (import "http_handler" "get_uri"
    (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_uri"
    (func $set_uri (param i32 i32)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "write_body"
    (func $write_body (param i32 i32 i32)))
  (memory (export "memory") 1 1)

  (data (i32.const 0) "/host")        ;; 5 bytes
  (data (i32.const 16) "Content-Type") ;; 12 bytes
  (data (i32.const 32) "text/plain")   ;; 10 bytes
  (data (i32.const 48) "hello world")  ;; 11 bytes
  ;; The URI is read to 1024, at most 256 bytes of it.

  (func (export "handle_request") (result i64)
    (local $len i32)
    (local.set $len (call $get_uri (i32.const 1024) (i32.const 256)))
    ;; too long to look at: let the next handler have it
    (if (i32.gt_u (local.get $len) (i32.const 256))
      (then (return (i64.const 1))))
    ;; "/host..." (four bytes as a word, then the fifth): strip and pass on
    (if (i32.ge_u (local.get $len) (i32.const 5))
      (then
        (if (i32.and
              (i32.eq (i32.load (i32.const 1024)) (i32.load (i32.const 0)))
              (i32.eq (i32.load8_u (i32.const 1028)) (i32.load8_u (i32.const 4))))
          (then
            (call $set_uri
              (i32.const 1029)
              (i32.sub (local.get $len) (i32.const 5)))
            (return (i64.const 1))))))
    ;; anything else is served here
    (call $set_header_value
      (i32.const 1) ;; the response's headers
      (i32.const 16) (i32.const 12)
      (i32.const 32) (i32.const 10))
    (call $write_body (i32.const 1) (i32.const 48) (i32.const 11))
    (i64.const 0))

  (func (export "handle_response") (param i32 i32)))
