"""The router for a ModelDeployment's ``spec.trafficRouting``.

Routers need the namespace (the objects they name live in the ModelDeployment's namespace) and, for the CRD-based
providers, the API version the cluster serves. Those versions are operator configuration or discovery results, never
spec fields, so they are arguments here with the current defaults.
"""

from __future__ import annotations

from modelpilot.api.strategy import TrafficRouting
from modelpilot.traffic import gateway_api, istio, nginx
from modelpilot.traffic.gateway_api import GatewayAPIRouter
from modelpilot.traffic.istio import IstioRouter
from modelpilot.traffic.nginx import NginxRouter
from modelpilot.traffic.replicas import ReplicasRouter
from modelpilot.traffic.router import Router


def router_for(
    routing: TrafficRouting | None,
    namespace: str,
    *,
    gateway_api_version: str = gateway_api.DEFAULT_API_VERSION,
    istio_api_version: str = istio.DEFAULT_API_VERSION,
    ingress_api_version: str = nginx.DEFAULT_API_VERSION,
) -> Router:
    """``None`` or ``replicas`` -> :class:`ReplicasRouter`; otherwise the router of the one provider set."""
    if routing is None or routing.replicas is not None:
        return ReplicasRouter()
    if routing.gateway_api is not None:
        g = routing.gateway_api
        return GatewayAPIRouter(namespace, g.http_route, g.rule_index, gateway_api_version)
    if routing.istio is not None:
        i = routing.istio
        return IstioRouter(namespace, i.virtual_service, i.route, istio_api_version)
    if routing.nginx is not None:
        return NginxRouter(namespace, routing.nginx.ingress, ingress_api_version)
    raise ValueError("trafficRouting: no provider set")  # the API model forbids this; kept for type narrowing
