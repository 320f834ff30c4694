//! Integration tests of `HickoryResolver` against the in-process DNS server.

#[path = "../support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use egress_core::resolve::{Error, HickoryResolver, IpFamily, Resolve, ResolverConfig};
use egress_core::target::Name;
use hickory_server::proto::rr::RecordType;
use support::dns::DnsServer;
use tokio::net::UdpSocket;

const V4_A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const V4_B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
const V6_A: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10));
const V6_B: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 11));

#[expect(
    clippy::unwrap_used,
    reason = "test helper: a bad literal is a bug in the test"
)]
fn name(s: &str) -> Name {
    s.parse().unwrap()
}

/// A resolver using only `server`, for `family`, with a 2 s query timeout.
fn config(server: &DnsServer, family: IpFamily) -> ResolverConfig {
    let mut config = ResolverConfig::default();
    config.nameservers = Some(vec![server.addr()]);
    config.ip_family = family;
    config.query_timeout = Duration::from_secs(2);
    config
}

#[expect(
    clippy::unwrap_used,
    reason = "test helper: a failure to build fails the test"
)]
fn resolver(config: ResolverConfig) -> HickoryResolver {
    HickoryResolver::new(config).unwrap()
}

#[tokio::test]
async fn a_lookup() {
    let server = DnsServer::start().await;
    server.set("www.example.test", vec![V4_A, V4_B]);
    let resolver = resolver(config(&server, IpFamily::Ipv4));

    let ips = resolver.resolve(&name("www.example.test")).await.unwrap();
    assert_eq!(ips, vec![V4_A, V4_B]);
    assert_eq!(server.queries("www.example.test"), 1);
}

#[tokio::test]
async fn aaaa_lookup_with_ipv6_family() {
    let server = DnsServer::start().await;
    server.set("v6.example.test", vec![V4_A, V6_A, V6_B]);
    let resolver = resolver(config(&server, IpFamily::Ipv6));

    let ips = resolver.resolve(&name("v6.example.test")).await.unwrap();
    assert_eq!(ips, vec![V6_A, V6_B]);
    assert_eq!(
        server.query_log(),
        vec![("v6.example.test".to_owned(), RecordType::AAAA)]
    );
}

#[tokio::test]
async fn ipv4_family_on_an_ipv6_only_name_has_no_addresses() {
    let server = DnsServer::start().await;
    server.set("v6only.example.test", vec![V6_A]);
    let resolver = resolver(config(&server, IpFamily::Ipv4));

    let result = resolver.resolve(&name("v6only.example.test")).await;
    assert!(matches!(result, Err(Error::NoAddresses)), "{result:?}");
    assert_eq!(
        server.query_log(),
        vec![("v6only.example.test".to_owned(), RecordType::A)]
    );
}

#[tokio::test]
async fn ipv6_family_on_an_ipv4_only_name_has_no_addresses() {
    let server = DnsServer::start().await;
    server.set("v4only.example.test", vec![V4_A]);
    let resolver = resolver(config(&server, IpFamily::Ipv6));

    let result = resolver.resolve(&name("v4only.example.test")).await;
    assert!(matches!(result, Err(Error::NoAddresses)), "{result:?}");
}

#[tokio::test]
async fn both_families_return_ipv4_first() {
    let server = DnsServer::start().await;
    server.set("dual.example.test", vec![V6_A, V4_A, V6_B, V4_B]);
    let resolver = resolver(config(&server, IpFamily::Both));

    let ips = resolver.resolve(&name("dual.example.test")).await.unwrap();
    assert_eq!(ips, vec![V4_A, V4_B, V6_A, V6_B]);
    let mut asked: Vec<RecordType> = server.query_log().into_iter().map(|(_, t)| t).collect();
    asked.sort();
    assert_eq!(asked, vec![RecordType::A, RecordType::AAAA]);
}

#[tokio::test]
async fn both_families_on_a_single_family_name() {
    let server = DnsServer::start().await;
    server.set("v6only.example.test", vec![V6_A]);
    server.set("empty.example.test", vec![]);
    let resolver = resolver(config(&server, IpFamily::Both));

    let ips = resolver
        .resolve(&name("v6only.example.test"))
        .await
        .unwrap();
    assert_eq!(ips, vec![V6_A]);
    let result = resolver.resolve(&name("empty.example.test")).await;
    assert!(matches!(result, Err(Error::NoAddresses)), "{result:?}");
}

