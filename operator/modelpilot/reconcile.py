"""One reconcile pass for one ModelDeployment: observe -> measure -> decide -> apply -> status.

Level-based: the pass recomputes the whole desired world from the spec, the observed children and the status it
wrote before, and applies it idempotently. It can run any number of times, from any trigger (create, update, resume,
a child's event, the per-object loop), and a restarted operator simply runs it again. No decorators here: the kopf
wiring lives in ``modelpilot.handlers``.

Without ``spec.strategy`` a new revision replaces the old one once available (``rollout.plan``); with one, the
release state machine decides (``rollout.release``), fed with analysis results when a run is due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from modelpilot.api import AnalysisSpec, ModelDeploymentSpec
from modelpilot.api.constants import ANNOTATION_ACTION
from modelpilot.api.durations import parse_duration
from modelpilot.kube import manifests
from modelpilot.kube.client import Kube
from modelpilot.kube.observe import observe
from modelpilot.rollout.measurement import CheckMeasurement, Measurement, QueryContext
from modelpilot.rollout.plan import plan
from modelpilot.rollout.release import Action, Decision, Release, analysis_due, decide
from modelpilot.rollout.state import Observed
from modelpilot.rollout.status import compute_status, release_status
from modelpilot.rollout.verdicts import CheckResult, evaluate
from modelpilot.traffic import router_for
from modelpilot.traffic.router import CANARY_SUFFIX, STABLE_SUFFIX, RoutingError, Split

DEFAULT_SERVER_IMAGE = "modelpilot/model-server:0.1.0"

Event = tuple[str, str, str]  # (type, reason, message)
# Measures every check of an analysis for a context; the handlers bridge it to the async Prometheus provider.
Measure = Callable[[AnalysisSpec, QueryContext], list[CheckMeasurement]]


@dataclass(frozen=True)
class OperatorConfig:
    server_image: str = DEFAULT_SERVER_IMAGE


@dataclass
class PassResult:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    wrote_status: bool = False
    requeue_after: float | None = None  # when the release wants another pass (pause end, next analysis run)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (check, verdict) of an analysis run this pass


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
    """An Event for every Ready or Degraded transition (Progressing transitions are the decisions' own events)."""
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


def _unmeasured(analysis: AnalysisSpec, why: str) -> list[CheckMeasurement]:
    return [CheckMeasurement(Measurement(error=why)) for _ in analysis.metrics]


def reconcile(
    body: dict[str, Any], *, kube: Kube, config: OperatorConfig, now: datetime, measure: Measure | None = None
) -> PassResult:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    previous: dict[str, Any] = body.get("status") or {}
    observed = observe(kube.owned_deployments(body))
    common = dict(selector=manifests.selector_string(name), generation=meta.get("generation"), previous=previous,
                  observed=observed, now=now)
    events: list[Event] = []
    requeue: float | None = None
    results: list[CheckResult] | None = None

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
        if spec.strategy is None:
            p = plan(desired=revision, replicas=spec.replicas, stable=previous.get("stableRevision"),
                     observed=observed, paused=spec.paused)
            _apply_revisions(body, p.replicas, p.remove, revision, template, observed, kube)
            kube.apply(manifests.service(body, p.stable or revision))
            events.extend(p.events)
            status = compute_status(replicas=spec.replicas, plan=p, **common)
        else:
            release = Release.from_status(previous)
            action = Action.parse((meta.get("annotations") or {}).get(ANNOTATION_ACTION), release.last_action)
            results = _analyse(spec, release, revision, namespace, measure, now)
            d = decide(spec=spec, desired=revision, observed=observed, release=release, now=now, action=action,
                       results=results)
            _apply_revisions(body, d.replicas, d.remove, revision, template, observed, kube)
            kube.apply(manifests.service(body, d.service_revision))
            if spec.strategy.blue_green is not None:
                preview = d.preview_revision or d.release.stable
                kube.apply(manifests.service(body, preview, manifests.preview_service_name(name)))
            routing_error = _route(body, spec, d, kube)
            if routing_error is not None:
                d.degraded = routing_error
                events.append(("Warning", routing_error[1], routing_error[2]))
            events.extend(d.events)
            requeue = d.requeue_after
            status = release_status(decision=d, desired=revision, replicas=spec.replicas, **common)
        _apply_autoscaling(body, spec, kube)

    said = {reason for _, reason, _ in events}  # a decision's own Event (e.g. RolledBack) is not repeated
    events.extend(e for e in _condition_events(previous, status) if e[1] not in said)
    changed = any(previous.get(k) != v for k, v in status.items())
    if changed:
        kube.patch_status(namespace, name, status)
    checks = [(r.name, r.verdict.value) for r in results or ()]
    return PassResult(status=status, events=events, wrote_status=changed, requeue_after=requeue, checks=checks)


def _analyse(spec: ModelDeploymentSpec, release: Release, revision: str, namespace: str, measure: Measure | None,
             now: datetime) -> list[CheckResult] | None:
    """Run the analysis if one is due for the revision under test; None when none is due."""
    analysis = analysis_due(spec, release, now) if release.canary == revision else None
    if analysis is None:
        return None
    ctx = QueryContext(model=spec.model.name, namespace=namespace, revision=revision,
                       stable_revision=release.stable, window_seconds=parse_duration(analysis.interval))
    if measure is None:
        measured = _unmeasured(analysis, "no Prometheus configured (--prometheus-url)")
    else:
        try:
            measured = measure(analysis, ctx)
        except Exception as exc:  # a provider must not take the pass down: it is an Error verdict
            measured = _unmeasured(analysis, f"{type(exc).__name__}: {exc}")
    return [evaluate(check, m, analysis) for check, m in zip(analysis.metrics, measured, strict=True)]


def _route(body: dict[str, Any], spec: ModelDeploymentSpec, d: Decision, kube: Kube) -> tuple[str, str, str] | None:
    """Point a mesh / Gateway API / ingress route at the per-revision Services with the decided weight.

    Returns a Degraded condition (status, reason, message) when the route cannot be written; the ``replicas`` router
    writes nothing (the weight is the replica split behind the model Service).
    """
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    router = router_for(spec.traffic_routing, namespace)
    if router.by_replicas:
        return None
    stable = d.release.stable
    kube.apply(manifests.service(body, stable, name + STABLE_SUFFIX))
    kube.apply(manifests.service(body, d.release.canary or stable, name + CANARY_SUFFIX))
    current = {ref: kube.read(ref.api_version, ref.plural, ref.namespace, ref.name) for ref in router.targets()}
    split = Split.of(namespace, name, d.router_weight)
    try:
        writes = router.writes(current, split, body) if d.release.canary else router.cleanup(current, split, body)
    except RoutingError as exc:
        return ("True", exc.reason, str(exc))
    for w in writes:
        if w.mode == "merge":
            kube.merge_patch(w.api_version, w.plural, w.namespace, w.name, w.body)
        elif w.mode == "apply":
            kube.apply(w.body, w.plural)
        else:
            uid = (w.body.get("preconditions") or {}).get("uid")
            kube.delete(w.api_version, w.kind, w.namespace, w.name, uid, plural=w.plural)
    return None


def _apply_revisions(body: dict[str, Any], replicas_by_revision: dict[str, int], remove: tuple[str, ...],
                     revision: str, template: dict[str, Any], observed: Observed, kube: Kube) -> None:
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    for rev, replicas in replicas_by_revision.items():
        if rev == revision:
            kube.apply(manifests.deployment(body, rev, template, replicas))
        elif rev in observed.revisions and observed.revisions[rev].desired != replicas:
            kube.scale_deployment(namespace, manifests.deployment_name(name, rev), replicas)
    for gone in remove:
        kube.delete("apps/v1", "Deployment", namespace, manifests.deployment_name(name, gone))


def _apply_autoscaling(body: dict[str, Any], spec: ModelDeploymentSpec, kube: Kube) -> None:
    version = kube.autoscaling_version()
    if spec.autoscaling is not None:
        kube.apply(manifests.hpa(body, spec, version))
        return
    existing = kube.get_owned(version, "HorizontalPodAutoscaler", body)
    if existing is not None:
        meta = body["metadata"]
        kube.delete(version, "HorizontalPodAutoscaler", meta["namespace"], meta["name"], existing["metadata"]["uid"])
