;; Mirrors http-wasm-host-go's examples/config.wat (written afresh from its
;; behaviour). The configuration is eight raw bytes, a little-endian u64 of
;; http-wasm feature bits (1 buffer request, 2 buffer response, 4 trailers).
;; At start-up (the module's start function) the guest asks the host to
;; enable them and traps unless: the configuration is exactly eight bytes;
;; asked for nothing, nothing is enabled; asked for something, some of it is.
;; Requests then go straight on to the next handler.
;;
;; host-go's TestConfig runs it with features 0, 1, 2, 4, 1|2 and 1|2|4 and
;; expects the middleware to load and the next handler to read the request
;; body intact, the client to read the response body intact.
(module $config
  (import "http_handler" "enable_features"
    (func $enable_features (param i32) (result i32)))
  (import "http_handler" "get_config"
    (func $get_config (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)

  (func $enable_configured_features
    (local $asked i32)
    (local $enabled i32)
    ;; the configuration, read to offset 0, must be exactly 8 bytes
    (if (i32.ne (call $get_config (i32.const 0) (i32.const 8)) (i32.const 8))
      (then unreachable))
    ;; the feature bits are in the low word
    (local.set $asked (i32.load (i32.const 0)))
    (local.set $enabled (call $enable_features (local.get $asked)))
    (if (local.get $asked)
      (then
        (if (i32.eqz (i32.and (local.get $enabled) (local.get $asked)))
          (then unreachable)))
      (else
        (if (local.get $enabled)
          (then unreachable)))))
  (start $enable_configured_features)

  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
