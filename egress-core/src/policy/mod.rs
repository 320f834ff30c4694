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
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};

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
    /// The entry's position in its list, from 0.
    pub index: usize,
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

/// Compiled rules: name patterns in tries, address ranges in a table, and the proxy's own
/// listening sockets.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: DomainSet,
    deny: DomainSet,
    addresses: AddressRules,
    own: Vec<SocketAddr>,
    mode: Mode,
}

/// The embedded default: every public name on every port, no special-purpose address.
static DEFAULT: LazyLock<Arc<Policy>> = LazyLock::new(|| {
    Arc::new(
        Policy::new(&PolicyConfig::default())
            .unwrap_or_else(|_| unreachable!("the empty config has no entry to reject")),
    )
});

impl Default for Policy {
    /// Every public name on every port; every special-purpose address range denied.
    fn default() -> Self {
        Self::clone(&DEFAULT)
    }
}

impl Policy {
    /// Compiles `config`.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the first bad entry ([`Policy::errors`] lists them all): a malformed pattern or port, a wildcard
    /// over a public suffix without `allow_public_suffix_wildcards`, or a bad CIDR.
    pub fn new(config: &PolicyConfig) -> Result<Self, PolicyError> {
        let (policy, mut errors) = Self::compile(config);
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Compiles what is valid of `config`, and lists every bad entry in list order.
    fn compile(config: &PolicyConfig) -> (Self, Vec<PolicyError>) {
        let mut errors = Vec::new();
        let mut names = |list: &'static str, entries: &[String]| {
            let mut set = DomainSet::default();
            for (index, entry) in entries.iter().enumerate() {
                let error = |problem: String| PolicyError {
                    list,
                    index,
                    entry: entry.clone(),
                    problem,
                };
                let pattern = match parse_pattern(entry) {
                    Ok(pattern) => pattern,
                    Err(problem) => {
                        errors.push(error(problem));
                        continue;
                    }
                };
                let wildcard = matches!(pattern.form, Form::Below | Form::AndBelow);
                if wildcard
                    && !config.allow_public_suffix_wildcards
                    && is_public_suffix(&pattern.base)
                {
                    errors.push(error(format!(
                        "`{}` is a public suffix: this wildcard spans unrelated owners \
                         (set allow_public_suffix_wildcards = true if you mean it)",
                        pattern.base
                    )));
                    continue;
                }
                set.insert(&pattern);
            }
            set
        };
        let allow = names("allow", &config.allow);
        let deny = names("deny", &config.deny);
        let mut cidrs = |list: &'static str, entries: &[String]| {
            let mut nets = Vec::with_capacity(entries.len());
            for (index, entry) in entries.iter().enumerate() {
                match parse_cidr(entry) {
                    Ok(net) => nets.push(net),
                    Err(problem) => errors.push(PolicyError {
                        list,
                        index,
                        entry: entry.clone(),
                        problem,
                    }),
                }
            }
            nets
        };
        let allow_cidrs = cidrs("allow_cidrs", &config.allow_cidrs);
        let deny_cidrs = cidrs("deny_cidrs", &config.deny_cidrs);
        let policy = Self {
            allow,
            deny,
            addresses: AddressRules::new(&allow_cidrs, &deny_cidrs),
            own: Vec::new(),
            mode: config.mode,
        };
        (policy, errors)
    }

    /// Every bad entry of `config`, in list order (`allow`, `deny`, `allow_cidrs`,
    /// `deny_cidrs`): what [`Policy::new`] would refuse, all at once, for a config checker.
    pub fn errors(config: &PolicyConfig) -> Vec<PolicyError> {
        Self::compile(config).1
    }

    /// The default policy, shared.
    pub fn shared_default() -> Arc<Self> {
        DEFAULT.clone()
    }

    /// Also denies the sockets the proxy listens on, so that a target naming the proxy
    /// itself (with loopback re-opened by `allow_cidrs`, say) cannot make it loop. A
    /// listener on an unspecified address (`0.0.0.0`, `[::]`) covers its port on the
    /// unspecified and loopback addresses of both families; its other interface addresses
    /// are private ranges in most deployments, denied by the default list unless re-opened.
    #[must_use]
    pub fn with_own_listeners(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.own.extend(addrs);
        self
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
                let decision = self.check_socket(SocketAddr::new(*ip, port));
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

    /// Decides an address by its ranges alone.
    pub fn check_addr(&self, ip: IpAddr) -> Decision {
        if self.addresses.allows(ip) {
            Decision::ALLOWED
        } else {
            Decision::deny(Reason::DeniedIp)
        }
    }

    /// Decides an address and port before they are dialed: the ranges, then the proxy's own
    /// listening sockets ([`Policy::with_own_listeners`]).
    pub fn check_socket(&self, addr: SocketAddr) -> Decision {
        let decision = self.check_addr(addr.ip());
        if decision.allowed && self.is_own(addr) {
            return Decision::deny(Reason::DeniedIp);
        }
        decision
    }

    fn is_own(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        self.own.iter().any(|own| {
            own.port() == addr.port()
                && (own.ip().to_canonical() == ip
                    || (own.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())))
        })
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

    #[test]
    fn own_listeners_are_denied_even_when_their_range_is_open() {
        let open = Policy::new(&PolicyConfig {
            allow_cidrs: vec!["127.0.0.0/8".into(), "::1".into()],
            ..PolicyConfig::default()
        })
        .unwrap();
        let p = open.with_own_listeners([
            "127.0.0.1:8080".parse().unwrap(),
            "[::]:8443".parse().unwrap(),
        ]);
        let denied = |s: &str| !p.check_socket(s.parse().unwrap()).allowed;
        assert!(denied("127.0.0.1:8080"));
        assert!(denied("[::ffff:127.0.0.1]:8080"));
        assert!(!denied("127.0.0.2:8080"));
        assert!(!denied("127.0.0.1:8081"));
        assert!(denied("127.0.0.5:8443"));
        assert!(denied("[::1]:8443"));
        assert!(denied("0.0.0.0:8443") && denied("[::]:8443"));
        let ip = |s: &str| Host::Ip(s.parse().unwrap());
        assert_eq!(
            p.check_target(&ip("127.0.0.1"), 8080).reason,
            Reason::DeniedIp
        );
        assert!(p.check_target(&ip("127.0.0.1"), 9000).allowed);
    }

    #[test]
    fn the_default_denies_special_addresses_only() {
        let p = Policy::default();
        assert!(p.check_addr("93.184.215.14".parse().unwrap()).allowed);
        assert!(!p.check_addr("10.0.0.1".parse().unwrap()).allowed);
        let host = Host::from_ascii(b"a.b.example").unwrap();
        assert!(p.check_target(&host, 22).allowed);
    }
}
