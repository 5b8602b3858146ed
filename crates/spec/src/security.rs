//! `spec.security`: the hardened defaults and the explicit relaxations of them.
//!
//! Every field defaults to the hardened setting, so an absent `security:` section is the
//! hardened control plane. Each field set to something weaker is a relaxation, listed by
//! [`SecuritySpec::relaxations`] (and printed by `plan` as a warning).
//!
//! ```yaml
//! security:
//!   auditLog: false                 # no audit log (default: on, metadata level)
//!   encryptionAtRest: false         # Secrets in etcd in plain text (default: secretbox)
//!   anonymousAuth: all              # anonymous requests everywhere (default: healthOnly)
//!   profiling: true                 # /debug/pprof on every component (default: off)
//!   alwaysPullImages: false         # cached images usable by any pod (default: pull)
//!   podSecurity: { enforce: privileged, warn: baseline, audit: baseline }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ClusterSpec, FieldError};

/// `spec.security`. Every field defaults to the hardened setting; each relaxation is a warning
/// in `plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct SecuritySpec {
    /// `auditLog`: the apiserver writes an audit log (metadata for most requests, never the
    /// bodies of Secrets, ConfigMaps or TokenReviews). Default `true`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub audit_log: bool,
    /// `encryptionAtRest`: Secrets are encrypted in etcd (`secretbox`, a per-cluster 32-byte
    /// key in the PKI directory). Default `true`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub encryption_at_rest: bool,
    /// `anonymousAuth`: where the apiserver accepts anonymous requests. Default `healthOnly`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub anonymous_auth: AnonymousAuth,
    /// `profiling`: `/debug/pprof` on the apiserver, controller-manager and scheduler. Default
    /// `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub profiling: bool,
    /// `alwaysPullImages`: the `AlwaysPullImages` admission plugin, so a pod cannot use an image
    /// another tenant's credentials pulled onto the node. Default `true`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub always_pull_images: bool,
    /// `podSecurity`: the cluster-wide Pod Security Standards levels (kube-system exempt).
    /// Default `enforce: baseline`, `warn: restricted`, `audit: restricted`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pod_security: PodSecurityLevels,
}

impl Default for SecuritySpec {
    fn default() -> Self {
        Self {
            audit_log: true,
            encryption_at_rest: true,
            anonymous_auth: AnonymousAuth::default(),
            profiling: false,
            always_pull_images: true,
            pod_security: PodSecurityLevels::default(),
        }
    }
}

