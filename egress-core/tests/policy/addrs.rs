//! The address check: the default-deny table, IPv6 forms that embed an IPv4, and
//! `allow_cidrs` / `deny_cidrs` with the most specific range deciding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use egress_core::policy::{PolicyConfig, Reason};

use crate::Want::{Allow, Ip};
use crate::{Want, build, cidrs, run_addr_table};

/// The IPv4 ranges of the default-deny table: `(first, last, name)`.
pub(crate) const V4_SPECIAL: &[(&str, &str, &str)] = &[
    ("0.0.0.0", "0.255.255.255", "this network 0/8"),
    ("10.0.0.0", "10.255.255.255", "RFC 1918 10/8"),
    ("100.64.0.0", "100.127.255.255", "CGNAT 100.64/10"),
    ("127.0.0.0", "127.255.255.255", "loopback 127/8"),
    ("169.254.0.0", "169.254.255.255", "link-local 169.254/16"),
    ("172.16.0.0", "172.31.255.255", "RFC 1918 172.16/12"),
    (
        "192.0.0.0",
        "192.0.0.255",
        "IETF protocol assignments 192.0.0/24",
    ),
    ("192.0.2.0", "192.0.2.255", "TEST-NET-1 192.0.2/24"),
    ("192.168.0.0", "192.168.255.255", "RFC 1918 192.168/16"),
    ("198.18.0.0", "198.19.255.255", "benchmarking 198.18/15"),
    ("198.51.100.0", "198.51.100.255", "TEST-NET-2 198.51.100/24"),
    ("203.0.113.0", "203.0.113.255", "TEST-NET-3 203.0.113/24"),
    ("224.0.0.0", "239.255.255.255", "multicast 224/4"),
    (
        "240.0.0.0",
        "255.255.255.255",
        "reserved 240/4 and broadcast",
    ),
];

#[test]
fn ipv4_special_ranges_are_denied_inside_and_edges() {
    let p = build(&PolicyConfig::default());
    let mut rows: Vec<(String, Want)> = Vec::new();
    for (first, last, _) in V4_SPECIAL {
        rows.push(((*first).to_owned(), Ip));
        rows.push(((*last).to_owned(), Ip));
        let f: u32 = first.parse::<Ipv4Addr>().unwrap().into();
        let l: u32 = last.parse::<Ipv4Addr>().unwrap().into();
        rows.push((Ipv4Addr::from(f + (l - f) / 2).to_string(), Ip));
        rows.push((Ipv4Addr::from(f + 1).to_string(), Ip));
        rows.push((Ipv4Addr::from(l - 1).to_string(), Ip));
    }
    for a in [
        "127.0.0.1",
        "127.0.1.1",
        "127.1.2.3",
        "169.254.169.254",
        "169.254.170.2",
        "192.0.0.192",
        "192.0.0.9",
        "192.0.0.10",
        "192.0.0.170",
        "192.0.0.171",
        "100.100.100.200",
        "255.255.255.255",
        "255.255.255.254",
        "239.255.255.250",
        "224.0.0.251",
        "0.0.0.0",
        "172.17.0.1",
        "10.96.0.1",
        "192.168.1.1",
    ] {
        rows.push((a.to_owned(), Ip));
    }
    let rows: Vec<(&str, Want)> = rows.iter().map(|(a, w)| (a.as_str(), *w)).collect();
    run_addr_table("IPv4 special ranges", &p, &rows);
}

#[test]
fn ipv4_just_outside_each_range_is_allowed() {
    let p = build(&PolicyConfig::default());
    run_addr_table(
        "just outside",
        &p,
        &[
            ("1.0.0.0", Allow),
            ("1.1.1.1", Allow),
            ("9.255.255.255", Allow),
            ("11.0.0.0", Allow),
            ("100.63.255.255", Allow),
            ("100.128.0.0", Allow),
            ("126.255.255.255", Allow),
            ("128.0.0.0", Allow),
            ("169.253.255.255", Allow),
            ("169.255.0.0", Allow),
            ("172.15.255.255", Allow),
            ("172.32.0.0", Allow),
            ("191.255.255.255", Allow),
            ("192.0.1.0", Allow),
            ("192.0.1.255", Allow),
            ("192.0.3.0", Allow),
            ("192.167.255.255", Allow),
            ("192.169.0.0", Allow),
            ("198.17.255.255", Allow),
            ("198.20.0.0", Allow),
            ("198.51.99.255", Allow),
            ("198.51.101.0", Allow),
            ("203.0.112.255", Allow),
            ("203.0.114.0", Allow),
            ("223.255.255.255", Allow),
            ("8.8.8.8", Allow),
            ("93.184.216.34", Allow),
            ("151.101.1.69", Allow),
        ],
    );
}

