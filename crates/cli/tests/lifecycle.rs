//! The documented local commands run end to end against a real etcd, as a user types them:
//! `snapshot` → wipe → `restore` → keys back; `pause` twice; `resume`; `status` (table and
//! JSON, exit codes); `token create` with no apiserver; `kubeconfig --merge` checked by
//! kubectl; ten `up` at once; umask 000; Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cmd(args: &[&str], cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frankenetes"));
    c.args(args)
        .current_dir(cwd)
        // Keep these tests about the etcd tier: no kube-* binaries from a fetch cache.
        .env("XDG_CACHE_HOME", cwd.join("no-cache"))
        .env("FRANKENETES_BIN_DIR", cwd.join("no-kube-binaries"));
    c
}

fn bin(args: &[&str], cwd: &Path) -> Output {
    cmd(args, cwd).output().expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn spec(name: &str, base: u8) -> String {
    format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    \
         - {{name: control-01, ip: 127.0.0.{}}}\n    - {{name: control-02, ip: 127.0.0.{}}}\n    - {{name: control-03, ip: 127.0.0.{}}}\n",
        base,
        base + 1,
        base + 2
    )
}

/// Runs `down` when the test ends, whatever happened.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = bin(&["down", "-f", "cluster.yaml"], &self.0);
    }
}

fn cluster(name: &str, base: u8) -> (tempfile::TempDir, Down) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), spec(name, base)).unwrap();
    let down = Down(dir.path().to_owned());
    (dir, down)
}

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
}

