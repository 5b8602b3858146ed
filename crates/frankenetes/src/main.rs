//! The `frankenetes` command line.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use frankenetes::pki::{self, CheckOptions, PkiPlan, RenewOptions, SyncOptions};
use frankenetes::spec::{self, ClusterSpec, GoDuration};

mod init;

/// `println!` that ends the program quietly when stdout is closed (`frankenetes plan | head`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// `print!` with the same rule as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

#[cfg(any(feature = "aws", feature = "azure"))]
mod cloud;

/// Build a Kubernetes control plane the hard way, automatically and securely.
///
/// Exit codes: 0 success, 1 a check or operation found a problem, 2 bad input (config,
/// arguments).
#[derive(Debug, Parser)]
#[command(
    name = "frankenetes",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// More log detail (-v, -vv); or set RUST_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a commented starter cluster.yaml.
    Init(InitArgs),
    /// Show what would be generated for a cluster spec: CAs, certificates, files per node.
    Plan(SpecArg),
    /// Generate the PKI, or load and complete what a directory already has.
    ///
    /// Existing files are loaded and checked: a CA is never replaced, a certificate whose SANs
    /// or subject no longer match the spec is reported (exit 1) and replaced only with
    /// --renew, and only what is missing is generated. Re-running changes no byte.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Pki(PkiCommand),
    /// Write every node's bundle: the PKI, static pods, kubeconfigs, kubelet config, systemd
    /// units, and one Ignition config per node.
    ///
    /// DIR/nodes/<name>/ is a root-filesystem overlay for that machine (copy it onto /), and
    /// DIR/nodes/<name>.ign holds the same content for Fedora CoreOS. Re-running is
    /// idempotent like `pki`: existing certificates are kept, unchanged files are not touched.
    Render(RenderArgs),
    /// Bring the cluster up (backend local: supervised processes on this machine), or converge
    /// it if it is partly up. Idempotent; Ctrl-C leaves a state that `up` resumes and `down`
    /// cleans.
    ///
    /// The etcd tier always comes up (etcd from PATH; Debian: etcd-server). The apiserver tier
    /// comes up when kube-apiserver, kube-controller-manager and kube-scheduler are found in
    /// --bin-dir or PATH; otherwise `up` says which are missing and exits 0 with etcd healthy.
    Up(UpArgs),
    /// Show each unit's state, PID and health.
    Status(ClusterArgs),
    /// Stop every process of the cluster (by PID) and report what was removed. Data, PKI and
    /// bundles stay in the cluster directory (remove it to forget the cluster).
    Down(DownArgs),
    /// Snapshot etcd, then stop every unit, keeping its data.
    Pause(ClusterArgs),
    /// Start every unit again, restoring the newest snapshot if a member's data is gone.
    Resume(ClusterArgs),
    /// Stream an etcd snapshot to FILE (atomically, with FILE.sha256).
    Snapshot(SnapshotArgs),
    /// Rebuild every etcd member from FILE (its checksum is verified first).
    Restore(SnapshotArgs),
    /// Bootstrap tokens for adding workers with stock `kubeadm join` (a running cluster).
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// The WireGuard VPN of `spec.gateway`.
    Vpn {
        #[command(subcommand)]
        cmd: VpnCmd,
    },
}

