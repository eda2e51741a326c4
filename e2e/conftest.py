"""End-to-end fixtures: a real cluster with a node, the project's images, the Helm chart, real Prometheus.

Opt-in: ``pytest e2e --e2e`` (or ``make e2e``). Without ``--e2e`` every test here is skipped; with it, a cluster that
cannot be brought up FAILS the session, it never skips.

The cluster is the local one of ``e2e/cluster/up.sh`` (single node, Kubernetes 1.20 from Debian's sources, pod
networking, Prometheus with HTTP service discovery; ``down.sh`` at the end restores the host), unless
``E2E_KUBECONFIG`` (or ``KUBECONFIG``) names one already running. Such a cluster must have the images
(``e2e/cluster/kind.sh`` loads them into kind), the example models on every node at ``E2E_MODELS_HOSTPATH`` and a
Prometheus scraping the pods at ``E2E_PROMETHEUS_URL`` (as seen from the operator pod; ``E2E_PROMETHEUS_QUERY_URL`` from
here, if different). ``E2E_KEEP=1`` leaves the local cluster running after the session; a local cluster that was
already running when the session started is reused and left running.

Wall times of the phases and of every scenario, and the load reports, are printed at the end and written to
``<run dir>/e2e-results.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "e2e" / "cluster"
sys.path.insert(0, str(Path(__file__).resolve().parent))

OPERATOR_NS = "modelpilot-system"
RELEASE = "modelpilot"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--e2e", action="store_true", default=False,
                     help="run the end-to-end scenarios (brings up a local cluster unless E2E_KUBECONFIG is set)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e_dir = Path(__file__).resolve().parent
    for item in items:
        if e2e_dir in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if not config.getoption("--e2e"):
                item.add_marker(pytest.mark.skip(reason="end-to-end scenarios are opt-in: pytest e2e --e2e"))


# ----------------------------------------------------------------------------------------------------------------------
# Results: phase and scenario wall times, load reports
# ----------------------------------------------------------------------------------------------------------------------

@dataclass
class Results:
    phases: dict[str, float] = field(default_factory=dict)
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    def phase(self, name: str, seconds: float) -> None:
        self.phases[name] = round(seconds, 1)
        self.save()

    def scenario(self, name: str, **values: Any) -> None:
        self.scenarios.setdefault(name, {}).update(values)
        self.save()

    def save(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps({"phases": self.phases, "scenarios": self.scenarios}, indent=2))


RESULTS = Results()


@pytest.fixture(scope="session")
def results() -> Results:
    return RESULTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    start = time.monotonic()
    outcome = yield
    RESULTS.scenario(item.name, seconds=round(time.monotonic() - start, 1),
                     outcome="failed" if outcome.excinfo else "passed")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not (RESULTS.phases or RESULTS.scenarios):
        return
    write = terminalreporter.write_line
    terminalreporter.section("e2e wall times")
    for name, seconds in RESULTS.phases.items():
        write(f"  phase    {name:42} {seconds:7.1f} s")
    for name, values in RESULTS.scenarios.items():
        extra = ", ".join(f"{k}={v}" for k, v in values.items() if k not in ("seconds", "outcome"))
        write(f"  scenario {name:42} {values.get('seconds', 0):7.1f} s  {values.get('outcome', '')}  {extra}")
    if RESULTS.path is not None:
        write(f"  (also in {RESULTS.path})")


# ----------------------------------------------------------------------------------------------------------------------
# The cluster
# ----------------------------------------------------------------------------------------------------------------------

@dataclass
class ClusterEnv:
    kubeconfig: Path
    kubectl_bin: Path
    helm_bin: Path
    prometheus_url: str  # as the operator pod reaches it
    prometheus_query_url: str  # as this process reaches it
    models_hostpath: str
    models_local: Path | None
    operator_image: str
    server_image: str
    local: bool
    run_dir: Path | None

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.kubectl_bin), f"--kubeconfig={self.kubeconfig}", *args], input=input,
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.helm_bin), f"--kubeconfig={self.kubeconfig}", *args],
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def _script(name: str, *args: str, timeout: float = 1800) -> str:
    start = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = "\n".join(result.stderr.strip().splitlines()[-40:])
        pytest.fail(f"e2e/cluster/{name} failed (exit {result.returncode}) after "
                    f"{time.monotonic() - start:.0f}s:\n{tail}", pytrace=False)
    return lines[-1]


def _running(pids: Path) -> bool:
    """A local cluster of up.sh already runs (it is reused, and left running)."""
    if not pids.is_file():
        return False
    for pid in pids.read_text().split():
        try:
            os.kill(int(pid), 0)
            return True
        except (OSError, ValueError):
            continue
    return False


def _read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="session")
def cluster_env(request: pytest.FixtureRequest) -> Iterator[ClusterEnv]:
    if not request.config.getoption("--e2e"):
        pytest.skip("end-to-end scenarios are opt-in: pytest e2e --e2e")
    given = os.environ.get("E2E_KUBECONFIG") or os.environ.get("KUBECONFIG")
    start = time.monotonic()
    tools = Path(_script("tools.sh"))
    if given:
        missing = [v for v in ("E2E_PROMETHEUS_URL", "E2E_MODELS_HOSTPATH") if not os.environ.get(v)]
        if missing:
            pytest.fail(f"with a cluster of your own, set {' and '.join(missing)} (see e2e/conftest.py)",
                        pytrace=False)
        version = (REPO / "charts" / "modelpilot" / "Chart.yaml").read_text().split("appVersion:")[1].split()[0]
        version = version.strip("\"'")
        env = ClusterEnv(
            kubeconfig=Path(given), kubectl_bin=tools / "kubectl", helm_bin=tools / "helm",
            prometheus_url=os.environ["E2E_PROMETHEUS_URL"],
            prometheus_query_url=os.environ.get("E2E_PROMETHEUS_QUERY_URL", os.environ["E2E_PROMETHEUS_URL"]),
            models_hostpath=os.environ["E2E_MODELS_HOSTPATH"],
            models_local=Path(os.environ["E2E_MODELS_LOCAL"]) if os.environ.get("E2E_MODELS_LOCAL") else None,
            operator_image=f"modelpilot/operator:{version}", server_image=f"modelpilot/model-server:{version}",
            local=False, run_dir=None)
        RESULTS.phase("cluster (given kubeconfig)", time.monotonic() - start)
        yield env
        return
    run_default = Path(os.environ.get("MODELPILOT_E2E_RUN", "/tmp/modelpilot-e2e"))
    reused = _running(run_default / "pids")
    envfile = Path(_script("up.sh"))
    values = _read_env(envfile)
    run_dir = Path(values["RUN"])
    RESULTS.path = run_dir / "e2e-results.json"
    RESULTS.phase("cluster up (build cache, images, node, Prometheus)", time.monotonic() - start)
    env = ClusterEnv(
        kubeconfig=Path(values["KUBECONFIG"]), kubectl_bin=Path(values["KUBECTL"]), helm_bin=Path(values["HELM"]),
        prometheus_url=values["PROMETHEUS_URL"], prometheus_query_url=values["PROMETHEUS_URL"],
        models_hostpath=values["MODELS"], models_local=Path(values["MODELS"]),
        operator_image=values["OPERATOR_IMAGE"], server_image=values["SERVER_IMAGE"], local=True, run_dir=run_dir)
    try:
        yield env
    finally:
        guard = subprocess.run(["bash", str(SCRIPTS / "net_guard.sh"), "counters"], capture_output=True, text=True,
                               check=False).stdout
        drops = sum(int(line.split("counter packets")[1].split()[0]) for line in guard.splitlines()
                    if "counter packets" in line)
        RESULTS.phase("guard: packets that tried to leave (must be 0)", drops)
        if os.environ.get("E2E_KEEP") != "1" and not reused:
            start = time.monotonic()
            subprocess.run(["bash", str(SCRIPTS / "down.sh"), str(run_dir)], capture_output=True, text=True,
                           timeout=600, check=False)
            RESULTS.phase("cluster down (host restored)", time.monotonic() - start)
        assert drops == 0, f"the network guard dropped {drops} packets that tried to leave:\n{guard}"


@pytest.fixture(scope="session")
def kube_env(cluster_env: ClusterEnv) -> Iterator[ClusterEnv]:
    """``KUBECONFIG`` points at the e2e cluster for the session (the kubectl plugin and any client read it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(cluster_env.kubeconfig))
        yield cluster_env


