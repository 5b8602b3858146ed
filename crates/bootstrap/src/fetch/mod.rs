//! The official Kubernetes binaries: downloaded from `dl.k8s.io` (or a mirror with the same
//! layout), verified against their published SHA-256 files, kept in a per-version cache; and
//! found again ([`locate`]) with their `--version` checked against the spec's.
//!
//! ```no_run
//! use frankenetes_bootstrap::fetch::{self, Binary, Cache, FetchOptions};
//!
//! # async fn run() -> Result<(), fetch::Error> {
//! let version = "v1.35.0".parse().expect("a version");
//! let options = FetchOptions::new(Cache::from_env()?);
//! let got = fetch::fetch(&Binary::ALL, &version, &options, |event| eprintln!("{event:?}")).await?;
//! let found = fetch::locate(&Binary::ALL, &version, None, &options.cache)?;
//! # let _ = (got, found); Ok(()) }
//! ```
//!
//! A download goes to a temporary file in the cache directory (`.kubelet.tmp-<pid>-<n>`), is
//! fsynced, verified, made executable (0755) and renamed into place; its verified SHA-256 is
//! then written next to it (`kubelet.sha256`, in `sha256sum` format). A cache hit is a binary
//! whose SHA-256, computed again on every use, equals the recorded one: a truncated, replaced
//! or bit-rotten file is downloaded again, never used. One process at a time works in a
//! version's directory (a lock on its `.lock` file), which is what makes removing the temporary
//! files of a killed run safe.

mod error;
mod http;
mod locate;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use frankenetes_spec::Arch;
use frankenetes_spec::KubernetesVersion;
use sha2::{Digest, Sha256};

pub use error::Error;
pub use locate::{Located, Origin, Search, binary_version, locate};

use store::parse_sha256;
use store::{
    TempFile, blocking, hex, lock_dir, remove_stale_temps, sync_dir, verified_entry, write_atomic,
};

/// Where the official binaries are published: `<base>/v1.35.0/bin/linux/amd64/kubelet`.
pub const DEFAULT_BASE_URL: &str = "https://dl.k8s.io/release";

/// A Kubernetes binary that [`fetch`] downloads and [`locate`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Binary {
    /// `kube-apiserver`.
    KubeApiserver,
    /// `kube-controller-manager`.
    KubeControllerManager,
    /// `kube-scheduler`.
    KubeScheduler,
    /// `kubelet`.
    Kubelet,
    /// `kube-proxy`.
    KubeProxy,
    /// `kubectl`.
    Kubectl,
}

impl Binary {
    /// Every binary, control plane first.
    pub const ALL: [Binary; 6] = [
        Binary::KubeApiserver,
        Binary::KubeControllerManager,
        Binary::KubeScheduler,
        Binary::Kubelet,
        Binary::KubeProxy,
        Binary::Kubectl,
    ];

    /// The file name, as published and as installed: `kube-apiserver`.
    pub const fn name(self) -> &'static str {
        match self {
            Binary::KubeApiserver => "kube-apiserver",
            Binary::KubeControllerManager => "kube-controller-manager",
            Binary::KubeScheduler => "kube-scheduler",
            Binary::Kubelet => "kubelet",
            Binary::KubeProxy => "kube-proxy",
            Binary::Kubectl => "kubectl",
        }
    }
}

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Binary {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Binary::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| Error::UnknownBinary { name: s.to_owned() })
    }
}

/// This machine's architecture, or [`Error::UnsupportedArch`].
pub fn host_arch() -> Result<Arch, Error> {
    Arch::host().ok_or_else(|| Error::UnsupportedArch {
        arch: std::env::consts::ARCH.to_owned(),
    })
}

