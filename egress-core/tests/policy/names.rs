//! Name patterns: every form, normalisation of config entries, deny wins, empty allow,
//! mode and reason strings.

use egress_core::policy::{Mode, Policy, PolicyConfig, Reason};

use crate::Want::{Allow, Deny, Name};
use crate::{build, cfg, host, policy, run_table};

#[test]
fn exact_pattern_matches_that_name_only() {
    let p = policy(&["example.com"], &[]);
    run_table(
        "exact",
        &p,
        &[
            ("example.com", 443, Allow),
            ("example.com", 80, Allow),
            ("example.com", 1, Allow),
            ("example.com", 65535, Allow),
            ("a.example.com", 443, Name),
            ("a.b.example.com", 443, Name),
            ("aexample.com", 443, Name),
            ("xample.com", 443, Name),
            ("ample.com", 443, Name),
            ("com", 443, Name),
            ("example.co", 443, Name),
            ("example.com.evil.org", 443, Name),
            ("example.comm", 443, Name),
            ("example.org", 443, Name),
            ("www.example.org", 443, Name),
        ],
    );
}

#[test]
fn star_dot_matches_names_below_at_any_depth_but_not_the_name_itself() {
    let p = policy(&["*.example.com"], &[]);
    run_table(
        "*.example.com",
        &p,
        &[
            ("a.example.com", 443, Allow),
            ("www.example.com", 80, Allow),
            ("a.b.example.com", 443, Allow),
            ("a.b.c.d.e.f.example.com", 443, Allow),
            ("1.example.com", 443, Allow),
            ("xn--bcher-kva.example.com", 443, Allow),
            ("example.com", 443, Name),
            ("aexample.com", 443, Name),
            ("a-example.com", 443, Name),
            ("com", 443, Name),
            ("example.org", 443, Name),
            ("a.example.org", 443, Name),
            ("a.example.com.evil.org", 443, Name),
            ("example.com.example.org", 443, Name),
            ("a.example.co", 443, Name),
            ("a.xample.com", 443, Name),
        ],
    );
}

#[test]
fn leading_dot_matches_the_name_and_everything_below() {
    let p = policy(&[".example.com"], &[]);
    run_table(
        ".example.com",
        &p,
        &[
            ("example.com", 443, Allow),
            ("a.example.com", 443, Allow),
            ("a.b.example.com", 443, Allow),
            ("a.b.c.d.e.f.example.com", 8080, Allow),
            ("aexample.com", 443, Name),
            ("com", 443, Name),
            ("example.org", 443, Name),
            ("example.com.evil.org", 443, Name),
            ("xample.com", 443, Name),
        ],
    );
}

#[test]
fn star_matches_every_name() {
    let p = policy(&["*"], &[]);
    run_table(
        "*",
        &p,
        &[
            ("example.com", 443, Allow),
            ("a.b.c.example.org", 80, Allow),
            ("com", 443, Allow),
            ("localhost", 8080, Allow),
            ("xn--bcher-kva.example", 443, Allow),
            ("a", 1, Allow),
            ("a", 65535, Allow),
        ],
    );
}

#[test]
fn star_is_accepted_without_the_public_suffix_opt_in() {
    // `*` is a listed pattern form of its own, not an accidental public-suffix wildcard.
    assert!(Policy::new(&cfg(&["*"], &[])).is_ok());
    assert!(Policy::new(&cfg(&[], &["*"])).is_ok());
    assert!(Policy::new(&cfg(&["*:443"], &[])).is_ok());
}

#[test]
fn trie_nodes_on_the_way_to_a_rule_do_not_match() {
    // A reversed-label trie holds `com` -> `example` -> `a` -> `b`; the inner nodes are not
    // rules.
    let p = policy(&["b.a.example.com"], &[]);
    run_table(
        "inner nodes",
        &p,
        &[
            ("b.a.example.com", 443, Allow),
            ("a.example.com", 443, Name),
            ("example.com", 443, Name),
            ("com", 443, Name),
            ("c.b.a.example.com", 443, Name),
            ("c.a.example.com", 443, Name),
            ("b.example.com", 443, Name),
            ("ba.example.com", 443, Name),
        ],
    );
    let p = policy(&["*.a.example.com"], &[]);
    run_table(
        "inner nodes below a wildcard",
        &p,
        &[
            ("x.a.example.com", 443, Allow),
            ("y.x.a.example.com", 443, Allow),
            ("a.example.com", 443, Name),
            ("b.example.com", 443, Name),
            ("x.b.example.com", 443, Name),
            ("example.com", 443, Name),
            ("xa.example.com", 443, Name),
        ],
    );
}

