//! Address rules: the default deny list of special-purpose ranges (IANA registries, RFC 6890
//! and successors), user `allow_cidrs` / `deny_cidrs`, and the IPv4 addresses embedded in
//! IPv6 forms. The most specific matching range decides; at equal length the user's range
//! beats the default list, and deny beats allow.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// IPv4 ranges that are not globally reachable, denied unless re-opened.
const SPECIAL_V4: &[&str] = &[
    "0.0.0.0/8",       // "this network", unspecified
    "10.0.0.0/8",      // private (RFC 1918)
    "100.64.0.0/10",   // shared address space, CGNAT (RFC 6598)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",   // private (RFC 1918)
    "192.0.0.0/24",    // IETF protocol assignments, incl. 192.0.0.192 (metadata on some clouds)
    "192.0.2.0/24",    // documentation (TEST-NET-1)
    "192.88.99.0/24",  // deprecated 6to4 relay anycast
    "192.168.0.0/16",  // private (RFC 1918)
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation (TEST-NET-2)
    "203.0.113.0/24",  // documentation (TEST-NET-3)
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
];

/// IPv6 ranges that are not globally reachable, denied unless re-opened. The forms that embed
/// an IPv4 address (::ffff:0:0/96, ::/96, 64:ff9b::/96, 2002::/16, 2001::/32) are judged by
/// that address instead (see [`embedded_v4`]).
const SPECIAL_V6: &[&str] = &[
    "::/128",         // unspecified
    "::1/128",        // loopback
    "64:ff9b:1::/48", // local-use NAT64
    "100::/64",       // discard-only
    "2001:2::/48",    // benchmarking
    "2001:db8::/32",  // documentation
    "3fff::/20",      // documentation (RFC 9637)
    "5f00::/16",      // segment routing SIDs
    "fc00::/7",       // unique local
    "fe80::/10",      // link-local
    "ff00::/8",       // multicast
];

/// One range with its verdict.
#[derive(Debug, Clone, Copy)]
struct Range {
    net: IpNet,
    allow: bool,
    /// From the config rather than the default list: at equal length, the user's range wins.
    user: bool,
}

impl Range {
    /// Which of two matching ranges decides: the longer prefix, then the user's, then deny.
    fn rank(&self) -> (u8, bool, bool) {
        (self.net.prefix_len(), self.user, !self.allow)
    }
}

/// The address rules of a policy.
#[derive(Debug, Clone)]
pub(super) struct AddressRules {
    ranges: Vec<Range>,
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address; host bits must be zero.
pub(super) fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let net = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match text.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return Err(format!("`{text}` is not a CIDR range or an address")),
        },
    };
    if let IpNet::V6(v6) = net {
        // Addresses are matched in canonical form (IPv4-mapped ones as IPv4), so a range
        // spelled in the mapped space would never match: ask for the IPv4 spelling.
        if let (Some(v4), true) = (v6.network().to_ipv4_mapped(), v6.prefix_len() >= 96) {
            return Err(format!(
                "`{text}` is IPv4-mapped and would never match: write it as `{v4}/{}`",
                v6.prefix_len() - 96
            ));
        }
    }
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set: did you mean `{}`?",
            net.trunc()
        ));
    }
    Ok(net)
}

impl AddressRules {
    /// The default deny list plus the user's ranges.
    pub(super) fn new(allow: &[IpNet], deny: &[IpNet]) -> Self {
        let defaults = SPECIAL_V4
            .iter()
            .chain(SPECIAL_V6)
            .filter_map(|s| s.parse::<IpNet>().ok());
        let mut ranges: Vec<Range> = defaults
            .map(|net| Range {
                net,
                allow: false,
                user: false,
            })
            .collect();
        ranges.extend(deny.iter().map(|net| Range {
            net: *net,
            allow: false,
            user: true,
        }));
        ranges.extend(allow.iter().map(|net| Range {
            net: *net,
            allow: true,
            user: true,
        }));
        Self { ranges }
    }

    /// Whether `ip` may be dialed: the address itself, canonicalised, and every IPv4 address
    /// it embeds.
    pub(super) fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if !self.decide(ip) {
            return false;
        }
        match ip {
            IpAddr::V6(v6) => embedded_v4(v6)
                .iter()
                .all(|v4| self.decide(IpAddr::V4(*v4))),
            IpAddr::V4(_) => true,
        }
    }

    /// The verdict of the deciding range holding `ip` ([`Range::rank`]); allowed when none.
    fn decide(&self, ip: IpAddr) -> bool {
        self.ranges
            .iter()
            .filter(|r| r.net.contains(&ip))
            .max_by_key(|r| r.rank())
            .is_none_or(|r| r.allow)
    }
}

/// The IPv4 addresses an IPv6 address carries: IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`), 6to4 (`2002:AABB:CCDD::`), and Teredo (server, and client XOR
/// 0xffffffff). IPv4-mapped addresses were already canonicalised to IPv4.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let seg = ip.segments();
    let mut out = Vec::new();
    if bits >> 32 == 0 && bits > 1 {
        out.push(low32);
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        out.push(low32);
    }
    if seg[0] == 0x2002 {
        out.push(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        out.push(Ipv4Addr::from(((bits >> 64) & 0xffff_ffff) as u32));
        out.push(Ipv4Addr::from(!((bits & 0xffff_ffff) as u32)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> AddressRules {
        let parse = |list: &[&str]| {
            list.iter()
                .map(|s| parse_cidr(s).unwrap())
                .collect::<Vec<_>>()
        };
        AddressRules::new(&parse(allow), &parse(deny))
    }

    #[test]
    fn default_list_denies_special_ranges_and_allows_public_ones() {
        let r = rules(&[], &[]);
        for denied in [
            "127.0.0.1",
            "10.1.2.3",
            "100.64.0.1",
            "169.254.169.254",
            "192.0.0.192",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::7f00:1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(!r.allows(denied.parse().unwrap()), "{denied}");
        }
        for allowed in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::",
            "::ffff:8.8.8.8",
        ] {
            assert!(r.allows(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[test]
    fn the_most_specific_range_decides() {
        let r = rules(&["10.0.0.0/8"], &["10.1.0.0/16"]);
        assert!(r.allows("10.2.3.4".parse().unwrap()));
        assert!(!r.allows("10.1.2.3".parse().unwrap()));
        let r = rules(&["10.1.0.0/16"], &["10.0.0.0/8"]);
        assert!(r.allows("10.1.2.3".parse().unwrap()));
        assert!(!r.allows("10.2.3.4".parse().unwrap()));
        let r = rules(&["127.0.0.0/8"], &[]);
        assert!(r.allows("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn cidrs_are_strict() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "foo",
            "",
            "::ffff:8.8.8.0/120",
            "::ffff:0:0/96",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cidr("10.1.2.3").unwrap().prefix_len(), 32);
    }
}
