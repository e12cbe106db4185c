//! Driving Cohort's real, shipped `plugin.wasm` through the harness in
//! Traefik-faithful mode: loading it with a configuration, sending a
//! request, and reading what the backend and the client got.
//!
//! Shared by `plugin` (behaviours), `transcripts` (golden files) and
//! `hostile` (the hostile input matrix).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cohort_harness::artifacts::PLUGIN_WASM;
use cohort_harness::{EchoBackend, Error, Exchange, Guest, HostOptions, Request};
use serde_json::Value;

/// The shipped guest, read once per test binary.
pub fn wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        std::fs::read(PLUGIN_WASM).unwrap_or_else(|e| panic!("reading {PLUGIN_WASM}: {e}"))
    })
}

/// Cohort loaded with `config` as Traefik would hand it over (every scalar
/// a string), with Traefik's fake random source and monotonic clock.
///
/// Compiling the guest takes most of a second, so guests are shared by
/// configuration across the tests of this binary (a `Guest` serves
/// concurrent requests on separate instances). Tests about instances and
/// the pool load their own with [`cohort_with`] or [`load`].
pub fn cohort(config: Value) -> Guest {
    static LOADED: OnceLock<Mutex<HashMap<String, Guest>>> = OnceLock::new();
    let key = config.to_string();
    let loaded = LOADED.get_or_init(Mutex::default);
    if let Some(guest) = loaded.lock().unwrap().get(&key) {
        return guest.clone();
    }
    let guest = cohort_with(config, HostOptions::traefik());
    loaded.lock().unwrap().entry(key).or_insert(guest).clone()
}

/// Like [`cohort`], with other host options (the config is set here).
pub fn cohort_with(config: Value, options: HostOptions) -> Guest {
    load(options.config_json(config))
}

/// Cohort loaded with exactly these options (config included).
pub fn load(options: HostOptions) -> Guest {
    let config = options.config.clone();
    Guest::load(wasm(), options).unwrap_or_else(|e| panic!("Cohort refused {config:?}: {e}"))
}

/// Loading Cohort with `config` fails: the error, and what Cohort logged
/// (the line Traefik would print) joined by newlines.
pub fn load_error(config: Value) -> (Error, String) {
    load_error_with(HostOptions::traefik().config_json(config))
}

/// Like [`load_error`] for any options (e.g. raw config bytes).
pub fn load_error_with(options: HostOptions) -> (Error, String) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let options = options.log_sink(move |line| sink.lock().unwrap().push(line.to_string()));
    let error = Guest::load(wasm(), options).expect_err("Cohort refuses this configuration");
    let logged = lines.lock().unwrap().join("\n");
    (error, logged)
}

/// One request's trip through Cohort.
#[derive(Debug)]
pub struct Visit {
    pub ex: Exchange,
}

/// Sends `request` through `guest` to an echo backend, and checks what
/// must hold for every request: no trap, no ABI error, no 500, next called.
pub fn send(guest: &Guest, request: Request) -> Visit {
    let ex = guest
        .handle(request, &EchoBackend::new())
        .expect("the harness serves");
    assert!(ex.error.is_none(), "Cohort failed: {:?}", ex.error);
    assert!(!ex.aborted);
    assert_eq!(ex.response.status, 200, "{}", ex.response.body_text());
    assert!(ex.next_called(), "Cohort must always call next");
    Visit { ex }
}

/// `GET /` carrying `cookies` as its one `Cookie` header (none if empty).
pub fn visit(guest: &Guest, cookies: &str) -> Visit {
    let request = Request::get("/");
    let request = if cookies.is_empty() {
        request
    } else {
        request.header("Cookie", cookies)
    };
    send(guest, request)
}

impl Visit {
    /// What the backend received.
    pub fn backend(&self) -> &Request {
        self.ex.backend_request.as_ref().expect("next was called")
    }

    /// The backend's one `Cookie` header, as text (lossy for non-UTF-8).
    pub fn backend_cookie(&self) -> &str {
        let lines = self.backend().headers.get_all("Cookie");
        assert_eq!(lines.len(), 1, "one Cookie header: {lines:?}");
        lines[0]
    }

    /// The backend's values of header `name`.
    pub fn backend_header(&self, name: &str) -> Vec<&str> {
        self.backend().headers.get_all(name)
    }

    /// The cohort the backend was told (`X-Canary`), exactly one value.
    pub fn cohort(&self) -> &str {
        let values = self.backend_header("X-Canary");
        assert_eq!(values.len(), 1, "one X-Canary: {values:?}");
        values[0]
    }

    /// Every `Set-Cookie` the client receives, in order.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.ex.response.headers.get_all("Set-Cookie")
    }

    /// The `Set-Cookie` for cookie `name`, if exactly one; panics on several.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        let found: Vec<&str> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.starts_with(&prefix))
            .collect();
        assert!(found.len() <= 1, "several Set-Cookie for {name}: {found:?}");
        found.first().copied()
    }

    /// The value Cohort's `Set-Cookie` gives cookie `name`.
    pub fn set_cookie_value(&self, name: &str) -> Option<&str> {
        self.set_cookie(name).map(|c| {
            let pair = c.split(';').next().unwrap_or_default();
            pair.split_once('=').map_or("", |(_, v)| v)
        })
    }

    /// The newly generated visitor id (`cohort_id` Set-Cookie), if any.
    pub fn new_visitor_id(&self) -> Option<&str> {
        self.set_cookie_value("cohort_id")
    }

    /// The debug response header (`X-Cohort-Debug`, when configured).
    pub fn debug(&self) -> Option<&str> {
        self.ex.response.headers.get("X-Cohort-Debug")
    }

    /// The decision's reason, from the debug header.
    pub fn reason(&self) -> &str {
        let debug = self
            .debug()
            .expect("debugHeader: X-Cohort-Debug configured");
        debug
            .split_once("; reason=")
            .map_or_else(|| panic!("bad debug header {debug:?}"), |(_, r)| r)
    }
}

/// The cookie attributes Cohort writes by default.
pub const DEFAULT_ATTRIBUTES: &str = "; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax";

/// The exact `Set-Cookie` Cohort writes for `name=value` with default attributes.
pub fn default_set_cookie(name: &str, value: &str) -> String {
    format!("{name}={value}{DEFAULT_ATTRIBUTES}")
}

/// Whether `s` is a visitor id: 32 lowercase hex digits.
pub fn is_visitor_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