def _image_parts(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":")
    return repo.removeprefix("docker.io/"), tag


@pytest.fixture(scope="session")
def helm_values(kube_env: ClusterEnv, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    repo, tag = _image_parts(kube_env.operator_image)
    prom_port = kube_env.prometheus_url.rsplit(":", 1)[-1].split("/")[0]
    extra: list[str] = []
    if kube_env.local:  # no cluster DNS in the local cluster: see post_render_hostaliases.py
        ip = kube_env.json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
        wrapper = tmp_path_factory.mktemp("helm") / "post-render"
        script = Path(__file__).resolve().parent / "post_render_hostaliases.py"
        wrapper.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{script}' {ip}\n")
        wrapper.chmod(0o755)
        extra = ["--post-renderer", str(wrapper)]
    return [
        *extra,
        "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
        "--set", f"serverImage={kube_env.server_image.removeprefix('docker.io/')}",
        "--set", f"prometheusUrl={kube_env.prometheus_url}",
        "--set", f"networkPolicy.egress.prometheus.ports={{{prom_port}}}",
        "--set", "resyncSeconds=5",
    ]


@pytest.fixture(scope="session")
def operator_release(kube_env: ClusterEnv, helm_values: list[str]) -> str:
    """The chart installed with Helm (release ``modelpilot`` in ``modelpilot-system``), operator pod Ready."""
    chart = REPO / "charts" / "modelpilot"
    if not (chart / "templates").is_dir():
        pytest.fail("charts/modelpilot/templates is missing: the e2e suite installs the operator with its chart",
                    pytrace=False)
    start = time.monotonic()
    kube_env.helm("upgrade", "--install", RELEASE, str(chart), "--namespace", OPERATOR_NS, "--create-namespace",
                  *helm_values, "--wait", "--timeout", "5m")
    wait_operator_ready(kube_env)
    RESULTS.phase("helm install + operator Ready", time.monotonic() - start)
    return RELEASE


def operator_pods(env: ClusterEnv) -> list[dict[str, Any]]:
    pods = env.json("get", "pods", "-n", OPERATOR_NS)["items"]
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None]


