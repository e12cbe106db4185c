//! A real Traefik with Cohort loaded as a local wasm plugin, for the
//! end-to-end tests.
//!
//! [`Traefik::start`] lays out a temporary directory the way Traefik wants a
//! local plugin:
//!
//! ```text
//! <tmp>/traefik.yml                                   static config (from recipes/static/local-plugin.yml)
//! <tmp>/plugins-local/src/<module>/.traefik.yml       the repo's manifest
//! <tmp>/plugins-local/src/<module>/plugin.wasm        PLUGIN_WASM
//! <tmp>/dynamic/config.yml                            the test's dynamic config
//! <tmp>/dynamic/fixture.yml                           the fixture's generation marker
//! <tmp>/traefik.log                                   Traefik's log (DEBUG)
//! ```
//!
//! and runs Traefik in it, on 127.0.0.1 only. The middleware alias in
//! dynamic configs is `cohort`: `http.middlewares.<name>.plugin.cohort: {...}`.
//!
//! Which Traefik: [`Options::binary`], by default the *current* binary
//! ([`binary`]): the one a [`with_binary`] call on this thread chose, else
//! `$COHORT_TRAEFIK` (any version, read from `traefik version`), else
//! `traefik` on PATH, which must be [`TRAEFIK_VERSION`]. Tests ask the current
//! binary what it supports ([`version`], [`supports_multi_layer`],
//! [`weighted_sticky_hash`]) and skip a pattern it lacks, loudly
//! ([`skip_without_multi_layer`]).
//!
//! Readiness and reloads are detected without timing guesses: the fixture
//! adds a router `Path(/__fixture/generation/N) -> noop@internal` (which
//! answers 418) on the admin entry point next to every dynamic config it
//! writes, and waits until generation N answers. The marker file is written
//! after the test's file, so once N answers, the test's config is live.
//!
//! The process is killed when the fixture is dropped. After a panicking test,
//! or with `COHORT_KEEP_TRAEFIK=1`, the directory is kept and its path
//! printed, so its log can be read.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// The Traefik version the tests are written against: `traefik` on PATH
/// must be this one.
pub const TRAEFIK_VERSION: &str = "3.7.15";

/// Set this variable to the path of another Traefik binary to run the
/// end-to-end tests against it (any 3.x; its version is read from
/// `traefik version`, see `scripts/traefik-matrix.sh`).
pub const BINARY_ENV: &str = "COHORT_TRAEFIK";

/// The plugin alias in `experimental.localPlugins` and in dynamic configs.
pub const ALIAS: &str = "cohort";

/// The module name (directory under `plugins-local/src/`).
pub const MODULE: &str = "github.com/cohort-canary/cohort";

/// How long Traefik may take to come up or to apply a new dynamic config.
/// Generous on purpose: the machine is shared. Reached only on failure.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Set this variable to keep every fixture's directory (config, log) after
/// the test; it is always kept when the test panics.
pub const KEEP_ENV: &str = "COHORT_KEEP_TRAEFIK";

/// What to load into Traefik.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Traefik binary to run: a path, or `traefik` (looked up on PATH,
    /// and then it must be [`TRAEFIK_VERSION`]). Defaults to the current
    /// binary ([`binary`]).
    pub binary: PathBuf,
    /// The guest to install as `plugin.wasm`.
    pub wasm: PathBuf,
    /// The manifest to install as `.traefik.yml`.
    pub manifest: PathBuf,
    /// `log.level` (`DEBUG`, `INFO`, ...).
    pub log_level: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            binary: current_path(),
            wasm: PathBuf::from(cohort_harness::artifacts::PLUGIN_WASM),
            manifest: repo_root().join(".traefik.yml"),
            log_level: "DEBUG",
        }
    }
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// A running Traefik; killed on drop.
pub struct Traefik {
    binary: Binary,
    dir: PathBuf,
    child: Child,
    web: SocketAddr,
    admin: SocketAddr,
    generation: u64,
    probe: ureq::Agent,
}

