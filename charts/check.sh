#!/usr/bin/env bash
# Checks of the Helm chart, offline. `make chart` runs it; it is part of `make test`.
#
#   1. helm lint --strict, with the default values and in namespaced RBAC mode;
#   2. helm template --include-crds in both RBAC modes, with every optional feature off and on, each rendering
#      validated against the Kubernetes API schemas (kubernetes-validate --strict) for KUBE_VERSION; the custom
#      resources (ServiceMonitor, PrometheusRule) are set aside, any other kind without a schema is an error;
#   3. least privilege: no "*" anywhere in a rendered Role/ClusterRole, no secrets, no verbs beyond a fixed list;
#   4. values the schema must refuse are refused (a typo'd key, an unknown RBAC mode, namespaced mode without
#      namespaces);
#   5. promtool check rules and promtool test rules on the alert rule file;
#   6. the chart's CRD is byte-for-byte the generated one in crds/.
#
# Environment: PYTHON (default python3; kubernetes-validate and PyYAML, from the `dev` extra), KUBE_VERSION (1.30.0),
# HELM (default: the one e2e/cluster/tools.sh provides), PROMTOOL (default: promtool on PATH, Debian's `prometheus`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$ROOT/charts/modelpilot
PYTHON=${PYTHON:-python3}
KUBE_VERSION=${KUBE_VERSION:-1.30.0}
HELM=${HELM:-$(bash "$ROOT/e2e/cluster/tools.sh")/helm}
PROMTOOL=${PROMTOOL:-promtool}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelpilot-chart.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'chart check FAILED: %s\n' "$*" >&2; exit 1; }

command -v "$PROMTOOL" >/dev/null || fail "promtool not found (apt-get install prometheus)"
"$PYTHON" -c 'import kubernetes_validate, yaml' 2>/dev/null \
  || fail "kubernetes-validate is missing for $PYTHON (pip install -e '.[dev]')"

NAMESPACED=(--set rbac.mode=namespaced --set 'watchNamespaces={ml,team-a}')
ALL_ON=(--set prometheusUrl=http://prometheus.monitoring:9090 --set serviceMonitor.enabled=true
        --set prometheusRule.enabled=true --set grafanaDashboard.enabled=true --set priorityClassName=high
        --set 'networkPolicy.ingress.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring'
        --set 'networkPolicy.egress.apiServer.to[0].ipBlock.cidr=10.0.0.1/32')

step "helm lint --strict ($("$HELM" version --short))"
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" "${NAMESPACED[@]}"
"$HELM" lint --strict "$CHART" "${NAMESPACED[@]}" "${ALL_ON[@]}" --set rbac.clusterScopedDiscovery=false

# Split a rendering: API kinds to validate go to $2, the rest is only counted. Prints a summary line.
split_rendering() {
  "$PYTHON" - "$1" "$2" <<'PY'
import sys
from collections import Counter

import yaml

CUSTOM = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
          ("modelpilot.io/v1alpha1", "ModelDeployment")}
src, dst = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
keep = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CUSTOM]
with open(dst, "w") as out:
    yaml.safe_dump_all(keep, out, sort_keys=False)
kinds = Counter(d["kind"] for d in docs)
print(f"   {len(docs)} objects ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}); "
      f"{len(docs) - len(keep)} custom resources set aside")
PY
}

# Least privilege, on the rendered Roles and ClusterRoles.
check_rbac() {
  "$PYTHON" - "$1" <<'PY' || return 1
import sys

import yaml

ALLOWED_VERBS = {"get", "list", "watch", "create", "patch", "update", "delete"}
errors = []
roles = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") in ("Role", "ClusterRole")]
with open(sys.argv[1] + ".roles", "w") as out:
    yaml.safe_dump_all(roles, out)
for role in roles:
    where = f"{role['kind']} {role['metadata'].get('namespace', '')}/{role['metadata']['name']}"
    if "aggregationRule" in role:
        errors.append(f"{where}: aggregationRule")
    for rule in role.get("rules") or []:
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            if any("*" in v for v in rule.get(key) or []):
                errors.append(f"{where}: wildcard in {key}: {rule[key]}")
        if rule.get("nonResourceURLs"):
            errors.append(f"{where}: nonResourceURLs {rule['nonResourceURLs']}")
        if any(r.split("/")[0] in ("secrets", "serviceaccounts", "pods", "roles", "rolebindings", "clusterroles",
                                   "clusterrolebindings") for r in rule.get("resources") or []):
            errors.append(f"{where}: grants access to {rule['resources']}")
        for verb in set(rule.get("verbs") or []) - ALLOWED_VERBS:
            errors.append(f"{where}: verb {verb!r} (escalate, bind, impersonate, deletecollection: never)")
if not roles:
    errors.append("no Role or ClusterRole rendered")
for e in errors:
    print("   " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"   {len(roles)} roles, {sum(len(r.get('rules') or []) for r in roles)} rules: no wildcard, no secrets")
PY
  # The plain text check as well, independent of how the rules are parsed.
  if grep -nE '\*|secrets' "$1.roles" >&2; then
    echo "   a Role or ClusterRole mentions * or secrets" >&2
    return 1
  fi
}

