//! `spec.backend.azure`: the control plane as Azure Container Instances, each group reachable at
//! a DNS name label chosen up front (`{label}.{region}.azurecontainer.io`).

use serde::{Deserialize, Serialize};

use crate::ClusterSpec;

/// `spec.backend.azure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AzureBackend {
    /// The subscription ID.
    pub subscription_id: String,
    /// The resource group the container groups and the storage account live in.
    pub resource_group: String,
    /// The region (`westeurope`).
    pub location: String,
    /// The prefix of every DNS name label (`kubelius` → `kubelius-etcd-0.westeurope.azurecontainer.io`).
    pub dns_label_prefix: String,
}

impl AzureBackend {
    /// Cross-field checks against the rest of the spec; `err(path, message)` per problem.
    pub(crate) fn validate(&self, _spec: &ClusterSpec, _err: &mut impl FnMut(String, String)) {}
}
