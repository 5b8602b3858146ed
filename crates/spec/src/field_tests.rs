//! The optional fields of issues #19 and #21: `spec.ssh`, `spec.etcd.backup`, an optional
//! `spec.gateway.egressInterface`, `spec.pki.renewBefore`, `spec.backend.azure.toolsImage`.

use std::time::Duration;

use super::*;

const BASE: &str = "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: { name: kubelius }\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane: [{ name: control-01, ip: 10.10.16.11 }]\n";

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwjBFrOL5Nw7NNdseX2bUkGPmptceGzAXN1IBqLz2hi alice@laptop";
const KEY2: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIoDEe5UcH8K4NJPekHQo89nEzTcUd/I4DFHtinCL8lUePBFMZzILrxkWWlsQaV6yqu23Tt9UtuvDC/0PlBRuOE= bob";

fn parse(extra: &str) -> Result<Parsed, Error> {
    ClusterSpec::from_yaml(&format!("{BASE}{extra}"))
}

fn round_trips(spec: &ClusterSpec) {
    let again = ClusterSpec::from_yaml(&spec.to_yaml()).unwrap().spec;
    assert_eq!(&again, spec);
}

#[track_caller]
fn refused_at(extra: &str, path: &str, words: &str) {
    let problems = parse(extra).unwrap_err().problems();
    assert!(
        problems
            .iter()
            .any(|p| p.path == path && p.message.contains(words)),
        "want {path:?} with {words:?}: {problems:#?}"
    );
}

#[test]
fn ssh_keys_parse_round_trip_and_default_to_none() {
    let none = parse("").unwrap().spec;
    assert!(none.ssh.authorized_keys.is_empty());
    assert!(
        !none.to_yaml().contains("ssh"),
        "an empty section is not written"
    );
    let s = parse(&format!(
        "  ssh:\n    authorizedKeys:\n      - {KEY}\n      - \"{KEY2}\"\n"
    ))
    .unwrap()
    .spec;
    let keys: Vec<&str> = s
        .ssh
        .authorized_keys
        .iter()
        .map(SshPublicKey::as_str)
        .collect();
    assert_eq!(keys, [KEY, KEY2]);
    assert_eq!(s.ssh.authorized_keys[1].key_type(), "ecdsa-sha2-nistp256");
    assert_eq!(s.ssh.authorized_keys[1].comment(), Some("bob"));
    round_trips(&s);
}

