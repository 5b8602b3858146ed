//! Rendering every node's bundle (static pods, kubeconfigs, kubelet config, units, Ignition)
//! for 10, 100 and 1,000 nodes: in memory (what `plan` does), written to a fresh directory
//! (`render`), and written again over its own output (a re-run: nothing changes). The PKI is
//! made once, outside the measurement. Linear means the 1,000-node figures are about 10x the
//! 100-node ones (#22: at most ~11x).
//!
//! `cargo bench -p frankenetes-benches --bench render`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails by panicking
#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use frankenetes_pki::{Pki, PkiPlan};
use frankenetes_spec::{ClusterName, ClusterSpec, NodeName, NodeSpec};
use tempfile::TempDir;

/// Three control-plane nodes and `nodes - 3` workers on 10.10.0.0/16.
fn spec(nodes: usize) -> ClusterSpec {
    let node = |prefix: &str, i: usize| {
        NodeSpec::new(
            NodeName::try_from(format!("{prefix}-{i:03}")).unwrap(),
            format!("10.10.{}.{}", 16 + i / 200, 10 + i % 200)
                .parse()
                .unwrap(),
        )
    };
    let mut s = ClusterSpec::new(
        ClusterName::try_from("bench").unwrap(),
        "v1.35.0".parse().unwrap(),
        (0..3).map(|i| node("control", i)).collect(),
    );
    s.workers = (3..nodes).map(|i| node("worker", i)).collect();
    s.validate().unwrap();
    s
}

fn bench(c: &mut Criterion) {
    // Every directory written is kept until the end: removing each between iterations slowed
    // the next ones on ext4 without a journal (see benches/README.md, "Which disk").
    let mut kept: Vec<TempDir> = Vec::new();
    let mut group = c.benchmark_group("render");
    for n in [10usize, 100, 1000] {
        group.sample_size(if n >= 1000 { 10 } else { 20 });
        let s = spec(n);
        let pki = Pki::generate(&PkiPlan::from(&s)).unwrap();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("{n}-nodes/memory"), |b| {
            b.iter(|| frankenetes_manifests::render(black_box(&s), black_box(&pki)).unwrap())
        });
        group.bench_function(format!("{n}-nodes/disk"), |b| {
            b.iter_custom(|iters| {
                let dirs: Vec<TempDir> = (0..iters).map(|_| tempfile::tempdir().unwrap()).collect();
                let t = Instant::now();
                for dir in &dirs {
                    frankenetes_manifests::render(&s, &pki)
                        .unwrap()
                        .write(dir.path())
                        .unwrap();
                }
                let elapsed = t.elapsed();
                kept.extend(dirs);
                elapsed
            });
        });
        let again = tempfile::tempdir().unwrap();
        frankenetes_manifests::render(&s, &pki)
            .unwrap()
            .write(again.path())
            .unwrap();
        group.bench_function(format!("{n}-nodes/rerun"), |b| {
            b.iter(|| {
                frankenetes_manifests::render(&s, &pki)
                    .unwrap()
                    .write(again.path())
                    .unwrap()
            })
        });
    }
    group.finish();
    drop(kept);
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