def wait_operator_ready(env: ClusterEnv, not_named: str | None = None, timeout: float = 180) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        for pod in operator_pods(env):
            conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            if conditions.get("Ready") == "True" and pod["metadata"]["name"] != not_named:
                return pod
        return None

    return wait_for(ready, timeout=timeout, what="a Ready operator pod")


E2E_NS = "modelpilot-e2e"


@pytest.fixture(scope="session")
def namespace(kube_env: ClusterEnv, operator_release: str) -> str:
    # A reused cluster (E2E_KEEP=1, `make demo` twice) may hold a previous session's objects: start from a fresh one.
    kube_env.kubectl("delete", "namespace", E2E_NS, "--ignore-not-found", "--wait=true", "--timeout=180s",
                     check=False, timeout=240)
    kube_env.kubectl("create", "namespace", E2E_NS, check=False)
    wait_for(lambda: kube_env.kubectl("get", "sa", "default", "-n", E2E_NS, check=False).returncode == 0,
             timeout=60, what="default ServiceAccount")
    return E2E_NS


# ----------------------------------------------------------------------------------------------------------------------
# Small helpers shared by the scenarios
# ----------------------------------------------------------------------------------------------------------------------

def wait_for(probe: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except AssertionError as error:  # a kubectl call failed: retry until the deadline
            last = error
        if last and not isinstance(last, AssertionError):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}"[:4000])
        time.sleep(interval)
