//! Builds the guest the harness tests, so `cargo test` always tests the
//! plugin as its sources are now.
//!
//! 1. A nested `cargo build -p cohort-plugin --target wasm32-wasip1 --profile
//!    wasm`, in a target directory of its own next to the outer build's
//!    (`<target>/guest`), with the outer build's flags and wrappers removed
//!    from its environment. Cargo's own fingerprints make it a no-op when
//!    nothing changed.
//! 2. `cargo:rerun-if-changed` for every file in the `.d` dep-info file the
//!    nested build wrote, plus the manifests and the lock file.
//! 3. [`lower::lower_bulk_memory`] on the result: Traefik 3.7's wazero traps
//!    on `memory.copy`/`memory.fill` of 2 KiB or more.
//! 4. `OUT_DIR/plugin.wasm` (lowered: the file to ship),
//!    `OUT_DIR/plugin.unlowered.wasm`, and `OUT_DIR/artifacts.rs` with their
//!    paths and sizes, included by the library as `cohort_harness::artifacts`.
//!
//! The model is wasmtime's `crates/test-programs/artifacts/build.rs`.

use std::env;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use http_wasm_lower as lower;

type BoxError = Box<dyn Error>;

const GUEST_PACKAGE: &str = "cohort-plugin";
const GUEST_BIN: &str = "cohort-plugin";
const GUEST_TARGET: &str = "wasm32-wasip1";
const GUEST_PROFILE: &str = "wasm";

/// Environment variables the outer build sets (or a tool wrapping it, like
/// clippy or a coverage runner) that must not reach the nested build: they
/// are meant for host code, or they would move or relint the guest's build.
const OUTER_ONLY_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CLIPPY_CONF_DIR",
    "CARGO_LLVM_COV",
    "CARGO_LLVM_COV_TARGET_DIR",
    "LLVM_PROFILE_FILE",
    "CARGO_INCREMENTAL",
];

fn main() -> Result<(), BoxError> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?);
    let workspace = manifest_dir
        .parent()
        .ok_or("the harness has no parent directory")?
        .to_path_buf();
    let target_dir = guest_target_dir(&out_dir);

    let started = Instant::now();
    let unlowered = build_guest(&workspace, &target_dir)?;
    let built = started.elapsed();

    for file in [
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join("plugin").join("Cargo.toml"),
        // The guest's link arguments (its stack size); not in the dep-info.
        workspace.join("plugin").join("build.rs"),
    ] {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    rerun_if_deps_change(&unlowered.with_extension("d"))?;

    let wasm = fs::read(&unlowered)
        .map_err(|e| format!("reading the guest {}: {e}", unlowered.display()))?;
    let started = Instant::now();
    let ops_before = lower::count_bulk_memory(&wasm)?;
    let lowered = lower::lower_bulk_memory(&wasm)?;
    let lowering = started.elapsed();
    let ops_after = lower::count_bulk_memory(&lowered)?;
    if ops_after != 0 {
        return Err(format!("{ops_after} bulk-memory instructions survived lowering").into());
    }

    let shipped = out_dir.join("plugin.wasm");
    let raw = out_dir.join("plugin.unlowered.wasm");
    write_if_changed(&shipped, &lowered)?;
    write_if_changed(&raw, &wasm)?;
    write_if_changed(
        &out_dir.join("artifacts.rs"),
        artifacts_rs(&shipped, &raw, lowered.len(), wasm.len(), ops_before)?.as_bytes(),
    )?;
    // Shown with `cargo build -vv`.
    println!(
        "guest: {} ({} bytes, {ops_before} bulk-memory ops) -> {} ({} bytes), \
         nested build {built:.1?}, lowering {lowering:.1?}",
        unlowered.display(),
        wasm.len(),
        shipped.display(),
        lowered.len(),
    );
    Ok(())
}

/// `<target>/guest`, beside the outer build's profile directories, when
/// `OUT_DIR` has the usual `<target>/<profile>/build/<pkg>-<hash>/out`
/// shape: one guest build then serves every outer profile and command
/// (`build`, `test`, `clippy`). Otherwise a directory inside `OUT_DIR`.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    let mut ancestors = out_dir.ancestors();
    let build = ancestors.nth(2);
    match (build, ancestors.nth(1)) {
        (Some(build), Some(target)) if build.file_name() == Some("build".as_ref()) => {
            target.join("guest")
        }
        _ => out_dir.join("guest"),
    }
}

