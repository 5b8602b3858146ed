//! Container images: the supported releases and one rule for every image name.
//!
//! Every image the cluster runs is named by [`ClusterSpec::image`], with kubeadm's rules:
//!
//! - `{imageRepository}/{name}:{tag}`; a trailing `/` of `imageRepository` is dropped (it is
//!   accepted in the file and removed when parsing).
//! - Kubernetes components are tagged with the Kubernetes version (`v1.35.0`); `+` is not
//!   allowed in an image tag, so it becomes `_` (kubeadm's `KubernetesVersionToImageTag`).
//! - etcd comes from `spec.etcd.imageRepository` when set; its tag is `spec.etcd.imageTag`,
//!   else `{spec.etcd.version}-0` when a version is set, else the tag kubeadm pins for the
//!   Kubernetes minor ([`Release::etcd_tag`]).
//! - CoreDNS lives under `coredns/` on `registry.k8s.io` only (`registry.k8s.io/coredns/coredns`);
//!   on a mirror it is `{imageRepository}/coredns`.
//! - pause (the sandbox image) is tagged with the release's pin.
//!
//! ```
//! use frankenetes_spec::{ClusterSpec, Image};
//!
//! let mut spec = ClusterSpec::example();
//! spec.image_repository = "mirror.example/k8s/".into();
//! assert_eq!(
//!     spec.image(Image::ApiServer)?.to_string(),
//!     "mirror.example/k8s/kube-apiserver:v1.35.0"
//! );
//! assert_eq!(spec.image(Image::CoreDns)?.to_string(), "mirror.example/k8s/coredns:v1.13.1");
//! # Ok::<(), frankenetes_spec::Error>(())
//! ```

use std::fmt;

use crate::components::EtcdVersion;
use crate::scalar::KubernetesVersion;
use crate::{ClusterSpec, Error, FieldError};

/// The registry kubeadm pulls from by default.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";

/// One supported Kubernetes minor and the images kubeadm pins for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Release {
    /// The minor (35 for v1.35).
    pub minor: u32,
    /// The etcd release of [`Release::etcd_tag`].
    pub etcd: EtcdVersion,
    /// kubeadm's etcd image tag.
    pub etcd_tag: &'static str,
    /// kubeadm's CoreDNS image tag.
    pub coredns_tag: &'static str,
    /// The pause (sandbox) image tag.
    pub pause_tag: &'static str,
}

/// The supported minors, newest last. Tags are kubeadm's (`kubeadm config images list`) for
/// 1.35 and 1.36; 1.37's etcd pin follows the 1.37 master branch (3.6.9-0) — the 1.37.0-alpha
/// briefly used 3.7.0-rc.0; override with `spec.etcd.imageTag` if your kubeadm differs.
pub const RELEASES: &[Release] = &[
    Release {
        minor: 35,
        etcd: EtcdVersion::new(3, 6, 6),
        etcd_tag: "3.6.6-0",
        coredns_tag: "v1.13.1",
        pause_tag: "3.10.1",
    },
    Release {
        minor: 36,
        etcd: EtcdVersion::new(3, 6, 8),
        etcd_tag: "3.6.8-0",
        coredns_tag: "v1.14.2",
        pause_tag: "3.10.2",
    },
    Release {
        minor: 37,
        etcd: EtcdVersion::new(3, 6, 9),
        etcd_tag: "3.6.9-0",
        coredns_tag: "v1.14.2",
        pause_tag: "3.10.2",
    },
];

fn supported_minors() -> String {
    RELEASES
        .iter()
        .map(|r| format!("v1.{}", r.minor))
        .collect::<Vec<_>>()
        .join(", ")
}

impl KubernetesVersion {
    /// The supported release of this version's minor, or [`Error::UnsupportedVersion`]
    /// naming the supported minors.
    pub fn release(&self) -> Result<Release, Error> {
        RELEASES
            .iter()
            .copied()
            .find(|r| self.major == 1 && r.minor == self.minor)
            .ok_or_else(|| Error::UnsupportedVersion {
                version: self.clone(),
                supported: supported_minors(),
            })
    }

