//! Adversarial tests for the policy engine in `egress_core::policy`, written from the
//! specification alone (not from the implementation).
//!
//! - `names`: every pattern form, normalisation of config entries (case, trailing dot,
//!   Unicode through idna), deny wins, empty-allow semantics, mode, reason strings.
//! - `ports`: port lists on allow and deny patterns, `DeniedPort` against `DeniedName`.
//! - `config_errors`: invalid patterns and CIDRs, public-suffix refusals and the opt-in.
//! - `addrs`: the default-deny table, one address inside and one just outside each IPv4
//!   range edge, every IPv6 form that embeds an IPv4, `allow_cidrs` / `deny_cidrs` and
//!   the most specific range.
//! - `literals`: IP-literal targets (`Host::Ip`), canonicalised.
//! - `props`: random LDH names against the matching rules, unrelated rules never change a
//!   decision, a model of the IPv4 table, embeddings, 100 000 rules.
//!
//! Table cases go through [`run_table`], which checks every row and reports all the
//! rows that failed at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod addrs;
mod config_errors;
mod literals;
mod names;
mod ports;
mod props;

use std::fmt::Write as _;
use std::net::IpAddr;

use egress_core::policy::{Decision, Policy, PolicyConfig, Reason};
use egress_core::target::Host;

/// What a row of a table expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// `allowed`, reason `Allowed`.
    Allow,
    /// Denied with reason `DeniedName`.
    Name,
    /// Denied with reason `DeniedPort`.
    Port,
    /// Denied with reason `DeniedIp`.
    Ip,
    /// Denied, whatever the reason (where the spec does not pin it).
    Deny,
}

impl Want {
    pub(crate) fn accepts(self, d: Decision) -> bool {
        match self {
            Want::Allow => d.allowed && d.reason == Reason::Allowed,
            Want::Name => !d.allowed && d.reason == Reason::DeniedName,
            Want::Port => !d.allowed && d.reason == Reason::DeniedPort,
            Want::Ip => !d.allowed && d.reason == Reason::DeniedIp,
            Want::Deny => !d.allowed,
        }
    }
}

/// Rows of a `check_target` table: host, port, expectation.
pub(crate) type Rows<'a> = &'a [(&'a str, u16, Want)];

/// A config with these allow and deny patterns and nothing else.
pub(crate) fn cfg(allow: &[&str], deny: &[&str]) -> PolicyConfig {
    PolicyConfig {
        allow: allow.iter().map(|s| (*s).to_owned()).collect(),
        deny: deny.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyConfig::default()
    }
}

/// A config with these CIDR lists and nothing else.
pub(crate) fn cidrs(allow_cidrs: &[&str], deny_cidrs: &[&str]) -> PolicyConfig {
    PolicyConfig {
        allow_cidrs: allow_cidrs.iter().map(|s| (*s).to_owned()).collect(),
        deny_cidrs: deny_cidrs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyConfig::default()
    }
}

/// Builds a policy that must be valid.
pub(crate) fn build(config: &PolicyConfig) -> Policy {
    match Policy::new(config) {
        Ok(p) => p,
        Err(e) => panic!("valid config refused: {e} ({e:?})\nconfig: {config:#?}"),
    }
}

/// Builds a policy from allow and deny patterns.
pub(crate) fn policy(allow: &[&str], deny: &[&str]) -> Policy {
    build(&cfg(allow, deny))
}

/// A host as a client would send it.
pub(crate) fn host(s: &str) -> Host {
    Host::from_ascii(s.as_bytes()).unwrap_or_else(|e| panic!("test host {s:?}: {e}"))
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("test address {s:?}: {e}"))
}

/// The decision is self-consistent: `allowed` exactly when the reason is `Allowed`.
pub(crate) fn consistent(d: Decision) -> bool {
    d.allowed == (d.reason == Reason::Allowed)
}

/// Checks `check_target` for every `(host, port, want)` row; reports every failing row.
pub(crate) fn run_table(what: &str, p: &Policy, rows: &[(&str, u16, Want)]) {
    let mut failures = String::new();
    for &(h, port, want) in rows {
        let d = p.check_target(&host(h), port);
        if !want.accepts(d) || !consistent(d) {
            let _ = writeln!(failures, "  {h}:{port}: want {want:?}, got {d:?}");
        }
    }
    // The policy itself is not printed: with 100 000 rules its Debug form is huge.
    assert!(failures.is_empty(), "{what}\nfailing rows:\n{failures}");
}

/// Checks `check_addr` for every `(address, want)` row; reports every failing row.
pub(crate) fn run_addr_table(what: &str, p: &Policy, rows: &[(&str, Want)]) {
    let mut failures = String::new();
    for &(a, want) in rows {
        let d = p.check_addr(ip(a));
        if !want.accepts(d) || !consistent(d) {
            let _ = writeln!(failures, "  {a}: want {want:?}, got {d:?}");
        }
    }
    assert!(failures.is_empty(), "{what}\nfailing rows:\n{failures}");
}

/// Checks that each config is refused, and that the message names the bad entry.
pub(crate) fn run_refused(what: &str, configs: &[(String, PolicyConfig)]) {
    let mut failures = String::new();
    for (entry, config) in configs {
        match Policy::new(config) {
            Ok(p) => {
                let _ = writeln!(failures, "  {entry:?}: accepted ({p:?})");
            }
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains(entry.as_str()) {
                    let _ = writeln!(
                        failures,
                        "  {entry:?}: refused, but the message does not name it: {msg:?}"
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{what}\nfailing entries:\n{failures}");
}
