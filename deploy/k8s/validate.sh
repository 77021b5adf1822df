#!/usr/bin/env bash
# Renders the kustomize base (deploy/k8s) and its object-storage variant (deploy/k8s-s3)
# and validates every resource against a pinned Kubernetes version's schemas
# (kubernetes-validate from PyPI, installed into a venv under target/).
#
#   deploy/k8s/validate.sh [KUBERNETES_VERSION]     (default 1.31.0)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="${1:-1.31.0}"
venv="$repo/target/deploy-venv"

if command -v kubectl >/dev/null; then
  render=(kubectl kustomize)
elif command -v kustomize >/dev/null; then
  render=(kustomize build)
else
  echo "deploy/k8s/validate.sh: needs kubectl or kustomize to render the manifests" >&2
  exit 1
fi
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi
rendered="$(mktemp --suffix=.yaml)"
trap 'rm -f "$rendered"' EXIT
for variant in "$here" "$here/../k8s-s3"; do
  "${render[@]}" "$variant" >"$rendered"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered"
  name="deploy/$(basename "$(cd "$variant" && pwd)")"
  echo "$name: $(grep -c '^kind:' "$rendered") resources valid against Kubernetes $version"
done
if grep -q 'weft-data$' "$rendered" && grep -q 'claimName: weft-data' "$rendered"; then
  echo "deploy/k8s-s3 still mounts the shared volume" >&2
  exit 1
fi
