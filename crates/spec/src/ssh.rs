//! `spec.ssh`: SSH access to the machines.
//!
//! ```yaml
//! ssh:
//!   authorizedKeys:
//!     - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwjBFrOL5Nw7NNdseX2bUkGPmptceGzAXN1IBqLz2hi alice@laptop
//! ```
//!
//! The keys are authorized for the `core` user (Fedora CoreOS's) on every node and on the
//! gateway, through each machine's Ignition. Absent or empty: no key is installed, and no one
//! can log in over SSH.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::scalar::ValueError;

/// `spec.ssh`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct SshSpec {
    /// `authorizedKeys`: OpenSSH public key lines (`ssh-ed25519 AAAA... comment`), as in
    /// `~/.ssh/id_ed25519.pub`, for the `core` user of every node and of the gateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorized_keys: Vec<SshPublicKey>,
}

/// An OpenSSH public key line: `type base64 [comment]`, checked to be a key of a type current
/// OpenSSH accepts whose body decodes and names the same type. Options before the type
/// (`from="..."`) are not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshPublicKey {
    line: String,
    type_len: usize,
    body_end: usize,
}

/// Key types current OpenSSH accepts in `authorized_keys`, and the fields of their bodies
/// after the type.
const KEY_TYPES: &[(&str, &[Field])] = &[
    ("ssh-ed25519", &[Field::Bytes(32)]),
    ("ssh-rsa", &[Field::Mpint, Field::Mpint]),
    ("ecdsa-sha2-nistp256", &[Field::Curve("nistp256", 65)]),
    ("ecdsa-sha2-nistp384", &[Field::Curve("nistp384", 97)]),
    ("ecdsa-sha2-nistp521", &[Field::Curve("nistp521", 133)]),
    (
        "sk-ssh-ed25519@openssh.com",
        &[Field::Bytes(32), Field::Any],
    ),
    (
        "sk-ecdsa-sha2-nistp256@openssh.com",
        &[Field::Curve("nistp256", 65), Field::Any],
    ),
];

#[derive(Debug, Clone, Copy)]
enum Field {
    /// A string of exactly this many bytes.
    Bytes(usize),
    /// A multiple-precision integer (any length).
    Mpint,
    /// The curve's name, then an uncompressed point of this many bytes.
    Curve(&'static str, usize),
    /// A string of any length (the security key's application).
    Any,
}

/// Reads one SSH wire-format `string` (a 32-bit big-endian length, then the bytes).
fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (s, rest) = rest.split_at(len);
    *b = rest;
    Some(s)
}

fn body_problem(key_type: &str, fields: &[Field], body: &[u8]) -> Option<String> {
    let mut b = body;
    match take(&mut b) {
        None => {
            return Some("its base64 body is cut short; copy the whole line again".into());
        }
        Some(t) if t != key_type.as_bytes() => {
            let named = std::str::from_utf8(t)
                .ok()
                .filter(|n| KEY_TYPES.iter().any(|(k, _)| k == n) || *n == "ssh-dss");
            return Some(match named {
                Some(n) => {
                    format!("its base64 body is a {n} key, not {key_type}; copy the line again")
                }
                None => format!("its base64 body is not a {key_type} key; copy the line again"),
            });
        }
        Some(_) => {}
    }
    for f in fields {
        let ok = match f {
            Field::Bytes(n) => take(&mut b).is_some_and(|s| s.len() == *n),
            Field::Mpint => take(&mut b).is_some_and(|s| !s.is_empty()),
            Field::Curve(name, n) => {
                take(&mut b) == Some(name.as_bytes())
                    && take(&mut b).is_some_and(|s| s.len() == *n && s[0] == 4)
            }
            Field::Any => take(&mut b).is_some(),
        };
        if !ok {
            return Some(format!(
                "its base64 body is not a well-formed {key_type} key; copy the line again"
            ));
        }
    }
    (!b.is_empty()).then(|| {
        format!("its base64 body has extra bytes after the {key_type} key; copy the line again")
    })
}

impl SshPublicKey {
    /// The whole line, as written (surrounding spaces removed).
    pub fn as_str(&self) -> &str {
        &self.line
    }

    /// The key type (`ssh-ed25519`).
    pub fn key_type(&self) -> &str {
        &self.line[..self.type_len]
    }

