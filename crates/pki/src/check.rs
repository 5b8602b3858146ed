//! `pki check` and `pki renew`: what a directory holds, verified without the spec, and leaves
//! re-signed with the CAs found there.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use crate::fsutil::{self, PUBLIC_MODE, SECRET_MODE, with_ext};
use crate::keys::PrivateKey;
use crate::plan::{BACKDATE, LeafSpec, PkiPlan, Usage, name_for_path};
use crate::x509::{self, CertInfo};
use crate::{CaId, Error, issue};

/// kubeadm's time format in `certs check-expiration`: `Jan 02, 2026 15:04 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    let fmt =
        time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| t.to_string())
}

/// kubeadm's residual-time format (apimachinery's `ShortHumanDuration`): `59s`, `42m`, `23h`,
/// `364d`, `9y`.
pub fn short_duration(d: time::Duration) -> String {
    let s = d.whole_seconds();
    if s < 0 {
        return "expired".into();
    }
    let (m, h) = (s / 60, s / 3600);
    if s < 60 {
        format!("{s}s")
    } else if m < 60 {
        format!("{m}m")
    } else if h < 24 {
        format!("{h}h")
    } else if h < 24 * 365 {
        format!("{}d", h / 24)
    } else {
        format!("{}y", h / 24 / 365)
    }
}

/// Options of [`check`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckOptions {
    /// The time to check validity at.
    pub now: OffsetDateTime,
    /// Also a problem: expiring within this long.
    pub within: Option<Duration>,
    /// When given, also check the directory against this plan: every planned certificate
    /// present, subjects and SANs as the spec derives them.
    pub plan: Option<PkiPlan>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            now: OffsetDateTime::now_utc(),
            within: None,
            plan: None,
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
}

/// One line of the check table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckRow {
    /// Report name (`control-01/apiserver`).
    pub name: String,
    /// The certificate (or `sa.key`), relative to the checked directory.
    pub path: PathBuf,
    /// End of validity (`None` for the service-account key, or a file that did not parse).
    pub expires: Option<OffsetDateTime>,
    /// The issuing CA's name, `-` for self-signed, `?` when not found.
    pub issuer: String,
    /// Whether it is a CA.
    pub is_ca: bool,
    /// Everything wrong with it.
    pub problems: Vec<String>,
}

/// The result of [`check`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckReport {
    /// One row per certificate and service-account key, sorted by path.
    pub rows: Vec<CheckRow>,
    /// When the check ran.
    pub now: OffsetDateTime,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.rows.iter().all(|r| r.problems.is_empty())
    }

    /// The number of rows with problems.
    pub fn problem_count(&self) -> usize {
        self.rows.iter().filter(|r| !r.problems.is_empty()).count()
    }

    /// The table, like `kubeadm certs check-expiration`: name, expiry, residual time, issuer,
    /// problems.
    pub fn table(&self) -> String {
        let header = [
            "CERTIFICATE",
            "EXPIRES",
            "RESIDUAL TIME",
            "ISSUER",
            "PROBLEMS",
        ];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                let (exp, res) = match r.expires {
                    Some(t) => (format_time(t), short_duration(t - self.now)),
                    None => ("never".into(), "-".into()),
                };
                let problems = if r.problems.is_empty() {
                    "-".into()
                } else {
                    r.problems.join("; ")
                };
                [r.name.clone(), exp, res, r.issuer.clone(), problems]
            })
            .collect();
        let mut w = [0usize; 4];
        for row in cells
            .iter()
            .map(|c| c.each_ref().map(String::as_str))
            .chain(std::iter::once(header))
        {
            for i in 0..4 {
                w[i] = w[i].max(row[i].chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(header.map(str::to_owned)).chain(cells) {
            let _ = writeln!(
                out,
                "{:<w0$}   {:<w1$}   {:<w2$}   {:<w3$}   {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3]
            );
        }
        out
    }
}

/// A certificate file found in the directory.
struct Entry {
    rel: PathBuf,
    name: String,
    /// DER of every certificate in the file, or why it did not parse.
    ders: Result<Vec<Vec<u8>>, String>,
    info: Option<CertInfo>,
    key: KeyState,
}

enum KeyState {
    Missing,
    Bad(String),
    Ok(PrivateKey),
}

fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
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
            out.push(r);
        }
    }
    Ok(())
}

