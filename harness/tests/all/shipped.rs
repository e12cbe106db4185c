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

/// The first number after `marker` in `text`, commas allowed (`224,706`).
fn number_after(text: &str, marker: &str) -> Option<usize> {
    let (_, rest) = text.split_once(marker)?;
    let digits: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The README's "`plugin.wasm` is N bytes (M before bulk-memory lowering)"
/// describes this build to within 5 %: a figure left behind by a change
/// that grew or shrank the guest fails here instead of misleading users.
#[test]
fn the_readme_states_the_shipped_size() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    // One line: the figures may be wrapped anywhere.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let stated = number_after(&readme, "`plugin.wasm` is ").expect("the README states the size");
    let stated_unlowered = number_after(
        &readme,
        &format!("{stated_text} bytes (", stated_text = group(stated)),
    )
    .expect("the README states the size before lowering");
    for (what, stated, real) in [
        ("plugin.wasm", stated, read(PLUGIN_WASM).len()),
        (
            "before lowering",
            stated_unlowered,
            read(PLUGIN_WASM_UNLOWERED).len(),
        ),
    ] {
        let off = real.abs_diff(stated) as f64 / stated as f64;
        assert!(
            off <= 0.05,
            "README says {what} is {stated} bytes, the build's is {real} ({:+.1} %): update README.md",
            100.0 * (real as f64 - stated as f64) / stated as f64
        );
    }
    // And the limit it gives is the one `shipped_guest_is_at_most_300_kb` holds.
    let limit = format!("limit {} KB", MAX_SHIPPED_BYTES / 1024);
    assert!(readme.contains(&limit), "the README does not say {limit:?}");
}

/// `224706` as `224,706`.
fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