#[test]
fn bad_ssh_keys_name_the_entry() {
    let e = parse(&format!(
        "  ssh:\n    authorizedKeys:\n      - {KEY}\n      - \"ssh-ed25519 AAAA\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.problems()[0].path, "spec.ssh.authorizedKeys[1]");
    insta::assert_snapshot!("bad_ssh_key", e.to_string());
    refused_at(
        &format!("  ssh:\n    authorizedKeys:\n      - \"{KEY}\\nssh-rsa AAAA\"\n"),
        "spec.ssh.authorizedKeys[0]",
        "control character",
    );
    let other_comment = KEY.replace("alice@laptop", "alice@desktop");
    refused_at(
        &format!("  ssh:\n    authorizedKeys: [\"{KEY}\", \"{other_comment}\"]\n"),
        "spec.ssh.authorizedKeys[1]",
        "same key as spec.ssh.authorizedKeys[0]",
    );
    refused_at(
        "  ssh: { authorizedKey: [] }\n",
        "spec.ssh.authorizedKey",
        "unknown field",
    );
}

#[test]
fn etcd_backup_defaults_and_validation() {
    let s = parse("").unwrap().spec;
    assert_eq!(s.etcd.backup, None, "absent: no scheduled backups");
    assert_eq!(s.etcd_backup(), None);
    assert!(!s.to_yaml().contains("backup"));

    let s = parse("  etcd: { backup: {} }\n").unwrap().spec;
    let b = s.etcd.backup.clone().unwrap();
    assert_eq!((b.interval.get(), b.keep), (Duration::from_secs(900), 4));
    assert_eq!(
        b.dir_under(std::path::Path::new("/c")),
        std::path::Path::new("/c")
    );
    round_trips(&s);

    let s = parse("  etcd: { backup: { interval: 2s, keep: 3, dir: snaps/etcd } }\n")
        .unwrap()
        .spec;
    let b = s.etcd_backup().unwrap();
    assert_eq!((b.interval.get(), b.keep), (Duration::from_secs(2), 3));
    assert_eq!(
        b.dir_under(std::path::Path::new("/c")),
        std::path::Path::new("/c/snaps/etcd")
    );
    round_trips(&s);
    let abs = parse("  etcd: { backup: { dir: /mnt/backup } }\n")
        .unwrap()
        .spec;
    assert_eq!(
        abs.etcd_backup()
            .unwrap()
            .dir_under(std::path::Path::new(EtcdBackup::NODE_DIR)),
        std::path::Path::new("/mnt/backup")
    );

    refused_at(
        "  etcd: { backup: { interval: 500ms } }\n",
        "spec.etcd.backup.interval",
        "shorter than 1s",
    );
    refused_at(
        "  etcd: { backup: { keep: 0 } }\n",
        "spec.etcd.backup.keep",
        "at least one",
    );
    refused_at(
        "  etcd: { backup: { dir: ../../elsewhere } }\n",
        "spec.etcd.backup.dir",
        "..",
    );
    refused_at(
        "  etcd: { backup: { interval: soon } }\n",
        "spec.etcd.backup.interval",
        "not a duration",
    );
    refused_at(
        "  etcd: { backup: { every: 1m } }\n",
        "spec.etcd.backup.every",
        "unknown field",
    );
}

const AZURE: &str = "  backend:\n    azure:\n      subscriptionId: 00000000-0000-0000-0000-000000000000\n      resourceGroup: kubelius\n      location: westeurope\n      dnsLabelPrefix: kubelius-3f9a\n      credential: { azureCli: {} }\n      storageAccount: kubelius3f9a\n";

#[test]
fn on_azure_the_backup_section_drives_the_share_schedule() {
    let s = parse(AZURE).unwrap().spec;
    let b = s.etcd_backup().unwrap();
    assert_eq!((b.interval.get(), b.keep), (Duration::from_secs(900), 8));
    let s = parse(&format!(
        "{AZURE}  etcd: {{ backup: {{ interval: 1h, keep: 2 }} }}\n"
    ))
    .unwrap()
    .spec;
    let b = s.etcd_backup().unwrap();
    assert_eq!((b.interval.get(), b.keep), (Duration::from_secs(3600), 2));
    refused_at(
        &format!("{AZURE}  etcd: {{ backup: {{ interval: 10s }} }}\n"),
        "spec.etcd.backup.interval",
        "Azure",
    );
    refused_at(
        &format!("{AZURE}  etcd: {{ backup: {{ dir: snaps }} }}\n"),
        "spec.etcd.backup.dir",
        "shareName",
    );
}

#[test]
fn azure_images_are_references() {
    let s = parse(&format!(
        "{AZURE}      toolsImage: ghcr.io/example/etcd-tools:3.6\n"
    ))
    .unwrap()
    .spec;
    let BackendSpec::Azure(az) = &s.backend else {
        panic!()
    };
    assert_eq!(
        az.tools_image.as_deref(),
        Some("ghcr.io/example/etcd-tools:3.6")
    );
    round_trips(&s);
    refused_at(
        &format!("{AZURE}      toolsImage: \"ghcr.io/example/etcd tools\"\n"),
        "spec.backend.azure.toolsImage",
        "image reference",
    );
    refused_at(
        &format!(
            "{AZURE}      virtualKubelet: {{ podsResourceGroup: pods, image: \"vk:1.6.0+x\" }}\n"
        ),
        "spec.backend.azure.virtualKubelet.image",
        "tag",
    );
    refused_at(
        &format!("{AZURE}      virtualKubelet: {{ podsResourceGroup: pods, nodeName: VK }}\n"),
        "spec.backend.azure.virtualKubelet.nodeName",
        "lower case",
    );
}

const GATEWAY: &str = "  gateway: { ip: 10.10.16.5, privateCIDR: 10.10.16.0/20 }\n";

#[test]
fn egress_interface_is_found_at_boot_unless_set() {
    let s = parse(GATEWAY).unwrap().spec;
    let gw = s.gateway.clone().unwrap();
    assert_eq!(gw.egress_interface, None);
    assert!(!s.to_yaml().contains("egressInterface"));
    round_trips(&s);
    let set = GATEWAY.replace("privateCIDR", "egressInterface: ens5, privateCIDR");
    let s = parse(&set).unwrap().spec;
    assert_eq!(
        s.gateway.as_ref().unwrap().egress_interface.as_deref(),
        Some("ens5")
    );
    round_trips(&s);
    refused_at(
        &GATEWAY.replace(
            "privateCIDR",
            "egressInterface: a-very-long-interface, privateCIDR",
        ),
        "spec.gateway.egressInterface",
        "default route",
    );
    let built = GatewaySpec::new(gw.ip, gw.private_cidr);
    assert_eq!(built, gw);
}

#[test]
fn renewal_window() {
    let s = parse("").unwrap().spec;
    assert_eq!(s.pki.renewal_window(), Duration::from_secs(30 * 86_400));
    assert!(!s.to_yaml().contains("renewBefore"));
    let short = parse("  pki: { certValidity: 240h }\n").unwrap().spec;
    assert_eq!(short.pki.renewal_window(), Duration::from_secs(120 * 3600));
    let set = parse("  pki: { certValidity: 240h, renewBefore: 200h }\n")
        .unwrap()
        .spec;
    assert_eq!(set.pki.renewal_window(), Duration::from_secs(200 * 3600));
    round_trips(&set);
    refused_at(
        "  pki: { certValidity: 240h, renewBefore: 240h }\n",
        "spec.pki.renewBefore",
        "not shorter",
    );
}
