//! A proxy under test as an external process: started pinned to CPU 0 inside its own
//! cgroup, checked by relaying one connection before it is measured, measured (CPU, memory,
//! descriptors) through the kernel, and stopped with everything it forked.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::time::Instant;

use crate::Result;
use crate::cpu::{self, CpuGroup};
use crate::load::Client;

/// The shell that starts every proxy: it moves itself into the proxy's cgroup, optionally
/// enters a private mount namespace with its own /etc/hosts (for a proxy that resolves with
/// the C library only), then becomes the proxy. One pid all along, so the cgroup holds the
/// proxy from its first instruction and everything it forks.
const LAUNCHER: &str = r#"for f in $EGRESS_E2E_PROCS; do echo $$ > "$f" || exit 97; done
if [ -n "$EGRESS_E2E_HOSTS" ]; then
  exec unshare --mount sh -c 'mount --bind "$EGRESS_E2E_HOSTS" /etc/hosts || exit 98; exec "$@"' sh "$@"
fi
exec "$@""#;

/// Time allowed from spawn to the first relayed connection.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Time allowed for a graceful exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// How to start one proxy.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// A hosts file to mount over /etc/hosts in the proxy's own mount namespace.
    pub(crate) hosts: Option<PathBuf>,
    /// Pin to this CPU with taskset (None: taskset is missing).
    pub(crate) cpu: Option<usize>,
    /// Files whose tail explains a failure to start (besides stdout and stderr).
    pub(crate) logs: Vec<PathBuf>,
}

/// Memory and descriptors of a proxy's processes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Footprint {
    pub(crate) rss_kib: u64,
    pub(crate) fds: u64,
    pub(crate) pipes: u64,
    pub(crate) processes: usize,
}

/// A proxy process (and its children). Stopped when dropped.
#[derive(Debug)]
pub(crate) struct Proxy {
    name: &'static str,
    launch: Launch,
    dir: PathBuf,
    group: Option<CpuGroup>,
    child: Option<Child>,
    starts: u32,
}

impl Proxy {
    /// A proxy that is not running yet; `dir` holds its output files.
    pub(crate) fn new(
        name: &'static str,
        launch: Launch,
        dir: PathBuf,
        group: Option<CpuGroup>,
    ) -> Self {
        Self {
            name,
            launch,
            dir,
            group,
            child: None,
            starts: 0,
        }
    }

    /// Whether the main process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Whether its CPU can be capped (it has a cgroup).
    pub(crate) fn can_cap(&self) -> bool {
        self.group.is_some()
    }

    fn stdout_path(&self) -> PathBuf {
        self.dir.join(format!("{}.stdout", self.name))
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.join(format!("{}.stderr", self.name))
    }

    /// Spawns the process. [`Proxy::wait_ready`] then waits until it relays.
    pub(crate) fn spawn(&mut self) -> Result<()> {
        self.stop();
        self.starts += 1;
        let procs = self
            .group
            .as_ref()
            .map(|g| {
                g.procs_files()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let hosts = self
            .launch
            .hosts
            .as_ref()
            .map(|h| h.display().to_string())
            .unwrap_or_default();
        let mut command = Command::new("sh");
        command.arg("-c").arg(LAUNCHER).arg("sh");
        if let Some(cpu) = self.launch.cpu {
            command.arg("taskset").arg("-c").arg(cpu.to_string());
        }
        command
            .arg(&self.launch.program)
            .args(&self.launch.args)
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .env("EGRESS_E2E_PROCS", procs)
            .env("EGRESS_E2E_HOSTS", hosts)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(append(&self.stdout_path())?)
            .stderr(append(&self.stderr_path())?);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until `client` gets a connection through the proxy (the upstream must be on
    /// [`crate::upstream::Plan::Close`]). Fails with the proxy's output if it exits or does
    /// not relay within 15 s.
    pub(crate) async fn wait_ready(&mut self, client: &Client) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("not tried");
        for _ in 0..1_000 {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    let meaning = match status.code() {
                        Some(97) => " (could not join its cgroup)",
                        Some(98) => " (could not mount its hosts file)",
                        _ => "",
                    };
                    return Err(format!(
                        "{} exited while starting: {status}{meaning}\n{}",
                        self.name,
                        self.output()
                    )
                    .into());
                }
            } else {
                return Err(format!("{} is not running", self.name).into());
            }
            match client.cycle().await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "{} did not relay a connection within {READY_TIMEOUT:?} (last error: {last})\n{}",
            self.name,
            self.output()
        )
        .into())
    }

    /// The tail of the proxy's stdout, stderr and log files.
    pub(crate) fn output(&self) -> String {
        let mut out = String::new();
        let files = [self.stdout_path(), self.stderr_path()];
        for path in files.iter().chain(&self.launch.logs) {
            let text = fs::read_to_string(path).unwrap_or_default();
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let _ = writeln!(out, "--- {} (last lines)", path.display());
            for line in tail.iter().rev() {
                let _ = writeln!(out, "{line}");
            }
        }
        if out.is_empty() {
            out.push_str("(no output)");
        }
        out
    }

