//! Touch tracing: which of its memory's cache lines, and which of its
//! functions, a guest uses in one call.
//!
//! A guest's instructions are not what it costs in Traefik alone: its
//! instances wait in a pool while the rest of Traefik, the kernel and the
//! other instances run, so what one request reads of its instance's memory
//! is mostly cold in the CPU's caches. Fuel counts the instructions; this
//! pass counts the memory they reach, deterministically.
//!
//! [`trace_touches`] adds a second memory, exported as [`TOUCH_MEMORY`], and
//! before every load and store of memory 0 it sets the byte of the 64-byte
//! line accessed (both lines when the access straddles two), and at every
//! function's entry the byte of that function, and counts the entry (how
//! many calls the request made: each costs Traefik's compiled code a
//! prologue and a jump, whether or not the function is new). At the end of
//! each straight run of code it adds the run's fuel to its function's, as
//! wasmtime charges it (one unit a call and one an operator, none for
//! `nop`, `drop`, `block`, `loop`, `unreachable`, `return`, `else` and
//! `end`), so that a request's fuel splits by function ([`Touched::fuel`]),
//! and marks the lines of the module's code the run lies in
//! ([`Touched::code_lines`]). The host clears the memory before a call and
//! reads it after ([`Touched`], [`TouchCounts`]). Lines beyond
//! [`TRACED_BYTES`] alias lower ones. The traced module is for measuring
//! only: it runs several times slower and is never shipped.

use std::collections::BTreeMap;
use std::convert::Infallible;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{Instruction, MemArg, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use crate::LowerError;

/// The export name of the touch memory.
pub const TOUCH_MEMORY: &str = "cohort_touched";
/// Cache line size the trace counts in.
pub const LINE_BYTES: u32 = 64;
/// The part of memory 0 traced line by line: 16 MiB.
pub const TRACED_BYTES: u32 = 16 << 20;
/// A page of the touch memory.
const PAGE: u32 = 65_536;
/// Where the touch memory's per-function bytes start, on a page of their
/// own; the lines' bytes are below.
pub const FUNCTIONS_AT: u32 = TRACED_BYTES / LINE_BYTES;
/// Where the touch memory's count of function entries lies, a
/// little-endian `u32`, the last word of the functions' page.
pub const ENTRIES_AT: u32 = FUNCTIONS_AT + PAGE - 4;
/// Where each function's fuel lies, a little-endian `u32` a function, on
/// the page after.
pub const FUEL_AT: u32 = FUNCTIONS_AT + PAGE;
/// The most functions a traced module may have: a fuel word each fills a
/// page, and their bytes stay below [`ENTRIES_AT`].
const MAX_FUNCTIONS: u32 = PAGE / 4;
/// Where the code lines' bytes start, on the last page: a byte for each 64
/// bytes of the module, set when a run of code that lies in them runs. The
/// module's code is not Traefik's compiled code, but it is laid out in the
/// same order, so the lines a request runs through stand for the
/// instruction cache lines it needs. Modules past [`CODE_BYTES`] alias.
pub const CODE_AT: u32 = FUEL_AT + PAGE;
/// The part of the module traced line by line: 4 MiB.
pub const CODE_BYTES: u32 = PAGE * LINE_BYTES;
/// The touch memory's size.
const TOUCH_BYTES: u32 = CODE_AT + PAGE;
const TOUCH_PAGES: u64 = (TOUCH_BYTES / PAGE) as u64;
// The regions follow one another without overlap, and the memory ends
// with the last.
const _: () = {
    assert!(FUNCTIONS_AT == TRACED_BYTES / LINE_BYTES);
    assert!(FUNCTIONS_AT + MAX_FUNCTIONS <= ENTRIES_AT);
    assert!(ENTRIES_AT + 4 == FUEL_AT);
    assert!(FUEL_AT + 4 * MAX_FUNCTIONS == CODE_AT);
    assert!(CODE_AT + CODE_BYTES / LINE_BYTES == TOUCH_BYTES);
    assert!(TOUCH_BYTES.is_multiple_of(PAGE));
};
const LINE_MASK: i32 = (FUNCTIONS_AT - 1).cast_signed();
const LINE_SHIFT: i32 = LINE_BYTES.trailing_zeros().cast_signed();

/// The page size whose distinct count [`TouchCounts::pages`] gives: each
/// distinct page a request reaches is a TLB entry it may miss.
pub const PAGE_BYTES: u32 = 4096;

/// What one call touched, from the touch memory's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TouchCounts {
    /// Distinct 64-byte lines of memory 0 loaded or stored.
    pub lines: usize,
    /// Distinct 4 KiB pages of memory 0 those lines lie in.
    pub pages: usize,
    /// Distinct functions entered.
    pub functions: usize,
    /// Function entries, counting every call (a function called twice
    /// counts twice).
    pub entries: usize,
    /// Distinct 64-byte lines of the module's code that ran.
    pub code_lines: usize,
}

