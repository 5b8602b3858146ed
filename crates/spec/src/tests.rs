use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

const GOOD: &str = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata:
  name: kubelius
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: api.kubelius:6443
  network:
    serviceCIDR: 10.96.0.0/16
    podCIDR: 10.244.0.0/16
    dnsDomain: cluster.local
  pki:
    caMode: intermediate
    keyAlgorithm: ecdsa-p256
    caValidity: 87600h
    certValidity: 8760h
  controlPlane:
    - { name: control-01, ip: 10.10.16.11 }
    - { name: control-02, ip: 10.10.16.12 }
    - { name: control-03, ip: 10.10.16.13 }
  workers: []
  backend:
    local: {}
"#;

fn with(replace: &str, by: &str) -> String {
    assert!(GOOD.contains(replace), "fixture lacks {replace:?}");
    GOOD.replacen(replace, by, 1)
}

#[test]
fn parses_the_architecture_example() {
    let parsed = ClusterSpec::from_yaml(GOOD).unwrap();
    assert!(parsed.warnings.is_empty());
    let s = parsed.spec;
    assert_eq!(s.name.as_str(), "kubelius");
    assert_eq!(s.pki.ca_mode, CaMode::Intermediate);
    assert_eq!(s.pki.cert_validity, GoDuration::from_hours(8760));
    assert_eq!(s.control_plane.len(), 3);
    assert_eq!(s.control_plane_url(), "https://api.kubelius:6443");
    assert_eq!(s.kubernetes_service_ip().to_string(), "10.96.0.1");
    assert_eq!(s.cluster_dns_ip().to_string(), "10.96.0.10");
    assert_eq!(
        s.etcd_initial_cluster(),
        "control-01=https://10.10.16.11:2380,control-02=https://10.10.16.12:2380,control-03=https://10.10.16.13:2380"
    );
    // Round trip: what we write, we read back the same.
    let again = ClusterSpec::from_yaml(&s.to_yaml()).unwrap().spec;
    assert_eq!(again, s);
}

#[test]
fn defaults_apply() {
    let yaml = "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  kubernetesVersion: 1.36.1\n  controlPlane: [{name: n1, ip: '192.168.1.10'}]\n";
    let s = ClusterSpec::from_yaml(yaml).unwrap().spec;
    assert_eq!(s.network.service_cidr.to_string(), "10.96.0.0/12");
    assert_eq!(s.network.dns_domain.as_str(), "cluster.local");
    assert_eq!(s.pki.key_algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(s.pki.ca_mode, CaMode::Kubeadm);
    assert_eq!(s.backend, BackendSpec::Local(LocalBackend::default()));
    assert_eq!(s.control_plane_url(), "https://192.168.1.10:6443");
}

#[test]
fn apiserver_sans_follow_kubeadm() {
    let s = ClusterSpec::from_yaml(GOOD).unwrap().spec;
    let sans: Vec<String> = s
        .apiserver_sans(&s.control_plane[1])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        sans,
        [
            "api.kubelius",
            "control-02",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
            "10.10.16.12"
        ]
    );
    let etcd: Vec<String> = s
        .etcd_sans(&s.control_plane[0])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        etcd,
        ["control-01", "localhost", "10.10.16.11", "127.0.0.1", "::1"]
    );
}

#[test]
fn even_control_plane_is_a_warning() {
    let yaml = with("    - { name: control-03, ip: 10.10.16.13 }\n", "");
    let parsed = ClusterSpec::from_yaml(&yaml).unwrap();
    assert_eq!(parsed.warnings.len(), 1);
    insta::assert_snapshot!("even_control_plane_warning", parsed.warnings[0].to_string());
}

