//! The egress side when `egressInterface` is unset, SSH keys in the gateway's Ignition, and the
//! endpoint learned after `up` in the client configurations.

use std::os::unix::fs::PermissionsExt;

use frankenetes_spec::{ClusterSpec, GatewaySpec};

use super::*;
use crate::nat::Chain;

/// The snapshot spec without `egressInterface` and without `tunnel.endpoint`, with SSH keys.
const SPEC: &str = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: kubelius }
spec:
  kubernetesVersion: v1.35.0
  controlPlane: [{ name: control-01, ip: 10.10.16.11 }]
  ssh:
    authorizedKeys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwjBFrOL5Nw7NNdseX2bUkGPmptceGzAXN1IBqLz2hi alice@laptop
  gateway:
    ip: 10.10.16.5
    privateCIDR: 10.10.16.0/20
    tunnel: { cidr: 10.200.0.0/24 }
    peers:
      - { name: laptop }
      - { name: phone, publicKey: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=" }
"#;

fn cluster(yaml: &str) -> ClusterSpec {
    ClusterSpec::from_yaml(yaml).unwrap().spec
}

fn gateway(yaml: &str) -> GatewaySpec {
    gateway_of(&cluster(yaml)).unwrap().clone()
}

fn rendered(out: &std::path::Path, gw: &GatewaySpec) -> Rendered {
    render_with(
        out,
        gw,
        &GatewayOptions::default(),
        &mut SeededRandom::new(7),
    )
    .unwrap()
}

#[test]
fn unnamed_egress_is_every_interface_but_the_tunnel() {
    let gw = gateway(SPEC);
    let plan = FirewallPlan::new(&gw);
    assert_eq!(plan.egress_interface, None);
    let rules = plan.rules();
    // No rule names an interface but loopback and the tunnel; the egress side is "not wg0".
    for r in &rules {
        for name in [&r.iif, &r.oif].into_iter().flatten() {
            assert!(name == "lo" || name == "wg0", "{r:?}");
        }
        if let Some(n) = &r.oif_not {
            assert_eq!(n, "wg0", "{r:?}");
        }
    }
    let masquerades: Vec<_> = rules
        .iter()
        .filter(|r| r.chain == Chain::Postrouting)
        .collect();
    assert_eq!(masquerades.len(), 2);
    assert!(
        masquerades
            .iter()
            .all(|r| r.oif_not.as_deref() == Some("wg0") && r.oif.is_none())
    );
    let mut keys = SeededRandom::new(3);
    let mut state = VpnState::new(&mut keys).unwrap();
    state.sync(&gw, &mut keys).unwrap();
    let nft = gateway_bundle(&gw, &state, &GatewayOptions::default()).unwrap();
    let ipt = gateway_bundle(
        &gw,
        &state,
        &GatewayOptions::default().firewall(Firewall::Iptables),
    )
    .unwrap();
    let nft = nft.file(bundle::NFT_PATH).unwrap().text().into_owned();
    let ipt = ipt.file(bundle::IPTABLES_PATH).unwrap().text().into_owned();
    assert!(!nft.contains("eth0") && !ipt.contains("eth0"));
    insta::assert_snapshot!("unnamed_egress_nft", nft);
    insta::assert_snapshot!("unnamed_egress_iptables", ipt);
}

#[test]
fn unnamed_egress_with_ipv6_accepts_router_advertisements_everywhere() {
    let yaml = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: kubelius }
spec:
  kubernetesVersion: v1.35.0
  controlPlane: [{ name: control-01, ip: "fd00:10:16::11" }]
  network: { serviceCIDR: "fd00:96::/108" }
  gateway:
    ip: "fd00:10:16::5"
    privateCIDR: "fd00:10:16::/64"
    tunnel: { cidr: "fd00:200::/120" }
"#;
    let plan = FirewallPlan::new(&gateway(yaml));
    let sysctl = plan.sysctl().to_string();
    assert!(sysctl.contains("net.ipv6.conf.all.forwarding = 1\n"));
    assert!(
        sysctl.contains("net.ipv6.conf.*.accept_ra = 2\n"),
        "{sysctl}"
    );
    insta::assert_snapshot!("unnamed_egress_v6_sysctl", sysctl);
}