#[derive(Debug, Subcommand)]
enum VpnCmd {
    /// Peers (the operators' laptops).
    Peer {
        #[command(subcommand)]
        cmd: PeerCmd,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Make a bootstrap token and print the `kubeadm join` line for a new worker, with
    /// `--discovery-token-ca-cert-hash sha256:...` (the CA's public key, pinned).
    Create {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// How long the token is valid, e.g. 1h (0s: never expires; avoid it).
        #[arg(long, default_value = "24h", value_name = "DURATION")]
        ttl: GoDuration,
    },
    /// List the bootstrap tokens (ids, expiry, usages; never the secrets).
    List {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Delete a bootstrap token, by id or by the whole token. Exit 1 if there is none.
    Delete {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The token id (`abcdef`) or the token (`abcdef.0123456789abcdef`).
        token: String,
    },
}

#[derive(Debug, Subcommand)]
enum PeerCmd {
    /// Add a peer (or show an existing one): a stable tunnel address and a key pair, kept in
    /// DIR/cluster/vpn/state.json. Prints its wg-quick config (it holds the peer's private key),
    /// or writes it to DIR/cluster/vpn/NAME.conf (0600) with --write. Re-render the gateway
    /// afterwards (`frankenetes render`) so it knows the new peer.
    Add {
        /// The peer's name (a DNS-1123 label).
        name: String,
        /// The cluster spec.
        #[arg(
            short = 'f',
            long = "file",
            value_name = "cluster.yaml",
            default_value = "cluster.yaml"
        )]
        file: PathBuf,
        /// The render output directory that holds cluster/vpn/state.json.
        #[arg(short = 'o', long = "out", value_name = "DIR", default_value = "out")]
        out: PathBuf,
        /// Write the config to DIR/cluster/vpn/NAME.conf instead of printing it.
        #[arg(long)]
        write: bool,
    },
}

#[derive(Debug, Args)]
struct ClusterArgs {
    /// The cluster spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "cluster.yaml",
        default_value = "cluster.yaml"
    )]
    file: PathBuf,
    /// The cluster's working directory (PKI, bundles, etcd data, logs, state).
    /// Default: .frankenetes/<cluster name> next to the spec.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Where kube-apiserver, kube-controller-manager and kube-scheduler are (else PATH).
    #[arg(long, value_name = "DIR", env = "FRANKENETES_BIN_DIR")]
    bin_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// How long each health gate waits, e.g. 90s.
    #[arg(long, default_value = "90s", value_name = "DURATION")]
    timeout: GoDuration,
}

#[derive(Debug, Args)]
struct DownArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Also delete what holds the cluster's data outside its units: on azure, the file share
    /// with the etcd snapshots (kept by default, so a later `up` restores them).
    #[arg(long)]
    purge: bool,
}

#[derive(Debug, Args)]
struct SnapshotArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The snapshot file.
    file: PathBuf,
}

#[derive(Debug, Args)]
struct RenderArgs {
    /// The cluster spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "cluster.yaml",
        default_value = "cluster.yaml"
    )]
    file: PathBuf,
    /// Output directory.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Replace leaf certificates that no longer match the spec (CAs are never replaced).
    #[arg(long)]
    renew: bool,
}

#[derive(Debug, Args)]
struct SpecArg {
    /// The cluster spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "cluster.yaml",
        default_value = "cluster.yaml"
    )]
    file: PathBuf,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Number of control-plane nodes (odd: 1, 3, 5, 7).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    nodes: u8,
    /// Number of worker nodes.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=50))]
    workers: u8,
    /// Where the cluster runs.
    #[arg(long, default_value = "local", value_parser = ["local"])]
    backend: String,
    /// The cluster's name.
    #[arg(long, default_value = "kubelius")]
    name: String,
}

#[derive(Debug, Args)]
struct PkiCommand {
    #[command(subcommand)]
    sub: Option<PkiSub>,
    #[command(flatten)]
    generate: PkiGenerate,
}

#[derive(Debug, Args)]
struct PkiGenerate {
    /// The cluster spec.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "cluster.yaml",
        required = true
    )]
    file: Option<PathBuf>,
    /// Output directory (the layout of `render`: cluster/pki and nodes/<name>/...).
    #[arg(short = 'o', long = "out", value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// Replace leaf certificates that no longer match the spec (CAs are never replaced).
    #[arg(long)]
    renew: bool,
}

#[derive(Debug, Subcommand)]
enum PkiSub {
    /// Check every certificate and key in DIR: chain, signature, key match, SANs, expiry.
    ///
    /// Prints a table like `kubeadm certs check-expiration` and exits 1 on any problem. DIR
    /// may be an output directory of `frankenetes pki`/`render`, or a kubeadm
    /// /etc/kubernetes/pki.
    Check {
        /// The directory.
        dir: PathBuf,
        /// Also check DIR against this spec: every certificate present, SANs as derived.
        #[arg(short = 'f', long = "file", value_name = "cluster.yaml")]
        file: Option<PathBuf>,
        /// Also a problem: a certificate expiring within this long (e.g. 720h).
        #[arg(long, value_name = "DURATION")]
        within: Option<GoDuration>,
    },
    /// Re-sign leaf certificates in DIR with the CAs found there (new keys, same identities).
    Renew {
        /// The directory.
        dir: PathBuf,
        /// Certificates to renew: `control-01/apiserver`, or `apiserver` for every node.
        /// Default: every leaf certificate.
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
        /// The output directory of `frankenetes pki` or `render`.
        dir: PathBuf,
    },
}