render() {  # name, helm args...
  local name=$1; shift
  "$HELM" template mp "$CHART" --namespace modelpilot --include-crds --kube-version "$KUBE_VERSION" "$@" \
    >"$WORK/$name.yaml"
}

for variant in default namespaced all-on namespaced-all-on; do
  case $variant in
    default)            args=() ;;
    namespaced)         args=("${NAMESPACED[@]}") ;;
    all-on)             args=("${ALL_ON[@]}") ;;
    namespaced-all-on)  args=("${NAMESPACED[@]}" "${ALL_ON[@]}") ;;
  esac
  step "helm template --include-crds: $variant, validated for Kubernetes $KUBE_VERSION"
  render "$variant" ${args[@]+"${args[@]}"}
  split_rendering "$WORK/$variant.yaml" "$WORK/$variant.api.yaml"
  out=$("$PYTHON" -m kubernetes_validate --strict --quiet -k "$KUBE_VERSION" "$WORK/$variant.api.yaml" 2>&1) \
    || { echo "$out" >&2; fail "$variant: kubernetes-validate"; }
  if grep -q "Couldn't find schema" <<<"$out"; then echo "$out" >&2; fail "$variant: an unknown kind or apiVersion"; fi
  check_rbac "$WORK/$variant.yaml" || fail "$variant: RBAC is not least privilege"
done

step "rendered content"
grep -q 'kind: ClusterRole$' "$WORK/default.yaml" || fail "clusterWide mode renders no ClusterRole"
[ "$(grep -c '^kind: Role$' "$WORK/namespaced.yaml")" = 2 ] || fail "namespaced mode: expected one Role per namespace"
grep -q -- '- --namespace=team-a' "$WORK/namespaced.yaml" || fail "namespaced mode: no --namespace argument"
grep -q 'kind: NetworkPolicy' "$WORK/default.yaml" || fail "the NetworkPolicy is not on by default"
for kind in ServiceMonitor PrometheusRule; do
  grep -q "^kind: $kind" "$WORK/default.yaml" && fail "$kind rendered although off by default"
  grep -q "^kind: $kind" "$WORK/all-on.yaml" || fail "$kind not rendered when enabled"
done
"$PYTHON" - "$WORK/all-on.yaml" <<'PY'
import json
import sys

import yaml

docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
board = json.loads(docs["ConfigMap"]["data"]["modelpilot.json"])
assert board["panels"], "the dashboard has no panels"
rules = docs["PrometheusRule"]["spec"]["groups"]
alerts = {r["alert"] for g in rules for r in g["rules"]}
for name in ("ModelPilotRollbackHappened", "ModelPilotAnalysisFailing", "ModelPilotOperatorDown"):
    assert name in alerts, f"alert {name} missing"
pod = docs["Deployment"]["spec"]["template"]["spec"]
ctr = pod["containers"][0]["securityContext"]
assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
assert ctr["readOnlyRootFilesystem"] and not ctr["allowPrivilegeEscalation"] and ctr["capabilities"]["drop"] == ["ALL"]
print(f"   dashboard: {len(board['panels'])} panels; alerts: {', '.join(sorted(alerts))}; pod: PSS restricted")
PY

step "the schema refuses bad values"
refused() {  # description, helm args...
  local what=$1; shift
  if "$HELM" template mp "$CHART" "$@" >/dev/null 2>"$WORK/refused.err"; then fail "accepted: $what"; fi
  echo "   refused: $what ($(grep -m1 -E '^- |^Error: execution error' "$WORK/refused.err" | cut -c1-100))"
}
refused "an unknown top-level key" --set prometheusURL=http://x
refused "an unknown rbac mode" --set rbac.mode=global
refused "namespaced mode without namespaces" --set rbac.mode=namespaced
refused "a log level the operator lacks" --set logLevel=TRACE
refused "an invalid namespace name" --set 'watchNamespaces={Team_A}'

step "promtool: the alert rules"
"$PROMTOOL" check rules "$CHART/files/alerts.yaml"
"$PROMTOOL" test rules "$CHART/files/alerts_test.yaml"

step "the chart's CRD is the generated one"
cmp "$CHART/crds/modeldeployments.yaml" "$ROOT/crds/modeldeployments.yaml" \
  || fail "charts/modelpilot/crds/ differs from crds/: run make crds"
echo "   charts/modelpilot/crds/modeldeployments.yaml = crds/modeldeployments.yaml"

printf '\nchart checks passed in %ss\n' "$((SECONDS - started))"
