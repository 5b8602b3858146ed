//! The gateway's node bundle: every file and systemd unit the NAT/VPN machine gets, as plain
//! data, and a writer that lays it out as a root-filesystem overlay.
//!
//! | path on the machine | mode | what |
//! | --- | --- | --- |
//! | `/etc/wireguard/<iface>.conf` | 0600 | the `wg-quick` configuration (`wg-quick@<iface>.service` reads it) |
//! | `/etc/wireguard/<iface>.setconf` | 0600 | the same for `wg setconf <iface> <file>` (no `Address`) |
//! | `/etc/sysctl.d/90-frankenetes-gateway.conf` | 0644 | IPv4 (and IPv6) forwarding |
//! | `/etc/frankenetes/gateway.nft` | 0644 | the nftables ruleset ([`Firewall::Nftables`], the default) |
//! | `/etc/frankenetes/gateway.iptables`, `.ip6tables` | 0644 | the `iptables-restore` rulesets ([`Firewall::Iptables`]) |
//!
//! Units: `frankenetes-gateway-firewall.service` (oneshot, `RemainAfterExit`, before
//! `network-pre.target`, wanted by `sysinit.target`) applies the firewall at boot, and
//! `wg-quick@<iface>.service` (shipped by wireguard-tools) is enabled.
//!
//! SSH: the keys of [`GatewayOptions::ssh_authorized_keys`] (`spec.ssh.authorizedKeys`, with
//! [`GatewayOptions::for_cluster`]) may log in as `core`: they go into the Ignition config's
//! `passwd`, which Ignition writes to `/var/home/core/.ssh/authorized_keys.d/ignition`.

use frankenetes_bundle::fs::{PUBLIC_MODE, SECRET_MODE};
use frankenetes_bundle::systemd::Unit;
use frankenetes_bundle::{NodeBundle, NodeFile};
use frankenetes_spec::{ClusterSpec, GatewaySpec, SshPublicKey};

use crate::Error;
use crate::nat::{Family, FirewallPlan, NFT_TABLE};
use crate::state::VpnState;
use crate::wg::WgFormat;

/// The sysctl drop-in's path.
pub const SYSCTL_PATH: &str = "/etc/sysctl.d/90-frankenetes-gateway.conf";
/// The nftables ruleset's path.
pub const NFT_PATH: &str = "/etc/frankenetes/gateway.nft";
/// The IPv4 `iptables-restore` file's path.
pub const IPTABLES_PATH: &str = "/etc/frankenetes/gateway.iptables";
/// The IPv6 `ip6tables-restore` file's path.
pub const IP6TABLES_PATH: &str = "/etc/frankenetes/gateway.ip6tables";
/// The unit that applies the firewall at boot.
pub const FIREWALL_UNIT: &str = "frankenetes-gateway-firewall.service";
pub use frankenetes_bundle::systemd::VENDOR_UNIT_DIR;

/// Which firewall tool the gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Firewall {
    /// nftables: one table, `inet frankenetes_gw`, replaced atomically. The default.
    #[default]
    Nftables,
    /// `iptables-restore` and `ip6tables-restore`, for hosts without nftables. Replaces the
    /// whole `filter` and `nat` tables.
    Iptables,
}

/// Choices that are not in the cluster spec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayOptions {
    /// The firewall tool (nftables by default).
    pub firewall: Firewall,
    /// SSH's TCP port, left open on the gateway (22); `None` closes it.
    pub ssh_port: Option<u16>,
    /// OpenSSH public keys that may log in as `core` (through the Ignition config's
    /// `passwd`); none by default. [`GatewayOptions::for_cluster`] takes
    /// `spec.ssh.authorizedKeys`.
    pub ssh_authorized_keys: Vec<SshPublicKey>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            firewall: Firewall::Nftables,
            ssh_port: Some(22),
            ssh_authorized_keys: Vec::new(),
        }
    }
}

impl GatewayOptions {
    /// The defaults, with the cluster's SSH keys (`spec.ssh.authorizedKeys`) for `core`: what
    /// `render` and `up` use.
    pub fn for_cluster(spec: &ClusterSpec) -> Self {
        Self::default().ssh_authorized_keys(spec.ssh.authorized_keys.clone())
    }

    /// The same with these SSH keys for `core`.
    #[must_use]
    pub fn ssh_authorized_keys(mut self, keys: Vec<SshPublicKey>) -> Self {
        self.ssh_authorized_keys = keys;
        self
    }

