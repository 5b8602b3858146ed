//! Single-value checks shared by the validation: addresses, paths and control characters.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Component, Path};

use serde_norway::Value;

use crate::FieldError;

/// Why an address cannot be a node's, a gateway's or an endpoint's: the unspecified address
/// (`0.0.0.0`, `::`), the IPv4 limited broadcast (`255.255.255.255`) or a multicast group, also
/// when written as an IPv4-mapped IPv6 address. Loopback is allowed (the local backend).
pub(crate) fn unusable_address(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if ip.is_unspecified() {
        return Some("the unspecified address (it means \"any\", nobody can be reached at it)");
    }
    if let IpAddr::V4(v4) = ip
        && v4.is_broadcast()
    {
        return Some("the broadcast address");
    }
    if ip.is_multicast() {
        return Some("a multicast address");
    }
    None
}

/// Whether a path must be absolute (a path on a node) or may be relative to a base directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathKind {
    /// A path on a node (`/var/lib/etcd`): absolute, not `/` itself.
    OnNode,
    /// Absolute, or relative to a base directory that it must not leave.
    UnderBase,
}

/// What is wrong with a path field, or `None`. No path may hold a `..` component: a relative
/// path would leave its base directory, and an absolute one would not say what it means.
pub(crate) fn path_problem(p: &Path, kind: PathKind) -> Option<String> {
    if p.as_os_str().is_empty() {
        return Some("is empty; give a path".into());
    }
    if p.components().any(|c| c == Component::ParentDir) {
        let what = match kind {
            PathKind::OnNode => "the absolute path it means",
            PathKind::UnderBase => "the path it means (a relative path stays under its base)",
        };
        return Some(format!(
            "{:?} has a `..` component; write {what} without `..`",
            p.display().to_string()
        ));
    }
    if kind == PathKind::OnNode {
        if !p.is_absolute() {
            return Some(format!(
                "{:?} is relative; write an absolute path on the node (like /var/lib/etcd)",
                p.display().to_string()
            ));
        }
        if p.components().all(|c| matches!(c, Component::RootDir)) {
            return Some(
                "is `/`; give an absolute path of a directory of its own (like /var/lib/etcd)"
                    .into(),
            );
        }
    }
    None
}

/// Whether `c` may not appear in a spec string: a control character (C0, DEL, C1), a line or
/// paragraph separator, or a bidirectional override (text that displays other than it reads).
pub(crate) fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// The first forbidden character of `s` and its position (in characters).
fn forbidden(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| is_forbidden_char(*c))
}

/// `s` with every forbidden character escaped (`\n`, `\u{7}`), for paths and messages that
/// end up on a terminal.
pub(crate) fn escape_forbidden(s: &str) -> String {
    s.chars()
        .map(|c| {
            if is_forbidden_char(c) {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A map key as it appears in a field path: printable, with anything else escaped.
pub(crate) fn key_in_path(k: &str) -> String {
    k.escape_debug().to_string()
}

/// Every string (and map key) of the serialized document that holds a control character, as
/// errors at their field paths. Walking the serialized form covers every field, including
/// ones added later, without listing them.
pub(crate) fn control_characters(doc: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    walk(doc, String::new(), &mut out);
    out
}

fn message(at: usize, c: char, what: &str) -> String {
    format!(
        "{what} a control character ({:?}, U+{:04X}) at character {}; write it on one line \
         without tabs, newlines or other control characters",
        c,
        u32::from(c),
        at + 1
    )
}

fn walk(v: &Value, path: String, out: &mut Vec<FieldError>) {
    match v {
        Value::String(s) => {
            if let Some((at, c)) = forbidden(s) {
                out.push(FieldError {
                    path,
                    message: message(at, c, "holds"),
                });
            }
        }
        Value::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                walk(x, format!("{path}[{i}]"), out);
            }
        }
        Value::Mapping(m) => {
            for (k, x) in m {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other)
                        .unwrap_or_default()
                        .trim_end()
                        .to_owned(),
                };
                let p = if path.is_empty() {
                    key_in_path(&key)
                } else {
                    format!("{path}.{}", key_in_path(&key))
                };
                if let Some((at, c)) = forbidden(&key) {
                    out.push(FieldError {
                        path: p.clone(),
                        message: message(at, c, "the key holds"),
                    });
                }
                walk(x, p, out);
            }
        }
        Value::Tagged(t) => walk(&t.value, path, out),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Drops the errors at a path that already has a control-character error: a value with a
/// newline is reported once, for the newline, not also for every rule it then breaks.
pub(crate) fn dedupe(control: Vec<FieldError>, rest: Vec<FieldError>) -> Vec<FieldError> {
    let seen: HashSet<String> = control.iter().map(|e| e.path.clone()).collect();
    control
        .into_iter()
        .chain(rest.into_iter().filter(|e| !seen.contains(&e.path)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for bad in [
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
            "::ffff:255.255.255.255",
            "::ffff:0.0.0.0",
        ] {
            assert!(
                unusable_address(bad.parse().unwrap()).is_some(),
                "{bad} accepted"
            );
        }
        for good in ["127.0.0.11", "::1", "10.0.0.1", "fd00::1", "192.168.1.255"] {
            assert!(
                unusable_address(good.parse().unwrap()).is_none(),
                "{good} refused"
            );
        }
    }

    #[test]
    fn paths() {
        let p = |s: &str, k| path_problem(Path::new(s), k);
        assert!(p("/var/lib/etcd", PathKind::OnNode).is_none());
        assert!(p("backups/etcd", PathKind::UnderBase).is_none());
        assert!(p("/mnt/backups", PathKind::UnderBase).is_none());
        assert!(p("../x", PathKind::UnderBase).is_some());
        assert!(p("a/../../x", PathKind::UnderBase).is_some());
        assert!(p("/a/..", PathKind::OnNode).is_some());
        assert!(p("a", PathKind::OnNode).is_some());
        assert!(p("/", PathKind::OnNode).is_some());
        assert!(p("//", PathKind::OnNode).is_some());
        assert!(p("", PathKind::UnderBase).is_some());
    }

    #[test]
    fn forbidden_characters() {
        for c in [
            '\n', '\t', '\0', '\r', '\u{7f}', '\u{85}', '\u{2028}', '\u{202e}',
        ] {
            assert!(is_forbidden_char(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '—', '/'] {
            assert!(!is_forbidden_char(c), "{c:?}");
        }
    }
}