    /// The version as an image tag: `v1.35.0`, with `+` (not allowed in tags) as `_`.
    pub fn image_tag(&self) -> String {
        self.to_string().replace('+', "_")
    }
}

/// An image the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Image {
    /// `kube-apiserver`.
    ApiServer,
    /// `kube-controller-manager`.
    ControllerManager,
    /// `kube-scheduler`.
    Scheduler,
    /// `kube-proxy`.
    Proxy,
    /// `etcd`.
    Etcd,
    /// `coredns`.
    CoreDns,
    /// `pause`, the pod sandbox.
    Pause,
}

impl Image {
    /// Every image, in the order `kubeadm config images list` prints them.
    pub const ALL: [Image; 7] = [
        Self::ApiServer,
        Self::ControllerManager,
        Self::Scheduler,
        Self::Proxy,
        Self::CoreDns,
        Self::Pause,
        Self::Etcd,
    ];

    /// The image's name in its repository (`kube-apiserver`).
    pub fn name(self) -> &'static str {
        match self {
            Self::ApiServer => "kube-apiserver",
            Self::ControllerManager => "kube-controller-manager",
            Self::Scheduler => "kube-scheduler",
            Self::Proxy => "kube-proxy",
            Self::Etcd => "etcd",
            Self::CoreDns => "coredns",
            Self::Pause => "pause",
        }
    }
}

/// A full image reference, `{repository}/{name}:{tag}`; [`fmt::Display`] writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ImageRef {
    /// The repository prefix, without a trailing `/` (`registry.k8s.io`,
    /// `registry.k8s.io/coredns`).
    pub repository: String,
    /// The image's name (`kube-apiserver`).
    pub name: String,
    /// The tag (`v1.35.0`).
    pub tag: String,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.repository, self.name, self.tag)
    }
}

impl From<ImageRef> for String {
    fn from(i: ImageRef) -> String {
        i.to_string()
    }
}

/// The etcd a spec runs: the release its flags are rendered for, and its image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdRelease {
    /// `spec.etcd.version`, else the version of the image tag.
    pub version: EtcdVersion,
    /// The image.
    pub image: ImageRef,
}

/// `repo` without one trailing `/`.
pub(crate) fn normalize_repository(repo: &str) -> &str {
    repo.strip_suffix('/').unwrap_or(repo)
}

impl ClusterSpec {
    /// The supported release of `spec.kubernetesVersion` (see [`KubernetesVersion::release`]).
    pub fn release(&self) -> Result<Release, Error> {
        self.kubernetes_version.release()
    }

    /// The reference of one of the cluster's images, by the rules of the [module](crate::images).
    /// Fails when the Kubernetes version is not supported, or (for etcd) when the etcd
    /// version cannot be known.
    pub fn image(&self, image: Image) -> Result<ImageRef, Error> {
        let release = self.release()?;
        let repo = normalize_repository(&self.image_repository);
        let of = |repository: &str, tag: String| ImageRef {
            repository: repository.to_owned(),
            name: image.name().to_owned(),
            tag,
        };
        Ok(match image {
            Image::ApiServer | Image::ControllerManager | Image::Scheduler | Image::Proxy => {
                of(repo, self.kubernetes_version.image_tag())
            }
            Image::Etcd => return Ok(self.etcd_release()?.image),
            Image::CoreDns if repo == DEFAULT_IMAGE_REPOSITORY => {
                of(&format!("{repo}/coredns"), release.coredns_tag.to_owned())
            }
            Image::CoreDns => of(repo, release.coredns_tag.to_owned()),
            Image::Pause => of(repo, release.pause_tag.to_owned()),
        })
    }

    /// Every image of the cluster, in [`Image::ALL`]'s order.
    pub fn images(&self) -> Result<Vec<(Image, ImageRef)>, Error> {
        Image::ALL
            .iter()
            .map(|i| Ok((*i, self.image(*i)?)))
            .collect()
    }

