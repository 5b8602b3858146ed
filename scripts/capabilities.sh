# shellcheck shell=bash disable=SC2034 # the arrays are read by the scripts that source this
# The capabilities the README's two commands need from a Debian 12 (bookworm) machine: for each,
# the Debian packages that provide it and a probe that proves it works (not only that a command
# of that name exists). Sourced by install-deps.sh, which probes and installs what is missing, and
# by check-fresh-machine.sh, which runs install-deps.sh in a minimal bookworm chroot: both run the
# same probes, so the proof of the package list cannot drift from the script.
#
# A probe runs in a subshell whose working directory is an empty scratch directory; it prints one
# line naming what it found (a version) and returns 0, or returns non-zero with the tool's errors.

# ./scripts/example.sh: build the CLI (cargo's linker and aws-lc-sys need a C compiler,
# etcd-client's build script needs protoc and the well-known types), fetch crates over TLS, run
# etcd (and etcdctl, for looking at it), and run cluster.yaml's worker: its own containerd (with
# runc, and ctr for the CRI health gate and `down`'s clean-up), the CNI plugins bridge and
# host-local, iptables (the bridge plugin's masquerade rules, kube-proxy) and ip (`down` deletes
# the pods' network namespaces, veths and the bridge). Without them the worker runs nothing.
#
# Debian's containerd package enables and starts a system containerd (containerd.service, on
# /run/containerd/containerd.sock, root /var/lib/containerd). It does not disturb ours: each
# worker's containerd has its own socket, root, state, runc root and CNI directories under the
# cluster directory (`--address`, `--root`, `--state`, its own config.toml), and its shims'
# sockets are named from that socket. Both can run side by side; install-deps leaves the
# system service as the package set it up.
CAPS_MAIN=(cc protoc_wkt tls_roots etcd etcdctl containerd runc ctr cni_plugins iptables ip)
# ./scripts/test.sh adds the tools the tests run for real: openssl verify, Ignition (validator
# and engine), kubectl, the gateway's WireGuard/nftables namespace test, sysctl,
# systemd-analyze verify, and Python venvs for the PyPI tools.
CAPS_TEST=("${CAPS_MAIN[@]}" openssl ignition_validate ignition_engine kubectl wireguard_go wg nft
  sysctl systemd_analyze python3_venv)

declare -gA CAP_PKGS=(
  [cc]="gcc libc6-dev" # gcc only recommends libc6-dev, without which cc cannot link
  [protoc_wkt]="protobuf-compiler libprotobuf-dev" # the .proto well-known types are libprotobuf-dev's
  [tls_roots]="ca-certificates"
  [etcd]="etcd-server"
  [etcdctl]="etcd-client"
  [openssl]="openssl"
  [ignition_validate]="ignition"
  [ignition_engine]="ignition"
  [kubectl]="kubernetes-client"
  [wireguard_go]="wireguard-go"
  [wg]="wireguard-tools"
  [nft]="nftables"
  [iptables]="iptables"
  [ip]="iproute2"
  [sysctl]="procps"
  [containerd]="containerd"
  [runc]="runc"
  [ctr]="containerd"
  [cni_plugins]="containernetworking-plugins"
  [systemd_analyze]="systemd"
  [python3_venv]="python3 python3-venv" # python3 alone has no ensurepip: venv creation fails
)

declare -gA CAP_WHAT=(
  [cc]="cc compiles and links a C program (cargo's linker, aws-lc-sys)"
  [protoc_wkt]="protoc compiles a .proto importing google/protobuf/{descriptor,struct,timestamp}.proto (etcd-client's build script)"
  [tls_roots]="CA certificates in /etc/ssl/certs (cargo and pip over HTTPS)"
  [etcd]="etcd --version"
  [etcdctl]="etcdctl version"
  [openssl]="openssl version"
  [ignition_validate]="ignition-validate accepts a small Ignition 3.3 config"
  [ignition_engine]="the Ignition engine /usr/lib/dracut/modules.d/30ignition/ignition -version"
  [kubectl]="kubectl version --client"
  [wireguard_go]="wireguard-go --version"
  [wg]="wg --version"
  [nft]="nft --version"
  [iptables]="iptables --version"
  [ip]="ip -V (iproute2: netns, link, addr)"
  [sysctl]="sysctl --version"
  [containerd]="containerd --version"
  [runc]="runc --version"
  [ctr]="ctr --version"
  [cni_plugins]="CNI plugins bridge, host-local, loopback in /usr/lib/cni answer CNI_COMMAND=VERSION"
  [systemd_analyze]="systemd-analyze verify accepts a small unit"
  [python3_venv]="python3 with venv and ensurepip (the PyPI tools' virtualenvs)"
)

IGNITION_ENGINE=/usr/lib/dracut/modules.d/30ignition/ignition
CNI_DIR=/usr/lib/cni

# First line of a command's output, failing when the command fails or prints nothing.
cap_first_line() {
  local out
  command -v "$1" >/dev/null 2>&1 || { echo "$1: not found (PATH=$PATH)"; return 1; }
  out="$("$@" 2>&1)" || { printf '%s\n' "$out"; return 1; }
  [ -n "$out" ] || { echo "$* printed nothing"; return 1; }
  printf '%s\n' "${out%%$'\n'*}"
}

