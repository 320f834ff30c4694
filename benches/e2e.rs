//! The end-to-end benchmark: egress against nginx's stream module (SNI passthrough),
//! tinyproxy and squid (CONNECT) and a direct connection, all on loopback, driven by this
//! process's own load generator, printed as one table of medians and ratios.
//!
//! `cargo bench -p egress-benches --bench e2e` runs it in full (BENCHMARKS.md has the
//! numbers); `-- --smoke` runs every scenario for a few seconds, as CI does. It builds the
//! release `egress` binary, pins itself (load generator, upstream, DNS server) to the second
//! CPU and every proxy to the first, one worker each, each proxy in its own cgroup for CPU
//! accounting and the half-CPU cap. A peer that is not installed is skipped with a line.
//!
//! ```text
//! load generator ──> egress-sni / nginx-sni ────────────────> upstream (127.0.0.1:P)
//!   (CPU 1)      ──> egress-connect / tinyproxy / squid ──>     (CPU 1, plain TCP)
//!                ──────────────── direct ─────────────────>
//! ```
#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

#[path = "e2e/configs.rs"]
mod configs;
#[path = "e2e/contenders.rs"]
mod contenders;
#[path = "e2e/cpu.rs"]
mod cpu;
#[path = "../egress-core/tests/support/dns.rs"]
mod dns;
#[path = "e2e/host.rs"]
mod host;
#[path = "e2e/load.rs"]
mod load;
#[path = "e2e/options.rs"]
mod options;
#[path = "e2e/process.rs"]
mod process;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/scenarios.rs"]
mod scenarios;
#[path = "e2e/upstream.rs"]
mod upstream;
#[path = "e2e/wire.rs"]
mod wire;

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use contenders::{Contender, Kind, Setup, Skipped};
use cpu::Hierarchy;
use options::{Options, USAGE};
use report::Results;
use scenarios::Bench;
use upstream::Upstream;
use wire::Patterns;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Descriptors kept for everything but idle tunnels, in the harness and in a proxy
/// (listeners, DNS sockets, logs, a pipe pool, nginx's channels).
const FD_RESERVE: u64 = 200;

/// TTL of the DNS answer for bench.test: both SNI proxies cache it for the whole run.
const DNS_TTL: u32 = 300;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("e2e: {e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if options.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> Result<()> {
    let started = Instant::now();
    let workspace = host::workspace_root();
    let machine = host::machine(&workspace);
    let egress = host::build_egress(&workspace)?;
    let mut notes = Vec::new();
    let open_files = host::raise_open_files(&mut notes);
    let mut options = options;
    let most_idle =
        usize::try_from(open_files.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX);
    if options.idle_tunnels > most_idle {
        notes.push(format!(
            "idle: {most_idle} tunnels instead of {}: the open-file limit is {open_files} (the harness holds both ends of each tunnel, a proxy two descriptors per tunnel)",
            options.idle_tunnels
        ));
        options.idle_tunnels = most_idle;
    }
    let proxy_cpu = host::pin(&mut notes);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = bench(&options, egress, proxy_cpu, open_files, &mut notes) => outcome,
            _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        }
    })?;
    let elapsed = started.elapsed();
    notes.push(format!(
        "total time {} min {} s",
        elapsed.as_secs() / 60,
        elapsed.as_secs() % 60
    ));
    let text = outcome.render(&options, &machine, &notes);
    println!("{text}");
    let path = host::target_dir(&workspace).join("e2e-report.md");
    let file_text = format!(
        "{text}\n### Every round\n\n{}",
        outcome.results.raw(&outcome.ran, options.latency_rate)
    );
    match fs::write(&path, file_text) {
        Ok(()) => eprintln!("e2e: report written to {}", path.display()),
        Err(e) => eprintln!("e2e: cannot write {}: {e}", path.display()),
    }
    // A peer's failures are its own; egress's or the direct path's mean egress or this
    // harness is broken, which must fail the run (and CI's smoke run).
    let ours = outcome
        .results
        .problems()
        .iter()
        .filter(|(kind, _)| matches!(kind, Kind::Direct | Kind::EgressSni | Kind::EgressConnect))
        .count();
    if ours > 0 {
        return Err(
            format!("{ours} problem(s) with egress or the harness: see Problems above").into(),
        );
    }
    Ok(())
}

