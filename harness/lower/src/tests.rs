//! Every case runs the same module before and after lowering in wasmtime and
//! compares what the guest did: its memory afterwards and whether (and how)
//! it trapped. Copies are also checked against `slice::copy_within`, which is
//! a `memmove`.

use std::sync::OnceLock;

use proptest::prelude::*;
use wasmtime::error::Context as _;
use wasmtime::{Engine, Instance, Linker, Memory, MemoryType, Module, Store, Trap};
use wasmtime::{Result, bail};

use super::{COPY_HELPER_NAME, FILL_HELPER_NAME, LowerError, count_bulk_memory, lower_bulk_memory};

const PAGE: u32 = 65_536;

/// One page of memory and one exported function per instruction.
const BULK: &str = r#"
(module
  (memory (export "mem") 1)
  (func (export "copy") (param i32 i32 i32)
    local.get 0 local.get 1 local.get 2 memory.copy)
  (func (export "fill") (param i32 i32 i32)
    local.get 0 local.get 1 local.get 2 memory.fill))
"#;

/// What a call did to the guest.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    trap: Option<Trap>,
    memory: Vec<u8>,
}

/// An engine that counts fuel: a lowered loop that never ends (a bug in
/// the pass) then fails its test at once instead of hanging it.
fn fueled_engine() -> Engine {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    Engine::new(&config).expect("an engine with fuel")
}

/// Fuel for a few hundred page-sized copies, not for ever.
const LOWERED_FUEL: u64 = 200_000_000;

fn fueled_store<T: 'static>(engine: &Engine, data: T) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.set_fuel(LOWERED_FUEL).expect("fuel is on");
    store
}

/// The `BULK` module compiled as written and lowered, shared by all tests.
struct Fixture {
    engine: Engine,
    original: Module,
    lowered: Module,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let engine = fueled_engine();
        let wasm = wat::parse_str(BULK).expect("BULK is valid text");
        let lowered = lower_bulk_memory(&wasm).expect("BULK lowers");
        Fixture {
            original: Module::new(&engine, &wasm).expect("BULK compiles"),
            lowered: Module::new(&engine, &lowered).expect("lowered BULK compiles"),
            engine,
        }
    })
}

/// Memory contents without repeats at any small distance, so a byte that
/// lands in the wrong place shows.
fn initial_memory() -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..PAGE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Runs export `func(a, b, c)` of `module` on a fresh instance whose memory
/// starts as `initial_memory()`.
fn call(module: &Module, func: &str, (a, b, c): (u32, u32, u32), fuel: u64) -> Outcome {
    let mut store = fueled_store(&fixture().engine, ());
    store.set_fuel(fuel).expect("fuel is on");
    let instance = Instance::new(&mut store, module, &[]).expect("instantiates");
    let memory = instance
        .get_memory(&mut store, "mem")
        .expect("exports its memory");
    memory
        .data_mut(&mut store)
        .copy_from_slice(&initial_memory());
    let f = instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, func)
        .expect("exports the function");
    let trap = match f.call(
        &mut store,
        (a.cast_signed(), b.cast_signed(), c.cast_signed()),
    ) {
        Ok(()) => None,
        Err(e) => Some(*e.downcast_ref::<Trap>().expect("only traps go wrong")),
    };
    Outcome {
        trap,
        memory: memory.data(&store).to_vec(),
    }
}

/// Runs the call on the original and on the lowered module, checks they
/// agree, and returns what happened.
fn both(func: &str, args: (u32, u32, u32)) -> Outcome {
    let fixture = fixture();
    // wasmtime's own memory.copy charges fuel by length before its bounds
    // check, and cannot loop: only the lowered code's fuel is bounded.
    let original = call(&fixture.original, func, args, u64::MAX);
    let lowered = call(&fixture.lowered, func, args, LOWERED_FUEL);
    assert_eq!(original.trap, lowered.trap, "{func}{args:?}: traps differ");
    assert!(
        original.memory == lowered.memory,
        "{func}{args:?}: memories differ at byte {:?}",
        original
            .memory
            .iter()
            .zip(&lowered.memory)
            .position(|(a, b)| a != b)
    );
    lowered
}

