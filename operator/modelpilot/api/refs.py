"""References between objects, shared by every builder of child objects (``kube.manifests``, ``traffic``)."""

from __future__ import annotations

from typing import Any

from modelpilot.api.constants import API_VERSION, KIND, LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """The controller reference to the ModelDeployment ``owner`` (a dict as read from the API): its children are
    garbage-collected with it, and ``kubectl get`` shows who manages them."""
    meta = owner["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def model_labels(name: str) -> dict[str, str]:
    """Labels of every object and pod the operator makes for the ModelDeployment ``name``."""
    return {LABEL_MODEL: name, LABEL_MANAGED_BY: MANAGED_BY}
