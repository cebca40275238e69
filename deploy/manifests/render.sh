#!/usr/bin/env bash
# Renders deploy/manifests/weft.yaml from the Helm chart: render.sh HELM
# (the helm binary). `make manifests` runs it; deploy's tests check the
# checked-in file is current.
set -euo pipefail
cd "$(dirname "$0")/.."
helm="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# Weft, rendered from deploy/helm/weft with deploy/manifests/values.yaml by \`make manifests\`."
echo "# Do not edit: change the chart or the values and run \`make manifests\`."
HELM_CACHE_HOME="$tmp" HELM_CONFIG_HOME="$tmp" HELM_DATA_HOME="$tmp" \
	"$helm" template weft helm/weft --namespace weft-system --include-crds -f manifests/values.yaml
