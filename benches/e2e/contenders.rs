//! The contenders: a direct connection, egress on both paths, nginx's stream module for SNI,
//! tinyproxy and squid for CONNECT. Each proxy gets its config in a temporary directory,
//! one worker, no per-connection logging, and its own loopback address.

use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::Result;
use crate::configs::{
    egress_connect_config, egress_sni_config, hosts_file, nginx_config, squid_config,
    tinyproxy_config,
};
use crate::cpu::{CpuGroup, Hierarchy};
use crate::load::{Client, Route};
use crate::process::{Launch, Proxy};
use crate::wire::{SERVER_NAME, connect_request};

/// Every contender, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Direct,
    EgressSni,
    NginxSni,
    EgressConnect,
    TinyproxyConnect,
    SquidConnect,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Direct,
        Kind::EgressSni,
        Kind::NginxSni,
        Kind::EgressConnect,
        Kind::TinyproxyConnect,
        Kind::SquidConnect,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::EgressSni => "egress-sni",
            Kind::NginxSni => "nginx-sni",
            Kind::EgressConnect => "egress-connect",
            Kind::TinyproxyConnect => "tinyproxy-connect",
            Kind::SquidConnect => "squid-connect",
        }
    }

    /// The loopback address the contender listens on (the upstream is on 127.0.0.1).
    fn address(self) -> Ipv4Addr {
        match self {
            Kind::Direct => Ipv4Addr::new(127, 0, 0, 1),
            Kind::NginxSni => Ipv4Addr::new(127, 0, 0, 2),
            Kind::EgressSni => Ipv4Addr::new(127, 0, 0, 3),
            Kind::EgressConnect => Ipv4Addr::new(127, 0, 0, 4),
            Kind::TinyproxyConnect => Ipv4Addr::new(127, 0, 0, 5),
            Kind::SquidConnect => Ipv4Addr::new(127, 0, 0, 6),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One contender: how to reach the upstream through it, and its process (none for direct).
#[derive(Debug)]
pub(crate) struct Contender {
    pub(crate) kind: Kind,
    pub(crate) client: Arc<Client>,
    pub(crate) proxy: Option<Proxy>,
    /// The version it reports, for the report's header.
    pub(crate) version: String,
    /// Anything about its setup the report must say.
    pub(crate) note: Option<String>,
}

/// What every contender's setup needs.
#[derive(Debug)]
pub(crate) struct Setup {
    /// Directory for configs, logs and pid files; removed at the end.
    pub(crate) dir: PathBuf,
    pub(crate) upstream: SocketAddr,
    pub(crate) dns: SocketAddr,
    pub(crate) egress: PathBuf,
    pub(crate) hello: Arc<[u8]>,
    pub(crate) reply: Arc<[u8]>,
    /// Where cgroups go; None: no accounting by cgroup, no capping.
    pub(crate) hierarchy: Option<Hierarchy>,
    /// Pin proxies with taskset to this CPU.
    pub(crate) proxy_cpu: Option<usize>,
    /// The open-file limit the proxies inherit (and are told to use).
    pub(crate) open_files: u64,
    /// egress relays with its userspace copy instead of splice(2).
    pub(crate) egress_no_splice: bool,
}

/// Why a contender is not in the run.
#[derive(Debug)]
pub(crate) struct Skipped {
    pub(crate) kind: Kind,
    pub(crate) reason: String,
}

/// Sets up `kind`: writes its config and creates its cgroup; the process is not started.
pub(crate) fn prepare(kind: Kind, setup: &Setup) -> std::result::Result<Contender, Skipped> {
    let skip = |reason: String| Skipped { kind, reason };
    let port = setup.upstream.port();
    let sni = SocketAddr::from((kind.address(), port));
    let direct_client = |addr| {
        Arc::new(Client::new(
            Route::Tls(addr),
            setup.hello.clone(),
            setup.reply.clone(),
        ))
    };
    let mut note = None;
    let (launch, client, version) = match kind {
        Kind::Direct => {
            return Ok(Contender {
                kind,
                client: direct_client(setup.upstream),
                proxy: None,
                version: String::new(),
                note: None,
            });
        }
        Kind::EgressSni | Kind::EgressConnect => {
            let (config, client) = if kind == Kind::EgressSni {
                (egress_sni_config(setup, sni), direct_client(sni))
            } else {
                let listen = free_port(kind.address()).map_err(|e| skip(e.to_string()))?;
                (
                    egress_connect_config(setup, listen),
                    connect_client(setup, listen, &format!("{SERVER_NAME}:{port}")),
                )
            };
            let path = setup.dir.join(format!("{kind}.toml"));
            fs::write(&path, config).map_err(|e| skip(format!("cannot write its config: {e}")))?;
            let launch = Launch {
                program: setup.egress.clone(),
                args: vec!["--config".to_owned(), path.display().to_string()],
                env: vec![("EGRESS_LOG".to_owned(), "warn".to_owned())],
                hosts: None,
                cpu: setup.proxy_cpu,
                logs: Vec::new(),
            };
            (launch, client, version_of(&setup.egress, &["--version"]))
        }
        Kind::NginxSni => {
            let nginx =
                find_program("nginx").ok_or_else(|| skip("nginx is not installed".to_owned()))?;
            let stream = stream_module(&nginx).map_err(skip)?;
            let dir = setup.dir.join("nginx");
            fs::create_dir_all(&dir).map_err(|e| skip(e.to_string()))?;
            let config = nginx_config(setup, &dir, sni, stream.as_deref());
            let path = dir.join("nginx.conf");
            fs::write(&path, config).map_err(|e| skip(format!("cannot write its config: {e}")))?;
            let error_log = dir.join("error.log");
            let launch = Launch {
                program: nginx.clone(),
                args: vec![
                    "-p".to_owned(),
                    dir.display().to_string(),
                    "-c".to_owned(),
                    path.display().to_string(),
                    "-e".to_owned(),
                    error_log.display().to_string(),
                ],
                env: Vec::new(),
                hosts: None,
                cpu: setup.proxy_cpu,
                logs: vec![error_log],
            };
            (launch, direct_client(sni), version_of(&nginx, &["-v"]))
        }
        Kind::TinyproxyConnect => {
            let tinyproxy = find_program("tinyproxy")
                .ok_or_else(|| skip("tinyproxy is not installed".to_owned()))?;
            let listen = free_port(kind.address()).map_err(|e| skip(e.to_string()))?;
            let path = setup.dir.join("tinyproxy.conf");
            fs::write(&path, tinyproxy_config(listen, port))
                .map_err(|e| skip(format!("cannot write its config: {e}")))?;
            // tinyproxy resolves with getaddrinfo: give it a hosts file with bench.test in
            // its own mount namespace, or fall back to an address literal.
            let (hosts, authority) = if find_program("unshare").is_some() && is_root() {
                (
                    Some(hosts_file(setup).map_err(|e| skip(e.to_string()))?),
                    format!("{SERVER_NAME}:{port}"),
                )
            } else {
                note = Some(format!(
                    "tinyproxy-connect: CONNECT {} (an address: no unshare or not root, so no hosts file for it)",
                    setup.upstream
                ));
                (None, setup.upstream.to_string())
            };
            let launch = Launch {
                program: tinyproxy.clone(),
                args: vec!["-d".to_owned(), "-c".to_owned(), path.display().to_string()],
                env: Vec::new(),
                hosts,
                cpu: setup.proxy_cpu,
                logs: Vec::new(),
            };
            (
                launch,
                connect_client(setup, listen, &authority),
                version_of(&tinyproxy, &["-v"]),
            )
        }
        Kind::SquidConnect => {
            let squid =
                find_program("squid").ok_or_else(|| skip("squid is not installed".to_owned()))?;
            let listen = free_port(kind.address()).map_err(|e| skip(e.to_string()))?;
            let dir = setup.dir.join("squid");
            fs::create_dir_all(&dir).map_err(|e| skip(e.to_string()))?;
            // squid drops root for its cache_effective_user, which must write here.
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
                .map_err(|e| skip(e.to_string()))?;
            let hosts = hosts_file(setup).map_err(|e| skip(e.to_string()))?;
            let path = dir.join("squid.conf");
            fs::write(&path, squid_config(setup, &dir, &hosts, listen))
                .map_err(|e| skip(format!("cannot write its config: {e}")))?;
            let launch = Launch {
                program: squid.clone(),
                args: vec!["-N".to_owned(), "-f".to_owned(), path.display().to_string()],
                env: Vec::new(),
                hosts: None,
                cpu: setup.proxy_cpu,
                logs: vec![dir.join("cache.log")],
            };
            (
                launch,
                connect_client(setup, listen, &format!("{SERVER_NAME}:{port}")),
                version_of(&squid, &["-v"]),
            )
        }
    };
    let group = match &setup.hierarchy {
        Some(hierarchy) => {
            let name = format!("egress-e2e-{}-{kind}", std::process::id());
            Some(CpuGroup::create(hierarchy, &name).map_err(|e| skip(e.to_string()))?)
        }
        None => None,
    };
    Ok(Contender {
        kind,
        client,
        proxy: Some(Proxy::new(kind.name(), launch, setup.dir.clone(), group)),
        version,
        note,
    })
}

fn connect_client(setup: &Setup, proxy: SocketAddr, authority: &str) -> Arc<Client> {
    let route = Route::Connect {
        proxy,
        request: connect_request(authority).into(),
    };
    Arc::new(Client::new(route, setup.hello.clone(), setup.reply.clone()))
}

/// The stream module to load: None when nginx has it built in.
fn stream_module(nginx: &Path) -> std::result::Result<Option<PathBuf>, String> {
    let configure = Command::new(nginx)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    if configure
        .split_whitespace()
        .any(|flag| flag == "--with-stream")
    {
        return Ok(None);
    }
    let candidates = [
        "/usr/lib/nginx/modules/ngx_stream_module.so",
        "/usr/lib64/nginx/modules/ngx_stream_module.so",
        "/usr/share/nginx/modules/ngx_stream_module.so",
        "/etc/nginx/modules/ngx_stream_module.so",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .map(Some)
        .ok_or_else(|| "nginx has no stream module (install libnginx-mod-stream)".to_owned())
}

/// A port free on `addr` now (bound, then released).
fn free_port(addr: Ipv4Addr) -> Result<SocketAddr> {
    let listener = TcpListener::bind((addr, 0))?;
    Ok(listener.local_addr()?)
}

/// `name` on PATH or in the sbin directories (nginx and squid live there).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The first line a program prints for `args` (stdout or stderr).
fn version_of(program: &Path, args: &[&str]) -> String {
    let Ok(output) = Command::new(program).args(args).output() else {
        return String::new();
    };
    let text = [output.stdout, output.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned()
}
