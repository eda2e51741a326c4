"""The Prometheus provider against a real Prometheus scraping exporter processes that publish the metric contract.

Covered: a latency regression injected at runtime shows in the canary's quantile and not in stable's (same window,
same evaluation time); the error rate of a healthy revision is 0 (not "no data", although it has no 5xx series) and
the canary's matches its profile; accuracy and the scored-feedback count; a custom query with every placeholder;
ambiguous (several series) and invalid custom queries are errors; an idle revision and an unknown revision are no
data (value None), never an error; Prometheus stopped is ``Measurement.error`` quickly and without an exception, and
values come back once it is restarted; a Prometheus that accepts and never answers is bounded by the timeout.

Each test uses its own model name, so series of earlier tests never match. Windows are 5 s (1 s scrapes): enough
points for ``rate``/``increase``, short enough to keep the module well under 90 s. Latency assertions allow for the
contract's coarse buckets (``histogram_quantile`` interpolates linearly inside 10-25 ms, 50-100 ms, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from modelpilot.api.strategy import MetricCheck
from modelpilot.metrics import MetricProvider, PrometheusProvider
from modelpilot.rollout.measurement import CheckMeasurement, Measurement, QueryContext

pytestmark = pytest.mark.integration

WINDOW = 5.0
STABLE, CANARY = "stable1", "canary2"


def check(**kind: object) -> MetricCheck:
    return MetricCheck.model_validate({"name": "check", **kind})


def ctx(model: str, revision: str = CANARY, stable: str | None = STABLE) -> QueryContext:
    return QueryContext(model=model, namespace="ml", revision=revision, stable_revision=stable, window_seconds=WINDOW)


@pytest.fixture
async def provider(prometheus) -> AsyncIterator[PrometheusProvider]:
    async with aiohttp.ClientSession() as session:
        yield PrometheusProvider(session, prometheus.url, timeout=2)


async def measure_until(
    provider: MetricProvider,
    c: MetricCheck,
    context: QueryContext,
    done: Callable[[CheckMeasurement], bool],
    *,
    timeout: float = 20.0,
) -> CheckMeasurement:
    """Measure every 0.5 s until ``done`` holds (bounded); the first exporter data takes a discovery cycle (~5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        m = await provider.measure(c, context)
        if done(m) or time.monotonic() > deadline:
            assert done(m), f"no acceptable measurement within {timeout} s; last: {m}"
            return m
        await asyncio.sleep(0.5)


def wait_full_window(prometheus, model: str, revisions: int) -> None:
    """Wait until every revision of ``model`` has been scraped for a window and a bit more.

    Before that, ``increase`` works on a partial window and limits its extrapolation at each counter's zero point,
    differently for each series: ratios of young counters are off by several points. Waiting is what the operator
    does too (``minRequests``); tests wait here so that they can assert tight bounds with a single measurement.
    """
    span = WINDOW + 2
    full = f'count_over_time(modelpilot_requests_total{{model="{model}",code="200"}}[{span:g}s]) >= {span:g}'
    prometheus.wait_for_series(full, timeout=25, count=revisions)


def enough(samples: float) -> Callable[[CheckMeasurement], bool]:
    """Canary (and stable, when measured) have values and at least ``samples`` samples."""

    def ok(m: CheckMeasurement) -> bool:
        return all(
            x.error is None and x.value is not None and (x.samples or 0) >= samples
            for x in (m.canary, m.stable) if x is not None
        )

    return ok


async def test_latency_quantile_tells_a_slower_revision_apart(provider, exporter, prometheus) -> None:
    model = "latency"
    exporter(model, STABLE, rps=40, latency_ms=20, jitter_ms=5)
    canary = exporter(model, CANARY, rps=40, latency_ms=20, jitter_ms=5, seed=2)
    p90 = check(latency={"quantile": 0.9, "maxIncreaseOverStable": "20%"})

    wait_full_window(prometheus, model, 2)
    healthy = await provider.measure(p90, ctx(model))
    assert 0.01 < healthy.stable.value <= 0.025
    assert 0.01 < healthy.canary.value <= 0.025
    for x in (healthy.canary, healthy.stable):
        assert x.samples == pytest.approx(40 * WINDOW, rel=0.2)  # requests in the window, not since the start

    canary.set(latency_ms=80, jitter_ms=10)  # the regression, at t0
    slow = await measure_until(provider, p90, ctx(model), lambda m: (m.canary.value or 0) > 0.05, timeout=WINDOW + 8)
    assert 0.05 < slow.canary.value <= 0.1  # 70-90 ms falls in the (50 ms, 100 ms] bucket
    assert 0.01 < slow.stable.value <= 0.025
    assert slow.canary.value > 2 * slow.stable.value


async def test_error_rate_of_a_healthy_and_a_failing_revision(provider, exporter, prometheus) -> None:
    model = "errors"
    exporter(model, STABLE, rps=40, error_rate=0)
    exporter(model, CANARY, rps=40, error_rate=0.1)
    c = check(errorRate={"max": 0.05, "maxIncreaseOverStable": "1%"})

    wait_full_window(prometheus, model, 2)
    m = await provider.measure(c, ctx(model))
    assert m.stable.value == 0.0  # no 5xx series at all, and still a number
    assert m.canary.value == pytest.approx(0.1, abs=0.02)
    for x in (m.canary, m.stable):
        assert x.samples == pytest.approx(40 * WINDOW, rel=0.2)


async def test_accuracy_counts_scored_feedback(provider, exporter, prometheus) -> None:
    model = "accuracy"
    exporter(model, STABLE, rps=5, feedback_rps=30, accuracy=0.95)
    exporter(model, CANARY, rps=5, feedback_rps=30, accuracy=0.8)
    c = check(accuracy={"min": 0.9, "maxDropFromStable": "2%", "minFeedback": 50})

    wait_full_window(prometheus, model, 2)
    m = await provider.measure(c, ctx(model))
    assert m.stable.value == pytest.approx(0.95, abs=0.02)
    assert m.canary.value == pytest.approx(0.8, abs=0.02)
    for x in (m.canary, m.stable):
        assert x.samples == pytest.approx(30 * WINDOW, rel=0.2)  # scored feedback (30/s), not requests (5/s)


async def test_custom_query_with_placeholders(provider, exporter, prometheus) -> None:
    model = "custom"
    exporter(model, STABLE, rps=40)
    exporter(model, CANARY, rps=20)
    share = check(prometheus={
        "max": 2,
        "query": 'sum(rate(modelpilot_requests_total{model="{{model}}",revision="{{revision}}"}[{{interval}}]))'
                 ' / sum(rate(modelpilot_requests_total{model="{{ model }}",revision="{{stableRevision}}"}'
                 "[{{interval}}]))",
    })

    wait_full_window(prometheus, model, 2)
    m = await provider.measure(share, ctx(model))
    assert m.canary.value == pytest.approx(0.5, abs=0.1)
    assert m.canary.samples is None and m.stable is None  # custom: canary only, no sample count

    per_revision = 'modelpilot_requests_total{model="{{model}}",code="200"}'  # forgot its sum(): one per revision
    several = await provider.measure(check(prometheus={"query": per_revision, "max": 1}), ctx(model))
    assert several.canary.value is None and "2 series" in several.canary.error

    invalid = await provider.measure(check(prometheus={"query": "sum(rate(x[{{interval}}]", "max": 1}), ctx(model))
    assert "bad_data" in invalid.canary.error  # Prometheus' own parse error, passed on

    unknown = await provider.measure(check(prometheus={"query": "x{{revison}}", "max": 1}), ctx(model))
    assert "unknown placeholder" in unknown.canary.error


@pytest.mark.parametrize("revision", ["idle", "unknown"])
async def test_a_revision_without_traffic_is_no_data(provider, exporter, prometheus, revision) -> None:
    model = "quiet"
    exporter(model, "idle", rps=0, feedback_rps=0)  # series exist, all counters stay 0
    prometheus.wait_for_series(f'modelpilot_requests_total{{model="{model}",revision="idle"}}', timeout=20)
    await asyncio.sleep(2)  # a few scrapes, so rates have points
    samples = 0.0 if revision == "idle" else None  # the unknown revision has no series at all
    for c in (check(latency={"max": "100ms"}), check(errorRate={"max": 0.01}), check(accuracy={"min": 0.9})):
        m = await provider.measure(c, ctx(model, revision=revision, stable=None))
        assert m.canary == Measurement(value=None, samples=samples, error=None), c
    # Relative to a stable revision that does not exist: no data to compare with, not a provider error.
    relative = await provider.measure(check(errorRate={"maxIncreaseOverStable": "1%"}), ctx(model, stable=None))
    assert relative.stable == Measurement()


async def test_prometheus_outage_is_an_error_and_values_return(provider, exporter, prometheus) -> None:
    model = "outage"
    exporter(model, CANARY, rps=40, error_rate=0.2)
    c = check(errorRate={"max": 0.5})
    wait_full_window(prometheus, model, 1)
    before = await provider.measure(c, ctx(model, stable=None))
    assert before.canary.value == pytest.approx(0.2, abs=0.02)

    prometheus.stop()
    try:
        t0 = time.monotonic()
        down = await provider.measure(c, ctx(model, stable=None))
        assert time.monotonic() - t0 < provider.timeout + 1
        assert down.canary.value is None and "unreachable" in down.canary.error
    finally:
        prometheus.start()

    again = await measure_until(provider, c, ctx(model, stable=None), enough(50), timeout=15)
    assert again.canary.value == pytest.approx(0.2, abs=0.05)


async def test_a_silent_prometheus_is_bounded_by_the_timeout() -> None:
    """A server that accepts connections and never answers: the measurement is an error after ``timeout``."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            silent = PrometheusProvider(session, f"http://127.0.0.1:{port}", timeout=0.5)
            t0 = time.monotonic()
            m = await silent.measure(check(latency={"max": "1s", "maxIncreaseOverStable": "10%"}), ctx("any"))
            elapsed = time.monotonic() - t0
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert 0.4 < elapsed < 1.5  # canary and stable queried concurrently: one timeout, not four
    assert "did not answer within 0.5 s" in m.canary.error and "did not answer" in m.stable.error
