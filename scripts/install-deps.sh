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
