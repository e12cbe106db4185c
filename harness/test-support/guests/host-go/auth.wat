;; Mirrors http-wasm-host-go's examples/auth.wat (written afresh from its
;; behaviour). HTTP Basic authentication for user "Aladdin", password
;; "open sesame": exactly one Authorization value equal to
;; `Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==` goes on to the next handler; anything
;; else is answered 401 here, and when the request carries no single
;; Authorization value at all the answer also challenges with
;; `WWW-Authenticate: Basic realm="test"`.
;;
;; host-go's Example_auth sends four requests and expects, in order:
;; Unauthorized + `Www-Authenticate: Basic realm="test"` (no Authorization),
;; Unauthorized (an empty one), OK (the right one), Unauthorized ("0").
(module $auth
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "set_status_code"
    (func $set_status_code (param i32)))
  (memory (export "memory") 1 1)

  ;; Constants, each at its own offset.
  (data (i32.const 0) "Authorization")                           ;; 13 bytes
  (data (i32.const 32) "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\00")  ;; 35 bytes, NUL-terminated as the host writes it
  (data (i32.const 96) "WWW-Authenticate")                       ;; 16 bytes
  (data (i32.const 128) "Basic realm=\"test\"")                  ;; 18 bytes
  ;; The host writes the request's Authorization values from 512 on.

  ;; Answer 401 (the guest's response: ctx_next 0), with the challenge when
  ;; $challenge is set.
  (func $refuse (param $challenge i32) (result i64)
    (if (local.get $challenge)
      (then
        (call $set_header_value
          (i32.const 1) ;; the response's headers
          (i32.const 96) (i32.const 16)
          (i32.const 128) (i32.const 18))))
    (call $set_status_code (i32.const 401))
    (i64.const 0))

  (func (export "handle_request") (result i64)
    (local $found i64)
    (local $at i32)
    (local.set $found
      (call $get_header_values
        (i32.const 0) ;; the request's headers
        (i32.const 0) (i32.const 13)
        (i32.const 512) (i32.const 256)))
    ;; count (the high half) must be exactly one
    (if (i64.ne (i64.shr_u (local.get $found) (i64.const 32)) (i64.const 1))
      (then (return (call $refuse (i32.const 1)))))
    ;; its length, NUL included, must be the expected one's
    (if (i32.ne (i32.wrap_i64 (local.get $found)) (i32.const 35))
      (then (return (call $refuse (i32.const 0)))))
    ;; and so must every byte
    (loop $next_byte
      (if (i32.ne
            (i32.load8_u offset=512 (local.get $at))
            (i32.load8_u offset=32 (local.get $at)))
        (then (return (call $refuse (i32.const 0)))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br_if $next_byte (i32.lt_u (local.get $at) (i32.const 35))))
    ;; authenticated: on to the next handler
    (i64.const 1))

  (func (export "handle_response") (param i32 i32)))
