//! Config entries that must be refused, with a message naming the entry, and the
//! public-suffix refusals with their opt-in.

use egress_core::policy::{Policy, PolicyConfig};

use crate::Want::{Allow, Name};
use crate::{build, cfg, cidrs, run_refused, run_table};

/// Each entry alone in `allow`, then alone in `deny`.
fn in_both_lists(entries: &[&str]) -> Vec<(String, PolicyConfig)> {
    let mut out = Vec::new();
    for e in entries {
        out.push(((*e).to_owned(), cfg(&[e], &[])));
        out.push(((*e).to_owned(), cfg(&[], &[e])));
        // After a valid entry, so a parser that stops at the first entry is caught.
        out.push(((*e).to_owned(), cfg(&["ok.example.com", e], &[])));
    }
    out
}

/// The invalid patterns the spec lists.
#[test]
fn listed_invalid_patterns_are_refused() {
    run_refused(
        "listed invalid patterns",
        &in_both_lists(&[
            "",
            "**.example.com",
            "*example.com",
            "a.*.example.com",
            "example..com",
            "exa mple.com",
            " example.com",
            "example.com ",
            "example.com\t",
            "example.com :443",
            "example.com: 443",
            "example.com:0",
            "example.com:65536",
            "example.com:99999",
            "example.com:4294967739",
            "example.com:+443",
            "example.com:0443",
            "example.com:00443",
            "example.com:443,0443",
            "example.com:443,+8443",
            "*.example.com:0",
            ":443",
            "10.0.0.1",
            "10.0.0.1:443",
            "127.0.0.1",
            "0.0.0.0",
        ]),
    );
}

/// Further spellings that are not a pattern of any form (not listed in the spec, but no
/// reading of it accepts them).
#[test]
fn other_malformed_patterns_are_refused() {
    run_refused(
        "other malformed patterns",
        &in_both_lists(&[
            ".",
            "*.",
            "..example.com",
            ".*.example.com",
            "*.*.example.com",
            "*.example.*",
            "example.*",
            "exa*mple.com",
            "*.example.com*",
            "**",
            "*:",
            "example.com:",
            "example.com:443,",
            "example.com:,443",
            "example.com:443,,8443",
            "example.com:443:80",
            "example.com:abc",
            "example.com:-1",
            "example.com:-443",
            "example.com:443.0",
            "example.com:0x1bb",
            "example.com:١٢٣",
            "example.com:٤٤٣",
            "example.com..",
            "example.com...",
            "a..b.example.com",
            ".example..com",
            "*.example..com",
            "http://example.com",
            "example.com/",
            "example.com/path",
            "user@example.com",
            "exa\u{0}mple.com",
            "example.com\u{0}",
            "example.com\n",
            "\nexample.com",
            "[::1]",
            "[::1]:443",
            "::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "::",
        ]),
    );
}

/// Names that `target::Name` refuses (bad bytes, hyphens, lengths, numeric spellings that
/// resolvers turn into addresses); a pattern holding one could never match a target, or
/// would match something unintended.
#[test]
fn patterns_that_are_not_host_names_are_refused() {
    let long_label = "a".repeat(64);
    let long_name = ["abcdefghi"; 26].join(".");
    let long_label_pattern = format!("{long_label}.example.com");
    let wildcard_long = format!("*.{long_name}");
    run_refused(
        "not host names",
        &in_both_lists(&[
            "a_b.example.com",
            "-a.example.com",
            "a-.example.com",
            "*.-a.example.com",
            "example.com-",
            "a!.example.com",
            "a%2e.example.com",
            "127.1",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "a.example.123",
            "*.1.2.3",
            ".10.0.0.1",
            &long_label_pattern,
            &long_name,
            &wildcard_long,
        ]),
    );
}

#[test]
fn longest_valid_label_and_name_are_accepted() {
    let label = "a".repeat(63);
    let name63 = format!("{label}.example.com");
    // 253 bytes: 25 labels of 9 and one of 3 plus 25 dots.
    let mut long = ["abcdefghi"; 25].join(".");
    long.push_str(".com");
    assert_eq!(long.len(), 253);
    let p = build(&cfg(&[&name63, &long], &[]));
    run_table(
        "longest valid",
        &p,
        &[
            (&name63, 443, Allow),
            (&long, 443, Allow),
            ("example.com", 443, Name),
        ],
    );
}

