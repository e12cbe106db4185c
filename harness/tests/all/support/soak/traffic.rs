//! The traffic: one thread's crowd of visitors, what each request is, and the check of every answer.

#[allow(unused_imports)]
use super::*;

/// What a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    New,
    LoggedIn,
    Returning,
    Excluded,
    BigCookie,
    ManyPairs,
    NonUtf8,
    ControlBytes,
    DuplicateCohort,
    CookieLines,
    Separators,
    SpoofedHeader,
    ForgedOverrideHeader,
    ForgedOverrideQuery,
    InvalidCohort,
    OddMethod,
    Head,
    LongUri,
}

impl Kind {
    /// The four ordinary kinds first, then the hostile ones.
    pub const ALL: [Kind; 18] = [
        Kind::New,
        Kind::LoggedIn,
        Kind::Returning,
        Kind::Excluded,
        Kind::BigCookie,
        Kind::ManyPairs,
        Kind::NonUtf8,
        Kind::ControlBytes,
        Kind::DuplicateCohort,
        Kind::CookieLines,
        Kind::Separators,
        Kind::SpoofedHeader,
        Kind::ForgedOverrideHeader,
        Kind::ForgedOverrideQuery,
        Kind::InvalidCohort,
        Kind::OddMethod,
        Kind::Head,
        Kind::LongUri,
    ];

    /// The hostile kinds (a returning visitor's request, tampered with):
    /// all but the four ordinary ones `ALL` lists first.
    const HOSTILE: &'static [Kind] = Kind::ALL.split_at(4).1;

    pub fn name(self) -> &'static str {
        match self {
            Kind::New => "new visitor",
            Kind::LoggedIn => "new, logged in (X-User-Id)",
            Kind::Returning => "returning (cookie jar)",
            Kind::Excluded => "excluded path",
            Kind::BigCookie => "Cookie 3-24 KB",
            Kind::ManyPairs => "500-3000 cookie pairs",
            Kind::NonUtf8 => "non-UTF-8 cookie bytes",
            Kind::ControlBytes => "control bytes (Go: 400)",
            Kind::DuplicateCohort => "duplicate canary cookies",
            Kind::CookieLines => "two Cookie lines",
            Kind::Separators => "empty pairs ;;; =;",
            Kind::SpoofedHeader => "spoofed X-Canary",
            Kind::ForgedOverrideHeader => "forged override header",
            Kind::ForgedOverrideQuery => "forged ?canary=",
            Kind::InvalidCohort => "invalid canary value",
            Kind::OddMethod => "odd method",
            Kind::Head => "HEAD",
            Kind::LongUri => "URI 4-8 KB",
        }
    }

    pub fn hostile(self) -> bool {
        Kind::HOSTILE.contains(&self)
    }
}

/// What the answer must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expect {
    /// This cohort.
    Cohort(String),
    /// A cohort newly assigned: a `Set-Cookie: canary=`.
    Assigned,
    /// Any valid cohort, consistently.
    Any,
    /// Go's HTTP server refuses the request (`400`) before Traefik routes it.
    BadRequest,
    /// HEAD: the status only.
    StatusOnly,
    /// This cohort, routed in Traefik to an internal service that tells it
    /// by its status: `200 OK` (`ping@internal`) for v2, `418`
    /// (`noop@internal`) for v1. In the harness: like `Cohort`.
    Internal(String),
}

/// One visitor's cookies.
#[derive(Debug, Clone, Default)]
pub(super) struct Jar {
    pub(super) cookies: jar::Jar,
    pub(super) user: Option<String>,
}

impl Jar {
    pub(super) fn cohort(&self) -> Option<&str> {
        self.cookies.get(COOKIE)
    }

    /// The pairs other than the cohort cookie.
    pub(super) fn others(&self) -> String {
        self.cookies.header_where(|n| n != COOKIE)
    }

    pub(super) fn header(&self) -> String {
        self.cookies.header_value()
    }

    pub(super) fn store(&mut self, set_cookies: &[(String, String, bool)]) {
        for (name, value, expired) in set_cookies {
            if *expired {
                self.cookies.remove(name);
            } else {
                self.cookies.set(name, value);
            }
        }
    }
}

