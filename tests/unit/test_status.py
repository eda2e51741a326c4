"""Phase and conditions of a pass: the table in ``modelpilot.rollout.status``."""

from datetime import datetime, timezone

import pytest
from modelpilot.rollout.plan import plan
from modelpilot.rollout.state import Observed, RevisionState
from modelpilot.rollout.status import compute_status

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def st(name, replicas=3, ready=None, available=True, failure=None):
    ready = replicas if ready is None else ready
    return RevisionState(name, replicas, replicas, ready, replicas, ready, available, failure)


def status_for(observed, desired="d", replicas=3, stable=None, paused=False, invalid=None, previous=None):
    obs = Observed({r.revision: r for r in observed})
    p = None if invalid else plan(desired=desired, replicas=replicas, stable=stable, observed=obs, paused=paused)
    prev = previous or ({"stableRevision": stable} if stable else {})
    return compute_status(selector="modelpilot.io/model=m", generation=4, previous=prev, observed=obs,
                          replicas=replicas, now=NOW, plan=p, invalid=invalid)


def conds(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


CASES = [
    ("nothing yet", dict(observed=[]), "Pending",
     {"Ready": ("False", "NoRevisionAvailable"), "Progressing": ("True", "NewRevisionRollingOut"),
      "Degraded": ("False", "AsExpected")}),
    ("healthy", dict(observed=[st("d")], stable="d"), "Healthy",
     {"Ready": ("True", "AllReplicasReady"), "Progressing": ("False", "RolloutComplete"),
      "Degraded": ("False", "AsExpected")}),
    ("scaling up", dict(observed=[st("d", 3, 3)], replicas=5, stable="d"), "Progressing",
     {"Ready": ("False", "ReplicasNotReady"), "Progressing": ("False", "RolloutComplete")}),
    ("new revision coming", dict(observed=[st("s"), st("d", available=False, ready=0)], stable="s"), "Progressing",
     {"Ready": ("True", "AllReplicasReady"), "Progressing": ("True", "NewRevisionRollingOut")}),
    ("paused", dict(observed=[st("s")], stable="s", paused=True), "Paused",
     {"Ready": ("True", "AllReplicasReady"), "Progressing": ("Unknown", "RolloutPaused")}),
    ("deadline exceeded",
     dict(observed=[st("s"), st("d", available=False, ready=0, failure="ReplicaSet has timed out")], stable="s"),
     "Degraded", {"Ready": ("True", "AllReplicasReady"), "Degraded": ("True", "ProgressDeadlineExceeded")}),
    ("invalid spec keeps serving", dict(observed=[st("s")], stable="s", invalid="spec.replicas: bad"), "Degraded",
     {"Ready": ("True", "AllReplicasReady"), "Progressing": ("False", "InvalidSpec"),
      "Degraded": ("True", "InvalidSpec")}),
]


@pytest.mark.parametrize("kwargs, phase, want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_phase_and_conditions(kwargs, phase, want):
    status = status_for(**kwargs)
    assert status["phase"] == phase
    got = conds(status)
    for type_, expected in want.items():
        assert got[type_] == expected, type_


def test_counts_and_selector():
    status = status_for([st("s"), st("d", 3, ready=1, available=False)], stable="s")
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (6, 4, 3)
    assert status["selector"] == "modelpilot.io/model=m"
    assert status["observedGeneration"] == 4
    assert all(c["observedGeneration"] == 4 for c in status["conditions"])


def test_invalid_message_is_the_validation_text():
    status = status_for([], invalid="spec.autoscaling: minReplicas (5) must not be greater than maxReplicas (2)")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert "spec.autoscaling" in degraded["message"]


def test_transition_time_kept_until_status_flips():
    first = status_for([st("d")], stable="d")
    later = compute_status(selector="s", generation=5, previous=first, observed=Observed({"d": st("d")}),
                           replicas=3, now=datetime(2026, 12, 1, tzinfo=timezone.utc),
                           plan=plan(desired="d", replicas=3, stable="d", observed=Observed({"d": st("d")})))
    assert [c["lastTransitionTime"] for c in later["conditions"]] == [c["lastTransitionTime"] for c in
                                                                       first["conditions"]]
