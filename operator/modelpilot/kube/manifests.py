"""Pure builders of the child objects of a ModelDeployment: the per-revision Deployment, the Service, the HPA.

Everything is a plain dict in the wire format, applied with server-side apply, so a builder states the complete
desired object and the API server works out the difference.
"""

from __future__ import annotations

import copy
from typing import Any

from modelpilot.api import API_VERSION, KIND, ModelDeploymentSpec
from modelpilot.api.constants import LABEL_MODEL, LABEL_REVISION, SERVER_CONTAINER, SERVICE_PORT
from modelpilot.api.refs import model_labels, owner_reference
from modelpilot.rollout.revision import revision_of

PORT_NAME = "http"


def selector_string(name: str) -> str:
    """The label selector of all the model's pods, as the scale subresource reports it."""
    return f"{LABEL_MODEL}={name}"


def _metadata(owner: dict[str, Any], name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }


def merge_template(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge a user's PodTemplateSpec over the generated one.

    Maps merge key by key; ``containers`` and ``initContainers`` merge by ``name`` (a container of the override
    named ``model-server`` changes the server container, others are added); any other list is replaced.

    >>> merge_template({"spec": {"containers": [{"name": "a", "image": "x", "args": ["1"]}]}},
    ...                {"spec": {"containers": [{"name": "a", "args": ["2"]}, {"name": "b", "image": "y"}]}})
    {'spec': {'containers': [{'name': 'a', 'image': 'x', 'args': ['2']}, {'name': 'b', 'image': 'y'}]}}
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_template(out[key], value)
        elif key in ("containers", "initContainers") and isinstance(value, list):
            by_name = {c.get("name"): i for i, c in enumerate(out.get(key) or [])}
            merged = list(out.get(key) or [])
            for container in value:
                i = by_name.get(container.get("name"))
                if i is None:
                    merged.append(copy.deepcopy(container))
                else:
                    merged[i] = merge_template(merged[i], container)
            out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    return out


def pod_template(name: str, spec: ModelDeploymentSpec, image: str) -> dict[str, Any]:
    """The pod template of the model server, without the revision label (the revision is its hash).

    The server learns its revision from its own pod label through the downward API, so the template can be hashed
    before the revision is known.
    """
    server = spec.server
    model = spec.model
    env: list[dict[str, Any]] = [
        {"name": "MODEL_NAME", "value": model.name},
        {"name": "MODEL_VERSION", "value": model.version},
        {"name": "MODEL_URI", "value": model.uri},
        {"name": "MODEL_FORMAT", "value": model.format.value},
        {"name": "MODELPILOT_PORT", "value": str(server.port)},
        {
            "name": "MODELPILOT_REVISION",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{LABEL_REVISION}']"}},
        },
    ]
    if model.sha256:
        env.append({"name": "MODEL_SHA256", "value": model.sha256})
    env.extend(e.to_k8s() for e in server.env)
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": image,
        "args": list(server.args),
        "ports": [{"name": PORT_NAME, "containerPort": server.port, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": PORT_NAME},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": PORT_NAME},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if server.resources is not None:
        container["resources"] = server.resources.to_k8s()
    template = {
        "metadata": {
            "labels": {**model_labels(name)},
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(server.port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 30},
    }
    if spec.template:
        template = merge_template(template, spec.template)
        template["metadata"].setdefault("labels", {}).update(model_labels(name))  # the Service depends on them
    return template


def revision_template(name: str, spec: ModelDeploymentSpec, image: str) -> tuple[str, dict[str, Any]]:
    """The revision of a spec and its labelled pod template."""
    template = pod_template(name, spec, image)
    revision = revision_of(template)
    template["metadata"]["labels"][LABEL_REVISION] = revision
    return revision, template


def deployment_name(name: str, revision: str) -> str:
    return f"{name}-{revision}"


def deployment(owner: dict[str, Any], revision: str, template: dict[str, Any], replicas: int) -> dict[str, Any]:
    name = owner["metadata"]["name"]
    labels = {**model_labels(name), LABEL_REVISION: revision}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, deployment_name(name, revision), labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {LABEL_MODEL: name, LABEL_REVISION: revision}},
            "template": template,
            "revisionHistoryLimit": 1,
        },
    }


def service(owner: dict[str, Any], revision: str | None, name: str | None = None) -> dict[str, Any]:
    """A Service in front of the model's pods: those of ``revision``, or of every revision when it is None (a
    canary with the ``replicas`` router, where the weight is the share of ready pods)."""
    model = owner["metadata"]["name"]
    selector = {LABEL_MODEL: model}
    if revision is not None:
        selector[LABEL_REVISION] = revision
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name or model, model_labels(model)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def preview_service_name(name: str) -> str:
    return f"{name}-preview"


def hpa(owner: dict[str, Any], spec: ModelDeploymentSpec, api_version: str) -> dict[str, Any]:
    """A HorizontalPodAutoscaler that scales the ModelDeployment itself through its scale subresource.

    ``api_version`` is ``autoscaling/v2`` or ``autoscaling/v2beta2``: both have the same shape for resource metrics.
    """
    assert spec.autoscaling is not None
    auto = spec.autoscaling
    name = owner["metadata"]["name"]
    metrics = [
        {"type": "Resource", "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": v}}}
        for resource, v in (
            ("cpu", auto.target_cpu_utilization_percentage),
            ("memory", auto.target_memory_utilization_percentage),
        )
        if v is not None
    ]
    return {
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(owner, name, model_labels(name)),
        "spec": {
            "scaleTargetRef": {"apiVersion": API_VERSION, "kind": KIND, "name": name},
            "minReplicas": auto.min_replicas,
            "maxReplicas": auto.max_replicas,
            "metrics": metrics,
        },
    }
