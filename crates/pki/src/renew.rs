//! `pki renew`: leaves re-signed with the CAs found in a directory, and the kubeconfigs that
//! embed them rewritten to match, like `kubeadm certs renew`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::Error;
use crate::check::{CheckOptions, CheckReport, check};
use crate::fsutil::{self, PUBLIC_MODE, SECRET_MODE, with_ext};
use crate::issue::{self, Profile};
use crate::keys::PrivateKey;
use crate::kubeconfig::{self, Kubeconfig, NewCredentials};
use crate::plan::{BACKDATE, Usage};
use crate::report::format_time;
use crate::scan::{Entry, KeyState, Scan, find_issuer, node_of, scan};
use crate::x509::{self, CertInfo};

/// Which leaves [`renew`] re-signs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewSelection {
    /// These names: `control-01/apiserver`, or a bare kind that matches on every node
    /// (`apiserver`). Empty: nothing chosen, which [`renew`] refuses, naming the choices.
    Names(Vec<String>),
    /// Every leaf in the directory (kubeadm's `certs renew all`).
    All,
    /// Leaves that expire within this long, and those whose kubeconfigs hold a certificate
    /// that does.
    ExpiringWithin(Duration),
}

impl Default for RenewSelection {
    fn default() -> Self {
        RenewSelection::Names(Vec::new())
    }
}

impl RenewSelection {
    /// From command-line arguments: `all` alone is [`RenewSelection::All`], anything else
    /// names (none: nothing chosen, refused by [`renew`]).
    pub fn from_args(args: Vec<String>) -> Self {
        match args.as_slice() {
            [one] if one == "all" => RenewSelection::All,
            _ => RenewSelection::Names(args),
        }
    }
}

/// Options of [`renew`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenewOptions {
    /// What to renew. The default chooses nothing: [`renew`] then refuses.
    pub selection: RenewSelection,
    /// New lifetime; default: the old certificate's (cut at the CA's end, with a note). One
    /// that is zero or ends after the CA is refused.
    pub validity: Option<Duration>,
    /// Issue time.
    pub now: OffsetDateTime,
}

impl Default for RenewOptions {
    fn default() -> Self {
        Self {
            selection: RenewSelection::default(),
            validity: None,
            now: OffsetDateTime::now_utc(),
        }
    }
}

