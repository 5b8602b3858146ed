//! Reading a directory for `check`, `renew` and the expiry summaries: every certificate file
//! with its key, every service-account key, every kubeconfig (found by content), and the
//! temporary files a killed run left.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::Error;
use crate::fsutil::{self, with_ext};
use crate::id::LeafId;
use crate::keys::PrivateKey;
use crate::kubeconfig::{self, Kubeconfig};
use crate::plan::name_for_path;
use crate::x509::{self, CertInfo};

/// Files larger than this are not read as kubeconfigs.
const KUBECONFIG_MAX: u64 = 1 << 20;
/// Files that are never kubeconfigs, not worth reading: Ignition configs (a node's whole
/// bundle, its kubeconfigs base64-encoded inside), public keys, requests, logs.
const NOT_KUBECONFIGS: [&str; 4] = [".ign", ".pub", ".csr", ".log"];

/// A certificate file found in the directory.
pub(crate) struct Entry {
    /// The `.crt` file, relative to the directory.
    pub(crate) rel: PathBuf,
    /// Report name: the leaf id's `Display`, or the kubeadm-style name.
    pub(crate) name: String,
    /// The plan's id, when the file is where the plan puts a leaf.
    pub(crate) id: Option<LeafId>,
    /// DER of every certificate in the file, or why it did not parse.
    pub(crate) ders: Result<Vec<Vec<u8>>, String>,
    /// The first certificate, parsed.
    pub(crate) info: Option<CertInfo>,
    /// The `.key` next to it.
    pub(crate) key: KeyState,
}

impl Entry {
    /// The file's base path (without `.crt`).
    pub(crate) fn base(&self) -> PathBuf {
        self.rel.with_extension("")
    }

    /// The first certificate's DER, if the file parsed.
    pub(crate) fn der(&self) -> Option<&[u8]> {
        self.ders.as_ref().ok().map(|d| d[0].as_slice())
    }

    /// Whether the file holds a CA certificate.
    pub(crate) fn is_ca(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.is_ca)
    }
}

/// A key file next to a certificate.
pub(crate) enum KeyState {
    Missing,
    Bad(String),
    Ok(PrivateKey),
}

/// What a directory holds.
#[derive(Default)]
pub(crate) struct Scan {
    /// Certificate files, in path order.
    pub(crate) entries: Vec<Entry>,
    /// `sa.key` files.
    pub(crate) sa_keys: Vec<PathBuf>,
    /// Kubeconfigs with embedded client certificates, in path order.
    pub(crate) kubeconfigs: Vec<Kubeconfig>,
    /// Other files holding secrets by name (`*.key`, `encryption-config.yaml`), in path order.
    pub(crate) secrets: Vec<PathBuf>,
    /// Temporary files whose writer is gone.
    pub(crate) stale_temps: Vec<PathBuf>,
}

fn walk(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<(), Error> {
    let full = dir.join(rel);
    let rd = std::fs::read_dir(&full).map_err(|source| Error::Read {
        path: full.clone(),
        source,
    })?;
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let r = rel.join(e.file_name());
        let ft = e.file_type().map_err(|source| Error::Read {
            path: e.path(),
            source,
        })?;
        if ft.is_dir() {
            walk(dir, &r, out)?;
        } else if ft.is_file() {
            out.push((r, e.metadata().map(|m| m.len()).unwrap_or(0)));
        }
    }
    Ok(())
}

/// Reads everything under `dir`.
pub(crate) fn scan(dir: &Path) -> Result<Scan, Error> {
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    let mut out = Scan::default();
    for (rel, len) in &files {
        let fname = rel
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(pid) = frankenetes_bundle::fs::temp_owner(&fname) {
            if !frankenetes_bundle::fs::process_alive(pid) {
                out.stale_temps.push(rel.clone());
            }
            continue;
        }
        if fname == "sa.key" {
            out.sa_keys.push(rel.clone());
        }
        if fname.ends_with(".key") || fname == crate::encryption::FILE_NAME {
            out.secrets.push(rel.clone());
        } else if fname.ends_with(".crt") {
            if !fname.ends_with("-chain.crt") {
                out.entries.push(entry(dir, rel));
            }
        } else if *len <= KUBECONFIG_MAX
            && !NOT_KUBECONFIGS.iter().any(|ext| fname.ends_with(ext))
            && let Some(kc) = read_kubeconfig(dir, rel)
        {
            out.kubeconfigs.push(kc);
        }
    }
    Ok(out)
}