#[test]
fn ipv6_special_ranges_are_denied() {
    let p = build(&PolicyConfig::default());
    run_addr_table(
        "IPv6 special ranges",
        &p,
        &[
            ("::1", Ip),
            ("::", Ip),
            // Documentation 2001:db8::/32.
            ("2001:db8::", Ip),
            ("2001:db8::1", Ip),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Ip),
            // ULA fc00::/7.
            ("fc00::", Ip),
            ("fc00::1", Ip),
            ("fd00::1", Ip),
            ("fd12:3456:789a::1", Ip),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Ip),
            // Link-local fe80::/10.
            ("fe80::", Ip),
            ("fe80::1", Ip),
            ("fe80::1:2:3:4", Ip),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Ip),
            // Multicast ff00::/8.
            ("ff00::", Ip),
            ("ff02::1", Ip),
            ("ff05::2", Ip),
            ("ff0e::1", Ip),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Ip),
            // Discard 100::/64.
            ("100::", Ip),
            ("100::1", Ip),
            ("100::ffff:ffff:ffff:ffff", Ip),
            // AWS IMDS over IPv6 is ULA.
            ("fd00:ec2::254", Ip),
        ],
    );
}

#[test]
fn global_ipv6_is_allowed() {
    let p = build(&PolicyConfig::default());
    run_addr_table(
        "global IPv6",
        &p,
        &[
            ("2001:4860:4860::8888", Allow),
            ("2606:4700:4700::1111", Allow),
            ("2a00:1450:4001:80e::200e", Allow),
            // Just outside 2001:db8::/32, both sides.
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", Allow),
            ("2001:db9::", Allow),
            // Just above 2002::/16 (6to4).
            ("2003::1", Allow),
            ("2003:e0:1234::1", Allow),
        ],
    );
}

/// An IPv4 address in each IPv6 form that embeds one.
pub(crate) fn embeddings(v4: Ipv4Addr) -> Vec<(&'static str, Ipv6Addr)> {
    let n = u32::from(v4);
    let hi = (n >> 16) as u16;
    let lo = (n & 0xffff) as u16;
    let t = !n;
    vec![
        ("IPv4-mapped", v4.to_ipv6_mapped()),
        ("IPv4-compatible", v4.to_ipv6_compatible()),
        ("NAT64", Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo)),
        ("6to4", Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 0)),
        (
            "6to4 with host bits",
            Ipv6Addr::new(0x2002, hi, lo, 0x1234, 0xabcd, 0, 0, 1),
        ),
        (
            "Teredo (server 65.54.227.120)",
            Ipv6Addr::new(
                0x2001,
                0,
                0x4136,
                0xe378,
                0x8000,
                0x63bf,
                (t >> 16) as u16,
                t as u16,
            ),
        ),
        (
            "Teredo (flags 0, port 0)",
            Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0, 0, (t >> 16) as u16, t as u16),
        ),
    ]
}

