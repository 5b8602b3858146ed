//! The whole PKI of the README's example cluster (3 control-plane nodes + 1 worker, kubeadm's
//! three CAs, 37 certificates and 38 keys), in memory (`Pki::generate`) and written to a fresh
//! directory (`frankenetes_pki::sync`), for ECDSA P-256 and RSA-2048.
//!
//! `cargo bench -p frankenetes-benches`; one group only: `cargo bench -p frankenetes-benches -- rsa`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use frankenetes_benches::{ALGORITHMS, certificate_count, example_plan};
use frankenetes_pki::{Pki, PkiPlan, SyncOptions};
use tempfile::TempDir;

/// About how long one slow benchmark may take, measurement only.
const BUDGET: Duration = Duration::from_secs(10);

fn generate(plan: &PkiPlan) -> Pki {
    Pki::generate(black_box(plan)).unwrap_or_else(|e| panic!("generate: {e}"))
}

fn fresh_dir() -> TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"))
}

fn sync_into(plan: &PkiPlan, dir: TempDir) -> (TempDir, (Pki, frankenetes_pki::SyncReport)) {
    let out = frankenetes_pki::sync(black_box(plan), dir.path(), SyncOptions::default())
        .unwrap_or_else(|e| panic!("sync into {}: {e}", dir.path().display()));
    // Returned, so that dropping the result and removing the directory are not timed.
    (dir, out)
}

/// Sizes the next benchmark from one run of it: criterion's default (100 samples in 5 s) for
/// fast ones; for slow ones (RSA keys, a disk that takes its time to sync) about [`BUDGET`] of
/// measurement, at least 10 samples, with room for runs twice as slow as the first one (no
/// "unable to complete" warning).
fn size_for(group: &mut BenchmarkGroup<'_, WallTime>, one: Duration) {
    let one = one.max(Duration::from_micros(1));
    if one * 2000 <= BUDGET {
        group
            .sample_size(100)
            .sampling_mode(SamplingMode::Auto)
            .warm_up_time(Duration::from_secs(3))
            .measurement_time(Duration::from_secs(5));
    } else {
        let samples =
            (BUDGET.as_secs_f64() / (2.0 * one.as_secs_f64())).clamp(10.0, 100.0) as usize;
        group
            .sample_size(samples)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(one.mul_f64(2.0 * samples as f64));
    }
}

fn pki(c: &mut Criterion) {
    for alg in ALGORITHMS {
        let plan = example_plan(alg);
        let mut group = c.benchmark_group(format!("pki/{}", alg.as_str()));
        // Criterion reports certificates per second next to the time per whole set.
        group.throughput(Throughput::Elements(certificate_count(&plan) as u64));

        let t = Instant::now();
        let once = generate(&plan);
        size_for(&mut group, t.elapsed());
        drop(once);
        group.bench_function("generate", |b| b.iter(|| generate(&plan)));

        // A fresh directory each time; creating it and removing it afterwards is not timed.
        let dir = fresh_dir();
        let t = Instant::now();
        let once = sync_into(&plan, dir);
        size_for(&mut group, t.elapsed());
        drop(once);
        group.bench_function("sync-to-disk", |b| {
            b.iter_batched(
                fresh_dir,
                |dir| sync_into(&plan, dir),
                BatchSize::PerIteration,
            );
        });
        group.finish();
    }
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    pki(&mut c);
    c.final_summary();
}
