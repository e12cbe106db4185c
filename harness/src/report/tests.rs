//! The parser and the aggregation on fixed inputs.

use std::io::Write as _;

use serde_json::json;

use super::*;

/// One access-log line in Traefik 3.7's shape (keys sorted, as it writes).
#[derive(Clone)]
struct L {
    status: u16,
    cohort: Option<&'static str>,
    user: Option<&'static str>,
    reason: Option<&'static str>,
    router: &'static str,
    service: &'static str,
    at: &'static str,
}

impl L {
    fn new(cohort: &'static str, user: &'static str) -> Self {
        Self {
            status: 200,
            cohort: Some(cohort),
            user: Some(user),
            reason: None,
            router: "my-app@file -> my-app-v1@file",
            service: "my-app-v1-prod@file",
            at: "2026-12-01T10:00:00.000000001Z",
        }
    }
    fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
    fn reason(mut self, r: &'static str) -> Self {
        self.reason = Some(r);
        self
    }
    fn at(mut self, at: &'static str) -> Self {
        self.at = at;
        self
    }
    fn served(mut self, router: &'static str, service: &'static str) -> Self {
        self.router = router;
        self.service = service;
        self
    }
    fn text(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("ClientHost".into(), json!("10.0.0.1"));
        map.insert("DownstreamStatus".into(), json!(self.status));
        map.insert("RequestPath".into(), json!("/"));
        map.insert("RouterName".into(), json!(self.router));
        map.insert("ServiceName".into(), json!(self.service));
        map.insert("StartUTC".into(), json!(self.at));
        map.insert("request_Cookie".into(), json!("REDACTED"));
        map.insert("request_User-Agent".into(), json!("ua"));
        if let Some(c) = self.cohort {
            map.insert("request_X-Canary".into(), json!(c));
            if let Some(r) = self.reason {
                map.insert(
                    "downstream_X-Cohort-Debug".into(),
                    json!(format!("{c}; reason={r}")),
                );
            }
        }
        if let Some(u) = self.user {
            map.insert("request_X-User-Id".into(), json!(u));
        }
        map.insert("time".into(), json!("2026-12-01T10:00:00Z"));
        Value::Object(map).to_string()
    }
}

fn config() -> Value {
    json!({
        "variants": [{"name": "v1"}, {"name": "v2", "weight": "10", "service": "my-app-v2-prod"}],
        "keys": ["header:X-User-Id"],
        "debugHeader": "X-Cohort-Debug",
        "weightedSticky": {"cookie": "flagger-traefik-sticky"},
    })
}

fn report_of(lines: &[String], options: Options) -> Report {
    let mut a = Aggregator::new(options).expect("options");
    let text = lines.join("\n");
    a.read_source("access.log", text.as_bytes(), &mut |_| {})
        .expect("read");
    a.finish()
}

