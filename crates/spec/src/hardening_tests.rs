//! Issue #18 point 6: the spec refuses unusable addresses, paths that leave their directory,
//! control characters in any string, and malformed image references.

use super::*;

/// A spec that sets every optional string of the common sections (the backend is appended).
const FULL: &str = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: kubelius }
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: api.kubelius:6443
  network: { serviceCIDR: 10.96.0.0/16, podCIDR: 10.244.0.0/16, dnsDomain: cluster.local }
  pki: { caMode: intermediate, keyAlgorithm: ecdsa-p256, caValidity: 87600h, certValidity: 8760h }
  controlPlane:
    - { name: control-01, ip: 10.10.16.11 }
    - { name: control-02, ip: 10.10.16.12 }
    - { name: control-03, ip: 10.10.16.13 }
  workers:
    - { name: worker-01, ip: 10.10.16.21 }
  imageRepository: mirror.example/k8s
  etcd:
    version: 3.6.6
    imageRepository: mirror.example/etcd
    imageTag: 3.6.6-0
    dataDir: /var/lib/etcd
    extraArgs: { quota-backend-bytes: "8589934592" }
  apiServer:
    certSANs: [api.public.example, 203.0.113.10]
    extraArgs: { audit-log-maxage: "30" }
    extraVolumes:
      - { name: audit, hostPath: /var/log/kubernetes, mountPath: /var/log/k8s, readOnly: false, pathType: DirectoryOrCreate }
  controllerManager:
    extraArgs: { v: "2" }
    extraVolumes: [{ name: plugins, hostPath: /opt/plugins }]
  scheduler: { extraArgs: { v: "2" } }
  security: { anonymousAuth: all, podSecurity: { enforce: privileged, warn: baseline, audit: baseline } }
"#;

const AWS: &str = r#"  gateway:
    name: gw
    ip: 10.10.31.10
    privateCIDR: 10.10.16.0/20
    egressInterface: ens5
    tunnel: { cidr: 10.200.0.0/29, listenPort: 51820, endpoint: "vpn.kubelius.example:51820", interface: wg0 }
    peers:
      - { name: laptop, publicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", address: 10.200.0.2 }
  backend:
    aws: { region: eu-west-3, availabilityZone: eu-west-3a, instanceType: t3a.small, gatewayInstanceType: t3a.nano, ami: ami-0123456789abcdef0, loadBalancerIP: 10.10.16.10 }
"#;

const AZURE: &str = r#"  backend:
    azure:
      subscriptionId: 00000000-0000-0000-0000-000000000000
      resourceGroup: kubelius
      location: westeurope
      dnsLabelPrefix: kubelius-3f9a
      credential: { clientSecret: { tenantId: 11111111-2222-3333-4444-555555555555, clientId: app, secretEnv: MY_SECRET } }
      storageAccount: kubelius3f9a
      shareName: etcd-snapshots
      virtualKubelet: { podsResourceGroup: kubelius-pods, nodeName: vk, image: "mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:1.6.0" }
"#;

const AZURE_MI: &str = r#"  backend:
    azure:
      subscriptionId: 00000000-0000-0000-0000-000000000000
      resourceGroup: kubelius
      location: westeurope
      dnsLabelPrefix: kubelius-3f9a
      credential: { managedIdentity: { clientId: 11111111-2222-3333-4444-555555555555 } }
      storageAccount: kubelius3f9a
"#;

fn full(backend: &str) -> String {
    format!("{}{backend}", FULL.trim_start())
}

fn aws() -> String {
    full(AWS)
}

/// `aws()` with one replacement, which must apply.
fn aws_with(from: &str, to: &str) -> String {
    let base = aws();
    assert!(base.contains(from), "fixture lacks {from:?}");
    base.replacen(from, to, 1)
}

fn problems(yaml: &str) -> Vec<FieldError> {
    match ClusterSpec::from_yaml(yaml) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems(),
    }
}

