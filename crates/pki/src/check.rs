//! `pki check`: what a directory holds, verified without the spec (or against it), like
//! `kubeadm certs check-expiration`: certificates, certificate authorities and kubeconfigs.
//! [`crate::renew()`] re-signs leaves with the CAs found there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use crate::Error;
use crate::fsutil::{self, PRIVATE_DIR_MODE, with_ext};
use crate::keys::PrivateKey;
use crate::kubeconfig::{EmbeddedUser, Kubeconfig};
use crate::modes::{self, LooseMode};
use crate::plan::{CLUSTER_PKI, CaId, PkiPlan, name_for_path};
use crate::scan::{Entry, KeyState, Scan, find_issuer, master_of, pki_root_of, scan};
use crate::x509::{self, CertInfo};

pub use crate::renew::{RenewOptions, RenewReport, RenewSelection};
pub use crate::report::{
    CheckReport, CheckRow, FileProblem, KubeconfigRow, format_time, short_duration,
};

/// Options of [`check`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckOptions {
    /// The time to check validity at.
    pub now: OffsetDateTime,
    /// Also a problem: expiring within this long.
    pub within: Option<Duration>,
    /// When given, also check the directory against this plan: every planned certificate
    /// present, subjects and SANs as the spec derives them, CA keys where the plan puts them.
    pub plan: Option<PkiPlan>,
    /// Fix what can be fixed without a spec before checking: narrow secrets (keys,
    /// kubeconfigs, `encryption-config.yaml`) to 0600 and the operator's CA directories
    /// (`cluster/pki`) to 0700, and remove temporary files a killed run left. What was fixed
    /// is listed in [`CheckReport::files`] with `fixed` set.
    pub fix_modes: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            now: OffsetDateTime::now_utc(),
            within: None,
            plan: None,
            fix_modes: false,
        }
    }
}

impl CheckOptions {
    /// Checks at `now`.
    #[must_use]
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = now;
        self
    }
    /// Sets [`CheckOptions::within`].
    #[must_use]
    pub fn within(mut self, d: Option<Duration>) -> Self {
        self.within = d;
        self
    }
    /// Sets [`CheckOptions::plan`].
    #[must_use]
    pub fn plan(mut self, plan: Option<PkiPlan>) -> Self {
        self.plan = plan;
        self
    }
    /// Sets [`CheckOptions::fix_modes`].
    #[must_use]
    pub fn fix_modes(mut self, fix: bool) -> Self {
        self.fix_modes = fix;
        self
    }
}

/// Checks every certificate, key and kubeconfig under `dir`: each parses, its key matches, it
/// chains to a CA found in `dir` with a valid signature, it is valid now (and for `within`),
/// it does not outlive its issuer, node copies of CAs and service-account keys equal the
/// operator's, CA keys are present where signing needs them (the operator's `cluster/pki`, a
/// control-plane node's PKI directory), key files and kubeconfigs are 0600, the operator's CA
/// directories 0700, and no temporary file of a killed run is left. With a plan, every
/// planned certificate must be present and match it.
///
/// Only an unreadable directory (or, with `fix_modes`, a failed fix) is an error; everything
/// else is a row with problems.
pub fn check(dir: &Path, opts: &CheckOptions) -> Result<CheckReport, Error> {
    let mut found = scan(dir)?;
    let mut files = Vec::new();
    if opts.fix_modes {
        fix_files(dir, &mut found, &mut files)?;
    }
    let mut rows: Vec<CheckRow> = found
        .entries
        .iter()
        .map(|e| cert_row(dir, &found.entries, e, opts))
        .collect();
    rows.extend(found.sa_keys.iter().map(|rel| sa_row(dir, rel)));
    if let Some(plan) = &opts.plan {
        check_against_plan(dir, plan, &found.entries, &mut rows);
    }
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let kubeconfigs = found
        .kubeconfigs
        .iter()
        .flat_map(|kc| kubeconfig_rows(dir, &found.entries, kc, opts))
        .collect();
    file_problems(dir, &found, &mut files);
    Ok(CheckReport {
        rows,
        kubeconfigs,
        files,
        now: opts.now,
    })
}

