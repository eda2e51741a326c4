"""Turn the Deployments a ModelDeployment owns into the ``Observed`` state the pure decisions read."""

from __future__ import annotations

from typing import Any

from modelpilot.api.constants import LABEL_REVISION
from modelpilot.rollout.state import Observed, RevisionState


def revision_state(deployment: dict[str, Any]) -> RevisionState | None:
    """One Deployment's state; None for a Deployment without a revision label (not one of ours)."""
    revision = (deployment.get("metadata", {}).get("labels") or {}).get(LABEL_REVISION)
    if not revision:
        return None
    meta, spec, status = deployment["metadata"], deployment.get("spec", {}), deployment.get("status") or {}
    desired = spec.get("replicas", 1)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    seen = status.get("observedGeneration", 0) >= meta.get("generation", 0)
    available = (
        seen
        and status.get("updatedReplicas", 0) >= desired
        and status.get("availableReplicas", 0) >= desired
        and (desired == 0 or conditions.get("Available", {}).get("status") == "True")
    )
    progressing = conditions.get("Progressing", {})
    failure = (
        progressing.get("message") or "progress deadline exceeded"
        if progressing.get("reason") == "ProgressDeadlineExceeded"
        else None
    )
    return RevisionState(
        revision=revision,
        desired=desired,
        current=status.get("replicas", 0),
        ready=status.get("readyReplicas", 0),
        updated=status.get("updatedReplicas", 0),
        available_replicas=status.get("availableReplicas", 0),
        available=available,
        failure=failure,
    )


def observe(deployments: list[dict[str, Any]]) -> Observed:
    states = (revision_state(d) for d in deployments)
    return Observed({s.revision: s for s in states if s is not None})