/// Runs the nested build and returns the path of the guest it produced.
fn build_guest(workspace: &Path, target_dir: &Path) -> Result<PathBuf, BoxError> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--package")
        .arg(GUEST_PACKAGE)
        .arg("--bin")
        .arg(GUEST_BIN)
        .arg("--target")
        .arg(GUEST_TARGET)
        .arg("--profile")
        .arg(GUEST_PROFILE)
        .arg("--target-dir")
        .arg(target_dir);
    for var in OUTER_ONLY_ENV {
        cmd.env_remove(var);
    }
    // Miri wraps rustc with its own sysroot; the guest needs the real one.
    if env::var_os("CARGO_CFG_MIRI").is_some() {
        cmd.env_remove("RUSTC").env_remove("RUSTC_WRAPPER");
    }
    // Its stdout and stderr go to this script's, which cargo shows when the
    // build fails.
    eprintln!("running: {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not run cargo for the guest: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the guest ({GUEST_PACKAGE} for {GUEST_TARGET}) failed with {status}; \
             its errors are above"
        )
        .into());
    }
    Ok(target_dir
        .join(GUEST_TARGET)
        .join(GUEST_PROFILE)
        .join(format!("{GUEST_BIN}.wasm")))
}

/// Emits `cargo:rerun-if-changed` for every prerequisite in the Makefile-like
/// dep-info file `deps` (`target: dep dep ...`, spaces in paths escaped with
/// a backslash).
fn rerun_if_deps_change(deps: &Path) -> Result<(), BoxError> {
    let contents = fs::read_to_string(deps)
        .map_err(|e| format!("reading the guest's dep-info {}: {e}", deps.display()))?;
    let mut seen = std::collections::BTreeSet::new();
    for line in contents.lines() {
        let Some((_, prerequisites)) = line.split_once(": ") else {
            continue;
        };
        let mut parts = prerequisites.split(' ');
        while let Some(part) = parts.next() {
            let mut file = part.to_owned();
            while let Some(stem) = file.strip_suffix('\\') {
                file = format!("{stem} {}", parts.next().unwrap_or_default());
            }
            if !file.is_empty() && seen.insert(file.clone()) {
                println!("cargo:rerun-if-changed={file}");
            }
        }
    }
    Ok(())
}

/// Writes `bytes` unless the file already holds them, so that a no-op build
/// leaves every timestamp alone.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), BoxError> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()).into())
}

fn artifacts_rs(
    shipped: &Path,
    raw: &Path,
    shipped_len: usize,
    raw_len: usize,
    ops_before: usize,
) -> Result<String, BoxError> {
    let shipped = shipped.to_str().ok_or("OUT_DIR is not UTF-8")?;
    let raw = raw.to_str().ok_or("OUT_DIR is not UTF-8")?;
    let mut rs = String::new();
    writeln!(
        rs,
        "// Generated by harness/build.rs.\n\
         \n\
         /// The guest as shipped: built with `--profile {GUEST_PROFILE}` for \
         `{GUEST_TARGET}`, then bulk memory lowered. Copy it as `plugin.wasm`.\n\
         pub const PLUGIN_WASM: &str = {shipped:?};\n\
         /// Size of [`PLUGIN_WASM`] in bytes.\n\
         pub const PLUGIN_WASM_LEN: usize = {shipped_len};\n\
         /// The same guest before lowering, straight from the compiler.\n\
         pub const PLUGIN_WASM_UNLOWERED: &str = {raw:?};\n\
         /// Size of [`PLUGIN_WASM_UNLOWERED`] in bytes.\n\
         pub const PLUGIN_WASM_UNLOWERED_LEN: usize = {raw_len};\n\
         /// `memory.copy` and `memory.fill` instructions the lowering replaced.\n\
         pub const PLUGIN_BULK_MEMORY_OPS_LOWERED: usize = {ops_before};"
    )?;
    Ok(rs)
}