fn scan(dir: &Path) -> Result<(Vec<Entry>, Vec<PathBuf>), Error> {
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    let mut entries = Vec::new();
    let mut sa_keys = Vec::new();
    for rel in &files {
        let fname = rel
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if fname == "sa.key" {
            sa_keys.push(rel.clone());
        }
        if !fname.ends_with(".crt") || fname.ends_with("-chain.crt") {
            continue;
        }
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
        let key_path = dir.join(with_ext(&base, "key"));
        let key = match fsutil::read_optional(&key_path) {
            Ok(None) => KeyState::Missing,
            Ok(Some(text)) => match PrivateKey::from_pem(&text) {
                Ok(k) => KeyState::Ok(k),
                Err(e) => KeyState::Bad(format!("{}: {e}", with_ext(&base, "key").display())),
            },
            Err(e) => KeyState::Bad(e.to_string()),
        };
        entries.push(Entry {
            name: name_for_path(&base),
            rel: rel.clone(),
            ders,
            info,
            key,
        });
    }
    Ok((entries, sa_keys))
}

/// The CA entry that signed `der`, preferring the first in path order (the operator's master
/// copy sorts before the nodes' copies).
fn find_issuer<'a>(entries: &'a [Entry], info: &CertInfo, der: &[u8]) -> Option<&'a Entry> {
    entries.iter().find(|e| {
        e.info
            .as_ref()
            .is_some_and(|ci| ci.is_ca && ci.subject_raw == info.issuer_raw)
            && e.ders
                .as_ref()
                .is_ok_and(|d| x509::verify_signed_by(der, &d[0]).is_ok())
    })
}

fn key_mode_problem(path: &Path) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| format!("key file mode is {mode:o}, should be 600"))
}

/// The master copy a node file must equal: `nodes/<n>/etc/kubernetes/pki/<x>` ↔
/// `cluster/pki/<x>`.
fn master_of(rel: &Path) -> Option<PathBuf> {
    let parts: Vec<_> = rel.iter().collect();
    if parts.len() > 5
        && parts[0] == "nodes"
        && parts[2] == "etc"
        && parts[3] == "kubernetes"
        && parts[4] == "pki"
    {
        let mut p = PathBuf::from("cluster/pki");
        p.extend(&parts[5..]);
        return Some(p);
    }
    None
}

