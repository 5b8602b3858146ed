//! Per-component settings: image overrides, extra flags, extra volumes, etcd's version.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checks::{PathKind, key_in_path, path_problem};
use crate::scalar::{GoDuration, ValueError};

/// Settings of one control-plane component (`spec.apiServer`, `spec.controllerManager`,
/// `spec.scheduler`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ComponentSpec {
    /// Flags added to, or replacing, the rendered ones (`name: value`, without `--`). A flag
    /// that does not exist in the component's version is an error at render time.
    #[serde(default)]
    pub extra_args: BTreeMap<String, String>,
    /// Host paths mounted into the static pod (and readable by the plain process).
    #[serde(default)]
    pub extra_volumes: Vec<HostPathMount>,
}

/// `spec.apiServer`: a component, plus extra SANs for its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiServerSpec {
    /// Flags added to, or replacing, the rendered ones.
    #[serde(default)]
    pub extra_args: BTreeMap<String, String>,
    /// Host paths mounted into the static pod.
    #[serde(default)]
    pub extra_volumes: Vec<HostPathMount>,
    /// `certSANs`: extra DNS names or IP addresses for the apiserver certificate.
    #[serde(rename = "certSANs", default)]
    pub cert_sans: Vec<String>,
}

/// A host path mounted into a static pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct HostPathMount {
    /// Volume name (DNS-1123 label).
    pub name: crate::NodeName,
    /// Path on the host: absolute, without `..`.
    pub host_path: PathBuf,
    /// Path in the container (default: the host path): absolute, without `..`.
    #[serde(default)]
    pub mount_path: Option<PathBuf>,
    /// Mount read-only (default true).
    #[serde(default = "yes")]
    pub read_only: bool,
    /// Kubernetes `hostPath.type` (default `DirectoryOrCreate`): one of
    /// [`HostPathMount::PATH_TYPES`].
    #[serde(default = "directory_or_create")]
    pub path_type: String,
}

impl HostPathMount {
    /// The `hostPath.type` values Kubernetes accepts (`""` checks nothing).
    pub const PATH_TYPES: [&'static str; 8] = [
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    ];
}

/// Checks the `extraVolumes` of one component (`section` is `spec.apiServer`, ...).
pub(crate) fn validate_volumes(
    section: &str,
    volumes: &[HostPathMount],
    err: &mut impl FnMut(String, String),
) {
    for (i, v) in volumes.iter().enumerate() {
        let p = format!("{section}.extraVolumes[{i}]");
        if let Some(why) = path_problem(&v.host_path, PathKind::OnNode) {
            err(format!("{p}.hostPath"), why);
        }
        if let Some(m) = &v.mount_path
            && let Some(why) = path_problem(m, PathKind::OnNode)
        {
            err(format!("{p}.mountPath"), why);
        }
        if !HostPathMount::PATH_TYPES.contains(&v.path_type.as_str()) {
            err(
                format!("{p}.pathType"),
                format!(
                    "{:?} is not a hostPath type; use one of {}",
                    v.path_type,
                    HostPathMount::PATH_TYPES[1..].join(", ")
                ),
            );
        }
    }
}

/// Checks the `extraArgs` keys of one component: flag names without dashes.
pub(crate) fn validate_extra_args(
    section: &str,
    args: &BTreeMap<String, String>,
    err: &mut impl FnMut(String, String),
) {
    for k in args.keys() {
        if k.is_empty()
            || k.starts_with('-')
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            err(
                format!("{section}.extraArgs.{}", key_in_path(k)),
                "write the flag name without leading dashes (e.g. `audit-log-maxage: \"30\"`)"
                    .into(),
            );
        }
    }
}

fn yes() -> bool {
    true
}
fn directory_or_create() -> String {
    "DirectoryOrCreate".into()
}

/// `spec.etcd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct EtcdSpec {
    /// The etcd release the flags are rendered for (`3.6.6`). Default: the version of the
    /// image tag. The local backend sets it from the `etcd` binary it runs (Debian's is 3.4),
    /// since flags differ between 3.4, 3.5 and 3.6.
    #[serde(default)]
    pub version: Option<EtcdVersion>,
    /// Image repository (default: `spec.imageRepository`); a trailing `/` is dropped.
    #[serde(default)]
    pub image_repository: Option<String>,
    /// Image tag. Default: `{version}-0` when `version` is set, else kubeadm's pin for the
    /// Kubernetes minor (`3.6.6-0`). See [`ClusterSpec::etcd_release`](crate::ClusterSpec::etcd_release).
    #[serde(default)]
    pub image_tag: Option<String>,
    /// Data directory on the node (default `/var/lib/etcd`): absolute, without `..`. Keep it
    /// on local storage: etcd's write-ahead log needs real fsync.
    #[serde(default = "default_etcd_data")]
    pub data_dir: PathBuf,
    /// Flags added to, or replacing, the rendered ones.
    #[serde(default)]
    pub extra_args: BTreeMap<String, String>,
    /// `backup`: scheduled snapshots. Absent: no scheduled backups (`snapshot` and `pause`
    /// still take them on demand). The schema is settled; no deployment carries it out yet, so
    /// `frankenetes_bootstrap::Cluster` refuses a spec that sets it rather than ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<EtcdBackup>,
}

