//! Operating Cohort from Traefik's own logs and metrics (issue 13), in a
//! real Traefik:
//!
//! * a known population goes through the multi-layer recipe with the
//!   access-log and metrics recipes (`recipes/static/access-log.yml`,
//!   `metrics.yml`): visitors at 10 %, a few forced overrides, errors, one
//!   mid-run ramp to 30 %; `cohort-harness report` on the log must
//!   reproduce exactly what the backends saw (split, visitors, changers,
//!   statuses), also from a rotated, gzipped and vandalised copy, and
//!   `/metrics` must count per version what the backends counted;
//! * the weighted and flat patterns: what `ServiceName` and the metrics say
//!   there (the weighted child; the first request of a new canary visitor
//!   on v1);
//! * the plugin Traefik runs here is the one decoded from the ConfigMap
//!   `cohort-harness package` writes, which must hold the shipped bytes;
//! * the Helm values recipe mounts that ConfigMap where Traefik reads local
//!   plugins and keeps the same access-log fields as the static recipe.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use cohort_harness::{artifacts, package};

use crate::support::client::{Visitor, agent};
use crate::support::crowd::in_parallel;
use crate::support::recipes::{HOST, PLACEHOLDERS, cohort_value, recipe};
use crate::support::traefik::{MODULE, Options, Traefik, repo_root, skip_without_multi_layer};
use crate::support::{render, yaml};

// ---------------------------------------------------------------------------
// Backends that count what they receive.

/// One request as a backend received it.
#[derive(Debug, Clone)]
struct Seen {
    /// The version that answered: `v1`, `v2`.
    version: String,
    /// `X-User-Id`.
    user: Option<String>,
    /// `X-Canary` (the cohort Cohort wrote).
    cohort: Option<String>,
    /// The status the backend answered.
    status: u16,
    /// Whether Cohort was told to force this request (an override header
    /// or query parameter reached the backend).
    forced: bool,
}

/// A backend pod answering `200`, or the status its path asks for
/// (`/status/503`), or on `/flaky` `500` when it is v2: v2's errors are
/// its own. Every request is recorded, in arrival order.
struct Pod {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Pod {
    fn start(version: &str, seen: &Arc<Mutex<Vec<Seen>>>) -> Result<Self> {
        let server = tiny_http::Server::http(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| anyhow::anyhow!("backend: {e}"))?;
        let addr = server.server_addr().to_ip().context("backend address")?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..4)
            .map(|_| {
                let (server, stop, seen) =
                    (Arc::clone(&server), Arc::clone(&stop), Arc::clone(seen));
                let version = version.to_owned();
                std::thread::spawn(move || serve(&server, &stop, &seen, &version))
            })
            .collect();
        Ok(Self {
            addr,
            server,
            stop,
            workers,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, seen: &Mutex<Vec<Seen>>, version: &str) {
    loop {
        let request = match server.recv() {
            Ok(r) => r,
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(_) => continue,
        };
        let header = |name: &str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str().to_owned())
        };
        let url = request.url().to_owned();
        let path = url.split('?').next().unwrap_or("/");
        let status = if let Some(code) = path.strip_prefix("/status/") {
            code.parse().unwrap_or(400)
        } else if path == "/flaky" && version == "v2" {
            500
        } else {
            200
        };
        let record = Seen {
            version: version.to_owned(),
            user: header("X-User-Id"),
            cohort: header("X-Canary"),
            status,
            forced: header("X-Canary-Force").is_some() || url.contains("canary="),
        };
        seen.lock().unwrap().push(record);
        let body = format!("Name: canary-{version}\n");
        let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(status));
    }
}

/// Two pods per version, in place of the recipes' placeholders.
struct Backends {
    pods: Vec<(String, Pod)>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backends {
    fn start() -> Result<Self> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut pods = Vec::new();
        for version in ["v1", "v2"] {
            for _ in 0..2 {
                pods.push((version.to_owned(), Pod::start(version, &seen)?));
            }
        }
        Ok(Self { pods, seen })
    }

