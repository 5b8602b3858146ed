#!/usr/bin/env bash
# Installs what the tests and the example need on a fresh Debian machine, only what is missing:
#   etcd, etcdctl (Debian etcd-server, etcd-client: 3.4), openssl, ignition-validate (ignition),
#   kubectl (kubernetes-client), protoc (protobuf-compiler: building etcd's gRPC client),
#   and for the gateway's network-namespace test: wireguard-go, wg (wireguard-tools), nft
#   (nftables), iptables, ip (iproute2), sysctl (procps).
# Safe to run again; needs root (or sudo) only when something is missing. --no-install-recommends
# matters: wireguard-tools recommends a kernel image.
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ignition-validate >/dev/null 2>&1 || need+=(ignition)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v wireguard-go >/dev/null 2>&1 || need+=(wireguard-go)
command -v wg >/dev/null 2>&1 || need+=(wireguard-tools)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v sysctl >/dev/null 2>&1 || need+=(procps)

# PyPI tools, each in its own virtualenv (their pins conflict), linked into one bin directory
# that scripts/test.sh puts on PATH: moto_server (the AWS API on loopback), checkov (CIS checks),
# kubernetes-validate (OpenAPI schemas per Kubernetes version). Versions are pinned so a
# scanner update cannot change what the tests accept without a commit.
py_root="${FRANKENETES_PY:-${XDG_CACHE_HOME:-$HOME/.cache}/frankenetes/py}"
mkdir -p "$py_root/bin"
pytool() { # pytool VENV 'REQUIREMENT' COMMAND...
  local venv="$py_root/$1" req="$2"; shift 2
  if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$req" ]; then
    echo "install-deps: installing $req from PyPI" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$req"
    echo "$req" >"$venv/.installed"
  fi
  for c in "$@"; do ln -sf "$venv/bin/$c" "$py_root/bin/$c"; done
}
pytool moto 'moto[server]==5.2.1' moto_server
pytool checkov 'checkov==3.3.30' checkov
pytool kubernetes-validate 'kubernetes-validate==1.37.0' kubernetes-validate

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's etcd-server package may start a system etcd on 2379; the tests use their own ports,
# but a stray service is not wanted on a build machine.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
fi
