//! What Cohort did on real traffic, read back from Traefik's JSON access
//! log: the split per cohort against the configured weights, the same per
//! router and service, visitors who changed cohort, statuses per cohort and
//! the split over time.
//!
//! The log comes from the recipe `recipes/static/access-log.yml`
//! (`accessLog.format: json`, the cohort header kept). Traefik logs the
//! request headers as they are when the response is done, so
//! `request_X-Canary` is the cohort Cohort wrote, not what the client sent
//! (verified on Traefik 3.7.15, `notes/access-log.md`). When Cohort's
//! `debugHeader` is set and kept too, each decision's reason
//! (`v2; reason=cookie`) is read from `downstream_<debugHeader>`.
//!
//! Lines are fed in the order given (rotated files oldest first, gzip
//! detected by its magic bytes). A line that is not an access-log entry —
//! cut off, not JSON, another log's — is counted by kind and skipped, never
//! an error; only a file that cannot be opened or read is.
//!
//! ```no_run
//! use cohort_harness::report::{self, Options, Source};
//!
//! let options = Options::default()
//!     .config(serde_json::json!({"variants": [{"name": "v1"}, {"name": "v2", "weight": 10}]}))
//!     .key("header:X-User-Id".parse()?);
//! let report = report::read(&[Source::File("access.log".into())], options, None)?;
//! print!("{}", report.render_text());
//! # Ok::<(), report::Error>(())
//! ```

pub mod line;
mod render;
pub mod time;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::rc::Rc;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use cohort::config::{KeySource, State};

pub use line::{Entry, Hostile};

/// Longest line read; a longer one is skipped as [`Hostile::TooLong`].
pub const MAX_LINE: usize = 1 << 20;

/// Most distinct cohort values tracked; the rest are counted as `(other)`
/// (a client-sent header on a router without Cohort can carry anything).
pub const MAX_COHORTS: usize = 32;

/// Most distinct (router, service) pairs tracked; the rest are `(other)`.
pub const MAX_ROUTES: usize = 1_000;

/// Cohort runs kept per visitor for the examples.
pub const MAX_TRAIL: usize = 16;

/// Hostile lines named in the report (file and line number).
const HOSTILE_EXAMPLES: usize = 5;

/// What can go wrong making a report. Bad lines are not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A log file could not be opened or read.
    #[error("{source_name}: {error}")]
    Io {
        /// The file (`-` for standard input).
        source_name: String,
        /// What failed.
        #[source]
        error: io::Error,
    },
    /// `--config` is not a configuration Cohort accepts.
    #[error("--config: {0}")]
    Config(#[source] cohort::ConfigError),
    /// `--key` is none of the forms.
    #[error(
        "--key {0:?}: expected header:<Name> (a user id the log keeps), cookie:<name> (needs the \
         Cookie header kept), ip-ua (client IP and User-Agent) or ip"
    )]
    Key(String),
    /// `--every` is not a duration.
    #[error("--every {0:?}: expected a duration like 30s, 1m, 5m, 1h or 1h30m")]
    Every(String),
    /// `--since` or `--until` is not a time.
    #[error("{what} {given:?}: expected an RFC 3339 time like 2026-12-01T10:00:00Z")]
    Time {
        /// `--since` or `--until`.
        what: &'static str,
        /// What was given.
        given: String,
    },
}

/// How visitors are told apart (`--key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A request header the log keeps, e.g. `X-User-Id` set by an
    /// authentication middleware (`header:X-User-Id`).
    Header(String),
    /// A cookie, e.g. Cohort's visitor id (`cookie:cohort_id`). The log
    /// must keep the `Cookie` header, which the recipe redacts.
    Cookie(String),
    /// `ClientHost` and `User-Agent` (`ip-ua`): what is left when nothing
    /// better is logged. Visitors behind one NAT with one browser merge.
    IpUa,
    /// `ClientHost` alone (`ip`).
    Ip,
}

impl FromStr for Key {
    type Err = Error;

    fn from_str(s: &str) -> Result<Key, Error> {
        let bad = || Error::Key(s.to_owned());
        let non_empty = |v: &str| {
            let v = v.trim();
            (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_owned())
        };
        match s.trim() {
            "ip-ua" => Ok(Key::IpUa),
            "ip" => Ok(Key::Ip),
            other => {
                if let Some(name) = other.strip_prefix("header:") {
                    non_empty(name).map(Key::Header).ok_or_else(bad)
                } else if let Some(name) = other.strip_prefix("cookie:") {
                    non_empty(name).map(Key::Cookie).ok_or_else(bad)
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Header(name) => write!(f, "header:{name}"),
            Key::Cookie(name) => write!(f, "cookie:{name}"),
            Key::IpUa => f.write_str("ip-ua"),
            Key::Ip => f.write_str("ip"),
        }
    }
}

/// What to report on and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cohort's configuration (the middleware's JSON): variants, weights,
    /// the cohort header and the debug header. Without one the cohort is
    /// read from `X-Canary` and nothing is expected.
    pub config: Option<Value>,
    /// How visitors are told apart; by default the configuration's first
    /// `header:` key, else [`Key::IpUa`].
    pub key: Option<Key>,
    /// Width of the timeline's buckets in nanoseconds; by default one that
    /// gives at most 30 rows.
    pub every: Option<i64>,
    /// Only entries whose `RouterName` contains this.
    pub router: Option<String>,
    /// Only entries of this entry point (`entryPointName`, e.g. `web`).
    pub entry_point: Option<String>,
    /// Only entries that started at or after this (ns since the epoch).
    pub since: Option<i64>,
    /// Only entries that started before this.
    pub until: Option<i64>,
    /// Visitors who changed cohort to show as examples.
    pub examples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: None,
            key: None,
            every: None,
            router: None,
            entry_point: None,
            since: None,
            until: None,
            examples: 5,
        }
    }
}

