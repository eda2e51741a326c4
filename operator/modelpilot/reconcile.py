"""One reconcile pass for one ModelDeployment: observe -> decide -> apply -> status.

Level-based: the pass recomputes the whole desired world from the spec, the observed children and the status it
wrote before, and applies it idempotently. It can run any number of times, from any trigger (create, update, resume,
a child's event, the resync timer), and a restarted operator simply runs it again. No decorators here: the kopf
wiring lives in ``modelpilot.handlers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from modelpilot.api import ModelDeploymentSpec
from modelpilot.kube import manifests
from modelpilot.kube.client import Kube
from modelpilot.kube.observe import observe
from modelpilot.rollout.plan import plan
from modelpilot.rollout.status import compute_status

DEFAULT_SERVER_IMAGE = "modelpilot/model-server:0.1.0"

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class OperatorConfig:
    server_image: str = DEFAULT_SERVER_IMAGE


@dataclass
class PassResult:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    wrote_status: bool = False


def describe_validation_error(exc: ValidationError, prefix: str = "spec") -> str:
    """One line per problem, each naming the field by its path as written in the manifest.

    >>> try:
    ...     ModelDeploymentSpec.model_validate({"model": {"name": "m", "version": "1", "uri": "file:///m",
    ...         "format": "sklearn"}, "autoscaling": {"minReplicas": 5, "maxReplicas": 2,
    ...         "targetCPUUtilizationPercentage": 50}})
    ... except ValidationError as exc:
    ...     print(describe_validation_error(exc))
    spec.autoscaling: minReplicas (5) must not be greater than maxReplicas (2)
    """
    lines = []
    for err in exc.errors():
        path = ".".join([prefix, *(str(p) for p in err["loc"])])
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return "; ".join(lines)


def _condition_events(previous: dict[str, Any], status: dict[str, Any]) -> list[Event]:
    """An Event for every Ready or Degraded transition (Progressing transitions are the plan's own events)."""
    before = {c["type"]: (c["status"], c["reason"]) for c in previous.get("conditions") or []}
    events = []
    for cond in status["conditions"]:
        if cond["type"] == "Progressing" or before.get(cond["type"]) == (cond["status"], cond["reason"]):
            continue
        if cond["type"] == "Degraded" and cond["status"] != "True" and cond["type"] not in before:
            continue  # a new object that is fine: no "not degraded" noise
        warning = (cond["type"] == "Degraded") == (cond["status"] == "True")
        events.append(("Warning" if warning else "Normal", cond["reason"], cond["message"]))
    return events


def reconcile(body: dict[str, Any], *, kube: Kube, config: OperatorConfig, now: datetime) -> PassResult:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    previous: dict[str, Any] = body.get("status") or {}
    observed = observe(kube.owned_deployments(body))
    common = dict(
        selector=manifests.selector_string(name),
        generation=meta.get("generation"),
        previous=previous,
        observed=observed,
        now=now,
    )
    events: list[Event] = []

    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        # Act on nothing: the children keep serving what they served; only the status says why.
        replicas = (body.get("spec") or {}).get("replicas")
        status = compute_status(
            replicas=replicas if isinstance(replicas, int) else 0, invalid=describe_validation_error(exc), **common
        )
    else:
        revision, template = manifests.revision_template(name, spec, spec.server.image or config.server_image)
        decision = plan(
            desired=revision,
            replicas=spec.replicas,
            stable=previous.get("stableRevision"),
            observed=observed,
            paused=spec.paused,
        )
        _apply(body, spec, decision.replicas, revision, template, observed, kube)
        for gone in decision.remove:
            kube.delete("apps/v1", "Deployment", namespace, manifests.deployment_name(name, gone))
        events.extend(decision.events)
        status = compute_status(replicas=spec.replicas, plan=decision, **common)

    events.extend(_condition_events(previous, status))
    changed = any(previous.get(k) != v for k, v in status.items())
    if changed:
        kube.patch_status(namespace, name, status)
    return PassResult(status=status, events=events, wrote_status=changed)


def _apply(body, spec, replicas_by_revision, revision, template, observed, kube: Kube) -> None:
    namespace = body["metadata"]["namespace"]
    kube.apply(manifests.service(body, spec))
    for rev, replicas in replicas_by_revision.items():
        if rev == revision:
            kube.apply(manifests.deployment(body, rev, template, replicas))
        elif observed.revisions[rev].desired != replicas:
            kube.scale_deployment(namespace, manifests.deployment_name(body["metadata"]["name"], rev), replicas)
    version = kube.autoscaling_version()
    if spec.autoscaling is not None:
        kube.apply(manifests.hpa(body, spec, version))
    else:
        existing = kube.get_owned(version, "HorizontalPodAutoscaler", body)
        if existing is not None:
            name, uid = body["metadata"]["name"], existing["metadata"]["uid"]
            kube.delete(version, "HorizontalPodAutoscaler", namespace, name, uid)
