//! The PKI in memory: generated from a plan, or loaded from a directory and completed.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

use frankenetes_spec::CaMode;
use zeroize::Zeroizing;

use crate::Error;
use crate::encryption::{self, EncryptionConfiguration};
use crate::fsutil::{self, PUBLIC_MODE, SECRET_MODE, with_ext};
use crate::issue;
use crate::keys::PrivateKey;
use crate::plan::{CaId, CaSpec, LeafSpec, PkiPlan};
use crate::x509::{self, CertInfo};

/// A certificate authority: its certificate and (unless it is an offline root) its key.
pub struct Ca {
    spec: CaSpec,
    der: Vec<u8>,
    cert_pem: String,
    key: Option<(PrivateKey, Zeroizing<String>)>,
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
    /// The report name (`control-01/apiserver`).
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

/// A leaf on disk that no longer matches the plan. It is kept (and listed here) unless
/// [`SyncOptions::renew`] is set, in which case it is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stale {
    /// Report name.
    pub name: String,
    /// Certificate file, relative to the output root.
    pub path: PathBuf,
    /// Every reason.
    pub reasons: Vec<String>,
}

/// What [`sync`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SyncReport {
    /// Files written that did not exist.
    pub created: Vec<PathBuf>,
    /// Files overwritten, with the reason.
    pub replaced: Vec<(PathBuf, String)>,
    /// Files already there with the right content, left untouched.
    pub unchanged: usize,
    /// Leaves that do not match the plan and were kept (only without `renew`).
    pub stale: Vec<Stale>,
    /// Things worth knowing (a leaf clamped to its CA's lifetime, a CA copied back from a node).
    pub notes: Vec<String>,
}

/// Options of [`sync`].
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Replace leaves that no longer match the plan (SANs, subject, issuer, algorithm,
    /// expiry). CAs are never replaced.
    pub renew: bool,
}

impl SyncOptions {
    /// Sets [`SyncOptions::renew`].
    #[must_use]
    pub fn renew(mut self, renew: bool) -> Self {
        self.renew = renew;
        self
    }
}

/// The whole PKI in memory.
#[derive(Debug)]
pub struct Pki {
    plan: PkiPlan,
    cas: Vec<Ca>,
    service_account: (PrivateKey, Zeroizing<String>),
    leaves: Vec<Leaf>,
    /// The Secrets encryption configuration and its file text (kept byte for byte).
    encryption: Option<(EncryptionConfiguration, Zeroizing<String>)>,
}

impl Pki {
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
        self.leaves.iter().find(|l| l.spec.name() == name)
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
            push(
                with_ext(&leaf.spec.path, "crt"),
                leaf.chain_pem.as_bytes(),
                false,
            );
            push(
                with_ext(&leaf.spec.path, "key"),
                leaf.key_pem.as_bytes(),
                true,
            );
        }
        out
    }

    /// Writes every file under `dir` (keys 0600 by atomic rename), leaving files that already
    /// have the right content untouched. Returns the paths written.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        let mut report = SyncReport::default();
        write_files(dir, &self.files(), &mut report)?;
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

