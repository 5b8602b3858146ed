//! Every node's Ignition config, applied by the real Ignition engine (Debian's `ignition`: the
//! binary the Fedora CoreOS initramfs runs) to a scratch root laid out as Fedora CoreOS is
//! (`/bin` → `usr/bin`, `/usr/local` → `../var/usrlocal`, the OS's unit files, containerd's
//! unit, `/bin/sh`), stages `fetch-offline` then `files`, `-platform file`. Then:
//!
//! - every file of the node's bundle landed byte for byte with its mode (through the
//!   `/usr/local` link where FCOS has one), our units with their contents, the presets enable
//!   containerd, the kubelet and (first control plane) the day-one unit, and docker is masked;
//! - the binaries the configs download are official release files pinned by SHA-256
//!   (`https://dl.k8s.io/release/<version>/bin/linux/<arch>/<name>`, `sha256-<64 hex>`), and
//!   they are what the units run: the kubelet's `ExecStart`, the day-one script's `kubectl`.
//!   The engine here has no network: the downloads are checked in the config, left out of the
//!   engine's run, and put in place afterwards as the engine would (a stub with their mode);
//! - `systemd-analyze verify --root` accepts the kubelet, containerd, wait-for-dns and day-one
//!   units in that root with nothing else added, and refuses the kubelet's unit once the
//!   downloaded kubelet is taken away (so it does check that the config provides it);
//! - the containerd configuration the engine wrote is read by a real containerd (Debian's
//!   `containerd`, started on a temporary root, state and socket): its CRI plugin loads, and
//!   runc runs with the systemd cgroup driver the kubelet is configured for.
//!
//! Needs root, the `ignition`, `systemd` and `containerd` packages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, require_tool, run};
use frankenetes_bundle::testing::{ScratchRoot, in_root};
use frankenetes_manifests::NodeBundle;
use frankenetes_manifests::kubelet::RESOLV_CONF;
use frankenetes_manifests::provision::{CONTAINERD_CONFIG, DAY_ONE_UNIT, WAIT_FOR_DNS_UNIT};

const ENGINE: &str = "/usr/lib/dracut/modules.d/30ignition/ignition";

/// A root as Fedora CoreOS has it before Ignition: accounts, SELinux config, the usrmerge and
/// `/usr/local` links, the OS's units (containerd's too), `/bin/sh`; and a no-op `setfiles`.
fn fcos_root(dir: &Path) -> (PathBuf, PathBuf) {
    let ScratchRoot { root, bin, .. } = ScratchRoot::create(dir).unwrap();
    for d in ["usr/bin", "usr/sbin", "var/usrlocal/bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("usr/local", "../var/usrlocal"),
    ] {
        std::os::unix::fs::symlink(target, root.join(link)).unwrap();
    }
    std::fs::copy("/bin/sh", root.join("usr/bin/sh")).unwrap();
    common::systemd::give_os_units(&root, &["containerd.service"]);
    // The binary containerd's unit runs, as the OS ships it.
    std::fs::copy("/usr/bin/containerd", root.join("usr/bin/containerd")).unwrap();
    for probe in ["/sbin/modprobe", "/usr/sbin/modprobe"] {
        if Path::new(probe).is_file() {
            let dest = in_root(&root, probe);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(probe, dest).unwrap();
            break;
        }
    }
    (root, bin)
}

/// A download in a config: path, mode, source, hash.
#[derive(Debug)]
struct Download {
    path: String,
    mode: u32,
    source: String,
    hash: String,
}

