//! What [`crate::check()`] reports, as tables like `kubeadm certs check-expiration`'s and as
//! serde data (`-o json|yaml`).
//!
//! # Serialized form
//!
//! [`CheckReport`] serializes as (field names are stable; times are RFC 3339 in UTC):
//!
//! ```yaml
//! checkedAt: 2026-01-01T00:00:00Z
//! ok: false                       # nothing below has a problem
//! certificates:                   # leaves and service-account keys, by path
//!   - name: control-01/apiserver  # report name; `leaf` is set when it is one of the plan's
//!     leaf: control-01/apiserver
//!     path: nodes/control-01/etc/kubernetes/pki/apiserver.crt
//!     expires: 2027-01-01T00:00:00Z      # null: sa.key, or a file that does not parse
//!     residualSeconds: 31536000          # null when `expires` is
//!     issuer: ca                         # "-" self-signed, "?" not found
//!     problems: []
//! certificateAuthorities: [...]   # the same fields, CA certificates only
//! kubeconfigs:                    # one per user with an embedded client certificate
//!   - path: cluster/admin.conf
//!     user: kubernetes-admin
//!     certificate: admin          # the certificate file in the directory it embeds, or null
//!     expires: 2027-01-01T00:00:00Z
//!     residualSeconds: 31536000
//!     issuer: ca                  # the CA in the directory that signed it, "?" if none
//!     signedByCa: true
//!     keyMatches: true            # client-key-data is the certificate's key
//!     problems: []
//! files:                          # problems that are not about one certificate
//!   - path: cluster/pki
//!     problem: directory mode is 0755, should be 0700
//!     fixed: false                # true: fixed by this run (`CheckOptions::fix_modes`)
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;

use crate::id::LeafId;

/// kubeadm's time format in `certs check-expiration`: `Jan 02, 2026 15:04 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    let fmt =
        time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| t.to_string())
}

/// RFC 3339 in UTC (`2026-01-02T15:04:05Z`), for serialized reports.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
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

/// One certificate (or service-account key) of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckRow {
    /// Report name (`control-01/apiserver`).
    pub name: String,
    /// The plan's id of this certificate, when the file is where the plan puts a leaf.
    pub leaf: Option<LeafId>,
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

/// One user of a kubeconfig whose client certificate is embedded (`client-certificate-data`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubeconfigRow {
    /// The kubeconfig, relative to the checked directory.
    pub path: PathBuf,
    /// The user's name in it.
    pub user: String,
    /// The certificate file in the directory whose certificate it embeds (report name), if
    /// any.
    pub certificate: Option<String>,
    /// End of the embedded certificate's validity (`None` when it does not parse).
    pub expires: Option<OffsetDateTime>,
    /// The CA in the directory that signed it, `?` when none did.
    pub issuer: String,
    /// Whether a CA in the directory signed it.
    pub signed_by_ca: bool,
    /// Whether `client-key-data` is the certificate's key.
    pub key_matches: bool,
    /// Everything wrong with it.
    pub problems: Vec<String>,
}

/// A problem that is not about one certificate: a private directory's mode, a temporary file
/// a killed run left, a secret file's mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileProblem {
    /// The file or directory, relative to the checked directory.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
    /// Whether this run fixed it ([`crate::CheckOptions::fix_modes`]).
    pub fixed: bool,
}

/// The result of [`crate::check()`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckReport {
    /// One row per certificate (CAs included, see [`CheckRow::is_ca`]) and service-account
    /// key, sorted by path.
    pub rows: Vec<CheckRow>,
    /// One row per kubeconfig user with an embedded client certificate, sorted by path.
    pub kubeconfigs: Vec<KubeconfigRow>,
    /// Problems with files and directories as such.
    pub files: Vec<FileProblem>,
    /// When the check ran.
    pub now: OffsetDateTime,
}

impl CheckReport {
    /// Whether nothing is wrong (problems fixed by this run do not count).
    pub fn is_ok(&self) -> bool {
        self.problem_count() == 0
    }

    /// The number of rows (certificates, kubeconfigs, files) with problems.
    pub fn problem_count(&self) -> usize {
        self.rows.iter().filter(|r| !r.problems.is_empty()).count()
            + self
                .kubeconfigs
                .iter()
                .filter(|r| !r.problems.is_empty())
                .count()
            + self.files.iter().filter(|f| !f.fixed).count()
    }

    /// Leaf certificates and service-account keys (the CERTIFICATE table).
    pub fn certificates(&self) -> impl Iterator<Item = &CheckRow> {
        self.rows.iter().filter(|r| !r.is_ca)
    }

    /// CA certificates (the CERTIFICATE AUTHORITY table).
    pub fn authorities(&self) -> impl Iterator<Item = &CheckRow> {
        self.rows.iter().filter(|r| r.is_ca)
    }

