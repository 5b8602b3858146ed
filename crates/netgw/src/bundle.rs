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

use std::fmt;
use std::path::{Path, PathBuf};

use frankenetes_spec::GatewaySpec;
use zeroize::Zeroizing;

use crate::Error;
use crate::fsutil::{PUBLIC_MODE, SECRET_MODE, write_if_changed};
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
/// Where systemd packages install their units (`/lib` is a link to `/usr/lib` on merged-/usr
/// systems: Debian 12, Fedora).
pub const VENDOR_UNIT_DIR: &str = "/usr/lib/systemd/system";

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
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            firewall: Firewall::Nftables,
            ssh_port: Some(22),
        }
    }
}

impl GatewayOptions {
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

/// One file of the gateway, at its absolute path on the machine.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeFile {
    /// Absolute path on the machine (`/etc/wireguard/wg0.conf`).
    pub path: String,
    /// Contents (text), zeroized when dropped: some files hold private keys.
    pub contents: Zeroizing<String>,
    /// File mode: 0600 for files with keys, 0644 for the rest.
    pub mode: u32,
}

impl NodeFile {
    /// A file.
    pub fn new(path: impl Into<String>, contents: impl Into<String>, mode: u32) -> Self {
        Self {
            path: path.into(),
            contents: Zeroizing::new(contents.into()),
            mode,
        }
    }

    /// Whether only its owner may read it (it holds a key).
    pub fn is_secret(&self) -> bool {
        self.mode & 0o077 == 0
    }
}

impl fmt::Debug for NodeFile {
    /// Path, mode and length: never the contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("len", &self.contents.len())
            .finish()
    }
}

/// A systemd unit of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unit {
    /// The unit's name (`frankenetes-gateway-firewall.service`, `wg-quick@wg0.service`).
    pub name: String,
    /// The unit file, written to `/etc/systemd/system/<name>`; `None` for a unit an OS
    /// package ships (like `wg-quick@.service`), which is only enabled.
    pub contents: Option<String>,
    /// Whether it starts at boot.
    pub enabled: bool,
    /// The target whose `.wants/` directory enabling links it into (its `WantedBy=`).
    pub wanted_by: String,
}

impl Unit {
    /// What the `.wants/` link of an enabled unit points at: `/etc/systemd/system/<name>` for a
    /// unit with contents, else the package's unit (the template for `name@instance`).
    pub fn link_target(&self) -> String {
        if self.contents.is_some() {
            return format!("/etc/systemd/system/{}", self.name);
        }
        let file = match (self.name.split_once('@'), self.name.rsplit_once('.')) {
            (Some((prefix, _)), Some((_, suffix))) => format!("{prefix}@.{suffix}"),
            _ => self.name.clone(),
        };
        format!("{VENDOR_UNIT_DIR}/{file}")
    }
}

/// A unit file as sections of `key=value` lines.
struct UnitFile(Vec<(&'static str, Vec<(&'static str, String)>)>);

impl fmt::Display for UnitFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (section, entries)) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "[{section}]")?;
            for (k, v) in entries {
                writeln!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// Everything the gateway machine gets: plain data, to be written as an overlay
/// ([`GatewayBundle::write`]) or converted into another bundle or Ignition type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayBundle {
    /// The gateway's node name (`spec.gateway.name`).
    pub name: String,
    /// Files, by absolute path on the machine.
    pub files: Vec<NodeFile>,
    /// systemd units.
    pub units: Vec<Unit>,
}

/// What [`GatewayBundle::write`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteReport {
    /// Files and links written (new or changed), relative to the output directory.
    pub written: Vec<PathBuf>,
    /// Files and links already right.
    pub unchanged: usize,
    /// Files removed (client configurations of removed peers), relative to the output
    /// directory.
    pub removed: Vec<PathBuf>,
}

