#!/usr/bin/env bash
# The main job (README, first line): make the example cluster's PKI and check it.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
cargo build --release --locked -q -p frankenetes
bin="${CARGO_TARGET_DIR:-target}/release/frankenetes"
"$bin" pki -f cluster.yaml -o "$out"
"$bin" pki check "$out"