    /// `recipes/<path>` with `edits` (each must occur), then these pods.
    fn recipe(&self, path: &str, edits: &[(&str, String)]) -> Result<String> {
        let text = render(&recipe(path)?, edits)?;
        let subs: Vec<(&str, String)> = PLACEHOLDERS
            .iter()
            .flatten()
            .zip(&self.pods)
            .map(|(placeholder, (_, pod))| (*placeholder, pod.url()))
            .collect();
        render(&text, &subs)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------
// What the backends saw, as the report should show it.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Expected {
    requests: BTreeMap<String, u64>,
    served: BTreeMap<String, u64>,
    first: BTreeMap<String, u64>,
    statuses: BTreeMap<String, BTreeMap<u16, u64>>,
    changed: u64,
    changed_outside_forced: u64,
    users: u64,
}

fn expected(seen: &[Seen]) -> Expected {
    let mut e = Expected::default();
    let mut per_user: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    for s in seen {
        let cohort = s.cohort.clone().unwrap_or_else(|| "(none)".into());
        *e.requests.entry(cohort.clone()).or_default() += 1;
        *e.served.entry(s.version.clone()).or_default() += 1;
        *e.statuses
            .entry(cohort)
            .or_default()
            .entry(s.status)
            .or_default() += 1;
        if let Some(user) = &s.user {
            per_user.entry(user).or_default().push(s);
        }
    }
    for records in per_user.values() {
        e.users += 1;
        *e.first
            .entry(records[0].cohort.clone().unwrap_or_default())
            .or_default() += 1;
        let all: BTreeSet<&Option<String>> = records.iter().map(|s| &s.cohort).collect();
        let free: BTreeSet<&Option<String>> = records
            .iter()
            .filter(|s| !s.forced)
            .map(|s| &s.cohort)
            .collect();
        e.changed += u64::from(all.len() > 1);
        e.changed_outside_forced += u64::from(free.len() > 1);
    }
    e
}

/// The same numbers out of `report --json`.
fn observed(report: &Value) -> Result<Expected> {
    let mut e = Expected::default();
    for c in report["cohorts"].as_array().context("cohorts")? {
        let name = c["name"].as_str().context("name")?.to_owned();
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        if n(&c["requests"]) > 0 {
            e.requests.insert(name.clone(), n(&c["requests"]));
            let codes = c["statuses"]["codes"]
                .as_object()
                .context("codes")?
                .iter()
                .map(|(k, v)| Ok((k.parse()?, n(v))))
                .collect::<Result<BTreeMap<u16, u64>>>()?;
            e.statuses.insert(name.clone(), codes);
        }
        if n(&c["visitors"]) > 0 {
            e.first.insert(name.clone(), n(&c["visitors"]));
        }
    }
    for r in report["routes"].as_array().context("routes")? {
        let service = r["service"].as_str().unwrap_or_default();
        if let Some(version) = service
            .strip_prefix("my-app-")
            .and_then(|s| s.strip_suffix("-prod@file"))
        {
            *e.served.entry(version.to_owned()).or_default() += r["requests"].as_u64().unwrap_or(0);
        }
    }
    e.changed = report["visitors"]["changed"].as_u64().context("changed")?;
    e.changed_outside_forced = report["visitors"]["changed_outside_forced"]
        .as_u64()
        .context("changed_outside_forced")?;
    e.users = report["visitors"]["total"].as_u64().context("visitors")?;
    Ok(e)
}

// ---------------------------------------------------------------------------
// Traefik with the observability recipes and the plugin from the ConfigMap.

/// A directory removed on drop (kept when the test panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cohort-report-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn harness(args: &[&str]) -> Result<std::process::Output> {
    let out = Command::new(env!("CARGO_BIN_EXE_cohort-harness"))
        .args(args)
        .output()
        .context("running cohort-harness")?;
    ensure!(
        out.status.success(),
        "cohort-harness {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

/// Standard base64 decoding, written here apart from `package`'s.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("{:?} is not base64", char::from(c)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// `cohort-harness package` in `dir`: the ConfigMap it wrote, read with the
/// tests' own YAML reader, and its files decoded.
fn package_configmap(dir: &Path) -> Result<(Value, BTreeMap<String, Vec<u8>>, String)> {
    let out = harness(&[
        "package",
        "--out",
        dir.to_str().context("path")?,
        "--namespace",
        "traefik",
    ])?;
    let stdout = String::from_utf8(out.stdout)?;
    let path = dir.join(package::configmap_file_name());
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let doc = yaml::parse(&text)?;
    let mut files = BTreeMap::new();
    for (key, value) in doc["binaryData"].as_object().context("binaryData")? {
        files.insert(
            key.clone(),
            decode_base64(value.as_str().context("base64")?)?,
        );
    }
    Ok((doc, files, stdout))
}

#[test]
fn traefik_report_configmap_decodes_to_the_shipped_bytes() -> Result<()> {
    let dir = TempDir::new("configmap")?;
    let (doc, files, stdout) = package_configmap(&dir.0)?;
    let wasm = std::fs::read(artifacts::PLUGIN_WASM)?;
    let manifest = std::fs::read(repo_root().join(".traefik.yml"))?;
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [".traefik.yml", "plugin.wasm"]
    );
    assert!(
        files["plugin.wasm"] == wasm,
        "plugin.wasm differs from the shipped one"
    );
    assert_eq!(files[".traefik.yml"], manifest);
    // The loose plugin.wasm next to it is the same build.
    assert!(std::fs::read(dir.0.join("plugin.wasm"))? == wasm);

    let held = wasm.len() + manifest.len();
    let yaml_len = std::fs::metadata(dir.0.join(package::configmap_file_name()))?.len();
    eprintln!(
        "ConfigMap: {held} bytes held ({:.1} % of 1 MiB), {yaml_len} bytes of YAML",
        100.0 * held as f64 / f64::from(1 << 20)
    );
    assert!(held < (1 << 20) / 2, "{held} bytes is not well under 1 MiB");
    assert!(
        stdout.contains("ConfigMap cohort-plugin holding"),
        "{stdout}"
    );

    // The shape recipes/helm/plugin-configmap.yml shows.
    let shape = yaml::parse(&recipe("helm/plugin-configmap.yml")?)?;
    for field in ["apiVersion", "kind"] {
        assert_eq!(doc[field], shape[field], "{field}");
    }
    for field in ["name", "namespace"] {
        assert_eq!(
            doc["metadata"][field], shape["metadata"][field],
            "metadata.{field}"
        );
    }
    assert_eq!(doc["metadata"]["name"], package::CONFIGMAP_NAME);
    let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&doc["binaryData"]), keys(&shape["binaryData"]));
    assert_eq!(
        keys(&doc["metadata"]["labels"]),
        keys(&shape["metadata"]["labels"])
    );
    assert_eq!(
        keys(&doc["metadata"]["annotations"]),
        keys(&shape["metadata"]["annotations"])
    );
    let digest: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(
        doc["metadata"]["annotations"][package::CONFIGMAP_SHA_ANNOTATION],
        Value::from(digest)
    );
    assert_eq!(
        doc["metadata"]["labels"]["app.kubernetes.io/version"],
        package::VERSION
    );
    Ok(())
}

