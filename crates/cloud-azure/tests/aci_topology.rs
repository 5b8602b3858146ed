//! The ACI platform driven by the deployment API (`frankenetes_bootstrap::Cluster`) through the
//! real ACI backend against the replay: each component group's request body, the pause →
//! resume sequence, down, plan and cost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frankenetes_cloud_azure::testing as support;

use std::time::Duration;

use frankenetes_bootstrap::{Cluster, DownOptions, Options, ResumeOptions};
use frankenetes_cloud_azure::{AciOptions, AciPlatform, AciRole};
use frankenetes_spec::{ClusterSpec, San};
use support::{FakeArm, Recorded, redact_body};

const SPEC: &str = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: kubelius }
spec:
  kubernetesVersion: v1.35.0
  controlPlane:
    - { name: control-01, ip: 10.0.0.11 }
    - { name: control-02, ip: 10.0.0.12 }
    - { name: control-03, ip: 10.0.0.13 }
  workers:
    - { name: virtual-kubelet, ip: 10.0.0.21 }
  backend:
    azure:
      subscriptionId: 00000000-0000-0000-0000-000000000000
      resourceGroup: demo
      location: westeurope
      dnsLabelPrefix: kubelius-3f9a
      credential: { azureCli: {} }
      storageAccount: kubelius3f9a
      virtualKubelet: { podsResourceGroup: kubelius-pods }
"#;

fn spec() -> ClusterSpec {
    ClusterSpec::from_yaml(SPEC).unwrap().spec
}

fn opts() -> AciOptions {
    AciOptions::default().with_waits(Duration::from_secs(20), Duration::from_millis(10))
}

/// The cluster on the replay, its working directory in `dir`.
fn cluster(arm: &FakeArm, dir: &std::path::Path) -> Cluster<AciPlatform> {
    let spec = spec();
    let platform = AciPlatform::new(&spec, arm.backend(), opts()).unwrap();
    Cluster::new(spec, platform, Options::new(dir))
}

fn group_of(r: &Recorded) -> &str {
    r.path
        .rsplit("/containerGroups/")
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
}

