"""A fake model server for metric tests: publishes the metric contract for one model and revision, with traffic it
simulates itself, so a test controls latency, errors and accuracy exactly.

It uses the model server's own :class:`modelpilot_server.metrics.ServerMetrics` (same names, labels and latency
buckets; the contract cannot drift). That module is loaded from its file rather than through the
``modelpilot_server`` package, whose ``__init__`` imports the whole server (scikit-learn, onnxruntime): about 0.6 s
per exporter start for nothing.

Traffic is simulated, never sent: a loop ticks every 50 ms and records the requests that the profile says happened
since the last tick. Latencies are uniform in ``latency_ms +- jitter_ms`` (seeded, so runs repeat); errors and
correct predictions are spread deterministically (an accumulator, not coin flips), so an error rate of 0.1 is one
request in ten and a test can assert tight bounds. The profile changes at runtime through ``POST /control`` (a test
injects a regression at t0). It listens on 127.0.0.1 only and is bounded: at most :data:`MAX_RPS` simulated
requests a second.

Run it by hand::

    python tests/integration/exporter.py --model sentiment --revision abc --port 9101 --profile '{"rps": 50}'

or from tests through :class:`Exporter` (spawns the process, waits for ``/metrics``, ``.set(**profile)``, ``.stop()``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import random
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_METRICS = REPO_ROOT / "model-server" / "modelpilot_server" / "metrics.py"
TICK_SECONDS = 0.05
MAX_RPS = 5000.0


@dataclass(frozen=True)
class Profile:
    """Simulated traffic. Rates are per second; ``error_rate`` and ``accuracy`` are fractions."""

    rps: float = 20.0
    latency_ms: float = 20.0
    jitter_ms: float = 5.0
    error_rate: float = 0.0
    accuracy: float = 1.0
    feedback_rps: float = 0.0

    def validated(self) -> Profile:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{f.name} must be a number >= 0, not {value!r}")
        if self.error_rate > 1 or self.accuracy > 1:
            raise ValueError("error_rate and accuracy are fractions in [0, 1]")
        if self.rps > MAX_RPS or self.feedback_rps > MAX_RPS:
            raise ValueError(f"rates are capped at {MAX_RPS:g}/s")
        return self

    def updated(self, changes: dict[str, Any]) -> Profile:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown profile fields: {sorted(unknown)}")
        return replace(self, **{k: float(v) for k, v in changes.items()}).validated()


# ---------------------------------------------------------------------------------------------------------------------
# The exporter process
# ---------------------------------------------------------------------------------------------------------------------


def _load_server_metrics() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_modelpilot_server_metrics", SERVER_METRICS)
    assert spec is not None and spec.loader is not None, SERVER_METRICS
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Simulation:
    def __init__(self, metrics: Any, profile: Profile, seed: int) -> None:
        self.metrics = metrics
        self.profile = profile
        self.random = random.Random(seed)
        self.due_requests = 0.0  # fractional requests carried over between ticks
        self.due_feedback = 0.0
        self.error_credit = 0.0  # deterministic spreading: an event happens each time its credit reaches 1
        self.correct_credit = 0.0
        self.totals = {"requests": 0, "errors": 0, "correct": 0, "incorrect": 0}

    def advance(self, seconds: float) -> None:
        p = self.profile
        self.due_requests += p.rps * seconds
        n, self.due_requests = int(self.due_requests), self.due_requests % 1
        for _ in range(n):
            self.error_credit += p.error_rate
            failed = self.error_credit >= 1
            if failed:
                self.error_credit -= 1
            latency = p.latency_ms + self.random.uniform(-p.jitter_ms, p.jitter_ms)
            self.metrics.request("infer", 500 if failed else 200, max(latency, 0.0) / 1000)
            self.totals["requests"] += 1
            self.totals["errors"] += failed
        self.due_feedback += p.feedback_rps * seconds
        m, self.due_feedback = int(self.due_feedback), self.due_feedback % 1
        correct = 0
        for _ in range(m):
            self.correct_credit += p.accuracy
            if self.correct_credit >= 1:
                self.correct_credit -= 1
                correct += 1
        if m:
            self.metrics.feedback(correct, m - correct)
            self.totals["correct"] += correct
            self.totals["incorrect"] += m - correct


async def _serve(model: str, revision: str, port: int, profile: Profile, seed: int) -> None:
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    server_metrics = _load_server_metrics()
    sim = _Simulation(server_metrics.ServerMetrics(registry, model, revision, ("infer",)), profile, seed)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def control(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                sim.profile = sim.profile.updated(await request.json())
            except (ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"profile": asdict(sim.profile), "totals": sim.totals})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/control", control)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    last = loop.time()
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_SECONDS)
        now = loop.time()
        sim.advance(min(now - last, 1.0))  # a stalled loop does not produce a burst
        last = now
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", default="{}", help="JSON object of Profile fields")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    profile = Profile().updated(json.loads(args.profile))
    asyncio.run(_serve(args.model, args.revision, args.port, profile, args.seed))


# ---------------------------------------------------------------------------------------------------------------------
# The handle tests use
# ---------------------------------------------------------------------------------------------------------------------


class Exporter:
    """An exporter process for ``model`` at ``revision`` on a free 127.0.0.1 port; ``profile`` as in :class:`Profile`.

    Process handling as in :mod:`controlplane` (own group, dies with the test process, SIGTERM then SIGKILL).
    """

    def __init__(self, model: str, revision: str, log_dir: Path, *, seed: int = 1, **profile: float) -> None:
        from controlplane import _free_port

        Profile().updated(profile)  # fail here, not in the child
        self.model = model
        self.revision = revision
        self.port = _free_port()
        self.log_path = Path(log_dir) / f"exporter-{model}-{revision}-{self.port}.log"
        self._argv = [sys.executable, str(Path(__file__).resolve()), "--model", model, "--revision", revision,
                      "--port", str(self.port), "--profile", json.dumps(profile), "--seed", str(seed)]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def start(self, timeout: float = 15.0) -> Self:
        from controlplane import _die_with_parent, _http_ok, _tail

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only signal/session setup, no locks taken
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _http_ok(f"{self.url}/metrics"):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"exporter did not start; last lines of {self.log_path}:\n{_tail(self.log_path)}")

    def set(self, **profile: float) -> dict[str, Any]:
        """Change the traffic profile now (only the given fields); returns the new profile and the totals so far."""
        return self._control(json.dumps(profile).encode())

    def state(self) -> dict[str, Any]:
        """``{"profile": {...}, "totals": {"requests", "errors", "correct", "incorrect"}}``."""
        return self._control(None)

    def _control(self, body: bytes | None) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}/control", data=body, method="POST" if body else "GET",
                                         headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            return json.load(response)

    def stop(self, timeout: float = 5.0) -> None:
        from controlplane import _signal_group, _wait_exited

        process, self.process = self.process, None
        if process is None:
            return
        _signal_group(process, signal.SIGTERM)
        if not _wait_exited(process, time.monotonic() + timeout):
            _signal_group(process, signal.SIGKILL)
        _wait_exited(process, None)
        _signal_group(process, signal.SIGKILL)
        process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
