//! CPU accounting and capping of a proxy: one cgroup per proxy (v1 `cpu` + `cpuacct`, or
//! v2 with the `cpu` controller) whose usage counter covers every process the proxy forks,
//! and whose quota caps it at half a CPU. Without a writable cgroup, the kernel's per-process
//! counters of the process tree (`/proc/<pid>/stat`) stand in, and nothing can be capped.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Result;

/// The quota period and, capped, the quota: 50 ms of CPU per 100 ms, half a CPU.
const PERIOD_US: u64 = 100_000;
const QUOTA_US: u64 = 50_000;

/// Where the cgroup controllers are mounted.
#[derive(Debug, Clone)]
pub(crate) enum Hierarchy {
    /// cgroup v1: the `cpu` (quota) and `cpuacct` (usage) hierarchies, possibly one mount.
    V1 { cpu: PathBuf, cpuacct: PathBuf },
    /// cgroup v2 with the `cpu` controller available at this root.
    V2 { root: PathBuf },
}

impl Hierarchy {
    /// Finds the mounted cpu controller, preferring v1 (on a hybrid machine it holds `cpu`).
    pub(crate) fn detect() -> std::result::Result<Self, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mut cpu = None;
        let mut cpuacct = None;
        let mut v2 = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or_default();
            let options = right.nth(1).unwrap_or_default();
            match fstype {
                "cgroup" => {
                    for option in options.split(',') {
                        match option {
                            "cpu" => cpu = Some(PathBuf::from(mount_point)),
                            "cpuacct" => cpuacct = Some(PathBuf::from(mount_point)),
                            _ => {}
                        }
                    }
                }
                "cgroup2" => v2 = Some(PathBuf::from(mount_point)),
                _ => {}
            }
        }
        if let (Some(cpu), Some(cpuacct)) = (cpu, cpuacct) {
            return Ok(Self::V1 { cpu, cpuacct });
        }
        if let Some(root) = v2 {
            let controllers =
                fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "cpu") {
                return Ok(Self::V2 { root });
            }
            return Err(format!(
                "the cgroup2 hierarchy at {} has no cpu controller",
                root.display()
            ));
        }
        Err("no cgroup hierarchy with the cpu controller is mounted".to_owned())
    }

    /// Creates, caps, reads and removes a probe group: proves the hierarchy is writable
    /// before the run relies on it.
    pub(crate) fn probe(&self) -> Result<()> {
        let group = CpuGroup::create(self, &format!("egress-e2e-{}-probe", std::process::id()))?;
        group.set_capped(true)?;
        group.set_capped(false)?;
        group.usage()?;
        Ok(())
    }

    /// "cgroup v1" or "cgroup v2", for the report.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::V1 { cpu, cpuacct } => {
                format!("cgroup v1 ({}, {})", cpu.display(), cpuacct.display())
            }
            Self::V2 { root } => format!("cgroup v2 ({})", root.display()),
        }
    }
}

/// One proxy's cgroup. Removed when dropped (its processes must have exited by then).
#[derive(Debug)]
pub(crate) struct CpuGroup {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    V1 { cpu: PathBuf, cpuacct: PathBuf },
    V2 { dir: PathBuf },
}

impl CpuGroup {
    /// Creates an empty group named `name` under the hierarchy's root, uncapped.
    pub(crate) fn create(hierarchy: &Hierarchy, name: &str) -> Result<Self> {
        let group = match hierarchy {
            Hierarchy::V1 { cpu, cpuacct } => {
                let cpu = cpu.join(name);
                let cpuacct = cpuacct.join(name);
                make_dir(&cpu)?;
                if cpuacct != cpu {
                    make_dir(&cpuacct)?;
                }
                Self {
                    kind: Kind::V1 { cpu, cpuacct },
                }
            }
            Hierarchy::V2 { root } => {
                let control = root.join("cgroup.subtree_control");
                let enabled = fs::read_to_string(&control).unwrap_or_default();
                if !enabled.split_whitespace().any(|c| c == "cpu") {
                    write(&control, "+cpu")?;
                }
                let dir = root.join(name);
                make_dir(&dir)?;
                Self {
                    kind: Kind::V2 { dir },
                }
            }
        };
        group.set_capped(false)?;
        Ok(group)
    }

