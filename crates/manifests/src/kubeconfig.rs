//! kubeconfig files with embedded certificates, typed (client-go's `clientcmd/api/v1`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A kubeconfig (`apiVersion: v1`, `kind: Config`) with one cluster, user and context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Kubeconfig {
    /// `v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `Config`.
    pub kind: String,
    /// Clusters.
    pub clusters: Vec<NamedCluster>,
    /// Users.
    pub users: Vec<NamedUser>,
    /// Contexts.
    pub contexts: Vec<NamedContext>,
    /// The context used by default.
    pub current_context: String,
    /// Always empty.
    pub preferences: serde_json::Map<String, serde_json::Value>,
}

/// A named cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NamedCluster {
    /// Name.
    pub name: String,
    /// The cluster.
    pub cluster: Cluster,
}

/// Where the API is and which CA to trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Cluster {
    /// `https://host:port`.
    pub server: String,
    /// The CA certificate PEM, base64.
    pub certificate_authority_data: String,
}

/// A named user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NamedUser {
    /// Name.
    pub name: String,
    /// Credentials.
    pub user: User,
}

/// Client certificate credentials. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct User {
    /// Client certificate PEM, base64.
    pub client_certificate_data: String,
    /// Client key PEM, base64.
    pub client_key_data: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("client_certificate_data", &"…")
            .field("client_key_data", &"<redacted>")
            .finish()
    }
}

/// A named context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NamedContext {
    /// `<user>@<cluster>`.
    pub name: String,
    /// The pair.
    pub context: Context,
}

/// A cluster and user pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Context {
    /// Cluster name.
    pub cluster: String,
    /// User name.
    pub user: String,
}

impl Kubeconfig {
    /// kubeadm's shape: cluster `cluster_name`, user `user`, context `user@cluster_name`.
    pub fn new(
        cluster_name: &str,
        server: &str,
        ca_pem: &str,
        user: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Self {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let context = format!("{user}@{cluster_name}");
        Self {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: cluster_name.into(),
                cluster: Cluster {
                    server: server.into(),
                    certificate_authority_data: b64(ca_pem),
                },
            }],
            users: vec![NamedUser {
                name: user.into(),
                user: User {
                    client_certificate_data: b64(cert_pem),
                    client_key_data: b64(key_pem),
                },
            }],
            contexts: vec![NamedContext {
                name: context.clone(),
                context: Context {
                    cluster: cluster_name.into(),
                    user: user.into(),
                },
            }],
            current_context: context,
            preferences: serde_json::Map::new(),
        }
    }

    /// The YAML text; it holds a private key, so it is zeroized on drop.
    pub fn to_yaml(&self) -> Zeroizing<String> {
        Zeroizing::new(serde_norway::to_string(self).unwrap_or_default())
    }
}
