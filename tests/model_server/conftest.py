"""Fixtures of the model server tests: real models trained once per session, apps served on 127.0.0.1.

Models come from ``model-server/examples/train.py`` (iris, seeded, a few seconds), plus a tiny text pipeline for BYTES
inputs. Nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from modelpilot_server import ServerConfig, create_app

REPO = Path(__file__).resolve().parents[2]


def _train_module() -> Any:
    spec = importlib.util.spec_from_file_location("train_examples", REPO / "model-server" / "examples" / "train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    manifest = _train_module().train("iris", out, slow_trees=150, onnx=True)
    (out / "manifest.json").write_text(json.dumps(manifest))
    _train_text_model(out / "text.joblib")
    return out


def _train_text_model(path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = ["great product", "really great", "love it", "awful thing", "really bad", "hate it"] * 3
    labels = ["pos", "pos", "pos", "neg", "neg", "neg"] * 3
    joblib.dump(make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels), path)


@pytest.fixture(scope="session")
def manifest(models_dir: Path) -> dict[str, dict]:
    return json.loads((models_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def iris_eval(models_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    data = json.loads((models_dir / "iris-eval.json").read_text())
    return np.asarray(data["x"]), np.asarray(data["y"])


@pytest.fixture
def base_config(models_dir: Path) -> ServerConfig:
    return ServerConfig(
        model_name="iris", model_uri=(models_dir / "iris-good.joblib").as_uri(), revision="rev-a",
        host="127.0.0.1", port=0, drain_delay_seconds=0.0, drain_timeout_seconds=5.0,
    )


ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(base_config: ServerConfig) -> AsyncIterator[ClientFactory]:
    """Start an app with ``base_config`` plus overrides; waits until ready unless ``wait=False``."""
    clients: list[TestClient] = []

    async def factory(*, wait: bool = True, load: Any = None, **overrides: Any) -> TestClient:
        config = replace(base_config, **overrides)
        app = create_app(config) if load is None else create_app(config, load=load)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        if wait:
            await wait_ready(client)
        return client

    yield factory
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:
    return await make_client()


async def wait_ready(client: TestClient, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get("/v2/health/ready")
        if response.status == 200:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"server not ready after {timeout} s: {await response.text()}")
        await asyncio.sleep(0.02)


def infer_body(rows: Any, *, datatype: str = "FP64", name: str = "input-0", **extra: Any) -> dict[str, Any]:
    array = np.asarray(rows)
    tensor = {"name": name, "datatype": datatype, "shape": list(array.shape), "data": array.reshape(-1).tolist()}
    return {"inputs": [tensor], **extra}


def output(document: dict[str, Any], name: str = "predict") -> list[Any]:
    for tensor in document["outputs"]:
        if tensor["name"] == name:
            return tensor["data"]
    raise AssertionError(f"no output {name!r} in {document}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def metric_value(client: TestClient, name: str, **labels: str) -> float:
    """The value of one sample on /metrics (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
async def file_server() -> AsyncIterator[Callable[[Path], Awaitable[str]]]:
    """Serve a directory over real HTTP on 127.0.0.1; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(directory: Path) -> str:
        app = web.Application()
        app.router.add_static("/", directory)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


class ServerProcess:
    """``python -m modelpilot_server`` as a real process on 127.0.0.1, configured through the environment."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        import os
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {**os.environ, "MODELPILOT_HOST": "127.0.0.1", "MODELPILOT_PORT": str(self.port), **env}
        self._log = log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "modelpilot_server"], env=full_env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import time
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def start_server(models_dir: Path, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real server processes serving the iris model; each is stopped at the end of the test."""
    servers: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        base = {"MODEL_NAME": "iris", "MODEL_URI": (models_dir / "iris-good.joblib").as_uri(),
                "MODELPILOT_REVISION": "rev-p", "MODELPILOT_DRAIN_DELAY_SECONDS": "0"}
        server = ServerProcess({**base, **env}, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()
