//! The ACI backend against a replay of the official ARM examples on 127.0.0.1 over HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frankenetes_cloud_azure::testing as support;

use std::time::{Duration, Instant};

use frankenetes_cloud_azure::{AZURE_TAG_KEY, BackendErrorKind, ComputeBackend};
use frankenetes_compute::{
    ClusterTag, ContainerSpec, UnitId, UnitKind, UnitSpec, UnitState, VolumeSource, VolumeSpec,
};
use serde_json::json;
use support::{FakeArm, RG, Reply, SUB, TOKEN, fixture};

fn group_id(name: &str) -> UnitId {
    UnitId(format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups/{name}"
    ))
}

fn unit(name: &str, cluster: &str) -> UnitSpec {
    let mut c = ContainerSpec::new("web", "nginx", ["nginx", "-g", "daemon off;"]);
    c.ports = vec![80];
    c.env.insert("TOKEN".into(), "env-secret-value".into());
    let mut u = UnitSpec::container_group(name, ClusterTag::new(cluster), vec![c]);
    let UnitKind::ContainerGroup(g) = &mut u.kind else {
        unreachable!()
    };
    g.dns_label = Some(format!("{name}-label"));
    // sent as "UFJJVkFURS1LRVktQllURVM=" (base64)
    g.volumes.push(VolumeSpec::new(
        "pki",
        "/etc/pki",
        VolumeSource::Secret([("tls.key".into(), b"PRIVATE-KEY-BYTES".to_vec())].into()),
    ));
    u
}

#[tokio::test]
async fn conformance_against_the_replay() {
    let arm = FakeArm::start().await.unwrap();
    arm.set_page_size(1);
    // a group of another cluster in the same resource group, to prove filtering and paging
    let mut foreign =
        fixture("ContainerGroupsGet_Succeeded.json")["responses"]["200"]["body"].clone();
    foreign["tags"] = json!({ AZURE_TAG_KEY: "someone-else" });
    arm.insert_group("demo1", foreign);
    let backend = arm.backend();
    frankenetes_compute::testing::lifecycle(&backend, unit("conf-1", "conformance")).await;

    let rec = arm.recorded();
    // every request carried the bearer token and the api-version, over our TLS server
    for r in &rec {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some(&*format!("Bearer {TOKEN}")),
            "{} {}",
            r.method,
            r.path
        );
        assert!(
            r.query.contains("api-version="),
            "{} {}?{}",
            r.method,
            r.path,
            r.query
        );
    }
    let puts: Vec<_> = rec.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "second create adopts, no second PUT");
    // the LRO of PUT and DELETE was followed
    assert!(
        rec.iter()
            .filter(|r| r.path.contains("/operations/"))
            .count()
            >= 2
    );
    // list followed nextLink (two groups, one per page)
    assert!(
        rec.iter().any(|r| r.query.contains("$skiptoken=1")),
        "nextLink followed"
    );
}

