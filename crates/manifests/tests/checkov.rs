//! The CIS checks of an independent scanner (`checkov`) on the README example's bundle: every
//! static pod and every node's kubelet pass all of checkov's CIS-derived component checks,
//! except what `checkov-waivers.yaml` lists with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use frankenetes_manifests::kubelet::KubeletConfiguration;
use frankenetes_manifests::{Layout, flags};
use frankenetes_spec::ClusterSpec;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    waivers: Vec<Waiver>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Waiver {
    check: String,
    kind: Kind,
    reason: String,
    #[serde(default)]
    binary: Option<String>,
    #[serde(default)]
    flag: Option<String>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    removed_in: Option<String>,
    #[serde(default)]
    only_loopback_nodes: bool,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
enum Kind {
    RemovedFlag,
    Scanner,
}

fn waivers() -> Vec<Waiver> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkov-waivers.yaml");
    let w: WaiverFile = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for x in &w.waivers {
        assert!(x.reason.len() > 40, "{}: say why", x.check);
        if x.kind == Kind::RemovedFlag {
            assert!(
                x.binary.is_some() && (x.flag.is_some() || x.plugin.is_some()),
                "{}: a removed flag names its binary and flag (or admission plugin)",
                x.check
            );
            let v = x.removed_in.as_deref().unwrap_or_default();
            assert!(
                v.starts_with("v1."),
                "{}: removedIn names the version",
                x.check
            );
        }
    }
    w.waivers
}

/// `checkov` from PATH, or a failure that says how to get it.
fn checkov() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("checkov"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`checkov` is not on PATH: run ./scripts/install-deps.sh, then put \
                 ~/.cache/frankenetes/py/bin on PATH (scripts/test.sh does)"
            )
        })
}