/// Where the visitor's cookies go after the answer.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    /// A new returning visitor.
    New,
    /// Back into jar `i`.
    Keep(usize),
    /// Nowhere: a tampered request.
    Discard,
}

/// One request to send and what its answer must show.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) kind: Kind,
    pub(super) method: &'static str,
    pub(super) target: String,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
    pub(super) expect: Expect,
    /// Must not set the cohort cookie (excluded path).
    pub(super) no_set_cookie: bool,
    /// Bytes the backend's Cookie header must contain (kept byte for byte).
    pub(super) keeps: Option<String>,
    pub(super) jar: Jar,
    pub(super) slot: Slot,
}

impl Planned {
    pub(super) fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: {HOST}\r\n",
            self.method, self.target
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// The same request for the harness (non-UTF-8 bytes replaced).
    pub(super) fn harness_request(&self) -> Request {
        let mut request = Request::new(self.method, self.target.clone()).header("Host", HOST);
        for (name, value) in &self.headers {
            request = request.header(name.clone(), String::from_utf8_lossy(value).into_owned());
        }
        request.body(self.body.clone())
    }
}

/// What the backend received, as far as the checks need it.
pub(super) struct BackendView {
    /// The version of the pod that answered (`None` in the harness).
    pub(super) served: Option<String>,
    pub(super) x_canary: Vec<String>,
    pub(super) cookie_lines: Vec<String>,
}

/// How one answer turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Ok(Option<String>),
    Refused400,
    ServerError {
        status: u16,
        wasm: bool,
        text: String,
    },
    OtherStatus {
        status: u16,
        text: String,
    },
    Inconsistent(String),
}

/// One thread's crowd: returning visitors' jars and what to send next.
pub struct Visitors {
    pub(super) rng: Rng,
    pub(super) thread: usize,
    pub(super) jars: Vec<Jar>,
    pub(super) users: u64,
    pub(super) cursor: usize,
    pub(super) decides: bool,
}

impl Visitors {
    /// Thread `thread`'s crowd; `decides`: the guest is Cohort, so check
    /// its decisions (a no-op guest's answers are checked for status only).
    pub fn new(thread: usize, decides: bool) -> Self {
        Self {
            rng: Rng(0xC0_4057 ^ ((thread as u64 + 1) << 32)),
            thread,
            jars: Vec::new(),
            users: 0,
            cursor: 0,
            decides,
        }
    }

    /// The next request of the mix: 15 % new visitors, 5 % new logged-in
    /// visitors, 55 % returning visitors, 3 % the excluded path, 22 %
    /// hostile (the hostile kinds in equal parts).
    pub(super) fn plan(&mut self) -> Planned {
        let roll = self.rng.below(100);
        let kind = match roll {
            0..15 => Kind::New,
            15..20 => Kind::LoggedIn,
            20..75 => Kind::Returning,
            75..78 => Kind::Excluded,
            _ => Kind::HOSTILE[self.rng.below(Kind::HOSTILE.len())],
        };
        self.plan_kind(kind)
    }

