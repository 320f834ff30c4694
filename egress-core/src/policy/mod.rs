//! The policy engine: one set of rules for every listener, deciding each target by name and
//! port, then each resolved address before it is dialed. Pure logic, no I/O: a [`Policy`] is
//! built from plain config values and answers a [`Decision`] with a [`Reason`].
//!
//! ```
//! use egress_core::policy::{Policy, PolicyConfig, Reason};
//! use egress_core::target::Host;
//!
//! let policy = Policy::new(&PolicyConfig {
//!     allow: vec!["*.example.com:443".into(), ".github.com".into()],
//!     deny: vec!["internal.example.com".into()],
//!     ..PolicyConfig::default()
//! }).unwrap();
//! let host = |s: &str| Host::from_ascii(s.as_bytes()).unwrap();
//! assert!(policy.check_target(&host("a.b.example.com"), 443).allowed);
//! assert_eq!(policy.check_target(&host("a.example.com"), 22).reason, Reason::DeniedPort);
//! assert_eq!(policy.check_target(&host("example.com"), 443).reason, Reason::DeniedName);
//! assert_eq!(policy.check_target(&host("internal.example.com"), 443).reason, Reason::DeniedName);
//! assert!(policy.check_target(&host("api.github.com"), 22).allowed);
//! assert_eq!(policy.check_addr("169.254.169.254".parse().unwrap()).reason, Reason::DeniedIp);
//! ```

mod address;
mod domain;

use std::fmt;
use std::net::IpAddr;

use address::{AddressRules, parse_cidr};
use domain::{DomainSet, Form, Match, parse_pattern};

use crate::target::Host;

/// Whether denials are enforced or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Denied connections are refused.
    #[default]
    Enforce,
    /// Every check runs and denials are logged, but connections go through: for rolling a
    /// policy out before enforcing it.
    Report,
}

/// The rules, as plain values (what the `[policy]` config table holds).
#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    /// Patterns that may be reached: `example.com`, `*.example.com` (below it, any depth),
    /// `.example.com` (it and below), `*`, each optionally with `:port,port`. Empty: every
    /// public name.
    pub allow: Vec<String>,
    /// Patterns that may not be reached; deny wins over allow.
    pub deny: Vec<String>,
    /// Ranges re-opened inside the default deny list (`127.0.0.0/8` for tests on loopback).
    pub allow_cidrs: Vec<String>,
    /// Ranges denied on top of the default list.
    pub deny_cidrs: Vec<String>,
    /// Accept wildcards over a public suffix (`*.com`), refused by default as a likely mistake.
    pub allow_public_suffix_wildcards: bool,
    /// Enforce or only report.
    pub mode: Mode,
}

/// Why a policy could not be built: the entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The list the entry is in (`allow`, `deny`, `allow_cidrs`, `deny_cidrs`).
    pub list: &'static str,
    /// The entry as written.
    pub entry: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} entry `{}`: {}", self.list, self.entry, self.problem)
    }
}

impl std::error::Error for PolicyError {}

/// Why a target or address was allowed or denied; also the reason token in logs and in the
/// HTTP error header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Allowed.
    Allowed,
    /// The name is not allowed (or is denied).
    DeniedName,
    /// The name is allowed, but not on this port.
    DeniedPort,
    /// The address is in a denied range.
    DeniedIp,
    /// The name resolved only to denied addresses.
    NoAllowedAddress,
    /// The host is not a valid name or address.
    InvalidHost,
}

impl Reason {
    /// The reason token: `allowed`, `denied_name`, `denied_port`, `denied_ip`,
    /// `no_allowed_address`, `invalid_host`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::DeniedName => "denied_name",
            Self::DeniedPort => "denied_port",
            Self::DeniedIp => "denied_ip",
            Self::NoAllowedAddress => "no_allowed_address",
            Self::InvalidHost => "invalid_host",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the connection may proceed (under [`Mode::Enforce`]).
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    const ALLOWED: Self = Self {
        allowed: true,
        reason: Reason::Allowed,
    };

    fn deny(reason: Reason) -> Self {
        Self {
            allowed: false,
            reason,
        }
    }
}

/// Compiled rules: name patterns in tries, address ranges in a table.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: DomainSet,
    deny: DomainSet,
    addresses: AddressRules,
    mode: Mode,
}