#[tokio::test]
async fn nxdomain_is_not_found() {
    let server = DnsServer::start().await;
    server.set("www.example.test", vec![V4_A]);
    for family in [IpFamily::Ipv4, IpFamily::Ipv6, IpFamily::Both] {
        let resolver = resolver(config(&server, family));
        let result = resolver.resolve(&name("missing.example.test")).await;
        assert!(
            matches!(result, Err(Error::NotFound)),
            "{family:?}: {result:?}"
        );
    }
    // One A query, one AAAA query, then both: NXDOMAIN is neither retried nor cached.
    assert_eq!(server.queries("missing.example.test"), 4);
}

#[tokio::test]
async fn static_hosts_answer_without_a_query_and_honour_the_family() {
    let server = DnsServer::start().await;
    // The server would give other answers: they must not be used.
    server.set("pinned.example.test", vec![V4_B]);
    server.set("v6pinned.example.test", vec![V4_B]);
    let hosts = HashMap::from([
        (name("pinned.example.test"), vec![V6_A, V4_A, V4_A]),
        (name("v6pinned.example.test"), vec![V6_B]),
    ]);

    let mut both = config(&server, IpFamily::Both);
    both.hosts = hosts.clone();
    let both = resolver(both);
    let ips = both.resolve(&name("pinned.example.test")).await.unwrap();
    assert_eq!(
        ips,
        vec![V6_A, V4_A],
        "static order kept, duplicates dropped"
    );

    let mut v4 = config(&server, IpFamily::Ipv4);
    v4.hosts = hosts.clone();
    let v4 = resolver(v4);
    assert_eq!(
        v4.resolve(&name("pinned.example.test")).await.unwrap(),
        vec![V4_A]
    );
    let result = v4.resolve(&name("v6pinned.example.test")).await;
    assert!(matches!(result, Err(Error::NoAddresses)), "{result:?}");

    let mut v6 = config(&server, IpFamily::Ipv6);
    v6.hosts = hosts;
    let v6 = resolver(v6);
    assert_eq!(
        v6.resolve(&name("pinned.example.test")).await.unwrap(),
        vec![V6_A]
    );

    assert_eq!(server.queries("pinned.example.test"), 0);
    assert_eq!(server.queries("v6pinned.example.test"), 0);
    assert!(server.query_log().is_empty(), "{:?}", server.query_log());
}

#[tokio::test]
async fn names_are_resolved_as_absolute() {
    let server = DnsServer::start().await;
    server.set("www.example.test", vec![V4_A]);
    let resolver = resolver(config(&server, IpFamily::Ipv4));

    assert_eq!(
        resolver.resolve(&name("www.example.test")).await.unwrap(),
        vec![V4_A]
    );
    assert_eq!(
        server.query_log(),
        vec![("www.example.test".to_owned(), RecordType::A)]
    );
}

#[tokio::test]
async fn silent_nameserver_times_out() {
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = silent.local_addr().unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let drain = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        let mut received = 0usize;
        loop {
            tokio::select! {
                r = silent.recv_from(&mut buf) => if r.is_ok() { received += 1 },
                _ = &mut stopped => return received,
            }
        }
    });

    let mut config = ResolverConfig::default();
    config.nameservers = Some(vec![addr]);
    config.ip_family = IpFamily::Ipv4;
    config.query_timeout = Duration::from_millis(200);
    let resolver = resolver(config);

    let result = tokio::time::timeout(
        Duration::from_secs(10),
        resolver.resolve(&name("www.example.test")),
    )
    .await
    .expect("the resolver gave up within 10 s");
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    stop.send(()).unwrap();
    assert!(
        drain.await.unwrap() >= 1,
        "the query reached the silent nameserver"
    );
}

#[tokio::test]
async fn answers_are_cached_within_their_ttl() {
    let server = DnsServer::start().await;
    server.set_with_ttl("cached.example.test", vec![V4_A], 3600);
    let resolver = resolver(config(&server, IpFamily::Ipv4));

    assert_eq!(
        resolver
            .resolve(&name("cached.example.test"))
            .await
            .unwrap(),
        vec![V4_A]
    );
    // A changed record is not seen while the cached answer is valid.
    server.set_with_ttl("cached.example.test", vec![V4_B], 3600);
    assert_eq!(
        resolver
            .resolve(&name("cached.example.test"))
            .await
            .unwrap(),
        vec![V4_A]
    );
    assert_eq!(server.queries("cached.example.test"), 1);
}