    /// A request of `kind` (from a returning visitor if the kind needs one
    /// and there is any; else it becomes a new visitor).
    pub(super) fn plan_kind(&mut self, kind: Kind) -> Planned {
        let needs_jar = !matches!(kind, Kind::New | Kind::LoggedIn | Kind::Excluded);
        let pick = (!self.jars.is_empty()).then(|| self.rng.below(self.jars.len()));
        let (kind, jar, index) = match pick {
            Some(i) => (kind, self.jars[i].clone(), Some(i)),
            None if needs_jar => (Kind::New, Jar::default(), None),
            None => (kind, Jar::default(), None),
        };
        self.cursor += 1;
        let cursor = self.cursor;
        let mut planned = Planned {
            kind,
            method: "GET",
            target: format!("/shop/{}", cursor % 97),
            headers: Vec::new(),
            body: Vec::new(),
            expect: Expect::Any,
            no_set_cookie: false,
            keeps: None,
            jar: jar.clone(),
            slot: Slot::Discard,
        };
        let cohort = jar.cohort().map(str::to_owned);
        let other = |c: &str| if c == "v1" { "v2" } else { "v1" }.to_owned();
        let cookie = |value: String| ("Cookie".to_owned(), value.into_bytes());
        match kind {
            Kind::New => {
                planned.jar = Jar::default();
                planned.expect = Expect::Assigned;
                planned.slot = Slot::New;
            }
            Kind::LoggedIn => {
                self.users += 1;
                let user = format!("user-{}-{}", self.thread, self.users);
                planned
                    .headers
                    .push(("X-User-Id".to_owned(), user.clone().into_bytes()));
                planned.jar = Jar {
                    cookies: jar::Jar::new(),
                    user: Some(user),
                };
                planned.expect = Expect::Assigned;
                planned.slot = Slot::New;
            }
            Kind::Excluded => {
                planned.target = EXCLUDED_PATH.to_owned();
                if !jar.cookies.is_empty() {
                    planned.headers.push(cookie(jar.header()));
                }
                planned.expect = Expect::Cohort(cohort.unwrap_or_else(|| VARIANTS[0].to_owned()));
                planned.no_set_cookie = true;
            }
            _ => {
                let Some(cohort) = cohort else {
                    return self.plan_without_cohort(planned, index);
                };
                let mine = jar.header();
                planned.expect = Expect::Cohort(cohort.clone());
                match kind {
                    Kind::Returning => {
                        planned.headers.push(cookie(mine));
                        planned.slot = index.map_or(Slot::Discard, Slot::Keep);
                    }
                    Kind::BigCookie => {
                        let size = BIG_COOKIE_SIZES[cursor % BIG_COOKIE_SIZES.len()];
                        let pad = format!("_ga_pad={}", "x".repeat(size));
                        planned.headers.push(cookie(format!("{pad}; {mine}")));
                        planned.keeps = Some(pad);
                    }
                    Kind::ManyPairs => {
                        let count = PAIR_COUNTS[cursor % PAIR_COUNTS.len()];
                        let mut value: String =
                            (0..count).map(|i| format!("k{i}=v{i}; ")).collect();
                        value.push_str(&mine);
                        planned.headers.push(cookie(value));
                        planned.keeps = Some(format!("k{}=v{}", count - 1, count - 1));
                    }
                    Kind::NonUtf8 => {
                        let mut value = b"pref=\xff\xfe\xc3(\x80; ".to_vec();
                        value.extend_from_slice(mine.as_bytes());
                        planned.headers.push(("Cookie".to_owned(), value));
                        // Go and Traefik pass these bytes (obs-text), but the
                        // whoami pods (tiny_http) refuse any non-ASCII header:
                        // under `/raw/` the children are Traefik's own
                        // services, `ping@internal` (200 OK) for v2 and
                        // `noop@internal` (418) for v1.
                        planned.target = format!("/raw/{}", cursor % 97);
                        planned.expect = Expect::Internal(cohort.clone());
                    }
                    Kind::ControlBytes => {
                        let byte = [0x01u8, 0x7f, 0x1b][cursor % 3];
                        let mut value = vec![b'a', b'=', byte, b';', b' '];
                        value.extend_from_slice(mine.as_bytes());
                        planned.headers.push(("Cookie".to_owned(), value));
                        planned.expect = Expect::BadRequest;
                    }
                    Kind::DuplicateCohort => {
                        // Go reads the first pair; so does Cohort.
                        let first = if cursor.is_multiple_of(2) {
                            cohort.clone()
                        } else {
                            other(&cohort)
                        };
                        planned.headers.push(cookie(format!(
                            "{COOKIE}={first}; {}; {COOKIE}={}",
                            jar.others(),
                            other(&first)
                        )));
                        planned.expect = Expect::Cohort(first);
                    }
                    Kind::CookieLines => {
                        planned
                            .headers
                            .push(cookie("session=abc; theme=dark".to_owned()));
                        planned.headers.push(cookie(mine));
                    }
                    Kind::Separators => {
                        planned.headers.push(cookie(format!(";;; ; =; ;{mine};;")));
                    }
                    Kind::SpoofedHeader => {
                        planned.headers.push(cookie(mine));
                        planned
                            .headers
                            .push((HEADER.to_owned(), other(&cohort).into_bytes()));
                        planned
                            .headers
                            .push((HEADER.to_ascii_lowercase(), other(&cohort).into_bytes()));
                    }
                    Kind::ForgedOverrideHeader => {
                        planned.headers.push(cookie(mine));
                        let value = ["always", "never", "v1", "v2"][cursor % 4];
                        planned
                            .headers
                            .push((OVERRIDE_HEADER.to_owned(), value.as_bytes().to_vec()));
                    }
                    Kind::ForgedOverrideQuery => {
                        planned.headers.push(cookie(mine));
                        planned.target = format!("/shop?{OVERRIDE_QUERY}={}&x=1", other(&cohort));
                    }
                    Kind::InvalidCohort => {
                        let value = ["v9", "", "V2", "\"v2\"", "v2%00", "v1,v2", "v2 Domain=evil"]
                            [cursor % 7];
                        planned
                            .headers
                            .push(cookie(format!("{COOKIE}={value}; {}", jar.others())));
                        planned.expect = Expect::Any;
                    }
                    Kind::OddMethod => {
                        planned.method =
                            ["OPTIONS", "DELETE", "PATCH", "PUT", "PURGE", "PROPFIND"][cursor % 6];
                        planned.headers.push(cookie(mine));
                        if matches!(planned.method, "PATCH" | "PUT") {
                            planned.body = b"{\"cart\":[1,2,3]}".to_vec();
                        }
                    }
                    Kind::Head => {
                        planned.method = "HEAD";
                        planned.headers.push(cookie(mine));
                        planned.expect = Expect::StatusOnly;
                    }
                    Kind::LongUri => {
                        let len = 4_000 + (cursor % 5) * 1_000;
                        planned.target =
                            format!("/p/{}?q={}", "a".repeat(len / 2), "b".repeat(len / 2));
                        planned.headers.push(cookie(mine));
                    }
                    Kind::New | Kind::LoggedIn | Kind::Excluded => {}
                }
                if let Some(user) = &jar.user
                    && kind != Kind::LoggedIn
                {
                    planned
                        .headers
                        .push(("X-User-Id".to_owned(), user.clone().into_bytes()));
                }
            }
        }
        // A guest that decides nothing: the status only. Under `/raw/` its
        // answer is always noop@internal's 418, which `Internal` reads as
        // v1, the cohort its visitors' cookies name.
        if !self.decides && !matches!(planned.expect, Expect::BadRequest | Expect::Internal(_)) {
            planned.expect = Expect::StatusOnly;
        }
        planned
    }