fn yes() -> bool {
    true
}
#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's signature")]
fn is_true(b: &bool) -> bool {
    *b
}
#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's signature")]
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `spec.security.anonymousAuth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum AnonymousAuth {
    /// Anonymous requests only for `/livez`, `/readyz` and `/healthz` (the kubelet's probes),
    /// through the apiserver's structured `AuthenticationConfiguration`.
    #[default]
    HealthOnly,
    /// Anonymous requests everywhere (Kubernetes' default; RBAC still applies).
    All,
}

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum PodSecurityLevel {
    /// No restriction.
    Privileged,
    /// Known privilege escalations blocked.
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl PodSecurityLevel {
    /// The level's name in Kubernetes (`baseline`).
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Privileged => "privileged",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }
}

impl fmt::Display for PodSecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `spec.security.podSecurity`: the cluster-wide defaults of the `PodSecurity` admission plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PodSecurityLevels {
    /// Pods violating this level are rejected. Default `baseline`.
    #[serde(default = "baseline")]
    pub enforce: PodSecurityLevel,
    /// Violations of this level are returned to the client as warnings. Default `restricted`.
    #[serde(default = "restricted")]
    pub warn: PodSecurityLevel,
    /// Violations of this level are recorded in the audit log. Default `restricted`.
    #[serde(default = "restricted")]
    pub audit: PodSecurityLevel,
}

fn baseline() -> PodSecurityLevel {
    PodSecurityLevel::Baseline
}
fn restricted() -> PodSecurityLevel {
    PodSecurityLevel::Restricted
}

impl Default for PodSecurityLevels {
    fn default() -> Self {
        Self {
            enforce: baseline(),
            warn: restricted(),
            audit: restricted(),
        }
    }
}

impl SecuritySpec {
    /// Cross-field checks against the rest of the spec; `err(path, message)` per problem.
    pub(crate) fn validate(&self, spec: &ClusterSpec, err: &mut impl FnMut(String, String)) {
        // Flags the hardening renders: setting them in extraArgs would silently undo it.
        for (flag, field) in [
            ("profiling", "spec.security.profiling"),
            ("anonymous-auth", "spec.security.anonymousAuth"),
            (
                "encryption-provider-config",
                "spec.security.encryptionAtRest",
            ),
            ("audit-policy-file", "spec.security.auditLog"),
            ("audit-log-path", "spec.security.auditLog"),
            ("authentication-config", "spec.security.anonymousAuth"),
            ("admission-control-config-file", "spec.security.podSecurity"),
        ] {
            if spec.api_server.extra_args.contains_key(flag) {
                err(
                    format!("spec.apiServer.extraArgs.{flag}"),
                    format!(
                        "frankenetes renders --{flag} from the hardened defaults; set {field} instead"
                    ),
                );
            }
        }
        for (section, args) in [
            ("controllerManager", &spec.controller_manager.extra_args),
            ("scheduler", &spec.scheduler.extra_args),
        ] {
            if args.contains_key("profiling") {
                err(
                    format!("spec.{section}.extraArgs.profiling"),
                    "frankenetes renders --profiling from spec.security.profiling; set that instead"
                        .into(),
                );
            }
        }
        let ps = &self.pod_security;
        if ps.warn < ps.enforce || ps.audit < ps.enforce {
            err(
                "spec.security.podSecurity".into(),
                format!(
                    "warn ({}) and audit ({}) must be at least as strict as enforce ({}): a weaker level would never report anything",
                    ps.warn, ps.audit, ps.enforce
                ),
            );
        }
    }

    /// Every setting weaker than the hardened default, as a warning naming the field and what
    /// it costs. Empty for the default.
    pub fn relaxations(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        let mut w = |path: &str, message: String| {
            out.push(FieldError {
                path: format!("spec.security.{path}"),
                message,
            });
        };
        if !self.audit_log {
            w(
                "auditLog",
                "false: the apiserver keeps no audit log (CIS 1.2.16-1.2.19, 3.2.1)".into(),
            );
        }
        if !self.encryption_at_rest {
            w(
                "encryptionAtRest",
                "false: Secrets are stored in etcd in plain text (CIS 1.2.27-1.2.28)".into(),
            );
        }
        if self.anonymous_auth == AnonymousAuth::All {
            w(
                "anonymousAuth",
                "all: the apiserver accepts anonymous requests on every path, not only the health probes (CIS 1.2.1)".into(),
            );
        }
        if self.profiling {
            w(
                "profiling",
                "true: /debug/pprof is served by the apiserver, controller-manager and scheduler (CIS 1.2.15, 1.3.2, 1.4.1)".into(),
            );
        }
        if !self.always_pull_images {
            w(
                "alwaysPullImages",
                "false: a pod may run an image another pod's credentials pulled onto the node (CIS 1.2.11)".into(),
            );
        }
        let ps = &self.pod_security;
        let def = PodSecurityLevels::default();
        for (name, have, want) in [
            ("enforce", ps.enforce, def.enforce),
            ("warn", ps.warn, def.warn),
            ("audit", ps.audit, def.audit),
        ] {
            if have < want {
                w(
                    &format!("podSecurity.{name}"),
                    format!("{have}: weaker than the default {want} (CIS 5.2)"),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(security: &str) -> Result<crate::Parsed, crate::Error> {
        let yaml = format!(
            "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{ name: k }}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane: [{{ name: c1, ip: 10.0.0.1 }}]\n  backend: {{ local: {{}} }}\n{security}"
        );
        ClusterSpec::from_yaml(&yaml)
    }

    #[test]
    fn absent_section_is_hardened_and_relaxes_nothing() {
        let p = parse("").unwrap();
        assert_eq!(p.spec.security, SecuritySpec::default());
        assert!(p.spec.security.relaxations().is_empty());
        assert!(p.spec.security.audit_log && p.spec.security.encryption_at_rest);
        // The default is not written back.
        assert!(!p.spec.to_yaml().contains("security"));
    }

    #[test]
    fn every_relaxation_is_listed() {
        let p = parse(
            "  security:\n    auditLog: false\n    encryptionAtRest: false\n    anonymousAuth: all\n    profiling: true\n    alwaysPullImages: false\n    podSecurity: { enforce: privileged, warn: baseline, audit: restricted }\n",
        )
        .unwrap();
        let r = p.spec.security.relaxations();
        let paths: Vec<&str> = r.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.security.auditLog",
                "spec.security.encryptionAtRest",
                "spec.security.anonymousAuth",
                "spec.security.profiling",
                "spec.security.alwaysPullImages",
                "spec.security.podSecurity.enforce",
                "spec.security.podSecurity.warn",
            ]
        );
        // It round-trips.
        let again = ClusterSpec::from_yaml(&p.spec.to_yaml()).unwrap();
        assert_eq!(again.spec.security, p.spec.security);
    }

    #[test]
    fn bad_security_settings_are_errors_naming_the_field() {
        let e = parse("  security: { auditlog: false }\n").unwrap_err();
        assert!(e.to_string().contains("auditlog"), "{e}");
        let e = parse("  security: { podSecurity: { enforce: restricted, warn: baseline } }\n")
            .unwrap_err();
        assert!(e.to_string().contains("spec.security.podSecurity"), "{e}");
        let e = parse("  apiServer: { extraArgs: { profiling: \"true\" } }\n").unwrap_err();
        assert!(
            e.to_string().contains("spec.apiServer.extraArgs.profiling"),
            "{e}"
        );
    }
}