/// The binary cache: `<root>/v1.35.0/linux-amd64/kubelet` (plus `kubelet.sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root` (the directory that holds the `v<version>` directories).
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The default cache: `$XDG_CACHE_HOME/frankenetes/bin`, else `$HOME/.cache/frankenetes/bin`.
    pub fn from_env() -> Result<Cache, Error> {
        default_root(
            std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
        .map(Cache::new)
        .ok_or(Error::NoCacheDir)
    }

    /// The directory that holds the version directories.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one version and architecture: `<root>/v1.35.0/linux-amd64`.
    pub fn dir(&self, version: &KubernetesVersion, arch: Arch) -> PathBuf {
        self.root
            .join(version.to_string())
            .join(format!("linux-{arch}"))
    }

    /// Where `binary` is (or would be) cached.
    pub fn path(&self, binary: Binary, version: &KubernetesVersion, arch: Arch) -> PathBuf {
        self.dir(version, arch).join(binary.name())
    }

    /// The SHA-256 (lowercase hex) of the cached `binary` when it is a hit: the file exists and
    /// hashes, now, to the checksum recorded when it was verified. `None` when it is missing,
    /// has no record, or differs from it. Reads the whole file.
    pub fn verified(
        &self,
        binary: Binary,
        version: &KubernetesVersion,
        arch: Arch,
    ) -> Result<Option<String>, Error> {
        verified_entry(&self.path(binary, version, arch))
    }
}

/// XDG: a relative `XDG_CACHE_HOME` is invalid and ignored.
fn default_root(xdg_cache_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    let base = match xdg_cache_home.filter(|p| p.is_absolute()) {
        Some(xdg) => xdg,
        None => home.filter(|p| p.is_absolute())?.join(".cache"),
    };
    Some(base.join("frankenetes").join("bin"))
}

/// How [`fetch`] downloads: from where, which CA, timeouts and retries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// The release location, [`DEFAULT_BASE_URL`], or a mirror with the same layout
    /// (`<base>/v1.35.0/bin/linux/amd64/kubelet` and `kubelet.sha256`). `http` or `https`.
    pub base_url: String,
    /// Where verified binaries are kept.
    pub cache: Cache,
    /// The architecture to fetch for; `None`: this machine's.
    pub arch: Option<Arch>,
    /// A PEM file of CA certificates trusted in addition to the system's (a mirror with a
    /// private CA).
    pub ca_cert: Option<PathBuf>,
    /// How long to wait for a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// How long a read may wait for data (a stalled transfer fails after this).
    pub read_timeout: Duration,
    /// Retries after a transient failure (connection refused or reset, timeout, a transfer cut
    /// short, HTTP 408, 429 or 5xx); not after a checksum mismatch, a 404 or a TLS failure.
    pub retries: u32,
    /// The delay before the first retry; doubled at each next one, at most 30 s.
    pub backoff: Duration,
}

impl FetchOptions {
    /// dl.k8s.io, this machine's architecture, 15 s to connect, 30 s per read, 4 retries
    /// after 1, 2, 4 and 8 s.
    pub fn new(cache: Cache) -> FetchOptions {
        FetchOptions {
            base_url: DEFAULT_BASE_URL.to_owned(),
            cache,
            arch: None,
            ca_cert: None,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            retries: 4,
            backoff: Duration::from_secs(1),
        }
    }

    /// The download URL of `binary` (its checksum is this plus `.sha256`).
    pub fn url(&self, binary: Binary, version: &KubernetesVersion, arch: Arch) -> String {
        format!(
            "{}/{version}/bin/linux/{arch}/{binary}",
            self.base_url.trim_end_matches('/')
        )
    }
}

/// What [`fetch`] is doing, for a progress bar. Events of one binary come in this order:
/// `Cached`, or `Started`, `Bytes`..., (`Retrying`, `Started`, `Bytes`...)..., `Verified`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchEvent {
    /// The cache already holds a verified copy: nothing is downloaded.
    Cached {
        /// The binary.
        binary: Binary,
        /// Its path in the cache.
        path: PathBuf,
    },
    /// A download (attempt) began; `total` is the size the server announced.
    Started {
        /// The binary.
        binary: Binary,
        /// Where from.
        url: String,
        /// Bytes to come, when known.
        total: Option<u64>,
    },
    /// Bytes arrived.
    Bytes {
        /// The binary.
        binary: Binary,
        /// Bytes received so far in this attempt.
        received: u64,
        /// Bytes to come in all, when known.
        total: Option<u64>,
    },
    /// A transient failure; the download starts over after `delay`.
    Retrying {
        /// The binary.
        binary: Binary,
        /// The attempt that failed (1 is the first).
        attempt: u32,
        /// The wait before the next one.
        delay: Duration,
        /// What went wrong, with the URL.
        cause: String,
    },
    /// The download matched its published checksum and is in the cache.
    Verified {
        /// The binary.
        binary: Binary,
        /// Its path in the cache.
        path: PathBuf,
        /// Its SHA-256, lowercase hex.
        sha256: String,
    },
}

