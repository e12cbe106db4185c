//! The traced module must compute what the original does, and its touch
//! memory must name exactly the lines and functions the call used.

use wasmtime::{Engine, Instance, Module, Store};

use super::{
    ENTRIES_AT, FUNCTIONS_AT, LINE_BYTES, TOUCH_MEMORY, TouchCounts, Touched, data_extent,
    trace_touches,
};

/// Loads, stores of every width and type, an access straddling two lines,
/// a memarg offset, a function called twice, and one that never runs.
const GUEST: &str = r#"
(module
  (memory (export "memory") 1)
  (func $sum (param $at i32) (result i64)
    (i64.add
      (i64.load offset=60 (local.get $at))     ;; bytes 60..67: two lines
      (i64.extend_i32_u (i32.load8_u (i32.const 200)))))
  (func (export "run") (result i64)
    (i32.store (i32.const 0) (i32.const 7))
    (i64.store (i32.const 128) (i64.const 9))
    (f32.store (i32.const 256) (f32.const 1.5))
    (f64.store (i32.const 320) (f64.const 2.5))
    (i64.store32 (i32.const 384) (i64.const 3))
    (drop (f64.load (i32.const 320)))
    (i64.add (call $sum (i32.const 0)) (call $sum (i32.const 0))))
  (func (export "unused") (i32.store (i32.const 4096) (i32.const 1))))
"#;

fn run(wasm: &[u8]) -> (i64, Vec<u8>, Option<TouchCounts>) {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).expect("a valid module");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    let result = instance
        .get_typed_func::<(), i64>(&mut store, "run")
        .expect("run")
        .call(&mut store, ())
        .expect("runs");
    let memory = instance.get_memory(&mut store, "memory").expect("memory");
    let data = memory.data(&store)[..512].to_vec();
    let touched = instance
        .get_memory(&mut store, TOUCH_MEMORY)
        .map(|m| TouchCounts::of(m.data(&store)));
    (result, data, touched)
}

#[test]
fn traced_code_computes_what_the_original_does() {
    let wasm = wat::parse_str(GUEST).expect("wat");
    let traced = trace_touches(&wasm).expect("traced");
    let (result, memory, touched) = run(&wasm);
    assert_eq!(touched, None);
    let (traced_result, traced_memory, _) = run(&traced);
    assert_eq!(traced_result, result);
    assert_eq!(traced_memory, memory);
}

#[test]
fn the_touch_memory_names_each_line_and_function_used() {
    let traced = trace_touches(&wat::parse_str(GUEST).expect("wat")).expect("traced");
    let engine = Engine::default();
    let module = Module::new(&engine, &traced).expect("a valid module");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    let run = instance
        .get_typed_func::<(), i64>(&mut store, "run")
        .expect("run");
    run.call(&mut store, ()).expect("runs");
    let touch = instance
        .get_memory(&mut store, TOUCH_MEMORY)
        .expect("touch memory");
    let data = touch.data(&store);
    let lines: Vec<usize> = data[..FUNCTIONS_AT as usize]
        .iter()
        .enumerate()
        .filter(|(_, b)| **b != 0)
        .map(|(line, _)| line * LINE_BYTES as usize)
        .collect();
    // 0 (store), 60..67 (lines 0 and 64), 128, 192 (byte 200), 256, 320, 384.
    assert_eq!(lines, [0, 64, 128, 192, 256, 320, 384]);
    let functions: Vec<usize> = data[FUNCTIONS_AT as usize..ENTRIES_AT as usize]
        .iter()
        .enumerate()
        .filter(|(_, b)| **b != 0)
        .map(|(f, _)| f)
        .collect();
    assert_eq!(functions, [0, 1], "$sum and run, not unused");
    assert_eq!(
        TouchCounts::of(data),
        TouchCounts {
            lines: 7,
            pages: 1,
            functions: 2,
            entries: 3,
            code_lines: 2
        }
    );
    let listed = Touched::of(data);
    assert_eq!(listed.lines, [0, 64, 128, 192, 256, 320, 384]);
    assert_eq!(listed.functions, [0, 1]);
    assert_eq!(listed.entries, 3, "run, and $sum twice");
}

#[test]
fn a_module_without_one_defined_exported_memory_is_refused() {
    for wat in [
        "(module (func))",
        r#"(module (memory 1) (memory 1))"#,
        r#"(module (import "env" "memory" (memory 1)) (export "memory" (memory 0)))"#,
        r#"(module (import "env" "memory" (memory 1)) (memory (export "memory") 1))"#,
        "(module (memory 1))",
    ] {
        let wasm = wat::parse_str(wat).expect("wat");
        assert!(trace_touches(&wasm).is_err(), "{wat}");
    }
}

