//! Load-time compatibility check: will this module run as an http-wasm
//! guest, and will it run in Traefik 3.7?
//!
//! [`inspect`] reads a module without running it and returns a
//! [`CompatReport`]: its imports checked against the ABI table, its exports
//! and their signatures, its memory, the features it asks for with a
//! constant argument to `enable_features`, the WebAssembly features it uses
//! that Traefik's wazero 1.8 does not support, and how many
//! `memory.copy`/`memory.fill` instructions it holds. The report renders as
//! text (`Display`); [`CompatReport::problems`] says what a
//! [`CheckPolicy`] makes of it.

use std::collections::BTreeSet;
use std::fmt;

use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, Operator, Parser, Payload, TypeRef, Validator,
    WasmFeatures,
};

use crate::abi::{Features, Import, MODULE, Signature, ValType};
use crate::error::{Error, Result};

/// The WASI preview 1 module name.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Every function of WASI preview 1 (wazero and wasmtime provide them all).
pub const WASI_FUNCTIONS: [&str; 45] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
];

/// What kind of thing an import or export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A function.
    Func,
    /// A table.
    Table,
    /// A memory.
    Memory,
    /// A global.
    Global,
    /// An exception tag.
    Tag,
}

impl ItemKind {
    fn article(self) -> &'static str {
        match self {
            ItemKind::Func => "a function",
            ItemKind::Table => "a table",
            ItemKind::Memory => "a memory",
            ItemKind::Global => "a global",
            ItemKind::Tag => "a tag",
        }
    }
}

/// How an import relates to what the host provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStatus {
    /// An `http_handler` function with the ABI's signature.
    Abi(Import),
    /// An `http_handler` function with another signature.
    WrongSignature {
        /// The function.
        import: Import,
        /// The signature the ABI defines.
        expected: Signature,
    },
    /// A WASI preview 1 function.
    Wasi,
    /// Nothing any http-wasm host provides.
    Unknown(String),
}

/// One import of the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInfo {
    /// Import module.
    pub module: String,
    /// Import name.
    pub name: String,
    /// Function, memory, ...
    pub kind: ItemKind,
    /// For functions, the guest's signature.
    pub signature: Option<Signature>,
    /// What the host makes of it.
    pub status: ImportStatus,
}

/// One export of the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInfo {
    /// Export name.
    pub name: String,
    /// Function, memory, ...
    pub kind: ItemKind,
    /// For functions, their signature.
    pub signature: Option<Signature>,
}

/// The module's memory 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Exported as `memory`.
    pub exported: bool,
    /// Imported rather than defined.
    pub imported: bool,
    /// Initial size in 64 KiB pages.
    pub initial_pages: u64,
    /// Maximum size in pages, if any.
    pub maximum_pages: Option<u64>,
    /// A shared (threads) memory.
    pub shared: bool,
    /// A 64-bit memory.
    pub memory64: bool,
}

/// How strictly to treat what runs here but not in Traefik 3.7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckPolicy {
    /// Refuse it at load when faithful, warn otherwise (the default).
    #[default]
    Auto,
    /// Refuse it at load.
    Refuse,
    /// Load, but warn (log sink and [`CompatReport::problems`]).
    Warn,
    /// Say nothing.
    Off,
}

