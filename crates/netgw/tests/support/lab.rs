//! The gateway lab: a laptop, the gateway, a private instance and "the internet" in network
//! namespaces, the gateway running its files from a directory laid out like its root
//! filesystem (the rendered overlay, or what the Ignition engine wrote).
//!
//! ```text
//!  laptop ns                 internet ns                 gateway ns                private ns
//!  192.168.60.2 ── veth ── 192.168.60.1
//!                          192.168.50.1 ── veth ── 192.168.50.2 (uplink)
//!                                                  10.10.16.5 ───── veth ───── 10.10.16.20
//!  10.200.0.2 (wg) ═════════ WireGuard over UDP 51820 ═════ 10.200.0.1 (wg)
//! ```
//!
//! That is [`Topology::TwoNics`]: the gateway's uplink and its NIC in the private network have
//! the names given (`ens5`, `ens6`). [`Topology::OneNic`] is the AWS NAT instance: the
//! gateway's only NIC (`enX0`), the private instance and the internet's router share one link
//! (a bridge in the internet namespace); the private instance's default route is the gateway.
//!
//! The internet namespace routes between the laptop and the gateway but has no route to the
//! private network or the tunnel: a private packet can only come back if the gateway
//! masqueraded it. Asserted:
//!
//! 1. the private instance reaches a TCP listener in the internet namespace, which sees the
//!    gateway's uplink address (masqueraded);
//! 2. the laptop reaches the private instance through the tunnel, which sees the laptop's
//!    tunnel address, and the gateway saw a WireGuard handshake;
//! 3. with the gateway's rules removed, (1) fails; with forwarding off as well, (2) fails;
//! 4. after re-applying the files, both work again; nothing is left behind at the end.
//!
//! The firewall is applied by running the `ExecStart=` lines of the firewall unit found in the
//! root (its `/etc/...` arguments read from the root), as systemd would at boot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use frankenetes_netgw::{Firewall, bundle};

use super::netns::{
    Lab, Listener, Netns, WgQuickUp, WireguardGo, bring_up_tunnel, probe, probe_until_ok,
    process_gone,
};
use super::{require_environment, run, try_run};

/// The private instance's address.
pub(crate) const PRIVATE_INSTANCE: &str = "10.10.16.20";
/// The gateway's uplink address.
pub(crate) const GATEWAY_EGRESS: &str = "192.168.50.2";
/// The internet's router and server.
pub(crate) const INTERNET_HOST: &str = "192.168.50.1";
/// The laptop's tunnel address (the first peer's).
pub(crate) const LAPTOP_TUNNEL: &str = "10.200.0.2";
/// The gateway's address in the private network (`spec.gateway.ip`).
pub(crate) const GATEWAY_PRIVATE: &str = "10.10.16.5";

/// How the gateway is wired.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Topology {
    /// An uplink and a NIC in the private network, with these names.
    TwoNics {
        /// The uplink's name.
        uplink: &'static str,
        /// The private NIC's name.
        private: &'static str,
    },
    /// One NIC for both, with this name (the AWS NAT instance).
    OneNic {
        /// Its name.
        uplink: &'static str,
    },
}

impl Topology {
    fn uplink(self) -> &'static str {
        match self {
            Topology::TwoNics { uplink, .. } | Topology::OneNic { uplink } => uplink,
        }
    }
}

/// How the tunnel's ends are brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TunnelMode {
    /// `wireguard-go -f` and `wg setconf` of the `.setconf` files, `Address` and routes by hand.
    SetConf,
    /// `wg-quick up` of the wg-quick files, as `wg-quick@.service` does.
    WgQuick,
}

/// The gateway under test.
#[derive(Debug, Clone)]
pub(crate) struct GatewayFiles {
    /// Its files, laid out as on the machine (`<root>/etc/...`).
    pub(crate) root: PathBuf,
    /// Its WireGuard interface (`spec.gateway.tunnel.interface`).
    pub(crate) tunnel_if: String,
    /// The firewall its files are for.
    pub(crate) firewall: Firewall,
    /// `spec.gateway.egressInterface`, if set.
    pub(crate) egress: Option<String>,
    /// The laptop's wg-quick file (`cluster/vpn/laptop.conf`).
    pub(crate) client_conf: PathBuf,
}

struct FirewallOps {
    listing: fn(&Netns) -> String,
    remove: fn(&Netns),
}

