//! IP-literal targets, non-canonical numeric hosts, and the proxy's own sockets as targets.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::support::dns::DnsServer;
use crate::support::http_upstream::Wire;
use crate::support::proxy::{Proxy, free_port};
use crate::{
    ACCESS_DENIED, Outcome, Rig, Speak, Upstream, WAIT, addrs, connect_request, forbidden,
    get_request, hello_for, http_block, http_try, resolver, sni_block, sni_try,
};

/// `GET /` in origin form with `Host: {authority}`.
fn origin_get(authority: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

/// IP literals in CONNECT, absolute-form and origin-form targets are checked as addresses:
/// loopback is denied by default, the IPv4-mapped form is the IPv4 address, and only
/// `allow_cidrs` re-opens them.
#[tokio::test]
async fn ip_literals_are_checked_as_addresses() {
    let rig = Rig::new().await;
    let v6 = Upstream::bind("[::1]:0", Speak::Http).await;
    let (raw, http, v6_port) = (rig.raw.port(), rig.http.port(), v6.port());
    let v4_forms = ["127.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"];

    // Default list (no [policy], or one re-opening ::1 only): every form of 127.0.0.1 is
    // denied_ip; ::1 only when not re-opened.
    for (global, v6_open) in [
        ("", false),
        ("[policy]\n", false),
        ("[policy]\nallow_cidrs = [\"::1/128\"]\n", true),
    ] {
        let proxies = rig.proxies(global).await;
        let at = proxies.http.addr();
        for host in v4_forms {
            let cases = [
                connect_request(&format!("{host}:{raw}")),
                get_request(&format!("{host}:{http}")),
                origin_get(&format!("{host}:{http}")),
            ];
            for request in cases {
                assert_eq!(
                    http_try(at, &request).await,
                    forbidden("denied_ip"),
                    "{global:?}: {}",
                    String::from_utf8_lossy(&request)
                );
            }
        }
        let got = http_try(at, &get_request(&format!("[::1]:{v6_port}"))).await;
        if v6_open {
            assert_eq!(got, v6.through(), "{global:?}: http://[::1]/");
        } else {
            assert_eq!(got, forbidden("denied_ip"), "{global:?}: http://[::1]/");
        }
        assert_eq!(
            rig.proxied().await,
            (0, 0),
            "{global:?}: an upstream was reached"
        );
    }
    assert_eq!(v6.proxied().await, 1);

    // Re-opening 127.0.0.0/8 lets every form of 127.0.0.1 through, and still not ::1.
    let proxies = rig
        .proxies("[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\n")
        .await;
    let at = proxies.http.addr();
    for host in v4_forms {
        let what = format!("{host} re-opened");
        let got = http_try(at, &connect_request(&format!("{host}:{raw}"))).await;
        assert_eq!(got, rig.raw.through(), "{what}: CONNECT");
        let got = http_try(at, &get_request(&format!("{host}:{http}"))).await;
        assert_eq!(got, rig.http.through(), "{what}: GET");
    }
    let got = http_try(at, &get_request(&format!("[::1]:{v6_port}"))).await;
    assert_eq!(got, forbidden("denied_ip"), "http://[::1]/ with 127/8 open");
    assert_eq!(rig.proxied().await, (3, 3));
    assert_eq!(v6.proxied().await, 1);
}

/// The status of the answer to `request`, whatever follows it.
async fn status_of(proxy: SocketAddr, request: &[u8]) -> Option<u16> {
    let stream = timeout(WAIT, TcpStream::connect(proxy)).await.ok()?.ok()?;
    let mut wire = Wire::new(stream);
    let _ = timeout(WAIT, wire.stream.write_all(request)).await;
    let head = timeout(WAIT, wire.read_head()).await.ok()?.ok()??;
    String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
}

/// Hosts that glibc would read as 127.0.0.1: never resolved, never dialed.
const NUMERIC: [&str; 8] = [
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f.0.0.1",
    "127.0.0.01",
    "017700000001",
];

/// Non-canonical numeric hosts are refused with 400, in every form of target, without a
/// DNS query and without reaching the upstream (loopback re-opened, so that a proxy that
/// handed them to the system resolver would get there). Over SNI they never get through.
#[tokio::test]
async fn non_canonical_numeric_hosts_are_400_and_never_resolved() {
    let rig = Rig::new().await;
    for mode in ["enforce", "report"] {
        let policy = format!("[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\nmode = \"{mode}\"\n");
        let proxies = rig.proxies(&policy).await;
        let (raw, http) = (rig.raw.port(), rig.http.port());
        for host in NUMERIC {
            let requests = [
                connect_request(&format!("{host}:{raw}")),
                get_request(&format!("{host}:{http}")),
                origin_get(&format!("{host}:{http}")),
            ];
            for request in requests {
                assert_eq!(
                    status_of(proxies.http.addr(), &request).await,
                    Some(400),
                    "{mode}: {}",
                    String::from_utf8_lossy(&request)
                );
            }
            let got = proxies.sni(host).await;
            assert!(
                !matches!(got, Outcome::Through(_)),
                "{mode}: SNI {host}: {got:?}"
            );
        }
        assert_eq!(
            rig.dns.query_log(),
            vec![],
            "{mode}: a numeric host was resolved"
        );
        assert_eq!(
            rig.proxied().await,
            (0, 0),
            "{mode}: an upstream was reached"
        );
    }
}

/// The proxy's own listening sockets are denied as targets even with loopback re-opened,
/// by literal (either listener, IPv4-mapped too) and by a name resolving to them, over
/// CONNECT, plain forwarding and the SNI listener in `"listener"` port mode; the proxy does
/// not loop and keeps serving.
#[tokio::test]
async fn the_proxys_own_listeners_are_denied_targets() {
    let dns = DnsServer::start().await;
    // An upstream on 127.0.0.1:P, and the SNI listener on 127.0.0.8:P (same port: the
    // listener port mode dials it on 127.0.0.1 for the control).
    let (upstream, sni_port) = loop {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = std.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.8", port)).is_ok() {
            std.set_nonblocking(true).unwrap();
            let listener = TcpListener::from_std(std).unwrap();
            break (Upstream::serve(listener, Speak::Raw), port);
        }
    };
    let http_port = free_port("127.0.0.7");
    let text = format!(
        "{}[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\n\n{}{}",
        resolver(&dns),
        sni_block(&format!("127.0.0.8:{sni_port}"), "\"listener\"", ""),
        http_block(
            &format!("127.0.0.7:{http_port}"),
            &[http_port, sni_port],
            ""
        ),
    );
    let proxy = Proxy::start(&text).await;
    let http_at: SocketAddr = format!("127.0.0.7:{http_port}").parse().unwrap();
    let sni_at: SocketAddr = format!("127.0.0.8:{sni_port}").parse().unwrap();
    let mut listening = proxy.addrs.clone();
    listening.sort();
    assert_eq!(listening, vec![http_at, sni_at]);

    dns.set("self-http.test", addrs(&["127.0.0.7"]));
    dns.set("self-mapped.test", addrs(&["::ffff:127.0.0.7"]));
    dns.set("self-sni.test", addrs(&["127.0.0.8"]));
    dns.set("up.test", addrs(&["127.0.0.1"]));

    let literal = [
        connect_request(&format!("127.0.0.7:{http_port}")),
        connect_request(&format!("[::ffff:127.0.0.7]:{http_port}")),
        connect_request(&format!("127.0.0.8:{sni_port}")),
        get_request(&format!("127.0.0.7:{http_port}")),
        get_request(&format!("127.0.0.8:{sni_port}")),
        origin_get(&format!("127.0.0.7:{http_port}")),
    ];
    for request in &literal {
        assert_eq!(
            http_try(http_at, request).await,
            forbidden("denied_ip"),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    let named = [
        connect_request(&format!("self-http.test:{http_port}")),
        connect_request(&format!("self-mapped.test:{http_port}")),
        connect_request(&format!("self-sni.test:{sni_port}")),
        get_request(&format!("self-http.test:{http_port}")),
        get_request(&format!("self-sni.test:{sni_port}")),
    ];
    for request in &named {
        assert_eq!(
            http_try(http_at, request).await,
            forbidden("no_allowed_address"),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(
        sni_try(sni_at, &hello_for("self-sni.test")).await,
        Outcome::Alert(ACCESS_DENIED),
        "SNI to its own socket"
    );
    assert_eq!(upstream.proxied().await, 0);

    // Still serving, and the same port on another loopback address is fine.
    assert_eq!(
        sni_try(sni_at, &hello_for("up.test")).await,
        upstream.through(),
        "SNI control"
    );
    let request = connect_request(&format!("127.0.0.1:{sni_port}"));
    assert_eq!(
        http_try(http_at, &request).await,
        upstream.through(),
        "CONNECT control"
    );
    assert_eq!(upstream.proxied().await, 2);
}