impl Options {
    /// Sets [`Options::config`].
    pub fn config(mut self, config: Value) -> Self {
        self.config = Some(config);
        self
    }

    /// Sets [`Options::key`].
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets [`Options::every`] from text like `1m` ([`time::parse_duration`]).
    pub fn every(mut self, every: &str) -> Result<Self, Error> {
        self.every = Some(time::parse_duration(every).ok_or_else(|| Error::Every(every.into()))?);
        Ok(self)
    }

    /// Sets [`Options::since`] or [`Options::until`] from RFC 3339 text.
    pub fn window(mut self, since: Option<&str>, until: Option<&str>) -> Result<Self, Error> {
        let parse = |what: &'static str, text: &str| {
            time::parse_rfc3339(text).ok_or_else(|| Error::Time {
                what,
                given: text.to_owned(),
            })
        };
        if let Some(s) = since {
            self.since = Some(parse("--since", s)?);
        }
        if let Some(u) = until {
            self.until = Some(parse("--until", u)?);
        }
        Ok(self)
    }
}

/// Where a log comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input (`-`).
    Stdin,
    /// A file; gzip-compressed ones (rotated logs) are read through.
    File(PathBuf),
}

impl Source {
    /// `-` is standard input, anything else a file.
    pub fn from_arg(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    /// How the report names it.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_owned(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// How far reading has got, for a progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The source being read.
    pub source: String,
    /// Bytes read so far, all sources (compressed bytes for gzip).
    pub bytes: u64,
    /// All sources' sizes, when known (not for standard input).
    pub total_bytes: Option<u64>,
    /// Lines read so far, all sources.
    pub lines: u64,
}

/// Reads every source in order and reports on them. `progress` is called
/// every 16,384 lines and at the end of each source.
pub fn read(
    sources: &[Source],
    options: Options,
    mut progress: Option<&mut dyn FnMut(&Progress)>,
) -> Result<Report, Error> {
    let mut aggregator = Aggregator::new(options)?;
    let total_bytes = sources
        .iter()
        .map(|s| match s {
            Source::Stdin => None,
            Source::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
        })
        .sum::<Option<u64>>();
    let mut done_bytes = 0;
    for source in sources {
        let name = source.name();
        let io_error = |error| Error::Io {
            source_name: name.clone(),
            error,
        };
        let counted = Rc::new(Cell::new(0u64));
        let reader: Box<dyn Read> = match source {
            Source::Stdin => Box::new(Counting::new(io::stdin().lock(), Rc::clone(&counted))),
            Source::File(path) => Box::new(Counting::new(
                std::fs::File::open(path).map_err(io_error)?,
                Rc::clone(&counted),
            )),
        };
        let mut tick = |lines: u64| {
            if let Some(progress) = progress.as_deref_mut() {
                progress(&Progress {
                    source: name.clone(),
                    bytes: done_bytes + counted.get(),
                    total_bytes,
                    lines,
                });
            }
        };
        aggregator
            .read_source(&name, reader, &mut tick)
            .map_err(io_error)?;
        done_bytes += counted.get();
        if let Some(summary) = aggregator.sources.last_mut() {
            summary.bytes = counted.get();
        }
    }
    Ok(aggregator.finish())
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> Counting<R> {
    fn new(inner: R, count: Rc<Cell<u64>>) -> Self {
        Self { inner, count }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The reasons Cohort's debug header names, in decision order.
pub const REASONS: [&str; 7] = [
    "excluded",
    "override",
    "cookie",
    "reevaluated",
    "rollback",
    "assigned",
    "reassigned",
];

/// Reasons whose requests do not count against stickiness: the cohort was
/// forced for that request, or the request was excluded.
fn is_forced(reason: Option<u8>) -> bool {
    matches!(reason, Some(0 | 1))
}

/// Reasons that are a fresh draw by the weights.
fn is_assignment(reason: Option<u8>) -> bool {
    matches!(reason, Some(5 | 6))
}

/// The reason index of a debug header's `reason=` (unknown ones last).
fn reason_index(reason: &str) -> u8 {
    REASONS
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(REASONS.len()) as u8
}

#[derive(Debug, Clone, Default)]
struct StatusTally {
    total: u64,
    classes: [u64; 5],
    codes: BTreeMap<u16, u64>,
}

impl StatusTally {
    fn add(&mut self, status: u16) {
        self.total += 1;
        if let Some(class) = self
            .classes
            .get_mut(usize::from(status / 100).saturating_sub(1))
        {
            *class += 1;
        }
        *self.codes.entry(status).or_insert(0) += 1;
    }

    fn counts(&self) -> StatusCounts {
        let pct = |n: u64| share(n, self.total);
        StatusCounts {
            total: self.total,
            s1xx: self.classes[0],
            s2xx: self.classes[1],
            s3xx: self.classes[2],
            s4xx: self.classes[3],
            s5xx: self.classes[4],
            pct_4xx: pct(self.classes[3]),
            pct_5xx: pct(self.classes[4]),
            codes: self.codes.clone(),
        }
    }
}

/// `n` of `total` in percent (0 of 0 is 0 %).
fn share(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

#[derive(Debug, Clone, Default)]
struct CohortTally {
    requests: u64,
    assigned: u64,
    statuses: StatusTally,
}

/// The cohort values seen, configured ones first.
#[derive(Debug, Default)]
struct Cohorts {
    names: Vec<String>,
    configured: usize,
    index: HashMap<String, usize>,
    other: Option<usize>,
}

impl Cohorts {
    fn index_of(&mut self, value: &str) -> usize {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        if self.names.len() + 1 < MAX_COHORTS {
            self.names.push(value.to_owned());
            self.index.insert(value.to_owned(), self.names.len() - 1);
            return self.names.len() - 1;
        }
        *self.other.get_or_insert_with(|| {
            self.names.push("(other)".to_owned());
            self.names.len() - 1
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    cohort: u8,
    requests: u32,
    start: Option<i64>,
    reason: Option<u8>,
}

#[derive(Debug)]
struct VisitorState {
    seq: u64,
    requests: u64,
    first: u8,
    mask: u64,
    forced_free_mask: u64,
    current: Run,
    past: Vec<Run>,
    runs_dropped: u64,
}

#[derive(Debug, Default)]
struct RouteTally {
    seq: u64,
    per_cohort: Vec<u64>,
    without_cohort: u64,
    status_5xx: u64,
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    requests: Vec<u64>,
    assigned: Vec<u64>,
    without_cohort: u64,
}

/// Epoch-aligned bucket widths for an automatic timeline, in seconds; each
/// divides the next, so buckets merge exactly.
const LADDER: [i64; 14] = [
    1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800,
];

/// Most rows an automatic timeline has.
const AUTO_ROWS: i64 = 30;

/// Most buckets an automatic timeline keeps while reading.
const LIVE_BUCKETS: usize = 4096;

#[derive(Debug)]
struct Timeline {
    width: i64,
    fixed: bool,
    buckets: BTreeMap<i64, Bucket>,
}

impl Timeline {
    fn add(&mut self, at: i64, cohort: Option<usize>, assigned: bool) {
        let bucket = self.buckets.entry(at.div_euclid(self.width)).or_default();
        match cohort {
            Some(c) => {
                grow(&mut bucket.requests, c)[c] += 1;
                if assigned {
                    grow(&mut bucket.assigned, c)[c] += 1;
                }
            }
            None => bucket.without_cohort += 1,
        }
        if !self.fixed && self.buckets.len() > LIVE_BUCKETS {
            let next = LADDER
                .iter()
                .map(|s| s * time::SECOND)
                .find(|w| *w > self.width)
                .unwrap_or(self.width * 2);
            self.regroup(next);
        }
    }

    fn regroup(&mut self, width: i64) {
        let old = std::mem::take(&mut self.buckets);
        for (index, bucket) in old {
            let merged = self
                .buckets
                .entry((index * self.width).div_euclid(width))
                .or_default();
            for (c, n) in bucket.requests.iter().enumerate() {
                grow(&mut merged.requests, c)[c] += n;
            }
            for (c, n) in bucket.assigned.iter().enumerate() {
                grow(&mut merged.assigned, c)[c] += n;
            }
            merged.without_cohort += bucket.without_cohort;
        }
        self.width = width;
    }

    /// For an automatic timeline: the narrowest width of the ladder that
    /// shows the whole span in at most [`AUTO_ROWS`] rows.
    fn settle(&mut self) {
        if self.fixed {
            return;
        }
        let (Some(first), Some(last)) = (
            self.buckets.keys().next().copied(),
            self.buckets.keys().next_back().copied(),
        ) else {
            return;
        };
        let (start, end) = (first * self.width, (last + 1) * self.width);
        let width = LADDER
            .iter()
            .map(|s| s * time::SECOND)
            .filter(|w| *w >= self.width)
            .find(|w| end.div_euclid(*w) - start.div_euclid(*w) < AUTO_ROWS)
            .unwrap_or(self.width.max(LADDER[LADDER.len() - 1] * time::SECOND));
        if width != self.width {
            self.regroup(width);
        }
    }
}

/// `v` long enough to index `i`.
fn grow(v: &mut Vec<u64>, i: usize) -> &mut Vec<u64> {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v
}

/// Feeds lines in, one at a time or a reader at a time, and makes the
/// [`Report`] at the end. [`read`] drives one for files.
#[derive(Debug)]
pub struct Aggregator {
    options: Options,
    config: Option<cohort::Config>,
    wanted: line::Wanted,
    key: Key,
    key_origin: &'static str,
    cohorts: Cohorts,
    per_cohort: Vec<CohortTally>,
    without_cohort: StatusTally,
    lines: LineCounts,
    reasons: BTreeMap<u8, Vec<u64>>,
    routes: HashMap<(String, String), RouteTally>,
    visitors: HashMap<String, VisitorState>,
    keyed: u64,
    unkeyed: u64,
    redacted: u64,
    timeline: Timeline,
    first: Option<i64>,
    last: Option<i64>,
    sources: Vec<SourceSummary>,
    line_total: u64,
}

impl Aggregator {
    /// An empty report under `options`; fails on a configuration Cohort
    /// would refuse.
    pub fn new(options: Options) -> Result<Self, Error> {
        let config = options
            .config
            .as_ref()
            .map(cohort::Config::from_value)
            .transpose()
            .map_err(Error::Config)?;
        let (key, key_origin) = match (&options.key, &config) {
            (Some(key), _) => (key.clone(), "--key"),
            (None, Some(config)) => match config.keys.iter().find_map(|k| match k {
                KeySource::Header(name) => Some(name.clone()),
                _ => None,
            }) {
                Some(name) => (Key::Header(name), "the configuration's first header key"),
                None => (
                    Key::IpUa,
                    "the default: nothing better in the configuration",
                ),
            },
            (None, None) => (Key::IpUa, "the default"),
        };
        let cohort_header = match &config {
            Some(c) => c.header.clone(),
            None => Some("X-Canary".to_owned()),
        };
        let debug = config.as_ref().and_then(|c| c.debug_header.clone());
        let wanted = line::Wanted {
            cohort: cohort_header,
            debug,
            key_header: match &key {
                Key::Header(name) => Some(name.clone()),
                _ => None,
            },
            user_agent: key == Key::IpUa,
            cookie: matches!(key, Key::Cookie(_)),
        };
        let mut cohorts = Cohorts::default();
        if let Some(config) = &config {
            for v in &config.variants {
                cohorts.index_of(&v.name);
            }
            cohorts.configured = config.variants.len();
        }
        let timeline = Timeline {
            width: options.every.unwrap_or(time::SECOND),
            fixed: options.every.is_some(),
            buckets: BTreeMap::new(),
        };
        Ok(Self {
            options,
            config,
            wanted,
            key,
            key_origin,
            cohorts,
            per_cohort: Vec::new(),
            without_cohort: StatusTally::default(),
            lines: LineCounts::default(),
            reasons: BTreeMap::new(),
            routes: HashMap::new(),
            visitors: HashMap::new(),
            keyed: 0,
            unkeyed: 0,
            redacted: 0,
            timeline,
            first: None,
            last: None,
            sources: Vec::new(),
            line_total: 0,
        })
    }

    /// Reads every line of `reader` as source `name` (gzip is detected and
    /// decompressed). `tick` gets the running line count now and then. A
    /// gzip stream that breaks off ends the source, noted in its summary.
    pub fn read_source(
        &mut self,
        name: &str,
        reader: impl Read,
        tick: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        let mut buffered = BufReader::with_capacity(1 << 18, reader);
        let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        self.sources.push(SourceSummary {
            name: name.to_owned(),
            lines: 0,
            bytes: 0,
            gzip,
            cut_short: None,
        });
        let result = if gzip {
            let mut decoded =
                BufReader::with_capacity(1 << 18, flate2::read::MultiGzDecoder::new(buffered));
            match self.read_lines(&mut decoded, tick) {
                Ok(()) => Ok(()),
                Err(e) => {
                    if let Some(s) = self.sources.last_mut() {
                        s.cut_short = Some(format!("gzip: {e}"));
                    }
                    Ok(())
                }
            }
        } else {
            self.read_lines(&mut buffered, tick)
        };
        tick(self.line_total);
        result
    }

    fn read_lines(
        &mut self,
        reader: &mut impl BufRead,
        tick: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let available = match reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !line.is_empty() || too_long {
                    self.line_done(&line, too_long);
                }
                return Ok(());
            }
            let (chunk, consumed, end) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long {
                if line.len() + chunk.len() > MAX_LINE {
                    too_long = true;
                    line.clear();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            reader.consume(consumed);
            if end {
                self.line_done(&line, too_long);
                line.clear();
                too_long = false;
                if self.line_total.is_multiple_of(16_384) {
                    tick(self.line_total);
                }
            }
        }
    }

    fn line_done(&mut self, line: &[u8], too_long: bool) {
        self.line_total += 1;
        if let Some(s) = self.sources.last_mut() {
            s.lines += 1;
        }
        if too_long {
            self.lines.total += 1;
            self.hostile(Hostile::TooLong);
        } else {
            self.feed(line);
        }
    }

    fn hostile(&mut self, kind: Hostile) {
        let counts = &mut self.lines.hostile;
        counts.total += 1;
        *match kind {
            Hostile::TooLong => &mut counts.too_long,
            Hostile::Truncated => &mut counts.truncated,
            Hostile::NotJson => &mut counts.not_json,
            Hostile::NotAnObject => &mut counts.not_an_object,
            Hostile::NotAccessLog => &mut counts.not_access_log,
        } += 1;
        if self.lines.hostile_examples.len() < HOSTILE_EXAMPLES {
            let (source, line) = self
                .sources
                .last()
                .map_or((String::new(), self.lines.total), |s| {
                    (s.name.clone(), s.lines)
                });
            self.lines
                .hostile_examples
                .push(HostileExample { source, line, kind });
        }
    }

    /// Feeds one line (without its newline). Blank lines are counted and
    /// skipped; bad ones counted by kind.
    pub fn feed(&mut self, line: &[u8]) {
        self.lines.total += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            self.lines.blank += 1;
            return;
        }
        match line::parse(line, &self.wanted) {
            Ok(entry) => self.entry(&entry),
            Err(kind) => self.hostile(kind),
        }
    }

    /// Counts one access-log entry.
    pub fn entry(&mut self, entry: &Entry) {
        let start = entry.start.as_deref().and_then(time::parse_rfc3339);
        if self.options.since.is_some() || self.options.until.is_some() {
            let inside = start.is_some_and(|t| {
                self.options.since.is_none_or(|s| t >= s)
                    && self.options.until.is_none_or(|u| t < u)
            });
            if !inside {
                self.lines.outside_window += 1;
                return;
            }
        }
        if let Some(filter) = &self.options.entry_point
            && entry.entry_point.as_deref() != Some(filter.as_str())
        {
            self.lines.other_entry_points += 1;
            return;
        }
        if let Some(filter) = &self.options.router
            && !entry
                .router
                .as_deref()
                .is_some_and(|r| r.contains(filter.as_str()))
        {
            self.lines.other_routers += 1;
            return;
        }
        self.lines.entries += 1;
        match start {
            Some(t) => {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
            }
            None => self.lines.untimed += 1,
        }

        let (debug_cohort, reason) = entry
            .debug
            .as_deref()
            .map_or((None, None), line::debug_parts);
        let reason = reason.map(reason_index);
        let cohort = entry
            .cohort
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .or(debug_cohort)
            .map(|c| self.cohorts.index_of(c));

        // Routes first: they are counted with or without a cohort.
        let route_key = (
            entry.router.clone().unwrap_or_else(|| "-".to_owned()),
            entry.service.clone().unwrap_or_else(|| "-".to_owned()),
        );
        let next_seq = self.routes.len() as u64;
        let route_key = if self.routes.len() >= MAX_ROUTES && !self.routes.contains_key(&route_key)
        {
            ("(other)".to_owned(), "(other)".to_owned())
        } else {
            route_key
        };
        let route = self.routes.entry(route_key).or_insert_with(|| RouteTally {
            seq: next_seq,
            ..RouteTally::default()
        });
        if entry.status >= 500 {
            route.status_5xx += 1;
        }

        let Some(c) = cohort else {
            route.without_cohort += 1;
            self.without_cohort.add(entry.status);
            if let Some(t) = start {
                self.timeline.add(t, None, false);
            }
            return;
        };
        grow(&mut route.per_cohort, c)[c] += 1;
        if self.per_cohort.len() <= c {
            self.per_cohort.resize(c + 1, CohortTally::default());
        }
        let tally = &mut self.per_cohort[c];
        tally.requests += 1;
        tally.statuses.add(entry.status);
        let assigned = is_assignment(reason);
        if assigned {
            tally.assigned += 1;
        }
        if let Some(r) = reason {
            grow(self.reasons.entry(r).or_default(), c)[c] += 1;
        }
        if let Some(t) = start {
            self.timeline.add(t, Some(c), assigned);
        }
        self.visitor(entry, c, reason, start);
    }

    fn visitor(&mut self, entry: &Entry, c: usize, reason: Option<u8>, start: Option<i64>) {
        let key = match &self.key {
            Key::Header(_) => entry.key_header.clone().filter(|k| !k.is_empty()),
            Key::Cookie(name) => match entry.cookie.as_deref() {
                Some("REDACTED") => {
                    self.redacted += 1;
                    None
                }
                Some(header) => line::cookie_value(header, name).map(str::to_owned),
                None => None,
            },
            Key::IpUa => entry
                .client_host
                .as_ref()
                .map(|ip| format!("{ip} {}", entry.user_agent.as_deref().unwrap_or("-"))),
            Key::Ip => entry.client_host.clone(),
        };
        let Some(key) = key else {
            self.unkeyed += 1;
            return;
        };
        self.keyed += 1;
        let cohort = c as u8;
        let bit = 1u64 << c;
        let forced = is_forced(reason);
        let run = Run {
            cohort,
            requests: 1,
            start,
            reason,
        };
        let seq = self.visitors.len() as u64;
        let state = self.visitors.entry(key).or_insert_with(|| VisitorState {
            seq,
            requests: 0,
            first: cohort,
            mask: 0,
            forced_free_mask: 0,
            current: Run { requests: 0, ..run },
            past: Vec::new(),
            runs_dropped: 0,
        });
        state.requests += 1;
        state.mask |= bit;
        if !forced {
            state.forced_free_mask |= bit;
        }
        if state.current.cohort == cohort {
            state.current.requests += 1;
        } else {
            if state.past.len() < MAX_TRAIL {
                state.past.push(state.current);
            } else {
                state.runs_dropped += 1;
            }
            state.current = run;
        }
    }

    /// The report on everything fed so far.
    pub fn finish(mut self) -> Report {
        self.timeline.settle();
        let names = self.cohorts.names.clone();
        let n = names.len();
        let expected: Vec<Option<f64>> = (0..n)
            .map(|i| self.config.as_ref().and_then(|c| expected_share(c, i)))
            .collect();

        // Visitors.
        let mut first_counts = vec![0u64; n];
        let mut matrix = vec![vec![0u64; n]; n];
        let mut changed = 0;
        let mut changed_free = 0;
        let mut changers: Vec<&VisitorState> = Vec::new();
        let mut keys_of: HashMap<u64, &str> = HashMap::new();
        for (key, v) in &self.visitors {
            first_counts[usize::from(v.first)] += 1;
            matrix[usize::from(v.first)][usize::from(v.current.cohort)] += 1;
            if v.mask.count_ones() > 1 {
                changed += 1;
                if v.forced_free_mask.count_ones() > 1 {
                    changed_free += 1;
                }
                changers.push(v);
                keys_of.insert(v.seq, key);
            }
        }
        let reasons_seen = !self.reasons.is_empty();
        changers.sort_by_key(|v| (reasons_seen && v.forced_free_mask.count_ones() <= 1, v.seq));
        let name_of = |c: u8| names.get(usize::from(c)).cloned().unwrap_or_default();
        let reason_name = |r: u8| {
            REASONS
                .get(usize::from(r))
                .copied()
                .unwrap_or("other")
                .to_owned()
        };
        let examples = changers
            .iter()
            .take(self.options.examples)
            .map(|v| Changer {
                key: keys_of
                    .get(&v.seq)
                    .map(|k| (*k).to_owned())
                    .unwrap_or_default(),
                requests: v.requests,
                forced_only: reasons_seen && v.forced_free_mask.count_ones() <= 1,
                trail: v
                    .past
                    .iter()
                    .chain(std::iter::once(&v.current))
                    .map(|r| TrailRun {
                        cohort: name_of(r.cohort),
                        requests: u64::from(r.requests),
                        start: r.start.map(time::format_utc),
                        reason: r.reason.map(reason_name),
                    })
                    .collect(),
                runs_dropped: v.runs_dropped,
            })
            .collect();
        let visitors_total: u64 = first_counts.iter().sum();

        let assigned_total: u64 = self.per_cohort.iter().map(|t| t.assigned).sum();
        let with_cohort: u64 = self.per_cohort.iter().map(|t| t.requests).sum();
        let cohorts = (0..n)
            .map(|i| {
                let tally = self.per_cohort.get(i).cloned().unwrap_or_default();
                let p = expected[i];
                CohortRow {
                    name: names[i].clone(),
                    configured: i < self.cohorts.configured,
                    expected_pct: p.map(|p| p * 100.0),
                    requests: tally.requests,
                    requests_pct: share(tally.requests, with_cohort),
                    visitors: first_counts[i],
                    visitors_pct: share(first_counts[i], visitors_total),
                    visitors_deviation_se: p
                        .and_then(|p| deviation(first_counts[i], visitors_total, p)),
                    assigned: tally.assigned,
                    assigned_pct: share(tally.assigned, assigned_total),
                    assigned_deviation_se: p
                        .and_then(|p| deviation(tally.assigned, assigned_total, p)),
                    statuses: tally.statuses.counts(),
                }
            })
            .collect();

        let per_cohort_map = |counts: &[u64]| -> BTreeMap<String, u64> {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), counts.get(i).copied().unwrap_or(0)))
                .collect()
        };

        let reasons = self
            .reasons
            .iter()
            .map(|(r, counts)| ReasonRow {
                reason: reason_name(*r),
                total: counts.iter().sum(),
                per_cohort: per_cohort_map(counts),
            })
            .collect();

        let service_variant = |service: &str| -> Option<usize> {
            let bare = |s: &str| s.split('@').next().unwrap_or(s).to_owned();
            let service = bare(service);
            self.config
                .as_ref()?
                .variants
                .iter()
                .position(|v| v.service.as_deref().is_some_and(|s| bare(s) == service))
        };
        let mut routes: Vec<(&(String, String), &RouteTally)> = self.routes.iter().collect();
        routes.sort_by_key(|(_, r)| r.seq);
        let routes = routes
            .into_iter()
            .map(|((router, service), tally)| {
                let variant = service_variant(service);
                let cohort_requests: u64 = tally.per_cohort.iter().sum();
                let other_variant = variant.map_or(0, |v| {
                    cohort_requests - tally.per_cohort.get(v).copied().unwrap_or(0)
                });
                RouteRow {
                    router: router.clone(),
                    service: service.clone(),
                    variant: variant.map(|v| names[v].clone()),
                    requests: cohort_requests + tally.without_cohort,
                    per_cohort: per_cohort_map(&tally.per_cohort),
                    without_cohort: tally.without_cohort,
                    other_variant,
                    status_5xx: tally.status_5xx,
                    mixed: tally.per_cohort.iter().filter(|&&n| n > 0).count() > 1,
                }
            })
            .collect();

        let buckets = self
            .timeline
            .buckets
            .iter()
            .map(|(index, b)| BucketRow {
                start: time::format_utc(index * self.timeline.width),
                requests: b.requests.iter().sum::<u64>() + b.without_cohort,
                per_cohort: per_cohort_map(&b.requests),
                assigned: per_cohort_map(&b.assigned),
                without_cohort: b.without_cohort,
            })
            .collect();

        let cohort_field = self.wanted.cohort.as_ref().map(|h| format!("request_{h}"));
        let reason_field = self
            .wanted
            .debug
            .as_ref()
            .map(|h| format!("downstream_{h}"));
        let mut hints = Vec::new();
        if self.lines.entries > 0 && with_cohort == 0 {
            hints.push(match (&self.wanted.cohort, &self.wanted.debug) {
                (Some(h), _) => format!(
                    "no entry has {h}: keep the header in the access log \
                     (accessLog.fields.headers.names.{h}: keep, recipes/static/access-log.yml)"
                ),
                (None, Some(d)) => format!(
                    "no entry has {d}: keep the debug header in the access log \
                     (accessLog.fields.headers.names.{d}: keep)"
                ),
                (None, None) => "the configuration sets neither `header` nor `debugHeader`: \
                                 nothing in the access log names the cohort"
                    .to_owned(),
            });
        }
        if let Some(d) = &self.wanted.debug
            && with_cohort > 0
            && !reasons_seen
        {
            hints.push(format!(
                "no entry has the reason ({d}): keep it in the access log \
                 (accessLog.fields.headers.names.{d}: keep) to see decisions and new assignments"
            ));
        }
        if self.redacted > 0 && self.keyed == 0 {
            hints.push(
                "the Cookie header is REDACTED in this log, so --key cookie:… finds no visitor: \
                 use --key header:<a logged user id> or ip-ua"
                    .to_owned(),
            );
        }
        if with_cohort > 0 && self.keyed == 0 && self.redacted == 0 {
            hints.push(format!(
                "no entry carries the visitor key ({}): keep it in the access log or choose \
                 another --key",
                self.key
            ));
        }

        Report {
            sources: self.sources,
            lines: self.lines,
            fields: Fields {
                cohort: cohort_field,
                reason: reason_field,
                key: self.key.to_string(),
                key_from: self.key_origin.to_owned(),
            },
            config: self.options.config,
            first: self.first.map(time::format_utc),
            last: self.last.map(time::format_utc),
            with_cohort,
            cohorts,
            without_cohort: self.without_cohort.counts(),
            visitors: VisitorReport {
                total: visitors_total,
                keyed_requests: self.keyed,
                unkeyed_requests: self.unkeyed,
                redacted_requests: self.redacted,
                changed,
                changed_outside_forced: reasons_seen.then_some(changed_free),
                first_to_last: Movement {
                    cohorts: names.clone(),
                    counts: matrix,
                },
                examples,
            },
            assigned: assigned_total,
            reasons,
            routes,
            timeline: TimelineReport {
                every: time::format_duration(self.timeline.width),
                every_ns: self.timeline.width,
                automatic: !self.timeline.fixed,
                buckets,
            },
            hints,
        }
    }
}

/// The share variant `i` should get under `config`: an active variant's
/// weight over the active variants' total; drained and disabled ones take
/// no new visitors.
fn expected_share(config: &cohort::Config, i: usize) -> Option<f64> {
    let v = config.variants.get(i)?;
    let active: u64 = config
        .variants
        .iter()
        .filter(|v| v.state == State::Active)
        .map(|v| u64::from(v.weight))
        .sum();
    Some(if active == 0 {
        if i == config.default { 1.0 } else { 0.0 }
    } else if v.state == State::Active {
        f64::from(v.weight) / active as f64
    } else {
        0.0
    })
}

/// `(observed − p) / SE` for `count` of `n` with SE = `sqrt(p(1−p)/n)`;
/// `None` when there is nothing to compare or the difference is
/// impossible (p is 0 or 1 and the share is not).
fn deviation(count: u64, n: u64, p: f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let observed = count as f64 / n as f64;
    let se = (p * (1.0 - p) / n as f64).sqrt();
    if se > 0.0 {
        Some((observed - p) / se)
    } else if (observed - p).abs() < f64::EPSILON {
        Some(0.0)
    } else {
        None
    }
}

/// Everything a report found. Serialised as is by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The sources, in the order read.
    pub sources: Vec<SourceSummary>,
    /// What the lines were.
    pub lines: LineCounts,
    /// Which fields were read.
    pub fields: Fields,
    /// The configuration given, as given.
    pub config: Option<Value>,
    /// The earliest entry's start (UTC).
    pub first: Option<String>,
    /// The latest entry's start (UTC).
    pub last: Option<String>,
    /// Entries with a cohort.
    pub with_cohort: u64,
    /// One row per cohort: configured variants first, then any other value
    /// seen.
    pub cohorts: Vec<CohortRow>,
    /// Entries without a cohort (other routers, or answered before Cohort
    /// ran, e.g. Traefik's 404 for an unknown host), by status.
    pub without_cohort: StatusCounts,
    /// Visitors and who changed cohort.
    pub visitors: VisitorReport,
    /// Entries whose reason was `assigned` or `reassigned`.
    pub assigned: u64,
    /// Decisions by reason, from the debug header (empty without it).
    pub reasons: Vec<ReasonRow>,
    /// Per router and service, in order of first appearance.
    pub routes: Vec<RouteRow>,
    /// The split over time.
    pub timeline: TimelineReport,
    /// What to change in the access log to see more.
    pub hints: Vec<String>,
}

/// One source read.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    /// The file, or `-`.
    pub name: String,
    /// Lines in it.
    pub lines: u64,
    /// Bytes read (compressed, for gzip).
    pub bytes: u64,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// Why reading it stopped early (a broken gzip stream), if it did.
    pub cut_short: Option<String>,
}

/// What the lines were.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LineCounts {
    /// Every line.
    pub total: u64,
    /// Access-log entries counted.
    pub entries: u64,
    /// Empty or whitespace-only lines.
    pub blank: u64,
    /// Lines skipped, by kind.
    pub hostile: HostileCounts,
    /// The first few of them.
    pub hostile_examples: Vec<HostileExample>,
    /// Entries skipped by `--entry-point`.
    pub other_entry_points: u64,
    /// Entries skipped by `--router`.
    pub other_routers: u64,
    /// Entries skipped by `--since`/`--until` (or without a time then).
    pub outside_window: u64,
    /// Entries counted but without a readable start time (not in the
    /// timeline).
    pub untimed: u64,
}

/// Lines skipped, by [`Hostile`] kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostileCounts {
    /// All of them.
    pub total: u64,
    /// Over [`MAX_LINE`].
    pub too_long: u64,
    /// Cut off.
    pub truncated: u64,
    /// Not JSON.
    pub not_json: u64,
    /// JSON but not an object.
    pub not_an_object: u64,
    /// An object but no access-log entry.
    pub not_access_log: u64,
}

