//! The apiserver's hardening files, typed: the audit `Policy`, the `AdmissionConfiguration`
//! (Pod Security defaults) and the `AuthenticationConfiguration` that allows anonymous requests
//! only on the health endpoints. The Secrets `EncryptionConfiguration` comes from the PKI
//! ([`frankenetes_pki::encryption`]) because it holds a key.
//!
//! ```
//! use frankenetes_manifests::security;
//! use frankenetes_spec::ClusterSpec;
//!
//! let spec = ClusterSpec::example();
//! let auth = security::authentication_configuration(&spec).expect("hardened by default");
//! let paths: Vec<&str> = auth.anonymous.conditions.iter().map(|c| c.path.as_str()).collect();
//! // The health probes, and kubeadm's token discovery (the day-one objects are on by default).
//! assert_eq!(paths, ["/livez", "/readyz", "/healthz", "/api/v1/namespaces/kube-public/configmaps/cluster-info"]);
//! let without = security::authentication_configuration_for(&spec, false).expect("hardened");
//! assert_eq!(without.anonymous.conditions.len(), 3);
//! ```

use std::collections::BTreeMap;

use frankenetes_spec::ClusterSpec;
use frankenetes_spec::security::AnonymousAuth;
use serde::{Deserialize, Serialize};

/// Where the apiserver's configuration files live on a control-plane node (mounted read-only).
pub const CONFIG_DIR: &str = "/etc/kubernetes/apiserver";
/// The audit policy file.
pub const AUDIT_POLICY: &str = "/etc/kubernetes/apiserver/audit-policy.yaml";
/// The admission configuration file.
pub const ADMISSION_CONFIG: &str = "/etc/kubernetes/apiserver/admission-config.yaml";
/// The authentication configuration file.
pub const AUTHENTICATION_CONFIG: &str = "/etc/kubernetes/apiserver/authentication-config.yaml";
/// The audit log's directory (mounted read-write).
pub const AUDIT_LOG_DIR: &str = "/var/log/kubernetes/audit";
/// The audit log.
pub const AUDIT_LOG: &str = "/var/log/kubernetes/audit/audit.log";
/// Days an audit log file is kept (CIS 1.2.17).
pub const AUDIT_MAX_AGE: u32 = 30;
/// Rotated audit log files kept (CIS 1.2.18).
pub const AUDIT_MAX_BACKUP: u32 = 10;
/// Megabytes before the audit log is rotated (CIS 1.2.19).
pub const AUDIT_MAX_SIZE: u32 = 100;
/// The paths anonymous requests may reach: the kubelet's probes of the apiserver.
pub const ANONYMOUS_PATHS: [&str; 3] = ["/livez", "/readyz", "/healthz"];
/// TLS 1.2 cipher suites the kubelet (and apiserver) accept: ECDHE with AEAD only (CIS 4.2.12).
pub const STRONG_CIPHER_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
];
/// The first Kubernetes minor whose apiserver takes the `anonymous` section of
/// `AuthenticationConfiguration` without a feature gate (AnonymousAuthConfigurableEndpoints,
/// beta in 1.32, locked on in 1.34); `apiserver.config.k8s.io/v1` is served since 1.34 too.
pub const ANONYMOUS_SECTION_SINCE_MINOR: u32 = 34;

/// `audit.k8s.io/v1` `Policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditPolicy {
    /// `audit.k8s.io/v1`.
    pub api_version: String,
    /// `Policy`.
    pub kind: String,
    /// Stages never recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit_stages: Vec<String>,
    /// Rules, first match wins.
    pub rules: Vec<AuditRule>,
}

/// One audit rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditRule {
    /// `None`, `Metadata`, `Request` or `RequestResponse`.
    pub level: String,
    /// Resources matched (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<GroupResources>,
    /// Non-resource URLs matched (`/healthz*`).
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

/// Resources of one API group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct GroupResources {
    /// The API group (`""` is core).
    pub group: String,
    /// Resource names.
    pub resources: Vec<String>,
}

