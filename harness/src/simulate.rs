//! Synthetic traffic through Cohort's plugin: does the split follow the
//! weights, does everyone stay put, and who moves when the configuration
//! changes mid-run?
//!
//! [`Simulation::run`] sends `visitors` × `requests` requests through the
//! guest. Every visitor has its own source address (`10.x.y.z`), its own
//! `X-User-Id` and a browser's cookie jar (`cohort_test_support::jar`: each
//! `Set-Cookie` stored by name, an expired one deleted), and the cohort of each request is read from the
//! header the backend received (`X-Canary` unless the configuration names
//! another; the cohort cookie when the header is switched off).
//!
//! With a [`ConfigChange`], the first `after` requests of every visitor go
//! through a guest loaded with the first configuration, the rest through a
//! guest loaded with the second (as Traefik reloads a middleware), and the
//! report has a from → to movement matrix.
//!
//! Expected shares come from the configuration itself, parsed with Cohort's
//! own code ([`cohort::Config`]): an active variant's weight over the total
//! weight of the active variants; drained and disabled variants take no new
//! visitors.
//!
//! ```
//! use cohort_harness::simulate::Simulation;
//!
//! let wasm = std::fs::read(cohort_harness::artifacts::PLUGIN_WASM)?;
//! let sim = Simulation::new(wasm, Simulation::canary_config(10.0)?).visitors(200);
//! let report = sim.run(None)?;
//! print!("{}", report.render_text());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow};
use cohort_test_support::jar::Jar;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::host::{Guest, HostOptions};
use crate::model::{Request, Response};

/// Most visitors one run can have: each gets its own address in 10.0.0.0/8.
pub const MAX_VISITORS: usize = (1 << 24) - 2;

/// The header that carries each visitor's user id (for `--key header`).
pub const USER_ID_HEADER: &str = "X-User-Id";

/// Where the assignment key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// The configuration as given: anonymous visitors, drawn once under
    /// `stickiness: keep`, keyed by a kept visitor-id cookie under
    /// `reevaluate` (or with `visitorCookie` set).
    #[default]
    Visitor,
    /// `keys: ["header:X-User-Id"]`; every visitor sends its own id.
    Header,
    /// `keys: ["ip"]`; every visitor has its own address.
    Ip,
}

impl fmt::Display for KeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyMode::Visitor => "visitor",
            KeyMode::Header => "header",
            KeyMode::Ip => "ip",
        })
    }
}

/// A change of configuration derived from the first one.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// This configuration, as given.
    Config(Value),
    /// The first non-default variant's weight becomes this percentage (the
    /// default variant takes the rest).
    RampTo(f64),
    /// The first non-default variant is drained: no new visitors, holders stay.
    Drain,
    /// The first non-default variant is disabled: holders go to the default.
    Rollback,
}

/// A configuration change in the middle of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigChange {
    /// Each visitor's first `after` requests use the first configuration.
    pub after: usize,
    /// The configuration from then on.
    pub config: Value,
    /// What the change is, for people (`ramp v2 10% -> 30%`).
    pub label: String,
}

/// Progress of a run, reported about every 10 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Requests done.
    pub done: u64,
    /// Requests in the whole run.
    pub total: u64,
}

/// A simulation to run.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The guest's bytes.
    pub wasm: Vec<u8>,
    /// Its configuration (plain JSON; the host stringifies it as Traefik
    /// does when faithful).
    pub config: Value,
    /// Number of visitors.
    pub visitors: usize,
    /// Requests per visitor.
    pub requests: usize,
    /// Where the assignment key comes from.
    pub key: KeyMode,
    /// A configuration change mid-run.
    pub change: Option<ConfigChange>,
    /// Traefik-faithful host (default) or not.
    pub faithful: bool,
    /// Threads sending requests (each on its own instance).
    pub threads: usize,
}

impl Simulation {
    /// 10 000 visitors × 3 requests on a faithful host.
    pub fn new(wasm: Vec<u8>, config: Value) -> Self {
        Simulation {
            wasm,
            config,
            visitors: 10_000,
            requests: 3,
            key: KeyMode::Visitor,
            change: None,
            faithful: true,
            // Each thread keeps one instance busy.
            threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        }
    }

