//! Shared helpers of the frankenetes benchmarks (`cargo bench -p frankenetes-benches`).
//!
//! The criterion bench `pki` measures the whole PKI of the README's example cluster (three
//! control-plane nodes, one worker, `caMode: kubeadm`) in memory and written to disk, for
//! ECDSA P-256 and RSA-2048. `benches/openssl-baseline.sh` times the same set made one
//! `openssl` process per step, the way hand-written guides do it, against the CLI.

use frankenetes_pki::PkiPlan;
use frankenetes_spec::{CaMode, KeyAlgorithm};

/// The key algorithms the benchmarks measure.
pub const ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048];

/// The plan of the README's example cluster (`PkiPlan::example()`: control-01..03 and
/// worker-01, kubeadm's three CAs) with every key of algorithm `alg`.
pub fn example_plan(alg: KeyAlgorithm) -> PkiPlan {
    let mut plan = PkiPlan::example();
    plan.key_algorithm = alg;
    plan.ca_mode = CaMode::Kubeadm;
    plan
}

/// How many certificates the plan makes: its CAs and its leaves (node copies of a CA are not
/// counted again).
pub fn certificate_count(plan: &PkiPlan) -> usize {
    plan.cas().len() + plan.leaves.len()
}

/// How many private keys the plan makes: one per certificate, plus the service-account key.
pub fn key_count(plan: &PkiPlan) -> usize {
    certificate_count(plan) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_the_three_node_set() {
        let plan = example_plan(KeyAlgorithm::EcdsaP256);
        assert_eq!(plan.control_plane.len(), 3);
        assert_eq!(plan.workers.len(), 1);
        // 3 CAs; 9 leaves per control-plane node; a kubelet client and a kubelet serving
        // certificate per node; admin, super-admin, kube-proxy.
        assert_eq!(certificate_count(&plan), 3 + 3 * 9 + 2 * 4 + 3);
        assert_eq!(key_count(&plan), 42);
    }
}