/// A skipped line.
#[derive(Debug, Clone, Serialize)]
pub struct HostileExample {
    /// Its source.
    pub source: String,
    /// Its line number in the source (from 1).
    pub line: u64,
    /// Why.
    pub kind: Hostile,
}

/// Which fields the report read.
#[derive(Debug, Clone, Serialize)]
pub struct Fields {
    /// The cohort (`request_X-Canary`), `None` with `header: ""`.
    pub cohort: Option<String>,
    /// The reason (`downstream_X-Cohort-Debug`), when `debugHeader` is set.
    pub reason: Option<String>,
    /// The visitor key (`header:X-User-Id`).
    pub key: String,
    /// Why that key.
    pub key_from: String,
}

/// Status counts.
#[derive(Debug, Clone, Serialize)]
pub struct StatusCounts {
    /// Entries.
    pub total: u64,
    /// 1xx.
    #[serde(rename = "1xx")]
    pub s1xx: u64,
    /// 2xx.
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    /// 3xx.
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    /// 4xx.
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    /// 5xx.
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    /// 4xx in percent of `total`.
    pub pct_4xx: f64,
    /// 5xx in percent of `total`.
    pub pct_5xx: f64,
    /// Every status code seen, with its count.
    pub codes: BTreeMap<u16, u64>,
}

