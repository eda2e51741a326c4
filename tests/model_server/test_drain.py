"""Graceful drain: while draining the server reports not ready but still answers; on SIGTERM a real process turns
not ready at once, keeps serving during the drain delay, finishes every in-flight request, and exits with status 0.
"""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import numpy as np
from modelpilot_server.state import STATE

from .conftest import infer_body


async def test_draining_app_is_not_ready_but_serves(client):
    client.app[STATE].draining = True
    response = await client.get("/v2/health/ready")
    assert response.status == 503 and "shutting down" in (await response.json())["reason"]
    assert (await client.get("/v2/models/iris/ready")).status == 503
    assert (await client.get("/v2/health/live")).status == 200
    response = await client.post("/v2/models/iris/infer", json=infer_body([[5.1, 3.5, 1.4, 0.2]]))
    assert response.status == 200


async def test_sigterm_finishes_in_flight_requests_then_exits(start_server, models_dir, iris_eval):
    x, _ = iris_eval
    server = start_server(MODEL_URI=(models_dir / "iris-slow.joblib").as_uri(), MODELPILOT_MAX_BATCH_SIZE="1",
                          MODELPILOT_DRAIN_DELAY_SECONDS="0.5", MODELPILOT_DRAIN_TIMEOUT_SECONDS="20")
    rows = np.tile(x, (60, 1))  # a few thousand rows: each request keeps the slow forest busy for a while
    body = infer_body(rows)
    async with aiohttp.ClientSession(base_url=server.url) as session:
        async def infer():
            async with session.post("/v2/models/iris/infer", json=body) as response:
                return response.status, await response.json()

        requests = [asyncio.ensure_future(infer()) for _ in range(4)]
        deadline = time.monotonic() + 20
        while await _inflight(session) < 5:  # four requests and the scrape itself
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)

        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.1)
        async with session.get("/v2/health/ready") as response:
            assert response.status == 503
        assert server.process.poll() is None

        results = await asyncio.gather(*requests)
    assert [status for status, _ in results] == [200] * 4
    assert all(document["outputs"][0]["shape"] == [len(rows)] for _, document in results)
    assert await asyncio.to_thread(server.process.wait, 20) == 0
    assert "drained; exiting" in server.log()


async def _inflight(session: aiohttp.ClientSession) -> float:
    async with session.get("/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("modelpilot_inflight_requests{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
