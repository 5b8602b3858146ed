#!/usr/bin/env bash
# The test command (README, second line): installs what the tests need, then runs every test of
# the workspace, real etcd and openssl included.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null 2>&1 || {
  echo "test: cargo not found: install Rust with rustup (https://rustup.rs); Debian's cargo is older than the workspace's rust-version" >&2
  exit 1
}
./scripts/install-deps.sh --test
# The PyPI tools (moto_server, checkov, kubernetes-validate) install-deps put in their venvs.
export PATH="${FRANKENETES_PY:-${XDG_CACHE_HOME:-$HOME/.cache}/frankenetes/py}/bin:$PATH"
export INSTA_UPDATE=no
# The CLI's cloud backends (features of frankenetes-cli, off by default) are on, so the
# CLI's tests against moto run too; the other crates see the same dependency features either way.
cargo test --workspace --features frankenetes-cli/aws,frankenetes-cli/azure --locked "$@"
