//! `frankenetes vpn`: the peers of `spec.gateway`'s WireGuard VPN, kept with the cluster's
//! bundle (`<cluster dir>/bundle/cluster/vpn/`) where `render` and `up` find them.

use std::path::PathBuf;

use clap::Subcommand;
use frankenetes::netgw::VpnState;

use super::args::SpecArgs;
use super::fail::{CliError, CmdResult, Outcome, ResultExt as _};
use super::out::{out, outln};

#[derive(Debug, Subcommand)]
pub(crate) enum VpnCmd {
    /// Peers (the operators' laptops).
    Peer {
        #[command(subcommand)]
        cmd: PeerCmd,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PeerCmd {
    /// Add a peer (or show an existing one): a stable tunnel address and a key pair, kept in
    /// cluster/vpn/state.json of the cluster's bundle. Prints its wg-quick config (it holds the
    /// peer's private key), or writes it to cluster/vpn/NAME.conf (0600) with --write. Render
    /// the gateway again afterwards (`frankenetes render`, or `up`) so it knows the new peer.
    Add {
        /// The peer's name (a DNS-1123 label).
        name: String,
        #[command(flatten)]
        spec: SpecArgs,
        /// The output directory that holds cluster/vpn/state.json. Default: the cluster
        /// directory's bundle/.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write the config to cluster/vpn/NAME.conf instead of printing it.
        #[arg(long)]
        write: bool,
    },
}

/// `frankenetes vpn …`.
pub(crate) fn run(cmd: VpnCmd) -> CmdResult {
    let VpnCmd::Peer {
        cmd:
            PeerCmd::Add {
                name,
                spec,
                out: out_dir,
                write,
            },
    } = cmd;
    let l = spec.load()?;
    frankenetes::spec::NodeName::try_from(name.as_str())
        .map_err(|e| CliError::bad_input(format!("peer name: {e}")))?;
    let gw = frankenetes::netgw::gateway_of(&l.spec).ctx(spec.file.display().to_string())?;
    let dir = out_dir.unwrap_or_else(|| l.bundle());
    let _lock = frankenetes::bundle::lock::DirLock::acquire(&dir, "vpn peer add", None)?;
    let mut state = VpnState::load_or_init(&dir, gw)?;
    let client = state.add_peer(gw, &name)?;
    state.save(&dir)?;
    if write {
        client.write(&dir)?;
        outln!("{}", client.path(&dir).display());
    } else {
        out!("{}", &*client.wg_quick());
    }
    eprintln!(
        "render the gateway again (`frankenetes render -f {}`, or `frankenetes up`) so that it accepts {name}",
        spec.file.display()
    );
    Ok(Outcome::Ok)
}
