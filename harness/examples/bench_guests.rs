//! Writes the guests `scripts/bench-traefik.sh` loads into Traefik:
//! `DIR/cohort.wasm` (the shipped `plugin.wasm` this build made) and
//! `DIR/noop.wasm` (`benches/noop.wat`, compiled).
//!
//! ```text
//! cargo run --release -p cohort-harness --example bench_guests -- DIR [NAME=PATH ...]
//! ```
//!
//! Each `NAME=PATH` (another build of the plugin, to compare) is written
//! to `DIR/NAME.wasm` with bulk memory lowered, as the build lowers the
//! shipped one.

#[path = "../benches/common/shapes.rs"]
mod shapes;

use std::path::PathBuf;

use cohort_harness::{Guest, HostOptions, artifacts, check};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: bench_guests DIR [NAME=PATH ...]")?,
    );
    std::fs::create_dir_all(&dir)?;
    let cohort = std::fs::read(artifacts::PLUGIN_WASM)?;
    let noop = shapes::noop_wasm();
    // Both must pass the harness's Traefik compatibility check and start.
    let mut guests = vec![("cohort".to_owned(), cohort), ("noop".to_owned(), noop)];
    for extra in args {
        let (name, path) = extra.split_once('=').ok_or("extra guests are NAME=PATH")?;
        let wasm = cohort_harness::lower::lower_bulk_memory(&std::fs::read(path)?)?;
        guests.push((name.to_owned(), wasm));
    }
    for (name, wasm) in &guests {
        let report = check::inspect(wasm)?;
        let options = if name != "noop" {
            HostOptions::traefik().config_json(shapes::config("seed"))
        } else {
            HostOptions::traefik()
        };
        Guest::load(wasm, options).map_err(|e| format!("{name}: {e}\n{report}"))?;
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, wasm)?;
        println!("{} ({} bytes)", path.display(), wasm.len());
    }
    Ok(())
}
