//! The containers that save, ship and restore etcd snapshots, in two flavours:
//!
//! * **published images** (no `toolsImage`): `etcdctl`/`etcdutl` run in the spec's etcd
//!   image in exec form (no shell; every path and name fixed at render time), and the steps
//!   that need a shell run in [`BUSYBOX_IMAGE`] as the init container before or after;
//! * **tools image** (`toolsImage` set): one image with `sh`, `etcdctl`, `etcdutl` and
//!   `sha256sum` runs each job as one script, which can also loop (the periodic sidecar) and
//!   decide at start whether a restore is needed.
//!
//! On the share: `snapshot-<UTC time>.db`, its `.sha256` (`sha256sum` format) and `latest`
//! (the newest verified file's name), written with a `.part` name then renamed (renaming a
//! closed file on SMB works; etcd's WAL directory rename does not, which is why etcd's data
//! is never on the share).

use frankenetes_compute::ContainerSpec;
use frankenetes_spec::{ClusterSpec, NodeSpec};

use crate::images::{BUSYBOX_IMAGE, ETCD_BIN};

/// Where the share is mounted in the etcd groups and the snapshot job.
pub const SNAPSHOT_MOUNT: &str = "/snapshots";
/// etcd's data directory inside its group (an `emptyDir`).
pub const ETCD_DATA: &str = "/var/lib/etcd";
/// The snapshot job's scratch `emptyDir`.
pub const WORK: &str = "/work";
/// Where a restore stages its copy of the snapshot and the restored data (inside the data
/// `emptyDir`, so that the final step is a rename, not a copy).
const STAGE: &str = "/var/lib/etcd/.restore";

/// The etcd healthcheck client certificate: what `etcdctl` presents.
pub(crate) const HEALTHCHECK: [&str; 3] = [
    "/etc/kubernetes/pki/etcd/ca.crt",
    "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
    "/etc/kubernetes/pki/etcd/healthcheck-client.key",
];

fn etcdctl_tls() -> Vec<String> {
    vec![
        format!("--cacert={}", HEALTHCHECK[0]),
        format!("--cert={}", HEALTHCHECK[1]),
        format!("--key={}", HEALTHCHECK[2]),
    ]
}

pub(crate) fn tool(
    name: &str,
    image: &str,
    command: Vec<String>,
    size: (u32, u32),
) -> ContainerSpec {
    let mut c = ContainerSpec::new(name, image, command);
    c.cpu_millis = size.0;
    c.memory_mib = size.1;
    c
}

/// `sh -c` with the script, `set -eu` first (busybox's or the tools image's shell).
fn sh(script: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("set -eu\n{}", script.trim()),
    ]
}

/// Names the file `src` on the share with the time, writes its checksum, checks the copy,
/// points `latest` at it and prunes all but the `kept` newest.
fn ship_script(src: &str, kept: u32) -> String {
    format!(
        r#"
f="snapshot-$(date -u +%Y%m%dT%H%M%SZ).db"
h="$(sha256sum {src} | cut -d' ' -f1)"
cp {src} {snap}/$f.part && mv {snap}/$f.part {snap}/$f
echo "$h  $f" > {snap}/$f.sha256
(cd {snap} && sha256sum -c $f.sha256)
echo "$f" > {snap}/latest.part && mv {snap}/latest.part {snap}/latest
ls -1 {snap}/snapshot-*.db | sort -r | tail -n +{keep} | while read old; do rm -f "$old" "$old.sha256"; done
echo "saved $f"
"#,
        snap = SNAPSHOT_MOUNT,
        keep = kept + 1,
    )
}

/// `etcdutl snapshot restore` of `snapshot` into `data_dir`, as this member.
fn restore_args(
    spec: &ClusterSpec,
    node: &NodeSpec,
    snapshot: &str,
    data_dir: &str,
) -> Vec<String> {
    vec![
        format!("{ETCD_BIN}/etcdutl"),
        "snapshot".into(),
        "restore".into(),
        snapshot.into(),
        format!("--data-dir={data_dir}"),
        format!("--name={}", node.name),
        format!("--initial-cluster={}", spec.etcd_initial_cluster()),
        format!("--initial-cluster-token={}", spec.name),
        format!("--initial-advertise-peer-urls={}", spec.etcd_peer_url(node)),
    ]
}

/// The restore chain of an etcd group, published images only: busybox copies the share's
/// newest snapshot (`latest`) into the group's `emptyDir` and checks it against its
/// `.sha256` (no snapshot or a mismatch fails the group: etcd never starts empty when a
/// restore was asked for); etcd's own `etcdutl` restores that copy (exec form, this member's
/// name and peer URL); busybox moves the restored member directory into place, unless the
/// data directory already holds one (then the restored copy is discarded).
pub(crate) fn restore_chain(
    spec: &ClusterSpec,
    node: &NodeSpec,
    etcd_image: &str,
) -> Vec<ContainerSpec> {
    let fetch = format!(
        r#"
rm -rf {stage} && mkdir -p {stage}
latest="$(cat {snap}/latest 2>/dev/null || true)"
if [ -z "$latest" ]; then echo "no snapshot on the share ({snap}/latest is missing): nothing to restore" >&2; exit 1; fi
want="$(cut -d' ' -f1 "{snap}/$latest.sha256")"
cp "{snap}/$latest" {stage}/snapshot.db
got="$(sha256sum {stage}/snapshot.db | cut -d' ' -f1)"
if [ "$want" != "$got" ]; then echo "$latest: checksum $got, expected $want" >&2; exit 1; fi
echo "restoring $latest"
"#,
        stage = STAGE,
        snap = SNAPSHOT_MOUNT,
    );
    let install = format!(
        r#"
if [ -d {data}/member ]; then echo "data dir present: keeping it"
else mv {stage}/data/member {data}/member && echo "restored"
fi
rm -rf {stage}
"#,
        data = ETCD_DATA,
        stage = STAGE,
    );
    vec![
        tool("restore-fetch", BUSYBOX_IMAGE, sh(&fetch), (0, 0)).mounts(["data", "snapshots"]),
        tool(
            "restore",
            etcd_image,
            restore_args(
                spec,
                node,
                &format!("{STAGE}/snapshot.db"),
                &format!("{STAGE}/data"),
            ),
            (0, 0),
        )
        .mounts(["data"]),
        tool("restore-install", BUSYBOX_IMAGE, sh(&install), (0, 0)).mounts(["data"]),
    ]
}

