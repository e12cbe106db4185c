//! Driving the lanes of traffic and counting what came back.

#[allow(unused_imports)]
use super::*;

/// Counts for one kind of request.
#[derive(Debug, Clone, Copy, Default)]
pub struct KindStats {
    pub sent: u64,
    /// `2xx`, checked.
    pub ok: u64,
    /// Go's `400` for control bytes, as expected.
    pub refused_400: u64,
    /// `5xx` answers.
    pub server_errors: u64,
    /// `5xx` answers whose body is a guest trap (`wasm error`).
    pub traps: u64,
    /// Any other unexpected status.
    pub other_status: u64,
    /// Connect, write or read failures.
    pub connection_errors: u64,
    /// `2xx` answers that break a rule.
    pub inconsistent: u64,
}

impl KindStats {
    pub fn failed(&self) -> u64 {
        self.server_errors + self.other_status + self.connection_errors + self.inconsistent
    }

    pub(super) fn add(&mut self, other: &KindStats) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.refused_400 += other.refused_400;
        self.server_errors += other.server_errors;
        self.traps += other.traps;
        self.other_status += other.other_status;
        self.connection_errors += other.connection_errors;
        self.inconsistent += other.inconsistent;
    }
}

/// What a phase of traffic did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub kinds: BTreeMap<Kind, KindStats>,
    /// Checked `2xx` answers per cohort.
    pub cohorts: BTreeMap<String, u64>,
    /// The first failures, described.
    pub failures: Vec<String>,
    /// TCP connections opened.
    pub connects: u64,
    /// Requests started while a reload was being applied.
    pub during_reload: u64,
    pub elapsed: Duration,
    /// The slowest answer.
    pub slowest: Duration,
    /// Answers that took over a second (reported, not failed: the cause
    /// is the test's whoami pods, see [`Backends`]).
    pub slow: u64,
}

impl Stats {
    pub fn total(&self) -> KindStats {
        let mut total = KindStats::default();
        for stats in self.kinds.values() {
            total.add(stats);
        }
        total
    }

    pub fn hostile(&self) -> u64 {
        self.kinds
            .iter()
            .filter(|(k, _)| k.hostile())
            .map(|(_, s)| s.sent)
            .sum()
    }

    pub(super) fn merge(&mut self, other: Stats) {
        for (kind, stats) in other.kinds {
            self.kinds.entry(kind).or_default().add(&stats);
        }
        for (cohort, n) in other.cohorts {
            *self.cohorts.entry(cohort).or_default() += n;
        }
        for failure in other.failures {
            if self.failures.len() < KEEP_FAILURES {
                self.failures.push(failure);
            }
        }
        self.connects += other.connects;
        self.during_reload += other.during_reload;
        self.slowest = self.slowest.max(other.slowest);
        self.slow += other.slow;
    }

    pub(super) fn record(&mut self, planned: &Planned, outcome: &Outcome) {
        let stats = self.kinds.entry(planned.kind).or_default();
        stats.sent += 1;
        let failure = match outcome {
            Outcome::Ok(cohort) => {
                stats.ok += 1;
                if let Some(cohort) = cohort {
                    *self.cohorts.entry(cohort.clone()).or_default() += 1;
                }
                None
            }
            Outcome::Refused400 => {
                stats.refused_400 += 1;
                None
            }
            Outcome::ServerError { status, wasm, text } => {
                stats.server_errors += 1;
                stats.traps += u64::from(*wasm);
                // The first line: a trap's wasm stack trace follows it.
                Some(format!("{status}: {}", text.lines().next().unwrap_or("")))
            }
            Outcome::OtherStatus { status, text } => {
                stats.other_status += 1;
                Some(format!("{status}: {text}"))
            }
            Outcome::Inconsistent(why) => {
                stats.inconsistent += 1;
                Some(why.clone())
            }
        };
        if let Some(failure) = failure
            && self.failures.len() < KEEP_FAILURES
        {
            self.failures.push(format!(
                "{} {} ({}): {failure}",
                planned.method,
                planned.target.chars().take(60).collect::<String>(),
                planned.kind.name()
            ));
        }
    }

    pub(super) fn record_connection_error(&mut self, planned: &Planned, error: &std::io::Error) {
        self.kinds
            .entry(planned.kind)
            .or_default()
            .connection_errors += 1;
        self.kinds.entry(planned.kind).or_default().sent += 1;
        if self.failures.len() < KEEP_FAILURES {
            self.failures.push(format!(
                "{} {} ({}): connection error: {error}",
                planned.method,
                planned.target.chars().take(60).collect::<String>(),
                planned.kind.name()
            ));
        }
    }