impl RenewOptions {
    /// Renews these names only ([`RenewSelection::Names`]).
    #[must_use]
    pub fn names(mut self, names: Vec<String>) -> Self {
        self.selection = RenewSelection::Names(names);
        self
    }
    /// Renews every leaf ([`RenewSelection::All`]).
    #[must_use]
    pub fn all(mut self) -> Self {
        self.selection = RenewSelection::All;
        self
    }
    /// Sets [`RenewOptions::selection`].
    #[must_use]
    pub fn selection(mut self, s: RenewSelection) -> Self {
        self.selection = s;
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

/// What [`renew`] did, and what the directory looks like afterwards.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RenewReport {
    /// The certificates renewed (report names), in path order.
    pub renewed: Vec<String>,
    /// Kubeconfigs rewritten with a renewed certificate, relative to the directory.
    pub kubeconfigs: Vec<PathBuf>,
    /// Things worth knowing (a certificate cut at its CA's end).
    pub notes: Vec<String>,
    /// Temporary files a killed run left, removed first.
    pub temps_removed: Vec<PathBuf>,
    /// [`check`] of the directory after renewing: a problem renewing did not repair (a file
    /// that does not parse, a CA replaced under a node's copy, a loose mode) is there.
    pub check: CheckReport,
}

impl RenewReport {
    /// Whether the directory is clean after renewing (else the CLI exits 1).
    pub fn is_ok(&self) -> bool {
        self.check.is_ok()
    }
}

/// A leaf signed anew, not yet written.
struct Renewed<'a> {
    entry: &'a Entry,
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

/// Re-signs leaf certificates under `dir` with the CAs found there: same subject, SANs and
/// usages, a new key of the same algorithm, a new validity period (never past the CA's); and
/// rewrites every kubeconfig that embeds one of them (found by content; each file keeps every
/// other byte). CAs are never renewed here. Everything is signed before anything is written,
/// and written atomically; temporary files a killed run left are removed first.
///
/// Errors (nothing written): nothing chosen ([`Error::NothingSelected`]), an unknown name, a
/// zero validity or one past the CA's end ([`Error::InvalidValidity`]), a chosen leaf that does
/// not parse, chains to no CA in `dir`, or whose CA key is not there ([`Error::CannotRenew`]).
/// Problems that remain afterwards are in [`RenewReport::check`].
pub fn renew(dir: &Path, opts: &RenewOptions) -> Result<RenewReport, Error> {
    if opts.validity.is_some_and(|v| v.is_zero()) {
        return Err(Error::InvalidValidity {
            reason: "it is zero: the certificates would be expired when written".into(),
        });
    }
    let temps_removed = fsutil::remove_stale_temps(dir)?;
    let found = scan(dir)?;
    let chosen = select(&found, opts)?;
    let mut notes = Vec::new();
    let renewed: Vec<Renewed<'_>> = chosen
        .into_iter()
        .map(|e| renew_one(&found.entries, e, opts, &mut notes))
        .collect::<Result<_, _>>()?;
    let mut writes: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
    for r in &renewed {
        let base = r.entry.base();
        writes.push((
            dir.join(&r.entry.rel),
            r.cert_pem.clone().into_bytes().into(),
            PUBLIC_MODE,
        ));
        writes.push((
            dir.join(with_ext(&base, "key")),
            r.key_pem.as_bytes().to_vec().into(),
            SECRET_MODE,
        ));
    }
    let mut kubeconfigs = Vec::new();
    for kc in &found.kubeconfigs {
        if let Some(text) = refreshed(dir, &found, kc, &renewed)? {
            writes.push((
                dir.join(&kc.rel),
                text.as_bytes().to_vec().into(),
                SECRET_MODE,
            ));
            kubeconfigs.push(kc.rel.clone());
        }
    }
    let batch: Vec<(PathBuf, &[u8], u32)> = writes
        .iter()
        .map(|(p, b, m)| (p.clone(), b.as_slice(), *m))
        .collect();
    fsutil::write_batch(&batch)?;
    let check = check(dir, &CheckOptions::default().at(opts.now))?;
    Ok(RenewReport {
        renewed: renewed.iter().map(|r| r.entry.name.clone()).collect(),
        kubeconfigs,
        notes,
        temps_removed,
        check,
    })
}

/// The leaves chosen, in path order.
fn select<'a>(found: &'a Scan, opts: &RenewOptions) -> Result<Vec<&'a Entry>, Error> {
    // Leaves, and files that do not parse (they may be leaves: renewing one is an error).
    let leaves: Vec<&Entry> = found.entries.iter().filter(|e| !e.is_ca()).collect();
    let known = || {
        leaves
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &opts.selection {
        RenewSelection::Names(names) if names.is_empty() => {
            Err(Error::NothingSelected { known: known() })
        }
        RenewSelection::Names(names) => {
            if let Some(n) = names
                .iter()
                .find(|n| !leaves.iter().any(|e| matches_name(&e.name, n)))
            {
                return Err(Error::UnknownName {
                    name: n.clone(),
                    known: known(),
                });
            }
            Ok(leaves
                .into_iter()
                .filter(|e| names.iter().any(|n| matches_name(&e.name, n)))
                .collect())
        }
        RenewSelection::All => Ok(leaves.into_iter().filter(|e| e.info.is_some()).collect()),
        RenewSelection::ExpiringWithin(w) => {
            let end = opts.now + *w;
            let expiring = |i: &CertInfo| i.not_after <= end;
            Ok(leaves
                .into_iter()
                .filter(|e| {
                    e.info.as_ref().is_some_and(expiring)
                        || found.kubeconfigs.iter().any(|kc| {
                            kc.users.iter().any(|u| {
                                user_cert(u).is_some_and(|(_, i)| expiring(&i))
                                    && kubeconfig_leaf(found, kc, u)
                                        .is_some_and(|l| std::ptr::eq(l, *e))
                            })
                        })
                })
                .collect())
        }
    }
}

fn matches_name(name: &str, wanted: &str) -> bool {
    name == wanted
        || name
            .rsplit_once('/')
            .is_some_and(|(_, short)| short == wanted)
}

/// Signs one leaf anew with its CA.
fn renew_one<'a>(
    entries: &[Entry],
    e: &'a Entry,
    opts: &RenewOptions,
    notes: &mut Vec<String>,
) -> Result<Renewed<'a>, Error> {
    let cannot = |reason: String| Error::CannotRenew {
        name: e.name.clone(),
        reason,
    };
    let (Ok(ders), Some(info)) = (&e.ders, &e.info) else {
        return Err(cannot(format!(
            "{} does not parse; restore it, or delete it and its key and run `pki` with the spec to issue it again",
            e.rel.display()
        )));
    };
    let issuer = find_issuer(entries, info, &ders[0]).ok_or_else(|| {
        cannot(format!(
            "no CA in the directory signed it (issuer {:?}): was its CA replaced? Restore the CA, or issue it again with `pki --renew` and the spec",
            info.issuer_common_name.clone().unwrap_or_default()
        ))
    })?;
    let KeyState::Ok(ca_key) = &issuer.key else {
        return Err(cannot(format!(
            "the key of its CA {} is not in the directory",
            issuer.name
        )));
    };
    let (Some(ca_der), Some(ca_info)) = (issuer.der(), &issuer.info) else {
        return Err(cannot("its CA does not parse".into()));
    };
    let not_after = not_after(e, info, issuer, ca_info, opts, notes)?;
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
    let sans: Vec<frankenetes_spec::San> = info
        .dns_sans
        .iter()
        .filter_map(|d| {
            frankenetes_spec::DnsName::try_from(d.as_str())
                .ok()
                .map(frankenetes_spec::San::Dns)
        })
        .chain(info.ip_sans.iter().map(|ip| frankenetes_spec::San::Ip(*ip)))
        .collect();
    let profile = Profile {
        common_name: info.common_name.as_deref().unwrap_or_default(),
        organizations: &info.organizations,
        sans: &sans,
        usage,
    };
    let params = issue::leaf_params(&profile, alg.is_rsa(), opts.now - BACKDATE, not_after)?;
    let der = issue::sign(&params, &key, Some((ca_der, ca_key)))?;
    let chain: Vec<&[u8]> = if ders.len() > 1 {
        vec![&der, ca_der]
    } else {
        vec![&der]
    };
    Ok(Renewed {
        entry: e,
        cert_pem: x509::to_pem(&chain),
        key_pem: key.to_pem(),
    })
}

