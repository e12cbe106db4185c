//! The same traffic through `Guest::handle`, reading every instance's memory.

#[allow(unused_imports)]
use super::*;

/// Memory of one guest instance.
#[derive(Debug, Clone, Copy)]
pub struct InstanceMemory {
    pub id: u64,
    /// After its first request.
    pub first: usize,
    /// After the warm-up (or its first request, if it started later).
    pub warm: usize,
    /// After its last request.
    pub end: usize,
    pub served: u64,
}

/// What [`guest_memory`] saw.
#[derive(Debug, Clone)]
pub struct GuestMemoryReport {
    pub requests: u64,
    pub threads: usize,
    /// Single instance: memory after the catalogue of every kind at every
    /// size, and after every later request (the maximum and the last).
    pub single_warm: usize,
    pub single_max: usize,
    pub single_requests: u64,
    /// Several threads, pooled instances.
    pub instances: Vec<InstanceMemory>,
    /// Requests that trapped or broke a rule.
    pub failures: u64,
    pub failure_examples: Vec<String>,
}

impl GuestMemoryReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Guest memory in the harness (wasmtime, Traefik-faithful host)\n"
        );
        let _ = writeln!(
            out,
            "one instance: {} KiB after a catalogue of every kind at every size, at most {} KiB over {} more mixed requests",
            self.single_warm / 1024,
            self.single_max / 1024,
            self.single_requests
        );
        let _ = writeln!(
            out,
            "{} threads, {} requests, {} instances:",
            self.threads,
            self.requests,
            self.instances.len()
        );
        let _ = writeln!(
            out,
            "| instance | served | after 1st request KiB | after the first quarter of requests KiB | end KiB |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for i in &self.instances {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                i.id,
                i.served,
                i.first / 1024,
                i.warm / 1024,
                i.end / 1024
            );
        }
        let _ = writeln!(out, "failed requests {}", self.failures);
        for f in &self.failure_examples {
            let _ = writeln!(out, "  failure: {f}");
        }
        out
    }
}

/// The soak's mix through the harness: first one instance (a catalogue of
/// every kind at every size, then `requests` mixed requests), then
/// `threads` threads sharing a pool, `requests` in all, watching
/// `memory_bytes` of every instance.
pub fn guest_memory(requests: u64, threads: usize) -> Result<GuestMemoryReport> {
    let options = || HostOptions::traefik().config_json(cohort_settings(0));
    let mut failures = Failures::default();

    // One instance: a catalogue of every kind at every size, then the mix.
    let single = Guest::load(&read_plugin()?, options().max_instances(1))?;
    let mut visitors = Visitors::new(0, true);
    for _ in 0..3 {
        let planned = visitors.plan_kind(Kind::New);
        handle_in_harness(&single, &mut visitors, &planned, &mut failures)?;
    }
    let mut single_warm = 0;
    for kind in Kind::ALL {
        if kind == Kind::ControlBytes {
            continue; // never reaches a guest in Traefik
        }
        for _ in 0..12 {
            let planned = visitors.plan_kind(kind);
            single_warm = handle_in_harness(&single, &mut visitors, &planned, &mut failures)?.1;
        }
    }
    let mut single_max = single_warm;
    let mut single_requests = 0;
    while single_requests < requests {
        let planned = visitors.plan();
        if planned.kind == Kind::ControlBytes {
            continue;
        }
        let (_, memory) = handle_in_harness(&single, &mut visitors, &planned, &mut failures)?;
        single_max = single_max.max(memory);
        single_requests += 1;
    }

    // Several threads on a pool: (instance, request number, memory).
    let pooled = Guest::load(&read_plugin()?, options())?;
    let warm_after = requests / 4;
    let counter = AtomicU64::new(0);
    let per_thread: Vec<(Vec<Sample>, Failures)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let pooled = &pooled;
                let counter = &counter;
                scope.spawn(move || -> Result<(Vec<Sample>, Failures)> {
                    let mut visitors = Visitors::new(100 + t, true);
                    let mut failures = Failures::default();
                    let mut seen = Vec::new();
                    loop {
                        let planned = visitors.plan();
                        if planned.kind == Kind::ControlBytes {
                            continue;
                        }
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        if n >= requests {
                            break;
                        }
                        let (id, memory) =
                            handle_in_harness(pooled, &mut visitors, &planned, &mut failures)?;
                        seen.push((id, n, memory));
                    }
                    Ok((seen, failures))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow!("a harness thread panicked"))?)
            .collect::<Result<Vec<_>>>()
    })?;
    let mut instances: BTreeMap<u64, InstanceMemory> = BTreeMap::new();
    let mut samples = Vec::new();
    for (seen, thread_failures) in per_thread {
        samples.extend(seen);
        failures.merge(thread_failures);
    }
    samples.sort_by_key(|(_, n, _)| *n);
    for (id, n, memory) in samples {
        let entry = instances.entry(id).or_insert(InstanceMemory {
            id,
            first: memory,
            warm: memory,
            end: memory,
            served: 0,
        });
        entry.served += 1;
        entry.end = memory;
        if n < warm_after {
            entry.warm = memory;
        }
    }
    Ok(GuestMemoryReport {
        requests,
        threads,
        single_warm,
        single_max,
        single_requests,
        instances: instances.into_values().collect(),
        failures: failures.count,
        failure_examples: failures.examples,
    })
}

