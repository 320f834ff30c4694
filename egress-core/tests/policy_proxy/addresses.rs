//! Resolved addresses: every one is checked, only allowed ones are dialed, and the check and
//! the dial use the same lookup.

use crate::support::dns::DnsServer;
use crate::{
    ACCESS_DENIED, Outcome, Proxies, Rig, Speak, Upstream, addrs, denied3, forbidden, same_port,
};

/// Names an allowed name resolves to in [`allowed_names_resolving_to_loopback_are_no_allowed_address`].
const LOOPBACK_ANSWERS: &[(&str, &[&str])] = &[
    ("local.test", &["127.0.0.1"]),
    ("v6.test", &["::1"]),
    ("mapped.test", &["::ffff:127.0.0.1"]),
    ("dual.test", &["127.0.0.1", "::1"]),
    ("mapped-dual.test", &["::ffff:127.0.0.1", "127.0.0.1"]),
];

/// Loopback is denied by default: a name allowed by the policy (or by the default policy)
/// that resolves only to loopback, in any form, is `no_allowed_address` (alert
/// `access_denied`), and nothing is dialed.
#[tokio::test]
async fn allowed_names_resolving_to_loopback_are_no_allowed_address() {
    let rig = Rig::new().await;
    let names: Vec<&str> = LOOPBACK_ANSWERS.iter().map(|(n, _)| *n).collect();
    for (name, ips) in LOOPBACK_ANSWERS {
        rig.names(&[name], ips);
    }
    let allow_list = format!("[policy]\nallow = {}\n", crate::toml_list(&names));
    for global in [
        "",
        "[policy]\n",
        &allow_list,
        "[policy]\ndeny_cidrs = [\"203.0.113.0/24\"]\n",
    ] {
        let proxies = rig.proxies(global).await;
        for name in &names {
            assert_eq!(
                proxies.all(name).await,
                denied3("no_allowed_address"),
                "{name} with {global:?} (SNI, CONNECT, GET)"
            );
        }
        assert_eq!(
            rig.proxied().await,
            (0, 0),
            "{global:?}: an upstream was reached"
        );
    }
    // `localhost` (which resolver libraries like to answer themselves) never gets through
    // either, whatever the refusal.
    let proxies = rig.proxies("").await;
    for name in ["localhost", "LocalHost", "localhost.", "foo.localhost"] {
        for got in proxies.all(name).await {
            assert!(
                matches!(got, Outcome::Alert(_) | Outcome::Refused(400..=599, _))
                    || matches!(&got, Outcome::Other(o) if !o.contains("tag ")),
                "{name}: {got:?}"
            );
        }
    }
    assert_eq!(rig.proxied().await, (0, 0), "localhost reached an upstream");
    // Re-opening loopback lets the IPv4 forms through (the mapped one is 127.0.0.1 too).
    let proxies = rig
        .proxies(&format!("{allow_list}allow_cidrs = [\"127.0.0.0/8\"]\n"))
        .await;
    for name in ["local.test", "mapped.test"] {
        assert_eq!(proxies.all(name).await, rig.through3(), "{name} re-opened");
    }
}

/// The policies that deny 127.0.0.1 and allow 127.0.0.2: by the default list, and by
/// `deny_cidrs` inside a re-opened range.
pub(crate) const SPLIT_POLICIES: [&str; 2] = [
    "[policy]\nallow_cidrs = [\"127.0.0.2/32\"]\n",
    "[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\ndeny_cidrs = [\"127.0.0.1/32\"]\n",
];

/// Upstreams sharing one port on 127.0.0.2 (allowed) and 127.0.0.1 (denied), raw and HTTP.
pub(crate) struct Split {
    pub(crate) dns: DnsServer,
    pub(crate) good_raw: Upstream,
    pub(crate) bad_raw: Upstream,
    pub(crate) good_http: Upstream,
    pub(crate) bad_http: Upstream,
}

impl Split {
    pub(crate) async fn new() -> Split {
        let [good_raw, bad_raw] = take2(same_port(&["127.0.0.2", "127.0.0.1"], Speak::Raw).await);
        let [good_http, bad_http] =
            take2(same_port(&["127.0.0.2", "127.0.0.1"], Speak::Http).await);
        Split {
            dns: DnsServer::start().await,
            good_raw,
            bad_raw,
            good_http,
            bad_http,
        }
    }