impl TouchCounts {
    /// Counts the set bytes of a touch memory's contents.
    pub fn of(touched: &[u8]) -> TouchCounts {
        Touched::of(touched).counts()
    }
}

/// Which lines and functions one call touched, from the touch memory's
/// bytes: the start address of each line of memory 0, and each function's
/// index (imports first, as in the module).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub lines: Vec<u32>,
    pub functions: Vec<u32>,
    /// Function entries, every call counted.
    pub entries: usize,
    /// `(function, fuel)` of every function that ran, in index order:
    /// what each consumed of the call's fuel, its callees' apart.
    pub fuel: Vec<(u32, u64)>,
    /// The module offset of each 64-byte line of code that ran.
    pub code_lines: Vec<u32>,
}

impl Touched {
    pub fn of(touched: &[u8]) -> Touched {
        let region = |from: u32, to: u32| {
            touched
                .get(from as usize..(to as usize).min(touched.len()))
                .unwrap_or_default()
        };
        let set = |bytes: &[u8], scale: u32| -> Vec<u32> {
            (0u32..)
                .zip(bytes)
                .filter(|&(_, &b)| b != 0)
                .map(|(i, _)| i * scale)
                .collect()
        };
        let word = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().unwrap_or([0; 4]));
        let fuel = region(FUEL_AT, CODE_AT)
            .chunks_exact(4)
            .zip(0u32..)
            .map(|(bytes, f)| (f, u64::from(word(bytes))))
            .filter(|&(_, fuel)| fuel != 0)
            .collect();
        Touched {
            lines: set(region(0, FUNCTIONS_AT), LINE_BYTES),
            functions: set(region(FUNCTIONS_AT, ENTRIES_AT), 1),
            entries: word(region(ENTRIES_AT, FUEL_AT)) as usize,
            fuel,
            code_lines: set(region(CODE_AT, TOUCH_BYTES), LINE_BYTES),
        }
    }

    /// How many stretches of adjacent lines the code lines make: each is a
    /// jump to code the request had not run through yet.
    pub fn code_stretches(&self) -> usize {
        let code = &self.code_lines;
        let gaps = code
            .iter()
            .zip(code.iter().skip(1))
            .filter(|&(a, b)| b - a > LINE_BYTES)
            .count();
        gaps + usize::from(!code.is_empty())
    }

    pub fn counts(&self) -> TouchCounts {
        let mut pages: Vec<u32> = self.lines.iter().map(|at| at / PAGE_BYTES).collect();
        pages.dedup();
        TouchCounts {
            lines: self.lines.len(),
            pages: pages.len(),
            functions: self.functions.len(),
            entries: self.entries,
            code_lines: self.code_lines.len(),
        }
    }
}

