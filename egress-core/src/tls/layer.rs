//! The [`tower::Layer`] that puts [`Sniff`] in a stack.

use std::time::Duration;

use tower::Layer;

use super::{DEFAULT_CLIENT_HELLO_TIMEOUT, DEFAULT_MAX_CLIENT_HELLO, Sniff};

/// Builds [`Sniff`] services.
#[derive(Debug, Clone, Copy)]
pub struct SniffLayer {
    max_bytes: usize,
    timeout: Duration,
}

impl SniffLayer {
    /// A layer reading at most `max_bytes` of hello within `timeout` of accept.
    pub fn new(max_bytes: usize, timeout: Duration) -> Self {
        Self { max_bytes, timeout }
    }
}

impl Default for SniffLayer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CLIENT_HELLO, DEFAULT_CLIENT_HELLO_TIMEOUT)
    }
}

impl<S> Layer<S> for SniffLayer {
    type Service = Sniff<S>;

    fn layer(&self, inner: S) -> Sniff<S> {
        Sniff::new(inner, self.max_bytes, self.timeout)
    }
}