#[test]
fn split_statuses_changers_and_routes_on_a_fixed_log() {
    let v2 = ("my-app@file -> my-app-v2@file", "my-app-v2-prod@file");
    let lines = vec![
        L::new("v1", "alice").reason("assigned").text(),
        L::new("v1", "alice").reason("cookie").text(),
        L::new("v2", "bob")
            .reason("assigned")
            .served(v2.0, v2.1)
            .text(),
        L::new("v2", "bob")
            .reason("cookie")
            .served(v2.0, v2.1)
            .status(503)
            .text(),
        // carol is forced to v2 for one request: a change, but a forced one.
        L::new("v1", "carol").reason("assigned").text(),
        L::new("v2", "carol")
            .reason("override")
            .served(v2.0, v2.1)
            .text(),
        L::new("v1", "carol").reason("cookie").status(404).text(),
        // dave moves for good (a ramp under reevaluate).
        L::new("v1", "dave").reason("assigned").text(),
        L::new("v2", "dave")
            .reason("reevaluated")
            .served(v2.0, v2.1)
            .text(),
        // No key: counted, but no visitor.
        L {
            user: None,
            ..L::new("v1", "-")
        }
        .reason("assigned")
        .text(),
        // No cohort: Traefik's own 404 for an unknown host.
        L {
            cohort: None,
            user: None,
            ..L::new("v1", "-")
        }
        .served("", "")
        .status(404)
        .text(),
    ];
    let report = report_of(&lines, Options::default().config(config()));
    assert_eq!(report.lines.entries, 11);
    assert_eq!(report.lines.hostile.total, 0);
    assert_eq!(report.with_cohort, 10);
    assert_eq!(report.fields.cohort.as_deref(), Some("request_X-Canary"));
    assert_eq!(
        report.fields.reason.as_deref(),
        Some("downstream_X-Cohort-Debug")
    );
    assert_eq!(report.fields.key, "header:X-User-Id");

    let v1 = report.cohort("v1").expect("v1");
    let v2r = report.cohort("v2").expect("v2");
    assert_eq!((v1.requests, v2r.requests), (6, 4));
    assert_eq!((v1.visitors, v2r.visitors), (3, 1));
    assert_eq!((v1.assigned, v2r.assigned), (4, 1));
    assert_eq!(v1.expected_pct, Some(90.0));
    assert_eq!(v2r.expected_pct, Some(10.0));
    // 1 of 4 visitors in v2 where 10 % were expected: SE = sqrt(.09/4) = .15.
    let d = v2r.visitors_deviation_se.expect("a deviation");
    assert!((d - 1.0).abs() < 1e-9, "{d}");
    assert_eq!(v1.statuses.codes, BTreeMap::from([(200, 5), (404, 1)]));
    assert_eq!((v2r.statuses.s5xx, v2r.statuses.s2xx), (1, 3));
    assert!((v2r.statuses.pct_5xx - 25.0).abs() < 1e-9);
    assert_eq!(report.without_cohort.codes, BTreeMap::from([(404, 1)]));

    let v = &report.visitors;
    assert_eq!((v.total, v.keyed_requests, v.unkeyed_requests), (4, 9, 1));
    assert_eq!(v.changed, 2);
    assert_eq!(v.changed_outside_forced, Some(1));
    assert_eq!(v.first_to_last.counts, vec![vec![2, 1], vec![0, 1]]);
    // The unexplained change first.
    let keys: Vec<&str> = v.examples.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["dave", "carol"]);
    assert!(v.examples[1].forced_only);
    let trail: Vec<(&str, u64, Option<&str>)> = v.examples[1]
        .trail
        .iter()
        .map(|r| (r.cohort.as_str(), r.requests, r.reason.as_deref()))
        .collect();
    assert_eq!(
        trail,
        [
            ("v1", 1, Some("assigned")),
            ("v2", 1, Some("override")),
            ("v1", 1, Some("cookie"))
        ]
    );

    let reasons: Vec<(&str, u64)> = report
        .reasons
        .iter()
        .map(|r| (r.reason.as_str(), r.total))
        .collect();
    assert_eq!(
        reasons,
        [
            ("override", 1),
            ("cookie", 3),
            ("reevaluated", 1),
            ("assigned", 5)
        ]
    );

    let routes: Vec<(&str, u64, u64, Option<&str>, u64)> = report
        .routes
        .iter()
        .map(|r| {
            (
                r.service.as_str(),
                r.requests,
                r.without_cohort,
                r.variant.as_deref(),
                r.other_variant,
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("my-app-v1-prod@file", 6, 0, None, 0),
            ("my-app-v2-prod@file", 4, 0, Some("v2"), 0),
            ("", 1, 1, None, 0),
        ]
    );
    assert!(report.routes.iter().all(|r| !r.mixed));
    assert!(report.hints.is_empty(), "{:?}", report.hints);

    let text = report.render_text();
    for needle in [
        "access log: 11 lines from access.log",
        "cohort from request_X-Canary, reason from downstream_X-Cohort-Debug, visitors by header:X-User-Id",
        "1 entry without a cohort",
        "2 of 4 visitors changed cohort (1 outside forced or excluded requests, 1 only on them)",
        "dave",
        "v1 ×1 [assigned, 2026-12-01T10:00:00Z] → v2 ×1 [override",
        "v2's service",
        "503×1",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
}

#[test]
fn hostile_lines_are_counted_and_skipped_never_fatal() {
    let good = L::new("v1", "alice").text();
    let mut text = Vec::new();
    text.extend_from_slice(good.as_bytes());
    text.extend_from_slice(b"\n\n   \n");
    text.extend_from_slice(&good.as_bytes()[..good.len() / 2]); // truncated
    text.extend_from_slice(b"\nnot json at all\n\xff\xfe\x00binary\n[1,2,3]\n");
    text.extend_from_slice(
        br#"{"level":"error","msg":"traefik's own log","time":"2026-12-01T10:00:00Z"}"#,
    );
    text.extend_from_slice(b"\n");
    text.extend(std::iter::repeat_n(b'{', MAX_LINE + 10)); // too long
    text.extend_from_slice(b"\r\n");
    text.extend_from_slice(good.as_bytes());
    text.extend_from_slice(b"\r\n");
    text.extend_from_slice(&good.as_bytes()[..20]); // cut off at the end of the file
    let mut a = Aggregator::new(Options::default()).expect("options");
    let mut ticks = 0;
    a.read_source("access.log", &text[..], &mut |_| ticks += 1)
        .expect("never fatal");
    let report = a.finish();
    let h = &report.lines.hostile;
    assert_eq!(
        (
            h.total,
            h.too_long,
            h.truncated,
            h.not_json,
            h.not_an_object,
            h.not_access_log
        ),
        (7, 1, 2, 2, 1, 1)
    );
    assert_eq!(report.lines.blank, 2);
    assert_eq!(report.lines.entries, 2);
    assert_eq!(report.lines.total, 11);
    assert_eq!(report.sources[0].lines, 11);
    let at: Vec<u64> = report
        .lines
        .hostile_examples
        .iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(at, [4, 5, 6, 7, 8]);
    assert_eq!(report.cohort("v1").map(|c| c.requests), Some(2));
    assert!(ticks >= 1);
    assert!(report.render_text().contains("7 hostile lines skipped"));
}

#[test]
fn rotated_sources_in_order_gzip_included_and_a_broken_gzip_is_not_fatal() {
    let older = [L::new("v1", "u1").text(), L::new("v1", "u2").text()].join("\n") + "\n";
    let newer = [L::new("v2", "u1").text(), L::new("v1", "u2").text()].join("\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(older.as_bytes()).expect("gzip");
    let gz = gz.finish().expect("gzip");

    let dir = std::env::temp_dir().join(format!("cohort-report-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (a, b, c) = (
        dir.join("access.log.1.gz"),
        dir.join("access.log"),
        dir.join("broken.gz"),
    );
    std::fs::write(&a, &gz).expect("write");
    std::fs::write(&b, &newer).expect("write");
    std::fs::write(&c, &gz[..gz.len() - 12]).expect("write");
    let mut seen = Vec::new();
    let mut progress = |p: &Progress| seen.push(p.clone());
    let report = read(
        &[
            Source::File(a.clone()),
            Source::File(b.clone()),
            Source::File(c.clone()),
        ],
        Options::default().key(Key::Header("X-User-Id".into())),
        Some(&mut progress),
    )
    .expect("read");
    let names: Vec<(bool, u64, bool)> = report
        .sources
        .iter()
        .map(|s| (s.gzip, s.lines, s.cut_short.is_some()))
        .collect();
    assert_eq!(names[..2], [(true, 2, false), (false, 2, false)]);
    assert!(names[2].0 && names[2].2, "{names:?}");
    // u1 went v1 (older file) -> v2 (newer): order kept across files.
    assert_eq!(report.visitors.changed, 1);
    assert_eq!(report.visitors.examples[0].key, "u1");
    assert_eq!(report.visitors.examples[0].trail[0].cohort, "v1");
    let last = seen.last().expect("progress");
    let total = std::fs::metadata(&a).unwrap().len()
        + std::fs::metadata(&b).unwrap().len()
        + std::fs::metadata(&c).unwrap().len();
    assert_eq!(last.total_bytes, Some(total));
    assert_eq!(last.bytes, total);
    let missing = read(&[Source::File(dir.join("nope"))], Options::default(), None);
    assert!(matches!(missing, Err(Error::Io { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn timeline_fixed_and_automatic() {
    let lines = vec![
        L::new("v1", "a").at("2026-12-01T10:00:05Z").text(),
        L::new("v2", "b")
            .at("2026-12-01T10:00:59.999Z")
            .reason("assigned")
            .text(),
        L::new("v1", "c").at("2026-12-01T10:01:00Z").text(),
        L::new("v1", "d").at("2026-12-01T10:03:30Z").text(),
        L::new("v1", "e").at("not a time").text(),
    ];
    let report = report_of(
        &lines,
        Options::default().config(config()).every("1m").unwrap(),
    );
    let rows: Vec<(&str, u64)> = report
        .timeline
        .buckets
        .iter()
        .map(|b| (b.start.as_str(), b.requests))
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-12-01T10:00:00Z", 2),
            ("2026-12-01T10:01:00Z", 1),
            ("2026-12-01T10:03:00Z", 1)
        ]
    );
    assert_eq!(report.timeline.buckets[0].per_cohort["v2"], 1);
    assert_eq!(report.timeline.buckets[0].assigned["v2"], 1);
    assert_eq!(report.lines.untimed, 1);
    assert_eq!(report.first.as_deref(), Some("2026-12-01T10:00:05Z"));
    assert_eq!(report.last.as_deref(), Some("2026-12-01T10:03:30Z"));
    assert!(!report.timeline.automatic);

    // 3.5 minutes fit in 30 rows of 10 s.
    let auto = report_of(&lines, Options::default());
    assert!(auto.timeline.automatic);
    assert_eq!(auto.timeline.every, "10s");
    assert_eq!(
        auto.timeline
            .buckets
            .iter()
            .map(|b| b.requests)
            .sum::<u64>(),
        4
    );
    // Many seconds far apart coarsen while reading, exactly.
    let mut a = Aggregator::new(Options::default()).expect("options");
    for s in 0..10_000i64 {
        a.entry(&Entry {
            status: 200,
            start: Some(time::format_utc(s * 7 * time::SECOND)),
            cohort: Some(if s % 10 == 0 { "v2" } else { "v1" }.into()),
            ..Entry::default()
        });
    }
    let r = a.finish();
    assert!(
        r.timeline.buckets.len() <= 30,
        "{}",
        r.timeline.buckets.len()
    );
    let v2: u64 = r.timeline.buckets.iter().map(|b| b.per_cohort["v2"]).sum();
    assert_eq!(v2, 1000);
    assert!(r.render_text().contains("split over time (requests per "));
}

#[test]
fn keys_and_their_hints() {
    let lines = vec![L::new("v1", "a").text(), L::new("v2", "b").text()];
    // The recipe redacts Cookie: a cookie key finds nobody, and says why.
    let r = report_of(
        &lines,
        Options::default().key("cookie:cohort_id".parse().unwrap()),
    );
    assert_eq!(r.visitors.total, 0);
    assert_eq!(r.visitors.redacted_requests, 2);
    assert!(
        r.hints.iter().any(|h| h.contains("REDACTED")),
        "{:?}",
        r.hints
    );
    // Kept cookies work.
    let kept =
        r#"{"DownstreamStatus":200,"request_X-Canary":"v2","request_Cookie":"a=1; cohort_id=abc"}"#;
    let r = report_of(
        &[kept.to_owned()],
        Options::default().key("cookie:cohort_id".parse().unwrap()),
    );
    assert_eq!(r.visitors.examples.len(), 0);
    assert_eq!(r.visitors.total, 1);
    // ip-ua: both lines share 10.0.0.1 and "ua": one visitor who changed.
    let r = report_of(&lines, Options::default());
    assert_eq!(r.fields.key, "ip-ua");
    assert_eq!((r.visitors.total, r.visitors.changed), (1, 1));
    assert_eq!(r.visitors.examples[0].key, "10.0.0.1 ua");
    // The configuration's first header key is the default.
    let r = report_of(&lines, Options::default().config(config()));
    assert_eq!(r.fields.key, "header:X-User-Id");
    assert_eq!(r.visitors.total, 2);
    // A key nobody logs.
    let r = report_of(
        &lines,
        Options::default().key("header:X-Session".parse().unwrap()),
    );
    assert!(
        r.hints.iter().any(|h| h.contains("header:X-Session")),
        "{:?}",
        r.hints
    );
    for bad in ["", "header:", "cookie: ", "user", "header:a b"] {
        assert!(matches!(bad.parse::<Key>(), Err(Error::Key(_))), "{bad:?}");
    }
    assert_eq!(
        "header:X-User-Id".parse::<Key>().unwrap().to_string(),
        "header:X-User-Id"
    );
}

#[test]
fn configuration_decides_fields_and_expectations() {
    // Traefik's stringified form works as the middleware's does.
    let stringified = json!({
        "header": "X-Cohort",
        "variants": [{"name": "a", "weight": "50"}, {"name": "b", "weight": "50"}, {"name": "c", "weight": "0", "state": "drained"}],
    });
    let line = r#"{"DownstreamStatus":200,"request_x-cohort":"b","request_X-Canary":"a"}"#;
    let r = report_of(&[line.to_owned()], Options::default().config(stringified));
    assert_eq!(r.cohort("b").map(|c| c.requests), Some(1));
    assert_eq!(r.cohort("a").map(|c| c.requests), Some(0));
    assert_eq!(r.cohort("c").and_then(|c| c.expected_pct), Some(0.0));
    // No cohort header: the debug header's cohort.
    let debug_only = json!({"header": "", "debugHeader": "X-Dbg", "variants": [{"name": "v1"}, {"name": "v2", "weight": 5}]});
    let line = r#"{"DownstreamStatus":200,"downstream_X-Dbg":"v2; reason=assigned"}"#;
    let r = report_of(&[line.to_owned()], Options::default().config(debug_only));
    assert_eq!(
        r.cohort("v2").map(|c| (c.requests, c.assigned)),
        Some((1, 1))
    );
    assert_eq!(r.fields.cohort, None);
    // A configuration Cohort refuses is refused here too.
    let bad = Aggregator::new(
        Options::default().config(json!({"variants": [{"name": "v1", "weight": "ten"}]})),
    );
    assert!(matches!(bad, Err(Error::Config(_))));
    // No cohort header kept: a hint, not a crash.
    let r = report_of(
        &[r#"{"DownstreamStatus":200}"#.to_owned()],
        Options::default(),
    );
    assert_eq!(r.with_cohort, 0);
    assert!(r.hints[0].contains("X-Canary: keep"), "{:?}", r.hints);
    assert!(r.render_text().contains("hint: no entry has X-Canary"));
}

#[test]
fn hostile_values_are_bounded() {
    // A client's own X-Canary on a router without Cohort can be anything.
    let mut a = Aggregator::new(Options::default().config(config())).expect("options");
    for i in 0..100 {
        a.entry(&Entry {
            status: 200,
            cohort: Some(format!("junk-{i}")),
            router: Some(format!("router-{i}")),
            ..Entry::default()
        });
    }
    for i in 0..(MAX_ROUTES + 50) {
        a.entry(&Entry {
            status: 200,
            cohort: Some("v1".into()),
            router: Some(format!("r{i}")),
            ..Entry::default()
        });
    }
    let r = a.finish();
    assert_eq!(r.cohorts.len(), MAX_COHORTS);
    assert_eq!(r.cohorts.last().map(|c| c.name.as_str()), Some("(other)"));
    assert_eq!(
        r.cohorts.iter().map(|c| c.requests).sum::<u64>(),
        100 + MAX_ROUTES as u64 + 50
    );
    assert!(!r.cohorts[2].configured);
    assert_eq!(r.cohorts[2].expected_pct, None);
    assert_eq!(r.routes.len(), MAX_ROUTES + 1);
    assert_eq!(r.routes.last().map(|r| r.requests), Some(150));
}

#[test]
fn filters_by_router_and_time() {
    let lines = vec![
        L::new("v1", "a").at("2026-12-01T10:00:00Z").text(),
        L::new("v1", "b").at("2026-12-01T11:00:00Z").text(),
        L::new("v2", "c")
            .at("2026-12-01T12:00:00Z")
            .served("other@file", "x@file")
            .text(),
    ];
    let options = Options::default()
        .window(Some("2026-12-01T10:30:00Z"), None)
        .unwrap();
    let r = report_of(&lines, options);
    assert_eq!((r.lines.entries, r.lines.outside_window), (2, 1));
    let options = Options {
        router: Some("my-app".into()),
        ..Options::default()
    };
    let r = report_of(&lines, options);
    assert_eq!((r.lines.entries, r.lines.other_routers), (2, 1));
    assert!(matches!(
        Options::default().window(Some("yesterday"), None),
        Err(Error::Time {
            what: "--since",
            ..
        })
    ));
    assert!(matches!(
        Options::default().every("soon"),
        Err(Error::Every(_))
    ));
}

#[test]
fn flat_routers_show_as_mixed() {
    // The flat pattern: a new v2 visitor's first request is served by v1.
    let lines = vec![
        L::new("v2", "a").reason("assigned").text(),
        L::new("v2", "a")
            .reason("cookie")
            .served("my-app-v2@file", "my-app-v2-prod@file")
            .text(),
    ];
    let mut both = config();
    both["variants"][0]["service"] = json!("my-app-v1-prod");
    let r = report_of(&lines, Options::default().config(both));
    assert_eq!(r.routes[0].service, "my-app-v1-prod@file");
    assert_eq!(r.routes[0].variant.as_deref(), Some("v1"));
    assert_eq!(r.routes[0].other_variant, 1);
    assert_eq!(r.routes[1].other_variant, 0);
    assert!(r.render_text().contains("v1's service: 1 of other cohorts"));
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["cohorts"][1]["statuses"]["2xx"], 2);
    assert_eq!(json["routes"][0]["per_cohort"]["v2"], 1);
}