/// What a run produced.
#[derive(Debug)]
struct Outcome {
    results: Results,
    ran: Vec<Kind>,
    versions: Vec<(Kind, String)>,
    skipped: Vec<Skipped>,
    hierarchy: Option<String>,
    proxy_cpu: Option<usize>,
}

async fn bench(
    options: &Options,
    egress: PathBuf,
    proxy_cpu: Option<usize>,
    open_files: u64,
    notes: &mut Vec<String>,
) -> Result<Outcome> {
    let temp = host::TempDir::create()?;
    let ticks_before = host::cpu_ticks();
    let dns = dns::DnsServer::start().await;
    dns.set_with_ttl(
        wire::SERVER_NAME,
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        DNS_TTL,
    );
    let hello: Arc<[u8]> = wire::client_hello()?.into();
    let reply: Arc<[u8]> = wire::reply().into();
    let patterns = Arc::new(Patterns::new());
    let upstream = Upstream::start(hello.clone(), reply.clone(), patterns.clone())?;

    let detected = if options.no_cgroup {
        Err("--no-cgroup".to_owned())
    } else {
        Hierarchy::detect()
    };
    let hierarchy = match detected {
        Ok(hierarchy) => match hierarchy.probe() {
            Ok(()) => Some(hierarchy),
            Err(e) => {
                notes.push(format!(
                    "cgroups not usable ({e}): proxy CPU from /proc/<pid>/stat of the process tree, capped runs skipped"
                ));
                None
            }
        },
        Err(e) => {
            notes.push(format!(
                "no cgroup ({e}): proxy CPU from /proc/<pid>/stat of the process tree, capped runs skipped"
            ));
            None
        }
    };
    let setup = Setup {
        dir: temp.path.clone(),
        upstream: upstream.addr(),
        dns: dns.addr(),
        egress,
        hello,
        reply,
        hierarchy: hierarchy.clone(),
        proxy_cpu,
        open_files,
        egress_no_splice: options.egress_no_splice,
    };

    let mut contenders: Vec<Contender> = Vec::new();
    let mut skipped = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|&k| options.runs(k)) {
        match contenders::prepare(kind, &setup) {
            Ok(contender) => contenders.push(contender),
            Err(skip) => skipped.push(skip),
        }
    }
    for skip in &skipped {
        eprintln!("e2e: skipping {}: {}", skip.kind, skip.reason);
    }
    let mut running = Vec::new();
    for mut contender in contenders {
        if let Some(proxy) = contender.proxy.as_mut() {
            let started = match proxy.spawn() {
                Ok(()) => proxy.wait_ready(&contender.client).await,
                Err(e) => Err(e),
            };
            if let Err(e) = started {
                eprintln!("e2e: skipping {}: {e}", contender.kind);
                skipped.push(Skipped {
                    kind: contender.kind,
                    reason: format!("did not start: {}", host::first_line(&e.to_string())),
                });
                continue;
            }
        }
        eprintln!("e2e: {} ready", contender.kind);
        running.push(contender);
    }
    let ran: Vec<Kind> = running.iter().map(|c| c.kind).collect();
    notes.extend(running.iter().filter_map(|c| c.note.clone()));
    let versions = running
        .iter()
        .filter(|c| !c.version.is_empty())
        .map(|c| (c.kind, c.version.clone()))
        .collect();

    let spin_cpu = match proxy_cpu {
        _ if options.no_spinner => None,
        Some(_) if contenders::find_program("chrt").is_none() => {
            notes.push("chrt is missing: no spinner during latency runs".to_owned());
            None
        }
        Some(cpu) => {
            notes.push(format!(
                "latency runs keep CPU {cpu} out of idle with a SCHED_IDLE busy loop outside every proxy's cgroup (a virtual CPU woken from idle can take milliseconds, which would set every proxy's p99); --no-spinner turns it off"
            ));
            Some(cpu)
        }
        None => None,
    };
    let mut bench = Bench {
        options: options.clone(),
        upstream,
        patterns,
        results: Results::new(options.rounds),
        spin_cpu,
        current: Kind::Direct,
    };
    for round in 0..options.rounds {
        for &scenario in &options.scenarios {
            for contender in &mut running {
                bench.run(scenario, round, contender).await;
            }
        }
    }
    // What the proxies logged beyond startup: for egress a problem, for a peer a note.
    for contender in &running {
        let Some(proxy) = &contender.proxy else {
            continue;
        };
        let complaints = proxy.complaints();
        let Some(first) = complaints.first() else {
            continue;
        };
        let text = format!(
            "{} logged {} warning or error line(s), the first: {}",
            contender.kind,
            complaints.len(),
            first.trim()
        );
        if matches!(contender.kind, Kind::EgressSni | Kind::EgressConnect) {
            bench.results.problem(contender.kind, text);
        } else {
            notes.push(text);
        }
    }
    // Stop the proxies (and remove their cgroups) before their directory goes.
    drop(running);
    bench.results.derive();
    if let (Some((steal_before, total_before)), Some((steal_after, total_after))) =
        (ticks_before, host::cpu_ticks())
    {
        let total = total_after.saturating_sub(total_before).max(1);
        let steal = steal_after.saturating_sub(steal_before);
        notes.push(format!(
            "CPU time stolen by the hypervisor during the run: {:.1} %",
            100.0 * steal as f64 / total as f64
        ));
    }
    notes.push(format!(
        "DNS queries for {} over the run: {} (both SNI proxies cache the {DNS_TTL} s answer)",
        wire::SERVER_NAME,
        dns.queries(wire::SERVER_NAME)
    ));
    drop(temp);
    Ok(Outcome {
        results: bench.results,
        ran,
        versions,
        skipped,
        hierarchy: hierarchy.map(|h| h.describe()),
        proxy_cpu,
    })
}