/// `spec.etcd.backup`: snapshots of etcd taken on a schedule, each with its checksum and
/// verified after writing; the oldest beyond `keep` are deleted.
///
/// ```yaml
/// etcd:
///   backup: { interval: 15m, keep: 4 }    # `backup: {}` is the same
/// ```
///
/// Not carried out yet: `up` refuses a spec with this section (a backup that silently never
/// happens is worse than none). Where they will go depends on the backend: the local backend writes them under the cluster
/// directory (`backups/`), machines (AWS, bare machines from `render`) on each control plane
/// under `/var/lib/etcd-backups` (AWS also copies them to the cluster's bucket), Azure to the
/// snapshot share (`spec.backend.azure.shareName`), where this section replaces
/// `snapshotInterval` and `snapshotsKept`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct EtcdBackup {
    /// How often a snapshot is taken (default 15m, at least 1s).
    #[serde(default = "default_backup_interval")]
    pub interval: GoDuration,
    /// How many snapshots are kept (default 4, at least 1).
    #[serde(default = "default_backup_keep")]
    pub keep: u32,
    /// Where snapshots are written. A relative path is taken under the backend's base
    /// directory ([`EtcdBackup::dir_under`]); an absolute path is used as is; `..` is refused.
    /// Not used on Azure (the share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

fn default_backup_interval() -> GoDuration {
    GoDuration::new(Duration::from_secs(15 * 60))
}
fn default_backup_keep() -> u32 {
    4
}

impl Default for EtcdBackup {
    fn default() -> Self {
        Self {
            interval: default_backup_interval(),
            keep: default_backup_keep(),
            dir: None,
        }
    }
}

impl EtcdBackup {
    /// The directory on a control-plane machine when `dir` is absent, and the base of a
    /// relative `dir` there.
    pub const NODE_DIR: &'static str = "/var/lib/etcd-backups";
    /// The directory under the cluster directory when `dir` is absent (local backend).
    pub const LOCAL_DIR: &'static str = "backups";

    /// Where snapshots go, given the backend's `base` directory: `base` itself when `dir` is
    /// absent, `base/dir` for a relative `dir`, `dir` when it is absolute.
    pub fn dir_under(&self, base: &Path) -> PathBuf {
        match &self.dir {
            None => base.to_owned(),
            Some(d) => base.join(d),
        }
    }

    pub(crate) fn validate(
        &self,
        backend: &crate::BackendSpec,
        err: &mut impl FnMut(String, String),
    ) {
        let p = "spec.etcd.backup";
        let min = match backend {
            crate::BackendSpec::Azure(_) => Duration::from_secs(60),
            _ => Duration::from_secs(1),
        };
        if self.interval.get() < min {
            err(
                format!("{p}.interval"),
                format!(
                    "{} is shorter than {}{}",
                    self.interval,
                    GoDuration::new(min),
                    if min.as_secs() > 1 {
                        " on Azure (snapshots that often would starve etcd)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if self.keep == 0 {
            err(
                format!("{p}.keep"),
                "keep at least one snapshot, or there is nothing to restore".into(),
            );
        }
        if let Some(d) = &self.dir {
            if let Some(why) = path_problem(d, PathKind::UnderBase) {
                err(format!("{p}.dir"), why);
            } else if matches!(backend, crate::BackendSpec::Azure(_)) {
                err(
                    format!("{p}.dir"),
                    "on Azure backups go to the share spec.backend.azure.shareName; remove dir"
                        .into(),
                );
            }
        }
    }
}

impl EtcdSpec {
    pub(crate) fn validate(
        &self,
        backend: &crate::BackendSpec,
        err: &mut impl FnMut(String, String),
    ) {
        if let Some(why) = path_problem(&self.data_dir, PathKind::OnNode) {
            err("spec.etcd.dataDir".into(), why);
        }
        if let Some(b) = &self.backup {
            b.validate(backend, err);
        }
    }
}

fn default_etcd_data() -> PathBuf {
    PathBuf::from("/var/lib/etcd")
}

impl Default for EtcdSpec {
    fn default() -> Self {
        Self {
            version: None,
            image_repository: None,
            image_tag: None,
            data_dir: default_etcd_data(),
            extra_args: BTreeMap::new(),
            backup: None,
        }
    }
}

/// An etcd release, `major.minor.patch` (a leading `v` and an image suffix like `-0` are
/// accepted and dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EtcdVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl EtcdVersion {
    /// A version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl FromStr for EtcdVersion {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || ValueError {
            input: s.to_owned(),
            reason: "is not an etcd version; write it like 3.6.6".into(),
        };
        let body = s.strip_prefix('v').unwrap_or(s);
        let body = body.split_once('-').map_or(body, |(b, _)| b);
        let parts: Vec<u32> = body
            .split('.')
            .map(|p| p.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match parts.as_slice() {
            [a, b, c] if *a == 3 => Ok(Self::new(*a, *b, *c)),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for EtcdVersion {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<EtcdVersion> for String {
    fn from(v: EtcdVersion) -> String {
        v.to_string()
    }
}

impl fmt::Display for EtcdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}
