//! Shared loopback fixtures for the integration tests: DNS server, TLS certificates,
//! upstreams, and a proxy started from a config.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures: each test binary uses a different part, through a private `mod support`, and a fixture that fails should fail its test"
)]

pub mod dns;
pub mod hello;
pub mod http_upstream;
pub mod proxy;
pub mod tls;
