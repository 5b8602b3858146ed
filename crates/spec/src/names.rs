//! Validated names: node names (DNS-1123 labels) and DNS names (DNS-1123 subdomains).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid name. The message says what is wrong and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {what}: {reason}")]
pub struct NameError {
    /// The rejected input.
    pub input: String,
    /// What kind of name was expected.
    pub what: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("it is empty".into());
    }
    if label.len() > 63 {
        return Some(format!(
            "{} characters, at most 63 are allowed",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let hint = if c.is_ascii_uppercase() {
            " (use lower case)"
        } else {
            ""
        };
        return Some(format!(
            "{c:?} is not allowed; use lower-case letters, digits and '-'{hint}"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(input: String) -> Result<Self, NameError> {
                let check: fn(&str) -> Option<String> = $check;
                match check(&input) {
                    None => Ok(Self(input)),
                    Some(reason) => Err(NameError { input, what: $what, reason }),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(input: &str) -> Result<Self, NameError> {
                Self::try_from(input.to_owned())
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(input: &str) -> Result<Self, NameError> {
                Self::try_from(input)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Hash, equality and order are the string's, so a map keyed by this name can be
        /// looked up by `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_newtype!(
    /// A node name: a DNS-1123 label (`control-01`), as Kubernetes requires for node names that
    /// also serve as host names and certificate SANs.
    NodeName,
    "node name (DNS-1123 label)",
    label_problem
);

string_newtype!(
    /// A cluster name (`metadata.name`): a DNS-1123 label. It names the kubeconfig cluster, the
    /// cloud tag and the resource prefixes.
    ClusterName,
    "cluster name (DNS-1123 label)",
    label_problem
);

string_newtype!(
    /// A DNS name: a DNS-1123 subdomain (`api.example.com`), at most 253 characters.
    DnsName,
    "DNS name (DNS-1123 subdomain)",
    |s| {
        if s.is_empty() {
            return Some("it is empty".into());
        }
        if s.len() > 253 {
            return Some(format!("{} characters, at most 253 are allowed", s.len()));
        }
        if s.parse::<std::net::IpAddr>().is_ok() {
            return Some("it is an IP address, not a name".into());
        }
        s.split('.')
            .find_map(|l| label_problem(l).map(|r| format!("label {l:?}: {r}")))
    }
);

impl From<NodeName> for DnsName {
    fn from(n: NodeName) -> Self {
        // A DNS-1123 label is always a valid DNS-1123 subdomain.
        DnsName(n.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for good in ["control-01", "a", "w1", "0abc", &"x".repeat(63)] {
            assert!(
                NodeName::try_from(good).is_ok(),
                "{good} should be accepted"
            );
        }
        for (bad, why) in [
            ("", "empty"),
            ("Control-01", "lower case"),
            ("-a", "start and end"),
            ("a-", "start and end"),
            ("a.b", "'.'"),
            ("a_b", "'_'"),
            (&"x".repeat(64), "at most 63"),
        ] {
            let err = NodeName::try_from(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn names_work_as_map_keys_and_strings() {
        use std::collections::{BTreeMap, HashMap};
        let n = NodeName::try_from("control-01").unwrap();
        let mut h = HashMap::new();
        h.insert(n.clone(), 1);
        assert_eq!(h.get("control-01"), Some(&1));
        let mut b = BTreeMap::new();
        b.insert(ClusterName::try_from("kubelius").unwrap(), 2);
        assert_eq!(b.get("kubelius"), Some(&2));
        assert!(n == "control-01" && n == *"control-01");
        assert_eq!(format!("{n}"), "control-01");
        let s: &str = n.as_ref();
        assert_eq!(s, String::from(n.clone()));
        let back: NodeName = serde_norway::from_str(&serde_norway::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
        assert!(serde_norway::from_str::<NodeName>("Bad_Name").is_err());
    }

    #[test]
    fn dns_names() {
        for good in [
            "api.kubelius",
            "kubernetes.default.svc.cluster.local",
            "localhost",
        ] {
            assert!(DnsName::try_from(good).is_ok(), "{good}");
        }
        for bad in ["", "a..b", "API.example", "10.0.0.1", "-a.b", "a.b-"] {
            assert!(DnsName::try_from(bad).is_err(), "{bad} should be refused");
        }
        assert!(DnsName::try_from(format!("{}.{}", "a".repeat(63), "b".repeat(200))).is_err());
    }
}
