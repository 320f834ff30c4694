//! `keep_alive()`, `expects_continue()` and `is_websocket_upgrade()`.

use crate::{good, show};

/// (input, keep_alive, expects_continue, is_websocket_upgrade)
const CASES: &[(&[u8], bool, bool, bool)] = &[
    // HTTP/1.1: persistent unless a Connection token says close.
    (b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: Close\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nconnection: CLOSE\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, close\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: x-a,close,x-b\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: x-a\r\nConnection: close\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: ,, close ,\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection:\tclose\t\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: \"close\"\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: closed\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: x-close\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nX-Connection: close\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nProxy-Connection: close\r\n\r\n", true, false, false),
    // HTTP/1.0: persistent only with a keep-alive token.
    (b"GET / HTTP/1.0\r\nHost: a.example\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nConnection: Keep-Alive\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nConnection: x-a, keep-alive\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nConnection: x-a\r\nConnection: keep-alive\r\n\r\n", true, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alived\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nConnection: close\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nKeep-Alive: timeout=5\r\n\r\n", false, false, false),
    (b"GET / HTTP/1.0\r\nHost: a.example\r\nProxy-Connection: keep-alive\r\n\r\n", false, false, false),
    (b"GET http://a.example/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, false, false),
    // Expect: 100-continue, case-insensitive.
    (b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", true, true, false),
    (b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nexpect: 100-Continue\r\n\r\n", true, true, false),
    (b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nEXPECT: 100-CONTINUE\r\n\r\n", true, true, false),
    (b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 200-ok\r\n\r\n", true, false, false),
    (b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect:  100-continue \t\r\n\r\n", true, true, false),
    (b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continued\r\n\r\n", true, false, false),
    (b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nX-Expect: 100-continue\r\n\r\n", true, false, false),
    // WebSocket: GET + Upgrade: websocket + a Connection token upgrade.
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true, false, true),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n", true, false, true),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUPGRADE: WEBSOCKET\r\nconnection: upgrade\r\n\r\n", true, false, true),
    (b"GET http://a.example/chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", true, false, true),
    (b"POST /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true, false, false),
    (b"get /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocketx\r\nConnection: Upgrade\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: upgraded\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nProxy-Connection: Upgrade\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nX-Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true, false, false),
    (b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: close, Upgrade\r\n\r\n", false, false, true),
];

#[test]
fn flags() {
    for (input, keep_alive, expect, websocket) in CASES {
        let h = good(input);
        let ctx = show(input);
        assert_eq!(h.keep_alive(), *keep_alive, "{ctx}: keep_alive");
        assert_eq!(h.expects_continue(), *expect, "{ctx}: expects_continue");
        assert_eq!(
            h.is_websocket_upgrade(),
            *websocket,
            "{ctx}: is_websocket_upgrade"
        );
    }
}

#[test]
fn connect_is_never_a_websocket_upgrade() {
    let h = good(
        b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    assert!(!h.is_websocket_upgrade());
}