    /// The comment after the key (`alice@laptop`), if any.
    pub fn comment(&self) -> Option<&str> {
        let c = self.line[self.body_end..].trim_start_matches(' ');
        (!c.is_empty()).then_some(c)
    }

    /// `type base64`, without the comment: what identifies the key.
    pub fn key(&self) -> &str {
        &self.line[..self.body_end]
    }
}

impl FromStr for SshPublicKey {
    type Err = ValueError;
    fn from_str(input: &str) -> Result<Self, ValueError> {
        let shown: String = if input.chars().count() > 40 {
            input.chars().take(40).chain("...".chars()).collect()
        } else {
            input.to_owned()
        };
        let bad = |reason: String| ValueError {
            input: shown.clone(),
            reason: format!("is not an OpenSSH public key line: {reason}"),
        };
        if let Some(c) = input.chars().find(|c| crate::checks::is_forbidden_char(*c)) {
            return Err(bad(format!(
                "it holds the control character {c:?}; give one key per list entry, on one line"
            )));
        }
        let line = input.trim_matches(' ');
        let (key_type, rest) = line.split_once(' ').unwrap_or((line, ""));
        if key_type == "ssh-dss" {
            return Err(bad(
                "DSA keys are refused by current OpenSSH; use an ed25519 key (ssh-keygen -t ed25519)"
                    .into(),
            ));
        }
        let Some((_, fields)) = KEY_TYPES.iter().find(|(t, _)| *t == key_type) else {
            let known: Vec<&str> = KEY_TYPES.iter().map(|(t, _)| *t).collect();
            return Err(bad(format!(
                "{key_type:?} is not a key type (options before the type are not supported); write `type key [comment]` with a type of: {}",
                known.join(", ")
            )));
        };
        let rest = rest.trim_start_matches(' ');
        let body = rest.split(' ').next().unwrap_or_default();
        if body.is_empty() {
            return Err(bad(format!("the base64 key after {key_type:?} is missing")));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| bad("the key after the type is not base64".into()))?;
        if let Some(why) = body_problem(key_type, fields, &decoded) {
            return Err(bad(why));
        }
        let type_len = key_type.len();
        let body_end = line.len() - rest.len() + body.len();
        Ok(Self {
            line: line.to_owned(),
            type_len,
            body_end,
        })
    }
}

