//! Checks on what the plugin writes, written independently of the plugin's
//! own cookie code (which is what they check).
//!
//! Std only, so the native fuzz targets use it without wasmtime.

use super::configs::FuzzConfig;

/// The `(name, value)` pairs of `Cookie` lines: split at `;`, trimmed of
/// spaces and tabs, split at the first `=`, the name trimmed again (the
/// value is not: Go reads `a= b` as ` b`); empty segments skipped.
pub fn cookie_pairs<'a>(lines: &[&'a [u8]]) -> Vec<(&'a [u8], &'a [u8])> {
    let mut out = Vec::new();
    for line in lines {
        for segment in line.split(|&b| b == b';') {
            let segment = trim(segment);
            if segment.is_empty() {
                continue;
            }
            match segment.iter().position(|&b| b == b'=') {
                Some(eq) => out.push((trim(&segment[..eq]), &segment[eq + 1..])),
                None => out.push((segment, &segment[segment.len()..])),
            }
        }
    }
    out
}

/// Every value of the pairs called `name`, in order.
pub fn values_named<'a>(lines: &[&'a [u8]], name: &str) -> Vec<&'a [u8]> {
    cookie_pairs(lines)
        .into_iter()
        .filter(|(n, _)| *n == name.as_bytes())
        .map(|(_, v)| v)
        .collect()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 6265 `cookie-octet`s, non-empty.
pub fn is_cookie_value(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

/// 32 lowercase hex digits.
pub fn is_visitor_id(v: &[u8]) -> bool {
    v.len() == 32 && v.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Which cookie a `Set-Cookie` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCookie<'a> {
    /// The cohort cookie, naming this variant.
    Cohort(&'a [u8]),
    /// A new visitor id.
    Visitor(&'a [u8]),
}

/// A `Set-Cookie` value must be exactly `name=value` and the configured
/// attributes: the cohort cookie with a variant's name, or the visitor
/// cookie with 32 hex digits. Nothing else may appear, so no value can
/// carry an attribute or a second cookie.
pub fn check_set_cookie<'a>(cfg: &FuzzConfig, value: &'a [u8]) -> Result<SetCookie<'a>, String> {
    let shown = String::from_utf8_lossy(value);
    let pair = value
        .strip_suffix(cfg.suffix.as_bytes())
        .ok_or_else(|| format!("Set-Cookie {shown:?} does not end with {:?}", cfg.suffix))?;
    let eq = pair
        .iter()
        .position(|&b| b == b'=')
        .ok_or_else(|| format!("Set-Cookie {shown:?} has no '='"))?;
    let (name, v) = (&pair[..eq], &pair[eq + 1..]);
    if !is_cookie_value(v) {
        return Err(format!(
            "Set-Cookie {shown:?}: the value is not cookie-octets"
        ));
    }
    if name == cfg.cookie.as_bytes() {
        if !cfg.is_variant(v) {
            return Err(format!("Set-Cookie {shown:?} names no variant"));
        }
        Ok(SetCookie::Cohort(v))
    } else if cfg
        .visitor
        .is_some_and(|visitor| name == visitor.as_bytes())
    {
        if !is_visitor_id(v) {
            return Err(format!("Set-Cookie {shown:?} is not a visitor id"));
        }
        Ok(SetCookie::Visitor(v))
    } else {
        Err(format!(
            "Set-Cookie {shown:?} sets a cookie Cohort does not own"
        ))
    }
}

/// Every `Set-Cookie` of one response: each well-formed, at most one per
/// cookie, and a cohort cookie only for the request's cohort. Returns
/// `(cohort set, visitor id set)`.
pub fn check_set_cookies<'a>(
    cfg: &FuzzConfig,
    values: &[&'a [u8]],
    cohort: &[u8],
) -> Result<(bool, Option<&'a [u8]>), String> {
    let mut set_cohort = false;
    let mut visitor = None;
    for value in values {
        match check_set_cookie(cfg, value)? {
            SetCookie::Cohort(v) => {
                if set_cohort {
                    return Err("two cohort Set-Cookies".into());
                }
                if v != cohort {
                    return Err(format!(
                        "Set-Cookie assigns {:?} but the request went to {:?}",
                        String::from_utf8_lossy(v),
                        String::from_utf8_lossy(cohort)
                    ));
                }
                set_cohort = true;
            }
            SetCookie::Visitor(v) => {
                if visitor.replace(v).is_some() {
                    return Err("two visitor-id Set-Cookies".into());
                }
            }
        }
    }
    Ok((set_cohort, visitor))
}

/// The `Cookie` lines a backend receives name exactly the cohort, once,
/// and the weighted sticky cookie exactly as the cohort's child wants it
/// (once, or not at all for a variant without a child).
pub fn check_forwarded_cookies(
    cfg: &FuzzConfig,
    lines: &[&[u8]],
    cohort: &[u8],
) -> Result<(), String> {
    let show = |v: &[&[u8]]| {
        v.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<Vec<_>>()
    };
    let held = values_named(lines, cfg.cookie);
    if held != [cohort] {
        return Err(format!(
            "the backend's cookies name the cohort as {:?}, want exactly [{:?}] (lines {:?})",
            show(&held),
            String::from_utf8_lossy(cohort),
            show(lines)
        ));
    }
    if let Some(sticky) = cfg.sticky_cookie {
        let found = values_named(lines, sticky);
        let want: Vec<&[u8]> = cfg
            .sticky_value_of(cohort)
            .map(str::as_bytes)
            .into_iter()
            .collect();
        if found != want {
            return Err(format!(
                "the backend's {sticky} cookies are {:?}, want {:?} (lines {:?})",
                show(&found),
                show(&want),
                show(lines)
            ));
        }
    }
    Ok(())
}

/// The debug header's `variant; reason=why`, checked and split.
pub fn check_debug_header<'a>(value: &'a [u8], cohort: &[u8]) -> Result<&'a str, String> {
    let text = std::str::from_utf8(value).map_err(|_| "debug header is not UTF-8".to_owned())?;
    let (variant, reason) = text
        .split_once("; reason=")
        .ok_or_else(|| format!("debug header {text:?} is not 'variant; reason=...'"))?;
    if variant.as_bytes() != cohort {
        return Err(format!("debug header {text:?} disagrees with the cohort"));
    }
    if !super::configs::REASONS.contains(&reason) {
        return Err(format!("debug header {text:?} gives an unknown reason"));
    }
    Ok(reason)
}
