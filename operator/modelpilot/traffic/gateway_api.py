"""Gateway API: the weights of two ``backendRefs`` of one rule of the user's HTTPRoute.

The operator rewrites ``spec.rules[ruleIndex].backendRefs`` to exactly the stable and the canary Service with weights
``100 - w`` and ``w``. Everything else in the route is the user's: the other rules, and the managed rule's
``matches``, ``filters`` and timeouts, are copied from the object read, and a backendRef already pointing at one of
our Services keeps its own extra fields (e.g. per-backend ``filters``). Both backends stay in the rule at every weight,
including 0 and 100, so a release is only ever a change of two numbers.

``apiVersion`` defaults to ``gateway.networking.k8s.io/v1`` (Gateway API 1.0+); clusters with an older release of the
CRDs serve HTTPRoute only as ``v1beta1`` (0.6-0.8) and should pass that. The shape of a rule is the same in both.

Verification reads the route's status, which the gateway controller writes per parent (Gateway): a parent reporting
``Accepted`` or ``ResolvedRefs`` False for the current generation means the split is not in effect; every parent
``Accepted`` for the current generation means it is. Without a controller status for the current generation
(no controller yet, or it has not caught up), the provider cannot tell.
"""

from __future__ import annotations

import copy
from typing import Any

from modelpilot.traffic.router import Current, ObjectRef, Split, TargetInvalid, Write, merge_patch, require

DEFAULT_API_VERSION = "gateway.networking.k8s.io/v1"


class GatewayAPIRouter:
    by_replicas = False

    def __init__(self, namespace: str, http_route: str, rule_index: int = 0,
                 api_version: str = DEFAULT_API_VERSION) -> None:
        self.ref = ObjectRef(api_version, "HTTPRoute", "httproutes", namespace, http_route)
        self.rule_index = rule_index

    def targets(self) -> list[ObjectRef]:
        return [self.ref]

    def _rules(self, route: dict[str, Any]) -> list[dict[str, Any]]:
        rules = (route.get("spec") or {}).get("rules") or []
        if self.rule_index >= len(rules):
            raise TargetInvalid(self.ref, f"has {len(rules)} rule(s); ruleIndex {self.rule_index} does not exist")
        return rules

    def writes(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        route = require(current, self.ref)
        rules = self._rules(route)
        if _as_written(rules[self.rule_index]) == _as_written({"backendRefs": _backend_refs([], split)}):
            return []
        rules = copy.deepcopy(rules)
        rule = rules[self.rule_index]
        rule["backendRefs"] = _backend_refs(rule.get("backendRefs") or [], split)
        return [merge_patch(self.ref, route, {"rules": rules})]

    def verify(self, current: Current, split: Split) -> bool | None:
        route = require(current, self.ref)
        if not _same_shares(_weights(self._rules(route)[self.rule_index]), _expected(split)):
            return False
        return _accepted(route)

    def cleanup(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        return self.writes(current, split.with_weight(0), owner)


def _backend_refs(existing: list[dict[str, Any]], split: Split) -> list[dict[str, Any]]:
    by_name = {ref.get("name"): ref for ref in existing if ref.get("kind", "Service") == "Service"}
    out = []
    for service, weight in ((split.stable_service, split.stable_weight), (split.canary_service, split.canary_weight)):
        ref = copy.deepcopy(by_name.get(service, {}))
        ref.update({"name": service, "port": split.port, "weight": weight})
        out.append(ref)
    return out


def _weights(rule: dict[str, Any]) -> dict[str, int]:
    """Service name -> weight of a rule's backendRefs (Gateway API default weight 1); backends at 0 left out."""
    weights: dict[str, int] = {}
    for ref in rule.get("backendRefs") or []:
        key = ref.get("name", "") if ref.get("kind", "Service") == "Service" else f"{ref.get('kind')}/{ref.get('name')}"
        weight = ref.get("weight", 1)
        if weight:
            weights[key] = weights.get(key, 0) + weight
    return weights


def _expected(split: Split) -> dict[str, int]:
    pairs = ((split.stable_service, split.stable_weight), (split.canary_service, split.canary_weight))
    return {name: weight for name, weight in pairs if weight}


def _same_shares(actual: dict[str, int], expected: dict[str, int]) -> bool:
    """Whether both send the same share of traffic to every backend: Gateway API weights are relative, so a lone
    backend of weight 1 carries 100%, and 9/1 is the same split as 90/10."""
    total = sum(actual.values())
    return actual.keys() == expected.keys() and all(actual[k] * 100 == expected[k] * total for k in actual)


def _as_written(rule: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The backendRefs as (kind, name, port, weight), with the API defaults filled in, to detect a no-op write."""
    return [(r.get("kind", "Service"), r.get("name"), r.get("port"), r.get("weight", 1))
            for r in rule.get("backendRefs") or []]


def _accepted(route: dict[str, Any]) -> bool | None:
    """False if any parent rejects the current generation, True if every parent accepted it, else None."""
    generation = route.get("metadata", {}).get("generation")
    parents = (route.get("status") or {}).get("parents") or []
    verdicts = []
    for parent in parents:
        current = [c for c in parent.get("conditions") or []
                   if generation is None or c.get("observedGeneration") in (None, generation)]
        if any(c.get("type") in ("Accepted", "ResolvedRefs") and c.get("status") == "False" for c in current):
            return False
        verdicts.append(any(c.get("type") == "Accepted" and c.get("status") == "True" for c in current))
    return True if verdicts and all(verdicts) else None