#[test]
fn ssh_keys_reach_core_through_the_ignition_config() {
    let spec = cluster(SPEC);
    let gw = gateway_of(&spec).unwrap();
    let mut keys = SeededRandom::new(3);
    let mut state = VpnState::new(&mut keys).unwrap();
    state.sync(gw, &mut keys).unwrap();
    let with = gateway_bundle(gw, &state, &GatewayOptions::for_cluster(&spec)).unwrap();
    let want: Vec<String> = spec
        .ssh
        .authorized_keys
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(want.len(), 1);
    assert_eq!(with.ssh_authorized_keys, want);
    let ign: serde_json::Value = serde_json::from_str(&with.to_ignition()).unwrap();
    assert_eq!(
        ign["passwd"]["users"],
        serde_json::json!([{ "name": "core", "sshAuthorizedKeys": want }])
    );
    // Without the cluster's keys (the default options), nobody may log in.
    let without = gateway_bundle(gw, &state, &GatewayOptions::default()).unwrap();
    assert!(without.ssh_authorized_keys.is_empty());
    let ign: serde_json::Value = serde_json::from_str(&without.to_ignition()).unwrap();
    assert!(ign.get("passwd").is_none(), "{ign}");
    // The keys change nothing else.
    assert_eq!(with.files, without.files);
    assert_eq!(with.units, without.units);
}

fn endpoint_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("Endpoint"))
        .map(str::to_owned)
        .collect()
}

fn read(out: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(out.join(rel)).unwrap()
}

#[test]
fn set_endpoint_writes_it_into_every_client_once() {
    let gw = gateway(SPEC);
    let out = tempfile::tempdir().unwrap();
    let first = rendered(out.path(), &gw);
    let ign_before = read(out.path(), "nodes/gateway.ign");
    for peer in ["laptop", "phone"] {
        let text = read(out.path(), &format!("cluster/vpn/{peer}.conf"));
        assert!(endpoint_lines(&text).is_empty(), "{text}");
        assert!(text.contains("Endpoint: not known yet"), "{text}");
    }

    let report = set_endpoint(out.path(), &gw, Some("203.0.113.7:51820")).unwrap();
    let mut written: Vec<String> = report
        .written
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "cluster/vpn/laptop.conf",
            "cluster/vpn/phone.conf",
            "cluster/vpn/state.json"
        ]
    );
    for peer in ["laptop", "phone"] {
        let rel = format!("cluster/vpn/{peer}.conf");
        let text = read(out.path(), &rel);
        assert_eq!(endpoint_lines(&text), ["Endpoint = 203.0.113.7:51820"]);
        // Under the gateway's [Peer], and the rest as before.
        let peer_section = text.split("[Peer]").nth(1).unwrap();
        assert!(peer_section.contains("Endpoint = 203.0.113.7:51820"));
        assert!(!text.contains("not known yet"));
        let mode = std::fs::metadata(out.path().join(&rel))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let state = VpnState::load(out.path()).unwrap().unwrap();
    assert_eq!(state.learned_endpoint(), Some("203.0.113.7:51820"));
    // Keys and addresses are untouched, and so is the gateway's Ignition config.
    let mut without = state.clone();
    without.set_learned_endpoint(None).unwrap();
    assert_eq!(without, first.state);
    assert_eq!(read(out.path(), "nodes/gateway.ign"), ign_before);

    // Idempotent: the same endpoint again writes nothing.
    let again = set_endpoint(out.path(), &gw, Some("203.0.113.7:51820")).unwrap();
    assert!(again.written.is_empty(), "{:?}", again.written);
    assert_eq!(again.unchanged, 3);
    // A later render keeps it.
    let later = rendered(out.path(), &gw);
    assert!(
        later.report.written.is_empty(),
        "{:?}",
        later.report.written
    );
    assert_eq!(
        endpoint_lines(&read(out.path(), "cluster/vpn/laptop.conf")),
        ["Endpoint = 203.0.113.7:51820"]
    );
    // A new address replaces it; None forgets it.
    set_endpoint(out.path(), &gw, Some("[2001:db8::7]:51820")).unwrap();
    assert_eq!(
        endpoint_lines(&read(out.path(), "cluster/vpn/phone.conf")),
        ["Endpoint = [2001:db8::7]:51820"]
    );
    set_endpoint(out.path(), &gw, None).unwrap();
    assert!(endpoint_lines(&read(out.path(), "cluster/vpn/phone.conf")).is_empty());
    assert_eq!(
        VpnState::load(out.path())
            .unwrap()
            .unwrap()
            .learned_endpoint(),
        None
    );
}