#[track_caller]
fn refused_at(yaml: &str, path: &str, words: &str) {
    let got = problems(yaml);
    assert!(
        got.iter()
            .any(|p| p.path == path && p.message.contains(words)),
        "expected a problem at {path:?} mentioning {words:?}, got {got:#?}"
    );
}

#[test]
fn the_full_fixtures_are_valid() {
    for b in [AWS, AZURE, AZURE_MI] {
        let parsed = ClusterSpec::from_yaml(&full(b)).unwrap();
        let again = ClusterSpec::from_yaml(&parsed.spec.to_yaml()).unwrap();
        assert_eq!(again.spec, parsed.spec);
    }
}

#[test]
fn unusable_addresses_are_refused() {
    for (from, to, path) in [
        (
            "ip: 10.10.16.21 }",
            "ip: 255.255.255.255 }",
            "spec.workers[0].ip",
        ),
        (
            "ip: 10.10.16.12 }",
            "ip: \"::ffff:255.255.255.255\" }",
            "spec.controlPlane[1].ip",
        ),
        (
            "ip: 10.10.16.12 }",
            "ip: \"::\" }",
            "spec.controlPlane[1].ip",
        ),
        (
            "ip: 10.10.16.12 }",
            "ip: \"ff02::1\" }",
            "spec.controlPlane[1].ip",
        ),
        (
            "ip: 10.10.16.12 }",
            "ip: 224.0.0.1 }",
            "spec.controlPlane[1].ip",
        ),
        (
            "controlPlaneEndpoint: api.kubelius:6443",
            "controlPlaneEndpoint: 255.255.255.255:6443",
            "spec.controlPlaneEndpoint",
        ),
        (
            "controlPlaneEndpoint: api.kubelius:6443",
            "controlPlaneEndpoint: \"[::]:6443\"",
            "spec.controlPlaneEndpoint",
        ),
        (
            "endpoint: \"vpn.kubelius.example:51820\"",
            "endpoint: \"0.0.0.0:51820\"",
            "spec.gateway.tunnel.endpoint",
        ),
        (
            "endpoint: \"vpn.kubelius.example:51820\"",
            "endpoint: \"239.1.1.1:51820\"",
            "spec.gateway.tunnel.endpoint",
        ),
        (
            "certSANs: [api.public.example, 203.0.113.10]",
            "certSANs: [api.public.example, 0.0.0.0]",
            "spec.apiServer.certSANs[1]",
        ),
        (
            "certSANs: [api.public.example, 203.0.113.10]",
            "certSANs: [api.public.example, 255.255.255.255]",
            "spec.apiServer.certSANs[1]",
        ),
    ] {
        refused_at(&aws_with(from, to), path, "cannot be");
    }
    // The gateway's address is neither the network nor the broadcast address of its block.
    let yaml = aws_with("ip: 10.10.31.10", "ip: 10.10.31.255");
    let local = yaml.replace(
        "    aws: { region: eu-west-3, availabilityZone: eu-west-3a, instanceType: t3a.small, gatewayInstanceType: t3a.nano, ami: ami-0123456789abcdef0, loadBalancerIP: 10.10.16.10 }",
        "    local: {}",
    );
    refused_at(&local, "spec.gateway.ip", "broadcast");
    let local = local.replace("ip: 10.10.31.255", "ip: 10.10.16.0");
    refused_at(&local, "spec.gateway.ip", "network address");
    // Loopback stays allowed: the local backend runs nodes on 127.0.0.11-13.
    assert!(ClusterSpec::example().validate().is_ok());
    let lo = GOOD_LOCAL.replace("10.10.16.1", "127.0.0.1");
    ClusterSpec::from_yaml(&lo).unwrap();
}

const GOOD_LOCAL: &str = "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: { name: k }\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane: [{ name: c1, ip: 10.10.16.11 }]\n";

