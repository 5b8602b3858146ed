#!/usr/bin/env bash
# Time from `frankenetes up` to three healthy etcd members, against the floor: a plain script
# that starts the same three etcd processes with the same flags and polls until all three are
# healthy. Both start from empty data directories with the PKI already made. Prints the medians
# and the ratio (goal: frankenetes within 1.3x of the floor).
#   benches/up-baseline.sh [--reps N]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
if [ "${1:-}" = "--reps" ]; then reps="$2"; fi
cargo build --release --locked -q -p frankenetes-cli
bin="${CARGO_TARGET_DIR:-target}/release/frankenetes"
work=$(mktemp -d)
trap '"$bin" down -f "$work/cluster.yaml" --dir "$work/c" >/dev/null 2>&1 || true; pkill -f "$work/" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/cluster.yaml" <<YAML
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {name: bench}
spec:
  kubernetesVersion: v1.35.0
  controlPlane:
    - {name: control-01, ip: 127.0.0.91}
    - {name: control-02, ip: 127.0.0.92}
    - {name: control-03, ip: 127.0.0.93}
YAML
up() { "$bin" up -f "$work/cluster.yaml" --dir "$work/c" --bin-dir "$work/none" >/dev/null 2>&1; }
down() { "$bin" down -f "$work/cluster.yaml" --dir "$work/c" >/dev/null 2>&1; }
now() { date +%s.%N; }

# One run to make the PKI and bundles and record the exact command lines (before `down`
# removes the units).
up
mapfile -t cmds < <(python3 - "$work/c/run/units" <<'PY'
import json, os, sys, shlex
d = sys.argv[1]
for u in sorted(os.listdir(d)):
    rec = json.load(open(os.path.join(d, u, "unit.json")))
    print(" ".join(shlex.quote(a) for a in rec["containers"][0][1]))
PY
)
down
[ "${#cmds[@]}" -eq 3 ] || { echo "expected 3 etcd command lines, got ${#cmds[@]}" >&2; exit 1; }
pki="$work/c/bundle/nodes/control-01/etc/kubernetes/pki"
healthy() {
  ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.91:2379,https://127.0.0.92:2379,https://127.0.0.93:2379 \
    --cacert="$pki/etcd/ca.crt" --cert="$pki/etcd/healthcheck-client.crt" --key="$pki/etcd/healthcheck-client.key" \
    --dial-timeout=250ms --command-timeout=500ms endpoint health 2>&1 | grep -c "is healthy" | grep -qx 3
}

floor=(); ours=()
for _ in $(seq "$reps"); do
  rm -rf "$work/c/data"; mkdir -p "$work/c/data"
  for n in control-01 control-02 control-03; do install -d -m 700 "$work/c/data/$n/etcd"; done
  t0=$(now); pids=()
  i=0; for c in "${cmds[@]}"; do i=$((i+1)); eval "exec $c" >"$work/floor-$i.log" 2>&1 & pids+=($!); done
  deadline=$(( $(date +%s) + 60 ))
  until healthy; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "the plain etcd cluster did not become healthy" >&2; exit 1; }
    sleep 0.05
  done
  floor+=("$(awk -v a="$(now)" -v b="$t0" "BEGIN{print a-b}")")
  kill "${pids[@]}" 2>/dev/null || { echo "a plain etcd exited early:" >&2; cat "$work"/floor-*.log >&2; exit 1; }; wait "${pids[@]}" 2>/dev/null || true

  rm -rf "$work/c/data"
  t0=$(now); up; ours+=("$(awk -v a="$(now)" -v b="$t0" "BEGIN{print a-b}")")
  down
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
f=$(median "${floor[@]}"); o=$(median "${ours[@]}")
ratio=$(awk -v a="$o" -v b="$f" "BEGIN{printf \"%.2f\", a/b}")
printf '%-28s %10s\n' "plain script (floor), s" "$f" "frankenetes up, s" "$o"
printf '%-28s %10s   (goal: <= 1.30)\n' "ratio" "$ratio"
