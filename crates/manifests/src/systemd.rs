//! systemd units, typed: sections of ordered `key=value` lines.

use std::fmt;

/// A systemd unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unit {
    /// File name (`kubelet.service`).
    pub name: String,
    /// Whether it is enabled at boot (`WantedBy` is honoured).
    pub enabled: bool,
    /// Sections in order, each with its lines in order.
    pub sections: Vec<(String, Vec<(String, String)>)>,
}

impl Unit {
    /// An empty unit.
    pub fn new(name: impl Into<String>, enabled: bool) -> Self {
        Self {
            name: name.into(),
            enabled,
            sections: Vec::new(),
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

    /// A service running `argv` (binary first), restarted on failure.
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
        let exec = argv.join(" \\\n    ");
        u.set("Service", "ExecStart", exec)
            .set("Service", "Restart", "always")
            .set("Service", "RestartSec", "5")
            .set("Service", "LimitNOFILE", "1048576")
            .set("Install", "WantedBy", "multi-user.target")
    }

    /// The `WantedBy` target, if any.
    pub fn wanted_by(&self) -> Option<&str> {
        self.sections
            .iter()
            .find(|(s, _)| s == "Install")?
            .1
            .iter()
            .find(|(k, _)| k == "WantedBy")
            .map(|(_, v)| v.as_str())
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
