//! Shared loopback fixtures for the integration tests: DNS server, TLS certificates, upstreams.

pub mod dns;
