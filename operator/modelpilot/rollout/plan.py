"""Which revisions run, with how many replicas, and which go: the "replace without a gap" release.

The desired revision (from the spec) gets ``spec.replicas``. The revision that serves now (``stable``) keeps its full
size until the desired one is available, then every other revision is removed in the same pass. A revision that is
neither stable nor desired (an earlier update that never became available) is removed at once: it never served as
stable, and the stable one still does. Nothing is removed while the desired revision is unavailable, unless another
available revision keeps serving.

Worked examples (S = stable, D = desired, X = an abandoned intermediate revision; "avail" = Deployment available)

====  ==========================  ===========  ====================================  ====================
case  observed                    spec         runs                                   removes / stable after
====  ==========================  ===========  ====================================  ====================
1     nothing                     3, D         D=3                                    - / none
2     D avail                     3, D         D=3                                    - / D
3     S avail, D not avail        3, D         S=3, D=3                               - / S
4     S avail, D avail            3, D         D=3                                    S / D
5     S avail, X, D               3, D         S=3, D=3                               X / S
6     S, D, paused                3, D         S=3, D kept at its size                - / S
7     S not avail, D not avail    3, D         S=3, D=3                               - / S
8     none stable, X, D           3, D         D=3                                    X / none
====  ==========================  ===========  ====================================  ====================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelpilot.rollout.state import Observed


@dataclass(frozen=True)
class Plan:
    replicas: dict[str, int]  # revision -> replicas its Deployment should have
    remove: tuple[str, ...] = ()  # revisions whose Deployment goes
    stable: str | None = None  # the revision serving once this pass is applied
    desired: str = ""
    paused: bool = False
    events: tuple[tuple[str, str, str], ...] = field(default=())  # (type, reason, message)

    @property
    def progressing(self) -> bool:
        return self.stable != self.desired


def plan(*, desired: str, replicas: int, stable: str | None, observed: Observed, paused: bool = False) -> Plan:
    """Decide the revisions for one pass. ``stable`` is the revision recorded in status (``None`` at first).

    >>> from modelpilot.rollout.state import RevisionState
    >>> obs = Observed({"a": RevisionState("a", 3, 3, 3, 3, 3, True), "b": RevisionState("b", 3, 3, 3, 3, 3, True)})
    >>> p = plan(desired="b", replicas=3, stable="a", observed=obs)
    >>> p.replicas, p.remove, p.stable
    ({'b': 3}, ('a',), 'b')
    """
    if stable is not None and stable not in observed.revisions:
        stable = None  # its Deployment is gone (deleted by hand): nothing to keep
    desired_state = observed.get(desired)
    events: list[tuple[str, str, str]] = []

    if paused and stable is not None and stable != desired:
        # Hold the release: stable follows the replica count; an already started desired revision keeps its size.
        keep = {stable: replicas}
        if desired_state is not None:
            keep[desired] = desired_state.desired
        return Plan(replicas=keep, stable=stable, desired=desired, paused=True)

    if desired_state is None:
        events.append(("Normal", "RevisionCreated", f"started revision {desired} with {replicas} replicas"))
    desired_available = desired_state is not None and desired_state.available and desired_state.desired == replicas
    if desired_available or stable is None or stable == desired:
        new_stable = desired if desired_available or stable == desired else None
        remove = tuple(sorted(r for r in observed.revisions if r != desired))
        if desired_available and stable != desired:
            events.append(("Normal", "RevisionAvailable", f"revision {desired} is available and serves"))
        keep = {desired: replicas}
    else:
        new_stable = stable
        remove = tuple(sorted(r for r in observed.revisions if r not in (stable, desired)))
        keep = {stable: replicas, desired: replicas}
    events.extend(("Normal", "RevisionRetired", f"removed revision {r}") for r in remove)
    return Plan(replicas=keep, remove=remove, stable=new_stable, desired=desired, events=tuple(events))