const NFT: FirewallOps = FirewallOps {
    listing: |gw| {
        gw.exec(&["nft", "list", "table", "inet", "frankenetes_gw"])
            .unwrap_or_else(|e| panic!("{e}"))
    },
    remove: |gw| {
        gw.exec(&["nft", "delete", "table", "inet", "frankenetes_gw"])
            .unwrap_or_else(|e| panic!("{e}"));
    },
};

const IPTABLES: FirewallOps = FirewallOps {
    listing: |gw| {
        let all = gw
            .exec(&["iptables-save"])
            .unwrap_or_else(|e| panic!("{e}"));
        // Drop the timestamped comments and the counters.
        all.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.split_once(" [") {
                Some((chain, _)) if l.starts_with(':') => chain.to_owned(),
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    },
    remove: |gw| {
        for cmd in [
            &["iptables", "-F"][..],
            &["iptables", "-t", "nat", "-F"],
            &["iptables", "-P", "INPUT", "ACCEPT"],
            &["iptables", "-P", "FORWARD", "ACCEPT"],
        ] {
            gw.exec(cmd).unwrap_or_else(|e| panic!("{e}"));
        }
    },
};

/// `path` (absolute, on the machine) inside `root`.
pub(crate) fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Runs the `ExecStart=` lines of the firewall unit in `root`, in `gw`, with every `/etc/...`
/// argument read from `root`. Returns the command lines run.
pub(crate) fn apply_firewall_unit(gw: &Netns, root: &Path) -> Vec<String> {
    let unit_path = in_root(
        root,
        &format!("/etc/systemd/system/{}", bundle::FIREWALL_UNIT),
    );
    let unit = std::fs::read_to_string(&unit_path)
        .unwrap_or_else(|e| panic!("{}: {e}", unit_path.display()));
    let lines: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .map(str::to_owned)
        .collect();
    assert!(
        !lines.is_empty(),
        "{} has no ExecStart",
        unit_path.display()
    );
    for line in &lines {
        let argv: Vec<String> = line
            .split_whitespace()
            .enumerate()
            .map(|(i, a)| {
                if i > 0 && a.starts_with("/etc/") {
                    in_root(root, a).display().to_string()
                } else {
                    a.to_owned()
                }
            })
            .collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        gw.exec(&argv)
            .unwrap_or_else(|e| panic!("{}: ExecStart={line}: {e}", bundle::FIREWALL_UNIT));
    }
    lines
}

/// Builds the lab for `topology`, runs the gateway from `files` in it and asserts what the
/// [module docs](self) say. `tag` tells parallel scenarios apart.
pub(crate) fn scenario(files: &GatewayFiles, tag: char, topology: Topology, tunnel: TunnelMode) {
    require_environment();
    let ops = match files.firewall {
        Firewall::Nftables => &NFT,
        _ => &IPTABLES,
    };
    let root = &files.root;
    let pid = std::process::id();
    // Interface names are at most 15 bytes: "fg" + tag + pid (up to 7 digits) + 2. The
    // gateway's own NICs are made inside its namespace, so their names are free.
    let short = format!("fg{tag}{pid}");
    let (ie, li, il, pp, pi, br, lwt) = (
        format!("{short}ie"),
        format!("{short}li"),
        format!("{short}il"),
        format!("{short}pp"),
        format!("{short}pi"),
        format!("{short}br"),
        format!("{short}lw"),
    );
    let gwt = files.tunnel_if.as_str();
    let uplink = topology.uplink();
    let tmp = tempfile::tempdir().expect("tempdir");

    // wg-quick accepts both files.
    let server_conf_path = in_root(root, &format!("/etc/wireguard/{gwt}.conf"));
    for file in [&files.client_conf, &server_conf_path] {
        try_run(&["wg-quick", "strip", &file.display().to_string()], None)
            .unwrap_or_else(|e| panic!("wg-quick rejects {}: {e}", file.display()));
    }

    // The lab.
    let base = format!("frankenetes-netgw-{pid}-{tag}");
    let mut lab = Lab {
        daemons: Vec::new(),
        tunnels: Vec::new(),
        namespaces: Vec::new(),
    };
    for role in ["laptop", "internet", "gateway", "private"] {
        lab.namespaces.push(Netns::create(format!("{base}-{role}")));
    }
    let (laptop_ns, inet, gw, private) = (0, 1, 2, 3);
    lab.veth(laptop_ns, &li, inet, &il);
    lab.ns(laptop_ns)
        .ip(&["addr", "add", "192.168.60.2/24", "dev", &li]);
    lab.ns(laptop_ns)
        .ip(&["route", "add", "default", "via", "192.168.60.1"]);
    lab.ns(inet)
        .ip(&["addr", "add", "192.168.60.1/24", "dev", &il]);
    lab.ns(inet).sysctl("net.ipv4.ip_forward", "1");
    let egress_addr = format!("{GATEWAY_EGRESS}/24");
    let private_addr = format!("{GATEWAY_PRIVATE}/20");
    match topology {
        Topology::TwoNics { uplink, private: p } => {
            lab.veth(gw, uplink, inet, &ie);
            lab.veth(gw, p, private, &pp);
            lab.ns(inet)
                .ip(&["addr", "add", &format!("{INTERNET_HOST}/24"), "dev", &ie]);
            lab.ns(gw).ip(&["addr", "add", &egress_addr, "dev", uplink]);
            lab.ns(gw).ip(&["addr", "add", &private_addr, "dev", p]);
        }
        Topology::OneNic { uplink } => {
            lab.ns(inet).ip(&["link", "add", &br, "type", "bridge"]);
            lab.ns(inet).ip(&["link", "set", &br, "up"]);
            lab.veth(gw, uplink, inet, &ie);
            lab.veth(private, &pp, inet, &pi);
            for port in [&ie, &pi] {
                lab.ns(inet).ip(&["link", "set", port, "master", &br]);
            }
            lab.ns(inet)
                .ip(&["addr", "add", &format!("{INTERNET_HOST}/24"), "dev", &br]);
            lab.ns(gw).ip(&["addr", "add", &egress_addr, "dev", uplink]);
            lab.ns(gw)
                .ip(&["addr", "add", &private_addr, "dev", uplink]);
        }
    }
    lab.ns(gw)
        .ip(&["route", "add", "default", "via", INTERNET_HOST]);
    lab.ns(private)
        .ip(&["addr", "add", &format!("{PRIVATE_INSTANCE}/20"), "dev", &pp]);
    lab.ns(private)
        .ip(&["route", "add", "default", "via", GATEWAY_PRIVATE]);
    // The private instance has one way out: the gateway; the internet has no route back.
    let routes = lab.ns(private).ip(&["route", "show"]);
    assert!(
        routes.lines().all(|r| r.contains(&pp)
            && (!r.starts_with("default") || r.contains(&format!("via {GATEWAY_PRIVATE}")))),
        "{routes}"
    );
    let back = lab.ns(inet).exec(&["ip", "route", "get", PRIVATE_INSTANCE]);
    assert!(
        back.is_err(),
        "the internet has a route to the private network: {back:?}"
    );

    // The gateway: its sysctl drop-in and firewall (twice: idempotent).
    let sysctl_file = in_root(root, bundle::SYSCTL_PATH);
    let apply_sysctl = |ns: &Netns| {
        ns.exec(&["sysctl", "-p", &sysctl_file.display().to_string()])
            .unwrap_or_else(|e| panic!("{e}"))
    };
    apply_sysctl(lab.ns(gw));
    apply_firewall_unit(lab.ns(gw), root);
    let first = (ops.listing)(lab.ns(gw));
    apply_firewall_unit(lab.ns(gw), root);
    assert_eq!(
        (ops.listing)(lab.ns(gw)),
        first,
        "applying the rules twice differs"
    );
    match &files.egress {
        Some(e) => assert!(first.contains(e.as_str()), "{first}"),
        None => {
            // Nothing in the kernel's ruleset names the uplink: it is found by not being the
            // tunnel.
            for name in [uplink, "eth0"] {
                assert!(!first.contains(name), "the ruleset names {name}:\n{first}");
            }
            assert!(
                first.contains(&format!("oifname != \"{gwt}\""))
                    || first.contains(&format!("! -o {gwt}")),
                "{first}"
            );
        }
    }

    // The tunnel, configured from the files.
    match tunnel {
        TunnelMode::SetConf => {
            let server_conf = std::fs::read_to_string(&server_conf_path).expect("wg-quick file");
            let client_conf = std::fs::read_to_string(&files.client_conf).expect("client");
            let client_setconf = tmp.path().join("laptop.setconf");
            let stripped = try_run(
                &[
                    "wg-quick",
                    "strip",
                    &files.client_conf.display().to_string(),
                ],
                None,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&client_setconf, stripped).expect("write");
            let gw_wg = WireguardGo::start(lab.ns(gw), gwt, tmp.path().join("gw-wireguard-go.log"));
            lab.daemons.push(gw_wg);
            let lt_wg = WireguardGo::start(
                lab.ns(laptop_ns),
                &lwt,
                tmp.path().join("laptop-wireguard-go.log"),
            );
            lab.daemons.push(lt_wg);
            let server_setconf = in_root(root, &format!("/etc/wireguard/{gwt}.setconf"));
            bring_up_tunnel(lab.ns(gw), gwt, &server_setconf, &server_conf);
            bring_up_tunnel(lab.ns(laptop_ns), &lwt, &client_setconf, &client_conf);
        }
        TunnelMode::WgQuick => {
            let up = WgQuickUp::up(lab.ns(gw), &server_conf_path);
            lab.tunnels.push(up);
            // wg-quick names the interface after the file.
            let laptop_conf = tmp.path().join(format!("{lwt}.conf"));
            std::fs::copy(&files.client_conf, &laptop_conf).expect("copy the client file");
            let up = WgQuickUp::up(lab.ns(laptop_ns), &laptop_conf);
            lab.tunnels.push(up);
        }
    }
    let pids: Vec<u32> = lab
        .daemons
        .iter()
        .map(WireguardGo::pid)
        .chain(lab.tunnels.iter().map(WgQuickUp::pid))
        .collect();

    let internet_service: SocketAddr = format!("{INTERNET_HOST}:8080").parse().expect("addr");
    let private_service: SocketAddr = format!("{PRIVATE_INSTANCE}:8080").parse().expect("addr");
    let internet_listener = Listener::start(lab.ns(inet), internet_service);
    let private_listener = Listener::start(lab.ns(private), private_service);
    let check_both_work = |when: &str| {
        // 1. Private instance → internet: masqueraded to the gateway's uplink address.
        let seen = probe_until_ok(
            lab.ns(private),
            internet_service,
            &format!("{when}: private instance to the internet"),
        );
        assert_eq!(
            seen, GATEWAY_EGRESS,
            "{when}: the internet saw {seen}, not the gateway's egress address"
        );
        // 2. Laptop → private instance through the tunnel, with its tunnel address.
        let seen = probe_until_ok(
            lab.ns(laptop_ns),
            private_service,
            &format!("{when}: laptop to the private instance"),
        );
        assert_eq!(
            seen, LAPTOP_TUNNEL,
            "{when}: the private instance saw {seen}, not the laptop's tunnel address"
        );
    };
    check_both_work("with the gateway's files");
    assert!(
        internet_listener
            .seen()
            .iter()
            .all(|a| a.to_string() == GATEWAY_EGRESS),
        "an unmasqueraded packet reached the internet: {:?}",
        internet_listener.seen()
    );
    let handshakes = lab
        .ns(gw)
        .exec(&["wg", "show", gwt, "latest-handshakes"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        handshakes
            .split_whitespace()
            .nth(1)
            .is_some_and(|t| t != "0"),
        "no WireGuard handshake: {handshakes}"
    );

    // 3. Rules removed: the private network no longer reaches the internet (nothing is
    // masqueraded, and the internet has no route back)...
    (ops.remove)(lab.ns(gw));
    let before = internet_listener.seen().len();
    let r = probe(lab.ns(private), internet_service);
    assert!(
        r.is_err(),
        "without the rules the private instance still reached the internet: {r:?}"
    );
    assert_eq!(internet_listener.seen().len(), before);
    // ... and with forwarding off as well, the laptop no longer reaches the private instance.
    lab.ns(gw).sysctl("net.ipv4.ip_forward", "0");
    let before = private_listener.seen().len();
    let r = probe(lab.ns(laptop_ns), private_service);
    assert!(
        r.is_err(),
        "without forwarding the laptop still reached the private instance: {r:?}"
    );
    assert_eq!(private_listener.seen().len(), before);

    // 4. Re-applying the files restores both.
    apply_sysctl(lab.ns(gw));
    apply_firewall_unit(lab.ns(gw), root);
    assert_eq!((ops.listing)(lab.ns(gw)), first);
    check_both_work("after re-applying");

    // Clean up explicitly and check nothing is left behind.
    drop(internet_listener);
    drop(private_listener);
    let names: Vec<String> = lab.namespaces.iter().map(|n| n.name.clone()).collect();
    drop(lab);
    let left = run(&["ip", "netns", "list"]);
    for n in &names {
        assert!(
            !left.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "namespace {n} left behind"
        );
    }
    for pid in pids {
        assert!(process_gone(pid), "wireguard-go {pid} still running");
    }
    for iface in [gwt, lwt.as_str()] {
        assert!(!Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists());
    }
}
