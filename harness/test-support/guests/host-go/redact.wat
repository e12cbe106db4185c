;; Mirrors http-wasm-host-go's examples/redact.wat (written afresh from its
;; behaviour). The configuration is a secret (any non-empty bytes). At
;; start-up the guest enables buffering of both bodies (and traps if the host
;; refuses, or the secret is empty or too long); then every occurrence of the
;; secret in the request body and in the response body is overwritten with
;; '#', one for each byte, and the changed body written back.
;;
;; host-go's Example_redact configures "open sesame" and posts three bodies,
;; the next handler printing the request body it got and answering with the
;; same text; it expects "###########" twice, "hello world" twice and
;; "hello ########### world" twice. (No bulk-memory instruction here, so it
;; runs in a Traefik-faithful host too.)
(module $redact
  (import "http_handler" "enable_features"
    (func $enable_features (param i32) (result i32)))
  (import "http_handler" "get_config"
    (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "read_body"
    (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "write_body"
    (func $write_body (param i32 i32 i32)))
  (memory (export "memory") 1 1)

  ;; The secret lives at 0 (at most 1024 bytes), a body from 1024 to the end
  ;; of the one page.
  (global $secret_len (mut i32) (i32.const 0))

  (func $start_up
    (local $len i32)
    ;; 3 = buffer the request body | buffer the response body
    (if (i32.ne
          (i32.and (call $enable_features (i32.const 3)) (i32.const 3))
          (i32.const 3))
      (then unreachable))
    (local.set $len (call $get_config (i32.const 0) (i32.const 1024)))
    (if (i32.or
          (i32.eqz (local.get $len))
          (i32.gt_u (local.get $len) (i32.const 1024)))
      (then unreachable))
    (global.set $secret_len (local.get $len)))
  (start $start_up)

  ;; Read all of body $kind (0 request, 1 response) to 1024; its length.
  (func $read_all (param $kind i32) (result i32)
    (local $end i32)
    (local $got i64)
    (local.set $end (i32.const 1024))
    (loop $more
      ;; no room left: the body is larger than this guest can hold
      (if (i32.ge_u (local.get $end) (i32.const 65536))
        (then unreachable))
      (local.set $got
        (call $read_body
          (local.get $kind)
          (local.get $end)
          (i32.sub (i32.const 65536) (local.get $end))))
      (local.set $end (i32.add (local.get $end) (i32.wrap_i64 (local.get $got))))
      ;; bit 32 of the result is EOF
      (br_if $more (i64.eqz (i64.shr_u (local.get $got) (i64.const 32)))))
    (i32.sub (local.get $end) (i32.const 1024)))

  ;; Whether the secret is at $at.
  (func $secret_at (param $at i32) (result i32)
    (local $i i32)
    (block $differ
      (loop $byte
        (br_if $differ
          (i32.ne
            (i32.load8_u (i32.add (local.get $at) (local.get $i)))
            (i32.load8_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $byte (i32.lt_u (local.get $i) (global.get $secret_len))))
      (return (i32.const 1)))
    (i32.const 0))

  ;; Redact body $kind in place; write it back if anything changed.
  (func $redact (param $kind i32)
    (local $len i32)
    (local $at i32)
    (local $last i32)
    (local $i i32)
    (local $changed i32)
    (local.set $len (call $read_all (local.get $kind)))
    (if (i32.lt_u (local.get $len) (global.get $secret_len))
      (then (return)))
    (local.set $at (i32.const 1024))
    ;; the last offset the secret can start at
    (local.set $last
      (i32.add (i32.const 1024) (i32.sub (local.get $len) (global.get $secret_len))))
    (loop $scan
      (if (call $secret_at (local.get $at))
        (then
          (local.set $changed (i32.const 1))
          (local.set $i (i32.const 0))
          (loop $hash
            (i32.store8 (i32.add (local.get $at) (local.get $i)) (i32.const 35)) ;; '#'
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $hash (i32.lt_u (local.get $i) (global.get $secret_len))))
          (local.set $at (i32.add (local.get $at) (global.get $secret_len))))
        (else
          (local.set $at (i32.add (local.get $at) (i32.const 1)))))
      (br_if $scan (i32.le_u (local.get $at) (local.get $last))))
    (if (local.get $changed)
      (then (call $write_body (local.get $kind) (i32.const 1024) (local.get $len)))))

  (func (export "handle_request") (result i64)
    (call $redact (i32.const 0))
    (i64.const 1))

  (func (export "handle_response") (param $ctx i32) (param $is_error i32)
    ;; nothing to redact when the next handler failed
    (if (i32.eqz (local.get $is_error))
      (then (call $redact (i32.const 1))))))
