"""The Prometheus metric provider: instant queries over HTTP (``GET /api/v1/query``) with an injected aiohttp session.

Decisions:

* The session is passed in (style: the network client is passed in). Whoever owns it decides on connection limits,
  TLS and auth headers; tests point it at a real Prometheus without patching anything.
* One evaluation time per ``measure``: every query of a check (value and samples, canary and stable) carries the same
  ``time=``, taken once from ``clock``. Queries run concurrently, so a check costs one round trip.
* Bounded: each request has a total timeout of ``timeout`` seconds, and Prometheus is told the same (its ``timeout``
  parameter) so it stops evaluating too. No retries: the next analysis run is the retry, and a measure call never
  takes much longer than ``timeout``.
* Never raises for the backend's failures: connection errors, timeouts, non-success answers, unparsable bodies and
  results that are not one number become ``Measurement(error=...)``.
* No data is not an error: an empty vector, and NaN (``0/0``, ``histogram_quantile`` without traffic), are
  ``value=None``. ``+Inf`` is passed on: for latency it means "slower than the largest bucket".
* A result of several series is an error, not "take the first": the query is ambiguous (a custom query that forgot
  its ``sum``), and picking one series would judge an arbitrary pod.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from modelpilot.api.strategy import MetricCheck
from modelpilot.metrics.queries import CheckQueries, PlaceholderError, check_queries, compares_with_stable
from modelpilot.rollout.measurement import CheckMeasurement, Measurement, QueryContext

__all__ = ["PrometheusProvider", "QueryError"]

_MAX_ERROR_TEXT = 300


class QueryError(Exception):
    """Prometheus could not answer a query; the message is what goes into ``Measurement.error``."""


class PrometheusProvider:
    """:class:`~modelpilot.metrics.provider.MetricProvider` backed by the Prometheus HTTP API.

    Args:
        session: the aiohttp session to send requests with (owned and closed by the caller).
        base_url: Prometheus' address, e.g. ``http://prometheus.monitoring:9090`` (a path prefix is kept).
        timeout: seconds for each request, connection included.
        clock: wall-clock seconds since the epoch, for the evaluation time (injectable so tests can pin it).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        timeout: float = 5,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.clock = clock

    def __repr__(self) -> str:
        return f"PrometheusProvider({self.base_url!r}, timeout={self.timeout})"

    async def measure(self, check: MetricCheck, ctx: QueryContext) -> CheckMeasurement:
        """Measure ``check`` for ``ctx.revision`` and, for relative bounds, for ``ctx.stable_revision``.

        A relative check without a stable revision gets ``stable=Measurement()``: no data to compare with, which the
        verdict treats as such. Not an error: Prometheus is fine, and ``onProviderError: Fail`` must not roll a
        release back for it.
        """
        at = self.clock()
        try:
            canary_queries = check_queries(check, ctx, ctx.revision)
        except (PlaceholderError, ValueError) as exc:
            return CheckMeasurement(canary=Measurement(error=f"cannot build the query: {exc}"))
        if not compares_with_stable(check):
            return CheckMeasurement(canary=await self._measure(canary_queries, at))
        if ctx.stable_revision is None:
            canary = await self._measure(canary_queries, at)
            return CheckMeasurement(canary, Measurement())
        stable_queries = check_queries(check, ctx, ctx.stable_revision)
        canary, stable = await asyncio.gather(self._measure(canary_queries, at), self._measure(stable_queries, at))
        return CheckMeasurement(canary, stable)

    async def query(self, promql: str, at: float) -> float | None:
        """One instant query evaluated at ``at`` (epoch seconds): its single number, or None for no data.

        Raises :class:`QueryError` for everything that is not an answer (this is the one place that raises; it is
        public for diagnostics such as a CLI probe).
        """
        url = f"{self.base_url}/api/v1/query"
        params = {"query": promql, "time": f"{at:.3f}", "timeout": f"{self.timeout:g}s"}
        try:
            async with self.session.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                body = await _json_or_none(response)
                if response.status != 200 or body is None or body.get("status") != "success":
                    raise QueryError(_describe_failure(response.status, body))
        except asyncio.TimeoutError:
            raise QueryError(f"Prometheus did not answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise QueryError(f"Prometheus unreachable: {type(exc).__name__}: {exc}") from None
        return _single_value(body.get("data"))

    async def _measure(self, queries: CheckQueries, at: float) -> Measurement:
        try:
            if queries.samples is None:
                return Measurement(value=await self.query(queries.value, at))
            value, samples = await asyncio.gather(self.query(queries.value, at), self.query(queries.samples, at))
        except QueryError as exc:
            return Measurement(error=str(exc)[:_MAX_ERROR_TEXT])
        return Measurement(value=value, samples=samples)


async def _json_or_none(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    try:
        body = await response.json(content_type=None)
    except ValueError:  # not JSON (a proxy's HTML error page, say); aiohttp's ContentTypeError is a ValueError too
        return None
    return body if isinstance(body, dict) else None


def _describe_failure(status: int, body: dict[str, Any] | None) -> str:
    """Prometheus' own words when it gave them (``errorType: error``), the HTTP status otherwise."""
    if body is not None and body.get("error"):
        return f"Prometheus answered {status} {body.get('errorType', 'error')}: {body['error']}"
    return f"Prometheus answered HTTP {status} without a query result"


def _single_value(data: Any) -> float | None:
    """The one number of an instant query result (``vector`` of at most one sample, or ``scalar``)."""
    try:
        result_type, result = data["resultType"], data["result"]
        if result_type == "scalar":
            return _number(result[1])
        if result_type != "vector":
            raise QueryError(f"query returned a {result_type}, not a number")
        if not result:
            return None
        if len(result) > 1:
            labels = ", ".join(str(r.get("metric", {})) for r in result[:3])
            raise QueryError(f"query returned {len(result)} series, not one number (aggregate it): {labels}")
        return _number(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise QueryError(f"unexpected query result: {type(exc).__name__}: {exc}") from None


def _number(text: Any) -> float | None:
    """Prometheus sends numbers as strings (``"0.25"``, ``"NaN"``, ``"+Inf"``); NaN is no data."""
    value = float(text)
    return None if math.isnan(value) else value