#[test]
fn the_spec_endpoint_wins() {
    let yaml = SPEC.replace(
        "tunnel: { cidr: 10.200.0.0/24 }",
        "tunnel: { cidr: 10.200.0.0/24, endpoint: \"vpn.kubelius.example:51820\" }",
    );
    let gw = gateway(&yaml);
    let out = tempfile::tempdir().unwrap();
    rendered(out.path(), &gw);
    set_endpoint(out.path(), &gw, Some("203.0.113.7:51820")).unwrap();
    assert_eq!(
        endpoint_lines(&read(out.path(), "cluster/vpn/laptop.conf")),
        ["Endpoint = vpn.kubelius.example:51820"]
    );
    let state = VpnState::load(out.path()).unwrap().unwrap();
    for c in state
        .client_configs_with(&gw, Some("198.51.100.1:51820"))
        .unwrap()
    {
        assert_eq!(
            endpoint_lines(&c.wg_quick()),
            ["Endpoint = vpn.kubelius.example:51820"]
        );
    }
}

#[test]
fn client_configs_with_an_endpoint_record_nothing() {
    let gw = gateway(SPEC);
    let mut keys = SeededRandom::new(3);
    let mut state = VpnState::new(&mut keys).unwrap();
    state.sync(&gw, &mut keys).unwrap();
    let before = state.clone();
    let clients = state
        .client_configs_with(&gw, Some("198.51.100.1:51820"))
        .unwrap();
    assert_eq!(clients.len(), 2);
    for c in &clients {
        assert_eq!(
            endpoint_lines(&c.wg_quick()),
            ["Endpoint = 198.51.100.1:51820"]
        );
    }
    assert_eq!(state, before);
    assert!(
        state
            .client_configs(&gw)
            .unwrap()
            .iter()
            .all(|c| endpoint_lines(&c.wg_quick()).is_empty())
    );
}

#[test]
fn a_bad_endpoint_is_refused_and_nothing_is_written() {
    let gw = gateway(SPEC);
    let out = tempfile::tempdir().unwrap();
    rendered(out.path(), &gw);
    let snapshot = |p: &std::path::Path| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(p.join("cluster/vpn"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(out.path());
    for bad in [
        "203.0.113.7",
        "203.0.113.7:",
        "203.0.113.7:0",
        "203.0.113.7:99999",
        "2001:db8::7:51820",
        "https://203.0.113.7:51820",
        "vpn example:51820",
        "x:1\nPostUp = touch /tmp/owned",
    ] {
        let e = set_endpoint(out.path(), &gw, Some(bad)).expect_err(bad);
        assert!(matches!(e, Error::Endpoint { .. }), "{bad:?}: {e:?}");
        assert!(e.is_bad_input());
        assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        assert!(
            VpnState::new(&mut SeededRandom::new(1))
                .unwrap()
                .client_configs_with(&gw, Some(bad))
                .is_err()
        );
    }
    assert_eq!(snapshot(out.path()), before);
}

#[test]
fn set_endpoint_needs_the_state() {
    let gw = gateway(SPEC);
    let out = tempfile::tempdir().unwrap();
    let e = set_endpoint(out.path(), &gw, Some("203.0.113.7:51820")).unwrap_err();
    assert!(matches!(e, Error::NoState { .. }), "{e:?}");
    assert!(e.to_string().contains("cluster/vpn/state.json"), "{e}");
    assert!(e.to_string().contains("render"), "{e}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn a_corrupt_learned_endpoint_names_the_field() {
    let gw = gateway(SPEC);
    let out = tempfile::tempdir().unwrap();
    rendered(out.path(), &gw);
    set_endpoint(out.path(), &gw, Some("203.0.113.7:51820")).unwrap();
    let path = out.path().join(state::STATE_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\"endpoint\": \"203.0.113.7:51820\""),
        "{text}"
    );
    std::fs::write(&path, text.replace("203.0.113.7:51820", "203.0.113.7")).unwrap();
    let e = VpnState::load(out.path()).unwrap_err();
    assert!(e.to_string().contains("endpoint"), "{e}");
    assert!(e.to_string().contains("state.json"), "{e}");
}