    /// Set the number of visitors.
    pub fn visitors(mut self, visitors: usize) -> Self {
        self.visitors = visitors;
        self
    }

    /// Set the requests per visitor.
    pub fn requests(mut self, requests: usize) -> Self {
        self.requests = requests;
        self
    }

    /// Set the key mode.
    pub fn key(mut self, key: KeyMode) -> Self {
        self.key = key;
        self
    }

    /// Change the configuration after each visitor's `after`-th request.
    pub fn change(mut self, change: ConfigChange) -> Self {
        self.change = Some(change);
        self
    }

    /// Set the number of threads (at least 1).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Set whether the host is Traefik-faithful.
    pub fn faithful(mut self, faithful: bool) -> Self {
        self.faithful = faithful;
        self
    }

    /// `{"variants": [{"name": "v1"}, {"name": "v2", "weight": pct}]}`.
    pub fn canary_config(pct: f64) -> Result<Value> {
        Ok(json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": percent_value(pct)?}]}))
    }

    /// The configurations as the guest gets them: `key` applied.
    fn effective(&self, config: &Value) -> Value {
        let mut config = config.clone();
        let keys = match self.key {
            KeyMode::Visitor => return config,
            KeyMode::Header => json!([format!("header:{USER_ID_HEADER}")]),
            KeyMode::Ip => json!(["ip"]),
        };
        if let Value::Object(map) = &mut config {
            map.insert("keys".into(), keys);
        }
        config
    }

    /// Runs it; `progress` hears about every 10 % of the requests.
    pub fn run(&self, progress: Option<&(dyn Fn(Progress) + Sync)>) -> Result<SimulationReport> {
        if self.visitors == 0 || self.visitors > MAX_VISITORS {
            return Err(anyhow!("visitors must be from 1 to {MAX_VISITORS}"));
        }
        if self.requests == 0 {
            return Err(anyhow!("requests must be at least 1"));
        }
        if let Some(change) = &self.change
            && (change.after == 0 || change.after >= self.requests)
        {
            return Err(anyhow!(
                "the change comes after request {} of {}: it must be from 1 to {} \
                 (more requests per visitor, or an earlier change)",
                change.after,
                self.requests,
                self.requests.saturating_sub(1)
            ));
        }
        let first_config = self.effective(&self.config);
        let first = parse_config(&first_config, "the")?;
        let second = match &self.change {
            Some(change) => {
                let value = self.effective(&change.config);
                let parsed = parse_config(&value, "the changed")?;
                Some((change, value, parsed))
            }
            None => None,
        };

        let mut names: Vec<String> = first.variants.iter().map(|v| v.name.clone()).collect();
        if let Some((_, _, parsed)) = &second {
            for v in &parsed.variants {
                if !names.contains(&v.name) {
                    names.push(v.name.clone());
                }
            }
        }
        let reader = CohortReader::new(&first, &names);

        let mut visitors: Vec<VisitorState> = (0..self.visitors)
            .map(|_| VisitorState::new(self.requests))
            .collect();
        let total = (self.visitors * self.requests) as u64;
        let counter = Counter::new(total, progress);
        let mut fuel: Vec<u64> = Vec::with_capacity(total as usize);
        let mut instances = 0;

        let split_at = self.change.as_ref().map_or(self.requests, |c| c.after);
        let guest = self.load(&first_config)?;
        self.phase(
            &guest,
            &reader,
            &mut visitors,
            0..split_at,
            &counter,
            &mut fuel,
        )?;
        instances += guest.instances_created();
        drop(guest);
        if let Some((_, config, parsed)) = &second {
            let reader = CohortReader::new(parsed, &names);
            let guest = self.load(config)?;
            self.phase(
                &guest,
                &reader,
                &mut visitors,
                split_at..self.requests,
                &counter,
                &mut fuel,
            )?;
            instances += guest.instances_created();
        }

        let unknown = names.len() as u16;
        let mut all_names = names.clone();
        if visitors.iter().any(|v| v.cohorts.contains(&unknown)) {
            all_names.push(NO_COHORT.to_owned());
        }
        let split = Split::measure(
            "cohort at each visitor's first request",
            &all_names,
            visitors.iter().map(|v| v.cohorts[0]),
            &expected_shares(&first, &all_names),
        );
        let mut changed_visitors = 0;
        let mut changed_within_phase = 0;
        for v in &visitors {
            let changes: Vec<usize> = (1..self.requests)
                .filter(|&r| v.cohorts[r] != v.cohorts[r - 1])
                .collect();
            if !changes.is_empty() {
                changed_visitors += 1;
            }
            if changes.iter().any(|&r| r != split_at) {
                changed_within_phase += 1;
            }
        }
        let change = second.map(|(change, config, parsed)| {
            let n = all_names.len();
            let mut counts = vec![vec![0usize; n]; n];
            for v in &visitors {
                let from = usize::from(v.cohorts[split_at - 1]);
                let to = usize::from(v.cohorts[self.requests - 1]);
                counts[from][to] += 1;
            }
            let moved = counts
                .iter()
                .enumerate()
                .map(|(i, row)| row.iter().sum::<usize>() - row[i])
                .sum();
            ChangeReport {
                after_request: change.after,
                label: change.label.clone(),
                stickiness: match parsed.stickiness {
                    cohort::config::Stickiness::Keep => "keep",
                    cohort::config::Stickiness::Reevaluate => "reevaluate",
                }
                .to_owned(),
                config,
                moved,
                matrix: Movement {
                    cohorts: all_names.clone(),
                    counts,
                },
                split_after: Split::measure(
                    "cohort at each visitor's last request",
                    &all_names,
                    visitors.iter().map(|v| v.cohorts[self.requests - 1]),
                    &expected_shares(&parsed, &all_names),
                ),
            }
        });

        Ok(SimulationReport {
            visitors: self.visitors,
            requests_per_visitor: self.requests,
            requests: total,
            key: self.key,
            faithful: self.faithful,
            threads: self.threads,
            config: first_config,
            split,
            changed_visitors,
            changed_within_phase,
            change,
            instances,
            fuel: FuelStats::of(&mut fuel),
        })
    }

    fn load(&self, config: &Value) -> Result<Guest> {
        let options = HostOptions::default()
            .faithful(self.faithful)
            .config_json(config.clone())
            .log_level(crate::LogLevel::Warn);
        crate::run::load_guest(&self.wasm, options).map_err(|e| anyhow!("loading the guest: {e}"))
    }

    /// Requests `range` (0-based) of every visitor through `guest`.
    fn phase(
        &self,
        guest: &Guest,
        reader: &CohortReader,
        visitors: &mut [VisitorState],
        range: std::ops::Range<usize>,
        counter: &Counter,
        fuel: &mut Vec<u64>,
    ) -> Result<()> {
        let threads = self.threads.clamp(1, visitors.len().max(1));
        let chunk = visitors.len().div_ceil(threads);
        let results: Vec<Result<Vec<u64>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = visitors
                .chunks_mut(chunk)
                .enumerate()
                .map(|(c, slice)| {
                    let range = range.clone();
                    scope.spawn(move || {
                        let mut fuel = Vec::with_capacity(slice.len() * range.len());
                        for (offset, visitor) in slice.iter_mut().enumerate() {
                            let index = c * chunk + offset;
                            for r in range.clone() {
                                let spent = self.one(guest, reader, index, visitor, r)?;
                                fuel.push(spent);
                                counter.add(1);
                            }
                        }
                        Ok(fuel)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a simulation thread panicked")))
                })
                .collect()
        });
        for result in results {
            fuel.extend(result?);
        }
        Ok(())
    }

    /// Request `r` (0-based) of visitor `index`; returns the fuel it took.
    fn one(
        &self,
        guest: &Guest,
        reader: &CohortReader,
        index: usize,
        visitor: &mut VisitorState,
        r: usize,
    ) -> Result<u64> {
        let mut request = Request::get(if r == 0 {
            "/".to_owned()
        } else {
            format!("/page/{r}")
        })
        .header("Host", "shop.example.com")
        .header("User-Agent", "Mozilla/5.0 (cohort-simulate)")
        .source_addr(visitor_addr(index, r));
        if self.key == KeyMode::Header {
            request = request.header(USER_ID_HEADER, format!("user-{index}"));
        }
        if let Some(cookie) = visitor.cookie_header() {
            request = request.header("Cookie", cookie);
        }
        let backend = |_: &Request| Response::new(200);
        let exchange = guest.handle(request, &backend)?;
        if let Some(error) = &exchange.error {
            return Err(anyhow!(
                "visitor {index}, request {}: the guest failed: {error}",
                r + 1
            ));
        }
        visitor.cohorts[r] = reader.read(exchange.backend_request.as_ref());
        for set_cookie in exchange.response.headers.get_all("Set-Cookie") {
            visitor.store(set_cookie);
        }
        Ok(exchange.fuel)
    }
}

/// The source address of visitor `index` on its request `r`: an address of
/// its own in 10.0.0.0/8, a port that changes per request (connection).
pub fn visitor_addr(index: usize, r: usize) -> String {
    let ip = Ipv4Addr::from(0x0a00_0000u32 + 1 + (index as u32 & 0x00ff_ffff));
    let port = 1024 + (index * 7 + r * 13) % 64_000;
    format!("{ip}:{port}")
}

/// A JSON number for a percentage (integers stay integers), checked.
fn percent_value(pct: f64) -> Result<Value> {
    if !(0.0..=100.0).contains(&pct) {
        return Err(anyhow!("{pct} is not a percentage from 0 to 100"));
    }
    if pct.fract() == 0.0 {
        Ok(json!(pct as u64))
    } else {
        Ok(json!(pct))
    }
}

fn parse_config(value: &Value, which: &'static str) -> Result<cohort::Config> {
    cohort::Config::from_value(value).map_err(|source| anyhow!("{which} configuration: {source}"))
}

/// Applies `kind` to `config`: returns the changed configuration and a label.
pub fn derive_change(config: &Value, kind: &ChangeKind) -> Result<(Value, String)> {
    let parsed = parse_config(config, "the")?;
    let (weight, state) = match kind {
        ChangeKind::Config(next) => {
            parse_config(next, "the changed")?;
            return Ok((next.clone(), "configuration replaced".to_owned()));
        }
        ChangeKind::RampTo(pct) => (Some(*pct), None),
        ChangeKind::Drain => (None, Some(("drained", "drain"))),
        ChangeKind::Rollback => (None, Some(("disabled", "rollback"))),
    };
    let Some(target) = (0..parsed.variants.len()).find(|&i| i != parsed.default) else {
        return Err(anyhow!("no non-default variant to change"));
    };
    let name = parsed.variants[target].name.clone();
    let mut map = match config {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err(anyhow!("the configuration is not an object")),
    };
    // Without variants Cohort runs v1 at 100 % and v2 at 0 %: write them out.
    if !matches!(map.get("variants"), Some(Value::Array(_))) {
        map.insert(
            "variants".into(),
            json!([{"name": "v1"}, {"name": "v2", "weight": 0}]),
        );
    }
    let Some(Value::Array(variants)) = map.get_mut("variants") else {
        return Err(anyhow!("variants is not a list"));
    };
    let mut label = String::new();
    if let Some(pct) = weight {
        let old = f64::from(parsed.variants[target].weight) / 100.0;
        if let Some(Value::Object(v)) = variants.get_mut(target) {
            v.insert("weight".into(), percent_value(pct)?);
        }
        if let Some(Value::Object(v)) = variants.get_mut(parsed.default) {
            v.remove("weight");
        }
        label = format!("ramp {name} {old}% -> {pct}%");
    }
    if let Some((state, verb)) = state {
        if let Some(Value::Object(v)) = variants.get_mut(target) {
            v.insert("state".into(), json!(state));
        }
        label = format!("{verb} {name}");
    }
    let next = Value::Object(map);
    parse_config(&next, "the changed")?;
    Ok((next, label))
}

/// The cohort name shown for a request whose backend saw none.
pub const NO_COHORT: &str = "(none)";

/// Reads the cohort a backend request carries.
struct CohortReader<'a> {
    header: Option<String>,
    cookie: String,
    names: &'a [String],
}

