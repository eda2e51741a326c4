"""A real Prometheus (Debian's ``/usr/bin/prometheus``, package ``prometheus``) on 127.0.0.1, for integration tests.

Targets come from ``file_sd_configs``: the class owns a targets JSON file and rewrites it (atomically, by rename, as
Prometheus asks) on :meth:`PrometheusServer.add_target` / :meth:`remove_target`. Prometheus notices the change through
inotify, but its discovery manager passes target updates on at most every 5 s, so a new target is scraped up to about
5 s after it was added: add every exporter a test needs first, then wait once (:meth:`wait_for_series`).

:meth:`stop` and :meth:`start` again keep the port and the data directory, so tests can take Prometheus away in the
middle of an analysis and bring it back with its history (the WAL is replayed; the operator sees the same URL).

``honor_labels: true``: the exporters' own ``model`` and ``revision`` labels win over target labels of the same name,
as they must for the metric contract (otherwise Prometheus would rename them ``exported_model``, ...).

Process handling follows :mod:`controlplane`: own process group, SIGTERM when the test process dies, stop = SIGTERM to
the group, SIGKILL after a timeout, and an ``atexit`` hook. Only the standard library is needed::

    with PrometheusServer(scratch_dir) as prom:
        prom.add_target("127.0.0.1:9101", {"namespace": "ml"})
        prom.wait_for_series('up{instance="127.0.0.1:9101"} == 1', timeout=15)
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from controlplane import _die_with_parent, _free_port, _http_ok, _signal_group, _tail, _wait_exited

__all__ = ["PROMETHEUS_BIN", "PrometheusError", "PrometheusServer"]

#: Debian's build (2.42). It has no kubernetes_sd_configs; file and http discovery are there.
PROMETHEUS_BIN = os.environ.get("MODELPILOT_PROMETHEUS", "/usr/bin/prometheus")
JOB = "modelpilot-test"


class PrometheusError(RuntimeError):
    """Prometheus did not start, or a query failed; the message carries the log tail or the API's error."""


