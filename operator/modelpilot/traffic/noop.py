"""The do-nothing router: for releases where no router has a say, and as a stand-in in tests.

A blue-green release switches the model Service's selector (``modelpilot.kube``), and a release without a strategy
replaces one revision by the next: neither splits traffic by weight. Unlike :class:`ReplicasRouter` it does not ask the
reconciler to realise a weight through the replica split (``by_replicas`` is False).
"""

from __future__ import annotations

from typing import Any

from modelpilot.traffic.router import Current, ObjectRef, Split, Write


class NoopRouter:
    by_replicas = False

    def targets(self) -> list[ObjectRef]:
        return []

    def writes(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        return []

    def verify(self, current: Current, split: Split) -> bool | None:
        return None

    def cleanup(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        return []
