//! Encryption at rest: the apiserver's `EncryptionConfiguration` for Secrets, with its keys.
//!
//! The file holds the keys inline (that is the format kube-apiserver reads), so it is a secret:
//! 0600, kept in the operator's `cluster/pki/` and copied unchanged to every control-plane
//! node's `/etc/kubernetes/pki/`. It is made once per cluster; [`crate::sync`] never replaces
//! it. [`rotate`] adds a new first key and keeps the old ones for reading.
//!
//! ```
//! use frankenetes_pki::encryption::EncryptionConfiguration;
//!
//! let cfg = EncryptionConfiguration::generate()?;
//! assert_eq!(cfg.key_names(), ["key1"]);
//! let yaml = cfg.to_yaml()?;
//! assert!(yaml.contains("secretbox") && yaml.contains("identity"));
//! assert!(!format!("{cfg:?}").contains(cfg.write_key_secret_base64().unwrap()));
//! # Ok::<(), frankenetes_pki::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Error;
use crate::fsutil::{self, SECRET_MODE};
use crate::plan::{CLUSTER_PKI, node_pki_dir};

/// The file name, in `cluster/pki/` and in each control-plane node's `/etc/kubernetes/pki/`.
pub const FILE_NAME: &str = "encryption-config.yaml";
/// The `apiVersion` written.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// The `kind` written.
pub const KIND: &str = "EncryptionConfiguration";
/// Bytes in a `secretbox` key (XSalsa20-Poly1305).
pub const KEY_LEN: usize = 32;

/// The operator's copy, relative to the output root.
pub fn master_path() -> PathBuf {
    Path::new(CLUSTER_PKI).join(FILE_NAME)
}

/// A control-plane node's copy, relative to the output root.
pub fn node_path(node: &str) -> PathBuf {
    node_pki_dir(node).join(FILE_NAME)
}

/// `EncryptionConfiguration` (`apiserver.config.k8s.io/v1`). `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct EncryptionConfiguration {
    /// `apiserver.config.k8s.io/v1`.
    pub api_version: String,
    /// `EncryptionConfiguration`.
    pub kind: String,
    /// One entry per group of resources.
    pub resources: Vec<ResourceConfiguration>,
}

impl fmt::Debug for EncryptionConfiguration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionConfiguration")
            .field("resources", &self.resources)
            .finish()
    }
}

/// `resources[]`: which resources, and the providers tried in order (the first writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResourceConfiguration {
    /// `secrets`, …
    pub resources: Vec<String>,
    /// Providers; the first encrypts new writes, all are tried for reads.
    pub providers: Vec<Provider>,
}

/// One provider: exactly one field is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Provider {
    /// XSalsa20-Poly1305 with 32-byte keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secretbox: Option<KeysProvider>,
    /// AES-CBC with PKCS#7 padding (32-byte keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aescbc: Option<KeysProvider>,
    /// No encryption: reads data written before encryption was turned on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

/// `identity: {}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Identity {}

/// `secretbox:` / `aescbc:`: named keys, the first used for writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeysProvider {
    /// The keys.
    pub keys: Vec<Key>,
}

/// A named key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Key {
    /// Its name (`key1`), stored with each encrypted value so reads find the key.
    pub name: String,
    /// The key, base64 (standard alphabet).
    pub secret: SecretString,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A string that is zeroized on drop and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretString(Zeroizing::new(s)))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl SecretString {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn new_key(name: String) -> Result<Key, Error> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    aws_lc_rs::rand::fill(bytes.as_mut_slice())
        .map_err(|_| Error::Crypto("the system random number generator failed".into()))?;
    Ok(Key {
        name,
        secret: SecretString(Zeroizing::new(STANDARD.encode(bytes.as_slice()))),
    })
}

impl EncryptionConfiguration {
    /// A new configuration: Secrets encrypted with `secretbox` under one fresh random 32-byte
    /// key (`key1`), `identity` as the read fallback for Secrets written before.
    pub fn generate() -> Result<Self, Error> {
        Ok(Self {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            resources: vec![ResourceConfiguration {
                resources: vec!["secrets".into()],
                providers: vec![
                    Provider {
                        secretbox: Some(KeysProvider {
                            keys: vec![new_key("key1".into())?],
                        }),
                        ..Provider::default()
                    },
                    Provider {
                        identity: Some(Identity {}),
                        ..Provider::default()
                    },
                ],
            }],
        })
    }

