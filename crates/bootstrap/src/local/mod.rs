//! Local processes: the [`LocalBackend`] (each container of a container group runs as a
//! supervised process on this machine) and the [`LocalPlatform`] that runs a cluster with it
//! (every node on its own loopback address, etcd from PATH, the Kubernetes binaries from
//! `--bin-dir`, PATH or the fetch cache).

mod backend;
mod platform;
mod preflight;

pub use backend::{LocalBackend, process_alive};
pub use platform::LocalPlatform;
pub use preflight::port_holder;
