//! Pure functions between [`UnitSpec`]/[`Unit`] and ARM's `ContainerGroup` JSON (api-version
//! 2026-05-01). No I/O: tests compare their output with snapshots and the official examples.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ContainerSpec, Unit, UnitId, UnitKind, UnitSpec,
    UnitState, VolumeSource,
};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

/// The tag key on every container group. Azure tag names may not contain `/`, so
/// [`ClusterTag::KEY`] (`frankenetes.dev/cluster`) is written with `-` instead.
pub const AZURE_TAG_KEY: &str = "frankenetes.dev-cluster";

/// A container whose name starts with this is sent as an ACI *init container* (run to
/// completion, in order, before the others start), under the rest of its name.
/// `frankenetes-compute` has no init containers yet; `:` cannot appear in an ACI name, so the
/// marker cannot clash with a real container.
pub const INIT_PREFIX: &str = "init:";

/// Until `frankenetes-compute` can build a `VolumeSpec` outside its crate (it is
/// `#[non_exhaustive]` without a constructor), volumes may also come as JSON in this
/// environment variable of the group's first container: a list of ACI volume objects plus a
/// `mountPath`, e.g. `[{"name":"pki","mountPath":"/etc/kubernetes/pki","secret":{"ca.crt":"<base64>"}},
/// {"name":"data","mountPath":"/var/lib/etcd","emptyDir":{}},
/// {"name":"snapshots","mountPath":"/snapshots","azureFile":{"shareName":"s","storageAccountName":"a"}}]`.
/// It is removed from the environment before the request is built; its secret contents are
/// never logged (compute's `Debug` shows env keys only).
pub const VOLUMES_ENV: &str = "FRANKENETES_ACI_VOLUMES";

/// One volume, from compute's `VolumeSpec` or the [`VOLUMES_ENV`] bridge.
#[derive(Clone)]
struct Vol {
    name: String,
    mount_path: String,
    kind: VolKind,
}

#[derive(Clone)]
enum VolKind {
    EmptyDir,
    Secret(Map<String, Value>),
    File { share: String, account: String },
}

fn volumes_of(unit: &UnitSpec) -> Result<Vec<Vol>, BackendError> {
    let UnitKind::ContainerGroup(group) = &unit.kind else {
        return Ok(Vec::new());
    };
    let bad = |why: String| {
        BackendError::new(
            BackendErrorKind::Other,
            format!("{}: volumes: {why}", unit.name),
        )
    };
    let mut out = Vec::new();
    for v in &group.volumes {
        let kind = match &v.source {
            VolumeSource::EmptyDir => VolKind::EmptyDir,
            VolumeSource::Secret(files) => {
                let b64 = base64::engine::general_purpose::STANDARD;
                VolKind::Secret(
                    files
                        .iter()
                        .map(|(k, data)| (k.clone(), Value::String(b64.encode(data))))
                        .collect(),
                )
            }
            VolumeSource::FileShare { share, account } => VolKind::File {
                share: share.clone(),
                account: account.clone(),
            },
            _ => return Err(bad(format!("{} has a kind ACI cannot mount", v.name))),
        };
        out.push(Vol {
            name: v.name.clone(),
            mount_path: v.mount_path.to_string_lossy().into_owned(),
            kind,
        });
    }
    if let Some(json) = group
        .containers
        .first()
        .and_then(|c| c.env.get(VOLUMES_ENV))
    {
        let list: Vec<Value> = serde_json::from_str(json)
            .map_err(|e| bad(format!("{VOLUMES_ENV} is not JSON: {e}")))?;
        for v in list {
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            let name = s("name").ok_or_else(|| bad("a volume has no name".into()))?;
            let mount_path =
                s("mountPath").ok_or_else(|| bad(format!("{name} has no mountPath")))?;
            let kind = if v.get("emptyDir").is_some() {
                VolKind::EmptyDir
            } else if let Some(Value::Object(files)) = v.get("secret") {
                VolKind::Secret(files.clone())
            } else if let Some(af) = v.get("azureFile") {
                let f = |k: &str| af.get(k).and_then(Value::as_str).map(str::to_owned);
                VolKind::File {
                    share: f("shareName").ok_or_else(|| bad(format!("{name}: no shareName")))?,
                    account: f("storageAccountName")
                        .ok_or_else(|| bad(format!("{name}: no storageAccountName")))?,
                }
            } else {
                return Err(bad(format!("{name}: only emptyDir, secret and azureFile")));
            };
            out.push(Vol {
                name,
                mount_path,
                kind,
            });
        }
    }
    Ok(out)
}