impl CheckPolicy {
    /// `Auto` resolved for a faithful or non-faithful host.
    pub fn resolve(self, faithful: bool) -> CheckPolicy {
        match (self, faithful) {
            (CheckPolicy::Auto, true) => CheckPolicy::Refuse,
            (CheckPolicy::Auto, false) => CheckPolicy::Warn,
            (other, _) => other,
        }
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing.
    Note,
    /// Will misbehave somewhere.
    Warning,
    /// Refused at load.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// How bad it is under the policy asked for.
    pub severity: Severity,
    /// What is wrong and why it matters.
    pub message: String,
    /// How to fix it, when there is a known way.
    pub fix: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

/// Everything [`inspect`] found out about a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatReport {
    /// Module size in bytes.
    pub size: usize,
    /// Every import, in order.
    pub imports: Vec<ImportInfo>,
    /// Every export, in order.
    pub exports: Vec<ExportInfo>,
    /// Memory 0, if the module has one.
    pub memory: Option<MemoryInfo>,
    /// `_start` / `_initialize`, whichever are exported (both run, in that order).
    pub start_functions: Vec<String>,
    /// Whether the module has a wasm `start` section.
    pub has_start_section: bool,
    /// Features passed as constants to `enable_features`.
    pub requested_features: Features,
    /// Whether `enable_features` is called with a non-constant argument.
    pub dynamic_features: bool,
    /// Number of `memory.copy` + `memory.fill` instructions.
    pub bulk_memory: usize,
    /// Why Traefik's wazero 1.8 (WebAssembly 2.0 features) would reject the
    /// module, if it would.
    pub wazero_rejects: Option<String>,
}

/// Inspect `wasm` (a binary module) without running it.
pub fn inspect(wasm: &[u8]) -> Result<CompatReport> {
    let compile_err = |e: wasmparser::BinaryReaderError| Error::Compile(e.to_string());
    let mut types: Vec<Option<FuncType>> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new(); // type index per function index
    let mut imported_funcs = 0u32;
    let mut enable_features_index = None;
    let mut report = CompatReport {
        size: wasm.len(),
        imports: Vec::new(),
        exports: Vec::new(),
        memory: None,
        start_functions: Vec::new(),
        has_start_section: false,
        requested_features: Features::NONE,
        dynamic_features: false,
        bulk_memory: 0,
        wazero_rejects: None,
    };
    let mut exported_memory_index = None;
    let mut memory_count = 0u32;
    let sig = |types: &[Option<FuncType>], index: u32| -> Option<Signature> {
        types
            .get(index as usize)
            .and_then(Option::as_ref)
            .map(signature_of)
    };

    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(compile_err)? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(compile_err)?.into_types() {
                        types.push(match sub.composite_type.inner {
                            CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(compile_err)?;
                    let (kind, signature) = match import.ty {
                        // `FuncExact` (custom descriptors) imports a function too.
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                            if import.module == MODULE
                                && import.name == Import::EnableFeatures.name()
                            {
                                enable_features_index = Some(imported_funcs);
                            }
                            func_types.push(t);
                            imported_funcs += 1;
                            (ItemKind::Func, sig(&types, t))
                        }
                        TypeRef::Table(_) => (ItemKind::Table, None),
                        TypeRef::Memory(m) => {
                            if memory_count == 0 {
                                report.memory = Some(MemoryInfo {
                                    exported: false,
                                    imported: true,
                                    initial_pages: m.initial,
                                    maximum_pages: m.maximum,
                                    shared: m.shared,
                                    memory64: m.memory64,
                                });
                            }
                            memory_count += 1;
                            (ItemKind::Memory, None)
                        }
                        TypeRef::Global(_) => (ItemKind::Global, None),
                        TypeRef::Tag(_) => (ItemKind::Tag, None),
                    };
                    let status =
                        import_status(import.module, import.name, kind, signature.as_ref());
                    report.imports.push(ImportInfo {
                        module: import.module.to_owned(),
                        name: import.name.to_owned(),
                        kind,
                        signature,
                        status,
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    func_types.push(t.map_err(compile_err)?);
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader {
                    let m = m.map_err(compile_err)?;
                    if memory_count == 0 {
                        report.memory = Some(MemoryInfo {
                            exported: false,
                            imported: false,
                            initial_pages: m.initial,
                            maximum_pages: m.maximum,
                            shared: m.shared,
                            memory64: m.memory64,
                        });
                    }
                    memory_count += 1;
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(compile_err)?;
                    let (kind, signature) = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => (
                            ItemKind::Func,
                            func_types
                                .get(export.index as usize)
                                .and_then(|&t| sig(&types, t)),
                        ),
                        ExternalKind::Table => (ItemKind::Table, None),
                        ExternalKind::Memory => {
                            if export.name == "memory" {
                                exported_memory_index = Some(export.index);
                            }
                            (ItemKind::Memory, None)
                        }
                        ExternalKind::Global => (ItemKind::Global, None),
                        ExternalKind::Tag => (ItemKind::Tag, None),
                    };
                    if kind == ItemKind::Func && matches!(export.name, "_start" | "_initialize") {
                        report.start_functions.push(export.name.to_owned());
                    }
                    report.exports.push(ExportInfo {
                        name: export.name.to_owned(),
                        kind,
                        signature,
                    });
                }
            }
            Payload::StartSection { .. } => report.has_start_section = true,
            Payload::CodeSectionEntry(body) => {
                if let Some(target) = enable_features_index {
                    scan_enable_features(&body, target, &mut report).map_err(compile_err)?;
                }
            }
            _ => {}
        }
    }
    // wazero runs `_start` before `_initialize`.
    report.start_functions.sort_by_key(|name| name != "_start");
    if let (Some(memory), Some(0)) = (report.memory.as_mut(), exported_memory_index) {
        memory.exported = true;
    }
    report.bulk_memory =
        crate::lower::count_bulk_memory(wasm).map_err(|e| Error::Compile(e.to_string()))?;
    report.wazero_rejects = Validator::new_with_features(WasmFeatures::WASM2)
        .validate_all(wasm)
        .err()
        .map(|e| e.to_string());
    Ok(report)
}

fn scan_enable_features(
    body: &wasmparser::FunctionBody<'_>,
    target: u32,
    report: &mut CompatReport,
) -> wasmparser::Result<()> {
    let mut previous: Option<i32> = None;
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        match ops.read()? {
            Operator::Call { function_index } if function_index == target => match previous {
                Some(bits) => {
                    report.requested_features =
                        report.requested_features.union(Features(bits as u32));
                }
                None => report.dynamic_features = true,
            },
            Operator::I32Const { value } => {
                previous = Some(value);
                continue;
            }
            _ => {}
        }
        previous = None;
    }
    Ok(())
}