#[test]
fn paths_that_leave_their_directory_are_refused() {
    for (from, to, path) in [
        (
            "dataDir: /var/lib/etcd",
            "dataDir: ../../../tmp/x",
            "spec.etcd.dataDir",
        ),
        (
            "dataDir: /var/lib/etcd",
            "dataDir: /var/lib/../../tmp/x",
            "spec.etcd.dataDir",
        ),
        (
            "hostPath: /var/log/kubernetes",
            "hostPath: /var/log/../../etc",
            "spec.apiServer.extraVolumes[0].hostPath",
        ),
        (
            "mountPath: /var/log/k8s",
            "mountPath: /var/log/k8s/..",
            "spec.apiServer.extraVolumes[0].mountPath",
        ),
        (
            "hostPath: /opt/plugins",
            "hostPath: /opt/../root",
            "spec.controllerManager.extraVolumes[0].hostPath",
        ),
    ] {
        refused_at(&aws_with(from, to), path, "..");
    }
    // Node paths are absolute: a relative one would depend on the kubelet's or etcd's working
    // directory; `/` itself is no data directory.
    for (from, to, path) in [
        (
            "dataDir: /var/lib/etcd",
            "dataDir: var/lib/etcd",
            "spec.etcd.dataDir",
        ),
        ("dataDir: /var/lib/etcd", "dataDir: /", "spec.etcd.dataDir"),
        (
            "hostPath: /var/log/kubernetes",
            "hostPath: log",
            "spec.apiServer.extraVolumes[0].hostPath",
        ),
        (
            "mountPath: /var/log/k8s",
            "mountPath: k8s",
            "spec.apiServer.extraVolumes[0].mountPath",
        ),
    ] {
        refused_at(&aws_with(from, to), path, "absolute");
    }
    refused_at(
        &aws_with("pathType: DirectoryOrCreate", "pathType: Folder"),
        "spec.apiServer.extraVolumes[0].pathType",
        "DirectoryOrCreate",
    );
}

#[test]
fn control_characters_are_refused_in_free_strings() {
    for (from, to, path) in [
        (
            "imageRepository: mirror.example/k8s",
            "imageRepository: \"mirror.example/k8s\\nevil\"",
            "spec.imageRepository",
        ),
        (
            "audit-log-maxage: \"30\"",
            "audit-log-maxage: \"30\\n--anonymous-auth=true\"",
            "spec.apiServer.extraArgs.audit-log-maxage",
        ),
        (
            "audit-log-maxage: \"30\"",
            "audit-log-maxage: \"30\\u202e\"",
            "spec.apiServer.extraArgs.audit-log-maxage",
        ),
        (
            "imageTag: 3.6.6-0",
            "imageTag: \"3.6.6-0\\0\"",
            "spec.etcd.imageTag",
        ),
        (
            "ami: ami-0123456789abcdef0",
            "ami: \"ami-0123456789abcdef0\\x7f\"",
            "spec.backend.aws.ami",
        ),
        (
            "region: eu-west-3,",
            "region: \"eu-west-3\\r\",",
            "spec.backend.aws.region",
        ),
        (
            "egressInterface: ens5",
            "egressInterface: \"ens5\\t\"",
            "spec.gateway.egressInterface",
        ),
        (
            "hostPath: /var/log/kubernetes",
            "hostPath: \"/var/log/kubernetes\\n\"",
            "spec.apiServer.extraVolumes[0].hostPath",
        ),
    ] {
        refused_at(&aws_with(from, to), path, "control character");
    }
    // A bad key is named in escaped form.
    refused_at(
        &aws_with("{ v: \"2\" } }", "{ \"v\\u0007\": \"2\" } }"),
        "spec.scheduler.extraArgs.v\\u{7}",
        "control character",
    );
}