    /// The etcd release the flags are rendered for, and its image: `spec.etcd.imageTag`, else
    /// `{spec.etcd.version}-0`, else kubeadm's pin; the version is `spec.etcd.version`, else
    /// read from the tag.
    pub fn etcd_release(&self) -> Result<EtcdRelease, Error> {
        let release = self.release()?;
        let etcd = &self.etcd;
        let tag = match (&etcd.image_tag, etcd.version) {
            (Some(t), _) => t.clone(),
            (None, Some(v)) if v != release.etcd => format!("{v}-0"),
            (None, _) => release.etcd_tag.to_owned(),
        };
        let version = match etcd.version {
            Some(v) => v,
            None => tag.parse().map_err(|_| Error::Invalid {
                file: None,
                problems: vec![etcd_tag_without_version(&tag)],
            })?,
        };
        let repository = etcd
            .image_repository
            .as_deref()
            .unwrap_or(&self.image_repository);
        Ok(EtcdRelease {
            version,
            image: ImageRef {
                repository: normalize_repository(repository).to_owned(),
                name: Image::Etcd.name().to_owned(),
                tag,
            },
        })
    }

    /// Image checks: the version is supported, the repositories and tags are well formed.
    pub(crate) fn validate_images(&self, err: &mut impl FnMut(String, String)) {
        if let Err(e) = self.release() {
            for p in e.problems() {
                err(p.path, p.message);
            }
        }
        if let Some(why) = repository_problem(&self.image_repository) {
            err("spec.imageRepository".into(), why);
        }
        if let Some(r) = &self.etcd.image_repository
            && let Some(why) = repository_problem(r)
        {
            err("spec.etcd.imageRepository".into(), why);
        }
        if let Some(t) = &self.etcd.image_tag {
            if let Some(why) = tag_problem(t) {
                err("spec.etcd.imageTag".into(), why);
            } else if self.etcd.version.is_none() && t.parse::<EtcdVersion>().is_err() {
                let p = etcd_tag_without_version(t);
                err(p.path, p.message);
            }
        }
    }
}

fn etcd_tag_without_version(tag: &str) -> FieldError {
    FieldError {
        path: "spec.etcd.imageTag".into(),
        message: format!("{tag:?} does not start with an etcd version; set spec.etcd.version too"),
    }
}

/// The longest image name appended to a repository prefix.
const LONGEST_NAME: &str = "/kube-controller-manager";

/// What is wrong with an image repository prefix (`registry.k8s.io`, `mirror.example:5000/k8s`),
/// or `None`. A trailing `/` is allowed (and dropped). The grammar is the distribution
/// project's reference grammar: an optional `host[:port]`, then lower-case path components
/// separated by `/`.
pub(crate) fn repository_problem(repo: &str) -> Option<String> {
    const HINT: &str = "give a registry and path like registry.k8s.io or mirror.example:5000/k8s";
    let r = normalize_repository(repo);
    if r.is_empty() {
        return Some(format!("is not an image repository: it is empty; {HINT}"));
    }
    if r.contains("://") {
        return Some(format!(
            "{repo:?} is not an image repository: leave out the scheme; {HINT}"
        ));
    }
    if r.contains('@') {
        return Some(format!(
            "{repo:?} is not an image repository: a digest (@) names one image; give only the repository"
        ));
    }
    let mut parts = r.split('/');
    let first = parts.next().unwrap_or_default();
    let first_problem = if looks_like_host(first) {
        host_problem(first)
    } else {
        component_problem(first)
    };
    if let Some(why) = first_problem.or_else(|| parts.find_map(component_problem)) {
        return Some(format!("{repo:?} is not an image repository: {why}"));
    }
    let longest = r.len() + LONGEST_NAME.len();
    if longest > 255 {
        return Some(format!(
            "{repo:?} is too long for an image repository: with {LONGEST_NAME} the image name has {longest} characters, at most 255 are allowed"
        ));
    }
    None
}