/// The expected memory after `memory.copy dst src len` within bounds.
fn memmove(dst: u32, src: u32, len: u32) -> Vec<u8> {
    let mut memory = initial_memory();
    let (dst, src, len) = (dst as usize, src as usize, len as usize);
    memory.copy_within(src..src + len, dst);
    memory
}

/// The expected memory after `memory.fill dst value len` within bounds.
fn fill(dst: u32, value: u32, len: u32) -> Vec<u8> {
    let mut memory = initial_memory();
    let (dst, len) = (dst as usize, len as usize);
    memory[dst..dst + len].fill(value.to_le_bytes()[0]);
    memory
}

fn assert_copies(dst: u32, src: u32, len: u32) {
    let outcome = both("copy", (dst, src, len));
    assert_eq!(outcome.trap, None, "copy({dst}, {src}, {len}) trapped");
    assert!(
        outcome.memory == memmove(dst, src, len),
        "copy({dst}, {src}, {len}) is not a memmove"
    );
}

fn assert_traps(func: &str, args: (u32, u32, u32)) {
    let outcome = both(func, args);
    assert_eq!(
        outcome.trap,
        Some(Trap::MemoryOutOfBounds),
        "{func}{args:?}"
    );
    assert!(
        outcome.memory == initial_memory(),
        "{func}{args:?} wrote before trapping"
    );
}

#[test]
fn the_fixture_is_lowered() -> Result<()> {
    let wasm = wat::parse_str(BULK)?;
    assert_eq!(count_bulk_memory(&wasm)?, 2);
    assert_eq!(count_bulk_memory(&lower_bulk_memory(&wasm)?)?, 0);
    Ok(())
}

#[test]
fn forward_copy() {
    assert_copies(100, 5_000, 3_000);
    // Every size class: whole blocks, words and a byte tail, and none.
    for len in [1, 7, 8, 9, 31, 32, 33, 40, 41, 2_048, 4_097] {
        assert_copies(1_000, 30_001, len);
        assert_copies(30_003, 1_000, len);
    }
    // Up to the last byte of memory.
    assert_copies(0, PAGE - 4_096, 4_096);
    assert_copies(PAGE - 4_096, 0, 4_096);
}

#[test]
fn overlapping_copy_upwards() {
    // dst > src: the copy must run downwards.
    for distance in [1, 3, 7, 8, 9, 31, 32, 33, 100] {
        for len in [distance, 2 * distance + 5, 4_099] {
            assert_copies(2_000 + distance, 2_000, len);
        }
    }
    assert_copies(1, 0, PAGE - 1);
}

#[test]
fn overlapping_copy_downwards() {
    // dst < src: the copy must run upwards.
    for distance in [1, 3, 7, 8, 9, 31, 32, 33, 100] {
        for len in [distance, 2 * distance + 5, 4_099] {
            assert_copies(2_000, 2_000 + distance, len);
        }
    }
    assert_copies(0, 1, PAGE - 1);
}

#[test]
fn copy_onto_itself() {
    assert_copies(1_234, 1_234, 5_000);
}

#[test]
fn zero_length() {
    assert_copies(10, 20, 0);
    assert_copies(PAGE, PAGE, 0);
    assert_eq!(both("fill", (PAGE, 0xaa, 0)).memory, initial_memory());
    // Zero bytes just past the end are still out of bounds.
    assert_traps("copy", (PAGE + 1, 0, 0));
    assert_traps("copy", (0, PAGE + 1, 0));
    assert_traps("fill", (PAGE + 1, 0, 0));
}

#[test]
fn fill_writes_the_low_byte() {
    for (dst, value, len) in [
        (3, 0x1ab, 5_000),
        (0, 0, PAGE),
        (PAGE - 37, 7, 37),
        (100, 0xffff_ff80, 1),
        (101, 0x55, 33),
    ] {
        let outcome = both("fill", (dst, value, len));
        assert_eq!(outcome.trap, None);
        assert!(
            outcome.memory == fill(dst, value, len),
            "fill({dst}, {value}, {len})"
        );
    }
}

