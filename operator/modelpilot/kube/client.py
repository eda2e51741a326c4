"""Reads and writes of the operator, over the official Kubernetes client's ``ApiClient``.

Writes use server-side apply with the field manager ``modelpilot``: each pass states the complete desired object and
applying it twice is a no-op (no new resourceVersion, no watch event), which is what makes the reconciler level-based
and idempotent. The operator owns its children, so conflicts with other managers are forced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from modelpilot.api import GROUP, PLURAL, VERSION
from modelpilot.api.constants import LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY
from modelpilot.kube.discovery import pick_autoscaling_version

FIELD_MANAGER = "modelpilot"

_PLURALS = {"Deployment": "deployments", "Service": "services", "HorizontalPodAutoscaler": "horizontalpodautoscalers"}


def object_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    """REST path of a namespaced object (or of its collection when ``name`` is None)."""
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{_PLURALS.get(kind, kind)}"
    return f"{path}/{name}" if name else path


@dataclass
class Kube:
    """A thin, synchronous facade over the API for one operator process. Thread-safe like ``ApiClient``."""

    api: k8s.ApiClient
    _autoscaling: str | None = field(default=None, init=False)

    def _call(self, method: str, path: str, *, body: Any = None, query: list | None = None, ctype: str | None = None):
        headers = {"Accept": "application/json"}
        if ctype:
            headers["Content-Type"] = ctype
        data, _, _ = self.api.call_api(
            path,
            method,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            response_type="object",
            _return_http_data_only=False,
            _preload_content=True,
        )
        return data

    # --- reads -----------------------------------------------------------------------------------------------------

    def get_model_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def owned_deployments(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """Deployments carrying the model's labels and owned by this very object (uid), so a namesake that was
        deleted and re-created never adopts the children of its predecessor."""
        meta = owner["metadata"]
        selector = f"{LABEL_MODEL}={meta['name']},{LABEL_MANAGED_BY}={MANAGED_BY}"
        found = self._call(
            "GET", object_path("apps/v1", "Deployment", meta["namespace"]), query=[("labelSelector", selector)]
        )
        return [d for d in found.get("items", []) if is_owned_by(d, meta["uid"])]

    def get_owned(self, api_version: str, kind: str, owner: dict[str, Any]) -> dict[str, Any] | None:
        meta = owner["metadata"]
        try:
            obj = self._call("GET", object_path(api_version, kind, meta["namespace"], meta["name"]))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj if is_owned_by(obj, meta["uid"]) else None

    def autoscaling_version(self) -> str:
        """``autoscaling/v2`` where served (Kubernetes 1.23+), else ``autoscaling/v2beta2``. Asked once."""
        if self._autoscaling is None:
            group = self._call("GET", "/apis/autoscaling")
            self._autoscaling = pick_autoscaling_version([v["version"] for v in group.get("versions", [])])
        return self._autoscaling

    # --- writes ----------------------------------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        return self._call(
            "PATCH",
            path,
            body=json.dumps(obj),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            ctype="application/apply-patch+yaml",
        )

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """Set only the replicas of a Deployment. Not an apply: an apply body without the template would make
        server-side apply remove the fields this manager applied before."""
        path = object_path("apps/v1", "Deployment", namespace, name)
        self._call("PATCH", path, body={"spec": {"replicas": replicas}}, ctype="application/merge-patch+json")

    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete one object (only the one with ``uid`` if given); False if it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self._call("DELETE", object_path(api_version, kind, namespace, name), body=body)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write the status subresource in one request (a merge patch: ``None`` values clear fields)."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        self._call("PATCH", path, body={"status": status}, ctype="application/merge-patch+json")


def is_owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])