/// The renewed certificate's end: `now` plus the validity asked for (refused past the CA's
/// end) or the old certificate's lifetime (cut at the CA's end, with a note).
fn not_after(
    e: &Entry,
    info: &CertInfo,
    issuer: &Entry,
    ca_info: &CertInfo,
    opts: &RenewOptions,
    notes: &mut Vec<String>,
) -> Result<OffsetDateTime, Error> {
    if ca_info.not_after <= opts.now {
        return Err(Error::CannotRenew {
            name: e.name.clone(),
            reason: format!(
                "its CA {} expired on {}: rotate the CA first",
                issuer.name,
                format_time(ca_info.not_after)
            ),
        });
    }
    let go = frankenetes_spec::GoDuration::new;
    if let Some(v) = opts.validity {
        let end = opts.now + v;
        if end > ca_info.not_after {
            return Err(Error::InvalidValidity {
                reason: format!(
                    "{} from {} ends on {}, after {}'s CA {} ({}); ask for at most {}",
                    go(v),
                    format_time(opts.now),
                    format_time(end),
                    e.name,
                    issuer.name,
                    format_time(ca_info.not_after),
                    go((ca_info.not_after - opts.now).unsigned_abs())
                ),
            });
        }
        return Ok(end);
    }
    let old = (info.not_after - info.not_before)
        .unsigned_abs()
        .saturating_sub(BACKDATE);
    if old.is_zero() {
        return Err(Error::InvalidValidity {
            reason: format!("{} had no lifetime to repeat; give a validity", e.name),
        });
    }
    let end = opts.now + old;
    if end > ca_info.not_after {
        notes.push(format!(
            "{} ends with its CA {} on {}, before the {} it had",
            e.name,
            issuer.name,
            format_time(ca_info.not_after),
            go(old)
        ));
        return Ok(ca_info.not_after);
    }
    Ok(end)
}

/// A kubeconfig user's certificate (DER) and what it says, if it parses.
fn user_cert(u: &kubeconfig::EmbeddedUser) -> Option<(&[u8], CertInfo)> {
    let der = u.ders.as_ref().ok()?.first()?;
    Some((der, x509::parse(der).ok()?))
}

/// The leaf in the directory a kubeconfig user stands for: the one whose certificate it embeds,
/// else the one client certificate with the same subject and issuer on the same node (or the
/// operator's), so that a kubeconfig left behind by an earlier renewal is caught up too.
fn kubeconfig_leaf<'a>(
    found: &'a Scan,
    kc: &Kubeconfig,
    u: &kubeconfig::EmbeddedUser,
) -> Option<&'a Entry> {
    let (der, info) = user_cert(u)?;
    let leaves = found.entries.iter().filter(|e| !e.is_ca());
    if let Some(e) = leaves.clone().find(|e| e.der() == Some(der)) {
        return Some(e);
    }
    let node = node_of(&kc.rel);
    let same = |e: &&Entry| {
        e.info.as_ref().is_some_and(|i| {
            i.client_auth && i.subject_raw == info.subject_raw && i.issuer_raw == info.issuer_raw
        })
    };
    let on = |n: Option<&String>| {
        let v: Vec<&Entry> = leaves
            .clone()
            .filter(same)
            .filter(|e| node_of(&e.rel).as_ref() == n)
            .collect();
        (v.len() == 1).then(|| v[0])
    };
    match node {
        Some(n) => on(Some(&n)).or_else(|| on(None)),
        None => on(None),
    }
}

/// `kc`'s new text when one of its users stands for a renewed leaf.
fn refreshed(
    dir: &Path,
    found: &Scan,
    kc: &Kubeconfig,
    renewed: &[Renewed<'_>],
) -> Result<Option<Zeroizing<String>>, Error> {
    let new: Vec<NewCredentials<'_>> = kc
        .users
        .iter()
        .filter_map(|u| {
            let leaf = kubeconfig_leaf(found, kc, u)?;
            let r = renewed.iter().find(|r| std::ptr::eq(r.entry, leaf))?;
            Some(NewCredentials {
                user: &u.name,
                cert_pem: &r.cert_pem,
                key_pem: &r.key_pem,
            })
        })
        .collect();
    if new.is_empty() {
        return Ok(None);
    }
    kubeconfig::rewrite(kc, &new)
        .map(Some)
        .map_err(|reason| Error::Corrupt {
            path: dir.join(&kc.rel),
            reason: format!("cannot rewrite this kubeconfig: {reason}"),
        })
}