#[test]
fn out_of_bounds_still_traps_and_writes_nothing() {
    assert_traps("copy", (PAGE - 1_000, 0, 1_001));
    assert_traps("copy", (0, PAGE - 1_000, 1_001));
    assert_traps("copy", (100, 200, PAGE));
    // Sums that wrap around in 32 bits.
    assert_traps("copy", (0xffff_fff0, 0, 0x20));
    assert_traps("copy", (0, 0xffff_fff0, 0x20));
    assert_traps("copy", (0, 0, u32::MAX));
    assert_traps("fill", (PAGE - 10, 1, 11));
    assert_traps("fill", (0xffff_fff0, 1, 0x20));
}

/// Imports (shifting the function index space), an imported memory, a
/// table with `call_indirect`, a start function, passive data with
/// `memory.init` (which needs the data count section) and a global.
const WITH_IMPORTS: &str = r#"
(module
  (type $op (func (param i32 i32 i32)))
  (import "env" "log" (func $log (param i32)))
  (import "env" "memory" (memory 1))
  (import "env" "log2" (func $log2 (param i32 i32)))
  (global $calls (mut i32) (i32.const 0))
  (table 2 funcref)
  (elem (i32.const 0) $copy $fill)
  (data $greeting "hello, world")
  (start $init)
  (func $init
    (memory.init $greeting (i32.const 0) (i32.const 0) (i32.const 12))
    (call $log (i32.const 42)))
  (func $copy (type $op)
    (memory.copy (local.get 0) (local.get 1) (local.get 2))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (call $log2 (local.get 0) (global.get $calls)))
  (func $fill (type $op)
    (memory.fill (local.get 0) (local.get 1) (local.get 2))
    (call $log (i32.load8_u (local.get 0))))
  (func (export "run") (param $which i32) (param i32 i32 i32)
    (call_indirect (type $op) (local.get 1) (local.get 2) (local.get 3) (local.get $which))))
"#;

/// Instantiates `wasm` as `WITH_IMPORTS` wants, runs `run` with each of
/// `calls`, and returns what the guest logged and its memory.
fn run_with_imports(wasm: &[u8], calls: &[[i32; 4]]) -> Result<(Vec<i32>, Vec<u8>)> {
    let engine = fueled_engine();
    let module = Module::new(&engine, wasm)?;
    let mut store = fueled_store(&engine, Vec::<i32>::new());
    let memory = Memory::new(&mut store, MemoryType::new(1, None))?;
    let mut linker = Linker::new(&engine);
    linker.func_wrap(
        "env",
        "log",
        |mut caller: wasmtime::Caller<'_, Vec<i32>>, x: i32| {
            caller.data_mut().push(x);
        },
    )?;
    linker.func_wrap(
        "env",
        "log2",
        |mut caller: wasmtime::Caller<'_, Vec<i32>>, x: i32, y: i32| {
            caller.data_mut().extend([x, y]);
        },
    )?;
    linker.define(&store, "env", "memory", memory)?;
    let instance = linker.instantiate(&mut store, &module)?;
    let run = instance.get_typed_func::<(i32, i32, i32, i32), ()>(&mut store, "run")?;
    for &[which, a, b, c] in calls {
        run.call(&mut store, (which, a, b, c))?;
    }
    let memory = memory.data(&store).to_vec();
    Ok((store.into_data(), memory))
}

#[test]
fn module_with_imports_keeps_its_indices() -> Result<()> {
    let wasm = wat::parse_str(WITH_IMPORTS)?;
    let lowered = lower_bulk_memory(&wasm)?;
    assert_eq!(count_bulk_memory(&lowered)?, 0);
    let calls = [
        [0, 100, 0, 12],
        [1, 200, 0x61, 3_000],
        [0, 5, 0, 4_000],
        [0, 0, 5, 4_000],
    ];
    let original = run_with_imports(&wasm, &calls)?;
    let after = run_with_imports(&lowered, &calls)?;
    assert_eq!(original.0, vec![42, 100, 1, 0x61, 5, 2, 0, 3]);
    assert_eq!(after.0, original.0);
    assert!(after.1 == original.1, "memories differ");
    assert_eq!(after.1.get(100..112), Some(&b"hello, world"[..]));
    Ok(())
}

