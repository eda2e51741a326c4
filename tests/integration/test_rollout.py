"""Progressive delivery end to end, short of real pods: the real operator and API server, a real Prometheus scraping
exporter processes that publish the model server's metric contract for each revision with the latency, errors and
accuracy each test sets. A background ``Kubelet`` makes Deployments available at their size.

Scenarios: healthy canary promoted through all steps; latency regression rolled back; accuracy regression rolled back
only once minFeedback is reached; error-rate regression against stable rolled back; no traffic holds with
onNoData: Hold; Prometheus stopped mid-analysis holds, then continues; manual promote and abort through the kubectl
plugin; blue-green promoted; blue-green switched back by post-promotion analysis; operator killed mid-release resumes
at the same step; HTTPRoute and VirtualService weights written.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers import Cluster, Kubelet, model_deployment, wait_for

pytestmark = pytest.mark.integration

INTERVAL = "3s"
LATENCY = {"name": "p99", "latency": {"quantile": 0.99, "max": "250ms"}}
FAST, SLOW = dict(rps=40, latency_ms=20, jitter_ms=5), dict(rps=40, latency_ms=600, jitter_ms=50)


def analysis(*metrics, **extra):
    return {"interval": INTERVAL, "failureLimit": 1, "minRequests": 10, "metrics": list(metrics) or [LATENCY],
            **extra}


def canary(*steps):
    return {"canary": {"steps": list(steps) or [{"setWeight": 25}, {"pause": {"duration": "2s"}},
                                                {"setWeight": 50}, {"analysis": {}}],
                       "scaleDownDelaySeconds": 0}}


def status_is(cluster: Cluster, name: str, timeout: float = 60, **expected):
    def probe():
        s = cluster.status(name)
        return s if all(s.get(k) == v for k, v in expected.items()) else None

    return wait_for(probe, timeout=timeout, what=f"{name} status {expected}", interval=0.3)


def bring_up(cluster: Cluster, name: str, **spec) -> str:
    """Create the ModelDeployment and wait for its first revision to serve; returns that revision."""
    cluster.create(model_deployment(name, replicas=spec.pop("replicas", 4), **spec))
    status = status_is(cluster, name, phase="Healthy")
    return status["stableRevision"]


def new_version(cluster: Cluster, name: str, version: str = "2") -> str:
    before = set(cluster.deployments(name))
    cluster.patch_spec(name, {"model": {"version": version}})
    deps = wait_for(lambda: set(cluster.deployments(name)) - before, what="the new revision's Deployment")
    return deps.pop()


def events(cluster: Cluster, name: str) -> list[tuple[str, str]]:
    found = cluster.core.list_namespaced_event(cluster.ns, field_selector=f"involvedObject.name={name}").items
    return [(e.reason, e.message) for e in found]


def release(cluster, exporter, name, *, stable_profile=FAST, canary_profile=FAST, **spec):
    """A model serving revision 1 with an exporter for it, then revision 2 with its own exporter."""
    stable = bring_up(cluster, name, **spec)
    stable_exporter = exporter(name, stable, **stable_profile)
    can = new_version(cluster, name)
    canary_exporter = exporter(name, can, **canary_profile)
    return stable, can, stable_exporter, canary_exporter


def test_healthy_canary_is_promoted_through_all_steps(cluster, exporter):
    name = "healthy"
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, strategy=canary(), analysis=analysis())
        seen_steps = set()

        def promoted():
            s = cluster.status(name)
            if s.get("canaryRevision") == can:
                seen_steps.add((s.get("currentStep"), s.get("canaryWeight")))
            return s.get("stableRevision") == can and s

        status = wait_for(promoted, timeout=90, interval=0.2, what="promotion")
    assert status["history"][0]["revision"] == can and status["history"][0]["outcome"] == "Promoted"
    assert {w for _, w in seen_steps} >= {25, 50}
    assert status["analysis"]["runs"] >= 1 and status["analysis"]["failures"] == 0
    assert cluster.service(name).spec.selector["modelpilot.io/revision"] == can
    wait_for(lambda: set(cluster.deployments(name)) == {can}, what="old revision removed")
    wait_for(lambda: "Promoted" in {r for r, _ in events(cluster, name)}, what="a Promoted event")


def test_latency_regression_is_rolled_back(cluster, exporter, operator):
    name = "slow"
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, canary_profile=SLOW,
                                  strategy=canary({"setWeight": 25}, {"pause": {}}), analysis=analysis())
        status = status_is(cluster, name, timeout=60, rolledBackRevision=can)
    assert status["stableRevision"] == stable and status.get("canaryRevision") is None
    assert status["phase"] == "Degraded"
    degraded = cluster.condition(name, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "RolledBack"
    assert status["history"][0]["outcome"] == "RolledBack" and "p99" in status["history"][0]["reason"]
    p99 = next(m for m in status["analysis"]["metrics"] if m["name"] == "p99")
    assert p99["verdict"] == "Fail" and p99["value"] > 0.25
    # Traffic back on stable in the same pass, canary scaled down.
    assert cluster.service(name).spec.selector["modelpilot.io/revision"] == stable
    assert cluster.deployments(name)[can].spec.replicas == 0
    assert cluster.deployments(name)[stable].spec.replicas == 4
    wait_for(lambda: {"AnalysisFailed", "RolledBack"} <= {r for r, _ in events(cluster, name)},
             what="AnalysisFailed and RolledBack events")
    from prometheus_client.parser import text_string_to_metric_families

    def sample(metric: str, **labels: str) -> float:
        for family in text_string_to_metric_families(operator.metrics()):
            for s in family.samples:
                if s.name == metric and s.labels == {"namespace": cluster.ns, "name": name, **labels}:
                    return s.value
        raise AssertionError(f"no sample {metric} {labels}")

    assert sample("modelpilot_release_outcomes_total", outcome="RolledBack") == 1
    assert sample("modelpilot_analysis_checks_total", check="p99", verdict="Fail") >= 1


def test_accuracy_regression_waits_for_min_feedback(cluster, exporter):
    name = "inaccurate"
    accuracy = {"name": "accuracy", "accuracy": {"min": 0.9, "minFeedback": 60}}
    with Kubelet(cluster, name):
        stable, can, _, canary_exporter = release(
            cluster, exporter, name, stable_profile=dict(FAST, accuracy=0.97, feedback_rps=30),
            canary_profile=dict(FAST, accuracy=0.5, feedback_rps=2),
            strategy=canary({"setWeight": 50}, {"pause": {}}), analysis=analysis(accuracy))
        # 2 scored predictions a second: about 6 in a 3 s window, far below 60 -> Inconclusive, no rollback.
        wait_for(lambda: (cluster.status(name).get("analysis") or {}).get("runs", 0) >= 3, timeout=60,
                 what="three analysis runs")
        status = cluster.status(name)
        assert status.get("canaryRevision") == can and status.get("rolledBackRevision") is None
        verdicts = {m["verdict"] for m in status["analysis"]["metrics"]}
        assert verdicts <= {"Inconclusive", "NoData"}, status["analysis"]
        canary_exporter.set(feedback_rps=40)  # now enough feedback to judge
        status = status_is(cluster, name, timeout=60, rolledBackRevision=can)
    acc = status["analysis"]["metrics"][0]
    assert acc["verdict"] == "Fail" and acc["samples"] >= 60 and acc["value"] < 0.9


def test_error_rate_regression_against_stable_is_rolled_back(cluster, exporter):
    name = "errors"
    check = {"name": "errors", "errorRate": {"maxIncreaseOverStable": "5%"}}
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, stable_profile=dict(FAST, error_rate=0.02),
                                  canary_profile=dict(FAST, error_rate=0.3),
                                  strategy=canary({"setWeight": 50}, {"pause": {}}), analysis=analysis(check))
        status = status_is(cluster, name, timeout=60, rolledBackRevision=can)
    m = status["analysis"]["metrics"][0]
    assert m["verdict"] == "Fail" and m["value"] > 0.2 and m["stableValue"] < 0.05


def test_no_traffic_holds(cluster, exporter):
    name = "idle"
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, stable_profile=dict(rps=0), canary_profile=dict(rps=0),
                                  strategy=canary({"setWeight": 50}, {"analysis": {}}),
                                  analysis=analysis(onNoData="Hold"))
        wait_for(lambda: (cluster.status(name).get("analysis") or {}).get("runs", 0) >= 4, timeout=60,
                 what="four analysis runs")
        status = cluster.status(name)
    assert status.get("canaryRevision") == can and status["stableRevision"] == stable
    assert status.get("rolledBackRevision") is None and status["analysis"]["failures"] == 0
    assert status["analysis"]["metrics"][0]["verdict"] in ("NoData", "Inconclusive")


def test_prometheus_outage_holds_then_continues(cluster, exporter, prometheus):
    name = "outage"
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, strategy=canary({"setWeight": 50}, {"pause": {}},
                                                                           {"analysis": {}}),
                                  analysis=analysis())
        status_is(cluster, name, currentStep=1, canaryRevision=can)
        prometheus.stop()
        try:
            status_is(cluster, name, timeout=30, currentStep=1)
            wait_for(lambda: any(m["verdict"] == "Error" for m in cluster.status(name)["analysis"]["metrics"]),
                     timeout=30, what="an Error verdict while Prometheus is down")
            runs = cluster.status(name)["analysis"]["runs"]
            wait_for(lambda: cluster.status(name)["analysis"]["runs"] >= runs + 2, timeout=30, what="more runs")
            status = cluster.status(name)
            assert status.get("canaryRevision") == can and status["analysis"]["failures"] == 0
        finally:
            prometheus.start()
        kubectl_plugin(cluster, "promote", name)
        status = status_is(cluster, name, timeout=60, stableRevision=can)
    assert status["history"][0]["outcome"] == "Promoted"


def kubectl_plugin(cluster: Cluster, *args: str) -> str:
    """Run ``kubectl modelpilot ARGS`` (it finds the cluster through KUBECONFIG, set for the session)."""
    result = subprocess.run([sys.executable, "-m", "modelpilot.cli", *args, "-n", cluster.ns],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_manual_promote_and_abort(cluster, exporter):
    name = "manual"
    steps = canary({"setWeight": 25}, {"pause": {}}, {"setWeight": 75}, {"pause": {}})
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, strategy=steps, analysis=analysis())
        status_is(cluster, name, currentStep=1, phase="Paused")
        kubectl_plugin(cluster, "promote", name)
        status_is(cluster, name, currentStep=3, phase="Paused", canaryWeight=75)
        kubectl_plugin(cluster, "abort", name)
        status = status_is(cluster, name, rolledBackRevision=can)
    assert status["history"][0]["outcome"] == "Aborted" and status["stableRevision"] == stable
    assert status["lastAction"].startswith("abort:")
    out = kubectl_plugin(cluster, "status", name)
    assert "Degraded" in out and can in out


def test_blue_green_is_promoted_after_preview(cluster, exporter):
    name = "bluegreen"
    bg = {"blueGreen": {"previewReplicas": 1, "autoPromotionSeconds": 2, "scaleDownDelaySeconds": 0,
                        "prePromotionAnalysis": analysis()}}
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, strategy=bg)
        status_is(cluster, name, currentStep=1, canaryRevision=can)
        preview = cluster.service(f"{name}-preview")
        assert preview.spec.selector["modelpilot.io/revision"] == can
        assert cluster.service(name).spec.selector["modelpilot.io/revision"] == stable
        status = status_is(cluster, name, timeout=60, stableRevision=can)
    assert cluster.service(name).spec.selector["modelpilot.io/revision"] == can
    assert status["history"][0]["outcome"] == "Promoted"


def test_blue_green_post_promotion_failure_switches_back(cluster, exporter):
    name = "bgback"
    bg = {"blueGreen": {"scaleDownDelaySeconds": 0, "postPromotionAnalysis": analysis()}}
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, canary_profile=SLOW, strategy=bg)
        status_is(cluster, name, currentStep=2, canaryRevision=can)  # switched
        status = status_is(cluster, name, timeout=60, rolledBackRevision=can)
    assert status["stableRevision"] == stable
    assert cluster.service(name).spec.selector["modelpilot.io/revision"] == stable
    assert cluster.deployments(name)[stable].spec.replicas == 4


def test_operator_killed_mid_release_resumes_at_the_same_step(cluster, exporter, operator):
    name = "resume"
    steps = canary({"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}})
    with Kubelet(cluster, name):
        stable, can, *_ = release(cluster, exporter, name, strategy=steps, analysis=analysis())
        before = status_is(cluster, name, currentStep=1, phase="Paused")
        wait_for(lambda: cluster.status(name)["analysis"]["runs"] >= 2, timeout=30, what="two analysis runs")
        operator.kill()
        try:
            frozen = cluster.status(name)
            time.sleep(2)
        finally:
            operator.start()
        time.sleep(3)
        after = cluster.status(name)
        assert after["currentStep"] == 1 and after["stepStartedAt"] == before["stepStartedAt"]
        assert after["canaryRevision"] == can and after["analysis"]["runs"] >= frozen["analysis"]["runs"]
        assert after["analysis"]["failures"] == frozen["analysis"]["failures"]
        kubectl_plugin(cluster, "promote", name)
        status_is(cluster, name, currentStep=3, canaryWeight=50)


GATEWAY_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "httproutes.gateway.networking.k8s.io",
                 # *.k8s.io groups are protected; the real Gateway API CRDs carry this annotation too.
                 "annotations": {"api-approved.kubernetes.io": "unapproved, test only"}},
    "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
             "names": {"kind": "HTTPRoute", "plural": "httproutes", "singular": "httproute",
                       "listKind": "HTTPRouteList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}
ISTIO_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "virtualservices.networking.istio.io"},
    "spec": {"group": "networking.istio.io", "scope": "Namespaced",
             "names": {"kind": "VirtualService", "plural": "virtualservices", "singular": "virtualservice",
                       "listKind": "VirtualServiceList"},
             "versions": [{"name": "v1beta1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def mesh_crds(kubectl, crd):
    """Gateway API's HTTPRoute and Istio's VirtualService kinds (schemas reduced to what the test needs)."""
    import json

    for doc in (GATEWAY_CRD, ISTIO_CRD):
        result = kubectl("apply", "-f", "-", input=json.dumps(doc))
        assert result.returncode == 0, result.stderr
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{doc['metadata']['name']}", check=True)


def _weights(backends, name_key):
    return {b[name_key]: b.get("weight") for b in backends}


def test_httproute_and_virtualservice_weights_are_written(cluster, exporter, mesh_crds):
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
             "spec": {"parentRefs": [{"name": "gw"}], "rules": [
                 {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
                  "backendRefs": [{"name": "gw-model", "port": 80}]}]}}
    vs = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": {"name": "web"},
          "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [{"destination": {"host": "x"}}]}]}}
    cluster.custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", cluster.ns, "httproutes", route)
    cluster.custom.create_namespaced_custom_object("networking.istio.io", "v1beta1", cluster.ns, "virtualservices", vs)

    def httproute_weights():
        obj = cluster.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", cluster.ns,
                                                          "httproutes", "web")
        return _weights(obj["spec"]["rules"][0].get("backendRefs", []), "name"), obj

    def vs_weights():
        obj = cluster.custom.get_namespaced_custom_object("networking.istio.io", "v1beta1", cluster.ns,
                                                          "virtualservices", "web")
        return {d["destination"]["host"]: d.get("weight") for d in obj["spec"]["http"][0]["route"]}

    steps = canary({"setWeight": 30}, {"pause": {}})
    for name, routing, read in (("gw-model", {"gatewayAPI": {"httpRoute": "web"}}, lambda: httproute_weights()[0]),
                                ("mesh-model", {"istio": {"virtualService": "web", "route": "primary"}}, vs_weights)):
        with Kubelet(cluster, name):
            bring_up(cluster, name, strategy=steps, analysis=analysis(), trafficRouting=routing)
            can = new_version(cluster, name)
            status_is(cluster, name, currentStep=1, canaryRevision=can)
            wait_for(lambda: read() == {f"{name}-stable": 70, f"{name}-canary": 30}, timeout=30,  # noqa: B023
                     what=f"{name}: 70/30 weights")
            kubectl_plugin(cluster, "abort", name)
            status_is(cluster, name, rolledBackRevision=can)
            wait_for(lambda: read() == {f"{name}-stable": 100, f"{name}-canary": 0}, timeout=30,  # noqa: B023
                     what=f"{name}: weights back to stable")
            assert cluster.service(f"{name}-stable").spec.selector["modelpilot.io/revision"] != can
    _, obj = httproute_weights()
    assert obj["spec"]["rules"][0]["matches"] == route["spec"]["rules"][0]["matches"]  # the user's match kept
