//! The commonest request on a path of its own: a returning visitor whose
//! cookie names a cohort they keep, with no override on the request. Its
//! decision is known once the `Cookie` line, the override header and the
//! query are read, and it writes one request header. [`decide`] reaches the
//! same answer through every rule's structures; this path reads the same
//! values, compares them with names kept inline in one line, and builds
//! nothing.
//!
//! The names the host reads for its calls (`Cookie`, the override header,
//! the cohort header) sit on that line too: the host reads them right after
//! the guest has, from a warm line, where from the data and the
//! configuration's heap they were three cold lines on two pages, which cost
//! Traefik about 0.3 µs a request (notes/performance.md, "Session 18").
//!
//! It answers only when [`decide`] would answer exactly so (the reason
//! `cookie`, no `Cookie` rewrite, no `Set-Cookie`), and otherwise hands
//! what it read to [`decide`] through [`Prefetch`], so that no value is read
//! from the host twice. A configuration it cannot serve ([`Quick::new`]
//! says which) always takes [`decide`].
//!
//! [`decide`]: super::decide

use std::num::NonZeroU8;

use super::{RequestView, Values, query_param};
use crate::config::{Config, State, Stickiness};
use crate::cookie::{self, Found, Lookup};
use crate::scan::same_bytes;

/// Variants the quick path serves; a configuration with more takes
/// [`super::decide`] on every request.
const MOST_VARIANTS: usize = 4;

/// Where each name sits in [`Quick::ends`]; the variants' follow.
const COOKIE_HEADER: usize = 0;
const OVERRIDE_HEADER: usize = 1;
const COHORT_HEADER: usize = 2;
const COOKIE: usize = 3;
const OVERRIDE_QUERY: usize = 4;
const FIRST_VARIANT: usize = 5;
const NAMES: usize = FIRST_VARIANT + MOST_VARIANTS;

/// Bytes of names kept inline: what is left of the line.
const ARENA: usize = 64 - NAMES - 2;

/// What the quick path needs of a configuration, in one 64-byte line: every
/// name it compares or hands to the host, one after another.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Quick {
    /// The names: `Cookie`, the override header's, the cohort header's, the
    /// cookie's, the override query parameter's (empty when not
    /// configured), then each variant's.
    arena: [u8; ARENA],
    /// Where each name ends in `arena`; each starts where the one before
    /// ends.
    ends: [u8; NAMES],
    /// How many variants there are. Never 0, which leaves `Option<Quick>`
    /// (and `OnceCell<Quick>`) a niche for their flag, on the same line.
    variants: NonZeroU8,
    /// Bit `i`: a holder of variant `i` keeps it absent an override (an
    /// active variant's under `keep`, a drained one's always).
    kept: u8,
}

const _: () = assert!(std::mem::size_of::<Option<Quick>>() == 64);

impl Quick {
    /// The quick path for `config`, or `None` when every request takes
    /// [`super::decide`]: when the reason is reported (a debug header or the
    /// decision log), when a weighted sticky cookie is kept beside the
    /// cohort (its pair must be checked and may be rewritten), with more
    /// than [`MOST_VARIANTS`] variants, or when the names do not fit
    /// [`ARENA`] bytes together (`Cookie` and both header names included).
    pub fn new(config: &Config) -> Option<Quick> {
        if config.reports_reason()
            || config.weighted_sticky_cookie.is_some()
            || config.variants.len() > MOST_VARIANTS
        {
            return None;
        }
        let mut quick = Quick {
            arena: [0; ARENA],
            ends: [0; NAMES],
            variants: NonZeroU8::new(u8::try_from(config.variants.len()).ok()?)?,
            kept: 0,
        };
        let o = &config.overrides;
        let names = [
            "Cookie",
            o.header.as_deref().unwrap_or(""),
            config.header.as_deref().unwrap_or(""),
            config.cookie_name.as_str(),
            o.query.as_deref().unwrap_or(""),
        ]
        .into_iter()
        .chain(config.variants.iter().map(|v| v.name.as_str()));
        let mut used = 0;
        for (end, name) in quick.ends.iter_mut().zip(names) {
            let next = used + name.len();
            quick
                .arena
                .get_mut(used..next)?
                .copy_from_slice(name.as_bytes());
            *end = u8::try_from(next).ok()?;
            used = next;
        }
        for (i, variant) in config.variants.iter().enumerate() {
            let keeps = match variant.state {
                State::Disabled => false,
                State::Drained => true,
                State::Active => config.stickiness == Stickiness::Keep,
            };
            quick.kept |= u8::from(keeps) << i;
        }
        Some(quick)
    }

