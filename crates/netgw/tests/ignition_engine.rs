//! The gateway from its own Ignition config: the real Ignition engine (Debian's `ignition`,
//! the binary the Fedora CoreOS initramfs runs) applies the rendered `nodes/gateway.ign` to a
//! scratch root (stages `fetch-offline` then `files`, `-platform file`); then:
//!
//! - every file of the bundle landed byte for byte with its mode, our units too, `/etc/hostname`
//!   is the gateway's name, and the preset enables the firewall unit and `wg-quick@<iface>`;
//! - `core` may log in with `spec.ssh.authorizedKeys` (the engine's `passwd` step writes
//!   `/var/home/core/.ssh/authorized_keys.d/ignition`, owned by `core`, 0600);
//! - `systemd-analyze verify --root` accepts the firewall unit and `wg-quick@<iface>.service`
//!   in that root (given the OS's units and the binaries their `Exec*` lines run, as Fedora
//!   CoreOS ships them), and rejects a unit whose binary is missing;
//! - the files the engine laid down (sysctl drop-in, the firewall unit's `ExecStart` with its
//!   ruleset, `/etc/wireguard/<iface>.conf` through `wg-quick up`) run the gateway in network
//!   namespaces whose uplink is `ens5` and whose spec names no egress interface: the private
//!   network reaches the internet masqueraded and the laptop reaches it through the tunnel
//!   (`support/lab.rs`). nftables with two NICs, iptables with one.
//!
//! The scratch root has `etc/passwd`, `group`, `shadow`, `gshadow` (with `core`, uid 1000, and
//! its home), `etc/selinux/config` (`SELINUXTYPE=targeted`), and a no-op `setfiles` on `PATH`
//! stands in for relabelling. Enabling an instance of a template unit makes the engine ask the
//! running systemd for its version over `/run/systemd/private`: `support/fake_systemd.rs`
//! answers there, in a private mount namespace (`unshare --mount`) of the engine's own.
//!
//! Needs root and, besides the namespace lab's tools, the `ignition` and `systemd` packages
//! and `unshare` (util-linux).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use frankenetes_bundle::testing::{CORE_UID, ScratchRoot};
use frankenetes_netgw::{Firewall, GatewayOptions, bundle, gateway_of, render};
use frankenetes_spec::ClusterSpec;
use support::fake_systemd::FakeSystemd;
use support::lab::{GATEWAY_EGRESS, GatewayFiles, Topology, TunnelMode, in_root, scenario};
use support::{find_tool, require_environment, run, run_output, try_run};

const ENGINE: &str = "/usr/lib/dracut/modules.d/30ignition/ignition";
const ENGINE_TIMEOUT: Duration = Duration::from_secs(120);
/// Keys made with `ssh-keygen`; the private halves were thrown away.
const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwjBFrOL5Nw7NNdseX2bUkGPmptceGzAXN1IBqLz2hi alice@laptop";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCdFzbaBFFs6GJVnJEF2llWHi7gTSxgHojbGnxXdvqj5nRQ+uJmhmyPV62RJnm0kOdt5aOAdmvwFxedyVUrKHOFjFHv7OYdNRr2Gje+a0ouyYdcmNmGLYqO1Q1Enapf1eIiOnALJgvZxywmZGlatFiKE3ZOMOvH20nEAg5zVH9fsAFqhEKeddN6TCoTkFujFJdpQcEk5FWRwBukJ4Ah4rvaUuZ0l+SZM/N95Z5cYySlCp59e3PWq5W+yBWOlUu6V2lQjzwMxhD+mQ6KSHxcZrMwxSXwlj/gr43jh/cZ5iSAsetRRS7KnD/Fj8IxiCxenstzPSGMX6Hypv5muR9rmSVt x";

fn require_tools() {
    require_environment();
    assert!(
        Path::new(ENGINE).is_file(),
        "the Ignition engine {ENGINE} is missing: apt-get install -y ignition"
    );
    for (tool, package) in [
        ("ignition-validate", "ignition"),
        ("systemd-analyze", "systemd"),
        ("unshare", "util-linux"),
        ("usermod", "passwd"),
    ] {
        assert!(
            find_tool(tool).is_some(),
            "{tool} is missing: apt-get install -y {package}"
        );
    }
}