impl Traefik {
    /// Starts Traefik with Cohort's `plugin.wasm` and `dynamic` (YAML) as its
    /// file-provider config; returns once that config answers.
    pub fn start(dynamic: &str) -> Result<Self> {
        Self::start_with(&Options::default(), dynamic)
    }

    /// Like [`Traefik::start`], with another guest or manifest.
    pub fn start_with(options: &Options, dynamic: &str) -> Result<Self> {
        Self::start_with_static(options, "", dynamic)
    }

    /// Like [`Traefik::start_with`], with `extra_static` (YAML, top-level
    /// keys such as `accessLog:`) appended to the fixture's static config.
    pub fn start_with_static(options: &Options, extra_static: &str, dynamic: &str) -> Result<Self> {
        let binary = Binary::at(&options.binary)?;
        // The free ports are found by binding and releasing them, so another
        // process may take one first: then Traefik cannot listen, and the
        // start is tried again on new ports.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::try_start(&binary, options, extra_static, dynamic) {
                Ok(traefik) => return Ok(traefik),
                Err(e) if format!("{e:#}").contains("address already in use") => {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("Traefik did not start")))
    }

    fn try_start(
        binary: &Binary,
        options: &Options,
        extra_static: &str,
        dynamic: &str,
    ) -> Result<Self> {
        let dir = fresh_dir()?;
        let plugin_dir = dir.join("plugins-local/src").join(MODULE);
        fs::create_dir_all(&plugin_dir)?;
        fs::copy(&options.manifest, plugin_dir.join(".traefik.yml")).with_context(|| {
            format!("copying the plugin manifest {}", options.manifest.display())
        })?;
        fs::copy(&options.wasm, plugin_dir.join("plugin.wasm"))
            .with_context(|| format!("copying the guest {}", options.wasm.display()))?;
        fs::create_dir_all(dir.join("dynamic"))?;

        let web = free_port()?;
        let admin = free_port()?;
        fs::write(
            dir.join("traefik.yml"),
            format!(
                "{}{extra_static}",
                static_config(web, admin, options.log_level)?
            ),
        )?;

        let stdout = fs::File::create(dir.join("traefik.out"))?;
        let stderr = stdout.try_clone()?;
        let child = Command::new(&binary.path)
            .arg("--configFile=traefik.yml")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (run `bash scripts/setup.sh` to install Traefik)",
                    binary.path.display()
                )
            })?;

        let probe = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut traefik = Self {
            binary: binary.clone(),
            dir,
            child,
            web,
            admin,
            generation: 0,
            probe,
        };
        traefik.update_dynamic(dynamic)?;
        Ok(traefik)
    }

    /// `http://127.0.0.1:<port>` of the `web` entry point.
    pub fn url(&self) -> String {
        format!("http://{}", self.web)
    }

    /// `http://127.0.0.1:<port>` of the `admin` entry point (ping and the
    /// fixture's generation marker; a test may route more to it).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Replaces the dynamic config and waits until Traefik serves it.
    ///
    /// A config Traefik rejects never becomes live: this then fails with the
    /// log's errors.
    pub fn update_dynamic(&mut self, yaml: &str) -> Result<()> {
        let generation = self.generation + 1;
        let dynamic = self.dir.join("dynamic");
        let log_before = self.log().len();
        // Written beside the watched directory, then renamed in: Traefik
        // never reads a half-written file.
        write_atomically(&self.dir, &dynamic.join("config.yml"), yaml)?;
        write_atomically(
            &self.dir,
            &dynamic.join("fixture.yml"),
            &marker_config(generation),
        )?;
        self.wait_for_generation(generation, log_before)?;
        self.generation = generation;
        Ok(())
    }

    /// The version of the Traefik running.
    pub fn version(&self) -> Version {
        self.binary.version
    }

    /// The process id of `traefik`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Traefik's resident set size now (`VmRSS` in `/proc/<pid>/status`), in bytes.
    pub fn rss_bytes(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("reading Traefik's /proc status")?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no VmRSS in Traefik's /proc status"))?;
        Ok(kb * 1024)
    }

    /// The directory Traefik runs in (its config, plugins and logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Traefik's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("traefik.log")).unwrap_or_default()
    }

    /// The log's `ERR` lines, less Traefik's own noise: 3.0–3.3 log
    /// "use of closed network connection" at `ERR` when a listener closes
    /// on shutdown ([`is_shutdown_noise`]).
    pub fn errors(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(" ERR ") && !is_shutdown_noise(l))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until generation `generation` answers; `log_before` is the
    /// log's length when its files were written.
    fn wait_for_generation(&mut self, generation: u64, log_before: usize) -> Result<()> {
        let url = format!("http://{}/__fixture/generation/{generation}", self.admin);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "Traefik exited ({status}) before serving generation {generation}:\n{}",
                    self.diagnostics()
                );
            }
            let log = self.log();
            // The file provider refuses the whole directory when a file does
            // not parse (e.g. a field this Traefik does not know), so the
            // marker will never answer: say so now, not after the timeout.
            if log.get(log_before..).is_some_and(|new| {
                new.lines().any(|l| {
                    l.contains("Error while building configuration")
                        && l.contains("dynamic/config.yml")
                })
            }) {
                bail!(
                    "Traefik {} refused the dynamic config of generation {generation}:\n{}",
                    self.binary.version,
                    self.diagnostics()
                );
            }
            if log.contains("Plugins are disabled") {
                bail!(
                    "Traefik disabled its plugins (bad manifest or guest):\n{}",
                    self.diagnostics()
                );
            }
            if let Ok(response) = self.probe.get(&url).call()
                && response.status().as_u16() == 418
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Traefik did not serve dynamic config generation {generation} within {:?}:\n{}",
                    READY_TIMEOUT,
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The directory, the process output and the log's last lines.
    fn diagnostics(&self) -> String {
        let out = fs::read_to_string(self.dir.join("traefik.out")).unwrap_or_default();
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "directory: {}\n--- stdout/stderr ---\n{out}\n--- errors ---\n{}\n--- log tail ---\n{tail}",
            self.dir.display(),
            self.errors().join("\n")
        )
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() || std::env::var_os(KEEP_ENV).is_some() {
            eprintln!(
                "Traefik's directory kept for inspection: {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether `line` (of Traefik's log) is an `ERR` Traefik 3.0–3.3 write
/// when a listener closes on shutdown ("accept tcp ...: use of closed
/// network connection"), not a failure of anything under test.
pub fn is_shutdown_noise(line: &str) -> bool {
    line.contains("use of closed network connection")
}

/// A Traefik version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// `"3.7.15"` (a `v` prefix is allowed).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().trim_start_matches('v').split('.');
        let mut next = || parts.next()?.parse::<u32>().ok();
        let version = Self(next()?, next()?, next()?);
        Some(version)
    }

    /// Multi-layer routing (routers with `parentRefs`): Traefik 3.6 and later.
    /// An older Traefik refuses a whole dynamic file that has `parentRefs`.
    pub fn supports_multi_layer(self) -> bool {
        self >= Self(3, 6, 0)
    }

    /// How this Traefik writes a weighted service's sticky cookie value:
    /// `fnv` (FNV-1 64 of the child's name, `%x`) before 3.3.4, `sha256`
    /// (first 16 hex digits) from 3.3.4 on. Cohort's `weightedSticky.hash`.
    pub fn weighted_sticky_hash(self) -> &'static str {
        if self < Self(3, 3, 4) {
            "fnv"
        } else {
            "sha256"
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A Traefik binary and the version it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// A path, or `traefik` for the one on PATH.
    pub path: PathBuf,
    pub version: Version,
}

impl Binary {
    /// The binary at `path` (or `traefik` on PATH, which must then be
    /// [`TRAEFIK_VERSION`]), with its version. Asked once per path.
    pub fn at(path: &Path) -> Result<Self> {
        static SEEN: Mutex<BTreeMap<PathBuf, Result<Version, String>>> =
            Mutex::new(BTreeMap::new());
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        let version = seen
            .entry(path.to_path_buf())
            .or_insert_with(|| probe_version(path))
            .clone()
            .map_err(|e| anyhow!(e))?;
        Ok(Self {
            path: path.to_path_buf(),
            version,
        })
    }
}

/// `traefik version`'s `Version:` line, checked against
/// [`TRAEFIK_VERSION`] for the PATH lookup.
fn probe_version(path: &Path) -> Result<Version, String> {
    let on_path = path == Path::new("traefik");
    let hint = if on_path {
        format!(
            "Traefik {TRAEFIK_VERSION} must be on PATH for the end-to-end tests (or \
             ${BINARY_ENV} the path of another one); run `bash scripts/setup.sh`"
        )
    } else {
        "install it with `bash scripts/traefik-install.sh VERSION`".to_owned()
    };
    let output = Command::new(path)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{} version` ({e}): {hint}", path.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let reported = text
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(str::trim)
        .unwrap_or_default();
    let version = Version::parse(reported).ok_or_else(|| {
        format!(
            "`{} version` reports {reported:?}, not a version: {hint}",
            path.display()
        )
    })?;
    if on_path && reported != TRAEFIK_VERSION {
        return Err(format!(
            "`traefik version` reports {reported:?}, the tests need {TRAEFIK_VERSION} on PATH \
             (or ${BINARY_ENV} set to another Traefik binary); run `bash scripts/setup.sh`"
        ));
    }
    Ok(version)
}

thread_local! {
    static CHOSEN: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// The path of the current binary: [`with_binary`]'s on this thread, else
/// `$COHORT_TRAEFIK`, else `traefik` (PATH).
fn current_path() -> PathBuf {
    CHOSEN
        .with(|c| c.borrow().clone())
        .or_else(|| std::env::var_os(BINARY_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("traefik"))
}

/// The current Traefik binary (see the module's doc) and its version.
pub fn binary() -> Result<Binary> {
    Binary::at(&current_path())
}

/// Runs `f` with `path` as the current Traefik binary of this thread: every
/// [`Options::default`], [`version`] and the like inside `f` use it. This is
/// how one test runs the scenarios of others against several Traefiks.
pub fn with_binary<T>(path: &Path, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<PathBuf>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CHOSEN.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CHOSEN.with(|c| c.borrow_mut().replace(path.to_path_buf())));
    f()
}

/// The current binary's version. Panics, with how to install one, when
/// there is none.
pub fn version() -> Version {
    match binary() {
        Ok(b) => b.version,
        Err(e) => panic!("{e:#}"),
    }
}

/// Whether the current Traefik has multi-layer routing (3.6+).
pub fn supports_multi_layer() -> bool {
    version().supports_multi_layer()
}

/// `fnv` or `sha256`: how the current Traefik hashes weighted sticky values.
pub fn weighted_sticky_hash() -> &'static str {
    version().weighted_sticky_hash()
}

/// For a test of multi-layer routing: `true`, after printing
/// `skipped: Traefik X lacks multi-layer routing`, when the current Traefik
/// has none; the test then returns `Ok(())`.
pub fn skip_without_multi_layer() -> bool {
    if supports_multi_layer() {
        return false;
    }
    eprintln!("skipped: Traefik {} lacks multi-layer routing", version());
    true
}

/// The user recipe the static config is made of: every end-to-end test
/// loads the plugin exactly as it tells users to.
pub const STATIC_RECIPE: &str = "recipes/static/local-plugin.yml";

/// The static config: [`STATIC_RECIPE`] with the fixture's loopback address
/// for `web`, an `admin` entry point (ping and the generation marker), the
/// `dynamic` directory, a log file, and no calls home.
fn static_config(web: SocketAddr, admin: SocketAddr, log_level: &str) -> Result<String> {
    let path = repo_root().join(STATIC_RECIPE);
    let recipe =
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let text = super::render(
        &recipe,
        &[
            (
                "entryPoints:\n  web:\n    address: \":80\"\n",
                format!(
                    "entryPoints:\n  web:\n    address: \"{web}\"\n  admin:\n    address: \"{admin}\"\n"
                ),
            ),
            (
                "directory: /etc/traefik/dynamic",
                "directory: dynamic".to_owned(),
            ),
            // Kept as it is, but it must be there: the plugin under ALIAS.
            (
                &format!("localPlugins:\n    {ALIAS}:\n      moduleName: {MODULE}\n"),
                format!("localPlugins:\n    {ALIAS}:\n      moduleName: {MODULE}\n"),
            ),
        ],
    )
    .with_context(|| format!("{STATIC_RECIPE} no longer has the shape the fixture fills in"))?;
    Ok(format!(
        r#"# Written by the Cohort end-to-end test fixture from {STATIC_RECIPE}.
{text}
global:
  checkNewVersion: false
  sendAnonymousUsage: false
ping:
  entryPoint: admin
log:
  level: {log_level}
  filePath: traefik.log
"#
    ))
}

fn marker_config(generation: u64) -> String {
    format!(
        r#"# Written by the Cohort end-to-end test fixture: answers 418 once live.
http:
  routers:
    fixture-generation:
      entryPoints: [admin]
      rule: "Path(`/__fixture/generation/{generation}`)"
      priority: 100000
      service: noop@internal
"#
    )
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

fn fresh_dir() -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("cohort-traefik-{}-{n}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn write_atomically(scratch: &Path, target: &Path, contents: &str) -> Result<()> {
    let name = target
        .file_name()
        .ok_or_else(|| anyhow!("no file name in {}", target.display()))?;
    let tmp = scratch.join(format!(".{}.tmp", name.to_string_lossy()));
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, target)?;
    Ok(())
}

#[test]
fn versions_parse_and_say_what_they_support() {
    let v = |t| Version::parse(t).unwrap();
    assert_eq!(v("3.7.15"), Version(3, 7, 15));
    assert_eq!(v("v3.0.4").to_string(), "3.0.4");
    assert_eq!(Version::parse("3.7"), None);
    assert_eq!(Version::parse("dev"), None);
    for (version, multi_layer, hash) in [
        ("3.0.4", false, "fnv"),
        ("3.3.3", false, "fnv"),
        ("3.3.4", false, "sha256"),
        ("3.5.3", false, "sha256"),
        ("3.6.0", true, "sha256"),
        ("3.7.15", true, "sha256"),
    ] {
        assert_eq!(v(version).supports_multi_layer(), multi_layer, "{version}");
        assert_eq!(v(version).weighted_sticky_hash(), hash, "{version}");
    }
}

#[test]
fn with_binary_chooses_the_binary_on_this_thread_only() {
    let path = Path::new("/nonexistent/traefik");
    with_binary(path, || {
        assert_eq!(Options::default().binary, path);
        assert!(binary().is_err());
        let other = std::thread::spawn(|| Options::default().binary)
            .join()
            .unwrap();
        assert_ne!(other, path);
    });
    assert_ne!(Options::default().binary, path);
}

#[test]
fn shutdown_noise_is_not_an_error() {
    assert!(is_shutdown_noise(
        "2026-12-01T10:00:00Z ERR error=\"accept tcp 127.0.0.1:4000: use of closed network connection\" entryPointName=web"
    ));
    assert!(!is_shutdown_noise(
        "2026-12-01T10:00:00Z ERR plugin: bad config"
    ));
}
