//! The results of a run and the table made from them: per metric, the median across rounds
//! for each contender and the median of per-round ratios (egress over each peer), with the
//! issue's goals checked against the ratios of this same run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::contenders::Kind;

/// Everything the table reports, one row each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Metric {
    BulkGbps,
    BulkVsDirect,
    BulkGbpsCapped,
    BulkCpu,
    BulkCpuCapped,
    RateCapped,
    RateCpu,
    LatencyP50,
    LatencyP99,
    IdleRss,
    IdleFds,
    IdlePipes,
}

/// A goal from the issue, on the egress/peer ratio (or on egress's own value).
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// ratio ≤ x
    AtMost(f64),
    /// ratio ≥ x
    AtLeast(f64),
    /// egress's own value ≥ x (the bulk ratio to direct)
    ValueAtLeast(f64),
    /// egress's own value ≤ x (pipes held)
    ValueAtMost(f64),
}

impl Metric {
    const ALL: [Metric; 12] = [
        Metric::BulkGbps,
        Metric::BulkVsDirect,
        Metric::BulkGbpsCapped,
        Metric::BulkCpu,
        Metric::BulkCpuCapped,
        Metric::RateCapped,
        Metric::RateCpu,
        Metric::LatencyP50,
        Metric::LatencyP99,
        Metric::IdleRss,
        Metric::IdleFds,
        Metric::IdlePipes,
    ];

    fn label(self, latency_rate: u32) -> String {
        match self {
            Metric::BulkGbps => "bulk Gbit/s, uncapped".to_owned(),
            Metric::BulkVsDirect => "bulk uncapped, ratio to direct".to_owned(),
            Metric::BulkGbpsCapped => "bulk Gbit/s, capped".to_owned(),
            Metric::BulkCpu => "bulk proxy CPU s/GiB, uncapped".to_owned(),
            Metric::BulkCpuCapped => "bulk proxy CPU s/GiB, capped".to_owned(),
            Metric::RateCapped => "rate conn/s, capped".to_owned(),
            Metric::RateCpu => "rate proxy CPU µs/conn".to_owned(),
            Metric::LatencyP50 => format!("latency p50 µs at {latency_rate}/s"),
            Metric::LatencyP99 => format!("latency p99 µs at {latency_rate}/s"),
            Metric::IdleRss => "idle RSS KiB/tunnel".to_owned(),
            Metric::IdleFds => "idle fds/tunnel".to_owned(),
            Metric::IdlePipes => "idle pipe fds/tunnel".to_owned(),
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Metric::BulkGbps | Metric::BulkGbpsCapped => format!("{value:.2}"),
            Metric::BulkVsDirect => format!("{value:.2}x"),
            Metric::BulkCpu | Metric::BulkCpuCapped => format!("{value:.3}"),
            Metric::RateCapped | Metric::LatencyP50 | Metric::LatencyP99 => {
                format!("{value:.0}")
            }
            Metric::RateCpu | Metric::IdleRss => format!("{value:.1}"),
            Metric::IdleFds => format!("{value:.2}"),
            Metric::IdlePipes => format!("{value:.3}"),
        }
    }

    fn goal(self) -> Option<Goal> {
        match self {
            Metric::BulkCpu => Some(Goal::AtMost(0.4)),
            Metric::BulkGbpsCapped => Some(Goal::AtLeast(2.0)),
            Metric::BulkVsDirect => Some(Goal::ValueAtLeast(0.6)),
            Metric::RateCpu => Some(Goal::AtMost(0.8)),
            Metric::RateCapped => Some(Goal::AtLeast(1.25)),
            Metric::LatencyP99 => Some(Goal::AtMost(1.0)),
            Metric::IdleRss => Some(Goal::AtMost(1.0)),
            Metric::IdlePipes => Some(Goal::ValueAtMost(PIPES_PER_TUNNEL_NONE)),
            _ => None,
        }
    }
}

/// Pipe descriptors per idle tunnel that still count as none: a pool growing by a few
/// pipes while the second half of the tunnels opens, not one pipe per tunnel (which is 2
/// descriptors, 4 with a pipe per direction).
const PIPES_PER_TUNNEL_NONE: f64 = 0.05;

