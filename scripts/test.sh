#!/usr/bin/env bash
# The test command (README, second line): installs what the tests need, then runs every test of
# the workspace, real etcd and openssl included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export INSTA_UPDATE=no
cargo test --workspace --locked "$@"