    /// The `cgroup.procs` files a process writes its pid into to join the group.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        match &self.kind {
            Kind::V1 { cpu, cpuacct } if cpu == cpuacct => vec![cpu.join("cgroup.procs")],
            Kind::V1 { cpu, cpuacct } => {
                vec![cpu.join("cgroup.procs"), cpuacct.join("cgroup.procs")]
            }
            Kind::V2 { dir } => vec![dir.join("cgroup.procs")],
        }
    }

    /// Every process in the group now.
    pub(crate) fn pids(&self) -> Vec<i32> {
        let procs = match &self.kind {
            Kind::V1 { cpuacct, .. } => cpuacct.join("cgroup.procs"),
            Kind::V2 { dir } => dir.join("cgroup.procs"),
        };
        fs::read_to_string(procs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// CPU time used by every process that has been in the group, user and system.
    pub(crate) fn usage(&self) -> Result<Duration> {
        match &self.kind {
            Kind::V1 { cpuacct, .. } => {
                let path = cpuacct.join("cpuacct.usage");
                let ns: u64 = read(&path)?.trim().parse()?;
                Ok(Duration::from_nanos(ns))
            }
            Kind::V2 { dir } => {
                let path = dir.join("cpu.stat");
                let stat = read(&path)?;
                let usec = stat
                    .lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .ok_or_else(|| format!("no usage_usec in {}", path.display()))?;
                Ok(Duration::from_micros(usec.trim().parse()?))
            }
        }
    }

    /// Caps the group at half a CPU (50 ms per 100 ms), or lifts the cap.
    pub(crate) fn set_capped(&self, capped: bool) -> Result<()> {
        match &self.kind {
            Kind::V1 { cpu, .. } => {
                write(&cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                let quota = if capped {
                    QUOTA_US.to_string()
                } else {
                    "-1".to_owned()
                };
                write(&cpu.join("cpu.cfs_quota_us"), &quota)
            }
            Kind::V2 { dir } => {
                let max = if capped {
                    format!("{QUOTA_US} {PERIOD_US}")
                } else {
                    format!("max {PERIOD_US}")
                };
                write(&dir.join("cpu.max"), &max)
            }
        }
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        let dirs = match &self.kind {
            Kind::V1 { cpu, cpuacct } if cpu == cpuacct => vec![cpu.clone()],
            Kind::V1 { cpu, cpuacct } => vec![cpu.clone(), cpuacct.clone()],
            Kind::V2 { dir } => vec![dir.clone()],
        };
        for dir in dirs {
            // A group can only be removed once empty; a killed process leaves it a moment
            // after it is reaped.
            for _ in 0..50 {
                if fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn make_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        // Left by an interrupted run: reuse it (it is empty, or its processes are ours).
        return Ok(());
    }
    fs::create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()).into())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value)
        .map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()).into())
}

/// `pid` and all its descendants, from the parent links in `/proc/*/stat`.
pub(crate) fn process_tree(pid: i32) -> Vec<i32> {
    let mut parents = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(stat) = Stat::read(child) {
                parents.push((child, stat.ppid));
            }
        }
    }
    let mut tree = vec![pid];
    // Each pass adds the children of the processes found so far; a tree is at most as deep
    // as the number of processes.
    for _ in 0..parents.len() {
        let before = tree.len();
        for &(child, parent) in &parents {
            if tree.contains(&parent) && !tree.contains(&child) {
                tree.push(child);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    tree
}

/// CPU time of `pid`'s process tree: user and system time of each live process, plus the
/// time of the children it has reaped.
pub(crate) fn tree_usage(pid: i32) -> Duration {
    let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
    let mut ticks = 0u64;
    for member in process_tree(pid) {
        if let Some(stat) = Stat::read(member) {
            ticks += stat.utime + stat.stime;
            if member == pid {
                ticks += stat.cutime + stat.cstime;
            }
        }
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64)
}

/// The fields of `/proc/<pid>/stat` the harness uses.
struct Stat {
    ppid: i32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

impl Stat {
    fn read(pid: i32) -> Option<Self> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let (_, rest) = text.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Counting from the state field (3 in proc(5)): ppid is 4, utime 14 .. cstime 17.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        Some(Self {
            ppid: fields.get(1)?.parse().ok()?,
            utime: field(14)?,
            stime: field(15)?,
            cutime: field(16)?,
            cstime: field(17)?,
        })
    }
}