/// One cohort.
#[derive(Debug, Clone, Serialize)]
pub struct CohortRow {
    /// The cohort value.
    pub name: String,
    /// Whether the configuration has this variant.
    pub configured: bool,
    /// The configured share of new visitors, in percent.
    pub expected_pct: Option<f64>,
    /// Requests in it.
    pub requests: u64,
    /// Their share of the requests with a cohort.
    pub requests_pct: f64,
    /// Visitors whose first request was in it.
    pub visitors: u64,
    /// Their share of the visitors.
    pub visitors_pct: f64,
    /// The visitors' share against `expected_pct` in binomial standard
    /// errors, `sqrt(p(1−p)/n)`.
    pub visitors_deviation_se: Option<f64>,
    /// Fresh assignments to it (reason `assigned` or `reassigned`).
    pub assigned: u64,
    /// Their share of all assignments.
    pub assigned_pct: f64,
    /// The assignments' share against `expected_pct`, in standard errors.
    pub assigned_deviation_se: Option<f64>,
    /// Its statuses.
    pub statuses: StatusCounts,
}

/// Visitors, keyed by [`Fields::key`].
#[derive(Debug, Clone, Serialize)]
pub struct VisitorReport {
    /// Visitors seen (with a cohort).
    pub total: u64,
    /// Requests with a key.
    pub keyed_requests: u64,
    /// Requests with a cohort but no key.
    pub unkeyed_requests: u64,
    /// Of those, requests whose Cookie was `REDACTED` (`--key cookie:`).
    pub redacted_requests: u64,
    /// Visitors seen in more than one cohort.
    pub changed: u64,
    /// Of those, visitors in more than one cohort on requests that were
    /// neither forced (`override`) nor excluded; `None` without reasons.
    pub changed_outside_forced: Option<u64>,
    /// First cohort → last cohort of every visitor.
    pub first_to_last: Movement,
    /// Some of those who changed: unexplained changes first, then in order
    /// of first appearance.
    pub examples: Vec<Changer>,
}

