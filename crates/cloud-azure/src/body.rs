//! Pure functions between [`UnitSpec`]/[`Unit`] and ARM's `ContainerGroup` JSON (api-version
//! 2026-05-01). No I/O: tests compare their output with snapshots and the official examples.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ContainerGroupSpec, ContainerSpec, RestartPolicy,
    Unit, UnitId, UnitKind, UnitSpec, UnitState, VolumeSource,
};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

/// The tag key on every container group. Azure tag names may not contain `/`, so
/// [`ClusterTag::KEY`] (`frankenetes.dev/cluster`) is written with `-` instead.
pub const AZURE_TAG_KEY: &str = "frankenetes.dev-cluster";

/// The storage account a unit's file-share volume needs a key for, if any.
pub fn file_share_account(unit: &UnitSpec) -> Result<Option<String>, BackendError> {
    let UnitKind::ContainerGroup(group) = &unit.kind else {
        return Ok(None);
    };
    Ok(group.volumes.iter().find_map(|v| match &v.source {
        VolumeSource::FileShare { account, .. } => Some(account.clone()),
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

/// A container of `group` with the mounts of the volumes it selects.
fn container_json(
    unit: &UnitSpec,
    group: &ContainerGroupSpec,
    c: &ContainerSpec,
    init: bool,
) -> Result<Value, BackendError> {
    let mounts: Vec<Value> = group
        .mounted_volumes(c)
        .map_err(|e| BackendError::new(e.kind, format!("{}: {}", unit.name, e.message)))?
        .into_iter()
        .map(|v| {
            // secrets are read-only in ACI whatever we ask; say so
            let read_only = matches!(v.source, VolumeSource::Secret(_));
            json!({ "name": v.name, "mountPath": v.mount_path.to_string_lossy(), "readOnly": read_only })
        })
        .collect();
    let env: Vec<Value> = c
        .env
        .iter()
        // compute says env values may be secret: send them write-only.
        .map(|(k, v)| json!({ "name": k, "secureValue": v }))
        .collect();
    let mut props = Map::new();
    props.insert("image".into(), json!(c.image));
    props.insert("command".into(), json!(c.command));
    props.insert("environmentVariables".into(), Value::Array(env));
    props.insert("volumeMounts".into(), Value::Array(mounts));
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
    Ok(json!({ "name": c.name, "properties": Value::Object(props) }))
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
    for v in &group.volumes {
        let vol = match &v.source {
            VolumeSource::EmptyDir => json!({ "name": v.name, "emptyDir": {} }),
            VolumeSource::Secret(files) => {
                let b64 = base64::engine::general_purpose::STANDARD;
                let files: Map<String, Value> = files
                    .iter()
                    .map(|(k, data)| (k.clone(), Value::String(b64.encode(data))))
                    .collect();
                json!({ "name": v.name, "secret": files })
            }
            VolumeSource::FileShare { share, account } => {
                let key = key.ok_or_else(|| {
                    BackendError::new(
                        BackendErrorKind::Other,
                        format!(
                            "{}: volume {} needs the key of storage account {account}",
                            unit.name, v.name
                        ),
                    )
                })?;
                json!({ "name": v.name, "azureFile": {
                    "shareName": share,
                    "storageAccountName": account,
                    "storageAccountKey": key.expose(),
                }})
            }
            _ => {
                return Err(BackendError::new(
                    BackendErrorKind::Unsupported,
                    format!(
                        "{}: volume {} has a kind ACI cannot mount (emptyDir, secret and Azure Files only)",
                        unit.name, v.name
                    ),
                ));
            }
        };
        volumes.push(vol);
    }
    let inits = group
        .init_containers
        .iter()
        .map(|c| container_json(unit, group, c, true))
        .collect::<Result<Vec<_>, _>>()?;
    let containers = group
        .containers
        .iter()
        .map(|c| container_json(unit, group, c, false))
        .collect::<Result<Vec<_>, _>>()?;
    // an init container's ports are not the group's: it is gone before anyone connects
    let ports: BTreeSet<u16> = group
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().copied())
        .collect();
    let restart = match group.restart_policy {
        RestartPolicy::Always => "Always",
        RestartPolicy::OnFailure => "OnFailure",
        RestartPolicy::Never => "Never",
        other => {
            return Err(BackendError::new(
                BackendErrorKind::Unsupported,
                format!("{}: ACI has no restart policy {other}", unit.name),
            ));
        }
    };
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
    props.insert("restartPolicy".into(), json!(restart));
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
    use frankenetes_compute::{ContainerSpec, VolumeSpec};
    use std::collections::BTreeMap;

    fn fixture(name: &str) -> Value {
        serde_json::from_str(crate::fixtures::text(name).unwrap()).unwrap()
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
        let c = c.mounts(["data", "pki"]);
        let mut init = ContainerSpec::new("restore", "registry.k8s.io/etcd:3.6.6-0", ["sh"]);
        init.ports = vec![9999];
        init.env.insert("A".into(), "b".into());
        let group = ContainerGroupSpec::new(vec![c])
            .init_container(init)
            .dns_label("k-etcd-0")
            .volume(VolumeSpec::new(
                "data",
                "/var/lib/etcd",
                VolumeSource::EmptyDir,
            ))
            .volume(VolumeSpec::new(
                "pki",
                "/etc/kubernetes/pki",
                VolumeSource::Secret(BTreeMap::from([("ca.crt".into(), b"CERT".to_vec())])),
            ))
            .volume(VolumeSpec::new(
                "snap",
                "/snapshots",
                VolumeSource::FileShare {
                    share: "s".into(),
                    account: "a".into(),
                },
            ))
            .restart_policy(RestartPolicy::OnFailure);
        let unit = UnitSpec::from_group("g", ClusterTag::new("k"), group);
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
            json!([{"name": "A", "secureValue": "b"}])
        );
        // no `mounts`: every volume
        assert_eq!(
            init[0]["properties"]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        // `mounts`: only those, in the group's order, secrets read-only
        assert_eq!(
            body["properties"]["containers"][0]["properties"]["volumeMounts"],
            json!([
                {"name": "data", "mountPath": "/var/lib/etcd", "readOnly": false},
                {"name": "pki", "mountPath": "/etc/kubernetes/pki", "readOnly": true},
            ])
        );
        assert_eq!(body["properties"]["restartPolicy"], "OnFailure");
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

#[cfg(test)]
mod typed_errors {
    use super::*;
    use frankenetes_compute::ContainerSpec;

    #[test]
    fn a_mount_of_a_missing_volume_names_unit_container_and_volume() {
        let c = ContainerSpec::new("side", "tools", ["sh"]).mounts(["nope"]);
        let unit = UnitSpec::container_group("g1", ClusterTag::new("k"), vec![c]);
        let e = container_group_body(&unit, "westeurope", None).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Other);
        for part in ["g1", "side", "\"nope\""] {
            assert!(e.message.contains(part), "{part} not in {e}");
        }
    }

    #[test]
    fn init_containers_alone_are_not_a_group() {
        let init = ContainerSpec::new("only-init", "tools", ["sh"]);
        let unit = UnitSpec::from_group(
            "g2",
            ClusterTag::new("k"),
            frankenetes_compute::ContainerGroupSpec::new(vec![]).init_container(init),
        );
        let e = container_group_body(&unit, "westeurope", None).unwrap_err();
        assert!(e.message.contains("at least one container"), "{e}");
    }
}