    /// The same with another firewall tool.
    #[must_use]
    pub fn firewall(mut self, firewall: Firewall) -> Self {
        self.firewall = firewall;
        self
    }

    /// The same with another SSH port (`None`: closed).
    #[must_use]
    pub fn ssh_port(mut self, port: Option<u16>) -> Self {
        self.ssh_port = port;
        self
    }
}

/// The gateway machine's bundle: plain data, written as an overlay
/// ([`NodeBundle::write`]) or turned into its Ignition config ([`NodeBundle::to_ignition`]).
pub type GatewayBundle = NodeBundle;

/// Renders the gateway's files and units from its spec and the VPN state.
pub fn gateway_bundle(
    spec: &GatewaySpec,
    state: &VpnState,
    options: &GatewayOptions,
) -> Result<GatewayBundle, Error> {
    {
        let iface = &spec.tunnel.interface;
        let server = state.server_config(spec)?;
        let mut plan = FirewallPlan::new(spec);
        plan.ssh_port = options.ssh_port;

        let mut files = vec![
            NodeFile::new(
                format!("/etc/wireguard/{iface}.conf"),
                server.render(WgFormat::WgQuick).as_bytes(),
                SECRET_MODE,
            ),
            NodeFile::new(
                format!("/etc/wireguard/{iface}.setconf"),
                server.render(WgFormat::SetConf).as_bytes(),
                SECRET_MODE,
            ),
            NodeFile::new(SYSCTL_PATH, plan.sysctl().to_string(), PUBLIC_MODE),
        ];
        let (start, stop, what) = match options.firewall {
            Firewall::Nftables => {
                files.push(NodeFile::new(
                    NFT_PATH,
                    plan.nftables().to_string(),
                    PUBLIC_MODE,
                ));
                (
                    vec![format!("/usr/sbin/nft -f {NFT_PATH}")],
                    Some(format!("/usr/sbin/nft delete table inet {NFT_TABLE}")),
                    format!("nftables table inet {NFT_TABLE}"),
                )
            }
            Firewall::Iptables => {
                files.push(NodeFile::new(
                    IPTABLES_PATH,
                    plan.iptables(Family::Ipv4).to_string(),
                    PUBLIC_MODE,
                ));
                files.push(NodeFile::new(
                    IP6TABLES_PATH,
                    plan.iptables(Family::Ipv6).to_string(),
                    PUBLIC_MODE,
                ));
                (
                    vec![
                        format!("/usr/sbin/iptables-restore {IPTABLES_PATH}"),
                        format!("/usr/sbin/ip6tables-restore {IP6TABLES_PATH}"),
                    ],
                    None,
                    "iptables filter and nat tables".to_owned(),
                )
            }
        };
        let mut firewall = Unit::new(FIREWALL_UNIT, true)
            .set(
                "Unit",
                "Description",
                format!(
                    "frankenetes gateway {}: firewall and NAT ({what})",
                    spec.name.as_str()
                ),
            )
            .set(
                "Unit",
                "Documentation",
                "https://github.com/frankenetes/frankenetes",
            )
            // Like nftables.service: up before any network is, down at shutdown.
            .set("Unit", "DefaultDependencies", "no")
            .set("Unit", "Wants", "network-pre.target")
            .set("Unit", "After", "systemd-sysctl.service")
            .set("Unit", "Before", "network-pre.target shutdown.target")
            .set("Unit", "Conflicts", "shutdown.target")
            .set("Service", "Type", "oneshot")
            .set("Service", "RemainAfterExit", "yes");
        for c in &start {
            firewall = firewall.set("Service", "ExecStart", c.clone());
        }
        for c in &start {
            firewall = firewall.set("Service", "ExecReload", c.clone());
        }
        if let Some(stop) = stop {
            firewall = firewall.set("Service", "ExecStop", stop);
        }
        let firewall = firewall.set("Install", "WantedBy", "sysinit.target");
        let units = vec![
            firewall,
            Unit::shipped(format!("wg-quick@{iface}.service"), "multi-user.target"),
        ];
        let mut bundle = NodeBundle::new(spec.name.as_str());
        bundle.files = files;
        bundle.units = units;
        bundle.ssh_authorized_keys = options
            .ssh_authorized_keys
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(bundle)
    }
}
