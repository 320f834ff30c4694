//! Why no upstream connection could be made.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::resolve;

/// Why dialing a target failed. When several addresses were tried, the last failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name could not be resolved.
    Resolve(resolve::Error),
    /// There was no address to try.
    NoAddresses,
    /// Every address the name resolved to is denied by the policy.
    NoAllowedAddress {
        /// The denied addresses.
        denied: Vec<IpAddr>,
    },
    /// The connection was refused, reset or unreachable.
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The connect attempt took longer than the connect timeout.
    Timeout {
        /// The address tried.
        addr: SocketAddr,
        /// The timeout.
        after: Duration,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolve(e) => write!(f, "resolving upstream: {e}"),
            Self::NoAddresses => f.write_str("no upstream address to connect to"),
            Self::NoAllowedAddress { denied } => {
                f.write_str("the policy denies every upstream address:")?;
                for ip in denied {
                    write!(f, " {ip}")?;
                }
                Ok(())
            }
            Self::Connect { addr, source } => write!(f, "connecting to upstream {addr}: {source}"),
            Self::Timeout { addr, after } => {
                write!(
                    f,
                    "connecting to upstream {addr}: timed out after {after:?}"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Resolve(e) => Some(e),
            Self::Connect { source, .. } => Some(source),
            Self::NoAddresses | Self::NoAllowedAddress { .. } | Self::Timeout { .. } => None,
        }
    }
}
