//! The cluster's life on its backend, through the one deployment API: `up`, `status`, `down`,
//! `pause`, `resume`, `snapshot`, `restore`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Args;
use frankenetes::bootstrap::{Cluster, DownOptions, Options, ResumeOptions};
use frankenetes::compute::Platform;
use frankenetes::spec::GoDuration;

use super::args::{ClusterArgs, Loaded};
use super::fail::{CliError, CmdResult, Outcome, ResultExt as _};
use super::out::{Format, out, outln, structured};
use super::run::{block_on, progress};

/// Arguments of `up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// How long each health gate waits (and bound of every network wait in it), e.g. 90s.
    #[arg(long, default_value = "90s", value_name = "DURATION")]
    pub timeout: GoDuration,
    /// Download the Kubernetes binaries first when they are not found (`frankenetes fetch`).
    #[arg(long)]
    pub fetch: bool,
}

/// Arguments of `down`.
#[derive(Debug, Args)]
pub(crate) struct DownArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also delete what holds the cluster's data outside its units: on azure, the file share
    /// with the etcd snapshots (kept by default, so a later `up` restores them).
    #[arg(long)]
    pub purge: bool,
    /// Delete without asking (a cloud backend otherwise only lists what it would delete).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Only list what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `resume`.
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// When the newest snapshot cannot be used, restore the newest older one that can (what
    /// was written after it is lost; the choice is reported).
    #[arg(long)]
    pub allow_older_snapshot: bool,
}

/// Arguments of `snapshot` and `restore`.
#[derive(Debug, Args)]
pub(crate) struct SnapshotArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The snapshot file.
    #[arg(value_name = "FILE")]
    pub snapshot: PathBuf,
}

/// Arguments of `backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Take one every spec.etcd.backup.interval until the cluster is gone (what `up` runs as
    /// the backup-etcd unit when the spec has spec.etcd.backup).
    #[arg(long)]
    pub schedule: bool,
}

/// The command `up` runs as the backup unit: this program, `backup --schedule` on the same
/// spec file (by its absolute path: the unit does not run where `up` was run).
pub(crate) fn backup_command(a: &super::args::SpecArgs) -> Result<Vec<String>, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::runtime(format!("cannot find this program's path: {e}")))?;
    let spec = std::path::absolute(&a.file)
        .map_err(|e| CliError::bad_input(format!("{}: {e}", a.file.display())))?;
    let mut argv = vec![
        exe.display().to_string(),
        "backup".into(),
        "--schedule".into(),
        "-f".into(),
        spec.display().to_string(),
    ];
    if let Some(dir) = &a.dir {
        let dir = std::path::absolute(dir)
            .map_err(|e| CliError::bad_input(format!("--dir {}: {e}", dir.display())))?;
        argv.extend(["--dir".into(), dir.display().to_string()]);
    }
    Ok(argv)
}

/// The cluster on its platform, with progress on stderr.
async fn cluster(
    a: &ClusterArgs,
    l: &Loaded,
    gate: Option<GoDuration>,
    verbose: u8,
) -> Result<Cluster<Box<dyn Platform>>, CliError> {
    let platform = frankenetes::platform_for(
        &l.spec,
        &l.dir,
        &frankenetes::PlatformOptions::default().bin_dir(a.bin_dir.clone()),
    )
    .await
    .ctx(a.spec.file.display().to_string())?;
    let mut opts = Options::new(&l.dir)
        .on_event(progress(verbose))
        .lock_timeout(super::duration(a.lock_timeout));
    if let Some(t) = gate {
        opts = opts.gate_timeout(t.get());
    }
    if l.spec.etcd.backup.is_some() {
        opts = opts.backup_command(Some(backup_command(&a.spec)?));
    }
    Ok(Cluster::new(l.spec.clone(), platform, opts))
}

/// `frankenetes up`.
pub(crate) fn up(a: &UpArgs, verbose: u8) -> CmdResult {
    let l = a.cluster.spec.load()?;
    let file = a.cluster.spec.file.display().to_string();
    block_on(
        "what started keeps running; `frankenetes up` resumes, `frankenetes down` cleans up",
        async {
            if a.fetch {
                super::fetch::fetch_for(
                    &l.spec,
                    &super::fetch::FetchArgs::default_for(&a.cluster.spec),
                    verbose,
                )
                .await?;
            }
            let c = cluster(&a.cluster, &l, Some(a.timeout), verbose).await?;
            let report = c.up().await.ctx(file)?;
            out!("{}", c.status().await?.table());
            if let Some(ep) = &report.outputs.vpn_endpoint {
                outln!("VPN endpoint: {ep}");
            }
            for (k, v) in &report.outputs.values {
                outln!("{k}: {v}");
            }
            outln!("admin kubeconfig: {}", report.admin_kubeconfig.display());
            outln!(
                "cluster directory: {} (`frankenetes kubeconfig --merge` adds the cluster to ~/.kube/config)",
                l.dir.display()
            );
            Ok(Outcome::Ok)
        },
    )
}

/// `frankenetes status`: exit 1 unless everything is healthy.
pub(crate) fn status(a: &ClusterArgs, format: Format, verbose: u8) -> CmdResult {
    let l = a.spec.load()?;
    block_on("nothing was changed", async {
        let c = cluster(a, &l, None, verbose).await?;
        let s = c.status().await?;
        if !structured(format, &s)? {
            out!("{}", s.table());
        }
        Ok(if s.is_healthy() {
            Outcome::Ok
        } else {
            Outcome::Problems
        })
    })
}