/// Every bad config gives an error naming the field; the messages are snapshotted so a change
/// in wording is reviewed.
#[test]
fn bad_configs_name_the_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown_field",
            with("  workers: []", "  workers: []\n  wrokers: []"),
            "spec",
        ),
        (
            "bad_ip",
            with("ip: 10.10.16.12", "ip: 10.10.16.300"),
            "spec.controlPlane[1].ip",
        ),
        (
            "bad_node_name",
            with("name: control-02", "name: Control_02"),
            "spec.controlPlane[1].name",
        ),
        (
            "bad_cidr_host_bits",
            with("serviceCIDR: 10.96.0.0/16", "serviceCIDR: 10.96.0.1/16"),
            "spec.network.serviceCIDR",
        ),
        (
            "bad_duration",
            with("certValidity: 8760h", "certValidity: 1 year"),
            "spec.pki.certValidity",
        ),
        (
            "bad_version",
            with("v1.35.0", "1.35"),
            "spec.kubernetesVersion",
        ),
        (
            "bad_key_algorithm",
            with("ecdsa-p256", "ed25519"),
            "spec.pki.keyAlgorithm",
        ),
        (
            "bad_ca_mode",
            with("caMode: intermediate", "caMode: external"),
            "spec.pki.caMode",
        ),
        (
            "bad_endpoint",
            with("api.kubelius:6443", "https://api.kubelius:6443"),
            "spec.controlPlaneEndpoint",
        ),
        (
            "bad_backend",
            with("    local: {}", "    gcp: {}"),
            "spec.backend",
        ),
        (
            "bad_api_version",
            with("frankenetes.dev/v1alpha1", "frankenetes.dev/v1"),
            "apiVersion",
        ),
        (
            "missing_control_plane",
            with("  controlPlane:\n", "  controlPlanes:\n"),
            "spec",
        ),
        (
            "duplicate_name",
            with("name: control-02", "name: control-01"),
            "spec.controlPlane[1].name",
        ),
        (
            "duplicate_ip",
            with("ip: 10.10.16.12", "ip: 10.10.16.11"),
            "spec.controlPlane[1].ip",
        ),
        (
            "ip_in_service_cidr",
            with("ip: 10.10.16.13", "ip: 10.96.0.20"),
            "spec.controlPlane[2].ip",
        ),
        (
            "cidrs_overlap",
            with("podCIDR: 10.244.0.0/16", "podCIDR: 10.96.128.0/17"),
            "spec.network.podCIDR",
        ),
        (
            "service_cidr_too_large",
            with("serviceCIDR: 10.96.0.0/16", "serviceCIDR: 10.0.0.0/8"),
            "spec.network.serviceCIDR",
        ),
        (
            "cert_outlives_ca",
            with("certValidity: 8760h", "certValidity: 90000h"),
            "spec.pki.certValidity",
        ),
        (
            "empty_control_plane",
            with(
                "  controlPlane:\n    - { name: control-01, ip: 10.10.16.11 }\n    - { name: control-02, ip: 10.10.16.12 }\n    - { name: control-03, ip: 10.10.16.13 }\n",
                "  controlPlane: []\n",
            ),
            "spec.controlPlane",
        ),
        (
            "worker_duplicates_control_plane",
            with(
                "  workers: []",
                "  workers:\n    - { name: control-02, ip: 10.10.16.40 }",
            ),
            "spec.workers[0].name",
        ),
        ("yaml_syntax", with("  network:\n", "  network: [\n"), ""),
    ];
    for (name, yaml, path) in cases {
        let err = ClusterSpec::from_yaml(&yaml).expect_err(name);
        let problems = err.problems();
        assert!(
            problems.iter().any(|p| p.path.starts_with(path)),
            "{name}: expected a problem at {path:?}, got {problems:?}"
        );
        insta::assert_snapshot!(name, err.to_string());
    }
}

