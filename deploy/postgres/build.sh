#!/usr/bin/env bash
# Builds the PostgreSQL image weft's HA cluster keeps its state in (deploy/compose.ha.yaml):
# Debian's postgresql-15 on the same base as the weft image. Skipped if the image exists.
#
#   deploy/postgres/build.sh [TAG]        (default TAG: weft-postgres:latest)
#   WEFT_BASE=debian:bookworm-slim deploy/postgres/build.sh   # on a machine that can pull
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tag="${1:-weft-postgres:latest}"
base="${WEFT_BASE:-weft-base:bookworm}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag exists"
  exit 0
fi
if [ -z "${WEFT_BASE:-}" ]; then
  "$here/../docker/make-base.sh" "$base"
fi
docker build --quiet --build-arg "BASE=$base" --tag "$tag" "$here" >/dev/null
echo "built image $tag on $base"
