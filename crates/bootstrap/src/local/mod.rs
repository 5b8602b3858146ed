//! Local processes: the [`LocalBackend`] (each container of a container group runs as a
//! supervised process on this machine) and the [`LocalPlatform`] that runs a cluster with it
//! (every node on its own loopback address, etcd from PATH, the Kubernetes binaries from
//! `--bin-dir`, PATH or the fetch cache; each worker with its own containerd, CNI
//! configuration, and the kubelet and kube-proxy when found).

mod backend;
mod nodes;
mod platform;
mod preflight;
mod runtime;
mod worker;

pub use backend::{LocalBackend, process_alive};
pub use platform::LocalPlatform;
pub use preflight::port_holder;
pub use runtime::mounts_under;
pub use worker::{CNI_CONFIG, DEFAULT_POD_CIDR, Worker, node_subnets};
