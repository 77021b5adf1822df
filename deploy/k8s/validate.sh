#!/usr/bin/env bash
# Renders the kustomize base and validates every resource against a pinned Kubernetes
# version's schemas (kubernetes-validate from PyPI, installed into a venv under target/).
#
#   deploy/k8s/validate.sh [KUBERNETES_VERSION]     (default 1.31.0)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="${1:-1.31.0}"
venv="$repo/target/deploy-venv"

if command -v kubectl >/dev/null; then
  render=(kubectl kustomize "$here")
elif command -v kustomize >/dev/null; then
  render=(kustomize build "$here")
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
"${render[@]}" >"$rendered"
"$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered"
echo "deploy/k8s: $(grep -c '^kind:' "$rendered") resources valid against Kubernetes $version"