/// The gateway's spec: no `egressInterface`, SSH keys for `core`.
fn spec_yaml(tunnel_if: &str) -> String {
    format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: ignition-lab }}
spec:
  kubernetesVersion: v1.35.0
  controlPlane: [{{ name: control-01, ip: 10.10.16.11 }}]
  ssh:
    authorizedKeys:
      - {ED25519}
      - {RSA}
  gateway:
    ip: 10.10.16.5
    privateCIDR: 10.10.16.0/20
    tunnel:
      cidr: 10.200.0.0/24
      endpoint: "{GATEWAY_EGRESS}:51820"
      interface: {tunnel_if}
      persistentKeepalive: 5
    peers: [{{ name: laptop }}]
"#
    )
}

/// Runs the engine's `fetch-offline` and `files` stages on `ign` into `root`; returns the
/// calls the stand-in systemd saw and the engine's log.
fn run_engine(dir: &Path, root: &Path, bin: &Path, ign: &Path) -> (Vec<String>, String) {
    let run_dir = dir.join("run");
    std::fs::create_dir_all(run_dir.join("systemd")).unwrap();
    let systemd = FakeSystemd::start(&run_dir.join("systemd/private"), "252");
    let (config, path) = (
        format!("IGNITION_CONFIG_FILE={}", ign.display()),
        format!("PATH={}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
    );
    let (cache, state) = (dir.join("cache.json"), dir.join("state.json"));
    let (root_s, run_s, cache_s, state_s) = (
        root.display().to_string(),
        run_dir.display().to_string(),
        cache.display().to_string(),
        state.display().to_string(),
    );
    let mut log = String::new();
    for stage in ["fetch-offline", "files"] {
        // `unshare` and `sh` exec the engine in place: the PID killed on a timeout is its own.
        let args = [
            "env",
            &config,
            &path,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind \"$0\" /run && exec \"$@\"",
            &run_s,
            ENGINE,
            "-platform",
            "file",
            "-stage",
            stage,
            "-root",
            &root_s,
            "-config-cache",
            &cache_s,
            "-state-file",
            &state_s,
            "-log-to-stdout",
        ];
        let (status, out, err) =
            run_output(&args, None, ENGINE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        log.push_str(&out);
        assert!(
            status.success(),
            "the Ignition engine's {stage} stage failed ({status}):\n{out}\n{err}"
        );
    }
    let calls = systemd.calls();
    drop(systemd);
    (calls, log)
}

/// Gives `root` what Fedora CoreOS has and `systemd-analyze verify` looks for: the OS's unit
/// files, `/bin` and `/sbin` as links into `/usr`, and the binaries the `Exec*` lines of
/// `units` run (copied from this machine).
fn give_os(root: &Path, units: &[&str]) {
    for d in ["usr/bin", "usr/sbin", "usr/lib/systemd"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin")] {
        if !root.join(link).exists() {
            std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        }
    }
    let vendor = root.join("usr/lib/systemd/system");
    if !vendor.exists() {
        run(&[
            "cp",
            "-a",
            bundle::VENDOR_UNIT_DIR,
            &root.join("usr/lib/systemd").display().to_string(),
        ]);
    }
    for unit in units {
        let template = match (unit.split_once('@'), unit.rsplit_once('.')) {
            (Some((prefix, _)), Some((_, suffix))) => format!("{prefix}@.{suffix}"),
            _ => (*unit).to_owned(),
        };
        let file = [
            root.join("etc/systemd/system").join(unit),
            vendor.join(&template),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no unit file for {unit} in {}", root.display()));
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if !key.starts_with("Exec") {
                continue;
            }
            let binary = value
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_start_matches(['-', '@', '+', '!', ':']);
            if binary.starts_with('/') && !in_root(root, binary).exists() {
                std::fs::copy(binary, in_root(root, binary))
                    .unwrap_or_else(|e| panic!("copy {binary} into the root: {e}"));
            }
        }
    }
}

/// `systemd-analyze verify --root`: success and what it printed.
fn verify(root: &Path, units: &[&str]) -> (bool, String) {
    let root_arg = format!("--root={}", root.display());
    let mut args = vec!["systemd-analyze", "verify", &root_arg];
    args.extend_from_slice(units);
    let (status, out, err) =
        run_output(&args, None, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    (status.success(), format!("{out}{err}"))
}

fn gateway_from_its_ignition(firewall: Firewall, tag: char, topology: Topology) {
    require_tools();
    let tunnel_if = format!("fg{tag}{}gw", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = ClusterSpec::from_yaml(&spec_yaml(&tunnel_if)).unwrap().spec;
    let gw = gateway_of(&spec).unwrap();
    assert_eq!(gw.egress_interface, None);
    let options = GatewayOptions::for_cluster(&spec).firewall(firewall);
    let made = render(&out, gw, &options).unwrap();
    let b = &made.bundle;
    let ign = out.join(format!("nodes/{}.ign", b.name));
    try_run(&["ignition-validate", &ign.display().to_string()], None)
        .unwrap_or_else(|e| panic!("ignition-validate: {e}"));

    // The engine, on the rendered config.
    let ScratchRoot { root, bin, .. } = ScratchRoot::create(tmp.path()).unwrap();
    let (calls, log) = run_engine(tmp.path(), &root, &bin, &ign);
    assert!(log.contains("files passed"), "{log}");
    assert!(
        calls
            .iter()
            .any(|c| c
                == "org.freedesktop.DBus.Properties.Get org.freedesktop.systemd1.Manager Version"),
        "the engine did not ask systemd for its version (what the stand-in is for): {calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("error")), "{calls:?}");

    // Every file byte for byte with its mode; our units; the hostname; the presets.
    for f in &b.files {
        let p = in_root(&root, &f.path);
        assert_eq!(
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", f.path)),
            *f.contents,
            "{} differs",
            f.path
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, f.mode, "{}: mode {mode:o}", f.path);
    }
    for u in &b.units {
        if let Some(c) = u.contents() {
            let p = root.join("etc/systemd/system").join(&u.name);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), c, "{}", u.name);
        }
    }
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        format!("{}\n", b.name)
    );
    let preset =
        std::fs::read_to_string(root.join("etc/systemd/system-preset/20-ignition.preset")).unwrap();
    for line in [
        format!("enable {}", bundle::FIREWALL_UNIT),
        format!("enable wg-quick@.service {tunnel_if}"),
    ] {
        assert!(
            preset.lines().any(|l| l == line),
            "{line:?} not in:\n{preset}"
        );
    }

    // SSH: core's keys, as sshd on Fedora CoreOS reads them.
    let keys_file = root.join("var/home/core/.ssh/authorized_keys.d/ignition");
    let keys = std::fs::read_to_string(&keys_file).unwrap();
    let lines: Vec<&str> = keys.lines().collect();
    assert_eq!(lines, [ED25519, RSA], "{keys}");
    let meta = std::fs::metadata(&keys_file).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (CORE_UID, 0o600));

    // systemd-analyze, in the root the engine wrote.
    let wg_unit = format!("wg-quick@{tunnel_if}.service");
    let units = [bundle::FIREWALL_UNIT, wg_unit.as_str()];
    give_os(&root, &units);
    let (ok, said) = verify(&root, &units);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    // It does check: a unit whose binary the root lacks is refused.
    std::fs::write(
        root.join("etc/systemd/system/frankenetes-broken.service"),
        "[Service]\nType=oneshot\nExecStart=/usr/sbin/frankenetes-not-there\n",
    )
    .unwrap();
    let (ok, said) = verify(&root, &["frankenetes-broken.service"]);
    assert!(!ok && said.contains("not executable"), "{said}");
    std::fs::remove_file(root.join("etc/systemd/system/frankenetes-broken.service")).unwrap();

    // The files the engine laid down run the gateway.
    let files = GatewayFiles {
        root,
        tunnel_if,
        firewall,
        egress: None,
        client_conf: out.join("cluster/vpn/laptop.conf"),
    };
    scenario(&files, tag, topology, TunnelMode::WgQuick);
}

#[test]
fn nftables_gateway_from_its_ignition_with_ens5() {
    gateway_from_its_ignition(
        Firewall::Nftables,
        'g',
        Topology::TwoNics {
            uplink: "ens5",
            private: "ens6",
        },
    );
}

#[test]
fn iptables_gateway_from_its_ignition_with_ens5() {
    gateway_from_its_ignition(Firewall::Iptables, 'h', Topology::OneNic { uplink: "ens5" });
}
