"""How many pods each revision gets during a canary.

The ModelDeployment owns the total (``spec.replicas``, which an HPA may set through the scale subresource), and the
split is recomputed from it at every pass, so autoscaling and a release never fight.

With the ``replicas`` router the weight *is* the share of ready pods behind the model Service, so the stable revision
shrinks as the canary grows; it keeps at least one pod while the weight is below 100 (a one-pod surge at small sizes)
so that a rollback always has a ready stable pod to fall back on. With a mesh or Gateway API the route carries the
weight: the stable revision stays at full size and the canary is sized for its share.

Worked examples (``replicas`` router):

=====  ======  ======  ======  =====================================
total  weight  stable  canary  note
=====  ======  ======  ======  =====================================
10     0       10      0
10     10      9       1
10     25      7       3       ceil(2.5) = 3 canary pods (30 %)
4      10      3       1       25 % at best with 4 pods
1      50      1       1       surge: the stable pod stays
10     100     1       10      the stable pod stays until promotion
0      50      0       0       scaled to zero
=====  ======  ======  ======  =====================================

With a mesh router: total 10, weight 25 -> stable 10, canary 3.
"""

from __future__ import annotations

import math


def canary_replicas(total: int, weight: int) -> int:
    """Pods the canary needs for ``weight`` percent of ``total``: at least one as soon as the weight is positive."""
    if total <= 0 or weight <= 0:
        return 0
    return max(1, math.ceil(total * weight / 100))


def split(total: int, weight: int, *, by_pods: bool) -> tuple[int, int]:
    """``(stable, canary)`` pod counts; ``by_pods`` is True for the ``replicas`` router.

    >>> split(10, 25, by_pods=True), split(1, 50, by_pods=True), split(10, 25, by_pods=False)
    ((7, 3), (1, 1), (10, 3))
    """
    canary = canary_replicas(total, weight)
    if not by_pods:
        return total, canary
    stable = max(total - canary, 1 if total > 0 else 0)
    return stable, canary
