//! The three scenarios, each run for one contender in one round: bulk (throughput and CPU
//! per GiB, uncapped and capped), rate (capped connections/s and CPU per connection, then
//! uncapped open-loop latency) and idle (memory and descriptors per held tunnel).

use std::sync::Arc;
use std::time::Duration;

use crate::contenders::{Contender, Kind};
use crate::load;
use crate::options::{Options, Scenario};
use crate::process::Spinner;
use crate::report::{Metric, Results, quantile};
use crate::upstream::{Plan, Upstream};
use crate::wire::Patterns;

const GIB: f64 = (1u64 << 30) as f64;

/// Pause between measurements, so that one's closing connections do not overlap the next.
const SETTLE: Duration = Duration::from_millis(500);

/// How long idle tunnels are held before the proxy is measured.
const IDLE_HOLD: Duration = Duration::from_secs(1);

/// The state the scenarios share.
#[derive(Debug)]
pub(crate) struct Bench {
    pub(crate) options: Options,
    pub(crate) upstream: Upstream,
    pub(crate) patterns: Arc<Patterns>,
    pub(crate) results: Results,
    /// The proxies' CPU, kept busy at idle priority during latency runs (None: not).
    pub(crate) spin_cpu: Option<usize>,
    /// The contender being measured, whom problems are about.
    pub(crate) current: Kind,
}

impl Bench {
    /// Runs `scenario` for `contender` in `round`, recording values and problems.
    pub(crate) async fn run(
        &mut self,
        scenario: Scenario,
        round: usize,
        contender: &mut Contender,
    ) {
        let label = format!(
            "round {}/{} {} {}",
            round + 1,
            self.options.rounds,
            scenario.name(),
            contender.kind
        );
        self.current = contender.kind;
        if !self.ensure_running(&label, contender).await {
            return;
        }
        match scenario {
            Scenario::Bulk => self.bulk(&label, round, contender).await,
            Scenario::Rate => self.rate(&label, round, contender).await,
            Scenario::Idle => self.idle(&label, round, contender).await,
        }
        let (errors, first) = self.upstream.take_errors();
        if errors > 0 {
            self.problem(format!(
                "{label}: {errors} upstream connection(s) failed (first: {})",
                first.unwrap_or_default()
            ));
        }
        tokio::time::sleep(SETTLE).await;
    }

    fn problem(&mut self, problem: String) {
        eprintln!("  problem: {problem}");
        self.results.problem(self.current, problem);
    }

    fn progress(label: &str, text: &str) {
        eprintln!("{label}: {text}");
    }

    /// Restarts a proxy that has died since the last scenario, saying so.
    async fn ensure_running(&mut self, label: &str, contender: &mut Contender) -> bool {
        let Some(proxy) = contender.proxy.as_mut() else {
            return true;
        };
        if proxy.is_running() {
            return true;
        }
        let output = proxy.output();
        self.problem(format!(
            "{label}: the proxy had exited; restarting it\n{output}"
        ));
        self.upstream.set_plan(Plan::Close);
        let started = match proxy.spawn() {
            Ok(()) => proxy.wait_ready(&contender.client).await,
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => true,
            Err(e) => {
                self.problem(format!("{label}: cannot restart the proxy: {e}"));
                false
            }
        }
    }

    /// CPU time of the contender's proxy so far (None for direct, or when unreadable).
    fn cpu(&mut self, label: &str, contender: &Contender) -> Option<Duration> {
        let proxy = contender.proxy.as_ref()?;
        match proxy.cpu_time() {
            Ok(time) => Some(time),
            Err(e) => {
                self.problem(format!("{label}: cannot read the proxy's CPU time: {e}"));
                None
            }
        }
    }