#[test]
fn errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("frankenetes-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("cluster.yaml");
    std::fs::write(&f, with("ip: 10.10.16.12", "ip: nope")).unwrap();
    let msg = ClusterSpec::load(&f).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("{}: spec.controlPlane[1].ip", f.display())),
        "{msg}"
    );
    let missing = ClusterSpec::load(dir.join("absent.yaml")).unwrap_err();
    assert!(matches!(missing, Error::Read { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn arb_spec() -> impl Strategy<Value = ClusterSpec> {
    (1usize..=7, 0usize..=4, any::<bool>(), any::<bool>()).prop_map(
        |(cp, workers, v6, dns_endpoint)| {
            let ip = |i: usize| -> IpAddr {
                if v6 {
                    format!("fd00:10::{:x}", i + 1).parse().unwrap()
                } else {
                    format!("10.10.{}.{}", i / 200, i % 200 + 10)
                        .parse()
                        .unwrap()
                }
            };
            let nodes = |prefix: &str, n: usize, off: usize| -> Vec<NodeSpec> {
                (0..n)
                    .map(|i| {
                        NodeSpec::new(
                            NodeName::try_from(format!("{prefix}-{i:02}")).unwrap(),
                            ip(i + off),
                        )
                    })
                    .collect()
            };
            let mut s = ClusterSpec::new(
                ClusterName::try_from("prop").unwrap(),
                "v1.35.0".parse().unwrap(),
                nodes("cp", cp, 0),
            );
            s.workers = nodes("w", workers, 100);
            if v6 {
                s.network.service_cidr = "fd00:96::/108".parse().unwrap();
            }
            if dns_endpoint {
                s.control_plane_endpoint = Some("api.prop.example:443".parse().unwrap());
            }
            s
        },
    )
}

proptest! {
    #[test]
    fn sans_cover_every_name_a_client_uses(spec in arb_spec()) {
        prop_assert!(spec.validate().is_ok());
        for n in &spec.control_plane {
            let sans = spec.apiserver_sans(n);
            prop_assert!(sans.contains(&San::Ip(n.ip)));
            prop_assert!(sans.contains(&San::Dns(n.name.clone().into())));
            prop_assert!(sans.contains(&San::Ip(spec.kubernetes_service_ip())));
            let endpoint = match spec.control_plane_endpoint().host { Host::Dns(d) => San::Dns(d), Host::Ip(i) => San::Ip(i) };
            prop_assert!(sans.contains(&endpoint));
            // No duplicates, DNS names sorted before addresses.
            let mut dedup = sans.clone();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), sans.len());
            let first_ip = sans.iter().position(|s| matches!(s, San::Ip(_))).unwrap();
            prop_assert!(sans[first_ip..].iter().all(|s| matches!(s, San::Ip(_))));
            let etcd = spec.etcd_sans(n);
            prop_assert!(etcd.contains(&San::Ip(n.ip)));
        }
        prop_assert_eq!(spec.etcd_initial_cluster().split(',').count(), spec.control_plane.len());
    }
}

const GATEWAY: &str = r#"
  gateway:
    ip: 10.10.16.5
    privateCIDR: 10.10.16.0/20
    tunnel: { cidr: 10.200.0.0/29, listenPort: 51820, endpoint: "vpn.kubelius.example:51820" }
    peers:
      - { name: laptop, publicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" }
      - { name: tablet }
"#;

fn with_gateway(replace: &str, by: &str) -> String {
    let g = GATEWAY.replacen(replace, by, 1);
    assert!(
        GATEWAY.contains(replace),
        "gateway fixture lacks {replace:?}"
    );
    format!("{}{}", GOOD.trim_end(), g)
}

#[test]
fn gateway_section_parses() {
    let s = ClusterSpec::from_yaml(&with_gateway("", "")).unwrap().spec;
    let gw = s.gateway.unwrap();
    assert_eq!(gw.name.as_str(), "gateway");
    assert_eq!(gw.egress_interface, None);
    assert_eq!(gw.tunnel.interface, "wg0");
    assert_eq!(gw.peers.len(), 2);
    assert!(gateway::is_wireguard_key(
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
    ));
    assert!(
        !gateway::is_wireguard_key("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh="),
        "non-zero padding bits"
    );
}

#[test]
fn bad_gateways_name_the_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "gateway_tunnel_overlaps_private",
            with_gateway("10.200.0.0/29", "10.10.17.0/24"),
            "spec.gateway.privateCIDR",
        ),
        (
            "gateway_private_overlaps_services",
            with_gateway("privateCIDR: 10.10.16.0/20", "privateCIDR: 10.96.0.0/12"),
            "spec.gateway.privateCIDR",
        ),
        (
            "gateway_tunnel_exhausted",
            with_gateway(
                "      - { name: tablet }",
                "      - { name: tablet }\n      - { name: p3 }\n      - { name: p4 }\n      - { name: p5 }\n      - { name: p6 }",
            ),
            "spec.gateway.tunnel.cidr",
        ),
        (
            "gateway_duplicate_peer",
            with_gateway("name: tablet", "name: laptop"),
            "spec.gateway.peers[1].name",
        ),
        (
            "gateway_malformed_key",
            with_gateway("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "not-a-key"),
            "spec.gateway.peers[0].publicKey",
        ),
        (
            "gateway_ip_outside_private",
            with_gateway("ip: 10.10.16.5", "ip: 192.168.1.5"),
            "spec.gateway.ip",
        ),
        (
            "gateway_peer_takes_gateway_address",
            with_gateway("{ name: tablet }", "{ name: tablet, address: 10.200.0.1 }"),
            "spec.gateway.peers[1].address",
        ),
        (
            "gateway_endpoint_without_port",
            with_gateway("\"vpn.kubelius.example:51820\"", "vpn.kubelius.example"),
            "spec.gateway.tunnel.endpoint",
        ),
        (
            "gateway_unknown_field",
            with_gateway("privateCIDR:", "vpcCidr: 10.0.0.0/8\n    privateCIDR:"),
            "spec.gateway",
        ),
    ];
    for (name, yaml, path) in cases {
        let err = ClusterSpec::from_yaml(&yaml).expect_err(name);
        assert!(
            err.problems().iter().any(|p| p.path.starts_with(path)),
            "{name}: expected {path}, got {:?}",
            err.problems()
        );
        insta::assert_snapshot!(name, err.to_string());
    }
}

