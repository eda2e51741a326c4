"""Reads and writes of the operator, through the official Kubernetes client.

Writes use server-side apply with the field manager ``modelpilot``: each pass states the complete desired object and
applying it twice is a no-op (no new resourceVersion, no watch event), which is what makes the reconciler level-based
and idempotent. The operator owns its children, so conflicts with other managers are forced.

Every object outside the core group goes through ``CustomObjectsApi``, which addresses any
``/apis/{group}/{version}/namespaces/{ns}/{plural}`` path and returns plain dicts. That keeps this module independent
of the generated typed models, which differ between client releases, and lets the operator use API versions the
client no longer ships models for (``autoscaling/v2beta2`` on Kubernetes 1.20-1.22).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from modelpilot.api import GROUP, PLURAL, VERSION
from modelpilot.api.constants import LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY
from modelpilot.kube.discovery import pick_autoscaling_version

FIELD_MANAGER = "modelpilot"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

_PLURALS = {"Deployment": "deployments", "Service": "services", "HorizontalPodAutoscaler": "horizontalpodautoscalers"}


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _absent(exc: ApiException) -> bool:
    return exc.status == 404


@dataclass
class Kube:
    """A thin, synchronous facade over the API for one operator process. Thread-safe like ``ApiClient``."""

    api: k8s.ApiClient
    _autoscaling: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._custom = k8s.CustomObjectsApi(self.api)
        self._core = k8s.CoreV1Api(self.api)

    # --- reads -----------------------------------------------------------------------------------------------------

    def get_model_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.read(f"{GROUP}/{VERSION}", PLURAL, namespace, name)

    def owned_deployments(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """Deployments carrying the model's labels and owned by this very object (uid), so a namesake that was
        deleted and re-created never adopts the children of its predecessor."""
        meta = owner["metadata"]
        selector = f"{LABEL_MODEL}={meta['name']},{LABEL_MANAGED_BY}={MANAGED_BY}"
        found = self._custom.list_namespaced_custom_object(
            "apps", "v1", meta["namespace"], "deployments", label_selector=selector
        )
        return [d for d in found.get("items", []) if is_owned_by(d, meta["uid"])]

    def get_owned(self, api_version: str, kind: str, owner: dict[str, Any]) -> dict[str, Any] | None:
        meta = owner["metadata"]
        obj = self.read(api_version, _PLURALS[kind], meta["namespace"], meta["name"])
        return obj if obj is not None and is_owned_by(obj, meta["uid"]) else None

    def read(self, api_version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Any namespaced object outside the core group, or None if absent."""
        group, version = _group_version(api_version)
        try:
            return self._custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as exc:
            if _absent(exc):
                return None
            raise

    def autoscaling_version(self) -> str:
        """``autoscaling/v2`` where served (Kubernetes 1.23+), else ``autoscaling/v2beta2``. Asked once."""
        if self._autoscaling is None:
            group = k8s.AutoscalingApi(self.api).get_api_group()
            self._autoscaling = pick_autoscaling_version([v.version for v in group.versions])
        return self._autoscaling

    # --- writes ----------------------------------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any], plural: str | None = None) -> None:
        meta = obj["metadata"]
        options = dict(field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)
        if obj["apiVersion"] == "v1":
            patch = getattr(self._core, f"patch_namespaced_{obj['kind'].lower()}")
            patch(meta["name"], meta["namespace"], obj, **options)
            return
        group, version = _group_version(obj["apiVersion"])
        self._custom.patch_namespaced_custom_object(
            group, version, meta["namespace"], plural or _PLURALS[obj["kind"]], meta["name"], obj, **options
        )

    def merge_patch(self, api_version: str, plural: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        """A JSON merge patch (a ``metadata.resourceVersion`` in ``body`` makes it conditional: 409 if stale)."""
        group, version = _group_version(api_version)
        self._custom.patch_namespaced_custom_object(group, version, namespace, plural, name, body,
                                                    _content_type=MERGE)

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """Set only the replicas of a Deployment. Not an apply: an apply body without the template would make
        server-side apply remove the fields this manager applied before."""
        self._custom.patch_namespaced_custom_object(
            "apps", "v1", namespace, "deployments", name, {"spec": {"replicas": replicas}}, _content_type=MERGE
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str | None = None,
               plural: str | None = None) -> bool:
        """Delete one object (only the one with ``uid`` if given); False if it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        group, version = _group_version(api_version)
        try:
            self._custom.delete_namespaced_custom_object(group, version, namespace, plural or _PLURALS[kind], name,
                                                         body=body)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write the status subresource in one request (a merge patch: ``None`` values clear fields)."""
        self._custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE
        )


def is_owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])
