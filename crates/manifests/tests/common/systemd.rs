//! A private systemd manager that runs units as systemd does, to learn the argv a unit's
//! `ExecStart=` really gives a process.
//!
//! `systemd-analyze verify` only checks `argv[0]`, and `systemd --test` dumps the command line
//! before environment expansion (`$$` still doubled). So this starts a real `systemd --user`
//! manager (systemd 252 on Debian 12; no systemd need run as PID 1): in a private mount
//! namespace (`unshare --mount`) where `/run/systemd/system` exists (the manager checks the
//! machine was booted with systemd), `/usr/local/bin` is a tmpfs holding an argv recorder
//! under every binary name a unit runs, and a cgroup of its own is delegated to it; it runs as
//! `nobody`. A unit is started with a drop-in that makes it a oneshot (`Restart=no`,
//! `LimitNOFILE` an unprivileged user may set); the recorder writes the argv it was given,
//! NUL-separated. The manager is killed by its PID when dropped, and its cgroup removed.

#![allow(dead_code)] // not every test binary uses every helper

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The binaries a recorder stands in for (every `ExecStart=` of a rendered unit).
pub const BINARIES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubeadm",
    "kubectl",
    "probe",
];

const NOBODY: u32 = 65534;

/// A running private `systemd --user` manager.
pub struct UserManager {
    dir: tempfile::TempDir,
    child: Child,
    cgroup: PathBuf,
}

fn cgroup_base() -> PathBuf {
    // Hybrid hierarchy (this machine: cgroup v1 controllers + the unified one), else pure v2.
    let hybrid = Path::new("/sys/fs/cgroup/unified");
    if hybrid.join("cgroup.procs").is_file() {
        hybrid.to_owned()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

fn chown_nobody(p: &Path) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success(), "chown {}", p.display());
}

fn as_nobody(dir: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
        "env",
    ])
    .arg(format!("XDG_RUNTIME_DIR={}", dir.join("run").display()))
    .arg(format!("HOME={}", dir.join("home").display()));
    c
}