impl<'a> CohortReader<'a> {
    fn new(config: &cohort::Config, names: &'a [String]) -> Self {
        CohortReader {
            header: config.header.clone(),
            cookie: config.cookie_name.clone(),
            names,
        }
    }

    /// The index of the cohort in `names`, or `names.len()` for none.
    fn read(&self, request: Option<&Request>) -> u16 {
        let unknown = self.names.len() as u16;
        let Some(request) = request else {
            return unknown;
        };
        let value = match &self.header {
            Some(header) => request.headers.get(header).map(str::to_owned),
            None => request
                .headers
                .get_all("Cookie")
                .iter()
                .flat_map(|line| line.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(n, _)| *n == self.cookie)
                .map(|(_, v)| v.to_owned()),
        };
        value
            .and_then(|v| self.names.iter().position(|n| *n == v))
            .map_or(unknown, |i| i as u16)
    }
}

/// One visitor: a cookie jar and the cohort of each request.
struct VisitorState {
    jar: Jar,
    cohorts: Vec<u16>,
}

impl VisitorState {
    fn new(requests: usize) -> Self {
        VisitorState {
            jar: Jar::new(),
            cohorts: vec![0; requests],
        }
    }

    fn cookie_header(&self) -> Option<String> {
        self.jar.header()
    }