/// A binary [`fetch`] made available.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fetched {
    /// The binary.
    pub binary: Binary,
    /// Its path in the cache (executable).
    pub path: PathBuf,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// Whether it was downloaded now (`false`: a cache hit).
    pub downloaded: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes `binaries` (each once, in order) for `version` available in the cache: a verified
/// cached copy is used as is (no request at all), anything else is downloaded from
/// `options.base_url`, checked against its `.sha256` file and moved into place atomically.
/// Progress goes to `progress`. Downloads run one at a time.
pub async fn fetch(
    binaries: &[Binary],
    version: &KubernetesVersion,
    options: &FetchOptions,
    progress: impl Fn(FetchEvent),
) -> Result<Vec<Fetched>, Error> {
    let arch = match options.arch {
        Some(a) => a,
        None => host_arch()?,
    };
    http::check_base_url(&options.base_url)?;
    let dir = options.cache.dir(version, arch);
    // 0755 whatever the umask: binaries others could replace would run as the operator.
    frankenetes_bundle::fs::create_dir_for(&dir)
        .map_err(|e| io_err(&dir)(std::io::Error::other(e)))?;
    let _lock = lock_dir(&dir).await?;
    remove_stale_temps(&dir)?;

    let mut client = None;
    let mut out: Vec<Fetched> = Vec::new();
    for &binary in binaries {
        if out.iter().any(|f| f.binary == binary) {
            continue;
        }
        let path = dir.join(binary.name());
        let p = path.clone();
        if let Some(sha256) = blocking(&path, move || verified_entry(&p)).await? {
            progress(FetchEvent::Cached {
                binary,
                path: path.clone(),
            });
            out.push(Fetched {
                binary,
                path,
                sha256,
                downloaded: false,
            });
            continue;
        }
        let client = match &mut client {
            Some(c) => c,
            None => client.insert(http::Client::new(options)?),
        };
        let url = options.url(binary, version, arch);
        let expected = client
            .checksum(&url, binary, &progress)
            .await
            .map_err(|e| with_version_hint(e, version, arch))?;
        let sha256 = download(client, &url, &dir, binary, &expected, &progress)
            .await
            .map_err(|e| with_version_hint(e, version, arch))?;
        progress(FetchEvent::Verified {
            binary,
            path: path.clone(),
            sha256: sha256.clone(),
        });
        out.push(Fetched {
            binary,
            path,
            sha256,
            downloaded: true,
        });
    }
    Ok(out)
}

fn with_version_hint(e: Error, version: &KubernetesVersion, arch: Arch) -> Error {
    match e {
        Error::Status { url, status, hint } if status == 404 && hint.is_empty() => Error::Status {
            url,
            status,
            hint: format!(
                " Not Found: is {version} a released Kubernetes version? A mirror needs \
                 dl.k8s.io's layout: <base>/{version}/bin/linux/{arch}/<binary>"
            ),
        },
        e => e,
    }
}