/// Narrows loose modes of secrets and private directories and removes stale temporary files,
/// recording each as a fixed [`FileProblem`].
fn fix_files(dir: &Path, found: &mut Scan, files: &mut Vec<FileProblem>) -> Result<(), Error> {
    let mut loose: Vec<LooseMode> = found
        .secrets
        .iter()
        .chain(found.kubeconfigs.iter().map(|k| &k.rel))
        .filter_map(|rel| modes::loose_secret(dir, rel))
        .collect();
    loose.extend(
        modes::private_dirs(dir)
            .iter()
            .filter_map(|rel| modes::loose(dir, rel, PRIVATE_DIR_MODE)),
    );
    for mut m in loose {
        modes::fix(dir, &mut m)?;
        files.push(FileProblem {
            problem: format!("mode was {:04o}, now {:04o}", m.mode, m.wanted),
            path: m.path,
            fixed: true,
        });
    }
    for rel in fsutil::remove_stale_temps(dir)? {
        files.push(FileProblem {
            path: rel,
            problem: "temporary file a killed run left, removed".into(),
            fixed: true,
        });
    }
    found.stale_temps.clear();
    Ok(())
}

/// Problems with files as such: temporary files left behind, the operator's CA directories'
/// modes, and loose modes of secrets no row covers (`encryption-config.yaml`, a key without
/// its certificate).
fn file_problems(dir: &Path, found: &Scan, files: &mut Vec<FileProblem>) {
    for rel in &found.stale_temps {
        files.push(FileProblem {
            path: rel.clone(),
            problem: "temporary file a killed run left (it may hold a key); `check` with fix_modes, or the next sync, removes it".into(),
            fixed: false,
        });
    }
    for rel in modes::private_dirs(dir) {
        if let Some(m) = modes::loose(dir, &rel, PRIVATE_DIR_MODE) {
            files.push(FileProblem {
                path: rel,
                problem: format!(
                    "directory mode is {:04o}, should be {:04o} (it holds CA keys)",
                    m.mode, m.wanted
                ),
                fixed: false,
            });
        }
    }
    for rel in &found.secrets {
        let covered = rel.file_name().is_some_and(|f| f == "sa.key")
            || found
                .entries
                .iter()
                .any(|e| with_ext(&e.base(), "key") == *rel);
        if !covered && let Some(m) = modes::loose_secret(dir, rel) {
            files.push(FileProblem {
                path: rel.clone(),
                problem: format!("mode is {:04o}, should be {:04o}", m.mode, m.wanted),
                fixed: false,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
}

/// Validity problems of a certificate at `opts.now`.
fn validity_problems(info: &CertInfo, opts: &CheckOptions) -> Vec<String> {
    let mut out = Vec::new();
    if info.not_before > opts.now {
        out.push(format!("not valid before {}", format_time(info.not_before)));
    }
    if info.not_after <= opts.now {
        out.push("expired".into());
    } else if let Some(w) = opts.within
        && info.not_after <= opts.now + w
    {
        out.push(format!(
            "expires within {}",
            frankenetes_spec::GoDuration::new(w)
        ));
    }
    out
}

/// Who signed a certificate (a CA entry's name, `-` self-signed, `?` unknown) and what is wrong
/// with that.
fn issuer_of(entries: &[Entry], ders: &[Vec<u8>], info: &CertInfo) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    if info.is_self_issued() {
        if let Err(why) = x509::verify_signed_by(&ders[0], &ders[0]) {
            problems.push(format!("self-signature: {why}"));
        }
        return ("-".into(), problems);
    }
    if let Some(iss) = find_issuer(entries, info, &ders[0]) {
        if let Some(ii) = &iss.info {
            if info.not_after > ii.not_after {
                problems.push(format!(
                    "outlives its issuer ({})",
                    format_time(ii.not_after)
                ));
            }
            if !ii.key_usage.key_cert_sign {
                problems.push("issuer lacks keyCertSign".into());
            }
        }
        if let (Some(second), Some(iss_der)) = (ders.get(1), iss.der())
            && second != iss_der
        {
            problems.push("the chain in the file does not match its issuer".into());
        }
        return (iss.name.clone(), problems);
    }
    if info.is_ca {
        // An intermediate whose root is kept elsewhere: a trust anchor from here.
        let name = info
            .issuer_common_name
            .clone()
            .unwrap_or_else(|| "?".into());
        return (name, problems);
    }
    if let Some(named) = entries.iter().find(|x| {
        x.info
            .as_ref()
            .is_some_and(|ci| ci.is_ca && ci.subject_raw == info.issuer_raw)
    }) {
        problems.push(format!(
            "signature does not verify with {}'s key",
            named.name
        ));
        return (named.name.clone(), problems);
    }
    problems.push(format!(
        "no CA in this directory signed it (issuer {:?})",
        info.issuer_common_name.clone().unwrap_or_default()
    ));
    ("?".into(), problems)
}

/// Whether signing needs this CA certificate's key next to it: in the operator's `cluster/pki`
/// (except an offline root) and in a control-plane node's PKI directory (one that holds an
/// apiserver certificate). A bare kubeadm directory may use an external CA: no key expected.
fn ca_key_expected(entries: &[Entry], e: &Entry) -> bool {
    let Some(root) = pki_root_of(&e.rel) else {
        return false;
    };
    if root == Path::new(CLUSTER_PKI) {
        return e.base() != Path::new(CLUSTER_PKI).join(CaId::Root.base());
    }
    let apiserver = root.join("apiserver.crt");
    entries.iter().any(|x| x.rel == apiserver)
}

fn ca_key_missing(key: &Path) -> String {
    format!(
        "{} is missing: this CA's key is needed to sign (restore it from a backup or a control-plane node's copy)",
        key.display()
    )
}

/// Problems with the key next to a certificate.
fn key_problems(dir: &Path, entries: &[Entry], e: &Entry, info: &CertInfo) -> Vec<String> {
    let key = with_ext(&e.base(), "key");
    match &e.key {
        KeyState::Missing if !info.is_ca => vec![format!("{} is missing", key.display())],
        KeyState::Missing if ca_key_expected(entries, e) => vec![ca_key_missing(&key)],
        KeyState::Missing => Vec::new(),
        KeyState::Bad(why) => vec![why.clone()],
        KeyState::Ok(k) => {
            let mut out = Vec::new();
            if k.spki_der() != info.spki {
                out.push(format!("{} does not match the certificate", key.display()));
            }
            if let Some(m) = modes::loose_secret(dir, &key) {
                out.push(format!(
                    "key file mode is {:o}, should be {:o}",
                    m.mode, m.wanted
                ));
            }
            out
        }
    }
}

/// A CA copy on a node must equal the operator's; a chain bundle next to an intermediate must
/// hold it and its root.
fn copy_problems(dir: &Path, entries: &[Entry], e: &Entry, der: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = master_of(&e.rel)
        && let Some(master) = entries.iter().find(|x| x.rel == m)
        && master.der() != Some(der)
    {
        out.push(format!("differs from {}", m.display()));
    }
    let stem = e
        .base()
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let chain = e.rel.with_file_name(format!("{stem}-chain.crt"));
    if let Ok(Some(text)) = fsutil::read_optional(&dir.join(&chain)) {
        let ok = x509::pem_certs(&text).is_ok_and(|c| {
            c.first().is_some_and(|f| f == der)
                && c.get(1)
                    .is_some_and(|root| x509::verify_signed_by(der, root).is_ok())
        });
        if !ok {
            out.push(format!(
                "{} does not hold this CA and its issuer",
                chain.display()
            ));
        }
    }
    out
}

fn cert_row(dir: &Path, entries: &[Entry], e: &Entry, opts: &CheckOptions) -> CheckRow {
    let mut row = CheckRow {
        name: e.name.clone(),
        leaf: e.id.clone(),
        path: e.rel.clone(),
        expires: None,
        issuer: "?".into(),
        is_ca: false,
        problems: Vec::new(),
    };
    let (ders, info) = match (&e.ders, &e.info) {
        (Err(why), _) => {
            row.problems.push(format!("cannot parse: {why}"));
            return row;
        }
        (Ok(_), None) => {
            row.problems.push("cannot parse".into());
            return row;
        }
        (Ok(ders), Some(info)) => (ders, info),
    };
    row.is_ca = info.is_ca;
    row.expires = Some(info.not_after);
    row.problems = validity_problems(info, opts);
    let (issuer, problems) = issuer_of(entries, ders, info);
    row.issuer = issuer;
    row.problems.extend(problems);
    if info.is_ca && !info.key_usage.key_cert_sign {
        row.problems.push("CA without keyCertSign".into());
    }
    row.problems.extend(key_problems(dir, entries, e, info));
    row.problems
        .extend(copy_problems(dir, entries, e, &ders[0]));
    row
}

fn sa_row(dir: &Path, rel: &Path) -> CheckRow {
    let mut problems = Vec::new();
    let base = rel.with_extension("");
    let key = match fsutil::read_optional(&dir.join(rel)) {
        Ok(Some(t)) => PrivateKey::from_pem(&zeroize::Zeroizing::new(t)).map_err(|e| e.to_string()),
        Ok(None) => Err("vanished".into()),
        Err(e) => Err(e.to_string()),
    };
    match key {
        Err(why) => problems.push(format!("cannot parse: {why}")),
        Ok(k) => {
            match fsutil::read_optional(&dir.join(with_ext(&base, "pub"))) {
                Ok(Some(p)) if p == k.public_key_pem() => {}
                Ok(Some(_)) => problems.push("sa.pub does not match sa.key".into()),
                Ok(None) => problems.push("sa.pub is missing".into()),
                Err(e) => problems.push(e.to_string()),
            }
            if let Some(m) = master_of(rel)
                && let Ok(Some(mt)) = fsutil::read_optional(&dir.join(&m))
                && PrivateKey::from_pem(&mt).map(|mk| mk.spki_der()).ok() != Some(k.spki_der())
            {
                problems.push(format!("differs from {}", m.display()));
            }
        }
    }
    if let Some(m) = modes::loose_secret(dir, rel) {
        problems.push(format!(
            "key file mode is {:o}, should be {:o}",
            m.mode, m.wanted
        ));
    }
    CheckRow {
        name: name_for_path(&base),
        leaf: None,
        path: rel.to_owned(),
        expires: None,
        issuer: "-".into(),
        is_ca: false,
        problems,
    }
}

/// A row per user of a kubeconfig with an embedded client certificate.
fn kubeconfig_rows(
    dir: &Path,
    entries: &[Entry],
    kc: &Kubeconfig,
    opts: &CheckOptions,
) -> Vec<KubeconfigRow> {
    let mode = modes::loose_secret(dir, &kc.rel)
        .map(|m| format!("file mode is {:04o}, should be {:04o}", m.mode, m.wanted));
    let mut ca_problems = Vec::new();
    let has_cas = entries.iter().any(Entry::is_ca);
    for ca in &kc.cluster_cas {
        match ca {
            Err(why) => ca_problems.push(format!("certificate-authority-data: {why}")),
            Ok(der) if has_cas && !entries.iter().any(|e| e.is_ca() && e.der() == Some(der)) => {
                ca_problems.push("certificate-authority-data is not a CA of this directory".into())
            }
            Ok(_) => {}
        }
    }
    kc.users
        .iter()
        .map(|u| {
            let mut row = kubeconfig_row(entries, kc, u, opts);
            row.problems.extend(ca_problems.iter().cloned());
            row.problems.extend(mode.clone());
            row
        })
        .collect()
}

fn kubeconfig_row(
    entries: &[Entry],
    kc: &Kubeconfig,
    u: &EmbeddedUser,
    opts: &CheckOptions,
) -> KubeconfigRow {
    let mut row = KubeconfigRow {
        path: kc.rel.clone(),
        user: u.name.clone(),
        certificate: None,
        expires: None,
        issuer: "?".into(),
        signed_by_ca: false,
        key_matches: false,
        problems: Vec::new(),
    };
    let parsed = u
        .ders
        .clone()
        .and_then(|d| x509::parse(&d[0]).map(|info| (d, info)));
    let (ders, info) = match parsed {
        Err(why) => {
            row.problems.push(format!("client-certificate-data: {why}"));
            return row;
        }
        Ok(p) => p,
    };
    row.expires = Some(info.not_after);
    row.problems = validity_problems(&info, opts);
    row.certificate = entries
        .iter()
        .find(|e| !e.is_ca() && e.der() == Some(ders[0].as_slice()))
        .map(|e| e.name.clone());
    match find_issuer(entries, &info, &ders[0]) {
        Some(iss) => {
            row.issuer = iss.name.clone();
            row.signed_by_ca = true;
        }
        None => row.problems.push(format!(
            "no CA in this directory signed it (issuer {:?})",
            info.issuer_common_name.clone().unwrap_or_default()
        )),
    }
    match &u.key {
        None => row.problems.push("client-key-data is missing".into()),
        Some(Err(why)) => row.problems.push(format!("client-key-data: {why}")),
        Some(Ok(k)) if k.spki_der() == info.spki => row.key_matches = true,
        Some(Ok(_)) => row
            .problems
            .push("client-key-data does not match the certificate".into()),
    }
    row
}

/// With a plan: every planned file present, CA keys where the plan puts them, leaves as the
/// spec derives them.
fn check_against_plan(dir: &Path, plan: &PkiPlan, entries: &[Entry], rows: &mut Vec<CheckRow>) {
    let mut expected: Vec<(PathBuf, String)> = Vec::new();
    let mut keys: Vec<PathBuf> = Vec::new();
    for c in plan.cas() {
        let master = plan.ca_master(c.id);
        expected.push((with_ext(&master, "crt"), c.id.name().to_owned()));
        if c.id != CaId::Root {
            keys.push(master);
        }
        for (copy, with_key) in plan.ca_copies(c.id) {
            expected.push((with_ext(&copy, "crt"), name_for_path(&copy)));
            if with_key {
                keys.push(copy);
            }
        }
    }
    let (sa, sa_copies) = plan.service_account_paths();
    for s in std::iter::once(sa).chain(sa_copies) {
        expected.push((with_ext(&s, "key"), name_for_path(&s)));
    }
    for l in &plan.leaves {
        expected.push((with_ext(&l.path(), "crt"), l.name()));
    }
    for (path, name) in expected {
        if !rows.iter().any(|r| r.path == path) {
            rows.push(CheckRow {
                name,
                leaf: None,
                problems: vec![format!("{} is missing", path.display())],
                path,
                expires: None,
                issuer: "?".into(),
                is_ca: false,
            });
        }
    }
    for base in keys {
        let key = with_ext(&base, "key");
        let crt = with_ext(&base, "crt");
        if !dir.join(&key).exists()
            && let Some(row) = rows.iter_mut().find(|r| r.path == crt)
        {
            let p = ca_key_missing(&key);
            if !row.problems.contains(&p) {
                row.problems.push(p);
            }
        }
    }
    let mut opts_plan = plan.clone();
    opts_plan.now = OffsetDateTime::now_utc().max(plan.now);
    for leaf in &plan.leaves {
        let crt = with_ext(&leaf.path(), "crt");
        let (Some(e), Some(row)) = (
            entries.iter().find(|e| e.rel == crt),
            rows.iter_mut().find(|r| r.path == crt),
        ) else {
            continue;
        };
        let (Ok(ders), KeyState::Ok(key)) = (&e.ders, &e.key) else {
            continue;
        };
        let master = with_ext(&plan.ca_master(leaf.issuer), "crt");
        let issuer = entries
            .iter()
            .find(|x| x.rel == master)
            .and_then(Entry::der);
        for p in crate::leaf_check::leaf_problems(&opts_plan, leaf, ders, key, issuer) {
            // Expiry is already judged against the check's own clock.
            if !p.starts_with("expired") && !row.problems.contains(&p) {
                row.problems.push(p);
            }
        }
    }
}
