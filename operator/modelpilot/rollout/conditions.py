"""Conditions by the Kubernetes API conventions.

``lastTransitionTime`` moves only when a condition's ``status`` flips; a new reason or message on the same status
keeps the time. ``observedGeneration`` records which spec the condition describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
ORDER = (READY, PROGRESSING, DEGRADED)


@dataclass(frozen=True)
class Cond:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""


def rfc3339(now: datetime) -> str:
    return now.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    previous: list[dict[str, Any]], new: list[Cond], *, generation: int | None, now: datetime
) -> list[dict[str, Any]]:
    """Return the condition list for ``new``, keeping ``lastTransitionTime`` of conditions whose status is unchanged.

    >>> t0, t1 = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)
    >>> first = merge_conditions([], [Cond("Ready", "False", "Starting")], generation=1, now=t0)
    >>> same = merge_conditions(first, [Cond("Ready", "False", "StillStarting")], generation=2, now=t1)
    >>> same[0]["lastTransitionTime"], same[0]["reason"], same[0]["observedGeneration"]
    ('2026-01-01T00:00:00Z', 'StillStarting', 2)
    >>> flipped = merge_conditions(same, [Cond("Ready", "True", "AllReplicasReady")], generation=2, now=t1)
    >>> flipped[0]["lastTransitionTime"]
    '2026-01-02T00:00:00Z'
    """
    before = {c.get("type"): c for c in previous}
    out = []
    for cond in sorted(new, key=lambda c: ORDER.index(c.type) if c.type in ORDER else len(ORDER)):
        old = before.get(cond.type)
        since = old["lastTransitionTime"] if old and old.get("status") == cond.status else rfc3339(now)
        out.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    return out
