//! The report for a terminal.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::{Hostile, Report, StatusCounts};

/// Cells of a bar.
const BAR_WIDTH: usize = 40;

/// Fill of each cohort in a stacked bar, in cohort order.
const FILLS: [char; 8] = ['█', '▒', '░', '▓', '#', '=', '+', '*'];

/// Most timeline rows printed.
const MAX_ROWS: usize = 500;

fn fill(i: usize) -> char {
    FILLS[i % FILLS.len()]
}

/// A bar of `fraction` × [`BAR_WIDTH`] cells, in eighths.
fn bar(fraction: f64) -> String {
    const PARTIAL: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (fraction.clamp(0.0, 1.0) * (BAR_WIDTH * 8) as f64).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        out.push(PARTIAL[eighths % 8]);
    }
    let cells = out.chars().count();
    out.extend(std::iter::repeat_n(' ', BAR_WIDTH.saturating_sub(cells)));
    out
}

/// [`BAR_WIDTH`] cells shared between `counts` by largest remainder, each
/// cohort in its [`fill`].
fn stacked(counts: &[u64]) -> String {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return " ".repeat(BAR_WIDTH);
    }
    let exact: Vec<f64> = counts
        .iter()
        .map(|&n| n as f64 * BAR_WIDTH as f64 / total as f64)
        .collect();
    let mut cells: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = BAR_WIDTH - cells.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if counts[i] > 0 {
            cells[i] += 1;
            left -= 1;
        }
    }
    cells
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| std::iter::repeat_n(fill(i), n))
        .collect()
}

fn pct(p: f64) -> String {
    format!("{p:.2}%")
}

fn opt_pct(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_owned(), pct)
}

fn se(d: Option<f64>, expected: Option<f64>, n: u64) -> String {
    match (d, expected) {
        (_, None) => "-".to_owned(),
        _ if n == 0 => "-".to_owned(),
        (Some(d), _) => format!("{d:+.2} SE"),
        (None, _) => "impossible".to_owned(),
    }
}

