"""Response cache: the in-process LRU (size bound, TTL, recency) with a fake clock; hits and misses through the
app (same outputs, new ids, counted in ``modelpilot_cache_requests_total``, revision in the key); the Redis backend
against a real ``redis-server`` on 127.0.0.1 (shared between two apps, entries expire), and a Redis outage: the
server is killed, requests keep succeeding as misses, and caching resumes when Redis is back.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
import redis
from modelpilot_server.cache import MemoryCache, cache_key

from .conftest import free_port, infer_body, metric_value, output

ROW = [[6.7, 3.0, 5.2, 2.3]]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


async def test_memory_cache_lru_bound_and_ttl():
    clock = Clock()
    cache = MemoryCache(max_bytes=60, ttl_seconds=10, clock=clock)
    await cache.put(b"a", b"x" * 19)  # 20 bytes with its key
    await cache.put(b"b", b"x" * 19)
    assert await cache.get(b"a") == b"x" * 19  # a is now the most recent
    await cache.put(b"c", b"x" * 29)  # 30 bytes: b, the least recent, must go
    assert await cache.get(b"b") is None
    assert await cache.get(b"a") is not None and await cache.get(b"c") is not None
    assert cache.size_bytes == 50
    await cache.put(b"huge", b"x" * 100)  # larger than the whole cache: not stored, nothing evicted
    assert len(cache) == 2
    clock.now = 11
    assert await cache.get(b"a") is None and len(cache) == 1


def test_cache_key_depends_on_revision_and_input():
    assert cache_key("r1", b"input") != cache_key("r2", b"input")
    assert cache_key("r1", b"input") != cache_key("r1", b"other")
    assert cache_key("r1", b"input") == cache_key("r1", b"input")


async def test_hits_return_the_same_outputs_with_new_ids(make_client):
    client = await make_client(cache_max_bytes=1 << 20)
    first = await (await client.post("/v2/models/iris/infer", json=infer_body(ROW))).json()
    # the same tensor spelled differently (INT64 vs FP64 is not the same tensor, but 6.7 vs 6.70 is)
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": [6.70, 3.0, 5.20, 2.30]}]}
    second = await (await client.post("/v2/models/iris/infer", json=body)).json()
    assert second["outputs"] == first["outputs"] and second["id"] != first["id"]
    third = await (await client.post("/v2/models/iris/infer",
                                     json=infer_body(ROW, outputs=[{"name": "predict_proba"}]))).json()
    assert third["outputs"][0]["name"] == "predict_proba"
    assert await metric_value(client, "modelpilot_cache_requests_total", result="hit") == 1
    assert await metric_value(client, "modelpilot_cache_requests_total", result="miss") == 2
    assert await metric_value(client, "modelpilot_batch_size_count") == 2  # the hit never reached the model


# -- Redis ----------------------------------------------------------------------------------------------------------

class RedisServer:
    """A throwaway redis-server on 127.0.0.1 with persistence off."""

    def __init__(self, port: int, workdir):
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def keys(self) -> list[bytes]:
        return redis.Redis(host="127.0.0.1", port=self.port).keys("modelpilot:*")


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()


async def _wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_redis_cache_is_shared_between_replicas(make_client, redis_server):
    one = await make_client(redis_url=redis_server.url)
    two = await make_client(redis_url=redis_server.url)
    first = await (await one.post("/v2/models/iris/infer", json=infer_body(ROW))).json()
    await _wait_for(lambda: len(redis_server.keys()) == 1)  # stored in the background
    assert redis_server.keys()[0].startswith(b"modelpilot:iris:rev-a:")
    second = await (await two.post("/v2/models/iris/infer", json=infer_body(ROW))).json()
    assert second["outputs"] == first["outputs"]
    assert await metric_value(two, "modelpilot_cache_requests_total", result="hit") == 1
    assert await metric_value(two, "modelpilot_batch_size_count") == 0


async def test_redis_entries_expire(make_client, redis_server):
    client = await make_client(redis_url=redis_server.url, cache_ttl_seconds=0.2)
    await client.post("/v2/models/iris/infer", json=infer_body(ROW))
    await _wait_for(lambda: len(redis_server.keys()) == 1)
    await _wait_for(lambda: len(redis_server.keys()) == 0)


async def test_redis_outage_degrades_to_no_cache(make_client, redis_server):
    client = await make_client(redis_url=redis_server.url, redis_retry_seconds=0.3)
    expected = output(await (await client.post("/v2/models/iris/infer", json=infer_body(ROW))).json())
    await _wait_for(lambda: len(redis_server.keys()) == 1)

    redis_server.kill()
    for _ in range(5):
        response = await client.post("/v2/models/iris/infer", json=infer_body(ROW))
        assert response.status == 200
        assert output(await response.json()) == expected
    assert await metric_value(client, "modelpilot_cache_requests_total", result="hit") == 0
    assert await metric_value(client, "modelpilot_requests_total", endpoint="infer", code="200") == 6

    redis_server.start()  # empty again: persistence is off
    await asyncio.sleep(0.35)  # past the retry window
    await client.post("/v2/models/iris/infer", json=infer_body(ROW))
    await _wait_for(lambda: len(redis_server.keys()) == 1)
    response = await client.post("/v2/models/iris/infer", json=infer_body(ROW))
    assert output(await response.json()) == expected
    assert await metric_value(client, "modelpilot_cache_requests_total", result="hit") == 1