fn signature_of(f: &FuncType) -> Signature {
    let map = |t: &wasmparser::ValType| match t {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::Other("f32"),
        wasmparser::ValType::F64 => ValType::Other("f64"),
        wasmparser::ValType::V128 => ValType::Other("v128"),
        wasmparser::ValType::Ref(_) => ValType::Other("ref"),
    };
    Signature {
        params: f.params().iter().map(map).collect(),
        results: f.results().iter().map(map).collect(),
    }
}

fn import_status(
    module: &str,
    name: &str,
    kind: ItemKind,
    signature: Option<&Signature>,
) -> ImportStatus {
    match module {
        MODULE => match (Import::from_name(name), kind) {
            (Some(import), ItemKind::Func) => {
                let expected = import.signature();
                if signature == Some(&expected) {
                    ImportStatus::Abi(import)
                } else {
                    ImportStatus::WrongSignature { import, expected }
                }
            }
            (Some(_), other) => {
                ImportStatus::Unknown(format!("it is a function, not {}", other.article()))
            }
            (None, _) => ImportStatus::Unknown("no such function in the http-wasm ABI".to_owned()),
        },
        WASI_MODULE => {
            if kind == ItemKind::Func && WASI_FUNCTIONS.contains(&name) {
                ImportStatus::Wasi
            } else {
                ImportStatus::Unknown("not a WASI preview 1 function".to_owned())
            }
        }
        _ => ImportStatus::Unknown(format!(
            "hosts provide only the {MODULE} and {WASI_MODULE} modules"
        )),
    }
}

const ABI_EXPORTS: [(&str, ItemKind); 3] = [
    ("handle_request", ItemKind::Func),
    ("handle_response", ItemKind::Func),
    ("memory", ItemKind::Memory),
];

fn expected_export_signature(name: &str) -> Option<Signature> {
    match name {
        "handle_request" => Some(Signature {
            params: vec![],
            results: vec![ValType::I64],
        }),
        "handle_response" => Some(Signature {
            params: vec![ValType::I32, ValType::I32],
            results: vec![],
        }),
        _ => None,
    }
}

