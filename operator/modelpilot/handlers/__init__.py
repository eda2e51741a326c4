"""kopf wiring, and nothing else: every handler hands over to ``modelpilot.reconcile``.

Triggers of one and the same level-based pass:
- create / update / resume of a ModelDeployment (an update includes the action annotation of the kubectl plugin),
- any event of a Deployment the operator manages (a revision that becomes available is acted on at once),
- a per-object daemon that runs a pass whenever the release asks for one (pause end, next analysis run) and at least
  every ``resync_seconds``, which also repairs drift nobody told us about. kopf retries a failed handler after 60 s by
  default, far too slow for a rollback; the daemon's own loop sets the pace instead.

Passes for one object are serialised by a per-object lock (kopf serialises handlers per object, but a Deployment's
event is another object's). Each pass reads the ModelDeployment fresh from the API inside the lock, so the status it
builds on is the one the previous pass wrote.

Handlers are synchronous (kopf runs them in its thread pool, as the Kubernetes client is synchronous); the Prometheus
provider is asynchronous and lives on kopf's event loop: ``Runtime.measure`` bridges the two.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import kopf
from kubernetes.client.exceptions import ApiException

from modelpilot.api import GROUP, KIND, PLURAL, VERSION, AnalysisSpec
from modelpilot.api.constants import LABEL_MANAGED_BY, MANAGED_BY
from modelpilot.kube.client import Kube
from modelpilot.metrics import PrometheusProvider
from modelpilot.reconcile import OperatorConfig, PassResult, reconcile
from modelpilot.rollout.measurement import CheckMeasurement, QueryContext
from modelpilot.telemetry import OperatorMetrics

log = logging.getLogger("modelpilot")

RETRY_DELAY_SECONDS = 5
MIN_LOOP_SECONDS = 0.2


@dataclass
class Runtime:
    """What every handler needs; passed to kopf as ``memo``."""

    kube: Kube
    config: OperatorConfig
    metrics: OperatorMetrics
    prometheus_url: str | None = None
    resync_seconds: float = 30.0
    provider: PrometheusProvider | None = None
    loop: asyncio.AbstractEventLoop | None = None
    _locks: defaultdict[tuple[str, str], threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks[(namespace, name)]

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)

    def measure(self, analysis: AnalysisSpec, ctx: QueryContext) -> list[CheckMeasurement]:
        """Measure every check of ``analysis`` concurrently on the event loop; called from a handler thread."""
        if self.provider is None or self.loop is None:
            raise RuntimeError("no Prometheus configured (--prometheus-url)")
        provider = self.provider

        async def all_checks() -> list[CheckMeasurement]:
            return list(await asyncio.gather(*(provider.measure(check, ctx) for check in analysis.metrics)))

        return asyncio.run_coroutine_threadsafe(all_checks(), self.loop).result(timeout=60)


def run_pass(rt: Runtime, namespace: str, name: str, trigger: str) -> PassResult | None:
    """One reconcile pass for one object, with metrics and Events. Raises on API errors (the caller decides)."""
    started = time.monotonic()
    result = "ok"
    try:
        with rt.lock(namespace, name):
            body = rt.kube.get_model_deployment(namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                result = "gone"
                return None
            outcome = reconcile(body, kube=rt.kube, config=rt.config, now=datetime.now(timezone.utc),
                                measure=rt.measure if rt.provider else None)
        for type_, reason, message in outcome.events:
            kopf.event(body, type=type_, reason=reason, message=message[:1024])
        rt.metrics.observe_pass(namespace, name, outcome.status, outcome.events, outcome.checks)
        return outcome
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


def register(registry: kopf.OperatorRegistry) -> None:
    """Register every handler on ``registry``."""
    resource = dict(group=GROUP, version=VERSION, plural=PLURAL, registry=registry)

    @kopf.on.startup(registry=registry)
    async def open_provider(memo: Any, **_: Any) -> None:
        rt: Runtime = memo.runtime
        rt.loop = asyncio.get_running_loop()
        if rt.prometheus_url:
            memo.session = aiohttp.ClientSession()
            rt.provider = PrometheusProvider(memo.session, rt.prometheus_url)

    @kopf.on.cleanup(registry=registry)
    async def close_provider(memo: Any, **_: Any) -> None:
        session = getattr(memo, "session", None)
        if session is not None:
            await session.close()

    @kopf.on.create(**resource, id="reconcile")
    @kopf.on.update(**resource, id="reconcile")
    @kopf.on.resume(**resource, id="reconcile")
    def on_change(namespace: str, name: str, memo: Any, reason: str, **_: Any) -> None:
        _retrying(memo.runtime, namespace, name, str(reason))

    @kopf.daemon(**resource, id="loop", cancellation_timeout=5.0)
    async def loop(namespace: str, name: str, memo: Any, stopped: Any, **_: Any) -> None:
        # Async on purpose: a synchronous daemon would hold one of kopf's worker threads for the object's whole
        # life, and the pool would run dry after a handful of ModelDeployments. The pass itself runs in a thread.
        rt: Runtime = memo.runtime
        while not stopped:
            try:
                outcome = await asyncio.to_thread(run_pass, rt, namespace, name, "loop")
            except ApiException as exc:
                log.warning("pass for %s/%s failed: %s", namespace, name, api_error(exc))
                delay = RETRY_DELAY_SECONDS
            except Exception:
                log.exception("pass for %s/%s failed", namespace, name)
                delay = RETRY_DELAY_SECONDS
            else:
                wanted = outcome.requeue_after if outcome and outcome.requeue_after is not None else rt.resync_seconds
                delay = min(max(wanted, MIN_LOOP_SECONDS), rt.resync_seconds)
            await stopped.wait(delay)

    @kopf.on.delete(**resource, id="forget", optional=True)
    def on_delete(namespace: str, name: str, memo: Any, **_: Any) -> None:
        memo.runtime.forget(namespace, name)  # the children go by owner references
        memo.runtime.metrics.forget(namespace, name)

    @kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry)
    def on_child(namespace: str, meta: Any, memo: Any, type: str | None, **_: Any) -> None:
        owners = [r for r in meta.get("ownerReferences", []) if r.get("kind") == KIND and r.get("controller")]
        if type is None or not owners:
            return  # the initial listing: the owners' resume handlers cover it
        try:
            run_pass(memo.runtime, namespace, owners[0]["name"], "child")
        except ApiException as exc:
            log.warning("pass for %s/%s after a child event failed: %s", namespace, owners[0]["name"], api_error(exc))
