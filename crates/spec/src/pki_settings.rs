//! `spec.pki`: how the certificate authorities are arranged, the key algorithm, lifetimes.

use serde::{Deserialize, Serialize};

use crate::scalar::GoDuration;

/// How the certificate authorities are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CaMode {
    /// kubeadm's layout: three self-signed CAs (kubernetes, etcd, front-proxy).
    #[default]
    Kubeadm,
    /// One root CA signs the three as intermediates; the root's key never leaves the operator.
    Intermediate,
}

/// The algorithm of every key in the PKI (kubeadm's `encryptionAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default: fast and widely supported).
    #[default]
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// RSA 2048 (kubeadm's default).
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA 3072.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA 4096.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, for tests and `--help`.
    pub const ALL: [KeyAlgorithm; 5] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
    ];

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// The config-file spelling (`ecdsa-p256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        }
    }
}

/// `spec.pki`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PkiSettings {
    /// `caMode`: `kubeadm` (default) or `intermediate`.
    #[serde(default)]
    pub ca_mode: CaMode,
    /// `keyAlgorithm`: `ecdsa-p256` (default), `ecdsa-p384`, `rsa-2048`, `rsa-3072`, `rsa-4096`.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
    /// `caValidity`: lifetime of the CAs (default 87600h, ten years).
    #[serde(default = "default_ca_validity")]
    pub ca_validity: GoDuration,
    /// `certValidity`: lifetime of every leaf (default 8760h, one year).
    #[serde(default = "default_cert_validity")]
    pub cert_validity: GoDuration,
    /// `renewBefore`: how long before its expiry a certificate is due: `status` warns and `up`
    /// renews inside this window. Absent: 720h (30 days), or half of `certValidity` when that
    /// is shorter (so a renewed certificate is not due at once). When set, it must be shorter
    /// than `certValidity`. Read it with [`PkiSettings::renewal_window`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<GoDuration>,
}

impl PkiSettings {
    /// The default renewal window: 30 days.
    pub const DEFAULT_RENEW_BEFORE: GoDuration = GoDuration::from_hours(720);

    /// How long before expiry a certificate is due for renewal: `renewBefore`, else 30 days
    /// capped at half of `certValidity`.
    pub fn renewal_window(&self) -> std::time::Duration {
        self.renew_before.map_or_else(
            || {
                Self::DEFAULT_RENEW_BEFORE
                    .get()
                    .min(self.cert_validity.get() / 2)
            },
            GoDuration::get,
        )
    }
}

fn default_ca_validity() -> GoDuration {
    GoDuration::from_hours(87_600)
}

fn default_cert_validity() -> GoDuration {
    GoDuration::from_hours(8_760)
}

impl Default for PkiSettings {
    fn default() -> Self {
        Self {
            ca_mode: CaMode::default(),
            key_algorithm: KeyAlgorithm::default(),
            ca_validity: default_ca_validity(),
            cert_validity: default_cert_validity(),
            renew_before: None,
        }
    }
}

impl PkiSettings {
    /// Lifetimes: the renewal window inside the certificate's life, the certificate inside
    /// its CA's.
    pub(crate) fn validate(&self, err: &mut impl FnMut(String, String)) {
        if let Some(r) = self.renew_before
            && r >= self.cert_validity
        {
            err(
                "spec.pki.renewBefore".into(),
                format!(
                    "{r} is not shorter than spec.pki.certValidity ({}): every certificate would be due for renewal as soon as it is made",
                    self.cert_validity
                ),
            );
        }
        if self.cert_validity.get().as_secs() < 3600 {
            err(
                "spec.pki.certValidity".into(),
                format!("{} is shorter than one hour", self.cert_validity),
            );
        }
        if self.ca_validity.get() < self.cert_validity.get() {
            err(
                "spec.pki.certValidity".into(),
                format!(
                    "{} is longer than spec.pki.caValidity ({}): a certificate cannot outlive its CA",
                    self.cert_validity, self.ca_validity
                ),
            );
        }
    }
}
