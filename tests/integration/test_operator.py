"""The real operator against a real kube-apiserver: what a user sees after ``kubectl apply``.

Covered here: create -> Deployment, Service and status; ``kubectl scale`` reaches the Deployment; autoscaling ->
an HPA that targets the ModelDeployment, removed with the field; a version change -> a new revision, the old one
removed only after the new one is available; delete -> children garbage-collected; invalid manifests rejected by the
API server with the field named; a spec the schema cannot judge (min > max on a server without CEL) is refused by the
operator with a condition and nothing is created; operator stopped, spec changed, operator restarted -> converges;
the example manifest works as the README says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import Cluster, model_deployment, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def only_revision(cluster: Cluster, name: str, what: str = "one Deployment") -> str:
    deps = wait_for(lambda: cluster.deployments(name), what=what)
    assert len(deps) == 1, list(deps)
    return next(iter(deps))


def wait_status(cluster: Cluster, name: str, *, timeout: float = 30, **expected):
    def probe():
        s = cluster.status(name)
        return s if all(s.get(k) == v for k, v in expected.items()) else None

    return wait_for(probe, timeout=timeout, what=f"status {expected}")


def test_create_gives_deployment_service_and_status(cluster: Cluster):
    created = cluster.create(model_deployment("iris", replicas=2))
    rev = only_revision(cluster, "iris")
    dep = cluster.deployments("iris")[rev]
    assert dep.metadata.name == f"iris-{rev}"
    assert dep.spec.replicas == 2
    assert dep.metadata.owner_references[0].uid == created["metadata"]["uid"]
    (container,) = dep.spec.template.spec.containers
    assert container.image == "modelpilot/model-server:test"
    env = {e.name: e.value for e in container.env}
    assert env["MODEL_NAME"] == "iris" and env["MODEL_VERSION"] == "1"

    svc = wait_for(lambda: cluster.service("iris"), what="Service")
    assert svc.spec.selector == {"modelpilot.io/model": "iris", "modelpilot.io/revision": rev}
    assert svc.metadata.owner_references[0].kind == "ModelDeployment"

    status = wait_status(cluster, "iris", phase="Pending")
    assert status["observedGeneration"] == created["metadata"]["generation"]
    assert status["selector"] == "modelpilot.io/model=iris"
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Progressing", "Degraded"}
    assert all(c["observedGeneration"] == created["metadata"]["generation"] for c in status["conditions"])

    cluster.make_available(dep.metadata.name)
    status = wait_status(cluster, "iris", phase="Healthy", stableRevision=rev, readyReplicas=2)
    assert cluster.condition("iris", "Ready")["status"] == "True"

    def reasons():
        return {e.reason for e in cluster.core.list_namespaced_event(
            cluster.ns, field_selector="involvedObject.name=iris").items}

    wait_for(lambda: {"RevisionCreated", "AllReplicasReady"} <= reasons(), what="Events")  # posted asynchronously


def test_kubectl_scale_reaches_the_deployment(cluster: Cluster, kubectl):
    cluster.create(model_deployment("scaled", replicas=1))
    rev = only_revision(cluster, "scaled")
    result = kubectl("-n", cluster.ns, "scale", "mdep/scaled", "--replicas=4")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: cluster.deployments("scaled")[rev].spec.replicas == 4, what="Deployment scaled to 4")
    assert cluster.get("scaled")["spec"]["replicas"] == 4
    cluster.make_available(f"scaled-{rev}")
    wait_status(cluster, "scaled", replicas=4, readyReplicas=4, phase="Healthy")
    # The scale subresource reads back what the HPA would read.
    scale = json.loads(kubectl("-n", cluster.ns, "get", "--raw",
                               f"/apis/modelpilot.io/v1alpha1/namespaces/{cluster.ns}/modeldeployments/scaled/scale",
                               check=True).stdout)
    assert scale["spec"]["replicas"] == 4 and scale["status"]["replicas"] == 4
    assert scale["status"]["selector"] == "modelpilot.io/model=scaled"


def test_autoscaling_creates_an_hpa_on_the_model_deployment(cluster: Cluster):
    auto = {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}
    cluster.create(model_deployment("auto", autoscaling=auto))
    hpa = wait_for(lambda: cluster.hpa("auto"), what="HPA")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "modelpilot.io/v1alpha1", "kind": "ModelDeployment",
                                             "name": "auto"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert hpa["metadata"]["ownerReferences"][0]["name"] == "auto"

    cluster.patch_spec("auto", {"autoscaling": None})
    wait_for(lambda: cluster.hpa("auto") is None, what="HPA removed with spec.autoscaling")


def test_new_version_replaces_the_old_only_once_available(cluster: Cluster):
    cluster.create(model_deployment("rolling", replicas=2))
    old = only_revision(cluster, "rolling")
    cluster.make_available(f"rolling-{old}")
    wait_status(cluster, "rolling", phase="Healthy", stableRevision=old)

    cluster.patch_spec("rolling", {"model": {"version": "2", "uri": "file:///models/rolling-2.joblib"}})
    deps = wait_for(lambda: len(d := cluster.deployments("rolling")) == 2 and d, what="second revision")
    new = next(r for r in deps if r != old)
    status = wait_status(cluster, "rolling", phase="Progressing", stableRevision=old)
    assert cluster.condition("rolling", "Progressing")["reason"] == "NewRevisionRollingOut"
    assert status["observedGeneration"] == cluster.get("rolling")["metadata"]["generation"]

    # Half the new pods ready: the old revision must stay, at full size, and alone behind the Service.
    cluster.make_available(f"rolling-{new}", ready=1)
    wait_status(cluster, "rolling", readyReplicas=3)
    assert set(cluster.deployments("rolling")) == {old, new}
    assert cluster.deployments("rolling")[old].spec.replicas == 2
    assert cluster.service("rolling").spec.selector["modelpilot.io/revision"] == old

    cluster.make_available(f"rolling-{new}")
    wait_status(cluster, "rolling", phase="Healthy", stableRevision=new)
    wait_for(lambda: set(cluster.deployments("rolling")) == {new}, what="old revision removed")
    assert cluster.service("rolling").spec.selector == {"modelpilot.io/model": "rolling",
                                                         "modelpilot.io/revision": new}


def test_delete_leaves_nothing_behind(cluster: Cluster):
    cluster.create(model_deployment("doomed", autoscaling={"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}))
    only_revision(cluster, "doomed")
    wait_for(lambda: cluster.service("doomed") and cluster.hpa("doomed"), what="children")
    cluster.delete("doomed")
    # Garbage collection of a just-created CRD kind's dependents can take its time on a fresh controller manager.
    wait_for(lambda: not cluster.deployments("doomed") and cluster.service("doomed") is None
             and cluster.hpa("doomed") is None, timeout=90, interval=1, what="children garbage-collected")


INVALID = [
    ("negative replicas", {"replicas": -1}, "spec.replicas"),
    ("unknown format", {"model": {"format": "pickle"}}, "spec.model.format"),
    ("uri scheme", {"model": {"uri": "s3://bucket/model"}}, "spec.model.uri"),
    ("missing uri", {"model": {"uri": None}}, "spec.model.uri"),
    ("port out of range", {"server": {"port": 70000}}, "spec.server.port"),
    ("replicas not a number", {"replicas": "three"}, "spec.replicas"),
    ("minReplicas zero", {"autoscaling": {"minReplicas": 0, "maxReplicas": 2, "targetCPUUtilizationPercentage": 5}},
     "spec.autoscaling.minReplicas"),
    ("bad quantity", {"server": {"resources": {"requests": {"cpu": "lots"}}}}, "spec.server.resources.requests"),
    ("bad sha256", {"model": {"sha256": "not-a-digest"}}, "spec.model.sha256"),
    ("bad env name", {"server": {"env": [{"name": "1=2", "value": "x"}]}}, "spec.server.env"),
    ("name too long", {"__name": "x" * 60}, "metadata.name"),
]


@pytest.mark.parametrize("patch, field", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_manifest_is_rejected_naming_the_field(cluster: Cluster, kubectl, patch, field):
    body = model_deployment("bad")
    if "__name" in patch:
        body["metadata"]["name"] = patch.pop("__name")
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(body["spec"].get(key), dict):
            body["spec"][key].update(value)
            body["spec"][key] = {k: v for k, v in body["spec"][key].items() if v is not None}
        else:
            body["spec"][key] = value
    # --validate=false: no client-side check, so it is the API server (the CRD schema) that must refuse.
    result = kubectl("-n", cluster.ns, "apply", "--validate=false", "-f", "-", input=yaml.safe_dump(body))
    assert result.returncode != 0, result.stdout
    assert "is invalid" in result.stderr and field in result.stderr, result.stderr
    assert cluster.deployments(body["metadata"]["name"]) == {}


def test_spec_the_schema_cannot_judge_is_refused_by_the_operator(cluster: Cluster):
    """minReplicas > maxReplicas passes a server without CEL rules; the operator refuses to act on it."""
    cluster.create(model_deployment("minmax", autoscaling={"minReplicas": 5, "maxReplicas": 2,
                                                            "targetCPUUtilizationPercentage": 50}))
    wait_status(cluster, "minmax", phase="Degraded")
    degraded = cluster.condition("minmax", "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
    assert "spec.autoscaling" in degraded["message"] and "maxReplicas" in degraded["message"]
    assert cluster.deployments("minmax") == {} and cluster.hpa("minmax") is None
    wait_for(lambda: any(e.reason == "InvalidSpec" and e.type == "Warning" for e in cluster.core.list_namespaced_event(
        cluster.ns, field_selector="involvedObject.name=minmax").items), what="an InvalidSpec Warning")

    cluster.patch_spec("minmax", {"autoscaling": {"minReplicas": 1}})
    only_revision(cluster, "minmax", what="Deployment once the spec is fixed")
    wait_for(lambda: cluster.condition("minmax", "Degraded").get("status") == "False", what="Degraded cleared")


def test_operator_restart_converges_on_changes_made_while_down(cluster: Cluster, operator):
    cluster.create(model_deployment("restart", replicas=1))
    old = only_revision(cluster, "restart")
    cluster.make_available(f"restart-{old}")
    wait_status(cluster, "restart", phase="Healthy", stableRevision=old)

    operator.kill()
    try:
        cluster.patch_spec("restart", {"replicas": 3, "model": {"version": "2"}})
        generation = cluster.get("restart")["metadata"]["generation"]
        assert set(cluster.deployments("restart")) == {old}  # nobody acted while the operator was down
    finally:
        operator.start()
    deps = wait_for(lambda: len(d := cluster.deployments("restart")) == 2 and d, what="new revision after restart")
    new = next(r for r in deps if r != old)
    assert deps[new].spec.replicas == 3 and deps[old].spec.replicas == 3
    cluster.make_available(f"restart-{new}")
    wait_status(cluster, "restart", phase="Healthy", stableRevision=new, observedGeneration=generation)
    wait_for(lambda: set(cluster.deployments("restart")) == {new}, what="old revision removed")


def test_example_manifest(cluster: Cluster, kubectl):
    example = REPO / "examples" / "iris.yaml"
    result = kubectl("-n", cluster.ns, "apply", "-f", str(example))
    assert result.returncode == 0, result.stderr
    name = yaml.safe_load(example.read_text())["metadata"]["name"]
    only_revision(cluster, name)
    wait_for(lambda: cluster.service(name), what="Service")
    status = wait_status(cluster, name, phase="Pending")
    assert status["observedGeneration"] == cluster.get(name)["metadata"]["generation"]
    got = kubectl("-n", cluster.ns, "get", "md", name, check=True).stdout
    assert "MODEL" in got and "PHASE" in got and "Pending" in got


def test_operator_exports_its_metrics(cluster: Cluster, operator):
    cluster.create(model_deployment("metered"))
    only_revision(cluster, "metered")
    text = wait_for(lambda: (t := operator.metrics()) and "modelpilot_operator_reconcile_total{" in t and t,
                    what="reconcile metrics")
    assert "modelpilot_operator_reconcile_duration_seconds_bucket" in text


def test_many_model_deployments_are_all_reconciled(cluster: Cluster):
    """More objects than the operator has worker threads: each has a long-lived release loop, and none of them may
    starve the handlers of the others."""
    names = [f"many{i}" for i in range(20)]
    for name in names:
        cluster.create(model_deployment(name))
    wait_for(lambda: all(cluster.status(n).get("observedGeneration") == 1 for n in names), timeout=60,
             what="a status on every object")