/// The storage account a unit's file-share volume needs a key for, if any.
pub fn file_share_account(unit: &UnitSpec) -> Result<Option<String>, BackendError> {
    Ok(volumes_of(unit)?.into_iter().find_map(|v| match v.kind {
        VolKind::File { account, .. } => Some(account),
        _ => None,
    }))
}

/// A storage account key: used for `azureFile` volumes, never logged, never in `Debug`.
#[derive(Clone)]
pub struct StorageKey(Zeroizing<String>);

impl StorageKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }
    /// The key itself (to hand to ARM or an SMB client; never print it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

fn cpu(millis: u32) -> Value {
    let cores = f64::from(millis.max(10)) / 1000.0;
    json!((cores * 100.0).round() / 100.0)
}

fn memory_gb(mib: u32) -> Value {
    // ACI wants GB in steps of 0.1.
    let gb = (f64::from(mib) / 1024.0 * 10.0).ceil() / 10.0;
    json!(gb.max(0.1))
}

fn container_json(c: &ContainerSpec, name: &str, mounts: &[Value], init: bool) -> Value {
    let env: Vec<Value> = c
        .env
        .iter()
        .filter(|(k, _)| k.as_str() != VOLUMES_ENV)
        // compute says env values may be secret: send them write-only.
        .map(|(k, v)| json!({ "name": k, "secureValue": v }))
        .collect();
    let mut props = Map::new();
    props.insert("image".into(), json!(c.image));
    props.insert("command".into(), json!(c.command));
    props.insert("environmentVariables".into(), Value::Array(env));
    props.insert("volumeMounts".into(), Value::Array(mounts.to_vec()));
    if !init {
        let ports: Vec<Value> = c
            .ports
            .iter()
            // as in the official example: the protocol only on the group's ports
            .map(|p| json!({ "port": p }))
            .collect();
        props.insert("ports".into(), Value::Array(ports));
        props.insert(
            "resources".into(),
            json!({ "requests": { "cpu": cpu(c.cpu_millis), "memoryInGB": memory_gb(c.memory_mib) } }),
        );
    }
    json!({ "name": name, "properties": Value::Object(props) })
}

/// The `ContainerGroup` body of a PUT for `unit` in `location`. `key` is the storage account
/// key for `FileShare` volumes (looked up by the backend with `listKeys`).
pub fn container_group_body(
    unit: &UnitSpec,
    location: &str,
    key: Option<&StorageKey>,
) -> Result<Value, BackendError> {
    let UnitKind::ContainerGroup(group) = &unit.kind else {
        return Err(BackendError::new(
            BackendErrorKind::Unsupported,
            format!(
                "azure runs container groups, not machines ({} is a machine)",
                unit.name
            ),
        ));
    };
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for v in volumes_of(unit)? {
        let (vol, read_only) = match v.kind {
            VolKind::EmptyDir => (json!({ "name": v.name, "emptyDir": {} }), false),
            VolKind::Secret(files) => (json!({ "name": v.name, "secret": files }), true),
            VolKind::File { share, account } => {
                let key = key.ok_or_else(|| {
                    BackendError::new(
                        BackendErrorKind::Other,
                        format!(
                            "{}: volume {} needs the key of storage account {account}",
                            unit.name, v.name
                        ),
                    )
                })?;
                (
                    json!({ "name": v.name, "azureFile": {
                        "shareName": share,
                        "storageAccountName": account,
                        "storageAccountKey": key.expose(),
                    }}),
                    false,
                )
            }
        };
        volumes.push(vol);
        mounts.push(json!({ "name": v.name, "mountPath": v.mount_path, "readOnly": read_only }));
    }
    let mut containers = Vec::new();
    let mut inits = Vec::new();
    let mut ports = BTreeSet::new();
    for c in &group.containers {
        match c.name.strip_prefix(INIT_PREFIX) {
            Some(name) => inits.push(container_json(c, name, &mounts, true)),
            None => {
                ports.extend(c.ports.iter().copied());
                containers.push(container_json(c, &c.name, &mounts, false));
            }
        }
    }
    if containers.is_empty() {
        return Err(BackendError::new(
            BackendErrorKind::Other,
            format!(
                "{}: a container group needs at least one container",
                unit.name
            ),
        ));
    }
    let mut props = Map::new();
    props.insert("containers".into(), Value::Array(containers));
    if !inits.is_empty() {
        props.insert("initContainers".into(), Value::Array(inits));
    }
    props.insert("osType".into(), json!("Linux"));
    props.insert("restartPolicy".into(), json!("Always"));
    if !ports.is_empty() || group.dns_label.is_some() {
        let mut ip = Map::new();
        ip.insert("type".into(), json!("Public"));
        ip.insert(
            "ports".into(),
            Value::Array(
                ports
                    .iter()
                    .map(|p| json!({ "port": p, "protocol": "TCP" }))
                    .collect(),
            ),
        );
        if let Some(label) = &group.dns_label {
            ip.insert("dnsNameLabel".into(), json!(label));
            // The only scope whose FQDN is known before creation ({label}.{region}.azurecontainer.io).
            ip.insert(
                "autoGeneratedDomainNameLabelScope".into(),
                json!("Unsecure"),
            );
        }
        props.insert("ipAddress".into(), Value::Object(ip));
    }
    if !volumes.is_empty() {
        props.insert("volumes".into(), Value::Array(volumes));
    }
    Ok(json!({
        "location": location,
        "tags": { AZURE_TAG_KEY: unit.tag.cluster },
        "properties": Value::Object(props),
    }))
}

