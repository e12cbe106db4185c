//! The http-wasm adapter: reads the request from the host only as far as the
//! decision asks, and writes what the decision says: the kept holder's own
//! path first ([`cohort::decision::quick`]), then the full decision on what
//! it read. All logic lives in the `cohort` library.

#[cfg(target_arch = "wasm32")]
mod host_reads;

#[cfg(target_arch = "wasm32")]
mod adapter {
    use std::cell::{Cell, OnceCell, RefCell};
    use std::time::{SystemTime, UNIX_EPOCH};

    use cohort::bucket::IdGenerator;
    use cohort::decision::Values;
    use cohort::decision::quick::{Prefetch, Quick};
    use cohort::sticky_watch::{self, Budget};
    use cohort::{Config, RequestView, decide};
    use http_wasm_guest::host::{Request, Response, admin, log};
    use http_wasm_guest::{Guest, register};

    const LOG_DEBUG: i32 = -1;
    const LOG_WARN: i32 = 1;
    const LOG_ERROR: i32 = 2;

    /// What every request the quick path does not answer reads. Aligned to
    /// 512 bytes, more than its size, so that it never straddles two 4 KiB
    /// pages (each a TLB entry a cold request may miss).
    #[repr(C, align(512))]
    struct Cohort {
        /// Its `log_decisions` is also whether the host logs debug, asked once.
        config: Config,
        /// Which responses to look at for Traefik's own weighted sticky cookie.
        sticky_watch: RefCell<Budget>,
        ids: RefCell<IdGenerator>,
    }

    // Grown past its alignment, it could straddle a page again.
    const _: () = assert!(std::mem::size_of::<Cohort>() <= 512);

    use crate::host_reads::{self, HostBytes};

    /// The host request, read lazily and straight from the host.
    struct HostRequest;

    impl RequestView for HostRequest {
        type Bytes = HostBytes;
        fn header_values(&mut self, name: &str) -> Values<HostBytes> {
            host_reads::header_values(name.as_bytes())
        }
        fn header_values_named(&mut self, name: &[u8]) -> Values<HostBytes> {
            host_reads::header_values(name)
        }
        fn method(&mut self) -> HostBytes {
            host_reads::method()
        }
        fn uri(&mut self) -> HostBytes {
            host_reads::uri()
        }
        fn source_addr(&mut self) -> HostBytes {
            host_reads::source_addr()
        }
    }

