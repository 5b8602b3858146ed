//! `spec.backend.azure`: the control plane as Azure Container Instances, each group reachable at
//! a DNS name label chosen up front (`{label}.{region}.azurecontainer.io`).
//!
//! Because every label is known before anything is created, every SAN and URL of the cluster
//! (etcd's client and peer URLs, `--initial-cluster`, the apiserver's URL and the default
//! `controlPlaneEndpoint`) names these FQDNs; the `ip` of each control-plane node is then only
//! an identity (it must still be unique) and is not put in any certificate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scalar::GoDuration;
use crate::{ClusterSpec, NodeSpec};

/// `spec.backend.azure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AzureBackend {
    /// The subscription ID.
    pub subscription_id: String,
    /// The resource group the container groups and the storage account live in.
    pub resource_group: String,
    /// The region (`westeurope`), lower case without spaces, as in the FQDNs.
    pub location: String,
    /// The prefix of every DNS name label (`kubelius` → `kubelius-etcd-0.westeurope.azurecontainer.io`).
    /// Labels are unique per region across all of Azure: add a random suffix (`kubelius-3f9a`).
    pub dns_label_prefix: String,
    /// How to authenticate to Azure Resource Manager: `{azureCli: {}}`, `{clientSecret: {...}}`
    /// or `{managedIdentity: {...}}`. Explicit on purpose: no guessing from the environment.
    pub credential: AzureCredentialSpec,
    /// The storage account holding the etcd snapshot share (3–24 lower-case letters and digits,
    /// globally unique; it must exist).
    pub storage_account: String,
    /// The Azure Files share etcd snapshots go to (created by `up`, kept by `pause` and by
    /// `down` unless `--purge`). Default `etcd-snapshots`.
    #[serde(default = "default_share")]
    pub share_name: String,
    /// How often the snapshot sidecar saves etcd to the share (default 15m; at least 1m).
    /// `pause` always takes one more.
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: GoDuration,
    /// How many snapshots the sidecar keeps on the share (default 8).
    #[serde(default = "default_snapshots_kept")]
    pub snapshots_kept: u32,
    /// An optional virtual-kubelet group that runs the cluster's pods as ACI groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_kubelet: Option<VirtualKubeletSpec>,
    /// `toolsImage`: an image with `sh`, `etcdctl`, `etcdutl` and `sha256sum`. Given, it runs
    /// the periodic snapshot sidecar, a restore that decides at start whether it is needed, and
    /// `pause`'s snapshot job. Absent: only images their projects publish run (etcd's own
    /// image, exec form, plus busybox for the shell steps), and there is no periodic snapshot
    /// (etcd's images have no shell to loop in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_image: Option<String>,
}

/// `spec.backend.azure.credential`: exactly one key, like `spec.backend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CredentialFields", into = "CredentialFields")]
#[non_exhaustive]
pub enum AzureCredentialSpec {
    /// The Azure CLI's login (`az login`), through the developer-tools credential chain.
    AzureCli,
    /// A service principal; the secret is read from an environment variable, never the file.
    ClientSecret(ClientSecretSpec),
    /// The managed identity of the machine running frankenetes (system-assigned when
    /// `clientId` is absent).
    ManagedIdentity(ManagedIdentitySpec),
}

/// The YAML shape of `credential`: one optional key per kind, exactly one set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    azure_cli: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<ClientSecretSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    managed_identity: Option<ManagedIdentitySpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl TryFrom<CredentialFields> for AzureCredentialSpec {
    type Error = String;
    fn try_from(f: CredentialFields) -> Result<Self, String> {
        match (f.azure_cli, f.client_secret, f.managed_identity) {
            (Some(_), None, None) => Ok(Self::AzureCli),
            (None, Some(c), None) => Ok(Self::ClientSecret(c)),
            (None, None, Some(m)) => Ok(Self::ManagedIdentity(m)),
            _ => Err("name exactly one credential: `azureCli: {}`, `clientSecret: {tenantId, clientId, secretEnv}` or `managedIdentity: {}`".into()),
        }
    }
}

impl From<AzureCredentialSpec> for CredentialFields {
    fn from(c: AzureCredentialSpec) -> Self {
        let mut f = CredentialFields::default();
        match c {
            AzureCredentialSpec::AzureCli => f.azure_cli = Some(Empty {}),
            AzureCredentialSpec::ClientSecret(c) => f.client_secret = Some(c),
            AzureCredentialSpec::ManagedIdentity(m) => f.managed_identity = Some(m),
        }
        f
    }
}