#[tokio::test]
async fn cache_max_ttl_caps_a_long_ttl() {
    let server = DnsServer::start().await;
    server.set_with_ttl("capped.example.test", vec![V4_A], 3600);
    let mut config = config(&server, IpFamily::Ipv4);
    config.cache_max_ttl = Duration::from_secs(1);
    let resolver = resolver(config);

    assert_eq!(
        resolver
            .resolve(&name("capped.example.test"))
            .await
            .unwrap(),
        vec![V4_A]
    );
    assert_eq!(server.queries("capped.example.test"), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.set_with_ttl("capped.example.test", vec![V4_B], 3600);
    assert_eq!(
        resolver
            .resolve(&name("capped.example.test"))
            .await
            .unwrap(),
        vec![V4_B]
    );
    assert_eq!(server.queries("capped.example.test"), 2);
}

#[tokio::test]
async fn zero_ttl_answers_are_not_cached() {
    let server = DnsServer::start().await;
    server.set_sequence("rebind.example.test", vec![vec![V4_A], vec![V4_B]]);
    let resolver = resolver(config(&server, IpFamily::Ipv4));

    for want in [V4_A, V4_B, V4_A] {
        assert_eq!(
            resolver
                .resolve(&name("rebind.example.test"))
                .await
                .unwrap(),
            vec![want]
        );
    }
    assert_eq!(server.queries("rebind.example.test"), 3);
}

#[tokio::test]
async fn truncated_udp_answers_are_retried_over_tcp() {
    let server = DnsServer::start().await;
    // 200 A records do not fit in a UDP answer of 1232 bytes (hickory's EDNS payload size).
    let many: Vec<IpAddr> = (0..200u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)))
        .collect();
    server.set("big.example.test", many.clone());
    let resolver = resolver(config(&server, IpFamily::Ipv4));

    assert_eq!(
        resolver.resolve(&name("big.example.test")).await.unwrap(),
        many
    );
    assert_eq!(
        server.queries("big.example.test"),
        2,
        "one UDP query, then one TCP query"
    );
}

#[tokio::test]
async fn localhost_is_answered_locally() {
    let server = DnsServer::start().await;
    server.set("localhost", vec![V4_A]);
    let resolver = resolver(config(&server, IpFamily::Both));

    let ips = resolver.resolve(&name("localhost")).await.unwrap();
    assert_eq!(
        ips,
        vec![
            IpAddr::from(Ipv4Addr::LOCALHOST),
            IpAddr::from(Ipv6Addr::LOCALHOST)
        ]
    );
    let ips = resolver.resolve(&name("db.localhost")).await.unwrap();
    assert_eq!(
        ips,
        vec![
            IpAddr::from(Ipv4Addr::LOCALHOST),
            IpAddr::from(Ipv6Addr::LOCALHOST)
        ]
    );
    assert!(server.query_log().is_empty(), "{:?}", server.query_log());
}

#[tokio::test]
async fn server_stops_on_shutdown() {
    let server = DnsServer::start().await;
    server.set("www.example.test", vec![V4_A]);
    let mut config = config(&server, IpFamily::Ipv4);
    config.query_timeout = Duration::from_millis(200);
    config.cache_size = 0;
    let resolver = resolver(config);
    assert_eq!(
        resolver.resolve(&name("www.example.test")).await.unwrap(),
        vec![V4_A]
    );

    server.shutdown().await;
    let result = resolver.resolve(&name("www.example.test")).await;
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn server_releases_its_port_when_dropped() {
    let server = DnsServer::start().await;
    let addr = server.addr();
    drop(server);
    // The tasks are aborted on drop; the sockets close once the runtime has dropped them.
    let mut rebound = false;
    for _ in 0..100 {
        if UdpSocket::bind(addr).await.is_ok() && tokio::net::TcpListener::bind(addr).await.is_ok()
        {
            rebound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rebound, "{addr} still bound after the server was dropped");
}

/// Names from `/etc/hosts` (and Debian's `ip6-localhost`) must be asked of the nameserver.
#[tokio::test]
async fn etc_hosts_is_not_read() {
    let mut names = vec!["ip6-localhost".to_owned()];
    let hosts_file = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for line in hosts_file.lines() {
        let line = line.split('#').next().unwrap_or("");
        names.extend(line.split_whitespace().skip(1).map(str::to_owned));
    }
    let names: Vec<Name> = names
        .iter()
        .filter_map(|n| n.parse::<Name>().ok())
        .filter(|n| n.as_str() != "localhost" && !n.as_str().ends_with(".localhost"))
        .collect();

    let server = DnsServer::start().await;
    let resolver = resolver(config(&server, IpFamily::Ipv4));
    for n in &names {
        server.set(n.as_str(), vec![V4_A]);
        assert_eq!(resolver.resolve(n).await.unwrap(), vec![V4_A], "{n}");
        assert_eq!(server.queries(n.as_str()), 1, "{n}");
    }
}
