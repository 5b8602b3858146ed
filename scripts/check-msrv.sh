#!/usr/bin/env bash
# The MSRV check (rust-version in Cargo.toml, workspace.package).
#
# 1. With --build: check the published crates with the MSRV toolchain (installed with rustup,
#    minimal profile, when missing): the real check (a full second dependency build).
# 2. Always: no dependency in Cargo.lock declares a rust-version above ours (the usual way an MSRV
#    silently breaks), and clippy's `incompatible_msrv` lint (run by CI's clippy step, which reads
#    rust-version) flags standard-library APIs newer than the MSRV.
# Where rustup cannot fetch a toolchain, (2) is what runs, and the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n '/^\[workspace.package\]/,/^\[/s/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml)
[ -n "$msrv" ] || { echo "check-msrv: no rust-version in [workspace.package]" >&2; exit 1; }

cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
msrv = sys.argv[1]
def key(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
meta = json.load(sys.stdin)
bad = [(p["name"], p["version"], p["rust_version"]) for p in meta["packages"]
       if p.get("rust_version") and key(p["rust_version"]) > key(msrv)]
for name, version, rv in bad:
    print(f"check-msrv: {name} {version} needs Rust {rv}, above our rust-version {msrv}", file=sys.stderr)
if bad:
    sys.exit(1)
print(f"check-msrv: every dependency builds with Rust {msrv} by its own declaration")
' "$msrv"

if [ "${1:-}" != "--build" ]; then
  echo "check-msrv: declarations checked; \`$0 --build\` also checks the code with Rust $msrv"
  exit 0
fi
if ! rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
  rustup toolchain install "$msrv" --profile minimal >&2 || true
fi
if rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
  # The published crates with every feature the CLI has (the cloud backends included).
  cargo "+$msrv" check --workspace --locked --features frankenetes-cli/aws,frankenetes-cli/azure \
    --exclude frankenetes-benches --exclude frankenetes-examples
  echo "check-msrv: built with Rust $msrv"
else
  echo "check-msrv: Rust $msrv is not installed here; the dependency and clippy checks stand in (install it with: rustup toolchain install $msrv)"
fi
