//! frankenetes on Azure Container Instances: a [`ComputeBackend`] for ACI container groups
//! over the ARM REST API (api-version 2026-05-01), and the Azure Files calls the control plane
//! needs (create a share, list the account keys).
//!
//! ```no_run
//! use frankenetes_cloud_azure::AciBackend;
//! use frankenetes_compute::{ClusterTag, ComputeBackend};
//! use frankenetes_spec::ClusterSpec;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = ClusterSpec::load("cluster.yaml")?.spec;
//! let backend = AciBackend::from_spec(&spec)?;          // credential as the spec says
//! for unit in backend.list(&ClusterTag::new(spec.name.as_str())).await? {
//!     println!("{} {} {:?}", unit.name, unit.state, unit.details.get("fqdn"));
//! }
//! # Ok(()) }
//! ```
//!
//! How it behaves:
//! * every request goes through `azure_core`'s pipeline: 408/429/5xx and connection errors are
//!   retried with exponential backoff, honouring `Retry-After`;
//! * long-running operations (PUT, DELETE, start) are followed through `Azure-AsyncOperation`,
//!   else `Location`, honouring `Retry-After` within [`PollOptions`];
//! * ARM error bodies become [`BackendError`]s whose kind the sequencer acts on, with ARM's
//!   code and message kept (`DnsNameLabelAlreadyTaken` → `AlreadyExists`, quota →
//!   `QuotaExceeded`, `InaccessibleImage` → `Other`, throttling and 5xx → `Transient`);
//! * the bearer token is only ever sent to the configured ARM origin: an operation URL or a
//!   `nextLink` elsewhere is refused before any request is made;
//! * storage keys are [`StorageKey`]s: never logged, redacted in `Debug`.
//!
//! Images: with no `spec.backend.azure.toolsImage`, every container of every group it renders
//! (`up`, the restore chain `pause` leaves behind, the snapshot job) runs an image published
//! by its own project, from the registries listed in [`images`]: `registry.k8s.io/`
//! (Kubernetes, etcd), `docker.io/library/busybox:` (the shell steps) and
//! `mcr.microsoft.com/oss/virtual-kubelet/` (virtual-kubelet). `etcdctl` and `etcdutl` run in
//! the etcd image in exec form (no shell there); see [`images`] for the facts this relies on.

#![deny(missing_docs)]

mod arm;
mod backend;
pub mod body;
mod etcd_steps;
#[cfg(any(test, feature = "testing"))]
mod fixtures;
pub mod images;
mod platform;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Url};
use frankenetes_spec::azure::{AzureBackend, AzureCredentialSpec};
use frankenetes_spec::{BackendSpec, ClusterSpec};

pub use arm::ARM_SCOPE;
pub use backend::{AciBackend, StorageAccountKeys};
pub use body::{AZURE_TAG_KEY, StorageKey, container_group_body, unit_from_group};
pub use frankenetes_compute::{BackendError, BackendErrorKind, ComputeBackend};
pub use platform::AciPlatform;
pub use topology::{AciOptions, AciPrices, AciRole, AciTopology, ClientSecret};

/// The ACI api-version every call uses (latest stable).
pub const ACI_API_VERSION: &str = "2026-05-01";
/// The Microsoft.Storage api-version of the share and key calls.
pub const STORAGE_API_VERSION: &str = "2025-01-01";
/// Azure public cloud's ARM endpoint.
pub const ARM_ENDPOINT: &str = "https://management.azure.com/";

/// Errors setting the backend up (calls return [`BackendError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec's backend is not `azure`.
    #[error("spec.backend is {0}, not azure")]
    NotAzure(&'static str),
    /// The credential named in the spec cannot be built.
    #[error("spec.backend.azure.credential: {0}")]
    Credential(String),
    /// The endpoint is not usable.
    #[error("ARM endpoint {0}: {1}")]
    Endpoint(String, String),
}

/// How long-running operations are polled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollOptions {
    /// The shortest wait between polls (used when the service sends no `Retry-After`).
    pub interval: Duration,
    /// The longest wait between polls, whatever `Retry-After` says.
    pub max_delay: Duration,
    /// Give up (with a `Transient` error) after this long.
    pub timeout: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Where and how to talk to ARM.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AciConfig {
    /// Subscription ID.
    pub subscription_id: String,
    /// Resource group of the container groups and the storage account.
    pub resource_group: String,
    /// Region of new groups.
    pub location: String,
    /// ARM base URL (`https://management.azure.com/`); the only origin the token goes to.
    pub endpoint: Url,
    /// LRO polling.
    pub poll: PollOptions,
    /// `azure_core` client options: retry policy, transport (tests plug a client that trusts
    /// their CA here).
    pub client_options: ClientOptions,
}

