//! Per-component settings: image overrides, extra flags, extra volumes, etcd's version.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::scalar::ValueError;

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
    /// Path on the host.
    pub host_path: PathBuf,
    /// Path in the container (default: the host path).
    #[serde(default)]
    pub mount_path: Option<PathBuf>,
    /// Mount read-only (default true).
    #[serde(default = "yes")]
    pub read_only: bool,
    /// Kubernetes `hostPath.type` (default `DirectoryOrCreate`).
    #[serde(default = "directory_or_create")]
    pub path_type: String,
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
    /// image kubeadm pins for the Kubernetes minor. The local backend sets it from the `etcd`
    /// binary it runs (Debian's is 3.4), since flags differ between 3.4, 3.5 and 3.6.
    #[serde(default)]
    pub version: Option<EtcdVersion>,
    /// Image repository (default: `spec.imageRepository`).
    #[serde(default)]
    pub image_repository: Option<String>,
    /// Image tag (default: kubeadm's pin for the Kubernetes minor, e.g. `3.6.6-0`).
    #[serde(default)]
    pub image_tag: Option<String>,
    /// Data directory on the node (default `/var/lib/etcd`). Keep it on local storage: etcd's
    /// write-ahead log needs real fsync.
    #[serde(default = "default_etcd_data")]
    pub data_dir: PathBuf,
    /// Flags added to, or replacing, the rendered ones.
    #[serde(default)]
    pub extra_args: BTreeMap<String, String>,
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
