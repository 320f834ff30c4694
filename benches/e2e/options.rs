//! The command line after `cargo bench -p egress-benches --bench e2e --`: `--smoke` for the
//! short CI run, `--rounds N`, `--scenario bulk|rate|idle`, `--only NAME,...`,
//! `--latency-rate N`, `--bulk-mib N`, `--idle-tunnels N`, `--no-cgroup`, `--no-spinner`,
//! `--egress-no-splice`. Anything else cargo passes
//! (`--bench`, a filter) is ignored.

use std::time::Duration;

use crate::Result;
use crate::contenders::Kind;

pub(crate) const USAGE: &str = "\
cargo bench -p egress-benches --bench e2e [-- OPTIONS]

  --smoke               a few seconds per scenario, one round (CI); numbers are not goals
  --rounds N            interleaved rounds (default 5; smoke 1)
  --scenario S[,S]      bulk, rate, idle (default all; may repeat)
  --only NAME[,NAME]    contenders: direct, egress-sni, nginx-sni, egress-connect,
                        tinyproxy-connect, squid-connect (default all installed)
  --latency-rate N      offered connections/s of the latency run (default 1000)
  --bulk-mib N          MiB each way of the bulk tunnel (default 4096; smoke 64)
  --idle-tunnels N      tunnels held in the idle scenario (default 10000; smoke 200)
  --no-cgroup           account proxy CPU from /proc only and skip the capped runs
  --no-spinner          let the proxies' CPU idle during latency runs
  --egress-no-splice    run egress with [relay] splice = false (the userspace copy)
";

/// The three scenarios, in the order a round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scenario {
    Bulk,
    Rate,
    Idle,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Bulk => "bulk",
            Scenario::Rate => "rate",
            Scenario::Idle => "idle",
        }
    }
}

/// What to run, and how long.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) smoke: bool,
    pub(crate) help: bool,
    /// Do not use cgroups even when they are writable.
    pub(crate) no_cgroup: bool,
    /// Do not keep the proxies' CPU busy at idle priority during latency runs.
    pub(crate) no_spinner: bool,
    /// Run egress with its userspace copy instead of splice(2).
    pub(crate) egress_no_splice: bool,
    pub(crate) rounds: usize,
    pub(crate) scenarios: Vec<Scenario>,
    /// Contenders to run; None: all.
    pub(crate) only: Option<Vec<Kind>>,
    /// Bytes each way of the bulk tunnel.
    pub(crate) bulk_bytes: u64,
    /// Longest one bulk transfer may take before it counts as failed.
    pub(crate) bulk_limit: Duration,
    /// Concurrent clients of the closed-loop rate run, and its length.
    pub(crate) rate_clients: usize,
    pub(crate) rate_duration: Duration,
    /// Offered rate and length of the open-loop latency run.
    pub(crate) latency_rate: u32,
    pub(crate) latency_duration: Duration,
    /// Tunnels held in the idle scenario, and how many are opened at once.
    pub(crate) idle_tunnels: usize,
    pub(crate) idle_parallel: usize,
    /// The arguments as given, for the report.
    pub(crate) command: String,
}

impl Options {
    /// Parses the arguments (without the program name).
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
        let args: Vec<String> = args.into_iter().collect();
        let smoke = args.iter().any(|a| a == "--smoke");
        let mut options = Options {
            smoke,
            help: false,
            no_cgroup: false,
            no_spinner: false,
            egress_no_splice: false,
            rounds: if smoke { 1 } else { 5 },
            scenarios: Vec::new(),
            only: None,
            bulk_bytes: if smoke { 64 << 20 } else { 4 << 30 },
            bulk_limit: Duration::from_secs(if smoke { 60 } else { 300 }),
            rate_clients: 64,
            rate_duration: Duration::from_secs(if smoke { 1 } else { 10 }),
            latency_rate: 1_000,
            latency_duration: Duration::from_secs(if smoke { 1 } else { 5 }),
            idle_tunnels: if smoke { 200 } else { 10_000 },
            idle_parallel: 100,
            command: String::new(),
        };
        let mut shown = Vec::new();
        let mut args = args.into_iter();
        // Bounded by the argument count: each pass consumes one or two arguments.
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let known = [
                "--rounds",
                "--scenario",
                "--only",
                "--latency-rate",
                "--bulk-mib",
                "--idle-tunnels",
            ];
            if !known.contains(&flag.as_str()) {
                match arg.as_str() {
                    "--smoke" => shown.push(arg),
                    "--no-cgroup" => {
                        options.no_cgroup = true;
                        shown.push(arg);
                    }
                    "--no-spinner" => {
                        options.no_spinner = true;
                        shown.push(arg);
                    }
                    "--egress-no-splice" => {
                        options.egress_no_splice = true;
                        shown.push(arg);
                    }
                    "--help" | "-h" => options.help = true,
                    // `--bench` from cargo, filters and criterion's flags: not ours.
                    _ => {}
                }
                continue;
            }
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
            };
            shown.push(format!("{flag} {value}"));
            match flag.as_str() {
                "--rounds" => options.rounds = number(&flag, &value)?.max(1),
                "--scenario" => {
                    for name in value.split(',') {
                        options.scenarios.push(match name.trim() {
                            "bulk" => Scenario::Bulk,
                            "rate" => Scenario::Rate,
                            "idle" => Scenario::Idle,
                            other => {
                                return Err(format!(
                                    "unknown scenario {other:?} (bulk, rate, idle)"
                                )
                                .into());
                            }
                        });
                    }
                }
                "--only" => {
                    let mut only = Vec::new();
                    for name in value.split(',') {
                        let kind = Kind::ALL
                            .into_iter()
                            .find(|k| k.name() == name.trim())
                            .ok_or_else(|| format!("unknown contender {name:?}"))?;
                        only.push(kind);
                    }
                    options.only = Some(only);
                }
                "--latency-rate" => {
                    options.latency_rate = u32::try_from(number(&flag, &value)?.max(1))?
                }
                "--bulk-mib" => options.bulk_bytes = (number(&flag, &value)?.max(1) as u64) << 20,
                "--idle-tunnels" => options.idle_tunnels = number(&flag, &value)?.max(1),
                _ => {}
            }
        }
        if options.scenarios.is_empty() {
            options.scenarios = vec![Scenario::Bulk, Scenario::Rate, Scenario::Idle];
        }
        options.scenarios.sort();
        options.scenarios.dedup();
        options.command = if shown.is_empty() {
            "cargo bench -p egress-benches --bench e2e".to_owned()
        } else {
            format!(
                "cargo bench -p egress-benches --bench e2e -- {}",
                shown.join(" ")
            )
        };
        Ok(options)
    }

    pub(crate) fn runs(&self, kind: Kind) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&kind))
    }
}

fn number(flag: &str, value: &str) -> Result<usize> {
    value
        .parse()
        .map_err(|_| format!("{flag} needs a number, not {value:?}").into())
}