    /// A jar without a cohort cookie (not made by [`Visitors::learn`]):
    /// its own cookies, status checked only.
    pub(super) fn plan_without_cohort(
        &mut self,
        mut planned: Planned,
        index: Option<usize>,
    ) -> Planned {
        let mine = planned.jar.header();
        if !mine.is_empty() {
            planned
                .headers
                .push(("Cookie".to_owned(), mine.into_bytes()));
        }
        planned.expect = Expect::StatusOnly;
        if planned.kind == Kind::ControlBytes {
            planned
                .headers
                .push(("X-Junk".to_owned(), vec![b'a', 0x01, b'b']));
            planned.expect = Expect::BadRequest;
        }
        if planned.kind == Kind::Returning {
            planned.slot = index.map_or(Slot::Discard, Slot::Keep);
        }
        planned
    }

    /// Keeps what the answer set for the next requests of this visitor.
    pub(super) fn learn(&mut self, planned: &Planned, set_cookies: &[(String, String, bool)]) {
        let mut jar = planned.jar.clone();
        jar.store(set_cookies);
        if !self.decides && jar.cohort().is_none() {
            // A guest that assigns nothing (the reload controls) still gets
            // the same shapes of request: the visitor holds the default
            // cohort's cookies as if Cohort had set them.
            let id = format!("{:016x}{:016x}", self.rng.next(), self.rng.next());
            jar.store(&[
                (COOKIE.to_owned(), VARIANTS[0].to_owned(), false),
                ("cohort_id".to_owned(), id, false),
            ]);
        }
        match planned.slot {
            Slot::Discard => {}
            Slot::Keep(i) => {
                if let Some(slot) = self.jars.get_mut(i) {
                    *slot = jar;
                }
            }
            Slot::New if self.jars.len() < JARS_PER_THREAD => self.jars.push(jar),
            Slot::New => {
                let i = self.rng.below(self.jars.len());
                self.jars[i] = jar;
            }
        }
    }

