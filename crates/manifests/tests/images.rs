//! One image-name rule: every image the rendered cluster names — static pods, day-one objects,
//! kubeadm's `ClusterConfiguration` — is the spec's ([`ClusterSpec::image`]), also with a
//! mirror given with a trailing `/`, a version with build metadata (`+`, not allowed in a tag)
//! and an etcd release other than kubeadm's pin.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use frankenetes_manifests::addons::{self, AddonOptions};
use frankenetes_spec::{ClusterSpec, Image};

/// Every `image:` value of a serialized object.
fn images_in(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("image", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => images_in(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| images_in(v, out)),
        _ => {}
    }
}

fn hard_spec() -> ClusterSpec {
    common::spec(
        ["10.10.16.11", "10.10.16.12", "10.10.16.13", "10.10.16.21"],
        "  imageRepository: mirror.example:5000/k8s/\n  etcd: {version: 3.5.21}\n",
    )
}

#[test]
fn every_rendered_image_is_the_specs() {
    for mut spec in [common::lab(), hard_spec()] {
        spec.kubernetes_version = "v1.35.2-rc.1+build.7".parse().unwrap();
        let (_dir, rendered) = common::render_to_dir(&spec);
        let want = |i: Image| spec.image(i).unwrap().to_string();
        for node in rendered
            .nodes
            .iter()
            .filter(|n| n.name.starts_with("control"))
        {
            for (file, image) in [
                ("etcd", Image::Etcd),
                ("kube-apiserver", Image::ApiServer),
                ("kube-controller-manager", Image::ControllerManager),
                ("kube-scheduler", Image::Scheduler),
            ] {
                let f = node
                    .file(&format!("/etc/kubernetes/manifests/{file}.yaml"))
                    .unwrap();
                let v: serde_json::Value = serde_norway::from_slice(&f.contents).unwrap();
                let mut got = Vec::new();
                images_in(&v, &mut got);
                assert_eq!(got, [want(image)], "{}: {file}", node.name);
            }
        }
        let pki = frankenetes_pki::Pki::generate(&frankenetes_pki::PkiPlan::from(&spec)).unwrap();
        let objects = addons::objects(&spec, &pki, &AddonOptions::default()).unwrap();
        let mut got = Vec::new();
        for o in &objects {
            images_in(&o.body, &mut got);
        }
        got.sort();
        let mut expected = vec![want(Image::CoreDns), want(Image::Proxy)];
        expected.sort();
        assert_eq!(got, expected);
        // No tag with a `+`, no `//` from a trailing slash.
        for i in &got {
            assert!(!i.contains('+') && !i.contains("//"), "{i}");
        }
    }
}

#[test]
fn kubeadm_config_names_the_etcd_that_runs() {
    let spec = hard_spec();
    let cfg = addons::cluster_configuration(&spec).unwrap();
    let v = serde_json::to_value(&cfg).unwrap();
    let etcd = spec.image(Image::Etcd).unwrap();
    assert_eq!(etcd.tag, "3.5.21-0");
    assert_eq!(v["etcd"]["local"]["imageTag"], "3.5.21-0");
    // At kubeadm's pin the tag stays unset, as kubeadm writes it.
    let v = serde_json::to_value(addons::cluster_configuration(&common::lab()).unwrap()).unwrap();
    assert!(v["etcd"]["local"].get("imageTag").is_none(), "{v}");
}

#[test]
fn an_unsupported_version_names_the_field() {
    let mut spec = common::lab();
    spec.kubernetes_version = "v1.34.1".parse().unwrap();
    let e = frankenetes_manifests::check(&spec).unwrap_err();
    assert!(e.is_bad_input());
    assert_eq!(
        e.to_string(),
        "spec.kubernetesVersion: v1.34.1 is not supported; supported minors: v1.35, v1.36, v1.37"
    );
}