fn entry(dir: &Path, rel: &Path) -> Entry {
    let base = rel.with_extension("");
    let ders = match fsutil::read_optional(&dir.join(rel)) {
        Ok(Some(text)) => x509::pem_certs(&text),
        Ok(None) => Err("vanished while reading".into()),
        Err(e) => Err(e.to_string()),
    };
    let ders = ders.and_then(|d| {
        d.iter()
            .try_for_each(|c| x509::parse(c).map(|_| ()))
            .map(|()| d)
    });
    let info = ders.as_ref().ok().and_then(|d| x509::parse(&d[0]).ok());
    let key = match fsutil::read_optional(&dir.join(with_ext(&base, "key"))) {
        Ok(None) => KeyState::Missing,
        Ok(Some(text)) => {
            let text = Zeroizing::new(text);
            match PrivateKey::from_pem(&text) {
                Ok(k) => KeyState::Ok(k),
                Err(e) => KeyState::Bad(format!("{}: {e}", with_ext(&base, "key").display())),
            }
        }
        Err(e) => KeyState::Bad(e.to_string()),
    };
    Entry {
        name: name_for_path(&base),
        id: LeafId::from_path(&base),
        rel: rel.to_owned(),
        ders,
        info,
        key,
    }
}

/// A file that mentions `client-certificate-data` and parses as a kubeconfig.
fn read_kubeconfig(dir: &Path, rel: &Path) -> Option<Kubeconfig> {
    let bytes = Zeroizing::new(std::fs::read(dir.join(rel)).ok()?);
    let marker = kubeconfig::MARKER.as_bytes();
    if !bytes.windows(marker.len()).any(|w| w == marker) {
        return None;
    }
    let text = Zeroizing::new(std::str::from_utf8(&bytes).ok()?.to_owned());
    kubeconfig::parse(rel.to_owned(), text)
}

/// The CA entry that signed `der`, preferring the first in path order (the operator's master
/// copy sorts before the nodes' copies).
pub(crate) fn find_issuer<'a>(
    entries: &'a [Entry],
    info: &CertInfo,
    der: &[u8],
) -> Option<&'a Entry> {
    entries.iter().find(|e| {
        e.info
            .as_ref()
            .is_some_and(|ci| ci.is_ca && ci.subject_raw == info.issuer_raw)
            && e.der()
                .is_some_and(|d| x509::verify_signed_by(der, d).is_ok())
    })
}

/// The node a file belongs to (`nodes/<n>/...`); `None` for the operator's files.
pub(crate) fn node_of(rel: &Path) -> Option<String> {
    let mut parts = rel.iter();
    (parts.next()? == "nodes")
        .then(|| parts.next())
        .flatten()
        .filter(|_| rel.iter().count() > 2)
        .map(|n| n.to_string_lossy().into_owned())
}

/// The master copy a node file must equal: `nodes/<n>/etc/kubernetes/pki/<x>` ↔
/// `cluster/pki/<x>`.
pub(crate) fn master_of(rel: &Path) -> Option<PathBuf> {
    let parts: Vec<_> = rel.iter().collect();
    if parts.len() > 5
        && parts[0] == "nodes"
        && parts[2] == "etc"
        && parts[3] == "kubernetes"
        && parts[4] == "pki"
    {
        let mut p = PathBuf::from(crate::plan::CLUSTER_PKI);
        p.extend(&parts[5..]);
        return Some(p);
    }
    None
}

/// The PKI directory a file is in (`cluster/pki`, `nodes/<n>/etc/kubernetes/pki`), when it is
/// in one of the layout's.
pub(crate) fn pki_root_of(rel: &Path) -> Option<PathBuf> {
    if rel.starts_with(crate::plan::CLUSTER_PKI) {
        return Some(PathBuf::from(crate::plan::CLUSTER_PKI));
    }
    let parts: Vec<_> = rel.iter().take(5).collect();
    (parts.len() == 5
        && parts[0] == "nodes"
        && parts[2] == "etc"
        && parts[3] == "kubernetes"
        && parts[4] == "pki"
        && rel.iter().count() > 5)
        .then(|| parts.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_helpers() {
        assert_eq!(
            node_of(Path::new("nodes/w1/etc/kubernetes/kubelet.conf")).as_deref(),
            Some("w1")
        );
        assert_eq!(node_of(Path::new("cluster/admin.conf")), None);
        assert_eq!(node_of(Path::new("nodes/w1.ign")), None);
        assert_eq!(
            pki_root_of(Path::new("nodes/c1/etc/kubernetes/pki/etcd/ca.crt")),
            Some(PathBuf::from("nodes/c1/etc/kubernetes/pki"))
        );
        assert_eq!(
            pki_root_of(Path::new("cluster/pki/etcd/ca.crt")),
            Some(PathBuf::from("cluster/pki"))
        );
        assert_eq!(pki_root_of(Path::new("etcd/ca.crt")), None);
    }
}
