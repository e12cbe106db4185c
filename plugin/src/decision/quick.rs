//! The commonest request on a path of its own: a returning visitor whose
//! cookie names a cohort they keep, with no override on the request. Its
//! decision is known once the `Cookie` line, the override header and the
//! query are read, and it writes one request header. [`decide`] reaches the
//! same answer through every rule's structures; this path reads the same
//! values, compares them with names kept inline beside each other (so a
//! request touches two lines of configuration), and builds nothing.
//!
//! It answers only when [`decide`] would answer exactly so (the reason
//! `cookie`, no `Cookie` rewrite, no `Set-Cookie`), and otherwise hands
//! what it read to [`decide`] through [`Prefetch`], so that no value is read
//! from the host twice. A configuration it cannot serve ([`Quick::new`]
//! says which) always takes [`decide`].
//!
//! [`decide`]: super::decide

use super::{RequestView, Values, query_param};
use crate::config::{Config, State, Stickiness};
use crate::cookie::{self, Found, Lookup};
use crate::scan::same_bytes;

/// Variants the quick path serves; a configuration with more takes
/// [`super::decide`] on every request.
const MOST_VARIANTS: usize = 4;

/// Bytes of the names compared inline: the cookie's, the override query
/// parameter's and every variant's. Sized so that [`Quick`] is one 64-byte
/// line on wasm32.
const ARENA: usize = 32;

/// Where each of the fixed names sits in [`Quick::spans`]; the variants'
/// follow.
const COOKIE: usize = 0;
const OVERRIDE_QUERY: usize = 1;
const FIRST_VARIANT: usize = 2;

/// What the quick path needs of a configuration, in one line: the names it
/// compares inline, and the two header names it only hands to the host.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Quick<'c> {
    /// The override header's name; empty if none is configured. (Not an
    /// `Option`: a reference's niche is then free for `OnceCell<Quick>`,
    /// which needs no flag beside it.)
    override_header: &'c str,
    /// The cohort request header's name; empty if none is written.
    cohort_header: &'c str,
    /// The compared names, one after another.
    arena: [u8; ARENA],
    /// `(start, length)` in `arena` of the cookie's name, the override
    /// query parameter's (a length of 0: none) and then each variant's.
    spans: [(u8, u8); FIRST_VARIANT + MOST_VARIANTS],
    /// How many variants there are; 0 when the quick path is off.
    variants: u8,
    /// Bit `i`: a holder of variant `i` keeps it absent an override (an
    /// active variant's under `keep`, a drained one's always).
    kept: u8,
}

#[cfg(target_arch = "wasm32")]
const _: () = assert!(std::mem::size_of::<Quick<'_>>() == 64);

impl<'c> Quick<'c> {
    /// The quick path of no configuration: every request takes
    /// [`super::decide`].
    pub const OFF: Quick<'c> = Quick {
        override_header: "",
        cohort_header: "",
        arena: [0; ARENA],
        spans: [(0, 0); FIRST_VARIANT + MOST_VARIANTS],
        variants: 0,
        kept: 0,
    };

    /// The quick path for `config`. It is off (every request takes
    /// [`super::decide`]) when the reason is reported (a debug header or the
    /// decision log), when a weighted sticky cookie is kept beside the
    /// cohort (its pair must be checked and may be rewritten), with more
    /// than [`MOST_VARIANTS`] variants, or when the names compared do not
    /// fit [`ARENA`] bytes together.
    pub fn new(config: &'c Config) -> Quick<'c> {
        let off = Quick::OFF;
        if config.reports_reason()
            || config.weighted_sticky_cookie.is_some()
            || config.variants.len() > MOST_VARIANTS
        {
            return off;
        }
        Quick::inline(config).unwrap_or(off)
    }

    fn inline(config: &'c Config) -> Option<Quick<'c>> {
        let mut quick = Quick {
            override_header: config.overrides.header.as_deref().unwrap_or(""),
            cohort_header: config.header.as_deref().unwrap_or(""),
            arena: [0; ARENA],
            spans: [(0, 0); FIRST_VARIANT + MOST_VARIANTS],
            variants: u8::try_from(config.variants.len()).ok()?,
            kept: 0,
        };
        let names = [
            config.cookie_name.as_str(),
            config.overrides.query.as_deref().unwrap_or(""),
        ]
        .into_iter()
        .chain(config.variants.iter().map(|v| v.name.as_str()));
        let mut used = 0;
        for (span, name) in quick.spans.iter_mut().zip(names) {
            let end = used + name.len();
            quick
                .arena
                .get_mut(used..end)?
                .copy_from_slice(name.as_bytes());
            *span = (u8::try_from(used).ok()?, u8::try_from(name.len()).ok()?);
            used = end;
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

    /// Whether any request can take the quick path.
    pub fn is_on(&self) -> bool {
        self.variants != 0
    }

    #[inline(always)]
    fn name(&self, which: usize) -> &[u8] {
        let (start, len) = self.spans[which];
        let start = usize::from(start);
        &self.arena[start..start + usize::from(len)]
    }

    /// The cohort request header's name, if one is written.
    pub fn cohort_header(&self) -> Option<&'c str> {
        Some(self.cohort_header).filter(|name| !name.is_empty())
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
    pub fn kept<R: RequestView>(&self, request: &mut Prefetch<'c, R>) -> Option<usize> {
        if !self.is_on() {
            return None;
        }
        let lines = request.request.header_values("Cookie");
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
        let name = self.override_header;
        if !name.is_empty() {
            let values = request.request.header_values(name);
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
        (0..usize::from(self.variants))
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
    forced: Option<(&'q str, Values<R::Bytes>)>,
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
                Some((forced, values)) if forced.eq_ignore_ascii_case(name) => Some(values),
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