impl UserManager {
    /// Starts the manager; fails (with what to do) when this cannot run here.
    pub fn start() -> UserManager {
        for tool in ["unshare", "setpriv", "systemctl"] {
            super::require_tool(tool, "util-linux / systemd");
        }
        let systemd = Path::new("/lib/systemd/systemd");
        assert!(
            systemd.is_file(),
            "no /lib/systemd/systemd: apt-get install systemd"
        );
        assert!(
            nix_is_root(),
            "the systemd round trip needs root (a private mount namespace and a delegated \
             cgroup for a `systemd --user` manager run as nobody): run the tests as root, as CI does"
        );
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["run", "home/.config/systemd/user", "argv"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let recorder = dir.path().join("record");
        std::fs::write(
            &recorder,
            format!(
                "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '{}/argv/'\"${{0##*/}}\"\n",
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["run", "home", "argv"] {
            chown_nobody(&dir.path().join(d));
        }
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let cgroup = cgroup_base().join(format!(
            "frankenetes-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let script = format!(
            "set -e\n\
             mount -t tmpfs -o mode=755 tmpfs /run/systemd\n\
             mkdir /run/systemd/system\n\
             mount -t tmpfs -o mode=755 tmpfs /usr/local/bin\n\
             for b in {bins}; do cp '{rec}' /usr/local/bin/$b; done\n\
             mkdir '{cg}'\n\
             chown -R {NOBODY}:{NOBODY} '{cg}'\n\
             echo $$ > '{cg}/cgroup.procs'\n\
             exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups env \
             XDG_RUNTIME_DIR='{d}/run' HOME='{d}/home' {systemd} --user --log-target=console \
             --log-level=warning\n",
            bins = BINARIES.join(" "),
            rec = recorder.display(),
            cg = cgroup.display(),
            d = dir.path().display(),
            systemd = systemd.display(),
        );
        let log = std::fs::File::create(dir.path().join("manager.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare");
        let mut m = UserManager { dir, child, cgroup };
        let socket = m.dir.path().join("run/systemd/private");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            if let Some(st) = m.child.try_wait().unwrap() {
                panic!("the systemd --user manager ended ({st}): {}", m.log());
            }
            assert!(
                Instant::now() < deadline,
                "no manager socket after 20 s: {}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("manager.log")).unwrap_or_default()
    }

    fn systemctl(&self, args: &[&str]) -> std::process::Output {
        as_nobody(self.dir.path())
            .args(["systemctl", "--user", "--no-pager"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs `unit` (its file's text, unchanged) under the manager as a oneshot, and returns
    /// the argv its `ExecStart=` gave the process (`argv[0]` as the path run).
    pub fn argv_of(&self, name: &str, unit: &str) -> Vec<String> {
        let units = self.dir.path().join("home/.config/systemd/user");
        std::fs::write(units.join(name), unit).unwrap();
        let drop_in = units.join(format!("{name}.d"));
        std::fs::create_dir_all(&drop_in).unwrap();
        std::fs::write(
            drop_in.join("oneshot.conf"),
            "[Service]\nType=oneshot\nRestart=no\nLimitNOFILE=1024\n",
        )
        .unwrap();
        chown_nobody(&units);
        let binary = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|b| b.rsplit('/').next())
            .expect("an ExecStart line")
            .to_owned();
        let out = self.dir.path().join("argv").join(&binary);
        let _ = std::fs::remove_file(&out);
        let reload = self.systemctl(&["daemon-reload"]);
        assert!(reload.status.success(), "{reload:?}");
        let start = self.systemctl(&["start", name]);
        assert!(
            start.status.success(),
            "systemctl start {name}: {}{}\n{}",
            String::from_utf8_lossy(&start.stdout),
            String::from_utf8_lossy(&start.stderr),
            String::from_utf8_lossy(&self.systemctl(&["status", name]).stdout),
        );
        let bytes = std::fs::read(&out)
            .unwrap_or_else(|e| panic!("{name} recorded no argv at {}: {e}", out.display()));
        let mut argv: Vec<String> = bytes
            .split(|b| *b == 0)
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect();
        assert_eq!(argv.pop().as_deref(), Some(""), "NUL-terminated");
        argv
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

impl Drop for UserManager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The manager's cgroup tree, deepest first (all empty once it is gone).
        fn dirs(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        dirs(&e.path(), out);
                    }
                }
            }
            out.push(p.to_owned());
        }
        let mut all = Vec::new();
        dirs(&self.cgroup, &mut all);
        for d in all {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Where Debian keeps the OS's unit files (the targets and packaged services units refer to).
const HOST_UNITS: &str = "/lib/systemd/system";

/// Gives `root` the OS's unit files a unit there may refer to (every target, and `services`
/// the OS ships, from this machine's packages), as a machine has them in
/// `/usr/lib/systemd/system`.
pub fn give_os_units(root: &Path, services: &[&str]) {
    let dest = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&dest).unwrap();
    for e in std::fs::read_dir(HOST_UNITS).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.ends_with(".target") || services.contains(&name.as_str()))
            && !dest.join(&name).exists()
        {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(e.path()).unwrap();
                std::os::unix::fs::symlink(target, dest.join(&name)).unwrap();
            } else {
                std::fs::copy(e.path(), dest.join(&name)).unwrap();
            }
        }
    }
    for s in services {
        assert!(
            dest.join(s).exists(),
            "{s} is not installed on this machine: apt-get install the package that ships it"
        );
    }
}

/// Puts an executable stub at each absolute `path` under `root` (binaries a test root lacks).
pub fn stub_binaries(root: &Path, paths: &[String]) {
    for p in paths {
        let f = root.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `systemd-analyze verify --root=ROOT` on each unit file of ours (`/etc/systemd/system/NAME`):
/// exit 0 and not one warning.
pub fn verify(root: &Path, units: &[String]) {
    super::require_tool("systemd-analyze", "systemd");
    assert!(!units.is_empty());
    for u in units {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg(format!("/etc/systemd/system/{u}"))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify {u} in {}: {}{stderr}",
            root.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
