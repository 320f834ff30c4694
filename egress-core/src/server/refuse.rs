//! Refusing a connection: the policy check at the door ([`admit`]), and saying why before
//! closing (an HTTP error response, a TLS alert) without the close destroying what was said.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Span;

use crate::policy::{Mode, Policy, Reason};
use crate::target::Target;

/// Longest time and most bytes read and discarded from a client after a refusal.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// TLS alert descriptions (RFC 8446 §6.2) sent to refused SNI clients.
pub(super) const ALERT_UNRECOGNIZED_NAME: u8 = 112;
pub(super) const ALERT_ACCESS_DENIED: u8 = 49;

/// A fatal TLS alert record with `description`, readable by any TLS client before its
/// handshake.
pub(super) const fn tls_alert(description: u8) -> [u8; 7] {
    // Content type alert, legacy record version 1.2, length 2, level fatal.
    [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]
}

/// A connection the policy refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyDenied {
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for PolicyDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denied by policy: {}", self.reason)
    }
}

impl std::error::Error for PolicyDenied {}

/// Checks `target` against `policy`. A denial is recorded on the connection's span (`policy`,
/// or `would_deny` under [`Mode::Report`], which then lets the target through).
pub(super) fn admit(policy: &Policy, target: &Target) -> Result<(), PolicyDenied> {
    let decision = policy.check_target(&target.host, target.port);
    if decision.allowed {
        return Ok(());
    }
    let reason = decision.reason.as_str();
    if policy.mode() == Mode::Report {
        Span::current().record("would_deny", reason);
        tracing::warn!(policy = reason, %target, "report mode: letting through a target the policy would deny");
        return Ok(());
    }
    Span::current().record("policy", reason);
    Err(PolicyDenied {
        reason: decision.reason,
    })
}

/// Writes `reply` (bounded by `write_timeout`), closes the write side, then lingers.
pub(super) async fn reply_and_close(stream: &mut TcpStream, reply: &[u8], write_timeout: Duration) {
    let _ = tokio::time::timeout(write_timeout, stream.write_all(reply)).await;
    let _ = stream.shutdown().await;
    linger(stream).await;
}

/// Reads and discards what the client still sends, for a moment: closing with unread bytes
/// would reset the connection, and a reset can destroy the reply before the client reads it
/// (nginx's `lingering_close`).
async fn linger(stream: &mut TcpStream) {
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => return,
        }
    }
}