/// How a command ended when it did not fail outright.
enum Outcome {
    Ok,
    Problems,
}

/// Errors the user must fix in what they gave us: exit code 2.
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for bad input (the spec, arguments), 1 for everything else.
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<BadInput>() {
            return 2;
        }
        if cause.is::<spec::Error>() {
            return 2;
        }
        if let Some(me) = cause.downcast_ref::<frankenetes_manifests::Error>() {
            use frankenetes_manifests::Error as M;
            if matches!(
                me,
                M::UnknownFlag { .. }
                    | M::UnsupportedVersion { .. }
                    | M::Invalid { .. }
                    | M::NoInventory { .. }
            ) {
                return 2;
            }
        }
        if let Some(frankenetes::bootstrap::dayone::Error::Invalid(_)) =
            cause.downcast_ref::<frankenetes::bootstrap::dayone::Error>()
        {
            return 2;
        }
        if let Some(pe) = cause.downcast_ref::<pki::Error>() {
            return match pe {
                pki::Error::UnknownName { .. }
                | pki::Error::NothingSelected { .. }
                | pki::Error::InvalidValidity { .. }
                | pki::Error::Unsupported(_)
                | pki::Error::Encryption { .. } => 2,
                _ => 1,
            };
        }
    }
    1
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Init(a) => {
            out!(
                "{}",
                init::starter(&a.name, a.nodes, a.workers, &a.backend).map_err(BadInput)?
            );
            Ok(Outcome::Ok)
        }
        Command::Plan(a) => plan(&a.file),
        Command::Token { cmd } => token(cmd),
        Command::Render(a) => render(&a.file, &a.out, a.renew),
        Command::Vpn {
            cmd:
                VpnCmd::Peer {
                    cmd:
                        PeerCmd::Add {
                            name,
                            file,
                            out,
                            write,
                        },
                },
        } => vpn_peer_add(&name, &file, &out, write),
        Command::Up(a) => cluster_cmd(&a.cluster, Some(a.timeout), Op::Up),
        Command::Status(a) => cluster_cmd(&a, None, Op::Status),
        Command::Down(a) => cluster_cmd(&a.cluster, None, Op::Down { purge: a.purge }),
        Command::Pause(a) => cluster_cmd(&a, None, Op::Pause),
        Command::Resume(a) => cluster_cmd(&a, None, Op::Resume),
        Command::Snapshot(a) => cluster_cmd(&a.cluster, None, Op::Snapshot(a.file)),
        Command::Restore(a) => cluster_cmd(&a.cluster, None, Op::Restore(a.file)),
        Command::Pki(PkiCommand {
            sub: Some(PkiSub::Check { dir, file, within }),
            ..
        }) => check(&dir, file.as_deref(), within),
        Command::Pki(PkiCommand {
            sub:
                Some(PkiSub::Renew {
                    dir,
                    names,
                    validity,
                }),
            ..
        }) => renew(&dir, names, validity),
        Command::Pki(PkiCommand {
            sub: Some(PkiSub::RotateEncryption { dir }),
            ..
        }) => rotate_encryption(&dir),
        Command::Pki(PkiCommand {
            sub: None,
            generate,
        }) => {
            let (Some(file), Some(out)) = (generate.file, generate.out) else {
                return Err(BadInput(
                    "pki needs -f cluster.yaml and -o DIR (or a subcommand: check, renew)".into(),
                )
                .into());
            };
            generate_pki(&file, &out, generate.renew)
        }
    }
}

