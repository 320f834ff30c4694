//! Config errors that name the line.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;

use crate::policy::PolicyError;
use crate::resolve;

/// One mistake in a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    /// 1-based line, when the mistake has a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), with `line`.
    pub column: Option<usize>,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl Mistake {
    pub(super) fn at(text: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let place = span.map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        });
        Self {
            line: place.map(|p| p.0),
            column: place.map(|p| p.1),
            message: message.into(),
        }
    }
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A config file that cannot be used: every mistake found, each with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The mistakes, in file order (at least one).
    pub mistakes: Vec<Mistake>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, mistake) in self.mistakes.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{mistake}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Why a valid config could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The resolver could not be built (the system configuration is unreadable, say).
    Resolver(resolve::Error),
    /// A listen address could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A policy could not be built (the config was changed after it was checked).
    Policy(PolicyError),
}

impl From<PolicyError> for StartError {
    fn from(e: PolicyError) -> Self {
        Self::Policy(e)
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolver(e) => write!(f, "building the resolver: {e}"),
            Self::Bind { addr, source } => write!(f, "listening on {addr}: {source}"),
            Self::Policy(e) => write!(f, "building the policy: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Resolver(e) => Some(e),
            Self::Bind { source, .. } => Some(source),
            Self::Policy(e) => Some(e),
        }
    }
}
