"""The release plan, as a table: the worked examples of ``modelpilot.rollout.plan`` and the edges around them."""

import pytest
from modelpilot.rollout.plan import plan
from modelpilot.rollout.state import Observed, RevisionState


def rev(name: str, replicas: int = 3, available: bool = True, ready: int | None = None) -> RevisionState:
    ready = replicas if ready is None else ready
    return RevisionState(name, replicas, replicas, ready, replicas, ready if available else 0, available)


CASES = [
    # id, observed, desired, replicas, stable, paused -> replicas, remove, stable after
    ("first revision", [], "d", 3, None, False, {"d": 3}, (), None),
    ("first revision available", [rev("d")], "d", 3, None, False, {"d": 3}, (), "d"),
    ("steady state", [rev("d")], "d", 3, "d", False, {"d": 3}, (), "d"),
    ("scale up steady", [rev("d")], "d", 5, "d", False, {"d": 5}, (), "d"),
    ("new revision starts beside stable", [rev("s")], "d", 3, "s", False, {"s": 3, "d": 3}, (), "s"),
    ("new revision not yet available", [rev("s"), rev("d", available=False)], "d", 3, "s", False,
     {"s": 3, "d": 3}, (), "s"),
    ("new revision available: old goes", [rev("s"), rev("d")], "d", 3, "s", False, {"d": 3}, ("s",), "d"),
    ("available at the old size is not enough", [rev("s"), rev("d", 3)], "d", 5, "s", False,
     {"s": 5, "d": 5}, (), "s"),
    ("abandoned intermediate goes at once", [rev("s"), rev("x", available=False), rev("d", available=False)],
     "d", 3, "s", False, {"s": 3, "d": 3}, ("x",), "s"),
    ("no stable: intermediate goes", [rev("x", available=False)], "d", 3, None, False, {"d": 3}, ("x",), None),
    ("stable broken, new not ready: keep both", [rev("s", available=False), rev("d", available=False)],
     "d", 3, "s", False, {"s": 3, "d": 3}, (), "s"),
    ("stable deleted by hand", [rev("d", available=False)], "d", 3, "s", False, {"d": 3}, (), None),
    ("paused before the new revision", [rev("s")], "d", 3, "s", True, {"s": 3}, (), "s"),
    ("paused keeps a started revision's size", [rev("s"), rev("d", 2, available=False)], "d", 4, "s", True,
     {"s": 4, "d": 2}, (), "s"),
    ("paused in steady state scales", [rev("d")], "d", 4, "d", True, {"d": 4}, (), "d"),
    ("scale to zero", [rev("d")], "d", 0, "d", False, {"d": 0}, (), "d"),
]


@pytest.mark.parametrize(
    "observed, desired, replicas, stable, paused, want_replicas, want_remove, want_stable",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan(observed, desired, replicas, stable, paused, want_replicas, want_remove, want_stable):
    p = plan(desired=desired, replicas=replicas, stable=stable,
             observed=Observed({r.revision: r for r in observed}), paused=paused)
    assert p.replicas == want_replicas
    assert p.remove == want_remove
    assert p.stable == want_stable


def test_events_name_the_revisions():
    created = plan(desired="d", replicas=2, stable="s", observed=Observed({"s": rev("s")}))
    assert ("Normal", "RevisionCreated", "started revision d with 2 replicas") in created.events
    swapped = plan(desired="d", replicas=3, stable="s", observed=Observed({"s": rev("s"), "d": rev("d")}))
    reasons = [e[1] for e in swapped.events]
    assert reasons == ["RevisionAvailable", "RevisionRetired"]
    steady = plan(desired="d", replicas=3, stable="d", observed=Observed({"d": rev("d")}))
    assert steady.events == ()


def test_nothing_serving_is_removed_while_the_new_revision_is_unavailable():
    """The invariant behind every row: while the desired revision is not available, the stable one stays."""
    for observed, desired, replicas, stable, paused, *_ in [c[1:] for c in CASES]:
        obs = Observed({r.revision: r for r in observed})
        p = plan(desired=desired, replicas=replicas, stable=stable, observed=obs, paused=paused)
        d = obs.get(desired)
        if stable in obs.revisions and not (d and d.available and d.desired == replicas):
            assert stable not in p.remove
            assert p.replicas[stable] == replicas