/// Downloads `url` into a temporary file in `dir`, retrying transient failures, and moves it
/// into place if its SHA-256 is `expected`. Returns the SHA-256.
async fn download(
    client: &http::Client,
    url: &str,
    dir: &Path,
    binary: Binary,
    expected: &str,
    progress: &impl Fn(FetchEvent),
) -> Result<String, Error> {
    let mut attempt = 0;
    let (tmp, actual) = loop {
        attempt += 1;
        match download_once(client, url, dir, binary, progress).await {
            Ok(done) => break done,
            Err(http::Failed::Local(e)) => return Err(e),
            Err(http::Failed::Net(f)) => {
                let (delay, cause) = client.retry_or_fail(f, url, attempt)?;
                progress(FetchEvent::Retrying {
                    binary,
                    attempt,
                    delay,
                    cause,
                });
                tokio::time::sleep(delay).await;
            }
        }
    };
    if actual != expected {
        return Err(Error::Checksum {
            binary,
            url: url.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    let final_path = dir.join(binary.name());
    tmp.persist(&final_path).await?;
    let record = format!("{actual}  {}\n", binary.name());
    write_atomic(dir, &format!("{}.sha256", binary.name()), record.as_bytes())?;
    sync_dir(dir)?;
    Ok(actual)
}

/// One attempt: the whole body into a new temporary file, hashed on the way.
async fn download_once(
    client: &http::Client,
    url: &str,
    dir: &Path,
    binary: Binary,
    progress: &impl Fn(FetchEvent),
) -> Result<(TempFile, String), http::Failed> {
    let mut transfer = client.open(url).await?;
    let total = transfer.total();
    progress(FetchEvent::Started {
        binary,
        url: url.to_owned(),
        total,
    });
    let mut tmp = TempFile::create(dir, binary.name())?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = transfer.chunk().await? {
        hasher.update(&chunk);
        tmp.write(&chunk).await?;
        progress(FetchEvent::Bytes {
            binary,
            received: transfer.received(),
            total,
        });
    }
    Ok((tmp, hex(&hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_root_follows_xdg_then_home() {
        let root = |x: Option<&str>, h: Option<&str>| {
            default_root(x.map(PathBuf::from), h.map(PathBuf::from))
        };
        assert_eq!(
            root(Some("/x"), Some("/home/u")),
            Some(PathBuf::from("/x/frankenetes/bin"))
        );
        assert_eq!(
            root(Some("rel"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/frankenetes/bin"))
        );
        assert_eq!(
            root(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/frankenetes/bin"))
        );
        assert_eq!(root(None, None), None);
        assert_eq!(root(None, Some("")), None);
    }

    #[test]
    fn arch_names() {
        assert_eq!(Arch::from_rust_arch("x86_64"), Some(Arch::Amd64));
        assert_eq!(Arch::from_rust_arch("aarch64"), Some(Arch::Arm64));
        assert_eq!(Arch::from_rust_arch("riscv64"), None);
        let e = Error::UnsupportedArch {
            arch: "riscv64".into(),
        }
        .to_string();
        assert!(e.contains("riscv64") && e.contains("--bin-dir"), "{e}");
        assert_eq!(host_arch().ok(), Arch::host());
    }

    #[test]
    fn binary_names_round_trip() {
        for b in Binary::ALL {
            assert_eq!(b.name().parse::<Binary>().unwrap(), b);
        }
        let e = "kubeadm".parse::<Binary>().unwrap_err().to_string();
        assert!(e.contains("kubeadm") && e.contains("kube-proxy"), "{e}");
    }

    #[test]
    fn checksum_parsing() {
        let h = "A".repeat(64);
        assert_eq!(parse_sha256(&h), Some("a".repeat(64)));
        assert_eq!(
            parse_sha256(&format!("{h}  kubelet\n")),
            Some("a".repeat(64))
        );
        assert_eq!(parse_sha256(&"a".repeat(63)), None);
        assert_eq!(parse_sha256(&"g".repeat(64)), None);
        assert_eq!(parse_sha256("<html>"), None);
        assert_eq!(parse_sha256(""), None);
    }

    #[test]
    fn urls_have_the_release_layout() {
        let mut o = FetchOptions::new(Cache::new("/c"));
        let v: KubernetesVersion = "v1.35.0".parse().unwrap();
        assert_eq!(
            o.url(Binary::Kubelet, &v, Arch::Amd64),
            "https://dl.k8s.io/release/v1.35.0/bin/linux/amd64/kubelet"
        );
        o.base_url = "https://mirror.example/k8s/".into();
        assert_eq!(
            o.url(Binary::KubeProxy, &v, Arch::Arm64),
            "https://mirror.example/k8s/v1.35.0/bin/linux/arm64/kube-proxy"
        );
        assert_eq!(
            o.cache.path(Binary::Kubectl, &v, Arch::Arm64),
            PathBuf::from("/c/v1.35.0/linux-arm64/kubectl")
        );
    }
}
