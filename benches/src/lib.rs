//! Benchmarks of egress: see the `[[bench]]` targets in this package and BENCHMARKS.md.
