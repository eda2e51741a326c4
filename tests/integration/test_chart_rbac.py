"""The chart's RBAC is enough for the operator, and no more.

A second control plane authorizes with ``Node,RBAC`` (the session's one allows everything). The chart's
ServiceAccount, Roles and bindings are rendered with the real helm and applied with the real kubectl; the real operator
process then runs with a token of that ServiceAccount, in each RBAC mode, and must do its whole job on a
ModelDeployment (Deployment, Service, HPA added and removed, status, Events) without a single ``Forbidden``. The
ServiceAccount must not be able to read Secrets or touch anything outside the watched namespaces in namespaced mode.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from controlplane import ControlPlane, ControlPlaneError
from helpers import Cluster, model_deployment, wait_for
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from operator_process import OperatorProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelpilot"
RELEASE_NAMESPACE = "modelpilot-system"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


class RbacPlane:
    def __init__(self, cp: ControlPlane, tools: Path):
        self.cp = cp
        self.tools = tools
        self.api = k8s_config.new_client_from_config(config_file=str(cp.kubeconfig_path))
        self.core = k8s.CoreV1Api(self.api)

    def run(self, tool: str, *args: str, input: str | None = None) -> str:
        result = subprocess.run([str(self.tools / tool), f"--kubeconfig={self.cp.kubeconfig_path}", *args],
                                input=input, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"{tool} {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))

    def install_rbac(self, release: str, *values: str) -> str:
        """Render the chart, apply only its identity and RBAC objects; return the ServiceAccount name."""
        rendered = self.run("helm", "template", release, str(CHART), "--namespace", RELEASE_NAMESPACE, *values)
        docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]
        self.run("kubectl", "apply", "-f", "-", input=yaml.safe_dump_all(docs))
        (sa,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
        return sa

    def kubeconfig_for(self, service_account: str, path: Path) -> Path:
        token = self.core.create_namespaced_service_account_token(
            service_account, RELEASE_NAMESPACE,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
        ).status.token
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "rbac", "cluster": {"server": self.cp.url,
                                                      "certificate-authority": str(self.cp.ca_path)}}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "rbac", "user": "sa"}}],
        }))
        return path

    def can(self, service_account: str, verb: str, resource: str, namespace: str) -> bool:
        result = subprocess.run(
            [str(self.tools / "kubectl"), f"--kubeconfig={self.cp.kubeconfig_path}", "auth", "can-i", verb, resource,
             "-n", namespace, f"--as=system:serviceaccount:{RELEASE_NAMESPACE}:{service_account}"],
            capture_output=True, text=True, timeout=60, check=False)
        return result.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def rbac_plane(k8s_bin: Path, tools_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RbacPlane]:
    cp = ControlPlane(k8s_bin, tmp_path_factory.mktemp("rbac-plane"), authorization_mode="Node,RBAC")
    try:
        cp.start()
    except ControlPlaneError as exc:
        pytest.fail(f"RBAC control plane did not start: {exc}", pytrace=False)
    try:
        plane = RbacPlane(cp, tools_bin)
        plane.run("kubectl", "apply", "-f", str(REPO / "crds" / "modeldeployments.yaml"))
        jsonpath = '-o=jsonpath={.status.conditions[?(@.type=="Established")].status}'
        wait_for(lambda: plane.run("kubectl", "get", "crd/modeldeployments.modelpilot.io", jsonpath) == "True" or None,
                 what="CRD Established")
        plane.create_namespace(RELEASE_NAMESPACE)
        yield plane
        plane.api.close()
    finally:
        cp.stop()


def exercise(plane: RbacPlane, namespace: str) -> None:
    """Everything a ModelDeployment without a release asks of the operator: children, HPA on and off, status, Events."""
    cluster = Cluster(plane.api, namespace)
    autoscaling = {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 70}
    cluster.create(model_deployment("iris", replicas=2, autoscaling=autoscaling))
    wait_for(lambda: cluster.deployments("iris") or None, what="Deployment")
    wait_for(lambda: cluster.service("iris"), what="Service")
    wait_for(lambda: cluster.hpa("iris"), what="HorizontalPodAutoscaler")
    wait_for(lambda: cluster.status("iris").get("observedGeneration"), what="status")
    cluster.custom.patch_namespaced_custom_object("modelpilot.io", "v1alpha1", namespace, "modeldeployments", "iris",
                                                  {"spec": {"autoscaling": None}},
                                                  _content_type="application/merge-patch+json")
    wait_for(lambda: cluster.hpa("iris") is None or None, what="HPA removed")
    events = plane.core.list_namespaced_event(namespace, field_selector="involvedObject.kind=ModelDeployment")
    assert events.items, "no Event posted for the ModelDeployment"
    cluster.delete("iris")


@pytest.mark.parametrize("mode", ["clusterWide", "namespaced"])
def test_operator_works_with_the_chart_rbac_only(rbac_plane: RbacPlane, mode: str, tmp_path: Path) -> None:
    watched, other = f"ml-{mode.lower()}", f"other-{mode.lower()}"
    for ns in (watched, other):
        rbac_plane.create_namespace(ns)
    release = f"mp-{mode.lower()}"
    values = ["--set", f"rbac.mode={mode}"]
    if mode == "namespaced":
        values += ["--set", f"watchNamespaces={{{watched}}}"]
    sa = rbac_plane.install_rbac(release, *values)

    assert not rbac_plane.can(sa, "get", "secrets", watched)
    assert not rbac_plane.can(sa, "list", "pods", watched)
    assert rbac_plane.can(sa, "patch", "modeldeployments.modelpilot.io/status", watched)
    assert rbac_plane.can(sa, "create", "deployments.apps", other) is (mode == "clusterWide")

    extra = ["--namespace", watched] if mode == "namespaced" else []
    op = OperatorProcess(rbac_plane.kubeconfig_for(sa, tmp_path / "sa.kubeconfig"), tmp_path, resync_seconds=2,
                         extra=extra).start()
    try:
        exercise(rbac_plane, watched)
        log = op.log_path.read_text()
    finally:
        op.stop()
    forbidden = [line for line in log.splitlines() if any(s in line for s in ("403", "orbidden", "permission"))]
    assert not forbidden, "\n".join(forbidden[:20])