#[tokio::test]
async fn each_component_group_request_body() {
    let arm = FakeArm::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&arm, dir.path());
    c.up().await.unwrap();
    let pki = c.prepare(true).unwrap().pki;

    let puts: Vec<Recorded> = arm
        .recorded()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/containerGroups/"))
        .collect();
    let names: Vec<&str> = puts.iter().map(group_of).collect();
    assert_eq!(
        names,
        [
            "kubelius-etcd-0",
            "kubelius-etcd-1",
            "kubelius-etcd-2",
            "kubelius-apiserver-0",
            "kubelius-apiserver-1",
            "kubelius-apiserver-2",
            "kubelius-controller-manager",
            "kubelius-scheduler",
            "kubelius-virtual-kubelet"
        ],
        "start order"
    );
    // No secret of the PKI in any snapshot: every key and cert body is redacted.
    let secrets: Vec<String> = pki
        .leaves()
        .iter()
        .map(|l| l.key_pem().lines().nth(1).unwrap().to_owned())
        .collect();
    for put in &puts {
        let name = group_of(put).to_owned();
        let body = redact_body(put.body.clone().unwrap());
        let text = body.to_string();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{name}: a private key line is in the snapshot"
            );
        }
        assert!(!text.contains("PRIVATE KEY"), "{name}");
        insta::assert_json_snapshot!(name, body);
    }
    // The key material did reach ARM (write-only), as secret volumes, never as env.
    let etcd0 = puts[0].body.as_ref().unwrap();
    // each container mounts only what it needs: the sidecar never sees etcd's data, etcd never
    // the SMB share
    let mounts = |list: &str, name: &str| -> Vec<String> {
        let c = etcd0["properties"][list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {list}"));
        c["properties"]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(mounts("containers", "etcd"), ["etcd-pki", "data"]);
    assert_eq!(mounts("containers", "snapshot"), ["etcd-pki", "snapshots"]);
    assert_eq!(mounts("initContainers", "restore"), ["data", "snapshots"]);
    assert_eq!(etcd0["properties"]["restartPolicy"], "Always");
    let vols = etcd0["properties"]["volumes"].as_array().unwrap();
    assert!(vols.iter().any(|v| {
        v["secret"]["server.key"]
            .as_str()
            .is_some_and(|s| s.len() > 100)
    }));
    assert!(
        vols.iter().any(|v| v["emptyDir"].is_object()),
        "etcd data on the group's emptyDir"
    );
    assert!(
        vols.iter()
            .any(|v| v["azureFile"]["shareName"] == "etcd-snapshots")
    );
    // the storage key came from listKeys
    let key = support::fixture("StorageAccountListKeys.json")["responses"]["200"]["body"]["keys"]
        [0]["value"]
        .clone();
    assert!(
        vols.iter()
            .any(|v| v["azureFile"]["storageAccountKey"] == key)
    );
    // every certificate names the FQDN it is reached by
    let etcd_sans = &pki.leaf("control-02/etcd-server").unwrap().spec().sans;
    assert!(
        etcd_sans.contains(&San::Dns(
            "kubelius-3f9a-etcd-1.westeurope.azurecontainer.io"
                .try_into()
                .unwrap()
        )),
        "{etcd_sans:?}"
    );
    let api_sans = &pki.leaf("control-03/apiserver").unwrap().spec().sans;
    assert!(
        api_sans.contains(&San::Dns(
            "kubelius-3f9a-apiserver-2.westeurope.azurecontainer.io"
                .try_into()
                .unwrap()
        )),
        "{api_sans:?}"
    );
}

#[tokio::test]
async fn pause_snapshots_before_etcd_goes_and_resume_restores_before_etcd_starts() {
    {
        let arm = FakeArm::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = cluster(&arm, dir.path());
        c.up().await.unwrap();
        let before = arm.recorded().len();
        c.pause().await.unwrap();
        let rec: Vec<Recorded> = arm.recorded().into_iter().skip(before).collect();
        let pos = |pred: &dyn Fn(&Recorded) -> bool| rec.iter().position(pred);
        let release = |r: &Recorded, g: &str| {
            group_of(r) == g && r.method == "POST" && r.path.ends_with("/stop")
        };
        let snap_put = pos(&|r| r.method == "PUT" && group_of(r) == "kubelius-snapshot")
            .expect("snapshot job created");
        let snap_del = pos(&|r| r.method == "DELETE" && group_of(r) == "kubelius-snapshot")
            .expect("snapshot job removed");
        let job = rec[snap_put].body.as_ref().unwrap();
        let init = &job["properties"]["initContainers"][0];
        assert_eq!(init["name"], "snapshot");
        assert_eq!(
            init["properties"]["volumeMounts"].as_array().unwrap().len(),
            2,
            "the snapshot init container sees the client certificate and the share"
        );
        assert_eq!(
            job["properties"]["containers"][0]["properties"]["volumeMounts"],
            serde_json::json!([]),
            "the job's waiting container sees no volume"
        );
        let script = init["properties"]["command"][2].as_str().unwrap();
        assert!(
            script.contains(
                "etcdctl --endpoints=https://kubelius-3f9a-etcd-0.westeurope.azurecontainer.io:2379"
            ),
            "{script}"
        );
        assert!(
            script.contains("snapshot save") && script.contains("sha256sum -c"),
            "{script}"
        );
        for i in 0..3 {
            let api = pos(&|r| release(r, &format!("kubelius-apiserver-{i}")))
                .expect("apiserver released");
            assert!(api < snap_put, "writers stop before the final snapshot");
            let etcd = pos(&|r| release(r, &format!("kubelius-etcd-{i}"))).expect("etcd released");
            assert!(
                snap_put < etcd && snap_del < etcd,
                "snapshot before etcd-{i} goes"
            );
        }
        assert!(
            rec.iter()
                .all(|r| !r.path.contains("/shares/") || r.method != "DELETE"),
            "pause keeps the share"
        );

        let before = arm.recorded().len();
        c.resume(ResumeOptions::default()).await.unwrap();
        let rec: Vec<Recorded> = arm.recorded().into_iter().skip(before).collect();
        let started = |r: &Recorded, g: &str| {
            group_of(r) == g && r.method == "POST" && r.path.ends_with("/start")
        };
        let etcd_last = (0..3)
            .map(|i| {
                rec.iter()
                    .position(|r| started(r, &format!("kubelius-etcd-{i}")))
                    .expect("etcd back")
            })
            .max()
            .unwrap();
        let api_first = (0..3)
            .map(|i| {
                rec.iter()
                    .position(|r| started(r, &format!("kubelius-apiserver-{i}")))
                    .expect("apiserver back")
            })
            .min()
            .unwrap();
        assert!(etcd_last < api_first, "etcd is back before any apiserver");
        // in each etcd group the restore init container runs before etcd starts
        let etcd_body = arm
            .recorded()
            .into_iter()
            .find(|r| r.method == "PUT" && group_of(r) == "kubelius-etcd-1")
            .unwrap()
            .body
            .unwrap();
        let init = &etcd_body["properties"]["initContainers"][0];
        assert_eq!(init["name"], "restore");
        let restore = init["properties"]["command"][2].as_str().unwrap();
        assert!(
            restore.contains("sha256sum -c") && restore.contains("etcdutl snapshot restore"),
            "{restore}"
        );
        assert!(restore.contains("--name control-02"));
        assert!(restore.contains("--initial-advertise-peer-urls https://kubelius-3f9a-etcd-1.westeurope.azurecontainer.io:2380"));
        assert_eq!(etcd_body["properties"]["containers"][0]["name"], "etcd");
        assert!(
            etcd_body["properties"]["containers"][0]["properties"]["command"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--data-dir=/var/lib/etcd")
        );
    }
}

#[tokio::test]
async fn a_failed_snapshot_leaves_etcd_running() {
    let arm = FakeArm::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&arm, dir.path());
    c.up().await.unwrap();
    let mut failed =
        support::fixture("ContainerGroupsGet_Failed.json")["responses"]["200"]["body"].clone();
    failed["name"] = serde_json::json!("kubelius-snapshot");
    failed["tags"] = serde_json::json!({ frankenetes_cloud_azure::AZURE_TAG_KEY: "kubelius" });
    arm.script(
        "PUT",
        "/containerGroups/kubelius-snapshot",
        support::Reply::new(201, Some(failed.clone())),
    );
    arm.script(
        "GET",
        "/containerGroups/kubelius-snapshot",
        support::Reply::new(
            404,
            Some(serde_json::json!({"error": {"code": "ResourceNotFound", "message": "no"}})),
        ),
    );
    for _ in 0..3 {
        arm.script(
            "GET",
            "/containerGroups/kubelius-snapshot",
            support::Reply::new(200, Some(failed.clone())),
        );
    }
    let e = c.pause().await.unwrap_err();
    assert!(e.to_string().contains("final snapshot"), "{e}");
    assert!(
        arm.recorded()
            .iter()
            .all(|r| !((r.method == "DELETE" || r.path.ends_with("/stop"))
                && group_of(r).starts_with("kubelius-etcd"))),
        "etcd untouched"
    );
}

#[tokio::test]
async fn down_removes_every_group_and_keeps_the_share() {
    let arm = FakeArm::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&arm, dir.path());
    c.up().await.unwrap();
    let preview = c.down(DownOptions::default().dry_run(true)).await.unwrap();
    assert_eq!(preview.found.len(), 9, "{preview:?}");
    assert!(
        arm.recorded().iter().all(|r| r.method != "DELETE"),
        "a dry run deletes nothing"
    );
    let report = c.down(DownOptions::default()).await.unwrap();
    assert!(report.left.is_empty(), "{report:?}");
    let rec = arm.recorded();
    assert_eq!(rec.iter().filter(|r| r.method == "DELETE").count(), 9);
    assert!(
        rec.iter()
            .all(|r| !r.path.contains("/shares/") || r.method != "DELETE")
    );
}

