//! Report mode: every check runs, but the denied connections go through as if allowed.

use crate::addresses::{PATHS, SPLIT_POLICIES, Split};
use crate::support::hello;
use crate::{
    ACCESS_DENIED, Outcome, Rig, UNRECOGNIZED_NAME, addrs, connect_request, denied3, forbidden,
    get_request, http_try, sni_try,
};

/// Denied names, denied ports, names resolving only to denied addresses, IP literals, and
/// a denied `default_host`: refused under `enforce`, through to the upstream under
/// `report`, by the same config otherwise.
#[tokio::test]
async fn report_mode_lets_every_denial_through() {
    let rig = Rig::new().await;
    rig.names(
        &["bad.test", "other.test", "svc.test", "good.test"],
        &["127.0.0.1"],
    );
    // No allow_cidrs: 127.0.0.1 itself is denied.
    let named = |mode: &str| {
        format!(
            "[policy]\nallow = [\"good.test\", \"svc.test:443\", \"bad.test\"]\ndeny = [\"bad.test\"]\nmode = \"{mode}\"\n"
        )
    };
    let cases = [
        ("bad.test", "denied_name"),
        ("other.test", "denied_name"),
        ("svc.test", "denied_port"),
        ("good.test", "no_allowed_address"),
    ];
    let default_host = "default_host = \"bad.test\"";
    for mode in ["enforce", "report"] {
        let proxies = rig.proxies_with(&named(mode), default_host, "").await;
        for (name, reason) in cases {
            let want = if mode == "report" {
                rig.through3()
            } else {
                denied3(reason)
            };
            assert_eq!(proxies.all(name).await, want, "{mode}: {name}");
        }
        let want = if mode == "report" {
            rig.raw.through()
        } else {
            Outcome::Alert(UNRECOGNIZED_NAME)
        };
        let got = sni_try(proxies.sni.addr(), hello::NO_SNI).await;
        assert_eq!(got, want, "{mode}: no SNI, denied default_host");

        // IP literals, with an empty allow list (names do not enter into it).
        let literal = rig.proxies(&format!("[policy]\nmode = \"{mode}\"\n")).await;
        let at = literal.http.addr();
        let (raw, http) = (rig.raw.port(), rig.http.port());
        for host in ["127.0.0.1", "[::ffff:127.0.0.1]"] {
            let connect = http_try(at, &connect_request(&format!("{host}:{raw}"))).await;
            let get = http_try(at, &get_request(&format!("{host}:{http}"))).await;
            if mode == "report" {
                assert_eq!(connect, rig.raw.through(), "{mode}: CONNECT {host}");
                assert_eq!(get, rig.http.through(), "{mode}: GET {host}");
            } else {
                assert_eq!(connect, forbidden("denied_ip"), "{mode}: CONNECT {host}");
                assert_eq!(get, forbidden("denied_ip"), "{mode}: GET {host}");
            }
        }
        let want = if mode == "report" { (11, 6) } else { (0, 0) };
        assert_eq!(rig.proxied().await, want, "{mode}");
    }
}

/// Alternating and mixed answers in report mode: every connection goes through, and the
/// denied address is dialed too.
#[tokio::test]
async fn report_mode_dials_denied_addresses() {
    let split = Split::new().await;
    split
        .dns
        .set("mixed.test", addrs(&["127.0.0.1", "127.0.0.2"]));
    for policy in SPLIT_POLICIES {
        let policy = format!("{policy}mode = \"report\"\n");
        let proxies = split.proxies(&policy).await;
        for (path, label) in PATHS.iter().enumerate() {
            let name = format!("alt-{label}.test");
            split
                .dns
                .set_sequence(&name, vec![addrs(&["127.0.0.1"]), addrs(&["127.0.0.2"])]);
            let bad = if path == 2 {
                split.bad_http.through()
            } else {
                split.bad_raw.through()
            };
            let mut reached_bad = 0;
            for round in 0..6 {
                let (got, good) = split.path(&proxies, path, &name).await;
                assert!(
                    got == good || got == bad,
                    "{policy:?} {label} round {round}: {got:?}"
                );
                assert_ne!(got, Outcome::Alert(ACCESS_DENIED));
                reached_bad += usize::from(got == bad);
            }
            assert!(reached_bad > 0, "{policy:?} {label}: never went through");
            let (got, good) = split.path(&proxies, path, "mixed.test").await;
            assert!(
                got == good || got == bad,
                "{policy:?} {label} mixed: {got:?}"
            );
        }
    }
    assert!(split.bad_raw.proxied().await > 0);
    assert!(split.bad_http.proxied().await > 0);
}