#[test]
fn pages_count_the_distinct_4_kib_pages_of_the_lines() {
    let mut data = vec![0u8; FUNCTIONS_AT as usize + 4];
    // Lines at 0, 4032 (page 0), 4096 (page 1) and 65,536 (page 16).
    for at in [0u32, 4032, 4096, 65_536] {
        data[(at / LINE_BYTES) as usize] = 1;
    }
    data[FUNCTIONS_AT as usize + 3] = 1;
    assert_eq!(
        TouchCounts::of(&data),
        TouchCounts {
            lines: 4,
            pages: 3,
            functions: 1,
            entries: 0,
            code_lines: 0
        }
    );
    assert_eq!(Touched::of(&data).lines, [0, 4032, 4096, 65_536]);
    assert_eq!(Touched::of(&data).functions, [3]);
}

#[test]
fn the_data_extent_spans_every_active_segment() {
    let wasm = wat::parse_str(
        r#"(module (memory 2)
             (data (i32.const 70000) "abc")
             (data (i32.const 65536) "0123456789")
             (data "passive"))"#,
    )
    .expect("wat");
    assert_eq!(data_extent(&wasm).expect("parses"), Some((65_536, 70_003)));
    let none = wat::parse_str("(module (memory 1))").expect("wat");
    assert_eq!(data_extent(&none).expect("parses"), None);
}

/// Loops, branches out of blocks, `if`/`else`, `br_table`, a call in a loop,
/// `return` and `drop`: the traced fuel, split by function, must add up to
/// what wasmtime charges the original.
const BRANCHY: &str = r#"
(module
  (memory (export "memory") 1)
  (func $step (param $i i32) (result i32)
    (if (result i32) (i32.and (local.get $i) (i32.const 1))
      (then (i32.add (i32.mul (local.get $i) (i32.const 3)) (i32.const 1)))
      (else (return (i32.shr_u (local.get $i) (i32.const 1))))))
  (func (export "run") (result i64)
    (local $i i32) (local $sum i32)
    (local.set $i (i32.const 27))
    (block $done
      (loop $again
        (br_if $done (i32.le_u (local.get $i) (i32.const 1)))
        (local.set $i (call $step (local.get $i)))
        (local.set $sum (i32.add (local.get $sum) (local.get $i)))
        (drop (i32.const 9))
        (nop)
        (block $b0 (block $b1
          (br_table $b0 $b1 (i32.and (local.get $i) (i32.const 1))))
          (i32.store (i32.const 8) (local.get $i)))
        (br $again)))
    (i64.extend_i32_u (local.get $sum))))
"#;

fn fuel_of(wasm: &[u8]) -> (i64, u64, Option<Touched>) {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).expect("engine");
    let module = Module::new(&engine, wasm).expect("a valid module");
    let mut store = Store::new(&engine, ());
    store.set_fuel(u64::MAX).expect("fuel");
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    let before = store.get_fuel().expect("fuel");
    let result = instance
        .get_typed_func::<(), i64>(&mut store, "run")
        .expect("run")
        .call(&mut store, ())
        .expect("runs");
    let used = before - store.get_fuel().expect("fuel");
    let touched = instance
        .get_memory(&mut store, TOUCH_MEMORY)
        .map(|m| Touched::of(m.data(&store)));
    (result, used, touched)
}

#[test]
fn traced_fuel_by_function_adds_up_to_wasmtimes_fuel() {
    for (what, wat) in [("GUEST", GUEST), ("BRANCHY", BRANCHY)] {
        let wasm = wat::parse_str(wat).expect("wat");
        let (result, fuel, none) = fuel_of(&wasm);
        assert!(none.is_none());
        let (traced_result, _, touched) = fuel_of(&trace_touches(&wasm).expect("traced"));
        let touched = touched.expect("a touch memory");
        assert_eq!(traced_result, result, "{what}");
        let split: u64 = touched.fuel.iter().map(|(_, f)| f).sum();
        assert_eq!(split, fuel, "{what}: {:?}", touched.fuel);
        assert_eq!(
            touched.fuel.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            touched.functions,
            "{what}: every function that ran, and only those"
        );
    }
}

