//! Timestamps and durations for the report, without a date library:
//! RFC 3339 as Traefik writes it (`2026-12-01T23:02:28.521734118Z`,
//! `...+01:00` in `StartLocal`), durations as `--every` takes them (`30s`,
//! `1m`, `1h30m`), both as nanoseconds since the Unix epoch or in all.

/// Nanoseconds in a second.
pub const SECOND: i64 = 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Nanoseconds since the epoch of an RFC 3339 timestamp
/// (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `t`/`z`/space accepted);
/// `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = i64::from(digits(0..4)?);
    let (month, day) = (digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 9 {
                nanos = nanos * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let len = at - start;
        if len == 0 {
            return None;
        }
        for _ in len..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = digits(at + 1..at + 3)?;
            let mm = digits(at + 4..at + 6)?;
            let _ = (h1, h2, m1, m2);
            if hh > 23 || mm > 59 {
                return None;
            }
            let seconds = i64::from(hh * 3600 + mm * 60);
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second.min(59)) - offset;
    seconds.checked_mul(SECOND)?.checked_add(nanos)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` for nanoseconds since the epoch: with
/// milliseconds only when they are not zero.
pub fn format_utc(nanos: i64) -> String {
    let seconds = nanos.div_euclid(SECOND);
    let millis = nanos.rem_euclid(SECOND) / 1_000_000;
    let (date, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(date);
    let clock = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        time / 3600,
        time % 3600 / 60,
        time % 60
    );
    if millis == 0 {
        format!("{clock}Z")
    } else {
        format!("{clock}.{millis:03}Z")
    }
}

/// A duration as `--every` takes it: one or more `<number><unit>` with
/// units `ms`, `s`, `m`, `h`, `d` (`500ms`, `30s`, `1m`, `1h30m`), in
/// nanoseconds; `None` for anything else or zero.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: i64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let (unit, len) = if rest.starts_with("ms") {
            (1_000_000, 2)
        } else {
            match rest.as_bytes().first()? {
                b's' => (SECOND, 1),
                b'm' => (60 * SECOND, 1),
                b'h' => (3600 * SECOND, 1),
                b'd' => (86_400 * SECOND, 1),
                _ => return None,
            }
        };
        rest = rest.get(len..)?;
        total = total.checked_add(number.checked_mul(unit)?)?;
    }
    (total > 0).then_some(total)
}

/// A duration in the shortest of `--every`'s forms (`90s` is `1m30s`).
pub fn format_duration(nanos: i64) -> String {
    if nanos % SECOND != 0 {
        return format!("{}ms", nanos / 1_000_000);
    }
    let mut seconds = nanos / SECOND;
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= len {
            out.push_str(&format!("{}{unit}", seconds / len));
            seconds %= len;
        }
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_traefik_writes_it() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-12-01T23:02:28.521734118Z"),
            Some(1_796_166_148 * SECOND + 521_734_118)
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T23:02:28Z"),
            parse_rfc3339("2026-12-02T00:02:28+01:00")
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T23:02:28.5Z"),
            Some(1_796_166_148 * SECOND + 500_000_000)
        );
        // Digits past nanoseconds are dropped, not rounded.
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01.0000000019Z"),
            Some(SECOND + 1)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00-05:30"),
            Some((1_709_208_000 + 19_800) * SECOND)
        );
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T23:02:28",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T23:02:28.Z",
            "2026-12-01T23:02:28+1:00",
            "2026-12-01T23:02:28Zjunk",
            "２026-12-01T23:02:28Z",
            "abcd-ef-ghTij:kl:mnZ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 20_788, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_utc(1_796_166_148 * SECOND + 521_734_118),
            "2026-12-01T23:02:28.521Z"
        );
        assert_eq!(format_utc(-SECOND), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m"), Some(60 * SECOND));
        assert_eq!(parse_duration("30s"), Some(30 * SECOND));
        assert_eq!(parse_duration("1h30m"), Some(5400 * SECOND));
        assert_eq!(parse_duration("500ms"), Some(SECOND / 2));
        assert_eq!(parse_duration("2d"), Some(172_800 * SECOND));
        for bad in [
            "",
            "m",
            "1",
            "1x",
            "-1m",
            "0s",
            "1.5m",
            "99999999999999999999d",
            "1m 2s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(format_duration(5400 * SECOND), "1h30m");
        assert_eq!(format_duration(60 * SECOND), "1m");
        assert_eq!(format_duration(SECOND / 2), "500ms");
    }
}
