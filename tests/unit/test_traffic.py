"""Traffic routers as tables: what each provider writes for a split, what it verifies, and how it fails.

Covered: writes for weights 0, 10 and 100 (both backends kept at every weight); other rules, matches, filters and
extra backend fields preserved; a write guarded by the resourceVersion read; nothing written when the object already
carries the split; verify True / False / None (Gateway API parents accepted, rejected, stale, absent); missing target
-> TargetNotFound naming the object; bad rule index / route name / foreign canary Ingress -> TargetInvalid; the nginx
canary Ingress (backends, annotations, owner) and its deletion at cleanup; the factory.
"""

from __future__ import annotations

import copy

import pytest
from modelpilot.api.strategy import TrafficRouting
from modelpilot.traffic import (
    GatewayAPIRouter,
    IstioRouter,
    NginxRouter,
    NoopRouter,
    ReplicasRouter,
    RoutingError,
    Split,
    TargetInvalid,
    TargetNotFound,
    router_for,
)
from modelpilot.traffic.router import merge_patch

NS = "ml"
OWNER = {"metadata": {"name": "iris", "namespace": NS, "uid": "uid-1"}}
FOREIGN = {"metadata": {"name": "other", "namespace": NS, "uid": "uid-2"}}


def split(weight: int) -> Split:
    return Split.of(NS, "iris", weight)


def test_split_names_and_bounds():
    s = split(10)
    assert (s.stable_service, s.canary_service, s.port, s.stable_weight) == ("iris-stable", "iris-canary", 80, 90)
    for bad in (-1, 101):
        with pytest.raises(ValueError):
            split(bad)


# --- Gateway API -------------------------------------------------------------------------------------------------

OTHER_RULE = {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}], "backendRefs": [{"name": "admin"}]}


def http_route(backend_refs=None, status=None, generation=3):
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
        "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x", "value": "1"}]}}],
        "backendRefs": backend_refs if backend_refs is not None else [{"name": "iris", "port": 80}],
    }
    obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": NS, "resourceVersion": "42", "generation": generation},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [copy.deepcopy(OTHER_RULE), rule]},
    }
    if status is not None:
        obj["status"] = status
    return obj


def refs(stable: int, canary: int):
    return [{"name": "iris-stable", "port": 80, "weight": stable},
            {"name": "iris-canary", "port": 80, "weight": canary}]


GW = GatewayAPIRouter(NS, "web", rule_index=1)


@pytest.mark.parametrize("weight, expected", [(0, refs(100, 0)), (10, refs(90, 10)), (100, refs(0, 100))])
def test_gateway_writes_backend_weights_and_keeps_the_rest(weight, expected):
    route = http_route()
    (write,) = GW.writes({GW.ref: route}, split(weight), OWNER)
    assert (write.mode, write.api_version, write.kind, write.plural, write.name) == (
        "merge", "gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", "web")
    assert write.body["metadata"] == {"resourceVersion": "42"}
    other, managed = write.body["spec"]["rules"]
    assert other == OTHER_RULE
    assert managed["backendRefs"] == expected
    assert managed["matches"] == route["spec"]["rules"][1]["matches"]
    assert managed["filters"] == route["spec"]["rules"][1]["filters"]
    assert set(write.body["spec"]) == {"rules"}  # parentRefs and the rest untouched by the patch
    assert route["spec"]["rules"][1]["backendRefs"] == [{"name": "iris", "port": 80}]  # input not mutated


def test_gateway_keeps_extra_fields_of_our_backends_and_skips_a_no_op():
    mine = refs(90, 10)
    mine[1]["filters"] = [{"type": "RequestMirror"}]
    (write,) = GW.writes({GW.ref: http_route(mine)}, split(50), OWNER)
    assert write.body["spec"]["rules"][1]["backendRefs"][1] == {
        "name": "iris-canary", "port": 80, "weight": 50, "filters": [{"type": "RequestMirror"}]}
    defaulted = [{"group": "", "kind": "Service", **r} for r in refs(90, 10)]  # as the API server returns them
    assert GW.writes({GW.ref: http_route(defaulted)}, split(10), OWNER) == []


