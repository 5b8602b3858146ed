//! Expiry summaries for `status`: the earliest certificate expiry per node and for the
//! operator's files, and each CA's, so that nothing expires unnoticed.
//!
//! ```
//! use frankenetes_pki::{PkiPlan, SyncOptions, expiry};
//!
//! let dir = tempfile::tempdir()?;
//! let plan = PkiPlan::example();
//! frankenetes_pki::sync(&plan, dir.path(), SyncOptions::default())?;
//! let leaves = expiry::leaf_expiries(dir.path())?;
//! assert_eq!(leaves[0].node, None); // the operator's files first, then each node
//! let soon = plan.now + time::Duration::days(360);
//! assert!(leaves.iter().all(|e| e.within(soon, expiry::WARNING_WINDOW)));
//! assert!(expiry::ca_expiries(dir.path())?.iter().all(|e| !e.within(soon, expiry::WARNING_WINDOW)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use crate::Error;
use crate::report::{format_time, rfc3339, short_duration};
use crate::scan::{node_of, scan};
use crate::x509;

/// The window inside which `status` warns of an expiry: 30 days.
pub const WARNING_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where kubeadm documents rotating a CA by hand.
pub const CA_ROTATION_DOC: &str =
    "https://kubernetes.io/docs/tasks/tls/manual-rotation-of-ca-certificates/";

/// When a certificate ends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Expiry {
    /// The node whose files hold it (`nodes/<node>/…`); `None` for the operator's files.
    pub node: Option<String>,
    /// The certificate's report name (`control-01/apiserver`, `ca`), or for a kubeconfig's
    /// embedded certificate the kubeconfig's path.
    pub name: String,
    /// The file, relative to the directory read.
    pub path: PathBuf,
    /// End of validity (RFC 3339 when serialized).
    #[serde(serialize_with = "ser_time")]
    pub not_after: OffsetDateTime,
}

fn ser_time<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

impl Expiry {
    /// Whether it ends at or before `now + window`.
    pub fn within(&self, now: OffsetDateTime, window: Duration) -> bool {
        self.not_after <= now + window
    }

    /// A warning line when it ends within `window` of `now`: what, where, when, and what to do.
    pub fn warning(&self, now: OffsetDateTime, window: Duration) -> Option<String> {
        if !self.within(now, window) {
            return None;
        }
        let left = if self.not_after <= now {
            "expired".to_owned()
        } else {
            format!("in {}", short_duration(self.not_after - now))
        };
        let whose = self.node.as_deref().unwrap_or("operator");
        Some(format!(
            "{whose}: {} ({}) expires on {} ({left})",
            self.name,
            self.path.display(),
            format_time(self.not_after),
        ))
    }
}

/// The earliest-ending leaf certificate (kubeconfigs' embedded ones included) for the
/// operator's files (first, `node: None`) and for each node (by name), read from `dir` (a
/// `pki`/`render` output directory). Files that do not parse are left out: `check` reports them.
pub fn leaf_expiries(dir: &Path) -> Result<Vec<Expiry>, Error> {
    let found = scan(dir)?;
    let mut all: Vec<Expiry> = Vec::new();
    for e in &found.entries {
        if let Some(i) = e.info.as_ref().filter(|i| !i.is_ca) {
            all.push(Expiry {
                node: node_of(&e.rel),
                name: e.name.clone(),
                path: e.rel.clone(),
                not_after: i.not_after,
            });
        }
    }
    for kc in &found.kubeconfigs {
        for u in &kc.users {
            let Some(info) = u.ders.as_ref().ok().and_then(|d| x509::parse(&d[0]).ok()) else {
                continue;
            };
            all.push(Expiry {
                node: node_of(&kc.rel),
                name: kc.rel.display().to_string(),
                path: kc.rel.clone(),
                not_after: info.not_after,
            });
        }
    }
    let mut earliest: Vec<Expiry> = Vec::new();
    for e in all {
        match earliest.iter_mut().find(|x| x.node == e.node) {
            Some(x) if e.not_after < x.not_after => *x = e,
            Some(_) => {}
            None => earliest.push(e),
        }
    }
    earliest.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(earliest)
}

/// Each CA certificate in `dir` once (its first copy in path order: the operator's
/// `cluster/pki` master when there is one), by path.
pub fn ca_expiries(dir: &Path) -> Result<Vec<Expiry>, Error> {
    let found = scan(dir)?;
    let mut out: Vec<(Expiry, &[u8])> = Vec::new();
    for e in &found.entries {
        let (Some(i), Some(der)) = (e.info.as_ref().filter(|i| i.is_ca), e.der()) else {
            continue;
        };
        if out.iter().any(|(_, d)| *d == der) {
            continue;
        }
        let ex = Expiry {
            node: node_of(&e.rel),
            name: e.name.clone(),
            path: e.rel.clone(),
            not_after: i.not_after,
        };
        out.push((ex, der));
    }
    Ok(out.into_iter().map(|(e, _)| e).collect())
}

/// Warnings for everything that ends within `window` of `now`: leaves (renew them with
/// `pki renew DIR all`, which also rewrites their kubeconfigs) and CAs (rotate them by hand,
/// see [`CA_ROTATION_DOC`]).
pub fn warnings(
    leaves: &[Expiry],
    cas: &[Expiry],
    now: OffsetDateTime,
    window: Duration,
) -> Vec<String> {
    let mut out: Vec<String> = leaves
        .iter()
        .filter_map(|e| e.warning(now, window))
        .map(|w| format!("{w}: renew with `pki renew <dir> all`"))
        .collect();
    out.extend(cas.iter().filter_map(|e| e.warning(now, window)).map(|w| {
        format!("CA {w}: a CA is not renewed in place; rotate it as {CA_ROTATION_DOC} describes")
    }));
    out
}