#[tokio::test]
async fn foreign_group_of_the_same_name_is_already_exists() {
    let arm = FakeArm::start().await.unwrap();
    let mut foreign =
        fixture("ContainerGroupsGet_Succeeded.json")["responses"]["200"]["body"].clone();
    foreign["tags"] = json!({ AZURE_TAG_KEY: "other" });
    arm.insert_group("demo1", foreign);
    let e = arm
        .backend()
        .create(&unit("demo1", "mine"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::AlreadyExists, "{e}");
    assert!(arm.recorded().iter().all(|r| r.method != "PUT"));
}

#[tokio::test]
async fn lro_in_progress_then_succeeded_honours_retry_after() {
    let arm = FakeArm::start().await.unwrap();
    let b = arm.backend();
    let op = "/subscriptions/x/providers/Microsoft.ContainerInstance/locations/westeurope/operations/slow";
    arm.script(
        "PUT",
        "/containerGroups/slow",
        Reply::from_fixture("ContainerGroupsCreateOrUpdate.json", "201", 201).header(
            "Azure-AsyncOperation",
            &format!("https://management.azure.com{op}?api-version=apiVersion"),
        ),
    );
    // the fixture says Retry-After: 15; 1 keeps the test short and still measurable
    let mut in_progress =
        Reply::from_fixture("synthesized/AsyncOperation_InProgress.json", "200", 200);
    in_progress.headers = vec![("Retry-After".into(), "1".into())];
    arm.script("GET", "/operations/slow", in_progress);
    arm.script(
        "GET",
        "/operations/slow",
        Reply::from_fixture("synthesized/AsyncOperation_Succeeded.json", "200", 200),
    );
    let mut got = fixture("ContainerGroupsGet_Succeeded.json")["responses"]["200"]["body"].clone();
    got["tags"] = json!({ AZURE_TAG_KEY: "lro" });
    got["name"] = json!("slow");
    arm.script(
        "GET",
        "/containerGroups/slow",
        Reply::new(
            404,
            Some(json!({"error": {"code": "ResourceNotFound", "message": "not found"}})),
        ),
    );
    arm.script("GET", "/containerGroups/slow", Reply::new(200, Some(got)));
    let t = Instant::now();
    let u = b.create(&unit("slow", "lro")).await.unwrap();
    let waited = t.elapsed();
    assert_eq!(u.state, UnitState::Running);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
    let polls = arm.recorded().iter().filter(|r| r.path == op).count();
    assert_eq!(polls, 2, "polled until Succeeded");
}

#[tokio::test]
async fn lro_failed_keeps_the_arm_code_and_events() {
    let arm = FakeArm::start().await.unwrap();
    let b = arm.backend();
    arm.script(
        "DELETE",
        "/containerGroups/demo1",
        Reply::from_fixture("ContainerGroupsDelete.json", "202", 202),
    );
    arm.script(
        "GET",
        "/operations/operationId",
        Reply::from_fixture("synthesized/AsyncOperation_Failed.json", "200", 200),
    );
    let e = b.delete(&group_id("demo1")).await.unwrap_err();
    assert_eq!(
        e.kind,
        BackendErrorKind::Transient,
        "capacity is worth retrying: {e}"
    );
    assert!(e.message.contains("ServiceUnavailable"), "{e}");
    assert!(e.message.contains("InsufficientCapacity."), "{e}");
    assert!(
        e.message.contains("not available in the location 'eastus'"),
        "{e}"
    );
}

#[tokio::test]
async fn throttled_429_is_retried_after_retry_after() {
    let arm = FakeArm::start().await.unwrap();
    let b = arm.backend();
    arm.script(
        "GET",
        "/containerGroups",
        Reply::new(
            429,
            Some(json!({"error": {"code": "TooManyRequests", "message": "slow down"}})),
        )
        .header("Retry-After", "1"),
    );
    let t = Instant::now();
    let units = b.list(&ClusterTag::new("x")).await.unwrap();
    assert!(units.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        t.elapsed()
    );
    assert_eq!(
        arm.recorded().iter().filter(|r| r.method == "GET").count(),
        2
    );
}

#[tokio::test]
async fn persistent_5xx_becomes_transient() {
    let arm = FakeArm::start().await.unwrap();
    let b = arm.backend();
    for _ in 0..4 {
        arm.script("GET", "/containerGroups/demo1", Reply::new(500, Some(json!({"error": {"code": "InternalServerError", "message": "Encountered an internal server error."}}))));
    }
    let e = b.describe(&group_id("demo1")).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::Transient, "{e}");
    assert!(e.message.contains("InternalServerError"), "{e}");
    assert_eq!(arm.recorded().len(), 4, "one try and three retries");
}

#[tokio::test]
async fn arm_errors_map_to_kinds_keeping_code_and_message() {
    // (fixture, status we serve it with: the real one is unknown, see the fixtures' README)
    let cases = [
        (
            "synthesized/CloudError_DnsNameLabelAlreadyTaken.json",
            409,
            BackendErrorKind::AlreadyExists,
            "DnsNameLabelAlreadyTaken",
            "dnsLabelPrefix",
        ),
        (
            "synthesized/CloudError_InaccessibleImage.json",
            400,
            BackendErrorKind::Other,
            "InaccessibleImage",
            "example.invalid/etcd:v0",
        ),
        (
            "synthesized/CloudError_ServiceUnavailable_Quota.json",
            409,
            BackendErrorKind::QuotaExceeded,
            "ServiceUnavailable",
            "quota 'ContainerGroups' exceeded",
        ),
    ];
    for (file, status, kind, code, text) in cases {
        let arm = FakeArm::start().await.unwrap();
        arm.script(
            "PUT",
            "/containerGroups/g",
            Reply::from_fixture(file, "default", status),
        );
        let e = arm.backend().create(&unit("g", "errs")).await.unwrap_err();
        assert_eq!(e.kind, kind, "{file}: {e}");
        assert!(
            e.message.contains(code) && e.message.contains(text),
            "{file}: {e}"
        );
        assert!(e.message.contains("create container group g"), "{e}");
    }
    // 404 on describe
    let arm = FakeArm::start().await.unwrap();
    let e = arm.backend().describe(&group_id("gone")).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::NotFound);
    // ids outside our resource group are refused without a request
    let e = arm.backend().delete(&UnitId("/subscriptions/other/resourceGroups/x/providers/Microsoft.ContainerInstance/containerGroups/a".into())).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::NotFound);
    assert!(arm.recorded().iter().all(|r| r.method != "DELETE"));
}