impl GatewayBundle {
    /// Renders the gateway's files and units from its spec and the VPN state.
    pub fn render(
        spec: &GatewaySpec,
        state: &VpnState,
        options: &GatewayOptions,
    ) -> Result<Self, Error> {
        let iface = &spec.tunnel.interface;
        let server = state.server_config(spec)?;
        let mut plan = FirewallPlan::new(spec);
        plan.ssh_port = options.ssh_port;

        let mut files = vec![
            NodeFile {
                path: format!("/etc/wireguard/{iface}.conf"),
                contents: server.render(WgFormat::WgQuick),
                mode: SECRET_MODE,
            },
            NodeFile {
                path: format!("/etc/wireguard/{iface}.setconf"),
                contents: server.render(WgFormat::SetConf),
                mode: SECRET_MODE,
            },
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
        let mut service = vec![
            ("Type", "oneshot".to_owned()),
            ("RemainAfterExit", "yes".to_owned()),
        ];
        service.extend(start.iter().map(|c| ("ExecStart", c.clone())));
        service.extend(start.iter().map(|c| ("ExecReload", c.clone())));
        if let Some(stop) = stop {
            service.push(("ExecStop", stop));
        }
        let firewall = UnitFile(vec![
            (
                "Unit",
                vec![
                    (
                        "Description",
                        format!(
                            "frankenetes gateway {}: firewall and NAT ({what})",
                            spec.name.as_str()
                        ),
                    ),
                    (
                        "Documentation",
                        "https://github.com/frankenetes/frankenetes".into(),
                    ),
                    // Like nftables.service: up before any network is, down at shutdown.
                    ("DefaultDependencies", "no".into()),
                    ("Wants", "network-pre.target".into()),
                    ("After", "systemd-sysctl.service".into()),
                    ("Before", "network-pre.target shutdown.target".into()),
                    ("Conflicts", "shutdown.target".into()),
                ],
            ),
            ("Service", service),
            ("Install", vec![("WantedBy", "sysinit.target".into())]),
        ]);
        let units = vec![
            Unit {
                name: FIREWALL_UNIT.into(),
                contents: Some(firewall.to_string()),
                enabled: true,
                wanted_by: "sysinit.target".into(),
            },
            Unit {
                name: format!("wg-quick@{iface}.service"),
                contents: None,
                enabled: true,
                wanted_by: "multi-user.target".into(),
            },
        ];
        Ok(Self {
            name: spec.name.as_str().to_owned(),
            files,
            units,
        })
    }

    /// A file by absolute path.
    pub fn file(&self, path: &str) -> Option<&NodeFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// A unit by name.
    pub fn unit(&self, name: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.name == name)
    }

    /// The overlay's root: `<out>/nodes/<name>`.
    pub fn root(&self, out: &Path) -> PathBuf {
        out.join("nodes").join(&self.name)
    }

    /// The bundle as one Ignition v3 config for Fedora CoreOS (with `/etc/hostname`), the same
    /// shape as every other node's `.ign`. It holds the gateway's private key.
    pub fn to_ignition(&self) -> String {
        use frankenetes_compute::ignition::{IgnitionFile, IgnitionUnit, build};
        let hostname = format!("{}\n", self.name);
        let has_hostname = self.files.iter().any(|f| f.path == "/etc/hostname");
        let hostname_file = (!has_hostname).then_some(IgnitionFile {
            path: "/etc/hostname",
            mode: 0o644,
            contents: hostname.as_bytes(),
        });
        build(
            self.files
                .iter()
                .map(|f| IgnitionFile {
                    path: &f.path,
                    mode: f.mode,
                    contents: f.contents.as_bytes(),
                })
                .chain(hostname_file),
            self.units.iter().map(|u| IgnitionUnit {
                name: &u.name,
                enabled: u.enabled,
                contents: u.contents.clone(),
            }),
        )
    }

    /// Writes the bundle as a root-filesystem overlay under `<out>/nodes/<name>/`: each file
    /// at its path (atomically, with its mode, only when changed), units with contents in
    /// `etc/systemd/system/`, and for each enabled unit the symlink
    /// `etc/systemd/system/<wanted_by>.wants/<name>` → [`Unit::link_target`] that
    /// `systemctl enable` would make. Copy the overlay onto `/` of the machine (`cp -a`, or
    /// `rsync -a`, keeping links and modes) and run `systemctl daemon-reload`, `sysctl --system`
    /// and `systemctl start frankenetes-gateway-firewall wg-quick@<iface>`, or reboot.
    /// Files of an earlier rendering that this one no longer has are left in place.
    pub fn write(&self, out: &Path) -> Result<WriteReport, Error> {
        let root = self.root(out);
        let mut report = WriteReport::default();
        let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).to_owned();
        let mut put = |path: PathBuf, contents: &[u8], mode: u32| -> Result<(), Error> {
            if write_if_changed(&path, contents, mode)? {
                report.written.push(rel(&path));
            } else {
                report.unchanged += 1;
            }
            Ok(())
        };
        for f in &self.files {
            put(
                root.join(f.path.trim_start_matches('/')),
                f.contents.as_bytes(),
                f.mode,
            )?;
        }
        let system = root.join("etc/systemd/system");
        for u in &self.units {
            if let Some(c) = &u.contents {
                put(system.join(&u.name), c.as_bytes(), PUBLIC_MODE)?;
            }
        }
        for u in self.units.iter().filter(|u| u.enabled) {
            let link = system.join(format!("{}.wants", u.wanted_by)).join(&u.name);
            let target = PathBuf::from(u.link_target());
            if std::fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
                report.unchanged += 1;
                continue;
            }
            let dir = link.parent().unwrap_or(&system);
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: dir.to_owned(),
                source,
            })?;
            match std::fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Write {
                        path: link.clone(),
                        source,
                    });
                }
            }
            std::os::unix::fs::symlink(&target, &link).map_err(|source| Error::Write {
                path: link.clone(),
                source,
            })?;
            report.written.push(rel(&link));
        }
        Ok(report)
    }
}
