//! The gateway's Ignition config passes `ignition-validate` and carries the overlay's files and
//! units, like every other node's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::process::Command;

use frankenetes_spec::ClusterSpec;

#[test]
fn gateway_ignition_validates() {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("ignition-validate").is_file());
    assert!(
        found,
        "`ignition-validate` is not installed: run ./scripts/install-deps.sh (or apt-get install ignition)"
    );
    let yaml = "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    - {name: control-01, ip: 10.10.16.11}\n  gateway:\n    ip: 10.10.16.5\n    privateCIDR: 10.10.16.0/20\n    tunnel: {endpoint: \"vpn.lab.example:51820\"}\n    peers: [{name: laptop}]\n";
    let spec = ClusterSpec::from_yaml(yaml).unwrap().spec;
    let out = tempfile::tempdir().unwrap();
    let gw = frankenetes_netgw::gateway_of(&spec).unwrap();
    let rendered = frankenetes_netgw::render(
        out.path(),
        gw,
        &frankenetes_netgw::GatewayOptions::default(),
    )
    .unwrap();
    let ign = out.path().join("nodes/gateway.ign");
    let o = Command::new("ignition-validate")
        .arg(&ign)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&ign).unwrap()).unwrap();
    let paths: Vec<&str> = cfg["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for f in &rendered.bundle.files {
        assert!(
            paths.contains(&f.path.as_str()),
            "{} missing from the .ign",
            f.path
        );
    }
    assert!(paths.contains(&"/etc/hostname"));
    let units = cfg["systemd"]["units"].as_array().unwrap();
    assert!(
        units
            .iter()
            .any(|u| u["name"] == "wg-quick@wg0.service" && u["enabled"] == true),
        "{units:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ign).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
