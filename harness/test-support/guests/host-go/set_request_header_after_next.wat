;; Mirrors http-wasm-host-go's
;; internal/test/testdata/error/set_request_header_after_next.wat (written
;; afresh from its behaviour): `handle_request` passes the request on, then
;; `handle_response` sets the request header `Content-Type: text/plain`,
;; which is too late: the next handler already has the request.
;;
;; host-go's TestMiddlewareHandleResponse_Error expects HandleRequest to
;; succeed and HandleResponse to fail with "can't set request header after
;; next handler".
(module $set_request_header_after_next
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "Content-Type") ;; 12 bytes
  (data (i32.const 16) "text/plain")  ;; 10 bytes

  (func (export "handle_request") (result i64) (i64.const 1))

  (func (export "handle_response") (param i32 i32)
    (call $set_header_value
      (i32.const 0) ;; the request's headers
      (i32.const 0) (i32.const 12)
      (i32.const 16) (i32.const 10))))