/// A function that never runs, long enough to fill whole lines of code,
/// between two that do, one of them as long: the code lines are every line
/// of those that ran, never one wholly inside the other.
#[test]
fn code_lines_are_the_lines_of_the_code_that_ran() {
    let filler = "(drop (i32.const 1))\n".repeat(300);
    let wat = format!(
        r#"(module
             (memory (export "memory") 1)
             (func $first (result i32) (i32.const 5))
             (func $never (result i32) {filler} (i32.const 6))
             (func $long (result i32) {filler} (i32.const 7))
             (func (export "run") (result i64)
               (i64.extend_i32_u (i32.add (call $first) (call $long)))))"#
    );
    let wasm = wat::parse_str(&wat).expect("wat");
    let mut bodies = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.expect("parses") {
            bodies.push(body.range());
        }
    }
    let [first, never, long, run] = bodies.as_slice() else {
        panic!("four bodies: {bodies:?}");
    };
    let (_, _, touched) = fuel_of(&trace_touches(&wasm).expect("traced"));
    let lines = touched.expect("a touch memory").code_lines;
    let line = |offset: u64| u32::try_from(offset).unwrap() / LINE_BYTES * LINE_BYTES;
    let inside = |body: &std::ops::Range<u64>| -> Vec<u64> {
        (body.start.div_ceil(64) * 64..body.end / 64 * 64)
            .step_by(64)
            .collect()
    };
    for ran in [first, long, run] {
        assert!(lines.contains(&line(ran.end - 1)), "{lines:?} {ran:?}");
    }
    assert!(inside(long).len() >= 10, "{long:?}");
    for offset in inside(long) {
        assert!(
            lines.contains(&line(offset)),
            "{offset} of {long:?} not in {lines:?}"
        );
    }
    for offset in inside(never) {
        assert!(
            !lines.contains(&line(offset)),
            "{offset} of {never:?} in {lines:?}"
        );
    }
}

/// A function's fuel and entry land where `Touched::of` reads them, for
/// the highest index as for the lowest.
#[test]
fn touched_reads_every_functions_fuel() {
    use super::{FUEL_AT, MAX_FUNCTIONS, TOUCH_BYTES};
    let mut data = vec![0u8; TOUCH_BYTES as usize];
    for (f, fuel) in [(0u32, 7u32), (MAX_FUNCTIONS - 1, 9)] {
        let at = (FUEL_AT + 4 * f) as usize;
        data[at..at + 4].copy_from_slice(&fuel.to_le_bytes());
    }
    data[ENTRIES_AT as usize..ENTRIES_AT as usize + 4].copy_from_slice(&5u32.to_le_bytes());
    let touched = Touched::of(&data);
    assert_eq!(
        touched.fuel,
        [(0, 7), (u64::from(MAX_FUNCTIONS - 1) as u32, 9)]
    );
    assert_eq!(touched.entries, 5);
    assert!(
        touched.functions.is_empty(),
        "the entry count is no function"
    );
}

/// Functions are numbered after the imported ones, and each body's range
/// is where its code lies.
#[test]
fn function_bodies_are_numbered_after_the_imports() {
    let wasm = wat::parse_str(
        r#"(module
             (import "env" "f" (func))
             (func (result i32) (i32.const 1))
             (func (result i32) (i32.add (i32.const 2) (i32.const 3))))"#,
    )
    .expect("wat");
    let bodies = super::function_bodies(&wasm).expect("parses");
    let mut expected = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.expect("parses") {
            expected.push(body.range());
        }
    }
    assert_eq!(bodies, [(1, expected[0].clone()), (2, expected[1].clone())]);
    assert!(expected[0].end <= expected[1].start && expected[1].end <= wasm.len() as u64);
}

/// A module with as many functions as the touch memory has words for is
/// traced, imports counted; one more is refused.
#[test]
fn a_module_with_too_many_functions_is_refused() {
    use super::MAX_FUNCTIONS;
    let module = |imported: u32, defined: u32| {
        let imports = r#"(import "env" "f" (func))"#.repeat(imported as usize);
        let functions = "(func)".repeat(defined as usize);
        wat::parse_str(format!(
            "(module {imports} (memory 1) (export \"memory\" (memory 0)) {functions})"
        ))
        .expect("wat")
    };
    assert!(trace_touches(&module(1, MAX_FUNCTIONS - 1)).is_ok());
    assert!(trace_touches(&module(0, MAX_FUNCTIONS)).is_ok());
    assert!(trace_touches(&module(1, MAX_FUNCTIONS)).is_err());
    assert!(trace_touches(&module(0, MAX_FUNCTIONS + 1)).is_err());
}

/// Every operator of a module without branches runs: its code lines are
/// exactly the lines from each function's first operator to its last.
#[test]
fn code_lines_are_exactly_the_lines_of_the_operators_that_ran() {
    let wasm = wat::parse_str(GUEST).expect("wat");
    let mut expected = std::collections::BTreeSet::new();
    let mut index = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.expect("parses") {
            let mut reader = body.get_operators_reader().expect("operators");
            let mut offsets = Vec::new();
            while !reader.eof() {
                offsets.push(reader.original_position() as u32);
                reader.read().expect("an operator");
            }
            // The third function, `unused`, never runs.
            if index < 2 {
                let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
                expected.extend((first / LINE_BYTES..=last / LINE_BYTES).map(|l| l * LINE_BYTES));
            }
            index += 1;
        }
    }
    let (_, _, touched) = fuel_of(&trace_touches(&wasm).expect("traced"));
    let lines = touched.expect("a touch memory").code_lines;
    assert_eq!(lines, expected.into_iter().collect::<Vec<_>>());
}

