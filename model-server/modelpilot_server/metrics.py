"""Prometheus metrics: the contract between the model server and the operator's analysis.

Every series carries the constant labels ``model`` and ``revision`` (the served model name and the pod's revision, both
from the environment), so the operator's PromQL selects a revision by label with no relabelling:

=======================================  =========  ===========================================
``modelpilot_request_duration_seconds``  histogram  ``endpoint``
``modelpilot_requests_total``            counter    ``endpoint``, ``code``
``modelpilot_feedback_total``            counter    ``outcome`` = ``correct`` | ``incorrect``
``modelpilot_batch_size``                histogram  rows per model call
``modelpilot_cache_requests_total``      counter    ``result`` = ``hit`` | ``miss``
``modelpilot_inflight_requests``         gauge
=======================================  =========  ===========================================

Each app has its own ``CollectorRegistry`` (tests and benchmarks run several apps in one process). Labelled children
are bound once when the app is built: ``labels()`` hashes and locks on every call, which is measurable at thousands of
requests per second. Request counters are bound per (endpoint, code) the first time that pair is seen and then kept.

:class:`NullMetrics` has the same methods and does nothing; it is what ``--metrics false`` installs.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServerMetrics:
    """The contract's metrics for one model and revision, children bound once."""

    enabled = True

    def __init__(self, registry: CollectorRegistry, model: str, revision: str, endpoints: Iterable[str]) -> None:
        const = ("model", "revision")
        duration = Histogram(
            "modelpilot_request_duration_seconds", "Time to answer a request, by endpoint.",
            (*const, "endpoint"), registry=registry, buckets=LATENCY_BUCKETS,
        )
        self._requests = Counter(
            "modelpilot_requests_total", "Requests answered, by endpoint and HTTP status code.",
            (*const, "endpoint", "code"), registry=registry,
        )
        feedback = Counter(
            "modelpilot_feedback_total", "Ground-truth labels scored against predictions, by outcome.",
            (*const, "outcome"), registry=registry,
        )
        batch = Histogram(
            "modelpilot_batch_size", "Rows per model call.", const, registry=registry, buckets=BATCH_BUCKETS,
        )
        cache = Counter(
            "modelpilot_cache_requests_total", "Response cache lookups, by result.",
            (*const, "result"), registry=registry,
        )
        inflight = Gauge(
            "modelpilot_inflight_requests", "Requests being answered.", const, registry=registry,
        )
        self._const = (model, revision)
        self._durations = {endpoint: duration.labels(model, revision, endpoint) for endpoint in endpoints}
        self._counts: dict[tuple[str, int], Counter] = {}
        self._correct = feedback.labels(model, revision, "correct")
        self._incorrect = feedback.labels(model, revision, "incorrect")
        self._batch = batch.labels(model, revision)
        self._hit = cache.labels(model, revision, "hit")
        self._miss = cache.labels(model, revision, "miss")
        self.inflight = inflight.labels(model, revision)
        for endpoint in self._durations:  # so that rates exist (as 0) before the first request
            self._count(endpoint, 200)

    def _count(self, endpoint: str, code: int) -> Counter:
        child = self._counts.get((endpoint, code))
        if child is None:
            child = self._counts[(endpoint, code)] = self._requests.labels(*self._const, endpoint, str(code))
        return child

    def request(self, endpoint: str, code: int, seconds: float) -> None:
        duration = self._durations.get(endpoint)
        if duration is not None:
            duration.observe(seconds)
        self._count(endpoint, code).inc()

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def cache(self, hit: bool) -> None:
        (self._hit if hit else self._miss).inc()

    def feedback(self, correct: int, incorrect: int) -> None:
        if correct:
            self._correct.inc(correct)
        if incorrect:
            self._incorrect.inc(incorrect)


class _NullGauge:
    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass


class NullMetrics:
    """Metrics switched off: same surface, no work."""

    enabled = False
    inflight = _NullGauge()

    def request(self, endpoint: str, code: int, seconds: float) -> None:
        pass

    def batch(self, rows: int) -> None:
        pass

    def cache(self, hit: bool) -> None:
        pass

    def feedback(self, correct: int, incorrect: int) -> None:
        pass
