//! Private keys: generation (in parallel where it is slow), PEM encoding, redacted `Debug`.

use std::fmt;

use frankenetes_spec::KeyAlgorithm;
use rayon::prelude::*;
use rcgen::{KeyPair, PublicKeyData, RsaKeySize};
use zeroize::Zeroizing;

/// A private key. Its `Debug` output never shows key material.
pub struct PrivateKey(KeyPair);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.describe())
    }
}

/// Why a key could not be generated or read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl PrivateKey {
    /// A new random key.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, KeyError> {
        let kp = match alg {
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyAlgorithm::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyAlgorithm::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
            // `KeyAlgorithm` is non-exhaustive; a new variant must be wired here first.
            other => {
                return Err(KeyError(format!(
                    "key algorithm {} is not supported yet",
                    other.as_str()
                )));
            }
        };
        kp.map(Self)
            .map_err(|e| KeyError(format!("cannot generate a {} key: {e}", alg.as_str())))
    }

    /// `n` new keys. RSA keys are generated on every core (they take tens to hundreds of
    /// milliseconds each); ECDSA keys take tens of microseconds, so only a set of hundreds
    /// (a large cluster's) is spread over the cores, a small one is made on this thread.
    pub fn generate_many(alg: KeyAlgorithm, n: usize) -> Result<Vec<Self>, KeyError> {
        if (alg.is_rsa() && n > 1) || n >= PARALLEL_ECDSA_FROM {
            (0..n)
                .into_par_iter()
                .map(|_| Self::generate(alg))
                .collect()
        } else {
            (0..n).map(|_| Self::generate(alg)).collect()
        }
    }

    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`), as kubeadm and openssl write them.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        KeyPair::from_pem(pem)
            .map(Self)
            .map_err(|e| KeyError(format!("not a usable PEM private key ({e})")))
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), zeroized when dropped.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.serialize_pem())
    }

    /// The public key as PKIX PEM (`-----BEGIN PUBLIC KEY-----`), kubeadm's `sa.pub` format.
    pub fn public_key_pem(&self) -> String {
        self.0.public_key_pem()
    }

    /// The DER SubjectPublicKeyInfo, to compare with a certificate's.
    pub fn spki_der(&self) -> Vec<u8> {
        self.0.subject_public_key_info()
    }

    /// The algorithm of this key, when it is one the PKI can make.
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        crate::x509::key_algorithm(&self.spki_der())
    }

    /// A short description: `ECDSA P-256`, `RSA 2048`.
    pub fn describe(&self) -> String {
        crate::x509::describe_spki(&self.spki_der())
    }

    pub(crate) fn key_pair(&self) -> &KeyPair {
        &self.0
    }
}

/// ECDSA keys from which [`PrivateKey::generate_many`] uses every core: below it, starting
/// the threads costs about what they save.
const PARALLEL_ECDSA_FROM: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("PRIVATE KEY"), "{dbg}");
        assert!(dbg.contains("redacted"));
        let pem = k.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.spki_der(), k.spki_der());
        assert_eq!(back.algorithm(), Some(KeyAlgorithm::EcdsaP256));
    }

    #[test]
    fn every_algorithm_round_trips() {
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let k = PrivateKey::generate(alg).unwrap();
            assert_eq!(k.algorithm(), Some(alg));
            let back = PrivateKey::from_pem(&k.to_pem()).unwrap();
            assert_eq!(back.algorithm(), Some(alg));
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(
            PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
        assert!(PrivateKey::from_pem("hello").is_err());
    }
}
