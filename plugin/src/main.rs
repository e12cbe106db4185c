//! The http-wasm adapter: reads the request from the host only as far as the
//! decision asks, and writes what the decision says. All logic lives in the
//! `cohort` library.

#[cfg(target_arch = "wasm32")]
mod host;

#[cfg(target_arch = "wasm32")]
mod adapter {
    use std::cell::{OnceCell, RefCell};
    use std::time::{SystemTime, UNIX_EPOCH};

    use cohort::bucket::IdGenerator;
    use cohort::{Config, RequestView, decide};

    use crate::host::{self, Kind, LOG_DEBUG, LOG_ERROR};

    struct Cohort {
        config: Config,
        ids: RefCell<IdGenerator>,
        /// `logDecisions` and the host's debug level, asked once.
        debug: bool,
    }

    thread_local! {
        /// Set once by `_start`; a wasm instance has one thread.
        static COHORT: OnceCell<Cohort> = const { OnceCell::new() };
    }

    /// The host request, read lazily.
    struct HostRequest;

    impl RequestView for HostRequest {
        type Bytes = Vec<u8>;
        fn header_values(&mut self, name: &str) -> Vec<Vec<u8>> {
            host::header_values(Kind::Request, name.as_bytes())
        }
        fn method(&mut self) -> Vec<u8> {
            host::method()
        }
        fn uri(&mut self) -> Vec<u8> {
            host::uri()
        }
        fn source_addr(&mut self) -> Vec<u8> {
            host::source_addr()
        }
    }

    /// The real wall clock: in Traefik the random source and the monotonic
    /// clock are fake, but `clock_time_get(realtime)` is real.
    fn now_nanos() -> u128 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    }

    /// `handle_request`: decide, write, and always call next (result 1).
    pub fn handle_request() -> u32 {
        COHORT.with(|cohort| {
            if let Some(cohort) = cohort.get() {
                cohort.handle_request();
            }
        });
        1
    }

    impl Cohort {
        fn handle_request(&self) {
            let config = &self.config;
            let decision = decide(
                config,
                &mut HostRequest,
                &mut self.ids.borrow_mut(),
                now_nanos,
            );
            let variant = &config.variants[decision.variant];
            if let Some(cookie) = &decision.cookie_header {
                host::set_header(Kind::Request, b"Cookie", cookie);
            }
            if let Some(header) = &config.header {
                // `set` replaces every value: a client's copy never survives.
                host::set_header(Kind::Request, header.as_bytes(), variant.name.as_bytes());
            }
            // Response headers written before next go straight to Traefik's
            // response writer; `add` keeps Traefik's own sticky Set-Cookie.
            if decision.set_cohort_cookie {
                host::add_header(Kind::Response, b"Set-Cookie", &variant.set_cookie);
            }
            if let Some(visitor) = &decision.visitor_set_cookie {
                host::add_header(Kind::Response, b"Set-Cookie", visitor);
            }
            if let Some(header) = &config.debug_header {
                let value = format!("{}; reason={}", variant.name, decision.reason);
                host::set_header(Kind::Response, header.as_bytes(), value.as_bytes());
            }
            if self.debug {
                host::write_log(LOG_DEBUG, decision.describe(config).as_bytes());
            }
        }
    }

    pub fn start() {
        let config = match Config::from_json(&host::config()) {
            Ok(config) => config,
            Err(e) => {
                // Fail loudly at load: Traefik logs the guest's error and
                // refuses the middleware, so nothing is silently misrouted.
                let message = e.to_string();
                host::write_log(LOG_ERROR, message.as_bytes());
                eprintln!("{message}");
                std::process::exit(1);
            }
        };
        let boot = now_nanos().to_be_bytes();
        let debug = config.log_decisions && host::log_is_enabled(LOG_DEBUG);
        let cohort = Cohort {
            config,
            ids: RefCell::new(IdGenerator::new(&boot)),
            debug,
        };
        COHORT.with(|cell| {
            let _ = cell.set(cohort);
        });
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {
    adapter::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "cohort-plugin is an http-wasm guest: build it with \
         `cargo build -p cohort-plugin --target wasm32-wasip1 --profile wasm`"
    );
    std::process::exit(2);
}