/// Takes the files with a remote source out of `config` and returns them.
fn take_downloads(config: &mut serde_json::Value) -> Vec<Download> {
    let files = config["storage"]["files"].as_array_mut().unwrap();
    let mut taken = Vec::new();
    files.retain(|f| {
        let source = f["contents"]["source"].as_str().unwrap_or_default();
        if source.starts_with("data:") {
            return true;
        }
        taken.push(Download {
            path: f["path"].as_str().unwrap().to_owned(),
            mode: u32::try_from(f["mode"].as_u64().unwrap()).unwrap(),
            source: source.to_owned(),
            hash: f["contents"]["verification"]["hash"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
        false
    });
    taken
}

fn run_engine(dir: &Path, root: &Path, bin: &Path, ign: &Path) -> String {
    let mut log = String::new();
    for stage in ["fetch-offline", "files"] {
        let out = Command::new(ENGINE)
            .args(["-platform", "file", "-stage", stage, "-root"])
            .arg(root)
            .arg("-config-cache")
            .arg(dir.join("cache.json"))
            .arg("-state-file")
            .arg(dir.join("state.json"))
            .arg("-log-to-stdout")
            .env("IGNITION_CONFIG_FILE", ign)
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
            )
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "the engine's {stage} stage failed: {said}"
        );
        log.push_str(&said);
    }
    log
}

fn exec_binary(node: &NodeBundle, unit: &str) -> String {
    let u = node.units.iter().find(|u| u.name == unit).unwrap();
    u.get("Service", "ExecStart")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Applies one node's config and checks what landed; returns the root.
fn apply(tmp: &Path, out: &Path, version: &str, node: &NodeBundle, first: bool) -> PathBuf {
    let dir = tmp.join(&node.name);
    std::fs::create_dir_all(&dir).unwrap();
    let ign = out.join(format!("nodes/{}.ign", node.name));
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ign).unwrap()).unwrap();
    let downloads = take_downloads(&mut config);

    // The downloads: official, pinned, and what the units run.
    let want: &[&str] = if node.name.starts_with("worker") {
        &["kubelet", "kubeadm"]
    } else if first {
        &["kubelet", "kubectl"]
    } else {
        &["kubelet"]
    };
    let names: Vec<&str> = downloads
        .iter()
        .map(|d| d.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, want, "{}: {downloads:?}", node.name);
    for d in &downloads {
        let name = d.path.rsplit('/').next().unwrap();
        assert_eq!(d.path, format!("/usr/local/bin/{name}"));
        assert_eq!(d.mode, 0o755);
        assert_eq!(
            d.source,
            format!("https://dl.k8s.io/release/{version}/bin/linux/amd64/{name}")
        );
        let hex = d.hash.strip_prefix("sha256-").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}: {}",
            d.path,
            d.hash
        );
    }
    assert_eq!(
        exec_binary(node, "kubelet.service"),
        "/usr/local/bin/kubelet"
    );

    let offline = dir.join("offline.ign");
    std::fs::write(&offline, serde_json::to_vec(&config).unwrap()).unwrap();
    let (root, bin) = fcos_root(&dir);
    let log = run_engine(&dir, &root, &bin, &offline);
    assert!(log.contains("files passed"), "{log}");
    // What the engine would have downloaded, in place.
    for d in &downloads {
        let p = in_root(&root, &d.path);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(d.mode)).unwrap();
    }

    for f in &node.files {
        let p = in_root(&root, &f.path);
        assert_eq!(
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {}: {e}", node.name, f.path)),
            *f.contents,
            "{}: {} differs",
            node.name,
            f.path
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, f.mode, "{}: {} mode {mode:o}", node.name, f.path);
    }
    for u in &node.units {
        if let Some(c) = u.contents() {
            let p = root.join("etc/systemd/system").join(&u.name);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), c, "{}", u.name);
        }
    }
    let preset =
        std::fs::read_to_string(root.join("etc/systemd/system-preset/20-ignition.preset")).unwrap();
    let mut enabled = vec!["enable containerd.service", "enable kubelet.service"];
    if first {
        enabled.push("enable frankenetes-day-one.service");
    }
    for line in enabled {
        assert!(
            preset.lines().any(|l| l == line),
            "{line:?} not in:\n{preset}"
        );
    }
    assert_eq!(
        std::fs::read_link(root.join("etc/systemd/system/docker.service")).unwrap(),
        Path::new("/dev/null"),
        "docker is not masked"
    );
    root
}

