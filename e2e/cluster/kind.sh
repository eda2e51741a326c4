#!/usr/bin/env bash
# For machines WITH internet: a kind cluster for the e2e suite instead of the local one of up.sh.
#
#   e2e/cluster/kind.sh up      create cluster "modelpilot-e2e", load the images, mount the example models, install a
#                               Prometheus that discovers the pods; prints the variables to export for `make e2e`
#   e2e/cluster/kind.sh down    delete the cluster
#
# Needs kind, docker (with network), helm and kubectl. The images are built with the same Dockerfile (a public
# python:3.11-slim base) and loaded with `kind load docker-image`; the models are trained on the host with
# model-server/examples/train.py (needs the project's [server] extra) and mounted into the node at /modelpilot-models.
# Prometheus comes from the prometheus-community chart (its kubernetes_sd_configs scrape the prometheus.io/*
# annotations of the model pods). Then:
#   export E2E_KUBECONFIG=... E2E_PROMETHEUS_URL=... E2E_PROMETHEUS_QUERY_URL=... E2E_MODELS_HOSTPATH=... E2E_MODELS_LOCAL=...
#   make e2e
# The suite reaches the model Services through the API server's service proxy (kind binds it to 127.0.0.1).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
NAME=modelpilot-e2e
WORK=${MODELPILOT_KIND_DIR:-$HOME/.cache/modelpilot/kind}
KUBECONFIG_OUT=$WORK/kubeconfig
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1)

up() {
  mkdir -p "$WORK/models" "$REPO/build"
  python3 "$REPO/model-server/examples/train.py" "$WORK/models" --datasets iris --no-onnx --slow-trees 2000
  python3 -m pip wheel --quiet --wheel-dir "$REPO/build/wheels" "$REPO[server]"
  docker build --target operator -t "modelpilot/operator:$VERSION" "$REPO"
  docker build --target model-server -t "modelpilot/model-server:$VERSION" "$REPO"
  cat > "$WORK/kind.yaml" <<KIND
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraMounts: [{hostPath: "$WORK/models", containerPath: /modelpilot-models, readOnly: true}]
KIND
  kind create cluster --name "$NAME" --config "$WORK/kind.yaml" --kubeconfig "$KUBECONFIG_OUT" --wait 120s
  kind load docker-image --name "$NAME" "modelpilot/operator:$VERSION" "modelpilot/model-server:$VERSION"
  helm --kubeconfig "$KUBECONFIG_OUT" repo add prometheus-community https://prometheus-community.github.io/helm-charts
  helm --kubeconfig "$KUBECONFIG_OUT" upgrade --install prometheus prometheus-community/prometheus -n monitoring \
    --create-namespace --set alertmanager.enabled=false --set prometheus-pushgateway.enabled=false \
    --set kube-state-metrics.enabled=false --set prometheus-node-exporter.enabled=false \
    --set server.global.scrape_interval=2s --set server.persistentVolume.enabled=false --wait
  cat <<ENV
export E2E_KUBECONFIG=$KUBECONFIG_OUT
export E2E_PROMETHEUS_URL=http://prometheus-server.monitoring.svc
export E2E_PROMETHEUS_QUERY_URL=http://127.0.0.1:19090   # kubectl -n monitoring port-forward svc/prometheus-server 19090:80
export E2E_MODELS_HOSTPATH=/modelpilot-models
export E2E_MODELS_LOCAL=$WORK/models
ENV
}

down() { kind delete cluster --name "$NAME"; }

"${1:?up|down}"
