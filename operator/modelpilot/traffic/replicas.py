"""The default provider: the weight is the canary's share of the ready pods behind the one model Service.

Nothing is written for traffic: the reconciler realises the weight by sizing the stable and canary Deployments (see
``modelpilot.rollout``), and the model Service selects the pods of every revision. Whether kube-proxy spreads requests
evenly over those pods is not something an object can tell, so ``verify`` answers ``None``. Coarse with few replicas:
with 3 pods the reachable weights are 0, 33, 67 and 100.
"""

from __future__ import annotations

from modelpilot.traffic.noop import NoopRouter


class ReplicasRouter(NoopRouter):
    """Writes and verifies nothing, like the no-op router, but asks for the weight as a replica split."""

    by_replicas = True
