"""Adaptive batching: batched results equal single results in submission order; a lone request runs at once; batches
grow with concurrency and respect ``max_batch_size``; a request the model rejects fails alone; over HTTP, concurrent
requests are merged and answered exactly as an unbatched server answers them.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from modelpilot_server.batching import AdaptiveBatcher
from modelpilot_server.models import SklearnModel

from .conftest import infer_body, metric_value, output


@pytest.fixture(scope="module")
def iris_model(models_dir):
    return SklearnModel(joblib.load(models_dir / "iris-good.joblib"), "iris", "1")


@pytest.fixture(scope="module")
def slow_model(models_dir):
    return SklearnModel(joblib.load(models_dir / "iris-slow.joblib"), "iris", "1")


class Recording:
    """Wraps a model's predict and records the row count of every call (called on the inference thread)."""

    def __init__(self, model):
        self.model = model
        self.calls: list[int] = []

    def __call__(self, inputs, outputs):
        self.calls.append(len(inputs[0]))
        return self.model.predict(inputs, outputs)


@pytest.fixture
async def make_batcher():
    executor = ThreadPoolExecutor(1)
    batchers = []

    def make(predict, max_batch_size=32):
        batcher = AdaptiveBatcher(predict, executor, max_batch_size)
        batcher.start()
        batchers.append(batcher)
        return batcher

    yield make
    for batcher in batchers:
        await batcher.stop()
    executor.shutdown()


async def test_batched_results_equal_single_results_in_order(make_batcher, iris_model, iris_eval):
    x, _ = iris_eval
    recording = Recording(iris_model)
    batcher = make_batcher(recording, max_batch_size=16)
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 4, size=40)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) % (len(x) - 4)
    requests = [(x[s:s + n],) for s, n in zip(starts, sizes, strict=True)]
    outputs = ("predict", "predict_proba")

    results = await asyncio.gather(*(batcher.submit(inputs, outputs) for inputs in requests))

    assert len(recording.calls) < len(requests), "concurrent requests were not merged"
    assert max(recording.calls) <= 16
    assert sum(recording.calls) == sum(sizes)
    for inputs, result in zip(requests, results, strict=True):
        single = iris_model.predict(inputs, outputs)
        np.testing.assert_array_equal(result["predict"], single["predict"])
        np.testing.assert_allclose(result["predict_proba"], single["predict_proba"], rtol=1e-12)
        assert result["predict"].shape == (len(inputs[0]),)


async def test_lone_request_runs_at_once(make_batcher, iris_model):
    recording = Recording(iris_model)
    batcher = make_batcher(recording, max_batch_size=64)
    x = np.asarray([[5.1, 3.5, 1.4, 0.2]])
    await batcher.submit((x,), ("predict",))  # warm the thread
    started = time.perf_counter()
    result = await batcher.submit((x,), ("predict",))
    elapsed = time.perf_counter() - started
    assert list(result["predict"]) == [0]
    assert recording.calls == [1, 1]
    assert elapsed < 0.05, f"a lone request waited {elapsed * 1000:.1f} ms"


async def test_batches_grow_with_load(make_batcher, slow_model, iris_eval):
    x, _ = iris_eval
    recording = Recording(slow_model)
    batcher = make_batcher(recording, max_batch_size=64)
    await batcher.submit((x[:1],), ("predict",))
    recording.calls.clear()

    first = asyncio.ensure_future(batcher.submit((x[:1],), ("predict",)))
    while not recording.calls:  # the lone request is already running on the inference thread
        await asyncio.sleep(0.0005)
    await asyncio.gather(first, *(batcher.submit((x[i:i + 1],), ("predict",)) for i in range(29)))

    # the 29 requests that arrived while the model was busy ran as one batch
    assert recording.calls == [1, 29]


async def test_max_batch_size_is_respected(make_batcher, iris_model, iris_eval):
    x, _ = iris_eval
    recording = Recording(iris_model)
    batcher = make_batcher(recording, max_batch_size=5)
    await asyncio.gather(*(batcher.submit((x[i:i + 2],), ("predict",)) for i in range(20)))
    assert max(recording.calls) <= 5
    assert sum(recording.calls) == 40


async def test_a_rejected_request_fails_alone(make_batcher, iris_model, iris_eval):
    x, _ = iris_eval
    batcher = make_batcher(Recording(iris_model))
    bad = np.asarray([[np.nan, 1.0, 1.0, 1.0]])
    jobs = [(x[i:i + 1],) for i in range(6)]
    jobs.insert(3, (bad,))
    results = await asyncio.gather(*(batcher.submit(job, ("predict",)) for job in jobs), return_exceptions=True)
    assert isinstance(results[3], ValueError)
    good = [r for i, r in enumerate(results) if i != 3]
    expected = iris_model.predict((x[:6],), ("predict",))["predict"]
    assert [int(r["predict"][0]) for r in good] == list(expected)


async def test_stop_fails_queued_requests(iris_model):
    executor = ThreadPoolExecutor(1)
    batcher = AdaptiveBatcher(iris_model.predict, executor, 8)  # never started: requests stay queued
    pending = asyncio.ensure_future(batcher.submit((np.ones((1, 4)),), ("predict",)))
    await asyncio.sleep(0)
    await batcher.stop()
    with pytest.raises(RuntimeError, match="shutting down"):
        await pending
    executor.shutdown()


async def test_http_batched_equals_unbatched(make_client, iris_eval, models_dir):
    x, _ = iris_eval
    slow_uri = (models_dir / "iris-slow.joblib").as_uri()
    batched = await make_client(model_uri=slow_uri, max_batch_size=32)
    unbatched = await make_client(model_uri=slow_uri, max_batch_size=1)
    bodies = [infer_body(x[i:i + 1 + i % 3], outputs=[{"name": "predict"}, {"name": "predict_proba"}])
              for i in range(24)]

    async def run(client):
        responses = await asyncio.gather(*(client.post("/v2/models/iris/infer", json=b) for b in bodies))
        return [await r.json() for r in responses]

    got, want = await run(batched), await run(unbatched)
    for a, b in zip(got, want, strict=True):
        assert output(a) == output(b)
        np.testing.assert_allclose(output(a, "predict_proba"), output(b, "predict_proba"), rtol=1e-12)
    calls_batched = await metric_value(batched, "modelpilot_batch_size_count")
    calls_unbatched = await metric_value(unbatched, "modelpilot_batch_size_count")
    assert calls_unbatched == 24
    assert calls_batched < 24
    assert await metric_value(batched, "modelpilot_batch_size_sum") == sum(1 + i % 3 for i in range(24))
