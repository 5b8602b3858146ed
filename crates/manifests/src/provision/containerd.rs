//! containerd as the kubelet expects it: the CRI plugin on, runc (`io.containerd.runc.v2`)
//! with the systemd cgroup driver (the kubelet's `cgroupDriver: systemd`; a mismatch makes
//! pods fail), listening on the socket the kubelet's `containerRuntimeEndpoint` names, and the
//! cluster's pause image as the sandbox image. It replaces Fedora CoreOS's own
//! `/etc/containerd/config.toml` (Typhoon writes the same settings).

use frankenetes_bundle::NodeFile;
use frankenetes_bundle::fs::PUBLIC_MODE;
use frankenetes_spec::{ClusterSpec, Image};

use crate::Error;
use crate::kubelet::CONTAINERD_SOCKET;

/// Where containerd reads its configuration.
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";

/// A TOML basic string: `"…"` with `\` and `"` escaped (image references hold neither, and
/// never a control character: the spec refuses them).
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `/etc/containerd/config.toml` (config version 2, read by containerd 1.6 and 1.7).
pub fn containerd_config(spec: &ClusterSpec) -> Result<NodeFile, Error> {
    let sandbox = spec.image(Image::Pause)?.to_string();
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let text = format!(
        "# Written by frankenetes: containerd as the kubelet expects it (CRI on, runc with the\n\
         # systemd cgroup driver, the kubelet's socket, the cluster's pause image).\n\
         version = 2\n\
         root = \"/var/lib/containerd\"\n\
         state = \"/run/containerd\"\n\
         \n\
         [grpc]\n  address = {socket}\n\
         \n\
         [{cri}]\n  sandbox_image = {sandbox}\n  enable_selinux = true\n\
         \n\
         [{cri}.containerd]\n  default_runtime_name = \"runc\"\n\
         \n\
         [{cri}.containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
         \n\
         [{cri}.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n",
        socket = toml_string(CONTAINERD_SOCKET),
        sandbox = toml_string(&sandbox),
    );
    Ok(NodeFile::new(CONTAINERD_CONFIG, text, PUBLIC_MODE))
}
