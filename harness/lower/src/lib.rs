//! Lowering of bulk-memory copies and fills into plain loops.
//!
//! Traefik 3.7 embeds wazero 1.8.0, and built with Go ≥ 1.24 its compiler
//! traps on any `memory.copy` or `memory.fill` of about 2 KiB or more
//! (wazero issue #2375, fixed in 1.9.0). Rust ≥ 1.87 emits both instructions
//! for `wasm32-wasip1`, and its precompiled `std` contains them too, so
//! `-C target-feature=-bulk-memory` cannot remove them. This pass does, after
//! linking: it appends one function type and two helper functions to the
//! module and replaces every `memory.copy` / `memory.fill` on memory 0 by a
//! `call` of the matching helper.
//!
//! The helpers keep the instructions' semantics exactly:
//!
//! - they trap with an out-of-bounds access, before writing anything, when
//!   `dst + len` (or `src + len`) lies beyond the memory, as the
//!   instructions do, including for `len == 0`;
//! - the copy is a `memmove`: it copies upwards when `dst < src` and
//!   downwards when `dst > src`, so overlapping ranges come out right;
//! - they move 32 bytes per loop iteration (four unaligned `i64` accesses),
//!   then 8-byte words, then single bytes.
//!
//! Since the type and the functions are appended at the very end of their
//! index spaces, no existing index moves: every other section (imports,
//! tables, elements, exports, start, data count, data, custom sections) is
//! carried over as it is. The `name` section gets names for the helpers.
//!
//! Its [`touch`] module is a second pass, for measuring only: it traces
//! which memory lines and functions a guest uses in a call.
//!
//! The crate depends on nothing but `std`, `wasmparser` and `wasm-encoder`,
//! so a `build.rs` can use it as a build-dependency: the harness's lowers the
//! guest it builds with it.
//!
//! ```
//! use http_wasm_lower::{count_bulk_memory, lower_bulk_memory};
//!
//! let wasm = wat::parse_str(
//!     r#"(module (memory 1)
//!          (func (export "clear") (memory.fill (i32.const 0) (i32.const 0) (i32.const 4096))))"#,
//! )?;
//! assert_eq!(count_bulk_memory(&wasm)?, 1);
//! let lowered = lower_bulk_memory(&wasm)?;
//! assert_eq!(count_bulk_memory(&lowered)?, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod touch;

use std::convert::Infallible;
use std::fmt;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{BlockType, Function, Instruction, InstructionSink, MemArg, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

/// Name given to the appended `memory.copy` helper in the `name` section.
pub const COPY_HELPER_NAME: &str = "cohort_lowered_memory_copy";
/// Name given to the appended `memory.fill` helper in the `name` section.
pub const FILL_HELPER_NAME: &str = "cohort_lowered_memory_fill";

/// Why a module could not be counted or lowered.
#[derive(Debug)]
#[non_exhaustive]
pub enum LowerError {
    /// The input is not a valid core WebAssembly module.
    Parse(wasmparser::BinaryReaderError),
    /// The input is valid but uses something this pass does not handle.
    Unsupported(String),
    /// The pass produced a module that does not validate or still holds
    /// bulk-memory instructions: a bug in this pass.
    Internal(String),
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "not a valid wasm module: {e}"),
            Self::Unsupported(what) => write!(f, "cannot lower bulk memory: {what}"),
            Self::Internal(what) => write!(f, "bulk-memory lowering went wrong: {what}"),
        }
    }
}

impl std::error::Error for LowerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Parse(e) => Some(e),
            Self::Unsupported(_) | Self::Internal(_) => None,
        }
    }
}

impl From<wasmparser::BinaryReaderError> for LowerError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Self::Parse(e)
    }
}