def parent(*conditions):
    return {"parentRef": {"name": "gw"}, "conditions": [
        {"type": t, "status": s, "observedGeneration": g} for t, s, g in conditions]}


VERIFY_GATEWAY = [
    ("weights differ", refs(100, 0), None, 10, False),
    ("weights match, no controller status", refs(90, 10), None, 10, None),
    ("accepted at this generation", refs(90, 10), {"parents": [parent(("Accepted", "True", 3))]}, 10, True),
    ("accepted by one parent of two", refs(90, 10),
     {"parents": [parent(("Accepted", "True", 3)), parent(("Accepted", "True", 2))]}, 10, None),
    ("accepted only at an older generation", refs(90, 10), {"parents": [parent(("Accepted", "True", 2))]}, 10, None),
    ("refs not resolved", refs(90, 10),
     {"parents": [parent(("Accepted", "True", 3), ("ResolvedRefs", "False", 3))]}, 10, False),
    ("rejected", refs(90, 10), {"parents": [parent(("Accepted", "False", 3))]}, 10, False),
    ("default weight 1 of a lone backend is 100%", [{"name": "iris-stable"}], None, 0, None),
    ("a third backend with traffic", refs(90, 10) + [{"name": "x", "weight": 5}], None, 10, False),
    ("relative weights 9/1 are 90/10", refs(9, 1), None, 10, None),
]


@pytest.mark.parametrize("refs_, status, weight, expected", [c[1:] for c in VERIFY_GATEWAY],
                         ids=[c[0] for c in VERIFY_GATEWAY])
def test_gateway_verify(refs_, status, weight, expected):
    assert GW.verify({GW.ref: http_route(refs_, status)}, split(weight)) is expected


def test_gateway_cleanup_is_weight_zero_and_api_version_is_a_parameter():
    old = GatewayAPIRouter(NS, "web", 1, api_version="gateway.networking.k8s.io/v1beta1")
    (write,) = old.cleanup({old.ref: http_route(refs(50, 50))}, split(50), OWNER)
    assert write.api_version == "gateway.networking.k8s.io/v1beta1"
    assert write.body["spec"]["rules"][1]["backendRefs"] == refs(100, 0)


# --- Istio -------------------------------------------------------------------------------------------------------

def virtual_service(routes):
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": NS, "resourceVersion": "7"},
        "spec": {"hosts": ["iris.example.com"], "http": routes},
    }


ADMIN = {"name": "admin", "match": [{"uri": {"prefix": "/admin"}}], "route": [{"destination": {"host": "admin"}}]}
PRIMARY = {"name": "primary", "match": [{"uri": {"prefix": "/v2"}}], "timeout": "5s",
           "route": [{"destination": {"host": "iris"}}]}


def dests(stable: int, canary: int):
    return [{"destination": {"host": "iris-stable", "port": {"number": 80}}, "weight": stable},
            {"destination": {"host": "iris-canary", "port": {"number": 80}}, "weight": canary}]


@pytest.mark.parametrize("weight, expected", [(0, dests(100, 0)), (10, dests(90, 10)), (100, dests(0, 100))])
@pytest.mark.parametrize("route_name, index", [("primary", 1), (None, 0)])
def test_istio_writes_the_named_or_first_route(weight, expected, route_name, index):
    router = IstioRouter(NS, "vs", route_name)
    routes = [ADMIN, PRIMARY]
    (write,) = router.writes({router.ref: virtual_service(copy.deepcopy(routes))}, split(weight), OWNER)
    assert (write.mode, write.kind, write.plural, write.body["metadata"]) == (
        "merge", "VirtualService", "virtualservices", {"resourceVersion": "7"})
    http = write.body["spec"]["http"]
    assert http[index]["route"] == expected
    for i, route in enumerate(routes):
        assert {k: v for k, v in http[i].items() if k != "route"} == {k: v for k, v in route.items() if k != "route"}
        if i != index:
            assert http[i] == route


