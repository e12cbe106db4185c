//! The soak's Traefik: Cohort's settings per generation, the whoami backends, the guests and the static configuration.

#[allow(unused_imports)]
use super::*;

/// The canary weight (percent) of config generation `generation`.
pub fn canary_percent(generation: u32) -> u32 {
    [10, 20, 30, 40, 50, 25, 15, 5][generation as usize % 8]
}

/// Cohort's settings for dynamic-config generation `generation` (0 is the
/// first): every generation has its own canary weight, seed and cookie
/// max-age, so every reload builds a different middleware. Stickiness is
/// `keep`: a cookie holder's cohort never changes, whatever the reload.
pub fn cohort_settings(generation: u32) -> serde_json::Value {
    let canary = canary_percent(generation);
    json!({
        "seed": format!("soak-{generation}"),
        "variants": [
            {"name": "v1", "weight": 100 - canary},
            {"name": "v2", "weight": canary},
        ],
        "cookie": {"name": COOKIE, "maxAge": 2_592_000 - generation, "httpOnly": true, "sameSite": "lax"},
        "header": HEADER,
        "keys": ["header:X-User-Id"],
        "visitorCookie": "cohort_id",
        "stickiness": "keep",
        "override": {"header": OVERRIDE_HEADER, "query": OVERRIDE_QUERY, "allowFrom": ["10.0.0.0/8"]},
        "exclude": {"paths": [format!("^{EXCLUDED_PATH}$")]},
    })
}

/// Two pods per version.
///
/// The pods are `cohort_harness::whoami` pods on tiny_http 0.12, whose
/// connection pool has a race: when two connections arrive while one worker
/// thread is idle, the second is queued with no thread to run it until one
/// of the pod's other connections closes (`TaskPool::spawn` counts a waiting
/// worker that a first `notify_one` already claimed). Behind Traefik, whose
/// idle backend connections live 90 s, that was a request stuck for a
/// minute, a few times per hundred thousand requests. The soak's config
/// therefore closes Traefik's idle backend connections after 200 ms
/// (`serversTransports.soak-pods`), which frees a worker quickly;
/// [`Stats::slow`] counts answers that still took over a second.
pub struct Backends {
    pub(super) v1: Deployment,
    pub(super) v2: Deployment,
}

impl Backends {
    pub fn start() -> Result<Self> {
        Ok(Self {
            v1: Deployment::start("soak-v1", 2)?,
            v2: Deployment::start("soak-v2", 2)?,
        })
    }