#[tokio::test]
async fn next_link_paging_over_the_official_pages() {
    let arm = FakeArm::start().await.unwrap();
    let mut page1 =
        fixture("ContainerGroupsListByResourceGroup.json")["responses"]["200"]["body"].clone();
    page1["value"][0]["tags"] = json!({ AZURE_TAG_KEY: "paged" });
    page1["nextLink"] = json!(format!(
        "https://management.azure.com/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups?api-version=apiVersion&$skiptoken=page2"
    ));
    let mut page2 = fixture("ContainerGroupsList.json")["responses"]["200"]["body"].clone();
    for g in page2["value"].as_array_mut().unwrap() {
        g["tags"] = json!({ AZURE_TAG_KEY: "paged" });
        g["name"] = json!("demo2");
    }
    // The list items carry no instanceView (as ARM's): each group is then read for its state.
    arm.insert_group("demo1", page1["value"][0].clone());
    arm.insert_group("demo2", page2["value"][0].clone());
    arm.script("GET", "/containerGroups", Reply::new(200, Some(page1)));
    arm.script("GET", "/containerGroups", Reply::new(200, Some(page2)));
    let units = arm.backend().list(&ClusterTag::new("paged")).await.unwrap();
    let names: Vec<_> = units.iter().map(|u| u.name.as_str()).collect();
    assert!(
        names.contains(&"demo1") && names.contains(&"demo2"),
        "{names:?}"
    );
    let rec = arm.recorded();
    assert!(rec[1].query.contains("$skiptoken=page2"));
    let reads: Vec<_> = rec[2..]
        .iter()
        .map(|r| (r.method.as_str(), r.path.rsplit('/').next().unwrap()))
        .collect();
    assert!(
        reads.contains(&("GET", "demo1")) && reads.contains(&("GET", "demo2")),
        "{reads:?}"
    );
}

#[tokio::test]
async fn the_token_never_leaves_the_configured_host() {
    let arm = FakeArm::start().await.unwrap();
    arm.script(
        "GET",
        "/containerGroups",
        Reply::new(
            200,
            Some(json!({
        "value": [], "nextLink": "https://evil.example/steal?api-version=2026-05-01" })),
        ),
    );
    let e = arm.backend().list(&ClusterTag::new("x")).await.unwrap_err();
    assert!(
        e.message.contains("evil.example") && e.message.contains("refusing"),
        "{e}"
    );
    // an LRO URL elsewhere is refused too
    arm.script(
        "DELETE",
        "/containerGroups/demo1",
        Reply::new(202, None).header("Azure-AsyncOperation", "https://attacker.example/op"),
    );
    let e = arm.backend().delete(&group_id("demo1")).await.unwrap_err();
    assert!(e.message.contains("attacker.example"), "{e}");
    assert_eq!(
        arm.recorded().len(),
        2,
        "nothing was sent anywhere after the bad links"
    );
}

#[tokio::test]
async fn stop_and_start() {
    let arm = FakeArm::start().await.unwrap();
    let b = arm.backend();
    let u = b.create(&unit("ss", "ss")).await.unwrap();
    b.stop(&u.id).await.unwrap();
    assert_eq!(b.describe(&u.id).await.unwrap().state, UnitState::Stopped);
    // A list answer has no instanceView, yet a stopped group must list as stopped.
    let listed = b.list(&ClusterTag::new("ss")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, UnitState::Stopped);
    let started = b.start(&u.id).await.unwrap();
    assert_eq!(started.state, UnitState::Running);
    assert_eq!(
        started.details.get("fqdn").map(String::as_str),
        Some("ss-label.westeurope.azurecontainer.io")
    );
    let rec = arm.recorded();
    assert!(
        rec.iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/ss/stop"))
    );
    assert!(
        rec.iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/ss/start"))
    );
}