/// The audit policy: nothing for the health probes, metadata only (never bodies) for Secrets,
/// ConfigMaps and TokenReviews, metadata for everything else.
pub fn audit_policy() -> AuditPolicy {
    let gr = |group: &str, resources: &[&str]| GroupResources {
        group: group.into(),
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
    };
    AuditPolicy {
        api_version: "audit.k8s.io/v1".into(),
        kind: "Policy".into(),
        omit_stages: vec!["RequestReceived".into()],
        rules: vec![
            AuditRule {
                level: "None".into(),
                resources: Vec::new(),
                non_resource_urls: ANONYMOUS_PATHS.iter().map(|p| format!("{p}*")).collect(),
            },
            AuditRule {
                level: "Metadata".into(),
                resources: vec![
                    gr("", &["secrets", "configmaps"]),
                    gr("authentication.k8s.io", &["tokenreviews"]),
                ],
                non_resource_urls: Vec::new(),
            },
            AuditRule {
                level: "Metadata".into(),
                resources: Vec::new(),
                non_resource_urls: Vec::new(),
            },
        ],
    }
}

/// `apiserver.config.k8s.io/v1` `AdmissionConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AdmissionConfiguration {
    /// `apiserver.config.k8s.io/v1`.
    pub api_version: String,
    /// `AdmissionConfiguration`.
    pub kind: String,
    /// Per-plugin configuration.
    pub plugins: Vec<AdmissionPlugin>,
}

/// One plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AdmissionPlugin {
    /// The plugin (`PodSecurity`).
    pub name: String,
    /// Its configuration, inline.
    pub configuration: PodSecurityConfiguration,
}

/// `pod-security.admission.config.k8s.io/v1` `PodSecurityConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PodSecurityConfiguration {
    /// `pod-security.admission.config.k8s.io/v1`.
    pub api_version: String,
    /// `PodSecurityConfiguration`.
    pub kind: String,
    /// Levels for namespaces without labels: `enforce`, `enforce-version`, `warn`, ….
    pub defaults: BTreeMap<String, String>,
    /// Who is exempt.
    pub exemptions: PodSecurityExemptions,
}

/// `exemptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PodSecurityExemptions {
    /// Exempt users.
    pub usernames: Vec<String>,
    /// Exempt runtime classes.
    pub runtime_classes: Vec<String>,
    /// Exempt namespaces.
    pub namespaces: Vec<String>,
}

/// The Pod Security admission defaults from `spec.security.podSecurity` (`baseline` enforced,
/// `restricted` warned and audited by default). `kube-system` is exempt: the control plane's
/// mirror pods and the node agents there need host networking and host paths.
pub fn admission_configuration(spec: &ClusterSpec) -> AdmissionConfiguration {
    let ps = &spec.security.pod_security;
    let mut defaults = BTreeMap::new();
    for (mode, level) in [
        ("enforce", ps.enforce),
        ("warn", ps.warn),
        ("audit", ps.audit),
    ] {
        defaults.insert(mode.to_owned(), level.as_str().to_owned());
        defaults.insert(format!("{mode}-version"), "latest".to_owned());
    }
    AdmissionConfiguration {
        api_version: "apiserver.config.k8s.io/v1".into(),
        kind: "AdmissionConfiguration".into(),
        plugins: vec![AdmissionPlugin {
            name: "PodSecurity".into(),
            configuration: PodSecurityConfiguration {
                api_version: "pod-security.admission.config.k8s.io/v1".into(),
                kind: "PodSecurityConfiguration".into(),
                defaults,
                exemptions: PodSecurityExemptions {
                    usernames: Vec::new(),
                    runtime_classes: Vec::new(),
                    namespaces: vec!["kube-system".into()],
                },
            },
        }],
    }
}

/// `apiserver.config.k8s.io/v1` `AuthenticationConfiguration`, the `anonymous` section only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthenticationConfiguration {
    /// `apiserver.config.k8s.io/v1`.
    pub api_version: String,
    /// `AuthenticationConfiguration`.
    pub kind: String,
    /// Where anonymous requests are allowed.
    pub anonymous: AnonymousConfig,
}

/// `anonymous`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AnonymousConfig {
    /// Anonymous requests are authenticated as `system:anonymous` (on the paths below only).
    pub enabled: bool,
    /// The paths; any other path answers 401 to an anonymous request.
    pub conditions: Vec<AnonymousCondition>,
}

/// One allowed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AnonymousCondition {
    /// An exact path.
    pub path: String,
}

/// The paths anonymous requests may reach: the health probes, and with the day-one objects
/// (`cluster_info`) the `cluster-info` ConfigMap that `kubeadm join` reads before it has
/// credentials (RBAC still limits anonymous users to `get` of that one object).
pub fn anonymous_paths(cluster_info: bool) -> Vec<&'static str> {
    let mut p = ANONYMOUS_PATHS.to_vec();
    if cluster_info {
        p.push(crate::addons::CLUSTER_INFO_PATH);
    }
    p
}

