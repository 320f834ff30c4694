//! Properties: random LDH names against each pattern form (with a model of the matching
//! rules), unrelated rules never change a decision, the IPv4 table against a model, every
//! embedding of a random IPv4, and a policy with 100 000 rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use egress_core::policy::{Decision, Policy, PolicyConfig, Reason};
use egress_core::target::Host;
use proptest::prelude::*;

use crate::addrs::{V4_SPECIAL, embeddings};
use crate::{build, cfg, cidrs, host};

fn config(cases: u32) -> ProptestConfig {
    // PROPTEST_CASES raises every count for a longer run.
    let from_env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    ProptestConfig {
        cases: cases.max(from_env),
        // Keep failures in the report, not in files outside tests/policy.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A label that may start with a digit (not for the last label of a name).
fn any_label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9]{0,6}(-[a-z0-9]{1,3})?",
        // A tiny alphabet, so that random names share labels and suffixes often.
        "[ab]{1,2}",
    ]
}

/// A label that starts with a letter (so a last label is never numeric).
fn last_label() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,3})?", "[ab]{1,2}"]
}

/// A domain of 1 to `max` labels.
fn domain(max: usize) -> impl Strategy<Value = String> {
    (prop::collection::vec(any_label(), 0..max), last_label()).prop_map(|(mut ls, last)| {
        ls.push(last);
        ls.join(".")
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Exact,
    Star,
    Dot,
    All,
}

impl Form {
    fn pattern(self, d: &str) -> String {
        match self {
            Form::Exact => d.to_owned(),
            Form::Star => format!("*.{d}"),
            Form::Dot => format!(".{d}"),
            Form::All => "*".to_owned(),
        }
    }

    /// The spec's matching rule, on normalised strings.
    fn matches(self, d: &str, n: &str) -> bool {
        match self {
            Form::Exact => n == d,
            Form::Star => n.len() > d.len() + 1 && n.ends_with(&format!(".{d}")),
            Form::Dot => n == d || n.ends_with(&format!(".{d}")),
            Form::All => true,
        }
    }
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![3 => Just(Form::Exact), 3 => Just(Form::Star), 3 => Just(Form::Dot), 1 => Just(Form::All)]
}

/// A name related to `d` in one of the ways that trip matchers, or unrelated.
fn name_near(d: String) -> impl Strategy<Value = String> {
    let d1 = d.clone();
    let d2 = d.clone();
    let d3 = d.clone();
    let d4 = d.clone();
    let d5 = d.clone();
    prop_oneof![
        Just(d.clone()),
        prop::collection::vec(any_label(), 1..4)
            .prop_map(move |ls| format!("{}.{d1}", ls.join("."))),
        // Glued onto the first label: `xexample.com`.
        any_label().prop_map(move |l| format!("{l}{d2}")),
        // A proper suffix of d.
        Just(
            d3.split_once('.')
                .map_or_else(|| d3.clone(), |(_, rest)| rest.to_owned())
        ),
        // d with its first label changed.
        (any_label(), prop::collection::vec(any_label(), 0..2)).prop_map(move |(l, pre)| {
            let rest = d4.split_once('.').map_or("", |(_, r)| r);
            let mut ls = pre;
            ls.push(l);
            if !rest.is_empty() {
                ls.push(rest.to_owned());
            }
            ls.join(".")
        }),
        // d followed by more labels: `example.com.evil`.
        last_label().prop_map(move |l| format!("{d5}.{l}")),
        domain(5),
    ]
}

/// A name that is also a valid target (not too long, last label not numeric).
fn is_valid_target(n: &str) -> bool {
    n.parse::<egress_core::target::Name>()
        .is_ok_and(|name| name.as_str() == n)
}

fn with_opt_in(allow: Vec<String>, deny: Vec<String>) -> PolicyConfig {
    PolicyConfig {
        allow,
        deny,
        // Random labels can spell public suffixes (`uk.com`, `co.uk`): matching is what is
        // under test here.
        allow_public_suffix_wildcards: true,
        ..PolicyConfig::default()
    }
}

fn check(p: &Policy, n: &str, port: u16) -> Decision {
    p.check_target(&host(n), port)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn each_form_matches_exactly_per_the_spec(
        (d, n) in domain(3).prop_flat_map(|d| (Just(d.clone()), name_near(d))),
        f in form(),
        port in prop_oneof![Just(443u16), Just(80), 1u16..],
    ) {
        prop_assume!(is_valid_target(&n));
        let p = build(&with_opt_in(vec![f.pattern(&d)], vec![]));
        let got = check(&p, &n, port);
        let want = f.matches(&d, &n);
        prop_assert_eq!(got.allowed, want, "pattern {} name {} -> {:?}", f.pattern(&d), n, got);
        prop_assert_eq!(
            got.reason,
            if want { Reason::Allowed } else { Reason::DeniedName },
            "pattern {} name {}", f.pattern(&d), n
        );
    }

    #[test]
    fn star_dot_is_ends_with_dot_d_and_longer(
        (d, n) in domain(3).prop_flat_map(|d| (Just(d.clone()), name_near(d))),
    ) {
        prop_assume!(is_valid_target(&n));
        let p = build(&with_opt_in(vec![format!("*.{d}")], vec![]));
        let want = n.ends_with(&format!(".{d}")) && n.len() > d.len();
        prop_assert_eq!(check(&p, &n, 443).allowed, want, "*.{} vs {}", d, n);
    }

    #[test]
    fn leading_dot_is_d_or_ends_with_dot_d(
        (d, n) in domain(3).prop_flat_map(|d| (Just(d.clone()), name_near(d))),
    ) {
        prop_assume!(is_valid_target(&n));
        let p = build(&with_opt_in(vec![format!(".{d}")], vec![]));
        let want = n == d || n.ends_with(&format!(".{d}"));
        prop_assert_eq!(check(&p, &n, 443).allowed, want, ".{} vs {}", d, n);
    }

    #[test]
    fn deny_forms_mirror_allow_forms(
        (d, n) in domain(3).prop_flat_map(|d| (Just(d.clone()), name_near(d))),
        f in form(),
    ) {
        prop_assume!(is_valid_target(&n));
        let p = build(&with_opt_in(vec![], vec![f.pattern(&d)]));
        let got = check(&p, &n, 443);
        prop_assert_eq!(got.allowed, !f.matches(&d, &n), "deny {} name {} -> {:?}", f.pattern(&d), n, got);
    }

    #[test]
    fn ports_follow_the_model(
        (d, n) in domain(3).prop_flat_map(|d| (Just(d.clone()), name_near(d))),
        f in form(),
        ports in prop::collection::btree_set(prop_oneof![Just(80u16), Just(443), Just(8443), 1u16..], 1..4),
        port in prop_oneof![Just(80u16), Just(443), Just(8443), 1u16..],
    ) {
        prop_assume!(is_valid_target(&n));
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let pattern = format!("{}:{}", f.pattern(&d), list.join(","));
        let p = build(&with_opt_in(vec![pattern.clone()], vec![]));
        let got = check(&p, &n, port);
        let want = if !f.matches(&d, &n) {
            Reason::DeniedName
        } else if ports.contains(&port) {
            Reason::Allowed
        } else {
            Reason::DeniedPort
        };
        prop_assert_eq!(got.reason, want, "{} vs {}:{} -> {:?}", pattern, n, port, got);
        prop_assert_eq!(got.allowed, want == Reason::Allowed);
    }

    #[test]
    fn config_case_and_trailing_dot_do_not_matter(
        (d, n) in domain(3).prop_flat_map(|d| (Just(d.clone()), name_near(d))),
        f in form(),
        upper in prop::collection::vec(any::<bool>(), 40),
        dot in any::<bool>(),
    ) {
        prop_assume!(is_valid_target(&n));
        let plain = f.pattern(&d);
        let mut mixed: String = plain
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
            .collect();
        if dot && f != Form::All {
            mixed.push('.');
        }
        let a = build(&with_opt_in(vec![plain.clone()], vec![]));
        let b = build(&with_opt_in(vec![mixed.clone()], vec![]));
        prop_assert_eq!(check(&a, &n, 443), check(&b, &n, 443), "{} vs {} on {}", plain, mixed, n);
    }
}

/// A small deterministic generator for bulk rules (proptest supplies the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn label(&mut self) -> String {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        if self.below(3) == 0 {
            // Tiny alphabet: collides with the names under test.
            return ["a", "b", "ab", "ba", "aa", "bb"][self.below(6)].to_owned();
        }
        let len = 1 + self.below(8);
        let mut s = String::new();
        s.push(char::from(LETTERS[self.below(LETTERS.len())]));
        for _ in 1..len {
            s.push(char::from(ALNUM[self.below(ALNUM.len())]));
        }
        s
    }

    /// A pattern (with or without ports), near `n` or random.
    fn pattern_near(&mut self, n: &str) -> String {
        let labels: Vec<&str> = n.split('.').collect();
        let d = match self.below(6) {
            // n itself (only `*.n` survives the filter), a child of n.
            0 => n.to_owned(),
            1 => format!("{}.{n}", self.label()),
            // A proper suffix of n (only exact survives).
            2 => labels[self.below(labels.len())..].join("."),
            // A sibling: first label replaced.
            3 => {
                let mut ls: Vec<String> = labels.iter().map(|s| (*s).to_owned()).collect();
                ls[0] = self.label();
                ls.join(".")
            }
            // n glued to a label, and n followed by a label.
            4 => {
                if self.below(2) == 0 {
                    format!("{}{n}", self.label())
                } else {
                    format!("{n}.{}", self.label())
                }
            }
            _ => {
                let k = 1 + self.below(4);
                (0..k).map(|_| self.label()).collect::<Vec<_>>().join(".")
            }
        };
        let form = [Form::Exact, Form::Star, Form::Dot][self.below(3)];
        let mut p = form.pattern(&d);
        if self.below(2) == 0 {
            let ports: Vec<String> = (0..1 + self.below(3))
                .map(|_| [80u16, 443, 8443, 22, 1, 65535][self.below(6)].to_string())
                .collect();
            p = format!("{p}:{}", ports.join(","));
        }
        p
    }
}

