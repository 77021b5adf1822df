#!/usr/bin/env bash
# Builds the weft image from this checkout: a release build of the binary, then
# deploy/docker/Dockerfile on a base image.
#
#   deploy/docker/build.sh [TAG]          (default TAG: weft:latest)
#   WEFT_BASE=debian:bookworm-slim deploy/docker/build.sh   # on a machine that can pull
#
#   WEFT_BINARY=path/to/weft deploy/docker/build.sh weft:old   # an image of a binary built elsewhere
#
# Without WEFT_BASE it uses weft-base:bookworm, made offline by make-base.sh if missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tag="${1:-weft:latest}"
base="${WEFT_BASE:-weft-base:bookworm}"

if [ -z "${WEFT_BASE:-}" ]; then
  "$here/make-base.sh" "$base"
fi
binary="${WEFT_BINARY:-}"
if [ -z "$binary" ]; then
  (cd "$repo" && cargo build --release --locked --bin weft)
  binary="$repo/target/release/weft"
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$context/"
cp "$binary" "$context/weft"
strip "$context/weft" 2>/dev/null || true
docker build --quiet --build-arg "BASE=$base" --tag "$tag" "$context" >/dev/null
echo "built image $tag on $base"
