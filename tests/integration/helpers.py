"""Small helpers of the integration tests: polling, ModelDeployment access, and playing the kubelet.

There is no node in the integration control plane, so no pod ever runs. A test makes a Deployment "available" by
writing its status through the status subresource, as envtest-based suites do; the deployment and replicaset
controllers are off so nothing overwrites it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "modelpilot.io", "v1alpha1", "modeldeployments"
T = TypeVar("T")


def wait_for(probe: Callable[[], T], *, timeout: float = 30.0, what: str = "condition", interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


def model_deployment(name: str, version: str = "1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": name, "version": version, "uri": f"file:///models/{name}-{version}.joblib",
                      "format": "sklearn"},
            **spec,
        },
    }


class Cluster:
    """Typed access to what the tests read and write."""

    def __init__(self, api: k8s.ApiClient, namespace: str):
        self.ns = namespace
        self.custom = k8s.CustomObjectsApi(api)
        self.apps = k8s.AppsV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.api = api

    # ModelDeployments
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == type_), {})

    # Children
    def deployments(self, name: str) -> dict[str, Any]:
        """The model's Deployments by revision label."""
        found = self.apps.list_namespaced_deployment(self.ns, label_selector=f"modelpilot.io/model={name}")
        return {d.metadata.labels["modelpilot.io/revision"]: d for d in found.items}

    def service(self, name: str):
        try:
            return self.core.read_namespaced_service(name, self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def hpa(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(
                "autoscaling", "v2beta2", self.ns, "horizontalpodautoscalers", name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def make_available(self, deployment_name: str, ready: int | None = None) -> None:
        """Play the kubelet and the deployment controller: all (or ``ready``) replicas updated, ready, available."""
        d = self.apps.read_namespaced_deployment(deployment_name, self.ns)
        n = d.spec.replicas if ready is None else ready
        full = n >= d.spec.replicas
        status = {
            "observedGeneration": d.metadata.generation,
            "replicas": n,
            "updatedReplicas": n,
            "readyReplicas": n,
            "availableReplicas": n,
            "conditions": [
                {"type": "Available", "status": "True" if full else "False",
                 "reason": "MinimumReplicasAvailable" if full else "MinimumReplicasUnavailable",
                 "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ],
        }
        self.apps.patch_namespaced_deployment_status(deployment_name, self.ns, {"status": status})


class Kubelet:
    """Plays the kubelet for one model in the background: every Deployment of the model is made available at its
    desired size shortly after that size changes, as pods starting and passing their readiness probes would.

    ``hold(revision)`` keeps one revision's pods unready (a canary that never comes up)."""

    def __init__(self, cluster: Cluster, model: str, delay: float = 0.3):
        import threading

        self.cluster, self.model, self.delay = cluster, model, delay
        self.held: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def hold(self, revision: str) -> None:
        self.held.add(revision)

    def _run(self) -> None:
        while not self._stop.wait(self.delay):
            try:
                for rev, d in self.cluster.deployments(self.model).items():
                    status = d.status
                    done = (status is not None and status.observed_generation == d.metadata.generation
                            and (status.available_replicas or 0) == d.spec.replicas
                            and (status.replicas or 0) == d.spec.replicas)
                    if rev not in self.held and not done:
                        self.cluster.make_available(d.metadata.name)
            except ApiException:
                pass  # a Deployment removed between list and patch: the next round sees the new state
