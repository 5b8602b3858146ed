//! Kubeconfigs found in a directory by their content (`kind: Config` with users that embed a
//! client certificate as `client-certificate-data`), and rewriting one user's certificate and
//! key in place, keeping every other byte of the file.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_norway::Value;
use zeroize::Zeroizing;

use crate::keys::PrivateKey;
use crate::x509;

/// What marks a file worth parsing as a kubeconfig.
pub(crate) const MARKER: &str = "client-certificate-data";

/// A user of a kubeconfig whose client certificate is embedded.
pub(crate) struct EmbeddedUser {
    /// The user's name in the kubeconfig.
    pub(crate) name: String,
    /// `client-certificate-data` as written in the file (base64 of PEM).
    pub(crate) cert_data: String,
    /// `client-key-data` as written, if present.
    pub(crate) key_data: Option<Zeroizing<String>>,
    /// The certificates in `client-certificate-data` (DER, leaf first), or why they do not
    /// decode.
    pub(crate) ders: Result<Vec<Vec<u8>>, String>,
    /// The key in `client-key-data`: `None` when absent.
    pub(crate) key: Option<Result<PrivateKey, String>>,
}

/// A kubeconfig with at least one embedded client certificate.
pub(crate) struct Kubeconfig {
    /// Relative to the directory scanned.
    pub(crate) rel: PathBuf,
    /// The file's text (it holds keys).
    pub(crate) text: Zeroizing<String>,
    /// Users with an embedded certificate, in file order.
    pub(crate) users: Vec<EmbeddedUser>,
    /// The first certificate of each cluster's `certificate-authority-data` (DER).
    pub(crate) cluster_cas: Vec<Result<Vec<u8>, String>>,
}

fn decode_pem(data: &str) -> Result<Zeroizing<String>, String> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(data.trim())
            .map_err(|e| format!("not base64: {e}"))?,
    );
    std::str::from_utf8(&bytes)
        .map(|s| Zeroizing::new(s.to_owned()))
        .map_err(|_| "not PEM text".to_owned())
}

fn decode_certs(data: &str) -> Result<Vec<Vec<u8>>, String> {
    let ders = x509::pem_certs(&decode_pem(data)?)?;
    for d in &ders {
        x509::parse(d)?;
    }
    Ok(ders)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Parses `text` as a kubeconfig; `None` when it is not one with an embedded client
/// certificate (any other YAML or JSON, an Ignition config, a kubeconfig with file paths).
pub(crate) fn parse(rel: PathBuf, text: Zeroizing<String>) -> Option<Kubeconfig> {
    if !text.contains(MARKER) {
        return None;
    }
    let doc: Value = serde_norway::from_str(&text).ok()?;
    if str_at(&doc, "kind").is_some_and(|k| k != "Config") {
        return None;
    }
    let users: Vec<EmbeddedUser> = doc
        .get("users")?
        .as_sequence()?
        .iter()
        .filter_map(|u| {
            let name = str_at(u, "name").unwrap_or_default().to_owned();
            let user = u.get("user")?;
            let cert_data = str_at(user, "client-certificate-data")?.to_owned();
            let key_data = str_at(user, "client-key-data").map(|k| Zeroizing::new(k.to_owned()));
            let key = key_data.as_ref().map(|k| {
                decode_pem(k).and_then(|pem| PrivateKey::from_pem(&pem).map_err(|e| e.to_string()))
            });
            Some(EmbeddedUser {
                name,
                ders: decode_certs(&cert_data),
                cert_data,
                key_data,
                key,
            })
        })
        .collect();
    if users.is_empty() {
        return None;
    }
    let cluster_cas = doc
        .get("clusters")
        .and_then(Value::as_sequence)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| str_at(c.get("cluster")?, "certificate-authority-data"))
                .map(|d| decode_certs(d).map(|mut v| v.swap_remove(0)))
                .collect()
        })
        .unwrap_or_default();
    Some(Kubeconfig {
        rel,
        text,
        users,
        cluster_cas,
    })
}

/// A user's new credentials: the certificate file's content and the key, PEM.
pub(crate) struct NewCredentials<'a> {
    /// The user, by name.
    pub(crate) user: &'a str,
    /// The new certificate (with its chain, as in the `.crt` file).
    pub(crate) cert_pem: &'a str,
    /// The new key.
    pub(crate) key_pem: &'a str,
}