/// A from → to count matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Movement {
    /// Row and column names.
    pub cohorts: Vec<String>,
    /// `counts[from][to]`.
    pub counts: Vec<Vec<u64>>,
}

/// A visitor who changed cohort.
#[derive(Debug, Clone, Serialize)]
pub struct Changer {
    /// Their key.
    pub key: String,
    /// Their requests.
    pub requests: u64,
    /// Whether every change was on a forced or excluded request.
    pub forced_only: bool,
    /// Their cohorts in log order, one run per stretch.
    pub trail: Vec<TrailRun>,
    /// Runs left out of `trail` (it keeps [`MAX_TRAIL`] and the last).
    pub runs_dropped: u64,
}

/// A stretch of requests in one cohort.
#[derive(Debug, Clone, Serialize)]
pub struct TrailRun {
    /// The cohort.
    pub cohort: String,
    /// Requests in the stretch.
    pub requests: u64,
    /// When its first request started.
    pub start: Option<String>,
    /// The reason of its first request.
    pub reason: Option<String>,
}

/// Decisions of one reason.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonRow {
    /// `assigned`, `cookie`, ….
    pub reason: String,
    /// Entries.
    pub total: u64,
    /// Per cohort.
    pub per_cohort: BTreeMap<String, u64>,
}