#[test]
fn component_settings_parse_and_feed_the_sans() {
    let yaml = with(
        "  workers: []",
        "  workers: []\n  imageRepository: mirror.example/k8s\n  etcd: { version: 3.4.23, dataDir: /data/etcd, extraArgs: { quota-backend-bytes: \"8589934592\" } }\n  apiServer:\n    certSANs: [api.public.example, 203.0.113.10]\n    extraArgs: { audit-log-maxage: \"30\" }\n    extraVolumes: [{ name: audit, hostPath: /var/log/kubernetes, readOnly: false }]\n  scheduler: { extraArgs: { v: \"2\" } }",
    );
    let s = ClusterSpec::from_yaml(&yaml).unwrap().spec;
    assert_eq!(s.etcd.version, Some(EtcdVersion::new(3, 4, 23)));
    assert_eq!(s.image_repository, "mirror.example/k8s");
    assert_eq!(s.api_server.extra_volumes[0].path_type, "DirectoryOrCreate");
    let sans: Vec<String> = s
        .apiserver_sans(&s.control_plane[0])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        sans.contains(&"api.public.example".to_owned())
            && sans.contains(&"203.0.113.10".to_owned()),
        "{sans:?}"
    );
    let bad = with(
        "  workers: []",
        "  workers: []\n  apiServer: { certSANs: [\"not valid!\"], extraArgs: { --v: \"2\" } }",
    );
    let problems = ClusterSpec::from_yaml(&bad).unwrap_err().problems();
    assert!(
        problems
            .iter()
            .any(|p| p.path == "spec.apiServer.certSANs[0]"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.path == "spec.apiServer.extraArgs.--v"),
        "{problems:?}"
    );
}

#[test]
fn a_worker_hosts_file_names_itself_the_control_planes_and_the_endpoint_only() {
    let yaml = with(
        "  workers: []",
        "  workers:\n    - { name: worker-01, ip: 10.10.16.21 }\n    - { name: worker-02, ip: 10.10.16.22 }",
    );
    let s = ClusterSpec::from_yaml(&yaml).unwrap().spec;
    let w1 = &s.workers[0];
    let lines = s.etc_hosts_for(w1, Role::Worker);
    assert_eq!(
        lines,
        [
            "10.10.16.11 control-01",
            "10.10.16.12 control-02",
            "10.10.16.13 control-03",
            "10.10.16.21 worker-01",
            "10.10.16.11 api.kubelius",
        ]
    );
    // A control plane knows every node.
    let cp = s.etc_hosts_for(&s.control_plane[0], Role::ControlPlane);
    assert_eq!(cp, s.etc_hosts());
    assert!(cp.contains(&"10.10.16.22 worker-02".to_owned()));
}