/// Asks on a terminal; elsewhere only `--yes` deletes.
fn confirmed(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// `frankenetes down`: on a cloud backend, the list of what would go, and nothing deleted
/// without `--yes` (or a yes on a terminal).
pub(crate) fn down(a: &DownArgs, verbose: u8) -> CmdResult {
    let l = a.cluster.spec.load()?;
    block_on(
        "what was not deleted yet is still there and tagged; `frankenetes down` again removes it",
        async {
            let c = cluster(&a.cluster, &l, None, verbose).await?;
            let cloud = l.spec.backend.kind() != "local";
            if a.dry_run || (cloud && !a.yes) {
                let preview = c.down(DownOptions::default().dry_run(true)).await?;
                if preview.found.is_empty() {
                    outln!(
                        "nothing of cluster {} exists on {}",
                        l.spec.name,
                        l.spec.backend.kind()
                    );
                    return Ok(Outcome::Ok);
                }
                outln!("`down` deletes:");
                for r in &preview.found {
                    outln!("  {r}");
                }
                if a.dry_run
                    || !confirmed(&format!(
                        "delete these {} resources of cluster {}?",
                        preview.found.len(),
                        l.spec.name
                    ))
                {
                    if !a.dry_run {
                        eprintln!("nothing deleted: run `frankenetes down --yes` to delete them");
                    }
                    return Ok(Outcome::Ok);
                }
            }
            let r = c.down(DownOptions::default().purge(a.purge)).await?;
            if r.found.is_empty() {
                outln!("nothing was running");
            }
            let verb = if cloud {
                "deleted"
            } else {
                "stopped and removed"
            };
            for f in &r.found {
                outln!("{verb} {f}");
            }
            if !r.left.is_empty() {
                for f in &r.left {
                    eprintln!("still there: {f}");
                }
                return Ok(Outcome::Problems);
            }
            if !r.found.is_empty() {
                outln!(
                    "audit: no tagged resource left of cluster {} on {}",
                    l.spec.name,
                    l.spec.backend.kind()
                );
            }
            if !cloud && a.purge {
                eprintln!("--purge: the local backend keeps no data outside the cluster directory");
            }
            outln!("data, PKI and bundles kept in {}", l.dir.display());
            Ok(Outcome::Ok)
        },
    )
}

/// `frankenetes pause`.
pub(crate) fn pause(a: &ClusterArgs, verbose: u8) -> CmdResult {
    let l = a.spec.load()?;
    block_on(
        "some units may be stopped and others not; `frankenetes pause` again finishes, `frankenetes resume` starts them",
        async {
            let c = cluster(a, &l, None, verbose).await?;
            let r = c.pause().await?;
            if r.already_paused {
                outln!(
                    "cluster {} is paused already: nothing was running",
                    l.spec.name
                );
                return Ok(Outcome::Ok);
            }
            if let Some(s) = &r.snapshot {
                outln!("snapshot {} taken and verified", s.display());
            }
            outln!(
                "{} units stopped (data kept); `frankenetes resume` starts them",
                r.stopped.len()
            );
            Ok(Outcome::Ok)
        },
    )
}

/// `frankenetes resume`.
pub(crate) fn resume(a: &ResumeArgs, verbose: u8) -> CmdResult {
    let l = a.cluster.spec.load()?;
    block_on(
        "some units may be started; `frankenetes resume` again finishes",
        async {
            let c = cluster(&a.cluster, &l, None, verbose).await?;
            c.resume(ResumeOptions::default().allow_older_snapshot(a.allow_older_snapshot))
                .await?;
            out!("{}", c.status().await?.table());
            Ok(Outcome::Ok)
        },
    )
}

/// `frankenetes snapshot FILE`.
pub(crate) fn snapshot(a: &SnapshotArgs, verbose: u8) -> CmdResult {
    let l = a.cluster.spec.load()?;
    block_on("no snapshot file was written", async {
        let c = cluster(&a.cluster, &l, None, verbose).await?;
        let sum = c.snapshot(&a.snapshot).await?;
        outln!("{} (sha256 {sum}, verified)", a.snapshot.display());
        Ok(Outcome::Ok)
    })
}

/// `frankenetes backup [--schedule]`.
pub(crate) fn backup(a: &BackupArgs, verbose: u8) -> CmdResult {
    let l = a.cluster.spec.load()?;
    block_on("the backup being written was removed", async {
        let c = cluster(&a.cluster, &l, None, verbose).await?;
        if a.schedule {
            c.backup_schedule().await?;
            return Ok(Outcome::Ok);
        }
        let r = c.backup().await?;
        outln!("{} (sha256 {}, verified)", r.file.display(), r.sha256);
        for f in &r.removed {
            outln!("removed {} (beyond spec.etcd.backup.keep)", f.display());
        }
        Ok(Outcome::Ok)
    })
}

/// `frankenetes restore FILE`.
pub(crate) fn restore(a: &SnapshotArgs, verbose: u8) -> CmdResult {
    let l = a.cluster.spec.load()?;
    if !a.snapshot.is_file() {
        return Err(CliError::bad_input(format!(
            "{} is not a file",
            a.snapshot.display()
        )));
    }
    block_on(
        "members may be half restored: their old data is kept beside them (etcd.replaced-<time>); run `frankenetes restore` again",
        async {
            let c = cluster(&a.cluster, &l, None, verbose).await?;
            c.restore(&a.snapshot).await?;
            outln!("restored every member from {}", a.snapshot.display());
            Ok(Outcome::Ok)
        },
    )
}