/// [`authentication_configuration_for`] with the day-one objects on (the default).
pub fn authentication_configuration(spec: &ClusterSpec) -> Option<AuthenticationConfiguration> {
    authentication_configuration_for(spec, true)
}

/// Anonymous requests only on `/livez`, `/readyz` and `/healthz`, plus the `cluster-info`
/// ConfigMap when `cluster_info` (the day-one objects are applied) — unless
/// `spec.security.anonymousAuth` is `all` (`None`: the apiserver's default applies).
pub fn authentication_configuration_for(
    spec: &ClusterSpec,
    cluster_info: bool,
) -> Option<AuthenticationConfiguration> {
    (spec.security.anonymous_auth == AnonymousAuth::HealthOnly).then(|| {
        AuthenticationConfiguration {
            api_version: "apiserver.config.k8s.io/v1".into(),
            kind: "AuthenticationConfiguration".into(),
            anonymous: AnonymousConfig {
                enabled: true,
                conditions: anonymous_paths(cluster_info)
                    .iter()
                    .map(|p| AnonymousCondition {
                        path: (*p).to_owned(),
                    })
                    .collect(),
            },
        }
    })
}

/// What `plan` says about the hardening of a spec, one line each: which setting restricts
/// anonymous access and why, and every relaxation of `spec.security`.
pub fn plan_notes(spec: &ClusterSpec) -> Vec<String> {
    let mut out = Vec::new();
    let minor = spec.kubernetes_version.minor;
    match spec.security.anonymous_auth {
        AnonymousAuth::HealthOnly if minor >= ANONYMOUS_SECTION_SINCE_MINOR => out.push(format!(
            "anonymous access: only {} (AuthenticationConfiguration `anonymous` section, {AUTHENTICATION_CONFIG}; supported since v1.{ANONYMOUS_SECTION_SINCE_MINOR}; the last for `kubeadm join` discovery, read-only by RBAC); --anonymous-auth is left unset because the apiserver refuses both",
            anonymous_paths(true).join(", ")
        )),
        AnonymousAuth::HealthOnly => out.push(format!(
            "anonymous access: v1.{minor} predates the AuthenticationConfiguration `anonymous` section (v1.{ANONYMOUS_SECTION_SINCE_MINOR}); --anonymous-auth stays at its default (true) so the kubelet's probes work, and RBAC limits anonymous users to the health and version endpoints"
        )),
        _ => out.push("anonymous access: allowed on every path (spec.security.anonymousAuth: all); RBAC still applies".into()),
    }
    out.extend(
        spec.security
            .relaxations()
            .into_iter()
            .map(|w| format!("relaxed: {w}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_through_their_types() {
        let spec = ClusterSpec::example();
        let y = serde_norway::to_string(&audit_policy()).unwrap();
        assert_eq!(
            serde_norway::from_str::<AuditPolicy>(&y).unwrap(),
            audit_policy()
        );
        assert!(y.contains("nonResourceURLs"));
        let a = admission_configuration(&spec);
        let y = serde_norway::to_string(&a).unwrap();
        assert!(
            y.contains("enforce: baseline") && y.contains("warn: restricted"),
            "{y}"
        );
        assert_eq!(
            serde_norway::from_str::<AdmissionConfiguration>(&y).unwrap(),
            a
        );
        let n = authentication_configuration(&spec).unwrap();
        let y = serde_norway::to_string(&n).unwrap();
        assert_eq!(
            serde_norway::from_str::<AuthenticationConfiguration>(&y).unwrap(),
            n
        );
    }

    #[test]
    fn plan_notes_say_which_anonymous_setting_and_list_relaxations() {
        let mut spec = ClusterSpec::example();
        let n = plan_notes(&spec);
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("/livez, /readyz, /healthz"), "{n:?}");
        spec.security.anonymous_auth = AnonymousAuth::All;
        spec.security.profiling = true;
        let n = plan_notes(&spec);
        assert!(n.iter().any(|l| l.contains("spec.security.anonymousAuth")));
        assert!(n.iter().any(|l| l.contains("spec.security.profiling")));
        assert!(authentication_configuration(&spec).is_none());
    }
}
