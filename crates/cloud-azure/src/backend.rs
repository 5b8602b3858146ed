//! [`AciBackend`]: the [`ComputeBackend`] over ACI container groups, and the storage calls.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::Method;
use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComputeBackend, Unit, UnitId, UnitSpec,
};
use frankenetes_spec::ClusterSpec;
use serde_json::{Value, json};

use crate::arm::Arm;
use crate::body::{StorageKey, container_group_body, group_tag, unit_from_group};
use crate::{ACI_API_VERSION, AciConfig, Error, STORAGE_API_VERSION};

/// The keys of a storage account (`listKeys`). `Debug` shows only their names.
#[derive(Clone)]
#[non_exhaustive]
pub struct StorageAccountKeys {
    /// `(keyName, key)` in the service's order.
    pub keys: Vec<(String, StorageKey)>,
}

impl StorageAccountKeys {
    /// The first key (what ACI's `azureFile` volume gets).
    pub fn primary(&self) -> Option<&StorageKey> {
        self.keys.first().map(|(_, k)| k)
    }
}

impl fmt::Debug for StorageAccountKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.keys.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "StorageAccountKeys({names:?}, <redacted>)")
    }
}

/// ACI container groups in one resource group, as a [`ComputeBackend`].
#[derive(Debug, Clone)]
pub struct AciBackend {
    arm: Arm,
}

