//! `frankenetes fetch`: the official Kubernetes binaries of the spec's release, verified,
//! cached per version; progress on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use frankenetes::bootstrap::fetch::{self, Binary, Cache, FetchEvent, FetchOptions};
use frankenetes::spec::ClusterSpec;

use super::args::SpecArgs;
use super::fail::{CliError, CmdResult, Outcome};
use super::out::outln;
use super::run::block_on;

/// Arguments of `fetch`.
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// A mirror with dl.k8s.io's layout (<URL>/v1.35.0/bin/linux/amd64/kubelet and
    /// kubelet.sha256), for air-gapped machines.
    #[arg(long, value_name = "URL", env = "FRANKENETES_RELEASE_URL")]
    mirror: Option<String>,
    /// A PEM file of CA certificates the mirror's certificate chains to (besides the system's).
    #[arg(long, value_name = "FILE")]
    mirror_ca: Option<PathBuf>,
    /// The cache (default: $XDG_CACHE_HOME/frankenetes/bin, else ~/.cache/frankenetes/bin).
    #[arg(long, value_name = "DIR", env = "FRANKENETES_BIN_CACHE")]
    cache: Option<PathBuf>,
}

impl FetchArgs {
    /// The defaults, for `up --fetch`.
    pub(crate) fn default_for(spec: &SpecArgs) -> Self {
        Self {
            spec: spec.clone(),
            mirror: std::env::var("FRANKENETES_RELEASE_URL").ok(),
            mirror_ca: None,
            cache: std::env::var_os("FRANKENETES_BIN_CACHE").map(PathBuf::from),
        }
    }
}

/// `frankenetes fetch`.
pub(crate) fn run(a: &FetchArgs, verbose: u8) -> CmdResult {
    let spec = super::args::load_spec(&a.spec.file)?;
    block_on(
        "no half-downloaded file is ever used; `frankenetes fetch` again resumes",
        async {
            let got = fetch_for(&spec, a, verbose).await?;
            for f in &got {
                outln!(
                    "{} {} {}",
                    f.path.display(),
                    if f.downloaded { "downloaded" } else { "cached" },
                    f.sha256
                );
            }
            Ok(Outcome::Ok)
        },
    )
}

/// Fetches every binary the spec needs into the cache.
pub(crate) async fn fetch_for(
    spec: &ClusterSpec,
    a: &FetchArgs,
    _verbose: u8,
) -> Result<Vec<fetch::Fetched>, CliError> {
    let cache = match &a.cache {
        Some(c) => Cache::new(c.clone()),
        None => Cache::from_env()?,
    };
    let mut opts = FetchOptions::new(cache);
    if let Some(m) = &a.mirror {
        opts.base_url = m.clone();
    }
    opts.ca_cert = a.mirror_ca.clone();
    let version = spec
        .kubernetes_version
        .to_string()
        .parse()
        .map_err(|e| CliError::bad_input(format!("spec.kubernetesVersion: {e}")))?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let got = fetch::fetch(&Binary::ALL, &version, &opts, |e| match (&bar, e) {
        (Some(pb), FetchEvent::Started { binary, total, .. }) => {
            pb.reset();
            pb.set_length(total.unwrap_or(0));
            pb.set_message(binary.name().to_owned());
        }
        (Some(pb), FetchEvent::Bytes { received, .. }) => pb.set_position(received),
        (Some(pb), e) => pb.println(describe(&e)),
        (None, FetchEvent::Bytes { .. }) => {}
        (None, e) => eprintln!("{}", describe(&e)),
    })
    .await?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    Ok(got)
}

fn describe(e: &FetchEvent) -> String {
    match e {
        FetchEvent::Cached { binary, path } => {
            format!("{binary}: cached and verified ({})", path.display())
        }
        FetchEvent::Started { binary, url, .. } => format!("{binary}: downloading {url}"),
        FetchEvent::Retrying {
            binary,
            attempt,
            delay,
            cause,
        } => format!("{binary}: attempt {attempt} failed ({cause}); retrying in {delay:?}"),
        FetchEvent::Verified { binary, sha256, .. } => {
            format!("{binary}: verified against its published sha256 {sha256}")
        }
        other => format!("{other:?}"),
    }
}
