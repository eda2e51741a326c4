"""The router protocol: what a traffic provider must say so that the canary gets ``canary_weight`` percent.

A router never talks to the API server. The reconciler asks it which objects it needs (``targets``), reads them, and
hands them back; the router answers with the writes that realise a split (``writes``), whether what it reads back is
already in effect (``verify``), and what restores all traffic to stable once a release is over (``cleanup``). That
keeps every provider a pure function of (objects, split), tested as a table, and keeps ``modelpilot.kube`` the only
code that talks to the cluster.

How the reconciler uses it, once per pass::

    router = router_for(spec.traffic_routing, namespace)
    current = {ref: kube.get(ref) for ref in router.targets()}      # None when absent
    try:
        for w in router.writes(current, split, owner):              # [] when the objects already say so
            kube.write(w)                                           # "merge" | "apply" | "delete"
        in_effect = router.verify(current_after_writes, split)      # True / False / None (cannot tell)
    except RoutingError as exc:
        condition(reason=exc.reason, message=str(exc))             # names the object, e.g. HTTPRoute ml/web

Decisions:

* Two write modes, chosen by who owns the object. A user's HTTPRoute or VirtualService is changed with a JSON merge
  patch of exactly the list we manage (``spec.rules`` / ``spec.http``), rebuilt from the object we read, so other rules,
  matches and filters stay as they were. A merge patch replaces lists whole, so the patch carries the
  ``metadata.resourceVersion`` we read: if the user edited the object in between, the API server answers 409 Conflict
  instead of silently undoing that edit, and the next pass rebuilds from the new version. An object the operator owns
  (the nginx canary Ingress) is stated in full and server-side applied, with an owner reference so it is garbage
  collected with the ModelDeployment.
* ``writes`` returns nothing when the objects already carry the split, so a pass that changes nothing sends nothing.
* A rollback is ``writes`` with weight 0: it is the same, idempotent operation as any step, so "traffic back to
  stable in the same pass" needs no special path. ``cleanup`` is for the end of a release: providers that patch a
  user's object leave both backends in place with the canary at weight 0 (the route keeps one shape between releases,
  so the next release is again a weight change); the nginx provider deletes its canary Ingress, which only exists for
  a release.
* A target that is missing or cannot be managed (no such rule, a foreign object where ours should be) raises a
  :class:`RoutingError` naming the object; it is a user error to report in a condition, not a crash.
* ``verify`` answers ``None`` when a provider cannot tell whether the data plane follows its spec (as Argo Rollouts'
  ``VerifyWeight`` does): the reconciler then proceeds on the written weight.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from modelpilot.api.constants import SERVICE_PORT

Mode = Literal["merge", "apply", "delete"]

STABLE_SUFFIX = "-stable"
CANARY_SUFFIX = "-canary"


@dataclass(frozen=True)
class ObjectRef:
    """One namespaced object; ``plural`` lets the client address it without a discovery round trip."""

    api_version: str
    kind: str
    plural: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Split:
    """The traffic split to realise: ``canary_weight`` percent to the canary Service, the rest to stable."""

    namespace: str
    name: str  # of the ModelDeployment
    stable_service: str
    canary_service: str
    port: int = SERVICE_PORT
    canary_weight: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.canary_weight <= 100:
            raise ValueError(f"canary weight must be 0-100, got {self.canary_weight}")

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight

    @classmethod
    def of(cls, namespace: str, name: str, canary_weight: int) -> Split:
        """The split between the operator's per-revision Services ``<name>-stable`` and ``<name>-canary`` (port 80)."""
        return cls(namespace, name, name + STABLE_SUFFIX, name + CANARY_SUFFIX, SERVICE_PORT, canary_weight)

    def with_weight(self, canary_weight: int) -> Split:
        return dataclasses.replace(self, canary_weight=canary_weight)


@dataclass(frozen=True)
class Write:
    """One request for the reconciler to send.

    ``mode``: ``merge`` = JSON merge patch of an object the user owns (``body`` is the patch); ``apply`` = server-side
    apply of an object the operator owns (``body`` is the complete object, owner reference included); ``delete`` =
    delete the object (``body`` is the DeleteOptions, with a uid precondition so only our object goes).
    """

    api_version: str
    kind: str
    namespace: str
    name: str
    body: dict[str, Any]
    mode: Mode
    plural: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.api_version, self.kind, self.plural, self.namespace, self.name)


Current = dict[ObjectRef, "dict[str, Any] | None"]


class RoutingError(Exception):
    """The split cannot be written; ``str(exc)`` names the object and is fit for a condition message."""

    reason = "TrafficRoutingFailed"

    def __init__(self, ref: ObjectRef, message: str):
        super().__init__(f"{ref}: {message}")
        self.ref = ref


class TargetNotFound(RoutingError):
    """An object the user named in ``trafficRouting`` does not exist."""

    reason = "TrafficTargetNotFound"

    def __init__(self, ref: ObjectRef):
        super().__init__(ref, "not found")


class TargetInvalid(RoutingError):
    """The object exists but cannot be managed as configured (rule index out of range, unknown route name, ...)."""

    reason = "TrafficTargetInvalid"


class Router(Protocol):
    """One traffic provider. Instances are cheap and hold only configuration (namespace, object names, versions)."""

    #: True when the weight is realised by the replica split behind one Service (the reconciler sizes stable and
    #: canary so that the canary's share of ready pods is the weight); False when a route carries the weight.
    by_replicas: bool

    def targets(self) -> list[ObjectRef]:
        """Objects the reconciler must read and pass back as ``current`` (absent ones as ``None``)."""
        ...

    def writes(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        """Requests that make the objects carry ``split``; empty when they already do."""
        ...

    def verify(self, current: Current, split: Split) -> bool | None:
        """Whether ``current`` carries ``split`` and is in effect; ``None`` when this provider cannot tell."""
        ...

    def cleanup(self, current: Current, split: Split, owner: dict[str, Any]) -> list[Write]:
        """Requests that leave all traffic on stable once the release is over (see the module docstring)."""
        ...


# --- helpers shared by the providers -----------------------------------------------------------------------------


def require(current: Current, ref: ObjectRef) -> dict[str, Any]:
    """The object read for ``ref``, or :class:`TargetNotFound`."""
    obj = current.get(ref)
    if obj is None:
        raise TargetNotFound(ref)
    return obj


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid for r in obj.get("metadata", {}).get("ownerReferences") or [])


def merge_patch(ref: ObjectRef, obj: dict[str, Any], spec: dict[str, Any]) -> Write:
    """A merge patch of ``spec`` keys, guarded by the resourceVersion we read (409 if the object changed since)."""
    body: dict[str, Any] = {"spec": spec}
    version = obj.get("metadata", {}).get("resourceVersion")
    if version:
        body["metadata"] = {"resourceVersion": version}
    return Write(ref.api_version, ref.kind, ref.namespace, ref.name, body, "merge", ref.plural)