#[test]
fn plan_lists_groups_fqdns_sizes_and_cost() {
    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    // Offline: the platform's backend is never called by plan.
    let backend = frankenetes_cloud_azure::AciBackend::from_spec(&spec).unwrap();
    let platform = AciPlatform::new(&spec, backend, AciOptions::default()).unwrap();
    let c = Cluster::new(spec, platform, Options::new(dir.path()));
    let (prepared, plan) = c.plan().unwrap();
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "plan writes nothing"
    );
    let topology = c.platform().topology(&prepared.workload).unwrap();
    assert_eq!(topology.groups.len(), 9);
    let etcd = &topology.groups[0];
    assert_eq!(etcd.role, AciRole::Etcd);
    assert_eq!(
        etcd.fqdn.as_deref(),
        Some("kubelius-3f9a-etcd-0.westeurope.azurecontainer.io")
    );
    // etcd 1 vCPU / 2 GiB + sidecar 0.1 vCPU / 0.25 GiB
    assert_eq!(etcd.size(), (1100, 2304));
    let p = AciOptions::default().prices;
    let expect: f64 = topology
        .groups
        .iter()
        .map(|g| {
            let (cpu, mem) = g.size();
            (f64::from(cpu) / 1000.0 * p.per_vcpu_second
                + f64::from(mem) / 1024.0 * p.per_gb_second)
                * 3600.0
        })
        .sum();
    assert!((plan.usd_per_hour() - expect).abs() < 1e-12);
    assert!(
        plan.usd_per_hour() > 0.1 && plan.usd_per_hour() < 2.0,
        "{}",
        plan.usd_per_hour()
    );
    let table = topology.table(&p, "kubelius3f9a/etcd-snapshots");
    assert!(
        table.contains("kubelius-3f9a-apiserver-2.westeurope.azurecontainer.io"),
        "{table}"
    );
    assert!(
        table.contains("azure.microsoft.com/pricing")
            && table.contains("kubelius3f9a/etcd-snapshots"),
        "{table}"
    );
    insta::assert_snapshot!("plan_table", table);
}
