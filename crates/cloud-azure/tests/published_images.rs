//! ACI replay: with no `toolsImage`, every container (init ones too) of every group the
//! topology renders — `up`, the restore chain `pause` leaves behind, the snapshot job — runs an
//! image from the published registries the crate documents, and nothing in the etcd image
//! needs a shell. With a `toolsImage`, the schedule and the self-deciding restore come back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use frankenetes_bootstrap::{Cluster, Options};
use frankenetes_cloud_azure::images::{BUSYBOX_IMAGE, PUBLISHED, is_published};
use frankenetes_cloud_azure::{
    AciBackend, AciOptions, AciPlatform, AciTopology, ClientSecret, StorageKey,
    container_group_body,
};
use frankenetes_compute::{ContainerSpec, UnitKind, UnitSpec};
use frankenetes_spec::ClusterSpec;

/// The spec, with a client secret for the virtual kubelet (from a variable never set).
fn spec_yaml() -> String {
    common::spec_yaml(
        "
        podsResourceGroup: kubelius-pods
        clientSecret:
          tenantId: 11111111-2222-3333-4444-555555555555
          clientId: vk-app
          secretEnv: FRANKENETES_TEST_VK_SECRET_NEVER_SET",
    )
}

/// The topology of `yaml`, rendered offline (plan calls nothing).
fn topology(yaml: &str, opts: AciOptions) -> AciTopology {
    let spec = ClusterSpec::from_yaml(yaml).unwrap().spec;
    let dir = tempfile::tempdir().unwrap();
    let backend = AciBackend::from_spec(&spec).unwrap();
    let platform = AciPlatform::new(&spec, backend, opts).unwrap();
    let c = Cluster::new(spec, platform, Options::new(dir.path()));
    let (prepared, _) = c.plan().unwrap();
    c.platform().topology(&prepared.workload).unwrap()
}

fn containers(u: &UnitSpec) -> Vec<&ContainerSpec> {
    let UnitKind::ContainerGroup(g) = &u.kind else {
        panic!("{} is not a container group", u.name)
    };
    g.init_containers.iter().chain(&g.containers).collect()
}

/// Every (group, container, image) the topology can create.
fn images(t: &AciTopology) -> Vec<(String, String, String)> {
    t.all_units()
        .flat_map(|u| {
            containers(u)
                .into_iter()
                .map(|c| (u.name.clone(), c.name.clone(), c.image.clone()))
        })
        .collect()
}

/// The images outside the published registries.
fn unpublished(t: &AciTopology) -> Vec<(String, String, String)> {
    images(t)
        .into_iter()
        .filter(|(_, _, image)| !is_published(image))
        .collect()
}

#[test]
fn no_default_image_outside_the_published_registries() {
    let t = topology(&spec_yaml(), AciOptions::default());
    let all = images(&t);
    // what is walked: up's groups, the restore chains, the snapshot job, init ones too
    for (group, container) in [
        ("kubelius-etcd-0", "etcd"),
        ("kubelius-etcd-2", "restore-fetch"),
        ("kubelius-etcd-2", "restore"),
        ("kubelius-etcd-2", "restore-install"),
        ("kubelius-snapshot", "save"),
        ("kubelius-snapshot", "ship"),
        ("kubelius-snapshot", "done"),
        ("kubelius-virtual-kubelet", "virtual-kubelet"),
        ("kubelius-apiserver-1", "kube-apiserver"),
    ] {
        assert!(
            all.iter().any(|(g, c, _)| g == group && c == container),
            "{group}/{container} not walked: {all:?}"
        );
    }
    assert_eq!(t.restore_groups.len(), 3);
    assert!(
        unpublished(&t).is_empty(),
        "outside {PUBLISHED:?}: {:?}",
        unpublished(&t)
    );
    assert!(all.iter().any(|(_, _, i)| i == BUSYBOX_IMAGE));
    assert!(
        all.iter()
            .any(|(_, _, i)| i == "registry.k8s.io/etcd:3.6.6-0")
    );

    // the check bites: the old unpublished default is caught
    let old = spec_yaml().replace(
        "      storageAccount: kubelius3f9a\n",
        "      storageAccount: kubelius3f9a\n      toolsImage: ghcr.io/frankenetes/etcd-tools:3.6\n",
    );
    let t = topology(&old, AciOptions::default());
    let bad = unpublished(&t);
    assert!(
        bad.iter()
            .any(|(g, c, _)| g == "kubelius-etcd-0" && c == "snapshot"),
        "{bad:?}"
    );
    assert!(
        bad.iter()
            .any(|(g, c, _)| g == "kubelius-snapshot" && c == "snapshot")
    );
}

