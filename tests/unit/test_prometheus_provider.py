"""``PrometheusProvider`` against canned answers of the Prometheus HTTP API, served by an in-process aiohttp server on
127.0.0.1 (the session is injected, nothing is patched).

Covered: a vector of one sample, a scalar, an empty vector (no data), NaN (no data), +Inf (passed on), several series
(error), a matrix (error), an API error with Prometheus' message, a non-JSON 503, and that every query of one check
(value and samples, canary and stable) carries the same evaluation ``time`` from the injected clock.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from modelpilot.api.strategy import MetricCheck
from modelpilot.metrics import PrometheusProvider
from modelpilot.rollout.measurement import Measurement, QueryContext

CTX = QueryContext(model="m", namespace="ns", revision="canary", stable_revision="stable", window_seconds=30)
CUSTOM = MetricCheck.model_validate({"name": "c", "prometheus": {"query": "q", "max": 1}})


def vector(*values: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]}}


class Canned:
    """Answers every query with ``answer`` (status, JSON body or text) and records the query parameters."""

    def __init__(self) -> None:
        self.answer: tuple[int, Any] = (200, vector("1"))
        self.seen: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.query))
        status, body = self.answer
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)


@pytest.fixture
async def canned() -> AsyncIterator[tuple[Canned, PrometheusProvider]]:
    fake = Canned()
    app = web.Application()
    app.router.add_get("/prefix/api/v1/query", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield fake, PrometheusProvider(session, f"http://127.0.0.1:{server.port}/prefix/", timeout=2,
                                           clock=lambda: 1_700_000_000.25)
    finally:
        await server.close()


CASES = [
    ("one sample", (200, vector("0.25")), Measurement(value=0.25)),
    ("scalar", (200, {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}),
     Measurement(value=3.0)),
    ("empty vector", (200, vector()), Measurement()),
    ("NaN", (200, vector("NaN")), Measurement()),
    ("several series", (200, vector("1", "2")), "2 series"),
    ("matrix", (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}), "matrix"),
    ("API error", (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}),
     "400 bad_data: parse error at char 3"),
    ("not JSON", (503, "Service Unavailable"), "HTTP 503"),
    ("success without data", (200, {"status": "success"}), "unexpected query result"),
]


@pytest.mark.parametrize(("answer", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_answers(canned, answer, expected) -> None:
    fake, provider = canned
    fake.answer = answer
    m = (await provider.measure(CUSTOM, CTX)).canary
    if isinstance(expected, Measurement):
        assert m == expected
    else:
        assert m.value is None and expected in m.error


async def test_infinity_is_a_value(canned) -> None:
    fake, provider = canned
    fake.answer = (200, vector("+Inf"))
    assert math.isinf((await provider.measure(CUSTOM, CTX)).canary.value)


async def test_one_evaluation_time_for_every_query_of_a_check(canned) -> None:
    fake, provider = canned
    relative = MetricCheck.model_validate({"name": "l", "latency": {"quantile": 0.9, "maxIncreaseOverStable": "5%"}})
    m = await provider.measure(relative, CTX)
    assert m.canary == m.stable == Measurement(value=1.0, samples=1.0)
    assert len(fake.seen) == 4  # value and samples, canary and stable
    assert {q["time"] for q in fake.seen} == {"1700000000.250"}
    assert {q["timeout"] for q in fake.seen} == {"2s"}
    assert sum('revision="stable"' in q["query"] for q in fake.seen) == 2