    /// The per-kind table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| {:<28} | {:>8} | {:>8} | {:>7} | {:>5} | {:>5} | {:>5} | {:>5} | {:>6} |",
            "kind", "sent", "2xx ok", "400 Go", "5xx", "traps", "other", "conn", "wrong"
        );
        let _ = writeln!(out, "|{}|", ["-"; 9].map(|_| "---").join("|"));
        let row = |out: &mut String, name: &str, s: &KindStats| {
            let _ = writeln!(
                out,
                "| {:<28} | {:>8} | {:>8} | {:>7} | {:>5} | {:>5} | {:>5} | {:>5} | {:>6} |",
                name,
                s.sent,
                s.ok,
                s.refused_400,
                s.server_errors,
                s.traps,
                s.other_status,
                s.connection_errors,
                s.inconsistent
            );
        };
        for (kind, stats) in &self.kinds {
            row(&mut out, kind.name(), stats);
        }
        row(&mut out, "**total**", &self.total());
        out
    }
}

/// Stops and watches a phase of traffic.
#[derive(Debug, Default)]
pub struct Control {
    pub(super) stop: AtomicBool,
    pub(super) reloading: AtomicBool,
    pub(super) remaining: AtomicU64,
}

/// How much traffic a phase sends.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// This many requests, over all threads.
    Requests(u64),
    /// Until [`Control::stop`] is set.
    UntilStopped,
}

/// One thread's crowd and connection.
pub struct Lane {
    pub(super) visitors: Visitors,
    pub(super) client: Client,
}

/// `threads` lanes to `addr`.
pub fn lanes(addr: SocketAddr, threads: usize, decides: bool) -> Vec<Lane> {
    (0..threads)
        .map(|t| Lane {
            visitors: Visitors::new(t, decides),
            client: Client::new(addr),
        })
        .collect()
}

/// Sends traffic on every lane until `limit` or `deadline`.
pub fn drive(lanes: &mut [Lane], limit: Limit, control: &Control, deadline: Instant) -> Stats {
    if let Limit::Requests(n) = limit {
        control.remaining.store(n, Ordering::SeqCst);
    }
    control.stop.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let mut stats = std::thread::scope(|scope| {
        let workers: Vec<_> = lanes
            .iter_mut()
            .map(|lane| scope.spawn(move || drive_lane(lane, limit, control, deadline)))
            .collect();
        let mut stats = Stats::default();
        for worker in workers {
            match worker.join() {
                Ok(lane_stats) => stats.merge(lane_stats),
                Err(_) => stats.failures.push("a traffic thread panicked".to_owned()),
            }
        }
        stats
    });
    stats.elapsed = started.elapsed();
    stats
}

pub(super) fn drive_lane(
    lane: &mut Lane,
    limit: Limit,
    control: &Control,
    deadline: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let connects_before = lane.client.connects;
    loop {
        if control.stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            break;
        }
        if let Limit::Requests(_) = limit
            && control
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            break;
        }
        let planned = lane.visitors.plan();
        if control.reloading.load(Ordering::SeqCst) {
            stats.during_reload += 1;
        }
        let sent_at = Instant::now();
        let answer = lane.client.send(&planned.bytes(), planned.method == "HEAD");
        let took = sent_at.elapsed();
        stats.slowest = stats.slowest.max(took);
        stats.slow += u64::from(took > Duration::from_secs(1));
        match answer {
            Ok(response) => {
                let set_cookies = response.set_cookies();
                let backend = Reply::parse(&String::from_utf8_lossy(&response.body))
                    .ok()
                    .map(|reply| backend_view(&reply));
                let outcome = lane.visitors.verify(
                    &planned,
                    response.status,
                    &set_cookies,
                    &response.body,
                    backend,
                );
                if matches!(outcome, Outcome::Ok(_)) {
                    lane.visitors.learn(&planned, &set_cookies);
                }
                stats.record(&planned, &outcome);
            }
            Err(error) => stats.record_connection_error(&planned, &error),
        }
    }
    stats.connects = lane.client.connects - connects_before;
    stats
}

pub(super) fn backend_view(reply: &Reply) -> BackendView {
    BackendView {
        served: reply.name.strip_prefix("soak-").map(str::to_owned),
        x_canary: reply.headers(HEADER).map(str::to_owned).collect(),
        cookie_lines: reply.headers("Cookie").map(str::to_owned).collect(),
    }
}