/// Whether a pattern (`form` + domain, optional ports) matches a name, per the spec.
fn pattern_matches(pattern: &str, n: &str) -> bool {
    let name = pattern.split_once(':').map_or(pattern, |(name, _)| name);
    if name == "*" {
        Form::All.matches("", n)
    } else if let Some(d) = name.strip_prefix("*.") {
        Form::Star.matches(d, n)
    } else if let Some(d) = name.strip_prefix('.') {
        Form::Dot.matches(d, n)
    } else {
        Form::Exact.matches(name, n)
    }
}

fn unrelated(rng: &mut Rng, n: &str, count: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let p = rng.pattern_near(n);
        let name = p.split_once(':').map_or(p.as_str(), |(name, _)| name);
        let bare = name.trim_start_matches("*.").trim_start_matches('.');
        if bare.len() <= 200 && !pattern_matches(&p, n) {
            out.push(p);
        }
    }
    out
}

fn base_rules(seed: u64, n: &str, count: usize) -> Vec<String> {
    let mut rng = Rng(seed | 1);
    (0..count).map(|_| rng.pattern_near(n)).collect()
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn unrelated_allow_rules_never_change_a_decision(
        n in domain(4),
        seed in any::<u64>(),
        base_allow in 1usize..4,
        base_deny in 0usize..3,
        port in prop_oneof![Just(80u16), Just(443), Just(8443), Just(22), 1u16..],
    ) {
        prop_assume!(is_valid_target(&n));
        let allow = base_rules(seed, &n, base_allow);
        let deny = base_rules(seed.rotate_left(17), &n, base_deny);
        let before = build(&with_opt_in(allow.clone(), deny.clone()));
        let mut rng = Rng(seed.rotate_left(31) | 1);
        let mut more = allow.clone();
        more.extend(unrelated(&mut rng, &n, 1000));
        let after = build(&with_opt_in(more, deny.clone()));
        let (b, a) = (check(&before, &n, port), check(&after, &n, port));
        prop_assert_eq!(b, a, "name {}:{} allow {:?} deny {:?}", n, port, allow, deny);
        // The same 1000 again at the front, to catch order dependence.
        let mut front = unrelated(&mut Rng(seed.rotate_left(7) | 1), &n, 1000);
        front.extend(allow.clone());
        let front = build(&with_opt_in(front, deny.clone()));
        prop_assert_eq!(b, check(&front, &n, port), "rules in front: {}:{}", n, port);
    }

    #[test]
    fn unrelated_deny_rules_never_change_a_decision(
        n in domain(4),
        seed in any::<u64>(),
        base_allow in 0usize..3,
        base_deny in 0usize..3,
        port in prop_oneof![Just(80u16), Just(443), Just(22), 1u16..],
    ) {
        prop_assume!(is_valid_target(&n));
        let allow = base_rules(seed, &n, base_allow);
        let deny = base_rules(seed.rotate_left(17), &n, base_deny);
        let before = build(&with_opt_in(allow.clone(), deny.clone()));
        let mut more = deny.clone();
        more.extend(unrelated(&mut Rng(seed.rotate_left(31) | 1), &n, 1000));
        let after = build(&with_opt_in(allow.clone(), more));
        prop_assert_eq!(
            check(&before, &n, port),
            check(&after, &n, port),
            "name {}:{} allow {:?} deny {:?}", n, port, allow, deny
        );
    }
}