#[test]
fn invalid_cidrs_are_refused() {
    let bad = [
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/",
        "10.0.0.0/8/8",
        "10.0.0/8",
        "10.0.0.256/32",
        "::/129",
        "fc00::/200",
        "foo",
        "foo/8",
        "",
        "/8",
        " 10.0.0.0/8",
        "10.0.0.0/8 ",
        "10.0.0.0 /8",
        "10.0.0.0/+8",
        "example.com",
        "*",
    ];
    let mut configs = Vec::new();
    for e in bad {
        configs.push((e.to_owned(), cidrs(&[e], &[])));
        configs.push((e.to_owned(), cidrs(&[], &[e])));
        configs.push((e.to_owned(), cidrs(&["192.168.0.0/16", e], &[])));
    }
    run_refused("invalid cidrs", &configs);
}

#[test]
fn host_bits_set_are_refused_or_masked_never_misread() {
    // The spec leaves open whether `10.0.0.1/8` is an error or means `10.0.0.0/8`. Either
    // way it must not become `10.0.0.1/32` or anything else.
    match Policy::new(&cidrs(&["10.0.0.1/8"], &[])) {
        Err(e) => assert!(e.to_string().contains("10.0.0.1/8"), "{e}"),
        Ok(p) => {
            for a in ["10.0.0.1", "10.0.0.2", "10.255.255.255", "10.0.0.0"] {
                assert!(
                    p.check_addr(crate::ip(a)).allowed,
                    "masked /8 should allow {a}"
                );
            }
        }
    }
    match Policy::new(&cidrs(&[], &["8.8.8.8/24"])) {
        Err(e) => assert!(e.to_string().contains("8.8.8.8/24"), "{e}"),
        Ok(p) => {
            for a in ["8.8.8.8", "8.8.8.1", "8.8.8.255"] {
                assert!(
                    !p.check_addr(crate::ip(a)).allowed,
                    "masked /24 should deny {a}"
                );
            }
            assert!(p.check_addr(crate::ip("8.8.9.1")).allowed);
        }
    }
}

#[test]
fn valid_cidrs_are_accepted() {
    build(&cidrs(
        &[
            "10.0.0.0/8",
            "127.0.0.0/8",
            "0.0.0.0/0",
            "192.168.1.1/32",
            "::1/128",
            "fd00::/8",
            "::/0",
        ],
        &["8.8.8.0/24", "2001:4860::/32", "1.1.1.1/32"],
    ));
}

const PUBLIC_SUFFIX_WILDCARDS: &[&str] = &[
    "*.com",
    "*.net",
    "*.org",
    "*.io",
    "*.de",
    "*.uk",
    "*.co.uk",
    "*.org.uk",
    "*.ac.uk",
    "*.jp",
    "*.co.jp",
    "*.com.au",
    ".com",
    ".net",
    ".co.uk",
    ".de",
    "*.COM",
    "*.com.",
    "*.Co.Uk.",
    ".COM.",
    "*.com:443",
    ".com:80,443",
    "*.co.uk:443",
    "*.рф",
    "*.xn--p1ai",
    ".рф",
];

#[test]
fn public_suffix_wildcards_are_refused_by_default() {
    let configs: Vec<(String, PolicyConfig)> = PUBLIC_SUFFIX_WILDCARDS
        .iter()
        .flat_map(|e| {
            [
                ((*e).to_owned(), cfg(&[e], &[])),
                ((*e).to_owned(), cfg(&["ok.example.com", e], &[])),
            ]
        })
        .collect();
    run_refused("public-suffix wildcards in allow", &configs);
}

#[test]
fn public_suffix_wildcards_are_accepted_with_the_opt_in() {
    for e in PUBLIC_SUFFIX_WILDCARDS {
        let config = PolicyConfig {
            allow_public_suffix_wildcards: true,
            ..cfg(&[e], &[])
        };
        if let Err(err) = Policy::new(&config) {
            panic!("{e:?} refused despite the opt-in: {err}");
        }
    }
}

