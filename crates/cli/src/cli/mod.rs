//! The `frankenetes` command line: the argument definitions and the dispatch; each command's
//! work is in its own module.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use frankenetes::spec::GoDuration;

mod args;
mod cluster;
mod fail;
mod fetch;
mod init;
mod kubeconfig;
mod out;
mod pki;
mod plan;
mod run;
mod token;
mod vpn;

#[cfg(test)]
mod docs;

use args::{ClusterArgs, SpecArgs};
use fail::{CliError, CmdResult, Outcome};
use out::Format;

/// The commit, features and Kubernetes releases this build knows, for `--version`.
fn long_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let backends = frankenetes::BACKENDS;
        let minors: Vec<String> = frankenetes::spec::RELEASES
            .iter()
            .map(|r| format!("1.{}", r.minor))
            .collect();
        format!(
            "{} (commit {})\nbackends: {}\nKubernetes: {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("FRANKENETES_COMMIT").unwrap_or("unknown"),
            backends.join(", "),
            minors.join(", ")
        )
    })
}

/// Build a Kubernetes control plane the hard way, automatically and securely.
///
/// Every command reads the spec given with -f (default cluster.yaml) and works in one cluster
/// directory (.frankenetes/<name> next to the spec, or --dir): `pki`, `render`, `up`, `vpn`,
/// `token` and `kubeconfig` all find the same PKI there.
///
/// Exit codes: 0 success, 1 a check or operation found a problem, 2 bad input (spec,
/// arguments), 130 interrupted (Ctrl-C).
#[derive(Debug, Parser)]
#[command(
    name = "frankenetes",
    version,
    long_version = long_version(),
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// More detail: -v shows every step frankenetes takes, -vv its debug log, -vvv the
    /// libraries' too (or set RUST_LOG).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a commented starter cluster.yaml.
    Init(init::InitArgs),
    /// Show what would be made and created for a cluster spec, and what it costs; nothing
    /// is written and no call is made.
    Plan {
        #[command(flatten)]
        spec: SpecArgs,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Format,
    },
    /// Download the official Kubernetes binaries of spec.kubernetesVersion for this machine,
    /// verified against their published checksums, into a per-version cache that `up` uses.
    Fetch(fetch::FetchArgs),
    /// Generate the PKI, or load and complete what the directory already has.
    ///
    /// Existing files are loaded and checked: a CA is never replaced, a certificate whose SANs
    /// or subject no longer match the spec is reported (exit 1) and replaced only with
    /// --renew, and only what is missing is generated. Re-running changes no byte.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Pki(pki::PkiCommand),
    /// Write every node's bundle: the PKI, static pods, kubeconfigs, kubelet config, systemd
    /// units, and one Ignition config per node.
    ///
    /// DIR/nodes/<name>/ is a root-filesystem overlay for that machine (copy it onto /), and
    /// DIR/nodes/<name>.ign holds the same content for Fedora CoreOS. Re-running is
    /// idempotent like `pki`: existing certificates are kept, unchanged files are not touched.
    Render(plan::RenderArgs),
    /// Bring the cluster up, or converge it if it is partly up. Idempotent; Ctrl-C leaves a
    /// state that `up` resumes and `down` cleans.
    ///
    /// On the local backend the etcd tier always comes up (etcd from PATH; Debian:
    /// etcd-server); the apiserver tier comes up when kube-apiserver, kube-controller-manager
    /// and kube-scheduler of spec.kubernetesVersion are in --bin-dir, PATH or the fetch cache
    /// (`frankenetes fetch`, or `up --fetch`); otherwise `up` says which are missing and exits
    /// 0 with etcd healthy.
    Up(cluster::UpArgs),
    /// Show each unit's state and health (etcd, every apiserver's /readyz, the leader
    /// leases). Exit 1 when anything is unhealthy or the cluster does not exist.
    Status {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Format,
    },
    /// Delete everything the cluster has on its backend, and prove it. Data, PKI and bundles
    /// stay in the cluster directory (remove it to forget the cluster). On a cloud backend it
    /// lists what it would delete and deletes only with --yes.
    Down(cluster::DownArgs),
    /// Stop every unit keeping its data: the writers first, then — after a verified snapshot —
    /// etcd. Running it again on a paused cluster changes nothing.
    Pause(ClusterArgs),
    /// Start every unit again; when every member's data is gone, the newest verified snapshot
    /// is restored first (an older one only with --allow-older-snapshot).
    Resume(cluster::ResumeArgs),
    /// Stream an etcd snapshot to FILE (0600, atomically, with FILE.sha256), verified.
    Snapshot(cluster::SnapshotArgs),
    /// Rebuild every etcd member from FILE (its checksum and integrity verified first).
    Restore(cluster::SnapshotArgs),
    /// Take a backup now into the cluster directory's backups/ (spec.etcd.backup: where, how
    /// many kept), verified; --schedule takes one every interval (what `up` runs).
    Backup(cluster::BackupArgs),
    /// Bootstrap tokens for adding workers with stock `kubeadm join` (a running cluster).
    Token {
        #[command(subcommand)]
        cmd: token::TokenCmd,
    },
    /// The WireGuard VPN of `spec.gateway`.
    Vpn {
        #[command(subcommand)]
        cmd: vpn::VpnCmd,
    },
    /// Print the admin kubeconfig, or merge it into ~/.kube/config, with cluster-unique
    /// names (frankenetes-<cluster>) for its cluster, user and context.
    Kubeconfig(kubeconfig::KubeconfigArgs),
    /// Print a shell completion script: `frankenetes completion bash > /etc/bash_completion.d/frankenetes`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Logs: frankenetes' own at -v (info) and -vv (debug), every library's at -vvv; colours only
