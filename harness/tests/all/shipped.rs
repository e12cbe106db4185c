//! The `plugin.wasm` the build ships: free of bulk-memory instructions (which
//! trap in Traefik 3.7's wazero from about 2 KiB on) and small enough.

use cohort_harness::artifacts::{PLUGIN_WASM, PLUGIN_WASM_LEN, PLUGIN_WASM_UNLOWERED};
use cohort_harness::lower::{count_bulk_memory, lower_bulk_memory};

/// Traefik loads the whole file per middleware; keep it modest.
const MAX_SHIPPED_BYTES: usize = 300 * 1024;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[test]
fn shipped_guest_has_no_bulk_memory_instructions() {
    let shipped = read(PLUGIN_WASM);
    assert_eq!(count_bulk_memory(&shipped).unwrap(), 0);
}

#[test]
fn the_compiler_output_had_some_so_the_pass_did_work() {
    let unlowered = read(PLUGIN_WASM_UNLOWERED);
    let ops = count_bulk_memory(&unlowered).unwrap();
    assert!(ops > 0, "the unlowered guest has no memory.copy/fill");
}

#[test]
fn shipped_guest_is_the_lowered_compiler_output() {
    let shipped = read(PLUGIN_WASM);
    assert_eq!(shipped.len(), PLUGIN_WASM_LEN);
    assert!(lower_bulk_memory(&read(PLUGIN_WASM_UNLOWERED)).unwrap() == shipped);
    wasmparser::Validator::new()
        .validate_all(&shipped)
        .expect("the shipped guest validates");
}

#[test]
fn shipped_guest_is_at_most_300_kb() {
    let len = read(PLUGIN_WASM).len();
    assert!(
        len <= MAX_SHIPPED_BYTES,
        "plugin.wasm is {len} bytes, over {MAX_SHIPPED_BYTES}"
    );
}