/// checkov's CIS component checks, found in its own source: the Kubernetes checks that
/// inspect the command line of a control-plane component or the kubelet.
fn component_checks(checkov: &Path) -> BTreeSet<String> {
    let real = std::fs::canonicalize(checkov).unwrap();
    let python = real.parent().unwrap().join("python3");
    let out = common::run(Command::new(&python).args([
        "-c",
        "import checkov, os; print(os.path.dirname(checkov.__file__))",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pkg = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let dir = pkg.join("kubernetes/checks/resource/k8s");
    let mut ids = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "py") {
            continue;
        }
        let src = std::fs::read_to_string(&p).unwrap();
        let component = [
            "\"kube-apiserver\"",
            "\"kube-controller-manager\"",
            "\"kube-scheduler\"",
            "\"kubelet\"",
            "\"etcd\"",
            "COMPONENT_TYPES",
        ]
        .iter()
        .any(|c| src.contains(c));
        if !component {
            continue;
        }
        if let Some(i) = src.find("\"CKV_K8S_") {
            let id: String = src[i + 1..].chars().take_while(|c| *c != '"').collect();
            ids.insert(id);
        }
    }
    assert!(
        ids.len() >= 50,
        "found only {} component checks in {}",
        ids.len(),
        dir.display()
    );
    ids
}

/// The rendered bundle of `spec` in a directory, plus, per node, a pod whose only purpose is to
/// show the scanner the kubelet's effective settings as a command line: the kubelet's own flags
/// and its configuration file's security settings as their equivalent flags.
fn bundle(spec: &ClusterSpec) -> tempfile::TempDir {
    // checkov skips hidden directories, and tempfile's default names start with a dot.
    let dir = tempfile::Builder::new()
        .prefix("checkov-")
        .tempdir()
        .unwrap();
    let plan = frankenetes_pki::PkiPlan::from(spec);
    let (pki, _) = frankenetes_pki::sync(&plan, dir.path(), Default::default()).unwrap();
    frankenetes_manifests::render(spec, &pki)
        .unwrap()
        .write(dir.path())
        .unwrap();
    let layout = Layout::machine(spec);
    let cfg = KubeletConfiguration::for_spec(spec);
    // The configuration is what the bundle carries.
    let on_disk: KubeletConfiguration = serde_norway::from_slice(
        &std::fs::read(
            dir.path()
                .join("nodes/control-01/var/lib/kubelet/config.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk, cfg);
    let scan = dir.path().join("kubelet-scan");
    std::fs::create_dir_all(&scan).unwrap();
    for (node, _) in spec.nodes() {
        let mut command = vec!["kubelet".to_owned()];
        let mut f = flags::kubelet(node, &layout);
        let equivalent = cfg.equivalent_flags();
        for name in equivalent.names() {
            f.set(name, equivalent.get(name).unwrap());
        }
        command.extend(f.args());
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": format!("kubelet-{}", node.name.as_str()), "namespace": "kube-system" },
            "spec": { "containers": [{ "name": "kubelet", "image": "kubelet", "command": command }] }
        });
        std::fs::write(
            scan.join(format!("{}.yaml", node.name.as_str())),
            serde_norway::to_string(&pod).unwrap(),
        )
        .unwrap();
    }
    dir
}

/// Runs the component checks on `dir`; (check id, file) of each failure, and the ids that ran.
fn scan(dir: &Path, checks: &BTreeSet<String>) -> (Vec<(String, String)>, BTreeSet<String>) {
    let ids: Vec<&str> = checks.iter().map(String::as_str).collect();
    let out = common::run(
        Command::new(checkov())
            .args(["-d"])
            .arg(dir)
            .args([
                "--framework",
                "kubernetes",
                "--output",
                "json",
                "--skip-download",
                "--compact",
                "--check",
            ])
            .arg(ids.join(","))
            .env("BC_SKIP_MAPPING", "TRUE"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let reports: Vec<serde_json::Value> = match v {
        serde_json::Value::Array(a) => a,
        o => vec![o],
    };
    let mut failed = Vec::new();
    let mut ran = BTreeSet::new();
    for r in &reports {
        let res = &r["results"];
        for c in res["failed_checks"].as_array().into_iter().flatten() {
            let id = c["check_id"].as_str().unwrap().to_owned();
            ran.insert(id.clone());
            failed.push((id, c["file_path"].as_str().unwrap().to_owned()));
        }
        for c in res["passed_checks"].as_array().into_iter().flatten() {
            ran.insert(c["check_id"].as_str().unwrap().to_owned());
        }
    }
    (failed, ran)
}

fn assert_only_waived(spec: &ClusterSpec, loopback: bool) {
    let checks = component_checks(&checkov());
    let waivers = waivers();
    let dir = bundle(spec);
    let (failed, ran) = scan(dir.path(), &checks);
    // The scanner really looked: every component check produced a result (the kubelet's too).
    let silent: Vec<&String> = checks.iter().filter(|c| !ran.contains(*c)).collect();
    assert!(
        silent.is_empty(),
        "checks that evaluated nothing: {silent:?}"
    );
    let applies = |w: &Waiver| loopback || !w.only_loopback_nodes;
    let mut unwaived: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, file) in &failed {
        if !waivers.iter().any(|w| &w.check == id && applies(w)) {
            unwaived.entry(id).or_default().push(file);
        }
    }
    assert!(
        unwaived.is_empty(),
        "checkov findings not in checkov-waivers.yaml: {unwaived:#?}"
    );
    // Every waiver still matches a finding: a list that only grows hides regressions.
    for w in waivers.iter().filter(|w| applies(w)) {
        assert!(
            failed.iter().any(|(id, _)| *id == w.check),
            "{} is waived but checkov no longer reports it: remove the waiver",
            w.check
        );
    }
    // Every control-plane node's static pods were scanned.
    for n in ["control-01", "control-02", "control-03"] {
        assert!(
            failed
                .iter()
                .any(|(_, f)| f.contains(&format!("/nodes/{n}/etc/kubernetes/manifests/"))),
            "nothing was reported for {n}'s static pods"
        );
    }
}

#[test]
fn the_readme_example_passes_checkov_but_for_the_waivers() {
    assert_only_waived(&ClusterSpec::example(), true);
}

#[test]
fn on_machine_addresses_the_loopback_waivers_do_not_apply() {
    assert_only_waived(&common::lab(), false);
}

/// A removed flag that is waived must stay removed: if it appears in a flag inventory again,
/// the waiver is wrong and the flag should be set.
#[test]
fn waived_removed_flags_are_absent_from_every_inventory() {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("flags")];
    let shared = Path::new("/work/shared/reference/flags");
    if shared.is_dir() {
        dirs.push(shared.to_owned());
    }
    let mut checked = 0;
    for w in waivers() {
        let (Some(binary), Some(flag)) = (&w.binary, &w.flag) else {
            continue;
        };
        for d in &dirs {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if !name.starts_with(&format!("{binary}-")) || !name.ends_with(".txt") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    !text.lines().any(|l| l.trim() == format!("--{flag}")),
                    "{}: --{flag} is back in {}; set it and drop the waiver of {}",
                    w.check,
                    p.display(),
                    w.check
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "no inventory was checked");
}

/// Every flag the kubelet scan uses exists in the kubelet's inventory (the configuration file's
/// settings are real kubelet settings, not invented for the scanner).
#[test]
fn the_kubelets_equivalent_flags_exist() {
    let spec = ClusterSpec::example();
    let inv = frankenetes_manifests::Inventory::kubernetes(
        frankenetes_manifests::Binary::Kubelet,
        spec.kubernetes_version.minor,
    )
    .unwrap();
    let f = KubeletConfiguration::for_spec(&spec).equivalent_flags();
    f.check(&inv, "kubelet configuration", &Default::default())
        .unwrap();
    assert_eq!(f.get("anonymous-auth"), Some("false"));
    assert_eq!(f.get("read-only-port"), Some("0"));
}

/// The scan can fail: a relaxation in `spec.security` is a finding nobody waived.
#[test]
fn a_relaxation_shows_up_as_a_finding() {
    let checks = component_checks(&checkov());
    let mut spec = common::lab();
    spec.security.profiling = true;
    spec.security.audit_log = false;
    let dir = bundle(&spec);
    let (failed, _) = scan(dir.path(), &checks);
    let ids: BTreeSet<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    for id in ["CKV_K8S_90", "CKV_K8S_107", "CKV_K8S_114", "CKV_K8S_91"] {
        assert!(ids.contains(id), "{id} not reported: {ids:?}");
    }
}

/// `kubernetes-validate --strict` accepts the hardened static pods (new volumes and mounts
/// included) against the rendered version's schema. It has no schema for the apiserver's
/// configuration kinds (EncryptionConfiguration, audit Policy, AdmissionConfiguration,
/// AuthenticationConfiguration): it says so, and those are checked through their typed
/// structs (deny_unknown_fields) in the unit tests instead.
#[test]
fn kubernetes_validate_accepts_the_static_pods() {
    let kv = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`kubernetes-validate` is not on PATH: run ./scripts/install-deps.sh, then put \\
                 ~/.cache/frankenetes/py/bin on PATH (scripts/test.sh does)"
            )
        });
    let spec = ClusterSpec::example();
    let dir = bundle(&spec);
    let node = dir.path().join("nodes/control-01/etc/kubernetes");
    let version = format!("1.{}.0", spec.kubernetes_version.minor);
    let mut args = vec!["--strict".to_owned(), "-k".into(), version];
    for p in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        args.push(
            node.join(format!("manifests/{p}.yaml"))
                .display()
                .to_string(),
        );
    }
    let out = common::run(Command::new(&kv).args(&args));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.matches("passed for resource pod/").count(),
        4,
        "{text}"
    );
    let out = common::run(
        Command::new(&kv)
            .args(["-k", "1.35.0"])
            .arg(node.join("pki/encryption-config.yaml")),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("Couldn't find schema for kind EncryptionConfiguration"),
        "{said}"
    );
}