/// Whether the spec's table denies this IPv4 address.
fn v4_special(a: Ipv4Addr) -> bool {
    let n = u32::from(a);
    V4_SPECIAL.iter().any(|(first, last, _)| {
        let f: u32 = first.parse::<Ipv4Addr>().unwrap().into();
        let l: u32 = last.parse::<Ipv4Addr>().unwrap().into();
        (f..=l).contains(&n)
    })
}

/// Random addresses, half of them within a few of a range edge.
fn v4() -> impl Strategy<Value = Ipv4Addr> {
    let edges: Vec<u32> = V4_SPECIAL
        .iter()
        .flat_map(|(first, last, _)| {
            let f: u32 = first.parse::<Ipv4Addr>().unwrap().into();
            let l: u32 = last.parse::<Ipv4Addr>().unwrap().into();
            [f, l]
        })
        .collect();
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        (prop::sample::select(edges), -3i64..=3).prop_map(|(e, delta)| Ipv4Addr::from(
            (i64::from(e) + delta).clamp(0, i64::from(u32::MAX)) as u32
        )),
    ]
}

/// 192.88.99.0/24 (deprecated 6to4 relay anycast) is left to the implementation.
fn unpinned(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 192 && o[1] == 88 && o[2] == 99
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn ipv4_table_matches_the_spec(a in v4()) {
        prop_assume!(!unpinned(a));
        let p = build(&PolicyConfig::default());
        let d = p.check_addr(IpAddr::V4(a));
        prop_assert_eq!(d.allowed, !v4_special(a), "{} -> {:?}", a, d);
        prop_assert_eq!(
            d.reason,
            if v4_special(a) { Reason::DeniedIp } else { Reason::Allowed },
            "{}", a
        );
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn every_embedding_decides_like_its_ipv4(a in v4(), low in any::<u64>()) {
        prop_assume!(!unpinned(a));
        let p = build(&PolicyConfig::default());
        let want = p.check_addr(IpAddr::V4(a));
        let mut forms = embeddings(a);
        let n = u32::from(a);
        // 6to4 with random bits after the embedded address.
        forms.push((
            "6to4 random tail",
            Ipv6Addr::from((0x2002u128 << 112) | (u128::from(n) << 80) | u128::from(low)),
        ));
        for (form, v6) in forms {
            let got = p.check_addr(IpAddr::V6(v6));
            prop_assert_eq!(got, want, "{} {} (embeds {})", form, v6, a);
            prop_assert_eq!(
                p.check_target(&Host::Ip(IpAddr::V6(v6)), 443).allowed,
                want.allowed,
                "literal {}", v6
            );
        }
    }

    #[test]
    fn mapped_literals_decide_like_ipv4_under_cidrs(a in v4()) {
        let p = build(&cidrs(&["127.0.0.0/8", "10.0.0.0/8"], &["10.1.0.0/16", "8.0.0.0/8"]));
        let v4 = p.check_target(&Host::Ip(IpAddr::V4(a)), 443);
        let mapped = p.check_target(&Host::Ip(IpAddr::V6(a.to_ipv6_mapped())), 443);
        prop_assert_eq!(v4, mapped, "{}", a);
        prop_assert_eq!(p.check_addr(IpAddr::V6(a.to_ipv6_mapped())), p.check_addr(IpAddr::V4(a)), "{}", a);
    }

    #[test]
    fn global_unicast_ipv6_is_allowed(first in 0x2003u16..=0x3ffe, rest in any::<u128>()) {
        let a = Ipv6Addr::from((u128::from(first) << 112) | (rest >> 16));
        let p = build(&PolicyConfig::default());
        let d = p.check_addr(IpAddr::V6(a));
        prop_assert!(d.allowed, "{} -> {:?}", a, d);
    }
}

#[test]
fn one_hundred_thousand_allow_rules_build_and_answer() {
    let mut allow = Vec::with_capacity(100_000);
    for i in 0..100_000u32 {
        let zone = i % 997;
        allow.push(match i % 4 {
            0 => format!("h{i}.z{zone}.example.com"),
            1 => format!("*.w{i}.z{zone}.example.com"),
            2 => format!(".d{i}.z{zone}.example.net"),
            _ => format!("p{i}.z{zone}.example.org:443,8443"),
        });
    }
    let deny = vec![
        "h4.z4.example.com".to_owned(),
        "*.bad.w5.z5.example.com".to_owned(),
    ];
    let p = build(&PolicyConfig {
        allow,
        deny,
        ..PolicyConfig::default()
    });
    crate::run_table(
        "100 000 rules",
        &p,
        &[
            ("h0.z0.example.com", 443, crate::Want::Allow),
            ("h99996.z296.example.com", 80, crate::Want::Allow),
            ("x.w1.z1.example.com", 443, crate::Want::Allow),
            ("x.y.w99997.z297.example.com", 443, crate::Want::Allow),
            ("w1.z1.example.com", 443, crate::Want::Name),
            ("d2.z2.example.net", 443, crate::Want::Allow),
            ("a.d99998.z298.example.net", 443, crate::Want::Allow),
            ("p3.z3.example.org", 8443, crate::Want::Allow),
            ("p3.z3.example.org", 80, crate::Want::Port),
            ("p99999.z299.example.org", 443, crate::Want::Allow),
            ("h4.z4.example.com", 443, crate::Want::Name),
            ("ok.w5.z5.example.com", 443, crate::Want::Allow),
            ("x.bad.w5.z5.example.com", 443, crate::Want::Name),
            // Rule i lives in zone i % 997; a wrong zone is not a match.
            ("h0.z1.example.com", 443, crate::Want::Name),
            ("h100000.z300.example.com", 443, crate::Want::Name),
            ("z0.example.com", 443, crate::Want::Name),
            ("example.com", 443, crate::Want::Name),
            ("other.org", 443, crate::Want::Name),
        ],
    );
    // Addresses are unaffected by the size of the name rules.
    assert!(p.check_addr(crate::ip("8.8.8.8")).allowed);
    assert!(!p.check_addr(crate::ip("127.0.0.1")).allowed);
    // A clone answers the same.
    let q = p.clone();
    assert_eq!(
        q.check_target(&host("x.w1.z1.example.com"), 443),
        p.check_target(&host("x.w1.z1.example.com"), 443)
    );
}

#[test]
fn one_hundred_thousand_deny_rules_build_and_answer() {
    let deny: Vec<String> = (0..100_000u32)
        .map(|i| format!("*.t{i}.example.com"))
        .collect();
    let p = build(&PolicyConfig {
        deny,
        ..cfg(&[], &[])
    });
    crate::run_table(
        "100 000 denies",
        &p,
        &[
            ("a.t0.example.com", 443, crate::Want::Name),
            ("a.t99999.example.com", 443, crate::Want::Name),
            ("t5.example.com", 443, crate::Want::Allow),
            ("a.t100000.example.com", 443, crate::Want::Allow),
        ],
    );
}