    pub(crate) async fn proxies(&self, policy: &str) -> Proxies {
        let ports = (self.good_raw.port(), self.good_http.port());
        Proxies::start(&self.dns, policy, ports, "", "").await
    }

    /// The three paths for `name`, with what getting through each looks like.
    pub(crate) async fn path(
        &self,
        proxies: &Proxies,
        path: usize,
        name: &str,
    ) -> (Outcome, Outcome) {
        match path {
            0 => (proxies.sni(name).await, self.good_raw.through()),
            1 => (proxies.connect(name).await, self.good_raw.through()),
            _ => (proxies.get(name).await, self.good_http.through()),
        }
    }

    /// Asserts the denied upstreams never saw a connection and the allowed ones saw
    /// `raw` and `http`.
    async fn assert_counts(&self, raw: usize, http: usize, what: &str) {
        assert_eq!(
            self.bad_raw.proxied().await,
            0,
            "{what}: 127.0.0.1 was dialed"
        );
        assert_eq!(
            self.bad_http.proxied().await,
            0,
            "{what}: 127.0.0.1 was dialed"
        );
        assert_eq!(self.good_raw.proxied().await, raw, "{what}: tunnels");
        assert_eq!(self.good_http.proxied().await, http, "{what}: forwards");
    }
}

fn take2(v: Vec<Upstream>) -> [Upstream; 2] {
    v.try_into().ok().expect("two upstreams")
}

pub(crate) const PATHS: [&str; 3] = ["sni", "connect", "get"];

/// A name whose every other answer is a denied address: each connection either reaches the
/// allowed upstream or is refused `no_allowed_address`, never the denied one (a proxy that
/// checked one lookup and dialed another would).
#[tokio::test]
async fn alternating_answers_never_reach_the_denied_address() {
    const ROUNDS: usize = 12;
    let split = Split::new().await;
    let (mut raw, mut http) = (0, 0);
    for policy in SPLIT_POLICIES {
        let proxies = split.proxies(policy).await;
        for (path, label) in PATHS.iter().enumerate() {
            let name = format!("alt-{label}.test");
            split
                .dns
                .set_sequence(&name, vec![addrs(&["127.0.0.1"]), addrs(&["127.0.0.2"])]);
            let refused = [
                Outcome::Alert(ACCESS_DENIED),
                forbidden("no_allowed_address"),
                forbidden("no_allowed_address"),
            ][path]
                .clone();
            let (mut through, mut refusals) = (0, 0);
            for round in 0..ROUNDS {
                let (got, ok) = split.path(&proxies, path, &name).await;
                if got == ok {
                    through += 1;
                } else if got == refused {
                    refusals += 1;
                } else {
                    panic!("{policy:?} {label} round {round}: {got:?}");
                }
            }
            assert!(
                through > 0 && refusals > 0,
                "{policy:?} {label}: {through} through, {refusals} refused: the answers did not alternate"
            );
            if path == 2 {
                http += through;
            } else {
                raw += through;
            }
        }
        split.assert_counts(raw, http, policy).await;
    }
}

/// A name with a denied and an allowed address, the denied one first (or only as its
/// IPv4-mapped AAAA form): every connection goes to the allowed address.
#[tokio::test]
async fn mixed_answers_dial_only_the_allowed_address() {
    const ROUNDS: usize = 4;
    let split = Split::new().await;
    let answers: [(&str, &[&str]); 4] = [
        ("mixed.test", &["127.0.0.1", "127.0.0.2"]),
        ("mixed-rev.test", &["127.0.0.2", "127.0.0.1"]),
        ("mixed-mapped.test", &["::ffff:127.0.0.1", "127.0.0.2"]),
        (
            "mixed-many.test",
            &["127.0.0.1", "::ffff:7f00:1", "127.0.0.2", "127.0.0.1"],
        ),
    ];
    for (name, ips) in answers {
        split.dns.set(name, addrs(ips));
    }
    let (mut raw, mut http) = (0, 0);
    for policy in SPLIT_POLICIES {
        let proxies = split.proxies(policy).await;
        for (name, _) in answers {
            for (path, label) in PATHS.iter().enumerate() {
                for round in 0..ROUNDS {
                    let (got, ok) = split.path(&proxies, path, name).await;
                    assert_eq!(got, ok, "{policy:?} {name} {label} round {round}");
                }
                if path == 2 {
                    http += ROUNDS;
                } else {
                    raw += ROUNDS;
                }
            }
        }
        split.assert_counts(raw, http, policy).await;
    }
}
