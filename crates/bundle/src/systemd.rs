//! systemd units, typed: sections of ordered `key=value` lines, or a unit the OS ships that is
//! only enabled, or a masked one; and command lines quoted as systemd unquotes them.

use std::fmt;

use crate::Error;

/// Where unit files of ours go on the machine.
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// Where the OS's packages keep their unit files.
pub const VENDOR_UNIT_DIR: &str = "/usr/lib/systemd/system";

/// Where a unit's file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnitKind {
    /// Ours: written from [`Unit::sections`] to [`UNIT_DIR`].
    Ours,
    /// Shipped by an OS package (like `wg-quick@.service` or `containerd.service`): no file is
    /// written; enabling links it into `wanted_by`'s `.wants/`.
    Shipped {
        /// The target it is enabled into (its `WantedBy=`).
        wanted_by: String,
    },
    /// Masked: linked to `/dev/null`, so nothing can start it (`systemctl mask`).
    Masked,
}

/// A systemd unit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unit {
    /// File name (`kubelet.service`).
    pub name: String,
    /// Whether it is enabled at boot (`WantedBy` is honoured).
    pub enabled: bool,
    /// Sections in order, each with its lines in order (empty unless [`UnitKind::Ours`]).
    pub sections: Vec<(String, Vec<(String, String)>)>,
    /// Ours, shipped by the OS, or masked.
    pub kind: UnitKind,
}

impl Unit {
    /// An empty unit of ours.
    pub fn new(name: impl Into<String>, enabled: bool) -> Self {
        Self {
            name: name.into(),
            enabled,
            sections: Vec::new(),
            kind: UnitKind::Ours,
        }
    }

