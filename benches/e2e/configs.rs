//! The config files of the proxies under test, each as close to its defaults as the issue
//! allows: one worker, loopback only, the upstream's port only, no per-connection logging,
//! and the same answer for bench.test.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Result;
use crate::contenders::Setup;
use crate::wire::SERVER_NAME;

/// The shared parts of both egress configs: the in-process DNS server, IPv4 only like
/// nginx's `ipv6=off`, loopback re-opened, and a short shutdown.
fn egress_common(setup: &Setup) -> String {
    let relay = if setup.egress_no_splice {
        "\n[relay]\nsplice = false\n"
    } else {
        ""
    };
    format!(
        r#"[server]
shutdown_timeout = "1s"
{relay}
[resolver]
nameservers = ["{dns}"]
ip_family = "ipv4"

[policy]
allow_cidrs = ["127.0.0.0/8"]
"#,
        dns = setup.dns
    )
}

pub(crate) fn egress_sni_config(setup: &Setup, listen: SocketAddr) -> String {
    format!(
        r#"{common}
[[sni]]
listen = ["{listen}"]
upstream_port = "listener"
max_connections = 40000
"#,
        common = egress_common(setup)
    )
}

pub(crate) fn egress_connect_config(setup: &Setup, listen: SocketAddr) -> String {
    format!(
        r#"{common}
[[http]]
listen = ["{listen}"]
connect_ports = [{port}]
max_connections = 40000
"#,
        common = egress_common(setup),
        port = setup.upstream.port()
    )
}

/// nginx as the issue describes it: one worker, `ssl_preread` and the client's port, the
/// same DNS server, no access log (the stream module has none unless configured), and as
/// many connections as descriptors (two per tunnel).
pub(crate) fn nginx_config(
    setup: &Setup,
    dir: &Path,
    listen: SocketAddr,
    stream: Option<&Path>,
) -> String {
    let load = stream
        .map(|m| format!("load_module {};\n", m.display()))
        .unwrap_or_default();
    format!(
        r#"{load}worker_processes 1;
worker_rlimit_nofile {open_files};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections {connections};
}}

stream {{
    resolver {dns} ipv6=off valid=300s;
    server {{
        listen {listen};
        ssl_preread on;
        proxy_pass $ssl_preread_server_name:$server_port;
    }}
}}
"#,
        dir = dir.display(),
        dns = setup.dns,
        open_files = setup.open_files,
        connections = setup.open_files.min(40_000),
    )
}

/// tinyproxy: loopback only, CONNECT to the upstream's port, no log lines below critical.
pub(crate) fn tinyproxy_config(listen: SocketAddr, port: u16) -> String {
    format!(
        r#"Port {port_listen}
Listen {addr}
Timeout 600
MaxClients 20000
Allow 127.0.0.0/8
ConnectPort {port}
LogLevel Critical
DisableViaHeader Yes
"#,
        port_listen = listen.port(),
        addr = listen.ip(),
    )
}

/// squid: one worker, CONNECT to the upstream's port only, no cache, no access log,
/// names from our hosts file.
pub(crate) fn squid_config(setup: &Setup, dir: &Path, hosts: &Path, listen: SocketAddr) -> String {
    let port = setup.upstream.port();
    format!(
        r#"http_port {listen}
workers 1
acl bench_port port {port}
acl CONNECT method CONNECT
http_access deny CONNECT !bench_port
http_access allow all
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log {dir}/cache.log
pid_filename {dir}/squid.pid
coredump_dir {dir}
max_filedescriptors {open_files}
hosts_file {hosts}
pinger_enable off
shutdown_lifetime 0 seconds
logfile_rotate 0
"#,
        dir = dir.display(),
        hosts = hosts.display(),
        open_files = setup.open_files,
    )
}

/// A hosts file naming bench.test, for the CONNECT peers that do not use our DNS server.
pub(crate) fn hosts_file(setup: &Setup) -> Result<PathBuf> {
    let path = setup.dir.join("hosts");
    fs::write(
        &path,
        format!("127.0.0.1 localhost\n127.0.0.1 {SERVER_NAME}\n"),
    )?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    Ok(path)
}