/// Where a module's active data segments lie in memory 0, `[start, end)`
/// over all of them with constant offsets: below is the shadow stack when
/// the linker puts it first (rustc's default for wasm32), above the heap.
/// `None` when the module has no such segment.
pub fn data_extent(wasm: &[u8]) -> Result<Option<(u32, u32)>, LowerError> {
    let mut extent: Option<(u32, u32)> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::DataSection(section) = payload? else {
            continue;
        };
        for data in section {
            let data = data?;
            let wasmparser::DataKind::Active { offset_expr, .. } = data.kind else {
                continue;
            };
            let Some(Ok(Operator::I32Const { value })) =
                offset_expr.get_operators_reader().into_iter().next()
            else {
                continue;
            };
            let start = value.cast_unsigned();
            let end = start.saturating_add(u32::try_from(data.data.len()).unwrap_or(u32::MAX));
            extent = Some(extent.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
        }
    }
    Ok(extent)
}

/// Function index to name, from the module's `name` section (empty
/// without one): the names of the functions a trace lists.
pub fn function_names(wasm: &[u8]) -> Result<BTreeMap<u32, String>, LowerError> {
    let mut names = BTreeMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::CustomSection(section) = payload? else {
            continue;
        };
        let wasmparser::KnownCustom::Name(reader) = section.as_known() else {
            continue;
        };
        for subsection in reader {
            if let wasmparser::Name::Function(map) = subsection? {
                for naming in map {
                    let naming = naming?;
                    names.insert(naming.index, naming.name.to_owned());
                }
            }
        }
    }
    Ok(names)
}

/// Each defined function's index (imports first) and the module offsets of
/// its body: which function a line of [`Touched::code_lines`] belongs to.
pub fn function_bodies(wasm: &[u8]) -> Result<Vec<(u32, std::ops::Range<u64>)>, LowerError> {
    let mut imported = 0u32;
    let mut bodies = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    if matches!(import?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = imported + u32::try_from(bodies.len()).unwrap_or(u32::MAX);
                let range = body.range();
                bodies.push((index, range.start..range.end));
            }
            _ => {}
        }
    }
    Ok(bodies)
}

/// `wasm` with every load and store of memory 0 and every function entry
/// recorded in a second memory, exported as [`TOUCH_MEMORY`].
pub fn trace_touches(wasm: &[u8]) -> Result<Vec<u8>, LowerError> {
    wasmparser::Validator::new().validate_all(wasm)?;
    let mut tracer = Tracer::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(section) => {
                for group in section {
                    for ty in group?.types() {
                        let params = match &ty.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => f.params().len(),
                            _ => 0,
                        };
                        tracer.type_params.push(u32::try_from(params).unwrap_or(0));
                    }
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    match import?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => tracer.imported_funcs += 1,
                        TypeRef::Memory(_) => tracer.memories += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(section) => {
                for ty in section {
                    tracer.func_types.push(ty?);
                }
            }
            Payload::MemorySection(section) => tracer.memories += section.count(),
            _ => {}
        }
    }
    if tracer.memories != 1 {
        return Err(LowerError::Unsupported(format!(
            "touch tracing needs exactly one memory, the module has {}",
            tracer.memories
        )));
    }
    let functions = tracer.imported_funcs as usize + tracer.func_types.len();
    if functions > MAX_FUNCTIONS as usize {
        return Err(LowerError::Unsupported(format!(
            "touch tracing takes at most {MAX_FUNCTIONS} functions, the module has {functions}"
        )));
    }
    let mut module = wasm_encoder::Module::new();
    tracer.parse_core_module(&mut module, Parser::new(0), wasm)?;
    if !tracer.memory_added || !tracer.export_added {
        return Err(LowerError::Unsupported(
            "touch tracing needs a defined, exported memory".into(),
        ));
    }
    let traced = module.finish();
    wasmparser::Validator::new()
        .validate_all(&traced)
        .map_err(|e| LowerError::Internal(format!("the traced module does not validate: {e}")))?;
    Ok(traced)
}

#[derive(Default)]
struct Tracer {
    type_params: Vec<u32>,
    func_types: Vec<u32>,
    imported_funcs: u32,
    memories: u32,
    /// The defined function being rewritten.
    next_func: u32,
    memory_added: bool,
    export_added: bool,
}

/// A function's scratch locals: the address, then a value of each of
/// [`SCRATCH_TYPES`].
#[derive(Clone, Copy)]
struct Scratch {
    addr: u32,
    first: u32,
}