/// Checks every certificate and key under `dir`: each parses, its key matches, it chains to a
/// CA found in `dir` with a valid signature, it is valid now (and for `within`), it does not
/// outlive its issuer, node copies of CAs and service-account keys equal the operator's, and
/// key files are 0600. With a plan, every planned certificate must be present and match it.
///
/// Only an unreadable directory is an error; everything else is a row with problems.
pub fn check(dir: &Path, opts: &CheckOptions) -> Result<CheckReport, Error> {
    let (entries, sa_keys) = scan(dir)?;
    let mut rows = Vec::new();
    for e in &entries {
        let mut problems = Vec::new();
        let mut issuer_name = "?".to_owned();
        let mut expires = None;
        let mut is_ca = false;
        match (&e.ders, &e.info) {
            (Err(why), _) => problems.push(format!("cannot parse: {why}")),
            (Ok(_), None) => problems.push("cannot parse".into()),
            (Ok(ders), Some(info)) => {
                is_ca = info.is_ca;
                expires = Some(info.not_after);
                if info.not_before > opts.now {
                    problems.push(format!("not valid before {}", format_time(info.not_before)));
                }
                if info.not_after <= opts.now {
                    problems.push("expired".into());
                } else if let Some(w) = opts.within
                    && info.not_after <= opts.now + w
                {
                    problems.push(format!(
                        "expires within {}",
                        frankenetes_spec::GoDuration::new(w)
                    ));
                }
                if info.is_self_issued() {
                    issuer_name = "-".into();
                    if let Err(why) = x509::verify_signed_by(&ders[0], &ders[0]) {
                        problems.push(format!("self-signature: {why}"));
                    }
                } else if let Some(iss) = find_issuer(&entries, info, &ders[0]) {
                    issuer_name = iss.name.clone();
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
                    if let (Some(second), Ok(iss_ders)) = (ders.get(1), &iss.ders)
                        && second != &iss_ders[0]
                    {
                        problems.push("the chain in the file does not match its issuer".into());
                    }
                } else if info.is_ca {
                    // An intermediate whose root is kept elsewhere: a trust anchor from here.
                    issuer_name = info
                        .issuer_common_name
                        .clone()
                        .unwrap_or_else(|| "?".into());
                } else if let Some(named) = entries.iter().find(|x| {
                    x.info
                        .as_ref()
                        .is_some_and(|ci| ci.is_ca && ci.subject_raw == info.issuer_raw)
                }) {
                    issuer_name = named.name.clone();
                    problems.push(format!(
                        "signature does not verify with {}'s key",
                        named.name
                    ));
                } else {
                    problems.push(format!(
                        "no CA in this directory signed it (issuer {:?})",
                        info.issuer_common_name.clone().unwrap_or_default()
                    ));
                }
                if info.is_ca && !info.key_usage.key_cert_sign {
                    problems.push("CA without keyCertSign".into());
                }
                let base = e.rel.with_extension("");
                match &e.key {
                    KeyState::Missing if !info.is_ca => {
                        problems.push(format!("{} is missing", with_ext(&base, "key").display()))
                    }
                    KeyState::Missing => {}
                    KeyState::Bad(why) => problems.push(why.clone()),
                    KeyState::Ok(k) => {
                        if k.spki_der() != info.spki {
                            problems.push(format!(
                                "{} does not match the certificate",
                                with_ext(&base, "key").display()
                            ));
                        }
                        if let Some(p) = key_mode_problem(&dir.join(with_ext(&base, "key"))) {
                            problems.push(p);
                        }
                    }
                }
                if let Some(m) = master_of(&e.rel)
                    && let Some(master) = entries.iter().find(|x| x.rel == m)
                    && master.ders.as_ref().ok().map(|d| &d[0]) != Some(&ders[0])
                {
                    problems.push(format!("differs from {}", m.display()));
                }
                // A chain bundle next to an intermediate must hold it and its root.
                let chain = e.rel.with_file_name(format!(
                    "{}-chain.crt",
                    e.rel
                        .with_extension("")
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ));
                if let Ok(Some(text)) = fsutil::read_optional(&dir.join(&chain)) {
                    let ok = x509::pem_certs(&text).is_ok_and(|c| {
                        c.first() == Some(&ders[0])
                            && c.get(1)
                                .is_some_and(|root| x509::verify_signed_by(&ders[0], root).is_ok())
                    });
                    if !ok {
                        problems.push(format!(
                            "{} does not hold this CA and its issuer",
                            chain.display()
                        ));
                    }
                }
            }
        }
        rows.push(CheckRow {
            name: e.name.clone(),
            path: e.rel.clone(),
            expires,
            issuer: issuer_name,
            is_ca,
            problems,
        });
    }
    for rel in &sa_keys {
        let mut problems = Vec::new();
        let base = rel.with_extension("");
        let key = match fsutil::read_optional(&dir.join(rel)) {
            Ok(Some(t)) => PrivateKey::from_pem(&t).map_err(|e| e.to_string()),
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
        if let Some(p) = key_mode_problem(&dir.join(rel)) {
            problems.push(p);
        }
        rows.push(CheckRow {
            name: name_for_path(&base),
            path: rel.clone(),
            expires: None,
            issuer: "-".into(),
            is_ca: false,
            problems,
        });
    }
    if let Some(plan) = &opts.plan {
        check_against_plan(dir, plan, &entries, &mut rows);
    }
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(CheckReport {
        rows,
        now: opts.now,
    })
}

fn check_against_plan(dir: &Path, plan: &PkiPlan, entries: &[Entry], rows: &mut Vec<CheckRow>) {
    let mut expected: Vec<(PathBuf, String)> = plan
        .cas()
        .iter()
        .map(|c| {
            (
                with_ext(&plan.ca_master(c.id), "crt"),
                c.id.name().to_owned(),
            )
        })
        .collect();
    for c in plan.cas() {
        for (copy, _) in plan.ca_copies(c.id) {
            expected.push((with_ext(&copy, "crt"), name_for_path(&copy)));
        }
    }
    let (sa, sa_copies) = plan.service_account_paths();
    for s in std::iter::once(sa).chain(sa_copies) {
        expected.push((with_ext(&s, "key"), name_for_path(&s)));
    }
    for l in &plan.leaves {
        expected.push((with_ext(&l.path, "crt"), l.name()));
    }
    for (path, name) in expected {
        if !rows.iter().any(|r| r.path == path) {
            rows.push(CheckRow {
                name,
                path: path.clone(),
                expires: None,
                issuer: "?".into(),
                is_ca: false,
                problems: vec![format!("{} is missing", path.display())],
            });
        }
    }
    let mut opts_plan = plan.clone();
    opts_plan.now = OffsetDateTime::now_utc().max(plan.now);
    for leaf in &plan.leaves {
        let crt = with_ext(&leaf.path, "crt");
        let (Some(e), Some(row)) = (
            entries.iter().find(|e| e.rel == crt),
            rows.iter_mut().find(|r| r.path == crt),
        ) else {
            continue;
        };
        let (Ok(ders), KeyState::Ok(key)) = (&e.ders, &e.key) else {
            continue;
        };
        let issuer = entries
            .iter()
            .find(|x| x.rel == with_ext(&plan.ca_master(leaf.issuer), "crt"))
            .and_then(|x| x.ders.as_ref().ok())
            .map(|d| d[0].as_slice());
        for p in crate::pki::leaf_problems(&opts_plan, leaf, ders, key, issuer) {
            // Expiry is already judged against the check's own clock.
            if !p.starts_with("expired") && !row.problems.contains(&p) {
                row.problems.push(p);
            }
        }
    }
    let _ = dir;
}

/// Options of [`renew`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenewOptions {
    /// Names to renew (`control-01/apiserver`), or bare kubeadm names that match on every node
    /// (`apiserver`). Empty: every leaf.
    pub names: Vec<String>,
    /// New lifetime; default: the old certificate's.
    pub validity: Option<Duration>,
    /// Issue time.
    pub now: OffsetDateTime,
}