class PrometheusServer:
    """One Prometheus process with a file-discovered scrape job.

    Args:
        scratch_dir: folder for the config, the targets file, the TSDB (``data/``) and ``prometheus.log``.
        scrape_interval / evaluation_interval: Prometheus durations; 1 s makes rates usable within seconds.
        binary: the prometheus executable (default ``$MODELPILOT_PROMETHEUS`` or ``/usr/bin/prometheus``).
        start_timeout: seconds to wait for ``/-/ready`` (it is ready in well under a second).
    """

    def __init__(
        self,
        scratch_dir: str | os.PathLike[str],
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        *,
        binary: str = PROMETHEUS_BIN,
        start_timeout: float = 20.0,
    ) -> None:
        self.scratch_dir = Path(scratch_dir).resolve()
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.binary = binary
        self.start_timeout = start_timeout
        self.port = _free_port()  # kept across stop/start
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._targets: dict[str, dict[str, str]] = {}
        self._atexit_registered = False
        self.starts = 0

    # ------------------------------------------------------------------ paths and state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.scratch_dir / "prometheus.yml"

    @property
    def targets_path(self) -> Path:
        return self.scratch_dir / "targets.json"

    @property
    def data_dir(self) -> Path:
        return self.scratch_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.scratch_dir / "prometheus.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start Prometheus (same port and data as any earlier run) and wait until ``/-/ready``."""
        if self.running:
            raise PrometheusError("Prometheus is already running")
        if not os.access(self.binary, os.X_OK):
            raise PrometheusError(f"{self.binary} not found (Debian: apt-get install prometheus)")
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self._write_config()
        self._write_targets()
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            "--storage.tsdb.retention.time=2h",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Lookback stays at the default 5m: a short one would make a stopped-and-restarted Prometheus forget its
            # series for a moment. Nothing else listens (no remote write, no alertmanager).
            "--log.level=info",
        ]
        self.starts += 1
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {' '.join(argv)}\n".encode())
        self._log.flush()
        try:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.scratch_dir,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only signal/session setup, no locks taken
            )
        except OSError as exc:
            self._log.close()
            raise PrometheusError(f"cannot start {self.binary}: {exc}") from exc
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _http_ok(f"{self.url}/-/ready"):
                return self
            time.sleep(0.05)
        message = "exited during start" if self.process.poll() is not None else "not ready in time"
        self.stop()
        raise PrometheusError(f"Prometheus {message}; last lines of {self.log_path}:\n{_tail(self.log_path)}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the process group (Prometheus flushes its head), SIGKILL after ``timeout``. Idempotent."""
        process, self.process = self.process, None
        if process is not None:
            _signal_group(process, signal.SIGTERM)
            if not _wait_exited(process, time.monotonic() + timeout):
                _signal_group(process, signal.SIGKILL)
            _wait_exited(process, None)
            _signal_group(process, signal.SIGKILL)  # anything left in the group; the leader is not reaped yet
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ targets

    def add_target(self, host_port: str, labels: dict[str, str] | None = None) -> None:
        """Scrape ``host_port`` (``127.0.0.1:PORT`` only) with extra target ``labels``; replaces an earlier entry."""
        if not host_port.startswith("127.0.0.1:"):
            raise ValueError(f"targets must be on 127.0.0.1, not {host_port!r}")
        self._targets[host_port] = dict(labels or {})
        self._write_targets()

    def remove_target(self, host_port: str) -> None:
        if self._targets.pop(host_port, None) is not None:
            self._write_targets()

    @property
    def targets(self) -> dict[str, dict[str, str]]:
        return {k: dict(v) for k, v in self._targets.items()}

    # ------------------------------------------------------------------ queries

    def query(self, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Instant query now; the ``result`` list of a vector (a scalar comes back as one unlabelled entry)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"query {promql!r} failed: {exc.code} {exc.read()[:300]!r}") from None
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def wait_for_series(self, query: str, timeout: float = 30.0, *, count: int = 1) -> list[dict[str, Any]]:
        """Poll ``query`` until it returns at least ``count`` series whose value is a number (not NaN); return them.

        Raises ``AssertionError`` with the last result and the scrape targets' health after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] | str = []
        while time.monotonic() < deadline:
            try:
                last = [s for s in self.query(query) if s["value"][1] != "NaN"]
            except (OSError, PrometheusError) as exc:  # not up (yet): keep polling until the deadline
                last = f"{type(exc).__name__}: {exc}"
            if isinstance(last, list) and len(last) >= count:
                return last
            time.sleep(0.25)
        raise AssertionError(
            f"no {count} series for {query!r} within {timeout} s; last: {last!r}; targets: {self._target_health()}"
        )

    def _target_health(self) -> str:
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"{self.url}/api/v1/targets", timeout=2) as response:
                active = json.load(response)["data"]["activeTargets"]
        except (OSError, ValueError, KeyError) as exc:
            return f"<unavailable: {exc}>"
        return ", ".join(f"{t['scrapeUrl']}={t['health']} {t.get('lastError') or ''}".strip() for t in active) or "none"

    # ------------------------------------------------------------------ files

    def _write_config(self) -> None:
        # JSON is valid YAML, and Prometheus reads its config as YAML.
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.evaluation_interval,
                       "scrape_timeout": self.scrape_interval},
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "honor_labels": True,
                    "file_sd_configs": [{"files": [str(self.targets_path)], "refresh_interval": "5s"}],
                }
            ],
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _write_targets(self) -> None:
        groups = [{"targets": [host_port], "labels": labels} for host_port, labels in sorted(self._targets.items())]
        tmp = self.targets_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=2) + "\n")
        os.replace(tmp, self.targets_path)  # atomic: Prometheus never reads a half-written file

