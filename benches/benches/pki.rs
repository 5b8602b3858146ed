//! The whole PKI of the README's example cluster (3 control-plane nodes + 1 worker, kubeadm's
//! three CAs, 37 certificates and 38 keys), in memory (`Pki::generate`) and written to a fresh
//! directory (`frankenetes_pki::sync`), for ECDSA P-256 and RSA-2048.
//!
//! `cargo bench -p frankenetes-benches`; one group only: `cargo bench -p frankenetes-benches -- rsa`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
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

fn sync_into(plan: &PkiPlan, dir: &Path) -> (Pki, frankenetes_pki::SyncReport) {
    frankenetes_pki::sync(black_box(plan), dir, SyncOptions::default())
        .unwrap_or_else(|e| panic!("sync into {}: {e}", dir.display()))
}

/// Times `iters` syncs, each into a fresh directory made beforehand. The directories are kept
/// in `kept` until the whole run ends: on ext4 without a journal, creating files soon after
/// many were deleted makes the inode allocator skip the freed inodes one by one (see
/// benches/README.md), so removing each directory between iterations slowed the next ones.
fn time_syncs(plan: &PkiPlan, iters: u64, kept: &mut Vec<TempDir>) -> Duration {
    let dirs: Vec<TempDir> = (0..iters).map(|_| fresh_dir()).collect();
    let t = Instant::now();
    for dir in &dirs {
        black_box(sync_into(plan, dir.path()));
    }
    let elapsed = t.elapsed();
    kept.extend(dirs);
    elapsed
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

fn pki(c: &mut Criterion, kept: &mut Vec<TempDir>) {
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

        // A fresh directory each time; creating it is not timed, and nothing is removed until
        // the end.
        let one = time_syncs(&plan, 1, kept);
        size_for(&mut group, one);
        group.bench_function("sync-to-disk", |b| {
            b.iter_custom(|iters| time_syncs(&plan, iters, kept))
        });
        group.finish();
    }
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut kept = Vec::new();
    pki(&mut c, &mut kept);
    c.final_summary();
    drop(kept);
}