fn write_files(dir: &Path, files: &[OutputFile], report: &mut SyncReport) -> Result<(), Error> {
    let mut batch: Vec<(PathBuf, &[u8], u32)> = Vec::new();
    for f in files {
        let full = dir.join(&f.path);
        match std::fs::read(&full) {
            Ok(existing) if existing == *f.contents => {
                report.unchanged += 1;
                continue;
            }
            Ok(_) => {
                if !report.replaced.iter().any(|(p, _)| p == &f.path) {
                    report.replaced.push((f.path.clone(), "renewed".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.created.push(f.path.clone())
            }
            Err(source) => return Err(Error::Read { path: full, source }),
        }
        batch.push((
            full,
            &f.contents,
            if f.secret { SECRET_MODE } else { PUBLIC_MODE },
        ));
    }
    fsutil::write_batch(&batch)
}

/// Loads what `dir` already holds, checks it against the plan, generates what is missing (and,
/// with `renew`, replaces leaves that no longer match), and writes the result.
///
/// Nothing is written unless everything loaded cleanly: a corrupted PEM, a key that does not
/// match its certificate, or a CA that would have to be replaced is an error naming the file.
/// A second run on a complete directory changes no byte.
pub fn sync(plan: &PkiPlan, dir: &Path, opts: SyncOptions) -> Result<(Pki, SyncReport), Error> {
    let (pki, mut report) = build(plan, Some(dir), opts)?;
    let reasons: Vec<(PathBuf, String)> = std::mem::take(&mut report.replaced);
    write_files(dir, &pki.files(), &mut report)?;
    // Say why each replaced file was replaced, as the build decided.
    for (file, why) in &mut report.replaced {
        let base = file.with_extension("");
        if let Some((_, r)) = reasons.iter().find(|(b, _)| *b == base) {
            why.clone_from(r);
        }
    }
    Ok((pki, report))
}

/// A certificate file's text and the DER of each certificate in it.
type CertFile = (String, Vec<Vec<u8>>);
/// A key and its original PEM text.
type KeyFile = (PrivateKey, Zeroizing<String>);

struct Disk<'a>(Option<&'a Path>);

impl Disk<'_> {
    fn read(&self, rel: &Path) -> Result<Option<String>, Error> {
        match self.0 {
            None => Ok(None),
            Some(d) => fsutil::read_optional(&d.join(rel)),
        }
    }
    fn full(&self, rel: &Path) -> PathBuf {
        self.0.map_or_else(|| rel.to_owned(), |d| d.join(rel))
    }
    /// Reads `<base>.crt` (all certificates in it) and `<base>.key`; corrupt content is an
    /// error naming the file.
    fn pair(&self, base: &Path) -> Result<(Option<CertFile>, Option<KeyFile>), Error> {
        let crt = with_ext(base, "crt");
        let key_path = with_ext(base, "key");
        let cert = match self.read(&crt)? {
            None => None,
            Some(text) => {
                let ders = x509::pem_certs(&text).map_err(|reason| Error::Corrupt {
                    path: self.full(&crt),
                    reason,
                })?;
                for d in &ders {
                    x509::parse(d).map_err(|reason| Error::Corrupt {
                        path: self.full(&crt),
                        reason,
                    })?;
                }
                Some((text, ders))
            }
        };
        let key = match self.read(&key_path)? {
            None => None,
            Some(text) => {
                let k = PrivateKey::from_pem(&text).map_err(|e| Error::Corrupt {
                    path: self.full(&key_path),
                    reason: e.to_string(),
                })?;
                Some((k, Zeroizing::new(text)))
            }
        };
        if let (Some((_, ders)), Some((k, _))) = (&cert, &key) {
            let info = x509::parse(&ders[0]).map_err(|reason| Error::Corrupt {
                path: self.full(&crt),
                reason,
            })?;
            if info.spki != k.spki_der() {
                return Err(Error::KeyMismatch {
                    cert: self.full(&crt),
                    key: self.full(&key_path),
                });
            }
        }
        Ok((cert, key))
    }
}

enum CaPlan {
    Load {
        der: Vec<u8>,
        pem: String,
        key: Option<(PrivateKey, Zeroizing<String>)>,
    },
    Generate,
}

enum LeafPlan {
    Keep {
        der: Vec<u8>,
        pem: String,
        key: (PrivateKey, Zeroizing<String>),
    },
    /// Sign a new certificate; reuse the key if given.
    Issue {
        key: Option<(PrivateKey, Zeroizing<String>)>,
        reason: Option<String>,
    },
}

fn build(
    plan: &PkiPlan,
    dir: Option<&Path>,
    opts: SyncOptions,
) -> Result<(Pki, SyncReport), Error> {
    let disk = Disk(dir);
    let mut report = SyncReport::default();
    let ca_specs = plan.cas();

    // 1. The CAs: load, adopt a node's copy, or generate. Never replace.
    let mut ca_plans: Vec<(CaSpec, CaPlan)> = Vec::new();
    for spec in &ca_specs {
        let master = plan.ca_master(spec.id);
        let (mut cert, mut key) = disk.pair(&master)?;
        if cert.is_none() && key.is_none() {
            for (copy, with_key) in plan.ca_copies(spec.id) {
                if !with_key {
                    continue;
                }
                if let (Some(c), Some(k)) = disk.pair(&copy)? {
                    report.notes.push(format!(
                        "{} was missing; taken from {}",
                        with_ext(&master, "crt").display(),
                        with_ext(&copy, "crt").display()
                    ));
                    (cert, key) = (Some(c), Some(k));
                    break;
                }
            }
        }
        let p = match (cert, key) {
            (None, None) => CaPlan::Generate,
            (Some(_), None) if spec.id != CaId::Root => {
                return Err(Error::CaKeyMissing {
                    path: disk.full(&with_ext(&master, "key")),
                });
            }
            (None, Some(_)) => {
                return Err(Error::CaCertMissing {
                    path: disk.full(&with_ext(&master, "crt")),
                });
            }
            (Some((pem, ders)), key) => {
                let info = x509::parse(&ders[0]).map_err(|reason| Error::Corrupt {
                    path: disk.full(&with_ext(&master, "crt")),
                    reason,
                })?;
                let path = disk.full(&with_ext(&master, "crt"));
                if !info.is_ca {
                    return Err(Error::CaModeMismatch {
                        path,
                        reason: "it is not a CA certificate".into(),
                    });
                }
                match (spec.parent, info.is_self_issued()) {
                    (None, false) => {
                        return Err(Error::CaModeMismatch {
                            path,
                            reason:
                                "it is an intermediate CA, but caMode is kubeadm (self-signed CAs)"
                                    .into(),
                        });
                    }
                    (Some(_), true) => {
                        return Err(Error::CaModeMismatch {
                            path,
                            reason:
                                "it is self-signed, but caMode is intermediate (signed by the root)"
                                    .into(),
                        });
                    }
                    _ => {}
                }
                CaPlan::Load {
                    der: ders[0].clone(),
                    pem,
                    key,
                }
            }
        };
        ca_plans.push((spec.clone(), p));
    }
    // An intermediate that must be signed needs the root's key.
    for (spec, p) in &ca_plans {
        if let (Some(parent), CaPlan::Generate) = (spec.parent, p)
            && let Some((_, CaPlan::Load { key: None, .. })) =
                ca_plans.iter().find(|(s, _)| s.id == parent)
        {
            return Err(Error::CaKeyMissing {
                path: disk.full(&with_ext(&plan.ca_master(parent), "key")),
            });
        }
    }
    // Intermediates that were loaded must chain to the (loaded) root.
    for (spec, p) in &ca_plans {
        if let (Some(parent), CaPlan::Load { der, .. }) = (spec.parent, p) {
            let path = disk.full(&with_ext(&plan.ca_master(spec.id), "crt"));
            match ca_plans.iter().find(|(s, _)| s.id == parent) {
                Some((_, CaPlan::Load { der: root, .. })) => {
                    x509::verify_signed_by(der, root).map_err(|reason| Error::CaModeMismatch {
                        path,
                        reason: format!("not signed by the root CA: {reason}"),
                    })?;
                }
                _ => {
                    return Err(Error::CaModeMismatch {
                        path,
                        reason: format!(
                            "its root {} is missing; restore it",
                            with_ext(&plan.ca_master(parent), "crt").display()
                        ),
                    });
                }
            }
        }
    }
    // Copies of a CA on nodes must be the same CA.
    for (spec, p) in &ca_plans {
        let master = plan.ca_master(spec.id);
        for (copy, _) in plan.ca_copies(spec.id) {
            let (c, k) = disk.pair(&copy)?;
            let differs = match p {
                CaPlan::Load { der, key, .. } => {
                    c.as_ref().is_some_and(|(_, ders)| &ders[0] != der)
                        || matches!((&k, key), (Some((ck, _)), Some((mk, _))) if ck.spki_der() != mk.spki_der())
                }
                CaPlan::Generate => c.is_some() || k.is_some(),
            };
            if differs {
                return Err(Error::CopyDiffers {
                    copy: disk.full(&with_ext(&copy, "crt")),
                    master: disk.full(&with_ext(&master, "crt")),
                });
            }
        }
    }

    // 2. The service-account key: load, adopt, or generate; copies must match.
    let (sa_master, sa_copies) = plan.service_account_paths();
    let mut sa: Option<(PrivateKey, Zeroizing<String>)> = None;
    for base in std::iter::once(&sa_master).chain(&sa_copies) {
        let path = with_ext(base, "key");
        if let Some(text) = disk.read(&path)? {
            let k = PrivateKey::from_pem(&text).map_err(|e| Error::Corrupt {
                path: disk.full(&path),
                reason: e.to_string(),
            })?;
            match &sa {
                None => {
                    if base != &sa_master {
                        report.notes.push(format!(
                            "{} was missing; taken from {}",
                            with_ext(&sa_master, "key").display(),
                            path.display()
                        ));
                    }
                    sa = Some((k, Zeroizing::new(text)));
                }
                Some((m, _)) if m.spki_der() != k.spki_der() => {
                    return Err(Error::CopyDiffers {
                        copy: disk.full(&path),
                        master: disk.full(&with_ext(&sa_master, "key")),
                    });
                }
                Some(_) => {}
            }
        }
    }

    // 2b. The Secrets encryption configuration: load, adopt, or generate; copies must match.
    let encryption = if plan.encryption_at_rest {
        let master = encryption::master_path();
        let mut found: Option<(EncryptionConfiguration, Zeroizing<String>, PathBuf)> = None;
        let copies = plan.control_plane.iter().map(|n| encryption::node_path(n));
        for path in std::iter::once(master.clone()).chain(copies) {
            let Some(text) = disk.read(&path)? else {
                continue;
            };
            let text = Zeroizing::new(text);
            match &found {
                None => {
                    let cfg = EncryptionConfiguration::from_yaml(&text, &disk.full(&path))?;
                    if path != master {
                        report.notes.push(format!(
                            "{} was missing; taken from {}",
                            master.display(),
                            path.display()
                        ));
                    }
                    found = Some((cfg, text, path));
                }
                Some((_, t, first)) if *t != text => {
                    return Err(Error::CopyDiffers {
                        copy: disk.full(&path),
                        master: disk.full(first),
                    });
                }
                Some(_) => {}
            }
        }
        Some(match found {
            Some((cfg, text, _)) => (cfg, text),
            None => {
                let cfg = EncryptionConfiguration::generate()?;
                let text = cfg.to_yaml()?;
                (cfg, text)
            }
        })
    } else {
        None
    };

    // 3. The leaves: keep what is valid, note what is stale, issue what is missing.
    let mut leaf_plans: Vec<(LeafSpec, LeafPlan)> = Vec::new();
    for leaf in &plan.leaves {
        let (cert, key) = disk.pair(&leaf.path)?;
        let crt_path = with_ext(&leaf.path, "crt");
        let p =
            match (cert, key) {
                (None, None) => LeafPlan::Issue {
                    key: None,
                    reason: None,
                },
                (Some(_), None) => LeafPlan::Issue {
                    key: None,
                    reason: Some("its key was missing".into()),
                },
                (None, Some(k)) => {
                    if k.0.algorithm() == Some(plan.key_algorithm) {
                        LeafPlan::Issue {
                            key: Some(k),
                            reason: None,
                        }
                    } else {
                        LeafPlan::Issue {
                            key: None,
                            reason: None,
                        }
                    }
                }
                (Some((pem, ders)), Some(k)) => {
                    let issuer = ca_plans.iter().find(|(s, _)| s.id == leaf.issuer).and_then(
                        |(_, p)| match p {
                            CaPlan::Load { der, .. } => Some(der.as_slice()),
                            CaPlan::Generate => None,
                        },
                    );
                    let reasons = leaf_problems(plan, leaf, &ders, &k.0, issuer);
                    if reasons.is_empty() {
                        LeafPlan::Keep {
                            der: ders[0].clone(),
                            pem,
                            key: k,
                        }
                    } else if opts.renew {
                        LeafPlan::Issue {
                            key: None,
                            reason: Some(reasons.join("; ")),
                        }
                    } else {
                        report.stale.push(Stale {
                            name: leaf.name(),
                            path: crt_path,
                            reasons,
                        });
                        LeafPlan::Keep {
                            der: ders[0].clone(),
                            pem,
                            key: k,
                        }
                    }
                }
            };
        if let LeafPlan::Issue {
            reason: Some(r), ..
        } = &p
        {
            report.replaced.push((leaf.path.clone(), r.clone()));
        }
        leaf_plans.push((leaf.clone(), p));
    }

    // 4. New keys, all at once (on every core for RSA).
    let wanted = ca_plans
        .iter()
        .filter(|(_, p)| matches!(p, CaPlan::Generate))
        .count()
        + usize::from(sa.is_none())
        + leaf_plans
            .iter()
            .filter(|(_, p)| matches!(p, LeafPlan::Issue { key: None, .. }))
            .count();
    let mut fresh: VecDeque<PrivateKey> = PrivateKey::generate_many(plan.key_algorithm, wanted)
        .map_err(|e| Error::Crypto(e.to_string()))?
        .into();
    let mut take_key = || -> Result<(PrivateKey, Zeroizing<String>), Error> {
        let k = fresh
            .pop_front()
            .ok_or_else(|| Error::Crypto("internal: key pool exhausted".into()))?;
        let pem = k.to_pem();
        Ok((k, pem))
    };

    // 5. Sign, parents first.
    let not_before = plan.not_before();
    let mut cas: Vec<Ca> = Vec::new();
    for (spec, p) in ca_plans {
        let (der, pem, key) = match p {
            CaPlan::Load { der, pem, key } => (der, pem, key),
            CaPlan::Generate => {
                let key = take_key()?;
                let mut not_after = plan.now + plan.ca_validity;
                let issuer = match spec.parent {
                    None => None,
                    Some(parent) => {
                        let parent = cas
                            .iter()
                            .find(|c| c.spec.id == parent)
                            .ok_or_else(|| Error::Crypto("internal: parent CA missing".into()))?;
                        not_after = not_after.min(parent.info.not_after);
                        let pk = parent.key.as_ref().map(|k| &k.0).ok_or_else(|| {
                            Error::CaKeyMissing {
                                path: disk.full(&with_ext(&plan.ca_master(parent.spec.id), "key")),
                            }
                        })?;
                        Some((parent.der.as_slice(), pk))
                    }
                };
                let params = issue::ca_params(&spec, not_before, not_after)?;
                let der = issue::sign(&params, &key.0, issuer)?;
                let pem = x509::to_pem(&[&der]);
                (der, pem, Some(key))
            }
        };
        let info = x509::parse(&der).map_err(Error::Crypto)?;
        cas.push(Ca {
            spec,
            der,
            cert_pem: pem,
            key,
            info,
        });
    }
    let service_account = match sa {
        Some(k) => k,
        None => take_key()?,
    };
    let mut leaves = Vec::new();
    for (spec, p) in leaf_plans {
        let (der, chain_pem, key) = match p {
            LeafPlan::Keep { der, pem, key } => (der, pem, key),
            LeafPlan::Issue { key, .. } => {
                let key = match key {
                    Some(k) => k,
                    None => take_key()?,
                };
                let ca = cas
                    .iter()
                    .find(|c| c.spec.id == spec.issuer)
                    .ok_or_else(|| Error::Crypto("internal: issuer missing".into()))?;
                let ca_key = ca
                    .key
                    .as_ref()
                    .map(|k| &k.0)
                    .ok_or_else(|| Error::CaKeyMissing {
                        path: disk.full(&with_ext(&plan.ca_master(ca.spec.id), "key")),
                    })?;
                let wanted_end = plan.now + plan.cert_validity;
                let not_after = wanted_end.min(ca.info.not_after);
                if not_after < wanted_end {
                    report.notes.push(format!(
                        "{} ends with its CA {} on {}, before the {} asked for",
                        spec.name(),
                        ca.spec.id.name(),
                        crate::check::format_time(not_after),
                        frankenetes_spec::GoDuration::new(plan.cert_validity)
                    ));
                }
                let params = issue::leaf_params(
                    &spec,
                    key.0.algorithm().is_some_and(|a| a.is_rsa()),
                    not_before,
                    not_after,
                )?;
                let der = issue::sign(&params, &key.0, Some((&ca.der, ca_key)))?;
                let chain = if plan.ca_mode == CaMode::Intermediate {
                    vec![der.as_slice(), ca.der.as_slice()]
                } else {
                    vec![der.as_slice()]
                };
                let pem = x509::to_pem(&chain);
                (der, pem, key)
            }
        };
        let info = x509::parse(&der).map_err(Error::Crypto)?;
        leaves.push(Leaf {
            spec,
            der,
            chain_pem,
            key_pem: key.1,
            info,
        });
    }
    Ok((
        Pki {
            plan: plan.clone(),
            cas,
            service_account,
            leaves,
            encryption,
        },
        report,
    ))
}

/// Why a leaf on disk does not match its plan; empty when it does.
pub(crate) fn leaf_problems(
    plan: &PkiPlan,
    leaf: &LeafSpec,
    ders: &[Vec<u8>],
    key: &PrivateKey,
    issuer: Option<&[u8]>,
) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(info) = x509::parse(&ders[0]) else {
        return vec!["cannot be parsed".into()];
    };
    match issuer {
        Some(der) => {
            if let Err(e) = x509::verify_signed_by(&ders[0], der) {
                out.push(format!(
                    "not signed by the current {}: {e}",
                    leaf.issuer.name()
                ));
            } else {
                let want_chain = plan.ca_mode == CaMode::Intermediate;
                let has_chain = ders.get(1).is_some_and(|d| d.as_slice() == der);
                if want_chain != has_chain || ders.len() > 2 {
                    out.push(
                        if want_chain {
                            "the file lacks its intermediate CA"
                        } else {
                            "the file carries extra certificates"
                        }
                        .into(),
                    );
                }
            }
        }
        None => out.push(format!("its CA {} is new", leaf.issuer.name())),
    }
    if info.common_name.as_deref() != Some(leaf.common_name.as_str()) {
        out.push(format!(
            "CN is {:?}, expected {:?}",
            info.common_name.as_deref().unwrap_or_default(),
            leaf.common_name
        ));
    }
    if info.organizations != leaf.organizations {
        out.push(format!(
            "O is {:?}, expected {:?}",
            info.organizations, leaf.organizations
        ));
    }
    let mut have = info.sans();
    let mut want: Vec<String> = leaf.sans.iter().map(ToString::to_string).collect();
    have.sort();
    want.sort();
    if have != want {
        let missing: Vec<&String> = want.iter().filter(|w| !have.contains(w)).collect();
        let extra: Vec<&String> = have.iter().filter(|h| !want.contains(h)).collect();
        let mut m = "SANs differ from the spec".to_owned();
        if !missing.is_empty() {
            m.push_str(&format!(", missing {}", join(&missing)));
        }
        if !extra.is_empty() {
            m.push_str(&format!(", not in the spec {}", join(&extra)));
        }
        out.push(m);
    }
    if info.server_auth != leaf.usage.server() || info.client_auth != leaf.usage.client() {
        out.push("extended key usage differs from its profile".into());
    }
    if key.algorithm() != Some(plan.key_algorithm) {
        out.push(format!(
            "key is {}, the spec asks for {}",
            key.describe(),
            plan.key_algorithm.as_str()
        ));
    }
    if info.not_after <= plan.now {
        out.push(format!(
            "expired on {}",
            crate::check::format_time(info.not_after)
        ));
    }
    out
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