    /// A unit an OS package ships, enabled into `wanted_by` (no file of ours).
    pub fn shipped(name: impl Into<String>, wanted_by: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            enabled: true,
            sections: Vec::new(),
            kind: UnitKind::Shipped {
                wanted_by: wanted_by.into(),
            },
        }
    }

    /// A masked unit (`docker.service` on a node whose runtime is containerd).
    pub fn masked(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            enabled: false,
            sections: Vec::new(),
            kind: UnitKind::Masked,
        }
    }

    /// Adds a line to a section, creating the section at the end if needed.
    #[must_use]
    pub fn set(mut self, section: &str, key: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        match self.sections.iter_mut().find(|(s, _)| s == section) {
            Some((_, lines)) => lines.push((key.into(), value)),
            None => self
                .sections
                .push((section.into(), vec![(key.into(), value)])),
        }
        self
    }

    /// A service running `argv` (binary first), restarted always; each argument quoted as
    /// systemd unquotes it ([`exec_line`]).
    pub fn service(
        name: &str,
        description: &str,
        argv: &[String],
        enabled: bool,
        after: &[&str],
    ) -> Self {
        let mut u = Unit::new(name, enabled)
            .set("Unit", "Description", description)
            .set("Unit", "Documentation", "https://kubernetes.io/docs/");
        for a in after {
            u = u.set("Unit", "Wants", *a).set("Unit", "After", *a);
        }
        u.set("Service", "ExecStart", exec_line(argv))
            .set("Service", "Restart", "always")
            .set("Service", "RestartSec", "5")
            .set("Service", "LimitNOFILE", "1048576")
            .set("Install", "WantedBy", "multi-user.target")
    }

    /// The value of `key` in `section` (the first, if repeated).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(s, _)| s == section)?
            .1
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The target it is enabled into: `WantedBy` of ours, the given target of a shipped one.
    pub fn wanted_by(&self) -> Option<&str> {
        match &self.kind {
            UnitKind::Ours => self.get("Install", "WantedBy"),
            UnitKind::Shipped { wanted_by } => Some(wanted_by),
            UnitKind::Masked => None,
        }
    }

    /// The unit file to write, for a unit of ours.
    pub fn contents(&self) -> Option<String> {
        matches!(self.kind, UnitKind::Ours).then(|| self.to_string())
    }

    /// The symlink `systemctl enable`/`mask` would make: its path relative to [`UNIT_DIR`]
    /// and its target. `None` for a unit that is neither enabled nor masked.
    pub fn link(&self) -> Option<(String, String)> {
        match &self.kind {
            UnitKind::Masked => Some((self.name.clone(), "/dev/null".into())),
            _ if !self.enabled => None,
            UnitKind::Ours => {
                let target = self.wanted_by()?;
                Some((
                    format!("{target}.wants/{}", self.name),
                    format!("{UNIT_DIR}/{}", self.name),
                ))
            }
            UnitKind::Shipped { wanted_by } => {
                // An instance (`wg-quick@wg0.service`) links to its template.
                let file = match (self.name.split_once('@'), self.name.rsplit_once('.')) {
                    (Some((prefix, _)), Some((_, suffix))) => format!("{prefix}@.{suffix}"),
                    _ => self.name.clone(),
                };
                Some((
                    format!("{wanted_by}.wants/{}", self.name),
                    format!("{VENDOR_UNIT_DIR}/{file}"),
                ))
            }
        }
    }

    /// Checks that every line can be written: no control character (a newline would end the
    /// line and start another setting) in a section name, key or value — except the line
    /// continuations [`exec_line`] writes (`\\` at the end of a line, then an indented line that
    /// systemd does not take for a comment).
    pub fn check(&self) -> Result<(), Error> {
        let bad = |s: &str| s.chars().any(char::is_control);
        let bad_value = |s: &str| {
            let mut rest = s;
            while let Some(i) = rest.find('\n') {
                let (line, next) = (&rest[..i], &rest[i + 1..]);
                let continued = next.trim_start_matches([' ', '\t']);
                if !line.ends_with('\\')
                    || line.chars().any(char::is_control)
                    || continued.is_empty()
                    || continued.starts_with(['#', ';'])
                {
                    return true;
                }
                rest = next;
            }
            rest.chars().any(char::is_control)
        };
        if bad(&self.name) || self.name.contains('/') || self.name.is_empty() {
            return Err(Error::Invalid {
                what: format!("unit name {:?}", self.name),
                reason: "must be a plain file name without control characters".into(),
            });
        }
        for (section, lines) in &self.sections {
            for (k, v) in lines {
                if bad(section) || bad(k) || bad_value(v) {
                    return Err(Error::Invalid {
                        what: format!("{}: [{section}] {k}", self.name),
                        reason: format!(
                            "the value {v:?} holds a control character (a newline would start another setting)"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# Written by frankenetes.")?;
        for (i, (section, lines)) in self.sections.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "[{section}]")?;
            for (k, v) in lines {
                writeln!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// One argument of a command line, quoted so that systemd's unquoting (`systemd.syntax(7)`,
/// "Quoting", with C escapes) gives it back unchanged, and with `%` and `$` doubled so that
/// neither specifier nor environment expansion touches it. Plain arguments are left as they
/// are; anything with white space, quotes, a backslash, a control character, or that is empty
/// or starts with `;` or `#` is put in double quotes with `\\`, `\"` and C escapes.
pub fn quote_arg(arg: &str) -> String {
    let escaped_specials = arg.replace('%', "%%").replace('$', "$$");
    // `#` or `;` at the start of a continuation line ([`exec_line`]) makes systemd skip the
    // line as a comment, and a lone `;` separates commands: quoted, they are arguments.
    let needs_quotes = arg.is_empty()
        || arg.starts_with(['#', ';'])
        || arg
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'));
    if !needs_quotes {
        return escaped_specials;
    }
    let mut out = String::with_capacity(escaped_specials.len() + 2);
    out.push('"');
    for c in escaped_specials.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A command line for `ExecStart=`: every argument through [`quote_arg`], one per line with
/// `\` continuations (readable in `systemctl cat`).
pub fn exec_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| quote_arg(a))
        .collect::<Vec<_>>()
        .join(" \\\n    ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_arguments_stay_plain() {
        assert_eq!(
            quote_arg("--etcd-servers=https://127.0.0.1:2379"),
            "--etcd-servers=https://127.0.0.1:2379"
        );
        assert_eq!(quote_arg("/usr/bin/kubelet"), "/usr/bin/kubelet");
    }

    #[test]
    fn hostile_arguments_are_one_quoted_word() {
        assert_eq!(
            quote_arg("30 --anonymous-auth=true"),
            "\"30 --anonymous-auth=true\""
        );
        assert_eq!(quote_arg("a\nb"), "\"a\\nb\"");
        assert_eq!(quote_arg("100%"), "100%%");
        assert_eq!(quote_arg("$HOME"), "$$HOME");
        assert_eq!(quote_arg("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(quote_arg(""), "\"\"");
        assert_eq!(quote_arg(";"), "\";\"");
        assert_eq!(quote_arg("#x"), "\"#x\"");
        assert_eq!(quote_arg(";x"), "\";x\"");
        assert_eq!(quote_arg("a#;"), "a#;");
    }

    #[test]
    fn links_of_each_kind() {
        let ours = Unit::new("a.service", true).set("Install", "WantedBy", "multi-user.target");
        assert_eq!(
            ours.link(),
            Some((
                "multi-user.target.wants/a.service".into(),
                "/etc/systemd/system/a.service".into()
            ))
        );
        let shipped = Unit::shipped("wg-quick@wg0.service", "multi-user.target");
        assert_eq!(
            shipped.link(),
            Some((
                "multi-user.target.wants/wg-quick@wg0.service".into(),
                "/usr/lib/systemd/system/wg-quick@.service".into()
            ))
        );
        assert_eq!(
            Unit::masked("docker.service").link(),
            Some(("docker.service".into(), "/dev/null".into()))
        );
        assert_eq!(Unit::new("b.service", false).link(), None);
    }

    #[test]
    fn exec_lines_continuations_pass_the_check_and_other_newlines_do_not() {
        let argv: Vec<String> = ["/bin/x", "#a", ";b", "c d", "e\nf"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let u = Unit::service("x.service", "x", &argv, true, &[]);
        assert!(u.get("Service", "ExecStart").unwrap().contains(" \\\n    "));
        u.check().unwrap();
        for v in [
            "a \\\n    #comment",
            "a \\\n;x",
            "a \\\n",
            "a\nb",
            "a \\\r\nb",
        ] {
            let u = Unit::new("a.service", true).set("Service", "ExecStart", v);
            assert!(u.check().is_err(), "{v:?}");
        }
    }

    #[test]
    fn a_newline_in_a_value_is_refused() {
        let u =
            Unit::new("a.service", true).set("Unit", "Description", "x\nExecStartPre=/bin/evil");
        assert!(u.check().is_err());
        assert!(
            Unit::new("a.service", true)
                .set("Unit", "Description", "fine")
                .check()
                .is_ok()
        );
    }
}
