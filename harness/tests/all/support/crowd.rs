//! Many visitors at once through a real Traefik, each followed request by
//! request: which version and pod answered, what the backend saw and which
//! cookies came back. The scenario tests assert on these traces.

use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, ensure};

use super::client::{Response, SetCookie, Visitor, agent};
use super::recipes::HOST;

/// One answered request.
#[derive(Debug, Clone)]
pub struct Step {
    /// The version that answered (`v1`, `v2`: whoami `Name: canary-<v>`).
    pub version: String,
    /// The pod that answered (whoami `Hostname:`).
    pub pod: String,
    /// Every `Set-Cookie` of the response.
    pub set_cookies: Vec<SetCookie>,
    /// Every `X-Canary` value the backend received.
    pub x_canary: Vec<String>,
    /// Every `Cookie` line the backend received.
    pub cookies_seen: Vec<String>,
}

impl Step {
    /// The value of the `Set-Cookie` for `name`, if any (the last one).
    pub fn set(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .rev()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }

    /// Whether the backend received exactly the pair `name=value` (and no
    /// other pair of that name).
    pub fn backend_saw_only(&self, name: &str, value: &str) -> bool {
        let pairs: Vec<&str> = self
            .cookies_seen
            .iter()
            .flat_map(|line| line.split(';'))
            .map(str::trim)
            .filter(|pair| pair.split_once('=').is_some_and(|(n, _)| n == name))
            .collect();
        pairs == [format!("{name}={value}")]
    }
}

/// `GET path` as `visitor` with extra headers; fails unless a whoami pod
/// answered 200.
pub fn step(visitor: &mut Visitor, path: &str, headers: &[(&str, &str)]) -> Result<Step> {
    let response = visitor.get_with(path, headers)?;
    ensure!(
        response.status == 200,
        "status {} for GET {path}: {}",
        response.status,
        response.body
    );
    let reply = response.whoami()?;
    let version = reply
        .name
        .strip_prefix("canary-")
        .with_context(|| format!("unexpected whoami name {:?}", reply.name))?
        .to_owned();
    Ok(Step {
        version,
        pod: reply.hostname.clone(),
        set_cookies: response.set_cookies()?,
        x_canary: reply.headers("X-Canary").map(str::to_owned).collect(),
        cookies_seen: reply.headers("Cookie").map(str::to_owned).collect(),
    })
}

/// A visitor of the recipes' host on `base`, over `agent`'s connections.
pub fn visitor(base: &str, agent: &ureq::Agent) -> Visitor {
    Visitor::with_agent(base, agent.clone()).with_host(HOST)
}

/// Runs `job(i, agent)` for `i` in `0..n` on `threads` threads, each with
/// its own keep-alive agent; the results in the order of `i`.
pub fn in_parallel<T, F>(n: usize, threads: usize, job: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(usize, &ureq::Agent) -> Result<T> + Sync,
{
    let threads = threads.clamp(1, n.max(1));
    let mut slots: Vec<Option<T>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| -> Result<()> {
        let job = &job;
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<Vec<(usize, T)>> {
                    let agent = agent();
                    (t..n)
                        .step_by(threads)
                        .map(|i| job(i, &agent).map(|r| (i, r)))
                        .collect()
                })
            })
            .collect();
        for worker in workers {
            let results = worker
                .join()
                .map_err(|_| anyhow!("a visitor thread panicked"))??;
            for (i, r) in results {
                slots[i] = Some(r);
            }
        }
        Ok(())
    })?;
    slots
        .into_iter()
        .map(|r| r.context("a visitor's result is missing"))
        .collect()
}

/// A browser that keeps its cookies across phases of a test, usable from
/// any thread.
pub struct Browser {
    visitor: Mutex<Visitor>,
}

impl Browser {
    pub fn new(visitor: Visitor) -> Self {
        Self {
            visitor: Mutex::new(visitor),
        }
    }

    /// `GET /`, which must reach a whoami pod.
    pub fn visit(&self) -> Result<Step> {
        let mut v = self.lock()?;
        step(&mut v, "/", &[])
    }

    /// `GET /`, whatever answers.
    pub fn get(&self) -> Result<Response> {
        self.lock()?.get("/")
    }

    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.lock()
            .ok()
            .and_then(|v| v.cookie(name).map(str::to_owned))
    }

    /// The visitor id Cohort generated for this browser.
    pub fn id(&self) -> Result<String> {
        self.cookie("cohort_id").context("no visitor id")
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Visitor>> {
        self.visitor
            .lock()
            .map_err(|_| anyhow!("a visitor lock is poisoned"))
    }
}

/// `n` new anonymous browsers of the recipes' host on `base`, each after
/// its first request, with that request.
pub fn sign_up(base: &str, n: usize) -> Result<Vec<(Browser, Step)>> {
    in_parallel(n, 4, |_, agent| {
        let mut v = visitor(base, agent);
        let first = step(&mut v, "/", &[])?;
        Ok((Browser::new(v), first))
    })
}

/// [`sign_up`], as the browsers and their first steps.
pub fn sign_up_split(base: &str, n: usize) -> Result<(Vec<Browser>, Vec<Step>)> {
    Ok(sign_up(base, n)?.into_iter().unzip())
}

/// Each browser's step in `after` kept the version and pod of its step in
/// `before`, and no cookie was set.
#[track_caller]
pub fn assert_unchanged(before: &[Step], after: &[Step]) {
    for (was, now) in before.iter().zip(after) {
        assert_eq!((&now.version, &now.pod), (&was.version, &was.pod));
        assert!(now.set_cookies.is_empty(), "{now:?}");
    }
}

/// One `GET /` by each browser, in parallel.
pub fn visit_all(browsers: &[Browser]) -> Result<Vec<Step>> {
    in_parallel(browsers.len(), 4, |i, _| browsers[i].visit())
}

/// How many times consecutive values differ (version or pod changes).
pub fn changes<'a>(steps: impl IntoIterator<Item = &'a str>) -> usize {
    let steps: Vec<&str> = steps.into_iter().collect();
    steps.windows(2).filter(|w| w[0] != w[1]).count()
}