async fn etcd(dir: &Path, name: &str, base: u8) -> etcd_client::Client {
    let pki = dir.join(format!(
        ".frankenetes/{name}/bundle/nodes/control-01/etc/kubernetes/pki/etcd"
    ));
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(
            std::fs::read(pki.join("ca.crt")).unwrap(),
        ))
        .identity(etcd_client::Identity::from_pem(
            std::fs::read(pki.join("healthcheck-client.crt")).unwrap(),
            std::fs::read(pki.join("healthcheck-client.key")).unwrap(),
        ));
    let eps: Vec<String> = (0..3)
        .map(|i| format!("https://127.0.0.{}:2379", base + i))
        .collect();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    etcd_client::Client::connect(eps, Some(etcd_client::ConnectOptions::new().with_tls(tls)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_wipe_restore_pause_twice_resume_from_the_cli() {
    let (dir, _down) = cluster("clisnap", 171);
    let d = dir.path();
    ok(&bin(&["up", "-f", "cluster.yaml"], d));
    let mut kv = etcd(d, "clisnap", 171).await;
    for i in 0..100 {
        kv.put(format!("/cli/{i:03}"), "v", None).await.unwrap();
    }
    // The README's form: the spec with -f, the file positional.
    let snap = bin(&["snapshot", "-f", "cluster.yaml", "backup.db"], d);
    ok(&snap);
    assert!(text(&snap).contains("verified"), "{}", text(&snap));
    assert_eq!(
        std::fs::metadata(d.join("backup.db"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    kv.put("/after", "x", None).await.unwrap();
    ok(&bin(&["down", "-f", "cluster.yaml"], d));
    std::fs::remove_dir_all(d.join(".frankenetes/clisnap/data")).unwrap();
    ok(&bin(&["restore", "-f", "cluster.yaml", "backup.db"], d));
    ok(&bin(&["up", "-f", "cluster.yaml"], d));
    let mut kv = etcd(d, "clisnap", 171).await;
    let got = kv
        .get("/cli/", Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 100, "every key of the snapshot is back");
    assert!(kv.get("/after", None).await.unwrap().kvs().is_empty());

    let first = bin(&["pause", "-f", "cluster.yaml"], d);
    ok(&first);
    assert!(text(&first).contains("snapshot"), "{}", text(&first));
    let second = bin(&["pause", "-f", "cluster.yaml"], d);
    ok(&second);
    assert!(
        text(&second).contains("paused already"),
        "{}",
        text(&second)
    );
    let status = bin(&["status", "-f", "cluster.yaml"], d);
    assert_eq!(
        status.status.code(),
        Some(1),
        "paused is not healthy: {}",
        text(&status)
    );
    ok(&bin(&["resume", "-f", "cluster.yaml"], d));
    let status = bin(&["status", "-f", "cluster.yaml", "-o", "json"], d);
    ok(&status);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["rows"][0]["health"]["status"], "healthy", "{v}");

    // No apiserver tier here: the token command says where it tried and why.
    let token = bin(&["token", "create", "-f", "cluster.yaml"], d);
    assert_eq!(token.status.code(), Some(1), "{}", text(&token));
    let t = text(&token);
    assert!(
        t.contains("cannot reach the apiserver at https://127.0.0.171:6443")
            && t.to_lowercase().contains("refused"),
        "{t}"
    );
    assert!(!t.contains("ServiceError"), "no transport dump: {t}");
}

#[test]
fn status_of_a_cluster_that_never_existed_exits_1() {
    let (dir, _down) = cluster("never", 181);
    let s = bin(&["status", "-f", "cluster.yaml"], dir.path());
    assert_eq!(s.status.code(), Some(1), "{}", text(&s));
    assert!(text(&s).contains("frankenetes up"), "{}", text(&s));
}

#[test]
fn ten_ups_at_once_make_one_cluster_and_one_pki() {
    let (dir, _down) = cluster("tenups", 184);
    let d = dir.path();
    let children: Vec<_> = (0..10)
        .map(|_| {
            cmd(&["up", "-f", "cluster.yaml"], d)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert!(
        winners >= 1,
        "{}",
        outs.iter().map(text).collect::<String>()
    );
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert_eq!(o.status.code(), Some(1), "{}", text(o));
        assert!(text(o).contains("busy"), "{}", text(o));
    }
    ok(&bin(&["status", "-f", "cluster.yaml"], d));
    let check = bin(&["pki", "check"], d);
    ok(&check);
}

#[test]
fn umask_000_still_gives_private_files_and_directories() {
    let (dir, _down) = cluster("umask", 187);
    let d = dir.path();
    let exe = env!("CARGO_BIN_EXE_frankenetes");
    for args in ["up -f cluster.yaml", "pause -f cluster.yaml"] {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000; exec '{exe}' {args}"))
            .current_dir(d)
            .env("XDG_CACHE_HOME", d.join("no-cache"))
            .env("FRANKENETES_BIN_DIR", d.join("no-kube-binaries"))
            .output()
            .unwrap();
        ok(&o);
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = d.join(".frankenetes/umask");
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("snapshots")), 0o700);
    let mut seen_keys = 0;
    let mut stack = vec![root.clone()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().filter_map(Result::ok) {
            let path = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                continue;
            }
            let m = mode(&path);
            assert_eq!(
                m & 0o002,
                0,
                "{} is writable by anyone ({m:o})",
                path.display()
            );
            if ft.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let kubeconfig = [
                "admin.conf",
                "super-admin.conf",
                "controller-manager.conf",
                "scheduler.conf",
                "kubelet.conf",
                "kubeconfig.conf",
            ]
            .contains(&name.as_str());
            if name.ends_with(".key") || name.ends_with(".db") || kubeconfig {
                assert_eq!(m, 0o600, "{} is {m:o}", path.display());
                seen_keys += 1;
            }
        }
    }
    assert!(
        seen_keys > 20,
        "{seen_keys} keys, snapshots and kubeconfigs checked"
    );
    ok(&bin(&["resume", "-f", "cluster.yaml"], d));
}

#[test]
fn ctrl_c_exits_130_and_up_again_converges() {
    let (dir, _down) = cluster("sigint", 191);
    let d = dir.path();
    let child = cmd(&["up", "-f", "cluster.yaml"], d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let units = d.join(".frankenetes/sigint/run/units");
    let start = Instant::now();
    while !units.join("etcd-control-01").exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    // Interrupted mid-way (130), or it had just finished (0).
    assert!(matches!(o.status.code(), Some(130 | 0)), "{}", text(&o));
    if o.status.code() == Some(130) {
        assert!(text(&o).contains("interrupted"), "{}", text(&o));
    }
    ok(&bin(&["up", "-f", "cluster.yaml"], d));
}

#[test]
fn kubeconfig_merges_with_unique_names_next_to_a_kubeadm_config() {
    let (dir, _down) = cluster("kcfg", 194);
    let d = dir.path();
    // `render` makes the admin kubeconfig without starting anything.
    ok(&bin(&["render", "-f", "cluster.yaml"], d));
    let printed = bin(&["kubeconfig", "-f", "cluster.yaml"], d);
    ok(&printed);
    assert!(
        text(&printed).contains("frankenetes-kcfg-admin"),
        "{}",
        text(&printed)
    );
    // An existing config with kubeadm's names stays as it is.
    let kc = d.join("kube/config");
    std::fs::create_dir_all(kc.parent().unwrap()).unwrap();
    let other = std::fs::read_to_string(d.join(".frankenetes/kcfg/bundle/cluster/admin.conf"))
        .unwrap()
        .replace("kcfg", "other");
    std::fs::write(&kc, &other).unwrap();
    let merged = bin(
        &[
            "kubeconfig",
            "-f",
            "cluster.yaml",
            "--merge",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        d,
    );
    ok(&merged);
    assert_eq!(
        std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // kubectl (an independent reader) sees both, ours current.
    let view = Command::new("kubectl")
        .args([
            "config",
            "view",
            "-o",
            "jsonpath={.contexts[*].name} {.users[*].name} {.current-context}",
        ])
        .env("KUBECONFIG", &kc)
        .output()
        .expect("kubectl: run ./scripts/install-deps.sh");
    let v = String::from_utf8_lossy(&view.stdout);
    assert!(
        view.status.success(),
        "{v}{}",
        String::from_utf8_lossy(&view.stderr)
    );
    for want in [
        "frankenetes-kcfg",
        "frankenetes-kcfg-admin",
        "kubernetes-admin",
    ] {
        assert!(v.contains(want), "{want} in {v}");
    }
    assert!(
        v.trim_end().ends_with("frankenetes-kcfg"),
        "current context: {v}"
    );
    // Merging again changes nothing but replaces ours in place.
    ok(&bin(
        &[
            "kubeconfig",
            "-f",
            "cluster.yaml",
            "--merge",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        d,
    ));
    let again = std::fs::read_to_string(&kc).unwrap();
    assert_eq!(
        again.matches("name: frankenetes-kcfg-admin").count(),
        1,
        "{again}"
    );
}

#[test]
fn version_and_completion() {
    let d = tempfile::tempdir().unwrap();
    let v = bin(&["--version"], d.path());
    ok(&v);
    let t = text(&v);
    assert!(
        t.contains("commit") && t.contains("backends: local") && t.contains("1.35"),
        "{t}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let c = bin(&["completion", shell], d.path());
        ok(&c);
        assert!(text(&c).contains("frankenetes"), "{shell}");
        assert!(
            text(&c).contains("snapshot"),
            "{shell}: subcommands completed"
        );
    }
}

/// Scheduled backups as a user sets them up: `spec.etcd.backup` every 2 s keeping 3; `up`
/// starts the `backup-etcd` unit; exactly 3 backups remain, each passing `sha256sum -c` and
/// etcd's own restore; one corrupted is reported by `status` (exit 1, naming it) and refused
/// by `restore`; `down` stops the unit (no `backup --schedule` process left).
#[test]
fn scheduled_backups_keep_three_verified_and_report_a_corrupted_one() {
    let (dir, _down) = cluster("backups", 201);
    let d = dir.path();
    let with_backup = format!(
        "{}  etcd:\n    backup: {{ interval: 2s, keep: 3 }}\n",
        spec("backups", 201)
    );
    std::fs::write(d.join("cluster.yaml"), with_backup).unwrap();
    ok(&bin(&["up", "-f", "cluster.yaml"], d));
    let backups = d.join(".frankenetes/backups/backups");
    let list = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&backups)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "db"))
            .collect();
        v.sort();
        v
    };
    // Five ticks or more: more taken than kept.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Some(f) = list().first() {
            break f.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no backup in {}",
            backups.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    while list().contains(&first) || list().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the oldest backup is never removed: {:?}",
            list()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let kept = list();
    assert_eq!(kept.len(), 3, "{kept:?}");
    for f in &kept {
        let sum = std::fs::read_to_string(format!("{}.sha256", f.display())).unwrap();
        let got = Command::new("sha256sum").arg(f).output().unwrap();
        assert_eq!(
            sum.split_whitespace().next(),
            String::from_utf8_lossy(&got.stdout)
                .split_whitespace()
                .next(),
            "{}",
            f.display()
        );
        let scratch = tempfile::tempdir().unwrap();
        let restored = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["snapshot", "restore"])
            .arg(f)
            .arg(format!("--data-dir={}", scratch.path().join("d").display()))
            .output()
            .unwrap();
        assert!(restored.status.success(), "{}: {restored:?}", f.display());
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let s = bin(&["status", "-f", "cluster.yaml"], d);
    assert!(
        text(&s).contains("BACKUPS") && text(&s).contains("verified"),
        "{}",
        text(&s)
    );

    // One now (docs/day-two.md), and a restore from a kept one.
    let now = bin(&["backup", "-f", "cluster.yaml"], d);
    ok(&now);
    assert!(text(&now).contains("verified"), "{}", text(&now));
    let good = list().last().unwrap().clone();
    ok(&bin(
        &["restore", "-f", "cluster.yaml", good.to_str().unwrap()],
        d,
    ));
    ok(&bin(&["status", "-f", "cluster.yaml"], d));

    // Corrupt one (the newest: not pruned before status reads it): status says so and exits
    // 1; restore refuses it.
    let bad = list().last().unwrap().clone();
    let mut bytes = std::fs::read(&bad).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    let s = bin(&["status", "-f", "cluster.yaml"], d);
    assert_eq!(s.status.code(), Some(1), "{}", text(&s));
    let name = bad.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text(&s).contains(&name) && text(&s).contains("never used for a restore"),
        "{}",
        text(&s)
    );
    let r = bin(&["restore", "-f", "cluster.yaml", bad.to_str().unwrap()], d);
    assert_ne!(r.status.code(), Some(0), "{}", text(&r));
    assert!(text(&r).contains("SHA-256"), "{}", text(&r));

    ok(&bin(&["down", "-f", "cluster.yaml"], d));
    let spec_path = d.join("cluster.yaml").display().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("--schedule") && c.contains(&spec_path))
        .collect();
    assert!(
        left.is_empty(),
        "backup processes left after down: {left:?}"
    );
}

/// docs/day-two.md: a changed spec is shown by `plan` and rolled by `up` one member at a
/// time; a member whose data is gone re-joins on `resume`.
#[test]
fn a_changed_spec_is_planned_then_rolled_and_a_lost_member_rejoins() {
    let (dir, _down) = cluster("rolled", 114);
    let d = dir.path();
    ok(&bin(&["up", "-f", "cluster.yaml"], d));
    let yaml = std::fs::read_to_string(d.join("cluster.yaml")).unwrap();
    std::fs::write(
        d.join("cluster.yaml"),
        yaml.replace(
            "  controlPlane:\n",
            "  etcd: { extraArgs: { snapshot-count: \"5000\" } }\n  controlPlane:\n",
        ),
    )
    .unwrap();

    let plan = bin(&["plan", "-f", "cluster.yaml"], d);
    ok(&plan);
    let out = text(&plan);
    assert!(out.contains("restarts, one at a time"), "{out}");
    for n in ["control-01", "control-02", "control-03"] {
        assert!(
            out.lines().any(|l| l.contains(&format!("etcd-{n}"))
                && l.contains("--snapshot-count: 10000 → 5000")),
            "{out}"
        );
    }
    let json = bin(&["plan", "-f", "cluster.yaml", "-o", "json"], d);
    ok(&json);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["restarts"].as_array().unwrap().len(), 3, "{doc}");

    let up = bin(&["up", "-f", "cluster.yaml"], d);
    ok(&up);
    let out = text(&up);
    let order: Vec<usize> = ["control-01", "control-02", "control-03"]
        .iter()
        .map(|n| out.find(&format!("restarting etcd-{n}")).expect(&out))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{out}");
    let again = bin(&["plan", "-f", "cluster.yaml"], d);
    assert!(
        !text(&again).contains("restarts, one at a time"),
        "{}",
        text(&again)
    );

    // control-02's data is gone while the cluster is paused: resume re-joins it.
    ok(&bin(&["pause", "-f", "cluster.yaml"], d));
    std::fs::remove_dir_all(d.join(".frankenetes/rolled/data/control-02/etcd")).unwrap();
    let resume = bin(&["resume", "-f", "cluster.yaml"], d);
    ok(&resume);
    assert!(
        text(&resume).contains("control-02: added as member"),
        "{}",
        text(&resume)
    );
    ok(&bin(&["status", "-f", "cluster.yaml"], d));
}
