"""Bounded load generator for the e2e scenarios: Open Inference Protocol v2 requests with ground-truth feedback.

    python e2e/load.py --url http://198.19.0.23 --model iris --eval MODELS/iris-eval.json --rate 15 --duration 30

Every request carries one held-out row of the dataset and its own id; when it succeeds, the true label of that row is
posted as feedback for that id **over the same connection**, so it reaches the pod that made the prediction (a Service
balances connections, not requests, and each pod keeps its own predictions). Each request/feedback pair uses a fresh
connection, so the Service's balancing, and with it the canary weight, applies to every pair.

Bounds: at most ``rate`` requests a second, at most ``max_requests`` in total, never longer than ``duration`` seconds,
at most ``concurrency`` in flight; a request that takes longer than ``timeout`` counts as failed.
Addresses: only loopback (127.0.0.0/8) and the local cluster's ranges (198.18.0.0/15: pods, node, ClusterIPs) are
accepted; anything else is refused before a packet is sent. With a cluster of your own (e.g. kind on 127.0.0.1) use
the API server's service proxy URL and ``--token``.

The report (JSON on stdout, or :class:`Report` from :class:`LoadGenerator`) gives the failed-request share, the
answers per model version, latency quantiles, and the feedback that was scored (correct / incorrect / unknown id).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("198.18.0.0/15"))
MAX_DURATION = 900.0
MAX_RATE = 500.0


class AddressRefused(ValueError):
    """The target is not on this machine's loopback or inside the local cluster's address ranges."""


def check_target(url: str) -> None:
    """Refuse any URL whose host resolves to an address outside :data:`ALLOWED_NETWORKS`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(f"not an http(s) URL: {url!r}")
    infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not any(address in net for net in ALLOWED_NETWORKS):
            raise AddressRefused(f"{parts.hostname} resolves to {address}: only loopback and 198.18.0.0/15 are allowed")


