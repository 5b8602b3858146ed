//! The official SHA-256 of the Kubernetes release binaries nodes download, for the versions
//! this release of frankenetes knows.
//!
//! Each is the content of `https://dl.k8s.io/release/<version>/bin/linux/<arch>/<binary>.sha256`
//! — the file the Kubernetes release publishes next to the binary (and that
//! `frankenetes_bootstrap::fetch` verifies against). Copied from Kubernetes SIGs' kubespray,
//! which records those files (`roles/kubespray_defaults/vars/main/checksums.yml`,
//! kubernetes-sigs/kubespray@005bdce7, `kubelet_checksums`, `kubeadm_checksums`,
//! `kubectl_checksums`); this machine cannot reach dl.k8s.io. For any other version, a caller
//! gives the hashes (see [`super::Binaries`]). A wrong entry cannot go unnoticed: Ignition
//! checks every download against it and refuses the file.

use frankenetes_spec::Arch;

use super::NodeBinary;

/// `(version, arch, binary, sha256)`.
pub(super) const OFFICIAL: &[(&str, Arch, NodeBinary, &str)] = &[
    (
        "v1.35.0",
        Arch::Amd64,
        NodeBinary::Kubelet,
        "2f4ed7778681649b81244426c29c5d98df60ccabf83d561d69e61c1cbb943ddf",
    ),
    (
        "v1.35.0",
        Arch::Amd64,
        NodeBinary::Kubeadm,
        "729e7fb34e4f1bfcf2bdaf2a14891ed64bd18c47aaab42f8cc5030875276cfed",
    ),
    (
        "v1.35.0",
        Arch::Amd64,
        NodeBinary::Kubectl,
        "a2e984a18a0c063279d692533031c1eff93a262afcc0afdc517375432d060989",
    ),
    (
        "v1.35.0",
        Arch::Arm64,
        NodeBinary::Kubelet,
        "aa658d077348b43d238f50966a583f4244b2a7d45590c77b3b165b7d44983ab8",
    ),
    (
        "v1.35.0",
        Arch::Arm64,
        NodeBinary::Kubeadm,
        "1dac7dc2c6a56548bbc6bf8a7ecf4734f2e733fb336d7293d84541ebe52d0e50",
    ),
    (
        "v1.35.0",
        Arch::Arm64,
        NodeBinary::Kubectl,
        "58f82f9fe796c375c5c4b8439850b0f3f4d401a52434052f2df46035a8789e25",
    ),
    (
        "v1.35.1",
        Arch::Amd64,
        NodeBinary::Kubelet,
        "e7343310e03ff0d424df4397bdfa4468947d6d1f0f93dac586c1e8d6e4086d5d",
    ),
    (
        "v1.35.1",
        Arch::Amd64,
        NodeBinary::Kubeadm,
        "8a7ff344eef1bfba88f9a74b3fdc9ea4448c94f1b3cefb8c0aeeaf1f96e05053",
    ),
    (
        "v1.35.1",
        Arch::Amd64,
        NodeBinary::Kubectl,
        "36e2f4ac66259232341dd7866952d64a958846470f6a9a6a813b9117bd965207",
    ),
    (
        "v1.35.1",
        Arch::Arm64,
        NodeBinary::Kubelet,
        "73475c6db8fd8a9780b1b378fa2f917875e6146166c24603c1abc6eafd4493a8",
    ),
    (
        "v1.35.1",
        Arch::Arm64,
        NodeBinary::Kubeadm,
        "80097a3c4ef824f4edfe131d2bd429772c4be3a460c42a44f2320164a917de32",
    ),
    (
        "v1.35.1",
        Arch::Arm64,
        NodeBinary::Kubectl,
        "706256e21a4e9192ee62d1a007ac0bfcff2b0b26e92cc7baad487a6a5d08ff82",
    ),
];
