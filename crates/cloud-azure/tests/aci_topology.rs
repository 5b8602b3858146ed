//! The ACI platform driven by the deployment API (`frankenetes_bootstrap::Cluster`) through the
//! real ACI backend against the replay: each component group's request body, the pause →
//! resume sequence, down, plan and cost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use frankenetes_cloud_azure::testing as support;

use std::time::Duration;

use frankenetes_bootstrap::{Cluster, DownOptions, Options, ResumeOptions};
use frankenetes_cloud_azure::{AciOptions, AciPlatform, AciRole};
use frankenetes_spec::{ClusterSpec, San};
use support::{FakeArm, Recorded, redact_body};

fn spec() -> ClusterSpec {
    ClusterSpec::from_yaml(&common::spec_yaml("{ podsResourceGroup: kubelius-pods }"))
        .unwrap()
        .spec
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
    // published images only: etcd alone, on its emptyDir, never the SMB share; no sidecar
    // (etcd's image has no shell to loop in) and nothing to restore on a fresh cluster
    let containers = etcd0["properties"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    let mounts: Vec<&str> = containers[0]["properties"]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["etcd-pki", "data"]);
    assert!(etcd0["properties"].get("initContainers").is_none());
    assert_eq!(etcd0["properties"]["restartPolicy"], "Always");
    let vols = etcd0["properties"]["volumes"].as_array().unwrap();
    assert!(vols.iter().any(|v| {
        v["secret"]["server.key"]
            .as_str()
            .is_some_and(|s| s.len() > 100)
    }));
    assert!(
        vols.iter()
            .all(|v| v["secret"].get("healthcheck-client.key").is_none()),
        "no client key where no client runs"
    );
    assert!(
        vols.iter().any(|v| v["emptyDir"].is_object()),
        "etcd data on the group's emptyDir"
    );
    assert!(vols.iter().all(|v| v.get("azureFile").is_none()));
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
        let inits = job["properties"]["initContainers"].as_array().unwrap();
        let names: Vec<&str> = inits.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["health", "save", "verify", "ship"]);
        let argv = |c: &serde_json::Value| -> Vec<String> {
            c["properties"]["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect()
        };
        let mounts = |c: &serde_json::Value| -> Vec<String> {
            c["properties"]["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap().to_owned())
                .collect()
        };
        // etcdctl in etcd's own image, exec form, one member, a linearizable read first
        let endpoint = "--endpoints=https://kubelius-3f9a-etcd-0.westeurope.azurecontainer.io:2379";
        let health = argv(&inits[0]);
        assert_eq!(health[0], "/usr/local/bin/etcdctl");
        assert!(health.contains(&endpoint.to_owned()), "{health:?}");
        assert_eq!(health[health.len() - 2..], ["endpoint", "health"]);
        let save = argv(&inits[1]);
        assert_eq!(
            save[save.len() - 3..],
            ["snapshot", "save", "/work/snapshot.db"]
        );
        assert_eq!(
            inits[1]["properties"]["image"],
            "registry.k8s.io/etcd:3.6.6-0"
        );
        assert_eq!(mounts(&inits[1]), ["etcd-pki", "work"]);
        assert_eq!(
            argv(&inits[2])[..4],
            [
                "/usr/local/bin/etcdutl",
                "snapshot",
                "status",
                "/work/snapshot.db"
            ]
        );
        let ship = argv(&inits[3]);
        assert_eq!(
            inits[3]["properties"]["image"],
            "docker.io/library/busybox:1.37.0"
        );
        assert_eq!(mounts(&inits[3]), ["snapshots", "work"]);
        assert!(
            ship[2].contains("sha256sum -c") && ship[2].contains("/snapshots/latest"),
            "{ship:?}"
        );
        assert_eq!(
            job["properties"]["containers"][0]["properties"]["volumeMounts"],
            serde_json::json!([]),
            "the job's waiting container sees no volume"
        );
        // after the snapshot, each etcd group is re-created with the restore chain, before
        // it is stopped
        for i in 0..3 {
            let g = format!("kubelius-etcd-{i}");
            let del = pos(&|r| r.method == "DELETE" && group_of(r) == g).expect("etcd re-created");
            let put = pos(&|r| r.method == "PUT" && group_of(r) == g).expect("etcd re-created");
            let stop = pos(&|r| release(r, &g)).expect("etcd released");
            assert!(
                snap_del < del && del < put && put < stop,
                "{g}: {del} {put} {stop}"
            );
            let body = rec[put].body.as_ref().unwrap();
            let inits = body["properties"]["initContainers"].as_array().unwrap();
            let names: Vec<&str> = inits.iter().map(|c| c["name"].as_str().unwrap()).collect();
            assert_eq!(names, ["restore-fetch", "restore", "restore-install"]);
            let restore = argv(&inits[1]);
            assert_eq!(
                restore[..3],
                ["/usr/local/bin/etcdutl", "snapshot", "restore"]
            );
            assert!(
                restore.contains(&format!("--name=control-0{}", i + 1)),
                "{restore:?}"
            );
            assert!(restore.contains(&format!(
                "--initial-advertise-peer-urls=https://kubelius-3f9a-etcd-{i}.westeurope.azurecontainer.io:2380"
            )));
            assert!(argv(&inits[0])[2].contains("sha256sum"));
            assert_eq!(mounts(&inits[0]), ["data", "snapshots"]);
            assert_eq!(mounts(&inits[1]), ["data"]);
            assert_eq!(
                mounts(&body["properties"]["containers"][0]),
                ["etcd-pki", "data"],
                "etcd never mounts the share"
            );
            // the storage key came from listKeys
            let key =
                support::fixture("StorageAccountListKeys.json")["responses"]["200"]["body"]["keys"]
                    [0]["value"]
                    .clone();
            assert!(
                body["properties"]["volumes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["azureFile"]["shareName"] == "etcd-snapshots"
                        && v["azureFile"]["storageAccountKey"] == key)
            );
            if i == 1 {
                insta::assert_json_snapshot!(
                    "kubelius-etcd-1-restoring",
                    redact_body(body.clone())
                );
            }
        }
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
        assert!(
            rec.iter()
                .all(|r| !(r.method == "PUT" && group_of(r).starts_with("kubelius-etcd"))),
            "resume starts the groups pause left with their restore chain"
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
    // etcd 1 vCPU / 2 GiB, no sidecar without a toolsImage
    assert_eq!(etcd.size(), (1000, 2048));
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("no periodic etcd snapshots") && w.contains("toolsImage")),
        "{:?}",
        plan.warnings
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("virtual-kubelet gets no Azure credential")
                && w.contains("virtualKubelet.clientSecret")),
        "{:?}",
        plan.warnings
    );
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
