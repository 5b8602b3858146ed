#!/usr/bin/env bash
# What a `cargo add frankenetes-pki` user gets: a new binary crate outside this workspace, the
# crate added with `cargo add`, the first example of its docs (the one at the top of
# crates/pki/src/lib.rs) pasted into `main` and run, and no async runtime or HTTP client in
# its dependency tree.
#
#   scripts/check-fresh-crate.sh
#
# The crate is added by path (it is not on crates.io yet), from the packaged sources that
# `cargo package` would publish, so a file missing from the package fails here too.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/frankenetes/target}"
work="$(mktemp -d "${TMPDIR:-/tmp}/frankenetes-fresh-crate.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT

# The packaged sources of frankenetes-pki and the workspace crates it depends on (what
# crates.io would serve). cargo's own error is shown when packaging fails.
pkgs=(spec bundle pki)
pkg_args=()
for c in "${pkgs[@]}"; do pkg_args+=(-p "frankenetes-$c"); done
if ! out=$(cd "$repo" && cargo package --locked --no-verify --allow-dirty \
    "${pkg_args[@]}" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "check-fresh-crate: cargo package -p frankenetes-{spec,bundle,pki} failed" >&2
    exit 1
fi
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml")
for c in "${pkgs[@]}"; do
    tar -xzf "$CARGO_TARGET_DIR/package/frankenetes-$c-$version.crate" -C "$work"
done
cd "$work"
cargo new --quiet --bin --vcs none user-app
cd user-app
# frankenetes-pki's packaged manifest names frankenetes-spec by version only, as on crates.io:
# resolve that to the unpacked package, as the registry would.
cat >>Cargo.toml <<EOF

[patch.crates-io]
frankenetes-spec = { path = "../frankenetes-spec-$version" }
frankenetes-bundle = { path = "../frankenetes-bundle-$version" }
EOF
cargo add --quiet --path "../frankenetes-pki-$version" frankenetes-pki

# The first ``` block of the crate docs, as main's body (its `?` returns a frankenetes_pki::Error).
python3 - "$repo/crates/pki/src/lib.rs" >src/main.rs <<'PY'
import sys
lines, block, inside = open(sys.argv[1]).read().splitlines(), [], False
for line in lines:
    if not line.startswith("//!"):
        if inside or block:
            break
        continue
    text = line[4:] if line.startswith("//! ") else line[3:]
    if text.startswith("```"):
        if inside:
            break
        inside = True
        continue
    if inside:
        block.append(text[2:] if text.startswith("# ") else text)
if not block:
    sys.exit("check-fresh-crate: no doc example at the top of crates/pki/src/lib.rs")
uses = [l for l in block if l.startswith("use ")]
body = [l for l in block if not l.startswith("use ") and not l.startswith("Ok::<")]
print("\n".join(uses))
print("\nfn main() -> Result<(), frankenetes_pki::Error> {")
print("\n".join("    " + l if l else "" for l in body))
print('    println!("the first doc example of frankenetes-pki ran");')
print("    Ok(())\n}")
PY

# The workspace's lock file pins the same dependency versions CI already fetched and tested
# (cargo drops what the fresh crate does not use), so the check runs offline and reproducibly.
cp "$repo/Cargo.lock" Cargo.lock
cargo run --quiet --offline
if cargo tree --offline -e normal | grep -E '^[^a-z]*(tokio|hyper|reqwest|tonic|async-std|smol) '; then
    echo "check-fresh-crate: frankenetes-pki pulled an async runtime or HTTP client into a fresh crate" >&2
    exit 1
fi
echo "check-fresh-crate: a fresh crate with \`cargo add frankenetes-pki\` runs the first doc example; no async runtime"