impl From<reencode::Error<Infallible>> for LowerError {
    fn from(e: reencode::Error<Infallible>) -> Self {
        match e {
            reencode::Error::ParseError(e) => Self::Parse(e),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Counts the `memory.copy` and `memory.fill` instructions in all function
/// bodies of `wasm`.
///
/// # Errors
///
/// [`LowerError::Parse`] when `wasm` cannot be parsed as a module.
pub fn count_bulk_memory(wasm: &[u8]) -> Result<usize, LowerError> {
    Ok(scan(wasm)?.bulk_ops)
}

/// Returns `wasm` with every `memory.copy` and `memory.fill` replaced by a
/// call of an appended helper function that does the same with plain loads,
/// stores and loops. A module without such instructions is returned as it
/// is, byte for byte.
///
/// # Errors
///
/// - [`LowerError::Parse`] when `wasm` is not a valid module;
/// - [`LowerError::Unsupported`] for a 64-bit memory 0 or a bulk operation
///   on a memory other than memory 0;
/// - [`LowerError::Internal`] if the result does not validate.
pub fn lower_bulk_memory(wasm: &[u8]) -> Result<Vec<u8>, LowerError> {
    wasmparser::Validator::new().validate_all(wasm)?;
    let info = scan(wasm)?;
    if info.bulk_ops == 0 {
        return Ok(wasm.to_vec());
    }
    if let Some(mem) = info.other_memory_op {
        return Err(LowerError::Unsupported(format!(
            "a bulk-memory instruction uses memory {mem}; only memory 0 is supported"
        )));
    }
    match info.memory0_is_64 {
        Some(false) => {}
        Some(true) => {
            return Err(LowerError::Unsupported(
                "memory 0 is a 64-bit memory".into(),
            ));
        }
        // Unreachable for a valid module: the instructions need a memory.
        None => return Err(LowerError::Unsupported("the module has no memory".into())),
    }

    let funcs = info.imported_funcs + info.defined_funcs;
    let mut lowerer = Lowerer {
        helper_type: info.types,
        copy_fn: funcs,
        fill_fn: funcs + 1,
        sections_extended: 0,
    };
    let mut module = wasm_encoder::Module::new();
    lowerer.parse_core_module(&mut module, Parser::new(0), wasm)?;
    if lowerer.sections_extended != 3 {
        return Err(LowerError::Internal(
            "the type, function and code sections were not all found".into(),
        ));
    }
    let lowered = module.finish();

    wasmparser::Validator::new()
        .validate_all(&lowered)
        .map_err(|e| LowerError::Internal(format!("the lowered module does not validate: {e}")))?;
    let left = count_bulk_memory(&lowered)?;
    if left != 0 {
        return Err(LowerError::Internal(format!(
            "{left} bulk-memory instructions are left"
        )));
    }
    Ok(lowered)
}

/// What the pass needs to know about a module before rewriting it.
#[derive(Debug, Default)]
struct ModuleInfo {
    /// Number of entries in the type index space.
    types: u32,
    imported_funcs: u32,
    defined_funcs: u32,
    /// `Some(is_64)` for memory 0, `None` without memory.
    memory0_is_64: Option<bool>,
    bulk_ops: usize,
    /// A memory index other than 0 used by a bulk operation, if any.
    other_memory_op: Option<u32>,
}

fn scan(wasm: &[u8]) -> Result<ModuleInfo, LowerError> {
    let mut info = ModuleInfo::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => {
                return Err(LowerError::Unsupported(
                    "components are not supported".into(),
                ));
            }
            Payload::TypeSection(section) => {
                for group in section {
                    let n = u32::try_from(group?.types().len()).unwrap_or(u32::MAX);
                    info.types = info.types.saturating_add(n);
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    match import?.ty {
                        // Both take a function index.
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => info.imported_funcs += 1,
                        TypeRef::Memory(ty) => {
                            info.memory0_is_64.get_or_insert(ty.memory64);
                        }
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(section) => info.defined_funcs = section.count(),
            Payload::MemorySection(section) => {
                for memory in section {
                    info.memory0_is_64.get_or_insert(memory?.memory64);
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    let mem = match ops.read()? {
                        Operator::MemoryCopy { dst_mem, src_mem } => dst_mem.max(src_mem),
                        Operator::MemoryFill { mem } => mem,
                        _ => continue,
                    };
                    info.bulk_ops += 1;
                    if mem != 0 {
                        info.other_memory_op.get_or_insert(mem);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// The re-encoder: everything is copied, except the two instructions, and
/// the type, function, code and name sections get the helpers appended.
struct Lowerer {
    /// Index of the appended `[i32 i32 i32] -> []` type.
    helper_type: u32,
    copy_fn: u32,
    fill_fn: u32,
    /// How many of the type, function and code sections got their addition.
    sections_extended: u8,
}

impl Reencode for Lowerer {
    type Error = Infallible;

    fn instruction<'a>(
        &mut self,
        op: Operator<'a>,
    ) -> Result<Instruction<'a>, reencode::Error<Self::Error>> {
        match op {
            // Same stack shape as the call: [dst src len] -> [].
            Operator::MemoryCopy {
                dst_mem: 0,
                src_mem: 0,
            } => Ok(Instruction::Call(self.copy_fn)),
            // [dst value len] -> [].
            Operator::MemoryFill { mem: 0 } => Ok(Instruction::Call(self.fill_fn)),
            other => reencode::utils::instruction(self, other),
        }
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([ValType::I32; 3], []);
        self.sections_extended += 1;
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        functions.function(self.helper_type);
        functions.function(self.helper_type);
        self.sections_extended += 1;
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_code_section(self, code, section)?;
        code.function(&memory_copy_body());
        code.function(&memory_fill_body());
        self.sections_extended += 1;
        Ok(())
    }

    fn parse_custom_name_subsection(
        &mut self,
        names: &mut wasm_encoder::NameSection,
        section: wasmparser::Name<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let wasmparser::Name::Function(map) = section else {
            return reencode::utils::parse_custom_name_subsection(self, names, section);
        };
        let mut functions = wasm_encoder::NameMap::new();
        for naming in map {
            let naming = naming?;
            functions.append(naming.index, naming.name);
        }
        functions.append(self.copy_fn, COPY_HELPER_NAME);
        functions.append(self.fill_fn, FILL_HELPER_NAME);
        names.functions(&functions);
        Ok(())
    }
}

// Parameters of both helpers.
const DST: u32 = 0;
/// The source address (copy) or the fill value (fill).
const SRC: u32 = 1;
const LEN: u32 = 2;
/// The fill helper's one local: the fill byte repeated in an `i64`.
const PATTERN: u32 = 3;

/// Bytes moved per iteration of the main loop.
const BLOCK: u32 = 32;
const WORD: u32 = 8;

/// `offset` bytes after the address on the stack, memory 0, no alignment
/// promised (the helpers see any address).
fn at(offset: u32) -> MemArg {
    MemArg {
        offset: u64::from(offset),
        align: 0,
        target: wasm_encoder::MemArgTarget::Memory(0),
        ordering: None,
    }
}

/// Traps unless `addr + LEN` (both `u32`, summed without wrapping) is within
/// memory 0: the instructions' own bounds check, done before any write. The
/// trap is an out-of-bounds load of the 8 bytes at `0xffff_ffff`, beyond any
/// 32-bit memory, so the host reports the same trap as for the instruction.
fn bounds_check(i: &mut InstructionSink<'_>, addr: u32) {
    i.local_get(addr)
        .i64_extend_i32_u()
        .local_get(LEN)
        .i64_extend_i32_u()
        .i64_add()
        .memory_size(0)
        .i64_extend_i32_u()
        .i64_const(16)
        .i64_shl()
        .i64_gt_u()
        .if_(BlockType::Empty)
        .i32_const(-1)
        .i64_load(at(0))
        .drop()
        .end();
}

/// `local -= step` (or `+=`).
fn step(i: &mut InstructionSink<'_>, local: u32, by: u32, up: bool) {
    i.local_get(local).i32_const(by.cast_signed());
    if up {
        i.i32_add();
    } else {
        i.i32_sub();
    }
    i.local_set(local);
}

/// `block loop (br_if 1 (i32.lt_u LEN chunk)) <body> (br 0) end end`: runs
/// `body` while at least `chunk` bytes are left (`chunk` 1 means "while
/// `LEN != 0`"). `body` must lower `LEN` by `chunk`.
fn while_left(i: &mut InstructionSink<'_>, chunk: u32, body: impl Fn(&mut InstructionSink<'_>)) {
    i.block(BlockType::Empty).loop_(BlockType::Empty);
    if chunk == 1 {
        i.local_get(LEN).i32_eqz().br_if(1);
    } else {
        i.local_get(LEN)
            .i32_const(chunk.cast_signed())
            .i32_lt_u()
            .br_if(1);
    }
    body(i);
    i.br(0).end().end();
}

/// Copies the `chunk` bytes at `SRC` to `DST`, word by word, the highest
/// word first when `downwards`.
fn copy_chunk(i: &mut InstructionSink<'_>, chunk: u32, downwards: bool) {
    if chunk == 1 {
        i.local_get(DST)
            .local_get(SRC)
            .i32_load8_u(at(0))
            .i32_store8(at(0));
        return;
    }
    let words = chunk / WORD;
    for k in 0..words {
        let k = if downwards { words - 1 - k } else { k };
        i.local_get(DST)
            .local_get(SRC)
            .i64_load(at(k * WORD))
            .i64_store(at(k * WORD));
    }
}

/// `(func (param $dst i32) (param $src i32) (param $len i32))` with the
/// semantics of `memory.copy` on memory 0.
fn memory_copy_body() -> Function {
    let mut f = Function::new([]);
    let mut i = f.instructions();
    bounds_check(&mut i, DST);
    bounds_check(&mut i, SRC);
    // Same place (or nothing to do once bounds are checked): done.
    i.local_get(DST)
        .local_get(SRC)
        .i32_eq()
        .if_(BlockType::Empty)
        .return_()
        .end();
    // Upwards when the destination is below the source: every word is read
    // before a later write can reach it.
    i.local_get(DST)
        .local_get(SRC)
        .i32_lt_u()
        .if_(BlockType::Empty);
    for chunk in [BLOCK, WORD, 1] {
        while_left(&mut i, chunk, |i| {
            copy_chunk(i, chunk, false);
            step(i, DST, chunk, true);
            step(i, SRC, chunk, true);
            step(i, LEN, chunk, false);
        });
    }
    // Downwards otherwise: DST and SRC become end pointers and walk down.
    i.else_();
    i.local_get(DST).local_get(LEN).i32_add().local_set(DST);
    i.local_get(SRC).local_get(LEN).i32_add().local_set(SRC);
    for chunk in [BLOCK, WORD, 1] {
        while_left(&mut i, chunk, |i| {
            step(i, DST, chunk, false);
            step(i, SRC, chunk, false);
            step(i, LEN, chunk, false);
            copy_chunk(i, chunk, true);
        });
    }
    i.end();
    i.end();
    f
}

/// `(func (param $dst i32) (param $value i32) (param $len i32))` with the
/// semantics of `memory.fill` on memory 0.
fn memory_fill_body() -> Function {
    let mut f = Function::new([(1, ValType::I64)]);
    let mut i = f.instructions();
    bounds_check(&mut i, DST);
    // The low byte of the value, eight times.
    i.local_get(SRC)
        .i32_const(0xff)
        .i32_and()
        .i64_extend_i32_u()
        .i64_const(0x0101_0101_0101_0101)
        .i64_mul()
        .local_set(PATTERN);
    for chunk in [BLOCK, WORD, 1] {
        while_left(&mut i, chunk, |i| {
            if chunk == 1 {
                i.local_get(DST).local_get(SRC).i32_store8(at(0));
            } else {
                for k in 0..chunk / WORD {
                    i.local_get(DST).local_get(PATTERN).i64_store(at(k * WORD));
                }
            }
            step(i, DST, chunk, true);
            step(i, LEN, chunk, false);
        });
    }
    i.end();
    f
}

#[cfg(test)]
mod tests;
