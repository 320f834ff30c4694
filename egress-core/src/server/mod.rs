//! Serving: accept loops with a connection limit and graceful shutdown ([`Server`]), and the
//! tower stack of each kind of listener ([`sni_stack`]). The stacks are assembled in one
//! short function each, so the whole path of a connection reads in one place.

mod body;
mod forward;
mod http;
mod listener;
mod refuse;
mod sni;

pub use forward::{Forward, Tunnel};
pub use http::{
    DEFAULT_CONNECT_PORTS, DEFAULT_HEADER_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT, HttpOptions,
    HttpProxy, OVERLOADED, http_stack,
};
pub use listener::{
    Accepted, ConnectionLimit, DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_TIMEOUT, Handoff,
    HandoffError, Server,
};
pub use refuse::PolicyDenied;
pub use sni::{Admit, RouteError, SniOptions, UpstreamPort, route, sni_stack};
