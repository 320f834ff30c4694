//! The `egress` binary as a user runs it: flags, `check`, and a real connection through a
//! running process, stopped with SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers outside #[test] functions fail their test by panicking"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

const EGRESS: &str = env!("CARGO_BIN_EXE_egress");
const CURL_HELLO: &[u8] =
    include_bytes!("../../egress-core/tests/data/client-hellos/curl-openssl3.bin");

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("egress-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("egress.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Kills the proxy if the test fails before stopping it, so no process outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Accepts one connection, failing the test instead of hanging when none comes.
fn accept_within(listener: &TcpListener, limit: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let step = Duration::from_millis(10);
    for _ in 0..limit.as_millis() / step.as_millis() {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                return conn;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(step),
            Err(e) => panic!("accept: {e}"),
        }
    }
    panic!("no connection reached the upstream within {limit:?}");
}

#[test]
fn version_and_help() {
    let out = Command::new(EGRESS).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("egress "));
    let out = Command::new(EGRESS).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--config") && help.contains("check"),
        "{help}"
    );
}

#[test]
fn check_accepts_a_valid_file() {
    let path = write_config(
        "valid",
        "[[sni]]\nlisten = [\"127.0.0.1:8443\"]\nupstream_port = \"listener\"\n",
    );
    let out = Command::new(EGRESS)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_explains_each_mistake_with_its_line() {
    let path = write_config(
        "invalid",
        "[[sni]]\nlisten = [\"127.0.0.1:8443\", \"127.0.0.1:8443\"]\nmax_connections = 0\n",
    );
    let out = Command::new(EGRESS)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2, column 29: 127.0.0.1:8443 is listed twice"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3, column 19: max_connections must be at least 1"),
        "{stderr}"
    );

    let path = write_config(
        "unknown",
        "[[sni]]\nlisten = [\"127.0.0.1:8443\"]\nupstream_prot = 443\n",
    );
    let out = Command::new(EGRESS)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("line 3, column 1: unknown field `upstream_prot`")
    );
}

#[test]
fn check_refuses_a_block_that_listens_nowhere() {
    // The library serves such a block through handed-over connections; the binary cannot.
    let path = write_config(
        "deaf",
        "[[sni]]\nlisten = [\"127.0.0.1:8443\"]\n[[http]]\nlisten = []\n",
    );
    let out = Command::new(EGRESS)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("an [[http]] block has an empty `listen` list"),
        "{stderr}"
    );
}

/// The README's first command: with no `--config`, the embedded default listens on
/// 127.0.0.1:8080 (HTTP) and 127.0.0.1:8443 (SNI) with the system resolver.
#[test]
fn runs_the_embedded_default_without_a_config() {
    let mut child = KillOnDrop(
        Command::new(EGRESS)
            .env("EGRESS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stderr.take().unwrap());
    let mut lines = String::new();
    for _ in 0..2 {
        log.read_line(&mut lines).unwrap();
    }
    assert!(lines.contains("listening addr=127.0.0.1:8443"), "{lines}");
    assert!(lines.contains("listening addr=127.0.0.1:8080"), "{lines}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(EGRESS)
        .args(["--config", "/nonexistent/egress.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/egress.toml"));
}

#[test]
fn proxies_a_connection_logs_it_and_stops_on_sigterm() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = upstream.local_addr().unwrap().port();
    let listen_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = write_config(
        "run",
        &format!(
            "[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\n[resolver]\nnameservers = [\"127.0.0.1:9\"]\n[resolver.hosts]\n\"www.example.com\" = [\"127.0.0.1\"]\n\
             [[sni]]\nlisten = [\"127.0.0.1:{listen_port}\"]\nupstream_port = {up_port}\n"
        ),
    );
    let mut child = KillOnDrop(
        Command::new(EGRESS)
            .arg("--config")
            .arg(&path)
            .env("EGRESS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    log.read_line(&mut line).unwrap();
    assert!(
        line.contains("listening") && line.contains(&listen_port.to_string()),
        "{line}"
    );

    let mut client = TcpStream::connect(("127.0.0.1", listen_port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(CURL_HELLO).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut conn = accept_within(&upstream, Duration::from_secs(10));
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    conn.read_to_end(&mut received).unwrap();
    assert_eq!(received, CURL_HELLO);
    conn.write_all(b"bye").unwrap();
    drop(conn);
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"bye");

    line.clear();
    log.read_line(&mut line).unwrap();
    for field in [
        "sni=www.example.com",
        &format!("upstream=127.0.0.1:{up_port}"),
        "up=517",
        "down=3",
        "outcome=\"closed\"",
        "duration_ms=",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }

    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {}", child.0.id()))
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    log.read_to_string(&mut rest).unwrap();
    assert!(child.0.wait().unwrap().success(), "{rest}");
}