    /// The lines of its output and logs, over every start, that report a warning or an
    /// error (a quiet proxy has none: no per-connection lines are logged).
    pub(crate) fn complaints(&self) -> Vec<String> {
        const WORDS: [&str; 6] = ["warn", "error", "alert", "crit", "fatal", "emerg"];
        let files = [self.stdout_path(), self.stderr_path()];
        files
            .iter()
            .chain(&self.launch.logs)
            .flat_map(|path| {
                fs::read_to_string(path)
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| {
                        let line = line.to_ascii_lowercase();
                        WORDS.iter().any(|word| line.contains(word))
                    })
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every process of the proxy now: its cgroup's, or its process tree.
    pub(crate) fn pids(&self) -> Vec<i32> {
        match (&self.group, &self.child) {
            (Some(group), _) => group.pids(),
            (None, Some(child)) => i32::try_from(child.id())
                .map(cpu::process_tree)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }

    /// CPU time used so far by the proxy's processes (cgroup), or by its live process tree.
    pub(crate) fn cpu_time(&self) -> Result<Duration> {
        match (&self.group, &self.child) {
            (Some(group), _) => group.usage(),
            (None, Some(child)) => Ok(cpu::tree_usage(i32::try_from(child.id())?)),
            (None, None) => Err(format!("{} is not running", self.name).into()),
        }
    }

    /// Caps the proxy at half a CPU until the guard is dropped.
    pub(crate) fn cap(&self) -> Result<Cap<'_>> {
        let group = self
            .group
            .as_ref()
            .ok_or_else(|| format!("{} has no cgroup to cap", self.name))?;
        group.set_capped(true)?;
        Ok(Cap { group })
    }

    /// Resident memory, open descriptors and pipe descriptors, summed over its processes.
    pub(crate) fn footprint(&self) -> Footprint {
        let mut footprint = Footprint::default();
        for pid in self.pids() {
            footprint.processes += 1;
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            footprint.rss_kib += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
            if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
                for fd in fds.flatten() {
                    footprint.fds += 1;
                    if fs::read_link(fd.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with("pipe:"))
                    {
                        footprint.pipes += 1;
                    }
                }
            }
        }
        footprint
    }

    /// Stops the proxy: SIGTERM to every process, SIGKILL to what is left after 3 s.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let signal_all = |pids: &[i32], signal: Signal| {
            for &pid in pids {
                if let Some(pid) = Pid::from_raw(pid) {
                    let _ = kill_process(pid, signal);
                }
            }
        };
        let root = i32::try_from(child.id()).unwrap_or(0);
        // Without a cgroup, the tree is taken now: once the root exits, its children are
        // re-parented and can no longer be found from it.
        let tree = match &self.group {
            Some(_) => Vec::new(),
            None => cpu::process_tree(root),
        };
        // The main process first: nginx's master stops its worker itself.
        signal_all(&[root], Signal::TERM);
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        for _ in 0..1_000 {
            if matches!(child.try_wait(), Ok(Some(_))) || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
        // Whatever remains: an orphaned worker, a process that ignored SIGTERM.
        let mut left = match &self.group {
            Some(group) => group.pids(),
            None => tree,
        };
        left.retain(|&p| p != root && fs::metadata(format!("/proc/{p}")).is_ok());
        signal_all(&left, Signal::KILL);
        // Killed processes that were not our children are reaped by init; wait for the
        // group to empty so that it can be removed.
        for _ in 0..100 {
            if self.group.as_ref().is_none_or(|g| g.pids().is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens `path` for appending (created if missing): a restarted proxy adds to its output.
fn append(path: &std::path::Path) -> std::io::Result<File> {
    File::options().create(true).append(true).open(path)
}

/// A proxy capped at half a CPU; the cap is lifted when this is dropped.
#[derive(Debug)]
pub(crate) struct Cap<'a> {
    group: &'a CpuGroup,
}

impl Drop for Cap<'_> {
    fn drop(&mut self) {
        let _ = self.group.set_capped(false);
    }
}

/// Iterations of the spinner's shell loop: about a minute of dash at most, far longer
/// than one latency run, which stops it sooner.
const SPIN_ITERATIONS: u64 = 20_000_000;

/// A busy loop at SCHED_IDLE priority on the proxies' CPU, run during the latency runs
/// only: it keeps that CPU out of the idle state, whose wake-up on a virtual machine takes
/// milliseconds and would otherwise set every proxy's tail latency. A proxy that wakes
/// preempts it at once; it is in no proxy's cgroup. Killed when dropped.
#[derive(Debug)]
pub(crate) struct Spinner {
    child: Child,
}

impl Spinner {
    pub(crate) fn start(cpu: usize) -> Result<Self> {
        let program = format!("i=0; while [ $i -lt {SPIN_ITERATIONS} ]; do i=$((i+1)); done");
        let child = Command::new("chrt")
            .args([
                "-i",
                "0",
                "taskset",
                "-c",
                &cpu.to_string(),
                "sh",
                "-c",
                &program,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the spinner: {e}"))?;
        Ok(Self { child })
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        // chrt and taskset exec: this pid is the shell loop itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
