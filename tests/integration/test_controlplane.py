"""Smoke tests of the integration harness itself: the control plane behaves the way the operator tests assume."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest
from controlplane import ControlPlane
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration


def _eventually(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_api_server_answers(api: k8s.ApiClient, control_plane: ControlPlane) -> None:
    version = k8s.VersionApi(api).get_code()
    assert version.git_version.startswith("v1.20."), version.git_version
    assert control_plane.url.startswith("https://127.0.0.1:")


def test_namespace_is_created(api: k8s.ApiClient, namespace: str) -> None:
    ns = k8s.CoreV1Api(api).read_namespace(namespace)
    assert ns.status.phase == "Active"


def test_kubectl_talks_to_control_plane(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], namespace: str
) -> None:
    result = kubectl("get", "namespace", namespace, "-o", "jsonpath={.metadata.name}", check=True)
    assert result.stdout == namespace


def test_deployment_status_written_by_test_is_kept(api: k8s.ApiClient, namespace: str) -> None:
    """Tests play the kubelet by writing Deployment status; the deployment controller must not overwrite it."""
    apps = k8s.AppsV1Api(api)
    labels = {"app": "smoke"}
    deployment = k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="smoke"),
        spec=k8s.V1DeploymentSpec(
            replicas=2,
            selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="local/none:0")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(namespace, deployment)
    status = {
        "observedGeneration": created.metadata.generation,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
    }
    apps.patch_namespaced_deployment_status("smoke", namespace, {"status": status})

    time.sleep(2.0)  # the deployment controller, if it ran, would have rewritten the status by now
    read = apps.read_namespaced_deployment_status("smoke", namespace).status
    assert read is not None
    assert (read.observed_generation, read.replicas, read.ready_replicas, read.available_replicas) == (
        created.metadata.generation,
        2,
        2,
        2,
    )
    assert apps.list_namespaced_replica_set(namespace).items == []


def test_garbage_collector_deletes_dependents_of_deleted_owner(api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="owner")))
    reference = k8s.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, block_owner_deletion=False
    )
    core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="dependent", owner_references=[reference]))
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    assert _eventually(dependent_gone, timeout=60), "garbage collector did not delete the dependent within 60 s"


def test_autoscaling_v2beta2_is_served(
    api: k8s.ApiClient, kubectl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """Kubernetes 1.20 has no autoscaling/v2; the operator must find v2beta2 by discovery."""
    groups = {g.name: g for g in k8s.ApisApi(api).get_api_versions().groups}
    assert "autoscaling/v2beta2" in {v.group_version for v in groups["autoscaling"].versions}
    resources = json.loads(kubectl("get", "--raw", "/apis/autoscaling/v2beta2", check=True).stdout)
    assert "horizontalpodautoscalers" in {r["name"] for r in resources["resources"]}
