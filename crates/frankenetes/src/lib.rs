//! Frankenetes: a Kubernetes control plane built the hard way, automatically and securely.
//!
//! This crate re-exports the workspace's library crates and holds the `frankenetes` binary
//! (feature `cli`).
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

pub use frankenetes_bootstrap as bootstrap;
pub use frankenetes_compute as compute;
pub use frankenetes_manifests as manifests;
pub use frankenetes_netgw as netgw;
pub use frankenetes_pki as pki;
pub use frankenetes_spec as spec;