    /// Checks an answer against the plan and the decision rules.
    pub(super) fn verify(
        &self,
        planned: &Planned,
        status: u16,
        set_cookies: &[(String, String, bool)],
        body: &[u8],
        backend: Option<BackendView>,
    ) -> Outcome {
        let text = || {
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
        };
        if planned.expect == Expect::BadRequest {
            return if status == 400 {
                Outcome::Refused400
            } else {
                Outcome::OtherStatus {
                    status,
                    text: format!("expected Go's 400: {}", text()),
                }
            };
        }
        if let Expect::Internal(expected) = &planned.expect
            && backend.is_none()
            && status < 500
        {
            let cohort = match (status, body) {
                (200, b"OK") => "v2",
                (418, _) => "v1",
                _ => {
                    return Outcome::OtherStatus {
                        status,
                        text: format!("expected 200 OK or 418 from Traefik: {}", text()),
                    };
                }
            };
            return match set_cookies.iter().find(|(n, _, _)| n == COOKIE) {
                Some((_, value, _)) if value != cohort => Outcome::Inconsistent(format!(
                    "Set-Cookie {COOKIE}={value} with cohort {cohort}"
                )),
                _ if cohort != expected => {
                    Outcome::Inconsistent(format!("cohort {cohort}, expected {expected}"))
                }
                _ => Outcome::Ok(Some(cohort.to_owned())),
            };
        }
        if status >= 500 {
            let body = text();
            return Outcome::ServerError {
                status,
                wasm: body.contains("wasm error"),
                text: body,
            };
        }
        if !(200..300).contains(&status) {
            return Outcome::OtherStatus {
                status,
                text: text(),
            };
        }
        if planned.expect == Expect::StatusOnly {
            return Outcome::Ok(None);
        }
        let Some(backend) = backend else {
            return Outcome::Inconsistent(format!("no backend reply: {}", text()));
        };
        let fail = |why: String| Outcome::Inconsistent(why);
        let [cohort] = backend.x_canary.as_slice() else {
            return fail(format!("backend saw X-Canary {:?}", backend.x_canary));
        };
        if !VARIANTS.contains(&cohort.as_str()) {
            return fail(format!("backend saw X-Canary {cohort:?}"));
        }
        if let Some(served) = &backend.served
            && served != cohort
        {
            return fail(format!(
                "{served} answered a request with X-Canary {cohort}"
            ));
        }
        let pairs: Vec<&str> = backend
            .cookie_lines
            .iter()
            .flat_map(|line| line.split(';'))
            .map(str::trim)
            .filter_map(|pair| pair.strip_prefix(COOKIE)?.strip_prefix('='))
            .collect();
        if pairs != [cohort.as_str()] {
            return fail(format!(
                "backend saw {COOKIE} pairs {pairs:?}, X-Canary {cohort}"
            ));
        }
        let set: Vec<&str> = set_cookies
            .iter()
            .filter(|(n, _, _)| n == COOKIE)
            .map(|(_, v, _)| v.as_str())
            .collect();
        match set.as_slice() {
            [] if planned.expect == Expect::Assigned => {
                return fail(format!(
                    "no Set-Cookie {COOKIE} for a new visitor ({cohort})"
                ));
            }
            [] => {}
            [value] if *value == cohort && !planned.no_set_cookie => {}
            other => {
                return fail(format!(
                    "Set-Cookie {COOKIE} {other:?} with cohort {cohort}"
                ));
            }
        }
        if let Expect::Cohort(expected) | Expect::Internal(expected) = &planned.expect
            && expected != cohort
        {
            return fail(format!("cohort {cohort}, expected {expected}"));
        }
        if let Some(keeps) = &planned.keeps
            && !backend
                .cookie_lines
                .iter()
                .any(|l| l.contains(keeps.as_str()))
        {
            return fail("the backend did not receive the other cookies intact".to_owned());
        }
        Outcome::Ok(Some(cohort.clone()))
    }
}
