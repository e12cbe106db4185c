//! Traefik's side: its access log and its memory (RSS, Go heap).

#[allow(unused_imports)]
use super::*;

/// What Traefik recorded about the traffic.
#[derive(Debug, Clone, Default)]
pub struct TraefikRecord {
    /// Lines of its log naming a trap or a panic.
    pub trap_lines: Vec<String>,
    /// Its `ERR` lines.
    pub err_lines: Vec<String>,
    /// Non-2xx answers in its access log, by status.
    pub access_non_2xx: BTreeMap<u16, u64>,
    /// The first access-log lines of a status other than 418 (the v1 child
    /// under `/raw/`), as written.
    pub access_unexpected: Vec<String>,
}

impl TraefikRecord {
    pub(super) fn read(traefik: &Traefik) -> Self {
        let log = traefik.log();
        let trap_lines = log
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                ["wasm error", "out of bounds", "panic", "unreachable"]
                    .iter()
                    .any(|needle| l.contains(needle))
            })
            .map(str::to_owned)
            .collect();
        let access = std::fs::read_to_string(traefik.dir().join("access.log")).unwrap_or_default();
        let mut access_non_2xx = BTreeMap::new();
        let mut access_unexpected = Vec::new();
        for line in access.lines() {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                *access_non_2xx.entry(0).or_default() += 1;
                continue;
            };
            // The fixture's readiness probes (404 until a config is live)
            // come in on the admin entry point.
            if entry.get("entryPointName").and_then(|v| v.as_str()) != Some("web") {
                continue;
            }
            let status = entry
                .get("DownstreamStatus")
                .and_then(serde_json::Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0);
            *access_non_2xx.entry(status).or_default() += 1;
            if status != 418 && access_unexpected.len() < KEEP_FAILURES {
                access_unexpected.push(line.to_owned());
            }
        }
        Self {
            trap_lines,
            err_lines: traefik.errors(),
            access_non_2xx,
            access_unexpected,
        }
    }

    /// `5xx` answers in the access log.
    pub fn access_5xx(&self) -> u64 {
        self.access_non_2xx
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Traefik's memory at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size (`/proc/<pid>/status`).
    pub rss: u64,
    /// Go's live heap (`HeapAlloc`) after forced GCs, repeated until it
    /// stops falling (finalizers of dropped middlewares have run and what
    /// they released is freed): what Traefik really holds on to.
    pub live_heap: u64,
    /// Live heap objects, same moment.
    pub heap_objects: u64,
}

impl Memory {
    /// Reads the RSS, then forces GCs through `/debug/pprof/heap?gc=1`
    /// until the live heap settles, and reads it.
    pub fn sample(traefik: &Traefik) -> Result<Self> {
        let rss = traefik.rss_bytes()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let url = format!("{}/debug/pprof/heap?gc=1&debug=1", traefik.admin_url());
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {name} = ")))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| anyhow!("no {name} in Traefik's heap profile"))
        };
        // A middleware dropped by a reload is released by finalizers: one
        // GC runs them, a later one frees what they let go, and a wasm
        // runtime takes a few rounds. So: GC until the heap has stopped
        // falling for two rounds (at least 4, at most 15 rounds, a pause
        // between for the finalizer goroutine).
        let mut previous: Option<u64> = None;
        let mut sample = (0, 0);
        let mut flat_rounds = 0;
        for round in 0..15 {
            let text = agent
                .get(&url)
                .call()
                .with_context(|| format!("GET {url}"))?
                .body_mut()
                .read_to_string()?;
            sample = (field(&text, "HeapAlloc")?, field(&text, "HeapObjects")?);
            if previous.is_some_and(|p| p.saturating_sub(sample.0) < 64 * 1024) {
                flat_rounds += 1;
            } else {
                flat_rounds = 0;
            }
            if round >= 3 && flat_rounds >= 2 {
                break;
            }
            previous = Some(sample.0);
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(Self {
            rss,
            live_heap: sample.0,
            heap_objects: sample.1,
        })
    }

    /// `RSS a MiB, live heap b MiB`.
    pub fn show(&self) -> String {
        format!(
            "RSS {:.1} MiB, live heap {:.1} MiB ({} objects)",
            mib(self.rss),
            mib(self.live_heap),
            self.heap_objects
        )
    }
}

/// `bytes` in MiB, for tables.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A signed difference in MiB.
pub fn mib_delta(from: u64, to: u64) -> f64 {
    mib(to) - mib(from)
}