fn load_spec(file: &Path) -> anyhow::Result<ClusterSpec> {
    let parsed = ClusterSpec::load(file)?;
    for w in &parsed.warnings {
        eprintln!("warning: {}: {w}", file.display());
    }
    Ok(parsed.spec)
}

fn generate_pki(file: &Path, out: &Path, renew: bool) -> anyhow::Result<Outcome> {
    let spec = load_spec(file)?;
    let (_, outcome) = sync_pki(&spec, out, renew)?;
    Ok(outcome)
}

/// Loads and completes the PKI in `out`, printing what happened.
fn sync_pki(spec: &ClusterSpec, out: &Path, renew: bool) -> anyhow::Result<(pki::Pki, Outcome)> {
    let plan = PkiPlan::from(spec);
    if out.exists() && !out.is_dir() {
        return Err(BadInput(format!("{} exists and is not a directory", out.display())).into());
    }
    let started = Instant::now();
    if plan.key_algorithm.is_rsa() && std::io::stderr().is_terminal() {
        eprintln!(
            "generating {} keys on {} cores…",
            plan.key_algorithm.as_str(),
            std::thread::available_parallelism().map_or(1, usize::from)
        );
    }
    let (pki, report) = pki::sync(&plan, out, SyncOptions::default().renew(renew))
        .with_context(|| format!("cannot complete the PKI in {}", out.display()))?;
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
    if report.stale.is_empty() {
        return Ok((pki, Outcome::Ok));
    }
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
    Ok((pki, Outcome::Problems))
}

fn render(file: &Path, out: &Path, renew: bool) -> anyhow::Result<Outcome> {
    let spec = load_spec(file)?;
    // Check everything that can be checked before anything is written.
    frankenetes_manifests::check(&spec).with_context(|| format!("{}", file.display()))?;
    let (pki, outcome) = sync_pki(&spec, out, renew)?;
    let started = Instant::now();
    let rendered = frankenetes_manifests::render(&spec, &pki)
        .with_context(|| format!("{}", file.display()))?;
    let report = rendered
        .write(out)
        .with_context(|| format!("cannot write the bundles in {}", out.display()))?;
    outln!(
        "{}: {} node bundles (etcd flags for {}), {} files written, {} unchanged in {:.0?}",
        out.display(),
        rendered.nodes.len(),
        rendered.etcd_version,
        report.written.len(),
        report.unchanged,
        started.elapsed()
    );
    for n in &rendered.nodes {
        outln!(
            "  nodes/{0}/  nodes/{0}.ign  ({1} files, {2} units)",
            n.name,
            n.files.len(),
            n.units.len()
        );
    }
    outln!("  cluster/admin.conf, cluster/super-admin.conf");
    if let Some(gw) = &spec.gateway {
        let g = frankenetes::netgw::render(out, gw, &frankenetes::netgw::GatewayOptions::default())
            .with_context(|| format!("{}: spec.gateway", file.display()))?;
        outln!(
            "  nodes/{}/ (NAT + WireGuard gateway: {} files), cluster/vpn/ ({} peer configs)",
            gw.name,
            g.bundle.files.len(),
            g.clients.len()
        );
    }
    Ok(outcome)
}

fn vpn_peer_add(name: &str, file: &Path, out: &Path, write: bool) -> anyhow::Result<Outcome> {
    use frankenetes::netgw::VpnState;
    let spec = load_spec(file)?;
    spec::NodeName::try_from(name).map_err(|e| BadInput(format!("peer name: {e}")))?;
    let gw = frankenetes::netgw::gateway_of(&spec)
        .map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
    let mut state = VpnState::load_or_init(out, gw)?;
    let client = state.add_peer(gw, name)?;
    state.save(out)?;
    if write {
        client.write(out)?;
        outln!("{}", client.path(out).display());
    } else {
        out!("{}", &*client.wg_quick());
    }
    eprintln!(
        "re-render the gateway (`frankenetes render -f {} -o {}`) so it accepts {name}",
        file.display(),
        out.display()
    );
    Ok(Outcome::Ok)
}