impl CompatReport {
    /// Exports and imports that make the module unusable as an http-wasm
    /// guest anywhere, as the errors [`Guest::load`](crate::Guest::load)
    /// returns (first one first).
    pub fn abi_errors(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        for (name, kind) in ABI_EXPORTS {
            let kind_word = if kind == ItemKind::Func {
                "func"
            } else {
                "memory"
            };
            match self.exports.iter().find(|e| e.name == name) {
                None => errors.push(Error::MissingExport {
                    kind: kind_word,
                    name,
                }),
                Some(export) if export.kind != kind => errors.push(Error::WrongExport {
                    kind: kind_word,
                    name,
                    expected: expected_export_signature(name)
                        .map_or_else(|| "a memory".to_owned(), |s| s.to_string()),
                    found: export.kind.article().to_owned(),
                }),
                Some(export) => {
                    if let (Some(expected), Some(found)) =
                        (expected_export_signature(name), export.signature.as_ref())
                        && &expected != found
                    {
                        errors.push(Error::WrongExport {
                            kind: kind_word,
                            name,
                            expected: expected.to_string(),
                            found: found.to_string(),
                        });
                    }
                }
            }
        }
        for import in &self.imports {
            match &import.status {
                ImportStatus::Abi(_) | ImportStatus::Wasi => {}
                ImportStatus::WrongSignature { expected, .. } => errors.push(Error::WrongImport {
                    module: import.module.clone(),
                    name: import.name.clone(),
                    expected: expected.to_string(),
                    found: import
                        .signature
                        .as_ref()
                        .map_or_else(|| "not a function".to_owned(), ToString::to_string),
                }),
                ImportStatus::Unknown(detail) => errors.push(Error::UnknownImport {
                    module: import.module.clone(),
                    name: import.name.clone(),
                    detail: detail.clone(),
                }),
            }
        }
        errors
    }

    /// The `http_handler` functions the module imports.
    pub fn abi_imports(&self) -> Vec<Import> {
        self.imports
            .iter()
            .filter_map(|i| match i.status {
                ImportStatus::Abi(import) => Some(import),
                _ => None,
            })
            .collect()
    }

    /// Whether the module imports anything from WASI.
    pub fn uses_wasi(&self) -> bool {
        self.imports.iter().any(|i| i.status == ImportStatus::Wasi)
    }

    /// Everything worth saying, with severities under `policy` (`Auto` is
    /// resolved as for a faithful host).
    pub fn problems(&self, policy: CheckPolicy) -> Vec<Problem> {
        let policy = policy.resolve(true);
        let mut problems: Vec<Problem> = self
            .abi_errors()
            .into_iter()
            .map(|e| Problem {
                severity: Severity::Error,
                message: e.to_string(),
                fix: None,
            })
            .collect();
        let traefik = match policy {
            CheckPolicy::Refuse => Some(Severity::Error),
            CheckPolicy::Warn => Some(Severity::Warning),
            CheckPolicy::Off | CheckPolicy::Auto => None,
        };
        if let Some(severity) = traefik {
            if self.bulk_memory > 0 {
                problems.push(Problem {
                    severity,
                    message: format!(
                        "the module contains {} memory.copy/memory.fill instruction(s); \
                         Traefik 3.7 (wazero 1.8.0 built with Go 1.26) traps on any of them \
                         that moves about 2 KiB or more (wazero issue #2375), and the request \
                         gets a 500",
                        self.bulk_memory
                    ),
                    fix: Some(
                        "lower them into plain loops after linking: our build's lowering pass \
                         (http_wasm_lower::lower_bulk_memory), or \
                         `wasm-opt --llvm-memory-copy-fill-lowering` (binaryen 132 works; \
                         Debian's 108 is too old); for Rust, `-C target-feature=-bulk-memory` \
                         alone is not enough because the precompiled std contains them"
                            .to_owned(),
                    ),
                });
            }
            if let Some(why) = &self.wazero_rejects {
                problems.push(Problem {
                    severity,
                    message: format!(
                        "Traefik's wazero 1.8 supports WebAssembly 2.0 features only and \
                         would reject this module: {why}"
                    ),
                    fix: Some(
                        "build without post-2.0 features (threads, memory64, tail calls, \
                         exceptions, GC, multi-memory)"
                            .to_owned(),
                    ),
                });
            }
        }
        if self.start_functions.is_empty() {
            problems.push(Problem {
                severity: Severity::Note,
                message: "no _start or _initialize export: nothing runs once per instance, \
                          so configuration must be read on every request"
                    .to_owned(),
                fix: None,
            });
        }
        if self
            .memory
            .as_ref()
            .is_some_and(|m| m.maximum_pages.is_none() && m.exported)
        {
            problems.push(Problem {
                severity: Severity::Note,
                message: "memory has no maximum: a pooled instance keeps whatever it grew to"
                    .to_owned(),
                fix: None,
            });
        }
        problems
    }

