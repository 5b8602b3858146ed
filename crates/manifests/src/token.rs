//! Bootstrap tokens as kubeadm makes them (`[a-z0-9]{6}.[a-z0-9]{16}`), their
//! `bootstrap.kubernetes.io/token` Secrets, the CA public-key pin that `kubeadm join` checks
//! (`--discovery-token-ca-cert-hash sha256:…`), and the join command line.
//!
//! ```
//! use frankenetes_manifests::token::{self, BootstrapToken};
//! use frankenetes_pki::{CaId, Pki, PkiPlan};
//! use frankenetes_spec::ClusterSpec;
//!
//! let spec = ClusterSpec::example();
//! let pki = Pki::generate(&PkiPlan::from(&spec))?;
//! let t = BootstrapToken::generate()?;
//! assert!(!format!("{t:?}").contains(t.secret()));        // Debug never shows the secret
//! let hash = token::ca_cert_hash(pki.ca(CaId::Kubernetes).expect("CA").cert_pem())?;
//! let line = token::join_command(&spec.control_plane_endpoint().to_string(), &t, &hash);
//! assert!(line.starts_with("kubeadm join ") && line.contains("--discovery-token-ca-cert-hash sha256:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::Error;

/// kubeadm's alphabet for token ids and secrets.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Length of a token id.
pub const ID_LEN: usize = 6;
/// Length of a token secret.
pub const SECRET_LEN: usize = 16;
/// The Secret type the apiserver's bootstrap authenticator reads.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The group kubeadm gives its default node-joining tokens (bound to the node bootstrapper and
/// the CSR auto-approval roles by the day-one RBAC).
pub const DEFAULT_NODE_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// kubeadm's default token lifetime (24h).
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The prefix of a token Secret's name (`bootstrap-token-<id>`).
pub const SECRET_PREFIX: &str = "bootstrap-token-";

/// A bootstrap token: a public id and a secret. `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: Zeroizing<String>,
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Draws `n` characters of [`ALPHABET`] uniformly from `bytes`, dropping bytes ≥ 252 (the
/// largest multiple of 36 below 256) so no character is more likely than another. `None` when
/// `bytes` runs out first.
fn draw(bytes: &mut impl Iterator<Item = u8>, n: usize) -> Option<String> {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let b = bytes.next()?;
        if b < 252 {
            out.push(char::from(ALPHABET[usize::from(b % 36)]));
        }
    }
    Some(out)
}

fn valid(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| ALPHABET.contains(&b))
}

impl BootstrapToken {
    /// A new random token (the operating system's randomness).
    pub fn generate() -> Result<Self, Error> {
        loop {
            let mut buf = Zeroizing::new([0u8; 64]);
            getrandom::fill(buf.as_mut_slice()).map_err(|e| Error::Invalid {
                field: "bootstrap token".into(),
                message: format!("the operating system gave no randomness: {e}"),
            })?;
            if let Some(t) = Self::from_random_bytes(buf.iter().copied()) {
                return Ok(t);
            }
        }
    }

    /// The token drawn from `bytes` (uniform random bytes), or `None` when they run out.
    /// [`generate`](Self::generate) feeds it the operating system's randomness.
    pub fn from_random_bytes(bytes: impl IntoIterator<Item = u8>) -> Option<Self> {
        let mut it = bytes.into_iter();
        let id = draw(&mut it, ID_LEN)?;
        let secret = Zeroizing::new(draw(&mut it, SECRET_LEN)?);
        Some(Self { id, secret })
    }

    /// Parses `<id>.<secret>`; the error never repeats the input (it may hold a secret).
    pub fn parse(token: &str) -> Result<Self, Error> {
        match token.split_once('.') {
            Some((id, secret)) if valid(id, ID_LEN) && valid(secret, SECRET_LEN) => Ok(Self {
                id: id.to_owned(),
                secret: Zeroizing::new(secret.to_owned()),
            }),
            _ => Err(Error::Invalid {
                field: "token".into(),
                message: "a bootstrap token is `[a-z0-9]{6}.[a-z0-9]{16}`".into(),
            }),
        }
    }

    /// Whether `id` is a well-formed token id (`[a-z0-9]{6}`).
    pub fn is_valid_id(id: &str) -> bool {
        valid(id, ID_LEN)
    }

    /// The public id (`[a-z0-9]{6}`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret (`[a-z0-9]{16}`). Never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// `<id>.<secret>`, zeroized on drop.
    pub fn to_token_string(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}.{}", self.id, self.secret.as_str()))
    }

    /// The Secret's name: `bootstrap-token-<id>`.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.id)
    }

    /// The `bootstrap.kubernetes.io/token` Secret in `kube-system`, as `kubeadm token create`
    /// makes it: usable for authentication and for signing `cluster-info`, in the default
    /// node-token group, expiring at `expiration` (`None`: never; the token cleaner deletes
    /// expired ones).
    pub fn to_secret(&self, expiration: Option<OffsetDateTime>, description: &str) -> Secret {
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_owned(), ByteString(v.as_bytes().to_vec()));
        };
        put("token-id", &self.id);
        put("token-secret", &self.secret);
        put("usage-bootstrap-authentication", "true");
        put("usage-bootstrap-signing", "true");
        put("auth-extra-groups", DEFAULT_NODE_TOKEN_GROUP);
        if !description.is_empty() {
            put("description", description);
        }
        if let Some(t) = expiration.and_then(|t| rfc3339(t).ok()) {
            put("expiration", &t);
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(self.secret_name()),
                namespace: Some("kube-system".into()),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(data),
            ..Default::default()
        }
    }
}

