//! What changed for a running unit: the command the backend runs compared with what the
//! spec renders now, flag by flag. `up` restarts changed units one at a time, each behind
//! its wave's gate; `plan` lists them with the reason.

use std::collections::BTreeMap;

use frankenetes_compute::{Platform, Unit, UnitKind, UnitSpec, UnitState};
use serde::Serialize;

use super::{Cluster, backend};
use crate::{Error, Phase};

/// A running unit that `up` restarts because what the spec renders for it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Restart {
    /// The unit (`etcd-control-01`).
    pub unit: String,
    /// What changed (`--quota-backend-bytes: 2147483648 → 4294967296`).
    pub why: String,
}

impl<P: Platform> Cluster<P> {
    /// The running units `up` would restart because what the spec renders for them changed,
    /// and why. Only where the platform runs on this machine ([`Placement::Host`]): listing a
    /// remote backend's units is a call, and `plan` makes none.
    ///
    /// [`Placement::Host`]: frankenetes_compute::Placement::Host
    pub async fn restarts(&self, w: &frankenetes_compute::Workload) -> Result<Vec<Restart>, Error> {
        if self.platform.placement() != frankenetes_compute::Placement::Host {
            return Ok(Vec::new());
        }
        let units = self
            .platform
            .backend()
            .list(&self.tag)
            .await
            .map_err(backend(Phase::Preflight))?;
        let mut out = Vec::new();
        for wave in self.platform.waves(w).map_err(backend(Phase::Preflight))? {
            for u in &wave.units {
                if let Some(r) = units
                    .iter()
                    .find(|r| r.name == u.name && r.state == UnitState::Running)
                    && let Compare::Changed(why) = compare(u, r)
                {
                    out.push(Restart {
                        unit: u.name.clone(),
                        why,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Flags etcd reads only when a member first starts: "used in bootstrapping … and ignored
/// when restarting an existing member" (etcd's configuration docs). A difference in them is
/// no reason to restart a running member — a member re-joined with
/// `--initial-cluster-state=existing` keeps that flag while the spec renders `new`.
const ETCD_BOOTSTRAP_FLAGS: [&str; 4] = [
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "initial-advertise-peer-urls",
];

/// How a unit the backend runs compares with its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Compare {
    /// The backend does not report commands (or the unit is not a container group).
    Unknown,
    /// Nothing that matters differs.
    Same,
    /// What differs, for people.
    Changed(String),
}

/// The arguments that matter for a restart: for etcd, without its bootstrap-only flags.
fn relevant<'a>(container: &str, argv: &'a [String]) -> Vec<&'a str> {
    argv.iter()
        .map(String::as_str)
        .filter(|a| {
            container != "etcd"
                || !ETCD_BOOTSTRAP_FLAGS.iter().any(|f| {
                    a.strip_prefix("--")
                        .and_then(|r| r.strip_prefix(f))
                        .is_some_and(|r| r.is_empty() || r.starts_with('='))
                })
        })
        .collect()
}

/// Compares what `unit` runs with what `spec` asks for.
pub(crate) fn compare(spec: &UnitSpec, unit: &Unit) -> Compare {
    let UnitKind::ContainerGroup(group) = &spec.kind else {
        return Compare::Unknown;
    };
    if unit.commands.is_empty() {
        return Compare::Unknown;
    }
    let mut why = Vec::new();
    for c in &group.containers {
        match unit.commands.get(&c.name) {
            None => why.push(format!("container {} added", c.name)),
            Some(old) => {
                let (old, new) = (relevant(&c.name, old), relevant(&c.name, &c.command));
                if old != new {
                    why.push(describe(&old, &new));
                }
            }
        }
    }
    for name in unit.commands.keys() {
        if !group.containers.iter().any(|c| &c.name == name) {
            why.push(format!("container {name} removed"));
        }
    }
    if why.is_empty() {
        Compare::Same
    } else {
        Compare::Changed(why.join("; "))
    }
}

/// Why a running unit must restart although its command is the same: it reads a file that
/// was renewed in this run (a kubeconfig, a certificate), and the component reads its files
/// only at start. etcd is the exception: it reads its certificates on each TLS handshake
/// (the renewal test shows its peers and clients moving to the new ones without a restart).
pub(crate) fn reads_renewed(spec: &UnitSpec, renewed: &[std::path::PathBuf]) -> Option<String> {
    let UnitKind::ContainerGroup(group) = &spec.kind else {
        return None;
    };
    let files: Vec<String> = group
        .containers
        .iter()
        .filter(|c| c.name != "etcd")
        .flat_map(|c| c.command.iter())
        .filter_map(|a| {
            let value = a.split_once('=').map_or(a.as_str(), |(_, v)| v);
            renewed
                .iter()
                .find(|r| r.as_os_str() == value)
                .and_then(|r| r.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .collect();
    (!files.is_empty()).then(|| format!("renewed {}: read only at start", files.join(", ")))
}

/// A value shortened for a message.
fn short(v: &str) -> String {
    const MAX: usize = 48;
    if v.chars().count() <= MAX {
        v.to_owned()
    } else {
        format!("{}…", v.chars().take(MAX).collect::<String>())
    }
}

/// `--flag=value` arguments as a map; other arguments (the binary, positionals) in order.
fn split<'a>(argv: &[&'a str]) -> (BTreeMap<&'a str, &'a str>, Vec<&'a str>) {
    let mut flags = BTreeMap::new();
    let mut rest = Vec::new();
    for a in argv {
        match a.strip_prefix("--").and_then(|r| r.split_once('=')) {
            Some((k, v)) => {
                flags.insert(k, v);
            }
            None => rest.push(*a),
        }
    }
    (flags, rest)
}

/// The difference between two command lines, flag by flag.
fn describe(old: &[&str], new: &[&str]) -> String {
    let (of, orest) = split(old);
    let (nf, nrest) = split(new);
    let mut out = Vec::new();
    if orest.first() != nrest.first() {
        out.push(format!(
            "binary {} → {}",
            orest.first().copied().unwrap_or("(none)"),
            nrest.first().copied().unwrap_or("(none)")
        ));
    }
    for (k, v) in &nf {
        match of.get(k) {
            None => out.push(format!("--{k}={} added", short(v))),
            Some(o) if o != v => out.push(format!("--{k}: {} → {}", short(o), short(v))),
            Some(_) => {}
        }
    }
    for k in of.keys().filter(|k| !nf.contains_key(*k)) {
        out.push(format!("--{k} removed"));
    }
    if orest.get(1..) != nrest.get(1..) {
        out.push("other arguments changed".into());
    }
    out.join(", ")
}

/// `argv` with `--name=value`, replacing the flag where it is.
pub(crate) fn set_flag(argv: &mut Vec<String>, name: &str, value: &str) {
    let prefix = format!("--{name}=");
    let arg = format!("{prefix}{value}");
    match argv.iter_mut().find(|a| a.starts_with(&prefix)) {
        Some(a) => *a = arg,
        None => argv.push(arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frankenetes_compute::{ClusterTag, ContainerSpec, UnitId, UnitState};

    fn unit(argv: &[&str]) -> Unit {
        let mut u = Unit::new(
            UnitId("etcd-a".into()),
            "etcd-a",
            ClusterTag::new("c"),
            UnitState::Running,
        );
        u.commands.insert(
            "etcd".into(),
            argv.iter().map(|s| (*s).to_owned()).collect(),
        );
        u
    }

    fn spec(argv: &[&str]) -> UnitSpec {
        UnitSpec::container_group(
            "etcd-a",
            ClusterTag::new("c"),
            vec![ContainerSpec::new(
                "etcd",
                "",
                argv.iter().map(|s| (*s).to_owned()),
            )],
        )
    }

    #[test]
    fn flags_changed_added_and_removed_are_named() {
        let c = compare(
            &spec(&["/bin/etcd", "--a=1", "--b=3", "--new=x"]),
            &unit(&["/bin/etcd", "--a=1", "--b=2", "--gone=y"]),
        );
        assert_eq!(
            c,
            Compare::Changed("--b: 2 → 3, --new=x added, --gone removed".into())
        );
        let c = compare(&spec(&["/v2/etcd", "--a=1"]), &unit(&["/v1/etcd", "--a=1"]));
        assert_eq!(c, Compare::Changed("binary /v1/etcd → /v2/etcd".into()));
    }

    #[test]
    fn etcd_bootstrap_flags_are_no_reason_to_restart() {
        let c = compare(
            &spec(&[
                "/bin/etcd",
                "--initial-cluster-state=new",
                "--initial-cluster=a=x",
            ]),
            &unit(&[
                "/bin/etcd",
                "--initial-cluster-state=existing",
                "--initial-cluster=a=x,b=y",
            ]),
        );
        assert_eq!(c, Compare::Same);
        // … but only those: a flag that merely starts with one of their names counts.
        let c = compare(
            &spec(&["/bin/etcd", "--initial-cluster-statex=1"]),
            &unit(&["/bin/etcd"]),
        );
        assert!(matches!(c, Compare::Changed(_)));
    }

    #[test]
    fn a_component_reading_a_renewed_file_restarts_but_etcd_does_not() {
        let renewed = vec![std::path::PathBuf::from("/b/controller-manager.conf")];
        let mut cm = spec(&["/bin/kcm", "--kubeconfig=/b/controller-manager.conf"]);
        if let UnitKind::ContainerGroup(g) = &mut cm.kind {
            g.containers[0].name = "kube-controller-manager".into();
        }
        assert_eq!(
            reads_renewed(&cm, &renewed).as_deref(),
            Some("renewed controller-manager.conf: read only at start")
        );
        assert_eq!(reads_renewed(&cm, &[]), None);
        let etcd = spec(&["/bin/etcd", "--cert-file=/b/controller-manager.conf"]);
        assert_eq!(reads_renewed(&etcd, &renewed), None);
    }

    #[test]
    fn a_backend_that_reports_no_command_is_unknown() {
        let mut u = unit(&[]);
        u.commands.clear();
        assert_eq!(compare(&spec(&["/bin/etcd"]), &u), Compare::Unknown);
    }
}
