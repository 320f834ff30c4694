//! Denied names and denied ports, through all three paths; the upstream never sees them.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::http_upstream::{HttpUpstream, Mode, Wire, echo_line};
use crate::{
    Outcome, Proxies, Rig, WAIT, connect_request, denied3, forbidden, get_request, http_try,
    toml_list,
};

/// Every name here resolves to the upstreams' address, with loopback re-opened: a proxy
/// that let a denied one through would reach the upstream.
const LOOPBACK: &str = "allow_cidrs = [\"127.0.0.0/8\"]\n";

/// Asserts each of `names` gets `want` through all three paths.
async fn expect_all(proxies: &crate::Proxies, names: &[&str], want: &[Outcome; 3], what: &str) {
    for name in names {
        let got = proxies.all(name).await;
        assert_eq!(&got, want, "{what}: {name} (SNI, CONNECT, GET)");
    }
}

#[tokio::test]
async fn names_on_the_deny_list_are_refused_and_reach_nobody() {
    let rig = Rig::new().await;
    let denied = [
        "bad.test",
        "x.evil.test",
        "a.b.evil.test",
        "x.both.test",
        "deep.x.both.test",
    ];
    let allowed = ["good.test", "evil.test", "both.test", "y.both.test"];
    rig.names(&denied, &["127.0.0.1"]);
    rig.names(&allowed, &["127.0.0.1"]);
    rig.names(&["BAD.Test"], &["127.0.0.1"]);
    // No allow list: every public name, minus the deny list (deny also wins over allow).
    for allow in [toml_list(&[]), toml_list(&[".both.test", "*"])] {
        let policy = format!(
            "[policy]\nallow = {allow}\ndeny = [\"bad.test\", \"*.evil.test\", \".x.both.test\"]\n{LOOPBACK}"
        );
        let proxies = rig.proxies(&policy).await;
        let what = format!("allow = {allow}");
        expect_all(&proxies, &denied, &denied3("denied_name"), &what).await;
        // Names are compared case-insensitively.
        expect_all(&proxies, &["BAD.Test"], &denied3("denied_name"), &what).await;
        // A trailing dot must not slip past the deny list: refused one way or another.
        let [sni, connect, get] = proxies.all("bad.test.").await;
        assert!(
            !matches!(sni, Outcome::Through(_)),
            "{what}: bad.test. over SNI: {sni:?}"
        );
        for got in [connect, get] {
            assert!(
                matches!(got, Outcome::Refused(400..=499, _)),
                "{what}: bad.test. over HTTP: {got:?}"
            );
        }
        assert_eq!(
            rig.proxied().await,
            (0, 0),
            "{what}: an upstream was reached"
        );
    }
    // And the same proxies let the allowed names through (the test can tell).
    let policy =
        format!("[policy]\ndeny = [\"bad.test\", \"*.evil.test\", \".x.both.test\"]\n{LOOPBACK}");
    let proxies = rig.proxies(&policy).await;
    expect_all(&proxies, &allowed, &rig.through3(), "allowed").await;
}

#[tokio::test]
async fn names_outside_a_non_empty_allow_list_are_refused_and_reach_nobody() {
    let rig = Rig::new().await;
    let denied = [
        "other.test",
        "sub.good.test",
        "good.test.other",
        "wild.test",
        "xgood.test",
        "agood.test",
    ];
    let allowed = ["good.test", "x.wild.test", "a.b.wild.test", "GOOD.test"];
    rig.names(&denied, &["127.0.0.1"]);
    rig.names(&allowed, &["127.0.0.1"]);
    let policy = format!("[policy]\nallow = [\"good.test\", \"*.wild.test\"]\n{LOOPBACK}");
    let proxies = rig.proxies(&policy).await;
    expect_all(&proxies, &denied, &denied3("denied_name"), "not allowed").await;
    assert_eq!(rig.proxied().await, (0, 0), "an upstream was reached");
    expect_all(&proxies, &allowed, &rig.through3(), "allowed").await;
    assert_eq!(rig.proxied().await, (8, 4));
}

/// `name:443` allows that name on 443 only: CONNECT to another port in `connect_ports`, the
/// SNI listener dialing another port, and a plain forward to another port are `denied_port`
/// (alert `unrecognized_name` for SNI).
#[tokio::test]
async fn allowed_names_on_other_ports_are_denied_port() {
    let rig = Rig::new().await;
    rig.names(&["svc.test", "a.svc.test", "b.c.svc.test"], &["127.0.0.1"]);
    let (raw, http) = (rig.raw.port(), rig.http.port());
    let all: &[&str] = &["svc.test", "a.svc.test", "b.c.svc.test"];
    for (allow, names) in [
        (toml_list(&["svc.test:443"]), &all[..1]),
        (toml_list(&["svc.test:443,8443", "*.svc.test:443"]), all),
        (toml_list(&[".svc.test:443"]), all),
    ] {
        let policy = format!("[policy]\nallow = {allow}\n{LOOPBACK}");
        let proxies = rig.proxies(&policy).await;
        expect_all(&proxies, names, &denied3("denied_port"), &allow).await;
        assert_eq!(
            rig.proxied().await,
            (0, 0),
            "{allow}: an upstream was reached"
        );
    }
    // With the ports listed, the same requests go through.
    let allow = format!("[\"svc.test:443,{raw},{http}\", \"*.svc.test:{raw},{http}\"]");
    let proxies = rig
        .proxies(&format!("[policy]\nallow = {allow}\n{LOOPBACK}"))
        .await;
    expect_all(&proxies, all, &rig.through3(), &allow).await;
    // A port list allows exactly its ports: the raw port only, so forwarding is denied_port.
    let allow = format!("[\"svc.test:{raw}\"]");
    let proxies = rig
        .proxies(&format!("[policy]\nallow = {allow}\n{LOOPBACK}"))
        .await;
    assert_eq!(
        proxies.all("svc.test").await,
        [
            rig.raw.through(),
            rig.raw.through(),
            forbidden("denied_port")
        ],
        "{allow}"
    );
}