/// Named functions, a module name and a custom section placed among the
/// known sections.
const NAMED: &str = r#"
(module $named
  (@custom "cohort-before" (before first) "first")
  (memory (export "mem") 1)
  (func $copier (export "copy") (param $dst i32) (param $src i32) (param $len i32)
    (memory.copy (local.get $dst) (local.get $src) (local.get $len)))
  (func $filler (export "fill") (param $dst i32) (param $value i32) (param $len i32)
    (memory.fill (local.get $dst) (local.get $value) (local.get $len)))
  (@custom "cohort-after" (after func) "\00\01\02"))
"#;

/// `(section id, custom section name)` in order.
fn section_list(wasm: &[u8]) -> Result<Vec<(u8, String)>> {
    let mut sections = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if let wasmparser::Payload::CustomSection(custom) = &payload {
            sections.push((0, custom.name().to_owned()));
        } else if let Some((id, _)) = payload.as_section() {
            sections.push((id, String::new()));
        }
    }
    Ok(sections)
}

fn custom_section(wasm: &[u8], name: &str) -> Result<Vec<u8>> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(custom) = payload?
            && custom.name() == name
        {
            return Ok(custom.data().to_vec());
        }
    }
    bail!("no custom section {name:?}")
}

#[test]
fn module_with_a_name_section_keeps_it() -> Result<()> {
    let wasm = wat::parse_str(NAMED)?;
    let lowered = lower_bulk_memory(&wasm)?;
    assert_eq!(section_list(&lowered)?, section_list(&wasm)?);
    for name in ["cohort-before", "cohort-after"] {
        assert_eq!(
            custom_section(&lowered, name)?,
            custom_section(&wasm, name)?
        );
    }
    assert_eq!(
        crate::touch::function_names(&lowered)?
            .into_iter()
            .collect::<Vec<_>>(),
        [
            (0, "copier".to_owned()),
            (1, "filler".to_owned()),
            (2, COPY_HELPER_NAME.to_owned()),
            (3, FILL_HELPER_NAME.to_owned()),
        ]
    );
    // Module and local names survive too.
    let names = custom_section(&lowered, "name")?;
    let printed = String::from_utf8_lossy(&names);
    for name in ["named", "dst", "src", "value", "len"] {
        assert!(printed.contains(name), "lost the name {name:?}");
    }
    // And it runs like the original.
    let engine = fueled_engine();
    for (wasm, expect) in [(&wasm, "original"), (&lowered, "lowered")] {
        let module = Module::new(&engine, wasm).context(expect)?;
        let mut store = fueled_store(&engine, ());
        let instance = Instance::new(&mut store, &module, &[])?;
        let fill = instance.get_typed_func::<(i32, i32, i32), ()>(&mut store, "fill")?;
        fill.call(&mut store, (8, 0x7e, 4_000))?;
        let memory = instance
            .get_memory(&mut store, "mem")
            .context("exports its memory")?;
        assert_eq!(memory.data(&store).get(7..4_009).map(<[u8]>::to_vec), {
            let mut expected = vec![0x7e; 4_002];
            expected[0] = 0;
            expected[4_001] = 0;
            Some(expected)
        });
    }
    Ok(())
}

#[test]
fn a_module_without_bulk_memory_is_returned_as_is() -> Result<()> {
    let wasm = wat::parse_str(
        r#"(module (memory 1) (func $f (export "f") (i32.store (i32.const 0) (i32.const 1))))"#,
    )?;
    assert_eq!(count_bulk_memory(&wasm)?, 0);
    assert_eq!(lower_bulk_memory(&wasm)?, wasm);
    Ok(())
}

#[test]
fn counts_every_copy_and_fill() -> Result<()> {
    let wasm = wat::parse_str(
        r#"(module (memory 1)
             (func (memory.copy (i32.const 0) (i32.const 1) (i32.const 2))
                   (memory.fill (i32.const 0) (i32.const 1) (i32.const 2)))
             (func (memory.copy (i32.const 0) (i32.const 1) (i32.const 2))))"#,
    )?;
    assert_eq!(count_bulk_memory(&wasm)?, 3);
    Ok(())
}

