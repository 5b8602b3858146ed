#!/usr/bin/env bash
# Installs what the README's commands need on a Debian 12 machine, only what is missing.
#   install-deps.sh --main   what ./scripts/example.sh needs: a C compiler, protoc with the
#                            well-known types, CA certificates, etcd, etcdctl, and for
#                            cluster.yaml's worker containerd, runc, ctr, the CNI plugins,
#                            iptables and ip (no PyPI tools)
#   install-deps.sh [--test] everything the tests need (scripts/capabilities.sh lists it), and the
#                            PyPI tools moto_server, checkov, kubernetes-validate in virtualenvs
# Each capability is probed (protoc compiles a file importing the well-known types, etcd runs,
# ...), not only looked up in PATH; the packages of every failed probe are installed with apt
# (root or sudo needed then), and the probes run again. Silent when nothing is missing.
#   --check    probe only: list what is missing and exit 1, install nothing
#   --report   print every capability with the version its probe found
#   --no-pypi  skip the PyPI tools (the fresh-machine check proves the Debian packages only)
#   --list-packages  print the Debian packages of the profile, one per line
# Rust itself is not installed here: Debian's cargo is older than the workspace's rust-version;
# use rustup (https://rustup.rs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/capabilities.sh
. "$here/capabilities.sh"

profile="test" check=0 report=0 pypi=1 list=0
for arg in "$@"; do
  case "$arg" in
    --main) profile=main ;;
    --test) profile="test" ;;
    --check) check=1 ;;
    --report) report=1 ;;
    --no-pypi) pypi=0 ;;
    --list-packages) list=1 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
mapfile -t caps < <(caps_of "$profile")
if [ "$list" = 1 ]; then
  packages_of "${caps[@]}"
  exit 0
fi

say() { echo "install-deps: $*" >&2; }
explain() { # explain CAP: what it is, which packages provide it, what the probe said
  say "  $1: ${CAP_WHAT[$1]} [Debian: ${CAP_PKGS[$1]}]"
  awk 'NR <= 8 { print "      " $0 }' <<<"${CAP_ERR[$1]}" >&2
}

probe_caps "${caps[@]}"
if [ ${#CAP_MISSING[@]} -gt 0 ]; then
  if [ "$check" = 1 ]; then
    say "missing (profile $profile):"
    for cap in "${CAP_MISSING[@]}"; do explain "$cap"; done
    exit 1
  fi
  missing=("${CAP_MISSING[@]}")
  mapfile -t pkgs < <(packages_of "${missing[@]}")
  say "missing: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      say "need root (or sudo) to install: ${pkgs[*]}"
      exit 1
    }
    sudo=(sudo)
  fi
  say "installing with apt-get: ${pkgs[*]}"
  log="$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX")"
  # --no-install-recommends: wireguard-tools recommends a kernel image. Every package a
  # capability needs is listed in capabilities.sh, and the probes below prove the list.
  if ! { "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    say "apt-get failed installing: ${pkgs[*]} (full log: $log)"
    exit 1
  fi
  rm -f "$log"
  # Debian's etcd-server package may start a system etcd on 2379; the tests use their own
  # ports, but a stray service is not wanted on a build machine.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    "${sudo[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
  probe_caps "${missing[@]}"
  if [ ${#CAP_MISSING[@]} -gt 0 ]; then
    say "still missing after installing ${pkgs[*]}:"
    for cap in "${CAP_MISSING[@]}"; do explain "$cap"; done
    say "the packages above do not provide these capabilities on this machine: fix CAP_PKGS in scripts/capabilities.sh"
    exit 1
  fi
  for cap in "${missing[@]}"; do say "  $cap: ${CAP_OK[$cap]}"; done
  [ "$report" = 0 ] || probe_caps "${caps[@]}" # every line, not only the new ones
fi

if [ "$report" = 1 ]; then
  for cap in "${caps[@]}"; do printf '%-18s %s\n' "$cap" "${CAP_OK[$cap]}"; done
fi

[ "$profile" = test ] && [ "$pypi" = 1 ] || exit 0
# PyPI tools, each in its own virtualenv (their pins conflict), linked into one bin directory
# that scripts/test.sh puts on PATH: moto_server (the AWS API on loopback), checkov (CIS checks),
# kubernetes-validate (OpenAPI schemas per Kubernetes version). Versions are pinned so a
# scanner update cannot change what the tests accept without a commit.
py_root="${FRANKENETES_PY:-${XDG_CACHE_HOME:-$HOME/.cache}/frankenetes/py}"
mkdir -p "$py_root/bin"
pytool() { # pytool VENV 'REQUIREMENT' COMMAND...
  local venv="$py_root/$1" req="$2" c ok=1
  shift 2
  for c in "$@"; do [ -x "$venv/bin/$c" ] || ok=0; done
  if [ "$ok" = 0 ] || [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$req" ]; then
    say "installing $req from PyPI"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$req"
    echo "$req" >"$venv/.installed"
  fi
  for c in "$@"; do ln -sfn "$venv/bin/$c" "$py_root/bin/$c"; done
}
pytool moto 'moto[server]==5.2.1' moto_server
pytool checkov 'checkov==3.3.30' checkov
pytool kubernetes-validate 'kubernetes-validate==1.37.0' kubernetes-validate
