#!/usr/bin/env bash
# The main job (README, first line): a real local control plane from cluster.yaml — a
# three-member etcd cluster with mutual TLS on 127.0.0.11-13 (plus the apiserver tier when
# kube-apiserver, kube-controller-manager and kube-scheduler are in $FRANKENETES_BIN_DIR or PATH),
# and, run as root, the worker's own containerd with its CNI configuration (plus the kubelet and
# kube-proxy when found), healthy, with its status shown. Stop it with:
# frankenetes down -f cluster.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null 2>&1 || {
  echo "example: cargo not found: install Rust with rustup (https://rustup.rs); Debian's cargo is older than the workspace's rust-version" >&2
  exit 1
}
# Only what the main job needs (a C compiler, protoc and the well-known types, etcd; containerd,
# runc and the CNI plugins for the worker): no PyPI tools.
./scripts/install-deps.sh --main
cargo build --release --locked -q -p frankenetes-cli
bin="${CARGO_TARGET_DIR:-target}/release/frankenetes"
"$bin" up -f cluster.yaml "$@"
"$bin" status -f cluster.yaml
echo "stop it with: $bin down -f cluster.yaml"