fn check(dir: &Path, file: Option<&Path>, within: Option<GoDuration>) -> anyhow::Result<Outcome> {
    if !dir.is_dir() {
        return Err(BadInput(format!("{} is not a directory", dir.display())).into());
    }
    let plan = file.map(load_spec).transpose()?.map(|s| PkiPlan::from(&s));
    let opts = CheckOptions::default()
        .within(within.map(GoDuration::get))
        .plan(plan);
    let report = pki::check(dir, &opts)?;
    if report.rows.is_empty() {
        eprintln!("{}: no certificates found", dir.display());
        return Ok(Outcome::Problems);
    }
    out!("{}", report.table());
    if report.is_ok() {
        Ok(Outcome::Ok)
    } else {
        eprintln!(
            "{} of {} certificates have problems",
            report.problem_count(),
            report.rows.len()
        );
        Ok(Outcome::Problems)
    }
}

fn renew(dir: &Path, names: Vec<String>, validity: Option<GoDuration>) -> anyhow::Result<Outcome> {
    if !dir.is_dir() {
        return Err(BadInput(format!("{} is not a directory", dir.display())).into());
    }
    let report = pki::renew(
        dir,
        &RenewOptions::default()
            .selection(pki::RenewSelection::from_args(names))
            .validity(validity.map(GoDuration::get)),
    )?;
    for n in &report.renewed {
        outln!("renewed {n}");
    }
    for k in &report.kubeconfigs {
        outln!("refreshed {}", k.display());
    }
    outln!(
        "{} certificate(s) renewed; restart the components that use them",
        report.renewed.len()
    );
    if !report.is_ok() {
        for p in report.check.problems() {
            eprintln!("problem: {p}");
        }
        return Ok(Outcome::Problems);
    }
    Ok(Outcome::Ok)
}

fn cluster_dir(a: &ClusterArgs, spec: &ClusterSpec) -> anyhow::Result<PathBuf> {
    let dir = a.dir.clone().unwrap_or_else(|| {
        a.file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(".frankenetes")
            .join(spec.name.as_str())
    });
    // Processes outlive this command: give them absolute paths.
    std::path::absolute(&dir).with_context(|| format!("{}", dir.display()))
}

fn token(cmd: TokenCmd) -> anyhow::Result<Outcome> {
    use frankenetes::bootstrap::dayone;
    let a = match &cmd {
        TokenCmd::Create { cluster, .. }
        | TokenCmd::List { cluster }
        | TokenCmd::Delete { cluster, .. } => cluster,
    };
    let spec = load_spec(&a.file)?;
    let bundle = cluster_dir(a, &spec)?.join("bundle");
    let admin_conf = bundle.join("cluster/admin.conf");
    if !admin_conf.is_file() {
        return Err(BadInput(format!(
            "{} does not exist: run `frankenetes up -f {}` first (or pass --dir)",
            admin_conf.display(),
            a.file.display()
        ))
        .into());
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        let admin = dayone::client(&admin_conf, None).await?;
        match cmd {
            TokenCmd::Create { ttl, .. } => {
                let ttl = (!ttl.get().is_zero()).then(|| ttl.get());
                let t =
                    dayone::create_token(&admin, ttl, "made by frankenetes token create").await?;
                let ca = bundle.join("cluster/pki/ca.crt");
                let ca_pem =
                    std::fs::read_to_string(&ca).with_context(|| format!("{}", ca.display()))?;
                let join = dayone::join_command(&spec, &ca_pem, &t)?;
                outln!("{}", join.as_str());
                Ok(Outcome::Ok)
            }
            TokenCmd::List { .. } => {
                for t in dayone::list_tokens(&admin).await? {
                    outln!("{t}");
                }
                Ok(Outcome::Ok)
            }
            TokenCmd::Delete { token, .. } => {
                if dayone::delete_token(&admin, &token).await? {
                    outln!("deleted");
                    Ok(Outcome::Ok)
                } else {
                    eprintln!("no such bootstrap token");
                    Ok(Outcome::Problems)
                }
            }
        }
    })
}

