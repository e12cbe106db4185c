//! The guest's shadow stack. wasm32's default of 1 MiB makes every instance
//! 1.1 MiB of linear memory before its first allocation; Traefik's host
//! keeps instances in a `sync.Pool`, which the Go runtime empties over two
//! garbage collections, so under load it instantiates guests again and
//! again, each allocating and zeroing that memory.
//!
//! Cohort's deepest stack is in its parsers, each with a nesting limit
//! (serde_json 128 levels, regex-lite 50). At those limits 64 KiB is enough
//! and 32 KiB is not (`harness/tests/all/hostile.rs`,
//! `the_deepest_configuration_the_parsers_accept_fits_the_guests_stack`);
//! 128 KiB keeps twice that. The stack comes first in memory
//! (`--stack-first`, rustc's default for wasm32), so overflowing it traps
//! instead of corrupting data.
//!
//! The initial memory is sized so that start-up never grows it. wasi-libc's
//! malloc takes the initial memory above the data as its first heap, and
//! asks for more with `memory.grow` only when that is used up; Traefik's
//! wazero grows a memory by allocating a larger Go slice and copying the old
//! one, so every new instance that grows pays a second allocation and a
//! copy of its memory. Four pages hold the stack, the data (some 42 KiB) and
//! the heap start-up and the tested request shapes need (the read pool's
//! 64 KiB and the configuration); a larger configuration still runs, with a
//! grow. `harness/tests/all/budgets.rs`
//! (`no_instance_grows_its_memory`) holds the tested shapes to it.

const STACK_SIZE: u32 = 128 << 10;
const INITIAL_MEMORY: u32 = 4 * (64 << 10);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-bin=cohort-plugin=-zstack-size={STACK_SIZE}");
        println!("cargo:rustc-link-arg-bin=cohort-plugin=--initial-memory={INITIAL_MEMORY}");
    }
}
