//! Relay throughput over loopback: splice(2) against the userspace copy, moving 64 KiB to
//! 1 GiB one way through an established tunnel (client peer → relay → upstream peer).
#![allow(
    clippy::expect_used,
    reason = "a benchmark whose setup fails must stop, not measure"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use egress_core::relay::{DEFAULT_MAX_PIPES, DEFAULT_PIPE_SIZE, PipePool, RelayConfig, relay_tcp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const SIZES: [(&str, u64); 5] = [
    ("64KiB", 64 << 10),
    ("1MiB", 1 << 20),
    ("16MiB", 16 << 20),
    ("256MiB", 256 << 20),
    ("1GiB", 1 << 30),
];

/// A connected loopback pair.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.expect("connect"), b.expect("accept").0)
}

/// A running tunnel: bytes written to `client` come out of `upstream`.
struct Tunnel {
    client: TcpStream,
    upstream: TcpStream,
}

async fn tunnel(config: RelayConfig) -> Tunnel {
    let (client, mut proxy_client) = pair().await;
    let (mut proxy_upstream, upstream) = pair().await;
    tokio::spawn(async move {
        let _ = relay_tcp(&mut proxy_client, &mut proxy_upstream, &[], &config).await;
    });
    Tunnel { client, upstream }
}

/// Moves `bytes` through the tunnel, returning the time from the first write to the last
/// byte read.
async fn push(tunnel: &mut Tunnel, bytes: u64) -> Duration {
    let chunk = vec![0x5au8; 256 << 10];
    let started = Instant::now();
    let writer = async {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            tunnel.client.write_all(&chunk[..n]).await.expect("write");
            left -= n as u64;
        }
    };
    let reader = async {
        let mut buf = vec![0u8; 256 << 10];
        let mut left = bytes;
        while left > 0 {
            let n = tunnel.upstream.read(&mut buf).await.expect("read");
            assert!(n > 0, "tunnel closed early");
            left -= n as u64;
        }
    };
    tokio::join!(writer, reader);
    started.elapsed()
}

fn relay(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime");
    let mut splice = RelayConfig::default();
    splice.pipes = Some(Arc::new(PipePool::new(
        DEFAULT_MAX_PIPES,
        DEFAULT_PIPE_SIZE,
    )));
    let modes = [("copy", RelayConfig::default()), ("splice", splice)];
    let mut group = c.benchmark_group("relay");
    for (label, bytes) in SIZES {
        group.throughput(Throughput::Bytes(bytes));
        if bytes >= 256 << 20 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(20));
        } else {
            group.sample_size(30);
            group.measurement_time(Duration::from_secs(5));
        }
        for (mode, config) in &modes {
            let mut tunnel = runtime.block_on(tunnel(config.clone()));
            group.bench_function(BenchmarkId::new(*mode, label), |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += push(&mut tunnel, bytes).await;
                        }
                        total
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, relay);
criterion_main!(benches);
