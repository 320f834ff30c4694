//! Runs egress from a TOML config inside the test, on loopback.

use std::net::SocketAddr;

use egress_core::config::Config;
use egress_core::server::Handoff;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running proxy; dropping it does not stop it, [`Proxy::stop`] does.
pub struct Proxy {
    pub addrs: Vec<SocketAddr>,
    /// One per listener block: the `[[sni]]` blocks, then the `[[http]]` blocks.
    #[allow(dead_code, reason = "only the tests of handed-over connections use it")]
    pub handoffs: Vec<Handoff>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(toml: &str) -> Proxy {
        let config =
            Config::from_toml(toml).unwrap_or_else(|e| panic!("bad test config: {e}\n{toml}"));
        let server = config.bind().await.unwrap();
        let addrs = server.local_addrs();
        let groups = config.sni.len() + config.http.len();
        let handoffs = (0..groups).map(|g| server.handoff(g).unwrap()).collect();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Proxy {
            addrs,
            handoffs,
            stop: Some(stop),
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Begins graceful shutdown and returns the task that ends when it is done.
    pub fn stop(mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
    }
}

/// A free port on `ip` (bound then released).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