fn codes(codes: &BTreeMap<u16, u64>) -> String {
    codes
        .iter()
        .map(|(code, n)| format!("{code}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Report {
    /// The report for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        if self.with_cohort > 0 {
            self.render_split(&mut out);
            self.render_statuses(&mut out);
            self.render_routes(&mut out);
            self.render_visitors(&mut out);
            self.render_timeline(&mut out);
        }
        if !self.hints.is_empty() {
            out.push('\n');
            for hint in &self.hints {
                let _ = writeln!(out, "hint: {hint}");
            }
        }
        let mut trimmed = String::with_capacity(out.len());
        for line in out.lines() {
            trimmed.push_str(line.trim_end());
            trimmed.push('\n');
        }
        trimmed
    }

    fn names(&self) -> Vec<&str> {
        self.cohorts.iter().map(|c| c.name.as_str()).collect()
    }

    fn width(&self) -> usize {
        self.cohorts
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(8)
    }

    fn render_header(&self, out: &mut String) {
        let sources: Vec<String> = self
            .sources
            .iter()
            .map(|s| {
                let mut name = s.name.clone();
                if s.gzip {
                    name.push_str(" (gzip)");
                }
                if let Some(why) = &s.cut_short {
                    let _ = write!(name, " (cut short: {why})");
                }
                name
            })
            .collect();
        let _ = write!(
            out,
            "access log: {} from {}",
            plural(self.lines.total, "line", "lines"),
            sources.join(", ")
        );
        match (&self.first, &self.last) {
            (Some(first), Some(last)) => {
                let _ = writeln!(out, ", {first} to {last}");
            }
            _ => out.push('\n'),
        }
        let mut read = vec![plural(self.lines.entries, "entry", "entries")];
        let h = &self.lines.hostile;
        if h.total > 0 {
            let kinds: Vec<String> = Hostile::ALL
                .iter()
                .zip([
                    h.too_long,
                    h.truncated,
                    h.not_json,
                    h.not_an_object,
                    h.not_access_log,
                ])
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect();
            let at: Vec<String> = self
                .lines
                .hostile_examples
                .iter()
                .map(|e| format!("{}:{}", e.source, e.line))
                .collect();
            read.push(format!(
                "{} skipped ({}; first at {})",
                plural(h.total, "hostile line", "hostile lines"),
                kinds.join(", "),
                at.join(", ")
            ));
        }
        if self.lines.blank > 0 {
            read.push(format!("{} blank", self.lines.blank));
        }
        if self.lines.other_entry_points > 0 {
            read.push(format!(
                "{} of other entry points",
                self.lines.other_entry_points
            ));
        }
        if self.lines.other_routers > 0 {
            read.push(format!("{} of other routers", self.lines.other_routers));
        }
        if self.lines.outside_window > 0 {
            read.push(format!(
                "{} outside --since/--until",
                self.lines.outside_window
            ));
        }
        if self.lines.untimed > 0 {
            read.push(format!("{} without a start time", self.lines.untimed));
        }
        let _ = writeln!(out, "  read: {}", read.join("; "));
        let _ = writeln!(
            out,
            "  cohort from {}{}, visitors by {} ({})",
            self.fields.cohort.as_deref().unwrap_or("the debug header"),
            self.fields
                .reason
                .as_ref()
                .map(|r| format!(", reason from {r}"))
                .unwrap_or_default(),
            self.fields.key,
            self.fields.key_from
        );
        if self.without_cohort.total > 0 {
            let _ = writeln!(
                out,
                "  {} without a cohort (other routers, or answered before Cohort ran): {}",
                plural(self.without_cohort.total, "entry", "entries"),
                codes(&self.without_cohort.codes)
            );
        }
    }

    fn render_split(&self, out: &mut String) {
        let w = self.width();
        let keyed = self.visitors.total > 0;
        let _ = writeln!(
            out,
            "\nsplit vs the configured weights{}:",
            if keyed {
                " (visitors: the cohort of each visitor's first request)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  {:<w$}  {:>9}  {:>8}  {:>9}  {:>8}  {:>8}  {:>10}",
            "cohort", "requests", "share", "visitors", "observed", "expected", "deviation"
        );
        for c in &self.cohorts {
            let _ = writeln!(
                out,
                "  {:<w$}  {:>9}  {:>8}  {:>9}  {:>8}  {:>8}  {:>10}",
                c.name,
                c.requests,
                pct(c.requests_pct),
                if keyed {
                    c.visitors.to_string()
                } else {
                    "-".into()
                },
                if keyed {
                    pct(c.visitors_pct)
                } else {
                    "-".into()
                },
                opt_pct(c.expected_pct),
                se(c.visitors_deviation_se, c.expected_pct, self.visitors.total)
            );
        }
        out.push('\n');
        for c in &self.cohorts {
            let share = if keyed {
                c.visitors_pct
            } else {
                c.requests_pct
            };
            let _ = writeln!(
                out,
                "  {:<w$}  {} {:>7}",
                c.name,
                bar(share / 100.0),
                pct(share)
            );
        }
        if self.assigned > 0 {
            let _ = writeln!(
                out,
                "\nnew assignments (reason assigned or reassigned: the weights' own draws):"
            );
            let _ = writeln!(
                out,
                "  {:<w$}  {:>9}  {:>8}  {:>8}  {:>10}",
                "cohort", "assigned", "observed", "expected", "deviation"
            );
            for c in &self.cohorts {
                let _ = writeln!(
                    out,
                    "  {:<w$}  {:>9}  {:>8}  {:>8}  {:>10}",
                    c.name,
                    c.assigned,
                    pct(c.assigned_pct),
                    opt_pct(c.expected_pct),
                    se(c.assigned_deviation_se, c.expected_pct, self.assigned)
                );
            }
        }
        if !self.reasons.is_empty() {
            let _ = writeln!(out, "\ndecisions (the debug header's reason) per cohort:");
            let _ = write!(out, "  {:<12}", "reason");
            for name in self.names() {
                let _ = write!(out, "  {name:>w$}");
            }
            out.push('\n');
            for r in &self.reasons {
                let _ = write!(out, "  {:<12}", r.reason);
                for name in self.names() {
                    let _ = write!(
                        out,
                        "  {:>w$}",
                        r.per_cohort.get(name).copied().unwrap_or(0)
                    );
                }
                out.push('\n');
            }
        }
    }

    fn render_statuses(&self, out: &mut String) {
        let w = self.width();
        let _ = writeln!(out, "\nstatuses per cohort:");
        let _ = writeln!(
            out,
            "  {:<w$}  {:>9}  {:>7}  {:>6}  {:>6}  {:>6}  {:>8}  {:>8}  codes",
            "cohort", "requests", "2xx", "3xx", "4xx", "5xx", "4xx", "5xx"
        );
        let row = |out: &mut String, name: &str, s: &StatusCounts| {
            let _ = writeln!(
                out,
                "  {:<w$}  {:>9}  {:>7}  {:>6}  {:>6}  {:>6}  {:>8}  {:>8}  {}",
                name,
                s.total,
                s.s2xx,
                s.s3xx,
                s.s4xx,
                s.s5xx,
                pct(s.pct_4xx),
                pct(s.pct_5xx),
                codes(&s.codes)
            );
        };
        for c in &self.cohorts {
            row(out, &c.name, &c.statuses);
        }
        if self.without_cohort.total > 0 {
            row(out, "(none)", &self.without_cohort);
        }
    }

    fn render_routes(&self, out: &mut String) {
        let w = self.width();
        let rw = self
            .routes
            .iter()
            .map(|r| r.router.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let sw = self
            .routes
            .iter()
            .map(|r| r.service.chars().count())
            .max()
            .unwrap_or(0)
            .max(7);
        let _ = writeln!(
            out,
            "\nrouters and services (which cohort each one served):"
        );
        let _ = write!(
            out,
            "  {:<rw$}  {:<sw$}  {:>9}",
            "router", "service", "requests"
        );
        for name in self.names() {
            let _ = write!(out, "  {name:>w$}");
        }
        let _ = writeln!(out, "  {:>6}  {:>6}  note", "(none)", "5xx");
        for r in &self.routes {
            let _ = write!(
                out,
                "  {:<rw$}  {:<sw$}  {:>9}",
                r.router, r.service, r.requests
            );
            for name in self.names() {
                let _ = write!(
                    out,
                    "  {:>w$}",
                    r.per_cohort.get(name).copied().unwrap_or(0)
                );
            }
            let mut notes = Vec::new();
            if let Some(v) = &r.variant {
                if r.other_variant > 0 {
                    notes.push(format!(
                        "{v}'s service: {} of other cohorts",
                        r.other_variant
                    ));
                } else {
                    notes.push(format!("{v}'s service"));
                }
            }
            if r.mixed {
                notes.push("mixed".to_owned());
            }
            let _ = writeln!(
                out,
                "  {:>6}  {:>6}  {}",
                r.without_cohort,
                r.status_5xx,
                notes.join(", ")
            );
        }
        if self.routes.iter().any(|r| r.mixed) {
            let _ = writeln!(
                out,
                "  (mixed: served more than one cohort. Flat routers do: they are chosen before \
                 Cohort runs, so a new visitor's first request goes to the default version)"
            );
        }
    }

    fn render_visitors(&self, out: &mut String) {
        let v = &self.visitors;
        if v.total == 0 {
            return;
        }
        let _ = write!(
            out,
            "\nstickiness, visitors by {}: {} of {} changed cohort",
            self.fields.key,
            v.changed,
            plural(v.total, "visitor", "visitors")
        );
        match v.changed_outside_forced {
            Some(n) if v.changed > 0 => {
                let _ = writeln!(
                    out,
                    " ({n} outside forced or excluded requests, {} only on them)",
                    v.changed - n
                );
            }
            _ => out.push('\n'),
        }
        let names = &v.first_to_last.cohorts;
        let w = self.width().max(9);
        let _ = writeln!(out, "  first cohort -> last cohort:");
        let _ = write!(out, "    {:<w$}", "from \\ to");
        for name in names {
            let _ = write!(out, "  {name:>9}");
        }
        out.push('\n');
        for (name, row) in names.iter().zip(&v.first_to_last.counts) {
            let _ = write!(out, "    {name:<w$}");
            for n in row {
                let _ = write!(out, "  {n:>9}");
            }
            out.push('\n');
        }
        if !v.examples.is_empty() {
            let _ = writeln!(out, "  examples (log order):");
            let kw = v
                .examples
                .iter()
                .map(|e| e.key.chars().count())
                .max()
                .unwrap_or(0);
            for e in &v.examples {
                let trail: Vec<String> = e
                    .trail
                    .iter()
                    .map(|r| {
                        let mut text = format!("{} ×{}", r.cohort, r.requests);
                        let detail: Vec<&str> = [r.reason.as_deref(), r.start.as_deref()]
                            .into_iter()
                            .flatten()
                            .collect();
                        if !detail.is_empty() {
                            let _ = write!(text, " [{}]", detail.join(", "));
                        }
                        text
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "    {:<kw$}  {}{}{}",
                    e.key,
                    trail.join(" → "),
                    if e.runs_dropped > 0 {
                        format!(" (and {} more changes)", e.runs_dropped)
                    } else {
                        String::new()
                    },
                    if e.forced_only { "  (forced only)" } else { "" }
                );
            }
        }
        if v.unkeyed_requests > 0 {
            let _ = writeln!(
                out,
                "  {} with a cohort had no key{}",
                plural(v.unkeyed_requests, "request", "requests"),
                if v.redacted_requests > 0 {
                    format!(" ({} with the Cookie header REDACTED)", v.redacted_requests)
                } else {
                    String::new()
                }
            );
        }
    }

    fn render_timeline(&self, out: &mut String) {
        let t = &self.timeline;
        if t.buckets.is_empty() {
            return;
        }
        let legend: Vec<String> = self
            .names()
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{} {n}", fill(i)))
            .collect();
        let _ = writeln!(
            out,
            "\nsplit over time (requests per {}{}, by start, UTC; {}):",
            t.every,
            if t.automatic {
                ", chosen to fit; set --every"
            } else {
                ""
            },
            legend.join("  ")
        );
        let names = self.names();
        let with_assigned = self.assigned > 0;
        for b in t.buckets.iter().take(MAX_ROWS) {
            let counts: Vec<u64> = names
                .iter()
                .map(|n| b.per_cohort.get(*n).copied().unwrap_or(0))
                .collect();
            let total: u64 = counts.iter().sum();
            let shares: Vec<String> = names
                .iter()
                .zip(&counts)
                .map(|(n, &c)| {
                    format!(
                        "{n} {:>6}",
                        format!("{:.1}%", 100.0 * c as f64 / total.max(1) as f64)
                    )
                })
                .collect();
            let mut line = format!(
                "  {}  {:>7}  {}  {}",
                b.start,
                b.requests,
                stacked(&counts),
                shares.join("  ")
            );
            if with_assigned {
                let assigned: u64 = b.assigned.values().sum();
                if assigned > 0 {
                    let parts: Vec<String> = names
                        .iter()
                        .skip(1)
                        .map(|n| {
                            let a = b.assigned.get(*n).copied().unwrap_or(0);
                            format!("{n} {:.1}%", 100.0 * a as f64 / assigned as f64)
                        })
                        .collect();
                    let _ = write!(line, "   new: {} ({assigned})", parts.join(" "));
                }
            }
            if b.without_cohort > 0 {
                let _ = write!(line, "   (none) {}", b.without_cohort);
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if t.buckets.len() > MAX_ROWS {
            let _ = writeln!(
                out,
                "  … {} more buckets: choose a wider --every",
                t.buckets.len() - MAX_ROWS
            );
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_bars_fill_every_cell() {
        assert_eq!(stacked(&[9, 1]).chars().filter(|&c| c == '█').count(), 36);
        assert_eq!(stacked(&[9, 1]).chars().filter(|&c| c == '▒').count(), 4);
        for counts in [[1u64, 1, 1], [0, 5, 0], [1000, 1, 0], [3, 3, 4]] {
            assert_eq!(stacked(&counts).chars().count(), BAR_WIDTH, "{counts:?}");
        }
        // A cohort with any request gets no cell only when it rounds to none.
        assert!(!stacked(&[0, 5, 0]).contains('█'));
        assert_eq!(stacked(&[]).chars().count(), BAR_WIDTH);
    }
}
