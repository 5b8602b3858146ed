//! Golden output: every static pod, kubeconfig (key material redacted), kubelet config and
//! unit of a three-node spec, and the shape of each Ignition config.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use frankenetes_manifests::Kubeconfig;

fn redacted(yaml: &[u8]) -> String {
    let mut k: Kubeconfig = serde_norway::from_slice(yaml).unwrap();
    for c in &mut k.clusters {
        c.cluster.certificate_authority_data = "<CA>".into();
    }
    for u in &mut k.users {
        u.user.client_certificate_data = "<cert>".into();
        u.user.client_key_data = "<key>".into();
    }
    serde_norway::to_string(&k).unwrap()
}

#[test]
fn every_rendered_file_is_reviewed() {
    let (_dir, rendered) = common::render_to_dir(&common::lab());
    for node in &rendered.nodes {
        for f in &node.files {
            let name = format!("{}{}", node.name, f.path.replace('/', "__"));
            let text = std::str::from_utf8(&f.contents).unwrap();
            if let Some(file) = f
                .path
                .strip_prefix(frankenetes_manifests::provision::ADDONS_ON_NODE)
            {
                // The day-one files, as the operator gets them (reviewed in tests/addons.rs).
                let cluster = std::path::Path::new(frankenetes_manifests::addons::ADDONS_DIR)
                    .join(file.trim_start_matches('/'));
                let (_, same) = rendered
                    .cluster_files
                    .iter()
                    .find(|(p, _)| *p == cluster)
                    .unwrap_or_else(|| panic!("{}: no {}", f.path, cluster.display()));
                assert_eq!(same.contents, f.contents, "{}", f.path);
            } else if f.path.ends_with("/pki/encryption-config.yaml") {
                // Holds the Secrets key: snapshot its shape with the keys redacted.
                let cfg: frankenetes_pki::encryption::EncryptionConfiguration =
                    serde_norway::from_slice(&f.contents).unwrap();
                let v = serde_json::to_value(&cfg).unwrap();
                let secret = cfg.write_key_secret_base64().unwrap().to_owned();
                let text = serde_norway::to_string(&v)
                    .unwrap()
                    .replace(&secret, "<key>");
                assert!(!text.contains(&secret));
                insta::assert_snapshot!(name, text);
            } else if f.path.starts_with("/etc/kubernetes/manifests/")
                || f.path.ends_with("config.yaml")
            {
                insta::assert_snapshot!(name, text);
            } else if f.path.ends_with(".conf") && f.path.starts_with("/etc/kubernetes")
                || f.path.ends_with("kubeconfig.conf")
            {
                insta::assert_snapshot!(name, redacted(&f.contents));
            } else if !f.path.contains("/pki/") && node.name == "control-01" {
                insta::assert_snapshot!(name, text);
            }
        }
        for u in &node.units {
            insta::assert_snapshot!(format!("{}__unit__{}", node.name, u.name), u.to_string());
        }
        // Ignition: which paths, with which modes, and which units, enabled or not.
        let ign: serde_json::Value = serde_json::from_str(&node.to_ignition()).unwrap();
        let shape: Vec<String> = ign["storage"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{:o} {}",
                    f["mode"].as_u64().unwrap(),
                    f["path"].as_str().unwrap()
                )
            })
            .chain(
                ign["systemd"]["units"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| format!("unit {} enabled={}", u["name"], u["enabled"])),
            )
            .collect();
        insta::assert_snapshot!(format!("{}__ignition_shape", node.name), shape.join("\n"));
    }
    // The operator's kubeconfigs (the day-one files are reviewed in tests/addons.rs).
    for (path, f) in &rendered.cluster_files {
        if path.starts_with(frankenetes_manifests::addons::ADDONS_DIR) {
            continue;
        }
        insta::assert_snapshot!(
            path.display().to_string().replace('/', "__"),
            redacted(&f.contents)
        );
    }
}
