//! What the run needs from the machine it runs on: the release egress binary, a high
//! open-file limit, the two CPUs split between proxies and load, a scratch directory, and a
//! one-line description of the machine for the report.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;
use crate::contenders::find_program;

/// Open-file limit the harness sets for itself and its proxies: 10 000 idle tunnels take
/// 20 000 descriptors in the harness (both ends) and as many in a proxy.
const OPEN_FILES: u64 = 100_000;

/// Steal and total ticks of all CPUs, from the first line of /proc/stat.
pub(crate) fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is also
    // counted in user.
    let steal = *fields.get(7)?;
    let total = fields.iter().take(8).sum();
    Some((steal, total))
}

/// The workspace root: the parent of this package.
pub(crate) fn workspace_root() -> PathBuf {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    package.parent().unwrap_or(package).to_path_buf()
}

/// CARGO_TARGET_DIR (relative to the workspace), else `<workspace>/target`.
pub(crate) fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Builds the release `egress` binary and returns its path.
pub(crate) fn build_egress(workspace: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("e2e: {cargo} build --release -p egress-bin");
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "egress-bin"])
        .current_dir(workspace)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release -p egress-bin failed: {status}").into());
    }
    let binary = target_dir(workspace).join("release").join("egress");
    if !binary.exists() {
        return Err(format!("{} is missing after the build", binary.display()).into());
    }
    Ok(binary)
}

/// Raises this process's open-file limit (inherited by the proxies) to [`OPEN_FILES`], or
/// as far as allowed, and returns the limit in force.
pub(crate) fn raise_open_files(notes: &mut Vec<String>) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = Rlimit {
        current: Some(OPEN_FILES),
        maximum: Some(limit.maximum.map_or(OPEN_FILES, |m| m.max(OPEN_FILES))),
    };
    if setrlimit(Resource::Nofile, wanted).is_err() {
        // Without CAP_SYS_RESOURCE the hard limit is as far as we may go.
        let hard = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let _ = setrlimit(Resource::Nofile, hard);
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(OPEN_FILES);
    if now < OPEN_FILES {
        notes.push(format!(
            "open-file limit {now}: could not raise it to {OPEN_FILES} (no CAP_SYS_RESOURCE)"
        ));
    }
    now
}

/// Pins this process to the second allowed CPU and returns the first, for the proxies. With
/// fewer than two CPUs, or without taskset, nothing is pinned.
pub(crate) fn pin(notes: &mut Vec<String>) -> Option<usize> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let allowed = match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => Vec::new(),
    };
    let (Some(&proxy), Some(&load)) = (allowed.first(), allowed.get(1)) else {
        notes.push("fewer than 2 CPUs: nothing pinned".to_owned());
        return None;
    };
    let mut set = CpuSet::new();
    set.set(load);
    if let Err(e) = sched_setaffinity(None, &set) {
        notes.push(format!("cannot pin the load generator to CPU {load}: {e}"));
    }
    if find_program("taskset").is_none() {
        notes.push("taskset is missing: proxies not pinned".to_owned());
        return None;
    }
    if proxy != 0 || load != 1 {
        notes.push(format!(
            "proxies on CPU {proxy}, load generator on CPU {load}"
        ));
    }
    Some(proxy)
}

/// One line describing the machine: CPU model, cores, memory, kernel, date, rustc, egress
/// commit.
pub(crate) fn machine(workspace: &Path) -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| format!("{} GiB", (kib + (1 << 19)) >> 20))
        .unwrap_or_default();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"], workspace);
    let rustc = command_line("rustc", &["--version"], workspace);
    let commit = command_line("git", &["rev-parse", "--short", "HEAD"], workspace);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(workspace)
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    format!(
        "{model}, {cores} cores, {memory}, Linux {}; {date}; {rustc}; egress at {commit}{}",
        kernel.trim(),
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        }
    )
}

/// The first line of a command's output, or "?".
fn command_line(program: &str, args: &[&str], dir: &Path) -> String {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .map(|o| first_line(&String::from_utf8_lossy(&o.stdout)).to_owned())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "?".to_owned())
}

pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

/// The run's directory for configs and logs, removed when dropped.
#[derive(Debug)]
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
}

impl TempDir {
    pub(crate) fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("egress-e2e-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
