//! `frankenetes pki`: make or complete the PKI, check it, renew leaves (and the kubeconfigs
//! that embed them), rotate the Secrets encryption key.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use frankenetes::pki::{self, CheckOptions, PkiPlan, RenewOptions, SyncOptions};
use frankenetes::spec::{self, ClusterSpec, GoDuration};

use super::args::{SpecArgs, load_spec};
use super::fail::{CliError, CmdResult, Outcome, ResultExt as _};
use super::out::{Format, out, outln, structured};

#[derive(Debug, Args)]
pub(crate) struct PkiCommand {
    #[command(subcommand)]
    sub: Option<PkiSub>,
    #[command(flatten)]
    generate: PkiGenerate,
}

#[derive(Debug, Args)]
struct PkiGenerate {
    #[command(flatten)]
    spec: SpecArgs,
    /// Output directory (the layout of `render`: cluster/pki and nodes/<name>/...). Default:
    /// the cluster directory's bundle/ (where `render` and `up` find it).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace leaf certificates that no longer match the spec (CAs are never replaced).
    #[arg(long)]
    renew: bool,
    /// Narrow keys others can read to 0600 (and CA key directories to 0700) instead of only
    /// reporting them.
    #[arg(long)]
    fix_modes: bool,
}

/// Where a `pki` subcommand works: DIR, else the cluster directory's bundle of the spec.
#[derive(Debug, Args)]
struct DirArgs {
    /// The directory (an output directory of `pki`/`render`, or a kubeadm /etc/kubernetes/pki).
    /// Default: the cluster directory's bundle/ of the spec given with -f.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The cluster spec: DIR defaults to its cluster directory's bundle/ (cluster.yaml when
    /// neither is given), and `check` also checks DIR against it.
    #[arg(short = 'f', long = "file", value_name = "cluster.yaml")]
    file: Option<PathBuf>,
}

impl DirArgs {
    fn resolve(&self) -> Result<PathBuf, CliError> {
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => SpecArgs {
                file: self
                    .file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("cluster.yaml")),
                dir: None,
            }
            .load()?
            .bundle(),
        };
        super::existing_dir(dir)
    }
}

#[derive(Debug, Subcommand)]
enum PkiSub {
    /// Check every certificate, key and kubeconfig in DIR: chain, signature, key match, SANs,
    /// expiry, file modes; CAs in their own table.
    ///
    /// Prints tables like `kubeadm certs check-expiration` and exits 1 on any problem.
    Check {
        #[command(flatten)]
        dir: DirArgs,
        /// Also a problem: a certificate expiring within this long (e.g. 720h).
        #[arg(long, value_name = "DURATION")]
        within: Option<GoDuration>,
        /// Narrow keys others can read to 0600 and remove temporary files a killed run left.
        #[arg(long)]
        fix: bool,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Format,
    },
    /// Re-sign leaf certificates with the CAs found in DIR (new keys, same identities), and
    /// rewrite every kubeconfig that embeds one.
    Renew {
        /// The directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Certificates to renew: `control-01/apiserver`, `apiserver` for every node, or `all`.
        #[arg(required = true, value_name = "NAME|all")]
        names: Vec<String>,
        /// Lifetime of the renewed certificates (default: as before), e.g. 8760h.
        #[arg(long, value_name = "DURATION")]
        validity: Option<GoDuration>,
    },
    /// Add a new first key to the Secrets encryption config in DIR; older keys stay for reads.
    ///
    /// Rewrites cluster/pki/encryption-config.yaml and every control-plane node's copy with the
    /// same content (refused, nothing written, if the copies differ), then prints what to do
    /// next: copy the file to the nodes, restart each apiserver, rewrite every Secret.
    RotateEncryption {
        #[command(flatten)]
        dir: DirArgs,
    },
}

/// `frankenetes pki …`.
pub(crate) fn run(a: PkiCommand) -> CmdResult {
    match a.sub {
        None => {
            let l = a.generate.spec.load()?;
            let out = a.generate.out.clone().unwrap_or_else(|| l.bundle());
            let _lock = frankenetes::bundle::lock::DirLock::acquire(&out, "pki", None)?;
            let (_, outcome) = sync(
                &l.spec,
                &out,
                &SyncOptions::default()
                    .renew(a.generate.renew)
                    .fix_modes(a.generate.fix_modes),
            )?;
            Ok(outcome)
        }
        Some(PkiSub::Check {
            dir,
            within,
            fix,
            output,
        }) => {
            let plan = dir
                .file
                .as_deref()
                .map(|f| load_spec(f).map(|s| PkiPlan::from(&s)))
                .transpose()?;
            check(&dir.resolve()?, plan, within, fix, output)
        }
        Some(PkiSub::Renew {
            dir,
            names,
            validity,
        }) => renew(&super::existing_dir(dir)?, names, validity),
        Some(PkiSub::RotateEncryption { dir }) => rotate_encryption(&dir.resolve()?),
    }
}

