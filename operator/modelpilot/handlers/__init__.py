"""kopf wiring, and nothing else: every handler hands over to ``modelpilot.reconcile``.

Passes of one object never overlap (a per-object asyncio lock) and bursts coalesce. A pass runs:
- at once when the object is created or resumed (operator start), from kopf's create/resume handler,
- from the object's daemon (one async task per object) when it is poked: an update of the ModelDeployment (spec, or
  the kubectl plugin's action annotation), or any event of a Deployment it owns (a revision that becomes available
  is acted on at once); pokes that arrive during a pass make one more pass, not one each,
- when the release asks for one (pause end, next analysis run), and at least every ``resync_seconds``, which also
  repairs drift nobody told us about. kopf retries a failed handler after 60 s by default, far too slow for a
  rollback; the daemon sets its own pace, and retries a failed pass after a few seconds.

Each pass reads the ModelDeployment fresh from the API, so the status it builds on is the one the previous pass
wrote.

Handlers are synchronous (kopf runs them in its thread pool, as the Kubernetes client is synchronous); the Prometheus
provider is asynchronous and lives on kopf's event loop: ``Runtime.measure`` bridges the two.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
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
    _wakeups: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def wakeup(self, namespace: str, name: str) -> asyncio.Event:
        """The event that wakes the object's daemon (on the event loop only)."""
        return self._wakeups.setdefault((namespace, name), asyncio.Event())

    async def run(self, namespace: str, name: str, trigger: str) -> PassResult | None:
        """One pass, in a worker thread, never beside another pass of the same object."""
        async with self._locks.setdefault((namespace, name), asyncio.Lock()):
            return await asyncio.to_thread(run_pass, self, namespace, name, trigger)

    def forget(self, namespace: str, name: str) -> None:
        self._wakeups.pop((namespace, name), None)
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


async def _sleep(wakeup: asyncio.Event, stopped: Any, seconds: float) -> None:
    """Until ``seconds`` have passed, the object is poked, or its daemon is asked to stop."""
    waiters = {asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


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
    @kopf.on.resume(**resource, id="reconcile")
    async def on_start(namespace: str, name: str, memo: Any, reason: str, **_: Any) -> None:
        try:
            await memo.runtime.run(namespace, name, str(reason))
        except ApiException as exc:
            # kopf's default retry is 60 s; the daemon passes again within resync_seconds anyway.
            raise kopf.TemporaryError(f"API error {api_error(exc)}", delay=RETRY_DELAY_SECONDS) from exc

    @kopf.on.update(**resource, id="poke")
    async def on_update(namespace: str, name: str, memo: Any, **_: Any) -> None:
        memo.runtime.wakeup(namespace, name).set()

    @kopf.daemon(**resource, id="loop", cancellation_timeout=5.0)
    async def loop(namespace: str, name: str, memo: Any, stopped: Any, **_: Any) -> None:
        # Async on purpose: a synchronous daemon would hold one of kopf's worker threads for the object's whole
        # life, and the pool would run dry after a handful of ModelDeployments. The pass itself runs in a thread.
        rt: Runtime = memo.runtime
        wakeup = rt.wakeup(namespace, name)
        await _sleep(wakeup, stopped, MIN_LOOP_SECONDS)  # the create/resume handler makes the first pass
        trigger = "poke"
        while not stopped:
            wakeup.clear()  # a poke from now on makes one more pass
            try:
                outcome = await rt.run(namespace, name, trigger)
            except ApiException as exc:
                log.warning("pass for %s/%s failed: %s", namespace, name, api_error(exc))
                delay = RETRY_DELAY_SECONDS
            except Exception:
                log.exception("pass for %s/%s failed", namespace, name)
                delay = RETRY_DELAY_SECONDS
            else:
                wanted = outcome.requeue_after if outcome and outcome.requeue_after is not None else rt.resync_seconds
                delay = min(max(wanted, MIN_LOOP_SECONDS), rt.resync_seconds)
            await _sleep(wakeup, stopped, delay)
            trigger = "poke" if wakeup.is_set() else "timer"

    @kopf.on.delete(**resource, id="forget", optional=True)
    async def on_delete(namespace: str, name: str, memo: Any, **_: Any) -> None:
        memo.runtime.forget(namespace, name)  # the children go by owner references
        memo.runtime.metrics.forget(namespace, name)

    @kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry)
    async def on_child(namespace: str, meta: Any, memo: Any, type: str | None, **_: Any) -> None:
        owners = [r for r in meta.get("ownerReferences", []) if r.get("kind") == KIND and r.get("controller")]
        if type is not None and owners:  # type None: the initial listing, which the daemons' first passes cover
            memo.runtime.wakeup(namespace, owners[0]["name"]).set()
