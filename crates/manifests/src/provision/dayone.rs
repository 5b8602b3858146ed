//! The day-one objects applied by the first control plane itself (as Typhoon's bootstrap unit
//! does), so a cloud cluster gets them without the CLI reaching its apiserver: the files of
//! `cluster/addons/` are placed on the node, and a oneshot unit applies them with `kubectl
//! apply --server-side` once the node's own apiserver answers `/readyz` — the file holding
//! the binding that gives `kubeadm:cluster-admins` its rights with `super-admin.conf` (as
//! `kubeadm init` does), the rest with `admin.conf`. It is retried until it succeeds, then
//! records that in its state directory and is not run again (server-side apply under one field
//! manager: running it again changes nothing).

use frankenetes_bundle::NodeFile;
use frankenetes_bundle::fs::SECRET_MODE;
use frankenetes_bundle::systemd::{Unit, exec_line};
use frankenetes_spec::{ClusterSpec, NodeSpec};

use super::NodeBinary;
use crate::Error;
use crate::addons::FIELD_MANAGER;

/// Where the day-one files are on the first control plane.
pub const ADDONS_ON_NODE: &str = "/etc/kubernetes/addons";
/// The script the unit runs.
pub const DAY_ONE_SCRIPT: &str = "/usr/local/libexec/frankenetes-day-one";
/// The unit.
pub const DAY_ONE_UNIT: &str = "frankenetes-day-one.service";
/// How long the script waits for `/readyz` before it fails (and systemd runs it again).
const READY_TRIES: u32 = 120;
const READY_INTERVAL_SECS: u32 = 5;

/// One day-one file: its name in `cluster/addons/`, its contents, and whether it must be
/// applied with `super-admin.conf`.
#[derive(Debug, Clone)]
pub(crate) struct AddonFile {
    pub name: String,
    pub file: NodeFile,
    pub super_admin: bool,
}

/// A shell word: `'…'`, with `'` as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn script(server: &str, files: &[AddonFile]) -> String {
    let kubectl = NodeBinary::Kubectl.path();
    let mut s = format!(
        "#!/bin/sh\n\
         # Written by frankenetes: applies the day-one objects in {ADDONS_ON_NODE} once this\n\
         # node's apiserver is ready. Run by {DAY_ONE_UNIT} and retried until it succeeds;\n\
         # server-side apply, so running it again changes nothing. It records its success in\n\
         # its state directory: remove day-one.applied there to apply the files again.\n\
         set -eu\n\
         stamp=\"${{STATE_DIRECTORY:-/var/lib/frankenetes}}/day-one.applied\"\n\
         if [ -e \"$stamp\" ]; then exit 0; fi\n\
         server={server}\n\
         tries=0\n\
         until {kubectl} --kubeconfig=/etc/kubernetes/super-admin.conf --server=\"$server\" get --raw=/readyz >/dev/null; do\n\
         \x20 tries=$((tries + 1))\n\
         \x20 if [ \"$tries\" -ge {READY_TRIES} ]; then\n\
         \x20   echo \"the apiserver at $server is not ready; trying again later\" >&2\n\
         \x20   exit 1\n\
         \x20 fi\n\
         \x20 sleep {READY_INTERVAL_SECS}\n\
         done\n",
        server = sh_quote(server),
    );
    for f in files {
        let conf = if f.super_admin {
            "super-admin.conf"
        } else {
            "admin.conf"
        };
        s.push_str(&format!(
            "{kubectl} --kubeconfig=/etc/kubernetes/{conf} --server=\"$server\" apply --server-side --field-manager={FIELD_MANAGER} -f {}\n",
            sh_quote(&format!("{ADDONS_ON_NODE}/{}", f.name))
        ));
    }
    s.push_str("touch \"$stamp\"\n");
    s
}

/// The first control plane's day-one files (the objects, the script, `super-admin.conf`) and
/// its unit; nothing when there are no day-one objects.
pub(crate) fn files_and_unit(
    spec: &ClusterSpec,
    node: &NodeSpec,
    files: &[AddonFile],
    super_admin_conf: &NodeFile,
) -> Result<(Vec<NodeFile>, Option<Unit>), Error> {
    if files.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut out: Vec<NodeFile> = files
        .iter()
        .map(|f| {
            NodeFile::new(
                format!("{ADDONS_ON_NODE}/{}", f.name),
                f.file.contents.to_vec(),
                SECRET_MODE,
            )
        })
        .collect();
    let mut conf = super_admin_conf.clone();
    conf.path = "/etc/kubernetes/super-admin.conf".into();
    out.push(conf);
    out.push(NodeFile::new(
        DAY_ONE_SCRIPT,
        script(&spec.local_api_url(node), files),
        0o700,
    ));
    let unit = Unit::new(DAY_ONE_UNIT, true)
        .set(
            "Unit",
            "Description",
            "Apply the day-one objects once the local apiserver is ready",
        )
        .set("Unit", "Documentation", "https://kubernetes.io/docs/")
        .set("Unit", "Wants", "network-online.target")
        .set("Unit", "After", "network-online.target")
        .set("Unit", "After", "kubelet.service")
        .set("Unit", "StartLimitIntervalSec", "0")
        .set("Service", "Type", "oneshot")
        .set("Service", "RemainAfterExit", "true")
        .set("Service", "StateDirectory", "frankenetes")
        .set(
            "Service",
            "ExecStart",
            exec_line(&[DAY_ONE_SCRIPT.to_owned()]),
        )
        .set("Service", "Restart", "on-failure")
        .set("Service", "RestartSec", "10")
        .set("Service", "TimeoutStartSec", "15min")
        .set("Install", "WantedBy", "multi-user.target");
    Ok((out, Some(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_keep_quotes() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        assert_eq!(sh_quote("https://10.0.0.1:6443"), "'https://10.0.0.1:6443'");
    }
}
