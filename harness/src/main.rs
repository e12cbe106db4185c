//! `cohort-harness`: run http-wasm guests (Cohort's plugin above all) the
//! way Traefik 3.7 does, from the command line. See `cohort-harness --help`.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use cohort::bucket::StickyHash;
use cohort_harness::check::{self, CheckPolicy};
use cohort_harness::proxy::{Proxy, ProxyOptions};
use cohort_harness::report::{self, Source};
use cohort_harness::run::{self, RequestSpec};
use cohort_harness::simulate::{self, ChangeKind, ConfigChange, KeyMode, Progress, Simulation};
use cohort_harness::{EchoBackend, HostOptions, LogLevel, Stdio, artifacts, package, whoami};

#[derive(Debug, Parser)]
#[command(
    name = "cohort-harness",
    version,
    about = "Run http-wasm guests the way Traefik 3.7 does: one request, a reverse proxy, \
             synthetic traffic through Cohort, a compatibility check, packaging",
    long_about = None,
    after_help = "GUEST is a .wasm file, or `cohort` for the Cohort plugin this build ships.\n\
                  The host is Traefik-faithful unless --native is given.\n\n\
                  Examples:\n  \
                  cohort-harness run cohort --config '{\"variants\":[{\"name\":\"v1\"},{\"name\":\"v2\",\"weight\":10}]}'\n  \
                  cohort-harness simulate --visitors 100000 --canary 10\n  \
                  cohort-harness serve cohort --listen 127.0.0.1:8080 --upstream http://127.0.0.1:8081\n  \
                  cohort-harness check plugin.wasm\n  \
                  cohort-harness package --out dist\n  \
                  cohort-harness report --config @cohort.json /var/log/traefik/access.log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(RunArgs),
    Serve(ServeArgs),
    Simulate(SimulateArgs),
    Check(CheckArgs),
    Package(PackageArgs),
    Whoami(WhoamiArgs),
    StickyValue(StickyValueArgs),
    Report(ReportArgs),
}

/// One request through the guest against the built-in echo backend.
///
/// Prints what the backend received (`> ` lines, as `curl -v` does) and the
/// response as `curl -i` does (the echo backend's body repeats the request it
/// got). Exits non-zero, with the error, when the guest traps or refuses to
/// load.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness run cohort --config '{\"variants\":[{\"name\":\"v1\"},{\"name\":\"v2\",\"weight\":10}]}' /cart\n  \
    cohort-harness run cohort -H 'Cookie: canary=v2' http://shop.example.com/\n  \
    cohort-harness run cohort --config @cohort.json --from 10.0.0.7:5555 -v\n  \
    cohort-harness run ./my-guest.wasm --native -X POST --data 'hello' /echo")]
struct RunArgs {
    /// The guest: a .wasm file, or `cohort` for the built-in plugin.
    guest: String,
    /// The request target: a path (`/cart?x=1`) or an http:// URL (its host
    /// becomes the Host header).
    #[arg(default_value = "/")]
    uri: String,
    #[command(flatten)]
    guest_options: GuestOptions,
    /// The method (default GET, or POST with --data).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// The request body; `@file` reads a file.
    #[arg(short = 'd', long, value_name = "BODY", allow_hyphen_values = true)]
    data: Option<String>,
    /// The client address the guest sees (get_source_addr).
    #[arg(long, value_name = "IP:PORT")]
    from: Option<String>,
    /// Also print fuel, host calls, memory and the guest's log on stderr.
    #[arg(short, long)]
    verbose: bool,
}

/// How a guest is loaded.
#[derive(Debug, Args)]
struct GuestOptions {
    /// The guest's configuration: JSON, or `@file` holding JSON (what the
    /// middleware's section of Traefik's dynamic configuration says).
    #[arg(long, value_name = "JSON|@FILE")]
    config: Option<String>,
    /// The guest's configuration as raw bytes: TEXT, or `@file` holding any
    /// bytes, delivered as they are in either mode (http-wasm-host-go passes
    /// any bytes; Traefik's are always JSON).
    #[arg(long, value_name = "TEXT|@FILE", conflicts_with = "config")]
    config_raw: Option<String>,
    /// A plain host instead of a Traefik-faithful one: configuration types
    /// kept, real randomness and clocks, bulk memory allowed.
    #[arg(long)]
    native: bool,
    /// The lowest level of the guest's log that is recorded and printed:
    /// debug, info, warn, error or none. A plain host answers the guest's
    /// `log_enabled` by it too (Traefik's says yes to every level).
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    log_level: Option<LogLevel>,
    /// Pass the guest's WASI stdout and stderr through to this process's
    /// (Traefik discards them).
    #[arg(long)]
    guest_stdio: bool,
}