probe_cc() {
  command -v cc >/dev/null || { echo "no cc in PATH"; return 1; }
  printf '#include <stdio.h>\nint main(void) { puts("cc-ok"); return 0; }\n' >probe.c
  cc -o probe-c probe.c || return 1
  [ "$(./probe-c)" = cc-ok ] || { echo "the program cc linked did not run"; return 1; }
  cap_first_line cc --version
}

probe_protoc_wkt() {
  # As prost-build runs it: the file's own directory as -I, the well-known types from protoc's
  # built-in include path (/usr/include on Debian), every import resolved into one descriptor set.
  cat >probe.proto <<'EOF'
syntax = "proto3";
package frankenetes.probe;
import "google/protobuf/descriptor.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
extend google.protobuf.FieldOptions { string probe_note = 50001; }
message Probe {
  google.protobuf.Timestamp at = 1 [(probe_note) = "wkt"];
  google.protobuf.Value value = 2;
}
EOF
  protoc -I. --include_imports --descriptor_set_out=probe.pb probe.proto || return 1
  [ -s probe.pb ] || { echo "protoc wrote no descriptor set"; return 1; }
  cap_first_line protoc --version
}

probe_tls_roots() {
  local bundle=/etc/ssl/certs/ca-certificates.crt
  [ -s "$bundle" ] || { echo "$bundle is missing or empty"; return 1; }
  echo "$(grep -c 'BEGIN CERTIFICATE' "$bundle") certificates in $bundle"
}

probe_etcd() { cap_first_line etcd --version; }
# etcdctl 3.4 has no --version flag (it prints the help); `version` is its subcommand.
probe_etcdctl() { cap_first_line etcdctl version; }
probe_openssl() { cap_first_line openssl version; }

probe_ignition_validate() {
  cat >probe.ign <<'EOF'
{"ignition": {"version": "3.3.0"},
 "storage": {"files": [{"path": "/etc/frankenetes-probe", "mode": 420,
   "contents": {"source": "data:,probe"}}]}}
EOF
  ignition-validate probe.ign || return 1
  cap_first_line ignition-validate -version
}

probe_ignition_engine() {
  [ -x "$IGNITION_ENGINE" ] || { echo "$IGNITION_ENGINE is missing"; return 1; }
  cap_first_line "$IGNITION_ENGINE" -version
}

probe_kubectl() { cap_first_line kubectl version --client; }
probe_wireguard_go() { cap_first_line wireguard-go --version; }
probe_wg() { cap_first_line wg --version; }
probe_nft() { cap_first_line nft --version; }
probe_iptables() { cap_first_line iptables --version; }
probe_ip() { cap_first_line ip -V; }
probe_sysctl() { cap_first_line sysctl --version; }
probe_containerd() { cap_first_line containerd --version; }
probe_runc() { cap_first_line runc --version; }
probe_ctr() { cap_first_line ctr --version; }

probe_cni_plugins() {
  local p out versions=""
  for p in bridge host-local loopback; do
    [ -x "$CNI_DIR/$p" ] || { echo "$CNI_DIR/$p is missing"; return 1; }
    out="$(CNI_COMMAND=VERSION "$CNI_DIR/$p" </dev/null 2>&1)" || { printf '%s\n' "$out"; return 1; }
    case "$out" in *supportedVersions*) ;; *) echo "$CNI_DIR/$p VERSION: $out"; return 1 ;; esac
    versions="$versions $p"
  done
  echo "CNI plugins in $CNI_DIR:$versions"
}

probe_systemd_analyze() {
  printf '[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
    >frankenetes-probe.service
  systemd-analyze verify "$PWD/frankenetes-probe.service" || return 1
  cap_first_line systemd-analyze --version
}

probe_python3_venv() {
  python3 -c 'import ensurepip, sys, venv
print("Python", sys.version.split()[0], "with venv, ensurepip (pip", ensurepip.version() + ")")'
}

# The capabilities of a profile (main or test), one per line.
caps_of() {
  case "$1" in
    main) printf '%s\n' "${CAPS_MAIN[@]}" ;;
    test) printf '%s\n' "${CAPS_TEST[@]}" ;;
    *) echo "capabilities: unknown profile '$1' (main or test)" >&2; return 2 ;;
  esac
}

# probe_caps CAP...: runs each probe in its own subshell and scratch directory. Sets CAP_OK (cap →
# the probe's line), CAP_ERR (cap → its error output) and CAP_MISSING (the failed caps, in order).
declare -gA CAP_OK CAP_ERR
CAP_MISSING=()
probe_caps() {
  local cap out tmp
  CAP_OK=() CAP_ERR=() CAP_MISSING=()
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/frankenetes-probe.XXXXXX")"
  for cap in "$@"; do
    mkdir "$tmp/$cap"
    if out="$(cd "$tmp/$cap" && "probe_$cap" 2>&1)"; then
      CAP_OK[$cap]="$out"
    else
      CAP_ERR[$cap]="${out:-(no output)}"
      CAP_MISSING+=("$cap")
    fi
  done
  rm -rf "$tmp"
}

# The packages providing CAP..., each once, in order.
packages_of() {
  local cap pkg seen=" "
  for cap in "$@"; do
    for pkg in ${CAP_PKGS[$cap]}; do
      case "$seen" in *" $pkg "*) ;; *) seen="$seen$pkg "; printf '%s\n' "$pkg" ;; esac
    done
  done
}
