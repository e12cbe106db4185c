//! Dynamic-config reloads under traffic, with Cohort or a no-op guest.

#[allow(unused_imports)]
use super::*;

/// What [`reloads`] runs.
#[derive(Debug, Clone)]
pub struct ReloadPlan {
    pub guest: GuestKind,
    /// Dynamic-config reloads, each waited for until live.
    pub reloads: u32,
    /// Requests before "after warm-up" is measured.
    pub warmup: u64,
    pub threads: usize,
    pub budget: Duration,
    /// Also sample the live heap (forced GCs, traffic flowing) after every
    /// this many reloads; 0: only after the warm-up and at the end.
    pub heap_every: u32,
}

/// What [`reloads`] saw.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub plan: ReloadPlan,
    pub warmup: Stats,
    /// The traffic while reloading.
    pub traffic: Stats,
    /// Reloads applied (each one live before the next).
    pub reloads_done: u32,
    pub warm: Memory,
    /// RSS after each reload (no forced GC).
    pub rss_after_reload: Vec<u64>,
    /// `(reloads done, live heap)` every [`ReloadPlan::heap_every`] reloads.
    pub heap_after_reload: Vec<(u32, u64)>,
    pub end: Memory,
    pub traefik: TraefikRecord,
}

impl ReloadReport {
    /// RSS growth from after the warm-up to the end, in MiB.
    pub fn rss_growth(&self) -> f64 {
        mib_delta(self.warm.rss, self.end.rss)
    }

    /// Live-heap growth from after the warm-up to the end, in MiB.
    pub fn heap_growth(&self) -> f64 {
        mib_delta(self.warm.live_heap, self.end.live_heap)
    }

    pub fn render(&self) -> String {
        let total = self.traffic.total();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Reloads with traffic: {}, {} reloads, {} threads\n",
            self.plan.guest.name(),
            self.reloads_done,
            self.plan.threads
        );
        out.push_str(&self.traffic.table());
        let _ = writeln!(
            out,
            "\nrequests while reloading {} ({} started while a reload was being applied), in {:.1} s, {} TCP connections; slowest answer {:.0} ms, {} over 1 s",
            total.sent,
            self.traffic.during_reload,
            self.traffic.elapsed.as_secs_f64(),
            self.traffic.connects,
            self.traffic.slowest.as_secs_f64() * 1000.0,
            self.traffic.slow
        );
        let _ = writeln!(
            out,
            "failed requests {} (5xx {}, traps {}, other status {}, connection errors {}, inconsistent {}); cohorts {:?}",
            total.failed(),
            total.server_errors,
            total.traps,
            total.other_status,
            total.connection_errors,
            total.inconsistent,
            self.traffic.cohorts
        );
        let _ = writeln!(
            out,
            "Traefik: access log non-2xx {:?}; trap/panic log lines {}; ERR lines {}",
            self.traefik.access_non_2xx,
            self.traefik.trap_lines.len(),
            self.traefik.err_lines.len()
        );
        let samples: Vec<String> = self
            .rss_after_reload
            .iter()
            .map(|r| format!("{:.0}", mib(*r)))
            .collect();
        let _ = writeln!(
            out,
            "Traefik memory: after warm-up {}; end {}; growth: RSS {:+.1} MiB ({:+.2} per reload), live heap {:+.2} MiB ({:+.3} per reload); RSS after each reload (MiB): {}",
            self.warm.show(),
            self.end.show(),
            self.rss_growth(),
            self.rss_growth() / f64::from(self.reloads_done.max(1)),
            self.heap_growth(),
            self.heap_growth() / f64::from(self.reloads_done.max(1)),
            samples.join(" ")
        );
        if !self.heap_after_reload.is_empty() {
            let heap: Vec<String> = self
                .heap_after_reload
                .iter()
                .map(|(n, h)| format!("{n}: {:.1}", mib(*h)))
                .collect();
            let _ = writeln!(
                out,
                "live heap after N reloads, traffic flowing (MiB): {}",
                heap.join(", ")
            );
        }
        for line in &self.traefik.access_unexpected {
            let short: String = line.chars().take(400).collect();
            let _ = writeln!(out, "  access log: {short}");
        }
        for failure in &self.traffic.failures {
            let _ = writeln!(out, "  failure: {failure}");
        }
        out
    }
}

/// One row per guest: the same reloads under the same traffic, side by side.
pub fn compare_reloads(reports: &[ReloadReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| guest | reloads | requests | failed | RSS after warm-up → end (MiB) | RSS growth | live heap after warm-up → end (MiB) | live-heap growth | per reload |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let total = r.traffic.total();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} → {:.1} | {:+.1} | {:.1} → {:.1} | {:+.2} | {:+.3} |",
            r.plan.guest.name(),
            r.reloads_done,
            total.sent,
            total.failed(),
            mib(r.warm.rss),
            mib(r.end.rss),
            r.rss_growth(),
            mib(r.warm.live_heap),
            mib(r.end.live_heap),
            r.heap_growth(),
            r.heap_growth() / f64::from(r.reloads_done.max(1))
        );
    }
    out
}

/// Runs `plan.reloads` dynamic-config reloads while `plan.threads` threads
/// keep sending the mix, after a warm-up without reloads.
pub fn reloads(plan: &ReloadPlan) -> Result<ReloadReport> {
    let deadline = Instant::now() + plan.budget;
    let backends = Backends::start()?;
    let mut traefik = start_traefik(plan.guest, &backends)?;
    let mut lanes = lanes(web_addr(&traefik)?, plan.threads, plan.guest.decides());
    let control = Control::default();
    let warmup = drive(&mut lanes, Limit::Requests(plan.warmup), &control, deadline);
    let warm = Memory::sample(&traefik)?;
    let mut rss_after_reload = Vec::new();
    let mut heap_after_reload = Vec::new();
    let mut reloads_done = 0;
    let (traffic, reload_result) = std::thread::scope(|scope| {
        let traffic = scope.spawn(|| drive(&mut lanes, Limit::UntilStopped, &control, deadline));
        let result = (|| -> Result<()> {
            for generation in 1..=plan.reloads {
                ensure!(
                    Instant::now() < deadline,
                    "out of time after {reloads_done} reloads"
                );
                control.reloading.store(true, Ordering::SeqCst);
                let applied = traefik.update_dynamic(&backends.config(generation));
                control.reloading.store(false, Ordering::SeqCst);
                applied?;
                reloads_done = generation;
                rss_after_reload.push(traefik.rss_bytes()?);
                if plan.heap_every > 0 && generation.is_multiple_of(plan.heap_every) {
                    heap_after_reload.push((generation, Memory::sample(&traefik)?.live_heap));
                }
            }
            Ok(())
        })();
        control.stop.store(true, Ordering::SeqCst);
        let traffic = traffic
            .join()
            .map_err(|_| anyhow!("the traffic thread panicked"));
        (traffic, result)
    });
    let traffic = traffic?;
    reload_result?;
    let end = Memory::sample(&traefik)?;
    Ok(ReloadReport {
        plan: plan.clone(),
        warmup,
        traffic,
        reloads_done,
        warm,
        rss_after_reload,
        heap_after_reload,
        end,
        traefik: TraefikRecord::read(&traefik),
    })
}
