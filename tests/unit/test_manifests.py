"""Child manifests and revision identity."""

import pytest
from modelpilot.api import ModelDeploymentSpec
from modelpilot.kube import manifests

OWNER = {"metadata": {"name": "iris", "namespace": "ml", "uid": "u-1"}}
BASE = {"model": {"name": "iris", "version": "1", "uri": "file:///m/iris.joblib", "format": "sklearn"}}


def spec(**overrides):
    raw = {**BASE, **overrides}
    return ModelDeploymentSpec.model_validate(raw)


def revision(s, image="img:1"):
    return manifests.revision_template("iris", s, image)[0]


# What changes the revision, and what does not.
SAME = [
    ("replicas", spec(replicas=7)),
    ("autoscaling", spec(autoscaling={"maxReplicas": 3, "targetCPUUtilizationPercentage": 50})),
    ("paused", spec(paused=True)),
]
DIFFERENT = [
    ("version", spec(model={**BASE["model"], "version": "2"})),
    ("uri", spec(model={**BASE["model"], "uri": "file:///m/other.joblib"})),
    ("format", spec(model={**BASE["model"], "format": "onnx"})),
    ("port", spec(server={"port": 9000})),
    ("env", spec(server={"env": [{"name": "X", "value": "1"}]})),
    ("args", spec(server={"args": ["--max-batch-size=8"]})),
    ("resources", spec(server={"resources": {"requests": {"cpu": "100m"}}})),
    ("template", spec(template={"spec": {"nodeSelector": {"pool": "gpu"}}})),
]


@pytest.mark.parametrize("changed", [c[1] for c in SAME], ids=[c[0] for c in SAME])
def test_scaling_fields_keep_the_revision(changed):
    assert revision(changed) == revision(spec())


@pytest.mark.parametrize("changed", [c[1] for c in DIFFERENT], ids=[c[0] for c in DIFFERENT])
def test_pod_fields_change_the_revision(changed):
    assert revision(changed) != revision(spec())


def test_image_changes_the_revision():
    assert revision(spec(), "img:2") != revision(spec(), "img:1")


def test_revision_is_a_label_value():
    r = revision(spec())
    assert len(r) == 10 and r[0].isalpha() and r.isalnum()


def test_deployment_carries_revision_owner_and_server_contract():
    s = spec(server={"port": 9000, "resources": {"limits": {"memory": "1Gi"}}})
    rev, template = manifests.revision_template("iris", s, "img:1")
    d = manifests.deployment(OWNER, rev, template, 3)
    assert d["metadata"]["name"] == f"iris-{rev}"
    assert d["metadata"]["ownerReferences"][0] | {} == {
        "apiVersion": "modelpilot.io/v1alpha1", "kind": "ModelDeployment", "name": "iris", "uid": "u-1",
        "controller": True, "blockOwnerDeletion": True,
    }
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["selector"]["matchLabels"] == {"modelpilot.io/model": "iris", "modelpilot.io/revision": rev}
    pod = d["spec"]["template"]
    assert pod["metadata"]["labels"]["modelpilot.io/revision"] == rev
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9000"
    (c,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["MODEL_NAME"] == "iris" and env["MODEL_VERSION"] == "1" and env["MODEL_FORMAT"] == "sklearn"
    assert env["MODEL_URI"] == "file:///m/iris.joblib" and env["MODELPILOT_PORT"] == "9000"
    assert env["MODELPILOT_REVISION"] == {"fieldRef": {"fieldPath": "metadata.labels['modelpilot.io/revision']"}}
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert c["resources"] == {"limits": {"memory": "1Gi"}}


def test_template_override_merges_by_container_name_and_keeps_model_labels():
    s = spec(template={
        "metadata": {"labels": {"team": "a", "modelpilot.io/model": "hijack"}},
        "spec": {"containers": [{"name": "model-server", "image": "custom:1"}, {"name": "sidecar", "image": "s:1"}],
                 "nodeSelector": {"pool": "cpu"}},
    })
    _, template = manifests.revision_template("iris", s, "img:1")
    names = [c["name"] for c in template["spec"]["containers"]]
    assert names == ["model-server", "sidecar"]
    assert template["spec"]["containers"][0]["image"] == "custom:1"
    assert template["spec"]["containers"][0]["readinessProbe"]  # generated parts survive
    assert template["spec"]["nodeSelector"] == {"pool": "cpu"}
    assert template["metadata"]["labels"]["team"] == "a"
    assert template["metadata"]["labels"]["modelpilot.io/model"] == "iris"


def test_service_selects_one_revision_or_all():
    svc = manifests.service(OWNER, "r1")
    assert svc["metadata"]["name"] == "iris"
    assert svc["spec"]["selector"] == {"modelpilot.io/model": "iris", "modelpilot.io/revision": "r1"}
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert manifests.service(OWNER, None)["spec"]["selector"] == {"modelpilot.io/model": "iris"}
    preview = manifests.service(OWNER, "r2", manifests.preview_service_name("iris"))
    assert preview["metadata"]["name"] == "iris-preview"


@pytest.mark.parametrize("version", ["autoscaling/v2", "autoscaling/v2beta2"])
def test_hpa_targets_the_model_deployment(version):
    s = spec(autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70,
                          "targetMemoryUtilizationPercentage": 80})
    h = manifests.hpa(OWNER, s, version)
    assert h["apiVersion"] == version
    assert h["spec"]["scaleTargetRef"] == {"apiVersion": "modelpilot.io/v1alpha1", "kind": "ModelDeployment",
                                           "name": "iris"}
    assert (h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) == (2, 6)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in h["spec"]["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
