//! Metrics benchmarks: what recording one sample costs the generator, and what merging
//! recorders (per worker, in memory) and serialized `OpStats` (per run, from results JSON)
//! costs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use stepflow_bench::metrics::{OpStats, Recorder};

/// Latencies spread like a real run: mostly 200 µs – 2 ms with a tail to 50 ms, nanoseconds.
fn latencies(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            // xorshift64*: deterministic and dependency-free.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let base = 200_000 + r % 1_800_000;
            if r % 100 == 0 {
                base * 25
            } else {
                base
            }
        })
        .collect()
}

fn recorder(n: usize, seed: u64) -> Recorder {
    let mut r = Recorder::new();
    for v in latencies(n, seed) {
        r.record_ok(v, v - v / 10);
    }
    r
}

fn metrics_benches(c: &mut Criterion) {
    let values = latencies(4096, 1);
    let mut group = c.benchmark_group("recorder");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record_ok", |b| {
        let mut r = Recorder::new();
        let mut i = 0;
        b.iter(|| {
            let v = values[i & 4095];
            i += 1;
            r.record_ok(black_box(v), black_box(v));
        })
    });
    group.throughput(Throughput::Elements(2));
    let (a, other) = (recorder(100_000, 2), recorder(100_000, 3));
    group.bench_function("merge_two", |b| {
        b.iter_batched_ref(
            || a.clone(),
            |merged| merged.merge(black_box(&other)),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("opstats");
    // Encoding deflates ~250 KiB of buckets: fewer samples fit the 2 s window.
    group.sample_size(50);
    let stats = a.summarize(30.0);
    let parts = [stats.clone(), other.summarize(30.0)];
    group.bench_function("encode", |b| b.iter(|| black_box(a.summarize(30.0))));
    group.bench_function("decode", |b| {
        b.iter(|| black_box(stats.decode_histogram().expect("decodes")))
    });
    group.bench_function("merge_concurrent_two", |b| {
        b.iter(|| black_box(OpStats::merge_concurrent(&parts, 30.0).expect("merges")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = metrics_benches
}
criterion_main!(benches);