#[test]
fn several_forms_on_one_trie_path() {
    let p = policy(
        &[
            "example.com",
            "*.b.example.com",
            ".c.example.com",
            "d.example.com",
        ],
        &[],
    );
    run_table(
        "forms sharing a path",
        &p,
        &[
            ("example.com", 443, Allow),
            ("a.example.com", 443, Name),
            ("b.example.com", 443, Name),
            ("x.b.example.com", 443, Allow),
            ("y.x.b.example.com", 443, Allow),
            ("c.example.com", 443, Allow),
            ("x.c.example.com", 443, Allow),
            ("d.example.com", 443, Allow),
            ("x.d.example.com", 443, Name),
            ("e.example.com", 443, Name),
        ],
    );
}

#[test]
fn exact_and_wildcard_of_the_same_domain_together() {
    let p = policy(&["example.com", "*.example.com"], &[]);
    run_table(
        "exact + *.",
        &p,
        &[
            ("example.com", 443, Allow),
            ("a.example.com", 443, Allow),
            ("a.b.example.com", 443, Allow),
            ("aexample.com", 443, Name),
        ],
    );
}

#[test]
fn config_entries_are_normalised_case_and_trailing_dot() {
    for pat in [
        "EXAMPLE.COM",
        "Example.Com",
        "example.com.",
        "ExAmPlE.cOm.",
        "example.com:443",
        "EXAMPLE.COM.:443",
    ] {
        let p = policy(&[pat], &[]);
        run_table(
            pat,
            &p,
            &[("example.com", 443, Allow), ("a.example.com", 443, Name)],
        );
    }
    for pat in ["*.EXAMPLE.COM", "*.Example.com.", "*.example.COM.:443,8443"] {
        let p = policy(&[pat], &[]);
        run_table(
            pat,
            &p,
            &[
                ("a.example.com", 443, Allow),
                ("a.b.example.com", 443, Allow),
                ("example.com", 443, Name),
            ],
        );
    }
    for pat in [".EXAMPLE.COM", ".Example.Com.", ".example.com.:443"] {
        let p = policy(&[pat], &[]);
        run_table(
            pat,
            &p,
            &[
                ("example.com", 443, Allow),
                ("a.b.example.com", 443, Allow),
                ("example.org", 443, Name),
            ],
        );
    }
}

#[test]
fn deny_entries_are_normalised_too() {
    for pat in [
        "BAD.Example.COM",
        "bad.example.com.",
        ".Bad.Example.Com",
        ".bad.EXAMPLE.com.",
    ] {
        let p = policy(&[".example.com"], &[pat]);
        run_table(
            pat,
            &p,
            &[
                ("bad.example.com", 443, Deny),
                ("good.example.com", 443, Allow),
            ],
        );
    }
    for pat in ["*.BAD.example.com.", "*.Bad.Example.Com"] {
        let p = policy(&[".example.com"], &[pat]);
        run_table(
            pat,
            &p,
            &[
                ("x.bad.example.com", 443, Deny),
                ("bad.example.com", 443, Allow),
                ("good.example.com", 443, Allow),
            ],
        );
    }
}

#[test]
fn the_target_name_is_normalised_before_matching() {
    // `Host::from_ascii` lower-cases and strips one trailing dot; the policy sees that.
    let p = policy(&["api.example.com"], &[]);
    run_table(
        "normalised targets",
        &p,
        &[
            ("API.EXAMPLE.COM", 443, Allow),
            ("api.example.com.", 443, Allow),
            ("Api.Example.Com.", 443, Allow),
        ],
    );
}

