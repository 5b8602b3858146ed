#!/usr/bin/env bash
# Times the whole 3-node PKI made the way hand-written guides do it (one `openssl` process per
# step: genpkey, req, x509 -req with an extfile for each certificate) against
# `frankenetes pki -f <spec> -o <dir>` making the same set, for ECDSA P-256 and RSA-2048, and
# prints the medians and their ratio side by side.
#
#   benches/openssl-baseline.sh [--reps N] [--no-build] [--dir DIR] [--fresh-fs]
#
# The set, on both sides: kubeadm's three CAs; for each of control-01..03 apiserver (with its
# SANs), apiserver-kubelet-client, apiserver-etcd-client, front-proxy-client, etcd/server,
# etcd/peer (SANs), etcd/healthcheck-client, controller-manager, scheduler, kubelet-client and
# kubelet serving; worker-01's kubelet-client and kubelet serving; admin, super-admin,
# kube-proxy; the service-account key pair; the Secrets encryption config (one random key); and
# the copies of the CAs, sa keys and encryption config on the control-plane nodes
# (frankenetes' layout: cluster/pki, nodes/...). 41 certificates, 42 keys. The openssl run is sequential, as a guide's commands are.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk with a decimal point

usage() {
    echo "usage: $0 [--reps N] [--no-build] [--dir DIR] [--fresh-fs]"
    echo "  --reps N     repetitions of each side, interleaved (default 5); the medians are compared"
    echo "  --no-build   use the frankenetes already built in the target directory's release/"
    echo "  --dir DIR    write both sides' files under DIR (default: \$TMPDIR or /tmp)"
    echo "  --fresh-fs   write them on a new ext4 filesystem (mkfs.ext4 defaults, so with a journal)"
    echo "               in a loop-mounted sparse file under DIR, removed at the end: a disk in a"
    echo "               known state. Needs root, mkfs.ext4 and a loop device."
}

