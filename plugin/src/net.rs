//! Client addresses and CIDR ranges, for `override.allowFrom` and the `ip`
//! key source.

use std::net::{IpAddr, Ipv6Addr};

/// An address range such as `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u128,
    mask: u128,
    v4: bool,
}

impl Cidr {
    /// Parses `ip/len` or a bare address (a single host).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let ip: IpAddr = addr.trim().parse().ok()?;
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(bits);
        if len > bits {
            return None;
        }
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        let v4 = ip.is_ipv4();
        Some(Cidr {
            network: aligned(ip) & mask,
            mask,
            v4,
        })
    }

    /// True when `ip` is inside the range. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.1.2.3`) count as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.v4 && aligned(ip) & self.mask == self.network
    }
}

/// Left-aligns an address in 128 bits so one mask works for both families.
fn aligned(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The IP of a source address as hosts report it: `1.2.3.4:5678`,
/// `[::1]:5678`, or a bare address. `None` for anything else.
pub fn source_ip(addr: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(addr).ok()?.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, _port) = rest.split_once("]:")?;
        // Drop an IPv6 zone (`fe80::1%eth0`).
        let host = host.split('%').next()?;
        return host
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| canonical(IpAddr::V6(v6)));
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn matches_v4_and_v6_ranges() {
        let ten = Cidr::parse("10.0.0.0/8").expect("valid");
        assert!(ten.contains(ip("10.200.1.1")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")));
        let doc = Cidr::parse("2001:db8::/32").expect("valid");
        assert!(doc.contains(ip("2001:db8::1")));
        assert!(!doc.contains(ip("2001:db9::1")));
        assert!(!doc.contains(ip("10.0.0.1")));
        let host = Cidr::parse("127.0.0.1").expect("valid");
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));
        let all = Cidr::parse("0.0.0.0/0").expect("valid");
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn rejects_bad_ranges() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "a.b.c.d",
            "10.0.0.0/x",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_source_addresses() {
        assert_eq!(source_ip(b"1.2.3.4:5678"), Some(ip("1.2.3.4")));
        assert_eq!(source_ip(b"[::1]:443"), Some(ip("::1")));
        assert_eq!(source_ip(b"[fe80::1%eth0]:443"), Some(ip("fe80::1")));
        assert_eq!(source_ip(b"[::ffff:10.0.0.1]:1"), Some(ip("10.0.0.1")));
        assert_eq!(source_ip(b"::1"), Some(ip("::1")));
        assert_eq!(source_ip(b"10.0.0.1"), Some(ip("10.0.0.1")));
        for bad in [
            &b""[..],
            b"garbage",
            b"1.2.3.4:port",
            b"[::1",
            b"\xff\xfe",
            b"@:1",
        ] {
            assert_eq!(source_ip(bad), None, "{bad:?}");
        }
    }
}
