//! Kubeadm-compatible PKI for a Kubernetes control plane. No network, no async runtime.
//!
//! ```
//! use frankenetes_pki::{Pki, PkiPlan};
//!
//! // The plan for the README's three-node example; `PkiPlan::from(&spec)` for your own spec.
//! let pki = Pki::generate(&PkiPlan::example())?;
//! let apiserver = pki.leaf("control-01/apiserver").expect("every control-plane node has one");
//! assert!(apiserver.info().dns_sans.contains(&"kubernetes.default.svc.cluster.local".to_owned()));
//! assert_eq!(apiserver.info().issuer_common_name.as_deref(), Some("kubernetes"));
//! // Files as they would be written, paths relative to the output root; keys are secret.
//! let files = pki.files();
//! assert!(files.iter().any(|f| f.path.ends_with("etc/kubernetes/pki/etcd/server.key") && f.secret));
//! # Ok::<(), frankenetes_pki::Error>(())
//! ```
//!
//! # What it makes
//!
//! The set `kubeadm init` makes for every control-plane node (`apiserver`,
//! `apiserver-kubelet-client`, `apiserver-etcd-client`, `front-proxy-client`, `etcd/server`,
//! `etcd/peer`, `etcd/healthcheck-client`), the controller-manager's and scheduler's client
//! certificates, a kubelet client certificate per node (`system:node:<name>` in `system:nodes`,
//! workers too), the operator's `admin` (`kubeadm:cluster-admins`), `super-admin`
//! (`system:masters`) and `kube-proxy` (`system:kube-proxy`) clients, and the service-account
//! key pair (`sa.key`, `sa.pub`). Every node also gets a kubelet serving certificate signed by
//! the cluster CA (SANs: the node's name and IP), so the apiserver verifies the kubelets it
//! calls; and control-plane nodes get the Secrets [`encryption`] configuration with the
//! cluster's key (made once, never replaced by a re-run).
//!
//! Two CA modes ([`frankenetes_spec::CaMode`]): `kubeadm`, three self-signed CAs (kubernetes,
//! etcd-ca, front-proxy-ca); and `intermediate`, one root (path length 1) signing the three as
//! intermediates (path length 0). In `intermediate` mode the root's key stays in
//! `cluster/pki/`, nodes trust the intermediates (never the root: a sibling intermediate's
//! certificate must not pass as a Kubernetes client), and every leaf file carries its chain
//! (leaf, then intermediate) so that anyone holding only the root can verify it.
//!
//! Leaves have `digitalSignature` (plus `keyEncipherment` for RSA keys only), the extended key
//! usage of their profile, subject and authority key identifiers, a random 126-bit serial,
//! `NotBefore` five minutes back (kubeadm's backdate), and never outlive their issuer.
//!
//! # Layout
//!
//! Paths are relative to the output root ([`Pki::files`], [`sync`]):
//!
//! ```text
//! cluster/pki/{root-ca,ca,etcd/ca,front-proxy-ca}.{crt,key}   CA masters (root: intermediate mode)
//! cluster/pki/{ca,etcd/ca,front-proxy-ca}-chain.crt           intermediate + root (intermediate mode)
//! cluster/pki/sa.{key,pub}, {admin,super-admin,kube-proxy}.{crt,key}
//! nodes/<cp>/etc/kubernetes/pki/...                           kubeadm's names, CA copies with keys
//! nodes/<cp>/etc/kubernetes/pki/{controller-manager,scheduler}.{crt,key}
//! nodes/<worker>/etc/kubernetes/pki/ca.crt
//! nodes/<node>/var/lib/kubelet/pki/kubelet-client.{crt,key}
//! nodes/<node>/var/lib/kubelet/pki/kubelet.{crt,key}              serving, signed by the cluster CA
//! cluster/pki/encryption-config.yaml, nodes/<cp>/etc/kubernetes/pki/encryption-config.yaml
//! ```
//!
//! Private keys are PKCS#8 PEM, written 0600 through a temporary file and a rename, whatever
//! the umask; the operator's `cluster/pki` (and `cluster/pki/etcd`), which hold the CA keys,
//! are 0700.
//!
//! Each leaf has a typed id ([`LeafId`]: a [`LeafKind`] and, for per-node kinds, the node),
//! displayed as its report name (`control-01/etcd-server`, `admin`); its path derives from it.
//!
//! # Re-running
//!
//! [`sync`] first removes temporary files a killed run left (they may hold keys), then loads
//! what a directory holds, checks it against the plan (chain, key match, expiry, subject, SANs,
//! key algorithm) and generates only what is missing. A CA is never replaced; a leaf that no
//! longer matches is reported in [`SyncReport::stale`] and replaced only with
//! [`SyncOptions::renew`]. A corrupted PEM or a key that does not match its certificate is an
//! [`Error`] naming the file, and nothing is written. Existing secrets with loose modes are
//! reported ([`SyncReport::loose_modes`]) and narrowed only with [`SyncOptions::fix_modes`].
//! A second run changes no byte.
//!
//! [`check()`] and [`renew()`] work on a directory alone, like `kubeadm certs check-expiration`
//! and `kubeadm certs renew`; they also accept a bare kubeadm `/etc/kubernetes/pki`. Both find
//! kubeconfigs by their content (`client-certificate-data`): [`check()`] lists them, and CAs,
//! in tables of their own ([`CheckReport`], also serde-serializable, see [`report`]);
//! [`renew()`] rewrites every kubeconfig that embeds a certificate it renewed, renews every
//! leaf only when asked ([`RenewSelection::All`]), and its [`RenewReport`] says whether any
//! problem remains. [`expiry`] gives `status` the earliest expiry per node and each CA's.

