"""Rollback latency and false rollbacks of the canary analysis, on the real operator, API server and Prometheus.

    python benchmarks/rollback_latency.py [--runs 10] [--healthy 20] [--interval 5] [--parallel 4]

Rollback latency: a canary at 50 % passes its analysis; at t0 its exporter starts answering 30x slower (a latency
regression); the time until the API server holds a status with the canary rolled back (weight 0: canaryRevision
cleared, rolledBackRevision set, the model Service back on stable) is measured from t0. The theoretical floor is the
time the evidence needs to exist and be judged once per failure: one scrape interval plus ``interval x failureLimit``.
Ratios below 1 are possible: the analysis clock is not aligned with t0, so the next run can come sooner than a full
interval.

False rollbacks: ``--healthy`` canaries with noisy but acceptable latency (120 +- 80 ms against a 250 ms p99 bound,
the stable revision the same) run through their steps; any rollback among them is a false alarm.

Everything runs on 127.0.0.1: the control plane of the integration tests (no kubelet: a background thread makes the
Deployments available), Debian's Prometheus scraping every second, and exporter processes that publish the model
server's metric contract with simulated traffic.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from controlplane import ControlPlane  # noqa: E402
from exporter import Exporter  # noqa: E402
from helpers import Cluster, Kubelet, model_deployment, wait_for  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from operator_process import OperatorProcess  # noqa: E402
from prometheus_server import PrometheusServer  # noqa: E402

SCRAPE_SECONDS = 1.0
HEALTHY = dict(rps=40, latency_ms=20, jitter_ms=5)
NOISY = dict(rps=40, latency_ms=120, jitter_ms=80)
SLOW = dict(latency_ms=600, jitter_ms=50)


def spec(interval: float, steps: list[dict]) -> dict:
    return {
        "replicas": 4,
        "strategy": {"canary": {"steps": steps, "scaleDownDelaySeconds": 0}},
        "analysis": {"interval": f"{interval:g}s", "failureLimit": 1, "minRequests": 20,
                     "metrics": [{"name": "p99", "latency": {"quantile": 0.99, "max": "250ms"}}]},
    }


class Bench:
    def __init__(self, api: k8s.ApiClient, prometheus: PrometheusServer, scratch: Path):
        self.api, self.prometheus, self.scratch = api, prometheus, scratch
        self.exporters: list[Exporter] = []
        self._targets = threading.Lock()  # the target file is rewritten whole: one writer at a time

    def exporter(self, model: str, revision: str, profile: dict) -> Exporter:
        e = Exporter(model, revision, self.scratch, **profile).start()
        with self._targets:
            self.exporters.append(e)
            self.prometheus.add_target(e.host_port, {})
        return e

    def namespace(self, name: str) -> Cluster:
        k8s.CoreV1Api(self.api).create_namespace({"metadata": {"name": name}})
        return Cluster(self.api, name)

    def release(self, cluster: Cluster, name: str, body_spec: dict, stable_profile: dict, canary_profile: dict):
        cluster.create(model_deployment(name, **body_spec))
        stable = wait_for(lambda: cluster.status(name).get("phase") == "Healthy" and
                          cluster.status(name)["stableRevision"], timeout=120, what="stable")
        self.exporter(name, stable, stable_profile)
        before = set(cluster.deployments(name))
        cluster.patch_spec(name, {"model": {"version": "2"}})
        canary = wait_for(lambda: set(cluster.deployments(name)) - before, what="canary").pop()
        return stable, canary, self.exporter(name, canary, canary_profile)

    def rollback_run(self, i: int, interval: float) -> dict:
        name = f"rb{i}"
        cluster = self.namespace(f"bench-rollback-{i}")
        with Kubelet(cluster, name):
            stable, canary, handle = self.release(
                cluster, name, spec(interval, [{"setWeight": 50}, {"pause": {}}]), HEALTHY, HEALTHY)
            # Healthy first: the canary has traffic and has passed at least two analysis runs.
            wait_for(lambda: (cluster.status(name).get("analysis") or {}).get("runs", 0) >= 2 and
                     all(m["verdict"] == "Pass" for m in cluster.status(name)["analysis"]["metrics"]),
                     timeout=90, what="two passing runs")
            handle.set(**SLOW)
            t0 = time.monotonic()
            wait_for(lambda: cluster.status(name).get("rolledBackRevision") == canary and
                     cluster.status(name).get("canaryWeight") is None, timeout=120, interval=0.05,
                     what="rollback")
            seconds = time.monotonic() - t0
            selector = cluster.service(name).spec.selector
        return {"seconds": seconds, "service_on_stable": selector.get("modelpilot.io/revision") == stable}

    def healthy_run(self, i: int, interval: float) -> str:
        name = f"ok{i}"
        cluster = self.namespace(f"bench-healthy-{i}")
        steps = [{"setWeight": 25}, {"analysis": {}}, {"setWeight": 50}, {"analysis": {}}]
        with Kubelet(cluster, name):
            _, canary, _ = self.release(cluster, name, spec(interval, steps), NOISY, NOISY)
            status = wait_for(lambda: (s := cluster.status(name)).get("canaryRevision") is None and
                              s.get("history") and s, timeout=180, interval=0.5, what="release end")
        return status["history"][0]["outcome"]

    def stop(self) -> None:
        for e in self.exporters:
            e.stop()


def print_rollbacks(rollbacks: list[dict], interval: float) -> None:
    floor = SCRAPE_SECONDS + interval * 1
    times = sorted(r["seconds"] for r in rollbacks)
    print(f"\nrollback latency: regression injected at t0 -> canary weight 0 persisted "
          f"(interval {interval:g} s, failureLimit 1, scrape {SCRAPE_SECONDS:g} s)\n")
    print("| runs | median s | p90 s | worst s | floor s | median / floor | worst / floor | traffic on stable |")
    print("|---|---|---|---|---|---|---|---|")
    p90 = times[min(len(times) - 1, round(0.9 * len(times)) - 1)]
    print(f"| {len(times)} | {statistics.median(times):.2f} | {p90:.2f} | {times[-1]:.2f} | {floor:.1f} | "
          f"{statistics.median(times) / floor:.2f} | {times[-1] / floor:.2f} | "
          f"{sum(r['service_on_stable'] for r in rollbacks)}/{len(rollbacks)} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10, help="rollback runs (sequential)")
    p.add_argument("--healthy", type=int, default=20, help="healthy canaries for the false-rollback count")
    p.add_argument("--parallel", type=int, default=4, help="healthy canaries released at the same time")
    p.add_argument("--interval", type=float, default=5.0, help="analysis interval, seconds")
    args = p.parse_args()
    bin_dir = Path(subprocess.run([str(REPO / "e2e/cluster/build-k8s.sh")], capture_output=True, text=True,
                                  check=True).stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with ControlPlane(bin_dir, tmp / "cp") as cp, PrometheusServer(tmp / "prom", scrape_interval="1s",
                                                                       evaluation_interval="1s") as prom:
            api = k8s_config.new_client_from_config(config_file=str(cp.kubeconfig_path))
            subprocess.run([sys.executable, "-c", "import kubernetes.utils as u, kubernetes.config as c;"
                            f"u.create_from_yaml(c.new_client_from_config('{cp.kubeconfig_path}'),"
                            f"'{REPO / 'crds/modeldeployments.yaml'}')"], check=True)
            time.sleep(2)
            op = OperatorProcess(cp.kubeconfig_path, tmp, resync_seconds=30,
                                 extra=["--prometheus-url", prom.url, "--log-level", "WARNING"]).start()
            bench = Bench(api, prom, tmp)
            try:
                rollbacks = [bench.rollback_run(i, args.interval) for i in range(args.runs)]
                print_rollbacks(rollbacks, args.interval)
                with ThreadPoolExecutor(args.parallel) as pool:
                    outcomes = list(pool.map(lambda i: bench.healthy_run(i, args.interval), range(args.healthy)))
            except Exception:
                print(f"operator log (tail):\n{op.tail(60)}", file=sys.stderr)
                raise
            finally:
                bench.stop()
                op.stop()
    print(f"\nfalse rollbacks: {args.healthy} healthy canaries, p99 bound 250 ms, latency 120 +- 80 ms\n")
    print("| canaries | promoted | rolled back | other |")
    print("|---|---|---|---|")
    promoted = outcomes.count("Promoted")
    rolled = outcomes.count("RolledBack")
    print(f"| {len(outcomes)} | {promoted} | {rolled} | {len(outcomes) - promoted - rolled} |")


if __name__ == "__main__":
    main()