/// `(instance id, request number, memory bytes)` of one request.
pub(super) type Sample = (u64, u64, usize);

/// Failed requests in the harness, counted and the first ones described.
#[derive(Debug, Default)]
pub(super) struct Failures {
    pub(super) count: u64,
    pub(super) examples: Vec<String>,
}

impl Failures {
    pub(super) fn add(&mut self, description: String) {
        self.count += 1;
        if self.examples.len() < KEEP_FAILURES {
            self.examples.push(description);
        }
    }

    pub(super) fn merge(&mut self, other: Failures) {
        self.count += other.count;
        for example in other.examples {
            if self.examples.len() < KEEP_FAILURES {
                self.examples.push(example);
            }
        }
    }
}

/// Runs `planned` through `guest`, checks the answer like the Traefik
/// soak does, and returns the instance that served it and its memory.
pub(super) fn handle_in_harness(
    guest: &Guest,
    visitors: &mut Visitors,
    planned: &Planned,
    failures: &mut Failures,
) -> Result<(u64, usize)> {
    let backend = |_: &Request| cohort_harness::Response::new(200);
    let exchange = guest.handle(planned.harness_request(), &backend)?;
    let set_cookies = harness_set_cookies(&exchange);
    let outcome = match &exchange.error {
        Some(error) => Outcome::ServerError {
            status: exchange.response.status,
            wasm: true,
            text: error.to_string(),
        },
        None => visitors.verify(
            planned,
            exchange.response.status,
            &set_cookies,
            &exchange.response.body,
            exchange.backend_request.as_ref().map(|r| BackendView {
                served: None,
                x_canary: r
                    .headers
                    .get_all(HEADER)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                cookie_lines: r
                    .headers
                    .get_all("Cookie")
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            }),
        ),
    };
    if matches!(outcome, Outcome::Ok(_)) {
        visitors.learn(planned, &set_cookies);
    } else {
        failures.add(format!(
            "{} {} ({}): {outcome:?}",
            planned.method,
            planned.target.chars().take(60).collect::<String>(),
            planned.kind.name()
        ));
    }
    Ok((exchange.instance.id, exchange.memory_bytes))
}

pub(super) fn read_plugin() -> Result<Vec<u8>> {
    std::fs::read(cohort_harness::artifacts::PLUGIN_WASM)
        .with_context(|| format!("reading {}", cohort_harness::artifacts::PLUGIN_WASM))
}

pub(super) fn harness_set_cookies(
    exchange: &cohort_harness::Exchange,
) -> Vec<(String, String, bool)> {
    let raw = RawResponse {
        status: exchange.response.status,
        headers: exchange
            .response
            .headers
            .get_all("Set-Cookie")
            .into_iter()
            .map(|v| ("Set-Cookie".to_owned(), v.to_owned()))
            .collect(),
        body: Vec::new(),
        close: false,
    };
    raw.set_cookies()
}