fn rotate_encryption(dir: &Path) -> anyhow::Result<Outcome> {
    if !dir.is_dir() {
        return Err(BadInput(format!("{} is not a directory", dir.display())).into());
    }
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

fn plan(file: &Path) -> anyhow::Result<Outcome> {
    let spec = load_spec(file)?;
    let plan = PkiPlan::from(&spec);
    outln!(
        "cluster {} (Kubernetes {}), endpoint {}",
        spec.name,
        spec.kubernetes_version,
        spec.control_plane_url()
    );
    outln!(
        "PKI: {} CA mode, {} keys",
        match plan.ca_mode {
            spec::CaMode::Intermediate => "intermediate",
            _ => "kubeadm",
        },
        plan.key_algorithm.as_str()
    );
    for ca in plan.cas() {
        let parent = ca.parent.map_or("self-signed".to_owned(), |p| {
            format!("signed by {}", p.name())
        });
        outln!(
            "  CA {:<16} CN={:<24} {parent}",
            ca.id.name(),
            ca.common_name
        );
    }
    for leaf in &plan.leaves {
        let sans = if leaf.sans.is_empty() {
            String::new()
        } else {
            format!(
                " SANs: {}",
                leaf.sans
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let org = if leaf.organizations.is_empty() {
            String::new()
        } else {
            format!(" O={}", leaf.organizations.join(","))
        };
        outln!("  {:<40} CN={}{org}{sans}", leaf.name(), leaf.common_name);
    }
    // The same rendering `render` does, with throwaway ECDSA keys: only paths are shown.
    let sample =
        pki::Pki::generate(&PkiPlan::from(&spec).with_algorithm(spec::KeyAlgorithm::EcdsaP256))?;
    let rendered = frankenetes_manifests::render(&spec, &sample)
        .with_context(|| format!("{}", file.display()))?;
    outln!("etcd flags rendered for etcd {}", rendered.etcd_version);
    // Relaxations of the hardened defaults are warnings (stderr); the rest is information.
    for note in frankenetes_manifests::security::plan_notes(&spec) {
        match note.strip_prefix("relaxed: ") {
            Some(r) => eprintln!("warning: {}: relaxed: {r}", file.display()),
            None => outln!("security: {note}"),
        }
    }
    outln!("operator: cluster/pki/, cluster/admin.conf, cluster/super-admin.conf");
    for (node, role) in spec.nodes() {
        let role = match role {
            spec::Role::ControlPlane => "control plane",
            spec::Role::Worker => "worker",
        };
        outln!(
            "node {} ({}, {role}): nodes/{}/ and nodes/{}.ign",
            node.name,
            node.ip,
            node.name,
            node.name
        );
        if let Some(b) = rendered.node(node.name.as_str()) {
            for p in b.paths() {
                outln!("    {p}");
            }
        }
    }
    match &spec.backend {
        #[cfg(feature = "azure")]
        spec::BackendSpec::Azure(_) => {
            use frankenetes::bootstrap::aci;
            let p = aci::plan(&spec, &aci::AciOptions::default())?;
            outln!("azure: what `up` creates (no call is made now)");
            out!("{}", p.table());
        }
        #[cfg(feature = "aws")]
        spec::BackendSpec::Aws(_) => {
            let payloads = cloud::aws::sample_payloads(&spec, &rendered)?;
            let lab = frankenetes::cloud_aws::Lab::offline(&spec, payloads)?;
            outln!("aws: what `up` creates (no call is made now; `status` shows what exists)");
            out!("{}", lab.desired_plan());
        }
        spec::BackendSpec::Local(_) => {}
        #[allow(unreachable_patterns)]
        other => outln!(
            "{}: this build cannot plan spec.backend.{} (build with --features {})",
            file.display(),
            other.kind(),
            other.kind()
        ),
    }
    Ok(Outcome::Ok)
}

enum Op {
    Up,
    Status,
    Down { purge: bool },
    Pause,
    Resume,
    Snapshot(PathBuf),
    Restore(PathBuf),
}

/// Progress of a long operation: a spinner on a terminal, plain lines otherwise (CI, pipes).
fn progress() -> impl Fn(&frankenetes::bootstrap::Event) + Send + Sync + 'static {
    use frankenetes::bootstrap::Event;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    move |e: &Event| {
        let line = match e {
            Event::Started(p) => {
                if let Some(pb) = &bar {
                    pb.set_message(format!("{p}…"));
                    return;
                }
                format!("==> {p}")
            }
            Event::Done(p, d) => format!("✓ {p} ({d:.1?})"),
            Event::Waiting(p, what) => {
                if let Some(pb) = &bar {
                    pb.set_message(format!("{p}: {what}"));
                    return;
                }
                format!("    {p}: waiting: {what}")
            }
            Event::Warning(w) => format!("warning: {w}"),
            Event::Info(i) => format!("    {i}"),
            other => format!("    {other:?}"),
        };
        match &bar {
            Some(pb) => pb.println(line),
            None => eprintln!("{line}"),
        }
    }
}

fn cluster_cmd(a: &ClusterArgs, timeout: Option<GoDuration>, op: Op) -> anyhow::Result<Outcome> {
    use frankenetes::bootstrap::{Cluster, LocalBackend, Options};
    let spec = load_spec(&a.file)?;
    let dir = cluster_dir(a, &spec)?;
    match &spec.backend {
        spec::BackendSpec::Local(_) => {}
        #[cfg(feature = "azure")]
        spec::BackendSpec::Azure(_) => return cloud::azure::run(spec, &dir, op),
        #[cfg(feature = "aws")]
        spec::BackendSpec::Aws(_) => return cloud::aws::run(spec, &dir, op),
        #[allow(unreachable_patterns)]
        other => {
            return Err(BadInput(format!(
                "{}: spec.backend.{} is not in this build of frankenetes; build it with \
                 `cargo install frankenetes --features {}` (or `cargo run -p frankenetes --features {}`)",
                a.file.display(),
                other.kind(),
                other.kind(),
                other.kind()
            ))
            .into());
        }
    }
    let mut opts = Options::new(&dir)
        .bin_dir(a.bin_dir.clone())
        .on_event(progress());
    if let Some(t) = timeout {
        opts = opts.gate_timeout(t.get());
    }
    let cluster = Cluster::new(spec, LocalBackend::new(dir.join("run")), opts);
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        match op {
            Op::Up => {
                // Registered before any work starts, so an early Ctrl-C is caught too.
                let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("cannot catch SIGINT")?;
                let report = tokio::select! {
                    r = cluster.up() => r?,
                    _ = interrupt.recv() => {
                        eprintln!("interrupted: what started keeps running; `frankenetes up` resumes, `frankenetes down` cleans up");
                        return Ok(Outcome::Problems);
                    }
                };
                outln!("{}", cluster.status().await?.table().trim_end());
                outln!("admin kubeconfig: {}", report.admin_kubeconfig.display());
                outln!("cluster directory: {} (logs under run/units/*/)", dir.display());
                Ok(Outcome::Ok)
            }
            Op::Status => {
                let s = cluster.status().await?;
                out!("{}", s.table());
                Ok(if s.components.is_empty() || s.etcd_healthy { Outcome::Ok } else { Outcome::Problems })
            }
            Op::Down { purge } => {
                if purge {
                    eprintln!("--purge: the local backend keeps no data outside the cluster directory");
                }
                let removed = cluster.down().await?;
                if removed.is_empty() {
                    outln!("nothing was running");
                }
                for r in &removed {
                    outln!("stopped and removed {r}");
                }
                outln!("data, PKI and bundles kept in {}", dir.display());
                Ok(Outcome::Ok)
            }
            Op::Pause => {
                let f = cluster.pause().await?;
                outln!("snapshot {} taken; every unit stopped (data kept)", f.display());
                Ok(Outcome::Ok)
            }
            Op::Resume => {
                cluster.resume().await?;
                out!("{}", cluster.status().await?.table());
                Ok(Outcome::Ok)
            }
            Op::Snapshot(f) => {
                let sum = cluster.snapshot(&f).await?;
                outln!("{} (sha256 {sum})", f.display());
                Ok(Outcome::Ok)
            }
            Op::Restore(f) => {
                cluster.restore(&f).await?;
                outln!("restored every member from {}", f.display());
                Ok(Outcome::Ok)
            }
        }
    })
}