#[test]
fn unicode_config_entries_are_converted_to_a_labels() {
    let cases: &[(&str, crate::Rows<'_>)] = &[
        (
            "bücher.example",
            &[
                ("xn--bcher-kva.example", 443, Allow),
                ("a.xn--bcher-kva.example", 443, Name),
                ("bcher.example", 443, Name),
            ],
        ),
        ("BÜCHER.example", &[("xn--bcher-kva.example", 443, Allow)]),
        ("Bücher.Example.", &[("xn--bcher-kva.example", 443, Allow)]),
        (
            "bücher.example:443",
            &[
                ("xn--bcher-kva.example", 443, Allow),
                ("xn--bcher-kva.example", 80, crate::Want::Port),
            ],
        ),
        (
            "*.bücher.example",
            &[
                ("a.xn--bcher-kva.example", 443, Allow),
                ("a.b.xn--bcher-kva.example", 443, Allow),
                ("xn--bcher-kva.example", 443, Name),
            ],
        ),
        (
            ".bücher.example",
            &[
                ("xn--bcher-kva.example", 443, Allow),
                ("a.xn--bcher-kva.example", 443, Allow),
            ],
        ),
        (
            "www.münchen.de",
            &[
                ("www.xn--mnchen-3ya.de", 443, Allow),
                ("xn--mnchen-3ya.de", 443, Name),
            ],
        ),
        (
            "日本語.example.com",
            &[("xn--wgv71a119e.example.com", 443, Allow)],
        ),
        (
            // Already an A-label: kept as is.
            "xn--bcher-kva.example",
            &[("xn--bcher-kva.example", 443, Allow)],
        ),
        (
            "XN--BCHER-KVA.example",
            &[("xn--bcher-kva.example", 443, Allow)],
        ),
    ];
    for (pat, rows) in cases {
        let p = policy(&[pat], &[]);
        run_table(pat, &p, rows);
    }
}

#[test]
fn unicode_deny_entries_are_converted_too() {
    let p = policy(&[], &["bücher.example", "*.münchen.de"]);
    run_table(
        "unicode deny",
        &p,
        &[
            ("xn--bcher-kva.example", 443, Deny),
            ("www.xn--mnchen-3ya.de", 443, Deny),
            ("xn--mnchen-3ya.de", 443, Allow),
            ("example.com", 443, Allow),
        ],
    );
}

#[test]
fn deny_wins_over_allow() {
    let p = policy(&["*.example.com"], &["bad.example.com"]);
    run_table(
        "exact deny under wildcard allow",
        &p,
        &[
            ("good.example.com", 443, Allow),
            ("bad.example.com", 443, Name),
            ("bad.example.com", 80, Name),
            // An exact deny does not cover names below it.
            ("x.bad.example.com", 443, Allow),
        ],
    );

    let p = policy(&["api.example.com"], &[".example.com"]);
    run_table(
        "broad deny over exact allow",
        &p,
        &[
            ("api.example.com", 443, Name),
            ("example.com", 443, Name),
            ("other.org", 443, Name),
        ],
    );

    let p = policy(&["*"], &["*"]);
    run_table(
        "* and *",
        &p,
        &[("example.com", 443, Name), ("a.b", 80, Name)],
    );

    let p = policy(&[".example.com"], &["*.example.com"]);
    run_table(
        "deny *. under allow .",
        &p,
        &[
            ("example.com", 443, Allow),
            ("a.example.com", 443, Name),
            ("a.b.example.com", 443, Name),
        ],
    );

    let p = policy(&["*.example.com"], &["example.com"]);
    run_table(
        "exact deny of the parent does not deny children",
        &p,
        &[("a.example.com", 443, Allow), ("example.com", 443, Name)],
    );

    let p = policy(&["example.com"], &["example.com"]);
    run_table("same entry both lists", &p, &[("example.com", 443, Name)]);

    let p = policy(&["a.b.example.com"], &["*.example.com"]);
    run_table(
        "deny wildcard above an exact allow",
        &p,
        &[("a.b.example.com", 443, Name)],
    );
}

#[test]
fn deny_star_denies_every_name() {
    let p = policy(&[], &["*"]);
    run_table(
        "deny *",
        &p,
        &[
            ("example.com", 443, Name),
            ("a.b.c.example.org", 80, Name),
            ("localhost", 1, Name),
        ],
    );
}

#[test]
fn empty_allow_allows_every_name_not_denied() {
    let p = policy(&[], &[]);
    run_table(
        "empty policy",
        &p,
        &[
            ("example.com", 443, Allow),
            ("a.b.c.example.org", 80, Allow),
            ("xn--bcher-kva.example", 8443, Allow),
            ("com", 1, Allow),
        ],
    );
    let p = build(&PolicyConfig::default());
    run_table("default config", &p, &[("example.com", 443, Allow)]);

    let p = policy(&[], &["bad.example.com", "*.evil.org"]);
    run_table(
        "empty allow with denies",
        &p,
        &[
            ("example.com", 443, Allow),
            ("good.example.com", 443, Allow),
            ("evil.org", 443, Allow),
            ("bad.example.com", 443, Name),
            ("x.evil.org", 443, Name),
        ],
    );
}

#[test]
fn non_empty_allow_allows_only_what_it_names() {
    let p = policy(&["example.com"], &[]);
    run_table(
        "one rule",
        &p,
        &[
            ("example.com", 443, Allow),
            ("example.org", 443, Name),
            ("google.com", 443, Name),
            ("localhost", 443, Name),
        ],
    );
}

#[test]
fn mode_is_exposed_and_decisions_stay_true() {
    let p = build(&PolicyConfig::default());
    assert_eq!(p.mode(), Mode::Enforce);
    assert_eq!(Mode::default(), Mode::Enforce);

    let config = PolicyConfig {
        mode: Mode::Report,
        ..cfg(&["example.com"], &["bad.example.com"])
    };
    let p = build(&config);
    assert_eq!(p.mode(), Mode::Report);
    // Report mode still answers the true decision; the caller acts on the mode.
    run_table(
        "report mode",
        &p,
        &[("example.com", 443, Allow), ("example.org", 443, Name)],
    );
    let d = p.check_addr(crate::ip("127.0.0.1"));
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.reason, Reason::DeniedIp);
    assert!(p.check_addr(crate::ip("8.8.8.8")).allowed);
}