    async fn bulk(&mut self, label: &str, round: usize, contender: &mut Contender) {
        let kind = contender.kind;
        let bytes = self.options.bulk_bytes;
        let moved_gib = 2.0 * bytes as f64 / GIB;
        let phases: &[bool] = match &contender.proxy {
            Some(proxy) if proxy.can_cap() => &[false, true],
            _ => &[false],
        };
        for &capped in phases {
            let cap = match (capped, &contender.proxy) {
                (true, Some(proxy)) => match proxy.cap() {
                    Ok(cap) => Some(cap),
                    Err(e) => {
                        self.problem(format!("{label}: cannot cap: {e}"));
                        continue;
                    }
                },
                _ => None,
            };
            let before = self.cpu(label, contender);
            let moved = load::bulk(
                &contender.client,
                &mut self.upstream,
                &self.patterns,
                bytes,
                self.options.bulk_limit,
            )
            .await;
            let after = self.cpu(label, contender);
            drop(cap);
            let phase = if capped { "capped" } else { "uncapped" };
            let elapsed = match moved {
                Ok(elapsed) => elapsed,
                Err(e) => {
                    self.problem(format!("{label} {phase}: {e}"));
                    continue;
                }
            };
            let gbps = 2.0 * bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e9;
            let mut text = format!("{phase} {gbps:.2} Gbit/s ({elapsed:.2?})");
            let (gbps_metric, cpu_metric) = if capped {
                (Metric::BulkGbpsCapped, Metric::BulkCpuCapped)
            } else {
                (Metric::BulkGbps, Metric::BulkCpu)
            };
            self.results.record(round, gbps_metric, kind, gbps);
            if let (Some(before), Some(after)) = (before, after) {
                let per_gib = (after - before).as_secs_f64() / moved_gib;
                text.push_str(&format!(", proxy CPU {per_gib:.3} s/GiB"));
                self.results.record(round, cpu_metric, kind, per_gib);
            }
            Self::progress(label, &text);
        }
    }

    async fn rate(&mut self, label: &str, round: usize, contender: &mut Contender) {
        let kind = contender.kind;
        // Capped when there is a cgroup; direct has no proxy and runs as it is.
        let cap = match &contender.proxy {
            Some(proxy) if proxy.can_cap() => match proxy.cap() {
                Ok(cap) => Some(cap),
                Err(e) => {
                    self.problem(format!("{label}: cannot cap: {e}"));
                    None
                }
            },
            _ => None,
        };
        let capped = cap.is_some();
        let before = self.cpu(label, contender);
        let outcome = load::rate(
            &contender.client,
            self.options.rate_clients,
            self.options.rate_duration,
        )
        .await;
        let after = self.cpu(label, contender);
        drop(cap);
        let per_second = outcome.completed as f64 / outcome.elapsed.as_secs_f64();
        let mut text = format!(
            "{} {per_second:.0} conn/s ({} in {:.2?})",
            if capped { "capped" } else { "uncapped" },
            outcome.completed,
            outcome.elapsed
        );
        if capped || contender.proxy.is_none() {
            self.results
                .record(round, Metric::RateCapped, kind, per_second);
        }
        if let (Some(before), Some(after)) = (before, after) {
            if outcome.completed > 0 {
                let us = (after - before).as_secs_f64() * 1e6 / outcome.completed as f64;
                text.push_str(&format!(", proxy CPU {us:.1} µs/conn"));
                self.results.record(round, Metric::RateCpu, kind, us);
            }
        }
        if outcome.failures.count > 0 {
            self.problem(format!(
                "{label}: {} connection(s) failed in the rate run (first: {})",
                outcome.failures.count,
                outcome.failures.first.unwrap_or_default()
            ));
        }
        tokio::time::sleep(SETTLE).await;

        let rate = self.options.latency_rate;
        let spinner = match self.spin_cpu.map(Spinner::start) {
            Some(Err(e)) => {
                self.problem(format!("{label}: {e}"));
                None
            }
            Some(Ok(spinner)) => Some(spinner),
            None => None,
        };
        let outcome = load::latency(&contender.client, rate, self.options.latency_duration).await;
        drop(spinner);
        let mut micros: Vec<f64> = outcome
            .samples
            .iter()
            .map(|d| d.as_secs_f64() * 1e6)
            .collect();
        micros.sort_by(f64::total_cmp);
        if let (Some(p50), Some(p99)) = (quantile(&micros, 0.50), quantile(&micros, 0.99)) {
            self.results.record(round, Metric::LatencyP50, kind, p50);
            self.results.record(round, Metric::LatencyP99, kind, p99);
            text.push_str(&format!(
                "; latency at {rate}/s uncapped: p50 {p50:.0} µs, p99 {p99:.0} µs ({} samples)",
                micros.len()
            ));
        }
        if outcome.failures.count > 0 {
            self.problem(format!(
                "{label}: {} connection(s) failed in the latency run (first: {})",
                outcome.failures.count,
                outcome.failures.first.unwrap_or_default()
            ));
        }
        Self::progress(label, &text);
    }

