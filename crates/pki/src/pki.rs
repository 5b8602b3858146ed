//! The PKI in memory: generated from a plan, or loaded from a directory and completed.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::Error;
use crate::build::{KeyFile, build};
use crate::encryption::{self, EncryptionConfiguration};
use crate::fsutil::with_ext;
use crate::id::LeafId;
use crate::keys::PrivateKey;
use crate::plan::{CaId, CaSpec, LeafSpec, PkiPlan};
use crate::sync::{SyncOptions, SyncReport, write_files};
use crate::x509::{self, CertInfo};

/// A certificate authority: its certificate and (unless it is an offline root) its key.
pub struct Ca {
    spec: CaSpec,
    der: Vec<u8>,
    cert_pem: String,
    key: Option<KeyFile>,
    info: CertInfo,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("id", &self.spec.id)
            .field("subject", &self.info.common_name)
            .field("key", &self.key.as_ref().map(|k| &k.0))
            .finish()
    }
}

impl Ca {
    pub(crate) fn new(
        spec: CaSpec,
        der: Vec<u8>,
        cert_pem: String,
        key: Option<KeyFile>,
    ) -> Result<Self, Error> {
        let info = x509::parse(&der).map_err(Error::Crypto)?;
        Ok(Self {
            spec,
            der,
            cert_pem,
            key,
            info,
        })
    }

    /// The key, to sign with.
    pub(crate) fn key(&self) -> Option<&PrivateKey> {
        self.key.as_ref().map(|k| &k.0)
    }

    /// Which CA.
    pub fn id(&self) -> CaId {
        self.spec.id
    }
    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.der
    }
    /// The certificate as read back by `x509-parser`.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }
    /// The private key, PEM, if present.
    pub fn key_pem(&self) -> Option<&str> {
        self.key.as_ref().map(|k| k.1.as_str())
    }
}

/// A leaf certificate and its key.
pub struct Leaf {
    spec: LeafSpec,
    der: Vec<u8>,
    chain_pem: String,
    key_pem: Zeroizing<String>,
    info: CertInfo,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field("name", &self.spec.name())
            .field("subject", &self.info.common_name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Leaf {
    pub(crate) fn new(
        spec: LeafSpec,
        der: Vec<u8>,
        chain_pem: String,
        key_pem: Zeroizing<String>,
    ) -> Result<Self, Error> {
        let info = x509::parse(&der).map_err(Error::Crypto)?;
        Ok(Self {
            spec,
            der,
            chain_pem,
            key_pem,
            info,
        })
    }

    /// Which certificate.
    pub fn id(&self) -> &LeafId {
        &self.spec.id
    }

    /// The report name (`control-01/apiserver`): the id's `Display`.
    pub fn name(&self) -> String {
        self.spec.name()
    }
    /// What was planned for it.
    pub fn spec(&self) -> &LeafSpec {
        &self.spec
    }
    /// The certificate file's content: the leaf, followed by its intermediate in
    /// `intermediate` mode.
    pub fn cert_pem(&self) -> &str {
        &self.chain_pem
    }
    /// The leaf certificate alone, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.der
    }
    /// The private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
    /// The certificate as read back by `x509-parser`.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }
}

/// One file of the PKI, relative to the output root. `Debug` hides the content of secrets.
#[derive(Clone)]
#[non_exhaustive]
pub struct OutputFile {
    /// Path relative to the output root.
    pub path: PathBuf,
    /// The bytes.
    pub contents: Zeroizing<Vec<u8>>,
    /// A private key: written 0600, never logged.
    pub secret: bool,
}

impl fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = if self.secret {
            "<redacted>".to_owned()
        } else {
            format!("{} bytes", self.contents.len())
        };
        f.debug_struct("OutputFile")
            .field("path", &self.path)
            .field("contents", &body)
            .finish()
    }
}

/// The whole PKI in memory.
#[derive(Debug)]
pub struct Pki {
    plan: PkiPlan,
    cas: Vec<Ca>,
    service_account: KeyFile,
    leaves: Vec<Leaf>,
    /// The Secrets encryption configuration and its file text (kept byte for byte).
    encryption: Option<(EncryptionConfiguration, Zeroizing<String>)>,
}

impl Pki {
    pub(crate) fn from_parts(
        plan: PkiPlan,
        cas: Vec<Ca>,
        service_account: KeyFile,
        leaves: Vec<Leaf>,
        encryption: Option<(EncryptionConfiguration, Zeroizing<String>)>,
    ) -> Self {
        Self {
            plan,
            cas,
            service_account,
            leaves,
            encryption,
        }
    }

