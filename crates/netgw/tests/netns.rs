//! The rendered gateway, end to end, in network namespaces (see `support/lab.rs` for the lab
//! and what is asserted): the overlay `render` writes, run by a gateway whose uplink is
//! `ens5` (an uplink and a NIC in the private network, as on a two-NIC machine) or `enX0`
//! (one NIC for both, as the AWS NAT instance has), with the egress interface named in the
//! spec or, by default, not named at all. Each for nftables and for iptables.
//!
//! Needs root, `/dev/net/tun` and: `apt-get install -y --no-install-recommends wireguard-go
//! wireguard-tools nftables iproute2 iptables procps`. A missing tool fails the test with that
//! hint. Every namespace (and with it every veth) is deleted and every process stopped by its
//! PID when the test ends, also when it fails. Only addresses inside these namespaces are used.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use frankenetes_netgw::{Firewall, GatewayOptions, gateway_of, render};
use frankenetes_spec::ClusterSpec;
use support::lab::{GATEWAY_EGRESS, GatewayFiles, Topology, TunnelMode, scenario};
use support::{require_environment, try_run};

/// The lab's spec: `egressInterface` only when `egress` is given.
fn spec_yaml(egress: Option<&str>, tunnel_if: &str) -> String {
    let egress = egress
        .map(|e| format!("egressInterface: {e}\n    "))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: netns-lab }}
spec:
  kubernetesVersion: v1.35.0
  controlPlane: [{{ name: control-01, ip: 10.10.16.11 }}]
  gateway:
    name: gateway
    ip: 10.10.16.5
    privateCIDR: 10.10.16.0/20
    {egress}tunnel:
      cidr: 10.200.0.0/24
      listenPort: 51820
      endpoint: "{GATEWAY_EGRESS}:51820"
      interface: {tunnel_if}
      persistentKeepalive: 5
    peers: [{{ name: laptop }}]
"#
    )
}

/// Renders the lab's gateway (real keys from the OS) and runs the scenario on its overlay.
fn rendered(firewall: Firewall, tag: char, egress: Option<&str>, topology: Topology) {
    require_environment();
    let pid = std::process::id();
    let tunnel_if = format!("fg{tag}{pid}gw");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let spec = ClusterSpec::from_yaml(&spec_yaml(egress, &tunnel_if))
        .expect("lab spec")
        .spec;
    let gw_spec = gateway_of(&spec).expect("gateway");
    let options = GatewayOptions::default().firewall(firewall);
    let made = render(&out, gw_spec, &options).expect("render");

    // The keys are what wg(8) computes.
    let gw_keys = made.state.gateway_keys();
    let wg_pub = try_run(&["wg", "pubkey"], Some(&gw_keys.private.to_base64()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        wg_pub.trim(),
        gw_keys.public.to_string(),
        "wg pubkey disagrees"
    );

    let files = GatewayFiles {
        root: made.bundle.root(&out),
        tunnel_if,
        firewall,
        egress: egress.map(str::to_owned),
        client_conf: out.join("cluster/vpn/laptop.conf"),
    };
    scenario(&files, tag, topology, TunnelMode::SetConf);
}

const TWO_NICS: Topology = Topology::TwoNics {
    uplink: "ens5",
    private: "ens6",
};
const ONE_NIC: Topology = Topology::OneNic { uplink: "enX0" };

#[test]
fn nftables_gateway_end_to_end() {
    rendered(Firewall::Nftables, 'n', Some("ens5"), TWO_NICS);
}

#[test]
fn iptables_gateway_end_to_end() {
    rendered(Firewall::Iptables, 'i', Some("ens5"), TWO_NICS);
}

#[test]
fn nftables_unnamed_uplink_ens5_two_nics() {
    rendered(Firewall::Nftables, 'a', None, TWO_NICS);
}

#[test]
fn iptables_unnamed_uplink_ens5_two_nics() {
    rendered(Firewall::Iptables, 'b', None, TWO_NICS);
}

#[test]
fn nftables_unnamed_uplink_enx0_one_nic() {
    rendered(Firewall::Nftables, 'c', None, ONE_NIC);
}

#[test]
fn iptables_unnamed_uplink_enx0_one_nic() {
    rendered(Firewall::Iptables, 'd', None, ONE_NIC);
}
