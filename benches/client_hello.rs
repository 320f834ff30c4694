//! ClientHello reader speed: nanoseconds per hello on the real captures, whole and fed one
//! TLS record fragment of 64 bytes at a time.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use egress_core::tls::{ClientHelloReader, Progress};

const VECTORS: &[(&str, &[u8])] = &[
    (
        "curl",
        include_bytes!("../egress-core/tests/data/client-hellos/curl-openssl3.bin"),
    ),
    (
        "chromium",
        include_bytes!("../egress-core/tests/data/client-hellos/chromium.bin"),
    ),
    (
        "go",
        include_bytes!("../egress-core/tests/data/client-hellos/go119.bin"),
    ),
    (
        "openssl-tls12",
        include_bytes!("../egress-core/tests/data/client-hellos/openssl-s_client-tls12-only.bin"),
    ),
];

fn read(input: &[u8], chunk: usize) -> usize {
    let mut reader = ClientHelloReader::default();
    for piece in input.chunks(chunk) {
        if let Ok(Progress::Done(hello)) = reader.feed(piece) {
            return hello.raw().len();
        }
    }
    0
}

fn client_hello(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_hello");
    for (name, bytes) in VECTORS {
        assert_eq!(read(bytes, bytes.len()), bytes.len(), "{name} must parse");
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}/whole"), |b| {
            b.iter(|| read(black_box(bytes), bytes.len()))
        });
        group.bench_function(format!("{name}/64-byte reads"), |b| {
            b.iter(|| read(black_box(bytes), 64))
        });
    }
    group.finish();
}

criterion_group!(benches, client_hello);
criterion_main!(benches);
