#!/usr/bin/env bash
# Builds the PostgreSQL image weft's HA cluster keeps its state in (deploy/compose.ha.yaml):
# Debian's postgresql-15 on the same base as the weft image; again only when its files change.
#
#   deploy/postgres/build.sh [TAG]        (default TAG: weft-postgres:latest)
#   WEFT_BASE=debian:bookworm-slim deploy/postgres/build.sh   # on a machine that can pull
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tag="${1:-weft-postgres:latest}"
base="${WEFT_BASE:-weft-base:bookworm}"

# Built again only when this directory's files change: the image carries their digest.
source="$(cat "$here/Dockerfile" "$here/entrypoint.sh" | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{ index .Config.Labels "weft.source" }}' "$tag" 2>/dev/null)" = "$source" ]; then
  echo "image $tag is up to date"
  exit 0
fi
if [ -z "${WEFT_BASE:-}" ]; then
  "$here/../docker/make-base.sh" "$base"
fi
docker build --quiet --build-arg "BASE=$base" --label "weft.source=$source" --tag "$tag" "$here" >/dev/null
echo "built image $tag on $base"
