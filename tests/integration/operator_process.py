"""The real operator as a child process (``python -m modelpilot``), started and stopped by tests.

A process, not an in-process kopf task: the tests then exercise the console entry point, the kopf settings, the
liveness endpoint and the metrics server exactly as a deployment runs them, and "kill the operator" is a real kill.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log_dir: Path, *, resync_seconds: float = 5.0, extra: list[str] = ()):
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.resync_seconds = resync_seconds
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self, timeout: float = 30.0) -> OperatorProcess:
        assert self.process is None, "already running"
        self.starts += 1
        argv = [
            sys.executable, "-m", "modelpilot",
            "--kubeconfig", str(self.kubeconfig),
            "--health-address", f"127.0.0.1:{self.health_port}",
            "--metrics-port", str(self.metrics_port),
            "--resync-seconds", str(self.resync_seconds),
            "--server-image", "modelpilot/model-server:test",
            *self.extra,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"operator exited with {self.process.returncode}:\n{self.tail()}")
            if self.healthy():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"operator not healthy after {timeout} s:\n{self.tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            return r.read().decode()

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything, as when a node dies."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