impl GuestOptions {
    fn host_options(&self) -> Result<HostOptions> {
        let mut options = HostOptions::default().faithful(!self.native);
        if let Some(config) = &self.config {
            options = options.config_json(config_arg(config)?);
        }
        if let Some(raw) = &self.config_raw {
            options = options.config_raw(config_raw_arg(raw)?);
        }
        if let Some(level) = self.log_level {
            options = options.log_level(level);
        }
        if self.guest_stdio {
            options = options.stdio(Stdio::Inherit);
        }
        Ok(options)
    }
}

/// `debug`, `info`, `warn`, `error` or `none`.
fn parse_log_level(text: &str) -> Result<LogLevel, String> {
    [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::None,
    ]
    .into_iter()
    .find(|level| level.to_string().eq_ignore_ascii_case(text))
    .ok_or_else(|| format!("{text:?} is not a log level (debug, info, warn, error, none)"))
}

/// `--config-raw`: the text itself, or the bytes of `@file`.
fn config_raw_arg(arg: &str) -> Result<Vec<u8>> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading --config-raw {path}")),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

fn config_arg(arg: &str) -> Result<Value> {
    run::parse_config_arg(arg).context("reading --config")
}

/// A reverse proxy running the guest in front of a real HTTP upstream.
///
/// HTTP/1.1 with keep-alive on both sides. The guest's changes to the
/// request are forwarded; the response headers it sets before next come
/// first, then the upstream's (every Set-Cookie kept). A guest trap is a
/// 500 with the error text. Listens on loopback only unless
/// --allow-public.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness whoami --listen 127.0.0.1:8081 --name v1 &\n  \
    cohort-harness serve cohort --listen 127.0.0.1:8080 --upstream http://127.0.0.1:8081 \\\n      \
    --config '{\"variants\":[{\"name\":\"v1\"},{\"name\":\"v2\",\"weight\":10}]}'\n  \
    curl -i http://127.0.0.1:8080/")]
struct ServeArgs {
    /// The guest: a .wasm file, or `cohort` for the built-in plugin.
    guest: String,
    /// Where to listen.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The upstream, `http://host:port` (optionally with a path prefix).
    #[arg(long, value_name = "URL")]
    upstream: String,
    #[command(flatten)]
    guest_options: GuestOptions,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    allow_public: bool,
    /// Worker threads.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Take the guest's source address from the client's X-Forwarded-For
    /// (first entry) and keep its X-Forwarded-* headers.
    #[arg(long)]
    trust_forwarded_for: bool,
    /// Print the guest's log lines (debug and up) on stderr.
    #[arg(short, long)]
    verbose: bool,
}

/// Synthetic visitors through Cohort's plugin: split, stickiness, ramps.
///
/// Every visitor has its own address and cookie jar and makes --requests
/// requests; each request's cohort is the X-Canary header the backend
/// received. Prints the split against the configured weights (deviation in
/// binomial standard errors), visitors that changed cohort, for a
/// configuration change the from -> to movement matrix, instances and fuel.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness simulate --visitors 100000 --canary 10\n  \
    cohort-harness simulate --canary 10 --ramp-to 30 --stickiness reevaluate\n  \
    cohort-harness simulate --canary 10 --rollback --requests 4 --change-after 2\n  \
    cohort-harness simulate --config @cohort.json --key header --json\n  \
    cohort-harness simulate --canary 5 --change-after 1 --change-config @next.json")]