#[test]
fn nothing_in_the_etcd_image_needs_a_shell() {
    let t = topology(&spec_yaml(), AciOptions::default());
    let etcd_image = "registry.k8s.io/etcd:3.6.6-0";
    let mut seen = 0;
    for u in t.all_units() {
        for c in containers(u) {
            if c.image != etcd_image {
                continue;
            }
            seen += 1;
            let exe = c.command.first().map(String::as_str).unwrap_or("");
            let base = exe.rsplit('/').next().unwrap();
            assert!(
                ["etcd", "etcdctl", "etcdutl"].contains(&base),
                "{}/{} runs {exe:?} in the etcd image",
                u.name,
                c.name
            );
            for a in &c.command {
                assert!(
                    !a.contains("$(") && !a.contains("&&") && !a.contains(';') && !a.contains('"'),
                    "{}/{}: {a:?} needs a shell",
                    u.name,
                    c.name
                );
            }
        }
    }
    // etcd ×3 (up), etcd ×3 + etcdutl restore ×3 (restore groups), health + save + verify
    assert_eq!(seen, 12);
    // and the shell steps do use one: in busybox
    for u in t.all_units() {
        for c in containers(u) {
            if c.command.first().is_some_and(|e| e == "/bin/sh") {
                assert_eq!(c.image, BUSYBOX_IMAGE, "{}/{}", u.name, c.name);
            }
        }
    }
}

#[test]
fn a_tools_image_brings_the_schedule_and_the_self_deciding_restore() {
    let yaml = spec_yaml().replace(
        "      storageAccount: kubelius3f9a\n",
        "      storageAccount: kubelius3f9a\n      toolsImage: mirror.example/etcd-tools:3.6\n      snapshotInterval: 10m\n",
    );
    let t = topology(&yaml, AciOptions::default());
    assert!(t.restore_groups.is_empty());
    assert!(
        !t.warnings.iter().any(|w| w.contains("periodic")),
        "{:?}",
        t.warnings
    );
    let etcd = containers(&t.groups[0].spec);
    let names: Vec<&str> = etcd.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["restore", "etcd", "snapshot"]);
    let sidecar = &etcd[2].command[2];
    assert!(sidecar.contains("sleep 600"), "{sidecar}");
    assert!(
        sidecar.contains("--endpoints=https://127.0.0.1:2379"),
        "{sidecar}"
    );
    let restore = &etcd[0].command[2];
    assert!(
        restore.contains("no snapshot on the share: fresh member"),
        "{restore}"
    );
    let job = containers(&t.snapshot_job);
    let save = &job[0].command[2];
    // one endpoint: etcdctl snapshot save refuses several
    assert!(
        save.contains(
            "--endpoints=https://kubelius-3f9a-etcd-0.westeurope.azurecontainer.io:2379 "
        ) && !save.contains(",https://"),
        "{save}"
    );
}

#[test]
fn virtual_kubelet_gets_its_service_principal_write_only() {
    let secret = "vk-s3cret-value-0123456789";
    let opts = AciOptions::default().with_virtual_kubelet_secret(ClientSecret::new(secret));
    assert!(!format!("{opts:?}").contains(secret));
    let t = topology(&spec_yaml(), opts);
    assert!(
        !t.warnings.iter().any(|w| w.contains("virtual-kubelet")),
        "{:?}",
        t.warnings
    );
    let vk = t
        .groups
        .iter()
        .find(|g| g.spec.name == "kubelius-virtual-kubelet")
        .unwrap();
    assert!(!format!("{vk:?}").contains(secret), "Debug shows no secret");
    let c = containers(&vk.spec)[0];
    assert_eq!(c.command[0], "/usr/bin/virtual-kubelet");
    let body = container_group_body(&vk.spec, "westeurope", Some(&StorageKey::new("k"))).unwrap();
    let env = body["properties"]["containers"][0]["properties"]["environmentVariables"]
        .as_array()
        .unwrap();
    let get = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {env:?}"))
    };
    assert_eq!(get("AZURE_CLIENT_SECRET")["secureValue"], secret);
    assert!(get("AZURE_CLIENT_SECRET").get("value").is_none());
    assert_eq!(get("AZURE_CLIENT_ID")["secureValue"], "vk-app");
    assert_eq!(
        get("AZURE_TENANT_ID")["secureValue"],
        "11111111-2222-3333-4444-555555555555"
    );

    // without the secret: no half credential, and plan says what to export
    let t = topology(&spec_yaml(), AciOptions::default());
    let w = t
        .warnings
        .iter()
        .find(|w| w.contains("virtual-kubelet gets no Azure credential"))
        .expect("a warning");
    assert!(w.contains("FRANKENETES_TEST_VK_SECRET_NEVER_SET"), "{w}");
    let vk = t
        .groups
        .iter()
        .find(|g| g.spec.name == "kubelius-virtual-kubelet")
        .unwrap();
    let c = containers(&vk.spec)[0];
    assert!(
        c.env
            .keys()
            .all(|k| !k.starts_with("AZURE_CLIENT") && k != "AZURE_TENANT_ID")
    );
}
