"""Traffic routers: what to write so that the canary gets its weight. Pure: the reconciler reads and writes.

One protocol (:class:`Router`), one module per provider (replicas, gateway_api, istio, nginx) and a no-op router;
:func:`router_for` picks one from ``spec.trafficRouting``. See ``router.py`` for how a reconciler calls them.
"""

from modelpilot.traffic.factory import router_for
from modelpilot.traffic.gateway_api import GatewayAPIRouter
from modelpilot.traffic.istio import IstioRouter
from modelpilot.traffic.nginx import NginxRouter
from modelpilot.traffic.noop import NoopRouter
from modelpilot.traffic.replicas import ReplicasRouter
from modelpilot.traffic.router import (
    ObjectRef,
    Router,
    RoutingError,
    Split,
    TargetInvalid,
    TargetNotFound,
    Write,
)

__all__ = [
    "GatewayAPIRouter",
    "IstioRouter",
    "NginxRouter",
    "NoopRouter",
    "ObjectRef",
    "ReplicasRouter",
    "Router",
    "RoutingError",
    "Split",
    "TargetInvalid",
    "TargetNotFound",
    "Write",
    "router_for",
]