struct SimulateArgs {
    /// The guest (default: the Cohort plugin this build ships).
    #[arg(long, value_name = "PATH")]
    plugin: Option<PathBuf>,
    /// Cohort's configuration: JSON or `@file`.
    #[arg(long, value_name = "JSON|@FILE", conflicts_with = "canary")]
    config: Option<String>,
    /// Shorthand for variants v1 and v2 with v2 at PCT % (default 10).
    #[arg(long, value_name = "PCT")]
    canary: Option<f64>,
    /// Number of visitors.
    #[arg(long, default_value_t = 10_000)]
    visitors: usize,
    /// Requests per visitor.
    #[arg(long, default_value_t = 3)]
    requests: usize,
    /// Assignment key: the visitor-id cookie Cohort sets (configuration as
    /// given), an X-User-Id header per visitor, or the client IP.
    #[arg(long, value_enum, default_value_t = KeyArg::Visitor)]
    key: KeyArg,
    /// Set the configuration's stickiness (both before and after a change).
    #[arg(long, value_enum)]
    stickiness: Option<StickinessArg>,
    /// Change the configuration after each visitor's R-th request (default:
    /// half of --requests, at least 1).
    #[arg(long, value_name = "R")]
    change_after: Option<usize>,
    /// The configuration after the change: JSON or `@file`.
    #[arg(long, value_name = "JSON|@FILE", group = "change")]
    change_config: Option<String>,
    /// Change: ramp the canary (first non-default variant) to PCT %.
    #[arg(long, value_name = "PCT", group = "change")]
    ramp_to: Option<f64>,
    /// Change: drain the canary (no new visitors, holders stay).
    #[arg(long, group = "change")]
    drain: bool,
    /// Change: disable the canary (holders go back to the default).
    #[arg(long, group = "change")]
    rollback: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// A plain host instead of a Traefik-faithful one.
    #[arg(long)]
    native: bool,
    /// Threads sending requests (default: cores, at most 4).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyArg {
    Visitor,
    Header,
    Ip,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StickinessArg {
    Keep,
    Reevaluate,
}

/// The compatibility report: would the guest load and run in Traefik 3.7?
///
/// Exits 1 when the guest would be refused (Traefik-faithful judgement;
/// with --native only ABI errors refuse).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness check cohort\n  \
    cohort-harness check target/wasm32-wasip1/release/my_guest.wasm")]
struct CheckArgs {
    /// The guest: a .wasm file, or `cohort` for the built-in plugin.
    guest: String,
    /// The configuration its start-up reads; `--native` judges as a plain
    /// host: Traefik-only refusals become warnings.
    #[command(flatten)]
    guest_options: GuestOptions,
}

/// Write the Traefik plugin-catalog artifact and a Kubernetes ConfigMap.
///
/// `cohort-<version>.zip` holding the shipped `plugin.wasm` (bulk memory
/// lowered) and `.traefik.yml`, the loose `plugin.wasm`, and
/// `cohort-<version>-configmap.yaml`: both files as `binaryData` of a
/// ConfigMap to mount at `/plugins-local/src/github.com/cohort-canary/cohort`
/// (recipes/helm/values.yml installs it with Traefik's Helm
/// chart, no plugin catalog needed).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness package\n  \
    cohort-harness package --out /tmp/dist && unzip -l /tmp/dist/cohort-*.zip\n  \
    cohort-harness package --namespace traefik && kubectl apply --server-side -f dist/cohort-*-configmap.yaml")]
struct PackageArgs {
    /// The directory to write into.
    #[arg(long, value_name = "DIR", default_value = "dist")]
    out: PathBuf,
    /// The ConfigMap's name.
    #[arg(long, value_name = "NAME", default_value = package::CONFIGMAP_NAME)]
    configmap_name: String,
    /// The ConfigMap's namespace (default: none, `kubectl -n` decides).
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
}

/// What Cohort did on real traffic, from Traefik's JSON access log.
///
/// Reads the log of recipes/static/access-log.yml (`format: json`, the
/// cohort header kept; Traefik logs the request headers as Cohort left
/// them) and prints: the split per cohort against the configured weights
/// (visitors by their first request, and fresh assignments when the debug
/// header is logged, deviation in binomial standard errors); statuses per
/// cohort; which cohorts each router and service served; visitors who
/// changed cohort, with examples; and the split over time as a chart.
/// Files are read in the order given (rotated ones oldest first; gzip is
/// read through), `-` is standard input. Lines that are not access-log
/// entries are counted and skipped.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness report --config @cohort.json /var/log/traefik/access.log\n  \
    cohort-harness report --config @cohort.json access.log.2.gz access.log.1 access.log\n  \
    kubectl logs deploy/traefik | cohort-harness report --key ip-ua --every 5m -\n  \
    cohort-harness report --key header:X-User-Id --router my-app --since 2026-12-01T10:00:00Z access.log\n  \
    cohort-harness report --config @cohort.json --entry-point websecure --every 1m access.log\n  \
    cohort-harness report --config @cohort.json --json access.log | jq '.cohorts[] | {name, visitors_pct}'\n\n\
    The configuration is the middleware's (JSON, or @file holding JSON): it names the variants and\n\
    their weights, the cohort header (`header`, default X-Canary) and `debugHeader`. Without it the\n\
    cohort is read from X-Canary and nothing is expected.")]
struct ReportArgs {
    /// Access-log files, oldest first; `-` reads standard input.
    #[arg(required = true, value_name = "ACCESS_LOG")]
    logs: Vec<String>,
    /// Cohort's configuration: JSON, or `@file` holding JSON (the
    /// middleware's section of Traefik's dynamic configuration).
    #[arg(long, value_name = "JSON|@FILE")]
    config: Option<String>,
    /// How visitors are told apart: `header:<Name>` (a user id the log
    /// keeps), `cookie:<name>` (needs the Cookie header kept, which the
    /// recipe redacts), `ip-ua` (client IP and User-Agent) or `ip`.
    /// Default: the configuration's first `header:` key, else `ip-ua`.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Width of the timeline's buckets: 30s, 1m, 5m, 1h, 1h30m, 1d
    /// (default: chosen for at most 30 rows).
    #[arg(long, value_name = "DURATION")]
    every: Option<String>,
    /// Only entries whose RouterName contains this.
    #[arg(long, value_name = "TEXT")]
    router: Option<String>,
    /// Only entries of this entry point (entryPointName, e.g. web).
    #[arg(long, value_name = "NAME")]
    entry_point: Option<String>,
    /// Only entries that started at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only entries that started before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Visitors who changed cohort to show as examples.
    #[arg(long, value_name = "N", default_value_t = 5)]
    examples: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// A progress line on stderr even when it is not a terminal.
    #[arg(long)]
    progress: bool,
}

/// A whoami-like demo backend: answers every request with its name, pod and
/// the request it received.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness whoami --listen 127.0.0.1:8081 --name v1\n  \
    cohort-harness whoami --listen 127.0.0.1:8082 --name v2 --pod v2-a")]
struct WhoamiArgs {
    /// Where to listen.
    #[arg(long, value_name = "IP:PORT")]
    listen: SocketAddr,
    /// The version it answers as (`Name:`).
    #[arg(long)]
    name: String,
    /// The pod name (`Hostname:`; default `<name>-0`).
    #[arg(long)]
    pod: Option<String>,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    allow_public: bool,
}

/// Traefik's sticky-cookie value for weighted children or servers.
///
/// The value Traefik writes for a name exactly as it hashes it: a weighted
/// child as written under `weighted.services` (file provider: no `@file`
/// unless written so; a Kubernetes TraefikService child is
/// `<namespace>-<service>-<port>`), or a server's URL. Traefik 3.3.4 and
/// later write the first 16 hex digits of SHA-256 (`weightedSticky.hash:
/// sha256`); earlier versions FNV-1 64-bit in hex (`hash: fnv`). Without
/// `--traefik` both are printed. Use it for `variants[].stickyValue`, or to
/// check `variants[].service`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cohort-harness sticky-value v1 v2\n  \
    cohort-harness sticky-value --traefik 3.3.3 v1 v2\n  \
    cohort-harness sticky-value apps-my-app-v2-prod-80 http://10.0.0.7:8080")]
struct StickyValueArgs {
    /// Names of weighted children or server URLs.
    #[arg(required = true)]
    names: Vec<String>,
    /// The Traefik version in front (e.g. 3.3.3): print only the value it
    /// writes, as `VALUE  NAME`.
    #[arg(long, value_name = "VERSION", value_parser = sticky_hash_of_version)]
    traefik: Option<StickyHash>,
}

/// The sticky hash a Traefik version writes: FNV before 3.3.4.
fn sticky_hash_of_version(version: &str) -> Result<StickyHash, String> {
    let parts: Vec<u32> = version
        .trim_start_matches('v')
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{version:?} is not a version like 3.3.3"))?;
    match parts[..] {
        [major, minor, patch] if major >= 2 => Ok(if (major, minor, patch) < (3, 3, 4) {
            StickyHash::Fnv
        } else {
            StickyHash::Sha256
        }),
        _ => Err(format!("{version:?} is not a Traefik version like 3.3.3")),
    }
}

fn sticky_values(args: &StickyValueArgs) {
    match args.traefik {
        Some(hash) => {
            for name in &args.names {
                println!("{}  {name}", hash.value(name));
            }
        }
        None => {
            println!("{:<18}{:<18}name", "sha256 (>=3.3.4)", "fnv (<3.3.4)");
            for name in &args.names {
                let [sha, fnv] = StickyHash::ALL.map(|h| h.value(name));
                println!("{sha:<18}{fnv:<18}{name}");
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            // The chain without a backtrace: `error: what; caused by: why`.
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {}", cause.to_string().replace('\n', "\n    "));
            }
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(args) => run_one(&args),
        Command::Serve(args) => serve(&args),
        Command::Simulate(args) => simulate(&args),
        Command::Check(args) => check(&args),
        Command::Package(args) => package(&args),
        Command::Whoami(args) => whoami(&args),
        Command::StickyValue(args) => {
            sticky_values(&args);
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => report(&args),
    }
}

fn load(guest: &str, options: HostOptions) -> Result<cohort_harness::Guest> {
    let wasm = run::read_guest(guest)?;
    run::load_guest(&wasm, options).with_context(|| format!("loading the guest {guest}"))
}

fn run_one(args: &RunArgs) -> Result<ExitCode> {
    let request = RequestSpec {
        method: args.method.clone(),
        uri: args.uri.clone(),
        headers: args.headers.clone(),
        data: args.data.clone(),
        from: args.from.clone(),
    }
    .build()
    .context("building the request")?;
    let guest = load(&args.guest, args.guest_options.host_options()?)?;
    let backend = EchoBackend::new();
    let exchange = guest
        .handle(request, &backend)
        .context("running the request")?;

    let mut out = std::io::stdout().lock();
    match &exchange.backend_request {
        Some(sent) => write!(out, "{}", run::render_request(sent))?,
        None => writeln!(
            out,
            "* the guest did not call next: the backend received nothing"
        )?,
    }
    write!(out, "{}", run::render_response(&exchange.response))?;
    out.flush()?;

    if args.verbose {
        let mut err = std::io::stderr().lock();
        let calls: Vec<String> = exchange
            .host_calls
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(import, n)| format!("{import} {n}"))
            .collect();
        writeln!(err, "* fuel: {}", exchange.fuel)?;
        writeln!(
            err,
            "* host calls: {} ({})",
            exchange.host_calls.total(),
            calls.join(", ")
        )?;
        writeln!(
            err,
            "* memory: {} bytes ({} pages)",
            exchange.memory_bytes,
            exchange.memory_bytes / 65_536
        )?;
        writeln!(
            err,
            "* instance: #{}{}, start-up fuel {}",
            exchange.instance.id,
            if exchange.instance.fresh {
                " (started for this request)"
            } else {
                ""
            },
            exchange.instance.start_fuel
        )?;
        let features = exchange.features.to_string();
        writeln!(
            err,
            "* features: {}",
            if features.is_empty() {
                "none"
            } else {
                &features
            }
        )?;
    }
    if args.verbose || args.guest_options.log_level.is_some() {
        let mut err = std::io::stderr().lock();
        for line in &exchange.logs {
            writeln!(err, "* guest log: {line}")?;
        }
    }
    if let Some(error) = &exchange.error {
        bail!("the guest failed: {error}");
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let mut host = args.guest_options.host_options()?;
    let level = match args.guest_options.log_level {
        Some(level) => level,
        None if args.verbose => LogLevel::Debug,
        None => LogLevel::Warn,
    };
    host = host
        .log_level(level)
        .log_sink(|line| eprintln!("guest log: {line}"));
    let guest = load(&args.guest, host)?;
    let mut options = ProxyOptions::new(args.upstream.clone())
        .listen(args.listen)
        .workers(args.workers);
    options.allow_public = args.allow_public;
    options.trust_forwarded_for = args.trust_forwarded_for;
    let proxy = Proxy::start(guest, options).context("starting the proxy")?;
    eprintln!(
        "cohort-harness: {} on {} -> {} ({} host)",
        args.guest,
        proxy.url(),
        args.upstream,
        if args.guest_options.native {
            "native"
        } else {
            "Traefik-faithful"
        }
    );
    proxy.wait();
    Ok(ExitCode::SUCCESS)
}

fn simulate(args: &SimulateArgs) -> Result<ExitCode> {
    let wasm = match &args.plugin {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("reading the plugin {}", path.display()))?
        }
        None => std::fs::read(artifacts::PLUGIN_WASM)
            .with_context(|| format!("reading the built-in plugin {}", artifacts::PLUGIN_WASM))?,
    };
    let mut config = match &args.config {
        Some(config) => config_arg(config)?,
        None => Simulation::canary_config(args.canary.unwrap_or(10.0)).context("--canary")?,
    };
    let stickiness = args.stickiness.map(|s| match s {
        StickinessArg::Keep => "keep",
        StickinessArg::Reevaluate => "reevaluate",
    });
    if let (Some(s), Value::Object(map)) = (stickiness, &mut config) {
        map.insert("stickiness".into(), Value::from(s));
    }
    let kind = if let Some(next) = &args.change_config {
        let mut next = run::parse_config_arg(next).context("reading --change-config")?;
        if let (Some(s), Value::Object(map)) = (stickiness, &mut next) {
            map.entry("stickiness").or_insert_with(|| Value::from(s));
        }
        Some(ChangeKind::Config(next))
    } else if let Some(pct) = args.ramp_to {
        Some(ChangeKind::RampTo(pct))
    } else if args.drain {
        Some(ChangeKind::Drain)
    } else if args.rollback {
        Some(ChangeKind::Rollback)
    } else {
        None
    };
    if kind.is_none() && args.change_after.is_some() {
        bail!("--change-after needs a change: --change-config, --ramp-to, --drain or --rollback");
    }

    let mut sim = Simulation::new(wasm, config.clone())
        .visitors(args.visitors)
        .requests(args.requests)
        .key(match args.key {
            KeyArg::Visitor => KeyMode::Visitor,
            KeyArg::Header => KeyMode::Header,
            KeyArg::Ip => KeyMode::Ip,
        })
        .faithful(!args.native);
    if let Some(threads) = args.threads {
        sim = sim.threads(threads);
    }
    if let Some(kind) = &kind {
        let (next, label) =
            simulate::derive_change(&config, kind).context("preparing the configuration change")?;
        sim = sim.change(ConfigChange {
            after: args.change_after.unwrap_or((args.requests / 2).max(1)),
            config: next,
            label,
        });
    }

    let started = Instant::now();
    let total = (args.visitors as u64).saturating_mul(args.requests as u64);
    let report_progress = |p: Progress| {
        eprintln!(
            "simulate: {:>3}% ({} of {} requests, {:.1} s)",
            p.done * 100 / p.total.max(1),
            p.done,
            p.total,
            started.elapsed().as_secs_f64()
        );
    };
    let progress: Option<&(dyn Fn(Progress) + Sync)> = if total >= 20_000 {
        Some(&report_progress)
    } else {
        None
    };
    let report = sim.run(progress).context("simulating")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    if progress.is_some() {
        eprintln!("simulate: done in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    let wasm = run::read_guest(&args.guest)?;
    let report = check::inspect(&wasm).with_context(|| format!("reading {}", args.guest))?;
    let policy = if args.guest_options.native {
        CheckPolicy::Warn
    } else {
        CheckPolicy::Refuse
    };
    let rendered = report.render(policy);
    if !report.accepts(policy) {
        print!("{rendered}");
        return Ok(ExitCode::FAILURE);
    }
    // The module passes: start it, as http-wasm-host-go does when it loads
    // a guest (and `run` does), so a guest whose start-up traps or exits is
    // refused here too.
    let findings = rendered
        .strip_suffix("verdict: loads\n")
        .unwrap_or(&rendered);
    let options = args.guest_options.host_options()?.check(policy);
    match run::load_guest(&wasm, options) {
        Ok(_) => {
            print!("{findings}start-up: ok\nverdict: loads\n");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let error = error.to_string().replace('\n', "\n  ");
            print!("{findings}start-up: failed: {error}\nverdict: refused\n");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn package(args: &PackageArgs) -> Result<ExitCode> {
    let wasm = std::fs::read(artifacts::PLUGIN_WASM)
        .with_context(|| format!("reading the built plugin {}", artifacts::PLUGIN_WASM))?;
    let written = package::write_dist_named(
        &args.out,
        &wasm,
        &args.configmap_name,
        args.namespace.as_deref(),
    )
    .context("writing the package")?;
    println!(
        "{}  {} bytes (plugin.wasm {} bytes, .traefik.yml {} bytes)",
        written.zip.display(),
        written.zip_len,
        written.wasm_len,
        written.manifest_len
    );
    println!("{}  {} bytes", written.wasm.display(), written.wasm_len);
    let held = written.wasm_len + written.manifest_len;
    println!(
        "{}  {} bytes: ConfigMap {} holding {} bytes, {:.0} % of Kubernetes' 1 MiB limit",
        written.configmap.display(),
        written.configmap_len,
        args.configmap_name,
        held,
        100.0 * held as f64 / package::CONFIGMAP_LIMIT as f64
    );
    Ok(ExitCode::SUCCESS)
}

fn report(args: &ReportArgs) -> Result<ExitCode> {
    let mut options = report::Options {
        config: args.config.as_deref().map(config_arg).transpose()?,
        key: args.key.as_deref().map(str::parse).transpose()?,
        router: args.router.clone(),
        entry_point: args.entry_point.clone(),
        examples: args.examples,
        ..report::Options::default()
    };
    if let Some(every) = &args.every {
        options = options.every(every)?;
    }
    options = options.window(args.since.as_deref(), args.until.as_deref())?;
    let sources: Vec<Source> = args.logs.iter().map(|l| Source::from_arg(l)).collect();

    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = None::<Instant>;
    let mut shown = false;
    let mut show = |p: &report::Progress| {
        // On a terminal only for logs that take a while; with --progress always.
        let every = if terminal { 0.2 } else { 1.0 };
        if (!args.progress && started.elapsed().as_secs_f64() < 0.5)
            || last.is_some_and(|t| t.elapsed().as_secs_f64() < every)
        {
            return;
        }
        last = Some(Instant::now());
        let done = match p.total_bytes {
            Some(total) if total > 0 => format!(
                "{:>3}% of {:.1} MB",
                p.bytes * 100 / total,
                total as f64 / 1e6
            ),
            _ => format!("{:.1} MB", p.bytes as f64 / 1e6),
        };
        let text = format!(
            "report: {done}, {} lines, {:.1} s ({})",
            p.lines,
            started.elapsed().as_secs_f64(),
            p.source
        );
        if terminal {
            eprint!("\r\x1b[2K{text}");
        } else {
            eprintln!("{text}");
        }
        shown = true;
    };
    let progress: Option<&mut dyn FnMut(&report::Progress)> = if terminal || args.progress {
        Some(&mut show)
    } else {
        None
    };
    let result = report::read(&sources, options, progress);
    if shown && terminal {
        eprint!("\r\x1b[2K");
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(ExitCode::SUCCESS)
}

fn whoami(args: &WhoamiArgs) -> Result<ExitCode> {
    if !args.listen.ip().is_loopback() && !args.allow_public {
        bail!(
            "refusing to listen on {}: not a loopback address (use 127.0.0.1, or --allow-public)",
            args.listen
        );
    }
    let pod_name = args
        .pod
        .clone()
        .unwrap_or_else(|| format!("{}-0", args.name));
    let pod = whoami::Pod::bind(args.listen, &args.name, &pod_name).context("starting whoami")?;
    eprintln!(
        "whoami {} (pod {}) on {}",
        pod.name(),
        pod.hostname(),
        pod.url()
    );
    loop {
        std::thread::park();
    }
}