/// One (router, service) pair.
#[derive(Debug, Clone, Serialize)]
pub struct RouteRow {
    /// `RouterName` (`-` when absent).
    pub router: String,
    /// `ServiceName` (`-` when absent).
    pub service: String,
    /// The variant whose `service` this is, by the configuration.
    pub variant: Option<String>,
    /// Entries.
    pub requests: u64,
    /// Entries per cohort.
    pub per_cohort: BTreeMap<String, u64>,
    /// Entries without a cohort.
    pub without_cohort: u64,
    /// Entries whose cohort is not `variant`'s (0 without `variant`).
    pub other_variant: u64,
    /// Entries answered 5xx.
    pub status_5xx: u64,
    /// Whether it served more than one cohort (flat routers do, on a new
    /// visitor's first request).
    pub mixed: bool,
}

/// The split over time.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineReport {
    /// Bucket width, `1m`.
    pub every: String,
    /// In nanoseconds.
    pub every_ns: i64,
    /// Whether the width was chosen automatically.
    pub automatic: bool,
    /// Non-empty buckets, in time order.
    pub buckets: Vec<BucketRow>,
}

/// One bucket of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct BucketRow {
    /// Its start (UTC).
    pub start: String,
    /// Entries that started in it.
    pub requests: u64,
    /// Per cohort.
    pub per_cohort: BTreeMap<String, u64>,
    /// New assignments per cohort.
    pub assigned: BTreeMap<String, u64>,
    /// Entries without a cohort.
    pub without_cohort: u64,
}

impl Report {
    /// The row of cohort `name`.
    pub fn cohort(&self, name: &str) -> Option<&CohortRow> {
        self.cohorts.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests;
