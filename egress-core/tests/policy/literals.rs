//! IP-literal targets: checked as an address (canonicalised) and against the port rules
//! of `*` patterns only.

use std::net::IpAddr;

use egress_core::policy::{Policy, PolicyConfig, Reason};
use egress_core::target::Host;

use crate::Want::{self, Allow, Deny, Ip, Port};
use crate::{build, cidrs, consistent, ip, policy};

fn run_ip_table(what: &str, p: &Policy, rows: &[(&str, u16, Want)]) {
    let mut failures = String::new();
    for &(a, port, want) in rows {
        let d = p.check_target(&Host::Ip(ip(a)), port);
        if !want.accepts(d) || !consistent(d) {
            use std::fmt::Write as _;
            let _ = writeln!(failures, "  [{a}]:{port}: want {want:?}, got {d:?}");
        }
    }
    assert!(failures.is_empty(), "{what}\nfailing rows:\n{failures}");
}

#[test]
fn mapped_loopback_literal_is_denied_by_default() {
    let p = build(&PolicyConfig::default());
    run_ip_table(
        "default",
        &p,
        &[
            ("::ffff:127.0.0.1", 443, Ip),
            ("::ffff:7f00:1", 80, Ip),
            ("127.0.0.1", 443, Ip),
            ("::1", 443, Ip),
            ("::", 443, Ip),
            ("0.0.0.0", 443, Ip),
            ("169.254.169.254", 80, Ip),
            ("::ffff:169.254.169.254", 80, Ip),
            ("192.0.0.192", 80, Ip),
            ("10.0.0.1", 443, Ip),
            ("::ffff:10.0.0.1", 443, Ip),
            ("fd00::1", 443, Ip),
            ("fe80::1", 443, Ip),
            ("64:ff9b::7f00:1", 443, Ip),
            ("2002:7f00:1::", 443, Ip),
            ("::7f00:1", 443, Ip),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", 443, Ip),
            ("8.8.8.8", 443, Allow),
            ("::ffff:8.8.8.8", 443, Allow),
            ("64:ff9b::808:808", 443, Allow),
            ("2001:4860:4860::8888", 443, Allow),
        ],
    );
}

#[test]
fn mapped_loopback_literal_is_allowed_with_allow_cidrs() {
    let p = build(&cidrs(&["127.0.0.0/8"], &[]));
    run_ip_table(
        "allow_cidrs 127/8",
        &p,
        &[
            ("::ffff:127.0.0.1", 443, Allow),
            ("127.0.0.1", 443, Allow),
            ("127.0.0.53", 53, Allow),
            ("::ffff:127.255.255.255", 80, Allow),
            ("::1", 443, Ip),
            ("10.0.0.1", 443, Ip),
        ],
    );
}

#[test]
fn literal_decisions_agree_with_check_addr() {
    let configs = [
        PolicyConfig::default(),
        cidrs(
            &["127.0.0.0/8", "10.0.0.0/8"],
            &["10.1.0.0/16", "8.8.8.0/24"],
        ),
    ];
    let addrs = [
        "127.0.0.1",
        "::ffff:127.0.0.1",
        "10.0.0.1",
        "::ffff:10.1.0.1",
        "10.1.0.1",
        "8.8.8.8",
        "::ffff:8.8.8.8",
        "8.8.4.4",
        "::1",
        "2001:4860:4860::8888",
        "64:ff9b::a9fe:a9fe",
    ];
    for config in &configs {
        let p = build(config);
        for a in addrs {
            let t = p.check_target(&Host::Ip(ip(a)), 443);
            let d = p.check_addr(ip(a));
            assert_eq!(t, d, "{a} under {config:?}");
        }
    }
}

#[test]
fn deny_cidrs_apply_to_mapped_literals() {
    let p = build(&cidrs(&[], &["8.8.8.0/24"]));
    run_ip_table(
        "deny 8.8.8/24",
        &p,
        &[
            ("8.8.8.8", 443, Ip),
            ("::ffff:8.8.8.8", 443, Ip),
            ("::ffff:808:808", 443, Ip),
            ("8.8.4.4", 443, Allow),
        ],
    );
}

#[test]
fn name_patterns_do_not_apply_to_literals() {
    // Only `*`-style patterns' port rules reach an IP literal; a deny on names does not.
    let p = policy(&[], &["*.example.com", "example.com", ".example.org"]);
    run_ip_table(
        "name denies",
        &p,
        &[
            ("8.8.8.8", 443, Allow),
            ("2606:4700:4700::1111", 443, Allow),
        ],
    );
    let p = policy(&[], &["*.example.com:443"]);
    run_ip_table("name deny with a port", &p, &[("8.8.8.8", 443, Allow)]);
}

#[test]
fn star_port_rules_apply_to_literals() {
    let p = policy(&["*:443"], &[]);
    run_ip_table(
        "allow *:443",
        &p,
        &[
            ("8.8.8.8", 443, Allow),
            ("8.8.8.8", 80, Port),
            ("::ffff:8.8.8.8", 80, Port),
            ("2001:4860:4860::8888", 8443, Port),
            // The address check comes first or second; either way it is denied.
            ("127.0.0.1", 443, Ip),
            ("127.0.0.1", 80, Deny),
        ],
    );

    let p = policy(&["*:443,8443"], &["*:8443"]);
    run_ip_table(
        "allow *:443,8443 deny *:8443",
        &p,
        &[
            ("8.8.8.8", 443, Allow),
            ("8.8.8.8", 8443, Deny),
            ("8.8.8.8", 80, Port),
        ],
    );

    let p = policy(&[], &["*:25"]);
    run_ip_table(
        "deny *:25",
        &p,
        &[
            ("8.8.8.8", 25, Deny),
            ("::ffff:8.8.8.8", 25, Deny),
            ("2001:4860:4860::8888", 25, Deny),
            ("8.8.8.8", 443, Allow),
        ],
    );
}

#[test]
fn deny_star_denies_literals() {
    // `*` without ports covers every port, and `*` patterns are the ones that reach
    // literals; the spec does not say which reason.
    let p = policy(&[], &["*"]);
    run_ip_table(
        "deny *",
        &p,
        &[("8.8.8.8", 443, Deny), ("2001:4860:4860::8888", 80, Deny)],
    );
}

#[test]
fn literal_allowed_reason_is_allowed() {
    let p = policy(&["*"], &[]);
    let d = p.check_target(&Host::Ip(IpAddr::from([8, 8, 8, 8])), 443);
    assert_eq!(d.reason, Reason::Allowed);
    assert!(d.allowed);
}

#[test]
fn only_star_port_rules_reach_literals() {
    // `example.com:80` names a host, not an address: it must not open port 80 to every
    // IP literal.
    let p = policy(&["*:443", "example.com:80", ".example.org:8080"], &[]);
    run_ip_table(
        "* and name rules",
        &p,
        &[
            ("8.8.8.8", 443, Allow),
            ("8.8.8.8", 80, Deny),
            ("8.8.8.8", 8080, Deny),
            ("2001:4860:4860::8888", 80, Deny),
        ],
    );
    let p = policy(&["*"], &["*:25", "example.com:443"]);
    run_ip_table(
        "allow *, deny *:25 and a name",
        &p,
        &[
            ("8.8.8.8", 25, Deny),
            ("8.8.8.8", 443, Allow),
            ("8.8.8.8", 80, Allow),
        ],
    );
}