#[tokio::test]
async fn storage_share_and_keys_never_leak() {
    let arm = FakeArm::start().await.unwrap();
    let b = arm.backend();
    b.create_file_share("sto1", "etcd-snapshots").await.unwrap();
    let keys = b.list_keys("sto1").await.unwrap();
    let official =
        fixture("StorageAccountListKeys.json")["responses"]["200"]["body"]["keys"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(keys.primary().unwrap().expose(), official);
    assert!(!format!("{keys:?}").contains(&official));
    let rec = arm.recorded();
    assert_eq!(rec[0].method, "PUT");
    assert!(
        rec[0]
            .path
            .ends_with("/storageAccounts/sto1/fileServices/default/shares/etcd-snapshots")
    );
    assert_eq!(rec[0].body, Some(json!({})));
    assert_eq!(rec[1].method, "POST");
    assert!(rec[1].path.ends_with("/storageAccounts/sto1/listKeys"));

    // a group with a file share gets the key from listKeys, and the unit never holds it
    let mut u = unit("withshare", "share");
    let UnitKind::ContainerGroup(g) = &mut u.kind else {
        unreachable!()
    };
    g.volumes.push(VolumeSpec::new(
        "snapshots",
        "/snapshots",
        VolumeSource::FileShare {
            share: "etcd-snapshots".into(),
            account: "sto1".into(),
        },
    ));
    b.create(&u).await.unwrap();
    let put = arm
        .recorded()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.ends_with("/withshare"))
        .unwrap();
    let body = put.body.unwrap();
    assert_eq!(
        body["properties"]["volumes"][1]["azureFile"]["storageAccountKey"],
        json!(official)
    );
    assert!(!format!("{u:?}").contains(&official));
    // the Debug of the backend and of its errors holds no token
    assert!(!format!("{b:?}").contains(TOKEN));
}

#[tokio::test]
async fn request_body_snapshot_has_no_secret() {
    let arm = FakeArm::start().await.unwrap();
    arm.backend().create(&unit("snap", "snap")).await.unwrap();
    let put = arm
        .recorded()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    let body = put.body.unwrap();
    let text = body.to_string();
    assert!(
        text.contains("env-secret-value"),
        "secure env goes to ARM write-only"
    );
    assert!(
        text.contains("UFJJVkFURS1LRVktQllURVM="),
        "the secret volume goes to ARM (write-only), base64"
    );
    let redacted = support::redact_body(body);
    let shown = redacted.to_string();
    assert!(
        !shown.contains("env-secret-value") && !shown.contains("UFJJVkFURS1LRVktQllURVM"),
        "{shown}"
    );
    insta::assert_json_snapshot!("generic_group_put", redacted);
}

/// The real thing: create, list, delete one tiny group. Needs `az login` (or the environment
/// below) and a resource group you may write to.
#[tokio::test]
#[ignore = "creates billed Azure resources"]
async fn real_azure_round_trip() {
    use frankenetes_cloud_azure::{AciBackend, AciConfig};
    let need =
        |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("set {k} to run the real Azure test"));
    let (sub, rg, loc) = (
        need("FRANKENETES_AZURE_SUBSCRIPTION"),
        need("FRANKENETES_AZURE_RESOURCE_GROUP"),
        need("FRANKENETES_AZURE_LOCATION"),
    );
    let cred =
        frankenetes_cloud_azure::credential(&frankenetes_spec::AzureCredentialSpec::AzureCli)
            .unwrap();
    let b = AciBackend::new(AciConfig::new(sub, rg, loc), cred);
    let suffix = std::process::id();
    let mut c = ContainerSpec::new("pause", "registry.k8s.io/pause:3.10", ["/pause"]);
    c.ports = vec![80];
    c.cpu_millis = 100;
    c.memory_mib = 128;
    let u = UnitSpec::container_group(
        format!("fk-test-{suffix}"),
        ClusterTag::new(format!("fk-test-{suffix}")),
        vec![c],
    );
    frankenetes_compute::testing::lifecycle(&b, u).await;
}
