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
//! and runs `traefik` from PATH in it, on 127.0.0.1 only. The middleware
//! alias in dynamic configs is `cohort`:
//! `http.middlewares.<name>.plugin.cohort: {...}`.
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

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// The Traefik version the tests are written against.
pub const TRAEFIK_VERSION: &str = "3.7.15";

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
        check_traefik()?;
        // The free ports are found by binding and releasing them, so another
        // process may take one first: then Traefik cannot listen, and the
        // start is tried again on new ports.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::try_start(options, extra_static, dynamic) {
                Ok(traefik) => return Ok(traefik),
                Err(e) if format!("{e:#}").contains("address already in use") => {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("Traefik did not start")))
    }

    fn try_start(options: &Options, extra_static: &str, dynamic: &str) -> Result<Self> {
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
        let child = Command::new("traefik")
            .arg("--configFile=traefik.yml")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .context("starting `traefik` (run `bash scripts/setup.sh` to install it)")?;

        let probe = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut traefik = Self {
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
        // Written beside the watched directory, then renamed in: Traefik
        // never reads a half-written file.
        write_atomically(&self.dir, &dynamic.join("config.yml"), yaml)?;
        write_atomically(
            &self.dir,
            &dynamic.join("fixture.yml"),
            &marker_config(generation),
        )?;
        self.wait_for_generation(generation)?;
        self.generation = generation;
        Ok(())
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

    /// The log's `ERR` lines.
    pub fn errors(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(" ERR "))
            .map(str::to_owned)
            .collect()
    }

    fn wait_for_generation(&mut self, generation: u64) -> Result<()> {
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

/// Fails unless `traefik` on PATH is [`TRAEFIK_VERSION`]. Checked once.
fn check_traefik() -> Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let output = Command::new("traefik")
                .arg("version")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| {
                    format!(
                        "cannot run `traefik version` ({e}): Traefik {TRAEFIK_VERSION} must be \
                         on PATH for the end-to-end tests; run `bash scripts/setup.sh`"
                    )
                })?;
            let text = String::from_utf8_lossy(&output.stdout);
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("Version:"))
                .map(str::trim)
                .unwrap_or_default();
            if version == TRAEFIK_VERSION {
                Ok(())
            } else {
                Err(format!(
                    "`traefik version` reports {version:?}, the tests need {TRAEFIK_VERSION}; \
                     run `bash scripts/setup.sh`"
                ))
            }
        })
        .clone()
        .map_err(|e| anyhow!(e))
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