/// RFC 3339 in UTC with seconds (`2026-01-02T03:04:05Z`), as the token Secret's `expiration`.
pub fn rfc3339(t: OffsetDateTime) -> Result<String, Error> {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| Error::Invalid {
            field: "expiration".into(),
            message: e.to_string(),
        })?;
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Invalid {
            field: "expiration".into(),
            message: e.to_string(),
        })
}

/// `sha256:<hex>` of the SubjectPublicKeyInfo (DER) of the first certificate in `ca_pem` — the
/// value of `kubeadm join --discovery-token-ca-cert-hash`.
pub fn ca_cert_hash(ca_pem: &str) -> Result<String, Error> {
    let ders = frankenetes_pki::x509::pem_certs(ca_pem).map_err(|e| Error::Invalid {
        field: "CA certificate".into(),
        message: e,
    })?;
    let der = ders.first().ok_or_else(|| Error::Invalid {
        field: "CA certificate".into(),
        message: "no certificate in the PEM text".into(),
    })?;
    let info = frankenetes_pki::x509::parse(der).map_err(|e| Error::Invalid {
        field: "CA certificate".into(),
        message: e,
    })?;
    let digest = Sha256::digest(&info.spki);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    Ok(format!("sha256:{hex}"))
}

/// `kubeadm join <endpoint> --token <id.secret> --discovery-token-ca-cert-hash <hash>`. It holds
/// the secret: print it to the user, never log it.
pub fn join_command(endpoint: &str, token: &BootstrapToken, ca_hash: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "kubeadm join {endpoint} --token {} --discovery-token-ca-cert-hash {ca_hash}",
        token.to_token_string().as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// Whatever random bytes come, ids and secrets are kubeadm's format.
        #[test]
        fn any_random_bytes_give_kubeadms_format(bytes in proptest::collection::vec(any::<u8>(), 22..200)) {
            if let Some(t) = BootstrapToken::from_random_bytes(bytes) {
                prop_assert!(valid(t.id(), ID_LEN), "{}", t.id());
                prop_assert!(valid(t.secret(), SECRET_LEN));
                let back = BootstrapToken::parse(&t.to_token_string()).unwrap();
                prop_assert_eq!(back, t);
            }
        }

        /// Anything that is not the format is refused, and the error does not echo it.
        #[test]
        fn malformed_tokens_are_refused(s in "[a-zA-Z0-9._-]{0,30}") {
            let ok = s.split_once('.').is_some_and(|(i, x)| valid(i, ID_LEN) && valid(x, SECRET_LEN));
            match BootstrapToken::parse(&s) {
                Ok(_) => prop_assert!(ok),
                Err(e) => {
                    prop_assert!(!ok);
                    prop_assert!(s.len() < 12 || !e.to_string().contains(&s));
                }
            }
        }
    }

    #[test]
    fn no_two_tokens_collide_in_a_large_sample() {
        let mut ids = HashSet::new();
        let mut secrets = HashSet::new();
        let n = 20_000;
        for _ in 0..n {
            let t = BootstrapToken::generate().unwrap();
            assert!(valid(t.id(), ID_LEN) && valid(t.secret(), SECRET_LEN));
            secrets.insert(t.secret().to_owned());
            ids.insert(t.id().to_owned());
        }
        assert_eq!(secrets.len(), n, "two secrets collided");
        // 36^6 ≈ 2.2e9 ids: 20 000 of them collide with probability ≈ 9 %, so ids are checked
        // for spread, not for uniqueness.
        assert!(ids.len() >= n - 5, "{} distinct ids of {n}", ids.len());
        // Every character of the alphabet shows up in every position of the secret.
        for pos in 0..SECRET_LEN {
            let seen: HashSet<u8> = secrets.iter().map(|s| s.as_bytes()[pos]).collect();
            assert_eq!(seen.len(), 36, "position {pos}");
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let t = BootstrapToken::generate().unwrap();
        let d = format!("{t:?}");
        assert!(d.contains(t.id()) && !d.contains(t.secret()), "{d}");
        let s = t.to_secret(None, "x");
        let shown = format!("{t:?}");
        assert!(!shown.contains(t.secret()));
        assert_eq!(s.type_.as_deref(), Some(SECRET_TYPE));
        let data = s.data.unwrap();
        assert_eq!(data["token-secret"].0, t.secret().as_bytes());
        assert!(!data.contains_key("expiration"));
    }

    #[test]
    fn expiration_is_rfc3339_utc() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.678 +01:00);
        assert_eq!(rfc3339(t).unwrap(), "2026-01-02T02:04:05Z");
    }
}