#[test]
fn traefik_report_helm_values_mount_the_configmap_where_traefik_reads_plugins() -> Result<()> {
    let values = yaml::parse(&recipe("helm/values.yml")?)?;
    let plugins = values["experimental"]["localPlugins"]
        .as_object()
        .context("experimental.localPlugins")?;
    assert_eq!(plugins.len(), 1);
    let cohort = &plugins["cohort"];
    assert_eq!(cohort["moduleName"], MODULE);
    assert_eq!(MODULE, package::MODULE_NAME);
    assert_eq!(cohort["type"], "localPath");
    assert_eq!(cohort["mountPath"], format!("/plugins-local/src/{MODULE}"));
    let volume = cohort["volumeName"].as_str().context("volumeName")?;
    let volumes = values["deployment"]["additionalVolumes"]
        .as_array()
        .context("deployment.additionalVolumes")?;
    let mounted: Vec<&Value> = volumes.iter().filter(|v| v["name"] == volume).collect();
    assert_eq!(
        mounted.len(),
        1,
        "volume {volume} in deployment.additionalVolumes"
    );
    assert_eq!(mounted[0]["configMap"]["name"], package::CONFIGMAP_NAME);

    // The same access-log fields as the static recipe the tests run.
    let static_recipe = yaml::parse(&recipe("static/access-log.yml")?)?;
    let (helm_log, static_log) = (&values["accessLog"], &static_recipe["accessLog"]);
    assert_eq!(helm_log["enabled"], "true");
    assert_eq!(helm_log["format"], static_log["format"]);
    assert_eq!(helm_log["fields"], static_log["fields"]);
    let headers = &static_log["fields"]["headers"]["names"];
    // The header every file recipe's Cohort writes is kept, secrets redacted.
    for file in [
        "file/multi-layer.yml",
        "file/weighted-sticky.yml",
        "file/flat-routers.yml",
    ] {
        let header = cohort_value(&recipe(file)?, "cohort")?["header"].clone();
        let header = header.as_str().context("header")?;
        assert_eq!(headers[header], "keep", "{file}: {header}");
    }
    for secret in ["Cookie", "Authorization"] {
        assert_eq!(headers[secret], "redact", "{secret}");
    }
    assert_eq!(headers["X-User-Id"], "keep");
    // The metrics of the static recipe.
    let metrics = yaml::parse(&recipe("static/metrics.yml")?)?;
    for key in ["addRoutersLabels", "addServicesLabels"] {
        assert_eq!(values["metrics"]["prometheus"][key], "true", "{key}");
        assert_eq!(metrics["metrics"]["prometheus"][key], "true", "{key}");
    }
    assert_eq!(values["metrics"]["prometheus"]["entryPoint"], "metrics");
    Ok(())
}

