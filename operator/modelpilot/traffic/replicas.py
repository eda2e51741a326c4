"""The default provider: the weight is the canary's share of the ready pods behind the one model Service.

Nothing is written for traffic: the reconciler realises the weight by sizing the stable and canary Deployments (see
``modelpilot.rollout``), and the model Service selects the pods of every revision. Whether kube-proxy spreads requests
evenly over those pods is not something an object can tell, so ``verify`` answers ``None``. Coarse with few replicas:
with 3 pods the reachable weights are 0, 33, 67 and 100.
"""

from __future__ import annotations

from typing import Any

from modelpilot.traffic.router import Current, ObjectRef, Split, Write


class ReplicasRouter:
    by_replicas = True

    def targets(self) -> list[ObjectRef]:
        return []

    def writes(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        return []

    def verify(self, current: Current, split: Split) -> bool | None:
        return None

    def cleanup(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        return []