    /// Applies one `Set-Cookie` value as a browser would.
    fn store(&mut self, set_cookie: &str) {
        self.jar.store(set_cookie);
    }
}

/// Counts requests done and reports every 10 %.
struct Counter<'a> {
    done: AtomicU64,
    next_report: AtomicU64,
    total: u64,
    progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

impl<'a> Counter<'a> {
    fn new(total: u64, progress: Option<&'a (dyn Fn(Progress) + Sync)>) -> Self {
        Counter {
            done: AtomicU64::new(0),
            next_report: AtomicU64::new(1),
            total,
            progress,
        }
    }

    fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let Some(progress) = self.progress else {
            return;
        };
        let tenth = done * 10 / self.total.max(1);
        let next = self.next_report.load(Ordering::Relaxed);
        if tenth >= next
            && self
                .next_report
                .compare_exchange(next, tenth + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            progress(Progress {
                done,
                total: self.total,
            });
        }
    }
}

/// The share each of `names` should get under `config`.
fn expected_shares(config: &cohort::Config, names: &[String]) -> Vec<f64> {
    let active: u64 = config
        .variants
        .iter()
        .filter(|v| v.state == cohort::config::State::Active)
        .map(|v| u64::from(v.weight))
        .sum();
    names
        .iter()
        .map(|name| {
            let Some((i, v)) = config
                .variants
                .iter()
                .enumerate()
                .find(|(_, v)| v.name == *name)
            else {
                return 0.0;
            };
            if active == 0 {
                return if i == config.default { 1.0 } else { 0.0 };
            }
            if v.state == cohort::config::State::Active {
                f64::from(v.weight) / active as f64
            } else {
                0.0
            }
        })
        .collect()
}