/// `kc`'s text with each named user's `client-certificate-data` and `client-key-data`
/// replaced. The old values are replaced where they stand, so comments, order and every other
/// field stay as they were; should the file write them in a form that defeats that (a folded
/// scalar), the document is re-serialized instead.
pub(crate) fn rewrite(
    kc: &Kubeconfig,
    new: &[NewCredentials<'_>],
) -> Result<Zeroizing<String>, String> {
    let mut text = Zeroizing::new(kc.text.to_string());
    let mut wanted: Vec<(&str, String, Zeroizing<String>)> = Vec::new();
    for n in new {
        let user = kc
            .users
            .iter()
            .find(|u| u.name == n.user)
            .ok_or_else(|| format!("no user {:?}", n.user))?;
        let cert = STANDARD.encode(n.cert_pem);
        let key = Zeroizing::new(STANDARD.encode(n.key_pem));
        text = Zeroizing::new(text.replace(&user.cert_data, &cert));
        if let Some(old) = &user.key_data {
            text = Zeroizing::new(text.replace(old.as_str(), &key));
        }
        wanted.push((n.user, cert, key));
    }
    if users_hold(&text, &wanted) {
        return Ok(text);
    }
    // Re-serialize: the values were not written as plain one-line scalars.
    let mut doc: Value = serde_norway::from_str(&kc.text).map_err(|e| e.to_string())?;
    let users = doc
        .get_mut("users")
        .and_then(Value::as_sequence_mut)
        .ok_or("no users")?;
    for u in users {
        let Some(name) = str_at(u, "name").map(str::to_owned) else {
            continue;
        };
        let Some((_, cert, key)) = wanted.iter().find(|(n, _, _)| *n == name) else {
            continue;
        };
        if let Some(Value::Mapping(m)) = u.get_mut("user") {
            m.insert("client-certificate-data".into(), cert.as_str().into());
            m.insert("client-key-data".into(), key.as_str().into());
        }
    }
    let text = Zeroizing::new(serde_norway::to_string(&doc).map_err(|e| e.to_string())?);
    if users_hold(&text, &wanted) {
        Ok(text)
    } else {
        Err("the rewritten file does not read back".into())
    }
}

/// Whether `text` parses with each user holding exactly the wanted data.
fn users_hold(text: &str, wanted: &[(&str, String, Zeroizing<String>)]) -> bool {
    let Ok(doc) = serde_norway::from_str::<Value>(text) else {
        return false;
    };
    let Some(users) = doc.get("users").and_then(Value::as_sequence) else {
        return false;
    };
    wanted.iter().all(|(name, cert, key)| {
        users.iter().any(|u| {
            str_at(u, "name") == Some(name)
                && u.get("user").is_some_and(|d| {
                    str_at(d, "client-certificate-data") == Some(cert.as_str())
                        && str_at(d, "client-key-data") == Some(key.as_str())
                })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn rewrite_keeps_everything_else() {
        let key = PrivateKey::generate(frankenetes_spec::KeyAlgorithm::EcdsaP256).unwrap();
        let kp = rcgen::KeyPair::from_pem(&key.to_pem()).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap()
            .pem();
        let text = format!(
            "# kept\napiVersion: v1\nkind: Config\nclusters: []\nusers:\n- name: a # kept too\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&cert),
            b64(&key.to_pem())
        );
        let kc = parse("a.conf".into(), Zeroizing::new(text.clone())).unwrap();
        assert_eq!(kc.users.len(), 1);
        assert!(kc.users[0].ders.is_ok());
        let new = rewrite(
            &kc,
            &[NewCredentials {
                user: "a",
                cert_pem: "CERT",
                key_pem: "KEY",
            }],
        )
        .unwrap();
        assert!(new.starts_with("# kept\n") && new.contains("- name: a # kept too\n"));
        assert!(new.contains(&b64("CERT")) && new.contains(&b64("KEY")));
        assert_eq!(new.lines().count(), text.lines().count());

        // A value split over lines cannot be replaced where it stands: re-serialized.
        let data = b64(&cert);
        let folded = text.replace(
            &format!("client-certificate-data: {data}"),
            &format!(
                "client-certificate-data: \"{}\\\n      {}\"",
                &data[..20],
                &data[20..]
            ),
        );
        assert!(!folded.contains(&data));
        let kc = parse("a.conf".into(), Zeroizing::new(folded)).unwrap();
        let new = rewrite(
            &kc,
            &[NewCredentials {
                user: "a",
                cert_pem: "CERT",
                key_pem: "KEY",
            }],
        )
        .unwrap();
        assert!(new.contains(&b64("CERT")));
        assert!(
            parse(
                "x".into(),
                Zeroizing::new("kind: Pod\nusers: []\n# client-certificate-data".into())
            )
            .is_none()
        );
    }
}
