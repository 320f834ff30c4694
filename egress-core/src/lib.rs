//! egress-core: the pieces of an egress (forward) proxy, as small sans-IO parsers and tower
//! services that compose into listeners.
//!
//! ```text
//! accept ──> sniff ──────────> route ──────> resolve ──> dial ──────> relay
//! (server)   (tls: ClientHello) (server::sni) (resolve)   (dial:       (relay: prefix first,
//!                                                          timeout)     both ways, half-close)
//! ```
//!
//! Each arrow passes a plain value on: [`server::Accepted`], [`tls::Sniffed`],
//! [`server::Tunnel`] (a [`target::Target`] and the bytes already read), [`dial::Upstream`].
//! Any stage can be replaced by your own `tower::Service` or [`resolve::Resolve`].
//!
//! An SNI passthrough proxy in a few lines:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use egress_core::resolve::{HickoryResolver, ResolverConfig};
//! use egress_core::server::{Server, SniOptions, sni_stack};
//!
//! let resolver = Arc::new(HickoryResolver::new(ResolverConfig::default())?);
//! let mut server = Server::new();
//! server.serve(
//!     vec![tokio::net::TcpListener::bind("127.0.0.1:8443").await?],
//!     sni_stack(&SniOptions::default(), resolver),
//!     10_000,
//! );
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod config;
pub mod dial;
pub mod http;
pub mod policy;
pub mod relay;
pub mod resolve;
pub mod server;
pub mod target;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

/// The error type at the seam between stages: each stage's typed error, boxed.
pub use tower::BoxError;

/// The boxed future the stages return.
pub(crate) type BoxFuture<T, E = BoxError> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;