    /// Every problem, one line each, prefixed with what it is about.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rows {
            out.extend(r.problems.iter().map(|p| format!("{}: {p}", r.name)));
        }
        for k in &self.kubeconfigs {
            out.extend(
                k.problems
                    .iter()
                    .map(|p| format!("{} ({}): {p}", k.path.display(), k.user)),
            );
        }
        out.extend(
            self.files
                .iter()
                .filter(|f| !f.fixed)
                .map(|f| format!("{}: {}", f.path.display(), f.problem)),
        );
        out
    }

    fn times(&self, t: Option<OffsetDateTime>) -> (String, String) {
        match t {
            Some(t) => (format_time(t), short_duration(t - self.now)),
            None => ("never".into(), "-".into()),
        }
    }

    /// The tables, like `kubeadm certs check-expiration`: certificates, then certificate
    /// authorities, then kubeconfigs, then file problems (a table is left out when empty).
    pub fn table(&self) -> String {
        let cert_row = |r: &CheckRow| {
            let (exp, res) = self.times(r.expires);
            vec![
                r.name.clone(),
                exp,
                res,
                r.issuer.clone(),
                problems(&r.problems),
            ]
        };
        let mut tables = Vec::new();
        for (title, rows) in [
            (
                "CERTIFICATE",
                self.certificates().map(cert_row).collect::<Vec<_>>(),
            ),
            (
                "CERTIFICATE AUTHORITY",
                self.authorities().map(cert_row).collect(),
            ),
        ] {
            if !rows.is_empty() {
                tables.push(table(
                    &[title, "EXPIRES", "RESIDUAL TIME", "ISSUER", "PROBLEMS"],
                    rows,
                ));
            }
        }
        if !self.kubeconfigs.is_empty() {
            let rows = self
                .kubeconfigs
                .iter()
                .map(|k| {
                    let (exp, res) = self.times(k.expires);
                    let cert = k.certificate.clone().unwrap_or_else(|| "-".into());
                    let path = k.path.display().to_string();
                    vec![
                        path,
                        k.user.clone(),
                        cert,
                        exp,
                        res,
                        k.issuer.clone(),
                        problems(&k.problems),
                    ]
                })
                .collect();
            tables.push(table(
                &[
                    "KUBECONFIG",
                    "USER",
                    "CERTIFICATE",
                    "EXPIRES",
                    "RESIDUAL TIME",
                    "ISSUER",
                    "PROBLEMS",
                ],
                rows,
            ));
        }
        if !self.files.is_empty() {
            let rows = self
                .files
                .iter()
                .map(|f| {
                    let fixed = if f.fixed { "fixed: " } else { "" };
                    vec![
                        f.path.display().to_string(),
                        format!("{fixed}{}", f.problem),
                    ]
                })
                .collect();
            tables.push(table(&["FILE", "PROBLEM"], rows));
        }
        tables.join("\n")
    }
}

fn problems(p: &[String]) -> String {
    if p.is_empty() {
        "-".into()
    } else {
        p.join("; ")
    }
}

/// Columns padded to their widest cell, three spaces apart; the last one is not padded.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let n = header.len();
    let mut w = vec![0usize; n];
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        for (i, cell) in row.iter().enumerate().take(n - 1) {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < n {
                let _ = write!(line, "{cell:<width$}   ", width = w[i]);
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowView<'a> {
    name: &'a str,
    leaf: Option<&'a LeafId>,
    path: &'a PathBuf,
    expires: Option<String>,
    residual_seconds: Option<i64>,
    issuer: &'a str,
    problems: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeconfigView<'a> {
    path: &'a PathBuf,
    user: &'a str,
    certificate: Option<&'a str>,
    expires: Option<String>,
    residual_seconds: Option<i64>,
    issuer: &'a str,
    signed_by_ca: bool,
    key_matches: bool,
    problems: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportView<'a> {
    checked_at: String,
    ok: bool,
    certificates: Vec<RowView<'a>>,
    certificate_authorities: Vec<RowView<'a>>,
    kubeconfigs: Vec<KubeconfigView<'a>>,
    files: &'a [FileProblem],
}

impl Serialize for CheckReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let residual = |t: Option<OffsetDateTime>| t.map(|t| (t - self.now).whole_seconds());
        fn row(r: &CheckRow, now: OffsetDateTime) -> RowView<'_> {
            RowView {
                name: &r.name,
                leaf: r.leaf.as_ref(),
                path: &r.path,
                expires: r.expires.map(rfc3339),
                residual_seconds: r.expires.map(|t| (t - now).whole_seconds()),
                issuer: &r.issuer,
                problems: &r.problems,
            }
        }
        let row = |r| row(r, self.now);
        ReportView {
            checked_at: rfc3339(self.now),
            ok: self.is_ok(),
            certificates: self.certificates().map(row).collect(),
            certificate_authorities: self.authorities().map(row).collect(),
            kubeconfigs: self
                .kubeconfigs
                .iter()
                .map(|k| KubeconfigView {
                    path: &k.path,
                    user: &k.user,
                    certificate: k.certificate.as_deref(),
                    expires: k.expires.map(rfc3339),
                    residual_seconds: residual(k.expires),
                    issuer: &k.issuer,
                    signed_by_ca: k.signed_by_ca,
                    key_matches: k.key_matches,
                    problems: &k.problems,
                })
                .collect(),
            files: &self.files,
        }
        .serialize(s)
    }
}
