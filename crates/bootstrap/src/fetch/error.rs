//! The errors of `fetch`, `locate` and `binary_version`.

use std::path::PathBuf;

use frankenetes_spec::KubernetesVersion;

use super::Binary;

/// Errors of fetching and locating binaries; each names the URL, file or binary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The machine's architecture has no official binaries we support.
    #[error(
        "this machine's architecture is {arch}; Kubernetes binaries are fetched for amd64 \
         (x86_64) and arm64 (aarch64) only: install them yourself and pass --bin-dir"
    )]
    UnsupportedArch {
        /// Rust's name of it.
        arch: String,
    },
    /// A binary name we do not know.
    #[error(
        "unknown binary `{name}`; one of kube-apiserver, kube-controller-manager, \
         kube-scheduler, kubelet, kube-proxy, kubectl"
    )]
    UnknownBinary {
        /// The name given.
        name: String,
    },
    /// No cache directory could be chosen.
    #[error("neither XDG_CACHE_HOME nor HOME is set to an absolute path; choose a cache directory")]
    NoCacheDir,
    /// The base URL is unusable.
    #[error("mirror URL `{url}`: {reason}")]
    BaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The extra CA certificate file is unusable.
    #[error("CA certificate {}: {reason}", .path.display())]
    CaCert {
        /// The PEM file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be set up (e.g. no usable system CA store).
    #[error("cannot set up HTTPS: {cause}")]
    Client {
        /// Why.
        cause: String,
    },
    /// The server could not be reached, after every retry.
    #[error("could not connect to {url}: {cause} ({attempts} attempt{})", plural(*.attempts))]
    Connect {
        /// The URL.
        url: String,
        /// Why: `connection refused`, a TLS failure...
        cause: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The transfer failed, after every retry.
    #[error("download of {url} failed: {cause} ({attempts} attempt{})", plural(*.attempts))]
    Transfer {
        /// The URL.
        url: String,
        /// Why: the connection broke off, no data within the read timeout...
        cause: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}{hint}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The reason phrase and, for a 404, what it likely means (starts with a space).
        hint: String,
    },
    /// The published checksum file holds no SHA-256.
    #[error("{url} does not hold a SHA-256 checksum (64 hex digits): {content:?}")]
    ChecksumFile {
        /// The checksum file's URL.
        url: String,
        /// Its beginning.
        content: String,
    },
    /// A download did not match its published checksum; it was discarded.
    #[error(
        "{binary} downloaded from {url} has SHA-256 {actual}, but {url}.sha256 publishes \
         {expected}; the download was discarded and nothing was cached"
    )]
    Checksum {
        /// The binary.
        binary: Binary,
        /// The binary's URL.
        url: String,
        /// The published SHA-256.
        expected: String,
        /// The downloaded file's SHA-256.
        actual: String,
    },
    /// A file could not be read or written.
    #[error("{}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A binary could not be run to ask its version.
    #[error("cannot run `{} {args}`: {cause}", .path.display())]
    Run {
        /// The binary.
        path: PathBuf,
        /// The arguments.
        args: String,
        /// Why.
        cause: String,
    },
    /// A binary's version output was not understood.
    #[error("`{} {args}` did not print a Kubernetes version (`Kubernetes v1.35.0`): {output:?}", .path.display())]
    VersionOutput {
        /// The binary.
        path: PathBuf,
        /// The arguments.
        args: String,
        /// What it printed (the start of it).
        output: String,
    },
    /// A binary is of another Kubernetes version than the spec's.
    #[error(
        "{} is Kubernetes {found}, but the spec wants {wanted}; run `frankenetes fetch` to \
         cache {wanted}, or pass --bin-dir with {wanted} binaries",
        .path.display()
    )]
    VersionMismatch {
        /// The binary.
        binary: Binary,
        /// Where it is.
        path: PathBuf,
        /// Its version.
        found: KubernetesVersion,
        /// The spec's.
        wanted: KubernetesVersion,
    },
    /// Binaries are nowhere to be found.
    #[error(
        "{} {version} not found in {searched}; run `frankenetes fetch` to download {}, or \
         pass --bin-dir",
        names(.binaries), if .binaries.len() == 1 { "it" } else { "them" }
    )]
    NotFound {
        /// The binaries missing.
        binaries: Vec<Binary>,
        /// The version wanted.
        version: KubernetesVersion,
        /// Where they were looked for.
        searched: String,
    },
}

impl Error {
    /// Whether the user must change what they gave (a mirror URL, a CA file, a binary of
    /// another release where they pointed): the CLI exits 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::UnsupportedArch { .. }
                | Error::UnknownBinary { .. }
                | Error::NoCacheDir
                | Error::BaseUrl { .. }
                | Error::CaCert { .. }
                | Error::VersionMismatch { .. }
                | Error::NotFound { .. }
        )
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn names(binaries: &[Binary]) -> String {
    let v: Vec<&str> = binaries.iter().map(|b| b.name()).collect();
    v.join(", ")
}