/// Everything a run found.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationReport {
    /// Visitors simulated.
    pub visitors: usize,
    /// Requests each made.
    pub requests_per_visitor: usize,
    /// Requests in all.
    pub requests: u64,
    /// Where the assignment key came from.
    pub key: KeyMode,
    /// Whether the host was Traefik-faithful.
    pub faithful: bool,
    /// Threads that sent requests.
    pub threads: usize,
    /// The (first) configuration as the guest got it, before stringifying.
    pub config: Value,
    /// Each visitor's first cohort against the configured weights.
    pub split: Split,
    /// Visitors whose cohort differed between two of their requests.
    pub changed_visitors: usize,
    /// Of those, visitors that changed other than at the configuration change.
    pub changed_within_phase: usize,
    /// The configuration change, if there was one.
    pub change: Option<ChangeReport>,
    /// Guest instances started (both guests when the configuration changed).
    pub instances: u64,
    /// Fuel per request.
    pub fuel: FuelStats,
}

/// Cohort counts against expected shares.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    /// What was counted.
    pub measured: String,
    /// Visitors counted.
    pub total: usize,
    /// One row per cohort.
    pub cohorts: Vec<SplitRow>,
}

/// One cohort of a [`Split`].
#[derive(Debug, Clone, Serialize)]
pub struct SplitRow {
    /// The variant.
    pub name: String,
    /// Visitors in it.
    pub count: usize,
    /// Their share, in percent.
    pub observed_pct: f64,
    /// The configured share, in percent.
    pub expected_pct: f64,
    /// (observed − expected) in binomial standard errors,
    /// `sqrt(p(1−p)/n)`; `null` when the expected share is 0 or 100 %
    /// and the observed one differs (any difference is then impossible).
    pub deviation_se: Option<f64>,
}