impl Policy {
    /// Compiles `config`.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the first bad entry: a malformed pattern or port, a wildcard
    /// over a public suffix without `allow_public_suffix_wildcards`, or a bad CIDR.
    pub fn new(config: &PolicyConfig) -> Result<Self, PolicyError> {
        let names = |list: &'static str, entries: &[String]| -> Result<DomainSet, PolicyError> {
            let mut set = DomainSet::default();
            for entry in entries {
                let error = |problem: String| PolicyError {
                    list,
                    entry: entry.clone(),
                    problem,
                };
                let pattern = parse_pattern(entry).map_err(error)?;
                let wildcard = matches!(pattern.form, Form::Below | Form::AndBelow);
                if wildcard
                    && !config.allow_public_suffix_wildcards
                    && is_public_suffix(&pattern.base)
                {
                    return Err(error(format!(
                        "`{}` is a public suffix: this wildcard spans unrelated owners \
                         (set allow_public_suffix_wildcards = true if you mean it)",
                        pattern.base
                    )));
                }
                set.insert(&pattern);
            }
            Ok(set)
        };
        let cidrs = |list: &'static str, entries: &[String]| {
            entries
                .iter()
                .map(|entry| {
                    parse_cidr(entry).map_err(|problem| PolicyError {
                        list,
                        entry: entry.clone(),
                        problem,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            allow: names("allow", &config.allow)?,
            deny: names("deny", &config.deny)?,
            addresses: AddressRules::new(
                &cidrs("allow_cidrs", &config.allow_cidrs)?,
                &cidrs("deny_cidrs", &config.deny_cidrs)?,
            ),
            mode: config.mode,
        })
    }

    /// Whether denials are enforced or only reported.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Decides a target by its name and port. An IP-literal host is checked as an address
    /// (canonicalised: `::ffff:127.0.0.1` is 127.0.0.1), and only `*` patterns name it.
    pub fn check_target(&self, host: &Host, port: u16) -> Decision {
        let name = match host {
            Host::Name(name) => Some(name),
            Host::Ip(ip) => {
                let decision = self.check_addr(*ip);
                if !decision.allowed {
                    return decision;
                }
                None
            }
        };
        if self.deny.lookup(name, port) == Match::Covered {
            return Decision::deny(Reason::DeniedName);
        }
        if self.allow.is_empty() {
            return Decision::ALLOWED;
        }
        match self.allow.lookup(name, port) {
            Match::Covered => Decision::ALLOWED,
            Match::NameOnly => Decision::deny(Reason::DeniedPort),
            Match::None => Decision::deny(Reason::DeniedName),
        }
    }

    /// Decides an address, before it is dialed.
    pub fn check_addr(&self, ip: IpAddr) -> Decision {
        if self.addresses.allows(ip) {
            Decision::ALLOWED
        } else {
            Decision::deny(Reason::DeniedIp)
        }
    }
}

/// Whether `name` is itself a known public suffix (`com`, `co.uk`, `github.io`).
fn is_public_suffix(name: &str) -> bool {
    psl::suffix(name.as_bytes())
        .is_some_and(|s| s.is_known() && s.trim().as_bytes() == name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> Result<Policy, PolicyError> {
        Policy::new(&PolicyConfig {
            allow: allow.iter().map(ToString::to_string).collect(),
            deny: deny.iter().map(ToString::to_string).collect(),
            ..PolicyConfig::default()
        })
    }

    #[test]
    fn public_suffix_wildcards_need_an_opt_in() {
        for bad in ["*.com", ".com", "*.co.uk", "*.github.io"] {
            let e = policy(&[bad], &[]).unwrap_err();
            assert!(e.to_string().contains("public suffix"), "{bad}: {e}");
        }
        assert!(policy(&["*.example.com", "*.svc.cluster.local", "com"], &[]).is_ok());
        let opted = PolicyConfig {
            allow: vec!["*.com".into()],
            allow_public_suffix_wildcards: true,
            ..PolicyConfig::default()
        };
        assert!(Policy::new(&opted).is_ok());
    }

    #[test]
    fn deny_wins_and_empty_allow_allows_public_names() {
        let p = policy(&[], &["*.bad.example"]).unwrap();
        let host = |s: &str| Host::from_ascii(s.as_bytes()).unwrap();
        assert!(p.check_target(&host("good.example"), 443).allowed);
        assert_eq!(
            p.check_target(&host("x.bad.example"), 443).reason,
            Reason::DeniedName
        );
        let p = policy(&[".example"], &["secret.example"]).unwrap();
        assert!(!p.check_target(&host("secret.example"), 443).allowed);
        assert!(p.check_target(&host("open.example"), 443).allowed);
    }

    #[test]
    fn ip_literals_are_checked_as_addresses() {
        let p = policy(&[], &[]).unwrap();
        let ip = |s: &str| Host::Ip(s.parse().unwrap());
        assert_eq!(
            p.check_target(&ip("::ffff:127.0.0.1"), 443).reason,
            Reason::DeniedIp
        );
        assert!(p.check_target(&ip("8.8.8.8"), 443).allowed);
        let named_only = policy(&["api.example"], &[]).unwrap();
        assert_eq!(
            named_only.check_target(&ip("8.8.8.8"), 443).reason,
            Reason::DeniedName
        );
    }
}