const SCRATCH_TYPES: [ValType; 4] = [ValType::I32, ValType::I64, ValType::F32, ValType::F64];

fn touch_at() -> MemArg {
    MemArg {
        offset: 0,
        align: 0,
        target: wasm_encoder::MemArgTarget::Memory(1),
        ordering: None,
    }
}

/// What wasmtime charges for `op` (its `fuel_cost`).
fn fuel(op: &Operator<'_>) -> i32 {
    use Operator as O;
    match op {
        O::Nop
        | O::Drop
        | O::Block { .. }
        | O::Loop { .. }
        | O::Unreachable
        | O::Return
        | O::Else
        | O::End => 0,
        _ => 1,
    }
}

/// Whether the straight run of code ends at `op`: control may leave or
/// enter there, so the run's fuel is counted before it.
fn ends_run(op: &Operator<'_>) -> bool {
    use Operator as O;
    matches!(
        op,
        O::Block { .. }
            | O::Loop { .. }
            | O::If { .. }
            | O::Else
            | O::End
            | O::Br { .. }
            | O::BrIf { .. }
            | O::BrTable { .. }
            | O::BrOnNull { .. }
            | O::BrOnNonNull { .. }
            | O::Return
            | O::Unreachable
            | O::Call { .. }
            | O::CallIndirect { .. }
            | O::CallRef { .. }
            | O::ReturnCall { .. }
            | O::ReturnCallIndirect { .. }
            | O::ReturnCallRef { .. }
            | O::Throw { .. }
            | O::ThrowRef
            | O::TryTable { .. }
    )
}

/// The access an operator makes of memory 0: its memarg, its width in
/// bytes, and for a store the type of the stored value.
fn access(op: &Operator<'_>) -> Option<(wasmparser::MemArg, u32, Option<ValType>)> {
    use Operator as O;
    let (m, width, stored) = match *op {
        O::I32Load { memarg } | O::F32Load { memarg } => (memarg, 4, None),
        O::I64Load { memarg } | O::F64Load { memarg } => (memarg, 8, None),
        O::I32Load8S { memarg }
        | O::I32Load8U { memarg }
        | O::I64Load8S { memarg }
        | O::I64Load8U { memarg } => (memarg, 1, None),
        O::I32Load16S { memarg }
        | O::I32Load16U { memarg }
        | O::I64Load16S { memarg }
        | O::I64Load16U { memarg } => (memarg, 2, None),
        O::I64Load32S { memarg } | O::I64Load32U { memarg } => (memarg, 4, None),
        O::I32Store { memarg } => (memarg, 4, Some(ValType::I32)),
        O::I64Store { memarg } => (memarg, 8, Some(ValType::I64)),
        O::F32Store { memarg } => (memarg, 4, Some(ValType::F32)),
        O::F64Store { memarg } => (memarg, 8, Some(ValType::F64)),
        O::I32Store8 { memarg } => (memarg, 1, Some(ValType::I32)),
        O::I32Store16 { memarg } => (memarg, 2, Some(ValType::I32)),
        O::I64Store8 { memarg } => (memarg, 1, Some(ValType::I64)),
        O::I64Store16 { memarg } => (memarg, 2, Some(ValType::I64)),
        O::I64Store32 { memarg } => (memarg, 4, Some(ValType::I64)),
        _ => return None,
    };
    (m.target == wasmparser::MemArgTarget::Memory(0)).then_some((m, width, stored))
}

impl Tracer {
    /// Marks the lines of `[addr + from, addr + to]`, `addr` in the scratch
    /// local; the operand stack is left as it was.
    fn mark(&self, f: &mut wasm_encoder::Function, scratch: Scratch, offsets: [u64; 2]) {
        let mut last = None;
        for offset in offsets {
            if last == Some(offset) {
                continue;
            }
            last = Some(offset);
            let mut sink = f.instructions();
            sink.local_get(scratch.addr);
            if offset != 0 {
                // Offsets are below 2^32 in a 32-bit memory; the wrapping
                // add aliases like any address past TRACED_BYTES.
                sink.i32_const((offset as u32).cast_signed()).i32_add();
            }
            sink.i32_const(LINE_SHIFT)
                .i32_shr_u()
                .i32_const(LINE_MASK)
                .i32_and()
                .i32_const(1)
                .i32_store8(touch_at());
        }
    }
}

