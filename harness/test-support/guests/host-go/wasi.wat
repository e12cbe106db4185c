;; Mirrors http-wasm-host-go's examples/wasi.wat (written afresh from its
;; behaviour). It prints each request and response to stdout with WASI's
;; `fd_write`, and otherwise changes nothing:
;;
;;   METHOD URI PROTOCOL
;;   name: value              (each request header value)
;;                            (a blank line, then the body, when there is one)
;;   body
;;   name: value              (each request trailer value)
;;                            (a blank line before the response)
;;   PROTOCOL STATUS          (or "host error" when the next handler failed)
;;   name: value              (each response header value)
;;
;;   body
;;   name: value              (each response trailer value)
;;
;; It enables buffering of both bodies at start-up and traps if the host
;; refuses. host-go's Example_wasi posts `{"hello": "panda"}` with its stdout
;; wired to the guest's and expects "POST / HTTP/1.1", the request headers,
;; the body, then "HTTP/1.1 200", the response headers and
;; `{"hello": "world"}`.
(module $wasi
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "http_handler" "enable_features"
    (func $enable_features (param i32) (result i32)))
  (import "http_handler" "get_method"
    (func $get_method (param i32 i32) (result i32)))
  (import "http_handler" "get_uri"
    (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "get_protocol_version"
    (func $get_protocol_version (param i32 i32) (result i32)))
  (import "http_handler" "get_header_names"
    (func $get_header_names (param i32 i32 i32) (result i64)))
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "read_body"
    (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "get_status_code"
    (func $get_status_code (result i32)))
  (memory (export "memory") 1 1)

  ;; Layout: 0 "\n"; 8..16 an iovec; 24 fd_write's byte count;
  ;; 32 "host error"; 1024..4096 a line or a body's start (bodies may run to
  ;; the end of the page); 4096..12288 header names; 16384..24576 header
  ;; values; 32768.. a "name: value" line.
  (data (i32.const 0) "\n")
  (data (i32.const 32) "host error") ;; 10 bytes

  (func $start_up
    ;; 3 = buffer the request body | buffer the response body
    (if (i32.ne
          (i32.and (call $enable_features (i32.const 3)) (i32.const 3))
          (i32.const 3))
      (then unreachable)))
  (start $start_up)

  ;; Write $len bytes at $at to stdout, however many calls it takes (a host
  ;; may write less than asked, as wasmtime's WASI does: one iovec a call);
  ;; trap on an error.
  (func $write (param $at i32) (param $len i32)
    (local $wrote i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 8) (local.get $at))
        (i32.store (i32.const 12) (local.get $len))
        (if (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 24))
          (then unreachable))
        (local.set $wrote (i32.load (i32.const 24)))
        (local.set $at (i32.add (local.get $at) (local.get $wrote)))
        (local.set $len (i32.sub (local.get $len) (local.get $wrote)))
        (br $more))))

  ;; Print $len bytes at $at and a newline.
  (func $println (param $at i32) (param $len i32)
    (call $write (local.get $at) (local.get $len))
    (call $write (i32.const 0) (i32.const 1)))

  ;; Copy $len bytes from $from to $to; the end of the copy.
  (func $copy (param $to i32) (param $from i32) (param $len i32) (result i32)
    (local $i i32)
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8
          (i32.add (local.get $to) (local.get $i))
          (i32.load8_u (i32.add (local.get $from) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    (i32.add (local.get $to) (local.get $len)))

  ;; A space at $at; the byte after it.
  (func $space (param $at i32) (result i32)
    (i32.store8 (local.get $at) (i32.const 32))
    (i32.add (local.get $at) (i32.const 1)))

  ;; Each NUL-terminated value of header $name in $kind as "name: value".
  (func $print_values (param $kind i32) (param $name i32) (param $name_len i32)
    (local $end i32)
    (local $value i32)
    (local $at i32)
    (local $line i32)
    (local.set $end
      (i32.wrap_i64
        (call $get_header_values
          (local.get $kind) (local.get $name) (local.get $name_len)
          (i32.const 16384) (i32.const 8192))))
    (if (i32.gt_u (local.get $end) (i32.const 8192))
      (then unreachable))
    (local.set $end (i32.add (i32.const 16384) (local.get $end)))
    (local.set $value (i32.const 16384))
    (local.set $at (i32.const 16384))
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (if (i32.eqz (i32.load8_u (local.get $at)))
          (then
            (local.set $line
              (call $copy (i32.const 32768) (local.get $name) (local.get $name_len)))
            (i32.store8 (local.get $line) (i32.const 58)) ;; ':'
            (local.set $line
              (call $space (i32.add (local.get $line) (i32.const 1))))
            (local.set $line
              (call $copy
                (local.get $line)
                (local.get $value)
                (i32.sub (local.get $at) (local.get $value))))
            (call $println
              (i32.const 32768)
              (i32.sub (local.get $line) (i32.const 32768)))
            (local.set $value (i32.add (local.get $at) (i32.const 1)))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $byte))))

  ;; Every field of header kind $kind (0 request, 1 response, 2 request
  ;; trailers, 3 response trailers).
  (func $print_headers (param $kind i32)
    (local $end i32)
    (local $name i32)
    (local $at i32)
    (local.set $end
      (i32.wrap_i64
        (call $get_header_names (local.get $kind) (i32.const 4096) (i32.const 8192))))
    (if (i32.gt_u (local.get $end) (i32.const 8192))
      (then unreachable))
    (local.set $end (i32.add (i32.const 4096) (local.get $end)))
    (local.set $name (i32.const 4096))
    (local.set $at (i32.const 4096))
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (if (i32.eqz (i32.load8_u (local.get $at)))
          (then
            (call $print_values
              (local.get $kind)
              (local.get $name)
              (i32.sub (local.get $at) (local.get $name)))
            (local.set $name (i32.add (local.get $at) (i32.const 1)))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $byte))))

  ;; Body $kind (0 request, 1 response), after a blank line, if not empty.
  (func $print_body (param $kind i32)
    (local $end i32)
    (local $got i64)
    (local.set $end (i32.const 1024))
    (loop $more
      (if (i32.ge_u (local.get $end) (i32.const 65536))
        (then unreachable)) ;; larger than this guest can hold
      (local.set $got
        (call $read_body
          (local.get $kind)
          (local.get $end)
          (i32.sub (i32.const 65536) (local.get $end))))
      (local.set $end (i32.add (local.get $end) (i32.wrap_i64 (local.get $got))))
      (br_if $more (i64.eqz (i64.shr_u (local.get $got) (i64.const 32)))))
    (if (i32.eq (local.get $end) (i32.const 1024))
      (then (return)))
    (call $println (i32.const 0) (i32.const 0))
    (call $println (i32.const 1024) (i32.sub (local.get $end) (i32.const 1024))))

  (func (export "handle_request") (result i64)
    (local $at i32)
    ;; METHOD URI PROTOCOL
    (local.set $at (i32.const 1024))
    (local.set $at
      (i32.add (local.get $at) (call $get_method (local.get $at) (i32.const 1000))))
    (local.set $at (call $space (local.get $at)))
    (local.set $at
      (i32.add (local.get $at) (call $get_uri (local.get $at) (i32.const 1000))))
    (local.set $at (call $space (local.get $at)))
    (local.set $at
      (i32.add (local.get $at) (call $get_protocol_version (local.get $at) (i32.const 100))))
    (call $println (i32.const 1024) (i32.sub (local.get $at) (i32.const 1024)))
    (call $print_headers (i32.const 0))
    (call $print_body (i32.const 0))
    (call $print_headers (i32.const 2))
    (i64.const 1))

  (func (export "handle_response") (param $ctx i32) (param $is_error i32)
    (local $at i32)
    (local $status i32)
    (call $println (i32.const 0) (i32.const 0))
    (if (local.get $is_error)
      (then
        (call $println (i32.const 32) (i32.const 10))
        (return)))
    ;; PROTOCOL STATUS
    (local.set $at (i32.const 1024))
    (local.set $at
      (i32.add (local.get $at) (call $get_protocol_version (local.get $at) (i32.const 100))))
    (local.set $at (call $space (local.get $at)))
    (local.set $status (call $get_status_code))
    (if (i32.or
          (i32.lt_u (local.get $status) (i32.const 100))
          (i32.gt_u (local.get $status) (i32.const 999)))
      (then unreachable))
    (i32.store8 (local.get $at)
      (i32.add (i32.const 48) (i32.div_u (local.get $status) (i32.const 100))))
    (i32.store8 offset=1 (local.get $at)
      (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $status) (i32.const 10)) (i32.const 10))))
    (i32.store8 offset=2 (local.get $at)
      (i32.add (i32.const 48) (i32.rem_u (local.get $status) (i32.const 10))))
    (call $println (i32.const 1024) (i32.sub (i32.add (local.get $at) (i32.const 3)) (i32.const 1024)))
    (call $print_headers (i32.const 1))
    (call $print_body (i32.const 1))
    (call $print_headers (i32.const 3))))