#[test]
fn reason_strings() {
    let cases = [
        (Reason::Allowed, "allowed"),
        (Reason::DeniedName, "denied_name"),
        (Reason::DeniedPort, "denied_port"),
        (Reason::DeniedIp, "denied_ip"),
        (Reason::NoAllowedAddress, "no_allowed_address"),
        (Reason::InvalidHost, "invalid_host"),
    ];
    for (reason, s) in cases {
        assert_eq!(reason.as_str(), s, "{reason:?}");
    }
}

#[test]
fn policy_is_debug_and_clone_and_a_clone_decides_the_same() {
    fn assert_traits<T: std::fmt::Debug + Clone + Send + Sync>() {}
    assert_traits::<Policy>();
    let p = policy(&["*.example.com:443"], &["bad.example.com"]);
    let q = p.clone();
    for (h, port) in [
        ("a.example.com", 443),
        ("a.example.com", 80),
        ("bad.example.com", 443),
        ("example.org", 443),
    ] {
        assert_eq!(
            p.check_target(&host(h), port),
            q.check_target(&host(h), port),
            "{h}:{port}"
        );
    }
    assert!(!format!("{p:?}").is_empty());
}

#[test]
fn many_overlapping_rules_keep_each_meaning() {
    // The same domain in several forms with different siblings, to catch a trie that lets
    // one node's flags leak onto another.
    let p = policy(
        &[
            "a.example.com",
            "*.b.example.com",
            ".c.example.com",
            "x.a.example.com",
        ],
        &["*.x.a.example.com", "c.example.com"],
    );
    run_table(
        "overlaps",
        &p,
        &[
            ("a.example.com", 443, Allow),
            ("x.a.example.com", 443, Allow),
            ("y.x.a.example.com", 443, Name),
            ("y.a.example.com", 443, Name),
            ("b.example.com", 443, Name),
            ("y.b.example.com", 443, Allow),
            ("c.example.com", 443, Name),
            ("y.c.example.com", 443, Allow),
            ("example.com", 443, Name),
        ],
    );
}
