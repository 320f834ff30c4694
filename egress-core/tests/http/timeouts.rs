//! The listener's clocks: a slow request head gets 408, and an idle kept-alive client is
//! closed.

use crate::support::http_upstream::{HttpUpstream, Mode};
use crate::support::proxy::Proxy;
use crate::{Client, WWW, config, get, refused};

/// A head that stops arriving (slowloris) is answered 408 once the header timeout passes,
/// counted from accept.
#[tokio::test]
async fn a_stalled_head_gets_408() {
    let proxy = Proxy::start(&config(&[443], "header_timeout = \"300ms\"")).await;
    let partial = format!("GET /x HTTP/1.1\r\nHost: {WWW}\r\nX-Slow: 1");
    let response = refused(proxy.addr(), partial.as_bytes(), 408, "stalled head").await;
    assert_eq!(response.header("x-egress-error"), Some("header_timeout"));
}

/// After a response, a client that sends nothing more is closed after the keep-alive
/// timeout, without any bytes.
#[tokio::test]
async fn an_idle_keepalive_client_is_closed() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let proxy = Proxy::start(&config(&[443], "keepalive_timeout = \"300ms\"")).await;
    let mut client = Client::connect(proxy.addr()).await;
    let response = client.exchange(&get(WWW, upstream.port(), "/one")).await;
    assert_eq!(response.status, 200);
    assert!(client.read_to_close().await.is_empty());
}
