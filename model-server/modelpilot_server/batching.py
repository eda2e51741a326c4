"""Adaptive batching: merge concurrent requests into one model call, with no fixed wait.

How it works: requests are queued, and one worker task takes *everything that is waiting* (up to ``max_batch_size``
rows) as the next batch, runs it on the inference thread, and loops. So

* a lone request finds the worker idle and is run at once: there is no batching window to wait out, and latency at
  low load is the unbatched latency;
* while a batch runs, new requests pile up and become the next batch: batch size follows load by itself, and a model
  whose per-call overhead dominates (most scikit-learn models) serves many more rows per second.

The model runs on a single dedicated thread, never on the event loop, so the loop keeps parsing requests while the
model works. One thread is deliberate: numeric libraries already spread a large call over cores, and two concurrent
calls on one core only compete.

A batch is one ``predict`` call on the concatenated inputs, and the results are sliced back per request in submission
order. If a merged call fails, each request of the batch is retried alone, so a request the model rejects fails by
itself instead of failing its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

Predict = Callable[[tuple[np.ndarray, ...], Collection[str]], dict[str, np.ndarray]]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    inputs: tuple[np.ndarray, ...]
    outputs: Collection[str]
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]


class AdaptiveBatcher:
    """Runs ``predict`` on batches of concurrently submitted requests.

    ``observe_batch`` is told the row count of every model call (the ``modelpilot_batch_size`` histogram).
    """

    def __init__(
        self,
        predict: Predict,
        executor: Executor,
        max_batch_size: int,
        observe_batch: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self._max_rows = max_batch_size
        self._observe_batch = observe_batch
        self._queue: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="adaptive-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued fail (the server only stops after in-flight requests finished)."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    async def submit(self, inputs: tuple[np.ndarray, ...], outputs: Collection[str]) -> dict[str, np.ndarray]:
        """The named outputs for ``inputs``, computed alone or as part of a batch."""
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(inputs, outputs, int(inputs[0].shape[0]), future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            jobs = self._take()
            self._observe_batch(sum(job.rows for job in jobs))
            try:
                results = await loop.run_in_executor(self._executor, self._call, jobs)
            except Exception as error:  # _call reports per job; this is a broken executor
                results = [error] * len(jobs)
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _take(self) -> list[_Job]:
        """The oldest job, plus every following job while the batch stays within the row limit."""
        jobs = [self._queue.popleft()]
        rows = jobs[0].rows
        while self._queue and rows + self._queue[0].rows <= self._max_rows:
            job = self._queue.popleft()
            rows += job.rows
            jobs.append(job)
        return jobs

    def _call(self, jobs: list[_Job]) -> list[dict[str, np.ndarray] | Exception]:
        """Runs on the inference thread: one merged model call, sliced back per job."""
        if len(jobs) == 1:
            return [self._call_one(jobs[0])]
        names = list(dict.fromkeys(name for job in jobs for name in job.outputs))
        try:
            merged = tuple(np.concatenate(parts) for parts in zip(*(job.inputs for job in jobs), strict=True))
            results = self._predict(merged, names)
        except Exception:
            log.debug("merged call of %d requests failed; retrying them one by one", len(jobs), exc_info=True)
            return [self._call_one(job) for job in jobs]
        answers: list[dict[str, np.ndarray] | Exception] = []
        start = 0
        for job in jobs:
            stop = start + job.rows
            answers.append({name: results[name][start:stop] for name in job.outputs})
            start = stop
        return answers

    def _call_one(self, job: _Job) -> dict[str, np.ndarray] | Exception:
        try:
            return self._predict(job.inputs, job.outputs)
        except Exception as error:
            return error
