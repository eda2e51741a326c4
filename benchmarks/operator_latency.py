"""Create-to-status latency and idle memory of the operator, against a minimal kopf operator measured in the same run.

    python benchmarks/operator_latency.py [--creates 50] [--gap 0.2]

Starts a real etcd + kube-apiserver + kube-controller-manager on 127.0.0.1 (the integration tests' control plane),
installs the CRD, then for each operator in turn: starts it, creates N ModelDeployments one after another (``--gap``
seconds apart), and measures, per object, the time from the create call's return to the first watch event that shows
``status.observedGeneration == metadata.generation``. The baseline is a kopf operator whose only handler writes that
status field: the floor any kopf-based operator pays (watch delivery, handler dispatch, one status write).

RSS is read from /proc: right after start with no objects ("idle, empty") and 10 s after the last status ("idle, N").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from controlplane import ControlPlane  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes import watch  # noqa: E402
from operator_process import OperatorProcess  # noqa: E402

GROUP, VERSION, PLURAL = "modelpilot.io", "v1alpha1", "modeldeployments"

BASELINE = textwrap.dedent(
    """
    import kopf

    @kopf.on.startup()
    def configure(settings, **_):
        settings.posting.enabled = False

    @kopf.on.create("modelpilot.io", "v1alpha1", "modeldeployments")
    def created(meta, patch, **_):
        patch.status["observedGeneration"] = meta["generation"]
    """
)


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (the operator runs as one process; kopf spawns none)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    return total / 1024


class StatusWatcher:
    """Records, per object name, when status.observedGeneration first equalled metadata.generation."""

    def __init__(self, api: k8s.ApiClient, namespace: str):
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._custom = k8s.CustomObjectsApi(api)
        self._ns = namespace
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # a broken stream is replaced; the initial listing catches up on what it missed
                print(f"watch restarted after {type(exc).__name__}: {exc}", file=sys.stderr)
                time.sleep(0.1)

    def _follow(self) -> None:
        w = watch.Watch()
        while not self._stop.is_set():
            for event in w.stream(self._custom.list_namespaced_custom_object, GROUP, VERSION, self._ns, PLURAL,
                                  timeout_seconds=5):
                obj = event["object"]
                name = obj["metadata"]["name"]
                if name not in self.seen and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"][
                    "generation"
                ]:
                    self.seen[name] = time.perf_counter()
                if self._stop.is_set():
                    break

    def stop(self) -> None:
        self._stop.set()


def run_one(label: str, start, api: k8s.ApiClient, creates: int, gap: float) -> dict[str, float]:
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    ns = f"bench-{label}"
    core.create_namespace({"metadata": {"name": ns}})
    pid = start()
    time.sleep(3)
    idle_empty = rss_mib(pid)
    watcher = StatusWatcher(api, ns)
    time.sleep(1)
    created: dict[str, float] = {}
    for i in range(creates):
        name = f"m{i:03d}"
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name},
            "spec": {"model": {"name": name, "version": "1", "uri": "file:///m/x.joblib", "format": "sklearn"}},
        })
        created[name] = time.perf_counter()
        time.sleep(gap)
    deadline = time.monotonic() + 120
    while len(watcher.seen) < creates and time.monotonic() < deadline:
        time.sleep(0.1)
    watcher.stop()
    time.sleep(10)
    idle_full = rss_mib(pid)
    latencies = sorted((watcher.seen[n] - t) * 1000 for n, t in created.items() if n in watcher.seen)
    return {
        "done": len(latencies),
        "p50": statistics.median(latencies),
        "p95": latencies[max(0, round(0.95 * len(latencies)) - 1)],
        "max": latencies[-1],
        "rss_empty": idle_empty,
        "rss_full": idle_full,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--creates", type=int, default=50)
    p.add_argument("--gap", type=float, default=0.2)
    args = p.parse_args()
    bin_dir = Path(subprocess.run([str(REPO / "e2e/cluster/build-k8s.sh")], capture_output=True, text=True,
                                  check=True).stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(bin_dir, Path(tmp) / "cp") as cp:
        api = k8s_config.new_client_from_config(config_file=str(cp.kubeconfig_path))
        subprocess.run([sys.executable, "-c", "import kubernetes.utils as u, kubernetes.config as c;"
                        f"u.create_from_yaml(c.new_client_from_config('{cp.kubeconfig_path}'),"
                        f"'{REPO / 'crds/modeldeployments.yaml'}')"], check=True)
        time.sleep(2)
        procs: list = []

        def start_baseline() -> int:
            script = Path(tmp) / "baseline.py"
            script.write_text(BASELINE)
            proc = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone", "-A", "--quiet", str(script)],
                                    env={**os.environ, "KUBECONFIG": str(cp.kubeconfig_path)},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc.terminate)
            return proc.pid

        operators: list[OperatorProcess] = []

        def start_modelpilot() -> int:
            op = OperatorProcess(cp.kubeconfig_path, Path(tmp), resync_seconds=30).start()
            procs.append(op.stop)
            operators.append(op)
            return op.process.pid

        results = {}
        try:
            results["kopf minimal (baseline)"] = run_one("baseline", start_baseline, api, args.creates, args.gap)
            procs.pop()()
            results["modelpilot"] = run_one("modelpilot", start_modelpilot, api, args.creates, args.gap)
        except Exception:
            for op in operators:
                print(f"operator log (tail):\n{op.tail(40)}", file=sys.stderr)
            raise
        finally:
            for stop in procs:
                stop()
    base = results["kopf minimal (baseline)"]
    print(f"\ncreate -> status.observedGeneration, {args.creates} creates, {args.gap} s apart "
          f"(kube-apiserver 1.20 on 127.0.0.1)\n")
    print(f"| operator | done | p50 ms | p95 ms | max ms | p50 / base | p95 / base | RSS idle empty MiB | "
          f"RSS idle {args.creates} MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['done']} | {r['p50']:.0f} | {r['p95']:.0f} | {r['max']:.0f} | "
              f"{r['p50'] / base['p50']:.2f} | {r['p95'] / base['p95']:.2f} | {r['rss_empty']:.0f} | "
              f"{r['rss_full']:.0f} |")


if __name__ == "__main__":
    main()
