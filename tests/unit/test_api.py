"""API validation in the operator: each bad spec is refused with the field named (the same mistakes the CRD schema
catches at the API server, plus the cross-field rules it cannot express on every cluster)."""

import pytest
from modelpilot.api import ModelDeploymentSpec
from modelpilot.reconcile import describe_validation_error
from pydantic import ValidationError

GOOD = {"model": {"name": "iris", "version": "1", "uri": "file:///models/iris.joblib", "format": "sklearn"}}


def with_(**patch):
    spec = {**GOOD, "model": dict(GOOD["model"])}
    for path, value in patch.items():
        node = spec
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return spec


BAD = [
    ("negative replicas", with_(replicas=-1), "spec.replicas"),
    ("unknown format", with_(model__format="pickle"), "spec.model.format"),
    ("uri scheme", with_(model__uri="s3://bucket/m"), "spec.model.uri"),
    ("missing version", {"model": {k: v for k, v in GOOD["model"].items() if k != "version"}}, "spec.model.version"),
    ("typo field", with_(replica=3), "spec.replica"),
    ("port range", with_(server__port=70000), "spec.server.port"),
    ("min above max", with_(autoscaling={"minReplicas": 5, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50}),
     "spec.autoscaling"),
    ("no autoscaling target", with_(autoscaling={"maxReplicas": 2}), "spec.autoscaling"),
    ("bad quantity", with_(server__resources={"requests": {"cpu": "lots"}}), "spec.server.resources.requests.cpu"),
    ("env both value and valueFrom",
     with_(server__env=[{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]),
     "spec.server.env.0"),
    ("template not a pod template", with_(template={"containers": []}), "spec"),
    ("sha256 not hex", with_(model__sha256="xyz"), "spec.model.sha256"),
]


@pytest.mark.parametrize("spec, field", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(ValidationError) as info:
        ModelDeploymentSpec.model_validate(spec)
    text = describe_validation_error(info.value)
    assert text.startswith(field), text


def test_good_spec_round_trips_in_camel_case():
    spec = ModelDeploymentSpec.model_validate(
        with_(autoscaling={"maxReplicas": 4, "targetCPUUtilizationPercentage": 60}, server__port=9000)
    )
    wire = spec.to_k8s()
    assert wire["autoscaling"] == {"minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}
    assert wire["server"]["port"] == 9000
    assert ModelDeploymentSpec.model_validate(wire) == spec


def test_quantities_accept_kubernetes_forms():
    for q in ("500m", "1", 2, "1.5Gi", "128974848", "129e6", "123Mi"):
        ModelDeploymentSpec.model_validate(with_(server__resources={"limits": {"memory": q}}))