/// on a terminal.
fn init_tracing(verbose: u8) {
    // Our crates' warnings always; the libraries' (an SDK noting a missing config file) only
    // at -vvv or with RUST_LOG: errors reach the user as our errors, with context.
    const OURS: &str = "frankenetes=warn,frankenetes_bootstrap=warn,frankenetes_cloud_aws=warn,\
                        frankenetes_cloud_azure=warn,frankenetes_netgw=warn,frankenetes_pki=warn,\
                        frankenetes_manifests=warn";
    let default = match verbose {
        0 => format!("error,{OURS}"),
        1 => format!("error,{OURS},frankenetes=info,frankenetes_bootstrap=info"),
        2 => format!(
            "error,{OURS},frankenetes=debug,frankenetes_bootstrap=debug,frankenetes_cloud_aws=debug,frankenetes_cloud_azure=debug"
        ),
        _ => "debug".to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .try_init();
}

/// The program: parse, run, map the result to an exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match dispatch(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", e.render());
            ExitCode::from(e.code())
        }
    }
}

fn dispatch(cli: Cli) -> CmdResult {
    let v = cli.verbose;
    match cli.command {
        Command::Init(a) => init::run(&a),
        Command::Plan { spec, output } => plan::plan(&spec, output),
        Command::Fetch(a) => fetch::run(&a, v),
        Command::Pki(a) => pki::run(a),
        Command::Render(a) => plan::render(&a),
        Command::Up(a) => cluster::up(&a, v),
        Command::Status { cluster, output } => cluster::status(&cluster, output, v),
        Command::Down(a) => cluster::down(&a, v),
        Command::Pause(a) => cluster::pause(&a, v),
        Command::Resume(a) => cluster::resume(&a, v),
        Command::Snapshot(a) => cluster::snapshot(&a, v),
        Command::Restore(a) => cluster::restore(&a, v),
        Command::Backup(a) => cluster::backup(&a, v),
        Command::Token { cmd } => token::run(cmd),
        Command::Vpn { cmd } => vpn::run(cmd),
        Command::Kubeconfig(a) => kubeconfig::run(&a),
        Command::Completion { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "frankenetes", &mut std::io::stdout());
            Ok(Outcome::Ok)
        }
    }
}

/// A `Duration` from an optional [`GoDuration`].
pub(crate) fn duration(d: Option<GoDuration>) -> Option<std::time::Duration> {
    d.map(GoDuration::get)
}

/// A path that must be a directory (bad input otherwise).
pub(crate) fn existing_dir(p: PathBuf) -> Result<PathBuf, CliError> {
    if p.is_dir() {
        Ok(p)
    } else {
        Err(CliError::bad_input(format!(
            "{} is not a directory",
            p.display()
        )))
    }
}