/// The egress/peer pairs the table gives ratios for; the first carries the goals.
const PAIRS: [(Kind, Kind); 3] = [
    (Kind::EgressSni, Kind::NginxSni),
    (Kind::EgressConnect, Kind::TinyproxyConnect),
    (Kind::EgressConnect, Kind::SquidConnect),
];

/// Every value measured, by metric, contender and round.
#[derive(Debug)]
pub(crate) struct Results {
    rounds: usize,
    values: BTreeMap<(Metric, Kind), Vec<Option<f64>>>,
    problems: Vec<(Kind, String)>,
}

impl Results {
    pub(crate) fn new(rounds: usize) -> Self {
        Self {
            rounds,
            values: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn record(&mut self, round: usize, metric: Metric, kind: Kind, value: f64) {
        if !value.is_finite() {
            return;
        }
        let values = self
            .values
            .entry((metric, kind))
            .or_insert_with(|| vec![None; self.rounds]);
        if let Some(slot) = values.get_mut(round) {
            *slot = Some(value);
        }
    }

    pub(crate) fn problem(&mut self, kind: Kind, problem: String) {
        self.problems.push((kind, problem));
    }

    /// Every problem, and whom it is about.
    pub(crate) fn problems(&self) -> &[(Kind, String)] {
        &self.problems
    }

    fn get(&self, metric: Metric, kind: Kind) -> &[Option<f64>] {
        self.values
            .get(&(metric, kind))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Fills in each proxy's per-round bulk throughput over direct's.
    pub(crate) fn derive(&mut self) {
        let direct = self.get(Metric::BulkGbps, Kind::Direct).to_vec();
        for kind in Kind::ALL.into_iter().filter(|&k| k != Kind::Direct) {
            let proxied = self.get(Metric::BulkGbps, kind).to_vec();
            for (round, (p, d)) in proxied.iter().zip(&direct).enumerate() {
                if let (Some(p), Some(d)) = (p, d) {
                    if *d > 0.0 {
                        self.record(round, Metric::BulkVsDirect, kind, p / d);
                    }
                }
            }
        }
    }

    fn median_value(&self, metric: Metric, kind: Kind) -> Option<f64> {
        median(self.get(metric, kind).iter().flatten().copied().collect())
    }

    /// Per-round ratios a/b, where both were measured.
    fn ratios(&self, metric: Metric, a: Kind, b: Kind) -> Vec<f64> {
        self.get(metric, a)
            .iter()
            .zip(self.get(metric, b))
            .filter_map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) if *y > 0.0 => Some(x / y),
                _ => None,
            })
            .collect()
    }