    #[inline(always)]
    fn name(&self, which: usize) -> &[u8] {
        let start = match which.checked_sub(1) {
            Some(before) => usize::from(self.ends[before]),
            None => 0,
        };
        let end = usize::from(self.ends[which]);
        &self.arena[start..end]
    }

    /// The cohort request header's name, if one is written.
    pub fn cohort_header(&self) -> Option<&[u8]> {
        Some(self.name(COHORT_HEADER)).filter(|name| !name.is_empty())
    }

    /// Variant `i`'s name, the cohort header's value.
    #[inline]
    pub fn variant_name(&self, i: usize) -> &[u8] {
        self.name(FIRST_VARIANT + i)
    }

    /// The variant whose holder this request is, when [`super::decide`]
    /// would keep them there with nothing to write but the cohort header:
    /// one `Cookie` line with exactly one pair of the cookie's name, naming
    /// a variant its holders keep, and neither override on the request.
    /// Reads the `Cookie` line, then the override header and the request
    /// target as far as they are configured, each once; `None` leaves all
    /// it read, and where the cohort cookie is in the line, in `request`
    /// for [`super::decide`].
    pub fn kept<'q, R: RequestView>(&'q self, request: &mut Prefetch<'q, R>) -> Option<usize> {
        let lines = request
            .request
            .header_values_named(self.name(COOKIE_HEADER));
        let (held, found) = match &lines {
            Values::One(line) => {
                let line = line.as_ref();
                let held = cookie::lookup_token(std::slice::from_ref(&line), self.name(COOKIE));
                (self.holder(held), Some(Found::of(held, line)))
            }
            _ => (None, None),
        };
        request.cookie = Some((lines, found));
        let variant = held?;
        let name = self.name(OVERRIDE_HEADER);
        if !name.is_empty() {
            let values = request.request.header_values_named(name);
            let present = !values.is_empty();
            request.forced = Some((name, values));
            if present {
                return None;
            }
        }
        let query = self.name(OVERRIDE_QUERY);
        if !query.is_empty() {
            let uri = request.request.uri();
            let present = query_param(uri.as_ref(), query).is_some();
            request.uri = Some(uri);
            if present {
                return None;
            }
        }
        Some(variant)
    }

    /// The variant the one pair of the cookie's name names, if its holders
    /// keep it.
    fn holder(&self, held: Lookup<'_>) -> Option<usize> {
        let Lookup::One(value) = held else {
            return None;
        };
        (0..usize::from(self.variants.get()))
            .find(|&i| same_bytes(self.variant_name(i), value))
            .filter(|&i| self.kept & (1 << i) != 0)
    }
}

/// A request some of whose values were read already: the quick path's
/// reads, which [`super::decide`] then takes from here, each once, rather
/// than from the host again.
pub struct Prefetch<'q, R: RequestView> {
    pub request: R,
    /// The `Cookie` lines, and where the cohort cookie is in the one line.
    cookie: Option<(Values<R::Bytes>, Option<Found>)>,
    /// The override header's name and values.
    forced: Option<(&'q [u8], Values<R::Bytes>)>,
    uri: Option<R::Bytes>,
}

impl<R: RequestView> Prefetch<'_, R> {
    pub fn new(request: R) -> Self {
        Prefetch {
            request,
            cookie: None,
            forced: None,
            uri: None,
        }
    }
}

impl<R: RequestView> RequestView for Prefetch<'_, R> {
    type Bytes = R::Bytes;
    fn header_values(&mut self, name: &str) -> Values<R::Bytes> {
        let kept = if name.eq_ignore_ascii_case("Cookie") {
            self.cookie.take().map(|(lines, _)| lines)
        } else {
            match self.forced.take() {
                Some((forced, values)) if forced.eq_ignore_ascii_case(name.as_bytes()) => {
                    Some(values)
                }
                other => {
                    self.forced = other;
                    None
                }
            }
        };
        kept.unwrap_or_else(|| self.request.header_values(name))
    }
    fn cookie_lines(&mut self) -> (Values<R::Bytes>, Option<Found>) {
        self.cookie
            .take()
            .unwrap_or_else(|| (self.request.header_values("Cookie"), None))
    }
    fn method(&mut self) -> R::Bytes {
        self.request.method()
    }
    fn uri(&mut self) -> R::Bytes {
        self.uri.take().unwrap_or_else(|| self.request.uri())
    }
    fn source_addr(&mut self) -> R::Bytes {
        self.request.source_addr()
    }
}