    async fn idle(&mut self, label: &str, round: usize, contender: &mut Contender) {
        let kind = contender.kind;
        let Some(proxy) = contender.proxy.as_mut() else {
            // No proxy, nothing to measure.
            return;
        };
        // A fresh process: its memory before the tunnels is a clean baseline.
        self.upstream.set_plan(Plan::Close);
        let restarted = match proxy.spawn() {
            Ok(()) => proxy.wait_ready(&contender.client).await,
            Err(e) => Err(e),
        };
        if let Err(e) = restarted {
            self.problem(format!("{label}: cannot restart the proxy: {e}"));
            return;
        }
        tokio::time::sleep(SETTLE).await;
        let before = proxy.footprint();

        // Two halves: the pipe descriptors the second half adds are what idle tunnels hold
        // (a pipe pool's cached pipes are there after the first half already).
        let wanted = self.options.idle_tunnels;
        let mut held = load::Held::new(wanted);
        self.upstream.set_plan(Plan::Hold);
        load::open_idle(
            &contender.client,
            wanted / 2,
            self.options.idle_parallel,
            &mut held,
        )
        .await;
        tokio::time::sleep(IDLE_HOLD).await;
        let middle = proxy.footprint();
        let first_half = held.streams.len();
        load::open_idle(
            &contender.client,
            wanted - wanted / 2,
            self.options.idle_parallel,
            &mut held,
        )
        .await;
        self.upstream.set_plan(Plan::Close);
        tokio::time::sleep(IDLE_HOLD).await;
        let after = proxy.footprint();
        let opened = held.streams.len();
        let second_half = opened - first_half;
        let at_upstream = self.upstream.active();
        let alive = load::probe_idle(&mut held.streams).await;

        if held.failures.count > 0 {
            self.problem(format!(
                "{label}: opened {opened} of {wanted} tunnels (first failure: {})",
                held.failures.first.take().unwrap_or_default()
            ));
        }
        if alive < opened {
            self.problem(format!(
                "{label}: {} of {opened} held tunnels did not echo after {IDLE_HOLD:?}",
                opened - alive
            ));
        }
        if opened > 0 && second_half > 0 {
            let n = opened as f64;
            let rss = (after.rss_kib as f64 - before.rss_kib as f64) / n;
            let fds = (after.fds as f64 - before.fds as f64) / n;
            let pipes = (after.pipes as f64 - middle.pipes as f64) / second_half as f64;
            self.results.record(round, Metric::IdleRss, kind, rss);
            self.results.record(round, Metric::IdleFds, kind, fds);
            self.results.record(round, Metric::IdlePipes, kind, pipes);
            Self::progress(
                label,
                &format!(
                    "{opened} tunnels ({at_upstream} at the upstream, {alive} echoed): \
                     RSS {} -> {} KiB ({rss:.1} KiB/tunnel), fds {} -> {} ({fds:.2}/tunnel), \
                     pipe fds {} -> {} -> {} (before, half, all), {} process(es)",
                    before.rss_kib,
                    after.rss_kib,
                    before.fds,
                    after.fds,
                    before.pipes,
                    middle.pipes,
                    after.pipes,
                    after.processes
                ),
            );
        }
        drop(held);
        if !self
            .upstream
            .wait_active_at_most(0, Duration::from_secs(15))
            .await
        {
            self.problem(format!(
                "{label}: {} upstream connections still open 15 s after the tunnels closed",
                self.upstream.active()
            ));
        }
    }
}