#[test]
fn refuses_what_it_cannot_lower() -> Result<()> {
    let memory64 = wat::parse_str(
        r#"(module (memory i64 1)
             (func (memory.fill (i64.const 0) (i32.const 1) (i64.const 2))))"#,
    )?;
    assert!(matches!(
        lower_bulk_memory(&memory64),
        Err(LowerError::Unsupported(_))
    ));
    let second_memory = wat::parse_str(
        r#"(module (memory 1) (memory $two 1)
             (func (memory.fill $two (i32.const 0) (i32.const 1) (i32.const 2))))"#,
    )?;
    assert!(matches!(
        lower_bulk_memory(&second_memory),
        Err(LowerError::Unsupported(_))
    ));
    assert!(matches!(
        lower_bulk_memory(b"\0asm\x01\0\0\0\x01"),
        Err(LowerError::Parse(_))
    ));
    // An empty component (version 0x0d, layer 1): not a core module.
    let component = b"\0asm\x0d\0\x01\0";
    assert!(matches!(
        lower_bulk_memory(component),
        Err(LowerError::Unsupported(_))
    ));
    assert!(matches!(
        count_bulk_memory(component),
        Err(LowerError::Unsupported(_))
    ));
    assert!(matches!(
        count_bulk_memory(b"not wasm"),
        Err(LowerError::Parse(_))
    ));
    Ok(())
}

#[test]
fn errors_say_what_went_wrong_and_keep_their_cause() -> Result<()> {
    use std::error::Error as _;
    let parse = lower_bulk_memory(b"not wasm").expect_err("not wasm");
    assert!(
        parse.to_string().starts_with("not a valid wasm module: "),
        "{parse}"
    );
    assert!(parse.source().is_some(), "the parser's error is the cause");
    let memory64 = wat::parse_str(
        r#"(module (memory i64 1)
             (func (memory.fill (i64.const 0) (i32.const 1) (i64.const 2))))"#,
    )?;
    let unsupported = lower_bulk_memory(&memory64).expect_err("memory64");
    assert!(
        unsupported
            .to_string()
            .starts_with("cannot lower bulk memory: "),
        "{unsupported}"
    );
    assert!(unsupported.source().is_none());
    Ok(())
}

/// Lengths of every size class, with more weight on the small ones real code
/// copies most often.
fn length() -> impl Strategy<Value = u32> {
    prop_oneof![0..64_u32, 0..4_096_u32, 0..=PAGE]
}

/// `(start, len)` with `start + len` within the page.
fn in_bounds() -> impl Strategy<Value = (u32, u32)> {
    length().prop_flat_map(|len| (0..=PAGE - len, Just(len)))
}

/// Any address: in the page, just past it, or where sums wrap.
fn any_address() -> impl Strategy<Value = u32> {
    prop_oneof![0..=PAGE, PAGE - 64..PAGE + 64, u32::MAX - 64..=u32::MAX]
}

proptest! {
    #[test]
    fn lowered_copy_is_a_memmove((dst, len) in in_bounds(), src_seed in 0..=PAGE) {
        let src = src_seed % (PAGE - len + 1);
        let outcome = both("copy", (dst, src, len));
        prop_assert_eq!(outcome.trap, None);
        prop_assert!(outcome.memory == memmove(dst, src, len));
    }

    #[test]
    fn lowered_copy_near_a_neighbour(
        (dst, len) in in_bounds(),
        distance in -40_i64..=40,
    ) {
        let src = (i64::from(dst) + distance).clamp(0, i64::from(PAGE - len));
        let src = u32::try_from(src).expect("clamped into the page");
        let outcome = both("copy", (dst, src, len));
        prop_assert!(outcome.memory == memmove(dst, src, len));
    }

    #[test]
    fn lowered_fill_is_a_fill((dst, len) in in_bounds(), value in any::<u32>()) {
        let outcome = both("fill", (dst, value, len));
        prop_assert_eq!(outcome.trap, None);
        prop_assert!(outcome.memory == fill(dst, value, len));
    }

    #[test]
    fn lowered_matches_anywhere(
        dst in any_address(),
        src in any_address(),
        len in prop_oneof![length(), u32::MAX - 64..=u32::MAX],
    ) {
        // `both` asserts the original and the lowered module agree, traps
        // included.
        both("copy", (dst, src, len));
        both("fill", (dst, src, len));
    }
}