#[test]
fn public_suffix_wildcards_match_as_usual_with_the_opt_in() {
    let config = PolicyConfig {
        allow_public_suffix_wildcards: true,
        ..cfg(&["*.co.uk", ".com"], &[])
    };
    let p = build(&config);
    run_table(
        "opt-in",
        &p,
        &[
            ("foo.co.uk", 443, Allow),
            ("a.b.co.uk", 443, Allow),
            ("co.uk", 443, Name),
            ("uk", 443, Name),
            ("com", 443, Allow),
            ("example.com", 443, Allow),
            ("a.example.com", 443, Allow),
            ("example.org", 443, Name),
        ],
    );
}

#[test]
fn wildcards_below_a_registrable_domain_need_no_opt_in() {
    for e in [
        "*.example.com",
        ".example.com",
        "*.example.co.uk",
        ".example.co.uk",
        "*.bücher.de",
        "*.a.b.example.com",
        "*.example.com:443",
    ] {
        if let Err(err) = Policy::new(&cfg(&[e], &[])) {
            panic!("{e:?} refused: {err}");
        }
    }
    let p = build(&cfg(&["*.example.co.uk"], &[]));
    run_table(
        "*.example.co.uk",
        &p,
        &[
            ("a.example.co.uk", 443, Allow),
            ("example.co.uk", 443, Name),
            ("other.co.uk", 443, Name),
        ],
    );
}

#[test]
fn public_suffix_check_runs_after_idna_mapping() {
    // idna maps fullwidth letters and ideographic dots and drops soft hyphens and
    // zero-width spaces: the public-suffix check must see the converted name.
    let entries = [
        "*.ｃｏｍ",
        "*.ＣＯＭ",
        "*.co。uk",
        "*.co．uk",
        "*.c\u{00AD}om",
        "*.co\u{200B}m",
        "*.РФ",
        ".ｃｏｍ",
    ];
    let configs: Vec<(String, PolicyConfig)> = entries
        .iter()
        .map(|e| ((*e).to_owned(), cfg(&[e], &[])))
        .collect();
    run_refused("mapped public-suffix wildcards", &configs);
}

#[test]
fn public_suffix_wildcard_rules_and_exceptions() {
    // The list has wildcard rules (`*.ck`, `*.kawasaki.jp`) and exceptions (`!www.ck`,
    // `!city.kawasaki.jp`): `foo.ck` is a public suffix, `www.ck` is registrable.
    let refused = [
        "*.foo.ck",
        ".foo.ck",
        "*.bar.kawasaki.jp",
        ".bar.kawasaki.jp",
    ];
    let configs: Vec<(String, PolicyConfig)> = refused
        .iter()
        .map(|e| ((*e).to_owned(), cfg(&[e], &[])))
        .collect();
    run_refused("public suffixes from wildcard rules", &configs);
    for e in [
        "*.www.ck",
        ".www.ck",
        "*.city.kawasaki.jp",
        "*.example.foo.ck",
    ] {
        if let Err(err) = Policy::new(&cfg(&[e], &[])) {
            panic!("{e:?} refused: {err}");
        }
    }
}

#[test]
fn more_malformed_ports_and_literals_are_refused() {
    run_refused(
        "ports and literals",
        &in_both_lists(&[
            "example.com:443, 8443",
            "example.com:443 ,8443",
            "example.com:00",
            "example.com:08443",
            "example.com:65535,65536",
            "*.:443",
            ".:443",
            "*..",
            "*.example.com.:",
            "10.0.0.1.",
            "[10.0.0.1]",
            "[10.0.0.1]:443",
        ]),
    );
}

#[test]
fn unicode_mapped_entries_are_refused_or_mean_their_mapping() {
    // idna maps `ｅｘａｍｐｌｅ` to `example` and `。` to `.`. Whether such entries are
    // accepted is open; accepted, they must mean the mapped name and nothing else.
    for (entry, mapped, other) in [
        ("ｅｘａｍｐｌｅ.com", "example.com", "a.example.com"),
        ("bücher。example", "xn--bcher-kva.example", "bcher.example"),
        ("exa\u{00AD}mple.com", "example.com", "exa-mple.com"),
        ("ＡＰＩ.example.com", "api.example.com", "example.com"),
    ] {
        if let Ok(p) = Policy::new(&cfg(&[entry], &[])) {
            run_table(entry, &p, &[(mapped, 443, Allow), (other, 443, Name)]);
        }
        if let Ok(p) = Policy::new(&cfg(&[], &[entry])) {
            run_table(
                entry,
                &p,
                &[(mapped, 443, crate::Want::Deny), (other, 443, Allow)],
            );
        }
    }
}