impl Split {
    fn measure(
        measured: &str,
        names: &[String],
        cohorts: impl Iterator<Item = u16>,
        expected: &[f64],
    ) -> Split {
        let mut counts = vec![0usize; names.len()];
        let mut total = 0;
        for c in cohorts {
            if let Some(slot) = counts.get_mut(usize::from(c)) {
                *slot += 1;
            }
            total += 1;
        }
        let n = total.max(1) as f64;
        let cohorts = names
            .iter()
            .zip(&counts)
            .zip(expected)
            .map(|((name, &count), &p)| {
                let observed = count as f64 / n;
                let se = (p * (1.0 - p) / n).sqrt();
                let deviation_se = if se > 0.0 {
                    Some((observed - p) / se)
                } else if (observed - p).abs() < f64::EPSILON {
                    Some(0.0)
                } else {
                    None
                };
                SplitRow {
                    name: name.clone(),
                    count,
                    observed_pct: observed * 100.0,
                    expected_pct: p * 100.0,
                    deviation_se,
                }
            })
            .collect();
        Split {
            measured: measured.to_owned(),
            total,
            cohorts,
        }
    }

    /// The row of `name`.
    pub fn cohort(&self, name: &str) -> Option<&SplitRow> {
        self.cohorts.iter().find(|r| r.name == name)
    }
}

/// A mid-run configuration change and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    /// The change came after this many requests of each visitor.
    pub after_request: usize,
    /// What changed.
    pub label: String,
    /// The new configuration's stickiness: `keep` or `reevaluate`.
    pub stickiness: String,
    /// The configuration from then on.
    pub config: Value,
    /// Visitors whose last cohort differs from their last one before.
    pub moved: usize,
    /// Last cohort before the change → last cohort of the run.
    pub matrix: Movement,
    /// Each visitor's last cohort against the new weights. Under
    /// `stickiness: keep` returning visitors keep their cookie, so this
    /// follows the old weights rather than the new.
    pub split_after: Split,
}

/// A from → to count matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Movement {
    /// Row and column names.
    pub cohorts: Vec<String>,
    /// `counts[from][to]`.
    pub counts: Vec<Vec<usize>>,
}

/// Fuel per request.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct FuelStats {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl FuelStats {
    fn of(fuel: &mut [u64]) -> FuelStats {
        if fuel.is_empty() {
            return FuelStats {
                mean: 0.0,
                p50: 0,
                p99: 0,
                max: 0,
            };
        }
        fuel.sort_unstable();
        let at = |q: f64| fuel[((fuel.len() as f64 * q).ceil() as usize).clamp(1, fuel.len()) - 1];
        FuelStats {
            mean: fuel.iter().map(|&f| f as f64).sum::<f64>() / fuel.len() as f64,
            p50: at(0.50),
            p99: at(0.99),
            max: fuel[fuel.len() - 1],
        }
    }
}

