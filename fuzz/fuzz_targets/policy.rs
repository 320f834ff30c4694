//! Fuzzes policy patterns and matching: the first line of the input is a pattern, the second
//! a host; building and matching must never panic, and a pattern that builds must match
//! its own base name when it is an exact or `.`-form pattern without ports.
#![no_main]

use egress_core::policy::{Policy, PolicyConfig};
use egress_core::target::Host;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(2, '\n');
    let pattern = lines.next().unwrap_or("").to_owned();
    let host = lines.next().unwrap_or("");
    let config = PolicyConfig {
        allow: vec![pattern.clone()],
        ..PolicyConfig::default()
    };
    let Ok(policy) = Policy::new(&config) else {
        return;
    };
    if let Ok(host) = Host::from_ascii(host.as_bytes()) {
        let _ = policy.check_target(&host, 443);
    }
    if !pattern.starts_with('*') && !pattern.contains(':') {
        let base = pattern.trim_start_matches('.');
        if let Ok(host @ Host::Name(_)) = Host::from_ascii(base.as_bytes()) {
            assert!(
                policy.check_target(&host, 443).allowed,
                "{pattern} does not match {host}"
            );
        }
    }
});