reps=5
build=1
dir="${TMPDIR:-/tmp}"
fresh_fs=0
while (($# > 0)); do
    case "$1" in
    --reps)
        [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
        reps="$2"
        shift 2
        ;;
    --reps=*)
        reps="${1#--reps=}"
        [[ "$reps" =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
        shift
        ;;
    --no-build)
        build=0
        shift
        ;;
    --dir | --dir=*)
        if [[ "$1" == --dir=* ]]; then
            dir="${1#--dir=}"
            shift
        else
            [[ $# -ge 2 ]] || { usage >&2; exit 2; }
            dir="$2"
            shift 2
        fi
        [[ -d "$dir" ]] || { echo "$0: --dir $dir: not an existing directory" >&2; exit 2; }
        ;;
    --fresh-fs)
        fresh_fs=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
done

if [[ -z "${EPOCHREALTIME:-}" ]]; then
    echo "$0: needs bash 5 or later (EPOCHREALTIME)" >&2
    exit 2
fi
command -v openssl >/dev/null || { echo "$0: openssl not found (apt-get install openssl)" >&2; exit 2; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Absolute: the script changes directory, and the cleanup runs from /.
dir="$(cd -- "$dir" && pwd -P)"
mnt=""
image=""
cleanup() {
    set +e # every step runs, whatever the one before it did
    cd /
    [[ -z "$work" ]] || rm -rf -- "$work"
    if [[ -n "$mnt" ]]; then
        umount -- "$mnt" 2>/dev/null || umount -l -- "$mnt" 2>/dev/null || true
        rmdir -- "$mnt" 2>/dev/null || true
    fi
    [[ -z "$image" ]] || rm -f -- "$image"
}
work=""
trap cleanup EXIT
trap 'exit 130' INT TERM
if ((fresh_fs)); then
    # A filesystem nobody else writes to, made for this run: the figures do not depend on what
    # the machine deleted lately (see "Which disk" in benches/README.md).
    [[ $EUID -eq 0 ]] || { echo "$0: --fresh-fs needs root (mount); use --dir instead" >&2; exit 2; }
    command -v mkfs.ext4 >/dev/null || { echo "$0: --fresh-fs needs mkfs.ext4 (apt-get install e2fsprogs)" >&2; exit 2; }
    image="$(mktemp "$dir/frankenetes-bench-fs.XXXXXX")"
    mnt="$(mktemp -d "$dir/frankenetes-bench-mnt.XXXXXX")"
    # 2 GB, sparse: 131072 inodes, room for hundreds of repetitions (nothing is deleted until
    # the end). Inode tables and journal are initialised now, not by a kernel thread during
    # the measurement.
    truncate -s 2G "$image"
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$image"
    mount -o loop "$image" "$mnt" || { echo "$0: could not loop-mount $image (no loop device?)" >&2; exit 1; }
    dir="$mnt"
fi
work="$(mktemp -d "$dir/frankenetes-openssl-baseline.XXXXXX")"

# What the files are written on: the ratio depends on it (see benches/README.md).
describe_fs() { # <dir>
    local fstype source journal=""
    fstype="$(findmnt -n -o FSTYPE --target "$1" 2>/dev/null || stat -f -c %T "$1")"
    source="$(findmnt -n -o SOURCE --target "$1" 2>/dev/null || echo '?')"
    if [[ "$fstype" == ext4 && -d /proc/fs/jbd2 ]]; then
        # A journaled ext4 has a jbd2 entry named after its device (vda-8, loop0-8).
        # jbd2 names the kernel's device (dm-0 for /dev/mapper/...): resolve links first.
        if compgen -G "/proc/fs/jbd2/$(basename -- "$(readlink -f -- "$source")")-*" >/dev/null; then
            journal=", with a journal"
        else
            journal=", without a journal"
        fi
    fi
    echo "$fstype on $source$journal"
}

# --- the CLI, in release -------------------------------------------------------------------
if ((build)); then
    echo "building: cargo build --release -p frankenetes-cli" >&2
    (cd "$repo" && cargo build --release --quiet -p frankenetes-cli)
fi
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    target_dir="$CARGO_TARGET_DIR"
else
    # Honours a target-dir set in .cargo/config.toml too.
    target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')" || target_dir=""
    [[ -n "$target_dir" ]] || target_dir="$repo/target"
fi
[[ "$target_dir" = /* ]] || target_dir="$repo/$target_dir"
frankenetes="$target_dir/release/frankenetes"
[[ -x "$frankenetes" ]] || { echo "$0: $frankenetes was not built" >&2; exit 1; }

# --- the cluster ---------------------------------------------------------------------------
control_plane=(control-01 control-02 control-03)
declare -A ip=([control-01]=127.0.0.11 [control-02]=127.0.0.12 [control-03]=127.0.0.13 [worker-01]=127.0.0.21)
workers=(worker-01)
service_ip=10.96.0.1 # the first address of serviceCIDR 10.96.0.0/16
endpoint_ip="${ip[control-01]}"
domain=cluster.local

write_spec() { # <algorithm> <file>
    cat >"$2" <<EOF
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata:
  name: kubelius
spec:
  kubernetesVersion: v1.35.0
  network:
    serviceCIDR: 10.96.0.0/16
    podCIDR: 10.244.0.0/16
    dnsDomain: $domain
  pki:
    caMode: kubeadm
    keyAlgorithm: $1
    caValidity: 87600h
    certValidity: 8760h
  controlPlane:
    - { name: control-01, ip: ${ip[control-01]} }
    - { name: control-02, ip: ${ip[control-02]} }
    - { name: control-03, ip: ${ip[control-03]} }
  workers:
    - { name: worker-01, ip: ${ip[worker-01]} }
  backend:
    local: {}
EOF
}

# --- the openssl way -----------------------------------------------------------------------
# Everything below the timer runs in this shell: the only processes are openssl's, one mkdir
# and one cp per node (the CA and sa copies), as a guide's `scp` step would be.
openssl_processes=0
ossl() {
    openssl_processes=$((openssl_processes + 1))
    openssl "$@"
}

keygen() { # <key file>
    case "$alg" in
    ecdsa-p256) ossl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
    rsa-2048) ossl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ;;
    esac
}

ca() { # <base path> <common name>
    keygen "$1.key"
    ossl req -x509 -new -sha256 -key "$1.key" -subj "/CN=$2" -days 3650 -out "$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" \
        -addext "subjectAltName=DNS:$2"
}

# <base path> <issuer base path> <subject> <serverAuth|clientAuth|serverAuth,clientAuth> [SANs]
leaf() {
    local base="$1" issuer="$2" subject="$3" eku="$4" sans="${5:-}" scratch
    scratch="$tmp/${base//\//_}"
    local key_usage=digitalSignature
    [[ "$alg" == rsa-* ]] && key_usage="digitalSignature,keyEncipherment"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,$key_usage"
        echo "extendedKeyUsage=$eku"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid"
        [[ -z "$sans" ]] || echo "subjectAltName=$sans"
    } >"$scratch.ext"
    keygen "$base.key"
    ossl req -new -key "$base.key" -subj "$subject" -out "$scratch.csr"
    # x509 -req chatters on stderr ("Certificate request self-signature ok"): shown on failure only.
    ossl x509 -req -sha256 -in "$scratch.csr" -CA "$issuer.crt" -CAkey "$issuer.key" -days 365 \
        -extfile "$scratch.ext" -out "$base.crt" 2>"$scratch.log" || { cat "$scratch.log" >&2; return 1; }
}

openssl_set() { # <output dir>; uses $alg
    local out="$1" cluster="$1/cluster/pki" n d sans dirs=()
    tmp="$out.scratch" # CSRs and extfiles, outside the output
    dirs+=("$tmp" "$cluster/etcd")
    for n in "${control_plane[@]}"; do dirs+=("$out/nodes/$n/etc/kubernetes/pki/etcd"); done
    for n in "${control_plane[@]}" "${workers[@]}"; do dirs+=("$out/nodes/$n/var/lib/kubelet/pki"); done
    for n in "${workers[@]}"; do dirs+=("$out/nodes/$n/etc/kubernetes/pki"); done
    # 0700 like the tool's own output: these directories hold CA and private keys, and
    # `pki check` reports a group- or world-readable one.
    (umask 077 && mkdir -p "${dirs[@]}")

    ca "$cluster/ca" kubernetes
    ca "$cluster/etcd/ca" etcd-ca
    ca "$cluster/front-proxy-ca" front-proxy-ca
    keygen "$cluster/sa.key"
    ossl pkey -in "$cluster/sa.key" -pubout -out "$cluster/sa.pub"

    for n in "${control_plane[@]}"; do
        d="$out/nodes/$n/etc/kubernetes/pki"
        sans="DNS:$n,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$domain,IP:$service_ip,IP:${ip[$n]}"
        # The control-plane endpoint: the first node's address:6443 when the spec names none.
        [[ "${ip[$n]}" == "$endpoint_ip" ]] || sans+=",IP:$endpoint_ip"
        leaf "$d/apiserver" "$cluster/ca" "/CN=kube-apiserver" serverAuth "$sans"
        leaf "$d/apiserver-kubelet-client" "$cluster/ca" "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" clientAuth
        leaf "$d/apiserver-etcd-client" "$cluster/etcd/ca" "/CN=kube-apiserver-etcd-client" clientAuth
        leaf "$d/front-proxy-client" "$cluster/front-proxy-ca" "/CN=front-proxy-client" clientAuth
        leaf "$d/etcd/server" "$cluster/etcd/ca" "/CN=$n" serverAuth,clientAuth \
            "DNS:$n,DNS:localhost,IP:${ip[$n]},IP:127.0.0.1,IP:::1"
        leaf "$d/etcd/peer" "$cluster/etcd/ca" "/CN=$n" serverAuth,clientAuth \
            "DNS:$n,DNS:localhost,IP:${ip[$n]},IP:127.0.0.1,IP:::1"
        leaf "$d/etcd/healthcheck-client" "$cluster/etcd/ca" "/CN=kube-etcd-healthcheck-client" clientAuth
        leaf "$d/controller-manager" "$cluster/ca" "/CN=system:kube-controller-manager" clientAuth
        leaf "$d/scheduler" "$cluster/ca" "/CN=system:kube-scheduler" clientAuth
    done
    for n in "${control_plane[@]}" "${workers[@]}"; do
        leaf "$out/nodes/$n/var/lib/kubelet/pki/kubelet-client" "$cluster/ca" "/O=system:nodes/CN=system:node:$n" clientAuth
        leaf "$out/nodes/$n/var/lib/kubelet/pki/kubelet" "$cluster/ca" "/O=system:nodes/CN=system:node:$n" serverAuth \
            "DNS:$n,IP:${ip[$n]}"
    done
    # Secrets encryption at rest: one random 32-byte key in an EncryptionConfiguration.
    umask 077
    cat >"$cluster/encryption-config.yaml" <<ENC
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: $(ossl rand -base64 32)
      - identity: {}
ENC
    umask 022
    leaf "$cluster/admin" "$cluster/ca" "/O=kubeadm:cluster-admins/CN=kubernetes-admin" clientAuth
    leaf "$cluster/super-admin" "$cluster/ca" "/O=system:masters/CN=kubernetes-super-admin" clientAuth
    leaf "$cluster/kube-proxy" "$cluster/ca" "/CN=system:kube-proxy" clientAuth

    # The copies: every CA (with its key) and the sa keys on each control-plane node, ca.crt on
    # workers. `cd` is a builtin; one cp per node.
    cd "$cluster"
    for n in "${control_plane[@]}"; do
        cp --parents ca.crt ca.key etcd/ca.crt etcd/ca.key front-proxy-ca.crt front-proxy-ca.key \
            sa.key sa.pub encryption-config.yaml "$out/nodes/$n/etc/kubernetes/pki/"
    done
    for n in "${workers[@]}"; do cp ca.crt "$out/nodes/$n/etc/kubernetes/pki/"; done
    cd "$work"
}

# --- measuring -----------------------------------------------------------------------------
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
distinct() { # <dir> <name pattern>: files with distinct contents
    find "$1" -type f -name "$2" -exec sha256sum {} + | awk '{ print $1 }' | sort -u | wc -l
}
files() { find "$1" -type f | wc -l; }

declare -A goal=([ecdsa-p256]=50 [rsa-2048]=4)
not_same=0
rows=()
counts=()
cd "$work"
for alg in ecdsa-p256 rsa-2048; do
    spec="$work/cluster-$alg.yaml"
    write_spec "$alg" "$spec"
    ossl_times=()
    cli_times=()
    for ((i = 1; i <= reps; i++)); do
        echo "$alg: repetition $i/$reps" >&2
        o="$work/openssl-$alg-$i"
        openssl_processes=0
        # Each side starts with nothing left to write back: frankenetes fsyncs every file it
        # writes, and on ext4 an fsync also flushes whatever else is dirty (openssl's files).
        sync
        t0="$EPOCHREALTIME"
        openssl_set "$o"
        t1="$EPOCHREALTIME"
        ossl_times+=("$(elapsed "$t0" "$t1")")

        f="$work/frankenetes-$alg-$i"
        sync
        t0="$EPOCHREALTIME"
        "$frankenetes" pki -f "$spec" -o "$f" >/dev/null
        t1="$EPOCHREALTIME"
        cli_times+=("$(elapsed "$t0" "$t1")")

        if ((i == 1)); then
            # Is the openssl set the same set? frankenetes checks it against the spec.
            if "$frankenetes" pki check -f "$spec" "$o" >"$work/check-$alg.txt" 2>&1; then
                same=yes
            else
                same="NO (see above)"
                not_same=1
                cat "$work/check-$alg.txt" >&2
            fi
            counts+=("$(printf '%-11s %-11s %5s %5s %6s %10s   %s' "$alg" openssl \
                "$(distinct "$o" '*.crt')" "$(distinct "$o" '*.key')" "$(files "$o")" "$openssl_processes" \
                "passes \`frankenetes pki check -f spec\`: $same")")
            counts+=("$(printf '%-11s %-11s %5s %5s %6s %10s' "$alg" frankenetes \
                "$(distinct "$f" '*.crt')" "$(distinct "$f" '*.key')" "$(files "$f")" 1)")
        fi
        # Nothing is deleted until the end: on ext4, creating files soon after many were
        # deleted makes the inode allocator skip the recently freed inodes one by one, which
        # added 15–50 ms to whichever side ran next (seen with `perf record`: ext4_create →
        # recently_deleted). Both sides start from the same state this way.
    done
    om="$(median "${ossl_times[@]}")"
    fm="$(median "${cli_times[@]}")"
    rows+=("$(awk -v a="$alg" -v o="$om" -v f="$fm" -v g="${goal[$alg]}" 'BEGIN {
        r = o / f
        printf "%-11s %14.3f %18.4f %9.1fx %6dx  %s", a, o, f, r, g, (r >= g ? "yes" : "NO")
    }')")
done

echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); $(openssl version | cut -d' ' -f1-2); $reps repetitions, medians"
fs_note=""
((fresh_fs == 0)) || fs_note=", made for this run"
echo "written to: $(describe_fs "$work")$fs_note"
echo
printf '%-11s %-11s %5s %5s %6s %10s\n' algorithm made-by certs keys files processes
printf '%s\n' "${counts[@]}"
echo
printf '%-11s %14s %18s %10s %7s  %s\n' algorithm "openssl (s)" "frankenetes (s)" ratio goal met
printf '%s\n' "${rows[@]}"
if ((not_same)); then
    echo >&2
    echo "$0: the openssl-made set does not pass \`frankenetes pki check\` against the same spec:" >&2
    echo "the two sides did not make the same PKI, so the ratio compares different work." >&2
    exit 1
fi
