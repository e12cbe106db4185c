//! The soak: warm-up, then N requests, memory at start, after the warm-up and at the end.

#[allow(unused_imports)]
use super::*;

/// What [`soak`] runs.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    /// Requests after the warm-up.
    pub requests: u64,
    /// Requests before "after warm-up" is measured.
    pub warmup: u64,
    pub threads: usize,
    /// The whole run stops at this age, finished or not.
    pub budget: Duration,
    pub guest: GuestKind,
}

/// What [`soak`] saw.
#[derive(Debug, Clone)]
pub struct SoakReport {
    pub plan: SoakPlan,
    pub warmup: Stats,
    pub main: Stats,
    pub start: Memory,
    pub warm: Memory,
    pub end: Memory,
    pub traefik: TraefikRecord,
}

impl SoakReport {
    /// Every request of both phases.
    pub fn all(&self) -> Stats {
        let mut all = self.warmup.clone();
        all.merge(self.main.clone());
        all.elapsed = self.warmup.elapsed + self.main.elapsed;
        all
    }

    pub fn render(&self) -> String {
        let all = self.all();
        let total = all.total();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Soak: {} in Traefik {}, {} threads, keep-alive\n",
            self.plan.guest.name(),
            super::super::traefik::TRAEFIK_VERSION,
            self.plan.threads
        );
        out.push_str(&all.table());
        let _ = writeln!(
            out,
            "\nrequests {} ({} warm-up + {}), hostile {} ({:.1} %), in {:.1} s ({:.0}/s), {} TCP connections; slowest answer {:.0} ms, {} over 1 s",
            total.sent,
            self.warmup.total().sent,
            self.main.total().sent,
            all.hostile(),
            100.0 * all.hostile() as f64 / total.sent.max(1) as f64,
            all.elapsed.as_secs_f64(),
            total.sent as f64 / all.elapsed.as_secs_f64().max(1e-9),
            all.connects,
            all.slowest.as_secs_f64() * 1000.0,
            all.slow
        );
        let _ = writeln!(out, "cohorts of checked answers: {:?}", all.cohorts);
        let _ = writeln!(
            out,
            "failed requests {} (5xx {}, of them guest traps {}; other status {}; connection errors {}; inconsistent {})",
            total.failed(),
            total.server_errors,
            total.traps,
            total.other_status,
            total.connection_errors,
            total.inconsistent
        );
        let _ = writeln!(
            out,
            "Traefik: access log non-2xx by status {:?}; log lines naming a trap/panic {}; ERR lines {}",
            self.traefik.access_non_2xx,
            self.traefik.trap_lines.len(),
            self.traefik.err_lines.len()
        );
        let _ = writeln!(
            out,
            "Traefik memory: start {}; after warm-up {}; end {}; growth after warm-up: RSS {:+.1} MiB, live heap {:+.1} MiB",
            self.start.show(),
            self.warm.show(),
            self.end.show(),
            mib_delta(self.warm.rss, self.end.rss),
            mib_delta(self.warm.live_heap, self.end.live_heap)
        );
        for line in &self.traefik.access_unexpected {
            let short: String = line.chars().take(400).collect();
            let _ = writeln!(out, "  access log: {short}");
        }
        for failure in &all.failures {
            let _ = writeln!(out, "  failure: {failure}");
        }
        out
    }
}

/// Runs the soak: Traefik with `plan.guest` in front of whoami pods,
/// `plan.warmup` requests, then `plan.requests` more, no reloads.
pub fn soak(plan: &SoakPlan) -> Result<SoakReport> {
    let deadline = Instant::now() + plan.budget;
    let backends = Backends::start()?;
    let traefik = start_traefik(plan.guest, &backends)?;
    let start = Memory::sample(&traefik)?;
    let mut lanes = lanes(web_addr(&traefik)?, plan.threads, plan.guest.decides());
    let control = Control::default();
    let warmup = drive(&mut lanes, Limit::Requests(plan.warmup), &control, deadline);
    let warm = Memory::sample(&traefik)?;
    let main = drive(
        &mut lanes,
        Limit::Requests(plan.requests),
        &control,
        deadline,
    );
    let end = Memory::sample(&traefik)?;
    Ok(SoakReport {
        plan: plan.clone(),
        warmup,
        main,
        start,
        warm,
        end,
        traefik: TraefikRecord::read(&traefik),
    })
}

pub(super) fn web_addr(traefik: &Traefik) -> Result<SocketAddr> {
    let url = traefik.url();
    url.strip_prefix("http://")
        .unwrap_or(&url)
        .parse()
        .with_context(|| format!("Traefik's address {url}"))
}