const BAR_WIDTH: usize = 40;

/// A bar of `fraction` × [`BAR_WIDTH`] cells, in eighths.
fn bar(fraction: f64) -> String {
    const PARTIAL: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (fraction.clamp(0.0, 1.0) * (BAR_WIDTH * 8) as f64).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        out.push(PARTIAL[eighths % 8]);
    }
    let cells = out.chars().count();
    out.extend(std::iter::repeat_n(' ', BAR_WIDTH - cells.min(BAR_WIDTH)));
    out
}

fn deviation(d: Option<f64>) -> String {
    match d {
        Some(d) => format!("{d:+.2} SE"),
        None => "impossible".to_owned(),
    }
}

impl Split {
    fn render(&self, out: &mut String) {
        let width = self
            .cohorts
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(7);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>9}  {:>9}  {:>9}  {:>10}",
            "cohort", "visitors", "observed", "expected", "deviation"
        );
        for r in &self.cohorts {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>9}  {:>8.2}%  {:>8.2}%  {:>10}",
                r.name,
                r.count,
                r.observed_pct,
                r.expected_pct,
                deviation(r.deviation_se)
            );
        }
        out.push('\n');
        for r in &self.cohorts {
            let _ = writeln!(
                out,
                "  {:<width$}  {} {:>6.2}%",
                r.name,
                bar(r.observed_pct / 100.0),
                r.observed_pct
            );
        }
    }
}

impl SimulationReport {
    /// The report for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} visitors x {} requests = {} requests, key: {}, host: {}, {} thread(s)",
            self.visitors,
            self.requests_per_visitor,
            self.requests,
            match self.key {
                KeyMode::Visitor =>
                    "anonymous (a one-off draw, or the visitor-id cookie when kept)",
                KeyMode::Header => "header X-User-Id",
                KeyMode::Ip => "client ip",
            },
            if self.faithful {
                "Traefik-faithful"
            } else {
                "native"
            },
            self.threads
        );
        let _ = writeln!(out, "config: {}", self.config);
        out.push('\n');
        let _ = writeln!(
            out,
            "split of {} visitors ({}) vs the configured weights:",
            self.split.total, self.split.measured
        );
        self.split.render(&mut out);
        out.push('\n');
        let _ = writeln!(
            out,
            "stickiness: {} of {} visitors changed cohort{}",
            self.changed_visitors,
            self.visitors,
            if self.change.is_some() {
                format!(
                    " ({} other than at the configuration change)",
                    self.changed_within_phase
                )
            } else {
                String::new()
            }
        );
        if let Some(change) = &self.change {
            out.push('\n');
            let _ = writeln!(
                out,
                "configuration change after request {}: {}",
                change.after_request, change.label
            );
            let _ = writeln!(out, "  config: {}", change.config);
            let _ = writeln!(
                out,
                "  moved: {} of {} visitors (last cohort before -> last cohort after)",
                change.moved, self.visitors
            );
            let m = &change.matrix;
            let width = m.cohorts.iter().map(String::len).max().unwrap_or(0).max(9);
            let _ = write!(out, "  {:<width$}", "from \\ to");
            for c in &m.cohorts {
                let _ = write!(out, "  {c:>9}");
            }
            out.push('\n');
            for (name, row) in m.cohorts.iter().zip(&m.counts) {
                let _ = write!(out, "  {name:<width$}");
                for n in row {
                    let _ = write!(out, "  {n:>9}");
                }
                out.push('\n');
            }
            out.push('\n');
            let _ = writeln!(
                out,
                "split after the change ({}) vs the new weights:",
                change.split_after.measured
            );
            if change.stickiness == "keep" {
                let _ = writeln!(
                    out,
                    "  (stickiness keep: returning visitors keep their cohort, so this \
                     follows the old weights; new visitors get the new ones)"
                );
            }
            change.split_after.render(&mut out);
        }
        out.push('\n');
        let _ = writeln!(out, "instances: {} started", self.instances);
        let _ = writeln!(
            out,
            "fuel per request: mean {:.0}, p50 {}, p99 {}, max {}",
            self.fuel.mean, self.fuel.p50, self.fuel.p99, self.fuel.max
        );
        out
    }
}