/// A port on a deny pattern denies only that port.
#[tokio::test]
async fn a_deny_pattern_with_a_port_denies_only_that_port() {
    let rig = Rig::new().await;
    rig.names(&["svc.test"], &["127.0.0.1"]);
    let (raw, http) = (rig.raw.port(), rig.http.port());
    let policy = format!("[policy]\ndeny = [\"svc.test:{raw}\"]\n{LOOPBACK}");
    let proxies = rig.proxies(&policy).await;
    let [sni, connect, get] = proxies.all("svc.test").await;
    assert_eq!(sni, crate::Outcome::Alert(crate::UNRECOGNIZED_NAME), "SNI");
    assert!(
        matches!(&connect, Outcome::Refused(403, Some(r)) if r == "denied_name" || r == "denied_port"),
        "CONNECT: {connect:?}"
    );
    assert_eq!(get, rig.http.through(), "GET to {http}");
    assert_eq!(rig.proxied().await, (0, 1));
}

/// The refusal does not depend on how the request is framed: origin form, bytes pipelined
/// after a CONNECT head, a `Host` header naming an allowed name while the URI names the
/// denied one.
#[tokio::test]
async fn a_denied_name_is_refused_in_every_request_form() {
    let rig = Rig::new().await;
    rig.names(&["bad.test", "good.test"], &["127.0.0.1"]);
    let policy = format!("[policy]\ndeny = [\"bad.test\"]\n{LOOPBACK}");
    let proxies = rig.proxies(&policy).await;
    let at = proxies.http.addr();
    let (raw, http) = (rig.raw.port(), rig.http.port());

    let origin = format!("GET /x HTTP/1.1\r\nHost: bad.test:{http}\r\n\r\n");
    assert_eq!(
        http_try(at, origin.as_bytes()).await,
        forbidden("denied_name"),
        "origin form"
    );
    let pipelined = [
        connect_request(&format!("bad.test:{raw}")),
        crate::support::hello::CURL.to_vec(),
    ]
    .concat();
    assert_eq!(
        http_try(at, &pipelined).await,
        forbidden("denied_name"),
        "CONNECT with a ClientHello in the same write"
    );
    let mismatch =
        format!("GET http://bad.test:{http}/ HTTP/1.1\r\nHost: good.test:{http}\r\n\r\n");
    let got = http_try(at, mismatch.as_bytes()).await;
    assert!(
        matches!(got, Outcome::Refused(400..=499, _)),
        "URI bad.test, Host good.test: {got:?}"
    );
    let mismatch = format!("CONNECT bad.test:{raw} HTTP/1.1\r\nHost: good.test:{raw}\r\n\r\n");
    let got = http_try(at, mismatch.as_bytes()).await;
    assert!(
        matches!(got, Outcome::Refused(400..=499, _)),
        "CONNECT bad.test, Host good.test: {got:?}"
    );
    assert_eq!(rig.proxied().await, (0, 0), "an upstream was reached");
}

/// Every request on a kept-alive client connection is checked, not just the first: after
/// an allowed request, one to a denied name is refused and the connection closed.
#[tokio::test]
async fn each_request_on_a_kept_alive_connection_is_checked() {
    let rig = Rig::new().await;
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    rig.names(&["bad.test", "good.test"], &["127.0.0.1"]);
    let policy = format!("[policy]\ndeny = [\"bad.test\"]\n{LOOPBACK}");
    let proxies = Proxies::start(&rig.dns, &policy, (rig.raw.port(), port), "", "").await;

    let stream = TcpStream::connect(proxies.http.addr()).await.unwrap();
    let mut wire = Wire::new(stream);
    let mut exchange = async |request: Vec<u8>| -> (String, Vec<u8>) {
        wire.stream.write_all(&request).await.unwrap();
        let head = timeout(WAIT, wire.read_head())
            .await
            .expect("no response")
            .expect("cut mid-head")
            .expect("closed without a response");
        let head = String::from_utf8(head).unwrap();
        let length: usize = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.trim().parse().unwrap());
        let body = timeout(WAIT, wire.read_exact(length))
            .await
            .unwrap()
            .unwrap();
        (head, body)
    };
    let (head, _) = exchange(get_request(&format!("good.test:{port}"))).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let (head, _) = exchange(get_request(&format!("bad.test:{port}"))).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nx-egress-error: denied_name\r\n"),
        "{head}"
    );
    let rest = timeout(WAIT, wire.read_to_end())
        .await
        .expect("not closed after the refusal");
    assert!(rest.is_empty(), "{}", crate::escaped(&rest));

    // A later request shows everything the upstream ever received.
    assert_eq!(
        http_try(
            proxies.http.addr(),
            &get_request(&format!("good.test:{port}"))
        )
        .await,
        Outcome::Through(echo_line("GET", "/", &format!("good.test:{port}"), 0))
    );
    let heads: Vec<String> = upstream.heads().into_iter().flatten().collect();
    let want = format!("GET / HTTP/1.1\r\nHost: good.test:{port}\r\n\r\n");
    assert_eq!(heads, vec![want.clone(), want]);
}