    /// The real wall clock: in Traefik the random source and the monotonic
    /// clock are fake, but `clock_time_get(realtime)` is real.
    fn now_nanos() -> u128 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    }

    thread_local! {
        /// The quick path, among the statics: its one line is all of the
        /// instance's state a returning visitor's request reads, the names
        /// the host reads for its calls included. Set by `_start` when the
        /// configuration allows it.
        static QUICK: OnceCell<Quick> = const { OnceCell::new() };
        /// The instance's one `Cohort`, set by `_start`.
        static COHORT: Cell<Option<&'static Cohort>> = const { Cell::new(None) };
    }

    // One line: `OnceCell` keeps its flag in a niche of `Quick`'s.
    const _: () = assert!(std::mem::size_of::<OnceCell<Quick>>() == 64);

    /// What http-wasm-guest holds: a handle on [`QUICK`] and [`COHORT`].
    struct Registered;

    impl Guest for Registered {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            QUICK.with(|quick| {
                let mut reads = Prefetch::new(HostRequest);
                if let Some(quick) = quick.get()
                    && let Some(variant) = quick.kept(&mut reads)
                {
                    if let Some(header) = quick.cohort_header() {
                        request.header.set(header, quick.variant_name(variant));
                    }
                    return (true, 0);
                }
                match COHORT.get() {
                    Some(cohort) => cohort.decide_and_write(reads, request, response),
                    None => (true, 0),
                }
            })
        }
        fn handle_response(
            &self,
            context: i32,
            request: &Request,
            response: &Response,
            error: bool,
        ) {
            // 0: nothing to check, and nothing of the instance to touch.
            if context != 0
                && let Some(cohort) = COHORT.get()
            {
                cohort.handle_response(context, request, response, error);
            }
        }
    }

    impl Cohort {
        /// Every request the quick path does not answer, with what it read.
        /// Never inlined: its frame is many times the quick path's, and a
        /// frame is stack memory every request touches.
        #[inline(never)]
        fn decide_and_write(
            &self,
            mut reads: Prefetch<'_, HostRequest>,
            request: &Request,
            response: &Response,
        ) -> (bool, i32) {
            let config = &self.config;
            let decision = decide(config, &mut reads, &self.ids, now_nanos);
            let writes = decision.writes(config);
            if let Some(cookie) = writes.request_cookie {
                request.header.set(b"Cookie", cookie);
            }
            if let Some((header, cohort)) = writes.cohort_header {
                request.header.set(header.as_bytes(), cohort.as_bytes());
            }
            // Response headers written before next go straight to Traefik's
            // response writer; `add` keeps Traefik's own sticky Set-Cookie.
            let [cohort_cookie, visitor_cookie] = writes.set_cookies;
            if let Some(set_cookie) = cohort_cookie {
                response.header.add(b"Set-Cookie", set_cookie);
            }
            if let Some(set_cookie) = visitor_cookie {
                response.header.add(b"Set-Cookie", set_cookie);
            }
            if let Some((header, value)) = &writes.debug_header {
                response.header.set(header.as_bytes(), value.as_bytes());
            }
            if config.log_decisions {
                log::write(LOG_DEBUG, decision.describe(config).as_bytes());
            }
            // The variant, for handle_response to check Traefik honoured its
            // sticky value; 0 when there is nothing to check.
            let watch = config.variants[decision.variant].sticky_value.is_some()
                && config.weighted_sticky_cookie.is_some()
                && self.sticky_watch.borrow_mut().look();
            let context = if watch {
                i32::try_from(decision.variant + 1).unwrap_or(0)
            } else {
                0
            };
            if let Some(cookie) = decision.cookie_header {
                host_reads::give_back(cookie);
            }
            (true, context)
        }

        fn handle_response(&self, context: i32, _: &Request, response: &Response, _: bool) {
            let Some(variant) = usize::try_from(context).ok().and_then(|c| c.checked_sub(1)) else {
                return;
            };
            let set_cookies = response.header.values(b"Set-Cookie");
            if let Some(overruled) = sticky_watch::overruled(&self.config, variant, &set_cookies) {
                self.sticky_watch.borrow_mut().warned();
                log::write(LOG_WARN, format!("Cohort: {overruled}").as_bytes());
            }
        }
    }

    pub fn start() {
        let mut config = match Config::from_json(&admin::config()) {
            Ok(config) => config,
            Err(e) => {
                // Fail loudly at load: Traefik logs the guest's error and
                // refuses the middleware, so nothing is silently misrouted.
                let message = e.to_string();
                log::write(LOG_ERROR, message.as_bytes());
                eprintln!("{message}");
                std::process::exit(1);
            }
        };
        host_reads::prewarm();
        let boot = now_nanos().to_be_bytes();
        // A host that drops debug lines gets no decision log, and no
        // request pays for reporting its reason ([`Config::reports_reason`]).
        config.log_decisions = config.log_decisions && log::enabled(LOG_DEBUG);
        if let Some(path) = Quick::new(&config) {
            QUICK.with(|quick| {
                // `_start` runs once per instance: the slot is always empty here.
                let _ = quick.set(path);
            });
        }
        let cohort = Cohort {
            config,
            ids: RefCell::new(IdGenerator::new(&boot)),
            sticky_watch: RefCell::new(Budget::default()),
        };
        COHORT.set(Some(Box::leak(Box::new(cohort))));
        register(Registered);
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
