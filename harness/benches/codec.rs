//! Criterion micro-benchmarks: our codec beside the ordinary alternative
//! (tokio-util's LengthDelimitedCodec + serde_json) in the same group, so
//! criterion's report shows the ratio; and MD5, the upload's other cost.
//!
//! `cargo bench --bench codec` (or `just bench`, which runs it first).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use md5::{Digest, Md5};
use sockbench::bench::codec::ops;

fn codec(c: &mut Criterion) {
    for op in ops() {
        let mut g = c.benchmark_group(op.name);
        g.throughput(Throughput::Bytes(op.input.len() as u64));
        let (mut ours, mut alt) = ((op.ours)(), (op.alternative)());
        g.bench_function("ours", |b| b.iter(|| ours(black_box(&op.input))));
        g.bench_function("LengthDelimitedCodec+serde_json", |b| {
            b.iter(|| alt(black_box(&op.input)))
        });
        g.finish();
    }
}

/// MD5 three ways: the upload's other cost, and the choice of
/// `sockbench_core::digest` (OpenSSL's, the fastest here).
fn md5(c: &mut Criterion) {
    let mut g = c.benchmark_group("md5");
    for size in [64 * 1024usize, 1 << 20] {
        let data = vec![0x5au8; size];
        let kib = size / 1024;
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("md-5 0.11/{kib} KiB"), |b| {
            b.iter(|| Md5::digest(black_box(&data)))
        });
        g.bench_function(format!("md-5 0.10 asm/{kib} KiB"), |b| {
            b.iter(|| <md5_asm::Md5 as md5_asm::Digest>::digest(black_box(&data)))
        });
        g.bench_function(format!("openssl (servers)/{kib} KiB"), |b| {
            b.iter(|| sockbench_core::digest::Md5::of(black_box(&data)))
        });
    }
    g.finish();
}

criterion_group!(benches, codec, md5);
criterion_main!(benches);
