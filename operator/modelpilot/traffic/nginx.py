"""ingress-nginx: a canary Ingress, owned by the operator, beside the user's stable Ingress.

ingress-nginx splits traffic between two Ingresses with the same host and paths when one of them carries
``nginx.ingress.kubernetes.io/canary: "true"`` and ``canary-weight: "<w>"``. The operator states that second Ingress
in full, named ``<ingress>-canary``: the stable Ingress's rules (and TLS, default backend, class) with every backend
switched to the canary Service, the stable Ingress's annotations (so rewrites and timeouts behave the same), and the
canary annotations. The user's Ingress is never written; it should send its traffic to ``<name>-stable`` so that the
remaining ``100 - w`` percent reaches the stable revision only.

The canary Ingress exists only during a release: ``cleanup`` deletes it (a rollback first sets its weight to 0, which
stops canary traffic in the same pass). An object of that name which the ModelDeployment does not own is never taken
over: that is a :class:`TargetInvalid`.

Verification compares the weight annotation read back with the split; ingress-nginx reports nothing per Ingress about
whether its configuration was reloaded, so an Ingress that says so is taken as in effect.
"""

from __future__ import annotations

import copy
from typing import Any

from modelpilot.api.refs import model_labels, owner_reference
from modelpilot.traffic.router import (
    Current,
    ObjectRef,
    Split,
    TargetInvalid,
    Write,
    owned_by,
    require,
)

DEFAULT_API_VERSION = "networking.k8s.io/v1"
PREFIX = "nginx.ingress.kubernetes.io/"
CANARY = PREFIX + "canary"
CANARY_WEIGHT = PREFIX + "canary-weight"
# Annotations of the stable Ingress that must not be copied: kubectl's record of it, and its own canary settings.
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration", CANARY)


class NginxRouter:
    by_replicas = False

    def __init__(self, namespace: str, ingress: str, api_version: str = DEFAULT_API_VERSION) -> None:
        self.stable = ObjectRef(api_version, "Ingress", "ingresses", namespace, ingress)
        self.canary = ObjectRef(api_version, "Ingress", "ingresses", namespace, ingress + "-canary")

    def targets(self) -> list[ObjectRef]:
        return [self.stable, self.canary]

    def _ours(self, current: Current, owner: dict[str, Any]) -> dict[str, Any] | None:
        obj = current.get(self.canary)
        if obj is not None and not owned_by(obj, owner):
            raise TargetInvalid(self.canary, f"exists and is not owned by ModelDeployment {owner['metadata']['name']}")
        return obj

    def desired(self, stable: dict[str, Any], split: Split, owner: dict[str, Any]) -> dict[str, Any]:
        """The complete canary Ingress for ``split``."""
        meta = stable.get("metadata", {})
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                       if k not in _NOT_COPIED and not k.startswith(CANARY + "-")}
        annotations.update({CANARY: "true", CANARY_WEIGHT: str(split.canary_weight)})
        spec = copy.deepcopy(stable.get("spec") or {})
        backend = {"service": {"name": split.canary_service, "port": {"number": split.port}}}
        if "defaultBackend" in spec:
            spec["defaultBackend"] = copy.deepcopy(backend)
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                path["backend"] = copy.deepcopy(backend)
        return {
            "apiVersion": self.canary.api_version,
            "kind": "Ingress",
            "metadata": {
                "name": self.canary.name,
                "namespace": self.canary.namespace,
                "labels": model_labels(split.name),
                "annotations": annotations,
                "ownerReferences": [owner_reference(owner)],
            },
            "spec": spec,
        }

    def writes(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        stable = require(current, self.stable)
        ours = self._ours(current, owner)
        body = self.desired(stable, split, owner)
        if ours is not None and _same(ours, body):
            return []
        ref = self.canary
        return [Write(ref.api_version, ref.kind, ref.namespace, ref.name, body, "apply", ref.plural)]

    def verify(self, current: Current, split: Split) -> bool | None:
        require(current, self.stable)
        ours = current.get(self.canary)
        if ours is None:
            return split.canary_weight == 0  # no canary Ingress: everything goes to stable
        annotations = ours.get("metadata", {}).get("annotations") or {}
        weight = annotations.get(CANARY_WEIGHT, "0") if annotations.get(CANARY) == "true" else "0"
        return weight == str(split.canary_weight)

    def cleanup(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        ours = self._ours(current, owner)
        if ours is None:
            return []
        ref = self.canary
        body = {"propagationPolicy": "Background", "preconditions": {"uid": ours["metadata"]["uid"]}}
        return [Write(ref.api_version, ref.kind, ref.namespace, ref.name, body, "delete", ref.plural)]


def _same(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether the canary Ingress read back already says what ``desired`` says (annotations we set, and the spec)."""
    have = current.get("metadata", {}).get("annotations") or {}
    want = desired["metadata"]["annotations"]
    return all(have.get(k) == v for k, v in want.items()) and current.get("spec") == desired["spec"]