@dataclass
class Report:
    requests: int = 0
    ok: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    feedback_correct: int = 0
    feedback_incorrect: int = 0
    feedback_unknown: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def failed_share(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("latencies")
        out["failures"] = dict(self.failures)
        out["versions"] = dict(self.versions)
        out["failed_share"] = round(self.failed_share, 5)
        out["rate"] = round(self.requests / self.seconds, 2) if self.seconds else 0.0
        for q in (0.5, 0.99):
            value = self.quantile(q)
            out[f"p{int(q * 100)}_ms"] = None if value is None else round(value * 1000, 2)
        return out


class LoadGenerator:
    """Runs :func:`run` in a thread of its own: ``start()``, do things, ``stop()`` returns the :class:`Report`."""

    def __init__(self, url: str, model: str, rows: list[list[float]], labels: list[int], *, rate: float,
                 duration: float, max_requests: int | None = None, concurrency: int = 32, timeout: float = 5.0,
                 feedback: bool = True, headers: dict[str, str] | None = None, verify_tls: bool = True) -> None:
        check_target(url)
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be in (0, {MAX_RATE}]")
        if not 0 < duration <= MAX_DURATION:
            raise ValueError(f"duration must be in (0, {MAX_DURATION}]")
        self.url = url.rstrip("/")
        self.model = model
        self.rows, self.labels = rows, labels
        self.rate, self.duration = rate, duration
        self.max_requests = max_requests if max_requests is not None else int(rate * duration) + 1
        self.concurrency, self.timeout, self.feedback = concurrency, timeout, feedback
        self.headers = headers or {}
        self.verify_tls = verify_tls
        self.report = Report()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    # -- thread control ------------------------------------------------------------------------------------------
    def start(self) -> LoadGenerator:
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self) -> Report:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(self.timeout + 10)
        return self.report

    def wait(self) -> Report:
        if self._thread is not None:
            self._thread.join(self.duration + self.timeout + 10)
        return self.report

    def _main(self) -> None:
        asyncio.run(self.run())

    # -- the load ------------------------------------------------------------------------------------------------
    async def run(self) -> Report:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        ssl_ctx: ssl.SSLContext | bool = True
        if not self.verify_tls:
            ssl_ctx = ssl.create_default_context()
            ssl_ctx.check_hostname = False
            ssl_ctx.verify_mode = ssl.CERT_NONE
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        rng = random.Random(7)
        start = time.monotonic()
        for i in range(self.max_requests):
            due = start + i / self.rate
            now = time.monotonic()
            if due - start > self.duration or self._stop.is_set():
                break
            if due > now:
                try:
                    await asyncio.wait_for(self._stop.wait(), due - now)
                    break
                except TimeoutError:
                    pass
            await slots.acquire()
            row = rng.randrange(len(self.rows))
            task = asyncio.create_task(self._pair(row, ssl_ctx))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout * 2 + 1)
        self.report.seconds = time.monotonic() - start
        return self.report

    async def _pair(self, row: int, ssl_ctx: ssl.SSLContext | bool) -> None:
        report = self.report
        report.requests += 1
        request_id = uuid.uuid4().hex
        body = {"id": request_id, "inputs": [{"name": "input-0", "shape": [1, len(self.rows[row])],
                                              "datatype": "FP64", "data": self.rows[row]}]}
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        connector = aiohttp.TCPConnector(limit=1, ssl=ssl_ctx)  # one connection: the feedback reaches the same pod
        t0 = time.perf_counter()
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self.headers) as session:
                async with session.post(f"{self.url}/v2/models/{self.model}/infer", json=body) as response:
                    answer = await response.read()
                    status = response.status
                report.latencies.append(time.perf_counter() - t0)
                if status != 200:
                    report.failed += 1
                    report.failures[f"http {status}"] += 1
                    return
                report.ok += 1
                report.versions[str(json.loads(answer).get("model_version"))] += 1
                if not self.feedback:
                    return
                truth = {"id": request_id, "truth": [self.labels[row]]}
                async with session.post(f"{self.url}/v2/models/{self.model}/feedback", json=truth) as response:
                    if response.status == 200:
                        scored = await response.json()
                        report.feedback_correct += scored.get("correct", 0)
                        report.feedback_incorrect += scored.get("incorrect", 0)
                        report.feedback_unknown += len(scored.get("unknown_ids", []))
                    else:
                        report.failures[f"feedback http {response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            report.failed += 1
            report.failures[type(error).__name__] += 1


def load_eval(path: Path) -> tuple[list[list[float]], list[int]]:
    data = json.loads(path.read_text())
    return data["x"], data["y"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="base URL of the model Service (a ClusterIP, or a service proxy URL)")
    p.add_argument("--model", required=True, help="served model name")
    p.add_argument("--eval", type=Path, required=True, help="<dataset>-eval.json from model-server/examples/train.py")
    p.add_argument("--rate", type=float, default=10.0, help="requests per second (at most %(default)s)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds, at most %d" % MAX_DURATION)
    p.add_argument("--max-requests", type=int, default=None, help="default: rate x duration")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--no-feedback", dest="feedback", action="store_false")
    p.add_argument("--token", default=None, help="bearer token (for an API server service proxy URL)")
    p.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    args = p.parse_args(argv)
    rows, labels = load_eval(args.eval)
    try:
        gen = LoadGenerator(args.url, args.model, rows, labels, rate=args.rate, duration=args.duration,
                            max_requests=args.max_requests, concurrency=args.concurrency, timeout=args.timeout,
                            feedback=args.feedback, verify_tls=not args.insecure,
                            headers={"Authorization": f"Bearer {args.token}"} if args.token else None)
    except (AddressRefused, ValueError) as error:
        print(f"load.py: {error}", file=sys.stderr)
        return 2
    report = asyncio.run(gen.run())
    print(json.dumps(report.as_json(), indent=2))
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