VERIFY_ISTIO = [
    ("match", dests(90, 10), 10, True),
    ("differ", dests(100, 0), 10, False),
    ("lone destination without weight is 100%", [{"destination": {"host": "iris-stable"}}], 0, True),
    ("not yet our services", [{"destination": {"host": "iris"}}], 0, False),
]


@pytest.mark.parametrize("route, weight, expected", [c[1:] for c in VERIFY_ISTIO], ids=[c[0] for c in VERIFY_ISTIO])
def test_istio_verify(route, weight, expected):
    router = IstioRouter(NS, "vs")
    assert router.verify({router.ref: virtual_service([{"route": route}])}, split(weight)) is expected


def test_istio_no_op_and_cleanup():
    router = IstioRouter(NS, "vs")
    current = {router.ref: virtual_service([{"route": dests(90, 10)}])}
    assert router.writes(current, split(10), OWNER) == []
    (write,) = router.cleanup(current, split(10), OWNER)
    assert write.body["spec"]["http"][0]["route"] == dests(100, 0)


# --- nginx -------------------------------------------------------------------------------------------------------

STABLE_INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "web", "namespace": NS, "uid": "ing-1", "annotations": {
        "nginx.ingress.kubernetes.io/rewrite-target": "/",
        "nginx.ingress.kubernetes.io/canary-by-header": "x-canary",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }},
    "spec": {
        "ingressClassName": "nginx",
        "tls": [{"hosts": ["iris.example.com"], "secretName": "tls"}],
        "rules": [{"host": "iris.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "iris-stable", "port": {"number": 80}}}},
            {"path": "/v2", "pathType": "Prefix",
             "backend": {"service": {"name": "iris", "port": {"name": "http"}}}},
        ]}}],
    },
}
NGINX = NginxRouter(NS, "web")