#[test]
fn traefik_report_cli_reads_stdin_skips_hostile_lines_and_shows_progress() -> Result<()> {
    let line = |cohort: &str, user: &str, status: u16| {
        format!(
            r#"{{"DownstreamStatus":{status},"RouterName":"my-app@file","ServiceName":"s@file","StartUTC":"2026-12-01T10:00:00Z","entryPointName":"web","request_X-Canary":"{cohort}","request_X-User-Id":"{user}"}}"#
        )
    };
    let log = [
        line("v1", "a", 200),
        "{\"DownstreamStatus\":200,\"request_X-Can".to_owned(),
        "2026-12-01T10:00:00Z ERR something Traefik logged".to_owned(),
        line("v2", "a", 503),
        line("v2", "b", 200),
    ]
    .join("\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort-harness"))
        .args([
            "report",
            "--json",
            "--progress",
            "--key",
            "header:X-User-Id",
            "--config",
            r#"{"variants":[{"name":"v1"},{"name":"v2","weight":"50"}]}"#,
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut child.stdin.take().context("stdin")?, log.as_bytes())?;
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("report: ") && stderr.contains("5 lines"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["lines"]["entries"], 3);
    assert_eq!(report["lines"]["hostile"]["truncated"], 1);
    assert_eq!(report["lines"]["hostile"]["not_json"], 1);
    assert_eq!(report["sources"][0]["name"], "-");
    assert_eq!(report["visitors"]["changed"], 1);
    assert_eq!(report["cohorts"][1]["statuses"]["5xx"], 1);
    // Wrong arguments are errors, with what is wrong.
    for (args, needle) in [
        (&["report", "--key", "user", "-"][..], "--key \"user\""),
        (&["report", "--every", "soon", "-"][..], "--every \"soon\""),
        (
            &["report", "--config", "{\"variants\":[]}", "-"][..],
            "--config",
        ),
        (
            &["report", "/nonexistent/access.log"][..],
            "/nonexistent/access.log",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cohort-harness"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()?;
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    Ok(())
}

/// The observability recipes as a static-config tail for the fixture:
/// the access log in Traefik's directory, metrics on the admin entry point.
fn observability_static() -> Result<String> {
    let access = render(
        &recipe("static/access-log.yml")?,
        &[(
            "filePath: /var/log/traefik/access.log",
            "filePath: access.log".to_owned(),
        )],
    )?;
    let metrics = render(
        &recipe("static/metrics.yml")?,
        &[
            (
                "entryPoints:\n  metrics:\n    address: \":8082\"\n",
                String::new(),
            ),
            ("entryPoint: metrics", "entryPoint: admin".to_owned()),
        ],
    )?;
    Ok(format!("\n{access}\n{metrics}"))
}

/// A Traefik running `dynamic` with the plugin decoded from the ConfigMap
/// and the observability recipes.
fn start(dir: &Path, dynamic: &str) -> Result<Traefik> {
    let (_, files, _) = package_configmap(dir)?;
    let (wasm, manifest) = (dir.join("cm-plugin.wasm"), dir.join("cm-traefik.yml"));
    std::fs::write(&wasm, &files["plugin.wasm"])?;
    std::fs::write(&manifest, &files[".traefik.yml"])?;
    let options = Options {
        wasm,
        manifest,
        log_level: "INFO",
        ..Options::default()
    };
    Traefik::start_with_static(&options, &observability_static()?, dynamic)
}

fn access_log(traefik: &Traefik) -> PathBuf {
    traefik.dir().join("access.log")
}

/// Lines of the `web` entry point: the fixture's readiness probes on
/// `admin` are logged too.
fn web_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains(r#""entryPointName":"web""#))
        .count()
}

/// Waits until the access log has `lines` lines of the `web` entry point
/// (Traefik writes a line when the handler returns, which may be just
/// after the client has read the response); returns its text.
fn wait_for_lines(traefik: &Traefik, lines: usize) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(access_log(traefik)).unwrap_or_default();
        let n = web_lines(&text);
        if n >= lines {
            ensure!(n == lines, "the access log has {n} lines, expected {lines}");
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "the access log has {n} lines, expected {lines}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Request counts per label value, and per (label value, status code).
type Counts = (BTreeMap<String, u64>, BTreeMap<(String, u16), u64>);

/// `traefik_<kind>_requests_total` of the admin entry point's `/metrics`:
/// the sum per value of `label`, and per (value, code).
fn metrics(traefik: &Traefik, kind: &str, label: &str) -> Result<Counts> {
    let body = agent()
        .get(&format!("{}/metrics", traefik.admin_url()))
        .call()?
        .body_mut()
        .read_to_string()?;
    let prefix = format!("traefik_{kind}_requests_total{{");
    let (mut by, mut by_code) = (BTreeMap::new(), BTreeMap::new());
    for line in body.lines().filter(|l| l.starts_with(&prefix)) {
        let (labels, value) = line
            .strip_prefix(prefix.as_str())
            .context("prefix")?
            .rsplit_once("} ")
            .with_context(|| format!("metric line {line:?}"))?;
        let labels: BTreeMap<&str, &str> = labels
            .split("\",")
            .filter_map(|kv| kv.split_once("=\""))
            .map(|(k, v)| (k, v.trim_end_matches('"')))
            .collect();
        let value: f64 = value.trim().parse()?;
        let name = labels.get(label).copied().unwrap_or("-").to_owned();
        let code: u16 = labels.get("code").copied().unwrap_or("0").parse()?;
        *by.entry(name.clone()).or_default() += value as u64;
        *by_code.entry((name, code)).or_default() += value as u64;
    }
    Ok((by, by_code))
}

/// `report --json` and the text report on `logs`, with `config`.
fn run_report(
    dir: &Path,
    config: &Value,
    logs: &[&Path],
    extra: &[&str],
) -> Result<(Value, String)> {
    let config_path = dir.join("cohort.json");
    std::fs::write(&config_path, config.to_string())?;
    let config_arg = format!("@{}", config_path.display());
    let mut args = vec!["report", "--config", &config_arg];
    args.extend_from_slice(extra);
    let logs: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
    args.extend(logs.iter().map(String::as_str));
    let text = String::from_utf8(harness(&args)?.stdout)?;
    args.insert(1, "--json");
    let json = serde_json::from_slice(&harness(&args)?.stdout)?;
    Ok((json, text))
}

// ---------------------------------------------------------------------------
// The proof.

/// Visitors, and requests each before and after the ramp.
const VISITORS: usize = 1_000;
const BEFORE: usize = 3;
const AFTER: usize = 2;

/// Visitors forced to v2 / to the default for one request (header), and
/// sent a shared link `?canary=v2` (query, which also sets the cookie).
const FORCE_V2: [usize; 3] = [3, 13, 23];
const FORCE_NEVER: [usize; 2] = [5, 15];
const LINK_V2: [usize; 2] = [8, 18];

/// Request `r` of visitor `i` (`r` counts on across the ramp).
fn request_of(i: usize, r: usize) -> (String, Option<&'static str>) {
    let path = match r {
        1 | 4 if i.is_multiple_of(25) => "/flaky".to_owned(),
        2 if i % 40 == 7 => "/status/404".to_owned(),
        3 if LINK_V2.contains(&i) => "/?canary=v2".to_owned(),
        4 if i % 33 == 4 => "/status/503".to_owned(),
        _ => "/".to_owned(),
    };
    let force = match r {
        1 if FORCE_V2.contains(&i) => Some("v2"),
        1 if FORCE_NEVER.contains(&i) => Some("never"),
        _ => None,
    };
    (path, force)
}

fn drive(base: &str, visitors: &[Mutex<Visitor>], requests: std::ops::Range<usize>) -> Result<()> {
    in_parallel(visitors.len(), 4, |i, _| {
        let mut v = visitors[i].lock().unwrap();
        let user = format!("u-{i:03}");
        for r in requests.clone() {
            let (path, force) = request_of(i, r);
            let mut headers = vec![("X-User-Id", user.as_str())];
            if let Some(force) = force {
                headers.push(("X-Canary-Force", force));
            }
            let response = v.get_with(&path, &headers)?;
            ensure!(
                response.body.starts_with("Name: canary-"),
                "{base}{path}: {} {}",
                response.status,
                response.body
            );
        }
        Ok(())
    })
    .map(|_| ())
}

/// The edits of the multi-layer recipe for the proof: the debug header and
/// overrides on, `stickiness: reevaluate` so the ramp moves visitors.
fn proof_edits(percent: u32) -> Vec<(&'static str, String)> {
    vec![
        (
            "          header: X-Canary\n",
            "          header: X-Canary\n          debugHeader: X-Cohort-Debug\n          \
             override:\n            header: X-Canary-Force\n            query: canary\n"
                .to_owned(),
        ),
        ("stickiness: keep", "stickiness: reevaluate".to_owned()),
        (
            "weight: 10             # percent",
            format!("weight: {percent}             # percent"),
        ),
    ]
}

#[test]
fn traefik_report_reproduces_what_the_backends_saw() -> Result<()> {
    if skip_without_multi_layer() {
        return Ok(());
    }
    let started = Instant::now();
    let dir = TempDir::new("proof")?;
    let backends = Backends::start()?;
    let before = backends.recipe("file/multi-layer.yml", &proof_edits(10))?;
    let ramped = backends.recipe("file/multi-layer.yml", &proof_edits(30))?;
    let mut traefik = start(&dir.0, &before)?;
    let base = traefik.url();
    let agents: Vec<ureq::Agent> = (0..4).map(|_| agent()).collect();
    let visitors: Vec<Mutex<Visitor>> = (0..VISITORS)
        .map(|i| Mutex::new(Visitor::with_agent(&base, agents[i % 4].clone()).with_host(HOST)))
        .collect();

    drive(&base, &visitors, 0..BEFORE)?;
    let first_part = wait_for_lines(&traefik, VISITORS * BEFORE)?;
    traefik.update_dynamic(&ramped)?;
    drive(&base, &visitors, BEFORE..BEFORE + AFTER)?;
    // Traefik's own 404 for a host nobody routes: an entry without a cohort.
    let stray = Visitor::new(&base)
        .with_host("nobody.example.com")
        .get("/")?;
    assert_eq!(stray.status, 404);
    let sent = VISITORS * (BEFORE + AFTER) + 1;
    let log = wait_for_lines(&traefik, sent)?;
    let seen = backends.seen();
    assert_eq!(seen.len(), sent - 1);
    let want = expected(&seen);

    // Multi-layer routing sends every request to its cohort's version.
    assert!(
        seen.iter()
            .all(|s| s.cohort.as_deref() == Some(s.version.as_str()))
    );
    // The config as the middleware has it, Traefik's stringified scalars and all.
    let config = cohort_value(&before, "cohort")?;
    let web = ["--entry-point", "web"];
    let (report, text) = run_report(&dir.0, &config, &[&access_log(&traefik)], &web)?;
    eprintln!("--- cohort-harness report (multi-layer, {sent} requests) ---\n{text}");
    eprintln!("--- the backends saw ---\n{want:?}");
    let got = observed(&report)?;
    assert_eq!(got, want);
    assert_eq!(report["lines"]["entries"], sent);
    assert_eq!(report["lines"]["hostile"]["total"], 0);
    assert_eq!(
        report["lines"]["other_entry_points"],
        log.lines().count() - sent,
        "the fixture's probes on admin"
    );
    assert_eq!(
        report["without_cohort"]["codes"],
        serde_json::json!({"404": 1})
    );
    assert_eq!(report["visitors"]["unkeyed_requests"], 0);
    // The ramp moved visitors, and Cohort said why.
    assert!(want.changed_outside_forced > 0, "{want:?}");
    let reasons: BTreeMap<String, u64> = report["reasons"]
        .as_array()
        .context("reasons")?
        .iter()
        .map(|r| {
            (
                r["reason"].as_str().unwrap_or_default().to_owned(),
                r["total"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let forced = seen.iter().filter(|s| s.forced).count() as u64;
    assert_eq!(
        reasons.get("override").copied(),
        Some(forced),
        "{reasons:?}"
    );
    assert!(
        reasons.get("reevaluated").copied().unwrap_or(0) > 0,
        "{reasons:?}"
    );
    assert_eq!(
        reasons.get("assigned").copied(),
        Some(VISITORS as u64),
        "{reasons:?}"
    );
    // Every router and service served one cohort.
    for route in report["routes"].as_array().context("routes")? {
        assert_eq!(route["mixed"], false, "{route}");
    }

    // Rotated at the ramp, the older part gzipped, with hostile lines: the
    // same counts, the lines skipped and counted.
    let older = dir.0.join("access.log.1.gz");
    let newer = dir.0.join("access.log");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, first_part.as_bytes())?;
    std::fs::write(&older, gz.finish()?)?;
    let rest = log
        .strip_prefix(first_part.as_str())
        .context("the log grew")?;
    let cut = rest.lines().next().context("a line")?;
    let vandalised = format!(
        "{}\n2026-12-01T10:00:00Z INF Configuration loaded from file\n\u{0}\u{1}binary\n{rest}",
        cut.get(..cut.len() / 2).context("an ASCII line")?
    );
    std::fs::write(&newer, vandalised)?;
    let (rotated, _) = run_report(
        &dir.0,
        &config,
        &[&older, &newer],
        &["--entry-point", "web", "--every", "2s"],
    )?;
    assert_eq!(observed(&rotated)?, got);
    assert_eq!(rotated["lines"]["hostile"]["total"], 3);
    assert_eq!(rotated["lines"]["entries"], sent);
    assert_eq!(rotated["sources"][0]["gzip"], true);
    assert_eq!(rotated["timeline"]["every"], "2s");
    let in_timeline: u64 = rotated["timeline"]["buckets"]
        .as_array()
        .context("buckets")?
        .iter()
        .map(|b| b["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(in_timeline, sent as u64);

    // Traefik's own counters: per version what the backends served.
    let (services, service_codes) = metrics(&traefik, "service", "service")?;
    let (routers, _) = metrics(&traefik, "router", "router")?;
    eprintln!("--- /metrics ---\nservices {services:?}\nrouters {routers:?}");
    let mut backend_codes: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for s in &seen {
        *backend_codes
            .entry((format!("my-app-{}-prod@file", s.version), s.status))
            .or_default() += 1;
    }
    for version in ["v1", "v2"] {
        let served = want.served.get(version).copied().unwrap_or(0);
        assert_eq!(
            services
                .get(&format!("my-app-{version}-prod@file"))
                .copied(),
            Some(served)
        );
        assert_eq!(
            routers.get(&format!("my-app-{version}@file")).copied(),
            Some(served)
        );
    }
    let service_codes: BTreeMap<(String, u16), u64> = service_codes
        .into_iter()
        .filter(|((s, _), _)| s.starts_with("my-app-v"))
        .collect();
    assert_eq!(service_codes, backend_codes);
    assert_eq!(routers.get("my-app@file").copied(), Some((sent - 1) as u64));
    let took = started.elapsed();
    eprintln!("proof: {sent} requests, report and metrics checked in {took:.1?}");
    Ok(())
}

/// A smaller population through the weighted or the flat recipe: what the
/// access log's router and service say, against the backends.
fn pattern(file: &str, visitors: usize) -> Result<(Value, Vec<Seen>, BTreeMap<String, u64>)> {
    let dir = TempDir::new("pattern")?;
    let backends = Backends::start()?;
    let edits = [(
        "          header: X-Canary\n",
        "          header: X-Canary\n          debugHeader: X-Cohort-Debug\n".to_owned(),
    )];
    let dynamic = backends.recipe(file, &edits)?;
    let traefik = start(&dir.0, &dynamic)?;
    let base = traefik.url();
    in_parallel(visitors, 4, |i, agent| {
        let mut v = Visitor::with_agent(&base, agent.clone()).with_host(HOST);
        let user = format!("w-{i:03}");
        for _ in 0..3 {
            v.get_with("/", &[("X-User-Id", &user)])?;
        }
        Ok(())
    })?;
    wait_for_lines(&traefik, visitors * 3)?;
    let config = cohort_value(&dynamic, "cohort")?;
    let (report, text) = run_report(
        &dir.0,
        &config,
        &[&access_log(&traefik)],
        &["--entry-point", "web"],
    )?;
    eprintln!("--- cohort-harness report ({file}) ---\n{text}");
    let (services, _) = metrics(&traefik, "service", "service")?;
    let seen = backends.seen();
    let want = expected(&seen);
    let got = observed(&report)?;
    assert_eq!(
        (&got.requests, &got.served, &got.first),
        (&want.requests, &want.served, &want.first)
    );
    for version in ["v1", "v2"] {
        assert_eq!(
            services
                .get(&format!("my-app-{version}-prod@file"))
                .copied(),
            want.served.get(version).copied(),
            "{file}: /metrics for {version}: {services:?}"
        );
    }
    Ok((report, seen, services))
}

#[test]
fn traefik_report_weighted_logs_the_child_service() -> Result<()> {
    let (report, seen, services) = pattern("file/weighted-sticky.yml", 60)?;
    // Cohort writes the weighted sticky cookie: each cohort on its child.
    assert!(
        seen.iter()
            .all(|s| s.cohort.as_deref() == Some(s.version.as_str()))
    );
    for route in report["routes"].as_array().context("routes")? {
        assert_eq!(route["router"], "my-app@file", "{route}");
        assert_eq!(route["mixed"], false, "{route}");
        assert_eq!(route["other_variant"], 0, "{route}");
        assert!(route["variant"].is_string(), "{route}");
    }
    // The weighted service has no request counter of its own.
    assert!(!services.contains_key("my-app-split@file"), "{services:?}");
    Ok(())
}

#[test]
fn traefik_report_flat_routers_serve_a_new_canary_visitor_on_v1_first() -> Result<()> {
    let (report, seen, _) = pattern("file/flat-routers.yml", 60)?;
    // Cohort's decision is in X-Canary, the router was chosen before it.
    let misrouted = seen
        .iter()
        .filter(|s| s.cohort.as_deref() != Some(s.version.as_str()))
        .count() as u64;
    let v2_visitors = report["cohorts"]
        .as_array()
        .context("cohorts")?
        .iter()
        .find(|c| c["name"] == "v2")
        .and_then(|c| c["visitors"].as_u64())
        .unwrap_or(0);
    // Exactly the first request of each new canary visitor.
    assert_eq!(misrouted, v2_visitors);
    let routes = report["routes"].as_array().context("routes")?;
    let v1_route = routes
        .iter()
        .find(|r| r["service"] == "my-app-v1-prod@file")
        .context("v1's route")?;
    assert_eq!(v1_route["per_cohort"]["v2"].as_u64(), Some(misrouted));
    assert_eq!(v1_route["mixed"], misrouted > 0);
    Ok(())
}