#[test]
fn each_ipv6_embedding_is_checked_on_its_ipv4() {
    let p = build(&PolicyConfig::default());
    let mut failures = String::new();
    let denied = [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "192.0.0.192",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "203.0.113.7",
    ];
    let allowed = [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "128.0.0.0",
        "100.128.0.0",
    ];
    for (list, want) in [(&denied[..], false), (&allowed[..], true)] {
        for a in list {
            let v4: Ipv4Addr = a.parse().unwrap();
            for (form, v6) in embeddings(v4) {
                let d = p.check_addr(IpAddr::V6(v6));
                let ok = d.allowed == want
                    && if want {
                        d.reason == Reason::Allowed
                    } else {
                        d.reason == Reason::DeniedIp
                    };
                if !ok {
                    use std::fmt::Write as _;
                    let _ = writeln!(
                        failures,
                        "  {form} {v6} (embeds {a}): want allowed={want}, got {d:?}"
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "embeddings:\n{failures}");
}

#[test]
fn embeddings_from_the_spec_literally() {
    let p = build(&PolicyConfig::default());
    run_addr_table(
        "spec examples",
        &p,
        &[
            ("64:ff9b::8.8.8.8", Allow),
            ("64:ff9b::808:808", Allow),
            ("64:ff9b::7f00:1", Ip),
            ("64:ff9b::127.0.0.1", Ip),
            ("64:ff9b::a9fe:a9fe", Ip),
            ("64:ff9b::c000:c0", Ip),
            ("2002:7f00:1::", Ip),
            ("2002:0808:0808::", Allow),
            ("2002:a9fe:a9fe::1", Ip),
            ("2002:a00:1::", Ip),
            ("::ffff:127.0.0.1", Ip),
            ("::ffff:7f00:1", Ip),
            ("::ffff:169.254.169.254", Ip),
            ("::ffff:10.0.0.1", Ip),
            ("::ffff:0.0.0.0", Ip),
            ("::ffff:8.8.8.8", Allow),
            ("::127.0.0.1", Ip),
            ("::7f00:1", Ip),
            ("::a9fe:a9fe", Ip),
            ("::8.8.8.8", Allow),
            ("::2", Ip),
            // Teredo, client 127.0.0.1: last 32 bits are 0x7f000001 ^ 0xffffffff.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Ip),
            // Teredo, client 169.254.169.254.
            ("2001:0:4136:e378:8000:63bf:5601:5601", Ip),
            // Teredo, client 8.8.8.8.
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", Allow),
            // Teredo whose last 32 bits read 127.0.0.1 without the XOR: the client is
            // 128.255.255.254, a public address.
            ("2001:0:4136:e378:8000:63bf:7f00:1", Allow),
            // And the reverse trap: last bits read 8.8.8.8 unXORed, client is 247.247.247.247
            // (240/4, reserved).
            ("2001:0:4136:e378:8000:63bf:808:808", Ip),
        ],
    );
}

#[test]
fn cidr_examples_from_the_spec() {
    let p = build(&cidrs(&["10.0.0.0/8"], &["10.1.0.0/16"]));
    run_addr_table(
        "allow 10/8, deny 10.1/16",
        &p,
        &[
            ("10.2.3.4", Allow),
            ("10.0.0.1", Allow),
            ("10.255.255.255", Allow),
            ("10.1.2.3", Ip),
            ("10.1.0.0", Ip),
            ("10.1.255.255", Ip),
            ("10.0.255.255", Allow),
            ("10.2.0.0", Allow),
            ("192.168.1.1", Ip),
            ("127.0.0.1", Ip),
        ],
    );
    let p = build(&cidrs(&["10.1.0.0/16"], &["10.0.0.0/8"]));
    run_addr_table(
        "deny 10/8, allow 10.1/16",
        &p,
        &[
            ("10.1.2.3", Allow),
            ("10.1.0.0", Allow),
            ("10.1.255.255", Allow),
            ("10.2.3.4", Ip),
            ("10.0.255.255", Ip),
            ("10.2.0.0", Ip),
            ("8.8.8.8", Allow),
        ],
    );
}

#[test]
fn allow_cidrs_reopen_exactly_what_they_name() {
    let p = build(&cidrs(&["127.0.0.0/8"], &[]));
    run_addr_table(
        "allow 127/8",
        &p,
        &[
            ("127.0.0.1", Allow),
            ("127.0.0.0", Allow),
            ("127.255.255.255", Allow),
            ("::ffff:127.0.0.1", Allow),
            ("::1", Ip),
            ("10.0.0.1", Ip),
            ("169.254.169.254", Ip),
            ("128.0.0.1", Allow),
        ],
    );

    let p = build(&cidrs(&["127.0.0.1/32"], &[]));
    run_addr_table(
        "allow 127.0.0.1/32",
        &p,
        &[("127.0.0.1", Allow), ("127.0.0.2", Ip), ("127.0.0.0", Ip)],
    );

    let p = build(&cidrs(&["10.1.0.0/16"], &[]));
    run_addr_table(
        "allow 10.1/16 only",
        &p,
        &[("10.1.2.3", Allow), ("10.2.3.4", Ip), ("10.0.255.255", Ip)],
    );

    let p = build(&cidrs(&["100.64.0.0/10", "169.254.169.254/32"], &[]));
    run_addr_table(
        "allow CGNAT and one metadata address",
        &p,
        &[
            ("100.64.0.1", Allow),
            ("100.127.255.255", Allow),
            ("169.254.169.254", Allow),
            ("169.254.169.253", Ip),
            ("169.254.170.2", Ip),
        ],
    );

    let p = build(&cidrs(&["::1/128", "fd00::/8"], &[]));
    run_addr_table(
        "allow IPv6 ranges",
        &p,
        &[
            ("::1", Allow),
            ("fd12::1", Allow),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Allow),
            ("fc00::1", Ip),
            ("fe80::1", Ip),
            ("127.0.0.1", Ip),
        ],
    );
}

#[test]
fn deny_cidrs_add_ranges() {
    let p = build(&cidrs(&[], &["8.8.8.0/24", "2606:4700::/32", "1.1.1.1/32"]));
    run_addr_table(
        "deny_cidrs",
        &p,
        &[
            ("8.8.8.8", Ip),
            ("8.8.8.0", Ip),
            ("8.8.8.255", Ip),
            ("8.8.7.255", Allow),
            ("8.8.9.0", Allow),
            ("8.8.4.4", Allow),
            ("1.1.1.1", Ip),
            ("1.1.1.2", Allow),
            ("1.0.0.1", Allow),
            ("2606:4700:4700::1111", Ip),
            ("2606:4701::1", Allow),
            ("2001:4860:4860::8888", Allow),
        ],
    );
}

#[test]
fn deny_cidrs_on_ipv4_catch_every_embedding() {
    // "each checked on the embedded IPv4": a v4 deny range must not be bypassed through
    // an IPv6 spelling of the same address.
    let p = build(&cidrs(&[], &["93.184.216.0/24"]));
    let v4: Ipv4Addr = "93.184.216.34".parse().unwrap();
    let mut rows: Vec<String> = vec![v4.to_string()];
    rows.extend(embeddings(v4).into_iter().map(|(_, a)| a.to_string()));
    let rows: Vec<(&str, Want)> = rows.iter().map(|a| (a.as_str(), Ip)).collect();
    run_addr_table("v4 deny range through embeddings", &p, &rows);
    let other: Ipv4Addr = "93.184.217.34".parse().unwrap();
    let rows: Vec<String> = embeddings(other)
        .into_iter()
        .map(|(_, a)| a.to_string())
        .collect();
    let rows: Vec<(&str, Want)> = rows.iter().map(|a| (a.as_str(), Allow)).collect();
    run_addr_table("next /24 through embeddings", &p, &rows);
}

#[test]
fn three_nested_levels_most_specific_wins() {
    let p = build(&cidrs(
        &["10.0.0.0/8", "10.1.2.0/24"],
        &["10.1.0.0/16", "10.1.2.128/25"],
    ));
    run_addr_table(
        "nested",
        &p,
        &[
            ("10.0.0.1", Allow),
            ("10.1.0.1", Ip),
            ("10.1.2.3", Allow),
            ("10.1.2.127", Allow),
            ("10.1.2.128", Ip),
            ("10.1.2.255", Ip),
            ("10.1.3.0", Ip),
        ],
    );

    let p = build(&cidrs(&["8.8.8.0/24"], &["8.8.0.0/16"]));
    run_addr_table(
        "public: deny /16, allow /24 inside",
        &p,
        &[("8.8.8.8", Allow), ("8.8.4.4", Ip), ("8.9.0.1", Allow)],
    );

    let p = build(&cidrs(&["2001:4860::/32"], &["2001:4860:4860::/48"]));
    run_addr_table(
        "IPv6 nesting",
        &p,
        &[("2001:4860:4860::8888", Ip), ("2001:4860:1::1", Allow)],
    );
    let p = build(&cidrs(&["fd00:1::/32"], &["fd00::/8"]));
    run_addr_table(
        "IPv6 deny /8 allow /32",
        &p,
        &[("fd00:1::1", Allow), ("fd00:2::1", Ip)],
    );
}

#[test]
fn a_broad_allow_does_not_reopen_narrower_default_ranges() {
    // Inference from "the most specific range decides": the default-deny ranges are
    // ranges, so `0.0.0.0/0` is less specific than 127.0.0.0/8 and does not reopen it.
    let p = build(&cidrs(&["0.0.0.0/0", "::/0"], &[]));
    run_addr_table(
        "allow everything",
        &p,
        &[
            ("8.8.8.8", Allow),
            ("127.0.0.1", Ip),
            ("10.0.0.1", Ip),
            ("169.254.169.254", Ip),
            ("::1", Ip),
            ("fd00::1", Ip),
            ("2001:4860:4860::8888", Allow),
        ],
    );
    let p = build(&cidrs(&["192.0.0.0/16"], &[]));
    run_addr_table(
        "allow 192.0/16",
        &p,
        &[("192.0.0.192", Ip), ("192.0.2.1", Ip), ("192.0.1.1", Allow)],
    );
}

#[test]
fn deny_everything_with_cidrs() {
    let p = build(&cidrs(&[], &["0.0.0.0/0"]));
    run_addr_table(
        "deny 0/0",
        &p,
        &[
            ("8.8.8.8", Ip),
            ("1.1.1.1", Ip),
            ("::ffff:8.8.8.8", Ip),
            ("64:ff9b::808:808", Ip),
            ("2001:4860:4860::8888", Allow),
        ],
    );
    let p = build(&cidrs(&[], &["::/0"]));
    run_addr_table(
        "deny ::/0",
        &p,
        &[
            ("2001:4860:4860::8888", Ip),
            ("2606:4700:4700::1111", Ip),
            ("8.8.8.8", Allow),
        ],
    );
}

#[test]
fn allow_and_deny_cidrs_do_not_touch_name_rules() {
    let config = PolicyConfig {
        allow: vec!["example.com".into()],
        ..cidrs(&["10.0.0.0/8"], &["8.8.8.0/24"])
    };
    let p = build(&config);
    crate::run_table(
        "names with cidrs",
        &p,
        &[
            ("example.com", 443, Allow),
            ("example.org", 443, crate::Want::Name),
        ],
    );
}

#[test]
fn ipv6_deny_ranges_cover_the_embedding_prefixes_themselves() {
    // An IPv6 address that embeds an IPv4 is still an IPv6 address: a deny range over the
    // IPv6 prefix must deny it, even when the embedded IPv4 is public.
    for (range, addrs) in [
        (
            "2002::/16",
            &["2002:808:808::", "2002:808:808::1", "2002:101:101:ffff::1"][..],
        ),
        (
            "64:ff9b::/96",
            &["64:ff9b::808:808", "64:ff9b::101:101"][..],
        ),
        ("2001::/32", &["2001:0:4136:e378:8000:63bf:f7f7:f7f7"][..]),
        (
            "::/0",
            &["64:ff9b::808:808", "2002:808:808::", "2001:4860:4860::8888"][..],
        ),
        (
            "2000::/3",
            &["2002:808:808::", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"][..],
        ),
    ] {
        let p = build(&cidrs(&[], &[range]));
        let rows: Vec<(&str, Want)> = addrs.iter().map(|a| (*a, Ip)).collect();
        run_addr_table(&format!("deny_cidrs {range}"), &p, &rows);
    }
}

#[test]
fn mapped_range_in_deny_cidrs_is_refused_or_effective() {
    // Addresses are canonicalised, so `::ffff:8.8.8.8` is checked as 8.8.8.8. A deny range
    // written in the mapped form must then either be refused at load or deny the address
    // in both spellings; accepted and inert, it is a deny rule that silently does nothing.
    for (range, addr) in [
        ("::ffff:8.8.8.0/120", "8.8.8.8"),
        ("::ffff:93.184.216.34/128", "93.184.216.34"),
        ("::ffff:0:0/96", "1.1.1.1"),
    ] {
        match egress_core::policy::Policy::new(&cidrs(&[], &[range])) {
            Err(e) => assert!(e.to_string().contains(range), "{e}"),
            Ok(p) => {
                let mapped = format!("::ffff:{addr}");
                run_addr_table(
                    &format!("deny_cidrs {range} accepted"),
                    &p,
                    &[(addr, Ip), (mapped.as_str(), Ip)],
                );
            }
        }
    }
}

#[test]
fn a_narrow_allow_inside_a_broad_deny() {
    let p = build(&cidrs(&["127.0.0.0/8"], &["0.0.0.0/0"]));
    run_addr_table(
        "allow 127/8 deny 0/0",
        &p,
        &[("127.0.0.1", Allow), ("8.8.8.8", Ip), ("10.0.0.1", Ip)],
    );
}
