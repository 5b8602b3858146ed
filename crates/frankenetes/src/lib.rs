//! Frankenetes: a Kubernetes control plane built the hard way, automatically and securely.
//!
//! This crate re-exports the workspace's library crates, and [`platform_for`] builds the one
//! platform value for whichever backend a spec names. The `frankenetes` command is the
//! `frankenetes-cli` package.
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `local` | yes | [`bootstrap`]: the deployment API, the local-process backend, etcd snapshot/restore |
//! | `aws` | no | `cloud_aws`: the cheap AWS lab (EC2, NLB, NAT/WireGuard gateway; `aws-sdk-ec2`) |
//! | `azure` | no | `cloud_azure`: Azure Container Instances (ARM REST, `azure_identity`) |
//!
//! [`spec`], [`bundle`], [`pki`], [`manifests`], [`netgw`] and [`compute`] are always there;
//! they need no async runtime. With `default-features = false` you get exactly those.
//!
//! `manifests` uses `k8s-openapi`, which lets only the final application choose the Kubernetes
//! API version: add `k8s-openapi = { version = "0.29", features = ["latest"] }` (or `v1_35`, …)
//! to your application's dependencies.
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

/// The backends compiled into this build, for `--version` and `init --backend`.
pub const BACKENDS: &[&str] = &[
    "local",
    #[cfg(feature = "aws")]
    "aws",
    #[cfg(feature = "azure")]
    "azure",
];

#[cfg(feature = "local")]
mod platform;
#[cfg(feature = "local")]
pub use platform::{PlatformError, PlatformOptions, platform_for};
