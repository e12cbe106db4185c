//! Writes the guests `scripts/bench-traefik.sh` loads into Traefik:
//! `DIR/cohort.wasm` (the shipped `plugin.wasm` this build made) and
//! `DIR/noop.wasm` (`benches/noop.wat`, compiled).
//!
//! ```text
//! cargo run --release -p cohort-harness --example bench_guests -- DIR
//! ```

#[path = "../benches/common/shapes.rs"]
mod shapes;

use std::path::PathBuf;

use cohort_harness::{Guest, HostOptions, artifacts, check};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .ok_or("usage: bench_guests DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    let cohort = std::fs::read(artifacts::PLUGIN_WASM)?;
    let noop = shapes::noop_wasm();
    // Both must pass the harness's Traefik compatibility check and start.
    for (name, wasm) in [("cohort", &cohort), ("noop", &noop)] {
        let report = check::inspect(wasm)?;
        let options = if name == "cohort" {
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