impl fmt::Display for SimulationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitors_have_distinct_addresses() {
        assert_eq!(visitor_addr(0, 0), "10.0.0.1:1024");
        assert_ne!(
            visitor_addr(255, 0).split(':').next(),
            visitor_addr(256, 0).split(':').next()
        );
        assert_eq!(
            visitor_addr(MAX_VISITORS - 1, 2).split(':').next(),
            Some("10.255.255.254")
        );
    }

    #[test]
    fn changes_derive_from_the_first_configuration() {
        let base = Simulation::canary_config(10.0).expect("valid");
        let (ramped, label) = derive_change(&base, &ChangeKind::RampTo(30.0)).expect("ramp");
        assert_eq!(label, "ramp v2 10% -> 30%");
        assert_eq!(ramped["variants"][1]["weight"], json!(30));
        let (drained, label) = derive_change(&base, &ChangeKind::Drain).expect("drain");
        assert_eq!(label, "drain v2");
        assert_eq!(drained["variants"][1]["state"], json!("drained"));
        let (rolled, _) = derive_change(&base, &ChangeKind::Rollback).expect("rollback");
        assert_eq!(rolled["variants"][1]["state"], json!("disabled"));
        let (from_empty, _) = derive_change(&json!({}), &ChangeKind::RampTo(5.0)).expect("ramp");
        assert_eq!(from_empty["variants"][1]["weight"], json!(5));
        let explicit =
            json!({"variants": [{"name": "v1", "weight": 50}, {"name": "v2", "weight": 60}]});
        let err = derive_change(&base, &ChangeKind::Config(explicit)).expect_err("invalid");
        assert!(err.to_string().contains("variants"), "{err}");
        assert!(Simulation::canary_config(101.0).is_err());
    }

    #[test]
    fn expected_shares_ignore_drained_and_disabled_variants() {
        let config = cohort::Config::from_value(&json!({"variants": [
            {"name": "a"}, {"name": "b", "weight": 20}, {"name": "c", "weight": 30, "state": "drained"}
        ]}))
        .expect("valid");
        let names: Vec<String> = ["a", "b", "c", "zz"].map(String::from).to_vec();
        let shares = expected_shares(&config, &names);
        assert!((shares[0] - 50.0 / 70.0).abs() < 1e-9);
        assert!((shares[1] - 20.0 / 70.0).abs() < 1e-9);
        assert_eq!((shares[2], shares[3]), (0.0, 0.0));
    }

    #[test]
    fn split_measures_deviation_in_standard_errors() {
        let names = vec!["v1".to_owned(), "v2".to_owned()];
        // 100 visitors, 20 in v2 where 10 % were expected: SE = 3 %.
        let cohorts = (0..100).map(|i| u16::from(i < 20));
        let split = Split::measure("x", &names, cohorts, &[0.9, 0.1]);
        let v2 = split.cohort("v2").expect("row");
        assert_eq!(v2.count, 20);
        assert!((v2.deviation_se.expect("finite") - 10.0 / 3.0).abs() < 1e-9);
        let none = Split::measure("x", &names, (0..10).map(|_| 1), &[1.0, 0.0]);
        assert_eq!(none.cohort("v2").expect("row").deviation_se, None);
    }

    #[test]
    fn fuel_percentiles_and_bars() {
        let mut fuel: Vec<u64> = (1..=100).collect();
        let stats = FuelStats::of(&mut fuel);
        assert_eq!((stats.p50, stats.p99, stats.max), (50, 99, 100));
        assert!((stats.mean - 50.5).abs() < 1e-9);
        assert_eq!(bar(1.0).chars().count(), BAR_WIDTH);
        assert_eq!(bar(0.5).trim_end(), "█".repeat(20));
        assert_eq!(bar(0.0).trim(), "");
    }
}