/// `credential.clientSecret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientSecretSpec {
    /// The tenant (directory) ID.
    pub tenant_id: String,
    /// The application (client) ID.
    pub client_id: String,
    /// The environment variable holding the secret (default `AZURE_CLIENT_SECRET`).
    #[serde(default = "default_secret_env")]
    pub secret_env: String,
}

/// `credential.managedIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ManagedIdentitySpec {
    /// The client ID of a user-assigned identity; absent for the system-assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `spec.backend.azure.virtualKubelet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct VirtualKubeletSpec {
    /// The resource group pods are created in (separate from the control plane's, so that
    /// `down` of the control plane never touches workloads and vice versa).
    pub pods_resource_group: String,
    /// The node name virtual-kubelet registers (default `virtual-kubelet`).
    #[serde(default = "default_vk_node")]
    pub node_name: String,
    /// The image (default the upstream ACI provider's).
    #[serde(default = "default_vk_image")]
    pub image: String,
    /// The service principal the ACI provider authenticates with (it reads
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`; the secret is read from
    /// `secretEnv` when the groups are rendered and sent to ARM write-only). Absent: the
    /// group gets no credential and `plan` says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecretSpec>,
}

fn default_share() -> String {
    "etcd-snapshots".into()
}
fn default_snapshot_interval() -> GoDuration {
    GoDuration::new(Duration::from_secs(15 * 60))
}
fn default_snapshots_kept() -> u32 {
    8
}
fn default_secret_env() -> String {
    "AZURE_CLIENT_SECRET".into()
}
fn default_vk_node() -> String {
    "virtual-kubelet".into()
}
fn default_vk_image() -> String {
    "mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:1.6.0".into()
}

/// The control-plane components that get their own container group and DNS label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AciComponent {
    /// One etcd member (with its snapshot sidecar).
    Etcd,
    /// One kube-apiserver.
    ApiServer,
}

impl AciComponent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::ApiServer => "apiserver",
        }
    }
}

/// The suffix every ACI FQDN ends with (the `Unsecure` label scope, the only one whose FQDN is
/// known before creation).
pub const ACI_DNS_SUFFIX: &str = "azurecontainer.io";

impl AzureBackend {
    /// A section with the defaults for what is optional.
    pub fn new(
        subscription_id: impl Into<String>,
        resource_group: impl Into<String>,
        location: impl Into<String>,
        dns_label_prefix: impl Into<String>,
        storage_account: impl Into<String>,
    ) -> Self {
        Self {
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            location: location.into(),
            dns_label_prefix: dns_label_prefix.into(),
            credential: AzureCredentialSpec::AzureCli,
            storage_account: storage_account.into(),
            share_name: default_share(),
            snapshot_interval: default_snapshot_interval(),
            snapshots_kept: default_snapshots_kept(),
            virtual_kubelet: None,
            tools_image: None,
        }
    }

    /// The DNS name label of a component on the `index`-th control-plane node:
    /// `{prefix}-{component}-{index}` (`kubelius-etcd-0`).
    pub fn dns_label(&self, component: AciComponent, index: usize) -> String {
        format!("{}-{}-{index}", self.dns_label_prefix, component.as_str())
    }

    /// The FQDN of a DNS name label: `{label}.{location}.azurecontainer.io`.
    pub fn fqdn(&self, label: &str) -> String {
        format!("{label}.{}.{ACI_DNS_SUFFIX}", self.location)
    }

    /// The FQDN of a component of a control-plane node (by its position in `spec.controlPlane`).
    pub fn component_fqdn(&self, component: AciComponent, index: usize) -> String {
        self.fqdn(&self.dns_label(component, index))
    }

    /// Cross-field checks against the rest of the spec; `err(path, message)` per problem.
    pub(crate) fn validate(&self, spec: &ClusterSpec, err: &mut impl FnMut(String, String)) {
        let p = |f: &str| format!("spec.backend.azure.{f}");
        if !is_guid(&self.subscription_id) {
            err(
                p("subscriptionId"),
                format!(
                    "{:?} is not a subscription ID; copy it from `az account show --query id -o tsv`",
                    self.subscription_id
                ),
            );
        }
        if !valid_resource_group(&self.resource_group) {
            err(
                p("resourceGroup"),
                format!(
                    "{:?} is not a resource group name (1-90 letters, digits, '-', '_', '.', '(', ')'; not ending in '.')",
                    self.resource_group
                ),
            );
        }
        if self.location.is_empty()
            || !self
                .location
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            err(
                p("location"),
                format!(
                    "{:?} is not a region name as it appears in FQDNs; write it in lower case without spaces (westeurope, eastus)",
                    self.location
                ),
            );
        }
        let longest = spec.control_plane.len().saturating_sub(1);
        let longest_label = self.dns_label(AciComponent::ApiServer, longest);
        match label_problem(&self.dns_label_prefix) {
            Some(why) => err(
                p("dnsLabelPrefix"),
                format!("{:?} {why}", self.dns_label_prefix),
            ),
            None if longest_label.len() > 63 => err(
                p("dnsLabelPrefix"),
                format!(
                    "{longest_label:?} would be {} characters; DNS labels allow 63, shorten the prefix",
                    longest_label.len()
                ),
            ),
            None => {}
        }
        if self.storage_account.len() < 3
            || self.storage_account.len() > 24
            || !self
                .storage_account
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            err(
                p("storageAccount"),
                format!(
                    "{:?} is not a storage account name (3-24 lower-case letters and digits)",
                    self.storage_account
                ),
            );
        }
        let share_ok = (3..=63).contains(&self.share_name.len())
            && label_problem(&self.share_name).is_none()
            && !self.share_name.contains("--");
        if !share_ok {
            err(
                p("shareName"),
                format!(
                    "{:?} is not a file share name (3-63 lower-case letters, digits and single '-')",
                    self.share_name
                ),
            );
        }
        if self.snapshot_interval.get() < Duration::from_secs(60) {
            err(
                p("snapshotInterval"),
                format!(
                    "{} is shorter than one minute; snapshots that often would starve etcd",
                    self.snapshot_interval
                ),
            );
        }
        if self.snapshots_kept == 0 {
            err(
                p("snapshotsKept"),
                "keep at least one snapshot, or resume has nothing to restore".into(),
            );
        }
        match &self.credential {
            AzureCredentialSpec::AzureCli => {}
            AzureCredentialSpec::ClientSecret(cs) => {
                check_client_secret(cs, &p("credential.clientSecret"), err);
            }
            AzureCredentialSpec::ManagedIdentity(_) => {}
        }
        if let Some(t) = &self.tools_image
            && let Some(why) = crate::images::reference_problem(t)
        {
            err(p("toolsImage"), why);
        }
        if let Some(vk) = &self.virtual_kubelet {
            if let Some(why) = crate::images::reference_problem(&vk.image) {
                err(p("virtualKubelet.image"), why);
            }
            if let Err(e) = crate::NodeName::try_from(vk.node_name.as_str()) {
                err(p("virtualKubelet.nodeName"), e.to_string());
            }
            if let Some(cs) = &vk.client_secret {
                check_client_secret(cs, &p("virtualKubelet.clientSecret"), err);
            }
            if !valid_resource_group(&vk.pods_resource_group) {
                err(
                    p("virtualKubelet.podsResourceGroup"),
                    format!("{:?} is not a resource group name", vk.pods_resource_group),
                );
            } else if vk
                .pods_resource_group
                .eq_ignore_ascii_case(&self.resource_group)
            {
                err(
                    p("virtualKubelet.podsResourceGroup"),
                    "use a resource group of its own for pods, not the control plane's".into(),
                );
            }
        }
    }

    /// The position of a node in `spec.controlPlane`, which numbers its labels.
    pub(crate) fn index_of(spec: &ClusterSpec, node: &NodeSpec) -> usize {
        spec.control_plane
            .iter()
            .position(|n| n.name == node.name)
            .unwrap_or(0)
    }
}

/// The checks of a `clientSecret` section at `path`.
fn check_client_secret(cs: &ClientSecretSpec, path: &str, err: &mut impl FnMut(String, String)) {
    if !is_guid(&cs.tenant_id) {
        err(
            format!("{path}.tenantId"),
            format!("{:?} is not a tenant ID (a GUID)", cs.tenant_id),
        );
    }
    if cs.client_id.is_empty() {
        err(
            format!("{path}.clientId"),
            "give the application (client) ID".into(),
        );
    }
    if cs.secret_env.is_empty()
        || !cs
            .secret_env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        err(
            format!("{path}.secretEnv"),
            format!(
                "{:?} is not an environment variable name; the secret itself never goes in the file",
                cs.secret_env
            ),
        );
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn valid_resource_group(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 90
        && !s.ends_with('.')
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

fn label_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("is empty");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may only hold lower-case letters, digits and '-'");
    }
    if !s.as_bytes()[0].is_ascii_lowercase() {
        return Some("must start with a lower-case letter");
    }
    if s.ends_with('-') {
        return Some("must not end with '-'");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendSpec, San};

    pub(crate) const AZURE_YAML: &str = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: kubelius }
spec:
  kubernetesVersion: v1.35.0
  controlPlane:
    - { name: control-01, ip: 10.0.0.11 }
    - { name: control-02, ip: 10.0.0.12 }
    - { name: control-03, ip: 10.0.0.13 }
  backend:
    azure:
      subscriptionId: 00000000-0000-0000-0000-000000000000
      resourceGroup: kubelius
      location: westeurope
      dnsLabelPrefix: kubelius-3f9a
      credential: { azureCli: {} }
      storageAccount: kubelius3f9a
"#;

    fn spec() -> ClusterSpec {
        ClusterSpec::from_yaml(AZURE_YAML).unwrap().spec
    }

    fn dns(s: &str) -> San {
        San::Dns(s.try_into().unwrap())
    }

    #[test]
    fn parses_with_defaults() {
        let s = spec();
        let BackendSpec::Azure(az) = &s.backend else {
            panic!("not azure")
        };
        assert_eq!(az.share_name, "etcd-snapshots");
        assert_eq!(az.snapshot_interval.get(), Duration::from_secs(900));
        assert_eq!(az.credential, AzureCredentialSpec::AzureCli);
        assert!(az.virtual_kubelet.is_none());
        // round trip
        let again = ClusterSpec::from_yaml(&s.to_yaml()).unwrap().spec;
        assert_eq!(again, s);
    }

    #[test]
    fn every_url_names_the_fqdns() {
        let s = spec();
        let n1 = &s.control_plane[1];
        assert_eq!(
            s.etcd_client_url(n1),
            "https://kubelius-3f9a-etcd-1.westeurope.azurecontainer.io:2379"
        );
        assert_eq!(
            s.etcd_peer_url(n1),
            "https://kubelius-3f9a-etcd-1.westeurope.azurecontainer.io:2380"
        );
        assert_eq!(
            s.etcd_initial_cluster(),
            "control-01=https://kubelius-3f9a-etcd-0.westeurope.azurecontainer.io:2380,\
             control-02=https://kubelius-3f9a-etcd-1.westeurope.azurecontainer.io:2380,\
             control-03=https://kubelius-3f9a-etcd-2.westeurope.azurecontainer.io:2380"
        );
        assert_eq!(
            s.control_plane_url(),
            "https://kubelius-3f9a-apiserver-0.westeurope.azurecontainer.io:6443"
        );
        assert_eq!(
            s.local_api_url(n1),
            "https://kubelius-3f9a-apiserver-1.westeurope.azurecontainer.io:6443"
        );
        for url in s.etcd_endpoints() {
            assert!(url.contains(".westeurope.azurecontainer.io:2379"), "{url}");
        }
    }

    #[test]
    fn every_san_names_the_fqdns_not_the_placeholder_ip() {
        let s = spec();
        for (i, n) in s.control_plane.iter().enumerate() {
            let api = s.apiserver_sans(n);
            assert!(api.contains(&dns(&format!(
                "kubelius-3f9a-apiserver-{i}.westeurope.azurecontainer.io"
            ))));
            // the endpoint (the first apiserver) is in every apiserver's certificate
            assert!(api.contains(&dns(
                "kubelius-3f9a-apiserver-0.westeurope.azurecontainer.io"
            )));
            assert!(!api.contains(&San::Ip(n.ip)), "{api:?}");
            let etcd = s.etcd_sans(n);
            assert!(etcd.contains(&dns(&format!(
                "kubelius-3f9a-etcd-{i}.westeurope.azurecontainer.io"
            ))));
            assert!(etcd.contains(&San::Ip("127.0.0.1".parse().unwrap())));
            assert!(!etcd.contains(&San::Ip(n.ip)), "{etcd:?}");
        }
    }

    #[test]
    fn explicit_endpoint_wins() {
        let yaml = AZURE_YAML.replace(
            "  controlPlane:",
            "  controlPlaneEndpoint: api.kubelius.example:443\n  controlPlane:",
        );
        let s = ClusterSpec::from_yaml(&yaml).unwrap().spec;
        assert_eq!(s.control_plane_url(), "https://api.kubelius.example:443");
        assert!(
            s.apiserver_sans(&s.control_plane[0])
                .contains(&dns("api.kubelius.example"))
        );
    }

    #[test]
    fn credential_forms_parse() {
        let cs = AZURE_YAML.replace(
            "credential: { azureCli: {} }",
            "credential: { clientSecret: { tenantId: 11111111-2222-3333-4444-555555555555, clientId: app } }",
        );
        let s = ClusterSpec::from_yaml(&cs).unwrap().spec;
        let BackendSpec::Azure(az) = &s.backend else {
            panic!()
        };
        let AzureCredentialSpec::ClientSecret(c) = &az.credential else {
            panic!("{:?}", az.credential)
        };
        assert_eq!(c.secret_env, "AZURE_CLIENT_SECRET");
        let mi = AZURE_YAML.replace(
            "credential: { azureCli: {} }",
            "credential: { managedIdentity: {} }",
        );
        assert!(ClusterSpec::from_yaml(&mi).is_ok());
        let two = AZURE_YAML.replace("{ azureCli: {} }", "{ azureCli: {}, managedIdentity: {} }");
        let e = ClusterSpec::from_yaml(&two).unwrap_err().to_string();
        assert!(e.contains("exactly one credential"), "{e}");
        let missing = AZURE_YAML.replace("      credential: { azureCli: {} }\n", "");
        let e = ClusterSpec::from_yaml(&missing).unwrap_err().to_string();
        assert!(e.contains("credential"), "{e}");
    }

    #[test]
    fn bad_fields_are_all_named() {
        let bad = AZURE_YAML
            .replace("00000000-0000-0000-0000-000000000000", "my-sub")
            .replace("westeurope", "West Europe")
            .replace("dnsLabelPrefix: kubelius-3f9a", "dnsLabelPrefix: Kubelius")
            .replace("storageAccount: kubelius3f9a", "storageAccount: Kubelius-3f9a")
            .replace(
                "credential: { azureCli: {} }",
                "credential: { azureCli: {} }\n      snapshotInterval: 10s\n      shareName: A\n      virtualKubelet: { podsResourceGroup: kubelius }",
            );
        let e = ClusterSpec::from_yaml(&bad).unwrap_err();
        let paths: Vec<String> = e.problems().into_iter().map(|p| p.path).collect();
        for f in [
            "subscriptionId",
            "location",
            "dnsLabelPrefix",
            "storageAccount",
            "snapshotInterval",
            "shareName",
            "virtualKubelet.podsResourceGroup",
        ] {
            assert!(
                paths.contains(&format!("spec.backend.azure.{f}")),
                "{f} missing in {paths:?}"
            );
        }
    }

    #[test]
    fn virtual_kubelet_client_secret_is_checked() {
        let vk = |cs: &str| {
            AZURE_YAML.replace(
                "credential: { azureCli: {} }",
                &format!("credential: {{ azureCli: {{}} }}\n      virtualKubelet: {{ podsResourceGroup: pods, clientSecret: {cs} }}"),
            )
        };
        let s = ClusterSpec::from_yaml(&vk(
            "{ tenantId: 11111111-2222-3333-4444-555555555555, clientId: app, secretEnv: VK_SECRET }",
        ))
        .unwrap()
        .spec;
        let BackendSpec::Azure(az) = &s.backend else {
            panic!()
        };
        let cs = az
            .virtual_kubelet
            .as_ref()
            .unwrap()
            .client_secret
            .as_ref()
            .unwrap();
        assert_eq!(
            (cs.client_id.as_str(), cs.secret_env.as_str()),
            ("app", "VK_SECRET")
        );
        assert_eq!(ClusterSpec::from_yaml(&s.to_yaml()).unwrap().spec, s);
        let e = ClusterSpec::from_yaml(&vk("{ tenantId: t, clientId: app, secretEnv: \"a b\" }"))
            .unwrap_err();
        let paths: Vec<String> = e.problems().into_iter().map(|p| p.path).collect();
        for f in ["tenantId", "secretEnv"] {
            assert!(
                paths.contains(&format!(
                    "spec.backend.azure.virtualKubelet.clientSecret.{f}"
                )),
                "{f} missing in {paths:?}"
            );
        }
    }

    #[test]
    fn long_prefix_is_refused() {
        let long = "k".repeat(60);
        let yaml = AZURE_YAML.replace(
            "dnsLabelPrefix: kubelius-3f9a",
            &format!("dnsLabelPrefix: {long}"),
        );
        let e = ClusterSpec::from_yaml(&yaml).unwrap_err().to_string();
        assert!(e.contains("63"), "{e}");
    }
}