    /// The dynamic config of generation `generation`: multi-layer routing,
    /// a parent router running the middleware and two children matching the
    /// cohort header after it ran, so every request (the first one too)
    /// lands on its version. JSON is YAML, so the settings go in as JSON.
    pub fn config(&self, generation: u32) -> String {
        let servers = |d: &Deployment| {
            d.pods()
                .iter()
                .map(|p| format!("{{url: \"{}\"}}", p.url()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            r#"# Written by the soak (generation {generation}).
http:
  middlewares:
    cohort:
      plugin:
        {ALIAS}: {settings}
  routers:
    soak-debug:
      entryPoints: [admin]
      rule: "PathPrefix(`/debug/`)"
      service: api@internal
    soak:
      entryPoints: [web]
      rule: "PathPrefix(`/`)"
      middlewares: [cohort]
    soak-raw-v2:
      parentRefs: [soak]
      rule: "PathPrefix(`/raw/`) && Header(`{HEADER}`, `v2`)"
      priority: 300
      service: ping@internal
    soak-raw-v1:
      parentRefs: [soak]
      rule: "PathPrefix(`/raw/`)"
      priority: 200
      service: noop@internal
    soak-v2:
      parentRefs: [soak]
      rule: "Header(`{HEADER}`, `v2`)"
      priority: 100
      service: soak-v2
    soak-v1:
      parentRefs: [soak]
      rule: "PathPrefix(`/`)"
      priority: 10
      service: soak-v1
  services:
    soak-v1:
      loadBalancer:
        sticky: {{cookie: {{name: {POD_COOKIE}}}}}
        serversTransport: soak-pods
        servers: [{v1}]
    soak-v2:
      loadBalancer:
        sticky: {{cookie: {{name: {POD_COOKIE}}}}}
        serversTransport: soak-pods
        servers: [{v2}]
  # The whoami pods (tiny_http 0.12) can leave a new connection unserved
  # until another of the pod's connections closes (see `Backends`); idle
  # connections from Traefik closed after 200 ms keep that wait short.
  serversTransports:
    soak-pods:
      forwardingTimeouts:
        idleConnTimeout: 200ms
"#,
            settings = cohort_settings(generation),
            v1 = servers(&self.v1),
            v2 = servers(&self.v2),
        )
    }
}

/// Which guest Traefik loads as the `cohort` middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    /// The shipped `plugin.wasm`.
    Cohort,
    /// `guests/noop.wat`: passes every request on untouched.
    Noop,
    /// Cohort's module with `handle_request` and `handle_response` pointed
    /// at no-ops ([`inert_cohort`]): the same code to compile, the same
    /// start-up and memory per instance, no work per request.
    CohortInert,
    /// `guests/trap-on-large-cookie.wat`: executes `unreachable` when the
    /// Cookie header is over 2 KiB, else passes the request on untouched.
    /// Traps on every CPU, where an unlowered Cohort traps in Traefik 3.7 on
    /// some only (notes/bulk-memory-trap.md): the soak's detectors must see
    /// that.
    TrapsOnLargeCookie,
}

impl GuestKind {
    pub fn name(self) -> &'static str {
        match self {
            GuestKind::Cohort => "cohort",
            GuestKind::Noop => "no-op guest",
            GuestKind::CohortInert => "inert Cohort module",
            GuestKind::TrapsOnLargeCookie => "guest trapping on Cookie > 2 KiB",
        }
    }

    /// Whether responses carry Cohort's decisions to check.
    pub(super) fn decides(self) -> bool {
        !matches!(
            self,
            GuestKind::Noop | GuestKind::CohortInert | GuestKind::TrapsOnLargeCookie
        )
    }
}

/// Files a guest other than the shipped one needs while Traefik starts.
pub(super) struct GuestFiles {
    pub(super) options: Options,
    pub(super) scratch: Option<PathBuf>,
}

impl GuestFiles {
    pub(super) fn new(kind: GuestKind) -> Result<Self> {
        let options = Options {
            log_level: "INFO",
            ..Options::default()
        };
        match kind {
            GuestKind::Cohort => Ok(Self {
                options,
                scratch: None,
            }),
            GuestKind::Noop | GuestKind::CohortInert | GuestKind::TrapsOnLargeCookie => {
                static COUNTER: AtomicU64 = AtomicU64::new(0);
                let dir = std::env::temp_dir().join(format!(
                    "cohort-soak-noop-{}-{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&dir)?;
                let wasm = match kind {
                    GuestKind::Noop => super::super::guests::wasm("noop")?,
                    GuestKind::TrapsOnLargeCookie => {
                        super::super::guests::wasm("trap-on-large-cookie")?
                    }
                    _ => inert_cohort()?,
                };
                std::fs::write(dir.join("plugin.wasm"), wasm)?;
                std::fs::write(
                    dir.join("manifest.yml"),
                    "displayName: No-op\ntype: middleware\nruntime: wasm\n\
                     summary: passes every request on\ntestData: {}\n",
                )?;
                Ok(Self {
                    options: Options {
                        wasm: dir.join("plugin.wasm"),
                        manifest: dir.join("manifest.yml"),
                        ..options
                    },
                    scratch: Some(dir),
                })
            }
        }
    }
}

impl Drop for GuestFiles {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Traefik with `kind` and generation 0 of the config, access log on.
pub(super) fn start_traefik(kind: GuestKind, backends: &Backends) -> Result<Traefik> {
    let files = GuestFiles::new(kind)?;
    Traefik::start_with_static(&files.options, EXTRA_STATIC, &backends.config(0))
}
