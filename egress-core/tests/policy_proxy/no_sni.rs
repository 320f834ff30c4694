//! ClientHellos without a server name: denied (`unrecognized_name`) unless `default_host`
//! is set, and then routed there, with the default host itself subject to the policy.

use crate::support::dns::DnsServer;
use crate::support::hello;
use crate::support::proxy::Proxy;
use crate::{
    ACCESS_DENIED, Outcome, Speak, UNRECOGNIZED_NAME, Upstream, addrs, hello_for, resolver,
    same_port, sni_block, sni_try,
};

/// The two hellos without SNI: a captured one, and one with no extensions at all.
fn nameless() -> [(&'static str, Vec<u8>); 2] {
    [
        ("openssl -noservername", hello::NO_SNI.to_vec()),
        (
            "no extensions",
            hello::records(&hello::client_hello_message(&[]), 16384),
        ),
    ]
}

struct Fixture {
    dns: DnsServer,
    /// On 127.0.0.2: where `fallback.test` resolves.
    fallback: Upstream,
    /// On 127.0.0.1, same port: where `named.test` and `local.test` resolve.
    named: Upstream,
}

impl Fixture {
    async fn new() -> Fixture {
        let [fallback, named]: [Upstream; 2] = same_port(&["127.0.0.2", "127.0.0.1"], Speak::Raw)
            .await
            .try_into()
            .ok()
            .unwrap();
        let dns = DnsServer::start().await;
        dns.set("fallback.test", addrs(&["127.0.0.2"]));
        dns.set("named.test", addrs(&["127.0.0.1"]));
        dns.set("local.test", addrs(&["127.0.0.1"]));
        Fixture {
            dns,
            fallback,
            named,
        }
    }

    /// An SNI proxy with `policy` and `extra` lines in its `[[sni]]` block.
    async fn proxy(&self, policy: &str, extra: &str) -> Proxy {
        let text = format!(
            "{}{policy}\n{}",
            resolver(&self.dns),
            sni_block("127.0.0.1:0", &self.named.port().to_string(), extra)
        );
        Proxy::start(&text).await
    }

    async fn counts(&self) -> (usize, usize) {
        (self.fallback.proxied().await, self.named.proxied().await)
    }
}

const OPEN: &str = "[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\n";

#[tokio::test]
async fn a_hello_without_sni_is_unrecognized_name_without_default_host() {
    let fx = Fixture::new().await;
    for policy in [
        "",
        OPEN,
        "[policy]\nallow = [\"*\"]\nallow_cidrs = [\"127.0.0.0/8\"]\n",
    ] {
        let proxy = fx.proxy(policy, "").await;
        for (what, bytes) in nameless() {
            assert_eq!(
                sni_try(proxy.addr(), &bytes).await,
                Outcome::Alert(UNRECOGNIZED_NAME),
                "{policy:?}: {what}"
            );
        }
        // The same proxy serves a named hello (the alert is about the missing name).
        let got = sni_try(proxy.addr(), &hello_for("named.test")).await;
        if policy.is_empty() {
            assert_eq!(got, Outcome::Alert(ACCESS_DENIED), "named, loopback denied");
        } else {
            assert_eq!(got, fx.named.through(), "{policy:?}: named");
        }
    }
    assert_eq!(fx.counts().await, (0, 2));
}

#[tokio::test]
async fn a_hello_without_sni_goes_to_an_allowed_default_host() {
    let fx = Fixture::new().await;
    let extra = "default_host = \"fallback.test\"";
    for policy in [
        OPEN.to_owned(),
        format!("{OPEN}allow = [\"fallback.test\", \"named.test\"]\n"),
    ] {
        let proxy = fx.proxy(&policy, extra).await;
        for (what, bytes) in nameless() {
            assert_eq!(
                sni_try(proxy.addr(), &bytes).await,
                fx.fallback.through(),
                "{policy:?}: {what}"
            );
        }
        // A hello with a name still goes to that name.
        assert_eq!(
            sni_try(proxy.addr(), &hello_for("named.test")).await,
            fx.named.through(),
            "{policy:?}: named"
        );
    }
    assert_eq!(fx.counts().await, (4, 2));
}

#[tokio::test]
async fn a_denied_default_host_is_refused_like_any_name() {
    let fx = Fixture::new().await;
    let cases = [
        // By name: on the deny list, outside the allow list, or on another port.
        (
            "fallback.test",
            format!("{OPEN}deny = [\"fallback.test\"]\n"),
            UNRECOGNIZED_NAME,
        ),
        (
            "fallback.test",
            format!("{OPEN}allow = [\"named.test\"]\n"),
            UNRECOGNIZED_NAME,
        ),
        (
            "fallback.test",
            format!("{OPEN}allow = [\"fallback.test:443\", \"named.test\"]\n"),
            UNRECOGNIZED_NAME,
        ),
        // By address: allowed by name, resolving only to a denied address.
        (
            "local.test",
            "[policy]\nallow_cidrs = [\"127.0.0.2/32\"]\n".to_owned(),
            ACCESS_DENIED,
        ),
        ("fallback.test", String::new(), ACCESS_DENIED),
    ];
    for (default_host, policy, alert) in &cases {
        let proxy = fx
            .proxy(policy, &format!("default_host = \"{default_host}\""))
            .await;
        for (what, bytes) in nameless() {
            assert_eq!(
                sni_try(proxy.addr(), &bytes).await,
                Outcome::Alert(*alert),
                "default_host {default_host}, {policy:?}: {what}"
            );
        }
    }
    assert_eq!(fx.counts().await, (0, 0));
}
