//! Arguments shared by commands, and where a cluster's files are: every command reads the
//! same spec (`-f`, default `cluster.yaml`) and works in the same cluster directory
//! (`.frankenetes/<name>` next to the spec, or `--dir`), whose `bundle/` is what `pki`,
//! `render`, `vpn` and `up` write, so following the README in order makes one CA.

use std::path::{Path, PathBuf};

use clap::Args;
use frankenetes::spec::{ClusterSpec, GoDuration};

use super::fail::{CliError, ResultExt as _};

/// The spec file and the cluster directory.
#[derive(Debug, Clone, Args)]
pub(crate) struct SpecArgs {
    /// The cluster spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "cluster.yaml",
        default_value = "cluster.yaml"
    )]
    pub(crate) file: PathBuf,
    /// The cluster's working directory (PKI and bundles, etcd data, logs, snapshots).
    /// Default: .frankenetes/<cluster name> next to the spec.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// [`SpecArgs`] plus what a running cluster needs.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClusterArgs {
    #[command(flatten)]
    pub(crate) spec: SpecArgs,
    /// Where kube-apiserver, kube-controller-manager and kube-scheduler are (else PATH, then the
    /// `frankenetes fetch` cache).
    #[arg(long, value_name = "DIR", env = "FRANKENETES_BIN_DIR")]
    pub(crate) bin_dir: Option<PathBuf>,
    /// How long to wait when another command holds the cluster directory (default: not at
    /// all), e.g. 5m.
    #[arg(long, value_name = "DURATION")]
    pub(crate) lock_timeout: Option<GoDuration>,
}

/// A loaded spec and its directories.
pub(crate) struct Loaded {
    pub(crate) spec: ClusterSpec,
    /// The cluster directory (absolute: processes outlive the command).
    pub dir: PathBuf,
}

impl Loaded {
    /// `<dir>/bundle`: the PKI and node bundles.
    pub(crate) fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
}

/// Reads and validates a spec; warnings go to stderr. Bad input names the file.
pub(crate) fn load_spec(file: &Path) -> Result<ClusterSpec, CliError> {
    let parsed = ClusterSpec::load(file).ctx(format!("{}", file.display()))?;
    for w in &parsed.warnings {
        eprintln!("warning: {}: {w}", file.display());
    }
    Ok(parsed.spec)
}

impl SpecArgs {
    /// The spec and its cluster directory.
    pub(crate) fn load(&self) -> Result<Loaded, CliError> {
        let spec = load_spec(&self.file)?;
        let dir = self.dir.clone().unwrap_or_else(|| {
            self.file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join(".frankenetes")
                .join(spec.name.as_str())
        });
        let dir = std::path::absolute(&dir)
            .map_err(|e| CliError::bad_input(format!("{}: {e}", dir.display())))?;
        Ok(Loaded { spec, dir })
    }
}