    /// The table in Markdown, with its legend, for the contenders that ran.
    pub(crate) fn table(&self, ran: &[Kind], latency_rate: u32) -> String {
        let present = |k: Kind| ran.contains(&k);
        let mut columns: Vec<Column> = Vec::new();
        for kind in Kind::ALL.into_iter().filter(|&k| present(k)) {
            columns.push(Column::Value(kind));
            if let Some(&(a, b)) = PAIRS.iter().find(|(_, b)| *b == kind) {
                if present(a) {
                    columns.push(Column::Ratio(a, b));
                    if b == Kind::NginxSni {
                        columns.push(Column::Goal);
                    }
                }
            }
        }
        if !columns.iter().any(|c| matches!(c, Column::Goal)) {
            columns.push(Column::Goal);
        }
        let mut out = String::new();
        out.push_str("| metric |");
        for column in &columns {
            let _ = match column {
                Column::Value(kind) => write!(out, " {kind} |"),
                Column::Ratio(a, b) => write!(out, " {} / {} |", short(*a), short(*b)),
                Column::Goal => write!(out, " goal (egress-sni) |"),
            };
        }
        out.push_str("\n|---|");
        for column in &columns {
            out.push_str(match column {
                Column::Value(_) | Column::Ratio(..) => "---:|",
                Column::Goal => "---|",
            });
        }
        out.push('\n');
        for metric in Metric::ALL {
            if !ran
                .iter()
                .any(|&k| !self.get(metric, k).iter().all(Option::is_none))
            {
                continue;
            }
            let _ = write!(out, "| {} |", metric.label(latency_rate));
            for column in &columns {
                let cell = match column {
                    Column::Value(kind) => self
                        .median_value(metric, *kind)
                        .map(|v| metric.format(v))
                        .unwrap_or_else(|| "—".to_owned()),
                    Column::Ratio(a, b) => {
                        if metric == Metric::BulkVsDirect || metric == Metric::IdlePipes {
                            "—".to_owned()
                        } else {
                            ratio_cell(&self.ratios(metric, *a, *b))
                        }
                    }
                    Column::Goal => self.goal_cell(metric),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out
    }

    fn goal_cell(&self, metric: Metric) -> String {
        let Some(goal) = metric.goal() else {
            return String::new();
        };
        let (text, met) = match goal {
            Goal::AtMost(x) => (
                format!("≤ {x}x"),
                median(self.ratios(metric, Kind::EgressSni, Kind::NginxSni)).map(|r| r <= x),
            ),
            Goal::AtLeast(x) => (
                format!("≥ {x}x"),
                median(self.ratios(metric, Kind::EgressSni, Kind::NginxSni)).map(|r| r >= x),
            ),
            Goal::ValueAtLeast(x) => (
                format!("≥ {x}x direct"),
                self.median_value(metric, Kind::EgressSni).map(|v| v >= x),
            ),
            Goal::ValueAtMost(x) => (
                format!("< {x}"),
                self.median_value(metric, Kind::EgressSni).map(|v| v <= x),
            ),
        };
        match met {
            Some(true) => format!("{text}: met"),
            Some(false) => format!("{text}: **not met**"),
            None => format!("{text}: n/a"),
        }
    }

    /// Every value of every round, for the report file.
    pub(crate) fn raw(&self, ran: &[Kind], latency_rate: u32) -> String {
        let mut out = String::new();
        for metric in Metric::ALL {
            for &kind in ran {
                let values = self.get(metric, kind);
                if values.iter().all(Option::is_none) {
                    continue;
                }
                let cells: Vec<String> = values
                    .iter()
                    .map(|v| {
                        v.map(|v| metric.format(v))
                            .unwrap_or_else(|| "—".to_owned())
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "- {} / {kind}: {}",
                    metric.label(latency_rate),
                    cells.join(", ")
                );
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Column {
    Value(Kind),
    Ratio(Kind, Kind),
    Goal,
}

/// Column-header names for the ratio columns.
fn short(kind: Kind) -> &'static str {
    match kind {
        Kind::Direct => "direct",
        Kind::EgressSni | Kind::EgressConnect => "egress",
        Kind::NginxSni => "nginx",
        Kind::TinyproxyConnect => "tinyproxy",
        Kind::SquidConnect => "squid",
    }
}

/// "0.35x (0.31–0.40)": the median of the per-round ratios and their range.
fn ratio_cell(ratios: &[f64]) -> String {
    let Some(mid) = median(ratios.to_vec()) else {
        return "—".to_owned();
    };
    if ratios.len() == 1 {
        return format!("{mid:.2}x");
    }
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{mid:.2}x ({low:.2}–{high:.2})")
}

/// The median (the mean of the middle two for an even count).
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The value below which `q` (0 to 1) of `sorted` lies (nearest rank).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// What the rows mean, printed under the table.
pub(crate) fn legend(latency_rate: u32, rate_clients: usize) -> String {
    format!(
        "\
Each cell is the median across rounds; a ratio cell is the median of the per-round ratios
egress / peer (with their range). \"capped\": the proxy's cgroup gets 50 ms of CPU per 100 ms.

- bulk: one tunnel moving N bytes each way at once; Gbit/s = bytes moved both ways x 8 / wall
  time (connect to last byte received at both ends). Proxy CPU s/GiB = CPU time of the
  proxy's cgroup / GiB moved (both ways).
- rate: {rate_clients} clients in a closed loop (connect, [CONNECT,] ClientHello, 1 KiB reply,
  upstream closes, client closes), proxy capped; CPU µs/conn over the same run (uncapped
  when there is no cgroup). direct has no proxy to cap: the load side's own limit.
- latency: open loop at {latency_rate} connections/s, proxy uncapped; connect to last byte of
  the reply.
- idle: tunnels opened (hello answered), held 1 s, all checked alive by an echo; RSS and
  descriptors of the proxy's processes (fresh process) minus before the tunnels, per tunnel.
  The tunnels open in two halves; pipe fds/tunnel = pipe descriptors added by the second
  half / its tunnels (a pipe held per tunnel shows as 2 or 4, a pool's cached pipes as 0).
"
    )
}
