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
    ///
    /// Written directly rather than through the YAML serializer, in the layout it produces:
    /// a cluster of a thousand nodes has two thousand kubeconfigs of kilobytes of base64 each,
    /// and the generic emitter, which inspects and writes them a character at a time, was a
    /// quarter of `plan`. Every scalar is written plain when it is unambiguous as a plain
    /// YAML string (see `plain_safe` in the source), else double-quoted with JSON's escapes (a YAML
    /// double-quoted scalar too). A kubeconfig this layout does not cover (preferences set)
    /// goes through the serializer.
    pub fn to_yaml(&self) -> Zeroizing<String> {
        if !self.preferences.is_empty() {
            return Zeroizing::new(serde_norway::to_string(self).unwrap_or_default());
        }
        let size = self
            .clusters
            .iter()
            .map(|c| c.cluster.certificate_authority_data.len())
            .chain(
                self.users
                    .iter()
                    .map(|u| u.user.client_certificate_data.len() + u.user.client_key_data.len()),
            )
            .sum::<usize>()
            + 512;
        let mut out = Zeroizing::new(String::with_capacity(size));
        let o = &mut *out;
        line(o, "", "apiVersion", &self.api_version);
        line(o, "", "kind", &self.kind);
        list(o, "clusters", &self.clusters, |o, c| {
            line(o, "- ", "name", &c.name);
            o.push_str("  cluster:\n");
            line(o, "    ", "server", &c.cluster.server);
            let ca = &c.cluster.certificate_authority_data;
            line(o, "    ", "certificate-authority-data", ca);
        });
        list(o, "users", &self.users, |o, u| {
            line(o, "- ", "name", &u.name);
            o.push_str("  user:\n");
            let cert = &u.user.client_certificate_data;
            line(o, "    ", "client-certificate-data", cert);
            line(o, "    ", "client-key-data", &u.user.client_key_data);
        });
        list(o, "contexts", &self.contexts, |o, c| {
            line(o, "- ", "name", &c.name);
            o.push_str("  context:\n");
            line(o, "    ", "cluster", &c.context.cluster);
            line(o, "    ", "user", &c.context.user);
        });
        line(o, "", "current-context", &self.current_context);
        o.push_str("preferences: {}\n");
        out
    }
}

/// `<indent><key>: <value>\n`.
fn line(out: &mut String, indent: &str, key: &str, value: &str) {
    out.push_str(indent);
    out.push_str(key);
    out.push_str(": ");
    scalar(out, value);
    out.push('\n');
}

/// `<key>:` and its items as a block sequence, or `<key>: []`.
fn list<T>(out: &mut String, key: &str, items: &[T], mut item: impl FnMut(&mut String, &T)) {
    out.push_str(key);
    if items.is_empty() {
        out.push_str(": []\n");
        return;
    }
    out.push_str(":\n");
    for i in items {
        item(out, i);
    }
}

/// A string scalar: plain when [`plain_safe`], else double-quoted.
fn scalar(out: &mut String, s: &str) {
    if plain_safe(s) {
        out.push_str(s);
    } else {
        // JSON's string escapes are YAML's double-quoted escapes; serializing a str cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// Whether `s` reads back as this same string when written as a plain YAML scalar, by a YAML
/// 1.1 or 1.2 reader: it starts with a letter (no indicator, number, or `.inf`), uses only
/// letters, digits and `-._/:@+=[]` (brackets only after the first character, as in an IPv6
/// URL; no spaces, `#`, quotes, braces or commas), does not end
/// with `:`, holds no `: ` or ` #`, and is not a word a reader takes for a boolean or null.
fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/:@+=[]".contains(&b))
        && !s.ends_with(':')
        && !["y", "n", "yes", "no", "true", "false", "on", "off", "null"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use super::*;

    fn config(cluster: &str, server: &str, user: &str) -> Kubeconfig {
        Kubeconfig::new(
            cluster,
            server,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            user,
            "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
            "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
        )
    }

    #[test]
    fn the_direct_writer_matches_the_serializer_on_kubeadm_shapes() {
        for (cluster, server, user) in [
            (
                "kubernetes",
                "https://10.10.16.13:6443",
                "system:node:control-03",
            ),
            ("kubelius", "https://127.0.0.11:6443", "kubernetes-admin"),
            (
                "cheap-lab",
                "https://[fd00::10]:6443",
                "system:kube-scheduler",
            ),
            ("c", "https://api.example.com:443", "system:kube-proxy"),
        ] {
            let k = config(cluster, server, user);
            assert_eq!(
                *k.to_yaml(),
                serde_norway::to_string(&k).unwrap(),
                "{cluster} {server} {user}"
            );
        }
    }

    #[test]
    fn every_scalar_reads_back_as_written() {
        // Strings a plain scalar would turn into something else, or break.
        let tricky = [
            "",
            "true",
            "True",
            "NO",
            "y",
            "null",
            "~",
            "123",
            "0x1F",
            "1:20",
            "1e3",
            ".inf",
            "- x",
            "a: b",
            "a:",
            "a #b",
            "#a",
            "'a'",
            "\"a\"",
            "a,b",
            "[a]",
            "{a}",
            "*a",
            "&a",
            "!a",
            "|a",
            ">a",
            "%a",
            "@a",
            "`a",
            " a",
            "a ",
            "a\nb",
            "a\tb",
            "ü",
            "a\\b",
            "<<",
            "?a",
            "system:node:x",
            "https://h:1/p?q=1",
            "a[b]",
            "https://[fd00::10]:6443",
            "a]",
            "a{b}",
        ];
        for s in tricky {
            let mut k = config(s, s, s);
            k.current_context = s.to_owned();
            k.contexts[0].name = s.to_owned();
            let yaml = k.to_yaml();
            let back: Kubeconfig =
                serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("{s:?}: {e}\n{}", *yaml));
            assert_eq!(back, k, "{s:?}:\n{}", *yaml);
        }
    }

    #[test]
    fn empty_lists_and_preferences_are_written_too() {
        let mut k = config("c", "https://h:6443", "u");
        k.clusters.clear();
        k.users.clear();
        k.contexts.clear();
        let yaml = k.to_yaml();
        assert_eq!(*yaml, serde_norway::to_string(&k).unwrap());
        let back: Kubeconfig = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(back, k);
        k.preferences
            .insert("colors".into(), serde_json::Value::Bool(true));
        let back: Kubeconfig = serde_norway::from_str(&k.to_yaml()).unwrap();
        assert_eq!(back, k);
    }
}
