//! The `methods` allowlist: a method not listed gets 403 and reaches nobody; listed ones,
//! CONNECT included, are served.

use crate::support::http_upstream::{HttpUpstream, Mode};
use crate::support::proxy::Proxy;
use crate::{Client, WWW, assert_untouched, config, get, refused};

#[tokio::test]
async fn unlisted_methods_get_403_and_reach_nobody() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let proxy = Proxy::start(&config(&[443], "methods = [\"GET\", \"CONNECT\"]")).await;
    let post = format!(
        "POST http://{WWW}:{p}/x HTTP/1.1\r\nHost: {WWW}:{p}\r\nContent-Length: 2\r\n\r\nhi",
        p = upstream.port()
    );
    let response = refused(proxy.addr(), post.as_bytes(), 403, "POST").await;
    assert_eq!(
        response.header("x-egress-error"),
        Some("method_not_allowed")
    );
    let lower = format!(
        "get http://{WWW}:{p}/x HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n",
        p = upstream.port()
    );
    refused(proxy.addr(), lower.as_bytes(), 403, "lowercase get").await;
    assert_untouched(proxy.addr(), &upstream, 0, "after refused methods").await;

    let mut client = Client::connect(proxy.addr()).await;
    let response = client.exchange(&get(WWW, upstream.port(), "/ok")).await;
    assert_eq!(response.status, 200);
}

/// An HTTP/1.0 client never sees an interim `100 Continue` (RFC 9110 §15.2): its first
/// response is the final one.
#[tokio::test]
async fn interim_responses_are_not_sent_to_http_1_0_clients() {
    let upstream = HttpUpstream::start(Mode::Continue).await;
    let proxy = Proxy::start(&config(&[443], "")).await;
    let request = format!(
        "POST http://{WWW}:{p}/up HTTP/1.0\r\nHost: {WWW}:{p}\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        p = upstream.port()
    );
    let mut client = Client::connect(proxy.addr()).await;
    let response = client.exchange(request.as_bytes()).await;
    assert_eq!(response.status, 200, "{response:?}");
}