impl TryFrom<String> for SshPublicKey {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<SshPublicKey> for String {
    fn from(k: SshPublicKey) -> String {
        k.line
    }
}

impl AsRef<str> for SshPublicKey {
    fn as_ref(&self) -> &str {
        &self.line
    }
}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl SshSpec {
    /// Cross-entry checks: the same key twice is a mistake (a copy instead of another key).
    pub(crate) fn validate(&self, err: &mut impl FnMut(String, String)) {
        for (i, k) in self.authorized_keys.iter().enumerate() {
            if let Some(j) = self.authorized_keys[..i]
                .iter()
                .position(|o| o.key() == k.key())
            {
                err(
                    format!("spec.ssh.authorizedKeys[{i}]"),
                    format!("is the same key as spec.ssh.authorizedKeys[{j}]; list each key once"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with `ssh-keygen` (OpenSSH 9); the private halves were thrown away.
    pub(crate) const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwjBFrOL5Nw7NNdseX2bUkGPmptceGzAXN1IBqLz2hi alice@laptop";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCdFzbaBFFs6GJVnJEF2llWHi7gTSxgHojbGnxXdvqj5nRQ+uJmhmyPV62RJnm0kOdt5aOAdmvwFxedyVUrKHOFjFHv7OYdNRr2Gje+a0ouyYdcmNmGLYqO1Q1Enapf1eIiOnALJgvZxywmZGlatFiKE3ZOMOvH20nEAg5zVH9fsAFqhEKeddN6TCoTkFujFJdpQcEk5FWRwBukJ4Ah4rvaUuZ0l+SZM/N95Z5cYySlCp59e3PWq5W+yBWOlUu6V2lQjzwMxhD+mQ6KSHxcZrMwxSXwlj/gr43jh/cZ5iSAsetRRS7KnD/Fj8IxiCxenstzPSGMX6Hypv5muR9rmSVt x";
    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIoDEe5UcH8K4NJPekHQo89nEzTcUd/I4DFHtinCL8lUePBFMZzILrxkWWlsQaV6yqu23Tt9UtuvDC/0PlBRuOE= alice@laptop";
    const P521: &str = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBACqRkQ722XwWWT47LqgETR571UumBgYx65+tOX7cEEYk8LR/kddGFnIln3MOlZ9gqDnH9h5Ij9FkY4EDs3bk/la/QARsmmi+fMlKOYS5B4GtzR5lTk9MjeWIYF+LqzkqVRFjJD75MDSLm5TTIOTWfh0Jv22lILcqts/vhs4MUzoXYlVdw== x";

    fn wire(parts: &[&[u8]]) -> String {
        let mut b = Vec::new();
        for p in parts {
            b.extend_from_slice(&u32::try_from(p.len()).unwrap().to_be_bytes());
            b.extend_from_slice(p);
        }
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn every_current_key_type_parses() {
        for line in [ED25519, RSA, P256, P521] {
            let k: SshPublicKey = line.parse().unwrap();
            assert_eq!(k.key_type(), line.split(' ').next().unwrap());
        }
        // Security-key types (no token here: the bodies are built by hand).
        let sk = format!(
            "sk-ssh-ed25519@openssh.com {}",
            wire(&[b"sk-ssh-ed25519@openssh.com", &[7; 32], b"ssh:"])
        );
        sk.parse::<SshPublicKey>().unwrap();
        let mut point = vec![4u8];
        point.extend([9; 64]);
        let sk = format!(
            "sk-ecdsa-sha2-nistp256@openssh.com {}",
            wire(&[
                b"sk-ecdsa-sha2-nistp256@openssh.com",
                b"nistp256",
                &point,
                b"ssh:"
            ])
        );
        sk.parse::<SshPublicKey>().unwrap();
        // The same structure with a wrong curve, a short point or trailing bytes is refused.
        for bad in [
            wire(&[b"ecdsa-sha2-nistp256", b"nistp384", &point]),
            wire(&[b"ecdsa-sha2-nistp256", b"nistp256", &point[..64]]),
            wire(&[b"ssh-ed25519", &[7; 32], b"x"]),
            wire(&[b"ssh-ed25519", &[7; 31]]),
        ] {
            let ty = if bad.starts_with("AAAAE") {
                "ecdsa-sha2-nistp256"
            } else {
                "ssh-ed25519"
            };
            assert!(
                format!("{ty} {bad}").parse::<SshPublicKey>().is_err(),
                "{ty} {bad}"
            );
        }
    }

    #[test]
    fn lines_split_into_type_key_and_comment() {
        let k: SshPublicKey = ED25519.parse().unwrap();
        assert_eq!(k.key_type(), "ssh-ed25519");
        assert_eq!(k.comment(), Some("alice@laptop"));
        assert_eq!(k.as_str(), ED25519);
        let bare: SshPublicKey = ED25519.rsplit_once(' ').unwrap().0.parse().unwrap();
        assert_eq!(bare.comment(), None);
        assert_eq!(bare.key(), k.key());
        let spaced: SshPublicKey = format!("  {ED25519} with spaces ").parse().unwrap();
        assert_eq!(spaced.comment(), Some("alice@laptop with spaces"));
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let body = ED25519.split(' ').nth(1).unwrap();
        for (line, why) in [
            ("", "not a key type"),
            ("ssh-ed25519", "missing"),
            (&format!("ssh-dss {body}"), "DSA"),
            (&format!("ssh-ed448 {body}"), "not a key type"),
            (&format!("no-pty {ED25519}"), "options"),
            ("ssh-ed25519 not-base64!", "not base64"),
            (
                &format!("ssh-rsa {body}"),
                "is a ssh-ed25519 key, not ssh-rsa",
            ),
            ("ssh-ed25519 AAAA", "cut short"),
            (
                &format!("{ED25519}\nssh-ed25519 {body}"),
                "control character",
            ),
            (&format!("ssh-ed25519\t{body}"), "control character"),
            // A truncated body: the key's 32 bytes are not all there.
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwjBFrOL5Nw7NNdseX2bUkGPmptceGzAXN1IBqL",
                "not",
            ),
        ] {
            let e = line.parse::<SshPublicKey>().unwrap_err().to_string();
            assert!(e.contains(why), "{line:?}: {e}");
            assert!(e.len() < 400, "{e}");
        }
    }
}