impl AciBackend {
    /// A backend with a config and a credential.
    pub fn new(config: AciConfig, credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            arm: Arm::new(config, credential),
        }
    }

    /// The backend a spec's `backend.azure` section describes, with the credential it names.
    pub fn from_spec(spec: &ClusterSpec) -> Result<Self, Error> {
        let az = crate::azure_section(spec)?;
        let cred = crate::credential(&az.credential)?;
        Ok(Self::new(AciConfig::from_azure(az), cred))
    }

    /// The config in use.
    pub fn config(&self) -> &AciConfig {
        &self.arm.config
    }

    fn rg_path(&self) -> String {
        let c = &self.arm.config;
        format!(
            "subscriptions/{}/resourceGroups/{}/providers",
            c.subscription_id, c.resource_group
        )
    }

    fn group_path(&self, name: &str) -> String {
        format!(
            "{}/Microsoft.ContainerInstance/containerGroups/{name}",
            self.rg_path()
        )
    }

    /// The group name of one of our ids; ids of another subscription or resource group are
    /// refused rather than acted on.
    fn name_of<'a>(&self, id: &'a UnitId) -> Result<&'a str, BackendError> {
        let prefix = format!("/{}", self.group_path(""));
        match id.0.strip_prefix(&prefix) {
            Some(name) if !name.is_empty() && !name.contains('/') => Ok(name),
            _ => Err(BackendError::new(
                BackendErrorKind::NotFound,
                format!(
                    "azure: {id} is not a container group of resource group {}",
                    self.arm.config.resource_group
                ),
            )),
        }
    }

    async fn get_group(&self, name: &str) -> Result<Option<Value>, BackendError> {
        let url = self.arm.url(&self.group_path(name), ACI_API_VERSION)?;
        let what = format!("get container group {name}");
        let reply = self.arm.send(&what, Method::Get, url, None).await?;
        match reply.status {
            200 => Ok(Some(reply.json())),
            404 => Ok(None),
            _ => Err(crate::arm::arm_error(&what, &reply)),
        }
    }

    fn unit_or_err(&self, name: &str, group: &Value) -> Result<Unit, BackendError> {
        unit_from_group(group).ok_or_else(|| {
            BackendError::new(
                BackendErrorKind::Other,
                format!("azure: container group {name}: the service's answer has no id, name or cluster tag"),
            )
        })
    }

    /// Creates (or updates) a file share on a storage account of the resource group. Existing
    /// shares are kept as they are (`200`).
    pub async fn create_file_share(&self, account: &str, share: &str) -> Result<(), BackendError> {
        let path = format!(
            "{}/Microsoft.Storage/storageAccounts/{account}/fileServices/default/shares/{share}",
            self.rg_path()
        );
        let url = self.arm.url(&path, STORAGE_API_VERSION)?;
        self.arm
            .call(
                &format!("create file share {account}/{share}"),
                Method::Put,
                url,
                Some(&json!({})),
            )
            .await?;
        Ok(())
    }

    /// Deletes a file share (only `down --purge` does this). A missing share is fine.
    pub async fn delete_file_share(&self, account: &str, share: &str) -> Result<(), BackendError> {
        let path = format!(
            "{}/Microsoft.Storage/storageAccounts/{account}/fileServices/default/shares/{share}",
            self.rg_path()
        );
        let url = self.arm.url(&path, STORAGE_API_VERSION)?;
        match self
            .arm
            .call(
                &format!("delete file share {account}/{share}"),
                Method::Delete,
                url,
                None,
            )
            .await
        {
            Err(e) if e.kind == BackendErrorKind::NotFound => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The keys of a storage account of the resource group. Never logged.
    pub async fn list_keys(&self, account: &str) -> Result<StorageAccountKeys, BackendError> {
        let path = format!(
            "{}/Microsoft.Storage/storageAccounts/{account}/listKeys",
            self.rg_path()
        );
        let url = self.arm.url(&path, STORAGE_API_VERSION)?;
        let reply = self
            .arm
            .call(&format!("list keys of {account}"), Method::Post, url, None)
            .await?;
        let body = reply.json();
        let keys: Vec<(String, StorageKey)> = body
            .get("keys")
            .and_then(Value::as_array)
            .map(|ks| {
                ks.iter()
                    .filter_map(|k| {
                        Some((
                            k.get("keyName")?.as_str()?.to_owned(),
                            StorageKey::new(k.get("value")?.as_str()?),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                format!("azure: list keys of {account}: the answer holds no key"),
            ));
        }
        Ok(StorageAccountKeys { keys })
    }

    /// The storage key for a unit's file-share volume, if it has one.
    async fn key_for(&self, spec: &UnitSpec) -> Result<Option<StorageKey>, BackendError> {
        match crate::body::file_share_account(spec)? {
            Some(account) => Ok(self.list_keys(&account).await?.primary().cloned()),
            None => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl ComputeBackend for AciBackend {
    fn name(&self) -> &str {
        "azure"
    }

    async fn create(&self, spec: &UnitSpec) -> Result<Unit, BackendError> {
        let name = spec.name.as_str();
        if let Some(existing) = self.get_group(name).await? {
            return match group_tag(&existing) {
                Some(t) if t == spec.tag => self.unit_or_err(name, &existing),
                other => Err(BackendError::new(
                    BackendErrorKind::AlreadyExists,
                    format!(
                        "azure: container group {name} exists and belongs to {}; not touching it",
                        other
                            .map_or_else(|| "no frankenetes cluster".to_owned(), |t| t.to_string())
                    ),
                )),
            };
        }
        let key = self.key_for(spec).await?;
        let body = container_group_body(spec, &self.arm.config.location, key.as_ref())?;
        let what = format!("create container group {name}");
        let url = self.arm.url(&self.group_path(name), ACI_API_VERSION)?;
        let first = self.arm.call(&what, Method::Put, url, Some(&body)).await?;
        self.arm.wait(&what, &first).await?;
        match self.get_group(name).await? {
            Some(g) => self.unit_or_err(name, &g),
            None => Err(BackendError::new(
                BackendErrorKind::Other,
                format!("azure: {what}: the operation succeeded but the group is not there"),
            )),
        }
    }

    async fn describe(&self, id: &UnitId) -> Result<Unit, BackendError> {
        let name = self.name_of(id)?;
        match self.get_group(name).await? {
            Some(g) => self.unit_or_err(name, &g),
            None => Err(BackendError::new(
                BackendErrorKind::NotFound,
                format!("azure: container group {name} does not exist"),
            )),
        }
    }

    async fn list(&self, tag: &ClusterTag) -> Result<Vec<Unit>, BackendError> {
        let url = self.arm.url(
            &format!(
                "{}/Microsoft.ContainerInstance/containerGroups",
                self.rg_path()
            ),
            ACI_API_VERSION,
        )?;
        let items = self.arm.list_all("list container groups", url).await?;
        let mut units = Vec::new();
        for item in items.iter().filter(|g| group_tag(g).as_ref() == Some(tag)) {
            // ARM's list omits `instanceView`, the only place a stopped group shows as
            // stopped (its provisioningState stays Succeeded): read each group of the cluster.
            let full;
            let group = if item.pointer("/properties/instanceView").is_some() {
                item
            } else {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    continue;
                };
                match self.get_group(name).await? {
                    Some(g) => {
                        full = g;
                        &full
                    }
                    None => continue, // deleted since the list
                }
            };
            units.extend(unit_from_group(group));
        }
        Ok(units)
    }

    async fn delete(&self, id: &UnitId) -> Result<(), BackendError> {
        let name = self.name_of(id)?;
        let what = format!("delete container group {name}");
        let url = self.arm.url(&self.group_path(name), ACI_API_VERSION)?;
        let first = self.arm.call(&what, Method::Delete, url, None).await?;
        // 204: it did not exist; 200: deleted; 202: follow the operation.
        self.arm.wait(&what, &first).await
    }

    async fn stop(&self, id: &UnitId) -> Result<(), BackendError> {
        let name = self.name_of(id)?;
        let url = self
            .arm
            .url(&format!("{}/stop", self.group_path(name)), ACI_API_VERSION)?;
        self.arm
            .call(
                &format!("stop container group {name}"),
                Method::Post,
                url,
                None,
            )
            .await?;
        Ok(())
    }

    async fn start(&self, id: &UnitId) -> Result<Unit, BackendError> {
        let name = self.name_of(id)?;
        let what = format!("start container group {name}");
        let url = self
            .arm
            .url(&format!("{}/start", self.group_path(name)), ACI_API_VERSION)?;
        let first = self.arm.call(&what, Method::Post, url, None).await?;
        self.arm.wait(&what, &first).await?;
        self.describe(id).await
    }
}
