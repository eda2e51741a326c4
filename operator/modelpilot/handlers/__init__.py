"""kopf wiring, and nothing else: every handler hands over to ``modelpilot.reconcile``.

Triggers of one and the same level-based pass:
- create / update / resume of a ModelDeployment,
- any event of a Deployment the operator manages (so a revision that becomes available is acted on at once, not at
  the next resync),
- a resync timer, which repairs drift nobody told us about.

Passes for one object are serialised by a per-object lock (kopf serialises handlers per object, but a Deployment's
event is another object's). Each pass reads the ModelDeployment fresh from the API inside the lock, so the status it
builds on is the one the previous pass wrote.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from modelpilot.api import GROUP, KIND, PLURAL, VERSION
from modelpilot.api.constants import LABEL_MANAGED_BY, MANAGED_BY
from modelpilot.kube.client import Kube
from modelpilot.reconcile import OperatorConfig, reconcile
from modelpilot.telemetry import OperatorMetrics

log = logging.getLogger("modelpilot")

RETRY_DELAY_SECONDS = 5


@dataclass
class Runtime:
    """What every handler needs; passed to kopf as ``memo``."""

    kube: Kube
    config: OperatorConfig
    metrics: OperatorMetrics
    _locks: defaultdict[tuple[str, str], threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks[(namespace, name)]

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)


def run_pass(rt: Runtime, namespace: str, name: str, trigger: str) -> None:
    """One reconcile pass for one object, with metrics and Events. Raises on API errors (the caller decides)."""
    started = time.monotonic()
    result = "ok"
    try:
        with rt.lock(namespace, name):
            body = rt.kube.get_model_deployment(namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                result = "gone"
                return
            outcome = reconcile(body, kube=rt.kube, config=rt.config, now=datetime.now(timezone.utc))
        for type_, reason, message in outcome.events:
            kopf.event(body, type=type_, reason=reason, message=message)
    except Exception as exc:
        result = "error"
        rt.metrics.errors.labels(trigger, type(exc).__name__).inc()
        raise
    finally:
        rt.metrics.passes.labels(trigger, result).inc()
        rt.metrics.duration.labels(trigger).observe(time.monotonic() - started)


def api_error(exc: ApiException) -> str:
    """The API server's own message (it names the object and field), not just the HTTP reason."""
    try:
        return f"{exc.status} {json.loads(exc.body)['message']}"
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"


def _retrying(rt: Runtime, namespace: str, name: str, trigger: str) -> None:
    try:
        run_pass(rt, namespace, name, trigger)
    except ApiException as exc:
        # The default kopf retry is 60 s: far too slow for a release. Conflicts and API hiccups retry soon.
        raise kopf.TemporaryError(f"API error {api_error(exc)}", delay=RETRY_DELAY_SECONDS) from exc


def register(registry: kopf.OperatorRegistry, *, resync_seconds: float) -> None:
    """Register every handler on ``registry``."""
    resource = dict(group=GROUP, version=VERSION, plural=PLURAL, registry=registry)

    @kopf.on.create(**resource, id="reconcile")
    @kopf.on.update(**resource, id="reconcile")
    @kopf.on.resume(**resource, id="reconcile")
    def on_change(namespace: str, name: str, memo: Any, reason: str, **_: Any) -> None:
        _retrying(memo.runtime, namespace, name, str(reason))

    @kopf.timer(**resource, id="resync", interval=resync_seconds, idle=resync_seconds / 2)
    def on_timer(namespace: str, name: str, memo: Any, **_: Any) -> None:
        _retrying(memo.runtime, namespace, name, "resync")

    @kopf.on.delete(**resource, id="forget", optional=True)
    def on_delete(namespace: str, name: str, memo: Any, **_: Any) -> None:
        memo.runtime.forget(namespace, name)  # the children go by owner references

    @kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry)
    def on_child(namespace: str, meta: Any, memo: Any, type: str | None, **_: Any) -> None:
        owners = [r for r in meta.get("ownerReferences", []) if r.get("kind") == KIND and r.get("controller")]
        if type is None or not owners:
            return  # the initial listing: the owners' resume handlers cover it
        try:
            run_pass(memo.runtime, namespace, owners[0]["name"], "child")
        except ApiException as exc:
            log.warning("pass for %s/%s after a child event failed: %s", namespace, owners[0]["name"], api_error(exc))
