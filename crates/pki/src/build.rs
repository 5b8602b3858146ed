//! Building the PKI from a plan and what a directory already holds, in named steps: load the
//! CAs ([`load_cas`]) and check them ([`check_ca_parents`], [`check_ca_copies`]), load the
//! service-account key ([`load_service_account`]) and the encryption configuration
//! ([`load_encryption`]), decide each leaf ([`plan_leaves`]), make the new keys ([`KeyPool`]),
//! then sign: CAs ([`sign_cas`]) and leaves ([`sign_leaves`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use frankenetes_spec::CaMode;
use zeroize::Zeroizing;

use crate::Error;
use crate::encryption::{self, EncryptionConfiguration};
use crate::fsutil::{self, with_ext};
use crate::issue;
use crate::keys::PrivateKey;
use crate::pki::{Ca, Leaf, Pki};
use crate::plan::{CaId, CaSpec, LeafSpec, PkiPlan};
use crate::sync::{Stale, SyncOptions, SyncReport};
use crate::x509;

/// A certificate file's text and the DER of each certificate in it.
type CertFile = (String, Vec<Vec<u8>>);
/// A key and its original PEM text.
pub(crate) type KeyFile = (PrivateKey, Zeroizing<String>);

/// The directory being completed (`None`: generate everything in memory).
pub(crate) struct Disk<'a>(pub(crate) Option<&'a Path>);

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
        let corrupt = |reason| Error::Corrupt {
            path: self.full(&crt),
            reason,
        };
        let cert = match self.read(&crt)? {
            None => None,
            Some(text) => {
                let ders = x509::pem_certs(&text).map_err(corrupt)?;
                for d in &ders {
                    x509::parse(d).map_err(corrupt)?;
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
            let info = x509::parse(&ders[0]).map_err(corrupt)?;
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

/// What to do about one CA.
enum CaPlan {
    Load {
        der: Vec<u8>,
        pem: String,
        key: Option<KeyFile>,
    },
    Generate,
}

impl CaPlan {
    fn der(&self) -> Option<&[u8]> {
        match self {
            CaPlan::Load { der, .. } => Some(der),
            CaPlan::Generate => None,
        }
    }
}

/// What to do about one leaf.
enum LeafPlan {
    Keep {
        der: Vec<u8>,
        pem: String,
        key: KeyFile,
    },
    /// Sign a new certificate; reuse the key if given.
    Issue {
        key: Option<KeyFile>,
        reason: Option<String>,
    },
}

/// Loads what `dir` holds (nothing when `None`), checks it against the plan, and completes it
/// in memory. Nothing is written here.
pub(crate) fn build(
    plan: &PkiPlan,
    dir: Option<&Path>,
    opts: SyncOptions,
) -> Result<(Pki, SyncReport), Error> {
    let disk = Disk(dir);
    let mut report = SyncReport::default();
    let ca_plans = load_cas(plan, &disk, &mut report)?;
    check_ca_parents(plan, &disk, &ca_plans)?;
    check_ca_copies(plan, &disk, &ca_plans)?;
    let sa = load_service_account(plan, &disk, &mut report)?;
    let encryption = load_encryption(plan, &disk, &mut report)?;
    let leaf_plans = plan_leaves(plan, &disk, &ca_plans, opts, &mut report)?;

    let wanted = ca_plans
        .iter()
        .filter(|(_, p)| matches!(p, CaPlan::Generate))
        .count()
        + usize::from(sa.is_none())
        + leaf_plans
            .iter()
            .filter(|(_, p)| matches!(p, LeafPlan::Issue { key: None, .. }))
            .count();
    let mut keys = KeyPool::new(plan, wanted)?;
    let cas = sign_cas(plan, &disk, ca_plans, &mut keys)?;
    let service_account = match sa {
        Some(k) => k,
        None => keys.take()?,
    };
    let leaves = sign_leaves(plan, &disk, &cas, leaf_plans, &mut keys, &mut report)?;
    let pki = Pki::from_parts(plan.clone(), cas, service_account, leaves, encryption);
    Ok((pki, report))
}

/// Step 1: each CA is loaded, adopted from a control-plane node's copy, or to be generated.
/// A CA is never replaced.
fn load_cas(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    report: &mut SyncReport,
) -> Result<Vec<(CaSpec, CaPlan)>, Error> {
    let mut out = Vec::new();
    for spec in plan.cas() {
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
                check_ca_shape(&spec, &ders[0], disk.full(&with_ext(&master, "crt")))?;
                CaPlan::Load {
                    der: ders[0].clone(),
                    pem,
                    key,
                }
            }
        };
        out.push((spec, p));
    }
    Ok(out)
}

/// A loaded CA must be a CA, self-signed in `kubeadm` mode, signed by the root in
/// `intermediate` mode.
fn check_ca_shape(spec: &CaSpec, der: &[u8], path: PathBuf) -> Result<(), Error> {
    let info = x509::parse(der).map_err(|reason| Error::Corrupt {
        path: path.clone(),
        reason,
    })?;
    let reason = if !info.is_ca {
        "it is not a CA certificate"
    } else {
        match (spec.parent, info.is_self_issued()) {
            (None, false) => "it is an intermediate CA, but caMode is kubeadm (self-signed CAs)",
            (Some(_), true) => "it is self-signed, but caMode is intermediate (signed by the root)",
            _ => return Ok(()),
        }
    };
    Err(Error::CaModeMismatch {
        path,
        reason: reason.into(),
    })
}

/// Step 1b: an intermediate to be signed needs the root's key; a loaded intermediate must
/// chain to the loaded root.
fn check_ca_parents(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    ca_plans: &[(CaSpec, CaPlan)],
) -> Result<(), Error> {
    let find = |id: CaId| ca_plans.iter().find(|(s, _)| s.id == id).map(|(_, p)| p);
    for (spec, p) in ca_plans {
        let Some(parent) = spec.parent else { continue };
        match (p, find(parent)) {
            (CaPlan::Generate, Some(CaPlan::Load { key: None, .. })) => {
                return Err(Error::CaKeyMissing {
                    path: disk.full(&with_ext(&plan.ca_master(parent), "key")),
                });
            }
            (CaPlan::Load { der, .. }, parent_plan) => {
                let path = disk.full(&with_ext(&plan.ca_master(spec.id), "crt"));
                let Some(root) = parent_plan.and_then(CaPlan::der) else {
                    return Err(Error::CaModeMismatch {
                        path,
                        reason: format!(
                            "its root {} is missing; restore it",
                            with_ext(&plan.ca_master(parent), "crt").display()
                        ),
                    });
                };
                x509::verify_signed_by(der, root).map_err(|reason| Error::CaModeMismatch {
                    path,
                    reason: format!("not signed by the root CA: {reason}"),
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Step 1c: copies of a CA on nodes must be the same CA (a copy of a CA still to be made must
/// not exist).
fn check_ca_copies(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    ca_plans: &[(CaSpec, CaPlan)],
) -> Result<(), Error> {
    for (spec, p) in ca_plans {
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
    Ok(())
}

/// Step 2: the service-account key: loaded, adopted from a node's copy, or `None` (to be
/// generated); every copy must be the same key.
fn load_service_account(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    report: &mut SyncReport,
) -> Result<Option<KeyFile>, Error> {
    let (sa_master, sa_copies) = plan.service_account_paths();
    let mut sa: Option<KeyFile> = None;
    for base in std::iter::once(&sa_master).chain(&sa_copies) {
        let path = with_ext(base, "key");
        let Some(text) = disk.read(&path)? else {
            continue;
        };
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
    Ok(sa)
}

/// Step 2b: the Secrets encryption configuration: loaded, adopted, or generated (when the plan
/// wants one); every copy must be the same text.
fn load_encryption(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    report: &mut SyncReport,
) -> Result<Option<(EncryptionConfiguration, Zeroizing<String>)>, Error> {
    if !plan.encryption_at_rest {
        return Ok(None);
    }
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
    Ok(Some(match found {
        Some((cfg, text, _)) => (cfg, text),
        None => {
            let cfg = EncryptionConfiguration::generate()?;
            let text = cfg.to_yaml()?;
            (cfg, text)
        }
    }))
}

/// Step 3: each leaf is kept (valid), kept and reported stale (no longer matches the plan,
/// without `renew`), or to be issued (missing, or stale with `renew`).
fn plan_leaves(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    ca_plans: &[(CaSpec, CaPlan)],
    opts: SyncOptions,
    report: &mut SyncReport,
) -> Result<Vec<(LeafSpec, LeafPlan)>, Error> {
    let mut out = Vec::with_capacity(plan.leaves.len());
    for leaf in &plan.leaves {
        let path = leaf.path();
        let issue = |key, reason| LeafPlan::Issue { key, reason };
        let p = match disk.pair(&path)? {
            (None, None) => issue(None, None),
            (Some(_), None) => issue(None, Some("its key was missing".into())),
            // A key of the wrong algorithm is replaced too.
            (None, Some(k)) => match k.0.algorithm() == Some(plan.key_algorithm) {
                true => issue(Some(k), None),
                false => issue(None, None),
            },
            (Some((pem, ders)), Some(key)) => {
                let issuer = ca_plans
                    .iter()
                    .find(|(s, _)| s.id == leaf.issuer)
                    .and_then(|(_, p)| p.der());
                let mut reasons =
                    crate::leaf_check::leaf_problems(plan, leaf, &ders, &key.0, issuer);
                let expiring = opts.renew_within.and_then(|w| expiring(plan, &ders[0], w));
                let keep = LeafPlan::Keep {
                    der: ders[0].clone(),
                    pem,
                    key,
                };
                if let Some(why) = expiring {
                    if !reasons.iter().any(|r| r.starts_with("expired on")) {
                        reasons.push(why);
                    }
                    issue(None, Some(reasons.join("; ")))
                } else if reasons.is_empty() {
                    keep
                } else if opts.renew {
                    issue(None, Some(reasons.join("; ")))
                } else {
                    report.stale.push(Stale {
                        name: leaf.name(),
                        id: leaf.id.clone(),
                        path: with_ext(&path, "crt"),
                        reasons,
                    });
                    keep
                }
            }
        };
        if let LeafPlan::Issue {
            reason: Some(r), ..
        } = &p
        {
            report.replaced.push((path, r.clone()));
        }
        out.push((leaf.clone(), p));
    }
    Ok(out)
}

/// Why a leaf is renewed by [`SyncOptions::renew_within`]: it ends within `window` of the
/// plan's clock, the window capped at half the planned validity.
fn expiring(plan: &PkiPlan, der: &[u8], window: std::time::Duration) -> Option<String> {
    let info = x509::parse(der).ok()?;
    let half = plan.cert_validity / 2;
    let window = time::Duration::try_from(window)
        .unwrap_or(time::Duration::MAX)
        .min(time::Duration::try_from(half).unwrap_or(time::Duration::MAX));
    if info.not_after <= plan.now {
        Some(format!(
            "expired on {}",
            crate::report::format_time(info.not_after)
        ))
    } else if info.not_after <= plan.now + window {
        Some(format!(
            "expires on {}, within the renewal window",
            crate::report::format_time(info.not_after)
        ))
    } else {
        None
    }
}

/// Step 4: the new keys, made all at once (on every core for RSA).
struct KeyPool(VecDeque<PrivateKey>);

impl KeyPool {
    fn new(plan: &PkiPlan, n: usize) -> Result<Self, Error> {
        let keys = PrivateKey::generate_many(plan.key_algorithm, n)
            .map_err(|e| Error::Crypto(e.to_string()))?;
        Ok(Self(keys.into()))
    }

    fn take(&mut self) -> Result<KeyFile, Error> {
        let k = self
            .0
            .pop_front()
            .ok_or_else(|| Error::Crypto("internal: key pool exhausted".into()))?;
        let pem = k.to_pem();
        Ok((k, pem))
    }
}

/// Step 5: the CAs, parents first: loaded ones as they are, new ones signed (by their parent in
/// `intermediate` mode, never past its end).
fn sign_cas(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    ca_plans: Vec<(CaSpec, CaPlan)>,
    keys: &mut KeyPool,
) -> Result<Vec<Ca>, Error> {
    let not_before = plan.not_before();
    let mut cas: Vec<Ca> = Vec::new();
    for (spec, p) in ca_plans {
        let (der, pem, key) = match p {
            CaPlan::Load { der, pem, key } => (der, pem, key),
            CaPlan::Generate => {
                let key = keys.take()?;
                let mut not_after = plan.now + plan.ca_validity;
                let issuer = match spec.parent {
                    None => None,
                    Some(parent) => {
                        let parent = cas
                            .iter()
                            .find(|c| c.id() == parent)
                            .ok_or_else(|| Error::Crypto("internal: parent CA missing".into()))?;
                        not_after = not_after.min(parent.info().not_after);
                        let pk = parent.key().ok_or_else(|| Error::CaKeyMissing {
                            path: disk.full(&with_ext(&plan.ca_master(parent.id()), "key")),
                        })?;
                        Some((parent.cert_der(), pk))
                    }
                };
                let params = issue::ca_params(&spec, not_before, not_after)?;
                let der = issue::sign(&params, &key.0, issuer)?;
                let pem = x509::to_pem(&[&der]);
                (der, pem, Some(key))
            }
        };
        cas.push(Ca::new(spec, der, pem, key)?);
    }
    Ok(cas)
}

/// Step 6: the leaves, in plan order: kept ones as they are, the others signed by their CA,
/// never past its end (noted when that cuts the validity asked for). Keys are taken from the
/// pool in plan order; the signatures are made on every core (a thousand nodes are thousands
/// of leaves).
fn sign_leaves(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    cas: &[Ca],
    leaf_plans: Vec<(LeafSpec, LeafPlan)>,
    keys: &mut KeyPool,
    report: &mut SyncReport,
) -> Result<Vec<Leaf>, Error> {
    use rayon::prelude::*;
    enum Job {
        Keep { der: Vec<u8>, pem: String },
        Sign,
    }
    let jobs = leaf_plans
        .into_iter()
        .map(|(spec, p)| {
            Ok(match p {
                LeafPlan::Keep { der, pem, key } => (spec, Job::Keep { der, pem }, key),
                LeafPlan::Issue { key, .. } => {
                    let key = match key {
                        Some(k) => k,
                        None => keys.take()?,
                    };
                    (spec, Job::Sign, key)
                }
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let signed: Vec<Result<(Leaf, Option<String>), Error>> = jobs
        .into_par_iter()
        .map(|(spec, job, key)| {
            let (der, chain_pem, note) = match job {
                Job::Keep { der, pem } => (der, pem, None),
                Job::Sign => {
                    let (der, pem, note) = sign_leaf(plan, disk, cas, &spec, &key.0)?;
                    (der, pem, note)
                }
            };
            Ok((Leaf::new(spec, der, chain_pem, key.1)?, note))
        })
        .collect();
    let mut leaves = Vec::with_capacity(signed.len());
    for r in signed {
        let (leaf, note) = r?;
        report.notes.extend(note);
        leaves.push(leaf);
    }
    Ok(leaves)
}

/// Signs one leaf: its certificate (DER) and its file's content (with the intermediate in
/// `intermediate` mode).
fn sign_leaf(
    plan: &PkiPlan,
    disk: &Disk<'_>,
    cas: &[Ca],
    spec: &LeafSpec,
    key: &PrivateKey,
) -> Result<(Vec<u8>, String, Option<String>), Error> {
    let ca = cas
        .iter()
        .find(|c| c.id() == spec.issuer)
        .ok_or_else(|| Error::Crypto("internal: issuer missing".into()))?;
    let ca_key = ca.key().ok_or_else(|| Error::CaKeyMissing {
        path: disk.full(&with_ext(&plan.ca_master(ca.id()), "key")),
    })?;
    let wanted_end = plan.now + plan.cert_validity;
    let not_after = wanted_end.min(ca.info().not_after);
    let mut note = None;
    if not_after < wanted_end {
        note = Some(format!(
            "{} ends with its CA {} on {}, before the {} asked for",
            spec.name(),
            ca.id().name(),
            crate::report::format_time(not_after),
            frankenetes_spec::GoDuration::new(plan.cert_validity)
        ));
    }
    let params = issue::leaf_params(
        &issue::Profile::of(spec),
        key.algorithm().is_some_and(|a| a.is_rsa()),
        plan.not_before(),
        not_after,
    )?;
    let der = issue::sign(&params, key, Some((ca.cert_der(), ca_key)))?;
    let chain = if plan.ca_mode == CaMode::Intermediate {
        vec![der.as_slice(), ca.cert_der()]
    } else {
        vec![der.as_slice()]
    };
    let pem = x509::to_pem(&chain);
    Ok((der, pem, note))
}