    /// Parses a file's text and checks it (see [`EncryptionConfiguration::validate`]); `path`
    /// names the file in errors.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, Error> {
        let cfg: Self = serde_norway::from_str(text).map_err(|e| Error::Encryption {
            path: path.to_owned(),
            reason: format!("not an EncryptionConfiguration: {e}"),
        })?;
        cfg.validate().map_err(|reason| Error::Encryption {
            path: path.to_owned(),
            reason,
        })?;
        Ok(cfg)
    }

    /// The YAML the apiserver reads (secret: it holds the keys).
    pub fn to_yaml(&self) -> Result<Zeroizing<String>, Error> {
        serde_norway::to_string(self)
            .map(Zeroizing::new)
            .map_err(|e| {
                Error::Crypto(format!("cannot serialize the EncryptionConfiguration: {e}"))
            })
    }

    /// What the apiserver would refuse: a wrong `apiVersion`/`kind`, no Secrets entry, a
    /// provider with zero or several types, a key that is not 32 bytes of base64, duplicate key
    /// names, or `identity` first (it would write Secrets in plain text).
    pub fn validate(&self) -> Result<(), String> {
        if self.api_version != API_VERSION || self.kind != KIND {
            return Err(format!(
                "apiVersion/kind are {}/{}, expected {API_VERSION}/{KIND}",
                self.api_version, self.kind
            ));
        }
        let secrets = self
            .secrets()
            .ok_or("no entry covers the resource `secrets`")?;
        if secrets.providers.is_empty() {
            return Err("the secrets entry has no provider".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in secrets.providers.iter().enumerate() {
            let kinds = usize::from(p.secretbox.is_some())
                + usize::from(p.aescbc.is_some())
                + usize::from(p.identity.is_some());
            if kinds != 1 {
                return Err(format!(
                    "providers[{i}] must set exactly one of secretbox, aescbc, identity"
                ));
            }
            if i == 0 && p.identity.is_some() {
                return Err(
                    "the first provider is identity: Secrets would be written in plain text".into(),
                );
            }
            for k in p.secretbox.iter().chain(&p.aescbc).flat_map(|kp| &kp.keys) {
                if !names.insert(k.name.clone()) {
                    return Err(format!("the key name {:?} is used twice", k.name));
                }
                let len = STANDARD
                    .decode(k.secret.expose())
                    .map(|b| Zeroizing::new(b).len())
                    .map_err(|_| format!("key {:?} is not base64", k.name))?;
                if len != KEY_LEN {
                    return Err(format!(
                        "key {:?} is {len} bytes, expected {KEY_LEN}",
                        k.name
                    ));
                }
            }
        }
        Ok(())
    }

    fn secrets(&self) -> Option<&ResourceConfiguration> {
        self.resources
            .iter()
            .find(|r| r.resources.iter().any(|s| s == "secrets"))
    }

    fn secrets_mut(&mut self) -> Option<&mut ResourceConfiguration> {
        self.resources
            .iter_mut()
            .find(|r| r.resources.iter().any(|s| s == "secrets"))
    }

    /// The names of the Secrets keys, the write key first.
    pub fn key_names(&self) -> Vec<String> {
        self.secrets()
            .into_iter()
            .flat_map(|r| &r.providers)
            .flat_map(|p| p.secretbox.iter().chain(&p.aescbc))
            .flat_map(|kp| kp.keys.iter().map(|k| k.name.clone()))
            .collect()
    }

    /// The base64 secret of the key new Secrets are written with (for tests and tools that
    /// decrypt etcd values; never log it).
    pub fn write_key_secret_base64(&self) -> Option<&str> {
        let p = self.secrets()?.providers.first()?;
        let kp = p.secretbox.as_ref().or(p.aescbc.as_ref())?;
        kp.keys.first().map(|k| k.secret.expose())
    }

    /// Adds a fresh key in front of the first provider's keys (so it encrypts new writes) and
    /// keeps every other key for reads. Returns the new key's name.
    pub fn add_write_key(&mut self) -> Result<String, Error> {
        let mut n = 1;
        let names = self.key_names();
        while names.contains(&format!("key{n}")) {
            n += 1;
        }
        let name = format!("key{n}");
        let key = new_key(name.clone())?;
        let secrets = self
            .secrets_mut()
            .ok_or_else(|| Error::Unsupported("no secrets entry to rotate".into()))?;
        match secrets.providers.first_mut() {
            Some(Provider {
                secretbox: Some(kp),
                ..
            })
            | Some(Provider {
                aescbc: Some(kp), ..
            }) => kp.keys.insert(0, key),
            _ => secrets.providers.insert(
                0,
                Provider {
                    secretbox: Some(KeysProvider { keys: vec![key] }),
                    ..Provider::default()
                },
            ),
        }
        Ok(name)
    }
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotateReport {
    /// The new write key.
    pub new_key: String,
    /// The keys still accepted for reads, newest first.
    pub read_keys: Vec<String>,
    /// Files rewritten, relative to the directory.
    pub written: Vec<PathBuf>,
    /// What the operator does next, in order.
    pub next_steps: Vec<String>,
}

/// Rotates the Secrets encryption key of an output directory made by `frankenetes pki` or
/// `render`: a new random key goes first in `cluster/pki/encryption-config.yaml` (new writes
/// use it), every older key stays (existing Secrets remain readable), and every control-plane
/// node's copy (`nodes/*/etc/kubernetes/pki/encryption-config.yaml`) is rewritten with the
/// same content. Node copies that differ from the operator's are an error, and nothing is
/// written.
pub fn rotate(dir: &Path) -> Result<RotateReport, Error> {
    let master = master_path();
    let full = dir.join(&master);
    let text = fsutil::read_optional(&full)?.ok_or_else(|| Error::Encryption {
        path: full.clone(),
        reason: "missing: there is no encryption key to rotate; run `frankenetes pki` (or `render`) on this directory first".into(),
    })?;
    let mut cfg = EncryptionConfiguration::from_yaml(&text, &full)?;
    let text = Zeroizing::new(text);
    // Every node copy must be the operator's before we change them all.
    let mut copies = Vec::new();
    let nodes = dir.join("nodes");
    if let Ok(rd) = std::fs::read_dir(&nodes) {
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            let rel = node_path(&n);
            if let Some(copy) = fsutil::read_optional(&dir.join(&rel))? {
                let copy = Zeroizing::new(copy);
                if *copy != *text {
                    return Err(Error::CopyDiffers {
                        copy: dir.join(&rel),
                        master: full,
                    });
                }
                copies.push(rel);
            }
        }
    }
    let new_key = cfg.add_write_key()?;
    let yaml = cfg.to_yaml()?;
    let written: Vec<PathBuf> = std::iter::once(master).chain(copies).collect();
    let batch: Vec<(PathBuf, &[u8], u32)> = written
        .iter()
        .map(|p| (dir.join(p), yaml.as_bytes(), SECRET_MODE))
        .collect();
    fsutil::write_batch(&batch)?;
    let read_keys = cfg.key_names();
    let old = read_keys.get(1).cloned().unwrap_or_default();
    Ok(RotateReport {
        next_steps: vec![
            "copy each node's etc/kubernetes/pki/encryption-config.yaml to its machine (or re-run `frankenetes up`)".into(),
            "restart every kube-apiserver, one at a time (move its static pod manifest out of /etc/kubernetes/manifests and back); until all have restarted, a Secret written by a restarted apiserver cannot be read by the others".into(),
            "rewrite every Secret with the new key: kubectl get secrets --all-namespaces -o json | kubectl replace -f -".into(),
            format!("the old keys ({}) stay for reading; once every Secret is rewritten, {old} may be removed from the file on all nodes", read_keys[1..].join(", ")),
        ],
        new_key,
        read_keys,
        written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_is_valid_and_round_trips() {
        let cfg = EncryptionConfiguration::generate().unwrap();
        cfg.validate().unwrap();
        let yaml = cfg.to_yaml().unwrap();
        let back = EncryptionConfiguration::from_yaml(&yaml, Path::new("x")).unwrap();
        assert_eq!(back, cfg);
        let other = EncryptionConfiguration::generate().unwrap();
        assert_ne!(
            other.write_key_secret_base64(),
            cfg.write_key_secret_base64(),
            "every cluster gets its own key"
        );
        assert!(!format!("{cfg:?}").contains(cfg.write_key_secret_base64().unwrap()));
    }

    #[test]
    fn bad_configs_are_refused() {
        let cfg = EncryptionConfiguration::generate().unwrap();
        let yaml = cfg.to_yaml().unwrap();
        let secret = cfg.write_key_secret_base64().unwrap();
        for (bad, why) in [
            (yaml.replace(secret, "c2hvcnQ="), "bytes"),
            (yaml.replace("secretbox", "identity"), "identity"),
            (yaml.replace("- secrets", "- configmaps"), "secrets"),
            (yaml.replace("/v1", "/v1beta1"), "apiVersion"),
        ] {
            let e = EncryptionConfiguration::from_yaml(&bad, Path::new("f.yaml")).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
            assert!(e.to_string().contains("f.yaml"), "{e}");
        }
    }

    #[test]
    fn add_write_key_keeps_the_old_ones() {
        let mut cfg = EncryptionConfiguration::generate().unwrap();
        let old = cfg.write_key_secret_base64().unwrap().to_owned();
        assert_eq!(cfg.add_write_key().unwrap(), "key2");
        assert_eq!(cfg.add_write_key().unwrap(), "key3");
        assert_eq!(cfg.key_names(), ["key3", "key2", "key1"]);
        cfg.validate().unwrap();
        let yaml = cfg.to_yaml().unwrap();
        assert!(yaml.contains(&old), "the old key stays readable");
    }
}
