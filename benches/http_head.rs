//! Request-head parsing speed: nanoseconds per head for what proxy clients and sidecars send.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use egress_core::http::{HeadLimits, Parse, parse_request_head};

const HEADS: &[(&str, &[u8])] = &[
    ("connect", b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\nUser-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n"),
    ("absolute", b"GET http://www.example.com/index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nProxy-Connection: Keep-Alive\r\n\r\n"),
    ("origin-sidecar", b"GET /api/v1/items?limit=50 HTTP/1.1\r\nhost: www.example.com\r\nuser-agent: Go-http-client/1.1\r\naccept-encoding: gzip\r\nx-request-id: 6f1c2a9e-5d1b-4a55-9d0e-2b3c4d5e6f70\r\nx-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7\r\nx-b3-spanid: e457b5a2e4d86bd1\r\nx-b3-sampled: 1\r\nx-envoy-attempt-count: 1\r\nx-forwarded-proto: http\r\ncontent-length: 0\r\n\r\n"),
];

fn http_head(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let mut group = c.benchmark_group("http_head");
    for (name, head) in HEADS {
        assert!(
            matches!(parse_request_head(head, &limits), Ok(Parse::Complete(_))),
            "{name}"
        );
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}/parse"), |b| {
            b.iter(|| parse_request_head(black_box(head), &limits))
        });
        group.bench_function(format!("{name}/parse+upstream_head"), |b| {
            b.iter(|| {
                let Ok(Parse::Complete(h)) = parse_request_head(black_box(head), &limits) else {
                    unreachable!()
                };
                h.upstream_head()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, http_head);
criterion_main!(benches);