impl AciConfig {
    /// A config for the public cloud with default polling and retries.
    pub fn new(
        subscription_id: impl Into<String>,
        resource_group: impl Into<String>,
        location: impl Into<String>,
    ) -> Self {
        Self {
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            location: location.into(),
            endpoint: Url::parse(ARM_ENDPOINT).unwrap_or_else(|_| unreachable!("constant URL")),
            poll: PollOptions::default(),
            client_options: ClientOptions::default(),
        }
    }

    /// The config of a spec's `backend.azure` section.
    pub fn from_azure(az: &AzureBackend) -> Self {
        Self::new(&az.subscription_id, &az.resource_group, &az.location)
    }

    /// Another ARM endpoint (sovereign clouds, tests). It must be `https`.
    pub fn with_endpoint(mut self, endpoint: &str) -> Result<Self, Error> {
        let url = Url::parse(endpoint)
            .map_err(|e| Error::Endpoint(endpoint.to_owned(), e.to_string()))?;
        if url.scheme() != "https" {
            return Err(Error::Endpoint(
                endpoint.to_owned(),
                "must be https: the bearer token is never sent in clear".into(),
            ));
        }
        self.endpoint = url;
        Ok(self)
    }

    /// Other polling.
    #[must_use]
    pub fn with_poll(mut self, poll: PollOptions) -> Self {
        self.poll = poll;
        self
    }

    /// Other `azure_core` client options (retry, transport).
    #[must_use]
    pub fn with_client_options(mut self, options: ClientOptions) -> Self {
        self.client_options = options;
        self
    }
}

/// The credential a spec names, built but not yet used (a failing one fails on the first call,
/// with a message naming `spec.backend.azure.credential`).
pub fn credential(spec: &AzureCredentialSpec) -> Result<Arc<dyn TokenCredential>, Error> {
    credential_with_env(spec, |k| std::env::var(k).ok())
}

fn credential_with_env(
    spec: &AzureCredentialSpec,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn TokenCredential>, Error> {
    let err = |e: azure_core::Error| Error::Credential(e.to_string());
    Ok(match spec {
        AzureCredentialSpec::AzureCli => {
            azure_identity::DeveloperToolsCredential::new(None).map_err(err)?
        }
        AzureCredentialSpec::ClientSecret(cs) => {
            let secret = env(&cs.secret_env).filter(|s| !s.is_empty()).ok_or_else(|| {
                Error::Credential(format!(
                    "clientSecret: the environment variable {} is not set; export the service principal's secret there",
                    cs.secret_env
                ))
            })?;
            azure_identity::ClientSecretCredential::new(
                &cs.tenant_id,
                cs.client_id.clone(),
                Secret::new(secret),
                None,
            )
            .map_err(err)?
        }
        AzureCredentialSpec::ManagedIdentity(mi) => {
            let options =
                mi.client_id
                    .as_ref()
                    .map(|id| azure_identity::ManagedIdentityCredentialOptions {
                        user_assigned_id: Some(azure_identity::UserAssignedId::ClientId(
                            id.clone(),
                        )),
                        ..Default::default()
                    });
            azure_identity::ManagedIdentityCredential::new(options).map_err(err)?
        }
        _ => {
            return Err(Error::Credential(
                "this credential kind is not supported".into(),
            ));
        }
    })
}

/// The `azure` section of a spec, or [`Error::NotAzure`].
pub fn azure_section(spec: &ClusterSpec) -> Result<&AzureBackend, Error> {
    match &spec.backend {
        BackendSpec::Azure(az) => Ok(az),
        other => Err(Error::NotAzure(other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frankenetes_spec::azure::ClientSecretSpec;

    #[test]
    fn client_secret_from_a_missing_env_var_names_it() {
        let yaml = "tenantId: 11111111-2222-3333-4444-555555555555\nclientId: app\nsecretEnv: FRANKENETES_TEST_NO_SUCH_VAR\n";
        let cs: ClientSecretSpec = serde_norway::from_str(yaml).unwrap();
        let spec = AzureCredentialSpec::ClientSecret(cs);
        let e = credential_with_env(&spec, |_| None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("FRANKENETES_TEST_NO_SUCH_VAR"), "{e}");
        assert!(credential_with_env(&spec, |_| Some("s3cret".into())).is_ok());
    }

    #[test]
    fn endpoint_must_be_https() {
        let c = AciConfig::new("s", "rg", "westeurope");
        assert!(c.clone().with_endpoint("http://127.0.0.1:1").is_err());
        assert!(c.with_endpoint("https://127.0.0.1:1").is_ok());
    }
}
