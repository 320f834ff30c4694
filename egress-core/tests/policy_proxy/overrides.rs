//! `[sni.policy]` and `[http.policy]`: a listener's own policy replaces the global one
//! entirely (no merging of lists, ranges or mode), and listeners in one config differ.

use std::net::SocketAddr;

use crate::support::proxy::Proxy;
use crate::{
    Outcome, Rig, connect_request, denied3, get_request, hello_for, http_block, http_try, resolver,
    sni_block, sni_try,
};

/// One SNI and one HTTP listener sharing a policy: their addresses.
struct Pair {
    sni: SocketAddr,
    http: SocketAddr,
}

/// The listener of `proxy` on `ip`.
fn on(proxy: &Proxy, ip: &str) -> SocketAddr {
    let ip: std::net::IpAddr = ip.parse().unwrap();
    *proxy
        .addrs
        .iter()
        .find(|a| a.ip() == ip)
        .unwrap_or_else(|| panic!("no listener on {ip}: {:?}", proxy.addrs))
}

/// Starts one proxy with the global `policy` and, for each of `listeners`, an SNI listener
/// on `127.0.0.{n}` and an HTTP listener on `127.0.0.{n + 10}` with `own` as their own
/// policy table body (`None`: no table, the global policy applies).
async fn start(rig: &Rig, policy: &str, listeners: &[(u8, Option<&str>)]) -> (Proxy, Vec<Pair>) {
    let mut text = format!("{}{policy}\n", resolver(&rig.dns));
    for (n, own) in listeners {
        let table =
            |kind: &str| own.map_or(String::new(), |body| format!("[{kind}.policy]\n{body}"));
        text.push_str(&sni_block(
            &format!("127.0.0.{n}:0"),
            &rig.raw.port().to_string(),
            &table("sni"),
        ));
        text.push_str(&http_block(
            &format!("127.0.0.{}:0", n + 10),
            &[rig.raw.port()],
            &table("http"),
        ));
    }
    let proxy = Proxy::start(&text).await;
    let pairs = listeners
        .iter()
        .map(|(n, _)| Pair {
            sni: on(&proxy, &format!("127.0.0.{n}")),
            http: on(&proxy, &format!("127.0.0.{}", n + 10)),
        })
        .collect();
    (proxy, pairs)
}

/// SNI, CONNECT and forward of `name` through `pair`.
async fn all(rig: &Rig, pair: &Pair, name: &str) -> [Outcome; 3] {
    [
        sni_try(pair.sni, &hello_for(name)).await,
        http_try(
            pair.http,
            &connect_request(&format!("{name}:{}", rig.raw.port())),
        )
        .await,
        http_try(
            pair.http,
            &get_request(&format!("{name}:{}", rig.http.port())),
        )
        .await,
    ]
}

#[tokio::test]
async fn a_listener_policy_replaces_the_global_one() {
    let rig = Rig::new().await;
    rig.names(
        &["global.test", "local.test", "shared.test"],
        &["127.0.0.1"],
    );
    let global = "[policy]\nallow = [\"global.test\", \"shared.test\"]\ndeny = [\"shared.test\"]\nallow_cidrs = [\"127.0.0.0/8\"]\n";
    let (_proxy, pairs) = start(
        &rig,
        global,
        &[
            // Its own allow list and ranges; the global deny list does not apply.
            (
                3,
                Some(
                    "allow = [\"local.test\", \"shared.test\"]\nallow_cidrs = [\"127.0.0.0/8\"]\n",
                ),
            ),
            // The global policy.
            (4, None),
            // Its own allow list without ranges: the global allow_cidrs do not apply.
            (5, Some("allow = [\"local.test\"]\n")),
            // Global allows, this one denies.
            (
                6,
                Some("deny = [\"global.test\"]\nallow_cidrs = [\"127.0.0.0/8\"]\n"),
            ),
        ],
    )
    .await;
    let through = rig.through3();
    let table: [(usize, &str, [Outcome; 3]); 11] = [
        (0, "local.test", through.clone()),
        (0, "shared.test", through.clone()),
        (0, "global.test", denied3("denied_name")),
        (1, "local.test", denied3("denied_name")),
        (1, "shared.test", denied3("denied_name")),
        (1, "global.test", through.clone()),
        (2, "local.test", denied3("no_allowed_address")),
        (2, "global.test", denied3("denied_name")),
        (3, "global.test", denied3("denied_name")),
        (3, "local.test", through.clone()),
        (3, "shared.test", through.clone()),
    ];
    let mut failures = Vec::new();
    for (i, name, want) in &table {
        let got = all(&rig, &pairs[*i], name).await;
        if &got != want {
            failures.push(format!("listener #{i} {name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(rig.proxied().await, (10, 5));
}

/// The global `mode = "report"` does not carry into a listener's own policy (enforce by
/// default), and a listener's own `report` does not leak out to the others.
#[tokio::test]
async fn the_mode_is_not_merged_either() {
    let rig = Rig::new().await;
    rig.names(&["x.test"], &["127.0.0.1"]);
    let global =
        "[policy]\ndeny = [\"x.test\"]\nallow_cidrs = [\"127.0.0.0/8\"]\nmode = \"report\"\n";
    let (_proxy, pairs) = start(
        &rig,
        global,
        &[
            (3, None),
            (
                4,
                Some("deny = [\"x.test\"]\nallow_cidrs = [\"127.0.0.0/8\"]\n"),
            ),
        ],
    )
    .await;
    assert_eq!(
        all(&rig, &pairs[0], "x.test").await,
        rig.through3(),
        "global report"
    );
    assert_eq!(
        all(&rig, &pairs[1], "x.test").await,
        denied3("denied_name"),
        "own policy, enforce"
    );

    let global = "[policy]\ndeny = [\"x.test\"]\nallow_cidrs = [\"127.0.0.0/8\"]\n";
    let (_proxy, pairs) = start(
        &rig,
        global,
        &[
            (
                5,
                Some("deny = [\"x.test\"]\nallow_cidrs = [\"127.0.0.0/8\"]\nmode = \"report\"\n"),
            ),
            (6, None),
        ],
    )
    .await;
    assert_eq!(
        all(&rig, &pairs[0], "x.test").await,
        rig.through3(),
        "own report"
    );
    assert_eq!(
        all(&rig, &pairs[1], "x.test").await,
        denied3("denied_name"),
        "global enforce"
    );
    assert_eq!(rig.proxied().await, (4, 2));
}