/// Every kind of load and store, each ending on the last byte of a line of
/// its own with an untouched line after it, in a function whose parameters
/// outlive the accesses: each line is marked and no other, and the traced
/// code computes what the original does (its scratch locals come after the
/// parameters and the declared locals).
#[test]
fn every_access_kind_marks_its_line() {
    // (operator, width in bytes, the value a store stores)
    let kinds = [
        ("i32.load", 4, None),
        ("i64.load", 8, None),
        ("f32.load", 4, None),
        ("f64.load", 8, None),
        ("i32.load8_s", 1, None),
        ("i32.load8_u", 1, None),
        ("i32.load16_s", 2, None),
        ("i32.load16_u", 2, None),
        ("i64.load8_s", 1, None),
        ("i64.load8_u", 1, None),
        ("i64.load16_s", 2, None),
        ("i64.load16_u", 2, None),
        ("i64.load32_s", 4, None),
        ("i64.load32_u", 4, None),
        ("i32.store", 4, Some("i32.const 1")),
        ("i64.store", 8, Some("i64.const 1")),
        ("f32.store", 4, Some("f32.const 1")),
        ("f64.store", 8, Some("f64.const 1")),
        ("i32.store8", 1, Some("i32.const 1")),
        ("i32.store16", 2, Some("i32.const 1")),
        ("i64.store8", 1, Some("i64.const 1")),
        ("i64.store16", 2, Some("i64.const 1")),
        ("i64.store32", 4, Some("i64.const 1")),
    ];
    let mut body = String::new();
    let mut expected = Vec::new();
    for (i, (op, width, value)) in (0u32..).zip(kinds) {
        let line = 2 * i * LINE_BYTES;
        let at = format!(
            "(i32.add (local.get $base) (i32.const {}))",
            line + LINE_BYTES - width
        );
        body.push_str(&match value {
            None => format!("(drop ({op} {at}))\n"),
            Some(value) => format!("({op} {at} ({value}))\n"),
        });
        expected.push(line);
    }
    let wat = format!(
        r#"(module
             (memory (export "memory") 1)
             (func $accesses (param $keep i64) (param $base i32) (result i64)
               (local $declared i32)
               {body}
               (i64.add (local.get $keep) (i64.extend_i32_u (local.get $base))))
             (func (export "run") (result i64)
               (call $accesses (i64.const 1000) (i32.const 0))))"#
    );
    let wasm = wat::parse_str(&wat).expect("wat");
    let (result, _, _) = fuel_of(&wasm);
    let (traced_result, _, touched) = fuel_of(&trace_touches(&wasm).expect("traced"));
    assert_eq!(traced_result, result);
    assert_eq!(touched.expect("a touch memory").lines, expected);
}

/// Functions are counted after the imported ones, as the module numbers
/// them: a module with an import traces its one function as function 1.
#[test]
fn functions_are_numbered_after_the_imports() {
    let wasm = wat::parse_str(
        r#"(module
             (import "env" "f" (func $f))
             (memory (export "memory") 1)
             (func (export "run") (result i64) (i64.const 3)))"#,
    )
    .expect("wat");
    let traced = trace_touches(&wasm).expect("traced");
    let engine = Engine::default();
    let module = Module::new(&engine, &traced).expect("a valid module");
    let mut store = Store::new(&engine, ());
    let f = wasmtime::Func::wrap(&mut store, || {});
    let instance = Instance::new(&mut store, &module, &[f.into()]).expect("instantiates");
    let run = instance
        .get_typed_func::<(), i64>(&mut store, "run")
        .expect("run");
    assert_eq!(run.call(&mut store, ()).expect("runs"), 3);
    let touch = instance
        .get_memory(&mut store, TOUCH_MEMORY)
        .expect("touch memory");
    let touched = Touched::of(touch.data(&store));
    assert_eq!(touched.functions, [1]);
    assert_eq!(touched.fuel, [(1, 2)]);
    assert!(touched.lines.is_empty());
}

#[test]
fn code_stretches_count_runs_of_adjacent_lines() {
    let touched = |code_lines: Vec<u32>| Touched {
        code_lines,
        ..Touched::default()
    };
    assert_eq!(touched(vec![]).code_stretches(), 0);
    assert_eq!(touched(vec![64]).code_stretches(), 1);
    assert_eq!(touched(vec![0, 64, 128]).code_stretches(), 1);
    assert_eq!(touched(vec![0, 64, 192, 256, 640]).code_stretches(), 3);
}
