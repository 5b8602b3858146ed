//! What a flag's value may hold on a command line: one token, on one line, that is not (and
//! does not carry) another flag.
//!
//! Static pods pass arguments as a list, but the same command lines also go into systemd units
//! (`frankenetes-*.service`, `kubelet.service`), the local backend's processes and container
//! definitions; a value such as `30 --anonymous-auth=true` or one with a newline must not turn
//! into a second flag, or cut the line, in any of them. So every value is checked for its flag
//! before anything is rendered:
//!
//! - no control character (a newline, a tab, …) and no line or paragraph separator;
//! - no white space — except in the absolute paths frankenetes renders itself (the local
//!   backend's bundle directory may hold a space; quoting keeps it one argument);
//! - no leading `--`, and no white-space-separated word that is a flag of the component:
//!   a value never carries a flag, also not one a security guard keeps out of `extraArgs`.
//!
//! Every value is still quoted for the format it goes into (systemd: [`frankenetes_bundle::systemd::quote_arg`]).

use crate::versions::Inventory;

/// Whether `c` cannot appear in a command-line value: a control character, or a line or
/// paragraph separator.
fn is_line_breaking(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// What is wrong with `value` as the value of one flag of the component `inv` describes, or
/// `None`. `rendered_path` allows white space, for absolute paths frankenetes renders itself.
pub(crate) fn problem(inv: &Inventory, value: &str, rendered_path: bool) -> Option<String> {
    let shown = value.escape_debug();
    if let Some(c) = value.chars().find(|c| is_line_breaking(*c)) {
        return Some(format!(
            "the value \"{shown}\" holds a control character ({}); a command line is one line: \
             write the value without it",
            c.escape_debug()
        ));
    }
    let carried = value
        .split(char::is_whitespace)
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split('=').next().unwrap_or_default())
        .find(|name| inv.has(name));
    if let Some(name) = carried {
        return Some(format!(
            "the value \"{shown}\" carries a second flag, --{name}: a value is one token and \
             cannot add a flag; give --{name} its own entry (frankenetes refuses the flags it \
             renders from spec.security)"
        ));
    }
    if value.starts_with("--") {
        return Some(format!(
            "the value \"{shown}\" starts with `--`: a value cannot be a flag; write the value alone"
        ));
    }
    if !rendered_path && value.contains(char::is_whitespace) {
        return Some(format!(
            "the value \"{shown}\" holds white space: a flag's value is one token (a list is \
             comma-separated, without spaces)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::Binary;

    #[test]
    fn values_that_would_split_or_carry_a_flag_are_refused() {
        let inv = Inventory::kubernetes(Binary::ApiServer, 35).unwrap();
        for (v, why) in [
            (
                "30 --anonymous-auth=true",
                "carries a second flag, --anonymous-auth",
            ),
            ("30\t--anonymous-auth", "control character (\\t)"),
            ("30\n--anonymous-auth=true", "control character (\\n)"),
            (
                "--anonymous-auth=true",
                "carries a second flag, --anonymous-auth",
            ),
            ("--not-a-flag", "starts with `--`"),
            ("Node, RBAC", "holds white space"),
            ("a\u{2028}b", "control character"),
            ("x\u{a0}y", "holds white space"),
        ] {
            let p = problem(&inv, v, false).unwrap_or_else(|| panic!("{v:?} accepted"));
            assert!(p.contains(why), "{v:?}: {p}");
        }
        for v in [
            "30",
            "Node,RBAC",
            "^https://a\\.example$",
            "100%",
            "-999",
            "",
            "a=b,c=d",
        ] {
            assert_eq!(problem(&inv, v, false), None, "{v:?}");
        }
        // Paths frankenetes renders may hold a space (a bundle directory), never a newline.
        assert_eq!(problem(&inv, "/home/me/my lab/pki/ca.crt", true), None);
        assert!(problem(&inv, "/a\n--anonymous-auth=true", true).is_some());
        assert!(problem(&inv, "/a --anonymous-auth=true", true).is_some());
    }
}