fn verify_units(root: &Path, units: &[&str]) -> (bool, String) {
    let mut c = Command::new("systemd-analyze");
    c.arg("verify").arg(format!("--root={}", root.display()));
    for u in units {
        c.arg(u);
    }
    let out = c.env("SYSTEMD_LOG_COLOR", "0").output().unwrap();
    (
        out.status.success() && out.stderr.is_empty(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_node_config_makes_a_node_with_its_kubelet_and_runtime() {
    assert!(
        Path::new(ENGINE).is_file(),
        "the Ignition engine {ENGINE} is missing: apt-get install -y ignition"
    );
    require_tool("systemd-analyze", "systemd");
    require_tool("containerd", "containerd");
    let spec = common::lab();
    let (out, rendered) = common::render_to_dir(&spec);
    let tmp = tempfile::tempdir().unwrap();
    let first = spec.control_plane[0].name.to_string();
    let version = spec.kubernetes_version.to_string();
    let mut first_root = None;
    for node in &rendered.nodes {
        let is_first = node.name == first;
        let root = apply(tmp.path(), out.path(), &version, node, is_first);

        let mut units = vec!["kubelet.service", "containerd.service", WAIT_FOR_DNS_UNIT];
        if is_first {
            units.push(DAY_ONE_UNIT);
            let script = std::fs::read_to_string(in_root(
                &root,
                frankenetes_manifests::provision::DAY_ONE_SCRIPT,
            ))
            .unwrap();
            assert!(
                script.contains(
                    "/usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/super-admin.conf"
                ),
                "{script}"
            );
            assert!(in_root(&root, "/usr/local/bin/kubectl").is_file());
        }
        let (ok, said) = verify_units(&root, &units);
        assert!(ok, "{}: systemd-analyze verify: {said}", node.name);
        if is_first {
            first_root = Some(root);
        }
    }

    // It does check that the config provides the kubelet.
    let root = first_root.unwrap();
    std::fs::remove_file(in_root(&root, "/usr/local/bin/kubelet")).unwrap();
    let (ok, said) = verify_units(&root, &["kubelet.service"]);
    assert!(!ok && said.contains("kubelet"), "{said}");

    // The kubelet's resolver file is made by the unit it requires.
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/").join(WAIT_FOR_DNS_UNIT)).unwrap();
    assert!(unit.contains(RESOLV_CONF), "{unit}");

    containerd_reads_the_config(&in_root(&root, CONTAINERD_CONFIG), tmp.path());
}

/// A real containerd with the configuration the engine wrote (its root, state and socket moved
/// to a temporary directory by its own flags): the CRI plugin loads, and its runc runtime uses
/// the systemd cgroup driver.
fn containerd_reads_the_config(config: &Path, tmp: &Path) {
    let dir = tmp.join("containerd");
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("containerd.sock");
    // `config dump`: the configuration as containerd parsed and merged it.
    let dump = run(Command::new("containerd")
        .arg("--config")
        .arg(config)
        .args(["config", "dump"]));
    assert!(dump.status.success(), "{dump:?}");
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    let runc = dump
        .split("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]")
        .nth(1)
        .unwrap_or_else(|| panic!("no runc options in:\n{dump}"));
    let runc = runc.split("\n[").next().unwrap();
    assert!(runc.contains("SystemdCgroup = true"), "{runc}");
    assert!(
        dump.contains("sandbox_image = \"registry.k8s.io/pause:"),
        "{dump}"
    );

    let _containerd = Proc::spawn(
        "containerd",
        Command::new("containerd")
            .arg("--config")
            .arg(config)
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--address")
            .arg(&sock),
        &dir.join("containerd.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let plugins = loop {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&sock)
            .args(["plugins", "ls"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("io.containerd.grpc.v1") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "containerd did not answer on {}: {}",
            sock.display(),
            std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let cri = plugins
        .lines()
        .find(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 2 && f[0] == "io.containerd.grpc.v1" && f[1] == "cri"
        })
        .unwrap_or_else(|| panic!("no CRI plugin:\n{plugins}"));
    assert!(
        cri.split_whitespace().last() == Some("ok"),
        "the CRI plugin did not load: {cri}\n{}",
        std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
    );
}