/// The cluster tag of a group, if it carries one.
pub fn group_tag(group: &Value) -> Option<ClusterTag> {
    group
        .pointer(&format!("/tags/{AZURE_TAG_KEY}"))
        .and_then(Value::as_str)
        .map(ClusterTag::new)
}

/// A [`Unit`] from a `ContainerGroup` returned by GET, PUT or a list.
pub fn unit_from_group(group: &Value) -> Option<Unit> {
    let id = group.get("id")?.as_str()?;
    let name = group.get("name")?.as_str()?;
    let tag = group_tag(group)?;
    let props = group.get("properties");
    let prov = props
        .and_then(|p| p.get("provisioningState"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let instance = props
        .and_then(|p| p.pointer("/instanceView/state"))
        .and_then(Value::as_str);
    let state = match (prov, instance) {
        ("Failed" | "Canceled" | "Unhealthy", _) => UnitState::Failed,
        (_, Some("Stopped")) => UnitState::Stopped,
        (_, Some("Failed")) => UnitState::Failed,
        ("Succeeded", Some("Running") | None) => UnitState::Running,
        _ => UnitState::Pending,
    };
    let mut unit = Unit::new(UnitId(id.to_owned()), name, tag, state);
    if let Some(ip) = props
        .and_then(|p| p.pointer("/ipAddress/ip"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
    {
        unit.addresses.push(ip);
    }
    if let Some(fqdn) = props
        .and_then(|p| p.pointer("/ipAddress/fqdn"))
        .and_then(Value::as_str)
    {
        unit.details.insert("fqdn".into(), fqdn.to_owned());
    }
    unit.details
        .insert("provisioningState".into(), prov.to_owned());
    if let Some(s) = instance {
        unit.details.insert("instanceState".into(), s.to_owned());
    }
    if let Some(loc) = group.get("location").and_then(Value::as_str) {
        unit.details.insert("location".into(), loc.to_owned());
    }
    Some(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use frankenetes_compute::ContainerSpec;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../../shared/fixtures/azure-aci/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path)
            .or_else(|_| std::fs::read_to_string(format!("/work/shared/fixtures/azure-aci/{name}")))
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn official_get_examples_become_units() {
        let mut ok =
            fixture("ContainerGroupsGet_Succeeded.json")["responses"]["200"]["body"].clone();
        ok["tags"] = json!({ AZURE_TAG_KEY: "kubelius" });
        let u = unit_from_group(&ok).unwrap();
        assert_eq!(u.name, "demo1");
        assert_eq!(u.tag, ClusterTag::new("kubelius"));
        assert_eq!(u.state, UnitState::Running);
        assert_eq!(
            u.addresses,
            vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        let mut failed =
            fixture("ContainerGroupsGet_Failed.json")["responses"]["200"]["body"].clone();
        failed["tags"] = json!({ AZURE_TAG_KEY: "kubelius" });
        assert_eq!(unit_from_group(&failed).unwrap().state, UnitState::Failed);
        // an untagged group is not ours
        ok["tags"] = json!({});
        assert!(unit_from_group(&ok).is_none());
    }

    #[test]
    fn body_has_the_shape_of_the_official_example() {
        let mut c = ContainerSpec::new("etcd", "registry.k8s.io/etcd:3.6.6-0", ["etcd"]);
        c.ports = vec![2379, 2380];
        let mut init = ContainerSpec::new("init:restore", "registry.k8s.io/etcd:3.6.6-0", ["sh"]);
        init.ports = vec![9999];
        let mut unit = UnitSpec::container_group("g", ClusterTag::new("k"), vec![init, c]);
        let UnitKind::ContainerGroup(g) = &mut unit.kind else {
            unreachable!()
        };
        g.dns_label = Some("k-etcd-0".into());
        g.containers[0].env.insert(VOLUMES_ENV.into(), json!([
            {"name": "data", "mountPath": "/var/lib/etcd", "emptyDir": {}},
            {"name": "pki", "mountPath": "/etc/kubernetes/pki", "secret": {"ca.crt": "Q0VSVA=="}},
            {"name": "snap", "mountPath": "/snapshots", "azureFile": {"shareName": "s", "storageAccountName": "a"}},
        ]).to_string());
        assert_eq!(file_share_account(&unit).unwrap().as_deref(), Some("a"));
        assert!(
            container_group_body(&unit, "westeurope", None).is_err(),
            "file share needs a key"
        );
        let body =
            container_group_body(&unit, "westeurope", Some(&StorageKey::new("KEY"))).unwrap();
        let example =
            &fixture("ContainerGroupsCreateOrUpdate.json")["parameters"]["containerGroup"];
        // every key we send exists in the official request example at the same place
        fn keys_subset(ours: &Value, theirs: &Value, path: &str) {
            match (ours, theirs) {
                (Value::Object(a), Value::Object(b)) => {
                    for (k, v) in a {
                        if path.ends_with("/tags") || path.ends_with("/secret") {
                            continue;
                        }
                        // in the 2026-05-01 OpenAPI (reference §5) but not in this example
                        // (tags: top-level in the OpenAPI, shown by the Update example)
                        if (path == "/properties" && k == "restartPolicy")
                            || (path.is_empty() && k == "tags")
                        {
                            continue;
                        }
                        let t = b
                            .get(k)
                            .unwrap_or_else(|| panic!("{path}/{k} not in the official example"));
                        keys_subset(v, t, &format!("{path}/{k}"));
                    }
                }
                (Value::Array(a), Value::Array(b)) if !b.is_empty() => {
                    for v in a {
                        // compare with the example's element that has the most keys in common
                        let best = b
                            .iter()
                            .max_by_key(|t| match (v, t) {
                                (Value::Object(x), Value::Object(y)) => {
                                    x.keys().filter(|k| y.contains_key(*k)).count()
                                }
                                _ => 0,
                            })
                            .unwrap();
                        keys_subset(v, best, &format!("{path}[]"));
                    }
                }
                _ => {}
            }
        }
        let mut without_init = body.clone();
        let init = without_init["properties"]
            .as_object_mut()
            .unwrap()
            .remove("initContainers")
            .unwrap();
        keys_subset(&without_init, example, "");
        assert_eq!(init[0]["name"], "restore");
        assert!(init[0]["properties"].get("ports").is_none());
        assert_eq!(
            init[0]["properties"]["environmentVariables"],
            json!([]),
            "the bridge is not sent"
        );
        assert_eq!(
            init[0]["properties"]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            body["properties"]["ipAddress"]["ports"],
            json!([{"port": 2379, "protocol": "TCP"}, {"port": 2380, "protocol": "TCP"}])
        );
        assert_eq!(
            body["properties"]["volumes"][1]["secret"]["ca.crt"],
            "Q0VSVA=="
        );
        assert_eq!(body["tags"][AZURE_TAG_KEY], "k");
        assert!(!format!("{:?}", StorageKey::new("KEY")).contains("KEY\""));
    }
}