#![deny(missing_docs)]

mod build;
pub mod check;
pub mod encryption;
pub mod expiry;
mod fsutil;
mod id;
mod issue;
mod keys;
mod kubeconfig;
mod leaf_check;
mod modes;
mod pki;
pub mod plan;
mod renew;
pub mod report;
mod scan;
mod sync;
pub mod x509;

use std::path::PathBuf;

pub use check::{CheckOptions, check};
pub use id::{LeafId, LeafIdError, LeafKind};
pub use keys::{KeyError, PrivateKey};
pub use modes::LooseMode;
pub use pki::{Ca, Leaf, OutputFile, Pki};
pub use plan::{CaId, CaSpec, LeafSpec, PkiPlan, Usage};
pub use renew::{RenewOptions, RenewReport, RenewSelection, renew};
pub use report::{CheckReport, CheckRow, FileProblem, KubeconfigRow};
pub use sync::{Stale, SyncOptions, SyncReport, sync};

/// Errors of the PKI crate. Each names the file or certificate it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what it should be (bad PEM, not a certificate, not a key).
    #[error("{}: {reason}; restore it, or delete it to have it made again", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The Secrets encryption configuration is unreadable or invalid. It is never replaced:
    /// a new key would leave every Secret encrypted with the old one unreadable.
    #[error("{}: {reason}; restore it from a control-plane node's copy or a backup (a new key would make the Secrets encrypted with the old one unreadable)", .path.display())]
    Encryption {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key does not belong to the certificate next to it.
    #[error("{} does not match {}: restore the right key, or delete both to have them made again", .key.display(), .cert.display())]
    KeyMismatch {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// A CA certificate exists without its key.
    #[error("{} is missing: the CA's key is needed to sign; restore it (an existing CA is never replaced)", .path.display())]
    CaKeyMissing {
        /// The missing key file.
        path: PathBuf,
    },
    /// A CA key exists without its certificate.
    #[error("{} is missing but its key is there: restore the certificate, or remove the key to start a new CA", .path.display())]
    CaCertMissing {
        /// The missing certificate.
        path: PathBuf,
    },
    /// An existing CA does not fit the spec's CA mode; it is never replaced.
    #[error("{}: {reason}; refusing to replace an existing CA", .path.display())]
    CaModeMismatch {
        /// The CA certificate.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// A node's copy of a CA or service-account key is not the operator's.
    #[error("{} differs from {}: a node must hold the cluster's own CA; remove the node copy to have it copied again", .copy.display(), .master.display())]
    CopyDiffers {
        /// The node's copy.
        copy: PathBuf,
        /// The master.
        master: PathBuf,
    },
    /// `renew` was asked for a name that is not in the directory.
    #[error("no certificate named {name:?}; known: {known}")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The names present.
        known: String,
    },
    /// `renew` was given nothing to renew: neither names nor "all".
    #[error("name the certificates to renew, or `all` to renew every one; known: {known}")]
    NothingSelected {
        /// The names present.
        known: String,
    },
    /// A validity asked for cannot be used (zero, or ending after the CA).
    #[error("invalid validity: {reason}")]
    InvalidValidity {
        /// Why.
        reason: String,
    },
    /// A certificate cannot be renewed.
    #[error("cannot renew {name}: {reason}")]
    CannotRenew {
        /// The certificate.
        name: String,
        /// Why.
        reason: String,
    },
    /// Key generation or signing failed.
    #[error("{0}")]
    Crypto(String),
    /// The plan asks for something this crate does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// Whether the error is the caller's input (names, validity, an unsupported or invalid
    /// setting): a CLI exits 2 for these, 1 for the others (what the directory holds, I/O).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::UnknownName { .. }
                | Error::NothingSelected { .. }
                | Error::InvalidValidity { .. }
                | Error::Unsupported(_)
                | Error::Encryption { .. }
        )
    }
}