/// The tools image's restore: the newest *verified* snapshot into an empty data dir; a fresh
/// member when there is none (it decides at start, so the group can be stopped and started).
pub(crate) fn tools_restore(spec: &ClusterSpec, node: &NodeSpec, tools: &str) -> ContainerSpec {
    let mut restore = restore_args(spec, node, "\"$latest\"", &format!("{ETCD_DATA}/restore"));
    // wherever the tools image has it
    restore[0] = "etcdutl".into();
    let restore = restore.join(" ");
    let script = format!(
        r#"
if [ -d {data}/member ]; then echo "data dir present: no restore"; exit 0; fi
latest="$(cat {snap}/latest 2>/dev/null || true)"
if [ -z "$latest" ]; then echo "no snapshot on the share: fresh member"; exit 0; fi
cd {snap}
sha256sum -c "$latest.sha256"
etcdutl snapshot status "$latest" -w table
{restore}
mv {data}/restore/member {data}/member && rmdir {data}/restore
echo "restored $latest"
"#,
        data = ETCD_DATA,
        snap = SNAPSHOT_MOUNT,
    );
    tool("restore", tools, sh(&script), (0, 0)).mounts(["data", "snapshots"])
}

/// Save (after a linearizable read on the same member), verify, ship: one script.
fn tools_snapshot_script(endpoint: &str, kept: u32) -> String {
    let tls = etcdctl_tls().join(" ");
    format!(
        r#"
etcdctl --endpoints={endpoint} {tls} endpoint health
etcdctl --endpoints={endpoint} {tls} snapshot save /tmp/snapshot.db
etcdutl snapshot status /tmp/snapshot.db -w table
{ship}
rm -f /tmp/snapshot.db
"#,
        ship = ship_script("/tmp/snapshot.db", kept).trim(),
    )
}

/// The tools image's periodic sidecar: every `every` seconds, save, verify, ship, prune.
pub(crate) fn tools_sidecar(
    tools: &str,
    every: u64,
    kept: u32,
    endpoint: &str,
    size: (u32, u32),
) -> ContainerSpec {
    let script = format!(
        "while true; do sleep {every}; ( {} ) || echo 'snapshot failed; next try in {every}s'; done",
        tools_snapshot_script(endpoint, kept)
    );
    tool("snapshot", tools, sh(&script), size).mounts(["etcd-pki", "snapshots"])
}

/// `pause`'s one-shot job: its init containers, in order, and the container that only proves
/// they finished (it sees no volume). `endpoint` is one member's client URL: `etcdctl
/// snapshot save` takes exactly one, and `endpoint health` on the same member first is a
/// linearizable read, so the snapshot holds every write acknowledged before the job.
pub(crate) fn snapshot_job_containers(
    endpoint: &str,
    etcd_image: &str,
    tools: Option<&str>,
    kept: u32,
    size: (u32, u32),
) -> (Vec<ContainerSpec>, ContainerSpec) {
    if let Some(tools) = tools {
        let init = tool(
            "snapshot",
            tools,
            sh(&tools_snapshot_script(endpoint, kept)),
            (0, 0),
        )
        .mounts(["etcd-pki", "snapshots"]);
        let done = tool(
            "done",
            tools,
            sh("echo snapshot saved; exec sleep 2147483647"),
            size,
        )
        .mounts(Vec::<String>::new());
        return (vec![init], done);
    }
    let etcdctl = |rest: &[&str]| -> Vec<String> {
        let mut v = vec![
            format!("{ETCD_BIN}/etcdctl"),
            format!("--endpoints={endpoint}"),
        ];
        v.extend(etcdctl_tls());
        v.extend(rest.iter().map(|s| (*s).to_owned()));
        v
    };
    let local = format!("{WORK}/snapshot.db");
    let inits = vec![
        tool(
            "health",
            etcd_image,
            etcdctl(&["endpoint", "health"]),
            (0, 0),
        )
        .mounts(["etcd-pki"]),
        tool(
            "save",
            etcd_image,
            etcdctl(&["snapshot", "save", &local]),
            (0, 0),
        )
        .mounts(["etcd-pki", "work"]),
        tool(
            "verify",
            etcd_image,
            vec![
                format!("{ETCD_BIN}/etcdutl"),
                "snapshot".into(),
                "status".into(),
                local.clone(),
                "--write-out=table".into(),
            ],
            (0, 0),
        )
        .mounts(["work"]),
        tool(
            "ship",
            BUSYBOX_IMAGE,
            sh(&ship_script(&local, kept)),
            (0, 0),
        )
        .mounts(["work", "snapshots"]),
    ];
    let done = tool(
        "done",
        BUSYBOX_IMAGE,
        vec!["sleep".into(), "2147483647".into()],
        size,
    )
    .mounts(Vec::<String>::new());
    (inits, done)
}