impl Outcome {
    fn render(&self, options: &Options, machine: &str, notes: &[String]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## End-to-end: egress against nginx, tinyproxy, squid\n"
        );
        let _ = writeln!(out, "`{}`\n", options.command);
        let _ = writeln!(out, "- machine: {machine}");
        if !self.versions.is_empty() {
            let versions: Vec<String> = self
                .versions
                .iter()
                .map(|(kind, version)| format!("{kind}: {version}"))
                .collect();
            let _ = writeln!(out, "- versions: {}", versions.join("; "));
        }
        let ran: Vec<&str> = self.ran.iter().map(|k| k.name()).collect();
        let _ = writeln!(
            out,
            "- {} round(s), each running every scenario for {} in this order",
            options.rounds,
            ran.join(", ")
        );
        let _ = writeln!(
            out,
            "- sizes: bulk {} MiB each way; rate {} clients for {:?}; latency {}/s for {:?}; idle {} tunnels{}",
            options.bulk_bytes >> 20,
            options.rate_clients,
            options.rate_duration,
            options.latency_rate,
            options.latency_duration,
            options.idle_tunnels,
            if options.smoke {
                " (smoke run: too short for conclusions)"
            } else {
                ""
            }
        );
        let pinning = match self.proxy_cpu {
            Some(cpu) => format!(
                "proxies pinned to CPU {cpu} (taskset), load generator + upstream + DNS server to the next CPU"
            ),
            None => "nothing pinned".to_owned(),
        };
        let _ = writeln!(
            out,
            "- one worker per proxy; {pinning}; proxy CPU from {}",
            self.hierarchy
                .as_deref()
                .unwrap_or("/proc/<pid>/stat (no cgroup)")
        );
        let _ = writeln!(
            out,
            "- no per-connection log lines: egress EGRESS_LOG=warn, nginx stream without access_log, tinyproxy LogLevel Critical, squid access_log none"
        );
        let _ = writeln!(
            out,
            "- names: egress and nginx resolve bench.test with the in-process DNS server; squid reads it from a hosts_file, tinyproxy from /etc/hosts in its own mount namespace"
        );
        if options.egress_no_splice {
            let _ = writeln!(
                out,
                "- egress with `[relay] splice = false`: the userspace copy"
            );
        }
        for skip in &self.skipped {
            let _ = writeln!(out, "- skipped {}: {}", skip.kind, skip.reason);
        }
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
        out.push('\n');
        out.push_str(&self.results.table(&self.ran, options.latency_rate));
        out.push('\n');
        out.push_str(&report::legend(options.latency_rate, options.rate_clients));
        let problems = self.results.problems();
        if problems.is_empty() {
            out.push_str("\nNo failed connection, transfer or check in the run.\n");
        } else {
            let _ = writeln!(out, "\nProblems ({}):\n", problems.len());
            for (_, problem) in problems {
                let _ = writeln!(out, "- {}", problem.replace('\n', "\n  "));
            }
        }
        out
    }
}