/// Whether the first component is a registry host rather than a path (Docker's rule: it has a
/// `.` or `:`, is `localhost`, is bracketed, or has upper case, which paths cannot).
fn looks_like_host(first: &str) -> bool {
    first.contains(['.', ':', '['])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn host_problem(h: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Some(format!("{h:?} lacks the closing ']'"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Some(format!("{ip:?} in brackets is not an IPv6 address"));
        }
        match after {
            "" => return None,
            p => (None, p.strip_prefix(':').or(Some(p))),
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(h), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Some(format!(
                "the registry host {host:?} must be DNS labels (letters, digits, inner '-') joined by '.'"
            ));
        }
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!(
            "the registry port {p:?} must be a number from 1 to 65535"
        ));
    }
    None
}

/// A path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn component_problem(c: &str) -> Option<String> {
    let bad = || {
        Some(format!(
            "the path component {c:?} must be lower-case letters and digits, joined by '.', '_', '__' or '-'"
        ))
    };
    if c.is_empty() {
        return Some("it has an empty path component (`//` or a leading `/`)".into());
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad();
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return bad();
        }
    }
    None
}

/// What is wrong with an image tag, or `None`: 1 to 128 of letters, digits, `_`, `.` and `-`,
/// not starting with `.` or `-`.
pub(crate) fn tag_problem(t: &str) -> Option<String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.bytes().next().is_some_and(word)
        && t.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    (!ok).then(|| {
        format!(
            "{t:?} is not an image tag: 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (a '+' is not allowed)"
        )
    })
}

