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

Decisions:

* Each app has its own ``CollectorRegistry`` (tests and benchmarks run several apps in one process), exposed by
  prometheus-client's own aiohttp handler.
* Every series is bound once, when the app is built: the per-endpoint histograms and the fixed counters are attributes,
  and a request never resolves label values. Request counters are bound per (endpoint, code) the first time that pair
  is seen and kept.
* The values are plain Python numbers in a custom collector instead of prometheus-client's metric objects. Every update
  happens on the event-loop thread (middleware, handlers, the batcher's worker task), and so does the scrape, so the
  per-update lock of prometheus-client buys nothing here; it cost a measurable share of a cache-hit request (about
  five lock round trips per request), where these updates cost a list index and an add. Histogram counts are
  derived from the buckets at scrape time, so ``_count`` always equals the ``+Inf`` bucket.
* :class:`NullMetrics` has the same methods and does nothing; it is what ``--metrics false`` installs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Histogram:
    """Cumulative-at-scrape histogram: ``observe`` is one bisect and two adds."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, int]]:
        cumulative, running = [], 0
        for bound, count in zip((*map(_le, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative


def _le(bound: float) -> str:
    return repr(float(bound))


class ServerMetrics(Collector):
    """The contract's metrics for one model and revision."""

    enabled = True

    def __init__(self, registry: CollectorRegistry, model: str, revision: str, endpoints: Iterable[str]) -> None:
        self._const = (model, revision)
        self._durations = {endpoint: Histogram(LATENCY_BUCKETS) for endpoint in endpoints}
        # so that every endpoint's rate exists (as 0) before its first request
        self._counts: dict[tuple[str, int], int] = {(endpoint, 200): 0 for endpoint in self._durations}
        self._batch = Histogram(BATCH_BUCKETS)
        self.correct = self.incorrect = 0
        self.hits = self.misses = 0
        self.inflight = 0
        registry.register(self)

    # -- updates (event-loop thread) --

    def request(self, endpoint: str, code: int, seconds: float) -> None:
        duration = self._durations.get(endpoint)
        if duration is not None:
            duration.observe(seconds)
        key = (endpoint, code)
        self._counts[key] = self._counts.get(key, 0) + 1

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def cache(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def feedback(self, correct: int, incorrect: int) -> None:
        self.correct += correct
        self.incorrect += incorrect

    # -- exposition (scrape, on the same thread) --

    def collect(self) -> Iterator[Metric]:
        const_names, const = ["model", "revision"], list(self._const)

        duration = HistogramMetricFamily(
            "modelpilot_request_duration_seconds", "Time to answer a request, by endpoint.",
            labels=[*const_names, "endpoint"],
        )
        for endpoint, histogram in self._durations.items():
            duration.add_metric([*const, endpoint], histogram.buckets(), histogram.sum)
        yield duration

        requests = CounterMetricFamily(
            "modelpilot_requests_total", "Requests answered, by endpoint and HTTP status code.",
            labels=[*const_names, "endpoint", "code"],
        )
        for (endpoint, code), count in list(self._counts.items()):
            requests.add_metric([*const, endpoint, str(code)], count)
        yield requests

        feedback = CounterMetricFamily(
            "modelpilot_feedback_total", "Ground-truth labels scored against predictions, by outcome.",
            labels=[*const_names, "outcome"],
        )
        feedback.add_metric([*const, "correct"], self.correct)
        feedback.add_metric([*const, "incorrect"], self.incorrect)
        yield feedback

        batch = HistogramMetricFamily("modelpilot_batch_size", "Rows per model call.", labels=const_names)
        batch.add_metric(const, self._batch.buckets(), self._batch.sum)
        yield batch

        cache = CounterMetricFamily(
            "modelpilot_cache_requests_total", "Response cache lookups, by result.", labels=[*const_names, "result"],
        )
        cache.add_metric([*const, "hit"], self.hits)
        cache.add_metric([*const, "miss"], self.misses)
        yield cache

        inflight = GaugeMetricFamily("modelpilot_inflight_requests", "Requests being answered.", labels=const_names)
        inflight.add_metric(const, self.inflight)
        yield inflight


class NullMetrics:
    """Metrics switched off: same surface, no work."""

    enabled = False
    inflight = 0

    def request(self, endpoint: str, code: int, seconds: float) -> None:
        pass

    def batch(self, rows: int) -> None:
        pass

    def cache(self, hit: bool) -> None:
        pass

    def feedback(self, correct: int, incorrect: int) -> None:
        pass