/// Every string in the document, wherever it sits, refuses a control character: found by
/// walking the YAML of fixtures that set every optional field, so a field added later is
/// covered without a new test.
#[test]
fn every_string_refuses_control_characters() {
    use serde_norway::Value;
    fn leaves(v: &Value, path: String, out: &mut Vec<(String, Vec<Step>)>, steps: Vec<Step>) {
        match v {
            Value::String(_) => out.push((path, steps)),
            Value::Sequence(s) => {
                for (i, x) in s.iter().enumerate() {
                    let mut st = steps.clone();
                    st.push(Step::Index(i));
                    leaves(x, format!("{path}[{i}]"), out, st);
                }
            }
            Value::Mapping(m) => {
                for (k, x) in m {
                    let k = k.as_str().unwrap().to_owned();
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let mut st = steps.clone();
                    st.push(Step::Key(k.clone()));
                    leaves(x, p.clone(), out, st.clone());
                    let mut st = steps.clone();
                    st.push(Step::RenameKey(k));
                    out.push((p, st));
                }
            }
            _ => {}
        }
    }
    #[derive(Clone, Debug)]
    enum Step {
        Index(usize),
        Key(String),
        RenameKey(String),
    }
    fn poison(v: &mut Value, steps: &[Step]) -> String {
        let Some(step) = steps.first() else {
            let Value::String(s) = v else {
                panic!("not a string: {v:?}")
            };
            s.push('\u{7}');
            return String::new();
        };
        match (step, v) {
            (Step::Index(i), Value::Sequence(s)) => poison(&mut s[*i], &steps[1..]),
            (Step::Key(k), Value::Mapping(m)) => {
                poison(m.get_mut(k.as_str()).unwrap(), &steps[1..])
            }
            (Step::RenameKey(k), Value::Mapping(m)) => {
                let x = m.remove(k.as_str()).unwrap();
                let bad = format!("{k}\u{7}");
                m.insert(Value::String(bad.clone()), x);
                bad
            }
            (s, v) => panic!("{s:?} does not fit {v:?}"),
        }
    }
    let mut checked = 0;
    for backend in [AWS, AZURE, AZURE_MI] {
        let yaml = full(backend);
        let doc: Value = serde_norway::from_str(&yaml).unwrap();
        let mut found = Vec::new();
        leaves(&doc, String::new(), &mut found, Vec::new());
        for (path, steps) in found {
            let mut bad = doc.clone();
            let renamed = poison(&mut bad, &steps);
            let text = serde_norway::to_string(&bad).unwrap();
            let err = ClusterSpec::from_yaml(&text)
                .expect_err(&format!("a control character in {path} was accepted"));
            // A renamed key is an unknown field of a struct (a parse error at its parent), or
            // a map key named in escaped form.
            let want = if renamed.is_empty() {
                path.clone()
            } else {
                let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
                let escaped = if parent.is_empty() {
                    renamed.escape_debug().to_string()
                } else {
                    format!("{parent}.{}", renamed.escape_debug())
                };
                if err.problems().iter().any(|p| p.path == escaped) {
                    escaped
                } else if parent.is_empty() {
                    ".".to_owned()
                } else {
                    parent.to_owned()
                }
            };
            let problems = err.problems();
            // No control character reaches the terminal: every path and message is escaped.
            for p in &problems {
                assert!(
                    !p.to_string().chars().any(crate::checks::is_forbidden_char),
                    "{path}: raw control character in {p:?}"
                );
            }
            let at = problems.iter().find(|p| p.path == want);
            assert!(
                at.is_some(),
                "{path}: want a problem at {want:?}, got {problems:#?}"
            );
            if matches!(err, Error::Invalid { .. }) {
                let at = at.unwrap();
                assert!(at.message.contains("control character"), "{path}: {at}");
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} strings checked");
}

#[test]
fn image_repositories_are_image_reference_prefixes() {
    for good in [
        "registry.k8s.io",
        "registry.k8s.io/",
        "mirror.example/k8s",
        "localhost:5000/k8s",
        "registry:5000",
        "[fd00::1]:5000/k8s",
        "Mirror.Example/k8s_x/a.b/c--d",
        "myuser",
    ] {
        let yaml = aws_with(
            "imageRepository: mirror.example/k8s",
            &format!("imageRepository: \"{good}\""),
        );
        let p = problems(&yaml);
        assert!(p.is_empty(), "{good:?} refused: {p:#?}");
    }
    for bad in [
        "",
        "/",
        "registry.k8s.io//",
        "registry k8s",
        "registry.k8s.io/K8s",
        "registry.k8s.io//x",
        "-bad.example/x",
        "registry.example:port/x",
        "registry.example/x_",
        "registry.example/x:tag",
        "registry.example/x@sha256:00",
        "https://registry.example",
    ] {
        let yaml = aws_with(
            "imageRepository: mirror.example/k8s",
            &format!("imageRepository: \"{bad}\""),
        );
        refused_at(&yaml, "spec.imageRepository", "image");
        let yaml = aws_with(
            "imageRepository: mirror.example/etcd",
            &format!("imageRepository: \"{bad}\""),
        );
        refused_at(&yaml, "spec.etcd.imageRepository", "image");
    }
    let long = format!("imageRepository: {}.example", "a".repeat(240));
    refused_at(
        &aws_with("imageRepository: mirror.example/k8s", &long),
        "spec.imageRepository",
        "255",
    );
    for bad in ["3.6.6+0", ".x", "-x", "a b", &"x".repeat(129)] {
        let yaml = aws_with("imageTag: 3.6.6-0", &format!("imageTag: \"{bad}\""));
        refused_at(&yaml, "spec.etcd.imageTag", "tag");
    }
    // A trailing slash is accepted and dropped: the same images either way.
    let yaml = aws_with(
        "imageRepository: mirror.example/k8s",
        "imageRepository: mirror.example/k8s/",
    );
    let s = ClusterSpec::from_yaml(&yaml).unwrap().spec;
    assert_eq!(s.image_repository, "mirror.example/k8s");
}

#[test]
fn unsupported_versions_are_refused_at_the_field() {
    let yaml = aws_with("kubernetesVersion: v1.35.0", "kubernetesVersion: v1.34.1");
    let err = ClusterSpec::from_yaml(&yaml).unwrap_err();
    insta::assert_snapshot!("unsupported_version", err.to_string());
    refused_at(&yaml, "spec.kubernetesVersion", "v1.35");
    // The pre-release part of a version holds only what semver allows (and becomes part of an
    // image tag).
    for bad in ["v1.35.0-rc.1\\n", "v1.35.0-rc 1", "v1.35.0-rc/1"] {
        let yaml = aws_with(
            "kubernetesVersion: v1.35.0",
            &format!("kubernetesVersion: \"{bad}\""),
        );
        refused_at(&yaml, "spec.kubernetesVersion", "version");
    }
    let yaml = aws_with(
        "kubernetesVersion: v1.35.0",
        "kubernetesVersion: v1.35.0-alpha.1.12+abc",
    );
    ClusterSpec::from_yaml(&yaml).unwrap();
}

/// The messages of the new checks, reviewed as snapshots.
#[test]
fn new_messages_read_well() {
    let cases = [
        (
            "bad_broadcast_ip",
            aws_with("ip: 10.10.16.21 }", "ip: 255.255.255.255 }"),
        ),
        (
            "bad_data_dir_leaves",
            aws_with("dataDir: /var/lib/etcd", "dataDir: ../../../tmp/x"),
        ),
        (
            "bad_control_character",
            aws_with(
                "imageRepository: mirror.example/k8s",
                "imageRepository: \"mirror.example/k8s\\nevil\"",
            ),
        ),
        (
            "bad_image_repository",
            aws_with(
                "imageRepository: mirror.example/k8s",
                "imageRepository: \"registry.example/K8s\"",
            ),
        ),
    ];
    for (name, yaml) in cases {
        let err = ClusterSpec::from_yaml(&yaml).expect_err(name);
        insta::assert_snapshot!(name, err.to_string());
    }
}