/// What is wrong with a full image reference (`name[:tag][@digest]`), or `None`.
pub(crate) fn reference_problem(r: &str) -> Option<String> {
    let (rest, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return Some(format!(
                "{r:?} is not an image reference: the digest must be algorithm:hex (sha256:...)"
            ));
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if name.ends_with('/') {
        return Some(format!("{r:?} is not an image reference: it ends with '/'"));
    }
    if let Some(why) = repository_problem(name) {
        return Some(why.replace("image repository", "image reference"));
    }
    tag.and_then(tag_problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_pins_agree() {
        for r in RELEASES {
            assert_eq!(r.etcd_tag.parse::<EtcdVersion>().unwrap(), r.etcd);
            for t in [r.etcd_tag, r.coredns_tag, r.pause_tag] {
                assert!(tag_problem(t).is_none(), "{t}");
            }
        }
        let v: KubernetesVersion = "v1.34.0".parse().unwrap();
        let e = v.release().unwrap_err().to_string();
        assert_eq!(
            e,
            "spec.kubernetesVersion: v1.34.0 is not supported; supported minors: v1.35, v1.36, v1.37"
        );
    }

    fn spec(repo: &str, version: &str) -> ClusterSpec {
        let mut s = ClusterSpec::example();
        s.image_repository = repo.into();
        s.kubernetes_version = version.parse().unwrap();
        s
    }

    fn names(s: &ClusterSpec) -> Vec<String> {
        s.images()
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.to_string())
            .collect()
    }

    /// What `kubeadm config images list --kubernetes-version v1.35.0` prints.
    #[test]
    fn default_images_are_kubeadms() {
        assert_eq!(
            names(&spec("registry.k8s.io", "v1.35.0")),
            [
                "registry.k8s.io/kube-apiserver:v1.35.0",
                "registry.k8s.io/kube-controller-manager:v1.35.0",
                "registry.k8s.io/kube-scheduler:v1.35.0",
                "registry.k8s.io/kube-proxy:v1.35.0",
                "registry.k8s.io/coredns/coredns:v1.13.1",
                "registry.k8s.io/pause:3.10.1",
                "registry.k8s.io/etcd:3.6.6-0",
            ]
        );
    }

    /// The three rules that existed (static pods, day-one objects, ACI) disagreed on a
    /// trailing `/` and on a `+` in the version; there is one now.
    #[test]
    fn a_trailing_slash_or_a_plus_gives_the_same_images() {
        let plain = names(&spec("mirror.example/k8s", "v1.36.1-rc.0+abc"));
        assert_eq!(
            names(&spec("mirror.example/k8s/", "v1.36.1-rc.0+abc")),
            plain
        );
        assert_eq!(
            plain,
            [
                "mirror.example/k8s/kube-apiserver:v1.36.1-rc.0_abc",
                "mirror.example/k8s/kube-controller-manager:v1.36.1-rc.0_abc",
                "mirror.example/k8s/kube-scheduler:v1.36.1-rc.0_abc",
                "mirror.example/k8s/kube-proxy:v1.36.1-rc.0_abc",
                "mirror.example/k8s/coredns:v1.14.2",
                "mirror.example/k8s/pause:3.10.2",
                "mirror.example/k8s/etcd:3.6.8-0",
            ]
        );
        for n in &plain {
            let tag = n.rsplit_once(':').unwrap().1;
            assert!(tag_problem(tag).is_none(), "{n}");
            assert!(reference_problem(n).is_none(), "{n}");
        }
        // The default registry with a trailing slash keeps CoreDNS's sub-path.
        let s = spec("registry.k8s.io/", "v1.35.0");
        assert_eq!(
            s.image(Image::CoreDns).unwrap().to_string(),
            "registry.k8s.io/coredns/coredns:v1.13.1"
        );
    }

    #[test]
    fn etcd_follows_its_overrides() {
        let mut s = spec("mirror.example/k8s", "v1.35.0");
        s.etcd.image_repository = Some("quay.example/coreos/".into());
        let e = s.etcd_release().unwrap();
        assert_eq!(e.version, EtcdVersion::new(3, 6, 6));
        assert_eq!(e.image.to_string(), "quay.example/coreos/etcd:3.6.6-0");
        // A version without a tag: the image of that version, not another one's.
        s.etcd.version = Some(EtcdVersion::new(3, 5, 21));
        let e = s.etcd_release().unwrap();
        assert_eq!(e.image.tag, "3.5.21-0");
        assert_eq!(e.version, EtcdVersion::new(3, 5, 21));
        // The pinned version keeps the pinned tag.
        s.etcd.version = Some(EtcdVersion::new(3, 6, 6));
        assert_eq!(s.etcd_release().unwrap().image.tag, "3.6.6-0");
        // An explicit tag wins; the version is read from it.
        s.etcd.version = None;
        s.etcd.image_tag = Some("3.5.17-0".into());
        let e = s.etcd_release().unwrap();
        assert_eq!(
            (e.version, e.image.tag.as_str()),
            (EtcdVersion::new(3, 5, 17), "3.5.17-0")
        );
        assert_eq!(s.image(Image::Etcd).unwrap(), e.image);
        // A tag that names no version needs spec.etcd.version.
        s.etcd.image_tag = Some("latest".into());
        let err = s.etcd_release().unwrap_err();
        assert_eq!(err.problems()[0].path, "spec.etcd.imageTag");
        assert!(s.validate().is_err());
    }

    #[test]
    fn an_unsupported_version_names_the_field() {
        let s = spec("registry.k8s.io", "v1.34.2");
        for i in Image::ALL {
            let e = s.image(i).unwrap_err();
            assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e}");
            assert_eq!(e.problems()[0].path, "spec.kubernetesVersion");
        }
    }

    #[test]
    fn references() {
        for good in [
            "mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:1.6.0",
            "ghcr.io/frankenetes/etcd-tools:3.6",
            "busybox",
            "localhost:5000/x",
            "registry.k8s.io/etcd@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "registry.k8s.io/etcd:3.6.6-0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                reference_problem(good).is_none(),
                "{good}: {:?}",
                reference_problem(good)
            );
        }
        for bad in [
            "",
            "x y",
            "x:",
            "x:+1",
            "registry.k8s.io/etcd@sha256:xyz",
            "x/",
            "x:1/",
        ] {
            assert!(reference_problem(bad).is_some(), "{bad}");
        }
    }
}
