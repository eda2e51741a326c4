"""Throughput and latency of the model server against KServe's Python model server, on the same scikit-learn model.

    python benchmarks/model_server.py [--duration 10] [--connections 32 1] [--skip-kserve]

What it does:

* trains the iris models with ``model-server/examples/train.py`` into a temporary directory (seconds, no download);
* serves ``iris-good.joblib`` (a standardised logistic regression: tiny per row, so per-call overhead dominates and a
  batch is much cheaper per item) by each contender in turn, every server pinned to CPU 0 with ``taskset``;
* drives each with the same closed-loop load generator pinned to CPU 1: N keep-alive connections, each sending the
  next request as soon as the previous answer arrived, cycling through 64 different one-row v2 requests; a warm-up
  period is discarded, then requests are counted for ``--duration`` seconds;
* all servers start together and are measured in interleaved rounds (idle servers cost nothing), so slow drifts of
  the machine hit every contender alike; the table shows medians, then the ratios the goals are about, all from the
  same run.

Contenders: KServe 0.21 (in its own virtualenv, created on first use under ``~/.cache/modelpilot/kserve-venv``;
gRPC off, one worker, REST on 127.0.0.1, access and latency logging off, as a fair baseline); ours unbatched
(``max_batch_size=1``); ours batched (32); ours with the response cache (every request a hit after the first 64);
ours cache-hit with metrics off. Metrics cost is measured on the cache-hit path because it is the cheapest request
(no model call), so metrics are the largest share of it: an upper bound of their cost on any path. Besides req/s the
table shows the server's CPU time per request (from /proc) and its inverse, requests per CPU-second: they stay
meaningful when other work on the machine takes CPU 0 away from the server and makes req/s noisy.

The load generator is a minimal HTTP/1.1 client on asyncio protocols with pre-encoded requests, so that it is not the
bottleneck (one core of it drives a trivial server at over 50,000 req/s, ten times the rates measured here).
Everything listens on 127.0.0.1 only, and every load loop is bounded by time. Numbers are measurements, not
assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KSERVE_VERSION = "0.21.0"
DEFAULT_VENV = Path.home() / ".cache" / "modelpilot" / "kserve-venv"
SERVER_CPU, LOAD_CPU = 0, 1

KSERVE_SERVER = textwrap.dedent('''
    """A scikit-learn model behind KServe's Python model server, bound to 127.0.0.1, quiet."""
    import argparse
    import logging
    import warnings

    warnings.filterwarnings("ignore")

    import joblib
    import kserve.protocol.rest.server as rest
    from kserve import Model, ModelServer, model_server
    from kserve.utils.utils import get_predict_input, get_predict_response

    _init = rest.RESTServer.__init__

    def _loopback_init(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self.config.host = "127.0.0.1"  # KServe has no flag for the REST bind address

    rest.RESTServer.__init__ = _loopback_init

    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()


    class SklearnModel(Model):
        def __init__(self, name, path):
            super().__init__(name)
            self.path = path

        def load(self):
            self.model = joblib.load(self.path)
            self.ready = True
            return self.ready

        def predict(self, payload, headers=None, response_headers=None):
            result = self.model.predict(get_predict_input(payload))
            return get_predict_response(payload, result, self.name)


    if __name__ == "__main__":
        model = SklearnModel(args.model_name, args.model_path)
        model.load()
        for name in ("uvicorn.access", "kserve.trace", "kserve", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)
        ModelServer().start([model])
''')


# -- load generator -------------------------------------------------------------------------------------------------

class _Connection(asyncio.Protocol):
    """One keep-alive connection in a closed loop: send, wait for the full answer, send the next."""

    def __init__(self, requests: list[bytes], offset: int, run: _Run) -> None:
        self.requests = requests
        self.index = offset
        self.run = run
        self.buffer = bytearray()
        self.sent_at = 0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        self.index = (self.index + 1) % len(self.requests)
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.requests[self.index])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:")
        if start < 0:
            raise RuntimeError(f"response without content-length: {head[:200]!r}")
        length = int(head[start + 15:head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buffer[:end + 4 + length]
        now = time.perf_counter_ns()
        self.run.record(now, now - self.sent_at, status)
        if now < self.run.stop_ns:
            self._send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _Run:
    def __init__(self, warmup_until_ns: int, stop_ns: int) -> None:
        self.warmup_until_ns = warmup_until_ns
        self.stop_ns = stop_ns
        self.latencies: list[int] = []
        self.errors = 0
        self.completed = 0  # including warm-up, to match the server's CPU time over the whole drive

    def record(self, now: int, latency: int, status: int) -> None:
        self.completed += 1
        if now < self.warmup_until_ns:
            return
        if status == 200:
            self.latencies.append(latency)
        else:
            self.errors += 1


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = float("nan")  # server CPU time per request: robust where req/s is noisy (a shared machine)

    @property
    def capacity(self) -> float:
        """Requests one fully available core would answer per second at this CPU cost."""
        return 1e6 / self.cpu_us


async def drive(server: Server, requests: list[bytes], connections: int, duration: float, warmup: float) -> Result:
    port = server.port
    loop = asyncio.get_running_loop()
    cpu_before = server.cpu_seconds()
    start = time.perf_counter_ns()
    run = _Run(start + int(warmup * 1e9), start + int((warmup + duration) * 1e9))
    protocols = []
    for i in range(connections):
        _, protocol = await loop.create_connection(
            lambda i=i: _Connection(requests, i * 7, run), "127.0.0.1", port)
        protocols.append(protocol)
    await asyncio.wait_for(asyncio.gather(*(p.closed for p in protocols)), warmup + duration + 30)
    measured = (time.perf_counter_ns() - run.warmup_until_ns) / 1e9
    cpu_us = (server.cpu_seconds() - cpu_before) / max(run.completed, 1) * 1e6
    latencies = np.asarray(run.latencies) / 1e6
    if not len(latencies):
        return Result(0.0, float("nan"), float("nan"), run.errors, cpu_us)
    return Result(len(latencies) / measured, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)),
                  run.errors, cpu_us)


def build_requests(eval_rows: np.ndarray, path: str) -> list[bytes]:
    requests = []
    for row in eval_rows[:64]:
        body = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                       "data": [round(float(v), 3) for v in row]}]}).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        requests.append(head + body)
    return requests


# -- servers --------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.port = name, port
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(["taskset", "-c", str(SERVER_CPU), *argv], env={**os.environ, **env},
                                        stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/health/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


def ensure_kserve_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import kserve, sklearn, joblib; print(sklearn.__version__)"]
    import sklearn

    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == sklearn.__version__:
            return python
    print(f"creating the KServe virtualenv in {venv} (about 650 MB, once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"kserve=={KSERVE_VERSION}",
                    f"scikit-learn=={sklearn.__version__}", "joblib"], check=True)
    return python


def ours(name: str, model: Path, port: int, logs: Path, **settings: str) -> Server:
    env = {"MODEL_NAME": "iris", "MODEL_URI": model.as_uri(), "MODELPILOT_HOST": "127.0.0.1",
           "MODELPILOT_PORT": str(port), "MODELPILOT_REVISION": "bench", "MODELPILOT_LOG_LEVEL": "WARNING",
           "MODELPILOT_DRAIN_DELAY_SECONDS": "0", **settings}
    return Server(name, [sys.executable, "-m", "modelpilot_server"], env, port, logs / f"{name}.log")


def kserve(python: Path, model: Path, port: int, logs: Path) -> Server:
    script = logs / "kserve_server.py"
    script.write_text(KSERVE_SERVER)
    argv = [str(python), str(script), "--model_name", "iris", "--model_path", str(model), "--http_port", str(port),
            "--enable_grpc", "false", "--workers", "1", "--enable_latency_logging", "false"]
    return Server("kserve", argv, {"PYTHONWARNINGS": "ignore"}, port, logs / "kserve.log")


# -- main -----------------------------------------------------------------------------------------------------------

CONTENDERS = {
    "kserve": None,
    "ours unbatched": {"MODELPILOT_MAX_BATCH_SIZE": "1"},
    "ours batched": {"MODELPILOT_MAX_BATCH_SIZE": "32"},
    "ours cache-hit": {"MODELPILOT_MAX_BATCH_SIZE": "32", "MODELPILOT_CACHE_MAX_BYTES": str(64 << 20)},
    "ours cache-hit, metrics off": {"MODELPILOT_MAX_BATCH_SIZE": "32", "MODELPILOT_CACHE_MAX_BYTES": str(64 << 20),
                                    "MODELPILOT_METRICS": "false"},
}


def train_models(out: Path) -> tuple[Path, np.ndarray]:
    spec = importlib.util.spec_from_file_location("train_examples", REPO / "model-server" / "examples" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train("iris", out, slow_trees=50, onnx=False)
    rows = np.asarray(json.loads((out / "iris-eval.json").read_text())["x"])
    return out / "iris-good.joblib", rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="discarded seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians")
    parser.add_argument("--connections", type=int, nargs="+", default=[32, 1])
    parser.add_argument("--kserve-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--skip-kserve", action="store_true")
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), help="measure only these contenders")
    args = parser.parse_args()
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        parser.error("needs taskset and at least two CPUs (one for the servers, one for the load)")
    os.sched_setaffinity(0, {LOAD_CPU})
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    samples: dict[tuple[str, int], list[Result]] = {}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="modelpilot-bench-") as tmp:
        work = Path(tmp)
        model, rows = train_models(work)
        requests = build_requests(rows, "/v2/models/iris/infer")
        skip_kserve = args.skip_kserve or (args.only and "kserve" not in args.only)
        kserve_python = None if skip_kserve else ensure_kserve_venv(args.kserve_venv)
        servers: dict[str, Server] = {}
        try:
            for name, settings in CONTENDERS.items():
                if (settings is None and kserve_python is None) or (args.only and name not in args.only):
                    continue
                port = free_port()
                servers[name] = kserve(kserve_python, model, port, work) if settings is None else \
                    ours(name.replace(" ", "-").replace(",", ""), model, port, work, **settings)
            for server in servers.values():
                server.wait_ready()
            # Interleaved rounds, order rotated each round: slow drifts of the machine hit every contender alike.
            names = list(servers)
            for round_index in range(args.rounds):
                order = names[round_index % len(names):] + names[:round_index % len(names)]
                for connections in args.connections:
                    for name in order:
                        result = asyncio.run(
                            drive(servers[name], requests, connections, args.duration, args.warmup))
                        samples.setdefault((name, connections), []).append(result)
                        print(f"round {round_index + 1} {name:28} {connections:3} conns {result.rps:9.0f} req/s  "
                              f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                              f"cpu {result.cpu_us:6.0f} us/req  errors {result.errors}", file=sys.stderr)
            rss = {name: server.rss_mb() for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
    results = {(name, c): median(samples[(name, c)]) for c in args.connections for name in servers
               if (name, c) in samples}
    print_table(results, rss, args)
    return 0


def median(runs: list[Result]) -> Result:
    return Result(
        rps=float(np.median([r.rps for r in runs])),
        p50_ms=float(np.median([r.p50_ms for r in runs])),
        p99_ms=float(np.median([r.p99_ms for r in runs])),
        errors=sum(r.errors for r in runs),
        cpu_us=float(np.median([r.cpu_us for r in runs])),
    )


def print_table(results: dict[tuple[str, int], Result], rss: dict[str, float], args: argparse.Namespace) -> None:
    connections = args.connections
    print(f"\niris LogisticRegression pipeline, one row per request; each server pinned to CPU {SERVER_CPU}, load on "
          f"CPU {LOAD_CPU}; median of {args.rounds} interleaved runs of {args.duration:g} s\n")
    print("| contender | conns | req/s | p50 ms | p99 ms | server CPU us/req | req/s per CPU-second | errors "
          "| RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, conns), r in results.items():
        print(f"| {name} | {conns} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_us:,.0f} | "
              f"{r.capacity:,.0f} | {r.errors} | {rss.get(name, float('nan')):.0f} |")

    def get(name: str, conns: int) -> Result | None:
        return results.get((name, conns))

    print("\n| comparison | value | goal |")
    print("|---|---:|---|")
    high = max(connections)
    kserve_r, batched, unbatched = get("kserve", high), get("ours batched", high), get("ours unbatched", high)
    if kserve_r and batched:
        print(f"| ours batched / KServe req/s, {high} conns | {batched.rps / kserve_r.rps:.2f}x | >= 2x |")
        print(f"| ours batched / KServe req/s per CPU-second, {high} conns | "
              f"{batched.capacity / kserve_r.capacity:.2f}x | >= 2x |")
        print(f"| ours batched / KServe p99, {high} conns | {batched.p99_ms / kserve_r.p99_ms:.2f}x | < 1x |")
    if kserve_r and unbatched:
        print(f"| ours unbatched / KServe req/s, {high} conns | {unbatched.rps / kserve_r.rps:.2f}x | |")
        print(f"| ours unbatched / KServe p99, {high} conns | {unbatched.p99_ms / kserve_r.p99_ms:.2f}x | |")
    if batched and unbatched:
        print(f"| batched / unbatched req/s, {high} conns | {batched.rps / unbatched.rps:.2f}x | >= 1.5x |")
        print(f"| batched / unbatched req/s per CPU-second, {high} conns | "
              f"{batched.capacity / unbatched.capacity:.2f}x | >= 1.5x |")
    one_b, one_u = get("ours batched", 1), get("ours unbatched", 1)
    if one_b and one_u:
        print(f"| batched / unbatched p50, 1 conn | {one_b.p50_ms / one_u.p50_ms:.2f}x | <= 1.1x |")
    for conns in connections:
        off, on = get("ours cache-hit, metrics off", conns), get("ours cache-hit", conns)
        if off and on:
            print(f"| metrics cost, req/s (1 - on/off), {conns} conns | {(1 - on.rps / off.rps) * 100:.1f}% | < 5% |")
            print(f"| metrics cost, server CPU per request (on/off - 1), {conns} conns | "
                  f"{(on.cpu_us / off.cpu_us - 1) * 100:.1f}% | < 5% |")
    hit = get("ours cache-hit", high)
    if hit and batched:
        print(f"| cache-hit / batched req/s, {high} conns | {hit.rps / batched.rps:.2f}x | |")


if __name__ == "__main__":
    sys.exit(main())