/// Loads and completes the PKI in `out`, printing what happened (shared with `render`).
pub(crate) fn sync(
    spec: &ClusterSpec,
    out: &Path,
    opts: &SyncOptions,
) -> Result<(pki::Pki, Outcome), CliError> {
    let plan = PkiPlan::from(spec);
    if out.exists() && !out.is_dir() {
        return Err(CliError::bad_input(format!(
            "{} exists and is not a directory",
            out.display()
        )));
    }
    let started = Instant::now();
    if plan.key_algorithm.is_rsa() && std::io::stderr().is_terminal() {
        eprintln!(
            "generating {} keys on {} cores…",
            plan.key_algorithm.as_str(),
            std::thread::available_parallelism().map_or(1, usize::from)
        );
    }
    let (pki, report) = pki::sync(&plan, out, *opts)
        .ctx(format!("cannot complete the PKI in {}", out.display()))?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    for (path, why) in &report.replaced {
        outln!("replaced {} ({why})", path.display());
    }
    outln!(
        "{}: {} files created, {} replaced, {} unchanged ({} CA mode, {}) in {:.0?}",
        out.display(),
        report.created.len(),
        report.replaced.len(),
        report.unchanged,
        match plan.ca_mode {
            spec::CaMode::Intermediate => "intermediate",
            _ => "kubeadm",
        },
        plan.key_algorithm.as_str(),
        started.elapsed()
    );
    let mut outcome = Outcome::Ok;
    for m in &report.loose_modes {
        eprintln!("warning: {m} (`frankenetes pki --fix-modes` narrows it)");
        outcome = Outcome::Problems;
    }
    if !report.stale.is_empty() {
        eprintln!(
            "{} certificate(s) no longer match the spec and were kept:",
            report.stale.len()
        );
        for s in &report.stale {
            eprintln!(
                "  {} ({}): {}",
                s.name,
                s.path.display(),
                s.reasons.join("; ")
            );
        }
        eprintln!("run again with --renew to replace them (CAs are never replaced)");
        outcome = Outcome::Problems;
    }
    Ok((pki, outcome))
}

fn check(
    dir: &Path,
    plan: Option<PkiPlan>,
    within: Option<GoDuration>,
    fix: bool,
    format: Format,
) -> CmdResult {
    let opts = CheckOptions::default()
        .within(within.map(GoDuration::get))
        .plan(plan)
        .fix_modes(fix);
    let report = pki::check(dir, &opts)?;
    if report.rows.is_empty() && report.kubeconfigs.is_empty() {
        eprintln!("{}: no certificates found", dir.display());
        return Ok(Outcome::Problems);
    }
    if !structured(format, &report)? {
        out!("{}", report.table());
    }
    if report.is_ok() {
        Ok(Outcome::Ok)
    } else {
        eprintln!("{} problem(s):", report.problem_count());
        for p in report.problems() {
            eprintln!("  {p}");
        }
        Ok(Outcome::Problems)
    }
}

fn renew(dir: &Path, names: Vec<String>, validity: Option<GoDuration>) -> CmdResult {
    let _lock = frankenetes::bundle::lock::DirLock::acquire(dir, "pki renew", None)?;
    let mut opts = RenewOptions::default().validity(validity.map(GoDuration::get));
    opts = if names.iter().any(|n| n == "all") {
        if names.len() > 1 {
            return Err(CliError::bad_input(
                "`all` renews every certificate: give it alone, or name the certificates",
            ));
        }
        opts.all()
    } else {
        opts.names(names)
    };
    let r = pki::renew(dir, &opts)?;
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    for n in &r.renewed {
        outln!("renewed {n}");
    }
    for k in &r.kubeconfigs {
        outln!("refreshed {}", k.display());
    }
    outln!(
        "{} certificate(s) and {} kubeconfig(s) renewed; restart the components that use them",
        r.renewed.len(),
        r.kubeconfigs.len()
    );
    if r.check.is_ok() {
        Ok(Outcome::Ok)
    } else {
        eprintln!("problems renewing did not repair:");
        for p in r.check.problems() {
            eprintln!("  {p}");
        }
        Ok(Outcome::Problems)
    }
}

fn rotate_encryption(dir: &Path) -> CmdResult {
    let _lock = frankenetes::bundle::lock::DirLock::acquire(dir, "pki rotate-encryption", None)?;
    let report = pki::encryption::rotate(dir)?;
    outln!("new write key: {}", report.new_key);
    outln!("keys kept for reads: {}", report.read_keys.join(", "));
    for f in &report.written {
        outln!("wrote {}", dir.join(f).display());
    }
    outln!("next:");
    for (i, step) in report.next_steps.iter().enumerate() {
        outln!("  {}. {step}", i + 1);
    }
    Ok(Outcome::Ok)
}
