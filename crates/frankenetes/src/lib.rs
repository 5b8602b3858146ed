//! Frankenetes: a Kubernetes control plane built the hard way, automatically and securely.
//!
//! This crate re-exports the workspace's library crates and holds the `frankenetes` binary.
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `local` | yes | [`bootstrap`]: the sequencer, the local-process backend, etcd snapshot/restore |
//! | `aws` | no | `cloud_aws`: the cheap AWS lab (EC2, NLB, NAT/WireGuard gateway; `aws-sdk-ec2`) |
//! | `azure` | no | `cloud_azure`: Azure Container Instances (ARM REST, `azure_identity`) |
//! | `cli` | yes | the `frankenetes` binary (implies `local`) |
//!
//! [`spec`], [`pki`], [`manifests`], [`netgw`] and [`compute`] are always there; they need no
//! async runtime. With `default-features = false` you get exactly those.
//!
//! ```
//! use frankenetes::{pki::{Pki, PkiPlan}, spec::ClusterSpec};
//!
//! let spec = ClusterSpec::example();
//! let pki = Pki::generate(&PkiPlan::from(&spec))?;
//! assert_eq!(pki.cas().len(), 3);
//! # Ok::<(), frankenetes::pki::Error>(())
//! ```

#![deny(missing_docs)]

#[cfg(feature = "local")]
pub use frankenetes_bootstrap as bootstrap;
pub use frankenetes_bundle as bundle;
#[cfg(feature = "aws")]
pub use frankenetes_cloud_aws as cloud_aws;
#[cfg(feature = "azure")]
pub use frankenetes_cloud_azure as cloud_azure;
pub use frankenetes_compute as compute;
pub use frankenetes_manifests as manifests;
pub use frankenetes_netgw as netgw;
pub use frankenetes_pki as pki;
pub use frankenetes_spec as spec;
