#!/usr/bin/env bash
# Proves install-deps.sh's package lists (scripts/capabilities.sh) on a machine that has none of
# them: a minimal Debian 12 made by `debootstrap --variant=minbase bookworm` (Essential packages
# and apt only), in a chroot where
#   1. every capability probe fails first (a probe that passed there would prove nothing);
#   2. `install-deps.sh --main` installs its packages and all its probes pass: the main job's list
#      alone is complete;
#   3. `install-deps.sh --test --no-pypi` adds the test set and every probe passes;
#   4. running it again prints nothing and installs nothing.
# The probes are install-deps.sh's own (it runs in the chroot), so the proof cannot drift.
#
# Why a chroot and not `dpkg -s` on this machine: the defect of issue #17 was a package that the
# CI machine had and a fresh one does not (libprotobuf-dev); any check on a machine that already
# has packages is blind to such an omission. minbase is a subset of every Debian 12 install, so a
# list complete there is complete on any fresh bookworm machine. debootstrap needs only root and
# the Debian mirror (no container daemon), and installs with the same apt as a real machine.
# The PyPI tools are left out (--no-pypi): they come from PyPI, not from the list; what they need
# from Debian (python3 with venv and ensurepip) is probed.
#
# Cached under ${XDG_CACHE_HOME:-~/.cache}/frankenetes/fresh: the base chroot as a tarball per
# suite and UTC day (with its apt lists; apt-get update still runs), and the .deb files apt
# fetched (apt checks each against the fresh index before use; superseded ones are dropped).
# Needs root (chroot, mount); about 4 GB of disk while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "check-fresh-machine: needs root (chroot)" >&2; exit 1; }
  exec sudo --preserve-env=XDG_CACHE_HOME,FRANKENETES_DEBIAN_MIRROR,FRANKENETES_DEBIAN_SECURITY "$0" "$@"
fi

suite=bookworm
mirror="${FRANKENETES_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${FRANKENETES_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/frankenetes/fresh"
base="$cache/$suite-minbase-$(date -u +%Y%m%d).tar.gz"
debs="$cache/debs"
t0=$SECONDS
say() { printf 'check-fresh-machine [%3ds]: %s\n' $((SECONDS - t0)) "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

mkdir -p "$cache" "$debs"
exec 9>"$cache/lock"
flock 9 # one run at a time: they share the tarball and the .deb cache
# A run that was killed leaves its chroot: under the lock, every work directory is stale.
for stale in "$cache"/work.*; do
  [ -d "$stale" ] || continue
  ! mountpoint -q "$stale/root/proc" || umount -l "$stale/root/proc"
  grep -qF " $stale/" /proc/self/mountinfo || rm -rf --one-file-system "$stale"
done

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

work="$(mktemp -d "$cache/work.XXXXXX")"
root="$work/root"
cleanup() {
  local p
  # Only processes whose root is this chroot: started by this script (a package's daemon).
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
      say "stopping ${p#/proc/} ($(cat "$p/comm" 2>/dev/null)), left running in the chroot"
      kill -9 "${p#/proc/}" 2>/dev/null || true
    fi
  done
  if mountpoint -q "$root/proc"; then umount "$root/proc" || umount -l "$root/proc"; fi
  # Never delete through a mount point.
  if grep -qF " $work/" /proc/self/mountinfo; then
    echo "check-fresh-machine: $work still has mounts; not removed" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sources() {
  cat <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF
}
in_chroot() { # a clean environment, as a login on the fresh machine would have
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TMPDIR=/tmp "$@"
}

if [ ! -s "$base" ]; then
  say "making the base: debootstrap --variant=minbase $suite ($mirror)"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    fail "debootstrap (log above)"
  }
  sources >"$root/etc/apt/sources.list"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  in_chroot apt-get update -qq || fail "apt-get update in the base chroot"
  in_chroot apt-get clean
  tar -C "$root" -czf "$base.tmp" . && mv "$base.tmp" "$base"
  find "$cache" -maxdepth 1 -name "$suite-minbase-*.tar.gz" ! -path "$base" -delete
  say "base cached: $base ($(du -h "$base" | cut -f1))"
else
  mkdir "$root"
  tar -C "$root" -xzf "$base"
  say "base from the cache: $base"
fi

cp /etc/resolv.conf "$root/etc/resolv.conf"
# No service starts in the chroot (etcd-server's init script would listen on this machine's 2379).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# A throwaway root: dpkg need not fsync every file it unpacks (halves the install time).
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/frankenetes-unsafe-io"
mount -t proc proc "$root/proc"
mkdir -p "$root/opt/frankenetes/scripts"
cp scripts/install-deps.sh scripts/capabilities.sh "$root/opt/frankenetes/scripts/"
find "$debs" -name '*.deb' -exec cp -l -t "$root/var/cache/apt/archives/" {} + 2>/dev/null ||
  find "$debs" -name '*.deb' -exec cp -t "$root/var/cache/apt/archives/" {} +
deps=(bash /opt/frankenetes/scripts/install-deps.sh)

say "1. every probe fails on the bare system"
# shellcheck disable=SC2016 # expanded by the chroot's bash
passing="$(in_chroot bash -c '. /opt/frankenetes/scripts/capabilities.sh
  probe_caps "${CAPS_TEST[@]}"
  for c in "${CAPS_TEST[@]}"; do [ -z "${CAP_OK[$c]+set}" ] || echo "$c: ${CAP_OK[$c]}"; done')"
[ -z "$passing" ] || fail "these probes pass without any package of the list, so they test nothing:
$passing"

say "2. install-deps.sh --main from nothing"
in_chroot "${deps[@]}" --main --report || fail "install-deps.sh --main on a fresh $suite: the
  capability above is not provided by its packages; fix CAP_PKGS in scripts/capabilities.sh"

say "3. install-deps.sh --test --no-pypi"
in_chroot "${deps[@]}" --test --no-pypi --report || fail "install-deps.sh --test on a fresh $suite:
  the capability above is not provided by its packages; fix CAP_PKGS in scripts/capabilities.sh"

say "4. a second run is silent and installs nothing"
again="$(in_chroot "${deps[@]}" --test --no-pypi 2>&1)" || fail "second run: $again"
[ -z "$again" ] || fail "a second install-deps.sh --test run printed:
$again"

# Keep the .debs for the next run, without the versions the index no longer has.
in_chroot apt-get autoclean -qq >/dev/null 2>&1 || true
find "$debs" -name '*.deb' -delete
find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -l -t "$debs/" {} + 2>/dev/null ||
  find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -t "$debs/" {} +
say "passed: the package lists of --main and --test are complete on a minimal $suite"
