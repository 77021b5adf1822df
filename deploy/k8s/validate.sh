#!/usr/bin/env bash
# Renders the kustomize base (deploy/k8s), its object-storage variant (deploy/k8s-s3) and
# its high-availability variant (deploy/k8s-ha)
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
for variant in "$here" "$here/../k8s-s3" "$here/../k8s-ha"; do
  "${render[@]}" "$variant" >"$rendered"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered"
  name="deploy/$(basename "$(cd "$variant" && pwd)")"
  echo "$name: $(grep -c '^kind:' "$rendered") resources valid against Kubernetes $version"
done
ha="$(mktemp --suffix=.yaml)"
trap 'rm -f "$rendered" "$ha"' EXIT
"${render[@]}" "$here/../k8s-ha" >"$ha"
"${render[@]}" "$here/../k8s-s3" >"$rendered"
if grep -q 'weft-data$' "$rendered" && grep -q 'claimName: weft-data' "$rendered"; then
  echo "deploy/k8s-s3 still mounts the shared volume" >&2
  exit 1
fi
# The HA variant: two coordinators with no volume of their own, on the database, and both
# given to the workers.
python3 - "$ha" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
coordinator = next(d for d in docs if "kind: StatefulSet" in d and "name: weft-coordinator\n" in d)
worker = next(d for d in docs if "kind: Deployment" in d and "name: weft-worker" in d)
config = next(d for d in docs if "kind: ConfigMap" in d)
checks = {
    "two coordinator replicas": "replicas: 2" in coordinator,
    "no state volume on the coordinators": "volumeClaimTemplates" not in coordinator and "/var/lib/weft/state" not in coordinator,
    "the state on PostgreSQL": "--state=$(WEFT_STATE_URL)" in coordinator,
    "each coordinator advertises its own name": "--advertise=https://$(POD_NAME).weft-coordinators" in coordinator,
    "workers given every coordinator": "--coordinator=$(WEFT_COORDINATORS)" in worker
        and "weft-coordinator-0.weft-coordinators" in config and "weft-coordinator-1.weft-coordinators" in config,
    "logs in the log store": "--log-store=$(WEFT_LOG_STORE)" in worker and "--log-store=$(WEFT_LOG_STORE)" in coordinator,
    "everything in the weft namespace": all("namespace: weft" in d for d in docs if "kind: Namespace" not in d),
}
failed = [name for name, ok in checks.items() if not ok]
if failed:
    sys.exit("deploy/k8s-ha: " + ", ".join(failed))
PY
