//! The policy engine: built from the same TOML as the binary's `[policy]`, asked about a
//! (host, port) before resolving, and about each resolved address before dialing it.

use std::ffi::c_char;
use std::net::{IpAddr, SocketAddr};

use egress_core::config::PolicySection;
use egress_core::policy::{Decision, Mode, Policy, Reason};
use egress_core::target::Host;

use crate::boundary::{Failure, c_str, call, free_handle, handle, into_handle, out, text};
use crate::{egress_error, egress_result};

/// A compiled policy. Immutable: safe to use from several threads at once.
#[derive(Debug)]
pub struct egress_policy {
    policy: Policy,
}

/// Why a target was allowed or denied.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum egress_reason {
    /// Allowed.
    EGRESS_REASON_ALLOWED = 0,
    /// The name is not allowed, or is denied.
    EGRESS_REASON_DENIED_NAME = 1,
    /// The name is allowed, but not on this port.
    EGRESS_REASON_DENIED_PORT = 2,
    /// The address is in a denied range (loopback, private, link-local, ... by default).
    EGRESS_REASON_DENIED_IP = 3,
    /// The host is not a valid host name or IP address.
    EGRESS_REASON_INVALID_HOST = 4,
}

/// A policy's answer.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct egress_decision {
    /// Whether to let the connection through. In report mode this is always true, and
    /// `reason` says what enforcing would have denied (log it).
    pub allowed: bool,
    /// Why.
    pub reason: egress_reason,
    /// The reason as egress logs it (`allowed`, `denied_name`, `denied_port`, `denied_ip`,
    /// `invalid_host`): a static NUL-terminated string.
    pub reason_name: *const c_char,
}

/// Builds a policy from `len` bytes of TOML (UTF-8, no NUL needed): a `[policy]` table as
/// in egress's config file, or the same keys at the top level, e.g.
/// `allow = ["*.example.com:443"]`. An empty text gives the default policy: every public
/// name, no special-purpose address.
///
/// `EGRESS_CONFIG_INVALID` when the text is not valid; the error names each mistake's line.
/// Thread-safe. Free the policy with `egress_policy_free`.
#[unsafe(no_mangle)]
pub extern "C" fn egress_policy_new(
    toml: *const c_char,
    len: usize,
    policy_out: *mut *mut egress_policy,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let toml = text(toml, len, "toml")?;
        let policy_out = out(policy_out, "policy_out")?;
        let invalid = |message: String| Failure::new(egress_result::EGRESS_CONFIG_INVALID, message);
        let section = PolicySection::from_toml(toml).map_err(|e| invalid(e.to_string()))?;
        let policy = section.build().map_err(|e| invalid(e.to_string()))?;
        policy_out.write(into_handle(egress_policy { policy }));
        Ok(())
    })
}

/// Frees a policy. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn egress_policy_free(policy: *mut egress_policy) {
    free_handle(policy);
}

/// Decides a destination before it is resolved: `host` (`host_len` bytes, a host name or an
/// IP literal, IPv6 without brackets) on `port`. A host that is not valid is denied with
/// `EGRESS_REASON_INVALID_HOST`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_policy_check(
    policy: *const egress_policy,
    host: *const c_char,
    host_len: usize,
    port: u16,
    decision_out: *mut egress_decision,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let policy = &handle(policy, "policy")?.policy;
        let host = text(host, host_len, "host")?;
        let decision_out = out(decision_out, "decision_out")?;
        decision_out.write(answer(policy, check_target(policy, host, port)));
        Ok(())
    })
}

/// Decides a destination and one of its resolved addresses, just before dialing it: the
/// target as `egress_policy_check`, then `ip` (`ip_len` bytes of text, such as `192.0.2.1`
/// or `2001:db8::1`) against the address ranges. Dial only addresses that are allowed:
/// checking the address dialed is what stops DNS rebinding. `EGRESS_INVALID_PARAMETER` when
/// `ip` is not an IP address. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_policy_check_resolved(
    policy: *const egress_policy,
    host: *const c_char,
    host_len: usize,
    port: u16,
    ip: *const c_char,
    ip_len: usize,
    decision_out: *mut egress_decision,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let policy = &handle(policy, "policy")?.policy;
        let host = text(host, host_len, "host")?;
        let ip_text = text(ip, ip_len, "ip")?;
        let ip: IpAddr = ip_text
            .parse()
            .map_err(|_| Failure::invalid(format!("`ip` {ip_text:?} is not an IP address")))?;
        let decision_out = out(decision_out, "decision_out")?;
        let target = check_target(policy, host, port);
        let decision = if target.allowed {
            policy.check_socket(SocketAddr::new(ip, port))
        } else {
            target
        };
        decision_out.write(answer(policy, decision));
        Ok(())
    })
}

fn check_target(policy: &Policy, host: &str, port: u16) -> Decision {
    match Host::from_ascii(host.as_bytes()) {
        Ok(host) => policy.check_target(&host, port),
        Err(_) => Decision {
            allowed: false,
            reason: Reason::InvalidHost,
        },
    }
}

/// The decision as C sees it, report mode applied.
fn answer(policy: &Policy, decision: Decision) -> egress_decision {
    let reason = match decision.reason {
        Reason::Allowed => egress_reason::EGRESS_REASON_ALLOWED,
        Reason::DeniedName => egress_reason::EGRESS_REASON_DENIED_NAME,
        Reason::DeniedPort => egress_reason::EGRESS_REASON_DENIED_PORT,
        Reason::InvalidHost => egress_reason::EGRESS_REASON_INVALID_HOST,
        // One address at a time: "no allowed address" is the caller's to conclude. A reason
        // added to the core later is reported as a denied address until it has a code.
        _ => egress_reason::EGRESS_REASON_DENIED_IP,
    };
    egress_decision {
        allowed: decision.allowed || policy.mode() == Mode::Report,
        reason,
        reason_name: c_str(reason_name(reason)),
    }
}

fn reason_name(reason: egress_reason) -> &'static str {
    match reason {
        egress_reason::EGRESS_REASON_ALLOWED => "allowed\0",
        egress_reason::EGRESS_REASON_DENIED_NAME => "denied_name\0",
        egress_reason::EGRESS_REASON_DENIED_PORT => "denied_port\0",
        egress_reason::EGRESS_REASON_DENIED_IP => "denied_ip\0",
        egress_reason::EGRESS_REASON_INVALID_HOST => "invalid_host\0",
    }
}