    /// Generates everything the plan names, in memory.
    pub fn generate(plan: &PkiPlan) -> Result<Pki, Error> {
        Ok(build(plan, None, SyncOptions::default())?.0)
    }

    /// The plan it was built from.
    pub fn plan(&self) -> &PkiPlan {
        &self.plan
    }

    /// A CA.
    pub fn ca(&self, id: CaId) -> Option<&Ca> {
        self.cas.iter().find(|c| c.spec.id == id)
    }

    /// Every CA, parents first.
    pub fn cas(&self) -> &[Ca] {
        &self.cas
    }

    /// A leaf by name (`control-01/apiserver`, `admin`).
    pub fn leaf(&self, name: &str) -> Option<&Leaf> {
        self.leaf_by_id(&name.parse().ok()?)
    }

    /// A leaf by id.
    pub fn leaf_by_id(&self, id: &LeafId) -> Option<&Leaf> {
        self.leaves.iter().find(|l| &l.spec.id == id)
    }

    /// Every leaf, in plan order.
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// The Secrets encryption configuration (`encryption-config.yaml`), unless the plan turned
    /// encryption at rest off.
    pub fn encryption_config(&self) -> Option<&EncryptionConfiguration> {
        self.encryption.as_ref().map(|e| &e.0)
    }

    /// The service-account signing key (`sa.key`), PEM.
    pub fn service_account_key_pem(&self) -> &str {
        &self.service_account.1
    }

    /// The service-account public key (`sa.pub`), PEM.
    pub fn service_account_pub_pem(&self) -> String {
        self.service_account.0.public_key_pem()
    }

    /// The trust anchor for clients of this CA: the CA certificate itself, in both modes. In
    /// `intermediate` mode the root is deliberately left out, so that a certificate from a
    /// sibling intermediate (etcd's, say) is never accepted where a Kubernetes one is expected.
    pub fn trust_anchor_pem(&self, id: CaId) -> Option<&str> {
        self.ca(id).map(Ca::cert_pem)
    }

    /// Every file, with its path relative to the output root.
    pub fn files(&self) -> Vec<OutputFile> {
        let mut out = Vec::new();
        let mut push = |path: PathBuf, contents: &[u8], secret: bool| {
            out.push(OutputFile {
                path,
                contents: Zeroizing::new(contents.to_vec()),
                secret,
            });
        };
        for ca in &self.cas {
            let master = self.plan.ca_master(ca.spec.id);
            push(with_ext(&master, "crt"), ca.cert_pem.as_bytes(), false);
            if let Some((_, pem)) = &ca.key {
                push(with_ext(&master, "key"), pem.as_bytes(), true);
            }
            for (copy, with_key) in self.plan.ca_copies(ca.spec.id) {
                push(with_ext(&copy, "crt"), ca.cert_pem.as_bytes(), false);
                if let (true, Some((_, pem))) = (with_key, &ca.key) {
                    push(with_ext(&copy, "key"), pem.as_bytes(), true);
                }
            }
            if ca.spec.parent.is_some() {
                // The chain an operator holding only the root can verify intermediates with.
                if let Some(root) = self.ca(CaId::Root) {
                    let chain = format!("{}{}", ca.cert_pem, root.cert_pem);
                    push(
                        master.with_file_name(format!("{}-chain.crt", file_stem(&master))),
                        chain.as_bytes(),
                        false,
                    );
                }
            }
        }
        let (master, copies) = self.plan.service_account_paths();
        let sa_pub = self.service_account_pub_pem();
        for base in std::iter::once(master).chain(copies) {
            push(
                with_ext(&base, "key"),
                self.service_account.1.as_bytes(),
                true,
            );
            push(with_ext(&base, "pub"), sa_pub.as_bytes(), false);
        }
        if let Some((_, text)) = &self.encryption {
            push(encryption::master_path(), text.as_bytes(), true);
            for n in &self.plan.control_plane {
                push(encryption::node_path(n), text.as_bytes(), true);
            }
        }
        for leaf in &self.leaves {
            let base = leaf.spec.path();
            push(with_ext(&base, "crt"), leaf.chain_pem.as_bytes(), false);
            push(with_ext(&base, "key"), leaf.key_pem.as_bytes(), true);
        }
        out
    }

    /// Writes every file under `dir` (keys 0600 by atomic rename), leaving files that already
    /// have the right content untouched. Returns the paths written.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        let mut report = SyncReport::default();
        write_files(dir, &self.files(), false, &mut report)?;
        Ok(report
            .created
            .into_iter()
            .chain(report.replaced.into_iter().map(|(p, _)| p))
            .collect())
    }
}

fn file_stem(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