@pytest.mark.parametrize("weight", [0, 10, 100])
def test_nginx_applies_an_owned_canary_ingress(weight):
    (write,) = NGINX.writes({NGINX.stable: STABLE_INGRESS, NGINX.canary: None}, split(weight), OWNER)
    assert (write.mode, write.name, write.kind, write.plural) == ("apply", "web-canary", "Ingress", "ingresses")
    body = write.body
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert body["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/rewrite-target": "/",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": str(weight),
    }
    paths = body["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/", "/v2"]
    assert all(p["backend"] == {"service": {"name": "iris-canary", "port": {"number": 80}}} for p in paths)
    assert body["spec"]["ingressClassName"] == "nginx" and body["spec"]["tls"] == STABLE_INGRESS["spec"]["tls"]
    assert STABLE_INGRESS["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "iris-stable"


def canary_ingress(weight: int, owner=OWNER):
    body = NGINX.desired(STABLE_INGRESS, split(weight), owner)
    body["metadata"]["uid"] = "canary-uid"
    return body


VERIFY_NGINX = [
    ("weight matches", canary_ingress(10), 10, True),
    ("weight differs", canary_ingress(0), 10, False),
    ("no canary Ingress, weight 0", None, 0, True),
    ("no canary Ingress, weight 10", None, 10, False),
]


@pytest.mark.parametrize("canary, weight, expected", [c[1:] for c in VERIFY_NGINX], ids=[c[0] for c in VERIFY_NGINX])
def test_nginx_verify(canary, weight, expected):
    assert NGINX.verify({NGINX.stable: STABLE_INGRESS, NGINX.canary: canary}, split(weight)) is expected


def test_nginx_no_op_and_cleanup_deletes_only_its_own_ingress():
    current = {NGINX.stable: STABLE_INGRESS, NGINX.canary: canary_ingress(10)}
    assert NGINX.writes(current, split(10), OWNER) == []
    (delete,) = NGINX.cleanup(current, split(10), OWNER)
    assert (delete.mode, delete.name) == ("delete", "web-canary")
    assert delete.body["preconditions"] == {"uid": "canary-uid"}
    assert NGINX.cleanup({NGINX.stable: STABLE_INGRESS, NGINX.canary: None}, split(0), OWNER) == []


def test_nginx_never_takes_over_a_foreign_ingress():
    current = {NGINX.stable: STABLE_INGRESS, NGINX.canary: canary_ingress(10, owner=FOREIGN)}
    for call in (lambda: NGINX.writes(current, split(10), OWNER), lambda: NGINX.cleanup(current, split(0), OWNER)):
        with pytest.raises(TargetInvalid, match="Ingress ml/web-canary: exists and is not owned"):
            call()


# --- failures, trivial routers, factory ----------------------------------------------------------------------------

MISSING = [
    ("HTTPRoute", GW, "HTTPRoute ml/web: not found"),
    ("VirtualService", IstioRouter(NS, "vs"), "VirtualService ml/vs: not found"),
    ("Ingress", NGINX, "Ingress ml/web: not found"),
]


@pytest.mark.parametrize("router, message", [c[1:] for c in MISSING], ids=[c[0] for c in MISSING])
def test_missing_target_is_an_error_naming_the_object(router, message):
    current = {ref: None for ref in router.targets()}
    for call in (lambda: router.writes(current, split(10), OWNER), lambda: router.verify(current, split(10))):
        with pytest.raises(TargetNotFound) as info:
            call()
        assert str(info.value) == message
        assert info.value.reason == "TrafficTargetNotFound"
        assert isinstance(info.value, RoutingError) and info.value.ref in router.targets()


INVALID = [
    ("rule index out of range", GatewayAPIRouter(NS, "web", rule_index=5), http_route(),
     "HTTPRoute ml/web: has 2 rule(s); ruleIndex 5 does not exist"),
    ("unknown route name", IstioRouter(NS, "vs", "nope"), virtual_service([ADMIN]),
     "VirtualService ml/vs: has no http route named 'nope'"),
    ("no http routes", IstioRouter(NS, "vs"), virtual_service([]), "VirtualService ml/vs: has no http routes"),
]


@pytest.mark.parametrize("router, obj, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_unusable_target_is_an_error_naming_the_object(router, obj, message):
    with pytest.raises(TargetInvalid) as info:
        router.writes({router.targets()[0]: obj}, split(10), OWNER)
    assert str(info.value) == message and info.value.reason == "TrafficTargetInvalid"


@pytest.mark.parametrize("router, by_replicas", [(ReplicasRouter(), True), (NoopRouter(), False)])
def test_replicas_and_noop_write_nothing_and_cannot_verify(router, by_replicas):
    assert router.targets() == []
    assert router.writes({}, split(10), OWNER) == [] and router.cleanup({}, split(10), OWNER) == []
    assert router.verify({}, split(10)) is None
    assert router.by_replicas is by_replicas


FACTORY = [
    ("default", None, ReplicasRouter, []),
    ("replicas", {"replicas": {}}, ReplicasRouter, []),
    ("gatewayAPI", {"gatewayAPI": {"httpRoute": "web", "ruleIndex": 1}}, GatewayAPIRouter, ["HTTPRoute ml/web"]),
    ("istio", {"istio": {"virtualService": "vs"}}, IstioRouter, ["VirtualService ml/vs"]),
    ("nginx", {"nginx": {"ingress": "web"}}, NginxRouter, ["Ingress ml/web", "Ingress ml/web-canary"]),
]


@pytest.mark.parametrize("raw, kind, targets", [c[1:] for c in FACTORY], ids=[c[0] for c in FACTORY])
def test_factory(raw, kind, targets):
    routing = None if raw is None else TrafficRouting.model_validate(raw)
    router = router_for(routing, NS)
    assert isinstance(router, kind)
    assert [str(t) for t in router.targets()] == targets


def test_merge_patch_without_resource_version_has_no_precondition():
    write = merge_patch(GW.ref, {"metadata": {}}, {"rules": []})
    assert write.body == {"spec": {"rules": []}}
