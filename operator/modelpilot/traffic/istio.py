"""Istio: the destination weights of one HTTP route of the user's VirtualService.

The managed route is the one named in ``trafficRouting.istio.route``, or the first of ``spec.http`` when no name is
given. Its ``route`` list becomes exactly two destinations, the stable and the canary Service (short host names,
resolved in the VirtualService's namespace, which is the ModelDeployment's), with weights ``100 - w`` and ``w``; both
stay at every weight (Istio accepts 0). The route's ``match``, ``retries``, ``timeout`` and the other HTTP routes are
copied from the object read; a destination already pointing at one of our Services keeps its extra fields (e.g.
``headers``).

``apiVersion`` defaults to ``networking.istio.io/v1beta1``, served by every Istio since 1.5; ``v1`` (Istio 1.22+) has
the same shape.

Verification compares the weights read back with the split. Istio keeps no per-object status of whether Envoy
received the configuration, so a VirtualService that says so is taken as in effect.
"""

from __future__ import annotations

import copy
from typing import Any

from modelpilot.traffic.router import Current, ObjectRef, Split, TargetInvalid, Write, merge_patch, require

DEFAULT_API_VERSION = "networking.istio.io/v1beta1"


class IstioRouter:
    by_replicas = False

    def __init__(self, namespace: str, virtual_service: str, route: str | None = None,
                 api_version: str = DEFAULT_API_VERSION) -> None:
        self.ref = ObjectRef(api_version, "VirtualService", "virtualservices", namespace, virtual_service)
        self.route = route

    def targets(self) -> list[ObjectRef]:
        return [self.ref]

    def _index(self, vs: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        http = (vs.get("spec") or {}).get("http") or []
        if not http:
            raise TargetInvalid(self.ref, "has no http routes")
        if self.route is None:
            return http, 0
        for i, route in enumerate(http):
            if route.get("name") == self.route:
                return http, i
        raise TargetInvalid(self.ref, f"has no http route named {self.route!r}")

    def writes(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        vs = require(current, self.ref)
        http, i = self._index(vs)
        if _as_written(http[i]) == _as_written({"route": _destinations([], split)}):
            return []
        http = copy.deepcopy(http)
        http[i]["route"] = _destinations(http[i].get("route") or [], split)
        return [merge_patch(self.ref, vs, {"http": http})]

    def verify(self, current: Current, split: Split) -> bool | None:
        vs = require(current, self.ref)
        http, i = self._index(vs)
        return _weights(http[i]) == _expected(split)

    def cleanup(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        return self.writes(current, split.with_weight(0), owner)


def _destinations(existing: list[dict[str, Any]], split: Split) -> list[dict[str, Any]]:
    by_host = {d.get("destination", {}).get("host"): d for d in existing}
    out = []
    for service, weight in ((split.stable_service, split.stable_weight), (split.canary_service, split.canary_weight)):
        dest = copy.deepcopy(by_host.get(service, {}))
        dest.setdefault("destination", {}).update({"host": service, "port": {"number": split.port}})
        dest["weight"] = weight
        out.append(dest)
    return out


def _as_written(route: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(d.get("destination", {}).get("host"), (d.get("destination", {}).get("port") or {}).get("number"),
             d.get("weight")) for d in route.get("route") or []]


def _weights(route: dict[str, Any]) -> dict[str, int]:
    """Host -> effective weight; a single destination without a weight takes all traffic (Istio's rule)."""
    dests = route.get("route") or []
    weights: dict[str, int] = {}
    for d in dests:
        weight = d.get("weight", 100 if len(dests) == 1 else 0)
        if weight:
            host = d.get("destination", {}).get("host", "")
            weights[host] = weights.get(host, 0) + weight
    return weights


def _expected(split: Split) -> dict[str, int]:
    pairs = ((split.stable_service, split.stable_weight), (split.canary_service, split.canary_weight))
    return {name: weight for name, weight in pairs if weight}
