//! Policy decision time against rule count: the same lookups with 10, 1 000 and 100 000 allow
//! rules. The goal is flat: the trie walks the labels of the name, not the rules.
#![allow(
    clippy::expect_used,
    reason = "a benchmark whose setup fails must stop, not measure"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use egress_core::policy::{Policy, PolicyConfig};
use egress_core::target::Host;

/// `count` allow rules of every form, spread over distinct registrable domains, with the
/// rules the lookups below hit among them.
fn rules(count: usize) -> Vec<String> {
    let mut rules = vec![
        "api.service-0.example:443".to_owned(),
        "*.cdn.service-1.example".to_owned(),
        ".service-2.example:443,8443".to_owned(),
    ];
    for i in 3..count {
        rules.push(match i % 4 {
            0 => format!("api.service-{i}.example:443"),
            1 => format!("*.cdn.service-{i}.example"),
            2 => format!(".service-{i}.example:443,8443"),
            _ => format!("www.team-{}.service-{i}.example", i % 97),
        });
    }
    rules
}

fn policy(c: &mut Criterion) {
    let host = |s: &str| Host::from_ascii(s.as_bytes()).expect("a valid host");
    let lookups = [
        ("exact_hit", host("api.service-0.example")),
        ("wildcard_hit_deep", host("a.b.c.cdn.service-1.example")),
        ("dot_hit", host("service-2.example")),
        ("miss", host("www.unrelated-name.example")),
    ];
    let mut group = c.benchmark_group("policy");
    for count in [10, 1_000, 100_000] {
        let policy = Policy::new(&PolicyConfig {
            allow: rules(count),
            deny: vec!["blocked.service-0.example".to_owned()],
            ..PolicyConfig::default()
        })
        .expect("valid rules");
        for (name, host) in &lookups {
            let expected = *name != "miss";
            assert_eq!(policy.check_target(host, 443).allowed, expected, "{name}");
            group.bench_with_input(BenchmarkId::new(*name, count), host, |b, host| {
                b.iter(|| policy.check_target(black_box(host), black_box(443)))
            });
        }
        let ip = "93.184.215.14".parse().expect("an address");
        group.bench_with_input(BenchmarkId::new("address", count), &ip, |b, ip| {
            b.iter(|| policy.check_addr(black_box(*ip)))
        });
    }
    group.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