    /// Whether `policy` lets the module load.
    pub fn accepts(&self, policy: CheckPolicy) -> bool {
        self.problems(policy)
            .iter()
            .all(|p| p.severity < Severity::Error)
    }

    /// The report as text, with problems judged under `policy`.
    pub fn render(&self, policy: CheckPolicy) -> String {
        let mut out = String::new();
        let _ = self.render_into(&mut out, policy);
        out
    }

    fn render_into(&self, out: &mut String, policy: CheckPolicy) -> fmt::Result {
        use fmt::Write;
        writeln!(out, "http-wasm guest: {} bytes", self.size)?;
        writeln!(out, "exports:")?;
        for (name, _) in ABI_EXPORTS {
            match self.exports.iter().find(|e| e.name == name) {
                Some(e) => match &e.signature {
                    Some(sig) => writeln!(out, "  {name:<16} {sig}")?,
                    None => writeln!(out, "  {name:<16} ({})", e.kind.article())?,
                },
                None => writeln!(out, "  {name:<16} MISSING")?,
            }
        }
        if self.start_functions.is_empty() {
            writeln!(out, "  (no _start or _initialize)")?;
        } else {
            writeln!(
                out,
                "  start-up:        {} (once per instance)",
                self.start_functions.join(" then ")
            )?;
        }
        match &self.memory {
            Some(m) => writeln!(
                out,
                "memory: {} page(s) initial ({} KiB), maximum {}{}{}{}",
                m.initial_pages,
                m.initial_pages * 64,
                m.maximum_pages
                    .map_or_else(|| "none".to_owned(), |p| format!("{p} page(s)")),
                if m.exported {
                    ", exported"
                } else {
                    ", NOT exported"
                },
                if m.shared { ", shared" } else { "" },
                if m.memory64 { ", 64-bit" } else { "" },
            )?,
            None => writeln!(out, "memory: none")?,
        }
        let abi: BTreeSet<&str> = self.abi_imports().iter().map(|i| i.name()).collect();
        writeln!(
            out,
            "imports: {} from {MODULE}{}, {} from {WASI_MODULE}",
            abi.len(),
            if abi.is_empty() {
                String::new()
            } else {
                format!(" ({})", abi.into_iter().collect::<Vec<_>>().join(", "))
            },
            self.imports
                .iter()
                .filter(|i| i.status == ImportStatus::Wasi)
                .count(),
        )?;
        if self.requested_features != Features::NONE || self.dynamic_features {
            writeln!(
                out,
                "features requested: {}{}",
                if self.requested_features == Features::NONE {
                    "none as constants".to_owned()
                } else {
                    self.requested_features.to_string()
                },
                if self.dynamic_features {
                    " (and some computed at run time)"
                } else {
                    ""
                }
            )?;
        } else {
            writeln!(out, "features requested: none")?;
        }
        writeln!(
            out,
            "bulk memory: {} memory.copy/memory.fill instruction(s)",
            self.bulk_memory
        )?;
        writeln!(
            out,
            "wazero 1.8 (WebAssembly 2.0): {}",
            self.wazero_rejects.as_deref().unwrap_or("accepts")
        )?;
        let problems = self.problems(policy);
        if problems.is_empty() {
            writeln!(out, "problems: none")?;
        } else {
            writeln!(out, "problems:")?;
            for p in &problems {
                writeln!(out, "  {}", p.to_string().replace('\n', "\n  "))?;
            }
        }
        writeln!(
            out,
            "verdict: {}",
            if self.accepts(policy) {
                "loads"
            } else {
                "refused"
            }
        )
    }
}

impl fmt::Display for CompatReport {
    /// The report judged as a Traefik-faithful host would.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(CheckPolicy::Refuse))
    }
}
