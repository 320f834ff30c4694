//! An SNI passthrough proxy built from egress-core in a few lines: listens on
//! 127.0.0.1:8443 and forwards each TLS connection to port 443 of the name in its SNI.
//!
//! Run it with `cargo run -p egress-examples --example sni_proxy`, then
//! `curl --connect-to ::127.0.0.1:8443 https://example.com/`.

use std::sync::Arc;

use egress_core::resolve::{HickoryResolver, ResolverConfig};
use egress_core::server::{Server, SniOptions, sni_stack};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();

    // System resolver (resolv.conf), A then AAAA, cached.
    let resolver = Arc::new(HickoryResolver::new(ResolverConfig::default())?);
    // Sniff the ClientHello, route on its server name to port 443, dial, relay.
    let stack = sni_stack(&SniOptions::default(), resolver);

    let mut server = Server::new();
    server.serve(
        vec![tokio::net::TcpListener::bind("127.0.0.1:8443").await?],
        stack,
        1_000,
    );
    // Runs until Ctrl-C, then lets open tunnels finish for up to 30 s.
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
