//! Test guests written in WAT (`tests/all/guests/*.wat`, compiled at run
//! time with the `wat` crate; no binary committed), laid out with a manifest
//! for [`Traefik::start_with`], and the bulk-memory trap probe.
//!
//! The probe ([`bulk_memory_trap`]) answers whether this machine's Traefik
//! traps a guest's large `memory.copy` (wazero 1.8 in Traefik 3.7; it depends
//! on the CPU, see notes/bulk-memory-trap.md): Traefik with
//! `guests/bulk-memory-probe.wat` as the plugin, one request, a 500 with a
//! `wasm error` body is a trap. Asked once per Traefik binary and test
//! binary.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use super::traefik::{self, ALIAS, Options, Traefik};

/// `guests/<name>.wat`, compiled.
pub fn wasm(name: &str) -> Result<Vec<u8>> {
    let wat = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/all/guests")
        .join(format!("{name}.wat"));
    wat::parse_file(&wat).map_err(|e| anyhow!("compiling {}: {e}", wat.display()))
}

/// A guest's `plugin.wasm` and a minimal manifest in a scratch directory,
/// removed on drop; [`Installed::options`] points the fixture at them.
pub struct Installed {
    dir: PathBuf,
    pub options: Options,
}

impl Installed {
    /// `wasm` with a manifest named `display_name`, over `base`'s other
    /// options (binary, log level).
    pub fn new(wasm: &[u8], display_name: &str, base: Options) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cohort-guest-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("plugin.wasm"), wasm)?;
        std::fs::write(
            dir.join("manifest.yml"),
            format!(
                "displayName: {display_name}\ntype: middleware\nruntime: wasm\n\
                 summary: a test guest\ntestData: {{}}\n"
            ),
        )?;
        let options = Options {
            wasm: dir.join("plugin.wasm"),
            manifest: dir.join("manifest.yml"),
            ..base
        };
        Ok(Self { dir, options })
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the bulk-memory probe saw on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapProbe {
    /// The probe's 4 KiB `memory.copy` trapped (a 500 with a `wasm error`).
    pub traps: bool,
    /// `bulk-memory trap probe: Traefik X on <CPU> TRAPS|does not trap`.
    pub line: String,
}

/// The CPU: `model name` of /proc/cpuinfo and which of the flags that
/// decide Go's `memmove` path (avx512f, erms, fsrm) it has.
pub fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let model = field("model name").unwrap_or_else(|| "an unknown CPU".to_owned());
    let flags = field("flags").unwrap_or_default();
    let have: Vec<&str> = ["avx512f", "erms", "fsrm"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    if have.is_empty() {
        format!("{model} (no avx512f, erms, fsrm)")
    } else {
        format!("{model} ({})", have.join(" "))
    }
}

/// Whether the current Traefik ([`traefik::binary`]) traps the probe's
/// large `memory.copy` here. Probed once per binary; the line is also
/// written to the terminal, past the test harness's capture, so every run
/// (CI's too) says which kind of machine it was.
pub fn bulk_memory_trap() -> Result<TrapProbe> {
    static SEEN: Mutex<BTreeMap<PathBuf, Result<TrapProbe, String>>> = Mutex::new(BTreeMap::new());
    let binary = traefik::binary()?;
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = seen.get(&binary.path) {
        return known.clone().map_err(|e| anyhow!(e));
    }
    let result = probe(&binary).map_err(|e| format!("{e:#}"));
    if let Ok(probe) = &result {
        let _ = writeln!(std::io::stderr(), "{}", probe.line);
    }
    seen.insert(binary.path.clone(), result.clone());
    result.map_err(|e| anyhow!(e))
}

fn probe(binary: &traefik::Binary) -> Result<TrapProbe> {
    let guest = Installed::new(
        &wasm("bulk-memory-probe")?,
        "Bulk-memory probe",
        Options {
            binary: binary.path.clone(),
            log_level: "INFO",
            ..Options::default()
        },
    )?;
    let dynamic = format!(
        "http:\n  middlewares:\n    probe:\n      plugin:\n        {ALIAS}: {{}}\n  \
         routers:\n    probe:\n      entryPoints: [web]\n      rule: \"PathPrefix(`/`)\"\n      \
         middlewares: [probe]\n      service: noop@internal\n"
    );
    let traefik = Traefik::start_with(&guest.options, &dynamic)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent.get(&format!("{}/", traefik.url())).call()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    // noop@internal answers 418 once the guest let the request through.
    let traps = match status {
        418 => false,
        500 if body.contains("wasm error") => true,
        _ => bail!("the bulk-memory probe got {status}: {body}"),
    };
    let line = format!(
        "bulk-memory trap probe: Traefik {} on {} {}",
        binary.version,
        cpu(),
        if traps { "TRAPS" } else { "does not trap" }
    );
    Ok(TrapProbe { traps, line })
}

#[test]
fn the_harness_refuses_the_probe_and_accepts_the_trap_guest() {
    use cohort_harness::{EchoBackend, Guest, HostOptions, Request};
    // The CPU-independent half of the proof: Traefik-faithful mode refuses
    // any bulk-memory instruction, so the probe loads in a real Traefik only.
    let refused = Guest::load(&wasm("bulk-memory-probe").unwrap(), HostOptions::traefik());
    let Err(error) = refused else {
        panic!("the probe was accepted");
    };
    let error = format!("{error:#}");
    assert!(error.contains("memory.copy"), "{error}");

    // The soak's trap guest traps on a Cookie header over 2 KiB, wherever.
    let guest = Guest::load(
        &wasm("trap-on-large-cookie").unwrap(),
        HostOptions::traefik(),
    )
    .unwrap();
    let send = |cookie_len: usize| {
        let cookie = "c".repeat(cookie_len);
        guest
            .handle(
                Request::get("/").header("Cookie", &cookie),
                &EchoBackend::new(),
            )
            .unwrap()
    };
    let small = send(2047);
    assert!(small.error.is_none(), "{:?}", small.error);
    assert_eq!(small.response.status, 200);
    let large = send(4096);
    assert!(
        large.error.is_some(),
        "no trap at 4 KiB: {:?}",
        large.response
    );
}