impl Default for RenewOptions {
    fn default() -> Self {
        Self {
            names: Vec::new(),
            validity: None,
            now: OffsetDateTime::now_utc(),
        }
    }
}

impl RenewOptions {
    /// Renews these names only.
    #[must_use]
    pub fn names(mut self, names: Vec<String>) -> Self {
        self.names = names;
        self
    }
    /// Sets the lifetime of the new certificates.
    #[must_use]
    pub fn validity(mut self, v: Option<Duration>) -> Self {
        self.validity = v;
        self
    }
    /// Sets the issue time.
    #[must_use]
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = now;
        self
    }
}

/// Re-signs leaf certificates under `dir` with the CAs found there: same subject, SANs and
/// usages, a new key of the same algorithm, a new validity period (never past the CA's).
/// CAs are never renewed here. Everything is signed before anything is written.
pub fn renew(dir: &Path, opts: &RenewOptions) -> Result<Vec<String>, Error> {
    let (entries, _) = scan(dir)?;
    let leaves: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.info.as_ref().is_some_and(|i| !i.is_ca))
        .collect();
    for n in &opts.names {
        if !leaves.iter().any(|e| matches_name(&e.name, n)) {
            let known: Vec<&str> = leaves.iter().map(|e| e.name.as_str()).collect();
            return Err(Error::UnknownName {
                name: n.clone(),
                known: known.join(", "),
            });
        }
    }
    let mut writes: Vec<(PathBuf, zeroize::Zeroizing<Vec<u8>>, u32)> = Vec::new();
    let mut renewed = Vec::new();
    for e in leaves
        .into_iter()
        .filter(|e| opts.names.is_empty() || opts.names.iter().any(|n| matches_name(&e.name, n)))
    {
        let cannot = |reason: String| Error::CannotRenew {
            name: e.name.clone(),
            reason,
        };
        let (Ok(ders), Some(info)) = (&e.ders, &e.info) else {
            return Err(cannot("it does not parse".into()));
        };
        let issuer = find_issuer(&entries, info, &ders[0])
            .ok_or_else(|| cannot("no CA in the directory signed it".into()))?;
        let KeyState::Ok(ca_key) = &issuer.key else {
            return Err(cannot(format!(
                "the key of its CA {} is not in the directory",
                issuer.name
            )));
        };
        let (Ok(ca_ders), Some(ca_info)) = (&issuer.ders, &issuer.info) else {
            return Err(cannot("its CA does not parse".into()));
        };
        let alg = match &e.key {
            KeyState::Ok(k) => k.algorithm(),
            _ => None,
        }
        .or_else(|| x509::key_algorithm(&info.spki))
        .unwrap_or_default();
        let key = PrivateKey::generate(alg).map_err(|err| Error::Crypto(err.to_string()))?;
        let usage = match (info.server_auth, info.client_auth) {
            (true, true) => Usage::ServerAndClient,
            (true, false) => Usage::Server,
            _ => Usage::Client,
        };
        let sans = info
            .dns_sans
            .iter()
            .filter_map(|d| {
                frankenetes_spec::DnsName::try_from(d.as_str())
                    .ok()
                    .map(frankenetes_spec::San::Dns)
            })
            .chain(info.ip_sans.iter().map(|ip| frankenetes_spec::San::Ip(*ip)))
            .collect();
        let mut spec = LeafSpec::new(
            e.rel.with_extension(""),
            CaId::Kubernetes,
            info.common_name.clone().unwrap_or_default(),
            usage,
        )
        .sans(sans);
        spec.organizations.clone_from(&info.organizations);
        let old = (info.not_after - info.not_before)
            .unsigned_abs()
            .saturating_sub(BACKDATE);
        let validity = opts.validity.unwrap_or(old);
        let not_after = (opts.now + validity).min(ca_info.not_after);
        let params = issue::leaf_params(&spec, alg.is_rsa(), opts.now - BACKDATE, not_after)?;
        let der = issue::sign(&params, &key, Some((&ca_ders[0], ca_key)))?;
        let chain: Vec<&[u8]> = if ders.len() > 1 {
            vec![&der, &ca_ders[0]]
        } else {
            vec![&der]
        };
        writes.push((
            e.rel.clone(),
            x509::to_pem(&chain).into_bytes().into(),
            PUBLIC_MODE,
        ));
        writes.push((
            with_ext(&e.rel.with_extension(""), "key"),
            key.to_pem().as_bytes().to_vec().into(),
            SECRET_MODE,
        ));
        renewed.push(e.name.clone());
    }
    for (rel, bytes, mode) in writes {
        fsutil::write_atomic(&dir.join(rel), &bytes, mode)?;
    }
    Ok(renewed)
}

fn matches_name(name: &str, wanted: &str) -> bool {
    name == wanted
        || name
            .rsplit_once('/')
            .is_some_and(|(_, short)| short == wanted)
}
