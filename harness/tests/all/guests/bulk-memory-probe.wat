;; The bulk-memory trap probe: an unlowered guest whose `handle_request`
;; does one `memory.copy` of 4096 bytes within its own memory (offset 0 to
;; offset 8192, well inside its one 64 KiB page), then lets the request
;; through to the next handler (next=1, ctx=0).
;;
;; Why it can trap. Traefik 3.4 to 3.7 embed wazero 1.8, whose compiler
;; lowers `memory.copy` to a call of Go's `runtime.memmove` and assumes that
;; call leaves DX alone. Since Go 1.24, memmove may use DX on some paths
;; (here: an 8-byte-aligned copy of 2 KiB or more; which path a copy takes
;; depends on the CPU's features), so a value the compiled code kept in DX
;; across the copy is garbage afterwards (wazero #2375, fixed in 1.9.0).
;; Used as an address, it fails wazero's bounds check: `wasm error: out of
;; bounds memory access`, a 500. DX is one of the five registers wazero keeps
;; values in across a call (DX, R12-R15), so the copy is done in `$copy`
;; with eight pointers as parameters, live across the copy and used after
;; it: one of them is in DX. With no value live across the copy, nothing is
;; seen even where memmove does clobber DX.
;;
;; The end-to-end tests load this guest once per test binary to learn which
;; kind of machine they run on (notes/bulk-memory-trap.md). Every address
;; is in bounds, so any trap is the bug.
;;
;; The harness's Traefik-faithful mode refuses this module (it refuses any
;; bulk-memory instruction), so it runs in a real Traefik only.
(module
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    (call $copy
      (i32.const 8192) (i32.const 0) (i32.const 4096)
      (i32.const 16) (i32.const 20) (i32.const 24) (i32.const 28)
      (i32.const 32) (i32.const 36) (i32.const 40) (i32.const 44))
    i64.const 1)
  (func (export "handle_response") (param i32 i32))
  ;; memory.copy(dst, src, len), then len stored at each of p0..p7.
  (func $copy (param $dst i32) (param $src i32) (param $len i32)
    (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32)
    (param $p4 i32) (param $p5 i32) (param $p6 i32) (param $p7 i32)
    (memory.copy (local.get $dst) (local.get $src) (local.get $len))
    (i32.store (local.get $p0) (local.get $len))
    (i32.store (local.get $p1) (local.get $len))
    (i32.store (local.get $p2) (local.get $len))
    (i32.store (local.get $p3) (local.get $len))
    (i32.store (local.get $p4) (local.get $len))
    (i32.store (local.get $p5) (local.get $len))
    (i32.store (local.get $p6) (local.get $len))
    (i32.store (local.get $p7) (local.get $len))))
