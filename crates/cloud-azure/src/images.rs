//! The images the ACI topology runs, and where they come from.
//!
//! With no `spec.backend.azure.toolsImage`, every container runs an image published by its
//! own project, from one of [`PUBLISHED`]:
//!
//! | registry/repository | published by | runs |
//! | --- | --- | --- |
//! | `registry.k8s.io/` | Kubernetes (SIG Release) | kube-apiserver, kube-controller-manager, kube-scheduler, etcd (kubeadm's `etcd:<ver>-0`) |
//! | `docker.io/library/busybox:` | Docker Official Images | the shell steps: checksums, copying to and from the share, `latest`, pruning |
//! | `mcr.microsoft.com/oss/virtual-kubelet/` | Microsoft (virtual-kubelet/azure-aci) | virtual-kubelet |
//!
//! The etcd images are treated as having no shell. The ones etcd publishes
//! (`gcr.io/etcd-development/etcd`, `quay.io/coreos/etcd`) are `gcr.io/distroless/static`
//! plus `etcd`, `etcdctl` and `etcdutl` in `/usr/local/bin` (etcd-io/etcd `Dockerfile`).
//! kubeadm's `registry.k8s.io/etcd` adds a static bash as `/bin/sh` for its migration script
//! (kubernetes `cluster/images/etcd/Dockerfile`), but it has no coreutils (no `sha256sum`,
//! `mv`, `date`), and a user may point `spec.etcd.imageRepository` at etcd's own images. So
//! in the etcd image only `etcdctl`/`etcdutl` run, in exec form, with every path and name
//! fixed when the group is rendered; whatever needs a shell runs in busybox, in the init
//! container before or after it. ACI runs a group's init containers one after another, each
//! to completion, before its containers, and a failing one fails the group; an `emptyDir`
//! volume is shared by the init containers and containers of a group (ARM
//! `ContainerGroupProperties.initContainers`, `Volume.emptyDir`; `shared/reference/azure-aci.md`
//! §5).

/// busybox, pinned: `sh`, `sha256sum`, `cp`, `mv`, `date`, `sort`, `sleep` for the steps that
/// need a shell.
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:1.37.0";

/// Where `etcdctl` and `etcdutl` are in every etcd image (etcd's and kubeadm's).
pub const ETCD_BIN: &str = "/usr/local/bin";

/// The registries and repositories whose images the default topology runs (see the table
/// above): an image reference starting with one of these prefixes.
pub const PUBLISHED: &[&str] = &[
    "registry.k8s.io/",
    "docker.io/library/busybox:",
    "mcr.microsoft.com/oss/virtual-kubelet/",
];

/// Whether `image` comes from one of [`PUBLISHED`].
pub fn is_published(image: &str) -> bool {
    PUBLISHED.iter().any(|p| image.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_prefixes() {
        assert!(is_published("registry.k8s.io/etcd:3.6.6-0"));
        assert!(is_published(BUSYBOX_IMAGE));
        assert!(is_published(
            "mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:1.6.0"
        ));
        assert!(!is_published("ghcr.io/frankenetes/etcd-tools:3.6"));
        assert!(!is_published("docker.io/library/alpine:3.20"));
        assert!(!is_published("registry.k8s.io.evil.example/etcd:3.6.6-0"));
    }
}
