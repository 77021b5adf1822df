#!/usr/bin/env bash
# Makes the minimal Debian base image weft's image builds on where no registry can be pulled
# from: debootstrap --variant=minbase from the mirror this machine's apt already uses, then
# docker import. Elsewhere, build on a public base instead (see build.sh).
#
#   deploy/docker/make-base.sh [IMAGE]     (default IMAGE: weft-base:bookworm)
set -euo pipefail

image="${1:-weft-base:bookworm}"
suite="${WEFT_BASE_SUITE:-bookworm}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi

# The first Debian mirror in the apt configuration (deb822 .sources or one-line .list).
mirror="$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources || true
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list || true
  } | awk '$1 == "URIs:" { print $2 } $1 == "deb" { print ($2 ~ /^\[/ ? $3 : $2) }' | grep -v security | head -n 1 || true
)"
mirror="${mirror:-http://deb.debian.org/debian}"

if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq debootstrap >/dev/null
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite from $mirror (minbase)"
debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2
  exit 1
}
rm -f "$root.log"
# Leave apt usable inside the image, and drop what only the bootstrap needed.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar --numeric-owner -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "made base image $image"