impl Reencode for Tracer {
    type Error = Infallible;

    fn parse_memory_section(
        &mut self,
        memories: &mut wasm_encoder::MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_memory_section(self, memories, section)?;
        memories.memory(wasm_encoder::MemoryType {
            minimum: TOUCH_PAGES,
            maximum: Some(TOUCH_PAGES),
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        self.memory_added = true;
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        exports.export(TOUCH_MEMORY, wasm_encoder::ExportKind::Memory, 1);
        self.export_added = true;
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let index = self.next_func;
        self.next_func += 1;
        let ty = self.func_types.get(index as usize).copied().unwrap_or(0);
        let params = self.type_params.get(ty as usize).copied().unwrap_or(0);
        let mut locals = Vec::new();
        let mut declared = 0u32;
        for pair in func.get_locals_reader()? {
            let (count, ty) = pair?;
            declared += count;
            locals.push((count, self.val_type(ty)?));
        }
        let first = params + declared;
        let scratch = Scratch {
            addr: first,
            first: first + 1,
        };
        locals.push((1, ValType::I32));
        for ty in SCRATCH_TYPES {
            locals.push((1, ty));
        }
        let mut f = wasm_encoder::Function::new(locals);
        f.instructions()
            .i32_const((FUNCTIONS_AT + self.imported_funcs + index).cast_signed())
            .i32_const(1)
            .i32_store8(touch_at())
            .i32_const(ENTRIES_AT.cast_signed())
            .i32_const(ENTRIES_AT.cast_signed())
            .i32_load(touch_at())
            .i32_const(1)
            .i32_add()
            .i32_store(touch_at());
        let fuel_at = (FUEL_AT + 4 * (self.imported_funcs + index)).cast_signed();
        // wasmtime charges a call one unit on entry, even of an empty function.
        let mut run: i32 = 1;
        let mut run_from = None;
        let line = |offset| u32::try_from(offset).unwrap_or(u32::MAX) / LINE_BYTES;
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let at = reader.original_position();
            let op = reader.read()?;
            run += fuel(&op);
            let from = *run_from.get_or_insert(at);
            if ends_run(&op) {
                // The run so far, this operator included, has run by the
                // time it does; the counters' code leaves the stack as it is.
                if run != 0 {
                    f.instructions()
                        .i32_const(fuel_at)
                        .i32_const(fuel_at)
                        .i32_load(touch_at())
                        .i32_const(run)
                        .i32_add()
                        .i32_store(touch_at());
                }
                for code_line in line(from)..=line(at) {
                    // A byte a line, a page of them.
                    f.instructions()
                        .i32_const((CODE_AT + code_line % PAGE).cast_signed())
                        .i32_const(1)
                        .i32_store8(touch_at());
                }
                run = 0;
                run_from = None;
            }
            if let Some((memarg, width, stored)) = access(&op) {
                let offsets = [memarg.offset, memarg.offset + u64::from(width) - 1];
                match stored {
                    None => {
                        f.instruction(&Instruction::LocalTee(scratch.addr));
                        self.mark(&mut f, scratch, offsets);
                    }
                    Some(ty) => {
                        let at = SCRATCH_TYPES.iter().position(|t| *t == ty).unwrap_or(0);
                        let value = scratch.first + u32::try_from(at).unwrap_or(0);
                        f.instruction(&Instruction::LocalSet(value));
                        f.instruction(&Instruction::LocalTee(scratch.addr));
                        self.mark(&mut f, scratch, offsets);
                        f.instruction(&Instruction::LocalGet(value));
                    }
                }
            }
            let instruction = self.instruction(op)?;
            f.instruction(&instruction);
        }
        code.function(&f);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
